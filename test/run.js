#!/usr/bin/env node
// Runs the compiled tests (dist/test) with node's built-in runner.
//   node test/run.js            unit, then integration
//   node test/run.js unit       unit only
//   node test/run.js integration
// Integration tests need root and /dev/net/tun; without them they skip
// with a message, except under CI=true where a skip is a failure (see
// test/integration/netns.ts).
import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const which = process.argv[2] ?? 'all';
const suites = which === 'all' ? ['unit', 'integration'] : [which];
const files = [];
for (const s of suites) {
  const dir = join(root, 'dist', 'test', s);
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.test.js')) files.push(join(dir, f));
}
if (files.length === 0) {
  console.error(`no compiled tests under dist/test/{${suites.join(',')}}: run \`npm run build\` first`);
  process.exit(1);
}
// Integration tests share the machine's two cores and create namespaces: one file at a time.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
let status = r.status ?? 1;
// The daemon runs with TAP offloads by default (vnet header, checksum and TSO/GRO); every
// integration test runs once more over the plain link, where the stack does all of that itself
// (tcp_fault's daemons run --fault, which is plain already).
const plain = files.filter((f) => f.includes(join('dist', 'test', 'integration')) && !f.endsWith('tcp_fault.test.js'));
if (plain.length) {
  console.log('\n# the integration tests again over the plain link (--offload off)');
  const p = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...plain], { stdio: 'inherit', env: { ...process.env, TAPSTACK_OFFLOAD: 'off' } });
  if (p.status !== 0) status = p.status ?? 1;
}
process.exit(status);
