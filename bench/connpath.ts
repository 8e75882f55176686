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
import { ADDR_A, measureRuns, median, twoStacks } from './inproc.js';
import { tcpAccept, tcpBind, tcpClose, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg } from '../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../src/net/ipv4/tcp_ipv4.js';
import { TCP_CLOSE } from '../src/net/core/sock.js';
import { startServices } from '../src/services/index.js';

const N = Number(process.env.CONN_N ?? 50_000);
const HTTP = process.env.CONN_HTTP === '1';
const RUNS = Number(process.env.CONN_RUNS ?? 5);
const ADDR_SERVER = ADDR_A;

const REQUEST = Buffer.from('GET /bytes/64 HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: close\r\n\r\n');
const RESPONSE = Buffer.concat([
  Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\nConnection: close\r\n\r\n'),
  Buffer.alloc(64, 0x5a),
]);

async function connections(n: number): Promise<void> {
  // The server is stack a (10.0.0.2), the client stack b.
  const { a: server, b: client, time, flush } = twoStacks({ tso: false, arenaBytes: 1 << 20, frames: 1024 });
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

const costs = await measureRuns(RUNS, () => connections(Math.min(N, 10_000)), () => connections(N));
const rows = costs.map((c) => ({ cpuUsPerConn: (c.cpuMs * 1000) / N, gcShare: c.gcMs / c.cpuMs }));
console.log(`connpath${HTTP ? ' http' : ''} ${N} connections x ${RUNS}: CPU us/conn ${rows.map((x) => x.cpuUsPerConn.toFixed(2)).join(' ')}; median ${median(rows.map((x) => x.cpuUsPerConn)).toFixed(2)}`);
console.log(`  GC share of CPU ${rows.map((x) => (100 * x.gcShare).toFixed(1) + '%').join(' ')}`);
console.log(JSON.stringify({ n: N, runs: rows }));
