/**
 * The bench's SYN-flood part: how long a legitimate handshake takes while a
 * spoofed SYN flood arrives, on the stack (over its TAP) and on Linux (over
 * veth), in the same run with the same tools.
 *
 * Each side: first handshakes alone (the baseline), then the same client
 * while bench/tools/syn_flood.py writes SYNs from spoofed sources of the
 * listener's own /24 as fast as its socket takes them (or at
 * BENCH_SYNFLOOD_PPS). The listener is the stack's built-in HTTP server and
 * a python server on Linux, both with a backlog of 128 and SYN cookies on
 * (Linux's default, and the stack's). A handshake whose SYN is lost waits
 * for the client's SYN retransmission (1 s, then 3 s): the p99 and max
 * show it. What is lost where is reported beside it: frames the kernel
 * dropped on the TAP's queue (its tx_dropped) and what the listeners counted
 * (SYN cookies sent, listen queue overflows and drops).
 *
 * Runs in namespaces created here, removed by the caller's cleanup; the
 * flood and the client are bounded in time.
 */
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns, ROOT, waitLine } from '../test/integration/netns.js';

const TOOLS = join(ROOT, 'bench', 'tools');
const FLOOD_S = Number(process.env.BENCH_SYNFLOOD_SECONDS ?? 10);
/**
 * The flood rates, SYN/s: one the stack keeps up with, one it does not, and
 * as fast as the flooder's socket takes them (0), which for a TAP is as fast
 * as the kernel can queue and drop.
 */
const RATES = (process.env.BENCH_SYNFLOOD_PPS ?? '20000,100000,0').split(',').map(Number).filter((n) => n >= 0);
/** Handshakes per phase at most (each bounded by CONNECT_TIMEOUT_S). */
const CONNECTS = 2000;
const CONNECT_TIMEOUT_S = 8;
const STACK_MAC = '02:74:73:00:00:02';

export interface Handshakes {
  n: number;
  fails: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** One side under one flood rate. */
export interface SynFloodRun {
  /** The flooder's target, SYN/s (0: as fast as its socket takes them). */
  pps: number;
  flooded: Handshakes;
  /** SYNs the flooder's socket took, per second. */
  floodPps: number;
  /** SYNs the flooder's socket refused (its device's queue full), per second. */
  floodRefusedPps: number;
  /** Frames lost on the way to the listener: the TAP's tx_dropped (its queue full); the veth peer's rx_dropped for Linux. */
  linkDropped: number;
  /** The listener's own counters over the flood. */
  syncookiesSent: number;
  listenOverflows: number;
  listenDrops: number;
}

export interface SynFloodSide {
  baseline: Handshakes;
  runs: SynFloodRun[];
}

export interface SynFloodBench {
  seconds: number;
  stack: SynFloodSide;
  kernel: SynFloodSide;
}

function jsonLast<T>(out: string): T {
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

function handshakes(ns: Netns, host: string, port: number, seconds: number): Promise<Handshakes> {
  const cmd = `python3 ${TOOLS}/tcp_connect.py ${host} ${port} ${seconds} ${CONNECTS} ${CONNECT_TIMEOUT_S}`;
  return ns.run(cmd, (seconds + CONNECT_TIMEOUT_S + 30) * 1000).then((out) => jsonLast<Handshakes>(out));
}

function sysCounter(ns: Netns, dev: string, name: string): number {
  return Number(ns.ok(`cat /sys/class/net/${dev}/statistics/${name}`).trim());
}

/** Handshakes during the flood: the client starts once the flooder says it is flooding and stops two seconds before it does. */
async function flooded(ns: Netns, flooder: ChildProcess, host: string, port: number): Promise<{ hs: Handshakes; flood: { sent: number; refused: number; seconds: number } }> {
  await waitLine(flooder, /flooding/, 'the SYN flooder to start');
  const hs = await handshakes(ns, host, port, Math.max(1, FLOOD_S - 2));
  const m = await waitLine(flooder, /^\{"sent".*$/m, 'the SYN flooder to end', (FLOOD_S + 30) * 1000);
  return { hs, flood: JSON.parse(m[0]) as { sent: number; refused: number; seconds: number } };
}

interface Listener {
  client: Netns;
  host: string;
  mac: string;
  /** The flooder's device, in `client`. */
  floodDev: string;
  /** The listener's TcpExt counters. */
  counters(): Promise<Record<string, number>>;
  /** Frames lost on the link to the listener so far. */
  linkDropped(): number;
}

async function side(l: Listener): Promise<SynFloodSide> {
  const baseline = await handshakes(l.client, l.host, 80, 2);
  const runs: SynFloodRun[] = [];
  for (const pps of RATES) {
    const c0 = await l.counters();
    const drop0 = l.linkDropped();
    const flooder = l.client.background(`python3 ${TOOLS}/syn_flood.py ${l.floodDev} ${l.mac} ${l.host} 80 ${FLOOD_S} ${pps}`);
    const r = await flooded(l.client, flooder, l.host, 80);
    const c1 = await l.counters();
    const delta = (k: string) => (c1[k] ?? 0) - (c0[k] ?? 0);
    runs.push({
      pps,
      flooded: r.hs,
      floodPps: r.flood.sent / r.flood.seconds,
      floodRefusedPps: r.flood.refused / r.flood.seconds,
      linkDropped: l.linkDropped() - drop0,
      syncookiesSent: delta('SyncookiesSent'),
      listenOverflows: delta('ListenOverflows'),
      listenDrops: delta('ListenDrops'),
    });
  }
  return { baseline, runs };
}

export async function synFloodBench(spaces: Netns[]): Promise<SynFloodBench> {
  // The stack on a TAP; the flood and the client on the kernel's side of it.
  const st = new Netns('benchs');
  spaces.push(st);
  const d = await st.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--log-level', 'info']);
  const stack = await side({
    client: st,
    host: '10.0.0.2',
    mac: STACK_MAC,
    floodDev: 'tap0',
    counters: async () => (await d.counters()).TcpExt ?? {},
    linkDropped: () => sysCounter(st, 'tap0', 'tx_dropped'),
  });
  await d.stop();

  // Linux: two namespaces over veth, the listener in one, the flood and the client in the other.
  const a = new Netns('benchsa');
  const b = new Netns('benchsb');
  spaces.push(a, b);
  a.veth(b, ['10.9.0.1/24'], ['10.9.0.2/24']);
  const http = b.background(`python3 ${TOOLS}/bytes_http.py 10.9.0.2 80`);
  await waitLine(http, /listening/, 'the kernel listener');
  const kernel = await side({
    client: a,
    host: '10.9.0.2',
    mac: b.ok('cat /sys/class/net/vb/address').trim(),
    floodDev: 'va',
    counters: async () => b.kernelTcpCounters(),
    linkDropped: () => sysCounter(b, 'vb', 'rx_dropped'),
  });
  http.kill('SIGTERM');
  return { seconds: FLOOD_S, stack, kernel };
}

function ms(x: number | null): string {
  return x === null ? 'n/a' : x.toFixed(x < 10 ? 2 : 0);
}

export function printSynFlood(r: SynFloodBench): void {
  console.log(`\nhandshakes under a spoofed SYN flood (${r.seconds} s per rate; kernel = Linux over veth, same run, same tools)\n`);
  console.log('| flood | | tapstack | kernel |');
  console.log('| --- | --- | ---: | ---: |');
  const hs = (h: Handshakes) => `${ms(h.p50)} / ${ms(h.p90)} / ${ms(h.p99)} / ${ms(h.max)}`;
  console.log(`| none | handshake ms p50 / p90 / p99 / max | ${hs(r.stack.baseline)} | ${hs(r.kernel.baseline)} |`);
  r.stack.runs.forEach((s, i) => {
    const k = r.kernel.runs[i];
    const name = s.pps ? `${s.pps} SYN/s` : 'unpaced';
    const row = (what: string, f: (x: SynFloodRun) => string) => console.log(`| ${name} | ${what} | ${f(s)} | ${f(k)} |`);
    row('handshake ms p50 / p90 / p99 / max', (x) => hs(x.flooded));
    row(`handshakes done / failed (${CONNECT_TIMEOUT_S} s limit)`, (x) => `${x.flooded.n} / ${x.flooded.fails}`);
    row('SYN/s the link took (refused)', (x) => `${x.floodPps.toFixed(0)} (${x.floodRefusedPps.toFixed(0)})`);
    row('frames lost on the link', (x) => String(x.linkDropped));
    row('SYN cookies sent / listen overflows / drops', (x) => `${x.syncookiesSent} / ${x.listenOverflows} / ${x.listenDrops}`);
  });
}
