/**
 * Live capture (`tapstack capture`): the frames the device sees, received
 * and sent (dev_queue_xmit_nit's view; a TSO super-frame is one record, as
 * tcpdump on a TSO device shows it), as a pcap stream (LINKTYPE_ETHERNET,
 * microsecond stamps) on a descriptor the daemon hands the client. Each
 * capture has its filter (pcap_filter.ts). Records collect and are written
 * once per turn of the loop; a reader that falls behind loses whole records
 * past CAPTURE_BACKLOG, counted, never the stream's framing, and never
 * slows the stack. The hub stands on the device's one tap only while a
 * capture runs (with the daemon's --pcap file behind it), so the receive
 * and transmit paths pay nothing otherwise.
 */
import type { Net } from '../net/core/net.js';
import type { FrameTap } from '../net/core/dev.js';
import type { FramePredicate } from '../lib/pcap_filter.js';
import { unixAddon } from './unix.js';
import { EAGAIN, POLLHUP } from '../uapi.js';

const LINKTYPE_ETHERNET = 1;
export const CAPTURE_SNAPLEN = 262144;
/** What one capture may have waiting for its reader before new records are dropped. */
export const CAPTURE_BACKLOG = 4 << 20;

/** The pcap file header: version 2.4, no zone, snaplen, Ethernet. */
export function pcapHeader(snaplen = CAPTURE_SNAPLEN): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return h;
}

export class Capture {
  readonly ux = unixAddon();
  #buf = Buffer.allocUnsafe(1 << 16);
  #used = 0;
  #watch: unknown = null;
  #closed = false;
  frames = 0;
  dropped = 0;

  constructor(
    readonly fd: number,
    readonly filter: FramePredicate,
    readonly hub: CaptureHub,
  ) {
    this.#append(pcapHeader(), 0, 24);
  }

  frame(b: Buffer, off: number, len: number, wallMs: number): void {
    if (this.#closed || !this.filter(b, off, len)) return;
    const cap = Math.min(len, CAPTURE_SNAPLEN);
    if (this.#used + 16 + cap > CAPTURE_BACKLOG) {
      this.dropped++;
      return;
    }
    const at = this.#reserve(16 + cap);
    const us = Math.round(wallMs * 1000);
    this.#buf.writeUInt32LE(Math.floor(us / 1e6), at);
    this.#buf.writeUInt32LE(us % 1e6, at + 4);
    this.#buf.writeUInt32LE(cap, at + 8);
    this.#buf.writeUInt32LE(len, at + 12);
    b.copy(this.#buf, at + 16, off, off + cap);
    this.frames++;
    this.hub.wantFlush();
  }

  #reserve(n: number): number {
    if (this.#used + n > this.#buf.length) {
      let size = this.#buf.length;
      while (size < this.#used + n) size *= 2;
      const nb = Buffer.allocUnsafe(size);
      this.#buf.copy(nb, 0, 0, this.#used);
      this.#buf = nb;
    }
    const at = this.#used;
    this.#used += n;
    return at;
  }

  #append(b: Buffer, off: number, len: number): void {
    const at = this.#reserve(len);
    b.copy(this.#buf, at, off, off + len);
  }

  /** Write what waits; a full descriptor is watched for room, a gone reader ends the capture. */
  flush(): void {
    if (this.#closed) return;
    while (this.#used > 0) {
      const n = this.ux.write(this.fd, this.#buf, 0, this.#used);
      if (n === -EAGAIN) {
        this.#watch ??= this.ux.watch(this.fd, () => this.flush());
        this.ux.watchSet(this.#watch, this.ux.UV_WRITABLE);
        return;
      }
      if (n <= 0) {
        this.close();
        return;
      }
      this.#buf.copy(this.#buf, 0, n, this.#used);
      this.#used -= n;
    }
    if (this.#watch) this.ux.watchSet(this.#watch, 0);
  }

  /** The reader closed its end (POLLHUP on ours). */
  hungUp(): boolean {
    const ev = this.ux.pollEvents(this.fd);
    return ev < 0 || (ev & POLLHUP) !== 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watch) this.ux.watchClose(this.#watch);
    this.ux.close(this.fd);
    this.hub.remove(this);
  }
}

/** The device's tap while captures run: the daemon's --pcap file (if any) and every capture. */
export class CaptureHub implements FrameTap {
  readonly captures = new Set<Capture>();
  #file: FrameTap | null = null;
  #flushQueued = false;
  #reaper: NodeJS.Timeout | null = null;

  constructor(
    readonly stack: Net,
    /** Called when a capture ends (its reader gone, or the daemon stopping). */
    readonly onEnd: (c: Capture) => void = () => {},
  ) {}

  add(c: Capture): void {
    if (!this.captures.size) {
      this.#file = this.stack.dev.tap;
      this.stack.dev.tap = this;
      // A reader that left while nothing matched is found within a second.
      this.#reaper = setInterval(() => {
        for (const x of [...this.captures]) if (x.hungUp()) x.close();
      }, 1000);
      this.#reaper.unref();
    }
    this.captures.add(c);
    this.wantFlush();
  }

  remove(c: Capture): void {
    if (!this.captures.delete(c)) return;
    this.onEnd(c);
    if (this.captures.size) return;
    if (this.stack.dev.tap === this) this.stack.dev.tap = this.#file;
    this.#file = null;
    if (this.#reaper) clearInterval(this.#reaper);
    this.#reaper = null;
  }

  frame(buf: Buffer, off: number, len: number): void {
    this.#file?.frame(buf, off, len);
    const wall = this.stack.time.clock.wall();
    for (const c of this.captures) c.frame(buf, off, len, wall);
  }

  wantFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      for (const c of [...this.captures]) c.flush();
    });
  }

  closeAll(): void {
    for (const c of [...this.captures]) c.close();
  }
}
