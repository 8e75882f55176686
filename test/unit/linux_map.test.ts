/**
 * docs/linux-map.md against the source: every entry names a definition
 * that exists in its file, and every definition whose doc comment names
 * a Linux function is in the document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { entriesOf, parseLinuxMap, ROOT, sourceEntries, type MapEntry } from '../lib/linux_map.js';

const doc = parseLinuxMap(readFileSync(join(ROOT, 'docs', 'linux-map.md'), 'utf8'));
const key = (e: MapEntry): string => `${e.file} ${e.name} <- ${e.linux.join(', ')}`;

/** Whether `file` defines `name` (a function, class or const, or Class.method). */
function defines(src: string, name: string): boolean {
  const esc = (s: string) => s.replace(/[$#]/g, '\\$&');
  const dot = name.indexOf('.');
  if (dot < 0) return new RegExp(`^(?:export )?(?:(?:async )?function|(?:abstract )?class|const) ${esc(name)}\\b`, 'm').test(src);
  const cls = name.slice(0, dot);
  const start = new RegExp(`^(?:export )?(?:abstract )?class ${esc(cls)}\\b.*$`, 'm').exec(src);
  if (!start) return false;
  const end = src.indexOf('\n}\n', start.index);
  const body = src.slice(start.index, end < 0 ? undefined : end);
  return new RegExp(`^ {2}(?:(?:static|readonly|private|protected|public|async|get|set) )*${esc(name.slice(dot + 1))}\\s*[(<]`, 'm').test(body);
}

test('the document lists entries for the layers it claims', () => {
  assert.ok(doc.length > 400, `${doc.length} entries`);
  for (const dir of ['src/net/core/', 'src/net/ipv4/', 'src/net/ipv6/']) assert.ok(doc.some((e) => e.file.startsWith(dir)), dir);
  for (const fn of ['tcp_ack', 'tcp_v4_rcv', 'ip_rcv', 'ipv6_rcv', 'tcp_write_xmit', 'udp_sendmsg', 'neigh_resolve_output']) {
    assert.ok(doc.some((e) => e.linux.includes(fn)), fn);
  }
});

test('every entry of docs/linux-map.md names a definition that exists', () => {
  const missing: string[] = [];
  const sources = new Map<string, string | null>();
  for (const e of doc) {
    if (!sources.has(e.file)) sources.set(e.file, existsSync(join(ROOT, e.file)) ? readFileSync(join(ROOT, e.file), 'utf8') : null);
    const src = sources.get(e.file)!;
    if (src === null) missing.push(`${e.file}: no such file`);
    else if (!defines(src, e.name)) missing.push(`${e.file}: no ${e.name}`);
  }
  assert.deepEqual(missing, []);
});

test('every definition whose comment names a Linux function is in docs/linux-map.md, with those names', () => {
  const listed = new Set(doc.map(key));
  const absent = sourceEntries().map(key).filter((k) => !listed.has(k));
  assert.deepEqual(absent, [], 'print the tables with: node dist/test/lib/linux_map.js');
  const inSource = new Set(sourceEntries().map(key));
  const stale = doc.map(key).filter((k) => !inSource.has(k));
  assert.deepEqual(stale, [], 'entries whose definition no longer names these Linux functions');
});

test('the extractor reads the comment forms the source uses', () => {
  const src = [
    '/** ip_rcv + ip_rcv_core + ip_rcv_finish. */',
    'export function ipRcv(): void {}',
    '/** the plain English comment names nothing */',
    'function helper(): void {}',
    'export class Fib {',
    '  /**',
    '   * inet_addr_type: what kind of address.',
    '   */',
    '  addrType(a: number): number {',
    '    return a;',
    '  }',
    '  /** ip_route_output, declared only */',
    '  lookup(a: number): number;',
    '}',
  ].join('\n');
  assert.deepEqual(entriesOf('x.ts', src), [
    { file: 'x.ts', name: 'ipRcv', linux: ['ip_rcv', 'ip_rcv_core', 'ip_rcv_finish'] },
    { file: 'x.ts', name: 'Fib.addrType', linux: ['inet_addr_type'] },
  ]);
});
