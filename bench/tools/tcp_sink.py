#!/usr/bin/env python3
"""A discard server for the kernel-to-kernel baseline: accept connections on
ADDR:PORT, read to EOF, close. Runs until killed (the bench kills it)."""
import socket
import sys
import threading

addr, port = sys.argv[1], int(sys.argv[2])
ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(128)
print("listening", flush=True)


def serve(c):
    buf = bytearray(1 << 20)
    try:
        while c.recv_into(buf):
            pass
    finally:
        c.close()


while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
