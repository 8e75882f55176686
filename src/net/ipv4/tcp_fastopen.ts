/**
 * TCP Fast Open, the server's half (net/ipv4/tcp_fastopen.c's passive side,
 * RFC 7413, as Linux does it):
 *  - the keys: the stack's (net.ipv4.tcp_fastopen_key, a random one made on
 *    first use) and a listener's own (TCP_FASTOPEN_KEY), each a primary and
 *    an optional backup; a cookie is SipHash-2-4 of the SYN's source and
 *    destination addresses under the primary, and one made by the backup is
 *    accepted too (key rotation);
 *  - the listener's Fast Open queue (TCP_FASTOPEN's max_qlen, or listen()'s
 *    backlog under TFO_SERVER_WO_SOCKOPT1) and tcp_try_fastopen: a SYN with
 *    a valid cookie (or any SYN with data under TFO_SERVER_COOKIE_NOT_REQD)
 *    makes the child at once, in SYN_RECV on the accept queue with the
 *    SYN's data readable; a cookie request gets the cookie in the SYN-ACK;
 *  - the child until its handshake ends: the request's checks of its
 *    segments (tcp_check_req with fastopen), the SYN-ACK retransmitted from
 *    the child's own timer, and reqsk_fastopen_remove (a child reset after
 *    accept() keeps counting against max_qlen for 60 s, Linux's defence
 *    against spoofed Fast Open).
 * The SYN-ACK never carries data: Linux's server sends none.
 */
import { siphash24, siphashHigh, sipKeyFromBytes, type SipKey } from '../../lib/siphash.js';
import { after, before, seqAdd } from '../../lib/seq.js';
import type { TcpOptionsReceived } from '../../wire/tcp.js';
import { TCPHDR_ACK, TCPHDR_RST, TCPHDR_SYN } from '../../wire/tcp.js';
import type { SkBuff } from '../core/skbuff.js';
import { skForcedMemSchedule, sockOptInt, TCP_CLOSE, TCP_LISTEN, TCP_SYN_RECV } from '../core/sock.js';
import type { TcpProto } from './tcp_proto.js';
import { FastopenQueue, ICSK_TIME_RETRANS, TCP_RTO_MAX, TCP_TIMEOUT_INIT, type TcpRequestSock, type TcpSock } from './tcp_sock.js';
import { tcpSkbCb } from './tcp_skb_cb.js';
import { tcpRearmRto, tcpSendAckRaw, tcpSendSynack } from './tcp_output.js';
import { inetCskReqskQueueAdd } from './inet_connection_sock.js';
import { rcvSegCharge, rcvSegCopy } from './tcp_rcvq.js';
import { EINVAL, ENOPROTOOPT, TCP_FASTOPEN, TCP_FASTOPEN_KEY } from '../../uapi.js';

/** net.ipv4.tcp_fastopen's bits (include/net/tcp.h). */
export const TFO_CLIENT_ENABLE = 1;
export const TFO_SERVER_ENABLE = 2;
export const TFO_CLIENT_NO_COOKIE = 4;
export const TFO_SERVER_COOKIE_NOT_REQD = 0x200;
export const TFO_SERVER_WO_SOCKOPT1 = 0x400;
/** A server cookie: one SipHash result, 8 bytes. */
export const TCP_FASTOPEN_COOKIE_SIZE = 8;
/** One key; TCP_FASTOPEN_KEY takes one or two (primary, backup). */
export const TCP_FASTOPEN_KEY_LENGTH = 16;
export const TCP_FASTOPEN_KEY_BUF_LENGTH = 32;
/** How long a child reset after accept() still counts against max_qlen (reqsk_fastopen_remove: 60 s). */
const TFO_RST_HOLD_MS = 60_000;

// --- keys -------------------------------------------------------------------------------

/**
 * tcp_fastopen_reset_cipher: new keys for the stack (sk null) or one
 * socket: 16 bytes each, read as two little-endian 64-bit words.
 */
export function tcpFastopenResetCipher(tcp: TcpProto, sk: TcpSock | null, primary: Uint8Array, backup: Uint8Array | null): void {
  const keys = [sipKeyFromBytes(primary)];
  if (backup) keys.push(sipKeyFromBytes(backup));
  if (sk) (sk.fastopenq ??= new FastopenQueue()).keys = keys;
  else tcp.fastopenKeys = keys;
}

/** tcp_fastopen_init_key_once: a random key for the stack, unless it has one. */
export function tcpFastopenInitKeyOnce(tcp: TcpProto): void {
  if (tcp.fastopenKeys) return;
  const key = new Uint8Array(TCP_FASTOPEN_KEY_LENGTH);
  const dv = new DataView(key.buffer);
  for (let i = 0; i < 4; i++) dv.setUint32(i * 4, tcp.random.u32(), true);
  tcpFastopenResetCipher(tcp, null, key, null);
}

/** tcp_fastopen_get_cipher: the keys of a socket (sk) or of the stack, as bytes (16 each, primary first). */
export function tcpFastopenGetCipher(tcp: TcpProto, sk: TcpSock | null): Buffer {
  const keys = sk ? (sk.fastopenq?.keys ?? null) : tcp.fastopenKeys;
  const out = Buffer.alloc((keys?.length ?? 0) * TCP_FASTOPEN_KEY_LENGTH);
  keys?.forEach((k, i) => {
    for (let w = 0; w < 4; w++) out.writeUInt32LE(k[w], i * TCP_FASTOPEN_KEY_LENGTH + w * 4);
  });
  return out;
}

/** tcp_fastopen_get_ctx: the listener's keys, else the stack's. */
function tcpFastopenGetCtx(tcp: TcpProto, sk: TcpSock): SipKey[] | null {
  return sk.fastopenq?.keys ?? tcp.fastopenKeys;
}

/**
 * proc_tcp_fastopen_key, read: the keys as 32-bit words in hex,
 * "%08x-%08x-%08x-%08x", the backup after a comma; zeros while none is set.
 */
export function procTcpFastopenKeyGet(tcp: TcpProto): string {
  const keys = tcp.fastopenKeys ?? [new Uint32Array(4)];
  return keys.map((k) => Array.from(k, (w) => w.toString(16).padStart(8, '0')).join('-')).join(',');
}

/**
 * proc_tcp_fastopen_key, write: "a-b-c-d" or "a-b-c-d,e-f-g-h", the
 * primary then the backup, each read as the kernel's sscanf reads
 * "%x-%x-%x-%x": hex words (0x allowed, leading blanks skipped, the low 32
 * bits of a longer one kept), whatever follows the fourth ignored.
 * Returns 0 or -EINVAL with err.message.
 */
export function procTcpFastopenKeySet(tcp: TcpProto, value: string, err: { message: string }): number {
  const comma = value.indexOf(',');
  const parts = comma < 0 ? [value] : [value.slice(0, comma), value.slice(comma + 1)];
  const keys: Uint8Array[] = [];
  const word = '\\s*(?:0[xX])?([0-9a-fA-F]+)';
  const re = new RegExp(`^${word}-${word}-${word}-${word}`);
  for (const p of parts) {
    const m = re.exec(p);
    if (!m) {
      err.message = `net.ipv4.tcp_fastopen_key: "${value}" is not one or two keys "%08x-%08x-%08x-%08x[,...]"`;
      return -EINVAL;
    }
    const key = new Uint8Array(TCP_FASTOPEN_KEY_LENGTH);
    const dv = new DataView(key.buffer);
    for (let i = 0; i < 4; i++) dv.setUint32(i * 4, Number(BigInt(`0x${m[i + 1]}`) & 0xffffffffn), true);
    keys.push(key);
  }
  tcpFastopenResetCipher(tcp, null, keys[0], keys[1] ?? null);
  return 0;
}

/**
 * __tcp_fastopen_cookie_gen_cipher: SipHash-2-4 of the SYN's saddr and
 * daddr (8 bytes for IPv4, 32 for IPv6: the SYN's family, so a v4-mapped
 * connection's is IPv4's) under `key`, into out[0, 8) little-endian.
 */
function tcpFastopenCookieGenCipher(skb: SkBuff, key: SipKey, out: Uint8Array): void {
  const tcb = tcpSkbCb(skb);
  let m: Uint8Array;
  if (tcb.ipv6) {
    m = new Uint8Array(32);
    m.set(tcb.saddr6, 0);
    m.set(tcb.daddr6, 16);
  } else {
    m = new Uint8Array(8);
    const dv = new DataView(m.buffer);
    dv.setUint32(0, tcb.saddr >>> 0);
    dv.setUint32(4, tcb.daddr >>> 0);
  }
  const lo = siphash24(key, m, m.length);
  const hi = siphashHigh;
  const dv = new DataView(out.buffer, out.byteOffset, TCP_FASTOPEN_COOKIE_SIZE);
  dv.setUint32(0, lo >>> 0, true);
  dv.setUint32(4, hi >>> 0, true);
}

/** A cookie computed for a SYN (struct tcp_fastopen_cookie): len -1 for none. */
interface Cookie {
  len: number;
  val: Uint8Array;
}

/** tcp_fastopen_cookie_gen: the cookie of the primary key, if there is a key. */
function tcpFastopenCookieGen(tcp: TcpProto, sk: TcpSock, skb: SkBuff, foc: Cookie): void {
  const keys = tcpFastopenGetCtx(tcp, sk);
  if (!keys) return;
  tcpFastopenCookieGenCipher(skb, keys[0], foc.val);
  foc.len = TCP_FASTOPEN_COOKIE_SIZE;
}

/**
 * tcp_fastopen_cookie_gen_check: does the SYN's cookie match one of the
 * keys? 0 no, 1 the primary, 2 the backup. valid gets the primary's cookie.
 */
function tcpFastopenCookieGenCheck(tcp: TcpProto, sk: TcpSock, skb: SkBuff, orig: TcpOptionsReceived, valid: Cookie): number {
  const keys = tcpFastopenGetCtx(tcp, sk);
  if (!keys) return 0;
  const search: Cookie = { len: -1, val: new Uint8Array(TCP_FASTOPEN_COOKIE_SIZE) };
  let foc = valid;
  for (let i = 0; i < keys.length; i++) {
    tcpFastopenCookieGenCipher(skb, keys[i], foc.val);
    foc.len = TCP_FASTOPEN_COOKIE_SIZE;
    if (orig.fastopenLen === TCP_FASTOPEN_COOKIE_SIZE && Buffer.compare(orig.fastopenCookie.subarray(0, TCP_FASTOPEN_COOKIE_SIZE), foc.val) === 0) return i + 1;
    foc = search;
  }
  return 0;
}

// --- the listener's queue -----------------------------------------------------------------

/** fastopen_queue_tune: at most `backlog` children before their handshake ends (capped by somaxconn). */
export function fastopenQueueTune(tcp: TcpProto, sk: TcpSock, backlog: number): void {
  (sk.fastopenq ??= new FastopenQueue()).maxQlen = Math.min(backlog >>> 0, tcp.sysctl.somaxconn);
}

/**
 * inet_listen's part: under TFO_SERVER_WO_SOCKOPT1 (and TFO_SERVER_ENABLE)
 * every new listener does Fast Open with listen()'s backlog, unless
 * TCP_FASTOPEN already set a queue length. (TFO_SERVER_WO_SOCKOPT2, 0x800,
 * which once took the length from the sysctl's high bits, is gone from
 * Linux: the bit is ignored.)
 */
export function tcpFastopenListen(tcp: TcpProto, sk: TcpSock, backlog: number): void {
  const f = tcp.sysctl.tcp_fastopen;
  if (f & TFO_SERVER_WO_SOCKOPT1 && f & TFO_SERVER_ENABLE && !sk.fastopenq?.maxQlen) {
    fastopenQueueTune(tcp, sk, backlog);
    tcpFastopenInitKeyOnce(tcp);
  }
}

/**
 * tcp_fastopen_queue_check: may the listener make one more child? A full
 * queue frees the oldest reset child once its 60 s are over, else counts
 * TCPFastOpenListenOverflow.
 */
function tcpFastopenQueueCheck(tcp: TcpProto, sk: TcpSock): boolean {
  const fq = sk.fastopenq;
  if (!fq || fq.maxQlen === 0) return false;
  if (fq.qlen >= fq.maxQlen) {
    const req1 = fq.rst[0];
    if (!req1 || req1.tfoRstExpires > tcp.now()) {
      tcp.mibs.TcpExt.TCPFastOpenListenOverflow++;
      return false;
    }
    fq.rst.shift();
    fq.qlen--;
  }
  return true;
}

/**
 * reqsk_fastopen_remove: the child no longer needs its request (the
 * handshake ended, or the child is gone). A child reset after accept()
 * while its listener still listens keeps its place in the queue for 60 s.
 */
export function reqskFastopenRemove(tcp: TcpProto, sk: TcpSock, req: TcpRequestSock, reset: boolean): void {
  const lsk = req.listener;
  const fq = lsk.fastopenq!;
  sk.fastopenRsk = null;
  fq.qlen--;
  req.tfoListener = false;
  // Not accepted yet: it is still the accept queue's.
  if (sk.parent !== null) return;
  if (!reset || lsk.state !== TCP_LISTEN) return;
  req.tfoRstExpires = tcp.now() + TFO_RST_HOLD_MS;
  fq.rst.push(req);
  fq.qlen++;
}

/** tcp_passive_fastopen: a Fast Open child whose handshake has not ended (it may send and be read). */
export function tcpPassiveFastopen(sk: TcpSock): boolean {
  return sk.state === TCP_SYN_RECV && sk.fastopenRsk !== null;
}

// --- the SYN --------------------------------------------------------------------------------

/**
 * tcp_fastopen_create_child: the full socket, from the SYN alone, through
 * the family's syn_recv_sock; straight onto the accept queue, in
 * SYN_RECV, with the SYN's data queued for the reader and acked by the
 * SYN-ACK, and the SYN-ACK's retransmission on the child's own timer.
 */
function tcpFastopenCreateChild(
  tcp: TcpProto,
  sk: TcpSock,
  skb: SkBuff,
  req: TcpRequestSock,
  synRecvSock: (tcp: TcpProto, req: TcpRequestSock, skb: SkBuff) => TcpSock | null,
): TcpSock | null {
  const tcb = tcpSkbCb(skb);
  req.numRetrans = 0;
  req.numTimeout = 0;
  const child = synRecvSock(tcp, req, skb);
  if (!child) return null;
  sk.fastopenq!.qlen++;
  child.fastopenRsk = req;
  req.tfoListener = true;
  // RFC 7323: the window of a SYN is never scaled.
  child.sndWnd = tcb.window;
  child.maxWindow = child.sndWnd;
  child.pending = ICSK_TIME_RETRANS;
  tcp.time.timers.mod(child.retransmitTimer, tcp.now() + TCP_TIMEOUT_INIT);
  inetCskReqskQueueAdd(tcp, sk, child);
  // tcp_fastopen_add_skb: the SYN's data, without the SYN, for the reader.
  child.rcvNxt = seqAdd(tcb.seq, 1);
  if (tcb.endSeq !== child.rcvNxt && tcb.dataLen > 0) {
    const seg = rcvSegCopy(tcp.rcvPages, child.rcvNxt, tcb.endSeq, skb.buf, tcb.dataOff, tcb.dataLen, false);
    skForcedMemSchedule(child, seg.truesize);
    child.receiveQueue.push(seg);
    rcvSegCharge(child, seg.truesize);
    child.rmemAlloc += tcb.dataLen;
    child.rcvNxt = tcb.endSeq;
    child.synDataAcked = true;
    child.bytesReceived = tcb.dataLen;
  }
  req.tfoRcvNxt = child.rcvNxt;
  child.rcvWup = child.rcvNxt;
  return child;
}

/**
 * tcp_try_fastopen, for tcp_conn_request: returns the child when the SYN
 * makes one (the caller sends the SYN-ACK for it), else null. `foc` is the
 * SYN's Fast Open option as parsed; on return it is what the SYN-ACK
 * carries: the valid cookie (for a request, a bad cookie, or a SYN the
 * backup key's cookie opened), or len -1 for none.
 */
export function tcpTryFastopen(
  tcp: TcpProto,
  sk: TcpSock,
  skb: SkBuff,
  req: TcpRequestSock,
  foc: TcpOptionsReceived,
  synRecvSock: (tcp: TcpProto, req: TcpRequestSock, skb: SkBuff) => TcpSock | null,
): TcpSock | null {
  const tcb = tcpSkbCb(skb);
  const ext = tcp.mibs.TcpExt;
  const synData = tcb.endSeq !== seqAdd(tcb.seq, 1);
  const f = tcp.sysctl.tcp_fastopen;
  if (foc.fastopenLen === 0) ext.TCPFastOpenCookieReqd++;
  if (!(f & TFO_SERVER_ENABLE && (synData || foc.fastopenLen >= 0) && tcpFastopenQueueCheck(tcp, sk))) {
    foc.fastopenLen = -1;
    return null;
  }
  // Only a SYN Fast Open may take gets this far (a plain SYN to a plain listener allocates nothing here).
  const valid: Cookie = { len: -1, val: new Uint8Array(TCP_FASTOPEN_COOKIE_SIZE) };
  let ret = 0;
  let open = synData && (f & TFO_SERVER_COOKIE_NOT_REQD) !== 0;
  if (!open) {
    if (foc.fastopenLen === 0) {
      tcpFastopenCookieGen(tcp, sk, skb, valid);
    } else if (foc.fastopenLen > 0) {
      ret = tcpFastopenCookieGenCheck(tcp, sk, skb, foc, valid);
      if (!ret) ext.TCPFastOpenPassiveFail++;
      else open = true;
    }
  }
  if (open) {
    const child = tcpFastopenCreateChild(tcp, sk, skb, req, synRecvSock);
    if (child) {
      if (ret === 2) {
        // Opened by the backup key: the SYN-ACK hands out the primary's cookie.
        setFoc(foc, valid);
        ext.TCPFastOpenPassiveAltKey++;
      } else {
        foc.fastopenLen = -1;
      }
      ext.TCPFastOpenPassive++;
      child.synFastopenChild = true;
      return child;
    }
    ext.TCPFastOpenPassiveFail++;
  }
  setFoc(foc, valid);
  return null;
}

/** *foc = valid_foc, keeping the form (experimental or not) the SYN used. */
function setFoc(foc: TcpOptionsReceived, valid: Cookie): void {
  foc.fastopenLen = valid.len;
  if (valid.len > 0) foc.fastopenCookie.set(valid.val.subarray(0, valid.len));
}

// --- the child until its handshake ends ------------------------------------------------

/** tcpFastopenCheckReq's verdicts. */
export const TFO_REQ_OK = 0;
export const TFO_REQ_DISCARD = 1;
/** Answer the segment with a reset. */
export const TFO_REQ_RESET = 2;
/** A valid RST: the caller resets the child (tcp_reset). */
export const TFO_REQ_RST = 3;

/**
 * tcp_check_req for a Fast Open child (fastopen true): a retransmitted SYN
 * gets the SYN-ACK again; a segment outside the request's window an ACK;
 * a RST ends the child, a new SYN is reset; without ACK it is dropped.
 * Anything else goes on through tcp_rcv_state_process.
 */
export function tcpFastopenCheckReq(tcp: TcpProto, sk: TcpSock, skb: SkBuff): number {
  const req = sk.fastopenRsk!;
  const tcb = tcpSkbCb(skb);
  const o = tcb.opt;
  let flg = tcb.tcpFlags;
  const pawsReject = req.tstampOk && o.sawTstamp && !(flg & TCPHDR_RST) && ((req.tsRecent - o.rcvTsval) | 0) > 1;
  if (tcb.seq === req.rcvIsn && (flg & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST)) === TCPHDR_SYN && !pawsReject) {
    // inet_rtx_syn_ack.
    tcpSendSynack(tcp, req);
    req.numRetrans++;
    tcp.mibs.TcpExt.TCPSynRetrans++;
    tcp.mibs.Tcp.RetransSegs++;
    return TFO_REQ_DISCARD;
  }
  const rcvNxt = req.tfoRcvNxt;
  const eWin = seqAdd(rcvNxt, req.rcvWnd);
  const inWindow = tcb.seq === rcvNxt || (after(tcb.endSeq, rcvNxt) && before(tcb.seq, eWin)) || (tcb.seq === eWin && tcb.seq === tcb.endSeq);
  if (pawsReject || !inWindow) {
    if (!(flg & TCPHDR_RST)) {
      tcpSendAckRaw(tcp, req, sk.sndNxt, rcvNxt, req.rcvWnd >> req.rcvWscale, req.tstampOk, req.tsOff, req.tsRecent, req.tos);
    }
    return TFO_REQ_DISCARD;
  }
  if (o.sawTstamp && !after(tcb.seq, rcvNxt)) req.tsRecent = o.rcvTsval;
  // The SYN's own sequence number: out of the window that starts after it.
  if (tcb.seq === req.rcvIsn) flg &= ~TCPHDR_SYN;
  if (flg & (TCPHDR_RST | TCPHDR_SYN)) {
    tcp.mibs.Tcp.AttemptFails++;
    if (!(flg & TCPHDR_RST)) return TFO_REQ_RESET;
    reqskFastopenRemove(tcp, sk, req, true);
    return TFO_REQ_RST;
  }
  if (!(flg & TCPHDR_ACK)) return TFO_REQ_DISCARD;
  return TFO_REQ_OK;
}

/**
 * tcp_rcv_synrecv_state_fastopen: the handshake ended: the SYN-ACK's RTT
 * (through the caller's tcp_rtt_estimator), the request goes, and the
 * retransmit timer now guards the data sent meanwhile.
 */
export function tcpRcvSynrecvStateFastopen(tcp: TcpProto, sk: TcpSock, rttEstimator: (tcp: TcpProto, sk: TcpSock, mrttUs: number) => void): void {
  const req = sk.fastopenRsk!;
  // tcp_synack_rtt_meas: a SYN-ACK sent once times the round trip.
  if (!sk.srttUs && !req.numRetrans) rttEstimator(tcp, sk, (tcp.now() - req.synAt) * 1000);
  sk.retransmits = 0;
  sk.retransStamp = 0;
  reqskFastopenRemove(tcp, sk, sk.fastopenRsk!, false);
  tcpRearmRto(tcp, sk);
}

/**
 * tcp_fastopen_synack_timer: the child's retransmit timer while the
 * handshake is open resends the SYN-ACK (one retry more than
 * tcp_synack_retries, as the child may have been accepted already); from
 * the second timeout on, what the child sent meanwhile is in loss
 * recovery (the caller's tcp_enter_loss), as tcp_init_transfer would have
 * lowered the cwnd. Returns false when the retries are spent (the
 * caller's tcp_write_err).
 */
export function tcpFastopenSynackTimer(tcp: TcpProto, sk: TcpSock, req: TcpRequestSock, enterLoss: (tcp: TcpProto, sk: TcpSock) => void): boolean {
  const maxRetries = tcp.sysctl.tcp_synack_retries + 1;
  if (req.numTimeout >= maxRetries) return false;
  if (sk.retransmits === 1) enterLoss(tcp, sk);
  tcpSendSynack(tcp, req);
  req.numRetrans++;
  tcp.mibs.TcpExt.TCPSynRetrans++;
  tcp.mibs.Tcp.RetransSegs++;
  req.numTimeout++;
  // tcp_update_rto_stats.
  if (!sk.retransmits) sk.totalRtoRecoveries++;
  sk.retransmits++;
  sk.totalRto++;
  if (!sk.retransStamp) sk.retransStamp = tcp.now();
  sk.pending = ICSK_TIME_RETRANS;
  tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + Math.min(TCP_TIMEOUT_INIT * 2 ** req.numTimeout, TCP_RTO_MAX));
  return true;
}

// --- socket options ----------------------------------------------------------------------

/**
 * do_tcp_setsockopt's TCP_FASTOPEN (a listener's queue length: on a socket
 * that is closed or listening, >= 0, else EINVAL) and TCP_FASTOPEN_KEY (16
 * or 32 bytes, any TCP socket). Other names: -ENOPROTOOPT.
 */
export function tcpFastopenSetsockopt(tcp: TcpProto, sk: TcpSock, optname: number, optval: Buffer): number {
  if (optname === TCP_FASTOPEN_KEY) {
    if (optval.length !== TCP_FASTOPEN_KEY_BUF_LENGTH && optval.length !== TCP_FASTOPEN_KEY_LENGTH) return -EINVAL;
    const backup = optval.length === TCP_FASTOPEN_KEY_BUF_LENGTH ? optval.subarray(TCP_FASTOPEN_KEY_LENGTH) : null;
    tcpFastopenResetCipher(tcp, sk, optval.subarray(0, TCP_FASTOPEN_KEY_LENGTH), backup);
    return 0;
  }
  if (optname !== TCP_FASTOPEN) return -ENOPROTOOPT;
  if (optval.length < 4) return -EINVAL;
  const val = optval.readInt32LE(0);
  if (val < 0 || (sk.state !== TCP_CLOSE && sk.state !== TCP_LISTEN)) return -EINVAL;
  tcpFastopenInitKeyOnce(tcp);
  fastopenQueueTune(tcp, sk, val);
  return 0;
}

/** do_tcp_getsockopt's TCP_FASTOPEN (max_qlen) and TCP_FASTOPEN_KEY (the socket's own keys, none: empty). */
export function tcpFastopenGetsockopt(tcp: TcpProto, sk: TcpSock, optname: number): Buffer | number {
  if (optname === TCP_FASTOPEN_KEY) return tcpFastopenGetCipher(tcp, sk);
  if (optname === TCP_FASTOPEN) return sockOptInt(sk.fastopenq?.maxQlen ?? 0);
  return -ENOPROTOOPT;
}
