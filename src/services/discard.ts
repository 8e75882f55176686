/**
 * Discard (RFC 863, TCP port 9): everything received is thrown away. The
 * reads go to one scratch buffer shared by every connection, so a discard
 * connection costs no buffer of its own; the window stays open and the data
 * is ACKed as fast as it comes.
 */
import { SCRATCH, type Stream, type StreamApp } from './stream.js';

export class DiscardApp implements StreamApp {
  readInto(_s: Stream): Uint8Array {
    return SCRATCH;
  }

  onData(): void {}
  // onEnd: the default closes once the peer has.
}
