/**
 * A pcap writer (libpcap's classic format, microsecond timestamps,
 * LINKTYPE_ETHERNET) that tcpdump -r and tshark -r read. Records collect in
 * a buffer and are written when it fills, every second, and on close, so a
 * frame costs a copy, not a syscall.
 *
 * One file for several writers (the daemon's shards, docs/shards.md):
 * pcapOpenShared opens it with O_APPEND and writes the header; each writer
 * made on that descriptor writes only whole records, each flush one
 * write(), which the kernel appends to a regular file at its end as one
 * piece: the writers' records never interleave mid-record. Records are in
 * time order within a writer; across writers they come in flushes, so
 * timestamps may step back by up to the flush interval.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import type { FrameTap } from '../net/core/dev.js';

export const LINKTYPE_ETHERNET = 1;
/** tcpdump's default snap length: every frame whole, super-frames included. */
export const SNAPLEN = 262144;
const BUF_SIZE = 1 << 20;

/** The file header: magic, version 2.4, no time zone, the snap length, Ethernet. */
export function pcapHeader(snaplen = SNAPLEN): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8);
  h.writeUInt32LE(0, 12);
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return h;
}

/** A capture file for several writers: created (or emptied), its header written, open O_APPEND. */
export function pcapOpenShared(path: string): number {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND, 0o640);
  try {
    writeSync(fd, pcapHeader());
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

export class PcapWriter implements FrameTap {
  #fd: number;
  /** The descriptor is pcapOpenShared's: closing this writer leaves it open for the others. */
  readonly #shared: boolean;
  #buf = Buffer.allocUnsafe(BUF_SIZE);
  #used = 0;
  #timer: NodeJS.Timeout;
  frames = 0;

  /** `sharedFd`: a descriptor from pcapOpenShared to append to; otherwise `path` is created with its header. */
  constructor(
    readonly path: string,
    private wall: () => number = () => performance.timeOrigin + performance.now(),
    sharedFd: number | null = null,
  ) {
    this.#shared = sharedFd !== null;
    if (sharedFd !== null) {
      this.#fd = sharedFd;
    } else {
      this.#fd = openSync(path, 'w', 0o640);
      writeSync(this.#fd, pcapHeader());
    }
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
    if (!this.#shared) closeSync(this.#fd);
  }
}
