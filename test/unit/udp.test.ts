/**
 * UDP sockets on the in-memory link: the table's bind rules and lookup
 * scoring, SO_REUSEPORT, send and receive with their counters, the receive
 * buffer, broadcast, ICMP errors to connected sockets, fragmentation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { BCAST_MAC, PEER_IP, PEER_MAC, STACK_IP, STACK_MAC, eth, icmp, ipFrame, ipv4, udp as udpHdr, type Parsed } from '../lib/frames.js';
import { csumFold, csumPartial, csumTcpUdpMagic } from '../../src/lib/checksum.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import {
  udpBind,
  udpClose,
  udpConnect,
  udpGetname,
  udpGetsockopt,
  udpIoctl,
  udpPoll,
  udpRecvmsg,
  udpSendmsg,
  udpSetsockopt,
  udpShutdown,
  type UdpProto,
} from '../../src/net/ipv4/udp.js';
import { UdpSock } from '../../src/net/ipv4/udp_sock.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import {
  AF_INET,
  AF_UNSPEC,
  EACCES,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAGAIN,
  ECONNREFUSED,
  EDESTADDRREQ,
  EINVAL,
  EMSGSIZE,
  ENOTCONN,
  MSG_PEEK,
  MSG_TRUNC,
  POLLERR,
  POLLIN,
  POLLOUT,
  SIOCINQ,
  SO_BROADCAST,
  SO_ERROR,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  type SockAddr,
  SOL_SOCKET,
} from '../../src/uapi.js';
import { MsgHdr } from '../../src/net/core/sock.js';

const OTHER_IP = parseIpv4('10.0.0.7')!;
const SUBNET_BCAST = parseIpv4('10.0.0.255')!;

const a4 = (addr: number, port: number): SockAddr => ({ family: AF_INET, addr, addr6: null, port });

function setup(): { h: Harness; udp: UdpProto } {
  const h = Harness.withPeer(AF_INET);
  return { h, udp: h.stack.udp };
}

function sock(udp: UdpProto, uid = 0): UdpSock {
  return udp.newSock(AF_INET, uid);
}

/** Datagram from src:sport to dst:dport as a frame off the wire. */
function dgram(sport: number, dport: number, payload: Buffer | string, src = PEER_IP, dst = STACK_IP, dstMac = STACK_MAC): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return ipFrame({ proto: 17, src, dst, payload: udpHdr(sport, dport, p, src, dst) }, dstMac);
}

/** The UDP header fields and payload of a sent frame. */
function udpOf(p: Parsed): { sport: number; dport: number; len: number; check: number; csumOk: boolean; payload: Buffer } {
  const u = p.ip!.payload;
  return {
    sport: u.readUInt16BE(0),
    dport: u.readUInt16BE(2),
    len: u.readUInt16BE(4),
    check: u.readUInt16BE(6),
    csumOk: csumFold(csumPartial(u, 0, u.length, csumTcpUdpMagic(p.ip!.src, p.ip!.dst, 17, u.length))) === 0,
    payload: u.subarray(8),
  };
}

function recv(udp: UdpProto, sk: UdpSock, size = 2048, flags = 0): { n: number; data: Buffer; info: MsgHdr } {
  const info = new MsgHdr();
  const buf = Buffer.alloc(size);
  const n = udpRecvmsg(udp, sk, buf, flags, info);
  return { n, data: buf.subarray(0, Math.max(0, Math.min(n, size))), info };
}

// --- bind rules --------------------------------------------------------------------

test('bind: a foreign address is EADDRNOTAVAIL; a second bind EINVAL; the same port EADDRINUSE', () => {
  const { udp } = setup();
  const s1 = sock(udp);
  assert.equal(udpBind(udp, s1, a4(OTHER_IP, 5000)), -EADDRNOTAVAIL);
  assert.equal(udpBind(udp, s1, a4(0, 5000)), 0);
  assert.equal(udpBind(udp, s1, a4(0, 5001)), -EINVAL);
  const s2 = sock(udp);
  assert.equal(udpBind(udp, s2, a4(0, 5000)), -EADDRINUSE);
  // The wildcard holder conflicts with a specific address too, both ways.
  assert.equal(udpBind(udp, s2, a4(STACK_IP, 5000)), -EADDRINUSE);
  const s3 = sock(udp);
  assert.equal(udpBind(udp, s3, a4(STACK_IP, 6000)), 0);
  const s4 = sock(udp);
  assert.equal(udpBind(udp, s4, a4(0, 6000)), -EADDRINUSE);
  // A broadcast address may be bound (to receive broadcasts).
  const s5 = sock(udp);
  assert.equal(udpBind(udp, s5, a4(SUBNET_BCAST, 7000)), 0);
  // After close the port is free again.
  udpClose(udp, s1);
  assert.equal(udpBind(udp, s2, a4(0, 5000)), 0);
});

test('bind: SO_REUSEADDR on both shares a port; SO_REUSEPORT needs both and the same user', () => {
  const { udp } = setup();
  const a = sock(udp);
  const b = sock(udp);
  udpSetsockopt(udp, a, SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(udpBind(udp, a, a4(0, 5353)), 0);
  assert.equal(udpBind(udp, b, a4(0, 5353)), -EADDRINUSE, 'only one side has SO_REUSEADDR');
  udpSetsockopt(udp, b, SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(udpBind(udp, b, a4(0, 5353)), 0);

  const r1 = sock(udp, 1000);
  const r2 = sock(udp, 1000);
  const r3 = sock(udp, 2000);
  for (const s of [r1, r2, r3]) udpSetsockopt(udp, s, SOL_SOCKET, SO_REUSEPORT, 1);
  assert.equal(udpBind(udp, r1, a4(0, 9000)), 0);
  assert.equal(udpBind(udp, r2, a4(0, 9000)), 0);
  assert.equal(udpBind(udp, r3, a4(0, 9000)), -EADDRINUSE, 'another user may not join the group');
  assert.equal(udpGetsockopt(udp, r1, SOL_SOCKET, SO_REUSEPORT), 1);
});

test('autobind: the first sendto takes an ephemeral port in ip_local_port_range; connect too', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  assert.equal(s.num, 0);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(PEER_IP, 53)), 1);
  const [lo, hi] = udp.portRange();
  assert.ok(s.num >= lo && s.num <= hi, `port ${s.num}`);
  const [f] = h.sent();
  assert.equal(udpOf(f).sport, s.num);
  const c = sock(udp);
  assert.equal(udpConnect(udp, c, a4(PEER_IP, 53)), 0);
  assert.ok(c.num >= lo && c.num <= hi);
  assert.notEqual(c.num, s.num);
  const out: SockAddr = a4(0, 0);
  assert.equal(udpGetname(c, out, false), 0);
  assert.equal(out.addr, STACK_IP, 'connect fixed the local address');
  assert.equal(udpGetname(c, out, true), 0);
  assert.deepEqual([out.addr, out.port], [PEER_IP, 53]);
  assert.equal(udpGetname(s, out, true), -ENOTCONN);
});

test('connect(AF_UNSPEC) forgets the peer and gives back an autobound port; a bound port stays', () => {
  const { udp } = setup();
  const s = sock(udp);
  udpConnect(udp, s, a4(PEER_IP, 53));
  assert.ok(s.num);
  assert.equal(udpConnect(udp, s, { family: AF_UNSPEC, addr: 0, addr6: null, port: 0 }), 0);
  assert.equal(s.num, 0);
  assert.equal(s.rcvSaddr, 0);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, null), -EDESTADDRREQ);
  const b = sock(udp);
  udpBind(udp, b, a4(0, 4444));
  udpConnect(udp, b, a4(PEER_IP, 53));
  assert.equal(b.rcvSaddr, STACK_IP);
  udpConnect(udp, b, { family: AF_UNSPEC, addr: 0, addr6: null, port: 0 });
  assert.equal(b.num, 4444);
  assert.equal(b.rcvSaddr, 0, 'the address connect chose is given back');
  // Still found by a datagram to the port, from any peer now.
  assert.equal(udp.table.lookup4(OTHER_IP, 1, STACK_IP, 4444), b);
});

// --- lookup -------------------------------------------------------------------------

test('lookup scoring: a connected socket beats a bound one, which beats the wildcard', () => {
  const { h, udp } = setup();
  const wild = sock(udp);
  const bound = sock(udp);
  const conn = sock(udp);
  for (const s of [wild, bound, conn]) udpSetsockopt(udp, s, SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(udpBind(udp, wild, a4(0, 5000)), 0);
  assert.equal(udpBind(udp, bound, a4(STACK_IP, 5000)), 0);
  assert.equal(udpBind(udp, conn, a4(0, 5000)), 0);
  assert.equal(udpConnect(udp, conn, a4(PEER_IP, 4000)), 0);
  h.rx(dgram(4000, 5000, 'to-conn'));
  h.rx(dgram(4001, 5000, 'to-bound'));
  assert.equal(recv(udp, conn).data.toString(), 'to-conn');
  assert.equal(recv(udp, bound).data.toString(), 'to-bound');
  assert.equal(recv(udp, wild).n, -EAGAIN);
  // A broadcast goes to the wildcard socket only (a bound address must equal the destination).
  h.rx(dgram(4001, 5000, 'bcast', PEER_IP, SUBNET_BCAST, BCAST_MAC));
  assert.equal(recv(udp, wild).data.toString(), 'bcast');
  assert.equal(recv(udp, bound).n, -EAGAIN);
  assert.equal(recv(udp, conn).n, -EAGAIN, 'connected to another port');
  // The table's own scores, as compute_score gives them.
  assert.equal(udp.table.lookup4(PEER_IP, 4000, STACK_IP, 5000), conn);
  assert.equal(udp.table.lookup4(OTHER_IP, 4000, STACK_IP, 5000), bound);
  udpClose(udp, bound);
  assert.equal(udp.table.lookup4(OTHER_IP, 4000, STACK_IP, 5000), wild);
});

test('SO_REUSEPORT: datagrams spread over the group by 4-tuple hash; one flow stays on one socket', () => {
  const { h, udp } = setup();
  const group: UdpSock[] = [];
  for (let i = 0; i < 4; i++) {
    const s = sock(udp, 7);
    udpSetsockopt(udp, s, SOL_SOCKET, SO_REUSEPORT, 1);
    assert.equal(udpBind(udp, s, a4(0, 8000)), 0);
    group.push(s);
  }
  const counts = [0, 0, 0, 0];
  for (let sport = 10000; sport < 10200; sport++) h.rx(dgram(sport, 8000, 'x'));
  for (let i = 0; i < 4; i++) counts[i] = group[i].receiveQueue.length;
  assert.equal(counts.reduce((a, b) => a + b), 200);
  for (const c of counts) assert.ok(c > 20, `uneven spread ${counts}`);
  // The same 4-tuple always lands on the same member.
  const pick = udp.table.lookup4(PEER_IP, 12345, STACK_IP, 8000);
  for (let i = 0; i < 5; i++) assert.equal(udp.table.lookup4(PEER_IP, 12345, STACK_IP, 8000), pick);
  // A member that leaves is no longer picked.
  udpClose(udp, group[0]);
  for (let sport = 10000; sport < 10100; sport++) assert.notEqual(udp.table.lookup4(PEER_IP, sport, STACK_IP, 8000), group[0]);
});

// --- send ----------------------------------------------------------------------------

test('sendto: header, checksum, DF, IP ID 0 unconnected and the socket counter when connected; OutDatagrams', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 3333));
  assert.equal(udpSendmsg(udp, s, Buffer.from('hello'), 0, a4(PEER_IP, 7)), 5);
  const [f] = h.sent();
  assert.deepEqual(f.dst, PEER_MAC);
  assert.equal(f.ip!.src, STACK_IP);
  assert.equal(f.ip!.proto, 17);
  assert.equal(f.ip!.ttl, 64);
  assert.equal(f.ip!.df, true);
  assert.equal(f.ip!.id, 0);
  const u = udpOf(f);
  assert.deepEqual([u.sport, u.dport, u.len], [3333, 7, 13]);
  assert.ok(u.csumOk);
  assert.equal(u.payload.toString(), 'hello');
  assert.equal(h.mibs.Udp.OutDatagrams, 1);
  udpConnect(udp, s, a4(PEER_IP, 7));
  udpSendmsg(udp, s, Buffer.from('a'), 0, null);
  udpSendmsg(udp, s, Buffer.from('b'), 0, null);
  const [g1, g2] = h.sent();
  assert.equal(g2.ip!.id, (g1.ip!.id + 1) & 0xffff, 'inet_id counts up per datagram');
  assert.equal(udpOf(g1).dport, 7);
});

test('a checksum that computes to 0 goes out as 0xffff', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 3333));
  // Find a 2-byte payload whose checksum folds to 0.
  let payload: Buffer | null = null;
  for (let x = 0; x < 0x10000 && !payload; x++) {
    const u = Buffer.alloc(10);
    u.writeUInt16BE(3333, 0);
    u.writeUInt16BE(9999, 2);
    u.writeUInt16BE(10, 4);
    u.writeUInt16BE(x, 8);
    if (csumFold(csumPartial(u, 0, 10, csumTcpUdpMagic(STACK_IP, PEER_IP, 17, 10))) === 0) payload = u.subarray(8);
  }
  assert.ok(payload);
  udpSendmsg(udp, s, payload, 0, a4(PEER_IP, 9999));
  const u = udpOf(h.sent()[0]);
  assert.equal(u.check, 0xffff);
  assert.ok(u.csumOk);
});

test('EDESTADDRREQ without an address unconnected; sendto with an address on a connected socket goes there', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, null), -EDESTADDRREQ);
  assert.ok(s.num, 'autobound before the check, as inet_sendmsg does');
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(PEER_IP, 0)), -EINVAL);
  udpConnect(udp, s, a4(PEER_IP, 1000));
  assert.equal(udpSendmsg(udp, s, Buffer.from('y'), 0, a4(PEER_IP, 2000)), 1);
  assert.equal(udpSendmsg(udp, s, Buffer.from('z'), 0, null), 1);
  const f = h.sent();
  assert.deepEqual(f.map((p) => udpOf(p).dport), [2000, 1000]);
});

test('65507 bytes go out in fragments; 65508 is EMSGSIZE; a fragmented datagram is reassembled on receive', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 3333));
  const big = Buffer.alloc(65507, 0x5a);
  assert.equal(udpSendmsg(udp, s, big, 0, a4(PEER_IP, 9)), 65507);
  const frags = h.sent();
  assert.equal(frags.length, Math.ceil((65507 + 8) / 1480));
  assert.ok(frags.every((f) => f.ip!.df === false && f.ip!.id === frags[0].ip!.id));
  assert.equal(frags.reduce((n, f) => n + f.ip!.payload.length, 0), 65507 + 8);
  assert.equal(udpSendmsg(udp, s, Buffer.alloc(65508), 0, a4(PEER_IP, 9)), -EMSGSIZE);
  assert.equal(udpSendmsg(udp, s, Buffer.alloc(70000), 0, a4(PEER_IP, 9)), -EMSGSIZE);
  // Receive: 3000 bytes in two fragments.
  const payload = Buffer.alloc(3000);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  const whole = udp_(4000, 3333, payload);
  const first = whole.subarray(0, 1480);
  const rest = whole.subarray(1480);
  h.rx(ipFrame({ proto: 17, id: 77, frag: 0x2000, payload: first }));
  h.rx(ipFrame({ proto: 17, id: 77, frag: 1480 / 8, payload: rest }));
  const r = recv(udp, s, 4000);
  assert.equal(r.n, 3000);
  assert.deepEqual(r.data, payload);
});

function udp_(sport: number, dport: number, p: Buffer): Buffer {
  return udpHdr(sport, dport, p);
}

test('SO_BROADCAST: EACCES without it for the subnet and limited broadcast; with it, out to ff:ff:ff:ff:ff:ff and looped back', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 3000));
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(SUBNET_BCAST, 4000)), -EACCES);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(0xffffffff, 4000)), -EACCES);
  assert.equal(udpConnect(udp, sock(udp), a4(SUBNET_BCAST, 4000)), -EACCES);
  const listener = sock(udp);
  udpBind(udp, listener, a4(0, 4000));
  udpSetsockopt(udp, s, SOL_SOCKET, SO_BROADCAST, 1);
  assert.equal(udpGetsockopt(udp, s, SOL_SOCKET, SO_BROADCAST), 1);
  assert.equal(udpSendmsg(udp, s, Buffer.from('b1'), 0, a4(SUBNET_BCAST, 4000)), 2);
  assert.equal(udpSendmsg(udp, s, Buffer.from('b2'), 0, a4(0xffffffff, 4000)), 2);
  const f = h.sent();
  assert.equal(f.length, 2);
  assert.deepEqual(f[0].dst, BCAST_MAC);
  assert.equal(f[0].ip!.dst, SUBNET_BCAST);
  assert.equal(f[1].ip!.dst, 0xffffffff);
  assert.equal(f[0].ip!.src, STACK_IP);
  // The host's own socket on the port hears both, as Linux loops broadcasts back.
  assert.equal(recv(udp, listener).data.toString(), 'b1');
  assert.equal(recv(udp, listener).data.toString(), 'b2');
});

// --- receive -----------------------------------------------------------------------------

test('recvfrom: source address; MSG_PEEK leaves it; a short buffer truncates with MSG_TRUNC in the flags; MSG_TRUNC returns the real length', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 5000));
  const woke: number[] = [];
  s.wake = (_sk, ev) => woke.push(ev);
  h.rx(dgram(4321, 5000, 'abcdefghij'));
  h.rx(dgram(4322, 5000, 'second'));
  assert.ok(woke.length === 2 && woke.every((e) => e & POLLIN));
  assert.equal(udpIoctl(s, SIOCINQ), 10, 'FIONREAD is the next datagram, not the total');
  assert.ok(udpPoll(s) & POLLIN);
  const p = recv(udp, s, 100, MSG_PEEK);
  assert.equal(p.n, 10);
  assert.deepEqual([p.info.name.addr, p.info.name.port], [PEER_IP, 4321]);
  assert.equal(h.mibs.Udp.InDatagrams, 0, 'a peek is not counted');
  const t = recv(udp, s, 4);
  assert.equal(t.n, 4);
  assert.equal(t.data.toString(), 'abcd');
  assert.equal(t.info.flags & MSG_TRUNC, MSG_TRUNC);
  const r = recv(udp, s, 2, MSG_TRUNC);
  assert.equal(r.n, 6, 'MSG_TRUNC returns the datagram length');
  assert.equal(r.data.toString(), 'se');
  assert.equal(r.info.name.port, 4322);
  assert.equal(recv(udp, s).n, -EAGAIN);
  assert.equal(udpPoll(s) & POLLIN, 0);
  assert.ok(udpPoll(s) & POLLOUT);
  assert.equal(h.mibs.Udp.InDatagrams, 2);
  assert.equal(s.rmemAlloc, 0);
});

test('receive buffer: truesize charged against SO_RCVBUF (doubled); a full queue drops with RcvbufErrors and InErrors', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 5000));
  assert.equal(udpGetsockopt(udp, s, SOL_SOCKET, SO_RCVBUF), 212992);
  udpSetsockopt(udp, s, SOL_SOCKET, SO_RCVBUF, 1000);
  assert.equal(udpGetsockopt(udp, s, SOL_SOCKET, SO_RCVBUF), 2304, 'SOCK_MIN_RCVBUF');
  udpSetsockopt(udp, s, SOL_SOCKET, SO_RCVBUF, 4000);
  assert.equal(udpGetsockopt(udp, s, SOL_SOCKET, SO_RCVBUF), 8000);
  udpSetsockopt(udp, s, SOL_SOCKET, SO_SNDBUF, 1 << 30);
  assert.equal(udpGetsockopt(udp, s, SOL_SOCKET, SO_SNDBUF), 2 * 212992, 'capped at wmem_max, doubled');
  for (let i = 0; i < 20; i++) h.rx(dgram(4000, 5000, Buffer.alloc(500)));
  const queued = s.receiveQueue.length;
  // Each 500-byte datagram is a 542-byte frame: truesize align64(542 + 64) + 576 = 1216; the
  // queue takes datagrams while what it holds is at most 8000 bytes: 7 (8512 > 8000 stops the 8th).
  assert.equal(queued, 7);
  assert.equal(s.rmemAlloc, 7 * 1216);
  assert.equal(h.mibs.Udp.RcvbufErrors, 13);
  assert.equal(h.mibs.Udp.InErrors, 13);
  assert.equal(s.drops, 13);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.SOCKET_RCVBUFF], 13);
  recv(udp, s);
  h.rx(dgram(4000, 5000, 'again'));
  assert.equal(s.receiveQueue.length, 7);
});

test('input validation: a bad checksum and a short length are dropped and counted; a closed port gets ICMP port unreachable', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 5000));
  h.rx(ipFrame({ proto: 17, payload: udpHdr(1, 5000, Buffer.from('bad'), PEER_IP, STACK_IP, true) }));
  assert.equal(h.mibs.Udp.InCsumErrors, 1);
  assert.equal(h.mibs.Udp.InErrors, 1);
  assert.equal(s.receiveQueue.length, 0);
  // Checksum 0 means none over IPv4: accepted.
  const u = udpHdr(1, 5000, Buffer.from('nocsum'));
  u.writeUInt16BE(0, 6);
  h.rx(ipFrame({ proto: 17, payload: u }));
  assert.equal(recv(udp, s).data.toString(), 'nocsum');
  h.rx(dgram(1, 5001, 'closed'));
  const [f] = h.sent();
  assert.deepEqual([f.icmp!.type, f.icmp!.code], [3, 3]);
  assert.equal(h.mibs.Udp.NoPorts, 1);
});

// --- errors ------------------------------------------------------------------------------

/** The ICMP port unreachable the peer would send about our datagram `sent` (an IP packet). */
function portUnreach(sentIp: Buffer, code = 3): Buffer {
  return ipFrame({ proto: 1, payload: icmp(3, code, 0, sentIp.subarray(0, 28 + 8)) });
}

test('ICMP port unreachable: a connected socket gets ECONNREFUSED once (next call, SO_ERROR, POLLERR); an unconnected one never', () => {
  const { h, udp } = setup();
  const c = sock(udp);
  udpConnect(udp, c, a4(PEER_IP, 9999));
  const woke: number[] = [];
  c.wake = (_sk, ev) => woke.push(ev);
  udpSendmsg(udp, c, Buffer.from('ping'), 0, null);
  const sentFrame = h.link.take()[0];
  h.rx(portUnreach(sentFrame.subarray(14)));
  assert.ok(woke.some((e) => e & POLLERR));
  assert.ok(udpPoll(c) & POLLERR);
  assert.equal(recv(udp, c).n, -ECONNREFUSED);
  assert.equal(recv(udp, c).n, -EAGAIN, 'reported once');
  // Again: this time SO_ERROR reads it, then a send succeeds.
  udpSendmsg(udp, c, Buffer.from('ping'), 0, null);
  h.rx(portUnreach(h.link.take()[0].subarray(14)));
  assert.equal(udpGetsockopt(udp, c, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
  assert.equal(udpGetsockopt(udp, c, SOL_SOCKET, SO_ERROR), 0);
  // And the next send reports it too.
  udpSendmsg(udp, c, Buffer.from('ping'), 0, null);
  h.rx(portUnreach(h.link.take()[0].subarray(14)));
  assert.equal(udpSendmsg(udp, c, Buffer.from('ping'), 0, null), -ECONNREFUSED);

  const u = sock(udp);
  udpSendmsg(udp, u, Buffer.from('ping'), 0, a4(PEER_IP, 9999));
  h.rx(portUnreach(h.link.take()[0].subarray(14)));
  assert.equal(udpGetsockopt(udp, u, SOL_SOCKET, SO_ERROR), 0);
  assert.equal(udpPoll(u) & POLLERR, 0);
  // An error about a datagram no socket sent: IcmpInErrors.
  const before = h.mibs.Icmp.InErrors;
  const fake = ipv4({ proto: 17, src: STACK_IP, dst: PEER_IP, payload: udpHdr(1, 2, Buffer.alloc(0), STACK_IP, PEER_IP) });
  h.rx(portUnreach(fake));
  assert.equal(h.mibs.Icmp.InErrors, before + 1);
  // Host unreachable is a soft error: not reported even when connected.
  udpSendmsg(udp, c, Buffer.from('ping'), 0, null);
  h.rx(portUnreach(h.link.take()[0].subarray(14), 1));
  assert.equal(udpGetsockopt(udp, c, SOL_SOCKET, SO_ERROR), 0);
});

test('loopback: a datagram to our own address reaches our socket with our address as the source', () => {
  const { h, udp } = setup();
  const a = sock(udp);
  const b = sock(udp);
  udpBind(udp, a, a4(0, 1111));
  udpBind(udp, b, a4(STACK_IP, 2222));
  assert.equal(udpSendmsg(udp, a, Buffer.from('self'), 0, a4(STACK_IP, 2222)), 4);
  assert.equal(h.link.take().length, 0, 'nothing on the wire');
  const r = recv(udp, b);
  assert.equal(r.data.toString(), 'self');
  assert.deepEqual([r.info.name.addr, r.info.name.port], [STACK_IP, 1111]);
});

test('shutdown on an unconnected socket is ENOTCONN but takes effect; EPIPE on send after SHUT_WR', () => {
  const { udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 5000));
  assert.equal(udpShutdown(udp, s, 1), -ENOTCONN);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(PEER_IP, 9)), -32);
  assert.equal(udpShutdown(udp, s, 3), -EINVAL);
  assert.equal(udpShutdown(udp, s, 0), -ENOTCONN);
  const info = new MsgHdr();
  assert.equal(udpRecvmsg(udp, s, Buffer.alloc(10), 0, info, false), 0, 'a blocking read sees the end');
  assert.equal(udpRecvmsg(udp, s, Buffer.alloc(10), 0, info, true), -EAGAIN);
});

test('an unreachable destination is ENETUNREACH without a gateway; so is 255.255.255.255 (it needs a route), the subnet broadcast is not', () => {
  const h = new Harness(AF_INET, { gateway: 0 });
  const udp = h.stack.udp;
  const s = sock(udp);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(parseIpv4('192.0.2.1')!, 9)), -101);
  assert.equal(h.mibs.Ip.OutNoRoutes, 1);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(0xffffffff, 9)), -101);
  assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(SUBNET_BCAST, 9)), -EACCES);
});

test('a datagram in a frame for another MAC is not delivered', () => {
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 5000));
  h.rx(eth(Buffer.from('020000000099', 'hex'), PEER_MAC, 0x0800, ipv4({ proto: 17, payload: udpHdr(1, 5000, Buffer.from('x')) })));
  assert.equal(s.receiveQueue.length, 0);
});

// --- services ------------------------------------------------------------------------------

test('services: UDP echo (7) sends each datagram back to its source; discard (9) drops; counts on the rows', async () => {
  const { startServices } = await import('../../src/services/index.js');
  const { h } = setup();
  const svc = startServices(h.stack, { echo: 7, discard: 9, chargen: null, http: null });
  h.rx(dgram(40000, 7, 'echo me'));
  h.rx(dgram(40001, 7, Buffer.alloc(0)));
  h.rx(dgram(40002, 9, 'gone'));
  await new Promise((r) => setImmediate(r));
  const out = h.sent();
  assert.equal(out.length, 2);
  const u0 = udpOf(out[0]);
  assert.deepEqual([u0.sport, u0.dport, u0.payload.toString()], [7, 40000, 'echo me']);
  assert.equal(out[0].ip!.dst, PEER_IP);
  assert.ok(u0.csumOk);
  assert.deepEqual([udpOf(out[1]).dport, udpOf(out[1]).payload.length], [40001, 0]);
  const rows = svc.rows();
  const echoRow = rows.find((r) => r.name === 'echo/udp')!;
  const discardRow = rows.find((r) => r.name === 'discard/udp')!;
  assert.deepEqual(echoRow.extra, { datagramsIn: 2, datagramsOut: 2, sendErrors: 0 });
  assert.equal(echoRow.stats.bytesIn, 7);
  assert.deepEqual(discardRow.extra, { datagramsIn: 1, datagramsOut: 0, sendErrors: 0 });
  assert.equal(h.mibs.Udp.InDatagrams, 3);
  assert.equal(h.mibs.Udp.OutDatagrams, 2);
  svc.stop();
  h.rx(dgram(40000, 7, 'after stop'));
  assert.equal(h.mibs.Udp.NoPorts, 1);
});

test('services: a flood is drained in bounded runs, none lost below the receive buffer', async () => {
  const { startServices } = await import('../../src/services/index.js');
  const { h } = setup();
  const svc = startServices(h.stack, { echo: 7, discard: null, chargen: null, http: null });
  for (let i = 0; i < 150; i++) h.rx(dgram(40000, 7, `d${i}`));
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  const out = h.sent();
  assert.equal(out.length, 150);
  assert.deepEqual(out.map((f) => udpOf(f).payload.toString()), Array.from({ length: 150 }, (_, i) => `d${i}`));
  svc.stop();
});

test('multicast to a joined group (224.0.0.1) reaches every wildcard socket on the port; unjoined groups are not ours', () => {
  const { h, udp } = setup();
  const a = sock(udp);
  const b = sock(udp);
  for (const s of [a, b]) udpSetsockopt(udp, s, SOL_SOCKET, SO_REUSEADDR, 1);
  udpBind(udp, a, a4(0, 5000));
  udpBind(udp, b, a4(0, 5000));
  const group = parseIpv4('224.0.0.1')!;
  const mac = Buffer.from([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
  h.rx(dgram(4000, 5000, 'all hosts', PEER_IP, group, mac));
  assert.equal(recv(udp, a).data.toString(), 'all hosts');
  assert.equal(recv(udp, b).data.toString(), 'all hosts');
  h.rx(dgram(4000, 5001, 'nobody', PEER_IP, group, mac));
  assert.equal(h.mibs.Udp.IgnoredMulti, 1);
  assert.equal(h.mibs.Udp.NoPorts, 0, 'no ICMP about a multicast datagram');
  assert.equal(h.sent().length, 0);
});

test('ephemeral ports: every port of a small ip_local_port_range is found, then EAGAIN on send/connect and EADDRINUSE on bind(0)', () => {
  const { udp, h } = setup();
  h.stack.tcp.hashinfo.setPortRange(40000, 40004);
  const socks: UdpSock[] = [];
  for (let i = 0; i < 5; i++) {
    const s = sock(udp);
    assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, a4(PEER_IP, 9)), 1);
    socks.push(s);
  }
  assert.deepEqual(socks.map((s) => s.num).sort(), [40000, 40001, 40002, 40003, 40004]);
  assert.equal(udpSendmsg(udp, sock(udp), Buffer.from('x'), 0, a4(PEER_IP, 9)), -EAGAIN);
  assert.equal(udpConnect(udp, sock(udp), a4(PEER_IP, 9)), -EAGAIN);
  assert.equal(udpBind(udp, sock(udp), a4(0, 0)), -EADDRINUSE);
  // One port freed: two SO_REUSEADDR sockets share it, as udp_lib_lport_inuse allows.
  const freed = socks[2].num;
  udpClose(udp, socks[2]);
  const r = sock(udp);
  const q = sock(udp);
  udpSetsockopt(udp, r, SOL_SOCKET, SO_REUSEADDR, 1);
  udpSetsockopt(udp, q, SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(udpBind(udp, r, a4(0, 0)), 0);
  assert.equal(udpBind(udp, q, a4(0, 0)), 0);
  assert.deepEqual([r.num, q.num], [freed, freed]);
});

test('corking: MSG_MORE pieces go out as one datagram to the first destination; UDP_CORK holds until cleared; past 65507 all is flushed', async () => {
  const { MSG_MORE, SOL_UDP, UDP_CORK, SIOCOUTQ } = await import('../../src/uapi.js');
  const { h, udp } = setup();
  const s = sock(udp);
  udpBind(udp, s, a4(0, 3333));
  assert.equal(udpSendmsg(udp, s, Buffer.from('ab'), MSG_MORE, a4(PEER_IP, 7)), 2);
  assert.equal(udpSendmsg(udp, s, Buffer.from('cd'), MSG_MORE, a4(PEER_IP, 8)), 2, 'the address of a later piece is not looked at');
  assert.equal(h.sent().length, 0);
  assert.equal(udpIoctl(s, SIOCOUTQ), 4);
  assert.equal(udpSendmsg(udp, s, Buffer.from('ef'), 0, null), 2);
  const [f] = h.sent();
  assert.deepEqual([udpOf(f).dport, udpOf(f).payload.toString()], [7, 'abcdef']);
  assert.ok(udpOf(f).csumOk);
  assert.equal(h.mibs.Udp.OutDatagrams, 1);
  // UDP_CORK: held across sends until cleared.
  udpSetsockopt(udp, s, SOL_UDP, UDP_CORK, 1);
  assert.equal(udpGetsockopt(udp, s, SOL_UDP, UDP_CORK), 1);
  udpSendmsg(udp, s, Buffer.from('x'), 0, a4(PEER_IP, 9));
  udpSendmsg(udp, s, Buffer.from('y'), 0, null);
  assert.equal(h.sent().length, 0);
  udpSetsockopt(udp, s, SOL_UDP, UDP_CORK, 0);
  const [g] = h.sent();
  assert.deepEqual([udpOf(g).dport, udpOf(g).payload.toString()], [9, 'xy']);
  // Too much corked: everything pending is dropped with EMSGSIZE; the socket carries on.
  udpSendmsg(udp, s, Buffer.alloc(40000), MSG_MORE, a4(PEER_IP, 9));
  assert.equal(udpSendmsg(udp, s, Buffer.alloc(30000), MSG_MORE, null), -EMSGSIZE);
  assert.equal(udpIoctl(s, SIOCOUTQ), 0);
  assert.equal(udpSendmsg(udp, s, Buffer.from('z'), 0, null), -EDESTADDRREQ, 'nothing pending any more');
  // A corked send to a broadcast address without SO_BROADCAST fails at once, as an immediate one would.
  assert.equal(udpSendmsg(udp, s, Buffer.from('b'), MSG_MORE, a4(SUBNET_BCAST, 9)), -EACCES);
  // Closing drops what is corked.
  udpSendmsg(udp, s, Buffer.from('lost'), MSG_MORE, a4(PEER_IP, 9));
  udpClose(udp, s);
  assert.equal(h.sent().length, 0);
});
