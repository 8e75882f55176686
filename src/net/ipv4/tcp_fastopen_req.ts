/**
 * Fast Open's data of the active side, below the sockets and the protocol
 * that hold them (include/net/tcp.h's struct tcp_fastopen_cookie and
 * struct tcp_fastopen_request, tcp_metrics.c's struct tcp_fastopen_metrics,
 * the namespace's tfo_active_disable_* of struct netns_ipv4). The code is
 * in tcp_fastopen_active.ts.
 */

/** TCP_FASTOPEN_COOKIE_MIN / MAX: the lengths a cookie may have (even, 4 to 16). */
export const TCP_FASTOPEN_COOKIE_MIN = 4;
export const TCP_FASTOPEN_COOKIE_MAX = 16;

/** struct tcp_fastopen_cookie: len -1 none, 0 a request, else the cookie's bytes; exp the experimental option. */
export class TcpFastopenCookie {
  constructor(public len = -1) {}
  exp = false;
  readonly val = new Uint8Array(TCP_FASTOPEN_COOKIE_MAX);

  copyFrom(c: TcpFastopenCookie): void {
    this.len = c.len;
    this.exp = c.exp;
    this.val.set(c.val);
  }
}

/**
 * struct tcp_fastopen_request: the send whose data rides in the SYN
 * (data and size; copied what the SYN took), and the cookie to send.
 */
export class TcpFastopenRequest {
  /** Zeroed as kzalloc leaves it: a cookie request unless the cache has a cookie. */
  readonly cookie = new TcpFastopenCookie(0);
  data: Uint8Array | null = null;
  size = 0;
  copied = 0;
}

/** struct tcp_fastopen_metrics: what the cache keeps per destination. */
export class TcpFastopenMetrics {
  mss = 0;
  /** 0: the RFC 7413 option; 1: try the experimental one (the server ignored ours); 2: back to the RFC's. */
  tryExp = 0;
  synLoss = 0;
  lastSynLoss = 0;
  /** tcpm_suck_dst leaves it empty (len 0). */
  readonly cookie = new TcpFastopenCookie(0);
}

/**
 * The per-namespace state of the active side: the tcp_metrics cache's
 * Fast Open part, keyed by (saddr, daddr) as tcp_metrics keys its blocks,
 * and tfo_active_disable_times/stamp of the blackhole detection.
 */
export class TcpFastopenActiveState {
  /** In use order, the least recently set first: past maxEntries the oldest goes, as tcp_metrics reclaims its oldest block. */
  readonly cache = new Map<string, TcpFastopenMetrics>();
  /** The cache's bound (Linux's hash holds 16384 buckets of up to 5 blocks on a large machine). */
  maxEntries = 16384;
  disableTimes = 0;
  disableStamp = 0;
}
