/**
 * Structure-aware mutation: a valid frame is dissected (dissect.ts) and
 * changed where a parser decides something: a field set to a boundary or
 * dictionary value, an option or extension header inserted or removed (its
 * length fields kept consistent, or not), a header duplicated, the frame
 * cut at or near a layer boundary, link padding added. Afterwards the
 * checksums are recomputed most of the time, so the mutation reaches the
 * parsers behind the checksum checks; sometimes they are left stale.
 */
import { SeededRandom } from '../../src/lib/random.js';
import { parseIpv6 } from '../../src/lib/addr.js';
import { dissect, fixChecksums, fixLengths, type Field } from './dissect.js';

/** The fuzzer's random source: xorshift32 (src/lib/random.ts) with helpers. */
export class Rng {
  readonly #r: SeededRandom;
  constructor(seed: number) {
    this.#r = new SeededRandom(seed >>> 0 || 1);
  }
  u32(): number {
    return this.#r.u32();
  }
  /** 0 <= n < max. */
  int(max: number): number {
    return max <= 1 ? 0 : this.#r.u32() % max;
  }
  chance(p: number): boolean {
    return this.#r.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.#r.u32() & 255;
    return b;
  }
}

/** Option bytes that parsers treat specially, to insert into option regions. */
const IP4_OPTS: number[][] = [
  [1], // NOP
  [0], // EOL
  [7, 7, 4, 0, 0, 0, 0], // record route, empty
  [7, 3, 4], // record route, too short for an address
  [0x44, 12, 5, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], // timestamp with addresses
  [0x44, 4, 5, 0], // timestamp, no room
  [0x83, 7, 4, 10, 0, 0, 1], // LSRR
  [0x89, 3, 4], // SSRR, short
  [0x94, 4, 0, 0], // router alert
  [0x82, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0], // security
  [0x99, 2], // unknown
  [0x99, 0], // length 0
  [0x99, 1], // length 1
  [0x99, 40], // longer than the header
];
const TCP_OPTS: number[][] = [
  [1],
  [0],
  [2, 4, 0x05, 0xb4], // MSS 1460
  [2, 4, 0, 0], // MSS 0
  [2, 4, 0, 1], // MSS 1
  [2, 3, 5], // MSS, wrong length
  [3, 3, 14], // wscale 14
  [3, 3, 255], // wscale too large
  [4, 2], // SACK permitted
  [4, 3, 0], // SACK permitted, wrong length
  [5, 2], // SACK, no block
  [5, 10, 0, 0, 0, 0, 0, 0, 0, 1], // SACK, one block
  [5, 9, 0, 0, 0, 0, 0, 0, 0], // SACK, not a block multiple
  [8, 10, 0, 0, 0, 1, 0, 0, 0, 0], // timestamp
  [8, 9, 0, 0, 0, 1, 0, 0, 0], // timestamp, wrong length
  [19, 18, ...new Array(16).fill(0)], // MD5
  [30, 4, 0, 0], // MPTCP
  [34, 2], // fast open cookie request
  [253, 4, 0xf9, 0x89], // experimental
  [99, 0], // length 0
  [99, 1], // length 1
  [99, 60], // past the header
];
const IP6_TLVS: number[][] = [
  [0], // Pad1
  [1, 0], // PadN
  [1, 4, 0, 0, 0, 0],
  [5, 2, 0, 0], // router alert (MLD)
  [0xc2, 4, 0, 1, 0, 0], // jumbo
  [0xc2, 4, 0xff, 0xff, 0xff, 0xff],
  [0x1e, 2, 0, 0], // unknown, skip
  [0x5e, 2, 0, 0], // unknown, discard
  [0x9e, 2, 0, 0], // unknown, discard + ICMP
  [0xde, 2, 0, 0], // unknown, discard + ICMP unless multicast
  [0x07, 0x20], // length past the header
  [1, 255],
];
const ND_OPTS: number[][] = [
  [1, 1, 2, 0, 0, 0, 0, 1], // source link-layer address
  [2, 1, 2, 0, 0, 0, 0, 9], // target link-layer address
  [1, 0], // length 0
  [3, 4, 64, 0xc0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // prefix fd00::/64
  [5, 1, 0, 0, 0, 0, 5, 0], // MTU 1280
  [5, 1, 0, 0, 0, 0, 0, 68], // MTU 68
  [14, 1, 1, 2, 3, 4, 5, 6], // nonce
  [25, 3, 0, 0, 0, 0, 0, 60, ...new Array(16).fill(0)], // RDNSS
  [99, 1, 0, 0, 0, 0, 0, 0], // unknown
];
const EXT_HDRS: number[][] = [
  [0, 0, 1, 4, 0, 0, 0, 0], // hop-by-hop, PadN
  [60, 0, 1, 4, 0, 0, 0, 0], // destination options
  [43, 0, 0, 0, 0, 0, 0, 0], // routing type 0, segments left 0
  [43, 2, 0, 1, 0, 0, 0, 0, ...new Array(16).fill(0)], // routing type 0, 1 left
  [43, 2, 2, 1, 0, 0, 0, 0, ...new Array(16).fill(0)], // type 2
  [43, 0, 4, 0, 0, 0, 0, 0], // segment routing
  [44, 0, 0, 0, 0, 0, 0, 7], // atomic fragment
  [44, 0, 0, 1, 0, 0, 0, 8], // first fragment, more
  [44, 0, 0, 8, 0, 0, 0, 8], // later fragment
  [59, 0, 1, 4, 0, 0, 0, 0], // a header whose next is "none"
];
const ETHERTYPES = [0x0800, 0x0806, 0x86dd, 0x8100, 0x88cc, 0x0000, 0x05dc, 0xffff];
const MACS = [
  [0x02, 0x74, 0x73, 0, 0, 2], // ours
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x33, 0x33, 0, 0, 0, 1],
  [0x33, 0x33, 0xff, 0, 0, 2],
  [0x01, 0x00, 0x5e, 0, 0, 1],
  [0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa],
  [0x02, 0, 0, 0, 0, 1], // the peer's
  [0, 0, 0, 0, 0, 0],
];
const ADDR4 = [0x0a000002, 0x0a000001, 0x0a0000ff, 0xffffffff, 0, 0x7f000001, 0xe0000001, 0xe00000fb, 0x0a000003, 0xc0a80001, 0xa9fe0001];
const ADDR6 = ['fd00::2', 'fd00::1', 'fe80::1', 'ff02::1', 'ff02::2', 'ff01::1', 'ff02::1:ff00:2', '::', '::1', '::ffff:10.0.0.1', 'fd00::3'];
const ADDR6B = ADDR6.map((a) => parseIpv6(a)!);
const PORTS = [0, 7, 9, 19, 53, 80, 5000, 8080, 50000, 65535, 1, 1024];

/** A new value for a field: boundaries, neighbours of the current value, dictionary entries, noise. */
function setField(f: Buffer, fl: Field, rng: Rng): void {
  const at = fl.off;
  const cur = fl.size === 1 ? f[at] : fl.size === 2 ? f.readUInt16BE(at) : fl.size === 4 ? f.readUInt32BE(at) : 0;
  const max = fl.size >= 4 ? 0xffffffff : fl.size === 2 ? 0xffff : 0xff;
  const write = (v: number) => {
    v = fl.size >= 4 ? v >>> 0 : v & max;
    if (fl.size === 1) f[at] = v;
    else if (fl.size === 2) f.writeUInt16BE(v, at);
    else if (fl.size === 4) f.writeUInt32BE(v, at);
  };
  const r = rng.int(10);
  if (fl.kind === 'mac' && r < 6) return void Buffer.from(rng.pick(MACS)).copy(f, at);
  if (fl.kind === 'ethertype' && r < 7) return write(rng.pick(ETHERTYPES));
  if (fl.kind === 'addr4' && r < 6) return write(rng.pick(ADDR4));
  if (fl.kind === 'addr6' && r < 7) return void rng.pick(ADDR6B).copy(f, at);
  if (fl.kind === 'port' && r < 5) return write(rng.pick(PORTS));
  if (fl.kind === 'flags' && r < 6) return write(cur ^ (1 << rng.int(fl.size * 8)));
  if (fl.size > 4) {
    // Addresses and other wide fields: one byte changed.
    const i = at + rng.int(fl.size);
    f[i] = rng.chance(0.5) ? f[i] ^ (1 << rng.int(8)) : rng.u32() & 255;
    return;
  }
  switch (rng.int(8)) {
    case 0:
      return write(0);
    case 1:
      return write(max);
    case 2:
      return write(cur + 1 + rng.int(3));
    case 3:
      return write(cur - 1 - rng.int(3));
    case 4:
      return write(cur ^ (1 << rng.int(fl.size * 8)));
    case 5:
      return write(fl.size === 4 ? cur + (rng.chance(0.5) ? 0x80000000 : rng.int(0x20000) - 0x10000) : cur + rng.int(64) - 32);
    case 6:
      return write(max >>> 1);
    default:
      return write(rng.u32());
  }
}

function splice(f: Buffer, at: number, del: number, ins: Uint8Array): Buffer {
  return Buffer.concat([f.subarray(0, at), Buffer.from(ins), f.subarray(Math.min(f.length, at + del))]);
}

/** Pad inserted option bytes to `unit` with NOPs (or PadN for IPv6 TLVs): a sender keeps the header a multiple of its unit. */
function padTo(b: number[], unit: number, pad: number): number[] {
  const out = [...b];
  while (out.length % unit) out.push(pad);
  return out;
}

/** One mutation; returns the new frame and a name for the statistics. */
function mutateOnce(f: Buffer, rng: Rng): { frame: Buffer; op: string; relen: boolean } {
  const d = dissect(f);
  const op = rng.int(100);
  if (op < 55 && d.fields.length) {
    // Fields past the Ethernet header are the interesting ones: pick them more often.
    const deep = d.fields.filter((x) => x.off >= 14);
    const fl = deep.length && rng.chance(0.9) ? rng.pick(deep) : rng.pick(d.fields);
    const g = Buffer.from(f);
    setField(g, fl, rng);
    return { frame: g, op: `set:${fl.name.replace(/\d+/g, '')}`, relen: !/len$/.test(fl.name) };
  }
  if (op < 75 && d.regions.length) {
    const r = rng.pick(d.regions);
    const g = Buffer.from(f);
    if (r.name === 'ip4opts' || r.name === 'tcpopts') {
      // Insert or remove option bytes, keeping the header length field right most of the time.
      const ihlAt = r.name === 'ip4opts' ? d.l3Off : d.l4Off + 12;
      const hdrLen = (r.name === 'ip4opts' ? f[ihlAt] & 15 : f[ihlAt] >> 4) * 4;
      if (rng.chance(0.5)) {
        const opt = padTo(rng.pick(r.name === 'ip4opts' ? IP4_OPTS : TCP_OPTS), 4, 1);
        if (hdrLen + opt.length > 60) return { frame: g, op: 'noop', relen: true };
        const at = r.off + 4 * rng.int(r.len / 4 + 1);
        const h = splice(g, at, 0, Buffer.from(opt));
        if (rng.chance(0.85)) setHdrLen(h, ihlAt, r.name, hdrLen + opt.length);
        return { frame: h, op: `ins:${r.name}`, relen: true };
      }
      const n = 4 * (1 + rng.int(r.len / 4));
      const h = splice(g, r.off + 4 * rng.int((r.len - n) / 4 + 1), n, new Uint8Array(0));
      if (rng.chance(0.85)) setHdrLen(h, ihlAt, r.name, hdrLen - n);
      return { frame: h, op: `del:${r.name}`, relen: true };
    }
    if (r.name === 'ip6ext') {
      if (rng.chance(0.3)) {
        // Duplicate this header in place.
        const copy = f.subarray(r.off, r.off + r.len);
        const h = splice(g, r.off, 0, copy);
        // The copy names the original's type as its next header.
        h[r.off] = f[prevNexthdrAt(d, r.off)];
        return { frame: h, op: 'dup:ip6ext', relen: true };
      }
      if (rng.chance(0.5)) {
        // Insert TLVs into an options header, in units of 8.
        const ext = d.exts.find((e) => e.off === r.off);
        if (ext && (ext.type === 0 || ext.type === 60)) {
          const tlv = padTo(rng.pick(IP6_TLVS), 8, 0);
          const h = splice(g, r.off + 2, 0, Buffer.from(tlv));
          h[r.off + 1] += tlv.length / 8;
          return { frame: h, op: 'ins:ip6tlv', relen: true };
        }
      }
      const h = splice(g, r.off, r.len, new Uint8Array(0));
      setPrevNexthdr(h, d, r.off, f[r.off]);
      return { frame: h, op: 'del:ip6ext', relen: true };
    }
    if (r.name === 'ndopts') {
      const opt = rng.pick(ND_OPTS);
      return { frame: splice(g, r.off + 8 * rng.int(r.len / 8 + 1), 0, Buffer.from(opt)), op: 'ins:ndopt', relen: true };
    }
    // Payload: resized.
    const n = rng.int(Math.max(1, r.len));
    if (rng.chance(0.5)) return { frame: splice(g, r.off + rng.int(r.len + 1), 0, rng.bytes(1 + rng.int(300))), op: 'grow:payload', relen: true };
    return { frame: splice(g, r.off + rng.int(r.len - n + 1), n, new Uint8Array(0)), op: 'shrink:payload', relen: true };
  }
  if (op < 82 && d.l3 === 'ipv6') {
    // A new extension header right after the IPv6 header.
    const ext = Buffer.from(rng.pick(EXT_HDRS));
    const o = d.l3Off;
    const nh = f[o + 6];
    const type = ext[0];
    ext[0] = nh;
    const h = splice(f, o + 40, 0, ext);
    h[o + 6] = type;
    return { frame: h, op: `ins:ext${type}`, relen: true };
  }
  if (op < 92) {
    // Cut at or near a layer boundary.
    const bounds = [14, d.l3Off + 20, d.l3Off + 40, d.l4Off, d.l4Off + 8, d.l4Off + 20, ...d.exts.map((e) => e.off)].filter((b) => b > 0 && b < f.length);
    const at = bounds.length && rng.chance(0.7) ? Math.max(0, rng.pick(bounds) + rng.int(5) - 2) : rng.int(f.length);
    return { frame: Buffer.from(f.subarray(0, at)), op: 'cut', relen: false };
  }
  if (op < 96) {
    // Link padding or trailing garbage past the IP length.
    return { frame: Buffer.concat([f, rng.chance(0.5) ? Buffer.alloc(1 + rng.int(64)) : rng.bytes(1 + rng.int(64))]), op: 'pad', relen: false };
  }
  // Noise: a few random bits anywhere past the Ethernet header.
  const g = Buffer.from(f);
  for (let k = 1 + rng.int(4); k > 0 && g.length > 14; k--) {
    const i = 14 + rng.int(g.length - 14);
    g[i] ^= 1 << rng.int(8);
  }
  return { frame: g, op: 'flip', relen: false };
}

function setHdrLen(h: Buffer, at: number, region: string, len: number): void {
  const v = Math.max(0, Math.min(15, len >> 2));
  if (region === 'ip4opts') h[at] = (h[at] & 0xf0) | v;
  else h[at] = (v << 4) | (h[at] & 15);
}

/** The offset of the byte naming the header at `off` (the IPv6 header's next-header field, or the previous extension's). */
function prevNexthdrAt(d: ReturnType<typeof dissect>, off: number): number {
  const i = d.exts.findIndex((e) => e.off === off);
  return i <= 0 ? d.l3Off + 6 : d.exts[i - 1].off;
}

function setPrevNexthdr(h: Buffer, d: ReturnType<typeof dissect>, off: number, v: number): void {
  h[prevNexthdrAt(d, off)] = v;
}

export interface Mutated {
  frame: Buffer;
  ops: string[];
  /** The checksums were recomputed after the mutation. */
  csumFixed: boolean;
}

/**
 * 1..4 mutations of a valid frame; lengths re-derived when a mutation
 * resized a region (most of the time), checksums recomputed (85%).
 */
export function mutate(seed: Buffer, rng: Rng, maxOps = 4): Mutated {
  let f = seed;
  const ops: string[] = [];
  let relen = false;
  for (let n = 1 + rng.int(maxOps); n > 0; n--) {
    const m = mutateOnce(f, rng);
    f = m.frame;
    ops.push(m.op);
    relen ||= m.relen && m.frame.length !== seed.length;
  }
  if (relen && rng.chance(0.8)) fixLengths(f);
  const csumFixed = rng.chance(0.85);
  if (csumFixed) fixChecksums(f);
  return { frame: f, ops, csumFixed };
}
