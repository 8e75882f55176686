/**
 * Blind injection (RFC 5961's off-path attacker, who knows the 4-tuple but
 * not the sequence numbers) into an echo connection, idle during the attack
 * so that what the attacked side sends is its answers: 4 000 RSTs, SYNs,
 * data segments and bare ACKs with random sequence and acknowledgment
 * numbers, spoofed from the client. The same attack, with the same tool,
 * runs against the stack over its TAP and against Linux over veth. Both
 * connections must survive, echoing every byte intact after it, and the
 * stack's answers must be counted as what they are: a DelayedACKLost or TCPDSACKOldSent is
 * an ACK that went out, never more of them than ACKs sent (these counters
 * once rose by 999 while the stack sent 4 ACKs).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns, ROOT, exitOf, requireIntegration, waitLine, outputOf } from './netns.js';

const skip = requireIntegration(['python3']);
const INJECT = join(ROOT, 'test', 'integration', 'blind_inject.py');
const CONN = join(ROOT, 'test', 'integration', 'echo_conn.py');
const ECHO = join(ROOT, 'bench', 'tools', 'tcp_echo.py');
const COUNT = 4000;
const SECONDS = 4;
const STACK_MAC = '02:74:73:00:00:02';

const spaces: Netns[] = [];
after(() => spaces.forEach((n) => n.destroy()));

interface Outcome {
  sent: Record<string, number>;
  conn: { echoed: number; mismatches: number; error: string | null };
  /** TcpExt and Tcp counter deltas on the attacked side. */
  delta: Record<string, number>;
}

const WATCH = ['TCPChallengeACK', 'TCPSYNChallenge', 'TCPACKSkippedSeq', 'TCPACKSkippedChallenge', 'DelayedACKLost', 'TCPDSACKOldSent', 'OutSegs', 'InErrs', 'OutRsts'];

async function attack(
  client: Netns,
  conn: ChildProcess,
  iface: string,
  dstMac: string,
  src: string,
  dst: string,
  counters: () => Promise<Record<string, number>>,
): Promise<Outcome> {
  const port = Number((await waitLine(conn, /^port (\d+) idle$/m, 'the echo connection'))[1]);
  const c0 = await counters();
  const out = client.ok(`python3 ${INJECT} ${iface} ${dstMac} ${src} ${port} ${dst} 7 ${COUNT} ${SECONDS} 5961`, (SECONDS + 30) * 1000);
  const c1 = await counters();
  // The connection goes on after the attack: it must still echo.
  conn.kill('SIGUSR1');
  assert.equal(await exitOf(conn, 60_000), 0, 'the echo client ended');
  const result = JSON.parse(outputOf(conn).trim().split('\n').pop()!) as Outcome['conn'];
  const delta: Record<string, number> = {};
  for (const k of WATCH) delta[k] = (c1[k] ?? 0) - (c0[k] ?? 0);
  return { sent: JSON.parse(out.trim().split('\n').pop()!), conn: result, delta };
}

test('blind RST/SYN/data/ACK injection: the connection lives, every byte intact, answers counted as sent; the same on Linux', { skip, timeout: 120_000 }, async () => {
  // The stack on its TAP, the client on the kernel side of it.
  const st = new Netns('inj');
  spaces.push(st);
  const d = await st.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24']);
  const sConn = st.background(`python3 ${CONN} 10.0.0.2 7 1048576 90`);
  const stackCounters = async () => {
    const c = await d.counters();
    return { ...c.Tcp, ...c.TcpExt };
  };
  const stack = await attack(st, sConn, 'tap0', STACK_MAC, '10.0.0.1', '10.0.0.2', stackCounters);

  // Linux: the client in one namespace, the echo server in another, over veth.
  const a = new Netns('inja');
  const b = new Netns('injb');
  spaces.push(a, b);
  a.veth(b, ['10.9.0.1/24'], ['10.9.0.2/24']);
  const echo = b.background(`python3 ${ECHO} 10.9.0.2 7`);
  await waitLine(echo, /listening/, 'the kernel echo server');
  const kConn = a.background(`python3 ${CONN} 10.9.0.2 7 1048576 90`);
  const kernel = await attack(a, kConn, 'va', b.ok('cat /sys/class/net/vb/address').trim(), '10.9.0.1', '10.9.0.2', async () => b.kernelTcpCounters());

  console.log('| counter (attacked side) | tapstack | Linux |');
  console.log('| --- | ---: | ---: |');
  for (const k of WATCH) console.log(`| ${k} | ${stack.delta[k]} | ${kernel.delta[k]} |`);
  console.log(`sent: ${JSON.stringify(stack.sent)}; echoed before and after: tapstack ${stack.conn.echoed} B, Linux ${kernel.conn.echoed} B`);

  for (const [who, o] of [['tapstack', stack], ['Linux', kernel]] as const) {
    assert.equal(o.sent.rst + o.sent.syn + o.sent.data + o.sent.ack, COUNT, `${who}: the whole attack went out`);
    assert.equal(o.conn.error, null, `${who}: the connection survived the attack`);
    assert.equal(o.conn.mismatches, 0, `${who}: every echoed byte intact`);
    assert.equal(o.conn.echoed, 2 * 1048576, `${who}: the connection echoed before and after`);
  }
  const s = stack.delta;
  const sent = stack.sent;
  // What the stack answered is what it counted (the connection is idle, so all it sends are its
  // answers): a lost-ACK count needs a segment with data, a D-SACK a lost-ACK.
  assert.ok(s.DelayedACKLost <= sent.data && s.TCPDSACKOldSent <= s.DelayedACKLost && s.DelayedACKLost <= s.OutSegs, `answers counted as sent (${JSON.stringify(s)})`);
  // As on Linux (tcp_oow_rate_limited): an out-of-window segment with data is always answered,
  // the rest at most twice a second per socket (tcp_invalid_ratelimit, 500 ms).
  assert.ok(s.OutSegs <= sent.data + 2 * (SECONDS + 2), `answers rate-limited as Linux's (${JSON.stringify(s)})`);
  assert.ok(s.OutSegs >= sent.data, `every out-of-window data segment answered (${JSON.stringify(s)})`);
  assert.equal(s.TCPSYNChallenge, sent.syn, 'every SYN challenged');
  assert.ok(s.TCPACKSkippedSeq + s.TCPACKSkippedChallenge >= sent.syn + sent.ack - 4 * (SECONDS + 2), `bare ACKs and SYNs past the rate limit skipped (${JSON.stringify(s)})`);
  assert.equal(s.OutRsts, 0, 'no reset sent for the connection');
});
