/**
 * Integration-test plumbing: a network namespace per test file, the daemon
 * started inside it on a TAP, and cleanup that runs however the test ends.
 *
 * The network rule: every packet these tests send stays inside a namespace
 * the test created; nothing is sent from the main namespace.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { memoryDefault } from '../../src/daemon/config.js';
import { SyscallError } from '../../src/client/index.js';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DAEMON = join(ROOT, 'dist', 'src', 'daemon', 'main.js');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * How long a wait for an event may take before the test fails. It bounds a
 * failure only (success comes as soon as the event does), so it is generous:
 * a loaded machine makes a test slow, not red.
 */
export const WAIT_MS = 20_000;

/**
 * The memory cap (tapstackd --memory) of every daemon a test starts without
 * one of its own: 1 GiB, or TAPSTACK_TEST_MEMORY bytes ("default": the
 * daemon's own default, a quarter of the machine, as the bench runs it).
 * Its peak RSS (VmHWM) must stay below it: stop() and destroy() fail the
 * test otherwise.
 */
function testMemory(): number | null {
  const v = process.env.TAPSTACK_TEST_MEMORY;
  if (v === 'default') return null;
  return v ? Number(v) : 1024 * 1024 * 1024;
}

/**
 * Wait until `cond` returns a truthy value (checked every `everyMs`) and
 * resolve with it; after `timeoutMs`, fail naming `what`. A `cond` that
 * throws counts as not yet, and its last error goes in the message.
 */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = WAIT_MS, everyMs = 25): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
      last = null;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface Output {
  text: string;
  ended: boolean;
  wake: Set<() => void>;
}
const outputs = new WeakMap<ChildProcess, Output>();

/**
 * Collect what a child prints (stdout and stderr, in arrival order) from now
 * on. Netns.background() does it for its processes; for others, call it in
 * the same tick as spawn(), before any output can arrive.
 */
export function track(p: ChildProcess): void {
  if (outputs.has(p)) return;
  const o: Output = { text: '', ended: false, wake: new Set() };
  outputs.set(p, o);
  const wake = () => o.wake.forEach((f) => f());
  for (const s of [p.stdout, p.stderr]) {
    s?.setEncoding('utf8').on('data', (c: string) => {
      o.text += c;
      wake();
    });
  }
  p.once('close', () => {
    o.ended = true;
    wake();
  });
}

/** What a tracked child has printed so far (stdout and stderr). */
export function outputOf(p: ChildProcess): string {
  return outputs.get(p)?.text ?? '';
}

/**
 * Wait until what `p` printed (stdout and stderr) matches `re`, e.g. a
 * helper's line saying its socket is listening; the match. Fails when `p`
 * ends first or after `timeoutMs`, with the output so far.
 */
export function waitLine(p: ChildProcess, re: RegExp, what: string, timeoutMs = WAIT_MS): Promise<RegExpMatchArray> {
  track(p);
  const o = outputs.get(p)!;
  return new Promise((resolve, reject) => {
    const done = () => {
      o.wake.delete(check);
      clearTimeout(t);
    };
    const check = () => {
      const m = re.exec(o.text);
      if (m) {
        done();
        resolve(m);
      } else if (o.ended) {
        done();
        reject(new Error(`${what}: the process ended (${p.exitCode ?? p.signalCode}) without printing ${re}; it printed: ${JSON.stringify(o.text.slice(-2000))}`));
      }
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${re}); printed so far: ${JSON.stringify(o.text.slice(-2000))}`));
    }, timeoutMs);
    o.wake.add(check);
    check();
  });
}

/** The exit status of `p` once it exits; after `timeoutMs` it is killed and the wait fails. */
export function exitOf(p: ChildProcess, timeoutMs = WAIT_MS): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`process ${p.pid} (${p.spawnargs.join(' ').slice(0, 200)}) did not exit in ${timeoutMs} ms; it printed: ${JSON.stringify(outputOf(p).slice(-2000))}`));
    }, timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/**
 * Why integration tests cannot run here, or null if they can. Under CI=true
 * a reason is a failure, not a skip: call requireIntegration() at the top.
 */
export function integrationUnavailable(): string | null {
  if (process.getuid && process.getuid() !== 0) return 'integration tests need root (run `sudo npm test`)';
  if (!existsSync('/dev/net/tun')) return 'integration tests need /dev/net/tun';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return 'integration tests need iproute2 with network namespace support';
  return null;
}

/** The `skip` option for node:test: a message outside CI; throws under CI=true. */
export function requireIntegration(tools: string[] = []): string | false {
  let why = integrationUnavailable();
  if (!why) {
    const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
    if (missing.length) why = `integration tests need ${missing.join(', ')} (installed by .ci/run)`;
  }
  if (!why) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}: refusing to skip`);
  return why;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const cleanups: (() => void)[] = [];
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const runAll = () => {
    while (cleanups.length) {
      try {
        cleanups.pop()!();
      } catch {
        // keep cleaning
      }
    }
  };
  process.on('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      runAll();
      process.exit(130);
    });
  }
}

/** Namespaces this process made so far: each one's name is unique. */
let netnsSeq = 0;

export class Netns {
  readonly name: string;
  readonly dir: string;
  #daemons: ChildProcess[] = [];
  #daemonObjs: Daemon[] = [];
  #bg: ChildProcess[] = [];
  #gone = false;

  constructor(prefix = 'test') {
    // "ts-" marks namespaces of ours, so .ci/run can clear ones an interrupted run left.
    // The pid and a counter: unique in this process (a random suffix collided once in CI).
    this.name = `ts-${prefix}-${process.pid}-${++netnsSeq}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.name}-`));
    hookExit();
    const r = spawnSync('ip', ['netns', 'add', this.name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${this.name}: ${r.stderr}`);
    cleanups.push(() => this.destroy());
    this.sh('ip link set lo up');
  }

  /** Run a shell command inside the namespace (bounded by `timeoutMs`). */
  sh(cmd: string, timeoutMs = 60_000): RunResult {
    const r = spawnSync('ip', ['netns', 'exec', this.name, 'sh', '-c', cmd], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Like sh() but throws with the output when the command fails. */
  ok(cmd: string, timeoutMs = 60_000): string {
    const r = this.sh(cmd, timeoutMs);
    if (r.status !== 0) throw new Error(`in ${this.name}: \`${cmd}\` exited ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Like ok() without blocking the event loop (for tests whose own process serves the other end). */
  run(cmd: string, timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const p = this.background(cmd);
      let out = '';
      let errOut = '';
      p.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
      p.stderr!.setEncoding('utf8').on('data', (c: string) => (errOut += c));
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('exit', (code, sig) => {
        clearTimeout(t);
        if (code === 0) resolve(out);
        else reject(new Error(`in ${this.name}: \`${cmd}\` exited ${code ?? sig}\n${out}\n${errOut}`));
      });
    });
  }

  /** A background process inside the namespace (killed on destroy). */
  background(cmd: string): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.name, 'sh', '-c', `exec ${cmd}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#bg.push(p);
    track(p);
    return p;
  }

  /** Wait until a shell command in the namespace succeeds (a state to be reached: a listener up, a file written). */
  async until(cmd: string, what: string, timeoutMs = WAIT_MS): Promise<void> {
    await waitFor(() => this.sh(cmd, 10_000).status === 0, what, timeoutMs, 50);
  }

  /** Wait until a kernel socket in the namespace listens on TCP `port` (or is bound to UDP `port`). */
  kernelListening(port: number, proto: 'tcp' | 'udp' = 'tcp', timeoutMs = WAIT_MS): Promise<void> {
    const flag = proto === 'tcp' ? '-Hltn' : '-Hlun';
    return this.until(`ss ${flag} 'sport = :${port}' | grep -q .`, `a kernel ${proto.toUpperCase()} socket on port ${port}`, timeoutMs);
  }

  /**
   * Wait until a capture being written has caught up: a marker (a connection
   * attempt from the kernel side to closed port 1 of the stack at `host`,
   * which answers with a reset) is in the file, so every frame tcpdump kept
   * before it is too. A capture may drop frames under load, a marker as
   * well: then another goes.
   */
  async pcapCaughtUp(file: string, host: string, timeoutMs = WAIT_MS): Promise<void> {
    const family = host.includes(':') ? 'AF_INET6' : 'AF_INET';
    await waitFor(
      () => {
        this.sh(`python3 -c "import socket; socket.socket(socket.${family}).connect_ex(('${host}', 1))"`, 10_000);
        return this.sh(`tcpdump -n -r ${file} 'src host ${host} and tcp src port 1' 2>/dev/null | wc -l`, 30_000).stdout.trim() !== '0';
      },
      `a marker (the reset from ${host} port 1) in the capture ${file}`,
      timeoutMs,
      200,
    );
  }

  /** Wait until a socket on the stack behind the API socket `api` listens on TCP `port` (without connecting to it). */
  stackListening(api: string, port: number, timeoutMs = WAIT_MS): Promise<void> {
    return this.until(`${process.execPath} ${CLI} --api ${api} ss -l -t | grep -q ':${port} '`, `a stack listener on port ${port}`, timeoutMs);
  }

  /** Wait until no IPv6 address of the kernel side on `dev` is tentative (its DAD is over). */
  async kernelDadDone(dev: string, timeoutMs = WAIT_MS): Promise<void> {
    await waitFor(() => this.ok(`ip -6 addr show dev ${dev} tentative`).trim() === '', `the kernel side's DAD on ${dev} (${this.sh(`ip -6 addr show dev ${dev}`).stdout.trim()})`, timeoutMs, 50);
  }

  /**
   * Wait until a pcap file being written holds at least `n` frames matching
   * the tcpdump `filter`: a capture holds the frames up to an event before
   * its writer is stopped or the file is read.
   */
  async pcapHolds(file: string, filter: string, n: number, what: string, timeoutMs = WAIT_MS): Promise<void> {
    let got = 0;
    await waitFor(
      () => {
        const r = this.sh(`tcpdump -n -r ${file} '${filter}' 2>/dev/null | wc -l`, 30_000);
        got = Number(r.stdout.trim());
        return got >= n;
      },
      `${what} in ${file} (${n} frames matching ${filter}; ${got} so far)`,
      timeoutMs,
      100,
    );
  }

  /**
   * Start tapstackd inside the namespace and wait for its `ready` line.
   * Resolves with the process and its parsed log lines so far (kept up to date).
   */
  /** The API socket path the next daemon gets unless its args name one (one per daemon: tests run side by side). */
  apiPath(): string {
    return join(this.dir, `api-${this.#daemons.length}.sock`);
  }

  /** `env`: variables added to the daemon's environment (NOTIFY_SOCKET, WATCHDOG_USEC, ...). */
  async startDaemon(args: string[], timeoutMs = WAIT_MS, env: Record<string, string> = {}): Promise<Daemon> {
    if (!args.includes('--api')) args = [...args, '--api', this.apiPath()];
    const mem = testMemory();
    if (!args.includes('--memory') && mem !== null) args = [...args, '--memory', String(mem)];
    const i = args.indexOf('--memory');
    // TAPSTACK_OFFLOAD=off runs a suite over the plain link (test/run.js does, for the TCP tests).
    if (process.env.TAPSTACK_OFFLOAD && !args.includes('--offload')) args = [...args, '--offload', process.env.TAPSTACK_OFFLOAD];
    // TAPSTACK_NODE_ARGS: extra node flags for the daemon (the bench's --cpu-prof; NODE_OPTIONS refuses it).
    const nodeArgs = (process.env.TAPSTACK_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const p = spawn('ip', ['netns', 'exec', this.name, process.execPath, ...nodeArgs, DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.#daemons.push(p);
    const d = new Daemon(p, i >= 0 ? Number(args[i + 1]) : memoryDefault());
    this.#daemonObjs.push(d);
    await d.waitFor((l) => l.msg === 'ready', timeoutMs);
    return d;
  }

  /**
   * Join this namespace to `peer` with a veth pair (va here, vb there), each
   * end up with its addresses (IPv6 ones without DAD): the kernel-to-kernel
   * baseline the bench and the tests hold the stack against.
   */
  veth(peer: Netns, here: string[], there: string[]): void {
    this.ok(`ip link add va type veth peer name vb netns ${peer.name}`);
    const add = (dev: string, a: string) => `ip addr add ${a} dev ${dev}${a.includes(':') ? ' nodad' : ''} && `;
    this.ok(`${here.map((a) => add('va', a)).join('')}ip link set va up`);
    peer.ok(`${there.map((a) => add('vb', a)).join('')}ip link set vb up`);
  }

  /** The kernel's TCP counters in this namespace by name: /proc/net/snmp's Tcp and /proc/net/netstat's TcpExt. */
  kernelTcpCounters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const file of ['/proc/net/netstat', '/proc/net/snmp']) {
      const lines = this.ok(`cat ${file}`).trim().split('\n');
      for (let i = 0; i + 1 < lines.length; i += 2) {
        if (!/^(TcpExt|Tcp):/.test(lines[i])) continue;
        const names = lines[i].split(/\s+/).slice(1);
        const vals = lines[i + 1].split(/\s+/).slice(1).map(Number);
        names.forEach((n, j) => (out[n] = vals[j]));
      }
    }
    return out;
  }

  destroy(): void {
    if (this.#gone) return;
    this.#gone = true;
    // Read before they are killed: a daemon over its memory cap fails the test, once all is cleaned up.
    const over = this.#daemonObjs.map((d) => (d.proc.exitCode === null ? d.overCap() : null)).filter((x) => x !== null);
    for (const p of [...this.#bg, ...this.#daemons]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter(Boolean)
      .forEach((pid) => spawnSync('kill', ['-9', pid]));
    spawnSync('ip', ['netns', 'del', this.name]);
    rmSync(this.dir, { recursive: true, force: true });
    if (over.length) throw new Error(over.join('; '));
  }
}

export type LogLine = { msg?: string; level?: number; [k: string]: unknown };

export class Daemon {
  readonly lines: LogLine[] = [];
  stderr = '';
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  #buf = '';
  exited: Promise<number | null>;

  /**
   * @param memoryCap the daemon's --memory (or its default): its peak RSS
   * must stay below it (overCap).
   */
  constructor(
    readonly proc: ChildProcess,
    readonly memoryCap = 0,
  ) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      this.#buf += chunk;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const text = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text };
        }
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((res) => proc.on('exit', (code) => res(code)));
  }

  /** Wait for a log line matching `pred` (already seen, or coming). */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = WAIT_MS): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`daemon: no matching log line in ${timeoutMs} ms; stderr: ${this.stderr}; last lines: ${JSON.stringify(this.lines.slice(-5))}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
      this.exited.then((code) => reject(new Error(`daemon exited (${code}) before the expected line; stderr: ${this.stderr}`)));
    });
  }

  /**
   * Counters (SIGUSR1) once `reached` holds for them, or the last ones read
   * when `timeoutMs` passes: the caller's exact assertions then show what is
   * missing. (A frame on the TAP and the SIGUSR1 race inside the daemon.)
   */
  async countersWhen(reached: (c: Record<string, Record<string, number>>) => boolean, timeoutMs = WAIT_MS): Promise<Record<string, Record<string, number>>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const c = await this.counters();
      if (reached(c) || Date.now() > end) return c;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGUSR1, then the counters the daemon logs. */
  async counters(): Promise<Record<string, Record<string, number>>> {
    const before = this.lines.length;
    this.proc.kill('SIGUSR1');
    const line = await this.waitFor((l) => l.msg === 'counters' && this.lines.indexOf(l) >= before);
    return line.counters as Record<string, Record<string, number>>;
  }

  /** VmHWM: the daemon's peak RSS so far, in bytes (0 once it is gone). */
  peakRss(): number {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  /** Why the daemon's peak RSS is not below its memory cap, or null. */
  overCap(): string | null {
    const peak = this.peakRss();
    if (!this.memoryCap || peak < this.memoryCap) return null;
    const mib = (n: number) => (n / 1048576).toFixed(1);
    return `the daemon's RSS peaked at ${mib(peak)} MiB, not below its memory cap of ${mib(this.memoryCap)} MiB (--memory)`;
  }

  /** SIGTERM and its exit status; fails if its peak RSS was not below its memory cap. */
  async stop(): Promise<number | null> {
    const over = this.proc.exitCode === null ? this.overCap() : null;
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    const code = await this.exited;
    if (over) throw new Error(over);
    return code;
  }
}

/** The errno name a client-library call rejects with, or 'OK'. */
export async function errno(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw e;
  }
}
