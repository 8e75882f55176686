/**
 * The bench's goodput-under-loss run replayed deterministically: two of
 * our stacks on one virtual clock through a FaultLine each way (see
 * test/lib/twostack.ts), for finding where the sender loses time without a
 * kernel or a TAP in the loop.
 *
 *   node dist/bench/tools/loss_sim.js [FAULT_SPEC] [BYTES] [SEED] [CC]
 *
 * Prints the virtual duration and goodput, the sender's recovery counters,
 * and how many retransmissions resent a segment that had arrived.
 */
import { parseFaultSpec } from '../../src/drivers/fault.js';
import { TwoStacks, dataSeq } from '../../test/lib/twostack.js';

const specStr = process.argv[2] ?? 'loss=1%,delay=20ms';
const spec = parseFaultSpec(specStr);
const bytes = Number(process.argv[3] ?? 4 * 1048576);
const seed = Number(process.argv[4] ?? 1);
const cc = process.argv[5] ?? 'cubic';

const s = new TwoStacks(spec, spec, seed);
const copies = new Map<number, number>();
const arrived = new Set<number>();
let needless = 0;
s.observe('ab', {
  sent(b, o, l) {
    const q = dataSeq(b, o, l);
    if (q < 0) return;
    copies.set(q, (copies.get(q) ?? 0) + 1);
    if (arrived.has(q)) needless++;
  },
  delivered(b, o, l) {
    const q = dataSeq(b, o, l);
    if (q >= 0) arrived.add(q);
  },
});
const ms = s.bulk(bytes, { cc });
const secs = (ms < 0 ? 600_000 : ms) / 1000;
const ext = s.a.mibs.TcpExt as unknown as Record<string, number>;
console.log(JSON.stringify({ spec: specStr, cc, seed, bytes, secs, mbps: ms < 0 ? 0 : (bytes * 8) / secs / 1e6, done: ms >= 0 }));
console.log(
  JSON.stringify({
    RetransSegs: s.a.mibs.Tcp.RetransSegs,
    needlessRetrans: needless,
    dropped: { ab: s.lineStats('ab').dropped, ba: s.lineStats('ba').dropped },
    ...Object.fromEntries(Object.entries(ext).filter(([k, v]) => v && /Retrans|Loss|Recovery|Probe|Undo|Timeout|Reorder|DSACK/.test(k))),
  }),
);
