/**
 * The layout's rules, checked: no import cycle at run time inside src/
 * (dpdm with type-only imports erased), type-only circles only through
 * the struct net header, and no file in src/net too long to read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DPDM = join(ROOT, 'node_modules', 'dpdm', 'lib', 'bin', 'dpdm.js');
/** The longest a file in src/net may be. */
const MAX_LINES = 1100;
/** The one module type-only circles may pass through: struct net names every protocol's state. */
const NET_HEADER = 'src/net/core/net.ts';

/** dpdm's circles over src/ (`transform`: type-only imports erased, as at run time). */
function circles(transform: boolean): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'dpdm-'));
  try {
    const out = join(dir, 'deps.json');
    const args = [DPDM, '--no-tree', '--no-warning', '--no-progress', '--circular', '-o', out, 'src/**/*.ts'];
    if (transform) args.splice(1, 0, '-T');
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `dpdm failed: ${r.stderr}`);
    return (JSON.parse(readFileSync(out, 'utf8')) as { circulars: string[][] }).circulars;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no import cycle inside src/ at run time (type-only imports erased)', () => {
  const found = circles(true);
  assert.deepEqual(found, [], found.map((c) => c.join(' -> ')).join('\n'));
});

test('type-only circles all pass through the struct net header', (t) => {
  const found = circles(false);
  t.diagnostic(`type-only circles: ${found.length}, all through ${NET_HEADER}`);
  const others = found.filter((c) => !c.includes(NET_HEADER));
  assert.deepEqual(others, [], others.map((c) => c.join(' -> ')).join('\n'));
});

test(`no file in src/net is longer than ${MAX_LINES} lines`, () => {
  const long: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const lines = readFileSync(p, 'utf8').split('\n').length - 1;
        if (lines > MAX_LINES) long.push(`${relative(ROOT, p)}: ${lines}`);
      }
    }
  };
  walk(join(ROOT, 'src', 'net'));
  assert.deepEqual(long, []);
});
