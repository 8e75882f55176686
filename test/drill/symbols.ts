/**
 * The names a packetdrill script uses and the values the runner gives them:
 * the run's addresses and ports (packetdrill's defaults), the constants of
 * system-call arguments, the names `%{ }%` blocks read, and errno names.
 */
import { ipv6SetV4Mapped, parseIpv4, parseIpv6, parseMac } from '../../src/lib/addr.js';
import * as errnos from '../../src/uapi.js';
import {
  TCPI_OPT_ECN,
  TCPI_OPT_ECN_SEEN,
  TCPI_OPT_SACK,
  TCPI_OPT_SYN_DATA,
  TCPI_OPT_TFO_CHILD,
  TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_USEC_TS,
  TCPI_OPT_WSCALE,
} from '../../src/net/ipv4/tcp_info.js';
import { ERRQUEUE_SYMBOLS } from './errqueue.js';

// packetdrill's default addresses (IPv4), as Linux's kernel selftests run it.
export const LOCAL_IP = parseIpv4('192.168.0.1')!;
export const REMOTE_IP = parseIpv4('192.0.2.1')!;
/**
 * The next hop to the remote. packetdrill names 192.168.0.1 (its own local
 * address) as gateway; the stack needs a neighbour on the subnet, which no
 * packet shows, so another address with a static entry stands in.
 */
export const GATEWAY_IP = parseIpv4('192.168.0.254')!;
// packetdrill's IPv6 defaults (ip_version=ipv6), and the device MTU the kernel
// selftests give an IPv6 run (--mtu=1520): 1520 - 40 - 20 = 1460, so the
// scripts' mss values, written for IPv4 on MTU 1500, hold for IPv6 unchanged.
// packetdrill rewrites no mss option itself; the MTU is how it maps them.
export const LOCAL_IP6 = parseIpv6('fd3d:a0b:17d6::1')!;
export const REMOTE_IP6 = parseIpv6('fd3d:fa7b:d17d::1')!;
/** The IPv6 next hop to the remote, as GATEWAY_IP is for IPv4: on our /64, with a static neighbour entry. */
export const GATEWAY_IP6 = parseIpv6('fd3d:a0b:17d6::fe')!;
export const IPV6_RUN_MTU = 1520;
/**
 * Which family a run plays the script in, as packetdrill's --ip_version:
 * ipv4-mapped-ipv6 is an AF_INET6 socket talking IPv4 through v4-mapped
 * addresses (bind ::ffff:192.168.0.1, connect ::ffff:192.0.2.1).
 */
export type DrillFamily = 'ipv4' | 'ipv6' | 'ipv4-mapped-ipv6';
export const DRILL_FAMILIES: readonly DrillFamily[] = ['ipv4', 'ipv6', 'ipv4-mapped-ipv6'];
const mapped = (v4: number): Buffer => {
  const b = Buffer.alloc(16);
  ipv6SetV4Mapped(b, v4);
  return b;
};
/** packetdrill's address options and the values its wrappers give: [IPv4 and v4-mapped runs, IPv6 runs]. */
export const ADDRESS_OPTIONS: Record<string, [string, string]> = {
  local_ip: ['192.168.0.1', 'fd3d:a0b:17d6::1'],
  remote_ip: ['192.0.2.1', 'fd3d:fa7b:d17d::1'],
  gateway_ip: ['192.168.0.1', 'fd3d:a0b:17d6:8888::1'],
  netmask_ip: ['255.255.0.0', '255.255.0.0'],
};
export const LOCAL_IP_MAPPED = mapped(LOCAL_IP);
export const REMOTE_IP_MAPPED = mapped(REMOTE_IP);
export const LOCAL_MAC = parseMac('02:70:64:00:00:01')!;
export const GW_MAC = parseMac('02:70:64:00:00:fe')!;
export const REMOTE_PORT = 54321;
export const SCRIPT_PORT = 8080;

export const SYMBOLS: Record<string, number> = {
  AF_INET: 2,
  AF_INET6: 10,
  PF_INET: 2,
  SOCK_STREAM: 1,
  IPPROTO_TCP: 6,
  IPPROTO_IP: 0,
  SOL_IP: 0,
  IP_TOS: 1,
  IP_TTL: 2,
  IP_MTU_DISCOVER: 10,
  IP_FREEBIND: 15,
  IP_PMTUDISC_DONT: 0,
  IP_PMTUDISC_WANT: 1,
  IP_PMTUDISC_DO: 2,
  IP_PMTUDISC_PROBE: 3,
  SPLICE_F_NONBLOCK: 2,
  SPLICE_F_MORE: 4,
  SOL_SOCKET: 1,
  SOL_TCP: 6,
  SO_REUSEADDR: 2,
  SO_TYPE: 3,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_KEEPALIVE: 9,
  SO_LINGER: 13,
  SO_REUSEPORT: 15,
  SO_RCVLOWAT: 18,
  SO_DOMAIN: 39,
  SO_ZEROCOPY: 60,
  TCP_NODELAY: 1,
  TCP_MAXSEG: 2,
  TCP_CORK: 3,
  TCP_KEEPIDLE: 4,
  TCP_KEEPINTVL: 5,
  TCP_KEEPCNT: 6,
  TCP_SYNCNT: 7,
  TCP_INFO: 11,
  TCP_QUICKACK: 12,
  TCP_CONGESTION: 13,
  TCP_USER_TIMEOUT: 18,
  TCP_FASTOPEN: 23,
  TCP_NOTSENT_LOWAT: 25,
  TCP_FASTOPEN_CONNECT: 30,
  TCP_FASTOPEN_KEY: 33,
  TCP_FASTOPEN_NO_COOKIE: 34,
  TCP_INQ: 36,
  TCP_LINGER2: 8,
  TCP_DEFER_ACCEPT: 9,
  TCP_MD5SIG: 14,
  TCP_MD5SIG_EXT: 32,
  TCP_CM_INQ: 36,
  MSG_PEEK: 2,
  MSG_DONTWAIT: 0x40,
  MSG_EOR: 0x80,
  MSG_WAITALL: 0x100,
  MSG_NOSIGNAL: 0x4000,
  MSG_ERRQUEUE: 0x2000,
  MSG_MORE: 0x8000,
  MSG_ZEROCOPY: 0x4000000,
  MSG_FASTOPEN: 0x20000000,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_NONBLOCK: 0x800,
  SIOCINQ: 0x541b,
  FIONREAD: 0x541b,
  SIOCOUTQ: 0x5411,
  SIOCOUTQNSD: 0x894b,
  POLLIN: 0x1,
  POLLPRI: 0x2,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  POLLRDNORM: 0x40,
  POLLWRNORM: 0x100,
  POLLRDHUP: 0x2000,
  EPOLLIN: 0x1,
  EPOLLPRI: 0x2,
  EPOLLOUT: 0x4,
  EPOLLERR: 0x8,
  EPOLLHUP: 0x10,
  EPOLLRDNORM: 0x40,
  EPOLLWRNORM: 0x100,
  EPOLLRDHUP: 0x2000,
  EPOLLEXCLUSIVE: 1 << 28,
  EPOLLONESHOT: 1 << 30,
  EPOLLET: 1 << 31,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  ...ERRQUEUE_SYMBOLS,
};
/** Names the `%{ }%` blocks read besides tcpi_* fields (packetdrill's Python sees the kernel's headers' values). */
export const PY_CONSTS: Record<string, number> = {
  TCP_CA_Open: 0,
  TCP_CA_Disorder: 1,
  TCP_CA_CWR: 2,
  TCP_CA_Recovery: 3,
  TCP_CA_Loss: 4,
  TCPI_OPT_TIMESTAMPS: TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_SACK: TCPI_OPT_SACK,
  TCPI_OPT_WSCALE: TCPI_OPT_WSCALE,
  TCPI_OPT_ECN: TCPI_OPT_ECN,
  TCPI_OPT_ECN_SEEN: TCPI_OPT_ECN_SEEN,
  TCPI_OPT_SYN_DATA: TCPI_OPT_SYN_DATA,
  TCPI_OPT_USEC_TS: TCPI_OPT_USEC_TS,
  TCPI_OPT_TFO_CHILD: TCPI_OPT_TFO_CHILD,
  TCP_ESTABLISHED: 1,
  TCP_SYN_SENT: 2,
  TCP_SYN_RECV: 3,
  TCP_FIN_WAIT1: 4,
  TCP_FIN_WAIT2: 5,
  TCP_TIME_WAIT: 6,
  TCP_CLOSE: 7,
  TCP_CLOSE_WAIT: 8,
  TCP_LAST_ACK: 9,
  TCP_LISTEN: 10,
  TCP_CLOSING: 11,
  TCP_INFINITE_SSTHRESH: 0x7fffffff,
};
export const EPOLLET = 1 << 31;
export const EPOLLONESHOT = 1 << 30;
export const O_NONBLOCK = 0x800;

/** Errno values by name and names by value, from the stack's table. */
export const ERRNO_BY_NAME = new Map<string, number>();
export const ERRNO_NAME = new Map<number, string>();
for (const [k, v] of Object.entries(errnos)) {
  if (typeof v === 'number' && /^E[A-Z]+$/.test(k) && v < 4096) {
    ERRNO_BY_NAME.set(k, v);
    if (!ERRNO_NAME.has(v)) ERRNO_NAME.set(v, k);
  }
}
ERRNO_BY_NAME.set('EWOULDBLOCK', errnos.EAGAIN);
