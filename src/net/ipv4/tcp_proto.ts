/**
 * The stack's TCP instance (what `struct net` holds for TCP plus the proto
 * struct): socket tables, sysctls, counters, the ISN and timestamp-offset
 * secrets, and the per-packet scratch objects the input path reuses.
 */
import type { TcpTracer } from './tcp_trace.js';
import { RcvPageCache, SndPagePool } from './tcp_rcvq.js';
import { siphash24, type SipKey } from '../../lib/siphash.js';
import type { TimeSource } from '../../lib/time.js';
import type { Random } from '../../lib/random.js';
import { IP_HLEN } from '../../wire/ipv4.js';
import { TCP_HLEN, TcpOutOptions } from '../../wire/tcp.js';
import type { Mibs } from '../core/snmp.js';
import { MAX_HEADER, SkBuff } from '../core/skbuff.js';
import type { Net } from '../core/net.js';
import { InetHashinfo } from './inet_hashtables.js';
import { TcpRequestSock, TcpSock, TcpSysctl, type TcpTimerFns, type TcpTimewaitSock, XMIT_SKB_ROOM } from './tcp_sock.js';
import { TcpCongRegistry } from './tcp_cong.js';
import { tcpCubicCreate } from './tcp_cubic.js';
import { tcpBbrCreate } from './tcp_bbr.js';
import { IPV6_HLEN } from '../../wire/ipv6.js';
import type { SockProt } from '../core/sock.js';
import { ProtoMemory } from '../core/proto_memory.js';
import { PercpuCounter } from '../core/percpu_counter.js';
import type { TcpFastopenActiveState } from './tcp_fastopen_req.js';

export type TcpHashedSock = TcpSock | TcpRequestSock | TcpTimewaitSock;

export class TcpProto {
  readonly sysctl = new TcpSysctl();
  /** The congestion controls sockets may select, CUBIC the default (and the fallback). */
  readonly congestion = new TcpCongRegistry();
  readonly hashinfo: InetHashinfo<TcpHashedSock>;
  /** Where tcpTransmit writes the options of the segment it builds (its struct tcp_out_options), and the SACK blocks with the D-SACK first. */
  readonly outOpts = new TcpOutOptions();
  readonly sackScratch = new Uint32Array(8);
  /** Where received payload is copied to (the receive and out-of-order queues' page fragments). */
  readonly rcvPages = new RcvPageCache();
  /** Where tcpSendmsg copies the user's bytes (the write queue's pages). */
  readonly sndPages = new SndPagePool();
  /**
   * The skb tcpTransmit builds every frame in (the driver copies it before
   * xmit returns; holders copy it, skbHold): no buffer per frame. Room for
   * the largest TSO super-segment and its headers.
   */
  readonly xmitSkb = tcpNewXmitSkb();
  /** xmitSkb is being sent (a segment built while it is, e.g. from inside the driver, gets its own). */
  xmitBusy = false;
  /** Whoever watches the tracepoints (tcp_trace.ts): null while nobody traces. */
  trace: TcpTracer | null = null;
  /** The per-ACK cwnd trace (net.ipv4.tcp_cwnd_trace): set by the daemon or a test to log or plot. */
  cwndTrace: ((sk: TcpSock, now: number, cwnd: number, ssthresh: number, caState: number, inFlight: number, rttUs: number) => void) | null = null;
  readonly mibs: Mibs;
  readonly time: TimeSource;
  /** Every full socket not yet destroyed, for `ss` and for orphan accounting. */
  readonly socks = new Set<TcpSock>();
  /** tcp_orphan_count: orphaned sockets (closed by their user, still finishing), against tcp_max_orphans. */
  readonly orphans = new PercpuCounter();
  /** The ISN a SYN reusing a TIME_WAIT 4-tuple must use (set by tcp_timewait_state_process). */
  twIsn = 0;
  /** Global challenge-ACK budget (tcp_challenge_ack_limit per second). */
  challengeTimestamp = 0;
  challengeCount = 0;
  /** The timer handlers of request and TIME_WAIT socks, bound to this stack once (made on first use): no closure per sock. */
  reqskTimerFn: ((r: TcpHashedSock) => void) | null = null;
  /** Fast Open's keys for the stack (net->ipv4.tcp_fastopen_ctx: SipHash keys, the primary first); null until set or first used. */
  fastopenKeys: SipKey[] | null = null;
  twKillFn: ((t: TcpHashedSock) => void) | null = null;
  /** tcp_prot for this stack's AF_INET TCP sockets (sk.prot), made once by tcp_ipv4.ts. */
  prot: SockProt<TcpSock> | null = null;
  /** tcpv6_prot for this stack's AF_INET6 TCP sockets, made once by ipv6/tcp_ipv6.ts. */
  prot6: SockProt<TcpSock> | null = null;
  /** Fast Open's active side: the cookie cache (tcp_metrics) and the blackhole state, made on first use. */
  fastopenActive: TcpFastopenActiveState | null = null;
  /** The socket timers' handlers (tcp_write_timer etc.), bound to this stack once by tcp_timer.ts. */
  timerFns: TcpTimerFns | null = null;
  /** tcp_memory_allocated, tcp_memory_pressure, tcp_mem: what all TCP sockets hold (tcp_prot.memory). */
  readonly mem: ProtoMemory;
  /** TIME_WAIT socks alive (tcp_death_row's tw_refcount), against tcp_max_tw_buckets. */
  readonly tw = new PercpuCounter();
  /** When tcp_check_oom last logged (net_info_ratelimited). */
  oomLogged = -Infinity;
  #pressureSince = 0;
  /** net_secret, ts_secret and syncookie_secret[2]: one SipHash key each. */
  #isnKey: SipKey;
  #tsKey: SipKey;
  #cookieKeys: [SipKey, SipKey];
  /** The message being hashed (at most two IPv6 addresses, the ports and a count): written in place, per SYN. */
  #msg = new Uint8Array(40);
  #msgView = new DataView(this.#msg.buffer);

  constructor(
    readonly stack: Net,
    readonly random: Random,
  ) {
    this.mibs = stack.mibs;
    this.time = stack.time;
    this.hashinfo = new InetHashinfo<TcpHashedSock>({ random: () => random.u32() });
    // One draw of 128 bits, as before; each secret is derived from it (a PRF keyed by it), so the
    // stack's other draws (ports, tests' seeded runs) stay where they were.
    const master = Uint32Array.of(random.u32(), random.u32(), random.u32(), random.u32());
    const derive = (tag: number): SipKey => {
      const k = new Uint32Array(4);
      const m = new Uint8Array(8);
      for (let i = 0; i < 4; i++) {
        m[0] = tag;
        m[1] = i;
        k[i] = siphash24(master, m, 8);
      }
      return k;
    };
    this.#isnKey = derive(1);
    this.#tsKey = derive(2);
    this.#cookieKeys = [derive(3), derive(4)];
    const cubic = tcpCubicCreate();
    this.congestion.register(cubic);
    this.congestion.fallback = cubic;
    this.congestion.register(tcpBbrCreate(random));
    const sys = this.sysctl;
    this.mem = new ProtoMemory(
      () => sys.tcp_mem,
      () => sys.tcp_rmem[0],
      () => sys.tcp_wmem[0],
      () => this.socks.size,
      // tcp_enter_memory_pressure / tcp_leave_memory_pressure: how often, and for how long (ms).
      (on) => {
        const ext = this.mibs.TcpExt;
        if (on) {
          ext.TCPMemoryPressures++;
          this.#pressureSince = this.now();
        } else {
          ext.TCPMemoryPressuresChrono += Math.round(this.now() - this.#pressureSince);
        }
      },
    );
  }

  /**
   * tcp_twsk_unique with tcp_tw_reuse: 1 reuses any TIME_WAIT 4-tuple whose
   * last timestamp is over a second old; 2 (the default) only on loopback,
   * which this stack's single device never is.
   */
  twReusable(tw: TcpHashedSock): boolean {
    const t = tw as TcpTimewaitSock;
    if (this.sysctl.tcp_tw_reuse !== 1 || !t.tstampOk) return false;
    return this.now() / 1000 - t.tsRecentStamp >= 1;
  }

  /** Milliseconds on the stack's clock. */
  now(): number {
    return this.time.clock.now();
  }

  /**
   * Our advertised MSS: the device MTU's less the network and TCP headers
   * (tcp_v6's is 20 less: the IPv6 header is 40 bytes), less a listener's
   * or socket's TCP_MAXSEG.
   */
  advmss(sk?: TcpSock, ipv6 = false): number {
    let mss = this.stack.dev.mtu - (ipv6 ? IPV6_HLEN : IP_HLEN) - TCP_HLEN;
    if (sk && sk.userMss && sk.userMss < mss) mss = sk.userMss;
    return mss;
  }

  /**
   * dst_mtu of a connection's route: the device MTU for IPv4 (this stack
   * keeps no IPv4 path-MTU cache), the IPv6 layer's path MTU for IPv6.
   */
  routeMtu(sk: TcpSock): number {
    const v6 = this.stack.ipv6Stub;
    if (sk.ipv6 && v6 !== null) return v6.pathMtu(sk.v6Daddr!);
    return this.stack.dev.mtu;
  }

  /**
   * Lay the tuple out for hashing: the IPv4 addresses (or the IPv6 ones when
   * sa6/da6 are given), then the ports as one word unless `ports` is false,
   * then `extra` words. Returns the message length.
   */
  #tuple(saddr: number, daddr: number, sport: number, dport: number, sa6: Uint8Array | null, da6: Uint8Array | null, ports: boolean, extra: number): number {
    const m = this.#msg;
    const v = this.#msgView;
    let n: number;
    if (sa6 !== null) {
      m.set(sa6, 0);
      m.set(da6!, 16);
      n = 32;
    } else {
      v.setUint32(0, saddr >>> 0, true);
      v.setUint32(4, daddr >>> 0, true);
      n = 8;
    }
    if (ports) {
      v.setUint32(n, ((sport << 16) | dport) >>> 0, true);
      n += 4;
    }
    if (extra >= 0) {
      v.setUint32(n, extra >>> 0, true);
      n += 4;
    }
    return n;
  }

  /**
   * secure_tcp_seq / secure_tcpv6_seq (RFC 6528): a keyed hash of the
   * 4-tuple plus a clock ticking every 64 ns, as Linux does. Per
   * connection, not per packet. sa6/da6: an IPv6 connection's addresses.
   */
  secureSeq(saddr: number, daddr: number, sport: number, dport: number, sa6: Uint8Array | null = null, da6: Uint8Array | null = null): number {
    const ticks = Math.floor(this.time.clock.wall() * 15625); // ms -> 64 ns units
    return (siphash24(this.#isnKey, this.#msg, this.#tuple(saddr, daddr, sport, dport, sa6, da6, true, -1)) + ticks) >>> 0;
  }

  /** cookie_hash / cookie_v6 hash: the keyed hash SYN cookies are built from (c selects one of two). */
  cookieHash(
    saddr: number,
    daddr: number,
    sport: number,
    dport: number,
    count: number,
    c: number,
    sa6: Uint8Array | null = null,
    da6: Uint8Array | null = null,
  ): number {
    return siphash24(this.#cookieKeys[c], this.#msg, this.#tuple(saddr, daddr, sport, dport, sa6, da6, true, count));
  }

  /**
   * secure_tcp_ts_off / secure_tcpv6_ts_off: a per-pair timestamp offset
   * (RFC 7323 5.4), as int32: it is only ever added modulo 2^32 (then
   * `>>> 0`), and an int32 stays a small integer in every socket's tsOff
   * where a uint32 above 2^31 made the field a boxed double in all of them.
   */
  tsOff(saddr: number, daddr: number, sa6: Uint8Array | null = null, da6: Uint8Array | null = null): number {
    return siphash24(this.#tsKey, this.#msg, this.#tuple(saddr, daddr, 0, 0, sa6, da6, false, -1)) | 0;
  }
}

function tcpNewXmitSkb(): SkBuff {
  const skb = new SkBuff(Buffer.allocUnsafe(MAX_HEADER + XMIT_SKB_ROOM), MAX_HEADER);
  skb.scratch = true;
  return skb;
}
