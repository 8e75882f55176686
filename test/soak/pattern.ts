/**
 * The soak's byte patterns, shared by both ends of every flow: a ring of
 * seeded random bytes, and streams that read it from a per-connection
 * offset (the salt). Generating is a slice of the ring and checking a
 * compare, so both cost next to nothing beside the traffic; the ring is
 * random and its length a prime, so a byte lost, doubled or moved shows
 * at once.
 */
import { SeededRandom } from '../../src/lib/random.js';

/** The ring's length (a prime a little under 1 MiB). */
export const RING_LEN = 1_048_573;

export class Pattern {
  /** The ring twice over, so any slice up to RING_LEN bytes is contiguous. */
  readonly #ring: Buffer;

  constructor(seed: number) {
    const r = new SeededRandom((seed ^ 0x50a4) >>> 0 || 1);
    const ring = Buffer.allocUnsafe(2 * RING_LEN);
    for (let i = 0; i < RING_LEN; i += 4) {
      const v = r.u32();
      ring[i] = v;
      ring[i + 1] = v >>> 8;
      ring[i + 2] = v >>> 16;
      ring[i + 3] = v >>> 24;
    }
    ring.copy(ring, RING_LEN, 0, RING_LEN);
    this.#ring = ring;
  }

  /** `n` (at most RING_LEN) bytes of the stream with this salt from position `pos`: a view, never to be written. */
  at(salt: number, pos: number, n: number): Buffer {
    const o = (salt + pos) % RING_LEN;
    return this.#ring.subarray(o, o + n);
  }
}

/** A salt for connection `conn` of flow `flow`: different connections start at different places. */
export const saltOf = (flow: number, conn: number): number => ((flow * 7919 + conn * 104_729) >>> 0) % RING_LEN;

/** The sending end of one stream. */
export class StreamGen {
  pos = 0;
  constructor(
    readonly p: Pattern,
    readonly salt: number,
  ) {}

  /** The next `n` bytes (n at most RING_LEN). */
  next(n: number): Buffer {
    const b = this.p.at(this.salt, this.pos, n);
    this.pos += n;
    return b;
  }
}

/** The receiving end: checks every byte in order, counting those that differ. */
export class StreamCheck {
  pos = 0;
  mismatches = 0;
  /** Where the first wrong byte was, for the report. */
  first: string | null = null;

  constructor(
    readonly p: Pattern,
    readonly salt: number,
    /** The expected bytes of this stream (default: the pattern's). */
    readonly expect?: (pos: number, n: number) => Buffer,
  ) {}

  feed(chunk: Uint8Array): void {
    for (let off = 0; off < chunk.length; ) {
      const n = Math.min(chunk.length - off, 65_536);
      const want = this.expect ? this.expect(this.pos, n) : this.p.at(this.salt, this.pos, n);
      const got = chunk.subarray(off, off + n);
      if (Buffer.compare(got, want) !== 0) {
        for (let i = 0; i < n; i++) {
          if (got[i] === want[i]) continue;
          this.mismatches++;
          this.first ??= `byte ${this.pos + i}: got ${got[i]}, expected ${want[i]}`;
        }
      }
      this.pos += n;
      off += n;
    }
  }
}

/**
 * A soak datagram: a 16-byte header (magic, flow, length, sequence, salt)
 * and the pattern from a place the sequence number picks. One that does
 * not carry the magic is not ours (counted apart: the fuzzer's frames get
 * echoed too); one that does and differs is corruption.
 */
export const DGRAM_MAGIC = 0x534f414b; // "SOAK"
export const DGRAM_HDR = 16;

export function dgramBuild(p: Pattern, flow: number, seq: number, salt: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(DGRAM_HDR + len);
  b.writeUInt32BE(DGRAM_MAGIC, 0);
  b.writeUInt16BE(flow, 4);
  b.writeUInt16BE(len, 6);
  b.writeUInt32BE(seq >>> 0, 8);
  b.writeUInt32BE(salt >>> 0, 12);
  p.at(salt, seq * 977, len).copy(b, DGRAM_HDR);
  return b;
}

export type DgramVerdict = { kind: 'foreign' } | { kind: 'ok'; seq: number; len: number } | { kind: 'corrupt'; seq: number; bytes: number };

/** What a datagram that came back is: ours and intact, ours and corrupted (bytes that differ), or not ours. */
export function dgramCheck(p: Pattern, flow: number, b: Uint8Array): DgramVerdict {
  if (b.length < DGRAM_HDR) return { kind: 'foreign' };
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (v.readUInt32BE(0) !== DGRAM_MAGIC || v.readUInt16BE(4) !== flow) return { kind: 'foreign' };
  const len = v.readUInt16BE(6);
  const seq = v.readUInt32BE(8);
  const salt = v.readUInt32BE(12);
  const want = p.at(salt, seq * 977, len);
  const got = v.subarray(DGRAM_HDR);
  if (got.length === len && Buffer.compare(got, want) === 0) return { kind: 'ok', seq, len };
  let bad = Math.abs(got.length - len);
  for (let i = 0; i < Math.min(len, got.length); i++) if (got[i] !== want[i]) bad++;
  return { kind: 'corrupt', seq, bytes: bad };
}

/** One flow's running totals, as both ends report them. */
export interface FlowStats {
  /** Payload bytes verified (both directions for echo flows). */
  bytes: number;
  /** Completed units: connections for churn, transactions for request/response, datagrams for UDP. */
  ops: number;
  mismatches: number;
  errors: number;
  /** UDP: datagrams not back within the timeout (not a mismatch). */
  lost: number;
  /** UDP: datagrams without our header (the fuzzer's, echoed). */
  foreign: number;
  lastError: string | null;
  firstMismatch: string | null;
}

export const newFlowStats = (): FlowStats => ({ bytes: 0, ops: 0, mismatches: 0, errors: 0, lost: 0, foreign: 0, lastError: null, firstMismatch: null });
