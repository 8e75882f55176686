/**
 * TCP receive entry (net/ipv4/tcp_ipv4.c): validate the segment, find its
 * socket through the tables (established hash first: full sockets, request
 * socks, TIME_WAIT socks; then the listening hash), and hand it on. A
 * segment with no socket gets the reset RFC 9293 3.10.7.1 prescribes
 * (tcp_v4_send_reset), as do the ones tcp_check_req and TIME_WAIT refuse.
 */
import { sockRecvError } from '../core/errqueue.js';
import { csumFold, csumPartial, csumTcpUdpMagic } from '../../lib/checksum.js';
import { INET_ECN_MASK, ipDaddr, ipSaddr, ipTos } from '../../wire/ipv4.js';
import { TCP_HLEN, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, tcpDoff, tcpHeader } from '../../wire/tcp.js';
import { allocSkb, type SkBuff } from '../core/skbuff.js';
import { tcpFillCb, tcpSkbCb, type TcpSkbCb } from './tcp_skb_cb.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { ipLocalOut } from './ip_output.js';
import { RTN_LOCAL } from './route.js';
import type { Net } from '../core/net.js';
import type { TcpHashedSock, TcpProto } from './tcp_proto.js';
import { type TcpRequestSock, type TcpSock, TcpTimewaitSock } from './tcp_sock.js';
import { tcpRcvEstablished, tcpRcvStateProcess, tcpRcvSynsentStateProcess, tcpReset } from './tcp_input.js';
import { TFO_REQ_OK, TFO_REQ_RESET, TFO_REQ_RST, tcpFastopenCheckReq } from './tcp_fastopen.js';
import { tcpV4Err } from './tcp_err.js';
import {
  TCP_TW_ACK,
  TCP_TW_RST,
  TCP_TW_SYN,
  cookieV4Check,
  tcpCheckReq,
  tcpChildProcess,
  tcpConnRequest,
  tcpTimewaitAck,
  tcpTimewaitStateProcess,
} from './tcp_minisocks.js';
import { type SockProt, TCP_ESTABLISHED, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT } from '../core/sock.js';
import { inetTwskKill } from './inet_timewait_sock.js';
import { inetCskReqskQueueDrop } from './inet_connection_sock.js';
import {
  tcpAccept,
  tcpBind,
  tcpClose,
  tcpConnect,
  tcpInitSock,
  tcpIoctl,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetKeepalive,
  tcpShutdown,
  tcpSockGetsockopt,
  tcpSockSetsockopt,
} from './tcp.js';
import { tcpTimerFns } from './tcp_timer.js';
import { TCPOLEN_MD5SIG_ALIGNED, tcpInboundHash, tcpMd5ResetKey, tcpMd5SignReply } from './tcp_md5.js';
import { inet6LookupEstablished, inet6LookupListener } from '../ipv6/inet6_hashtables.js';
import { AF_INET, EAFNOSUPPORT, IPPROTO_TCP, MSG_ERRQUEUE, MSG_PEEK } from '../../uapi.js';
import type { NetProtocol } from '../core/protocol.js';


/**
 * inet_create / inet6_create for SOCK_STREAM: a new, unattached TCP socket
 * of `family` with the stack's defaults, its timers the stack's handlers
 * (tcp_v4_init_sock / tcp_v6_init_sock), its calls `prot` (tcp_prot unless
 * the caller gives tcpv6_prot).
 */
export function tcpNewSock(tcp: TcpProto, family = AF_INET, prot: SockProt<TcpSock> = tcpProt(tcp)): TcpSock {
  return tcpInitSock(tcp, family, tcpTimerFns(tcp), prot);
}

/** tcp_prot: TCP's calls for AF_INET sockets (tcpv6_prot, ipv6/tcp_ipv6.ts, takes most of them). */
export function tcpProt(tcp: TcpProto): SockProt<TcpSock> {
  return (tcp.prot ??= {
    name: 'TCP',
    close: (sk) => tcpClose(tcp, sk),
    bind: (sk, a) => tcpBind(tcp, sk, a.addr, a.port),
    // tcp_v4_connect: sockaddr_in only.
    connect: (sk, a) => (a.family === AF_INET ? tcpConnect(tcp, sk, a.addr, a.port) : -EAFNOSUPPORT),
    accept: (sk) => tcpAccept(tcp, sk),
    ioctl: tcpIoctl,
    shutdown: (sk, how) => tcpShutdown(tcp, sk, how),
    setsockopt: (sk, level, optname, optval) => tcpSockSetsockopt(tcp, sk, level, optname, optval),
    getsockopt: (sk, level, optname) => tcpSockGetsockopt(tcp, sk, level, optname),
    sendmsg: (sk, data, flags, to) => tcpSendmsg(tcp, sk, data, flags, to),
    // tcp_recvmsg: MSG_ERRQUEUE reads the error queue (inet_recv_error).
    recvmsg: (sk, into, flags, msg) => (flags & MSG_ERRQUEUE ? sockRecvError(sk, sk.family, into, msg) : tcpRecvmsg(tcp, sk, into, flags & MSG_PEEK)),
    keepalive: (sk, on) => tcpSetKeepalive(tcp, sk, on),
    memory: tcp.mem,
  });
}

export function tcpProtocol(stack: Net): NetProtocol {
  return {
    handler(skb: SkBuff): void {
      tcpV4Rcv(stack.tcp, skb);
    },
    errHandler(type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number, outer: number): void {
      tcpV4Err(stack.tcp, type, code, buf, innerOff, info, innerLen, outer);
    },
  };
}

/**
 * The checks tcp_v4_rcv and tcp_v6_rcv make before the checksum: only
 * unicast to us (the PACKET_HOST check), a header that fits. Returns the
 * header length, or 0 for a segment dropped (and counted).
 */
export function tcpRcvHeader(tcp: TcpProto, skb: SkBuff): number {
  if (skb.rtType !== RTN_LOCAL) {
    tcp.mibs.Drop.counts[SKB_DROP_REASON.OTHERHOST]++;
    return 0;
  }
  const len = skb.len;
  const doff = len >= TCP_HLEN ? tcpDoff(skb.buf, skb.data) : 0;
  if (len < TCP_HLEN || doff < TCP_HLEN || doff > len) {
    tcp.mibs.Tcp.InErrs++;
    tcp.mibs.Drop.counts[SKB_DROP_REASON.PKT_TOO_SMALL]++;
    return 0;
  }
  return doff;
}

/**
 * tcp_v4_rcv: only unicast to us; a header that fits; the checksum over the
 * IPv4 pseudo-header, unless the device vouched for it (skb.csumValid).
 * Then TCP_SKB_CB (tcp_v4_fill_cb) and the lookup (tcpLookupRcv).
 */
export function tcpV4Rcv(tcp: TcpProto, skb: SkBuff): void {
  const doff = tcpRcvHeader(tcp, skb);
  if (!doff) return;
  const mib = tcp.mibs.Tcp;
  const drop = tcp.mibs.Drop.counts;
  const buf = skb.buf;
  const th = skb.data;
  const len = skb.len;
  const nh = skb.networkHeader;
  const saddr = ipSaddr(buf, nh);
  const daddr = ipDaddr(buf, nh);
  // A checksum the kernel vouched for (or has not computed: the frame never left the host) is not checked again.
  if (!skb.csumValid && csumFold(csumPartial(buf, th, len, csumTcpUdpMagic(saddr, daddr, IPPROTO_TCP, len))) !== 0) {
    mib.InCsumErrors++;
    mib.InErrs++;
    drop[SKB_DROP_REASON.TCP_CSUM]++;
    return;
  }
  mib.InSegs++;
  const tcb = tcpFillCb(skb, doff);
  tcb.ipv6 = false;
  tcb.saddr = saddr;
  tcb.daddr = daddr;
  tcb.tos = ipTos(buf, nh);
  tcpLookupRcv(tcp, skb, tcpV4SendReset);
}

/** __inet_lookup_established / __inet6_lookup_established for the segment's family. */
function lookupEstablished(tcp: TcpProto, tcb: TcpSkbCb): TcpHashedSock | null {
  if (tcb.ipv6) return inet6LookupEstablished(tcp.hashinfo, tcb.saddr6, 0, tcb.sport, tcb.daddr6, 0, tcb.dport);
  // Addresses as int32 (| 0): V8 boxes uint32 values >= 2^31 on calls it does not inline.
  return tcp.hashinfo.lookupEstablished(tcb.saddr | 0, tcb.sport, tcb.daddr | 0, tcb.dport);
}

/** __inet_lookup_listener / inet6_lookup_listener for the segment's family. */
function lookupListener(tcp: TcpProto, tcb: TcpSkbCb): TcpSock | null {
  if (tcb.ipv6) return inet6LookupListener(tcp.hashinfo, tcb.saddr6, 0, tcb.sport, tcb.daddr6, 0, tcb.dport) as TcpSock | null;
  return tcp.hashinfo.lookupListener(tcb.saddr | 0, tcb.sport, tcb.daddr | 0, tcb.dport) as TcpSock | null;
}

/**
 * tcp_v4_rcv and tcp_v6_rcv from the socket lookup on (the half they
 * share): the established hash first (full sockets, request socks,
 * TIME_WAIT socks), then the listening hash; a segment nobody takes is
 * answered with a reset, through the caller's family (tcp_v4_send_reset
 * or tcp_v6_send_reset).
 */
export function tcpLookupRcv(tcp: TcpProto, skb: SkBuff, tcpSendReset: (tcp: TcpProto, skb: SkBuff, sk?: TcpSock | null) => void): void {
  const tcb = tcpSkbCb(skb);
  for (let pass = 0; pass < 2; pass++) {
    const sk = lookupEstablished(tcp, tcb);
    if (sk) {
      if (sk.state === TCP_NEW_SYN_RECV) {
        const req = sk as TcpRequestSock;
        const listener = req.listener;
        if (listener.state !== TCP_LISTEN) {
          // The listener went away: forget the request and look again.
          inetCskReqskQueueDrop(tcp, req);
          continue;
        }
        if (tcpInboundHash(tcp, listener, skb)) return;
        const r = tcpCheckReq(tcp, req, skb);
        if (r === 'reset') tcpSendReset(tcp, skb, listener);
        else if (r && tcpChildProcess(tcp, listener, r, skb)) tcpSendReset(tcp, skb, r);
        return;
      }
      if (sk.state === TCP_TIME_WAIT) {
        const tw = sk as unknown as TcpTimewaitSock;
        switch (tcpTimewaitStateProcess(tcp, tw, skb)) {
          case TCP_TW_SYN: {
            const listener = lookupListener(tcp, tcb);
            if (listener) {
              inetTwskKill(tcp, tw);
              tcp.mibs.TcpExt.TWRecycled++;
              tcpConnRequest(tcp, listener, skb, tcp.twIsn);
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
            tcpSendReset(tcp, skb);
            return;
          default:
            return;
        }
      }
      if (tcpInboundHash(tcp, sk as TcpSock, skb)) return;
      if (tcpDoRcv(tcp, sk as TcpSock, skb)) tcpSendReset(tcp, skb, sk as TcpSock);
      return;
    }
    const listener = lookupListener(tcp, tcb);
    if (listener) {
      if (tcpInboundHash(tcp, listener, skb)) return;
      // tcp_rcv_state_process, LISTEN: an ACK is reset, a RST dropped, a SYN is a new connection.
      const f = tcb.tcpFlags;
      if (f & TCPHDR_ACK) {
        // The final ACK of a cookie handshake, or a stray ACK to reset.
        const child = f & (TCPHDR_SYN | TCPHDR_RST) ? null : cookieV4Check(tcp, listener, skb);
        if (child === 'drop') return;
        if (!child || tcpChildProcess(tcp, listener, child, skb)) tcpSendReset(tcp, skb, child ?? listener);
        return;
      }
      if (f & TCPHDR_RST) return;
      if (f & TCPHDR_SYN && !(f & TCPHDR_FIN)) tcpConnRequest(tcp, listener, skb);
      return;
    }
    tcp.mibs.Drop.counts[SKB_DROP_REASON.NO_SOCKET]++;
    tcpSendReset(tcp, skb);
    return;
  }
}

/**
 * tcp_v4_do_rcv / tcp_v6_do_rcv for a full socket that is not listening:
 * by state. Returns 1 when the segment must be answered with a reset.
 */
export function tcpDoRcv(tcp: TcpProto, sk: TcpSock, skb: SkBuff): number {
  const tr = tcp.trace;
  if (tr !== null) tr.rcv(sk, skb);
  if (sk.state === TCP_ESTABLISHED) return tcpRcvEstablished(tcp, sk, skb);
  if (sk.state === TCP_SYN_SENT) return tcpRcvSynsentStateProcess(tcp, sk, skb);
  if (sk.fastopenRsk) {
    // A Fast Open child's request checks the segment first (tcp_rcv_state_process's tcp_check_req, fastopen).
    const v = tcpFastopenCheckReq(tcp, sk, skb);
    if (v === TFO_REQ_RST) tcpReset(tcp, sk);
    if (v !== TFO_REQ_OK) return v === TFO_REQ_RESET ? 1 : 0;
  }
  return tcpRcvStateProcess(tcp, sk, skb);
}

/**
 * tcp_v4_send_reset: answer a segment that has no connection (or that the
 * full socket `sk` refuses). Never answers a reset. Signed with TCP-MD5
 * where Linux signs it (tcpMd5ResetKey), and not sent where Linux sends none.
 */
export function tcpV4SendReset(tcp: TcpProto, skb: SkBuff, sk: TcpSock | null = null): void {
  const tcb = tcpSkbCb(skb);
  const flags = tcb.tcpFlags;
  if (flags & TCPHDR_RST) return;
  const key = tcpMd5ResetKey(sk, skb, (port) => tcp.hashinfo.lookupListener(tcb.saddr | 0, tcb.sport, tcb.daddr | 0, port) as TcpSock | null);
  if (key === false) return;
  const hl = TCP_HLEN + (key ? TCPOLEN_MD5SIG_ALIGNED : 0);
  let seq = 0;
  let ack = 0;
  let rflags = TCPHDR_RST;
  if (flags & TCPHDR_ACK) {
    seq = tcb.ackSeq;
  } else {
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN each count one.
    ack = tcb.endSeq;
    rflags |= TCPHDR_ACK;
  }
  const nskb = allocSkb(hl);
  const at = nskb.put(hl);
  tcpHeader(nskb.buf, at, tcb.dport, tcb.sport, seq, ack, hl, rflags, 0);
  if (key) tcpMd5SignReply(key, skb, nskb.buf, at, hl);
  const c = csumFold(csumPartial(nskb.buf, at, hl, csumTcpUdpMagic(tcb.daddr, tcb.saddr, IPPROTO_TCP, hl)));
  nskb.buf[at + 16] = c >>> 8;
  nskb.buf[at + 17] = c & 255;
  tcp.mibs.Tcp.OutSegs++;
  tcp.mibs.Tcp.OutRsts++;
  // ip_send_unicast_reply: DF set, IP ID 0, the incoming TOS without its ECN bits.
  ipLocalOut(tcp.stack, nskb, tcb.daddr, tcb.saddr, IPPROTO_TCP, 64, tcb.tos & ~INET_ECN_MASK, true, 0);
}
