/**
 * The receive-path fuzzer's quick run (test/fuzz/): every saved regression
 * case replayed, then a seeded run over every scenario (Ethernet, ARP,
 * IPv4 with options and fragments, ICMP, IPv6 with extension headers,
 * ICMPv6/ND/MLD, UDP, and the target connection in each TCP state) in both
 * families. TAPSTACK_FUZZ_SEED picks another seed; the long run is
 * `npm run fuzz -- --minutes N`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMap, loadRegressions, replay, run } from '../fuzz/fuzz.js';
import { SCENARIOS } from '../fuzz/scenarios.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SEED = Number(process.env.TAPSTACK_FUZZ_SEED ?? 0x5eed);

test('every saved fuzzer regression replays without a failure', () => {
  const cases = loadRegressions(root);
  assert.ok(cases.length >= 4, `regression cases in test/fuzz/regressions: ${cases.length}`);
  for (const { file, c } of cases) {
    const e = replay(c);
    assert.equal(e, null, `${file} (${c.note ?? c.failure}): ${e?.stack}`);
  }
});

test(`quick fuzz run, seed ${SEED}: no exception, every drop with its reason, TCP invariants, the side connection intact`, () => {
  console.log(`# fuzz seed ${SEED} (TAPSTACK_FUZZ_SEED=${SEED} to repeat)`);
  const perScenario = 24;
  const s = run({ seed: SEED, episodes: SCENARIOS.length * 2 * perScenario, steps: 200, stopOnFailure: true });
  console.log(`# fuzz: ${s.episodes} episodes, ${s.frames} frames (${s.mutated} mutated)`);
  console.log(`# states met: ${fmtMap(s.states)}`);
  console.log(`# drop reasons: ${fmtMap(s.reasons)}`);
  const f = s.failures[0];
  assert.equal(f, undefined, f && `${f.error}\nthe case, shrunk (save it under test/fuzz/regressions/ once fixed):\n${JSON.stringify(f.c)}`);
  // Not vacuous: the frames met the target in every TCP state and were dropped for many reasons.
  for (const st of ['LISTEN', 'SYN-SENT', 'NEW-SYN-RECV', 'SYN-RECV', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT']) {
    assert.ok((s.states.get(st) ?? 0) > 20, `fuzzed frames met the target in ${st}: ${s.states.get(st) ?? 0}`);
  }
  assert.ok(s.reasons.size >= 20, `distinct drop reasons: ${s.reasons.size}`);
  assert.ok(s.frames > 50_000, `frames: ${s.frames}`);
});
