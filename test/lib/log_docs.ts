/**
 * The daemon's log events (docs/logs.md): every pino call in src, with
 * its level, message and the fields of its object, read from the source,
 * and the document's table of them. test/unit/log_docs.test.ts checks the
 * two agree; run this file to print the table:
 *
 *   node dist/test/lib/log_docs.js
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface LogEvent {
  file: string;
  level: string;
  /** The message; a computed one is shown as `(computed)`. */
  msg: string;
  /** The object's top-level keys (`...x` for a spread). */
  fields: string[];
}

const CALL = /\blog\.(trace|debug|info|warn|error|fatal)\(/g;

/** The text from `open` (an opening bracket's index) to its matching close, quotes and templates skipped. */
function balanced(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === '`') {
      for (i++; i < s.length && s[i] !== c; i++) if (s[i] === '\\') i++;
      continue;
    }
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Split at top-level commas. */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === '`') {
      for (i++; i < s.length && s[i] !== c; i++) if (s[i] === '\\') i++;
    } else if (c === '(' || c === '{' || c === '[') i = balanced(s, i);
    else if (c === ',') {
      out.push(s.slice(from, i).trim());
      from = i + 1;
    }
  }
  out.push(s.slice(from).trim());
  return out.filter(Boolean);
}

function keys(obj: string): string[] {
  if (!obj.startsWith('{')) return obj === 'o' || obj === '{}' ? [] : [`(${obj.replace(/\s+/g, ' ')})`];
  return splitArgs(obj.slice(1, -1)).map((p) => {
    if (p.startsWith('...')) return p.replace(/\s+/g, ' ');
    const m = /^['"]?([\w$]+)['"]?\s*:/.exec(p);
    return m ? m[1] : p.replace(/\s+/g, ' ');
  });
}

function messages(arg: string | undefined, src: string, at: number): string[] {
  if (!arg) return ['(none)'];
  // A message passed in: the literal union its parameter's type allows (the nearest one above the call).
  if (/^\w+$/.test(arg)) {
    const head = src.slice(0, at);
    const decl = [...head.matchAll(new RegExp(`\\b${arg}: ((?:'[^']*'(?: \\| )?)+)`, 'g'))].pop();
    if (decl) return [...decl[1].matchAll(/'([^']*)'/g)].map((m) => m[1]);
  }
  const lits = [...arg.matchAll(/'((?:[^'\\]|\\.)*)'|`((?:[^`\\]|\\.)*)`/g)].map((m) => (m[1] ?? m[2]).replace(/\$\{[^}]*\}/g, '…'));
  return lits.length ? lits : ['(computed)'];
}

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
}

export function logEvents(): LogEvent[] {
  const files: string[] = [];
  walk(join(ROOT, 'src'), files);
  const events: LogEvent[] = [];
  for (const p of files) {
    const s = readFileSync(p, 'utf8');
    for (const m of s.matchAll(CALL)) {
      const open = m.index! + m[0].length - 1;
      const close = balanced(s, open);
      if (close < 0) continue;
      const args = splitArgs(s.slice(open + 1, close));
      // The services' log adapter passes its caller's object and message through.
      if (args.length === 2 && /^[a-z]$/.test(args[1])) continue;
      for (const msg of messages(args[1], s, m.index!)) events.push({ file: relative(ROOT, p), level: m[1], msg, fields: keys(args[0] ?? '') });
    }
  }
  return events;
}

/** The document's table, one row per event, by file. */
export function logTable(events = logEvents()): string {
  const rows = ['| file | level | message | fields |', '|---|---|---|---|'];
  for (const e of events) rows.push(`| ${e.file.replace(/^src\//, '')} | ${e.level} | ${e.msg.replace(/\|/g, '\\|')} | ${e.fields.map((f) => `\`${f.replace(/\|/g, '\\|')}\``).join(', ')} |`);
  return rows.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(logTable());
