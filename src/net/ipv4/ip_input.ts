/**
 * IPv4 receive (net/ipv4/ip_input.c): ip_rcv validates the header in place,
 * the route decides local/broadcast/multicast/other, ip_local_deliver
 * reassembles and hands the payload to the protocol by number.
 * Every drop names a reason and moves the counter Linux moves.
 */
import { ipFastCsum } from '../../lib/checksum.js';
import { IP_HLEN, ipDaddr, ipIhl, ipIsFragment, ipProto, ipSaddr, ipTos, ipTotLen, ipTtl, ipVersion } from '../../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_PROT_UNREACH } from '../../wire/icmp.js';
import { PACKET_HOST, type NetDevice } from '../core/dev.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST } from './route.js';
import type { Stack } from '../stack.js';

/**
 * The current datagram, as the transport handler sees it. One instance per
 * stack, overwritten per packet: handlers read it synchronously.
 */
export class IpRxInfo {
  buf: Buffer = Buffer.alloc(0);
  /** Offset of the IP header in buf. */
  ipOff = 0;
  ihl = 0;
  totLen = 0;
  saddr = 0;
  daddr = 0;
  ttl = 0;
  tos = 0;
  protocol = 0;
  /** RTN_LOCAL / RTN_BROADCAST / RTN_MULTICAST. */
  rtType = 0;
  /** PACKET_HOST etc.: the link-layer destination kind. */
  pktType = 0;
}

/** net_protocol: a transport's receive and ICMP-error handlers. */
export interface NetProtocol {
  /** Payload at `off`, `len` bytes; `ip` describes the datagram. */
  handler(buf: Buffer, off: number, len: number, ip: IpRxInfo): void;
  /** An ICMP error quoting one of our packets: its IP header at `innerOff`, `innerLen` bytes present. */
  errHandler?(type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number): void;
}

/** ip_rcv + ip_rcv_core + ip_rcv_finish. */
export function ipRcv(stack: Stack, _dev: NetDevice, buf: Buffer, off: number, len: number, pktType: number): void {
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
  ipLocalDeliver(stack, buf, off, ihl, totLen, rtType, pktType);
}

/** ip_local_deliver: reassemble, then ip_local_deliver_finish. */
export function ipLocalDeliver(stack: Stack, buf: Buffer, off: number, ihl: number, totLen: number, rtType: number, pktType: number): void {
  if (ipIsFragment(buf, off)) {
    const whole = stack.frags.defrag(buf, off, ihl, totLen);
    if (!whole) return;
    buf = whole;
    off = 0;
    totLen = whole.length;
  }
  const ip = stack.ipRx;
  ip.buf = buf;
  ip.ipOff = off;
  ip.ihl = ihl;
  ip.totLen = totLen;
  ip.saddr = ipSaddr(buf, off);
  ip.daddr = ipDaddr(buf, off);
  ip.ttl = ipTtl(buf, off);
  ip.tos = ipTos(buf, off);
  ip.protocol = ipProto(buf, off);
  ip.rtType = rtType;
  ip.pktType = pktType;

  const prot = stack.inetProtos[ip.protocol];
  if (prot) {
    stack.mibs.Ip.InDelivers++;
    prot.handler(buf, off + ihl, totLen - ihl, ip);
    return;
  }
  stack.mibs.Ip.InUnknownProtos++;
  stack.mibs.Drop.counts[SKB_DROP_REASON.IP_NOPROTO]++;
  stack.icmp.send(buf, off, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0, pktType === PACKET_HOST);
}
