/**
 * Delivery-rate estimation (net/ipv4/tcp_rate.c, draft-cheng-iccrg-
 * delivery-rate-estimation): each skb remembers how much had been delivered
 * when it was sent; the ACK that delivers it yields a sample of delivered
 * segments over max(send interval, ACK interval). TCP_INFO reports the last
 * sample; congestion control can use it.
 */
import { TCPCB_EVER_RETRANS, TCPCB_SACKED_ACKED, type TcpSkb, type TcpSock } from './tcp_sock.js';
import { RateSample } from './tcp_rate_sample.js';

export { RateSample };

/** tcp_rate_skb_sent. */
export function tcpRateSkbSent(sk: TcpSock, skb: TcpSkb, now: number): void {
  if (!sk.packetsOut) {
    // A new flight starts: the intervals restart here.
    sk.firstTxMstamp = now;
    sk.deliveredMstamp = now;
  }
  skb.txFirstMstamp = sk.firstTxMstamp;
  skb.txDeliveredMstamp = sk.deliveredMstamp;
  skb.txDelivered = sk.delivered;
}

/** tcp_rate_skb_delivered: the most recently sent skb an ACK delivers defines the sample. */
export function tcpRateSkbDelivered(sk: TcpSock, skb: TcpSkb, rs: RateSample): void {
  if (!skb.txDeliveredMstamp) return;
  if (!rs.priorDelivered && !rs.priorMstamp || skb.txDelivered >= rs.priorDelivered) {
    rs.priorDelivered = skb.txDelivered;
    rs.priorMstamp = skb.txDeliveredMstamp;
    rs.isRetrans = (skb.sacked & TCPCB_EVER_RETRANS) !== 0;
    rs.sendIntervalUs = (skb.sentAt - skb.txFirstMstamp) * 1000;
    sk.firstTxMstamp = skb.sentAt;
  }
  // A SACKed skb must not give a second sample when it is cumulatively acked later.
  if (skb.sacked & TCPCB_SACKED_ACKED) skb.txDeliveredMstamp = 0;
}

/** tcp_rate_gen: close the sample; keep it if valid (and not app-limited below the last). */
export function tcpRateGen(sk: TcpSock, rs: RateSample, now: number, minRttUs: number): void {
  sk.deliveredMstamp = now;
  if (!rs.priorMstamp) {
    rs.intervalUs = -1;
    return;
  }
  rs.delivered = sk.delivered - rs.priorDelivered;
  const ackIntervalUs = (now - rs.priorMstamp) * 1000;
  rs.intervalUs = Math.max(rs.sendIntervalUs, ackIntervalUs);
  // An interval shorter than the min RTT is an artefact of ACK compression: no sample.
  if (rs.intervalUs < minRttUs || rs.intervalUs <= 0) {
    rs.intervalUs = -1;
    return;
  }
  if (!sk.rateAppLimited || rs.delivered * sk.rateIntervalUs >= sk.rateDelivered * rs.intervalUs) {
    sk.rateDelivered = rs.delivered;
    sk.rateIntervalUs = rs.intervalUs;
  }
}
