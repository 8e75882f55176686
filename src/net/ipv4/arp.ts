/**
 * ARP (RFC 826, net/ipv4/arp.c): answers requests for our addresses,
 * resolves next hops through the neighbour table, announces us with a
 * gratuitous ARP when the link comes up.
 */
import {
  ARP_HLEN,
  ARPHRD_ETHER,
  ARPOP_REPLY,
  ARPOP_REQUEST,
  ARP_SHA,
  arpBuild,
  arpHln,
  arpHrd,
  arpOp,
  arpPln,
  arpPro,
  arpSip,
  arpTip,
} from '../../wire/arp.js';
import { ETH_BROADCAST, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ethHeader } from '../../wire/ethernet.js';
import { ipv4IsLoopback, ipv4IsMulticast } from '../../lib/addr.js';
import { NetDevice, PACKET_HOST } from '../core/dev.js';
import {
  NEIGH_UPDATE_F_OVERRIDE,
  NEIGH_UPDATE_F_WEAK_OVERRIDE,
  NUD_REACHABLE,
  NUD_STALE,
  NUD_VALID,
  NeighTable,
  type Neighbour,
} from '../core/neighbour.js';
import type { SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import type { Net } from '../core/net.js';

const ZERO_MAC = Buffer.alloc(6);

export class Arp {
  readonly tbl: NeighTable;
  /** One frame buffer reused for every ARP we send (the driver copies it). */
  #frame = Buffer.alloc(ETH_HLEN + ARP_HLEN + 18);

  constructor(
    private stack: Net,
    private dev: NetDevice,
  ) {
    this.tbl = new NeighTable('arp_cache', dev, ETH_P_IP, stack.time, stack.random, {
      solicit: (n) => this.#solicit(n),
      errorReport: (_n, skb) => stack.ipv4LinkFailure(skb),
      notify: (n, old) => {
        if (stack.debug) stack.log.debug({ neigh: n.key, from: old, to: n.nudState }, 'neighbour state');
      },
    }, stack.mibs.Arp);
    dev.addPacketHandler(ETH_P_ARP, (skb) => this.rcv(skb.buf, skb.data, skb.len, skb.pktType));
  }

  /** arp_send: one ARP packet, padded to the Ethernet minimum. */
  send(op: number, dstHw: Uint8Array, sip: number, tha: Uint8Array, tip: number): void {
    const f = this.#frame;
    f.fill(0);
    ethHeader(f, 0, dstHw, this.dev.mac, ETH_P_ARP);
    arpBuild(f, ETH_HLEN, op, this.dev.mac, sip, tha, tip);
    this.dev.xmit(f, 0, f.length);
  }

  /** arp_solicit: broadcast while INCOMPLETE, unicast to the known address while PROBE. */
  #solicit(n: Neighbour): void {
    const p = this.tbl.parms;
    const probes = n.probes - p.ucastProbes;
    const saddr = this.stack.fib.selectAddr(n.key);
    if (probes < 0) {
      if (!(n.nudState & NUD_VALID)) return; // nothing to unicast to
      this.send(ARPOP_REQUEST, n.ha, saddr, ZERO_MAC, n.key);
    } else if (probes - p.appProbes < 0) {
      return; // user-space resolver: not supported, app_probes is 0
    } else {
      this.send(ARPOP_REQUEST, ETH_BROADCAST, saddr, ZERO_MAC, n.key);
    }
  }

  /** Gratuitous ARP (a request for our own address) for each address, when the link comes up. */
  announce(): void {
    for (const a of this.stack.fib.addrs) this.send(ARPOP_REQUEST, ETH_BROADCAST, a.local, ZERO_MAC, a.local);
  }

  /** ip_neigh_for_gw + neigh_output, ip_finish_output2's neighbour step: to `nexthop` on the link. */
  output(nexthop: number, skb: SkBuff): void {
    this.tbl.resolveOutput(nexthop, skb);
  }

  /** arp_rcv + arp_process. */
  rcv(buf: Buffer, off: number, len: number, pktType: number): void {
    const drop = this.stack.mibs.Drop.counts;
    if (
      len < ARP_HLEN ||
      arpHrd(buf, off) !== ARPHRD_ETHER ||
      arpPro(buf, off) !== ETH_P_IP ||
      arpHln(buf, off) !== 6 ||
      arpPln(buf, off) !== 4
    ) {
      drop[SKB_DROP_REASON.ARP_INVALID]++;
      return;
    }
    const op = arpOp(buf, off);
    if (op !== ARPOP_REQUEST && op !== ARPOP_REPLY) {
      drop[SKB_DROP_REASON.ARP_INVALID]++;
      return;
    }
    const sip = arpSip(buf, off);
    const tip = arpTip(buf, off);
    const sha = buf.subarray(off + ARP_SHA, off + ARP_SHA + 6);
    // Nonsense addresses (arp_process): multicast/loopback targets, group senders.
    if (ipv4IsMulticast(tip) || ipv4IsLoopback(tip) || (sha[0] & 1) === 1) {
      drop[SKB_DROP_REASON.ARP_INVALID]++;
      return;
    }
    const fib = this.stack.fib;

    // Duplicate address detection probe (RFC 5227, sip 0): answer if it is ours.
    if (sip === 0) {
      if (op === ARPOP_REQUEST && fib.isLocal(tip)) this.send(ARPOP_REPLY, sha, tip, sha, sip);
      return;
    }

    if (op === ARPOP_REQUEST && fib.isLocal(tip)) {
      const st = this.stack.mibs.Arp;
      if (pktType === PACKET_HOST) st.rcv_probes_ucast++;
      else st.rcv_probes_mcast++;
      this.tbl.eventNs(sip, sha);
      this.send(ARPOP_REPLY, sha, tip, sha, sip);
      return;
    }

    // A reply, or a request not for us: refresh an entry we already have.
    // (arp_accept=0: such packets never create entries.)
    const n = this.tbl.lookup(sip);
    if (n) {
      const state = op === ARPOP_REPLY && pktType === PACKET_HOST ? NUD_REACHABLE : NUD_STALE;
      const override = this.stack.time.clock.now() > n.updated + this.tbl.parms.locktime;
      this.tbl.update(n, sha, state, (override ? NEIGH_UPDATE_F_OVERRIDE : 0) | NEIGH_UPDATE_F_WEAK_OVERRIDE);
    }
  }
}
