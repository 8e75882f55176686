/**
 * Inbound ICMP errors as packetdrill builds them (icmp_packet.c): the
 * type and code by packetdrill's names, an `mtu` only on IPv4's
 * frag_needed or IPv6's packet_too_big, and the echoed packet: an IP
 * header from the stack to the peer (TTL 0, as packetdrill leaves it)
 * and the first 8 bytes of the TCP header with the ports and the
 * segment's sequence, the stack's ISN added (map_inbound_icmp_tcp_packet).
 */
import { csumFold, csumIpv6Magic, csumPartial, ipFastCsum } from '../../src/lib/checksum.js';
import type { IcmpSpec } from './parse.js';

/** A name packetdrill does not know for the family: packetdrill refuses the script (as it does on Linux). */
export class IcmpNameError extends Error {}

const V4_TYPES: Record<string, number> = {
  echo_reply: 0,
  unreachable: 3,
  source_quench: 4,
  redirect: 5,
  echo_request: 8,
  time_exceeded: 11,
  parameter_problem: 12,
  timestamp_request: 13,
  timestamp_reply: 14,
  information_request: 15,
  information_reply: 16,
  address_mask_request: 17,
  address_mask_reply: 18,
};
const V4_UNREACH_CODES = [
  'net_unreachable',
  'host_unreachable',
  'protocol_unreachable',
  'port_unreachable',
  'frag_needed',
  'source_route_failed',
  'net_unknown',
  'host_unknown',
  'source_host_isolated',
  'net_prohibited',
  'host_prohibited',
  'net_unreachable_for_tos',
  'host_unreachable_for_tos',
  'packet_filtered',
  'precedence_violation',
  'precedence_cutoff',
];
const V6_TYPES: Record<string, number> = { unreachable: 1, packet_too_big: 2, time_exceeded: 3, parameter_problem: 4, echo_request: 128, echo_reply: 129 };
const V6_CODES: Record<number, string[]> = {
  3: ['hop_limit_exceeded', 'fragment_reassembly_time_exceeded'],
  4: ['erroneous_header', 'unrecognized_next_header', 'unrecognized_ipv6_option'],
};
// packetdrill's IPv6 unreachable table spells code 0 twice (net_unreachable, no_route) and skips 'beyond scope' (2).
const V6_UNREACH: Record<string, number> = { net_unreachable: 0, no_route: 0, admin_prohibited: 1, not_neighbour: 2, address_unreachable: 3, port_unreachable: 4 };

function typeAndCode(v6: boolean, s: IcmpSpec): [number, number] {
  const type = (v6 ? V6_TYPES : V4_TYPES)[s.type];
  if (type === undefined) throw new IcmpNameError(`unknown ICMP${v6 ? 'v6' : ''} type '${s.type}'`);
  if (s.code === undefined) return [type, 0];
  const n = /^code_(\d+)$/.exec(s.code);
  if (n && Number(n[1]) < 256) return [type, Number(n[1])];
  let code: number | undefined;
  if (!v6 && type === 3) code = V4_UNREACH_CODES.indexOf(s.code);
  else if (v6 && type === 1) code = V6_UNREACH[s.code];
  else if (v6 && V6_CODES[type]) code = V6_CODES[type].indexOf(s.code);
  if (code === undefined || code < 0) throw new IcmpNameError(`bad ICMP${v6 ? 'v6' : ''} code ${s.code}`);
  return [type, code];
}

export interface IcmpEcho {
  /** The stack's address and the peer's: the echoed packet went from the first to the second. */
  local: number | Uint8Array;
  remote: number | Uint8Array;
  sport: number;
  dport: number;
  /** The echoed TCP sequence number, already live (the stack's ISN added). */
  seq: number;
}

/** The ICMP or ICMPv6 message (from the peer to the stack) for `s`, echoing a TCP segment `e`. */
export function icmpErrorMessage(v6: boolean, s: IcmpSpec, e: IcmpEcho): Buffer {
  const [type, code] = typeAndCode(v6, s);
  if (s.mtu !== undefined && (v6 ? type !== 2 || code !== 0 : type !== 3 || code !== 4)) throw new IcmpNameError('an ICMP mtu is only allowed with frag_needed (IPv4) or packet_too_big (IPv6)');
  const ipLen = v6 ? 40 : 20;
  const b = Buffer.alloc(8 + ipLen + 8);
  b[0] = type;
  b[1] = code;
  if (s.mtu !== undefined) {
    if (v6) b.writeUInt32BE(s.mtu >>> 0, 4);
    else b.writeUInt16BE(s.mtu & 0xffff, 6);
  }
  const ip = 8;
  // The echoed IP header claims the whole original packet: header, TCP header, payload.
  const origLen = ipLen + 20 + (s.len ?? 0);
  if (v6) {
    b[ip] = 0x60;
    b.writeUInt16BE(origLen - 40, ip + 4);
    b[ip + 6] = 6;
    b.set(e.local as Uint8Array, ip + 8);
    b.set(e.remote as Uint8Array, ip + 24);
  } else {
    b[ip] = 0x45;
    b.writeUInt16BE(origLen, ip + 2);
    b[ip + 9] = 6;
    b.writeUInt32BE(e.local as number, ip + 12);
    b.writeUInt32BE(e.remote as number, ip + 16);
    b.writeUInt16BE(ipFastCsum(b, ip, 20), ip + 10);
  }
  const th = ip + ipLen;
  b.writeUInt16BE(e.sport, th);
  b.writeUInt16BE(e.dport, th + 2);
  b.writeUInt32BE(e.seq >>> 0, th + 4);
  const init = v6 ? csumIpv6Magic(e.remote as Uint8Array, 0, e.local as Uint8Array, 0, 58, b.length) : 0;
  b.writeUInt16BE(csumFold(csumPartial(b, 0, b.length, init)), 2);
  return b;
}
