/**
 * The Prometheus endpoint (config `metricsListen`, off by default): the
 * text exposition format, written by hand because what it carries is
 * simple and already counted (a client library would keep a second copy
 * of every counter): every counter the stack and the API keep, named as
 * node_exporter names /proc/net/netstat's (`tapstack_netstat_TcpExt_...`,
 * the Linux names kept), sockets per TCP state, histograms of srtt and
 * cwnd over the connections (no per-socket label: a scrape's size does not
 * grow with the connections), and the event loop's delay. Built at scrape
 * time only; nothing runs per packet.
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Stack } from '../net/stack.js';
import { TCP_STATE_NAMES, TCP_ESTABLISHED } from '../net/core/sock.js';
import { sumCounters } from './shard_merge.js';

/** Counters that go down as well as up: gauges. */
const GAUGES = new Set([
  'Tcp_CurrEstab',
  'Tcp_RtoAlgorithm',
  'Tcp_RtoMin',
  'Tcp_RtoMax',
  'Tcp_MaxConn',
  'Ip_Forwarding',
  'Ip_DefaultTTL',
  'Arp_entries',
  'Ndisc_entries',
  'Api_Clients',
  'Api_MemAllocated',
  'Tap_attached',
]);
const GAUGE_GROUPS = new Set(['Sockstat', 'Frag', 'Frag6']);

const SRTT_BUCKETS_S = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
const CWND_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

const name = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

function histogram(out: string[], metric: string, help: string, bounds: number[], values: number[]): void {
  out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} histogram`);
  const counts = new Array<number>(bounds.length).fill(0);
  let sum = 0;
  for (const v of values) {
    sum += v;
    for (let i = 0; i < bounds.length; i++) if (v <= bounds[i]) counts[i]++;
  }
  for (let i = 0; i < bounds.length; i++) out.push(`${metric}_bucket{le="${bounds[i]}"} ${counts[i]}`);
  out.push(`${metric}_bucket{le="+Inf"} ${values.length}`, `${metric}_sum ${sum}`, `${metric}_count ${values.length}`);
}

/**
 * What a scrape shows of one stack, as plain data: a shard's worker sends
 * its own to the main thread, which merges them (mergeSnapshots).
 */
export interface MetricsSnapshot {
  counters: Record<string, unknown>;
  /** TCP sockets by state name, TIME_WAIT included. */
  tcpStates: [string, number][];
  udpSockets: number;
  /** srtt (seconds) and cwnd (segments) of each established connection. */
  srtt: number[];
  cwnd: number[];
}

export function metricsSnapshot(stack: Stack): MetricsSnapshot {
  const byState = new Map<string, number>();
  const srtt: number[] = [];
  const cwnd: number[] = [];
  for (const sk of stack.tcp.socks) {
    const st = TCP_STATE_NAMES[sk.state] ?? String(sk.state);
    byState.set(st, (byState.get(st) ?? 0) + 1);
    if (sk.state === TCP_ESTABLISHED) {
      if (sk.srttUs) srtt.push(sk.srttUs / 8 / 1e6);
      cwnd.push(sk.sndCwnd);
    }
  }
  byState.set('TIME_WAIT', (byState.get('TIME_WAIT') ?? 0) + stack.tcp.tw.count);
  return { counters: stack.counters(), tcpStates: [...byState], udpSockets: stack.udp.table.count, srtt, cwnd };
}

/** The shards' snapshots as one: counters summed, sockets by state added, the connections' samples joined. */
export function mergeSnapshots(list: readonly MetricsSnapshot[]): MetricsSnapshot {
  const byState = new Map<string, number>();
  for (const s of list) for (const [st, n] of s.tcpStates) byState.set(st, (byState.get(st) ?? 0) + n);
  return {
    counters: sumCounters(list.map((s) => s.counters)),
    tcpStates: [...byState],
    udpSockets: list.reduce((a, s) => a + s.udpSockets, 0),
    srtt: list.flatMap((s) => s.srtt),
    cwnd: list.flatMap((s) => s.cwnd),
  };
}

/**
 * The exposition text for a stack (or the shards' merged snapshot) with the
 * daemon's own groups (`extra`: Api, Tap) and the event loop's delay
 * histogram (nanoseconds, as monitorEventLoopDelay keeps it).
 */
export function prometheusText(src: Stack | MetricsSnapshot, extra: Record<string, Record<string, number>>, loop: IntervalHistogram | null): string {
  const out: string[] = [];
  const snap = 'tcpStates' in src ? src : metricsSnapshot(src);
  const groups = { ...snap.counters, ...extra } as Record<string, Record<string, unknown>>;
  for (const [group, values] of Object.entries(groups)) {
    if (group === 'Link') {
      // Per device, as node_network_*: a label, not a name.
      for (const [dev, stats] of Object.entries(values as Record<string, Record<string, number>>)) {
        for (const [k, v] of Object.entries(stats)) {
          const m = `tapstack_network_${name(k)}`;
          out.push(`# TYPE ${m} counter`, `${m}{device="${dev}"} ${v}`);
        }
      }
      continue;
    }
    for (const [k, v] of Object.entries(values)) {
      if (typeof v !== 'number') continue;
      const id = `${group}_${k}`;
      const m = `tapstack_netstat_${name(id)}`;
      out.push(`# TYPE ${m} ${GAUGE_GROUPS.has(group) || GAUGES.has(id) ? 'gauge' : 'counter'}`, `${m} ${v}`);
    }
  }
  // Sockets per state, TCP's and UDP's.
  out.push('# HELP tapstack_tcp_sockets TCP sockets by state (TIME_WAIT included).', '# TYPE tapstack_tcp_sockets gauge');
  for (const [st, n] of snap.tcpStates) out.push(`tapstack_tcp_sockets{state="${st}"} ${n}`);
  out.push('# HELP tapstack_udp_sockets UDP sockets.', '# TYPE tapstack_udp_sockets gauge', `tapstack_udp_sockets ${snap.udpSockets}`);
  histogram(out, 'tapstack_tcp_srtt_seconds', 'Smoothed RTT of the established connections.', SRTT_BUCKETS_S, snap.srtt);
  histogram(out, 'tapstack_tcp_cwnd_segments', 'Congestion window of the established connections.', CWND_BUCKETS, snap.cwnd);
  if (loop) {
    const m = 'tapstack_event_loop_delay_seconds';
    out.push(`# HELP ${m} How late the event loop ran its timers, since the daemon started.`, `# TYPE ${m} summary`);
    for (const q of [0.5, 0.9, 0.99]) out.push(`${m}{quantile="${q}"} ${loop.count ? loop.percentile(q * 100) / 1e9 : 0}`);
    out.push(`${m}_sum ${loop.count ? (loop.mean * loop.count) / 1e9 : 0}`, `${m}_count ${loop.count}`);
  }
  return out.join('\n') + '\n';
}

/**
 * Serve GET /metrics on host:port. `extra` is read at each scrape, and so is
 * `src` when it is a function (the shards' merged snapshot, asked of each
 * worker). The listener is the host's (Node's, not the stack's): the
 * endpoint is for the machine's own monitoring.
 */
export function startMetricsServer(
  src: Stack | (() => Promise<MetricsSnapshot>),
  host: string,
  port: number,
  extra: () => Record<string, Record<string, number>>,
  onListening: (addr: string) => void,
  onError: (e: Error) => void,
): Server {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const srv = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics here\n');
      return;
    }
    if (typeof src !== 'function') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheusText(src, extra(), loop));
      return;
    }
    src().then(
      (snap) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheusText(snap, extra(), loop)),
      (e: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`cannot read the shards' counters: ${e.message}\n`),
    );
  });
  srv.on('error', onError);
  srv.on('close', () => loop.disable());
  srv.listen(port, host, () => onListening(`${host.includes(':') ? `[${host}]` : host}:${port}`));
  return srv;
}
