/**
 * What every socket has (net/core/sock.c, include/net/sock.h). For now:
 * sk_state's values, which every socket uses (TCP's states, Linux's
 * include/net/tcp_states.h: UDP uses TCP_ESTABLISHED and TCP_CLOSE).
 */

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
