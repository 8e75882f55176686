import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { ALL_NODES, PEER6, PEER_LL, STACK6, echo6, fragHdr, icmp6, ip6Frame, naMsg, ndFrame, nsMsg, optsHdr, snmc } from '../lib/frames.js';
import { SeededRandom } from '../../src/lib/random.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../src/lib/checksum.js';
import { AF_INET6 } from '../../src/uapi.js';

function fixIcmp6Sum(f: Buffer): void {
  const len = Math.min(f.readUInt16BE(14 + 4), f.length - 54);
  if (len < 4) return;
  f.writeUInt16BE(0, 54 + 2);
  f.writeUInt16BE(csumFold(csumPartial(f, 54, len, csumIpv6Magic(f, 22, f, 38, 58, len))), 54 + 2);
}

/** Valid frames of every kind the IPv6 layer parses, to mutate. */
function seeds(): Buffer[] {
  const ping = echo6(1, 1, Buffer.alloc(40, 7));
  const big = echo6(2, 2, Buffer.alloc(2000, 9));
  return [
    ip6Frame({ nexthdr: 58, payload: ping }),
    ip6Frame({ nexthdr: 0, payload: Buffer.concat([optsHdr(60, [0x1e, 2, 0, 0]), optsHdr(43, [0xc2, 4, 0, 1, 0, 0]), Buffer.from([58, 2, 0, 1, 0, 0, 0, 0]), STACK6, ping]) }),
    ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(58, 0, true, 3), big.subarray(0, 1000)]) }),
    ip6Frame({ nexthdr: 44, payload: Buffer.concat([fragHdr(58, 1000, false, 3), big.subarray(1000)]) }),
    ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)),
    ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6),
    ndFrame(icmp6(134, 0, Buffer.concat([Buffer.from([64, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([3, 4, 64, 0xc0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]), Buffer.alloc(16, 0x20), Buffer.from([5, 1, 0, 0, 0, 0, 5, 0])]), PEER_LL, ALL_NODES), PEER_LL, ALL_NODES),
    ip6Frame({ src: PEER_LL, dst: ALL_NODES, nexthdr: 0, hopLimit: 1, payload: Buffer.concat([Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]), icmp6(130, 0, Buffer.alloc(24), PEER_LL, ALL_NODES)]) }),
    ip6Frame({ nexthdr: 58, payload: icmp6(2, 0, Buffer.concat([Buffer.from([0, 0, 5, 0]), Buffer.alloc(48, 0x60)])) }),
  ];
}

test('20 000 mutated IPv6 frames (bit flips, truncation, random lengths): the stack never throws, and still answers a ping', () => {
  const h = Harness.withPeer(AF_INET6, { slaac: true });
  const rnd = new SeededRandom(0xbeef);
  const base = seeds();
  for (let i = 0; i < 20_000; i++) {
    const f = Buffer.from(base[rnd.u32() % base.length]);
    const flips = 1 + (rnd.u32() % 6);
    for (let k = 0; k < flips; k++) {
      // Mostly inside the IPv6 and extension headers, where the parsing is.
      const at = 14 + (rnd.u32() % Math.min(f.length - 14, rnd.u32() % 4 === 0 ? f.length : 120));
      f[at] ^= 1 << (rnd.u32() % 8);
    }
    // Half the time, a correct ICMPv6 checksum over the mutated message, so the ND/MLD/error parsers see it.
    if (rnd.u32() % 2 === 0 && f.length >= 14 + 40 + 4 && f[14 + 6] === 58) fixIcmp6Sum(f);
    let frame = f;
    if (rnd.u32() % 5 === 0) frame = f.subarray(0, 14 + (rnd.u32() % (f.length - 13)));
    assert.doesNotThrow(() => h.rx(frame), `frame ${i}: ${frame.toString('hex')}`);
    if (i % 1000 === 0) h.time.advance(1000);
    h.link.take();
  }
  h.time.advance(120_000);
  h.link.take();
  // The neighbour may have been changed by the noise: teach it again, then ping.
  h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
  h.link.take();
  h.rx(ip6Frame({ nexthdr: 58, payload: echo6(9, 9, Buffer.from('alive')) }));
  const out = h.sent().filter((p) => p.icmp6?.type === 129);
  assert.equal(out.length, 1);
  assert.ok(h.mibs.Ip6.InReceives > 20_000);
  // The noise reached the ICMPv6 parsers, not only the checksum check.
  assert.ok(h.mibs.Icmp6.InNeighborSolicits > 100 && h.mibs.Icmp6.InRouterAdvertisements > 100 && h.mibs.Icmp6.InPktTooBigs > 100, JSON.stringify(h.mibs.Icmp6));
});
