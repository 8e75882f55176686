/**
 * A lab run summarized: per flow goodput, its share, retransmissions, RTT
 * and queueing-delay percentiles; the bottleneck's utilization, drops and
 * queue; Jain's fairness index over the flows. As JSON (--json), as the
 * table `tapstack lab` prints, and as plots: each flow's time-sequence and
 * cwnd graphs (the renderer of `tapstack plot`) and the queue over time.
 * Every number is rounded here, so the same run prints the same bytes.
 */
import type { PlotData } from '../plot/svg.js';
import { mean, quantile } from './record.js';
import type { RunRecord } from './sim.js';

export interface FlowResult {
  name: string;
  cc: string;
  /** The sender's algorithm at the end: not `cc` when a module's fault moved its socket to Reno; null if it never connected. */
  cc_end: string | null;
  start_s: number;
  /** Bytes the flow had to send (null: until the end). */
  bytes: number | null;
  rtt_ms_base: number;
  /** Bytes its receiver read, and over how long the flow ran (to its last byte, or the end). */
  received: number;
  active_s: number;
  /** Seconds from start to the last byte read (sized flows that finished), else null. */
  completion_s: number | null;
  goodput_mbit: number;
  /** Share of all flows' received bytes. */
  share: number;
  retransmissions: number;
  segments: number;
  rtt_ms: { p50: number | null; p90: number | null; p99: number | null; samples: number };
  queue_delay_ms: { mean: number | null; p50: number | null; p99: number | null };
  /** Frames the bottleneck dropped (overflow, AQM) or marked CE, lost on the wire, ACKs lost. */
  queue_drops: number;
  aqm_drops: number;
  ce_marks: number;
  wire_lost: number;
  ack_lost: number;
  reordered: number;
}

export interface LabResult {
  scenario: string;
  seed: number;
  duration_s: number;
  bottleneck: { rate_mbit: number; qdisc: string; buffer: string; utilization: number; overlimit_drops: number; aqm_drops: number; ce_marks: number; queue_mean_packets: number; queue_max_packets: number; queue_max_bytes: number };
  cross: { name: string; kind: string; rate_mbit: number; sent: number; dropped: number }[];
  flows: FlowResult[];
  /** The scenario's modules (`cc_modules`, as written): hook calls made, faults, sockets moved to Reno, stopped (an overrun). */
  cc_modules: { file: string; name: string; calls: number; faults: number; fallbacks: number; stopped: boolean; last_fault: string | null }[];
  jain_index: number;
}

const round = (x: number, d: number): number => {
  const k = 10 ** d;
  return Math.round(x * k) / k;
};
const orNull = (x: number, d: number): number | null => (Number.isFinite(x) ? round(x, d) : null);

/** Jain's fairness index of xs: (Σx)² / (n Σx²); 1 when all are equal, 1/n when one has everything. */
export function jainIndex(xs: number[]): number {
  let s = 0;
  let s2 = 0;
  for (const x of xs) {
    s += x;
    s2 += x * x;
  }
  return s2 > 0 ? (s * s) / (xs.length * s2) : 1;
}

export function summarize(r: RunRecord): LabResult {
  const sc = r.scenario;
  const end = r.durationMs;
  const total = r.flows.reduce((a, f) => a + f.received, 0);
  const flows: FlowResult[] = r.flows.map((f) => {
    const startMs = f.spec.start * 1000;
    const stopMs = Number.isNaN(f.doneAt) ? end : f.doneAt;
    const activeMs = Math.max(stopMs - startMs, 1e-9);
    const rtt = f.rtt.sorted();
    const qd = f.qdelay.sorted();
    return {
      name: f.spec.name,
      cc: f.spec.cc,
      cc_end: f.ssk ? f.ssk.caOps.name : null,
      start_s: f.spec.start,
      bytes: Number.isFinite(f.spec.bytes) ? f.spec.bytes : null,
      rtt_ms_base: f.spec.rttMs,
      received: f.received,
      active_s: round(activeMs / 1000, 6),
      completion_s: Number.isNaN(f.doneAt) ? null : round((f.doneAt - startMs) / 1000, 6),
      goodput_mbit: round((f.received * 8) / activeMs / 1000, 4),
      share: total > 0 ? round(f.received / total, 4) : 0,
      retransmissions: f.ssk?.totalRetrans ?? 0,
      segments: f.segments,
      rtt_ms: { p50: orNull(quantile(rtt, 0.5), 3), p90: orNull(quantile(rtt, 0.9), 3), p99: orNull(quantile(rtt, 0.99), 3), samples: rtt.length },
      queue_delay_ms: { mean: orNull(mean(qd), 3), p50: orNull(quantile(qd, 0.5), 3), p99: orNull(quantile(qd, 0.99), 3) },
      queue_drops: f.queueDrops,
      aqm_drops: f.aqmDrops,
      ce_marks: f.marks,
      wire_lost: f.wireLost,
      ack_lost: f.ackLost,
      reordered: f.reordered,
    };
  });
  const b = sc.bottleneck;
  return {
    scenario: sc.name,
    seed: sc.seed,
    duration_s: sc.duration,
    bottleneck: {
      rate_mbit: b.rateBps / 1e6,
      qdisc: b.qdisc,
      buffer: b.bufferText,
      utilization: round((r.txBytes * 8) / (b.rateBps * (end / 1000)), 4),
      overlimit_drops: r.overlimitDrops,
      aqm_drops: r.aqmDrops,
      ce_marks: r.marks,
      queue_mean_packets: round(r.meanQueuePackets, 2),
      queue_max_packets: r.maxQueuePackets,
      queue_max_bytes: r.maxQueueBytes,
    },
    cross: r.cross.map((c) => ({ name: c.spec.name, kind: c.spec.kind, rate_mbit: c.spec.rateBps / 1e6, sent: c.sent, dropped: c.dropped })),
    flows,
    cc_modules: r.modules.map((m) => ({ file: m.path, name: m.name, calls: m.calls, faults: m.faults, fallbacks: m.fallbacks, stopped: m.broken, last_fault: m.lastFault || null })),
    jain_index: round(jainIndex(flows.map((f) => f.goodput_mbit)), 4),
  };
}

const fmt = (x: number | null, d: number): string => (x === null ? '-' : x.toFixed(d));

/** The table `tapstack lab` prints. */
export function formatTable(res: LabResult): string {
  const b = res.bottleneck;
  const lines: string[] = [];
  lines.push(`scenario ${res.scenario}, seed ${res.seed}, ${res.duration_s} s simulated`);
  lines.push(`bottleneck ${b.rate_mbit} Mbit/s, ${b.qdisc}, buffer ${b.buffer}: utilization ${(b.utilization * 100).toFixed(1)}%, queue mean ${b.queue_mean_packets.toFixed(1)} max ${b.queue_max_packets} packets, drops ${b.overlimit_drops} overflow + ${b.aqm_drops} AQM, ${b.ce_marks} CE marks`);
  for (const c of res.cross) lines.push(`cross ${c.name}: ${c.kind} ${c.rate_mbit} Mbit/s, ${c.sent} frames sent, ${c.dropped} dropped at the bottleneck`);
  lines.push('');
  const head = ['flow', 'cc', 'start s', 'rtt ms', 'goodput Mbit/s', 'share', 'retrans', 'rtt p50', 'p90', 'p99 ms', 'qdelay p50', 'p99 ms', 'drops', 'done s'];
  const rows = res.flows.map((f) => [
    f.name,
    f.cc_end === null || f.cc_end === f.cc ? f.cc : `${f.cc}->${f.cc_end}`,
    f.start_s.toFixed(1),
    String(f.rtt_ms_base),
    f.goodput_mbit.toFixed(3),
    `${(f.share * 100).toFixed(1)}%`,
    String(f.retransmissions),
    fmt(f.rtt_ms.p50, 1),
    fmt(f.rtt_ms.p90, 1),
    fmt(f.rtt_ms.p99, 1),
    fmt(f.queue_delay_ms.p50, 1),
    fmt(f.queue_delay_ms.p99, 1),
    String(f.queue_drops + f.aqm_drops),
    f.completion_s === null ? '-' : f.completion_s.toFixed(3),
  ]);
  const all = [head, ...rows];
  const w = head.map((_, j) => Math.max(...all.map((r) => r[j].length)));
  for (const r of all) lines.push(r.map((v, j) => (j < 2 ? v.padEnd(w[j]) : v.padStart(w[j]))).join('  ').trimEnd());
  lines.push('');
  for (const m of res.cc_modules) {
    const faults = m.faults ? `, ${m.faults} fault${m.faults > 1 ? 's' : ''} (last: ${m.last_fault}), ${m.fallbacks} socket${m.fallbacks === 1 ? '' : 's'} moved to reno` : ', no fault';
    lines.push(`module ${m.name} (${m.file}): ${m.calls} calls${faults}${m.stopped ? '; stopped' : ''}`);
  }
  lines.push(`Jain's fairness index over the ${res.flows.length === 1 ? "flow's" : `${res.flows.length} flows'`} goodput: ${res.jain_index.toFixed(4)}`);
  return lines.join('\n') + '\n';
}

/** A flow's time-sequence and cwnd graphs, as `tapstack plot` draws them; time from the start of the run. */
export function flowPlotData(r: RunRecord, i: number): PlotData {
  const f = r.flows[i];
  const s = f.spec;
  return {
    title: `${s.name} (${s.cc}): 10.0.${i + 1}.1 \u2192 10.0.${i + 1}.2, base RTT ${s.rttMs} ms`,
    subtitle: `lab ${r.scenario.name}, seed ${r.scenario.seed}: ${f.segments} segments, ${f.retrans.length / 3} retransmitted; time from the start of the run, sequence relative to the ISN`,
    seq: { segs: f.segs.out, retrans: f.retrans, acks: f.acks.out as number[], win: f.win.out as number[], sack: [] },
    cc: {
      cwnd: f.cwnd.out as number[],
      ssthresh: f.ssthresh.out,
      inflight: f.inflight.out as number[],
      estimated: false,
      note: 'each time bucket of the run drawn by its first, lowest, highest and last values',
    },
  };
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Each flow's goodput over time, Mbit/s per interval, as step lines (its bins from its first to the end of the run). */
export function goodputLines(r: RunRecord): { label: string; color: string; points: number[] }[] {
  const bins = Math.ceil(r.durationMs / r.binMs);
  return r.flows.map((f, i) => {
    const points: number[] = [];
    const first = Math.floor((f.spec.start * 1000) / r.binMs);
    for (let b = first; b < bins; b++) points.push(Math.round(((b * r.binMs) / 1000) * 1e6) / 1e6, Math.round(((f.rxBins[b] ?? 0) * 8) / r.binMs / 10) / 100);
    return { label: `${f.spec.name} (${f.spec.cc})`, color: COLORS[i % COLORS.length], points };
  });
}
