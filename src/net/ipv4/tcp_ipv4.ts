/**
 * TCP receive entry (net/ipv4/tcp_ipv4.c), before the TCP engine exists:
 * every segment is for a port with no socket, so after validation it gets
 * the reset RFC 9293 3.10.7.1 prescribes (tcp_v4_send_reset).
 */
import { csumFold, csumPartial, csumTcpUdpMagic } from '../../lib/checksum.js';
import { IPPROTO_TCP } from '../../wire/ipv4.js';
import {
  TCP_HLEN,
  TCPHDR_ACK,
  TCPHDR_FIN,
  TCPHDR_RST,
  TCPHDR_SYN,
  tcpAckSeq,
  tcpDest,
  tcpDoff,
  tcpFlags,
  tcpHeader,
  tcpSeq,
  tcpSource,
} from '../../wire/tcp.js';
import { allocSkb } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { ipLocalOut } from './ip_output.js';
import { RTN_LOCAL } from './route.js';
import type { IpRxInfo, NetProtocol } from './ip_input.js';
import type { Stack } from '../stack.js';

const INET_ECN_MASK = 3;

export function tcpProtocol(stack: Stack): NetProtocol {
  return {
    handler(buf: Buffer, off: number, len: number, ip: IpRxInfo): void {
      const mib = stack.mibs.Tcp;
      const drop = stack.mibs.Drop.counts;
      // Only unicast to us: tcp_v4_rcv drops anything else (PACKET_HOST check).
      if (ip.rtType !== RTN_LOCAL) {
        drop[SKB_DROP_REASON.OTHERHOST]++;
        return;
      }
      mib.InSegs++;
      const doff = len >= TCP_HLEN ? tcpDoff(buf, off) : 0;
      if (len < TCP_HLEN || doff < TCP_HLEN || doff > len) {
        mib.InErrs++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        return;
      }
      if (csumFold(csumPartial(buf, off, len, csumTcpUdpMagic(ip.saddr, ip.daddr, IPPROTO_TCP, len))) !== 0) {
        mib.InCsumErrors++;
        mib.InErrs++;
        drop[SKB_DROP_REASON.TCP_CSUM]++;
        return;
      }
      drop[SKB_DROP_REASON.NO_SOCKET]++;
      tcpV4SendReset(stack, buf, off, len, ip);
    },
  };
}

/** tcp_v4_send_reset: answer a segment that has no socket. Never answers a reset. */
export function tcpV4SendReset(stack: Stack, buf: Buffer, off: number, len: number, ip: IpRxInfo): void {
  const flags = tcpFlags(buf, off);
  if (flags & TCPHDR_RST) return;
  let seq = 0;
  let ack = 0;
  let rflags = TCPHDR_RST;
  if (flags & TCPHDR_ACK) {
    seq = tcpAckSeq(buf, off);
  } else {
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN each count one.
    const dataLen = len - tcpDoff(buf, off);
    ack = (tcpSeq(buf, off) + dataLen + (flags & TCPHDR_SYN ? 1 : 0) + (flags & TCPHDR_FIN ? 1 : 0)) >>> 0;
    rflags |= TCPHDR_ACK;
  }
  const skb = allocSkb(TCP_HLEN);
  const at = skb.put(TCP_HLEN);
  tcpHeader(skb.buf, at, tcpDest(buf, off), tcpSource(buf, off), seq, ack, TCP_HLEN, rflags, 0);
  const c = csumFold(csumPartial(skb.buf, at, TCP_HLEN, csumTcpUdpMagic(ip.daddr, ip.saddr, IPPROTO_TCP, TCP_HLEN)));
  skb.buf[at + 16] = c >>> 8;
  skb.buf[at + 17] = c & 255;
  stack.mibs.Tcp.OutSegs++;
  stack.mibs.Tcp.OutRsts++;
  // ip_send_unicast_reply: DF set, the incoming TOS without its ECN bits.
  ipLocalOut(stack, skb, ip.daddr, ip.saddr, IPPROTO_TCP, 64, ip.tos & ~INET_ECN_MASK, true);
}
