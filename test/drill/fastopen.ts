/**
 * The drill runner's side of a Fast Open send (sendto/sendmsg with
 * MSG_FASTOPEN, or the first write after a deferred TCP_FASTOPEN_CONNECT):
 * the stack never blocks, so a blocking call is played as Linux's
 * tcp_sendmsg_fastopen does it: the SYN takes what it can, the call waits
 * for the handshake (inet_wait_for_connect), fails with the connection's
 * error if it fails (whatever the SYN carried), else sends the rest.
 */
import { inetStreamConnectResult } from '../../src/net/ipv4/af_inet_connect.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_UNSPEC, EINPROGRESS, MSG_FASTOPEN, type SockAddr } from '../../src/uapi.js';
import type { Expr } from './parse.js';

/** msg_name's value in a sendmsg's msghdr, if any. */
export function msgName(e: Expr | undefined): Expr | undefined {
  if (!e || e.k !== 'struct') return undefined;
  return e.fields.find((f) => f.name === 'msg_name')?.value;
}

/** The address a Fast Open send connects to: the script's `AF_UNSPEC`, else the run's remote (`...`). */
export function fastopenDest(e: Expr | undefined, remote: SockAddr): SockAddr {
  if (e && e.k === 'word' && e.v === 'AF_UNSPEC') return { family: AF_UNSPEC, port: 0, addr: 0, addr6: null };
  return remote;
}

export class FastopenSend {
  /** The next call is the Fast Open one (it carries MSG_FASTOPEN and the address). */
  first: boolean;
  #connecting = false;
  #bias = 0;

  constructor(
    readonly sk: TcpSock,
    flags: number,
    readonly to: SockAddr,
  ) {
    this.first = (flags & MSG_FASTOPEN) !== 0 || sk.deferConnect;
  }

  /** The flags of the next call: MSG_FASTOPEN only on the first. */
  flags(f: number): number {
    return this.first ? f : f & ~MSG_FASTOPEN;
  }

  /**
   * After the first call: 'return' its result (an error, or a non-blocking
   * call's bytes or EINPROGRESS), 'wait' for the handshake, or 'go' on.
   */
  started(rc: number, nonblock: boolean, left: number): 'return' | 'wait' | 'go' {
    this.first = false;
    if (rc > 0 || rc === -EINPROGRESS) {
      if (nonblock) return 'return';
      this.#connecting = true;
      // inet_wait_for_connect's writebias: data the SYN did not take waits (sk_write_pending).
      this.#bias = left > (rc > 0 ? rc : 0) ? 1 : 0;
      this.sk.writePending += this.#bias;
      return 'wait';
    }
    return rc < 0 ? 'return' : 'go';
  }

  /**
   * While waiting for the handshake: { errno: 0 } still waiting, { errno }
   * it failed, null done (the rest of __inet_stream_connect: the SS_ state
   * and the error it reports once).
   */
  wait(): { errno: number } | null {
    if (!this.#connecting) return null;
    const r = inetStreamConnectResult(this.sk);
    if (r === -EINPROGRESS) return { errno: 0 };
    this.#connecting = false;
    this.sk.writePending -= this.#bias;
    this.#bias = 0;
    return r < 0 ? { errno: -r } : null;
  }
}
