/**
 * connect()'s socket-level half for stream sockets (__inet_stream_connect
 * in af_inet.c): the socket's SS_ state and the result a connect() returns
 * once its handshake is over. Apart from af_inet.ts so that tcp_v4_connect
 * and tcp_v6_connect use it without an import cycle.
 */
import { ECONNABORTED, EALREADY, EINPROGRESS, EISCONN } from '../../uapi.js';
import { sockError, TCP_CLOSE, TCP_SYN_RECV, TCP_SYN_SENT } from '../core/sock.js';
import { SS_CONNECTED, SS_CONNECTING, SS_UNCONNECTED, type TcpSock } from './tcp_sock.js';

/**
 * __inet_stream_connect's switch on the socket's state: null to start a
 * connection, else what connect() returns. A socket that ever connected
 * (or was accepted) says EISCONN; one connecting says EALREADY while the
 * handshake runs, then 0 once it is over (SS_CONNECTED) or the error that
 * ended it (SS_UNCONNECTED again, so it may be retried); a socket that never
 * connected refuses in any state but CLOSE (a listener: EISCONN, measured
 * on Linux 6.18).
 */
export function tcpConnectStateCheck(sk: TcpSock): number | null {
  switch (sk.socketState) {
    case SS_CONNECTED:
      return -EISCONN;
    case SS_CONNECTING:
      // A deferred Fast Open connect (DEFER_CONNECT) counts as connected.
      if (sk.deferConnect) return -EISCONN;
      if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return -EALREADY;
      return inetStreamConnectResult(sk);
    default:
      return sk.state === TCP_CLOSE ? null : -EISCONN;
  }
}

/**
 * The end of __inet_stream_connect once the handshake is over: a closed
 * socket reports its error once (sk_err, else the soft error of an ICMP,
 * else ECONNABORTED) and is unconnected again; any other state is
 * connected. -EINPROGRESS while the handshake runs.
 */
export function inetStreamConnectResult(sk: TcpSock): number {
  if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return -EINPROGRESS;
  if (sk.state === TCP_CLOSE) {
    sk.socketState = SS_UNCONNECTED;
    return -(sockError(sk) || sk.errSoft || ECONNABORTED);
  }
  sk.socketState = SS_CONNECTED;
  return 0;
}
