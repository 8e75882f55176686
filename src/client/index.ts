/**
 * The Node client library of tapstack: the raw syscall API (Client), and on
 * top of it net-style sockets and servers whose data flows through the
 * socket's data descriptor (docs/api.md), so a stack connection is a real
 * net.Socket with Node's own events and back-pressure.
 *
 *   import { connect, createServer } from 'tapstack';
 *   const s = connect({ host: '10.0.0.1', port: 80 }, () => s.write('GET / HTTP/1.0\r\n\r\n'));
 */
export * from '../api/proto.js';
export * from './client.js';
export * from './net.js';
export * from './ring_socket.js';
export * from './dgram.js';
