/**
 * The bind-conflict matrix: one socket (the holder) on a port in a state,
 * then a new socket binds the same port and, if that works, listens. Every
 * combination of SO_REUSEADDR and SO_REUSEPORT on both (the new socket's
 * owner the same user or another one when both set SO_REUSEPORT), of the
 * holder's state (bound, listening, an accepted connection, that connection
 * in TIME_WAIT, bound then connected, that connection reset by the peer
 * (CLOSE with its port still held), reset after connect() chose the port,
 * closed first by the holder that keeps its descriptor), and of the addresses: IPv4 wildcard
 * and specific, IPv6 wildcard dual-stack and IPV6_V6ONLY, IPv6 specific,
 * v4-mapped.
 *
 * One list of cases drives three runs: the stack on the virtual clock
 * (runBindCase, test/unit/bind_conflict.test.ts), and the kernel and the
 * stack through the preload library (test/integration/bind_matrix.py,
 * test/integration/bind_matrix.test.ts). Outcomes are kept in a text
 * form, one line per holder setup (formatMatrix): what Linux answered is
 * recorded that way in test/unit/bind_matrix.linux.txt.
 */
import type { Stack } from '../../src/net/stack.js';
import { Socket, socketSetsockopt } from '../../src/net/socket.js';
import { sockAddr, TCP_CLOSE } from '../../src/net/core/sock.js';
import {
  AF_INET,
  AF_INET6,
  EINPROGRESS,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SHUT_WR,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_LINGER,
  SO_REUSEADDR,
  SO_REUSEPORT,
  errnoName,
  type SockAddr,
} from '../../src/uapi.js';

export type Kind = 'v4any' | 'v4a' | 'v4b' | 'v6any' | 'v6only' | 'v6a' | 'v6mapped';
export type HolderState = 'close' | 'listen' | 'established' | 'timewait' | 'connected' | 'reset' | 'ephemeral-reset' | 'timewait-open';

/** Where the holder can be: every kind but v4b (the new socket's "another specific address"). */
export const HOLDER_KINDS: readonly Kind[] = ['v4any', 'v4a', 'v6any', 'v6only', 'v6a', 'v6mapped'];
export const NEW_KINDS: readonly Kind[] = ['v4any', 'v4a', 'v4b', 'v6any', 'v6only', 'v6a', 'v6mapped'];
export const STATES: readonly HolderState[] = ['close', 'listen', 'established', 'timewait', 'connected', 'reset', 'ephemeral-reset', 'timewait-open'];

export interface SockSpec {
  kind: Kind;
  /** SO_REUSEADDR */
  ra: 0 | 1;
  /** SO_REUSEPORT */
  rp: 0 | 1;
}

export interface BindCase {
  id: string;
  port: number;
  state: HolderState;
  holder: SockSpec;
  new: SockSpec;
  /** The new socket belongs to another user (only when both set SO_REUSEPORT: the one rule uid decides). */
  otherUid: boolean;
}

/** bind's outcome ('ok' or an errno name), then listen's (null when bind failed). */
export interface BindOutcome {
  id: string;
  bind: string;
  listen: string | null;
}

const FLAGS: readonly [0 | 1, 0 | 1][] = [
  [0, 0],
  [1, 0],
  [0, 1],
  [1, 1],
];

/** '--', 'a-', '-p', 'ap': SO_REUSEADDR, SO_REUSEPORT. */
export function flagsName(s: { ra: number; rp: number }): string {
  return (s.ra ? 'a' : '-') + (s.rp ? 'p' : '-');
}

/** The new-socket flag sets tried for one holder setup. */
function newFlags(otherUid: boolean): readonly [0 | 1, 0 | 1][] {
  return otherUid ? FLAGS.filter(([, rp]) => rp) : FLAGS;
}

/** One holder setup: its state, kind, flags, and whose the new socket is. */
interface Row {
  state: HolderState;
  kind: Kind;
  ra: 0 | 1;
  rp: 0 | 1;
  otherUid: boolean;
}

function rows(): Row[] {
  const out: Row[] = [];
  for (const state of STATES) {
    for (const kind of HOLDER_KINDS) {
      for (const [ra, rp] of FLAGS) {
        out.push({ state, kind, ra, rp, otherUid: false });
        if (rp) out.push({ state, kind, ra, rp, otherUid: true });
      }
    }
  }
  return out;
}

function rowKey(r: Row): string {
  return `${r.state} ${r.kind} ${flagsName(r)} ${r.otherUid ? 'other' : 'same'}`;
}

/** Every case, each on its own port from basePort up (TIME_WAIT holders outlive their case). */
export function bindMatrixCases(basePort: number): BindCase[] {
  const cases: BindCase[] = [];
  let port = basePort;
  for (const r of rows()) {
    for (const kind of NEW_KINDS) {
      for (const [ra, rp] of newFlags(r.otherUid)) {
        const n: SockSpec = { kind, ra, rp };
        cases.push({
          id: `${rowKey(r)} ${kind} ${flagsName(n)}`,
          port: port++,
          state: r.state,
          holder: { kind: r.kind, ra: r.ra, rp: r.rp },
          new: n,
          otherUid: r.otherUid,
        });
      }
    }
  }
  return cases;
}

/** O: bind and listen work; L: bind works, listen EADDRINUSE; B: bind EADDRINUSE; else [bind/listen]. */
export function outcomeCode(o: { bind: string; listen: string | null }): string {
  if (o.bind === 'ok' && o.listen === 'ok') return 'O';
  if (o.bind === 'ok' && o.listen === 'EADDRINUSE') return 'L';
  if (o.bind === 'EADDRINUSE' && o.listen === null) return 'B';
  return `[${o.bind}/${o.listen}]`;
}

/**
 * The outcomes as text: a line per holder setup ("timewait v4a a- same"),
 * then for each new socket's address its codes in flag order (--, a-, -p,
 * ap; only -p and ap for another user), e.g. "v4any=BOBO".
 */
export function formatMatrix(cases: readonly BindCase[], outcomes: ReadonlyMap<string, BindOutcome>): string {
  const lines: string[] = [];
  let cur = '';
  let line = '';
  let kind = '';
  for (const c of cases) {
    const key = c.id.split(' ').slice(0, 4).join(' ');
    if (key !== cur) {
      if (line) lines.push(line);
      cur = key;
      line = key;
      kind = '';
    }
    if (c.new.kind !== kind) {
      kind = c.new.kind;
      line += ` ${kind}=`;
    }
    const o = outcomes.get(c.id);
    line += o ? outcomeCode(o) : '?';
  }
  if (line) lines.push(line);
  return lines.join('\n') + '\n';
}

/** The recorded form of a kernel's outcomes: formatMatrix's text under a header naming the kernel. */
export function matrixRecord(kernel: string, cases: readonly BindCase[], outcomes: ReadonlyMap<string, BindOutcome>): string {
  return (
    `# What Linux ${kernel} answered for the cases of test/lib/bind_matrix.ts: a line per holder setup\n` +
    '# (its state, address, SO_REUSEADDR/SO_REUSEPORT, the new socket\'s user), then per address of\n' +
    '# the new socket its outcome for flags --, a-, -p, ap (-p, ap for another user).\n' +
    '# O: bind and listen work; L: listen fails with EADDRINUSE; B: bind fails with EADDRINUSE.\n' +
    formatMatrix(cases, outcomes)
  );
}

/** formatMatrix's text back to a code per case id (lines starting with # are comments). */
export function parseMatrix(text: string, cases: readonly BindCase[]): Map<string, string> {
  const byRow = new Map<string, Map<string, string[]>>();
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const parts = l.split(' ');
    const key = parts.slice(0, 4).join(' ');
    const kinds = new Map<string, string[]>();
    for (const p of parts.slice(4)) {
      const [k, codes] = p.split('=');
      kinds.set(k, codes.match(/\[[^\]]*\]|[^[]/g) ?? []);
    }
    byRow.set(key, kinds);
  }
  const out = new Map<string, string>();
  const next = new Map<string, number>();
  for (const c of cases) {
    const key = c.id.split(' ').slice(0, 4).join(' ');
    const codes = byRow.get(key)?.get(c.new.kind);
    if (!codes) continue;
    const slot = `${key} ${c.new.kind}`;
    const i = next.get(slot) ?? 0;
    next.set(slot, i + 1);
    if (i < codes.length) out.set(c.id, codes[i]);
  }
  return out;
}

// --- the stack on the virtual clock ---------------------------------------------------

/** The stack's addresses the kinds stand for (the harness's 10.0.0.2, a second 10.0.0.3, fd00::2). */
export interface MatrixAddrs {
  v4a: number;
  v4b: number;
  v6: Uint8Array;
}

const OTHER_UID = 65534;
/** A connecting client's port is its case's port less this (bind_matrix.py's CLIENT_PORT_OFFSET). */
const CLIENT_PORT_OFFSET = 10000;

function kindFamily(k: Kind): number {
  return k === 'v4any' || k === 'v4a' || k === 'v4b' ? AF_INET : AF_INET6;
}

function kindAddr(k: Kind, a: MatrixAddrs, port: number): SockAddr {
  const sa = sockAddr(kindFamily(k));
  sa.port = port;
  if (k === 'v4a') sa.addr = a.v4a;
  else if (k === 'v4b') sa.addr = a.v4b;
  else if (k === 'v6a') sa.addr6!.set(a.v6);
  else if (k === 'v6mapped') {
    sa.addr6![10] = sa.addr6![11] = 0xff;
    new DataView(sa.addr6!.buffer).setUint32(12, a.v4a);
  }
  return sa;
}

function int(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}

function must(rc: number, what: string): void {
  if (rc < 0) throw new Error(`${what}: ${errnoName(-rc)}`);
}

/** Let looped-back segments be delivered (the loopback backlog drains in a microtask). */
function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

function newSocket(stack: Stack, s: SockSpec, uid: number): Socket {
  const sock = stack.families.create(kindFamily(s.kind), SOCK_STREAM, 0, uid);
  if (typeof sock === 'number') throw new Error(`socket: ${errnoName(-sock)}`);
  if (kindFamily(s.kind) === AF_INET6) must(socketSetsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, int(s.kind === 'v6only' ? 1 : 0)), 'IPV6_V6ONLY');
  if (s.ra) must(socketSetsockopt(sock, SOL_SOCKET, SO_REUSEADDR, int(1)), 'SO_REUSEADDR');
  if (s.rp) must(socketSetsockopt(sock, SOL_SOCKET, SO_REUSEPORT, int(1)), 'SO_REUSEPORT');
  return sock;
}

async function connectTo(sock: Socket, to: SockAddr): Promise<void> {
  const rc = sock.ops.connect(sock.sk, to);
  if (rc !== -EINPROGRESS) must(rc, 'connect');
  await settle();
  must(sock.ops.connectWait(sock.sk), 'connect');
}

function accept(l: Socket): Socket {
  const c = l.ops.accept(l.sk);
  if (typeof c === 'number') throw new Error(`accept: ${errnoName(-c)}`);
  return new Socket(c, l.ops);
}

/**
 * The helpers a connected holder connects to (an IPv4 listener on v4a and
 * an IPv6-only one on v6, on helperPort), made once per stack.
 */
export function bindMatrixHelpers(stack: Stack, a: MatrixAddrs, helperPort: number): { v4: Socket; v6: Socket } {
  const v4 = newSocket(stack, { kind: 'v4a', ra: 0, rp: 0 }, 0);
  must(v4.ops.bind(v4.sk, kindAddr('v4a', a, helperPort), true), 'helper bind');
  must(v4.ops.listen(v4.sk, 64), 'helper listen');
  const v6 = newSocket(stack, { kind: 'v6only', ra: 0, rp: 0 }, 0);
  must(v6.ops.bind(v6.sk, kindAddr('v6a', a, helperPort), true), 'helper bind');
  must(v6.ops.listen(v6.sk, 64), 'helper listen');
  return { v4, v6 };
}

function expectEof(s: Socket, what: string): void {
  const n = s.ops.recvmsg(s.sk, new Uint8Array(1), 0, null, true);
  if (n !== 0) throw new Error(`${what}: ${n < 0 ? errnoName(-n) : 'data'} instead of the FIN`);
}

function expectClosed(s: Socket, what: string): void {
  if (s.sk.state !== TCP_CLOSE) throw new Error(`${what}: state ${s.sk.state}, not CLOSE`);
}

/** The new socket's two calls. */
function tryNew(stack: Stack, a: MatrixAddrs, s: SockSpec, port: number, uid: number): [string, string | null] {
  const sock = newSocket(stack, s, uid);
  try {
    const b = sock.ops.bind(sock.sk, kindAddr(s.kind, a, port), uid === 0);
    if (b < 0) return [errnoName(-b), null];
    const l = sock.ops.listen(sock.sk, 8);
    return ['ok', l < 0 ? errnoName(-l) : 'ok'];
  } finally {
    sock.ops.release(sock.sk);
  }
}

/** One case on the stack, the sequence bind_matrix.py runs (all at one virtual instant). */
export async function runBindCase(stack: Stack, a: MatrixAddrs, helpers: { v4: Socket; v6: Socket }, c: BindCase, helperPort: number): Promise<BindOutcome> {
  const keep: Socket[] = [];
  const hk = c.holder.kind;
  const peerV4 = hk === 'v4any' || hk === 'v4a' || hk === 'v6mapped';
  const peerKind: Kind = peerV4 ? 'v4a' : 'v6a';
  let port = c.port;
  let out: BindOutcome | null = null;
  try {
    const h = newSocket(stack, c.holder, 0);
    keep.push(h);
    if (c.state !== 'ephemeral-reset') must(h.ops.bind(h.sk, kindAddr(hk, a, port), true), 'bind');
    if (c.state === 'listen') {
      must(h.ops.listen(h.sk, 8), 'listen');
    } else if (c.state === 'established' || c.state === 'timewait') {
      must(h.ops.listen(h.sk, 8), 'listen');
      const cl = newSocket(stack, { kind: peerKind, ra: 0, rp: 0 }, 0);
      keep.push(cl);
      // Off the ephemeral range: no TIME_WAIT of it can meet an ephemeral-reset case.
      must(cl.ops.bind(cl.sk, kindAddr(peerKind, a, port - CLIENT_PORT_OFFSET), true), 'client bind');
      await connectTo(cl, kindAddr(peerKind, a, port));
      const child = accept(h);
      keep.push(child);
      h.ops.release(h.sk);
      keep.shift();
      if (c.state === 'timewait') {
        child.ops.release(child.sk);
        keep.pop();
        await settle();
        expectEof(cl, c.state);
        must(cl.ops.shutdown(cl.sk, SHUT_WR), 'shutdown');
        await settle();
        expectClosed(cl, c.state);
      }
    } else if (c.state !== 'close') {
      const to = kindAddr(hk === 'v6mapped' ? 'v6mapped' : peerKind, a, helperPort);
      await connectTo(h, to);
      // connect() chose the port: that is the one the new socket asks for.
      if (c.state === 'ephemeral-reset') port = h.sk.num;
      const peer = accept(peerV4 ? helpers.v4 : helpers.v6);
      keep.push(peer);
      if (c.state === 'reset' || c.state === 'ephemeral-reset') {
        // SO_LINGER 0: the peer's close is a RST.
        const lin = Buffer.alloc(8);
        lin.writeInt32LE(1, 0);
        must(socketSetsockopt(peer, SOL_SOCKET, SO_LINGER, lin), 'SO_LINGER');
        peer.ops.release(peer.sk);
        keep.pop();
        await settle();
        expectClosed(h, c.state);
      } else if (c.state === 'timewait-open') {
        // The holder closes first and stays open: TIME_WAIT with its descriptor kept.
        must(h.ops.shutdown(h.sk, SHUT_WR), 'shutdown');
        await settle();
        expectEof(peer, c.state);
        peer.ops.release(peer.sk);
        keep.pop();
        await settle();
        expectClosed(h, c.state);
      }
    }
  } catch (e) {
    out = { id: c.id, bind: `setup: ${(e as Error).message}`, listen: null };
  }
  if (!out) {
    const [bind, listen] = tryNew(stack, a, c.new, port, c.otherUid ? OTHER_UID : 0);
    out = { id: c.id, bind, listen };
  }
  // Each close is answered before the next, as on the kernel's loopback.
  for (const s of keep.reverse()) {
    s.ops.release(s.sk);
    await settle();
  }
  return out;
}
