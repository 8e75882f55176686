/** A stack on an in-memory link and a virtual clock. */
import { Stack } from '../../src/net/stack.js';
import { MemLink } from '../../src/drivers/memlink.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import { PEER_IP, PEER_MAC, STACK_IP, STACK_MAC, BCAST_MAC, arp, eth, parse, type Parsed } from './frames.js';

export class Harness {
  readonly link = new MemLink();
  readonly time = new VirtualTime(1000);
  readonly stack: Stack;

  constructor(opts: { mtu?: number; gateway?: number } = {}) {
    this.stack = new Stack(
      { ifname: 'tap0', mac: STACK_MAC, mtu: opts.mtu ?? 1500, ipv4: [{ addr: STACK_IP, prefix: 24 }], gateway: opts.gateway ?? PEER_IP },
      this.link,
      this.time,
      new SeededRandom(42),
    );
    this.stack.up();
  }

  /** A stack that already knows the peer's MAC (learned from the peer's ARP request). */
  static withPeer(opts: { mtu?: number } = {}): Harness {
    const h = new Harness(opts);
    h.link.take();
    h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, Buffer.alloc(6), STACK_IP)));
    h.link.take();
    return h;
  }

  rx(frame: Buffer): void {
    this.stack.receive(frame, 0, frame.length);
  }

  /** Everything sent since the last call, parsed. */
  sent(): Parsed[] {
    return this.link.take().map(parse);
  }

  get mibs() {
    return this.stack.mibs;
  }
}
