/**
 * A stack shard's ephemeral ports (docs/shards.md "The API across shards"):
 * with the constraint a shard sets, connect() and UDP's autobind take only
 * local ports whose flows the TAP's steering program sends back to the
 * shard's own queue; without it (one stack) the choice is as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InetHashinfo } from '../../src/net/ipv4/inet_hashtables.js';
import { SockCommon } from '../../src/net/core/sock.js';
import { SeededRandom } from '../../src/lib/random.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import { steerQueue } from '../../src/drivers/tap_steer.js';
import { Harness } from '../lib/harness.js';
import { udpConnect, udpSendmsg } from '../../src/net/ipv4/udp.js';
import { PEER_IP } from '../lib/frames.js';
import { AF_INET } from '../../src/uapi.js';

const LOCAL = parseIpv4('10.0.0.2')!;
const PEER = parseIpv4('10.0.0.1')!;

class Sk extends SockCommon {}

test('connectPort under a shard\'s constraint: every port steers back to the shard, for several destinations and shard counts', () => {
  for (const [index, shards] of [[0, 2], [1, 2], [2, 3], [5, 8]]) {
    const r = new SeededRandom(7 + index);
    const h = new InetHashinfo<Sk>({ random: () => r.u32() });
    h.connectPortOk = (lport, dport) => steerQueue(dport, lport, shards) === index;
    for (const dport of [80, 443, 7001]) {
      const ports = new Set<number>();
      for (let i = 0; i < 100; i++) {
        const sk = new Sk();
        assert.equal(h.connectPort(sk, LOCAL, PEER, dport), 0);
        assert.equal(steerQueue(dport, sk.num, shards), index, `shard ${index} of ${shards}: port ${sk.num} to ${dport}`);
        ports.add(sk.num);
      }
      assert.equal(ports.size, 100);
    }
  }
});

test('a constraint that takes every port changes nothing: the same ports, in the same order, as one stack picks', () => {
  const pick = (ok: ((l: number, d: number) => boolean) | null): number[] => {
    const r = new SeededRandom(9);
    const h = new InetHashinfo<Sk>({ random: () => r.u32() });
    h.connectPortOk = ok;
    const out: number[] = [];
    for (let i = 0; i < 200; i++) {
      const sk = new Sk();
      assert.equal(h.connectPort(sk, LOCAL, PEER, 80), 0);
      out.push(sk.num);
    }
    return out;
  };
  assert.deepEqual(pick(() => true), pick(null));
});

test('UDP autobind on connect and on the first sendto takes a port that steers back to the shard', () => {
  const h = Harness.withPeer(AF_INET);
  const udp = h.stack.udp;
  udp.table.connectPortOk = (lport, dport) => steerQueue(dport, lport, 2) === 1;
  for (let i = 0; i < 50; i++) {
    const c = udp.newSock(AF_INET, 0);
    assert.equal(udpConnect(udp, c, { family: AF_INET, addr: PEER_IP, addr6: null, port: 53 }), 0);
    assert.equal(steerQueue(53, c.num, 2), 1, `connected: port ${c.num}`);
    const s = udp.newSock(AF_INET, 0);
    assert.equal(udpSendmsg(udp, s, Buffer.from('x'), 0, { family: AF_INET, addr: PEER_IP, addr6: null, port: 5353 }), 1);
    assert.equal(steerQueue(5353, s.num, 2), 1, `sendto: port ${s.num}`);
  }
});
