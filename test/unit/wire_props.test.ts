/**
 * Property tests (fast-check) over the wire formats in src/wire and the
 * option parsers in src/net that read wire bytes (IPv6 TLV options,
 * Neighbor Discovery options): what a builder emits parses back to the
 * same values and re-emits the same bytes; arbitrary bytes never make a
 * parser throw, and the stack rejects what it cannot use with a counted
 * drop reason. Seeded (TAPSTACK_PROP_SEED), so a failure repeats; fast-check
 * shrinks a counterexample and prints it with the seed and path to replay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ETH_HLEN, ethHeader, ethType } from '../../src/wire/ethernet.js';
import { ARP_HLEN, ARP_SHA, ARP_THA, arpBuild, arpHln, arpHrd, arpOp, arpPln, arpPro, arpSip, arpTip } from '../../src/wire/arp.js';
import { IP_HLEN, ipCheck, ipDaddr, ipFragOff, ipHeader, ipId, ipIhl, ipProto, ipSaddr, ipTos, ipTotLen, ipTtl, ipVersion } from '../../src/wire/ipv4.js';
import {
  IPV6_HLEN,
  IP6_DADDR,
  IP6_SADDR,
  fragId,
  fragMore,
  fragOffset,
  ip6FlowLabel,
  ip6Header,
  ip6HopLimit,
  ip6Nexthdr,
  ip6PayloadLen,
  ip6Tclass,
  ip6Version,
  ipv6SkipExthdr,
} from '../../src/wire/ipv6.js';
import {
  TCP_HLEN,
  TcpOptionsReceived,
  TcpOutOptions,
  tcpAckSeq,
  tcpDest,
  tcpDoff,
  tcpFlags,
  tcpHeader,
  tcpOptionsSize,
  tcpOptionsWrite,
  tcpParseOptions,
  tcpSeq,
  tcpSource,
  tcpWindow,
  TCPHDR_SYN,
} from '../../src/wire/tcp.js';
import { UDP_HLEN, udpBuild, udpCheck, udpDest, udpLen, udpSource } from '../../src/wire/udp.js';
import { icmpIsError } from '../../src/wire/icmp.js';
import { icmpv6IsError } from '../../src/wire/icmpv6.js';
import { ipFastCsum } from '../../src/lib/checksum.js';
import { SkBuff } from '../../src/net/core/skbuff.js';
import { TLV_BAD, TLV_OK, TLV_TRUNCATED, ip6ParseTlv } from '../../src/net/ipv6/exthdrs.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { Harness } from '../lib/harness.js';
import { BCAST_MAC, PEER6, PEER_MAC, STACK6, STACK_MAC, eth, icmp6, ip6Frame, ndFrame, snmc } from '../lib/frames.js';
import { checkAccounting, snap } from '../fuzz/oracle.js';
import { AF_INET6 } from '../../src/uapi.js';

const SEED = Number(process.env.TAPSTACK_PROP_SEED ?? 0x7a9);
const opts = { seed: SEED, numRuns: 400 };

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Where in a frame the header starts: builders and readers take any offset. */
const at = fc.integer({ min: 0, max: 40 });

test(`seed ${SEED}: Ethernet: what ethHeader writes reads back, and writes again the same`, () => {
  fc.assert(
    fc.property(at, bytes(6), bytes(6), u16, (o, dst, src, proto) => {
      const b = Buffer.alloc(o + ETH_HLEN);
      ethHeader(b, o, dst, src, proto);
      assert.equal(ethType(b, o), proto);
      assert.deepEqual(b.subarray(o, o + 6), Buffer.from(dst));
      assert.deepEqual(b.subarray(o + 6, o + 12), Buffer.from(src));
      const c = Buffer.alloc(o + ETH_HLEN);
      ethHeader(c, o, b.subarray(o, o + 6), b.subarray(o + 6, o + 12), ethType(b, o));
      assert.deepEqual(c, b);
    }),
    opts,
  );
});

test('ARP: arpBuild -> accessors -> arpBuild is the identity', () => {
  fc.assert(
    fc.property(at, u16, bytes(6), u32, bytes(6), u32, (o, op, sha, sip, tha, tip) => {
      const b = Buffer.alloc(o + ARP_HLEN);
      arpBuild(b, o, op & 0xff, sha, sip, tha, tip);
      assert.deepEqual([arpHrd(b, o), arpPro(b, o), arpHln(b, o), arpPln(b, o), arpOp(b, o), arpSip(b, o), arpTip(b, o)], [1, 0x0800, 6, 4, op & 0xff, sip, tip]);
      const c = Buffer.alloc(o + ARP_HLEN);
      arpBuild(c, o, arpOp(b, o), b.subarray(o + ARP_SHA, o + ARP_SHA + 6), arpSip(b, o), b.subarray(o + ARP_THA, o + ARP_THA + 6), arpTip(b, o));
      assert.deepEqual(c, b);
    }),
    opts,
  );
});

test('IPv4: ipHeader -> accessors -> ipHeader is the identity; the checksum verifies', () => {
  fc.assert(
    fc.property(at, u16, u16, u16, u8, u8, u32, u32, u8, (o, totLen, id, frag, ttl, proto, saddr, daddr, tos) => {
      const b = Buffer.alloc(o + IP_HLEN);
      ipHeader(b, o, totLen, id, frag, ttl, proto, saddr, daddr, tos);
      b.writeUInt16BE(ipFastCsum(b, o, IP_HLEN), o + 10);
      assert.deepEqual(
        [ipVersion(b, o), ipIhl(b, o), ipTos(b, o), ipTotLen(b, o), ipId(b, o), ipFragOff(b, o), ipTtl(b, o), ipProto(b, o), ipSaddr(b, o), ipDaddr(b, o)],
        [4, IP_HLEN, tos, totLen, id, frag, ttl, proto, saddr, daddr],
      );
      assert.equal(ipFastCsum(b, o, IP_HLEN), 0, 'a header carrying its checksum sums to zero');
      const c = Buffer.alloc(o + IP_HLEN);
      ipHeader(c, o, ipTotLen(b, o), ipId(b, o), ipFragOff(b, o), ipTtl(b, o), ipProto(b, o), ipSaddr(b, o), ipDaddr(b, o), ipTos(b, o));
      c.writeUInt16BE(ipCheck(b, o), o + 10);
      assert.deepEqual(c, b);
    }),
    opts,
  );
});

test('IPv6: ip6Header -> accessors -> ip6Header is the identity', () => {
  fc.assert(
    fc.property(at, u16, u8, u8, bytes(16), bytes(16), u8, fc.integer({ min: 0, max: 0xfffff }), (o, plen, nh, hl, sa, da, tc, fl) => {
      const b = Buffer.alloc(o + IPV6_HLEN);
      ip6Header(b, o, plen, nh, hl, sa, da, tc, fl);
      assert.deepEqual([ip6Version(b, o), ip6Tclass(b, o), ip6FlowLabel(b, o), ip6PayloadLen(b, o), ip6Nexthdr(b, o), ip6HopLimit(b, o)], [6, tc, fl, plen, nh, hl]);
      const c = Buffer.alloc(o + IPV6_HLEN);
      ip6Header(c, o, ip6PayloadLen(b, o), ip6Nexthdr(b, o), ip6HopLimit(b, o), b.subarray(o + IP6_SADDR, o + IP6_SADDR + 16), b.subarray(o + IP6_DADDR, o + IP6_DADDR + 16), ip6Tclass(b, o), ip6FlowLabel(b, o));
      assert.deepEqual(c, b);
    }),
    opts,
  );
});

/** An extension header as the chain builder takes it. */
const extHdr = fc.oneof(
  fc.record({ type: fc.constantFrom(0, 60, 43), units: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ type: fc.constant(44), units: fc.constant(0), id: u32 }),
  fc.record({ type: fc.constant(51), units: fc.integer({ min: 1, max: 6 }) }),
);

test('IPv6 extension headers: ipv6SkipExthdr finds the upper layer of any chain a sender builds, and the fragment header reads back', () => {
  fc.assert(
    fc.property(fc.array(extHdr, { maxLength: 6 }), fc.constantFrom(6, 17, 58, 59), fc.integer({ min: 0, max: 16 }), (chain, upper, tail) => {
      // Hop-by-hop only first, as RFC 8200 4.1 allows.
      const exts = chain.filter((e, i) => e.type !== 0 || i === 0);
      const parts: Buffer[] = [];
      for (let i = 0; i < exts.length; i++) {
        const e = exts[i];
        const next = i + 1 < exts.length ? exts[i + 1].type : upper;
        const len = e.type === 44 ? 8 : e.type === 51 ? (e.units + 2) * 4 : (e.units + 1) * 8;
        const h = Buffer.alloc(len);
        h[0] = next;
        if (e.type === 51) h[1] = e.units;
        else if (e.type !== 44) h[1] = e.units;
        else h.writeUInt32BE((e as { id: number }).id >>> 0, 4);
        parts.push(h);
      }
      const b = Buffer.concat([...parts, Buffer.alloc(tail)]);
      const out = new Int32Array(2);
      const first = exts.length ? exts[0].type : upper;
      assert.ok(ipv6SkipExthdr(b, 0, b.length, first, out));
      const hdrs = parts.reduce((n, p) => n + p.length, 0);
      // "No next header" stops the walk where it is named.
      assert.deepEqual([out[0], out[1]], [hdrs, upper]);
      let o = 0;
      for (let i = 0; i < exts.length; i++) {
        if (exts[i].type === 44) assert.deepEqual([fragOffset(b, o), fragMore(b, o), fragId(b, o)], [0, false, (exts[i] as { id: number }).id >>> 0]);
        o += parts[i].length;
      }
    }),
    opts,
  );
});

test('IPv6 extension headers: arbitrary bytes never make ipv6SkipExthdr throw or point past the end', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), u8, (raw, nh) => {
      const b = Buffer.from(raw);
      const out = new Int32Array(2);
      if (ipv6SkipExthdr(b, 0, b.length, nh, out)) assert.ok(out[0] >= 0 && out[0] <= b.length, `upper layer at ${out[0]} of ${b.length}`);
    }),
    opts,
  );
});

test('TCP header: tcpHeader -> accessors -> tcpHeader is the identity', () => {
  fc.assert(
    fc.property(at, u16, u16, u32, u32, fc.integer({ min: 5, max: 15 }), u8, u16, (o, sp, dp, seq, ack, words, flags, win) => {
      const b = Buffer.alloc(o + TCP_HLEN);
      tcpHeader(b, o, sp, dp, seq, ack, words * 4, flags, win);
      assert.deepEqual([tcpSource(b, o), tcpDest(b, o), tcpSeq(b, o), tcpAckSeq(b, o), tcpDoff(b, o), tcpFlags(b, o), tcpWindow(b, o)], [sp, dp, seq, ack, words * 4, flags, win]);
      const c = Buffer.alloc(o + TCP_HLEN);
      tcpHeader(c, o, tcpSource(b, o), tcpDest(b, o), tcpSeq(b, o), tcpAckSeq(b, o), tcpDoff(b, o), tcpFlags(b, o), tcpWindow(b, o));
      assert.deepEqual(c, b);
    }),
    opts,
  );
});

/** Options a sender may put on one segment, within TCP's 40 bytes. */
const outOptions = fc
  .record({
    syn: fc.boolean(),
    mss: fc.integer({ min: 0, max: 0xffff }),
    ws: fc.integer({ min: -1, max: 14 }),
    sackPerm: fc.boolean(),
    ts: fc.boolean(),
    tsval: u32,
    tsecr: u32,
    sacks: fc.array(fc.tuple(u32, u32), { maxLength: 4 }),
    // Fast Open: none, a request, or an even-length cookie of 4..16 bytes.
    fo: fc.option(fc.oneof(fc.constant(new Uint8Array(0)), fc.integer({ min: 2, max: 8 }).chain((n) => fc.uint8Array({ minLength: 2 * n, maxLength: 2 * n }))), { nil: null }),
    foExp: fc.boolean(),
  })
  .map((r) => {
    const o = new TcpOutOptions();
    // MSS, window scale and SACK-permitted go on SYNs only (tcp_syn_options).
    o.mss = r.syn ? r.mss : 0;
    o.ws = r.syn ? r.ws : -1;
    o.sackPerm = r.syn && r.sackPerm;
    o.ts = r.ts;
    o.tsval = r.tsval;
    o.tsecr = r.tsecr;
    if (!r.syn && r.sacks.length) {
      o.sacks = Uint32Array.from(r.sacks.flat());
      o.numSacks = r.sacks.length;
    }
    if (r.syn && r.fo) {
      o.fastopenLen = r.fo.length;
      o.fastopenExp = r.foExp;
      o.fastopenCookie = r.fo;
    }
    return { syn: r.syn, o };
  })
  .filter(({ o }) => tcpOptionsSize(o) <= 40);

test('TCP options: tcpOptionsWrite -> tcpParseOptions -> tcpOptionsWrite is the identity', () => {
  fc.assert(
    fc.property(at, outOptions, (off, { syn, o }) => {
      const n = tcpOptionsSize(o);
      assert.equal(n % 4, 0, 'the options fill whole words');
      const b = Buffer.alloc(off + TCP_HLEN + n);
      tcpOptionsWrite(b, off + TCP_HLEN, o);
      const rx = new TcpOptionsReceived();
      const flags = syn ? TCPHDR_SYN : 0x10;
      tcpParseOptions(b, off, TCP_HLEN + n, flags, false, rx);
      assert.equal(rx.mssClamp, o.mss);
      assert.equal(rx.sndWscale, o.ws);
      assert.equal(rx.sackOk, o.sackPerm);
      assert.equal(rx.sawTstamp, o.ts);
      if (o.ts) assert.deepEqual([rx.rcvTsval, rx.rcvTsecr], [o.tsval, o.tsecr]);
      assert.equal(rx.numSacks, o.numSacks);
      for (let k = 0; k < rx.numSacks; k++) assert.deepEqual([rx.sackStart[k], rx.sackEnd[k]], [o.sacks![2 * k], o.sacks![2 * k + 1]]);
      assert.equal(rx.fastopenLen, o.fastopenLen);
      if (o.fastopenLen >= 0) assert.equal(rx.fastopenExp, o.fastopenExp);
      if (o.fastopenLen > 0) assert.deepEqual(rx.fastopenCookie.subarray(0, rx.fastopenLen), Buffer.from(o.fastopenCookie!));
      // Emit again from what was parsed.
      const again = new TcpOutOptions();
      again.mss = rx.mssClamp;
      again.ws = rx.sndWscale;
      again.sackPerm = rx.sackOk;
      again.ts = rx.sawTstamp;
      again.tsval = rx.rcvTsval;
      again.tsecr = rx.rcvTsecr;
      if (rx.numSacks) {
        again.numSacks = rx.numSacks;
        again.sacks = new Uint32Array(2 * rx.numSacks);
        for (let k = 0; k < rx.numSacks; k++) [again.sacks[2 * k], again.sacks[2 * k + 1]] = [rx.sackStart[k], rx.sackEnd[k]];
      }
      again.fastopenLen = rx.fastopenLen;
      again.fastopenExp = rx.fastopenExp;
      again.fastopenCookie = rx.fastopenCookie;
      const c = Buffer.alloc(b.length);
      tcpOptionsWrite(c, off + TCP_HLEN, again);
      assert.deepEqual(c.subarray(off + TCP_HLEN), b.subarray(off + TCP_HLEN));
    }),
    opts,
  );
});

test('TCP options: arbitrary option bytes never make tcpParseOptions read past the header or throw; what it keeps is in range', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), u8, fc.boolean(), (raw, flags, estab) => {
      const words = Math.ceil(raw.length / 4);
      // The buffer ends where the header does: a read past it would throw (readUInt32BE).
      const b = Buffer.alloc(TCP_HLEN + words * 4);
      b.set(raw, TCP_HLEN);
      const rx = new TcpOptionsReceived();
      tcpParseOptions(b, 0, b.length, flags, estab, rx);
      assert.ok(rx.numSacks >= 0 && rx.numSacks <= 4);
      assert.ok(rx.sndWscale >= -1 && rx.sndWscale <= 14);
      assert.ok(rx.mssClamp >= 0 && rx.mssClamp <= 0xffff);
      if (!(flags & TCPHDR_SYN) || estab) assert.deepEqual([rx.mssClamp, rx.sndWscale, rx.sackOk], [0, -1, false], 'SYN options only on a SYN');
      if (!(flags & TCPHDR_SYN)) assert.equal(rx.fastopenLen, -1, 'a Fast Open option only on a SYN');
      assert.ok(rx.fastopenLen === -1 || rx.fastopenLen === 0 || (rx.fastopenLen >= 4 && rx.fastopenLen <= 16 && rx.fastopenLen % 2 === 0));
    }),
    opts,
  );
});

test('UDP: udpBuild -> accessors -> udpBuild is the identity', () => {
  fc.assert(
    fc.property(at, u16, u16, fc.uint8Array({ maxLength: 64 }), (o, sp, dp, data) => {
      const b = Buffer.alloc(o + UDP_HLEN + data.length);
      const n = udpBuild(b, o, sp, dp, data);
      assert.deepEqual([n, udpSource(b, o), udpDest(b, o), udpLen(b, o), udpCheck(b, o)], [UDP_HLEN + data.length, sp, dp, UDP_HLEN + data.length, 0]);
      const c = Buffer.alloc(b.length);
      udpBuild(c, o, udpSource(b, o), udpDest(b, o), b.subarray(o + UDP_HLEN, o + udpLen(b, o)));
      assert.deepEqual(c, b);
    }),
    opts,
  );
});

test('ICMP and ICMPv6: error types are told from queries as RFC 792/1122 and RFC 4443 2.1 say', () => {
  fc.assert(
    fc.property(u8, (t) => {
      assert.equal(icmpIsError(t), [3, 4, 5, 11, 12].includes(t));
      assert.equal(icmpv6IsError(t), t < 128);
    }),
    opts,
  );
});

/** IPv6 options-header TLVs a sender may write: padding as RFC 8200 4.2 allows, options to skip. */
const tlv = fc.oneof(
  fc.constant([0]),
  fc.integer({ min: 0, max: 5 }).map((n) => [1, n, ...new Array(n).fill(0)]),
  fc.tuple(fc.integer({ min: 2, max: 0x3f }), fc.uint8Array({ maxLength: 12 })).map(([t, v]) => [t === 5 ? 6 : t, v.length, ...v]),
);

function tlvSkb(body: number[]): { skb: SkBuff; len: number } {
  // Padded to a multiple of 8 with PadN/Pad1, as a sender must.
  const opt = [60, 0, ...body];
  const pad = (8 - (opt.length % 8)) % 8;
  if (pad === 1) opt.push(0);
  else if (pad > 1) opt.push(1, pad - 2, ...new Array(pad - 2).fill(0));
  opt[1] = opt.length / 8 - 1;
  const b = Buffer.alloc(IPV6_HLEN + opt.length);
  ip6Header(b, 0, opt.length, 60, 64, PEER6, STACK6);
  Buffer.from(opt).copy(b, IPV6_HLEN);
  const skb = new SkBuff(b, 0);
  skb.len = b.length;
  skb.networkHeader = 0;
  return { skb, len: opt.length };
}

test('IPv6 TLV options (ip6_parse_tlv): a header of well-formed options to skip parses; arbitrary bytes get a verdict, never an exception', () => {
  const h = Harness.withPeer(AF_INET6);
  const stack = h.stack;
  fc.assert(
    fc.property(fc.array(tlv, { maxLength: 6 }), (list) => {
      // More than 7 bytes of padding in a row is refused (Linux's check): keep runs short.
      const body: number[] = [];
      let run = 0;
      for (const t of list) {
        const isPad = t[0] === 0 || t[0] === 1;
        const n = t[0] === 0 ? 1 : t.length;
        if (isPad && run + n > 7) continue;
        run = isPad ? run + n : 0;
        body.push(...t);
      }
      const { skb, len } = tlvSkb(body);
      // The header's own trailing padding may join a run: only insist when it cannot.
      const r = ip6ParseTlv(stack, false, skb, IPV6_HLEN, len);
      if (run === 0 || run + ((8 - ((body.length + 2) % 8)) % 8) <= 7) assert.equal(r, TLV_OK, Buffer.from(body).toString('hex'));
    }),
    opts,
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 6, maxLength: 62 }), fc.boolean(), (raw, hbh) => {
      const { skb, len } = tlvSkb([...raw]);
      const r = ip6ParseTlv(stack, hbh, skb, IPV6_HLEN, len);
      assert.ok(r === TLV_OK || r === TLV_BAD || r === TLV_TRUNCATED);
    }),
    opts,
  );
  h.link.take();
});

test('Neighbor Discovery options: a solicitation with well-formed options is answered; arbitrary option bytes are answered or dropped with a reason', () => {
  const h = Harness.withPeer(AF_INET6);
  const ndOpt = fc.oneof(
    fc.constant([1, 1, ...PEER_MAC]),
    fc.uint8Array({ minLength: 6, maxLength: 6 }).map((n) => [14, 1, ...n]),
    fc.tuple(fc.integer({ min: 15, max: 255 }), fc.integer({ min: 1, max: 3 })).map(([t, l]) => [t, l, ...new Array(8 * l - 2).fill(7)]),
  );
  const ns = (opts: number[]) => ndFrame(icmp6(135, 0, Buffer.concat([Buffer.alloc(4), STACK6, Buffer.from(opts)]), PEER6, snmc(STACK6)), PEER6, snmc(STACK6));
  fc.assert(
    fc.property(fc.array(ndOpt, { maxLength: 4 }), (list) => {
      // One source link-layer address at most; a nonce too (the first of each kind is used).
      h.link.take();
      h.rx(ns(list.flat()));
      assert.ok(h.sent().some((p) => p.icmp6?.type === 136), 'a neighbour advertisement answers');
    }),
    opts,
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 48 }), (raw) => {
      h.link.take();
      const drops = h.mibs.Drop.counts[SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS];
      h.rx(ns([...raw]));
      const answered = h.sent().some((p) => p.icmp6?.type === 136);
      assert.ok(answered || h.mibs.Drop.counts[SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS] === drops + 1, `neither answered nor dropped: ${Buffer.from(raw).toString('hex')}`);
    }),
    opts,
  );
});

test('arbitrary bytes after an Ethernet header: the stack never throws, and what it does not take is dropped with a reason', () => {
  const h = Harness.withPeer(AF_INET6);
  fc.assert(
    fc.property(fc.constantFrom(0x0800, 0x86dd, 0x0806, 0x88cc), fc.uint8Array({ maxLength: 120 }), fc.boolean(), (type, raw, bcast) => {
      const f = eth(bcast ? BCAST_MAC : STACK_MAC, PEER_MAC, type, raw);
      const a = snap(h.stack);
      h.rx(f);
      checkAccounting(a, snap(h.stack), true);
      h.link.take();
    }),
    { ...opts, numRuns: 2000 },
  );
  // Still answering.
  h.rx(ip6Frame({ nexthdr: 58, payload: icmp6(128, 0, Buffer.alloc(8)) }));
  assert.ok(h.sent().some((p) => p.icmp6?.type === 129));
});
