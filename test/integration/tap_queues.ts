/**
 * A helper the multi-queue TAP test runs inside its namespace: it opens
 * `--queues N` queues of one TAP with IFF_MULTI_QUEUE (each with the vnet
 * header), brings the interface up with the kernel side's address, writes
 * one ICMP echo request to the kernel on each queue, and prints a JSON line
 * for every UDP datagram the kernel sends to the peer address, naming the
 * queue it arrived on (IPv4, and IPv6 to PEER6). With `steer`, it attaches
 * the steering program (native/tap_steer.c) and, once the kernel's first
 * datagram arrives (the test has set the kernel's neighbour entry for PEER
 * by then), writes PROBES datagrams to a closed port of the kernel, whose
 * ICMP port unreachable errors it prints with the ports they quote.
 * Usage: tap_queues.js NAME QUEUES [steer]
 */
import { loadAddon } from '../../src/drivers/addon.js';
import { csumFold, csumPartial, ipFastCsum } from '../../src/lib/checksum.js';

const [name, queuesArg, mode] = process.argv.slice(2);
const queues = Number(queuesArg);
if (!name || !Number.isInteger(queues) || queues < 1 || queues > 16) {
  process.stderr.write('usage: tap_queues.js NAME QUEUES (1..16)\n');
  process.exit(2);
}
const HOST = 0x0a090001; // 10.9.0.1: the kernel side
const PEER = 0x0a090002; // 10.9.0.2: "us", behind the TAP
const PEER_MAC = Buffer.from([0x02, 0x74, 0x73, 0x00, 0x00, 0x02]);
/** fd09::2, "us" over IPv6. */
const PEER6 = Buffer.from('fd090000000000000000000000000002', 'hex');
/** The probes' source ports (ours) and the kernel's closed port they go to. */
const PROBES = 8;
const PROBE_PORT = 40000;
const CLOSED_PORT = 9;

const addon = loadAddon();
const fds: { fd: number; vnetHdrSize: number }[] = [];
for (let i = 0; i < queues; i++) fds.push(addon.openTap(name, true, true));
const steer = mode === 'steer';
if (steer) addon.setSteering(fds[0].fd, true);
addon.addrSetIpv4(name, HOST, 24);
addon.linkSetUp(name, true);
const hostMac = addon.linkGetMac(name);

/** An IPv4 frame from PEER to HOST carrying `proto` with `l4len` bytes of payload to fill in at the returned offset, behind a zeroed vnet header of `hdr` bytes. */
function ipv4Frame(hdr: number, proto: number, l4len: number): { f: Buffer; l4: number } {
  const f = Buffer.alloc(hdr + 14 + 20 + l4len);
  const e = hdr;
  hostMac.copy(f, e);
  PEER_MAC.copy(f, e + 6);
  f.writeUInt16BE(0x0800, e + 12);
  const ip = e + 14;
  f[ip] = 0x45;
  f.writeUInt16BE(20 + l4len, ip + 2);
  f[ip + 8] = 64;
  f[ip + 9] = proto;
  f.writeUInt32BE(PEER, ip + 12);
  f.writeUInt32BE(HOST, ip + 16);
  f.writeUInt16BE(ipFastCsum(f, ip, 20), ip + 10);
  return { f, l4: ip + 20 };
}

/** An ICMP echo request from PEER to HOST, id `id`. */
function echoFrame(hdr: number, id: number): Buffer {
  const { f, l4: ic } = ipv4Frame(hdr, 1, 16);
  f[ic] = 8;
  f.writeUInt16BE(id, ic + 4);
  f.writeUInt16BE(1, ic + 6);
  f.write('queue!!!', ic + 8);
  f.writeUInt16BE(csumFold(csumPartial(f, ic, 16)), ic + 2);
  return f;
}

/** A UDP datagram from PEER:sport to HOST's closed port (no UDP checksum: IPv4 allows it). */
function probeFrame(hdr: number, sport: number): Buffer {
  const { f, l4 } = ipv4Frame(hdr, 17, 12);
  f.writeUInt16BE(sport, l4);
  f.writeUInt16BE(CLOSED_PORT, l4 + 2);
  f.writeUInt16BE(12, l4 + 4);
  return f;
}

let probed = false;
function probe(): void {
  if (probed) return;
  probed = true;
  const { fd, vnetHdrSize } = fds[0];
  for (let i = 0; i < PROBES; i++) {
    const f = probeFrame(vnetHdrSize, PROBE_PORT + 2 * i);
    addon.write(fd, f, 0, f.length);
  }
}

/** A line for the frame at `e` (its Ethernet header) that arrived on queue q, or null when it is none of ours. */
function describe(ring: Buffer, e: number, len: number, q: number, hdr: number): object | null {
  const type = ring.readUInt16BE(e + 12);
  if (type === 0x86dd && len >= 14 + 40 + 8 && ring[e + 14 + 6] === 17 && ring.subarray(e + 14 + 24, e + 14 + 40).equals(PEER6))
    return { q, v6: true, sport: ring.readUInt16BE(e + 54), dport: ring.readUInt16BE(e + 56) };
  if (type !== 0x0800 || ring.readUInt32BE(e + 14 + 16) !== PEER) return null;
  const ihl = (ring[e + 14] & 0x0f) * 4;
  const l4 = e + 14 + ihl;
  if (ring[e + 14 + 9] === 17) return { q, sport: ring.readUInt16BE(l4), dport: ring.readUInt16BE(l4 + 2), hdr, dstMac: ring.subarray(e, e + 6).equals(PEER_MAC) };
  if (ring[e + 14 + 9] === 1 && ring[l4] === 3 && len >= 14 + ihl + 8 + 20 + 4) {
    // Port unreachable: the quoted datagram is a probe, from our port to the kernel's.
    const quoted = l4 + 8 + (ring[l4 + 8] & 0x0f) * 4;
    return { q, icmp: true, local: ring.readUInt16BE(quoted), remote: ring.readUInt16BE(quoted + 2) };
  }
  return null;
}

const SLOT = 12 + 65535 + 18;
const SLOTS = 8;
fds.forEach(({ fd, vnetHdrSize }, q) => {
  const ring = Buffer.alloc(SLOT * SLOTS);
  const lens = new Int32Array(SLOTS);
  addon.startReader(fd, ring, SLOT, lens, (count, err) => {
    if (err) {
      process.stdout.write(JSON.stringify({ q, err }) + '\n');
      return;
    }
    for (let i = 0; i < count; i++) {
      if (lens[i] < vnetHdrSize + 14 + 20 + 8) continue;
      const line = describe(ring, i * SLOT + vnetHdrSize, lens[i] - vnetHdrSize, q, vnetHdrSize);
      if (!line) continue;
      process.stdout.write(JSON.stringify(line) + '\n');
      if (steer && 'dport' in line) probe();
    }
  });
  const f = echoFrame(vnetHdrSize, 0x5100 + q);
  const n = addon.write(fd, f, 0, f.length);
  process.stdout.write(JSON.stringify({ q, wrote: n }) + '\n');
});
process.stdout.write(JSON.stringify({ ready: true, queues: fds.map((x) => x.vnetHdrSize) }) + '\n');
