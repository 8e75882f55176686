/**
 * A stack on an in-memory link and a virtual clock, in the address family a
 * test names: AF_INET, an IPv4-only stack (10.0.0.2/24); AF_INET6, a
 * dual-stack one with IPv6 configured as well (fd00::2/64 besides).
 */
import { Stack } from '../../src/net/stack.js';
import type { LinkDriver } from '../../src/net/core/dev.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import { AF_INET6 } from '../../src/uapi.js';
import {
  BCAST_MAC,
  PEER6,
  PEER_IP,
  PEER_MAC,
  STACK6,
  STACK_IP,
  STACK_MAC,
  arp,
  eth,
  formatAddr,
  naMsg,
  ndFrame,
  nsMsg,
  parse,
  snmc,
  type Family,
  type IpAddr,
  type Parsed,
} from './frames.js';
import type { StackLog } from '../../src/net/core/net.js';

/**
 * The in-memory link: frames the stack sends kept in order, each with what
 * the device told the driver of it (a TSO super-frame's gso_size, a
 * CHECKSUM_PARTIAL checksum), as a TAP's vnet header would carry them.
 */
export class HarnessLink implements LinkDriver {
  readonly sent: Buffer[] = [];
  /** What the device said of each frame in `sent`, index for index. */
  readonly dev: { gsoSize: number; csumPartial: boolean }[] = [];
  /** When set, xmit refuses frames (a full device queue). */
  full = false;
  /** Sees every frame as it is sent (the harness's peer answering neighbour discovery). */
  onXmit: ((frame: Buffer) => void) | null = null;

  xmit(buf: Buffer, off: number, len: number, gsoSize = 0, csumPartial = false): boolean {
    if (this.full) return false;
    const f = Buffer.from(buf.subarray(off, off + len));
    this.sent.push(f);
    this.dev.push({ gsoSize, csumPartial });
    this.onXmit?.(f);
    return true;
  }

  /** Take everything sent so far. */
  take(): Buffer[] {
    this.dev.length = 0;
    return this.sent.splice(0, this.sent.length);
  }

  /** Take everything sent so far, parsed with what the device said of each frame. */
  takeParsed(): Parsed[] {
    const dev = this.dev.splice(0, this.dev.length);
    return this.sent.splice(0, this.sent.length).map((f, i) => parse(f, dev[i]));
  }
}

export interface HarnessOpts {
  mtu?: number;
  /**
   * The default router of the family under test: AF_INET's (a number; the
   * peer unless given, 0 for none), or AF_INET6's (16 bytes; none unless given).
   */
  gateway?: IpAddr | null;
  /** AF_INET6: the static addresses (default fd00::2/64). */
  addrs?: { addr: Buffer; prefix: number }[];
  /** AF_INET6: SLAAC from Router Advertisements. */
  slaac?: boolean;
  /** Do not bring the link up. */
  down?: boolean;
  /** AF_INET6: send router solicitations (off by default so long timelines stay quiet). */
  rs?: boolean;
  /** The memory the stack scales its limits to (StackConfig.memory). */
  memory?: number;
  log?: StackLog;
}

export class Harness {
  readonly link = new HarnessLink();
  readonly time = new VirtualTime(1000);
  readonly stack: Stack;

  constructor(
    readonly family: Family,
    opts: HarnessOpts = {},
  ) {
    const v6 = family === AF_INET6;
    const gw = opts.gateway;
    if (gw != null && (typeof gw === 'number') === v6) throw new Error(`gateway ${formatAddr(gw)} is not of the harness's family`);
    this.stack = new Stack(
      {
        ifname: 'tap0',
        mac: STACK_MAC,
        mtu: opts.mtu ?? 1500,
        ipv4: [{ addr: STACK_IP, prefix: 24 }],
        gateway: v6 || gw === undefined ? PEER_IP : ((gw as number | null) ?? 0),
        // Without an ipv6 config the stack is IPv4-only and draws its random numbers as such.
        ...(v6 ? { ipv6: opts.addrs ?? [{ addr: Buffer.from(STACK6), prefix: 64 }], ipv6Gateway: (gw as Buffer | null | undefined) ?? null, ipv6Slaac: opts.slaac ?? false } : {}),
        ...(opts.memory !== undefined ? { memory: opts.memory } : {}),
      },
      this.link,
      this.time,
      new SeededRandom(42),
      opts.log,
    );
    if (v6 && !opts.rs) this.stack.ipv6.cnf.rtr_solicits = 0;
    if (!opts.down) this.stack.up();
  }

  /** Up, start-up frames taken; for AF_INET6, DAD done (no conflict) first. */
  static ready(family: Family, opts: HarnessOpts = {}): Harness {
    const h = new Harness(family, opts);
    if (family === AF_INET6) h.time.advance(3000);
    h.link.take();
    return h;
  }

  /**
   * Ready, and the peer known: for AF_INET its MAC learned from its ARP
   * request; for AF_INET6 fd00::1 REACHABLE (it solicited us, and answered our probe).
   */
  static withPeer(family: Family, opts: HarnessOpts = {}): Harness {
    const h = Harness.ready(family, opts);
    if (family === AF_INET6) {
      h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
      // The NA is ignored for an unknown neighbour; learn it from an NS, then confirm.
      h.rx(ndFrame(nsMsg(STACK6, PEER6, snmc(STACK6)), PEER6, snmc(STACK6)));
      h.rx(ndFrame(naMsg(PEER6, 0x60, PEER6, STACK6), PEER6, STACK6));
    } else {
      h.rx(eth(BCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, Buffer.alloc(6), STACK_IP)));
    }
    h.link.take();
    return h;
  }

  /** A frame from the wire; csumValid: the device verified its checksum (CHECKSUM_UNNECESSARY). */
  rx(frame: Buffer, csumValid = false): void {
    this.stack.receive(frame, 0, frame.length, csumValid);
  }

  /** Everything sent since the last call, parsed. */
  sent(): Parsed[] {
    return this.link.takeParsed();
  }

  /** A log that keeps its warnings (to assert DAD reports). */
  static recordingLog(): StackLog & { warnings: { obj: Record<string, unknown>; msg: string }[] } {
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    return { warnings, debug() {}, info() {}, warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
  }

  get mibs() {
    return this.stack.mibs;
  }

  /** The NUD state name of a neighbour (ARP or NDP), or null. */
  neighState(a: IpAddr): string | null {
    const s = this.stack.neighbours().find((n) => n.addr === formatAddr(a));
    return s ? s.state : null;
  }
}
