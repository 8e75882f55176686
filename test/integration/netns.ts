/**
 * Integration-test plumbing: a network namespace per test file, the daemon
 * started inside it on a TAP, and cleanup that runs however the test ends.
 *
 * The network rule: every packet these tests send stays inside a namespace
 * the test created; nothing is sent from the main namespace.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DAEMON = join(ROOT, 'dist', 'src', 'daemon', 'main.js');

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

export class Netns {
  readonly name: string;
  readonly dir: string;
  #daemons: ChildProcess[] = [];
  #bg: ChildProcess[] = [];
  #gone = false;

  constructor(prefix = 'test') {
    // "ts-" marks namespaces of ours, so .ci/run can clear ones an interrupted run left.
    this.name = `ts-${prefix}-${process.pid}-${Math.floor(Math.random() * 1e4)}`;
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
    return p;
  }

  /**
   * Start tapstackd inside the namespace and wait for its `ready` line.
   * Resolves with the process and its parsed log lines so far (kept up to date).
   */
  /** The API socket path the next daemon gets unless its args name one (one per daemon: tests run side by side). */
  apiPath(): string {
    return join(this.dir, `api-${this.#daemons.length}.sock`);
  }

  async startDaemon(args: string[], timeoutMs = 10_000): Promise<Daemon> {
    if (!args.includes('--api')) args = [...args, '--api', this.apiPath()];
    // TAPSTACK_OFFLOAD=off runs a suite over the plain link (test/run.js does, for the TCP tests).
    if (process.env.TAPSTACK_OFFLOAD && !args.includes('--offload')) args = [...args, '--offload', process.env.TAPSTACK_OFFLOAD];
    // TAPSTACK_NODE_ARGS: extra node flags for the daemon (the bench's --cpu-prof; NODE_OPTIONS refuses it).
    const nodeArgs = (process.env.TAPSTACK_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const p = spawn('ip', ['netns', 'exec', this.name, process.execPath, ...nodeArgs, DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#daemons.push(p);
    const d = new Daemon(p);
    await d.waitFor((l) => l.msg === 'ready', timeoutMs);
    return d;
  }

  destroy(): void {
    if (this.#gone) return;
    this.#gone = true;
    for (const p of [...this.#bg, ...this.#daemons]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter(Boolean)
      .forEach((pid) => spawnSync('kill', ['-9', pid]));
    spawnSync('ip', ['netns', 'del', this.name]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type LogLine = { msg?: string; level?: number; [k: string]: unknown };

export class Daemon {
  readonly lines: LogLine[] = [];
  stderr = '';
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  #buf = '';
  exited: Promise<number | null>;

  constructor(readonly proc: ChildProcess) {
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
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`daemon: no matching log line in ${timeoutMs} ms; stderr: ${this.stderr}; last lines: ${JSON.stringify(this.lines.slice(-5))}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
      this.exited.then((code) => reject(new Error(`daemon exited (${code}) before the expected line; stderr: ${this.stderr}`)));
    });
  }

  /** SIGUSR1, then the counters the daemon logs. */
  async counters(): Promise<Record<string, Record<string, number>>> {
    const before = this.lines.length;
    this.proc.kill('SIGUSR1');
    const line = await this.waitFor((l) => l.msg === 'counters' && this.lines.indexOf(l) >= before);
    return line.counters as Record<string, Record<string, number>>;
  }

  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    return this.exited;
  }
}
