/**
 * Character generator (RFC 864, TCP port 19): an endless stream of 72
 * character lines, written as fast as the peer reads, input thrown away.
 *
 * The pattern is the RFC's: the 95 printing ASCII characters (space, 0x20,
 * through '~', 0x7e) in order as a ring; line N holds ring characters
 * N mod 95 through N+71 mod 95, then CR LF. So line 0 starts with a space
 * (" !\"#$%..."), line 1 with '!', and line 95 is line 0 again (BSD inetd
 * writes the same; RFC 864's printed example shows the lines without their
 * leading blank).
 *
 * The stream repeats every 95 lines (95 * 74 = 7030 bytes), so every write
 * is the same whole number of periods from one shared buffer and ends where
 * the next begins: no position to keep, nothing built per write or per
 * connection.
 */
import { SCRATCH, type Stream, type StreamApp } from './stream.js';

export const CHARGEN_LINE_CHARS = 72;
const RING = 95;
const FIRST = 0x20;
const LINE = CHARGEN_LINE_CHARS + 2;
/** Bytes after which the stream repeats. */
export const CHARGEN_PERIOD = RING * LINE;

/** Line `n` of the pattern, with its CR LF. */
export function chargenLine(n: number): string {
  let s = '';
  for (let i = 0; i < CHARGEN_LINE_CHARS; i++) s += String.fromCharCode(FIRST + ((n + i) % RING));
  return s + '\r\n';
}

/** Nine periods (63 270 bytes): one write fills most of a send buffer. */
const PATTERN: Uint8Array = (() => {
  const b = new Uint8Array(9 * CHARGEN_PERIOD);
  for (let n = 0; n < 9 * RING; n++) {
    const off = n * LINE;
    for (let i = 0; i < CHARGEN_LINE_CHARS; i++) b[off + i] = FIRST + ((n + i) % RING);
    b[off + CHARGEN_LINE_CHARS] = 13;
    b[off + CHARGEN_LINE_CHARS + 1] = 10;
  }
  return b;
})();

export class ChargenApp implements StreamApp {
  onOpen(s: Stream): void {
    this.#produce(s);
  }

  onDrain(s: Stream): void {
    this.#produce(s);
  }

  /** Write until the socket is full; the socket's POLLOUT brings onDrain. */
  #produce(s: Stream): void {
    // What the socket does not take stays pending and goes out before the next chunk.
    while (s.write(PATTERN));
  }

  /** "Any data received is thrown away" (RFC 864), also while the socket is full, so the peer's FIN is seen. */
  readInto(_s: Stream): Uint8Array {
    return SCRATCH;
  }

  onData(): void {}

  /** The peer is done: so are we (no need to finish a line). */
  onEnd(s: Stream): void {
    s.close();
  }
}
