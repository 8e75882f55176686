import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpBind, tcpGetsockopt, tcpSendmsg, tcpSetsockopt, tcpSockSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import { AF_INET, EADDRNOTAVAIL, EINVAL, IP_TOS, IP_TTL, SOL_IP } from '../../src/uapi.js';
import { IP_FREEBIND, IP_MTU_DISCOVER, IP_PMTUDISC_DONT } from '../../src/net/ipv4/ip_sockglue.js';

for (const family of FAMILIES) {
  const name = familyName(family);
  test(`${name}: SOL_IP on a TCP socket: IP_TOS keeps TCP's ECN bits, IP_TTL -1 is the default, bad values EINVAL`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_IP, IP_TOS, 0x2b), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_IP, IP_TOS), 0x28, 'ECN bits are not the user\'s');
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_IP, IP_TTL, 7), 0);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_IP, IP_TTL, 0), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_IP, IP_TTL, 256), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_IP, IP_MTU_DISCOVER, 6), -EINVAL);
    // A one-byte optval is read as a byte (ip_setsockopt).
    assert.equal(tcpSockSetsockopt(t.tcp, sk, SOL_IP, IP_MTU_DISCOVER, Buffer.from([IP_PMTUDISC_DONT])), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_IP, IP_MTU_DISCOVER), IP_PMTUDISC_DONT);
    tcpSendmsg(t.tcp, sk, Buffer.from('x'));
    const [p] = t.h.sent();
    if (family === AF_INET) {
      assert.equal(p.ip!.tos, 0x28);
      assert.equal(p.ip!.ttl, 7);
      assert.equal(p.ip!.df, false, 'IP_PMTUDISC_DONT: no DF');
    }
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_IP, IP_TTL, -1), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_IP, IP_TTL), 64);
  });
}

test('IP_FREEBIND: bind to an address that is not ours', () => {
  const t = new TcpHarness(AF_INET);
  const other = parseIpv4('10.9.9.9')!;
  const a = tcpNewSock(t.tcp, AF_INET);
  assert.equal(tcpBind(t.tcp, a, other, 7000), -EADDRNOTAVAIL);
  const b = tcpNewSock(t.tcp, AF_INET);
  assert.equal(tcpSetsockopt(t.tcp, b, SOL_IP, IP_FREEBIND, 1), 0);
  assert.equal(tcpGetsockopt(t.tcp, b, SOL_IP, IP_FREEBIND), 1);
  assert.equal(tcpBind(t.tcp, b, other, 7000), 0);
});
