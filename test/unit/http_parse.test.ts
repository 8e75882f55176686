/**
 * The request-head parser reads its lines and fields with index arithmetic
 * for speed; its results must be those of the plain reading it replaced (a
 * split into lines, a regular expression per name and per value), kept
 * here word for word as the reference. Property test over heads built from good and
 * hostile pieces: folded lines, missing colons, spaces before the colon,
 * control bytes and obs-text in values, bare LF and CR LF, repeated and
 * conflicting Content-Length, too many fields. Seeded (TAPSTACK_PROP_SEED).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_FIELDS, parseHead, type HeadResult } from '../../src/services/http_parse.js';

const SEED = Number(process.env.TAPSTACK_PROP_SEED ?? 0x7a9);

// The parser as it was, word for word (git history has it), as the reference.
/** RFC 9110 5.6.2 tchar. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
/** Field values: visible ASCII, obs-text, SP and HTAB; no CR, LF, NUL or other controls (RFC 9110 5.5). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function fail(status: number, detail: string): HeadResult {
  return { ok: false, status, detail };
}

/** Parse a complete head: `text` is its bytes as latin1, without the final empty line. */
function referenceParseHead(text: string): HeadResult {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const m = REQUEST_LINE.exec(lines[0] ?? '');
  if (!m) {
    if (/^\S+ \S+ HTTP\/\d+\.\d+$/.test(lines[0] ?? '') && /HTTP\/\d\d/.test(lines[0])) return fail(505, 'HTTP version not supported');
    return fail(400, 'malformed request line');
  }
  const [, method, target, major, minor] = m;
  if (major !== '1') return fail(505, `HTTP/${major}.${minor} is not supported; use HTTP/1.1`);
  if (lines.length - 1 > MAX_FIELDS) return fail(431, `more than ${MAX_FIELDS} header fields`);

  const fields = new Map<string, string>();
  let hosts = 0;
  const lengths: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line[0] === ' ' || line[0] === '\t') return fail(400, 'obsolete line folding in a header field');
    const colon = line.indexOf(':');
    if (colon <= 0) return fail(400, 'malformed header field');
    const name = line.slice(0, colon);
    // No whitespace between name and colon (RFC 9112 5.1): TOKEN rejects it.
    if (!TOKEN.test(name)) return fail(400, 'malformed header field name');
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) return fail(400, 'invalid characters in a header field value');
    const key = name.toLowerCase();
    if (key === 'host') hosts++;
    if (key === 'content-length') lengths.push(...value.split(',').map((v) => v.trim()));
    const prev = fields.get(key);
    fields.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }

  const mnr = minor === '0' ? 0 : 1;
  // RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in 1.0.
  if (hosts > 1 || (mnr === 1 && hosts === 0)) return fail(400, hosts ? 'more than one Host header field' : 'HTTP/1.1 request without a Host header field');

  let contentLength = -1;
  if (lengths.length) {
    // Repeated identical values are one value; differing or non-numeric ones are bad framing (RFC 9112 6.3).
    if (!lengths.every((v) => v === lengths[0]) || !/^\d{1,15}$/.test(lengths[0])) return fail(400, 'invalid Content-Length');
    contentLength = Number(lengths[0]);
  }
  const transferEncoding = fields.has('transfer-encoding');
  if (transferEncoding && contentLength >= 0) return fail(400, 'both Transfer-Encoding and Content-Length');
  if (transferEncoding && mnr === 0) return fail(400, 'Transfer-Encoding in an HTTP/1.0 request');

  let path: string;
  let query = '';
  if (target[0] === '/') {
    path = target;
  } else {
    // absolute-form (RFC 9112 3.2.2): keep what follows the authority.
    const abs = /^https?:\/\/[^/?#]*(.*)$/i.exec(target);
    if (!abs) return fail(400, 'request-target must be a path or an absolute http URI');
    path = abs[1] || '/';
    if (path[0] === '?') path = '/' + path;
  }
  const hash = path.indexOf('#');
  if (hash >= 0) return fail(400, 'fragment in the request-target');
  const q = path.indexOf('?');
  if (q >= 0) {
    query = path.slice(q + 1);
    path = path.slice(0, q);
  }

  const conn = (fields.get('connection') ?? '').toLowerCase().split(',').map((t) => t.trim());
  const keepAlive = conn.includes('close') ? false : mnr === 1 || conn.includes('keep-alive');
  return { ok: true, req: { method, target, path, query, minor: mnr, fields, contentLength, transferEncoding, keepAlive } };
}

const piece = fc.oneof(
  fc.constantFrom('Host: x', 'host:  x  ', 'Accept: */*', 'X-A:\tb\t', 'Content-Length: 5', 'content-length: 5, 5', 'Content-Length: 7', 'Connection: close'),
  fc.constantFrom(' folded', '\tfolded', 'NoColon', ': empty name', 'Sp ace: v', 'Name :v', 'X-Ctl: a\x01b', 'X-Del: a\x7fb', 'X-Obs: caf\xe9', 'X-Cr: a\rb', 'X-Empty:', 'X-Many: a:b:c'),
  fc.tuple(fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,8}$/), fc.string({ maxLength: 12 })).map(([n, v]) => `${n}: ${v}`),
  fc.string({ maxLength: 16 }),
);

test(`seed ${SEED}: parseHead's field verdicts are the reference's, on good and hostile heads`, () => {
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), fc.boolean(), fc.boolean(), (fieldLines, crlf, many) => {
      const eol = crlf ? '\r\n' : '\n';
      const body = many ? [...fieldLines, ...Array(MAX_FIELDS).fill('X-Pad: 1')] : fieldLines;
      // The head as the scanner hands it over: no LF inside a field line (a line cannot hold one).
      if (body.some((l) => l.includes('\n'))) return;
      const text = ['GET / HTTP/1.1', ...body].join(eol) + eol + eol;
      assert.deepEqual(parseHead(text), referenceParseHead(text), JSON.stringify(text));
    }),
    { seed: SEED, numRuns: 3000 },
  );
});
