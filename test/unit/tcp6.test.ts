/**
 * TCP over IPv6 and dual-stack sockets, deterministic: handshakes with
 * options, window and MSS (mtu - 60) over IPv6, checksums over the IPv6
 * pseudo-header, a dual-stack listener taking an IPv4 SYN as v4-mapped,
 * IPV6_V6ONLY refusing IPv4, Packet Too Big lowering the MSS, resets for a
 * closed port, ICMPv6 errors, SYN cookies, the bind/connect rules of
 * inet6_bind and tcp_v6_connect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tcp6Harness, PEER6, STACK6, STACK6_LL, IFINDEX, tcp6Packet } from '../lib/tcp6_harness.js';
import { TcpHarness, S, A, F, R, P } from '../lib/tcp_harness.js';
import {
  tcpAccept,
  tcpBind,
  tcpClose,
  tcpGetsockopt,
  tcpListen,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
} from '../../src/net/ipv4/tcp.js';
import { type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { formatIpv6, parseIpv6 } from '../../src/lib/addr.js';
import { ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, tcpV6Bind, tcpV6Connect, tcpV6Err } from '../../src/net/ipv6/tcp_ipv6.js';
import { PEER_IP, STACK_IP } from '../lib/frames.js';
import { sysctlSet } from '../../src/net/sysctl.js';
import { TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_SENT } from '../../src/net/core/sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import {
  AF_INET,
  AF_INET6,
  EADDRINUSE,
  EADDRNOTAVAIL,
  ECONNREFUSED,
  EHOSTUNREACH,
  EINVAL,
  ENETUNREACH,
  ENODEV,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SOL_SOCKET,
  SO_DOMAIN,
  SO_REUSEADDR,
} from '../../src/uapi.js';

const ip6 = (s: string) => parseIpv6(s)!;

function listen6(t: Tcp6Harness | TcpHarness, opts: { v6only?: boolean; addr?: Uint8Array; backlog?: number } = {}): TcpSock {
  const l = tcpNewSock(t.tcp, AF_INET6);
  tcpSetsockopt(t.tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
  if (opts.v6only) assert.equal(tcpSetsockopt(t.tcp, l, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
  assert.equal(tcpV6Bind(t.tcp, l, opts.addr ?? new Uint8Array(16), t.localPort), 0);
  assert.equal(tcpListen(t.tcp, l, opts.backlog ?? 8), 0);
  return l;
}

/** Passive open over IPv6: the SYN-ACK's fields, then accept. */
function accept6(t: Tcp6Harness, synOpts: (string | number)[][] = [['mss', 1440], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]]): TcpSock {
  const l = listen6(t);
  t.send({ flags: S, seq: 0, win: 64800, options: synOpts });
  const [sa] = t.out();
  assert.equal(sa.flags, 'S.');
  t.send({ flags: A, seq: 1, ack: 1, win: 507, options: [['nop'], ['nop'], ['TS', 101, Number(/TS val (\d+)/.exec(sa.options)?.[1] ?? 0)]] });
  const c = tcpAccept(t.tcp, l);
  assert.equal(typeof c, 'object');
  return c as TcpSock;
}

test('IPv6 passive open: SYN-ACK from our address with mss 1440 (1500 - 60), Linux option order, checksum over the IPv6 pseudo-header', () => {
  const t = new Tcp6Harness();
  listen6(t);
  t.send({ flags: S, seq: 0, win: 64800, options: [['mss', 1440], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]], tos: 0x03 << 2 });
  const out = t.out();
  assert.equal(out.length, 1);
  const sa = out[0];
  assert.equal(sa.flags, 'S.');
  assert.equal(sa.ack, 1);
  assert.deepEqual(sa.saddr, Buffer.from(STACK6));
  assert.deepEqual(sa.daddr, Buffer.from(PEER6));
  assert.equal(sa.sport, 8080);
  assert.equal(sa.dport, 54321);
  assert.ok(sa.csumOk, 'checksum over the IPv6 pseudo-header');
  assert.equal(sa.csumPartial, false);
  assert.match(sa.options, /^mss 1440,sackOK,TS val \d+ ecr 100,nop,wscale 7$/);
  assert.equal(sa.win, 45 * 1428, 'the initial window rounded down to the MSS less timestamps (tcp_select_initial_window)');
  assert.equal(sa.tclass, 0x0c, 'the SYN-ACK reflects the DSCP as the v4 path does (ECN bits cleared)');
  t.send({ flags: A, seq: 1, ack: 1, win: 507, options: [['nop'], ['nop'], ['TS', 101, Number(/TS val (\d+)/.exec(sa.options)![1])]] });
  assert.equal(t.out().length, 0);
});

test('IPv6 established: data both ways, MSS 1428 with timestamps, the child is AF_INET6 over IPv6 with both addresses', () => {
  const t = new Tcp6Harness();
  const c = accept6(t);
  assert.equal(c.family, AF_INET6);
  assert.equal(c.ipv6, true);
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(formatIpv6(c.v6RcvSaddr!), 'fd00::2');
  assert.equal(formatIpv6(c.v6Daddr!), 'fd00::1');
  assert.equal(c.advmss, 1440);
  assert.equal(c.mssCache, 1428, '1440 less the 12-byte timestamp option');
  assert.equal(tcpGetsockopt(t.tcp, c, SOL_SOCKET, SO_DOMAIN), AF_INET6);
  // Peer data in, our ACK (delayed: quick-ack at the start) and the bytes readable.
  t.send({ flags: A | P, seq: 1, ack: 1, payload: Buffer.from('hello over v6'), options: [['nop'], ['nop'], ['TS', 102, 0]] });
  const ack = t.out();
  assert.equal(ack.length, 1);
  assert.equal(ack[0].flags, '.');
  assert.equal(ack[0].ack, 14);
  assert.ok(ack[0].csumOk);
  const buf = Buffer.alloc(64);
  const n = tcpRecvmsg(t.tcp, c, buf);
  assert.equal(buf.subarray(0, n).toString(), 'hello over v6');
  // 5000 bytes out: MSS-sized segments with software segmentation (no TSO), every checksum right.
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(5000, 0x42)), 5000);
  const segs = t.out();
  assert.ok(segs.length >= 4);
  for (const s of segs) {
    assert.ok(s.len <= 1428, `segment of ${s.len} exceeds the MSS`);
    assert.ok(s.csumOk);
    assert.deepEqual(s.daddr, Buffer.from(PEER6));
  }
  assert.equal(segs.reduce((a, s) => a + s.len, 0), 5000);
});

test('IPv6 active open: source from the IPv6 layer, ephemeral port, SYN with mss 1440, then established', () => {
  const t = new Tcp6Harness();
  const sk = tcpNewSock(t.tcp, AF_INET6);
  assert.equal(tcpV6Connect(t.tcp, sk, PEER6, 80), -115);
  assert.equal(sk.state, TCP_SYN_SENT);
  assert.ok(sk.num >= 32768 && sk.num <= 60999);
  const [syn] = t.out();
  assert.equal(syn.flags, 'S');
  assert.deepEqual(syn.saddr, Buffer.from(STACK6));
  assert.deepEqual(syn.daddr, Buffer.from(PEER6));
  assert.equal(syn.dport, 80);
  assert.match(syn.options, /^mss 1440,sackOK,TS val \d+ ecr 0,nop,wscale \d+$/);
  assert.ok(syn.csumOk);
  t.localPort = sk.num;
  t.peerPort = 80;
  t.send({ flags: S | A, seq: 0, ack: 1, win: 65535, options: [['mss', 1400], ['nop'], ['wscale', 2]] });
  assert.equal(sk.state, TCP_ESTABLISHED);
  assert.equal(sk.mssCache, 1400, "the peer's MSS, less than ours");
  const [ack] = t.out();
  assert.equal(ack.flags, '.');
  assert.equal(ack.ack, 1);
});

test('IPv6 checksums: a corrupt segment is dropped and counted; a device-verified one is not checked again', () => {
  const t = new Tcp6Harness();
  listen6(t);
  t.send({ flags: S, seq: 0, options: [['mss', 1440]], badCsum: true });
  assert.equal(t.out().length, 0);
  assert.equal(t.mibs.Tcp.InCsumErrors, 1);
  assert.equal(t.mibs.Tcp.InErrs, 1);
  t.csumValid = true;
  t.send({ flags: S, seq: 0, options: [['mss', 1440]], badCsum: true });
  assert.equal(t.out()[0].flags, 'S.');
  assert.equal(t.mibs.Tcp.InCsumErrors, 1);
});

test('IPv6 output offloads: CHECKSUM_PARTIAL leaves the IPv6 pseudo-header sum; TSO hands one GSO skb of gso_size MSS', () => {
  const t = new Tcp6Harness();
  t.h.stack.dev.csumOffload = true;
  t.h.stack.dev.tso = true;
  const c = accept6(t);
  t.out();
  tcpSetsockopt(t.tcp, c, 6, 1, 1); // TCP_NODELAY
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(8000, 1)), 8000);
  const segs = t.out();
  assert.ok(segs.length >= 1);
  const big = segs.find((s) => s.gso);
  assert.ok(big, 'a TSO super-segment');
  assert.equal(big.gsoSize, 1428);
  for (const s of segs) {
    assert.ok(s.csumPartial);
    assert.ok(s.csumOk, 'the check field holds the IPv6 pseudo-header sum');
  }
});

test('a closed port over IPv6: RST|ACK for a SYN, RST at its ack for an ACK, never a reset for a reset', () => {
  const t = new Tcp6Harness();
  t.send({ flags: S, seq: 0, tos: 0xb8 | 1 });
  const [r1] = t.out();
  assert.equal(r1.flags, 'R.');
  assert.equal(r1.ack, 1);
  assert.equal(r1.seq >>> 0, (0 - t.stackIsn) >>> 0);
  assert.deepEqual(r1.saddr, Buffer.from(STACK6));
  assert.deepEqual(r1.daddr, Buffer.from(PEER6));
  assert.equal(r1.tclass, 0xb8, 'the incoming traffic class without its ECN bits');
  assert.ok(r1.csumOk);
  t.send({ flags: A, seq: 1, ack: 0x12345 });
  const [r2] = t.out();
  assert.equal(r2.flags, 'R');
  assert.equal((r2.seq + t.stackIsn) >>> 0, 0x12345);
  t.send({ flags: R, seq: 1 });
  assert.equal(t.out().length, 0);
  assert.equal(t.mibs.Tcp.OutRsts, 2);
});

test('not to one of our unicast addresses (multicast): dropped without a reset', () => {
  const t = new Tcp6Harness();
  listen6(t);
  const pkt = tcp6Packet({ src: PEER6, dst: ip6('ff02::1'), sport: 1, dport: 8080, seq: 1, flags: S });
  t.rx(pkt, false);
  assert.equal(t.out().length, 0);
});

test('dual-stack: a [::] listener accepts an IPv4 SYN as v4-mapped, over the IPv4 path with mss 1460', () => {
  const t = new TcpHarness(AF_INET);
  const l = listen6(t);
  t.listener = l;
  t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1460], ['nop'], ['wscale', 0]] });
  const [sa] = t.out();
  assert.equal(sa.flags, 'S.');
  assert.match(sa.options, /^mss 1460,/);
  t.send({ flags: A, seq: 1, ack: 1, win: 50000 });
  const c = tcpAccept(t.tcp, l) as TcpSock;
  assert.equal(typeof c, 'object');
  assert.equal(c.family, AF_INET6);
  assert.equal(c.ipv6, false);
  assert.equal(formatIpv6(c.v6Daddr!), '::ffff:10.0.0.1');
  assert.equal(formatIpv6(c.v6RcvSaddr!), '::ffff:10.0.0.2');
  assert.equal(c.daddr, PEER_IP);
  assert.equal(c.rcvSaddr, STACK_IP);
  assert.equal(c.advmss, 1460);
  // Data flows over IPv4.
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.from('v4 via a v6 socket')), 18);
  const [d] = t.out();
  assert.equal(d.payload.toString(), 'v4 via a v6 socket');
});

test('IPV6_V6ONLY: the listener takes no IPv4 (the SYN is reset) but takes IPv6; the option is EINVAL once bound', () => {
  const t = new TcpHarness(AF_INET);
  const l = listen6(t, { v6only: true });
  t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
  const [r] = t.out();
  assert.equal(r.flags, 'R.');
  assert.equal(l.acceptQueue.length, 0);
  assert.equal(tcpGetsockopt(t.tcp, l, IPPROTO_IPV6, IPV6_V6ONLY), 1);
  assert.equal(tcpSetsockopt(t.tcp, l, IPPROTO_IPV6, IPV6_V6ONLY, 0), -EINVAL);
  const v4 = tcpNewSock(t.tcp);
  assert.equal(tcpSetsockopt(t.tcp, v4, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0, true, 'no IPv6 options on an AF_INET socket');
  assert.equal(tcpGetsockopt(t.tcp, v4, SOL_SOCKET, SO_DOMAIN), AF_INET);

  const t6 = new Tcp6Harness();
  listen6(t6, { v6only: true });
  t6.send({ flags: S, seq: 0, options: [['mss', 1440]] });
  assert.equal(t6.out()[0].flags, 'S.');
});

test('bind conflicts across families through the socket calls: [::] (dual) vs 0.0.0.0, and with IPV6_V6ONLY', () => {
  const t = new Tcp6Harness();
  const a = tcpNewSock(t.tcp, AF_INET6);
  assert.equal(tcpV6Bind(t.tcp, a, new Uint8Array(16), 9000), 0);
  const b = tcpNewSock(t.tcp);
  assert.equal(tcpBind(t.tcp, b, 0, 9000), -EADDRINUSE);
  const c = tcpNewSock(t.tcp, AF_INET6);
  tcpSetsockopt(t.tcp, c, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  assert.equal(tcpV6Bind(t.tcp, c, new Uint8Array(16), 9001), 0);
  const d = tcpNewSock(t.tcp);
  assert.equal(tcpBind(t.tcp, d, 0, 9001), 0, 'a v6-only [::] leaves IPv4 free');
});

test('inet6_bind: our addresses only (EADDRNOTAVAIL), link-local needs the scope id (EINVAL, ENODEV), a real address makes the socket v6-only', () => {
  const t = new Tcp6Harness();
  const tcp = t.tcp;
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), ip6('fd00::77'), 1000), -EADDRNOTAVAIL);
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), STACK6_LL, 1001), -EINVAL);
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), STACK6_LL, 1001, IFINDEX + 1), -ENODEV);
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), STACK6_LL, 1001, IFINDEX), 0);
  const s = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Bind(tcp, s, STACK6, 1002), 0);
  assert.equal(s.ipv6only, true);
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), ip6('::ffff:10.0.0.9'), 1003), -EADDRNOTAVAIL);
  const m = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Bind(tcp, m, ip6('::ffff:10.0.0.2'), 1004), 0);
  assert.equal(m.ipv6only, false);
  const o = tcpNewSock(tcp, AF_INET6);
  tcpSetsockopt(tcp, o, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  assert.equal(tcpV6Bind(tcp, o, ip6('::ffff:10.0.0.2'), 1005), -EINVAL);
});

test('tcp_v6_connect: :: and multicast are ENETUNREACH, link-local without a scope id EINVAL, v4-mapped under IPV6_V6ONLY ENETUNREACH', () => {
  const t = new Tcp6Harness();
  const tcp = t.tcp;
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), new Uint8Array(16), 80), -ENETUNREACH);
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), ip6('ff02::1'), 80), -ENETUNREACH);
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), ip6('fe80::1'), 80), -EINVAL);
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), ip6('fe80::1'), 80, IFINDEX), -115);
  const o = tcpNewSock(tcp, AF_INET6);
  tcpSetsockopt(tcp, o, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  assert.equal(tcpV6Connect(tcp, o, ip6('::ffff:10.0.0.1'), 80), -ENETUNREACH);
  // A dual-stack socket to a v4-mapped peer: the IPv4 path, mapped addresses on the socket.
  const d = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, d, ip6('::ffff:10.0.0.1'), 80), -115);
  assert.equal(d.ipv6, false);
  assert.equal(d.daddr, PEER_IP);
  assert.equal(formatIpv6(d.v6RcvSaddr!), '::ffff:10.0.0.2');
  const v4 = t.h.sent().filter((p) => p.tcp);
  assert.equal(v4.length, 1, 'the SYN went out over IPv4');
  assert.equal(v4[0].ip!.dst, PEER_IP);
  assert.match(v4[0].tcp!.options, /^mss 1460,/);
});

test('Packet Too Big lowers the MSS to mtu - 60 less options and resends what no longer fits; a bigger MTU is ignored', () => {
  const t = new Tcp6Harness();
  const c = accept6(t);
  t.out();
  tcpSetsockopt(t.tcp, c, 6, 1, 1); // TCP_NODELAY
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(1428 * 2, 7)), 2856);
  const first = t.out();
  assert.deepEqual(first.map((s) => s.len), [1428, 1428]);
  // The router's ICMPv6 quotes our first segment.
  const quoted = tcp6Packet({ src: STACK6, dst: PEER6, sport: c.num, dport: c.dport, seq: (t.stackIsn + 1) >>> 0, ack: 0, flags: A });
  t.pathMtu = 1280;
  tcpV6Err(t.tcp, ICMPV6_PKT_TOOBIG, 0, 1280, quoted, 0, quoted.length);
  assert.equal(c.mssCache, 1280 - 60 - 12);
  const re = t.out();
  assert.ok(re.length >= 2, 'retransmitted at the new size');
  for (const s of re) assert.ok(s.len <= 1208, `segment of ${s.len}`);
  assert.equal(re[0].seq, 1);
  // An MTU below IPv6's minimum, or not smaller than the current one, changes nothing.
  tcpV6Err(t.tcp, ICMPV6_PKT_TOOBIG, 0, 1000, quoted, 0, quoted.length);
  tcpV6Err(t.tcp, ICMPV6_PKT_TOOBIG, 0, 1400, quoted, 0, quoted.length);
  assert.equal(c.mssCache, 1208);
  // A window update re-syncs to the learnt path MTU, not the device's.
  t.send({ flags: A, seq: 1, ack: 1, win: 2000, options: [['nop'], ['nop'], ['TS', 110, 0]] });
  assert.equal(c.mssCache, 1208);
});

test('ICMPv6 unreachable: port unreachable ends a connection attempt (ECONNREFUSED); on an established one it is a soft error', () => {
  const t = new Tcp6Harness();
  const sk = tcpNewSock(t.tcp, AF_INET6);
  assert.equal(tcpV6Connect(t.tcp, sk, PEER6, 80), -115);
  t.out();
  const q = tcp6Packet({ src: STACK6, dst: PEER6, sport: sk.num, dport: 80, seq: t.stackIsn, flags: S });
  tcpV6Err(t.tcp, ICMPV6_DEST_UNREACH, 4, 0, q, 0, q.length);
  assert.equal(sk.state, TCP_CLOSE);
  assert.equal(sk.err, ECONNREFUSED);

  const t2 = new Tcp6Harness();
  const c = accept6(t2);
  t2.out();
  tcpSendmsg(t2.tcp, c, Buffer.from('x'));
  t2.out();
  const q2 = tcp6Packet({ src: STACK6, dst: PEER6, sport: c.num, dport: c.dport, seq: (t2.stackIsn + 1) >>> 0, flags: A });
  tcpV6Err(t2.tcp, ICMPV6_DEST_UNREACH, 3, 0, q2, 0, q2.length);
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.errSoft, EHOSTUNREACH);
  // Quoting a sequence number outside snd_una..snd_nxt: ignored and counted.
  const q3 = tcp6Packet({ src: STACK6, dst: PEER6, sport: c.num, dport: c.dport, seq: (t2.stackIsn + 99999) >>> 0, flags: A });
  tcpV6Err(t2.tcp, ICMPV6_DEST_UNREACH, 4, 0, q3, 0, q3.length);
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(t2.mibs.TcpExt.OutOfWindowIcmps, 1);
});

test('SYN cookies over IPv6: the cookie SYN-ACK keeps nothing; the ACK builds the connection with an MSS from IPv6 msstab', () => {
  const t = new Tcp6Harness();
  t.tcp.sysctl.tcp_syncookies = 2;
  const l = listen6(t);
  t.send({ flags: S, seq: 0, options: [['mss', 1440], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]] });
  const [sa] = t.out();
  assert.equal(sa.flags, 'S.');
  assert.equal(t.tcp.hashinfo.established, 0, 'no request sock kept');
  assert.equal(t.mibs.TcpExt.SyncookiesSent, 1);
  t.send({ flags: A, seq: 1, ack: 1, options: [['nop'], ['nop'], ['TS', 101, Number(/TS val (\d+)/.exec(sa.options)![1])]] });
  assert.equal(t.mibs.TcpExt.SyncookiesRecv, 1);
  const c = tcpAccept(t.tcp, l) as TcpSock;
  assert.equal(typeof c, 'object');
  assert.equal(c.ipv6, true);
  assert.equal(c.mssClamp, 1440, '1500 - 60 from the IPv6 table');
  assert.equal(c.sackOk, true);
  assert.equal(c.sndWscale, 7);
  // A forged ACK is reset.
  t.peerPort++;
  t.send({ flags: A, seq: 1, ack: 12345 });
  assert.equal(t.out()[0]?.flags, 'R');
  assert.equal(t.mibs.TcpExt.SyncookiesFailed, 1);
});

test('TIME_WAIT over IPv6: the closing side ACKs a retransmitted FIN from its IPv6 tw sock', () => {
  const t = new Tcp6Harness();
  const c = accept6(t, [['mss', 1440], ['nop'], ['wscale', 7]]);
  t.out();
  // We close first, the peer ACKs and sends its FIN: TIME_WAIT.
  tcpClose(t.tcp, c);
  const [fin] = t.out();
  assert.equal(fin.flags, 'F.');
  t.send({ flags: A | F, seq: 1, ack: 2 });
  const [ack] = t.out();
  assert.equal(ack.flags, '.');
  assert.equal(ack.ack, 2);
  // The FIN again: the tw sock answers, over IPv6, from our address.
  t.send({ flags: A | F, seq: 1, ack: 2 });
  const [again] = t.out();
  assert.equal(again.flags, '.');
  assert.deepEqual(again.saddr, Buffer.from(STACK6));
  assert.ok(again.csumOk);
});

test('an ICMPv6 port unreachable about our SYN-ACK drops the request (tcp_req_err); one quoting another ISN is out of window', () => {
  const t = new Tcp6Harness();
  const l = listen6(t);
  t.send({ flags: S, seq: 0, options: [['mss', 1440]] });
  t.out();
  assert.equal(l.reqQlen, 1);
  const wrong = tcp6Packet({ src: STACK6, dst: PEER6, sport: 8080, dport: t.peerPort, seq: (t.stackIsn + 5) >>> 0, flags: S | A });
  tcpV6Err(t.tcp, ICMPV6_DEST_UNREACH, 4, 0, wrong, 0, wrong.length);
  assert.equal(l.reqQlen, 1);
  assert.equal(t.mibs.TcpExt.OutOfWindowIcmps, 1);
  const q = tcp6Packet({ src: STACK6, dst: PEER6, sport: 8080, dport: t.peerPort, seq: t.stackIsn, flags: S | A });
  tcpV6Err(t.tcp, ICMPV6_DEST_UNREACH, 3, 0, q, 0, q.length);
  assert.equal(l.reqQlen, 1, 'address unreachable is not fatal');
  tcpV6Err(t.tcp, ICMPV6_DEST_UNREACH, 4, 0, q, 0, q.length);
  assert.equal(l.reqQlen, 0, 'port unreachable is');
  assert.equal(t.mibs.TcpExt.ListenDrops, 1);
  assert.equal(t.tcp.hashinfo.established, 0);
});

test('net.ipv6.bindv6only=1: new AF_INET6 sockets start v6-only (a [::] listener then refuses IPv4); the option still overrides', () => {
  const t = new TcpHarness(AF_INET);
  assert.equal(sysctlSet(t.h.stack, 'net.ipv6.bindv6only', '1'), 0);
  const l = listen6(t);
  assert.equal(l.ipv6only, true);
  t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
  assert.equal(t.out()[0].flags, 'R.');
  const d = tcpNewSock(t.tcp, AF_INET6);
  assert.equal(tcpSetsockopt(t.tcp, d, IPPROTO_IPV6, IPV6_V6ONLY, 0), 0);
  assert.equal(d.ipv6only, false);
  assert.equal(sysctlSet(t.h.stack, 'net.ipv6.bindv6only', '2') < 0, true, 'out of range');
});
