/**
 * bind() and listen() against a port another socket holds, by Linux's rules
 * (inet_csk_get_port, inet_csk_bind_conflict, tcp_set_state's inet_put_port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PEER6, PEER_IP } from '../lib/frames.js';
import { A, FAMILIES, R, TcpHarness, familyName } from '../lib/tcp_harness.js';
import { tcpBind, tcpClose, tcpConnect, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import { TCP_CLOSE } from '../../src/net/core/sock.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET6, EADDRINUSE, EINPROGRESS, SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';

/** bind(2) of the harness's wildcard address and port for a new socket (SO_REUSEADDR if `reuse`); 0 or -errno. */
function bindWild(t: TcpHarness, reuse: boolean): { sk: TcpSock; rc: number } {
  const sk = tcpNewSock(t.tcp, t.family);
  if (reuse) tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_REUSEADDR, 1);
  const rc = t.family === AF_INET6 ? tcpV6Bind(t.tcp, sk, new Uint8Array(16), t.localPort) : tcpBind(t.tcp, sk, 0, t.localPort);
  return { sk, rc };
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
