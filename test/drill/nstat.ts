/**
 * `nstat` as iproute2's behaves, over the stack's counters, for the shell
 * lines of packetdrill scripts (`nstat > /dev/null`, `nstat | grep
 * TcpExtOutOfWindowIcmps > /dev/null`): each call prints the counters that
 * changed since the previous one (its history; none yet: since zero), as
 * "#kernel" then `NAME VALUE RATE` lines, and remembers them. -a prints
 * absolute values, -z zeros too, -n prints nothing (history only), -s
 * leaves the history alone, -r forgets it first. A pipe into `grep` is the
 * usual test: its exit status is the line's (1 when nothing matched).
 */

/** A shell line that ran but exited non-zero: packetdrill fails the script. */
export class ShellFailed extends Error {}

/** What nstat reads and keeps. */
export interface NstatEnv {
  /** The stack's counters grouped as the kernel groups them (Stack.counters()). */
  counters(): Record<string, unknown>;
  /** nstat's history: the values it last printed. */
  history: Map<string, number> | null;
}

/** Settings, not counters: nstat never shows them (its useless_numbers). */
const USELESS = new Set(['IpForwarding', 'IpDefaultTTL', 'TcpRtoAlgorithm', 'TcpRtoMin', 'TcpRtoMax', 'TcpMaxConn']);

/** nstat's names: group + counter (TcpExtOutOfWindowIcmps, IpInReceives). */
export function nstatFlatten(counters: Record<string, unknown>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [group, vals] of Object.entries(counters)) {
    if (!vals || typeof vals !== 'object') continue;
    for (const [k, v] of Object.entries(vals as Record<string, unknown>)) if (typeof v === 'number') out.set(`${group}${k}`, v);
  }
  return out;
}

/** One `nstat [-a] [-z] [-n] [-s] [-r] [PATTERN...]` call: its output. */
export function nstat(env: NstatEnv, args: string[]): string {
  const flags = new Set<string>();
  const patterns: RegExp[] = [];
  for (const a of args) {
    if (/^-[aznsr]+$/.test(a)) for (const c of a.slice(1)) flags.add(c);
    else if (a.startsWith('-')) throw new ShellFailed(`nstat: option ${a} is not supported here`);
    else patterns.push(new RegExp(`^${a.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  }
  if (flags.has('r')) env.history = null;
  const cur = nstatFlatten(env.counters());
  const last = env.history;
  const lines = ['#kernel'];
  for (const [name, v] of cur) {
    if (USELESS.has(name) || (patterns.length && !patterns.some((p) => p.test(name)))) continue;
    const shown = flags.has('a') ? v : v - (last?.get(name) ?? 0);
    if (shown === 0 && !flags.has('z')) continue;
    lines.push(`${name.padEnd(32)}${String(shown).padEnd(16)}${'0.0'.padStart(6)}`);
  }
  if (!flags.has('s')) env.history = cur;
  return flags.has('n') ? '' : lines.join('\n') + '\n';
}

/** `grep [-q] [-w] [-i] [-v] PATTERN` over text: the matching lines, or ShellFailed (exit 1) when none. */
export function grep(text: string, args: string[]): string {
  const opts = args.filter((a) => a.startsWith('-'));
  const rest = args.filter((a) => !a.startsWith('-'));
  if (rest.length !== 1) throw new ShellFailed(`grep: expected one pattern, got ${JSON.stringify(args)}`);
  for (const o of opts) if (!/^-[qwiv]+$/.test(o)) throw new ShellFailed(`grep: option ${o} is not supported here`);
  const flag = (c: string) => opts.some((o) => o.includes(c));
  const src = flag('w') ? `\\b(?:${rest[0]})\\b` : rest[0];
  const re = new RegExp(src, flag('i') ? 'i' : '');
  const hits = text.split('\n').filter((l) => l !== '' && re.test(l) !== flag('v'));
  if (!hits.length) throw new ShellFailed(`grep ${rest[0]}: no match (exit status 1)`);
  return hits.join('\n') + '\n';
}
