/**
 * The soak's low-rate fuzzer: valid frames from the kernel side's
 * addresses (test/lib/frames.ts builds them: the soak's daemon uses the
 * same addresses and MACs as the fuzzer's world), mutated by the
 * structure-aware mutator of test/fuzz/mutate.ts, and handed as hex lines
 * to inject_stream.py, which writes them to the TAP inside the namespace.
 *
 * The fuzzer must not forge the verified flows' own segments (a frame
 * from a live 4-tuple with an in-window sequence number would be a
 * legitimate injection, not a stack fault), nor rewrite the kernel side's
 * neighbour entries; frames that could are held back and counted: those
 * from the kernel side's addresses with a source port the flows use
 * (ephemeral ports, the kernel side's servers), ARP from the kernel
 * side's address with another MAC, and neighbour discovery naming the
 * kernel side's addresses.
 */
import { Rng, mutate } from '../fuzz/mutate.js';
import { dissect } from '../fuzz/dissect.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import { PEER6, PEER_IP, PEER_LL, PEER_MAC, STACK6, STACK_IP, STACK_MAC, arp, echo, echo6, eth, inetFrame, ipFrame, ndFrame, nsMsg, peerAddr, stackAddr, tcp, tcpOptions, udp, type Family } from '../lib/frames.js';
import { parseIpv4, parseIpv6 } from '../../src/lib/addr.js';

/** Source ports of the fuzzer's own frames: below the ephemeral range and away from every flow's port. */
const FUZZ_SPORT = 20_000;
const DPORTS = [7, 9, 19, 80, 5001, 8080, 1];
const STRANGER_IP = parseIpv4('10.0.0.99')!;
const STRANGER6 = parseIpv6('fd00::99')!;
const STRANGER_MAC = Buffer.from([0x02, 0, 0, 0, 0, 0x99]);

export interface FuzzStats {
  built: number;
  sent: number;
  /** Held back: could have forged a flow's segment or a neighbour entry. */
  held: number;
  ops: Map<string, number>;
}

export class SoakFuzzer {
  readonly rng: Rng;
  readonly stats: FuzzStats = { built: 0, sent: 0, held: 0, ops: new Map() };

  constructor(
    seed: number,
    /** Ports a flow uses on the kernel side (its servers); ephemeral ports are excluded anyway. */
    readonly flowPorts: number[],
  ) {
    this.rng = new Rng(seed ^ 0xf022);
  }

  /** A valid frame to start from. */
  seedFrame(): Buffer {
    const r = this.rng;
    const family: Family = r.chance(0.5) ? AF_INET : AF_INET6;
    const src = peerAddr(family);
    const dst = stackAddr(family);
    const sport = FUZZ_SPORT + r.int(100);
    switch (r.int(7)) {
      case 0:
      case 1:
      case 2: {
        const flags = r.pick([0x02, 0x10, 0x18, 0x04, 0x11, 0x12, 0x14, 0x01]);
        const options = flags & 0x02 ? tcpOptions([['mss', 1460], ['sackOK'], ['TS', r.u32(), 0], ['nop'], ['wscale', 7]]) : r.chance(0.5) ? tcpOptions([['nop'], ['nop'], ['TS', r.u32(), r.u32()]]) : undefined;
        const payload = flags & 0x08 ? r.bytes(1 + r.int(200)) : undefined;
        const seg = tcp({ sport, dport: r.pick(DPORTS), seq: r.u32(), ack: r.u32(), flags, win: r.int(65_536), payload, options, src, dst });
        return inetFrame(family, { proto: 6, payload: seg, src, dst });
      }
      case 3: {
        const seg = udp(sport, r.pick([7, 9, 53, 5000]), r.bytes(r.int(300)), src, dst);
        return inetFrame(family, { proto: 17, payload: seg, src, dst });
      }
      case 4:
        return family === AF_INET ? ipFrame({ proto: 1, payload: echo(r.int(65_536), r.int(65_536), r.bytes(r.int(100))) }) : inetFrame(AF_INET6, { proto: 58, payload: echo6(r.int(65_536), r.int(65_536), r.bytes(r.int(100))), src, dst });
      case 5: {
        // A fragment of a datagram that never completes (the reassembly queue's timer has to clear it).
        return ipFrame({ proto: 17, payload: r.bytes(8 + r.int(400)), id: r.int(65_536), frag: 0x2000 | r.int(64) });
      }
      default:
        return family === AF_INET
          ? eth(r.chance(0.5) ? Buffer.alloc(6, 0xff) : STACK_MAC, STRANGER_MAC, 0x0806, arp(1, STRANGER_MAC, STRANGER_IP, Buffer.alloc(6), STACK_IP))
          : ndFrame(nsMsg(STACK6, STRANGER6, STACK6, STRANGER_MAC), STRANGER6, STACK6, 255, STRANGER_MAC);
    }
  }

  /** A mutated frame, or null when it is held back (see above). */
  next(): Buffer | null {
    const m = mutate(this.seedFrame(), this.rng);
    this.stats.built++;
    for (const op of m.ops) this.stats.ops.set(op, (this.stats.ops.get(op) ?? 0) + 1);
    if (!this.safe(m.frame)) {
      this.stats.held++;
      return null;
    }
    this.stats.sent++;
    return m.frame;
  }

  safe(f: Buffer): boolean {
    if (f.length >= 14 && f.readUInt16BE(12) === 0x0806) {
      // ARP naming the kernel side's address with a MAC other than its own would move its neighbour entry.
      const b = f.subarray(14);
      if (b.length >= 18 && b.readUInt32BE(14) === PEER_IP >>> 0 && !b.subarray(8, 14).equals(PEER_MAC)) return false;
      if (b.length >= 28 && b.readUInt32BE(24) === PEER_IP >>> 0) return false;
      return true;
    }
    // dissect() (the fuzzer's own, made for broken frames) finds the transport header if there is one.
    const d = dissect(f);
    if (d.l3 !== 'ipv4' && d.l3 !== 'ipv6') return true;
    const fromPeer = d.l3 === 'ipv4' ? f.length >= d.l3Off + 16 && f.readUInt32BE(d.l3Off + 12) === PEER_IP >>> 0 : this.#peer6(f.subarray(d.l3Off + 8, d.l3Off + 24));
    if (d.proto === 58 && d.l4Off >= 0 && f[d.l4Off] >= 133 && f[d.l4Off] <= 137) return !this.#mentions(f);
    if (!fromPeer) return true;
    // From the kernel side: only a transport header with a port no flow uses (a later fragment carries none).
    if (d.proto === 6 || d.proto === 17) {
      if (d.l4Off < 0 || d.l4Off + 2 > f.length) return false;
      const sport = f.readUInt16BE(d.l4Off);
      return sport < 32_768 && !this.flowPorts.includes(sport);
    }
    return d.proto !== -1 || d.fragment;
  }

  #peer6(a: Buffer): boolean {
    return a.equals(PEER6) || a.equals(PEER_LL);
  }

  /** Does the frame carry one of the kernel side's IPv6 addresses anywhere from the IPv6 source on? */
  #mentions(f: Buffer): boolean {
    for (const a of [PEER6, PEER_LL]) if (f.indexOf(Buffer.from(a), 14 + 8) >= 0) return true;
    return false;
  }
}

