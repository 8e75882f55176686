/**
 * Loadable congestion control (the daemon's side; docs/congestion.md has
 * the module format): a root-owned JavaScript file whose algorithm becomes
 * one more TcpCongestionOps in the stack's registry, selectable by
 * TCP_CONGESTION and net.ipv4.tcp_congestion_control like Reno and CUBIC.
 *
 * Contained: the module runs in a worker thread of its own, in a `vm`
 * context without require, process or timers (tcp_cong_worker.ts), and
 * never touches a TcpSock. Each hook call fills a few documented numbers
 * into shared memory, wakes the worker and waits for its answer; what the
 * module may set (cwnd, ssthresh, pacing rate) comes back as numbers and is
 * checked before any of it is applied. The time budget is CC_CALL_BUDGET_MS
 * of the worker's CPU (wall time first, then the thread's CPU time from
 * /proc, so a worker starved of a CPU on a busy machine is not blamed), and
 * CC_CALL_WALL_MAX_MS of wall time for a call that blocks.
 * A call that throws or leaves nonsense (not a number, not an integer, a
 * cwnd below 1 or above CC_CWND_MAX, an ssthresh below 2) is a fault: that
 * socket goes to Reno, the module's other sockets carry on. A call that
 * overruns the budget stops the worker (it may be looping): the module is
 * broken, unregistered, and each of its sockets goes to Reno at its next
 * call. Faults count in TcpExt.TCPCongModuleFault, sockets moved to Reno in
 * TcpExt.TCPCongModuleFallback, and the first of each kind is logged once
 * per module.
 *
 * A call costs a round trip between two threads: 10-30 us measured on a
 * 2-CPU machine under load (15-23 us over 600 000 calls at load 9, none
 * falsely over budget); a `vm` timeout per call cost about 200 us there
 * (the watchdog thread it starts each time) and timed out sound calls at
 * 5 and 50 ms. Acceptable for experiments, not for line rate; only the
 * hooks a module defines are called.
 */
import { readFileSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { StackLog } from '../core/net.js';
import { SK_PACING_NEEDED, SK_PACING_NONE } from '../core/sock.js';
import { EBUSY, EEXIST, EINVAL, ENOENT, EPERM } from '../../uapi.js';
import { renoCongAvoid, renoSsthresh, renoUndoCwnd, TcpCongError, tcpInitCongestionControl, tcpIsCwndLimited, tcpReno, tcpValidateCongestionControl } from './tcp_cong.js';
import { tcpPacketsInFlight } from './tcp_output.js';
import type { TcpProto } from './tcp_proto.js';
import type { RateSample } from './tcp_rate_sample.js';
import type { AckSample, TcpCcInfo, TcpCongestionOps, TcpSock } from './tcp_sock.js';
import { CC_CTL, CC_F64_OFF, CC_HOOKS, CC_IN, CC_LOAD_TIMEOUT_MS, CC_OP, CC_OUT, CC_SAB_SIZE, CC_ST, CC_TEXT_LEN, CC_TEXT_OFF, type CcWorkerData } from './tcp_cong_shared.js';

/**
 * The longest one hook call may run: past it in wall time, the worker's CPU
 * time decides (a busy machine must not break a sound module), and
 * CC_CALL_WALL_MAX_MS bounds a call that is blocked.
 */
export const CC_CALL_BUDGET_MS = 100;
export const CC_CALL_WALL_MAX_MS = 2000;
/** The largest cwnd a module may set, in segments (1 GiB of 1 KiB segments). */
export const CC_CWND_MAX = 1 << 20;
const SSTHRESH_MAX = 0x7fffffff;
/** The largest module file read. */
const CC_FILE_MAX = 1 << 20;
/** Memory a module's worker may use (its heap): past it the worker dies and the module is broken. */
const CC_WORKER_HEAP_MB = 32;

/** The host's part of a socket on a module (its caPriv): the id the worker knows its private object by. */
class CcModSock {
  constructor(
    readonly mod: TcpCongModule,
    readonly id: number,
  ) {}
}

/**
 * tapstack's module checks, as a kernel checks that only root loads
 * modules from files root controls: the file must be a regular file owned
 * by root and not writable by group or others. Returns why not, or null.
 */
export function checkCongModuleFile(file: string, ownerUid = 0): { errno: number; message: string } | null {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { errno: code === 'ENOENT' ? ENOENT : EINVAL, message: `${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}` };
  }
  if (!st.isFile()) return { errno: EINVAL, message: `${file}: not a regular file` };
  if (st.uid !== ownerUid) {
    const who = ownerUid ? `uid ${ownerUid}` : 'root';
    return { errno: EPERM, message: `${file}: owned by uid ${st.uid}, not ${who}: only a file ${who} owns is loaded` };
  }
  if (st.mode & 0o022) return { errno: EPERM, message: `${file}: writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}): only a file root alone can change is loaded` };
  if (st.size > CC_FILE_MAX) return { errno: EINVAL, message: `${file}: larger than ${CC_FILE_MAX} bytes` };
  return null;
}

/** One loaded module: its worker, the ops the registry holds, its counts. */
export class TcpCongModule {
  readonly ops: TcpCongestionOps;
  /** Sockets whose state the module holds (init run, release not yet): unload is EBUSY while any. */
  users = 0;
  /** Hook calls made into the worker; calls that faulted; sockets moved to Reno. */
  calls = 0;
  faults = 0;
  fallbacks = 0;
  /** Overran the budget or died: stopped, unregistered. */
  broken = false;
  lastFault = '';
  #logged = false;
  #seq = 0;
  #nextId = 1;
  readonly #ctl: Int32Array;
  readonly #io: Float64Array;
  readonly #text: Buffer;

  constructor(
    readonly name: string,
    readonly file: string,
    readonly hooks: readonly string[],
    readonly worker: Worker,
    /** The worker thread's id (0: unknown), for its CPU time. */
    readonly tid: number,
    sab: SharedArrayBuffer,
    readonly set: TcpCongModules,
  ) {
    this.#ctl = new Int32Array(sab, 0, CC_CTL.SIZE);
    this.#io = new Float64Array(sab, CC_F64_OFF, CC_OUT.END);
    this.#text = Buffer.from(sab, CC_TEXT_OFF, CC_TEXT_LEN);
    this.ops = this.#makeOps();
  }

  /** The TcpCongestionOps: only the hooks the module defines, each through the worker. */
  #makeOps(): TcpCongestionOps {
    const has = (h: string) => this.hooks.includes(h);
    // init and release always: they keep the host's count of the module's sockets.
    const ops: Partial<{ -readonly [K in keyof TcpCongestionOps]: TcpCongestionOps[K] }> = {
      name: this.name,
      init: (sk, now) => this.#init(sk, now),
      release: (sk) => this.#release(sk),
    };
    // After a fault (0) the socket is Reno's, and Reno answers.
    if (has('ssthresh')) ops.ssthresh = (sk) => (this.#run(CC_OP.SSTHRESH, sk, this.set.tcp.now()) && this.#ret(sk, CC_OP.SSTHRESH, 2, SSTHRESH_MAX)) || renoSsthresh(sk);
    if (has('undoCwnd')) ops.undoCwnd = (sk) => (this.#run(CC_OP.UNDO_CWND, sk, this.set.tcp.now()) && this.#ret(sk, CC_OP.UNDO_CWND, 1, CC_CWND_MAX)) || renoUndoCwnd(sk);
    if (has('congAvoid')) {
      ops.congAvoid = (sk, ack, acked, now) => {
        this.#io[CC_IN.ARG0] = acked;
        if (!this.#run(CC_OP.CONG_AVOID, sk, now)) renoCongAvoid(sk, ack, acked);
      };
    }
    if (has('congControl')) {
      ops.congControl = (sk, _ack, _flag, rs, now) => {
        this.#fillRs(rs);
        // A fault leaves this ACK's window as it was; Reno (with PRR) takes the next.
        this.#run(CC_OP.CONG_CONTROL, sk, now);
      };
    }
    if (has('setState')) {
      ops.setState = (sk, state, now) => {
        this.#io[CC_IN.ARG0] = state;
        this.#run(CC_OP.SET_STATE, sk, now);
      };
    }
    if (has('cwndEvent')) {
      ops.cwndEvent = (sk, ev, now) => {
        this.#io[CC_IN.ARG0] = ev;
        this.#run(CC_OP.CWND_EVENT, sk, now);
      };
    }
    if (has('pktsAcked')) {
      ops.pktsAcked = (sk, s: AckSample, now) => {
        this.#io[CC_IN.ARG0] = s.pktsAcked;
        this.#io[CC_IN.ARG1] = s.rttUs;
        this.#io[CC_IN.ARG2] = s.inFlight;
        this.#run(CC_OP.PKTS_ACKED, sk, now);
      };
    }
    if (has('getInfo')) ops.getInfo = (sk) => this.#getInfo(sk);
    // What is missing, tcpValidateCongestionControl names before anything is registered.
    return ops as TcpCongestionOps;
  }

  #fillRs(rs: RateSample): void {
    const io = this.#io;
    io[CC_IN.RS_DELIVERED] = rs.delivered;
    io[CC_IN.RS_INTERVAL_US] = rs.intervalUs;
    io[CC_IN.RS_RTT_US] = rs.rttUs;
    io[CC_IN.RS_LOSSES] = rs.losses;
    io[CC_IN.RS_ACKED_SACKED] = rs.ackedSacked;
    io[CC_IN.RS_PRIOR_IN_FLIGHT] = rs.priorInFlight;
    io[CC_IN.RS_IS_RETRANS] = rs.isRetrans ? 1 : 0;
  }

  #fillSk(sk: TcpSock, now: number): void {
    const io = this.#io;
    io[CC_IN.NOW_US] = Math.round(now * 1000);
    io[CC_IN.CWND] = sk.sndCwnd;
    io[CC_IN.SSTHRESH] = sk.sndSsthresh;
    io[CC_IN.PACING_RATE] = sk.pacingRate === Infinity ? 0 : sk.pacingRate;
    io[CC_IN.MSS] = sk.mssCache;
    io[CC_IN.SRTT_US] = sk.srttUs >> 3;
    io[CC_IN.RTTVAR_US] = sk.rttvarUs >> 2;
    io[CC_IN.MIN_RTT_US] = sk.minRttUs;
    io[CC_IN.IN_FLIGHT] = tcpPacketsInFlight(sk);
    io[CC_IN.PACKETS_OUT] = sk.packetsOut;
    io[CC_IN.DELIVERED] = sk.delivered;
    io[CC_IN.LOST] = sk.lost;
    io[CC_IN.CA_STATE] = sk.caState;
    io[CC_IN.CWND_LIMITED] = tcpIsCwndLimited(sk) ? 1 : 0;
    io[CC_IN.APP_LIMITED] = sk.rateAppLimited ? 1 : 0;
    io[CC_IN.PRIOR_CWND] = sk.priorCwnd;
  }

  /** One call in the worker; CC_ST.* or -1 for a call over budget. */
  #call(op: number, id: number): number {
    const ctl = this.#ctl;
    this.calls++;
    ctl[CC_CTL.OP] = op;
    ctl[CC_CTL.SOCK] = id;
    ctl[CC_CTL.TEXT] = 0;
    const seq = (this.#seq = (this.#seq + 1) | 0);
    const start = performance.now();
    Atomics.store(ctl, CC_CTL.REQ, seq);
    Atomics.notify(ctl, CC_CTL.REQ);
    // A wake-up can be late (the notify of the previous call, after its answer was seen): wait
    // again until this call's answer or the budget's end.
    while (Atomics.load(ctl, CC_CTL.DONE) !== seq) {
      const left = start + this.set.budgetMs - performance.now();
      if (left <= 0) return this.#late(seq, start) ? -1 : ctl[CC_CTL.STATUS];
      Atomics.wait(ctl, CC_CTL.DONE, (seq - 1) | 0, left);
    }
    return ctl[CC_CTL.STATUS];
  }

  /**
   * A call still unanswered after the budget: overrun if the worker's thread
   * ran for at least a quarter of a further budget-long wait (a sound call
   * takes microseconds: it is computing, likely looping; a quarter, not all,
   * as a busy machine shares its CPUs), or if there is still no answer
   * CC_CALL_WALL_MAX_MS after the call (blocked). A worker that only waited
   * for a CPU (wall time passed, its CPU time did not) is given more time.
   */
  #late(seq: number, start: number): boolean {
    const ctl = this.#ctl;
    let cpu0 = this.#cpuMs();
    let t0 = performance.now();
    for (;;) {
      const until = t0 + this.set.budgetMs;
      for (let left = this.set.budgetMs; left > 0; left = until - performance.now()) {
        Atomics.wait(ctl, CC_CTL.DONE, (seq - 1) | 0, left);
        if (Atomics.load(ctl, CC_CTL.DONE) === seq) return false;
      }
      const cpu1 = this.#cpuMs();
      const t1 = performance.now();
      if (cpu0 < 0 || cpu1 - cpu0 >= (t1 - t0) / 4 || t1 - start >= CC_CALL_WALL_MAX_MS) return true;
      cpu0 = cpu1;
      t0 = t1;
    }
  }

  /** The worker thread's CPU time in ms (utime + stime at USER_HZ 100), or -1 if unknown. */
  #cpuMs(): number {
    if (!this.tid) return -1;
    try {
      const st = readFileSync(`/proc/${process.pid}/task/${this.tid}/stat`, 'latin1');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      return -1;
    }
  }

  #errText(): string {
    return this.#text.toString('utf8', 0, Math.min(this.#ctl[CC_CTL.TEXT], CC_TEXT_LEN));
  }

  /**
   * Run hook `op` for sk and apply what it set, checked. False if the
   * socket is no longer on the module (it faulted, now or before, and is
   * on Reno): the caller does Reno's part of the hook.
   */
  #run(op: number, sk: TcpSock, now: number): boolean {
    const ref = sk.caPriv;
    if (!(ref instanceof CcModSock) || ref.mod !== this) return false;
    if (this.broken) {
      this.#fallback(sk, now);
      return false;
    }
    this.#fillSk(sk, now);
    const st = this.#call(op, ref.id);
    if (st !== CC_ST.OK) {
      this.#fault(sk, op, st, now);
      return false;
    }
    const io = this.#io;
    const cwnd = io[CC_OUT.CWND];
    const ssthresh = io[CC_OUT.SSTHRESH];
    const rate = io[CC_OUT.PACING_RATE];
    let bad = '';
    if (cwnd !== sk.sndCwnd && !(Number.isInteger(cwnd) && cwnd >= 1 && cwnd <= CC_CWND_MAX)) bad = `sk.cwnd = ${cwnd} (an integer from 1 to ${CC_CWND_MAX})`;
    else if (ssthresh !== sk.sndSsthresh && !(Number.isInteger(ssthresh) && ssthresh >= 2 && ssthresh <= SSTHRESH_MAX)) bad = `sk.ssthresh = ${ssthresh} (an integer of at least 2)`;
    else if (!(rate >= 0 && Number.isFinite(rate))) bad = `sk.pacingRate = ${rate} (bytes per second, finite, not negative)`;
    if (bad) {
      this.#fault(sk, op, CC_ST.NOT_NUMBER, now, `${CC_HOOKS[op]}() set ${bad}`);
      return false;
    }
    sk.sndCwnd = cwnd;
    sk.sndSsthresh = ssthresh;
    // A rate set paces the socket as BBR's does (sk_pacing_rate, capped by SO_MAX_PACING_RATE; internal
    // pacing unless fq paces it); 0 or the rate read back changes nothing.
    if (rate > 0 && rate !== io[CC_IN.PACING_RATE]) {
      sk.pacingRate = Math.min(rate, sk.maxPacingRate);
      if (sk.pacingStatus === SK_PACING_NONE) sk.pacingStatus = SK_PACING_NEEDED;
    }
    return true;
  }

  /** A hook's returned number, checked; 0 after a fault (the caller uses Reno's). */
  #ret(sk: TcpSock, op: number, min: number, max: number): number {
    const v = this.#io[CC_OUT.RET];
    if (Number.isInteger(v) && v >= min && v <= max) return v;
    this.#fault(sk, op, CC_ST.NOT_NUMBER, this.set.tcp.now(), `${CC_HOOKS[op]}() returned ${v} (an integer from ${min} to ${max})`);
    return 0;
  }

  #init(sk: TcpSock, now: number): void {
    if (this.broken) {
      tcpInitCongestionControl(sk, tcpReno, now);
      this.#counted();
      return;
    }
    const ref = new CcModSock(this, this.#nextId++);
    sk.caPriv = ref;
    this.users++;
    if (this.hooks.includes('init')) this.#run(CC_OP.INIT, sk, now);
  }

  #release(sk: TcpSock): void {
    const ref = sk.caPriv;
    if (!(ref instanceof CcModSock) || ref.mod !== this) return;
    sk.caPriv = null;
    this.users--;
    if (this.broken) return;
    if (this.hooks.includes('release')) {
      this.#fillSk(sk, this.set.tcp.now());
      const st = this.#call(CC_OP.RELEASE, ref.id);
      if (st === CC_ST.OK) return;
      // The socket is leaving the module anyway: count it, nothing to fall back from.
      this.#noteFault(CC_OP.RELEASE, st);
      if (this.broken) return;
    }
    this.#call(CC_OP.DROP, ref.id);
  }

  #getInfo(sk: TcpSock): TcpCcInfo | null {
    if (!this.#run(CC_OP.GET_INFO, sk, this.set.tcp.now())) return null;
    const n = this.#ctl[CC_CTL.TEXT];
    if (!n) return null;
    return { kind: 'fields', fields: JSON.parse(this.#errText()) as Record<string, number> };
  }

  /** Count and log (once per module) a fault; an overrun breaks the module. */
  #noteFault(op: number, st: number, why?: string): void {
    this.faults++;
    this.set.tcp.mibs.TcpExt.TCPCongModuleFault++;
    const reason = why ?? (st < 0 ? `${CC_HOOKS[op]}() ran past the ${this.set.budgetMs} ms budget` : `${CC_HOOKS[op]}(): ${this.#errText()}`);
    this.lastFault = reason;
    if (st < 0) {
      this.#break(reason);
      return;
    }
    if (!this.#logged) {
      this.#logged = true;
      this.set.log.warn({ module: this.name, file: this.file, reason }, 'tcp: congestion module fault: the socket falls back to reno');
    }
  }

  #fault(sk: TcpSock, op: number, st: number, now: number, why?: string): void {
    this.#noteFault(op, st, why);
    this.#fallback(sk, now);
  }

  /** The socket leaves the module for Reno (tcp_reinit_congestion_control), the module's state for it dropped. */
  #fallback(sk: TcpSock, now: number): void {
    const ref = sk.caPriv;
    if (ref instanceof CcModSock && ref.mod === this) {
      sk.caPriv = null;
      this.users--;
      if (!this.broken) this.#call(CC_OP.DROP, ref.id);
    }
    // Not initialised (a fault inside init): nothing is released; Reno starts here.
    sk.caInitialized = false;
    tcpInitCongestionControl(sk, tcpReno, now);
    this.#counted();
  }

  #counted(): void {
    this.fallbacks++;
    this.set.tcp.mibs.TcpExt.TCPCongModuleFallback++;
  }

  /** Stop the worker and take the module out of the registry; its sockets move to Reno as they next call. */
  #break(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    this.lastFault = reason;
    void this.worker.terminate();
    this.set.tcp.congestion.unregister(this.ops);
    this.set.log.warn({ module: this.name, file: this.file, reason }, 'tcp: congestion module stopped: its sockets fall back to reno');
  }

  /** The worker died on its own (out of memory): broken too. */
  died(why: string): void {
    this.faults++;
    this.set.tcp.mibs.TcpExt.TCPCongModuleFault++;
    this.#break(why);
  }

  stop(): void {
    this.broken = true;
    void this.worker.terminate();
  }
}

type CcShape = { name: string | null; nameType: string; hooks: string[]; tid: number } | { error: string };

/** Start a module's worker on `file` and wait for the shape it reports (or why it could not load). */
async function startCongModuleWorker(file: string, sab: SharedArrayBuffer): Promise<{ worker: Worker; shape: CcShape }> {
  const data: CcWorkerData = { sab, source: readFileSync(file, 'utf8'), file };
  const worker = new Worker(new URL('./tcp_cong_worker.js', import.meta.url), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: CC_WORKER_HEAP_MB, maxYoungGenerationSizeMb: 8 },
    stdout: true,
    stderr: true,
  });
  worker.unref();
  const shape = await new Promise<CcShape>((resolve) => {
    const timer = setTimeout(() => resolve({ error: `did not finish loading within ${2 * CC_LOAD_TIMEOUT_MS} ms` }), 2 * CC_LOAD_TIMEOUT_MS);
    const done = (v: CcShape) => {
      clearTimeout(timer);
      resolve(v);
    };
    worker.once('message', done);
    worker.once('error', (e) => done({ error: e.message }));
    worker.once('exit', (code) => done({ error: `its worker exited (${code}) while loading` }));
  });
  return { worker, shape };
}

/**
 * Why `file` is not a module (what load would refuse it for, short of a
 * taken name), or null: for `tapstack cc load` to explain an EINVAL.
 */
export async function congModuleProblem(file: string): Promise<string | null> {
  const bad = checkCongModuleFile(file);
  if (bad) return bad.message;
  const { worker, shape } = await startCongModuleWorker(file, new SharedArrayBuffer(CC_SAB_SIZE));
  void worker.terminate();
  if ('error' in shape) return shape.error;
  if (shape.name === null) return `module.exports.name is ${shape.nameType}, not a string`;
  const ops: Record<string, unknown> = { name: shape.name };
  for (const h of shape.hooks) ops[h] = () => 0;
  return tcpValidateCongestionControl(ops as unknown as TcpCongestionOps);
}

/** What `tapstack cc list` shows of an algorithm. */
export interface CcListEntry {
  name: string;
  /** Built in, a loaded module, or a module stopped after an overrun. */
  kind: 'builtin' | 'module' | 'broken';
  file?: string;
  users?: number;
  calls?: number;
  faults?: number;
  fallbacks?: number;
  lastFault?: string;
}

/** A stack's loaded modules (the daemon has one set; a test makes its own). */
export class TcpCongModules {
  readonly #mods = new Map<string, TcpCongModule>();
  readonly budgetMs: number;
  /** Who must own a module file: root, but for tests that run as another user. */
  readonly ownerUid: number;

  constructor(
    readonly tcp: TcpProto,
    readonly log: StackLog,
    opts: { budgetMs?: number; ownerUid?: number } = {},
  ) {
    this.budgetMs = opts.budgetMs ?? CC_CALL_BUDGET_MS;
    this.ownerUid = opts.ownerUid ?? 0;
  }

  /**
   * Load `file` (tcp_register_congestion_control for a module): its checks,
   * then the worker, then the registry's validation. Rejects with a
   * TcpCongError: ENOENT, EPERM (ownership or mode), EINVAL (not a module:
   * the reason says why), EEXIST (the name is taken).
   */
  async load(file: string): Promise<TcpCongModule> {
    const bad = checkCongModuleFile(file, this.ownerUid);
    if (bad) throw new TcpCongError(bad.errno, bad.message);
    const sab = new SharedArrayBuffer(CC_SAB_SIZE);
    const { worker, shape } = await startCongModuleWorker(file, sab);
    const refuse = (errno: number, why: string): never => {
      void worker.terminate();
      throw new TcpCongError(errno, `${file}: ${why}`);
    };
    if ('error' in shape) return refuse(EINVAL, shape.error);
    if (shape.name === null) return refuse(EINVAL, `module.exports.name is ${shape.nameType}, not a string`);
    const mod = new TcpCongModule(shape.name, file, shape.hooks, worker, shape.tid, sab, this);
    const why = tcpValidateCongestionControl(mod.ops);
    if (why) return refuse(EINVAL, why);
    const old = this.#mods.get(mod.name);
    if (old && !old.broken) return refuse(EEXIST, `${mod.name} already loaded from ${old.file}`);
    try {
      this.tcp.congestion.register(mod.ops);
    } catch (e) {
      return refuse((e as TcpCongError).errno, (e as Error).message);
    }
    this.#mods.set(mod.name, mod);
    worker.removeAllListeners();
    worker.on('error', (e) => mod.died(`its worker died: ${e.message}`));
    worker.on('exit', () => {
      if (!mod.broken) mod.died('its worker exited');
    });
    this.log.info({ module: mod.name, file, hooks: shape.hooks }, 'tcp: congestion module loaded');
    return mod;
  }

  /**
   * tcp_unregister_congestion_control for a module: ENOENT if none by that
   * name; EBUSY while sockets use it or it is net.ipv4.tcp_congestion_control
   * (the module's refcount in Linux). A broken module goes at once.
   */
  unload(name: string): number {
    const mod = this.#mods.get(name);
    if (!mod) return -ENOENT;
    if (!mod.broken && (mod.users > 0 || this.tcp.sysctl.tcp_congestion_control === name)) return -EBUSY;
    this.tcp.congestion.unregister(mod.ops);
    mod.stop();
    this.#mods.delete(name);
    this.log.info({ module: name, file: mod.file }, 'tcp: congestion module unloaded');
    return 0;
  }

  get(name: string): TcpCongModule | undefined {
    return this.#mods.get(name);
  }

  /** Every algorithm: the registry's, then broken modules no longer in it. */
  list(): CcListEntry[] {
    const out: CcListEntry[] = [];
    for (const ops of this.tcp.congestion.list()) {
      const m = this.#mods.get(ops.name);
      out.push(m && m.ops === ops ? entry(m) : { name: ops.name, kind: 'builtin' });
    }
    for (const m of this.#mods.values()) if (m.broken) out.push(entry(m));
    return out;
  }

  /** The daemon stops: every worker ends. */
  stop(): void {
    for (const m of this.#mods.values()) m.stop();
  }
}

function entry(m: TcpCongModule): CcListEntry {
  const e: CcListEntry = { name: m.name, kind: m.broken ? 'broken' : 'module', file: m.file, users: m.users, calls: m.calls, faults: m.faults, fallbacks: m.fallbacks };
  if (m.lastFault) e.lastFault = m.lastFault;
  return e;
}
