/**
 * TCP's tracepoints as `tapstack trace` streams them: a connection on the
 * virtual clock, traced through the daemon's TraceHub onto a socketpair
 * and read back as JSON lines, field by field: state changes, segments
 * both ways, SACK and the RACK retransmission it leads to, a tail loss
 * probe and an RTO with their reasons, the peer's window changing, a
 * duplicate dropped as TCP_OLD_DATA, the send buffer waking its writer,
 * and the cwnd/ssthresh/in-flight probe. A trace whose filter takes
 * another socket gets nothing; a reader that falls behind gets a `lost`
 * record; with the last trace gone the stack's hook is null again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, P, S, FAMILIES, familyName } from '../lib/tcp_harness.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { tcpAccept, tcpClose, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { Trace, TraceHub } from '../../src/api/trace.js';
import { unixAddon } from '../../src/api/unix.js';
import { compileSsFilter } from '../../src/lib/ss_filter.js';
import { AF_INET6, SOL_SOCKET, SO_SNDBUF } from '../../src/uapi.js';

const ux = unixAddon();
type Rec = Record<string, unknown> & { ev: string };

function pair(): [number, number] {
  const p = new Int32Array(2);
  assert.equal(ux.socketPair(1 << 20, 1 << 20, p), 0);
  return [p[0], p[1]];
}

/** Everything the reader end holds now, as records (after the hub's flush on the next turn of the loop). */
async function drain(fd: number): Promise<Rec[]> {
  await new Promise((r) => setImmediate(r));
  const buf = Buffer.alloc(1 << 20);
  let text = '';
  for (;;) {
    const n = ux.read(fd, buf, 0, buf.length);
    if (n <= 0) break;
    text += buf.toString('utf8', 0, n);
  }
  if (text) assert.ok(text.endsWith('\n'), 'whole lines only');
  return text
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as Rec);
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: tapstack trace's records, from the handshake to the close`, async () => {
    const t = new TcpHarness(family);
    const hub = new TraceHub(t.h.stack);
    const [mine, myReader] = pair();
    const [other, otherReader] = pair();
    hub.add(new Trace(mine, compileSsFilter(`dport = :${t.peerPort} and sport = :${t.localPort}`), hub));
    hub.add(new Trace(other, compileSsFilter('dport = :1'), hub));
    assert.equal(t.tcp.trace, hub);

    // The handshake takes 100 ms, so the RTT is known and no loss probe fires before the SACKs.
    t.listen();
    t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1000], ['sackOK'], ['nop'], ['nop'], ['nop'], ['wscale', 0]] });
    t.out();
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 1, win: 50000 });
    const sk = tcpAccept(t.tcp, t.listener!) as TcpSock;
    assert.equal(typeof sk, 'object');
    t.out();
    let recs = await drain(myReader);
    const v6 = family === AF_INET6;
    const head = { family: v6 ? 6 : 4, saddr: v6 ? 'fd00::2' : '10.0.0.2', sport: t.localPort, daddr: v6 ? 'fd00::1' : '10.0.0.1', dport: t.peerPort };
    const st = recs.find((r) => r.ev === 'state')!;
    assert.ok(st, 'a state change');
    assert.equal(st.new, 'ESTABLISHED');
    for (const [k, v] of Object.entries(head)) assert.equal(st[k], v, k);
    assert.equal(typeof st.ts, 'number');

    // Ten segments out; the first is lost; three SACKs make RACK mark it.
    tcpSendmsg(t.tcp, sk, Buffer.alloc(10000, 1));
    t.out();
    t.time.advance(110);
    const sackOpt = (end: number) => [['sack', (t.stackIsn + 1001) >>> 0, (t.stackIsn + end) >>> 0], ['nop'], ['nop']];
    t.send({ flags: A, seq: 1, ack: 1, win: 50000, options: sackOpt(2001) });
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 1, win: 50000, options: sackOpt(3001) });
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 1, win: 50000, options: sackOpt(4001) });
    assert.ok(t.out().some((s) => s.len && s.seq === 1), 'the fast retransmit');
    recs = await drain(myReader);
    // Absolute sequence numbers, as on the wire; a TSO super-segment is one record.
    const xmits = recs.filter((r) => r.ev === 'xmit' && (r.len as number) > 0);
    assert.deepEqual(
      { seq: xmits[0].seq, win: xmits[0].win, ack: xmits[0].ack, flags: xmits[0].flags },
      { seq: (t.stackIsn + 1) >>> 0, win: sk.rcvWnd, ack: t.peerIsn + 1, flags: 'P.' },
    );
    let next = (t.stackIsn + 1) >>> 0;
    for (const x of xmits.slice(0, -1)) {
      assert.equal(x.seq, next, 'the segments follow each other');
      next = x.end_seq as number;
      assert.equal(next, ((x.seq as number) + (x.len as number)) >>> 0);
    }
    assert.equal(next, (t.stackIsn + 10001) >>> 0, 'all ten thousand bytes');
    assert.equal(xmits.at(-1)!.seq, (t.stackIsn + 1) >>> 0, 'the retransmission is the last segment out');
    const rcvd = recs.filter((r) => r.ev === 'rcv');
    assert.equal(rcvd.length, 3);
    assert.deepEqual(rcvd[2].sack, [[(t.stackIsn + 1001) >>> 0, (t.stackIsn + 4001) >>> 0]]);
    assert.equal(rcvd[0].win, 50000, 'no window scaling here');
    assert.equal(rcvd[0].flags, '.');
    const sacks = recs.filter((r) => r.ev === 'sack');
    assert.equal(sacks.length, 3);
    assert.equal(sacks[0].dsack, false);
    const rexmit = recs.find((r) => r.ev === 'retransmit')!;
    assert.deepEqual([rexmit.seq, rexmit.end_seq, rexmit.reason], [(t.stackIsn + 1) >>> 0, (t.stackIsn + 1001) >>> 0, 'RACK']);
    assert.equal(recs.indexOf(rexmit), recs.indexOf(xmits.at(-1)!) + 1, 'the retransmission record follows its segment');
    const probes = recs.filter((r) => r.ev === 'probe');
    assert.equal(probes.length, 3, 'one probe per ACK');
    const last = probes[2];
    assert.equal(last.ca_state, 'Recovery');
    assert.equal(last.cwnd, sk.sndCwnd);
    assert.equal(last.ssthresh, sk.sndSsthresh);
    assert.equal(probes[0].ssthresh, null, 'still infinite before the loss');
    assert.equal(typeof last.srtt_us, 'number');
    assert.ok((last.inflight as number) > 0);

    // All acknowledged; the peer sends data, then the same again: the copy is dropped as old data.
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 10001, win: 40000 });
    t.send({ flags: A | P, seq: 1, ack: 10001, win: 40000, payload: 100 });
    t.send({ flags: A | P, seq: 1, ack: 10001, win: 40000, payload: 100 });
    t.out();
    recs = await drain(myReader);
    const win = recs.find((r) => r.ev === 'window')!;
    assert.deepEqual([win.old, win.new], [50000, 40000], 'the peer shrank its window with the ACK that moved snd_una');
    const drop = recs.find((r) => r.ev === 'drop')!;
    assert.deepEqual([drop.reason, drop.seq, drop.end_seq], ['TCP_OLD_DATA', t.peerIsn + 1, t.peerIsn + 101]);
    const dsackAck = recs.filter((r) => r.ev === 'xmit').at(-1)!;
    assert.deepEqual(dsackAck.sack, [[t.peerIsn + 1, t.peerIsn + 101]], 'the ACK that answers it carries the D-SACK');

    // A tail: one segment, never acknowledged: first the loss probe, then the timer.
    tcpSendmsg(t.tcp, sk, Buffer.alloc(500, 2));
    t.out();
    t.time.advance(1000);
    t.out();
    t.time.advance(3000);
    t.out();
    recs = await drain(myReader);
    const reasons = recs.filter((r) => r.ev === 'retransmit').map((r) => r.reason);
    assert.deepEqual(reasons.slice(0, 2), ['TLP', 'RTO'], 'the probe first, then the timer');
    assert.ok(reasons.slice(2).every((r) => r === 'RTO'), 'and the timer again, backing off');

    // A writer blocked on a full send buffer is woken when the ACK frees it.
    t.send({ flags: A, seq: 101, ack: 10501, win: 50000 });
    tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_SNDBUF, 4096);
    while (tcpSendmsg(t.tcp, sk, Buffer.alloc(4096, 3)) > 0);
    assert.ok(sk.noSpace, 'the writer is blocked');
    // After the RTO the cwnd is small: ACK what is out until the writer may write again.
    for (let i = 0; i < 50 && sk.noSpace; i++) {
      t.out();
      t.time.advance(10);
      t.send({ flags: A, seq: 101, ack: (sk.sndNxt - t.stackIsn) >>> 0, win: 50000 });
    }
    assert.ok(!sk.noSpace, 'the writer may write again');
    recs = await drain(myReader);
    const ws = recs.find((r) => r.ev === 'wspace')!;
    assert.ok(ws, 'the wake-up is traced');
    assert.equal(ws.sndbuf, sk.sndbuf);
    assert.ok((ws.min_wspace as number) <= (ws.sndbuf as number) - (ws.wmem_queued as number));

    // Closed with the peer's 100 bytes unread: a reset, as Linux's tcp_close sends (RFC 2525 2.17).
    tcpClose(t.tcp, sk);
    t.out();
    recs = await drain(myReader);
    assert.deepEqual(
      recs.filter((r) => r.ev === 'state').map((r) => [r.old, r.new]),
      [['ESTABLISHED', 'CLOSE']],
    );
    const rst = recs.find((r) => r.ev === 'xmit')!;
    assert.equal(rst.flags, 'R.');
    assert.equal(rst.len, 0);

    assert.deepEqual(await drain(otherReader), [], 'the other filter took nothing');
    hub.closeAll();
    assert.equal(t.tcp.trace, null, 'nobody traces: the hook is gone');
    ux.close(myReader);
    ux.close(otherReader);
  });
}

test('a trace reader that falls behind loses whole records, and is told how many', async () => {
  const t = TcpHarness.established(FAMILIES[0]);
  const hub = new TraceHub(t.h.stack);
  const [w, r] = pair();
  const [wAll, rAll] = pair();
  // Room for about one record; beside it a trace with room for all, to count against.
  hub.add(new Trace(w, compileSsFilter(''), hub, 300));
  hub.add(new Trace(wAll, compileSsFilter(''), hub));
  const got: Rec[] = [];
  const all: Rec[] = [];
  for (let i = 1; i <= 3; i++) {
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(1000, 1));
    t.out();
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 1 + i * 1000, win: 50000 });
    got.push(...(await drain(r)));
    all.push(...(await drain(rAll)));
  }
  const lost = got.filter((x) => x.ev === 'lost');
  assert.ok(lost.length > 0, 'the reader is told');
  for (const l of lost) assert.deepEqual(Object.keys(l), ['ev', 'records']);
  const lostCount = lost.reduce((n, l) => n + (l.records as number), 0);
  assert.equal(got.length - lost.length + lostCount, all.length, 'every record is either delivered or counted lost');
  hub.closeAll();
  ux.close(r);
  ux.close(rAll);
});
