/**
 * UDP over IPv6 in the same table: AF_INET6 sockets, dual-stack receive
 * with v4-mapped sources, IPV6_V6ONLY, the mandatory checksum, ICMPv6 port
 * unreachable and errors to connected sockets, output and its limits, and
 * the services answering over both families.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { BCAST_MAC, PEER6, PEER_IP, PEER_MAC, STACK6, STACK_IP, arp, eth, icmp6, inetFrame, ip6Frame, ipFrame, peerAddr, pseudoSum, stackAddr, udp as udpHdr, type Parsed } from '../lib/frames.js';
import { csumFold, csumPartial } from '../../src/lib/checksum.js';
import { ipv6SetV4Mapped, parseIpv6 } from '../../src/lib/addr.js';
import { udpBind, udpConnect, udpRecvmsg, type UdpProto } from '../../src/net/ipv4/udp.js';
import { type UdpSock } from '../../src/net/ipv4/udp_sock.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import {
  AF_INET,
  AF_INET6,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  ECONNREFUSED,
  EINVAL,
  EMSGSIZE,
  IPV6_V6ONLY,
  SO_ERROR,
  type SockAddr,
  SOL_IPV6,
  SOL_SOCKET,
} from '../../src/uapi.js';
import { ip6DatagramConnect, udpV6Bind, udpv6Getsockopt, udpv6Sendmsg, udpv6Setsockopt } from '../../src/net/ipv6/udp.js';
import { MsgHdr } from '../../src/net/core/sock.js';

const ANY6 = new Uint8Array(16);
const a6 = (addr: Uint8Array, port: number): SockAddr => ({ family: AF_INET6, addr: 0, addr6: addr, port });
const a4 = (addr: number, port: number): SockAddr => ({ family: AF_INET, addr, addr6: null, port });
const mapped = (v4: number): Uint8Array => {
  const b = new Uint8Array(16);
  ipv6SetV4Mapped(b, v4);
  return b;
};

/** A UDP datagram over IPv6 with its (mandatory) checksum, or the given one. */
function udp6(sport: number, dport: number, payload: Uint8Array | string, src: Uint8Array = PEER6, dst: Uint8Array = STACK6, check?: number): Buffer {
  const u = udpHdr(sport, dport, typeof payload === 'string' ? Buffer.from(payload) : payload, src, dst);
  if (check !== undefined) u.writeUInt16BE(check, 6);
  return u;
}

const dgram6 = (sport: number, dport: number, payload: Uint8Array | string, check?: number) =>
  ip6Frame({ nexthdr: 17, payload: udp6(sport, dport, payload, PEER6, STACK6, check) });
const dgram4 = (sport: number, dport: number, payload: string) => ipFrame({ proto: 17, payload: udpHdr(sport, dport, Buffer.from(payload)) });

function setup(): { h: Harness; udp: UdpProto } {
  const h = Harness.withPeer(AF_INET6);
  // The IPv4 peer's MAC too (from its ARP request), so IPv4 replies leave at once.
  h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, Buffer.alloc(6), STACK_IP)));
  h.link.take();
  return { h, udp: h.stack.udp };
}

function sock6(udp: UdpProto): UdpSock {
  return udp.newSock(AF_INET6);
}

function recv(udp: UdpProto, sk: UdpSock, size = 2048): { n: number; data: Buffer; info: MsgHdr } {
  const info = new MsgHdr();
  const buf = Buffer.alloc(size);
  const n = udpRecvmsg(udp, sk, buf, 0, info);
  return { n, data: buf.subarray(0, Math.max(0, n)), info };
}

function udpOf6(p: Parsed) {
  const u = p.ip6!.payload;
  return {
    sport: u.readUInt16BE(0),
    dport: u.readUInt16BE(2),
    check: u.readUInt16BE(6),
    csumOk: csumFold(csumPartial(u, 0, u.length, pseudoSum(p.ip6!.srcBuf, p.ip6!.dstBuf, 17, u.length))) === 0,
    payload: u.subarray(8),
  };
}

test('AF_INET6 on ::: IPv6 datagrams with their source, IPv4 ones v4-mapped; counted as Udp6 and Udp', () => {
  const { h, udp } = setup();
  const s = sock6(udp);
  assert.equal(udpV6Bind(udp, s, a6(ANY6, 5000)), 0);
  h.rx(dgram6(4000, 5000, 'over six'));
  h.rx(dgram4(4001, 5000, 'over four'));
  const r6 = recv(udp, s);
  assert.equal(r6.data.toString(), 'over six');
  assert.equal(r6.info.name.family, AF_INET6);
  assert.deepEqual(Buffer.from(r6.info.name.addr6!), Buffer.from(PEER6));
  assert.equal(r6.info.name.port, 4000);
  const r4 = recv(udp, s);
  assert.equal(r4.data.toString(), 'over four');
  assert.deepEqual(Buffer.from(r4.info.name.addr6!), Buffer.from(mapped(PEER_IP)), '::ffff:10.0.0.1');
  assert.equal(h.mibs.Udp6.InDatagrams, 1);
  assert.equal(h.mibs.Udp.InDatagrams, 1);
});

test('IPV6_V6ONLY: IPv4 goes elsewhere (port unreachable), and an AF_INET socket may share the port', () => {
  const { h, udp } = setup();
  const s = sock6(udp);
  assert.equal(udpv6Getsockopt(udp, s, SOL_IPV6, IPV6_V6ONLY), 0, 'default 0, as net.ipv6.bindv6only');
  udpv6Setsockopt(udp, s, SOL_IPV6, IPV6_V6ONLY, 1);
  assert.equal(udpV6Bind(udp, s, a6(ANY6, 5000)), 0);
  assert.equal(udpv6Setsockopt(udp, s, SOL_IPV6, IPV6_V6ONLY, 0), -EINVAL, 'not after bind');
  h.rx(dgram4(4001, 5000, 'four'));
  assert.equal(h.mibs.Udp.NoPorts, 1);
  const [icmp] = h.link.take();
  assert.equal(icmp.readUInt16BE(12), 0x0800);
  const v4 = udp.newSock(AF_INET);
  assert.equal(udpBind(udp, v4, a4(0, 5000)), 0);
  h.rx(dgram4(4001, 5000, 'four'));
  h.rx(dgram6(4000, 5000, 'six'));
  assert.equal(recv(udp, v4).data.toString(), 'four');
  assert.equal(recv(udp, s).data.toString(), 'six');
  // Without V6ONLY, [::] and 0.0.0.0 on one port clash, in either order.
  const d = sock6(udp);
  assert.equal(udpV6Bind(udp, d, a6(ANY6, 6000)), 0);
  assert.equal(udpBind(udp, udp.newSock(AF_INET), a4(0, 6000)), -EADDRINUSE);
  const e = udp.newSock(AF_INET);
  assert.equal(udpBind(udp, e, a4(STACK_IP, 6001)), 0);
  assert.equal(udpV6Bind(udp, sock6(udp), a6(ANY6, 6001)), -EADDRINUSE);
  assert.equal(udpV6Bind(udp, sock6(udp), a6(mapped(STACK_IP), 6001)), -EADDRINUSE);
});

test('bind: our IPv6 address, or EADDRNOTAVAIL; a bound address beats the wildcard in lookup', () => {
  const { h, udp } = setup();
  assert.equal(udpV6Bind(udp, sock6(udp), a6(parseIpv6('fd00::99')!, 5000)), -EADDRNOTAVAIL);
  // A specific IPv6 address makes the socket IPv6-only (inet6_bind): 0.0.0.0 may share the port.
  const only = sock6(udp);
  assert.equal(udpV6Bind(udp, only, a6(STACK6, 5100)), 0);
  assert.equal(udpv6Getsockopt(udp, only, SOL_IPV6, IPV6_V6ONLY), 1);
  assert.equal(udpBind(udp, udp.newSock(AF_INET), a4(0, 5100)), 0);
  // Bound to a v4-mapped address, the socket cannot reach IPv6 peers.
  const m = sock6(udp);
  assert.equal(udpV6Bind(udp, m, a6(mapped(STACK_IP), 5200)), 0);
  assert.equal(udpv6Sendmsg(udp, m, Buffer.from('x'), 0, a6(PEER6, 9)), -EAFNOSUPPORT);
  assert.equal(ip6DatagramConnect(udp, m, a6(PEER6, 9)), -EAFNOSUPPORT);
  const wild = sock6(udp);
  const bound = sock6(udp);
  udpv6Setsockopt(udp, wild, SOL_SOCKET, 2 /* SO_REUSEADDR */, 1);
  udpv6Setsockopt(udp, bound, SOL_SOCKET, 2, 1);
  assert.equal(udpV6Bind(udp, wild, a6(ANY6, 5000)), 0);
  assert.equal(udpV6Bind(udp, bound, a6(STACK6, 5000)), 0);
  h.rx(dgram6(4000, 5000, 'x'));
  assert.equal(bound.receiveQueue.length, 1);
  assert.equal(wild.receiveQueue.length, 0);
  // An IPv4 datagram cannot reach the IPv6-bound socket, only the dual-stack wildcard.
  h.rx(dgram4(4000, 5000, 'y'));
  assert.equal(wild.receiveQueue.length, 1);
});

test('the checksum is mandatory over IPv6: zero and wrong ones are dropped and counted in Udp6', () => {
  const { h, udp } = setup();
  const s = sock6(udp);
  udpV6Bind(udp, s, a6(ANY6, 5000));
  h.rx(dgram6(4000, 5000, 'zero', 0));
  assert.equal(h.mibs.Udp6.InCsumErrors, 1);
  assert.equal(h.mibs.Udp6.InErrors, 1);
  h.rx(dgram6(4000, 5000, 'bad', 0x1234));
  assert.equal(h.mibs.Udp6.InCsumErrors, 2);
  assert.equal(h.mibs.Drop.counts[SKB_DROP_REASON.UDP_CSUM], 2);
  assert.equal(s.receiveQueue.length, 0);
  assert.equal(h.mibs.Udp.InCsumErrors, 0, 'IPv4 counters untouched');
});

test('a closed port gets ICMPv6 port unreachable (Udp6NoPorts)', () => {
  const { h } = setup();
  h.rx(dgram6(4000, 5999, 'anyone'));
  const [f] = h.sent();
  assert.equal(f.icmp6!.type, 1);
  assert.equal(f.icmp6!.code, 4);
  assert.equal(f.ip6!.dst, 'fd00::1');
  assert.equal(h.mibs.Udp6.NoPorts, 1);
});

test('sendto over IPv6: source fd00::2, hop limit 64, valid checksum; 65527 bytes fragment, 65528 is EMSGSIZE; v4-mapped goes over IPv4', () => {
  const { h, udp } = setup();
  const s = sock6(udp);
  udpV6Bind(udp, s, a6(ANY6, 3333));
  assert.equal(udpv6Sendmsg(udp, s, Buffer.from('hello6'), 0, a6(PEER6, 7)), 6);
  const [f] = h.sent();
  assert.equal(f.ip6!.src, 'fd00::2');
  assert.equal(f.ip6!.dst, 'fd00::1');
  assert.equal(f.ip6!.hopLimit, 64);
  assert.equal(f.ip6!.proto, 17);
  const u = udpOf6(f);
  assert.deepEqual([u.sport, u.dport, u.payload.toString()], [3333, 7, 'hello6']);
  assert.ok(u.csumOk);
  assert.equal(h.mibs.Udp6.OutDatagrams, 1);
  assert.equal(udpv6Sendmsg(udp, s, Buffer.alloc(65527), 0, a6(PEER6, 7)), 65527);
  const frags = h.sent();
  assert.ok(frags.length > 40 && frags.every((p) => p.ip6!.frag));
  assert.equal(udpv6Sendmsg(udp, s, Buffer.alloc(65528), 0, a6(PEER6, 7)), -EMSGSIZE);
  assert.equal(udpv6Sendmsg(udp, s, Buffer.from('to four'), 0, a6(mapped(PEER_IP), 7)), 7);
  const [g] = h.link.take();
  assert.equal(g.readUInt16BE(12), 0x0800, 'an IPv4 frame');
  assert.equal(h.mibs.Udp.OutDatagrams, 1);
  udpv6Setsockopt(udp, s, SOL_IPV6, IPV6_V6ONLY, 0);
  const only = sock6(udp);
  udpv6Setsockopt(udp, only, SOL_IPV6, IPV6_V6ONLY, 1);
  assert.equal(udpv6Sendmsg(udp, only, Buffer.from('x'), 0, a6(mapped(PEER_IP), 7)), -101, 'ENETUNREACH with V6ONLY');
});

test('connected over IPv6: ICMPv6 port unreachable is ECONNREFUSED once; the socket takes only its peer', () => {
  const { h, udp } = setup();
  const c = sock6(udp);
  assert.equal(ip6DatagramConnect(udp, c, a6(PEER6, 9999)), 0);
  assert.ok(c.num);
  assert.deepEqual(Buffer.from(c.v6RcvSaddr), Buffer.from(STACK6), 'connect chose the source');
  assert.equal(udpv6Sendmsg(udp, c, Buffer.from('q'), 0, null), 1);
  const out = h.link.take()[0].subarray(14);
  // The ICMPv6 error quotes our datagram.
  const body = Buffer.alloc(4 + Math.min(out.length, 1232));
  out.copy(body, 4);
  h.rx(ip6Frame({ nexthdr: 58, payload: icmp6(1, 4, body) }));
  assert.equal(recv(udp, c).n, -ECONNREFUSED);
  assert.equal(udpv6Getsockopt(udp, c, SOL_SOCKET, SO_ERROR), 0);
  h.rx(dgram6(9999, c.num, 'from peer'));
  h.rx(dgram6(9998, c.num, 'from elsewhere'));
  assert.equal(recv(udp, c).data.toString(), 'from peer');
  assert.equal(recv(udp, c).n, -EAGAIN);
});

test('services over IPv6: one dual-stack echo socket answers both families', async () => {
  const { startServices } = await import('../../src/services/index.js');
  const { h } = setup();
  const svc = startServices(h.stack, { echo: 7, discard: 9, chargen: null, http: null });
  assert.equal(svc.dgram[0].sock.sk.family, AF_INET6);
  h.rx(dgram6(40000, 7, 'six'));
  h.rx(dgram4(40001, 7, 'four'));
  await new Promise((r) => setImmediate(r));
  const frames = h.link.take();
  assert.equal(frames.length, 2);
  assert.equal(frames[0].readUInt16BE(12), 0x86dd);
  assert.equal(frames[1].readUInt16BE(12), 0x0800);
  svc.stop();
});

test('IPv6 multicast to ff02::1 reaches the dual-stack wildcard socket on the port; nobody on the port is IgnoredMulti, no ICMPv6', () => {
  const { h, udp } = setup();
  const s = sock6(udp);
  udpV6Bind(udp, s, a6(ANY6, 5000));
  const allNodes = parseIpv6('ff02::1')!;
  h.rx(ip6Frame({ nexthdr: 17, dst: allNodes, payload: udp6(4000, 5000, 'to all nodes', PEER6, allNodes) }));
  assert.equal(recv(udp, s).data.toString(), 'to all nodes');
  h.rx(ip6Frame({ nexthdr: 17, dst: allNodes, payload: udp6(4000, 5001, 'nobody', PEER6, allNodes) }));
  assert.equal(h.mibs.Udp6.IgnoredMulti, 1);
  assert.equal(h.mibs.Udp6.NoPorts, 0);
  assert.equal(h.sent().length, 0);
});

test('fuzz: 20 000 mutated UDP datagrams over both families never throw; every one is queued, dropped or answered and counted', () => {
  const { h, udp } = setup();
  const socks: UdpSock[] = [];
  for (const port of [7, 53, 5000]) {
    const s = sock6(udp);
    udpV6Bind(udp, s, a6(ANY6, port));
    socks.push(s);
  }
  const c = udp.newSock(AF_INET);
  udpConnect(udp, c, a4(PEER_IP, 9999));
  let x = 12345;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const ports = [7, 53, 5000, 9, 9999, c.num, rnd(65536)];
  for (let i = 0; i < 20000; i++) {
    const payload = Buffer.alloc(rnd(300));
    for (let j = 0; j < payload.length; j++) payload[j] = rnd(256);
    const sp = ports[rnd(ports.length)];
    const dp = ports[rnd(ports.length)];
    const v6 = rnd(2) === 0;
    const family = v6 ? AF_INET6 : AF_INET;
    const u = udpHdr(sp, dp, payload, peerAddr(family), stackAddr(family));
    // Mutate some: the length field, the checksum, a byte anywhere; or cut the datagram short.
    switch (rnd(5)) {
      case 0:
        u.writeUInt16BE(rnd(65536), 4);
        break;
      case 1:
        u.writeUInt16BE(rnd(65536), 6);
        break;
      case 2:
        u[rnd(u.length)] = rnd(256);
        break;
      case 3: {
        const cut = u.subarray(0, rnd(u.length + 1));
        h.rx(inetFrame(family, { proto: 17, payload: cut }));
        continue;
      }
    }
    h.rx(inetFrame(family, { proto: 17, payload: u }));
    if (i % 64 === 0) for (const s of socks) while (recv(udp, s).n >= 0);
    if (i % 1000 === 0) h.link.take();
  }
  const m4 = h.mibs.Udp;
  const m6 = h.mibs.Udp6;
  let queued = 0;
  for (const s of [...socks, c]) queued += s.receiveQueue.length;
  const delivered = m4.InDatagrams + m6.InDatagrams + queued;
  const accounted = delivered + m4.InErrors + m6.InErrors + m4.NoPorts + m6.NoPorts + m4.IgnoredMulti + m6.IgnoredMulti;
  // RcvbufErrors are inside InErrors; a datagram the connected socket was not connected to is NoPorts.
  assert.ok(delivered > 1000 && m4.InCsumErrors + m6.InCsumErrors > 1000, JSON.stringify({ m4, m6 }));
  assert.equal(accounted, 20000);
});
