/**
 * The UDP services, inetd's "dgram" entries: echo (RFC 862: each datagram
 * is sent back to its source) and discard (RFC 863: read and dropped).
 * One socket per service bound to the wildcard address, driven by its
 * wake-ups like the stream services: a wake-up schedules one drain of the
 * receive queue in a microtask (never inside packet processing), bounded
 * per run so a flood cannot hold the event loop; what is left waits for
 * the next turn.
 */
import type { Stack } from '../net/stack.js';
import { UDP_MAX_PAYLOAD4 } from '../net/ipv4/udp_sock.js';
import { MsgHdr, SockWaiter, sockAddr, sockOptInt } from '../net/core/sock.js';
import { socketSetsockopt, type Socket } from '../net/socket.js';
import { ServiceStats } from './stream.js';
import { AF_INET, EAGAIN, SOCK_DGRAM, SOL_SOCKET, SO_REUSEADDR, errnoName } from '../uapi.js';
import type { StackLog } from '../net/core/net.js';

/** Datagrams one run handles before yielding to the event loop. */
const DRAIN_BUDGET = 256;

/** Per-service datagram counts, beside the byte counts of ServiceStats. */
export class DgramStats {
  datagramsIn = 0;
  datagramsOut = 0;
  /** Replies the socket refused (a pending ICMP error, no route). */
  sendErrors = 0;
}

export class DgramService {
  readonly stats = new ServiceStats();
  readonly dstats = new DgramStats();
  readonly sock: Socket;
  readonly #msg = new MsgHdr();
  readonly #buf = Buffer.allocUnsafe(UDP_MAX_PAYLOAD4);
  readonly #waiter = new SockWaiter(() => this.#run());
  #stopped = false;

  /**
   * `family` AF_INET6 makes one dual-stack socket (IPV6_V6ONLY 0) that
   * serves IPv4 peers as v4-mapped, as an inetd on Linux does with "udp6".
   */
  constructor(
    readonly stack: Stack,
    readonly name: string,
    readonly port: number,
    readonly echo: boolean,
    family: number = AF_INET,
    readonly log?: StackLog,
  ) {
    const sock = stack.families.create(family, SOCK_DGRAM, 0, 0);
    if (typeof sock === 'number') throw new Error(`udp port ${port}: ${errnoName(sock)}`);
    socketSetsockopt(sock, SOL_SOCKET, SO_REUSEADDR, sockOptInt(1));
    const any = sockAddr(family);
    any.port = port;
    const rc = sock.ops.bind(sock.sk, any, true);
    if (rc < 0) {
      sock.ops.release(sock.sk);
      throw new Error(`udp port ${port}: ${errnoName(rc)}`);
    }
    this.sock = sock;
    sock.sk.wake = this.#waiter.wake;
  }

  #run(): void {
    if (this.#stopped) return;
    const { sk, ops } = this.sock;
    const msg = this.#msg;
    for (let i = 0; i < DRAIN_BUDGET; i++) {
      const n = ops.recvmsg(sk, this.#buf, 0, msg, true);
      if (n === -EAGAIN) return;
      if (n < 0) {
        // A pending error (ECONNREFUSED on a connected socket; never here, the socket is unconnected).
        this.stats.errors++;
        continue;
      }
      this.dstats.datagramsIn++;
      this.stats.bytesIn += n;
      if (!this.echo) continue;
      const rc = ops.sendmsg(sk, this.#buf.subarray(0, n), 0, msg.name);
      if (rc < 0) {
        this.dstats.sendErrors++;
        this.stats.errors++;
        continue;
      }
      this.dstats.datagramsOut++;
      this.stats.bytesOut += rc;
    }
    // Budget spent with datagrams maybe left: carry on next turn (setImmediate lets I/O in between).
    setImmediate(this.#resume);
  }

  readonly #resume = (): void => this.#waiter.schedule();

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#waiter.cancel();
    this.sock.ops.release(this.sock.sk);
  }
}
