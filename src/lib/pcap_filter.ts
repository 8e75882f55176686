/**
 * The part of pcap-filter(7)'s language a capture of this stack needs,
 * compiled to a predicate over an Ethernet frame: protocols (`ip`, `ip6`,
 * `arp`, `tcp`, `udp`, `icmp`, `icmp6`), `[src|dst] host ADDR` (IPv4 or
 * IPv6), `[src|dst] port N`, joined by `and`/`&&`, `or`/`||`, `not`/`!` and
 * parentheses, with pcap's precedence (not, then and, then or; `and` may be
 * left out between primitives). An empty filter takes every frame. The
 * frame is read in place: nothing is allocated per frame.
 */
import { parseIpv4, parseIpv6 } from './addr.js';

export class FilterError extends Error {}

export type FramePredicate = (b: Buffer, off: number, len: number) => boolean;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_ARP = 0x0806;

/** What a frame holds, found once per frame and shared by the predicates (a scratch object, reused). */
interface Fields {
  ethType: number;
  proto: number;
  /** Offset of the source and destination address, and their length (4 or 16); -1: none. */
  src: number;
  dst: number;
  alen: number;
  sport: number;
  dport: number;
}

const f: Fields = { ethType: 0, proto: -1, src: -1, dst: -1, alen: 0, sport: -1, dport: -1 };

function dissect(b: Buffer, off: number, len: number): void {
  f.proto = -1;
  f.src = f.dst = -1;
  f.sport = f.dport = -1;
  f.ethType = len >= 14 ? b.readUInt16BE(off + 12) : 0;
  const ip = off + 14;
  const end = off + len;
  let l4 = -1;
  if (f.ethType === ETH_P_IP && ip + 20 <= end) {
    const ihl = (b[ip] & 15) * 4;
    f.proto = b[ip + 9];
    f.src = ip + 12;
    f.dst = ip + 16;
    f.alen = 4;
    // Only a first fragment carries the ports.
    if ((b.readUInt16BE(ip + 6) & 0x1fff) === 0) l4 = ip + ihl;
  } else if (f.ethType === ETH_P_IPV6 && ip + 40 <= end) {
    f.proto = b[ip + 6];
    f.src = ip + 8;
    f.dst = ip + 24;
    f.alen = 16;
    l4 = ip + 40;
  }
  if (l4 >= 0 && (f.proto === 6 || f.proto === 17) && l4 + 4 <= end) {
    f.sport = b.readUInt16BE(l4);
    f.dport = b.readUInt16BE(l4 + 2);
  }
}

function addrAt(b: Buffer, at: number, want: Uint8Array): boolean {
  if (at < 0 || f.alen !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[at + i] !== want[i]) return false;
  return true;
}

type Node = (b: Buffer) => boolean;

class Parser {
  i = 0;
  constructor(readonly t: string[]) {}
  peek(): string | undefined {
    return this.t[this.i];
  }
  or(): Node {
    let a = this.and();
    while (this.peek() === 'or' || this.peek() === '||') {
      this.i++;
      const l = a;
      const r = this.and();
      a = (b) => l(b) || r(b);
    }
    return a;
  }
  and(): Node {
    let a = this.not();
    for (;;) {
      const p = this.peek();
      if (p === 'and' || p === '&&') this.i++;
      else if (p === undefined || p === 'or' || p === '||' || p === ')') break;
      const l = a;
      const r = this.not();
      a = (b) => l(b) && r(b);
    }
    return a;
  }
  not(): Node {
    if (this.peek() === 'not' || this.peek() === '!') {
      this.i++;
      const x = this.not();
      return (b) => !x(b);
    }
    return this.primary();
  }
  primary(): Node {
    const w = this.t[this.i++];
    if (w === undefined) throw new FilterError('filter ends where a primitive should be');
    if (w === '(') {
      const x = this.or();
      if (this.t[this.i++] !== ')') throw new FilterError("missing ')'");
      return x;
    }
    switch (w) {
      case 'ip':
        return () => f.ethType === ETH_P_IP;
      case 'ip6':
        return () => f.ethType === ETH_P_IPV6;
      case 'arp':
        return () => f.ethType === ETH_P_ARP;
      case 'tcp':
        return () => f.proto === 6;
      case 'udp':
        return () => f.proto === 17;
      case 'icmp':
        return () => f.proto === 1 && f.ethType === ETH_P_IP;
      case 'icmp6':
        return () => f.proto === 58 && f.ethType === ETH_P_IPV6;
    }
    let dir: 'src' | 'dst' | null = null;
    let kind = w;
    if (w === 'src' || w === 'dst') {
      dir = w;
      kind = this.t[this.i++] ?? '';
    }
    const arg = this.t[this.i++];
    if (kind === 'host') {
      if (arg === undefined) throw new FilterError("'host' needs an address");
      const v4 = parseIpv4(arg);
      let want: Uint8Array;
      if (v4 !== null) want = Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255);
      else {
        const v6 = parseIpv6(arg);
        if (!v6) throw new FilterError(`'${arg}' is not an IPv4 or IPv6 address`);
        want = v6;
      }
      if (dir === 'src') return (b) => addrAt(b, f.src, want);
      if (dir === 'dst') return (b) => addrAt(b, f.dst, want);
      return (b) => addrAt(b, f.src, want) || addrAt(b, f.dst, want);
    }
    if (kind === 'port') {
      const n = Number(arg);
      if (arg === undefined || !/^\d+$/.test(arg) || n > 65535) throw new FilterError(`'${arg ?? ''}' is not a port`);
      if (dir === 'src') return () => f.sport === n;
      if (dir === 'dst') return () => f.dport === n;
      return () => f.sport === n || f.dport === n;
    }
    throw new FilterError(`'${dir ? `${dir} ${kind}` : w}' is not a filter primitive (ip, ip6, arp, tcp, udp, icmp, icmp6, [src|dst] host ADDR, [src|dst] port N)`);
  }
}

/** Compile `expr` (words as a shell splits them, or one string); throws FilterError naming what is wrong. */
export function compileFilter(expr: string): FramePredicate {
  const tokens = expr.replace(/([()!])/g, ' $1 ').replace(/&&/g, ' && ').replace(/\|\|/g, ' || ').trim().split(/\s+/).filter(Boolean);
  if (!tokens.length) return () => true;
  const p = new Parser(tokens);
  const node = p.or();
  if (p.i < tokens.length) throw new FilterError(`unexpected '${tokens[p.i]}'`);
  return (b, off, len) => {
    dissect(b, off, len);
    return node(b);
  };
}
