/**
 * What every socket has (include/net/sock.h, net/core/sock.c):
 *  - sk_state's values (TCP's states, include/net/tcp_states.h: UDP uses
 *    TCP_ESTABLISHED and TCP_CLOSE too);
 *  - struct sock_common (SockCommon): the address tuple and the links into
 *    the socket tables, which request socks and TIME_WAIT socks have too;
 *  - struct sock (Sock): buffers and their accounting, the pending error
 *    and the error queue, the wake-up callback, and the SOL_SOCKET options,
 *    set and read here once for every protocol (sock_setsockopt,
 *    sk_getsockopt);
 *  - the wake-up scheduler the stack's users run their work from.
 *
 * Addresses are IPv4 as uint32 in host order (skc_rcv_saddr, skc_daddr)
 * and, for AF_INET6 sockets, 16-byte arrays next to them (sk_v6_rcv_saddr,
 * sk_v6_daddr), ports plain numbers. As in Linux, an AF_INET6 socket
 * talking to an IPv4 peer holds v4-mapped v6 addresses and the plain IPv4
 * ones, and lives in the IPv4 tables.
 */
import type { ProtoMemory } from './proto_memory.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  EAGAIN,
  EDOM,
  EINVAL,
  ENOPROTOOPT,
  POLLERR,
  POLLOUT,
  SO_ACCEPTCONN,
  SO_BROADCAST,
  SO_DOMAIN,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_PROTOCOL,
  SO_RCVBUF,
  SO_RCVLOWAT,
  SO_RCVTIMEO,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SO_SNDTIMEO,
  SO_TYPE,
  SO_ZEROCOPY,
  SO_MARK,
  SO_MAX_PACING_RATE,
  SO_TIMESTAMPING,
  SOF_TIMESTAMPING_MASK,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_OPT_ID_TCP,
  SOF_TIMESTAMPING_BIND_PHC,
  EOPNOTSUPP,
  SOCK_STREAM,
  type SockAddr,
} from '../../uapi.js';

/** enum sk_pacing: none, TCP's own (tcp_pacing.ts), the fq stage's (sch_fq.ts). */
export const SK_PACING_NONE = 0, SK_PACING_NEEDED = 1, SK_PACING_FQ = 2;

/** sk_state: TCP's states, Linux's numbering. */
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_SYN_RECV = 3;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_LISTEN = 10;
export const TCP_CLOSING = 11;
/** A request sock in the established hash (a half-open passive connection). */
export const TCP_NEW_SYN_RECV = 12;

/** The states by name, as `ss` prints them. */
export const TCP_STATE_NAMES: Record<number, string> = {
  [TCP_ESTABLISHED]: 'ESTABLISHED',
  [TCP_SYN_SENT]: 'SYN-SENT',
  [TCP_SYN_RECV]: 'SYN-RECV',
  [TCP_FIN_WAIT1]: 'FIN-WAIT-1',
  [TCP_FIN_WAIT2]: 'FIN-WAIT-2',
  [TCP_TIME_WAIT]: 'TIME-WAIT',
  [TCP_CLOSE]: 'CLOSE',
  [TCP_CLOSE_WAIT]: 'CLOSE-WAIT',
  [TCP_LAST_ACK]: 'LAST-ACK',
  [TCP_LISTEN]: 'LISTEN',
  [TCP_CLOSING]: 'CLOSING',
  [TCP_NEW_SYN_RECV]: 'NEW-SYN-RECV',
};

/** sk_shutdown bits. */
export const RCV_SHUTDOWN = 1;
export const SEND_SHUTDOWN = 2;
export const SHUTDOWN_MASK = 3;

/** sk_userlocks: SO_SNDBUF / SO_RCVBUF set by the user (no autotuning); bind() fixed the address / the port (disconnect keeps them). */
export const SOCK_SNDBUF_LOCK = 1;
export const SOCK_RCVBUF_LOCK = 2;
export const SOCK_BINDADDR_LOCK = 4;
export const SOCK_BINDPORT_LOCK = 8;

/** net.core.rmem_default / wmem_default / rmem_max / wmem_max. */
export const SYSCTL_RMEM_DEFAULT = 212_992;
export const SYSCTL_WMEM_DEFAULT = 212_992;
export const SYSCTL_RMEM_MAX = 212_992;
export const SYSCTL_WMEM_MAX = 212_992;
/** SOCK_MIN_SNDBUF / SOCK_MIN_RCVBUF (2 * (2048 + sizeof sk_buff) rounded, as Linux computes them on x86-64). */
export const SOCK_MIN_SNDBUF = 4608;
export const SOCK_MIN_RCVBUF = 2304;

// --- struct sock_common ---------------------------------------------------------------

/**
 * LOOPBACK4_IPV6 (127.0.0.6): the IPv4 rcv_saddr an AF_INET6 socket bound to
 * a real IPv6 address gets, so IPv4 lookups never match it (inet6_bind).
 */
export const LOOPBACK4_IPV6 = 0x7f000006;

/** What the tables need of a socket (struct sock / inet_sock / inet_connection_sock parts). */
export interface InetSock {
  /** TCP_* above (sk_state). */
  state: number;
  /** Local bound address, 0 = INADDR_ANY (sk_rcv_saddr). */
  rcvSaddr: number;
  /** Local port (inet_num), 0 if unbound. */
  num: number;
  /** Remote address, 0 if unconnected (inet_daddr). */
  daddr: number;
  /** Remote port (inet_dport). */
  dport: number;
  /** SO_REUSEADDR (sk_reuse). */
  reuse: boolean;
  /** SO_REUSEPORT (sk_reuseport). */
  reuseport: boolean;
  /** Owner uid, for SO_REUSEPORT's same-user rule (sock_i_uid). */
  uid: number;
  /** AF_INET or AF_INET6 (sk_family). */
  family: number;
  /** IPV6_V6ONLY (sk_ipv6only): an AF_INET6 socket that takes no IPv4. */
  ipv6only: boolean;
  /**
   * The connection runs over IPv6 (icsk_af_ops is ipv6_specific): false for
   * AF_INET and for an AF_INET6 socket whose peer is v4-mapped. Decides the
   * established-hash pool; fixed while the socket is hashed.
   */
  ipv6: boolean;
  /** sk_v6_rcv_saddr (AF_INET6 only, else null): local address, :: = any, v4-mapped for IPv4. */
  v6RcvSaddr: Uint8Array | null;
  /** sk_v6_daddr (AF_INET6 only, else null): the peer, v4-mapped for an IPv4 peer. */
  v6Daddr: Uint8Array | null;
  /** Managed by the tables: do not touch outside this module. */
  hashLinks: HashLinks;
}

/**
 * A SO_REUSEPORT listening group (struct sock_reuseport): listeners on the
 * same exact address and port, same owner. Members are kept dense; removing
 * one moves the last member into its slot, as reuseport_detach_sock does.
 */
export class ReuseportGroup {
  readonly socks: InetSock[] = [];
  constructor(readonly uid: number) {}
}

/**
 * struct inet_bind_bucket: one per local port in use.
 *
 * fastreuse: 1 = every owner has SO_REUSEADDR and none listens, so another
 * such socket may join without a conflict walk; 0 = walk; -1 = created by
 * connect() (__inet_hash_connect), which bind() never fast-paths and which
 * connect() may share as long as the 4-tuple is unique.
 * fastreuseport: FASTREUSEPORT_ANY / _STRICT with fastuid and fastRcvSaddr,
 * 0 = walk, -1 = created by connect().
 */
export class InetBindBucket {
  fastreuse = 0;
  fastreuseport = 0;
  fastuid = 0;
  fastRcvSaddr = 0;
  /** The family, IPV6_V6ONLY and IPv6 address of the socket fastreuseport STRICT was recorded from. */
  fastSkFamily = AF_INET;
  fastIpv6Only = false;
  readonly fastV6RcvSaddr = new Uint8Array(16);
  /** Head of the owners list (tb->owners), chained through hashLinks.bnext/bprev. */
  owners: InetSock | null = null;
  /** Number of owners. */
  count = 0;
  constructor(readonly port: number) {}
}

/**
 * tb->fastreuseport. ANY: any SO_REUSEPORT socket of fastuid may join
 * without a walk. STRICT: only one bound to fastRcvSaddr, or to anything
 * when fastRcvSaddr is the wildcard.
 */
export const FASTREUSEPORT_ANY = 1;
export const FASTREUSEPORT_STRICT = 2;

/**
 * Per-socket link state for the three tables (the sk_node, sk_bind_node,
 * sk_hash, icsk_bind_hash and sk_reuseport_cb of struct sock), allocated
 * once with the socket. Read-only outside this module.
 */
export class HashLinks {
  // --- ehash --------------------------------------------------------------
  /** In the established hash. */
  inEhash = false;
  /** sk_hash: inetEhashfn() of the 4-tuple, int32. */
  hash = 0;
  /** Hashed in the IPv6 half (the socket was hashed with ipv6 set). */
  ehash6 = false;
  // --- lhash2 -------------------------------------------------------------
  /** In the listening hash. */
  listening = false;
  /** The (address, port) hash the listener is chained under, int32. */
  lhash = 0;
  lnext: InetSock | null = null;
  lprev: InetSock | null = null;
  /** sk_reuseport_cb: the group this listener belongs to, if SO_REUSEPORT. */
  reuseportGroup: ReuseportGroup | null = null;
  // --- bhash --------------------------------------------------------------
  /** icsk_bind_hash: the bind bucket holding this socket's port. */
  tb: InetBindBucket | null = null;
  bnext: InetSock | null = null;
  bprev: InetSock | null = null;

  /** Holds a port in a bind bucket. */
  get bound(): boolean {
    return this.tb !== null;
  }
}

/**
 * struct sock_common: the tuple and table links every hashed sock has (full
 * sockets, request socks and TIME_WAIT socks all are one of these).
 */
export class SockCommon implements InetSock {
  state = TCP_CLOSE;
  rcvSaddr = 0;
  num = 0;
  daddr = 0;
  dport = 0;
  reuse = false;
  reuseport = false;
  uid = 0;
  family = AF_INET;
  ipv6only = false;
  ipv6 = false;
  v6RcvSaddr: Uint8Array | null = null;
  v6Daddr: Uint8Array | null = null;
  readonly hashLinks = new HashLinks();

  /** The family becomes AF_INET6 (sk_family): the v6 address fields exist from now on (::, unconnected). */
  setFamily6(): void {
    this.family = AF_INET6;
    if (this.v6RcvSaddr === null) {
      this.v6RcvSaddr = new Uint8Array(16);
      this.v6Daddr = new Uint8Array(16);
    }
  }

  /** Take over another sock's identity: family, addresses, ports, reuse flags, owner. */
  copyTuple(from: InetSock): void {
    this.rcvSaddr = from.rcvSaddr;
    this.num = from.num;
    this.daddr = from.daddr;
    this.dport = from.dport;
    this.reuse = from.reuse;
    this.reuseport = from.reuseport;
    this.uid = from.uid;
    this.ipv6only = from.ipv6only;
    this.ipv6 = from.ipv6;
    if (from.family === AF_INET6) {
      this.setFamily6();
      this.v6RcvSaddr!.set(from.v6RcvSaddr!);
      this.v6Daddr!.set(from.v6Daddr!);
    } else {
      this.family = from.family;
    }
  }
}

/** One 32-bit word of an address array, big-endian, as int32. */
export function addrWord(a: Uint8Array, off: number): number {
  return (a[off] << 24) | (a[off + 1] << 16) | (a[off + 2] << 8) | a[off + 3];
}

/** ipv6_addr_any */
export function v6Any(a: Uint8Array, off: number): boolean {
  return (addrWord(a, off) | addrWord(a, off + 4) | addrWord(a, off + 8) | addrWord(a, off + 12)) === 0;
}

/** ::ffff:0:0/96 */
export function v6Mapped(a: Uint8Array, off: number): boolean {
  return (addrWord(a, off) | addrWord(a, off + 4)) === 0 && addrWord(a, off + 8) === 0xffff;
}

/** ipv6_addr_equal */
export function v6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return (
    addrWord(a, aOff) === addrWord(b, bOff) &&
    addrWord(a, aOff + 4) === addrWord(b, bOff + 4) &&
    addrWord(a, aOff + 8) === addrWord(b, bOff + 8) &&
    addrWord(a, aOff + 12) === addrWord(b, bOff + 12)
  );
}

// --- struct sock -----------------------------------------------------------------------

/** Who is told when a socket changes: sk_data_ready, sk_write_space, sk_state_change, sk_error_report. */
export type SockWake = (sk: Sock, events: number) => void;

/**
 * sock_exterr_skb: one entry of the error queue (sk_error_queue), as
 * recvmsg(MSG_ERRQUEUE) reports it: struct sock_extended_err's fields, the
 * offender's address (ICMP errors; null when none), the skb's software
 * timestamp (wall-clock ms; 0 = none) and the payload it carries (the
 * original datagram of an ICMP error, the stamped data of a timestamp
 * without OPT_TSONLY; null = none). Zerocopy completions carry lo..hi in
 * ee_info..ee_data, extended in place by later consecutive ones.
 */
export interface SockExterrSkb {
  eeErrno: number;
  eeOrigin: number;
  eeType: number;
  eeCode: number;
  eeInfo: number;
  eeData: number;
  offender: SockAddr | null;
  tstamp: number;
  payload: Buffer | null;
  /** msg_name of the read: where the erring packet was going (ICMP errors), or null. */
  name: SockAddr | null;
}

/** One control message of a recvmsg: level, type and the data as the kernel writes it (x86-64). */
export interface Cmsg {
  level: number;
  type: number;
  data: Buffer;
}

/** inet_sock / ipv6_pinfo flags a program sets to get more from recvmsg (Sock.cmsgFlags). */
export const INET_RECVERR = 1;
export const INET_PKTINFO = 2;
export const INET6_RECVERR = 4;
export const INET6_RXINFO = 8;

/** PROT_SOCK: ports below it are bound only with CAP_NET_BIND_SERVICE. */
export const PROT_SOCK = 1024;

/**
 * struct msghdr's results of a recvmsg: the source address (msg_name;
 * family AF_UNSPEC when there is none), msg_flags, for a datagram its
 * full length (-1 when no datagram was read), and the control messages.
 * Made once by a caller and reused.
 */
export class MsgHdr {
  readonly name: SockAddr = sockAddr();
  flags = 0;
  len = -1;
  /** The control messages, in the order the kernel puts them (emptied by each recvmsg). */
  cmsgs: Cmsg[] = [];
}

/** An empty address to fill (addr6 allocated, so an IPv6 fill copies into it). */
export function sockAddr(family = AF_UNSPEC): SockAddr {
  return { family, port: 0, addr: 0, addr6: new Uint8Array(16), flowinfo: 0, scopeId: 0 };
}

/**
 * struct proto: one protocol's socket calls over one family (tcp_prot,
 * tcpv6_prot, udp_prot, udpv6_prot), reached as sk->sk_prot from the
 * family's operations (inet_sendmsg calls sk->sk_prot->sendmsg) and from
 * the socket layer (SO_KEEPALIVE). Each returns 0 (or a count) or a
 * negative errno, and none waits.
 */
export interface SockProt<S extends Sock = Sock> {
  /** As /proc/net/protocols names it: TCP, TCPv6, UDP, UDPv6. */
  readonly name: string;
  close(sk: S): void;
  /** __inet_bind / __inet6_bind, after the family checked the address (inet_bind). */
  bind(sk: S, addr: SockAddr): number;
  connect(sk: S, addr: SockAddr): number;
  /** A connection-oriented protocol's next established child (-EAGAIN: none yet). */
  accept?(sk: S): S | number;
  /** SIOCINQ, SIOCOUTQ: the value, or a negative errno (-ENOTTY for another request). */
  ioctl(sk: S, cmd: number): number;
  shutdown(sk: S, how: number): number;
  setsockopt(sk: S, level: number, optname: number, optval: Buffer): number;
  getsockopt(sk: S, level: number, optname: number): Buffer | number;
  sendmsg(sk: S, data: Uint8Array, flags: number, to: SockAddr | null): number;
  recvmsg(sk: S, into: Uint8Array, flags: number, msg: MsgHdr | null, nonblock: boolean): number;
  /** SO_KEEPALIVE changed (tcp_set_keepalive). */
  keepalive?(sk: S, on: boolean): void;
  /** The protocol's share of the stack's memory (memory_allocated, memory_pressure, sysctl_mem). */
  readonly memory?: ProtoMemory;
}

// --- memory accounting (sk_mem_schedule and friends) -------------------------------------

/** PAGE_SIZE: the unit in which sockets reserve memory from their protocol (sk_forward_alloc, tcp_mem). */
export const SK_MEM_QUANTUM = 4096;
/** What a reservation is for (__sk_mem_raise_allocated's kind). */
export const SK_MEM_SEND = 0;
export const SK_MEM_RECV = 1;

/** sk_mem_pages: whole pages for `amt` bytes. */
export function skMemPages(amt: number): number {
  return Math.ceil(amt / SK_MEM_QUANTUM);
}

/**
 * __sk_mem_raise_allocated: account `amt` more pages to the protocol and
 * decide whether the socket may have them. Under the min: yes, and
 * pressure ends. Past the pressure limit: pressure begins. Past the max:
 * no. In between: yes while the socket holds less than the protocol's
 * minimum buffer (tcp_rmem[0], tcp_wmem[0]), or, for a protocol with a
 * pressure state, while it is not under pressure or the socket holds less
 * than its fair share of the max. A stream socket refused send
 * memory has its send buffer moderated, and is let through if it is at
 * its send buffer anyway (the caller then waits for room, not for memory).
 */
function skMemRaiseAllocated(sk: Sock, mem: ProtoMemory, size: number, amt: number, kind: number): boolean {
  const limits = mem.limits();
  const allocated = mem.add(amt);
  if (allocated <= limits[0]) {
    mem.leavePressure();
    return true;
  }
  if (allocated > limits[1]) mem.enterPressure();
  if (allocated <= limits[2]) {
    if (kind === SK_MEM_RECV) {
      if (sk.rmemAlloc < mem.rmem0()) return true;
    } else if (sk.wmemQueued < mem.wmem0()) {
      return true;
    }
    if (mem.hasPressure) {
      if (!mem.pressure) return true;
      const share = skMemPages(sk.wmemQueued + sk.rmemAlloc + sk.forwardAlloc);
      if (limits[2] > Math.max(1, mem.sockets()) * share) return true;
    }
  }
  // suppress_allocation.
  if (kind === SK_MEM_SEND && sk.type === SOCK_STREAM) {
    skStreamModerateSndbuf(sk);
    if (sk.wmemQueued + size >= sk.sndbuf) return true;
  }
  mem.add(-amt);
  return false;
}

/**
 * __sk_mem_schedule (sk_rmem_schedule, sk_wmem_schedule): make sure the
 * socket has `size` bytes reserved, reserving whole pages from its
 * protocol if not. False: the protocol refuses (over its limits).
 */
export function skMemSchedule(sk: Sock, size: number, kind: number): boolean {
  if (size <= sk.forwardAlloc) return true;
  const mem = sk.prot?.memory;
  if (!mem) return true;
  const amt = skMemPages(size - sk.forwardAlloc);
  sk.forwardAlloc += amt * SK_MEM_QUANTUM;
  if (skMemRaiseAllocated(sk, mem, size, amt, kind)) return true;
  sk.forwardAlloc -= amt * SK_MEM_QUANTUM;
  return false;
}

/** sk_forced_mem_schedule: reserve regardless of the limits (a socket must always make some progress). */
export function skForcedMemSchedule(sk: Sock, size: number): void {
  if (size <= sk.forwardAlloc) return;
  const mem = sk.prot?.memory;
  if (!mem) return;
  const amt = skMemPages(size - sk.forwardAlloc);
  sk.forwardAlloc += amt * SK_MEM_QUANTUM;
  if (mem.add(amt) > mem.limits()[1]) mem.enterPressure();
}

/** sk_mem_charge: bytes now held by the socket's queues, from its reservation. */
export function skMemCharge(sk: Sock, size: number): void {
  if (sk.prot?.memory) sk.forwardAlloc -= size;
}

/**
 * What a socket may keep reserved and unused before pages go back to the
 * protocol at once: a bulk flow frees and takes again a window's worth per
 * round trip, and need not pass every page through the protocol's count.
 * Under pressure every whole page goes back (skMemReclaim is also called
 * after each read and when the socket goes).
 */
export const SK_RECLAIM_THRESHOLD = 64 * 1024;

/** sk_mem_uncharge: bytes freed from the socket's queues back to its reservation. */
export function skMemUncharge(sk: Sock, size: number): void {
  const mem = sk.prot?.memory;
  if (!mem) return;
  sk.forwardAlloc += size;
  if (sk.forwardAlloc >= SK_RECLAIM_THRESHOLD || (mem.pressure && sk.forwardAlloc >= SK_MEM_QUANTUM)) skMemReclaim(sk);
}

/**
 * sk_mem_reclaim: give the protocol back the whole pages of the socket's
 * reservation it does not use (__sk_mem_reduce_allocated); pressure ends
 * once the protocol is back under its min.
 */
export function skMemReclaim(sk: Sock): void {
  const mem = sk.prot?.memory;
  if (!mem) return;
  const pages = Math.floor(sk.forwardAlloc / SK_MEM_QUANTUM);
  if (pages <= 0) return;
  sk.forwardAlloc -= pages * SK_MEM_QUANTUM;
  const allocated = mem.add(-pages);
  if (mem.pressure && allocated < mem.limits()[0]) mem.leavePressure();
}

/** sk_stream_moderate_sndbuf: refused memory, a stream socket's send buffer shrinks to what it holds (half of it, at least the minimum). */
export function skStreamModerateSndbuf(sk: Sock): void {
  if (sk.userlocks & SOCK_SNDBUF_LOCK) return;
  sk.sndbuf = Math.min(sk.sndbuf, Math.max(sk.wmemQueued >> 1, SOCK_MIN_SNDBUF));
}

/** sk_under_memory_pressure: the socket's protocol is under pressure. */
export function skUnderMemoryPressure(sk: Sock): boolean {
  return sk.prot?.memory?.pressure === true;
}

/** The socket's protocol has reserved its min (sk_memory_allocated >= sk_prot_mem_limits(sk, 0)). */
export function skMemoryAboveMin(sk: Sock): boolean {
  const mem = sk.prot?.memory;
  return mem !== undefined && mem.memoryAllocated() >= mem.limits()[0];
}

/** What a socket has only under a rarely used option: made on the first write of a value other than the default. */
export class SockCold {
  /** SO_RCVTIMEO / SO_SNDTIMEO in ms, 0 = forever (the API's blocking calls use them). */
  rcvtimeo = 0;
  sndtimeo = 0;
  /** SO_LINGER: -1 off, else seconds. */
  lingerSec = -1;
  /** SO_BROADCAST (SOCK_BROADCAST). */
  broadcast = false;
  /** SO_ZEROCOPY (SOCK_ZEROCOPY): MSG_ZEROCOPY sends report their completion on the error queue. */
  zerocopy = false;
  /** sk_zckey: the id the next MSG_ZEROCOPY send gets. */
  zckey = 0;
  /** sk_error_queue: completions and errors for recvmsg(MSG_ERRQUEUE), oldest first. */
  errQueue: SockExterrSkb[] | null = null;
  /** What the error queue's entries take of the receive budget (their truesize). */
  errQueueMem = 0;
  /** SO_TIMESTAMPING's flags (sk_tsflags) and the OPT_ID key base (sk_tskey). */
  tsflags = 0;
  tskey = 0;
  /** SO_MARK (sk_mark): skb->mark of what the socket sends. */
  mark = 0;
  /** INET_RECVERR | INET_PKTINFO | INET6_RECVERR | INET6_RXINFO. */
  cmsgFlags = 0;
}

/**
 * struct sock: what every socket has beyond the tuple. Protocols extend it
 * (TcpSock, UdpSock); the rare options live in a cold part made on first
 * use, so an idle connection carries none of them.
 */
export class Sock extends SockCommon {
  /** The wake-up callback (see SockWake); null while nobody waits. */
  wake: SockWake | null = null;
  /** sk_prot: the protocol's calls (tcp_prot, udpv6_prot, ...), set when the socket is made. */
  prot: SockProt | null = null;
  /** sk_err: a pending error, as a positive errno. */
  err = 0;
  /** sk_err_soft: the last soft error (ICMP), reported once the connection gives up or by SO_ERROR. */
  errSoft = 0;
  /** sk_shutdown: RCV_SHUTDOWN | SEND_SHUTDOWN. */
  shutdown = 0;
  /** sk_userlocks: SOCK_*_LOCK. */
  userlocks = 0;
  sndbuf: number;
  rcvbuf: number;
  /** sk_wmem_queued: bytes queued for sending, with their overhead. */
  wmemQueued = 0;
  /** sk_rmem_alloc: bytes the receive queues hold (truesize, for UDP). */
  rmemAlloc = 0;
  /** SO_RCVLOWAT. */
  rcvlowat = 1;
  /** SOCK_NOSPACE: a writer found no room and waits for write space. */
  noSpace = false;
  /** SO_KEEPALIVE (SOCK_KEEPOPEN). */
  keepaliveOn = false;
  /** IP_TOS / IPV6_TCLASS of what the socket sends. */
  tos = 0;
  /** sk_pacing_rate / sk_max_pacing_rate, bytes per second; Infinity is ~0UL (no limit). */
  pacingRate = Infinity;
  maxPacingRate = Infinity;
  /** sk_pacing_status: SK_PACING_NONE, _NEEDED (TCP paces itself), _FQ (the fq stage paces). */
  pacingStatus = 0;
  /** sk_pacing_shift: TSO autosizing aims at 2^-shift s of data per skb. */
  pacingShift = 10;
  /** inet_id: the IP ID counter of a connected socket's DF packets. */
  inetId = 0;
  /** sk_forward_alloc: bytes reserved from the protocol (whole pages) and not yet charged to a queue. */
  forwardAlloc = 0;
  #cold: SockCold | null = null;

  constructor(
    /** SOCK_STREAM or SOCK_DGRAM (sk_type). */
    readonly type: number,
    /** IPPROTO_TCP or IPPROTO_UDP (sk_protocol). */
    readonly protocol: number,
    sndbuf: number,
    rcvbuf: number,
  ) {
    super();
    this.sndbuf = sndbuf;
    this.rcvbuf = rcvbuf;
  }

  /** The cold part, made now if need be; a subclass may make a larger one (newCold). */
  protected coldPart(): SockCold {
    return (this.#cold ??= this.newCold());
  }

  protected get cold(): SockCold | null {
    return this.#cold;
  }

  protected newCold(): SockCold {
    return new SockCold();
  }

  /**
   * sk_write_space: room was made in the send buffer (SO_SNDBUF grew it).
   * A stream socket wakes a writer only past sk_stream_min_wspace (TcpSock).
   */
  writeSpace(): void {
    if (this.wake) this.wake(this, POLLOUT);
  }

  // A read before the cold part exists gives the default; a write of the
  // default does not create it.
  get rcvtimeo(): number {
    return this.#cold === null ? 0 : this.#cold.rcvtimeo;
  }
  set rcvtimeo(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().rcvtimeo = v;
  }
  get sndtimeo(): number {
    return this.#cold === null ? 0 : this.#cold.sndtimeo;
  }
  set sndtimeo(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().sndtimeo = v;
  }
  get lingerSec(): number {
    return this.#cold === null ? -1 : this.#cold.lingerSec;
  }
  set lingerSec(v: number) {
    if (this.#cold !== null || v !== -1) this.coldPart().lingerSec = v;
  }
  get broadcast(): boolean {
    return this.#cold === null ? false : this.#cold.broadcast;
  }
  set broadcast(v: boolean) {
    if (this.#cold !== null || v) this.coldPart().broadcast = v;
  }
  get zerocopy(): boolean {
    return this.#cold === null ? false : this.#cold.zerocopy;
  }
  set zerocopy(v: boolean) {
    if (this.#cold !== null || v) this.coldPart().zerocopy = v;
  }
  get zckey(): number {
    return this.#cold === null ? 0 : this.#cold.zckey;
  }
  set zckey(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().zckey = v;
  }
  get tsflags(): number {
    return this.#cold === null ? 0 : this.#cold.tsflags;
  }
  set tsflags(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().tsflags = v;
  }
  get tskey(): number {
    return this.#cold === null ? 0 : this.#cold.tskey;
  }
  set tskey(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().tskey = v;
  }
  get cmsgFlags(): number {
    return this.#cold === null ? 0 : this.#cold.cmsgFlags;
  }
  set cmsgFlags(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().cmsgFlags = v;
  }
  get mark(): number {
    return this.#cold === null ? 0 : this.#cold.mark;
  }
  set mark(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().mark = v;
  }
  /**
   * Where SOF_TIMESTAMPING_OPT_ID's counter starts when it is turned on
   * (sock_set_timestamping): 0 for a datagram socket; a TCP socket counts
   * bytes from snd_una (or write_seq with OPT_ID_TCP), and refuses in
   * CLOSE or LISTEN (a negative errno).
   */
  tskeyBase(_optIdTcp: boolean): number {
    return 0;
  }
  /** Entries on the error queue. */
  get errQueueLen(): number {
    const q = this.#cold === null ? null : this.#cold.errQueue;
    return q === null ? 0 : q.length;
  }
  get errQueueMem(): number {
    return this.#cold === null ? 0 : this.#cold.errQueueMem;
  }
  set errQueueMem(v: number) {
    if (this.#cold !== null || v !== 0) this.coldPart().errQueueMem = v;
  }
  /** The error queue's oldest entry, or null (skb_peek). */
  errQueuePeek(): SockExterrSkb | null {
    const q = this.#cold === null ? null : this.#cold.errQueue;
    return q === null || q.length === 0 ? null : q[0];
  }
  /** The error queue's last entry, or null (completions coalesce into it). */
  errQueueTail(): SockExterrSkb | null {
    const q = this.#cold === null ? null : this.#cold.errQueue;
    return q === null || q.length === 0 ? null : q[q.length - 1];
  }

  /** sock_queue_err_skb: queue an entry on the error queue and report POLLERR. */
  errQueuePush(e: SockExterrSkb): void {
    (this.coldPart().errQueue ??= []).push(e);
    if (this.wake) this.wake(this, POLLERR);
  }

  /** sock_dequeue_err_skb (ip_recv_error): the oldest entry, or -EAGAIN. */
  errQueueShift(): SockExterrSkb | number {
    const q = this.#cold === null ? null : this.#cold.errQueue;
    return q === null || q.length === 0 ? -EAGAIN : q.shift()!;
  }

  /** The error queue purged (the socket is destroyed). */
  errQueuePurge(): void {
    if (this.#cold !== null) {
      this.#cold.errQueue = null;
      this.#cold.errQueueMem = 0;
    }
  }
}

/** sock_error: take the pending error (as a positive errno, 0 if none). */
export function sockError(sk: Sock): number {
  const e = sk.err;
  sk.err = 0;
  return e;
}

// --- SOL_SOCKET options ----------------------------------------------------------------

/** An option's int value (Linux reads an int from a shorter optval as EINVAL). */
function optInt(optval: Buffer): number {
  return optval.length < 4 ? NaN : optval.readInt32LE(0);
}

/** An int optval (the value options of int type are read back as). */
export function sockOptInt(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}

/** sock_set_timeout: a struct timeval (64-bit on x86-64) as ms; 0 = forever; -EDOM for bad microseconds. */
function sockSetTimeout(optval: Buffer): number {
  if (optval.length < 16) return -EINVAL;
  const sec = Number(optval.readBigInt64LE(0));
  const usec = Number(optval.readBigInt64LE(8));
  if (usec < 0 || usec >= 1_000_000) return -EDOM;
  if (sec < 0) return 0;
  return sec * 1000 + Math.ceil(usec / 1000);
}

function timevalFromMs(ms: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  b.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  return b;
}

/**
 * sock_setsockopt: a SOL_SOCKET option on any socket, optval as the
 * program passed it (an int, a struct timeval, a struct linger). Returns 0
 * or a negative errno; -ENOPROTOOPT for options Linux does not have or
 * that cannot be set (SO_TYPE, SO_ERROR, ...).
 */
export function sockSetsockopt(sk: Sock, optname: number, optval: Buffer): number {
  switch (optname) {
    case SO_RCVTIMEO:
    case SO_SNDTIMEO: {
      const ms = sockSetTimeout(optval);
      if (ms < 0) return ms;
      if (optname === SO_RCVTIMEO) sk.rcvtimeo = ms;
      else sk.sndtimeo = ms;
      return 0;
    }
    case SO_MAX_PACING_RATE: {
      // A u32 (~0U meaning ~0UL), or a u64 from an optval of 8 bytes or more.
      if (optval.length < 4) return -EINVAL;
      const v = optval.length >= 8 ? optval.readBigUInt64LE(0) : BigInt(optval.readUInt32LE(0));
      const rate = v === 0xffff_ffff_ffff_ffffn || (optval.length < 8 && v === 0xffff_ffffn) ? Infinity : Number(v);
      // Any limit asks for pacing (SK_PACING_NEEDED unless fq paces already); the rate drops to it now.
      if (rate !== Infinity && sk.pacingStatus === SK_PACING_NONE) sk.pacingStatus = SK_PACING_NEEDED;
      sk.maxPacingRate = rate;
      if (rate < sk.pacingRate) sk.pacingRate = rate;
      return 0;
    }
    case SO_LINGER: {
      if (optval.length < 8) return -EINVAL;
      const on = optval.readInt32LE(0);
      const secs = optval.readInt32LE(4);
      sk.lingerSec = on ? Math.max(0, secs) : -1;
      return 0;
    }
  }
  const val = optInt(optval);
  if (Number.isNaN(val)) return -EINVAL;
  switch (optname) {
    case SO_REUSEADDR:
      sk.reuse = val !== 0;
      return 0;
    case SO_REUSEPORT:
      sk.reuseport = val !== 0;
      return 0;
    case SO_BROADCAST:
      sk.broadcast = val !== 0;
      return 0;
    case SO_KEEPALIVE:
      sk.prot?.keepalive?.(sk, val !== 0);
      sk.keepaliveOn = val !== 0;
      return 0;
    case SO_SNDBUF:
      // Taken as unsigned (a negative value is huge), capped at wmem_max, then
      // doubled for the bookkeeping overhead; autotuning stops.
      sk.userlocks |= SOCK_SNDBUF_LOCK;
      sk.sndbuf = Math.max(Math.min(val >>> 0, SYSCTL_WMEM_MAX) * 2, SOCK_MIN_SNDBUF);
      sk.writeSpace();
      return 0;
    case SO_RCVBUF:
      sk.userlocks |= SOCK_RCVBUF_LOCK;
      sk.rcvbuf = Math.max(Math.min(val >>> 0, SYSCTL_RMEM_MAX) * 2, SOCK_MIN_RCVBUF);
      return 0;
    case SO_RCVLOWAT:
      sk.rcvlowat = val < 0 ? 0x7fffffff : val || 1;
      return 0;
    case SO_ZEROCOPY:
      if (val < 0 || val > 1) return -EINVAL;
      sk.zerocopy = val === 1;
      return 0;
    case SO_MARK:
      // CAP_NET_ADMIN is the daemon's own: every caller has it in-process.
      sk.mark = val;
      return 0;
    case SO_TIMESTAMPING:
      return sockSetTimestamping(sk, val);
    default:
      return -ENOPROTOOPT;
  }
}

/**
 * sock_set_timestamping: SO_TIMESTAMPING's flags. Unknown bits and
 * OPT_ID_TCP without OPT_ID are EINVAL; turning OPT_ID on starts the key
 * counter (Sock.tskeyBase); BIND_PHC needs a PTP clock, which no device
 * of this stack has.
 */
function sockSetTimestamping(sk: Sock, val: number): number {
  if (val & ~SOF_TIMESTAMPING_MASK) return -EINVAL;
  if (val & SOF_TIMESTAMPING_OPT_ID_TCP && !(val & SOF_TIMESTAMPING_OPT_ID)) return -EINVAL;
  if (val & SOF_TIMESTAMPING_OPT_ID && !(sk.tsflags & SOF_TIMESTAMPING_OPT_ID)) {
    const base = sk.tskeyBase((val & SOF_TIMESTAMPING_OPT_ID_TCP) !== 0);
    if (base < 0) return base;
    sk.tskey = base;
  }
  if (val & SOF_TIMESTAMPING_BIND_PHC) return -EOPNOTSUPP;
  sk.tsflags = val;
  return 0;
}

/** sock_setsockopt with an int optval (the in-process callers' form). */
export function sockSetsockoptInt(sk: Sock, optname: number, val: number): number {
  if (!Number.isInteger(val)) return -EINVAL;
  return sockSetsockopt(sk, optname, sockOptInt(val));
}

/**
 * sk_getsockopt: a SOL_SOCKET option's value as Linux writes it to
 * optval, or a negative errno. SO_ERROR takes the pending error, then the
 * soft one, as sock_error and Linux's xchg of sk_err_soft do.
 */
export function sockGetsockopt(sk: Sock, optname: number, optlen = 8): Buffer | number {
  switch (optname) {
    case SO_RCVTIMEO:
      return timevalFromMs(sk.rcvtimeo);
    case SO_SNDTIMEO:
      return timevalFromMs(sk.sndtimeo);
    case SO_MAX_PACING_RATE: {
      // The u64 form when the caller has room for it, else the 32-bit one, saturated (sk_getsockopt).
      if (optlen < 8) {
        const b4 = Buffer.alloc(4);
        b4.writeUInt32LE(Math.min(sk.maxPacingRate, 0xffffffff));
        return b4;
      }
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(sk.maxPacingRate === Infinity ? 0xffff_ffff_ffff_ffffn : BigInt(sk.maxPacingRate));
      return b;
    }
    case SO_LINGER: {
      const b = Buffer.alloc(8);
      b.writeInt32LE(sk.lingerSec >= 0 ? 1 : 0, 0);
      b.writeInt32LE(Math.max(0, sk.lingerSec), 4);
      return b;
    }
  }
  const v = sockGetsockoptInt(sk, optname);
  return v < 0 ? v : sockOptInt(v);
}

/** sk_getsockopt for the int-valued options: the value, or a negative errno. */
export function sockGetsockoptInt(sk: Sock, optname: number): number {
  switch (optname) {
    case SO_REUSEADDR:
      return sk.reuse ? 1 : 0;
    case SO_REUSEPORT:
      return sk.reuseport ? 1 : 0;
    case SO_BROADCAST:
      return sk.broadcast ? 1 : 0;
    case SO_KEEPALIVE:
      return sk.keepaliveOn ? 1 : 0;
    case SO_SNDBUF:
      return sk.sndbuf;
    case SO_RCVBUF:
      return sk.rcvbuf;
    case SO_RCVLOWAT:
      return sk.rcvlowat;
    case SO_ZEROCOPY:
      return sk.zerocopy ? 1 : 0;
    case SO_MARK:
      return sk.mark;
    case SO_TIMESTAMPING:
      return sk.tsflags;
    case SO_MAX_PACING_RATE:
      return Math.min(sk.maxPacingRate, 0xffffffff); // the 32-bit form
    case SO_TYPE:
      return sk.type;
    case SO_PROTOCOL:
      return sk.protocol;
    case SO_DOMAIN:
      return sk.family;
    case SO_ACCEPTCONN:
      return sk.state === TCP_LISTEN ? 1 : 0;
    case SO_ERROR: {
      let e = sockError(sk);
      if (!e) {
        e = sk.errSoft;
        sk.errSoft = 0;
      }
      return e;
    }
    default:
      return -ENOPROTOOPT;
  }
}

// --- the wake-up scheduler -----------------------------------------------------------------

/**
 * A socket's user (an API file, a built-in service) runs its work once
 * after the stack is done with the packet or call that woke it, not inside
 * it: wake-ups are collected, their events or'ed, and `run` is called with
 * them from a microtask (one for every waiter due: runWaitersDue). One run
 * per user, not per wake-up.
 */
/**
 * The waiters due to run: one microtask runs them all, in the order they
 * were woken (a waiter woken while they run is run in the same pass), so
 * a burst of wake-ups from one batch of packets costs one microtask, not
 * one each (Node's queueMicrotask also makes an async resource per call).
 */
const waitersDue: SockWaiter[] = [];
let waitersQueued = false;
function runWaitersDue(): void {
  // Index, not iterator: waiters woken by those running are appended and run in this pass.
  for (let i = 0; i < waitersDue.length; i++) {
    const w = waitersDue[i];
    waitersDue[i] = undefined as unknown as SockWaiter;
    try {
      w.fire();
    } catch (e) {
      // One user's fault must not strand the others due in this pass: they run first.
      waitersDue.splice(0, i + 1);
      waitersQueued = waitersDue.length > 0;
      if (waitersQueued) queueMicrotask(runWaitersDue);
      throw e;
    }
  }
  waitersDue.length = 0;
  waitersQueued = false;
}

export class SockWaiter {
  #events = 0;
  #queued = false;
  #cancelled = false;

  constructor(readonly run: (events: number) => void) {}

  /** The sk.wake to install: collects events for the next run. */
  readonly wake = (_sk: Sock, events: number): void => {
    this.schedule(events);
  };

  /** Ask for a run (events or'ed into the next one). */
  schedule(events = 0): void {
    this.#events |= events;
    if (this.#queued || this.#cancelled) return;
    this.#queued = true;
    waitersDue.push(this);
    if (!waitersQueued) {
      waitersQueued = true;
      queueMicrotask(runWaitersDue);
    }
  }

  /** No more runs. */
  cancel(): void {
    this.#cancelled = true;
  }

  /** The run itself (from runWaitersDue). */
  fire(): void {
    this.#queued = false;
    if (this.#cancelled) return;
    const e = this.#events;
    this.#events = 0;
    this.run(e);
  }
}
