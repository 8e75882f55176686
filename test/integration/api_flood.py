#!/usr/bin/env python3
"""API clients that abuse the daemon, for test/integration/api_abuse.test.ts.

  api_flood.py flood API SECONDS   floods cheap calls (close(999): EBADF) without
                                   reading until the daemon stops reading it (a send
                                   finds no room for STALL s), then reads every reply;
                                   again and again until SECONDS pass
  api_flood.py partial API N LEN SECONDS
                                   opens N connections, each sending the header and
                                   LEN - 1 bytes of a LEN-byte write frame (for 3 s at
                                   most), holds them until SIGUSR1 or SECONDS pass,
                                   then closes them

flood prints {"throttled": frames} each time it is stopped, {"drained": replies,
"ms": t} after reading them all, and {"cycles": n, "timeouts": k} at the end.
partial prints {"open": n, "sent": bytes, "whole": connections that sent all their
bytes} once nothing more goes, {"closed": n} at the end. Bounded by SECONDS either way.
"""
import json, os, select, signal, socket, struct, sys, time

# The test says "close" with SIGUSR1: blocked from the start, so one sent early waits for it.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})

MAGIC = 0x50415354
HELLO = struct.pack('<IHHI', MAGIC, 1, 0, 0)
CLOSE = 3
WRITE = 1
FRAME = 16   # close(fd): header and one i32
REPLY = 22   # header, i32 ret, u8 5, "EBADF"
STALL = 0.3
SEND = 3
DRAIN_MAX = 10


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(HELLO)
    got = b''
    while len(got) < 16:
        d = s.recv(16 - len(got))
        if not d:
            sys.exit('the daemon closed the connection during the hello')
        got += d
    return s


def flood(path, secs):
    s = connect(path)
    s.setblocking(False)
    batch = b''.join(struct.pack('<IIHHi', FRAME, i, CLOSE, 0, 999) for i in range(4096))
    end = time.time() + secs
    cycles = timeouts = 0
    while time.time() < end:
        sent = 0
        off = 0
        stalled = False
        while time.time() < end:
            _, w, _ = select.select([], [s], [], STALL)
            if not w:
                stalled = True
                break
            try:
                n = s.send(batch[off:])
            except BlockingIOError:
                continue
            sent += n
            off = (off + n) % len(batch)
        if not stalled:
            break
        print(json.dumps({'throttled': sent // FRAME}), flush=True)
        # The frame cut in two goes whole once the daemon reads again, so every reply comes.
        rest = batch[off:off + (-sent) % FRAME]
        want = (sent + len(rest)) // FRAME * REPLY
        got = 0
        t0 = time.time()
        # The drain has its own bound (not SECONDS): every reply must come, however late it started.
        while got < want and time.time() < t0 + DRAIN_MAX:
            r, w, _ = select.select([s], [s] if rest else [], [], 0.5)
            if w and rest:
                try:
                    rest = rest[s.send(rest):]
                except BlockingIOError:
                    pass
            if r:
                d = s.recv(1 << 20)
                if not d:
                    sys.exit('the daemon closed the connection')
                got += len(d)
        if got < want:
            timeouts += 1
            print(json.dumps({'drainTimeout': got // REPLY, 'want': want // REPLY}), flush=True)
            break
        cycles += 1
        print(json.dumps({'drained': want // REPLY, 'ms': round((time.time() - t0) * 1000)}), flush=True)
    print(json.dumps({'cycles': cycles, 'timeouts': timeouts}), flush=True)


def partial(path, n, length, secs):
    end = time.time() + secs
    body = struct.pack('<IIHHi', length, 1, WRITE, 0, 3) + b'\0' * (length - 1 - FRAME)
    conns = {}
    for _ in range(n):
        s = connect(path)
        s.setblocking(False)
        conns[s] = 0
    # Send what the daemon takes (it may stop reading some under memory pressure, and lets one
    # at a time finish its frame), until all is sent, nothing moved for STALL s or SEND s passed.
    pending = set(conns)
    send_end = min(end, time.time() + SEND)
    while pending and time.time() < send_end:
        _, w, _ = select.select([], list(pending), [], STALL)
        if not w:
            break
        for s in w:
            try:
                conns[s] += s.send(body[conns[s]:])
            except BlockingIOError:
                pass
            if conns[s] == len(body):
                pending.discard(s)
    print(json.dumps({'open': len(conns), 'sent': sum(conns.values()), 'whole': len(conns) - len(pending)}), flush=True)
    signal.sigtimedwait({signal.SIGUSR1}, max(0, end - time.time()))
    for s in conns:
        s.close()
    print(json.dumps({'closed': len(conns)}), flush=True)


mode = sys.argv[1]
if mode == 'flood':
    flood(sys.argv[2], float(sys.argv[3]))
elif mode == 'partial':
    partial(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
else:
    sys.exit('unknown mode ' + mode)
