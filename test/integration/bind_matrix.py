"""Runs the bind-conflict matrix (test/lib/bind_matrix.ts writes the cases)
with this process's sockets: the kernel's when run plainly, the stack's when
run through `tapstack run` (the preload library). Each case puts one socket
(the holder) on its own port in a state, then a new socket binds the same
port and, if that works, listens; the outcome of both calls is printed.

  bind_matrix.py CASES V4A V4B V6 HELPER_PORT [OTHER_UID]

CASES is a file of JSON lines {"id", "port", "state", "holder", "new",
"otherUid"}; holder and new are {"kind", "ra", "rp"} (SO_REUSEADDR,
SO_REUSEPORT). Kinds: v4any 0.0.0.0, v4a V4A, v4b V4B, v6any [::] dual
stack, v6only [::] with IPV6_V6ONLY, v6a V6, v6mapped ::ffff:V4A. States:
close (bound), listen, established (an accepted connection, its listener
closed), timewait (the same after the holder closed first and the peer
answered), connected (bound, then connected to a helper listener), reset
(connected, then reset by the helper's side: CLOSE, its port still held),
ephemeral-reset (the same without bind: the new socket asks for the port
connect() chose), timewait-open (connected, closed first by the holder with
shutdown: TIME_WAIT while its descriptor stays open). With
otherUid the new socket is made by a child running as OTHER_UID.

Prints one JSON line per case, {"id", "bind", "listen"}: "ok" or the errno
name ("listen" is null when bind failed, "setup: ..." when the holder could
not be put in its state), then {"done": n}.
"""
import errno
import json
import os
import socket
import struct
import sys
import time

TCP_CLOSE = 7
# A connecting client's port is its case's port less this (cases from 20000 on).
CLIENT_PORT_OFFSET = 10000


def name(e):
    return errno.errorcode.get(e.errno, str(e))


def kinds(v4a, v4b, v6):
    return {
        'v4any': (socket.AF_INET, '0.0.0.0', None),
        'v4a': (socket.AF_INET, v4a, None),
        'v4b': (socket.AF_INET, v4b, None),
        'v6any': (socket.AF_INET6, '::', 0),
        'v6only': (socket.AF_INET6, '::', 1),
        'v6a': (socket.AF_INET6, v6, 0),
        'v6mapped': (socket.AF_INET6, '::ffff:' + v4a, 0),
    }


def make(kind, spec):
    fam, addr, only = kind
    s = socket.socket(fam, socket.SOCK_STREAM)
    if only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, only)
    if spec['ra']:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if spec['rp']:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return s, addr


def try_new(kind, spec, port):
    """bind, then listen: the two outcomes."""
    s, addr = make(kind, spec)
    try:
        try:
            s.bind((addr, port))
        except OSError as e:
            return name(e), None
        try:
            s.listen(8)
        except OSError as e:
            return 'ok', name(e)
        return 'ok', 'ok'
    finally:
        s.close()


def tcp_state(s):
    return struct.unpack('B', s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[:1])[0]


def wait_closed(s, what):
    """Bounded wait for s to reach CLOSE (its LAST_ACK answered, or reset)."""
    end = time.monotonic() + 5
    while tcp_state(s) != TCP_CLOSE:
        if time.monotonic() > end:
            raise RuntimeError('%s: the peer never reached CLOSE (state %d)' % (what, tcp_state(s)))
        time.sleep(0.001)


def worker(rfd, wfd, uid, table):
    """The other user's side: make the new socket as `uid`."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    r = os.fdopen(rfd, 'r')
    w = os.fdopen(wfd, 'w')
    for line in r:
        c = json.loads(line)
        w.write(json.dumps(try_new(table[c['new']['kind']], c['new'], c['port'])) + '\n')
        w.flush()
    os._exit(0)


def main():
    cases_file, v4a, v4b, v6, helper_port = sys.argv[1:6]
    other_uid = int(sys.argv[6]) if len(sys.argv) > 6 else None
    helper_port = int(helper_port)
    table = kinds(v4a, v4b, v6)
    cases = [json.loads(l) for l in open(cases_file) if l.strip()]

    to_worker = from_worker = None
    if other_uid is not None:
        # Before any socket of ours: the child opens its own (as the other user).
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        if os.fork() == 0:
            os.close(w1)
            os.close(r2)
            worker(r1, w2, other_uid, table)
        os.close(r1)
        os.close(w2)
        to_worker = os.fdopen(w1, 'w')
        from_worker = os.fdopen(r2, 'r')

    # The peers a connected holder connects to.
    h4 = socket.socket(socket.AF_INET)
    h4.bind((v4a, helper_port))
    h4.listen(64)
    h6 = socket.socket(socket.AF_INET6)
    h6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    h6.bind((v6, helper_port))
    h6.listen(64)
    helper = {socket.AF_INET: (h4, v4a), socket.AF_INET6: (h6, v6)}

    n = 0
    for c in cases:
        port = c['port']
        hk = c['holder']['kind']
        fam, _, _ = table[hk]
        # Where the holder's peer reaches it (and where a connected holder goes).
        peer_fam = socket.AF_INET if hk in ('v4any', 'v4a', 'v6mapped') else socket.AF_INET6
        peer_addr = v4a if peer_fam == socket.AF_INET else v6
        dst = ('::ffff:' + v4a) if hk == 'v6mapped' else peer_addr
        keep = []
        result = None
        try:
            h, addr = make(table[hk], c['holder'])
            keep.append(h)
            st = c['state']
            if st != 'ephemeral-reset':
                h.bind((addr, port))
            if st == 'listen':
                h.listen(8)
            elif st in ('established', 'timewait'):
                h.listen(8)
                cl = socket.socket(peer_fam)
                keep.append(cl)
                # Off the ephemeral range: no TIME_WAIT of it can meet an ephemeral-reset case.
                cl.bind((peer_addr, port - CLIENT_PORT_OFFSET))
                cl.settimeout(5)
                cl.connect((peer_addr, port))
                h.settimeout(5)
                a, _ = h.accept()
                keep.append(a)
                h.close()
                if st == 'timewait':
                    a.close()
                    if cl.recv(1) != b'':
                        raise RuntimeError('timewait: data instead of the FIN')
                    cl.shutdown(socket.SHUT_WR)
                    wait_closed(cl, 'timewait')
            elif st in ('connected', 'reset', 'ephemeral-reset', 'timewait-open'):
                srv, _ = helper[peer_fam]
                h.settimeout(5)
                h.connect((dst, helper_port))
                if st == 'ephemeral-reset':
                    # connect() chose the port: that is the one the new socket asks for.
                    port = h.getsockname()[1]
                srv.settimeout(5)
                a, _ = srv.accept()
                keep.append(a)
                if st in ('reset', 'ephemeral-reset'):
                    # SO_LINGER 0: the peer's close is a RST.
                    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                    a.close()
                    wait_closed(h, st)
                elif st == 'timewait-open':
                    # The holder closes first and stays open: TIME_WAIT with its descriptor kept.
                    h.shutdown(socket.SHUT_WR)
                    a.settimeout(5)
                    if a.recv(1) != b'':
                        raise RuntimeError('timewait-open: data instead of the FIN')
                    a.close()
                    wait_closed(h, st)
        except (OSError, RuntimeError) as e:
            result = {'id': c['id'], 'bind': 'setup: %s' % (name(e) if isinstance(e, OSError) else e), 'listen': None}
        if result is None:
            if c['otherUid']:
                to_worker.write(json.dumps(dict(c, port=port)) + '\n')
                to_worker.flush()
                b, l = json.loads(from_worker.readline())
            else:
                b, l = try_new(table[c['new']['kind']], c['new'], port)
            result = {'id': c['id'], 'bind': b, 'listen': l}
        print(json.dumps(result), flush=True)
        for s in reversed(keep):
            s.close()
        n += 1
    if to_worker is not None:
        to_worker.close()
        os.wait()
    print(json.dumps({'done': n}), flush=True)


main()
