/**
 * Inputs for tapstack plot's tests, built by hand with correct headers: a
 * capture of two connections (one whose data crosses 2^32, loses a segment,
 * is SACKed around it and sends it again; a small IPv6 one) and traces.
 */
import { eth, inetPacket, tcp, tcpOptions, udp, PEER_MAC, STACK_MAC } from './frames.js';
import { parseIpv4, parseIpv6 } from '../../src/lib/addr.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import { TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_SYN } from '../../src/wire/tcp.js';

export const C4 = parseIpv4('10.0.0.1')!;
export const S4 = parseIpv4('10.0.0.2')!;
const C6 = parseIpv6('fd00::1')!;
const S6 = parseIpv6('fd00::2')!;

/** A classic pcap (microseconds, little-endian) of frames [t, frame]. */
export function pcap(frames: [number, Buffer][], linktype = 1): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(262144, 16);
  h.writeUInt32LE(linktype, 20);
  const parts: Buffer[] = [h];
  for (const [t, f] of frames) {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(Math.floor(t), 0);
    r.writeUInt32LE(Math.round((t - Math.floor(t)) * 1e6), 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    parts.push(r, f);
  }
  return Buffer.concat(parts);
}

export interface Seg {
  t: number;
  fromClient: boolean;
  seq: number;
  ack?: number;
  flags: number;
  win?: number;
  len?: number;
  opts?: (string | number)[][];
}

/** One TCP frame over Ethernet between the client and the server of a family. */
export function frame(family: 4 | 6, cport: number, sport: number, s: Seg): Buffer {
  const [c, sv] = family === 4 ? [C4, S4] : [C6, S6];
  const [src, dst] = s.fromClient ? [c, sv] : [sv, c];
  const seg = tcp({
    sport: s.fromClient ? cport : sport,
    dport: s.fromClient ? sport : cport,
    seq: s.seq >>> 0,
    ack: (s.ack ?? 0) >>> 0,
    flags: s.flags,
    win: s.win,
    payload: Buffer.alloc(s.len ?? 0, 0x61),
    options: s.opts ? tcpOptions(s.opts) : undefined,
    src,
    dst,
  });
  const fam = family === 4 ? AF_INET : AF_INET6;
  return eth(s.fromClient ? STACK_MAC : PEER_MAC, s.fromClient ? PEER_MAC : STACK_MAC, family === 4 ? 0x0800 : 0x86dd, inetPacket(fam, { proto: 6, payload: seg, src, dst }));
}

// The client's ISN is near the top: its data crosses 2^32 after 2048 bytes.
export const CISN = 0xfffff800;
export const SISN = 7000;
export const T0 = 1700000000;
const A = TCPHDR_ACK;
/** The main connection: five 1000-byte segments, the second lost, SACKed around, sent again. */
export const MAIN: Seg[] = [
  { t: 0, fromClient: true, seq: CISN, flags: TCPHDR_SYN, win: 64240, opts: [['mss', 1000], ['sackOK'], ['wscale', 7]] },
  { t: 0.01, fromClient: false, seq: SISN, ack: CISN + 1, flags: TCPHDR_SYN | A, win: 1000, opts: [['mss', 1460], ['sackOK'], ['wscale', 2]] },
  { t: 0.02, fromClient: true, seq: CISN + 1, ack: SISN + 1, flags: A, win: 100 },
  ...[0, 1, 2, 3, 4].map((i) => ({ t: 0.03 + i * 0.001, fromClient: true, seq: CISN + 1 + i * 1000, ack: SISN + 1, flags: A | TCPHDR_PSH, win: 100, len: 1000 })),
  { t: 0.05, fromClient: false, seq: SISN + 1, ack: CISN + 1001, flags: A, win: 500 },
  { t: 0.051, fromClient: false, seq: SISN + 1, ack: CISN + 1001, flags: A, win: 500, opts: [['nop'], ['nop'], ['sack', CISN + 2001, CISN + 4001]] },
  { t: 0.052, fromClient: false, seq: SISN + 1, ack: CISN + 1001, flags: A, win: 500, opts: [['nop'], ['nop'], ['sack', CISN + 2001, CISN + 5001]] },
  { t: 0.06, fromClient: true, seq: CISN + 1001, ack: SISN + 1, flags: A, win: 100, len: 1000 },
  { t: 0.07, fromClient: false, seq: SISN + 1, ack: CISN + 5001, flags: A, win: 600 },
  { t: 0.08, fromClient: true, seq: CISN + 5001, ack: SISN + 1, flags: A | TCPHDR_FIN, win: 100 },
  { t: 0.09, fromClient: false, seq: SISN + 1, ack: CISN + 5002, flags: A | TCPHDR_FIN, win: 600 },
];
/** A small IPv6 connection whose server sends the data (so its data direction is `in`). */
export const SMALL: Seg[] = [
  { t: 0.001, fromClient: true, seq: 100, flags: TCPHDR_SYN, win: 1000 },
  { t: 0.002, fromClient: false, seq: 900, ack: 101, flags: TCPHDR_SYN | A, win: 2000 },
  { t: 0.003, fromClient: true, seq: 101, ack: 901, flags: A, win: 1000 },
  { t: 0.004, fromClient: false, seq: 901, ack: 101, flags: A, win: 2000, len: 300 },
  { t: 0.005, fromClient: true, seq: 101, ack: 1201, flags: A, win: 1000 },
];

export function capture(): Buffer {
  const all: [number, Buffer][] = [
    ...MAIN.map((s) => [T0 + s.t, frame(4, 40000, 80, s)] as [number, Buffer]),
    ...SMALL.map((s) => [T0 + s.t, frame(6, 50000, 8080, s)] as [number, Buffer]),
    [T0 + 0.0015, eth(STACK_MAC, PEER_MAC, 0x0800, inetPacket(AF_INET, { proto: 17, payload: udp(53, 53, Buffer.from('x')), src: C4, dst: S4 }))],
  ];
  all.sort((a, b) => a[0] - b[0]);
  return pcap(all);
}

export const TRACE_ID = { family: 4, saddr: '10.0.0.2', sport: 80, daddr: '10.0.0.1', dport: 40000 };
export function traceLines(): string[] {
  const r = (ts: number, o: Record<string, unknown>) => JSON.stringify({ ts: T0 + ts, ...TRACE_ID, ...o });
  const I = 0xfffffc00;
  const P = 5000;
  return [
    r(0, { ev: 'state', old: 'LISTEN', new: 'SYN-RECV' }),
    r(0.001, { ev: 'rcv', seq: P, end_seq: P + 1, ack: 0, len: 0, flags: 'S', win: 64240 }),
    r(0.002, { ev: 'xmit', seq: I, end_seq: I + 1, ack: P + 1, len: 0, flags: 'S.', win: 65535 }),
    r(0.003, { ev: 'rcv', seq: P + 1, end_seq: P + 1, ack: I + 1, len: 0, flags: '.', win: 131072 }),
    '{"ts": 1700000000.004, "ev": "xmit", truncated',
    r(0.004, { ev: 'xmit', seq: I + 1, end_seq: (I + 1 + 1448) >>> 0, ack: P + 1, len: 1448, flags: '.', win: 65535 }),
    r(0.005, { ev: 'xmit', seq: (I + 1449) >>> 0, end_seq: (I + 2897) >>> 0, ack: P + 1, len: 1448, flags: 'P.', win: 65535 }),
    r(0.006, { ev: 'probe', snd_una: I + 1, snd_nxt: (I + 2897) >>> 0, cwnd: 10, ssthresh: null, inflight: 2, mss: 1448, srtt_us: 1000, rttvar_us: 500, rtt_us: -1, ca_state: 'Open' }),
    r(0.007, { ev: 'rcv', seq: P + 1, end_seq: P + 1, ack: I + 1, len: 0, flags: '.', win: 131072, sack: [[(I + 1449) >>> 0, (I + 2897) >>> 0]] }),
    r(0.007, { ev: 'sack', blocks: [[(I + 1449) >>> 0, (I + 2897) >>> 0]], dsack: false }),
    r(0.008, { ev: 'retransmit', seq: I + 1, end_seq: (I + 1449) >>> 0, reason: 'FAST' }),
    r(0.008, { ev: 'xmit', seq: I + 1, end_seq: (I + 1449) >>> 0, ack: P + 1, len: 1448, flags: '.', win: 65535 }),
    r(0.009, { ev: 'probe', snd_una: I + 1, snd_nxt: (I + 2897) >>> 0, cwnd: 5, ssthresh: 5, inflight: 1, mss: 1448, srtt_us: 1000, rttvar_us: 500, rtt_us: -1, ca_state: 'Recovery' }),
    '{"ev":"lost","records":3}',
    r(0.01, { ev: 'rcv', seq: P + 1, end_seq: P + 1, ack: (I + 2897) >>> 0, len: 0, flags: '.', win: 131072 }),
    r(0.01, { ev: 'some-future-event', x: 1 }),
    r(0.011, { ev: 'xmit', seq: 1, end_seq: 2 }),
    '',
  ];
}


/**
 * A long trace of the traced socket sending: n segments of 1448 bytes from an
 * ISN near 2^32, an ACK every second segment and a probe after each. Every
 * 5000 segments one is lost: the ACKs stay on it for 200 segments with a
 * growing SACK block above it, it is sent again (fast retransmit) and cwnd
 * halves, as in a Stevens graph of a recovery.
 */
export function syntheticTrace(n: number): string {
  const id = { family: 4, saddr: '10.0.0.2', sport: 40000, daddr: '10.0.0.1', dport: 80 };
  const isn = 4294960000;
  const pisn = 1000;
  const LOSS = 400;
  const RECOVERED = 600;
  const at = (i: number) => (isn + 1 + i * 1448) >>> 0;
  let ts = T0;
  const out: string[] = [];
  const rec = (o: Record<string, unknown>) => out.push(JSON.stringify({ ts: Math.round(ts * 1e6) / 1e6, ...id, ...o }));
  rec({ ev: 'xmit', seq: isn, end_seq: isn + 1, ack: 0, len: 0, flags: 'S', win: 65535 });
  ts += 0.001;
  rec({ ev: 'rcv', seq: pisn, end_seq: pisn + 1, ack: isn + 1, len: 0, flags: 'S.', win: 65535 });
  let cwnd = 10;
  let ssthresh: number | null = null;
  for (let i = 0; i < n; i++) {
    ts += 0.0001;
    rec({ ev: 'xmit', seq: at(i), end_seq: at(i + 1), ack: pisn + 1, len: 1448, flags: '.', win: 65535 });
    const k = i % 5000;
    const lost = i - k + LOSS;
    if (k === LOSS + 6) {
      rec({ ev: 'retransmit', seq: at(lost), end_seq: at(lost + 1), reason: 'FAST' });
      rec({ ev: 'xmit', seq: at(lost), end_seq: at(lost + 1), ack: pisn + 1, len: 1448, flags: '.', win: 65535 });
      ssthresh = Math.max(2, cwnd >> 1);
      cwnd = ssthresh;
    }
    if (i % 2 === 1 && i >= 3) {
      ts += 0.00002;
      const recovering = k > LOSS + 3 && k < RECOVERED;
      const a = recovering ? at(lost) : at(i - 3);
      const sack = recovering ? { sack: [[at(lost + 1), at(i - 3)]] } : {};
      rec({ ev: 'rcv', seq: pisn + 1, end_seq: pisn + 1, ack: a, len: 0, flags: '.', win: 262144, ...sack });
      if (!recovering) cwnd += 2 / cwnd;
      rec({ ev: 'probe', snd_una: a, snd_nxt: at(i + 1), cwnd: Math.floor(cwnd), ssthresh, inflight: Math.min(Math.floor(cwnd), 4), mss: 1448, srtt_us: 1000, rttvar_us: 500, rtt_us: -1, ca_state: recovering ? 'Recovery' : 'Open' });
    }
  }
  return out.join('\n') + '\n';
}
