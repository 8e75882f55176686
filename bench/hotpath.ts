/**
 * The stack's own per-byte cost, without the kernel, the TAP or the other
 * processes on the machine: two stacks in this process on a virtual clock
 * and a wire between them that copies frames into an arena as the TAP
 * driver does, one bulk connection A -> B. Every microsecond measured is
 * JavaScript of both stacks and that copy, so the figure is
 * far steadier than the TAP bench on a shared machine. Run after
 * `npm run build`:
 *
 *   node dist/bench/hotpath.js            # MTU frames, software checksums
 *   HOT_TSO=1 node dist/bench/hotpath.js  # 64 KB TSO super-frames, partial checksums, as with offloads
 *
 * HOT_MB (default 256) per run, HOT_RUNS (default 5) after a warm-up; prints CPU ms per
 * MiB for each run and the median, and the garbage collector's share.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Stack } from '../src/net/stack.js';
import { VirtualTime } from '../src/lib/time.js';
import { SeededRandom } from '../src/lib/random.js';
import type { LinkDriver } from '../src/net/core/dev.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg } from '../src/net/ipv4/tcp.js';
import type { TcpSock } from '../src/net/ipv4/tcp_sock.js';
import { tcpNewSock } from '../src/net/ipv4/tcp_ipv4.js';

const MB = Number(process.env.HOT_MB ?? 256);
const RUNS = Number(process.env.HOT_RUNS ?? 5);
const TSO = process.env.HOT_TSO === '1';
const ADDR_A = 0x0a000002;
const ADDR_B = 0x0a000001;

/** A wire like the TAP driver: xmit copies each frame into an arena; drain() hands them to the peer in place. */
class ArenaWire implements LinkDriver {
  peer!: Stack;
  #arena = Buffer.allocUnsafe(8 << 20);
  #offs = new Int32Array(4096);
  #lens = new Int32Array(4096);
  #n = 0;
  #used = 0;
  xmit(buf: Buffer, off: number, len: number): boolean {
    if (this.#n === this.#offs.length || this.#used + len > this.#arena.length) return false;
    buf.copy(this.#arena, this.#used, off, off + len);
    this.#offs[this.#n] = this.#used;
    this.#lens[this.#n++] = len;
    this.#used += (len + 7) & ~7;
    return true;
  }
  drain(): number {
    const n = this.#n;
    // With TSO, the receiving side sees frames as the TAP reports the kernel's: checksum vouched for, GRO-sized.
    for (let i = 0; i < n; i++) this.peer.receive(this.#arena, this.#offs[i], this.#lens[i], TSO, TSO ? 1448 : 0);
    this.#n = 0;
    this.#used = 0;
    return n;
  }
}

function setup(): { a: Stack; b: Stack; time: VirtualTime; wa: ArenaWire; wb: ArenaWire } {
  const time = new VirtualTime(0);
  const wa = new ArenaWire();
  const wb = new ArenaWire();
  const a = new Stack({ ifname: 'a', mac: Buffer.from([2, 0, 0, 0, 0, 0xa]), mtu: 1500, ipv4: [{ addr: ADDR_A, prefix: 24 }], gateway: 0 }, wa, time, new SeededRandom(1));
  const b = new Stack({ ifname: 'b', mac: Buffer.from([2, 0, 0, 0, 0, 0xb]), mtu: 1500, ipv4: [{ addr: ADDR_B, prefix: 24 }], gateway: 0 }, wb, time, new SeededRandom(2));
  wa.peer = b;
  wb.peer = a;
  a.up();
  b.up();
  if (TSO) {
    for (const s of [a, b]) {
      s.dev.tso = true;
      s.dev.csumOffload = true;
    }
  }
  return { a, b, time, wa, wb };
}

/** A sends `bytes` to B; every frame crosses the wire between stack calls, a virtual millisecond per round. */
function bulk(bytes: number): void {
  const { a, b, time, wa, wb } = setup();
  const flush = () => {
    while (wa.drain() + wb.drain() > 0);
  };
  const lsk = tcpNewSock(a.tcp);
  tcpBind(a.tcp, lsk, 0, 9000);
  tcpListen(a.tcp, lsk, 8);
  const csk = tcpNewSock(b.tcp);
  tcpConnect(b.tcp, csk, ADDR_A, 9000);
  flush();
  const chunk = Buffer.alloc(65536, 0x5a);
  const into = Buffer.alloc(262144);
  let sender: TcpSock | null = null;
  let sent = 0;
  let got = 0;
  for (let round = 0; got < bytes; round++) {
    if (round > 10_000_000) throw new Error('bulk did not finish');
    if (!sender) {
      const c = tcpAccept(a.tcp, lsk);
      if (typeof c !== 'number') sender = c;
    }
    while (sender && sent < bytes) {
      const n = tcpSendmsg(a.tcp, sender, chunk.subarray(0, Math.min(chunk.length, bytes - sent)));
      flush();
      if (n <= 0) break;
      sent += n;
    }
    for (;;) {
      const n = tcpRecvmsg(b.tcp, csk, into);
      flush();
      if (n <= 0) break;
      if (into[0] !== 0x5a || into[n - 1] !== 0x5a) throw new Error('wrong bytes');
      got += n;
    }
    time.advance(1);
    flush();
  }
}
let gcMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcCount++;
  }
}).observe({ entryTypes: ['gc'] });

const rows: { cpuMsPerMiB: number; gcShare: number; gcPerMiB: number }[] = [];
// A warm-up run, not counted: the JIT has compiled the hot path by its end.
bulk(Math.min(MB, 64) * 1048576);
for (let r = 0; r < RUNS; r++) {
  await new Promise((res) => setImmediate(res));
  const g0 = gcMs;
  const n0 = gcCount;
  const c0 = process.cpuUsage();
  bulk(MB * 1048576);
  const c = process.cpuUsage(c0);
  // GC entries are delivered asynchronously.
  await new Promise((res) => setTimeout(res, 50));
  const cpuMs = (c.user + c.system) / 1000;
  rows.push({ cpuMsPerMiB: cpuMs / MB, gcShare: (gcMs - g0) / cpuMs, gcPerMiB: (gcCount - n0) / MB });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`hotpath ${TSO ? 'TSO' : 'MTU'} ${MB} MiB x ${RUNS}: CPU ms/MiB ${rows.map((x) => x.cpuMsPerMiB.toFixed(3)).join(' ')}; median ${med(rows.map((x) => x.cpuMsPerMiB)).toFixed(3)}`);
console.log(`  GC share of CPU ${rows.map((x) => (100 * x.gcShare).toFixed(1) + '%').join(' ')}; GCs per MiB ${rows.map((x) => x.gcPerMiB.toFixed(2)).join(' ')}`);
console.log(JSON.stringify({ mode: TSO ? 'tso' : 'mtu', mb: MB, runs: rows }));
