/**
 * TCP Fast Open, the server's side (tcp_fastopen.ts), on the virtual clock:
 * cookies asked for and handed out, a valid cookie opening the child at
 * the SYN with its data readable, bad cookies, the keys (the sysctl's
 * primary and backup, a listener's own), TCP_FASTOPEN's errnos, the
 * sysctl's server bits, the queue's limit and its 60 s hold on a child
 * reset after accept(), the child's own SYN-ACK timer, and ICMP errors
 * about the child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, FAMILIES, S, A, R, P, familyName, type Seg } from '../lib/tcp_harness.js';
import { tcpAccept, tcpClose, tcpRecvmsg, tcpSendmsg, tcpSockGetsockopt, tcpSockSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpGetInfo, TCPI_OPT_SYN_DATA, TCPI_OPT_TFO_CHILD } from '../../src/net/ipv4/tcp_info.js';
import { sysctlGet, sysctlSet } from '../../src/net/sysctl.js';
import { TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_RECV } from '../../src/net/core/sock.js';
import { TCP_CA_Loss, TCP_CA_Open, type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { EAGAIN, EHOSTUNREACH, EINVAL, EPIPE, ETIMEDOUT, SOL_TCP, TCP_FASTOPEN, TCP_FASTOPEN_KEY } from '../../src/uapi.js';
import { ICMP_DEST_UNREACH, ICMP_HOST_UNREACH } from '../../src/wire/icmp.js';

const KEY1 = 'a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4';
const KEY2 = '01020304-05060708-090a0b0c-0d0e0f10';

function int(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}

/** Fast Open on for servers (TFO_SERVER_ENABLE with the client bit) and a listener with a queue of `qlen`. */
function tfoListener(t: TcpHarness, qlen = 5, bits = 3): TcpSock {
  t.tcp.sysctl.tcp_fastopen = bits;
  const l = t.listen(8);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN, int(qlen)), 0);
  return l;
}

/** The cookie a segment's Fast Open option carries, or null. */
function cookieOf(s: Seg): string | null {
  const m = /FO(?:EXP)? ([0-9a-f]+)/.exec(s.options);
  return m ? m[1] : null;
}

/** One SYN-ACK out, returned. */
function synack(t: TcpHarness): Seg {
  const out = t.out();
  assert.equal(out.length, 1, JSON.stringify(out.map((s) => `${s.flags} ${s.seq} ack ${s.ack} <${s.options}>`)));
  assert.equal(out[0].flags, 'S.');
  return out[0];
}

/** A SYN from `sport` asking for a cookie; the cookie the SYN-ACK hands out. */
function askCookie(t: TcpHarness, sport: number, exp = false): string {
  t.send({ flags: S, seq: 0, sport, options: [['mss', 1000], [exp ? 'FOEXP' : 'FO']] });
  const s = synack(t);
  assert.equal(s.ack, 1);
  const c = cookieOf(s);
  assert.ok(c && c.length === 16, `no 8-byte cookie in <${s.options}>`);
  if (exp) assert.match(s.options, /FOEXP/);
  return c;
}

/** A SYN from `sport` carrying `data` bytes and the cookie (if any). */
function synData(t: TcpHarness, sport: number, data: number, cookie: string | null, exp = false): Seg {
  t.send({ flags: S, seq: 0, sport, payload: data, options: cookie === null ? [['mss', 1000]] : [['mss', 1000], [exp ? 'FOEXP' : 'FO', cookie]] });
  return synack(t);
}

function accepted(t: TcpHarness, l: TcpSock): TcpSock {
  const c = tcpAccept(t.tcp, l);
  assert.notEqual(typeof c, 'number', 'accept found no child');
  return c as TcpSock;
}

for (const family of FAMILIES) {
  const fam = familyName(family);

  test(`${fam}: a cookie request gets a cookie; the cookie opens the child at the SYN, its data readable and acked, the child sending before the handshake ends`, () => {
    const t = new TcpHarness(family);
    const l = tfoListener(t);
    const ext = t.mibs.TcpExt;
    const cookie = askCookie(t, 40001);
    assert.equal(ext.TCPFastOpenCookieReqd, 1);
    assert.equal(ext.TCPFastOpenPassive, 0);
    assert.equal(tcpAccept(t.tcp, l), -EAGAIN, 'a cookie request makes no child');

    const s = synData(t, 40002, 10, cookie);
    // The SYN-ACK acks the SYN's data, carries none (Linux's server sends none), and no cookie.
    assert.equal(s.ack, 11);
    assert.equal(s.len, 0);
    assert.equal(cookieOf(s), null);
    assert.equal(ext.TCPFastOpenPassive, 1);
    assert.equal(l.fastopenq!.qlen, 1);

    const c = accepted(t, l);
    assert.equal(c.state, TCP_SYN_RECV);
    const opts = tcpGetInfo(t.tcp, c).tcpi_options;
    assert.ok(opts & TCPI_OPT_SYN_DATA && opts & TCPI_OPT_TFO_CHILD, `tcpi_options ${opts}`);
    const buf = Buffer.alloc(100);
    assert.equal(tcpRecvmsg(t.tcp, c, buf), 10);
    assert.ok(buf.subarray(0, 10).equals(Buffer.alloc(10, 0x61)));

    assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(5, 0x62)), 5);
    const out = t.out();
    assert.equal(out.length, 1);
    assert.deepEqual([out[0].flags, out[0].seq, out[0].len, out[0].ack], ['P.', 1, 5, 11]);

    // The handshake's ACK (with more data) ends it: ESTABLISHED, the queue slot free.
    t.send({ flags: A | P, seq: 11, ack: 6, sport: 40002, payload: 7 });
    assert.equal(c.state, TCP_ESTABLISHED);
    assert.equal(c.fastopenRsk, null);
    assert.equal(l.fastopenq!.qlen, 0);
    assert.equal(tcpRecvmsg(t.tcp, c, buf), 7);
  });

  test(`${fam}: a bad cookie makes no child (TCPFastOpenPassiveFail) and the SYN-ACK hands out the valid one, in the form the SYN used`, () => {
    const t = new TcpHarness(family);
    const l = tfoListener(t);
    const valid = askCookie(t, 40001);
    const s = synData(t, 40002, 10, '0123456789abcdef', true);
    assert.equal(s.ack, 1, 'the data is not acked');
    assert.match(s.options, /FOEXP/);
    assert.equal(cookieOf(s), valid);
    assert.equal(t.mibs.TcpExt.TCPFastOpenPassiveFail, 1);
    assert.equal(t.mibs.TcpExt.TCPFastOpenPassive, 0);
    assert.equal(tcpAccept(t.tcp, l), -EAGAIN);
    // The experimental form asks too.
    assert.equal(askCookie(t, 40003, true), valid);
  });
}

test('net.ipv4.tcp_fastopen_key: zeros until used, a random key on first use, one or two keys written and read as proc_tcp_fastopen_key does', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const st = t.h.stack;
  assert.equal(sysctlGet(st, 'net.ipv4.tcp_fastopen_key'), '00000000-00000000-00000000-00000000');
  tfoListener(t);
  const random = sysctlGet(st, 'net.ipv4.tcp_fastopen_key') as string;
  assert.match(random, /^[0-9a-f]{8}(-[0-9a-f]{8}){3}$/);
  assert.notEqual(random, '00000000-00000000-00000000-00000000');
  assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', KEY1), 0);
  assert.equal(sysctlGet(st, 'net.ipv4.tcp_fastopen_key'), KEY1);
  assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', `${KEY2},${KEY1}`), 0);
  assert.equal(sysctlGet(st, 'net.ipv4.tcp_fastopen_key'), `${KEY2},${KEY1}`);
  assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', '0x1-2-3-ff\n'), 0);
  assert.equal(sysctlGet(st, 'net.ipv4.tcp_fastopen_key'), '00000001-00000002-00000003-000000ff');
  // As the kernel's sscanf: a longer word keeps its low 32 bits, what follows the fourth is ignored.
  assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', '123456789- 1-1-1 trailing'), 0);
  assert.equal(sysctlGet(st, 'net.ipv4.tcp_fastopen_key'), '23456789-00000001-00000001-00000001');
  for (const bad of ['1-2-3', 'a1a1a1a1-b2b2b2b2-c3c3c3c3-zz', `${KEY1},1-2`, '']) {
    assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', bad), -EINVAL, bad);
  }
});

test('keys: a cookie of the backup key opens the child (TCPFastOpenPassiveAltKey) and the SYN-ACK hands out the primary\'s; a listener\'s own key (TCP_FASTOPEN_KEY) takes over', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const st = t.h.stack;
  const l = tfoListener(t);
  assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', KEY1), 0);
  const c1 = askCookie(t, 40001);
  assert.equal(sysctlSet(st, 'net.ipv4.tcp_fastopen_key', `${KEY2},${KEY1}`), 0);
  const c2 = askCookie(t, 40002);
  assert.notEqual(c2, c1);
  const s = synData(t, 40003, 10, c1);
  assert.equal(s.ack, 11);
  assert.equal(cookieOf(s), c2, 'the SYN-ACK hands out the primary key\'s cookie');
  assert.equal(t.mibs.TcpExt.TCPFastOpenPassiveAltKey, 1);
  assert.equal(t.mibs.TcpExt.TCPFastOpenPassive, 1);

  // The listener's own keys: none yet (an empty value), then 16 or 32 bytes, read back as set.
  assert.equal((tcpSockGetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN_KEY) as Buffer).length, 0);
  const own = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN_KEY, Buffer.alloc(15)), -EINVAL);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN_KEY, own), 0);
  assert.ok((tcpSockGetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN_KEY) as Buffer).equals(own));
  const c3 = askCookie(t, 40004);
  assert.ok(c3 !== c1 && c3 !== c2, 'the listener\'s key makes its own cookie');
  assert.equal(synData(t, 40005, 5, c2).ack, 1, 'the stack\'s cookie no longer opens this listener');
  const two = Buffer.concat([own, Buffer.alloc(16, 7)]);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN_KEY, two), 0);
  assert.ok((tcpSockGetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN_KEY) as Buffer).equals(two));
});

test('TCP_FASTOPEN: on a closed or listening socket, >= 0, capped by somaxconn; EINVAL otherwise', () => {
  const t = TcpHarness.established(FAMILIES[0]);
  const get = (sk: TcpSock): number => (tcpSockGetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN) as Buffer).readInt32LE(0);
  assert.equal(tcpSockSetsockopt(t.tcp, t.sk!, SOL_TCP, TCP_FASTOPEN, int(5)), -EINVAL, 'a connected socket');
  const l = t.listener!;
  assert.equal(get(l), 0);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN, int(-1)), -EINVAL);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN, Buffer.alloc(2)), -EINVAL);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN, int(7)), 0);
  assert.equal(get(l), 7);
  t.tcp.sysctl.somaxconn = 4;
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_FASTOPEN, int(100)), 0);
  assert.equal(get(l), 4);
});

test('net.ipv4.tcp_fastopen: TFO_SERVER_WO_SOCKOPT1 gives every listener listen()\'s backlog; TFO_SERVER_COOKIE_NOT_REQD opens any SYN with data; without TFO_SERVER_ENABLE nothing', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const get = (sk: TcpSock): number => (tcpSockGetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN) as Buffer).readInt32LE(0);
  t.tcp.sysctl.tcp_fastopen = 0x400 | 1;
  const l0 = t.listen(3);
  assert.equal(get(l0), 0, 'WO_SOCKOPT1 without SERVER_ENABLE');
  tcpClose(t.tcp, l0);

  t.tcp.sysctl.tcp_fastopen = 0x402;
  const l = t.listen(3);
  assert.equal(get(l), 3);
  // Data without a cookie: not opened (and no cookie offered: none was asked for).
  let s = synData(t, 40001, 10, null);
  assert.equal(s.ack, 1);
  assert.equal(cookieOf(s), null);
  t.tcp.sysctl.tcp_fastopen = 0x602;
  s = synData(t, 40002, 10, null);
  assert.equal(s.ack, 11);
  assert.equal(t.mibs.TcpExt.TCPFastOpenPassive, 1);
  // A SYN without data is never opened without a cookie.
  assert.equal(synData(t, 40003, 0, null).ack, 1);
  assert.equal(t.mibs.TcpExt.TCPFastOpenPassive, 1);
});

test('the queue: past max_qlen a SYN is not opened (TCPFastOpenListenOverflow); a child reset after accept() holds its place for 60 s', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const l = tfoListener(t, 1);
  const ext = t.mibs.TcpExt;
  const cookie = askCookie(t, 40001);
  assert.equal(synData(t, 40002, 10, cookie).ack, 11);
  const a = accepted(t, l);
  // A second Fast Open SYN while the first child's handshake is open: the queue is full.
  let s = synData(t, 40003, 10, cookie);
  assert.equal(s.ack, 1);
  assert.equal(cookieOf(s), null, 'an overflow hands out no cookie either');
  assert.equal(ext.TCPFastOpenListenOverflow, 1);
  // A reset of the accepted child before its handshake ended: the slot stays taken for 60 s.
  t.send({ flags: R | A, seq: 11, sport: 40002 });
  assert.equal(a.state, TCP_CLOSE);
  assert.equal(l.fastopenq!.qlen, 1);
  assert.equal(l.fastopenq!.rst.length, 1);
  s = synData(t, 40004, 10, cookie);
  assert.equal(s.ack, 1);
  assert.equal(ext.TCPFastOpenListenOverflow, 2);
  t.time.advance(60_001);
  t.out();
  s = synData(t, 40005, 10, cookie);
  assert.equal(s.ack, 11, 'the held slot is free after 60 s');
  assert.equal(l.fastopenq!.rst.length, 0);
  assert.equal(ext.TCPFastOpenPassive, 2);
});

test('the child resends its SYN-ACK from its own timer (acking the data, no cookie), one retry past tcp_synack_retries, then gives up with ETIMEDOUT', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const l = tfoListener(t);
  t.tcp.sysctl.tcp_synack_retries = 2;
  const cookie = askCookie(t, 40001);
  synData(t, 40002, 10, cookie);
  const c = accepted(t, l);
  const retrans = t.mibs.TcpExt.TCPSynRetrans;
  const at: number[] = [];
  let requestRetrans = 0;
  const caStates: number[] = [];
  const t0 = t.time.now();
  for (let i = 0; i < 40 && c.state !== TCP_CLOSE; i++) {
    t.time.advance(500);
    for (const s of t.out()) {
      // The cookie request's request sock retransmits too, on its own timer.
      if (s.flags === 'S.' && s.dport === 40001) requestRetrans++;
      if (s.flags !== 'S.' || s.dport !== 40002) continue;
      assert.equal(s.ack, 11);
      assert.equal(cookieOf(s), null);
      at.push(s.at - t0);
      // The second timeout puts what the child may have sent into loss recovery (tcp_enter_loss).
      caStates.push(c.caState);
    }
  }
  // 1 s, then doubling: at 1, 3 and 7 s; the fourth timeout ends it.
  assert.deepEqual(at, [1000, 3000, 7000]);
  assert.deepEqual(caStates, [TCP_CA_Open, TCP_CA_Loss, TCP_CA_Loss]);
  assert.equal(t.mibs.TcpExt.TCPSynRetrans - retrans, 3 + requestRetrans);
  assert.equal(c.state, TCP_CLOSE);
  assert.equal(c.err, ETIMEDOUT);
  assert.equal(l.fastopenq!.qlen, 0);
});

test('a retransmitted SYN gets the SYN-ACK again; closing the listener resets a child not yet accepted', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const l = tfoListener(t);
  const cookie = askCookie(t, 40001);
  synData(t, 40002, 10, cookie);
  t.send({ flags: S, seq: 0, sport: 40002, payload: 10, options: [['mss', 1000], ['FO', cookie]] });
  const again = synack(t);
  assert.equal(again.ack, 11);
  assert.equal(t.mibs.TcpExt.TCPFastOpenPassive, 1, 'no second child');
  tcpClose(t.tcp, l);
  const out = t.out().filter((s) => s.dport === 40002);
  assert.deepEqual(out.map((s) => [s.flags, s.seq, s.ack]), [['R.', 1, 11]]);
});

test('ICMP: a Fast Open child not yet accepted ends with the error (still accepted, its data still read); once accepted it keeps a soft error; out of window counts OutOfWindowIcmps', () => {
  const t = new TcpHarness(FAMILIES[0]);
  const l = tfoListener(t);
  const cookie = askCookie(t, 40001);
  synData(t, 40002, 10, cookie);
  const isn = t.stackIsn;
  const quoted = (seq: number) => t.ourPacket({ seq, ack: t.peerIsn + 11, flags: S | A, dport: 40002 });
  t.icmpError(ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, quoted((isn + 5000) >>> 0));
  assert.equal(t.mibs.TcpExt.OutOfWindowIcmps, 1);
  // The SYN-ACK's own sequence number is in the child's window.
  t.icmpError(ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, quoted(isn));
  const c = accepted(t, l);
  assert.equal(c.state, TCP_CLOSE);
  const buf = Buffer.alloc(100);
  assert.equal(tcpRecvmsg(t.tcp, c, buf), 10);
  assert.equal(tcpRecvmsg(t.tcp, c, buf), -EHOSTUNREACH);
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(5)), -EPIPE);

  // Accepted first: a soft error, the child lives on.
  synData(t, 40003, 10, cookie);
  const d = accepted(t, l);
  t.icmpError(ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, t.ourPacket({ seq: t.stackIsn, ack: t.peerIsn + 11, flags: S | A, dport: 40003 }));
  assert.equal(d.state, TCP_SYN_RECV);
  assert.equal(d.err, 0);
  assert.equal(d.errSoft, EHOSTUNREACH);
});

test('a Fast Open child writing before its handshake ends has no RTT sample and so no pacing rate: its TSO packets are bounded by half the cwnd only', () => {
  const t = new TcpHarness(FAMILIES[0]);
  t.h.stack.dev.tso = true;
  const l = tfoListener(t);
  const cookie = askCookie(t, 40001);
  t.send({ flags: S, seq: 0, sport: 40002, payload: 10, options: [['mss', 1000], ['FO', cookie]] });
  synack(t);
  const c = accepted(t, l);
  assert.equal(c.srttUs, 0);
  assert.equal(tcpSendmsg(t.tcp, c, Buffer.alloc(10_000, 0x62)), 10_000);
  const out = t.out().filter((s) => s.dport === 40002);
  // The initial cwnd of 10, at most half of it per packet (tcp_cwnd_test), 1000-byte segments.
  assert.deepEqual(out.map((s) => [s.seq, s.len, s.gsoSize]), [[1, 5000, 1000], [5001, 5000, 1000]]);
});
