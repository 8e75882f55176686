/**
 * ICMPv4 (net/ipv4/icmp.c): echo and timestamp replies, errors delivered to
 * the transport that sent the quoted packet, and icmp_send() with the
 * rules of RFC 1122 3.2.2 and Linux's two rate limits (a global token
 * bucket, icmp_msgs_per_sec/icmp_msgs_burst, and a per-destination one,
 * icmp_ratelimit with icmp_ratemask).
 */
import { csumFold, csumPartial } from '../../lib/checksum.js';
import { ipv4IsMulticast, INADDR_BROADCAST } from '../../lib/addr.js';
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_HLEN,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  NR_ICMP_TYPES,
  icmpIsError,
} from '../../wire/icmp.js';
import { IP_HLEN, IP_OFFSET, ipDaddr, ipFragOff, ipIhl, ipProto, ipSaddr, ipTos, ipTotLen } from '../../wire/ipv4.js';
import { allocSkb } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { IP_ID_AUTO, ipLocalOut } from './ip_output.js';
import { RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST } from './route.js';
import type { SkBuff } from '../core/skbuff.js';
import type { Net } from '../core/net.js';
import { ECONNREFUSED, EHOSTUNREACH, EMSGSIZE, ENETUNREACH, ENOPROTOOPT, EOPNOTSUPP, IPPROTO_ICMP } from '../../uapi.js';
import type { NetProtocol } from '../core/protocol.js';

/** icmp_err_convert[]: a destination-unreachable code's errno, and whether it ends a connection attempt. */
export const ICMP_ERR_CONVERT: readonly (readonly [number, boolean])[] = [
  [ENETUNREACH, false], // NET_UNREACH
  [EHOSTUNREACH, false], // HOST_UNREACH
  [ENOPROTOOPT, true], // PROT_UNREACH
  [ECONNREFUSED, true], // PORT_UNREACH
  [EMSGSIZE, false], // FRAG_NEEDED
  [EOPNOTSUPP, false], // SR_FAILED
  [ENETUNREACH, true], // NET_UNKNOWN
  [EHOSTUNREACH, true], // HOST_UNKNOWN
  [ENETUNREACH, true], // HOST_ISOLATED
  [ENETUNREACH, true], // NET_ANO
  [EHOSTUNREACH, true], // HOST_ANO
  [ENETUNREACH, false], // NET_UNR_TOS
  [EHOSTUNREACH, false], // HOST_UNR_TOS
  [EHOSTUNREACH, true], // PKT_FILTERED
  [EHOSTUNREACH, true], // PREC_VIOLATION
  [EHOSTUNREACH, true], // PREC_CUTOFF
];

/** ICMP sysctls, with Linux's defaults. */
export class IcmpSysctl {
  icmp_echo_ignore_all = 0;
  icmp_echo_ignore_broadcasts = 1;
  /** Milliseconds between limited messages to one destination. */
  icmp_ratelimit = 1000;
  /** Types limited per destination: unreachable, source quench, time exceeded, parameter problem. */
  icmp_ratemask = 0x1818;
  icmp_msgs_per_sec = 1000;
  icmp_msgs_burst = 50;
}

/** inet_peer's rate-limit state for one destination. */
interface PeerRate {
  tokens: number;
  last: number;
}

/** icmp_protocol: ICMP at inetProtos[IPPROTO_ICMP]. */
export function icmpProtocol(stack: Net): NetProtocol {
  return { handler: (skb) => stack.icmp.rcv(skb) };
}

/** inet_peer's rate limiting: a burst of this many tokens (XRLIM_BURST_FACTOR), kept for at most MAX_PEERS destinations. */
export const XRLIM_BURST_FACTOR = 6;
export const MAX_PEERS = 4096;
const IPTOS_PREC_INTERNETCONTROL = 0xc0;
const IPTOS_TOS_MASK = 0x1e;

export class Icmp {
  readonly sysctl = new IcmpSysctl();
  #peers = new Map<number, PeerRate>();
  #globalCredit: number;
  #globalStamp: number;

  constructor(private stack: Net) {
    this.#globalCredit = this.sysctl.icmp_msgs_burst;
    this.#globalStamp = stack.time.clock.now();
  }

  /** icmp_rcv: skb.data at the ICMP header. */
  rcv(skb: SkBuff): void {
    const buf = skb.buf;
    const off = skb.data;
    const len = skb.len;
    const mib = this.stack.mibs.Icmp;
    const drop = this.stack.mibs.Drop.counts;
    mib.InMsgs++;
    if (len < ICMP_HLEN) {
      mib.InErrors++;
      drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
      return;
    }
    if (csumFold(csumPartial(buf, off, len)) !== 0) {
      mib.InCsumErrors++;
      mib.InErrors++;
      drop[SKB_DROP_REASON.ICMP_CSUM]++;
      return;
    }
    const type = buf[off];
    if (type > NR_ICMP_TYPES) {
      mib.InErrors++;
      drop[SKB_DROP_REASON.UNHANDLED_PROTO]++;
      return;
    }
    this.stack.mibs.IcmpMsg.in[type]++;

    if (skb.rtType === RTN_BROADCAST || skb.rtType === RTN_MULTICAST) {
      // RFC 1122 3.2.2.6: echo to a broadcast may be ignored; Linux does by default.
      if ((type === ICMP_ECHO || type === ICMP_TIMESTAMP) && this.sysctl.icmp_echo_ignore_broadcasts) {
        drop[SKB_DROP_REASON.ICMP_IGNORED]++;
        return;
      }
      if (type !== ICMP_ECHO && type !== ICMP_TIMESTAMP) {
        drop[SKB_DROP_REASON.ICMP_IGNORED]++;
        return;
      }
    }

    switch (type) {
      case ICMP_ECHO:
        mib.InEchos++;
        if (!this.sysctl.icmp_echo_ignore_all) this.#reply(skb, ICMP_ECHOREPLY, len);
        return;
      case ICMP_ECHOREPLY:
        mib.InEchoReps++;
        return;
      case ICMP_TIMESTAMP:
        mib.InTimestamps++;
        if (len >= ICMP_HLEN + 12) this.#reply(skb, ICMP_TIMESTAMPREPLY, ICMP_HLEN + 12);
        else {
          mib.InErrors++;
          drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        }
        return;
      case ICMP_TIMESTAMPREPLY:
        mib.InTimestampReps++;
        return;
      case ICMP_DEST_UNREACH:
        mib.InDestUnreachs++;
        this.#unreach(buf, off, len, skb.networkHeader);
        return;
      case ICMP_TIME_EXCEEDED:
        mib.InTimeExcds++;
        this.#unreach(buf, off, len, skb.networkHeader);
        return;
      case ICMP_PARAMETERPROB:
        mib.InParmProbs++;
        this.#unreach(buf, off, len, skb.networkHeader);
        return;
      case ICMP_SOURCE_QUENCH:
        // Deprecated by RFC 6633; Linux counts and ignores it.
        mib.InSrcQuenchs++;
        return;
      case ICMP_REDIRECT:
        // We have one link and no routing cache to redirect: counted, ignored.
        mib.InRedirects++;
        return;
      default:
        return; // icmp_discard
    }
  }

  /** icmp_unreach: hand the quoted packet to the transport that sent it. */
  #unreach(buf: Buffer, off: number, len: number, outer: number): void {
    const inner = off + ICMP_HLEN;
    const innerLen = len - ICMP_HLEN;
    if (innerLen < IP_HLEN || ipIhl(buf, inner) < IP_HLEN) {
      // icmp_unreach's drops: no room for the quoted header, or a quoted header too short.
      this.stack.mibs.Icmp.InErrors++;
      this.stack.mibs.Drop.counts[innerLen < IP_HLEN ? SKB_DROP_REASON.NOT_SPECIFIED : SKB_DROP_REASON.IP_INHDR]++;
      return;
    }
    if (innerLen < ipIhl(buf, inner) + 8) {
      // icmp_socket_deliver: counted, and consumed without a reason, as Linux does.
      this.stack.mibs.Icmp.InErrors++;
      return;
    }
    const prot = this.stack.inetProtos[ipProto(buf, inner)];
    if (prot?.errHandler) prot.errHandler(buf[off], buf[off + 1], buf.readUInt32BE(off + 4), buf, inner, innerLen, outer);
  }

  /** icmp_reply for echo and timestamp: same identifier, sequence and data. */
  #reply(in_: SkBuff, type: number, replyLen: number): void {
    const buf = in_.buf;
    const off = in_.data;
    const len = in_.len;
    const skb = allocSkb(replyLen);
    const at = skb.put(replyLen);
    const b = skb.buf;
    buf.copy(b, at, off, off + Math.min(len, replyLen));
    b[at] = type;
    b[at + 1] = 0;
    if (type === ICMP_TIMESTAMPREPLY) {
      // Milliseconds since midnight UT (RFC 792), receive and transmit alike.
      const ms = Math.floor(this.stack.time.clock.wall() % 86_400_000);
      b.writeUInt32BE(ms, at + 12);
      b.writeUInt32BE(ms, at + 16);
    }
    b[at + 2] = 0;
    b[at + 3] = 0;
    const c = csumFold(csumPartial(b, at, replyLen));
    b[at + 2] = c >>> 8;
    b[at + 3] = c & 255;
    this.#count(type);
    // The ICMP socket does not set DF (IP_PMTUDISC_DONT): big replies fragment.
    const nh = in_.networkHeader;
    const saddr = in_.rtType === RTN_LOCAL ? ipDaddr(buf, nh) : 0;
    ipLocalOut(this.stack, skb, saddr, ipSaddr(buf, nh), IPPROTO_ICMP, 64, ipTos(buf, nh), false, IP_ID_AUTO);
  }

  #count(type: number): void {
    const mib = this.stack.mibs.Icmp;
    mib.OutMsgs++;
    this.stack.mibs.IcmpMsg.out[type]++;
    switch (type) {
      case ICMP_ECHOREPLY: mib.OutEchoReps++; break;
      case ICMP_DEST_UNREACH: mib.OutDestUnreachs++; break;
      case ICMP_TIME_EXCEEDED: mib.OutTimeExcds++; break;
      case ICMP_PARAMETERPROB: mib.OutParmProbs++; break;
      case ICMP_TIMESTAMPREPLY: mib.OutTimestampReps++; break;
      case ICMP_ECHO: mib.OutEchos++; break;
    }
  }

  /** icmp_global_allow, for ICMPv6 too: Linux has one bucket for both families. */
  globalAllow(): boolean {
    return this.#globalAllow();
  }

  /** icmp_global_allow: the stack-wide token bucket. */
  #globalAllow(): boolean {
    const s = this.sysctl;
    const now = this.stack.time.clock.now();
    const delta = Math.min(1000, now - this.#globalStamp);
    if (delta >= 20) {
      this.#globalCredit = Math.min(s.icmp_msgs_burst, this.#globalCredit + Math.floor((s.icmp_msgs_per_sec * delta) / 1000));
      this.#globalStamp = now;
    }
    if (this.#globalCredit > 0) {
      this.#globalCredit--;
      return true;
    }
    return false;
  }

  /** inet_peer_xrlim_allow: per destination, a burst of 6 then one per icmp_ratelimit. */
  #peerAllow(daddr: number): boolean {
    const timeout = this.sysctl.icmp_ratelimit;
    if (timeout === 0) return true;
    const now = this.stack.time.clock.now();
    let p = this.#peers.get(daddr);
    if (!p) {
      if (this.#peers.size >= MAX_PEERS) this.#peers.delete(this.#peers.keys().next().value!);
      // A new peer starts as if idle for a minute: a full burst (inet_getpeer).
      p = { tokens: 0, last: now - 60_000 };
      this.#peers.set(daddr, p);
    }
    let token = p.tokens + (now - p.last);
    p.last = now;
    if (token > XRLIM_BURST_FACTOR * timeout) token = XRLIM_BURST_FACTOR * timeout;
    let ok = false;
    if (token >= timeout) {
      token -= timeout;
      ok = true;
    }
    p.tokens = token;
    return ok;
  }

  /**
   * icmp_send: an error about the datagram whose IP header is at `ipOff`.
   * `l2Host`: it arrived addressed to our MAC (not a link broadcast), or
   * it is one of ours (a local failure report).
   */
  send(buf: Buffer, ipOff: number, type: number, code: number, info: number, l2Host: boolean): void {
    const stack = this.stack;
    const mib = stack.mibs.Icmp;
    const fib = stack.fib;
    if (!l2Host) return;
    const saddr0 = ipSaddr(buf, ipOff);
    const daddr0 = ipDaddr(buf, ipOff);
    // Never about a packet to a broadcast or multicast address, or from a non-unicast source.
    const dt = fib.addrType(daddr0);
    if (dt === RTN_BROADCAST || dt === RTN_MULTICAST) return;
    if (saddr0 === 0 || saddr0 === INADDR_BROADCAST || ipv4IsMulticast(saddr0) || fib.addrType(saddr0) === RTN_BROADCAST) return;
    // Only about the first fragment.
    if (ipFragOff(buf, ipOff) & IP_OFFSET) return;
    const ihl = ipIhl(buf, ipOff);
    const totLen = ipTotLen(buf, ipOff);
    // Never about an ICMP error.
    if (ipProto(buf, ipOff) === IPPROTO_ICMP && totLen >= ihl + 1) {
      const t = buf[ipOff + ihl];
      if (t > NR_ICMP_TYPES || icmpIsError(t)) return;
    }

    if (type <= NR_ICMP_TYPES && (1 << type) & this.sysctl.icmp_ratemask && !fib.isLocal(saddr0)) {
      if (!this.#globalAllow()) {
        mib.OutRateLimitGlobal++;
        stack.mibs.Drop.counts[SKB_DROP_REASON.ICMP_RATELIMIT]++;
        return;
      }
      if (!this.#peerAllow(saddr0)) {
        mib.OutRateLimitHost++;
        stack.mibs.Drop.counts[SKB_DROP_REASON.ICMP_RATELIMIT]++;
        return;
      }
    }

    // Quote as much as fits in 576 bytes (RFC 1812 4.3.2.3), as Linux does.
    const room = 576 - IP_HLEN - ICMP_HLEN;
    const quote = Math.min(totLen, room, buf.length - ipOff);
    const skb = allocSkb(ICMP_HLEN + quote);
    const at = skb.put(ICMP_HLEN + quote);
    const b = skb.buf;
    b[at] = type;
    b[at + 1] = code;
    b[at + 2] = 0;
    b[at + 3] = 0;
    b.writeUInt32BE(info >>> 0, at + 4);
    buf.copy(b, at + ICMP_HLEN, ipOff, ipOff + quote);
    const c = csumFold(csumPartial(b, at, ICMP_HLEN + quote));
    b[at + 2] = c >>> 8;
    b[at + 3] = c & 255;
    this.#count(type);
    const tos = (ipTos(buf, ipOff) & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL;
    const saddr = fib.isLocal(daddr0) ? daddr0 : 0;
    if (ipLocalOut(stack, skb, saddr, saddr0, IPPROTO_ICMP, 64, tos, false, IP_ID_AUTO) < 0) mib.OutErrors++;
  }
}
