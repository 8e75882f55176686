/**
 * The thread a loaded congestion-control module runs in (tcp_cong_module.ts
 * is the daemon's side; docs/congestion.md the module's format). The
 * module's source runs in a `vm` context of its own in this worker: no
 * require, no process, no timers, no console. Each call comes through the
 * shared memory the daemon waits on (Atomics), so a call that loops is
 * ended by the daemon terminating this thread, and a module that throws or
 * returns something that is not a number is reported, never trusted.
 *
 * The module sees one `sk` object, refilled for each call from the shared
 * slots, with `sk.priv` the socket's own object (fresh at init, dropped at
 * release); what it may change (cwnd, ssthresh, pacingRate) is read back
 * and checked by the daemon before any of it reaches the socket.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import vm from 'node:vm';
import {
  CC_CTL,
  CC_HOOKS,
  CC_IN,
  CC_IN_NAMES,
  CC_LOAD_TIMEOUT_MS,
  CC_OP,
  CC_OUT,
  CC_ST,
  CC_TEXT_OFF,
  CC_TEXT_LEN,
  CC_F64_OFF,
  CC_CONSTANTS,
  type CcWorkerData,
} from './tcp_cong_shared.js';

const data = workerData as CcWorkerData;
const ctl = new Int32Array(data.sab, 0, CC_CTL.SIZE);
const io = new Float64Array(data.sab, CC_F64_OFF, CC_OUT.END);
const text = new Uint8Array(data.sab, CC_TEXT_OFF, CC_TEXT_LEN);

const sandbox: Record<string, unknown> = { ...CC_CONSTANTS };
const ctx = vm.createContext(sandbox, { name: `cc:${data.file}`, codeGeneration: { strings: false, wasm: false } });
// Objects made inside the context, so what the module holds has the context's prototypes, not ours.
const make = vm.runInContext('() => ({})', ctx) as () => Record<string, unknown>;
const mod = make();
mod.exports = make();
sandbox.module = mod;
sandbox.exports = mod.exports;

/** Write `s` (UTF-8, cut to fit) to the text area; its length to ctl. */
function putText(s: string): void {
  const n = Buffer.from(text.buffer, text.byteOffset, text.length).write(s, 0, 'utf8');
  ctl[CC_CTL.TEXT] = n;
}

function describe(e: unknown): string {
  try {
    if (e !== null && typeof e === 'object' && 'message' in e) return `${(e as { name?: unknown }).name ?? 'Error'}: ${String((e as { message: unknown }).message)}`;
    return `threw ${typeof e === 'string' ? JSON.stringify(e) : String(e)}`;
  } catch {
    return 'threw something that cannot be printed';
  }
}

let ops: Record<string, unknown>;
try {
  new vm.Script(data.source, { filename: data.file }).runInContext(ctx, { timeout: CC_LOAD_TIMEOUT_MS });
  ops = mod.exports as Record<string, unknown>;
  if (ops === null || typeof ops !== 'object') throw new TypeError('module.exports is not an object');
} catch (e) {
  parentPort!.postMessage({ error: describe(e) });
  process.exit(0);
}

// The shape the daemon validates: the name and which hooks are functions.
let name: unknown;
const hooks: string[] = [];
try {
  name = ops.name;
  for (const h of CC_HOOKS) if (typeof ops[h] === 'function') hooks.push(h);
} catch (e) {
  parentPort!.postMessage({ error: describe(e) });
  process.exit(0);
}
// This thread's id, for the daemon to read its CPU time (/proc/PID/task/TID/stat) when a call is late.
let tid = 0;
try {
  tid = Number(readFileSync('/proc/thread-self/stat', 'latin1').split(' ', 1)[0]) || 0;
} catch {
  // no /proc: the daemon goes by wall time alone
}
parentPort!.postMessage({ name: typeof name === 'string' ? name : null, nameType: typeof name, hooks, tid });

const sk = make();
const rs = make();
const sample = make();
const privs = new Map<number, Record<string, unknown>>();

function fill(o: Record<string, unknown>, from: number, to: number): void {
  for (let i = from; i < to; i++) o[CC_IN_NAMES[i]] = io[i];
}

/** A number the module returned or left in a field, or NaN with the reason in the text area. */
function num(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  putText(`${what} is ${v === null ? 'null' : typeof v}${typeof v === 'string' ? ` ${JSON.stringify(v.slice(0, 40))}` : ''}, not a number`);
  return NaN;
}

function call(op: number, id: number): number {
  let priv = privs.get(id);
  if (op === CC_OP.DROP) {
    privs.delete(id);
    return CC_ST.OK;
  }
  if (op === CC_OP.INIT || !priv) {
    priv = make();
    privs.set(id, priv);
  }
  fill(sk, CC_IN.NOW_US, CC_IN.SK_END);
  sk.priv = priv;
  const f = ops[CC_HOOKS[op]] as (...a: unknown[]) => unknown;
  let ret: unknown;
  switch (op) {
    case CC_OP.INIT:
    case CC_OP.RELEASE:
      f.call(ops, sk);
      if (op === CC_OP.RELEASE) privs.delete(id);
      break;
    case CC_OP.SSTHRESH:
    case CC_OP.UNDO_CWND:
      ret = f.call(ops, sk);
      io[CC_OUT.RET] = num(ret, `${CC_HOOKS[op]}()'s result`);
      if (Number.isNaN(io[CC_OUT.RET]) && typeof ret !== 'number') return CC_ST.NOT_NUMBER;
      break;
    case CC_OP.CONG_AVOID:
      f.call(ops, sk, io[CC_IN.ARG0]);
      break;
    case CC_OP.CONG_CONTROL:
      fill(rs, CC_IN.RS_START, CC_IN.RS_END);
      f.call(ops, sk, rs);
      break;
    case CC_OP.SET_STATE:
    case CC_OP.CWND_EVENT:
      f.call(ops, sk, io[CC_IN.ARG0]);
      break;
    case CC_OP.PKTS_ACKED:
      sample.pktsAcked = io[CC_IN.ARG0];
      sample.rttUs = io[CC_IN.ARG1];
      sample.inFlight = io[CC_IN.ARG2];
      f.call(ops, sk, sample);
      break;
    case CC_OP.GET_INFO: {
      ret = f.call(ops, sk);
      // The fields, as JSON in the text area (none: no text); then sk's fields below, as for every hook.
      ctl[CC_CTL.TEXT] = 0;
      if (ret === null || ret === undefined) break;
      if (typeof ret !== 'object') {
        putText(`getInfo()'s result is ${typeof ret}, not an object of numbers`);
        return CC_ST.NOT_NUMBER;
      }
      const out: Record<string, number> = {};
      let n = 0;
      for (const k of Object.keys(ret as object)) {
        const v = (ret as Record<string, unknown>)[k];
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          putText(`getInfo()'s ${k} is ${typeof v === 'number' ? v : typeof v}, not a finite number`);
          return CC_ST.NOT_NUMBER;
        }
        if (++n > 16) break;
        out[k.slice(0, 32)] = v;
      }
      putText(JSON.stringify(out));
      break;
    }
  }
  // What the module may set, as it left them (the daemon checks the ranges).
  io[CC_OUT.CWND] = num(sk.cwnd, 'sk.cwnd');
  if (Number.isNaN(io[CC_OUT.CWND]) && typeof sk.cwnd !== 'number') return CC_ST.NOT_NUMBER;
  io[CC_OUT.SSTHRESH] = num(sk.ssthresh, 'sk.ssthresh');
  if (Number.isNaN(io[CC_OUT.SSTHRESH]) && typeof sk.ssthresh !== 'number') return CC_ST.NOT_NUMBER;
  io[CC_OUT.PACING_RATE] = num(sk.pacingRate, 'sk.pacingRate');
  if (Number.isNaN(io[CC_OUT.PACING_RATE]) && typeof sk.pacingRate !== 'number') return CC_ST.NOT_NUMBER;
  return CC_ST.OK;
}

let seen = 0;
for (;;) {
  // A wake-up can be late (the notify of a call already seen): only a new call number is a call.
  while (Atomics.load(ctl, CC_CTL.REQ) === seen) Atomics.wait(ctl, CC_CTL.REQ, seen);
  seen = Atomics.load(ctl, CC_CTL.REQ);
  let st: number;
  try {
    st = call(ctl[CC_CTL.OP], ctl[CC_CTL.SOCK]);
  } catch (e) {
    putText(describe(e));
    st = CC_ST.THREW;
  }
  ctl[CC_CTL.STATUS] = st;
  Atomics.store(ctl, CC_CTL.DONE, seen);
  Atomics.notify(ctl, CC_CTL.DONE);
}
