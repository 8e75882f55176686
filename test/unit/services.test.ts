import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerNet, type PeerOptions, type TcpPeer } from '../lib/tcp_peer.js';
import { startService, startServices, DEFAULT_SERVICES, type Services } from '../../src/services/index.js';
import { chargenLine, CHARGEN_PERIOD } from '../../src/services/chargen.js';
import { prefersJson, parseHead } from '../../src/services/http_parse.js';
import { StreamListener, type StreamApp } from '../../src/services/stream.js';
import { SeededRandom } from '../../src/lib/random.js';
import { TCP_ESTABLISHED } from '../../src/net/core/sock.js';
import { statusData, statusHtml } from '../../src/services/status.js';
import { Harness } from '../lib/harness.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import { seededBytes } from '../lib/seeded.js';

/** A stack with the services on their default ports, and a scripted peer network. */
function setup(): { net: PeerNet; svc: Services } {
  const net = new PeerNet();
  const svc = startServices(net.h.stack, DEFAULT_SERVICES);
  return { net, svc };
}

function listener(svc: Services, name: string) {
  const l = svc.listeners.find((x) => x.name === name);
  assert.ok(l, name);
  return l;
}

/** The peer closes; the stack's side must close too, cleanly. */
async function closeBoth(net: PeerNet, p: TcpPeer): Promise<void> {
  p.close();
  await net.settle();
  assert.ok(p.finAcked, 'our FIN ACKed');
  assert.ok(p.finReceived, "the service's FIN");
  assert.ok(!p.reset, 'no RST');
}

// --- echo -------------------------------------------------------------------------

test('echo: bytes come back identical; the peer closes and so does the service', async () => {
  const { net, svc } = setup();
  const p = await net.connect(7);
  p.write('hello, echo\r\n');
  await net.settle();
  assert.equal(p.take().toString(), 'hello, echo\r\n');
  await closeBoth(net, p);
  const st = listener(svc, 'echo').stats;
  assert.deepEqual([st.accepted, st.active, st.closed, st.errors, st.resets], [1, 0, 1, 0, 0]);
  assert.equal(st.bytesIn, 13);
  assert.equal(st.bytesOut, 13);
  svc.stop();
});

test('echo: 1 MiB through a 16 KiB window both ways: identical, and back-pressure holds memory', async () => {
  const { net, svc } = setup();
  const p = await net.connect(7, { autoRead: false, rcvBuf: 16384, mss: 1000 });
  const data = seededBytes(1 << 20);
  p.write(data);
  const got: Buffer[] = [];
  let stalls = 0;
  let maxHeld = 0;
  const l = listener(svc, 'echo');
  for (let rounds = 0; p.receivedTotal < data.length; rounds++) {
    assert.ok(rounds < 10000, `stuck at ${p.receivedTotal} of ${data.length}`);
    await net.settle();
    // Peer's window full and data still queued at the peer: the stack's window closed on it.
    if (p.queued > 0 && p.sndWnd - (p.sndNxt - p.sndUna) <= 0) stalls++;
    for (const s of l.streams) maxHeld = Math.max(maxHeld, s.bytesIn - s.bytesOut);
    got.push(p.read(5000));
    if (p.unread === 0 && p.queued === 0 && p.receivedTotal < data.length) await net.advance(300);
  }
  got.push(p.take());
  assert.ok(Buffer.concat(got).equals(data), 'same bytes in the same order');
  assert.equal(p.overWindow, 0, 'the stack kept within our window');
  assert.ok(stalls > 0, 'the sender was flow-controlled');
  assert.ok(maxHeld <= 16384, `the service held at most one read (${maxHeld})`);
  await closeBoth(net, p);
  svc.stop();
});

test('echo: the peer half-closes with data still to echo; it all comes back before the FIN', async () => {
  const { net, svc } = setup();
  const p = await net.connect(7, { autoRead: false, rcvBuf: 4096 });
  const data = seededBytes(50000, 7);
  p.write(data);
  p.close();
  const got: Buffer[] = [];
  for (let i = 0; i < 1000 && !p.finReceived; i++) {
    await net.settle();
    got.push(p.take());
    if (!p.unread) await net.advance(50);
  }
  got.push(p.take());
  assert.ok(Buffer.concat(got).equals(data));
  assert.ok(p.finReceived && p.finAcked && !p.reset);
  svc.stop();
});

// --- discard ------------------------------------------------------------------------

test('discard: everything is ACKed and nothing comes back', async () => {
  const { net, svc } = setup();
  const p = await net.connect(9);
  p.write(seededBytes(200000));
  await net.advance(1000);
  assert.equal(p.queued, 0);
  assert.equal(p.bytesAcked, 200000, 'all ACKed');
  assert.equal(p.receivedTotal, 0);
  assert.ok(p.segs.every((s) => s.len === 0));
  assert.equal(listener(svc, 'discard').stats.bytesIn, 200000);
  await closeBoth(net, p);
  svc.stop();
});

// --- chargen -------------------------------------------------------------------------

test('chargen: RFC 864 lines, the ring wrapping after 95, paced by our window', async () => {
  const { net, svc } = setup();
  const p = await net.connect(19, { autoRead: false, rcvBuf: 8192 });
  assert.equal(chargenLine(0), ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n');
  assert.equal(chargenLine(1), '!"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n');
  assert.equal(chargenLine(94).slice(0, 3), '~ !');
  const want = 3 * CHARGEN_PERIOD + 500;
  const got: Buffer[] = [];
  let n = 0;
  for (let i = 0; n < want; i++) {
    assert.ok(i < 1000, 'chargen stalled');
    await net.settle();
    assert.ok(p.unread <= 8192, 'never more than our window');
    const b = p.take();
    got.push(b);
    n += b.length;
  }
  const text = Buffer.concat(got).toString('latin1');
  const lines = text.split('\r\n');
  for (let i = 0; i < 3 * 95; i++) assert.equal(lines[i] + '\r\n', chargenLine(i), `line ${i}`);
  assert.equal(lines[95], lines[0], 'line 95 is line 0');
  assert.equal(p.overWindow, 0);
  // Input is thrown away, and the peer's FIN ends the stream (after what is already queued, so keep reading).
  p.write('ignored');
  p.close();
  for (let i = 0; i < 100 && !p.finReceived; i++) {
    await net.settle();
    p.take();
  }
  assert.ok(p.finReceived && p.finAcked && !p.reset);
  assert.equal(listener(svc, 'chargen').stats.active, 0);
  svc.stop();
});

test('chargen: a reader that stops for 30 s gets zero-window probes, then the stream resumes where it was', async () => {
  const { net, svc } = setup();
  const p = await net.connect(19, { autoRead: false, rcvBuf: 8192 });
  await net.settle();
  const got = [p.take()];
  await net.settle();
  const full = p.unread;
  const mark = p.segs.length;
  await net.advance(30_000, 100);
  const during = p.segs.slice(mark);
  assert.equal(p.unread, full, 'nothing past the closed window');
  assert.ok(during.length >= 3 && during.every((s) => s.len === 0), 'probes carry no data');
  for (let i = 0; i < 20; i++) {
    got.push(p.take());
    await net.settle();
  }
  const lines = Buffer.concat(got).toString('latin1').split('\r\n');
  assert.ok(lines.length > 190);
  for (let i = 0; i < lines.length - 1; i++) assert.equal(lines[i] + '\r\n', chargenLine(i), `line ${i}`);
  assert.equal(p.overWindow, 0);
  svc.stop();
});

test('chargen: an abrupt RST from the peer ends the connection', async () => {
  const { net, svc } = setup();
  const p = await net.connect(19, { autoRead: false, rcvBuf: 4096 });
  await net.settle();
  assert.ok(p.unread > 0);
  p.abort();
  await net.advance(100);
  const st = listener(svc, 'chargen').stats;
  assert.equal(st.active, 0);
  assert.equal(st.resets, 1);
  assert.equal(st.errors, 0);
  svc.stop();
});

// --- HTTP -----------------------------------------------------------------------------

interface HttpResponse {
  status: number;
  reason: string;
  headers: Map<string, string>;
  body: Buffer;
}

/** Split a byte stream into responses; `heads` marks which answer a HEAD (no body). */
function responses(buf: Buffer, heads: boolean[] = []): HttpResponse[] {
  const out: HttpResponse[] = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    assert.ok(end >= 0, `incomplete head: ${JSON.stringify(buf.subarray(off, off + 200).toString('latin1'))}`);
    const lines = buf.toString('latin1', off, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(lines[0]);
    assert.ok(m, `status line: ${lines[0]}`);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      headers.set(l.slice(0, c).toLowerCase(), l.slice(c + 1).trim());
    }
    const len = heads[out.length] ? 0 : Number(headers.get('content-length'));
    assert.ok(Number.isInteger(len), 'Content-Length');
    const body = buf.subarray(end + 4, end + 4 + len);
    assert.equal(body.length, len, 'complete body');
    out.push({ status: Number(m[1]), reason: m[2], headers, body });
    off = end + 4 + len;
  }
  return out;
}

async function exchange(net: PeerNet, p: TcpPeer, req: string | Buffer, heads: boolean[] = []): Promise<HttpResponse[]> {
  p.write(req);
  await net.settle();
  return responses(p.take(), heads);
}

async function http(req: string, opts: PeerOptions = {}): Promise<{ net: PeerNet; svc: Services; p: TcpPeer; res: HttpResponse[] }> {
  const { net, svc } = setup();
  const p = await net.connect(80, opts);
  const res = await exchange(net, p, req, [req.startsWith('HEAD')]);
  return { net, svc, p, res };
}

test('HTTP GET /: the status page in HTML, with the interface, addresses and sockets', async () => {
  const { net, svc, p, res } = await http('GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nUser-Agent: test\r\n\r\n');
  assert.equal(res.length, 1);
  const r = res[0];
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(r.headers.get('date'), new Date(net.h.time.wall()).toUTCString());
  assert.equal(r.headers.get('connection'), undefined, 'HTTP/1.1 persists');
  const html = r.body.toString();
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /02:74:73:00:00:02/);
  assert.match(html, /10\.0\.0\.2\/24/);
  assert.match(html, /<td>LISTEN<\/td><td>0<\/td><td>128<\/td><td>\[::\]:80<\/td>/);
  assert.match(html, new RegExp(`<td>ESTABLISHED</td><td>0</td><td>0</td><td>\\[::ffff:10\\.0\\.0\\.2\\]:80</td><td>\\[::ffff:10\\.0\\.0\\.1\\]:${p.port}</td>`));
  assert.match(html, /InSegs/);
  assert.ok(!p.finReceived);
  svc.stop();
});

test('HTTP GET /?format=json and Accept: application/json: the same data as JSON', async () => {
  const { net, svc, p, res } = await http('GET /?format=json HTTP/1.1\r\nHost: x\r\n\r\n');
  const r = res[0];
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  const d = JSON.parse(r.body.toString());
  assert.equal(d.interface.mac, '02:74:73:00:00:02');
  assert.equal(d.interface.name, 'tap0');
  assert.deepEqual(d.ipv4[0], { address: '10.0.0.2', prefix: 24, broadcast: '10.0.0.255' });
  assert.ok(d.sockets.some((s: { state: string; local: string }) => s.state === 'LISTEN' && s.local === '[::]:7'));
  assert.ok(d.sockets.some((s: { state: string; local: string; proto?: string }) => s.proto === 'udp' && s.state === 'UNCONN' && s.local === '*:7'));
  assert.ok(d.sockets.some((s: { state: string; peer: string }) => s.state === 'ESTABLISHED' && s.peer === `[::ffff:10.0.0.1]:${p.port}`));
  assert.equal(d.counters.Tcp.PassiveOpens, 1);
  assert.deepEqual(
    d.services.map((s: { name: string; port: number }) => [s.name, s.port]),
    [['echo', 7], ['discard', 9], ['chargen', 19], ['http', 80], ['echo/udp', 7], ['discard/udp', 9]],
  );
  const [r2] = await exchange(net, p, 'GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n');
  assert.equal(r2.headers.get('content-type'), 'application/json');
  assert.equal(JSON.parse(r2.body.toString()).interface.mtu, 1500);
  const [r3] = await exchange(net, p, 'GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\r\n');
  assert.equal(r3.headers.get('content-type'), 'text/html; charset=utf-8', 'a browser gets HTML');
  svc.stop();
});

test('HTTP GET /bytes/100000: exact length and content (byte i = i & 0xff), through a small window', async () => {
  const { net, svc } = setup();
  const p = await net.connect(80, { autoRead: false, rcvBuf: 8192 });
  p.write('GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n');
  const got: Buffer[] = [];
  for (let i = 0; i < 1000; i++) {
    await net.settle();
    const b = p.take();
    if (!b.length) break;
    got.push(b);
  }
  const [r] = responses(Buffer.concat(got));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  assert.equal(r.headers.get('content-length'), '100000');
  assert.equal(r.body.length, 100000);
  for (let i = 0; i < r.body.length; i++) if (r.body[i] !== (i & 0xff)) assert.fail(`byte ${i} is ${r.body[i]}`);
  assert.equal(p.overWindow, 0);
  assert.ok(!p.finReceived, 'kept alive');
  svc.stop();
});

test('HTTP /bytes/N: the head leaves with the body; 2^40 is accepted and streamed, not built; beyond is 400', async () => {
  const { net, svc } = setup();
  const p = await net.connect(80, { autoRead: false, rcvBuf: 65536 });
  p.write(`GET /bytes/${2 ** 40} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await net.settle();
  const first = p.segs.find((s) => s.len > 0)!;
  assert.equal(first.len, net.peers.get(p.port)!.stackMss, 'head and body in one full segment (MSG_MORE)');
  const b = p.take();
  const headEnd = b.indexOf('\r\n\r\n') + 4;
  assert.match(b.toString('latin1', 0, headEnd), /Content-Length: 1099511627776\r\n/);
  const body = b.subarray(headEnd);
  for (let i = 0; i < body.length; i++) if (body[i] !== (i & 0xff)) assert.fail(`byte ${i}`);
  p.abort();
  await net.settle();
  const q = await net.connect(80);
  const [r] = await exchange(net, q, `GET /bytes/${2 ** 40 + 1} HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes/abc HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(r.status, 400);
  svc.stop();
});

test('HTTP /bytes/N over a link that loses 2% of the segments to the peer: the body arrives whole', async () => {
  const { net, svc } = setup();
  const p = await net.connect(80);
  const rnd = new SeededRandom(7);
  net.lose = (_p, t) => t.payload.length > 0 && rnd.u32() % 50 === 0;
  p.write('GET /bytes/300000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 6000 && !p.finReceived; i++) await net.advance(100, 10);
  assert.ok(net.lost > 0, 'segments were lost');
  assert.ok(p.finReceived, 'finished');
  const [r] = responses(p.take());
  assert.equal(r.body.length, 300000);
  for (let i = 0; i < r.body.length; i++) if (r.body[i] !== (i & 0xff)) assert.fail(`byte ${i}`);
  svc.stop();
});

test('HTTP keep-alive: two requests, one after the other, on one connection', async () => {
  const { net, svc } = setup();
  const p = await net.connect(80);
  const [a] = await exchange(net, p, 'GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(a.status, 200);
  assert.deepEqual([...a.body], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  await net.advance(1000);
  assert.ok(!p.finReceived);
  const [b] = await exchange(net, p, 'GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(b.status, 200);
  assert.equal(b.body.length, 3);
  assert.equal(listener(svc, 'http').stats.accepted, 1);
  await closeBoth(net, p);
  svc.stop();
});

test('HTTP pipelining: requests in one segment are answered in order, a large one in between', async () => {
  const { net, svc } = setup();
  const p = await net.connect(80, { autoRead: false, rcvBuf: 16384 });
  p.write(
    'GET /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /bytes/300000 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'HEAD /bytes/7 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /bytes/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  const got: Buffer[] = [];
  for (let i = 0; i < 2000 && !p.finReceived; i++) {
    await net.settle();
    got.push(p.take());
  }
  assert.ok(p.finReceived, 'closed after the last');
  const res = responses(Buffer.concat(got), [false, false, true, false, false]);
  assert.deepEqual(
    res.map((r) => [r.status, r.headers.get('content-length')]),
    [
      [200, '5'],
      [200, '300000'],
      [200, '7'],
      [404, String(res[3].body.length)],
      [200, '2'],
    ],
  );
  assert.equal(res[1].body[299999], 299999 & 0xff);
  assert.equal(res[4].headers.get('connection'), 'close');
  assert.equal(p.overWindow, 0);
  await closeBoth(net, p);
  svc.stop();
});

test('HTTP HEAD: the headers GET would send, no body', async () => {
  const { svc, res } = await http('HEAD / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(res[0].status, 200);
  assert.ok(Number(res[0].headers.get('content-length')) > 1000);
  assert.equal(res[0].body.length, 0);
  svc.stop();
});

test('HTTP 404 with a body; 405 with Allow (the request body skipped); 501 for an unknown method', async () => {
  const { net, svc, p, res } = await http('GET /missing HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(res[0].status, 404);
  assert.equal(res[0].reason, 'Not Found');
  assert.equal(res[0].headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.match(res[0].body.toString(), /^404 Not Found\n\nnothing at \/missing/);
  const [r405, r200] = await exchange(net, p, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=worldGET /bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(r405.status, 405);
  assert.equal(r405.headers.get('allow'), 'GET, HEAD');
  assert.equal(r200.status, 200, 'the body was skipped, the next request found');
  const [r501] = await exchange(net, p, 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(r501.status, 501);
  assert.ok(!p.finReceived);
  svc.stop();
});

test('HTTP 400 for garbage: answered, counted, and the connection closed', async () => {
  const { net, svc, p, res } = await http('\x00\x16\x03\x01 garbage \xff\r\n\r\n');
  assert.equal(res[0].status, 400);
  assert.equal(res[0].headers.get('connection'), 'close');
  assert.match(res[0].body.toString(), /^400 Bad Request\n/);
  await net.settle();
  assert.ok(p.finReceived, 'FIN after the answer');
  p.close();
  await net.settle();
  assert.ok(p.finAcked && !p.reset);
  const st = svc.httpStats;
  assert.equal(st.badRequests, 1);
  assert.equal(listener(svc, 'http').stats.errors, 0);
  svc.stop();
});

test('HTTP Connection: close is honoured; HTTP/1.0 closes unless keep-alive', async () => {
  const a = await http('GET /bytes/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(a.res[0].headers.get('connection'), 'close');
  assert.ok(a.p.finReceived);
  await closeBoth(a.net, a.p);
  a.svc.stop();

  const b = await http('GET /bytes/4 HTTP/1.0\r\n\r\n');
  assert.equal(b.res[0].status, 200);
  assert.ok(b.p.finReceived);
  b.svc.stop();

  const c = await http('GET /bytes/4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.equal(c.res[0].headers.get('connection'), 'keep-alive');
  assert.ok(!c.p.finReceived);
  c.svc.stop();
});

test('HTTP: a small /bytes/N leaves in one segment with its head; a head of 12 KiB (past the first buffers) is read whole', async () => {
  const { net, svc } = setup();
  const p = await net.connect(80, { autoRead: false });
  p.write('GET /bytes/64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await net.settle();
  const data = p.segs.filter((s) => s.len > 0);
  assert.equal(data.length, 1, 'head and body in one segment');
  const b = p.take();
  const headEnd = b.indexOf('\r\n\r\n') + 4;
  assert.match(b.toString('latin1', 0, headEnd), /^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 64\r\n[^]*Connection: close\r\n/);
  assert.deepEqual([...b.subarray(headEnd)], [...Array(64).keys()]);
  assert.ok(p.finReceived, 'closed after it');
  svc.stop();
  const big = await http(`GET /bytes/3 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(12 * 1024)}\r\n\r\n`);
  assert.equal(big.res[0].status, 200);
  assert.equal(big.res[0].body.length, 3);
  big.svc.stop();
});

test('HTTP limits: 431 for a head over 16 KiB, 414 for a request line over it, 413 for a large body', async () => {
  const a = await http(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
  assert.equal(a.res[0].status, 431);
  a.svc.stop();
  const b = await http(`GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(b.res[0].status, 414);
  b.svc.stop();
  const c = await http('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n');
  assert.equal(c.res[0].status, 413);
  assert.ok(c.p.finReceived);
  c.svc.stop();
});

test('HTTP: hostile input never escapes the service; every connection ends cleanly', async () => {
  const { net, svc } = setup();
  const inputs = [
    'GET / HTTP/1.1\r\n\r\n', // no Host
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET / HTTP/2.0\r\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n',
    'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
    'GET /%zz%%?format=%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET http://x/bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n',
    '\r\n\r\nGET /bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\nHost: x\n\n',
    seededBytes(3000, 99).toString('latin1') + '\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\n' + 'A: b\r\n'.repeat(200) + '\r\n',
  ];
  const want = [400, 400, 505, 400, 400, 400, 400, 400, 404, 200, 200, 200, 400, 431];
  for (let i = 0; i < inputs.length; i++) {
    const p = await net.connect(80);
    p.write(inputs[i]);
    p.close();
    await net.advance(10);
    const res = responses(p.take());
    assert.equal(res[0]?.status, want[i], `input ${i}`);
    assert.ok(p.finReceived && p.finAcked, `input ${i} closed`);
  }
  const st = listener(svc, 'http').stats;
  assert.equal(st.errors, 0);
  assert.equal(st.active, 0);
  svc.stop();
});

test('HTTP: an idle persistent connection is closed after 60 s', async () => {
  const { net, svc, p } = await http('GET /bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n');
  await net.advance(59_000, 1000);
  assert.ok(!p.finReceived);
  await net.advance(2_000, 1000);
  assert.ok(p.finReceived);
  svc.stop();
});

test('HTTP parser and negotiation units', () => {
  assert.equal(prefersJson(undefined), false);
  assert.equal(prefersJson('*/*'), false);
  assert.equal(prefersJson('application/json'), true);
  assert.equal(prefersJson('application/json, */*;q=0.1'), true);
  assert.equal(prefersJson('text/html;q=0.5, application/json'), true);
  assert.equal(prefersJson('text/html, application/json'), false);
  assert.equal(prefersJson('application/json;q=0'), false);
  const r = parseHead('GET /a?b=c HTTP/1.1\r\nHost: x\r\nX: 1\r\nx: 2\r\n');
  assert.ok(r.ok);
  assert.equal(r.req.path, '/a');
  assert.equal(r.req.query, 'b=c');
  assert.equal(r.req.fields.get('x'), '1, 2');
  assert.equal(r.req.keepAlive, true);
});

// --- lifecycle ---------------------------------------------------------------------------

test('services: ports from the config, null turns one off, a taken port is reported; stop() closes all', async () => {
  const net = new PeerNet();
  const svc = startServices(net.h.stack, { echo: 7007, discard: null, chargen: 7007, http: 8080 });
  assert.deepEqual(svc.ports, { echo: 7007, http: 8080 });
  assert.equal(svc.failed.length, 1);
  assert.equal(svc.failed[0].name, 'chargen');
  const p = await net.connect(7007);
  const q = await net.connect(8080);
  assert.equal([...net.h.stack.tcp.socks].filter((s) => s.state === TCP_ESTABLISHED).length, 2);
  svc.stop();
  await net.settle();
  assert.ok(p.finReceived && q.finReceived, 'connections closed');
  const r = net.peer(7007);
  r.connect();
  await net.settle();
  assert.ok(r.reset, 'nobody listens after stop()');
});

test('a service that throws: its connection is reset and counted, the listener carries on', async () => {
  const net = new PeerNet();
  const warnings: object[] = [];
  const log = { debug() {}, info() {}, warn: (o: object) => void warnings.push(o) };
  const buf = new Uint8Array(100);
  const app = (): StreamApp => ({
    readInto: () => buf,
    onData: (_s, b, n) => {
      if (b[0] === 0x21) throw new Error('bang');
      void n;
    },
  });
  const l = new StreamListener(net.h.stack, 'test', 5000, app, {}, log);
  const p = await net.connect(5000);
  p.write('!boom');
  await net.settle();
  assert.ok(p.reset, 'RST');
  assert.equal(l.stats.errors, 1);
  assert.equal(l.stats.active, 0);
  assert.equal(warnings.length, 1);
  const q = await net.connect(5000);
  q.write('fine');
  await closeBoth(net, q);
  assert.equal(l.stats.closed, 2);
  l.stop();
});

test('the status page lists the IPv6 addresses (with their DAD state) and routes, in HTML and JSON; "IPv6 off" without them', () => {
  const h = new Harness(AF_INET6);
  const d = statusData(h.stack, []);
  assert.ok(d.ipv6, 'IPv6 on');
  const link = d.ipv6.addresses.find((a) => a.addr.startsWith('fe80::'));
  assert.ok(link && link.prefix === 64, JSON.stringify(d.ipv6.addresses));
  assert.ok(d.ipv6.addresses.some((a) => a.addr === 'fd00::2' && a.flags.includes('tentative')), 'the static address, tentative until DAD is done');
  assert.ok(d.ipv6.routes.some((r) => r.dst === 'fd00::/64' && r.via === null), JSON.stringify(d.ipv6.routes));
  const html = statusHtml(d);
  assert.match(html, /<td>fd00::2\/64<\/td><td>tentative<\/td>/);
  assert.match(html, /<td>fd00::\/64<\/td><td>link<\/td><td>never<\/td>/);
  const v4 = statusData(new Harness(AF_INET).stack, []);
  assert.equal(v4.ipv6, null);
  assert.match(statusHtml(v4), /IPv6 off/);
});

test('stopService/startService (the daemon\'s reload): one service moves, its TCP and UDP twins together, the others stay', () => {
  const { net, svc } = setup();
  const ports = () => ({ tcp: { ...svc.ports }, udp: svc.dgram.map((d) => `${d.name}/${d.port}`).sort() });
  assert.deepEqual(ports(), { tcp: { echo: 7, discard: 9, chargen: 19, http: 80 }, udp: ['discard/9', 'echo/7'] });
  svc.stopService('echo');
  assert.deepEqual(ports(), { tcp: { discard: 9, chargen: 19, http: 80 }, udp: ['discard/9'] });
  startService(svc, net.h.stack, 'echo', 7007);
  assert.deepEqual(ports(), { tcp: { discard: 9, chargen: 19, http: 80, echo: 7007 }, udp: ['discard/9', 'echo/7007'] });
  // Port 7 is free again: a listener of another service can take it.
  svc.stopService('chargen');
  startService(svc, net.h.stack, 'chargen', 7);
  assert.equal(svc.ports.chargen, 7);
  assert.deepEqual(svc.failed, []);
  // A port in use: the failure is kept, and forgotten when the service is stopped.
  startService(svc, net.h.stack, 'http', 9);
  assert.equal(svc.failed.length, 1);
  svc.stopService('http');
  assert.deepEqual(svc.failed, []);
  assert.equal(svc.ports.http, undefined);
  svc.stop();
});
