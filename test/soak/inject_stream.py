#!/usr/bin/env python3
"""The soak fuzzer's hands: Ethernet frames, one hex line each on stdin,
written to IFACE with an AF_PACKET socket (the kernel side of the TAP, so
the daemon reads them as if from the link). Run only inside the soak's
namespace. Ends at EOF; a frame the kernel refuses is counted, and the
totals are printed as one JSON line at the end.

    inject_stream.py IFACE
"""
import json
import socket
import sys

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
sent = refused = 0
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        s.send(bytes.fromhex(line))
        sent += 1
    except OSError:
        refused += 1
print(json.dumps({"sent": sent, "refused": refused}), flush=True)
