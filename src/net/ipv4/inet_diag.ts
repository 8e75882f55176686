/**
 * Socket rows as `ss -tanu` shows them (net/ipv4/inet_diag.c with
 * tcp_diag.c and udp_diag.c): one builder for `tapstack ss` (the API's
 * socket list) and the status page. States are inet_diag's: a request
 * sock shows as SYN-RECV, a TIME_WAIT sock as its substate (FIN-WAIT-2 for
 * one that closed from FIN_WAIT2, TIME-WAIT otherwise).
 */
import { type InetSock, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_STATE_NAMES, TCP_SYN_RECV, TCP_TIME_WAIT, type Sock } from '../core/sock.js';
import { tcpInq } from './tcp.js';
import { formatIpv4, formatIpv6 } from '../../lib/addr.js';
import { AF_INET6 } from '../../uapi.js';
import { tcpGetInfo } from './tcp_info.js';
import type { TcpProto } from './tcp_proto.js';
import { type TcpCcInfo, TcpSock, TcpTimewaitSock } from './tcp_sock.js';
import { udpEndpoint, udpStateName, type UdpProto } from './udp.js';

/** One socket: `ss` columns, the owning process where known, TCP_INFO with `-i`. */
export interface SockDiagRow {
  /** 'udp' for UDP sockets (UNCONN or ESTAB); absent for TCP. */
  proto?: string;
  state: string;
  local: string;
  peer: string;
  /** Unread bytes (UDP: receive memory, sk_rmem_alloc), or a listener's accept queue. */
  recvQ: number;
  /** Unacknowledged bytes, or a listener's backlog. */
  sendQ: number;
  owner?: { pid: number; fd: number };
  /** TCP_INFO: Linux's field names without the tcpi_ prefix, u64s as numbers. */
  info?: Record<string, number>;
  /** With `info`: the congestion control's name (INET_DIAG_CONG) and what its getInfo reports. */
  cong?: string;
  ccInfo?: TcpCcInfo;
}

export interface SockDiagRequest {
  /** Rows at most; the rest are counted in `omitted`. */
  max?: number;
  /** Add TCP_INFO to every TCP row but listeners' (`ss -i`). */
  info?: boolean;
  /** The process holding a socket (`ss -p`), where one does. */
  owner?: (sk: Sock) => { pid: number; fd: number } | null;
}

/** inet_diag_dump over TCP's tables, then udp_dump over UDP's. */
export function inetDiagDump(tcp: TcpProto, udp: UdpProto, req: SockDiagRequest = {}): { rows: SockDiagRow[]; omitted: number } {
  const max = req.max ?? Infinity;
  const rows: SockDiagRow[] = [];
  let omitted = 0;
  for (const s of tcp.hashinfo.sockets()) {
    if (rows.length >= max) {
      omitted++;
      continue;
    }
    let state = s.state;
    const row: SockDiagRow = { state: '', local: tcpEndpoint(s, false), peer: tcpEndpoint(s, true), recvQ: 0, sendQ: 0 };
    if (s instanceof TcpSock) {
      if (state === TCP_LISTEN) {
        row.recvQ = s.acceptQueue.length;
        row.sendQ = s.maxAckBacklog;
      } else {
        row.recvQ = tcpInq(s);
        row.sendQ = (s.writeSeq - s.sndUna) >>> 0;
        if (req.info) {
          row.info = tcpInfoFields(tcp, s);
          row.cong = s.caOps.name;
          const cc = s.caOps.getInfo?.(s);
          if (cc) row.ccInfo = cc;
        }
      }
      const owner = req.owner?.(s);
      if (owner) row.owner = owner;
    } else if (state === TCP_NEW_SYN_RECV) {
      state = TCP_SYN_RECV;
    } else if (state === TCP_TIME_WAIT && s instanceof TcpTimewaitSock) {
      state = s.substate;
    }
    row.state = tcpStateName(state);
    rows.push(row);
  }
  for (const u of udp.table.sockets()) {
    if (rows.length >= max) {
      omitted++;
      continue;
    }
    const row: SockDiagRow = { proto: 'udp', state: udpStateName(u), local: udpEndpoint(u, false), peer: udpEndpoint(u, true), recvQ: u.rmemAlloc, sendQ: 0 };
    const owner = req.owner?.(u);
    if (owner) row.owner = owner;
    rows.push(row);
  }
  return { rows, omitted };
}

/** TCP_INFO as `ss -i` data. */
function tcpInfoFields(tcp: TcpProto, sk: TcpSock): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(tcpGetInfo(tcp, sk))) out[k.replace(/^tcpi_/, '')] = typeof v === 'bigint' ? Number(v) : (v as number);
  return out;
}

/**
 * One end of a socket as `ss` prints it: a.b.c.d:port for AF_INET (`*` for
 * the wildcard), [addr]:port for AF_INET6 (v4-mapped for an IPv4 peer).
 */
export function tcpEndpoint(s: InetSock, peer: boolean): string {
  const port = peer ? s.dport : s.num;
  if (s.family === AF_INET6) return `[${formatIpv6((peer ? s.v6Daddr : s.v6RcvSaddr)!)}]:${port || '*'}`;
  const a = peer ? s.daddr : s.rcvSaddr;
  return `${a ? formatIpv4(a) : '*'}:${port || '*'}`;
}

export function tcpStateName(state: number): string {
  return TCP_STATE_NAMES[state] ?? String(state);
}
