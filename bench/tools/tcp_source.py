#!/usr/bin/env python3
"""Send N bytes over TCP to HOST:PORT as fast as the kernel allows, then
half-close and wait for the peer's EOF. Prints JSON: bytes, seconds.
Used by `npm run bench` for kernel->stack and kernel->kernel bulk runs."""
import json
import socket
import sys
import time

host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
chunk = memoryview(bytes(1 << 20))
s = socket.create_connection((host, port), timeout=timeout)
start = time.monotonic()
left = total
while left > 0:
    n = s.send(chunk[: min(left, len(chunk))])
    left -= n
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
elapsed = time.monotonic() - start
s.close()
print(json.dumps({"bytes": total, "seconds": elapsed}))
