import { SK_MEMORY_PCPU_RESERVE, shareBatch } from './percpu_counter.js';

/**
 * A protocol's memory (include/net/proto_memory.h): the pages its sockets
 * reserve, counted against its limits (tcp_mem, udp_mem); the functions
 * that reserve and release them per socket are in sock.ts.
 */

/**
 * A protocol's memory over all its sockets (struct proto's
 * memory_allocated, memory_pressure and sysctl_mem): the pages its sockets
 * have reserved, and whether it is under pressure. Its limits are the
 * protocol's sysctl (tcp_mem, udp_mem: min, pressure, max in pages), read
 * at each use so a sysctl write applies at once.
 */
export class ProtoMemory {
  /** memory_allocated: pages reserved by the protocol's sockets (this stack's own, with a share). */
  allocated = 0;
  /**
   * memory_pressure: set past the pressure limit, cleared below the min.
   * With a share, each stack has its own, decided on the shared count.
   */
  pressure = false;
  /** per_cpu_fw_alloc: this stack's pages not yet folded into the shared count. */
  #fwAlloc = 0;
  /** The count shared with the daemon's other stacks (percpu_counter.ts), or null: a stack alone. */
  #shared: Int32Array | null = null;
  #slot = 0;
  /** The stacks sharing the count: #fwAlloc goes at most 1/16 of the min over them either way before it is folded. */
  #stacks = 1;

  constructor(
    /** sysctl_mem: [min, pressure, max], in pages. */
    readonly limits: () => readonly number[],
    /** sysctl_rmem[0], sysctl_wmem[0]: what a socket may always hold, even over the limits. */
    readonly rmem0: () => number,
    readonly wmem0: () => number,
    /** sockets_allocated: for each socket's fair share under pressure. */
    readonly sockets: () => number,
    /**
     * enter_memory_pressure / leave_memory_pressure (the protocol's
     * counters), or null for a protocol without a pressure state (UDP:
     * past its min, only a socket under its minimum buffer gets more).
     */
    readonly pressureChanged: ((on: boolean) => void) | null,
  ) {}

  /** Count into a share of the daemon's stacks from now on: the limits are then checked against the sum. */
  share(buf: SharedArrayBuffer, slot: number, stacks: number): void {
    this.#shared = new Int32Array(buf);
    this.#slot = slot;
    this.#stacks = stacks;
    Atomics.add(this.#shared, slot, this.allocated);
  }

  /**
   * sk_memory_allocated_add (sk_memory_allocated_sub for a negative
   * count) then sk_memory_allocated: the protocol's pages after the
   * change. With a share, this stack's changes reach the shared count one
   * batch at a time (proto_memory_pcpu_drain), and the pages returned are
   * the shared count and this stack's unfolded part.
   */
  add(pages: number): number {
    const own = (this.allocated += pages);
    if (this.#shared === null) return own;
    const fw = (this.#fwAlloc += pages);
    // sysctl_mem_pcpu_rsv, bounded by the limits as they are now.
    const rsv = shareBatch(this.limits()[0], this.#stacks, SK_MEMORY_PCPU_RESERVE);
    if (fw >= rsv || fw <= -rsv) {
      Atomics.add(this.#shared, this.#slot, fw);
      this.#fwAlloc = 0;
    }
    return Atomics.load(this.#shared, this.#slot) + this.#fwAlloc;
  }

  /** sk_memory_allocated: the protocol's pages, over every stack sharing the count. */
  memoryAllocated(): number {
    return this.#shared === null ? this.allocated : Atomics.load(this.#shared, this.#slot) + this.#fwAlloc;
  }

  /** sk_has_memory_pressure. */
  get hasPressure(): boolean {
    return this.pressureChanged !== null;
  }

  /** sk_enter_memory_pressure. */
  enterPressure(): void {
    if (this.pressure || this.pressureChanged === null) return;
    this.pressure = true;
    this.pressureChanged!(true);
  }

  /** sk_leave_memory_pressure. */
  leavePressure(): void {
    if (!this.pressure) return;
    this.pressure = false;
    this.pressureChanged!(false);
  }
}
