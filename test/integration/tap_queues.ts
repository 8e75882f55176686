/**
 * A helper the multi-queue TAP test runs inside its namespace: it opens
 * `--queues N` queues of one TAP with IFF_MULTI_QUEUE (each with the vnet
 * header), brings the interface up with the kernel side's address, writes
 * one ICMP echo request to the kernel on each queue, and prints a JSON line
 * for every UDP datagram the kernel sends to the peer address, naming the
 * queue it arrived on. Usage: tap_queues.js NAME QUEUES
 */
import { loadAddon } from '../../src/drivers/addon.js';
import { csumFold, csumPartial, ipFastCsum } from '../../src/lib/checksum.js';

const [name, queuesArg] = process.argv.slice(2);
const queues = Number(queuesArg);
if (!name || !Number.isInteger(queues) || queues < 1 || queues > 16) {
  process.stderr.write('usage: tap_queues.js NAME QUEUES (1..16)\n');
  process.exit(2);
}
const HOST = 0x0a090001; // 10.9.0.1: the kernel side
const PEER = 0x0a090002; // 10.9.0.2: "us", behind the TAP
const PEER_MAC = Buffer.from([0x02, 0x74, 0x73, 0x00, 0x00, 0x02]);

const addon = loadAddon();
const fds: { fd: number; vnetHdrSize: number }[] = [];
for (let i = 0; i < queues; i++) fds.push(addon.openTap(name, true, true));
addon.addrSetIpv4(name, HOST, 24);
addon.linkSetUp(name, true);
const hostMac = addon.linkGetMac(name);

/** An ICMP echo request from PEER to HOST, id `id`, behind a zeroed vnet header of `hdr` bytes. */
function echoFrame(hdr: number, id: number): Buffer {
  const f = Buffer.alloc(hdr + 14 + 20 + 8 + 8);
  const e = hdr;
  hostMac.copy(f, e);
  PEER_MAC.copy(f, e + 6);
  f.writeUInt16BE(0x0800, e + 12);
  const ip = e + 14;
  f[ip] = 0x45;
  f.writeUInt16BE(20 + 16, ip + 2);
  f[ip + 8] = 64;
  f[ip + 9] = 1;
  f.writeUInt32BE(PEER, ip + 12);
  f.writeUInt32BE(HOST, ip + 16);
  f.writeUInt16BE(ipFastCsum(f, ip, 20), ip + 10);
  const ic = ip + 20;
  f[ic] = 8;
  f.writeUInt16BE(id, ic + 4);
  f.writeUInt16BE(1, ic + 6);
  f.write('queue!!!', ic + 8);
  f.writeUInt16BE(csumFold(csumPartial(f, ic, 16)), ic + 2);
  return f;
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
      const e = i * SLOT + vnetHdrSize;
      if (lens[i] < vnetHdrSize + 14 + 20 + 8) continue;
      if (ring.readUInt16BE(e + 12) !== 0x0800 || ring[e + 14 + 9] !== 17 || ring.readUInt32BE(e + 14 + 16) !== PEER) continue;
      const ihl = (ring[e + 14] & 0x0f) * 4;
      process.stdout.write(JSON.stringify({ q, dport: ring.readUInt16BE(e + 14 + ihl + 2), hdr: vnetHdrSize, dstMac: ring.subarray(e, e + 6).equals(PEER_MAC) }) + '\n');
    }
  });
  const f = echoFrame(vnetHdrSize, 0x5100 + q);
  const n = addon.write(fd, f, 0, f.length);
  process.stdout.write(JSON.stringify({ q, wrote: n }) + '\n');
});
process.stdout.write(JSON.stringify({ ready: true, queues: fds.map((x) => x.vnetHdrSize) }) + '\n');
