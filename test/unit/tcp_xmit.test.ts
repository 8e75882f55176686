/**
 * TCP builds every frame in one reusable per-stack skb (tcp.xmitSkb): the
 * driver copies before xmit returns, and whoever keeps an skb longer (the
 * loopback backlog, the neighbour's unresolved queue) keeps a copy. These
 * tests make several frames wait at once in each holder and check that
 * every one comes out as it was built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { PEER6, STACK6, ndFrame, naMsg } from '../lib/frames.js';
import { tcpAccept, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { allocSkb, skbHold } from '../../src/net/core/skbuff.js';
import { TwoStacks } from '../lib/twostack.js';
import { TCP_ESTABLISHED } from '../../src/net/core/sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { AF_INET6, SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';
import { tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

test('skbHold: an ordinary skb is kept as it is; the reusable one is copied with its headroom and fields', () => {
  const plain = allocSkb(10);
  assert.equal(skbHold(plain), plain);
  const s = allocSkb(100);
  s.scratch = true;
  s.buf.fill(7, s.put(100));
  s.push(40);
  s.gso = true;
  s.gsoSize = 1440;
  s.csumPartial = true;
  s.ipv6 = true;
  s.protocol = 6;
  const c = skbHold(s);
  assert.notEqual(c.buf, s.buf);
  assert.equal(c.scratch, false);
  assert.equal(c.data, s.data, 'same headroom: lower layers still push their headers');
  assert.deepEqual(c.view(), s.view());
  assert.deepEqual([c.len, c.gso, c.gsoSize, c.csumPartial, c.ipv6, c.protocol], [140, true, 1440, true, true, 6]);
  s.buf.fill(0);
  assert.equal(c.view()[50], 7, 'the copy does not change with the original');
});

test('loopback: 100 KB to our own address in one send, many frames in the backlog at once, arrives byte-exact', async () => {
  const h = Harness.ready(AF_INET6);
  const tcp = h.stack.tcp;
  const l = tcpNewSock(tcp, AF_INET6);
  tcpSetsockopt(tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(tcpV6Bind(tcp, l, new Uint8Array(16), 8080), 0);
  assert.equal(tcpListen(tcp, l, 16), 0);
  const sk = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, sk, STACK6, 8080), -115);
  await Promise.resolve();
  assert.equal(sk.state, TCP_ESTABLISHED);
  const c = tcpAccept(tcp, l) as TcpSock;
  const data = pattern(100_000);
  const got = Buffer.alloc(data.length);
  let sent = 0;
  let have = 0;
  for (let round = 0; round < 200 && have < data.length; round++) {
    if (sent < data.length) {
      const n = tcpSendmsg(tcp, sk, data.subarray(sent));
      if (n > 0) sent += n;
    }
    await new Promise((r) => setImmediate(r));
    for (;;) {
      const n = tcpRecvmsg(tcp, c, got.subarray(have));
      if (n <= 0) break;
      have += n;
    }
  }
  assert.equal(have, data.length);
  assert.ok(got.equals(data), 'every byte as sent');
  assert.ok(h.stack.mibs.Tcp.OutSegs > 20, `several frames per send (${h.stack.mibs.Tcp.OutSegs})`);
  // TCP would recover from mangled frames by retransmitting: none may have been needed.
  assert.equal(h.stack.mibs.Tcp.RetransSegs, 0);
  assert.equal(h.stack.mibs.TcpExt.TCPOFOQueue, 0);
});

test('unresolved neighbour: SYNs of two sockets queued together both leave intact once NDP answers', () => {
  const h = Harness.ready(AF_INET6);
  const tcp = h.stack.tcp;
  const a = tcpNewSock(tcp, AF_INET6);
  const b = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, a, PEER6, 80), -115);
  assert.equal(tcpV6Connect(tcp, b, PEER6, 81), -115);
  h.sent();
  h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
  const syns = h.sent().filter((p) => p.ip6 && p.tcp);
  assert.equal(syns.length, 2);
  assert.deepEqual(
    syns.map((p) => [p.tcp!.sport, p.tcp!.dport, p.tcp!.flags, p.tcp!.csumOk]),
    [
      [a.num, 80, 0x02, true],
      [b.num, 81, 0x02, true],
    ],
  );
});

test('write-queue pages: 8 MB under 3% loss and reordering (skbs split, SACKed, retransmitted) arrive exact; pages are reused', () => {
  const t = new TwoStacks({ loss: 0.03, duplicate: 0.01, reorder: 0.1, delay: 5 }, { loss: 0.01, duplicate: 0, reorder: 0, delay: 5 }, 7);
  const ms = t.bulk(8 << 20, { limitMs: 600_000 });
  assert.ok(ms > 0, 'finished, every byte checked by the reader');
  assert.ok(t.a.mibs.Tcp.RetransSegs > 0, 'losses were repaired');
  const pages = t.a.tcp.sndPages.allocated;
  // 8 MB is 128 pages' worth: recycling keeps the count near one window's.
  assert.ok(pages > 0 && pages < 100, `pages allocated: ${pages}`);
});
