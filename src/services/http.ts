/**
 * A small HTTP/1.1 server (RFC 9110, 9112) on the stack's own sockets:
 *
 *   GET /                the status page: HTML, or JSON for `?format=json`
 *                        or an Accept header that prefers application/json
 *   GET /bytes/N         N bytes (0 <= N <= 2^40) of a fixed pattern: byte i
 *                        of the body is i mod 256 (0x00 0x01 ... 0xff 0x00 ...);
 *                        Content-Length: N, written as the socket takes it,
 *                        from one shared 64 KiB buffer, never built whole
 *
 * HEAD everywhere GET is; other methods get 405 (known) or 501 (unknown);
 * persistent connections by default in HTTP/1.1 (Connection: close, or
 * HTTP/1.0 without keep-alive, ends the connection after the response);
 * pipelined requests are answered in order, one at a time: while a response
 * is being written no further request is read, so the queue of requests
 * waits in the socket, not here. A request head may be 16 KiB (414 for a
 * longer request line, 431 for a longer head or over 100 fields); request
 * bodies are skipped up to 1 MiB (413 beyond). Malformed requests get 400
 * and the connection is closed: after bad framing nothing that follows can
 * be trusted to be a request.
 */
import type { Stack } from '../net/stack.js';
import { HeadScanner, MAX_HEAD, parseHead, prefersJson, type HttpRequest } from './http_parse.js';
import { statusData, statusHtml, type ServiceRow } from './status.js';
import type { Stream, StreamApp } from './stream.js';
import { MSG_MORE, SOL_TCP, TCP_NODELAY } from '../uapi.js';
import { socketSetsockopt } from '../net/socket.js';
import { sockOptInt } from '../net/core/sock.js';

/** The largest /bytes/N. */
export const BYTES_MAX = 2 ** 40;
/** Request bodies we read and drop (on 405 and the like); larger is 413. */
export const MAX_BODY = 1 << 20;
/** A persistent connection with no request for this long is closed (nginx's keepalive_timeout is 75 s). */
export const HTTP_IDLE_MS = 60_000;
/** After our FIN, how long the client's remaining input is read and dropped before close (nginx: lingering_timeout). */
export const HTTP_LINGER_MS = 5_000;

const BYTES_CHUNK = 65536;
/** byte i = i & 0xff, 256 bytes longer than a chunk so a chunk can start at any phase. */
const BYTES: Uint8Array = (() => {
  const b = new Uint8Array(BYTES_CHUNK + 256);
  for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  return b;
})();

/** The request buffer's first size; it grows by four up to MAX_HEAD. */
const HEAD_BUF_START = 1024;

/** A /bytes/N body this small leaves in the same write as its head (one segment, no MSG_MORE cork). */
const BYTES_INLINE = 4096;

/**
 * The Date field's value, made once per second of the wall clock (as nginx
 * keeps ngx_cached_http_time): formatting a date per response costs more
 * than the rest of a small response's head.
 */
let dateSecond = -1;
let dateText = '';
function httpDate(wallMs: number): string {
  const sec = Math.floor(wallMs / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateText = new Date(sec * 1000).toUTCString();
  }
  return dateText;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  505: 'HTTP Version Not Supported',
};

/** RFC 9110 9.3's methods: known, so not allowed here is 405; anything else is 501. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export class HttpStats {
  requests = 0;
  /** Requests answered with 400/414/431/413/505 (bad input) and closed. */
  badRequests = 0;
  /** Responses by status code. */
  responses: Record<number, number> = {};
  /** Body bytes of /bytes/N handed to sockets. */
  bytesServed = 0;
}

/** What the HTTP service sees beyond its connection: the stack and the other services for the status page. */
export interface HttpContext {
  stack: Stack;
  stats: HttpStats;
  services(): ServiceRow[];
}

interface Response {
  status: number;
  type?: string;
  body?: string | Buffer;
  /** A /bytes/N body instead of `body`. */
  stream?: number;
  headers?: string[];
  /** Close after this response. */
  close?: boolean;
}

export class HttpApp implements StreamApp {
  /** Request bytes not yet parsed: at most one head, so the limit is this buffer. */
  /**
   * Starts small (from Node's buffer pool: no allocation of its own) and
   * grows to MAX_HEAD only for a head that needs it: most requests are a
   * few hundred bytes, and a connection per request is the common case.
   */
  #in = Buffer.allocUnsafe(HEAD_BUF_START);
  #inLen = 0;
  readonly #scan = new HeadScanner();
  /** Request-body bytes still to drop. */
  #skip = 0;
  /** /bytes/N: body bytes still to write, and the offset of the next. */
  #bodyLeft = 0;
  #bodyOff = 0;
  #closeAfter = false;
  /** The last response is out: no more requests. */
  #closing = false;

  constructor(readonly ctx: HttpContext) {}

  onOpen(s: Stream): void {
    // Responses go out whole when written, as web servers do (tcp_nodelay); MSG_MORE joins a head to its body.
    socketSetsockopt(s.sock, SOL_TCP, TCP_NODELAY, sockOptInt(1));
  }

  readInto(s: Stream): Uint8Array | null {
    if (this.#closing || s.blocked || this.#bodyLeft > 0 || this.#inLen >= MAX_HEAD) return null;
    if (this.#inLen === this.#in.length) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_HEAD, this.#in.length * 4));
      this.#in.copy(grown, 0, 0, this.#inLen);
      this.#in = grown;
    }
    return this.#in.subarray(this.#inLen);
  }

  onData(s: Stream, _buf: Uint8Array, n: number): void {
    this.#inLen += n;
    this.#serve(s);
  }

  onDrain(s: Stream): void {
    if (this.#bodyLeft > 0) this.#pump(s);
    this.#serve(s);
  }

  /** The client will send nothing more: answer what is complete, then close. */
  onEnd(s: Stream): void {
    this.#serve(s);
  }

  /** Answer every complete request in the buffer, in order, while the socket takes the answers. */
  #serve(s: Stream): void {
    while (!s.closed && !this.#closing && !s.blocked && this.#bodyLeft === 0) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, this.#inLen);
        this.#consume(k);
        this.#skip -= k;
        if (this.#skip > 0) break;
      }
      const end = this.#inLen ? this.#scan.feed(this.#in, this.#inLen) : -1;
      if (end < 0) {
        if (this.#inLen >= MAX_HEAD) {
          this.ctx.stats.requests++;
          if (this.#scan.inRequestLine) this.#error(s, 414, `the request line is longer than ${MAX_HEAD} bytes`);
          else this.#error(s, 431, `the request head is longer than ${MAX_HEAD} bytes`);
        }
        break;
      }
      const text = this.#in.toString('latin1', this.#scan.start, end);
      this.#consume(end);
      this.#scan.reset();
      this.ctx.stats.requests++;
      const r = parseHead(text);
      if (!r.ok) this.#error(s, r.status, r.detail);
      else this.#handle(s, r.req);
    }
    // End of the client's input and nothing left to answer (a partial request is dropped): close.
    if (s.eof && !s.closed && !this.#closing && !s.blocked && this.#bodyLeft === 0) {
      this.#closing = true;
      s.end();
    }
  }

  #consume(k: number): void {
    this.#in.copyWithin(0, k, this.#inLen);
    this.#inLen -= k;
  }

  #error(s: Stream, status: number, detail: string): void {
    this.ctx.stats.badRequests++;
    this.#respond(s, null, { status, type: 'text/plain; charset=utf-8', body: `${status} ${REASONS[status]}\n\n${detail}\n`, close: true });
  }

  #handle(s: Stream, req: HttpRequest): void {
    if (req.contentLength > MAX_BODY) {
      this.ctx.stats.badRequests++;
      this.#respond(s, req, text(413, `request bodies are read up to ${MAX_BODY} bytes`, true));
      return;
    }
    if (req.contentLength > 0) this.#skip = req.contentLength;
    // A body framed by a transfer coding is not decoded, so its end is unknown: answer, then close.
    const r = this.#route(req);
    if (!req.keepAlive || req.transferEncoding) r.close = true;
    this.#respond(s, req, r);
  }

  #route(req: HttpRequest): Response {
    if (!KNOWN_METHODS.has(req.method)) return text(501, `${req.method} is not implemented here; GET and HEAD are`);
    const get = req.method === 'GET' || req.method === 'HEAD';
    const notAllowed = (): Response => ({ ...text(405, `${req.method} is not allowed here; use GET or HEAD`), headers: ['Allow: GET, HEAD'] });
    if (req.path === '/') {
      if (!get) return notAllowed();
      const q = new URLSearchParams(req.query).get('format');
      const json = q === 'json' || (q !== 'html' && prefersJson(req.fields.get('accept')));
      const data = statusData(this.ctx.stack, this.ctx.services());
      return json
        ? { status: 200, type: 'application/json', body: JSON.stringify(data, null, 2) + '\n', headers: ['Cache-Control: no-store', 'Vary: Accept'] }
        : { status: 200, type: 'text/html; charset=utf-8', body: statusHtml(data), headers: ['Cache-Control: no-store', 'Vary: Accept'] };
    }
    if (req.path.startsWith('/bytes/')) {
      const arg = req.path.slice(7);
      const n = /^\d{1,13}$/.test(arg) ? Number(arg) : NaN;
      if (!(n <= BYTES_MAX)) return text(400, `/bytes/N takes N from 0 to ${BYTES_MAX}`);
      if (!get) return notAllowed();
      return { status: 200, type: 'application/octet-stream', stream: n };
    }
    return text(404, `nothing at ${req.path.length > 200 ? req.path.slice(0, 200) + '...' : req.path}; try / or /bytes/N`);
  }

  #respond(s: Stream, req: HttpRequest | null, r: Response): void {
    const st = this.ctx.stats;
    st.responses[r.status] = (st.responses[r.status] ?? 0) + 1;
    const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body;
    const length = r.stream ?? body?.length ?? 0;
    const close = r.close === true;
    let head = `HTTP/1.1 ${r.status} ${REASONS[r.status]}\r\nDate: ${httpDate(this.ctx.stack.time.clock.wall())}\r\nServer: tapstack\r\n`;
    if (r.type) head += `Content-Type: ${r.type}\r\n`;
    head += `Content-Length: ${length}\r\n`;
    for (const h of r.headers ?? []) head += `${h}\r\n`;
    if (close) head += 'Connection: close\r\n';
    else if (req && req.minor === 0) head += 'Connection: keep-alive\r\n';
    head += '\r\n';
    this.#closeAfter = close;
    const withBody = req?.method !== 'HEAD';
    if (withBody && r.stream && r.stream <= BYTES_INLINE) {
      // Small: head and body in one buffer, one write.
      const h = Buffer.allocUnsafe(head.length + r.stream);
      h.write(head, 0, 'latin1');
      h.set(BYTES.subarray(0, r.stream), head.length);
      this.ctx.stats.bytesServed += r.stream;
      s.write(h);
      this.#finishResponse(s);
      return;
    }
    if (withBody && r.stream) {
      this.#bodyLeft = r.stream;
      this.#bodyOff = 0;
      // Held back (MSG_MORE) to leave with the first body bytes.
      if (s.write(Buffer.from(head, 'latin1'), MSG_MORE)) this.#pump(s);
      return;
    }
    const h = Buffer.from(head, 'latin1');
    s.write(withBody && body && body.length ? Buffer.concat([h, body]) : h);
    this.#finishResponse(s);
  }

  /** Write /bytes/N until the socket is full or the body is all handed over. */
  #pump(s: Stream): void {
    while (this.#bodyLeft > 0) {
      const phase = this.#bodyOff % 256;
      const len = Math.min(this.#bodyLeft, BYTES_CHUNK);
      this.#bodyLeft -= len;
      this.#bodyOff += len;
      this.ctx.stats.bytesServed += len;
      if (!s.write(BYTES.subarray(phase, phase + len)) && this.#bodyLeft > 0) return;
    }
    this.#finishResponse(s);
  }

  /** The response is handed to the stream (its tail may still be pending there). */
  #finishResponse(s: Stream): void {
    if (!this.#closeAfter) return;
    this.#closing = true;
    s.end();
  }
}

function text(status: number, detail: string, close = false): Response {
  return { status, type: 'text/plain; charset=utf-8', body: `${status} ${REASONS[status]}\n\n${detail}\n`, ...(close ? { close } : {}) };
}

