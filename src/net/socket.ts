/**
 * The socket layer between the system calls and the protocols (Linux's
 * net/socket.c and include/linux/net.h): a Socket pairs a protocol socket
 * (struct sock) with the operations of its family and type (struct
 * proto_ops), and socket(2) finds those through the families registered
 * with the stack (net_families). The API server calls every socket call
 * through this table, as the kernel calls sock->ops->connect.
 *
 * Calls never block here: a call that would wait returns -EAGAIN (or
 * -EINPROGRESS for connect) and its caller waits on the socket's wake-up.
 */
import { AF_INET6, EAFNOSUPPORT, SOL_SOCKET, type SockAddr } from '../uapi.js';
import { type Cmsg, MsgHdr, type Sock, sockGetsockopt, sockSetsockopt } from './core/sock.js';

/**
 * A reader of received data that takes it in place (read_actor_t, as
 * splice and the API's data descriptor use it): given bytes of the receive
 * queue, returns how many it took (fewer stops the read). A datagram
 * reader also gets the datagram's source.
 */
/** A reader that takes data in place: bytes at buf[off..off+len), a datagram's source and its control messages (none: undefined). */
export type ReadActor = (buf: Buffer, off: number, len: number, from?: SockAddr, cmsgs?: readonly Cmsg[]) => number;

/**
 * struct proto_ops: the calls of one family and socket type. Every one
 * returns 0 (or a count) or a negative errno; none waits.
 */
export interface ProtoOps<S extends Sock = Sock> {
  readonly family: number;
  /** close(2) of the last reference: the socket goes (sock_close -> inet_release). */
  release(sk: S): void;
  /**
   * `privileged`: the caller may bind a port below PROT_SOCK
   * (CAP_NET_BIND_SERVICE); -EACCES otherwise, after the family check.
   */
  bind(sk: S, addr: SockAddr, privileged: boolean): number;
  /** 0 once connected; -EINPROGRESS while a handshake runs (see connectWait). */
  connect(sk: S, addr: SockAddr): number;
  /**
   * The end of a waiting connect (inet_wait_for_connect's condition, then
   * __inet_stream_connect's result): -EINPROGRESS while the handshake runs,
   * 0 once connected, else the error that ended it (read once).
   */
  connectWait(sk: S): number;
  listen(sk: S, backlog: number): number;
  /** The next established connection, -EAGAIN when there is none yet. */
  accept(sk: S): S | number;
  /**
   * The local (peer false) or peer address into `addr`; -ENOTCONN for a peer
   * there is not. Peer 2 is accept's view (inet_accept's getname(..., 2)):
   * the peer of a connection that ended before it was accepted.
   */
  getname(sk: S, addr: SockAddr, peer: boolean | 2): number;
  /** The poll(2) events true now. */
  poll(sk: S): number;
  /** SIOCINQ / SIOCOUTQ: the value, or a negative errno. */
  ioctl(sk: S, cmd: number): number;
  shutdown(sk: S, how: number): number;
  /** An option at the protocol's levels (SOL_SOCKET is the socket layer's: sockSetsockopt). */
  setsockopt(sk: S, level: number, optname: number, optval: Buffer): number;
  /** The option's value as Linux writes it to optval, or a negative errno. */
  getsockopt(sk: S, level: number, optname: number): Buffer | number;
  /** Bytes taken (a stream may take fewer), or a negative errno; `to` null: the connected peer. */
  sendmsg(sk: S, data: Uint8Array, flags: number, to: SockAddr | null): number;
  /**
   * Bytes copied into `into` (0 at end of stream), or a negative errno
   * (-EAGAIN: nothing yet). `msg` gets the source and flags of a datagram.
   * `nonblock` tells a datagram socket whether a shut-down receive side
   * ends a wait (0) or is just empty (-EAGAIN).
   */
  recvmsg(sk: S, into: Uint8Array, flags: number, msg: MsgHdr | null, nonblock: boolean): number;
  /** Hand received data to `actor` in place, up to `max` bytes (tcp_read_sock, udp_read_skb). */
  readSock(sk: S, actor: ReadActor, max: number): number;
}

/** struct socket: the protocol socket and the operations it is called through. */
export class Socket<S extends Sock = Sock> {
  constructor(
    readonly sk: S,
    readonly ops: ProtoOps<S>,
  ) {}
}

/** struct net_proto_family: makes the sockets of one address family. */
export interface NetProtoFamily {
  readonly family: number;
  /** inet_create: a socket of `type`/`protocol` (0: the type's default), or a negative errno. */
  create(type: number, protocol: number, uid: number): Socket | number;
}

/** net_families: the address families a stack offers socket(2). */
export class NetFamilies {
  readonly #families = new Map<number, NetProtoFamily>();

  /** sock_register. */
  register(pf: NetProtoFamily): void {
    this.#families.set(pf.family, pf);
  }

  /** sock_unregister (the IPv6 layer going away). */
  unregister(family: number): void {
    this.#families.delete(family);
  }

  has(family: number): boolean {
    return this.#families.has(family);
  }

  /**
   * __sock_create: -EAFNOSUPPORT for a family the stack does not run; the
   * family answers -ESOCKTNOSUPPORT / -EPROTONOSUPPORT for the rest.
   */
  create(family: number, type: number, protocol: number, uid: number): Socket | number {
    const pf = this.#families.get(family);
    if (!pf) return -EAFNOSUPPORT;
    return pf.create(type, protocol, uid);
  }
}

/** setsockopt(2) after the descriptor: SOL_SOCKET is the socket layer's, the rest the protocol's (__sys_setsockopt). */
export function socketSetsockopt(sock: Socket, level: number, optname: number, optval: Buffer): number {
  if (level === SOL_SOCKET) return sockSetsockopt(sock.sk, optname, optval);
  return sock.ops.setsockopt(sock.sk, level, optname, optval);
}

/** getsockopt(2) after the descriptor (__sys_getsockopt); optlen is the caller's buffer (some options have two forms). */
export function socketGetsockopt(sock: Socket, level: number, optname: number, optlen = 8): Buffer | number {
  if (level === SOL_SOCKET) return sockGetsockopt(sock.sk, optname, optlen);
  return sock.ops.getsockopt(sock.sk, level, optname);
}

/** Whether an address is an IPv6 one with its bytes (the AF_INET6 calls' first check). */
export function isInet6(addr: SockAddr): addr is SockAddr & { addr6: Uint8Array } {
  return addr.family === AF_INET6 && addr.addr6 !== null;
}
