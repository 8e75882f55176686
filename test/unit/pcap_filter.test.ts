/**
 * tapstack capture's filter (src/lib/pcap_filter.ts): pcap-filter's
 * primitives and precedence over real frames of both families, and a clear
 * error naming what is wrong in a bad one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, FilterError } from '../../src/lib/pcap_filter.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import { arp, BCAST_MAC, echo, inetFrame, PEER6, PEER_IP, PEER_MAC, STACK6, STACK_IP, tcp, udp, eth } from '../lib/frames.js';

const tcp4 = inetFrame(AF_INET, { proto: 6, payload: tcp({ sport: 40000, dport: 80, seq: 1, flags: 0x02, src: PEER_IP, dst: STACK_IP }) });
const udp4 = inetFrame(AF_INET, { proto: 17, payload: udp(5353, 53, Buffer.alloc(4)) });
const icmp4 = inetFrame(AF_INET, { proto: 1, payload: echo(1, 1, Buffer.alloc(8)) });
const tcp6 = inetFrame(AF_INET6, { proto: 6, payload: tcp({ sport: 80, dport: 40001, seq: 1, flags: 0x12, src: PEER6, dst: STACK6 }), src: PEER6, dst: STACK6 });
const arpf = eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, Buffer.alloc(6), STACK_IP));
const all = { tcp4, udp4, icmp4, tcp6, arpf };

function takes(expr: string): string[] {
  const p = compileFilter(expr);
  return Object.entries(all)
    .filter(([, f]) => p(f, 0, f.length))
    .map(([k]) => k);
}

test('capture filter: protocols, hosts and ports of both families, pcap precedence, parentheses, implicit and', () => {
  assert.deepEqual(takes(''), ['tcp4', 'udp4', 'icmp4', 'tcp6', 'arpf'], 'empty: every frame');
  assert.deepEqual(takes('tcp'), ['tcp4', 'tcp6']);
  assert.deepEqual(takes('ip'), ['tcp4', 'udp4', 'icmp4']);
  assert.deepEqual(takes('ip6'), ['tcp6']);
  assert.deepEqual(takes('arp'), ['arpf']);
  assert.deepEqual(takes('icmp or udp'), ['udp4', 'icmp4']);
  assert.deepEqual(takes('port 80'), ['tcp4', 'tcp6']);
  assert.deepEqual(takes('dst port 80'), ['tcp4']);
  assert.deepEqual(takes('src port 80'), ['tcp6']);
  assert.deepEqual(takes('host 10.0.0.1'), ['tcp4', 'udp4', 'icmp4']);
  assert.deepEqual(takes('dst host 10.0.0.2 and tcp'), ['tcp4']);
  assert.deepEqual(takes('src host fd00::1'), ['tcp6']);
  assert.deepEqual(takes('tcp port 80'), ['tcp4', 'tcp6'], 'and may be left out');
  assert.deepEqual(takes('not tcp and not arp'), ['udp4', 'icmp4']);
  assert.deepEqual(takes('udp or tcp and ip6'), ['udp4', 'tcp6'], 'and binds before or');
  assert.deepEqual(takes('(udp or tcp) and ip'), ['tcp4', 'udp4']);
  assert.deepEqual(takes('!(ip or ip6)'), ['arpf']);
});

test('capture filter: a bad filter names its fault', () => {
  const bad = (expr: string, re: RegExp) => assert.throws(() => compileFilter(expr), (e: unknown) => e instanceof FilterError && re.test(e.message), expr);
  bad('tcp and', /ends where a primitive should be/);
  bad('port http', /'http' is not a port/);
  bad('port 70000', /'70000' is not a port/);
  bad('host nowhere', /'nowhere' is not an IPv4 or IPv6 address/);
  bad('(tcp', /missing '\)'/);
  bad('sctp', /'sctp' is not a filter primitive/);
  bad('tcp )', /unexpected '\)'/);
});
