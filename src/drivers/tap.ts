/**
 * The TAP link driver. Frames come in through the addon's reader: each
 * readiness wake-up drains up to RX_SLOTS frames into the ring's slots and
 * calls us once; we hand each frame to the stack in place. A slot whose
 * buffer the stack kept (TCP referencing a super-frame's payload instead of
 * copying it: dev.rxPage) gets a fresh buffer before the next read, from a
 * pool the kept ones return to once read. Frames go out through a
 * transmit arena: xmit() copies the frame in, and the arena is written as
 * one writeBatch() when the current turn of the event loop is done (or
 * when it fills).
 *
 * With offloads (a virtio_net_hdr on every frame, TUNSETOFFLOAD with
 * checksum and TSO), the kernel hands us TCP super-frames of up to 64 KB
 * whose checksum it vouches for, and takes ours back: one frame per TSO
 * super-segment, its checksum left partial for the kernel to finish.
 *
 * The interface can go away under us (`ip link del`): the kernel then
 * fails our reads and writes (EBADFD, or EBADF from the poll's error).
 * The driver detaches (the reader stopped, the descriptor closed, queued
 * frames dropped) and reports it once through `onLost`; reattach() opens
 * the same name again with the same header and offloads.
 */
import { errnoCode, loadAddon, type TapAddon } from './addon.js';
import type { LinkDriver } from '../net/core/dev.js';
import { RcvPage } from '../net/core/page.js';

/** struct virtio_net_hdr (little-endian on x86, as tun uses it without TUNSETVNETBE). */
const VNET_F_NEEDS_CSUM = 1;
const VNET_F_DATA_VALID = 2;
const VNET_GSO_NONE = 0;
const VNET_GSO_TCPV4 = 1;
const VNET_GSO_TCPV6 = 4;
/** The largest frame with offloads: a 64 KB IP datagram plus Ethernet and a VLAN tag. */
const GSO_FRAME_MAX = 65535 + 18;

const RX_SLOTS = 64;
/** Slot buffers kept for reuse once the stack gives them back (4 MiB with offloads); more go to the garbage collector. */
const RX_SPARE_MAX = 64;
const TX_ARENA = 1 << 20;
const TX_MAX_FRAMES = 512;

export interface TapOptions {
  name: string;
  /** Open with IFF_VNET_HDR (offloads; the performance work builds on it). */
  vnetHdr?: boolean;
  /** Largest frame we may read: MTU + Ethernet header + a VLAN tag. */
  mtu: number;
  /** Negotiate checksum and TSO offloads (needs vnetHdr); falls back to what the kernel accepts. */
  offload?: boolean;
  /** Open with IFF_MULTI_QUEUE: the interface may get more queues (docs/shards.md). */
  multiQueue?: boolean;
  /**
   * A queue of a multi-queue TAP opened already (by the daemon's main thread,
   * which holds CAP_NET_ADMIN): its descriptor and header size. The driver
   * adopts it instead of opening one, and closes it on close().
   */
  queue?: { fd: number; vnetHdrSize: number };
}

/**
 * Read or write errors that mean the interface is gone: tun answers EBADFD
 * on a descriptor whose device was deleted, and libuv reports the poll's
 * POLLERR as EBADF.
 */
export const TAP_GONE_CODES: readonly string[] = ['EBADFD', 'EBADF', 'EIO', 'ENODEV', 'ENXIO'];

/** Where the driver hands each frame: Stack.receive's shape. */
export type TapRx = (buf: Buffer, off: number, len: number, csumValid: boolean, gsoSize: number, page: RcvPage) => void;

export class TapDriver implements LinkDriver {
  /** The open descriptor; -1 while detached (the interface gone). */
  fd: number;
  readonly name: string;
  readonly vnetHdrSize: number;
  /** tx frames the kernel refused (EAGAIN or an error): counted, never thrown. */
  txErrors = 0;
  lastTxErrno = 0;
  /** What TUNSETOFFLOAD accepted: the kernel completes our checksums / takes our TSO frames (and sends us its own). */
  csumOffload = false;
  tso = false;
  /** Called once when the interface is found gone (a read or write says so), with the errno name. */
  onLost: ((code: string) => void) | null = null;
  /** Times the interface was lost, and re-attached. */
  lost = 0;
  reattached = 0;
  #opts: TapOptions;
  #attached = false;
  #rx: TapRx | null = null;
  #onError: ((code: string) => void) | null = null;
  #addon: TapAddon;
  #reader: unknown = null;
  #ring: Buffer;
  #slot: number;
  /** Each slot's current buffer, as a page the stack may keep (refs > 0 after the frame: kept). */
  #slotPages: RcvPage[] = [];
  /** Slot buffers the stack gave back, for slots whose buffer it keeps next. */
  #spare: Buffer[] = [];
  #releaseBound = (p: RcvPage): void => {
    if (this.#spare.length < RX_SPARE_MAX) this.#spare.push(p.buf);
  };
  /** Slot buffers the stack kept (a received super-frame referenced, not copied). */
  rxSlotsKept = 0;
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
    this.#opts = opts;
    const r = opts.queue ? { ...opts.queue, name: opts.name } : this.#addon.openTap(opts.name, !!opts.vnetHdr, !!opts.multiQueue);
    this.fd = r.fd;
    this.name = r.name;
    this.vnetHdrSize = r.vnetHdrSize;
    this.#attached = true;
    this.#negotiateOffload(true);
    this.#slot = this.vnetHdrSize + Math.max(this.tso ? GSO_FRAME_MAX : opts.mtu + 18, 1536);
    this.#ring = Buffer.alloc(this.#slot * RX_SLOTS);
    for (let i = 0; i < RX_SLOTS; i++) this.#slotPages.push(this.#page(this.#ring.subarray(i * this.#slot, (i + 1) * this.#slot)));
  }

  /**
   * TUNSETOFFLOAD: ask for the most, settle for what the kernel takes (TSO
   * needs checksum offload). On a re-attach, never more than the first
   * open got: the ring's slots were sized for it.
   */
  #negotiateOffload(first: boolean): void {
    const wantCsum = first || this.csumOffload;
    const wantTso = first || this.tso;
    this.csumOffload = false;
    this.tso = false;
    if (!this.#opts.offload || !this.vnetHdrSize || !wantCsum) return;
    const a = this.#addon;
    for (const [flags, csum, tso] of [
      [a.TUN_F_CSUM | a.TUN_F_TSO4 | a.TUN_F_TSO6, true, true],
      [a.TUN_F_CSUM, true, false],
    ] as const) {
      if (tso && !wantTso) continue;
      try {
        a.setOffload(this.fd, flags);
        this.csumOffload = csum;
        this.tso = tso;
        break;
      } catch {
        // refused: try less
      }
    }
  }

  /** The descriptor is attached to the interface (false between a loss and reattach()). */
  get attached(): boolean {
    return this.#attached;
  }

  #page(buf: Buffer): RcvPage {
    const p = new RcvPage(buf);
    p.release = this.#releaseBound;
    return p;
  }

  get addon(): TapAddon {
    return this.#addon;
  }

  /**
   * Start delivering frames to `rx`, each with what the vnet header says of
   * it (the kernel vouched for its checksum; the segment size of a GRO
   * super-frame) and the ring slot it sits in, which the stack may keep.
   * A failed read is reported once through `onError`.
   */
  start(rx: TapRx, onError: (code: string) => void): void {
    this.#rx = rx;
    this.#onError = onError;
    this.#startReader();
  }

  #startReader(): void {
    const rx = this.#rx!;
    const onError = this.#onError!;
    const lens = this.#rxLens;
    const slot = this.#slot;
    const hdr = this.vnetHdrSize;
    const offload = this.csumOffload;
    const pages = this.#slotPages;
    this.#reader = this.#addon.startReader(this.fd, this.#ring, slot, lens, (count, err) => {
      for (let i = 0; i < count; i++) {
        if (lens[i] <= hdr) continue;
        const page = pages[i];
        const buf = page.buf;
        let csumValid = false;
        let gsoSize = 0;
        if (offload) {
          const flags = buf[0];
          csumValid = (flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0;
          gsoSize = buf[1] !== VNET_GSO_NONE ? buf.readUInt16LE(4) : 0;
        }
        rx(buf, hdr, lens[i] - hdr, csumValid, gsoSize, page);
        // Kept by a socket: the reader must not write over it, so the slot gets another buffer.
        if (page.refs > 0) this.#replaceSlot(i);
      }
      this.flush();
      if (!err) return;
      if (TAP_GONE_CODES.includes(err)) this.#lost(err);
      else onError(err);
    });
    // Slots whose buffer a socket kept got another one: the new reader must use those.
    for (let i = 0; i < RX_SLOTS; i++) {
      const b = pages[i].buf;
      if (b.buffer !== this.#ring.buffer || b.byteOffset !== this.#ring.byteOffset + i * slot) this.#addon.setSlot(this.#reader, i, b);
    }
  }

  /**
   * The interface is gone: stop reading, close the descriptor, drop what
   * waits to be written (counted as tx errors), and say so once.
   */
  #lost(code: string): void {
    if (!this.#attached || this.#closed) return;
    this.#attached = false;
    this.lost++;
    this.txErrors += this.#txCount;
    this.#txCount = 0;
    this.#txUsed = 0;
    if (this.#reader) this.#addon.stopReader(this.#reader);
    this.#reader = null;
    try {
      this.#addon.closeFd(this.fd);
    } catch {
      // The descriptor is useless either way.
    }
    this.fd = -1;
    this.onLost?.(code);
  }

  /**
   * Open the interface again after a loss: the same name, vnet header and
   * offloads (no more than before), and the reader restarted. Throws the
   * addon's error (code: ENODEV... EPERM when it is not ours to attach to,
   * EBUSY when someone else holds it) and stays detached.
   */
  reattach(): void {
    if (this.#attached || this.#closed) return;
    const r = this.#addon.openTap(this.name, !!this.#opts.vnetHdr, !!this.#opts.multiQueue);
    if (r.vnetHdrSize !== this.vnetHdrSize) {
      this.#addon.closeFd(r.fd);
      throw Object.assign(new Error(`TUNSETVNETHDRSZ gave ${r.vnetHdrSize}, not ${this.vnetHdrSize}`), { code: 'EINVAL' });
    }
    this.fd = r.fd;
    this.#attached = true;
    this.#negotiateOffload(false);
    this.reattached++;
    if (this.#rx) this.#startReader();
  }

  #replaceSlot(i: number): void {
    const buf = this.#spare.pop() ?? Buffer.allocUnsafe(this.#slot);
    this.#addon.setSlot(this.#reader, i, buf);
    this.#slotPages[i] = this.#page(buf);
    this.rxSlotsKept++;
  }

  xmit(buf: Buffer, off: number, len: number, gsoSize = 0, csumPartial = false): boolean {
    if (this.#closed || !this.#attached) return false;
    const need = len + this.vnetHdrSize;
    if (this.#txCount === TX_MAX_FRAMES || this.#txUsed + need > TX_ARENA) this.flush();
    if (need > TX_ARENA) return false;
    const at = this.#txUsed;
    // A zeroed virtio_net_hdr means "no offload, checksums complete".
    if (this.vnetHdrSize) {
      this.#arena.fill(0, at, at + this.vnetHdrSize);
      if (csumPartial && this.csumOffload) this.#vnetTx(buf, off, len, gsoSize, at);
    }
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

  /**
   * The header of a TCP frame (over IPv4, or over IPv6 without extension
   * headers: what skb->ipv6 packets from ip6Xmit are) whose checksum TCP
   * left partial, with the segment size of a TSO super-frame
   * (VIRTIO_NET_HDR_GSO_TCPV4 / _TCPV6). Every other frame keeps the
   * zeroed header (checksum complete, no GSO).
   */
  #vnetTx(buf: Buffer, off: number, len: number, gsoSize: number, at: number): void {
    if (len < 14 + 20 + 20) return;
    const ip = off + 14;
    let ihl: number;
    let gsoType: number;
    if (buf[off + 12] === 0x08 && buf[off + 13] === 0x00) {
      if (buf[ip + 9] !== 6) return;
      ihl = (buf[ip] & 0x0f) * 4;
      gsoType = VNET_GSO_TCPV4;
    } else if (buf[off + 12] === 0x86 && buf[off + 13] === 0xdd) {
      if (len < 14 + 40 + 20 || buf[ip + 6] !== 6) return;
      ihl = 40;
      gsoType = VNET_GSO_TCPV6;
    } else {
      return;
    }
    const th = ip + ihl;
    const a = this.#arena;
    a[at] = VNET_F_NEEDS_CSUM;
    a[at + 1] = gsoSize ? gsoType : VNET_GSO_NONE;
    a.writeUInt16LE(14 + ihl + (buf[th + 12] >> 4) * 4, at + 2); // hdr_len
    a.writeUInt16LE(gsoSize, at + 4);
    a.writeUInt16LE(14 + ihl, at + 6); // csum_start: the TCP header
    a.writeUInt16LE(16, at + 8); // csum_offset: tcphdr.check
  }

  /** Write every queued frame in one addon call. */
  flush(): void {
    this.#flushQueued = false;
    const n = this.#txCount;
    if (n === 0 || this.#closed || !this.#attached) return;
    let sent: number;
    try {
      sent = this.#addon.writeBatch(this.fd, this.#arena, this.#txOffs, this.#txLens, n);
    } catch (e) {
      // EBADFD: the interface was deleted (the reader may not have heard yet).
      const code = errnoCode(e) ?? 'EIO';
      if (!TAP_GONE_CODES.includes(code)) throw e;
      this.#lost(code);
      return;
    }
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
    if (this.#attached) this.#addon.closeFd(this.fd);
    this.#attached = false;
  }
}
