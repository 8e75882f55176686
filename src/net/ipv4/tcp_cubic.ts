/**
 * CUBIC with HyStart (net/ipv4/tcp_cubic.c, RFC 9438), Linux's default
 * congestion control, with Linux's module defaults: beta 717/1024, bic_scale
 * 41, fast convergence, TCP friendliness, HyStart with ACK-train and delay
 * detection from a window of 16.
 *
 * Time is the kernel's: jiffies at HZ=1000 (whole milliseconds) for the
 * epoch and the once-per-jiffy update, microseconds for HyStart.
 * The cube root is exact here (Math.cbrt); the kernel's table-plus-Newton
 * approximation differs from it by at most one unit of 1/1024 s in K.
 */
import { after } from '../../lib/seq.js';
import { GSO_MAX_SIZE, TCP_CA_Loss, type AckSample, type TcpCongestionOps, type TcpSock } from './tcp_sock.js';
import { CA_EVENT_TX_START, tcpCongAvoidAi, tcpInSlowStart, tcpIsCwndLimited, tcpSlowStart, renoUndoCwnd } from './tcp_cong.js';

const BICTCP_BETA_SCALE = 1024;
const BICTCP_HZ = 10;
const HZ = 1000;
const HYSTART_ACK_TRAIN = 1;
const HYSTART_DELAY = 2;
const HYSTART_MIN_SAMPLES = 8;
const HYSTART_DELAY_MIN = 4000;
const HYSTART_DELAY_MAX = 16000;

/** The module parameters, with their defaults: one set per stack's CUBIC. */
export class CubicParams {
  fastConvergence = 1;
  beta = 717;
  initialSsthresh = 0;
  bicScale = 41;
  tcpFriendliness = 1;
  hystart = 1;
  hystartDetect = HYSTART_ACK_TRAIN | HYSTART_DELAY;
  hystartLowWindow = 16;
  hystartAckDeltaUs = 2000;
}

/** CUBIC's tcp_congestion_ops, with the parameters its sockets read. */
export interface TcpCubicOps extends TcpCongestionOps {
  readonly params: CubicParams;
}

// Derived from the default beta and bic_scale once, as cubictcp_register does at module load:
// a parameter written later changes what reads it directly, not these.
const DEFAULTS = new CubicParams();
const betaScale = Math.floor((8 * (BICTCP_BETA_SCALE + DEFAULTS.beta)) / 3 / (BICTCP_BETA_SCALE - DEFAULTS.beta));
const cubeRttScale = DEFAULTS.bicScale * 10;
const cubeFactor = Math.floor(2 ** (10 + 3 * BICTCP_HZ) / (DEFAULTS.bicScale * 10));
const TWO_POW_40 = 2 ** (10 + 3 * BICTCP_HZ);

/** struct bictcp: per-socket CUBIC state. */
export class BicTcp {
  cnt = 0;
  lastMaxCwnd = 0;
  lastCwnd = 0;
  lastTime = 0;
  bicOriginPoint = 0;
  bicK = 0;
  delayMin = 0;
  epochStart = 0;
  ackCnt = 0;
  tcpCwnd = 0;
  sampleCnt = 0;
  found = 0;
  roundStart = 0;
  endSeq = 0;
  lastAck = 0;
  currRtt = 0;

  /** bictcp_reset: everything but the HyStart round. */
  reset(): void {
    this.cnt = 0;
    this.lastMaxCwnd = 0;
    this.lastCwnd = 0;
    this.lastTime = 0;
    this.bicOriginPoint = 0;
    this.bicK = 0;
    this.delayMin = 0;
    this.epochStart = 0;
    this.ackCnt = 0;
    this.tcpCwnd = 0;
    this.found = 0;
  }
}

const jiffies = (now: number): number => Math.floor(now) >>> 0;
const clockUs = (now: number): number => Math.floor(now * 1000) >>> 0;

/** The parameters of the CUBIC instance the socket runs. */
function params(sk: TcpSock): CubicParams {
  return (sk.caOps as TcpCubicOps).params;
}

function ca(sk: TcpSock): BicTcp {
  return sk.caPriv as BicTcp;
}

/** bictcp_hystart_reset: a new round starts at snd_nxt. */
function hystartReset(sk: TcpSock, c: BicTcp, now: number): void {
  c.roundStart = c.lastAck = clockUs(now);
  c.endSeq = sk.sndNxt;
  c.currRtt = 0xffffffff;
  c.sampleCnt = 0;
}

function cubicInit(sk: TcpSock, now: number): void {
  const c = new BicTcp();
  sk.caPriv = c;
  c.reset();
  const p = params(sk);
  if (p.hystart) hystartReset(sk, c, now);
  if (!p.hystart && p.initialSsthresh) sk.sndSsthresh = p.initialSsthresh;
}

function cubicCwndEvent(sk: TcpSock, ev: number, now: number): void {
  if (ev !== CA_EVENT_TX_START) return;
  const c = ca(sk);
  const j = jiffies(now);
  const delta = (j - jiffies(sk.lsndtime)) | 0;
  // Idle (application-limited) for a while: shift the epoch so the cubic curve continues where it was.
  if (c.epochStart && delta > 0) {
    c.epochStart = (c.epochStart + delta) >>> 0;
    if (after(c.epochStart, j)) c.epochStart = j;
  }
}

/** bictcp_update: the ACK count per cwnd increment (ca->cnt) from the cubic function. */
function bictcpUpdate(p: CubicParams, c: BicTcp, cwnd: number, acked: number, now: number): void {
  const j = jiffies(now);
  c.ackCnt += acked;
  if (c.lastCwnd === cwnd && ((j - c.lastTime) | 0) <= HZ / 32) return;
  // At most one recomputation per jiffy; reductions zero epoch_start to force one.
  if (!(c.epochStart && j === c.lastTime)) {
    c.lastCwnd = cwnd;
    c.lastTime = j;
    if (c.epochStart === 0) {
      c.epochStart = j;
      c.ackCnt = acked;
      c.tcpCwnd = cwnd;
      if (c.lastMaxCwnd <= cwnd) {
        c.bicK = 0;
        c.bicOriginPoint = cwnd;
      } else {
        c.bicK = Math.floor(Math.cbrt(cubeFactor * (c.lastMaxCwnd - cwnd)));
        c.bicOriginPoint = c.lastMaxCwnd;
      }
    }
    // t in 1/1024 s since the epoch, plus the minimum delay (the curve is an RTT ahead).
    let t = ((j - c.epochStart) | 0) + Math.ceil(c.delayMin / 1000);
    t = Math.floor((t * 2 ** BICTCP_HZ) / HZ);
    const offs = t < c.bicK ? c.bicK - t : t - c.bicK;
    const delta = Math.floor((cubeRttScale * offs * offs * offs) / TWO_POW_40);
    const bicTarget = t < c.bicK ? c.bicOriginPoint - delta : c.bicOriginPoint + delta;
    if (bicTarget > cwnd) c.cnt = Math.floor(cwnd / (bicTarget - cwnd));
    else c.cnt = 100 * cwnd;
    // Unknown bandwidth at the start: at least 5% growth per RTT.
    if (c.lastMaxCwnd === 0 && c.cnt > 20) c.cnt = 20;
  }
  // TCP friendliness: never slower than Reno with the same beta would be.
  if (p.tcpFriendliness) {
    const delta = (cwnd * betaScale) >> 3;
    while (c.ackCnt > delta) {
      c.ackCnt -= delta;
      c.tcpCwnd++;
    }
    if (c.tcpCwnd > cwnd) {
      const maxCnt = Math.floor(cwnd / (c.tcpCwnd - cwnd));
      if (c.cnt > maxCnt) c.cnt = maxCnt;
    }
  }
  // At most 1.5x per RTT.
  c.cnt = Math.max(c.cnt, 2);
}

function cubicCongAvoid(sk: TcpSock, _ack: number, acked: number, now: number): void {
  if (!tcpIsCwndLimited(sk)) return;
  if (tcpInSlowStart(sk)) {
    acked = tcpSlowStart(sk, acked);
    if (!acked) return;
  }
  const c = ca(sk);
  bictcpUpdate(params(sk), c, sk.sndCwnd, acked, now);
  tcpCongAvoidAi(sk, c.cnt, acked);
}

/** cubictcp_recalc_ssthresh: end the epoch, remember W_max (with fast convergence), cwnd * beta. */
function cubicSsthresh(sk: TcpSock): number {
  const c = ca(sk);
  const p = params(sk);
  c.epochStart = 0;
  if (sk.sndCwnd < c.lastMaxCwnd && p.fastConvergence) {
    c.lastMaxCwnd = Math.floor((sk.sndCwnd * (BICTCP_BETA_SCALE + p.beta)) / (2 * BICTCP_BETA_SCALE));
  } else {
    c.lastMaxCwnd = sk.sndCwnd;
  }
  return Math.max(Math.floor((sk.sndCwnd * p.beta) / BICTCP_BETA_SCALE), 2);
}

function cubicSetState(sk: TcpSock, newState: number, now: number): void {
  if (newState === TCP_CA_Loss) {
    const c = ca(sk);
    c.reset();
    hystartReset(sk, c, now);
  }
}

/** hystart_ack_delay: the ACK-train slack pacing adds (gso_max_size*4 at the pacing rate), at most 1 ms. */
function hystartAckDelayUs(sk: TcpSock): number {
  if (!sk.srttUs) return 0;
  const ratio = sk.sndCwnd < sk.sndSsthresh / 2 ? 2 : 1.2;
  const rate = (sk.mssCache * Math.max(sk.sndCwnd, sk.packetsOut) * ratio * 8e6) / sk.srttUs;
  if (!rate) return 0;
  return Math.min(1000, Math.floor((GSO_MAX_SIZE * 4 * 1e6) / rate));
}

function hystartUpdate(sk: TcpSock, c: BicTcp, delay: number, now: number): void {
  const p = params(sk);
  if (after(sk.sndUna, c.endSeq)) hystartReset(sk, c, now);
  if (sk.sndCwnd < p.hystartLowWindow) return;
  if (p.hystartDetect & HYSTART_ACK_TRAIN) {
    const t = clockUs(now);
    // ACKs arriving closely spaced form a train; a train longer than half the min delay means the pipe is full.
    if (((t - c.lastAck) | 0) <= p.hystartAckDeltaUs) {
      c.lastAck = t;
      // No pacing (no fq qdisc): half the delay (sk_pacing_status == SK_PACING_NONE).
      const threshold = (c.delayMin + hystartAckDelayUs(sk)) >>> 1;
      if (((t - c.roundStart) | 0) > threshold) {
        c.found = 1;
        sk.hystartTrainDetect++;
        sk.sndSsthresh = sk.sndCwnd;
      }
    }
  }
  if (p.hystartDetect & HYSTART_DELAY) {
    if (c.currRtt > delay) c.currRtt = delay;
    if (c.sampleCnt < HYSTART_MIN_SAMPLES) {
      c.sampleCnt++;
    } else {
      const thresh = Math.min(Math.max(c.delayMin >>> 3, HYSTART_DELAY_MIN), HYSTART_DELAY_MAX);
      if (c.currRtt > c.delayMin + thresh) {
        c.found = 1;
        sk.hystartDelayDetect++;
        sk.sndSsthresh = sk.sndCwnd;
      }
    }
  }
}

function cubicPktsAcked(sk: TcpSock, sample: AckSample, now: number): void {
  if (sample.rttUs < 0) return;
  const c = ca(sk);
  // Delay samples right after a reduction are distorted by the recovery: skip a second's worth.
  if (c.epochStart && ((jiffies(now) - c.epochStart) | 0) < HZ) return;
  const delay = sample.rttUs || 1;
  if (c.delayMin === 0 || c.delayMin > delay) c.delayMin = delay;
  if (!c.found && tcpInSlowStart(sk) && params(sk).hystart) hystartUpdate(sk, c, delay, now);
}

/** A CUBIC of its own for a stack's registry (cubictcp), with default parameters. */
export function tcpCubicCreate(): TcpCubicOps {
  return {
    name: 'cubic',
    params: new CubicParams(),
    init: cubicInit,
    ssthresh: cubicSsthresh,
    congAvoid: cubicCongAvoid,
    setState: cubicSetState,
    cwndEvent: cubicCwndEvent,
    pktsAcked: cubicPktsAcked,
    undoCwnd: renoUndoCwnd,
  };
}
