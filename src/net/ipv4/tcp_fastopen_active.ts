/**
 * TCP Fast Open, the active (client) side (RFC 7413), as Linux does it:
 * the client half of net/ipv4/tcp_fastopen.c (tcp_fastopen_cookie_check,
 * tcp_fastopen_defer_connect, the blackhole detection), the cookie cache
 * Linux keeps per destination in tcp_metrics.c (tcp_fastopen_cache_get/set,
 * with the peer's MSS and the SYN-loss history), tcp_sendmsg_fastopen
 * (tcp.c), tcp_send_syn_data (tcp_output.c) and tcp_rcv_fastopen_synack
 * (tcp_input.c).
 *
 * A SYN with data is sent as Linux sends it: the SYN stays alone at the
 * head of the write queue (so a SYN timeout retransmits a plain SYN, no
 * data and no cookie), the data follows it as its own skb, already sent;
 * a SYN-ACK that does not cover the data has it retransmitted at once.
 */
import { userAccessible } from '../core/uaccess.js';
import { AF_UNSPEC, EALREADY, EINPROGRESS, EINVAL, EISCONN, ENOPROTOOPT, EOPNOTSUPP, type SockAddr, TCP_FASTOPEN_CONNECT, TCP_FASTOPEN_NO_COOKIE, TCP_SYNCNT } from '../../uapi.js';
import { seqAdd } from '../../lib/seq.js';
import { IP_HLEN } from '../../wire/ipv4.js';
import { IPV6_HLEN } from '../../wire/ipv6.js';
import { TCP_HLEN, TCPHDR_ACK, TCPHDR_PSH, type TcpOptionsReceived, type TcpOutOptions, tcpFastopenOptionSize } from '../../wire/tcp.js';
import { skForcedMemSchedule, skMemCharge, TCP_CLOSE, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT } from '../core/sock.js';
import { inetStreamConnectResult } from './af_inet_connect.js';
import type { TcpProto } from './tcp_proto.js';
import { SS_CONNECTED, SS_CONNECTING, TcpSkb, type TcpSock } from './tcp_sock.js';
import { TcpFastopenActiveState, TcpFastopenCookie, TcpFastopenMetrics, TcpFastopenRequest } from './tcp_fastopen_req.js';

export { TcpFastopenActiveState, TcpFastopenCookie, TcpFastopenRequest };

/** net.ipv4.tcp_fastopen's client bits. */
export const TFO_CLIENT_ENABLE = 1;
export const TFO_CLIENT_NO_COOKIE = 4;
/** MAX_TCP_OPTION_SPACE: the SYN's data leaves room for every option a middlebox may add. */
const MAX_TCP_OPTION_SPACE = 40;
/** MAX_TCP_SYNCNT. */
const MAX_TCP_SYNCNT = 127;
/** TCP_MIN_SND_MSS. */
const TCP_MIN_SND_MSS = 48;

/** tcpi_fastopen_client_fail (enum tfo_client_fail). */
export const TFO_STATUS_UNSPEC = 0;
export const TFO_COOKIE_UNAVAILABLE = 1;
export const TFO_DATA_NOT_ACKED = 2;
export const TFO_SYN_RETRANSMITTED = 3;

function activeState(tcp: TcpProto): TcpFastopenActiveState {
  return (tcp.fastopenActive ??= new TcpFastopenActiveState());
}

function hex(a: Uint8Array): string {
  let s = '';
  for (const b of a) s += b.toString(16).padStart(2, '0');
  return s;
}

/** tcp_get_metrics' key: the route's family and both addresses (a v4-mapped socket is IPv4). */
function metricsKey(sk: TcpSock): string {
  return sk.ipv6 ? `6 ${hex(sk.v6RcvSaddr!)} ${hex(sk.v6Daddr!)}` : `4 ${sk.rcvSaddr >>> 0} ${sk.daddr >>> 0}`;
}

/** `ip tcp_metrics flush all` (tcp_metrics_flush_all): the cache forgets every destination. */
export function tcpMetricsFlushAll(tcp: TcpProto): void {
  tcp.fastopenActive?.cache.clear();
}

/** How many destinations the cache holds (for `ip tcp_metrics` and tests). */
export function tcpFastopenCacheSize(tcp: TcpProto): number {
  return tcp.fastopenActive?.cache.size ?? 0;
}

/**
 * tcp_fastopen_cache_get: the cached cookie (into `cookie`) and the peer's
 * MSS (0 if none); a destination that ignored our cookie request is tried
 * with the experimental option (try_exp 1).
 */
export function tcpFastopenCacheGet(tcp: TcpProto, sk: TcpSock, cookie: TcpFastopenCookie): number {
  const m = tcp.fastopenActive?.cache.get(metricsKey(sk));
  if (!m) return 0;
  cookie.copyFrom(m.cookie);
  if (cookie.len <= 0 && m.tryExp === 1) cookie.exp = true;
  return m.mss;
}

/** tcp_fastopen_cache_set: learn the peer's MSS, a cookie of valid length, the option to try, the SYN-loss history. */
export function tcpFastopenCacheSet(tcp: TcpProto, sk: TcpSock, mss: number, cookie: TcpFastopenCookie | null, synLost: boolean, tryExp: number): void {
  const st = activeState(tcp);
  const key = metricsKey(sk);
  let m = st.cache.get(key);
  if (m) {
    // Most recently used last.
    st.cache.delete(key);
  } else {
    m = new TcpFastopenMetrics();
    if (st.cache.size >= st.maxEntries) st.cache.delete(st.cache.keys().next().value!);
  }
  st.cache.set(key, m);
  if (mss) m.mss = mss;
  if (cookie && cookie.len > 0) m.cookie.copyFrom(cookie);
  else if (tryExp > m.tryExp && m.cookie.len <= 0 && !m.cookie.exp) m.tryExp = tryExp;
  if (synLost) {
    m.synLoss++;
    m.lastSynLoss = tcp.now();
  } else {
    m.synLoss = 0;
  }
}

/** tcp_fastopen_no_cookie: SYN data without any cookie (the sysctl's TFO_CLIENT_NO_COOKIE, or TCP_FASTOPEN_NO_COOKIE). */
function tcpFastopenNoCookie(tcp: TcpProto, sk: TcpSock): boolean {
  return (tcp.sysctl.tcp_fastopen & TFO_CLIENT_NO_COOKIE) !== 0 || sk.fastopenNoCookie;
}

/**
 * tcp_fastopen_cookie_check: may this SYN carry data? Yes with a cached
 * cookie, or without any when no cookie is needed (cookie.len -1 then: no
 * option); no while Fast Open is paused for a blackhole. Returns the cached
 * MSS through the request (mss, 0 if none).
 */
export function tcpFastopenCookieCheck(tcp: TcpProto, sk: TcpSock, cookie: TcpFastopenCookie): { ok: boolean; mss: number } {
  const mss = tcpFastopenCacheGet(tcp, sk, cookie);
  if (tcpFastopenActiveShouldDisable(tcp, sk)) {
    cookie.len = -1;
    return { ok: false, mss };
  }
  if (tcpFastopenNoCookie(tcp, sk)) {
    cookie.len = -1;
    return { ok: true, mss };
  }
  if (cookie.len > 0) return { ok: true, mss };
  sk.fastopenClientFail = TFO_COOKIE_UNAVAILABLE;
  return { ok: false, mss };
}

/**
 * tcp_fastopen_defer_connect, from tcp_v4_connect/tcp_v6_connect: with
 * TCP_FASTOPEN_CONNECT and a usable cookie, connect() returns 0 at once and
 * the SYN waits for the first write, which carries data in it (true);
 * without a cookie the SYN goes now, asking for one (false).
 */
export function tcpFastopenDeferConnect(tcp: TcpProto, sk: TcpSock): boolean {
  if (!sk.fastopenConnect || sk.fastopenReq) return false;
  const cookie = new TcpFastopenCookie(0);
  if (tcpFastopenCookieCheck(tcp, sk, cookie).ok) {
    sk.deferConnect = true;
    return true;
  }
  const req = new TcpFastopenRequest();
  req.cookie.copyFrom(cookie);
  sk.fastopenReq = req;
  return false;
}

/**
 * tcp_syn_options' Fast Open part: the cookie (or a request) if it fits
 * in what the other options left; marks the socket syn_fastopen.
 */
export function tcpSynOptionsFastopen(sk: TcpSock, o: TcpOutOptions): void {
  const fo = sk.fastopenReq;
  if (!fo || fo.cookie.len < 0) return;
  let remaining = MAX_TCP_OPTION_SPACE;
  if (o.mss) remaining -= 4;
  if (o.ts) remaining -= 12;
  if (o.ws >= 0) remaining -= 4;
  if (o.sackPerm && !o.ts) remaining -= 4;
  if (remaining < tcpFastopenOptionSize(fo.cookie.len, fo.cookie.exp)) return;
  o.fastopenLen = fo.cookie.len;
  o.fastopenExp = fo.cookie.exp;
  o.fastopenCookie = fo.cookie.val;
  sk.synFastopen = true;
  sk.synFastopenExp = fo.cookie.exp;
}

/**
 * tcp_send_syn_data, from tcp_connect: a SYN with as much of the request's
 * data as the cached MSS (bounded by the path MTU and TCP_MAXSEG) less the
 * whole option space allows. The SYN itself is already queued (`syn`);
 * the data becomes the skb after it, sent with it. Without a usable cookie:
 * a plain SYN with a cookie request (tcp_connect's fallback). Retries of
 * the SYN carry no cookie (cookie.len -1 afterwards).
 */
export function tcpSendSynData(tcp: TcpProto, sk: TcpSock, syn: TcpSkb, transmit: (skb: TcpSkb | null, len: number) => number): void {
  const fo = sk.fastopenReq!;
  const { ok, mss: cachedMss } = tcpFastopenCookieCheck(tcp, sk, fo.cookie);
  let sent = false;
  let space = -1;
  if (ok) {
    // tcp_mss_clamp and __tcp_mtu_to_mss: the SYN's data for the cached MSS (our advmss if none).
    let clamp = cachedMss || sk.advmss;
    if (sk.userMss && sk.userMss < clamp) clamp = sk.userMss;
    let mss = tcp.routeMtu(sk) - (sk.ipv6 ? IPV6_HLEN : IP_HLEN) - TCP_HLEN;
    if (mss > clamp) mss = clamp;
    if (mss < TCP_MIN_SND_MSS) mss = TCP_MIN_SND_MSS;
    space = Math.max(0, Math.min(mss - MAX_TCP_OPTION_SPACE, fo.size));
    // copy_page_from_iter: a bad user buffer copies nothing, and the SYN goes without data (the fallback).
    if (space && fo.data && userAccessible(fo.data, 0, space) < space) space = -1;
  }
  if (ok && space >= 0) {
    const data = new TcpSkb(Buffer.alloc(space), 0, space, seqAdd(syn.seq, 1));
    if (space) data.buf.set(fo.data!.subarray(0, space));
    data.len = space;
    data.endSeq = seqAdd(data.seq, space);
    data.tcpFlags = TCPHDR_ACK | TCPHDR_PSH;
    // No more data pending for inet_wait_for_connect.
    if (space === fo.size) fo.data = null;
    fo.copied = space;
    if (transmit(data, space) === 0) {
      sent = true;
      sk.synData = space > 0;
      if (space) {
        const now = tcp.now();
        data.sentAt = now;
        data.firstSentAt = now;
        data.pcount = 1;
        data.mss = sk.mssCache;
        // Queued after the SYN, already sent (tcp_connect_queue_skb; the SYN's memory is forced in, so is this).
        data.truesize += space;
        skForcedMemSchedule(sk, data.truesize);
        skMemCharge(sk, data.truesize);
        sk.wmemQueued += data.truesize;
        syn.next = data;
        sk.wqTail = data;
        sk.writeSeq = data.endSeq;
        sk.sndNxt = data.endSeq;
        sk.pushedSeq = data.endSeq;
        sk.packetsOut++;
        tcp.mibs.TcpExt.TCPOrigDataSent++;
      }
    } else {
      fo.copied = 0;
    }
  }
  if (!sent) {
    // A regular SYN, with a cookie request if a cookie was to be sent.
    if (fo.cookie.len > 0) fo.cookie.len = 0;
    if (transmit(null, 0) < 0) sk.synFastopen = false;
  }
  fo.cookie.len = -1;
}

/**
 * tcp_rcv_fastopen_synack, after tcp_ack took the SYN-ACK and the
 * connection is established: cache what the SYN-ACK taught (its MSS, a
 * cookie, a SYN lost, the option to try next), and retransmit at once the
 * part of the SYN's data it did not acknowledge (true: the caller sends no
 * ACK of its own). SYN data acknowledged: TCPI_OPT_SYN_DATA from now on.
 */
export function tcpRcvFastopenSynack(
  tcp: TcpProto,
  sk: TcpSock,
  o: TcpOptionsReceived,
  lossRetransmit: (tcp: TcpProto, sk: TcpSock, data: TcpSkb) => void,
): boolean {
  const data = sk.synData && sk.wqHead && sk.wqHead !== sk.sendHead ? sk.wqHead : null;
  const mss = o.mssClamp || sk.mssClamp;
  const cookie = new TcpFastopenCookie();
  cookie.len = o.fastopenLen;
  cookie.exp = o.fastopenExp;
  if (cookie.len > 0) cookie.val.set(o.fastopenCookie.subarray(0, cookie.len));
  let synDrop = false;
  let tryExp = 0;
  if (!sk.synFastopen) {
    // An unsolicited cookie is ignored.
    cookie.len = -1;
  } else if (sk.totalRetrans) {
    // The SYN timed out and the SYN-ACK has no cookie and leaves the data:
    // the remote presumably saw only the retransmitted plain SYN.
    synDrop = cookie.len < 0 && data !== null;
  } else if (cookie.len < 0 && !sk.synData) {
    // Asked for a cookie, got none: next time the other option format.
    tryExp = sk.synFastopenExp ? 2 : 1;
  }
  tcpFastopenCacheSet(tcp, sk, mss, cookie, synDrop, tryExp);
  if (data) {
    sk.fastopenClientFail = sk.totalRetrans ? TFO_SYN_RETRANSMITTED : TFO_DATA_NOT_ACKED;
    lossRetransmit(tcp, sk, data);
    tcp.mibs.TcpExt.TCPFastOpenActiveFail++;
    return true;
  }
  sk.synDataAcked = sk.synData;
  if (sk.synDataAcked) {
    tcp.mibs.TcpExt.TCPFastOpenActive++;
    // The SYN and its data were delivered as two packets: Linux counts one.
    if (sk.delivered > 1) sk.delivered--;
  }
  return false;
}

/**
 * tcp_sendmsg_fastopen: sendto/sendmsg with MSG_FASTOPEN, or the first
 * write after a deferred TCP_FASTOPEN_CONNECT: connect with the data in
 * the SYN (as much as fits) when a cookie is cached, else a SYN asking for
 * one. Returns the bytes the SYN took, or -EINPROGRESS (connecting, nothing
 * taken: a blocking caller waits for the handshake and then sends), or an
 * error (EOPNOTSUPP with the client bit off or an AF_UNSPEC address,
 * EALREADY with a Fast Open in progress, the connect's errors).
 */
export function tcpSendmsgFastopen(
  tcp: TcpProto,
  sk: TcpSock,
  data: Uint8Array,
  to: SockAddr | null,
  connect: (sk: TcpSock, to: SockAddr) => number,
  connectSend: (sk: TcpSock) => void,
): number {
  if (!(tcp.sysctl.tcp_fastopen & TFO_CLIENT_ENABLE) || (to && to.family === AF_UNSPEC)) return -EOPNOTSUPP;
  if (sk.fastopenReq) return -EALREADY;
  const fo = new TcpFastopenRequest();
  fo.data = data;
  fo.size = data.length;
  sk.fastopenReq = fo;
  let err: number;
  if (sk.deferConnect) {
    // The deferred connect's SYN goes now, with the data.
    connectSend(sk);
    err = -EINPROGRESS;
  } else {
    err = inetStreamConnectSendmsg(sk, to, connect);
  }
  const copied = sk.fastopenReq === fo ? fo.copied : 0;
  sk.fastopenReq = null;
  sk.deferConnect = false;
  if (err === -EINPROGRESS && copied > 0) return copied;
  return err;
}

/**
 * __inet_stream_connect for sendmsg (is_sendmsg), on the socket's SS_
 * state: EISCONN once connected; while connecting EALREADY (EINPROGRESS
 * with a deferred connect), and once the handshake is over 0 (the send
 * goes on as a plain one) or the error that ended it; unconnected, the
 * protocol's connect (EINVAL without an address, as tcp_v4_connect says).
 * The stack never blocks: -EINPROGRESS while the handshake runs, and the
 * caller waits as inet_wait_for_connect would.
 */
function inetStreamConnectSendmsg(sk: TcpSock, to: SockAddr | null, connect: (sk: TcpSock, to: SockAddr) => number): number {
  switch (sk.socketState) {
    case SS_CONNECTED:
      return -EISCONN;
    case SS_CONNECTING:
      if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return sk.deferConnect ? -EINPROGRESS : -EALREADY;
      return inetStreamConnectResult(sk);
    default:
      if (sk.state !== TCP_CLOSE) return -EISCONN;
      if (!to) return -EINVAL;
      return connect(sk, to);
  }
}

// --- blackhole detection -----------------------------------------------------------

/**
 * tcp_fastopen_active_disable: a middlebox seems to drop Fast Open: pause
 * it for this namespace (tcp_fastopen_blackhole_timeout_sec, doubling with
 * each repeat). Nothing with the timeout at 0.
 */
export function tcpFastopenActiveDisable(tcp: TcpProto): void {
  if (!tcp.sysctl.tcp_fastopen_blackhole_timeout_sec) return;
  const st = activeState(tcp);
  st.disableStamp = tcp.now();
  st.disableTimes++;
  tcp.mibs.TcpExt.TCPFastOpenBlackhole++;
}

/**
 * tcp_fastopen_active_should_disable: still inside the pause (timeout
 * times 2^(times-1), at most 2^6)? Past it, the socket is marked to clear
 * the history once data flows (syn_fastopen_ch).
 */
export function tcpFastopenActiveShouldDisable(tcp: TcpProto, sk: TcpSock): boolean {
  const timeout = tcp.sysctl.tcp_fastopen_blackhole_timeout_sec;
  if (!timeout) return false;
  const st = tcp.fastopenActive;
  if (!st || !st.disableTimes) return false;
  const multiplier = 1 << Math.min(st.disableTimes - 1, 6);
  if (tcp.now() < st.disableStamp + multiplier * timeout * 1000) return true;
  sk.synFastopenCh = true;
  return false;
}

/**
 * tcp_fastopen_active_disable_ofo_check, when a connection is torn down: a
 * Fast Open connection that got no data but a lone FIN out of order looks
 * blackholed; one that got data after a pause clears the history (not over
 * loopback).
 */
export function tcpFastopenActiveDisableOfoCheck(tcp: TcpProto, sk: TcpSock, ofoLoneFin: boolean, loopback: boolean): void {
  if (!sk.synFastopen) return;
  if (!sk.dataSegsIn) {
    if (ofoLoneFin) tcpFastopenActiveDisable(tcp);
  } else if (sk.synFastopenCh && tcp.fastopenActive?.disableTimes && !loopback) {
    tcp.fastopenActive.disableTimes = 0;
  }
}

/**
 * tcp_fastopen_active_detect_blackhole, from tcp_write_timeout: a Fast
 * Open connection hitting its third consecutive timeout (or giving up
 * before) pauses Fast Open and counts TCPFastOpenActiveFail.
 */
export function tcpFastopenActiveDetectBlackhole(tcp: TcpProto, sk: TcpSock, expired: boolean): void {
  const timeouts = sk.retransmits;
  if ((sk.synFastopen || sk.synData || sk.synDataAcked) && (timeouts === 2 || (timeouts < 2 && expired))) {
    tcpFastopenActiveDisable(tcp);
    tcp.mibs.TcpExt.TCPFastOpenActiveFail++;
  }
}

// --- socket options and teardown -----------------------------------------------------

/**
 * do_tcp_setsockopt's options of the active open: TCP_SYNCNT
 * (tcp_sock_set_syncnt: 1 .. MAX_TCP_SYNCNT), TCP_FASTOPEN_CONNECT (0 or
 * 1, before connect only, EOPNOTSUPP with the sysctl's client bit off) and
 * TCP_FASTOPEN_NO_COOKIE (0 or 1, on a closed or listening socket).
 */
export function tcpActiveOpenSetsockopt(tcp: TcpProto, sk: TcpSock, name: number, val: number): number {
  if (name === TCP_SYNCNT) {
    if (val < 1 || val > MAX_TCP_SYNCNT) return -EINVAL;
    sk.synRetries = val;
    return 0;
  }
  if (val < 0 || val > 1) return -EINVAL;
  if (name === TCP_FASTOPEN_CONNECT) {
    if (!(tcp.sysctl.tcp_fastopen & TFO_CLIENT_ENABLE)) return -EOPNOTSUPP;
    if (sk.state !== TCP_CLOSE) return -EINVAL;
    sk.fastopenConnect = val === 1;
    return 0;
  }
  if (name === TCP_FASTOPEN_NO_COOKIE) {
    if (sk.state !== TCP_CLOSE && sk.state !== TCP_LISTEN) return -EINVAL;
    sk.fastopenNoCookie = val === 1;
    return 0;
  }
  return -ENOPROTOOPT;
}

/** do_tcp_getsockopt's TCP_SYNCNT, TCP_FASTOPEN_CONNECT and TCP_FASTOPEN_NO_COOKIE. */
export function tcpActiveOpenGetsockopt(tcp: TcpProto, sk: TcpSock, name: number): number {
  if (name === TCP_SYNCNT) return sk.synRetries || tcp.sysctl.tcp_syn_retries;
  if (name === TCP_FASTOPEN_CONNECT) return sk.fastopenConnect ? 1 : 0;
  if (name === TCP_FASTOPEN_NO_COOKIE) return sk.fastopenNoCookie ? 1 : 0;
  return -ENOPROTOOPT;
}

/**
 * What tcp_v4_destroy_sock and tcp_disconnect do for the active side:
 * the blackhole check on the out-of-order queue (a lone FIN), then
 * tcp_free_fastopen_req and a clear DEFER_CONNECT.
 */
export function tcpFastopenActiveRelease(tcp: TcpProto, sk: TcpSock, ofoLoneFin: boolean): void {
  tcpFastopenActiveDisableOfoCheck(tcp, sk, ofoLoneFin, tcp.stack.fib.isLocal(sk.daddr));
  sk.fastopenReq = null;
  sk.deferConnect = false;
}
