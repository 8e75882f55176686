#!/usr/bin/env python3
"""One bulk flow for the lab's validation bench: wait DELAY seconds, connect
to HOST:PORT with congestion control CC, send as fast as the kernel allows
for SECONDS, sampling the socket's TCP_INFO every 50 ms. Prints JSON:
bytes acked, retransmissions, and the smoothed RTT samples (ms)."""
import json
import socket
import struct
import sys
import time

host, port, delay, seconds, cc = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
# The flow's scheduled start in the scenario (a start time, not a wait for an event): all the
# sources are launched together and each begins at its own offset, as in the lab.
time.sleep(delay)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
s.connect((host, port))
s.setblocking(False)
chunk = memoryview(bytes(1 << 16))
rtts = []
start = time.monotonic()
next_sample = start
import select
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    if now >= next_sample:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
        rtt_us = struct.unpack_from("I", info, 68)[0]
        if rtt_us:
            rtts.append(rtt_us / 1000)
        next_sample += 0.05
    _, w, _ = select.select([], [s], [], max(0.0, min(next_sample, start + seconds) - now))
    if w:
        try:
            s.send(chunk)
        except BlockingIOError:
            pass
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
total_retrans = struct.unpack_from("I", info, 100)[0]
bytes_acked = struct.unpack_from("Q", info, 120)[0]
s.close()
print(json.dumps({"bytes_acked": bytes_acked, "retrans": total_retrans, "rtt_ms": rtts}))
