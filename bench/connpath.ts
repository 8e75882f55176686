/**
 * The stack's own cost per short connection, without the kernel, the TAP or
 * the other processes: two stacks in this process on a virtual clock and a
 * wire that copies frames as the TAP driver does. Each connection is what
 * `wrk` with `Connection: close` makes of the built-in server: the
 * handshake, a request of about 60 bytes, a 64-byte body with its headers,
 * the server's close first (TIME_WAIT on the server, as in Linux), and the
 * client's close; the clock moves a millisecond per connection, so
 * TIME_WAIT sockets expire and the tables hold what a server under this
 * load holds. Run after `npm run build`:
 *
 *   node dist/bench/connpath.js             # CPU microseconds per connection, both stacks together
 *   CONN_HTTP=1 node dist/bench/connpath.js # the server is the built-in HTTP service (services/http.ts)
 *                                           # answering GET /bytes/64, as the bench's wrk rows use it
 *
 * CONN_N (default 50 000) connections per run, CONN_RUNS (default 5) after a
 * warm-up; prints CPU us per connection for each run and the median, and
 * the garbage collector's share. `node --cpu-prof dist/bench/connpath.js`
 * profiles it (bench/tools/prof_top.py reads the profile).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Stack } from '../src/net/stack.js';
import { VirtualTime } from '../src/lib/time.js';
import { SeededRandom } from '../src/lib/random.js';
import type { LinkDriver } from '../src/net/core/dev.js';
import { tcpAccept, tcpBind, tcpClose, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg } from '../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../src/net/ipv4/tcp_ipv4.js';
import { TCP_CLOSE } from '../src/net/core/sock.js';
import { startServices } from '../src/services/index.js';

const N = Number(process.env.CONN_N ?? 50_000);
const HTTP = process.env.CONN_HTTP === '1';
const RUNS = Number(process.env.CONN_RUNS ?? 5);
const ADDR_SERVER = 0x0a000002;
const ADDR_CLIENT = 0x0a000001;

/** A wire like the TAP driver: xmit copies each frame into an arena; drain() hands them to the peer in place. */
class ArenaWire implements LinkDriver {
  peer!: Stack;
  #arena = Buffer.allocUnsafe(1 << 20);
  #offs = new Int32Array(1024);
  #lens = new Int32Array(1024);
  #n = 0;
  #used = 0;
  xmit(buf: Buffer, off: number, len: number): boolean {
    if (this.#n === this.#offs.length || this.#used + len > this.#arena.length) return false;
    buf.copy(this.#arena, this.#used, off, off + len);
    this.#offs[this.#n] = this.#used;
    this.#lens[this.#n++] = len;
    this.#used += (len + 7) & ~7;
    return true;
  }
  drain(): number {
    const n = this.#n;
    for (let i = 0; i < n; i++) this.peer.receive(this.#arena, this.#offs[i], this.#lens[i], false, 0);
    this.#n = 0;
    this.#used = 0;
    return n;
  }
}

const REQUEST = Buffer.from('GET /bytes/64 HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: close\r\n\r\n');
const RESPONSE = Buffer.concat([
  Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\nConnection: close\r\n\r\n'),
  Buffer.alloc(64, 0x5a),
]);

async function connections(n: number): Promise<void> {
  const time = new VirtualTime(0);
  const ws = new ArenaWire();
  const wc = new ArenaWire();
  const server = new Stack({ ifname: 's', mac: Buffer.from([2, 0, 0, 0, 0, 0xa]), mtu: 1500, ipv4: [{ addr: ADDR_SERVER, prefix: 24 }], gateway: 0 }, ws, time, new SeededRandom(1));
  const client = new Stack({ ifname: 'c', mac: Buffer.from([2, 0, 0, 0, 0, 0xb]), mtu: 1500, ipv4: [{ addr: ADDR_CLIENT, prefix: 24 }], gateway: 0 }, wc, time, new SeededRandom(2));
  ws.peer = client;
  wc.peer = server;
  server.up();
  client.up();
  const flush = () => {
    while (ws.drain() + wc.drain() > 0);
  };
  // The built-in service runs in microtasks after each wake-up, as in the daemon: let them run.
  const settle = async () => {
    flush();
    for (let k = 0; k < 4; k++) {
      await null;
      flush();
    }
  };
  const services = HTTP ? startServices(server, { http: 80 }) : null;
  const lsk = HTTP ? null : tcpNewSock(server.tcp);
  if (lsk) {
    tcpBind(server.tcp, lsk, 0, 80);
    tcpListen(server.tcp, lsk, 1024);
  }
  const into = Buffer.alloc(4096);
  for (let i = 0; i < n; i++) {
    const c = tcpNewSock(client.tcp);
    const rc = tcpConnect(client.tcp, c, ADDR_SERVER, 80);
    if (rc !== -115) throw new Error(`connect ${rc} at connection ${i}`);
    await settle();
    const s = lsk ? tcpAccept(server.tcp, lsk) : null;
    if (typeof s === 'number') throw new Error(`accept ${s} at connection ${i}`);
    if (tcpSendmsg(client.tcp, c, REQUEST) !== REQUEST.length) throw new Error('request');
    await settle();
    if (s) {
      if (tcpRecvmsg(server.tcp, s, into) !== REQUEST.length) throw new Error('request not received');
      tcpSendmsg(server.tcp, s, RESPONSE);
      tcpClose(server.tcp, s);
      flush();
    }
    let got = 0;
    let head = '';
    for (let k = 0; k < 4; k++) {
      const r = tcpRecvmsg(client.tcp, c, into);
      if (r <= 0) break;
      if (!got) head = into.toString('latin1', 0, 12);
      got += r;
    }
    if (HTTP ? head !== 'HTTP/1.1 200' || got < 64 : got !== RESPONSE.length) throw new Error(`response ${got} (${head}) at connection ${i}`);
    tcpClose(client.tcp, c);
    await settle();
    if (c.state !== TCP_CLOSE) throw new Error(`client left in state ${c.state}`);
    time.advance(1);
    await settle();
  }
  services?.stop();
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

const rows: { cpuUsPerConn: number; gcShare: number }[] = [];
// A warm-up run, not counted: the JIT has compiled the path by its end.
await connections(Math.min(N, 10_000));
for (let r = 0; r < RUNS; r++) {
  await new Promise((res) => setImmediate(res));
  const g0 = gcMs;
  const c0 = process.cpuUsage();
  await connections(N);
  const c = process.cpuUsage(c0);
  // GC entries are delivered asynchronously.
  await new Promise((res) => setTimeout(res, 50));
  const cpuUs = c.user + c.system;
  rows.push({ cpuUsPerConn: cpuUs / N, gcShare: (gcMs - g0) / (cpuUs / 1000) });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`connpath${HTTP ? ' http' : ''} ${N} connections x ${RUNS}: CPU us/conn ${rows.map((x) => x.cpuUsPerConn.toFixed(2)).join(' ')}; median ${med(rows.map((x) => x.cpuUsPerConn)).toFixed(2)}`);
console.log(`  GC share of CPU ${rows.map((x) => (100 * x.gcShare).toFixed(1) + '%').join(' ')}`);
console.log(JSON.stringify({ n: N, runs: rows }));
