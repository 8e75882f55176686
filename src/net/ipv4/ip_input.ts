/**
 * IPv4 receive (net/ipv4/ip_input.c): ip_rcv validates the header in place,
 * the route decides local/broadcast/multicast/other, ip_local_deliver
 * reassembles and hands the payload to the protocol by number; options
 * are checked on the way (ip_rcv_options, ip_options.ts).
 * Every drop names a reason and moves the counter Linux moves.
 */
import { ipFastCsum } from '../../lib/checksum.js';
import { IP_HLEN, ipDaddr, ipIhl, ipIsFragment, ipProto, ipSaddr, ipTotLen, ipVersion } from '../../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_PARAMETERPROB, ICMP_PROT_UNREACH } from '../../wire/icmp.js';
import { PACKET_HOST, type PacketHandler } from '../core/dev.js';
import type { SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST } from './route.js';
import { IpOptions, ipOptionsCompile } from './ip_options.js';
import type { Net } from '../core/net.js';

/** ip_packet_type: IPv4's handler on the device (ETH_P_IP), for inet_init to register. */
export function ipPacketType(stack: Net): PacketHandler {
  return (skb) => ipRcv(stack, skb);
}

/** ip_rcv + ip_rcv_core + ip_rcv_finish. */
export function ipRcv(stack: Net, skb: SkBuff): void {
  const buf = skb.buf;
  const off = skb.data;
  const len = skb.len;
  const mib = stack.mibs.Ip;
  const ext = stack.mibs.IpExt;
  const drop = stack.mibs.Drop.counts;
  mib.InReceives++;
  ext.InOctets += len;

  if (len < IP_HLEN) {
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
    return;
  }
  const ihl = ipIhl(buf, off);
  if (ipVersion(buf, off) !== 4 || ihl < IP_HLEN || ihl > len) {
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.IP_INHDR]++;
    return;
  }
  if (ipFastCsum(buf, off, ihl) !== 0) {
    ext.InCsumErrors++;
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.IP_CSUM]++;
    return;
  }
  const totLen = ipTotLen(buf, off);
  if (totLen > len) {
    ext.InTruncatedPkts++;
    drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
    return;
  }
  if (totLen < ihl) {
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.IP_INHDR]++;
    return;
  }
  // Bytes past totLen are link padding: ignored from here on (pskb_trim_rcsum).
  // TTL is not checked: a host delivers whatever TTL arrives (RFC 1122
  // 3.2.1.7); TTL matters only when forwarding, which we do not do.

  const saddr = ipSaddr(buf, off);
  const daddr = ipDaddr(buf, off);
  const fib = stack.fib;
  if (fib.isMartianSource(saddr)) {
    drop[SKB_DROP_REASON.IP_INVALID_SOURCE]++;
    return;
  }
  // fib_validate_source with accept_local 0: one of our own addresses does not arrive from the link.
  if (fib.isLocal(saddr)) {
    drop[SKB_DROP_REASON.IP_LOCAL_SOURCE]++;
    return;
  }
  const rtType = fib.addrType(daddr);
  if (rtType === RTN_BROADCAST) {
    ext.InBcastPkts++;
  } else if (rtType === RTN_MULTICAST) {
    if (!fib.mcGroups.has(daddr)) {
      drop[SKB_DROP_REASON.OTHERHOST]++;
      return;
    }
    ext.InMcastPkts++;
  } else if (rtType !== RTN_LOCAL) {
    // Not ours and forwarding is off: ip_error counts InAddrErrors, silently.
    mib.InAddrErrors++;
    drop[SKB_DROP_REASON.IP_INADDRERRORS]++;
    return;
  }
  skb.networkHeader = off;
  skb.len = totLen;
  skb.rtType = rtType;
  if (ihl > IP_HLEN && ipRcvOptions(stack, skb, ihl)) return;
  ipLocalDeliver(stack, skb);
}

/**
 * ip_rcv_options: malformed options get a Parameter Problem pointing at the
 * bad byte and are dropped (InHdrErrors, IP_INHDR); a source route is
 * dropped, as accept_source_route (0 on a host) has it. True: dropped.
 */
function ipRcvOptions(stack: Net, skb: SkBuff, ihl: number): boolean {
  const buf = skb.buf;
  const off = skb.networkHeader;
  const opt = new IpOptions();
  const bad = ipOptionsCompile(opt, buf, off, ihl);
  if (bad) {
    stack.mibs.Ip.InHdrErrors++;
    stack.mibs.Drop.counts[SKB_DROP_REASON.IP_INHDR]++;
    stack.icmp.send(buf, off, ICMP_PARAMETERPROB, 0, (bad << 24) >>> 0, skb.pktType === PACKET_HOST);
    return true;
  }
  if (opt.srr) {
    stack.mibs.Drop.counts[SKB_DROP_REASON.NOT_SPECIFIED]++;
    return true;
  }
  return false;
}

/**
 * ip_local_deliver: reassemble, then ip_local_deliver_finish. skb.data is
 * at the IP header (skb.networkHeader), skb.len the datagram's length.
 */
export function ipLocalDeliver(stack: Net, skb: SkBuff): void {
  let buf = skb.buf;
  let off = skb.networkHeader;
  if (ipIsFragment(buf, off)) {
    const whole = stack.frags.defrag(buf, off, ipIhl(buf, off), skb.len);
    if (!whole) return;
    // The datagram is a new buffer now, with no link-layer header before it.
    skb.buf = buf = whole;
    skb.networkHeader = skb.data = off = 0;
    skb.len = whole.length;
    skb.macHeader = -1;
  }
  const protocol = ipProto(buf, off);
  skb.pull(ipIhl(buf, off));
  skb.transportHeader = skb.data;
  const prot = stack.inetProtos[protocol];
  if (prot) {
    stack.mibs.Ip.InDelivers++;
    prot.handler(skb);
    return;
  }
  stack.mibs.Ip.InUnknownProtos++;
  stack.mibs.Drop.counts[SKB_DROP_REASON.IP_NOPROTO]++;
  stack.icmp.send(buf, off, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0, skb.pktType === PACKET_HOST);
}
