/**
 * The stack's BBR against the kernel's over the same impaired path,
 * trajectory against trajectory. Run as root after `npm run build`, under
 * the bench lock:
 *
 *   flock /tmp/tapstack-bench.lock node dist/bench/bbr_compare.js
 *
 * The path is the bench's fault line with a bottleneck (BBR_PATH, default
 * `delay=10ms,rate=20mbit`: 20 ms RTT, 20 Mbit/s): tapstackd --fault for
 * the stack as sender (net.ipv4.tcp_congestion_control=bbr), and
 * bench/tools/fault_relay between two kernel namespaces for Linux to Linux
 * (the sender's socket sets TCP_CONGESTION bbr; `modprobe tcp_bbr` must
 * have made it available). Each side sends BBR_BYTES (default 40 MiB,
 * about 17 s at 20 Mbit/s: long enough for a PROBE_RTT) to curl, and the
 * sender's socket is sampled every BBR_SAMPLE_MS (default 50) ms: the
 * kernel's with `ss -tin` (bbr:(bw,mrtt,pacing_gain,cwnd_gain) and
 * pacing_rate), the stack's through its API (the same fields, TCP_CC_INFO).
 * The BBR mode is read from the gains (STARTUP 2.89/2.89, or none before
 * the first ACK; DRAIN 0.35/2.89; PROBE_BW 1.25|0.75|1 with cwnd gain 2;
 * PROBE_RTT 1/1).
 *
 * Prints both mode sequences (each mode with the time it began) and the
 * steady-state pacing rate (the median over the PROBE_BW samples at gain 1,
 * in the second half of the transfer) of each, with their ratio; writes the
 * samples to bench/bbr_compare.json.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Netns, ROOT, integrationUnavailable } from '../test/integration/netns.js';
import { Client } from '../src/client/index.js';

const PATH = process.env.BBR_PATH ?? 'delay=10ms,rate=20mbit';
const BYTES = Number(process.env.BBR_BYTES ?? 40 * 1024 * 1024);
const SAMPLE_MS = Number(process.env.BBR_SAMPLE_MS ?? 50);
const TOOLS = join(ROOT, 'bench', 'tools');
const RELAY = join(ROOT, 'dist', 'bench', 'tools', 'fault_relay.js');

interface Sample {
  /** ms since the transfer began. */
  t: number;
  pacingGain: number;
  cwndGain: number;
  /** bytes per second. */
  pacingRate: number;
  bw: number;
  minRttMs: number;
  cwnd: number;
}

/** BBR's mode from its gains (x256 rounded away: ss prints them as fractions). */
function mode(s: Sample): string {
  // No gains before the first ACK: bbr_init leaves the socket in STARTUP.
  if (s.pacingGain === 0 || s.pacingGain > 2) return 'STARTUP';
  if (s.pacingGain < 0.5) return 'DRAIN';
  if (s.cwndGain < 1.5) return 'PROBE_RTT';
  return 'PROBE_BW';
}

/** The modes in order, each with the ms it was first seen. */
function sequence(samples: Sample[]): [string, number][] {
  const seq: [string, number][] = [];
  for (const s of samples) {
    const m = mode(s);
    if (!seq.length || seq[seq.length - 1][0] !== m) seq.push([m, s.t]);
  }
  return seq;
}

function steadyPacingRate(samples: Sample[]): number {
  const end = samples.length ? samples[samples.length - 1].t : 0;
  const xs = samples.filter((s) => s.t > end / 2 && mode(s) === 'PROBE_BW' && Math.abs(s.pacingGain - 1) < 0.01).map((s) => s.pacingRate);
  xs.sort((a, b) => a - b);
  return xs.length ? xs[xs.length >> 1] : 0;
}

/** A rate as ss prints it ("12.3Mbps", "980kbps", "500bps") in bytes per second. */
function ssRate(v: string): number {
  const m = /^([\d.]+)([KMG]?)bps$/i.exec(v);
  if (!m) return NaN;
  return (Number(m[1]) * ({ '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 } as Record<string, number>)[m[2]]) / 8;
}

/** One `ss -tin` line's sample of the kernel's BBR socket, or null if it has no bbr:(...) yet. */
function kernelSample(out: string, t: number): Sample | null {
  const bbr = /bbr:\(bw:(\S+?),mrtt:([\d.]+)(?:,pacing_gain:([\d.]+))?(?:,cwnd_gain:([\d.]+))?\)/.exec(out);
  const pr = /pacing_rate (\S+)/.exec(out);
  const cw = /cwnd:(\d+)/.exec(out);
  if (!bbr || !pr) return null;
  return { t, bw: ssRate(bbr[1]), minRttMs: Number(bbr[2]), pacingGain: Number(bbr[3] ?? 0), cwndGain: Number(bbr[4] ?? 0), pacingRate: ssRate(pr[1]), cwnd: Number(cw?.[1] ?? 0) };
}

/** Sample until the curl in `ns` (downloading) exits. */
async function sampleWhile(curl: ReturnType<Netns['background']>, take: (t: number) => Promise<Sample | null>): Promise<Sample[]> {
  const out: Sample[] = [];
  let done = false;
  curl.on('exit', () => (done = true));
  const t0 = performance.now();
  while (!done) {
    const s = await take(performance.now() - t0);
    if (s) out.push(s);
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
  }
  return out;
}

async function stackSide(): Promise<Sample[]> {
  const ns = new Netns('bbrs');
  try {
    const cfg = join(ns.dir, 'bbr.json');
    writeFileSync(cfg, JSON.stringify({ sysctl: { 'net.ipv4.tcp_congestion_control': 'bbr' } }));
    const api = ns.apiPath();
    await ns.startDaemon(['--config', cfg, '--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--log-level', 'info', '--fault', PATH]);
    const c = new Client({ path: api, descriptors: false });
    await c.ready();
    const curl = ns.background(`curl -sS -o /dev/null http://10.0.0.2/bytes/${BYTES}`);
    const samples = await sampleWhile(curl, async (t) => {
      const rows = await c.sockets(true);
      const r = rows.find((x) => (x.state === 'ESTABLISHED' || x.state === 'ESTAB') && x.local.endsWith(':80') && x.ccInfo?.kind === 'bbr');
      if (!r || !r.info || r.ccInfo?.kind !== 'bbr') return null;
      const b = r.ccInfo.bbr;
      return { t, bw: b.bw, minRttMs: b.minRtt / 1000, pacingGain: b.pacingGain / 256, cwndGain: b.cwndGain / 256, pacingRate: Number(r.info.pacing_rate ?? 0), cwnd: Number(r.info.snd_cwnd ?? 0) };
    });
    c.close();
    return samples;
  } finally {
    ns.destroy();
  }
}

async function kernelSide(): Promise<Sample[]> {
  const r = new Netns('bbrr');
  const a = new Netns('bbra');
  const b = new Netns('bbrb');
  try {
    const relay = r.background(`${process.execPath} ${RELAY} fa fb ${PATH} 600`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('relay did not start')), 10_000);
      relay.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && (clearTimeout(t), resolve()));
    });
    r.ok(`ip link set fa netns ${a.name} && ip link set fb netns ${b.name}`);
    a.ok('ip addr add 10.8.0.1/24 dev fa && ip link set fa up');
    b.ok('ip addr add 10.8.0.2/24 dev fb && ip link set fb up');
    const http = b.background(`python3 ${TOOLS}/bytes_http.py 10.8.0.2 80 bbr`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('server did not start')), 10_000);
      http.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && (clearTimeout(t), resolve()));
    });
    const curl = a.background(`curl -sS -o /dev/null http://10.8.0.2/bytes/${BYTES}`);
    return await sampleWhile(curl, async (t) => kernelSample(b.sh(`ss -tin state established '( sport = :80 )'`).stdout, t));
  } finally {
    b.destroy();
    a.destroy();
    r.destroy();
  }
}

async function main(): Promise<void> {
  const why = integrationUnavailable();
  if (why) throw new Error(`bbr_compare needs root and network namespaces: ${why}`);
  const avail = new Netns('bbrk');
  const cc = avail.ok('cat /proc/sys/net/ipv4/tcp_available_congestion_control');
  avail.destroy();
  if (!/\bbbr\b/.test(cc)) throw new Error(`the kernel has no bbr (available: ${cc.trim()}); modprobe tcp_bbr`);
  const kernel = await kernelSide();
  const stack = await stackSide();
  const ks = sequence(kernel);
  const ss = sequence(stack);
  const kr = steadyPacingRate(kernel);
  const sr = steadyPacingRate(stack);
  const fmt = (seq: [string, number][]) => seq.map(([m, t]) => `${m}@${Math.round(t)}ms`).join(' ');
  console.log(`BBR over ${PATH}, ${(BYTES / 1048576).toFixed(0)} MiB, sampled every ${SAMPLE_MS} ms`);
  console.log(`  kernel: ${fmt(ks)}`);
  console.log(`  stack:  ${fmt(ss)}`);
  const same = ks.length === ss.length && ks.every(([m], i) => ss[i][0] === m);
  console.log(`  mode sequence: ${same ? 'the same' : 'differs'}`);
  console.log(`  steady pacing rate: kernel ${(kr * 8 / 1e6).toFixed(2)} Mbit/s, stack ${(sr * 8 / 1e6).toFixed(2)} Mbit/s, ratio ${(sr / kr).toFixed(3)}`);
  writeFileSync(join(ROOT, 'bench', 'bbr_compare.json'), JSON.stringify({ path: PATH, bytes: BYTES, sampleMs: SAMPLE_MS, kernel: { sequence: ks, steadyPacingRate: kr, samples: kernel }, stack: { sequence: ss, steadyPacingRate: sr, samples: stack } }, null, 1));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bbr_compare: ${(e as Error).message}`);
    process.exit(1);
  },
);
