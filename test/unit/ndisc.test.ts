import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { ALL_NODES, PEER6, PEER_LL, PEER_MAC, STACK6, STACK_LL, STACK_MAC, UNSPEC, echo6, ip6Frame, naMsg, ndFrame, nsMsg, snmc, type Parsed } from '../lib/frames.js';
import { ipv6McastMac, parseIpv6 } from '../../src/lib/addr.js';
import { allocSkb } from '../../src/net/core/skbuff.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { ip6Xmit } from '../../src/net/ipv6/ip6_output.js';
import { ipv6AddrIsLocal, ipv6ChooseSaddr } from '../../src/net/ipv6/addrconf.js';
import { AF_INET6, ENETUNREACH } from '../../src/uapi.js';

const OTHER_MAC = Buffer.from([2, 0, 0, 0, 0, 0x99]);
const nss = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 135);
const nas = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 136);

/** Send `data` as protocol 253 from fd00::2 to `dst` through ip6Xmit. */
function send(h: Harness, data = 'data', dst: Uint8Array = PEER6): number {
  const skb = allocSkb(data.length);
  Buffer.from(data).copy(skb.buf, skb.put(data.length));
  return ip6Xmit(h.stack, skb, STACK6, dst, 253);
}

/** A protocol-253 transport that records the ICMPv6 errors it is given. */
function errRecorder(h: Harness): { type: number; code: number; info: number }[] {
  const errs: { type: number; code: number; info: number }[] = [];
  h.stack.inet6Protos[253] = { handler() {}, errHandler: (type, code, info) => errs.push({ type, code, info }) };
  return errs;
}

test('resolution: INCOMPLETE sends 3 multicast solicitations 1 s apart, then FAILED reports address unreachable to the sender', () => {
  const h = Harness.ready(AF_INET6);
  const errs = errRecorder(h);
  assert.equal(send(h, 'eight+ bytes'), 0);
  let [ns] = nss(h.sent());
  assert.equal(h.neighState(PEER6), 'INCOMPLETE');
  assert.equal(ns.ip6!.dst, 'ff02::1:ff00:1', 'to the solicited-node group');
  assert.deepEqual(ns.dst, ipv6McastMac(snmc(PEER6)));
  assert.equal(ns.ip6!.src, 'fd00::2', 'from the queued packet\'s source');
  assert.equal(ns.ip6!.hopLimit, 255);
  assert.ok(ns.icmp6!.csumOk);
  assert.deepEqual(ns.icmp6!.body.subarray(4, 20), PEER6);
  assert.deepEqual(ns.icmp6!.body.subarray(20, 28), Buffer.from([1, 1, ...STACK_MAC]), 'source link-layer address option');
  h.time.advance(999);
  assert.equal(nss(h.sent()).length, 0);
  h.time.advance(1);
  [ns] = nss(h.sent());
  assert.equal(ns.ip6!.dst, 'ff02::1:ff00:1');
  h.time.advance(1000);
  assert.equal(nss(h.sent()).length, 1);
  h.time.advance(1000);
  assert.equal(nss(h.sent()).length, 0, 'three probes only (mcast_solicit 3)');
  assert.equal(h.neighState(PEER6), 'FAILED');
  assert.equal(h.mibs.Ndisc.res_failed, 1);
  assert.deepEqual(errs, [{ type: 1, code: 3, info: 0 }], 'ICMPv6 address unreachable to the transport');
});

test('a solicited advertisement makes the entry REACHABLE and releases the queued packet', () => {
  const h = Harness.ready(AF_INET6);
  send(h, 'queued');
  h.sent();
  h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
  assert.equal(h.neighState(PEER6), 'REACHABLE');
  const [p] = h.sent();
  assert.deepEqual(p.dst, PEER_MAC);
  assert.equal(p.ip6!.proto, 253);
  assert.equal(p.ip6!.payload.toString(), 'queued');
});

test('REACHABLE -> STALE after the reachable time -> DELAY on use -> PROBE (unicast, 3 probes) -> FAILED, with Linux\'s timers', () => {
  const h = Harness.withPeer(AF_INET6);
  assert.equal(h.neighState(PEER6), 'REACHABLE');
  // reachable_time is base 30 s randomised into [15, 45) s.
  const rt = h.stack.ipv6.ndisc.tbl.parms.reachableTime;
  assert.ok(rt >= 15_000 && rt < 45_000);
  h.time.advance(rt + 1);
  assert.equal(h.neighState(PEER6), 'STALE');
  h.sent();
  send(h, 'x');
  assert.equal(h.neighState(PEER6), 'DELAY');
  const [d] = h.sent();
  assert.equal(d.ip6!.payload.toString(), 'x', 'sent at once to the cached address');
  h.time.advance(4999);
  assert.equal(h.neighState(PEER6), 'DELAY');
  assert.deepEqual(h.sent(), []);
  h.time.advance(1);
  assert.equal(h.neighState(PEER6), 'PROBE');
  let [ns] = nss(h.sent());
  assert.deepEqual(ns.dst, PEER_MAC, 'unicast probe to the cached MAC');
  assert.equal(ns.ip6!.dst, 'fd00::1');
  h.time.advance(1000);
  [ns] = nss(h.sent());
  assert.deepEqual(ns.dst, PEER_MAC);
  h.time.advance(1000);
  assert.equal(nss(h.sent()).length, 1);
  h.time.advance(1000);
  assert.equal(h.neighState(PEER6), 'FAILED', 'ucast_solicit 3, mcast_resolicit 0');
  assert.deepEqual(h.sent(), []);
});

test('DELAY -> REACHABLE when the upper layer confirms; PROBE -> REACHABLE on a solicited advertisement', () => {
  const h = Harness.withPeer(AF_INET6);
  h.time.advance(h.stack.ipv6.ndisc.tbl.parms.reachableTime + 1);
  send(h);
  h.sent();
  h.time.advance(1);
  h.stack.ipv6.ndisc.confirm(PEER6);
  h.time.advance(4999);
  assert.equal(h.neighState(PEER6), 'REACHABLE');
  h.time.advance(h.stack.ipv6.ndisc.tbl.parms.reachableTime + 1);
  assert.equal(h.neighState(PEER6), 'STALE');
  send(h);
  h.time.advance(5000);
  assert.equal(h.neighState(PEER6), 'PROBE');
  h.sent();
  h.rx(ndFrame(naMsg(PEER6, 0x40, PEER6, STACK6, null), PEER6, STACK6));
  assert.equal(h.neighState(PEER6), 'REACHABLE');
});

test('an unsolicited override advertisement with a new MAC updates the entry to STALE; without override it is ignored while REACHABLE... then STALE', () => {
  const h = Harness.withPeer(AF_INET6);
  h.rx(ndFrame(naMsg(PEER6, 0x00, PEER6, ALL_NODES, OTHER_MAC), PEER6, ALL_NODES));
  // WEAK_OVERRIDE: a different address without O makes a connected entry STALE, address kept.
  assert.equal(h.neighState(PEER6), 'STALE');
  assert.deepEqual(h.stack.ipv6.ndisc.neighMac(PEER6), PEER_MAC);
  h.rx(ndFrame(naMsg(PEER6, 0x20, PEER6, ALL_NODES, OTHER_MAC), PEER6, ALL_NODES));
  assert.equal(h.neighState(PEER6), 'STALE');
  assert.deepEqual(h.stack.ipv6.ndisc.neighMac(PEER6), OTHER_MAC);
});

test('a multicast solicitation for our address: solicited+override advertisement with our MAC; the asker learned STALE', () => {
  const h = Harness.ready(AF_INET6);
  h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
  const [na] = nas(h.sent());
  assert.deepEqual(na.dst, PEER_MAC);
  assert.equal(na.ip6!.src, 'fd00::2');
  assert.equal(na.ip6!.dst, 'fd00::1');
  assert.equal(na.ip6!.hopLimit, 255);
  assert.equal(na.icmp6!.body[0], 0x60, 'S and O');
  assert.deepEqual(na.icmp6!.body.subarray(4, 20), STACK6);
  assert.deepEqual(na.icmp6!.body.subarray(20, 28), Buffer.from([2, 1, ...STACK_MAC]));
  assert.ok(na.icmp6!.csumOk);
  // Learned STALE from the solicitation; our advertisement through the entry moved it to DELAY.
  assert.equal(h.neighState(PEER6), 'DELAY');
  assert.equal(h.mibs.Ndisc.rcv_probes_mcast, 1);
});

test('a unicast solicitation (a NUD probe) gets a solicited advertisement without override or target address (as Linux)', () => {
  const h = Harness.withPeer(AF_INET6);
  h.rx(ndFrame(nsMsg(STACK6, PEER6, STACK6, null), PEER6, STACK6));
  const [na] = nas(h.sent());
  assert.equal(na.icmp6!.body[0], 0x40);
  assert.equal(na.icmp6!.body.length, 20);
  assert.equal(h.mibs.Ndisc.rcv_probes_ucast, 1);
});

test('ND messages failing RFC 4861 7.1 are dropped: hop limit below 255, non-zero code, fragmented, bad options, a target not ours', () => {
  const h = Harness.ready(AF_INET6);
  const d = h.mibs.Drop.counts;
  h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6), 254));
  assert.equal(d[SKB_DROP_REASON.IPV6_NDISC_HOP_LIMIT], 1);
  const bad = nsMsg(STACK6, PEER6, snmc(STACK6));
  bad[1] = 1;
  const c = bad.readUInt16BE(2) - 1;
  bad.writeUInt16BE(c < 0 ? 0xffff : c, 2);
  h.rx(ndFrame(bad, PEER6, snmc(STACK6)));
  assert.equal(d[SKB_DROP_REASON.IPV6_NDISC_BAD_CODE], 1);
  const ns = nsMsg(STACK6, PEER6, snmc(STACK6));
  h.rx(ip6Frame({ src: PEER6, dst: snmc(STACK6), nexthdr: 44, hopLimit: 255, payload: Buffer.concat([Buffer.from([58, 0, 0, 0, 0, 0, 0, 1]), ns]) }));
  assert.equal(d[SKB_DROP_REASON.IPV6_NDISC_FRAG], 1);
  // An option of length 0.
  const zero = Buffer.concat([nsMsg(STACK6, PEER6, snmc(STACK6), null).subarray(0, 20), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0])]);
  h.rx(ndFrame(reSum(zero, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
  assert.equal(d[SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS], 1);
  h.rx(ndFrame(nsMsg(parseIpv6('fd00::9')!, PEER6, snmc(parseIpv6('fd00::9')!)), PEER6, snmc(parseIpv6('fd00::9')!)));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.neighState(PEER6), null, 'nothing learned');
});

function reSum(msg: Buffer, src: Uint8Array, dst: Uint8Array): Buffer {
  msg.writeUInt16BE(0, 2);
  const b = Buffer.concat([Buffer.from(src), Buffer.from(dst), Buffer.from([0, 0, 0, msg.length, 0, 0, 0, 58]), msg]);
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  msg.writeUInt16BE(~s & 0xffff, 2);
  return msg;
}

test('no route: ip6Xmit returns -ENETUNREACH and counts Ip6OutNoRoutes', () => {
  const h = Harness.ready(AF_INET6);
  assert.equal(send(h, 'x', parseIpv6('2001:db8::1')!), -ENETUNREACH);
  assert.equal(h.mibs.Ip6.OutNoRoutes, 1);
});

test('a configured gateway routes off-link destinations through its neighbour entry', () => {
  const h = Harness.ready(AF_INET6, { gateway: PEER6 });
  send(h, 'far', parseIpv6('2001:db8::1')!);
  const [ns] = nss(h.sent());
  assert.deepEqual(ns.icmp6!.body.subarray(4, 20), PEER6, 'resolves the gateway');
});

test('source selection: link-local for a link-local destination, the global address for a global one', () => {
  const h = Harness.ready(AF_INET6);
  const out = Buffer.alloc(16);
  assert.ok(ipv6ChooseSaddr(h.stack, PEER_LL, out));
  assert.deepEqual(out, STACK_LL);
  assert.ok(ipv6ChooseSaddr(h.stack, parseIpv6('2001:db8::1')!, out));
  assert.deepEqual(out, STACK6);
  assert.ok(ipv6AddrIsLocal(h.stack, STACK6));
  assert.ok(!ipv6AddrIsLocal(h.stack, PEER6));
});

test('DAD: each address is tentative, probed once from :: with a nonce after a random delay below 1 s, and usable 1 s later', () => {
  const h = new Harness(AF_INET6);
  assert.ok(!ipv6AddrIsLocal(h.stack, STACK6), 'tentative: not for bind()');
  h.time.advance(999);
  const probes = nss(h.sent());
  assert.equal(probes.length, 2, 'one NS per address (link-local and fd00::2)');
  for (const p of probes) {
    assert.equal(p.ip6!.src, '::');
    assert.equal(p.ip6!.dst, 'ff02::1:ff00:2');
    assert.equal(p.icmp6!.body.length, 28, 'target and a nonce option, no source link-layer address');
    assert.equal(p.icmp6!.body[20], 14);
  }
  // An echo to the tentative address is not for us yet.
  h.rx(ip6Frame({ nexthdr: 58, payload: echo6(1, 1, Buffer.from('t')) }));
  assert.equal(h.mibs.Ip6.InAddrErrors, 1);
  h.time.advance(2000);
  assert.ok(ipv6AddrIsLocal(h.stack, STACK6));
  assert.ok(ipv6AddrIsLocal(h.stack, STACK_LL));
  assert.deepEqual(h.stack.ipv6.addresses().map((a) => a.flags), [[], []]);
});

for (const how of ['an advertisement for it', 'a DAD probe (NS from ::) for it'] as const) {
  test(`DAD conflict by ${how}: the address is marked dadfailed, logged at warn, never answered or used`, () => {
    const log = Harness.recordingLog();
    const h = new Harness(AF_INET6, { log });
    h.time.advance(1000);
    h.sent();
    if (how === 'an advertisement for it') h.rx(ndFrame(naMsg(STACK6, 0x20, PEER6, ALL_NODES, OTHER_MAC), PEER6, ALL_NODES, 255, OTHER_MAC));
    else h.rx(ndFrame(nsMsg(STACK6, UNSPEC, snmc(STACK6), null, Buffer.from([9, 9, 9, 9, 9, 9])), UNSPEC, snmc(STACK6), 255, OTHER_MAC));
    h.time.advance(5000);
    const a = h.stack.ipv6.addresses().find((x) => x.addr === 'fd00::2')!;
    assert.deepEqual(a.flags, ['tentative', 'dadfailed']);
    assert.equal(log.warnings.length, 1);
    assert.equal(log.warnings[0].obj.addr, 'fd00::2');
    assert.match(log.warnings[0].msg, /duplicate address fd00::2 used by 02:00:00:00:00:99/);
    assert.ok(!ipv6AddrIsLocal(h.stack, STACK6), 'bind() would get EADDRNOTAVAIL');
    const out = Buffer.alloc(16);
    assert.ok(ipv6ChooseSaddr(h.stack, PEER6, out));
    assert.deepEqual(out, STACK_LL, 'never chosen as a source');
    h.sent();
    // Not answered: neither a ping nor a solicitation for it.
    h.rx(ip6Frame({ nexthdr: 58, payload: echo6(1, 1, Buffer.from('d')) }));
    h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
    h.time.advance(100);
    const out2 = h.sent();
    assert.equal(out2.filter((p) => p.icmp6?.type === 129 || p.icmp6?.type === 136).length, 0);
    assert.ok(ipv6AddrIsLocal(h.stack, STACK_LL), 'the link-local address is not affected');
  });
}

test('DAD: our own probe looped back (same nonce) is not a conflict; after DAD a probe for our address is defended', () => {
  const h = new Harness(AF_INET6);
  h.time.advance(999);
  const probe = nss(h.sent()).find((p) => p.icmp6!.body.subarray(4, 20).equals(STACK6))!;
  const nonce = probe.icmp6!.body.subarray(22, 28);
  h.rx(ndFrame(nsMsg(STACK6, UNSPEC, snmc(STACK6), null, nonce), UNSPEC, snmc(STACK6), 255, STACK_MAC));
  h.time.advance(2000);
  assert.ok(ipv6AddrIsLocal(h.stack, STACK6));
  h.sent();
  h.rx(ndFrame(nsMsg(STACK6, UNSPEC, snmc(STACK6), null), UNSPEC, snmc(STACK6), 255, OTHER_MAC));
  const [na] = nas(h.sent());
  assert.equal(na.ip6!.dst, 'ff02::1');
  assert.equal(na.icmp6!.body[0], 0x20, 'override, not solicited');
  assert.deepEqual(na.icmp6!.body.subarray(20, 28), Buffer.from([2, 1, ...STACK_MAC]));
});

test('an advertisement for our address after DAD is logged, and changes nothing', () => {
  const log = Harness.recordingLog();
  const h = Harness.ready(AF_INET6, { log });
  h.rx(ndFrame(naMsg(STACK6, 0x20, PEER6, ALL_NODES, OTHER_MAC), PEER6, ALL_NODES, 255, OTHER_MAC));
  assert.equal(log.warnings.length, 1);
  assert.ok(ipv6AddrIsLocal(h.stack, STACK6));
});

test('the solicited-node and all-nodes groups are in the device filter', () => {
  const h = Harness.ready(AF_INET6);
  h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
  assert.equal(nas(h.sent()).length, 1);
  const before = h.stack.dev.mcFiltered;
  h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(parseIpv6('fd00::1:2:3')!)), PEER6, snmc(parseIpv6('fd00::1:2:3')!)));
  assert.equal(h.stack.dev.mcFiltered, before + 1, 'another solicited-node group is filtered at the link');
});
