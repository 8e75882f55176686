#!/usr/bin/env python3
"""The service manager's end of sd_notify for the tests, run inside the test's namespace
(an @abstract name belongs to the network namespace it is bound in).

  notify_listen.py SOCKET SECONDS

Binds an AF_UNIX datagram socket at SOCKET (a path, or @name for the abstract
namespace, as systemd's NOTIFY_SOCKET), prints {"listening": SOCKET} once bound,
then one JSON line per datagram: its text and the sender's pid and uid from
SCM_CREDENTIALS (the kernel's, as systemd checks NotifyAccess=main) and when
it came (CLOCK_MONOTONIC, microseconds), until
SECONDS pass.
"""
import json, os, socket, struct, sys, time

path, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\0' + path[1:] if path.startswith('@') else path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'listening': path}), flush=True)
end = time.time() + secs
ucred = struct.calcsize('3i')
while time.time() < end:
    s.settimeout(max(0.01, end - time.time()))
    try:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(ucred))
    except socket.timeout:
        break
    pid = uid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, _ = struct.unpack('3i', payload[:ucred])
    # When it came, on CLOCK_MONOTONIC in microseconds (what MONOTONIC_USEC= is measured on).
    mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    print(json.dumps({'text': data.decode(), 'pid': pid, 'uid': uid, 'mono': mono}), flush=True)
if not path.startswith('@'):
    os.unlink(path)
