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
  reset(): void {
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
