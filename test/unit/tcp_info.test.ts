import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, P, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import {
  TCP_INFO_LAYOUT,
  TCP_INFO_SIZE,
  TCPI_OPT_SACK,
  TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_WSCALE,
  decodeTcpInfo,
  encodeTcpInfo,
  tcpGetInfo,
} from '../../src/net/ipv4/tcp_info.js';
import { TCP_ESTABLISHED } from '../../src/net/core/sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { AF_INET } from '../../src/uapi.js';

test('struct tcp_info layout: Linux 6.18 offsets, sizes, no overlap, 280 bytes', () => {
  const size = { u8: 1, u16: 2, u32: 4, u64: 8 } as const;
  // Offsets from include/uapi/linux/tcp.h (checked against a 6.18 kernel's getsockopt image).
  const want: Record<string, number> = {
    tcpi_rto: 8,
    tcpi_snd_mss: 16,
    tcpi_unacked: 24,
    tcpi_last_data_sent: 44,
    tcpi_pmtu: 60,
    tcpi_snd_ssthresh: 76,
    tcpi_snd_cwnd: 80,
    tcpi_reordering: 88,
    tcpi_total_retrans: 100,
    tcpi_pacing_rate: 104,
    tcpi_bytes_acked: 120,
    tcpi_segs_out: 136,
    tcpi_min_rtt: 148,
    tcpi_delivery_rate: 160,
    tcpi_delivered: 192,
    tcpi_bytes_sent: 200,
    tcpi_snd_wnd: 228,
    tcpi_rcv_wnd: 232,
    tcpi_total_rto: 240,
    tcpi_total_rto_time: 244,
    tcpi_received_ce_bytes: 272,
  };
  const used = new Uint8Array(TCP_INFO_SIZE);
  used[6] = used[7] = 1; // bitfield bytes
  for (let i = 276; i < 280; i++) used[i] = 1;
  for (const [name, off, kind] of TCP_INFO_LAYOUT) {
    if (name in want) assert.equal(off, want[name], name);
    assert.equal(off % size[kind], 0, `${name} is naturally aligned`);
    for (let i = off; i < off + size[kind]; i++) {
      assert.equal(used[i], 0, `${name} overlaps at ${i}`);
      used[i] = 1;
    }
  }
  // Every byte belongs to a member: no padding in 6.18's struct.
  assert.equal(used.indexOf(0), -1);
  assert.equal(TCP_INFO_SIZE, 280);
});

// Once: a fresh AF_INET socket, whatever the harness.
test('TCP_INFO of a fresh socket matches what Linux 6.18 reports for one, byte for byte where modelled', () => {
  const t = new TcpHarness(AF_INET);
  const sk = tcpNewSock(t.tcp);
  const buf = Buffer.alloc(512, 0xee);
  assert.equal(encodeTcpInfo(tcpGetInfo(t.tcp, sk), buf), 280);
  assert.equal(buf[280], 0xee, 'nothing written past sizeof');
  // Values read with getsockopt(TCP_INFO) from an unconnected Linux 6.18 socket.
  assert.equal(buf[0], 7); // TCP_CLOSE
  assert.equal(buf.readUInt32LE(8), 1_000_000); // rto, usec
  assert.equal(buf.readUInt32LE(16), 536); // snd_mss
  assert.equal(buf.readUInt32LE(60), 0); // pmtu
  assert.equal(buf.readUInt32LE(76), 0x7fffffff); // snd_ssthresh
  assert.equal(buf.readUInt32LE(80), 10); // snd_cwnd
  assert.equal(buf.readUInt32LE(88), 3); // reordering
  assert.equal(buf.readBigUInt64LE(104), 0xffff_ffff_ffff_ffffn); // pacing_rate
  assert.equal(buf.readBigUInt64LE(112), 0xffff_ffff_ffff_ffffn); // max_pacing_rate
  assert.equal(buf.readUInt32LE(148), 0xffffffff); // min_rtt
  assert.equal(buf.readUInt32LE(276), 0);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: TCP_INFO of an established connection: options, wscale bitfields, counters and a short copy`, () => {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]], 50000);
    t.out();
    const sk = t.sk!;
    t.time.advance(50);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(3000, 1));
    const sent = t.out();
    const dataBytes = sent.reduce((n, s) => n + s.len, 0);
    assert.equal(dataBytes, 3000);
    t.time.advance(20);
    const tsval = t.lastTsval(sent[sent.length - 1]);
    t.send({ flags: A, seq: 1, ack: 3001, options: [['nop'], ['nop'], ['TS', 200, tsval]] });
    t.send({ flags: A | P, seq: 1, ack: 3001, payload: 500, options: [['nop'], ['nop'], ['TS', 201, tsval]] });
    t.out();
    t.time.advance(5);

    const info = tcpGetInfo(t.tcp, sk);
    assert.equal(info.tcpi_state, TCP_ESTABLISHED);
    assert.equal(info.tcpi_options, TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
    assert.equal(info.tcpi_snd_wscale, 7);
    assert.equal(info.tcpi_rcv_wscale, sk.rcvWscale);
    assert.equal(info.tcpi_snd_mss, 988); // 1000 less the 12 bytes of timestamps
    assert.equal(info.tcpi_unacked, 0);
    assert.equal(info.tcpi_bytes_acked, 3000n);
    assert.equal(info.tcpi_bytes_received, 500n);
    // The handshake's RTT sample was ~0, so a tail loss probe (2*srtt + 2 ms) resent the last 36 bytes at 3 ms.
    assert.equal(info.tcpi_bytes_sent, 3036n);
    assert.equal(info.tcpi_bytes_retrans, 36n);
    assert.equal(info.tcpi_total_retrans, 1);
    assert.equal(info.tcpi_data_segs_out, 5); // 988+988+988+36, and the probe
    assert.equal(info.tcpi_data_segs_in, 1);
    assert.equal(info.tcpi_delivered, 4);
    // Two RTT samples: the handshake's (0 -> 1 us) then 20 ms: srtt = 1 + (20000 - 1) / 8.
    assert.equal(info.tcpi_rtt, 2500);
    assert.equal(info.tcpi_min_rtt, 1);
    assert.equal(info.tcpi_last_data_sent, 22); // the probe went out at 3 ms
    assert.equal(info.tcpi_last_data_recv, 5);
    assert.equal(info.tcpi_last_ack_recv, 5);
    assert.equal(info.tcpi_pmtu, 1500);
    assert.ok(info.tcpi_delivery_rate > 0n, 'a delivery-rate sample');

    const buf = Buffer.alloc(TCP_INFO_SIZE);
    encodeTcpInfo(info, buf);
    assert.equal(buf[5], TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
    assert.equal(buf[6], 7 | (sk.rcvWscale << 4));
    assert.equal(buf.readUInt32LE(16), 988);
    assert.equal(buf.readBigUInt64LE(120), 3000n);
    assert.equal(buf.readBigUInt64LE(128), 500n);
    assert.equal(buf.readUInt32LE(68), 2500);
    assert.deepEqual(decodeTcpInfo(buf), info);

    // A caller built against the 6.2 header (240 bytes) gets just that prefix.
    const old = Buffer.alloc(240);
    assert.equal(encodeTcpInfo(info, old), 240);
    assert.deepEqual(old, buf.subarray(0, 240));
  });
}
