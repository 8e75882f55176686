#!/usr/bin/env python3
"""One TCP connection to HOST:PORT (an echo server), checked byte for byte
before and after an attack on it: echoes BYTES in seeded 4 KiB chunks,
prints "port N idle" (its local port) and waits, idle, for SIGUSR1 (at most
SECONDS), then echoes BYTES more. Prints one JSON line: bytes echoed,
mismatches, and the error that ended it (null if none)."""
import json
import random
import signal
import socket
import sys

host, port, nbytes, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rng = random.Random(1)
echoed = mismatches = 0


def echo(s, n):
    global echoed, mismatches
    for _ in range(n // 4096):
        chunk = rng.randbytes(4096)
        s.sendall(chunk)
        got = b""
        while len(got) < len(chunk):
            d = s.recv(len(chunk) - len(got))
            if not d:
                raise ConnectionError("closed by the peer")
            got += d
        if got != chunk:
            mismatches += 1
        echoed += len(chunk)


signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
err = None
try:
    s = socket.create_connection((host, port), timeout=10)
    echo(s, nbytes)
    print("port", s.getsockname()[1], "idle", flush=True)
    if signal.sigtimedwait({signal.SIGUSR1}, secs) is None:
        raise TimeoutError("no SIGUSR1")
    echo(s, nbytes)
except OSError as e:
    err = f"{type(e).__name__}: {e}"
print(json.dumps({"echoed": echoed, "mismatches": mismatches, "error": err}), flush=True)
