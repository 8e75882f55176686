/**
 * The bench's shards part (BENCH_PARTS=shards; docs/shards.md): the stack
 * with 1 and with 2 shards next to the kernel, in the same run, same tools.
 *
 *   - HTTP/1.1 `Connection: close` (a connection per request) with wrk
 *     (-t2 -c64) against the built-in server's GET /bytes/64, and against
 *     nginx on the kernel over veth serving a 64-byte file, nginx with one
 *     worker and with two (`reuseport`: one listener per worker, as each
 *     shard has its own): connections per second, the median of
 *     BENCH_SHARDS_RUNS runs (default 3) of BENCH_HTTP_SECONDS (default 3);
 *   - many-flow throughput: BENCH_SHARDS_FLOWS (default 8) downloads at once
 *     of BENCH_SHARDS_BYTES each (default 128 MiB): GET /bytes/N from the
 *     stack, a file of that size from nginx (2 workers) on the kernel;
 *   - nginx through the preload (`tapstack run`, the API routed across the
 *     shards: docs/shards.md), with 1 and 2 workers sharing the master's
 *     listener, against the same stack with 1 and with 2 shards: conn/s as
 *     above, next to kernel nginx with the same workers;
 *   - each shard's own CPU seconds (its thread's utime + stime; the single
 *     event loop's main thread for 1 shard) per connection it accepted
 *     (Tcp PassiveOpens) during the wrk runs, and per GB it sent (its link's
 *     tx_bytes) during the downloads.
 *
 * The machine has 2 cores shared by the shards, the kernel's side (wrk,
 * curl, the TAP's softirq work) and everything else: the figures say what a
 * second shard buys when nothing is idle, which is the floor of what it
 * buys with cores to spare.
 *
 * Runs in namespaces created here, removed by the caller's cleanup; every
 * transfer is bounded in size and time.
 */
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, exitOf, type Daemon, type LogLine } from '../test/integration/netns.js';
import { wrkClientSide } from './wrk.js';

const RUNS = Math.max(1, Math.min(9, Number(process.env.BENCH_SHARDS_RUNS ?? 3)));
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 3);
const FLOWS = Math.max(1, Math.min(64, Number(process.env.BENCH_SHARDS_FLOWS ?? 8)));
const FLOW_BYTES = Number(process.env.BENCH_SHARDS_BYTES ?? 128 * 1024 * 1024);
const TIMEOUT_S = 120;
const USER_HZ = 100;

export interface ShardFigures {
  /** Connections accepted during the wrk runs, CPU seconds used then, and their ratio. */
  conns: number;
  connCpuS: number;
  cpuPerConnUs: number;
  /** Bytes sent during the downloads, CPU seconds used then, and CPU seconds per GB. */
  txBytes: number;
  bulkCpuS: number;
  cpuPerGbS: number;
}

export interface PreloadRun {
  workers: number;
  connPerS: number;
  connRuns: number[];
}

export interface ShardsRun {
  shards: number;
  connPerS: number;
  connRuns: number[];
  /** nginx under `tapstack run` with 1 and 2 workers. */
  preload: PreloadRun[];
  manyFlowGbps: number;
  perShard: ShardFigures[];
}

export interface ShardsBench {
  seconds: number;
  runs: number;
  flows: number;
  flowBytes: number;
  kernel1: { connPerS: number; connRuns: number[] };
  kernel2: { connPerS: number; connRuns: number[]; manyFlowGbps: number };
  stack: ShardsRun[];
  loadavg: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** wrk's requests per second with a connection each; any error or non-2xx answer fails the bench. */
function wrkClose(ns: Netns, url: string): number {
  const out = ns.ok(`wrk -t2 -c64 -d${HTTP_SECONDS}s --timeout 5s -H 'Connection: close' ${url}`, (HTTP_SECONDS + 30) * 1000);
  if (/Non-2xx|Socket errors: connect [1-9]|read [1-9]|timeout [1-9]/.test(out)) throw new Error(`wrk ${url}: errors\n${out}`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk ${url}: no result\n${out}`);
  return Number(m[1]);
}

/** FLOWS downloads of `url` at once (curl --parallel); the aggregate Gbit/s. */
function manyFlows(ns: Netns, url: string, bytes: number): number {
  const outs = Array.from({ length: FLOWS }, () => `-o /dev/null ${url}`).join(' ');
  const t0 = process.hrtime.bigint();
  ns.ok(`curl -sS --fail --max-time ${TIMEOUT_S} --parallel --parallel-immediate --parallel-max ${FLOWS} ${outs}`, (TIMEOUT_S + 10) * 1000);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return (FLOWS * bytes * 8) / s / 1e9;
}

/**
 * nginx's directory and config in `dir`: /small (64 bytes) and /big (FLOW_BYTES) on `listen` with `workers`
 * processes (`master_process on` for more than one, so the workers share the master's listeners).
 */
function nginxConf(dir: string, listen: string, workers: number): string {
  mkdirSync(join(dir, 'www'), { recursive: true });
  writeFileSync(join(dir, 'www', 'small'), Buffer.alloc(64, 0x61));
  writeFileSync(join(dir, 'www', 'big'), '');
  truncateSync(join(dir, 'www', 'big'), FLOW_BYTES);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `user root; worker_processes ${workers}; daemon off; master_process ${workers > 1 ? 'on' : 'off'}; pid ${dir}/nginx.pid; error_log ${dir}/error.log;\n` +
      `events { worker_connections 4096; }\n` +
      `http { access_log off; sendfile on; default_type application/octet-stream;\n` +
      `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};\n` +
      `  server { listen ${listen}; root ${dir}/www; } }\n`,
  );
  return `nginx -c ${dir}/nginx.conf -p ${dir}`;
}

/** nginx on the kernel on addr:80 with `workers` processes, a `reuseport` listener each. */
async function startNginx(ns: Netns, addr: string, workers: number): Promise<ReturnType<Netns['background']>> {
  const p = ns.background(nginxConf(join(ns.dir, `nginx${workers}`), `${addr}:80 reuseport`, workers));
  await ns.until(`ss -Hltn 'sport = :80' | grep -q .`, `nginx (${workers} worker(s)) listening`);
  return p;
}

/** The port nginx listens on through the preload (the built-in server has 80). */
const PRELOAD_PORT = 8080;

/** nginx under `tapstack run` on the stack with 1 and then 2 workers: conn/s, the median of RUNS. */
async function preloadRuns(st: Netns, api: string): Promise<PreloadRun[]> {
  const out: PreloadRun[] = [];
  for (const workers of [1, 2]) {
    const port = PRELOAD_PORT + workers;
    const cmd = nginxConf(join(st.dir, `nginx-preload${workers}`), `10.0.0.2:${port}`, workers);
    const p = st.background(`${process.execPath} ${CLI} run --api ${api} -- ${cmd}`);
    try {
      await st.stackListening(api, port);
      const url = `http://10.0.0.2:${port}/small`;
      wrkClose(st, url);
      const connRuns: number[] = [];
      for (let i = 0; i < RUNS; i++) connRuns.push(wrkClose(st, url));
      out.push({ workers, connPerS: median(connRuns), connRuns });
    } finally {
      p.kill('SIGTERM');
      await exitOf(p, 20_000);
    }
  }
  return out;
}

/** SIGUSR1's whole counters line. */
async function countersLine(d: Daemon): Promise<LogLine> {
  const before = d.lines.length;
  d.proc.kill('SIGUSR1');
  return d.waitFor((l) => l.msg === 'counters' && d.lines.indexOf(l) >= before);
}

interface ShardSample {
  cpuS: number;
  passiveOpens: number;
  txBytes: number;
}

/** Each shard's CPU seconds, connections accepted and bytes sent so far. */
async function sample(d: Daemon, shards: number): Promise<ShardSample[]> {
  const line = await countersLine(d);
  if (shards > 1) {
    const rows = line.shards as { cpu: { user: number; system: number }; counters: Record<string, Record<string, unknown>> }[];
    return rows.map((r) => ({
      cpuS: r.cpu.user + r.cpu.system,
      passiveOpens: (r.counters.Tcp as Record<string, number>).PassiveOpens,
      txBytes: (r.counters.Link as Record<string, Record<string, number>>).tap0.tx_bytes,
    }));
  }
  // The single event loop: the daemon's main thread (its tid is its pid).
  const pid = d.proc.pid!;
  const st = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  const c = line.counters as Record<string, Record<string, unknown>>;
  return [
    {
      cpuS: (Number(f[11]) + Number(f[12])) / USER_HZ,
      passiveOpens: (c.Tcp as Record<string, number>).PassiveOpens,
      txBytes: (c.Link as Record<string, Record<string, number>>).tap0.tx_bytes,
    },
  ];
}

async function stackRun(spaces: Netns[], shards: number): Promise<ShardsRun> {
  const st = new Netns(`benchsh${shards}`);
  spaces.push(st);
  const api = join(st.dir, 'api.sock');
  const d = await st.startDaemon([
    '--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'none', '--host-ipv6', 'none',
    '--log-level', 'info', '--api', api, '--tap-lost', 'exit', '--shards', String(shards),
  ]);
  wrkClientSide(st);
  // Warm up (JIT, ARP in every shard) before anything is counted.
  wrkClose(st, 'http://10.0.0.2/bytes/64');
  const s0 = await sample(d, shards);
  const connRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) connRuns.push(wrkClose(st, 'http://10.0.0.2/bytes/64'));
  const s1 = await sample(d, shards);
  const manyFlowGbps = manyFlows(st, `http://10.0.0.2/bytes/${FLOW_BYTES}`, FLOW_BYTES);
  const s2 = await sample(d, shards);
  const preload = await preloadRuns(st, api);
  await d.stop();
  st.destroy();
  const perShard = s0.map((a, i) => {
    const conns = s1[i].passiveOpens - a.passiveOpens;
    const connCpuS = s1[i].cpuS - a.cpuS;
    const txBytes = s2[i].txBytes - s1[i].txBytes;
    const bulkCpuS = s2[i].cpuS - s1[i].cpuS;
    return { conns, connCpuS, cpuPerConnUs: conns ? (connCpuS / conns) * 1e6 : NaN, txBytes, bulkCpuS, cpuPerGbS: txBytes ? bulkCpuS / (txBytes / 1e9) : NaN };
  });
  return { shards, connPerS: median(connRuns), connRuns, preload, manyFlowGbps, perShard };
}

export async function shardsBench(spaces: Netns[]): Promise<ShardsBench> {
  // The kernel: nginx on one side of a veth pair, wrk and curl on the other.
  const a = new Netns('benchka');
  const b = new Netns('benchkb');
  spaces.push(a, b);
  a.veth(b, ['10.9.0.1/24'], ['10.9.0.2/24']);
  wrkClientSide(a);
  let ng = await startNginx(b, '10.9.0.2', 1);
  wrkClose(a, 'http://10.9.0.2/small');
  const k1: number[] = [];
  for (let i = 0; i < RUNS; i++) k1.push(wrkClose(a, 'http://10.9.0.2/small'));
  ng.kill('SIGTERM');
  await b.until(`! ss -Hltn 'sport = :80' | grep -q .`, 'nginx (1 worker) gone');
  ng = await startNginx(b, '10.9.0.2', 2);
  wrkClose(a, 'http://10.9.0.2/small');
  const k2: number[] = [];
  for (let i = 0; i < RUNS; i++) k2.push(wrkClose(a, 'http://10.9.0.2/small'));
  const kFlows = manyFlows(a, 'http://10.9.0.2/big', FLOW_BYTES);
  ng.kill('SIGTERM');
  const stack: ShardsRun[] = [];
  for (const n of [1, 2]) stack.push(await stackRun(spaces, n));
  return {
    seconds: HTTP_SECONDS,
    runs: RUNS,
    flows: FLOWS,
    flowBytes: FLOW_BYTES,
    kernel1: { connPerS: median(k1), connRuns: k1 },
    kernel2: { connPerS: median(k2), connRuns: k2, manyFlowGbps: kFlows },
    stack,
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');

export function printShards(r: ShardsBench): void {
  const one = r.stack[0];
  console.log(
    `\nstack shards (HTTP Connection: close, wrk -t2 -c64, median of ${r.runs} x ${r.seconds} s; ${r.flows} downloads of ${(r.flowBytes / 1048576).toFixed(0)} MiB at once; kernel = nginx over veth, same run; load ${r.loadavg})\n`,
  );
  console.log('| | conn/s | vs 1 shard | vs nginx, same workers | many-flow Gbit/s | vs nginx 2 workers |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(`| nginx, 1 worker | ${fmt(r.kernel1.connPerS, 0)} | | | | |`);
  console.log(`| nginx, 2 workers | ${fmt(r.kernel2.connPerS, 0)} | | | ${fmt(r.kernel2.manyFlowGbps)} | |`);
  for (const s of r.stack) {
    const k = s.shards === 1 ? r.kernel1 : r.kernel2;
    console.log(
      `| tapstack, ${s.shards} shard${s.shards > 1 ? 's' : ''} | ${fmt(s.connPerS, 0)} | ${fmt(s.connPerS / one.connPerS, 3)} | ${fmt(s.connPerS / k.connPerS, 3)} | ${fmt(s.manyFlowGbps)} | ${fmt(s.manyFlowGbps / r.kernel2.manyFlowGbps, 3)} |`,
    );
  }
  for (const workers of [1, 2]) {
    const k = workers === 1 ? r.kernel1 : r.kernel2;
    const base = one.preload.find((x) => x.workers === workers);
    for (const s of r.stack) {
      const x = s.preload.find((y) => y.workers === workers);
      if (!x || !base) continue;
      console.log(
        `| nginx through the preload, ${workers} worker${workers > 1 ? 's' : ''}, ${s.shards} shard${s.shards > 1 ? 's' : ''} | ${fmt(x.connPerS, 0)} | ${fmt(x.connPerS / base.connPerS, 3)} | ${fmt(x.connPerS / k.connPerS, 3)} | | |`,
      );
    }
  }
  console.log('\n| shards | shard | connections | CPU us per connection | vs 1 shard | GB sent | CPU s per GB | vs 1 shard |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const s of r.stack) {
    s.perShard.forEach((p, i) =>
      console.log(
        `| ${s.shards} | ${i} | ${p.conns} | ${fmt(p.cpuPerConnUs, 1)} | ${fmt(p.cpuPerConnUs / one.perShard[0].cpuPerConnUs, 3)} | ${fmt(p.txBytes / 1e9, 3)} | ${fmt(p.cpuPerGbS)} | ${fmt(p.cpuPerGbS / one.perShard[0].cpuPerGbS, 3)} |`,
      ),
    );
  }
  console.log(`\nper run, conn/s: nginx 1 worker ${r.kernel1.connRuns.map((x) => fmt(x, 0)).join(' ')}; nginx 2 workers ${r.kernel2.connRuns.map((x) => fmt(x, 0)).join(' ')}; ` + r.stack.map((s) => `${s.shards} shard(s) ${s.connRuns.map((x) => fmt(x, 0)).join(' ')}, nginx through the preload ${s.preload.map((x) => `${x.workers} worker(s) ${x.connRuns.map((y) => fmt(y, 0)).join(' ')}`).join(', ')}`).join('; '));
}
