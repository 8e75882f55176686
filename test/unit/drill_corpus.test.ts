/**
 * The packetdrill corpus as a test suite: every script of
 * ../shared/packetdrill/tcp (or $TAPSTACK_PACKETDRILL/tcp) runs as IPv4, as
 * IPv6 and as ipv4-mapped-ipv6 and is reported pass / fail (first mismatch)
 * / unsupported (reason), with the totals. The runs listed in
 * test/drill/expected-pass.txt ("path (variant)") must pass: a regression fails;
 * with test/drill/linux-fails.txt (the runs Linux fails) they name every run.
 * Without the corpus the suite is skipped, except under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusDir, listScripts, runCorpus } from '../drill/corpus.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dir = corpusDir(repo);
const present = listScripts(dir).length > 0;
const why = `packetdrill corpus not found at ${dir} (set TAPSTACK_PACKETDRILL to its directory)`;

test('packetdrill corpus is present (required under CI)', { skip: !present && process.env.CI !== 'true' ? why : false }, () => {
  assert.ok(present, why);
});

test('packetdrill corpus: expected scripts pass', { skip: present ? false : why }, () => {
  const t0 = performance.now();
  const lines: string[] = [];
  const results = runCorpus(dir, (l) => lines.push(l));
  // One line per run and the totals, in the test output.
  console.log(lines.join('\n'));
  console.log(`corpus run: ${Math.round(performance.now() - t0)} ms`);
  const expected = readFileSync(join(repo, 'test', 'drill', 'expected-pass.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
  assert.ok(expected.length > 0, 'expected-pass.txt lists no scripts');
  const regressed: string[] = [];
  const id = (name: string, family: string) => `${name} (${family})`;
  for (const want of expected) {
    const r = results.find((x) => id(x.name, x.family) === want);
    if (!r) regressed.push(`${want}: not in the corpus`);
    else if (r.outcome.status !== 'pass') regressed.push(`${want}: ${r.outcome.status === 'fail' ? r.outcome.message.split('\n')[0] : r.outcome.reason}`);
  }
  assert.deepEqual(regressed, [], `runs expected to pass did not:\n${regressed.join('\n')}`);
  for (const family of ['ipv6', 'ipv4-mapped-ipv6']) {
    assert.ok(expected.some((e) => e.endsWith(`(${family})`)), `expected-pass.txt pins no ${family} run`);
  }
  // The runs Linux itself fails (linux-fails.txt) are the only ones allowed not to pass: every run is on one list.
  const linuxFails = readFileSync(join(repo, 'test', 'drill', 'linux-fails.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
  const unaccounted = results.map((r) => id(r.name, r.family)).filter((k) => !expected.includes(k) && !linuxFails.includes(k));
  assert.deepEqual(unaccounted, [], 'runs neither expected to pass nor failing on Linux');
  // Every run the list does not name is reported above; a newly passing one should be added to the list.
  const unlisted = results.filter((r) => r.outcome.status === 'pass' && !expected.includes(id(r.name, r.family))).map((r) => id(r.name, r.family));
  if (unlisted.length) console.log(`passing but not in expected-pass.txt: ${unlisted.join(', ')}`);
  assert.ok(existsSync(join(repo, 'test', 'drill', 'expected-pass.txt')));
});
