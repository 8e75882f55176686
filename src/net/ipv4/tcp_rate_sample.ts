/**
 * struct rate_sample (include/net/tcp.h): what one ACK measured, for
 * tcp_rate.ts to fill and congestion control (congControl) to read. Apart
 * from tcp_rate.ts so the congestion-ops interface in tcp_sock.ts can name
 * it without a circle of imports.
 */
/** The sample being built by one ACK (struct rate_sample), one per stack, reused. */
export class RateSample {
  priorMstamp = 0;
  priorDelivered = 0;
  sendIntervalUs = 0;
  isRetrans = false;
  delivered = 0;
  intervalUs = -1;
  /** RTT of the last (S)ACKed segment, us, -1 if none (rs->rtt_us). */
  rttUs = -1;
  /** Packets in flight before the ACK. */
  priorInFlight = 0;
  /** Segments the ACK (S)ACKed, and segments it marked lost (rs->acked_sacked, rs->losses). */
  ackedSacked = 0;
  losses = 0;
  /** CE-marked deliveries over the interval, and tp->delivered_ce when the sampled skb was sent. */
  deliveredCe = 0;
  priorDeliveredCe = 0;
  /** The sampled skb was sent while the application was the limit (rs->is_app_limited). */
  isAppLimited = false;
  /** The ACK may have been delayed (rs->is_ack_delayed); this stack does not tell (always false). */
  isAckDelayed = false;
  /** end_seq of the sampled skb (ties of send time go to the higher one). */
  lastEndSeq = 0;
  /** The ACK phase of the interval, us (rs->rcv_interval_us). */
  rcvIntervalUs = 0;
  reset(): void {
    this.deliveredCe = 0;
    this.priorDeliveredCe = 0;
    this.isAppLimited = false;
    this.lastEndSeq = 0;
    this.rcvIntervalUs = 0;
    this.ackedSacked = 0;
    this.losses = 0;
    this.rttUs = -1;
    this.priorInFlight = 0;
    this.priorMstamp = 0;
    this.priorDelivered = 0;
    this.sendIntervalUs = 0;
    this.isRetrans = false;
    this.delivered = 0;
    this.intervalUs = -1;
  }
}
