/**
 * `npm run soak` as its users run it, shortened: half a minute of every
 * flow, the abusive API client and the fuzzer beside them (test/soak/main.ts
 * makes and removes its own namespace). Every flow must have moved bytes,
 * none may have a mismatched byte, the daemon's memory and event-loop
 * figures must be there, and the output must keep its form: a line per
 * sample, the tables, and the verdict line the checks outside the
 * repository read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, exitOf, outputOf, requireIntegration, track } from './netns.js';

const skip = requireIntegration(['curl', 'python3']);

test('a half-minute soak: every flow moves bytes, none mismatched, the daemon measured, the verdict line', { skip, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-soak-test-'));
  try {
    const json = join(dir, 'soak.json');
    const p = spawn(process.execPath, [join(ROOT, 'dist', 'test', 'soak', 'main.js'), '--minutes', '0.5', '--seed', '7', '--json', json], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(p);
    const code = await exitOf(p, 200_000);
    const text = outputOf(p);
    assert.equal(code, 0, `the soak passes; it printed:\n${text.slice(-4000)}`);
    assert.match(text, /^\[ +\d+s\] rss [\d.]+ MB heap [\d.]+ MB buffers [\d.]+ MB loop p50\/p99\/max [\d.]+\/[\d.]+\/[\d.]+ ms \| MB\/s /m, 'a line per sample');
    assert.match(text, /^per minute:$/m);
    assert.match(text, /^per flow:$/m);
    assert.match(text, /^verdict: memory not judged \(the memory verdict needs >= 3 minutes; this run was 0\.50; peak RSS [\d.]+ MB, the cap [\d.]+ MB\), 0 mismatches$/m, 'the verdict line');
    const r = JSON.parse(readFileSync(json, 'utf8')) as {
      pass: boolean;
      flows: Record<string, { bytes: number; ops: number; mismatches: number }>;
      samples: { rssMB: number; heapMB: number; buffersMB: number; loop: { p99: number } }[];
      fuzzer: { sent: number };
      abuse: { bursts: number };
    };
    assert.equal(r.pass, true);
    const names = ['echo4', 'echo6', 'chargen', 'k2s', 's2k', 'preload', 'http', 'curl', 'rr', 'rr6', 'rr-in', 'churn-in', 'churn-out', 'udp4', 'udp6', 'udp-lib'];
    for (const n of names) {
      assert.ok(r.flows[n]?.bytes > 0 && r.flows[n].ops > 0, `flow ${n} moved bytes: ${JSON.stringify(r.flows[n])}`);
      assert.equal(r.flows[n].mismatches, 0, `flow ${n}: no mismatched byte`);
    }
    assert.ok(r.samples.length >= 5, 'a sample every 5 s');
    for (const s of r.samples) {
      assert.ok(s.rssMB > 0 && s.heapMB > 0 && s.buffersMB > 0 && Number.isFinite(s.loop.p99), `the daemon's RSS, heap and event-loop delay in every sample: ${JSON.stringify(s)}`);
    }
    assert.ok(r.fuzzer.sent > 50, 'the fuzzer sent frames (5 a second)');
    assert.ok(r.abuse.bursts >= 2, 'the abusive client ran');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
