/**
 * Fast Open through the syscall API: a program's setsockopt(TCP_FASTOPEN)
 * and TCP_FASTOPEN_KEY on its listener reach the stack (with Linux's
 * errnos), and a connection the stack opens at the SYN is accepted
 * through the API with the SYN's data already readable on its descriptor,
 * before the handshake's last ACK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { code, inProcessApi, until } from '../lib/api_inproc.js';
import { ipFrame, tcp, tcpOptions } from '../lib/frames.js';
import { Client } from '../../src/client/index.js';
import { unixAddon } from '../../src/api/unix.js';
import { TCP_SYN_RECV } from '../../src/net/core/sock.js';
import { AF_INET, IPPROTO_TCP, SOCK_STREAM, TCP_FASTOPEN, TCP_FASTOPEN_KEY } from '../../src/uapi.js';

const start = inProcessApi('tapstack-api-tfo-');
const ux = unixAddon();
const SYN = 0x02;
const ACK = 0x10;

test('API: TCP_FASTOPEN and TCP_FASTOPEN_KEY on a listener; a child opened at the SYN is accepted with its data readable', async () => {
  const { h, server, path } = start();
  const c = new Client({ path });
  try {
    await c.ready();
    h.stack.tcp.sysctl.tcp_fastopen = 3;
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM);
    await c.bind(fd, { family: AF_INET, addr: '0.0.0.0', port: 5001 });
    assert.equal(await code(c.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, -1)), 'EINVAL');
    await c.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, 4);
    assert.equal(await c.getsockoptInt(fd, IPPROTO_TCP, TCP_FASTOPEN), 4);
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    assert.equal(await code(c.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key.subarray(0, 8))), 'EINVAL');
    await c.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key);
    assert.ok((await c.getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, 32)).equals(key));
    await c.listen(fd, 8);

    // A cookie request, then the cookie with 10 bytes of data in the SYN.
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 40001, dport: 5001, seq: 1000, flags: SYN, options: tcpOptions([['mss', 1460], ['FO']]) }) }));
    const offer = h.sent().find((p) => p.tcp?.dport === 40001 && p.tcp.flags === (SYN | ACK));
    const cookie = /FO ([0-9a-f]{16})/.exec(offer?.tcp?.options ?? '');
    assert.ok(cookie, `a cookie in the SYN-ACK: ${offer?.tcp?.options}`);
    const payload = Buffer.from('0123456789');
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 40002, dport: 5001, seq: 5000, flags: SYN, payload, options: tcpOptions([['mss', 1460], ['FO', cookie[1]]]) }) }));
    const synack = h.sent().find((p) => p.tcp?.dport === 40002 && p.tcp.flags === (SYN | ACK));
    assert.equal(synack?.tcp?.ack, 5011, 'the SYN-ACK acks the data');

    const a = await c.accept(fd);
    assert.equal(a.peer.port, 40002);
    const child = [...h.stack.tcp.socks].find((s) => s.dport === 40002)!;
    assert.equal(child.state, TCP_SYN_RECV, 'accepted before the handshake ended');
    await until(() => ux.ioctlInt(a.data, ux.FIONREAD) === 10, 'the SYN\'s data on the descriptor');
    const buf = Buffer.alloc(64);
    assert.equal(ux.read(a.data, buf, 0, 64), 10);
    assert.ok(buf.subarray(0, 10).equals(payload));
    assert.equal(h.stack.mibs.TcpExt.TCPFastOpenPassive, 1);
    for (const d of [data, a.data]) if (d >= 0) ux.close(d);
  } finally {
    c.close();
    server.stop();
  }
});
