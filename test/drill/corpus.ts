/**
 * The packetdrill corpus (../shared/packetdrill/tcp, or $TAPSTACK_PACKETDRILL/tcp; see corpusDir):
 * every script run as IPv4, as IPv6 and as ipv4-mapped-ipv6, packetdrill's
 * three variants with its defaults for each (MTU 1520 for IPv6 as the
 * kernel selftests run it), one line per run and the totals.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { runScript, DRILL_FAMILIES, type DrillFamily, type Outcome } from './run.js';

export interface CorpusResult {
  /** Path under tcp/, e.g. blocking/blocking-write.pkt. */
  name: string;
  family: DrillFamily;
  outcome: Outcome;
}

/**
 * The corpus directory: $TAPSTACK_PACKETDRILL, else ../shared/packetdrill
 * next to the repo, else next to the checkout this one was cloned from (a
 * fresh clone in a temporary directory, as CI makes, whose origin is the
 * project's own checkout).
 */
export function corpusDir(repoRoot: string): string {
  if (process.env.TAPSTACK_PACKETDRILL) return process.env.TAPSTACK_PACKETDRILL;
  const beside = join(repoRoot, '..', 'shared', 'packetdrill');
  if (existsSync(beside)) return beside;
  const origin = spawnSync('git', ['-C', repoRoot, 'config', '--get', 'remote.origin.url'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const path = origin.startsWith('file://') ? origin.slice(7) : origin;
  if (path && isAbsolute(path)) {
    const there = join(path, '..', 'shared', 'packetdrill');
    if (existsSync(there)) return there;
  }
  return beside;
}

export function listScripts(dir: string): string[] {
  const root = join(dir, 'tcp');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.pkt')) out.push(p);
    }
  };
  walk(root);
  return out;
}

export function runCorpus(dir: string, print: (line: string) => void): CorpusResult[] {
  const root = join(dir, 'tcp');
  const results: CorpusResult[] = [];
  for (const file of listScripts(dir)) {
    const name = relative(root, file);
    const src = readFileSync(file, 'utf8');
    for (const family of DRILL_FAMILIES) {
      const { outcome } = runScript(src, file, { family });
      results.push({ name, family, outcome });
      print(formatResult(name, family, outcome));
    }
  }
  const n = (s: string) => results.filter((r) => r.outcome.status === s).length;
  print(`${n('pass')} passed, ${n('fail')} failed, ${n('unsupported')} unsupported`);
  return results;
}

export function formatResult(name: string, family: string, o: Outcome): string {
  const id = `${name} (${family})`;
  if (o.status === 'pass') return `pass        ${id}`;
  if (o.status === 'unsupported') return `unsupported ${id}: ${o.reason}`;
  // The first mismatch: packetdrill's message, its lines joined.
  return `fail        ${id}: ${o.message.split('\n').join(' | ')}`;
}
