/**
 * bind() and listen() against a port another socket holds, by Linux's rules
 * (inet_csk_get_port, inet_csk_bind_conflict, sk_reuseport_match, and
 * tcp_set_state's inet_put_port; the flags a child and its TIME_WAIT sock
 * take from the listener): two cases told step by step, then the
 * whole matrix of test/lib/bind_matrix.ts run on the stack on the virtual
 * clock, against what Linux 6.18 answered for the same sequences
 * (bind_matrix.linux.txt, recorded with test/integration/bind_matrix.py;
 * test/integration/bind_matrix.test.ts compares with the live kernel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Harness } from '../lib/harness.js';
import { PEER6, PEER_IP, STACK6, STACK_IP } from '../lib/frames.js';
import { A, F, FAMILIES, R, TcpHarness, familyName } from '../lib/tcp_harness.js';
import { bindMatrixCases, bindMatrixHelpers, formatMatrix, outcomeCode, parseMatrix, runBindCase, type BindOutcome, type MatrixAddrs } from '../lib/bind_matrix.js';
import { tcpBind, tcpClose, tcpConnect, tcpListen, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import { TCP_CLOSE, TCP_TIME_WAIT } from '../../src/net/core/sock.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET6, EADDRINUSE, EINPROGRESS, SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';

// dist/test/unit -> the source tree's test/unit.
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'unit', 'bind_matrix.linux.txt');
const HELPER_PORT = 19000;

/** bind(2) of the harness's wildcard address and port for a new socket (SO_REUSEADDR if `reuse`); 0 or -errno. */
function bindWild(t: TcpHarness, reuse: boolean): { sk: TcpSock; rc: number } {
  const sk = tcpNewSock(t.tcp, t.family);
  if (reuse) tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_REUSEADDR, 1);
  const rc = t.family === AF_INET6 ? tcpV6Bind(t.tcp, sk, new Uint8Array(16), t.localPort) : tcpBind(t.tcp, sk, 0, t.localPort);
  return { sk, rc };
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: a server restarting with SO_REUSEADDR while its connections are in TIME_WAIT binds and listens again`, () => {
    // The harness's listener sets SO_REUSEADDR; its accepted connection closes first.
    const t = TcpHarness.established(family);
    tcpClose(t.tcp, t.listener!);
    tcpClose(t.tcp, t.sk!);
    t.send({ flags: A, seq: 1, ack: 2 });
    t.send({ flags: F | A, seq: 1, ack: 2 });
    const tb = t.tcp.hashinfo.bhash.bucket(t.localPort);
    assert.ok(tb && tb.owners?.state === TCP_TIME_WAIT && tb.count === 1, 'only a TIME_WAIT sock holds the port');
    // As on Linux: the TIME_WAIT sock keeps the listener's SO_REUSEADDR (sk_clone_lock, inet_twsk_alloc).
    assert.equal(tb.owners.reuse, true);
    assert.equal(bindWild(t, false).rc, -EADDRINUSE, 'without SO_REUSEADDR the port is taken');
    const { sk, rc } = bindWild(t, true);
    assert.equal(rc, 0, 'with SO_REUSEADDR the new server binds');
    assert.equal(tcpListen(t.tcp, sk, 8), 0, 'and listens');
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: a connection reset while its socket is open frees the port connect() chose at once, a port bind() named only at close()`, () => {
    const t = new TcpHarness(family);
    const refused = (named: number): TcpSock => {
      const sk = tcpNewSock(t.tcp, family);
      if (named) assert.equal(family === AF_INET6 ? tcpV6Bind(t.tcp, sk, new Uint8Array(16), named) : tcpBind(t.tcp, sk, 0, named), 0);
      const rc = family === AF_INET6 ? tcpV6Connect(t.tcp, sk, PEER6, t.peerPort) : tcpConnect(t.tcp, sk, PEER_IP, t.peerPort);
      assert.equal(rc, -EINPROGRESS);
      t.localPort = sk.num;
      assert.equal(t.out()[0].flags, 'S');
      t.send({ flags: R | A, seq: 0, ack: 1 });
      assert.equal(sk.state, TCP_CLOSE, 'refused');
      return sk;
    };
    // tcp_set_state(TCP_CLOSE) puts the port back (inet_put_port) unless bind() named it (SOCK_BINDPORT_LOCK).
    refused(0);
    const other = bindWild(t, false);
    assert.equal(other.rc, 0, 'the port connect() chose is free while the refused socket is still open');
    tcpClose(t.tcp, other.sk);
    const sk = refused(40000);
    assert.equal(bindWild(t, false).rc, -EADDRINUSE, 'a named port stays held by the closed socket');
    tcpClose(t.tcp, sk);
    assert.equal(bindWild(t, false).rc, 0, 'until close()');
  });
}

/** A dual-stack harness with a second IPv4 address (v4b), and the matrix run on it. */
async function runMatrixOnStack(): Promise<{ cases: ReturnType<typeof bindMatrixCases>; outcomes: Map<string, BindOutcome> }> {
  const h = Harness.withPeer(AF_INET6);
  const a: MatrixAddrs = { v4a: STACK_IP, v4b: STACK_IP + 1, v6: STACK6 };
  h.stack.fib.addAddress(a.v4b, 24);
  const helpers = bindMatrixHelpers(h.stack, a, HELPER_PORT);
  const cases = bindMatrixCases(20000);
  const outcomes = new Map<string, BindOutcome>();
  for (const c of cases) outcomes.set(c.id, await runBindCase(h.stack, a, helpers, c, HELPER_PORT));
  return { cases, outcomes };
}

test('bind and listen on a held port: every case of the matrix as Linux answers it', async () => {
  const { cases, outcomes } = await runMatrixOnStack();
  if (process.env.BIND_MATRIX_PRINT) process.stdout.write(formatMatrix(cases, outcomes));
  const linux = parseMatrix(readFileSync(FIXTURE, 'utf8'), cases);
  assert.equal(linux.size, cases.length, 'the recorded matrix covers every case');
  const wrong: string[] = [];
  for (const c of cases) {
    const got = outcomeCode(outcomes.get(c.id)!);
    if (got !== linux.get(c.id)) wrong.push(`${c.id}: Linux ${linux.get(c.id)}, stack ${got}`);
  }
  assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} cases differ (O: bind and listen work, L: listen EADDRINUSE, B: bind EADDRINUSE)`);
});
