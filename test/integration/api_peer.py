#!/usr/bin/env python3
"""Kernel-side peers for the API tests, run inside the test's namespace.

  api_peer.py echo ADDR PORT SECONDS          echo every connection until SECONDS pass
  api_peer.py hold ADDR PORT N SECONDS        accept N connections, say nothing until SIGUSR1,
                                              then send one byte on each
  api_peer.py rst ADDR PORT SECONDS           accept one connection and reset it (SO_LINGER 0)
                                              on SIGUSR1
  api_peer.py source ADDR PORT SECONDS        send zeros on every connection until it closes
                                              or SECONDS pass

Every mode prints {"listening": PORT} once its socket listens (the test waits
for that line, not for a guessed time), is bounded by SECONDS and prints one
JSON line at the end.
"""
import json, os, selectors, signal, socket, struct, sys, threading, time

# The test says "go" with SIGUSR1: blocked from the start, so one sent early waits for go().
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


def go(end):
    """Wait for the test's SIGUSR1, at most until `end`."""
    signal.sigtimedwait({signal.SIGUSR1}, max(0, end - time.time()))


def listener(addr, port):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port))
    l.listen(4096)
    print(json.dumps({'listening': port}), flush=True)
    return l


def echo(addr, port, secs):
    l = listener(addr, port)
    l.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(l, selectors.EVENT_READ)
    conns = 0
    end = time.time() + secs
    while time.time() < end:
        for key, _ in sel.select(0.2):
            if key.fileobj is l:
                try:
                    c, _ = l.accept()
                except BlockingIOError:
                    continue
                c.setblocking(True)
                c.settimeout(5)
                sel.register(c, selectors.EVENT_READ)
                conns += 1
                continue
            c = key.fileobj
            try:
                d = c.recv(65536)
            except OSError:
                d = b''
            if not d:
                sel.unregister(c)
                c.close()
                continue
            c.sendall(d)
    print(json.dumps({'connections': conns}), flush=True)


def hold(addr, port, n, secs):
    l = listener(addr, port)
    l.settimeout(secs)
    held = []
    end = time.time() + secs
    while len(held) < n and time.time() < end:
        c, _ = l.accept()
        held.append(c)
    print(json.dumps({'accepted': len(held)}), flush=True)
    go(end)
    for c in held:
        c.sendall(b'x')
    time.sleep(min(5, max(0, end - time.time())))
    for c in held:
        c.close()


def rst(addr, port, secs):
    l = listener(addr, port)
    l.settimeout(secs)
    c, _ = l.accept()
    # The test says when: after its side has seen the connection established.
    go(time.time() + secs)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()
    print(json.dumps({'reset': 1}), flush=True)


def source(addr, port, secs):
    l = listener(addr, port)
    end = time.time() + secs
    l.settimeout(0.2)
    block = b'\0' * 65536
    count = [0]

    def pour(c):
        c.settimeout(1)
        try:
            while time.time() < end:
                try:
                    c.sendall(block)
                except socket.timeout:
                    continue
        except OSError:
            pass
        c.close()

    while time.time() < end:
        try:
            c, _ = l.accept()
        except socket.timeout:
            continue
        count[0] += 1
        threading.Thread(target=pour, args=(c,), daemon=True).start()
    print(json.dumps({'connections': count[0]}), flush=True)


mode = sys.argv[1]
if mode == 'echo':
    echo(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
elif mode == 'hold':
    hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
elif mode == 'rst':
    rst(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
elif mode == 'source':
    source(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
else:
    sys.exit('unknown mode ' + mode)
