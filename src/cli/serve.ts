/**
 * `tapstack serve DIR`: a static HTTP/1.1 file server that runs over the
 * stack through the API (the client library's createServer), with
 * persistent connections and single byte-range requests (RFC 9110 14).
 * One request at a time per connection: the next head is read only after
 * the response has been written, so a pipelining client is answered in
 * order and a slow reader holds back only its own connection.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { join, normalize, sep, extname } from 'node:path';
import type { Duplex } from 'node:stream';
import { HeadScanner, MAX_HEAD, parseHead, type HttpRequest } from '../services/http_parse.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.txt': 'text/plain; charset=utf-8',
  '.css': 'text/css', '.js': 'text/javascript', '.json': 'application/json', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.pdf': 'application/pdf',
};
const STATUS: Record<number, string> = {
  200: 'OK', 206: 'Partial Content', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  413: 'Content Too Large', 414: 'URI Too Long', 416: 'Range Not Satisfiable', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 505: 'HTTP Version Not Supported',
};

export interface ServeLog {
  (line: string): void;
}

/** Parse `Range: bytes=...` for one range of a `size`-byte file: [start, end] inclusive, 'unsatisfiable', or null to ignore it. */
export function parseRange(h: string | undefined, size: number): [number, number] | 'unsatisfiable' | null {
  if (!h) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // multiple or malformed ranges: send the whole file (allowed)
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return [start, end];
}

export class FileServer {
  constructor(readonly root: string, readonly log: ServeLog = () => {}) {}

  /** Serve one connection until it ends. */
  handle(s: Duplex & { remoteAddress?: string }): void {
    let buf: Buffer = Buffer.alloc(0);
    const scan = new HeadScanner();
    let busy = false;
    let closed = false;
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    const next = (): void => {
      if (busy || closed) return;
      const end = scan.feed(buf, buf.length);
      if (end < 0) {
        if (buf.length > MAX_HEAD) this.#error(s, scan.inRequestLine ? 414 : 431, false);
        return;
      }
      const head = buf.subarray(scan.start, end).toString('latin1');
      buf = buf.subarray(end);
      scan.reset();
      const r = parseHead(head);
      if (!r.ok) return this.#error(s, r.status, false);
      busy = true;
      s.pause();
      this.#respond(s, r.req)
        .then((keep) => {
          busy = false;
          if (!keep) return s.end();
          s.resume();
          next();
        })
        .catch(() => s.destroy());
    };
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      next();
    });
    s.on('end', () => {
      if (!busy) s.end();
    });
  }

  #error(s: Duplex, status: number, keep: boolean): void {
    const body = `${status} ${STATUS[status] ?? ''}\n`;
    s.write(`HTTP/1.1 ${status} ${STATUS[status] ?? ''}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n${keep ? '' : 'Connection: close\r\n'}\r\n${body}`);
    if (!keep) s.end();
  }

  /** Answer one request; resolves to whether the connection stays open. */
  async #respond(s: Duplex & { remoteAddress?: string }, req: HttpRequest): Promise<boolean> {
    const keep = req.keepAlive;
    const conn = keep ? '' : 'Connection: close\r\n';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const body = '405 Method Not Allowed\n';
      s.write(`HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: ${body.length}\r\n${conn}\r\n${body}`);
      return keep && req.contentLength <= 0 && !req.transferEncoding;
    }
    let path: string;
    try {
      path = decodeURIComponent(req.path);
    } catch {
      this.#error(s, 400, keep);
      return keep;
    }
    // Resolve inside the root only: normalise, then refuse anything that climbs out.
    const rel = normalize(path).replace(/^(\.\.(\/|\\|$))+/, '');
    let file = join(this.root, rel);
    if (!(file + sep).startsWith(this.root + sep) && file !== this.root) {
      this.#error(s, 403, keep);
      return keep;
    }
    let st;
    try {
      st = await fsp.stat(file);
      if (st.isDirectory()) {
        file = join(file, 'index.html');
        st = await fsp.stat(file);
      }
    } catch {
      this.#error(s, 404, keep);
      this.log(`${s.remoteAddress ?? '-'} ${req.method} ${req.path} 404`);
      return keep;
    }
    if (!st.isFile()) {
      this.#error(s, 403, keep);
      return keep;
    }
    const size = st.size;
    const range = parseRange(req.fields.get('range'), size);
    if (range === 'unsatisfiable') {
      s.write(`HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */${size}\r\nContent-Length: 0\r\n${conn}\r\n`);
      return keep;
    }
    const [start, end] = range ?? [0, size - 1];
    const len = size === 0 ? 0 : end - start + 1;
    const status = range ? 206 : 200;
    const head =
      `HTTP/1.1 ${status} ${STATUS[status]}\r\n` +
      `Content-Type: ${TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream'}\r\n` +
      `Content-Length: ${len}\r\nAccept-Ranges: bytes\r\nLast-Modified: ${st.mtime.toUTCString()}\r\n` +
      (range ? `Content-Range: bytes ${start}-${end}/${size}\r\n` : '') +
      conn +
      '\r\n';
    s.write(head);
    this.log(`${s.remoteAddress ?? '-'} ${req.method} ${req.path} ${status} ${len}`);
    if (req.method === 'HEAD' || len === 0) return keep;
    await new Promise<void>((resolve, reject) => {
      const rs = createReadStream(file, { start, end, highWaterMark: 256 * 1024 });
      rs.on('error', reject);
      rs.on('data', (chunk) => {
        if (!s.write(chunk)) {
          rs.pause();
          s.once('drain', () => rs.resume());
        }
      });
      rs.on('end', resolve);
      s.once('close', () => {
        rs.destroy();
        resolve();
      });
    });
    return keep;
  }
}
