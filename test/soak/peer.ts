/**
 * The soak's kernel side, run by main.ts inside the soak's network
 * namespace (`ip netns exec`), never elsewhere: the kernel's sockets
 * talking to the stack's built-in services and serving the stack side's
 * clients. Arguments: one JSON object (PeerArgs). Prints one JSON line of
 * flow totals a second, and a last one with "final": true when `until`
 * has passed and the flows have wound down (or on SIGTERM).
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { CHARGEN_PERIOD, chargenLine } from '../../src/services/chargen.js';
import { bulkEcho, churn, echoConn, readKnown, requestResponse, sendStream, sinkStream, udpEcho, type Ctx } from './flows.js';
import { Pattern, newFlowStats, type FlowStats } from './pattern.js';

export interface PeerArgs {
  seed: number;
  /** Epoch ms at which the flows stop. */
  until: number;
  stack4: string;
  stack6: string;
  /** The kernel side's servers: echo (TCP), the sink of the stack's sender, UDP echo. */
  echoPort: number;
  sinkPort: number;
  udpPort: number;
  /** The stack side's receiver of the kernel's sender (client library). */
  stackSinkPort: number;
  /** Flow ids by name (salts, datagram headers). */
  ids: Record<string, number>;
}

const a = JSON.parse(process.argv[2]) as PeerArgs;
const p = new Pattern(a.seed);
let stopping = false;
const live = () => !stopping && Date.now() < a.until;
const flows: Record<string, FlowStats> = {};
const ctx = (name: string): Ctx => {
  flows[name] ??= newFlowStats();
  return { p, flowId: a.ids[name] ?? 0, stats: flows[name], live };
};
const report = (final = false) => process.stdout.write(JSON.stringify({ final, flows }) + '\n');

// The servers the stack side's clients use.
const servers: { close(): void }[] = [];
const echo = net.createServer(echoConn).listen(a.echoPort, '::');
servers.push(echo);
const sinkCtx = ctx('s2k');
servers.push(net.createServer((s) => sinkStream(sinkCtx, s)).listen(a.sinkPort, '::'));
const u = dgram.createSocket({ type: 'udp6', ipv6Only: false });
u.on('message', (m, r) => u.send(m, r.port, r.address));
u.on('error', () => {});
u.bind(a.udpPort, '::');
servers.push(u);

const tcp = (host: string, port: number) => () => net.connect({ host, port });

// Chargen's stream from its start: the period repeated (chargen.ts).
const period = Buffer.from(Array.from({ length: 95 }, (_, n) => chargenLine(n)).join(''), 'latin1');
const periods = Buffer.concat(Array.from({ length: Math.ceil(65_536 / CHARGEN_PERIOD) + 1 }, () => period));
const chargenAt = (pos: number, n: number) => {
  const o = pos % CHARGEN_PERIOD;
  return periods.subarray(o, o + n);
};

/** The built-in HTTP service's /bytes/N over a keep-alive agent: byte i is i & 0xff. */
async function httpFlow(c: Ctx): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; live(); i++) {
    const n = 1 + ((i * 2654435761) >>> 0) % 65_536;
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const req = http.get({ host: a.stack4, port: 80, path: `/bytes/${n}`, agent, timeout: 15_000 }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(parts)) : reject(new Error(`HTTP ${res.statusCode}`))));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
      });
      checkBytes(c, body, n);
    } catch (e) {
      c.stats.errors++;
      c.stats.lastError = (e as Error).message;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  agent.destroy();
}

function checkBytes(c: Ctx, body: Buffer, n: number): void {
  let bad = Math.abs(body.length - n);
  for (let i = 0; i < Math.min(n, body.length); i++) if (body[i] !== (i & 0xff)) bad++;
  if (bad) {
    c.stats.mismatches += bad;
    c.stats.firstMismatch ??= `/bytes/${n}: ${bad} bytes differ (got ${body.length})`;
  }
  c.stats.bytes += body.length;
  c.stats.ops++;
}

/** curl (a real program) fetching /bytes/N from the service over IPv4 and IPv6 in turn, one a second. */
async function curlFlow(c: Ctx): Promise<void> {
  for (let i = 0; live(); i++) {
    const n = 1 + ((i * 40503) % 1_000_000);
    const url = i % 2 ? `http://[${a.stack6}]/bytes/${n}` : `http://${a.stack4}/bytes/${n}`;
    const t0 = Date.now();
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const cp = spawn('curl', ['-sS', '-m', '10', url], { stdio: ['ignore', 'pipe', 'pipe'] });
        const parts: Buffer[] = [];
        let err = '';
        cp.stdout.on('data', (d: Buffer) => parts.push(d));
        cp.stderr.on('data', (d: Buffer) => (err += d.toString()));
        cp.on('error', reject);
        cp.on('close', (code) => (code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`curl ${url} exited ${code}: ${err.trim()}`))));
      });
      checkBytes(c, body, n);
    } catch (e) {
      c.stats.errors++;
      c.stats.lastError = (e as Error).message;
    }
    const rest = 1000 - (Date.now() - t0);
    if (rest > 0 && live()) await new Promise((r) => setTimeout(r, rest));
  }
}

function udpTo(host: string): { send(b: Buffer): void; onMessage(f: (b: Buffer) => void): void; close(): void } {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('error', () => {});
  return {
    send: (b) => s.send(b, 7, host),
    onMessage: (f) => s.on('message', (m) => f(m)),
    close: () => s.close(),
  };
}

const timer = setInterval(() => report(), 1000);
const u4 = udpTo(a.stack4);
const u6 = udpTo(a.stack6);
const MB = 1 << 20;
const all = Promise.all([
  bulkEcho(ctx('echo4'), tcp(a.stack4, 7), 64 * MB),
  bulkEcho(ctx('echo6'), tcp(a.stack6, 7), 64 * MB),
  readKnown(ctx('chargen'), tcp(a.stack4, 19), 64 * MB, chargenAt),
  sendStream(ctx('k2s'), tcp(a.stack4, a.stackSinkPort), 32 * MB),
  httpFlow(ctx('http')),
  curlFlow(ctx('curl')),
  churn(ctx('churn-in'), () => tcp(Math.random() < 0.5 ? a.stack4 : a.stack6, 7)(), 2, 40),
  requestResponse(ctx('rr-in'), tcp(a.stack6, 7)),
  udpEcho(ctx('udp4'), u4, 200),
  udpEcho(ctx('udp6'), u6, 200),
]);

function finish(): void {
  clearInterval(timer);
  report(true);
  u4.close();
  u6.close();
  for (const s of servers) s.close();
  process.exit(0);
}
process.on('SIGTERM', () => {
  stopping = true;
  // Give the flows a moment to end their connections cleanly.
  setTimeout(finish, 1000).unref();
});
all.then(finish, (e) => {
  process.stderr.write(`peer: ${(e as Error).stack}\n`);
  finish();
});
