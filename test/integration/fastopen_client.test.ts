/**
 * Fast Open's client side through the preload library (native/preload.c):
 * programs run over the stack with `tapstack run` against a Fast Open
 * server run by the host kernel in the namespace these tests create
 * (net.ipv4.tcp_fastopen=3 set in that namespace only). curl --tcp-fastopen
 * takes Linux's TCP_FASTOPEN_CONNECT path (setsockopt, then a connect()
 * that returns 0 and a first write that sends the SYN with the request);
 * a Python client takes the sendto(MSG_FASTOPEN) path. The first connection
 * to an address learns a cookie, the next sends its request in the SYN: the
 * stack's TCPFastOpenActive and the kernel's TCPFastOpenPassive (its
 * /proc/net/netstat in the namespace) both count it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, requireIntegration, type Daemon } from './netns.js';

// The library reads through rings by default: this pass is the socketpair's (the _rings file sets 1 first).
process.env.TAPSTACK_PRELOAD_RINGS ??= '0';

const skip = requireIntegration(['curl', 'python3']);

/** A kernel HTTP server with TCP_FASTOPEN on its listener: answers each request with "ok <bytes it read>". */
const SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, 23, 16)  # TCP_FASTOPEN: a queue of 16
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(10)
    req = b""
    while b"\\r\\n\\r\\n" not in req:
        d = c.recv(4096)
        if not d:
            break
        req += d
    body = ("ok %d" % len(req)).encode()
    c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s" % (len(body), body))
    c.close()
`;

/**
 * A client that opens its connection with sendto(MSG_FASTOPEN), blocking, or
 * (mode "connect") with TCP_FASTOPEN_CONNECT, connect() and send(MSG_FASTOPEN);
 * it prints the answer's last line. After a blocking sendto the socket is
 * connected as after connect(): a second connect() must say EISCONN.
 */
const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
req = b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
if len(sys.argv) > 3 and sys.argv[3] == "connect":
    s.setsockopt(socket.IPPROTO_TCP, 30, 1)  # TCP_FASTOPEN_CONNECT
    s.connect((sys.argv[1], int(sys.argv[2])))
    n = s.send(req, 0x20000000)  # MSG_FASTOPEN: the deferred connect's first send
else:
    n = s.sendto(req, 0x20000000, (sys.argv[1], int(sys.argv[2])))  # MSG_FASTOPEN
    # The blocking send connected the socket as connect() does: a second connect() says EISCONN.
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
        raise SystemExit("connect() after the Fast Open send succeeded")
    except OSError as e:
        assert e.errno == 106, e  # EISCONN
assert n == len(req), n
resp = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    resp += d
print(resp.decode().split("\\r\\n")[-1])
`;

let ns: Netns;
let daemon: Daemon;
let RUN: string;
let server: string;
let client: string;

before(async () => {
  if (skip) return;
  ns = new Netns('fo');
  const api = join(ns.dir, 'api.sock');
  // The kernel's Fast Open in this namespace only: client and server (3).
  ns.ok('sysctl -qw net.ipv4.tcp_fastopen=3');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api]);
  // A second kernel address: a destination the stack has no cookie for yet.
  ns.ok('ip addr add 10.0.0.3/24 dev tap0');
  RUN = `${process.execPath} ${CLI} run --api ${api} --`;
  server = join(ns.dir, 'fo_server.py');
  client = join(ns.dir, 'fo_client.py');
  writeFileSync(server, SERVER);
  writeFileSync(client, CLIENT);
  ns.background(`python3 ${server} 0.0.0.0 8000`);
  await ns.kernelListening(8000);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

const stackActive = async () => (await daemon.counters()).TcpExt.TCPFastOpenActive;
const kernelPassive = () => ns.kernelTcpCounters().TCPFastOpenPassive;

test('curl --tcp-fastopen over the stack: the first connection learns a cookie, the second sends its request in the SYN', { skip, timeout: 60_000 }, async () => {
  const active0 = await stackActive();
  const passive0 = kernelPassive();
  const reqd0 = ns.kernelTcpCounters().TCPFastOpenCookieReqd;
  const first = ns.ok(`timeout 20 ${RUN} curl -sS -m 10 --tcp-fastopen http://10.0.0.1:8000/`, 30_000);
  assert.match(first, /^ok \d+$/);
  // A cookie request, no data in the SYN.
  assert.equal(ns.kernelTcpCounters().TCPFastOpenCookieReqd, reqd0 + 1, 'the server saw a cookie request');
  assert.equal(kernelPassive(), passive0, 'no Fast Open yet');
  assert.equal(await stackActive(), active0);
  const second = ns.ok(`timeout 20 ${RUN} curl -sS -m 10 --tcp-fastopen http://10.0.0.1:8000/`, 30_000);
  assert.equal(second, first, 'the same request, answered the same');
  assert.equal(kernelPassive(), passive0 + 1, "the kernel accepted the SYN's data with our cookie");
  assert.ok((await stackActive()) >= active0 + 1, 'the stack counts its SYN data acked (TCPFastOpenActive)');
});

test('sendto(MSG_FASTOPEN) over the stack: a blocking client asks a new destination for a cookie, then sends in the SYN', { skip, timeout: 60_000 }, async () => {
  const active0 = await stackActive();
  const passive0 = kernelPassive();
  const first = ns.ok(`timeout 20 ${RUN} python3 ${client} 10.0.0.3 8000`, 30_000).trim();
  assert.match(first, /^ok \d+$/);
  assert.equal(kernelPassive(), passive0, 'the first SYN only asked for a cookie');
  const second = ns.ok(`timeout 20 ${RUN} python3 ${client} 10.0.0.3 8000`, 30_000).trim();
  assert.equal(second, first);
  assert.equal(kernelPassive(), passive0 + 1, 'the second request rode in the SYN');
  assert.ok((await stackActive()) >= active0 + 1);
});

test('TCP_FASTOPEN_CONNECT then send(MSG_FASTOPEN) over the stack: connect() returns at once, the send rides in the SYN', { skip, timeout: 60_000 }, async () => {
  const passive0 = kernelPassive();
  // 10.0.0.1's cookie is cached by the curl test.
  ns.ok(`timeout 20 ${RUN} curl -sS -m 10 --tcp-fastopen http://10.0.0.1:8000/`, 30_000);
  const mid = kernelPassive();
  assert.ok(mid > passive0, 'the cookie for 10.0.0.1 is cached');
  const out = ns.ok(`timeout 20 ${RUN} python3 ${client} 10.0.0.1 8000 connect`, 30_000).trim();
  assert.match(out, /^ok \d+$/);
  assert.equal(kernelPassive(), mid + 1);
});
