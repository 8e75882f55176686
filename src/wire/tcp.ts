/** TCP header (RFC 9293), read in place. */
export const TCP_HLEN = 20;
export const TCPHDR_FIN = 0x01;
export const TCPHDR_SYN = 0x02;
export const TCPHDR_RST = 0x04;
export const TCPHDR_PSH = 0x08;
export const TCPHDR_ACK = 0x10;
export const TCPHDR_URG = 0x20;
export const TCPHDR_ECE = 0x40;
export const TCPHDR_CWR = 0x80;

export const tcpSource = (b: Buffer, o: number): number => (b[o] << 8) | b[o + 1];
export const tcpDest = (b: Buffer, o: number): number => (b[o + 2] << 8) | b[o + 3];
export const tcpSeq = (b: Buffer, o: number): number => b.readUInt32BE(o + 4);
export const tcpAckSeq = (b: Buffer, o: number): number => b.readUInt32BE(o + 8);
/** Header length in bytes. */
export const tcpDoff = (b: Buffer, o: number): number => (b[o + 12] >>> 4) << 2;
export const tcpFlags = (b: Buffer, o: number): number => b[o + 13];
export const tcpWindow = (b: Buffer, o: number): number => (b[o + 14] << 8) | b[o + 15];

export function tcpHeader(
  b: Buffer,
  o: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  doff: number,
  flags: number,
  window: number,
): void {
  b[o] = sport >>> 8;
  b[o + 1] = sport & 255;
  b[o + 2] = dport >>> 8;
  b[o + 3] = dport & 255;
  b.writeUInt32BE(seq >>> 0, o + 4);
  b.writeUInt32BE(ack >>> 0, o + 8);
  b[o + 12] = (doff >>> 2) << 4;
  b[o + 13] = flags;
  b[o + 14] = window >>> 8;
  b[o + 15] = window & 255;
  b[o + 16] = 0;
  b[o + 17] = 0;
  b[o + 18] = 0;
  b[o + 19] = 0;
}

/** Option kinds and lengths (include/net/tcp.h). */
export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WINDOW = 3;
export const TCPOPT_SACK_PERM = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;
/** Fast Open (RFC 7413) and its pre-RFC experimental form: kind 254 with magic 0xF989. */
export const TCPOPT_FASTOPEN = 34;
export const TCPOPT_EXP = 254;
export const TCPOPT_FASTOPEN_MAGIC = 0xf989;
export const TCPOLEN_FASTOPEN_BASE = 2;
export const TCPOLEN_EXP_FASTOPEN_BASE = 4;
/** Cookie lengths a Fast Open option may carry (include/net/tcp.h). */
export const TCP_FASTOPEN_COOKIE_MIN = 4;
export const TCP_FASTOPEN_COOKIE_MAX = 16;
export const TCPOLEN_MSS = 4;
export const TCPOLEN_WINDOW = 3;
export const TCPOLEN_SACK_PERM = 2;
export const TCPOLEN_TIMESTAMP = 10;
export const TCPOLEN_TSTAMP_ALIGNED = 12;
export const TCPOLEN_SACK_BASE_ALIGNED = 4;
export const TCPOLEN_SACK_PERBLOCK = 8;
/** The largest window scale (RFC 7323 2.3). */
export const TCP_MAX_WSCALE = 14;

/** The options of one segment (struct tcp_options_received's per-segment part), parsed in place. */
export class TcpOptionsReceived {
  sawTstamp = false;
  rcvTsval = 0;
  rcvTsecr = 0;
  /** The MSS option, 0 if none. */
  mssClamp = 0;
  /** -1: no window scale option. */
  sndWscale = -1;
  sackOk = false;
  /** SACK blocks: start/end pairs. */
  numSacks = 0;
  readonly sackStart = new Uint32Array(4);
  readonly sackEnd = new Uint32Array(4);
  /**
   * The Fast Open option of a SYN or SYN-ACK (struct tcp_fastopen_cookie):
   * -1 none (or malformed), 0 a cookie request, else the cookie's length in
   * fastopenCookie; fastopenExp when it came as the experimental option.
   */
  fastopenLen = -1;
  fastopenExp = false;
  readonly fastopenCookie = Buffer.alloc(TCP_FASTOPEN_COOKIE_MAX);
  clear(): void {
    this.fastopenLen = -1;
    this.sawTstamp = false;
    this.mssClamp = 0;
    this.sndWscale = -1;
    this.sackOk = false;
    this.numSacks = 0;
  }
}

/**
 * tcp_parse_options: fill `o` from the options of the header at `th`
 * (`doff` bytes long, flags `flags`). Malformed lengths end parsing, as
 * Linux does; MSS, window scale and SACK-permitted count only on a SYN
 * that does not arrive on an established connection (`estab`).
 */
export function tcpParseOptions(b: Buffer, th: number, doff: number, flags: number, estab: boolean, o: TcpOptionsReceived): void {
  o.clear();
  let i = th + TCP_HLEN;
  const end = th + doff;
  const synOpts = (flags & TCPHDR_SYN) !== 0 && !estab;
  while (i < end) {
    const kind = b[i];
    if (kind === TCPOPT_EOL) return;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return;
    const len = b[i + 1];
    if (len < 2 || i + len > end) return;
    switch (kind) {
      case TCPOPT_MSS:
        if (len === TCPOLEN_MSS && synOpts) {
          const mss = (b[i + 2] << 8) | b[i + 3];
          if (mss) o.mssClamp = mss;
        }
        break;
      case TCPOPT_WINDOW:
        if (len === TCPOLEN_WINDOW && synOpts) o.sndWscale = Math.min(b[i + 2], TCP_MAX_WSCALE);
        break;
      case TCPOPT_TIMESTAMP:
        if (len === TCPOLEN_TIMESTAMP) {
          o.sawTstamp = true;
          o.rcvTsval = b.readUInt32BE(i + 2);
          o.rcvTsecr = b.readUInt32BE(i + 6);
        }
        break;
      case TCPOPT_SACK_PERM:
        if (len === TCPOLEN_SACK_PERM && synOpts) o.sackOk = true;
        break;
      case TCPOPT_SACK:
        if (len >= TCPOLEN_SACK_PERBLOCK + 2 && (len - 2) % TCPOLEN_SACK_PERBLOCK === 0) {
          const n = Math.min((len - 2) / TCPOLEN_SACK_PERBLOCK, 4);
          for (let k = 0; k < n; k++) {
            o.sackStart[k] = b.readUInt32BE(i + 2 + 8 * k);
            o.sackEnd[k] = b.readUInt32BE(i + 6 + 8 * k);
          }
          o.numSacks = n;
        }
        break;
      case TCPOPT_FASTOPEN:
        tcpParseFastopenOption(b, i + TCPOLEN_FASTOPEN_BASE, len - TCPOLEN_FASTOPEN_BASE, flags, false, o);
        break;
      case TCPOPT_EXP:
        // Only the Fast Open use of the shared experimental kind (RFC 6994's magic) is ours.
        if (len >= TCPOLEN_EXP_FASTOPEN_BASE && ((b[i + 2] << 8) | b[i + 3]) === TCPOPT_FASTOPEN_MAGIC)
          tcpParseFastopenOption(b, i + TCPOLEN_EXP_FASTOPEN_BASE, len - TCPOLEN_EXP_FASTOPEN_BASE, flags, true, o);
        break;
    }
    i += len;
  }
}

/**
 * tcp_parse_fastopen_option: only on a SYN; an odd length or one outside
 * 4..16 bytes is a malformed cookie (-1), a zero length a cookie request.
 */
function tcpParseFastopenOption(b: Buffer, at: number, len: number, flags: number, exp: boolean, o: TcpOptionsReceived): void {
  if ((flags & TCPHDR_SYN) === 0 || len < 0 || len & 1) return;
  if (len >= TCP_FASTOPEN_COOKIE_MIN && len <= TCP_FASTOPEN_COOKIE_MAX) b.copy(o.fastopenCookie, 0, at, at + len);
  else if (len !== 0) len = -1;
  o.fastopenLen = len;
  o.fastopenExp = exp;
}

/** Options to write on one segment (struct tcp_out_options). */
export class TcpOutOptions {
  mss = 0;
  /** Window scale, -1: none. */
  ws = -1;
  sackPerm = false;
  ts = false;
  tsval = 0;
  tsecr = 0;
  /** SACK blocks to send (from the socket), count. */
  numSacks = 0;
  sacks: Uint32Array | null = null;
  /** A Fast Open option (OPTION_FAST_OPEN_COOKIE): -1 none, 0 a cookie request, else the cookie's length. */
  fastopenLen = -1;
  fastopenExp = false;
  /** The cookie's bytes, fastopenLen of them (the caller's buffer: nothing is copied until written). */
  fastopenCookie: Uint8Array | null = null;
}

/** The Fast Open option's aligned length on the wire (tcp_syn_options' "need"). */
export function tcpFastopenOptionSize(len: number, exp: boolean): number {
  return (len + (exp ? TCPOLEN_EXP_FASTOPEN_BASE : TCPOLEN_FASTOPEN_BASE) + 3) & ~3;
}

/** The SYN-ACK echoes a cookie in the form (experimental or not) the SYN used (tcp_synack_options' opts->fastopen_cookie). */
export function tcpSynackFoc(o: TcpOutOptions, foc: TcpOptionsReceived): void {
  o.fastopenLen = foc.fastopenLen;
  o.fastopenExp = foc.fastopenExp;
  o.fastopenCookie = foc.fastopenCookie;
}

/** The options' length on the wire (a multiple of 4). */
export function tcpOptionsSize(o: TcpOutOptions): number {
  let n = 0;
  if (o.mss) n += TCPOLEN_MSS;
  if (o.ts) n += TCPOLEN_TSTAMP_ALIGNED;
  else if (o.sackPerm) n += 4;
  if (o.ws >= 0) n += 4;
  if (o.numSacks) n += TCPOLEN_SACK_BASE_ALIGNED + o.numSacks * TCPOLEN_SACK_PERBLOCK;
  if (o.fastopenLen >= 0) n += tcpFastopenOptionSize(o.fastopenLen, o.fastopenExp);
  return n;
}

/** tcp_options_write: Linux's order, so a capture reads as Linux's does. */
export function tcpOptionsWrite(b: Buffer, at: number, o: TcpOutOptions): void {
  if (o.mss) {
    b[at++] = TCPOPT_MSS;
    b[at++] = TCPOLEN_MSS;
    b.writeUInt16BE(o.mss, at);
    at += 2;
  }
  if (o.ts) {
    if (o.sackPerm) {
      b[at++] = TCPOPT_SACK_PERM;
      b[at++] = TCPOLEN_SACK_PERM;
    } else {
      b[at++] = TCPOPT_NOP;
      b[at++] = TCPOPT_NOP;
    }
    b[at++] = TCPOPT_TIMESTAMP;
    b[at++] = TCPOLEN_TIMESTAMP;
    b.writeUInt32BE(o.tsval >>> 0, at);
    b.writeUInt32BE(o.tsecr >>> 0, at + 4);
    at += 8;
  } else if (o.sackPerm) {
    b[at++] = TCPOPT_NOP;
    b[at++] = TCPOPT_NOP;
    b[at++] = TCPOPT_SACK_PERM;
    b[at++] = TCPOLEN_SACK_PERM;
  }
  if (o.ws >= 0) {
    b[at++] = TCPOPT_NOP;
    b[at++] = TCPOPT_WINDOW;
    b[at++] = TCPOLEN_WINDOW;
    b[at++] = o.ws;
  }
  if (o.numSacks && o.sacks) {
    b[at++] = TCPOPT_NOP;
    b[at++] = TCPOPT_NOP;
    b[at++] = TCPOPT_SACK;
    b[at++] = 2 + o.numSacks * 8;
    for (let i = 0; i < o.numSacks; i++) {
      b.writeUInt32BE(o.sacks[2 * i] >>> 0, at);
      b.writeUInt32BE(o.sacks[2 * i + 1] >>> 0, at + 4);
      at += 8;
    }
  }
  if (o.fastopenLen >= 0) {
    // Last, as Linux writes it; a 2-mod-4 length is padded with two NOPs after the cookie.
    const len = o.fastopenLen + (o.fastopenExp ? TCPOLEN_EXP_FASTOPEN_BASE : TCPOLEN_FASTOPEN_BASE);
    if (o.fastopenExp) {
      b[at++] = TCPOPT_EXP;
      b[at++] = len;
      b[at++] = TCPOPT_FASTOPEN_MAGIC >>> 8;
      b[at++] = TCPOPT_FASTOPEN_MAGIC & 255;
    } else {
      b[at++] = TCPOPT_FASTOPEN;
      b[at++] = len;
    }
    for (let i = 0; i < o.fastopenLen; i++) b[at++] = o.fastopenCookie![i];
    if ((len & 3) === 2) {
      b[at++] = TCPOPT_NOP;
      b[at++] = TCPOPT_NOP;
    }
  }
}
