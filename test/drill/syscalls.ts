/**
 * The system calls a script makes, by name: each plays its call on the
 * stack's socket calls against the run (SyscallRun: its descriptors, the
 * names it resolves, its failure report), returning the result now or
 * null after arming the call's retry on wake-ups (block).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Timer, type VirtualTime } from '../../src/lib/time.js';
import * as errnos from '../../src/uapi.js';
import { AF_INET, AF_INET6, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_WAITALL, POLLERR, POLLHUP, SOL_SOCKET, type SockAddr } from '../../src/uapi.js';
import {
  tcpAccept,
  tcpBind,
  tcpClose,
  tcpConnect,
  tcpGetsockopt,
  tcpInq,
  tcpInqHint,
  tcpListen,
  tcpPoll,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
  tcpShutdown,
} from '../../src/net/ipv4/tcp.js';
import type { TcpProto } from '../../src/net/ipv4/tcp_proto.js';
import { SS_UNCONNECTED, type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { TCP_LISTEN } from '../../src/net/core/sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { inetStreamConnectResult } from '../../src/net/ipv4/af_inet_connect.js';
import { tcpV6Bind, tcpV6Connect, tcpv6Prot } from '../../src/net/ipv6/tcp_ipv6.js';
import { tcpSpliceRead } from '../../src/net/ipv4/tcp_splice.js';
import { userBuffer } from '../../src/net/core/uaccess.js';
import type { Event, Expr, SyscallSpec } from './parse.js';
import { Unsupported } from './shell.js';
import type { RunFiles } from './files.js';
import { Pipe, SPLICE_F_NONBLOCK, type FileFd, type PipeFd } from './fdcalls.js';
import { FastopenSend, fastopenDest, msgName } from './fastopen.js';
import { EP_PRIVATE_BITS, iovLens, iovTail } from './errqueue.js';
import { EPOLLET, EPOLLONESHOT, LOCAL_IP, LOCAL_IP6, LOCAL_IP_MAPPED, O_NONBLOCK, REMOTE_IP, REMOTE_IP6, REMOTE_IP_MAPPED, SCRIPT_PORT, SYMBOLS } from './symbols.js';
import type { DrillFamily } from './run.js';

export type SockFd = { kind: 'sock'; fd: number; sk: TcpSock; nonblock: boolean };
export type EpollItem = { fd: number; events: number; data: number; ready: boolean };
export type EpollFd = { kind: 'epoll'; fd: number; items: Map<number, EpollItem> };
export type Fd = SockFd | EpollFd | FileFd | PipeFd;

/** A call that could not complete yet: retried when a socket it waits on is woken. */
export interface Pending {
  ev: Event;
  name: string;
  /** Returns the result, or undefined while it must still wait. */
  attempt: (timedOut: boolean) => CallResult | undefined;
  woken: boolean;
  timer: Timer | null;
  timedOut: boolean;
  start: number;
  /** Expected return time (script ms), from `...T`; start when the call should not block. */
  end: number;
  tol: number;
}

export interface CallResult {
  /** Linux's return value (negative errno turned into -1 + errno). */
  ret: number;
  errno?: number;
  /** Extra checks run against the script's arguments after return. */
  check?: () => void;
}

/** What a call reads and changes of the run it is made in. */
export interface SyscallRun {
  readonly tcp: TcpProto;
  readonly family: DrillFamily;
  readonly files: RunFiles;
  readonly time: VirtualTime;
  readonly fds: Map<number, Fd>;
  nextFd: number;
  sym(ev: Event, e: Expr): number;
  fd(ev: Event, e: Expr): Fd;
  sock(ev: Event, e: Expr): SockFd;
  fail(ev: Event, msg: string): never;
  allocFd(ev: Event): number;
  newSockFd(sk: TcpSock, fd: number): SockFd;
  /** Take what the stack sent into the run's queue of outbound segments. */
  collect(): void;
  /** The script's socket is bound to `port`. */
  bound(port: number): void;
  /** A socket started listening. */
  listening(): void;
  /** `f` opened a connection (connect, or a Fast Open send): it is the socket under test. */
  activeOpen(f: SockFd): void;
  recvErr(ev: Event, f: SockFd, msg: Expr | null, len: number): CallResult;
}

/** One call being made. */
export interface Call {
  readonly ev: Event;
  readonly s: SyscallSpec;
  readonly p: Pending;
  readonly a: Expr[];
  readonly tcp: TcpProto;
}

type Handler = (run: SyscallRun, call: Call) => CallResult | null;

const res = (rc: number): CallResult => (rc < 0 ? { ret: -1, errno: -rc } : { ret: rc });

/** The result now, or null after setting the call's attempt to retry on wake-ups. */
function block(call: Call, attempt: (timedOut: boolean) => CallResult | undefined): CallResult | null {
  const r = attempt(false);
  if (r) return r;
  call.p.attempt = attempt;
  return null;
}

function need(run: SyscallRun, call: Call, n: number): void {
  if (call.a.length < n) run.fail(call.ev, `${call.s.name} needs ${n} arguments`);
}

/** Arm the call's timeout (poll/epoll_wait), in ms from now. */
function armTimeout(run: SyscallRun, p: Pending, msFromNow: number): void {
  if (msFromNow < 0) return;
  const t = new Timer(() => {
    p.timedOut = true;
    p.woken = true;
  });
  p.timer = t;
  run.time.timers.mod(t, run.time.now() + msFromNow);
}

function sysSocket(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 3);
  // `...` is the run's family, as packetdrill fills it in per --ip_version.
  const fam = a[0].k === 'ell' ? (run.family === 'ipv4' ? AF_INET : AF_INET6) : run.sym(ev, a[0]);
  if (fam !== AF_INET && fam !== AF_INET6) throw new Unsupported('socket family other than AF_INET/AF_INET6');
  if (run.sym(ev, a[1]) !== 1) throw new Unsupported('socket type other than SOCK_STREAM');
  // tcpv6_prot for AF_INET6, as inet6_create gives (a Fast Open send connects through sk.prot).
  const f = run.newSockFd(tcpNewSock(tcp, fam, fam === AF_INET6 ? tcpv6Prot(tcp) : undefined), run.allocFd(ev));
  return { ret: f.fd };
}

function sysBind(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 1);
  const f = run.sock(ev, a[0]);
  if (a[1] && a[1].k !== 'ell') throw new Unsupported('bind to an explicit address');
  const rc =
    f.sk.family === AF_INET6
      ? tcpV6Bind(tcp, f.sk, run.family === 'ipv6' ? LOCAL_IP6 : LOCAL_IP_MAPPED, SCRIPT_PORT)
      : tcpBind(tcp, f.sk, LOCAL_IP, SCRIPT_PORT);
  if (rc === 0) run.bound(SCRIPT_PORT);
  return res(rc);
}

function sysListen(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 2);
  const f = run.sock(ev, a[0]);
  const wasListening = f.sk.state === TCP_LISTEN;
  const rc = tcpListen(tcp, f.sk, run.sym(ev, a[1]));
  if (rc === 0 && !wasListening) run.listening();
  return res(rc);
}

function sysAccept(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 1);
  const f = run.sock(ev, a[0]);
  return block(call, () => {
    const c = tcpAccept(tcp, f.sk);
    if (typeof c === 'number') {
      if (c === -errnos.EAGAIN && !f.nonblock) return undefined;
      return res(c);
    }
    const nf = run.newSockFd(c, run.allocFd(ev));
    return { ret: nf.fd };
  });
}

function sysConnect(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 1);
  const f = run.sock(ev, a[0]);
  if (a[1] && a[1].k !== 'ell') throw new Unsupported('connect to an explicit address');
  const rc =
    f.sk.family === AF_INET6
      ? tcpV6Connect(tcp, f.sk, run.family === 'ipv6' ? REMOTE_IP6 : REMOTE_IP_MAPPED, SCRIPT_PORT)
      : tcpConnect(tcp, f.sk, REMOTE_IP, SCRIPT_PORT);
  if (rc === -errnos.EINPROGRESS || (rc === 0 && f.sk.deferConnect)) {
    run.activeOpen(f);
    run.collect();
  }
  if (rc !== -errnos.EINPROGRESS || f.nonblock) return res(rc);
  // The rest of __inet_stream_connect once the handshake is over (the socket's SS_ state included).
  return block(call, () => {
    const r = inetStreamConnectResult(f.sk);
    if (r === -errnos.EINPROGRESS) return undefined;
    return r < 0 ? { ret: -1, errno: -r } : { ret: 0 };
  });
}

function sysSendmsg(run: SyscallRun, call: Call): CallResult | null {
  const { ev, s, a, tcp } = call;
  need(run, call, 2);
  const f = run.sock(ev, a[0]);
  let len: number;
  let flags = 0;
  const iov = s.name === 'writev' || s.name === 'sendmsg' ? iovLens(a[1], (e) => run.sym(ev, e)) : undefined;
  if (s.name === 'write' || s.name === 'send' || s.name === 'sendto') {
    need(run, call, 3);
    len = run.sym(ev, a[2]);
    if (s.name !== 'write') flags = run.sym(ev, a[3] ?? { k: 'int', v: 0 });
  } else if (s.name === 'writev') {
    len = iovLen(run, ev, a[1]);
  } else {
    len = msgIovLen(run, ev, a[1]);
    flags = run.sym(ev, a[2] ?? { k: 'int', v: 0 });
  }
  // NULL is a bad user pointer: the stack's copy faults (packetdrill passes it on as is).
  const data = isNull(a[1]) ? userBuffer(len, 0) : Buffer.alloc(len);
  const nonblock = f.nonblock || (flags & MSG_DONTWAIT) !== 0;
  let done = 0;
  // MSG_FASTOPEN's address (sendto's fifth argument, msg_name), or a deferred TCP_FASTOPEN_CONNECT.
  const fo = new FastopenSend(f.sk, flags, fastopenDest(s.name === 'sendmsg' ? msgName(a[1]) : a[4], remoteAddr(run, f.sk)));
  return block(call, () => {
    const w = fo.wait();
    if (w) return w.errno ? (done = 0, res(-w.errno)) : undefined;
    for (;;) {
      if (done === len && !fo.first) return { ret: done };
      const opening = fo.first && f.sk.socketState === SS_UNCONNECTED;
      const rc = tcpSendmsg(tcp, f.sk, data.subarray(done), fo.flags(flags), fo.to, iov && iovTail(iov, done));
      if (fo.first) {
        const r = fo.started(rc, nonblock, len - done);
        if (opening && f.sk.num && f.sk.dport) {
          run.activeOpen(f);
        }
        run.collect();
        if (r === 'wait') {
          if (rc > 0) done += rc;
          return undefined;
        }
        if (r === 'return') return res(rc);
        if (rc > 0) done += rc;
        if (len === 0) return { ret: 0 };
        continue;
      }
      if (rc > 0) {
        done += rc;
        continue;
      }
      if (rc === 0 && len === 0) return { ret: 0 };
      if (rc === -errnos.EAGAIN || rc === 0) {
        if (nonblock) return done ? { ret: done } : res(-errnos.EAGAIN);
        return undefined;
      }
      return done ? { ret: done } : res(rc);
    }
  });
}

function sysRecvmsg(run: SyscallRun, call: Call): CallResult | null {
  const { ev, s, a, tcp } = call;
  need(run, call, 2);
  const f = run.sock(ev, a[0]);
  let len: number;
  let flags = 0;
  let inqCheck: number | undefined;
  if (s.name === 'read' || s.name === 'recv' || s.name === 'recvfrom') {
    need(run, call, 3);
    len = run.sym(ev, a[2]);
    if (s.name !== 'read') flags = run.sym(ev, a[3] ?? { k: 'int', v: 0 });
  } else if (s.name === 'readv') {
    len = iovLen(run, ev, a[1]);
  } else {
    len = msgIovLen(run, ev, a[1]);
    flags = run.sym(ev, a[2] ?? { k: 'int', v: 0 });
    if (!(flags & MSG_ERRQUEUE)) inqCheck = cmsgInq(run, ev, a[1]);
  }
  if (flags & MSG_ERRQUEUE) return run.recvErr(ev, f, s.name === 'recvmsg' ? a[1] : null, len);
  const into = isNull(a[1]) ? userBuffer(len, 0) : Buffer.alloc(len);
  const nonblock = f.nonblock || (flags & MSG_DONTWAIT) !== 0;
  let got = 0;
  return block(call, () => {
    for (;;) {
      const rc = tcpRecvmsg(tcp, f.sk, into.subarray(got), flags & ~MSG_WAITALL);
      if (rc > 0) {
        got += rc;
        if (flags & MSG_WAITALL && got < len) continue;
        break;
      }
      if (rc === -errnos.EAGAIN) {
        if (got && !(flags & MSG_WAITALL)) break;
        if (nonblock) return got ? { ret: got } : res(rc);
        return undefined;
      }
      if (got) break;
      return res(rc);
    }
    const r: CallResult = { ret: got };
    if (inqCheck !== undefined) {
      // The control message comes only with TCP_INQ on.
      const inq = f.sk.recvmsgInq ? tcpInqHint(f.sk) : undefined;
      r.check = () => {
        if (inq === undefined) run.fail(ev, 'runtime error in recvmsg call: expected a TCP_CM_INQ control message, got none (TCP_INQ off)');
        if (inq !== inqCheck) run.fail(ev, `runtime error in recvmsg call: TCP_CM_INQ: expected ${inqCheck} but got ${inq}`);
      };
    }
    return r;
  });
}

function sysShutdown(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 2);
  const f = run.sock(ev, a[0]);
  return res(tcpShutdown(tcp, f.sk, run.sym(ev, a[1])));
}

function sysClose(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 1);
  const f = run.fd(ev, a[0]);
  run.fds.delete(f.fd);
  for (const e of run.fds.values()) if (e.kind === 'epoll') e.items.delete(f.fd);
  if (f.kind === 'sock') tcpClose(tcp, f.sk);
  if (f.kind === 'pipe') f.pipe[f.write ? 'writers' : 'readers']--;
  run.collect();
  return { ret: 0 };
}

function sysSetsockopt(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 4);
  const f = run.sock(ev, a[0]);
  const level = run.sym(ev, a[1]);
  const name = run.sym(ev, a[2]);
  if (a[3].k === 'struct') throw new Unsupported(`setsockopt with a struct (${exprStr(a[2])})`);
  const v = run.sym(ev, a[3]);
  return res(tcpSetsockopt(tcp, f.sk, level, name, v));
}

function sysGetsockopt(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 4);
  const f = run.sock(ev, a[0]);
  const level = run.sym(ev, a[1]);
  const name = run.sym(ev, a[2]);
  if (a[3].k === 'struct') throw new Unsupported(`getsockopt with a struct (${exprStr(a[2])})`);
  const v = tcpGetsockopt(tcp, f.sk, level, name);
  // SO_ERROR's value is an errno, TCP_LINGER2's may be -1: neither is the call's error.
  if (v < 0 && !(level === SOL_SOCKET && name === SYMBOLS.SO_ERROR) && !(level === SYMBOLS.SOL_TCP && name === SYMBOLS.TCP_LINGER2)) return res(v);
  const want = a[3].k === 'ell' ? undefined : run.sym(ev, a[3]);
  return {
    ret: 0,
    check: () => {
      if (want !== undefined && v !== want) run.fail(ev, `runtime error in getsockopt call: Bad getsockopt optval: expected: ${want} actual: ${v}`);
    },
  };
}

function sysFcntl(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a } = call;
  need(run, call, 2);
  const f = run.sock(ev, a[0]);
  const cmd = run.sym(ev, a[1]);
  if (cmd === SYMBOLS.F_GETFL) return { ret: 2 | (f.nonblock ? O_NONBLOCK : 0) };
  if (cmd === SYMBOLS.F_SETFL) {
    need(run, call, 3);
    f.nonblock = (run.sym(ev, a[2]) & O_NONBLOCK) !== 0;
    return { ret: 0 };
  }
  throw new Unsupported(`fcntl command ${exprStr(a[1])}`);
}

function sysIoctl(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a } = call;
  need(run, call, 3);
  const f = run.sock(ev, a[0]);
  const req = run.sym(ev, a[1]);
  const sk = f.sk;
  let v: number;
  if (req === SYMBOLS.SIOCINQ) v = tcpInq(sk);
  else if (req === SYMBOLS.SIOCOUTQ) v = (sk.writeSeq - sk.sndUna) >>> 0;
  else if (req === SYMBOLS.SIOCOUTQNSD) v = (sk.writeSeq - sk.sndNxt) >>> 0;
  else throw new Unsupported(`ioctl ${exprStr(a[1])}`);
  const want = a[2].k === 'ell' ? undefined : run.sym(ev, a[2]);
  return {
    ret: 0,
    check: () => {
      if (want !== undefined && v !== want) run.fail(ev, `runtime error in ioctl call: Bad ioctl optval: expected: ${want} actual: ${v}`);
    },
  };
}

function sysOpen(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a } = call;
  need(run, call, 2);
  if (a[0].k !== 'str') run.fail(ev, 'open needs a path string');
  const path = run.files.path(a[0].v);
  if (path === null) throw new Unsupported(`open of ${a[0].v} (only /tmp files the script makes)`);
  const flags = run.sym(ev, a[1]);
  if ((flags & 3) !== SYMBOLS.O_RDONLY || flags & ~3) throw new Unsupported(`open flags ${exprStr(a[1])}`);
  if (!existsSync(path)) return res(-errnos.ENOENT);
  const f: FileFd = { kind: 'file', fd: run.allocFd(ev), data: readFileSync(path), pos: 0 };
  run.fds.set(f.fd, f);
  return { ret: f.fd };
}

function sysPipe(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a } = call;
  need(run, call, 1);
  if (a[0].k !== 'list' || a[0].items.length !== 2) run.fail(ev, 'pipe needs [rfd, wfd]');
  const pipe = new Pipe();
  // The script names both descriptors: the numbers it expects, as packetdrill maps them.
  for (const [i, item] of a[0].items.entries()) {
    const want = run.sym(ev, item);
    const fd = run.fds.has(want) ? Math.max(run.nextFd, ...run.fds.keys()) + 1 : want;
    run.nextFd = Math.max(run.nextFd, fd + 1);
    run.fds.set(fd, { kind: 'pipe', fd, pipe, write: i === 1 });
  }
  return { ret: 0 };
}

function sysSendfile(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 4);
  const out = run.sock(ev, a[0]);
  const inf = run.fd(ev, a[1]);
  if (inf.kind !== 'file') run.fail(ev, 'sendfile: in_fd is not a file');
  // [offset] leaves the file offset alone; NULL reads from it and moves it.
  const useOff = a[2].k !== 'word' || a[2].v !== 'NULL';
  const start = useOff ? run.sym(ev, a[2]) : inf.pos;
  const data = inf.data.subarray(Math.min(start, inf.data.length), Math.min(start + run.sym(ev, a[3]), inf.data.length));
  let done = 0;
  return block(call, () => {
    for (;;) {
      if (done === data.length) break;
      const rc = tcpSendmsg(tcp, out.sk, data.subarray(done), 0);
      if (rc > 0) {
        done += rc;
        continue;
      }
      if (rc === -errnos.EAGAIN || rc === 0) {
        if (out.nonblock) return done ? { ret: done } : res(-errnos.EAGAIN);
        return undefined;
      }
      return done ? { ret: done } : res(rc);
    }
    if (!useOff) inf.pos += done;
    return { ret: done };
  });
}

function sysSplice(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 6);
  const from = run.fd(ev, a[0]);
  const to = run.fd(ev, a[2]);
  const len = run.sym(ev, a[4]);
  const flags = run.sym(ev, a[5]);
  for (const off of [a[1], a[3]]) if (off.k !== 'word' || off.v !== 'NULL') throw new Unsupported('splice with an offset');
  if (from.kind === 'sock' && to.kind === 'pipe' && to.write) {
    const nonblock = from.nonblock || (flags & SPLICE_F_NONBLOCK) !== 0;
    return block(call, () => {
      // splice_file_to_pipe waits for room in the pipe first.
      if (!to.pipe.space()) return nonblock ? res(-errnos.EAGAIN) : undefined;
      const rc = tcpSpliceRead(tcp, from.sk, (buf, off, n) => to.pipe.write(buf, off, n), Math.min(len, to.pipe.space()), nonblock);
      if (rc === -errnos.EAGAIN && !nonblock) return undefined;
      return res(rc);
    });
  }
  if (from.kind === 'pipe' && !from.write && to.kind === 'sock') {
    const nonblock = to.nonblock || (flags & SPLICE_F_NONBLOCK) !== 0;
    return block(call, () => {
      if (!from.pipe.len) return from.pipe.writers === 0 ? { ret: 0 } : nonblock ? res(-errnos.EAGAIN) : undefined;
      const chunk = Buffer.concat(from.pipe.chunks).subarray(0, Math.min(len, from.pipe.len));
      const rc = tcpSendmsg(tcp, to.sk, chunk, 0);
      if (rc > 0) {
        from.pipe.read(rc);
        return { ret: rc };
      }
      if ((rc === -errnos.EAGAIN || rc === 0) && !nonblock) return undefined;
      return res(rc === 0 ? -errnos.EAGAIN : rc);
    });
  }
  throw new Unsupported('splice other than socket to pipe or pipe to socket');
}

function sysEpollCreate(run: SyscallRun, call: Call): CallResult | null {
  const { ev } = call;
  const e: EpollFd = { kind: 'epoll', fd: run.allocFd(ev), items: new Map() };
  run.fds.set(e.fd, e);
  return { ret: e.fd };
}

function sysEpollCtl(run: SyscallRun, call: Call): CallResult | null {
  const { ev, a, tcp } = call;
  need(run, call, 3);
  const e = run.fd(ev, a[0]);
  if (e.kind !== 'epoll') return res(-errnos.EINVAL);
  const op = run.sym(ev, a[1]);
  const target = run.sock(ev, a[2]);
  if (op === SYMBOLS.EPOLL_CTL_DEL) return res(e.items.delete(target.fd) ? 0 : -2 /* ENOENT */);
  need(run, call, 4);
  const { events, data } = epollEvent(run, ev, a[3]);
  const exists = e.items.has(target.fd);
  if (op === SYMBOLS.EPOLL_CTL_ADD && exists) return res(-17 /* EEXIST */);
  if (op === SYMBOLS.EPOLL_CTL_MOD && !exists) return res(-2);
  // ep_insert / ep_modify: ready at once if the socket already has the events.
  // epoll_ctl always adds EPOLLERR and EPOLLHUP to what the item waits for.
  const ready = (tcpPoll(tcp, target.sk) & (events | POLLERR | POLLHUP)) !== 0;
  e.items.set(target.fd, { fd: target.fd, events: (events | POLLERR | POLLHUP) >>> 0, data, ready });
  return { ret: 0 };
}

function sysEpollWait(run: SyscallRun, call: Call): CallResult | null {
  const { ev, p, a, tcp } = call;
  need(run, call, 4);
  const e = run.fd(ev, a[0]);
  if (e.kind !== 'epoll') return res(-errnos.EINVAL);
  const want = a[1];
  const max = run.sym(ev, a[2]);
  const timeout = run.sym(ev, a[3]);
  const collect = (): { events: number; data: number }[] => {
    const out: { events: number; data: number }[] = [];
    for (const it of e.items.values()) {
      if (!it.ready || out.length >= max) continue;
      const f = run.fds.get(it.fd);
      if (!f || f.kind !== 'sock') continue;
      const m = tcpPoll(tcp, f.sk) & it.events & ~EP_PRIVATE_BITS;
      // Edge-triggered and one-shot items leave the ready list once reported; level stays while true.
      if (!m || it.events & EPOLLET) it.ready = false;
      if (m) {
        out.push({ events: m >>> 0, data: it.data });
        if (it.events & EPOLLONESHOT) it.events &= EP_PRIVATE_BITS;
      }
    }
    return out;
  };
  if (timeout > 0) armTimeout(run, p, timeout);
  return block(call, (timedOut) => {
    const got = collect();
    if (!got.length && timeout !== 0 && !timedOut) return undefined;
    return {
      ret: got.length,
      check: () => {
        if (!got.length || want.k === 'ell') return;
        const exp = want.k === 'list' ? want.items : [want];
        for (let i = 0; i < Math.min(exp.length, got.length); i++) {
          const x = epollEvent(run, ev, exp[i]);
          if (x.events !== got[i].events) run.fail(ev, `runtime error in epoll_wait call: epoll_event->events: expected: ${x.events} actual: ${got[i].events}`);
          if (x.data !== got[i].data) run.fail(ev, `runtime error in epoll_wait call: epoll_event->data: expected: ${x.data} actual: ${got[i].data}`);
        }
      },
    };
  });
}

function sysPoll(run: SyscallRun, call: Call): CallResult | null {
  const { ev, p, a } = call;
  if (a.length < 3 || a[0].k !== 'list') run.fail(ev, 'poll needs ([{fd=..., events=...}], nfds, timeout)');
  const fds = a[0].items.map((x) => {
    if (x.k !== 'struct') run.fail(ev, 'poll: expected {fd=..., events=...}');
    const get = (n: string) => x.fields.find((f) => f.name === n)?.value;
    const fd = run.sock(ev, get('fd') ?? run.fail(ev, 'poll: no fd'));
    const events = run.sym(ev, get('events') ?? run.fail(ev, 'poll: no events'));
    const rev = get('revents');
    return { f: fd, events, want: rev ? run.sym(ev, rev) : undefined };
  });
  const timeout = run.sym(ev, a[2]);
  if (timeout > 0) armTimeout(run, p, timeout);
  return block(call, (timedOut) => {
    const rev = fds.map((x) => tcpPoll(run.tcp, x.f.sk) & (x.events | POLLERR | POLLHUP));
    const n = rev.filter((r) => r !== 0).length;
    if (!n && timeout !== 0 && !timedOut) return undefined;
    return {
      ret: n,
      check: () => {
        fds.forEach((x, i) => {
          if (x.want !== undefined && x.want !== rev[i]) run.fail(ev, `runtime error in poll call: fd ${x.f.fd} revents: expected: 0x${x.want.toString(16)} actual: 0x${rev[i].toString(16)}`);
        });
      },
    };
  });
}

function epollEvent(run: SyscallRun, ev: Event, e: Expr): { events: number; data: number } {
  if (e.k !== 'struct') run.fail(ev, 'expected {events=..., fd=...}');
  let events = 0;
  let data = 0;
  for (const f of e.fields) {
    if (f.name === 'events') events = run.sym(ev, f.value) >>> 0;
    else if (f.name === 'fd' || f.name === 'ptr' || f.name === 'u32' || f.name === 'u64') data = run.sym(ev, f.value);
  }
  return { events, data };
}

function iovLen(run: SyscallRun, ev: Event, e: Expr): number {
  if (e.k === 'ell') run.fail(ev, 'an iovec needs lengths');
  if (e.k !== 'list') run.fail(ev, 'expected an iovec array');
  let n = 0;
  for (const it of e.items) {
    if (it.k !== 'struct' || it.fields.length !== 2) run.fail(ev, 'expected {..., LEN}');
    n += run.sym(ev, it.fields[1].value);
  }
  return n;
}

/** The script's remote as a connect() of this run's socket names it (v4-mapped for an AF_INET6 socket in an IPv4 run). */
function remoteAddr(run: SyscallRun, sk: TcpSock): SockAddr {
  if (sk.family !== AF_INET6) return { family: AF_INET, port: SCRIPT_PORT, addr: REMOTE_IP, addr6: null };
  return { family: AF_INET6, port: SCRIPT_PORT, addr: 0, addr6: run.family === 'ipv6' ? REMOTE_IP6 : REMOTE_IP_MAPPED };
}

function msgIovLen(run: SyscallRun, ev: Event, e: Expr): number {
  if (e.k !== 'struct') run.fail(ev, 'expected a msghdr');
  const iov = e.fields.find((f) => f.name === 'msg_iov');
  if (!iov) run.fail(ev, 'msghdr without msg_iov');
  return iovLen(run, ev, iov.value);
}

/** A recvmsg's expected TCP_CM_INQ control message, if any. */
function cmsgInq(run: SyscallRun, ev: Event, e: Expr): number | undefined {
  if (e.k !== 'struct') return undefined;
  const c = e.fields.find((f) => f.name === 'msg_control');
  if (!c) return undefined;
  if (c.value.k !== 'list' || c.value.items.length !== 1 || c.value.items[0].k !== 'struct') throw new Unsupported('msg_control other than one cmsg');
  const m = c.value.items[0];
  const type = m.fields.find((f) => f.name === 'cmsg_type');
  const data = m.fields.find((f) => f.name === 'cmsg_data');
  if (!type || !data || type.value.k !== 'word' || type.value.v !== 'TCP_CM_INQ') throw new Unsupported('control messages other than TCP_CM_INQ');
  return run.sym(ev, data.value);
}

/** The calls a script may make, by name. */
export const SYSCALLS = new Map<string, Handler>(
  Object.entries({
    socket: sysSocket,
    bind: sysBind,
    listen: sysListen,
    accept: sysAccept,
    accept4: sysAccept,
    connect: sysConnect,
    write: sysSendmsg,
    send: sysSendmsg,
    sendto: sysSendmsg,
    writev: sysSendmsg,
    sendmsg: sysSendmsg,
    read: sysRecvmsg,
    recv: sysRecvmsg,
    recvfrom: sysRecvmsg,
    readv: sysRecvmsg,
    recvmsg: sysRecvmsg,
    shutdown: sysShutdown,
    close: sysClose,
    setsockopt: sysSetsockopt,
    getsockopt: sysGetsockopt,
    fcntl: sysFcntl,
    ioctl: sysIoctl,
    poll: sysPoll,
    open: sysOpen,
    pipe: sysPipe,
    sendfile: sysSendfile,
    splice: sysSplice,
    epoll_create: sysEpollCreate,
    epoll_create1: sysEpollCreate,
    epoll_ctl: sysEpollCtl,
    epoll_wait: sysEpollWait,
  }),
);

export function isNull(e: Expr | undefined): boolean {
  return e?.k === 'word' && e.v === 'NULL';
}

export function exprStr(e: Expr): string {
  switch (e.k) {
    case 'ell':
      return '...';
    case 'int':
      return String(e.v);
    case 'word':
    case 'str':
      return e.v;
    case 'or':
      return e.items.map(exprStr).join('|');
    case 'list':
      return `[${e.items.map(exprStr).join(', ')}]`;
    case 'struct':
      return `{${e.fields.map((f) => (f.name ? `${f.name}=` : '') + exprStr(f.value)).join(', ')}}`;
  }
}

/** Run one script file's text. */
