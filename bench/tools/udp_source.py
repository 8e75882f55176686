#!/usr/bin/env python3
"""Send COUNT datagrams of SIZE bytes to HOST:PORT at RATE Mbit/s (of
payload), paced in small steps, bounded by TIMEOUT seconds. With CTLPORT,
one more datagram goes to HOST:CTLPORT after the last (the receiver's cue
that the burst is over). Prints JSON: sent, seconds, errors (sends the
kernel refused, e.g. ENOBUFS). Used by `npm run bench` and the UDP loss
test, the same program against the stack and against the kernel."""
import json
import socket
import sys
import time

host, port, count, size, mbps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 60.0
ctl = int(sys.argv[7]) if len(sys.argv) > 7 else 0
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
payload = bytearray(size)
pps = mbps * 1e6 / 8 / size
sent = errors = 0
start = time.monotonic()
while sent + errors < count:
    now = time.monotonic()
    if now - start > timeout:
        break
    # The datagrams due by now, at most a few at once: a steady rate, not bursts.
    due = min(int((now - start) * pps) + 1, count) - sent - errors
    if due <= 0:
        time.sleep(min(0.0002, (sent + errors + 1) / pps - (now - start)))
        continue
    for _ in range(min(due, 8)):
        payload[0:4] = (sent + errors).to_bytes(4, "big")
        try:
            s.send(payload)
            sent += 1
        except OSError:
            errors += 1
elapsed = time.monotonic() - start
if ctl:
    s.sendto(b"end", (host, ctl))
print(json.dumps({"sent": sent, "errors": errors, "seconds": elapsed}), flush=True)
