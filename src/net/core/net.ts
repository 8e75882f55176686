/**
 * struct net: what one stack instance holds that its protocols share (the
 * device, the IPv4 tables and counters, the transports by protocol number,
 * the IPv6 layer, time and randomness). The protocols take it as this
 * interface, as kernel code includes net_namespace.h, and never the module
 * that builds and drives it (src/net/stack.ts).
 */
import type { Random } from '../../lib/random.js';
import type { TimeSource } from '../../lib/time.js';
import type { Arp } from '../ipv4/arp.js';
import type { Icmp } from '../ipv4/icmp.js';
import type { IpFrags } from '../ipv4/ip_fragment.js';
import type { Fib } from '../ipv4/route.js';
import type { TcpProto } from '../ipv4/tcp_proto.js';
import type { UdpProto } from '../ipv4/udp.js';
import type { Ipv6 } from '../ipv6/af_inet6.js';
import type { Ipv6Stub } from '../ipv6/ipv6_stub.js';
import type { NetFamilies } from '../socket.js';
import type { NetDevice } from './dev.js';
import type { SkBuff } from './skbuff.js';
import type { Mibs } from './snmp.js';
import type { Net6Protocol, NetProtocol } from './protocol.js';
import type { IpIdents } from '../ipv4/route.js';

/** The logging the stack uses: pino's shape, never called per packet at info level. */
export interface StackLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  /** pino's: lets the stack skip building log objects for a level that is off. */
  isLevelEnabled?(level: string): boolean;
}

export const nullLog: StackLog = { debug() {}, info() {}, warn() {} };

export interface Net {
  readonly mibs: Mibs;
  readonly dev: NetDevice;
  readonly fib: Fib;
  readonly arp: Arp;
  readonly icmp: Icmp;
  readonly frags: IpFrags;
  readonly ipIdents: IpIdents;
  readonly tcp: TcpProto;
  readonly udp: UdpProto;
  /** Debug logging is on: checked before building a per-event log object. */
  readonly debug: boolean;
  /** inet_protos: transport handlers by IP protocol number. */
  readonly inetProtos: (NetProtocol | undefined)[];
  /** inet6_protos: transport handlers by IPv6 next-header value. */
  readonly inet6Protos: (Net6Protocol | undefined)[];
  /** What the transports reach of the IPv6 layer (set by it when it runs; null without IPv6). */
  ipv6Stub: Ipv6Stub | null;
  /** net_families: what socket(2) can make here. */
  readonly families: NetFamilies;
  /** IPv6: addresses, routes, ndisc, MLD, ICMPv6, reassembly (disabled without its config). */
  readonly ipv6: Ipv6;
  readonly time: TimeSource;
  readonly random: Random;
  readonly log: StackLog;
  /** The loopback device's transmit: a packet to one of our own addresses, delivered once the current one is done. */
  loopbackXmit(skb: SkBuff): void;
  /** Around a transport's transmit: what loops back waits until the call has returned (the socket lock's ordering). */
  holdLoopback(): void;
  releaseLoopback(): void;
  /** ipv4_link_failure: a packet the neighbour layer could not deliver. */
  ipv4LinkFailure(skb: SkBuff): void;
}
