/**
 * The values programs see (Linux's include/uapi and asm-generic headers,
 * x86-64): address families, socket types and options, message flags,
 * poll events, ioctls, fcntl bits and errnos. Every layer takes them from
 * here (the stack, the API, the client library, the CLI); none defines its
 * own copy. Sections name the Linux header each group comes from.
 */

// --- linux/socket.h, bits/socket_type.h -----------------------------------------------

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

/** send/recv flags. */
export const MSG_OOB = 0x1;
export const MSG_PEEK = 0x2;
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x8;
export const MSG_DONTWAIT = 0x40;
export const MSG_EOR = 0x80;
export const MSG_WAITALL = 0x100;
export const MSG_ERRQUEUE = 0x2000;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_MORE = 0x8000;
export const MSG_ZEROCOPY = 0x4000000;
/** sendto/sendmsg on an unconnected TCP socket: connect with the data in the SYN (Fast Open). */
export const MSG_FASTOPEN = 0x20000000;

/** shutdown(2)'s how. */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

// --- asm-generic/socket.h -------------------------------------------------------------

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_BROADCAST = 6;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const SO_RCVLOWAT = 18;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;
export const SO_ACCEPTCONN = 30;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const SO_ZEROCOPY = 60;
export const SO_MARK = 36;
export const SO_MAX_PACING_RATE = 47;
export const SO_TIMESTAMPING = 37;
/** The control message SO_TIMESTAMPING reports with (struct scm_timestamping). */
export const SCM_TIMESTAMPING = SO_TIMESTAMPING;

// --- linux/net_tstamp.h ---------------------------------------------------------------

export const SOF_TIMESTAMPING_TX_HARDWARE = 1 << 0;
export const SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1;
export const SOF_TIMESTAMPING_RX_HARDWARE = 1 << 2;
export const SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3;
export const SOF_TIMESTAMPING_SOFTWARE = 1 << 4;
export const SOF_TIMESTAMPING_SYS_HARDWARE = 1 << 5;
export const SOF_TIMESTAMPING_RAW_HARDWARE = 1 << 6;
export const SOF_TIMESTAMPING_OPT_ID = 1 << 7;
export const SOF_TIMESTAMPING_TX_SCHED = 1 << 8;
export const SOF_TIMESTAMPING_TX_ACK = 1 << 9;
export const SOF_TIMESTAMPING_OPT_CMSG = 1 << 10;
export const SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11;
export const SOF_TIMESTAMPING_OPT_STATS = 1 << 12;
export const SOF_TIMESTAMPING_OPT_PKTINFO = 1 << 13;
export const SOF_TIMESTAMPING_OPT_TX_SWHW = 1 << 14;
export const SOF_TIMESTAMPING_BIND_PHC = 1 << 15;
export const SOF_TIMESTAMPING_OPT_ID_TCP = 1 << 16;
export const SOF_TIMESTAMPING_OPT_RX_FILTER = 1 << 17;
export const SOF_TIMESTAMPING_TX_COMPLETION = 1 << 18;
/** SOF_TIMESTAMPING_MASK: every flag this kernel knows. */
export const SOF_TIMESTAMPING_MASK = (1 << 19) - 1;
/** ee_info of a timestamp on the error queue: which point of the transmit path. */
export const SCM_TSTAMP_SND = 0;
export const SCM_TSTAMP_SCHED = 1;
export const SCM_TSTAMP_ACK = 2;

// --- linux/errqueue.h -----------------------------------------------------------------

export const SO_EE_ORIGIN_NONE = 0;
export const SO_EE_ORIGIN_LOCAL = 1;
export const SO_EE_ORIGIN_ICMP = 2;
export const SO_EE_ORIGIN_ICMP6 = 3;
export const SO_EE_ORIGIN_TIMESTAMPING = 4;
export const SO_EE_ORIGIN_ZEROCOPY = 5;
export const SO_EE_CODE_ZEROCOPY_COPIED = 1;
/** sizeof(struct sock_extended_err); sizeof(struct scm_timestamping) (three 64-bit timespecs). */
export const SOCK_EE_SIZE = 16;
export const SCM_TIMESTAMPING_SIZE = 48;

// --- linux/in.h, linux/in6.h --------------------------------------------------------------

export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;

/** Option levels: the protocol numbers (SOL_IP is IPPROTO_IP, SOL_IPV6 IPPROTO_IPV6, ...). */
export const SOL_IP = IPPROTO_IP;
export const SOL_TCP = IPPROTO_TCP;
export const SOL_UDP = IPPROTO_UDP;
export const SOL_IPV6 = IPPROTO_IPV6;

export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_MULTICAST_TTL = 33;
export const IP_PKTINFO = 8;
export const IP_RECVERR = 11;

export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVERR = 25;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_TCLASS = 67;

/**
 * struct sockaddr_in / sockaddr_in6, decoded: what bind, connect and
 * sendto take and getsockname, accept and recvfrom give. `addr` is the
 * IPv4 address (host order) of AF_INET; `addr6` the 16 bytes of AF_INET6.
 * AF_UNSPEC (connect's "disconnect") carries neither.
 */
export interface SockAddr {
  family: number;
  port: number;
  addr: number;
  addr6: Uint8Array | null;
  flowinfo?: number;
  scopeId?: number;
}

// --- linux/tcp.h, linux/udp.h ------------------------------------------------------------

export const TCP_NODELAY = 1;
export const TCP_MAXSEG = 2;
export const TCP_CORK = 3;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const TCP_SYNCNT = 7;
export const TCP_INFO = 11;
export const TCP_CONGESTION = 13;
export const TCP_MD5SIG = 14;
export const TCP_USER_TIMEOUT = 18;
export const TCP_FASTOPEN = 23;
export const TCP_NOTSENT_LOWAT = 25;
export const TCP_CC_INFO = 26;
export const TCP_FASTOPEN_CONNECT = 30;
export const TCP_MD5SIG_EXT = 32;
export const TCP_FASTOPEN_KEY = 33;
export const TCP_FASTOPEN_NO_COOKIE = 34;
export const TCP_INQ = 36;
/** The control message type TCP_INQ adds to recvmsg (same value as the option). */
export const TCP_CM_INQ = TCP_INQ;

export const UDP_CORK = 1;

// --- asm-generic/poll.h, linux/eventpoll.h ---------------------------------------------

export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDNORM = 0x040;
export const POLLWRNORM = 0x100;
export const POLLRDHUP = 0x2000;
/** An epoll event asking for edge-triggered reporting. */
export const EPOLLET = 0x8000;

// --- asm-generic/fcntl.h, asm-generic/ioctls.h, linux/sockios.h -------------------------

export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

export const FIONREAD = 0x541b;
/** The bytes waiting to be read (the same request as FIONREAD). */
export const SIOCINQ = FIONREAD;
/** The bytes not yet acknowledged (TCP) or not yet sent (UDP). */
export const SIOCOUTQ = 0x5411;
export const FIONBIO = 0x5421;

// --- asm-generic/errno-base.h, errno.h ------------------------------------------------------
// The stack returns errnos negated, as the kernel's functions do; the API puts them on the
// wire with their names (errnoName).

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EPIPE = 32;
export const EDOM = 33;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ENOMSG = 42;
export const EPROTO = 71;
export const EBADFD = 77;
export const ENOTSOCK = 88;
export const EDESTADDRREQ = 89;
export const EMSGSIZE = 90;
export const EPROTOTYPE = 91;
export const ENOPROTOOPT = 92;
export const EPROTONOSUPPORT = 93;
export const ESOCKTNOSUPPORT = 94;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ENOBUFS = 105;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ESHUTDOWN = 108;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTDOWN = 112;
export const EHOSTUNREACH = 113;
export const EALREADY = 114;
export const EINPROGRESS = 115;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [EINTR]: 'EINTR', [EBADF]: 'EBADF', [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM', [EACCES]: 'EACCES', [EFAULT]: 'EFAULT', [EBUSY]: 'EBUSY', [EEXIST]: 'EEXIST', [ENODEV]: 'ENODEV', [EINVAL]: 'EINVAL',
  [ENFILE]: 'ENFILE', [EMFILE]: 'EMFILE', [ENOTTY]: 'ENOTTY', [EPIPE]: 'EPIPE', [EDOM]: 'EDOM', [ERANGE]: 'ERANGE',
  [ENAMETOOLONG]: 'ENAMETOOLONG', [ENOSYS]: 'ENOSYS', [ENOMSG]: 'ENOMSG', [EPROTO]: 'EPROTO', [EBADFD]: 'EBADFD',
  [ENOTSOCK]: 'ENOTSOCK', [EDESTADDRREQ]: 'EDESTADDRREQ', [EMSGSIZE]: 'EMSGSIZE', [EPROTOTYPE]: 'EPROTOTYPE',
  [ENOPROTOOPT]: 'ENOPROTOOPT', [EPROTONOSUPPORT]: 'EPROTONOSUPPORT', [ESOCKTNOSUPPORT]: 'ESOCKTNOSUPPORT',
  [EOPNOTSUPP]: 'EOPNOTSUPP', [EAFNOSUPPORT]: 'EAFNOSUPPORT', [EADDRINUSE]: 'EADDRINUSE',
  [EADDRNOTAVAIL]: 'EADDRNOTAVAIL', [ENETDOWN]: 'ENETDOWN', [ENETUNREACH]: 'ENETUNREACH',
  [ECONNABORTED]: 'ECONNABORTED', [ECONNRESET]: 'ECONNRESET', [ENOBUFS]: 'ENOBUFS', [EISCONN]: 'EISCONN',
  [ENOTCONN]: 'ENOTCONN', [ESHUTDOWN]: 'ESHUTDOWN', [ETIMEDOUT]: 'ETIMEDOUT', [ECONNREFUSED]: 'ECONNREFUSED',
  [EHOSTDOWN]: 'EHOSTDOWN', [EHOSTUNREACH]: 'EHOSTUNREACH', [EALREADY]: 'EALREADY', [EINPROGRESS]: 'EINPROGRESS',
};

/** The errno's name ("ECONNREFUSED"), or "E<number>" for one this table lacks. */
export function errnoName(errno: number): string {
  const e = Math.abs(errno);
  return ERRNO_NAMES[e] ?? `E${e}`;
}

/** The number for a name, or 0. */
export function errnoByName(name: string): number {
  for (const k in ERRNO_NAMES) if (ERRNO_NAMES[k] === name) return Number(k);
  return 0;
}
