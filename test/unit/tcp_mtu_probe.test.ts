/**
 * PLPMTUD (RFC 4821) with net.ipv4.tcp_mtu_probing=2: segments start at
 * tcp_base_mss, a probe at the middle of the search range goes out once
 * the cwnd (11) and the queue allow, and its fate moves the MSS
 * (tcp_mtup_probe_success) or stops the search below it
 * (tcp_mtup_probe_failed) without a cwnd reduction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, S, FAMILIES, familyName, type Seg } from '../lib/tcp_harness.js';
import { tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET6 } from '../../src/uapi.js';

/** An active open with probing on and tcp_base_mss 512, the peer's MSS 1460 and a 11-segment cwnd. */
function open(family: number): { t: TcpHarness; sk: TcpSock } {
  const t = new TcpHarness(family as never);
  t.tcp.sysctl.tcp_mtu_probing = 2;
  t.tcp.sysctl.tcp_base_mss = 512;
  // No timestamps: the header length, which the MTU/MSS conversions count, stays 20.
  t.tcp.sysctl.tcp_timestamps = 0;
  const sk = t.connect();
  t.out();
  t.send({ flags: S | A, seq: 0, ack: 1, win: 60000, options: [['mss', family === AF_INET6 ? 1440 : 1460], ['sackOK'], ['nop'], ['wscale', 0]] });
  t.out();
  sk.sndCwnd = 11;
  return { t, sk };
}

for (const family of FAMILIES) {
  const name = familyName(family);
  // (search_high 1500 + search_low 512 + headers) / 2: 1026 bytes of IPv4 (986 of payload), 1036 of IPv6 (976).
  const probe = family === AF_INET6 ? 976 : 986;
  const probeMtu = family === AF_INET6 ? 1036 : 1026;

  test(`${name}: PLPMTUD: 512-byte segments, a probe at the middle of the range first; acknowledged, the MSS grows to it and the cwnd keeps its bytes`, () => {
    const { t, sk } = open(family);
    assert.equal(sk.mssCache, 512, 'the search starts at tcp_base_mss');
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(8000, 1)), 8000);
    const out: Seg[] = t.out();
    assert.equal(out[0].len, probe);
    assert.equal(out[0].seq, 1);
    assert.ok(out.slice(1).every((s) => s.len <= 512), out.map((s) => s.len).join(' '));
    assert.equal(sk.sndCwnd, 10, 'the probe counts twice');
    const end = out[out.length - 1].seq + out[out.length - 1].len;
    t.send({ flags: A, seq: 1, ack: end, win: 60000 });
    assert.equal(t.mibs.TcpExt.TCPMTUPSuccess, 1);
    assert.equal(sk.mtupSearchLow, probeMtu);
    assert.equal(sk.mssCache, probe);
  });

  test(`${name}: PLPMTUD: a lost probe stops the search below it, its data goes again at the old MSS, no cwnd reduction`, () => {
    const { t, sk } = open(family);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(8000, 1));
    const out = t.out();
    assert.equal(out[0].len, probe);
    const cwnd = sk.sndCwnd;
    // Classic dupack counting (no RACK, whose reordering timer would find the loss and enter
    // recovery as for any other segment): the probe never arrives, the segments after it are
    // SACKed one more each time, an RTT later.
    t.tcp.sysctl.tcp_recovery = 0;
    t.time.advance(50);
    for (let i = 1; i <= 3 && i < out.length; i++) {
      t.send({ flags: A, seq: 1, ack: 1, win: 60000, options: [['nop'], ['nop'], ['sack', ...[out[1].seq, out[i].seq + out[i].len].map((n) => (n + t.stackIsn) >>> 0)]] });
    }
    assert.equal(t.mibs.TcpExt.TCPMTUPFail, 1);
    assert.equal(sk.mtupSearchHigh, probeMtu - 1);
    assert.equal(sk.mtupProbeSize, 0);
    assert.ok(sk.sndCwnd >= cwnd, `cwnd ${sk.sndCwnd} (was ${cwnd})`);
    const again = t.out().filter((seg) => seg.seq < out[0].len + 1);
    assert.deepEqual(
      again.map((seg) => [seg.seq, seg.len]),
      [
        [1, 512],
        [513, probe - 512],
      ],
      'the probe data is resent at the old MSS',
    );
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: PLPMTUD black hole detection (tcp_mtu_probing=1): after tcp_retries1 timeouts the MSS falls to tcp_base_mss`, () => {
    const t = new TcpHarness(family);
    t.tcp.sysctl.tcp_mtu_probing = 1;
    t.tcp.sysctl.tcp_timestamps = 0;
    const sk = t.accept([['mss', 1460], ['nop'], ['wscale', 0]], 60000);
    t.out();
    assert.equal(sk.mtupEnabled, false, 'off until a black hole is suspected');
    const full = sk.mssCache;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(full, 1));
    assert.equal(t.out()[0].len, full);
    const sizes: number[] = [];
    for (let i = 0; i < 200 && !sk.mtupEnabled; i++) {
      t.time.advance(100);
      for (const s of t.out()) sizes.push(s.len);
    }
    assert.equal(sk.mtupEnabled, true);
    assert.equal(sk.mssCache, 1024, 'tcp_base_mss');
    assert.equal(sizes[sizes.length - 1], 1024, `the retransmission of that timeout already fits: ${sizes}`);
    // Each further timeout halves it (tcp_mtu_probing's search_low / 2, not under tcp_mtu_probe_floor).
    t.time.advance(sk.rto);
    assert.deepEqual(t.out().map((s) => s.len).slice(0, 1), [512]);
  });
}
