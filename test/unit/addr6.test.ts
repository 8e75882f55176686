import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatIpv6,
  ipv6IsLinkLocal,
  ipv6IsV4Mapped,
  ipv6LinkLocalEui64,
  ipv6McastMac,
  ipv6PrefixEqual,
  ipv6SetV4Mapped,
  ipv6SolicitedNodeMcast,
  ipv6V4MappedAddr,
  parseIpv6,
  parseIpv6Prefix,
} from '../../src/lib/addr.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../src/lib/checksum.js';

test('parseIpv6 accepts RFC 4291 forms and formatIpv6 prints RFC 5952', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::2', 'fd00::2'],
    ['FE80:0:0:0:0200:5EFF:FE00:5301', 'fe80::200:5eff:fe00:5301'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8::0:1', '2001:db8::1'],
    ['2001:db8:1:1:1:1:1:0', '2001:db8:1:1:1:1:1:0'], // a single zero group stays
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['fd3d:a0b:17d6::1', 'fd3d:a0b:17d6::1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [i, o] of cases) {
    const b = parseIpv6(i);
    assert.ok(b, i);
    assert.equal(formatIpv6(b), o, i);
  }
  for (const bad of ['', ':', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '::ffff:1.2.3', 'g::1', '1:2:3:4:5:6:7']) {
    assert.equal(parseIpv6(bad), null, bad);
  }
  assert.deepEqual(parseIpv6Prefix('fd00::2/64')?.prefix, 64);
  assert.equal(parseIpv6Prefix('fd00::2/129'), null);
  assert.equal(parseIpv6Prefix('fd00::2'), null);
});

test('IPv6 address helpers: link-local EUI-64, solicited-node, multicast MAC, v4-mapped, prefixes', () => {
  const ll = ipv6LinkLocalEui64(Buffer.from([0x02, 0x00, 0x5e, 0x00, 0x53, 0x01]));
  assert.equal(formatIpv6(ll), 'fe80::5eff:fe00:5301');
  assert.ok(ipv6IsLinkLocal(ll));
  const sn = ipv6SolicitedNodeMcast(parseIpv6('fd00::1:2:3')!);
  assert.equal(formatIpv6(sn), 'ff02::1:ff02:3');
  assert.deepEqual([...ipv6McastMac(sn)], [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
  const m = Buffer.alloc(16);
  ipv6SetV4Mapped(m, 0xc0000201);
  assert.ok(ipv6IsV4Mapped(m));
  assert.equal(ipv6V4MappedAddr(m), 0xc0000201);
  assert.equal(formatIpv6(m), '::ffff:192.0.2.1');
  const a = parseIpv6('fd00:0:0:1::5')!;
  assert.ok(ipv6PrefixEqual(a, 0, parseIpv6('fd00:0:0:1::')!, 0, 64));
  assert.ok(!ipv6PrefixEqual(a, 0, parseIpv6('fd00:0:0:2::')!, 0, 64));
  assert.ok(ipv6PrefixEqual(a, 0, parseIpv6('fd00:0:0:3::')!, 0, 62));
});

test('csumIpv6Magic: an ICMPv6 echo request from a real capture checks to zero', () => {
  // ping -6 fd00::2 from fd00::1: type 128, code 0, id 0x1234, seq 1, payload "abcd".
  const s = parseIpv6('fd00::1')!;
  const d = parseIpv6('fd00::2')!;
  const icmp = Buffer.from([128, 0, 0, 0, 0x12, 0x34, 0, 1, 0x61, 0x62, 0x63, 0x64]);
  const c = csumFold(csumPartial(icmp, 0, icmp.length, csumIpv6Magic(s, 0, d, 0, 58, icmp.length)));
  icmp.writeUInt16BE(c, 2);
  assert.equal(csumFold(csumPartial(icmp, 0, icmp.length, csumIpv6Magic(s, 0, d, 0, 58, icmp.length))), 0);
  // Independent reference: sum of all 16-bit words by hand.
  let ref = 58 + icmp.length;
  for (let i = 0; i < 16; i += 2) ref += s.readUInt16BE(i) + d.readUInt16BE(i);
  for (let i = 0; i < icmp.length; i += 2) ref += i === 2 ? 0 : icmp.readUInt16BE(i);
  while (ref > 0xffff) ref = (ref & 0xffff) + (ref >>> 16);
  assert.equal(c, ~ref & 0xffff);
});
