/**
 * Counts shared by the stacks of one daemon (docs/shards.md, Memory): the
 * limits that are the whole machine's in Linux (tcp_mem and udp_mem over
 * tcp_memory_allocated and udp_memory_allocated, tcp_max_orphans,
 * tcp_max_tw_buckets) are the whole daemon's when it runs one stack per
 * shard. The count lives in a SharedArrayBuffer; each stack folds its
 * changes into it in batches, as Linux's per-CPU counters do
 * (percpu_counter_add_batch; sk_memory_allocated_add with the protocol's
 * per_cpu_fw_alloc): one atomic add per batch, not per change. Reads add
 * this stack's unfolded part to the shared count: the error is at most
 * the other stacks' batches.
 *
 * A stack alone has no share: its counts are plain numbers, as before.
 */

/** The slots of a share: one Int32 each (pages or sockets: 2^31 pages is 8 TiB). */
export const SHARE_TCP_MEM = 0;
export const SHARE_UDP_MEM = 1;
export const SHARE_TCP_ORPHANS = 2;
export const SHARE_TCP_TW = 3;
const SHARE_SLOTS = 4;

/** SK_MEMORY_PCPU_RESERVE: the most pages one stack keeps unfolded (Linux's 1 MB per CPU). */
export const SK_MEMORY_PCPU_RESERVE = 256;
/** The most sockets (orphans, TIME_WAIT) one stack keeps unfolded. */
export const PERCPU_COUNTER_BATCH = 32;

/** The buffer a daemon's stacks share; made once by the main thread, handed to each shard. */
export function stackShareCreate(): SharedArrayBuffer {
  return new SharedArrayBuffer(SHARE_SLOTS * Int32Array.BYTES_PER_ELEMENT);
}

/**
 * A batch for `stacks` stacks sharing a limit: small enough that the
 * batches held back by all of them stay within 1/16 of the limit, never
 * above `most`, at least 1.
 */
export function shareBatch(limit: number, stacks: number, most: number): number {
  return Math.max(1, Math.min(most, Math.floor(limit / (16 * stacks))));
}

/**
 * percpu_counter: `count` is this stack's own (exact: what its counters
 * report, summed over the shards by the daemon); read() is the whole
 * daemon's, what a limit is checked against.
 */
export class PercpuCounter {
  /** This stack's own count. */
  count = 0;
  /** The part of count not yet folded into the shared one. */
  #unfolded = 0;
  #shared: Int32Array | null = null;
  #slot = 0;
  #stacks = 1;
  /** The limit the count is checked against, read at each fold's test (a sysctl write applies at once). */
  #limit: () => number = () => 0;
  /** The largest batch (PERCPU_COUNTER_BATCH; SK_MEMORY_PCPU_RESERVE for a protocol's pages). */
  #most = PERCPU_COUNTER_BATCH;

  /** Count into a share of `stacks` stacks from now on, what is counted already included. */
  share(buf: SharedArrayBuffer, slot: number, stacks: number, limit: () => number, most = PERCPU_COUNTER_BATCH): void {
    this.#shared = new Int32Array(buf);
    this.#slot = slot;
    this.#stacks = stacks;
    this.#limit = limit;
    this.#most = most;
    Atomics.add(this.#shared, slot, this.count);
  }

  /** percpu_counter_add_batch. */
  add(n: number): void {
    this.count += n;
    if (this.#shared === null) return;
    const v = (this.#unfolded += n);
    const batch = shareBatch(this.#limit(), this.#stacks, this.#most);
    if (v >= batch || v <= -batch) {
      Atomics.add(this.#shared, this.#slot, v);
      this.#unfolded = 0;
    }
  }

  /** percpu_counter_read, with this stack's unfolded part: the whole daemon's count. */
  read(): number {
    return this.#shared === null ? this.count : Atomics.load(this.#shared, this.#slot) + this.#unfolded;
  }
}
