/**
 * Live capture (`tapstack capture`): the frames the device sees, received
 * and sent (dev_queue_xmit_nit's view; a TSO super-frame is one record, as
 * tcpdump on a TSO device shows it), as a pcap or pcapng stream
 * (LINKTYPE_ETHERNET, microsecond stamps; pcapng names the interface and
 * each packet's direction) on a descriptor the daemon hands the client
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
import { LINKTYPE_ETHERNET, SNAPLEN, pcapHeader } from '../drivers/pcap.js';

export const CAPTURE_SNAPLEN = SNAPLEN;
/** What one capture may have waiting for its reader before new records are dropped. */
export const CAPTURE_BACKLOG = 4 << 20;

const pad4 = (n: number) => (n + 3) & ~3;

/** One pcapng option (code, length, value padded to 32 bits). */
function pcapngOption(code: number, value: Buffer): Buffer {
  const o = Buffer.alloc(4 + pad4(value.length));
  o.writeUInt16LE(code, 0);
  o.writeUInt16LE(value.length, 2);
  value.copy(o, 4);
  return o;
}

/** One pcapng block: type, total length, body, total length again. */
function pcapngBlock(type: number, body: Buffer): Buffer {
  const b = Buffer.alloc(12 + body.length);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(b.length, 4);
  body.copy(b, 8);
  b.writeUInt32LE(b.length, b.length - 4);
  return b;
}

const OPT_ENDOFOPT = Buffer.alloc(4);
/** EPB: block type, length, interface, time (2), captured and original length; then the data, epb_flags, end of options, length. */
const PCAPNG_EPB = 6;
const EPB_FLAGS_INBOUND = 1;
const EPB_FLAGS_OUTBOUND = 2;

/**
 * The start of a pcapng stream: the section header (shb_userappl) and the
 * one interface (if_name: the TAP's name; microsecond stamps), so Wireshark
 * names the interface and each packet's direction (epb_flags).
 */
export function pcapngHeader(ifName: string, snaplen = CAPTURE_SNAPLEN): Buffer {
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeUInt16LE(0, 6);
  shb.writeInt32LE(-1, 8);
  shb.writeInt32LE(-1, 12);
  const idb = Buffer.alloc(8);
  idb.writeUInt16LE(LINKTYPE_ETHERNET, 0);
  idb.writeUInt32LE(snaplen, 4);
  return Buffer.concat([
    pcapngBlock(0x0a0d0d0a, Buffer.concat([shb, pcapngOption(4, Buffer.from('tapstack')), OPT_ENDOFOPT])),
    pcapngBlock(1, Buffer.concat([idb, pcapngOption(2, Buffer.from(ifName)), pcapngOption(9, Buffer.from([6])), OPT_ENDOFOPT])),
  ]);
}

export class Capture {
  readonly out: RecordPipe;

  constructor(
    fd: number,
    readonly filter: FramePredicate,
    readonly hub: CaptureHub,
    /** pcapng (with the interface's name and each packet's direction) instead of classic pcap. */
    readonly pcapng = false,
  ) {
    this.out = new RecordPipe(fd, CAPTURE_BACKLOG, () => hub.remove(this));
    const h = pcapng ? pcapngHeader(hub.stack.dev.name) : pcapHeader();
    h.copy(this.out.buf, this.out.reserve(h.length));
  }

  /** Frames written, and those lost because the reader was behind (the file header is not one). */
  get frames(): number {
    return this.out.records - 1;
  }
  get dropped(): number {
    return this.out.dropped;
  }

  frame(b: Buffer, off: number, len: number, outbound: boolean, wallMs: number): void {
    if (this.out.closed || !this.filter(b, off, len)) return;
    const cap = Math.min(len, CAPTURE_SNAPLEN);
    const us = Math.round(wallMs * 1000);
    if (this.pcapng) {
      const size = 44 + pad4(cap);
      const at = this.out.reserve(size);
      if (at < 0) return;
      const buf = this.out.buf;
      buf.writeUInt32LE(PCAPNG_EPB, at);
      buf.writeUInt32LE(size, at + 4);
      buf.writeUInt32LE(0, at + 8);
      buf.writeUInt32LE(Math.floor(us / 2 ** 32), at + 12);
      buf.writeUInt32LE(us % 2 ** 32, at + 16);
      buf.writeUInt32LE(cap, at + 20);
      buf.writeUInt32LE(len, at + 24);
      b.copy(buf, at + 28, off, off + cap);
      const o = at + 28 + pad4(cap);
      buf.fill(0, at + 28 + cap, o);
      buf.writeUInt16LE(2, o);
      buf.writeUInt16LE(4, o + 2);
      buf.writeUInt32LE(outbound ? EPB_FLAGS_OUTBOUND : EPB_FLAGS_INBOUND, o + 4);
      buf.writeUInt32LE(0, o + 8);
      buf.writeUInt32LE(size, o + 12);
    } else {
      const at = this.out.reserve(16 + cap);
      if (at < 0) return;
      const buf = this.out.buf;
      buf.writeUInt32LE(Math.floor(us / 1e6), at);
      buf.writeUInt32LE(us % 1e6, at + 4);
      buf.writeUInt32LE(cap, at + 8);
      buf.writeUInt32LE(len, at + 12);
      b.copy(buf, at + 16, off, off + cap);
    }
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

  frame(buf: Buffer, off: number, len: number, outbound: boolean): void {
    this.#file?.frame(buf, off, len, outbound);
    const wall = this.stack.time.clock.wall();
    for (const c of this.captures) c.frame(buf, off, len, outbound, wall);
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
