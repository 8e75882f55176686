/**
 * TCP over IPv6 and dual-stack sockets, deterministic, through the stack's
 * own IPv6 layer (the peer's segments and ICMPv6 errors arrive as frames
 * through ipv6_rcv; ours leave through ip6_xmit and the neighbour cache):
 * handshakes with options, window and MSS (mtu - 60) over IPv6, checksums
 * over the IPv6 pseudo-header, a dual-stack listener taking an IPv4 SYN as
 * v4-mapped, IPV6_V6ONLY refusing IPv4, Packet Too Big lowering the MSS
 * through the path-MTU cache, resets for a closed port, ICMPv6 errors, SYN
 * cookies, the bind/connect rules of inet6_bind and tcp_v6_connect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, S, A, F, R, P } from '../lib/tcp_harness.js';
import { Harness } from '../lib/harness.js';
import { ALL_NODES, PEER6, PEER_IP, PEER_MAC, STACK6, STACK_IP, STACK_LL, naMsg, ndFrame } from '../lib/frames.js';
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
import { ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
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

function listen6(t: TcpHarness, opts: { v6only?: boolean; addr?: Uint8Array; backlog?: number } = {}): TcpSock {
  const l = tcpNewSock(t.tcp, AF_INET6);
  tcpSetsockopt(t.tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
  if (opts.v6only) assert.equal(tcpSetsockopt(t.tcp, l, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
  assert.equal(tcpV6Bind(t.tcp, l, opts.addr ?? new Uint8Array(16), t.localPort), 0);
  assert.equal(tcpListen(t.tcp, l, opts.backlog ?? 8), 0);
  return l;
}

/** Passive open over IPv6: the SYN-ACK's fields, then accept. */
function accept6(t: TcpHarness, synOpts: (string | number)[][] = [['mss', 1440], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]]): TcpSock {
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
  const t = new TcpHarness(AF_INET6);
  listen6(t);
  t.send({ flags: S, seq: 0, win: 64800, options: [['mss', 1440], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]], tos: 0x03 << 2 });
  const out = t.out();
  assert.equal(out.length, 1);
  const sa = out[0];
  assert.equal(sa.flags, 'S.');
  assert.equal(sa.ack, 1);
  assert.equal(sa.src, 'fd00::2');
  assert.equal(sa.dst, 'fd00::1');
  assert.equal(sa.sport, 8080);
  assert.equal(sa.dport, 54321);
  // out() has checked the checksum over the IPv6 pseudo-header: complete, as no offload is on.
  assert.equal(sa.csumPartial, false);
  assert.match(sa.options, /^mss 1440,sackOK,TS val \d+ ecr 100,nop,wscale 7$/);
  assert.equal(sa.win, 45 * 1428, 'the initial window rounded down to the MSS less timestamps (tcp_select_initial_window)');
  assert.equal(sa.tos, 0x0c, 'the SYN-ACK reflects the DSCP as the v4 path does (ECN bits cleared)');
  t.send({ flags: A, seq: 1, ack: 1, win: 507, options: [['nop'], ['nop'], ['TS', 101, Number(/TS val (\d+)/.exec(sa.options)![1])]] });
  assert.equal(t.out().length, 0);
});

test('IPv6 established: data both ways, MSS 1428 with timestamps, the child is AF_INET6 over IPv6 with both addresses', () => {
  const t = new TcpHarness(AF_INET6);
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
  const buf = Buffer.alloc(64);
  const n = tcpRecvmsg(t.tcp, c, buf);
  assert.equal(buf.subarray(0, n).toString(), 'hello over v6');
  // 5000 bytes out: MSS-sized segments with software segmentation (no TSO), every checksum right (out() checks).
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(5000, 0x42)), 5000);
  const segs = t.out();
  assert.ok(segs.length >= 4);
  for (const s of segs) {
    assert.ok(s.len <= 1428, `segment of ${s.len} exceeds the MSS`);
    assert.equal(s.gsoSize, 0);
    assert.equal(s.dst, 'fd00::1');
  }
  assert.equal(segs.reduce((a, s) => a + s.len, 0), 5000);
});

test('IPv6 active open: source from the IPv6 layer, ephemeral port, SYN with mss 1440, then established', () => {
  const t = new TcpHarness(AF_INET6);
  const sk = tcpNewSock(t.tcp, AF_INET6);
  assert.equal(tcpV6Connect(t.tcp, sk, PEER6, 80), -115);
  assert.equal(sk.state, TCP_SYN_SENT);
  assert.ok(sk.num >= 32768 && sk.num <= 60999);
  const [syn] = t.out();
  assert.equal(syn.flags, 'S');
  assert.equal(syn.src, 'fd00::2');
  assert.equal(syn.dst, 'fd00::1');
  assert.equal(syn.dport, 80);
  assert.match(syn.options, /^mss 1440,sackOK,TS val \d+ ecr 0,nop,wscale \d+$/);
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
  const t = new TcpHarness(AF_INET6);
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

test('IPv6 output offloads: CHECKSUM_PARTIAL leaves the IPv6 pseudo-header sum; TSO hands the device one super-frame of gso_size MSS', () => {
  const t = new TcpHarness(AF_INET6);
  t.h.stack.dev.csumOffload = true;
  t.h.stack.dev.tso = true;
  const c = accept6(t);
  t.out();
  tcpSetsockopt(t.tcp, c, 6, 1, 1); // TCP_NODELAY
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(8000, 1)), 8000);
  const segs = t.out();
  assert.ok(segs.length >= 1);
  const big = segs.find((s) => s.gsoSize > 0);
  assert.ok(big, 'a TSO super-segment');
  assert.equal(big.gsoSize, 1428);
  assert.ok(big.len > 1428, 'more than one MSS in the frame');
  // out() has checked that each check field holds the IPv6 pseudo-header sum.
  for (const s of segs) assert.ok(s.csumPartial);
});

test('a closed port over IPv6: RST|ACK for a SYN, RST at its ack for an ACK, never a reset for a reset', () => {
  const t = new TcpHarness(AF_INET6);
  t.send({ flags: S, seq: 0, tos: 0xb8 | 1 });
  const [r1] = t.out();
  assert.equal(r1.flags, 'R.');
  assert.equal(r1.ack, 1);
  assert.equal(r1.seq >>> 0, (0 - t.stackIsn) >>> 0);
  assert.equal(r1.src, 'fd00::2');
  assert.equal(r1.dst, 'fd00::1');
  assert.equal(r1.tos, 0xb8, 'the incoming traffic class without its ECN bits');
  assert.equal(t.mibs.Tcp.OutRsts, 1);
  t.send({ flags: A, seq: 1, ack: 0x12345 });
  const [r2] = t.out();
  assert.equal(r2.flags, 'R');
  assert.equal(r2.tcpFlags, R);
  assert.equal((r2.seq + t.stackIsn) >>> 0, 0x12345);
  t.send({ flags: R, seq: 1 });
  assert.equal(t.out().length, 0);
  assert.equal(t.mibs.Tcp.OutRsts, 2);
});

test('not to one of our unicast addresses (multicast): dropped without a reset', () => {
  const t = new TcpHarness(AF_INET6);
  const l = listen6(t);
  const mcastIn = t.mibs.Ip6.InMcastPkts;
  t.send({ flags: S, seq: 0, dst: ALL_NODES, sport: 1 });
  assert.equal(t.mibs.Ip6.InMcastPkts, mcastIn + 1, 'IPv6 took it (all-nodes is joined)');
  assert.equal(t.mibs.Drop.counts[SKB_DROP_REASON.OTHERHOST], 1, 'tcp_v6_rcv dropped it');
  assert.equal(t.out().length, 0);
  assert.equal(l.reqQlen, 0, 'no request sock');
  assert.equal(t.mibs.Tcp.OutRsts, 0);
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

  const t6 = new TcpHarness(AF_INET6);
  listen6(t6, { v6only: true });
  t6.send({ flags: S, seq: 0, options: [['mss', 1440]] });
  assert.equal(t6.out()[0].flags, 'S.');
});

test('bind conflicts across families through the socket calls: [::] (dual) vs 0.0.0.0, and with IPV6_V6ONLY', () => {
  const t = new TcpHarness(AF_INET6);
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
  const t = new TcpHarness(AF_INET6);
  const tcp = t.tcp;
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), ip6('fd00::77'), 1000), -EADDRNOTAVAIL);
  const ifindex = t.h.stack.dev.ifindex;
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), STACK_LL, 1001), -EINVAL);
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), STACK_LL, 1001, ifindex + 1), -ENODEV);
  assert.equal(tcpV6Bind(tcp, tcpNewSock(tcp, AF_INET6), STACK_LL, 1001, ifindex), 0);
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
  const t = new TcpHarness(AF_INET6);
  const tcp = t.tcp;
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), new Uint8Array(16), 80), -ENETUNREACH);
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), ip6('ff02::1'), 80), -ENETUNREACH);
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), ip6('fe80::1'), 80), -EINVAL);
  assert.equal(tcpV6Connect(tcp, tcpNewSock(tcp, AF_INET6), ip6('fe80::1'), 80, t.h.stack.dev.ifindex), -115);
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
  const t = new TcpHarness(AF_INET6);
  const c = accept6(t);
  t.out();
  tcpSetsockopt(t.tcp, c, 6, 1, 1); // TCP_NODELAY
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(1428 * 2, 7)), 2856);
  const first = t.out();
  assert.deepEqual(first.map((s) => s.len), [1428, 1428]);
  // A Packet Too Big quotes our first segment: the path-MTU cache learns 1280, TCP lowers the MSS.
  const quoted = t.ourPacket({ sport: c.num, dport: c.dport, seq: (t.stackIsn + 1) >>> 0, ack: 0, flags: A, payload: first[0].payload });
  t.icmpError(ICMPV6_PKT_TOOBIG, 0, 1280, quoted);
  assert.equal(t.mibs.Icmp6.InPktTooBigs, 1);
  assert.equal(c.mssCache, 1280 - 60 - 12);
  const re = t.out();
  assert.ok(re.length >= 2, 'retransmitted at the new size');
  for (const s of re) assert.ok(s.len <= 1208, `segment of ${s.len}`);
  assert.equal(re[0].seq, 1);
  // An MTU below IPv6's minimum, or not smaller than the current one, changes nothing.
  t.icmpError(ICMPV6_PKT_TOOBIG, 0, 1000, quoted);
  t.icmpError(ICMPV6_PKT_TOOBIG, 0, 1400, quoted);
  assert.equal(t.mibs.Icmp6.InPktTooBigs, 3);
  assert.equal(c.mssCache, 1208);
  assert.deepEqual(t.out(), [], 'nothing resent');
  // A window update re-syncs to the learnt path MTU, not the device's.
  t.send({ flags: A, seq: 1, ack: 1, win: 2000, options: [['nop'], ['nop'], ['TS', 110, 0]] });
  assert.equal(c.mssCache, 1208);
});

test('ICMPv6 unreachable: port unreachable ends a connection attempt (ECONNREFUSED); on an established one it is a soft error', () => {
  const t = new TcpHarness(AF_INET6);
  const sk = tcpNewSock(t.tcp, AF_INET6);
  assert.equal(tcpV6Connect(t.tcp, sk, PEER6, 80), -115);
  t.out();
  t.icmpError(ICMPV6_DEST_UNREACH, 4, 0, t.ourPacket({ sport: sk.num, dport: 80, seq: t.stackIsn, flags: S }));
  assert.equal(sk.state, TCP_CLOSE);
  assert.equal(sk.err, ECONNREFUSED);

  const t2 = new TcpHarness(AF_INET6);
  const c = accept6(t2);
  t2.out();
  tcpSendmsg(t2.tcp, c, Buffer.from('x'));
  t2.out();
  t2.icmpError(ICMPV6_DEST_UNREACH, 3, 0, t2.ourPacket({ sport: c.num, dport: c.dport, seq: (t2.stackIsn + 1) >>> 0, flags: A }));
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.errSoft, EHOSTUNREACH);
  // Quoting a sequence number outside snd_una..snd_nxt: ignored and counted.
  t2.icmpError(ICMPV6_DEST_UNREACH, 4, 0, t2.ourPacket({ sport: c.num, dport: c.dport, seq: (t2.stackIsn + 99999) >>> 0, flags: A }));
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(t2.mibs.TcpExt.OutOfWindowIcmps, 1);
});

test('SYN cookies over IPv6: the cookie SYN-ACK keeps nothing; the ACK builds the connection with an MSS from IPv6 msstab', () => {
  const t = new TcpHarness(AF_INET6);
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
  const t = new TcpHarness(AF_INET6);
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
  assert.equal(again.src, 'fd00::2');
  assert.equal(again.dst, 'fd00::1');
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

// --- the IPv6 header and the device's view -------------------------------------------------------

/** A passive open without timestamps (mss 1440, wscale 7) and a window of 1000 << 7 from the peer. */
function established6(t: TcpHarness): TcpSock {
  const l = listen6(t, { backlog: 16 });
  t.send({ flags: S, seq: 0, options: [['mss', 1440], ['nop'], ['wscale', 7]] });
  const [sa] = t.out();
  assert.equal(sa.flags, 'S.');
  t.send({ flags: A, seq: 1, ack: 1, win: 1000 });
  const c = tcpAccept(t.tcp, l) as TcpSock;
  assert.equal(typeof c, 'object');
  return c;
}

test('the SYN-ACK leaves through ip6_xmit: IPv6 header from fd00::2 to fd00::1, hop limit 64, next header TCP, mss 1440, checksum right', () => {
  const t = new TcpHarness(AF_INET6);
  listen6(t, { backlog: 16 });
  t.send({ flags: S, seq: 0, options: [['mss', 1440], ['sackOK'], ['nop'], ['wscale', 7]] });
  const out = t.h.sent();
  assert.equal(out.length, 1);
  const [p] = out;
  assert.equal(p.type, 0x86dd);
  assert.deepEqual(p.dst, PEER_MAC, "to the peer's MAC, from the neighbour cache");
  const ip = p.ip6!;
  assert.equal(ip.src, 'fd00::2');
  assert.equal(ip.dst, 'fd00::1');
  assert.equal(ip.hopLimit, 64);
  assert.equal(ip.nexthdr, 6);
  assert.equal(ip.plen, 20 + 12);
  const sa = p.tcp!;
  assert.equal(sa.flags, S | A);
  assert.equal(sa.ack, t.peerIsn + 1);
  assert.equal(sa.options, 'mss 1440,nop,nop,sackOK,nop,wscale 7');
  assert.ok(sa.csumOk);
  assert.equal(t.mibs.Ip6.OutRequests > 0, true);
});

test('a handshake and data from the wire over IPv6; our data comes back MSS-sized with the IPv6 checksum', () => {
  const t = new TcpHarness(AF_INET6);
  const c = established6(t);
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.ipv6, true);
  t.send({ flags: A | P, seq: 1, ack: 1, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') });
  const buf = Buffer.alloc(100);
  assert.equal(tcpRecvmsg(t.tcp, c, buf), 18);
  t.out();
  t.send({ flags: A, seq: 19, ack: 1, win: 1000 });
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(4000, 0x5a)), 4000);
  // out() has checked every checksum over the IPv6 pseudo-header.
  const segs = t.out().filter((s) => s.len > 0);
  assert.ok(segs.length >= 1);
  for (const s of segs) {
    assert.ok(s.len <= 1440);
    assert.equal(s.src, 'fd00::2');
  }
});

test('an ICMPv6 Packet Too Big quoting our segment lowers the MSS to 1280 - 60 and the resent data fits', () => {
  const t = new TcpHarness(AF_INET6);
  const c = established6(t);
  t.out();
  tcpSetsockopt(t.tcp, c, 6, 1, 1);
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(1440, 1)), 1440);
  const [big] = t.out();
  assert.equal(big.len, 1440);
  // The router's error: type 2, the MTU, as much of our packet as fits.
  const quoted = t.ourPacket({ seq: (t.stackIsn + 1) >>> 0, ack: (t.peerIsn + 1) >>> 0, flags: A, payload: Buffer.alloc(1440, 1) });
  t.icmpError(ICMPV6_PKT_TOOBIG, 0, 1280, quoted, ip6('fd00::1'));
  assert.equal(c.mssCache, 1220);
  const re = t.out().filter((s) => s.len > 0);
  assert.ok(re.length >= 2, 'retransmitted in two segments');
  for (const s of re) assert.ok(40 + 20 + s.len <= 1280, `a ${s.len}-byte segment does not fit 1280`);
});

test('connect to our own address: the handshake runs over the loopback backlog through tcp_v6_rcv, after the call returns', async () => {
  const t = new TcpHarness(AF_INET6);
  const tcp = t.tcp;
  const l = listen6(t, { backlog: 16 });
  const sk = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, sk, STACK6, 8080), -115);
  // Like Linux's NET_RX softirq, the loopback backlog runs once the socket call is over.
  assert.equal(sk.state, TCP_SYN_SENT);
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
  assert.equal(t.mibs.TcpExt.TCPChallengeACK, 0);
  assert.deepEqual(t.out(), [], 'nothing on the wire');
});

test('an active open to fd00::1 resolves the neighbour by NDP, then the SYN leaves from fd00::2', () => {
  // The bare harness: the peer is not known yet, and answers only what the test sends.
  const h = Harness.ready(AF_INET6);
  const tcp = h.stack.tcp;
  const sk = tcpNewSock(tcp, AF_INET6);
  assert.equal(tcpV6Connect(tcp, sk, PEER6, 80), -115);
  const first = h.sent();
  assert.equal(first.filter((p) => p.tcp).length, 0, 'the SYN waits for the neighbour');
  const ns = first.find((p) => p.icmp6?.type === 135);
  assert.ok(ns, 'a neighbour solicitation for fd00::1');
  assert.equal(ns.ip6!.dst, 'ff02::1:ff00:1');
  // The peer answers; the queued SYN goes out.
  h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
  const [syn] = h.sent().filter((p) => p.tcp);
  assert.equal(syn.tcp!.flags, S);
  assert.equal(syn.ip6!.src, 'fd00::2');
  assert.equal(syn.tcp!.dport, 80);
  assert.match(syn.tcp!.options, /^mss 1440,/);
  assert.ok(syn.tcp!.csumOk);
});

test('TSO: a GSO super-segment over IPv6 leaves whole as one IPv6 frame with gso_size = MSS', () => {
  const t = new TcpHarness(AF_INET6);
  t.h.stack.dev.tso = true;
  const c = established6(t);
  t.out();
  tcpSetsockopt(t.tcp, c, 6, 1, 1);
  // The peer's window was 1000 << 7: room for a super-segment.
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(20000, 2)), 20000);
  const seen = t.h.sent();
  const big = seen.find((p) => p.gsoSize > 0);
  assert.ok(big, JSON.stringify(seen.map((p) => [p.type, p.gsoSize])));
  assert.equal(big.type, 0x86dd, 'an IPv6 frame: the TAP driver writes VIRTIO_NET_HDR_GSO_TCPV6 for it');
  assert.equal(big.gsoSize, 1440);
  assert.ok(14 + 40 + big.ip6!.plen > 1514);
});
