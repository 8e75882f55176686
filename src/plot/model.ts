/**
 * The connections of a trace (tapstack trace's JSON lines, docs/trace.md) or
 * a capture, normalized into one model, and the series `tapstack plot` draws
 * from it: the time-sequence graph (as tcptrace and Wireshark's Stevens
 * graph) and cwnd/ssthresh/in flight over time.
 */
import { TCPHDR_ACK, TCPHDR_CWR, TCPHDR_ECE, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TCPHDR_URG } from '../wire/tcp.js';
import { captureKind, readCapture, type PcapTcp } from './pcap.js';
import type { PlotData } from './svg.js';

/** Bad input: one line, said as is. */
export class PlotInputError extends Error {}

export type Dir = 'out' | 'in';

/** One segment, both directions; sequence numbers relative (see Conn). */
export interface Seg {
  /** Seconds since the connection's first record. */
  t: number;
  dir: Dir;
  /** Relative to the ISN of `dir`'s sequence space. */
  seq: number;
  end_seq: number;
  /** Relative to the ISN of the other direction (meaningful with the ACK flag). */
  ack: number;
  len: number;
  /** tcpdump's letters (S, F, P, R, U, E, W, then . for ACK). */
  flags: string;
  /** Bytes, scaled. */
  win: number;
  /** [start, end] relative to the other direction's ISN. */
  sack: [number, number][];
}

export interface Retrans {
  t: number;
  dir: Dir;
  seq: number;
  end_seq: number;
  /** The trace's reason (RTO, FAST, ...); absent when found in a capture. */
  reason?: string;
}

export interface Probe {
  t: number;
  cwnd: number;
  ssthresh: number | null;
  inflight: number;
  mss: number;
}

export interface Endpoint {
  addr: string;
  port: number;
}

export interface Conn {
  source: 'trace' | 'pcap';
  family: 4 | 6;
  /** `out`'s end: the traced socket (a trace), or the side that opened the connection (a capture). */
  local: Endpoint;
  remote: Endpoint;
  /** Wall-clock seconds of the first record: t = 0. */
  t0: number;
  /** Each direction's sequence base, absolute: its ISN when its SYN was seen, else the first number seen in that space. */
  isn: Record<Dir, number | undefined>;
  synSeen: Record<Dir, boolean>;
  /** Window scale each side announced on its SYN (a capture), applied when both did. */
  wscale: Record<Dir, number | undefined>;
  /** MSS each side announced on its SYN. */
  mss: Record<Dir, number | undefined>;
  segs: Seg[];
  retrans: Retrans[];
  probes: Probe[];
  /** Payload bytes each way (retransmissions included). */
  bytes: Record<Dir, number>;
  records: number;
}

export interface Parsed {
  kind: 'trace' | 'pcap' | 'pcapng';
  conns: Conn[];
  /** JSON lines that did not parse or lacked a field their event needs: skipped. */
  malformed: number;
  /** Records the trace says it lost (`{"ev":"lost"}`). */
  lost: number;
  /** A capture's last record was cut short (an interrupted live capture). */
  truncated: boolean;
}

const TWO32 = 2 ** 32;
/** include/net/tcp.h's TCP_INFINITE_SSTHRESH. */
const TCP_INFINITE_SSTHRESH = 0x7fffffff;

/**
 * One sequence space, unwrapped: each 32-bit number becomes base-relative
 * and continues past 2^32 (a transfer over 4 GB, or an ISN near the top),
 * taken as the nearest value to the last one seen (within 2^31, as `before()`).
 */
export class SeqSpace {
  base: number | undefined;
  #last = 0;
  rel(v: number): number {
    if (this.base === undefined) this.base = v >>> 0;
    const r = (v - this.base) >>> 0;
    const lastMod = ((this.#last % TWO32) + TWO32) % TWO32;
    const x = this.#last + ((r - lastMod) | 0);
    this.#last = x;
    return x;
  }
}

const FLAG_LETTERS: [number, string][] = [
  [TCPHDR_SYN, 'S'],
  [TCPHDR_FIN, 'F'],
  [TCPHDR_PSH, 'P'],
  [TCPHDR_RST, 'R'],
  [TCPHDR_URG, 'U'],
  [TCPHDR_ECE, 'E'],
  [TCPHDR_CWR, 'W'],
];

/** tcpdump's flag letters. */
export function flagString(f: number): string {
  let s = '';
  for (const [bit, l] of FLAG_LETTERS) if (f & bit) s += l;
  return f & TCPHDR_ACK ? s + '.' : s;
}

const other = (d: Dir): Dir => (d === 'out' ? 'in' : 'out');

/** Builds one Conn from its records in time order. */
class ConnBuilder {
  conn: Conn;
  space: Record<Dir, SeqSpace> = { out: new SeqSpace(), in: new SeqSpace() };
  /** Highest end_seq sent each way: a capture's retransmission is data starting below it. */
  high: Record<Dir, number> = { out: -Infinity, in: -Infinity };

  constructor(source: 'trace' | 'pcap', family: 4 | 6, local: Endpoint, remote: Endpoint, t0: number) {
    this.conn = {
      source,
      family,
      local,
      remote,
      t0,
      isn: { out: undefined, in: undefined },
      synSeen: { out: false, in: false },
      wscale: { out: undefined, in: undefined },
      mss: { out: undefined, in: undefined },
      segs: [],
      retrans: [],
      probes: [],
      bytes: { out: 0, in: 0 },
      records: 0,
    };
  }

  seg(ts: number, dir: Dir, seq: number, endSeq: number, ack: number, len: number, flags: string, win: number, sack: [number, number][] | undefined, detectRetrans: boolean): Seg {
    const c = this.conn;
    const mine = this.space[dir];
    if (flags.includes('S') && mine.base === undefined) c.synSeen[dir] = true;
    const s: Seg = {
      t: ts - c.t0,
      dir,
      seq: mine.rel(seq),
      end_seq: 0,
      ack: 0,
      len,
      flags,
      win,
      sack: [],
    };
    s.end_seq = mine.rel(endSeq);
    c.isn[dir] = mine.base;
    if (flags.includes('.')) {
      const theirs = this.space[other(dir)];
      s.ack = theirs.rel(ack);
      c.isn[other(dir)] = theirs.base;
      for (const [a, b] of sack ?? []) s.sack.push([theirs.rel(a), theirs.rel(b)]);
    }
    c.segs.push(s);
    c.bytes[dir] += len;
    if (detectRetrans && s.end_seq > s.seq && s.seq < this.high[dir]) c.retrans.push({ t: s.t, dir, seq: s.seq, end_seq: s.end_seq });
    if (s.end_seq > this.high[dir]) this.high[dir] = s.end_seq;
    return s;
  }
}

const key = (a: string, ap: number, b: string, bp: number): string => `${a}|${ap}|${b}|${bp}`;

/** A capture's connections: `out` is the side that sent the first SYN (else the first segment). */
export function connsFromPcap(packets: PcapTcp[]): Conn[] {
  const byKey = new Map<string, ConnBuilder>();
  const order: ConnBuilder[] = [];
  for (const p of packets) {
    let cb = byKey.get(key(p.saddr, p.sport, p.daddr, p.dport));
    let dir: Dir = 'out';
    if (cb) dir = cb.conn.local.addr === p.saddr && cb.conn.local.port === p.sport ? 'out' : 'in';
    // A SYN with a new ISN on a known 4-tuple is a new connection (the port reused after TIME_WAIT), not a retransmission.
    if (cb && p.flags & TCPHDR_SYN && !(p.flags & TCPHDR_ACK) && cb.space[dir].base !== undefined && cb.space[dir].base !== p.seq) cb = undefined;
    if (!cb) {
      // A SYN-ACK seen first: its receiver opened the connection.
      const synack = (p.flags & TCPHDR_SYN) !== 0 && (p.flags & TCPHDR_ACK) !== 0;
      const local = synack ? { addr: p.daddr, port: p.dport } : { addr: p.saddr, port: p.sport };
      const remote = synack ? { addr: p.saddr, port: p.sport } : { addr: p.daddr, port: p.dport };
      cb = new ConnBuilder('pcap', p.family, local, remote, p.t);
      byKey.set(key(p.saddr, p.sport, p.daddr, p.dport), cb);
      byKey.set(key(p.daddr, p.dport, p.saddr, p.sport), cb);
      order.push(cb);
      dir = synack ? 'in' : 'out';
    }
    const c = cb.conn;
    c.records++;
    const syn = (p.flags & TCPHDR_SYN) !== 0;
    if (syn) {
      c.wscale[dir] = p.wscale;
      if (p.mss !== undefined) c.mss[dir] = p.mss;
    }
    // RFC 7323: the window of a SYN is never scaled; the others only when both SYNs offered scaling.
    const scale = !syn && c.wscale.out !== undefined && c.wscale.in !== undefined ? c.wscale[dir]! : 0;
    const endSeq = p.seq + p.len + (syn ? 1 : 0) + (p.flags & TCPHDR_FIN ? 1 : 0);
    cb.seg(p.t, dir, p.seq, endSeq, p.ack, p.len, flagString(p.flags), p.win * 2 ** scale, p.sack, true);
  }
  return order.map((b) => b.conn);
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A trace's connections: `out` is the traced socket's sending. */
export function connsFromTrace(lines: string[]): { conns: Conn[]; malformed: number; lost: number } {
  const byKey = new Map<string, ConnBuilder>();
  const order: ConnBuilder[] = [];
  let malformed = 0;
  let lost = 0;
  /** A socket's records whose xmit/rcv gave no retransmit records: found the capture's way instead. */
  const traced = new Set<ConnBuilder>();
  const pending: { cb: ConnBuilder; s: Seg }[] = [];
  let lineNo = 0;
  for (const line of lines) {
    lineNo++;
    if (!line.trim()) continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      malformed++;
      continue;
    }
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new PlotInputError(`line ${lineNo} is JSON but not a record (an object): ${line.slice(0, 60)}`);
    const o = r as Record<string, unknown>;
    if (o.ev === 'lost') {
      if (isNum(o.records)) lost += o.records;
      continue;
    }
    if (!isNum(o.ts) || typeof o.ev !== 'string' || typeof o.saddr !== 'string' || typeof o.daddr !== 'string' || !isNum(o.sport) || !isNum(o.dport)) {
      malformed++;
      continue;
    }
    const k = key(o.saddr, o.sport, o.daddr, o.dport);
    let cb = byKey.get(k);
    if (!cb) {
      cb = new ConnBuilder('trace', o.family === 6 ? 6 : 4, { addr: o.saddr, port: o.sport }, { addr: o.daddr, port: o.dport }, o.ts);
      byKey.set(k, cb);
      order.push(cb);
    }
    const c = cb.conn;
    switch (o.ev) {
      case 'xmit':
      case 'rcv': {
        if (!isNum(o.seq) || !isNum(o.end_seq) || !isNum(o.ack) || !isNum(o.len) || typeof o.flags !== 'string' || !isNum(o.win)) {
          malformed++;
          continue;
        }
        let sack: [number, number][] | undefined;
        if (o.sack !== undefined) {
          if (!Array.isArray(o.sack) || !o.sack.every((b) => Array.isArray(b) && b.length === 2 && isNum(b[0]) && isNum(b[1]))) {
            malformed++;
            continue;
          }
          sack = o.sack as [number, number][];
        }
        const dir: Dir = o.ev === 'xmit' ? 'out' : 'in';
        const s = cb.seg(o.ts, dir, o.seq, o.end_seq, o.ack, o.len, o.flags, o.win, sack, false);
        pending.push({ cb, s });
        break;
      }
      case 'retransmit': {
        if (!isNum(o.seq) || !isNum(o.end_seq)) {
          malformed++;
          continue;
        }
        const sp = cb.space.out;
        const seq = sp.rel(o.seq);
        c.isn.out = sp.base;
        c.retrans.push({ t: o.ts - c.t0, dir: 'out', seq, end_seq: sp.rel(o.end_seq), reason: typeof o.reason === 'string' ? o.reason : undefined });
        traced.add(cb);
        break;
      }
      case 'probe': {
        if (!isNum(o.cwnd) || !isNum(o.inflight) || !(o.ssthresh === null || isNum(o.ssthresh))) {
          malformed++;
          continue;
        }
        // TCP_INFINITE_SSTHRESH as a number is infinite too (docs/trace.md writes null).
        const ssthresh = o.ssthresh === null || (o.ssthresh as number) >= TCP_INFINITE_SSTHRESH ? null : (o.ssthresh as number);
        c.probes.push({ t: o.ts - c.t0, cwnd: o.cwnd, ssthresh, inflight: o.inflight, mss: isNum(o.mss) ? o.mss : 0 });
        break;
      }
      default:
        // state, sack, window, drop, wspace and events newer than this reader: counted, not drawn.
        break;
    }
    c.records++;
  }
  // The socket's own retransmissions come from its retransmit records; the peer's (and a trace
  // without any) are found as in a capture: data starting below the highest end_seq already sent.
  const high = new Map<ConnBuilder, Record<Dir, number>>();
  for (const { cb, s } of pending) {
    let h = high.get(cb);
    if (!h) high.set(cb, (h = { out: -Infinity, in: -Infinity }));
    const fromRecords = s.dir === 'out' && traced.has(cb);
    if (!fromRecords && s.end_seq > s.seq && s.seq < h[s.dir]) cb.conn.retrans.push({ t: s.t, dir: s.dir, seq: s.seq, end_seq: s.end_seq });
    if (s.end_seq > h[s.dir]) h[s.dir] = s.end_seq;
  }
  for (const cb of order) cb.conn.retrans.sort((a, b) => a.t - b.t);
  return { conns: order.map((b) => b.conn), malformed, lost };
}

/** Reads a whole input: a capture by its magic, else JSON lines. */
export function parseInput(b: Buffer, truncatedOk = false): Parsed {
  const kind = captureKind(b);
  if (kind) {
    let r;
    try {
      r = readCapture(b);
    } catch (e) {
      throw new PlotInputError((e as Error).message);
    }
    return { kind, conns: connsFromPcap(r.packets), malformed: 0, lost: 0, truncated: r.truncated };
  }
  const text = b.toString('utf8');
  let lines = text.split('\n');
  // A last line without its newline (a live trace interrupted mid-record) is dropped quietly.
  if (truncatedOk && !text.endsWith('\n')) lines = lines.slice(0, -1);
  const firstLine = lines.find((l) => l.trim());
  if (firstLine === undefined) throw new PlotInputError('the input is empty');
  const t = connsFromTrace(lines);
  if (t.conns.length === 0) {
    const first = firstLine.trimStart()[0];
    if (first !== '{') throw new PlotInputError('neither a pcap file nor JSON lines (tapstack trace records)');
  }
  return { kind: 'trace', conns: t.conns, malformed: t.malformed, lost: t.lost, truncated: false };
}

/** How `--list` shows a connection. */
export function endpoint(e: Endpoint): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

/** The index of the connection that carried the most payload (first on a tie). */
export function busiest(conns: Conn[]): number {
  let best = -1;
  let bytes = -1;
  conns.forEach((c, i) => {
    const n = c.bytes.out + c.bytes.in;
    if (n > bytes) {
      best = i;
      bytes = n;
    }
  });
  return best;
}

/** The direction with more payload (`out` on a tie). */
export function dataDir(c: Conn): Dir {
  return c.bytes.in > c.bytes.out ? 'in' : 'out';
}

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** The series of both graphs, for the data sent in direction `dir`. */
export function plotData(c: Conn, dir: Dir): PlotData {
  const ackDir = other(dir);
  const from = dir === 'out' ? c.local : c.remote;
  const to = dir === 'out' ? c.remote : c.local;
  const segs: number[] = [];
  const retrans: number[] = [];
  const acks: number[] = [];
  const win: number[] = [];
  const sack: number[] = [];
  let maxLen = 0;
  for (const s of c.segs) {
    if (s.dir === dir) {
      if (s.end_seq > s.seq) segs.push(r6(s.t), s.seq, s.end_seq);
      if (s.len > maxLen) maxLen = s.len;
    } else if (s.flags.includes('.') && !s.flags.includes('R')) {
      acks.push(r6(s.t), s.ack);
      win.push(r6(s.t), s.ack + s.win);
      for (const [a, b] of s.sack) sack.push(r6(s.t), a, b);
    }
  }
  for (const r of c.retrans) if (r.dir === dir) retrans.push(r6(r.t), r.seq, r.end_seq);
  // The socket's own congestion state when it is the sender and traced it; else in flight as the wire shows it.
  const useProbes = c.source === 'trace' && dir === 'out' && c.probes.length > 0;
  const cwnd: number[] = [];
  const ssthresh: (number | null)[] = [];
  const inflight: number[] = [];
  let note = '';
  if (useProbes) {
    for (const p of c.probes) {
      cwnd.push(r6(p.t), p.cwnd);
      ssthresh.push(r6(p.t), p.ssthresh);
      inflight.push(r6(p.t), p.inflight);
    }
  } else {
    const mss = c.mss[ackDir] ?? (maxLen || 536);
    // The receiver's announced MSS bounds the sender's segments; a TSO super-segment in our own capture can exceed it.
    const unit = Math.max(1, Math.min(mss, maxLen || mss));
    note = `in flight estimated from the ${c.source === 'pcap' ? 'capture' : 'trace'}: highest end_seq sent - highest ACK, over ${unit} bytes`;
    let nxt = -Infinity;
    // Before the first ACK, everything from the first segment on is in flight.
    let una = -Infinity;
    let last = NaN;
    for (const s of c.segs) {
      if (s.dir === dir && s.end_seq > nxt) {
        if (nxt === -Infinity && una === -Infinity) una = s.seq;
        nxt = s.end_seq;
      } else if (s.dir === ackDir && s.flags.includes('.') && s.ack > una) una = s.ack;
      else continue;
      if (nxt === -Infinity) continue;
      const v = Math.round((Math.max(0, nxt - una) / unit) * 100) / 100;
      if (v !== last) inflight.push(r6(s.t), v);
      last = v;
    }
  }
  const retransCount = retrans.length / 3;
  return {
    title: `${endpoint(from)} \u2192 ${endpoint(to)}`,
    subtitle: `${c.source === 'pcap' ? 'capture' : 'trace'}: ${segs.length / 3} segments, ${retransCount} retransmitted, ${acks.length / 2} ACKs, sequence numbers relative to ${c.synSeen[dir] ? 'the ISN' : 'the first seen'}`,
    seq: { segs, retrans, acks, win, sack },
    cc: { cwnd, ssthresh, inflight, estimated: !useProbes, note },
  };
}
