/**
 * IPv4 output (net/ipv4/ip_output.c): route, header, fragmentation, and the
 * neighbour step. Packets arrive as an SkBuff holding the transport payload
 * with headroom; each step pushes its header in front.
 */
import { ipFastCsum } from '../../lib/checksum.js';
import { INADDR_BROADCAST, ipv4IsMulticast, ipv4McastMac } from '../../lib/addr.js';
import { ETH_BROADCAST, ETH_HLEN, ETH_P_IP, ethHeader } from '../../wire/ethernet.js';
import { IP_DF, IP_HLEN, IP_MF, IP_OFFSET, ipFragOff, ipHeader, ipIhl } from '../../wire/ipv4.js';
import { allocSkb, type SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { NET_XMIT_SUCCESS } from '../core/dev.js';
import { RTN_BROADCAST } from './route.js';
import type { Net } from '../core/net.js';
import { EMSGSIZE, ENETDOWN, ENETUNREACH } from '../../uapi.js';


/** Pass as `id` to let ipLocalOut choose the IP ID (ip_select_ident). */
export const IP_ID_AUTO = -1;

/**
 * ip_build_and_send / ip_queue_xmit: put the IP header on `skb` (which
 * holds the transport payload) and send it. `id`: IP_ID_AUTO, or the
 * socket's own counter. Returns 0 or a negative errno.
 */
export function ipLocalOut(
  stack: Net,
  skb: SkBuff,
  saddr: number,
  daddr: number,
  protocol: number,
  ttl: number,
  tos: number,
  df: boolean,
  id: number = IP_ID_AUTO,
): number {
  const fib = stack.fib;
  const mib = stack.mibs.Ip;
  let nexthop = daddr;
  if (fib.isLocal(daddr)) {
    if (!saddr) saddr = daddr;
  } else if (daddr !== INADDR_BROADCAST && !ipv4IsMulticast(daddr) && fib.addrType(daddr) !== RTN_BROADCAST) {
    const rt = fib.lookup(daddr);
    if (!rt) {
      mib.OutNoRoutes++;
      stack.mibs.Drop.counts[SKB_DROP_REASON.IP_OUTNOROUTES]++;
      return -ENETUNREACH;
    }
    if (rt.gateway) nexthop = rt.gateway;
    if (!saddr) saddr = rt.prefsrc;
  } else if (!saddr) {
    saddr = fib.selectAddr(daddr);
  }

  const totLen = skb.len + IP_HLEN;
  if (id === IP_ID_AUTO) id = df ? 0 : stack.ipIdents.next(saddr, daddr, protocol);
  const at = skb.push(IP_HLEN);
  ipHeader(skb.buf, at, totLen, id, df ? IP_DF : 0, ttl, protocol, saddr, daddr, tos);
  const c = ipFastCsum(skb.buf, at, IP_HLEN);
  skb.buf[at + 10] = c >>> 8;
  skb.buf[at + 11] = c & 255;
  skb.daddr = daddr;
  skb.protocol = protocol;

  if (fib.isLocal(daddr)) {
    mib.OutRequests++;
    stack.mibs.IpExt.OutOctets += totLen;
    // The loopback device: delivered after the current packet is done.
    stack.loopbackXmit(skb);
    return 0;
  }
  if (!stack.dev.running) {
    // The route's device has no link (the TAP is gone): what ip_route_output and
    // dev_queue_xmit answer for a device that is down. TCP's timers try again.
    mib.OutDiscards++;
    stack.dev.xmitDropDown();
    return -ENETDOWN;
  }
  mib.OutRequests++;
  stack.mibs.IpExt.OutOctets += totLen;
  // A GSO packet is cut to the MTU by the device (ip_finish_output_gso).
  if (totLen > stack.dev.mtu && !skb.gso) {
    if (df) {
      mib.FragFails++;
      stack.mibs.Drop.counts[SKB_DROP_REASON.PKT_TOO_BIG]++;
      return -EMSGSIZE;
    }
    ipFragment(stack, skb, nexthop);
    return 0;
  }
  stack.dev.xmitVerdict = NET_XMIT_SUCCESS;
  ipFinishOutput2(stack, skb, nexthop);
  // dev_queue_xmit's verdict comes back up: NET_XMIT_DROP when the qdisc refused the frame.
  return stack.dev.xmitVerdict;
}

/** ip_finish_output2: to the link, through the neighbour table unless broadcast/multicast. */
export function ipFinishOutput2(stack: Net, skb: SkBuff, nexthop: number): void {
  stack.mibs.Ip.OutTransmits++;
  const daddr = skb.daddr;
  const ext = stack.mibs.IpExt;
  if (daddr === INADDR_BROADCAST || stack.fib.addrType(daddr) === RTN_BROADCAST) {
    ext.OutBcastPkts++;
    // ip_mc_output: a broadcast is looped back to this host's own sockets too.
    const copy = allocSkb(skb.len);
    skb.buf.copy(copy.buf, copy.put(skb.len), skb.data, skb.data + skb.len);
    copy.daddr = daddr;
    copy.protocol = skb.protocol;
    stack.loopbackXmit(copy);
    const at = skb.push(ETH_HLEN);
    ethHeader(skb.buf, at, ETH_BROADCAST, stack.dev.mac, ETH_P_IP);
    stack.dev.xmit(skb.buf, at, skb.len, skb.gsoSize, skb.csumPartial, skb.tstamp);
    return;
  }
  if (ipv4IsMulticast(daddr)) {
    ext.OutMcastPkts++;
    const at = skb.push(ETH_HLEN);
    ethHeader(skb.buf, at, ipv4McastMac(daddr), stack.dev.mac, ETH_P_IP);
    stack.dev.xmit(skb.buf, at, skb.len, skb.gsoSize, skb.csumPartial, skb.tstamp);
    return;
  }
  stack.arp.output(nexthop, skb);
}

/**
 * ip_fragment (the slow path): cut the datagram in `skb` into MTU-sized
 * fragments, payloads in multiples of 8 bytes, in order.
 */
export function ipFragment(stack: Net, skb: SkBuff, nexthop: number): void {
  const mib = stack.mibs.Ip;
  const b = skb.buf;
  const o = skb.data;
  const hlen = ipIhl(b, o);
  const payload = skb.len - hlen;
  const chunk = (stack.dev.mtu - hlen) & ~7;
  const origOff = ipFragOff(b, o);
  const baseOffset = (origOff & IP_OFFSET) << 3;
  const origMf = origOff & IP_MF;
  let n = 0;
  for (let pos = 0; pos < payload; pos += chunk) {
    const size = Math.min(chunk, payload - pos);
    const last = pos + size >= payload;
    const f = allocSkb(hlen + size);
    const at = f.put(hlen + size);
    b.copy(f.buf, at, o, o + hlen);
    b.copy(f.buf, at + hlen, o + hlen + pos, o + hlen + pos + size);
    const fo = ((baseOffset + pos) >>> 3) | (last ? origMf : IP_MF);
    const tot = hlen + size;
    f.buf[at + 2] = tot >>> 8;
    f.buf[at + 3] = tot & 255;
    f.buf[at + 6] = fo >>> 8;
    f.buf[at + 7] = fo & 255;
    f.buf[at + 10] = 0;
    f.buf[at + 11] = 0;
    const c = ipFastCsum(f.buf, at, hlen);
    f.buf[at + 10] = c >>> 8;
    f.buf[at + 11] = c & 255;
    f.daddr = skb.daddr;
    f.protocol = skb.protocol;
    ipFinishOutput2(stack, f, nexthop);
    n++;
  }
  mib.FragOKs++;
  mib.FragCreates += n;
}
