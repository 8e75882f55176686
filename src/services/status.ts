/**
 * The status page's content: the interface, its addresses, the sockets as
 * `ss -tan` shows them, the neighbours and every counter; as data (for
 * JSON) and as one HTML page.
 */
import { formatIpv4, formatMac } from '../lib/addr.js';
import type { Stack } from '../net/stack.js';
import { tcpEndpoint, tcpInq, tcpStateName } from '../net/ipv4/tcp.js';
import { TcpSock, type TcpTimewaitSock } from '../net/ipv4/tcp_sock.js';
import type { ServiceStats } from './stream.js';
import { udpEndpoint, udpStateName } from '../net/ipv4/udp.js';
import { TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_RECV, TCP_TIME_WAIT } from '../net/core/sock.js';

/** Sockets listed at most (the page must stay small whatever the load). */
export const STATUS_MAX_SOCKETS = 1000;

export interface SocketRow {
  state: string;
  recvQ: number;
  sendQ: number;
  local: string;
  peer: string;
  /** 'udp' for UDP sockets (TCP rows leave it out). */
  proto?: string;
}

export interface ServiceRow {
  name: string;
  port: number;
  stats: ServiceStats;
  extra?: Record<string, unknown>;
}

export interface StatusData {
  time: string;
  interface: { name: string; ifindex: number; mac: string; mtu: number; up: boolean };
  ipv4: { address: string; prefix: number; broadcast: string | null }[];
  routes: { destination: string; gateway: string | null; prefsrc: string }[];
  sockets: SocketRow[];
  /** Sockets not listed because of STATUS_MAX_SOCKETS. */
  socketsOmitted: number;
  services: ServiceRow[];
  neighbours: { addr: string; lladdr: string; state: string }[];
  counters: Record<string, unknown>;
}


/** `ss -tan`: Recv-Q/Send-Q are unread/unacked bytes, or the accept queue and backlog of a listener. */
export function socketRows(stack: Stack): { rows: SocketRow[]; omitted: number } {
  const rows: SocketRow[] = [];
  let omitted = 0;
  for (const s of stack.tcp.hashinfo.sockets()) {
    if (rows.length >= STATUS_MAX_SOCKETS) {
      omitted++;
      continue;
    }
    let state = s.state;
    let recvQ = 0;
    let sendQ = 0;
    if (s instanceof TcpSock) {
      if (state === TCP_LISTEN) {
        recvQ = s.acceptQueue.length;
        sendQ = s.maxAckBacklog;
      } else {
        recvQ = tcpInq(s);
        sendQ = (s.writeSeq - s.sndUna) >>> 0;
      }
    } else if (state === TCP_NEW_SYN_RECV) {
      state = TCP_SYN_RECV;
    } else if (state === TCP_TIME_WAIT) {
      state = (s as TcpTimewaitSock).substate;
    }
    rows.push({ state: tcpStateName(state), recvQ, sendQ, local: tcpEndpoint(s, false), peer: tcpEndpoint(s, true) });
  }
  // `ss -uan`: Recv-Q is the receive queue's memory (sk_rmem_alloc), as ss shows for UDP.
  for (const u of stack.udp.table.sockets()) {
    if (rows.length >= STATUS_MAX_SOCKETS) {
      omitted++;
      continue;
    }
    rows.push({ proto: 'udp', state: udpStateName(u), recvQ: u.rmemAlloc, sendQ: 0, local: udpEndpoint(u, false), peer: udpEndpoint(u, true) });
  }
  return { rows, omitted };
}

export function statusData(stack: Stack, services: ServiceRow[]): StatusData {
  const dev = stack.dev;
  const { rows, omitted } = socketRows(stack);
  return {
    time: new Date(stack.time.clock.wall()).toISOString(),
    interface: { name: dev.name, ifindex: dev.ifindex, mac: formatMac(dev.mac), mtu: dev.mtu, up: dev.up },
    ipv4: stack.fib.addrs.map((a) => ({ address: formatIpv4(a.local), prefix: a.prefixLen, broadcast: a.broadcast ? formatIpv4(a.broadcast) : null })),
    routes: stack.fib.routes.map((r) => ({ destination: `${formatIpv4(r.dst)}/${r.prefixLen}`, gateway: r.gateway ? formatIpv4(r.gateway) : null, prefsrc: formatIpv4(r.prefsrc) })),
    sockets: rows,
    socketsOmitted: omitted,
    services,
    neighbours: stack.neighbours(),
    counters: stack.counters(),
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function table(head: string[], rows: unknown[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(String(c ?? ''))}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<tr>${th}</tr>\n${trs}\n</table>`;
}

/** Counter groups as name/value tables, nested groups flattened with dots. */
function counterTables(counters: Record<string, unknown>): string {
  const out: string[] = [];
  for (const [group, v] of Object.entries(counters)) {
    const rows: unknown[][] = [];
    const walk = (prefix: string, x: unknown): void => {
      if (x !== null && typeof x === 'object') for (const [k, y] of Object.entries(x)) walk(prefix ? `${prefix}.${k}` : k, y);
      else rows.push([prefix, x]);
    };
    walk('', v);
    out.push(`<h3>${escapeHtml(group)}</h3>\n${table(['counter', 'value'], rows)}`);
  }
  return out.join('\n');
}

export function statusHtml(d: StatusData): string {
  const i = d.interface;
  const services = d.services.map((s) => [
    s.name,
    s.port,
    s.stats.active,
    s.stats.accepted,
    s.stats.bytesIn,
    s.stats.bytesOut,
    s.stats.resets,
    s.stats.errors,
    s.extra ? JSON.stringify(s.extra) : '',
  ]);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tapstack on ${escapeHtml(i.name)}</title>
<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-family:monospace}</style>
</head>
<body>
<h1>tapstack</h1>
<p>${escapeHtml(d.time)} &middot; <a href="/?format=json">JSON</a></p>
<h2>Interface</h2>
${table(['name', 'ifindex', 'MAC', 'MTU', 'up'], [[i.name, i.ifindex, i.mac, i.mtu, i.up ? 'yes' : 'no']])}
<h2>Addresses</h2>
${table(['address', 'broadcast'], d.ipv4.map((a) => [`${a.address}/${a.prefix}`, a.broadcast ?? '']))}
${table(['route', 'via', 'src'], d.routes.map((r) => [r.destination, r.gateway ?? 'link', r.prefsrc]))}
<h2>Sockets</h2>
${table(['State', 'Recv-Q', 'Send-Q', 'Local', 'Peer'], d.sockets.map((s) => [s.state, s.recvQ, s.sendQ, s.local, s.peer]))}
${d.socketsOmitted ? `<p>${d.socketsOmitted} more not shown</p>` : ''}
<h2>Services</h2>
${table(['service', 'port', 'active', 'accepted', 'bytes in', 'bytes out', 'resets', 'errors', ''], services)}
<h2>Neighbours</h2>
${table(['address', 'lladdr', 'state'], d.neighbours.map((n) => [n.addr, n.lladdr, n.state]))}
<h2>Counters</h2>
${counterTables(d.counters)}
</body>
</html>
`;
}
