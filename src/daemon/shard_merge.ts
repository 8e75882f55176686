/**
 * The whole daemon's view of its shards' counters (docs/shards.md): each
 * shard's Stack.counters() summed group by group, as Linux sums its per-CPU
 * MIBs when /proc/net/snmp is read. A few values are settings, not counts:
 * those are the same in every shard and taken from the first.
 */

/** Group_name values that are settings (the same in every shard), not counts. */
export const SHARD_SETTINGS: ReadonlySet<string> = new Set(['Tcp_RtoAlgorithm', 'Tcp_RtoMin', 'Tcp_RtoMax', 'Tcp_MaxConn', 'Ip_Forwarding', 'Ip_DefaultTTL']);

type Tree = { [k: string]: unknown };

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sum `src` into `dst` in place: numbers added (settings kept), groups merged, anything else kept from the first. */
function addInto(dst: Tree, src: Tree, path: string): void {
  for (const [k, v] of Object.entries(src)) {
    const id = path ? `${path}_${k}` : k;
    const have = dst[k];
    if (typeof v === 'number') {
      if (typeof have !== 'number') dst[k] = v;
      else if (!SHARD_SETTINGS.has(id)) dst[k] = have + v;
    } else if (isTree(v)) {
      if (!isTree(have)) dst[k] = {};
      addInto(dst[k] as Tree, v, path ? id : k);
    } else if (have === undefined) {
      dst[k] = v;
    }
  }
}

/** The shards' counters summed (a new object; the inputs are left alone). */
export function sumCounters(list: readonly Record<string, unknown>[]): Record<string, unknown> {
  const out: Tree = {};
  for (const c of list) addInto(out, c, '');
  return out;
}
