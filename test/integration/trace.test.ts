/**
 * tapstack trace: the TCP events of a real connection, live. The host's
 * curl fetches a file from `tapstack serve` while `tapstack trace 'sport =
 * :8081'` runs; its JSON lines show the connection from ESTABLISHED to its
 * close, the data segments out and the ACKs in, the tcp_probe values after
 * each ACK, all with the connection's addresses, and nothing of a second
 * server's connection that the filter leaves out. The trace ends when its
 * reader goes; the saved lines are what `tapstack plot` draws. Root only (another user gets EPERM); a bad filter is one line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, waitLine, type Daemon } from './netns.js';

const skip = requireIntegration(['curl', 'setpriv']);
const NOBODY = 65534;
let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('trc');
  api = join(ns.dir, 'api.sock');
  const cfg = join(ns.dir, 'trc.json');
  writeFileSync(cfg, JSON.stringify({ apiGroup: NOBODY }));
  chmodSync(ns.dir, 0o711);
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api, '--config', cfg]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

test('tapstack trace: a transfer from ESTABLISHED to the close, through the filter; the trace ends with its reader', { skip, timeout: 120_000 }, async () => {
  const sv = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port 8081 --quiet`);
  const other = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port 8082 --quiet`);
  await waitLine(sv, /serving .* on \[::\]:8081/, 'serve to listen on 8081');
  await waitLine(other, /serving .* on \[::\]:8082/, 'serve to listen on 8082');
  const before = (await daemon.counters()).Api.Traces;
  const tr = ns.background(`timeout 60 ${process.execPath} ${CLI} --api ${api} trace 'sport = :8081'`);
  await daemon.waitFor((l) => l.msg === 'api: trace started');
  assert.equal((await daemon.counters()).Api.Traces, before + 1);
  ns.ok('curl -sS -m 10 -o /dev/null http://10.0.0.2:8082/api.md');
  const body = ns.ok('curl -sS -m 10 http://10.0.0.2:8081/api.md');
  assert.ok(body.length > 1000);
  // The server closes after the response (Connection: close from curl's HTTP/1.1 keeps it open
  // until curl closes); either way the socket leaves ESTABLISHED, and the trace says so.
  await waitLine(tr, /"ev":"state".*"old":"ESTABLISHED"/, 'the connection leaving ESTABLISHED');
  const recs = outputOf(tr)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(recs.length > 5, `${recs.length} records`);
  for (const r of recs) {
    assert.equal(r.sport, 8081, 'only the filtered server');
    assert.equal(r.saddr, '10.0.0.2');
    assert.equal(r.daddr, '10.0.0.1');
    assert.equal(r.family, 4);
    assert.equal(typeof r.ts, 'number');
  }
  const data = recs.filter((r) => r.ev === 'xmit' && (r.len as number) > 0);
  const sent = data.reduce((n, r) => n + (r.len as number), 0);
  assert.ok(sent >= body.length, `the response's bytes went out (${sent} >= ${body.length})`);
  assert.ok(recs.some((r) => r.ev === 'rcv' && (r.len as number) > 0), 'the request came in');
  const probe = recs.find((r) => r.ev === 'probe');
  assert.ok(probe, 'a tcp_probe record after an ACK');
  assert.ok((probe!.cwnd as number) >= 10 && (probe!.srtt_us as number) > 0 && probe!.ca_state === 'Open', JSON.stringify(probe));
  // The same lines, saved, are what tapstack plot draws: the connection, the response's bytes
  // sent by the traced socket, a time-sequence graph with segments and a congestion graph with cwnd.
  const saved = join(ns.dir, 'conn.jsonl');
  writeFileSync(saved, outputOf(tr).split('\n').filter((l) => l.startsWith('{')).join('\n') + '\n');
  const list = ns.ok(`${process.execPath} ${CLI} plot ${saved} --list`);
  const row = /10\.0\.0\.2:8081 +10\.0\.0\.1:\d+ +(\d+) +(\d+)/.exec(list);
  assert.ok(row && Number(row[1]) >= body.length, `the connection, with the response's bytes out: ${list}`);
  const prefix = join(ns.dir, 'conn');
  ns.ok(`${process.execPath} ${CLI} plot ${saved} -o ${prefix}`);
  const svg = readFileSync(`${prefix}.svg`, 'utf8');
  for (const series of ['segs', 'acks', 'cwnd', 'inflight']) {
    const n = new RegExp(`class="series s-${series}" data-n="(\\d+)"`).exec(svg);
    assert.ok(n && Number(n[1]) > 0, `the ${series} series has marks`);
  }
  // The reader goes: the next records find the pipe closed, and the daemon ends the trace.
  tr.kill('SIGKILL');
  ns.sh("pkill -f 'trace sport = :8081'");
  ns.ok('curl -sS -m 10 -o /dev/null http://10.0.0.2:8081/api.md');
  await exitOf(tr);
  await daemon.waitFor((l) => l.msg === 'api: trace ended');
  sv.kill('SIGTERM');
  other.kill('SIGTERM');
});

test('tapstack trace: a bad filter is one line naming the fault', { skip }, () => {
  const r = ns.sh(`timeout 30 ${process.execPath} ${CLI} --api ${api} trace dport = :http < /dev/null`, 40_000);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'tapstack: trace: bad filter: dport: "http" is not a port (0-65535)');
});

test('tapstack trace as a user other than root: refused (EPERM), in one line', { skip }, () => {
  const r = ns.sh(`timeout 30 setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${process.execPath} ${CLI} --api ${api} trace < /dev/null`, 40_000);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), 'tapstack: trace: permission denied (root only, as tracefs is)');
});
