/**
 * The stack-wide memory limits, as Linux keeps them: tcp_mem (pages all
 * TCP sockets may hold; pressure, pruning and collapsing past it),
 * udp_mem, tcp_max_orphans and tcp_max_tw_buckets, with their counters.
 * On the virtual clock, one connection from the scripted peer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, F, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { Harness } from '../lib/harness.js';
import { tcpClose, tcpInitMem, tcpRecvmsg, tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { tcpCurrentMss, tcpXmitSizeGoal } from '../../src/net/ipv4/tcp_output.js';
import { UdpSysctl, udpInitMem, udpRecvmsg } from '../../src/net/ipv4/udp.js';
import { TcpSysctl } from '../../src/net/ipv4/tcp_sock.js';
import { sysctlGet, sysctlSet, sysctlValidate } from '../../src/net/sysctl.js';
import { inetFrame, udp as udpPayload } from '../lib/frames.js';
import { AF_INET, EAGAIN, SOCK_DGRAM } from '../../src/uapi.js';
import { sockAddr } from '../../src/net/core/sock.js';
import { PercpuCounter, SHARE_TCP_ORPHANS, shareBatch, stackShareCreate } from '../../src/net/core/percpu_counter.js';

/** Read everything queued. */
function drain(t: TcpHarness): number {
  const buf = Buffer.alloc(1 << 20);
  let n = 0;
  for (;;) {
    const r = tcpRecvmsg(t.tcp, t.sk!, buf);
    if (r <= 0) return n;
    n += r;
  }
}

test('tcp_mem and udp_mem scale with the stack\'s memory as Linux scales them with the machine\'s', () => {
  // This machine's kernel, from its free buffer pages: tcp_mem 287907 383877 575814, udp_mem 575814 767755 1151628.
  const tcp = new TcpSysctl();
  tcpInitMem(tcp, 6_142_032 * 4096);
  assert.deepEqual(tcp.tcp_mem, [287907, 383877, 575814]);
  assert.equal(tcp.tcp_max_orphans, 131072);
  assert.equal(tcp.tcp_max_tw_buckets, 131072);
  const udp = new UdpSysctl();
  udpInitMem(udp, 6_142_040 * 4096);
  assert.deepEqual(udp.udp_mem, [575814, 767755, 1151628]);
  // A small stack keeps Linux's floor of 128 pages.
  tcpInitMem(tcp, 1 << 20);
  assert.deepEqual(tcp.tcp_mem, [96, 128, 192]);
  assert.equal(tcp.tcp_max_orphans, 64);
  // A stack given its memory sets them; sysctl shows and changes them.
  const h = new Harness(AF_INET, { memory: 256 * 1024 * 1024 });
  assert.equal(sysctlGet(h.stack, 'net.ipv4.tcp_mem'), '3072\t4096\t6144');
  assert.equal(sysctlGet(h.stack, 'net.ipv4.udp_mem'), '6144\t8192\t12288');
  assert.equal(sysctlSet(h.stack, 'net.ipv4.tcp_mem', '10 20 30'), 0);
  assert.deepEqual(h.stack.tcp.sysctl.tcp_mem, [10, 20, 30]);
  assert.equal(sysctlSet(h.stack, 'net.ipv4.tcp_max_tw_buckets', '7'), 0);
  assert.match(sysctlValidate('net.ipv4.udp_mem', '1 2') ?? '', /net\.ipv4\.udp_mem: .*three integers/);
  assert.match(sysctlValidate('net.ipv4.tcp_max_orphans', '-1') ?? '', /tcp_max_orphans: -1 is out of range/);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: past tcp_mem's pressure point the window stops growing; reading ends the pressure and closing returns every page`, () => {
    /** 40 segments of 1000 bytes, unread, on a fresh connection; tcp_mem as given. */
    const run = (mem: [number, number, number] | null) => {
      const t = TcpHarness.established(family);
      if (mem) t.tcp.sysctl.tcp_mem = mem;
      // A window with room to grow (rcv_ssthresh below its clamp, as early in a connection).
      t.sk!.rcvSsthresh = 20_000;
      let seq = 1;
      for (let i = 0; i < 40; i++) {
        t.send({ flags: A, seq, ack: 1, payload: 1000 });
        seq += 1000;
      }
      t.out();
      return { t, seq };
    };
    const free = run(null);
    assert.equal(free.t.tcp.mem.pressure, false);
    // Pressure from the second page on.
    const { t, seq } = run([1, 1, 64]);
    const tcp = t.tcp;
    const sk = t.sk!;
    const ext = t.h.stack.mibs.TcpExt;
    assert.equal(tcp.mem.pressure, true, `${tcp.mem.allocated} pages: under pressure`);
    assert.equal(ext.TCPMemoryPressures, 1);
    assert.ok(sk.rcvSsthresh < free.t.sk!.rcvSsthresh, `the window grew to ${sk.rcvSsthresh}, not ${free.t.sk!.rcvSsthresh} as without pressure`);
    assert.equal(sk.rmemAlloc, 40_000, 'nothing was dropped: under tcp_mem\'s max');
    // Reading returns the pages; below the min the pressure ends, its duration counted.
    t.time.advance(250);
    assert.equal(drain(t), 40_000);
    assert.equal(tcp.mem.pressure, false);
    assert.ok(ext.TCPMemoryPressuresChrono >= 250, `${ext.TCPMemoryPressuresChrono} ms under pressure`);
    assert.ok(tcp.mem.allocated <= 1, `${tcp.mem.allocated} pages left after reading`);
    assert.equal(sk.rcvTruesize, 0);
    t.send({ flags: F | A, seq, ack: 1 });
    tcpClose(tcp, sk);
    t.out();
    t.send({ flags: A, seq: seq + 1, ack: 2 });
    assert.equal(tcp.mem.allocated, 0, 'closed: every page back');
  });

  test(`${familyName(family)}: past tcp_mem's max in-order data is dropped once the reader has some (PruneCalled, TCPRcvQDrop), the window clamped under pressure`, () => {
    const t = TcpHarness.established(family);
    const tcp = t.tcp;
    const sk = t.sk!;
    const ext = t.h.stack.mibs.TcpExt;
    tcp.sysctl.tcp_mem = [2, 4, 8];
    tcp.sysctl.tcp_rmem[0] = 1000;
    let seq = 1;
    for (let i = 0; i < 50; i++) {
      t.send({ flags: A, seq, ack: 1, payload: 1000 });
      seq += 1000;
    }
    t.out();
    assert.ok(ext.PruneCalled > 0, `prune ${ext.PruneCalled}`);
    assert.ok(ext.TCPRcvQDrop > 0);
    assert.equal(ext.RcvPruned, 0, 'the socket is under its own limit: tcp_mem refused, not SO_RCVBUF');
    assert.ok(tcp.mem.allocated <= 8 + 1, `${tcp.mem.allocated} pages, max 8`);
    assert.ok(sk.rcvSsthresh <= 4 * sk.advmss, `rcv_ssthresh ${sk.rcvSsthresh}: at most 4 segments under pressure`);
    // What was kept reads back in order; the rest comes again from the peer.
    const kept = sk.rmemAlloc;
    assert.ok(kept > 0 && kept < 50_000);
    assert.equal(drain(t), kept);
    t.send({ flags: A, seq: 1 + kept, ack: 1, payload: 1000 });
    assert.equal(sk.rmemAlloc, 1000, 'room again once read');
  });

  test(`${familyName(family)}: past its own receive buffer a socket prunes, and drops what it still cannot hold (RcvPruned)`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const ext = t.h.stack.mibs.TcpExt;
    // The offered window stays what it was; the buffer behind it shrinks (a setsockopt after the handshake).
    sk.rcvbuf = 8000;
    let seq = 1;
    for (let i = 0; i < 20; i++) {
      t.send({ flags: A, seq, ack: 1, payload: 1000 });
      seq += 1000;
    }
    t.out();
    assert.ok(ext.RcvPruned > 0, `prune ${ext.PruneCalled}, pruned ${ext.RcvPruned}`);
    assert.ok(sk.rmemAlloc <= 8000 + (8000 >> 1) + 1000, `${sk.rmemAlloc} bytes held`);
  });

  test(`${familyName(family)}: a flood of one-byte out-of-order segments is bounded by what they cost, not their bytes (PruneCalled, OfoPruned)`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const ext = t.h.stack.mibs.TcpExt;
    // One-byte segments with gaps between them: nothing merges, each is a queue entry.
    for (let i = 0; i < 5000; i++) t.send({ flags: A, seq: 2 + 2 * i, ack: 1, payload: 1 });
    t.out();
    assert.ok(ext.PruneCalled > 0 && ext.OfoPruned > 0, `prune ${ext.PruneCalled}, ofo pruned ${ext.OfoPruned}`);
    assert.ok(sk.ofoQueue.length < 1200, `${sk.ofoQueue.length} segments held, not 5000`);
    assert.ok(sk.rcvTruesize <= 2 * sk.rcvbuf + 300, `${sk.rcvTruesize} bytes of queue for ${sk.rcvbuf} of SO_RCVBUF`);
    assert.equal(sk.numSacks, Math.min(sk.numSacks, 4));
    // The connection goes on: the hole filled, in-order data reaches the reader.
    t.send({ flags: A, seq: 1, ack: 1, payload: 1 });
    assert.ok(drain(t) >= 1);
  });

  test(`${familyName(family)}: contiguous out-of-order segments collapse into one fragment when the queue is pruned (TCPRcvCollapsed)`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const ext = t.h.stack.mibs.TcpExt;
    // A hole at 1, then 20 contiguous 100-byte segments: 20 fragments, each with its overhead.
    for (let i = 0; i < 20; i++) t.send({ flags: A, seq: 101 + 100 * i, ack: 1, payload: Buffer.alloc(100, i) });
    t.out();
    assert.equal(sk.ofoQueue.length, 20);
    const before = sk.rcvTruesize;
    // The queue's cost (2000 bytes, 20 overheads) is now past twice SO_RCVBUF: the next segment
    // makes the socket prune, and collapsing alone makes room (nothing is dropped).
    sk.rcvbuf = 3000;
    t.send({ flags: A, seq: 3001, ack: 1, payload: 100 });
    assert.equal(ext.TCPRcvCollapsed, 20, 'each of the 20 was collapsed');
    assert.equal(ext.OfoPruned, 0);
    assert.equal(sk.ofoQueue.length, 2, 'the run as one fragment, and the new segment');
    assert.ok(sk.rcvTruesize < before, `${before} -> ${sk.rcvTruesize} bytes of queue`);
    // The bytes are intact: fill the hole and read the run back.
    t.send({ flags: A, seq: 1, ack: 1, payload: Buffer.alloc(100, 0x62) });
    const buf = Buffer.alloc(4096);
    const n = tcpRecvmsg(t.tcp, sk, buf);
    assert.equal(n, 2100, 'the hole and the collapsed run');
    for (let i = 0; i < 20; i++) assert.equal(buf[100 + 100 * i + 50], i, `segment ${i}'s bytes in place`);
  });

  test(`${familyName(family)}: past tcp_max_orphans a closing socket is reset (TCPAbortOnMemory); past tcp_max_tw_buckets none waits in TIME_WAIT (TCPTimeWaitOverflow)`, () => {
    const t = TcpHarness.established(family);
    const tcp = t.tcp;
    const ext = t.h.stack.mibs.TcpExt;
    tcp.sysctl.tcp_max_orphans = 0;
    assert.equal(tcpSendmsg(tcp, t.sk!, Buffer.alloc(100)), 100);
    t.out();
    tcpClose(tcp, t.sk!);
    const sent = t.out();
    assert.equal(sent[sent.length - 1].flags, 'R.', `one orphan is past a limit of 0: reset (${sent.map((x) => x.flags)})`);
    assert.equal(ext.TCPAbortOnMemory, 1);
    assert.equal(tcp.orphans.count, 0);
    // Active close into TIME_WAIT with no room for a tw sock.
    const u = TcpHarness.established(family);
    u.tcp.sysctl.tcp_max_tw_buckets = 0;
    tcpClose(u.tcp, u.sk!);
    u.out();
    u.send({ flags: F | A, seq: 1, ack: 2 });
    assert.equal(u.h.stack.mibs.TcpExt.TCPTimeWaitOverflow, 1);
    assert.equal(u.tcp.tw.count, 0);
    assert.equal(u.tcp.hashinfo.sockets().next().value?.state, 10, 'only the listener is left');
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: send memory: under pressure the send buffer does not expand; past tcp_mem's max a writer gets tcp_wmem[0], a moderated buffer and EAGAIN`, () => {
    /** Send 200 KB into a peer window of 50 000, the peer ACKing what arrives, tcp_mem as given. */
    const run = (mem: [number, number, number] | null) => {
      const t = TcpHarness.established(family);
      if (mem) t.tcp.sysctl.tcp_mem = mem;
      const sk = t.sk!;
      const sndbuf0 = sk.sndbuf;
      let sent = 0;
      for (let round = 0; round < 20 && sent < 200_000; round++) {
        const n = tcpSendmsg(t.tcp, sk, Buffer.alloc(200_000 - sent));
        if (n > 0) sent += n;
        const out = t.out();
        const top = out.reduce((m, x) => Math.max(m, x.seq + x.len), 0);
        if (top) t.send({ flags: A, seq: 1, ack: top, win: 50_000 });
      }
      return { t, sk, sndbuf0, sent };
    };
    const free = run(null);
    assert.ok(free.sk.sndbuf > free.sndbuf0, `without pressure the send buffer grows (${free.sndbuf0} -> ${free.sk.sndbuf})`);
    const pressed = run([0, 0, 1 << 20]);
    assert.equal(pressed.t.tcp.mem.pressure, true);
    assert.equal(pressed.sk.sndbuf, pressed.sndbuf0, 'under pressure it does not');
    // Past the max: the first skb is let in (both queues empty), the send buffer is moderated to
    // what is queued, a socket already past it is charged rather than failed (Linux's rule), and the
    // writer stops at the buffer and waits.
    const t = TcpHarness.established(family);
    t.tcp.sysctl.tcp_mem = [0, 0, 0];
    const sk = t.sk!;
    const n = tcpSendmsg(t.tcp, sk, Buffer.alloc(100_000));
    assert.ok(n >= tcpXmitSizeGoal(sk, tcpCurrentMss(sk)) && n < 100_000, `${n} bytes taken, not all`);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100_000)), -EAGAIN);
    assert.ok(sk.sndbuf < 16384, `sndbuf moderated to ${sk.sndbuf}`);
    assert.equal(sk.noSpace, true, 'the writer waits for room');
  });
}

test('udp_mem: past its min a socket with udp_rmem_min queued gets no more memory (MemErrors), and reading makes room', () => {
  const h = new Harness(AF_INET);
  const udp = h.stack.udp;
  const sock = h.stack.families.create(AF_INET, SOCK_DGRAM, 0, 0);
  assert.ok(typeof sock !== 'number');
  const any = sockAddr(AF_INET);
  any.port = 5353;
  assert.equal(sock.ops.bind(sock.sk, any, true), 0);
  udp.sysctl.udp_mem = [1, 1, 1];
  udp.sysctl.udp_rmem_min = 1;
  // 3000 bytes: each datagram needs a page of its own.
  const dgram = () => h.rx(inetFrame(AF_INET, { proto: 17, payload: udpPayload(40000, 5353, Buffer.alloc(3000)) }));
  dgram();
  dgram();
  dgram();
  assert.equal(sock.sk.rmemAlloc > 0, true);
  assert.equal(h.stack.mibs.Udp.MemErrors, 2, 'the first fits under udp_rmem_min, the next two do not');
  assert.equal(h.stack.mibs.Udp.InErrors, 2);
  assert.equal(udpRecvmsg(udp, sock.sk as never, Buffer.alloc(4000), 0, null), 3000);
  assert.equal(udp.mem.allocated, 0, 'read: the page is back');
  dgram();
  assert.equal(h.stack.mibs.Udp.MemErrors, 2);
});

test('percpu_counter: changes reach the shared count one batch at a time; each reads the shared count and its own unfolded part', () => {
  const buf = stackShareCreate();
  const a = new PercpuCounter();
  const b = new PercpuCounter();
  // A limit of 128 over 2 stacks: batches of 4.
  a.share(buf, SHARE_TCP_ORPHANS, 2, () => 128);
  b.share(buf, SHARE_TCP_ORPHANS, 2, () => 128);
  a.add(3);
  assert.equal(a.read(), 3);
  assert.equal(b.read(), 0, 'under a batch: not folded yet');
  a.add(1);
  assert.equal(b.read(), 4, 'a whole batch: folded');
  b.add(-2);
  assert.equal(a.read(), 4);
  assert.equal(b.read(), 2);
  b.add(-2);
  assert.equal(a.read(), 0);
  assert.deepEqual([a.count, b.count], [4, -4], 'each keeps its own count exactly');
  assert.equal(shareBatch(30, 2, 256), 1, 'at least 1');
  assert.equal(shareBatch(3200, 2, 256), 100, '1/16 of the limit over the stacks');
  assert.equal(shareBatch(1 << 20, 2, 256), 256, 'at most SK_MEMORY_PCPU_RESERVE');
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: two stacks sharing their accounting: tcp_mem's pressure is reached by their sum, tcp_max_orphans and tcp_max_tw_buckets limit the two together`, () => {
    /** 40 unread segments of 1000 bytes on a fresh connection of its own stack. */
    const fill = (t: TcpHarness) => {
      t.sk!.rcvSsthresh = 20_000;
      for (let i = 0; i < 40; i++) t.send({ flags: A, seq: 1 + 1000 * i, ack: 1, payload: 1000 });
      t.out();
    };
    const alone = TcpHarness.established(family);
    fill(alone);
    const x = alone.tcp.mem.allocated;
    assert.ok(x >= 8, `${x} pages for 40 KB`);
    // One stack's fill stays under the pressure point; two stacks' pass it.
    const mem: [number, number, number] = [x, Math.ceil(x * 1.5), 4 * x];
    const pair = (shared: boolean) => {
      const a = TcpHarness.established(family);
      const b = TcpHarness.established(family);
      for (const t of [a, b]) t.tcp.sysctl.tcp_mem = [...mem];
      if (shared) {
        const buf = stackShareCreate();
        a.h.stack.shareAccounting(buf, 2);
        b.h.stack.shareAccounting(buf, 2);
      }
      fill(a);
      fill(b);
      return [a, b];
    };
    const [ua, ub] = pair(false);
    assert.equal(ua.tcp.mem.pressure || ub.tcp.mem.pressure, false, 'each alone: no pressure');
    const [a, b] = pair(true);
    assert.equal(a.tcp.mem.pressure, false, 'the first fill alone is under the pressure point');
    assert.equal(b.tcp.mem.pressure, true, `the second fill takes the sum to ${b.tcp.mem.memoryAllocated()} pages, past ${mem[1]}`);
    assert.equal(b.mibs.TcpExt.TCPMemoryPressures, 1);
    // Each stack's counters are its own; the limits see the sum.
    assert.equal(a.tcp.mem.allocated + b.tcp.mem.allocated, b.tcp.mem.memoryAllocated());
    assert.equal(a.tcp.mem.allocated, ua.tcp.mem.allocated);
    // What a reads goes back to the shared count; b's next release finds the sum under the min.
    assert.equal(drain(a), 40_000);
    assert.equal(drain(b), 40_000);
    assert.equal(b.tcp.mem.pressure, false);
    assert.ok(a.tcp.mem.memoryAllocated() <= 2, `${a.tcp.mem.memoryAllocated()} pages left over both`);

    // tcp_max_orphans 1 over both: the second orphan is one too many, whichever stack holds it.
    const orphan = (shared: boolean) => {
      const [c, d] = [TcpHarness.established(family), TcpHarness.established(family)];
      if (shared) {
        const buf = stackShareCreate();
        for (const t of [c, d]) t.h.stack.shareAccounting(buf, 2);
      }
      for (const t of [c, d]) {
        t.tcp.sysctl.tcp_max_orphans = 1;
        assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(100)), 100);
        t.out();
        tcpClose(t.tcp, t.sk!);
        t.out();
      }
      return [c.mibs.TcpExt.TCPAbortOnMemory, d.mibs.TcpExt.TCPAbortOnMemory];
    };
    assert.deepEqual(orphan(false), [0, 0]);
    assert.deepEqual(orphan(true), [0, 1]);

    // tcp_max_tw_buckets 1 over both: the second TIME_WAIT overflows.
    const timeWait = (shared: boolean) => {
      const [c, d] = [TcpHarness.established(family), TcpHarness.established(family)];
      if (shared) {
        const buf = stackShareCreate();
        for (const t of [c, d]) t.h.stack.shareAccounting(buf, 2);
      }
      for (const t of [c, d]) {
        t.tcp.sysctl.tcp_max_tw_buckets = 1;
        tcpClose(t.tcp, t.sk!);
        t.out();
        t.send({ flags: F | A, seq: 1, ack: 2 });
      }
      return [c.mibs.TcpExt.TCPTimeWaitOverflow, d.mibs.TcpExt.TCPTimeWaitOverflow, c.tcp.tw.count + d.tcp.tw.count];
    };
    assert.deepEqual(timeWait(false), [0, 0, 2]);
    assert.deepEqual(timeWait(true), [0, 1, 1]);
  });
}
