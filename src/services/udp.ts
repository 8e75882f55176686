/**
 * The UDP services, inetd's "dgram" entries: echo (RFC 862: each datagram
 * is sent back to its source) and discard (RFC 863: read and dropped).
 * One socket per service bound to the wildcard address, driven by its
 * wake-ups like the stream services: a wake-up schedules one drain of the
 * receive queue in a microtask (never inside packet processing), bounded
 * per run so a flood cannot hold the event loop; what is left waits for
 * the next turn.
 */
import type { Stack, StackLog } from '../net/stack.js';
import {
  UdpRecvInfo,
  udpBind,
  udpClose,
  udpRecvmsg,
  udpSendmsg,
  udpSetsockopt,
  type UdpAddr,
} from '../net/ipv4/udp.js';
import { UDP_MAX_PAYLOAD4, type UdpSock } from '../net/ipv4/udp_sock.js';
import { ServiceStats } from './stream.js';
import { AF_INET, AF_INET6, EAGAIN, SOL_SOCKET, SO_REUSEADDR, errnoName } from '../uapi.js';

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
  readonly sk: UdpSock;
  readonly #info = new UdpRecvInfo();
  readonly #buf = Buffer.allocUnsafe(UDP_MAX_PAYLOAD4);
  readonly #to: UdpAddr = { family: AF_INET, addr: 0, addr6: null, port: 0 };
  #scheduled = false;
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
    const udp = stack.udp;
    this.sk = udp.newSock(family);
    udpSetsockopt(udp, this.sk, SOL_SOCKET, SO_REUSEADDR, 1);
    const any: UdpAddr = { family, addr: 0, addr6: family === AF_INET6 ? new Uint8Array(16) : null, port };
    const rc = udpBind(udp, this.sk, any);
    if (rc < 0) {
      udpClose(udp, this.sk);
      throw new Error(`udp port ${port}: ${errnoName(rc)}`);
    }
    this.sk.wake = () => this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#run();
    });
  }

  #run(): void {
    if (this.#stopped) return;
    const udp = this.stack.udp;
    const info = this.#info;
    for (let i = 0; i < DRAIN_BUDGET; i++) {
      const n = udpRecvmsg(udp, this.sk, this.#buf, 0, info);
      if (n === -EAGAIN) return;
      if (n < 0) {
        // A pending error (ECONNREFUSED on a connected socket; never here, the socket is unconnected).
        this.stats.errors++;
        continue;
      }
      this.dstats.datagramsIn++;
      this.stats.bytesIn += n;
      if (!this.echo) continue;
      const to = this.#to;
      to.family = info.family;
      to.port = info.port;
      to.addr = info.addr;
      to.addr6 = info.family === AF_INET6 ? info.addr6 : null;
      const rc = udpSendmsg(udp, this.sk, this.#buf.subarray(0, n), 0, to);
      if (rc < 0) {
        this.dstats.sendErrors++;
        this.stats.errors++;
        continue;
      }
      this.dstats.datagramsOut++;
      this.stats.bytesOut += rc;
    }
    // Budget spent with datagrams left: carry on next turn (setImmediate lets I/O in between).
    if (this.sk.receiveQueue.length) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#run();
      });
    }
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    udpClose(this.stack.udp, this.sk);
  }
}
