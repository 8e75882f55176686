/**
 * What must hold after each frame and each timer run, whatever the input.
 *
 * Accounting (counters before and after one fuzzed frame):
 *  - an error counter that moved (InHdrErrors, InCsumErrors, NoPorts, the
 *    device's otherhost and no-handler drops, ...) comes with a drop reason
 *    (mibs.Drop, SKB_DROP_REASON): nothing is refused without saying why
 *    (ICMP's InErrors for an error message handed to a transport that knows
 *    no such socket excepted: Linux counts and consumes those);
 *  - a frame that reached IPv4 or IPv6 was delivered to a protocol, queued
 *    for reassembly, or dropped with a reason;
 *  - a datagram delivered to a transport was taken by it (TCP's InSegs,
 *    UDP's and ICMP's In counters) or dropped with a reason;
 *  - nothing Linux refuses is delivered: IPv4 options it rejects or source
 *    routes (ipv4OptionsRefused), our own address as the source (fuzz.ts).
 * What the stack sends is checked as it leaves (world.ts): checksums, our
 * addresses as source, no ICMP error RFC 1122 3.2.2 or RFC 4443 2.4 forbids.
 * TCP sockets (every socket in the tables):
 *  - sequence space: snd_una <= snd_nxt <= write_seq; rcv_nxt never goes back;
 *  - queue accounting: sk_rmem_alloc is what the receive and out-of-order
 *    queues hold, sk_wmem_queued what the write queue's skbs weigh;
 *    sacked_out + lost_out <= packets_out, retrans_out <= packets_out, and
 *    packets_out is 0 exactly when nothing is in flight;
 *  - the out-of-order queue is in sequence order, every segment after rcv_nxt;
 *  - timers: data in flight has the retransmit timer armed (RTO, loss
 *    probe, reordering or zero-window probe), icsk_pending says so exactly
 *    when that timer is pending, a closed socket has none; request and
 *    timewait socks always have theirs.
 */
import type { Mibs } from '../../src/net/core/snmp.js';
import { SKB_DROP_REASON } from '../../src/net/core/snmp.js';
import { TCP_CLOSE, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT, TCP_STATE_NAMES } from '../../src/net/core/sock.js';
import type { TcpRequestSock, TcpSock, TcpTimewaitSock } from '../../src/net/ipv4/tcp_sock.js';
import type { Stack } from '../../src/net/stack.js';
import { after, before } from '../../src/lib/seq.js';
import { FuzzFailure } from './world.js';

const DROP_NAMES = Object.keys(SKB_DROP_REASON);

/** The counters the laws read, flattened. */
export interface Snap {
  drop: number;
  drops: Float64Array;
  errors: number;
  errs: Record<string, number>;
  ipIn: number;
  ipOut: number;
  ip6In: number;
  ip6Out: number;
  l4v4: number;
  l4v6: number;
  deliv4: number;
  deliv6: number;
  /** ICMP's InErrors, and the error messages handed on to the transports' error handlers. */
  icmpErr: number;
  icmpNotify: number;
}

/**
 * `queued`: what the UDP sockets' receive queues hold (a datagram is
 * counted in InDatagrams only when read, as udp_recvmsg counts it).
 */
export function snap(s: Stack, queued = 0): Snap {
  const m: Mibs = s.mibs;
  const st = s.dev.stats;
  const drops = Float64Array.from(m.Drop.counts);
  let drop = 0;
  for (const c of drops) drop += c;
  const errs: Record<string, number> = {
    'Link.rx_otherhost_dropped': st.rx_otherhost_dropped,
    'Link.rx_nohandler': st.rx_nohandler,
    'Ip.InHdrErrors': m.Ip.InHdrErrors,
    'Ip.InAddrErrors': m.Ip.InAddrErrors,
    'Ip.InUnknownProtos': m.Ip.InUnknownProtos,
    'Ip.InDiscards': m.Ip.InDiscards,
    'IpExt.InTruncatedPkts': m.IpExt.InTruncatedPkts,
    'IpExt.InCsumErrors': m.IpExt.InCsumErrors,
    'Ip6.InHdrErrors': m.Ip6.InHdrErrors,
    'Ip6.InAddrErrors': m.Ip6.InAddrErrors,
    'Ip6.InUnknownProtos': m.Ip6.InUnknownProtos,
    'Ip6.InTruncatedPkts': m.Ip6.InTruncatedPkts,
    'Ip6.InDiscards': m.Ip6.InDiscards,
    'Ip6.InNoRoutes': m.Ip6.InNoRoutes,
    'Ip6.InTooBigErrors': m.Ip6.InTooBigErrors,
    'Icmp.InCsumErrors': m.Icmp.InCsumErrors,
    'Icmp6.InCsumErrors': m.Icmp6.InCsumErrors,
    'Udp.NoPorts': m.Udp.NoPorts,
    'Udp.InErrors': m.Udp.InErrors,
    'Udp.InCsumErrors': m.Udp.InCsumErrors,
    'Udp6.NoPorts': m.Udp6.NoPorts,
    'Udp6.InErrors': m.Udp6.InErrors,
    'Udp6.InCsumErrors': m.Udp6.InCsumErrors,
    'Tcp.InErrs': m.Tcp.InErrs,
    'Tcp.InCsumErrors': m.Tcp.InCsumErrors,
  };
  let errors = 0;
  for (const k in errs) errors += errs[k];
  let notify6 = m.Icmp6.InDestUnreachs + m.Icmp6.InPktTooBigs + m.Icmp6.InTimeExcds + m.Icmp6.InParmProblems;
  for (let t = 5; t < 128; t++) notify6 += m.Icmp6Msg.in[t];
  notify6 += m.Icmp6Msg.in[0];
  return {
    icmpErr: m.Icmp.InErrors + m.Icmp6.InErrors,
    icmpNotify: m.Icmp.InDestUnreachs + m.Icmp.InTimeExcds + m.Icmp.InParmProbs + notify6,
    drop,
    drops,
    errors,
    errs,
    ipIn: m.Ip.InReceives,
    ipOut: m.Ip.InDelivers + m.Ip.ReasmReqds,
    ip6In: m.Ip6.InReceives,
    ip6Out: m.Ip6.InDelivers + m.Ip6.ReasmReqds,
    deliv4: m.Ip.InDelivers,
    deliv6: m.Ip6.InDelivers,
    // What the transports count for a datagram they were handed (TCP's InSegs is shared by the families).
    l4v4: queued + m.Tcp.InSegs + m.Tcp.InErrs + m.Udp.InDatagrams + m.Udp.NoPorts + m.Udp.InErrors + m.Udp.IgnoredMulti + m.Icmp.InMsgs,
    l4v6: queued + m.Tcp.InSegs + m.Tcp.InErrs + m.Udp6.InDatagrams + m.Udp6.NoPorts + m.Udp6.InErrors + m.Udp6.IgnoredMulti + m.Icmp6.InMsgs,
  };
}

/** The reasons that moved between two snapshots, by name. */
export function reasonsMoved(a: Snap, b: Snap): string[] {
  const out: string[] = [];
  for (let i = 0; i < a.drops.length; i++) if (b.drops[i] > a.drops[i]) out.push(DROP_NAMES[i]);
  return out;
}

/**
 * The accounting laws for one fuzzed frame. `v6None`: the frame's IPv6
 * chain ends in "no next header" (delivered to nobody, as Linux counts it).
 */
export function checkAccounting(a: Snap, b: Snap, v6None: boolean): void {
  const dropped = b.drop > a.drop;
  if (b.errors > a.errors && !dropped) {
    const moved = Object.keys(b.errs).filter((k) => b.errs[k] > a.errs[k]);
    throw new FuzzFailure('uncounted-drop', `${moved.join(', ')} moved but no drop reason was counted`);
  }
  // An ICMP error about nobody we know is counted in InErrors and consumed (icmp_socket_deliver,
  // the transports' err handlers, as in Linux); any other ICMP InErrors is a drop.
  if (b.icmpErr > a.icmpErr && b.icmpNotify === a.icmpNotify && !dropped) throw new FuzzFailure('uncounted-drop', 'ICMP counted an error but no drop reason');
  if (b.ipIn > a.ipIn && b.ipOut === a.ipOut && !dropped) throw new FuzzFailure('lost-frame', 'an IPv4 datagram was neither delivered, queued for reassembly nor dropped with a reason');
  if (b.ip6In > a.ip6In && b.ip6Out === a.ip6Out && !dropped) throw new FuzzFailure('lost-frame', 'an IPv6 packet was neither delivered, queued for reassembly nor dropped with a reason');
  if (b.deliv4 > a.deliv4 && b.l4v4 === a.l4v4 && !dropped) throw new FuzzFailure('lost-frame', 'an IPv4 datagram handed to a transport was neither taken nor dropped with a reason');
  if (b.deliv6 > a.deliv6 && b.l4v6 === a.l4v6 && !dropped && !v6None) throw new FuzzFailure('lost-frame', 'an IPv6 packet handed to a transport was neither taken nor dropped with a reason');
}

/** Per socket: rcv_nxt as last seen, to catch it going back. */
const lastRcvNxt = new WeakMap<object, number>();

function fail(sk: { state: number }, what: string): never {
  throw new FuzzFailure('tcp-invariant', `${TCP_STATE_NAMES[sk.state] ?? sk.state}: ${what}`);
}

/** The TCP invariants of one full socket. */
export function checkTcpSock(sk: TcpSock): void {
  const st = sk.state;
  if (st === TCP_LISTEN) return;
  let rq = 0;
  for (const s of sk.receiveQueue) rq += s.len;
  let oq = 0;
  for (const s of sk.ofoQueue) oq += s.len;
  if (sk.rmemAlloc !== rq + oq) fail(sk, `sk_rmem_alloc ${sk.rmemAlloc}, the queues hold ${rq} + ${oq}`);
  let wq = 0;
  let n = 0;
  for (let s = sk.wqHead; s; s = s.next) {
    wq += s.truesize;
    if (++n > 1e6) fail(sk, 'the write queue loops');
  }
  if (sk.wmemQueued !== wq) fail(sk, `sk_wmem_queued ${sk.wmemQueued}, the write queue's skbs weigh ${wq}`);
  if (st === TCP_CLOSE) {
    if (sk.retransmitTimer.pending || sk.delackTimer.pending) fail(sk, `a closed socket with a timer pending (retransmit ${sk.retransmitTimer.pending}, delack ${sk.delackTimer.pending})`);
    return;
  }
  if (st === TCP_SYN_SENT) return;
  if (after(sk.sndUna, sk.sndNxt)) fail(sk, `snd_una ${sk.sndUna} after snd_nxt ${sk.sndNxt}`);
  if (after(sk.sndNxt, sk.writeSeq)) fail(sk, `snd_nxt ${sk.sndNxt} after write_seq ${sk.writeSeq}`);
  const prev = lastRcvNxt.get(sk);
  if (prev !== undefined && before(sk.rcvNxt, prev)) fail(sk, `rcv_nxt went back from ${prev} to ${sk.rcvNxt}`);
  lastRcvNxt.set(sk, sk.rcvNxt);
  if (sk.sackedOut + sk.lostOut > sk.packetsOut) fail(sk, `sacked_out ${sk.sackedOut} + lost_out ${sk.lostOut} > packets_out ${sk.packetsOut}`);
  if (sk.retransOut > sk.packetsOut) fail(sk, `retrans_out ${sk.retransOut} > packets_out ${sk.packetsOut}`);
  if (sk.packetsOut < 0 || sk.sackedOut < 0 || sk.lostOut < 0 || sk.retransOut < 0) fail(sk, `a negative count: packets ${sk.packetsOut} sacked ${sk.sackedOut} lost ${sk.lostOut} retrans ${sk.retransOut}`);
  if ((sk.packetsOut === 0) !== (sk.sndUna === sk.sndNxt)) fail(sk, `packets_out ${sk.packetsOut} with snd_una ${sk.sndUna}, snd_nxt ${sk.sndNxt}`);
  for (let i = 0; i < sk.ofoQueue.length; i++) {
    const s = sk.ofoQueue[i];
    if (!after(s.seq, sk.rcvNxt)) fail(sk, `an out-of-order segment at ${s.seq}, not after rcv_nxt ${sk.rcvNxt}`);
    if (i && before(s.seq, sk.ofoQueue[i - 1].seq)) fail(sk, 'the out-of-order queue is not in sequence order');
  }
  if (sk.packetsOut > 0 && !sk.retransmitTimer.pending) fail(sk, `${sk.packetsOut} segments in flight and no retransmit timer`);
  if ((sk.pending !== 0) !== sk.retransmitTimer.pending) fail(sk, `icsk_pending ${sk.pending} but the retransmit timer is ${sk.retransmitTimer.pending ? '' : 'not '}pending`);
}

/** Every socket the stack holds. */
export function checkTcp(s: Stack, extra: (TcpSock | null)[]): void {
  const seen = new Set<object>();
  for (const sk of s.tcp.hashinfo.sockets()) {
    seen.add(sk);
    if (sk.state === TCP_NEW_SYN_RECV) {
      if (!(sk as unknown as TcpRequestSock).timer.pending) fail(sk, 'a request sock without its timer');
    } else if (sk.state === TCP_TIME_WAIT) {
      if (!(sk as unknown as TcpTimewaitSock).timer.pending) fail(sk, 'a timewait sock without its timer');
    } else {
      checkTcpSock(sk as TcpSock);
    }
  }
  for (const sk of extra) if (sk && !seen.has(sk)) checkTcpSock(sk);
}

/**
 * Why Linux refuses this frame's IPv4 options before delivery, or null:
 * an option whose length does not fit (RFC 791), a record-route or
 * timestamp pointer below its first slot, two of the same, or a source
 * route (accept_source_route is 0 on a host). Written from the RFC's
 * rules, apart from the code under test.
 */
export function ipv4OptionsRefused(f: Buffer): string | null {
  if (f.length < 34 || f.readUInt16BE(12) !== 0x0800 || f[14] >> 4 !== 4) return null;
  const end = 14 + (f[14] & 15) * 4;
  if (end > f.length) return null;
  const seen = new Set<number>();
  for (let i = 34; i < end; ) {
    const t = f[i];
    if (t === 0) return null;
    if (t === 1) {
      i++;
      continue;
    }
    const len = end - i >= 2 ? f[i + 1] : 0;
    if (len < 2 || len > end - i) return `option ${t} at ${i - 14}: length ${len} in ${end - i} bytes`;
    const kind = t === 0x89 ? 0x83 : t;
    if (kind === 0x83 || kind === 7 || kind === 0x44) {
      if (seen.has(kind)) return `option ${t} twice`;
      seen.add(kind);
      if (len < (kind === 0x44 ? 4 : 3)) return `option ${t}: length ${len}`;
      if (f[i + 2] < (kind === 0x44 ? 5 : 4)) return `option ${t}: pointer ${f[i + 2]}`;
      if (kind === 0x83) return 'a source route';
    }
    i += len;
  }
  return null;
}
