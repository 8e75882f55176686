/**
 * An in-memory link for deterministic tests: frames the stack sends are
 * kept in order; frames the test writes are delivered synchronously.
 */
import type { LinkDriver } from '../net/core/dev.js';

export class MemLink implements LinkDriver {
  readonly sent: Buffer[] = [];
  /** When set, xmit refuses frames (a full device queue). */
  full = false;

  xmit(buf: Buffer, off: number, len: number): boolean {
    if (this.full) return false;
    this.sent.push(Buffer.from(buf.subarray(off, off + len)));
    return true;
  }

  /** Take everything sent so far. */
  take(): Buffer[] {
    return this.sent.splice(0, this.sent.length);
  }
}
