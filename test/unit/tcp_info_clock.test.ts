/**
 * TCP_INFO under the daemon's real clock: times there are fractional
 * milliseconds, so microsecond fields are not integers (the virtual clock
 * of the other tests hides this). Found by the API test: BigInt() threw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { encodeTcpInfo, tcpGetInfo, TCP_INFO_SIZE } from '../../src/net/ipv4/tcp_info.js';

for (const family of FAMILIES) {
  test(`${familyName(family)}: tcp_info with fractional microsecond state encodes without throwing`, () => {
    const h = TcpHarness.established(family);
    const sk = h.sk!;
    sk.srttUs = 1234.567;
    sk.rateIntervalUs = 7046.906;
    sk.rateDelivered = 10;
    sk.bytesAcked = 100.5;
    const info = tcpGetInfo(h.tcp, sk);
    assert.equal(typeof info.tcpi_delivery_rate, 'bigint');
    assert.equal(encodeTcpInfo(info, Buffer.alloc(TCP_INFO_SIZE)), TCP_INFO_SIZE);
  });
}
