/**
 * The link lost under the stack (the TAP deleted: Stack.carrierOff) and
 * back (carrierOn), on the in-memory link and the virtual clock: sends fail
 * with ENETDOWN where Linux answers so for a route through a device that is
 * down, transmits are dropped and counted (tx_dropped, DEV_READY), the
 * neighbours go, and an established TCP connection keeps its state and
 * delivers what was written meanwhile once the link is back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { TcpHarness, A, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { PEER6, PEER_IP } from '../lib/frames.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import { tcpConnect, tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { udpSendmsg } from '../../src/net/ipv4/udp.js';
import { ip6DatagramConnect, udpv6Sendmsg } from '../../src/net/ipv6/udp.js';
import { tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import { TCP_ESTABLISHED } from '../../src/net/core/sock.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { AF_INET, AF_INET6, EINPROGRESS, ENETDOWN, type SockAddr } from '../../src/uapi.js';

const a4 = (addr: number, port: number): SockAddr => ({ family: AF_INET, addr, addr6: null, port });
const a6 = (addr: Uint8Array, port: number): SockAddr => ({ family: AF_INET6, addr: 0, addr6: addr, port });

test('carrier off: UDP sendto and TCP connect() get ENETDOWN, nothing leaves, the device says why; carrier on: both work again', () => {
  const h = Harness.withPeer(AF_INET);
  const { stack } = h;
  const udp = stack.udp;
  const s = udp.newSock(AF_INET, 0);
  assert.equal(udpSendmsg(udp, s, Buffer.from('up'), 0, a4(PEER_IP, 9)), 2);
  h.link.take();

  stack.carrierOff();
  assert.equal(stack.dev.running, false);
  assert.equal(stack.dev.up, true, 'the device stays administratively up');
  assert.equal(stack.dev.stats.carrier_down_count, 1);
  assert.equal(udpSendmsg(udp, s, Buffer.from('down'), 0, a4(PEER_IP, 9)), -ENETDOWN);
  const sk = tcpNewSock(stack.tcp, AF_INET);
  assert.equal(tcpConnect(stack.tcp, sk, PEER_IP, 80), -ENETDOWN, 'connect() through a device without link');
  assert.equal(sk.num, 0, 'no port taken by the refused connect()');
  // Frames below IP (an ARP announcement) are refused by the device itself.
  const dropped0 = stack.dev.stats.tx_dropped;
  stack.arp.announce();
  assert.equal(stack.dev.stats.tx_dropped, dropped0 + 1, 'tx_dropped for a frame to a down device');
  assert.ok(stack.mibs.Drop.counts[SKB_DROP_REASON.DEV_READY] >= 1, 'counted as DEV_READY');
  assert.deepEqual(h.link.take(), [], 'nothing on the wire while the link is down');
  // A loopback destination does not need the link.
  assert.equal(udpSendmsg(udp, s, Buffer.from('lo'), 0, a4(parseIpv4('10.0.0.2')!, 9)), 2);

  stack.carrierOn();
  assert.equal(stack.dev.running, true);
  assert.equal(stack.dev.stats.carrier_up_count, 1);
  assert.equal(udpSendmsg(udp, s, Buffer.from('up again'), 0, a4(PEER_IP, 9)), 8);
  assert.equal(h.link.take().length, 1, 'the datagram left');
  const sk2 = tcpNewSock(stack.tcp, AF_INET);
  assert.equal(tcpConnect(stack.tcp, sk2, PEER_IP, 80), -EINPROGRESS);
});

test('carrier off: the neighbours go with the packets they held (neigh_carrier_down); permanent ones stay', () => {
  const h = Harness.withPeer(AF_INET);
  const { stack } = h;
  const other = parseIpv4('10.0.0.7')!;
  stack.neighAddPermanent(PEER_IP, Buffer.from([2, 0, 0, 0, 0, 9]));
  const s = stack.udp.newSock(AF_INET, 0);
  assert.equal(udpSendmsg(stack.udp, s, Buffer.from('x'), 0, a4(other, 9)), 1, 'queued while 10.0.0.7 resolves');
  assert.equal(h.neighState(other), 'INCOMPLETE');
  stack.carrierOff();
  assert.equal(h.neighState(other), null, 'the resolving entry is gone');
  assert.equal(h.neighState(PEER_IP), 'PERMANENT');
  stack.carrierOn();
  h.link.take();
  h.time.advance(5000);
  assert.deepEqual(h.link.take(), [], 'the dropped entry sends no more probes, nor the datagram it held');
});

test('IPv6: carrier off: UDP sendto and connect(), TCP connect() get ENETDOWN; carrier on: it leaves', () => {
  const h = Harness.withPeer(AF_INET6);
  const { stack } = h;
  const s = stack.udp.newSock(AF_INET6);
  stack.carrierOff();
  assert.equal(udpv6Sendmsg(stack.udp, s, Buffer.from('down'), 0, a6(PEER6, 9)), -ENETDOWN);
  assert.equal(ip6DatagramConnect(stack.udp, stack.udp.newSock(AF_INET6), a6(PEER6, 9)), -ENETDOWN, 'UDP connect()');
  const sk = tcpNewSock(stack.tcp, AF_INET6);
  assert.equal(tcpV6Connect(stack.tcp, sk, PEER6, 80), -ENETDOWN, 'TCP connect()');
  assert.equal(sk.num, 0, 'no port taken by the refused connect()');
  assert.ok(stack.mibs.Drop.counts[SKB_DROP_REASON.DEV_READY] >= 1);
  stack.carrierOn();
  assert.equal(udpv6Sendmsg(stack.udp, s, Buffer.from('up'), 0, a6(PEER6, 9)), 2);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: an established connection outlives a 10 s outage: the write is queued, and sent intact once the link is back`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const stack = t.h.stack;
    stack.carrierOff();
    const data = Buffer.alloc(3000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    assert.equal(tcpSendmsg(t.tcp, sk, data), 3000, 'the write is accepted (queued), as Linux queues it');
    assert.deepEqual(t.out(), [], 'nothing leaves while the link is down');
    assert.ok(stack.mibs.Drop.counts[SKB_DROP_REASON.DEV_READY] >= 1, 'the failed transmit is counted');
    t.time.advance(10_000);
    assert.deepEqual(t.out(), [], 'nor on the timers');
    assert.equal(sk.state, TCP_ESTABLISHED, 'the connection keeps its state');
    assert.equal(sk.sndUna, sk.sndNxt, 'nothing counted as sent');

    stack.carrierOn();
    // The probe timer backed off while its probes failed (as Linux's does for an
    // error other than local congestion): the next one is at most about the outage away.
    let segs = t.out();
    let waited = 0;
    while (!segs.length && waited < 60_000) {
      t.time.advance(100);
      waited += 100;
      segs = t.out();
    }
    const sent = Buffer.concat(segs.map((x) => x.payload));
    assert.ok(segs.length > 0, 'the queued data leaves once the link is back');
    assert.ok(waited <= 12_000, `sent ${waited} ms after the link came back`);
    assert.equal(segs[0].seq, 1, 'from the first byte written');
    assert.ok(data.subarray(0, sent.length).equals(sent), 'what leaves is what was written');
    // The peer acknowledges each flight; the rest follows in order.
    const got: Buffer[] = [sent];
    let acked = 1 + sent.length;
    for (let round = 0; round < 20 && acked < 1 + data.length; round++) {
      t.send({ flags: A, seq: 1, ack: acked });
      t.time.advance(10);
      for (const x of t.out()) {
        if (x.seq !== acked || !x.len) continue;
        got.push(x.payload);
        acked += x.len;
      }
    }
    assert.ok(data.equals(Buffer.concat(got)), 'all of it, in order');
    assert.equal(sk.state, TCP_ESTABLISHED);
  });
}
