/**
 * SO_TIMESTAMPING on TCP: which skb carries a send's stamp request
 * (tcp_tx_timestamp), how the request follows a split (tcp_fragment_tstamp),
 * the stamps at transmit (__dev_queue_xmit's SCM_TSTAMP_SCHED, the
 * driver's skb_tx_timestamp for SCM_TSTAMP_SND) and at the ACK
 * (tcp_ack_tstamp). The stamps go on the error queue (core/errqueue.ts).
 * The same points carry the skb's hold on a MSG_ZEROCOPY notification
 * (tcp_zerocopy.ts): shared by a split, copied by the device, given back
 * when the skb is freed.
 */
import { before } from '../../lib/seq.js';
import {
  SCM_TSTAMP_ACK,
  SCM_TSTAMP_SCHED,
  SCM_TSTAMP_SND,
  SOF_TIMESTAMPING_TX_ACK,
  SOF_TIMESTAMPING_TX_SCHED,
  SOF_TIMESTAMPING_TX_SOFTWARE,
} from '../../uapi.js';
import { skbTstampTx } from '../core/errqueue.js';
import { skbZcopyClear, skbZcopySet } from './tcp_zerocopy.js';
import type { TcpProto } from './tcp_proto.js';
import type { TcpSkb, TcpSock } from './tcp_sock.js';

/** skb_shinfo tx_flags: SKBTX_SW_TSTAMP, SKBTX_SCHED_TSTAMP. */
export const SKBTX_SW_TSTAMP = 1 << 1;
export const SKBTX_SCHED_TSTAMP = 1 << 6;
/** SOF_TIMESTAMPING_TX_RECORD_MASK (the software and scheduler ones this stack can take). */
const TX_RECORD_MASK = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_ACK;

/**
 * tcp_tx_timestamp: a send that took data asks for its stamps on the last
 * skb not yet sent (sock_tx_timestamp's SKBTX_* flags, txstamp_ack for
 * TX_ACK), keyed by the send's last byte. Nothing when every skb already left.
 */
export function tcpTxTimestamp(sk: TcpSock): void {
  const tsflags = sk.tsflags;
  const skb = sk.sendHead ? sk.wqTail : null;
  if (!tsflags || !skb) return;
  if (tsflags & SOF_TIMESTAMPING_TX_SOFTWARE) skb.txFlags |= SKBTX_SW_TSTAMP;
  if (tsflags & SOF_TIMESTAMPING_TX_SCHED) skb.txFlags |= SKBTX_SCHED_TSTAMP;
  if (tsflags & SOF_TIMESTAMPING_TX_ACK) skb.txstampAck = true;
  if (tsflags & TX_RECORD_MASK) skb.tskey = (skb.seq + skb.len - 1) >>> 0;
}

/** What the two parts of a split skb share (skb_split's skb_zerocopy_clone, then tcp_fragment_tstamp). */
export function tcpFragmentShared(skb: TcpSkb, rest: TcpSkb): void {
  if (skb.uarg !== null) skbZcopySet(rest, skb.uarg);
  tcpFragmentTstamp(skb, rest);
}

/** tcp_fragment_tstamp: a split moves the request to the part that holds its key. */
export function tcpFragmentTstamp(skb: TcpSkb, rest: TcpSkb): void {
  if (!(skb.txFlags || skb.txstampAck) || before(skb.tskey, rest.seq)) return;
  rest.txFlags = skb.txFlags;
  rest.tskey = skb.tskey;
  rest.txstampAck = skb.txstampAck;
  skb.txFlags = 0;
  skb.txstampAck = false;
}

/**
 * A transmission of [seq, seq+len) of `skb` reached the device. The device
 * copies a zerocopy skb's frags (tun's skb_orphan_frags_rx): its
 * notification will say SO_EE_CODE_ZEROCOPY_COPIED. The transmission that
 * holds the stamp key gets SCM_TSTAMP_SCHED (dev_queue_xmit) and
 * SCM_TSTAMP_SND (the driver's skb_tx_timestamp): the stack's output path
 * runs from tcp_transmit_skb to the driver in one call, so both are this
 * moment (the request rides on the clone).
 */
export function tcpSkbTransmitted(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, seq: number, len: number): void {
  if (skb.uarg !== null) skb.uarg.zerocopy = false;
  if (!skb.txFlags || before(skb.tskey, seq) || !before(skb.tskey, (seq + len) >>> 0)) return;
  const wall = tcp.time.clock.wall();
  const data = skb.buf.subarray(skb.off, skb.off + skb.len);
  if (skb.txFlags & SKBTX_SCHED_TSTAMP) skbTstampTx(sk, skb.tskey, SCM_TSTAMP_SCHED, wall, data);
  if (skb.txFlags & SKBTX_SW_TSTAMP) skbTstampTx(sk, skb.tskey, SCM_TSTAMP_SND, wall, data);
}

/**
 * What an acknowledged skb gives back: its ACK stamp (tcp_ack_tstamp),
 * and once it is wholly acked and freed, its hold on a zerocopy
 * notification (skb_zcopy_clear).
 */
export function tcpSkbAcked(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, priorSndUna: number, ack: number, fully: boolean): void {
  if (skb.txstampAck) tcpAckTstamp(tcp, sk, skb, priorSndUna, ack);
  if (fully) skbZcopyClear(skb);
}

/** tcp_ack_tstamp: the ACK covered the key of an skb that asked for TX_ACK (prior_snd_una <= key < snd_una). */
export function tcpAckTstamp(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, priorSndUna: number, ack: number): void {
  if (!skb.txstampAck || before(skb.tskey, priorSndUna) || !before(skb.tskey, ack)) return;
  skbTstampTx(sk, skb.tskey, SCM_TSTAMP_ACK, tcp.time.clock.wall(), skb.buf.subarray(skb.off, skb.off + skb.len));
}
