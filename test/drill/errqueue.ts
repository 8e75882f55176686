/**
 * The runner's checks of recvmsg's control messages as packetdrill makes
 * them (run_system_call.c: cmsg_new, cmsg_expect_eq, sock_ee_expect_eq,
 * scm_timestamping_expect_eq): msg_flags exactly; the cmsgs in order, each
 * with its level, type and length; struct sock_extended_err field by field;
 * scm_timestamping's stamps against the script's timeline within the
 * tolerance (a zero expected stamp is not checked); other data byte by byte.
 */
import type { Cmsg } from '../../src/net/core/errqueue.js';
import {
  IP_RECVERR,
  IPV6_RECVERR,
  SCM_TIMESTAMPING,
  SCM_TIMESTAMPING_SIZE,
  SCM_TSTAMP_ACK,
  SCM_TSTAMP_SCHED,
  SCM_TSTAMP_SND,
  SO_EE_CODE_ZEROCOPY_COPIED,
  SO_EE_ORIGIN_ICMP,
  SO_EE_ORIGIN_ICMP6,
  SO_EE_ORIGIN_LOCAL,
  SO_EE_ORIGIN_NONE,
  SO_EE_ORIGIN_TIMESTAMPING,
  SO_EE_ORIGIN_ZEROCOPY,
  SO_MARK,
  SO_TIMESTAMPING,
  SOCK_EE_SIZE,
  SOF_TIMESTAMPING_OPT_CMSG,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_OPT_TSONLY,
  SOF_TIMESTAMPING_RX_SOFTWARE,
  SOF_TIMESTAMPING_SOFTWARE,
  SOF_TIMESTAMPING_TX_ACK,
  SOF_TIMESTAMPING_TX_SCHED,
  SOF_TIMESTAMPING_TX_SOFTWARE,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  MSG_CTRUNC,
  MSG_TRUNC,
  IP_PKTINFO,
  IPV6_PKTINFO,
  IPV6_RECVPKTINFO,
} from '../../src/uapi.js';
import type { Expr } from './parse.js';

/** The names of this area the scripts use (packetdrill's symbols_linux.c). */
export const ERRQUEUE_SYMBOLS: Record<string, number> = {
  SO_MARK,
  SO_TIMESTAMPING,
  SCM_TIMESTAMPING,
  SOF_TIMESTAMPING_TX_SOFTWARE,
  SOF_TIMESTAMPING_TX_SCHED,
  SOF_TIMESTAMPING_TX_ACK,
  SOF_TIMESTAMPING_RX_SOFTWARE,
  SOF_TIMESTAMPING_SOFTWARE,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_OPT_CMSG,
  SOF_TIMESTAMPING_OPT_TSONLY,
  SCM_TSTAMP_SND,
  SCM_TSTAMP_SCHED,
  SCM_TSTAMP_ACK,
  SO_EE_ORIGIN_NONE,
  SO_EE_ORIGIN_LOCAL,
  SO_EE_ORIGIN_ICMP,
  SO_EE_ORIGIN_ICMP6,
  SO_EE_ORIGIN_TIMESTAMPING,
  SO_EE_ORIGIN_ZEROCOPY,
  SO_EE_CODE_ZEROCOPY_COPIED,
  SOL_IP,
  SOL_IPV6,
  IP_RECVERR,
  IPV6_RECVERR,
  IP_PKTINFO,
  IPV6_PKTINFO,
  IPV6_RECVPKTINFO,
  MSG_TRUNC,
  MSG_CTRUNC,
};

/**
 * CMSG_LEVEL_IP and CMSG_TYPE_RECVERR: run_all.py defines them per run,
 * SOL_IP/IP_RECVERR for IPv4 and SOL_IPV6/IPV6_RECVERR for the IPv6 and
 * v4-mapped runs (their sockets are AF_INET6).
 */
export function familySymbol(v6Socket: boolean, name: string): number | undefined {
  if (name === 'CMSG_LEVEL_IP') return v6Socket ? SOL_IPV6 : SOL_IP;
  if (name === 'CMSG_TYPE_RECVERR') return v6Socket ? IPV6_RECVERR : IP_RECVERR;
  return undefined;
}

/** The field `name` of a struct expression. */
function field(e: Expr, name: string): Expr | undefined {
  return e.k === 'struct' ? e.fields.find((f) => f.name === name)?.value : undefined;
}

/** A msghdr expression's msg_control list, or null when it has none (then no cmsg is expected). */
export function msgControl(msg: Expr): Expr[] | null {
  const c = field(msg, 'msg_control');
  if (!c) return null;
  if (c.k !== 'list') throw new Error('msg_control: expected a list of cmsgs');
  return c.items;
}

/** The msghdr expression's msg_flags (0 when absent, as msghdr_new leaves it). */
export function msgFlags(msg: Expr, sym: (e: Expr) => number): number {
  const f = field(msg, 'msg_flags');
  return f ? sym(f) : 0;
}

/** How to read the script: numbers of its expressions, script time of a live stamp. */
export interface CmsgCheck {
  sym: (e: Expr) => number;
  /** A wall-clock stamp (ms) as script time (ms). */
  scriptMs: (wall: number) => number;
  toleranceMs: number;
  fail: (msg: string) => never;
}

const SOCK_EE_FIELDS = ['ee_errno', 'ee_origin', 'ee_type', 'ee_code', 'ee_info', 'ee_data'] as const;

/** sock_ee_expect_eq: the expected sock_extended_err against the bytes the stack wrote. */
function checkExtendedErr(i: number, want: Expr, got: Buffer, c: CmsgCheck): void {
  const actual = [got.readInt32LE(0), got[4], got[5], got[6], got.readInt32LE(8), got.readInt32LE(12)];
  SOCK_EE_FIELDS.forEach((name, k) => {
    const f = field(want, name);
    if (!f) c.fail(`cmsg ${i}: sock_extended_err without ${name}`);
    // get_s8/get_s32: compared as the C types hold them.
    const w = k >= 1 && k <= 3 ? c.sym(f) & 0xff : c.sym(f) | 0;
    if (w !== actual[k]) c.fail(`Bad ${name} in cmsg ${i}: expected=${w} actual=${actual[k]}`);
  });
}

/** scm_timestamping_expect_eq: ts[0] against the script's time (zero: not checked). */
function checkTimestamping(i: number, want: Expr, got: Buffer, c: CmsgCheck): void {
  const sec = field(want, 'scm_sec');
  const nsec = field(want, 'scm_nsec');
  if (!sec || !nsec) c.fail(`cmsg ${i}: scm_timestamping needs {scm_sec=..., scm_nsec=...}`);
  const wantMs = c.sym(sec) * 1000 + c.sym(nsec) / 1e6;
  if (!wantMs) return;
  const gotMs = c.scriptMs(Number(got.readBigInt64LE(0)) * 1000 + Number(got.readBigInt64LE(8)) / 1e6);
  if (Math.abs(gotMs - wantMs) > c.toleranceMs) {
    c.fail(`Bad timestamp 0 in scm_timestamping ${i}: expected=${(wantMs / 1000).toFixed(6)} actual=${(gotMs / 1000).toFixed(6)} (script seconds)`);
  }
}

/** The data length packetdrill builds for an expected cmsg (cmsg_new), to compare cmsg_len. */
function expectedLen(level: number, data: Expr): number {
  if (field(data, 'scm_sec')) return SCM_TIMESTAMPING_SIZE;
  if (field(data, 'ee_errno')) return SOCK_EE_SIZE + (level === SOL_IP ? 16 : 28);
  return 4;
}

/** cmsg_expect_eq: the control messages the stack gave against the script's msg_control. */
export function checkCmsgs(want: Expr[] | null, got: Cmsg[], c: CmsgCheck): void {
  const exp = want ?? [];
  const n = Math.min(exp.length, got.length);
  for (let i = 0; i < n; i++) {
    const e = exp[i];
    const g = got[i];
    const lv = field(e, 'cmsg_level');
    const ty = field(e, 'cmsg_type');
    const data = field(e, 'cmsg_data');
    if (!lv || !ty || !data) c.fail(`cmsg ${i}: expected {cmsg_level=..., cmsg_type=..., cmsg_data=...}`);
    const level = c.sym(lv);
    const type = c.sym(ty);
    if (g.level !== level) c.fail(`Bad level in cmsg ${i}: expected=${level} actual=${g.level}`);
    if (g.type !== type) c.fail(`Bad type in cmsg ${i}: expected=${type} actual=${g.type}`);
    const len = expectedLen(level, data);
    if (g.data.length !== len) c.fail(`Bad len in cmsg ${i}: expected=${len + 16} actual=${g.data.length + 16}`);
    if ((level === SOL_IP && type === IP_RECVERR) || (level === SOL_IPV6 && type === IPV6_RECVERR)) checkExtendedErr(i, data, g.data, c);
    else if (level === SOL_SOCKET && type === SCM_TIMESTAMPING) checkTimestamping(i, data, g.data, c);
    else {
      const w = Buffer.alloc(4);
      w.writeInt32LE(c.sym(data) | 0);
      if (!w.equals(g.data)) c.fail(`Bad data in cmsg ${i}: expected=${w.toString('hex')} actual=${g.data.toString('hex')}`);
    }
  }
  if (got.length > exp.length) c.fail(`received more than ${n} cmsgs`);
  if (got.length < exp.length) c.fail(`received only ${n} cmsgs`);
}

/** A msghdr's (or an iovec array's) element lengths, for MSG_ZEROCOPY's frags. */
export function iovLens(e: Expr, sym: (e: Expr) => number): number[] {
  const iov = e.k === 'struct' ? field(e, 'msg_iov') : e;
  if (!iov || iov.k !== 'list') return [];
  return iov.items.map((it) => (it.k === 'struct' && it.fields.length === 2 ? sym(it.fields[1].value) : 0));
}

/** The iovec after its first `done` bytes went (a send taken in parts). */
export function iovTail(lens: readonly number[], done: number): number[] {
  const out: number[] = [];
  for (const l of lens) {
    if (done >= l) done -= l;
    else {
      out.push(l - done);
      done = 0;
    }
  }
  return out;
}

/** epoll's EP_PRIVATE_BITS: EPOLLWAKEUP, EPOLLONESHOT, EPOLLET, EPOLLEXCLUSIVE (never reported). */
export const EP_PRIVATE_BITS = (1 << 29) | (1 << 30) | (1 << 31) | (1 << 28);

/**
 * recvmsg(MSG_ERRQUEUE)'s outcome against the script: msg_flags exactly
 * (MSG_CTRUNC when the script gave no msg_control and the stack had cmsgs,
 * as the kernel sets it for a msghdr without room), then the cmsgs.
 */
export function checkRecvErr(msg: Expr | null, flags: number, cmsgs: Cmsg[], c: CmsgCheck): void {
  const want = msg ? msgControl(msg) : null;
  let got = cmsgs;
  if (want === null && got.length) {
    flags |= MSG_CTRUNC;
    got = [];
  }
  if (msg) {
    const wf = msgFlags(msg, c.sym) >>> 0;
    if (wf !== flags >>> 0) c.fail(`Expected msg_flags 0x${wf.toString(16).padStart(8, '0')} but got 0x${(flags >>> 0).toString(16).padStart(8, '0')}`);
  }
  checkCmsgs(want, got, c);
}
