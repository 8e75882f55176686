/**
 * A pcap writer (libpcap's classic format, microsecond timestamps,
 * LINKTYPE_ETHERNET) that tcpdump -r and tshark -r read. Records collect in
 * a buffer and are written when it fills, every second, and on close, so a
 * frame costs a copy, not a syscall.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { FrameTap } from '../net/core/dev.js';

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;
const BUF_SIZE = 1 << 20;

export class PcapWriter implements FrameTap {
  #fd: number;
  #buf = Buffer.allocUnsafe(BUF_SIZE);
  #used = 0;
  #timer: NodeJS.Timeout;
  frames = 0;

  constructor(
    readonly path: string,
    private wall: () => number = () => performance.timeOrigin + performance.now(),
  ) {
    this.#fd = openSync(path, 'w', 0o640);
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8);
    h.writeUInt32LE(0, 12);
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.#fd, h);
    this.#timer = setInterval(() => this.flush(), 1000);
    this.#timer.unref();
  }

  frame(buf: Buffer, off: number, len: number): void {
    const cap = Math.min(len, SNAPLEN);
    if (this.#used + 16 + cap > BUF_SIZE) this.flush();
    if (16 + cap > BUF_SIZE) return;
    const t = this.wall();
    const sec = Math.floor(t / 1000);
    const b = this.#buf;
    let o = this.#used;
    b.writeUInt32LE(sec >>> 0, o);
    b.writeUInt32LE(Math.floor((t - sec * 1000) * 1000), o + 4);
    b.writeUInt32LE(cap, o + 8);
    b.writeUInt32LE(len, o + 12);
    o += 16;
    buf.copy(b, o, off, off + cap);
    this.#used = o + cap;
    this.frames++;
  }

  flush(): void {
    if (this.#used === 0) return;
    writeSync(this.#fd, this.#buf, 0, this.#used);
    this.#used = 0;
  }

  close(): void {
    clearInterval(this.#timer);
    this.flush();
    closeSync(this.#fd);
  }
}
