/**
 * TCP receive entry (net/ipv4/tcp_ipv4.c): validate the segment, find its
 * socket through the tables (established hash first: full sockets, request
 * socks, TIME_WAIT socks; then the listening hash), and hand it on. A
 * segment with no socket gets the reset RFC 9293 3.10.7.1 prescribes
 * (tcp_v4_send_reset), as do the ones tcp_check_req and TIME_WAIT refuse.
 */
import { csumFold, csumPartial, csumTcpUdpMagic } from '../../lib/checksum.js';
import { seqAdd } from '../../lib/seq.js';
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
  tcpWindow,
} from '../../wire/tcp.js';
import { allocSkb } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { ipLocalOut } from './ip_output.js';
import { RTN_LOCAL } from './route.js';
import type { IpRxInfo, NetProtocol } from './ip_input.js';
import type { Stack } from '../stack.js';
import type { TcpHashedSock, TcpProto, TcpSegment } from './tcp_proto.js';
import { tcpV6SendReset } from '../ipv6/tcp_ipv6.js';
import { TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT, TcpRequestSock, TcpSock } from './tcp_sock.js';
import { tcpRcvStateProcess, tcpRcvSynsentStateProcess } from './tcp_input.js';
import { tcpV4Err } from './tcp_err.js';
import {
  TCP_TW_ACK,
  TCP_TW_RST,
  TCP_TW_SYN,
  TcpTimewaitSock,
  cookieV4Check,
  reqskDrop,
  tcpCheckReq,
  tcpChildProcess,
  tcpConnRequest,
  tcpTimewaitAck,
  tcpTimewaitStateProcess,
  twKill,
} from './tcp_minisocks.js';

const INET_ECN_MASK = 3;

export function tcpProtocol(stack: Stack): NetProtocol {
  return {
    handler(buf: Buffer, off: number, len: number, ip: IpRxInfo): void {
      const tcp = stack.tcp;
      const mib = stack.mibs.Tcp;
      const drop = stack.mibs.Drop.counts;
      // Only unicast to us: tcp_v4_rcv drops anything else (PACKET_HOST check).
      if (ip.rtType !== RTN_LOCAL) {
        drop[SKB_DROP_REASON.OTHERHOST]++;
        return;
      }
      const doff = len >= TCP_HLEN ? tcpDoff(buf, off) : 0;
      if (len < TCP_HLEN || doff < TCP_HLEN || doff > len) {
        mib.InErrs++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        return;
      }
      // A checksum the kernel vouched for (or has not computed: the frame never left the host) is not checked again.
      if (!stack.dev.rxCsumValid && csumFold(csumPartial(buf, off, len, csumTcpUdpMagic(ip.saddr, ip.daddr, IPPROTO_TCP, len))) !== 0) {
        mib.InCsumErrors++;
        mib.InErrs++;
        drop[SKB_DROP_REASON.TCP_CSUM]++;
        return;
      }
      mib.InSegs++;
      const seg = tcp.seg;
      seg.buf = buf;
      seg.off = off;
      seg.len = len;
      seg.doff = doff;
      seg.flags = tcpFlags(buf, off);
      seg.seq = tcpSeq(buf, off);
      seg.ack = tcpAckSeq(buf, off);
      seg.window = tcpWindow(buf, off);
      seg.saddr = ip.saddr;
      seg.daddr = ip.daddr;
      seg.sport = tcpSource(buf, off);
      seg.dport = tcpDest(buf, off);
      seg.tos = ip.tos;
      seg.ipv6 = false;
      seg.dataOff = off + doff;
      seg.dataLen = len - doff;
      seg.endSeq = seqAdd(seg.seq, seg.dataLen + (seg.flags & TCPHDR_SYN ? 1 : 0) + (seg.flags & TCPHDR_FIN ? 1 : 0));
      tcpV4Rcv(tcp, seg);
    },
    errHandler(type: number, code: number, info: number, buf: Buffer, innerOff: number, _innerLen: number): void {
      tcpV4Err(stack.tcp, type, code, buf, innerOff, info);
    },
  };
}

/** __inet_lookup_established / __inet6_lookup_established for the segment's family. */
function lookupEstablished(tcp: TcpProto, seg: TcpSegment): TcpHashedSock | null {
  if (seg.ipv6) return tcp.hashinfo.lookupEstablished6(seg.saddr6, 0, seg.sport, seg.daddr6, 0, seg.dport);
  // Addresses as int32 (| 0): V8 boxes uint32 values >= 2^31 on calls it does not inline.
  return tcp.hashinfo.lookupEstablished(seg.saddr | 0, seg.sport, seg.daddr | 0, seg.dport);
}

/** __inet_lookup_listener / inet6_lookup_listener for the segment's family. */
function lookupListener(tcp: TcpProto, seg: TcpSegment): TcpSock | null {
  if (seg.ipv6) return tcp.hashinfo.lookupListener6(seg.saddr6, 0, seg.sport, seg.daddr6, 0, seg.dport) as TcpSock | null;
  return tcp.hashinfo.lookupListener(seg.saddr | 0, seg.sport, seg.daddr | 0, seg.dport) as TcpSock | null;
}

/** tcp_v4_send_reset or tcp_v6_send_reset, by the segment's family. */
export function tcpSendReset(tcp: TcpProto, seg: TcpSegment): void {
  if (seg.ipv6) tcpV6SendReset(tcp, seg);
  else tcpV4SendReset(tcp, seg);
}

/**
 * tcp_v4_rcv (and tcp_v6_rcv, which shares it) after validation: look up
 * and dispatch. IPv6 segments (seg.ipv6) are looked up in the IPv6 tables;
 * everything after the lookup is the same engine.
 */
export function tcpV4Rcv(tcp: TcpProto, seg: TcpSegment): void {
  for (let pass = 0; pass < 2; pass++) {
    const sk = lookupEstablished(tcp, seg);
    if (sk) {
      if (sk.state === TCP_NEW_SYN_RECV) {
        const req = sk as TcpRequestSock;
        const listener = req.listener;
        if (listener.state !== TCP_LISTEN) {
          // The listener went away: forget the request and look again.
          reqskDrop(tcp, req);
          continue;
        }
        const r = tcpCheckReq(tcp, req, seg);
        if (r === 'reset') tcpSendReset(tcp, seg);
        else if (r) tcpChildProcess(tcp, listener, r, seg);
        return;
      }
      if (sk.state === TCP_TIME_WAIT) {
        const tw = sk as unknown as TcpTimewaitSock;
        switch (tcpTimewaitStateProcess(tcp, tw, seg)) {
          case TCP_TW_SYN: {
            const listener = lookupListener(tcp, seg);
            if (listener) {
              twKill(tcp, tw);
              tcp.mibs.TcpExt.TWRecycled++;
              tcpConnRequest(tcp, listener, seg, tcp.twIsn);
              return;
            }
            // No listener any more: answer as TIME_WAIT would.
            tcpTimewaitAck(tcp, tw);
            return;
          }
          case TCP_TW_ACK:
            tcpTimewaitAck(tcp, tw);
            return;
          case TCP_TW_RST:
            tcpSendReset(tcp, seg);
            return;
          default:
            return;
        }
      }
      const full = sk as TcpSock;
      if (full.state === TCP_SYN_SENT) tcpRcvSynsentStateProcess(tcp, full, seg);
      else tcpRcvStateProcess(tcp, full, seg);
      return;
    }
    const listener = lookupListener(tcp, seg);
    if (listener) {
      // tcp_rcv_state_process, LISTEN: an ACK is reset, a RST dropped, a SYN is a new connection.
      const f = seg.flags;
      if (f & TCPHDR_ACK) {
        // The final ACK of a cookie handshake, or a stray ACK to reset.
        const child = f & (TCPHDR_SYN | TCPHDR_RST) ? null : cookieV4Check(tcp, listener, seg);
        if (child) tcpChildProcess(tcp, listener, child, seg);
        else tcpSendReset(tcp, seg);
        return;
      }
      if (f & TCPHDR_RST) return;
      if (f & TCPHDR_SYN && !(f & TCPHDR_FIN)) tcpConnRequest(tcp, listener, seg);
      return;
    }
    tcp.mibs.Drop.counts[SKB_DROP_REASON.NO_SOCKET]++;
    tcpSendReset(tcp, seg);
    return;
  }
}

/** tcp_v4_send_reset: answer a segment that has no connection. Never answers a reset. */
export function tcpV4SendReset(tcp: TcpProto, seg: TcpSegment): void {
  const flags = seg.flags;
  if (flags & TCPHDR_RST) return;
  let seq = 0;
  let ack = 0;
  let rflags = TCPHDR_RST;
  if (flags & TCPHDR_ACK) {
    seq = seg.ack;
  } else {
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN each count one.
    ack = seg.endSeq;
    rflags |= TCPHDR_ACK;
  }
  const skb = allocSkb(TCP_HLEN);
  const at = skb.put(TCP_HLEN);
  tcpHeader(skb.buf, at, seg.dport, seg.sport, seq, ack, TCP_HLEN, rflags, 0);
  const c = csumFold(csumPartial(skb.buf, at, TCP_HLEN, csumTcpUdpMagic(seg.daddr, seg.saddr, IPPROTO_TCP, TCP_HLEN)));
  skb.buf[at + 16] = c >>> 8;
  skb.buf[at + 17] = c & 255;
  tcp.mibs.Tcp.OutSegs++;
  tcp.mibs.Tcp.OutRsts++;
  // ip_send_unicast_reply: DF set, IP ID 0, the incoming TOS without its ECN bits.
  ipLocalOut(tcp.stack, skb, seg.daddr, seg.saddr, IPPROTO_TCP, 64, seg.tos & ~INET_ECN_MASK, true, 0);
}
