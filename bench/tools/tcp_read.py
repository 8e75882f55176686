#!/usr/bin/env python3
"""Connect to HOST:PORT and read to EOF. Prints JSON: bytes, seconds.
Used by `npm run bench` for stack->kernel runs from a plain TCP source."""
import json
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
s = socket.create_connection((host, port), timeout=timeout)
buf = bytearray(1 << 20)
start = time.monotonic()
total = 0
while True:
    n = s.recv_into(buf)
    if not n:
        break
    total += n
elapsed = time.monotonic() - start
s.close()
print(json.dumps({"bytes": total, "seconds": elapsed}))
