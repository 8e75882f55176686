/**
 * The soak: `npm run soak -- --minutes N [--seed S] [--json FILE]`.
 *
 * tapstackd on a TAP in a network namespace of its own, and mixed traffic
 * through it for N minutes, every byte checked at the other end:
 *  - kernel side (peer.ts, inside the namespace) against the built-in
 *    services: bulk both ways through echo over IPv4 and IPv6, chargen,
 *    HTTP /bytes/N (a keep-alive agent, and curl over both families),
 *    request/response through echo over IPv6, connection churn, UDP echo
 *    over both families;
 *  - stack side through the client library (this process, over the API
 *    socket): a server the kernel side streams to, a stream to the kernel
 *    side, request/response over IPv4 and IPv6, connection churn, UDP;
 *  - an unmodified program with the LD_PRELOAD library (preload_echo.py);
 *  - beside them an abusive API client (abuse.ts) and a low-rate fuzzer
 *    (fuzzer.ts, a few mutated frames a second into the TAP).
 * Every `--sample` seconds one line: the daemon's RSS, JS heap and
 * event-loop delay, each flow's rate, mismatches and errors; then a table
 * per minute, a table per flow, and the verdict line. Exit status 1 on
 * any mismatched byte, a flow that moved nothing, a daemon that died, or
 * (runs of 3 minutes and more) RSS in the last minute more than 5% above
 * the second minute's; 2 when it cannot run here.
 *
 * Network rule: everything that sends packets runs inside the namespace
 * this creates (`ip netns exec`), on its addresses only; the namespace,
 * and with it the TAP and every process in it, goes on exit, failure or
 * signal (test/integration/netns.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { connect, createServer, createSocket } from '../../src/client/index.js';
import { Netns, ROOT, integrationUnavailable, waitFor, type Daemon } from '../integration/netns.js';
import { churn, requestResponse, sendStream, sinkStream, udpEcho, type Ctx } from './flows.js';
import { SoakFuzzer } from './fuzzer.js';
import { Pattern, newFlowStats, type FlowStats } from './pattern.js';
import type { PeerArgs } from './peer.js';
import type { AbuseArgs } from './abuse.js';

const argv = yargs(hideBin(process.argv))
  .scriptName('soak')
  .usage('$0 [--minutes N] [--seed S] [--memory MiB] [--json FILE]\n\nMixed traffic through tapstackd in a network namespace, every byte checked (needs root).')
  .options({
    minutes: { type: 'number', default: 2, describe: 'how long the traffic runs (fractions allowed; the memory verdict needs 3 or more)' },
    seed: { type: 'number', describe: 'seed of the patterns and the fuzzer (default: from the time; printed)' },
    json: { type: 'string', describe: 'also write the samples, tables and verdict to this file as JSON' },
    sample: { type: 'number', default: 5, describe: 'seconds between samples' },
    memory: { type: 'number', default: 512, describe: "the daemon's memory cap in MiB (tapstackd --memory): its RSS must stay under it" },
  })
  .strict()
  .help()
  .version(false)
  .fail((msg, err) => {
    process.stderr.write(`soak: ${err ? err.message : msg}\n`);
    process.exit(2);
  })
  .parseSync();

const minutes = argv.minutes;
const seed = argv.seed ?? Date.now() % 0x7fffffff;
const sampleMs = Math.round(argv.sample * 1000);
const memoryMiB = argv.memory;
if (!(minutes > 0) || minutes > 24 * 60 || !Number.isInteger(seed) || !(sampleMs >= 500) || !Number.isInteger(memoryMiB) || memoryMiB < 128) {
  process.stderr.write('soak: --minutes must be above 0 (at most a day), --seed an integer, --sample at least 0.5, --memory an integer of MiB from 128\n');
  process.exit(2);
}
const why = integrationUnavailable();
if (why) {
  process.stderr.write(`soak: cannot run: ${why.replace('integration tests need', 'it needs').replace('`sudo npm test`', '`sudo npm run soak`')}\n`);
  process.exit(2);
}
const missing = ['curl', 'python3'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const preloadLib = join(ROOT, 'build', 'Release', 'tapstack_preload.so');
if (missing.length || !existsSync(preloadLib)) {
  process.stderr.write(`soak: cannot run: it needs ${[...missing, ...(existsSync(preloadLib) ? [] : [`${preloadLib} (npm install builds it)`])].join(', ')}\n`);
  process.exit(2);
}

// The addresses: config/default.json's, which are also test/lib/frames.ts's (the fuzzer builds on them).
const STACK4 = '10.0.0.2';
const STACK6 = 'fd00::2';
const KERNEL4 = '10.0.0.1';
const KERNEL6 = 'fd00::1';
const KERNEL_MAC = '02:00:00:00:00:01';
const PORTS = { echo: 6000, sink: 6001, udp: 6002, stackSink: 5001 };
/** Every flow: where it runs, and what its rate line shows. */
const FLOWS: { name: string; where: 'kernel' | 'api' | 'preload'; unit: 'MB' | 'ops' | 'dgrams'; what: string }[] = [
  { name: 'echo4', where: 'kernel', unit: 'MB', what: 'bulk both ways through the echo service, IPv4' },
  { name: 'echo6', where: 'kernel', unit: 'MB', what: 'bulk both ways through the echo service, IPv6' },
  { name: 'chargen', where: 'kernel', unit: 'MB', what: 'stack to kernel, the chargen service' },
  { name: 'k2s', where: 'api', unit: 'MB', what: 'kernel to a client-library server' },
  { name: 's2k', where: 'api', unit: 'MB', what: 'client library to a kernel server' },
  { name: 'preload', where: 'preload', unit: 'MB', what: 'python with LD_PRELOAD, echo both ways, IPv4 and IPv6' },
  { name: 'http', where: 'kernel', unit: 'ops', what: 'HTTP /bytes/N from the HTTP service, keep-alive' },
  { name: 'curl', where: 'kernel', unit: 'ops', what: 'curl /bytes/N, IPv4 and IPv6' },
  { name: 'rr', where: 'api', unit: 'ops', what: 'client-library request/response to a kernel echo, IPv4' },
  { name: 'rr6', where: 'api', unit: 'ops', what: 'client-library request/response to a kernel echo, IPv6' },
  { name: 'rr-in', where: 'kernel', unit: 'ops', what: 'kernel request/response to the echo service, IPv6' },
  { name: 'churn-in', where: 'kernel', unit: 'ops', what: 'short kernel connections to the echo service' },
  { name: 'churn-out', where: 'api', unit: 'ops', what: 'short client-library connections to a kernel echo' },
  { name: 'udp4', where: 'kernel', unit: 'dgrams', what: 'UDP echo service, IPv4' },
  { name: 'udp6', where: 'kernel', unit: 'dgrams', what: 'UDP echo service, IPv6' },
  { name: 'udp-lib', where: 'api', unit: 'dgrams', what: 'client-library UDP to a kernel echo' },
];
const IDS = Object.fromEntries(FLOWS.map((f, i) => [f.name, i + 1]));

const MB = 1 << 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (s: string) => process.stdout.write(s + '\n');

// A run never outlives its length by much, whatever hangs.
const watchdogMs = minutes * 60_000 + 240_000;
setTimeout(() => {
  out(`verdict: FAIL: the soak did not finish within ${Math.round(watchdogMs / 1000)} s`);
  process.exit(1);
}, watchdogMs).unref();

/** JSON lines a child prints, each to `f`; nothing else is kept. */
function onLines(p: ChildProcess, f: (o: Record<string, unknown>) => void): void {
  createInterface({ input: p.stdout! }).on('line', (l) => {
    try {
      f(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not ours
    }
  });
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
  p.on('exit', (code, sig) => {
    if (code && !stopping) out(`soak: ${p.spawnargs.slice(4, 6).join(' ')} exited ${code ?? sig}: ${err.trim().slice(-500)}`);
  });
}

function inNs(ns: Netns, cmd: string[], env: Record<string, string> = {}): ChildProcess {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return spawn('ip', ['netns', 'exec', ns.name, 'env', ...envArgs, ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolves once `p` exits, or after `ms` (then it is killed). */
function ended(p: ChildProcess, ms: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => (p.kill('SIGKILL'), resolve()), ms);
    p.once('exit', () => (clearTimeout(t), resolve()));
  });
}

let stopping = false;

interface Sample {
  t: number;
  rssMB: number;
  heapMB: number;
  /** Buffers outside the JS heap (memoryUsage().arrayBuffers): frames, pages, queues. */
  buffersMB: number;
  loop: { p50: number; p99: number; max: number };
  flows: Record<string, FlowStats>;
  daemonErrors: number;
  fuzzSent: number;
  abuseBursts: number;
}

async function main(): Promise<number> {
  out(`soak: seed ${seed}, ${minutes} min, a sample every ${sampleMs / 1000} s, ${FLOWS.length} flows, an abusive API client, a fuzzer`);
  const ns = new Netns('soak');
  const api = join(ns.dir, 'api.sock');
  const statsFile = join(ns.dir, 'stats.json');
  const daemon: Daemon = await ns.startDaemon(['--tap', 'tap0', '--host-mac', KERNEL_MAC, '--api', api, '--stats-file', statsFile, '--memory', String(memoryMiB * 1024 * 1024)]);
  const pid = daemon.proc.pid!;
  await ns.kernelDadDone('tap0');
  await ns.until(`ping -6 -c1 -W1 ${STACK6} >/dev/null`, "the stack's IPv6 address (its DAD)");

  const p = new Pattern(seed);
  const mine: Record<string, FlowStats> = {};
  let peerFlows: Record<string, FlowStats> = {};
  let preloadFlows: Record<string, FlowStats> = {};
  let abuse: Record<string, unknown> = {};
  let peerFinal = false;
  let preloadFinal = false;

  // The run's clock starts once everything is up (set below); the flows all stop at `until`.
  let until = Number.MAX_SAFE_INTEGER;
  const live = () => !stopping && Date.now() < until;
  const ctx = (name: string): Ctx => ((mine[name] ??= newFlowStats()), { p, flowId: IDS[name], stats: mine[name], live });

  // The stack side's server for the kernel's stream, before the kernel side starts.
  const k2s = ctx('k2s');
  const server = createServer({ api }, (s) => sinkStream(k2s, s));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORTS.stackSink, '0.0.0.0', () => resolve());
  });

  until = Date.now() + minutes * 60_000;
  const peerArgs: PeerArgs = { seed, until, stack4: STACK4, stack6: STACK6, echoPort: PORTS.echo, sinkPort: PORTS.sink, udpPort: PORTS.udp, stackSinkPort: PORTS.stackSink, ids: IDS };
  const peer = inNs(ns, [process.execPath, join(ROOT, 'dist', 'test', 'soak', 'peer.js'), JSON.stringify(peerArgs)]);
  onLines(peer, (o) => {
    peerFlows = o.flows as Record<string, FlowStats>;
    if (o.final) peerFinal = true;
  });
  await ns.kernelListening(PORTS.echo);
  await ns.kernelListening(PORTS.udp, 'udp');
  const t0 = Date.now();

  // The unmodified program, its sockets the stack's (a real interpreter, not pyenv's shell shim: LD_PRELOAD reaches it either way, this is one exec less).
  const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim() || 'python3';
  const preload = inNs(ns, [python, join(ROOT, 'test', 'soak', 'preload_echo.py'), KERNEL4, KERNEL6, String(PORTS.echo), String(seed), String(until / 1000)], {
    LD_PRELOAD: preloadLib,
    TAPSTACK_API: api,
  });
  onLines(preload, (o) => {
    preloadFlows = o.flows as Record<string, FlowStats>;
    if (o.final) preloadFinal = true;
  });

  // The abuser and the fuzzer.
  const abuseArgs: AbuseArgs = { api, until, everyMs: 10_000, holdMs: 3000, floodFrames: 50_000 };
  const abuser = inNs(ns, [process.execPath, join(ROOT, 'dist', 'test', 'soak', 'abuse.js'), JSON.stringify(abuseArgs)]);
  onLines(abuser, (o) => (abuse = o.abuse as Record<string, unknown>));
  const fuzzer = new SoakFuzzer(seed, Object.values(PORTS));
  const inject = inNs(ns, ['python3', join(ROOT, 'test', 'soak', 'inject_stream.py'), 'tap0']);
  let injected: Record<string, unknown> = {};
  onLines(inject, (o) => (injected = o));
  const fuzzTimer = setInterval(() => {
    if (!live()) return;
    const f = fuzzer.next();
    if (f) inject.stdin!.write(f.toString('hex') + '\n');
  }, 200);

  // The stack side's flows through the client library.
  const u = createSocket({ type: 'udp6', api });
  u.on('error', () => {});
  const flows = Promise.all([
    sendStream(ctx('s2k'), () => connect({ host: KERNEL4, port: PORTS.sink, api }), 32 * MB),
    requestResponse(ctx('rr'), () => connect({ host: KERNEL4, port: PORTS.echo, api, noDelay: true })),
    requestResponse(ctx('rr6'), () => connect({ host: KERNEL6, port: PORTS.echo, api, noDelay: true })),
    churn(ctx('churn-out'), () => connect({ host: Math.random() < 0.5 ? KERNEL4 : KERNEL6, port: PORTS.echo, api }), 2, 20),
    udpEcho(ctx('udp-lib'), { send: (b) => u.send(b, PORTS.udp, KERNEL6), onMessage: (f) => u.on('message', (m: Buffer) => f(m)) }, 200),
  ]);

  // Sampling.
  const samples: Sample[] = [];
  let daemonErrors = 0;
  const totals = (): Record<string, FlowStats> => {
    const t: Record<string, FlowStats> = {};
    for (const src of [peerFlows, preloadFlows, mine]) {
      for (const [name, s] of Object.entries(src)) {
        const a = (t[name] ??= newFlowStats());
        a.bytes += s.bytes;
        a.ops += s.ops;
        a.mismatches += s.mismatches;
        a.errors += s.errors;
        a.lost += s.lost;
        a.foreign += s.foreign;
        a.lastError = s.lastError ?? a.lastError;
        a.firstMismatch = a.firstMismatch ?? s.firstMismatch;
      }
    }
    return JSON.parse(JSON.stringify(t)) as Record<string, FlowStats>;
  };
  const readStats = async (): Promise<{ heapMB: number; buffersMB: number; loop: Sample['loop'] } | null> => {
    const before = existsSync(statsFile) ? statSync(statsFile).mtimeMs : 0;
    if (daemon.proc.exitCode !== null) return null;
    daemon.proc.kill('SIGUSR1');
    try {
      await waitFor(() => existsSync(statsFile) && statSync(statsFile).mtimeMs !== before, 'the stats file', 5000, 20);
    } catch {
      return null;
    }
    const j = JSON.parse(readFileSync(statsFile, 'utf8')) as { memory: { heapUsed: number; arrayBuffers: number }; eventLoopDelay: Sample['loop'] };
    return { heapMB: j.memory.heapUsed / MB, buffersMB: j.memory.arrayBuffers / MB, loop: { p50: j.eventLoopDelay.p50, p99: j.eventLoopDelay.p99, max: j.eventLoopDelay.max } };
  };
  const rssMB = (): number => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    } catch {
      return NaN;
    }
  };
  const sample = async (): Promise<void> => {
    const st = await readStats();
    // The daemon's log: its errors are counted, the lines themselves not kept (a run is long).
    for (const l of daemon.lines) if ((l.level ?? 0) >= 50) daemonErrors++;
    daemon.lines.length = 0;
    const s: Sample = {
      t: (Date.now() - t0) / 1000,
      rssMB: rssMB(),
      heapMB: st?.heapMB ?? NaN,
      buffersMB: st?.buffersMB ?? NaN,
      loop: st?.loop ?? { p50: NaN, p99: NaN, max: NaN },
      flows: totals(),
      daemonErrors,
      fuzzSent: fuzzer.stats.sent,
      abuseBursts: Number(abuse.bursts ?? 0),
    };
    const prev = samples.at(-1);
    samples.push(s);
    // The last sample, taken as the flows wind down, holds the totals; its rates would mean nothing.
    if (!stopping) out(sampleLine(s, prev));
  };
  while (Date.now() < until) {
    await sleep(Math.min(sampleMs - ((Date.now() - t0) % sampleMs), until - Date.now()));
    if (daemon.proc.exitCode !== null) break;
    await sample();
  }

  // Wind down: every side stops at `until`; wait for their last totals (bounded).
  clearInterval(fuzzTimer);
  inject.stdin!.end();
  await Promise.race([flows, sleep(20_000)]);
  await waitFor(() => (peerFinal || peer.exitCode !== null) && (preloadFinal || preload.exitCode !== null), 'the last totals of the kernel side and the preloaded program', 30_000).catch((e: Error) => out(`soak: ${e.message}`));
  await Promise.all([ended(abuser, 15_000), ended(inject, 5_000)]);
  stopping = true;
  const daemonAlive = daemon.proc.exitCode === null;
  if (daemonAlive) await sample();
  server.close();
  u.close();
  await daemon.stop();
  ns.destroy();

  return report(samples, daemonAlive, daemon, fuzzer, injected, abuse);
}

function fmt(n: number, d = 1): string {
  return Number.isFinite(n) ? n.toFixed(d) : '-';
}

function sampleLine(s: Sample, prev: Sample | undefined): string {
  const dt = prev ? s.t - prev.t : s.t;
  const rate = (name: string, unit: string) => {
    const a = s.flows[name];
    const b = prev?.flows[name];
    if (!a) return `${name} -`;
    if (unit === 'MB') return `${name} ${fmt((a.bytes - (b?.bytes ?? 0)) / MB / dt)}`;
    return `${name} ${fmt((a.ops - (b?.ops ?? 0)) / dt, 0)}`;
  };
  const sum = (k: 'mismatches' | 'errors' | 'lost') => Object.values(s.flows).reduce((n, f) => n + f[k], 0);
  return (
    `[${fmt(s.t, 0).padStart(4)}s] rss ${fmt(s.rssMB)} MB heap ${fmt(s.heapMB)} MB buffers ${fmt(s.buffersMB)} MB loop p50/p99/max ${fmt(s.loop.p50)}/${fmt(s.loop.p99)}/${fmt(s.loop.max)} ms` +
    ` | MB/s ${FLOWS.filter((f) => f.unit === 'MB').map((f) => rate(f.name, 'MB')).join(' ')}` +
    ` | /s ${FLOWS.filter((f) => f.unit !== 'MB').map((f) => rate(f.name, 'ops')).join(' ')}` +
    ` | udp lost ${sum('lost')} | fuzz ${s.fuzzSent} abuse ${s.abuseBursts} | mismatches ${sum('mismatches')} errors ${sum('errors')} daemon errors ${s.daemonErrors}`
  );
}

const median = (xs: number[]): number => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : NaN;
};

function report(samples: Sample[], daemonAlive: boolean, daemon: Daemon, fuzzer: SoakFuzzer, injected: Record<string, unknown>, abuse: Record<string, unknown>): number {
  const last = samples.at(-1);
  const flows = last?.flows ?? {};
  const T = last?.t ?? 0;

  // Per minute.
  out('\nper minute:');
  out('minute  RSS MB  heap MB  buffers MB  loop p99 ms  loop max ms      MB moved    ops  mismatches  errors');
  const minuteRows: Record<string, number>[] = [];
  // Whole minutes (the last sample, taken as the flows stop, falls just past the last one).
  for (let m = 0; m < Math.max(1, Math.round(T / 60)); m++) {
    const inMin = samples.filter((s) => s.t > m * 60 && s.t <= (m + 1) * 60 + 0.5);
    if (!inMin.length) continue;
    const endS = inMin.at(-1)!;
    const startS = samples.filter((s) => s.t <= m * 60 + 0.5).at(-1);
    const tot = (s: Sample | undefined, k: 'bytes' | 'ops' | 'mismatches' | 'errors') => (s ? Object.values(s.flows).reduce((n, f) => n + f[k], 0) : 0);
    const row = {
      minute: m + 1,
      rssMB: median(inMin.map((s) => s.rssMB)),
      heapMB: median(inMin.map((s) => s.heapMB)),
      buffersMB: median(inMin.map((s) => s.buffersMB)),
      loopP99: Math.max(...inMin.map((s) => s.loop.p99).filter(Number.isFinite), 0),
      loopMax: Math.max(...inMin.map((s) => s.loop.max).filter(Number.isFinite), 0),
      mb: (tot(endS, 'bytes') - tot(startS, 'bytes')) / MB,
      ops: tot(endS, 'ops') - tot(startS, 'ops'),
      mismatches: tot(endS, 'mismatches') - tot(startS, 'mismatches'),
      errors: tot(endS, 'errors') - tot(startS, 'errors'),
    };
    minuteRows.push(row);
    out(
      `${String(row.minute).padStart(6)}  ${fmt(row.rssMB).padStart(6)}  ${fmt(row.heapMB).padStart(7)}  ${fmt(row.buffersMB).padStart(10)}  ${fmt(row.loopP99).padStart(11)}  ${fmt(row.loopMax).padStart(11)}  ${fmt(row.mb).padStart(12)}  ${String(row.ops).padStart(5)}  ${String(row.mismatches).padStart(10)}  ${String(row.errors).padStart(6)}`,
    );
  }

  out('\nper flow:');
  out('flow        where     MB moved      ops  mismatches  errors  lost  what');
  for (const f of FLOWS) {
    const s = flows[f.name] ?? newFlowStats();
    out(`${f.name.padEnd(10)}  ${f.where.padEnd(7)}  ${fmt(s.bytes / MB).padStart(10)}  ${String(s.ops).padStart(7)}  ${String(s.mismatches).padStart(10)}  ${String(s.errors).padStart(6)}  ${String(s.lost).padStart(4)}  ${f.what}`);
    if (s.firstMismatch) out(`            first mismatch: ${s.firstMismatch}`);
    if (s.lastError) out(`            last error: ${s.lastError}`);
  }
  const foreign = Object.values(flows).reduce((n, f) => n + f.foreign, 0);
  out(`\nfuzzer: ${fuzzer.stats.built} frames built, ${fuzzer.stats.sent} sent (${Number(injected.refused ?? 0)} refused by the kernel), ${fuzzer.stats.held} held back (could forge a flow's segment or the kernel side's neighbour entry); ${foreign} foreign datagrams came back to the UDP flows`);
  out(`abusive client: ${JSON.stringify(abuse)}`);
  out(`daemon: ${daemonAlive ? 'alive at the end' : `exited (${daemon.proc.exitCode ?? daemon.proc.signalCode})`}, ${last?.daemonErrors ?? 0} error lines logged`);

  // The verdict.
  const mismatches = Object.values(flows).reduce((n, f) => n + f.mismatches, 0);
  const dead = FLOWS.filter((f) => !(flows[f.name]?.bytes > 0)).map((f) => f.name);
  const judged = minutes >= 3 && T >= 170;
  const second = median(samples.filter((s) => s.t > 60 && s.t <= 120.5).map((s) => s.rssMB));
  const lastMin = median(samples.filter((s) => s.t > T - 60).map((s) => s.rssMB));
  const growth = ((lastMin - second) / second) * 100;
  // Flat: the last minute's RSS at most 5% above the second minute's (a fall is no leak).
  const flat = judged && Number.isFinite(growth) && growth <= 5;
  const mem = `RSS last minute ${fmt(lastMin)} MB vs second minute ${fmt(second)} MB, ${growth >= 0 ? '+' : ''}${fmt(growth)}%`;
  // The cap is in MiB, RSS in MB (10^6): compare in bytes.
  const peak = Math.max(...samples.map((s) => s.rssMB));
  const capMB = (memoryMiB * 1024 * 1024) / 1e6;
  const cap = `peak RSS ${fmt(peak)} MB, the cap ${fmt(capMB)} MB`;
  const fails: string[] = [];
  if (mismatches) fails.push(`${mismatches} mismatches`);
  if (!(peak < capMB)) fails.push(`RSS over the memory cap (${cap})`);
  if (judged && !flat) fails.push(`memory not flat (${mem})`);
  if (dead.length) fails.push(`flows that moved nothing: ${dead.join(', ')}`);
  if (!daemonAlive) fails.push('the daemon exited');
  const verdict = fails.length
    ? `verdict: FAIL: ${fails.join('; ')}`
    : judged
      ? `verdict: memory flat (${mem}; ${cap}), ${mismatches} mismatches`
      : `verdict: memory not judged (the memory verdict needs >= 3 minutes; this run was ${fmt(minutes, 2)}; ${cap}), ${mismatches} mismatches`;
  if (argv.json) {
    writeFileSync(
      argv.json,
      JSON.stringify({ seed, minutes, sampleSeconds: sampleMs / 1000, samples, perMinute: minuteRows, flows, fuzzer: { ...fuzzer.stats, ops: Object.fromEntries(fuzzer.stats.ops), injected }, abuse, daemonAlive, verdict, pass: !fails.length }, null, 2) + '\n',
    );
  }
  out('');
  out(verdict);
  return fails.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    out(`verdict: FAIL: the soak could not run: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
