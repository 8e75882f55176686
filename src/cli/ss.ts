/**
 * `tapstack ss` lines, in ss's layout: Netid, State, the queues, the
 * addresses and the owning process, then (-i) the TCP_INFO line in ss's
 * words and units.
 */
import type { SocketRow } from '../client/index.js';
import type { TcpCcInfo } from '../net/ipv4/tcp_sock.js';

/** Column widths: the queues as wide as their largest number, the addresses as the longest shown (IPv6 ones run past ss's 22). */
export interface SsWidths {
  rq: number;
  sq: number;
  l: number;
  p: number;
}

export function ssWidths(rows: SocketRow[]): SsWidths {
  const w = { rq: 'Recv-Q'.length, sq: 'Send-Q'.length, l: 22, p: 22 };
  for (const r of rows) {
    w.rq = Math.max(w.rq, String(r.recvQ).length);
    w.sq = Math.max(w.sq, String(r.sendQ).length);
    w.l = Math.max(w.l, r.local.length);
    w.p = Math.max(w.p, r.peer.length);
  }
  return w;
}

export function ssHeader(w: SsWidths): string {
  return `${'Netid'.padEnd(5)} ${'State'.padEnd(12)} ${'Recv-Q'.padStart(w.rq)} ${'Send-Q'.padStart(w.sq)}   ${'Local Address:Port'.padEnd(w.l)} ${'Peer Address:Port'.padEnd(w.p)} Process`;
}

export function ssLine(r: SocketRow, info: boolean, w: SsWidths): string {
  const proc = r.owner ? `pid=${r.owner.pid},fd=${r.owner.fd}` : '';
  let line = `${(r.proto ?? 'tcp').padEnd(5)} ${r.state.padEnd(12)} ${String(r.recvQ).padStart(w.rq)} ${String(r.sendQ).padStart(w.sq)}   ${r.local.padEnd(w.l)} ${r.peer.padEnd(w.p)} ${proc}`;
  if (info && r.info) line += `\n\t ${ssInfo(r.info, r.cong, r.ccInfo)}`;
  return line.trimEnd();
}

/** A rate in ss's words (sprint_bw): bits per second with a k/M/G prefix. */
function ssBw(bytesPerSec: number): string {
  const bps = bytesPerSec * 8;
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(1)}Gbps`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)}Mbps`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)}Kbps`;
  return `${Math.round(bps)}bps`;
}

/** The congestion control's own info, as ss prints its INET_DIAG_* attribute (a module's fields as NAME:(k:v,...)). */
function ssCcInfo(cong: string | undefined, cc: TcpCcInfo | undefined): string {
  if (!cc) return '';
  switch (cc.kind) {
    case 'bbr': {
      const b = cc.bbr;
      return `bbr:(bw:${ssBw(b.bw)},mrtt:${b.minRtt / 1000}${b.pacingGain ? `,pacing_gain:${b.pacingGain / 256}` : ''}${b.cwndGain ? `,cwnd_gain:${b.cwndGain / 256}` : ''})`;
    }
    case 'dctcp': {
      const d = cc.dctcp;
      return d.enabled ? `dctcp:(ce_state:${d.ceState},alpha:${d.alpha},ab_ecn:${d.abEcn},ab_tot:${d.abTot})` : 'dctcp:fallback_mode';
    }
    case 'vegas':
      return '';
    case 'fields': {
      const kv = Object.entries(cc.fields).map(([k, v]) => `${k}:${v}`);
      return `${cong ?? 'cc'}:(${kv.join(',')})`;
    }
  }
}

/** The TCP_INFO line of `ss -i`, in ss's words and units (ms with three decimals for times in us). */
function ssInfo(i: Record<string, number>, cong?: string, cc?: TcpCcInfo): string {
  const ms = (us: number) => String(Math.round(us) / 1000);
  const parts = [
    cong ?? '',
    i.options & 4 ? `wscale:${i.snd_wscale},${i.rcv_wscale}` : '',
    `rto:${ms(i.rto)}`,
    `rtt:${ms(i.rtt)}/${ms(i.rttvar)}`,
    `ato:${ms(i.ato)}`,
    `mss:${i.snd_mss}`,
    `pmtu:${i.pmtu}`,
    `rcvmss:${i.rcv_mss}`,
    `advmss:${i.advmss}`,
    `cwnd:${i.snd_cwnd}`,
    i.snd_ssthresh < 0x7fffffff ? `ssthresh:${i.snd_ssthresh}` : '',
    `bytes_sent:${i.bytes_sent}`,
    i.bytes_retrans ? `bytes_retrans:${i.bytes_retrans}` : '',
    `bytes_acked:${i.bytes_acked}`,
    `bytes_received:${i.bytes_received}`,
    `segs_out:${i.segs_out}`,
    `segs_in:${i.segs_in}`,
    `data_segs_out:${i.data_segs_out}`,
    `data_segs_in:${i.data_segs_in}`,
    ssCcInfo(cong, cc),
    `lastsnd:${i.last_data_sent}`,
    `lastrcv:${i.last_data_recv}`,
    `lastack:${i.last_ack_recv}`,
    i.pacing_rate ? `pacing_rate:${(i.pacing_rate * 8 / 1e6).toFixed(1)}Mbps` : '',
    i.delivery_rate ? `delivery_rate:${(i.delivery_rate * 8 / 1e6).toFixed(1)}Mbps` : '',
    `delivered:${i.delivered}`,
    i.unacked ? `unacked:${i.unacked}` : '',
    i.retrans || i.total_retrans ? `retrans:${i.retrans}/${i.total_retrans}` : '',
    i.lost ? `lost:${i.lost}` : '',
    i.sacked ? `sacked:${i.sacked}` : '',
    i.reordering !== 3 ? `reordering:${i.reordering}` : '',
    i.rcv_rtt ? `rcv_rtt:${ms(i.rcv_rtt)}` : '',
    `rcv_space:${i.rcv_space}`,
    `rcv_ssthresh:${i.rcv_ssthresh}`,
    i.notsent_bytes ? `notsent:${i.notsent_bytes}` : '',
    i.min_rtt && i.min_rtt < 0xffffffff ? `minrtt:${ms(i.min_rtt)}` : '',
    `snd_wnd:${i.snd_wnd}`,
    `rcv_wnd:${i.rcv_wnd}`,
  ];
  return parts.filter(Boolean).join(' ');
}

