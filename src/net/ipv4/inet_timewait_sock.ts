/**
 * TIME_WAIT socks (net/ipv4/inet_timewait_sock.c): what is left of a
 * connection for 2*MSL, in the established hash and holding its port, so
 * that retransmitted FINs are answered and old duplicates cannot reach a
 * new incarnation of the 4-tuple. tcp_timewait_state_process, which
 * answers the segments, is in tcp_minisocks.ts.
 */
import type { TcpHashedSock, TcpProto } from './tcp_proto.js';
import { tcpMd5LookupPeer } from './tcp_md5.js';
import { TCP_TIME_WAIT } from '../core/sock.js';
import { TCP_TIMEWAIT_LEN, TcpTimewaitSock, type TcpSock } from './tcp_sock.js';

/**
 * inet_twsk_alloc + inet_twsk_hashdance_schedule, tcp_time_wait's hand-over:
 * a TIME_WAIT sock with what is left of the connection takes its place in
 * the established hash and its port, until its timer kills it. False, and
 * nothing done, at tcp_max_tw_buckets.
 */
export function inetTwskHashdance(tcp: TcpProto, sk: TcpSock, substate: number, timeo: number): boolean {
  if (tcp.tw.read() >= tcp.sysctl.tcp_max_tw_buckets) return false;
  tcp.tw.add(1);
  const tw = new TcpTimewaitSock((tcp.twKillFn ??= (t: TcpHashedSock) => inetTwskKill(tcp, t as TcpTimewaitSock)));
  tw.copyTuple(sk);
  tw.substate = substate;
  tw.rcvNxt = sk.rcvNxt;
  tw.sndNxt = sk.sndNxt;
  tw.rcvWnd = sk.rcvWnd;
  tw.rcvWscale = sk.rcvWscale;
  tw.tstampOk = sk.tstampOk;
  tw.tsRecent = sk.tsRecent;
  tw.tsRecentStamp = sk.tsRecentStamp;
  tw.tsOff = sk.tsOff;
  tw.tos = sk.tos;
  tw.md5Key = tcpMd5LookupPeer(sk.md5sigInfo, sk);
  if (sk.hashLinks.inEhash) tcp.hashinfo.ehashRemove(sk);
  // The socket stays an owner too: tcp_set_state(TCP_CLOSE) releases its port unless bind() named it.
  tcp.hashinfo.bhash.inheritPort(tw, sk);
  tw.state = TCP_TIME_WAIT;
  tcp.hashinfo.ehashInsert(tw);
  tcp.mibs.TcpExt.TW++;
  const t = substate === TCP_TIME_WAIT ? TCP_TIMEWAIT_LEN : Math.max(timeo, 1);
  tcp.time.timers.mod(tw.timer, tcp.now() + t);
  return true;
}

/** inet_twsk_kill: the 2*MSL wait is over (or the 4-tuple is reused). */
export function inetTwskKill(tcp: TcpProto, tw: TcpTimewaitSock): void {
  tcp.time.timers.del(tw.timer);
  if (tw.hashLinks.inEhash) {
    tcp.hashinfo.ehashRemove(tw);
    tcp.tw.add(-1);
  }
  if (tw.hashLinks.bound) tcp.hashinfo.unbind(tw);
}
