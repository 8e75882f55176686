/**
 * Congestion control (net/ipv4/tcp_cong.c): the tcp_congestion_ops
 * interface, the registry of algorithms by name (what TCP_CONGESTION and
 * net.ipv4.tcp_congestion_control select), Reno, and the shared helpers
 * (slow start, additive increase, ca events, state changes). CUBIC lives
 * in tcp_cubic.ts.
 */
import { EEXIST, EINVAL } from '../../uapi.js';
import { FLAG_ECE, FLAG_WIN_UPDATE } from './tcp_skb_cb.js';
import { TCP_CA_CWR, TCP_ECN_OK, TCP_ECN_QUEUE_CWR, type TcpCongestionOps, type TcpSock } from './tcp_sock.js';

/** TCP_CA_NAME_MAX: an algorithm's name with its NUL (TCP_CONGESTION's room). */
export const TCP_CA_NAME_MAX = 16;

// enum tcp_ca_event.
export const CA_EVENT_TX_START = 0;
export const CA_EVENT_CWND_RESTART = 1;
export const CA_EVENT_COMPLETE_CWR = 2;
export const CA_EVENT_LOSS = 3;
export const CA_EVENT_ECN_NO_CE = 4;
export const CA_EVENT_ECN_IS_CE = 5;

// enum tcp_ca_ack_event_flags (in_ack_event).
export const CA_ACK_SLOWPATH = 1;
export const CA_ACK_WIN_UPDATE = 2;
export const CA_ACK_ECE = 4;

/** tcp_in_slow_start. */
export function tcpInSlowStart(sk: TcpSock): boolean {
  return sk.sndCwnd < sk.sndSsthresh;
}

/** tcp_is_cwnd_limited: grow only when the window, not the application, was the limit. */
export function tcpIsCwndLimited(sk: TcpSock): boolean {
  // In slow start, make sure the cwnd grows to twice what was in flight.
  if (tcpInSlowStart(sk)) return sk.sndCwnd < 2 * sk.maxPacketsOut;
  return sk.isCwndLimited;
}

/** tcp_slow_start: one segment per segment acked, up to ssthresh; returns the acks left over. */
export function tcpSlowStart(sk: TcpSock, acked: number): number {
  const cwnd = Math.min(sk.sndCwnd + acked, sk.sndSsthresh);
  acked -= cwnd - sk.sndCwnd;
  sk.sndCwnd = cwnd;
  return acked;
}

/** tcp_cong_avoid_ai: one segment per `w` segments acked. */
export function tcpCongAvoidAi(sk: TcpSock, w: number, acked: number): void {
  if (sk.sndCwndCnt >= w) {
    sk.sndCwndCnt = 0;
    sk.sndCwnd++;
  }
  sk.sndCwndCnt += acked;
  if (sk.sndCwndCnt >= w) {
    const delta = Math.floor(sk.sndCwndCnt / w);
    sk.sndCwndCnt -= delta * w;
    sk.sndCwnd += delta;
  }
}

/** tcp_reno_cong_avoid. */
export function renoCongAvoid(sk: TcpSock, _ack: number, acked: number): void {
  if (!tcpIsCwndLimited(sk)) return;
  if (tcpInSlowStart(sk)) {
    acked = tcpSlowStart(sk, acked);
    if (!acked) return;
  }
  tcpCongAvoidAi(sk, sk.sndCwnd, acked);
}

/** tcp_reno_ssthresh: half the window, at least two segments. */
export function renoSsthresh(sk: TcpSock): number {
  return Math.max(sk.sndCwnd >> 1, 2);
}

/** tcp_reno_undo_cwnd. */
export function renoUndoCwnd(sk: TcpSock): number {
  return Math.max(sk.sndCwnd, sk.priorCwnd);
}

export const tcpReno: TcpCongestionOps = {
  name: 'reno',
  ssthresh: renoSsthresh,
  congAvoid: renoCongAvoid,
  undoCwnd: renoUndoCwnd,
};

/** A refused registration: the errno Linux returns, and why (what it would pr_err). */
export class TcpCongError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * tcp_validate_congestion_control: why `ops` cannot be registered, or null.
 * A name that fits TCP_CONGESTION, the two required hooks, and exactly one
 * of congAvoid and congControl.
 */
export function tcpValidateCongestionControl(ops: TcpCongestionOps): string | null {
  if (typeof ops.name !== 'string' || !/^[\x21-\x7e]+$/.test(ops.name)) return 'the name must be printable ASCII without spaces';
  if (ops.name.length > TCP_CA_NAME_MAX - 1) return `the name "${ops.name}" is longer than ${TCP_CA_NAME_MAX - 1} characters`;
  if (typeof ops.ssthresh !== 'function' || typeof ops.undoCwnd !== 'function') return `${ops.name} does not implement required ops (ssthresh and undoCwnd)`;
  const avoid = typeof ops.congAvoid === 'function';
  if (avoid === (typeof ops.congControl === 'function')) return `${ops.name} must implement exactly one of congAvoid and congControl`;
  return null;
}

/**
 * The congestion controls a stack offers, by name (tcp_cong_list): what
 * TCP_CONGESTION and net.ipv4.tcp_congestion_control select. Each stack
 * has its own, so an algorithm's parameters are the stack's.
 */
export class TcpCongRegistry {
  readonly #ops = new Map<string, TcpCongestionOps>();
  /** What a socket gets when the configured default is not registered. */
  fallback: TcpCongestionOps = tcpReno;

  constructor() {
    this.register(tcpReno);
  }

  /** tcp_register_congestion_control: throws a TcpCongError (EINVAL, EEXIST) if refused. */
  register(ops: TcpCongestionOps): void {
    const why = tcpValidateCongestionControl(ops);
    if (why) throw new TcpCongError(EINVAL, why);
    if (this.#ops.has(ops.name)) throw new TcpCongError(EEXIST, `${ops.name} already registered`);
    this.#ops.set(ops.name, ops);
  }

  /** tcp_unregister_congestion_control: sockets still using it are the caller's to check. */
  unregister(ops: TcpCongestionOps): boolean {
    if (this.#ops.get(ops.name) !== ops || ops === this.fallback) return false;
    this.#ops.delete(ops.name);
    return true;
  }

  /** tcp_ca_find: an algorithm by name, or undefined. */
  find(name: string): TcpCongestionOps | undefined {
    return this.#ops.get(name);
  }

  /** Every algorithm, in registration order. */
  list(): TcpCongestionOps[] {
    return [...this.#ops.values()];
  }

  /** net.ipv4.tcp_available_congestion_control: the names, space-separated, in registration order. */
  available(): string {
    return [...this.#ops.keys()].join(' ');
  }
}

/** tcp_ca_event. */
export function tcpCaEvent(sk: TcpSock, ev: number, now: number): void {
  sk.caOps.cwndEvent?.(sk, ev, now);
}

/** tcp_in_ack_event: every ACK here takes Linux's slow path (there is no header prediction). */
export function tcpInAckEvent(sk: TcpSock, flag: number, now: number): void {
  const ops = sk.caOps;
  if (!ops.inAckEvent) return;
  let ev = CA_ACK_SLOWPATH;
  if (flag & FLAG_WIN_UPDATE) ev |= CA_ACK_WIN_UPDATE;
  if (flag & FLAG_ECE) ev |= CA_ACK_ECE;
  ops.inAckEvent(sk, ev, now);
}

/** tcp_set_ca_state: tell the algorithm, then switch. */
export function tcpSetCaState(sk: TcpSock, state: number, now: number): void {
  sk.caOps.setState?.(sk, state, now);
  sk.caState = state;
}

/** tcp_cleanup_congestion_control: the algorithm lets go of the socket's state (destroy, or a switch). */
export function tcpCleanupCongestionControl(sk: TcpSock): void {
  if (sk.caInitialized) sk.caOps.release?.(sk);
  sk.caInitialized = false;
  sk.caPriv = null;
}

/**
 * tcp_init_congestion_control / tcp_reinit_congestion_control: attach `ops`
 * and initialise it, releasing what the previous initialisation set up
 * (the same algorithm again at establishment, or another on TCP_CONGESTION).
 */
export function tcpInitCongestionControl(sk: TcpSock, ops: TcpCongestionOps, now: number): void {
  tcpCleanupCongestionControl(sk);
  sk.caOps = ops;
  ops.init?.(sk, now);
  sk.caInitialized = true;
}

/** tcp_ecn_queue_cwr: the next new data segment carries CWR. */
export function tcpEcnQueueCwr(sk: TcpSock): void {
  if (sk.ecnFlags & TCP_ECN_OK) sk.ecnFlags |= TCP_ECN_QUEUE_CWR;
}

/** tcp_init_cwnd_reduction: start a reduction (PRR) to the algorithm's ssthresh. */
export function tcpInitCwndReduction(_tcp: { now(): number }, sk: TcpSock): void {
  sk.highSeq = sk.sndNxt;
  sk.tlpHighSeq = 0;
  sk.sndCwndCnt = 0;
  sk.priorCwnd = sk.sndCwnd;
  sk.prrDelivered = 0;
  sk.prrOut = 0;
  sk.sndSsthresh = sk.caOps.ssthresh(sk);
  tcpEcnQueueCwr(sk);
}

/** tcp_enter_cwr: reduce without loss (ECN, local congestion such as a qdisc drop); no undo. */
export function tcpEnterCwr(tcp: { now(): number }, sk: TcpSock): void {
  sk.priorSsthresh = 0;
  if (sk.caState < TCP_CA_CWR) {
    sk.undoMarker = 0;
    tcpInitCwndReduction(tcp, sk);
    tcpSetCaState(sk, TCP_CA_CWR, tcp.now());
  }
}
