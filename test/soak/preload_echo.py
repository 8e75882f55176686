#!/usr/bin/env python3
"""The soak's unmodified program: plain blocking sockets, run by main.ts
with the LD_PRELOAD library inside the soak's namespace, so its sockets
are the stack's. It talks to the kernel side's echo server, over IPv4 and
IPv6 in turn: a connection sends CONN_BYTES of seeded random data in
chunks, reads each chunk back, checks it and closes; then the next.

    preload_echo.py HOST4 HOST6 PORT SEED UNTIL

UNTIL is the time to stop, in seconds since the epoch (the soak's end for every flow).

Prints one JSON line of totals a second and a last one with "final": true
(bytes counted both ways, connections, mismatched bytes, errors).
"""
import json
import random
import socket
import sys
import time

host4, host6, port, seed, until = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
CONN_BYTES = 1 << 20
rng = random.Random(seed)
stats = {"bytes": 0, "ops": 0, "mismatches": 0, "errors": 0, "lastError": None, "firstMismatch": None}
last_report = 0.0


def report(final=False):
    global last_report
    last_report = time.time()
    sys.stdout.write(json.dumps({"final": final, "flows": {"preload": stats}}) + "\n")
    sys.stdout.flush()


def recv_exact(s, n):
    parts = []
    while n:
        b = s.recv(min(n, 65536))
        if not b:
            raise ConnectionError("echo closed early")
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


conn = 0
while time.time() < until:
    family, host = (socket.AF_INET, host4) if conn % 2 == 0 else (socket.AF_INET6, host6)
    conn += 1
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(15)
            s.connect((host, port))
            sent = 0
            while sent < CONN_BYTES and time.time() < until:
                n = rng.randint(1, 32768)
                chunk = rng.randbytes(n)
                s.sendall(chunk)
                back = recv_exact(s, n)
                if back != chunk:
                    bad = sum(1 for x, y in zip(back, chunk) if x != y)
                    stats["mismatches"] += bad
                    if stats["firstMismatch"] is None:
                        stats["firstMismatch"] = "connection %d, at %d: %d bytes differ" % (conn, sent, bad)
                sent += n
                stats["bytes"] += 2 * n
                if time.time() - last_report >= 1:
                    report()
            s.shutdown(socket.SHUT_WR)
            if s.recv(1) != b"":
                raise ConnectionError("echo sent more than it was sent")
        stats["ops"] += 1
    except (OSError, ConnectionError) as e:
        if time.time() < until:
            stats["errors"] += 1
            stats["lastError"] = repr(e)
            time.sleep(0.2)
    if time.time() - last_report >= 1:
        report()
report(True)
