/**
 * `npm run bench`: every figure measured in this run, next to the Linux
 * kernel doing the same work, as a ratio (the machines are shared and
 * noisy: a bare time means little, a same-run ratio does).
 *
 *   - bulk TCP kernel -> stack and stack -> kernel, with the stack's side
 *     in-process (discard, GET /bytes/N) and through the syscall API (a
 *     client-library server), vs kernel -> kernel over veth
 *   - 1-byte request/response transactions per second (in-process echo,
 *     client-library echo) vs a kernel echo server over veth
 *     (BENCH_BUSY_READ=µs adds the rows over rings with the echo servers
 *     busy-reading, TAPSTACK_BUSY_READ; the other rows never busy-read)
 *   - the client-library rows twice: over the data descriptors' socketpairs
 *     (TAPSTACK_RINGS=0, the rows' names as before) and over the shared-memory
 *     data rings ("over rings"), the same servers in the same run
 *   - HTTP/1.1 requests per second with `Connection: close` (a connection
 *     each) and with keep-alive, the built-in server vs nginx on the kernel
 *     (one process: the stack is one thread), wrk as the client (skipped
 *     with a note when wrk or nginx is not installed)
 *   - the preload rows: the kernel baseline's own programs (the python
 *     sink, GET /bytes/N and echo servers; nginx) run unmodified on the
 *     stack through `tapstack run`, next to the same programs on the kernel;
 *     the python rows and nginx's twice, reading from the socketpairs
 *     ("over the socketpair", TAPSTACK_PRELOAD_RINGS=0) and from the down
 *     rings ("over rings", TAPSTACK_PRELOAD_RINGS=1),
 *     the same programs in the same run
 *   - system CPU seconds per gigabyte moved, same transfers; for the
 *     preload rows also the daemon's own CPU per gigabyte and the program's
 *     (the python sink or GET /bytes/N server through `tapstack run`, next to
 *     the same program on the kernel), and for the client-library rows the
 *     api_server's own (next to the kernel's python sink or server)
 *   - UDP loss: 1400-byte datagrams at 500 Mbit/s (paced) from the kernel
 *     into the kernel baseline's python receiver run unmodified on the stack
 *     through the preload, next to the same receiver on the kernel over
 *     veth: the share lost and the rate delivered, the median of
 *     BENCH_UDP_RUNS runs (default 3) of BENCH_UDP_COUNT datagrams (default
 *     200 000; BENCH_UDP_MBPS changes the rate). Part `udp`.
 *   - memory per idle established connection (RSS and JS heap) at
 *     BENCH_IDLE connections (default 10 000 and 100 000); the daemon runs
 *     with --expose-gc so its counters line collects garbage first and
 *     the heap figure is live memory (BENCH_PARTS=idle runs just this part).
 *   - established-hash lookup at 1 / 1 000 / 100 000 connections
 *   - goodput stack -> kernel under loss 1% and 20 ms delay (tapstackd --fault)
 *     vs kernel -> kernel through the same FaultLine (bench/tools/fault_relay:
 *     two TAPs, one per namespace, bridged in-process), since this kernel has
 *     no sch_netem. Both senders run CUBIC (the kernel's per socket: this
 *     machine's default is bbr, which ignores random loss and is no peer for
 *     a loss-based algorithm). Under random loss one transfer varies several
 *     fold with where the drops fall, so each side runs BENCH_FAULT_RUNS
 *     times (default 3) and the median is compared. BENCH_FAULT changes the
 *     impairment, BENCH_FAULT_BYTES the size; BENCH_FAULT_ONLY=1 runs just
 *     this part.
 *
 *   - handshake latency under a spoofed SYN flood, the stack over its TAP
 *     vs Linux over veth (bench/synflood.ts; BENCH_SYNFLOOD_SECONDS,
 *     BENCH_SYNFLOOD_PPS)
 *   - the stack with 1 and 2 shards (tapstackd --shards): HTTP Connection:
 *     close conn/s and many-flow throughput next to nginx with 1 and 2
 *     workers, each shard's CPU per connection and per GB (bench/shards.ts;
 *     part `shards`, not in the default set)
 *
 * Each bulk transfer is BENCH_BYTES (default 2 GiB, long enough for steady
 * state) and each bulk figure the median of BENCH_BULK_RUNS runs (default 3).
 *
 * BENCH_PARTS (comma-separated, default all) runs only some parts:
 * fault, synflood, bulk, bulk6, rr, udp, http, idle, lookup (and shards, not in the default set; bulk-rx / bulk-tx: one
 * direction of bulk alone, for a profile of it). BENCH_PROF=DIR starts the
 * stack's daemon under `node --cpu-prof --cpu-prof-dir=DIR` (the profile is
 * written when it stops), for finding where the time goes.
 *
 * Everything that sends packets runs in namespaces created here and removed
 * on exit, with every transfer bounded in size and time. Needs root.
 * Results also go to bench/results.json.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Netns, ROOT, integrationUnavailable, type Daemon } from '../test/integration/netns.js';
import { benchLookup, benchLookup6 } from './lookup.js';
import { Client } from '../src/client/index.js';
import { printSynFlood, synFloodBench, type SynFloodBench } from './synflood.js';
import { printShards, shardsBench, type ShardsBench } from './shards.js';
import { wrkClientSide } from './wrk.js';

const TOOLS = join(ROOT, 'bench', 'tools');
const API_SERVER = join(ROOT, 'dist', 'bench', 'tools', 'api_server.js');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** The LD_PRELOAD library (`tapstack run`): its rows run the kernel baseline's own programs over the stack. */
const PRELOAD = existsSync(join(ROOT, 'build', 'Release', 'tapstack_preload.so'));
// Long enough for steady state: at 256 MiB the kernel's own transfer lasted about 0.1 s, mostly
// slow start and buffer autotuning, and the ratios measured the ramp rather than the stack.
const BYTES = Number(process.env.BENCH_BYTES ?? 2 * 1024 * 1024 * 1024);
const RR_SECONDS = Number(process.env.BENCH_RR_SECONDS ?? 3);
/**
 * BENCH_BUSY_READ=µs: the request/response rows over rings once more with
 * busy reading on in the echo servers (TAPSTACK_BUSY_READ, docs/api.md);
 * unset or 0, no such rows (the other rows never busy-read).
 */
const BUSY_READ = Math.max(0, Math.floor(Number(process.env.BENCH_BUSY_READ ?? 0)) || 0);
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 3);
const IDLE = (process.env.BENCH_IDLE ?? '10000,100000').split(',').map(Number).filter((n) => n > 0);
const TIMEOUT_S = 120;
/** How long the idle part waits for its connections to be established. */
const HOLD_S = 400;
const PARTS = new Set((process.env.BENCH_PARTS ?? 'fault,synflood,bulk,bulk6,rr,udp,http,idle,lookup').split(',').map((p) => p.trim()));
const PROF = process.env.BENCH_PROF;

interface Row {
  name: string;
  unit: string;
  stack: number;
  kernel: number;
  ratio: number;
}

function gbps(bytes: number, seconds: number): number {
  return (bytes * 8) / seconds / 1e9;
}

function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** Busy jiffies of the whole machine (every CPU), for CPU per gigabyte. */
function busyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait.
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
}
const HZ = 100;

interface Measured {
  gbps: number;
  cpuPerGb: number;
  /** The stack daemon's own CPU seconds (user + system) per gigabyte: less noisy than the machine's. */
  daemonCpuPerGb: number;
  /** Of that, the system (kernel) part: TAP reads and writes, the API's socketpairs. */
  daemonSysPerGb: number;
  /** The measured program's own CPU seconds per gigabyte (progPid; NaN when none was named). */
  progCpuPerGb: number;
}

/** The process whose CPU time measure() reports as daemonCpuPerGb (the stack's daemon). */
let daemonPid = 0;
/** The program whose CPU time measure() reports as progCpuPerGb (0: none). */
let progPid = 0;

/** measure() of `run` with the program `pid`'s CPU time as progCpuPerGb. */
function withProg<T>(pid: number, run: () => T): T {
  progPid = pid;
  try {
    return run();
  } finally {
    progPid = 0;
  }
}

/**
 * The python program a background server command runs: the process itself
 * on the kernel, the child of `tapstack run` (node) through the preload.
 */
function pythonOf(pid: number | undefined): number {
  if (!pid) return 0;
  const comm = (p: number | string) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  if (comm(pid).startsWith('python')) return pid;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid && comm(d).startsWith('python')) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

/** [utime, stime] of a process, in jiffies (0 when it is gone). */
function procTicks(pid: number): [number, number] {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return [Number(rest[11]), Number(rest[12])];
  } catch {
    return [0, 0];
  }
}

/** Runs per bulk figure; the median is reported (one transfer varies by a third with the machine's other load). */
const BULK_RUNS = Math.max(1, Math.min(9, Number(process.env.BENCH_BULK_RUNS ?? 3)));

function measure(bytes: number, run: () => number): Measured {
  const runs: Measured[] = [];
  for (let i = 0; i < BULK_RUNS; i++) runs.push(measureOnce(bytes, run));
  runs.sort((a, b) => a.gbps - b.gbps);
  return runs[runs.length >> 1];
}

function measureOnce(bytes: number, run: () => number): Measured {
  const t0 = busyTicks();
  const d0 = procTicks(daemonPid);
  const p0 = procTicks(progPid);
  const seconds = run();
  const cpu = (busyTicks() - t0) / HZ;
  const d1 = procTicks(daemonPid);
  const p1 = procTicks(progPid);
  const gb = bytes / 1e9;
  return {
    gbps: gbps(bytes, seconds),
    cpuPerGb: cpu / gb,
    daemonCpuPerGb: (d1[0] + d1[1] - d0[0] - d0[1]) / HZ / gb,
    daemonSysPerGb: (d1[1] - d0[1]) / HZ / gb,
    progCpuPerGb: progPid ? (p1[0] + p1[1] - p0[0] - p0[1]) / HZ / gb : NaN,
  };
}

function jsonLast(out: string): Record<string, number> {
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
}

function sourceRun(ns: Netns, host: string, port: number): Measured {
  return measure(BYTES, () => jsonLast(ns.ok(`python3 ${TOOLS}/tcp_source.py ${host} ${port} ${BYTES} ${TIMEOUT_S}`, (TIMEOUT_S + 10) * 1000)).seconds);
}

function readRun(ns: Netns, host: string, port: number): Measured {
  return measure(BYTES, () => {
    const r = jsonLast(ns.ok(`python3 ${TOOLS}/tcp_read.py ${host} ${port} ${TIMEOUT_S}`, (TIMEOUT_S + 10) * 1000));
    if (r.bytes !== BYTES) throw new Error(`${host}:${port}: got ${r.bytes} bytes, expected ${BYTES}`);
    return r.seconds;
  });
}

function curlRun(ns: Netns, url: string): Measured {
  return measure(BYTES, () => {
    const out = ns.ok(`curl -sS --max-time ${TIMEOUT_S} -o /dev/null -w '%{size_download} %{time_total}' ${url}`, (TIMEOUT_S + 10) * 1000);
    const [size, secs] = out.trim().split(/\s+/).map(Number);
    if (size !== BYTES) throw new Error(`${url}: got ${size} bytes, expected ${BYTES}`);
    return secs;
  });
}

function rrRun(ns: Netns, host: string, port: number): number {
  const r = jsonLast(ns.ok(`python3 ${TOOLS}/tcp_rr.py ${host} ${port} ${RR_SECONDS}`, (RR_SECONDS + 20) * 1000));
  return r.transactions / r.seconds;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** wrk's requests per second; any error or non-2xx answer fails the bench (a fast wrong answer is no result). */
function wrkRun(ns: Netns, url: string, close: boolean): number {
  const out = ns.ok(`wrk -t1 -c32 -d${HTTP_SECONDS}s --timeout 5s ${close ? "-H 'Connection: close'" : ''} ${url}`, (HTTP_SECONDS + 30) * 1000);
  if (/Non-2xx|Socket errors: connect [1-9]|read [1-9]|timeout [1-9]/.test(out)) throw new Error(`wrk ${url}: errors\n${out}`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk ${url}: no result\n${out}`);
  return Number(m[1]);
}

/**
 * nginx, one process (master_process off: the stack is one thread, so one
 * nginx process on each side keeps the two comparable; workers forked by a
 * master work through the preload too, but accept one connection per round
 * trip on the shared listener), serving `body` at /small; `prefix` runs it
 * through `tapstack run`.
 */
function startNginx(ns: Netns, addr: string, port: number, body: Buffer, prefix = ''): ReturnType<Netns['background']> {
  const dir = join(ns.dir, prefix ? `nginx-preload-${port}` : 'nginx');
  mkdirSync(join(dir, 'www'), { recursive: true });
  writeFileSync(join(dir, 'www', 'small'), body);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `user root; worker_processes 1; daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;\n` +
      `events { worker_connections 4096; }\n` +
      `http { access_log off; keepalive_requests 1000000; default_type application/octet-stream;\n` +
      `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};\n` +
      `  server { listen ${addr}:${port}; root ${dir}/www; } }\n`,
  );
  return ns.background(`${prefix}nginx -c ${dir}/nginx.conf -p ${dir}`);
}

/** Goodput of one curl download, Gbit/s. */
function curlGbps(ns: Netns, url: string, bytes: number): number {
  const out = ns.ok(`curl -sS --max-time ${TIMEOUT_S} -o /dev/null -w '%{size_download} %{time_total}' ${url}`, (TIMEOUT_S + 10) * 1000);
  const [size, secs] = out.trim().split(/\s+/).map(Number);
  if (size !== bytes) throw new Error(`${url}: got ${size} bytes, expected ${bytes}`);
  return gbps(size, secs);
}

const FAULT = process.env.BENCH_FAULT ?? 'loss=1%,delay=20ms';
const FAULT_BYTES = Number(process.env.BENCH_FAULT_BYTES ?? 8 * 1024 * 1024);
const FAULT_RUNS = Math.max(1, Math.min(9, Number(process.env.BENCH_FAULT_RUNS ?? 3)));
/** The algorithm both senders run in the loss bench. */
const FAULT_CC = 'cubic';

/**
 * One transfer under the impairment, Mbit/s. A run that does not finish
 * within the bench's time limit (possible at high loss, for Linux too: RTO
 * backoff) counts as 0 rather than ending the bench; the median absorbs it.
 */
function faultRun(ns: Netns, url: string): number {
  try {
    return curlGbps(ns, url, FAULT_BYTES) * 1000;
  } catch (e) {
    console.error(`bench: ${url} under ${FAULT}: ${(e as Error).message.split('\n')[0]}; counted as 0`);
    return 0;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}
const RELAY = join(ROOT, 'dist', 'bench', 'tools', 'fault_relay.js');

interface FaultBench {
  fault: string;
  bytes: number;
  cc: string;
  runs: number;
  stackMbps: number;
  kernelMbps: number;
  stackRuns: number[];
  kernelRuns: number[];
  ratio: number;
}

/** Goodput of GET /bytes/N under the impairment: the stack as sender, then kernel to kernel through the relay. */
async function faultBench(spaces: Netns[]): Promise<FaultBench> {
  const st = new Netns('benchf');
  spaces.push(st);
  const d = await st.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--log-level', 'info', '--fault', FAULT]);
  const stackRuns: number[] = [];
  for (let i = 0; i < FAULT_RUNS; i++) stackRuns.push(faultRun(st, `http://10.0.0.2/bytes/${FAULT_BYTES}`));
  await d.stop();

  const r = new Netns('benchr');
  const a = new Netns('benchfa');
  const b = new Netns('benchfb');
  spaces.push(r, a, b);
  const relay = r.background(`${process.execPath} ${RELAY} fa fb ${FAULT} ${TIMEOUT_S * 2}`);
  await waitListening(relay, 'ready');
  // The descriptors stay attached while the devices move to the two kernels' namespaces.
  r.ok(`ip link set fa netns ${a.name} && ip link set fb netns ${b.name}`);
  a.ok('ip addr add 10.8.0.1/24 dev fa && ip link set fa up');
  b.ok('ip addr add 10.8.0.2/24 dev fb && ip link set fb up');
  const http = b.background(`python3 ${TOOLS}/bytes_http.py 10.8.0.2 80 ${FAULT_CC}`);
  await waitListening(http);
  const kernelRuns: number[] = [];
  for (let i = 0; i < FAULT_RUNS; i++) kernelRuns.push(faultRun(a, `http://10.8.0.2/bytes/${FAULT_BYTES}`));
  const stackMbps = median(stackRuns);
  const kernelMbps = median(kernelRuns);
  return { fault: FAULT, bytes: FAULT_BYTES, cc: FAULT_CC, runs: FAULT_RUNS, stackMbps, kernelMbps, stackRuns, kernelRuns, ratio: stackMbps / kernelMbps };
}

/**
 * Wait (bounded) until something accepts a TCP connection on [addr]:port from `ns`: a server that
 * has started listening, or the stack's IPv6 address once it passed DAD.
 */
async function waitTcp(ns: Netns, addr: string, port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (ns.sh(`python3 -c "import socket; socket.create_connection(('${addr}', ${port}), timeout=1).close()"`).status === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`[${addr}]:${port} did not accept within 10 s`);
}

async function waitListening(p: ReturnType<Netns['background']> | import('node:child_process').ChildProcess, word = 'listening'): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    // Twelve servers start at once on a shared 2-core machine (node, python, the preload's API connection each).
    const t = setTimeout(() => reject(new Error('server did not start')), 30_000);
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes(word)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

/** The daemon's RSS and JS heap, from its SIGUSR1 counters line. */
async function daemonMemory(d: Daemon): Promise<{ rss: number; heapUsed: number; external: number; arrayBuffers: number }> {
  const before = d.lines.length;
  d.proc.kill('SIGUSR1');
  const line = await d.waitFor((l) => l.msg === 'counters' && d.lines.indexOf(l) >= before);
  return line.memory as { rss: number; heapUsed: number; external: number; arrayBuffers: number };
}

/**
 * Hold `n` idle established connections and report the daemon's memory per
 * connection. They sit in the accept queue of a listener (made through the
 * API, with somaxconn raised) that never accepts: full established sockets
 * with nothing else attached, so the figure is the stack's own cost.
 */
async function idleMemory(ns: Netns, d: Daemon, api: string, n: number): Promise<{ n: number; held: number; rssPerConn: number; heapPerConn: number }> {
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  await c.sysctl(`net.core.somaxconn=${n + 1024}`);
  const l = (await c.socket()).fd;
  await c.bind(l, { family: 2, addr: '0.0.0.0', port: 9100 });
  await c.listen(l, n + 1024);
  const m0 = await daemonMemory(d);
  // One process may hold ~20 000 descriptors here and one source address ~28 000 ports:
  // holders of 18 000 connections each, each from its own address.
  const per = 18_000;
  const holders: ReturnType<Netns['background']>[] = [];
  for (let i = 0, left = n; left > 0; i++, left -= per) {
    const a = `10.0.0.${101 + i}`;
    ns.sh(`ip addr add ${a}/24 dev tap0 2>/dev/null`);
    // Held until killed below; 600 s only bounds a holder the bench failed to kill.
    holders.push(ns.background(`python3 ${TOOLS}/tcp_hold.py 10.0.0.2 9100 ${Math.min(per, left)} 600 ${a}`));
  }
  try {
    await Promise.all(
      holders.map(
        (p) =>
          new Promise<number>((resolve, reject) => {
            // 100 000 handshakes take a while on a busy 2-CPU machine.
            const t = setTimeout(() => reject(new Error(`idle connections: not held within ${HOLD_S} s`)), HOLD_S * 1000);
            let out = '';
            p.stderr!.on('data', (ch: Buffer) => (out += ch.toString()));
            p.stdout!.on('data', (ch: Buffer) => {
              out += ch.toString();
              const m = /held (\d+)/.exec(out);
              if (m) {
                clearTimeout(t);
                resolve(Number(m[1]));
              }
            });
            p.on('exit', () => reject(new Error(`tcp_hold exited: ${out}`)));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    // What the stack holds, not what the client thinks it holds.
    const rows = await c.sockets();
    const held = rows.filter((r) => r.state === 'ESTABLISHED' && r.local.endsWith(':9100')).length;
    if (held === 0) {
      const states: Record<string, number> = {};
      for (const r of rows) states[`${r.state} ${r.local}`] = (states[`${r.state} ${r.local}`] ?? 0) + 1;
      throw new Error(`no established connection on :9100 (the stack holds ${JSON.stringify(states)})`);
    }
    const m1 = await daemonMemory(d);
    return { n, held, rssPerConn: (m1.rss - m0.rss) / held, heapPerConn: (m1.heapUsed + m1.external - m0.heapUsed - m0.external) / held };
  } finally {
    for (const p of holders) p.kill('SIGKILL');
    await c.closeFd(l).catch(() => {});
    c.close();
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const UDP_COUNT = Number(process.env.BENCH_UDP_COUNT ?? 200_000);
const UDP_MBPS = Number(process.env.BENCH_UDP_MBPS ?? 500);
const UDP_SIZE = 1400;
const UDP_RUNS = Math.max(1, Math.min(9, Number(process.env.BENCH_UDP_RUNS ?? 3)));

interface UdpRun {
  /** Percent of the datagrams sent that the receiver did not get. */
  loss: number;
  /** Payload Mbit/s delivered to the receiver (first to last datagram). */
  mbps: number;
}

/**
 * One paced run of UDP_COUNT datagrams from `from` to a python receiver
 * started by `recv` (the same program on the kernel and, through the
 * preload, on the stack); every step bounded in time.
 */
async function udpRun(from: Netns, recv: () => ReturnType<Netns['background']>, host: string, port: number): Promise<UdpRun> {
  const limit = Math.ceil((UDP_COUNT * UDP_SIZE * 8) / (UDP_MBPS * 1e6)) + 30;
  const r = recv();
  let out = '';
  r.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((resolve) => r.on('exit', () => resolve()));
  await waitListening(r);
  const sent = jsonLast(from.ok(`python3 ${TOOLS}/udp_source.py ${host} ${port} ${UDP_COUNT} ${UDP_SIZE} ${UDP_MBPS} ${limit}`, (limit + 10) * 1000));
  await Promise.race([done, new Promise((res) => setTimeout(res, 15_000))]);
  r.kill('SIGKILL');
  if (!out.includes('{')) throw new Error(`UDP receiver on ${host}:${port} reported nothing (sender: ${JSON.stringify(sent)})`);
  const got = jsonLast(out);
  return { loss: (100 * (sent.sent - got.received)) / sent.sent, mbps: got.seconds > 0 ? (got.bytes * 8) / got.seconds / 1e6 : 0 };
}

/** The UDP loss rows: the kernel's receiver over veth and the same one on the stack alternate, BENCH_UDP_RUNS each. */
async function udpLoss(st: Netns, a: Netns, b: Netns, run: string): Promise<Row[]> {
  const k: UdpRun[] = [];
  const s: UdpRun[] = [];
  // The receiver ends when UDP_COUNT have come, or after 1 s without one.
  const sink = (host: string, port: number) => `python3 ${TOOLS}/udp_sink.py ${host} ${port} ${UDP_COUNT} 1 ${Math.ceil((UDP_COUNT * UDP_SIZE * 8) / (UDP_MBPS * 1e6)) + 60}`;
  for (let i = 0; i < UDP_RUNS; i++) {
    k.push(await udpRun(a, () => b.background(sink('10.9.0.2', 5001 + i)), '10.9.0.2', 5001 + i));
    s.push(await udpRun(st, () => st.background(`${run}${sink('10.0.0.2', 5101 + i)}`), '10.0.0.2', 5101 + i));
  }
  const ml = (xs: UdpRun[]) => median(xs.map((x) => x.loss));
  const mr = (xs: UdpRun[]) => median(xs.map((x) => x.mbps));
  const what = `UDP ${UDP_SIZE}-byte datagrams at ${UDP_MBPS} Mbit/s into a python receiver, preload`;
  console.error(`bench: ${what}: lost % per run: stack ${s.map((x) => fmt(x.loss, 3)).join(' ')}; kernel ${k.map((x) => fmt(x.loss, 3)).join(' ')}`);
  return [
    // Lower is better: the ratio is (100 - stack loss) / (100 - kernel loss), the share delivered.
    { name: what, unit: '% lost', stack: ml(s), kernel: ml(k), ratio: (100 - ml(s)) / (100 - ml(k)) },
    { name: `${what}, delivered rate`, unit: 'Mbit/s', stack: mr(s), kernel: mr(k), ratio: mr(s) / mr(k) },
  ];
}

async function main(): Promise<void> {
  const why = integrationUnavailable();
  if (why) {
    console.error(`bench: ${why.replace('integration tests', 'the bench')}`);
    process.exit(1);
  }
  // The bench's daemons run with their own default memory cap (a quarter of the machine), not the tests' 1 GiB.
  process.env.TAPSTACK_TEST_MEMORY = 'default';
  // The daemons inherit it: their SIGUSR1 counters then report memory after a full GC.
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --expose-gc`.trim();
  const results: Record<string, unknown> = { date: new Date().toISOString(), bytes: BYTES };
  const rows: Row[] = [];
  const cpu: Row[] = [];
  const idle: Awaited<ReturnType<typeof idleMemory>>[] = [];
  const spaces: Netns[] = [];
  const cleanup = () => spaces.forEach((n) => n.destroy());
  process.on('exit', cleanup);
  let fb: FaultBench | null = null;
  if (PARTS.has('fault')) {
    try {
      fb = await faultBench(spaces);
    } finally {
      cleanup();
      spaces.length = 0;
    }
  }
  results.fault = fb;
  const printFault = () => {
    console.log(
      `\ngoodput under ${fb!.fault} (${(fb!.bytes / 1048576).toFixed(0)} MiB GET /bytes/N, median of ${fb!.runs}; both senders ${fb!.cc}; kernel = Linux to Linux through the same fault line, same run)\n`,
    );
    console.log('| sender | tapstack Mbit/s | kernel Mbit/s | ratio |');
    console.log('| --- | ---: | ---: | ---: |');
    console.log(`| stack -> kernel | ${fmt(fb!.stackMbps, 1)} | ${fmt(fb!.kernelMbps, 1)} | ${fmt(fb!.ratio, 3)} |`);
    console.log(`\nper run, Mbit/s: tapstack ${fb!.stackRuns.map((x) => fmt(x, 1)).join(' ')}; kernel ${fb!.kernelRuns.map((x) => fmt(x, 1)).join(' ')}`);
  };
  let sf: SynFloodBench | null = null;
  if (PARTS.has('synflood')) {
    try {
      sf = await synFloodBench(spaces);
    } finally {
      cleanup();
      spaces.length = 0;
    }
  }
  results.synflood = sf;
  let sh: ShardsBench | null = null;
  if (PARTS.has('shards')) {
    try {
      sh = await shardsBench(spaces);
    } finally {
      cleanup();
      spaces.length = 0;
    }
  }
  results.shards = sh;
  // Parts that bring their own namespaces: asked for alone, nothing else is set up.
  if (process.env.BENCH_FAULT_ONLY === '1' || [...PARTS].every((p) => p === 'fault' || p === 'synflood' || p === 'shards')) {
    if (fb) printFault();
    if (sf) printSynFlood(sf);
    if (sh) printShards(sh);
    if (!fb && !sf && !sh) return;
    writeFileSync(join(ROOT, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
    return;
  }
  try {
    // The stack on a TAP, the kernel on the other side of it.
    const st = new Netns('bench');
    spaces.push(st);
    const api = join(st.dir, 'api.sock');
    // BENCH_PROF: only the daemon is profiled (spawn passes our environment on).
    if (PROF) process.env.TAPSTACK_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${PROF}`;
    const daemon = await st.startDaemon([
      '--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64',
      '--log-level', 'info', '--api', api,
    ]);
    delete process.env.TAPSTACK_NODE_ARGS;
    daemonPid = daemon.proc.pid ?? 0;
    // The kernel twice, over a veth pair between two namespaces.
    const a = new Netns('bencha');
    const b = new Netns('benchb');
    spaces.push(a, b);
    a.veth(b, ['10.9.0.1/24', 'fd09::1/64'], ['10.9.0.2/24', 'fd09::2/64']);
    const sink = b.background(`python3 ${TOOLS}/tcp_sink.py 10.9.0.2 9`);
    const sink6 = b.background(`python3 ${TOOLS}/tcp_sink.py fd09::2 9`);
    const http = b.background(`python3 ${TOOLS}/bytes_http.py 10.9.0.2 80`);
    const http6 = b.background(`python3 ${TOOLS}/bytes_http.py fd09::2 80`);
    const kecho = b.background(`python3 ${TOOLS}/tcp_echo.py 10.9.0.2 7`);
    await Promise.all([sink, sink6, http, http6, kecho].map((p) => waitListening(p)));
    // Client-library servers: their own processes, as applications would be.
    const { spawn } = await import('node:child_process');
    // The existing rows' servers on the socketpairs (as they always measured); the same over rings 200 ports up.
    const pairEnv = { ...process.env, TAPSTACK_RINGS: '0' };
    const ringEnv = { ...process.env, TAPSTACK_RINGS: '1' };
    const apiProcs: import('node:child_process').ChildProcess[] = [
      spawn(process.execPath, [API_SERVER, api, 'sink', '9009'], { stdio: ['ignore', 'pipe', 'inherit'], env: pairEnv }),
      spawn(process.execPath, [API_SERVER, api, 'source', '9019', String(BYTES)], { stdio: ['ignore', 'pipe', 'inherit'], env: pairEnv }),
      spawn(process.execPath, [API_SERVER, api, 'echo', '9007'], { stdio: ['ignore', 'pipe', 'inherit'], env: pairEnv }),
      spawn(process.execPath, [API_SERVER, api, 'sink', '9209'], { stdio: ['ignore', 'pipe', 'inherit'], env: ringEnv }),
      spawn(process.execPath, [API_SERVER, api, 'source', '9219', String(BYTES)], { stdio: ['ignore', 'pipe', 'inherit'], env: ringEnv }),
      spawn(process.execPath, [API_SERVER, api, 'echo', '9207'], { stdio: ['ignore', 'pipe', 'inherit'], env: ringEnv }),
    ];
    // The kernel baseline's own python servers, unmodified, over the stack through the preload.
    const run = `${process.execPath} ${CLI} run --api ${api} -- `;
    // Each setting named in the command (and the row), whatever the library's default: the socketpair rows, and
    // the same programs reading through rings 200 ports up.
    const runPair = `env TAPSTACK_PRELOAD_RINGS=0 ${run}`;
    const runRing = `env TAPSTACK_PRELOAD_RINGS=1 ${run}`;
    let pre: ReturnType<Netns['background']>[] = [];
    if (PRELOAD) {
      pre = [
        st.background(`${runPair}python3 ${TOOLS}/tcp_sink.py 10.0.0.2 9109`),
        st.background(`${runPair}python3 ${TOOLS}/bytes_http.py 10.0.0.2 8089`),
        st.background(`${runPair}python3 ${TOOLS}/tcp_echo.py 10.0.0.2 9107`),
        st.background(`${runRing}python3 ${TOOLS}/tcp_sink.py 10.0.0.2 9309`),
        st.background(`${runRing}python3 ${TOOLS}/bytes_http.py 10.0.0.2 8289`),
        st.background(`${runRing}python3 ${TOOLS}/tcp_echo.py 10.0.0.2 9307`),
      ];
      apiProcs.push(...pre);
    } else {
      results.preloadSkipped = 'build/Release/tapstack_preload.so not built (npm ci builds it)';
      console.error(`bench: preload rows skipped: ${results.preloadSkipped}`);
    }
    if (BUSY_READ > 0 && PARTS.has('rr')) {
      // The same echo servers over rings, busy-reading: 400 ports up.
      apiProcs.push(spawn(process.execPath, [API_SERVER, api, 'echo', '9607'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...ringEnv, TAPSTACK_BUSY_READ: String(BUSY_READ) } }));
      if (PRELOAD) apiProcs.push(st.background(`env TAPSTACK_BUSY_READ=${BUSY_READ} ${runRing}python3 ${TOOLS}/tcp_echo.py 10.0.0.2 9707`));
    }
    process.on('exit', () => apiProcs.forEach((p) => p.kill('SIGKILL')));
    await Promise.all(apiProcs.map((p) => waitListening(p)));

    if (PARTS.has('bulk-rx') || PARTS.has('bulk-tx')) {
      // One direction alone (for a profile of it): in-process, then through the API.
      const rx = PARTS.has('bulk-rx');
      const k = rx ? sourceRun(a, '10.9.0.2', 9) : curlRun(a, `http://10.9.0.2/bytes/${BYTES}`);
      const s = rx ? sourceRun(st, '10.0.0.2', 9) : curlRun(st, `http://10.0.0.2/bytes/${BYTES}`);
      const api = rx ? sourceRun(st, '10.0.0.2', 9009) : readRun(st, '10.0.0.2', 9019);
      const dir = rx ? 'kernel -> stack' : 'stack -> kernel';
      rows.push({ name: `bulk ${dir}, in-process`, unit: 'Gbit/s', stack: s.gbps, kernel: k.gbps, ratio: s.gbps / k.gbps });
      rows.push({ name: `bulk ${dir}, client library (API)`, unit: 'Gbit/s', stack: api.gbps, kernel: k.gbps, ratio: api.gbps / k.gbps });
      cpu.push({ name: `daemon CPU per GB ${dir}, in-process`, unit: 'CPU s/GB', stack: s.daemonCpuPerGb, kernel: NaN, ratio: NaN });
      cpu.push({ name: `daemon CPU per GB ${dir}, client library`, unit: 'CPU s/GB', stack: api.daemonCpuPerGb, kernel: NaN, ratio: NaN });
      cpu.push({ name: `  of which system, ${dir}, in-process`, unit: 'CPU s/GB', stack: s.daemonSysPerGb, kernel: NaN, ratio: NaN });
      cpu.push({ name: `  of which system, ${dir}, client library`, unit: 'CPU s/GB', stack: api.daemonSysPerGb, kernel: NaN, ratio: NaN });
    }
    if (PARTS.has('bulk')) {
      const kIn = withProg(pythonOf(sink.pid), () => sourceRun(a, '10.9.0.2', 9));
      const sIn = sourceRun(st, '10.0.0.2', 9);
      // The client-library servers' own CPU too (apiProcs[0] the sink on the pairs, [3] over rings).
      const aIn = withProg(apiProcs[0].pid!, () => sourceRun(st, '10.0.0.2', 9009));
      const rIn = withProg(apiProcs[3].pid!, () => sourceRun(st, '10.0.0.2', 9209));
      rows.push({ name: 'bulk kernel -> stack, in-process (discard)', unit: 'Gbit/s', stack: sIn.gbps, kernel: kIn.gbps, ratio: sIn.gbps / kIn.gbps });
      rows.push({ name: 'bulk kernel -> stack, client library (API)', unit: 'Gbit/s', stack: aIn.gbps, kernel: kIn.gbps, ratio: aIn.gbps / kIn.gbps });
      rows.push({ name: 'bulk kernel -> stack, client library over rings (API)', unit: 'Gbit/s', stack: rIn.gbps, kernel: kIn.gbps, ratio: rIn.gbps / kIn.gbps });
      const pIn = PRELOAD ? withProg(pythonOf(pre[0].pid), () => sourceRun(st, '10.0.0.2', 9109)) : null;
      if (pIn) rows.push({ name: 'bulk kernel -> stack, preload over the socketpair (the same python sink)', unit: 'Gbit/s', stack: pIn.gbps, kernel: kIn.gbps, ratio: pIn.gbps / kIn.gbps });
      const qIn = PRELOAD ? withProg(pythonOf(pre[3].pid), () => sourceRun(st, '10.0.0.2', 9309)) : null;
      if (qIn) rows.push({ name: 'bulk kernel -> stack, preload over rings (the same python sink)', unit: 'Gbit/s', stack: qIn.gbps, kernel: kIn.gbps, ratio: qIn.gbps / kIn.gbps });
      const kOut = withProg(pythonOf(http.pid), () => curlRun(a, `http://10.9.0.2/bytes/${BYTES}`));
      const sOut = curlRun(st, `http://10.0.0.2/bytes/${BYTES}`);
      const aOut = withProg(apiProcs[1].pid!, () => readRun(st, '10.0.0.2', 9019));
      const rOut = withProg(apiProcs[4].pid!, () => readRun(st, '10.0.0.2', 9219));
      rows.push({ name: 'bulk stack -> kernel, in-process (GET /bytes/N)', unit: 'Gbit/s', stack: sOut.gbps, kernel: kOut.gbps, ratio: sOut.gbps / kOut.gbps });
      rows.push({ name: 'bulk stack -> kernel, client library (API)', unit: 'Gbit/s', stack: aOut.gbps, kernel: kOut.gbps, ratio: aOut.gbps / kOut.gbps });
      rows.push({ name: 'bulk stack -> kernel, client library over rings (API)', unit: 'Gbit/s', stack: rOut.gbps, kernel: kOut.gbps, ratio: rOut.gbps / kOut.gbps });
      const pOut = PRELOAD ? withProg(pythonOf(pre[1].pid), () => curlRun(st, `http://10.0.0.2:8089/bytes/${BYTES}`)) : null;
      if (pOut) rows.push({ name: 'bulk stack -> kernel, preload over the socketpair (the same python GET /bytes/N)', unit: 'Gbit/s', stack: pOut.gbps, kernel: kOut.gbps, ratio: pOut.gbps / kOut.gbps });
      const qOut = PRELOAD ? withProg(pythonOf(pre[4].pid), () => curlRun(st, `http://10.0.0.2:8289/bytes/${BYTES}`)) : null;
      if (qOut) rows.push({ name: 'bulk stack -> kernel, preload over rings (the same python GET /bytes/N)', unit: 'Gbit/s', stack: qOut.gbps, kernel: kOut.gbps, ratio: qOut.gbps / kOut.gbps });
      // CPU per gigabyte: lower is better, so the ratio is kernel / stack (1.0 = as cheap as the kernel).
      for (const [name, s, k] of [
        ['CPU per GB kernel -> stack, in-process', sIn, kIn],
        ['CPU per GB kernel -> stack, client library', aIn, kIn],
        ['CPU per GB kernel -> stack, client library over rings', rIn, kIn],
        ['CPU per GB stack -> kernel, in-process', sOut, kOut],
        ['CPU per GB stack -> kernel, client library', aOut, kOut],
        ['CPU per GB stack -> kernel, client library over rings', rOut, kOut],
      ] as const) {
        cpu.push({ name, unit: 'CPU s/GB', stack: s.cpuPerGb, kernel: k.cpuPerGb, ratio: k.cpuPerGb / s.cpuPerGb });
      }
      // The daemon alone (no kernel figure: the kernel's share is not one process).
      for (const [name, s] of [
        ['daemon CPU per GB kernel -> stack, in-process', sIn],
        ['daemon CPU per GB kernel -> stack, client library', aIn],
        ['daemon CPU per GB kernel -> stack, client library over rings', rIn],
        ['daemon CPU per GB stack -> kernel, in-process', sOut],
        ['daemon CPU per GB stack -> kernel, client library', aOut],
        ['daemon CPU per GB stack -> kernel, client library over rings', rOut],
      ] as const) {
        cpu.push({ name, unit: 'CPU s/GB', stack: s.daemonCpuPerGb, kernel: NaN, ratio: NaN });
        cpu.push({ name: `  of which system (${name.slice(18)})`, unit: 'CPU s/GB', stack: s.daemonSysPerGb, kernel: NaN, ratio: NaN });
      }
      // The client-library servers' own CPU, next to the kernel baseline's python sink and GET /bytes/N server:
      // the share of the client library, steadier than the machine's busy time on shared cores.
      for (const [name, s, k] of [
        ['program CPU per GB kernel -> stack, client library (the api_server sink; kernel: the python sink)', aIn, kIn],
        ['program CPU per GB kernel -> stack, client library over rings (the api_server sink; kernel: the python sink)', rIn, kIn],
        ['program CPU per GB stack -> kernel, client library (the api_server source; kernel: the python GET /bytes/N)', aOut, kOut],
        ['program CPU per GB stack -> kernel, client library over rings (the api_server source; kernel: the python GET /bytes/N)', rOut, kOut],
      ] as const) {
        cpu.push({ name, unit: 'CPU s/GB', stack: s.progCpuPerGb, kernel: k.progCpuPerGb, ratio: k.progCpuPerGb / s.progCpuPerGb });
      }
      // The preload rows: the whole machine, the daemon, and the program itself next to the same program on the kernel.
      for (const [dir, p, k, prog, via] of [
        ['kernel -> stack', pIn, kIn, 'the python sink', 'preload over the socketpair'],
        ['stack -> kernel', pOut, kOut, 'the python GET /bytes/N', 'preload over the socketpair'],
        ['kernel -> stack', qIn, kIn, 'the python sink', 'preload over rings'],
        ['stack -> kernel', qOut, kOut, 'the python GET /bytes/N', 'preload over rings'],
      ] as const) {
        if (!p) continue;
        cpu.push({ name: `CPU per GB ${dir}, ${via}`, unit: 'CPU s/GB', stack: p.cpuPerGb, kernel: k.cpuPerGb, ratio: k.cpuPerGb / p.cpuPerGb });
        cpu.push({ name: `daemon CPU per GB ${dir}, ${via}`, unit: 'CPU s/GB', stack: p.daemonCpuPerGb, kernel: NaN, ratio: NaN });
        cpu.push({ name: `  of which system (${dir}, ${via})`, unit: 'CPU s/GB', stack: p.daemonSysPerGb, kernel: NaN, ratio: NaN });
        cpu.push({ name: `program CPU per GB ${dir}, ${via} (${prog})`, unit: 'CPU s/GB', stack: p.progCpuPerGb, kernel: k.progCpuPerGb, ratio: k.progCpuPerGb / p.progCpuPerGb });
      }
    }
    if (PARTS.has('bulk6')) {
      // The same over IPv6 (the stack's address is usable once DAD is done, ~1 s after start).
      await waitTcp(st, 'fd00::2', 9);
      const kIn6 = sourceRun(a, 'fd09::2', 9);
      const sIn6 = sourceRun(st, 'fd00::2', 9);
      rows.push({ name: 'bulk kernel -> stack over IPv6, in-process (discard)', unit: 'Gbit/s', stack: sIn6.gbps, kernel: kIn6.gbps, ratio: sIn6.gbps / kIn6.gbps });
      const kOut6 = curlRun(a, `http://[fd09::2]/bytes/${BYTES}`);
      const sOut6 = curlRun(st, `http://[fd00::2]/bytes/${BYTES}`);
      rows.push({ name: 'bulk stack -> kernel over IPv6, in-process (GET /bytes/N)', unit: 'Gbit/s', stack: sOut6.gbps, kernel: kOut6.gbps, ratio: sOut6.gbps / kOut6.gbps });
      cpu.push({ name: 'daemon CPU per GB kernel -> stack over IPv6, in-process', unit: 'CPU s/GB', stack: sIn6.daemonCpuPerGb, kernel: NaN, ratio: NaN });
      cpu.push({ name: 'daemon CPU per GB stack -> kernel over IPv6, in-process', unit: 'CPU s/GB', stack: sOut6.daemonCpuPerGb, kernel: NaN, ratio: NaN });
    }
    if (PARTS.has('rr')) {
      const kRr = rrRun(a, '10.9.0.2', 7);
      const sRr = rrRun(st, '10.0.0.2', 7);
      const aRr = rrRun(st, '10.0.0.2', 9007);
      const rRr = rrRun(st, '10.0.0.2', 9207);
      rows.push({ name: '1-byte request/response, in-process echo', unit: 'trans/s', stack: sRr, kernel: kRr, ratio: sRr / kRr });
      rows.push({ name: '1-byte request/response, client library echo', unit: 'trans/s', stack: aRr, kernel: kRr, ratio: aRr / kRr });
      rows.push({ name: '1-byte request/response, client library over rings echo', unit: 'trans/s', stack: rRr, kernel: kRr, ratio: rRr / kRr });
      if (PRELOAD) {
        const pRr = rrRun(st, '10.0.0.2', 9107);
        rows.push({ name: '1-byte request/response, preload over the socketpair (the same python echo)', unit: 'trans/s', stack: pRr, kernel: kRr, ratio: pRr / kRr });
        const qRr = rrRun(st, '10.0.0.2', 9307);
        rows.push({ name: '1-byte request/response, preload over rings (the same python echo)', unit: 'trans/s', stack: qRr, kernel: kRr, ratio: qRr / kRr });
      }
      if (BUSY_READ > 0) {
        const bRr = rrRun(st, '10.0.0.2', 9607);
        rows.push({ name: `1-byte request/response, client library over rings echo, busy read ${BUSY_READ} µs`, unit: 'trans/s', stack: bRr, kernel: kRr, ratio: bRr / kRr });
        if (PRELOAD) {
          const cRr = rrRun(st, '10.0.0.2', 9707);
          rows.push({ name: `1-byte request/response, preload over rings (the same python echo), busy read ${BUSY_READ} µs`, unit: 'trans/s', stack: cRr, kernel: kRr, ratio: cRr / kRr });
        }
      }
    }
    if (PARTS.has('udp')) {
      if (PRELOAD) rows.push(...(await udpLoss(st, a, b, run)));
      else console.error('bench: UDP rows skipped: the preload is not built');
    }
    if (!PARTS.has('http')) {
      // not asked for
    } else if (have('wrk') && have('nginx')) {
      // The same 64-byte body both ways: /bytes/64 from the stack, a 64-byte file from nginx.
      const body = Buffer.alloc(64);
      for (let i = 0; i < 64; i++) body[i] = i & 0xff;
      const ngx = startNginx(b, '10.9.0.2', 8080, body);
      wrkClientSide(a);
      wrkClientSide(st);
      await waitTcp(a, '10.9.0.2', 8080);
      const kClose = wrkRun(a, 'http://10.9.0.2:8080/small', true);
      const sClose = wrkRun(st, 'http://10.0.0.2/bytes/64', true);
      const kKeep = wrkRun(a, 'http://10.9.0.2:8080/small', false);
      const sKeep = wrkRun(st, 'http://10.0.0.2/bytes/64', false);
      rows.push({ name: 'HTTP Connection: close, built-in server vs nginx', unit: 'req/s', stack: sClose, kernel: kClose, ratio: sClose / kClose });
      rows.push({ name: 'HTTP keep-alive, built-in server vs nginx', unit: 'req/s', stack: sKeep, kernel: kKeep, ratio: sKeep / kKeep });
      ngx.kill('SIGTERM');
      // nginx through the preload, on the socketpairs and then reading through rings (one at a time: one process each).
      for (const [via, prefix, port] of PRELOAD ? ([['over the socketpair', runPair, 8080], ['over rings', runRing, 8280]] as const) : []) {
        const pngx = startNginx(st, '10.0.0.2', port, body, prefix);
        await waitTcp(st, '10.0.0.2', port);
        const pClose = wrkRun(st, `http://10.0.0.2:${port}/small`, true);
        const pKeep = wrkRun(st, `http://10.0.0.2:${port}/small`, false);
        rows.push({ name: `HTTP Connection: close, nginx through the preload ${via} vs nginx`, unit: 'req/s', stack: pClose, kernel: kClose, ratio: pClose / kClose });
        rows.push({ name: `HTTP keep-alive, nginx through the preload ${via} vs nginx`, unit: 'req/s', stack: pKeep, kernel: kKeep, ratio: pKeep / kKeep });
        pngx.kill('SIGTERM');
      }
    } else {
      results.httpSkipped = 'wrk or nginx not installed (apt-get install wrk nginx-light)';
      console.error(`bench: HTTP rows skipped: ${results.httpSkipped}`);
    }
    apiProcs.forEach((p) => p.kill('SIGTERM'));
    if (PARTS.has('idle')) for (const n of IDLE) idle.push(await idleMemory(st, daemon, api, n));
    await daemon.stop();
  } finally {
    cleanup();
  }
  results.rows = rows;
  results.cpu = cpu;
  results.idle = idle;

  const lookup = PARTS.has('lookup') ? await benchLookup() : [];
  results.lookup = lookup;
  const lookup6 = PARTS.has('lookup') ? await benchLookup6() : [];
  results.lookup6 = lookup6;

  console.log(`\ntapstack bench (${(BYTES / 1048576).toFixed(0)} MiB per transfer; kernel = Linux over veth, same run)\n`);
  console.log('| measure | unit | tapstack | kernel | ratio |');
  console.log('| --- | --- | ---: | ---: | ---: |');
  for (const r of [...rows, ...cpu]) console.log(`| ${r.name} | ${r.unit} | ${fmt(r.stack)} | ${fmt(r.kernel)} | ${fmt(r.ratio, 3)} |`);
  console.log('\n(CPU per GB is the whole machine\'s busy time during the transfer, both ends and the tools; its ratio is kernel / tapstack.)');
  if (idle.length) {
    console.log('\n| idle established connections | held | RSS per connection | JS heap + external per connection |');
    console.log('| ---: | ---: | ---: | ---: |');
    for (const m of idle) console.log(`| ${m.n} | ${m.held} | ${fmt(m.rssPerConn / 1024, 2)} KiB | ${fmt(m.heapPerConn / 1024, 2)} KiB |`);
  }
  const base = lookup[0]?.nsPerLookup;
  // "random": every lookup a different one of the n flows (the table outgrows the caches);
  // "hot 1 000": the flows drawn from 1 000 of the n (the table's own cost at that size).
  if (lookup.length) console.log('\n| established sockets | IPv4 ns, random | ratio to 1 | IPv4 ns, hot 1 000 | ratio to 1 | IPv6 ns, random | ratio to 1 |');
  if (lookup.length) console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [i, l] of lookup.entries()) {
    const l6 = lookup6[i];
    const b6 = lookup6[0];
    console.log(
      `| ${l.n} | ${fmt(l.nsPerLookup, 1)} | ${fmt(l.nsPerLookup / base, 2)} | ${fmt(l.hotNsPerLookup, 1)} | ${fmt(l.hotNsPerLookup / lookup[0].hotNsPerLookup, 2)} | ` +
        `${fmt(l6.nsPerLookup, 1)} | ${fmt(l6.nsPerLookup / b6.nsPerLookup, 2)} |`,
    );
  }
  if (fb) printFault();
  if (sf) printSynFlood(sf);
  if (sh) printShards(sh);
  mkdirSync(join(ROOT, 'bench'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
  console.log('\nresults: bench/results.json');
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
