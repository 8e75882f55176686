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
