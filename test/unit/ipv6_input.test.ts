import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { ALL_NODES, PEER6, PEER_LL, PEER_MAC, STACK6, STACK_LL, STACK_MAC, echo6, eth, icmp6, ip6, ip6Frame, optsHdr, type Parsed } from '../lib/frames.js';
import { parseIpv6 } from '../../src/lib/addr.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { AF_INET6 } from '../../src/uapi.js';

const ping = (data = Buffer.from('abcdefgh'), src = PEER6, dst = STACK6) => echo6(0x1234, 7, data, src, dst);
const replies = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 129);
const probs = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 4);

test('echo request to the global address gets an echo reply with the same id, sequence, data and traffic class', () => {
  const h = Harness.withPeer(AF_INET6);
  h.rx(ip6Frame({ nexthdr: 58, payload: ping(Buffer.from('payload!')), tclass: 0x28, hopLimit: 7 }));
  const [r] = h.sent();
  assert.deepEqual(r.dst, PEER_MAC);
  assert.deepEqual(r.src, STACK_MAC);
  assert.equal(r.ip6!.src, 'fd00::2');
  assert.equal(r.ip6!.dst, 'fd00::1');
  assert.equal(r.ip6!.hopLimit, 64);
  assert.equal(r.ip6!.tclass, 0x28);
  assert.equal(r.ip6!.nexthdr, 58);
  assert.equal(r.icmp6!.type, 129);
  assert.equal(r.icmp6!.code, 0);
  assert.ok(r.icmp6!.csumOk);
  assert.equal(r.icmp6!.body.readUInt16BE(0), 0x1234);
  assert.equal(r.icmp6!.body.readUInt16BE(2), 7);
  assert.equal(r.icmp6!.body.subarray(4).toString(), 'payload!');
  const m = h.mibs;
  assert.equal(m.Icmp6.InEchos, 1);
  assert.equal(m.Icmp6.OutEchoReplies, 1);
  assert.equal(m.Icmp6Msg.toJSON().InType128, 1);
  assert.equal(m.Icmp6Msg.toJSON().OutType129, 1);
  assert.equal(m.Ip6.InDelivers >= 1, true);
  const c = h.stack.counters() as Record<string, Record<string, number>>;
  assert.equal(c.Ip6.InReceives, m.Ip6.InReceives);
  assert.equal(c.Icmp6.InType128, 1);
});

test('echo to the link-local address is answered from it; echo to all-nodes from our link-local address', () => {
  const h = Harness.ready(AF_INET6);
  h.rx(ip6Frame({ src: PEER_LL, dst: STACK_LL, nexthdr: 58, payload: ping(Buffer.from('ll'), PEER_LL, STACK_LL) }));
  // The peer's link-layer address is not known yet: a neighbour solicitation first.
  let out = h.sent();
  const ns = out.find((p) => p.icmp6?.type === 135)!;
  assert.ok(ns, 'solicits the peer');
  assert.equal(ns.ip6!.src, 'fe80::74:73ff:fe00:2');
  h.rx(ip6Frame({ src: PEER_LL, dst: STACK_LL, nexthdr: 58, hopLimit: 255, payload: icmp6(136, 0, Buffer.concat([Buffer.from([0x60, 0, 0, 0]), PEER_LL, Buffer.from([2, 1, ...PEER_MAC])]), PEER_LL, STACK_LL) }));
  out = h.sent();
  const [r] = replies(out);
  assert.equal(r.ip6!.src, 'fe80::74:73ff:fe00:2');
  assert.equal(r.ip6!.dst, 'fe80::ff:fe00:1');
  assert.deepEqual(r.dst, PEER_MAC);

  h.rx(ip6Frame({ src: PEER_LL, dst: ALL_NODES, nexthdr: 58, payload: ping(Buffer.from('all'), PEER_LL, ALL_NODES) }));
  const [m] = replies(h.sent());
  assert.equal(m.ip6!.src, 'fe80::74:73ff:fe00:2', 'a link-local source for a link-local peer');
  assert.equal(m.ip6!.dst, 'fe80::ff:fe00:1');
});

test('Ethernet padding after the payload length is ignored', () => {
  const h = Harness.withPeer(AF_INET6);
  const f = Buffer.concat([ip6Frame({ nexthdr: 58, payload: ping(Buffer.alloc(0)) }), Buffer.alloc(20, 0xee)]);
  h.rx(f);
  const [r] = h.sent();
  assert.equal(r.icmp6!.type, 129);
  assert.equal(r.icmp6!.body.length, 4);
});

interface BadCase {
  name: string;
  frame: Buffer;
  counters: [group: 'Ip6' | 'Icmp6', name: string][];
  drop: keyof typeof SKB_DROP_REASON;
}

const payload = ping(Buffer.from('x'));
const other = parseIpv6('fd00::77')!;
const badCases: BadCase[] = [
  { name: 'shorter than an IPv6 header', frame: eth(STACK_MAC, PEER_MAC, 0x86dd, Buffer.alloc(30, 0x60)), counters: [['Ip6', 'InHdrErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'version 4 in an IPv6 frame', frame: ip6Frame({ nexthdr: 58, payload, version: 4 }), counters: [['Ip6', 'InHdrErrors']], drop: 'UNHANDLED_PROTO' },
  { name: 'payload length beyond the frame', frame: ip6Frame({ nexthdr: 58, payload, plen: 500 }), counters: [['Ip6', 'InTruncatedPkts']], drop: 'PKT_TOO_SMALL' },
  { name: 'a destination that is not ours', frame: ip6Frame({ nexthdr: 58, payload, dst: other }), counters: [['Ip6', 'InAddrErrors']], drop: 'IP_INADDRERRORS' },
  { name: 'a multicast source', frame: ip6Frame({ nexthdr: 58, payload, src: parseIpv6('ff02::5')! }), counters: [['Ip6', 'InHdrErrors']], drop: 'IP_INVALID_SOURCE' },
  { name: 'the loopback address as destination', frame: eth(STACK_MAC, PEER_MAC, 0x86dd, ip6({ nexthdr: 58, payload, dst: parseIpv6('::1')! })), counters: [['Ip6', 'InHdrErrors']], drop: 'IP_INVALID_SOURCE' },
  // Its MAC is that of our solicited-node group, so the link filter lets it through.
  { name: 'a multicast group we did not join', frame: ip6Frame({ nexthdr: 58, payload, dst: parseIpv6('ff05::1:ff00:2')! }), counters: [['Ip6', 'InMcastPkts']], drop: 'OTHERHOST' },
  { name: 'a bad ICMPv6 checksum', frame: ip6Frame({ nexthdr: 58, payload: icmp6(128, 0, Buffer.alloc(8), PEER6, STACK6, true) }), counters: [['Icmp6', 'InCsumErrors'], ['Icmp6', 'InErrors']], drop: 'ICMP_CSUM' },
  { name: 'a truncated ICMPv6 header', frame: ip6Frame({ nexthdr: 58, payload: Buffer.from([128, 0, 0]) }), counters: [['Icmp6', 'InErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'an ICMPv6 error quoting less than an IPv6 header', frame: ip6Frame({ nexthdr: 58, payload: icmp6(1, 4, Buffer.alloc(24, 0x60)) }), counters: [['Icmp6', 'InErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'an ICMPv6 error whose quoted extension headers run past it', frame: ip6Frame({ nexthdr: 58, payload: icmp6(1, 4, Buffer.concat([Buffer.alloc(4), ip6({ nexthdr: 60, payload: Buffer.alloc(0) }), Buffer.from([17, 9])])) }), counters: [['Icmp6', 'InErrors']], drop: 'IPV6_BAD_EXTHDR' },
  { name: 'PadN with non-zero bytes in a destination options header', frame: ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 1, 4, 0, 0, 1, 0]), payload]) }), counters: [['Ip6', 'InHdrErrors']], drop: 'IPV6_BAD_EXTHDR' },
  { name: 'more than 7 bytes of padding in a row', frame: ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 1, 1, 6, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0]), payload]) }), counters: [['Ip6', 'InHdrErrors']], drop: 'IPV6_BAD_EXTHDR' },
  { name: 'an option running past its header', frame: ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 0x1e, 9, 0, 0, 0, 0]), payload]) }), counters: [['Ip6', 'InHdrErrors']], drop: 'IPV6_BAD_EXTHDR' },
  { name: 'an extension header past the packet', frame: ip6Frame({ nexthdr: 60, payload: Buffer.from([58, 4, 1, 4, 0, 0, 0, 0]) }), counters: [['Ip6', 'InHdrErrors']], drop: 'IP_INHDR' },
];

for (const c of badCases) {
  test(`dropped and counted: ${c.name}; the stack keeps answering`, () => {
    const h = Harness.withPeer(AF_INET6);
    const m = h.mibs as unknown as Record<string, Record<string, number>>;
    const before = c.counters.map(([g, n]) => m[g][n]);
    const dropBefore = h.mibs.Drop.counts[SKB_DROP_REASON[c.drop]];
    h.rx(c.frame);
    assert.deepEqual(h.sent(), [], 'nothing sent in answer');
    c.counters.forEach(([g, n], i) => assert.equal(m[g][n], before[i] + 1, `${g}.${n}`));
    assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON[c.drop]], dropBefore + 1, `drop reason ${c.drop}`);
    h.rx(ip6Frame({ nexthdr: 58, payload: ping() }));
    assert.equal(replies(h.sent()).length, 1, 'still answers pings');
  });
}

test('an unknown next header gets a parameter problem, code 1, pointing at the IPv6 header\'s next-header byte', () => {
  const h = Harness.withPeer(AF_INET6);
  const pkt = ip6({ nexthdr: 99, payload: Buffer.from('hello world!') });
  h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, pkt));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 1);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 6);
  assert.deepEqual(p.icmp6!.body.subarray(4), pkt, 'the whole packet quoted');
  assert.equal(p.ip6!.src, 'fd00::2');
  assert.equal(p.ip6!.dst, 'fd00::1');
  assert.ok(p.icmp6!.csumOk);
  assert.equal(h.mibs.Ip6.InUnknownProtos, 1);
  assert.equal(h.mibs.Icmp6.OutParmProblems, 1);
});

test('extension header chains: hop-by-hop, destination options, routing (0 segments left), fragment (atomic) reach ICMPv6', () => {
  const h = Harness.withPeer(AF_INET6);
  const chain = Buffer.concat([
    optsHdr(60, [1, 0]), // hop-by-hop: PadN
    optsHdr(43, []), // destination options: padding only
    Buffer.from([44, 0, 0, 0, 0, 0, 0, 0]), // routing type 0, segments left 0
    Buffer.from([58, 0, 0, 0, 0, 0, 0, 9]), // atomic fragment
    ping(Buffer.from('chain')),
  ]);
  h.rx(ip6Frame({ nexthdr: 0, payload: chain }));
  const [r] = replies(h.sent());
  assert.equal(r.icmp6!.body.subarray(4).toString(), 'chain');
  assert.equal(h.mibs.Ip6.ReasmReqds, 1);
  assert.equal(h.mibs.Ip6.ReasmOKs, 1, 'an atomic fragment counts as reassembled (RFC 6946, as Linux counts it)');
});

test('unknown next header after extension headers: the pointer names the header that named it', () => {
  const h = Harness.withPeer(AF_INET6);
  // IPv6 (40) + hop-by-hop (8) + destination options (8) naming protocol 250.
  const pkt = ip6({ nexthdr: 0, payload: Buffer.concat([optsHdr(60, []), optsHdr(250, []), Buffer.alloc(8)]) });
  h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, pkt));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 1);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 48);
});

test('a hop-by-hop header anywhere but first is an unknown next header', () => {
  const h = Harness.withPeer(AF_INET6);
  const pkt = ip6({ nexthdr: 60, payload: Buffer.concat([optsHdr(0, []), optsHdr(58, []), ping()]) });
  h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, pkt));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 1);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 40);
  assert.equal(replies(h.sent()).length, 0);
});

for (const [bits, what] of [
  [0x00, 'skipped: the packet is processed'],
  [0x40, 'the packet is discarded silently'],
  [0x80, 'discarded with a parameter problem, code 2, at the option'],
  [0xc0, 'discarded with a parameter problem (unicast destination)'],
] as const) {
  test(`an unknown option with action bits ${(bits >> 6).toString(2).padStart(2, '0')}: ${what}`, () => {
    const h = Harness.withPeer(AF_INET6);
    const type = bits | 0x1e;
    // Destination options: [nh, len, PadN(0 bytes) ... ] then the option at offset 40+4.
    const pkt = ip6({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 1, 0, type, 2, 0, 0]), ping()]) });
    h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, pkt));
    const out = h.sent();
    if (bits === 0) {
      assert.equal(replies(out).length, 1);
      return;
    }
    assert.equal(replies(out).length, 0);
    assert.equal(h.mibs.Ip6.InHdrErrors, 1);
    if (bits === 0x40) {
      assert.deepEqual(out, []);
      return;
    }
    const [p] = probs(out);
    assert.equal(p.icmp6!.code, 2);
    assert.equal(p.icmp6!.body.readUInt32BE(0), 44);
  });
}

test('unknown options to a multicast destination: 10 still gets a parameter problem, 11 does not', () => {
  for (const [bits, answered] of [[0x80, true], [0xc0, false]] as const) {
    const h = Harness.withPeer(AF_INET6);
    const pkt = Buffer.concat([Buffer.from([58, 0, 1, 0, bits | 0x1e, 2, 0, 0]), ping(Buffer.from('m'), PEER6, ALL_NODES)]);
    h.rx(ip6Frame({ nexthdr: 60, dst: ALL_NODES, payload: pkt }));
    const ps = probs(h.sent());
    assert.equal(ps.length, answered ? 1 : 0, `bits ${bits.toString(16)}`);
    if (answered) {
      assert.equal(ps[0].icmp6!.code, 2);
      assert.equal(ps[0].ip6!.src, 'fd00::2', 'from a unicast address of ours');
    }
  }
});

test('routing header: type 0 with segments left gets a parameter problem at the type field; segment routing is dropped', () => {
  const h = Harness.withPeer(AF_INET6);
  const rh0 = Buffer.concat([Buffer.from([58, 2, 0, 1, 0, 0, 0, 0]), parseIpv6('fd00::9')!]);
  h.rx(ip6Frame({ nexthdr: 43, payload: Buffer.concat([rh0, ping()]) }));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 0);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 42);
  const before = h.mibs.Drop.counts[SKB_DROP_REASON.IPV6_BAD_EXTHDR];
  const srh = Buffer.concat([Buffer.from([58, 2, 4, 0, 0, 0, 0, 0]), parseIpv6('fd00::2')!]);
  h.rx(ip6Frame({ nexthdr: 43, payload: Buffer.concat([srh, ping()]) }));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.IPV6_BAD_EXTHDR], before + 1);
});

test('the IPv4 path is untouched: an IPv4 ping is still answered by a dual-stack stack', () => {
  const h = Harness.withPeer(AF_INET6);
  // An IPv4 echo request from the peer's IPv4 address.
  const ip4 = Buffer.from('4500001c12340000400100000a0000010a0000020800f7ff00000000', 'hex');
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += ip4.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  ip4.writeUInt16BE(~s & 0xffff, 10);
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0800, ip4));
  const out = h.link.take();
  assert.ok(out.some((f) => f.readUInt16BE(12) === 0x0806 || f.readUInt16BE(12) === 0x0800));
  assert.equal(h.mibs.Icmp.InEchos, 1);
});

test('net.ipv6.max_dst_opts_number: more options than allowed drop the packet; a negative limit drops unknown options silently', () => {
  const h = Harness.withPeer(AF_INET6);
  h.stack.ipv6.cnf.max_dst_opts_number = 1;
  // Two skippable (action 00) options: one over the limit.
  h.rx(ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 0x1e, 0, 0x1f, 0, 0, 0]), ping()]) }));
  assert.equal(replies(h.sent()).length, 0);
  assert.equal(h.mibs.Ip6.InHdrErrors, 1);
  h.stack.ipv6.cnf.max_dst_opts_number = -8;
  h.rx(ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 1, 0, 0x9e, 2, 0, 0]), ping()]) }));
  assert.deepEqual(h.sent(), [], 'no parameter problem even for action 10');
  assert.equal(h.mibs.Ip6.InHdrErrors, 2);
  h.rx(ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 1, 4, 0, 0, 0, 0]), ping()]) }));
  assert.equal(replies(h.sent()).length, 1, 'padding alone is fine');
});
