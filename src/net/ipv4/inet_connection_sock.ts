/**
 * What a connection-oriented socket's ports and queues need
 * (net/ipv4/inet_connection_sock.c):
 *  - bind buckets (bhash): one per local port in use, with the sockets
 *    that hold it and the fastreuse/fastreuseport summary that lets bind()
 *    and connect() decide without walking the owners; inet_csk_get_port
 *    with Linux's conflict rules (inet_csk_bind_conflict,
 *    inet_rcv_saddr_equal) and ephemeral search (inet_csk_find_open_port);
 *  - a listener's request-sock queue (its half-open connections, each in
 *    the established hash with a SYN-ACK timer) and its accept queue, and
 *    the hand-over from a request sock to the full socket its handshake
 *    made (inet_csk_complete_hashdance).
 */
import type { TcpHashedSock, TcpProto } from './tcp_proto.js';
import {
  FASTREUSEPORT_ANY,
  FASTREUSEPORT_STRICT,
  InetBindBucket,
  type InetSock,
  TCP_LISTEN,
  TCP_TIME_WAIT,
  v6Any,
  v6Equal,
  v6Mapped,
} from '../core/sock.js';
import { TCP_TIMEOUT_INIT, type TcpRequestSock, type TcpSock } from './tcp_sock.js';
import { tcpSendSynack } from './tcp_output.js';
import { AF_INET6, EADDRINUSE, EINVAL } from '../../uapi.js';

// --- addresses: do two sockets' local addresses overlap? -----------------------------

/**
 * ipv6_rcv_saddr_equal: do two local addresses overlap for bind()? sk1 is
 * AF_INET6; sk2's v6 address is null for an AF_INET socket (counted as
 * v4-mapped). With match*Wildcard, :: on that side overlaps everything
 * its IPV6_V6ONLY lets it take.
 */
export function ipv6RcvSaddrEqual(
  a1: Uint8Array,
  a2: Uint8Array | null,
  v4a1: number,
  v4a2: number,
  only1: boolean,
  only2: boolean,
  matchWild1: boolean,
  matchWild2: boolean,
): boolean {
  const mapped1 = v6Mapped(a1, 0);
  const mapped2 = a2 === null || v6Mapped(a2, 0);
  if (mapped1 && mapped2) return ipv4RcvSaddrEqual(v4a1, v4a2, only2, matchWild1, matchWild2);
  const any1 = v6Any(a1, 0);
  const any2 = a2 !== null && v6Any(a2, 0);
  if (any1 && any2) return true;
  if (any2 && matchWild2 && !(only2 && mapped1)) return true;
  if (any1 && matchWild1 && !(only1 && mapped2)) return true;
  return a2 !== null && v6Equal(a1, 0, a2, 0);
}

/** ipv4_rcv_saddr_equal: an IPV6_V6ONLY sk2 never overlaps an IPv4 address. */
export function ipv4RcvSaddrEqual(a1: number, a2: number, only2: boolean, matchWild1: boolean, matchWild2: boolean): boolean {
  if (only2) return false;
  if ((a1 | 0) === (a2 | 0)) return true;
  return (matchWild1 && a1 === 0) || (matchWild2 && a2 === 0);
}

/** inet_rcv_saddr_equal: sk and sk2 bound to overlapping addresses (either family). */
export function inetRcvSaddrEqual(sk: InetSock, sk2: InetSock, matchWildcard: boolean): boolean {
  if (sk.family === AF_INET6) {
    return ipv6RcvSaddrEqual(
      sk.v6RcvSaddr!,
      sk2.family === AF_INET6 ? sk2.v6RcvSaddr : null,
      sk.rcvSaddr,
      sk2.rcvSaddr,
      sk.ipv6only,
      sk2.ipv6only,
      matchWildcard,
      matchWildcard,
    );
  }
  return ipv4RcvSaddrEqual(sk.rcvSaddr, sk2.rcvSaddr, sk2.ipv6only, matchWildcard, matchWildcard);
}

// --- bind buckets --------------------------------------------------------------------

/** ip_local_port_range, inclusive. */
export interface PortRange {
  low: number;
  high: number;
}

/**
 * bhash: the bind buckets by port. Owners are chained through their
 * hashLinks (bnext/bprev), so binding and unbinding allocate nothing but a
 * bucket for a port nobody held.
 */
export class InetBindHashtable {
  readonly #bhash = new Map<number, InetBindBucket>();
  /** Sockets holding a port (bucket owners, TIME_WAIT included). */
  bound = 0;

  constructor(
    readonly range: PortRange,
    readonly random: () => number,
  ) {}

  /** Ports with a bucket. */
  get size(): number {
    return this.#bhash.size;
  }

  /** Every bucket (for iteration; do not change the table meanwhile). */
  buckets(): IterableIterator<InetBindBucket> {
    return this.#bhash.values();
  }

  /**
   * inet_bind's port part (inet_csk_get_port): take addr:port for sk, or any
   * free port in the local range when port is 0 (inet_csk_find_open_port:
   * random start, odd ports first, lower half first under SO_REUSEADDR).
   * Returns 0 with sk.rcvSaddr/sk.num set, -EADDRINUSE on a conflict or when
   * no port is free (sk unchanged), -EINVAL if sk is already bound. The
   * caller checks that addr is local and that a port below 1024 is allowed.
   */
  bind(sk: InetSock, addr: number, port: number): number {
    if (sk.num !== 0 || sk.hashLinks.tb !== null) return -EINVAL;
    const oldAddr = sk.rcvSaddr;
    sk.rcvSaddr = addr;
    if (!this.getPort(sk, port)) {
      sk.rcvSaddr = oldAddr;
      return -EADDRINUSE;
    }
    return 0;
  }
  /**
   * __inet_inherit_port: an accepted child takes its listener's port, in the
   * same bucket, with no conflict check (it shares the port by construction).
   * Sets child.num.
   */
  inheritPort(child: InetSock, parent: InetSock): void {
    const tb = parent.hashLinks.tb;
    if (tb === null) throw new Error('inheritPort: the parent holds no port');
    if (child.hashLinks.tb !== null) throw new Error('inheritPort: the child already holds a port');
    this.bindHash(child, tb);
  }
  /** The bind bucket of a port, if any (read-only; for diagnostics and tests). */
  bucket(port: number): InetBindBucket | undefined {
    return this.#bhash.get(port);
  }
  /** inet_csk_get_port on sk as it stands (state, rcvSaddr); true on success. */
  getPort(sk: InetSock, snum: number): boolean {
    const reuse = sk.reuse && sk.state !== TCP_LISTEN;
    let tb: InetBindBucket | undefined;
    if (snum === 0) {
      const port = this.#findOpenPort(sk);
      if (port < 0) return false;
      tb = this.#bhash.get(port) ?? this.bucketCreate(port);
    } else {
      tb = this.#bhash.get(snum);
      if (tb === undefined) {
        tb = this.bucketCreate(snum);
      } else if (tb.owners !== null) {
        const fast = (tb.fastreuse > 0 && reuse) || this.#reuseportMatch(tb, sk);
        if (!fast && this.#bindConflict(sk, tb, true, true)) return false;
      }
    }
    this.#updateFastreuse(tb, sk);
    if (sk.hashLinks.tb === null) this.bindHash(sk, tb);
    return true;
  }
  /**
   * inet_csk_bind_conflict: does another owner of tb stop sk from sharing
   * its port? relax: allow two SO_REUSEADDR non-listeners (a real bind;
   * port 0's search passes false so it prefers ports nobody overlaps).
   * reuseportOk: allow two SO_REUSEPORT sockets of one owner (or a
   * TIME_WAIT one). Addresses overlap when equal or either is INADDR_ANY.
   */
  #bindConflict(sk: InetSock, tb: InetBindBucket, relax: boolean, reuseportOk: boolean): boolean {
    const reuse = sk.reuse;
    const reuseport = sk.reuseport;
    for (let sk2 = tb.owners; sk2 !== null; sk2 = sk2.hashLinks.bnext) {
      if (sk2 === sk) continue;
      if (!inetRcvSaddrEqual(sk, sk2, true)) continue;
      const sameOwner = sk2.state === TCP_TIME_WAIT || sk2.uid === sk.uid;
      if (reuse && sk2.reuse && sk2.state !== TCP_LISTEN) {
        if (!relax || (!reuseportOk && reuseport && sk2.reuseport && sameOwner)) return true;
      } else if (!reuseportOk || !reuseport || !sk2.reuseport || !sameOwner) {
        return true;
      }
    }
    return false;
  }
  /** sk_reuseport_match: may sk join tb on the SO_REUSEPORT fast path? */
  #reuseportMatch(tb: InetBindBucket, sk: InetSock): boolean {
    if (tb.fastreuseport <= 0 || !sk.reuseport || tb.fastuid !== sk.uid) return false;
    if (tb.fastreuseport === FASTREUSEPORT_ANY) return true;
    // STRICT: only the recorded address, or anything under a recorded wildcard.
    if (tb.fastSkFamily === AF_INET6) {
      return ipv6RcvSaddrEqual(
        tb.fastV6RcvSaddr,
        sk.family === AF_INET6 ? sk.v6RcvSaddr : null,
        tb.fastRcvSaddr,
        sk.rcvSaddr,
        tb.fastIpv6Only,
        sk.ipv6only,
        true,
        false,
      );
    }
    return ipv4RcvSaddrEqual(tb.fastRcvSaddr, sk.rcvSaddr, sk.ipv6only, true, false);
  }
  /** Record sk as the socket fastreuseport STRICT compares against (the fast_* fields). */
  #setFastSock(tb: InetBindBucket, sk: InetSock): void {
    tb.fastuid = sk.uid;
    tb.fastRcvSaddr = sk.rcvSaddr;
    tb.fastSkFamily = sk.family;
    tb.fastIpv6Only = sk.ipv6only;
    if (sk.family === AF_INET6) tb.fastV6RcvSaddr.set(sk.v6RcvSaddr!);
  }
  /** inet_csk_update_fastreuse: fold sk (about to own tb, or re-checked as a listener) into tb's summary. */
  #updateFastreuse(tb: InetBindBucket, sk: InetSock): void {
    const reuse = sk.reuse && sk.state !== TCP_LISTEN;
    if (tb.owners === null) {
      tb.fastreuse = reuse ? 1 : 0;
      if (sk.reuseport) {
        tb.fastreuseport = FASTREUSEPORT_ANY;
        this.#setFastSock(tb, sk);
      } else {
        tb.fastreuseport = 0;
      }
      return;
    }
    if (!reuse) tb.fastreuse = 0;
    if (sk.reuseport) {
      // No conflict with sk, but the bucket did not match it on the fast path:
      // restart the fast path from sk, checking addresses from now on.
      if (!this.#reuseportMatch(tb, sk)) {
        tb.fastreuseport = FASTREUSEPORT_STRICT;
        this.#setFastSock(tb, sk);
      }
    } else {
      tb.fastreuseport = 0;
    }
  }
  /** inet_csk_find_open_port: a port sk may bind, or -1. */
  #findOpenPort(sk: InetSock): number {
    let attemptHalf = sk.reuse ? 1 : 0;
    for (;;) {
      let low = this.range.low;
      let high = this.range.high + 1; // [low, high)
      if (high - low < 4) attemptHalf = 0;
      if (attemptHalf !== 0) {
        const half = low + (((high - low) >> 2) << 1);
        if (attemptHalf === 1) high = half;
        else low = half;
      }
      let remaining = high - low;
      if (remaining > 1) remaining &= ~1;
      // Odd offsets first: connect() starts on even ones.
      let offset = ((this.random() >>> 0) % remaining) | 1;
      for (;;) {
        let port = low + offset;
        for (let i = 0; i < remaining; i += 2, port += 2) {
          if (port >= high) port -= remaining;
          const tb = this.#bhash.get(port);
          if (tb === undefined || !this.#bindConflict(sk, tb, false, false)) return port;
        }
        offset--;
        if ((offset & 1) !== 0 || offset < 0) break; // both parities done
      }
      if (attemptHalf === 1) {
        attemptHalf = 2; // now the upper half
        continue;
      }
      return -1;
    }
  }
  bucketCreate(port: number): InetBindBucket {
    const tb = new InetBindBucket(port);
    this.#bhash.set(port, tb);
    return tb;
  }
  /** inet_bind_hash: sk becomes an owner of tb and takes its port. */
  bindHash(sk: InetSock, tb: InetBindBucket): void {
    const l = sk.hashLinks;
    const head = tb.owners;
    l.bprev = null;
    l.bnext = head;
    if (head !== null) head.hashLinks.bprev = sk;
    tb.owners = sk;
    tb.count++;
    l.tb = tb;
    sk.num = tb.port;
    this.bound++;
  }
  /** Drop sk from its bucket, and the bucket if sk was the last owner (inet_bind_bucket_destroy). */
  bindUnhash(sk: InetSock): void {
    const l = sk.hashLinks;
    const tb = l.tb!;
    const next = l.bnext;
    const prev = l.bprev;
    if (prev === null) tb.owners = next;
    else prev.hashLinks.bnext = next;
    if (next !== null) next.hashLinks.bprev = prev;
    l.bnext = null;
    l.bprev = null;
    l.tb = null;
    tb.count--;
    this.bound--;
    if (tb.owners === null) this.#bhash.delete(tb.port);
  }
}

// --- request socks and the accept queue ------------------------------------------------

/** The stack's one reqsk_timer_handler, bound once: each request sock's timer calls it with the sock. */
export function reqskTimerFn(tcp: TcpProto): (r: TcpRequestSock) => void {
  return (tcp.reqskTimerFn ??= (r: TcpHashedSock) => reqskTimerHandler(tcp, r as TcpRequestSock));
}

/**
 * inet_csk_reqsk_queue_hash_add: a new request sock goes into the
 * established hash and its listener's request queue, its SYN-ACK timer
 * armed `timeout` ms out.
 */
export function inetCskReqskQueueHashAdd(tcp: TcpProto, req: TcpRequestSock, timeout: number): void {
  const listener = req.listener;
  tcp.hashinfo.ehashInsert(req);
  const head = listener.reqHead;
  req.qprev = null;
  req.qnext = head;
  if (head !== null) head.qprev = req;
  listener.reqHead = req;
  listener.reqQlen++;
  tcp.time.timers.mod(req.timer, tcp.now() + timeout);
}

/** Off the listener's request queue and out of the hash (reqsk_queue_unlink). */
function reqskQueueUnlink(tcp: TcpProto, req: TcpRequestSock): void {
  tcp.time.timers.del(req.timer);
  if (!req.hashLinks.inEhash) return;
  tcp.hashinfo.ehashRemove(req);
  const listener = req.listener;
  if (req.qprev !== null) req.qprev.qnext = req.qnext;
  else listener.reqHead = req.qnext;
  if (req.qnext !== null) req.qnext.qprev = req.qprev;
  req.qprev = req.qnext = null;
  listener.reqQlen--;
}

/** inet_csk_reqsk_queue_drop: forget a request sock. */
export function inetCskReqskQueueDrop(tcp: TcpProto, req: TcpRequestSock): void {
  reqskQueueUnlink(tcp, req);
}

/** Every request sock of a listener that stops listening (inet_csk_listen_stop). */
export function inetCskReqskQueueDropAll(tcp: TcpProto, listener: TcpSock): void {
  for (let req = listener.reqHead; req !== null; req = listener.reqHead) reqskQueueUnlink(tcp, req);
}

/** reqsk_timer_handler: SYN-ACK retransmission with backoff, up to tcp_synack_retries. */
function reqskTimerHandler(tcp: TcpProto, req: TcpRequestSock): void {
  const listener = req.listener;
  if (listener.state !== TCP_LISTEN) {
    inetCskReqskQueueDrop(tcp, req);
    return;
  }
  // TCP_DEFER_ACCEPT keeps the request at least that many timeouts (syn_ack_recalc): an ACKed
  // one gets no SYN-ACK until its last chance, and lives until the deferral is over.
  const defer = listener.deferAccept;
  const maxRetries = Math.max(tcp.sysctl.tcp_synack_retries, defer);
  const expire = req.numTimeout >= maxRetries && (!defer || !req.acked || req.numTimeout >= defer);
  const resend = !defer || !req.acked || req.numTimeout >= defer - 1;
  if (expire) {
    inetCskReqskQueueDrop(tcp, req);
    return;
  }
  if (resend) {
    tcpSendSynack(tcp, req);
    req.numRetrans++;
    tcp.mibs.TcpExt.TCPSynRetrans++;
    tcp.mibs.Tcp.RetransSegs++;
  }
  req.numTimeout++;
  tcp.time.timers.mod(req.timer, tcp.now() + Math.min(TCP_TIMEOUT_INIT * 2 ** req.numTimeout, 120_000));
}

/** inet_csk_complete_hashdance: the child takes the request's place in the hash and goes on the accept queue. */
export function inetCskCompleteHashdance(tcp: TcpProto, req: TcpRequestSock, child: TcpSock): void {
  reqskQueueUnlink(tcp, req);
  inetCskReqskQueueAdd(tcp, req.listener, child);
}

/** inet_csk_reqsk_queue_add: hash the child on the listener's port and queue it for accept(). */
export function inetCskReqskQueueAdd(tcp: TcpProto, listener: TcpSock, child: TcpSock): void {
  tcp.hashinfo.bhash.inheritPort(child, listener);
  tcp.hashinfo.ehashInsert(child);
  tcp.socks.add(child);
  child.parent = listener;
  listener.acceptQueue.push(child);
}
