import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { BCAST_MAC, PEER_IP, PEER_MAC, STACK_IP, STACK_MAC, arp, echo, eth, ipFrame, udp, type Parsed } from '../lib/frames.js';
import { NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_PROBE, NUD_REACHABLE, NUD_STALE } from '../../src/net/core/neighbour.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import { AF_INET } from '../../src/uapi.js';

const ZERO = Buffer.alloc(6);
const OTHER_MAC = Buffer.from([2, 0, 0, 0, 0, 0x99]);
const arps = (ps: Parsed[]) => ps.filter((p) => p.arp);
const state = (h: Harness, ip = PEER_IP) => h.stack.arp.tbl.lookup(ip)?.nudState;

test('link up announces each address with a gratuitous ARP', () => {
  const h = new Harness(AF_INET);
  const [g] = h.sent();
  assert.deepEqual(g.dst, BCAST_MAC);
  assert.equal(g.arp!.op, 1);
  assert.equal(g.arp!.sip, STACK_IP);
  assert.equal(g.arp!.tip, STACK_IP);
  assert.deepEqual(g.arp!.sha, STACK_MAC);
});

test('a request for our address is answered to the asker, and the asker is learned STALE', () => {
  const h = new Harness(AF_INET);
  h.sent();
  h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, ZERO, STACK_IP)));
  const [r] = h.sent();
  assert.deepEqual(r.dst, PEER_MAC);
  assert.equal(r.arp!.op, 2);
  assert.deepEqual(r.arp!.sha, STACK_MAC);
  assert.equal(r.arp!.sip, STACK_IP);
  assert.deepEqual(r.arp!.tha, PEER_MAC);
  assert.equal(r.arp!.tip, PEER_IP);
  assert.equal(state(h), NUD_STALE);
  assert.equal(h.mibs.Arp.rcv_probes_mcast, 1);
});

test('requests for other addresses are not answered and create no entry (arp_accept=0)', () => {
  const h = new Harness(AF_INET);
  h.sent();
  h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, ZERO, parseIpv4('10.0.0.9')!)));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.stack.arp.tbl.size, 0);
});

test('a DAD probe (sender 0.0.0.0) for our address is answered', () => {
  const h = new Harness(AF_INET);
  h.sent();
  h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, 0, ZERO, STACK_IP)));
  const [r] = h.sent();
  assert.equal(r.arp!.op, 2);
  assert.deepEqual(r.dst, PEER_MAC);
  assert.equal(h.stack.arp.tbl.size, 0);
});

test('malformed ARP is dropped and counted', () => {
  const h = new Harness(AF_INET);
  h.sent();
  const bad = [
    arp(1, PEER_MAC, PEER_IP, ZERO, STACK_IP).subarray(0, 20),
    (() => { const a = arp(1, PEER_MAC, PEER_IP, ZERO, STACK_IP); a[4] = 7; return a; })(),
    (() => { const a = arp(1, PEER_MAC, PEER_IP, ZERO, STACK_IP); a.writeUInt16BE(0x86dd, 2); return a; })(),
    arp(9, PEER_MAC, PEER_IP, ZERO, STACK_IP),
    arp(1, Buffer.from([1, 0, 0x5e, 0, 0, 1]), PEER_IP, ZERO, STACK_IP),
  ];
  for (const b of bad) h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, b));
  assert.deepEqual(h.sent(), []);
  assert.equal(h.mibs.Drop.toJSON().ARP_INVALID, bad.length);
});

test('resolution: three broadcasts a second apart, packets queued then sent on the reply', () => {
  const h = new Harness(AF_INET);
  h.sent();
  // An echo from an unknown peer: the reply needs the peer's MAC (the
  // request came with it, but IP never learns from Ethernet headers).
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.from('q1')) }));
  h.rx(ipFrame({ proto: 1, payload: echo(1, 2, Buffer.from('q2')) }));
  let out = h.sent();
  assert.equal(out.length, 1);
  assert.deepEqual(out[0].dst, BCAST_MAC);
  assert.equal(out[0].arp!.tip, PEER_IP);
  assert.equal(state(h), NUD_INCOMPLETE);
  h.time.advance(1000);
  out = h.sent();
  assert.equal(arps(out).length, 1, 'second request at 1 s');
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER_IP, STACK_MAC, STACK_IP)));
  out = h.sent();
  assert.deepEqual(out.map((p) => p.icmp?.data.toString()), ['q1', 'q2']);
  assert.ok(out.every((p) => p.dst.equals(PEER_MAC)));
  assert.equal(state(h), NUD_REACHABLE);
});

test('resolution failure: FAILED at 3 s, queued packets reported host-unreachable', () => {
  const h = new Harness(AF_INET);
  h.sent();
  const dest = parseIpv4('10.0.0.50')!;
  // Our echo reply to 10.0.0.50 must be resolved; nobody answers.
  h.rx(ipFrame({ proto: 1, src: dest, payload: echo(5, 5, Buffer.from('x')) }));
  const times: number[] = [];
  for (let t = 0; t < 5000; t += 100) {
    for (const p of h.sent()) if (p.arp) times.push(t);
    h.time.advance(100);
  }
  assert.deepEqual(times, [0, 1000, 2000]);
  assert.equal(state(h, dest), NUD_FAILED);
  assert.equal(h.mibs.Arp.res_failed, 1);
  assert.equal(h.mibs.Drop.toJSON().NEIGH_FAILED, 1);
  // The failure is reported to ourselves as ICMP host unreachable (ipv4_link_failure).
  assert.equal(h.mibs.Icmp.InDestUnreachs, 1);
});

test('the unresolved queue is bounded in bytes; the oldest packets go first', () => {
  const h = new Harness(AF_INET);
  h.sent();
  h.stack.arp.tbl.parms.unresQlenBytes = 3000;
  for (let i = 0; i < 5; i++) h.rx(ipFrame({ proto: 1, payload: echo(1, i, Buffer.alloc(1000, i)) }));
  assert.equal(h.mibs.Arp.unresolved_discards, 3);
  h.sent();
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER_IP, STACK_MAC, STACK_IP)));
  assert.deepEqual(h.sent().map((p) => p.icmp!.rest & 0xffff), [3, 4]);
});

test('REACHABLE -> STALE after reachable_time; use moves it to DELAY, then PROBE with unicast probes, then FAILED', () => {
  const h = new Harness(AF_INET);
  h.sent();
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.alloc(1)) }));
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER_IP, STACK_MAC, STACK_IP)));
  h.sent();
  assert.equal(state(h), NUD_REACHABLE);
  const reach = h.stack.arp.tbl.parms.reachableTime;
  assert.ok(reach >= 15_000 && reach < 45_000, `randomised reachable_time ${reach}`);
  h.time.advance(reach + 1);
  assert.equal(state(h), NUD_STALE);
  assert.deepEqual(h.sent(), [], 'going stale sends nothing');

  h.rx(ipFrame({ proto: 1, payload: echo(1, 2, Buffer.alloc(1)) }));
  const [reply] = h.sent();
  assert.equal(reply.icmp!.type, 0, 'a STALE entry is used at once');
  assert.equal(state(h), NUD_DELAY);
  h.time.advance(4999);
  assert.equal(state(h), NUD_DELAY);
  h.time.advance(1);
  assert.equal(state(h), NUD_PROBE);
  let out = h.sent();
  assert.equal(out.length, 1);
  assert.deepEqual(out[0].dst, PEER_MAC, 'PROBE asks the known address by unicast');
  h.time.advance(1000);
  h.time.advance(1000);
  out = h.sent();
  assert.equal(out.length, 2);
  h.time.advance(1000);
  assert.equal(state(h), NUD_FAILED);
});

test('a reply to a probe makes the entry REACHABLE again', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, payload: echo(1, 2, Buffer.alloc(1)) }));
  h.sent();
  h.time.advance(5000);
  assert.equal(state(h), NUD_PROBE);
  assert.equal(arps(h.sent()).length, 1, 'the first unicast probe');
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER_IP, STACK_MAC, STACK_IP)));
  assert.equal(state(h), NUD_REACHABLE);
  h.time.advance(3000);
  assert.deepEqual(arps(h.sent()), []);
});

test('DELAY returns to REACHABLE when something confirmed the neighbour meanwhile', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, payload: echo(1, 2, Buffer.alloc(1)) }));
  h.sent();
  assert.equal(state(h), NUD_DELAY);
  h.time.advance(2000);
  h.stack.arp.tbl.confirm(PEER_IP);
  h.time.advance(3000);
  assert.equal(state(h), NUD_REACHABLE);
  assert.deepEqual(arps(h.sent()), []);
});

test('a changed MAC in an unsolicited ARP replaces the entry only after locktime, as STALE', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(eth(STACK_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER_IP, STACK_MAC, STACK_IP)));
  assert.equal(state(h), NUD_REACHABLE);
  // Within a second of the last update: ignored.
  h.rx(eth(BCAST_MAC, OTHER_MAC, 0x0806, arp(1, OTHER_MAC, PEER_IP, ZERO, parseIpv4('10.0.0.9')!)));
  assert.deepEqual(h.stack.arp.tbl.lookup(PEER_IP)!.ha, PEER_MAC);
  h.time.advance(1500);
  h.rx(eth(BCAST_MAC, OTHER_MAC, 0x0806, arp(1, OTHER_MAC, PEER_IP, ZERO, parseIpv4('10.0.0.9')!)));
  assert.deepEqual(h.stack.arp.tbl.lookup(PEER_IP)!.ha, OTHER_MAC);
  assert.equal(state(h), NUD_STALE);
});

test('garbage collection drops FAILED entries once the table is past gc_thresh1', () => {
  const h = new Harness(AF_INET);
  h.sent();
  const tbl = h.stack.arp.tbl;
  tbl.parms.gcThresh1 = 2;
  for (let i = 0; i < 3; i++) {
    const src = parseIpv4(`10.0.0.${100 + i}`)!;
    h.rx(ipFrame({ proto: 1, src, payload: echo(1, i, Buffer.alloc(1)) }));
  }
  h.time.advance(4000);
  assert.equal(tbl.size, 3);
  h.time.advance(30_000);
  assert.equal(tbl.size, 0);
  assert.ok(h.mibs.Arp.periodic_gc_runs >= 1);
});

test('a queued ICMP error that cannot be resolved is dropped without an error about it', () => {
  const h = new Harness(AF_INET);
  h.sent();
  const dest = parseIpv4('10.0.0.51')!;
  h.rx(ipFrame({ proto: 17, src: dest, payload: udp(1, 2, Buffer.from('x'), dest) }));
  h.time.advance(3000);
  assert.equal(h.mibs.Drop.toJSON().NEIGH_FAILED, 1);
  assert.equal(h.mibs.Icmp.InDestUnreachs, 0, 'no ICMP error about an ICMP error');
});

test('a permanent entry is used without resolution and never probed or replaced', () => {
  const h = new Harness(AF_INET);
  h.sent();
  assert.ok(h.stack.neighAddPermanent(PEER_IP, PEER_MAC));
  h.rx(ipFrame({ proto: 1, payload: echo(1, 1, Buffer.alloc(1)) }));
  const [r] = h.sent();
  assert.deepEqual(r.dst, PEER_MAC);
  h.time.advance(120_000);
  assert.deepEqual(arps(h.sent()), []);
  h.time.advance(2000);
  h.rx(eth(BCAST_MAC, OTHER_MAC, 0x0806, arp(1, OTHER_MAC, PEER_IP, ZERO, STACK_IP)));
  assert.deepEqual(h.stack.arp.tbl.lookup(PEER_IP)!.ha, PEER_MAC, 'ARP does not override a permanent entry');
});
