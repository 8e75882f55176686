#!/usr/bin/env python3
"""The kernel-side UDP peer of test/integration/udp.test.ts (runs inside the test's namespace).

  udp_peer.py socat-echo HOST PORT COUNT WINDOW TIMEOUT [FAMILY]
      COUNT numbered datagrams to HOST:PORT (the stack's UDP echo) through socat:
      python <-> AF_UNIX datagram socket <-> socat UNIX-SENDTO ... UDP <-> the stack.
      At most WINDOW datagrams are outstanding, so no kernel socket buffer on
      the way can overflow; every reply is matched to what was sent. Prints one
      JSON line: sent, received, lost, bad, duplicates, seconds.
  udp_peer.py refused HOST PORT [FAMILY]
      A connected UDP socket sends to a closed port; prints the errno the next
      recv() raises (ECONNREFUSED from the ICMP port unreachable).
  udp_peer.py echo-server PORT COUNT TIMEOUT [FAMILY]
      Echo COUNT datagrams back to their senders, then print how many.
  udp_peer.py bcast-recv PORT TIMEOUT
      Wait for one datagram on 0.0.0.0:PORT; print its payload and source.
  udp_peer.py bcast-send ADDR PORT TEXT
      Send TEXT to ADDR:PORT with SO_BROADCAST.
"""
import errno
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time


def fam(name):
    return socket.AF_INET6 if name == '6' else socket.AF_INET


def socat_echo(host, port, count, window, timeout, family):
    d = tempfile.mkdtemp(prefix='udp-peer-')
    mine = os.path.join(d, 'py.sock')
    theirs = os.path.join(d, 'socat.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(mine)
    target = f'UDP6:[{host}]:{port}' if family == '6' else f'UDP4:{host}:{port}'
    proc = subprocess.Popen(['socat', '-b', '65536', f'UNIX-SENDTO:{mine},bind={theirs}', target],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # socat binds its socket once it runs; the bound only limits a failure.
        deadline = time.time() + 20
        while not os.path.exists(theirs):
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit('socat did not start: ' + (proc.stderr.read().decode() if proc.poll() is not None else 'timeout'))
            time.sleep(0.01)
        s.connect(theirs)
        s.setblocking(False)
        sent = received = bad = dup = 0
        seen = bytearray(count)
        start = time.time()
        idle_since = time.time()
        while received + bad < count:
            while sent < count and sent - received < window:
                body = b'%08d:' % sent + bytes((sent + i) & 0xff for i in range(sent % 200))
                try:
                    s.send(body)
                except BlockingIOError:
                    break
                sent += 1
            r, _, _ = select.select([s], [], [], 0.5)
            if not r:
                if time.time() - idle_since > timeout:
                    break  # what is missing now is lost
                continue
            while True:
                try:
                    m = s.recv(70000)
                except BlockingIOError:
                    break
                idle_since = time.time()
                try:
                    n = int(m[:8])
                    ok = m[8:9] == b':' and m[9:] == bytes((n + i) & 0xff for i in range(n % 200)) and 0 <= n < count
                except ValueError:
                    ok = False
                if not ok:
                    bad += 1
                elif seen[n]:
                    dup += 1
                else:
                    seen[n] = 1
                    received += 1
        secs = time.time() - start
        print(json.dumps({'sent': sent, 'received': received, 'lost': sent - received, 'bad': bad,
                          'duplicates': dup, 'seconds': round(secs, 3)}))
    finally:
        proc.kill()
        proc.wait()
        s.close()
        for p in (mine, theirs):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        os.rmdir(d)


def refused(host, port, family):
    s = socket.socket(fam(family), socket.SOCK_DGRAM)
    s.settimeout(20)  # the recv waits for the ICMP error; this only bounds its absence
    s.connect((host, port))
    s.send(b'anyone?')
    try:
        s.recv(100)
        print('no error')
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))


def echo_server(port, count, timeout, family):
    s = socket.socket(fam(family), socket.SOCK_DGRAM)
    s.bind(('::' if family == '6' else '0.0.0.0', port))
    s.settimeout(timeout)
    print('ready', flush=True)
    n = 0
    try:
        while n < count:
            m, peer = s.recvfrom(70000)
            s.sendto(m, peer)
            n += 1
    except socket.timeout:
        pass
    print(n, flush=True)


def bcast_recv(port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', port))
    s.settimeout(timeout)
    print('ready', flush=True)
    try:
        m, peer = s.recvfrom(70000)
        print(json.dumps({'text': m.decode(errors='replace'), 'from': peer[0], 'port': peer[1]}), flush=True)
    except socket.timeout:
        print(json.dumps({'timeout': True}), flush=True)


def bcast_send(addr, port, text):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.sendto(text.encode(), (addr, port))


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'socat-echo':
        socat_echo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7] if len(sys.argv) > 7 else '4')
    elif mode == 'refused':
        refused(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else '4')
    elif mode == 'echo-server':
        echo_server(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else '4')
    elif mode == 'bcast-recv':
        bcast_recv(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == 'bcast-send':
        bcast_send(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit('unknown mode ' + mode)
