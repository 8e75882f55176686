/**
 * HTTP/1.1 request heads (RFC 9112), parsed defensively: bytes from the
 * network are checked, never trusted. A head is found by scanning for the
 * empty line incrementally (each byte looked at once, however the head is
 * split across reads), then parsed whole. Anything malformed is an error
 * result with the status to answer; nothing here throws on input.
 */

/** Bytes of a head (request line + fields) we accept; beyond it 431 (or 414 while still in the request line). */
export const MAX_HEAD = 16384;
/** Fields per request. */
export const MAX_FIELDS = 100;

export interface HttpRequest {
  method: string;
  /** The request-target as sent. */
  target: string;
  /** Its path (absolute-form reduced to origin-form) and query (without '?'). */
  path: string;
  query: string;
  /** 0 or 1 (HTTP/1.x; a higher 1.x is treated as 1.1, RFC 9110 2.5). */
  minor: number;
  /** Field values by lower-case name; repeated fields joined with ", ". */
  fields: Map<string, string>;
  /** -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding was present (we decode no transfer codings: the body's end is unknown). */
  transferEncoding: boolean;
  /** The connection persists after this response (HTTP/1.1 default, Connection: close/keep-alive). */
  keepAlive: boolean;
}

export type HeadResult = { ok: true; req: HttpRequest } | { ok: false; status: number; detail: string };

const LF = 10;
const CR = 13;

/**
 * Finds the end of a head in a growing buffer. Empty lines before the
 * request line are skipped (RFC 9112 2.2); lines may end in CRLF or a bare
 * LF (the same section allows a recipient to accept that).
 */
export class HeadScanner {
  /** Next byte to look at. */
  #pos = 0;
  #lineStart = 0;
  /** Where the request line starts (after skipped empty lines). */
  start = 0;
  #sawLine = false;
  /** The first line's end has been seen (a long request line is 414, a long head 431). */
  get inRequestLine(): boolean {
    return !this.#sawLine;
  }

  reset(): void {
    this.#pos = this.#lineStart = this.start = 0;
    this.#sawLine = false;
  }

  /** The offset just past the head's empty line, or -1 if it is not in buf[0, len) yet. */
  feed(buf: Uint8Array, len: number): number {
    for (let i = this.#pos; i < len; i++) {
      if (buf[i] !== LF) continue;
      let end = i;
      if (end > this.#lineStart && buf[end - 1] === CR) end--;
      const empty = end === this.#lineStart;
      this.#lineStart = i + 1;
      if (!empty) {
        this.#sawLine = true;
        continue;
      }
      if (this.#sawLine) {
        this.#pos = i + 1;
        return i + 1;
      }
      this.start = i + 1;
    }
    this.#pos = len;
    return -1;
  }
}

/** RFC 9110 5.6.2 tchar. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
/** Field values: visible ASCII, obs-text, SP and HTAB; no CR, LF, NUL or other controls (RFC 9110 5.5). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function fail(status: number, detail: string): HeadResult {
  return { ok: false, status, detail };
}

/** Parse a complete head: `text` is its bytes as latin1, without the final empty line. */
export function parseHead(text: string): HeadResult {
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

/**
 * Content negotiation between the status page's two forms (RFC 9110
 * 12.5.1): the higher q wins; on a tie, a type named outright beats one
 * reached through a wildcard; otherwise HTML.
 */
export function prefersJson(accept: string | undefined): boolean {
  if (!accept) return false;
  let json = -1;
  let html = -1;
  let htmlExplicit = false;
  let htmlWild = -1;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q=([01](?:\.\d{0,3})?)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (range === 'application/json') json = Math.max(json, q);
    else if (range === 'text/html') {
      html = Math.max(html, q);
      htmlExplicit = true;
    } else if (range === 'text/*' || range === '*/*') htmlWild = Math.max(htmlWild, q);
  }
  if (!htmlExplicit) html = htmlWild;
  if (json <= 0) return false;
  if (json !== html) return json > html;
  return !htmlExplicit;
}
