/**
 * The long fuzzer: `npm run fuzz -- --minutes N --seed S`.
 * Runs episodes over every scenario and both families until the time is
 * up, prints progress every few seconds (frames/s, the TCP states the
 * fuzzed frames met, the drop reasons they caused), and saves each
 * failure, shrunk, as a regression case in test/fuzz/regressions/ (the
 * unit test replays them all). Exits 1 if anything failed.
 *   --minutes N    how long (default 1)
 *   --seed S       where to start (default: the time; printed either way)
 *   --scenario X   only this scenario (repeatable)
 *   --no-save      do not write regression cases
 *   --replay FILE  replay one saved case, telling what each action moved
 *   --rings        fuzz the API's shared-memory data rings instead (hostile
 *                  indices, lengths and flags written by a client while the
 *                  daemon pumps: test/unit/api_ring_fuzz.test.ts for N minutes)
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { explain, fmtMap, run, saveRegression, type Case, type Stats } from './fuzz.js';
import { SCENARIOS } from './scenarios.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const replayFile = arg('replay');
if (replayFile) {
  // Tell what each action of a saved case moved, and how it ends.
  const c = JSON.parse(readFileSync(replayFile, 'utf8')) as Case;
  const e = explain(c, (s) => console.log(s));
  console.log(e ? `FAILS: ${e.stack}` : 'passes');
  process.exit(e ? 1 : 0);
}
const minutes = Number(arg('minutes') ?? 1);
const seed = Number(arg('seed') ?? (Date.now() & 0x7fffffff));
if (process.argv.includes('--rings')) {
  // The ring fuzzer is a node:test file bounded by RING_FUZZ_SECONDS (3 s in npm test); run it for the time asked.
  if (!Number.isFinite(minutes) || minutes <= 0 || !Number.isInteger(seed)) {
    console.error('usage: npm run fuzz -- --rings [--minutes N] [--seed S]');
    process.exit(2);
  }
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'unit', 'api_ring_fuzz.test.js');
  console.log(`fuzz: the data rings, seed ${seed}, ${minutes} min`);
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', file], {
    stdio: 'inherit',
    env: { ...process.env, RING_FUZZ_SECONDS: String(Math.round(minutes * 60)), RING_FUZZ_SEED: String(seed) },
  });
  process.exit(r.status ?? 1);
}
const only = process.argv.flatMap((a, i) => (a === '--scenario' ? [process.argv[i + 1]] : []));
const save = !process.argv.includes('--no-save');
if (!Number.isFinite(minutes) || minutes <= 0 || !Number.isInteger(seed)) {
  console.error('usage: npm run fuzz -- [--minutes N] [--seed S] [--scenario NAME] [--no-save]');
  process.exit(2);
}
for (const s of only) {
  if (!SCENARIOS.some((x) => x.name === s)) {
    console.error(`no scenario ${s}: ${SCENARIOS.map((x) => x.name).join(' ')}`);
    process.exit(2);
  }
}
// dist/test/fuzz/main.js -> the repository root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const t0 = Date.now();
console.log(`fuzz: seed ${seed}, ${minutes} min, scenarios: ${only.length ? only.join(' ') : 'all'}`);
let last = t0;
let lastFrames = 0;
let saved = 0;
/** One report and one saved case per distinct failure (its kind and message, numbers aside). */
const distinct = new Map<string, number>();
function report(f: Stats['failures'][number]): void {
  const n = (distinct.get(f.sig) ?? 0) + 1;
  distinct.set(f.sig, n);
  if (n > 1) return;
  console.log(`FAILURE in ${f.c.scenario} (family ${f.c.family}), ${f.c.actions.length} actions after shrinking:\n${f.error}`);
  if (save) console.log(`  saved as test/fuzz/regressions/${saveRegression(root, f.c)}`);
}
const stats = run({
  seed,
  deadline: t0 + minutes * 60_000,
  scenarios: only.length ? only : undefined,
  progress: (s) => {
    while (saved < s.failures.length) report(s.failures[saved++]);
    const now = Date.now();
    if (now - last < 10_000) return;
    const rate = ((s.frames - lastFrames) * 1000) / (now - last);
    last = now;
    lastFrames = s.frames;
    console.log(`[${Math.round((now - t0) / 1000)}s] episodes ${s.episodes} frames ${s.frames} (${rate.toFixed(0)}/s, ${s.mutated} mutated) failures ${s.failures.length}`);
    console.log(`  states: ${fmtMap(s.states)}`);
    console.log(`  drop reasons: ${fmtMap(s.reasons)}`);
  },
});
const secs = (Date.now() - t0) / 1000;
console.log(`\nfuzz summary: seed ${seed}, ${secs.toFixed(0)} s, ${stats.episodes} episodes, ${stats.frames} frames (${(stats.frames / secs).toFixed(0)}/s), ${stats.mutated} mutated, ${stats.failures.length} failures`);
console.log(`  states met: ${fmtMap(stats.states)}`);
console.log(`  drop reasons: ${fmtMap(stats.reasons)}`);
console.log(`  mutations: ${fmtMap(stats.ops, 60)}`);
while (saved < stats.failures.length) report(stats.failures[saved++]);
for (const [k, n] of distinct) console.log(`  failure ${k}: ${n} episode(s)`);
process.exit(stats.failures.length ? 1 : 0);
