/**
 * The lab's model against real kernels: a lab scenario (default
 * examples/two-cubic.json) run twice, once for real and once in the lab,
 * and each flow's share of the goodput and median RTT side by side.
 *
 *   - For real: Linux senders (one process per flow, the scenario's
 *     congestion control set per socket, started at the flow's start) in
 *     one network namespace, a discard server in another, and between them
 *     bench/tools/lab_relay: two TAPs joined through the scenario's
 *     bottleneck (the lab's own queue discipline, at the scenario's rate,
 *     on the real clock) and its delay, loss and reordering.
 *   - In the lab: the same scenario between tapstack stacks (src/lab).
 *
 * Share: each flow's bytes over all flows' (the kernel's tcpi_bytes_acked,
 * the lab's bytes read). RTT: the median of the sender's smoothed RTT
 * sampled every 50 ms (the kernel's tcpi_rtt, the stack's srtt; the lab's
 * table gives percentiles of every RTT sample instead, printed beside).
 * The model holds when each flow's share is within 10 percentage points
 * and each median RTT within 20%; docs/lab.md says where the two differ.
 *
 *   flock /tmp/tapstack-bench.lock node dist/bench/lab_validate.js [SCENARIO.json]
 *
 * LAB_VALIDATE_SECONDS (default 60) replaces the scenario's duration. Needs
 * root (namespaces, TAPs); everything it makes it removes. Exit status 0
 * when the model holds, 1 when it does not.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Netns, ROOT, integrationUnavailable, waitLine, exitOf, outputOf } from '../test/integration/netns.js';
import { parseScenario } from '../src/lab/scenario.js';
import { Lab } from '../src/lab/sim.js';
import { summarize } from '../src/lab/report.js';
import { Timer } from '../src/lib/time.js';

const TOOLS = join(ROOT, 'bench', 'tools');
const RELAY = join(ROOT, 'dist', 'bench', 'tools', 'lab_relay.js');
const file = process.argv[2] ?? join(ROOT, 'examples', 'two-cubic.json');
const seconds = Number(process.env.LAB_VALIDATE_SECONDS ?? 60);
const SAMPLE_MS = 50;

const why = integrationUnavailable();
if (why) {
  console.error(`lab_validate: ${why.replace('integration tests', 'this bench')}`);
  process.exit(2);
}
const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
raw.duration = seconds;
const sc = parseScenario(raw);
if (sc.cross.length) throw new Error('lab_validate: the real path has no cross traffic: give a scenario without any');
// Linux senders take only Linux's algorithms: a tapstack module (cc_modules) has no kernel counterpart.
if (sc.ccModules.length) throw new Error('lab_validate: the Linux senders cannot run cc_modules: give a scenario without any');
for (const f of sc.flows) {
  if (f.rttMs !== sc.path.rttMs) throw new Error(`lab_validate: flow ${f.name}: the real path has one RTT (path.rtt_ms) for every flow`);
  if (Number.isFinite(f.bytes)) throw new Error(`lab_validate: flow ${f.name}: only flows that send until the end`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};

interface Side {
  bytes: number[];
  retrans: number[];
  srttMedian: number[];
}

async function real(): Promise<Side> {
  const r = new Netns('labr');
  const a = new Netns('laba');
  const b = new Netns('labb');
  try {
    const scenarioFile = join(r.dir, 'scenario.json');
    writeFileSync(scenarioFile, JSON.stringify(raw));
    const relay = r.background(`${process.execPath} ${RELAY} la lb ${scenarioFile} ${seconds + 60}`);
    await waitLine(relay, /ready/, 'the relay');
    r.ok(`ip link set la netns ${a.name} && ip link set lb netns ${b.name}`);
    a.ok('ip addr add 10.9.0.1/24 dev la && ip link set la up');
    b.ok('ip addr add 10.9.0.2/24 dev lb && ip link set lb up');
    const sink = b.background(`python3 ${TOOLS}/tcp_sink.py 10.9.0.2 5001`);
    await waitLine(sink, /listening/, 'the sink');
    const senders = sc.flows.map((f) => a.background(`python3 ${TOOLS}/tcp_timed_source.py 10.9.0.2 5001 ${f.start} ${seconds - f.start} ${f.cc}`));
    const out: Side = { bytes: [], retrans: [], srttMedian: [] };
    for (const [i, p] of senders.entries()) {
      const code = await exitOf(p, (seconds + 60) * 1000);
      if (code !== 0) throw new Error(`flow ${sc.flows[i].name}: the sender exited ${code}: ${outputOf(p)}`);
      const j = JSON.parse(outputOf(p).trim().split('\n').pop()!) as { bytes_acked: number; retrans: number; rtt_ms: number[] };
      out.bytes.push(j.bytes_acked);
      out.retrans.push(j.retrans);
      out.srttMedian.push(median(j.rtt_ms));
    }
    relay.kill('SIGTERM');
    await exitOf(relay);
    console.log(`relay: ${outputOf(relay).trim().split('\n').pop()}`);
    return out;
  } finally {
    for (const n of [a, b, r]) n.destroy();
  }
}

function lab(): { side: Side; p50: number[] } {
  const l = new Lab(sc);
  const samples: number[][] = sc.flows.map(() => []);
  // The stack's smoothed RTT every 50 ms, as the kernel's tcpi_rtt is sampled.
  const t = new Timer(() => {
    l.flows.forEach((f, i) => {
      if (f.ssk && f.ssk.srttUs) samples[i].push((f.ssk.srttUs >> 3) / 1000);
    });
    l.time.timers.mod(t, l.time.now() + SAMPLE_MS);
  });
  l.time.timers.mod(t, SAMPLE_MS);
  const res = summarize(l.run());
  return {
    side: { bytes: res.flows.map((f) => f.received), retrans: res.flows.map((f) => f.retransmissions), srttMedian: samples.map(median) },
    p50: res.flows.map((f) => f.rtt_ms.p50 ?? NaN),
  };
}

console.log(`lab_validate: ${sc.name}, ${seconds} s: ${sc.flows.map((f) => `${f.name} (${f.cc}, from ${f.start} s)`).join(', ')}; ${sc.bottleneck.rateBps / 1e6} Mbit/s ${sc.bottleneck.qdisc}, buffer ${sc.bottleneck.bufferText}, RTT ${sc.path.rttMs} ms`);
const k = await real();
const m = lab();
const share = (s: Side, i: number) => s.bytes[i] / s.bytes.reduce((x, y) => x + y, 0);
let holds = true;
const rows = [['flow', 'kernel share', 'lab share', 'diff pp', 'kernel srtt ms', 'lab srtt ms', 'diff', 'lab rtt p50', 'kernel retrans', 'lab retrans']];
sc.flows.forEach((f, i) => {
  const ks = share(k, i);
  const ls = share(m.side, i);
  const dpp = (ls - ks) * 100;
  const dr = m.side.srttMedian[i] / k.srttMedian[i] - 1;
  if (Math.abs(dpp) > 10 || Math.abs(dr) > 0.2 || !Number.isFinite(dr)) holds = false;
  rows.push([
    f.name,
    `${(ks * 100).toFixed(1)}%`,
    `${(ls * 100).toFixed(1)}%`,
    dpp.toFixed(1),
    k.srttMedian[i].toFixed(1),
    m.side.srttMedian[i].toFixed(1),
    `${(dr * 100).toFixed(1)}%`,
    m.p50[i].toFixed(1),
    String(k.retrans[i]),
    String(m.side.retrans[i]),
  ]);
});
const w = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
for (const r of rows) console.log(r.map((v, j) => (j ? v.padStart(w[j]) : v.padEnd(w[j]))).join('  '));
const total = (s: Side) => (s.bytes.reduce((x, y) => x + y, 0) * 8) / seconds / 1e6;
console.log(`goodput of all flows: kernel ${total(k).toFixed(2)} Mbit/s, lab ${total(m.side).toFixed(2)} Mbit/s`);
console.log(holds ? 'the model holds: every share within 10 percentage points, every median RTT within 20%' : 'the model does NOT hold for this scenario (limits: 10 percentage points, 20%)');
console.log(JSON.stringify({ scenario: sc.name, seconds, kernel: k, lab: m.side, labRttP50: m.p50, holds }));
process.exit(holds ? 0 : 1);
