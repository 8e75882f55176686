/**
 * The error queue and control messages through the syscall API,
 * in-process: recvmsg with room for control messages gets them laid out
 * as the kernel writes them (IP_RECVERR's sock_extended_err, IP_PKTINFO's
 * in_pktinfo), MSG_CTRUNC when there is no room; MSG_ERRQUEUE reads the
 * error queue of a descriptor-mode socket too; SO_ZEROCOPY is accepted and
 * a MSG_ZEROCOPY send through the data descriptor completes as copied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { code, inProcessApi } from '../lib/api_inproc.js';
import { PEER_IP, STACK_IP, icmp, ipFrame, udp as udpHdr } from '../lib/frames.js';
import { Client } from '../../src/client/index.js';
import { unixAddon } from '../../src/api/unix.js';
import { DGRAM_F_CMSG } from '../../src/api/proto.js';
import { formatIpv4 } from '../../src/lib/addr.js';
import {
  AF_INET,
  ECONNREFUSED,
  IP_PKTINFO,
  IP_RECVERR,
  MSG_CTRUNC,
  MSG_ERRQUEUE,
  MSG_ZEROCOPY,
  SO_EE_CODE_ZEROCOPY_COPIED,
  SO_EE_ORIGIN_ICMP,
  SO_EE_ORIGIN_ZEROCOPY,
  SO_ZEROCOPY,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_IP,
  SOL_SOCKET,
} from '../../src/uapi.js';

const setup = inProcessApi('tapstack-api-errq-');
const PEER = formatIpv4(PEER_IP);
const int = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};

test('message mode UDP: IP_RECVERR entries and IP_PKTINFO come back as control messages; none fit in no room (MSG_CTRUNC)', async () => {
  const { h, server, path } = setup();
  const c = new Client({ path, descriptors: false });
  try {
    await c.ready();
    const { fd } = await c.socket(AF_INET, SOCK_DGRAM);
    await c.setsockopt(fd, SOL_IP, IP_RECVERR, int(1));
    await c.setsockopt(fd, SOL_IP, IP_PKTINFO, int(1));
    assert.equal(await c.getsockoptInt(fd, SOL_IP, IP_RECVERR), 1);
    assert.equal(await c.sendto(fd, Buffer.from('ping'), { family: AF_INET, addr: PEER, port: 9999 }), 4);
    const sent = h.link.take()[0].subarray(14);
    h.rx(ipFrame({ proto: 1, payload: icmp(3, 3, 0, sent.subarray(0, 32)) }));
    const e = await c.recvmsg(fd, 64, MSG_ERRQUEUE);
    assert.deepEqual([e.ret, e.data.toString(), e.flags], [4, 'ping', MSG_ERRQUEUE]);
    assert.deepEqual(e.from, { family: AF_INET, addr: PEER, port: 9999 });
    assert.equal(e.cmsgs.length, 1);
    const ee = e.cmsgs[0];
    assert.deepEqual([ee.level, ee.type, ee.data.length], [SOL_IP, IP_RECVERR, 32]);
    assert.deepEqual([ee.data.readUInt32LE(0), ee.data[4], ee.data[5], ee.data[6]], [ECONNREFUSED, SO_EE_ORIGIN_ICMP, 3, 3]);
    assert.equal(ee.data.readUInt32BE(20), PEER_IP, 'the offender: who sent the ICMP error');
    assert.equal(await code(c.recvmsg(fd, 64, MSG_ERRQUEUE)), 'EAGAIN');

    const port = (await c.getsockname(fd)).port;
    h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('in')) }));
    const d = await c.recvmsg(fd, 64);
    assert.deepEqual([d.data.toString(), d.cmsgs.length], ['in', 1]);
    assert.deepEqual([d.cmsgs[0].level, d.cmsgs[0].type, d.cmsgs[0].data.readUInt32BE(8)], [SOL_IP, IP_PKTINFO, STACK_IP]);
    h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('in')) }));
    const cut = await c.recvmsg(fd, 64, 0, 0);
    assert.deepEqual([cut.data.toString(), cut.cmsgs.length, cut.flags & MSG_CTRUNC], ['in', 0, MSG_CTRUNC]);
    // recvfrom has no control buffer at all: the same cut.
    h.rx(ipFrame({ proto: 17, payload: udpHdr(7, port, Buffer.from('in')) }));
    assert.equal((await c.recvfrom(fd, 64)).flags & MSG_CTRUNC, MSG_CTRUNC);

    // MSG_ZEROCOPY datagrams under SO_ZEROCOPY: one id per datagram with data, completed (copied) at once.
    await c.sendto(fd, Buffer.from('z'), { family: AF_INET, addr: PEER, port: 9999 }, MSG_ZEROCOPY);
    assert.equal(await code(c.recvmsg(fd, 0, MSG_ERRQUEUE)), 'EAGAIN', 'no SO_ZEROCOPY: the flag is ignored');
    await c.setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, int(1));
    await c.sendto(fd, Buffer.from('z'), { family: AF_INET, addr: PEER, port: 9999 }, MSG_ZEROCOPY);
    await c.sendto(fd, Buffer.from('z'), { family: AF_INET, addr: PEER, port: 9999 }, MSG_ZEROCOPY);
    const z = await c.recvmsg(fd, 0, MSG_ERRQUEUE);
    const zd = z.cmsgs[0].data;
    assert.deepEqual([zd[4], zd[6], zd.readUInt32LE(8), zd.readUInt32LE(12)], [SO_EE_ORIGIN_ZEROCOPY, SO_EE_CODE_ZEROCOPY_COPIED, 0, 1]);
  } finally {
    c.close();
    server.stop();
  }
});

test('descriptor mode: SO_ZEROCOPY is accepted; sends through the descriptor complete as copied, coalesced, read with MSG_ERRQUEUE; IP_PKTINFO rides on a datagram descriptor', async () => {
  const { h, server, path } = setup();
  const c = new Client({ path, descriptors: true });
  try {
    await c.ready();
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM);
    assert.ok(data >= 0, 'a data descriptor');
    await c.setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, int(1));
    assert.equal(await c.getsockoptInt(fd, SOL_SOCKET, SO_ZEROCOPY), 1);
    assert.equal(await code(c.recvmsg(fd, 0, MSG_ERRQUEUE)), 'EAGAIN');
    await c.zerocopySent(fd, 100);
    await c.zerocopySent(fd, 0);
    await c.zerocopySent(fd, 100);
    const z = await c.recvmsg(fd, 0, MSG_ERRQUEUE);
    assert.deepEqual([z.ret, z.flags, z.cmsgs.length], [0, MSG_ERRQUEUE, 1]);
    const ee = z.cmsgs[0].data;
    assert.deepEqual([ee.readUInt32LE(0), ee[4], ee[6], ee.readUInt32LE(8), ee.readUInt32LE(12)], [0, SO_EE_ORIGIN_ZEROCOPY, SO_EE_CODE_ZEROCOPY_COPIED, 0, 1]);
    assert.equal(await code(c.recvmsg(fd, 0, MSG_ERRQUEUE)), 'EAGAIN');
    // A descriptor-mode datagram socket: IP_PKTINFO rides on the descriptor, between the address and the payload.
    const u = await c.socket(AF_INET, SOCK_DGRAM);
    assert.ok(u.data >= 0);
    await c.bind(u.fd, { family: AF_INET, addr: '0.0.0.0', port: 5300 });
    await c.setsockopt(u.fd, SOL_IP, IP_PKTINFO, int(1));
    h.rx(ipFrame({ proto: 17, payload: udpHdr(7, 5300, Buffer.from('payload')) }));
    await c.getsockoptInt(u.fd, SOL_IP, IP_PKTINFO); // a round trip: the pump has run
    const m = Buffer.alloc(256);
    const n = unixAddon().read(u.data, m, 0, m.length);
    const head = m.readUInt16LE(0);
    assert.equal(head & DGRAM_F_CMSG, DGRAM_F_CMSG);
    const alen = head & ~DGRAM_F_CMSG;
    assert.equal(alen, 8);
    const clen = m.readUInt16LE(2 + alen);
    const cm = m.subarray(4 + alen, 4 + alen + clen);
    assert.deepEqual([Number(cm.readBigUInt64LE(0)), cm.readInt32LE(8), cm.readInt32LE(12), cm.readUInt32BE(20), cm.readUInt32BE(24)], [28, SOL_IP, IP_PKTINFO, STACK_IP, STACK_IP]);
    assert.equal(m.subarray(4 + alen + clen, n).toString(), 'payload');
  } finally {
    c.close();
    server.stop();
  }
});
