import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, F, S, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { PEER6, PEER_IP, STACK_IP, rfc2385Digest, type Family } from '../lib/frames.js';
import { tcpSendmsg, tcpSockSetsockopt, tcpAccept, tcpClose, tcpConnect } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET, AF_INET6, EINVAL, ENOENT, SOL_TCP, TCP_MD5SIG, TCP_MD5SIG_EXT } from '../../src/uapi.js';

const KEY = Buffer.from('tapstack-md5-key');

/** struct tcp_md5sig for the harness's peer (sockaddr_in or sockaddr_in6 by family). */
function md5sig(family: Family, key: Buffer, o: { flags?: number; prefixlen?: number; ifindex?: number; addr?: Buffer } = {}): Buffer {
  const b = Buffer.alloc(216);
  b.writeUInt16LE(family, 0);
  if (family === AF_INET) (o.addr ?? Buffer.from([10, 0, 0, 1])).copy(b, 4);
  else Buffer.from(o.addr ?? PEER6).copy(b, 8);
  b[128] = o.flags ?? 0;
  b[129] = o.prefixlen ?? 0;
  b.writeUInt16LE(key.length, 130);
  b.writeInt32LE(o.ifindex ?? 0, 132);
  key.copy(b, 136);
  return b;
}

function setKey(t: TcpHarness, sk: TcpSock, key = KEY): void {
  assert.equal(tcpSockSetsockopt(t.tcp, sk, SOL_TCP, TCP_MD5SIG, md5sig(t.family, key)), 0);
}

/** Check a segment's signature the way the peer would: the option first after NOP NOP, and the digest right. */
function verifySigned(t: TcpHarness, raw: Buffer, key = KEY): void {
  assert.deepEqual([...raw.subarray(20, 24)], [1, 1, 19, 18], 'NOP NOP MD5 lead the options');
  const digest = Buffer.from(raw.subarray(24, 40));
  const zeroed = Buffer.from(raw);
  zeroed.fill(0, 24, 40);
  assert.deepEqual(rfc2385Digest(zeroed, t.stackAddr, t.peerAddr, key), digest, 'the digest is RFC 2385 over the segment');
}

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: TCP-MD5: a listener with a key answers a signed SYN with a signed SYN-ACK, and drops an unsigned one (TCPMD5NotFound)`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    setKey(t, l);
    t.send({ flags: S, seq: 0, options: [['mss', 1000]] });
    assert.deepEqual(t.out(), [], 'unsigned SYN dropped');
    assert.equal(t.mibs.TcpExt.TCPMD5NotFound, 1);
    t.send({ flags: S, seq: 0, options: [['mss', 1000], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]], md5Key: KEY });
    const frames = t.h.sent();
    assert.equal(frames.length, 1);
    const raw = Buffer.from(frames[0].tcp!.raw);
    verifySigned(t, raw);
    // No room for SACK blocks beside MD5 and timestamps: with SACK on, the timestamps go (tcp_synack_options).
    assert.match(frames[0].tcp!.options, /^nop,nop,md5 [0-9a-f]{32},mss \d+,nop,nop,sackOK,nop,wscale \d+$/);
  });

  test(`${name}: TCP-MD5: a signed ACK to a listener without keys is dropped (TCPMD5Unexpected), a wrong digest too (TCPMD5Failure)`, () => {
    const t = new TcpHarness(family);
    t.listen();
    t.send({ flags: S, seq: 0, options: [['mss', 1000]] });
    t.stackIsn = 0;
    const [synack] = t.out();
    assert.equal(synack.flags, 'S.');
    t.send({ flags: A, seq: 1, ack: 1, md5Key: KEY });
    assert.equal(t.mibs.TcpExt.TCPMD5Unexpected, 1);
    assert.equal(typeof tcpAccept(t.tcp, t.listener!), 'number', 'the handshake did not complete');
    // A key now, and a segment signed with another one.
    setKey(t, t.listener!);
    t.send({ flags: A, seq: 1, ack: 1, md5Key: Buffer.from('another key') });
    assert.equal(t.mibs.TcpExt.TCPMD5Failure, 1);
    assert.equal(typeof tcpAccept(t.tcp, t.listener!), 'number');
    t.send({ flags: A, seq: 1, ack: 1, md5Key: KEY });
    assert.notEqual(typeof tcpAccept(t.tcp, t.listener!), 'number', 'the rightly signed ACK completes it');
  });

  test(`${name}: TCP-MD5: the child signs its data with the listener's key, one MSS per segment (no GSO), its MSS 20 bytes less`, () => {
    const t = new TcpHarness(family);
    t.h.stack.dev.tso = true;
    const l = t.listen();
    setKey(t, l);
    t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1000], ['nop'], ['wscale', 0]], md5Key: KEY });
    const [synack] = t.out();
    assert.equal(synack.flags, 'S.');
    t.send({ flags: A, seq: 1, ack: 1, win: 50000, md5Key: KEY });
    const c = tcpAccept(t.tcp, l);
    assert.notEqual(typeof c, 'number');
    const sk = c as TcpSock;
    assert.equal(sk.mssCache, 980);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(3000, 7), 0), 3000);
    const raws = t.h.sent().filter((p) => p.tcp);
    assert.deepEqual(
      raws.map((p) => [p.tcp!.payload.length, p.gsoSize]),
      [
        [980, 0],
        [980, 0],
        [980, 0],
        [60, 0],
      ],
    );
    for (const p of raws) verifySigned(t, Buffer.from(p.tcp!.raw));
    // An unsigned ACK on the connection is dropped.
    t.send({ flags: A, seq: 1, ack: 2941, win: 50000 });
    assert.equal(t.mibs.TcpExt.TCPMD5NotFound, 1);
    assert.equal(sk.sndUna - sk.iss, 1, 'nothing acknowledged');
  });

  test(`${name}: TCP_MD5SIG: bad structs are EINVAL, deleting a missing key ENOENT, TCP_MD5SIG_EXT takes a prefix`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    const set = (name: number, b: Buffer) => tcpSockSetsockopt(t.tcp, l, SOL_TCP, name, b);
    assert.equal(set(TCP_MD5SIG, md5sig(family, KEY).subarray(0, 215)), -EINVAL, 'short');
    assert.equal(set(TCP_MD5SIG, md5sig(family === AF_INET ? AF_INET6 : AF_INET, KEY)), -EINVAL, 'other family');
    assert.equal(set(TCP_MD5SIG, md5sig(family, Buffer.alloc(81, 1))), -EINVAL, 'key over 80 bytes');
    assert.equal(set(TCP_MD5SIG, md5sig(family, Buffer.alloc(0))), -ENOENT, 'no key to delete');
    assert.equal(set(TCP_MD5SIG_EXT, md5sig(family, KEY, { flags: 1, prefixlen: family === AF_INET ? 33 : 129 })), -EINVAL, 'prefix too long');
    assert.equal(set(TCP_MD5SIG_EXT, md5sig(family, KEY, { flags: 2, ifindex: 1 })), -EINVAL, 'ifindex of a device that is no L3 master');
    // A key for the peer's /8 (or /64) covers it.
    const net = family === AF_INET ? Buffer.from([10, 9, 9, 9]) : Buffer.from(PEER6).fill(0xaa, 8);
    assert.equal(set(TCP_MD5SIG_EXT, md5sig(family, KEY, { flags: 1, prefixlen: family === AF_INET ? 8 : 64, addr: net })), 0);
    t.send({ flags: S, seq: 0, options: [['mss', 1000]], md5Key: KEY });
    assert.equal(t.out().length, 1, 'signed SYN answered');
    assert.equal(set(TCP_MD5SIG_EXT, md5sig(family, Buffer.alloc(0), { flags: 1, prefixlen: family === AF_INET ? 8 : 64, addr: net })), 0, 'deleted');
    t.send({ flags: S, seq: 0, options: [['mss', 1000]], md5Key: KEY, sport: 4000 });
    assert.equal(t.out().length, 0);
    assert.equal(t.mibs.TcpExt.TCPMD5Unexpected, 1);
  });
}

test('TCP-MD5: an AF_INET6 socket keys an IPv4 peer by its v4-mapped address', () => {
  const t = new TcpHarness(AF_INET6);
  const l = t.listen();
  const mapped = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
  assert.equal(tcpSockSetsockopt(t.tcp, l, SOL_TCP, TCP_MD5SIG, md5sig(AF_INET6, KEY, { addr: mapped })), 0);
  t.send({ flags: S, seq: 0, src: PEER_IP, dst: STACK_IP, sport: 5555 });
  assert.equal(t.out().length, 0);
  assert.equal(t.mibs.TcpExt.TCPMD5NotFound, 1, 'the IPv4 peer needs its key');
  t.send({ flags: S, seq: 0, src: PEER_IP, dst: STACK_IP, sport: 5555, md5Key: KEY });
  const out = t.out();
  assert.equal(out.length, 1);
  assert.match(out[0].options, /^nop,nop,md5 /);
});

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: TCP-MD5 active open: the SYN is signed and carries no timestamps`, () => {
    const t = new TcpHarness(family);
    const sk = tcpNewSock(t.tcp, family);
    setKey(t, sk);
    const rc = family === AF_INET6 ? tcpV6Connect(t.tcp, sk, PEER6, t.peerPort) : tcpConnect(t.tcp, sk, PEER_IP, t.peerPort);
    assert.equal(rc, -115);
    const [syn] = t.h.sent().filter((p) => p.tcp);
    verifySigned(t, Buffer.from(syn.tcp!.raw));
    assert.doesNotMatch(syn.tcp!.options, /TS/);
    assert.match(syn.tcp!.options, /^nop,nop,md5 [0-9a-f]{32},mss/);
  });

  test(`${name}: TCP-MD5: TIME_WAIT signs its ACKs with the connection's key`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    setKey(t, l);
    t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1000]], md5Key: KEY });
    t.out();
    t.send({ flags: A, seq: 1, ack: 1, win: 50000, md5Key: KEY });
    const sk = tcpAccept(t.tcp, l) as TcpSock;
    tcpClose(t.tcp, sk);
    t.out();
    t.send({ flags: A | F, seq: 1, ack: 2, win: 50000, md5Key: KEY });
    t.h.sent();
    // The peer's FIN again: the timewait sock answers, signed.
    t.send({ flags: A | F, seq: 1, ack: 2, win: 50000, md5Key: KEY });
    const frames = t.h.sent().filter((p) => p.tcp);
    assert.equal(frames.length, 1);
    verifySigned(t, Buffer.from(frames[0].tcp!.raw));
  });

  test(`${name}: TCP-MD5: no reset answers a signed segment unless a listener on its source port holds the sender's key (as Linux looks it up)`, () => {
    const t = new TcpHarness(family);
    t.send({ flags: S, seq: 0, dport: 9999, md5Key: KEY });
    assert.deepEqual(t.out(), [], 'no key anywhere: silence');
    t.send({ flags: S, seq: 0, dport: 9999 });
    assert.equal(t.out()[0].flags, 'R.', 'an unsigned one is reset as ever');
    t.localPort = t.peerPort;
    setKey(t, t.listen());
    t.localPort = 9999;
    t.send({ flags: S, seq: 0, dport: 9999, md5Key: KEY });
    const frames = t.h.sent().filter((p) => p.tcp);
    assert.equal(frames.length, 1);
    assert.equal(frames[0].tcp!.flags & 0x04, 0x04);
    verifySigned(t, Buffer.from(frames[0].tcp!.raw));
    t.send({ flags: S, seq: 0, dport: 9999, md5Key: Buffer.from('wrong key') });
    assert.deepEqual(t.out(), [], 'a bad signature gets no reset');
  });
}
