/**
 * The status page's content: the interface, its addresses, the sockets as
 * `ss -tan` shows them, the neighbours and every counter; as data (for
 * JSON) and as one HTML page.
 */
import { formatIpv4, formatMac } from '../lib/addr.js';
import type { Stack } from '../net/stack.js';
import type { ServiceStats } from './stream.js';
import { inetDiagDump, type SockDiagRow } from '../net/ipv4/inet_diag.js';

/** Sockets listed at most (the page must stay small whatever the load). */
export const STATUS_MAX_SOCKETS = 1000;

export interface ServiceRow {
  name: string;
  port: number;
  stats: ServiceStats;
  extra?: Record<string, unknown>;
}

export interface StatusData {
  time: string;
  interface: { name: string; ifindex: number; mac: string; mtu: number; up: boolean; carrier: boolean };
  ipv4: { address: string; prefix: number; broadcast: string | null }[];
  routes: { destination: string; gateway: string | null; prefsrc: string }[];
  /** IPv6 addresses (`ip -6 addr`) and routes (`ip -6 route`); null with IPv6 off. */
  ipv6: { addresses: { addr: string; prefix: number; flags: string[] }[]; routes: { dst: string; via: string | null; expires: number | null }[] } | null;
  sockets: SockDiagRow[];
  /** Sockets not listed because of STATUS_MAX_SOCKETS. */
  socketsOmitted: number;
  services: ServiceRow[];
  neighbours: { addr: string; lladdr: string; state: string }[];
  counters: Record<string, unknown>;
}


export function statusData(stack: Stack, services: ServiceRow[]): StatusData {
  const dev = stack.dev;
  const { rows, omitted } = inetDiagDump(stack.tcp, stack.udp, { max: STATUS_MAX_SOCKETS });
  return {
    time: new Date(stack.time.clock.wall()).toISOString(),
    interface: { name: dev.name, ifindex: dev.ifindex, mac: formatMac(dev.mac), mtu: dev.mtu, up: dev.up, carrier: dev.carrier },
    ipv4: stack.fib.addrs.map((a) => ({ address: formatIpv4(a.local), prefix: a.prefixLen, broadcast: a.broadcast ? formatIpv4(a.broadcast) : null })),
    routes: stack.fib.routes.map((r) => ({ destination: `${formatIpv4(r.dst)}/${r.prefixLen}`, gateway: r.gateway ? formatIpv4(r.gateway) : null, prefsrc: formatIpv4(r.prefsrc) })),
    ipv6: stack.ipv6.enabled ? { addresses: stack.ipv6.addresses(), routes: stack.ipv6.routes() } : null,
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
${d.ipv6 ? table(['IPv6 address', 'flags'], d.ipv6.addresses.map((a) => [`${a.addr}/${a.prefix}`, a.flags.join(' ')])) : '<p>IPv6 off</p>'}
${d.ipv6 ? table(['IPv6 route', 'via', 'expires (s)'], d.ipv6.routes.map((r) => [r.dst, r.via ?? 'link', r.expires ?? 'never'])) : ''}
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
