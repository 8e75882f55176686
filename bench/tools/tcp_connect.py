#!/usr/bin/env python3
"""Handshake latency: connect to HOST:PORT and close, one after the other,
for SECONDS (at most COUNT times), each connect bounded by TIMEOUT seconds.
Prints JSON: n, fails, and the handshake times in ms (p50, p90, p99, max).
Both sides of the bench's SYN-flood comparison use this same tool.

  tcp_connect.py HOST PORT SECONDS COUNT TIMEOUT"""
import json
import socket
import sys
import time

host, port, secs, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
times = []
fails = 0
end = time.monotonic() + secs
while time.monotonic() < end and len(times) + fails < count:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    t = time.perf_counter()
    try:
        s.connect((host, port))
        times.append((time.perf_counter() - t) * 1000)
    except OSError:
        fails += 1
    finally:
        s.close()
times.sort()


def pct(p):
    return times[min(len(times) - 1, int(p * len(times)))] if times else None


print(json.dumps({"n": len(times), "fails": fails, "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": times[-1] if times else None}))
