import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ssHeader, ssLine, ssWidths } from '../../src/cli/ss.js';
import type { SocketRow } from '../../src/client/index.js';

const rows: SocketRow[] = [
  { state: 'LISTEN', local: '0.0.0.0:80', peer: '0.0.0.0:*', recvQ: 0, sendQ: 128 },
  { state: 'ESTAB', local: '10.0.0.2:80', peer: '10.0.0.1:41234', recvQ: 0, sendQ: 1234567890, owner: { pid: 42, fd: 7 } },
  { proto: 'udp', state: 'UNCONN', local: '[fd00::2]:5353', peer: '[::]:*', recvQ: 123456789, sendQ: 0 },
  { state: 'ESTAB', local: '[fd00:1234:5678:9abc:def0:1234:5678:9abc]:8080', peer: '[fd00::1]:50000', recvQ: 1, sendQ: 0 },
];

test('ss: every column starts where its header does, however large the queues and however long the addresses', () => {
  const w = ssWidths(rows);
  const lines = [ssHeader(w), ...rows.map((r) => ssLine(r, false, w))];
  const head = lines[0];
  // The right-aligned queues end where their headers end; the addresses start where theirs start.
  const rqEnd = head.indexOf('Recv-Q') + 'Recv-Q'.length;
  const sqEnd = head.indexOf('Send-Q') + 'Send-Q'.length;
  const local = head.indexOf('Local Address:Port');
  const peer = head.indexOf('Peer Address:Port');
  const proc = head.indexOf('Process');
  for (const [i, r] of rows.entries()) {
    const l = lines[i + 1];
    assert.equal(l.slice(0, rqEnd).trimEnd().endsWith(String(r.recvQ)), true, `Recv-Q of row ${i}: ${l}`);
    assert.equal(l[rqEnd], ' ', `Recv-Q of row ${i} ends at the header's end: ${l}`);
    assert.equal(l.slice(0, sqEnd).endsWith(String(r.sendQ)), true, `Send-Q of row ${i}: ${l}`);
    assert.equal(l.slice(local, local + r.local.length), r.local, `local address of row ${i}: ${l}`);
    assert.equal(l.slice(peer, peer + r.peer.length), r.peer, `peer address of row ${i}: ${l}`);
    if (r.owner) assert.equal(l.slice(proc), `pid=${r.owner.pid},fd=${r.owner.fd}`);
  }
});
