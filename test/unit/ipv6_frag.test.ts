import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { PEER6, PEER_MAC, STACK6, STACK_MAC, echo6, eth, fragHdr, icmp6, ip6, ip6Frame, optsHdr, parse, type Parsed } from '../lib/frames.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../src/lib/checksum.js';
import { parseIpv6 } from '../../src/lib/addr.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { allocSkb } from '../../src/net/core/skbuff.js';
import { ip6Xmit } from '../../src/net/ipv6/ip6_output.js';
import { ipv6PathMtu } from '../../src/net/ipv6/addrconf.js';
import { AF_INET6 } from '../../src/uapi.js';

const replies = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 129);
const probs = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 4);

/** Cut `msg` (an upper-layer message, next header 58) into fragments at the given byte boundaries. */
function fragments(msg: Buffer, cuts: number[], id: number, src = PEER6, dst = STACK6): Buffer[] {
  const bounds = [0, ...cuts, msg.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const more = i + 2 < bounds.length;
    out.push(ip6Frame({ src, dst, nexthdr: 44, payload: Buffer.concat([fragHdr(58, bounds[i], more, id), msg.subarray(bounds[i], bounds[i + 1])]) }));
  }
  return out;
}

const data = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));

test('reassembly in order and out of order: the echo is answered once whole', () => {
  for (const order of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
    const h = Harness.withPeer(AF_INET6);
    const msg = echo6(1, 2, data(3000));
    const fs = fragments(msg, [1448, 2896], 0x1234);
    for (const i of order) h.rx(fs[i]);
    const out = h.sent();
    assert.equal(out.length, 3, 'the reply, in three fragments');
    const whole = join(out);
    assert.equal(whole[0], 129);
    assert.deepEqual(whole.subarray(8), data(3000), 'the data came back whole and in order');
    assert.equal(h.mibs.Ip6.ReasmReqds, 3, `order ${order}`);
    assert.equal(h.mibs.Ip6.ReasmOKs, 1);
    assert.equal(h.mibs.Ip6.ReasmFails, 0);
    assert.equal(h.mibs.Icmp6.OutEchoReplies, 1);
    assert.equal(h.stack.ipv6.frags.queues, 0);
  }
});

test('an exact duplicate fragment is dropped alone; the datagram still completes', () => {
  const h = Harness.withPeer(AF_INET6);
  const fs = fragments(echo6(1, 2, data(2000)), [1000], 7);
  h.rx(fs[0]);
  h.rx(fs[0]);
  h.rx(fs[1]);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.DUP_FRAG], 1);
  assert.equal(h.mibs.Ip6.ReasmOKs, 1);
  assert.equal(h.mibs.Icmp6.OutEchoReplies, 1);
});

test('RFC 5722: an overlapping fragment drops the whole queue; the datagram never completes', () => {
  const h = Harness.withPeer(AF_INET6);
  const msg = echo6(1, 2, data(2000));
  const fs = fragments(msg, [1000], 9);
  h.rx(fs[0]);
  // Bytes 992..1500 again: overlaps the first fragment's end.
  h.rx(ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(58, 992, true, 9), msg.subarray(992, 1504)]) }));
  assert.equal(h.mibs.Ip6.ReasmFails, 1);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.FRAG_OVERLAP], 1);
  assert.equal(h.stack.ipv6.frags.queues, 0);
  h.rx(fs[1]);
  assert.equal(h.mibs.Icmp6.OutEchoReplies, 0);
  assert.equal(h.mibs.Ip6.ReasmOKs, 0);
});

test('timeout after 60 s: Ip6ReasmTimeout and an ICMPv6 time exceeded (code 1) quoting the first fragment', () => {
  const h = Harness.withPeer(AF_INET6);
  const fs = fragments(echo6(1, 2, data(2000)), [1000], 11);
  h.rx(fs[0]);
  h.time.advance(59_999);
  assert.deepEqual(h.sent(), []);
  h.time.advance(1);
  const [te] = h.sent();
  assert.equal(te.icmp6!.type, 3);
  assert.equal(te.icmp6!.code, 1);
  assert.equal(te.ip6!.dst, 'fd00::1');
  assert.deepEqual(te.icmp6!.body.subarray(4, 4 + 48), fs[0].subarray(14, 14 + 48), 'the first fragment, from its IPv6 header');
  assert.equal(h.mibs.Ip6.ReasmTimeout, 1);
  assert.equal(h.mibs.Ip6.ReasmFails, 1);
  assert.equal(h.mibs.Icmp6.OutTimeExcds, 1);
  assert.equal(h.stack.ipv6.frags.queues, 0);
});

test('timeout without the first fragment: counted, no ICMPv6', () => {
  const h = Harness.withPeer(AF_INET6);
  const fs = fragments(echo6(1, 2, data(2000)), [1000], 12);
  h.rx(fs[1]);
  h.time.advance(60_000);
  assert.deepEqual(h.sent(), []);
  assert.equal(h.mibs.Ip6.ReasmTimeout, 1);
  assert.equal(h.mibs.Ip6.ReasmFails, 1);
});

test('the memory cap: above ip6frag_high_thresh new queues are refused and counted', () => {
  const h = Harness.withPeer(AF_INET6);
  h.stack.ipv6.frags.sysctl.highThresh = 4000;
  for (let id = 1; id <= 5; id++) h.rx(fragments(echo6(1, id, data(2000)), [1000], id)[0]);
  const mem = h.stack.ipv6.frags.mem;
  assert.ok(mem > 4000, `held ${mem}`);
  assert.equal(h.stack.ipv6.frags.queues, 4, 'the fifth queue was refused');
  assert.equal(h.mibs.Ip6.ReasmFails, 1);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.FRAG_MEM_LIMIT], 1);
  // A datagram already queued still completes.
  h.rx(fragments(echo6(1, 1, data(2000)), [1000], 1)[1]);
  assert.equal(h.mibs.Icmp6.OutEchoReplies, 1);
});

test('an atomic fragment (RFC 6946) is processed alone, even with the ID of a pending queue', () => {
  const h = Harness.withPeer(AF_INET6);
  h.rx(fragments(echo6(1, 2, data(2000)), [1000], 77)[0]);
  h.rx(ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(58, 0, false, 77), echo6(3, 4, Buffer.from('atomic'))]) }));
  const [r] = replies(h.sent());
  assert.equal(r.icmp6!.body.subarray(4).toString(), 'atomic');
  assert.equal(h.stack.ipv6.frags.queues, 1, 'the pending queue is untouched');
});

test('a non-final fragment whose length is not a multiple of 8: parameter problem at the payload length', () => {
  const h = Harness.withPeer(AF_INET6);
  const msg = echo6(1, 2, data(2000));
  h.rx(ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(58, 0, true, 5), msg.subarray(0, 1001)]) }));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 0);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 4);
  assert.equal(h.mibs.Ip6.InHdrErrors, 1);
});

test('a fragment ending past 65535: parameter problem at the fragment offset field', () => {
  const h = Harness.withPeer(AF_INET6);
  h.rx(ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(58, 65528, false, 5), data(16)]) }));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 0);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 42);
});

test('RFC 7112: a first fragment without the upper-layer header gets a parameter problem, code 3', () => {
  const h = Harness.withPeer(AF_INET6);
  // (For a missing ICMPv6 header there would be no answer: an error is never about what may be an ICMPv6 error.)
  h.rx(ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(60, 0, true, 6), optsHdr(17, [])]) }));
  const [p] = probs(h.sent());
  assert.equal(p.icmp6!.code, 3);
  assert.equal(p.icmp6!.body.readUInt32BE(0), 0);
  assert.equal(h.mibs.Ip6.ReasmFails, 1);
});

/** The reassembled upper-layer bytes of a list of fragments (in order). */
function join(ps: Parsed[]): Buffer {
  return Buffer.concat(ps.map((p) => p.ip6!.payload));
}

test('fragmentation on output: a 3008-byte echo reply leaves as 1448 + 1448 + 112 bytes with one random non-zero 32-bit ID (Linux since 5.13)', () => {
  const h = Harness.withPeer(AF_INET6);
  const fs = fragments(echo6(5, 6, data(3000)), [1448, 2896], 0xabc);
  for (const f of fs) h.rx(f);
  const raw = h.link.take();
  const out = raw.map((f) => parse(f));
  assert.deepEqual(raw.map((f) => f.length), [14 + 40 + 8 + 1448, 14 + 40 + 8 + 1448, 14 + 40 + 8 + 112]);
  assert.deepEqual(out.map((p) => p.ip6!.frag!.offset), [0, 1448, 2896]);
  assert.deepEqual(out.map((p) => p.ip6!.frag!.more), [true, true, false]);
  const ids = new Set(out.map((p) => p.ip6!.frag!.id));
  assert.equal(ids.size, 1);
  assert.notEqual([...ids][0], 0);
  assert.ok(out.every((p) => p.ip6!.nexthdr === 44 && p.ip6!.frag!.nexthdr === 58));
  const whole = join(out);
  assert.equal(whole.length, 3008);
  assert.equal(whole[0], 129);
  assert.equal(csumFold(csumPartial(whole, 0, whole.length, csumIpv6Magic(STACK6, 0, PEER6, 0, 58, whole.length))), 0);
  assert.deepEqual(whole.subarray(8), data(3000));
  assert.equal(h.mibs.Ip6.FragOKs, 1);
  assert.equal(h.mibs.Ip6.FragCreates, 3);
  // The next datagram to the same peer draws another ID (not a predictable successor).
  for (const f of fragments(echo6(5, 7, data(3000)), [1448, 2896], 0xabd)) h.rx(f);
  const next = h.sent();
  assert.notEqual(next[0].ip6!.frag!.id, [...ids][0]);
  assert.notEqual(next[0].ip6!.frag!.id, ([...ids][0] + 1) >>> 0);
  assert.notEqual(next[0].ip6!.frag!.id, 0);
});

test('Packet Too Big lowers the path MTU (never below 1280) and reaches the transport with info = MTU', () => {
  const h = Harness.withPeer(AF_INET6);
  const errs: { type: number; code: number; info: number; inner: string }[] = [];
  h.stack.inet6Protos[253] = { handler() {}, errHandler: (type, code, info, buf, innerOff) => errs.push({ type, code, info, inner: buf.subarray(innerOff + 24, innerOff + 40).toString('hex') }) };
  // The quoted packet: one of ours, fd00::2 -> fd00::1, protocol 253.
  const quoted = ip6({ src: STACK6, dst: PEER6, nexthdr: 253, payload: data(1400) });
  const ptb = (mtu: number) => {
    const rest = Buffer.alloc(4 + quoted.length);
    rest.writeUInt32BE(mtu, 0);
    quoted.copy(rest, 4);
    return ip6Frame({ nexthdr: 58, payload: icmp6(2, 0, rest) });
  };
  assert.equal(ipv6PathMtu(h.stack, PEER6), 1500);
  h.rx(ptb(1400));
  assert.equal(ipv6PathMtu(h.stack, PEER6), 1400);
  assert.deepEqual(errs, [{ type: 2, code: 0, info: 1400, inner: PEER6.toString('hex') }]);
  h.rx(ptb(1000));
  assert.equal(ipv6PathMtu(h.stack, PEER6), 1280, 'clamped to the IPv6 minimum');
  h.rx(ptb(1450));
  assert.equal(ipv6PathMtu(h.stack, PEER6), 1280, 'never raised by a Packet Too Big');
  assert.equal(h.mibs.Icmp6.InPktTooBigs, 3);
  // Output now fits 1280: an echo reply of 3008 bytes is cut in 1232-byte pieces.
  for (const f of fragments(echo6(5, 6, data(3000)), [1448, 2896], 0xabe)) h.rx(f);
  const raw = h.link.take();
  assert.deepEqual(raw.map((f) => f.length - 14), [1280, 1280, 40 + 8 + 3008 - 2 * 1232]);
  // The path MTU entry ages out after 10 minutes.
  h.time.advance(600_000);
  assert.equal(ipv6PathMtu(h.stack, PEER6), 1500);
});

test('a GSO skb is not fragmented: the device cuts it', () => {
  const h = Harness.withPeer(AF_INET6);
  const skb = allocSkb(4000);
  data(4000).copy(skb.buf, skb.put(4000));
  skb.gso = true;
  skb.gsoSize = 1440;
  assert.equal(ip6Xmit(h.stack, skb, STACK6, PEER6, 253), 0);
  const raw = h.link.take();
  assert.equal(raw.length, 1);
  assert.equal(raw[0].length, 14 + 40 + 4000);
  assert.equal(h.mibs.Ip6.FragOKs, 0);
});

test('ICMPv6 errors are rate-limited per destination like Linux 6.18 (net.ipv6.icmp.ratelimit 100 ms: a burst of 6, then one per 100 ms); echo replies never', () => {
  const h = Harness.withPeer(AF_INET6);
  const unknown = () => h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, ip6({ nexthdr: 99, payload: data(8) })));
  for (let i = 0; i < 10; i++) unknown();
  assert.equal(probs(h.sent()).length, 6);
  assert.equal(h.mibs.Icmp6.OutRateLimitHost, 4);
  h.time.advance(99);
  unknown();
  assert.equal(probs(h.sent()).length, 0);
  h.time.advance(1);
  unknown();
  assert.equal(probs(h.sent()).length, 1);
  // The older kernels' 1000 ms is one sysctl away.
  h.stack.ipv6.icmp.sysctl.ratelimit = 1000;
  h.time.advance(600);
  unknown();
  assert.equal(probs(h.sent()).length, 0, 'tokens accrue at one per 1000 ms now');
  for (let i = 0; i < 20; i++) h.rx(ip6Frame({ nexthdr: 58, payload: echo6(1, i, Buffer.from('x')) }));
  assert.equal(replies(h.sent()).length, 20);
});

test('errors are never sent about ICMPv6 errors, or to a multicast or unspecified source', () => {
  const h = Harness.withPeer(AF_INET6);
  // An ICMPv6 error (destination unreachable) with an unknown option (action 10) in a destination options header.
  const err = icmp6(1, 0, Buffer.alloc(44));
  h.rx(ip6Frame({ nexthdr: 60, payload: Buffer.concat([Buffer.from([58, 0, 0x9e, 2, 0, 0, 1, 0]), err]) }));
  assert.equal(probs(h.sent()).length, 0);
  h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, ip6({ src: Buffer.alloc(16), nexthdr: 99, payload: data(8) })));
  assert.equal(probs(h.sent()).length, 0);
});

test('the port unreachable helper (for UDP): destination unreachable, code 4, quoting the datagram; nothing for a multicast destination', async () => {
  const { icmpv6PortUnreach } = await import('../../src/net/ipv6/icmp.js');
  const h = Harness.withPeer(AF_INET6);
  h.stack.inet6Protos[17] = { handler: (skb) => icmpv6PortUnreach(h.stack, skb) };
  const dgram = ip6({ nexthdr: 17, payload: data(16) });
  h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, dgram));
  const [u] = h.sent();
  assert.equal(u.icmp6!.type, 1);
  assert.equal(u.icmp6!.code, 4);
  assert.deepEqual(u.icmp6!.body.subarray(4), dgram);
  assert.equal(h.mibs.Icmp6.OutDestUnreachs, 1);
  h.rx(ip6Frame({ nexthdr: 17, dst: parseIpv6('ff02::1')!, payload: data(16) }));
  assert.deepEqual(h.sent(), []);
});

test('icmpv6ErrConvert maps ICMPv6 errors to errnos as Linux does', async () => {
  const { icmpv6ErrConvert } = await import('../../src/net/ipv6/icmp.js');
  const errno = await import('../../src/uapi.js');
  assert.deepEqual(icmpv6ErrConvert(1, 0), { errno: errno.ENETUNREACH, fatal: false });
  assert.deepEqual(icmpv6ErrConvert(1, 1), { errno: errno.EACCES, fatal: true });
  assert.deepEqual(icmpv6ErrConvert(1, 3), { errno: errno.EHOSTUNREACH, fatal: false });
  assert.deepEqual(icmpv6ErrConvert(1, 4), { errno: errno.ECONNREFUSED, fatal: true });
  assert.deepEqual(icmpv6ErrConvert(1, 9), { errno: errno.EPROTO, fatal: true });
  assert.deepEqual(icmpv6ErrConvert(2, 0), { errno: errno.EMSGSIZE, fatal: false });
  assert.deepEqual(icmpv6ErrConvert(3, 1), { errno: errno.EHOSTUNREACH, fatal: false });
  assert.deepEqual(icmpv6ErrConvert(4, 1), { errno: errno.EPROTO, fatal: true });
});

test('the global ICMP bucket is shared with IPv4 (icmp_msgs_burst 50): refusals count in Icmp.OutRateLimitGlobal', () => {
  const h = Harness.withPeer(AF_INET6);
  h.stack.ipv6.icmp.sysctl.ratelimit = 0; // no per-destination limit: only the global bucket
  for (let i = 0; i < 60; i++) h.rx(eth(STACK_MAC, PEER_MAC, 0x86dd, ip6({ nexthdr: 99, payload: data(8) })));
  assert.equal(probs(h.sent()).length, 50);
  assert.equal(h.mibs.Icmp.OutRateLimitGlobal, 10);
});
