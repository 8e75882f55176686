/**
 * tcp_v4_err: an ICMP error quoting one of our segments. While connecting,
 * an unreachable ends the attempt with the matching errno (and the error
 * is queued on the error queue); on an established connection it is a
 * soft error (reported if the connection later times out), or with
 * IP_RECVERR the pending error at once. Fragmentation needed
 * lowers the MSS to the path MTU (RFC 1191). An error about a SYN-ACK of
 * ours goes to its request sock (tcp_req_err), shared with tcp_v6_err.
 */
import { after, before } from '../../lib/seq.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_HOST_UNREACH, ICMP_NET_UNREACH, ICMP_PARAMETERPROB, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED } from '../../wire/icmp.js';
import { ipDaddr, ipIhl, ipSaddr } from '../../wire/ipv4.js';
import type { TcpProto } from './tcp_proto.js';
import { type TcpRequestSock, type TcpSock } from './tcp_sock.js';
import { ICMP_ERR_CONVERT } from './icmp.js';
import { tcpSyncMss } from './tcp_output.js';
import { tcpDone, tcpWake } from './tcp.js';
import { icmpUnreachInfo, ipIcmpError } from './ip_sockglue.js';
import { INET_RECVERR, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT } from '../core/sock.js';
import { tcpSimpleRetransmit } from './tcp_recovery.js';
import { inetCskReqskQueueDrop } from './inet_connection_sock.js';
import { EHOSTUNREACH, EPROTO, POLLERR } from '../../uapi.js';


export function tcpV4Err(tcp: TcpProto, type: number, code: number, buf: Buffer, innerOff: number, info = 0, innerLen = 0, outer = -1): void {
  const ihl = ipIhl(buf, innerOff);
  const th = innerOff + ihl;
  const saddr = ipSaddr(buf, innerOff);
  const daddr = ipDaddr(buf, innerOff);
  const sport = buf.readUInt16BE(th);
  const dport = buf.readUInt16BE(th + 2);
  const seq = buf.readUInt32BE(th + 4);
  const found = tcp.hashinfo.lookupEstablished(daddr, dport, saddr, sport);
  if (!found || found.state === TCP_TIME_WAIT || found.state === TCP_LISTEN) return;
  if (found.state === TCP_NEW_SYN_RECV) {
    // tcp_v4_err: only these end a pending connection (the rest may be transient).
    const fatal = type === ICMP_PARAMETERPROB || type === ICMP_TIME_EXCEEDED || (type === ICMP_DEST_UNREACH && (code === ICMP_NET_UNREACH || code === ICMP_HOST_UNREACH));
    tcpReqErr(tcp, found as TcpRequestSock, seq, fatal);
    return;
  }
  const sk = found as TcpSock;
  // Only about data still outstanding (RFC 5927 4.1).
  // A Fast Open child's window starts at the SYN-ACK (its snd_una is past it already).
  if (before(seq, sk.fastopenRsk ? sk.fastopenRsk.sntIsn : sk.sndUna) || after(seq, sk.sndNxt)) {
    tcp.mibs.TcpExt.OutOfWindowIcmps++;
    return;
  }

  let err = 0;
  switch (type) {
    case ICMP_SOURCE_QUENCH:
      return; // RFC 6633
    case ICMP_PARAMETERPROB:
      err = EPROTO;
      break;
    case ICMP_DEST_UNREACH:
      if (code > 15) return;
      if (code === ICMP_FRAG_NEEDED) {
        const mtu = info & 0xffff;
        if (mtu >= 68 && mtu < tcp.stack.dev.mtu) {
          tcpSyncMss(sk, mtu);
          tcpSimpleRetransmit(tcp, sk);
        }
        return;
      }
      err = ICMP_ERR_CONVERT[code][0];
      break;
    case ICMP_TIME_EXCEEDED:
      err = EHOSTUNREACH;
      break;
    default:
      return;
  }
  // An accepted Fast Open child is treated as a connected socket.
  if ((sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) && !(sk.fastopenRsk && !sk.parent)) {
    // ip_icmp_error: queued whether or not IP_RECVERR is on, as tcp_v4_err does.
    ipIcmpError(sk, err, type, code, icmpUnreachInfo(type, code, info), buf, outer, innerOff, innerOff + Math.max(innerLen, ihl + 8), dport, th);
    sk.err = err;
    tcpDone(tcp, sk);
    return;
  }
  // Connected: a hard error at once only under IP_RECVERR, else kept for a timeout.
  if (sk.cmsgFlags & INET_RECVERR) {
    sk.err = err;
    tcpWake(sk, POLLERR);
  } else sk.errSoft = err;
}

/**
 * tcp_req_err: an ICMP error about our SYN-ACK. Not quoting the ISN we
 * sent: out of window. A fatal one drops the request silently (accept()
 * is not for network errors), counted as a listen drop.
 */
export function tcpReqErr(tcp: TcpProto, req: TcpRequestSock, seq: number, fatal: boolean): void {
  if (seq !== req.sntIsn) {
    tcp.mibs.TcpExt.OutOfWindowIcmps++;
  } else if (fatal) {
    inetCskReqskQueueDrop(tcp, req);
    tcp.mibs.TcpExt.ListenDrops++;
  }
}
