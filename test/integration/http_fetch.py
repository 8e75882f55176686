"""Fetch /bytes/1000 from the stack's built-in HTTP server N times, each on a
new connection (Connection: close), CONC at a time, over the addresses given
in turn. Prints one JSON line: how many answered 200 with the whole body, and
how many of the connections had TCP timestamps (tcp_info's options).

Usage: http_fetch.py PORT N CONC ADDR [ADDR...]
"""
import json
import socket
import struct
import sys
from concurrent.futures import ThreadPoolExecutor

TCPI_OPT_TIMESTAMPS = 1
port, n, conc = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
addrs = sys.argv[4:]


def one(i):
    host = addrs[i % len(addrs)]
    s = socket.create_connection((host, port), timeout=15)
    options = struct.unpack('B', s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5:6])[0]
    s.sendall(b'GET /bytes/1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    data = b''
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return head.startswith(b'HTTP/1.1 200') and len(body) == 1000, bool(options & TCPI_OPT_TIMESTAMPS)


with ThreadPoolExecutor(conc) as ex:
    results = list(ex.map(one, range(n)))
print(json.dumps({'total': n, 'ok': sum(1 for r in results if r[0]), 'ts': sum(1 for r in results if r[1])}))
