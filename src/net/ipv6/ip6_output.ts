/**
 * IPv6 output (net/ipv6/ip6_output.c): route, header, local delivery,
 * fragmentation past the path MTU, and the neighbour step (ndisc).
 * Packets arrive as an SkBuff holding the upper-layer header and payload
 * with headroom; the IPv6 header is pushed in front.
 */
import { ipv6IsMulticast, ipv6McastMac } from '../../lib/addr.js';
import { ETH_HLEN, ETH_P_IPV6, ethHeader } from '../../wire/ethernet.js';
import { FRAG_HLEN, IPV6_HLEN, IPV6_MAXPLEN, IP6_MF, NEXTHDR_FRAGMENT, NEXTHDR_TCP, NEXTHDR_UDP, ip6Header } from '../../wire/ipv6.js';
import { allocSkb, type SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { NET_XMIT_SUCCESS } from '../core/dev.js';
import { ipv6PathMtu } from './addrconf.js';
import type { Net } from '../core/net.js';
import { EMSGSIZE, ENETDOWN, ENETUNREACH } from '../../uapi.js';

/**
 * ipv6_select_ident: a random, non-zero 32-bit fragment ID per datagram,
 * as Linux draws it since 5.13 (get_random_u32_above(0)); the per-destination
 * counters it used before leaked information (RFC 7739).
 */
export class Ip6Idents {
  constructor(private rand: () => number) {}
  next(): number {
    let id = this.rand() >>> 0;
    while (id === 0) id = this.rand() >>> 0;
    return id;
  }
}

/**
 * ip6_make_flowlabel with auto_flowlabels=1: a flow label from a hash of
 * the addresses, the protocol and (TCP/UDP) the ports, stable per flow.
 */
function flowLabel(b: Buffer, at: number, proto: number, secret: number): number {
  let h = secret ^ proto;
  for (let i = 8; i < 40; i += 4) {
    h = Math.imul(h ^ b.readUInt32BE(at + i), 0xcc9e2d51);
    h ^= h >>> 15;
  }
  if (proto === NEXTHDR_TCP || proto === NEXTHDR_UDP) h = Math.imul(h ^ b.readUInt32BE(at + IPV6_HLEN), 0x1b873593);
  h ^= h >>> 16;
  return h & 0xfffff;
}

/**
 * ip6_xmit: put the IPv6 header on `skb` (which holds the upper-layer
 * header and data) and send it. hopLimit -1: 1 for multicast, else the
 * link's (64, or a Router Advertisement's). Returns 0 or a negative errno.
 */
export function ip6Xmit(stack: Net, skb: SkBuff, saddr: Uint8Array, daddr: Uint8Array, proto: number, hopLimit = -1, tclass = 0): number {
  const v6 = stack.ipv6;
  const mib = stack.mibs.Ip6;
  if (!v6.enabled) {
    mib.OutNoRoutes++;
    return -ENETUNREACH;
  }
  const mcast = ipv6IsMulticast(daddr);
  let local = false;
  let nexthop: Uint8Array = daddr;
  if (!mcast) {
    if (v6.addrconf.isLocal(daddr)) {
      local = true;
    } else {
      const rt = v6.fib.lookup(daddr, 0, stack.time.clock.now());
      if (!rt) {
        mib.OutNoRoutes++;
        stack.mibs.Drop.counts[SKB_DROP_REASON.IP_OUTNOROUTES]++;
        return -ENETUNREACH;
      }
      if (rt.gateway) nexthop = rt.gateway;
    }
  }
  if (!local && !stack.dev.running) {
    // No link under the device (the TAP is gone): as ipLocalOut, -ENETDOWN.
    mib.OutDiscards++;
    stack.dev.xmitDropDown();
    return -ENETDOWN;
  }
  const plen = skb.len;
  if (plen > IPV6_MAXPLEN) {
    // No jumbograms: a super-segment's payload length must still fit 16 bits.
    mib.OutDiscards++;
    return -EMSGSIZE;
  }
  if (hopLimit < 0) hopLimit = mcast ? 1 : v6.cnf.hop_limit;
  const at = skb.push(IPV6_HLEN);
  const b = skb.buf;
  ip6Header(b, at, plen, proto, hopLimit, saddr, daddr, tclass, 0);
  const fl = flowLabel(b, at, proto, v6.flowSecret);
  b[at + 1] |= fl >>> 16;
  b[at + 2] = (fl >>> 8) & 255;
  b[at + 3] = fl & 255;
  skb.ipv6 = true;
  skb.protocol = proto;
  mib.OutRequests++;
  mib.OutOctets += skb.len;
  if (local) {
    // The loopback device: delivered after the current packet is done.
    stack.loopbackXmit(skb);
    return 0;
  }
  const mtu = mcast ? v6.cnf.mtu6 : ipv6PathMtu(stack, daddr);
  if (skb.len > mtu && !skb.gso) {
    ip6Fragment(stack, skb, nexthop, mtu);
    return 0;
  }
  stack.dev.xmitVerdict = NET_XMIT_SUCCESS;
  ip6FinishOutput2(stack, skb, nexthop);
  // NET_XMIT_DROP when the qdisc refused the frame, as ipLocalOut.
  return stack.dev.xmitVerdict;
}

/** ip6_finish_output2: multicast straight to its group MAC, unicast through the neighbour cache. */
export function ip6FinishOutput2(stack: Net, skb: SkBuff, nexthop: Uint8Array): void {
  const mib = stack.mibs.Ip6;
  mib.OutTransmits++;
  const b = skb.buf;
  const dOff = skb.data + 24;
  if (b[dOff] === 0xff) {
    mib.OutMcastPkts++;
    mib.OutMcastOctets += skb.len;
    const at = skb.push(ETH_HLEN);
    ethHeader(b, at, ipv6McastMac(b, dOff), stack.dev.mac, ETH_P_IPV6);
    stack.dev.xmit(b, at, skb.len, skb.gsoSize, skb.csumPartial, skb.tstamp);
    return;
  }
  stack.ipv6.ndisc.output(nexthop, 0, skb);
}

/**
 * ip6_fragment (the slow path): the IPv6 header is the unfragmentable
 * part (we send no extension headers); every fragment but the last
 * carries a multiple of 8 bytes, as much as the MTU allows.
 */
export function ip6Fragment(stack: Net, skb: SkBuff, nexthop: Uint8Array, mtu: number): void {
  const mib = stack.mibs.Ip6;
  const b = skb.buf;
  const o = skb.data;
  const payload = skb.len - IPV6_HLEN;
  const chunk = (mtu - IPV6_HLEN - FRAG_HLEN) & ~7;
  if (chunk <= 0) {
    mib.FragFails++;
    stack.mibs.Drop.counts[SKB_DROP_REASON.PKT_TOO_BIG]++;
    return;
  }
  const nexthdr = b[o + 6];
  const id = stack.ipv6.idents.next();
  let n = 0;
  for (let pos = 0; pos < payload; pos += chunk) {
    const size = Math.min(chunk, payload - pos);
    const last = pos + size >= payload;
    const f = allocSkb(IPV6_HLEN + FRAG_HLEN + size);
    const at = f.put(IPV6_HLEN + FRAG_HLEN + size);
    const fb = f.buf;
    b.copy(fb, at, o, o + IPV6_HLEN);
    const plen = FRAG_HLEN + size;
    fb[at + 4] = plen >>> 8;
    fb[at + 5] = plen & 255;
    fb[at + 6] = NEXTHDR_FRAGMENT;
    const fh = at + IPV6_HLEN;
    fb[fh] = nexthdr;
    fb[fh + 1] = 0;
    const fo = pos | (last ? 0 : IP6_MF);
    fb[fh + 2] = fo >>> 8;
    fb[fh + 3] = fo & 255;
    fb.writeUInt32BE(id, fh + 4);
    b.copy(fb, fh + FRAG_HLEN, o + IPV6_HLEN + pos, o + IPV6_HLEN + pos + size);
    f.ipv6 = true;
    f.protocol = skb.protocol;
    ip6FinishOutput2(stack, f, nexthop);
    n++;
  }
  mib.FragOKs++;
  mib.FragCreates += n;
}
