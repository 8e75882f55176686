/**
 * tapstackd's configuration: config/default.json, then the --config file,
 * then command-line flags, each key checked. A bad value stops start-up
 * with one line naming the key and the value.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { faultSpecString, parseFaultSpec, type FaultSpec } from '../drivers/fault.js';
import { sysctlValidate } from '../net/sysctl.js';
import { checkCongModuleFile } from '../net/ipv4/tcp_cong_module.js';
import { isAbsolute } from 'node:path';
import {
  formatIpv4,
  formatIpv6,
  formatMac,
  ipv6Equal,
  ipv6IsLinkLocal,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6IsV4Mapped,
  ipv6PrefixEqual,
  macIsMulticast,
  macIsZero,
  parseIpv4,
  parseIpv4Prefix,
  parseIpv6,
  parseIpv6Prefix,
  parseMac,
  prefixMask,
  type Ipv4Prefix,
  type Ipv6Prefix,
} from '../lib/addr.js';

export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../../config/default.json', import.meta.url));

/** The file form: what default.json and --config files hold. */
export interface RawConfig {
  tap: string;
  mtu: number;
  mac: string;
  ipv4: string | string[];
  gateway: string | null;
  hostIpv4: string | null;
  /** The stack's IPv6 address(es), ADDR/PREFIX; null: IPv6 off. */
  ipv6: string | string[] | null;
  /** The kernel side's IPv6 address, or null to leave it alone. */
  hostIpv6: string | null;
  ipv6Gateway: string | null;
  ipv6Slaac: boolean;
  hostMac: string | null;
  vnetHdr: boolean;
  offload: boolean;
  api: string | null;
  apiGroup: string | number | null;
  apiLowPortGroup: string | number | null;
  apiMaxSockets: number;
  apiMaxBuffered: number;
  apiRings: boolean;
  /** null: derived from memory (apiMaxBufferedTotalDefault). */
  apiMaxBufferedTotal: number | null;
  /** Bytes; null: memoryDefault(). */
  memory: number | null;
  pcap: string | null;
  statsFile: string | null;
  /** "host:port" for the Prometheus endpoint (GET /metrics), null: off. */
  metricsListen: string | null;
  logLevel: string;
  services: Record<string, number | null>;
  fault: string | null;
  /** Stack settings by Linux sysctl name, e.g. {"net.ipv4.tcp_sack": 0, "net.ipv4.tcp_rmem": "4096 131072 6291456"}. */
  sysctl: Record<string, string | number>;
  /** What to do when the TAP goes away (`ip link del`): "reattach" (wait for it) or "exit". */
  tapLost: string;
  /** Seconds to wait for the TAP to come back before exiting; 0: wait for ever. */
  tapReattachTimeout: number;
  /** The user (name or uid) the daemon drops to once the TAP and the API are set up; null: no drop. */
  user: string | number | null;
  /** The group (name or gid) of the drop; null: the user's primary group. */
  group: string | number | null;
  /** Milliseconds SIGTERM waits for open connections to send their data and FIN; 0: none. */
  shutdownGraceMs: number;
  /** Congestion-control module files (docs/congestion.md), loaded at start and on reload. */
  congestionModules: string[];
  /** Stack shards: one TAP queue and one worker thread each (docs/shards.md); 1: the single event loop. */
  shards: number;
}

/** The built-in services and their default ports (null turns one off). */
export const SERVICE_NAMES = ['echo', 'discard', 'chargen', 'http'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The checked form the daemon runs with. */
export interface Config {
  tap: string;
  mtu: number;
  mac: Buffer;
  ipv4: Ipv4Prefix[];
  gateway: number;
  hostIpv4: Ipv4Prefix | null;
  /** The stack's static IPv6 addresses (a link-local one is added); null: IPv6 off. */
  ipv6: Ipv6Prefix[] | null;
  hostIpv6: Ipv6Prefix | null;
  /** IPv6 default router, or null (one may still come from Router Advertisements). */
  ipv6Gateway: Buffer | null;
  ipv6Slaac: boolean;
  hostMac: Buffer | null;
  vnetHdr: boolean;
  /** Checksum and TSO offloads over the vnet header (implies vnetHdr); off with a fault spec. */
  offload: boolean;
  /** The syscall API's socket path, or null for no API. */
  api: string | null;
  /** Group of the API socket (mode 0660), as a gid. */
  apiGroup: number | null;
  /** Group whose members may bind ports below 1024 through the API. */
  apiLowPortGroup: number | null;
  apiMaxSockets: number;
  apiMaxBuffered: number;
  apiMaxBufferedTotal: number;
  /** Offer shared-memory data rings to clients that ask (docs/api.md "Data rings"). */
  apiRings: boolean;
  /** The daemon's memory cap in bytes: the stack's limits (tcp_mem, udp_mem, ...) are scaled to it, the API's total is bounded by it. */
  memory: number;
  pcap: string | null;
  statsFile: string | null;
  /** The Prometheus endpoint's address on the host, or null (off). */
  metricsListen: { host: string; port: number } | null;
  logLevel: string;
  services: Record<ServiceName, number | null>;
  /** Impairment between the stack and the TAP (tests and demos), or null. */
  fault: FaultSpec | null;
  /** Checked sysctl settings, applied to the stack at start-up in this order. */
  sysctl: [string, string][];
  /** On the TAP's loss: wait for it and re-attach, or exit (EX_TAP_LOST). */
  tapLost: TapLostMode;
  /** Milliseconds a re-attach may wait before the daemon gives up and exits; 0: no bound. */
  tapReattachTimeoutMs: number;
  /** The uid and gid to drop to after start-up (from user and group), or null. */
  user: { uid: number; gid: number; name: string } | null;
  /** Milliseconds SIGTERM waits for the connections it closes; 0: exit at once. */
  shutdownGraceMs: number;
  /** Congestion-control module files, absolute, each root-owned and not writable by others. */
  congestionModules: string[];
  /** Stack shards (docs/shards.md): 1 is the single event loop, no worker. */
  shards: number;
}

export const TAP_LOST_MODES = ['reattach', 'exit'] as const;
export type TapLostMode = (typeof TAP_LOST_MODES)[number];
/** shutdownGraceMs without a value: 10 s (the unit's TimeoutStopSec leaves room after it). */
export const SHUTDOWN_GRACE_MS_DEFAULT = 10_000;
/** The longest grace: an hour. */
export const SHUTDOWN_GRACE_MS_MAX = 3_600_000;
/** The longest tapReattachTimeout: a day (0 is "for ever"). */
export const TAP_REATTACH_TIMEOUT_MAX = 86_400;

/**
 * The whole resolved config as a person reads it (tapstack check-config):
 * every key, addresses and MACs written out, the fault spec in its own
 * syntax, sysctls as name = value. Keys added later appear as they are.
 */
export function configView(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) out[k] = viewValue(k, v);
  return out;
}

function viewValue(key: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (key === 'fault') return faultSpecString(v as FaultSpec);
  if (key === 'sysctl') return Object.fromEntries(v as [string, string][]);
  if (key === 'gateway') return v ? formatIpv4(v as number) : null;
  if (Buffer.isBuffer(v)) return v.length === 6 ? formatMac(v) : formatIpv6(v);
  if (Array.isArray(v)) return v.map((x) => viewValue(key, x));
  if (typeof v === 'object' && 'addr' in v && 'prefix' in v) {
    const p = v as { addr: number | Buffer; prefix: number };
    return `${typeof p.addr === 'number' ? formatIpv4(p.addr) : formatIpv6(p.addr)}/${p.prefix}`;
  }
  return v;
}

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

export const CONFIG_KEYS: readonly (keyof RawConfig)[] = [
  'tap', 'mtu', 'mac', 'ipv4', 'gateway', 'hostIpv4', 'ipv6', 'hostIpv6', 'ipv6Gateway', 'ipv6Slaac', 'hostMac', 'vnetHdr', 'offload', 'api', 'apiGroup', 'apiLowPortGroup', 'apiMaxSockets', 'apiMaxBuffered', 'pcap', 'statsFile', 'metricsListen', 'logLevel', 'services', 'fault', 'sysctl', 'apiMaxBufferedTotal', 'apiRings', 'memory', 'tapLost', 'tapReattachTimeout', 'user', 'group', 'shutdownGraceMs', 'congestionModules', 'shards',
];

/**
 * What SIGHUP's reload applies to the running daemon; every other key keeps
 * its running value until a restart (the reload logs each such key that
 * changed). The TAP, the addresses, the offloads and the memory the stack's
 * tables were sized for are fixed at start, as an interface's are; user and
 * group were given up with the privileges.
 */
export const LIVE_KEYS: readonly (keyof Config)[] = [
  'logLevel', 'sysctl', 'services', 'apiGroup', 'apiLowPortGroup', 'apiMaxSockets', 'apiMaxBuffered', 'apiMaxBufferedTotal', 'apiRings', 'statsFile', 'tapLost', 'tapReattachTimeoutMs', 'shutdownGraceMs', 'congestionModules',
];

/** The keys whose value differs between two checked configs (compared as configView shows them). */
export function configChanges(a: Config, b: Config): (keyof Config)[] {
  const va = configView(a);
  const vb = configView(b);
  return (Object.keys(va) as (keyof Config)[]).filter((k) => JSON.stringify(va[k]) !== JSON.stringify(vb[k]));
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function bad(key: string, v: unknown, what: string): never {
  throw new ConfigError(key, `config: ${key}: ${show(v)} ${what}`);
}

/** Read one JSON config file; unknown keys and non-objects are errors. */
export function readConfigFile(path: string): Partial<RawConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('config', `config: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('config', `config: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ConfigError('config', `config: ${path} must hold a JSON object`);
  for (const k of Object.keys(obj)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) throw new ConfigError(k, `config: unknown key ${show(k)} (value ${show((obj as Record<string, unknown>)[k])}) in ${path}`);
  }
  return obj as Partial<RawConfig>;
}

function str(key: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) bad(key, v, 'must be a non-empty string');
  return v;
}

function optStr(key: string, v: unknown): string | null {
  return v === null || v === undefined ? null : str(key, v);
}

function prefix(key: string, v: unknown): Ipv4Prefix {
  const p = typeof v === 'string' ? parseIpv4Prefix(v) : null;
  if (!p) bad(key, v, 'is not an IPv4 address with a prefix length (ADDR/PREFIX, e.g. 10.0.0.2/24)');
  if (p.addr === 0 || p.addr >>> 28 >= 0xe || p.addr >>> 24 === 127) bad(key, v, 'is not a usable unicast address');
  if (p.prefix === 0) bad(key, v, 'needs a prefix length from 1 to 32');
  if (p.prefix < 31) {
    const m = prefixMask(p.prefix);
    if ((p.addr & ~m) === 0 || (p.addr | m) >>> 0 === 0xffffffff) bad(key, v, 'is the network or broadcast address of its subnet');
  }
  return p;
}

function prefix6(key: string, v: unknown): Ipv6Prefix {
  const p = typeof v === 'string' ? parseIpv6Prefix(v) : null;
  if (!p) bad(key, v, 'is not an IPv6 address with a prefix length (ADDR/PREFIX, e.g. fd00::2/64)');
  if (ipv6IsUnspecified(p.addr) || ipv6IsLoopback(p.addr) || ipv6IsMulticast(p.addr) || ipv6IsV4Mapped(p.addr)) bad(key, v, 'is not a usable unicast address');
  if (p.prefix === 0) bad(key, v, 'needs a prefix length from 1 to 128');
  return p;
}

function mac(key: string, v: unknown): Buffer {
  const m = typeof v === 'string' ? parseMac(v) : null;
  if (!m) bad(key, v, 'is not a MAC address (AA:BB:CC:DD:EE:FF)');
  if (macIsMulticast(m) || macIsZero(m)) bad(key, v, 'must be a unicast, non-zero MAC address');
  return m;
}

function services(v: unknown, defaults: Record<string, number | null>): Record<ServiceName, number | null> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('services', v, 'must be an object like {"echo": 7, "http": 80}');
  const out = { ...defaults } as Record<ServiceName, number | null>;
  const seen = new Map<number, string>();
  for (const [k, port] of Object.entries(v as Record<string, unknown>)) {
    if (!(SERVICE_NAMES as readonly string[]).includes(k)) bad(`services.${k}`, port, `is not a service (${SERVICE_NAMES.join(', ')})`);
    if (port !== null && (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)) bad(`services.${k}`, port, 'must be a port from 1 to 65535, or null for off');
    out[k as ServiceName] = port as number | null;
  }
  for (const [k, port] of Object.entries(out)) {
    if (port === null) continue;
    if (seen.has(port)) bad(`services.${k}`, port, `is also the port of services.${seen.get(port)}`);
    seen.set(port, k);
  }
  return out;
}

function fault(v: unknown): FaultSpec | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string') bad('fault', v, 'must be a string like "loss=10%,delay=20ms,reorder=25%,duplicate=5%"');
  try {
    return parseFaultSpec(v);
  } catch (e) {
    bad('fault', v, (e as Error).message);
  }
}

function posInt(key: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(key, v, `must be an integer from ${min} to ${max}`);
  return v;
}

/** The least memory a daemon may be given: Node's own heap and code take about 100 MiB. */
export const MEMORY_MIN = 128 * 1024 * 1024;
/**
 * memory's default: a quarter of the machine's. Linux scales its limits
 * to the whole machine because the kernel is the only one; the daemon is
 * one process among the host's, so it takes a share, as a container would,
 * and its stack's limits are those of a machine of that size.
 */
export function memoryDefault(): number {
  return Math.max(MEMORY_MIN, Math.floor(totalmem() / 4));
}
/**
 * apiMaxBufferedTotal's default: an eighth of memory, at most 256 MiB. With
 * tcp_mem's maximum (3/32 of memory) and udp_mem's (3/16) it leaves over half the
 * cap for the heap, the code and the rest.
 */
export function apiMaxBufferedTotalDefault(memory: number): number {
  return Math.max(1 << 20, Math.min(256 * 1024 * 1024, Math.floor(memory / 8)));
}

/** A group by name (looked up in /etc/group) or number; null for none. */
function group(key: string, v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) bad(key, v, 'is not a valid gid');
    return v;
  }
  if (typeof v !== 'string' || v === '') bad(key, v, 'must be a group name, a gid or null');
  if (/^\d+$/.test(v)) return Number(v);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    bad(key, v, 'cannot be looked up: /etc/group is unreadable');
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === v && f.length >= 3) return Number(f[2]);
  }
  bad(key, v, 'is not a group in /etc/group');
}

/** A line of /etc/passwd or /etc/group whose first field is `name` (split), or null. */
function dbLine(key: string, v: unknown, file: string, name: string): string[] | null {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    bad(key, v, `cannot be looked up: ${file} is unreadable`);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return f;
  }
  return null;
}

/**
 * user and group: names looked up in /etc/passwd and /etc/group, or numbers.
 * A name gives its primary group when group is null; a uid not in
 * /etc/passwd needs group. Root (uid 0) is not a drop.
 */
function dropTo(rawUser: unknown, rawGroup: unknown): Config['user'] {
  if (rawUser === null || rawUser === undefined) {
    if (rawGroup !== null && rawGroup !== undefined) bad('group', rawGroup, 'needs user (the drop is to a user and its group)');
    return null;
  }
  let uid: number;
  let gid: number | null = null;
  let name: string;
  if (typeof rawUser === 'number' || (typeof rawUser === 'string' && /^\d+$/.test(rawUser))) {
    uid = Number(rawUser);
    if (!Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) bad('user', rawUser, 'is not a valid uid');
    name = String(uid);
  } else {
    if (typeof rawUser !== 'string' || rawUser === '') bad('user', rawUser, 'must be a user name, a uid or null');
    const f = dbLine('user', rawUser, '/etc/passwd', rawUser);
    if (!f) bad('user', rawUser, 'is not a user in /etc/passwd');
    uid = Number(f[2]);
    gid = Number(f[3]);
    name = rawUser;
  }
  if (uid === 0) bad('user', rawUser, 'is root: the drop is to an unprivileged user (null for none)');
  if (rawGroup !== null && rawGroup !== undefined) gid = group('group', rawGroup);
  if (gid === null) bad('group', rawGroup, `must be set: uid ${uid} is not in /etc/passwd, so it has no primary group there`);
  if (gid === 0) bad('group', rawGroup ?? rawUser, 'is root\'s group (gid 0): the drop is to an unprivileged group');
  return { uid, gid, name };
}

function sysctl(v: unknown): [string, string][] {
  if (v === null || v === undefined) return [];
  if (typeof v !== 'object' || Array.isArray(v)) bad('sysctl', v, 'must be an object like {"net.ipv4.tcp_sack": 1}');
  const out: [string, string][] = [];
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string' && typeof val !== 'number') bad(`sysctl.${k}`, val, 'must be a string or a number');
    const why = sysctlValidate(k, val as string | number);
    if (why) throw new ConfigError(`sysctl.${k}`, `config: sysctl.${why}`);
    out.push([k, String(val)]);
  }
  return out;
}

/** Check every key and derive the runtime form. */
export function validate(raw: RawConfig, serviceDefaults: Record<string, number | null> = {}): Config {
  const tap = str('tap', raw.tap);
  if (tap.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(tap) || tap === '.' || tap === '..') bad('tap', raw.tap, 'is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)');
  if (!Number.isInteger(raw.mtu) || raw.mtu < 68 || raw.mtu > 65535) bad('mtu', raw.mtu, 'must be an integer from 68 to 65535');
  const ipv4List = Array.isArray(raw.ipv4) ? raw.ipv4 : [raw.ipv4];
  if (ipv4List.length === 0) bad('ipv4', raw.ipv4, 'needs at least one address');
  const ipv4 = ipv4List.map((a) => prefix('ipv4', a));
  const seen = new Set<number>();
  for (const a of ipv4) {
    if (seen.has(a.addr)) bad('ipv4', raw.ipv4, 'lists an address twice');
    seen.add(a.addr);
  }
  let gateway = 0;
  if (raw.gateway !== null && raw.gateway !== undefined) {
    const g = typeof raw.gateway === 'string' ? parseIpv4(raw.gateway) : null;
    if (g === null || g === 0) bad('gateway', raw.gateway, 'is not an IPv4 address');
    // Like the kernel, a gateway must be reachable on a connected subnet.
    if (!ipv4.some((a) => ((a.addr ^ g) & prefixMask(a.prefix)) === 0)) bad('gateway', raw.gateway, `is not on a connected subnet of ${ipv4.map((a) => `${formatIpv4(a.addr)}/${a.prefix}`).join(', ')}`);
    if (seen.has(g)) bad('gateway', raw.gateway, 'is one of the stack\'s own addresses');
    gateway = g;
  }
  let hostIpv4: Ipv4Prefix | null = null;
  if (raw.hostIpv4 !== null && raw.hostIpv4 !== undefined) {
    hostIpv4 = prefix('hostIpv4', raw.hostIpv4);
    if (seen.has(hostIpv4.addr)) bad('hostIpv4', raw.hostIpv4, 'is one of the stack\'s own addresses');
  }
  let ipv6: Ipv6Prefix[] | null = null;
  if (raw.ipv6 !== null && raw.ipv6 !== undefined && raw.ipv6 !== 'none') {
    const list = Array.isArray(raw.ipv6) ? raw.ipv6 : [raw.ipv6];
    const addrs = list.map((a) => prefix6('ipv6', a));
    addrs.forEach((a, i) => {
      if (addrs.slice(0, i).some((b) => ipv6Equal(a.addr, 0, b.addr, 0))) bad('ipv6', raw.ipv6, 'lists an address twice');
    });
    ipv6 = addrs;
  }
  const own6 = (a: Buffer) => !!ipv6?.some((b) => ipv6Equal(a, 0, b.addr, 0));
  let hostIpv6: Ipv6Prefix | null = null;
  if (raw.hostIpv6 !== null && raw.hostIpv6 !== undefined && raw.hostIpv6 !== 'none') {
    hostIpv6 = prefix6('hostIpv6', raw.hostIpv6);
    if (own6(hostIpv6.addr)) bad('hostIpv6', raw.hostIpv6, 'is one of the stack\'s own addresses');
  }
  let ipv6Gateway: Buffer | null = null;
  if (raw.ipv6Gateway !== null && raw.ipv6Gateway !== undefined && raw.ipv6Gateway !== 'none') {
    const g = typeof raw.ipv6Gateway === 'string' ? parseIpv6(raw.ipv6Gateway) : null;
    if (!g || ipv6IsUnspecified(g) || ipv6IsLoopback(g) || ipv6IsMulticast(g) || ipv6IsV4Mapped(g)) bad('ipv6Gateway', raw.ipv6Gateway, 'is not a unicast IPv6 address');
    if (!ipv6) bad('ipv6Gateway', raw.ipv6Gateway, 'needs IPv6 on (ipv6 is null)');
    // Like the kernel, a gateway must be on the link: link-local, or in a connected prefix.
    if (!ipv6IsLinkLocal(g) && !ipv6.some((a) => ipv6PrefixEqual(a.addr, 0, g, 0, a.prefix))) {
      bad('ipv6Gateway', raw.ipv6Gateway, `is not link-local or on a connected prefix of ${ipv6.map((a) => `${formatIpv6(a.addr)}/${a.prefix}`).join(', ')}`);
    }
    if (own6(g)) bad('ipv6Gateway', raw.ipv6Gateway, 'is one of the stack\'s own addresses');
    ipv6Gateway = g;
  }
  if (raw.ipv6Slaac !== undefined && typeof raw.ipv6Slaac !== 'boolean') bad('ipv6Slaac', raw.ipv6Slaac, 'must be true or false');
  const hostMac = raw.hostMac === null || raw.hostMac === undefined ? null : mac('hostMac', raw.hostMac);
  if (typeof raw.vnetHdr !== 'boolean') bad('vnetHdr', raw.vnetHdr, 'must be true or false');
  if (typeof raw.offload !== 'boolean') bad('offload', raw.offload, 'must be true or false (--offload on|off)');
  if (typeof raw.apiRings !== 'boolean') bad('apiRings', raw.apiRings, 'must be true or false');
  if (!LOG_LEVELS.includes(raw.logLevel)) bad('logLevel', raw.logLevel, `must be one of ${LOG_LEVELS.join(', ')}`);
  const tapLost = raw.tapLost === undefined ? 'reattach' : raw.tapLost;
  if (!(TAP_LOST_MODES as readonly unknown[]).includes(tapLost)) bad('tapLost', raw.tapLost, `must be one of ${TAP_LOST_MODES.map((m) => `"${m}"`).join(', ')}`);
  const timeout = raw.tapReattachTimeout === undefined ? 0 : raw.tapReattachTimeout;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0 || timeout > TAP_REATTACH_TIMEOUT_MAX) {
    bad('tapReattachTimeout', raw.tapReattachTimeout, `must be a number of seconds from 0 (wait for ever) to ${TAP_REATTACH_TIMEOUT_MAX}`);
  }
  const memory = raw.memory === null || raw.memory === undefined ? memoryDefault() : posInt('memory', raw.memory, MEMORY_MIN, 2 ** 50);
  let apiMaxBufferedTotal = apiMaxBufferedTotalDefault(memory);
  if (raw.apiMaxBufferedTotal !== null && raw.apiMaxBufferedTotal !== undefined) {
    apiMaxBufferedTotal = posInt('apiMaxBufferedTotal', raw.apiMaxBufferedTotal, 1 << 20, 2 ** 40);
    if (apiMaxBufferedTotal > memory / 2) bad('apiMaxBufferedTotal', raw.apiMaxBufferedTotal, `must be at most half of memory (${memory} bytes)`);
  }
  return {
    tap,
    mtu: raw.mtu,
    mac: mac('mac', raw.mac),
    ipv4,
    gateway,
    hostIpv4,
    ipv6,
    hostIpv6,
    ipv6Gateway,
    ipv6Slaac: raw.ipv6Slaac ?? false,
    hostMac,
    vnetHdr: raw.vnetHdr || raw.offload,
    offload: raw.offload,
    apiRings: raw.apiRings,
    api: raw.api === null || raw.api === 'none' ? null : str('api', raw.api),
    apiGroup: group('apiGroup', raw.apiGroup),
    apiLowPortGroup: group('apiLowPortGroup', raw.apiLowPortGroup),
    apiMaxSockets: posInt('apiMaxSockets', raw.apiMaxSockets, 1, 1 << 20),
    apiMaxBuffered: posInt('apiMaxBuffered', raw.apiMaxBuffered, 65536, 2 ** 40),
    apiMaxBufferedTotal,
    memory,
    pcap: optStr('pcap', raw.pcap),
    statsFile: optStr('statsFile', raw.statsFile),
    metricsListen: listenAddr('metricsListen', raw.metricsListen),
    logLevel: raw.logLevel,
    services: services(raw.services ?? {}, serviceDefaults),
    fault: fault(raw.fault),
    sysctl: sysctl(raw.sysctl),
    tapLost: tapLost as TapLostMode,
    tapReattachTimeoutMs: Math.round(timeout * 1000),
    user: dropTo(raw.user, raw.group),
    shutdownGraceMs: raw.shutdownGraceMs === undefined ? SHUTDOWN_GRACE_MS_DEFAULT : posInt('shutdownGraceMs', raw.shutdownGraceMs, 0, SHUTDOWN_GRACE_MS_MAX),
    congestionModules: congestionModules(raw.congestionModules),
    shards: shards(raw),
  };
}

/** The most shards: tun's multi-queue limit is 256; a thread per core is the point, and 64 cores is plenty for now. */
export const SHARDS_MAX = 64;

/**
 * shards: 1 (the default) to SHARDS_MAX. Above 1, what the sharded daemon
 * does not do yet is refused here, by key, rather than half-working
 * (docs/shards.md "What this increment does").
 */
function shards(raw: RawConfig): number {
  const n = raw.shards === undefined ? 1 : posInt('shards', raw.shards, 1, SHARDS_MAX);
  if (n === 1) return n;
  const notYet = (key: string, need: string, why: string): never => {
    throw new ConfigError('shards', `config: shards: ${n} needs ${key} ${need}: ${why} is not done yet with more than one shard (docs/shards.md)`);
  };
  // Each shard impairs its own frames: per-frame chances and delays are the daemon's, but a rate would be one bottleneck per shard.
  if (typeof raw.fault === 'string' && /(^|,)\s*rate=/.test(raw.fault)) notYet('fault', 'to have no rate=', 'one rate bottleneck shared by the shards');
  return n;
}

/**
 * congestionModules: absolute paths of files root owns and alone may
 * change (checked here; what is in them is checked when they load). A bad
 * entry is named by its index.
 */
function congestionModules(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad('congestionModules', v, 'must be an array of module file paths');
  const seen = new Set<string>();
  return v.map((f: unknown, i: number) => {
    const key = `congestionModules[${i}]`;
    if (typeof f !== 'string' || !isAbsolute(f)) bad(key, f, 'must be an absolute path');
    if (seen.has(f)) bad(key, f, 'is listed twice');
    seen.add(f);
    const why = checkCongModuleFile(f);
    if (why) throw new ConfigError(key, `config: ${key}: ${why.message}`);
    return f;
  });
}

/**
 * The end of `tapstackd --help`: each flag's default (from
 * config/default.json, which is where defaults live: a yargs default would
 * override the --config file), and the keys only a config file sets.
 * `flags` are the daemon's option names (kebab-case).
 */
export function configHelp(flags: readonly string[]): string {
  let defaults: Record<string, unknown>;
  try {
    defaults = configDefaults() as unknown as Record<string, unknown>;
  } catch {
    return '';
  }
  const camel = (f: string) => f.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const show = (v: unknown) => (v === null || v === undefined ? 'none' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const flagKeys = new Set(flags.map(camel));
  const shown = flags.filter((f) => camel(f) in defaults);
  const fileOnly = CONFIG_KEYS.filter((k) => !flagKeys.has(k));
  const w = Math.max(...shown.map((f) => f.length + 2), ...fileOnly.map((k) => k.length)) + 1;
  const withFlag = shown.map((f) => `  ${`--${f}`.padEnd(w)} ${show(defaults[camel(f)])}`);
  const fileLines = fileOnly.map((k) => `  ${k.padEnd(w)} ${show(defaults[k])}`);
  return [`Defaults (${DEFAULT_CONFIG_PATH}):`, ...withFlag, '', 'Keys only a --config file sets (README: tapstackd), with their defaults:', ...fileLines].join('\n');
}

/** "host:port" or "[v6]:port" (or null): where a listener of the host's goes. */
function listenAddr(key: string, v: unknown): { host: string; port: number } | null {
  if (v === null || v === undefined) return null;
  const m = typeof v === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(v) : null;
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new ConfigError(key, `${key}: ${JSON.stringify(v)} is not "host:port" (e.g. "127.0.0.1:9464", "[::1]:9464")`);
  return { host: m[1] ?? m[2], port };
}

/**
 * config/default.json, read once per process: a reload (SIGHUP) after the
 * privilege drop reads only the --config file, so the defaults need not be
 * readable by the daemon's user (a checkout under /root is not).
 */
let defaultsRead: RawConfig | null = null;
function configDefaults(): RawConfig {
  defaultsRead ??= readConfigFile(DEFAULT_CONFIG_PATH) as RawConfig;
  return structuredClone(defaultsRead);
}

/** defaults <- file <- flags (undefined flags leave the value alone). */
export function loadConfig(file: string | undefined, flags: Partial<RawConfig>): Config {
  const defaults = configDefaults();
  const fromFile = file ? readConfigFile(file) : {};
  const merged: Record<string, unknown> = { ...defaults, ...fromFile };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  // A file's services object changes only the services it names.
  return validate(merged as unknown as RawConfig, defaults.services ?? {});
}
