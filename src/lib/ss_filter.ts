/**
 * ss(8)'s socket filter, compiled to a predicate over a socket's view:
 *
 *   state NAME            a TCP state as ss names it (established, syn-sent,
 *                         listening, time-wait, ...), or a group: all,
 *                         connected, synchronized
 *   src|dst PREFIX        ADDR[/LEN][:PORT], [IPV6][/LEN][:PORT], *:PORT
 *   sport|dport OP PORT   OP: = == != < > <= >= eq ne neq lt gt le ge;
 *                         PORT as ss writes it (:80) or bare (80)
 *
 * joined by and/&&, or/||, not/! and parentheses (and binds tighter than or;
 * primitives side by side are and-ed, as in ss). An empty filter takes every
 * socket. A v4-mapped IPv6 address is matched as the IPv4 address it holds,
 * as the connection is IPv4 on the wire.
 */
import { parseIpv4, parseIpv6 } from './addr.js';

export class SsFilterError extends Error {}

/** What the filter reads of a socket: filled by the caller, which may reuse one object for every socket. */
export interface SsFilterSock {
  /** The state's name as `ss` prints it (ESTABLISHED, SYN-SENT, LISTEN, ...); case does not matter. */
  state: string;
  /** 4 or 6: the length of src and dst that counts (4 bytes or 16). */
  family: number;
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
}

export type SsPredicate = (s: SsFilterSock) => boolean;

/** ss's state words, and the groups it defines over them. */
const STATES: Record<string, string[]> = {
  established: ['ESTABLISHED'],
  'syn-sent': ['SYN-SENT'],
  'syn-recv': ['SYN-RECV'],
  'fin-wait-1': ['FIN-WAIT-1'],
  'fin-wait-2': ['FIN-WAIT-2'],
  'time-wait': ['TIME-WAIT'],
  closed: ['CLOSE'],
  'close-wait': ['CLOSE-WAIT'],
  'last-ack': ['LAST-ACK'],
  listening: ['LISTEN'],
  closing: ['CLOSING'],
};
STATES.connected = ['ESTABLISHED', 'SYN-SENT', 'SYN-RECV', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSING'];
STATES.synchronized = STATES.connected.filter((s) => s !== 'SYN-SENT');
STATES.all = [...STATES.connected, 'CLOSE', 'LISTEN'];

const OPS: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '==': (a, b) => a === b,
  eq: (a, b) => a === b,
  '!=': (a, b) => a !== b,
  ne: (a, b) => a !== b,
  neq: (a, b) => a !== b,
  '<': (a, b) => a < b,
  lt: (a, b) => a < b,
  '>': (a, b) => a > b,
  gt: (a, b) => a > b,
  '<=': (a, b) => a <= b,
  le: (a, b) => a <= b,
  '>=': (a, b) => a >= b,
  ge: (a, b) => a >= b,
};

/** ADDR[/LEN][:PORT]: the address bytes (null: any), the prefix length, the port (-1: any). */
interface Prefix {
  addr: Uint8Array | null;
  len: number;
  port: number;
}

function parsePort(s: string, what: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n > 65535) throw new SsFilterError(`${what}: "${s}" is not a port (0-65535)`);
  return n;
}

/** A v4-mapped IPv6 address as its IPv4 bytes, so it matches the connection's family. */
function unmap(b: Uint8Array): Uint8Array {
  const mapped = b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? b.slice(12) : b;
}

function parsePrefix(text: string, what: string): Prefix {
  let addrText = text;
  let port = -1;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new SsFilterError(`${what}: "${text}" has no closing ]`);
    const m = /^(\/\d+)?(?::(.*))?$/.exec(text.slice(close + 1));
    if (!m) throw new SsFilterError(`${what}: cannot read "${text}"`);
    addrText = text.slice(1, close) + (m[1] ?? '');
    if (m[2] !== undefined && m[2] !== '*') port = parsePort(m[2], what);
  } else if (text.split(':').length === 2) {
    // IPv4 or *, with a port.
    const [a, p] = text.split(':');
    addrText = a;
    port = p === '' || p === '*' ? -1 : parsePort(p, what);
  }
  if (addrText === '*' || addrText === '') return { addr: null, len: 0, port };
  const slash = addrText.indexOf('/');
  const bare = slash < 0 ? addrText : addrText.slice(0, slash);
  let addr: Uint8Array;
  const v4 = parseIpv4(bare);
  if (v4 !== null) {
    addr = new Uint8Array([v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255]);
  } else {
    const v6 = parseIpv6(bare);
    if (!v6) throw new SsFilterError(`${what}: "${bare}" is not an IPv4 or IPv6 address`);
    addr = unmap(v6);
  }
  let len = addr.length * 8;
  if (slash >= 0) {
    const l = Number(addrText.slice(slash + 1));
    if (!/^\d+$/.test(addrText.slice(slash + 1)) || l > len) throw new SsFilterError(`${what}: "${addrText}" has a bad prefix length`);
    len = l;
  }
  return { addr, len, port };
}

function prefixMatches(p: Prefix, family: number, a: Uint8Array, port: number): boolean {
  if (p.port >= 0 && p.port !== port) return false;
  if (p.addr === null) return true;
  if (p.addr.length !== (family === 6 ? 16 : 4)) return false;
  let bits = p.len;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i] & mask) !== (p.addr[i] & mask)) return false;
  }
  return true;
}

function tokenize(text: string): string[] {
  const out: string[] = [];
  const re = /\s*(\(|\)|&&|\|\||!=|==|<=|>=|=|<|>|!|[^\s()!=<>&|]+)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.push(m[1]);
  if (out.join('').length !== text.replace(/\s+/g, '').length) throw new SsFilterError(`cannot read "${text.slice(re.lastIndex).trim()}"`);
  return out;
}

class Parser {
  i = 0;
  constructor(readonly t: string[]) {}
  next(what: string): string {
    const v = this.t[this.i++];
    if (v === undefined) throw new SsFilterError(`${what} is missing at the end`);
    return v;
  }
  or(): SsPredicate {
    let a = this.and();
    while (this.t[this.i] === 'or' || this.t[this.i] === '||') {
      this.i++;
      const l = a;
      const r = this.and();
      a = (s) => l(s) || r(s);
    }
    return a;
  }
  and(): SsPredicate {
    let a = this.not();
    for (;;) {
      const t = this.t[this.i];
      if (t === 'and' || t === '&&') this.i++;
      else if (t === undefined || t === ')' || t === 'or' || t === '||') return a;
      const l = a;
      const r = this.not();
      a = (s) => l(s) && r(s);
    }
  }
  not(): SsPredicate {
    const t = this.t[this.i];
    if (t === 'not' || t === '!') {
      this.i++;
      const x = this.not();
      return (s) => !x(s);
    }
    return this.primary();
  }
  primary(): SsPredicate {
    const t = this.next('an expression');
    if (t === '(') {
      const x = this.or();
      if (this.next('")"') !== ')') throw new SsFilterError('a "(" is not closed');
      return x;
    }
    switch (t) {
      case 'state': {
        const name = this.next('a state after "state"').toLowerCase();
        const set = STATES[name];
        if (!set) throw new SsFilterError(`state: "${name}" is not one of ${Object.keys(STATES).join(', ')}`);
        return (s) => set.includes(s.state.toUpperCase());
      }
      case 'src':
      case 'dst': {
        const p = parsePrefix(this.next(`an address after "${t}"`), t);
        return t === 'src' ? (s) => prefixMatches(p, s.family, s.src, s.sport) : (s) => prefixMatches(p, s.family, s.dst, s.dport);
      }
      case 'sport':
      case 'dport': {
        let op = OPS['='];
        const o = this.t[this.i];
        if (o !== undefined && o in OPS) {
          op = OPS[o];
          this.i++;
        }
        const v = this.next(`a port after "${t}"`);
        // ss takes [ADDR]:PORT here; the port is what counts.
        const p = parsePort(v.slice(v.lastIndexOf(':') + 1), t);
        return t === 'sport' ? (s) => op(s.sport, p) : (s) => op(s.dport, p);
      }
      default:
        throw new SsFilterError(`"${t}" is not a filter word (state, src, dst, sport, dport, and, or, not)`);
    }
  }
}

/** Compile an ss-style filter (the words joined by spaces, as the command line gives them). */
export function compileSsFilter(text: string): SsPredicate {
  const t = tokenize(text.trim());
  if (!t.length) return () => true;
  const p = new Parser(t);
  const pred = p.or();
  if (p.i < t.length) throw new SsFilterError(`unexpected "${t[p.i]}"`);
  return pred;
}
