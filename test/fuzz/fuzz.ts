/**
 * The fuzzer's engine, shared by the unit test (a short seeded run, and
 * every saved regression replayed) and the CLI (test/fuzz/main.ts, long
 * runs). An episode is one scenario in one family: a fresh world, then a
 * few hundred actions (fuzzed frames, most mutated from the scenario's
 * valid ones; the clock moving; the side connection and the target's
 * application doing their part), the invariants checked after each, and at
 * the end the side connection must have delivered every byte both ways.
 * A failing episode is shrunk (actions removed while the same failure
 * stays) and can be saved as a regression case.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import { TCP_STATE_NAMES } from '../../src/net/core/sock.js';
import type { Family } from '../lib/frames.js';
import { dissect } from './dissect.js';
import { Rng, mutate } from './mutate.js';
import { checkAccounting, checkTcp, ipv4OptionsRefused, reasonsMoved, snap } from './oracle.js';
import { SCENARIOS, drawParams, scenario, type Params } from './scenarios.js';
import { FuzzFailure, SIDE_LPORT, SIDE_PPORT, World, type Action } from './world.js';

/** A saved failing input: enough to replay it exactly. */
export interface Case {
  scenario: string;
  family: Family;
  params: Params;
  actions: Action[];
  /** What it found (kind: message), and how it was fixed: for the reader. */
  failure?: string;
  note?: string;
}

export interface Stats {
  episodes: number;
  frames: number;
  mutated: number;
  /** TCP state of the target socket when a fuzzed frame arrived, by name. */
  states: Map<string, number>;
  /** Drop reasons counted for fuzzed frames, by name. */
  reasons: Map<string, number>;
  /** Mutation operators applied. */
  ops: Map<string, number>;
  failures: { c: Case; error: string; sig: string }[];
}

export function newStats(): Stats {
  return { episodes: 0, frames: 0, mutated: 0, states: new Map(), reasons: new Map(), ops: new Map(), failures: [] };
}

const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

/** The side connection's ports, as they appear in a TCP header or a quoted one. */
const SIDE_A = Buffer.from([SIDE_PPORT >> 8, SIDE_PPORT & 255, SIDE_LPORT >> 8, SIDE_LPORT & 255]);
const SIDE_B = Buffer.from([SIDE_LPORT >> 8, SIDE_LPORT & 255, SIDE_PPORT >> 8, SIDE_PPORT & 255]);

/**
 * Fuzzed frames never name the side connection's ports (in a TCP header or
 * an ICMP error's quote): it is the witness that other traffic is not
 * disturbed, not a target.
 */
function keepOffSide(f: Buffer): void {
  for (const pat of [SIDE_A, SIDE_B]) {
    for (let i = f.indexOf(pat, 14); i >= 0; i = f.indexOf(pat, i + 1)) f[i + 3] ^= 0x01;
  }
}

/** The state name of the target, for coverage. */
function targetState(w: World): string {
  const s = w.targetSock();
  if (s) return TCP_STATE_NAMES[s.state] ?? String(s.state);
  if (w.targetSk) return TCP_STATE_NAMES[w.targetSk.state] ?? String(w.targetSk.state);
  return 'LISTEN';
}

/** Build the world of a case. */
export function build(c: Pick<Case, 'scenario' | 'family' | 'params'>): World {
  const w = new World(c.family);
  scenario(c.scenario).setup(w, c.params);
  w.sideWrite(5000);
  w.pump();
  return w;
}

/** Run one action with every check; throws FuzzFailure (or whatever escaped the stack). */
export function step(w: World, a: Action, stats: Stats | null): void {
  w.out.length = 0;
  if ('rx' in a) {
    const f = Buffer.from(a.rx, 'hex');
    const d = dissect(f);
    const s0 = snap(w.stack, w.udp.rmemAlloc + w.udp4.rmemAlloc);
    if (stats) bump(stats.states, targetState(w));
    try {
      w.stack.receive(f, 0, f.length, a.csum ?? false, a.gso ?? 0);
    } catch (e) {
      throw new FuzzFailure('exception', `${(e as Error).stack ?? e}`);
    }
    const s1 = snap(w.stack, w.udp.rmemAlloc + w.udp4.rmemAlloc);
    checkAccounting(s0, s1, d.fragment || d.proto === 59);
    // accept_local is 0: a datagram from one of our own addresses that comes in from the wire is a martian.
    if (d.l3 === 'ipv4' && s1.deliv4 > s0.deliv4 && w.stack.fib.isLocal(f.readUInt32BE(26))) throw new FuzzFailure('local-source', `a datagram from our own address ${f.readUInt32BE(26)} was delivered`);
    const refused = ipv4OptionsRefused(f);
    if (refused && s1.deliv4 > s0.deliv4) throw new FuzzFailure('ip-options', `a datagram was delivered with IPv4 options Linux refuses: ${refused}`);
    if (stats) for (const r of reasonsMoved(s0, s1)) bump(stats.reasons, r);
  } else {
    try {
      if ('adv' in a) w.h.time.advance(a.adv);
      else if ('side' in a) {
        if (a.side === 'in') w.sideSend(a.n);
        else w.sideWrite(a.n);
      } else w.app(a.app, a.n);
    } catch (e) {
      if (e instanceof FuzzFailure) throw e;
      throw new FuzzFailure('exception', `${(e as Error).stack ?? e}`);
    }
  }
  w.pump();
  w.sideReadAll();
  w.udpReadAll();
  checkTcp(w.stack, [w.targetSk, w.sideSk]);
}

/**
 * The end of an episode: the side connection must finish delivering what
 * each end sent, within two minutes of virtual time (its peer resending
 * what was not acknowledged, as a real one would).
 */
export function finish(w: World): void {
  for (let i = 0; i < 600; i++) {
    if (w.sideRead === w.sideIn && w.sideGot === w.sideOut) break;
    w.sideResend();
    w.h.time.advance(200);
    w.pump();
    w.sideReadAll();
    checkTcp(w.stack, [w.targetSk, w.sideSk]);
  }
  if (w.sideRead !== w.sideIn || w.sideGot !== w.sideOut) {
    throw new FuzzFailure('side', `the side connection stalled: read ${w.sideRead} of ${w.sideIn} sent in, the peer got ${w.sideGot} of ${w.sideOut} written (state ${TCP_STATE_NAMES[w.sideSk.state]})`);
  }
}

/** Replay a case; returns the failure it hits, or null. */
export function replay(c: Case): FuzzFailure | Error | null {
  try {
    const w = build(c);
    for (const a of c.actions) step(w, a, null);
    finish(w);
    return null;
  } catch (e) {
    return e as Error;
  }
}

const kindOf = (e: Error) => (e instanceof FuzzFailure ? e.kind : 'error');
/** A failure's identity for shrinking: its kind and the first line of its message, numbers blanked. */
export const sig = (e: Error) => `${kindOf(e)}|${e.message.split('\n')[0].replace(/\d+/g, 'N')}`;

/** Remove actions while the same failure stays (bounded replays). */
export function shrink(c: Case, first: Error, budget = 300): Case {
  const want = sig(first);
  let best = c;
  let tries = 0;
  // Everything after the failing action is irrelevant: cut there first (replay tells where by length).
  for (let chunk = Math.max(1, best.actions.length >> 1); chunk >= 1 && tries < budget; chunk >>= 1) {
    for (let i = best.actions.length - chunk; i >= 0 && tries < budget; i -= chunk) {
      const cand = { ...best, actions: [...best.actions.slice(0, i), ...best.actions.slice(i + chunk)] };
      tries++;
      const e = replay(cand);
      if (e && sig(e) === want) best = cand;
    }
  }
  return best;
}

/** The next action of an episode. */
function nextActions(w: World, rng: Rng, scn: (typeof SCENARIOS)[number], stats: Stats): Action[] {
  const r = rng.int(100);
  if (r < 76) {
    const frames = scn.gen(w, rng);
    const burst = frames.length > 1;
    return frames.map((f) => {
      let frame = f;
      if (rng.chance(burst ? 0.25 : 0.7)) {
        const m = mutate(f, rng);
        frame = m.frame;
        stats.mutated++;
        for (const op of m.ops) bump(stats.ops, op);
      }
      keepOffSide(frame);
      const a: Action = { rx: frame.toString('hex') };
      // A TAP with offloads: the checksum verified by the kernel (then TCP and UDP check none),
      // and a TCP super-frame's segment size.
      if (rng.chance(0.15)) a.csum = true;
      if (frame.length > 1514 && rng.chance(0.5)) a.gso = rng.pick([1000, 1448, 536, 1]);
      return a;
    });
  }
  if (r < 84) return [{ adv: rng.chance(0.1) ? rng.pick([30_000, 61_000]) : rng.pick([1, 5, 40, 200, 1000, 3000]) }];
  if (r < 92) return [{ side: rng.chance(0.5) ? 'in' : 'out', n: rng.pick([1, 100, 1000, 5000, 20_000]) }];
  const a = rng.int(40);
  if (a === 0) return [{ app: 'close' }];
  if (a === 1) return [{ app: 'shutdown' }];
  if (a < 20) return [{ app: 'read' }];
  return [{ app: 'write', n: rng.pick([1, 500, 3000, 20_000]) }];
}

export interface RunOpts {
  seed: number;
  /** Stop after this many episodes, or at this time (Date.now()), whichever first. */
  episodes?: number;
  deadline?: number;
  /** Actions per episode. */
  steps?: number;
  /** Scenario names to run (default all), families (default both). */
  scenarios?: string[];
  families?: Family[];
  /** Called after each episode. */
  progress?: (s: Stats) => void;
  /** Stop at the first failure (the unit test); else record and go on. */
  stopOnFailure?: boolean;
}

/** Episodes, round-robin over scenarios and families, each seeded from `seed` and its number. */
export function run(o: RunOpts): Stats {
  const stats = newStats();
  const scns = (o.scenarios ?? SCENARIOS.map((s) => s.name)).map(scenario);
  const fams = o.families ?? [AF_INET, AF_INET6];
  const steps = o.steps ?? 150;
  for (let ep = 0; ; ep++) {
    if (o.episodes !== undefined && ep >= o.episodes) break;
    if (o.deadline !== undefined && Date.now() >= o.deadline) break;
    const scn = scns[ep % scns.length];
    const family = fams[Math.floor(ep / scns.length) % fams.length];
    const rng = new Rng((o.seed ^ Math.imul(ep + 1, 0x9e3779b1)) >>> 0);
    const c: Case = { scenario: scn.name, family, params: drawParams(rng), actions: [] };
    let w: World;
    try {
      w = build(c);
    } catch (e) {
      stats.failures.push({ c, error: `setup: ${(e as Error).stack}`, sig: `setup|${sig(e as Error)}` });
      if (o.stopOnFailure) break;
      continue;
    }
    try {
      while (c.actions.length < steps) {
        for (const a of nextActions(w, rng, scn, stats)) {
          c.actions.push(a);
          if ('rx' in a) stats.frames++;
          step(w, a, stats);
        }
      }
      finish(w);
    } catch (e) {
      const err = e as Error;
      const small = shrink(c, err);
      const again = replay(small) ?? err;
      stats.failures.push({ c: { ...small, failure: again.message.split('\n')[0] }, error: again.stack ?? again.message, sig: sig(again) });
      if (o.stopOnFailure) {
        stats.episodes++;
        break;
      }
    }
    stats.episodes++;
    o.progress?.(stats);
  }
  return stats;
}

/** Where regression cases live (the source tree, not dist). */
export function regressionsDir(root: string): string {
  return join(root, 'test', 'fuzz', 'regressions');
}

export function loadRegressions(root: string): { file: string; c: Case }[] {
  const dir = regressionsDir(root);
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return files.map((f) => ({ file: f, c: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Case }));
}

/** Save a failing case; returns its file name. */
export function saveRegression(root: string, c: Case): string {
  const dir = regressionsDir(root);
  mkdirSync(dir, { recursive: true });
  const slug = `${c.scenario.replace(/[^a-z0-9]+/gi, '-')}-${c.family === AF_INET6 ? 'v6' : 'v4'}`;
  const existing = new Set(readdirSync(dir));
  let n = 1;
  while (existing.has(`${slug}-${n}.json`)) n++;
  const name = `${slug}-${n}.json`;
  writeFileSync(join(dir, name), JSON.stringify(c, null, 1) + '\n');
  return name;
}

/** One line of coverage: counts by key, largest first. */
export function fmtMap(m: Map<string, number>, max = 40): string {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, max)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** Every counter that differs between two Stack.counters() results, as "Group.Name a -> b". */
export function counterDiff(a: Record<string, unknown>, b: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const k of Object.keys(b)) {
    const x = a[k];
    const y = b[k];
    if (typeof y === 'number') {
      if (x !== y) out.push(`${prefix}${k} ${x} -> ${y}`);
    } else if (y && typeof y === 'object') {
      out.push(...counterDiff((x ?? {}) as Record<string, unknown>, y as Record<string, unknown>, `${prefix}${k}.`));
    }
  }
  return out;
}

/** Replay a case step by step, telling what each action moved; the failure, if any, at the end. */
export function explain(c: Case, log: (s: string) => void): Error | null {
  const w = build(c);
  try {
    for (const a of c.actions) {
      const before = w.stack.counters();
      log(`action ${JSON.stringify(a).slice(0, 400)}`);
      try {
        step(w, a, null);
      } finally {
        log(`  moved: ${counterDiff(before, w.stack.counters()).join(', ')}`);
        log(`  sent: ${w.out.map((p) => (p.tcp ? `tcp ${p.tcp.sport}>${p.tcp.dport} f=${p.tcp.flags.toString(16)}` : p.icmp ? `icmp ${p.icmp.type}/${p.icmp.code}` : p.icmp6 ? `icmp6 ${p.icmp6.type}` : p.arp ? 'arp' : `type ${p.type.toString(16)}`)).join('; ')}`);
      }
    }
    finish(w);
    return null;
  } catch (e) {
    return e as Error;
  }
}
