/**
 * The neighbour table (net/core/neighbour.c): link-layer addresses of next
 * hops, the NUD state machine with Linux's timers, and the queue of packets
 * waiting for resolution. Protocol specifics (how to solicit, how to report
 * a failure) come from NeighOps; ARP supplies them for IPv4.
 *
 * Keys are IPv4 addresses as numbers. IPv6 neighbours (ndisc) are keyed by
 * a 32-bit hash of the address (neighHash6) with the address itself in
 * `key6`; entries with the same hash are chained, so lookups compare 16
 * bytes in place and never build a string.
 */
import { skbHold, type SkBuff } from './skbuff.js';
import type { NeighStats } from './snmp.js';
import { Timer, type TimeSource } from '../../lib/time.js';
import type { Random } from '../../lib/random.js';
import { NetDevice } from './dev.js';
import { ETH_HLEN, ethHeader } from '../../wire/ethernet.js';

export const NUD_NONE = 0x00;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NUD_IN_TIMER = NUD_INCOMPLETE | NUD_REACHABLE | NUD_DELAY | NUD_PROBE;
export const NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;
export const NUD_CONNECTED = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE;

/** neigh_update() flags. */
export const NEIGH_UPDATE_F_OVERRIDE = 0x1;
export const NEIGH_UPDATE_F_WEAK_OVERRIDE = 0x2;
export const NEIGH_UPDATE_F_ADMIN = 0x80000000;

export function nudStateName(s: number): string {
  switch (s) {
    case NUD_NONE: return 'NONE';
    case NUD_INCOMPLETE: return 'INCOMPLETE';
    case NUD_REACHABLE: return 'REACHABLE';
    case NUD_STALE: return 'STALE';
    case NUD_DELAY: return 'DELAY';
    case NUD_PROBE: return 'PROBE';
    case NUD_FAILED: return 'FAILED';
    case NUD_NOARP: return 'NOARP';
    case NUD_PERMANENT: return 'PERMANENT';
    default: return `0x${s.toString(16)}`;
  }
}

/** struct neigh_parms, with Linux's defaults for ARP (milliseconds). */
export class NeighParms {
  baseReachableTime = 30_000;
  retransTime = 1_000;
  delayProbeTime = 5_000;
  gcStaleTime = 60_000;
  ucastProbes = 3;
  mcastProbes = 3;
  appProbes = 0;
  mcastReprobes = 0;
  /** unres_qlen_bytes: bytes queued per unresolved neighbour (SK_WMEM_MAX). */
  unresQlenBytes = 212_992;
  /** locktime: an ARP reply within this of the last update does not override it. */
  locktime = 1_000;
  gcThresh1 = 128;
  gcThresh2 = 512;
  gcThresh3 = 1024;
  /** Derived: base_reachable_time randomised to [0.5, 1.5) of itself. */
  reachableTime = 30_000;
}

export interface NeighOps {
  /** Send a probe; `probes` is the count already sent, as arp_solicit reads it. */
  solicit(n: Neighbour): void;
  /** A queued packet could not be resolved (ipv4_link_failure). */
  errorReport(n: Neighbour | null, skb: SkBuff): void;
  /** State changes worth a log line; optional. */
  notify?(n: Neighbour, old: number): void;
}

/** A 32-bit hash of an IPv6 address: the ndisc table's key (its chain). */
export function neighHash6(a: Uint8Array, off = 0): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i += 4) {
    h ^= (a[off + i] << 24) | (a[off + i + 1] << 16) | (a[off + i + 2] << 8) | a[off + i + 3];
    h = Math.imul(h, 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

function eq6(a: Uint8Array, b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[off + i]) return false;
  return true;
}

export class Neighbour {
  readonly ha = Buffer.alloc(6);
  /** The IPv6 address (ndisc); null for IPv4 entries, whose key is the address. */
  key6: Buffer | null = null;
  /** The next entry with the same hash key (IPv6 only). */
  chain: Neighbour | null = null;
  /** ndisc: the neighbour said it is a router (NTF_ROUTER). */
  isRouter = false;
  nudState = NUD_NONE;
  probes = 0;
  confirmed: number;
  updated: number;
  used: number;
  readonly timer: Timer;
  arpQueue: SkBuff[] = [];
  arpQueueBytes = 0;
  dead = false;

  constructor(
    readonly key: number,
    now: number,
    fn: (n: Neighbour) => void,
  ) {
    this.confirmed = now;
    this.updated = now;
    this.used = now;
    this.timer = new Timer(() => fn(this));
  }
}

export class NeighTable {
  readonly parms = new NeighParms();
  #hash = new Map<number, Neighbour>();
  #count = 0;
  #gcTimer: Timer;
  #lastRand = 0;

  constructor(
    readonly id: string,
    /** The device the neighbours are on, and the ethertype of what goes to them (tbl->protocol). */
    readonly dev: NetDevice,
    readonly protocol: number,
    private time: TimeSource,
    private random: Random,
    private ops: NeighOps,
    readonly stats: NeighStats,
  ) {
    this.#randomiseReachable();
    // neigh_periodic_work runs every base_reachable_time/2.
    this.#gcTimer = new Timer(() => this.#periodicWork());
    this.time.timers.mod(this.#gcTimer, this.time.clock.now() + this.parms.baseReachableTime / 2);
  }

  get size(): number {
    return this.#count;
  }

  /** neigh_connected_output: the link header to the resolved neighbour (dev_hard_header), then the device. */
  #connectedOutput(n: Neighbour, skb: SkBuff): void {
    const dev = this.dev;
    const at = skb.push(ETH_HLEN);
    ethHeader(skb.buf, at, n.ha, dev.mac, this.protocol);
    dev.xmit(skb.buf, at, skb.len, skb.gsoSize, skb.csumPartial, skb.tstamp);
  }

  *entries(): IterableIterator<Neighbour> {
    for (const head of this.#hash.values()) for (let n: Neighbour | null = head; n; n = n.chain) yield n;
  }

  /** neigh_rand_reach_time. */
  #randomiseReachable(): void {
    const base = this.parms.baseReachableTime;
    this.parms.reachableTime = base / 2 + ((this.random.u32() / 0x100000000) * base);
    this.#lastRand = this.time.clock.now();
  }

  /** neigh_lookup; `a6` (at `off`) is the IPv6 address when `key` is its hash. */
  lookup(key: number, a6: Uint8Array | null = null, off = 0): Neighbour | undefined {
    this.stats.lookups++;
    let n = this.#hash.get(key);
    if (a6 !== null) while (n && !eq6(n.key6!, a6, off)) n = n.chain ?? undefined;
    if (n) this.stats.hits++;
    return n;
  }

  #find(key: number, a6: Uint8Array | null, off: number): Neighbour | undefined {
    let n = this.#hash.get(key);
    if (a6 !== null) while (n && !eq6(n.key6!, a6, off)) n = n.chain ?? undefined;
    return n;
  }

  /** __neigh_create; null when the table is full even after a forced GC. */
  create(key: number, a6: Uint8Array | null = null, off = 0): Neighbour | null {
    const existing = this.#find(key, a6, off);
    if (existing) return existing;
    const p = this.parms;
    if (this.#count >= p.gcThresh3 && this.#forcedGc() === 0 && this.#count >= p.gcThresh3) {
      this.stats.table_fulls++;
      return null;
    }
    const n = new Neighbour(key, this.time.clock.now(), (x) => this.#timerHandler(x));
    // A new entry starts unconfirmed (neigh_alloc backdates `updated`).
    n.updated = n.used = n.confirmed = this.time.clock.now() - 2 * p.baseReachableTime;
    if (a6 !== null) {
      n.key6 = Buffer.from(a6.subarray(off, off + 16));
      n.chain = this.#hash.get(key) ?? null;
    }
    this.#hash.set(key, n);
    this.#count++;
    this.stats.allocs++;
    this.stats.entries = this.#count;
    return n;
  }

  #destroy(n: Neighbour): void {
    this.time.timers.del(n.timer);
    n.dead = true;
    const head = this.#hash.get(n.key);
    if (head === n) {
      if (n.chain) this.#hash.set(n.key, n.chain);
      else this.#hash.delete(n.key);
    } else {
      let p = head;
      while (p && p.chain !== n) p = p.chain ?? undefined;
      if (p) p.chain = n.chain;
    }
    n.chain = null;
    this.#count--;
    n.arpQueue = [];
    n.arpQueueBytes = 0;
    this.stats.destroys++;
    this.stats.entries = this.#count;
  }

  /** Remove an entry now (administrative flush). */
  delete(key: number, a6: Uint8Array | null = null, off = 0): boolean {
    const n = this.#find(key, a6, off);
    if (!n) return false;
    this.#destroy(n);
    return true;
  }

  #maxProbes(n: Neighbour): number {
    const p = this.parms;
    let max = p.ucastProbes + p.appProbes;
    max += n.nudState & NUD_PROBE ? p.mcastReprobes : p.mcastProbes;
    return max;
  }

  #setState(n: Neighbour, s: number): void {
    const old = n.nudState;
    n.nudState = s;
    if (old !== s && this.ops.notify) this.ops.notify(n, old);
  }

  #probe(n: Neighbour): void {
    this.ops.solicit(n);
    n.probes++;
  }

  /** neigh_timer_handler. */
  #timerHandler(n: Neighbour): void {
    if (n.dead) return;
    const p = this.parms;
    const now = this.time.clock.now();
    const state = n.nudState;
    if (!(state & NUD_IN_TIMER)) return;
    let next = now + p.retransTime;
    let notify = false;

    // Strict comparisons: at the exact expiry the state moves on (a Linux
    // timer re-armed for the current jiffy would fire a tick later instead).
    if (state & NUD_REACHABLE) {
      if (now < n.confirmed + p.reachableTime) {
        next = n.confirmed + p.reachableTime;
      } else if (now < n.used + p.delayProbeTime) {
        this.#setState(n, NUD_DELAY);
        n.updated = now;
        next = now + p.delayProbeTime;
      } else {
        this.#setState(n, NUD_STALE);
        n.updated = now;
        notify = true;
      }
    } else if (state & NUD_DELAY) {
      if (now < n.confirmed + p.delayProbeTime) {
        this.#setState(n, NUD_REACHABLE);
        n.updated = now;
        next = n.confirmed + p.reachableTime;
      } else {
        this.#setState(n, NUD_PROBE);
        n.updated = now;
        n.probes = 0;
        next = now + Math.max(p.retransTime, 10);
      }
    } else {
      // NUD_PROBE | NUD_INCOMPLETE
      next = now + Math.max(p.retransTime, 10);
    }

    if (n.nudState & (NUD_INCOMPLETE | NUD_PROBE) && n.probes >= this.#maxProbes(n)) {
      this.#setState(n, NUD_FAILED);
      notify = true;
      this.stats.res_failed++;
      this.#invalidate(n);
    }
    if (n.nudState & NUD_IN_TIMER) this.time.timers.mod(n.timer, next);
    if (n.nudState & (NUD_INCOMPLETE | NUD_PROBE)) this.#probe(n);
    void notify;
  }

  /** neigh_invalidate: report every queued packet as unreachable and drop it. */
  #invalidate(n: Neighbour): void {
    const q = n.arpQueue;
    n.arpQueue = [];
    n.arpQueueBytes = 0;
    for (const skb of q) this.ops.errorReport(n, skb);
  }

  /**
   * neigh_resolve_output: send `skb` to the neighbour `key`, resolving it
   * first if needed (the packet then waits in the neighbour's queue).
   */
  resolveOutput(key: number, skb: SkBuff, a6: Uint8Array | null = null, off = 0): void {
    let n = this.lookup(key, a6, off);
    if (!n) {
      n = this.create(key, a6, off) ?? undefined;
      if (!n) {
        this.ops.errorReport(null, skb);
        return;
      }
    }
    if (!this.#eventSend(n, skb)) this.#connectedOutput(n, skb);
  }

  /**
   * __neigh_event_send: true when the packet was queued (or dropped) waiting
   * for resolution, false when the caller may send it now.
   */
  #eventSend(n: Neighbour, skb: SkBuff): boolean {
    const p = this.parms;
    const now = this.time.clock.now();
    n.used = now;
    if (n.nudState & (NUD_CONNECTED | NUD_DELAY | NUD_PROBE)) return false;

    let immediateProbe = false;
    if (!(n.nudState & (NUD_STALE | NUD_INCOMPLETE))) {
      if (p.mcastProbes + p.appProbes) {
        n.probes = p.ucastProbes;
        this.#setState(n, NUD_INCOMPLETE);
        n.updated = now;
        this.time.timers.mod(n.timer, now + Math.max(p.retransTime, 10));
        immediateProbe = true;
      } else {
        this.#setState(n, NUD_FAILED);
        n.updated = now;
        this.ops.errorReport(n, skb);
        return true;
      }
    } else if (n.nudState & NUD_STALE) {
      this.#setState(n, NUD_DELAY);
      n.updated = now;
      this.time.timers.mod(n.timer, now + p.delayProbeTime);
    }

    if (n.nudState === NUD_INCOMPLETE) {
      // Over the byte limit, the oldest packets go first, as Linux does.
      while (n.arpQueueBytes + skb.len > p.unresQlenBytes && n.arpQueue.length) {
        const old = n.arpQueue.shift()!;
        n.arpQueueBytes -= old.len;
        this.stats.unresolved_discards++;
      }
      if (skb.len <= p.unresQlenBytes) {
        n.arpQueue.push(skbHold(skb));
        n.arpQueueBytes += skb.len;
      } else {
        this.stats.unresolved_discards++;
      }
      if (immediateProbe) this.#probe(n);
      return true;
    }
    return false;
  }

  /**
   * neigh_update: new link-layer address and/or state learned from the wire
   * (ARP) or the administrator.
   */
  update(n: Neighbour, lladdr: Uint8Array | null, newState: number, flags: number): boolean {
    const p = this.parms;
    const now = this.time.clock.now();
    const old = n.nudState;
    if (n.dead) return false;
    if (!(flags & NEIGH_UPDATE_F_ADMIN) && old & (NUD_NOARP | NUD_PERMANENT)) return false;

    if (!(newState & NUD_VALID)) {
      this.time.timers.del(n.timer);
      this.#setState(n, newState);
      if (old & (NUD_INCOMPLETE | NUD_PROBE) && newState & NUD_FAILED) this.#invalidate(n);
      return true;
    }

    let addr: Uint8Array;
    if (lladdr) {
      addr = lladdr;
      if (old & NUD_VALID && n.ha.equals(lladdr)) addr = n.ha;
    } else {
      if (!(old & NUD_VALID)) return false;
      addr = n.ha;
    }

    // A different address without OVERRIDE: keep the one we have.
    if (old & NUD_VALID && addr !== n.ha && !(flags & NEIGH_UPDATE_F_OVERRIDE)) {
      if (flags & NEIGH_UPDATE_F_WEAK_OVERRIDE && old & NUD_CONNECTED) {
        addr = n.ha;
        newState = NUD_STALE;
      } else {
        return false;
      }
    } else if (old & NUD_VALID && addr === n.ha && flags & NEIGH_UPDATE_F_WEAK_OVERRIDE && newState === NUD_STALE && !(flags & NEIGH_UPDATE_F_OVERRIDE)) {
      // Same address, weak news: do not demote a connected entry.
      if (old & NUD_CONNECTED) newState = old;
    }

    if (newState & NUD_CONNECTED) n.confirmed = now;
    n.updated = now;

    if (newState !== old) {
      this.time.timers.del(n.timer);
      if (newState & NUD_PROBE) n.probes = 0;
      if (newState & NUD_IN_TIMER) this.time.timers.mod(n.timer, now + (newState & NUD_REACHABLE ? p.reachableTime : 0));
      this.#setState(n, newState);
    }

    if (addr !== n.ha) {
      n.ha.set(addr);
      if (!(newState & NUD_CONNECTED)) n.confirmed = now - 2 * p.baseReachableTime;
    }

    if (!(old & NUD_VALID) && newState & NUD_VALID) {
      const q = n.arpQueue;
      n.arpQueue = [];
      n.arpQueueBytes = 0;
      for (const skb of q) this.#connectedOutput(n, skb);
    }
    return true;
  }

  /** neigh_event_ns: the neighbour spoke to us; learn it as STALE, creating the entry. */
  eventNs(key: number, lladdr: Uint8Array, a6: Uint8Array | null = null, off = 0): Neighbour | null {
    const n = this.lookup(key, a6, off) ?? this.create(key, a6, off);
    if (n) this.update(n, lladdr, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE);
    return n;
  }

  /** neigh_confirm: an upper layer saw forward progress (e.g. a TCP ACK). */
  confirm(key: number, a6: Uint8Array | null = null, off = 0): void {
    const n = this.#find(key, a6, off);
    if (n) n.confirmed = this.time.clock.now();
  }

  /** neigh_periodic_work: drop FAILED and long-unused STALE entries; re-randomise reachable time. */
  #periodicWork(): void {
    const p = this.parms;
    const now = this.time.clock.now();
    this.stats.periodic_gc_runs++;
    if (now - this.#lastRand >= 300_000) this.#randomiseReachable();
    if (this.#count >= p.gcThresh1) {
      for (const n of [...this.entries()]) {
        if (n.nudState & (NUD_PERMANENT | NUD_IN_TIMER)) continue;
        if (n.used < n.confirmed) n.used = n.confirmed;
        if (n.nudState === NUD_FAILED || now > n.used + p.gcStaleTime) this.#destroy(n);
      }
    }
    // Below gc_thresh1 Linux keeps every entry, FAILED ones included.
    this.time.timers.mod(this.#gcTimer, now + p.baseReachableTime / 2);
  }

  /** neigh_forced_gc: at gc_thresh3, drop entries nobody is waiting on. */
  #forcedGc(): number {
    this.stats.forced_gc_runs++;
    let freed = 0;
    const now = this.time.clock.now();
    for (const n of [...this.entries()]) {
      if (n.nudState & (NUD_PERMANENT | NUD_INCOMPLETE)) continue;
      if (n.nudState === NUD_FAILED || now > n.updated + 5_000) {
        this.#destroy(n);
        freed++;
      }
    }
    return freed;
  }

  /**
   * neigh_carrier_down: the link lost its carrier: every entry but the
   * permanent ones goes, with the packets waiting for resolution (the peer
   * may come back with another address: the TAP re-created).
   */
  carrierDown(): number {
    let n = 0;
    for (const e of [...this.entries()]) {
      if (e.nudState & NUD_PERMANENT) continue;
      this.#destroy(e);
      n++;
    }
    return n;
  }

  /** Stop the table's own timer (stack shutdown). */
  shutdown(): void {
    this.time.timers.del(this.#gcTimer);
    for (const n of [...this.entries()]) this.#destroy(n);
  }
}
