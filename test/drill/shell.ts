/**
 * The shell lines of packetdrill scripts, mapped onto the stack. Only what
 * changes TCP behaviour is understood: sysctl settings (`sysctl -q`,
 * `../common/defaults.sh`, `set_sysctls.py /proc/sys/...=V` and its restore
 * script) and `ethtool -K tun0 tso/gso on|off`. Anything else makes the
 * script unsupported, with the command as the reason.
 *
 * Settings go through a SysctlTarget keyed by Linux names
 * (`net.ipv4.tcp_wmem`): the stack's registry (src/net/sysctl.ts), plus the
 * few keys the stack has no knob for but whose default behaviour it has.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Stack } from '../../src/net/stack.js';
import { sysctlGet, sysctlSet } from '../../src/net/sysctl.js';
import { ENOENT } from '../../src/uapi.js';
import { grep, nstat, ShellFailed, type NstatEnv } from './nstat.js';

export class Unsupported extends Error {}

/** Linux-named settings: set returns null or why it cannot. */
export interface SysctlTarget {
  set(name: string, value: string): string | null;
  get(name: string): string | undefined;
}

/**
 * Settings the stack has no knob for, with the value whose behaviour the
 * stack has anyway: defaults.sh sets them to that value. A script asking
 * for another value is unsupported.
 */
const FIXED: Record<string, string> = {
  // The server's Fast Open key (the stack's registry has net.ipv4.tcp_fastopen itself).
  'net.ipv4.tcp_fastopen_key': '*',
  // AccECN's option setting: the stack has RFC 3168 ECN only, where it is moot.
  'net.ipv4.tcp_ecn_option': '*',
  // FACK is gone from Linux (RACK replaced it); 0 is what it does.
  'net.ipv4.tcp_fack': '0',
};

/** The stack's sysctl registry (src/net/sysctl.ts), by Linux name, in /proc/sys units. */
export class RegistryTarget implements SysctlTarget {
  constructor(readonly stack: Stack) {}

  set(name: string, value: string): string | null {
    const err = { message: '' };
    const rc = sysctlSet(this.stack, name, value, err);
    if (rc === 0) return null;
    if (rc === -ENOENT) {
      const fixed = FIXED[name];
      if (fixed !== undefined && (fixed === '*' || Number(fixed) === Number(value))) return null;
      return `sysctl ${name}${fixed !== undefined ? `=${value}` : ''}: not in the stack`;
    }
    return err.message || `sysctl ${name}=${value}: refused (${rc})`;
  }

  get(name: string): string | undefined {
    const v = sysctlGet(this.stack, name);
    return typeof v === 'string' ? v : undefined;
  }
}

/** What the shell lines may change besides sysctls. */
export interface ShellEnv {
  sysctl: SysctlTarget;
  /** ethtool -K tun0 tso on|off. */
  setTso(on: boolean): void;
  /** Directory of the script (for ../common/defaults.sh). */
  dir: string;
  /** set_sysctls.py's saved values, restored by /tmp/sysctl_restore_${PPID}.sh. */
  saved: [string, string][];
  /** `ip tcp_metrics flush all`: the per-destination cache (Fast Open's cookies) forgets everything. */
  flushTcpMetrics?(): void;
  /** `echo V > /sys/module/M/parameters/P`: null, or why not. */
  setModuleParam?(module: string, param: string, value: string): string | null;
  /** The stack's counters and nstat's history, for `nstat` (nstat.ts). */
  nstat?: NstatEnv;
  /** The text of a /proc file the run emulates (/proc/net/tcp, /proc/net/tcp6), or null. */
  readProc?(path: string): string | null;
  /** The device's root qdisc: pfifo that drops every frame (limit 0) or not; null: none (tc qdisc delete). */
  setQdisc?(dropAll: boolean | null): void;
  /** The device's root qdisc is fq (pacing by departure time, sch_fq.ts) or not. */
  setFq?(on: boolean): void;
  /** Where a script's /tmp/NAME lives: the run's private directory (files.ts), or null outside /tmp. */
  tmpPath?(path: string): string | null;
}


/** $((a*b*c)) and plain numbers, as defaults.sh writes them. */
function expandArith(s: string): string {
  return s.replace(/\$\(\(([0-9*+\- ]+)\)\)/g, (_m, e: string) => {
    let total = 0;
    for (const term of e.split('+')) total += term.split('*').reduce((a, b) => a * Number(b.trim()), 1);
    return String(total);
  });
}

function unquote(s: string): string {
  return s.replace(/"([^"]*)"|'([^']*)'/g, '$1$2');
}

/** Split a shell line into words, keeping quoted strings whole. */
function words(line: string): string[] {
  const out: string[] = [];
  // name="a b c" is one word.
  const re = /(?:[^\s"']|"[^"]*"|'[^']*')+/g;
  let m;
  while ((m = re.exec(line))) out.push(m[0]);
  return out;
}

function setOne(env: ShellEnv, name: string, value: string): void {
  const why = env.sysctl.set(name, unquote(expandArith(value)));
  if (why) throw new Unsupported(why);
}

/** Run one backquoted command (may hold several lines). Throws Unsupported. */
export function runShell(env: ShellEnv, cmd: string): void {
  const joined = cmd.replace(/\\\n/g, ' ');
  for (const raw of joined.split('\n')) {
    // `a ; b` runs both (no quoted ';' in the scripts' commands).
    for (const part of raw.replace(/(^|\s)#.*$/, '').split(';')) {
      const line = part.trim();
      if (line) runLine(env, line);
    }
  }
}

function runLine(env: ShellEnv, line: string): void {
  if (/^nstat(\s|$)/.test(line)) return runNstat(env, line);
  const w = words(line.replace(/\s*2>\s*\/dev\/null/g, '').replace(/\s*>\s*\/dev\/null(\s*2>&1)?/g, '').replace(/\s*2>&1/g, ''));
  const prog = w[0];
  if (/(^|\/)common\/defaults\.sh$/.test(prog)) {
    // The corpus keeps upstream's scripts one level flatter than some of them
    // assume (`../../common/`): the nearest common/defaults.sh above the script is the one.
    let text: string | null = null;
    for (let d = env.dir, i = 0; i < 4 && text === null; d = dirname(d), i++) {
      const p = i === 0 ? join(d, prog) : join(d, 'common', 'defaults.sh');
      if (existsSync(p)) text = readFileSync(p, 'utf8');
    }
    if (text === null) throw new Unsupported(`${prog}: not found next to the script`);
    for (const l of text.split('\n')) {
      const t = l.replace(/(^|\s)#.*$/, '').trim();
      if (!t || t.startsWith('#!')) continue;
      // The tun qdisc (no qdisc) has no meaning for the stack.
      if (/^tc qdisc add dev tun0/.test(t)) continue;
      runLine(env, t);
    }
    return;
  }
  if (prog === 'sysctl') {
    for (const a of w.slice(1)) {
      if (a.startsWith('-')) continue;
      const eq = a.indexOf('=');
      if (eq < 0) throw new Unsupported(`sysctl read '${a}' is not supported`);
      setOne(env, a.slice(0, eq), a.slice(eq + 1));
    }
    return;
  }
  if (/(^|\/)set_sysctls\.py$/.test(prog)) {
    for (const a of w.slice(1)) {
      const m = /^\/proc\/sys\/(.+?)=(.*)$/.exec(a);
      if (!m) throw new Unsupported(`set_sysctls.py argument '${a}'`);
      const name = m[1].replace(/\//g, '.');
      const old = env.sysctl.get(name);
      if (old !== undefined) env.saved.push([name, old]);
      setOne(env, name, m[2]);
    }
    return;
  }
  if (/^\/tmp\/sysctl_restore_\$\{?PPID\}?\.sh$/.test(prog)) {
    for (const [n, v] of env.saved.reverse()) setOne(env, n, v);
    env.saved.length = 0;
    return;
  }
  if (prog === 'tc' && w[1] === 'qdisc' && env.setQdisc) {
    tcQdisc(env, line, w);
    return;
  }
  if (line.includes('|') || prog === 'grep') {
    grepPipeline(env, line);
    return;
  }
  if (/^(\/bin\/)?(rm|dd)$/.test(prog) && env.tmpPath) {
    tmpFileCommand(env, line, w);
    return;
  }
  const mp = /^echo\s+(\S+)\s*>\s*\/sys\/module\/(\w+)\/parameters\/(\w+)$/.exec(line);
  if (mp) {
    const why = env.setModuleParam ? env.setModuleParam(mp[2], mp[3], unquote(mp[1])) : 'module parameters';
    if (why) throw new Unsupported(`shell command '${line}': ${why}`);
    return;
  }
  if (prog === 'ip' && w[1] === 'tcp_metrics' && w[2] === 'flush' && (w[3] === 'all' || w[3] === undefined)) {
    if (!env.flushTcpMetrics) throw new Unsupported('ip tcp_metrics flush: no metrics cache');
    env.flushTcpMetrics();
    return;
  }
  if (prog === 'ethtool' && w[1] === '-K' && w[2] === 'tun0') {
    for (let i = 3; i + 1 < w.length; i += 2) {
      if (w[i] === 'tso' || w[i] === 'gso') env.setTso(w[i + 1] === 'on');
      else throw new Unsupported(`ethtool feature '${w[i]}'`);
    }
    return;
  }
  throw new Unsupported(`shell command '${line}'`);
}

/** `nstat [options]`, alone or piped through `grep`; output to /dev/null (nothing reads it). A failing grep fails the line. */
function runNstat(env: ShellEnv, line: string): void {
  if (!env.nstat) throw new Unsupported(`shell command '${line}'`);
  const stages = line.replace(/\s*>\s*\/dev\/null(\s*2>&1)?/g, '').split('|').map((s) => words(s.trim()).map(unquote));
  let text = nstat(env.nstat, stages[0].slice(1));
  for (const st of stages.slice(1)) {
    if (st[0] !== 'grep') throw new Unsupported(`shell command '${line}': a pipe into ${st[0]}`);
    text = grep(text, st.slice(1));
  }
}

export { ShellFailed };

/**
 * `grep PATTERN FILE... | grep PATTERN`: fixed patterns over the files the
 * run emulates; a pipeline that selects nothing exits 1, as grep does.
 */
function grepPipeline(env: ShellEnv, line: string): void {
  let lines: string[] | null = null;
  for (const stage of line.split('|')) {
    const w = words(stage.trim()).map(unquote);
    if (w[0] !== 'grep' || w.length < 2 || w.slice(1).some((a) => a.startsWith('-'))) throw new Unsupported(`shell command '${line}'`);
    const pat = w[1];
    if (/[\\^$.*[\]]/.test(pat)) throw new Unsupported(`shell command '${line}': grep pattern '${pat}' is not a fixed string`);
    const files = w.slice(2);
    if (files.length) {
      if (lines !== null) throw new Unsupported(`shell command '${line}'`);
      lines = [];
      for (const f of files) {
        const text = env.readProc?.(f);
        if (text === null || text === undefined) throw new Unsupported(`shell command '${line}': file ${f}`);
        // With several files grep names the file of each line.
        for (const l of text.split('\n')) if (l) lines.push(files.length > 1 ? `${f}:${l}` : l);
      }
    } else if (lines === null) throw new Unsupported(`shell command '${line}': grep on standard input`);
    lines = lines.filter((l) => l.includes(pat));
  }
  if (!lines || !lines.length) throw new ShellFailed(`command '${line}' exited with status 1 (no line selected)`);
}

/** `rm -f /tmp/F` and `dd if=/dev/zero of=/tmp/F bs=N count=M`, in the run's private directory. */
function tmpFileCommand(env: ShellEnv, line: string, w: string[]): void {
  const path = (p: string): string => {
    const real = env.tmpPath!(p);
    if (!real) throw new Unsupported(`shell command '${line}': a file outside /tmp`);
    return real;
  };
  if (w[0].endsWith('rm')) {
    const flags = w.slice(1).filter((a) => a.startsWith('-'));
    if (flags.some((f) => f !== '-f')) throw new Unsupported(`shell command '${line}'`);
    for (const f of w.slice(1).filter((a) => !a.startsWith('-'))) {
      const real = path(f);
      if (existsSync(real)) rmSync(real);
      else if (!flags.length) throw new ShellFailed(`rm: cannot remove '${f}': No such file or directory`);
    }
    return;
  }
  const args = new Map<string, string>();
  for (const a of w.slice(1)) {
    const eq = a.indexOf('=');
    if (eq < 0) throw new Unsupported(`shell command '${line}'`);
    args.set(a.slice(0, eq), a.slice(eq + 1));
  }
  for (const k of args.keys()) if (!['if', 'of', 'bs', 'count', 'status'].includes(k)) throw new Unsupported(`shell command '${line}': dd ${k}=`);
  if (args.get('if') !== '/dev/zero' || !args.has('of')) throw new Unsupported(`shell command '${line}': dd other than from /dev/zero to a file`);
  if (!args.has('count')) throw new Unsupported(`shell command '${line}': dd without count=`);
  const bs = Number(args.get('bs') ?? 512);
  const count = Number(args.get('count') ?? 0);
  if (!Number.isSafeInteger(bs) || !Number.isSafeInteger(count) || bs * count > 64 << 20) throw new Unsupported(`shell command '${line}': dd size`);
  writeFileSync(path(args.get('of')!), Buffer.alloc(bs * count));
}

/**
 * `tc qdisc add|replace|delete dev tun0 root [pfifo [limit N] | fq]`: the
 * run's link never queues, so a pfifo drops exactly when its limit is 0
 * (every frame refused: dev_queue_xmit's NET_XMIT_DROP); fq is the stack's
 * fq stage (frames wait for their departure time), without parameters.
 * Other qdiscs are not modelled.
 */
function tcQdisc(env: ShellEnv, line: string, w: string[]): void {
  const op = w[2];
  if (w[3] !== 'dev' || w[4] !== 'tun0' || w[5] !== 'root') throw new Unsupported(`shell command '${line}'`);
  if (op === 'delete' || op === 'del') {
    if (w.length !== 6) throw new Unsupported(`shell command '${line}'`);
    env.setQdisc!(null);
    env.setFq?.(false);
    return;
  }
  if (op !== 'add' && op !== 'replace' && op !== 'change') throw new Unsupported(`shell command '${line}'`);
  if (w[6] === 'fq' && w.length === 7 && env.setFq) {
    env.setQdisc!(false);
    env.setFq(true);
    return;
  }
  if (w[6] !== 'pfifo') throw new Unsupported(`shell command '${line}': qdisc ${w[6] ?? '(none)'} is not modelled`);
  let limit = 1000;
  if (w.length === 9 && w[7] === 'limit' && /^\d+$/.test(w[8])) limit = Number(w[8]);
  else if (w.length !== 7) throw new Unsupported(`shell command '${line}'`);
  env.setFq?.(false);
  env.setQdisc!(limit === 0);
}
