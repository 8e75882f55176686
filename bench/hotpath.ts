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
import { ADDR_A, measureRuns, median, twoStacks } from './inproc.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg } from '../src/net/ipv4/tcp.js';
import type { TcpSock } from '../src/net/ipv4/tcp_sock.js';
import { tcpNewSock } from '../src/net/ipv4/tcp_ipv4.js';

const MB = Number(process.env.HOT_MB ?? 256);
const RUNS = Number(process.env.HOT_RUNS ?? 5);
const TSO = process.env.HOT_TSO === '1';

/** A sends `bytes` to B; every frame crosses the wire between stack calls, a virtual millisecond per round. */
function bulk(bytes: number): void {
  const { a, b, time, flush } = twoStacks({ tso: TSO, arenaBytes: 8 << 20, frames: 4096 });
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
const costs = await measureRuns(RUNS, () => bulk(Math.min(MB, 64) * 1048576), () => bulk(MB * 1048576));
const rows = costs.map((c) => ({ cpuMsPerMiB: c.cpuMs / MB, gcShare: c.gcMs / c.cpuMs, gcPerMiB: c.gcs / MB }));
console.log(`hotpath ${TSO ? 'TSO' : 'MTU'} ${MB} MiB x ${RUNS}: CPU ms/MiB ${rows.map((x) => x.cpuMsPerMiB.toFixed(3)).join(' ')}; median ${median(rows.map((x) => x.cpuMsPerMiB)).toFixed(3)}`);
console.log(`  GC share of CPU ${rows.map((x) => (100 * x.gcShare).toFixed(1) + '%').join(' ')}; GCs per MiB ${rows.map((x) => x.gcPerMiB.toFixed(2)).join(' ')}`);
console.log(JSON.stringify({ mode: TSO ? 'tso' : 'mtu', mb: MB, runs: rows }));
