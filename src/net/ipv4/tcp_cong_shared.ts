/**
 * What the daemon (tcp_cong_module.ts) and a module's worker
 * (tcp_cong_worker.ts) agree on: the layout of the shared memory one call
 * goes through, the hooks by number, and the constants a module sees.
 */

/** Int32 slots at the start of the shared memory. */
export const CC_CTL = {
  /** The daemon's call number (bumped per call); the worker waits on it. */
  REQ: 0,
  /** The last call number the worker finished; the daemon waits on it. */
  DONE: 1,
  OP: 2,
  SOCK: 3,
  STATUS: 4,
  /** Bytes of text (an error, or getInfo's JSON) in the text area. */
  TEXT: 5,
  SIZE: 8,
} as const;

/** The hooks, by number: CC_HOOKS[op] is the module's property name. */
export const CC_OP = {
  INIT: 0,
  RELEASE: 1,
  SSTHRESH: 2,
  CONG_AVOID: 3,
  CONG_CONTROL: 4,
  SET_STATE: 5,
  CWND_EVENT: 6,
  PKTS_ACKED: 7,
  UNDO_CWND: 8,
  GET_INFO: 9,
  /** Forget a socket's private object without running the module (after a fault). */
  DROP: 10,
} as const;
export const CC_HOOKS = ['init', 'release', 'ssthresh', 'congAvoid', 'congControl', 'setState', 'cwndEvent', 'pktsAcked', 'undoCwnd', 'getInfo'] as const;

/** The worker's answer. */
export const CC_ST = {
  OK: 0,
  THREW: 1,
  /** A result or a field the module set is not a number (the text says which). */
  NOT_NUMBER: 2,
} as const;

/**
 * Float64 slots: what the module reads (sk.* for the first SK_END, the
 * hook's arguments, rs.* for congControl), then what it may set. Times in
 * microseconds, counts in segments, rates in bytes per second.
 */
export const CC_IN = {
  NOW_US: 0,
  CWND: 1,
  SSTHRESH: 2,
  PACING_RATE: 3,
  MSS: 4,
  SRTT_US: 5,
  RTTVAR_US: 6,
  MIN_RTT_US: 7,
  IN_FLIGHT: 8,
  PACKETS_OUT: 9,
  DELIVERED: 10,
  LOST: 11,
  CA_STATE: 12,
  CWND_LIMITED: 13,
  APP_LIMITED: 14,
  PRIOR_CWND: 15,
  SK_END: 16,
  RS_START: 16,
  RS_DELIVERED: 16,
  RS_INTERVAL_US: 17,
  RS_RTT_US: 18,
  RS_LOSSES: 19,
  RS_ACKED_SACKED: 20,
  RS_PRIOR_IN_FLIGHT: 21,
  RS_IS_RETRANS: 22,
  RS_END: 23,
  ARG0: 24,
  ARG1: 25,
  ARG2: 26,
} as const;

/** The property names of the CC_IN slots, as the module sees them on `sk` and `rs`. */
export const CC_IN_NAMES: readonly string[] = [
  'nowUs', 'cwnd', 'ssthresh', 'pacingRate', 'mss', 'srttUs', 'rttvarUs', 'minRttUs', 'inFlight', 'packetsOut', 'delivered', 'lost', 'caState', 'cwndLimited', 'appLimited', 'priorCwnd',
  'delivered', 'intervalUs', 'rttUs', 'losses', 'ackedSacked', 'priorInFlight', 'isRetrans',
];

export const CC_OUT = {
  CWND: 32,
  SSTHRESH: 33,
  PACING_RATE: 34,
  RET: 35,
  END: 36,
} as const;

export const CC_F64_OFF = 64;
export const CC_TEXT_OFF = CC_F64_OFF + CC_OUT.END * 8;
export const CC_TEXT_LEN = 4096;
export const CC_SAB_SIZE = CC_TEXT_OFF + CC_TEXT_LEN;

/** The module's top-level code must finish within this (a vm timeout in the worker). */
export const CC_LOAD_TIMEOUT_MS = 1000;

/** Globals of a module's context: the ca_state values and the tcp_ca_event values. */
export const CC_CONSTANTS = {
  TCP_CA_Open: 0,
  TCP_CA_Disorder: 1,
  TCP_CA_CWR: 2,
  TCP_CA_Recovery: 3,
  TCP_CA_Loss: 4,
  CA_EVENT_TX_START: 0,
  CA_EVENT_CWND_RESTART: 1,
  CA_EVENT_COMPLETE_CWR: 2,
  CA_EVENT_LOSS: 3,
  CA_EVENT_ECN_NO_CE: 4,
  CA_EVENT_ECN_IS_CE: 5,
} as const;

export interface CcWorkerData {
  sab: SharedArrayBuffer;
  source: string;
  file: string;
}
