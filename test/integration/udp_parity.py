#!/usr/bin/env python3
"""UDP socket-call semantics on the kernel, for test/integration/udp.test.ts to compare with the stack.

  udp_parity.py LOCAL4 PEER4 BCAST4 LOCAL6 PEER6

Runs each scenario on kernel sockets (inside the test's namespace: LOCAL is
the kernel side's address, PEER the stack's) and prints one JSON object,
scenario name -> result (a value, or the errno name a call failed with). The
test runs the same scenarios on the stack through the API (udpScenarios in
udp.test.ts) and expects the same results. Datagrams to the peer go to its
discard port (9), so no ICMP error comes back to disturb a later call.
"""
import errno
import fcntl
import json
import select
import socket
import struct
import sys
import termios
import time

LOCAL4, PEER4, BCAST4, LOCAL6, PEER6 = sys.argv[1:6]
A4, A6 = socket.AF_INET, socket.AF_INET6
results = {}


def name_of(e):
    # Python names 95 ENOTSUP (the same number as EOPNOTSUPP on Linux); the API says EOPNOTSUPP.
    n = errno.errorcode.get(e.errno, str(e.errno))
    return 'EOPNOTSUPP' if n == 'ENOTSUP' else n


WAIT = 20  # seconds: bounds a wait for an event, which a loaded machine only delays


def queued(s):
    """Wait until a datagram is queued on s (FIONREAD counts the first one's bytes)."""
    end = time.time() + WAIT
    while struct.unpack('i', fcntl.ioctl(s, termios.FIONREAD, b'\0\0\0\0'))[0] == 0:
        if time.time() > end:
            raise SystemExit(f'no datagram queued on {s.getsockname()} in {WAIT} s')
        time.sleep(0.005)


def icmp_error(s):
    """Wait until the ICMP error reaches the connected socket s (poll reports POLLERR)."""
    p = select.poll()
    p.register(s, select.POLLIN)
    ev = p.poll(WAIT * 1000)
    if not ev or not ev[0][1] & select.POLLERR:
        raise SystemExit(f'no ICMP error on {s.getsockname()} in {WAIT} s: {ev}')


def icmp6_dest_unreachs():
    with open('/proc/net/snmp6') as f:
        for line in f:
            if line.startswith('Icmp6InDestUnreachs'):
                return int(line.split()[1])
    raise SystemExit('no Icmp6InDestUnreachs in /proc/net/snmp6')


def run(name, fn):
    try:
        r = fn()
    except OSError as e:
        r = name_of(e)
    results[name] = r


def s4():
    return socket.socket(A4, socket.SOCK_DGRAM)


def s6():
    return socket.socket(A6, socket.SOCK_DGRAM)


def shut_then_send():
    s = s4()
    try:
        s.shutdown(socket.SHUT_WR)
        first = 'ok'
    except OSError as e:
        first = name_of(e)
    try:
        s.sendto(b'x', (PEER4, 9))
        second = 'ok'
    except OSError as e:
        second = name_of(e)
    return [first, second]


run('shutdown unconnected, then send', shut_then_send)
run('sendto 65507 bytes', lambda: s4().sendto(b'x' * 65507, (PEER4, 9)))
run('sendto 65508 bytes', lambda: s4().sendto(b'x' * 65508, (PEER4, 9)))
run('sendto 65527 bytes over IPv6', lambda: s6().sendto(b'x' * 65527, (PEER6, 9)))
run('sendto 65528 bytes over IPv6', lambda: s6().sendto(b'x' * 65528, (PEER6, 9)))


def rcvbuf(v):
    s = s4()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, v)
    return s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


run('SO_RCVBUF 1000', lambda: rcvbuf(1000))
run('SO_RCVBUF 4000', lambda: rcvbuf(4000))


def connect_port0():
    s = s4()
    s.connect((PEER4, 0))
    out = []
    try:
        s.getpeername()
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    out.append(s.send(b'x'))
    return out


run('connect to port 0: getpeername, send', connect_port0)


def send_unconnected():
    s = s4()
    try:
        s.send(b'x')
        r = 'ok'
    except OSError as e:
        r = name_of(e)
    return [r, s.getsockname()[1] != 0]


run('send unconnected (autobinds first)', send_unconnected)


def bind_pair(f1, a1, f2, a2, port, v6only1=False, v6only2=False):
    x = socket.socket(f1, socket.SOCK_DGRAM)
    if v6only1:
        x.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    x.bind((a1, port))
    y = socket.socket(f2, socket.SOCK_DGRAM)
    if v6only2:
        y.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    y.bind((a2, port))
    return 'ok'


run('[::] after 0.0.0.0', lambda: bind_pair(A4, '0.0.0.0', A6, '::', 47001))
run('[::] V6ONLY after 0.0.0.0', lambda: bind_pair(A4, '0.0.0.0', A6, '::', 47002, v6only2=True))
run('0.0.0.0 after [LOCAL6]', lambda: bind_pair(A6, LOCAL6, A4, '0.0.0.0', 47003))
run('0.0.0.0 after [::]', lambda: bind_pair(A6, '::', A4, '0.0.0.0', 47004))
run('LOCAL4 after 0.0.0.0', lambda: bind_pair(A4, '0.0.0.0', A4, LOCAL4, 47005))


def reuse_mix():
    w = s4()
    w.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    w.bind(('0.0.0.0', 47006))
    x = s4()
    x.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    x.bind(('0.0.0.0', 47006))
    return 'ok'


run('SO_REUSEADDR after a SO_REUSEPORT holder', reuse_mix)


def trunc_peek():
    r = s4()
    r.bind((LOCAL4, 47007))
    w = s4()
    w.sendto(b'abcdefghij', (LOCAL4, 47007))
    w.sendto(b'12345', (LOCAL4, 47007))
    queued(r)
    out = [struct.unpack('i', fcntl.ioctl(r, termios.FIONREAD, b'\0\0\0\0'))[0]]
    out.append(len(r.recv(4, socket.MSG_TRUNC | socket.MSG_PEEK)))
    data, _, flags, _ = r.recvmsg(4)
    out += [data.decode(), flags & socket.MSG_TRUNC]
    queued(r)
    out.append(struct.unpack('i', fcntl.ioctl(r, termios.FIONREAD, b'\0\0\0\0'))[0])
    out.append(r.recv(100).decode())
    try:
        r.recv(100, socket.MSG_DONTWAIT)
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    return out


run('FIONREAD, MSG_PEEK|MSG_TRUNC, truncation, MSG_DONTWAIT', trunc_peek)
run('listen', lambda: s4().listen(1))


def bcast_no_flag():
    out = []
    for f in (lambda: s4().sendto(b'x', (BCAST4, 9)), lambda: s4().connect((BCAST4, 9))):
        try:
            f()
            out.append('ok')
        except OSError as e:
            out.append(name_of(e))
    return out


run('subnet broadcast without SO_BROADCAST: sendto, connect', bcast_no_flag)


def bcast_flag():
    s = s4()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    return s.sendto(b'x', (BCAST4, 9))


run('subnet broadcast with SO_BROADCAST', bcast_flag)
run('bind a foreign address', lambda: s4().bind(('192.0.2.77', 0)))
run('bind the subnet broadcast', lambda: s4().bind((BCAST4, 0)))


def v6only_mapped():
    s = s6()
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return s.sendto(b'x', ('::ffff:' + PEER4, 9))


run('V6ONLY sendto a v4-mapped address', v6only_mapped)


def mapped_bound():
    s = s6()
    s.bind(('::ffff:' + LOCAL4, 47008))
    out = []
    for f in (lambda: s.sendto(b'x', (PEER6, 9)), lambda: s.connect((PEER6, 9))):
        try:
            f()
            out.append('ok')
        except OSError as e:
            out.append(name_of(e))
    return out


run('v4-mapped-bound socket towards IPv6: sendto, connect', mapped_bound)
run('sendto port 0', lambda: s4().sendto(b'x', (PEER4, 0)))
run('sendto port 0 over IPv6', lambda: s6().sendto(b'x', (PEER6, 0)))


def bind_after_connect():
    s = s4()
    s.connect((PEER4, 9))
    s.bind((LOCAL4, 47009))


run('bind after connect', bind_after_connect)


def v6only_after_bind():
    s = s6()
    s.bind(('::', 47010))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


run('IPV6_V6ONLY after bind', v6only_after_bind)


def v6_specific_only():
    s = s6()
    s.bind((LOCAL6, 47011))
    return s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)


run('IPV6_V6ONLY after binding a specific IPv6 address', v6_specific_only)


def opts():
    s = s4()
    t = s6()
    return [s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL),
            s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), t.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN),
            s.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)]


run('SO_TYPE, SO_PROTOCOL, SO_DOMAIN (4, 6), IP_TTL', opts)


def disconnect():
    s = s4()
    s.connect((PEER4, 9))
    import ctypes  # AF_UNSPEC through the raw call: Python's connect() cannot say it
    libc = ctypes.CDLL(None, use_errno=True)
    sa = struct.pack('HH12x', 0, 0)
    rc = libc.connect(s.fileno(), sa, len(sa))
    out = [rc]
    try:
        s.getpeername()
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    out.append(s.getsockname()[1])
    return out


run('connect(AF_UNSPEC) after an autobinding connect: rc, getpeername, port', disconnect)

CLOSED = 47100  # no socket on either side


def refused_recv(fam, peer):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((peer, CLOSED))
    s.send(b'x')
    icmp_error(s)
    out = []
    for _ in range(2):
        try:
            s.recv(10, socket.MSG_DONTWAIT)
            out.append('ok')
        except OSError as e:
            out.append(name_of(e))
    return out


run('connected to a closed port: recv twice after the ICMP error', lambda: refused_recv(A4, PEER4))
run('connected to a closed port over IPv6: recv twice after the ICMP error', lambda: refused_recv(A6, PEER6))


def refused_soerror(fam, peer):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((peer, CLOSED))
    s.send(b'x')
    icmp_error(s)
    return [s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]


run('connected to a closed port: SO_ERROR twice', lambda: refused_soerror(A4, PEER4))


def refused_send():
    s = s4()
    s.connect((PEER4, CLOSED))
    s.send(b'x')
    icmp_error(s)
    out = []
    try:
        s.send(b'y')
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    return out


run('connected to a closed port: the next send', refused_send)


def unconnected_refused():
    s = s6()
    # Unconnected, the socket may not hear of the error: wait for the host to (Icmp6InDestUnreachs).
    before = icmp6_dest_unreachs()
    s.sendto(b'x', (PEER6, CLOSED))
    end = time.time() + WAIT
    while icmp6_dest_unreachs() == before:
        if time.time() > end:
            raise SystemExit(f'no ICMPv6 port unreachable in {WAIT} s')
        time.sleep(0.005)
    out = [s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]
    try:
        s.recv(10, socket.MSG_DONTWAIT)
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    return out


run('unconnected sendto a closed port over IPv6: SO_ERROR, recv', unconnected_refused)


def mapped_source():
    r = s6()
    r.bind(('::', 47012))
    w = s4()
    w.sendto(b'm', (LOCAL4, 47012))
    queued(r)
    _, src = r.recvfrom(10)
    return [src[0] == '::ffff:' + LOCAL4, src[1] == w.getsockname()[1]]


run('a dual-stack socket sees an IPv4 sender v4-mapped', mapped_source)


def local_after_connect():
    s = s4()
    s.connect((PEER4, 9))
    t = s6()
    t.connect((PEER6, 9))
    return [s.getsockname()[0] == LOCAL4, t.getsockname()[0] == LOCAL6]


run('getsockname after connect: the chosen source', local_after_connect)


def sndbuf_small():
    s = s4()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    return s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


run('SO_SNDBUF 1', sndbuf_small)


def ttl():
    s = s4()
    out = []
    for v in (1, 255, 0, 256):
        try:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, v)
            out.append(s.getsockopt(socket.IPPROTO_IP, socket.IP_TTL))
        except OSError as e:
            out.append(name_of(e))
    return out


run('IP_TTL 1, 255, 0, 256', ttl)


def shut_rd():
    r = s4()
    r.bind((LOCAL4, 47013))
    # SO_RCVTIMEO (1 s) bounds a wrong answer; the right one comes at once.
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack('qq', 1, 0))
    w = s4()
    w.sendto(b'before', (LOCAL4, 47013))
    queued(r)
    out = []
    try:
        r.shutdown(socket.SHUT_RD)
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    out.append(r.recv(10).decode())
    out.append(len(r.recv(10)))
    try:
        r.recv(10, socket.MSG_DONTWAIT)
        out.append('ok')
    except OSError as e:
        out.append(name_of(e))
    w.sendto(b'after', (LOCAL4, 47013))
    queued(r)
    out.append(r.recv(10).decode())
    return out


run('SHUT_RD unconnected: queued datagram, blocking recv, MSG_DONTWAIT, a later datagram', shut_rd)

def cork_more():
    a = s4()
    a.bind((LOCAL4, 47014))
    a.setblocking(False)
    b = s4()
    b.bind((LOCAL4, 47015))
    b.setblocking(False)
    s = s4()
    out = [s.sendto(b'ab', socket.MSG_MORE, (LOCAL4, 47014)), s.sendto(b'cd', socket.MSG_MORE, (LOCAL4, 47015)), s.send(b'ef')]
    queued(a)
    for r in (a, b):
        try:
            out.append(r.recv(100).decode())
        except OSError as e:
            out.append(name_of(e))
    return out


run('MSG_MORE pieces: one datagram to the first address', cork_more)


def cork_opt():
    a = s4()
    a.bind((LOCAL4, 47016))
    s = s4()
    s.setsockopt(socket.IPPROTO_UDP, 1, 1)  # UDP_CORK
    out = [s.getsockopt(socket.IPPROTO_UDP, 1), s.sendto(b'x', (LOCAL4, 47016)), s.send(b'y')]
    s.setsockopt(socket.IPPROTO_UDP, 1, 0)
    queued(a)
    out.append(a.recv(100).decode())
    return out


run('UDP_CORK: two sends, then uncork', cork_opt)


def cork_too_big():
    s = s4()
    out = [s.sendto(b'a' * 40000, socket.MSG_MORE, (PEER4, 9))]
    for f in (lambda: s.sendto(b'a' * 30000, socket.MSG_MORE, (PEER4, 9)), lambda: s.send(b'z'),
              lambda: s.sendto(b'b', socket.MSG_MORE, (BCAST4, 9))):
        try:
            out.append(f())
        except OSError as e:
            out.append(name_of(e))
    return out


run('corked past 65507, then an unaddressed send, then corking to the broadcast', cork_too_big)

print(json.dumps(results))
