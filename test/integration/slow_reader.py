#!/usr/bin/env python3
"""A kernel-side server that reads nothing until told, for the shutdown grace tests.

  slow_reader.py ADDR PORT SECONDS

Listens with the smallest receive buffer (so the sender's data waits in its
own send queue, behind a closed window), prints {"listening": PORT}, accepts
one connection and prints {"accepted": 1}; on SIGUSR1 reads until EOF and
prints {"bytes": N, "sha256": HEX, "eof": true}. Bounded by SECONDS: then
prints what it has with "eof": false.
"""
import hashlib, json, signal, socket, sys, time

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + secs
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
l.bind((addr, port))
l.listen(1)
print(json.dumps({'listening': port}), flush=True)
l.settimeout(secs)
c, _ = l.accept()
print(json.dumps({'accepted': 1}), flush=True)
signal.sigtimedwait({signal.SIGUSR1}, max(0, end - time.time()))
h = hashlib.sha256()
n = 0
eof = False
while time.time() < end:
    c.settimeout(max(0.01, end - time.time()))
    try:
        b = c.recv(65536)
    except (socket.timeout, OSError):
        break
    if not b:
        eof = True
        break
    h.update(b)
    n += len(b)
print(json.dumps({'bytes': n, 'sha256': h.hexdigest(), 'eof': eof}), flush=True)
