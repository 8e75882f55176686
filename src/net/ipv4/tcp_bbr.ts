/**
 * BBR, Bottleneck Bandwidth and RTT (net/ipv4/tcp_bbr.c as in Linux 6.18,
 * "BBR v1"): a model of the path from the delivery-rate samples of
 * tcp_rate.ts, the windowed maximum bandwidth (10 round trips) and the
 * windowed minimum RTT (10 s), and from it a pacing rate (pacing_gain x bw)
 * and a cwnd (cwnd_gain x bw x min_rtt, plus room for TSO and ACK
 * aggregation). The modes: STARTUP doubles the rate each round until the
 * bandwidth stops growing by 25% for 3 rounds; DRAIN empties the queue that
 * made; PROBE_BW cycles its gain through 5/4, 3/4 and six rounds of 1;
 * PROBE_RTT drops to 4 packets for 200 ms and a round when the min RTT has
 * not been seen again for 10 s. Long-term sampling spots a token-bucket
 * policer (two lossy intervals of the same rate) and paces at its rate.
 *
 * BBR owns the window through congControl and asks for pacing
 * (SK_PACING_NEEDED: TCP paces itself unless the fq stage does). Its units
 * are the kernel's: bandwidth in packets per us << 24, gains << 8, time in
 * us, jiffies (ms) for the min-RTT and PROBE_RTT stamps; integers rounded
 * down as the kernel's divisions round them.
 */
import { after, before } from '../../lib/seq.js';
import type { Random } from '../../lib/random.js';
import { Minmax } from '../../lib/win_minmax.js';
import { GSO_MAX_SIZE, MAX_TCP_HEADER, TCP_CA_Loss, TCP_CA_Open, TCP_CA_Recovery, TCP_INIT_CWND, type TcpCongestionOps, type TcpSock } from './tcp_sock.js';
import { RateSample } from './tcp_rate_sample.js';
import { CA_EVENT_TX_START } from './tcp_cong.js';
import { SK_PACING_NEEDED, SK_PACING_NONE } from '../core/sock.js';

const BW_SCALE = 24;
const BW_UNIT = 2 ** BW_SCALE;
const BBR_SCALE = 8;
const BBR_UNIT = 1 << BBR_SCALE;

// enum bbr_mode.
export const BBR_STARTUP = 0;
export const BBR_DRAIN = 1;
export const BBR_PROBE_BW = 2;
export const BBR_PROBE_RTT = 3;
export const BBR_MODE_NAMES = ['STARTUP', 'DRAIN', 'PROBE_BW', 'PROBE_RTT'];

const CYCLE_LEN = 8;
/** The bandwidth filter's window, in round trips. */
const bbrBwRtts = CYCLE_LEN + 2;
/** The min RTT filter's window, in seconds. */
const bbrMinRttWinSec = 10;
/** Least time in PROBE_RTT at bbrCwndMinTarget, ms. */
const bbrProbeRttModeMs = 200;
/** Below this rate (bits per second) one segment per TSO packet. */
const bbrMinTsoRate = 1_200_000;
/** Pace about 1% below the estimated bandwidth, to keep the bottleneck queue short. */
const bbrPacingMarginPercent = 1;
/** 2/ln(2): the smallest gain that doubles the delivery rate each round, as slow start does. */
export const bbrHighGain = Math.floor((BBR_UNIT * 2885) / 1000) + 1;
/** Its inverse: drains STARTUP's queue in about a round. */
export const bbrDrainGain = Math.floor((BBR_UNIT * 1000) / 2885);
const bbrCwndGain = BBR_UNIT * 2;
/** PROBE_BW's gain cycle: probe, drain, then cruise. */
export const bbrPacingGain = [(BBR_UNIT * 5) / 4, (BBR_UNIT * 3) / 4, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT];
/** The cycle starts at a random one of this many phases (never the drain phase). */
const bbrCycleRand = 7;
/** At least this many packets in flight: two ACKs of two packets. */
const bbrCwndMinTarget = 4;
/** STARTUP's pipe is full after bbrFullBwCnt rounds without the bandwidth growing by 25%. */
const bbrFullBwThresh = (BBR_UNIT * 5) / 4;
const bbrFullBwCnt = 3;
/** Long-term sampling: intervals of at least 4 rounds; lossy above 50/256 (~20%) lost. */
const bbrLtIntvlMinRtts = 4;
const bbrLtLossThresh = 50;
/** Two intervals within 1/8 or 4 kbit/s of each other have the same rate: a policer. */
const bbrLtBwRatio = BBR_UNIT / 8;
const bbrLtBwDiff = 4000 / 8;
/** How long a policer's rate is used before probing again, in round trips. */
const bbrLtBwMaxRtts = 48;
const bbrExtraAckedGain = BBR_UNIT;
const bbrExtraAckedWinRtts = 5;
const bbrAckEpochAckedResetThresh = 1 << 20;
const bbrExtraAckedMaxUs = 100 * 1000;

/** struct bbr: per-socket state. */
export class Bbr {
  minRttUs = 0;
  /** Jiffies (ms) of minRttUs. */
  minRttStamp = 0;
  /** Jiffies when PROBE_RTT may end (0: not yet at its floor). */
  probeRttDoneStamp = 0;
  /** Max recent delivery rate, packets/us << 24, over bbrBwRtts rounds. */
  readonly bw = new Minmax();
  /** Packet-timed round trips so far, and tp->delivered at the end of this one. */
  rttCnt = 0;
  nextRttDelivered = 0;
  /** Start of the current gain-cycle phase, us. */
  cycleMstamp = 0;
  mode = BBR_STARTUP;
  prevCaState = TCP_CA_Open;
  packetConservation = false;
  roundStart = false;
  idleRestart = false;
  probeRttRoundDone = false;
  ltIsSampling = false;
  ltRttCnt = 0;
  ltUseBw = false;
  ltBw = 0;
  ltLastDelivered = 0;
  /** ms. */
  ltLastStamp = 0;
  ltLastLost = 0;
  pacingGain = 0;
  cwndGain = 0;
  fullBwReached = false;
  fullBwCnt = 0;
  cycleIdx = 0;
  hasSeenRtt = false;
  priorCwnd = 0;
  fullBw = 0;
  /** ACK aggregation: the epoch's start (us), what it (S)ACKed, the two windows' maxima. */
  ackEpochMstamp = 0;
  extraAcked0 = 0;
  extraAcked1 = 0;
  ackEpochAcked = 0;
  extraAckedWinRtts = 0;
  extraAckedWinIdx = 0;
}

function bbr(sk: TcpSock): Bbr {
  return sk.caPriv as Bbr;
}

/** tcp_jiffies32 at HZ=1000. */
function jiffies(now: number): number {
  return Math.floor(now) >>> 0;
}

/** tcp_min_rtt: ~0U before any sample. */
function tcpMinRtt(sk: TcpSock): number {
  return sk.minRttUs || 0xffffffff;
}

function inFlight(sk: TcpSock): number {
  return sk.packetsOut - (sk.sackedOut + sk.lostOut) + sk.retransOut;
}

function bbrMaxBw(b: Bbr): number {
  return b.bw.get();
}

/** bbr_bw: the policer's rate while it is in use, else the windowed maximum. */
function bbrBw(b: Bbr): number {
  return b.ltUseBw ? b.ltBw : bbrMaxBw(b);
}

function bbrExtraAcked(b: Bbr): number {
  return Math.max(b.extraAcked0, b.extraAcked1);
}

/** bbr_rate_bytes_per_sec: a bandwidth with a gain, in bytes per second, 1% under. */
function bbrRateBytesPerSec(sk: TcpSock, rate: number, gain: number): number {
  return Math.floor((Math.floor((rate * sk.mssCache * gain) / BBR_UNIT) * ((1_000_000 / 100) * (100 - bbrPacingMarginPercent))) / BW_UNIT);
}

/** bbr_bw_to_pacing_rate. */
function bbrBwToPacingRate(sk: TcpSock, bw: number, gain: number): number {
  return Math.min(bbrRateBytesPerSec(sk, bw, gain), sk.maxPacingRate);
}

/** bbr_init_pacing_rate_from_rtt: high_gain x cwnd / srtt (or over a nominal 1 ms before any RTT). */
function bbrInitPacingRateFromRtt(sk: TcpSock, b: Bbr): void {
  let rttUs: number;
  if (sk.srttUs) {
    rttUs = Math.max(Math.floor(sk.srttUs / 8), 1);
    b.hasSeenRtt = true;
  } else {
    rttUs = 1000;
  }
  const bw = Math.floor((sk.sndCwnd * BW_UNIT) / rttUs);
  sk.pacingRate = bbrBwToPacingRate(sk, bw, bbrHighGain);
}

/** bbr_set_pacing_rate: until the pipe is full the rate only goes up. */
function bbrSetPacingRate(sk: TcpSock, b: Bbr, bw: number, gain: number): void {
  const rate = bbrBwToPacingRate(sk, bw, gain);
  if (!b.hasSeenRtt && sk.srttUs) bbrInitPacingRateFromRtt(sk, b);
  if (b.fullBwReached || rate > sk.pacingRate) sk.pacingRate = rate;
}

/** bbr_min_tso_segs: one segment per TSO packet below 1.2 Mbit/s. */
function bbrMinTsoSegs(sk: TcpSock): number {
  return sk.pacingRate < bbrMinTsoRate >> 3 ? 1 : 2;
}

/** bbr_tso_segs_goal: tcp_tso_autosize's size without the short-RTT bonus. */
function bbrTsoSegsGoal(sk: TcpSock): number {
  const bytes = Math.min(Math.floor(sk.pacingRate / 2 ** sk.pacingShift), GSO_MAX_SIZE - 1 - MAX_TCP_HEADER);
  const segs = Math.max(Math.floor(bytes / sk.mssCache), bbrMinTsoSegs(sk));
  return Math.min(segs, 0x7f);
}

/** bbr_save_cwnd: the last good cwnd, to restore after recovery or PROBE_RTT. */
function bbrSaveCwnd(sk: TcpSock, b: Bbr): void {
  if (b.prevCaState < TCP_CA_Recovery && b.mode !== BBR_PROBE_RTT) b.priorCwnd = sk.sndCwnd;
  else b.priorCwnd = Math.max(b.priorCwnd, sk.sndCwnd);
}

/** bbr_cwnd_event: restarting from idle, app-limited: pace at the estimate, no faster. */
function bbrCwndEvent(sk: TcpSock, ev: number, now: number, random: Random): void {
  const b = bbr(sk);
  if (ev === CA_EVENT_TX_START && sk.appLimited) {
    b.idleRestart = true;
    b.ackEpochMstamp = now * 1000;
    b.ackEpochAcked = 0;
    if (b.mode === BBR_PROBE_BW) bbrSetPacingRate(sk, b, bbrBw(b), BBR_UNIT);
    else if (b.mode === BBR_PROBE_RTT) bbrCheckProbeRttDone(sk, b, now, random);
  }
}

/** bbr_bdp: ceil(bw x min_rtt x gain), in packets; the initial cwnd before any RTT sample. */
function bbrBdp(b: Bbr, bw: number, gain: number): number {
  if (b.minRttUs === 0xffffffff) return TCP_INIT_CWND;
  const w = bw * b.minRttUs;
  return Math.floor((Math.floor((w * gain) / BBR_UNIT) + BW_UNIT - 1) / BW_UNIT);
}

/** bbr_quantization_budget: room for TSO packets at both ends, an even cwnd, and PROBE_BW's probe. */
function bbrQuantizationBudget(sk: TcpSock, b: Bbr, cwnd: number): number {
  cwnd += 3 * bbrTsoSegsGoal(sk);
  cwnd = (cwnd + 1) & ~1;
  if (b.mode === BBR_PROBE_BW && b.cycleIdx === 0) cwnd += 2;
  return cwnd;
}

/** bbr_inflight: the in-flight target for a bandwidth and gain. */
function bbrInflight(sk: TcpSock, b: Bbr, bw: number, gain: number): number {
  return bbrQuantizationBudget(sk, b, bbrBdp(b, bw, gain));
}

/**
 * bbr_packets_in_net_at_edt: what will still be in the network when the
 * next skb departs (its departure time may be ahead, pacing): in flight now,
 * less what the bandwidth delivers by then, plus the skb when probing up.
 */
function bbrPacketsInNetAtEdt(sk: TcpSock, b: Bbr, inflightNow: number, now: number): number {
  const nowNs = Math.round(now * 1e6);
  const edtNs = Math.max(sk.wstampNs, nowNs);
  const intervalUs = Math.floor((edtNs - nowNs) / 1000);
  const intervalDelivered = Math.floor((bbrBw(b) * intervalUs) / BW_UNIT);
  let inflightAtEdt = inflightNow;
  if (b.pacingGain > BBR_UNIT) inflightAtEdt += bbrTsoSegsGoal(sk);
  if (intervalDelivered >= inflightAtEdt) return 0;
  return inflightAtEdt - intervalDelivered;
}

/** bbr_ack_aggregation_cwnd: extra cwnd for ACK aggregation, at most 100 ms at the bandwidth. */
function bbrAckAggregationCwnd(b: Bbr): number {
  if (!bbrExtraAckedGain || !b.fullBwReached) return 0;
  const maxAggrCwnd = Math.floor((bbrBw(b) * bbrExtraAckedMaxUs) / BW_UNIT);
  const aggrCwnd = Math.floor((bbrExtraAckedGain * bbrExtraAcked(b)) / BBR_UNIT);
  return Math.min(aggrCwnd, maxAggrCwnd);
}

/**
 * bbr_set_cwnd_to_recover_or_restore: losses come off the cwnd; the first
 * round of recovery is packet conservation (send what is acked); leaving
 * recovery restores the cwnd from before it. Returns the cwnd, negated
 * (less one) when packet conservation decides it alone.
 */
function bbrSetCwndToRecoverOrRestore(sk: TcpSock, b: Bbr, rs: RateSample, acked: number): number {
  const prevState = b.prevCaState;
  const state = sk.caState;
  let cwnd = sk.sndCwnd;
  if (rs.losses > 0) cwnd = Math.max(cwnd - rs.losses, 1);
  if (state === TCP_CA_Recovery && prevState !== TCP_CA_Recovery) {
    b.packetConservation = true;
    b.nextRttDelivered = sk.delivered; // the round starts now
    // Cut what the cwnd held unused (application, TSO deferral).
    cwnd = inFlight(sk) + acked;
  } else if (prevState >= TCP_CA_Recovery && state < TCP_CA_Recovery) {
    cwnd = Math.max(cwnd, b.priorCwnd);
    b.packetConservation = false;
  }
  b.prevCaState = state;
  if (b.packetConservation) return -1 - Math.max(cwnd, inFlight(sk) + acked);
  return cwnd;
}

/** bbr_set_cwnd: slow-start toward the target (bdp x gain plus budgets), or cut to it once the pipe is full. */
function bbrSetCwnd(sk: TcpSock, b: Bbr, rs: RateSample, acked: number, bw: number, gain: number): void {
  let cwnd = sk.sndCwnd;
  if (acked) {
    const c = bbrSetCwndToRecoverOrRestore(sk, b, rs, acked);
    if (c < 0) {
      cwnd = -1 - c;
    } else {
      cwnd = c;
      let targetCwnd = bbrBdp(b, bw, gain);
      targetCwnd += bbrAckAggregationCwnd(b);
      targetCwnd = bbrQuantizationBudget(sk, b, targetCwnd);
      if (b.fullBwReached) cwnd = Math.min(cwnd + acked, targetCwnd);
      else if (cwnd < targetCwnd || sk.delivered < TCP_INIT_CWND) cwnd += acked;
      cwnd = Math.max(cwnd, bbrCwndMinTarget);
    }
  }
  sk.sndCwnd = cwnd;
  if (b.mode === BBR_PROBE_RTT) sk.sndCwnd = Math.min(sk.sndCwnd, bbrCwndMinTarget);
}

/** bbr_is_next_cycle_phase: a phase lasts a min RTT; probing also until in flight reaches its target, draining until it is down to the BDP. */
function bbrIsNextCyclePhase(sk: TcpSock, b: Bbr, rs: RateSample, now: number): boolean {
  const isFullLength = sk.deliveredMstamp * 1000 - b.cycleMstamp > b.minRttUs;
  if (b.pacingGain === BBR_UNIT) return isFullLength;
  const inflight = bbrPacketsInNetAtEdt(sk, b, rs.priorInFlight, now);
  const bw = bbrMaxBw(b);
  if (b.pacingGain > BBR_UNIT) return isFullLength && (rs.losses > 0 || inflight >= bbrInflight(sk, b, bw, b.pacingGain));
  return isFullLength || inflight <= bbrInflight(sk, b, bw, BBR_UNIT);
}

function bbrAdvanceCyclePhase(sk: TcpSock, b: Bbr): void {
  b.cycleIdx = (b.cycleIdx + 1) & (CYCLE_LEN - 1);
  b.cycleMstamp = sk.deliveredMstamp * 1000;
}

/** bbr_reset_probe_bw_mode: PROBE_BW from a random phase (the drain phase never comes first). */
function bbrResetProbeBwMode(sk: TcpSock, b: Bbr, random: Random): void {
  b.mode = BBR_PROBE_BW;
  b.cycleIdx = CYCLE_LEN - 1 - (random.u32() % bbrCycleRand);
  bbrAdvanceCyclePhase(sk, b);
}

function bbrResetMode(sk: TcpSock, b: Bbr, random: Random): void {
  if (!b.fullBwReached) b.mode = BBR_STARTUP;
  else bbrResetProbeBwMode(sk, b, random);
}

/** bbr_reset_lt_bw_sampling_interval. */
function bbrResetLtBwSamplingInterval(sk: TcpSock, b: Bbr): void {
  b.ltLastStamp = Math.floor(sk.deliveredMstamp);
  b.ltLastDelivered = sk.delivered;
  b.ltLastLost = sk.lost;
  b.ltRttCnt = 0;
}

/** bbr_reset_lt_bw_sampling. */
function bbrResetLtBwSampling(sk: TcpSock, b: Bbr): void {
  b.ltBw = 0;
  b.ltUseBw = false;
  b.ltIsSampling = false;
  bbrResetLtBwSamplingInterval(sk, b);
}

/** bbr_lt_bw_interval_done: two intervals at about the same rate: policed; pace at their mean. */
function bbrLtBwIntervalDone(sk: TcpSock, b: Bbr, bw: number): void {
  if (b.ltBw) {
    const diff = Math.abs(bw - b.ltBw);
    if (diff * BBR_UNIT <= bbrLtBwRatio * b.ltBw || bbrRateBytesPerSec(sk, diff, BBR_UNIT) <= bbrLtBwDiff) {
      b.ltBw = Math.floor((bw + b.ltBw) / 2);
      b.ltUseBw = true;
      b.pacingGain = BBR_UNIT;
      b.ltRttCnt = 0;
      return;
    }
  }
  b.ltBw = bw;
  bbrResetLtBwSamplingInterval(sk, b);
}

/**
 * bbr_lt_bw_sampling: from the first loss, measure the delivery rate over
 * intervals of 4 to 16 rounds ending at a loss; a lossy interval (20%) is
 * a sample of a policer's rate.
 */
function bbrLtBwSampling(sk: TcpSock, b: Bbr, rs: RateSample, random: Random): void {
  if (b.ltUseBw) {
    if (b.mode === BBR_PROBE_BW && b.roundStart && ++b.ltRttCnt >= bbrLtBwMaxRtts) {
      bbrResetLtBwSampling(sk, b);
      bbrResetProbeBwMode(sk, b, random);
    }
    return;
  }
  if (!b.ltIsSampling) {
    if (!rs.losses) return;
    bbrResetLtBwSamplingInterval(sk, b);
    b.ltIsSampling = true;
  }
  if (rs.isAppLimited) {
    bbrResetLtBwSampling(sk, b);
    return;
  }
  if (b.roundStart) b.ltRttCnt++;
  if (b.ltRttCnt < bbrLtIntvlMinRtts) return;
  if (b.ltRttCnt > 4 * bbrLtIntvlMinRtts) {
    bbrResetLtBwSampling(sk, b);
    return;
  }
  if (!rs.losses) return;
  const lost = (sk.lost - b.ltLastLost) >>> 0;
  const delivered = (sk.delivered - b.ltLastDelivered) >>> 0;
  if (!delivered || lost * BBR_UNIT < bbrLtLossThresh * delivered) return;
  let t = Math.floor(sk.deliveredMstamp) - b.ltLastStamp;
  if (t < 1) return;
  if (t >= 0xffffffff / 1000) {
    bbrResetLtBwSampling(sk, b);
    return;
  }
  t *= 1000;
  bbrLtBwIntervalDone(sk, b, Math.floor((delivered * BW_UNIT) / t));
}

/** bbr_update_bw: count rounds, and feed the max filter (app-limited samples only when they raise it). */
function bbrUpdateBw(sk: TcpSock, b: Bbr, rs: RateSample, random: Random): void {
  b.roundStart = false;
  if (rs.delivered < 0 || rs.intervalUs <= 0) return;
  if (!before(rs.priorDelivered, b.nextRttDelivered)) {
    b.nextRttDelivered = sk.delivered;
    b.rttCnt++;
    b.roundStart = true;
    b.packetConservation = false;
  }
  bbrLtBwSampling(sk, b, rs, random);
  const bw = Math.floor((rs.delivered * BW_UNIT) / Math.floor(rs.intervalUs));
  if (!rs.isAppLimited || bw >= bbrMaxBw(b)) b.bw.runningMax(bbrBwRtts, b.rttCnt, bw);
}

/**
 * bbr_update_ack_aggregation: how much more was (S)ACKed in this epoch
 * than the bandwidth explains; the maximum over 5-10 rounds is cwnd the
 * sender needs to keep sending through ACK silences.
 */
function bbrUpdateAckAggregation(sk: TcpSock, b: Bbr, rs: RateSample): void {
  if (!bbrExtraAckedGain || rs.ackedSacked <= 0 || rs.delivered < 0 || rs.intervalUs <= 0) return;
  if (b.roundStart) {
    b.extraAckedWinRtts = Math.min(0x1f, b.extraAckedWinRtts + 1);
    if (b.extraAckedWinRtts >= bbrExtraAckedWinRtts) {
      b.extraAckedWinRtts = 0;
      b.extraAckedWinIdx = b.extraAckedWinIdx ? 0 : 1;
      if (b.extraAckedWinIdx) b.extraAcked1 = 0;
      else b.extraAcked0 = 0;
    }
  }
  const epochUs = Math.floor(sk.deliveredMstamp * 1000 - b.ackEpochMstamp);
  let expectedAcked = Math.floor((bbrBw(b) * epochUs) / BW_UNIT);
  if (b.ackEpochAcked <= expectedAcked || b.ackEpochAcked + rs.ackedSacked >= bbrAckEpochAckedResetThresh) {
    b.ackEpochAcked = 0;
    b.ackEpochMstamp = sk.deliveredMstamp * 1000;
    expectedAcked = 0;
  }
  b.ackEpochAcked = Math.min(0xfffff, b.ackEpochAcked + rs.ackedSacked);
  const extraAcked = Math.min(b.ackEpochAcked - expectedAcked, sk.sndCwnd);
  if (b.extraAckedWinIdx) b.extraAcked1 = Math.max(b.extraAcked1, extraAcked);
  else b.extraAcked0 = Math.max(b.extraAcked0, extraAcked);
}

/** bbr_check_full_bw_reached: three rounds (not app-limited) without 25% more bandwidth: the pipe is full. */
function bbrCheckFullBwReached(b: Bbr, rs: RateSample): void {
  if (b.fullBwReached || !b.roundStart || rs.isAppLimited) return;
  const bwThresh = Math.floor((b.fullBw * bbrFullBwThresh) / BBR_UNIT);
  if (bbrMaxBw(b) >= bwThresh) {
    b.fullBw = bbrMaxBw(b);
    b.fullBwCnt = 0;
    return;
  }
  ++b.fullBwCnt;
  b.fullBwReached = b.fullBwCnt >= bbrFullBwCnt;
}

/** bbr_check_drain: STARTUP filled the pipe: DRAIN; drained to the BDP: PROBE_BW. */
function bbrCheckDrain(sk: TcpSock, b: Bbr, random: Random, now: number): void {
  if (b.mode === BBR_STARTUP && b.fullBwReached) {
    b.mode = BBR_DRAIN;
    sk.sndSsthresh = bbrInflight(sk, b, bbrMaxBw(b), BBR_UNIT);
  }
  if (b.mode === BBR_DRAIN && bbrPacketsInNetAtEdt(sk, b, inFlight(sk), now) <= bbrInflight(sk, b, bbrMaxBw(b), BBR_UNIT)) bbrResetProbeBwMode(sk, b, random);
}

/** bbr_check_probe_rtt_done: its time is up: back to the cwnd from before, and to STARTUP or PROBE_BW. */
function bbrCheckProbeRttDone(sk: TcpSock, b: Bbr, now: number, random: Random): void {
  if (!(b.probeRttDoneStamp && after(jiffies(now), b.probeRttDoneStamp))) return;
  b.minRttStamp = jiffies(now);
  sk.sndCwnd = Math.max(sk.sndCwnd, b.priorCwnd);
  bbrResetMode(sk, b, random);
}

/**
 * bbr_update_min_rtt: the 10 s min-RTT filter; when it expires (and the
 * flow is not just back from idle), PROBE_RTT: 4 packets in flight for at
 * least 200 ms and a round, its low-rate samples marked app-limited.
 */
function bbrUpdateMinRtt(sk: TcpSock, b: Bbr, rs: RateSample, now: number, random: Random): void {
  const j = jiffies(now);
  const filterExpired = after(j, (b.minRttStamp + bbrMinRttWinSec * 1000) >>> 0);
  if (rs.rttUs >= 0 && (rs.rttUs <= b.minRttUs || (filterExpired && !rs.isAckDelayed))) {
    b.minRttUs = Math.floor(rs.rttUs);
    b.minRttStamp = j;
  }
  if (bbrProbeRttModeMs > 0 && filterExpired && !b.idleRestart && b.mode !== BBR_PROBE_RTT) {
    b.mode = BBR_PROBE_RTT;
    bbrSaveCwnd(sk, b);
    b.probeRttDoneStamp = 0;
  }
  if (b.mode === BBR_PROBE_RTT) {
    sk.appLimited = (sk.delivered + inFlight(sk)) >>> 0 || 1;
    if (!b.probeRttDoneStamp && inFlight(sk) <= bbrCwndMinTarget) {
      b.probeRttDoneStamp = (j + bbrProbeRttModeMs) >>> 0;
      b.probeRttRoundDone = false;
      b.nextRttDelivered = sk.delivered;
    } else if (b.probeRttDoneStamp) {
      if (b.roundStart) b.probeRttRoundDone = true;
      if (b.probeRttRoundDone) bbrCheckProbeRttDone(sk, b, now, random);
    }
  }
  if (rs.delivered > 0) b.idleRestart = false;
}

/** bbr_update_gains: each mode's pacing and cwnd gains. */
function bbrUpdateGains(b: Bbr): void {
  switch (b.mode) {
    case BBR_STARTUP:
      b.pacingGain = bbrHighGain;
      b.cwndGain = bbrHighGain;
      break;
    case BBR_DRAIN:
      b.pacingGain = bbrDrainGain;
      b.cwndGain = bbrHighGain;
      break;
    case BBR_PROBE_BW:
      b.pacingGain = b.ltUseBw ? BBR_UNIT : bbrPacingGain[b.cycleIdx];
      b.cwndGain = bbrCwndGain;
      break;
    case BBR_PROBE_RTT:
      b.pacingGain = BBR_UNIT;
      b.cwndGain = BBR_UNIT;
      break;
  }
}

/** bbr_main (cong_control): update the model from the sample, then set the pacing rate and the cwnd. */
function bbrMain(sk: TcpSock, rs: RateSample, now: number, random: Random): void {
  const b = bbr(sk);
  bbrUpdateBw(sk, b, rs, random);
  bbrUpdateAckAggregation(sk, b, rs);
  if (b.mode === BBR_PROBE_BW && bbrIsNextCyclePhase(sk, b, rs, now)) bbrAdvanceCyclePhase(sk, b);
  bbrCheckFullBwReached(b, rs);
  bbrCheckDrain(sk, b, random, now);
  bbrUpdateMinRtt(sk, b, rs, now, random);
  bbrUpdateGains(b);
  const bw = bbrBw(b);
  bbrSetPacingRate(sk, b, bw, b.pacingGain);
  bbrSetCwnd(sk, b, rs, rs.ackedSacked, bw, b.cwndGain);
}

/** bbr_init: STARTUP, a pacing rate from the initial cwnd and srtt, and pacing asked for. */
function bbrInit(sk: TcpSock, now: number): void {
  const b = new Bbr();
  sk.caPriv = b;
  sk.sndSsthresh = 0x7fffffff; // TCP_INFINITE_SSTHRESH
  b.minRttUs = tcpMinRtt(sk);
  b.minRttStamp = jiffies(now);
  b.bw.reset(b.rttCnt, 0);
  bbrInitPacingRateFromRtt(sk, b);
  bbrResetLtBwSampling(sk, b);
  b.mode = BBR_STARTUP;
  b.ackEpochMstamp = now * 1000;
  if (sk.pacingStatus === SK_PACING_NONE) sk.pacingStatus = SK_PACING_NEEDED;
}

/** bbr_undo_cwnd: a spurious slow-down: start full-pipe detection and long-term sampling over. */
function bbrUndoCwnd(sk: TcpSock): number {
  const b = bbr(sk);
  b.fullBw = 0;
  b.fullBwCnt = 0;
  bbrResetLtBwSampling(sk, b);
  return sk.sndCwnd;
}

/** bbr_ssthresh: entering recovery, remember the cwnd; ssthresh does not change. */
function bbrSsthresh(sk: TcpSock): number {
  bbrSaveCwnd(sk, bbr(sk));
  return sk.sndSsthresh;
}

/** The sample an RTO feeds long-term sampling (one loss); module-wide, reused. */
const rtoSample = new RateSample();

/** bbr_set_state: an RTO ends the round and counts as a loss for the policer detector. */
function bbrSetState(sk: TcpSock, newState: number, random: Random): void {
  if (newState !== TCP_CA_Loss) return;
  const b = bbr(sk);
  rtoSample.reset();
  rtoSample.losses = 1;
  b.prevCaState = TCP_CA_Loss;
  b.fullBw = 0;
  b.roundStart = true;
  bbrLtBwSampling(sk, b, rtoSample, random);
}

/** bbr_get_info: struct tcp_bbr_info, the bandwidth in bytes per second. */
function bbrGetInfo(sk: TcpSock) {
  const b = bbr(sk);
  return {
    kind: 'bbr' as const,
    bbr: { bw: Math.floor((bbrBw(b) * sk.mssCache * 1_000_000) / BW_UNIT), minRtt: b.minRttUs >>> 0, pacingGain: b.pacingGain, cwndGain: b.cwndGain },
  };
}

/** The mode of a BBR socket (for traces and tests), or -1 for another algorithm. */
export function bbrMode(sk: TcpSock): number {
  return sk.caPriv instanceof Bbr ? sk.caPriv.mode : -1;
}

/** BBR for a stack's registry, drawing its gain-cycle phases from `random`. */
export function tcpBbrCreate(random: Random): TcpCongestionOps {
  return {
    name: 'bbr',
    init: bbrInit,
    congControl: (sk, _ack, _flag, rs, now) => bbrMain(sk, rs, now, random),
    sndbufExpand: () => 3, // BBR may slow-start even in recovery
    undoCwnd: bbrUndoCwnd,
    cwndEvent: (sk, ev, now) => bbrCwndEvent(sk, ev, now, random),
    ssthresh: bbrSsthresh,
    minTsoSegs: bbrMinTsoSegs,
    getInfo: bbrGetInfo,
    setState: (sk, newState) => bbrSetState(sk, newState, random),
  };
}
