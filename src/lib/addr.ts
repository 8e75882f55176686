/**
 * Addresses in the forms the hot path uses: IPv4 as an unsigned 32-bit
 * number in host order (compared with ===, never as strings), MAC as six
 * bytes. Parsing is strict: these also validate the config and the CLI.
 */

export function parseIpv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    if (m[i].length > 1 && m[i][0] === '0') return null; // no octal-looking octets
    const o = Number(m[i]);
    if (o > 255) return null;
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function formatIpv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export interface Ipv4Prefix {
  addr: number;
  prefix: number;
}

/** "10.0.0.2/24" -> { addr, prefix }; null if either part is bad. */
export function parseIpv4Prefix(s: string): Ipv4Prefix | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const addr = parseIpv4(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (addr === null || !/^\d{1,2}$/.test(p)) return null;
  const prefix = Number(p);
  if (prefix > 32) return null;
  return { addr, prefix };
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function ipv4IsMulticast(a: number): boolean {
  return a >>> 28 === 0xe;
}

export function ipv4IsLoopback(a: number): boolean {
  return a >>> 24 === 127;
}

export function ipv4IsZeronet(a: number): boolean {
  return a >>> 24 === 0;
}

export const INADDR_ANY = 0;
export const INADDR_BROADCAST = 0xffffffff;

export function parseMac(s: string): Buffer | null {
  const m = /^([0-9a-fA-F]{2})(?::([0-9a-fA-F]{2})){5}$/.test(s);
  if (!m) return null;
  return Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
}

export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i].toString(16).padStart(2, '0'));
  return out.join(':');
}

export function macIsMulticast(b: Uint8Array, off = 0): boolean {
  return (b[off] & 1) === 1;
}

export function macIsZero(b: Uint8Array, off = 0): boolean {
  return (b[off] | b[off + 1] | b[off + 2] | b[off + 3] | b[off + 4] | b[off + 5]) === 0;
}

/** The Ethernet group address an IPv4 multicast group maps to (RFC 1112: 01:00:5e + low 23 bits). */
export function ipv4McastMac(group: number): Buffer {
  return Buffer.from([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 255, group & 255]);
}

/*
 * IPv6 addresses are 16 bytes (a Buffer or a view into a frame), compared
 * with ipv6Equal over offsets so the receive path never copies or builds
 * strings. IPv4-mapped addresses (::ffff:a.b.c.d) carry IPv4 peers of a
 * dual-stack AF_INET6 socket, as in Linux.
 */
export const IPV6_ADDR_LEN = 16;
/** :: (in6addr_any). Read it, never write it. */
export const IN6ADDR_ANY: Readonly<Uint8Array> = new Uint8Array(16);

/** RFC 4291 text form, strictly: hex groups, one `::`, an optional dotted IPv4 tail; no zone. */
export function parseIpv6(s: string): Buffer | null {
  if (s.length < 2 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const words: number[] = [];
  let tail: number | null = null;
  const lastColon = s.lastIndexOf(':');
  let head = s;
  if (s.indexOf('.') >= 0) {
    tail = parseIpv4(s.slice(lastColon + 1));
    if (tail === null) return null;
    head = s.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::" ; "::ffff:1.2.3.4" leaves "::ffff:"; keep a trailing "::" whole.
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const dbl = head.indexOf('::');
  if (dbl >= 0 && head.indexOf('::', dbl + 1) >= 0) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const want = tail === null ? 8 : 6;
  if (dbl >= 0) {
    const left = parseGroups(head.slice(0, dbl));
    const right = parseGroups(head.slice(dbl + 2));
    if (!left || !right || left.length + right.length > want - 1) return null;
    words.push(...left, ...new Array<number>(want - left.length - right.length).fill(0), ...right);
  } else {
    const all = parseGroups(head);
    if (!all || all.length !== want) return null;
    words.push(...all);
  }
  const b = Buffer.alloc(16);
  for (let i = 0; i < want; i++) b.writeUInt16BE(words[i], i * 2);
  if (tail !== null) b.writeUInt32BE(tail, 12);
  return b;
}

/** RFC 5952 canonical text: lower case, longest run (>1) of zero groups as `::`, v4-mapped as dotted. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

export interface Ipv6Prefix {
  addr: Buffer;
  prefix: number;
}

/** "fd00::2/64" -> { addr, prefix }; null if either part is bad. */
export function parseIpv6Prefix(s: string): Ipv6Prefix | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const addr = parseIpv6(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (addr === null || !/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  if (prefix > 128) return null;
  return { addr, prefix };
}

export function ipv6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** The first `prefix` bits of a and b agree. */
export function ipv6PrefixEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, prefix: number): boolean {
  let i = 0;
  for (; prefix >= 8; prefix -= 8, i++) if (a[aOff + i] !== b[bOff + i]) return false;
  if (prefix === 0) return true;
  const mask = (0xff << (8 - prefix)) & 0xff;
  return (a[aOff + i] & mask) === (b[bOff + i] & mask);
}

export function ipv6IsUnspecified(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[off + i] !== 0) return false;
  return true;
}

export function ipv6IsLoopback(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 15; i++) if (a[off + i] !== 0) return false;
  return a[off + 15] === 1;
}

export function ipv6IsMulticast(a: Uint8Array, off = 0): boolean {
  return a[off] === 0xff;
}

/** fe80::/10 */
export function ipv6IsLinkLocal(a: Uint8Array, off = 0): boolean {
  return a[off] === 0xfe && (a[off + 1] & 0xc0) === 0x80;
}

/** ::ffff:0:0/96 */
export function ipv6IsV4Mapped(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/** The IPv4 address inside a v4-mapped address, host order. */
export function ipv6V4MappedAddr(a: Uint8Array, off = 0): number {
  return ((a[off + 12] << 24) | (a[off + 13] << 16) | (a[off + 14] << 8) | a[off + 15]) >>> 0;
}

/** Write ::ffff:a.b.c.d for an IPv4 address into out. */
export function ipv6SetV4Mapped(out: Uint8Array, v4: number, off = 0): void {
  out.fill(0, off, off + 10);
  out[off + 10] = 0xff;
  out[off + 11] = 0xff;
  out[off + 12] = v4 >>> 24;
  out[off + 13] = (v4 >>> 16) & 255;
  out[off + 14] = (v4 >>> 8) & 255;
  out[off + 15] = v4 & 255;
}

/** ff02::1:ffXX:XXXX for an address (RFC 4291 2.7.1): where its neighbour solicitations go. */
export function ipv6SolicitedNodeMcast(a: Uint8Array, off = 0): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0xff;
  b[1] = 0x02;
  b[11] = 0x01;
  b[12] = 0xff;
  b[13] = a[off + 13];
  b[14] = a[off + 14];
  b[15] = a[off + 15];
  return b;
}

/** The Ethernet group address an IPv6 multicast group maps to (RFC 2464: 33:33 + low 32 bits). */
export function ipv6McastMac(group: Uint8Array, off = 0): Buffer {
  return Buffer.from([0x33, 0x33, group[off + 12], group[off + 13], group[off + 14], group[off + 15]]);
}

/** fe80::/64 with the modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A). */
export function ipv6LinkLocalEui64(mac: Uint8Array): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  b[8] = mac[0] ^ 0x02;
  b[9] = mac[1];
  b[10] = mac[2];
  b[11] = 0xff;
  b[12] = 0xfe;
  b[13] = mac[3];
  b[14] = mac[4];
  b[15] = mac[5];
  return b;
}
