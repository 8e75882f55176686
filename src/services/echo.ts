/**
 * Echo (RFC 862, TCP port 7): every byte received is sent back, until the
 * peer closes. Back-pressure end to end: while the socket will not take
 * what was read, nothing more is read, so a peer that sends without reading
 * fills its own window, not our memory.
 */
import type { Stream, StreamApp } from './stream.js';

/** One read's worth: what a connection may hold while the socket cannot take it. */
const ECHO_BUF = 16384;

export class EchoApp implements StreamApp {
  /** Per connection, reused for every read; the pending remainder of a write is a view of it. */
  readonly #buf = new Uint8Array(ECHO_BUF);

  readInto(s: Stream): Uint8Array | null {
    return s.blocked ? null : this.#buf;
  }

  onData(s: Stream, buf: Uint8Array, n: number): void {
    s.write(buf.subarray(0, n));
  }
  // onEnd: the default ends our side once the echo is written, then closes.
}
