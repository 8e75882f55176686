#!/usr/bin/env python3
"""Kernel-side TCP clients for the integration tests (run inside the test's
namespace). Every mode is bounded in time and prints one JSON line.

  echo HOST PORT BYTES TIMEOUT [CC]
                                 send BYTES of seeded random data through an
                                 echo server, read them back; sha256 of both;
                                 CC sets TCP_CONGESTION (this machine's default
                                 may be bbr; Linux's own default is cubic)
  conns HOST PORT N TIMEOUT      N concurrent connections, each sends a line
                                 and reads it back, then closes
"""
import hashlib
import json
import random
import selectors
import socket
import sys
import threading
import time


def echo(host, port, total, timeout, cc=None):
    rnd = random.Random(1234)
    block = bytes(rnd.getrandbits(8) for _ in range(1 << 16))
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if cc:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    s.settimeout(timeout)
    s.connect((host, port))
    sent_hash = hashlib.sha256()
    recv_hash = hashlib.sha256()
    got = [0]
    err = []

    def reader():
        try:
            while got[0] < total:
                d = s.recv(1 << 20)
                if not d:
                    break
                recv_hash.update(d)
                got[0] += len(d)
        except Exception as e:  # reported in the JSON
            err.append(repr(e))

    t = threading.Thread(target=reader)
    start = time.monotonic()
    t.start()
    left = total
    i = 0
    while left > 0:
        chunk = block[: min(left, len(block))]
        # Vary the data so a stuck or replayed block cannot pass for the right bytes.
        chunk = bytes([(i & 0xFF)]) + chunk[1:]
        s.sendall(chunk)
        sent_hash.update(chunk)
        left -= len(chunk)
        i += 1
    t.join(timeout)
    elapsed = time.monotonic() - start
    s.close()
    print(json.dumps({"sent": total, "received": got[0], "seconds": elapsed,
                      "sha_sent": sent_hash.hexdigest(), "sha_received": recv_hash.hexdigest(), "errors": err}))


def conns(host, port, n, timeout):
    sel = selectors.DefaultSelector()
    socks = []
    deadline = time.monotonic() + timeout
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE, {"i": i, "state": "connecting", "buf": b""})
    done = ok = failed = 0
    while done < n and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1):
            s, d = key.fileobj, key.data
            try:
                if d["state"] == "connecting":
                    e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if e:
                        raise OSError(e, "connect")
                    d["msg"] = ("hello %d\n" % d["i"]).encode()
                    s.send(d["msg"])
                    d["state"] = "reading"
                    sel.modify(s, selectors.EVENT_READ, d)
                else:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("eof before the echo")
                    d["buf"] += chunk
                    if len(d["buf"]) >= len(d["msg"]):
                        if d["buf"] == d["msg"]:
                            ok += 1
                        else:
                            failed += 1
                        done += 1
                        sel.unregister(s)
                        s.close()
            except OSError:
                failed += 1
                done += 1
                sel.unregister(s)
                s.close()
    print(json.dumps({"n": n, "ok": ok, "failed": failed, "unfinished": n - done}))


if __name__ == "__main__":
    mode, host, port, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    {"echo": echo, "conns": conns}[mode](host, port, count, timeout, *sys.argv[6:])
