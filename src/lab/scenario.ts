/**
 * A lab scenario (docs/lab.md): the path (bottleneck rate, buffer and its
 * discipline, propagation delay, random loss, reordering), cross traffic,
 * and the TCP flows, read from JSON and checked key by key. Every error
 * names the key path it is about (`flows[1].start: ...`), so a scenario
 * file is fixed from the message alone.
 */

/** A scenario that cannot run: one line, naming the key. */
export class ScenarioError extends Error {}

export type Qdisc = 'droptail' | 'codel' | 'fq_codel';
export const QDISCS: readonly Qdisc[] = ['droptail', 'codel', 'fq_codel'];

export interface Bottleneck {
  /** Bits per second. */
  rateBps: number;
  qdisc: Qdisc;
  /** The queue's limit in packets (Infinity: none). */
  limitPackets: number;
  /** The queue's limit in bytes (Infinity: none). */
  limitBytes: number;
  /** CoDel's target and interval, ms. */
  targetMs: number;
  intervalMs: number;
  /** fq_codel: the DRR quantum (bytes) and the number of flow queues. */
  quantum: number;
  flows: number;
  /** Mark ECN-capable packets CE instead of dropping them (AQM only). */
  ecn: boolean;
  /** What the scenario asked for, for the report. */
  bufferText: string;
}

export interface PathSpec {
  /** Base RTT of flows that give none, ms. */
  rttMs: number;
  /** Probability a data-direction packet is lost after the bottleneck. */
  loss: number;
  /** Probability a packet on the way back (ACKs) is lost. */
  ackLoss: number;
  /** Probability a data-direction packet is held back reorderDelayMs. */
  reorder: number;
  reorderDelayMs: number;
}

export interface CrossSpec {
  name: string;
  kind: 'cbr' | 'onoff';
  /** Sending rate while on, bit/s. */
  rateBps: number;
  /** Ethernet frame size. */
  packetBytes: number;
  /** Seconds. */
  start: number;
  stop: number;
  /** Mean on and off periods (exponentially distributed), seconds. */
  onS: number;
  offS: number;
}

export interface FlowSpec {
  name: string;
  cc: string;
  /** Seconds from the start of the run. */
  start: number;
  /** Bytes to send; Infinity: until the run ends. */
  bytes: number;
  /** Base (propagation) RTT, ms. */
  rttMs: number;
  /** The sender asks for ECN (net.ipv4.tcp_ecn = 1). */
  ecn: boolean;
}

export interface Scenario {
  name: string;
  /** Congestion-control module files to load (the format of `tapstack cc load`), as the scenario gives them. */
  ccModules: string[];
  description: string;
  /** Seconds simulated. */
  duration: number;
  seed: number;
  bottleneck: Bottleneck;
  path: PathSpec;
  cross: CrossSpec[];
  flows: FlowSpec[];
}

/** The Ethernet frame of a full-sized segment at MTU 1500, the unit the buffer is counted in. */
export const FRAME_BYTES = 1514;
/** Limits of the model: what one run can hold. */
export const MAX_FLOWS = 64;
export const MAX_CROSS = 16;
export const MAX_DURATION_S = 3600;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(path: string, msg: string): never {
  throw new ScenarioError(`${path}: ${msg}`);
}

function allowOnly(o: Obj, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(path ? `${path}.${k}` : k, `unknown key (known here: ${keys.join(', ')})`);
}

/** A number in [min, max] (exclusive bounds with minOpen), else the error saying so in `what`'s words. */
function num(o: Obj, key: string, path: string, what: string, min: number, max: number, def?: number, minOpen = false): number {
  const p = path ? `${path}.${key}` : key;
  const v = o[key];
  if (v === undefined) {
    if (def === undefined) fail(p, `missing (${what})`);
    return def;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || (minOpen ? v <= min : v < min) || v > max) fail(p, `must be ${what}`);
  return v;
}

function str(o: Obj, key: string, path: string, def?: string): string {
  const p = path ? `${path}.${key}` : key;
  const v = o[key];
  if (v === undefined) {
    if (def === undefined) fail(p, 'missing (a string)');
    return def;
  }
  if (typeof v !== 'string' || v === '') fail(p, 'must be a non-empty string');
  return v;
}

function bool(o: Obj, key: string, path: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') fail(`${path}.${key}`, 'must be true or false');
  return v;
}

const BOTTLENECK_KEYS = ['rate_mbit', 'qdisc', 'buffer_packets', 'buffer_bytes', 'buffer_bdp', 'target_ms', 'interval_ms', 'quantum', 'flows', 'ecn'] as const;

function parseBottleneck(v: unknown, rttMs: number): Bottleneck {
  const p = 'bottleneck';
  if (!isObj(v)) fail(p, 'missing or not an object');
  allowOnly(v, p, BOTTLENECK_KEYS);
  const rateBps = num(v, 'rate_mbit', p, 'a rate in Mbit/s > 0 and ≤ 10000', 0, 10_000, undefined, true) * 1e6;
  const q = v.qdisc ?? 'droptail';
  if (typeof q !== 'string' || !QDISCS.includes(q as Qdisc)) fail(`${p}.qdisc`, `must be one of ${QDISCS.join(', ')}`);
  const qdisc = q as Qdisc;
  const given = (['buffer_packets', 'buffer_bytes', 'buffer_bdp'] as const).filter((k) => v[k] !== undefined);
  if (given.length > 1) fail(`${p}.${given[1]}`, `give one of buffer_packets, buffer_bytes, buffer_bdp (${given[0]} is given too)`);
  let limitPackets = Infinity;
  let limitBytes = Infinity;
  let bufferText: string;
  const bdpBytes = (rateBps / 8) * (rttMs / 1000);
  if (given[0] === 'buffer_packets') {
    limitPackets = num(v, 'buffer_packets', p, 'a whole number of packets ≥ 1', 1, 1e6);
    if (!Number.isInteger(limitPackets)) fail(`${p}.buffer_packets`, 'must be a whole number of packets ≥ 1');
    bufferText = `${limitPackets} packets`;
  } else if (given[0] === 'buffer_bytes') {
    limitBytes = num(v, 'buffer_bytes', p, `a number of bytes ≥ ${FRAME_BYTES} (one full frame)`, FRAME_BYTES, 1e9);
    bufferText = `${limitBytes} bytes`;
  } else if (given[0] === 'buffer_bdp') {
    const k = num(v, 'buffer_bdp', p, 'a multiple of the bandwidth-delay product > 0 and ≤ 100', 0, 100, undefined, true);
    limitBytes = Math.max(FRAME_BYTES, Math.round(k * bdpBytes));
    bufferText = `${k} BDP (${limitBytes} bytes)`;
  } else {
    if (qdisc === 'droptail') fail(p, 'droptail needs its buffer: buffer_packets, buffer_bytes or buffer_bdp');
    // Linux's defaults: sch_codel's limit 1000 packets, fq_codel's 10240.
    limitPackets = qdisc === 'codel' ? 1000 : 10240;
    bufferText = `${limitPackets} packets (${qdisc}'s default limit)`;
  }
  const aqm = qdisc !== 'droptail';
  for (const k of ['target_ms', 'interval_ms', 'ecn'] as const) if (!aqm && v[k] !== undefined) fail(`${p}.${k}`, 'only for codel and fq_codel');
  for (const k of ['quantum', 'flows'] as const) if (qdisc !== 'fq_codel' && v[k] !== undefined) fail(`${p}.${k}`, 'only for fq_codel');
  const targetMs = num(v, 'target_ms', p, 'a time in ms > 0 and ≤ 1000', 0, 1000, 5, true);
  const intervalMs = num(v, 'interval_ms', p, 'a time in ms > 0 and ≤ 10000', 0, 10_000, 100, true);
  const quantum = num(v, 'quantum', p, 'a whole number of bytes from 256 to 65536', 256, 65536, FRAME_BYTES);
  const flows = num(v, 'flows', p, 'a whole number of flow queues from 1 to 65536', 1, 65536, 1024);
  if (!Number.isInteger(quantum)) fail(`${p}.quantum`, 'must be a whole number of bytes from 256 to 65536');
  if (!Number.isInteger(flows)) fail(`${p}.flows`, 'must be a whole number of flow queues from 1 to 65536');
  // As Linux: fq_codel marks by default, sch_codel does not.
  const ecn = bool(v, 'ecn', p, qdisc === 'fq_codel');
  return { rateBps, qdisc, limitPackets, limitBytes, targetMs, intervalMs, quantum, flows, ecn, bufferText };
}

function parsePath(v: unknown): PathSpec {
  const p = 'path';
  if (v === undefined) v = {};
  if (!isObj(v)) fail(p, 'must be an object');
  allowOnly(v, p, ['rtt_ms', 'loss', 'ack_loss', 'reorder', 'reorder_delay_ms']);
  return {
    rttMs: num(v, 'rtt_ms', p, 'a time in ms ≥ 0 and ≤ 10000', 0, 10_000, 40),
    loss: num(v, 'loss', p, 'a probability from 0 to 0.5', 0, 0.5, 0),
    ackLoss: num(v, 'ack_loss', p, 'a probability from 0 to 0.5', 0, 0.5, 0),
    reorder: num(v, 'reorder', p, 'a probability from 0 to 0.5', 0, 0.5, 0),
    reorderDelayMs: num(v, 'reorder_delay_ms', p, 'a time in ms > 0 and ≤ 1000', 0, 1000, 5, true),
  };
}

function parseCross(v: unknown, i: number, duration: number): CrossSpec {
  const p = `cross[${i}]`;
  if (!isObj(v)) fail(p, 'must be an object');
  allowOnly(v, p, ['name', 'kind', 'rate_mbit', 'packet_bytes', 'start', 'stop', 'on_s', 'off_s']);
  const kind = v.kind ?? 'cbr';
  if (kind !== 'cbr' && kind !== 'onoff') fail(`${p}.kind`, 'must be cbr (constant rate) or onoff (exponential on and off periods)');
  if (kind === 'cbr') for (const k of ['on_s', 'off_s']) if (v[k] !== undefined) fail(`${p}.${k}`, 'only for kind onoff');
  const start = num(v, 'start', p, 'a number of seconds ≥ 0', 0, MAX_DURATION_S, 0);
  const stop = num(v, 'stop', p, `a number of seconds after start`, start, MAX_DURATION_S, duration, true);
  const packetBytes = num(v, 'packet_bytes', p, `a whole frame size in bytes from 64 to ${FRAME_BYTES}`, 64, FRAME_BYTES, 1200);
  if (!Number.isInteger(packetBytes)) fail(`${p}.packet_bytes`, `must be a whole frame size in bytes from 64 to ${FRAME_BYTES}`);
  return {
    name: str(v, 'name', p, `cross-${i}`),
    kind,
    rateBps: num(v, 'rate_mbit', p, 'a rate in Mbit/s > 0 and ≤ 10000', 0, 10_000, undefined, true) * 1e6,
    packetBytes,
    start,
    stop,
    onS: num(v, 'on_s', p, 'a mean time in seconds > 0', 0, MAX_DURATION_S, 1, true),
    offS: num(v, 'off_s', p, 'a mean time in seconds > 0', 0, MAX_DURATION_S, 1, true),
  };
}

function parseFlow(v: unknown, i: number, path: PathSpec): FlowSpec {
  const p = `flows[${i}]`;
  if (!isObj(v)) fail(p, 'must be an object');
  allowOnly(v, p, ['name', 'cc', 'start', 'bytes', 'rtt_ms', 'ecn']);
  let bytes = Infinity;
  if (v.bytes !== undefined && v.bytes !== null) {
    bytes = num(v, 'bytes', p, 'a whole number of bytes ≥ 1 (or null: until the run ends)', 1, 2 ** 40);
    if (!Number.isInteger(bytes)) fail(`${p}.bytes`, 'must be a whole number of bytes ≥ 1 (or null: until the run ends)');
  }
  const cc = str(v, 'cc', p, 'cubic');
  if (!/^[a-z0-9_]{1,15}$/.test(cc)) fail(`${p}.cc`, 'must be a congestion control name (lowercase letters, digits, _; at most 15)');
  return {
    name: str(v, 'name', p, `flow-${i}`),
    cc,
    start: num(v, 'start', p, 'a number of seconds ≥ 0', 0, MAX_DURATION_S, 0),
    bytes,
    rttMs: num(v, 'rtt_ms', p, 'a time in ms > 0 and ≤ 10000', 0, 10_000, path.rttMs || undefined, true),
    ecn: bool(v, 'ecn', p, false),
  };
}

/** A scenario from its parsed JSON; `seed` (the command line's) wins over the file's. */
export function parseScenario(v: unknown, seed?: number): Scenario {
  if (!isObj(v)) throw new ScenarioError('the scenario must be a JSON object');
  allowOnly(v, '', ['name', 'description', 'duration', 'seed', 'bottleneck', 'path', 'cross', 'flows', 'cc_modules']);
  const duration = num(v, 'duration', '', `a number of seconds > 0 and ≤ ${MAX_DURATION_S}`, 0, MAX_DURATION_S, undefined, true);
  let s = num(v, 'seed', '', 'a whole number from 0 to 4294967295', 0, 0xffffffff, 1);
  if (!Number.isInteger(s)) fail('seed', 'must be a whole number from 0 to 4294967295');
  if (seed !== undefined) s = seed;
  const path = parsePath(v.path);
  const bottleneck = parseBottleneck(v.bottleneck, path.rttMs);
  const crossIn = v.cross ?? [];
  if (!Array.isArray(crossIn)) fail('cross', 'must be an array');
  if (crossIn.length > MAX_CROSS) fail('cross', `at most ${MAX_CROSS} sources`);
  const mods = v.cc_modules ?? [];
  if (!Array.isArray(mods)) fail('cc_modules', 'must be an array of module files');
  if (mods.length > MAX_CROSS) fail('cc_modules', `at most ${MAX_CROSS} modules`);
  mods.forEach((m, i) => {
    if (typeof m !== 'string' || m === '') fail(`cc_modules[${i}]`, 'must be a module file (a path, relative to the scenario file)');
  });
  const flowsIn = v.flows;
  if (!Array.isArray(flowsIn) || flowsIn.length === 0) fail('flows', 'must be an array of at least one flow');
  if (flowsIn.length > MAX_FLOWS) fail('flows', `at most ${MAX_FLOWS} flows`);
  const flows = flowsIn.map((f, i) => parseFlow(f, i, path));
  const names = new Set<string>();
  flows.forEach((f, i) => {
    if (names.has(f.name)) fail(`flows[${i}].name`, `"${f.name}" is used by an earlier flow`);
    names.add(f.name);
    if (f.start >= duration) fail(`flows[${i}].start`, `must be before the end of the run (duration ${duration} s)`);
  });
  return {
    name: str(v, 'name', '', 'scenario'),
    ccModules: mods as string[],
    description: v.description === undefined ? '' : str(v, 'description', ''),
    duration,
    seed: s,
    bottleneck,
    path,
    cross: crossIn.map((c, i) => parseCross(c, i, duration)),
    flows,
  };
}

/** parseScenario from JSON text; a syntax error is a ScenarioError too. */
export function parseScenarioText(text: string, seed?: number): Scenario {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(`not JSON: ${(e as Error).message}`);
  }
  return parseScenario(v, seed);
}
