/**
 * IPv4 options on receive (net/ipv4/ip_options.c): the checks a host makes
 * before it delivers a datagram that carries options. Nothing is recorded
 * or rewritten in them: this stack neither forwards datagrams nor echoes
 * their options, the two uses Linux has for what it writes there.
 */
import {
  IP_HLEN,
  IPOPT_CIPSO,
  IPOPT_END,
  IPOPT_LSRR,
  IPOPT_NOOP,
  IPOPT_RA,
  IPOPT_RR,
  IPOPT_SSRR,
  IPOPT_TIMESTAMP,
  IPOPT_TS_PRESPEC,
  IPOPT_TS_TSANDADDR,
} from '../../wire/ipv4.js';

/** struct ip_options: where each option sits (its offset from the IP header, 0: absent). */
export class IpOptions {
  srr = 0;
  isStrictroute = false;
  rr = 0;
  ts = 0;
  routerAlert = 0;
  cipso = 0;
}

/**
 * __ip_options_compile for a received datagram (the IP header at `off`,
 * `ihl` bytes): fills `opt`, and returns 0, or the offset from the header's
 * start of the byte a Parameter Problem points at. No CIPSO domain is
 * configured, so a CIPSO option never validates (cipso_v4_validate).
 */
export function ipOptionsCompile(opt: IpOptions, b: Buffer, off: number, ihl: number): number {
  const end = off + ihl;
  for (let p = off + IP_HLEN; p < end; ) {
    const type = b[p];
    if (type === IPOPT_END) return 0;
    if (type === IPOPT_NOOP) {
      p++;
      continue;
    }
    const l = end - p;
    if (l < 2) return p - off;
    const optlen = b[p + 1];
    if (optlen < 2 || optlen > l) return p - off;
    const ptr = b[p + 2];
    switch (type) {
      case IPOPT_SSRR:
      case IPOPT_LSRR:
        if (optlen < 3) return p + 1 - off;
        if (ptr < 4) return p + 2 - off;
        // Only one source route (RFC 1812 5.2.4.1).
        if (opt.srr) return p - off;
        opt.isStrictroute = type === IPOPT_SSRR;
        opt.srr = p - off;
        break;
      case IPOPT_RR:
        if (opt.rr) return p - off;
        if (optlen < 3) return p + 1 - off;
        if (ptr < 4) return p + 2 - off;
        if (ptr <= optlen && ptr + 3 > optlen) return p + 2 - off;
        opt.rr = p - off;
        break;
      case IPOPT_TIMESTAMP: {
        if (opt.ts) return p - off;
        if (optlen < 4) return p + 1 - off;
        if (ptr < 5) return p + 2 - off;
        const flags = b[p + 3] & 0x0f;
        if (ptr <= optlen) {
          if (ptr + 3 > optlen) return p + 2 - off;
          if ((flags === IPOPT_TS_TSANDADDR || flags === IPOPT_TS_PRESPEC) && ptr + 7 > optlen) return p + 2 - off;
        } else if (flags !== IPOPT_TS_PRESPEC && b[p + 3] >> 4 === 15) {
          // Full, and its overflow count can count no more.
          return p + 3 - off;
        }
        opt.ts = p - off;
        break;
      }
      case IPOPT_RA:
        if (optlen < 4) return p + 1 - off;
        if (ptr === 0 && b[p + 3] === 0) opt.routerAlert = p - off;
        break;
      case IPOPT_CIPSO:
        if (opt.cipso) return p - off;
        opt.cipso = p - off;
        return p + (optlen < 8 ? 1 : 2) - off;
      default:
        // Security, stream ID and unknown options are carried through.
        break;
    }
    p += optlen;
  }
  return 0;
}
