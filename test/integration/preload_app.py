"""Programs the preload integration tests run through `tapstack run`
(test/integration/preload.test.ts): each prints one JSON line of what it saw.

  asyncio-server PORT           an asyncio (epoll selector) HTTP/1.0 server: the listener's readiness
  errors HOST                   errno of the calls Linux fails, as Python reports them
  udp HOST PORT                 sendto/recvfrom against a kernel peer, ECONNREFUSED on a connected socket
  fork HOST PORT1 PORT2         what a forked child can do with an inherited socket and its own new one
  forking-server PORT           socketserver.ForkingTCPServer: the parent closes each connection after forking
  accept-queue PORT N FIFO      accept through the preload's queue: a burst of N connections per phase (a line on
                                FIFO says they are all established), the listener's readiness, accept4's flags
                                per connection; then a listener closed, and a process exiting, with some queued
  prefork PORT K                K forked children accept on the parent's listener (blocking accept, poll inside)
  kclients HOST PORT N          (on the kernel) N connections that each send 'x', then how each ended
  errqueue HOST TCPPORT UDPPORT recvmsg(MSG_ERRQUEUE): MSG_ZEROCOPY completions (TCP, UDP), an ICMP error under
                                IP_RECVERR; IP_PKTINFO from an echo peer at UDPPORT+1
  bulk HOST PORT N MODE         N bytes each way at once with a bulk-peer, MODE `selectors` (non-blocking, epoll) or
                                `timeout` (settimeout: a sender thread, MSG_PEEK and MSG_WAITALL first); the sha256s
  bulk-peer PORT N              (on the kernel) per connection: N bytes sent while N are read; the sha256s
  handoff HOST PORT N HOW       read 6 of the N bytes a peer sends, wait until the rest is in, then read it through
                                what the ring is taken back for (HOW: `fork`, a child reads; `fdopen`, libc stdio;
                                `execv`, this process execs `drain`; `subprocess`, a child given the socket
                                with pass_fds; `posix_spawn`, a child given it as its stdin by a dup2 file action)
  drain FD HEAD                 read FD to its end, write the count back on it; one JSON line with HEAD (what was
                                read before), the sha256, the count
"""
import asyncio
import errno
import hashlib
import selectors
import threading
import json
import os
import select
import socket
import socketserver
import struct
import subprocess
import sys


def name(e):
    return errno.errorcode.get(e.errno, str(e))


def attempt(fn):
    try:
        r = fn()
        return 'ok' if r is None else r
    except OSError as e:
        return name(e)


def asyncio_server(port):
    async def handle(r, w):
        await r.readuntil(b'\r\n\r\n')
        body = json.dumps({'peer': w.get_extra_info('peername')[0], 'sock': w.get_extra_info('sockname')[0]}).encode()
        w.write(b'HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        await w.drain()
        w.close()

    async def main():
        srv = await asyncio.start_server(handle, '0.0.0.0', port)
        print(json.dumps({'listening': srv.sockets[0].getsockname()}), flush=True)
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def errors(host):
    out = {}
    s = socket.socket()
    out['connect_closed_port'] = attempt(lambda: s.connect((host, 9)))
    a = socket.socket()
    a.bind(('0.0.0.0', 7300))
    a.listen()
    out['bind_used_port'] = attempt(lambda: socket.socket().bind(('0.0.0.0', 7300)))
    out['bind_foreign_addr'] = attempt(lambda: socket.socket().bind(('10.9.9.9', 0)))
    out['getpeername_unconnected'] = attempt(lambda: socket.socket().getpeername())
    out['shutdown_unconnected'] = attempt(lambda: socket.socket().shutdown(socket.SHUT_WR))
    out['setsockopt_unknown'] = attempt(lambda: socket.socket().setsockopt(socket.SOL_SOCKET, 12345, 1))
    a.setblocking(False)
    out['accept_empty_nonblocking'] = attempt(lambda: a.accept())
    out['listener_readable_idle'] = bool(select.select([a], [], [], 0.2)[0])
    out['listener_writable'] = bool(select.select([], [a], [], 0)[1])
    out['recv_on_listener'] = attempt(lambda: a.recv(1))
    c = socket.socket()
    c.setblocking(False)
    out['nonblocking_connect'] = errno.errorcode.get(c.connect_ex((host, 9)), 'ok')
    w = select.select([], [c], [], 5)[1]
    out['nonblocking_connect_writable'] = bool(w)
    out['so_error'] = errno.errorcode.get(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 0)
    out['so_type'] = a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
    out['so_acceptconn'] = a.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    f = socket.socket(fileno=os.dup(a.fileno()))  # a socket by number: SO_DOMAIN, SO_TYPE, SO_PROTOCOL on the dup
    out['fromfd'] = [f.family == socket.AF_INET, f.proto, f.getsockname()[1]]
    out['v6_dual_stack_closed_port'] = attempt(lambda: socket.socket(socket.AF_INET6).connect(('::ffff:' + host, 9)))
    print(json.dumps(out))


def udp(host, port):
    out = {}
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b'ping', (host, port))
    data, src = u.recvfrom(100)
    out['reply'] = data.decode()
    out['from'] = list(src)
    out['sockname'] = u.getsockname()[0]
    u.sendto(b'x' * 3000, (host, port))
    data, src = u.recvfrom(4000)
    out['big_reply_len'] = len(data)
    out['emsgsize'] = attempt(lambda: u.sendto(b'x' * 70000, (host, port)))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.connect((host, port + 1))  # nobody there: ICMP port unreachable
    c.send(b'anyone?')
    out['connected_closed_port'] = attempt(lambda: c.recv(100))
    out['peer'] = list(c.getpeername())
    print(json.dumps(out))


def fork(host, port1, port2):
    s = socket.create_connection((host, port1), timeout=10)
    s.sendall(b'parent-before\n')
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = {
            'inherited_write': attempt(lambda: s.sendall(b'child-inherited\n')),
            'inherited_getsockname': attempt(lambda: s.getsockname()),
        }

        def own():
            c = socket.create_connection((host, port2), timeout=10)
            c.sendall(b'child-own\n')
            c.close()

        out['own_socket'] = attempt(own)
        out['inherited_close'] = attempt(lambda: s.close())
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = json.loads(os.read(r, 4096))
    s.sendall(b'parent-after\n')
    print(json.dumps({'child': child, 'parent_sockname': s.getsockname()[0]}))
    s.close()


def forking_server(port):
    class Upper(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline()
            self.wfile.write(b'%d:' % os.getpid() + line.upper())

    with socketserver.ForkingTCPServer(('0.0.0.0', port), Upper) as srv:
        print(json.dumps({'listening': port, 'pid': os.getpid()}), flush=True)
        srv.serve_forever()


def churn(n):
    """Open and bind n sockets, close them all, then bind one of their ports again: the closes
    (sent without waiting for their replies) must all have reached the daemon, in order, and the
    calls after them must still get their own replies."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(('10.0.0.2', 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    # Each port is free again only if its close reached the daemon first (no SO_REUSEADDR).
    again = []
    for p in ports:
        s = socket.socket()
        s.bind(('10.0.0.2', p))
        again.append(s)
    rebound = sum(1 for s, p in zip(again, ports) if s.getsockname()[1] == p)
    for s in again:
        s.close()
    print(json.dumps({'closed': n, 'rebound': rebound, 'distinct': len(set(ports))}), flush=True)


SO_ZEROCOPY = 60
MSG_ZEROCOPY = 0x4000000
IP_RECVERR = 11
IP_PKTINFO = 8


def extended_err(anc):
    """The one IP_RECVERR control message of an error-queue read: its level, type and sock_extended_err."""
    assert len(anc) == 1, anc
    level, typ, data = anc[0]
    eno, origin, etype, code, _pad, info, edata = struct.unpack_from('=IBBBBII', data)
    return {'level': level, 'type': typ, 'errno': errno.errorcode.get(eno, eno), 'origin': origin, 'ee_type': etype, 'code': code,
            'info': info, 'data': edata, 'offender': socket.inet_ntoa(data[20:24]) if struct.unpack_from('=H', data, 16)[0] == socket.AF_INET else None}


def errqueue_wait(s, n=64):
    """recvmsg(MSG_ERRQUEUE) once the ICMP error is in (bounded). The descriptor cannot raise POLLERR, but the
    socket's pending error comes down it in-band, so it turns readable: that is the event waited for."""
    r, _, _ = select.select([s], [], [], 5)
    if not r:
        raise TimeoutError('no ICMP error within 5 s')
    return s.recvmsg(n, 1024, socket.MSG_ERRQUEUE)


def errqueue(host, tcp_port, udp_port):
    out = {}
    t = socket.create_connection((host, tcp_port))
    t.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
    out['so_zerocopy'] = t.getsockopt(socket.SOL_SOCKET, SO_ZEROCOPY)
    out['tcp_empty'] = attempt(lambda: t.recvmsg(0, 1024, socket.MSG_ERRQUEUE))
    for _ in range(3):
        t.send(b'z' * 1000, MSG_ZEROCOPY)
    data, anc, flags, _ = t.recvmsg(0, 1024, socket.MSG_ERRQUEUE)
    out['tcp_zerocopy'] = dict(extended_err(anc), len=len(data), flags=flags)
    t.close()

    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
    u.sendto(b'zc', MSG_ZEROCOPY, (host, udp_port))
    data, anc, flags, _ = u.recvmsg(0, 1024, socket.MSG_ERRQUEUE)
    out['udp_zerocopy'] = dict(extended_err(anc), len=len(data), flags=flags)
    # Another socket for the ICMP error: the first one's datagram draws one too, after its own IP_RECVERR would be set.
    e = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    e.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
    e.sendto(b'hello', (host, udp_port))
    data, anc, flags, addr = errqueue_wait(e)
    out['udp_icmp'] = dict(extended_err(anc), payload=data.decode(), flags=flags, addr=list(addr))
    out['so_error_after'] = e.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    # IP_PKTINFO: the datagram's in_pktinfo rides on the descriptor; the payload stays whole.
    p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    p.setsockopt(socket.SOL_IP, IP_PKTINFO, 1)
    p.sendto(b'echo-me', (host, udp_port + 1))
    data, anc, flags, addr = p.recvmsg(100, 1024)
    ifindex, spec_dst, dst = struct.unpack('=I4s4s', anc[0][2])
    out['pktinfo'] = {'data': data.decode(), 'cmsgs': [[a[0], a[1]] for a in anc], 'ifindex': ifindex,
                      'spec_dst': socket.inet_ntoa(spec_dst), 'addr': socket.inet_ntoa(dst), 'flags': flags}
    _, anc, flags, _ = (p.sendto(b'x', (host, udp_port + 1)), *p.recvmsg(100, 0))[1:]
    out['pktinfo_no_room'] = {'cmsgs': len(anc), 'ctrunc': bool(flags & socket.MSG_CTRUNC)}
    print(json.dumps(out), flush=True)


def accept_queue(port, n, fifo):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.accept4.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    SOCK_NONBLOCK, SOCK_CLOEXEC = 0o4000, 0o2000000

    def readable(s):
        return bool(select.select([s], [], [], 0)[0])

    def go():
        with open(fifo) as f:
            f.readline()

    out = {}
    # A: every connection of a burst accepted, the listener readable exactly while one is left.
    a = socket.socket()
    a.bind(('0.0.0.0', port))
    a.listen(64)
    a.setblocking(False)
    out['idle'] = {'readable': readable(a), 'accept': attempt(lambda: a.accept())}
    print(json.dumps({'listening': port}), flush=True)
    go()
    steps, conns = [], []
    for i in range(n + 1):
        r = readable(a)
        if i % 2:
            # accept4 itself, with SOCK_NONBLOCK and without SOCK_CLOEXEC.
            fd = libc.accept4(a.fileno(), None, None, SOCK_NONBLOCK)
            if fd < 0:
                steps.append([r, errno.errorcode[ctypes.get_errno()]])
                continue
            c = socket.socket(fileno=fd)
            want = {'blocking': False, 'inheritable': True}
        else:
            try:
                c, _ = a.accept()  # accept4(SOCK_CLOEXEC): blocking, close-on-exec
            except OSError as e:
                steps.append([r, name(e)])
                continue
            want = {'blocking': True, 'inheritable': False}
        got = {'blocking': os.get_blocking(c.fileno()), 'inheritable': os.get_inheritable(c.fileno())}
        steps.append([r, 'ok' if got == want else got])
        conns.append(c)
    out['steps'] = steps
    out['after'] = {'readable': readable(a), 'accept': attempt(lambda: a.accept())}
    peers = set()
    for c in conns:
        c.setblocking(True)
        c.settimeout(10)
        if c.getsockname() != ('10.0.0.2', port) or c.getpeername()[0] != '10.0.0.1' or c.recv(1) != b'x':
            out['bad_conn'] = [c.getsockname(), c.getpeername()]
        peers.add(c.getpeername()[1])
        c.sendall(b'y')
        c.close()
    out['distinct_peers'] = len(peers)
    # B: the listener closed with connections queued: they are reset, as a closed listener's children.
    b = socket.socket()
    b.bind(('0.0.0.0', port + 1))
    b.listen(64)
    print(json.dumps({'phase': 'a'}), flush=True)  # after the next listen: the test's clients connect on it
    go()
    c, _ = b.accept()
    out['b_readable_with_queue'] = readable(b)
    b.close()
    c.settimeout(10)
    c.recv(1)
    c.sendall(b'y')
    c.close()
    # C: the process exits with connections queued: the daemon closes them with it.
    d = socket.socket()
    d.bind(('0.0.0.0', port + 2))
    d.listen(64)
    print(json.dumps({'phase': 'b'}), flush=True)
    go()
    c, _ = d.accept()
    out['c_readable_with_queue'] = readable(d)
    print(json.dumps(out), flush=True)
    os._exit(0)


def prefork(port, k):
    import signal
    a = socket.socket()
    a.bind(('0.0.0.0', port))
    a.listen(64)
    kids = []
    for _ in range(k):
        pid = os.fork()
        if pid == 0:
            signal.alarm(40)
            while True:
                c, _ = a.accept()
                line = c.makefile('rb').readline()
                c.sendall(b'%d:' % os.getpid() + line.upper())
                c.close()
        kids.append(pid)

    def stop(*_):
        for p in kids:
            os.kill(p, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(json.dumps({'listening': port, 'pid': os.getpid(), 'children': kids}), flush=True)
    signal.alarm(45)
    signal.signal(signal.SIGALRM, stop)
    while True:
        signal.pause()


def kclients(host, port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b'x')
        socks.append(s)
    print(json.dumps({'connected': n}), flush=True)
    ends = {}
    for s in socks:
        s.settimeout(20)
        got = b''
        try:
            while True:
                b = s.recv(16)
                if not b:
                    break
                got += b
            end = 'served' if got == b'y' else 'eof' if not got else 'data'
        except OSError as e:
            end = 'reset' if e.errno == errno.ECONNRESET else name(e)
        ends[end] = ends.get(end, 0) + 1
    print(json.dumps({'ends': ends}), flush=True)


def stream(n, seed):
    """n deterministic bytes in 64 KiB blocks (each a hash chain of the seed): no two blocks alike."""
    h = hashlib.sha256(seed.encode()).digest()
    left = n
    while left > 0:
        block = (h * 2048)[:min(65536, left)]
        h = hashlib.sha256(h).digest()
        left -= len(block)
        yield block


def bulk(host, port, n, mode):
    s = socket.create_connection((host, port))
    sent = hashlib.sha256()
    got = hashlib.sha256()
    total = 0
    extra = {}
    if mode == 'timeout':
        # Blocking: a peek, then a read that waits for all it asked for (the first 64 KiB, whatever the
        # segments); then settimeout, under which CPython makes the descriptor non-blocking and polls.
        head = s.recv(16, socket.MSG_PEEK)
        first = s.recv(65536, socket.MSG_WAITALL)
        s.settimeout(30)
        extra = {'peek_ok': first[:len(head)] == head and len(head) > 0, 'waitall': len(first)}
        got.update(first)
        total += len(first)

        def send():
            for b in stream(n, 'up'):
                sent.update(b)
                s.sendall(b)
            s.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=send)
        t.start()
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            got.update(d)
            total += len(d)
        t.join()
    else:
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        blocks = stream(n, 'up')
        pending = b''
        writing = True
        reading = True
        while reading or writing:
            for _, ev in sel.select(timeout=30):
                if ev & selectors.EVENT_READ:
                    while True:
                        try:
                            d = s.recv(1 << 16)
                        except BlockingIOError:
                            break
                        if not d:
                            reading = False
                            break
                        got.update(d)
                        total += len(d)
                if ev & selectors.EVENT_WRITE and writing:
                    while True:
                        if not pending:
                            pending = next(blocks, b'')
                            if not pending:
                                writing = False
                                s.shutdown(socket.SHUT_WR)
                                break
                            sent.update(pending)
                        try:
                            k = s.send(pending)
                        except BlockingIOError:
                            break
                        pending = pending[k:]
            if reading or writing:
                sel.modify(s, (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if writing else 0))
    s.close()
    print(json.dumps({'sent': sent.hexdigest(), 'got': got.hexdigest(), 'bytes': total, **extra}), flush=True)


def handoff(host, port, n, how):
    import array
    import ctypes
    import fcntl
    import termios
    s = socket.create_connection((host, port))
    head = s.recv(6, socket.MSG_WAITALL)
    # Everything else in (the daemon's count: what the ring holds unread, and TCP's queue), FIN too.
    q = array.array('i', [0])
    while q[0] < n - 6:
        select.select([s], [], [], 1)
        fcntl.ioctl(s.fileno(), termios.FIONREAD, q)
    out = {'head': head.decode('latin-1')}
    fd = s.fileno()
    drain_cmd = [sys.executable, os.path.abspath(__file__), 'drain']
    if how == 'execv':
        # A new program image: the descriptor it inherits has no ring mapping in it.
        os.set_inheritable(fd, True)
        os.execv(sys.executable, drain_cmd + [str(fd), out['head']])
    if how == 'subprocess':
        # _posixsubprocess clears FD_CLOEXEC in the child (of fork, or vfork) before its execve.
        sys.exit(subprocess.run(drain_cmd + [str(fd), out['head']], pass_fds=[fd]).returncode)
    if how == 'posix_spawn':
        pid = os.posix_spawn(sys.executable, drain_cmd + ['0', out['head']], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fd, 0)])
        sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    if how == 'fork':
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            h = hashlib.sha256()
            total = 0
            while True:
                d = s.recv(1 << 16)
                if not d:
                    break
                h.update(d)
                total += len(d)
            os.write(w, json.dumps({'sha': h.hexdigest(), 'bytes': total}).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        out.update(json.loads(os.read(r, 4096)))
    else:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fdopen.restype = ctypes.c_void_p
        libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
        libc.fread.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
        f = libc.fdopen(os.dup(s.fileno()), b'rb')
        buf = ctypes.create_string_buffer(1 << 16)
        h = hashlib.sha256()
        total = 0
        while True:
            k = libc.fread(buf, 1, len(buf), f)
            if k == 0:
                break
            h.update(buf.raw[:k])
            total += k
        out.update({'sha': h.hexdigest(), 'bytes': total})
    s.close()
    print(json.dumps(out), flush=True)


def drain(fd, head):
    h = hashlib.sha256()
    total = 0
    while True:
        d = os.read(fd, 1 << 16)
        if not d:
            break
        h.update(d)
        total += len(d)
    # And the other way: the count goes back to the peer on the same descriptor.
    os.write(fd, b'%d\n' % total)
    print(json.dumps({'head': head, 'sha': h.hexdigest(), 'bytes': total}), flush=True)


def bulk_peer(port, n):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('0.0.0.0', port))
    ls.listen(8)
    while True:
        c, _ = ls.accept()
        sent = hashlib.sha256()
        got = hashlib.sha256()

        def send():
            for b in stream(n, 'down'):
                sent.update(b)
                c.sendall(b)
            c.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=send)
        t.start()
        total = 0
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            got.update(d)
            total += len(d)
        t.join()
        c.close()
        print(json.dumps({'sent': sent.hexdigest(), 'got': got.hexdigest(), 'bytes': total}), flush=True)


def ring_maps():
    """Ring mappings of this process (the daemon's memfds are named tapstack-ring)."""
    with open('/proc/self/maps') as f:
        return sum(1 for line in f if 'tapstack-ring' in line)


def pool_fork(port):
    """Connections within the process through the stack, their rings pooled once closed; then fork: the
    child maps none of the parent's rings (MADV_DONTFORK) and gets its own; the parent's next
    connection reuses its pool (no new mapping)."""
    lst = socket.socket()
    lst.bind(('10.0.0.2', port))
    lst.listen(8)

    def conn(tag):
        c = socket.create_connection(('10.0.0.2', port), timeout=10)
        a, _ = lst.accept()
        a.settimeout(10)
        c.sendall(tag)
        a.sendall(a.recv(64).upper())
        back = c.recv(64).decode()
        c.close()
        a.close()
        return back

    out = {'parent_before': [conn(b'one'), conn(b'two')], 'maps_before_fork': ring_maps()}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        res = {'maps': ring_maps(), 'conn': conn(b'kid')}
        res['maps_after'] = ring_maps()
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    out['child'] = json.loads(os.read(r, 4096))
    os.waitpid(pid, 0)
    out['parent_after'] = conn(b'three')
    out['maps_after'] = ring_maps()
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'asyncio-server':
        asyncio_server(int(args[0]))
    elif cmd == 'errors':
        errors(args[0])
    elif cmd == 'udp':
        udp(args[0], int(args[1]))
    elif cmd == 'forking-server':
        forking_server(int(args[0]))
    elif cmd == 'churn':
        churn(int(args[0]))
    elif cmd == 'fork':
        fork(args[0], int(args[1]), int(args[2]))
    elif cmd == 'accept-queue':
        accept_queue(int(args[0]), int(args[1]), args[2])
    elif cmd == 'prefork':
        prefork(int(args[0]), int(args[1]))
    elif cmd == 'kclients':
        kclients(args[0], int(args[1]), int(args[2]))
    elif cmd == 'errqueue':
        errqueue(args[0], int(args[1]), int(args[2]))
    elif cmd == 'bulk':
        bulk(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == 'handoff':
        handoff(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == 'drain':
        drain(int(args[0]), args[1])
    elif cmd == 'pool-fork':
        pool_fork(int(args[0]))
    elif cmd == 'bulk-peer':
        bulk_peer(int(args[0]), int(args[1]))
    else:
        sys.exit(f'unknown command {cmd}')
