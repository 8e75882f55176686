/**
 * tcp_slow_start_after_idle's restart (RFC 2861 as Linux does it) applies
 * when the peer's window reopens after a long zero-window spell, not only
 * when new data is written: tcp_ack_update_window calls
 * tcp_slow_start_after_idle_check when the window changes with data
 * waiting. Probes into the zero window send no data (lsndtime stays), so
 * seconds of probing are seconds of idleness, and the reopened window gets
 * a restarted cwnd, not a burst of the old one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, FAMILIES, TcpHarness, familyName } from '../lib/tcp_harness.js';
import { tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { sysctlSet } from '../../src/net/sysctl.js';

/** Established, then grown in slow start to a cwnd of 40 by three rounds of ACKed bursts. */
function grown(family: (typeof FAMILIES)[number]): TcpHarness {
  const t = TcpHarness.established(family);
  const sk = t.sk!;
  let acked = 1;
  for (let round = 0; round < 3; round++) {
    const want = sk.sndCwnd * 1000;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(want, 1));
    const segs = t.out();
    const end = Math.max(...segs.map((s) => s.seq + s.len));
    t.time.advance(10);
    acked = end;
    t.send({ flags: A, seq: 1, ack: acked, win: 50000 });
    t.out();
  }
  assert.equal(sk.sndCwnd, 80, 'slow start doubled the cwnd three times');
  return t;
}

for (const family of FAMILIES) {
  for (const after of [1, 0]) {
    test(`${familyName(family)}: tcp_slow_start_after_idle=${after}: a window reopened after 10 s of zero-window probes sends ${after ? 'a restarted cwnd' : 'the old cwnd'}`, () => {
      const t = grown(family);
      const sk = t.sk!;
      assert.equal(sysctlSet(t.h.stack, 'net.ipv4.tcp_slow_start_after_idle', String(after)), 0);
      const una = sk.sndNxt - t.stackIsn;
      // The peer's window closes with everything acknowledged; the application queues 60 segments.
      t.send({ flags: A, seq: 1, ack: una, win: 0 });
      tcpSendmsg(t.tcp, sk, Buffer.alloc(60_000, 2));
      assert.deepEqual(t.out(), [], 'nothing goes into a zero window');
      // Ten seconds of probes (answered with the window still shut).
      const start = t.time.now();
      let probes = 0;
      while (t.time.now() - start < 10_000) {
        t.time.advance(Math.max(1, t.time.timers.next() - t.time.now()));
        for (const s of t.out()) {
          assert.equal(s.len, 0, 'a zero-window probe carries no data');
          probes++;
          t.send({ flags: A, seq: 1, ack: una, win: 0 });
        }
      }
      assert.ok(probes >= 3, `${probes} probes in 10 s`);
      const cwndBefore = sk.sndCwnd;
      // The window opens wide: what goes out at once is the cwnd's worth.
      t.send({ flags: A, seq: 1, ack: una, win: 65535 });
      const burst = t.out().reduce((n, s) => n + Math.ceil(s.len / 1000), 0);
      if (after) {
        assert.equal(sk.sndCwnd, 10, 'halved per idle RTO down to the initial window');
        assert.equal(burst, 10);
      } else {
        assert.equal(sk.sndCwnd, cwndBefore);
        assert.equal(burst, Math.min(cwndBefore, 60));
      }
    });
  }
}

/**
 * tcp_sndbuf_expand at the handshake: room for 2 x 10 segments of the
 * PEER's MSS (rx_opt.mss_clamp) in a power-of-two head plus the struct
 * sk_buff. With tcp_wmem's default at 50000 and a peer MSS of 1000 that is
 * 2 x 10 x (2048 + 256) = 46080: the default stands, and a 59000-byte
 * write takes 58000 (packetdrill's notsent-lowat-default). Our own MSS
 * (1460) would make it 2 x 10 x 4352.
 */
for (const family of FAMILIES) {
  test(`${familyName(family)}: the send buffer at the handshake follows the peer's MSS, as tcp_sndbuf_expand`, () => {
    for (const [peerMss, want] of [
      [1000, 50000],
      [1460, 2 * 10 * (4096 + 256)],
    ]) {
      const t = new TcpHarness(family);
      assert.equal(sysctlSet(t.h.stack, 'net.ipv4.tcp_wmem', '4096 50000 4194304'), 0);
      const sk = t.accept([['mss', peerMss], ['nop'], ['wscale', 7]], 50000);
      assert.equal(sk.sndbuf, want, `peer MSS ${peerMss}`);
    }
  });
}
