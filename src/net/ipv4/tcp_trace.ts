/**
 * TCP's tracepoints (include/trace/events/tcp.h, sock:inet_sock_set_state,
 * skb:kfree_skb): the places `tapstack trace` watches. Each is one test of
 * `tcp.trace` against null where the event happens, so with nobody tracing
 * the stack pays a load and a branch; whoever traces (src/api/trace.ts)
 * installs a TcpTracer and reads what it needs from the socket itself.
 * docs/trace.md gives the records the daemon makes of them.
 */
import type { SkBuff } from '../core/skbuff.js';
import type { DropReason, Mibs } from '../core/snmp.js';
import type { TcpOptionsReceived } from '../../wire/tcp.js';
import type { TcpSock } from './tcp_sock.js';

/** Why a segment is sent again (the tcp_retransmit_skb tracepoint's reason, as its callers know it). */
export const TCP_RETRANS = {
  /** The retransmission timer, and the rest of the queue resent in Loss state after it. */
  RTO: 0,
  /** A tail loss probe (tcp_send_loss_probe). */
  TLP: 1,
  /** Marked lost by RACK (tcp_rack_mark_lost), on an ACK or the reordering timer. */
  RACK: 2,
  /** Fast retransmit without RACK: the duplicate-ACK threshold, NewReno. */
  FAST: 3,
  /** Resent smaller after the path MTU dropped (tcp_simple_retransmit). */
  MTU: 4,
  /** A SYN or SYN-ACK sent again by its timer. */
  SYN: 5,
} as const;
export const TCP_RETRANS_NAMES = Object.keys(TCP_RETRANS);

/** What watches the tracepoints; every method runs synchronously at the event and must not change the socket. */
export interface TcpTracer {
  /** sock:inet_sock_set_state (sk.state is still the old one). */
  setState(sk: TcpSock, newState: number): void;
  /** A segment left (tcpTransmit): one record for a TSO super-segment. */
  xmit(sk: TcpSock, seq: number, len: number, flags: number, ack: number, win: number, sacks: Uint32Array | null, numSacks: number): void;
  /** A segment for the socket arrived (tcp_v4_do_rcv / tcp_v6_do_rcv), its control block filled. */
  rcv(sk: TcpSock, skb: SkBuff): void;
  /** tcp:tcp_retransmit_skb, after the segment went out again. */
  retransmit(sk: TcpSock, seq: number, endSeq: number, reason: number): void;
  /** tcp:tcp_probe: after an ACK was processed (rttUs: its RTT sample, -1 for none). */
  probe(sk: TcpSock, rttUs: number): void;
  /** An ACK's SACK blocks, before they are tagged (dsack: the first one reports a duplicate). */
  sack(sk: TcpSock, opt: TcpOptionsReceived, dsack: boolean): void;
  /** The peer's window changed (tcp_ack_update_window). */
  window(sk: TcpSock, oldWnd: number, newWnd: number): void;
  /** skb:kfree_skb for a segment the socket took and dropped. */
  drop(sk: TcpSock, skb: SkBuff, reason: DropReason): void;
  /** The send buffer woke a writer (tcp_check_space past sk_stream_min_wspace). */
  wspace(sk: TcpSock): void;
}

/** What tcp_drop_reason needs of the stack's TCP (TcpProto, named by its parts: tcp_proto.ts imports this file). */
interface TcpDropCtx {
  readonly mibs: Mibs;
  readonly trace: TcpTracer | null;
}

/** tcp_drop_reason: count the drop by its reason, and tell a tracer. */
export function tcpDropReason(tcp: TcpDropCtx, sk: TcpSock, skb: SkBuff, reason: DropReason): void {
  tcp.mibs.Drop.counts[reason]++;
  const tr = tcp.trace;
  if (tr !== null) tr.drop(sk, skb, reason);
}
