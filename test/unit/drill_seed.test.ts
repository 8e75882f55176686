/**
 * Seed 000: blocking-write.pkt with tcp_min_tso_segs=10 on a TSO link must
 * reproduce the seed's tcpdump trace segment for segment: the 5000/10000-byte
 * super-segments, the write blocking until ACK 36001, the 1000 bytes it then
 * sends, the RTO retransmission of 36001:37001 and the FIN when packetdrill
 * exits and closes the socket. The script is read from the corpus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusDir } from '../drill/corpus.js';
import { runScript, fmtOut } from '../drill/run.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const file = join(corpusDir(repo), 'tcp', 'blocking', 'blocking-write.pkt');
const present = existsSync(file);
const skip = !present && process.env.CI !== 'true' ? `blocking-write.pkt not found at ${file}` : false;

/**
 * The seed's trace, outbound segments (tcpdump's absolute times summed from
 * its -ttt deltas, script time 0 = the socket call; the SYN arrives at 0.1).
 * Every multi-MSS packet carries PSH (Linux forces it for GRO); the
 * single-MSS retransmission does not.
 */
const TRACE: [string, number, number, number][] = [
  // flags, seq, end, ack
  ['S.', 0, 0, 1],
  ['P.', 1, 5001, 1],
  ['P.', 5001, 10001, 1],
  ['P.', 10001, 20001, 1],
  ['P.', 20001, 30001, 1],
  ['P.', 30001, 35001, 1],
  ['P.', 35001, 45001, 1],
  ['P.', 45001, 55001, 1],
  ['P.', 55001, 60001, 1],
  ['P.', 60001, 61001, 1],
  ['.', 36001, 37001, 1],
  ['F.', 61001, 61001, 1],
];

test('seed 000: blocking-write.pkt passes and reproduces the tcpdump trace', { skip }, () => {
  const { outcome, run } = runScript(readFileSync(file, 'utf8'), file);
  assert.equal(outcome.status, 'pass', JSON.stringify(outcome));
  assert.ok(run);
  assert.equal(run.stack.tcp.sysctl.tcp_min_tso_segs, 2, 'the script restores tcp_min_tso_segs at its end');
  // The script ends when the write returns (ACK 36001 at 0.5); the RTO then fires on 36001:37001.
  // (Each system call takes the runner's 2 us, so the times are the script's to a few microseconds.)
  const ackAt = 500;
  assert.ok(Math.abs(run.now() - ackAt) < 0.1, `the script ended at ${run.now()} ms`);
  run.advanceTo(ackAt + 330);
  // packetdrill exits and closes its sockets: the FIN follows the retransmission.
  run.closeAll();
  run.advanceTo(ackAt + 400);
  const out = run.outLog;
  const got = out.map((s) => `${s.flags} ${s.seq}:${s.end}(${s.len}) ack ${s.ack}`);
  const want = TRACE.map(([f, a, b, ack]) => `${f} ${a}:${b}(${b - a}) ack ${ack}`);
  assert.deepEqual(got, want, out.map(fmtOut).join('\n'));
  // Times: SYN-ACK at 0.1, the first write's segments at 0.2, each ACK's burst at its arrival.
  assert.deepEqual(
    out.slice(0, 10).map((s) => Math.round(s.at * 1000) / 1000),
    [0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.4, 0.4, 0.5],
  );
  // The write woke at ACK 36001 (not 30001: the stream was not writable then), sending 60001:61001 at once.
  assert.equal(Math.round(out[9].at * 1000) / 1000, 0.5);
  // RTO after ACK 36001: srtt 100 ms + rttvar 200 ms (tcp_rto_min) on the virtual clock's exact 100 ms RTTs;
  // the seed's Linux run shows 0.326 s because its real RTTs jittered (0.111 s for the handshake).
  assert.ok(Math.abs(out[10].at - 0.8) < 0.010, `retransmission at ${out[10].at}`);
  assert.equal(out[10].len, 1000);
  assert.equal(out[11].flags, 'F.');
  // Windows as the trace shows them: 65535 unscaled on the SYN-ACK, then 256 (<< 8).
  assert.deepEqual(out.map((s) => s.win), [65535, ...Array(11).fill(256)]);
});
