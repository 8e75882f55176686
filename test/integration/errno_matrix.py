"""Every data and control call on a TCP socket in each state that is not a
plain open connection, with this process's sockets: the kernel's when run
plainly, the stack's when run through `tapstack run` (the preload library).
The test compares the two outputs line by line.

  errno_matrix.py V4ADDR V6ADDR PORT

States: fresh (socket()), bound, listening, reset (the peer reset the
connection; its error not yet read), reset-read (the same after SO_ERROR
was read), shut-wr (connected, then shutdown(SHUT_WR)), peer-fin (the peer
closed: CLOSE_WAIT), shut-rdwr (connected, shutdown(SHUT_RDWR)). Each call
runs on its own socket freshly put in its state. A call's outcome is "ok"
with what it returned where that does not depend on addresses, or the
errno name; "+SIGPIPE" when the call raised SIGPIPE.

Prints one JSON line per (family, state, call), then {"done": n}.
"""
import errno
import json
import os
import select
import signal
import socket
import struct
import sys

TCP_CLOSE_WAIT = 8
WAIT_MS = 2000

pipes = 0


def on_sigpipe(signum, frame):
    global pipes
    pipes += 1


def name(e):
    return errno.errorcode.get(e.errno, str(e))


def wait_for(s, events, what):
    """Block (bounded) until s reports one of events: the state change is an event, not a delay."""
    p = select.poll()
    p.register(s, events)
    if not p.poll(WAIT_MS):
        raise RuntimeError('%s: no event %#x within %d ms' % (what, events, WAIT_MS))


def tcp_state(s):
    return struct.unpack('B', s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[:1])[0]


class Peer:
    """A listener the connected states connect to, and the accepted sockets it keeps."""

    def __init__(self, fam, addr, port):
        self.fam, self.addr, self.port = fam, addr, port
        self.ls = socket.socket(fam, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((addr, port))
        self.ls.listen(64)
        # connect()'s target: a second listener, so that the first one's queue holds only the states' connections.
        self.sink = socket.socket(fam, socket.SOCK_STREAM)
        self.sink.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sink.bind((addr, port + 2))
        self.sink.listen(64)
        self.kept = []

    def connect(self):
        c = socket.socket(self.fam, socket.SOCK_STREAM)
        c.connect((self.addr, self.port))
        a, _ = self.ls.accept()
        self.kept.append(a)
        return c, a


def setup(state, peer):
    fam = peer.fam
    if state == 'fresh':
        return socket.socket(fam, socket.SOCK_STREAM)
    if state == 'bound':
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((peer.addr, 0))
        return s
    if state == 'listening':
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((peer.addr, 0))
        s.listen(4)
        return s
    c, a = peer.connect()
    if state in ('reset', 'reset-read'):
        # SO_LINGER 0: the peer's close is a RST.
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        a.close()
        wait_for(c, select.POLLERR | select.POLLHUP, state)
        if state == 'reset-read':
            c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return c
    if state == 'shut-wr':
        c.shutdown(socket.SHUT_WR)
        return c
    if state == 'peer-fin':
        a.shutdown(socket.SHUT_WR)
        wait_for(c, select.POLLIN | select.POLLRDHUP, state)
        if tcp_state(c) != TCP_CLOSE_WAIT:
            raise RuntimeError('peer-fin: state %d' % tcp_state(c))
        return c
    if state == 'shut-rdwr':
        c.shutdown(socket.SHUT_RDWR)
        return c
    raise ValueError(state)


def calls(peer):
    other = (peer.addr, peer.port + 2)
    return {
        'send': lambda s: s.send(b'x'),
        'send-nosignal': lambda s: s.send(b'x', socket.MSG_NOSIGNAL),
        'sendto': lambda s: s.sendto(b'x', other),
        'write': lambda s: os.write(s.fileno(), b'x'),
        'sendmsg-empty': lambda s: s.sendmsg([], [], socket.MSG_NOSIGNAL),
        'recv': lambda s: s.recv(1, socket.MSG_DONTWAIT),
        'recv-peek': lambda s: s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK),
        'read': lambda s: (s.setblocking(False), os.read(s.fileno(), 1))[1],
        'shutdown-rd': lambda s: s.shutdown(socket.SHUT_RD),
        'shutdown-wr': lambda s: s.shutdown(socket.SHUT_WR),
        'shutdown-rdwr': lambda s: s.shutdown(socket.SHUT_RDWR),
        'getpeername': lambda s: s.getpeername() and None,
        'listen': lambda s: s.listen(1),
        'accept': lambda s: (s.setblocking(False), s.accept())[1] and None,
        'connect': lambda s: s.connect(other),
        'so-error': lambda s: errno.errorcode.get(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 0),
        'nodelay': lambda s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    }


def outcome(fn, s):
    global pipes
    before = pipes
    try:
        r = fn(s)
        if isinstance(r, (bytes, bytearray)):
            out = 'ok:eof' if len(r) == 0 else 'ok:data'
        elif r is None:
            out = 'ok'
        else:
            out = 'ok:%s' % (r,)
    except BlockingIOError as e:
        out = name(e)
    except OSError as e:
        out = name(e)
    if pipes != before:
        out += '+SIGPIPE'
    return out


def main():
    v4, v6, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGPIPE, on_sigpipe)
    n = 0
    for fam, addr, fname in ((socket.AF_INET, v4, 'inet'), (socket.AF_INET6, v6, 'inet6')):
        peer = Peer(fam, addr, port if fam == socket.AF_INET else port + 10)
        table = calls(peer)
        for state in ('fresh', 'bound', 'listening', 'reset', 'reset-read', 'shut-wr', 'peer-fin', 'shut-rdwr'):
            failed = None
            for call, fn in table.items():
                try:
                    if failed:
                        raise RuntimeError(failed)
                    s = setup(state, peer)
                except (OSError, RuntimeError) as e:
                    # A state the socket could not be put in is an outcome of its own: it differs from the kernel's.
                    failed = str(e)
                    print(json.dumps({'family': fname, 'state': state, 'call': call, 'out': 'setup: %s' % e}), flush=True)
                    n += 1
                    continue
                print(json.dumps({'family': fname, 'state': state, 'call': call, 'out': outcome(fn, s)}), flush=True)
                s.close()
                n += 1
            for a in peer.kept:
                a.close()
            peer.kept = []
        peer.ls.close()
        peer.sink.close()
    print(json.dumps({'done': n}), flush=True)


if __name__ == '__main__':
    main()
