#!/usr/bin/env node
// Runs the compiled tests (dist/test) with node's built-in runner.
//   node test/run.js            unit, then integration (only if the unit tests pass)
//   node test/run.js unit       unit only
//   node test/run.js integration
// Integration tests need root and /dev/net/tun; without them they skip
// with a message, except under CI=true where a skip is a failure (see
// test/integration/netns.ts).
import { readdirSync, existsSync, statSync, chmodSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const which = process.argv[2] ?? 'all';
const suites = which === 'all' ? ['unit', 'integration'] : [which];
const filesOf = (s) => {
  const dir = join(root, 'dist', 'test', s);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => join(dir, f));
};
const files = Object.fromEntries(suites.map((s) => [s, filesOf(s)]));
if (suites.every((s) => files[s].length === 0)) {
  console.error(`no compiled tests under dist/test/{${suites.join(',')}}: run \`npm run build\` first`);
  process.exit(1);
}
/** A run silent this long gets a line saying it is still going (a long test is not a hung one). */
const QUIET_MS = 30_000;
// Integration tests share the machine's two cores and create namespaces: one file at a time.
const run = (list, env = process.env) =>
  new Promise((resolve) => {
    const start = Date.now();
    const p = spawn(process.execPath, ['--test', '--test-concurrency=1', ...list], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let lastOutput = start;
    let lastDone = '';
    const forward = (from, to) =>
      from.on('data', (chunk) => {
        lastOutput = Date.now();
        to.write(chunk);
        for (const m of chunk.toString().matchAll(/^(?:not )?ok \d+ - (.*)$/gm)) lastDone = m[1];
      });
    forward(p.stdout, process.stdout);
    forward(p.stderr, process.stderr);
    const beat = setInterval(() => {
      if (Date.now() - lastOutput < QUIET_MS) return;
      lastOutput = Date.now();
      console.log(`# ${Math.round((Date.now() - start) / 1000)} s in, still running${lastDone ? ` (last finished: ${lastDone})` : ''}`);
    }, 1000);
    p.on('close', (code) => {
      clearInterval(beat);
      resolve(code ?? 1);
    });
  });
/**
 * Some integration tests run programs from this checkout as another user
 * (nobody: the daemon after its privilege drop, `tapstack capture` refused).
 * A checkout under a private directory (a mktemp dir, root's home) is out of
 * their reach: as root, let others through (o+x, not read) the directories
 * above it that keep them out, for the run only; the modes are put back at
 * exit.
 */
function traversable() {
  if (process.getuid?.() !== 0) return;
  const changed = [];
  for (let d = root; ; d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if (!(mode & 0o001)) {
      chmodSync(d, mode | 0o001);
      changed.push([d, mode]);
    }
    if (dirname(d) === d) break;
  }
  if (!changed.length) return;
  console.log(`# tests run programs as nobody from this checkout: o+x for the run on ${changed.map(([d]) => d).join(', ')}`);
  process.on('exit', () => {
    for (const [d, mode] of changed) chmodSync(d, mode);
  });
}

let status = 0;
for (const s of suites) {
  if (!files[s].length) continue;
  // As root, install what the integration tests need first (once); see test/deps.js.
  if (s === 'integration') {
    const d = spawnSync(process.execPath, [join(root, 'test', 'deps.js'), 'tests'], { stdio: 'inherit' });
    if (d.status !== 0) process.exit(d.status ?? 1);    traversable();
  }
  const r = await run(files[s]);
  if (r !== 0) status = r;
  // A broken build or stack fails the integration tests for the same reason, only slower.
  if (s === 'unit' && r !== 0 && suites.includes('integration')) {
    console.log('\n# unit tests failed: the integration tests are not run');
    process.exit(status);
  }
  if (s !== 'integration') continue;
  // The daemon runs with TAP offloads by default (vnet header, checksum and TSO/GRO); every
  // integration test runs once more over the plain link, where the stack does all of that itself
  // (tcp_fault's daemons run --fault, which is plain already).
  const plain = files[s].filter((f) => !f.endsWith('tcp_fault.test.js'));
  console.log('\n# the integration tests again over the plain link (--offload off)');
  const p = await run(plain, { ...process.env, TAPSTACK_OFFLOAD: 'off' });
  if (p !== 0) status = p;
}
process.exit(status);
