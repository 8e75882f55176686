#!/usr/bin/env python3
"""1-byte request/response over one TCP connection to HOST:PORT (an echo
server) for SECONDS: send a byte, wait for it back, repeat. Prints JSON:
transactions, seconds. Both sides of every comparison use this same tool."""
import json
import socket
import sys
import time

host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
b = b"x"
n = 0
start = time.monotonic()
end = start + secs
while True:
    s.sendall(b)
    if not s.recv(1):
        break
    n += 1
    if (n & 63) == 0 and time.monotonic() >= end:
        break
elapsed = time.monotonic() - start
s.close()
print(json.dumps({"transactions": n, "seconds": elapsed}))
