/**
 * What the daemon and every shard do alike at their edges: hand a frame to
 * the stack without letting a bug in packet processing take the thread
 * down, write the stats file, load the config's congestion modules, trace
 * cwnd per ACK.
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { RcvPage } from '../net/core/page.js';
import type { Stack } from '../net/stack.js';
import type { RealTime } from '../lib/time.js';
import type { TcpCongModules } from '../net/ipv4/tcp_cong_module.js';
import { EBUSY } from '../uapi.js';

export type RxFn = (buf: Buffer, off: number, len: number, csumValid?: boolean, gsoSize?: number, page?: RcvPage | null) => void;

/**
 * stack.receive behind a guard: a frame whose processing throws is counted
 * as an rx error and logged (at most once a second); the rest carry on.
 */
export function guardedReceive(stack: Stack, log: Logger, time: RealTime): RxFn {
  let lastCrashLog = 0;
  return (buf, off, len, csumValid = false, gsoSize = 0, page = null) => {
    try {
      stack.receive(buf, off, len, csumValid, gsoSize, page);
    } catch (e) {
      stack.dev.stats.rx_errors++;
      const now = time.now();
      if (now - lastCrashLog > 1000) {
        lastCrashLog = now;
        log.error({ err: e }, 'internal error while processing a frame; frame dropped');
      }
    }
  };
}

/** The counters as a JSON file (written aside, then renamed into place), stamped with its own time. */
export function writeStatsFile(log: Logger, file: string, counters: object): void {
  try {
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ time: new Date().toISOString(), ...counters }, null, 2) + '\n');
    renameSync(tmp, file);
  } catch (e) {
    log.warn({ file, err: (e as Error).message }, 'cannot write the stats file');
  }
}

/**
 * congestionModules: load the config's module files not loaded now, unload
 * the ones it no longer lists (at start `before` is empty). Why each
 * failed, by key.
 */
export async function configCongestionModules(ccModules: TcpCongModules, log: Logger, files: string[], before: string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const [i, file] of files.entries()) {
    // Loaded already (not one that failed last time, or broke since): as it is.
    if (ccModules.list().some((x) => x.file === file && x.kind === 'module')) continue;
    try {
      const m = await ccModules.load(file);
      log.info({ key: `congestionModules[${i}]`, module: m.name, file }, 'config: congestion module loaded');
    } catch (e) {
      failed.push(`congestionModules[${i}]: ${(e as Error).message}`);
    }
  }
  for (const file of before) {
    if (files.includes(file)) continue;
    const m = ccModules.list().find((x) => x.file === file);
    const rc = m ? ccModules.unload(m.name) : 0;
    if (rc < 0) failed.push(`congestionModules: ${file} (${m!.name}) no longer listed but cannot be unloaded: ${rc === -EBUSY ? 'in use' : rc}`);
    else if (m) log.info({ module: m.name, file }, 'config: congestion module no longer listed: unloaded');
  }
  return failed;
}

/**
 * While net.ipv4.tcp_cwnd_trace=1 (config or run time): one debug line per
 * ACK for plotting, with what Linux's tcp_probe tracepoint shows besides
 * (time, cwnd, ssthresh, ca_state, in flight; snd_una, snd_wnd, srtt and
 * this ACK's RTT sample in us, -1 when it gave none). A shard's lines carry
 * its logger's `shard`.
 */
export function installCwndTrace(stack: Stack, log: Logger): void {
  stack.tcp.cwndTrace = (sk, now, cwnd, ssthresh, ca, inflight, rttUs) =>
    // Per ACK: no object is built unless debug lines are written.
    log.isLevelEnabled('debug') &&
    log.debug(
      {
        cwnd: {
          t: Math.round(now * 1000) / 1000,
          port: sk.num,
          dport: sk.dport,
          cwnd,
          ssthresh,
          ca,
          inflight,
          snd_una: sk.sndUna >>> 0,
          snd_wnd: sk.sndWnd,
          srtt_us: sk.srttUs >> 3,
          rtt_us: rttUs,
        },
      },
      'cwnd',
    );
}
