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

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;

function fail(status: number, detail: string): HeadResult {
  return { ok: false, status, detail };
}

/** RFC 9110 5.6.2 tchar, by character code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+.^_`|~-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

/** text[from, to) is a token (RFC 9110 5.6.2). */
function isToken(text: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** text[from, to) is a field value: visible ASCII, obs-text, SP and HTAB; no CR, LF, NUL or other controls (RFC 9110 5.5). */
function isFieldValue(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9) || c === 0x7f) return false;
  }
  return true;
}

/**
 * Parse a complete head: `text` is its bytes as latin1 (empty lines at its
 * end are ignored). Lines end in LF, a CR before it dropped. The fields are
 * read with index arithmetic, not a split and regular expressions per line:
 * this runs for every request.
 */
export function parseHead(text: string): HeadResult {
  // The lines, as [start, end) pairs without their CR LF; trailing empty lines dropped.
  const bounds: number[] = [];
  for (let pos = 0; pos <= text.length; ) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const end = nl > pos && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
    bounds.push(pos, end);
    pos = nl + 1;
  }
  while (bounds.length && bounds[bounds.length - 1] === bounds[bounds.length - 2]) bounds.length -= 2;
  const lines = bounds.length >> 1;
  const first = lines ? text.slice(bounds[0], bounds[1]) : '';
  const m = REQUEST_LINE.exec(first);
  if (!m) {
    if (/^\S+ \S+ HTTP\/\d+\.\d+$/.test(first) && /HTTP\/\d\d/.test(first)) return fail(505, 'HTTP version not supported');
    return fail(400, 'malformed request line');
  }
  const [, method, target, major, minor] = m;
  if (major !== '1') return fail(505, `HTTP/${major}.${minor} is not supported; use HTTP/1.1`);
  if (lines - 1 > MAX_FIELDS) return fail(431, `more than ${MAX_FIELDS} header fields`);

  const fields = new Map<string, string>();
  let hosts = 0;
  const lengths: string[] = [];
  for (let l = 1; l < lines; l++) {
    const from = bounds[2 * l];
    const to = bounds[2 * l + 1];
    const c0 = text.charCodeAt(from);
    if (c0 === 0x20 || c0 === 9) return fail(400, 'obsolete line folding in a header field');
    const colon = text.indexOf(':', from);
    if (colon <= from || colon >= to) return fail(400, 'malformed header field');
    // No whitespace between name and colon (RFC 9112 5.1): a token has none.
    if (!isToken(text, from, colon)) return fail(400, 'malformed header field name');
    let vs = colon + 1;
    let ve = to;
    while (vs < ve && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 9)) ve--;
    if (!isFieldValue(text, vs, ve)) return fail(400, 'invalid characters in a header field value');
    const value = text.slice(vs, ve);
    const key = text.slice(from, colon).toLowerCase();
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
