/**
 * The RTT estimator (net/ipv4/tcp_input.c's tcp_rtt_estimator and
 * tcp_set_rto): srtt and the mdev-based rttvar in microseconds, and the RTO
 * from them. Kept apart from tcp_input.ts, which re-exports it.
 */
import { after } from '../../lib/seq.js';
import type { TcpProto } from './tcp_proto.js';
import { TCP_RTO_MAX, TCP_RTO_MIN, type TcpSock } from './tcp_sock.js';

/** tcp_rtt_estimator + tcp_set_rto: Linux's mdev-based RFC 6298. */
export function tcpRttEstimator(tcp: TcpProto, sk: TcpSock, mrttUs: number): void {
  let m = Math.max(1, Math.round(mrttUs));
  if (!sk.minRttUs || m < sk.minRttUs) sk.minRttUs = m;
  const rtoMinUs = TCP_RTO_MIN * 1000;
  let srtt = sk.srttUs;
  if (srtt !== 0) {
    m -= srtt >> 3;
    srtt += m;
    if (m < 0) {
      m = -m;
      m -= sk.mdevUs >> 2;
      if (m > 0) m >>= 3;
    } else {
      m -= sk.mdevUs >> 2;
    }
    sk.mdevUs += m;
    if (sk.mdevUs > sk.mdevMaxUs) {
      sk.mdevMaxUs = sk.mdevUs;
      if (sk.mdevMaxUs > sk.rttvarUs) sk.rttvarUs = sk.mdevMaxUs;
    }
    if (after(sk.sndUna, sk.rttSeq)) {
      if (sk.mdevMaxUs < sk.rttvarUs) sk.rttvarUs -= (sk.rttvarUs - sk.mdevMaxUs) >> 2;
      sk.rttSeq = sk.sndNxt;
      sk.mdevMaxUs = rtoMinUs;
    }
  } else {
    srtt = m << 3;
    sk.mdevUs = m << 1;
    sk.rttvarUs = Math.max(sk.mdevUs, rtoMinUs);
    sk.mdevMaxUs = sk.rttvarUs;
    sk.rttSeq = sk.sndNxt;
  }
  sk.srttUs = Math.max(1, srtt);
  tcpSetRto(sk);
  void tcp;
}

/** __tcp_set_rto + tcp_bound_rto: srtt + rttvar (rttvar >= rto_min), at most 120 s. */
export function tcpSetRto(sk: TcpSock): void {
  const rtoUs = (sk.srttUs >> 3) + sk.rttvarUs;
  sk.rto = Math.min(Math.ceil(rtoUs / 1000), TCP_RTO_MAX);
}
