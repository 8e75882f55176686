/**
 * Live capture (`tapstack capture`): the frames the device sees, received
 * and sent (dev_queue_xmit_nit's view; a TSO super-frame is one record, as
 * tcpdump on a TSO device shows it), as a pcap stream (LINKTYPE_ETHERNET,
 * microsecond stamps) on a descriptor the daemon hands the client
 * (record_pipe.ts: a reader that falls behind loses whole records past
 * CAPTURE_BACKLOG, never the framing). Each capture has its filter
 * (pcap_filter.ts). The hub stands on the device's one tap only while a
 * capture runs (with the daemon's --pcap file behind it), so the receive
 * and transmit paths pay nothing otherwise.
 */
import type { Net } from '../net/core/net.js';
import type { FrameTap } from '../net/core/dev.js';
import type { FramePredicate } from '../lib/pcap_filter.js';
import { RecordPipe } from './record_pipe.js';

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
  readonly out: RecordPipe;

  constructor(
    fd: number,
    readonly filter: FramePredicate,
    readonly hub: CaptureHub,
  ) {
    this.out = new RecordPipe(fd, CAPTURE_BACKLOG, () => hub.remove(this));
    const h = pcapHeader();
    h.copy(this.out.buf, this.out.reserve(h.length));
  }

  /** Frames written, and those lost because the reader was behind (the file header is not one). */
  get frames(): number {
    return this.out.records - 1;
  }
  get dropped(): number {
    return this.out.dropped;
  }

  frame(b: Buffer, off: number, len: number, wallMs: number): void {
    if (this.out.closed || !this.filter(b, off, len)) return;
    const cap = Math.min(len, CAPTURE_SNAPLEN);
    const at = this.out.reserve(16 + cap);
    if (at < 0) return;
    const buf = this.out.buf;
    const us = Math.round(wallMs * 1000);
    buf.writeUInt32LE(Math.floor(us / 1e6), at);
    buf.writeUInt32LE(us % 1e6, at + 4);
    buf.writeUInt32LE(cap, at + 8);
    buf.writeUInt32LE(len, at + 12);
    b.copy(buf, at + 16, off, off + cap);
    this.hub.wantFlush();
  }

  flush(): void {
    this.out.flush();
  }

  hungUp(): boolean {
    return this.out.hungUp();
  }

  close(): void {
    this.out.close();
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
