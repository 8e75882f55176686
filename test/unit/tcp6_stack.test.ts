/**
 * TCP over the stack's own IPv6 layer, frames in and out of the in-memory
 * link: the IPv6 header TCP's segments leave with, a handshake and data
 * from the wire, a reset for a closed port, a real ICMPv6 Packet Too Big
 * lowering the MSS through the path-MTU cache, a connection to our own
 * address over the loopback backlog, and GSO super-segments marked IPv6.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { PEER6, PEER_MAC, STACK6, STACK_MAC, eth, ip6Frame, naMsg, ndFrame, tcpOptions, tcpOptionsString } from '../lib/frames.js';
import { tcp6Packet } from '../lib/tcp6_harness.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../src/lib/checksum.js';
import { tcpAccept, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { formatIpv6 } from '../../src/lib/addr.js';
import { TCP_ESTABLISHED } from '../../src/net/core/sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { AF_INET6, SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';
import { tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';

const S = 0x02;
const A = 0x10;
const R = 0x04;
const P = 0x08;
const PEER_ISN = 5_000_000;

interface Out6 {
  src: string;
  dst: string;
  hopLimit: number;
  tclass: number;
  plen: number;
  flags: number;
  seq: number;
  ack: number;
  win: number;
  len: number;
  options: string;
  csumOk: boolean;
  sport: number;
  dport: number;
}

/** TCP segments the stack sent (IPv6 frames only), ND and MLD left out. */
function tcpOut(h: Harness): Out6[] {
  const out: Out6[] = [];
  for (const p of h.sent()) {
    if (!p.ip6 || p.ip6.proto !== 6) continue;
    const l4 = p.ip6.payload;
    const hl = (l4[12] >> 4) * 4;
    out.push({
      src: p.ip6.src,
      dst: p.ip6.dst,
      hopLimit: p.ip6.hopLimit,
      tclass: p.ip6.tclass,
      plen: p.ip6.plen,
      flags: l4[13],
      seq: l4.readUInt32BE(4),
      ack: l4.readUInt32BE(8),
      win: l4.readUInt16BE(14),
      len: l4.length - hl,
      options: tcpOptionsString(l4.subarray(20, hl)),
      csumOk: csumFold(csumPartial(l4, 0, l4.length, csumIpv6Magic(p.ip6.srcBuf, 0, p.ip6.dstBuf, 0, 6, l4.length))) === 0,
      sport: l4.readUInt16BE(0),
      dport: l4.readUInt16BE(2),
    });
  }
  return out;
}

function peerSeg(h: Harness, s: { sport?: number; dport?: number; seq: number; ack?: number; flags: number; win?: number; payload?: Buffer; options?: (string | number)[][] }): void {
  const pkt = tcp6Packet({
    src: PEER6,
    dst: STACK6,
    sport: s.sport ?? 40000,
    dport: s.dport ?? 8080,
    seq: (PEER_ISN + s.seq) >>> 0,
    ack: s.ack,
    flags: s.flags,
    win: s.win ?? 65535,
    payload: s.payload,
    options: s.options ? tcpOptions(s.options) : undefined,
  });
  h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, pkt));
}

function listen6(h: Harness): TcpSock {
  const tcp = h.stack.tcp;
  const l = tcpNewSock(tcp, AF_INET6);
  tcpSetsockopt(tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(tcpV6Bind(tcp, l, new Uint8Array(16), 8080), 0);
  assert.equal(tcpListen(tcp, l, 16), 0);
  return l;
}

function established(h: Harness): { c: TcpSock; isn: number } {
  const l = listen6(h);
  peerSeg(h, { seq: 0, flags: S, options: [['mss', 1440], ['nop'], ['wscale', 7]] });
  const [sa] = tcpOut(h);
  assert.equal(sa.flags, S | A);
  peerSeg(h, { seq: 1, ack: (sa.seq + 1) >>> 0, flags: A, win: 1000 });
  const c = tcpAccept(h.stack.tcp, l) as TcpSock;
  assert.equal(typeof c, 'object');
  return { c, isn: sa.seq };
}

test('the SYN-ACK leaves through ip6_xmit: IPv6 header from fd00::2 to fd00::1, hop limit 64, next header TCP, mss 1440, checksum right', () => {
  const h = Harness.withPeer(AF_INET6);
  listen6(h);
  peerSeg(h, { seq: 0, flags: S, options: [['mss', 1440], ['sackOK'], ['nop'], ['wscale', 7]] });
  const out = tcpOut(h);
  assert.equal(out.length, 1);
  const sa = out[0];
  assert.equal(sa.src, 'fd00::2');
  assert.equal(sa.dst, 'fd00::1');
  assert.equal(sa.hopLimit, 64);
  assert.equal(sa.plen, 20 + 12);
  assert.equal(sa.flags, S | A);
  assert.equal(sa.ack, PEER_ISN + 1);
  assert.equal(sa.options, 'mss 1440,nop,nop,sackOK,nop,wscale 7');
  assert.ok(sa.csumOk);
  assert.equal(h.stack.mibs.Ip6.OutRequests > 0, true);
});

test('a handshake and data from the wire over IPv6; our data comes back MSS-sized with the IPv6 checksum', () => {
  const h = Harness.withPeer(AF_INET6);
  const { c, isn } = established(h);
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.ipv6, true);
  peerSeg(h, { seq: 1, ack: isn + 1, flags: A | P, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') });
  const buf = Buffer.alloc(100);
  assert.equal(tcpRecvmsg(h.stack.tcp, c, buf), 18);
  tcpOut(h);
  peerSeg(h, { seq: 19, ack: isn + 1, flags: A, win: 1000 });
  assert.equal(tcpSendmsg(h.stack.tcp, c, Buffer.alloc(4000, 0x5a)), 4000);
  const segs = tcpOut(h).filter((s) => s.len > 0);
  assert.ok(segs.length >= 1);
  for (const s of segs) {
    assert.ok(s.len <= 1440);
    assert.ok(s.csumOk);
    assert.equal(s.src, 'fd00::2');
  }
});

test('a SYN to a closed port over IPv6 gets RST|ACK on the wire', () => {
  const h = Harness.withPeer(AF_INET6);
  peerSeg(h, { seq: 0, flags: S, dport: 9999 });
  const [r] = tcpOut(h);
  assert.equal(r.flags, R | A);
  assert.equal(r.ack, PEER_ISN + 1);
  assert.equal(r.dst, 'fd00::1');
  assert.ok(r.csumOk);
  assert.equal(h.stack.mibs.Tcp.OutRsts, 1);
});

test('an ICMPv6 Packet Too Big quoting our segment lowers the MSS to 1280 - 60 and the resent data fits', () => {
  const h = Harness.withPeer(AF_INET6);
  const { c, isn } = established(h);
  tcpOut(h);
  tcpSetsockopt(h.stack.tcp, c, 6, 1, 1);
  assert.equal(tcpSendmsg(h.stack.tcp, c, Buffer.alloc(1440, 1)), 1440);
  const [big] = tcpOut(h);
  assert.equal(big.len, 1440);
  // The router's error: type 2, the MTU, as much of our packet as fits.
  const quoted = tcp6Packet({ src: STACK6, dst: PEER6, sport: 8080, dport: 40000, seq: isn + 1, ack: PEER_ISN + 1, flags: A, payload: Buffer.alloc(1440, 1) });
  const body = Buffer.alloc(4 + 1184);
  body.writeUInt32BE(1280, 0);
  quoted.copy(body, 4, 0, 1184);
  const icmp = Buffer.alloc(4 + body.length);
  icmp[0] = 2;
  body.copy(icmp, 4);
  const router = Buffer.from('fd000000000000000000000000000001', 'hex');
  icmp.writeUInt16BE(csumFold(csumPartial(icmp, 0, icmp.length, csumIpv6Magic(router, 0, STACK6, 0, 58, icmp.length))), 2);
  h.rx(ip6Frame({ src: router, dst: STACK6, nexthdr: 58, payload: icmp }));
  assert.equal(c.mssCache, 1220);
  const re = tcpOut(h).filter((s) => s.len > 0);
  assert.ok(re.length >= 2, 'retransmitted in two segments');
  for (const s of re) assert.ok(40 + 20 + s.len <= 1280, `a ${s.len}-byte segment does not fit 1280`);
});

test('connect to our own address: the handshake runs over the loopback backlog through tcp_v6_rcv, after the call returns', async () => {
  const h = Harness.ready(AF_INET6);
  const tcp = h.stack.tcp;
  const l = listen6(h);
  const sk = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, sk, STACK6, 8080), -115);
  // Like Linux's NET_RX softirq, the loopback backlog runs once the socket call is over.
  assert.equal(sk.state, 2 /* SYN_SENT */);
  await Promise.resolve();
  assert.equal(sk.state, TCP_ESTABLISHED);
  const c = tcpAccept(tcp, l) as TcpSock;
  assert.equal(typeof c, 'object');
  assert.equal(formatIpv6(c.v6Daddr!), 'fd00::2');
  assert.equal(c.dport, sk.num);
  assert.equal(tcpSendmsg(tcp, sk, Buffer.from('over loopback')), 13);
  await Promise.resolve();
  const b = Buffer.alloc(32);
  assert.equal(b.subarray(0, tcpRecvmsg(tcp, c, b)).toString(), 'over loopback');
  assert.equal(h.stack.mibs.TcpExt.TCPChallengeACK, 0);
  assert.equal(h.link.take().filter((f) => f.readUInt16BE(12) === 0x86dd && f[20] === 6).length, 0, 'nothing on the wire');
});

test('an active open to fd00::1 resolves the neighbour by NDP, then the SYN leaves from fd00::2', () => {
  const h = Harness.ready(AF_INET6);
  const tcp = h.stack.tcp;
  const sk = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, sk, PEER6, 80), -115);
  const first = h.sent();
  const ns = first.find((p) => p.icmp6?.type === 135);
  assert.ok(ns, 'a neighbour solicitation for fd00::1');
  assert.equal(ns.ip6!.dst, 'ff02::1:ff00:1');
  // The peer answers; the queued SYN goes out.
  h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
  const [syn] = tcpOut(h);
  assert.equal(syn.flags, S);
  assert.equal(syn.src, 'fd00::2');
  assert.equal(syn.dport, 80);
  assert.match(syn.options, /^mss 1440,/);
});

test('TSO: a GSO super-segment over IPv6 leaves whole as one IPv6 frame with gso_size = MSS', () => {
  const h = Harness.withPeer(AF_INET6);
  h.stack.dev.tso = true;
  const { c } = established(h);
  tcpOut(h);
  const seen: { ethertype: number; gsoSize: number; len: number }[] = [];
  const dev = h.stack.dev;
  const xmit = dev.xmit.bind(dev);
  dev.xmit = (buf, off, len, gsoSize = 0, csumPartial = false) => {
    seen.push({ ethertype: buf.readUInt16BE(off + 12), gsoSize, len });
    return xmit(buf, off, len, gsoSize, csumPartial);
  };
  tcpSetsockopt(h.stack.tcp, c, 6, 1, 1);
  // The peer's window was 1000 << 7: room for a super-segment.
  assert.equal(tcpSendmsg(h.stack.tcp, c, Buffer.alloc(20000, 2)), 20000);
  const big = seen.find((s) => s.gsoSize > 0);
  assert.ok(big, JSON.stringify(seen));
  assert.equal(big.ethertype, 0x86dd, 'an IPv6 frame: the TAP driver writes VIRTIO_NET_HDR_GSO_TCPV6 for it');
  assert.equal(big.gsoSize, 1440);
  assert.ok(big.len > 1514);
});
