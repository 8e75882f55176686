/**
 * What tcp_rcv_synsent_state_process does for Fast Open once the SYN-ACK
 * established the connection (net/ipv4/tcp_input.c): tcp_rcv_fastopen_synack
 * (tcp_fastopen_active.ts) with the retransmission of the SYN's data the
 * SYN-ACK left unacknowledged, and the sk_write_pending rule: a writer
 * blocked in the connect with data still to send (a blocking Fast Open
 * send) gets its data out carrying the ACK, so the ACK waits.
 */
import { after, before, seqAdd } from '../../lib/seq.js';
import { TCPHDR_SYN, type TcpOptionsReceived } from '../../wire/tcp.js';
import type { SkBuff } from '../core/skbuff.js';
import { tcpSkbCb } from './tcp_skb_cb.js';
import { skMemUncharge } from '../core/sock.js';
import { tcpRcvFastopenSynack } from './tcp_fastopen_active.js';
import { tcpPushPendingFrames } from './tcp_output.js';
import type { TcpProto } from './tcp_proto.js';
import { tcpDataQueue, tcpEnterQuickackMode } from './tcp_rcv.js';
import { tcpMarkSkbLost, tcpNonCongestionLossRetransmit } from './tcp_recovery.js';
import { TCP_RETRANS } from './tcp_trace.js';
import { ICSK_ACK_SCHED, ICSK_ACK_TIMER, TCP_DELACK_MAX, TCP_MAX_QUICKACKS, type TcpSkb, type TcpSock } from './tcp_sock.js';

/**
 * The SYN's data the SYN-ACK did not cover is lost (trimmed to snd_una
 * first, as __tcp_retransmit_skb trims) and goes again at once without a
 * congestion response (tcp_mark_skb_lost, tcp_non_congestion_loss_retransmit),
 * then what waits to be sent (tcp_data_snd_check).
 */
export function tcpFastopenLossRetransmit(tcp: TcpProto, sk: TcpSock, data: TcpSkb): void {
  if (before(data.seq, sk.sndUna) && after(data.endSeq, sk.sndUna)) {
    const d = (sk.sndUna - data.seq) >>> 0;
    data.off += d;
    data.cap -= d;
    data.len -= d;
    data.seq = sk.sndUna;
    data.truesize -= d;
    sk.wmemQueued -= d;
    skMemUncharge(sk, d);
  }
  for (let skb: TcpSkb | null = data; skb && skb !== sk.sendHead; skb = skb.next) tcpMarkSkbLost(tcp, sk, skb);
  tcpNonCongestionLossRetransmit(tcp, sk, TCP_RETRANS.SYN);
  tcpPushPendingFrames(tcp, sk);
}

/**
 * tcp_fastopen_add_skb: a SYN-ACK's data (a server that answers in its
 * SYN-ACK) is received as the first in-order data, its FIN too; SYN data
 * counts as acknowledged (TCPI_OPT_SYN_DATA).
 */
function tcpFastopenAddSkb(tcp: TcpProto, sk: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  if (tcb.endSeq === sk.rcvNxt) return;
  tcb.seq = seqAdd(tcb.seq, 1);
  tcb.tcpFlags &= ~TCPHDR_SYN;
  tcpDataQueue(tcp, sk, skb);
  sk.synDataAcked = true;
}

/**
 * After tcp_finish_connect: Fast Open's SYN-ACK processing, then the
 * write-pending delayed ACK (inet_csk_schedule_ack, quick-ack mode, the
 * delayed-ACK timer at TCP_DELACK_MAX). True when the caller must not
 * send its ACK now.
 */
export function tcpSynsentFastopen(tcp: TcpProto, sk: TcpSock, skb: SkBuff, o: TcpOptionsReceived): boolean {
  if (sk.synFastopen || sk.synData) {
    if (tcpRcvFastopenSynack(tcp, sk, o, tcpFastopenLossRetransmit)) return true;
    tcpFastopenAddSkb(tcp, sk, skb);
  }
  if (!sk.writePending) return false;
  sk.ackPending |= ICSK_ACK_SCHED | ICSK_ACK_TIMER;
  tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
  sk.ackTimeout = tcp.now() + TCP_DELACK_MAX;
  tcp.time.timers.mod(sk.delackTimer, sk.ackTimeout);
  return true;
}
