import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { ALL_NODES, PEER6, PEER_LL, PEER_MAC, STACK6, STACK_MAC, echo6, icmp6, ip6Frame, ndFrame, type Parsed } from '../lib/frames.js';
import { parseIpv6 } from '../../src/lib/addr.js';
import { allocSkb } from '../../src/net/core/skbuff.js';
import { ip6Xmit } from '../../src/net/ipv6/ip6_output.js';
import { ipv6AddrIsLocal, ipv6PathMtu } from '../../src/net/ipv6/addrconf.js';
import { AF_INET6 } from '../../src/uapi.js';

const MLD_ROUTERS = 'ff02::16';
const reports = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 143);
const rss = (ps: Parsed[]) => ps.filter((p) => p.icmp6?.type === 133);

/** The records of an MLDv2 report: [type, group]. */
function records(p: Parsed): [number, string][] {
  const b = p.icmp6!.body;
  const n = b.readUInt16BE(2);
  const out: [number, string][] = [];
  for (let i = 0, o = 4; i < n; i++, o += 20) out.push([b[o], parseIpv6Str(b.subarray(o + 4, o + 20))]);
  return out;
}
function parseIpv6Str(b: Buffer): string {
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(b.readUInt16BE(i).toString(16));
  return w.join(':');
}
const SNMC2 = 'ff02:0:0:0:0:1:ff00:2';

test('MLDv2: joining sends a state-change report (CHANGE_TO_EXCLUDE {}) for the solicited-node group at once, repeated once within 1 s; all-nodes is never reported', () => {
  const h = new Harness(AF_INET6);
  h.time.advance(0);
  const first = reports(h.sent());
  assert.equal(first.length, 1);
  const r = first[0];
  assert.equal(r.ip6!.dst, MLD_ROUTERS);
  assert.equal(r.ip6!.hopLimit, 1);
  assert.equal(r.ip6!.src, '::', 'no usable link-local address yet');
  assert.deepEqual(r.ip6!.exts, [0], 'a hop-by-hop header');
  assert.deepEqual(r.ip6!.payload.length, 8 + 20);
  assert.ok(r.icmp6!.csumOk);
  assert.deepEqual(records(r), [[4, SNMC2]]);
  assert.deepEqual(r.dst, Buffer.from([0x33, 0x33, 0, 0, 0, 0x16]));
  h.time.advance(1000);
  const again = reports(h.sent());
  assert.equal(again.length, 1, 'robustness 2: one more');
  assert.deepEqual(records(again[0]), [[4, SNMC2]]);
  h.time.advance(10_000);
  assert.equal(reports(h.sent()).length, 0);
  assert.equal(h.mibs.Icmp6.OutMLDv2Reports, 2);
});

test('MLDv2: a general query (hop limit 1, link-local source) is answered with current-state records within the maximum response delay', () => {
  const h = Harness.ready(AF_INET6);
  const q = Buffer.alloc(24);
  q.writeUInt16BE(1000, 0); // Maximum Response Code: 1000 ms
  q[20] = 2; // QRV
  q[21] = 125;
  const query = icmp6(130, 0, q, PEER_LL, ALL_NODES);
  h.rx(ip6Frame({ src: PEER_LL, dst: ALL_NODES, nexthdr: 0, hopLimit: 1, payload: Buffer.concat([Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]), query]) }));
  assert.equal(h.mibs.Icmp6.InGroupMembQueries, 1);
  h.time.advance(1000);
  const [r] = reports(h.sent());
  assert.ok(r, 'answered');
  assert.equal(r.ip6!.src, 'fe80::74:73ff:fe00:2');
  assert.deepEqual(records(r), [[2, SNMC2]], 'MODE_IS_EXCLUDE for the solicited-node group');
  // A query with hop limit 64 is not a valid query.
  h.rx(ip6Frame({ src: PEER_LL, dst: ALL_NODES, nexthdr: 0, hopLimit: 64, payload: Buffer.concat([Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]), query]) }));
  h.time.advance(2000);
  assert.equal(reports(h.sent()).length, 0);
});

test('MLDv1 compatibility (RFC 3810 8.2): after an MLDv1 query, MLDv1 reports to the group, Done to ff02::2 on leave; MLDv2 again 260 s later', () => {
  const h = Harness.ready(AF_INET6);
  const q = Buffer.alloc(20);
  q.writeUInt16BE(500, 0); // Maximum Response Delay: 500 ms; group :: (general)
  h.rx(ip6Frame({ src: PEER_LL, dst: ALL_NODES, nexthdr: 0, hopLimit: 1, payload: Buffer.concat([Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]), icmp6(130, 0, q, PEER_LL, ALL_NODES)]) }));
  assert.ok(h.stack.ipv6.mld.v1Mode);
  h.time.advance(500);
  const [r] = h.sent().filter((p) => p.icmp6?.type === 131);
  assert.ok(r, 'an MLDv1 report');
  assert.equal(r.ip6!.dst, 'ff02::1:ff00:2', 'sent to the group itself');
  assert.equal(r.ip6!.hopLimit, 1);
  assert.deepEqual(r.ip6!.exts, [0]);
  assert.ok(r.icmp6!.csumOk);
  assert.equal(r.icmp6!.body.length, 20);
  const g = parseIpv6('ff02::1:ff12:3456')!;
  h.stack.ipv6.mld.join(g);
  h.time.advance(0);
  const [j] = h.sent();
  assert.equal(j.icmp6!.type, 131);
  assert.equal(j.ip6!.dst, 'ff02::1:ff12:3456');
  h.time.advance(10_000);
  h.sent();
  h.stack.ipv6.mld.leave(g);
  h.time.advance(0);
  const [d] = h.sent();
  assert.equal(d.icmp6!.type, 132, 'Done');
  assert.equal(d.ip6!.dst, 'ff02::2');
  h.time.advance(20_000);
  assert.deepEqual(h.sent(), [], 'one Done');
  h.time.advance(260_000);
  assert.ok(!h.stack.ipv6.mld.v1Mode);
  h.stack.ipv6.mld.join(g);
  h.time.advance(0);
  assert.equal(h.sent()[0].icmp6!.type, 143, 'MLDv2 again');
  assert.equal(h.mibs.Icmp6.OutGroupMembResponses, 3);
  assert.equal(h.mibs.Icmp6.OutGroupMembReductions, 1);
});

/** A Router Advertisement from the peer's link-local address. */
function ra(opts: { lifetime?: number; hop?: number; reachable?: number; retrans?: number; prefix?: [string, number, number, number, number]; mtu?: number; sllao?: boolean }): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(12);
  head[0] = opts.hop ?? 0;
  head.writeUInt16BE(opts.lifetime ?? 0, 2);
  head.writeUInt32BE(opts.reachable ?? 0, 4);
  head.writeUInt32BE(opts.retrans ?? 0, 8);
  parts.push(head);
  if (opts.sllao !== false) parts.push(Buffer.from([1, 1, ...PEER_MAC]));
  if (opts.prefix) {
    const [p, len, flags, valid, pref] = opts.prefix;
    const o = Buffer.alloc(32);
    o[0] = 3;
    o[1] = 4;
    o[2] = len;
    o[3] = flags;
    o.writeUInt32BE(valid >>> 0, 4);
    o.writeUInt32BE(pref >>> 0, 8);
    parseIpv6(p)!.copy(o, 16);
    parts.push(o);
  }
  if (opts.mtu) {
    const o = Buffer.alloc(8);
    o[0] = 5;
    o[1] = 1;
    o.writeUInt32BE(opts.mtu, 4);
    parts.push(o);
  }
  return ndFrame(icmp6(134, 0, Buffer.concat(parts), PEER_LL, ALL_NODES), PEER_LL, ALL_NODES);
}

test('router solicitation: after the link-local address passes DAD, up to 3 (Linux\'s spacing: 4 s +-10%, then x1.9..2.1), from it with our MAC; an RA stops them', () => {
  const h = new Harness(AF_INET6, { rs: true });
  /** Advance 1 ms at a time until an RS goes out; its time. */
  const nextRs = (limit: number): [number, Parsed | null] => {
    for (let i = 0; i < limit; i++) {
      h.time.advance(1);
      const got = rss(h.sent());
      if (got.length) return [h.time.now(), got[0]];
    }
    return [h.time.now(), null];
  };
  const [t1, rs] = nextRs(3000);
  assert.ok(rs, 'the first RS once the link-local address is ready');
  assert.equal(rs.ip6!.src, 'fe80::74:73ff:fe00:2');
  assert.equal(rs.ip6!.dst, 'ff02::2');
  assert.equal(rs.ip6!.hopLimit, 255);
  assert.deepEqual(rs.icmp6!.body.subarray(4, 12), Buffer.from([1, 1, ...STACK_MAC]));
  const [t2, rs2] = nextRs(5000);
  assert.ok(rs2);
  assert.ok(t2 - t1 >= 3600 && t2 - t1 <= 4400, `second after ${t2 - t1} ms`);
  const [t3, rs3] = nextRs(10_000);
  assert.ok(rs3);
  assert.ok(t3 - t2 >= 1.9 * (t2 - t1) - 1 && t3 - t2 <= 2.1 * (t2 - t1) + 1, `third after ${t3 - t2} ms`);
  h.time.advance(3_600_000);
  assert.equal(rss(h.sent()).length, 0, 'three in all');
  assert.equal(h.mibs.Icmp6.OutRouterSolicits, 3);

  const h2 = new Harness(AF_INET6, { rs: true });
  h2.time.advance(2000);
  h2.rx(ra({ lifetime: 0 }));
  h2.time.advance(20_000);
  assert.equal(rss(h2.sent()).length, 1, 'the RA stopped them');
});

test('router_solicitations = -1 (Linux\'s default): solicits on, backing off up to router_solicitation_max_interval', () => {
  const h = new Harness(AF_INET6, { rs: true, down: true });
  h.stack.ipv6.cnf.rtr_solicits = -1;
  h.stack.ipv6.cnf.rtr_solicit_max_interval = 60_000;
  h.stack.up();
  h.time.advance(3000);
  h.sent();
  h.time.advance(600_000);
  // ~4, 8, 16, 32, then ~60 s apart: 4 + ~8 in the first 10 minutes.
  const n = rss(h.sent()).length;
  assert.ok(n >= 11 && n <= 14, `${n} solicitations`);
});

test('Router Advertisement: default router with its lifetime, on-link prefix route, hop limit, retrans timer, MTU', () => {
  const h = Harness.ready(AF_INET6);
  h.rx(ra({ lifetime: 1800, hop: 32, retrans: 2000, reachable: 20000, prefix: ['2001:db8:1::', 64, 0x80, 3600, 1800], mtu: 1400 }));
  const routes = h.stack.ipv6.routes();
  assert.ok(routes.some((r) => r.dst === '::/0' && r.via === 'fe80::ff:fe00:1' && r.expires === 1800), JSON.stringify(routes));
  assert.ok(routes.some((r) => r.dst === '2001:db8:1::/64' && r.via === null && r.expires === 3600), JSON.stringify(routes));
  assert.equal(h.stack.ipv6.cnf.hop_limit, 32);
  assert.equal(h.stack.ipv6.ndisc.tbl.parms.retransTime, 2000);
  assert.equal(h.stack.ipv6.ndisc.tbl.parms.baseReachableTime, 20000);
  assert.equal(h.stack.ipv6.cnf.mtu6, 1400);
  assert.equal(ipv6PathMtu(h.stack, parseIpv6('2001:db8:1::5')!), 1400);
  const n = h.stack.ipv6.neighbours().find((x) => x.addr === 'fe80::ff:fe00:1')!;
  assert.equal(n.router, true);
  assert.equal(n.state, 'STALE', 'learned from the source link-layer address option');
  // Off-link destinations now go through the router's MAC, with the RA's hop limit.
  const skb = allocSkb(8);
  skb.put(8);
  assert.equal(ip6Xmit(h.stack, skb, STACK6, parseIpv6('2001:db8:99::1')!, 253), 0);
  const [p] = h.sent();
  assert.deepEqual(p.dst, PEER_MAC);
  assert.equal(p.ip6!.dst, '2001:db8:99::1');
  assert.equal(p.ip6!.hopLimit, 32);
  // The default route expires with the router lifetime.
  h.time.advance(1_800_000);
  assert.ok(!h.stack.ipv6.routes().some((r) => r.dst === '::/0'));
  // A lifetime of 0 removes a router at once.
  h.rx(ra({ lifetime: 600 }));
  assert.ok(h.stack.ipv6.routes().some((r) => r.dst === '::/0'));
  h.rx(ra({ lifetime: 0 }));
  assert.ok(!h.stack.ipv6.routes().some((r) => r.dst === '::/0'));
});

test('Router Advertisement: invalid ones are ignored (not from a link-local source, hop limit below 255, bad MTU)', () => {
  const h = Harness.ready(AF_INET6);
  const bad = ra({ lifetime: 1800 });
  // From a global source.
  h.rx(ndFrame(icmp6(134, 0, Buffer.concat([Buffer.from([0, 0, 7, 8]), Buffer.alloc(8)]), PEER6, ALL_NODES), PEER6, ALL_NODES));
  // Hop limit 64.
  const low = Buffer.from(bad);
  low[14 + 7] = 64;
  h.rx(low);
  assert.ok(!h.stack.ipv6.routes().some((r) => r.dst === '::/0'));
  h.rx(ra({ mtu: 1000 }));
  assert.equal(h.stack.ipv6.cnf.mtu6, 1500, 'below 1280: ignored');
});

test('SLAAC (ipv6Slaac): a prefix with the A flag makes an EUI-64 address, tentative until DAD passes, then usable; lifetimes deprecate and remove it', () => {
  const h = Harness.ready(AF_INET6, { slaac: true });
  h.rx(ra({ lifetime: 0, prefix: ['2001:db8:2::', 64, 0xc0, 7200 + 60, 7200] }));
  const addr = parseIpv6('2001:db8:2::74:73ff:fe00:2')!;
  assert.deepEqual(h.stack.ipv6.addresses().find((a) => a.addr === '2001:db8:2:0:74:73ff:fe00:2')?.flags, ['tentative']);
  assert.ok(!ipv6AddrIsLocal(h.stack, addr));
  h.time.advance(2000);
  assert.ok(ipv6AddrIsLocal(h.stack, addr));
  const probe = h.sent().find((p) => p.icmp6?.type === 135 && p.ip6!.src === '::');
  assert.ok(probe, 'DAD for the new address');
  h.time.advance(7_200_000);
  assert.deepEqual(h.stack.ipv6.addresses().find((a) => a.addr === '2001:db8:2:0:74:73ff:fe00:2')?.flags, ['deprecated']);
  h.time.advance(60_000);
  assert.equal(h.stack.ipv6.addresses().find((a) => a.addr === '2001:db8:2:0:74:73ff:fe00:2'), undefined);
  // Without ipv6Slaac (the default) the same RA adds no address.
  const off = Harness.ready(AF_INET6);
  off.rx(ra({ lifetime: 0, prefix: ['2001:db8:2::', 64, 0xc0, 7200, 7200] }));
  assert.equal(off.stack.ipv6.addresses().length, 2);
});

test('SLAAC: RFC 4862 5.5.3 e) an RA cannot cut a valid lifetime below two hours', () => {
  const h = Harness.ready(AF_INET6, { slaac: true });
  h.rx(ra({ prefix: ['2001:db8:3::', 64, 0xc0, 86400, 86400] }));
  h.rx(ra({ prefix: ['2001:db8:3::', 64, 0xc0, 10, 10] }));
  h.time.advance(7_199_000);
  assert.ok(h.stack.ipv6.addresses().some((a) => a.addr === '2001:db8:3:0:74:73ff:fe00:2'));
  h.time.advance(2_000);
  assert.ok(!h.stack.ipv6.addresses().some((a) => a.addr === '2001:db8:3:0:74:73ff:fe00:2'));
});

test('a link MTU below 1280 turns IPv6 off (as Linux does): no frames, nothing answered', () => {
  const h = new Harness(AF_INET6, { mtu: 1000 });
  h.time.advance(5000);
  assert.equal(h.stack.ipv6.enabled, false);
  assert.deepEqual(h.sent().filter((p) => p.ip6), []);
  h.rx(ip6Frame({ nexthdr: 58, payload: echo6(1, 1, Buffer.from('x')) }));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.stack.dev.stats.rx_nohandler, 1);
});
