/**
 * Plays a packetdrill script against the stack in-process, on the virtual
 * clock: the stack runs on an in-memory link whose device offers TSO like
 * packetdrill's TUN device; `<` packets are built and delivered, `>` lines
 * are matched field by field against what the stack sent, with
 * packetdrill's rules (time tolerance, adding-up of consecutive outbound
 * segments, relative sequence numbers, TS val/ecr); system calls run on the
 * stack's socket calls, blocking ones retried on the socket's wake-ups.
 */
import { basename, dirname } from 'node:path';
import { Stack } from '../../src/net/stack.js';
import { MemLink } from '../../src/drivers/memlink.js';
import { PcapWriter } from '../../src/drivers/pcap.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import { NEIGH_UPDATE_F_ADMIN, NEIGH_UPDATE_F_OVERRIDE, NUD_PERMANENT, neighHash6 } from '../../src/net/core/neighbour.js';
import { tcpClose, tcpRecvErrqueue } from '../../src/net/ipv4/tcp.js';
import { type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { eth, inetPacket, parse, tcp as tcpFrame, type Parsed } from '../lib/frames.js';
import { formatPacket, parseScript, ParseError, type Event, type Expr, type IcmpSpec, type PacketSpec, type Script, type SyscallSpec, type TcpOpt } from './parse.js';
import { runShell, RegistryTarget, ShellFailed, Unsupported, type ShellEnv } from './shell.js';
import { procNetTcp } from './procnet.js';
import { RunFiles } from './files.js';
import { AssertionFailed, PyError, runPython } from './pyexpr.js';
import { IcmpNameError, icmpErrorMessage } from './icmp.js';
import { CubicParams, type TcpCubicOps } from '../../src/net/ipv4/tcp_cubic.js';
import { tcpGetInfo, type TcpInfo } from '../../src/net/ipv4/tcp_info.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import { tcpMetricsFlushAll } from '../../src/net/ipv4/tcp_fastopen_active.js';
import { checkRecvErr, EP_PRIVATE_BITS, familySymbol } from './errqueue.js';
import {
  ADDRESS_OPTIONS,
  ERRNO_BY_NAME,
  ERRNO_NAME,
  GATEWAY_IP,
  GATEWAY_IP6,
  GW_MAC,
  IPV6_RUN_MTU,
  LOCAL_IP,
  LOCAL_IP6,
  LOCAL_MAC,
  PY_CONSTS,
  REMOTE_IP,
  REMOTE_IP6,
  REMOTE_PORT,
  SCRIPT_PORT,
  SYMBOLS,
  type DrillFamily,
} from './symbols.js';
import { exprStr, SYSCALLS, type CallResult, type Fd, type Pending, type SockFd, type SyscallRun } from './syscalls.js';

export { DRILL_FAMILIES, type DrillFamily } from './symbols.js';

/**
 * tcp_cubic's module parameters a script may write (Linux reads these at
 * run time; beta, bic_scale and initial_ssthresh feed constants fixed at
 * load and are not offered). They are process-wide, like a module's: a run
 * restores what it changed when it ends.
 */
const CUBIC_PARAMS: Record<string, keyof CubicParams> = {
  hystart: 'hystart',
  hystart_detect: 'hystartDetect',
  hystart_low_window: 'hystartLowWindow',
  hystart_ack_delta_us: 'hystartAckDeltaUs',
  fast_convergence: 'fastConvergence',
  tcp_friendliness: 'tcpFriendliness',
};

/**
 * Where the script's sequence 0 lies on the wire for the peer. packetdrill
 * sends a SYN's seq as written (the peer's ISN) and every later seq, ack
 * of ours and SACK block relative to it (remote_seq_script_to_live_offset);
 * the runner adds this base to all of them.
 */
const REMOTE_ISN = 1_000_000;
/** The time a system call takes to reach the stack, and again to return (ms): 1 us, a fast syscall's order. */
const SYSCALL_COST_MS = 0.001;
/** Virtual time of the script's 0 (ms); not 0, which some fields read as "never". */
const T0 = 1000;

const TCP_FLAGS = 'FSRP.UEW';
function flagBits(s: string): number {
  let b = 0;
  for (const c of s) b |= 1 << TCP_FLAGS.indexOf(c);
  return b;
}
function flagStr(b: number): string {
  // As the scripts write them: S F R P U E W, then '.' for ACK ("S.", "FP.", "SEW", "-" for none).
  let s = '';
  for (const c of 'SFRPUEW') if (b & (1 << TCP_FLAGS.indexOf(c))) s += c;
  if (b & 0x10) s += '.';
  return s || '-';
}

const ECN_BITS: Record<string, number> = { noecn: 0, ect0: 2, ect1: 1, ce: 3 };

export type Outcome = { status: 'pass'; notes: string[] } | { status: 'fail'; message: string; notes: string[] } | { status: 'unsupported'; reason: string };

export class ScriptFailure extends Error {}

/** A name a `%{ }%` block reads that neither TCP_INFO nor the block defines: the script fails. */
class MissingName extends Error {}

/** One outbound TCP segment, as the runner saw it (relative numbers). */
export interface OutSeg {
  /** Script time, seconds. */
  at: number;
  /** The sending port: packetdrill sniffs only the socket under test's. */
  sport: number;
  flags: string;
  seq: number;
  end: number;
  len: number;
  ack: number;
  win: number;
  opts: string;
  tos: number;
  /** IPv4 header checksum correct. */
  ipCsumOk: boolean;
  tcpCsumOk: boolean;
}

/** The link: frames kept in order with the virtual time they left at. */
class DrillLink extends MemLink {
  readonly times: number[] = [];
  constructor(readonly clock: VirtualTime) {
    super();
  }
  override xmit(buf: Buffer, off: number, len: number): boolean {
    const ok = super.xmit(buf, off, len);
    if (ok) this.times.push(this.clock.now());
    return ok;
  }
  takeTimed(): { at: number; frame: Buffer }[] {
    const frames = this.take();
    const times = this.times.splice(0, this.times.length);
    return frames.map((frame, i) => ({ at: times[i], frame }));
  }
}

export interface RunOptions {
  /** --tolerance_usecs override (the script's own line wins, as in packetdrill). */
  toleranceUsecs?: number;
  strictSegments?: boolean;
  pcap?: string;
  /** Seed of the stack's randomness. */
  seed?: number;
  /** Play the script over IPv4 (default) or IPv6. */
  family?: DrillFamily;
  /**
   * Diagnosis only (`npm run drill -- --ignore-code`): skip `%{ }%` blocks so
   * the packets of a script needing TCP_INFO can be checked. Such a run
   * never counts as a pass: the outcome is 'unsupported' with what it showed.
   */
  ignoreCode?: boolean;
}

export class DrillRun {
  readonly time = new VirtualTime(T0);
  readonly link = new DrillLink(this.time);
  readonly stack: Stack;
  readonly script: Script;
  readonly file: string;
  readonly sysctl: RegistryTarget;
  readonly notes: string[] = [];
  readonly family: DrillFamily;
  /** Every outbound TCP segment, in order (for traces and --pcap-less debugging). */
  readonly outLog: OutSeg[] = [];
  #queue: OutSeg[] = [];
  #fds = new Map<number, Fd>();
  #nextFd = 3;
  #pending: Pending | null = null;
  #stackIsn: number | null = null;
  /**
   * packetdrill numbers a SYN's sequence absolutely and every other segment
   * relative to its connection's ISN, as tcpdump does: the peer's ISN is the
   * script's last inbound SYN's (script.remote_isn), ours the script's last
   * outbound SYN's (script.local_isn).
   */
  #remoteSynSeq = 0;
  #scriptLocalIsn = 0;
  /** A listener made since the last passive connection: packetdrill gives each passive socket its own remote port. */
  #newListener = false;
  #passiveConns = 0;
  #tsOffset: number | null = null;
  #localPort = SCRIPT_PORT;
  /** The socket a connect or a Fast Open send opened last. */
  #sut: SockFd | null = null;
  #remotePort = REMOTE_PORT;
  #tolerance: number;
  #strict: boolean;
  #tsTickUs: number | null = null;
  /** --tcp_ts_ecr_scaled: each connection's TS clock starts at the script's values again (inbound ecr maps to its own TS val). */
  #tsEcrScaled = false;
  #prevTime = 0;
  #pyVars = new Map<string, number>();
  #pcap: PcapWriter | null = null;
  #shell: ShellEnv;
  #ignoreCode: boolean;
  #skippedCode = 0;
  /** The script's /tmp files, in a directory of the run's own. */
  readonly files = new RunFiles();

  /** The run as its system calls (syscalls.ts) see it. */
  readonly #cx: SyscallRun = (() => {
    const run = this;
    return {
      get tcp() {
        return run.stack.tcp;
      },
      get family() {
        return run.family;
      },
      get files() {
        return run.files;
      },
      get time() {
        return run.time;
      },
      get fds() {
        return run.#fds;
      },
      get nextFd() {
        return run.#nextFd;
      },
      set nextFd(n: number) {
        run.#nextFd = n;
      },
      sym: (ev, e) => run.#sym(ev, e),
      fd: (ev, e) => run.#fd(ev, e),
      sock: (ev, e) => run.#sock(ev, e),
      fail: (ev, msg) => run.#fail(ev, msg),
      allocFd: (ev) => run.#allocFd(ev),
      newSockFd: (sk, fd) => run.#newSockFd(sk, fd),
      collect: () => run.#collect(),
      bound: (port) => {
        run.#localPort = port;
      },
      listening: () => {
        run.#newListener = true;
      },
      activeOpen: (f) => {
        run.#sut = f;
        if (run.#tsEcrScaled) run.#tsOffset = null;
        run.#localPort = f.sk.num;
        run.#remotePort = SCRIPT_PORT;
      },
      recvErr: (ev, f, msg, len) => run.#recvErr(ev, f, msg, len),
    };
  })();

  /**
   * The names packetdrill's wrappers define with -D (Linux's
   * tools/testing/selftests/net/packetdrill/ksft_runner.sh): the server
   * cookies that tcp_fastopen_key a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4 gives
   * for the family's addresses, and the error queue's cmsg level and type.
   * A v4-mapped run uses IPv4 addresses on an AF_INET6 socket.
   */
  readonly defines: Map<string, string>;

  constructor(src: string, file: string, opts: RunOptions = {}) {
    this.file = file;
    this.family = opts.family ?? 'ipv4';
    const v4 = this.family !== 'ipv6';
    this.defines = new Map([
      ['TFO_COOKIE', v4 ? '3021b9d889017eeb' : 'c1d1e9742a47a9bc'],
      ['TFO_COOKIE_ZERO', v4 ? 'b7c12350a90dc8f5' : '82af1a8f9a205c34'],
      ['CMSG_LEVEL_IP', this.family === 'ipv4' ? 'SOL_IP' : 'SOL_IPV6'],
      ['CMSG_TYPE_RECVERR', this.family === 'ipv4' ? 'IP_RECVERR' : 'IPV6_RECVERR'],
      ['CODE', 'host_unreachable'],
    ]);
    this.script = parseScript(src);
    const v6 = this.family === 'ipv6';
    this.stack = new Stack(
      {
        ifname: 'tun0',
        mac: LOCAL_MAC,
        mtu: v6 ? IPV6_RUN_MTU : 1500,
        ipv4: [{ addr: LOCAL_IP, prefix: 16 }],
        gateway: GATEWAY_IP,
        ...(v6 ? { ipv6: [{ addr: Buffer.from(LOCAL_IP6), prefix: 64 }], ipv6Gateway: Buffer.from(GATEWAY_IP6) } : {}),
      },
      this.link,
      this.time,
      new SeededRandom(opts.seed ?? 42),
    );
    if (v6) {
      // packetdrill's TUN address is usable at once (no DAD wait) and nothing solicits routers.
      this.stack.ipv6.cnf.accept_dad = 0;
      this.stack.ipv6.cnf.rtr_solicits = 0;
    }
    // packetdrill's TUN device offers TSO: the stack's own super-segments reach the wire.
    this.stack.dev.tso = true;
    this.stack.up();
    this.link.takeTimed();
    this.stack.neighAddPermanent(GATEWAY_IP, GW_MAC);
    if (v6) {
      const tbl = this.stack.ipv6.ndisc.tbl;
      const key = neighHash6(GATEWAY_IP6);
      const n = tbl.lookup(key, GATEWAY_IP6) ?? tbl.create(key, GATEWAY_IP6);
      if (!n || !tbl.update(n, GW_MAC, NUD_PERMANENT, NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_ADMIN)) throw new Error('static IPv6 neighbour for the gateway');
    }
    if (opts.pcap) {
      this.#pcap = new PcapWriter(opts.pcap, () => this.time.wall());
      this.stack.dev.tap = this.#pcap;
    }

    this.#ignoreCode = opts.ignoreCode ?? false;
    this.sysctl = new RegistryTarget(this.stack);
    this.#shell = {
      sysctl: this.sysctl,
      setTso: (on) => (this.stack.dev.tso = on),
      flushTcpMetrics: () => tcpMetricsFlushAll(this.stack.tcp),
      dir: dirname(file),
      saved: [],
      nstat: { counters: () => this.stack.counters(), history: null },
      setModuleParam: (mod, param, value) => {
        const key = mod === 'tcp_cubic' ? CUBIC_PARAMS[param] : undefined;
        if (!key) return `parameter ${mod}.${param} not in the stack`;
        if (!/^\d+$/.test(value)) return `bad value '${value}'`;
        // The run's own stack's CUBIC: nothing to restore after it.
        (this.stack.tcp.congestion.find('cubic') as TcpCubicOps).params[key] = Number(value);
        return null;
      },
      readProc: (path) => (path === '/proc/net/tcp' || path === '/proc/net/tcp6' ? procNetTcp(this.stack.tcp, path.endsWith('6')) : null),
      tmpPath: (path) => this.files.path(path),
      setQdisc: (dropAll) => (this.stack.dev.qdiscDropAll = dropAll === true),
      setFq: (on) => this.stack.dev.setFq(on ? this.stack.time : null),
    };
    const o = this.script.options;
    let tolUs = opts.toleranceUsecs ?? 4000;
    if (o.has('tolerance_usecs')) tolUs = Number(o.get('tolerance_usecs'));
    this.#tolerance = tolUs / 1000;
    this.#strict = opts.strictSegments ?? o.has('strict_segments');
    if (o.has('tcp_ts_tick_usecs')) this.#tsTickUs = Number(o.get('tcp_ts_tick_usecs'));
    this.#tsEcrScaled = o.has('tcp_ts_ecr_scaled');
    for (const k of o.keys()) {
      if (ADDRESS_OPTIONS[k]) {
        // The wrapper's command line names the addresses and wins over the script's own lines, as
        // packetdrill lets it: an IPv4 address in an IPv6 script runs with the IPv6 one. What then
        // fails on Linux (the corpus README lists them) is what depended on the address: a literal
        // cookie computed for IPv4 (fastopen/server/opt34), not the run itself (opt34/pure-syn-data).
        const want = ADDRESS_OPTIONS[k][v4 ? 0 : 1];
        if (o.get(k) !== want) this.notes.push(`--${k}=${o.get(k)}: the ${this.family} run uses ${want}, as the command line says`);
        continue;
      }
      if (!['tolerance_usecs', 'tcp_ts_tick_usecs', 'tcp_ts_ecr_scaled', 'strict_segments', 'ip_version'].includes(k)) throw new Unsupported(`option --${k}`);
    }
    // A script that names its family runs in that family only.
    if (o.has('ip_version') && o.get('ip_version') !== this.family) throw new Unsupported(`--ip_version=${o.get('ip_version')}`);
  }

  /** Script time now, ms. */
  now(): number {
    return this.time.now() - T0;
  }

  // --- time -------------------------------------------------------------------------

  /** Move the clock to script time `t` (ms), firing timers in order and retrying a woken call after each step. */
  advanceTo(t: number): void {
    const target = T0 + t;
    const timers = this.time.timers;
    for (let guard = 0; ; guard++) {
      const next = timers.next();
      if (next > target) break;
      if (guard === 1_000_000) throw new ScriptFailure(`${basename(this.file)}: a million timer expiries before ${secs(t)} sec: the stack is spinning`);
      this.time.advance(Math.max(0, next - this.time.now()));
      if (timers.next() === next && next <= this.time.now()) timers.run(this.time.now());
      this.#afterActivity();
    }
    if (target > this.time.now()) this.time.advance(target - this.time.now());
    this.#collect();
  }

  /** Run the clock timer by timer until `done()` holds or script time `limit` (ms) is reached. */
  #stepUntil(limit: number, done: () => boolean): void {
    while (!done()) {
      const next = this.time.timers.next() - T0;
      if (next > limit) {
        this.advanceTo(limit);
        return;
      }
      this.advanceTo(next);
    }
  }

  #collect(): void {
    for (const { at, frame } of this.link.takeTimed()) {
      const p = parse(frame);
      // TCP only: ARP, neighbour discovery and MLD are not the script's.
      if (!p.tcp || !(p.ip || p.ip6)) continue;
      this.#queue.push(this.#outSeg(p, frame, at));
    }
  }

  #outSeg(p: Parsed, frame: Buffer, at: number): OutSeg {
    const t = p.tcp!;
    // Each SYN the stack sends starts a connection: its ISN is the new origin (live.local_isn).
    if (t.flags & 0x02) this.#stackIsn = t.seq;
    const isn = this.#stackIsn ?? 0;
    const seq = (t.seq - isn) >>> 0;
    const len = t.payload.length;
    const s: OutSeg = {
      at: (at - T0) / 1000,
      sport: t.sport,
      flags: flagStr(t.flags),
      seq,
      // As packetdrill writes them: SYN and FIN take no room in start:end(len).
      end: (seq + len) >>> 0,
      len,
      ack: t.flags & 0x10 ? (t.ack - REMOTE_ISN - (t.flags & 0x02 ? 0 : this.#remoteSynSeq)) >>> 0 : 0,
      win: t.win,
      opts: this.#relOpts(t.options),
      // IPv6's traffic class where IPv4 has its TOS; its header, having no checksum, checked for
      // version, TCP as the next header and the payload length.
      tos: p.ip ? p.ip.tos : p.ip6!.tclass,
      ipCsumOk: p.ip ? p.ip.csumOk : frame[14] >> 4 === 6 && p.ip6!.nexthdr === 6 && p.ip6!.plen === frame.length - 14 - 40,
      tcpCsumOk: t.csumOk,
    };
    this.outLog.push(s);
    return s;
  }

  /** Options as packetdrill prints them, sack blocks relative to the peer's ISN. */
  #relOpts(o: string): string {
    return o.replace(/sack ([\d: ]+)/, (_m, b: string) => 'sack ' + b.split(' ').map((x) => x.split(':').map((n) => ((Number(n) - REMOTE_ISN - this.#remoteSynSeq) >>> 0).toString()).join(':')).join(' '));
  }

  // --- running ----------------------------------------------------------------------

  run(): Outcome {
    try {
      this.#precheck();
      for (const c of this.script.init) this.#shellCmd(c.cmd, c.line);
      for (const ev of this.script.events) this.#event(ev);
      if (this.#pending) this.#finishPending();
      for (const c of this.script.cleanup) this.#shellCmd(c.cmd, c.line);
      this.#collect();
      if (this.#skippedCode) return { status: 'unsupported', reason: `packets and calls match; ${this.#skippedCode} %{ }% blocks not checked (--ignore-code)` };
      return { status: 'pass', notes: [...this.notes] };
    } catch (e) {
      if (e instanceof Unsupported) return { status: 'unsupported', reason: e.message };
      if (e instanceof ScriptFailure) return { status: 'fail', message: e.message, notes: [...this.notes] };
      if (e instanceof ParseError) return { status: 'fail', message: `${this.file}:${e.line}: ${e.message}`, notes: [] };
      throw e;
    } finally {
      this.#pcap?.close();
      this.#pcap = null;
      this.files.remove();
    }
  }

  /** What makes a script unsupported before it runs. */
  #precheck(): void {
    for (const ev of this.script.events) {
      if (ev.action.k === 'packet' && ev.action.p.proto !== 'tcp' && !(ev.action.p.proto === 'icmp' && ev.action.p.icmp)) throw new Unsupported(`${ev.action.p.proto.toUpperCase()} packets`);
    }
  }

  #shellCmd(cmd: string, line: number): void {
    try {
      runShell(this.#shell, cmd);
    } catch (e) {
      // A command that exits non-zero fails the script, as packetdrill's system() check does.
      if (e instanceof ShellFailed) throw new ScriptFailure(`${basename(this.file)}:${line}: ${e.message}`);
      throw e;
    }
  }

  #fail(ev: Event, msg: string): never {
    throw new ScriptFailure(`${basename(this.file)}:${ev.line}: ${msg}`);
  }

  /** Expected time of an event (ms) and the end of its range. */
  #times(ev: Event): { start: number; end: number } {
    const tm = ev.time;
    if (tm.type === 'any') return { start: this.now(), end: Infinity };
    const base = tm.type === 'rel' ? this.#prevTime : 0;
    const start = base + ms(tm.t);
    const end = tm.end !== undefined ? base + ms(tm.end) : start;
    return { start, end };
  }

  #tol(start: number): number {
    return Math.max(this.#tolerance, 0.125 * Math.max(0, start - this.#prevTime));
  }

  #event(ev: Event): void {
    const { start, end } = this.#times(ev);
    const a = ev.action;
    if (a.k === 'packet' && a.p.dir === '>') {
      this.#outbound(ev, a.p, start, end);
      return;
    }
    if (a.k === 'syscall' && this.#pending) this.#finishPending();
    if (start > this.now()) this.advanceTo(start);
    else if (ev.time.type !== 'any' && this.now() > start + this.#tol(start)) {
      // Already past it (packetdrill's check_event_time after wait_for_event).
      const what = a.k === 'packet' ? 'inbound packet' : a.k === 'syscall' ? 'system call start' : a.k === 'cmd' ? 'command' : 'data collection for code';
      this.#fail(ev, `timing error: expected ${what} at ${secs(start)} sec but happened at ${secs(this.now())} sec; tolerance ${secs(this.#tol(start))} sec`);
    }
    const prev = this.#prevTime;
    if (ev.time.type !== 'any') this.#prevTime = start;
    switch (a.k) {
      case 'packet':
        this.#inbound(ev, a.p);
        break;
      case 'syscall':
        this.#syscall(ev, a.s, start, prev);
        break;
      case 'cmd':
        this.#shellCmd(a.cmd, ev.line);
        break;
      case 'code':
        this.#code(ev, a.code);
        break;
    }
  }

  #afterActivity(): void {
    this.#collect();
    const p = this.#pending;
    if (p && p.woken) {
      p.woken = false;
      const r = p.attempt(p.timedOut);
      if (r) this.#complete(p, r);
    }
  }

  // --- packets ------------------------------------------------------------------------

  #inbound(ev: Event, p: PacketSpec): void {
    this.#collect();
    if (p.icmp) return this.#inboundIcmp(ev, p.icmp);
    const bits = flagBits(p.flags);
    const syn = (bits & 0x02) !== 0;
    if (syn) this.#remoteSynSeq = p.seq >>> 0;
    if (syn && !(bits & 0x10) && this.#newListener) {
      this.#newListener = false;
      if (this.#passiveConns++ > 0) this.#remotePort++;
    }
    const isn = this.#stackIsn ?? 0;
    const opts = p.opts ? this.#optBytes(p.opts, isn) : undefined;
    if (p.opts === null) this.#fail(ev, 'inbound packet with <...> options');
    const v6 = this.family === 'ipv6';
    const src = v6 ? REMOTE_IP6 : REMOTE_IP;
    const dst = v6 ? LOCAL_IP6 : LOCAL_IP;
    const seg = tcpFrame({
      sport: this.#remotePort,
      dport: this.#localPort,
      seq: (REMOTE_ISN + p.seq + (syn ? 0 : this.#remoteSynSeq)) >>> 0,
      ack: p.ack !== undefined ? (isn + p.ack - (syn ? this.#scriptLocalIsn : 0)) >>> 0 : 0,
      flags: bits,
      win: p.win ?? 65535,
      payload: Buffer.alloc(p.len),
      options: opts,
      urg: p.urg,
      src,
      dst,
    });
    const tos = p.ecn ? ECN_BITS[p.ecn] : 0;
    if (tos === undefined) this.#fail(ev, `unknown ECN mark [${p.ecn}]`);
    const frame = eth(LOCAL_MAC, GW_MAC, v6 ? 0x86dd : 0x0800, inetPacket(v6 ? AF_INET6 : AF_INET, { src, dst, proto: 6, payload: seg, tos }));
    this.stack.receive(frame, 0, frame.length);
    this.#afterActivity();
  }

  #inboundIcmp(ev: Event, spec: IcmpSpec): void {
    // Names the wrapper defines (-D CODE=host_unreachable) stand for packetdrill's names.
    const s = { ...spec, type: this.defines.get(spec.type) ?? spec.type, code: spec.code === undefined ? undefined : (this.defines.get(spec.code) ?? spec.code) };
    const v6 = this.family === 'ipv6';
    const local = v6 ? LOCAL_IP6 : LOCAL_IP;
    const remote = v6 ? REMOTE_IP6 : REMOTE_IP;
    let msg: Buffer;
    try {
      msg = icmpErrorMessage(v6, s, { local, remote, sport: this.#localPort, dport: this.#remotePort, seq: ((this.#stackIsn ?? 0) + (s.seq ?? 0)) >>> 0 });
    } catch (e) {
      if (e instanceof IcmpNameError) this.#fail(ev, e.message);
      throw e;
    }
    const frame = eth(LOCAL_MAC, GW_MAC, v6 ? 0x86dd : 0x0800, inetPacket(v6 ? AF_INET6 : AF_INET, { src: remote, dst: local, proto: v6 ? 58 : 1, payload: msg }));
    this.stack.receive(frame, 0, frame.length);
    this.#afterActivity();
  }

  #optBytes(opts: TcpOpt[], isn: number): Buffer {
    const b: number[] = [];
    for (const o of opts) {
      switch (o.kind) {
        case 'nop':
          b.push(1);
          break;
        case 'eol':
          b.push(0);
          break;
        case 'mss':
          b.push(2, 4, (o.v! >> 8) & 255, o.v! & 255);
          break;
        case 'wscale':
          b.push(3, 3, o.v!);
          break;
        case 'sackOK':
          b.push(4, 2);
          break;
        case 'TS': {
          // The peer echoes what the stack sent: the script's ecr is in the script's TS clock.
          const ecr = this.#tsOffset !== null ? (o.ecr! + this.#tsOffset) >>> 0 : o.ecr!;
          b.push(8, 10, ...u32(o.val!), ...u32(ecr));
          break;
        }
        case 'md5':
          // As the script gives it: packetdrill injects the digest bytes unchanged.
          b.push(19, 2 + o.hex!.length, ...o.hex!);
          break;
        case 'sack':
          b.push(5, 2 + 8 * o.blocks!.length);
          for (const [l, r] of o.blocks!) b.push(...u32((isn + l) >>> 0), ...u32((isn + r) >>> 0));
          break;
        case 'fo':
        case 'foexp': {
          const cookie = this.#cookie(o);
          if (o.kind === 'fo') b.push(34, 2 + cookie.length, ...cookie);
          else b.push(254, 4 + cookie.length, 0xf9, 0x89, ...cookie);
          break;
        }
        default:
          throw new Unsupported(`inbound TCP option ${o.kind}`);
      }
    }
    while (b.length % 4) b.push(0);
    return Buffer.from(b);
  }

  #outbound(ev: Event, p: PacketSpec, start: number, end: number): void {
    const tol = this.#tol(start);
    const deadline = end === Infinity ? this.now() + 600_000 : end + tol;
    const first = this.#nextOut(deadline);
    if (!first) {
      this.#fail(ev, `error handling packet: timed out waiting for outbound packet at ${secs(start)} sec\nscript packet: ${secs(start)} ${formatPacket(p)}`);
    }
    let got: OutSeg = first;
    // packetdrill adds up consecutive segments to match a larger expected one
    // (a stack without TSO can pass): each part must have the previous one's
    // headers (PSH, FIN, CWR and seq aside) and size, the last may be shorter;
    // the sum takes the last part's headers and time, the first's seq and CWR.
    if (!this.#strict && p.len > got.len && got.len > 0) {
      let prev = got;
      let len = got.len;
      for (;;) {
        if (len >= p.len) break;
        const nx = this.#peekOut(deadline);
        if (!nx) break;
        const why = fragmentMismatch(prev, nx, len, p.len);
        if (why) {
          this.#queue.shift();
          const script = `${secs(start)} ${formatPacket(p)}`;
          this.#fail(ev, `error handling packet: ${why}\nscript packet:  ${script}\nactual #1:  ${secs(first.at * 1000)} ${fmtOut(first)}\nactual next:  ${secs(nx.at * 1000)} ${fmtOut(nx)}`);
        }
        this.#queue.shift();
        len += nx.len;
        prev = nx;
      }
      if (prev !== got) {
        const cwr = flagBits(got.flags.replace('-', '')) & flagBits('W');
        const flags = (flagBits(prev.flags.replace('-', '')) & ~flagBits('W')) | cwr;
        got = { ...prev, seq: got.seq, len, flags: flagStr(flags), end: (got.seq + len) >>> 0 };
      }
    }
    const at = got.at * 1000;
    const actual = `${secs(at)} ${fmtOut(got)}`;
    const script = `${secs(start)} ${formatPacket(p)}`;
    const fail = (what: string): never =>
      this.#fail(ev, `error handling packet: ${what}\nscript packet:  ${script}\nactual packet:  ${actual}`);
    if (!got.ipCsumOk) fail(`bad outbound ${this.family === 'ipv6' ? 'IPv6 header' : 'IPv4 checksum'}`);
    if (!got.tcpCsumOk) fail('bad outbound TCP checksum');
    // Fields first, then time, as packetdrill reports.
    const want = flagStr(flagBits(p.flags));
    if (got.flags.includes('S') && want.includes('S')) {
      // Our SYN's number is the script's to choose (script.local_isn).
      this.#scriptLocalIsn = p.seq >>> 0;
      got.seq = (got.seq + p.seq) >>> 0;
      got.end = (got.end + p.seq) >>> 0;
    }
    if (got.seq !== (p.seq >>> 0)) fail(`live packet field tcp_seq: expected: ${p.seq} (0x${p.seq.toString(16)}) vs actual: ${got.seq} (0x${got.seq.toString(16)})`);
    if (got.len !== p.len) fail(`live packet payload: expected ${p.len} bytes vs actual ${got.len} bytes`);
    if (got.flags !== want) fail(`live packet field tcp_flags: expected: ${want} vs actual: ${got.flags}`);
    if (p.ack !== undefined && got.ack !== (p.ack >>> 0)) fail(`live packet field tcp_ack_seq: expected: ${p.ack} (0x${p.ack.toString(16)}) vs actual: ${got.ack} (0x${got.ack.toString(16)})`);
    if (p.win !== undefined && got.win !== p.win) fail(`live packet field tcp_window: expected: ${p.win} (0x${p.win.toString(16)}) vs actual: ${got.win} (0x${got.win.toString(16)})`);
    if (p.ecn !== undefined) {
      const e = ECN_BITS[p.ecn];
      if (e === undefined) fail(`unsupported ECN spec [${p.ecn}]`);
      if ((got.tos & 3) !== e) fail(`live packet field ip_ecn: expected: ${e} vs actual: ${got.tos & 3}`);
    }
    if (p.opts !== null) {
      const why = this.#matchOpts(p.opts ?? [], got.opts, at);
      if (why) fail(why);
    }
    if (at < start - tol || at > end + tol) {
      const range = end !== start ? `${secs(start)}~${secs(end)}` : secs(start);
      this.#fail(
        ev,
        `error handling packet: timing error: expected outbound packet at ${range} sec but happened at ${secs(at)} sec; tolerance ${secs(tol)} sec\nscript packet:  ${script}\nactual packet:  ${actual}`,
      );
    }
    // The next relative event counts from when the packet was seen (packetdrill's adjust_relative_event_times uses "now").
    this.#prevTime = Math.max(at, this.now());
    if (this.now() < at) this.advanceTo(at);
  }

  /** Take the next outbound segment, waiting on the clock until `deadline` (ms). */
  #nextOut(deadline: number): OutSeg | undefined {
    const s = this.#peekOut(deadline);
    if (s) this.#queue.shift();
    return s;
  }

  #peekOut(deadline: number): OutSeg | undefined {
    this.#collect();
    if (!this.#ownOut()) this.#stepUntil(deadline, () => (this.#collect(), this.#ownOut()));
    return this.#queue[0];
  }

  /** Whether the socket under test has sent something: an earlier connection's packets are skipped, as packetdrill skips them. */
  #ownOut(): boolean {
    while (this.#queue.length && this.#queue[0].sport !== this.#localPort) this.#queue.shift();
    return this.#queue.length > 0;
  }

  #matchOpts(want: TcpOpt[], got: string, atMs: number): string | null {
    const parts = got ? got.split(',') : [];
    if (parts.length !== want.length) return `live packet TCP options: expected: <${want.map(optStr).join(',')}> vs actual: <${got}>`;
    for (let i = 0; i < want.length; i++) {
      const w = want[i];
      const g = parts[i];
      if (w.kind === 'TS') {
        const m = /^TS val (\d+) ecr (\d+)$/.exec(g);
        if (!m) return `live packet TCP option ${i}: expected: ${optStr(w)} vs actual: ${g}`;
        const val = Number(m[1]);
        if (this.#tsOffset === null) this.#tsOffset = (val - w.val!) | 0;
        else if (this.#tsTickUs !== null) {
          // With --tcp_ts_tick_usecs the TS val clock is checked: ticks off times the tick within
          // max(tolerance, 12.5% of the time since the script's start) (packetdrill's rule).
          const exp = (w.val! + this.#tsOffset) >>> 0;
          const tolUs = Math.max(this.#tolerance * 1000, 0.125 * atMs * 1000);
          if (Math.abs((val - exp) | 0) * this.#tsTickUs > tolUs)
            return `bad outbound TCP timestamp value, tolerance ${Math.round(tolUs)}: expected TS val ${w.val} vs actual ${(val - this.#tsOffset) >>> 0}`;
        }
        // packetdrill does not check an outbound TS ecr (it remaps inbound ones).
        continue;
      }
      if (w.kind === 'fo' || w.kind === 'foexp') {
        const c = this.#cookie(w).toString('hex');
        if ((w.kind === 'fo' ? 'FO' : 'FOEXP') + (c ? ` ${c}` : '') !== g) return `live packet TCP options: expected: <${want.map(optStr).join(',')}> vs actual: <${got}>`;
        continue;
      }
      if (optStr(w) !== g) return `live packet TCP options: expected: <${want.map(optStr).join(',')}> vs actual: <${got}>`;
    }
    return null;
  }

  /** A Fast Open option's cookie bytes: hex in the script, or a name the run defines (packetdrill's -D). */
  #cookie(o: TcpOpt): Buffer {
    let hex = o.cookie ?? '';
    if (/^[A-Za-z_]\w*$/.test(hex) && !/^[0-9a-fA-F]+$/.test(hex)) {
      const v = this.defines.get(hex);
      if (v === undefined) throw new Unsupported(`symbol ${hex}`);
      hex = v;
    }
    if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Unsupported(`Fast Open cookie '${hex}'`);
    return Buffer.from(hex, 'hex');
  }

  // --- system calls ---------------------------------------------------------------

  #sym(ev: Event, e: Expr): number {
    switch (e.k) {
      case 'int':
        return e.v;
      case 'word': {
        const d = this.defines.get(e.v);
        const name = d ?? e.v;
        const v = SYMBOLS[name] ?? familySymbol(this.family !== 'ipv4', name) ?? ERRNO_BY_NAME.get(name);
        if (v === undefined) throw new Unsupported(`symbol ${e.v}`);
        return v;
      }
      case 'or':
        return e.items.reduce((a, x) => a | this.#sym(ev, x), 0) >>> 0;
      case 'list':
        if (e.items.length === 1) return this.#sym(ev, e.items[0]);
        break;
    }
    this.#fail(ev, `expected a number, got ${exprStr(e)}`);
  }

  #fd(ev: Event, e: Expr): Fd {
    const n = this.#sym(ev, e);
    const f = this.#fds.get(n);
    if (!f) this.#fail(ev, `fd ${n} is not open`);
    return f;
  }

  #sock(ev: Event, e: Expr): SockFd {
    const f = this.#fd(ev, e);
    if (f.kind !== 'sock') this.#fail(ev, `fd ${f.fd} is not a socket`);
    return f;
  }

  /**
   * Script fds are names: packetdrill maps the number the script expects
   * (`socket(...) = 4`) onto the live one, so the expected value is used when free.
   * A name the script uses again while its socket is still open is bound to the
   * new one; the old one stays open under a name no script line can reach.
   */
  #allocFd(ev: Event): number {
    const s = (ev.action as { s: SyscallSpec }).s;
    const want = s.ret.k === 'int' ? s.ret.v : -1;
    const old = want >= 0 ? this.#fds.get(want) : undefined;
    if (old && old.kind === 'sock') {
      this.#fds.delete(want);
      old.fd = 100_000 + want;
      while (this.#fds.has(old.fd)) old.fd++;
      this.#fds.set(old.fd, old);
    }
    if (want >= 0 && !this.#fds.has(want)) {
      this.#nextFd = Math.max(this.#nextFd, want + 1);
      return want;
    }
    while (this.#fds.has(this.#nextFd)) this.#nextFd++;
    return this.#nextFd++;
  }

  #newSockFd(sk: TcpSock, fd: number): SockFd {
    const f: SockFd = { kind: 'sock', fd, sk, nonblock: false };
    sk.wake = (_s, events) => this.#woken(f, events);
    this.#fds.set(f.fd, f);
    return f;
  }

  /** A socket's wake-up: a blocked call may go on; epoll items become ready. */
  #woken(f: SockFd, events: number): void {
    if (this.#pending) this.#pending.woken = true;
    for (const e of this.#fds.values()) {
      if (e.kind !== 'epoll') continue;
      const it = e.items.get(f.fd);
      // A one-shot item that fired is disarmed: no events until EPOLL_CTL_MOD (ep_poll_callback).
      if (it && it.events & ~EP_PRIVATE_BITS && (!events || events & it.events)) it.ready = true;
    }
  }

  #syscall(ev: Event, s: SyscallSpec, start: number, prev: number): void {
    const blockEnd = ev.time.blockEnd;
    // `+N...T`: T counts from the previous event, like N.
    const end = blockEnd === undefined ? start : (ev.time.type === 'rel' ? prev : 0) + ms(blockEnd);
    // A blocking call's return is checked with 12.5% of its own duration (packetdrill's verify_time from the start).
    const tol = Math.max(this.#tolerance, 0.125 * Math.max(0, end - start));
    const p: Pending = { ev, name: s.name, attempt: () => undefined, woken: false, timer: null, timedOut: false, start, end, tol };
    // A call takes a little time to reach the stack and to return, as a real one does under
    // packetdrill: what it sends leaves a moment after the event's time and is seen once the call
    // has returned, so an ACK scripted +N after it makes an RTT a hair over N, never a tie with
    // the handshake's (whose SYN-ACK leaves at the SYN's own time).
    this.advanceTo(this.now() + SYSCALL_COST_MS);
    const r = this.#call(ev, s, p);
    if (r) {
      this.#complete(p, r);
      // ... and as long again to return: the next relative event counts from its return (packetdrill's "now").
      this.advanceTo(this.now() + SYSCALL_COST_MS);
      this.#prevTime = this.now();
      return;
    }
    this.#pending = p;
    // A call not marked `...` must not block: packetdrill waits for it before the next event.
    if (blockEnd === undefined) this.#finishPending();
  }

  /** Wait for the blocked call to return (up to its end time plus tolerance). */
  #finishPending(): void {
    const p = this.#pending!;
    this.#stepUntil(p.end + p.tol, () => this.#pending !== p);
    if (this.#pending === p) {
      this.#pending = null;
      this.#fail(p.ev, `${p.name} call did not return by ${secs(p.end + p.tol)} sec (expected at ${secs(p.end)} sec); still blocked at ${secs(this.now())} sec`);
    }
  }

  #complete(p: Pending, r: CallResult): void {
    if (this.#pending === p) this.#pending = null;
    if (p.timer) this.time.timers.del(p.timer);
    const ev = p.ev;
    const s = (ev.action as { s: SyscallSpec }).s;
    const now = this.now();
    const wantRet = this.#sym(ev, s.ret);
    const got = r.errno ? `-1 with errno ${r.errno} (${ERRNO_NAME.get(r.errno) ?? '?'})` : String(r.ret);
    if (r.ret !== wantRet) this.#fail(ev, `runtime error in ${s.name} call: Expected result ${wantRet} but got ${got}`);
    if (wantRet === -1) {
      const want = s.errno ? ERRNO_BY_NAME.get(s.errno) : undefined;
      if (s.errno && want === undefined) throw new Unsupported(`errno name ${s.errno}`);
      if (want !== undefined && r.errno !== want) this.#fail(ev, `runtime error in ${s.name} call: Expected errno ${want} (${s.errno}) but got ${r.errno} (${ERRNO_NAME.get(r.errno!) ?? '?'})`);
    }
    r.check?.();
    if (Math.abs(now - p.end) > p.tol) {
      this.#fail(ev, `timing error: expected ${s.name} syscall to return at ${secs(p.end)} sec but happened at ${secs(now)} sec; tolerance ${secs(p.tol)} sec`);
    }
  }

  /** Run one call: its result now, or null after setting p.attempt to retry on wake-ups. */
  #call(ev: Event, s: SyscallSpec, p: Pending): CallResult | null {
    const handler = SYSCALLS.get(s.name);
    if (!handler) throw new Unsupported(`system call ${s.name}`);
    return handler(this.#cx, { ev, s, p, a: s.args, tcp: this.stack.tcp });
  }

  /** recvmsg(MSG_ERRQUEUE): never blocks (ip_recv_error); the result checked as packetdrill does (errqueue.ts). */
  #recvErr(ev: Event, f: SockFd, msg: Expr | null, len: number): CallResult {
    const r = tcpRecvErrqueue(f.sk, Buffer.alloc(len));
    if (typeof r === 'number') return { ret: -1, errno: -r };
    const epoch = this.time.wall() - this.time.now();
    return {
      ret: r.copied,
      check: () =>
        checkRecvErr(msg, r.flags, r.cmsgs, {
          sym: (e) => this.#sym(ev, e),
          scriptMs: (wall) => wall - epoch - T0,
          toleranceMs: this.#tolerance,
          fail: (m) => this.#fail(ev, `runtime error in recvmsg call: ${m}`),
        }),
    };
  }

  // --- %{ }% -----------------------------------------------------------------------

  #code(ev: Event, code: string): void {
    if (this.#ignoreCode) {
      this.#skippedCode++;
      return;
    }
    const sk = this.#lastSock();
    // One TCP_INFO snapshot per block, taken when it runs (packetdrill collects it at the event).
    let info: TcpInfo | null = null;
    const consts: Record<string, number> = { ...PY_CONSTS };
    try {
      runPython(code, this.#pyVars, (name) => {
        if (name in consts) return consts[name];
        if (name.startsWith('tcpi_')) {
          if (!sk) throw new MissingName('no socket for TCP_INFO');
          info ??= tcpGetInfo(this.stack.tcp, sk);
          const v = (info as unknown as Record<string, number | bigint>)[name];
          if (typeof v === 'number') return v;
          if (typeof v === 'bigint') return Number(v);
          throw new MissingName(`TCP_INFO has no ${name}`);
        }
        throw new MissingName(`name '${name}' is not defined`);
      });
    } catch (e) {
      if (e instanceof AssertionFailed) this.#fail(ev, `${e.message}`);
      if (e instanceof MissingName) this.#fail(ev, `error in Python code: ${e.message}`);
      // Python beyond the evaluator's subset is the runner's limit, not the stack's.
      if (e instanceof PyError) throw new Unsupported(`Python the evaluator does not read: ${e.message}`);
      throw e;
    }
  }

  /** The socket TCP_INFO is read from: packetdrill uses the last socket the script touched. */
  #lastSock(): TcpSock | null {
    // packetdrill reads the socket under test: the last one opened actively while it is open.
    if (this.#sut && this.#fds.get(this.#sut.fd) === this.#sut) return this.#sut.sk;
    let best: SockFd | null = null;
    for (const f of this.#fds.values()) if (f.kind === 'sock' && (!best || f.fd > best.fd)) best = f;
    return best?.sk ?? null;
  }

  /** Close every descriptor, as packetdrill does when it exits. */
  closeAll(): void {
    for (const f of [...this.#fds.values()].sort((x, y) => x.fd - y.fd)) if (f.kind === 'sock') tcpClose(this.stack.tcp, f.sk);
    this.#fds.clear();
    this.#collect();
  }
}

/** packetdrill's verify_packet_fragments: may `nx` continue the sum after `prev`? */
function fragmentMismatch(prev: OutSeg, nx: OutSeg, sofar: number, total: number): string | null {
  const strip = (f: string) => f.replace(/[PFW]/g, '');
  if (nx.seq !== prev.end) return `fragment tcp_seq: expected ${prev.end} vs actual ${nx.seq}`;
  if (strip(nx.flags) !== strip(prev.flags)) return `fragment tcp flags: expected ${prev.flags} vs actual ${nx.flags}`;
  if (nx.ack !== prev.ack) return `fragment tcp_ack_seq: expected ${prev.ack} vs actual ${nx.ack}`;
  if (nx.win !== prev.win) return `fragment tcp_window: expected ${prev.win} vs actual ${nx.win}`;
  if (nx.opts.replace(/TS val \d+/, '') !== prev.opts.replace(/TS val \d+/, '')) return `fragment TCP options: expected <${prev.opts}> vs actual <${nx.opts}>`;
  // Every part but the last has the first part's size.
  if (nx.len < total - sofar && nx.len !== prev.len)
    return `fragment payload: expected ${prev.len} bytes vs actual ${nx.len} bytes; total payload: expected ${total} bytes vs actual ${sofar + nx.len} bytes`;
  return null;
}

/** The script's NULL pointer. */
function u32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

/** Script seconds -> ms, rounded to the microsecond. */
function ms(s: number): number {
  return Math.round(s * 1e6) / 1e3;
}

function secs(msv: number): string {
  return (msv / 1000).toFixed(6);
}

function optStr(o: TcpOpt): string {
  switch (o.kind) {
    case 'fo':
    case 'foexp':
      return (o.kind === 'fo' ? 'FO' : 'FOEXP') + (o.cookie ? ` ${o.cookie}` : '');
    case 'mss':
    case 'wscale':
      return `${o.kind} ${o.v}`;
    case 'sack':
      return `sack ${o.blocks!.map(([a, b]) => `${a >>> 0}:${b >>> 0}`).join(' ')}`;
    case 'TS':
      return `TS val ${o.val} ecr ${o.ecr}`;
    case 'md5':
      return `md5 ${o.hex!.toString('hex')}`;
    default:
      return o.kind;
  }
}

export function fmtOut(s: OutSeg): string {
  return `${s.flags} ${s.seq}:${s.end}(${s.len})${s.flags.includes('.') ? ` ack ${s.ack}` : ''} win ${s.win}${s.opts ? ` <${s.opts}>` : ''}`;
}

export function runScript(src: string, file: string, opts: RunOptions = {}): { outcome: Outcome; run: DrillRun | null } {
  let run: DrillRun;
  try {
    run = new DrillRun(src, file, opts);
  } catch (e) {
    if (e instanceof Unsupported) return { outcome: { status: 'unsupported', reason: e.message }, run: null };
    if (e instanceof ParseError) return { outcome: { status: 'fail', message: `${basename(file)}:${e.line}: parse error: ${e.message}`, notes: [] }, run: null };
    if (e instanceof ScriptFailure) return { outcome: { status: 'fail', message: `${basename(file)}: ${e.message}`, notes: [] }, run: null };
    throw e;
  }
  return { outcome: run.run(), run };
}
