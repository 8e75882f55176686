/**
 * The soak's stream and request/response flows, written once over
 * anything shaped like a net.Socket: the kernel side (peer.ts, node:net
 * inside the namespace) and the stack side (main.ts, the client library)
 * run the same code. Every flow checks every byte it gets back against
 * the pattern, stops at `until` (a time) or when `stop()` says so, and
 * after an error waits a little and starts a new connection; each loop
 * is bounded by that time.
 */
import type { Duplex } from 'node:stream';
import { Pattern, StreamCheck, StreamGen, saltOf, type FlowStats } from './pattern.js';

export interface Ctx {
  p: Pattern;
  /** A number per flow, for salts. */
  flowId: number;
  stats: FlowStats;
  /** Keep going while this holds. */
  live: () => boolean;
}

export type Dial = () => Duplex;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function noteError(c: Ctx, e: unknown): void {
  c.stats.errors++;
  c.stats.lastError = (e as Error)?.message ?? String(e);
}

function noteCheck(c: Ctx, chk: StreamCheck, before: number): void {
  const d = chk.mismatches - before;
  if (d > 0) {
    c.stats.mismatches += d;
    c.stats.firstMismatch ??= chk.first;
  }
}

/** Resolves when the socket connects; rejects on error or close first. */
function connected(s: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => (off(), resolve());
    const bad = (e?: Error) => (off(), reject(e ?? new Error('closed before connecting')));
    const off = () => {
      s.off('connect', ok);
      s.off('error', bad);
      s.off('close', bad);
    };
    s.once('connect', ok);
    s.once('error', bad);
    s.once('close', bad);
  });
}

/** Resolves when the socket is closed (errors are the caller's, already noted). */
function closed(s: Duplex, ms = 15_000): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => (s.destroy(), resolve()), ms);
    s.once('close', () => (clearTimeout(t), resolve()));
  });
}

/**
 * Bulk both ways through an echo: write the pattern, keeping at most
 * `window` bytes unanswered, and check what comes back; a new connection
 * after `connBytes`. Counts the bytes both ways.
 */
export async function bulkEcho(c: Ctx, dial: Dial, connBytes: number, window = 1 << 20): Promise<void> {
  for (let conn = 0; c.live(); conn++) {
    const s = dial();
    const gen = new StreamGen(c.p, saltOf(c.flowId, conn));
    const chk = new StreamCheck(c.p, gen.salt);
    try {
      await connected(s);
      await new Promise<void>((resolve, reject) => {
        let waiting = false;
        const pump = () => {
          while (!waiting && c.live() && gen.pos < connBytes && gen.pos - chk.pos < window) {
            if (!s.write(gen.next(Math.min(32_768, connBytes - gen.pos)))) {
              waiting = true;
              s.once('drain', () => ((waiting = false), pump()));
            }
          }
          if (!c.live() || gen.pos >= connBytes) s.end();
        };
        s.on('data', (d: Buffer) => {
          const m = chk.mismatches;
          chk.feed(d);
          noteCheck(c, chk, m);
          c.stats.bytes += 2 * d.length;
          pump();
        });
        s.once('end', () => (chk.pos === gen.pos ? resolve() : reject(new Error(`echo ended at ${chk.pos} of ${gen.pos} bytes`))));
        s.once('error', reject);
        pump();
      });
      c.stats.ops++;
    } catch (e) {
      if (c.live()) {
        noteError(c, e);
        await sleep(200);
      }
    } finally {
      s.destroy();
    }
  }
}

/** Send the pattern one way: a 4-byte salt first, then `connBytes`, then FIN; a new connection after each. */
export async function sendStream(c: Ctx, dial: Dial, connBytes: number): Promise<void> {
  for (let conn = 0; c.live(); conn++) {
    const s = dial();
    const gen = new StreamGen(c.p, saltOf(c.flowId, conn));
    try {
      await connected(s);
      await new Promise<void>((resolve, reject) => {
        const hdr = Buffer.alloc(4);
        hdr.writeUInt32BE(gen.salt);
        s.write(hdr);
        const pump = () => {
          while (c.live() && gen.pos < connBytes) {
            if (!s.write(gen.next(Math.min(65_536, connBytes - gen.pos)))) return void s.once('drain', pump);
          }
          s.end();
        };
        s.once('error', reject);
        s.once('close', () => resolve());
        s.on('data', () => {});
        pump();
      });
    } catch (e) {
      if (c.live()) {
        noteError(c, e);
        await sleep(200);
      }
    } finally {
      s.destroy();
    }
  }
}

/** The receiving end of sendStream: the salt, then every byte checked; counts the bytes and, at the FIN, a connection. */
export function sinkStream(c: Ctx, s: Duplex): void {
  let chk: StreamCheck | null = null;
  let hdr = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    if (!chk) {
      hdr = Buffer.concat([hdr, d]);
      if (hdr.length < 4) return;
      chk = new StreamCheck(c.p, hdr.readUInt32BE(0));
      d = hdr.subarray(4);
    }
    const m = chk.mismatches;
    chk.feed(d);
    noteCheck(c, chk, m);
    c.stats.bytes += d.length;
  });
  s.on('end', () => {
    c.stats.ops++;
    s.end();
  });
  s.on('error', (e) => noteError(c, e));
}

/** A plain echo server's connection (the kernel side's, for the stack side's clients). */
export function echoConn(s: Duplex): void {
  s.on('error', () => s.destroy());
  s.pipe(s);
}

/**
 * Request/response over one connection through an echo: a request of
 * 1..`maxReq` bytes, wait for all of it back, check, again. Counts
 * transactions and bytes both ways.
 */
export async function requestResponse(c: Ctx, dial: Dial, maxReq = 2048): Promise<void> {
  for (let conn = 0; c.live(); conn++) {
    const s = dial();
    const gen = new StreamGen(c.p, saltOf(c.flowId, conn));
    const chk = new StreamCheck(c.p, gen.salt);
    try {
      await connected(s);
      await new Promise<void>((resolve, reject) => {
        let want = 0;
        const ask = () => {
          if (!c.live()) return void s.end();
          const n = 1 + ((gen.pos * 2654435761) >>> 0) % maxReq;
          want = chk.pos + n;
          s.write(gen.next(n));
        };
        s.on('data', (d: Buffer) => {
          const m = chk.mismatches;
          chk.feed(d);
          noteCheck(c, chk, m);
          c.stats.bytes += 2 * d.length;
          if (chk.pos > want) return void reject(new Error(`${chk.pos - want} bytes more than were sent`));
          if (chk.pos === want) {
            c.stats.ops++;
            ask();
          }
        });
        s.once('end', () => resolve());
        s.once('error', reject);
        ask();
      });
    } catch (e) {
      if (c.live()) {
        noteError(c, e);
        await sleep(200);
      }
    } finally {
      s.destroy();
    }
  }
}

/**
 * Connection churn through an echo: `parallel` loops, each opening a
 * connection, sending a few hundred bytes, checking them back and
 * closing, at most `perSecond` connections a second in all.
 */
export async function churn(c: Ctx, dial: () => Duplex, parallel: number, perSecond: number): Promise<void> {
  let conn = 0;
  const gap = (1000 * parallel) / perSecond;
  const one = async () => {
    while (c.live()) {
      const t0 = Date.now();
      const s = dial();
      const gen = new StreamGen(c.p, saltOf(c.flowId, conn++));
      const chk = new StreamCheck(c.p, gen.salt);
      const n = 1 + (gen.salt % 1400);
      try {
        await connected(s);
        await new Promise<void>((resolve, reject) => {
          s.on('data', (d: Buffer) => {
            const m = chk.mismatches;
            chk.feed(d);
            noteCheck(c, chk, m);
            c.stats.bytes += 2 * d.length;
            if (chk.pos >= n) s.end();
          });
          s.once('error', reject);
          s.once('close', () => (chk.pos === n ? resolve() : reject(new Error(`churn: ${chk.pos} of ${n} bytes came back`))));
          s.write(gen.next(n));
        });
        c.stats.ops++;
      } catch (e) {
        if (c.live()) noteError(c, e);
      } finally {
        s.destroy();
      }
      const rest = gap - (Date.now() - t0);
      if (rest > 0 && c.live()) await sleep(rest);
    }
  };
  await Promise.all(Array.from({ length: parallel }, one));
}

/** Read a byte stream whose expected bytes `expect` gives, `connBytes` per connection (chargen). */
export async function readKnown(c: Ctx, dial: Dial, connBytes: number, expect: (pos: number, n: number) => Buffer): Promise<void> {
  while (c.live()) {
    const s = dial();
    const chk = new StreamCheck(c.p, 0, expect);
    try {
      await connected(s);
      await new Promise<void>((resolve, reject) => {
        s.on('data', (d: Buffer) => {
          const m = chk.mismatches;
          chk.feed(d);
          noteCheck(c, chk, m);
          c.stats.bytes += d.length;
          if (chk.pos >= connBytes || !c.live()) {
            s.destroy();
            resolve();
          }
        });
        s.once('error', reject);
        s.once('close', () => resolve());
      });
      c.stats.ops++;
    } catch (e) {
      if (c.live()) {
        noteError(c, e);
        await sleep(200);
      }
    } finally {
      s.destroy();
      await closed(s);
    }
  }
}

/** What a UDP flow needs of its socket. */
export interface DgramEnd {
  send(b: Buffer): void;
  /** Register the handler for what comes back. */
  onMessage(f: (b: Buffer) => void): void;
}

/**
 * UDP through an echo: datagrams of 1..1400 bytes, `perSecond` of them,
 * at most 64 unanswered; one not back within `timeoutMs` is lost (counted,
 * not a mismatch), one back with its header and other bytes is corrupt
 * (its differing bytes are mismatches), one without our header is foreign.
 */
export async function udpEcho(c: Ctx, end: DgramEnd, perSecond: number, timeoutMs = 3000): Promise<void> {
  const { dgramBuild, dgramCheck } = await import('./pattern.js');
  const out = new Map<number, number>();
  let seq = 0;
  end.onMessage((b) => {
    const v = dgramCheck(c.p, c.flowId, b);
    if (v.kind === 'foreign') return void c.stats.foreign++;
    if (v.kind === 'corrupt') {
      c.stats.mismatches += v.bytes;
      c.stats.firstMismatch ??= `datagram ${v.seq}: ${v.bytes} bytes differ`;
      out.delete(v.seq);
      return;
    }
    // A datagram already given up for lost, come back late, counts again as delivered, not as lost.
    if (!out.delete(v.seq)) c.stats.lost = Math.max(0, c.stats.lost - 1);
    c.stats.ops++;
    c.stats.bytes += 2 * v.len;
  });
  const tick = 20;
  const per = Math.max(1, Math.round((perSecond * tick) / 1000));
  while (c.live()) {
    const now = Date.now();
    for (const [s, at] of out) {
      if (now - at < timeoutMs) break;
      out.delete(s);
      c.stats.lost++;
    }
    for (let i = 0; i < per && out.size < 64; i++) {
      const len = 1 + ((seq * 2654435761) >>> 0) % 1400;
      out.set(seq, now);
      try {
        end.send(dgramBuild(c.p, c.flowId, seq, c.flowId * 131, len));
      } catch (e) {
        noteError(c, e);
      }
      seq++;
    }
    await sleep(tick);
  }
  // Those still out when the flow stops get their timeout to come back.
  const last = Date.now() + timeoutMs;
  while (out.size && Date.now() < last) await sleep(50);
  c.stats.lost += out.size;
}
