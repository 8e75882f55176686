/**
 * What TCP keeps per received segment, in the skb that carries it
 * (TCP_SKB_CB, include/net/tcp.h): the header fields tcp_v4_rcv /
 * tcp_v6_rcv read once, the options tcp_parse_options found, and the
 * working state tcp_ack builds while it processes the segment (its FLAG_*
 * word, struct tcp_sacktag_state, struct rate_sample), which Linux keeps
 * on the C stack. It is made once per pooled skb and reused, so a segment
 * costs no allocation, and nothing about one segment lives anywhere a
 * second segment could see it.
 */
import type { SkBuff } from '../core/skbuff.js';
import { seqAdd } from '../../lib/seq.js';
import {
  TCPHDR_FIN,
  TCPHDR_SYN,
  TcpOptionsReceived,
  tcpAckSeq,
  tcpDest,
  tcpFlags,
  tcpParseOptions,
  tcpSeq,
  tcpSource,
  tcpWindow,
} from '../../wire/tcp.js';
import { RateSample } from './tcp_rate.js';
import type { AckSample } from './tcp_sock.js';

// FLAG_* bits: what an ACK did (tcp_input.c).
export const FLAG_DATA = 0x01;
export const FLAG_WIN_UPDATE = 0x02;
export const FLAG_DATA_ACKED = 0x04;
export const FLAG_RETRANS_DATA_ACKED = 0x08;
export const FLAG_SYN_ACKED = 0x10;
export const FLAG_DATA_SACKED = 0x20;
export const FLAG_ECE = 0x40;
export const FLAG_LOST_RETRANS = 0x80;
export const FLAG_ORIG_SACK_ACKED = 0x200;
export const FLAG_SND_UNA_ADVANCED = 0x400;
export const FLAG_DSACKING_ACK = 0x800;
export const FLAG_SET_XMIT_TIMER = 0x1000;
export const FLAG_SACK_RENEGING = 0x2000;
export const FLAG_UPDATE_TS_RECENT = 0x4000;
export const FLAG_NO_CHALLENGE_ACK = 0x8000;
export const FLAG_DSACK_TLP = 0x20000;
export const FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
export const FLAG_CA_ALERT = FLAG_DATA_SACKED | FLAG_ECE | FLAG_DSACKING_ACK;
export const FLAG_FORWARD_PROGRESS = FLAG_ACKED | FLAG_DATA_SACKED;
export const FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;

/** struct tcp_sacktag_state: the SACK walk's running state. */
export class SacktagState {
  /** The lowest sequence newly SACKed or acked that was never retransmitted (for reordering). */
  reord = 0;
  flag = 0;
  /** Send times of the first and last never-retransmitted segments newly SACKed (the SACK RTT). */
  firstSackt = 0;
  lastSackt = 0;
  reset(sndNxt: number): void {
    this.reord = sndNxt;
    this.flag = 0;
    this.firstSackt = 0;
    this.lastSackt = 0;
  }
}

/** The working state of tcp_ack for one ACK. */
export class TcpAckState {
  /** FLAG_*: what the ACK did so far (tcp_ack's flag; tcp_fastretrans_alert's *ack_flag). */
  flag = 0;
  /** snd_una before the ACK. */
  priorSndUna = 0;
  /** tcp_fastretrans_alert's do_lost: mark more lost (RFC 6675's rule without RACK). */
  doLost = false;
  readonly sack = new SacktagState();
  readonly rs = new RateSample();
  /** What tcp_clean_rtx_queue tells the algorithm's pkts_acked. */
  readonly sample: AckSample = { pktsAcked: 0, rttUs: -1, inFlight: 0 };
  /** The options of the segment being processed (its TS echo decides undo and spurious retransmits). */
  constructor(readonly opt: TcpOptionsReceived) {}
}

/** TCP_SKB_CB(skb) for a received segment. */
export class TcpSkbCb {
  seq = 0;
  /** seq + payload + SYN + FIN. */
  endSeq = 0;
  ackSeq = 0;
  tcpFlags = 0;
  /** The window field, unscaled. */
  window = 0;
  sport = 0;
  dport = 0;
  /** TCP header length. */
  doff = 0;
  /** Payload: skb.buf[dataOff, dataOff + dataLen). */
  dataOff = 0;
  dataLen = 0;
  /** The IP TOS / traffic class byte (ip_dsfield). */
  tos = 0;
  /** Came over IPv6: saddr6/daddr6 hold its addresses (saddr/daddr are unused then). */
  ipv6 = false;
  saddr = 0;
  daddr = 0;
  /** Copied, not viewed: a subarray would be an object per segment. */
  readonly saddr6 = new Uint8Array(16);
  readonly daddr6 = new Uint8Array(16);
  readonly opt = new TcpOptionsReceived();
  readonly ack = new TcpAckState(this.opt);
}

/** TCP_SKB_CB: the skb's TCP control block, made on the skb's first TCP segment. */
export function tcpSkbCb(skb: SkBuff): TcpSkbCb {
  return (skb.cb ??= new TcpSkbCb()) as TcpSkbCb;
}

/** tcp_parse_options on a received segment, into its control block (estab: the connection is synchronized). */
export function tcpParseSkbOptions(skb: SkBuff, estab: boolean): TcpOptionsReceived {
  const tcb = tcpSkbCb(skb);
  tcpParseOptions(skb.buf, skb.transportHeader, tcb.doff, tcb.tcpFlags, estab, tcb.opt);
  return tcb.opt;
}

/**
 * What tcp_v4_fill_cb and tcp_v6_fill_cb share: the header fields of the
 * segment at skb.data (its header `doff` bytes long), read once.
 */
export function tcpFillCb(skb: SkBuff, doff: number): TcpSkbCb {
  const tcb = tcpSkbCb(skb);
  const b = skb.buf;
  const th = skb.data;
  const flags = tcpFlags(b, th);
  tcb.tcpFlags = flags;
  tcb.seq = tcpSeq(b, th);
  tcb.ackSeq = tcpAckSeq(b, th);
  tcb.window = tcpWindow(b, th);
  tcb.sport = tcpSource(b, th);
  tcb.dport = tcpDest(b, th);
  tcb.doff = doff;
  tcb.dataOff = th + doff;
  tcb.dataLen = skb.len - doff;
  tcb.endSeq = seqAdd(tcb.seq, tcb.dataLen + (flags & TCPHDR_SYN ? 1 : 0) + (flags & TCPHDR_FIN ? 1 : 0));
  return tcb;
}
