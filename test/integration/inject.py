#!/usr/bin/env python3
"""Write hand-made Ethernet frames to an interface with an AF_PACKET socket.

Used by foundation.test.ts, always inside the test's network namespace:

    inject.py IFACE CASE COUNT [DST_MAC]

IFACE's own MAC (from /sys/class/net/IFACE/address) is the source MAC;
DST_MAC defaults to the stack's 02:74:73:00:00:02. Addresses are
10.0.0.1 (the kernel side) -> 10.0.0.2 (the stack). Prints one JSON line
{"case", "sent", "lengths"}. Exit status: 0 sent, 2 usage,
3 the kernel refused the frame (the errno is printed on stderr).
"""
import errno
import json
import socket
import struct
import sys

STACK_MAC = "02:74:73:00:00:02"
SRC_IP = bytes([10, 0, 0, 1])
DST_IP = bytes([10, 0, 0, 2])


def mac(s):
    return bytes(int(x, 16) for x in s.strip().split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_header(payload_len, proto, ident, ver_ihl=0x45, tot_len=None, bad_csum=False):
    tot = 20 + payload_len if tot_len is None else tot_len
    h = struct.pack("!BBHHHBBH4s4s", ver_ihl, 0, tot, ident, 0, 64, proto, 0, SRC_IP, DST_IP)
    c = csum(h)
    if bad_csum:
        c ^= 0x5A5A  # any other value is wrong
    return h[:10] + struct.pack("!H", c) + h[12:]


def icmp_echo(ident, seq, bad_csum=False):
    data = b"tapstack-inject-" + bytes(range(16))
    h = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    c = csum(h)
    if bad_csum:
        c ^= 0x00FF
    return h[:2] + struct.pack("!H", c) + h[4:]


def udp(sport, dport, payload, bad_csum=False):
    ulen = 8 + len(payload)
    pseudo = SRC_IP + DST_IP + struct.pack("!BBH", 0, 17, ulen)
    h = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + h) or 0xFFFF
    if bad_csum:
        c = (c ^ 0x0F0F) or 0x1234
    return h[:6] + struct.pack("!H", c) + h[8:]


def ipv4(payload, proto, ident, **kw):
    return ip_header(len(payload), proto, ident, **kw) + payload


def frames(case, count, dst, src):
    eth_ip = dst + src + b"\x08\x00"
    out = []
    for i in range(count):
        ident = 0x7000 + i
        if case == "bad-ip-csum":
            out.append(eth_ip + ipv4(icmp_echo(0x4242, i), 1, ident, bad_csum=True))
        elif case == "truncated-ip":
            # Ethertype IPv4 and only 10 bytes of IP header.
            out.append(eth_ip + ipv4(icmp_echo(0x4242, i), 1, ident)[:10])
        elif case == "bogus-totlen":
            # A valid header claiming 1000 bytes in a frame that carries 44.
            out.append(eth_ip + ip_header(24, 1, ident, tot_len=1000) + icmp_echo(0x4242, i)[:24])
        elif case == "ihl-lt-5":
            out.append(eth_ip + ipv4(icmp_echo(0x4242, i), 1, ident, ver_ihl=0x44))
        elif case == "version-6":
            out.append(eth_ip + ipv4(icmp_echo(0x4242, i), 1, ident, ver_ihl=0x65))
        elif case == "bad-icmp-csum":
            out.append(eth_ip + ipv4(icmp_echo(0x4343, i, bad_csum=True), 1, ident))
        elif case == "otherhost":
            # Unicast to someone else's MAC (dst given on the command line).
            out.append(eth_ip + ipv4(icmp_echo(0x4444, i), 1, ident))
        elif case == "arp-hlen-7":
            arp = struct.pack("!HHBBH", 1, 0x0800, 7, 4, 1) + src + b"\0" + SRC_IP + b"\0" * 7 + DST_IP
            out.append(dst + src + b"\x08\x06" + arp + b"\0" * 10)
        elif case == "udp-closed":
            # 33434 (traceroute's first port): no service listens there; 9 is UDP discard now.
            out.append(eth_ip + ipv4(udp(40000 + i, 33434, b"tapstack closed port probe"), 17, ident))
        elif case == "udp-bad-csum":
            out.append(eth_ip + ipv4(udp(41000 + i, 9, b"tapstack bad checksum", bad_csum=True), 17, ident))
        else:
            raise KeyError(case)
    return out


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    iface, case, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if not 0 < count <= 64:
        print("COUNT must be 1..64", file=sys.stderr)
        return 2
    dst = mac(sys.argv[4] if len(sys.argv) == 5 else STACK_MAC)
    with open("/sys/class/net/%s/address" % iface) as f:
        src = mac(f.read())
    try:
        fs = frames(case, count, dst, src)
    except KeyError:
        print("unknown case %r" % case, file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((iface, 0))
    sent = 0
    for fr in fs:
        try:
            n = s.send(fr)
        except OSError as e:
            print("refused: %s (%s) after %d frames" % (errno.errorcode.get(e.errno, e.errno), e.strerror, sent), file=sys.stderr)
            print(json.dumps({"case": case, "sent": sent, "lengths": [len(x) for x in fs]}))
            return 3
        if n != len(fr):
            print("short write: %d of %d" % (n, len(fr)), file=sys.stderr)
            return 1
        sent += 1
    s.close()
    print(json.dumps({"case": case, "sent": sent, "lengths": [len(x) for x in fs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
