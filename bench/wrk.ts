/**
 * The namespace a load generator (wrk) connects from. At tens of thousands
 * of connections a second the default range's 28 000 ephemeral ports run
 * out within TIME_WAIT's minute (wrk may close first, and its sockets then
 * wait), and a run that follows another from the same namespace fell to a
 * connection per retransmitted SYN (about 1 000/s, on the kernel as on the
 * stack). TIME_WAIT reuse with timestamps (RFC 6191) and the whole port
 * range are what a load generator runs with.
 */
import type { Netns } from '../test/integration/netns.js';

export function wrkClientSide(ns: Netns): void {
  ns.ok(`sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range='1024 65535'`);
}
