/**
 * The map from Linux's functions to ours (docs/linux-map.md): the
 * definitions in src/net whose doc comment opens with the Linux names
 * they mirror ("tcp_ack: ...", "ip_rcv + ip_rcv_core: ..."), and the
 * parser of the document. test/unit/linux_map.test.ts checks the two
 * agree; run this file to print the document's tables:
 *
 *   node dist/test/lib/linux_map.js
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One definition of ours and the Linux names its comment gives. */
export interface MapEntry {
  /** The file, relative to the repository: src/net/ipv4/tcp_input.ts. */
  file: string;
  /** A function or class, or Class.method. */
  name: string;
  linux: string[];
}

const FUNCTION = /^(?:export )?(?:async )?function (\w+)/;
const CONST_FN = /^(?:export )?const (\w+) = (?:\(|function)/;
const CLASS = /^(?:export )?(?:abstract )?class (\w+)/;
const METHOD = /^ {2}(?:(?:static|readonly|private|protected|public|async|get|set) )*(#?\w+)\s*(?:<[^>]*>)?\(.*\{\s*$/;

/**
 * The Linux identifiers a doc comment opens with: names joined by "+",
 * ",", "/", "and", "then" or "or", each with an underscore (a Linux
 * symbol, not an English word), e.g. "ip_rcv + ip_rcv_core + ip_rcv_finish".
 */
export function linuxNames(comment: string): string[] {
  const text = comment.replace(/\n\s*\*\s?/g, ' ').trim();
  const m = /^(?:[a-z_][a-z0-9_]*(?:\(\))?(?:\s*(?:\+|,|\/|and|then|or)\s*[a-z_][a-z0-9_]*(?:\(\))?)*)/.exec(text);
  if (!m) return [];
  return [...m[0].matchAll(/[a-z_][a-z0-9_]*/g)].map((x) => x[0]).filter((x) => x.includes('_'));
}

/** Every definition in one source text whose doc comment names Linux functions. */
export function entriesOf(file: string, src: string): MapEntry[] {
  const out: MapEntry[] = [];
  const lines = src.split('\n');
  let cls: string | null = null;
  let doc: string | null = null;
  let inDoc = false;
  let docLines: string[] = [];
  for (const line of lines) {
    if (inDoc) {
      docLines.push(line);
      if (line.includes('*/')) {
        inDoc = false;
        doc = docLines.join('\n').replace(/^\s*\/\*\*/, '').replace(/\*\/\s*$/, '');
      }
      continue;
    }
    if (/^\s*\/\*\*/.test(line)) {
      docLines = [line];
      if (line.includes('*/')) doc = line.replace(/^\s*\/\*\*/, '').replace(/\*\/\s*$/, '');
      else inDoc = true;
      continue;
    }
    const c = CLASS.exec(line);
    if (c) cls = c[1];
    else if (line === '}') cls = null;
    let name: string | null = null;
    const f = FUNCTION.exec(line) ?? CONST_FN.exec(line);
    if (f) name = f[1];
    else if (c) name = c[1];
    else if (cls !== null) {
      const m = METHOD.exec(line);
      if (m && m[1] !== 'constructor') name = `${cls}.${m[1]}`;
    }
    if (name !== null && doc !== null) {
      const linux = linuxNames(doc);
      if (linux.length) out.push({ file, name, linux });
    }
    if (line.trim() !== '') doc = null;
  }
  return out;
}

/** The definitions of src/net, file by file. */
export function sourceEntries(): MapEntry[] {
  const out: MapEntry[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push(...entriesOf(relative(ROOT, p), readFileSync(p, 'utf8')));
    }
  };
  walk(join(ROOT, 'src', 'net'));
  return out;
}

/** The Linux file a module says it mirrors (the first net/... or include/... path in its header). */
export function linuxFileOf(src: string): string | null {
  const head = /^\/\*\*([\s\S]*?)\*\//.exec(src);
  const m = head ? /\b((?:net|include)\/[\w/]+\.[ch])\b/.exec(head[1]) : null;
  return m ? m[1] : null;
}

/** The document's tables: `### \`file\`` headings, then `| \`linux\`, ... | \`name\` |` rows. */
export function parseLinuxMap(md: string): MapEntry[] {
  const out: MapEntry[] = [];
  let file: string | null = null;
  for (const line of md.split('\n')) {
    const h = /^### `([^`]+)`/.exec(line);
    if (h) {
      file = h[1];
      continue;
    }
    const row = /^\|\s*(`[^|]+`)\s*\|\s*`([^`]+)`\s*\|\s*$/.exec(line);
    if (row && file) out.push({ file, name: row[2], linux: [...row[1].matchAll(/`([^`]+)`/g)].map((x) => x[1]) });
  }
  return out;
}

/** The tables as the document has them. */
export function renderLinuxMap(entries: MapEntry[]): string {
  const parts: string[] = [];
  let file = '';
  for (const e of entries) {
    if (e.file !== file) {
      file = e.file;
      const lx = linuxFileOf(readFileSync(join(ROOT, file), 'utf8'));
      parts.push(`\n### \`${file}\`${lx ? ` (${lx})` : ''}\n\n| Linux | here |\n|---|---|`);
    }
    parts.push(`| ${e.linux.map((x) => `\`${x}\``).join(', ')} | \`${e.name}\` |`);
  }
  return parts.join('\n') + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.stdout.write(renderLinuxMap(sourceEntries()));
