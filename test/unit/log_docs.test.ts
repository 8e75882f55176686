/**
 * docs/logs.md lists every log event of the daemon (test/lib/log_docs.ts
 * reads them from the source): a log call added or changed without the
 * document fails here. Regenerate the table with
 * `node dist/test/lib/log_docs.js`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { logEvents, logTable, ROOT } from '../lib/log_docs.js';

test('docs/logs.md lists every log event with its level, message and fields', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'logs.md'), 'utf8');
  const at = doc.indexOf('| file | level | message | fields |');
  assert.ok(at > 0, 'docs/logs.md has its table');
  assert.equal(doc.slice(at), logTable(), 'the table is out of date: node dist/test/lib/log_docs.js');
  const events = logEvents();
  assert.ok(events.length >= 50, `${events.length} events found`);
  assert.ok(events.every((e) => e.msg && !e.msg.includes('(computed)')), 'every message is known');
});
