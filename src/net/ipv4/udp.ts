/**
 * UDP receive (net/ipv4/udp.c). The stack has no UDP sockets yet (they come
 * with the UDP issue), so every valid datagram is for a closed port: it is
 * counted in NoPorts and answered with ICMP port unreachable, exactly what
 * Linux does for a port nobody bound.
 */
import { csumFold, csumPartial, csumTcpUdpMagic } from '../../lib/checksum.js';
import { ICMP_DEST_UNREACH, ICMP_PORT_UNREACH } from '../../wire/icmp.js';
import { IPPROTO_UDP } from '../../wire/ipv4.js';
import { UDP_HLEN, udpCheck, udpLen } from '../../wire/udp.js';
import { PACKET_HOST } from '../core/dev.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { RTN_LOCAL } from './route.js';
import type { IpRxInfo, NetProtocol } from './ip_input.js';
import type { Stack } from '../stack.js';

export function udpProtocol(stack: Stack): NetProtocol {
  return {
    handler(buf: Buffer, off: number, len: number, ip: IpRxInfo): void {
      const mib = stack.mibs.Udp;
      const drop = stack.mibs.Drop.counts;
      // __udp4_lib_rcv: the UDP length must fit the IP payload (trim any excess).
      const ulen = len >= UDP_HLEN ? udpLen(buf, off) : 0;
      if (len < UDP_HLEN || ulen < UDP_HLEN || ulen > len) {
        mib.InErrors++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        return;
      }
      // Checksum 0: the sender did not compute one (allowed over IPv4).
      if (udpCheck(buf, off) !== 0 && csumFold(csumPartial(buf, off, ulen, csumTcpUdpMagic(ip.saddr, ip.daddr, IPPROTO_UDP, ulen))) !== 0) {
        mib.InCsumErrors++;
        mib.InErrors++;
        drop[SKB_DROP_REASON.UDP_CSUM]++;
        return;
      }
      drop[SKB_DROP_REASON.NO_SOCKET]++;
      // Broadcast/multicast with no listener is IgnoredMulti and silent (__udp4_lib_mcast_deliver).
      if (ip.rtType !== RTN_LOCAL) {
        mib.IgnoredMulti++;
        return;
      }
      mib.NoPorts++;
      stack.icmp.send(ip.buf, ip.ipOff, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, ip.pktType === PACKET_HOST);
    },
  };
}
