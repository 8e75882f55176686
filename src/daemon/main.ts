#!/usr/bin/env node
/**
 * tapstackd: the stack as a daemon on a TAP interface.
 * Edges only: flags and config, the TAP, logging, signals, counters dump.
 */
import { chownSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getSystemErrorName } from 'node:util';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { formatIpv4, formatIpv6, formatMac } from '../lib/addr.js';
import { CryptoRandom } from '../lib/random.js';
import { RealTime } from '../lib/time.js';
import { Stack } from '../net/stack.js';
import { sysctlGet, sysctlSet } from '../net/sysctl.js';
import { errnoCode } from '../drivers/addon.js';
import { PcapWriter } from '../drivers/pcap.js';
import { FaultedLink, faultSpecString } from '../drivers/fault.js';
import { TCP_ESTABLISHED, TCP_LISTEN } from '../net/core/sock.js';
import { inetDiagDump } from '../net/ipv4/inet_diag.js';
import { TcpCongModules } from '../net/ipv4/tcp_cong_module.js';
import { TapDriver } from '../drivers/tap.js';
import { ConfigError, DEFAULT_CONFIG_PATH, LIVE_KEYS, SERVICE_NAMES, configChanges, configHelp, configView, loadConfig, type Config, type RawConfig } from './config.js';
import { createLogger } from './log.js';
import { configCongestionModules, guardedReceive, installCwndTrace, writeStatsFile } from './frames.js';
import { dropPrivileges } from './privileges.js';
import { Notifier, monotonicUsec, notifySetup } from './notify.js';
import { startService, startServices } from '../services/index.js';
import { ApiServer } from '../api/server.js';
import { startMetricsServer } from './metrics.js';

/** sysexits.h EX_CONFIG: systemd does not restart on it (see the unit). */
const EX_CONFIG = 78;
/**
 * sysexits.h EX_UNAVAILABLE: the TAP went away and tapLost is "exit", or it
 * did not come back within tapReattachTimeout.
 */
const EX_TAP_LOST = 69;

function fail(line: string, code = 1): never {
  process.stderr.write(line.startsWith('tapstackd') ? `${line}\n` : `tapstackd: ${line}\n`);
  process.exit(code);
}

const noneToNull = (v: string | undefined): string | null | undefined => (v === 'none' ? null : v);

const cli = yargs(hideBin(process.argv))
  .scriptName('tapstackd')
  .usage('$0 [options]\n\nRun the tapstack TCP/IP stack on a TAP interface.')
  .options({
    config: { type: 'string', describe: 'JSON config file (keys as in config/default.json)' },
    tap: { type: 'string', describe: 'TAP interface to create or attach to' },
    // A string, so a bad value reaches the config check as typed (yargs would make it NaN).
    mtu: { type: 'string', describe: 'MTU of the link' },
    mac: { type: 'string', describe: "the stack's MAC address" },
    ipv4: { type: 'string', array: true, describe: "the stack's IPv4 address(es), ADDR/PREFIX" },
    gateway: { type: 'string', describe: 'default gateway (or "none")' },
    'host-ipv4': { type: 'string', describe: 'configure the kernel side of the TAP with ADDR/PREFIX (or "none")' },
    ipv6: { type: 'string', array: true, describe: 'the stack\'s IPv6 address(es), ADDR/PREFIX (or "none": IPv6 off)' },
    'ipv6-gateway': { type: 'string', describe: 'IPv6 default router (or "none")' },
    'host-ipv6': { type: 'string', describe: 'add ADDR/PREFIX to the kernel side of the TAP (or "none")' },
    'host-mac': { type: 'string', describe: 'set the kernel side MAC address of the TAP' },
    'vnet-hdr': { type: 'boolean', describe: 'open the TAP with IFF_VNET_HDR (virtio-net header on every frame)' },
    offload: { type: 'string', describe: 'on: checksum and TSO offloads with the kernel over the vnet header (implies --vnet-hdr); off: plain frames' },
    api: { type: 'string', describe: 'UNIX socket path of the syscall API (or "none")' },
    'api-group': { type: 'string', describe: 'group owning the API socket (mode 0660)' },
    // A string, as mtu: a bad value reaches the config check as typed.
    memory: { type: 'string', describe: "the daemon's memory cap in bytes: the stack's limits (tcp_mem, udp_mem) are scaled to it (default: a quarter of the machine's)" },
    pcap: { type: 'string', describe: 'write every frame in and out to this pcap file' },
    'stats-file': { type: 'string', describe: 'write the counters as JSON here on SIGUSR1 and at exit' },
    'log-level': { type: 'string', describe: 'fatal, error, warn, info, debug, trace or silent' },
    fault: { type: 'string', describe: 'impair frames both ways, netem-style: "loss=10%,delay=20ms,reorder=25%,duplicate=5%"' },
    'tap-lost': { type: 'string', describe: 'when the TAP is deleted: "reattach" (wait for it to come back) or "exit" (status 69)' },
    // A string, as --mtu: a bad value reaches the config check as typed.
    'tap-reattach-timeout': { type: 'string', describe: 'seconds to wait for a lost TAP before exiting with status 69 (0: for ever)' },
    // A string, as --mtu: a bad value reaches the config check as typed.
    shards: { type: 'string', describe: 'stack shards: one TAP queue and one worker thread each (docs/shards.md); 1: the single event loop' },
  });
const argv = cli
  .strict()
  .help()
  .version(false)
  .epilog(configHelp(Object.keys((cli as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key).filter((k) => k !== 'help' && k !== 'version')))
  .fail((msg, err) => fail(err ? err.message : msg, 2))
  .parseSync();

let cfg: Config;
/** The command line's keys: they win over the file at start and at each reload. */
let flags: Partial<RawConfig>;
try {
  flags = {
    tap: argv.tap,
    mtu: argv.mtu === undefined ? undefined : /^\d+$/.test(argv.mtu) ? Number(argv.mtu) : (argv.mtu as unknown as number),
    mac: argv.mac,
    ipv4: argv.ipv4 as string[] | undefined,
    gateway: noneToNull(argv.gateway),
    hostIpv4: noneToNull(argv['host-ipv4']),
    ipv6: argv.ipv6 === undefined ? undefined : argv.ipv6.length === 1 && argv.ipv6[0] === 'none' ? null : (argv.ipv6 as string[]),
    ipv6Gateway: noneToNull(argv['ipv6-gateway']),
    hostIpv6: noneToNull(argv['host-ipv6']),
    hostMac: argv['host-mac'],
    vnetHdr: argv['vnet-hdr'],
    offload: argv.offload === undefined ? undefined : argv.offload === 'on' ? true : argv.offload === 'off' ? false : (argv.offload as unknown as boolean),
    api: noneToNull(argv.api),
    apiGroup: argv['api-group'],
    memory: argv.memory === undefined ? undefined : /^\d+$/.test(argv.memory) ? Number(argv.memory) : (argv.memory as unknown as number),
    pcap: argv.pcap,
    statsFile: argv['stats-file'],
    logLevel: argv['log-level'],
    fault: argv.fault,
    tapLost: argv['tap-lost'],
    tapReattachTimeout:
      argv['tap-reattach-timeout'] === undefined
        ? undefined
        : /^\d+(\.\d+)?$/.test(argv['tap-reattach-timeout'])
          ? Number(argv['tap-reattach-timeout'])
          : (argv['tap-reattach-timeout'] as unknown as number),
    shards: argv.shards === undefined ? undefined : /^\d+$/.test(argv.shards) ? Number(argv.shards) : (argv.shards as unknown as number),
  };
  cfg = loadConfig(argv.config, flags);
} catch (e) {
  if (e instanceof ConfigError) fail(e.message, EX_CONFIG);
  throw e;
}

const log = createLogger(cfg.logLevel);

/** Set once a shutdown has begun (a signal, or the TAP lost for good). */
let stopping = false;
/** Set once the daemon runs as cfg.user with no capabilities (dropPrivileges). */
let dropped = false;

// The service manager (systemd's Type=notify): READY=1, STATUS=, WATCHDOG=1, STOPPING=1.
const notifier = new Notifier(notifySetup(process.env, process.pid), (errno, first) =>
  log.warn({ socket: process.env.NOTIFY_SOCKET, code: getSystemErrorName(-errno), message: first }, 'cannot notify the service manager'),
);
for (const i of notifier.setup.ignored) log.warn({ variable: i.name, value: i.value }, `${i.name} ignored: it ${i.why}`);

let tap: TapDriver;
try {
  // The fault injector works frame by frame, as netem does on a plain link: no super-frames under it.
  // With shards, the first queue of a multi-queue TAP (docs/shards.md); the shards' code opens the others.
  tap = new TapDriver({ name: cfg.tap, mtu: cfg.mtu, vnetHdr: cfg.vnetHdr, offload: cfg.offload && !cfg.fault, multiQueue: cfg.shards > 1 });
} catch (e) {
  const code = errnoCode(e);
  if (code === 'EPERM' || code === 'EACCES') fail('tapstackd needs CAP_NET_ADMIN or an existing TAP owned by this user');
  fail(`cannot open TAP ${cfg.tap}: ${code ?? ''} ${(e as Error).message}`);
}

// The kernel side of the link. Without CAP_NET_ADMIN on a TAP we own, the
// interface stays as its owner configured it. At start a failure of a
// required step is fatal; on a re-attach it is logged and the link used as
// it is (the connections the daemon carries matter more).
function linkConfig(what: string, fn: () => void, required: boolean, reattach: boolean): void {
  try {
    fn();
  } catch (e) {
    const code = errnoCode(e);
    if (!required && (code === 'EPERM' || code === 'EACCES')) {
      log.warn({ interface: cfg.tap, code }, `cannot set ${what}; using the interface as it is`);
      return;
    }
    if (reattach) {
      log.error({ interface: cfg.tap, code }, `cannot set ${what} on the re-attached TAP: ${(e as Error).message}`);
      return;
    }
    tap.close();
    fail(`cannot set ${what} on ${cfg.tap}: ${(e as Error).message}`);
  }
}
const addon = tap.addon;
/**
 * Configure the kernel side as the config says: at start, and again on
 * each re-attach (`afterDrop`: the privileges are gone, the shards' drop
 * passes its own).
 */
function configureLink(reattach: boolean, afterDrop = dropped): void {
  if (reattach && afterDrop) {
    // CAP_NET_ADMIN went with the drop: whoever re-created the TAP for our user configured its kernel side.
    const keys = ['mtu', ...(cfg.hostMac ? ['hostMac'] : []), ...(cfg.hostIpv4 ? ['hostIpv4'] : []), ...(cfg.hostIpv6 ? ['hostIpv6'] : [])];
    log.warn({ interface: tap.name, notApplied: keys, user: cfg.user?.name }, 'the re-attached TAP is used as its creator configured it (no CAP_NET_ADMIN after the privilege drop)');
    return;
  }
  linkConfig('the MTU', () => addon.linkSetMtu(tap.name, cfg.mtu), false, reattach);
  if (cfg.hostMac) linkConfig('the host MAC', () => addon.linkSetMac(tap.name, cfg.hostMac!), true, reattach);
  if (cfg.hostIpv4) linkConfig('the host IPv4 address', () => addon.addrSetIpv4(tap.name, cfg.hostIpv4!.addr, cfg.hostIpv4!.prefix), true, reattach);
  if (cfg.hostIpv6) {
    linkConfig(
      'the host IPv6 address',
      () => {
        try {
          addon.addrSetIpv6(tap.name, cfg.hostIpv6!.addr, cfg.hostIpv6!.prefix);
        } catch (e) {
          const code = errnoCode(e);
          // Already there (a persistent TAP, a restart): what we wanted.
          if (code === 'EEXIST') return;
          // A kernel without IPv6 (EAFNOSUPPORT), or IPv6 disabled on the interface
          // (disable_ipv6: EACCES): the kernel side cannot speak IPv6; the stack still can.
          if (code === 'EAFNOSUPPORT' || code === 'EACCES') {
            log.warn({ interface: cfg.tap, code }, 'cannot set the host IPv6 address: IPv6 is off on the kernel side');
            return;
          }
          throw e;
        }
      },
      true,
      reattach,
    );
  }
  linkConfig('the link up', () => addon.linkSetUp(tap.name, true), false, reattach);
}
configureLink(false);

if (cfg.shards > 1) {
  // One stack per queue in worker threads: the shards' code runs the daemon from here and ends the
  // process itself (a signal, the TAP's loss); the single event loop's path below never runs.
  const { runShards } = await import('./shards.js');
  await runShards({ cfg, configPath: argv.config, flags, log, notifier, tap, fail, configureLink });
}

const time = new RealTime();
const random = new CryptoRandom();
// With --fault, each direction passes through a FaultLine (netem's job, in-process).
const fault = cfg.fault ? new FaultedLink(cfg.fault, time, random, tap) : null;
const stack = new Stack(
  {
    ifname: tap.name,
    mac: cfg.mac,
    mtu: cfg.mtu,
    ipv4: cfg.ipv4,
    gateway: cfg.gateway,
    ipv6: cfg.ipv6 ?? undefined,
    ipv6Gateway: cfg.ipv6Gateway,
    ipv6Slaac: cfg.ipv6Slaac,
    memory: cfg.memory,
  },
  fault?.link ?? tap,
  time,
  random,
  log,
);
// Linux turns IPv6 off on a link that cannot carry 1280-byte packets.
if (cfg.ipv6 && !stack.ipv6.enabled) log.warn({ interface: tap.name, mtu: cfg.mtu }, 'IPv6 is off: the MTU is below 1280');
if (!cfg.fault) {
  // What TUNSETOFFLOAD accepted (a refused flag leaves software segmentation and checksums).
  stack.dev.tso = tap.tso;
  stack.dev.csumOffload = tap.csumOffload;
}
// The config's sysctl settings (already checked against a scratch copy).
/** Each sysctl the config set, with the stack's value before it did: what a key dropped from the config on reload goes back to. */
const sysctlBefore = new Map<string, string>();
function configSysctl(name: string, value: string): string {
  if (!sysctlBefore.has(name)) sysctlBefore.set(name, String(sysctlGet(stack, name)));
  const err = { message: '' };
  return sysctlSet(stack, name, value, err) < 0 ? err.message || 'refused' : '';
}
// Congestion-control modules before the sysctls: net.ipv4.tcp_congestion_control may name one.
const ccModules = new TcpCongModules(stack.tcp, log);
{
  const failed = await configCongestionModules(ccModules, log, cfg.congestionModules, []);
  if (failed.length) fail(`config: ${failed[0]}`, EX_CONFIG);
}
for (const [name, value] of cfg.sysctl) {
  const why = configSysctl(name, value);
  if (why) fail(`config: sysctl.${why}`, EX_CONFIG);
}
// While net.ipv4.tcp_cwnd_trace=1: a debug line per ACK (frames.ts).
installCwndTrace(stack, log);
try {
  stack.dev.ifindex = addon.linkGetIndex(tap.name);
} catch {
  // Informational only.
}

let pcap: PcapWriter | null = null;
if (cfg.pcap) {
  try {
    pcap = new PcapWriter(cfg.pcap);
  } catch (e) {
    tap.close();
    fail(`cannot open pcap file ${cfg.pcap}: ${(e as Error).message}`);
  }
  stack.dev.tap = pcap;
}

// A bug in packet processing must not take the daemon down: counted as an rx error, logged (rate-limited).
const rx = guardedReceive(stack, log, time);

const rxFirst = fault ? fault.receive(rx) : rx;
tap.start(rxFirst, (code) => log.error({ code }, 'TAP read failed'));
tap.onLost = tapLost;
stack.up();
const services = startServices(stack, cfg.services, log);
let api: ApiServer | null = null;
if (cfg.api) {
  api = new ApiServer(stack, { path: cfg.api, gid: cfg.apiGroup, lowPortGid: cfg.apiLowPortGroup, maxSockets: cfg.apiMaxSockets, maxBuffered: cfg.apiMaxBuffered, maxBufferedTotal: cfg.apiMaxBufferedTotal }, log);
  api.rings = cfg.apiRings;
  api.ccModules = ccModules;
  try {
    api.start();
  } catch (e) {
    log.error({ err: (e as Error).message }, 'cannot start the API');
    fail(`api: ${(e as Error).message.replace(/^api: /, '')}`, 1);
  }
}

// The Prometheus endpoint: on the host, bound before any privilege is dropped.
const metrics = cfg.metricsListen
  ? startMetricsServer(
      stack,
      cfg.metricsListen.host,
      cfg.metricsListen.port,
      () => ({ ...(api ? { Api: { ...api.mib } } : {}), Tap: { attached: tap.attached ? 1 : 0, lost: tap.lost, reattached: tap.reattached } }),
      (addr) => log.info({ addr }, 'metrics listening'),
      (e) => fail(`metricsListen: ${e.message}`, 1),
    )
  : null;

// --- the service manager's STATUS= ------------------------------------------------

/** How often the socket counts are looked at; STATUS= goes only when the line changed. */
const STATUS_MS = 1000;
let lastStatus = '';
/** What `systemctl status` shows: the link, and the sockets the stack holds. */
function statusLine(): string {
  let est = 0;
  let listen = 0;
  let other = 0;
  for (const sk of stack.tcp.socks) {
    if (sk.state === TCP_ESTABLISHED) est++;
    else if (sk.state === TCP_LISTEN) listen++;
    else other++;
  }
  const link = stopping ? 'stopping' : tap.attached ? 'up' : 'lost, waiting for it to come back';
  const line = `${tap.name} ${link}; TCP ${est} established, ${listen} listening, ${other} other, ${stack.tcp.tw.count} time-wait; UDP ${stack.udp.table.count}; API clients ${api?.clients.size ?? 0}`;
  lastStatus = line;
  return line;
}
if (notifier.enabled) {
  setInterval(() => {
    const prev = lastStatus;
    const line = statusLine();
    if (line !== prev) notifier.notify(`STATUS=${line}`);
  }, STATUS_MS).unref();
}

// --- the privilege drop ---------------------------------------------------------

if (cfg.user) {
  const why = dropPrivileges(cfg.user, log, api && cfg.api ? { path: cfg.api, group: cfg.apiGroup } : null);
  if (why) fail(why);
  dropped = true;
}

// --- SIGHUP: the config file again ------------------------------------------------

/** The file key a Config key comes from, for the log. */
function fileKey(k: keyof Config, next: Config): string[] {
  if (k === 'tapReattachTimeoutMs') return ['tapReattachTimeout'];
  if (k === 'user') {
    const a = cfg.user;
    const b = next.user;
    if (!a || !b) return ['user'];
    return [...(a.uid !== b.uid ? ['user'] : []), ...(a.gid !== b.gid ? ['group'] : [])];
  }
  return [k];
}

/**
 * Apply one changed key that LIVE_KEYS lists; why it could not be, or ''.
 * A key that fails keeps its running value.
 */
function applyLive(k: keyof Config, next: Config): string {
  switch (k) {
    case 'logLevel':
      log.level = next.logLevel;
      // The stack asks once whether to build its debug lines (tcp state, neighbour state): ask again.
      (stack as { debug: boolean }).debug = log.isLevelEnabled('debug');
      break;
    case 'sysctl': {
      const before = new Map(cfg.sysctl);
      const after = new Map(next.sysctl);
      const failed: string[] = [];
      for (const [name, value] of after) {
        if (before.get(name) === value) continue;
        const why = configSysctl(name, value);
        if (why) failed.push(`${name}: ${why}`);
        else log.info({ sysctl: name, value }, 'reload: sysctl set');
      }
      for (const [name] of before) {
        if (after.has(name)) continue;
        // Out of the config: back to the stack's own value.
        const value = sysctlBefore.get(name)!;
        sysctlSet(stack, name, value);
        log.info({ sysctl: name, value }, 'reload: sysctl no longer configured: back to its value before the config set it');
      }
      if (failed.length) return failed.join('; ');
      break;
    }
    case 'congestionModules': {
      // Loading takes a worker's start: the outcome is logged when it is known, by key.
      const before = cfg.congestionModules;
      void configCongestionModules(ccModules, log, next.congestionModules, before).then((failed) => {
        for (const f of failed) log.error({ key: f.slice(0, f.indexOf(':')), err: f }, `reload: ${f}`);
      });
      break;
    }
    case 'services':
      for (const name of SERVICE_NAMES) {
        if (cfg.services[name] === next.services[name]) continue;
        // Moved or turned off: its listener and connections close as at shutdown, then it starts on the new port.
        services.stopService(name);
        startService(services, stack, name, next.services[name], log);
        log.info({ service: name, from: cfg.services[name], to: next.services[name] }, 'reload: service moved');
      }
      break;
    case 'apiGroup':
      if (api && cfg.api) {
        try {
          chownSync(cfg.api, -1, next.apiGroup ?? (dropped ? cfg.user!.gid : 0));
        } catch (e) {
          return `cannot change the API socket's group: ${(e as Error).message}${dropped ? ' (after the privilege drop the daemon may only give it its own group)' : ''}`;
        }
        api.opts.gid = next.apiGroup;
      }
      break;
    case 'apiLowPortGroup':
      if (api) api.opts.lowPortGid = next.apiLowPortGroup;
      break;
    case 'apiMaxSockets':
      if (api) api.opts.maxSockets = next.apiMaxSockets;
      break;
    case 'apiRings':
      // Asked for in each client's hello: clients connected from now on.
      if (api) api.rings = next.apiRings;
      break;
    case 'apiMaxBuffered':
      if (api) api.opts.maxBuffered = next.apiMaxBuffered;
      break;
    case 'apiMaxBufferedTotal':
      // Bounded by the memory the daemon runs with, which does not change live.
      if (next.apiMaxBufferedTotal > cfg.memory / 2) return `${next.apiMaxBufferedTotal} is over half of the running memory (${cfg.memory} bytes)`;
      if (api) api.opts.maxBufferedTotal = next.apiMaxBufferedTotal;
      break;
    default:
      // Read where they are used: statsFile, tapLost, tapReattachTimeoutMs, shutdownGraceMs.
      break;
  }
  return '';
}

/**
 * SIGHUP: read the config file (and the command line's flags over it) again.
 * A config that does not check is refused whole, the running one kept; else
 * each changed key that can change live is applied, and each that cannot
 * (the TAP, addresses, offloads, memory, the API path, user and group) is
 * logged by its key and keeps its running value until a restart.
 */
function reload(): void {
  if (stopping) return;
  const file = argv.config ?? DEFAULT_CONFIG_PATH;
  notifier.notify('RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`, `STATUS=reloading ${file}`);
  let next: Config;
  try {
    next = loadConfig(argv.config, flags);
  } catch (e) {
    const key = e instanceof ConfigError ? e.key : null;
    log.error({ file, key, err: (e as Error).message }, `reload refused, the running configuration kept: ${(e as Error).message}`);
    notifier.notify('READY=1', `STATUS=reload of ${file} refused (${key ?? 'error'}); ${statusLine()}`);
    return;
  }
  const applied: string[] = [];
  const notApplied: string[] = [];
  const failed: string[] = [];
  const running = configView(cfg);
  const wanted = configView(next);
  for (const k of configChanges(cfg, next)) {
    const keys = fileKey(k, next);
    if (!LIVE_KEYS.includes(k)) {
      for (const key of keys) {
        notApplied.push(key);
        log.warn({ key, running: running[k], configured: wanted[k] }, `reload: ${key} cannot change while the daemon runs: keeping the running value (restart to apply)`);
      }
      continue;
    }
    const why = applyLive(k, next);
    if (why) {
      failed.push(...keys);
      log.error({ key: k, err: why }, `reload: ${k} not applied: ${why}`);
      continue;
    }
    (cfg as unknown as Record<string, unknown>)[k] = next[k];
    applied.push(...keys);
  }
  log.info({ file, applied, notApplied, failed }, 'reloaded');
  notifier.notify('READY=1', `STATUS=${statusLine()}`);
}

// Handlers first: whoever waits for "ready" may signal at once, and an
// unhandled SIGUSR1 would start Node's inspector instead of dumping counters.
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGUSR1', () => dumpCounters('SIGUSR1'));
process.on('SIGHUP', () => reload());

log.info(
  {
    interface: tap.name,
    ifindex: stack.dev.ifindex,
    mac: formatMac(cfg.mac),
    mtu: cfg.mtu,
    ipv4: cfg.ipv4.map((a) => `${formatIpv4(a.addr)}/${a.prefix}`),
    gateway: cfg.gateway ? formatIpv4(cfg.gateway) : null,
    hostIpv4: cfg.hostIpv4 ? `${formatIpv4(cfg.hostIpv4.addr)}/${cfg.hostIpv4.prefix}` : null,
    ipv6: stack.ipv6.enabled ? stack.ipv6.addresses().map((a) => `${a.addr}/${a.prefix}`) : null,
    ipv6Gateway: cfg.ipv6Gateway ? formatIpv6(cfg.ipv6Gateway) : null,
    hostIpv6: cfg.hostIpv6 ? `${formatIpv6(cfg.hostIpv6.addr)}/${cfg.hostIpv6.prefix}` : null,
    vnetHdr: tap.vnetHdrSize > 0,
    offload: { csum: stack.dev.csumOffload, tso: stack.dev.tso },
    pcap: cfg.pcap,
    fault: cfg.fault ? faultSpecString(cfg.fault) : null,
    api: cfg.api,
    memory: cfg.memory,
  },
  'ready',
);
notifier.notify('READY=1', `STATUS=${statusLine()}`);
notifier.watchdogStart();

// How late the event loop runs timers (a frame, an API call waits that long): a timer every
// 10 ms, cheap; each dump reports the spread since the previous dump. The histogram holds
// the whole interval between ticks, so the 10 ms asked for is taken off.
const LOOP_RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();
const nsToMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100);


// --- the TAP's loss and return -------------------------------------------------

/** Waits between attempts to re-attach: from 100 ms, doubling, up to 1 s. */
const REATTACH_FIRST_MS = 100;
const REATTACH_MAX_MS = 1000;
let lostAt = 0;
let reattachTimer: NodeJS.Timeout | null = null;

/**
 * The TAP is gone (deleted under us). The stack loses its carrier: sends
 * fail with ENETDOWN, connections keep their state and retransmit on their
 * timers. Then either exit (tapLost "exit") or wait for an interface of the
 * same name and attach to it again.
 */
function tapLost(code: string): void {
  lostAt = Date.now();
  stack.carrierOff();
  if (cfg.tapLost === 'exit') {
    const line = `tapstackd: TAP ${tap.name} lost (${code}: the interface was deleted); exiting (tapLost is "exit")`;
    log.error({ interface: tap.name, code, tapLost: cfg.tapLost }, 'TAP lost: exiting');
    process.stderr.write(`${line}\n`);
    shutdown('tap-lost', EX_TAP_LOST);
    return;
  }
  log.error(
    { interface: tap.name, code, timeoutS: cfg.tapReattachTimeoutMs / 1000 || null },
    'TAP lost: the link is down until the interface comes back',
  );
  scheduleReattach(REATTACH_FIRST_MS);
}

/** The next attempt in `wait` ms; `delay` is the backoff step it stands for. */
function scheduleReattach(wait: number, delay = wait): void {
  reattachTimer = setTimeout(() => tryReattach(delay), wait);
}

/** Why the last attempt failed (logged once per distinct reason, not per attempt). */
let lastReattachWhy = '';

function tryReattach(delay: number): void {
  reattachTimer = null;
  if (stopping) return;
  const waited = Date.now() - lostAt;
  const next = Math.min(delay * 2, REATTACH_MAX_MS);
  // Absent: keep waiting (never create it: whoever deleted it decides whether it comes back).
  let present = true;
  try {
    addon.linkGetIndex(tap.name);
  } catch {
    present = false;
  }
  if (present) {
    try {
      tap.reattach();
    } catch (e) {
      const code = errnoCode(e) ?? '';
      const why = `${code} ${(e as Error).message}`;
      if (why !== lastReattachWhy) {
        lastReattachWhy = why;
        // EPERM: not ours (re-created without `user` for us, and we lack CAP_NET_ADMIN); EBUSY: someone else has it.
        log.warn({ interface: tap.name, code }, `cannot attach to ${tap.name} yet: ${(e as Error).message}`);
      }
    }
  }
  if (tap.attached) {
    lastReattachWhy = '';
    configureLink(true);
    try {
      stack.dev.ifindex = addon.linkGetIndex(tap.name);
    } catch {
      // Informational only.
    }
    if (!cfg.fault) {
      stack.dev.tso = tap.tso;
      stack.dev.csumOffload = tap.csumOffload;
    }
    stack.carrierOn();
    log.info({ interface: tap.name, ifindex: stack.dev.ifindex, outageMs: Date.now() - lostAt, reattached: tap.reattached }, 'TAP back: re-attached');
    return;
  }
  const left = cfg.tapReattachTimeoutMs ? cfg.tapReattachTimeoutMs - waited : Infinity;
  if (left <= 0) {
    const line = `tapstackd: TAP ${tap.name} did not come back within ${cfg.tapReattachTimeoutMs / 1000} s (tapReattachTimeout); exiting`;
    log.error({ interface: tap.name, waitedMs: waited }, 'TAP lost: gave up waiting');
    process.stderr.write(`${line}\n`);
    shutdown('tap-lost', EX_TAP_LOST);
    return;
  }
  // The last attempt falls on the bound itself.
  scheduleReattach(Math.min(next, left), next);
}

/** process.memoryUsage() reads /proc/self/statm: at the descriptor limit it throws, and the counters must still come. */
function memoryUsage(): NodeJS.MemoryUsage | { error: string } {
  try {
    return process.memoryUsage();
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

function dumpCounters(reason: string): void {
  // Under --expose-gc (the bench runs the daemon so), report live memory, not garbage awaiting collection.
  (globalThis as { gc?: () => void }).gc?.();
  const counters = {
    interface: tap.name,
    counters: {
      ...stack.counters(),
      ...(api ? { Api: { ...api.mib } } : {}),
      // The TAP deleted under the daemon, and attached again (Link.X.carrier_*_count count the same from the stack's side).
      Tap: { attached: tap.attached ? 1 : 0, lost: tap.lost, reattached: tap.reattached },
    },
    neighbours: stack.neighbours(),
    ...(stack.ipv6.enabled ? { ipv6: { addresses: stack.ipv6.addresses(), routes: stack.ipv6.routes() } } : {}),
    txErrors: tap.txErrors,
    // Received super-frames whose ring slot a socket kept (payload referenced, not copied).
    rxSlotsKept: tap.rxSlotsKept,
    memory: memoryUsage(),
    // Milliseconds late, over the interval since the last dump (then restarted).
    eventLoopDelay: loopDelay.count
      ? { samples: loopDelay.count, p50: nsToMs(loopDelay.percentile(50)), p99: nsToMs(loopDelay.percentile(99)), max: nsToMs(loopDelay.max), mean: nsToMs(loopDelay.mean) }
      : { samples: 0, p50: 0, p99: 0, max: 0, mean: 0 },
    ...(fault ? { fault: fault.stats() } : {}),
  };
  // pino stamps the log line itself; the file gets its own time.
  loopDelay.reset();
  log.info({ reason, ...counters }, 'counters');
  if (cfg.statsFile) writeStatsFile(log, cfg.statsFile, counters);
}

/** TCP states in which a closed connection has nothing left to send: its FIN is acknowledged (or it is gone). */
const CLOSED_DONE = new Set(['FIN-WAIT-2', 'TIME-WAIT', 'CLOSE']);
/** How often the grace period looks at what is still closing (the stack has no event for "all closed"). */
const GRACE_CHECK_MS = 20;

/** The stack's TCP sockets still sending their data or FIN, as ss shows them. */
function stillClosing(): { state: string; local: string; peer: string; sendQ: number }[] {
  return inetDiagDump(stack.tcp, stack.udp)
    .rows.filter((r) => r.proto === undefined && !CLOSED_DONE.has(r.state))
    .map((r) => ({ state: r.state, local: r.local, peer: r.peer, sendQ: r.sendQ }));
}

let graceTimer: NodeJS.Timeout | null = null;
let graceCheck: NodeJS.Timeout | null = null;
let exitCode = 0;

/**
 * SIGTERM/SIGINT (or the TAP lost for good): stop accepting, close every
 * connection as close() does (the API's clients' sockets and the services':
 * what was written goes first, then the FIN; RST where data is unread),
 * then wait until each has had its data and FIN acknowledged, or for
 * shutdownGraceMs, whichever comes first, and exit. A second signal exits
 * at once. With the TAP gone nothing can be sent: no wait.
 */
function shutdown(signal: string, code = 0): void {
  if (stopping) {
    if (graceTimer) {
      log.warn({ signal }, 'second signal: not waiting for the connections any longer');
      finish();
    }
    return;
  }
  stopping = true;
  exitCode = code;
  if (reattachTimer) clearTimeout(reattachTimer);
  const graceMs = tap.attached ? cfg.shutdownGraceMs : 0;
  log.info({ signal, graceMs }, 'shutting down');
  notifier.watchdogStop();
  notifier.notify('STOPPING=1', `STATUS=${statusLine()}`);
  api?.stop();
  metrics?.close();
  services.stop();
  tap.flush();
  if (graceMs > 0 && stillClosing().length) {
    log.info({ connections: stillClosing().length, graceMs }, 'waiting for the connections to send their data and FIN');
    graceTimer = setTimeout(finish, graceMs);
    graceCheck = setInterval(() => {
      if (stillClosing().length === 0) finish();
    }, GRACE_CHECK_MS);
    return;
  }
  finish();
}

function finish(): void {
  if (graceTimer) clearTimeout(graceTimer);
  if (graceCheck) clearInterval(graceCheck);
  graceTimer = graceCheck = null;
  const open = stillClosing();
  if (open.length) log.warn({ connections: open }, `exiting with ${open.length} connection(s) still sending their data or FIN`);
  tap.flush();
  dumpCounters('exit');
  fault?.stop();
  stack.shutdown();
  ccModules.stop();
  time.stop();
  tap.close();
  pcap?.close();
  log.info({}, 'stopped');
  process.exit(exitCode);
}

