/**
 * Stack-wide settings by their Linux sysctl names (net.ipv4.tcp_sack,
 * net.ipv4.tcp_rmem, net.core.somaxconn, ...), mapped onto the stack's
 * TcpSysctl, IcmpSysctl, fragment and ARP neighbour parameters. Values are
 * strings in /proc/sys's form and units (seconds where Linux shows seconds,
 * "min default max" triples, the algorithm name for
 * tcp_congestion_control); each write is checked and a bad one is refused
 * with -EINVAL and a message naming the key. The API (`tapstack sysctl`),
 * the daemon's config file (`sysctl` object) and the packetdrill runner
 * all go through here.
 */
import type { Net } from './core/net.js';
import { TcpSysctl } from './ipv4/tcp_sock.js';
import { IcmpSysctl } from './ipv4/icmp.js';
import { NeighParms } from './core/neighbour.js';
import { Ipv6Devconf } from './ipv6/addrconf.js';
import { Icmpv6Sysctl } from './ipv6/icmp.js';
import './ipv4/tcp_cubic.js';
import { EINVAL, ENOENT, EPERM } from '../uapi.js';
import { UdpSysctl } from './ipv4/udp.js';
import { procTcpFastopenKeyGet, procTcpFastopenKeySet } from './ipv4/tcp_fastopen.js';

export interface SysctlEntry {
  readonly name: string;
  /** The value as /proc/sys shows it. */
  get(stack: Net): string;
  /** Set from the /proc/sys form: 0, or -EINVAL with `err.message` naming the key. Absent for read-only keys. */
  set?(stack: Net, value: string, err: { message: string }): number;
}

type Num = { [k: string]: unknown };

/** An integer setting on some object, shown as value/scale (e.g. ms stored, seconds shown). */
function intEntry(name: string, obj: (s: Net) => Num, field: string, min: number, max: number, scale = 1): SysctlEntry {
  return {
    name,
    get: (s) => String(Math.floor((obj(s)[field] as number) / scale)),
    set(s, value, err) {
      const v = value.trim();
      // proc_dointvec reads with base 0, as strtoul does: 0x hex, a leading 0 octal.
      const m = /^(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)$/.exec(v);
      if (!m) {
        err.message = `${name}: "${value}" is not an integer`;
        return -EINVAL;
      }
      const digits = m[2];
      const mag = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits[0] === '0' ? parseInt(digits, 8) : Number(digits);
      const n = m[1] ? -mag : mag;
      if (n < min || n > max) {
        err.message = `${name}: ${n} is out of range ${min}..${max}`;
        return -EINVAL;
      }
      obj(s)[field] = n * scale;
      return 0;
    },
  };
}

/** Three integers: "min default max" (tcp_rmem, tcp_wmem) or pages "min pressure max" (tcp_mem, udp_mem). */
function tripleEntry(name: string, obj: (s: Net) => Num, field: string): SysctlEntry {
  return {
    name,
    get: (s) => (obj(s)[field] as number[]).join('\t'),
    set(s, value, err) {
      const parts = value.trim().split(/\s+/);
      if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p))) {
        err.message = `${name}: "${value}" must be three integers "min default max"`;
        return -EINVAL;
      }
      const [a, b, c] = parts.map(Number);
      if (a < 1 || b < 1 || c < 1 || a > 0x7fffffff || b > 0x7fffffff || c > 0x7fffffff) {
        err.message = `${name}: "${value}": each value must be 1..2147483647`;
        return -EINVAL;
      }
      obj(s)[field] = [a, b, c];
      return 0;
    },
  };
}

const tcp = (s: Net): Num => s.tcp.sysctl as unknown as Num;
const icmp = (s: Net): Num => s.icmp.sysctl as unknown as Num;
const udp = (s: Net): Num => s.udp.sysctl as unknown as Num;
const frag = (s: Net): Num => s.frags.sysctl as unknown as Num;
const neigh = (s: Net): Num => s.arp.tbl.parms as unknown as Num;
const icmp6 = (s: Net): Num => s.ipv6.icmp.sysctl as unknown as Num;
const frag6 = (s: Net): Num => s.ipv6.frags.sysctl as unknown as Num;
const conf6 = (s: Net): Num => s.ipv6.cnf as unknown as Num;
const neigh6 = (s: Net): Num => s.ipv6.ndisc.tbl.parms as unknown as Num;
const INT_MAX = 0x7fffffff;
const UINT_MAX = 0xffffffff;

/** TCP integer settings: [name, min, max, scale (ms per shown unit)]. */
const TCP_INTS: [keyof TcpSysctl, number, number, number?][] = [
  ['tcp_timestamps', 0, 2],
  ['tcp_window_scaling', 0, 1],
  ['tcp_sack', 0, 1],
  ['tcp_dsack', 0, 1],
  ['tcp_syn_retries', 1, 127],
  ['tcp_syn_linear_timeouts', 0, 10],
  ['tcp_synack_retries', 0, 255],
  ['tcp_retries1', 0, 255],
  ['tcp_retries2', 0, 255],
  ['tcp_orphan_retries', 0, 255],
  ['tcp_fin_timeout', 0, INT_MAX / 1000, 1000],
  ['tcp_keepalive_time', 1, INT_MAX / 1000, 1000],
  ['tcp_keepalive_intvl', 1, INT_MAX / 1000, 1000],
  ['tcp_keepalive_probes', 1, 127],
  ['tcp_syncookies', 0, 2],
  ['tcp_max_syn_backlog', 1, INT_MAX],
  ['tcp_abort_on_overflow', 0, 1],
  ['tcp_min_tso_segs', 1, 255],
  ['tcp_pacing_ss_ratio', 0, 1000],
  ['tcp_pacing_ca_ratio', 0, 1000],
  ['tcp_tso_win_divisor', 0, 255],
  ['tcp_reordering', 1, 300],
  ['tcp_max_reordering', 1, INT_MAX],
  ['tcp_slow_start_after_idle', 0, 1],
  ['tcp_rfc1337', 0, 1],
  ['tcp_tw_reuse', 0, 2],
  ['tcp_invalid_ratelimit', 0, INT_MAX],
  ['tcp_challenge_ack_limit', 0, INT_MAX],
  ['tcp_notsent_lowat', 0, UINT_MAX],
  ['tcp_base_mss', 1, 65535],
  ['tcp_mtu_probing', 0, 2],
  ['tcp_probe_threshold', 0, INT_MAX],
  ['tcp_probe_interval', 0, INT_MAX / 1000, 1000],
  ['tcp_mtu_probe_floor', 48, 65535],
  ['tcp_min_snd_mss', 48, 65535],
  ['tcp_moderate_rcvbuf', 0, 1],
  ['tcp_workaround_signed_windows', 0, 1],
  ['tcp_app_win', 0, 31],
  ['tcp_pingpong_thresh', 1, 255],
  ['tcp_limit_output_bytes', 0, INT_MAX],
  ['tcp_recovery', 0, 7],
  ['tcp_early_retrans', 0, 4],
  ['tcp_frto', 0, 2],
  ['tcp_ecn', 0, 2],
  ['tcp_ecn_fallback', 0, 1],
  ['tcp_cwnd_trace', 0, 1],
  ['tcp_fastopen', 0, INT_MAX],
  ['tcp_fastopen_blackhole_timeout_sec', 0, INT_MAX],
];

function buildRegistry(): Map<string, SysctlEntry> {
  const m = new Map<string, SysctlEntry>();
  const add = (e: SysctlEntry) => m.set(e.name, e);
  for (const [f, min, max, scale] of TCP_INTS) add(intEntry(`net.ipv4.${f}`, tcp, f, min, max, scale));
  add(tripleEntry('net.ipv4.tcp_rmem', tcp, 'tcp_rmem'));
  add(tripleEntry('net.ipv4.tcp_wmem', tcp, 'tcp_wmem'));
  add(tripleEntry('net.ipv4.tcp_mem', tcp, 'tcp_mem'));
  add(intEntry('net.ipv4.tcp_max_orphans', tcp, 'tcp_max_orphans', 0, INT_MAX));
  add(intEntry('net.ipv4.tcp_max_tw_buckets', tcp, 'tcp_max_tw_buckets', 0, INT_MAX));
  add(tripleEntry('net.ipv4.udp_mem', udp, 'udp_mem'));
  add(intEntry('net.ipv4.udp_rmem_min', udp, 'udp_rmem_min', 1, INT_MAX));
  add(intEntry('net.ipv4.udp_wmem_min', udp, 'udp_wmem_min', 1, INT_MAX));
  add({
    name: 'net.ipv4.tcp_congestion_control',
    get: (s) => s.tcp.sysctl.tcp_congestion_control,
    set(s, value, err) {
      const v = value.trim();
      if (!s.tcp.congestion.find(v)) {
        err.message = `net.ipv4.tcp_congestion_control: "${value}" is not one of: ${s.tcp.congestion.available()}`;
        return -EINVAL;
      }
      s.tcp.sysctl.tcp_congestion_control = v;
      return 0;
    },
  });
  add({ name: 'net.ipv4.tcp_available_congestion_control', get: (s) => s.tcp.congestion.available() });
  // Fast Open's keys: "primary[,backup]" as proc_tcp_fastopen_key reads and writes them.
  add({ name: 'net.ipv4.tcp_fastopen_key', get: (s) => procTcpFastopenKeyGet(s.tcp), set: (s, v, err) => procTcpFastopenKeySet(s.tcp, v, err) });
  add(intEntry('net.core.somaxconn', tcp, 'somaxconn', 0, INT_MAX));
  // The root qdisc of the stack's one device, applied at once (Linux applies it to devices created
  // afterwards): fq paces by departure time (sch_fq.ts); the others are the device's plain queue.
  add({
    name: 'net.core.default_qdisc',
    get: (s) => (s.dev.fq ? 'fq' : 'pfifo_fast'),
    set(s, value, err) {
      const v = value.trim();
      if (v === 'fq') {
        if (!s.dev.fq) s.dev.setFq(s.time);
      } else if (v === 'pfifo_fast' || v === 'pfifo' || v === 'fq_codel') {
        if (s.dev.fq) s.dev.setFq(null);
      } else {
        err.message = `net.core.default_qdisc: "${value}" is not one of: fq pfifo_fast pfifo fq_codel`;
        return -EINVAL;
      }
      return 0;
    },
  });
  add(intEntry('net.ipv6.bindv6only', tcp, 'bindv6only', 0, 1));
  add(intEntry('net.ipv4.icmp_echo_ignore_all', icmp, 'icmp_echo_ignore_all', 0, 1));
  add(intEntry('net.ipv4.icmp_echo_ignore_broadcasts', icmp, 'icmp_echo_ignore_broadcasts', 0, 1));
  add(intEntry('net.ipv4.icmp_ratelimit', icmp, 'icmp_ratelimit', 0, INT_MAX));
  add(intEntry('net.ipv4.icmp_ratemask', icmp, 'icmp_ratemask', 0, INT_MAX));
  add(intEntry('net.ipv4.icmp_msgs_per_sec', icmp, 'icmp_msgs_per_sec', 0, INT_MAX));
  add(intEntry('net.ipv4.icmp_msgs_burst', icmp, 'icmp_msgs_burst', 0, INT_MAX));
  add(intEntry('net.ipv4.ipfrag_high_thresh', frag, 'highThresh', 0, INT_MAX));
  add(intEntry('net.ipv4.ipfrag_time', frag, 'time', 0, INT_MAX / 1000, 1000));
  // The ARP table's parameters (Linux keeps them per device; this stack has one).
  const nd = 'net.ipv4.neigh.default.';
  add({ ...intEntry(`${nd}base_reachable_time_ms`, neigh, 'baseReachableTime', 1, INT_MAX), set: baseReachableSet });
  add(intEntry(`${nd}retrans_time_ms`, neigh, 'retransTime', 1, INT_MAX));
  add(intEntry(`${nd}delay_first_probe_time`, neigh, 'delayProbeTime', 0, INT_MAX / 1000, 1000));
  add(intEntry(`${nd}gc_stale_time`, neigh, 'gcStaleTime', 0, INT_MAX / 1000, 1000));
  add(intEntry(`${nd}ucast_solicit`, neigh, 'ucastProbes', 0, INT_MAX));
  add(intEntry(`${nd}mcast_solicit`, neigh, 'mcastProbes', 0, INT_MAX));
  add(intEntry(`${nd}app_solicit`, neigh, 'appProbes', 0, INT_MAX));
  add(intEntry(`${nd}mcast_resolicit`, neigh, 'mcastReprobes', 0, INT_MAX));
  add(intEntry(`${nd}unres_qlen_bytes`, neigh, 'unresQlenBytes', 0, INT_MAX));
  add(intEntry(`${nd}gc_thresh1`, neigh, 'gcThresh1', 0, INT_MAX));
  add(intEntry(`${nd}gc_thresh2`, neigh, 'gcThresh2', 0, INT_MAX));
  add(intEntry(`${nd}gc_thresh3`, neigh, 'gcThresh3', 0, INT_MAX));
  // IPv6: ICMPv6, reassembly, the link's devconf (net.ipv6.conf.<dev>; one link) and ndisc.
  add(intEntry('net.ipv6.icmp.ratelimit', icmp6, 'ratelimit', 0, INT_MAX));
  add(intEntry('net.ipv6.icmp.echo_ignore_all', icmp6, 'echo_ignore_all', 0, 1));
  add(intEntry('net.ipv6.icmp.echo_ignore_multicast', icmp6, 'echo_ignore_multicast', 0, 1));
  add(intEntry('net.ipv6.ip6frag_high_thresh', frag6, 'highThresh', 0, INT_MAX));
  add(intEntry('net.ipv6.ip6frag_time', frag6, 'time', 0, INT_MAX / 1000, 1000));
  const c6 = 'net.ipv6.conf.default.';
  add(intEntry(`${c6}hop_limit`, conf6, 'hop_limit', 1, 255));
  add(intEntry(`${c6}accept_ra`, conf6, 'accept_ra', 0, 2));
  add(intEntry(`${c6}accept_ra_defrtr`, conf6, 'accept_ra_defrtr', 0, 1));
  add(intEntry(`${c6}accept_ra_pinfo`, conf6, 'accept_ra_pinfo', 0, 1));
  add(intEntry(`${c6}accept_ra_mtu`, conf6, 'accept_ra_mtu', 0, 1));
  add(intEntry(`${c6}autoconf`, conf6, 'autoconf', 0, 1));
  add(intEntry(`${c6}accept_dad`, conf6, 'accept_dad', 0, 2));
  add(intEntry(`${c6}dad_transmits`, conf6, 'dad_transmits', 0, INT_MAX));
  add(intEntry(`${c6}enhanced_dad`, conf6, 'enhanced_dad', 0, 1));
  add(intEntry(`${c6}router_solicitations`, conf6, 'rtr_solicits', -1, INT_MAX));
  add(intEntry(`${c6}router_solicitation_interval`, conf6, 'rtr_solicit_interval', 0, INT_MAX / 1000, 1000));
  add(intEntry(`${c6}router_solicitation_max_interval`, conf6, 'rtr_solicit_max_interval', 0, INT_MAX / 1000, 1000));
  add(intEntry(`${c6}router_solicitation_delay`, conf6, 'rtr_solicit_delay', 0, INT_MAX / 1000, 1000));
  add(intEntry(`${c6}mldv2_unsolicited_report_interval`, conf6, 'mldv2_unsolicited_report_interval', 0, INT_MAX));
  add(intEntry('net.ipv6.mld_qrv', conf6, 'mc_qrv', 1, INT_MAX));
  add(intEntry('net.ipv6.max_hbh_opts_number', conf6, 'max_hbh_opts_number', -(2 ** 31), INT_MAX));
  add(intEntry('net.ipv6.max_dst_opts_number', conf6, 'max_dst_opts_number', -(2 ** 31), INT_MAX));
  const n6 = 'net.ipv6.neigh.default.';
  add(intEntry(`${n6}base_reachable_time_ms`, neigh6, 'baseReachableTime', 1, INT_MAX));
  add(intEntry(`${n6}retrans_time_ms`, neigh6, 'retransTime', 1, INT_MAX));
  add(intEntry(`${n6}delay_first_probe_time`, neigh6, 'delayProbeTime', 0, INT_MAX / 1000, 1000));
  add(intEntry(`${n6}ucast_solicit`, neigh6, 'ucastProbes', 0, INT_MAX));
  add(intEntry(`${n6}mcast_solicit`, neigh6, 'mcastProbes', 0, INT_MAX));
  add(intEntry(`${n6}unres_qlen_bytes`, neigh6, 'unresQlenBytes', 0, INT_MAX));
  return m;
}

/** base_reachable_time_ms: a new value re-randomises reachable_time, as neigh_proc_base_reachable_time does. */
function baseReachableSet(s: Net, value: string, err: { message: string }): number {
  const e = intEntry('net.ipv4.neigh.default.base_reachable_time_ms', neigh, 'baseReachableTime', 1, INT_MAX);
  const rc = e.set!(s, value, err);
  if (rc === 0) {
    const p = s.arp.tbl.parms;
    p.reachableTime = Math.floor(p.baseReachableTime / 2 + ((s.random.u32() / 0x1_0000_0000) * p.baseReachableTime));
  }
  return rc;
}

const REGISTRY = buildRegistry();

/** Every setting and its value, sorted by name (`sysctl -a`). */
export function sysctlList(stack: Net): [string, string][] {
  return [...REGISTRY.keys()].sort().map((n) => [n, REGISTRY.get(n)!.get(stack)]);
}

/** Accept "net/ipv4/tcp_sack" as well as "net.ipv4.tcp_sack", as sysctl(8) does. */
function normalise(name: string): string {
  return name.trim().replace(/\//g, '.');
}

/** One value, or -ENOENT. */
export function sysctlGet(stack: Net, name: string): string | number {
  const e = REGISTRY.get(normalise(name));
  return e ? e.get(stack) : -ENOENT;
}

/**
 * Set one value: 0, -ENOENT (unknown key), -EPERM (read-only) or -EINVAL
 * (bad value). `err`, if given, receives a message naming the key.
 */
export function sysctlSet(stack: Net, name: string, value: string | number, err: { message: string } = { message: '' }): number {
  const key = normalise(name);
  const e = REGISTRY.get(key);
  if (!e) {
    err.message = `${key}: no such setting`;
    return -ENOENT;
  }
  if (!e.set) {
    err.message = `${key}: is read-only`;
    return -EPERM;
  }
  return e.set(stack, String(value), err);
}

/**
 * Check a name and value without a stack (config files are read before the
 * stack exists): null if it would be accepted, else a message naming the key.
 * The value is applied to a scratch copy of the defaults.
 */
export function sysctlValidate(name: string, value: string | number): string | null {
  const scratch = {
    // Any name an algorithm could have: a module the config loads registers its own at start.
    tcp: { sysctl: new TcpSysctl(), congestion: { find: (n: string) => /^[\x21-\x7e]{1,15}$/.test(n), available: () => 'names of 1 to 15 printable characters' } },
    udp: { sysctl: new UdpSysctl() },
    icmp: { sysctl: new IcmpSysctl() },
    frags: { sysctl: { highThresh: 0, time: 0 } },
    arp: { tbl: { parms: new NeighParms() } },
    ipv6: { icmp: { sysctl: new Icmpv6Sysctl() }, frags: { sysctl: { highThresh: 0, time: 0 } }, cnf: new Ipv6Devconf(), ndisc: { tbl: { parms: new NeighParms() } } },
    random: { u32: () => 0 },
    dev: { fq: null, setFq: () => {} },
  } as unknown as Net;
  const err = { message: '' };
  return sysctlSet(scratch, name, value, err) === 0 ? null : err.message;
}
