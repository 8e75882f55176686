/**
 * tcp_splice_read (net/ipv4/tcp.c): splice(2) from a TCP socket into a
 * pipe, through tcp_read_sock. Calls never block in the stack: where Linux
 * would wait for data (sk_wait_data) this returns -EAGAIN and the caller
 * waits for the socket's wake-up; where Linux gives up (data is queued but
 * none can be read, as before urgent data) it returns 0.
 */
import { RCV_SHUTDOWN, TCP_CLOSE } from '../core/sock.js';
import { EAGAIN, ENOTCONN } from '../../uapi.js';
import { tcpReadSock } from './tcp.js';
import type { TcpProto } from './tcp_proto.js';
import type { TcpSock } from './tcp_sock.js';

/**
 * tcp_splice_read: up to `len` bytes handed to `actor` (the pipe's
 * buffers). `nonblock`: O_NONBLOCK on the socket or SPLICE_F_NONBLOCK.
 */
export function tcpSpliceRead(tcp: TcpProto, sk: TcpSock, actor: (buf: Buffer, off: number, len: number) => number, len: number, nonblock: boolean): number {
  const ret = tcpReadSock(tcp, sk, actor, len);
  if (ret > 0) return ret;
  if (ret < 0 && ret !== -EAGAIN) return ret;
  if (sk.done) return 0;
  if (sk.err) {
    const e = sk.err;
    sk.err = 0;
    return -e;
  }
  if (sk.shutdown & RCV_SHUTDOWN) return 0;
  if (sk.state === TCP_CLOSE) return -ENOTCONN;
  if (nonblock) return -EAGAIN;
  // Nothing read with data queued (urgent data ahead): do not wait for more.
  if (sk.receiveQueue.length) return 0;
  return -EAGAIN;
}
