/**
 * IP_RECVERR / IPV6_RECVERR and IP_PKTINFO / IPV6_RECVPKTINFO: an ICMP
 * error is queued on the error queue (ip_icmp_error, ipv6_icmp_error) with
 * its type, code and info, the ICMP sender as offender, the quoted
 * destination as msg_name and the quoted payload as data; it becomes the
 * pending error and clears when the last one is read; TCP reports a
 * connected socket's error at once only under IP_RECVERR, and queues SYN_SENT
 * errors as tcp_v4_err does. A datagram read gives in_pktinfo / in6_pktinfo,
 * and SO_TIMESTAMPING's software receive stamp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { BCAST_MAC, PEER6, PEER_IP, PEER_MAC, STACK6, STACK_IP, arp, eth, icmp, icmp6, ip6Frame, ipFrame, udp as udpHdr } from '../lib/frames.js';
import { ipv6SetV4Mapped, parseIpv4, parseIpv6 } from '../../src/lib/addr.js';
import { udpv6Getsockopt, udpv6Sendmsg, udpv6Setsockopt } from '../../src/net/ipv6/udp.js';
import { udpGetsockopt, udpPoll, udpRecvmsg, udpSendmsg, udpSetsockopt, type UdpProto } from '../../src/net/ipv4/udp.js';
import type { UdpSock } from '../../src/net/ipv4/udp_sock.js';
import { MsgHdr } from '../../src/net/core/sock.js';
import { A, S, TcpHarness, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpGetsockopt, tcpPoll, tcpRecvErrqueue, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  ECONNREFUSED,
  EHOSTUNREACH,
  EMSGSIZE,
  IP_PKTINFO,
  IP_RECVERR,
  IPPROTO_IPV6,
  IPV6_PKTINFO,
  IPV6_RECVERR,
  IPV6_RECVPKTINFO,
  MSG_ERRQUEUE,
  POLLERR,
  SO_EE_ORIGIN_ICMP,
  SO_EE_ORIGIN_ICMP6,
  SO_ERROR,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  SCM_TIMESTAMPING,
  SO_TIMESTAMPING,
  SO_MARK,
  SOF_TIMESTAMPING_RX_SOFTWARE,
  SOF_TIMESTAMPING_SOFTWARE,
  SOF_TIMESTAMPING_TX_SCHED,
  SOF_TIMESTAMPING_TX_SOFTWARE,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_OPT_TSONLY,
  SO_EE_ORIGIN_TIMESTAMPING,
  SCM_TSTAMP_SCHED,
  SCM_TSTAMP_SND,
  ENOMSG,
  type SockAddr,
} from '../../src/uapi.js';

const ROUTER_IP = parseIpv4('10.0.0.7')!;
const ROUTER6 = parseIpv6('fd00::7')!;
const a4 = (addr: number, port: number): SockAddr => ({ family: AF_INET, addr, addr6: null, port });
const a6 = (addr: Uint8Array, port: number): SockAddr => ({ family: AF_INET6, addr: 0, addr6: addr, port });
const mapped = (v4: number): Uint8Array => {
  const b = new Uint8Array(16);
  ipv6SetV4Mapped(b, v4);
  return b;
};

/** The error-queue read decoded: data, msg_name, and the RECVERR cmsg's fields and offender. */
function readErr(udp: UdpProto, sk: UdpSock, size = 64) {
  const msg = new MsgHdr();
  const buf = Buffer.alloc(size);
  const n = udpRecvmsg(udp, sk, buf, MSG_ERRQUEUE, msg);
  if (n < 0) return n;
  assert.equal(msg.cmsgs.length, 1);
  const c = msg.cmsgs[0];
  const d = c.data;
  const v6 = c.level === SOL_IPV6;
  const off = 16;
  const offender = v6 ? { family: d.readUInt16LE(off), port: d.readUInt16BE(off + 2), addr6: Buffer.from(d.subarray(off + 8, off + 24)) } : { family: d.readUInt16LE(off), port: d.readUInt16BE(off + 2), addr: d.readUInt32BE(off + 4) };
  return {
    data: buf.subarray(0, n).toString(),
    flags: msg.flags,
    name: msg.name.family === AF_INET6 ? { port: msg.name.port, addr6: Buffer.from(msg.name.addr6!) } : { port: msg.name.port, addr: msg.name.addr },
    level: c.level,
    type: c.type,
    ee: { errno: d.readUInt32LE(0), origin: d[4], type: d[5], code: d[6], info: d.readUInt32LE(8), data: d.readUInt32LE(12) },
    offender,
  };
}

/** An ICMP error from `from` about the IPv4 packet `sent` (a frame as the stack sent it). */
function icmpAbout(sent: Buffer, type: number, code: number, rest = 0, from = ROUTER_IP): Buffer {
  const ip = sent.subarray(14);
  return ipFrame({ proto: 1, src: from, payload: icmp(type, code, rest, ip.subarray(0, 28 + 8 + 4)) });
}

function setup4(): { h: Harness; udp: UdpProto } {
  const h = Harness.withPeer(AF_INET);
  return { h, udp: h.stack.udp };
}

function setup6(): { h: Harness; udp: UdpProto } {
  const h = Harness.withPeer(AF_INET6);
  h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, Buffer.alloc(6), STACK_IP)));
  h.link.take();
  return { h, udp: h.stack.udp };
}

test('UDP IP_RECVERR: an unconnected socket gets the ICMP error queued, as the pending error until read; off purges the queue', () => {
  const { h, udp } = setup4();
  const sk = udp.newSock(AF_INET);
  assert.equal(udpGetsockopt(udp, sk, SOL_IP, IP_RECVERR), 0);
  // Without IP_RECVERR an unconnected socket never hears of it.
  udpSendmsg(udp, sk, Buffer.from('ping'), 0, a4(PEER_IP, 9999));
  h.rx(icmpAbout(h.link.take()[0], 3, 3));
  assert.equal(udpPoll(sk) & POLLERR, 0);
  assert.equal(readErr(udp, sk), -EAGAIN);

  assert.equal(udpSetsockopt(udp, sk, SOL_IP, IP_RECVERR, 1), 0);
  assert.equal(udpGetsockopt(udp, sk, SOL_IP, IP_RECVERR), 1);
  udpSendmsg(udp, sk, Buffer.from('ping'), 0, a4(PEER_IP, 9999));
  h.rx(icmpAbout(h.link.take()[0], 3, 3));
  assert.ok(udpPoll(sk) & POLLERR);
  const e = readErr(udp, sk);
  assert.deepEqual(e, {
    data: 'ping',
    flags: MSG_ERRQUEUE,
    name: { port: 9999, addr: PEER_IP },
    level: SOL_IP,
    type: IP_RECVERR,
    ee: { errno: ECONNREFUSED, origin: SO_EE_ORIGIN_ICMP, type: 3, code: 3, info: 0, data: 0 },
    offender: { family: AF_INET, port: 0, addr: ROUTER_IP },
  });
  assert.equal(udpPoll(sk) & POLLERR, 0, 'the last ICMP error read clears sk_err');
  assert.equal(udpGetsockopt(udp, sk, SOL_SOCKET, SO_ERROR), 0);

  // Fragmentation needed: EMSGSIZE with the MTU in ee_info; a soft error (host unreachable) is queued too.
  udpSendmsg(udp, sk, Buffer.from('big'), 0, a4(PEER_IP, 9999));
  const sent = h.link.take()[0];
  h.rx(icmpAbout(sent, 3, 4, 1400));
  h.rx(icmpAbout(sent, 3, 1));
  const big = readErr(udp, sk);
  assert.ok(typeof big !== 'number');
  assert.deepEqual([big.ee.errno, big.ee.info, big.data], [EMSGSIZE, 1400, 'big']);
  // sock_dequeue_err_skb: the next ICMP error in line is the pending one now.
  assert.equal(udpGetsockopt(udp, sk, SOL_SOCKET, SO_ERROR), EHOSTUNREACH);
  assert.ok(udpPoll(sk) & POLLERR, 'still queued');
  assert.equal(udpSetsockopt(udp, sk, SOL_IP, IP_RECVERR, 0), 0);
  assert.equal(readErr(udp, sk), -EAGAIN, 'turning IP_RECVERR off purged the queue');
  assert.equal(udpPoll(sk) & POLLERR, 0);
});

test('UDP IPV6_RECVERR: ICMPv6 errors queued with SO_EE_ORIGIN_ICMP6 and sockaddr_in6; IPv4 ones on a dual-stack socket under IP_RECVERR, v4-mapped', () => {
  const { h, udp } = setup6();
  const sk = udp.newSock(AF_INET6);
  assert.equal(udpv6Setsockopt(udp, sk, SOL_IPV6, IPV6_RECVERR, 1), 0);
  assert.equal(udpv6Getsockopt(udp, sk, SOL_IPV6, IPV6_RECVERR), 1);
  assert.equal(udpv6Sendmsg(udp, sk, Buffer.from('six'), 0, a6(PEER6, 9999)), 3);
  const out = h.link.take()[0].subarray(14);
  const body = Buffer.alloc(4 + out.length);
  out.copy(body, 4);
  h.rx(ip6Frame({ nexthdr: 58, src: ROUTER6, payload: icmp6(1, 4, body, ROUTER6, STACK6) }));
  assert.deepEqual(readErr(udp, sk), {
    data: 'six',
    flags: MSG_ERRQUEUE,
    name: { port: 9999, addr6: Buffer.from(PEER6) },
    level: SOL_IPV6,
    type: IPV6_RECVERR,
    ee: { errno: ECONNREFUSED, origin: SO_EE_ORIGIN_ICMP6, type: 1, code: 4, info: 0, data: 0 },
    offender: { family: AF_INET6, port: 0, addr6: Buffer.from(ROUTER6) },
  });
  // An ICMPv4 error about a datagram to a v4-mapped peer: IPV6_RECVERR is not IP_RECVERR.
  assert.equal(udpv6Sendmsg(udp, sk, Buffer.from('four'), 0, a6(mapped(PEER_IP), 9999)), 4);
  const sent4 = h.link.take()[0];
  h.rx(icmpAbout(sent4, 3, 3));
  assert.equal(readErr(udp, sk), -EAGAIN);
  assert.equal(udpv6Setsockopt(udp, sk, SOL_IP, IP_RECVERR, 1), 0);
  h.rx(icmpAbout(sent4, 3, 3));
  const e = readErr(udp, sk);
  assert.ok(typeof e !== 'number');
  assert.deepEqual([e.level, e.ee.origin, e.data], [SOL_IPV6, SO_EE_ORIGIN_ICMP, 'four']);
  assert.deepEqual(e.name, { port: 9999, addr6: Buffer.from(mapped(PEER_IP)) });
  assert.deepEqual(e.offender, { family: AF_INET6, port: 0, addr6: Buffer.from(mapped(ROUTER_IP)) });
});

test('UDP IP_PKTINFO: in_pktinfo with ifindex, spec_dst and the destination (a broadcast answered from our address)', () => {
  const { h, udp } = setup4();
  const sk = udp.newSock(AF_INET);
  assert.equal(udpSendmsg(udp, sk, Buffer.from('x'), 0, a4(PEER_IP, 7)), 1);
  h.link.take();
  const port = sk.num;
  const read = () => {
    const msg = new MsgHdr();
    const n = udpRecvmsg(udp, sk, Buffer.alloc(16), 0, msg);
    return { n, cmsgs: msg.cmsgs.map((c) => [c.level, c.type, c.data.readInt32LE(0), c.data.readUInt32BE(4), c.data.readUInt32BE(8)]) };
  };
  h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('a')) }));
  assert.deepEqual(read(), { n: 1, cmsgs: [] }, 'nothing without IP_PKTINFO');
  assert.equal(udpSetsockopt(udp, sk, SOL_IP, IP_PKTINFO, 1), 0);
  assert.equal(udpGetsockopt(udp, sk, SOL_IP, IP_PKTINFO), 1);
  h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('b')) }));
  const ifindex = h.stack.dev.ifindex;
  assert.deepEqual(read(), { n: 1, cmsgs: [[SOL_IP, IP_PKTINFO, ifindex, STACK_IP, STACK_IP]] });
  const bcast = parseIpv4('10.0.0.255')!;
  h.rx(ipFrame({ proto: 17, dst: bcast, payload: udpHdr(7, port, Buffer.from('c'), PEER_IP, bcast) }, BCAST_MAC));
  assert.deepEqual(read(), { n: 1, cmsgs: [[SOL_IP, IP_PKTINFO, ifindex, STACK_IP, bcast]] });
});

test('UDP IPV6_RECVPKTINFO: in6_pktinfo (an IPv4 destination v4-mapped), then IP_PKTINFO for IPv4 when asked too', () => {
  const { h, udp } = setup6();
  const sk = udp.newSock(AF_INET6);
  assert.equal(udpv6Sendmsg(udp, sk, Buffer.from('x'), 0, a6(PEER6, 7)), 1);
  h.link.take();
  const port = sk.num;
  assert.equal(udpv6Setsockopt(udp, sk, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1), 0);
  assert.equal(udpv6Getsockopt(udp, sk, IPPROTO_IPV6, IPV6_RECVPKTINFO), 1);
  const read = () => {
    const msg = new MsgHdr();
    udpRecvmsg(udp, sk, Buffer.alloc(16), 0, msg);
    return msg.cmsgs.map((c) => [c.level, c.type, Buffer.from(c.data)]);
  };
  const ifindex = h.stack.dev.ifindex;
  const info6 = (a: Uint8Array) => {
    const b = Buffer.alloc(20);
    b.set(a);
    b.writeInt32LE(ifindex, 16);
    return b;
  };
  h.rx(ip6Frame({ nexthdr: 17, payload: udpHdr(7, port, Buffer.from('a'), PEER6, STACK6) }));
  assert.deepEqual(read(), [[SOL_IPV6, IPV6_PKTINFO, info6(STACK6)]]);
  h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('b')) }));
  assert.deepEqual(read(), [[SOL_IPV6, IPV6_PKTINFO, info6(mapped(STACK_IP))]]);
  assert.equal(udpv6Setsockopt(udp, sk, SOL_IP, IP_PKTINFO, 1), 0);
  h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('c')) }));
  const got = read();
  assert.equal(got.length, 2);
  assert.deepEqual(got[1].slice(0, 2), [SOL_IP, IP_PKTINFO]);
});

test('UDP SO_TIMESTAMPING RX_SOFTWARE|SOFTWARE: SCM_TIMESTAMPING with the receive time comes before IP_PKTINFO', () => {
  const { h, udp } = setup4();
  const sk = udp.newSock(AF_INET);
  assert.equal(udpSendmsg(udp, sk, Buffer.from('x'), 0, a4(PEER_IP, 7)), 1);
  h.link.take();
  const port = sk.num;
  assert.equal(udpSetsockopt(udp, sk, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE), 0);
  assert.equal(udpSetsockopt(udp, sk, SOL_IP, IP_PKTINFO, 1), 0);
  h.time.advance(1234);
  const at = h.time.wall();
  h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('a')) }));
  h.time.advance(500);
  const msg = new MsgHdr();
  assert.equal(udpRecvmsg(udp, sk, Buffer.alloc(16), 0, msg), 1);
  assert.deepEqual(msg.cmsgs.map((c) => [c.level, c.type]), [[SOL_SOCKET, SCM_TIMESTAMPING], [SOL_IP, IP_PKTINFO]]);
  const ts = msg.cmsgs[0].data;
  assert.equal(ts.length, 48);
  assert.equal(Number(ts.readBigInt64LE(0)) * 1000 + Math.round(Number(ts.readBigInt64LE(8)) / 1e6), at, 'stamped when it arrived, not when read');
  assert.ok(ts.subarray(16).every((b) => b === 0));
  // Without SOFTWARE (reporting) no stamp is given.
  assert.equal(udpSetsockopt(udp, sk, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE), 0);
  h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('b')) }));
  const m2 = new MsgHdr();
  udpRecvmsg(udp, sk, Buffer.alloc(16), 0, m2);
  assert.deepEqual(m2.cmsgs.map((c) => [c.level, c.type]), [[SOL_IP, IP_PKTINFO]]);
});

test('UDP SO_TIMESTAMPING TX_SCHED|TX_SOFTWARE|OPT_ID: SCHED and SND per datagram, keys 0, 1, ... with the data unless OPT_TSONLY', () => {
  const { h, udp } = setup4();
  const sk = udp.newSock(AF_INET);
  const flags = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;
  assert.equal(udpSetsockopt(udp, sk, SOL_SOCKET, SO_TIMESTAMPING, flags), 0);
  h.time.advance(100);
  const at = h.time.wall();
  assert.equal(udpSendmsg(udp, sk, Buffer.from('one'), 0, a4(PEER_IP, 9)), 3);
  assert.equal(udpSendmsg(udp, sk, Buffer.from('two'), 0, a4(PEER_IP, 9)), 3);
  h.link.take();
  const read = () => {
    const msg = new MsgHdr();
    const buf = Buffer.alloc(16);
    const n = udpRecvmsg(udp, sk, buf, MSG_ERRQUEUE, msg);
    if (n < 0) return n;
    const ts = msg.cmsgs[0].data;
    const ee = msg.cmsgs[1].data;
    return {
      data: buf.subarray(0, n).toString(),
      at: Number(ts.readBigInt64LE(0)) * 1000 + Math.round(Number(ts.readBigInt64LE(8)) / 1e6),
      ee: [ee.readUInt32LE(0), ee[4], ee.readUInt32LE(8), ee.readUInt32LE(12)],
    };
  };
  const TS = SO_EE_ORIGIN_TIMESTAMPING;
  assert.deepEqual(read(), { data: 'one', at, ee: [ENOMSG, TS, SCM_TSTAMP_SCHED, 0] });
  assert.deepEqual(read(), { data: 'one', at, ee: [ENOMSG, TS, SCM_TSTAMP_SND, 0] });
  assert.deepEqual(read(), { data: 'two', at, ee: [ENOMSG, TS, SCM_TSTAMP_SCHED, 1] });
  assert.deepEqual(read(), { data: 'two', at, ee: [ENOMSG, TS, SCM_TSTAMP_SND, 1] });
  assert.equal(read(), -EAGAIN);
  assert.equal(udpSetsockopt(udp, sk, SOL_SOCKET, SO_TIMESTAMPING, flags | SOF_TIMESTAMPING_OPT_TSONLY), 0);
  assert.equal(udpSendmsg(udp, sk, Buffer.from('three'), 0, a4(PEER_IP, 9)), 5);
  const r = read();
  assert.ok(typeof r !== 'number');
  assert.deepEqual([r.data, r.ee[3]], ['', 2], 'no data, the key counting on');
});

for (const family of FAMILIES) {
  const v6 = family === AF_INET6;
  const UNREACH = v6 ? { type: 1, code: 3 } : { type: 3, code: 1 };
  const recverr = v6 ? [IPPROTO_IPV6, IPV6_RECVERR] : [SOL_IP, IP_RECVERR];

  test(`${familyName(family)}: TCP ${v6 ? 'IPV6_RECVERR' : 'IP_RECVERR'}: a connected socket's ICMP error is its pending error at once; without, a soft error`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100)), 100);
    const [seg] = t.out();
    const quoted = t.ourPacket({ seq: (t.stackIsn + seg.seq) >>> 0, ack: (t.peerIsn + 1) >>> 0, flags: A, payload: seg.payload });
    t.icmpError(UNREACH.type, UNREACH.code, 0, quoted);
    assert.equal(tcpPoll(t.tcp, sk) & POLLERR, 0, 'soft: kept for a timeout');
    assert.equal(sk.errSoft, EHOSTUNREACH);
    assert.equal(tcpSetsockopt(t.tcp, sk, recverr[0], recverr[1], 1), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, recverr[0], recverr[1]), 1);
    t.icmpError(UNREACH.type, UNREACH.code, 0, quoted);
    assert.ok(tcpPoll(t.tcp, sk) & POLLERR);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ERROR), EHOSTUNREACH);
    assert.equal(tcpRecvErrqueue(sk), -EAGAIN, 'a connected TCP socket queues nothing');
  });

  test(`${familyName(family)}: TCP: an accepted socket inherits the listener's ${v6 ? 'IPV6_RECVERR' : 'IP_RECVERR'}, SO_TIMESTAMPING and SO_MARK`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    assert.equal(tcpSetsockopt(t.tcp, l, recverr[0], recverr[1], 1), 0);
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SCHED), 0);
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_SOCKET, SO_MARK, 666), 0);
    const sk = t.accept();
    assert.equal(tcpGetsockopt(t.tcp, sk, recverr[0], recverr[1]), 1);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING), SOF_TIMESTAMPING_TX_SCHED);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_MARK), 666);
  });

  test(`${familyName(family)}: TCP: an ICMP error in SYN_SENT ends the connect ${v6 ? 'and is queued only under IPV6_RECVERR' : 'and is queued (tcp_v4_err, IP_RECVERR or not)'}`, () => {
    for (const on of [false, true]) {
      const t = new TcpHarness(family);
      const sk = t.connect();
      if (on) assert.equal(tcpSetsockopt(t.tcp, sk, recverr[0], recverr[1], 1), 0);
      const [syn] = t.out();
      assert.equal(syn.flags, 'S');
      t.icmpError(UNREACH.type, UNREACH.code, 0, t.ourPacket({ seq: t.stackIsn, flags: S }));
      assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ERROR), EHOSTUNREACH);
      const e = tcpRecvErrqueue(sk, Buffer.alloc(64));
      if (v6 && !on) {
        assert.equal(e, -EAGAIN);
        continue;
      }
      assert.ok(typeof e !== 'number');
      assert.equal(e.copied, 20, 'the quoted TCP header');
      const d = e.cmsgs[0].data;
      assert.deepEqual([e.cmsgs[0].level, d.readUInt32LE(0), d[4], d[5], d[6]], [v6 ? SOL_IPV6 : SOL_IP, EHOSTUNREACH, v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP, UNREACH.type, UNREACH.code]);
      assert.equal(e.name?.port, t.peerPort);
    }
  });
}
