/** A dual-stack stack (10.0.0.2/24 and fd00::2/64) on an in-memory link and a virtual clock. */
import { Stack } from '../../src/net/stack.js';
import { MemLink } from '../../src/drivers/memlink.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import { formatIpv6 } from '../../src/lib/addr.js';
import { PEER_IP, STACK_IP, STACK_MAC } from './frames.js';
import { PEER6, STACK6, naMsg, ndFrame, nsMsg, parse6, snmc, type Parsed6 } from './frames6.js';
import type { StackLog } from '../../src/net/core/net.js';

export interface Harness6Opts {
  mtu?: number;
  /** Static addresses (default fd00::2/64). */
  addrs?: { addr: Buffer; prefix: number }[];
  gateway?: Buffer | null;
  slaac?: boolean;
  /** Do not bring the link up. */
  down?: boolean;
  /** Send router solicitations (off by default so long timelines stay quiet). */
  rs?: boolean;
  log?: StackLog;
}

export class Harness6 {
  readonly link = new MemLink();
  readonly time = new VirtualTime(1000);
  readonly stack: Stack;

  constructor(opts: Harness6Opts = {}) {
    this.stack = new Stack(
      {
        ifname: 'tap0',
        mac: STACK_MAC,
        mtu: opts.mtu ?? 1500,
        ipv4: [{ addr: STACK_IP, prefix: 24 }],
        gateway: PEER_IP,
        ipv6: opts.addrs ?? [{ addr: Buffer.from(STACK6), prefix: 64 }],
        ipv6Gateway: opts.gateway ?? null,
        ipv6Slaac: opts.slaac ?? false,
      },
      this.link,
      this.time,
      new SeededRandom(42),
      opts.log,
    );
    if (!opts.rs) this.stack.ipv6.cnf.rtr_solicits = 0;
    if (!opts.down) this.stack.up();
  }

  /** Up, DAD done (no conflict), start-up frames taken. */
  static ready(opts: Harness6Opts = {}): Harness6 {
    const h = new Harness6(opts);
    h.time.advance(3000);
    h.link.take();
    return h;
  }

  /** Ready, and the peer fd00::1 known as REACHABLE (it solicited us, and answered our probe). */
  static withPeer(opts: Harness6Opts = {}): Harness6 {
    const h = Harness6.ready(opts);
    h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
    // The NA is ignored for an unknown neighbour; learn it from an NS, then confirm.
    h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
    h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
    h.link.take();
    return h;
  }

  rx(frame: Buffer): void {
    this.stack.receive(frame, 0, frame.length);
  }

  sent(): Parsed6[] {
    return this.link.take().map(parse6);
  }

  /** A log that keeps its warnings (to assert DAD reports). */
  static recordingLog(): StackLog & { warnings: { obj: Record<string, unknown>; msg: string }[] } {
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    return { warnings, debug() {}, info() {}, warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
  }

  get mibs() {
    return this.stack.mibs;
  }

  /** The NUD state name of an IPv6 neighbour, or null. */
  neighState(a: Uint8Array): string | null {
    const s = this.stack.ipv6.neighbours().find((n) => n.addr === formatIpv6(a));
    return s ? s.state : null;
  }
}
