/**
 * The daemon's end of a stream it hands a client (a capture's pcap, a
 * trace's JSON lines): records collect in a buffer and are written once
 * per turn of the loop. A reader that falls behind loses whole records
 * past the backlog, counted, never the stream's framing, and never slows
 * the stack; a full descriptor is watched for room; a reader that left
 * (POLLHUP, or a failed write) closes the stream.
 */
import { unixAddon } from './unix.js';
import { EAGAIN, POLLHUP } from '../uapi.js';

export class RecordPipe {
  readonly ux = unixAddon();
  #buf = Buffer.allocUnsafe(1 << 16);
  #used = 0;
  #watch: unknown = null;
  #closed = false;
  /** Records written into the stream, and those dropped because the reader was behind. */
  records = 0;
  dropped = 0;

  constructor(
    readonly fd: number,
    /** What may wait for the reader before new records are dropped. */
    readonly backlog: number,
    /** Called once, when the stream closes for whatever reason. */
    readonly onClose: () => void,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Room for one record of n bytes: its offset in `buf` (valid until the next
   * call), or -1 when the reader is too far behind (the record is counted dropped).
   */
  reserve(n: number): number {
    if (this.#closed) return -1;
    if (this.#used + n > this.backlog) {
      this.dropped++;
      return -1;
    }
    if (this.#used + n > this.#buf.length) {
      let size = this.#buf.length;
      while (size < this.#used + n) size *= 2;
      const nb = Buffer.allocUnsafe(size);
      this.#buf.copy(nb, 0, 0, this.#used);
      this.#buf = nb;
    }
    const at = this.#used;
    this.#used += n;
    this.records++;
    return at;
  }

  get buf(): Buffer {
    return this.#buf;
  }

  /** One record made of a string (a JSON line): false if it was dropped. */
  writeString(s: string): boolean {
    const n = Buffer.byteLength(s);
    const at = this.reserve(n);
    if (at < 0) return false;
    this.#buf.write(s, at, n);
    return true;
  }

  /** Write what waits; a full descriptor is watched for room, a gone reader ends the stream. */
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
    this.onClose();
  }
}
