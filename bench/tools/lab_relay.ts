/**
 * The lab's path for real kernels (bench/lab_validate.ts): two TAP devices,
 * and between them the bottleneck a lab scenario describes, on the real
 * clock: A's frames go through the scenario's queue discipline (the lab's
 * own, src/lab/queue.ts), a link of its rate, then half the path's RTT,
 * its random loss and reordering, to B; B's frames come back over the
 * other half of the RTT. Prints "ready" once both TAPs are open; the bench
 * then moves them into the kernels' namespaces.
 *
 *   node lab_relay.js TAP_A TAP_B SCENARIO.json SECONDS
 *
 * The link keeps its own schedule: a frame's transmission starts when the
 * previous one's ends, by the schedule, even when the timer fires late, so
 * the rate is the scenario's over any stretch longer than the timer's
 * lateness. Exits after SECONDS, or on SIGTERM, printing its counters.
 */
import { readFileSync } from 'node:fs';
import { TapDriver } from '../../src/drivers/tap.js';
import { RealTime, Timer } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import { parseScenarioText } from '../../src/lab/scenario.js';
import { CodelQdisc, DropTail, EventHeap, FqCodel, FramePool, type QueueDisc, type QueueSink, SLOT_BYTES } from '../../src/lab/queue.js';

const [nameA, nameB, file, secs] = process.argv.slice(2);
const sc = parseScenarioText(readFileSync(file, 'utf8'));
const b = sc.bottleneck;
const p = sc.path;
const owd = p.rttMs / 2;
const msPerByte = 8000 / b.rateBps;

const EV_XMIT_DONE = 0;
const EV_TO_B = 1;
const EV_TO_A = 2;

const time = new RealTime();
const rand = new SeededRandom(sc.seed);
const uniform = () => rand.u32() / 4294967296;
const pool = new FramePool(1024);
const heap = new EventHeap();
const stats = { toB: 0, toA: 0, queueDrops: 0, aqmDrops: 0, marks: 0, lost: 0, ackLost: 0, reordered: 0, maxQueue: 0 };
const sink: QueueSink = {
  dropped(slot, why) {
    if (why === 0) stats.queueDrops++;
    else stats.aqmDrops++;
    pool.release(slot);
  },
  marked() {
    stats.marks++;
  },
};
const codel = { targetMs: b.targetMs, intervalMs: b.intervalMs, mtu: 1514, ecn: b.ecn };
const q: QueueDisc =
  b.qdisc === 'droptail'
    ? new DropTail(pool, sink, b.limitPackets, b.limitBytes)
    : b.qdisc === 'codel'
      ? new CodelQdisc(pool, sink, codel, b.limitPackets, b.limitBytes)
      : new FqCodel(pool, sink, codel, b.flows, b.quantum, b.limitPackets, b.limitBytes, sc.seed);

const ta = new TapDriver({ name: nameA, mtu: 1500 });
const tb = new TapDriver({ name: nameB, mtu: 1500 });
/** When the link is free again by its schedule (ms), or -1 while it is idle. */
let busyUntil = -1;
const timer = new Timer(() => run());

function schedule(t: number, kind: number, arg: number): void {
  heap.push(t, kind, arg);
  if (!timer.pending || t < timer.expires) time.timers.mod(timer, t);
}

/** Start the next frame's transmission at `at` (the schedule's time, not the timer's). */
function startXmit(at: number): void {
  const s = q.dequeue(at);
  if (s < 0) {
    busyUntil = -1;
    return;
  }
  busyUntil = at + pool.len[s] * msPerByte;
  schedule(busyUntil, EV_XMIT_DONE, s);
}

function run(): void {
  const now = time.now();
  while (heap.size && heap.peek() <= now) {
    const t = heap.peek();
    heap.pop();
    const s = heap.popArg;
    switch (heap.popKind) {
      case EV_XMIT_DONE: {
        if (p.loss > 0 && uniform() < p.loss) {
          stats.lost++;
          pool.release(s);
        } else {
          let at = t + owd;
          if (p.reorder > 0 && uniform() < p.reorder) {
            at += p.reorderDelayMs;
            stats.reordered++;
          }
          schedule(at, EV_TO_B, s);
        }
        startXmit(t);
        break;
      }
      case EV_TO_B:
      case EV_TO_A: {
        const to = heap.popKind === EV_TO_B ? tb : ta;
        to.xmit(pool.buf, s * SLOT_BYTES, pool.len[s]);
        if (heap.popKind === EV_TO_B) stats.toB++;
        else stats.toA++;
        pool.release(s);
        break;
      }
    }
  }
  if (heap.size) time.timers.mod(timer, heap.peek());
}

ta.start(
  (buf, off, len) => {
    if (len > SLOT_BYTES) return;
    const s = pool.alloc(buf, off, len);
    const now = time.now();
    q.enqueue(s, now);
    if (q.packets > stats.maxQueue) stats.maxQueue = q.packets;
    if (busyUntil < 0) startXmit(now);
  },
  (code) => console.error(`relay: ${nameA}: ${code}`),
);
tb.start(
  (buf, off, len) => {
    if (len > SLOT_BYTES) return;
    if (p.ackLoss > 0 && uniform() < p.ackLoss) {
      stats.ackLost++;
      return;
    }
    schedule(time.now() + owd, EV_TO_A, pool.alloc(buf, off, len));
  },
  (code) => console.error(`relay: ${nameB}: ${code}`),
);
const stop = () => {
  console.log(JSON.stringify(stats));
  process.exit(0);
};
process.on('SIGTERM', stop);
setTimeout(stop, Number(secs) * 1000).unref();
setInterval(() => {}, 1 << 30);
console.log('ready');
