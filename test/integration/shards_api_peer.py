#!/usr/bin/env python3
"""Kernel-side clients for shards_api.test.ts, run inside the test's namespace.

  shards_api_peer.py clients ADDR PORT N SIZE   N connections (8 at a time), each sends SIZE
                                                random bytes, reads them back (an echo server),
                                                and closes; prints {"ok": n, "ts": k} where k
                                                connections agreed to TCP timestamps

Bounded: every socket has a 10 s timeout.
"""
import json, os, socket, sys, threading

TCPI_OPT_TIMESTAMPS = 1


def one(addr, port, size, res, lock):
    try:
        s = socket.create_connection((addr, port), timeout=10)
        data = os.urandom(size)
        s.sendall(data)
        got = b''
        while len(got) < size:
            d = s.recv(65536)
            if not d:
                break
            got += d
        ts = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5] & TCPI_OPT_TIMESTAMPS
        s.close()
        with lock:
            if got == data:
                res['ok'] += 1
            if ts:
                res['ts'] += 1
    except OSError as e:
        with lock:
            res['errors'].append(str(e))


def clients(addr, port, n, size):
    res = {'ok': 0, 'ts': 0, 'errors': []}
    lock = threading.Lock()
    for base in range(0, n, 8):
        ts = [threading.Thread(target=one, args=(addr, port, size, res, lock)) for _ in range(min(8, n - base))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    res['errors'] = res['errors'][:5]
    print(json.dumps(res), flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'clients':
        clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(f'unknown mode {sys.argv[1]}')
