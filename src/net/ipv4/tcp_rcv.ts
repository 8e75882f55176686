/**
 * The receive half of TCP input (net/ipv4/tcp_input.c's tcp_data_queue and
 * friends): the quick-ack and delayed-ACK decisions, receive-MSS
 * estimation, in-order queueing and the out-of-order queue, the SACK
 * blocks we advertise (with D-SACK), FIN, and what follows a received
 * segment (ACK now or later, write space, sending what the ACK allowed).
 * tcp_input.ts keeps validation, ACK processing, recovery and the state
 * machine, and calls in here.
 */
import { after, before, seqAdd } from '../../lib/seq.js';
import { TCPHDR_CWR, TCPHDR_FIN, TCPHDR_SYN } from '../../wire/tcp.js';
import type { TcpProto } from './tcp_proto.js';
import type { SkBuff } from '../core/skbuff.js';
import { tcpSkbCb } from './tcp_skb_cb.js';
import {
  ICSK_ACK_NOW,
  ICSK_ACK_PUSHED,
  ICSK_ACK_PUSHED2,
  ICSK_ACK_SCHED,
  skStreamIsWriteable,
  TCP_ATO_MIN,
  TCP_ECN_DEMAND_CWR,
  TCP_ECN_OK,
  TCP_ECN_SEEN,
  TCP_INIT_CWND,
  TCP_MAX_QUICKACKS,
  type TcpSock,
} from './tcp_sock.js';
import {
  tcpAdjustRcvSsthresh,
  tcpCheckProbeTimer,
  tcpCurrentMss,
  tcpReceiveWindow,
  tcpSelectWindowRaw,
  tcpSendAck,
  tcpSendDelayedAck,
  tcpSpace,
  tcpWriteXmit,
} from './tcp_output.js';
import { RCV_PAGE_SIZE, RCV_REF_MIN, RCV_SEG_OVERHEAD, RcvSeg, rcvQueuePurge, rcvSegCharge, rcvSegCopy, rcvSegFree } from './tcp_rcvq.js';
import { tcpSetState, tcpTimeWait, tcpWake } from './tcp.js';
import { TCP_CHRONO_SNDBUF_LIMITED, tcpChronoStop } from './tcp_chrono.js';

import {
  RCV_SHUTDOWN,
  SHUTDOWN_MASK,
  SK_MEM_RECV,
  skForcedMemSchedule,
  skMemoryAboveMin,
  skMemReclaim,
  skMemSchedule,
  skUnderMemoryPressure,
  SOCK_RCVBUF_LOCK,
  SOCK_SNDBUF_LOCK,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_CLOSING,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT1,
  TCP_FIN_WAIT2,
  TCP_LAST_ACK,
  TCP_SYN_RECV,
  TCP_TIME_WAIT,
} from '../core/sock.js';
import { POLLHUP, POLLIN, POLLOUT, POLLRDHUP } from '../../uapi.js';
import { INET_ECN_CE, INET_ECN_MASK } from '../../wire/ipv4.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { tcpDropReason } from './tcp_trace.js';

/** tcp_incr_quickack. */
function tcpIncrQuickack(sk: TcpSock, max: number): void {
  let q = Math.floor(sk.rcvWnd / (2 * sk.rcvMss));
  if (q === 0) q = 2;
  q = Math.min(q, max);
  if (q > sk.ackQuick) sk.ackQuick = q;
}

/** tcp_enter_quickack_mode. */
export function tcpEnterQuickackMode(sk: TcpSock, max: number): void {
  tcpIncrQuickack(sk, max);
  sk.ackPingpong = 0;
  sk.ato = TCP_ATO_MIN;
}

function tcpInQuickackMode(tcp: TcpProto, sk: TcpSock): boolean {
  return sk.ackQuick > 0 && sk.ackPingpong < tcp.sysctl.tcp_pingpong_thresh;
}

/** tcp_measure_rcv_mss: the biggest segment the peer sends, for ACK and window decisions. */
function tcpMeasureRcvMss(sk: TcpSock, len: number): void {
  const lss = sk.rcvMss;
  if (len >= lss) {
    sk.rcvMss = Math.min(len, sk.advmss);
  } else if (len >= 536) {
    // Smaller but plausible: keep as is. (Linux also tracks last_seg_size for PUSHED2.)
  } else {
    sk.ackPending |= ICSK_ACK_PUSHED;
  }
  if (len < lss && sk.ackPending & ICSK_ACK_PUSHED) sk.ackPending |= ICSK_ACK_PUSHED2;
}

/** tcp_event_data_recv: the delayed-ACK engine learns the arrival rhythm. */
function tcpEventDataRecv(tcp: TcpProto, sk: TcpSock, skb: SkBuff, len: number): void {
  sk.ackPending |= ICSK_ACK_SCHED;
  // A GRO super-frame counts as its segment size (skb_shinfo(skb)->gso_size ?: skb->len).
  tcpMeasureRcvMss(sk, skb.gsoSize || len);
  const now = tcp.now();
  if (!sk.ato) {
    // The first data: quick ACKs while the sender is in slow start.
    tcpIncrQuickack(sk, TCP_MAX_QUICKACKS);
    sk.ato = TCP_ATO_MIN;
  } else {
    const m = now - sk.lrcvtime;
    if (m <= TCP_ATO_MIN / 2) {
      sk.ato = (sk.ato >> 1) + TCP_ATO_MIN / 2;
    } else if (m < sk.ato) {
      sk.ato = (sk.ato >> 1) + m;
      if (sk.ato > sk.rto) sk.ato = sk.rto;
    } else if (m > sk.rto) {
      tcpIncrQuickack(sk, TCP_MAX_QUICKACKS);
    }
  }
  sk.lrcvtime = now;
  sk.lastDataRecv = now;
  // tcp_grow_window: the offered window grows toward the buffer as data flows, not under memory pressure.
  if (len >= 128 && sk.rcvSsthresh < sk.windowClamp && sk.rcvSsthresh < tcpSpace(sk) && !skUnderMemoryPressure(sk)) {
    sk.rcvSsthresh = Math.min(sk.rcvSsthresh + 2 * sk.advmss, sk.windowClamp);
    sk.ackQuick |= 1;
  }
}

/** tcp_dsack_set: report a duplicate range (RFC 2883) on the next ACK. */
export function tcpDsackSet(tcp: TcpProto, sk: TcpSock, seq: number, endSeq: number): void {
  if (sk.sackOk && tcp.sysctl.tcp_dsack) {
    if (before(seq, sk.rcvNxt)) tcp.mibs.TcpExt.TCPDSACKOldSent++;
    else tcp.mibs.TcpExt.TCPDSACKOfoSent++;
    sk.dsack = true;
    sk.duplicateSack[0] = seq;
    sk.duplicateSack[1] = endSeq;
  }
}

/** tcp_sack_extend: grow block i to cover [seq, endSeq) if they touch or overlap. */
function tcpSackExtend(b: Uint32Array, i: number, seq: number, endSeq: number): boolean {
  if (!after(seq, b[2 * i + 1]) && !after(b[2 * i], endSeq)) {
    if (before(seq, b[2 * i])) b[2 * i] = seq;
    if (after(endSeq, b[2 * i + 1])) b[2 * i + 1] = endSeq;
    return true;
  }
  return false;
}

/** tcp_sack_maybe_coalesce: the first block grew; absorb any block it now reaches. */
function tcpSackMaybeCoalesce(sk: TcpSock): void {
  const b = sk.selectiveAcks;
  for (let i = 1; i < sk.numSacks; ) {
    if (tcpSackExtend(b, 0, b[2 * i], b[2 * i + 1])) {
      sk.numSacks--;
      for (let j = i; j < sk.numSacks; j++) {
        b[2 * j] = b[2 * j + 2];
        b[2 * j + 1] = b[2 * j + 3];
      }
      continue;
    }
    i++;
  }
}

/**
 * tcp_sack_new_ofo_skb: the SACK blocks in Linux's order. The block a new
 * out-of-order segment extends (or a new block for it) moves to the front;
 * the others keep their most-recently-used order; at most four are kept.
 */
function tcpSackNewOfoSkb(sk: TcpSock, seq: number, endSeq: number): void {
  if (!sk.sackOk) return;
  const b = sk.selectiveAcks;
  const cur = sk.numSacks;
  for (let i = 0; i < cur; i++) {
    if (tcpSackExtend(b, i, seq, endSeq)) {
      // Rotate it to the front.
      const s0 = b[2 * i];
      const e0 = b[2 * i + 1];
      for (let j = i; j > 0; j--) {
        b[2 * j] = b[2 * j - 2];
        b[2 * j + 1] = b[2 * j - 1];
      }
      b[0] = s0;
      b[1] = e0;
      if (cur > 1) tcpSackMaybeCoalesce(sk);
      return;
    }
  }
  // A new block at the front; with four already, the oldest is forgotten.
  let n = cur;
  if (n >= TCP_NUM_SACKS) n = TCP_NUM_SACKS - 1;
  for (let j = n; j > 0; j--) {
    b[2 * j] = b[2 * j - 2];
    b[2 * j + 1] = b[2 * j - 1];
  }
  b[0] = seq;
  b[1] = endSeq;
  sk.numSacks = n + 1;
}

/** tcp_sack_remove: rcv_nxt advanced: drop the blocks it covers (all of them once the ofo queue is empty). */
function tcpSackRemove(sk: TcpSock): void {
  if (!sk.ofoQueue.length) {
    sk.numSacks = 0;
    return;
  }
  const b = sk.selectiveAcks;
  let n = sk.numSacks;
  for (let i = 0; i < n; ) {
    if (!before(sk.rcvNxt, b[2 * i])) {
      for (let j = i + 1; j < n; j++) {
        b[2 * j - 2] = b[2 * j];
        b[2 * j - 1] = b[2 * j + 1];
      }
      n--;
      continue;
    }
    i++;
  }
  sk.numSacks = n;
}
/** TCP_NUM_SACKS: blocks remembered. */
const TCP_NUM_SACKS = 4;

/** How tcpQueueRcv keeps in-order payload: referenced where it lies, added to the tail's fragment, or copied. */
const RCV_REF = 0;
const RCV_EXTEND = 1;
const RCV_COPY = 2;

function tcpQueueRcvMode(tcp: TcpProto, sk: TcpSock, skb: SkBuff, len: number): number {
  const slot = skb.page;
  if (slot !== null && len >= RCV_REF_MIN && skb.buf === slot.buf) return RCV_REF;
  const q = sk.receiveQueue;
  const tail = q.length ? q[q.length - 1] : null;
  return tail !== null && tcp.rcvPages.canExtend(tail.page, tail.off + tail.len, len) ? RCV_EXTEND : RCV_COPY;
}

/** The truesize payload of `len` bytes kept in `mode` adds to the receive queue (what tcpQueueRcv charges). */
function rcvModeTruesize(skb: SkBuff, mode: number, len: number): number {
  return mode === RCV_REF ? skb.page!.buf.length : mode === RCV_EXTEND ? len : len + RCV_SEG_OVERHEAD;
}

/**
 * Queue in-order payload for the reader (tcp_queue_rcv). A super-frame's
 * payload stays in the driver's ring slot it arrived in (the slot becomes
 * the segment's page; the driver gives the slot a new buffer), so the
 * reader's copy is the only one. Anything smaller is copied out of the
 * frame once: onto the tail's page fragment when it continues it
 * (tcp_try_coalesce), else into a new fragment: `mode`, which the caller
 * chose (tcpQueueRcvMode) and scheduled the memory for; it is charged here.
 */
function tcpQueueRcv(tcp: TcpProto, sk: TcpSock, skb: SkBuff, mode: number, off: number, len: number, seq: number, endSeq: number): void {
  if (len) {
    const buf = skb.buf;
    const q = sk.receiveQueue;
    const cache = tcp.rcvPages;
    if (mode === RCV_REF) {
      const slot = skb.page!;
      slot.refs++;
      q.push(new RcvSeg(seq, endSeq, slot, off, len, false, slot.buf.length));
      rcvSegCharge(sk, slot.buf.length);
    } else if (mode === RCV_EXTEND) {
      const tail = q[q.length - 1];
      buf.copy(tail.page.buf, cache.used, off, off + len);
      cache.used += len;
      tail.len += len;
      tail.endSeq = endSeq;
      tail.truesize += len;
      rcvSegCharge(sk, len);
    } else {
      const seg = rcvSegCopy(cache, seq, endSeq, buf, off, len, false);
      q.push(seg);
      rcvSegCharge(sk, seg.truesize);
    }
    sk.rmemAlloc += len;
  }
  sk.rcvNxt = endSeq;
}

/** tcp_ofo_queue: move now-in-order segments from the out-of-order queue. */
function tcpOfoQueue(tcp: TcpProto, sk: TcpSock): void {
  const q = sk.ofoQueue;
  while (q.length && !after(q[0].seq, sk.rcvNxt)) {
    const s = q.shift()!;
    sk.rmemAlloc -= s.len;
    if (!after(s.endSeq, sk.rcvNxt)) {
      tcpDsackSet(tcp, sk, s.seq, s.endSeq);
      rcvSegFree(tcp.rcvPages, sk, s);
      continue;
    }
    // The fragment moves to the receive queue as it is (its old head cut off): no second copy.
    const skip = Math.min((sk.rcvNxt - s.seq) >>> 0, s.len);
    const fin = s.fin;
    const segEnd = s.endSeq;
    s.off += skip;
    s.len -= skip;
    s.seq = sk.rcvNxt;
    s.endSeq = fin ? seqAdd(s.endSeq, -1) : s.endSeq;
    s.fin = false;
    const n = s.len;
    if (n) {
      sk.receiveQueue.push(s);
      sk.rmemAlloc += n;
    } else {
      rcvSegFree(tcp.rcvPages, sk, s);
    }
    sk.rcvNxt = s.endSeq;
    sk.bytesReceived += n;
    if (fin) {
      sk.rcvNxt = segEnd;
      tcpFin(tcp, sk);
      break;
    }
  }
}

/** tcp_data_queue_ofo: keep a segment that arrived ahead of a hole. */
function tcpDataQueueOfo(tcp: TcpProto, sk: TcpSock, skb: SkBuff, fin: boolean): void {
  const tcb = tcpSkbCb(skb);
  tcpEcnCheckCe(sk, skb);
  tcp.mibs.TcpExt.TCPOFOQueue++;
  sk.rcvOoopack++;
  sk.ackPending |= ICSK_ACK_SCHED | ICSK_ACK_NOW;
  if (tcpTryRmemSchedule(tcp, sk, tcb.dataLen, tcb.dataLen + RCV_SEG_OVERHEAD, sk.rcvbuf) < 0) {
    tcp.mibs.TcpExt.TCPOFODrop++;
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.PROTO_MEM);
    return;
  }
  const seq = tcb.seq;
  const endSeq = tcb.endSeq;
  const q = sk.ofoQueue;
  let i = q.length;
  while (i > 0 && after(q[i - 1].seq, seq)) i--;
  // Fully covered by what we hold: a duplicate (D-SACK it).
  const prev = i > 0 ? q[i - 1] : null;
  if (prev && !after(endSeq, prev.endSeq)) {
    tcp.mibs.TcpExt.TCPOFOMerge++;
    tcpDsackSet(tcp, sk, seq, endSeq);
    // Linux still moves the block holding it to the front (goto add_sack).
    tcpSackNewOfoSkb(sk, seq, endSeq);
    return;
  }
  // Drop later segments this one fully covers.
  while (i < q.length && !after(q[i].endSeq, endSeq)) {
    sk.rmemAlloc -= q[i].len;
    rcvSegFree(tcp.rcvPages, sk, q[i]);
    q.splice(i, 1);
    tcp.mibs.TcpExt.TCPOFOMerge++;
  }
  const seg = rcvSegCopy(tcp.rcvPages, seq, endSeq, skb.buf, tcb.dataOff, tcb.dataLen, fin);
  q.splice(i, 0, seg);
  rcvSegCharge(sk, seg.truesize);
  sk.rmemAlloc += tcb.dataLen;
  tcpSackNewOfoSkb(sk, seq, endSeq);
}

/** tcp_data_queue: in-order data to the reader, the rest to the out-of-order queue. */
export function tcpDataQueue(tcp: TcpProto, sk: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  const fin = (tcb.tcpFlags & TCPHDR_FIN) !== 0;
  if (sk.ecnFlags & TCP_ECN_OK) tcpEcnAcceptCwr(sk, skb);
  // Nothing in sequence space; a SYN has one (a simultaneous open's repeated SYN is D-SACKed below).
  if (!tcb.dataLen && !fin && !(tcb.tcpFlags & TCPHDR_SYN)) return;
  let dataOff = tcb.dataOff;
  let dataLen = tcb.dataLen;
  let seq = tcb.seq;

  if (seq === sk.rcvNxt || (before(seq, sk.rcvNxt) && after(tcb.endSeq, sk.rcvNxt))) {
    if (before(seq, sk.rcvNxt)) {
      // Partly old: D-SACK the old head, keep the new tail.
      tcpDsackSet(tcp, sk, seq, sk.rcvNxt);
      const skip = (sk.rcvNxt - seq) >>> 0;
      dataOff += skip;
      dataLen -= skip;
      seq = sk.rcvNxt;
    }
    if (dataLen && tcpReceiveWindow(sk) === 0) {
      tcp.mibs.TcpExt.TCPZeroWindowDrop++;
      tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_ZEROWINDOW);
      tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
      sk.ackPending |= ICSK_ACK_SCHED;
      return;
    }
    const mode = dataLen ? tcpQueueRcvMode(tcp, sk, skb, dataLen) : RCV_COPY;
    if (dataLen) {
      const truesize = rcvModeTruesize(skb, mode, dataLen);
      if (tcpTryRmemSchedule(tcp, sk, dataLen, truesize, sk.rcvbuf + (sk.rcvbuf >> 1)) < 0) {
        sk.ackPending |= ICSK_ACK_SCHED | ICSK_ACK_NOW;
        // With nothing queued for the reader the segment is taken anyway: the connection must progress.
        if (sk.receiveQueue.length) {
          tcp.mibs.TcpExt.TCPRcvQDrop++;
          tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.PROTO_MEM);
          return;
        }
        skForcedMemSchedule(sk, truesize);
      }
    }
    tcpQueueRcv(tcp, sk, skb, mode, dataOff, dataLen, seq, seqAdd(seq, dataLen));
    sk.bytesReceived += dataLen;
    if (dataLen) {
      tcpEcnCheckCe(sk, skb);
      tcpEventDataRecv(tcp, sk, skb, tcb.dataLen);
    }
    if (fin) {
      sk.rcvNxt = seqAdd(sk.rcvNxt, 1);
      tcpFin(tcp, sk);
    }
    if (sk.ofoQueue.length) {
      tcpOfoQueue(tcp, sk);
      // RFC 5681 4.2: ACK at once when a hole is filled.
      if (!sk.ofoQueue.length) sk.ackPending |= ICSK_ACK_NOW;
    }
    if (sk.numSacks) tcpSackRemove(sk);
    if (!sk.orphan) tcpWake(sk, POLLIN);
    return;
  }
  if (!after(tcb.endSeq, sk.rcvNxt)) {
    // A retransmission of what we have: ACK at once and D-SACK it.
    tcp.mibs.TcpExt.DelayedACKLost++;
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_OLD_DATA);
    tcpDsackSet(tcp, sk, seq, tcb.endSeq);
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    sk.ackPending |= ICSK_ACK_SCHED;
    return;
  }
  if (!before(seq, seqAdd(sk.rcvNxt, tcpReceiveWindow(sk)))) {
    // Beyond the window (e.g. a zero-window probe): just ACK.
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_OVERWINDOW);
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    sk.ackPending |= ICSK_ACK_SCHED;
    return;
  }
  tcpDataQueueOfo(tcp, sk, skb, fin);
}

/** tcp_fin: the peer finished sending. */
function tcpFin(tcp: TcpProto, sk: TcpSock): void {
  sk.ackPending |= ICSK_ACK_SCHED;
  sk.shutdown |= RCV_SHUTDOWN;
  sk.done = true;
  sk.finQueued = true;
  switch (sk.state) {
    case TCP_SYN_RECV:
    case TCP_ESTABLISHED:
      tcpSetState(tcp, sk, TCP_CLOSE_WAIT);
      // Delay the ACK of a FIN so it can ride on our own FIN (inet_csk_enter_pingpong_mode).
      sk.ackPingpong = tcp.sysctl.tcp_pingpong_thresh;
      break;
    case TCP_CLOSE_WAIT:
    case TCP_CLOSING:
    case TCP_LAST_ACK:
      break;
    case TCP_FIN_WAIT1:
      // Simultaneous close: ACK the FIN now, wait for ours to be acked.
      tcpSendAck(tcp, sk);
      tcpSetState(tcp, sk, TCP_CLOSING);
      break;
    case TCP_FIN_WAIT2:
      tcpSendAck(tcp, sk);
      tcpTimeWait(tcp, sk, TCP_TIME_WAIT, 0);
      break;
  }
  // Nothing can follow a FIN: the out-of-order queue is dropped.
  sk.rmemAlloc -= rcvQueuePurge(tcp.rcvPages, sk, sk.ofoQueue);
  sk.numSacks = 0;
  if (!sk.orphan) tcpWake(sk, sk.shutdown === SHUTDOWN_MASK || sk.state === TCP_CLOSE ? POLLIN | POLLHUP | POLLRDHUP : POLLIN | POLLRDHUP);
}

/** __tcp_ack_snd_check: ACK now, or schedule a delayed ACK. */
export function tcpAckSndCheck(tcp: TcpProto, sk: TcpSock): void {
  if (!(sk.ackPending & ICSK_ACK_SCHED)) return;
  const fullFrames = ((sk.rcvNxt - sk.rcvWup) >>> 0) > sk.rcvMss;
  if (
    (fullFrames && (((sk.rcvNxt - sk.copiedSeq) >>> 0) < sk.rcvlowat || tcpSelectWindowRaw(sk) >= sk.rcvWnd)) ||
    tcpInQuickackMode(tcp, sk) ||
    sk.ackPending & ICSK_ACK_NOW ||
    sk.ofoQueue.length
  ) {
    tcpSendAck(tcp, sk);
    return;
  }
  tcpSendDelayedAck(tcp, sk);
}

/**
 * tcp_should_expand_sndbuf's memory tests: not under tcp_mem pressure, and
 * not once TCP has reserved its min (the send buffer then stays as it is).
 */
function tcpShouldExpandSndbuf(sk: TcpSock): boolean {
  return !(sk.userlocks & SOCK_SNDBUF_LOCK) && !skUnderMemoryPressure(sk) && !skMemoryAboveMin(sk);
}

/** tcp_new_space / sk_stream_write_space: wake a writer once space reaches the threshold. */
export function tcpCheckSpace(tcp: TcpProto, sk: TcpSock): void {
  if (tcpShouldExpandSndbuf(sk)) tcpSndbufExpand(tcp, sk);
  if (!sk.noSpace) return;
  if (skStreamIsWriteable(sk, 1)) {
    sk.noSpace = false;
    const tr = tcp.trace;
    if (tr !== null) tr.wspace(sk);
    tcpWake(sk, POLLOUT);
    tcpChronoStop(tcp, sk, TCP_CHRONO_SNDBUF_LIMITED);
  }
}

/** tcp_sndbuf_expand: room for two windows' worth of segments, as cwnd grows (unless SO_SNDBUF was set). */
export function tcpSndbufExpand(tcp: TcpProto, sk: TcpSock): void {
  // The peer's MSS (rx_opt.mss_clamp), not ours, plus MAX_TCP_HEADER and the skb_shared_info,
  // rounded up to a power of two; then the struct sk_buff (x86-64 sizes: 320, 320, 256).
  const mss = Math.max(sk.mssClamp, sk.mssCache);
  const perMss = 2 ** Math.ceil(Math.log2(mss + 320 + 320)) + 256;
  const nrSegs = Math.max(TCP_INIT_CWND, sk.sndCwnd, tcp.sysctl.tcp_reordering + 1);
  // An algorithm that keeps more than two windows in flight (BBR) asks for room for them.
  const sndmem = (sk.caOps.sndbufExpand ? sk.caOps.sndbufExpand(sk) : 2) * nrSegs * perMss;
  if (sk.sndbuf < sndmem) sk.sndbuf = Math.min(sndmem, tcp.sysctl.tcp_wmem[2]);
}

/** tcp_data_snd_check: send what the new ACK allows, then wake writers. */
export function tcpDataSndCheck(tcp: TcpProto, sk: TcpSock): void {
  if (sk.sendHead) {
    if (tcpWriteXmit(tcp, sk, tcpCurrentMss(sk), sk.nonagle, false)) tcpCheckProbeTimer(tcp, sk);
  }
  tcpCheckSpace(tcp, sk);
}

/** tcp_ecn_accept_cwr: the peer reduced its window: stop echoing ECE; ACK data carrying CWR at once. */
export function tcpEcnAcceptCwr(sk: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  if (tcb.tcpFlags & TCPHDR_CWR) {
    sk.ecnFlags &= ~TCP_ECN_DEMAND_CWR;
    if (tcb.dataLen) sk.ackPending |= ICSK_ACK_NOW;
  }
}

/** tcp_ecn_check_ce: CE on arriving data: echo ECE until CWR, and ACK quickly. */
export function tcpEcnCheckCe(sk: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  if (!(sk.ecnFlags & TCP_ECN_OK)) return;
  switch (tcb.tos & INET_ECN_MASK) {
    case 0:
      // Not ECT after ECT was seen: probably a retransmission; ACK it soon.
      if (sk.ecnFlags & TCP_ECN_SEEN) tcpEnterQuickackMode(sk, 2);
      break;
    case INET_ECN_CE:
      if (!(sk.ecnFlags & TCP_ECN_DEMAND_CWR)) {
        // The sender may have a tiny window: do not delay the echo.
        tcpEnterQuickackMode(sk, 2);
        sk.ecnFlags |= TCP_ECN_DEMAND_CWR;
      }
      sk.ecnFlags |= TCP_ECN_SEEN;
      break;
    default:
      sk.ecnFlags |= TCP_ECN_SEEN;
  }
}

// --- memory: try, prune, collapse ----------------------------------------------------

/**
 * The receive queues are over what the socket may hold: their unread
 * bytes past `limit` with `len` more, or their cost (truesize) past twice
 * SO_RCVBUF, Linux's sk_rmem_alloc > sk_rcvbuf (rmem_alloc counts
 * truesize, about twice the payload at tcp_adv_win_scale 1; the window
 * here is computed from the payload).
 */
function tcpRmemOver(sk: TcpSock, len: number, limit: number): boolean {
  return sk.rmemAlloc + len > limit || sk.rcvTruesize > 2 * sk.rcvbuf;
}

/**
 * tcp_try_rmem_schedule: room for a segment of `len` bytes costing
 * `truesize`, against the socket's limit and tcp_mem; if there is none,
 * prune (tcpPruneQueue), then give up out-of-order data until tcp_mem
 * allows it. 0, or -1 to drop the segment.
 */
function tcpTryRmemSchedule(tcp: TcpProto, sk: TcpSock, len: number, truesize: number, limit: number): number {
  if (!tcpRmemOver(sk, len, limit) && skMemSchedule(sk, truesize, SK_MEM_RECV)) return 0;
  if (tcpPruneQueue(tcp, sk, len, limit) < 0) return -1;
  while (!skMemSchedule(sk, truesize, SK_MEM_RECV)) {
    if (!tcpPruneOfoQueue(tcp, sk, len, limit)) return -1;
  }
  return 0;
}

/**
 * tcp_clamp_window: the queues hit SO_RCVBUF: grow it toward what they
 * hold if the socket and tcp_mem allow, and if they are still over, bring
 * the window's growth back to two segments.
 */
function tcpClampWindow(tcp: TcpProto, sk: TcpSock): void {
  sk.ackQuick = 0;
  const rmem2 = tcp.sysctl.tcp_rmem[2];
  if (sk.rcvbuf < rmem2 && !(sk.userlocks & SOCK_RCVBUF_LOCK) && !skUnderMemoryPressure(sk) && !skMemoryAboveMin(sk)) {
    sk.rcvbuf = Math.min(sk.rmemAlloc, rmem2);
  }
  if (sk.rmemAlloc > sk.rcvbuf) sk.rcvSsthresh = Math.min(sk.windowClamp, 2 * sk.advmss);
}

/**
 * tcp_prune_queue: the socket is out of receive memory. Clamp the window,
 * collapse the queues into compact fragments (what a segment costs beyond
 * its bytes goes: a ring slot kept for a part of it, per-segment
 * overhead), and if that is not enough drop out-of-order data. 0 when
 * there is room now, -1 (RcvPruned) when there is not.
 */
function tcpPruneQueue(tcp: TcpProto, sk: TcpSock, len: number, limit: number): number {
  const ext = tcp.mibs.TcpExt;
  ext.PruneCalled++;
  if (sk.rmemAlloc >= sk.rcvbuf) tcpClampWindow(tcp, sk);
  else if (skUnderMemoryPressure(sk)) tcpAdjustRcvSsthresh(sk);
  tcpCollapseOfoQueue(tcp, sk);
  if (sk.receiveQueue.length) tcpCollapse(tcp, sk, sk.receiveQueue);
  skMemReclaim(sk);
  if (!tcpRmemOver(sk, len, limit)) return 0;
  tcpPruneOfoQueue(tcp, sk, len, limit);
  if (!tcpRmemOver(sk, len, limit)) return 0;
  ext.RcvPruned++;
  return -1;
}

/**
 * tcp_collapse over one queue: runs of contiguous segments that cost more
 * than their bytes (a super-frame's ring slot, a small segment with its
 * own fragment) are copied into fragments cut from shared pages, as
 * tcp_collapse rebuilds them into compact skbs (TCPRcvCollapsed for each
 * one freed). The bytes and the sequence space do not change.
 */
function tcpCollapse(tcp: TcpProto, sk: TcpSock, q: RcvSeg[]): void {
  const cache = tcp.rcvPages;
  const out: RcvSeg[] = [];
  let i = 0;
  while (i < q.length) {
    // A run [i, j): each segment starts where the last ended, no FIN inside, at most a page of bytes.
    let j = i + 1;
    let bytes = q[i].len;
    let cost = q[i].truesize;
    while (j < q.length && !q[j - 1].fin && rcvSegStart(q[j]) === q[j - 1].endSeq && bytes + q[j].len <= RCV_PAGE_SIZE) {
      bytes += q[j].len;
      cost += q[j].truesize;
      j++;
    }
    if (cost <= bytes + RCV_SEG_OVERHEAD) {
      // Already as compact as one fragment would be.
      for (let k = i; k < j; k++) out.push(q[k]);
      i = j;
      continue;
    }
    const first = q[i];
    const last = q[j - 1];
    const at = cache.alloc(bytes);
    const page = cache.page!;
    let n = 0;
    for (let k = i; k < j; k++) {
      const t = q[k];
      t.page.buf.copy(page.buf, at + n, t.off, t.off + t.len);
      n += t.len;
      rcvSegFree(cache, sk, t);
      tcp.mibs.TcpExt.TCPRcvCollapsed++;
    }
    const seg = new RcvSeg(rcvSegStart(first), last.endSeq, page, at, bytes, last.fin, bytes + RCV_SEG_OVERHEAD);
    rcvSegCharge(sk, seg.truesize);
    out.push(seg);
    i = j;
  }
  q.length = 0;
  for (const s of out) q.push(s);
}

/** Where a queued segment's unread bytes start in sequence space (a read moves its start, not its seq). */
function rcvSegStart(s: RcvSeg): number {
  return seqAdd(s.endSeq, -(s.len + (s.fin ? 1 : 0)));
}

/** tcp_collapse_ofo_queue: collapse the out-of-order queue's runs of contiguous segments. */
function tcpCollapseOfoQueue(tcp: TcpProto, sk: TcpSock): void {
  if (sk.ofoQueue.length) tcpCollapse(tcp, sk, sk.ofoQueue);
}

/**
 * tcp_prune_ofo_queue: drop out-of-order data from the far end, an eighth
 * of SO_RCVBUF at a time, until the socket is under its limits and tcp_mem
 * is not under pressure; the SACK blocks are reset (OfoPruned). True if
 * anything was dropped.
 */
function tcpPruneOfoQueue(tcp: TcpProto, sk: TcpSock, len: number, limit: number): boolean {
  const q = sk.ofoQueue;
  if (!q.length) return false;
  tcp.mibs.TcpExt.OfoPruned++;
  let goal = sk.rcvbuf >> 3;
  while (q.length) {
    const s = q.pop()!;
    goal -= s.truesize;
    sk.rmemAlloc -= s.len;
    rcvSegFree(tcp.rcvPages, sk, s);
    tcp.mibs.Drop.counts[SKB_DROP_REASON.TCP_OFO_QUEUE_PRUNE]++;
    if (goal <= 0) {
      if (!tcpRmemOver(sk, len, limit) && !skUnderMemoryPressure(sk)) break;
      goal = sk.rcvbuf >> 3;
    }
  }
  // What the peer was told we hold is no longer true: forget it (tcp_sack_reset).
  sk.numSacks = 0;
  sk.dsack = false;
  return true;
}
