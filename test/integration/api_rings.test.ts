/**
 * The client library over shared-memory data rings against kernel peers
 * (docs/api.md "Data rings"), each case also over the socketpair path
 * (rings: false) so the two are held to the same results: bulk both ways
 * checksummed with EOF, 1-byte request/response, a peer's RST reaching the
 * socket as ECONNRESET, and back-pressure from a kernel reader that stops
 * (the stack's writer waits; the daemon's memory stays bounded; every byte
 * arrives once the reader resumes).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { Netns, ROOT, requireIntegration, waitFor, type Daemon } from './netns.js';
import { connect, createServer, type StackSocket } from '../../src/client/index.js';

const skip = requireIntegration(['python3']);
const TOOLS = join(ROOT, 'bench', 'tools');
let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('rings');
  api = join(ns.dir, 'api.sock');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

/** A python one-liner's text, quoted for sh. */
const py = (src: string) => `python3 -c '${src.replace(/'/g, `'"'"'`)}'`;

/** Seeded bytes both sides can make: python's random.Random(seed).randbytes(n). */
const PY_GEN = 'import random,hashlib,socket,sys\n';

for (const rings of [true, false]) {
  const how = rings ? 'over rings' : 'over the socketpair (rings: false)';

  test(`client library ${how}: 64 MiB kernel -> stack and stack -> kernel, sha256 equal, EOF both ways`, { skip, timeout: 120_000 }, async () => {
    const N = 64 * 1024 * 1024;
    const port = rings ? 7101 : 7201;
    // Up: a kernel client sends seeded bytes and half-closes; the stack server hashes to EOF and answers with the hash.
    const server = createServer({ api, rings }, (s) => {
      const h = createHash('sha256');
      s.on('data', (d: Buffer) => h.update(d));
      s.on('end', () => s.end(h.digest('hex')));
    });
    await new Promise<void>((r) => server.listen(port, '0.0.0.0', () => r()));
    try {
      const out = await ns.run(
        py(
          PY_GEN +
            `r=random.Random(5); h=hashlib.sha256(); s=socket.create_connection(("10.0.0.2",${port}),timeout=60)\n` +
            `left=${N}\nwhile left>0:\n  b=r.randbytes(min(left,1<<20)); s.sendall(b); h.update(b); left-=len(b)\n` +
            `s.shutdown(socket.SHUT_WR); got=b""\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  got+=d\n` +
            `print(h.hexdigest(), got.decode())`,
        ),
        100_000,
      );
      const [sent, got] = out.trim().split(' ');
      assert.equal(got, sent, 'the stack received every byte, in order');
    } finally {
      await new Promise((r) => server.close(r));
    }
    // Down: a kernel server hashes what it reads to EOF; the stack client sends seeded bytes, then end().
    const kport = rings ? 7102 : 7202;
    const peer = ns.background(
      py(
        PY_GEN +
          `l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("10.0.0.1",${kport})); l.listen(1); print("listening",flush=True)\n` +
          `c,_=l.accept(); h=hashlib.sha256(); n=0\nwhile True:\n  d=c.recv(1<<20)\n  if not d: break\n  h.update(d); n+=len(d)\n` +
          `c.sendall(("%d %s" % (n,h.hexdigest())).encode()); c.close()`,
      ),
    );
    let listening = '';
    peer.stdout!.on('data', (d: Buffer) => (listening += d.toString()));
    await waitFor(() => listening.includes('listening'), 'the kernel server', 10_000, 20);
    const data = Buffer.alloc(N);
    for (let i = 0; i < N; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const want = createHash('sha256').update(data).digest('hex');
    const reply = await new Promise<string>((res, rej) => {
      const s = connect({ host: '10.0.0.1', port: kport, api, rings });
      let text = '';
      s.on('error', rej);
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('end', () => res(text));
      s.on('connect', () => s.end(data));
    });
    assert.equal(reply, `${N} ${want}`, 'the kernel received every byte, in order, then our FIN');
  });

  test(`client library ${how}: 1-byte request/response with a kernel client`, { skip, timeout: 60_000 }, async () => {
    const port = rings ? 7103 : 7203;
    const server = createServer({ api, rings }, (s) => {
      s.setNoDelay(true);
      s.pipe(s);
    });
    await new Promise<void>((r) => server.listen(port, '0.0.0.0', () => r()));
    try {
      const r = JSON.parse((await ns.run(`python3 ${TOOLS}/tcp_rr.py 10.0.0.2 ${port} 1`, 30_000)).trim().split('\n').pop()!);
      assert.ok(r.transactions > 100, `transactions: ${r.transactions}`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test(`client library ${how}: the kernel peer's RST reaches the socket as ECONNRESET`, { skip, timeout: 60_000 }, async () => {
    const kport = rings ? 7104 : 7204;
    const peer = ns.background(
      py(
        'import socket,struct\n' +
          `l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("10.0.0.1",${kport})); l.listen(1); print("listening",flush=True)\n` +
          // The reset goes once the client said it has read the data (an abortive close: SO_LINGER 0).
          'c,_=l.accept(); c.recv(5); c.sendall(b"hello"); c.recv(2)\n' +
          'c.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack("ii",1,0)); c.close()',
      ),
    );
    let listening = '';
    peer.stdout!.on('data', (d: Buffer) => (listening += d.toString()));
    await waitFor(() => listening.includes('listening'), 'the kernel server', 10_000, 20);
    const s = connect({ host: '10.0.0.1', port: kport, api, rings }) as StackSocket;
    let got = '';
    const err = await new Promise<Error & { code?: string }>((res) => {
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got === 'hello') s.write('ok');
      });
      s.on('error', (e) => res(e));
      s.on('connect', () => s.write('hello'));
    });
    assert.equal(got, 'hello', 'the data before the reset');
    assert.equal(err.code, 'ECONNRESET');
  });

  test(`client library ${how}: a kernel reader that stops holds the stack's writer back; all arrives after`, { skip, timeout: 120_000 }, async () => {
    const port = rings ? 7105 : 7205;
    const N = 48 * 1024 * 1024;
    let blockedAt = -1;
    /** Bytes the socket has taken off the stream's queue (written to the ring or the pair). */
    let flushed = 0;
    const server = createServer({ api, rings }, (s) => {
      let off = 0;
      const chunk = Buffer.alloc(256 * 1024);
      const more = (): void => {
        while (off < N) {
          chunk.fill(off / chunk.length);
          off += chunk.length;
          if (!s.write(Buffer.from(chunk), () => (flushed += chunk.length))) {
            if (blockedAt < 0) blockedAt = off;
            return void s.once('drain', more);
          }
        }
        s.end();
      };
      more();
    });
    await new Promise<void>((r) => server.listen(port, '0.0.0.0', () => r()));
    // The reader connects and reads nothing until the test says so, through a FIFO (its open blocks
    // until the test opens the other end), then reads to EOF.
    const go = join(ns.dir, `go-${port}`);
    execFileSync('mkfifo', [go]);
    try {
      const out = ns.run(
        py(
          'import socket\n' +
            `s=socket.create_connection(("10.0.0.2",${port}),timeout=60); s.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,65536); open("${go}").read(1)\n` +
            'n=0; bad=0; pos=0\nwhile True:\n  d=s.recv(1<<20)\n  if not d: break\n' +
            '  for i in range(0,len(d),4096):\n    if d[i]!=((pos+i)//262144)&255: bad+=1\n  n+=len(d); pos+=len(d)\n' +
            'print(n,bad)',
        ),
        100_000,
      );
      await waitFor(() => blockedAt >= 0, 'the writer to meet back-pressure', 10_000, 20);
      // Blocked while the reader has read nothing: what the socket took is what the buffers on the way hold (ring or pair, TCP's).
      const held = flushed;
      const fifo = await open(go, 'w');
      await fifo.write('g');
      await fifo.close();
      const [n, bad] = (await out).trim().split(' ').map(Number);
      assert.ok(held < 16 * 1024 * 1024, `the writer was held back while the reader slept (${held} of ${N} bytes taken)`);
      assert.equal(n, N, 'every byte arrived');
      assert.equal(bad, 0, 'in order');
      const c = await daemon.counters();
      assert.equal(c.Api.RingFaults, 0);
      if (rings) assert.ok(c.Api.Rings > 0, 'rings were used');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
}
