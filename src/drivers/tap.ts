/**
 * The TAP link driver. Frames come in through the addon's reader: each
 * readiness wake-up drains up to RX_SLOTS frames into one ring and calls us
 * once; we hand each frame to the stack in place. Frames go out through a
 * transmit arena: xmit() copies the frame in, and the arena is written as
 * one writeBatch() when the current turn of the event loop is done (or
 * when it fills).
 */
import { loadAddon, type TapAddon } from './addon.js';
import type { LinkDriver } from '../net/core/dev.js';

const RX_SLOTS = 64;
const TX_ARENA = 1 << 20;
const TX_MAX_FRAMES = 512;

export interface TapOptions {
  name: string;
  /** Open with IFF_VNET_HDR (offloads; the performance work builds on it). */
  vnetHdr?: boolean;
  /** Largest frame we may read: MTU + Ethernet header + a VLAN tag. */
  mtu: number;
}

export class TapDriver implements LinkDriver {
  readonly fd: number;
  readonly name: string;
  readonly vnetHdrSize: number;
  /** tx frames the kernel refused (EAGAIN or an error): counted, never thrown. */
  txErrors = 0;
  lastTxErrno = 0;
  #addon: TapAddon;
  #reader: unknown = null;
  #ring: Buffer;
  #slot: number;
  #rxLens = new Int32Array(RX_SLOTS);
  #arena = Buffer.allocUnsafe(TX_ARENA);
  #txOffs = new Int32Array(TX_MAX_FRAMES);
  #txLens = new Int32Array(TX_MAX_FRAMES);
  #txCount = 0;
  #txUsed = 0;
  #flushQueued = false;
  #closed = false;

  constructor(opts: TapOptions) {
    this.#addon = loadAddon();
    const r = this.#addon.openTap(opts.name, !!opts.vnetHdr);
    this.fd = r.fd;
    this.name = r.name;
    this.vnetHdrSize = r.vnetHdrSize;
    this.#slot = this.vnetHdrSize + Math.max(opts.mtu + 18, 1536);
    this.#ring = Buffer.alloc(this.#slot * RX_SLOTS);
  }

  get addon(): TapAddon {
    return this.#addon;
  }

  /** Start delivering frames to `rx`. A failed read is reported once through `onError`. */
  start(rx: (buf: Buffer, off: number, len: number) => void, onError: (code: string) => void): void {
    const ring = this.#ring;
    const lens = this.#rxLens;
    const slot = this.#slot;
    const hdr = this.vnetHdrSize;
    this.#reader = this.#addon.startReader(this.fd, ring, slot, lens, (count, err) => {
      for (let i = 0; i < count; i++) {
        if (lens[i] > hdr) rx(ring, i * slot + hdr, lens[i] - hdr);
      }
      this.flush();
      if (err) onError(err);
    });
  }

  xmit(buf: Buffer, off: number, len: number): boolean {
    if (this.#closed) return false;
    const need = len + this.vnetHdrSize;
    if (this.#txCount === TX_MAX_FRAMES || this.#txUsed + need > TX_ARENA) this.flush();
    if (need > TX_ARENA) return false;
    const at = this.#txUsed;
    // A zeroed virtio_net_hdr means "no offload, checksums complete".
    if (this.vnetHdrSize) this.#arena.fill(0, at, at + this.vnetHdrSize);
    buf.copy(this.#arena, at + this.vnetHdrSize, off, off + len);
    this.#txOffs[this.#txCount] = at;
    this.#txLens[this.#txCount] = need;
    this.#txCount++;
    this.#txUsed = at + ((need + 7) & ~7);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  /** Write every queued frame in one addon call. */
  flush(): void {
    this.#flushQueued = false;
    const n = this.#txCount;
    if (n === 0 || this.#closed) return;
    const sent = this.#addon.writeBatch(this.fd, this.#arena, this.#txOffs, this.#txLens, n);
    for (let i = 0; i < sent; i++) {
      if (this.#txLens[i] < 0) {
        this.txErrors++;
        this.lastTxErrno = -this.#txLens[i];
      }
    }
    // Frames the kernel had no room for (EAGAIN) are dropped, as a full qdisc would.
    this.txErrors += n - sent;
    this.#txCount = 0;
    this.#txUsed = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#reader) this.#addon.stopReader(this.#reader);
    this.#reader = null;
    this.#addon.closeFd(this.fd);
  }
}
