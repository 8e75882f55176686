/**
 * The sender's SACK scoreboard (net/ipv4/tcp_input.c's tcp_sacktag_*):
 * D-SACK detection, SACK block validation, and tagging the write queue's
 * skbs SACKED_ACKED / LOST / SACKED_RETRANS as the blocks arrive, splitting
 * an skb where a block ends inside it; plus the Reno stand-in (duplicate
 * ACKs counted as SACKed segments) for peers without SACK. Called from
 * tcp_ack in tcp_input.ts.
 */
import { after, before } from '../../lib/seq.js';
import type { TcpProto } from './tcp_proto.js';
import { TCPCB_LOST, TCPCB_RETRANS, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TCP_CA_Loss, tcpHighestSackSeq, type TcpSkb, type TcpSock } from './tcp_sock.js';
import { tcpFragment } from './tcp_output.js';
import { tcpCheckSackReordering, tcpRackAdvance } from './tcp_recovery.js';
import { tcpRateSkbDelivered } from './tcp_rate.js';

import { FLAG_DATA_SACKED, FLAG_DSACKING_ACK, FLAG_DSACK_TLP, FLAG_ORIG_SACK_ACKED, type SacktagState, type TcpAckState } from './tcp_skb_cb.js';

/** tcp_limit_reno_sacked: more dupacks than can be explained: cap them; true if reordering. */
function tcpLimitRenoSacked(sk: TcpSock): boolean {
  let holes = Math.max(sk.lostOut, 1);
  holes = Math.min(holes, sk.packetsOut);
  if (sk.sackedOut + holes > sk.packetsOut) {
    sk.sackedOut = sk.packetsOut - holes;
    return true;
  }
  return false;
}

function tcpCheckRenoReordering(tcp: TcpProto, sk: TcpSock, addend: number): void {
  if (!tcpLimitRenoSacked(sk)) return;
  sk.reordering = Math.min(sk.packetsOut + addend, tcp.sysctl.tcp_max_reordering);
  sk.reordSeen++;
  tcp.mibs.TcpExt.TCPRenoReorder++;
}

/** tcp_add_reno_sack: a duplicate ACK means one more segment left the network. */
export function tcpAddRenoSack(tcp: TcpProto, sk: TcpSock, numDupack: number): void {
  if (!numDupack) return;
  const prior = sk.sackedOut;
  sk.sackedOut += numDupack;
  tcpCheckRenoReordering(tcp, sk, 0);
  const delivered = sk.sackedOut - prior;
  if (delivered > 0) sk.delivered += delivered;
}

/** tcp_remove_reno_sacks: a cumulative ACK: one acked the hole, the rest eat dupacks. */
export function tcpRemoveRenoSacks(tcp: TcpProto, sk: TcpSock, acked: number): void {
  if (acked > 0) {
    sk.delivered += Math.max(acked - sk.sackedOut, 1);
    if (acked - 1 >= sk.sackedOut) sk.sackedOut = 0;
    else sk.sackedOut -= acked - 1;
  }
  tcpCheckRenoReordering(tcp, sk, acked);
}

// --- SACK scoreboard (tcp_sacktag_write_queue) ---------------------------------------------

/** tcp_dsack_seen: count a D-SACK; returns the duplicate segments, 0 for a dubious one. */
function tcpDsackSeen(sk: TcpSock, start: number, end: number, st: SacktagState): number {
  if (!before(start, end)) return 0;
  const len = (end - start) >>> 0;
  // A D-SACK bigger than any window we were offered is bogus.
  if (len > sk.maxWindow) return 0;
  let dupSegs = 1;
  if (len > sk.mssCache) dupSegs = Math.ceil(len / sk.mssCache);
  else if (sk.tlpHighSeq && sk.tlpHighSeq === end) st.flag |= FLAG_DSACK_TLP;
  sk.dsackDups += dupSegs;
  // More duplicates than we ever retransmitted: not ours to believe.
  if (sk.dsackDups > sk.totalRetrans) return 0;
  sk.dsackSeen = true;
  // D-SACKs after reordering was seen widen RACK's window (not those answering a TLP).
  if (sk.reordSeen && !(st.flag & FLAG_DSACK_TLP)) sk.rackDsackSeen = true;
  st.flag |= FLAG_DSACKING_ACK;
  // The spurious retransmission was delivered.
  sk.delivered += dupSegs;
  return dupSegs;
}

/** tcp_check_dsack: is the first block a D-SACK (below the ACK, or inside the second block)? */
function tcpCheckDsack(tcp: TcpProto, sk: TcpSock, ack: number, ackState: TcpAckState): boolean {
  const o = ackState.opt;
  const st = ackState.sack;
  const priorSndUna = ackState.priorSndUna;
  const start0 = o.sackStart[0];
  const end0 = o.sackEnd[0];
  if (before(start0, ack)) {
    tcp.mibs.TcpExt.TCPDSACKRecv++;
  } else if (o.numSacks > 1) {
    const start1 = o.sackStart[1];
    const end1 = o.sackEnd[1];
    if (after(end0, end1) || before(start0, start1)) return false;
    tcp.mibs.TcpExt.TCPDSACKOfoRecv++;
  } else {
    return false;
  }
  const dupSegs = tcpDsackSeen(sk, start0, end0, st);
  if (!dupSegs) {
    tcp.mibs.TcpExt.TCPDSACKIgnoredDubious++;
    return false;
  }
  tcp.mibs.TcpExt.TCPDSACKRecvSegs += dupSegs;
  // D-SACK for data already freed from the queue: count it against the retransmissions.
  if (sk.undoMarker && sk.undoRetrans > 0 && !after(end0, priorSndUna) && after(end0, sk.undoMarker)) {
    sk.undoRetrans = Math.max(0, sk.undoRetrans - dupSegs);
  }
  return true;
}

/** tcp_is_sackblock_valid (RFC 2018 and RFC 2883 sanity, with Linux's wrap-around care). */
function tcpIsSackblockValid(sk: TcpSock, isDsack: boolean, start: number, end: number): boolean {
  if (after(end, sk.sndNxt) || !before(start, end)) return false;
  if (!before(start, sk.sndNxt)) return false;
  if (after(start, sk.sndUna)) return true;
  if (!isDsack || !sk.undoMarker) return false;
  // A D-SACK must lie entirely below snd_una.
  if (after(end, sk.sndUna)) return false;
  if (!before(start, sk.undoMarker)) return true;
  if (!after(end, sk.undoMarker)) return false;
  return !before(start, (end - sk.maxWindow) >>> 0);
}

/** tcp_sacktag_one: apply one SACK (or D-SACK) to an skb's scoreboard bits; returns the new bits. */
function tcpSacktagOne(sk: TcpSock, st: SacktagState, skb: TcpSkb, dupSack: boolean, now: number): number {
  let sacked = skb.sacked;
  const pcount = skb.pcount;
  const start = skb.seq;
  const end = skb.endSeq;
  if (dupSack && sacked & TCPCB_RETRANS) {
    if (sk.undoMarker && sk.undoRetrans > 0 && after(end, sk.undoMarker)) sk.undoRetrans = Math.max(0, sk.undoRetrans - pcount);
    if (sacked & TCPCB_SACKED_ACKED && before(start, st.reord)) st.reord = start;
  }
  // Already cumulatively acked: about to be freed.
  if (!after(end, sk.sndUna)) return sacked;
  if (!(sacked & TCPCB_SACKED_ACKED)) {
    tcpRackAdvance(sk, sacked, end, skb.sentAt, skb.sentOrder, now);
    if (sacked & TCPCB_SACKED_RETRANS) {
      // A retransmission not marked lost is still believed in flight: only a lost one is settled here.
      if (sacked & TCPCB_LOST) {
        sacked &= ~(TCPCB_LOST | TCPCB_SACKED_RETRANS);
        sk.lostOut -= pcount;
        sk.retransOut -= pcount;
      }
    } else {
      if (!(sacked & TCPCB_RETRANS)) {
        // An original transmission SACKed below the highest SACK: reordering.
        if (before(start, tcpHighestSackSeq(sk)) && before(start, st.reord)) st.reord = start;
        if (!after(end, sk.highSeq)) st.flag |= FLAG_ORIG_SACK_ACKED;
        if (!st.firstSackt) st.firstSackt = skb.sentAt;
        st.lastSackt = skb.sentAt;
      }
      if (sacked & TCPCB_LOST) {
        sacked &= ~TCPCB_LOST;
        sk.lostOut -= pcount;
      }
    }
    sacked |= TCPCB_SACKED_ACKED;
    st.flag |= FLAG_DATA_SACKED;
    sk.sackedOut += pcount;
    sk.delivered += pcount;
    if (after(end, sk.highestSackSeq)) sk.highestSackSeq = end;
  }
  // D-SACK of a retransmission: it was redundant, it is no longer in flight.
  if (dupSack && sacked & TCPCB_SACKED_RETRANS) {
    sacked &= ~TCPCB_SACKED_RETRANS;
    sk.retransOut -= pcount;
  }
  return sacked;
}

/**
 * tcp_match_skb_to_sack: split a multi-segment skb so a SACK block covers
 * whole segments of it; returns whether (the head of) skb is inside.
 */
function tcpMatchSkbToSack(sk: TcpSock, skb: TcpSkb, start: number, end: number): boolean {
  let inSack = !after(start, skb.seq) && !before(end, skb.endSeq);
  if (skb.pcount > 1 && !inSack && after(skb.endSeq, start)) {
    const mss = skb.mss || sk.mssCache;
    inSack = !after(start, skb.seq);
    let pktLen: number;
    if (!inSack) {
      pktLen = (start - skb.seq) >>> 0;
      if (pktLen < mss) pktLen = mss;
    } else {
      pktLen = (end - skb.seq) >>> 0;
      if (pktLen < mss) return false;
    }
    if (pktLen > mss) {
      let newLen = Math.floor(pktLen / mss) * mss;
      if (!inSack && newLen < pktLen) newLen += mss;
      pktLen = newLen;
    }
    if (pktLen >= skb.len && !inSack) return false;
    if (pktLen < skb.len) tcpFragment(sk, skb, pktLen, mss);
  }
  return inSack;
}

/** Tag every skb a block covers. */
function tcpSacktagWalk(sk: TcpSock, ackState: TcpAckState, start: number, end: number, dupSack: boolean, now: number): void {
  const st = ackState.sack;
  for (let skb = sk.wqHead; skb && skb !== sk.sendHead; skb = skb.next) {
    if (!before(skb.seq, end)) break;
    if (!after(skb.endSeq, start)) continue;
    if (!tcpMatchSkbToSack(sk, skb, start, end)) continue;
    skb.sacked = tcpSacktagOne(sk, st, skb, dupSack, now);
    if (skb.sacked & TCPCB_SACKED_ACKED) tcpRateSkbDelivered(sk, skb, ackState.rs);
  }
}

/** tcp_sacktag_write_queue: the ACK's SACK blocks onto the scoreboard; returns FLAG_* bits. */
export function tcpSacktagWriteQueue(tcp: TcpProto, sk: TcpSock, ack: number, ackState: TcpAckState): number {
  const o = ackState.opt;
  const st = ackState.sack;
  const priorSndUna = ackState.priorSndUna;
  const now = tcp.now();
  st.reset(sk.sndNxt);
  if (!sk.sackedOut) sk.highestSackSeq = sk.sndUna;
  const foundDup = tcpCheckDsack(tcp, sk, ack, ackState);
  const tr = tcp.trace;
  if (tr !== null && o.numSacks) tr.sack(sk, o, foundDup);
  // Too old an ACK to trust its blocks.
  if (before(ack, (priorSndUna - sk.maxWindow) >>> 0)) return 0;
  if (!sk.packetsOut) return st.flag;
  for (let i = 0; i < o.numSacks; i++) {
    const dup = i === 0 && foundDup;
    const start = o.sackStart[i];
    const end = o.sackEnd[i];
    if (!tcpIsSackblockValid(sk, dup, start, end)) {
      if (dup) {
        if (!sk.undoMarker) tcp.mibs.TcpExt.TCPDSACKIgnoredNoUndo++;
        else tcp.mibs.TcpExt.TCPDSACKIgnoredOld++;
      } else {
        // An old block on a reordered ACK is not worth counting.
        if (ack !== sk.sndUna && !after(end, sk.sndUna)) continue;
        tcp.mibs.TcpExt.TCPSACKDiscard++;
      }
      continue;
    }
    if (!after(end, priorSndUna) && !dup) continue;
    tcpSacktagWalk(sk, ackState, start, end, dup, now);
  }
  if (sk.caState !== TCP_CA_Loss || sk.undoMarker) tcpCheckSackReordering(tcp, sk, st.reord, false);
  return st.flag;
}
