#!/usr/bin/env python3
"""Receive datagrams on ADDR:PORT and count them: until EXPECT have come,
or none for IDLE seconds after the first (or TIMEOUT in all); RCVBUF, when
given and not 0, is set as SO_RCVBUF before the bind. With
CTLPORT, read nothing on PORT until a datagram comes to ADDR:CTLPORT (the
sender's cue that its burst is over): what the socket's buffer kept is
then all there is to read. Prints "listening" once bound, then JSON:
received, bytes, seconds (first to last datagram), cpu (this process's
user + system seconds). Used by `npm run bench` and the UDP loss test,
unmodified over the stack (`tapstack run`) and on the kernel."""
import json
import resource
import socket
import sys
import time

addr, port, expect = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idle = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
ctl = int(sys.argv[6]) if len(sys.argv) > 6 else 0
rcvbuf = int(sys.argv[7]) if len(sys.argv) > 7 else 0
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if rcvbuf:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
s.bind((addr, port))
c = None
if ctl:
    c = socket.socket(fam, socket.SOCK_DGRAM)
    c.bind((addr, ctl))
print("listening", flush=True)
start = time.monotonic()
if c:
    c.settimeout(timeout)
    c.recv(64)
buf = bytearray(65536)
got = nbytes = 0
first = last = 0.0
while got < expect:
    left = timeout - (time.monotonic() - start)
    if left <= 0:
        break
    s.settimeout(min(idle, left) if got else left)
    try:
        n = s.recv_into(buf)
    except socket.timeout:
        break
    last = time.monotonic()
    if not got:
        first = last
    got += 1
    nbytes += n
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"received": got, "bytes": nbytes, "seconds": last - first, "cpu": ru.ru_utime + ru.ru_stime}), flush=True)
