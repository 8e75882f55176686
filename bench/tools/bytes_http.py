#!/usr/bin/env python3
"""The kernel-to-kernel baseline of tapstack's GET /bytes/N: a minimal
HTTP/1.1 server on ADDR:PORT that answers GET /bytes/N with N bytes.
Runs until killed (the bench kills it).

  bytes_http.py ADDR PORT [CC]

CC sets the congestion control per socket (TCP_CONGESTION, inherited by
accepted sockets), so the kernel baseline runs the algorithm tapstack runs
even where the namespace's default (often bbr) cannot be changed."""
import socket
import sys
import threading

addr, port = sys.argv[1], int(sys.argv[2])
ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if len(sys.argv) > 3:
    ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[3].encode())
ls.bind((addr, port))
ls.listen(128)
print("listening", flush=True)
block = memoryview(bytes(1 << 20))


def serve(c):
    try:
        req = b""
        while b"\r\n\r\n" not in req:
            d = c.recv(4096)
            if not d:
                return
            req += d
        path = req.split(b" ")[1].decode()
        n = int(path.rsplit("/", 1)[1]) if path.startswith("/bytes/") else 0
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
        while n > 0:
            k = c.send(block[: min(n, len(block))])
            n -= k
    finally:
        c.close()


while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
