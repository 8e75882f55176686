/**
 * SO_TIMESTAMPING on TCP: the stamp request rides on the last skb of a
 * send (tcp_tx_timestamp) and follows a split to the part holding its key;
 * SCM_TSTAMP_SCHED and _SND come when that part is transmitted, _ACK when
 * the key is acknowledged; OPT_ID counts keys from snd_una at setsockopt;
 * recvmsg(MSG_ERRQUEUE) gives SCM_TIMESTAMPING (with SOFTWARE) before
 * IP_RECVERR/IPV6_RECVERR, and the data unless OPT_TSONLY.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, TcpHarness, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpGetsockopt, tcpRecvErrqueue, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import {
  AF_INET6,
  EAGAIN,
  EINVAL,
  ENOMSG,
  IP_RECVERR,
  IPV6_RECVERR,
  MSG_ERRQUEUE,
  MSG_TRUNC,
  SCM_TIMESTAMPING,
  SCM_TSTAMP_ACK,
  SCM_TSTAMP_SCHED,
  SCM_TSTAMP_SND,
  SO_EE_ORIGIN_TIMESTAMPING,
  SO_TIMESTAMPING,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_OPT_TSONLY,
  SOF_TIMESTAMPING_SOFTWARE,
  SOF_TIMESTAMPING_TX_ACK,
  SOF_TIMESTAMPING_TX_SCHED,
  SOF_TIMESTAMPING_TX_SOFTWARE,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
} from '../../src/uapi.js';

const ALL = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;

interface Stamp {
  info: number;
  key: number;
  /** Virtual ms of the stamp, or -1 without SCM_TIMESTAMPING. */
  at: number;
  copied: number;
  trunc: boolean;
}

/** recvmsg(MSG_ERRQUEUE) into `len` bytes, decoded; the cmsgs' shape checked on the way. */
function stamp(t: TcpHarness, sk: TcpSock, len = 0): Stamp | number {
  const r = tcpRecvErrqueue(sk, Buffer.alloc(len));
  if (typeof r === 'number') return r;
  assert.equal(r.flags & MSG_ERRQUEUE, MSG_ERRQUEUE);
  const v6 = sk.family === AF_INET6;
  const err = r.cmsgs[r.cmsgs.length - 1];
  assert.equal(err.level, v6 ? SOL_IPV6 : SOL_IP);
  assert.equal(err.type, v6 ? IPV6_RECVERR : IP_RECVERR);
  assert.equal(err.data.readUInt32LE(0), ENOMSG);
  assert.equal(err.data[4], SO_EE_ORIGIN_TIMESTAMPING);
  let at = -1;
  if (r.cmsgs.length === 2) {
    const ts = r.cmsgs[0];
    assert.equal(ts.level, SOL_SOCKET);
    assert.equal(ts.type, SCM_TIMESTAMPING);
    assert.equal(ts.data.length, 48);
    assert.ok(ts.data.subarray(16).every((b) => b === 0), 'no hardware stamps');
    const wall = Number(ts.data.readBigInt64LE(0)) * 1000 + Number(ts.data.readBigInt64LE(8)) / 1e6;
    at = Math.round(wall - (t.time.wall() - t.time.now()));
  } else assert.equal(r.cmsgs.length, 1);
  return { info: err.data.readUInt32LE(8), key: err.data.readUInt32LE(12), at, copied: r.copied, trunc: (r.flags & MSG_TRUNC) !== 0 };
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: SCHED and SND when the send's last byte leaves, ACK when it is acked; OPT_ID keys from snd_una`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, ALL), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING), ALL);
    const t0 = t.time.now();
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(2000)), 2000);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(2000)), 2000);
    assert.equal(t.out().length, 4);
    assert.deepEqual(stamp(t, sk), { info: SCM_TSTAMP_SCHED, key: 1999, at: t0, copied: 0, trunc: true });
    assert.deepEqual(stamp(t, sk), { info: SCM_TSTAMP_SND, key: 1999, at: t0, copied: 0, trunc: true });
    assert.deepEqual(stamp(t, sk), { info: SCM_TSTAMP_SCHED, key: 3999, at: t0, copied: 0, trunc: true });
    assert.deepEqual(stamp(t, sk), { info: SCM_TSTAMP_SND, key: 3999, at: t0, copied: 0, trunc: true });
    assert.equal(stamp(t, sk), -EAGAIN);
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 2001 });
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 4001 });
    assert.deepEqual(stamp(t, sk), { info: SCM_TSTAMP_ACK, key: 1999, at: t0 + 10, copied: 0, trunc: true });
    assert.deepEqual(stamp(t, sk), { info: SCM_TSTAMP_ACK, key: 3999, at: t0 + 20, copied: 0, trunc: true });
    assert.equal(stamp(t, sk), -EAGAIN);
  });

  test(`${familyName(family)}: the request follows the send's last byte: no stamp until the held-back tail leaves`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, ALL), 0);
    // The initial window is 10 segments: the last 1000 bytes wait for an ACK.
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(11000)), 11000);
    assert.equal(t.out().reduce((n, s) => n + s.len, 0), 10000);
    assert.equal(stamp(t, sk), -EAGAIN);
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 10001 });
    assert.equal(t.out().reduce((n, s) => n + s.len, 0), 1000);
    const sched = stamp(t, sk) as Stamp;
    assert.equal(sched.info, SCM_TSTAMP_SCHED);
    assert.equal(sched.key, 10999);
    assert.equal((stamp(t, sk) as Stamp).info, SCM_TSTAMP_SND);
  });

  test(`${familyName(family)}: OPT_TSONLY queues no data; without it the data comes back (MSG_TRUNC past the buffer); no SCM_TIMESTAMPING without SOFTWARE`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_OPT_ID), 0);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.from('hello')), 5);
    assert.deepEqual(stamp(t, sk, 3), { info: SCM_TSTAMP_SCHED, key: 4, at: -1, copied: 3, trunc: true });
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY), 0);
    t.send({ flags: A, seq: 1, ack: 6 });
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.from('world')), 5);
    assert.deepEqual(stamp(t, sk, 100), { info: SCM_TSTAMP_SCHED, key: 9, at: -1, copied: 0, trunc: false });
  });

  test(`${familyName(family)}: SO_TIMESTAMPING: OPT_ID needs a connection; unknown bits and OPT_ID_TCP alone are EINVAL`, () => {
    const t = new TcpHarness(family);
    const sk = tcpNewSock(t.tcp, family);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_OPT_ID), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, 1 << 16), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, 1 << 30), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SCHED), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_TIMESTAMPING), SOF_TIMESTAMPING_TX_SCHED);
  });
}
