#!/usr/bin/env python3
"""Open N idle TCP connections to HOST:PORT, spread over the local
addresses given (one source address holds at most ~28 000 ephemeral ports),
print "held N" and keep them open until killed or SECONDS pass."""
import resource
import socket
import sys
import time

host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sources = sys.argv[5].split(",") if len(sys.argv) > 5 else [""]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 1024
try:
    # root may raise the hard limit too (up to fs.nr_open)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
except (ValueError, OSError):
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
held = []
deadline = time.monotonic() + secs
for i in range(n):
    if time.monotonic() > deadline:
        break
    s = socket.socket()
    s.bind((sources[i % len(sources)], 0))
    s.settimeout(10)
    s.connect((host, port))
    held.append(s)
print("held", len(held), flush=True)
time.sleep(max(0, deadline - time.monotonic()))
for s in held:
    s.close()
