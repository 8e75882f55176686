/**
 * One stack shard (docs/shards.md): a worker thread of tapstackd running a
 * whole Stack on one queue of the multi-queue TAP the main thread opened,
 * with the built-in services listening, its own timers, tables and buffers.
 * It talks to the main thread only through messages, none per data packet:
 * the neighbour frames it relays (ARP replies, neighbour and router
 * advertisements: the kernel sends them to one queue whatever flow they
 * serve), counters on request, reloads, and the stop.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { CryptoRandom } from '../lib/random.js';
import { RealTime } from '../lib/time.js';
import { Stack } from '../net/stack.js';
import { sysctlGet, sysctlSet } from '../net/sysctl.js';
import type { RcvPage } from '../net/core/page.js';
import { inetDiagDump } from '../net/ipv4/inet_diag.js';
import { TapDriver } from '../drivers/tap.js';
import { errnoCode } from '../drivers/addon.js';
import { FaultedLink, type FaultSpec, type FaultStats } from '../drivers/fault.js';
import { PcapWriter } from '../drivers/pcap.js';
import { ARPOP_REPLY } from '../wire/arp.js';
import { NDISC_NEIGHBOUR_ADVERTISEMENT, NDISC_ROUTER_ADVERTISEMENT } from '../wire/icmpv6.js';
import { startService, startServices } from '../services/index.js';
import { SERVICE_NAMES, type ServiceName } from './config.js';
import { createLogger } from './log.js';
import { configCongestionModules, guardedReceive, installCwndTrace } from './frames.js';
import { TcpCongModules } from '../net/ipv4/tcp_cong_module.js';
import { metricsSnapshot, type MetricsSnapshot } from './metrics.js';
import { steerQueue } from '../drivers/tap_steer.js';
import { ShardProxy, type FromProxy, type ShardApiLimits, type ToProxy } from '../api/shard_proxy.js';

/** What the main thread gives each shard: its queue, and the config's parts a stack needs. */
export interface ShardData {
  index: number;
  shards: number;
  fd: number;
  vnetHdrSize: number;
  tap: string;
  mtu: number;
  mac: Uint8Array;
  ipv4: { addr: number; prefix: number }[];
  gateway: number;
  ipv6: { addr: Uint8Array; prefix: number }[] | null;
  ipv6Gateway: Uint8Array | null;
  ipv6Slaac: boolean;
  vnetHdr: boolean;
  offload: boolean;
  /** The daemon's memory cap: the limits it sizes are on the sum over the shards (share). */
  memory: number;
  /** The counts the shards share (stackShareCreate). */
  share: SharedArrayBuffer;
  sysctl: [string, string][];
  /** The fault injection (netem-style, per frame), each shard's own lines; null: none. */
  fault: FaultSpec | null;
  /** The daemon's capture file, opened O_APPEND with its header written (pcapOpenShared); null: none. */
  pcap: { path: string; fd: number } | null;
  /** Module files each shard loads into its own registry (a module runs in a worker of the shard's). */
  congestionModules: string[];
  services: Record<ServiceName, number | null>;
  logLevel: string;
  /** The API's limits, when the main thread routes clients' calls here (api/shard_router.ts). */
  api: ShardApiLimits | null;
}

/** A shard's own figures for the counters dump and the bench. */
export interface ShardReport {
  counters: Record<string, unknown>;
  neighbours: { addr: string; lladdr: string; state: string }[];
  txErrors: number;
  rxSlotsKept: number;
  /** Neighbour frames relayed to the other shards, and received from them. */
  relayedOut: number;
  relayedIn: number;
  /** This thread's CPU seconds (user, system) from /proc/thread-self/stat. */
  cpu: { user: number; system: number };
  services: { name: string; port: number; accepted: number }[];
  /** What the fault injection did here, each direction (with a fault config). */
  fault?: { rx: FaultStats; tx: FaultStats };
}

export type ToShard =
  | { type: 'relay'; frame: Uint8Array }
  | { type: 'report'; id: number }
  | { type: 'metrics'; id: number }
  | { type: 'reload'; id: number; logLevel: string; sysctl: [string, string][]; congestionModules: string[]; services: Record<ServiceName, number | null> }
  | { type: 'reattach'; id: number }
  | { type: 'carrierOn'; ifindex: number; steer: boolean }
  | { type: 'stop'; graceMs: number }
  | { type: 'stopNow' }
  | { type: 'api'; ms: ToProxy[] };

export type FromShard =
  | { type: 'ready'; index: number; csum: boolean; tso: boolean }
  | { type: 'fatal'; index: number; message: string }
  | { type: 'relay'; index: number; frame: Uint8Array }
  | { type: 'report'; id: number; report: ShardReport }
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot }
  | { type: 'reloaded'; id: number; failed: string[] }
  | { type: 'lost'; index: number; code: string }
  | { type: 'reattached'; id: number; error: string }
  | { type: 'stopped'; index: number; report: ShardReport; open: number }
  | { type: 'api'; ms: FromProxy[] };

const port = parentPort!;
const d = workerData as ShardData;
const post = (m: FromShard) => port.postMessage(m);
const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** USER_HZ: the unit of /proc's utime and stime (100 on every Linux ABI Node runs on). */
const USER_HZ = 100;
/** This thread's CPU time: fields 14 and 15 of /proc/thread-self/stat (after the parenthesised name). */
function threadCpu(): { user: number; system: number } {
  const st = readFileSync('/proc/thread-self/stat', 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / USER_HZ, system: Number(f[12]) / USER_HZ };
}

const log = createLogger(d.logLevel).child({ shard: d.index });
let tap: TapDriver;
try {
  tap = new TapDriver({ name: d.tap, mtu: d.mtu, vnetHdr: d.vnetHdr, offload: d.offload, multiQueue: true, queue: { fd: d.fd, vnetHdrSize: d.vnetHdrSize } });
} catch (e) {
  post({ type: 'fatal', index: d.index, message: `cannot use queue ${d.index} of ${d.tap}: ${(e as Error).message}` });
  process.exit(1);
}
const time = new RealTime();
const random = new CryptoRandom();
// With a fault config, each direction passes through a FaultLine, as in the single path.
const fault = d.fault ? new FaultedLink(d.fault, time, random, tap) : null;
const stack = new Stack(
  {
    ifname: d.tap,
    mac: buf(d.mac),
    mtu: d.mtu,
    ipv4: d.ipv4,
    gateway: d.gateway,
    ipv6: d.ipv6?.map((a) => ({ addr: buf(a.addr), prefix: a.prefix })),
    ipv6Gateway: d.ipv6Gateway ? buf(d.ipv6Gateway) : null,
    ipv6Slaac: d.ipv6Slaac,
    memory: d.memory,
  },
  fault?.link ?? tap,
  time,
  random,
  log,
);
// tcp_mem, udp_mem, the orphans and TIME_WAIT socks: limits on the whole daemon, not on this shard.
stack.shareAccounting(d.share, d.shards);
if (!d.fault) {
  stack.dev.tso = tap.tso;
  stack.dev.csumOffload = tap.csumOffload;
}
// connect()'s and UDP autobind's ephemeral ports: only those whose flow the steering program sends back to this queue.
const steered = (lport: number, dport: number) => steerQueue(dport, lport, d.shards) === d.index;
stack.tcp.hashinfo.connectPortOk = steered;
stack.udp.table.connectPortOk = steered;
// While net.ipv4.tcp_cwnd_trace=1: a debug line per ACK, with this shard's index (frames.ts).
installCwndTrace(stack, log);
try {
  stack.dev.ifindex = tap.addon.linkGetIndex(d.tap);
} catch {
  // Informational only.
}

/** Each sysctl the config set, with this stack's value before: what a key dropped on reload goes back to. */
const sysctlBefore = new Map<string, string>();
let sysctls = new Map<string, string>();
function applySysctl(name: string, value: string): string {
  if (!sysctlBefore.has(name)) sysctlBefore.set(name, String(sysctlGet(stack, name)));
  const err = { message: '' };
  return sysctlSet(stack, name, value, err) < 0 ? err.message || `${name}: refused` : '';
}
// Congestion modules before the sysctls (net.ipv4.tcp_congestion_control may name one), as the single path.
const ccModules = new TcpCongModules(stack.tcp, log);
let ccFiles = d.congestionModules;
{
  const failed = await configCongestionModules(ccModules, log, ccFiles, []);
  if (failed.length) {
    post({ type: 'fatal', index: d.index, message: `config: ${failed[0]}` });
    ccModules.stop();
    process.exit(1);
  }
}
for (const [name, value] of d.sysctl) {
  const why = applySysctl(name, value);
  if (why) {
    post({ type: 'fatal', index: d.index, message: `config: sysctl.${why}` });
    process.exit(1);
  }
  sysctls.set(name, value);
}

let relayedOut = 0;
let relayedIn = 0;
/**
 * The neighbour frames the other shards need: ARP replies, and ICMPv6
 * neighbour and router advertisements (the kernel's resolution answers, its
 * router's word). Requests and solicitations are answered here only: a
 * relayed one would be answered once per shard.
 */
function relayable(b: Buffer, off: number, len: number): boolean {
  if (len < 14 + 8) return false;
  const type = b.readUInt16BE(off + 12);
  if (type === 0x0806) return b.readUInt16BE(off + 14 + 6) === ARPOP_REPLY;
  if (type !== 0x86dd || len < 14 + 40 + 4) return false;
  if (b[off + 14 + 6] !== 58) return false;
  const icmpType = b[off + 14 + 40];
  return icmpType === NDISC_NEIGHBOUR_ADVERTISEMENT || icmpType === NDISC_ROUTER_ADVERTISEMENT;
}

// A bug in packet processing must not take the shard down: counted, logged (rate-limited), dropped.
const receive = guardedReceive(stack, log, time);
function rx(b: Buffer, off: number, len: number, csumValid = false, gsoSize = 0, page: RcvPage | null = null): void {
  receive(b, off, len, csumValid, gsoSize, page);
  if (relayable(b, off, len)) {
    relayedOut++;
    post({ type: 'relay', index: d.index, frame: Uint8Array.prototype.slice.call(b, off, off + len) });
  }
}
// Every frame in and out, into the daemon's one capture file (whole records: see drivers/pcap.ts).
const pcap = d.pcap ? new PcapWriter(d.pcap.path, undefined, d.pcap.fd) : null;
stack.dev.tap = pcap;
// A frame the fault line delays is received (and relayed, if the others need it) when it comes out.
const rxFirst = fault ? fault.receive(rx) : rx;
tap.start(rxFirst, (code) => log.error({ code }, 'TAP read failed'));
tap.onLost = (code) => {
  stack.carrierOff();
  post({ type: 'lost', index: d.index, code });
};
stack.up();
const services = startServices(stack, d.services, log);
/** The API calls on this shard's sockets (the main thread keeps the clients' connections). */
const api = d.api
  ? new ShardProxy(stack, { path: '', gid: null, ...d.api }, log, d.index, d.shards, (ms) => post({ type: 'api', ms }))
  : null;
let servicesCfg = d.services;

/** A snapshot with this shard's Api counters, for the main thread to merge with its router's (ApiRouter.merged). */
function withApi(snap: MetricsSnapshot, a: ShardProxy): MetricsSnapshot {
  snap.counters = { ...snap.counters, Api: { ...a.server.mib } };
  return snap;
}

function report(): ShardReport {
  return {
    counters: api ? { ...stack.counters(), Api: { ...api.server.mib } } : stack.counters(),
    neighbours: stack.neighbours(),
    txErrors: tap.txErrors,
    rxSlotsKept: tap.rxSlotsKept,
    relayedOut,
    relayedIn,
    cpu: threadCpu(),
    services: services.listeners.map((l) => ({ name: l.name, port: l.port, accepted: l.stats.accepted })),
    ...(fault ? { fault: fault.stats() } : {}),
  };
}

/** TCP states in which a closed connection has nothing left to send. */
const CLOSED_DONE = new Set(['FIN-WAIT-2', 'TIME-WAIT', 'CLOSE']);
const GRACE_CHECK_MS = 20;
const stillClosing = () => inetDiagDump(stack.tcp, stack.udp).rows.filter((r) => r.proto === undefined && !CLOSED_DONE.has(r.state)).length;

let stopping = false;
let graceTimer: NodeJS.Timeout | null = null;
let graceCheck: NodeJS.Timeout | null = null;
/**
 * The shard's last act: its figures to the main thread, then everything it
 * holds closed (the TAP's poll handle first of all: a worker torn down with
 * a foreign libuv handle open aborts the process), so that its loop runs
 * out and the thread exits of its own accord; the main thread waits for that.
 */
function finish(): void {
  if (graceTimer) clearTimeout(graceTimer);
  if (graceCheck) clearInterval(graceCheck);
  tap.flush();
  const open = stillClosing();
  const last = report();
  api?.stop();
  fault?.stop();
  stack.shutdown();
  pcap?.close();
  ccModules.stop();
  time.stop();
  tap.close();
  post({ type: 'stopped', index: d.index, report: last, open });
  port.close();
}

/**
 * SIGHUP's live keys in this shard: the log level, the congestion modules
 * (before the sysctls, which may name one), the sysctls, the services.
 * Answers with what failed, by key.
 */
async function reload(m: Extract<ToShard, { type: 'reload' }>): Promise<void> {
  log.level = m.logLevel;
  const failed = await configCongestionModules(ccModules, log, m.congestionModules, ccFiles);
  ccFiles = m.congestionModules;
  (stack as { debug: boolean }).debug = log.isLevelEnabled('debug');
  const after = new Map(m.sysctl);
  for (const [name, value] of after) {
    if (sysctls.get(name) === value) continue;
    const why = applySysctl(name, value);
    if (why) failed.push(`sysctl.${why}`);
  }
  for (const [name] of sysctls) if (!after.has(name)) sysctlSet(stack, name, sysctlBefore.get(name)!);
  sysctls = new Map([...after].filter(([name]) => !failed.some((f) => f.startsWith(`sysctl.${name}`))));
  for (const name of SERVICE_NAMES) {
    if (servicesCfg[name] === m.services[name]) continue;
    services.stopService(name);
    startService(services, stack, name, m.services[name], log);
  }
  servicesCfg = m.services;
  post({ type: 'reloaded', id: m.id, failed });
}

port.on('message', (m: ToShard) => {
  switch (m.type) {
    case 'relay':
      relayedIn++;
      try {
        stack.receive(buf(m.frame), 0, m.frame.byteLength);
      } catch (e) {
        stack.dev.stats.rx_errors++;
        log.error({ err: e }, 'internal error while processing a relayed frame; dropped');
      }
      break;
    case 'report':
      post({ type: 'report', id: m.id, report: report() });
      break;
    case 'metrics':
      post({ type: 'metrics', id: m.id, snapshot: api ? withApi(metricsSnapshot(stack), api) : metricsSnapshot(stack) });
      break;
    case 'reload':
      void reload(m);
      break;
    case 'reattach': {
      // This shard's queue, opened again on the interface that came back ('' when attached).
      let error = '';
      try {
        tap.reattach();
      } catch (e) {
        error = `${errnoCode(e) ?? ''} ${(e as Error).message}`.trim();
      }
      post({ type: 'reattached', id: m.id, error });
      break;
    }
    case 'carrierOn':
      // Every queue is back and the kernel side configured.
      if (m.steer) {
        try {
          tap.addon.setSteering(tap.fd, true);
        } catch (e) {
          log.warn({ err: (e as Error).message }, "the re-attached TAP's steering program was refused: flows keep tun's own hash");
        }
      }
      if (m.ifindex) stack.dev.ifindex = m.ifindex;
      if (!d.fault) {
        stack.dev.tso = tap.tso;
        stack.dev.csumOffload = tap.csumOffload;
      }
      stack.carrierOn();
      break;
    case 'stop':
      if (stopping) break;
      stopping = true;
      services.stop();
      tap.flush();
      if (m.graceMs > 0 && tap.attached && stillClosing()) {
        graceTimer = setTimeout(finish, m.graceMs);
        graceCheck = setInterval(() => {
          if (stillClosing() === 0) finish();
        }, GRACE_CHECK_MS);
        break;
      }
      finish();
      break;
    case 'stopNow':
      if (graceTimer) finish();
      break;
    case 'api':
      if (api) for (const x of m.ms) api.handle(x);
      break;
  }
});
post({ type: 'ready', index: d.index, csum: tap.csumOffload, tso: tap.tso });
