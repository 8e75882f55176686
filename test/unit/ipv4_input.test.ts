import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { PEER_IP, PEER_MAC, STACK_IP, STACK_MAC, echo, eth, icmp, ipFrame, ipv4, tcp, udp } from '../lib/frames.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import { ipFastCsum } from '../../src/lib/checksum.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { AF_INET } from '../../src/uapi.js';

const ping = (data = Buffer.from('abcdefgh')) => ipFrame({ proto: 1, payload: echo(7, 1, data) });

test('echo request gets an echo reply with the same id, sequence and data', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, tos: 0x10, payload: echo(0x4242, 9, Buffer.from('payload!')) }));
  const [r] = h.sent();
  assert.deepEqual(r.dst, PEER_MAC);
  assert.deepEqual(r.src, STACK_MAC);
  assert.equal(r.ip!.src, STACK_IP);
  assert.equal(r.ip!.dst, PEER_IP);
  assert.equal(r.ip!.ttl, 64);
  assert.equal(r.ip!.tos, 0x10);
  assert.equal(r.ip!.df, false);
  assert.ok(r.ip!.csumOk);
  assert.equal(r.icmp!.type, 0);
  assert.equal(r.icmp!.rest, (0x4242 << 16) | 9);
  assert.equal(r.icmp!.data.toString(), 'payload!');
  assert.ok(r.icmp!.csumOk);
  assert.equal(h.mibs.Icmp.InEchos, 1);
  assert.equal(h.mibs.Icmp.OutEchoReps, 1);
  assert.equal(h.mibs.IcmpMsg.toJSON().InType8, 1);
  assert.equal(h.mibs.IcmpMsg.toJSON().OutType0, 1);
  assert.equal(h.mibs.Ip.InDelivers, 1);
});

test('Ethernet padding after the IP total length is ignored', () => {
  const h = Harness.withPeer(AF_INET);
  const f = Buffer.concat([ping(Buffer.alloc(0)), Buffer.alloc(20, 0xee)]);
  h.rx(f);
  const [r] = h.sent();
  assert.equal(r.icmp!.type, 0);
  assert.equal(r.icmp!.data.length, 0);
});

interface BadCase {
  name: string;
  frame: Buffer;
  counters: [group: 'Ip' | 'IpExt' | 'Icmp' | 'Udp' | 'Tcp', name: string][];
  drop: keyof typeof SKB_DROP_REASON;
}

const payload = echo(1, 1, Buffer.from('x'));
const badCases: BadCase[] = [
  { name: 'shorter than an IP header', frame: eth(STACK_MAC, PEER_MAC, 0x0800, Buffer.alloc(10, 0x45)), counters: [['Ip', 'InHdrErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'version 6 in an IPv4 frame', frame: ipFrame({ proto: 1, payload, version: 6 }), counters: [['Ip', 'InHdrErrors']], drop: 'IP_INHDR' },
  { name: 'IHL below 5', frame: ipFrame({ proto: 1, payload, ihl: 16 }), counters: [['Ip', 'InHdrErrors']], drop: 'IP_INHDR' },
  { name: 'IHL past the frame', frame: eth(STACK_MAC, PEER_MAC, 0x0800, Buffer.from([0x4f, 0, 0, 24, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 0, 0])), counters: [['Ip', 'InHdrErrors']], drop: 'IP_INHDR' },
  { name: 'bad header checksum', frame: ipFrame({ proto: 1, payload, badCsum: true }), counters: [['Ip', 'InHdrErrors'], ['IpExt', 'InCsumErrors']], drop: 'IP_CSUM' },
  { name: 'total length beyond the frame', frame: ipFrame({ proto: 1, payload, totLen: 1000 }), counters: [['IpExt', 'InTruncatedPkts']], drop: 'PKT_TOO_SMALL' },
  { name: 'total length below the header', frame: ipFrame({ proto: 1, payload, totLen: 12 }), counters: [['Ip', 'InHdrErrors']], drop: 'IP_INHDR' },
  { name: 'a destination that is not ours', frame: ipFrame({ proto: 1, payload, dst: parseIpv4('10.0.0.77')! }), counters: [['Ip', 'InAddrErrors']], drop: 'IP_INADDRERRORS' },
  { name: 'our own address as the source (a LAND attack)', frame: ipFrame({ proto: 1, payload, src: STACK_IP }), counters: [], drop: 'IP_LOCAL_SOURCE' },
  { name: 'a martian (multicast) source', frame: ipFrame({ proto: 1, payload, src: parseIpv4('224.1.2.3')! }), counters: [], drop: 'IP_INVALID_SOURCE' },
  { name: 'a bad ICMP checksum', frame: ipFrame({ proto: 1, payload: icmp(8, 0, 1, Buffer.from('abc'), true) }), counters: [['Icmp', 'InCsumErrors'], ['Icmp', 'InErrors']], drop: 'ICMP_CSUM' },
  { name: 'a truncated ICMP header', frame: ipFrame({ proto: 1, payload: Buffer.from([8, 0, 0]) }), counters: [['Icmp', 'InErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'an ICMP timestamp request without its timestamps', frame: ipFrame({ proto: 1, payload: icmp(13, 0, 1, Buffer.alloc(4)) }), counters: [['Icmp', 'InErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'an ICMP error quoting less than an IP header', frame: ipFrame({ proto: 1, payload: icmp(3, 3, 0, Buffer.alloc(12, 0x45)) }), counters: [['Icmp', 'InErrors']], drop: 'NOT_SPECIFIED' },
  { name: 'an ICMP error quoting an IHL below 5', frame: ipFrame({ proto: 1, payload: icmp(3, 3, 0, Buffer.from([0x44, ...Buffer.alloc(27)])) }), counters: [['Icmp', 'InErrors']], drop: 'IP_INHDR' },
  { name: 'a bad UDP checksum', frame: ipFrame({ proto: 17, payload: udp(1, 2, Buffer.from('hi'), PEER_IP, STACK_IP, true) }), counters: [['Udp', 'InCsumErrors'], ['Udp', 'InErrors']], drop: 'UDP_CSUM' },
  { name: 'a UDP length past the datagram', frame: ipFrame({ proto: 17, payload: (() => { const u = udp(1, 2, Buffer.from('hi')); u.writeUInt16BE(50, 4); return u; })() }), counters: [['Udp', 'InErrors']], drop: 'PKT_TOO_SMALL' },
  { name: 'a bad TCP checksum', frame: ipFrame({ proto: 6, payload: tcp({ sport: 1, dport: 80, seq: 1, flags: 0x02, badCsum: true }) }), counters: [['Tcp', 'InCsumErrors'], ['Tcp', 'InErrs']], drop: 'TCP_CSUM' },
  { name: 'a TCP data offset past the segment', frame: ipFrame({ proto: 6, payload: (() => { const t = tcp({ sport: 1, dport: 80, seq: 1, flags: 0x02 }); t[12] = 0xf0; return t; })() }), counters: [['Tcp', 'InErrs']], drop: 'PKT_TOO_SMALL' },
];

for (const c of badCases) {
  test(`dropped and counted: ${c.name}; the stack keeps answering`, () => {
    const h = Harness.withPeer(AF_INET);
    const m = h.mibs as unknown as Record<string, Record<string, number>>;
    const before = c.counters.map(([g, n]) => m[g][n]);
    const dropBefore = h.mibs.Drop.counts[SKB_DROP_REASON[c.drop]];
    h.rx(c.frame);
    assert.deepEqual(h.sent(), [], 'nothing sent in answer');
    c.counters.forEach(([g, n], i) => assert.equal(m[g][n], before[i] + 1, `${g}.${n}`));
    assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON[c.drop]], dropBefore + 1, `drop reason ${c.drop}`);
    h.rx(ping());
    assert.equal(h.sent()[0].icmp!.type, 0, 'still answers pings');
  });
}

test('TTL 0 and 1 are still delivered to a host (RFC 1122 3.2.1.7, as Linux)', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.alloc(4)), ttl: 0 }));
  assert.equal(h.sent()[0].icmp!.type, 0);
});

test('frames for another MAC are dropped at the link and counted', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.alloc(4)) }, Buffer.from([2, 9, 9, 9, 9, 9])));
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.alloc(4)) }, Buffer.from([1, 0, 0x5e, 1, 2, 3])));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.stack.dev.stats.rx_otherhost_dropped, 1);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.OTHERHOST], 1, 'with its drop reason, as ip_rcv_core counts it');
  assert.equal(h.stack.dev.mcFiltered, 1, 'an unjoined group is filtered, not other-host');
  h.rx(Buffer.alloc(10));
  assert.equal(h.stack.dev.stats.rx_length_errors, 1);
  h.rx(eth(STACK_MAC, PEER_MAC, 0x88cc, Buffer.alloc(40)));
  assert.equal(h.stack.dev.stats.rx_nohandler, 1);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.UNHANDLED_PROTO], 1, 'with its drop reason, as __netif_receive_skb_core counts it');
});

test('echo to the subnet broadcast is ignored (icmp_echo_ignore_broadcasts=1)', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.alloc(4)), dst: parseIpv4('10.0.0.255')! }, Buffer.alloc(6, 0xff)));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.mibs.IpExt.InBcastPkts, 1);
  h.stack.icmp.sysctl.icmp_echo_ignore_broadcasts = 0;
  h.rx(ipFrame({ proto: 1, payload: echo(1, 2, Buffer.alloc(4)), dst: parseIpv4('10.0.0.255')! }, Buffer.alloc(6, 0xff)));
  const [r] = h.sent();
  assert.equal(r.icmp!.type, 0);
  assert.equal(r.ip!.src, STACK_IP, 'the reply comes from our unicast address');
});

test('an unknown protocol gets ICMP protocol unreachable quoting the datagram', () => {
  const h = Harness.withPeer(AF_INET);
  const dgram = ipv4({ proto: 253, payload: Buffer.from('0123456789abcdef') });
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0800, dgram));
  const [r] = h.sent();
  assert.equal(r.icmp!.type, 3);
  assert.equal(r.icmp!.code, 2);
  assert.deepEqual(r.icmp!.data, dgram);
  assert.equal(r.ip!.tos, 0xc0);
  assert.equal(h.mibs.Ip.InUnknownProtos, 1);
  assert.equal(h.mibs.Icmp.OutDestUnreachs, 1);
});

test('UDP to a closed port: NoPorts and ICMP port unreachable; checksum 0 is accepted', () => {
  const h = Harness.withPeer(AF_INET);
  const u = udp(5000, 9999, Buffer.from('hello'));
  u.writeUInt16BE(0, 6);
  h.rx(ipFrame({ proto: 17, payload: u }));
  const [r] = h.sent();
  assert.equal(r.icmp!.type, 3);
  assert.equal(r.icmp!.code, 3);
  assert.equal(h.mibs.Udp.NoPorts, 1);
});

test('ICMP errors are rate-limited per destination: a burst of 6, then one per second', () => {
  const h = Harness.withPeer(AF_INET);
  const send = () => h.rx(ipFrame({ proto: 17, payload: udp(5000, 9999, Buffer.from('x')) }));
  for (let i = 0; i < 10; i++) send();
  assert.equal(h.sent().filter((p) => p.icmp?.type === 3).length, 6);
  assert.equal(h.mibs.Icmp.OutRateLimitHost, 4);
  h.time.advance(999);
  send();
  assert.equal(h.sent().filter((p) => p.icmp?.type === 3).length, 0);
  h.time.advance(1);
  send();
  assert.equal(h.sent().filter((p) => p.icmp?.type === 3).length, 1);
});

test('no ICMP error about an ICMP error, a broadcast, or a non-first fragment', () => {
  const h = Harness.withPeer(AF_INET);
  const bcast = parseIpv4('10.0.0.255')!;
  // Broadcast UDP nobody listens to: IgnoredMulti, not NoPorts, and silence (as Linux).
  h.rx(ipFrame({ proto: 17, payload: udp(1, 9, Buffer.from('b'), PEER_IP, bcast), dst: bcast }, Buffer.alloc(6, 0xff)));
  assert.equal(h.mibs.Udp.IgnoredMulti, 1);
  assert.equal(h.mibs.Udp.NoPorts, 0);
  assert.deepEqual(h.sent().filter((p) => p.icmp), []);
  // A lone non-first fragment: queued, never answered, and its timeout is silent too.
  h.rx(ipFrame({ proto: 253, payload: Buffer.alloc(16), frag: 0x0002, id: 9 }));
  h.time.advance(31_000);
  assert.deepEqual(h.sent().filter((p) => p.icmp), []);
  assert.equal(h.mibs.Ip.ReasmTimeout, 1);
  // An ICMP error whose quoted packet is itself an ICMP error: never answered.
  const quoted = ipv4({ proto: 1, src: PEER_IP, dst: STACK_IP, payload: icmp(3, 3, 0, Buffer.alloc(28)) });
  h.stack.icmp.send(quoted, 0, 3, 1, 0, true);
  assert.deepEqual(h.sent().filter((p) => p.icmp), []);
});

test('TCP to a closed port gets the RFC 9293 reset: RST|ACK for a SYN, RST with seq=ack otherwise', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 40000, dport: 81, seq: 1000, flags: 0x02 }) }));
  let [r] = h.sent();
  assert.equal(r.tcp!.flags, 0x14);
  assert.equal(r.tcp!.seq, 0);
  assert.equal(r.tcp!.ack, 1001);
  assert.equal(r.tcp!.sport, 81);
  assert.equal(r.tcp!.dport, 40000);
  assert.equal(r.tcp!.win, 0);
  assert.ok(r.tcp!.csumOk);
  assert.equal(r.ip!.df, true);
  assert.equal(r.ip!.id, 0);
  h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 40000, dport: 81, seq: 5, ack: 777, flags: 0x18, payload: Buffer.from('data') }) }));
  [r] = h.sent();
  assert.equal(r.tcp!.flags, 0x04);
  assert.equal(r.tcp!.seq, 777);
  h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 40000, dport: 81, seq: 5, flags: 0x04 }) }));
  assert.deepEqual(h.sent(), [], 'a reset is never answered');
  assert.equal(h.mibs.Tcp.OutRsts, 2);
});

test('a 4000-byte echo is answered in three fragments of at most the MTU', () => {
  const h = Harness.withPeer(AF_INET);
  const data = Buffer.alloc(4000);
  for (let i = 0; i < data.length; i++) data[i] = i & 255;
  // The request itself arrives in fragments (1480 + 1480 + rest).
  const whole = echo(3, 3, data);
  const frags = [0, 1480, 2960].map((off) =>
    ipFrame({ proto: 1, id: 77, frag: (off / 8) | (off + 1480 < whole.length ? 0x2000 : 0), payload: whole.subarray(off, Math.min(off + 1480, whole.length)) }),
  );
  for (const f of frags) h.rx(f);
  const out = h.sent();
  assert.equal(out.length, 3);
  assert.deepEqual(out.map((p) => [p.ip!.offset, p.ip!.mf, p.ip!.totLen]), [[0, true, 1500], [1480, true, 1500], [2960, false, 20 + 4008 - 2960]]);
  assert.ok(out.every((p) => p.ip!.csumOk && p.ip!.id === out[0].ip!.id));
  const reply = Buffer.concat(out.map((p) => p.ip!.payload));
  assert.equal(reply[0], 0);
  assert.deepEqual(reply.subarray(8), data);
  assert.equal(h.mibs.Ip.FragOKs, 1);
  assert.equal(h.mibs.Ip.FragCreates, 3);
  assert.equal(h.mibs.Ip.ReasmOKs, 1);
});

test('to our own address: delivered over loopback, not to the link', () => {
  const h = Harness.withPeer(AF_INET);
  // An unknown protocol from a peer that spoofs our own address as its
  // source: the ICMP error goes to us, through loopback, and is received.
  h.rx(ipFrame({ proto: 253, payload: Buffer.alloc(8), src: parseIpv4('10.0.0.1')! }));
  h.sent();
  const before = h.mibs.Icmp.InMsgs;
  h.stack.icmp.send(ipv4({ proto: 17, src: STACK_IP, dst: PEER_IP, payload: udp(1, 2, Buffer.alloc(0), STACK_IP, PEER_IP) }), 0, 3, 1, 0, true);
  assert.deepEqual(h.sent(), []);
  assert.equal(h.mibs.Icmp.InMsgs, before + 1);
  assert.equal(h.mibs.Icmp.InDestUnreachs, 1);
});

/** A ping from the peer whose IPv4 header carries these option bytes (EOL-padded to a word). */
function pingWithOptions(opts: number[]): Buffer {
  const f = ping();
  const o = [...opts];
  while (o.length % 4) o.push(0);
  const ip = Buffer.concat([f.subarray(14, 34), Buffer.from(o), f.subarray(34)]);
  ip[0] = 0x40 | ((20 + o.length) >> 2);
  ip.writeUInt16BE(ip.length, 2);
  ip.writeUInt16BE(0, 10);
  ip.writeUInt16BE(ipFastCsum(ip, 0, 20 + o.length), 10);
  return Buffer.concat([f.subarray(0, 14), ip]);
}

test('IPv4 options (ip_options_compile): well-formed ones are delivered; a malformed one gets a Parameter Problem at the bad byte; a source route is dropped', () => {
  const h = Harness.withPeer(AF_INET);
  // The clock moves below (past ICMP's rate limit): the peer's entry must not age out meanwhile.
  h.stack.neighAddPermanent(PEER_IP, PEER_MAC);
  const good = [
    [1, 1, 1, 0],
    [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0], // record route with room
    [7, 7, 8, 10, 0, 0, 1], // record route, full
    [0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0], // timestamps only
    [0x44, 4, 5, 0x20], // full, overflow count 2
    [0x94, 4, 0, 0], // router alert
    [0x82, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0], // security: carried through
  ];
  for (const o of good) {
    h.rx(pingWithOptions(o));
    assert.equal(h.sent()[0]?.icmp?.type, 0, `answered with options ${o}`);
  }
  const bad: [number[], number][] = [
    [[1, 0x99, 0], 21], // length 0
    [[0x99, 9, 0, 0], 20], // longer than the options
    [[7, 2, 4, 0], 21], // record route without a pointer
    [[7, 7, 3, 0, 0, 0, 0], 22], // record route pointing into its own header
    [[7, 7, 4, 0, 0, 0, 0, 7, 3, 4], 27], // two record routes
    [[0x44, 8, 6, 1, 0, 0, 0, 0], 22], // timestamp with address, no room for the pair
    [[0x44, 4, 5, 0xf0], 23], // full, the overflow count at its end
    [[0x94, 2], 21], // router alert too short
    [[0x86, 10, 0, 0, 0, 1, 0, 0, 0, 0], 22], // CIPSO: no domain configured
  ];
  for (const [o, at] of bad) {
    // Past the per-host ICMP rate limit (icmp_ratelimit), so each error is answered.
    h.time.advance(1000);
    const hdr = h.mibs.Ip.InHdrErrors;
    const drops = h.mibs.Drop.counts[SKB_DROP_REASON.IP_INHDR];
    h.rx(pingWithOptions(o));
    const out = h.sent();
    assert.equal(out.length, 1, `options ${o}: one answer`);
    assert.deepEqual([out[0].icmp!.type, out[0].icmp!.code, out[0].icmp!.rest >>> 24], [12, 0, at], `options ${o}: a Parameter Problem pointing at byte ${at}`);
    assert.equal(h.mibs.Ip.InHdrErrors, hdr + 1);
    assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.IP_INHDR], drops + 1);
  }
  // Loose and strict source routes: accept_source_route is 0 on a host.
  for (const o of [[0x83, 7, 4, 10, 0, 0, 9], [0x89, 7, 4, 10, 0, 0, 2]]) {
    const drops = h.mibs.Drop.counts[SKB_DROP_REASON.NOT_SPECIFIED];
    h.rx(pingWithOptions(o));
    assert.deepEqual(h.sent(), [], `source route ${o}: nothing answered`);
    assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.NOT_SPECIFIED], drops + 1);
  }
  assert.equal(h.mibs.Icmp.InEchos, good.length, 'only the well-formed pings were delivered');
});
