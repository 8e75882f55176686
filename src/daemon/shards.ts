/**
 * tapstackd with `shards` above 1 (docs/shards.md): the main thread's part.
 * It has opened the TAP's first queue and configured the kernel side of the
 * link; here it opens the other queues, starts one worker per queue (each
 * a whole stack: src/daemon/shard_worker.ts), relays the neighbour frames a
 * shard receives to the others, and does the daemon's edges for all of
 * them: signals, SIGHUP's reload, the counters (summed), the metrics
 * endpoint, the service manager's notifications, the shutdown.
 */
import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { formatIpv4, formatMac } from '../lib/addr.js';
import type { TapDriver } from '../drivers/tap.js';
import { ConfigError, DEFAULT_CONFIG_PATH, LIVE_KEYS, configChanges, configView, loadConfig, type Config, type RawConfig } from './config.js';
import { mergeSnapshots, startMetricsServer, type MetricsSnapshot } from './metrics.js';
import { monotonicUsec, type Notifier } from './notify.js';
import { sumCounters } from './shard_merge.js';
import { writeStatsFile } from './frames.js';
import { stackShareCreate } from '../net/core/percpu_counter.js';
import { CC_LOAD_TIMEOUT_MS } from '../net/ipv4/tcp_cong_shared.js';
import { FaultStats, faultSpecString } from '../drivers/fault.js';
import { pcapOpenShared } from '../drivers/pcap.js';
import { dropPrivileges } from './privileges.js';
import type { FromShard, ShardData, ShardReport, ToShard } from './shard_worker.js';
import { ApiRouter } from '../api/shard_router.js';

/** sysexits.h EX_CONFIG and EX_UNAVAILABLE, as the single path uses them. */
const EX_CONFIG = 78;
const EX_TAP_LOST = 69;
/** How long a shard may take to answer a question (counters, a reload) before the answer is given up. */
const ASK_MS = 5000;
/** How long after the grace the shards may take to exit before the daemon exits without them. */
const EXIT_WAIT_MS = 5000;
/** Waits between attempts to re-attach a lost TAP's queues: from 100 ms, doubling, up to 1 s (the single path's). */
const REATTACH_FIRST_MS = 100;
const REATTACH_MAX_MS = 1000;

export interface ShardsContext {
  cfg: Config;
  configPath: string | undefined;
  flags: Partial<RawConfig>;
  log: Logger;
  notifier: Notifier;
  /** The TAP's first queue, opened with IFF_MULTI_QUEUE; shard 0 adopts its descriptor. */
  tap: TapDriver;
  fail: (line: string, code?: number) => never;
  /** The single path's configuration of the kernel side, again on a re-attach (warns instead after the drop). */
  configureLink: (reattach: boolean, afterDrop: boolean) => void;
}

interface Pending {
  answers: unknown[];
  left: number;
  resolve: (a: unknown[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** The fault injection's figures over the shards, each direction (each shard has its own lines). */
function sumFault(list: ShardReport[]): { rx: FaultStats; tx: FaultStats } {
  const sum = { rx: new FaultStats(), tx: new FaultStats() };
  for (const r of list) {
    if (!r.fault) continue;
    for (const dir of ['rx', 'tx'] as const) for (const k of Object.keys(sum[dir]) as (keyof FaultStats)[]) sum[dir][k] += r.fault[dir][k];
  }
  return sum;
}

/** Run the sharded daemon. It never returns: its shutdown ends the process. */
export function runShards(ctx: ShardsContext): Promise<never> {
  const { cfg, log, notifier, tap, fail } = ctx;
  const n = cfg.shards;
  const addon = tap.addon;
  const queues = [{ fd: tap.fd, vnetHdrSize: tap.vnetHdrSize }];
  for (let i = 1; i < n; i++) {
    try {
      queues.push(addon.openTap(tap.name, cfg.vnetHdr, true));
    } catch (e) {
      fail(`cannot open queue ${i} of ${tap.name} (IFF_MULTI_QUEUE): ${(e as Error).message}`);
    }
  }
  // Our steering program: a flow's queue is a function of its ports a shard can compute (docs/shards.md).
  let steering = 'ports';
  try {
    addon.setSteering(tap.fd, true);
  } catch (e) {
    steering = 'tun';
    log.warn({ err: (e as Error).message }, "the TAP's steering program was refused: flows keep tun's own hash");
  }

  // One capture file: its header written here, every shard appending whole records to the descriptor.
  let pcapFd: number | null = null;
  if (cfg.pcap) {
    try {
      pcapFd = pcapOpenShared(cfg.pcap);
    } catch (e) {
      fail(`cannot open pcap file ${cfg.pcap}: ${(e as Error).message}`);
    }
  }
  // tcp_mem, udp_mem, the orphans and TIME_WAIT socks: one count for the daemon, each shard folding into it.
  const share = stackShareCreate();
  const workers: Worker[] = [];
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let stopping = false;
  let started = 0;
  let exitCode = 0;
  const finals: (ShardReport | null)[] = new Array(n).fill(null);
  let exited = 0;
  let onReady: () => void = () => {};
  /** Set once the daemon runs as cfg.user (a re-attached TAP is then used as its creator configured it). */
  let dropped = false;

  const send = (i: number, m: ToShard) => workers[i].postMessage(m);
  // The clients' connections stay here; their calls go to the shard owning each socket (docs/shards.md).
  const api = cfg.api
    ? new ApiRouter(
        { path: cfg.api, gid: cfg.apiGroup, lowPortGid: cfg.apiLowPortGroup, maxSockets: cfg.apiMaxSockets, maxBuffered: cfg.apiMaxBuffered, maxBufferedTotal: cfg.apiMaxBufferedTotal },
        log,
        n,
        (i, ms) => send(i, { type: 'api', ms }),
      )
    : null;
  if (api) api.rings = cfg.apiRings;

  /** Ask every shard; resolves with their answers in shard order. */
  function ask<T>(make: (id: number) => ToShard, waitMs = ASK_MS): Promise<T[]> {
    const id = nextId++;
    return new Promise<T[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`a shard did not answer within ${waitMs} ms`));
      }, waitMs);
      pending.set(id, { answers: new Array(n), left: n, resolve: resolve as (a: unknown[]) => void, reject, timer });
      for (let i = 0; i < n; i++) send(i, make(id));
    });
  }
  function answer(id: number, index: number, value: unknown): void {
    const p = pending.get(id);
    if (!p) return;
    p.answers[index] = value;
    if (--p.left > 0) return;
    clearTimeout(p.timer);
    pending.delete(id);
    p.resolve(p.answers);
  }

  function onMessage(i: number, m: FromShard): void {
    switch (m.type) {
      case 'api':
        if (api) for (const x of m.ms) api.onShard(i, x);
        break;
      case 'ready':
        if (++started === n) onReady();
        break;
      case 'fatal':
        if (started < n) {
          for (const w of workers) void w.terminate();
          fail(m.message, m.message.startsWith('config:') ? EX_CONFIG : 1);
        }
        log.error({ shard: i, err: m.message }, 'shard failed');
        shutdown('shard-failed', 1);
        break;
      case 'relay':
        // ARP replies, neighbour and router advertisements: every shard resolves its own flows' neighbours.
        for (let j = 0; j < n; j++) if (j !== i) send(j, { type: 'relay', frame: m.frame });
        break;
      case 'report':
        answer(m.id, i, m.report);
        break;
      case 'metrics':
        answer(m.id, i, m.snapshot);
        break;
      case 'reloaded':
        answer(m.id, i, m.failed);
        break;
      case 'lost':
        tapLost(i, m.code);
        break;
      case 'reattached':
        answer(m.id, i, m.error);
        break;
      case 'stopped':
        // Its thread exits once its loop has run out: finish() waits for the exits.
        finals[i] = m.report;
        if (m.open) log.warn({ shard: i, connections: m.open }, `shard exiting with ${m.open} connection(s) still sending their data or FIN`);
        break;
    }
  }

  for (let i = 0; i < n; i++) {
    const data: ShardData = {
      index: i,
      shards: n,
      fd: queues[i].fd,
      vnetHdrSize: queues[i].vnetHdrSize,
      tap: tap.name,
      mtu: cfg.mtu,
      mac: cfg.mac,
      ipv4: cfg.ipv4,
      gateway: cfg.gateway,
      ipv6: cfg.ipv6,
      ipv6Gateway: cfg.ipv6Gateway,
      ipv6Slaac: cfg.ipv6Slaac,
      vnetHdr: cfg.vnetHdr,
      // The fault injector works frame by frame, as in the single path: no super-frames under it.
      offload: cfg.offload && !cfg.fault,
      fault: cfg.fault,
      pcap: cfg.pcap && pcapFd !== null ? { path: cfg.pcap, fd: pcapFd } : null,
      // The cap shared: each shard's limits are the whole daemon's, checked against the sum over the shards.
      memory: cfg.memory,
      share,
      sysctl: cfg.sysctl,
      congestionModules: cfg.congestionModules,
      services: cfg.services,
      logLevel: cfg.logLevel,
      api: api ? api.limits() : null,
    };
    const w = new Worker(new URL('./shard_worker.js', import.meta.url), { workerData: data });
    workers.push(w);
    w.on('message', (m: FromShard) => onMessage(i, m));
    w.on('error', (e) => {
      if (started < n) {
        for (const x of workers) void x.terminate();
        fail(`shard ${i}: ${e.message}`);
      }
      log.error({ shard: i, err: e }, 'shard crashed');
      shutdown('shard-crashed', 1);
    });
    w.on('exit', (code) => {
      if (!stopping) {
        log.error({ shard: i, code }, 'shard exited');
        shutdown('shard-exited', 1);
      }
      if (++exited === n) finish();
    });
  }

  const statusLine = () => `${tap.name} ${stopping ? 'stopping' : lostAt ? 'lost, waiting for it to come back' : 'up'}; ${n} shards`;

  // --- the TAP's loss and return: every shard's queue opened again ----------------

  /** When the TAP was lost (0: attached), how often it was, how often all its queues came back. */
  let lostAt = 0;
  let lostCount = 0;
  let reattachedCount = 0;
  let reattachTimer: NodeJS.Timeout | null = null;
  /** Why the last attempt failed (logged once per distinct reason, not per attempt). */
  let lastReattachWhy = '';
  const tapCounts = () => ({ attached: lostAt ? 0 : 1, lost: lostCount, reattached: reattachedCount });

  /**
   * A shard's queue is gone: the interface was deleted, which detaches
   * every queue, so each shard reports it (its stack has lost its carrier).
   * The first report decides, as the single path's tapLost: exit, or wait
   * for an interface of the same name and re-attach every queue.
   */
  function tapLost(shard: number, code: string): void {
    if (stopping || lostAt) return;
    lostAt = Date.now();
    lostCount++;
    if (cfg.tapLost === 'exit') {
      const line = `tapstackd: TAP ${tap.name} lost (${code}: the interface was deleted); exiting (tapLost is "exit")`;
      log.error({ interface: tap.name, code, shard, tapLost: cfg.tapLost }, 'TAP lost: exiting');
      process.stderr.write(`${line}\n`);
      shutdown('tap-lost', EX_TAP_LOST, true);
      return;
    }
    log.error({ interface: tap.name, code, shard, timeoutS: cfg.tapReattachTimeoutMs / 1000 || null }, 'TAP lost: the link is down until the interface comes back');
    scheduleReattach(REATTACH_FIRST_MS);
  }

  function scheduleReattach(wait: number, delay = wait): void {
    reattachTimer = setTimeout(() => tryReattach(delay), wait);
  }

  /**
   * One attempt: the interface present, every shard opens its queue again
   * (a shard whose queue is attached already keeps it); once all are, the
   * kernel side is configured again and every shard's carrier comes back.
   * The interface must come back multi-queue: on a single-queue one the
   * kernel refuses the queues (EINVAL), logged, and the wait goes on.
   */
  function tryReattach(delay: number): void {
    reattachTimer = null;
    if (stopping) return;
    const next = Math.min(delay * 2, REATTACH_MAX_MS);
    const again = () => {
      if (stopping) return;
      const waited = Date.now() - lostAt;
      const left = cfg.tapReattachTimeoutMs ? cfg.tapReattachTimeoutMs - waited : Infinity;
      if (left <= 0) {
        const line = `tapstackd: TAP ${tap.name} did not come back within ${cfg.tapReattachTimeoutMs / 1000} s (tapReattachTimeout); exiting`;
        log.error({ interface: tap.name, waitedMs: waited }, 'TAP lost: gave up waiting');
        process.stderr.write(`${line}\n`);
        shutdown('tap-lost', EX_TAP_LOST, true);
        return;
      }
      scheduleReattach(Math.min(next, left), next);
    };
    // Absent: keep waiting (never create it: whoever deleted it decides whether it comes back).
    try {
      addon.linkGetIndex(tap.name);
    } catch {
      again();
      return;
    }
    ask<string>((id) => ({ type: 'reattach', id })).then(
      (errors) => {
        if (stopping) return;
        const failed = errors.map((e, i) => (e ? `shard ${i}: ${e}` : '')).filter(Boolean);
        if (failed.length) {
          if (failed[0] !== lastReattachWhy) {
            lastReattachWhy = failed[0];
            // EPERM: not ours (and no CAP_NET_ADMIN after the drop); EBUSY: someone else has it; EINVAL: not multi-queue.
            log.warn({ interface: tap.name, failed }, `cannot attach to ${tap.name} yet: ${failed[0]}`);
          }
          again();
          return;
        }
        lastReattachWhy = '';
        ctx.configureLink(true, dropped);
        let ifindex = 0;
        try {
          ifindex = addon.linkGetIndex(tap.name);
        } catch {
          // Informational only.
        }
        // The steering program belongs to the device: the one that came back needs it again (shard 0 sets it).
        for (let j = 0; j < n; j++) send(j, { type: 'carrierOn', ifindex, steer: j === 0 && steering === 'ports' });
        reattachedCount++;
        log.info({ interface: tap.name, ifindex, outageMs: Date.now() - lostAt, reattached: reattachedCount }, 'TAP back: re-attached');
        lostAt = 0;
      },
      (e: Error) => {
        log.error({ interface: tap.name, err: e.message }, 'reattach: the shards did not all answer');
        again();
      },
    );
  }

  async function reports(): Promise<ShardReport[]> {
    return ask<ShardReport>((id) => ({ type: 'report', id }));
  }

  function countersOf(list: ShardReport[]): Record<string, unknown> {
    return {
      interface: tap.name,
      counters: { ...(api ? api.merged(list.map((r) => r.counters)) : sumCounters(list.map((r) => r.counters))), Tap: tapCounts() },
      shards: list.map((r, i) => ({ shard: i, ...r })),
      txErrors: list.reduce((a, r) => a + r.txErrors, 0),
      rxSlotsKept: list.reduce((a, r) => a + r.rxSlotsKept, 0),
      memory: process.memoryUsage(),
      ...(cfg.fault ? { fault: sumFault(list) } : {}),
    };
  }

  function writeCounters(reason: string, list: ShardReport[]): void {
    const counters = countersOf(list);
    log.info({ reason, ...counters }, 'counters');
    if (cfg.statsFile) writeStatsFile(log, cfg.statsFile, counters);
  }

  function dumpCounters(reason: string): void {
    reports().then(
      (list) => writeCounters(reason, list),
      (e: Error) => log.error({ reason, err: e.message }, 'cannot read the counters of the shards'),
    );
  }

  const metrics = cfg.metricsListen
    ? startMetricsServer(
        () =>
          ask<MetricsSnapshot>((id) => ({ type: 'metrics', id })).then((list) => {
            const snap = mergeSnapshots(list);
            // The Api group as ts_counters has it: the router's connection counters, the shards' call counters summed.
            if (api) snap.counters = api.merged(list.map((s) => s.counters));
            return snap;
          }),
        cfg.metricsListen.host,
        cfg.metricsListen.port,
        () => ({ Tap: tapCounts() }),
        (addr) => log.info({ addr }, 'metrics listening'),
        (e) => fail(`metricsListen: ${e.message}`, 1),
      )
    : null;

  /** SIGHUP: as the single path's reload, the live keys applied in every shard. */
  function reload(): void {
    if (stopping) return;
    const file = ctx.configPath ?? DEFAULT_CONFIG_PATH;
    notifier.notify('RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`, `STATUS=reloading ${file}`);
    let next: Config;
    try {
      next = loadConfig(ctx.configPath, ctx.flags);
    } catch (e) {
      const key = e instanceof ConfigError ? e.key : null;
      log.error({ file, key, err: (e as Error).message }, `reload refused, the running configuration kept: ${(e as Error).message}`);
      notifier.notify('READY=1', `STATUS=reload of ${file} refused (${key ?? 'error'}); ${statusLine()}`);
      return;
    }
    const applied: (keyof Config)[] = [];
    const notApplied: string[] = [];
    const running = configView(cfg);
    const wanted = configView(next);
    for (const k of configChanges(cfg, next)) {
      if (!LIVE_KEYS.includes(k)) {
        notApplied.push(k);
        log.warn({ key: k, running: running[k], configured: wanted[k] }, `reload: ${k} cannot change while the daemon runs: keeping the running value (restart to apply)`);
        continue;
      }
      applied.push(k);
    }
    log.level = next.logLevel;
    // The API's limits: the main thread's here, each shard's posted before its reload (messages keep their order).
    const apiFailed = api ? api.reload(next, dropped ? cfg.user!.gid : 0, cfg.memory) : [];
    if (api) for (let i = 0; i < n; i++) send(i, { type: 'api', ms: [{ op: 'limits', limits: api.limits() }] });
    ask<string[]>(
      (id) => ({ type: 'reload', id, logLevel: next.logLevel, sysctl: next.sysctl, congestionModules: next.congestionModules, services: next.services }),
      // Each module a shard loads may take its worker's start.
      ASK_MS + CC_LOAD_TIMEOUT_MS * next.congestionModules.length,
    ).then(
      (answers) => {
        const failed = [...new Set([...apiFailed, ...answers.flat()])];
        for (const f of failed) log.error({ key: f.slice(0, f.indexOf(':')), err: f }, `reload: ${f} not applied`);
        for (const k of applied) (cfg as unknown as Record<string, unknown>)[k] = next[k];
        log.info({ file, applied: applied.filter((k) => !failed.some((f) => f.startsWith(k))), notApplied, failed }, 'reloaded');
        notifier.notify('READY=1', `STATUS=${statusLine()}`);
      },
      (e: Error) => log.error({ file, err: e.message }, 'reload: the shards did not all answer'),
    );
  }

  let graceTimer: NodeJS.Timeout | null = null;
  function shutdown(signal: string, code = 0, tapGone = false): void {
    if (stopping) {
      if (!graceTimer) return;
      log.warn({ signal }, 'second signal: not waiting for the connections any longer');
      for (let i = 0; i < n; i++) send(i, { type: 'stopNow' });
      return;
    }
    stopping = true;
    exitCode = code;
    if (reattachTimer) clearTimeout(reattachTimer);
    const graceMs = tapGone ? 0 : cfg.shutdownGraceMs;
    log.info({ signal, graceMs, shards: n }, 'shutting down');
    notifier.watchdogStop();
    notifier.notify('STOPPING=1', `STATUS=${statusLine()}`);
    metrics?.close();
    api?.stop();
    // Each shard closes its services and waits for its own connections, within the grace.
    for (let i = 0; i < n; i++) send(i, { type: 'stop', graceMs });
    if (graceMs > 0) graceTimer = setTimeout(() => (graceTimer = null), graceMs).unref();
    // A shard that does not exit (a handle of its own left open) must not hold the daemon for ever.
    setTimeout(() => {
      log.error({ running: n - exited }, 'shards did not exit; exiting without them');
      finish();
    }, graceMs + EXIT_WAIT_MS).unref();
  }

  function finish(): void {
    const got = finals.filter((r): r is ShardReport => r !== null);
    if (got.length) writeCounters('exit', got);
    // Each shard flushed its records before it said it stopped.
    if (pcapFd !== null) closeSync(pcapFd);
    log.info({}, 'stopped');
    process.exit(exitCode);
  }

  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGUSR1', () => dumpCounters('SIGUSR1'));
  process.on('SIGHUP', () => reload());

  onReady = () => {
    try {
      api?.start();
    } catch (e) {
      fail(`api: ${(e as Error).message.replace(/^api: /, '')}`, 1);
    }
    // Every queue open, the link configured, the pcap file open, the metrics and API sockets bound and every
    // shard's thread running with its modules loaded: nothing left needs root. setuid reaches every thread.
    if (cfg.user) {
      const why = dropPrivileges(cfg.user, log, api && cfg.api ? { path: cfg.api, group: cfg.apiGroup } : null);
      dropped = why === null;
      if (why) {
        process.stderr.write(`tapstackd: ${why}\n`);
        log.error({ user: cfg.user.name, err: why }, 'cannot drop privileges: stopping');
        shutdown('privileges', 1);
        return;
      }
    }
    log.info(
      {
        interface: tap.name,
        shards: n,
        steering,
        mac: formatMac(cfg.mac),
        mtu: cfg.mtu,
        ipv4: cfg.ipv4.map((a) => `${formatIpv4(a.addr)}/${a.prefix}`),
        vnetHdr: tap.vnetHdrSize > 0,
        offload: { csum: tap.csumOffload, tso: tap.tso },
        api: cfg.api,
        pcap: cfg.pcap,
        fault: cfg.fault ? faultSpecString(cfg.fault) : null,
        memory: cfg.memory,
      },
      'ready',
    );
    notifier.notify('READY=1', `STATUS=${statusLine()}`);
    notifier.watchdogStart();
  };
  return new Promise<never>(() => {});
}
