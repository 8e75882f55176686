/**
 * The socket rows of `tapstack ss` and the status page, from their one
 * builder: states as inet_diag reports them (a request sock as SYN-RECV, a
 * TIME_WAIT sock as its substate), the queues, and the page showing the
 * same rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, F, FAMILIES, S, familyName } from '../lib/tcp_harness.js';
import { tcpAccept, tcpClose, tcpRecvmsg, tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { inetDiagDump, type SockDiagRow } from '../../src/net/ipv4/inet_diag.js';
import { statusData } from '../../src/services/status.js';
import { formatAddr } from '../lib/frames.js';
import { AF_INET6 } from '../../src/uapi.js';

/** The row of the connection to the harness's peer. */
function rowOf(t: TcpHarness, rows: SockDiagRow[]): SockDiagRow | undefined {
  const peer = t.family === AF_INET6 ? `[${formatAddr(t.peerAddr)}]:${t.peerPort}` : `${formatAddr(t.peerAddr)}:${t.peerPort}`;
  return rows.find((r) => r.peer === peer && r.proto === undefined);
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: ss rows: SYN-RECV for a request, ESTABLISHED with its queues, FIN-WAIT-2 then TIME-WAIT for the timewait sock`, () => {
    const t = new TcpHarness(family);
    t.listen();
    t.send({ flags: S, seq: 0, options: [['mss', 1000]] });
    t.out();
    const dump = () => inetDiagDump(t.tcp, t.h.stack.udp, { owner: () => ({ pid: 42, fd: 3 }) }).rows;
    const req = rowOf(t, dump());
    assert.equal(req?.state, 'SYN-RECV', 'a request sock shows as SYN-RECV, not NEW-SYN-RECV');
    assert.equal(req?.owner, undefined, 'a request sock has no owner');
    const listener = dump().find((r) => r.state === 'LISTEN');
    assert.deepEqual([listener?.recvQ, listener?.sendQ], [0, t.listener!.maxAckBacklog], 'a listener: accept queue and backlog');

    t.send({ flags: A, seq: 1, ack: 1 });
    assert.equal(dump().find((r) => r.state === 'LISTEN')?.recvQ, 1, 'the child waits in the accept queue');
    const c = tcpAccept(t.tcp, t.listener!);
    assert.ok(typeof c !== 'number');
    t.sk = c;
    t.send({ flags: A, seq: 1, ack: 1, payload: Buffer.from('hello') });
    t.out();
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.from('abc')), 3);
    t.out();
    const est = rowOf(t, dump());
    assert.deepEqual([est?.state, est?.recvQ, est?.sendQ, est?.owner], ['ESTABLISHED', 5, 3, { pid: 42, fd: 3 }]);

    t.send({ flags: A, seq: 6, ack: 4 });
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, Buffer.alloc(16)), 5, 'read, so close sends FIN, not RST');
    tcpClose(t.tcp, t.sk!);
    t.out();
    t.send({ flags: A, seq: 6, ack: 5 });
    const fw2 = rowOf(t, dump());
    assert.equal(fw2?.state, 'FIN-WAIT-2', 'a timewait sock in FIN_WAIT2 shows its substate, as inet_diag does');
    assert.equal(fw2?.owner, undefined);
    assert.equal(rowOf(t, statusData(t.h.stack, []).sockets)?.state, 'FIN-WAIT-2', 'the status page shows the same row');

    t.send({ flags: F | A, seq: 6, ack: 5 });
    t.out();
    assert.equal(rowOf(t, dump())?.state, 'TIME-WAIT');
    assert.equal(rowOf(t, statusData(t.h.stack, []).sockets)?.state, 'TIME-WAIT');
  });
}
