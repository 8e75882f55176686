/**
 * Delivery-rate estimation (net/ipv4/tcp_rate.c, draft-cheng-iccrg-
 * delivery-rate-estimation): each skb remembers how much had been delivered
 * when it was sent; the ACK that delivers it yields a sample of delivered
 * segments over max(send interval, ACK interval). TCP_INFO reports the last
 * sample; congestion control can use it.
 */
import { after } from '../../lib/seq.js';
import { TCPCB_RETRANS, TCPCB_SACKED_ACKED, type TcpSkb, type TcpSock } from './tcp_sock.js';
import { RateSample } from './tcp_rate_sample.js';

export { RateSample };

/**
 * tcp_rate_skb_sent: stamp the skb with the delivery state at its sending
 * (`sentAt`, its departure time). A flight that starts from nothing starts
 * the intervals here.
 */
export function tcpRateSkbSent(sk: TcpSock, skb: TcpSkb, sentAt: number): void {
  if (!sk.packetsOut) {
    sk.firstTxMstamp = sentAt;
    sk.deliveredMstamp = sentAt;
  }
  skb.txFirstMstamp = sk.firstTxMstamp;
  skb.txDeliveredMstamp = sk.deliveredMstamp;
  skb.txDelivered = sk.delivered;
  skb.txDeliveredCe = sk.deliveredCe;
  skb.txIsAppLimited = sk.appLimited !== 0;
}

/**
 * tcp_rate_skb_delivered: of the skbs one ACK delivers, the one sent last
 * (by send time, then by sequence: tcp_skb_sent_after) defines the sample;
 * its send phase runs from the first skb of its flight to it.
 */
export function tcpRateSkbDelivered(sk: TcpSock, skb: TcpSkb, rs: RateSample): void {
  if (!skb.txDeliveredMstamp) return;
  const tx = skb.sentAt;
  if (!rs.priorDelivered || tx > sk.firstTxMstamp || (tx === sk.firstTxMstamp && after(skb.endSeq, rs.lastEndSeq))) {
    rs.priorDeliveredCe = skb.txDeliveredCe;
    rs.priorDelivered = skb.txDelivered;
    rs.priorMstamp = skb.txDeliveredMstamp;
    rs.isAppLimited = skb.txIsAppLimited;
    rs.isRetrans = (skb.sacked & TCPCB_RETRANS) !== 0;
    rs.lastEndSeq = skb.endSeq;
    sk.firstTxMstamp = tx;
    rs.sendIntervalUs = (tx - skb.txFirstMstamp) * 1000;
  }
  // A SACKed skb must not give a second sample when it is cumulatively acked later.
  if (skb.sacked & TCPCB_SACKED_ACKED) skb.txDeliveredMstamp = 0;
}

/**
 * tcp_rate_gen: close the sample of one ACK that (S)ACKed `delivered` and
 * marked `lost` segments. The interval is the longer of the send and ACK
 * phases; one shorter than the min RTT (ACK compression), no timing, or a
 * SACK reneging gives no sample. The last sample not app-limited, or an
 * app-limited one faster than it, is what TCP_INFO reports.
 */
export function tcpRateGen(sk: TcpSock, delivered: number, lost: number, rs: RateSample, now: number): void {
  // The app-limited bubble is over once what was in flight then is delivered.
  if (sk.appLimited && after(sk.delivered, sk.appLimited)) sk.appLimited = 0;
  if (delivered) sk.deliveredMstamp = now;
  rs.ackedSacked = delivered;
  rs.losses = lost;
  if (!rs.priorMstamp || sk.isSackReneg) {
    rs.delivered = -1;
    rs.intervalUs = -1;
    return;
  }
  rs.delivered = sk.delivered - rs.priorDelivered;
  rs.deliveredCe = sk.deliveredCe - rs.priorDeliveredCe;
  const sndUs = rs.sendIntervalUs;
  const ackUs = (now - rs.priorMstamp) * 1000;
  rs.intervalUs = Math.max(sndUs, ackUs);
  rs.rcvIntervalUs = ackUs;
  // tcp_min_rtt is ~0U before any RTT sample: no sample either.
  if (rs.intervalUs < (sk.minRttUs || 0xffffffff) || rs.intervalUs <= 0) {
    rs.intervalUs = -1;
    return;
  }
  if (!rs.isAppLimited || rs.delivered * sk.rateIntervalUs >= sk.rateDelivered * rs.intervalUs) {
    sk.rateDelivered = rs.delivered;
    sk.rateIntervalUs = rs.intervalUs;
    sk.rateAppLimited = rs.isAppLimited;
  }
}

/**
 * tcp_rate_check_app_limited (at each send call): less than a segment left
 * to send, nothing queued below TCP, room in the cwnd and no lost segment
 * waiting: the application is the limit. Samples of what is in flight now
 * are marked app-limited until it is delivered.
 */
export function tcpRateCheckAppLimited(sk: TcpSock, inFlight: number): void {
  if (((sk.writeSeq - sk.sndNxt) | 0) < sk.mssCache && inFlight < sk.sndCwnd && sk.lostOut <= sk.retransOut) {
    sk.appLimited = (sk.delivered + inFlight) >>> 0 || 1;
  }
}
