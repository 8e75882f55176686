import { PercpuCounter, SK_MEMORY_PCPU_RESERVE } from './percpu_counter.js';

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
  /**
   * memory_allocated: pages reserved by the protocol's sockets; with a
   * share, folded into the daemon's count per batch (per_cpu_fw_alloc,
   * proto_memory_pcpu_drain), at most SK_MEMORY_PCPU_RESERVE pages.
   */
  readonly #pages = new PercpuCounter();
  /**
   * memory_pressure: set past the pressure limit, cleared below the min.
   * With a share, each stack has its own, decided on the shared count.
   */
  pressure = false;

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

  /** This stack's own pages (what its counters report). */
  get allocated(): number {
    return this.#pages.count;
  }

  /** Count into a share of the daemon's stacks from now on: the limits are then checked against the sum. */
  share(buf: SharedArrayBuffer, slot: number, stacks: number): void {
    this.#pages.share(buf, slot, stacks, () => this.limits()[0], SK_MEMORY_PCPU_RESERVE);
  }

  /**
   * sk_memory_allocated_add (sk_memory_allocated_sub for a negative
   * count) then sk_memory_allocated: the protocol's pages after the
   * change, over every stack sharing the count.
   */
  add(pages: number): number {
    this.#pages.add(pages);
    return this.#pages.read();
  }

  /** sk_memory_allocated: the protocol's pages, over every stack sharing the count. */
  memoryAllocated(): number {
    return this.#pages.read();
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
