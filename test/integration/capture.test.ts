/**
 * tapstack capture: a live pcap stream from the running daemon, read by
 * the kernel's tcpdump while a transfer runs (`tapstack capture tcp port
 * 8081 -w - | tcpdump -r -`): the handshake and the data of an HTTP fetch
 * from the host's curl to `tapstack serve` show up as they happen, with the
 * filter's choice (the ping sent meanwhile does not), and the capture ends
 * when its reader goes. Root only (another user gets EPERM); a bad filter
 * is one line naming it. With --pcapng the stream names the interface and
 * each packet's direction (tshark reads both).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, waitLine, type Daemon } from './netns.js';

const skip = requireIntegration(['curl', 'tcpdump', 'tshark', 'ping', 'setpriv']);
const NOBODY = 65534;
let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('cap');
  api = join(ns.dir, 'api.sock');
  // nobody's group may use the API socket: the non-root case below.
  const cfg = join(ns.dir, 'cap.json');
  writeFileSync(cfg, JSON.stringify({ apiGroup: NOBODY }));
  chmodSync(ns.dir, 0o711);
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api, '--config', cfg]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

test('tapstack capture | tcpdump -r -: a transfer seen live, through the filter; the capture ends with its reader', { skip, timeout: 120_000 }, async () => {
  const sv = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port 8081 --quiet`);
  await waitLine(sv, /serving .* on \[::\]:8081/, 'serve to listen');
  const before = (await daemon.counters()).Api.Captures;
  // tcpdump prints each packet as it reads it (-l), so the test sees them while the capture runs.
  const cap = ns.background(`timeout 60 ${process.execPath} ${CLI} --api ${api} capture tcp port 8081 -w - | timeout 60 tcpdump -l -n -r - 2>&1`);
  // The daemon counts a capture once it runs: then traffic is seen.
  await daemon.waitFor((l) => l.msg === 'api: capture started');
  ns.ok('ping -c 1 -W 5 10.0.0.2 > /dev/null');
  const body = ns.ok(`curl -sS -m 10 http://10.0.0.2:8081/api.md`);
  assert.ok(body.length > 1000);
  // The SYN from the kernel, the stack's SYN-ACK, and data from port 8081 back to the client.
  await waitLine(cap, /10\.0\.0\.1\.\d+ > 10\.0\.0\.2\.8081: Flags \[S\]/, 'the SYN in tcpdump');
  await waitLine(cap, /10\.0\.0\.2\.8081 > 10\.0\.0\.1\.\d+: Flags \[S\.\]/, 'the SYN-ACK in tcpdump');
  await waitLine(cap, /10\.0\.0\.2\.8081 > 10\.0\.0\.1\.\d+: Flags \[P?\.\], seq \d+:\d+, ack \d+, .*length [1-9]/, 'data in tcpdump');
  assert.doesNotMatch(outputOf(cap), /ICMP/, 'the filter leaves the ping out');
  assert.equal((await daemon.counters()).Api.Captures, before + 1);
  // The reader goes (tcpdump killed): the next matching frames find the pipe closed (as tcpdump -w -
  // would), the command ends, and so does the capture in the daemon, which frees the stack's tap.
  ns.sh("pkill -f 'tcpdump -l -n -r -'");
  ns.ok(`curl -sS -m 10 -o /dev/null http://10.0.0.2:8081/api.md`);
  await exitOf(cap);
  await daemon.waitFor((l) => l.msg === 'api: capture ended');
  sv.kill('SIGTERM');
});

test('tapstack capture --pcapng: the interface named and the direction of each packet, read by tcpdump live and tshark after', { skip, timeout: 120_000 }, async () => {
  const sv = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port 8082 --quiet`);
  await waitLine(sv, /serving .* on \[::\]:8082/, 'serve to listen');
  const file = join(ns.dir, 'cap.pcapng');
  const starts = daemon.lines.length;
  const cap = ns.background(`timeout 60 ${process.execPath} ${CLI} --api ${api} capture --pcapng tcp port 8082 -w - | tee ${file} | timeout 60 tcpdump -l -n -r - 2>&1`);
  const started = await daemon.waitFor((l) => l.msg === 'api: capture started' && daemon.lines.indexOf(l) >= starts);
  assert.equal(started.pcapng, true);
  ns.ok('curl -sS -m 10 -o /dev/null http://10.0.0.2:8082/api.md');
  await waitLine(cap, /10\.0\.0\.2\.8082 > 10\.0\.0\.1\.\d+: Flags \[F?P?\.\], seq \d+:\d+, ack \d+, .*length [1-9]/, 'data in tcpdump, from the pcapng stream');
  ns.sh("pkill -f 'capture --pcapng tcp port 8082'");
  await exitOf(cap);
  const rows = ns
    .ok(`tshark -r ${file} -T fields -E separator=, -e frame.interface_name -e frame.packet_flags_direction -e tcp.srcport -e tcp.flags.str 2>/dev/null`)
    .trim()
    .split('\n')
    .map((l) => l.split(','));
  assert.ok(rows.length >= 4, `${rows.length} packets`);
  for (const [ifname, dir, sport] of rows) {
    assert.equal(ifname, 'tap0');
    // epb_flags: 1 inbound (from the host to the stack), 2 outbound.
    assert.equal(Number(dir), sport === '8082' ? 2 : 1, `direction of a packet from port ${sport}`);
  }
  sv.kill('SIGTERM');
});

test('tapstack capture: a bad filter is one line naming the fault', { skip }, () => {
  const r = ns.sh(`timeout 30 ${process.execPath} ${CLI} --api ${api} capture port http -w /dev/null < /dev/null`, 40_000);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), "tapstack: capture: bad filter: 'http' is not a port");
});

test('tapstack capture as a user other than root: refused (EPERM), as a packet socket is, in one line', { skip }, () => {
  const r = ns.sh(`timeout 30 setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${process.execPath} ${CLI} --api ${api} capture -w /dev/null < /dev/null`, 40_000);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), 'tapstack: capture: permission denied (root only, as a packet socket is)');
});
