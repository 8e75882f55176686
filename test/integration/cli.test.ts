/**
 * The `tapstack` command's failure paths and defaults, as a user meets
 * them: every failure is one line on stderr and a non-zero status (never a
 * Node stack trace), `serve` listens on both families by default, `run`
 * takes a program with or without `--`, and the help and check-config
 * outputs say everything they should.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, DAEMON, Netns, ROOT, requireIntegration, waitLine, type Daemon } from './netns.js';

const skip = requireIntegration(['curl']);
let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('cli');
  api = join(ns.dir, 'api.sock');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', api]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

/** `tapstack ARGS` in the namespace, stdin empty. */
function cli(args: string): { status: number | null; stdout: string; stderr: string } {
  const r = ns.sh(`timeout 30 ${process.execPath} ${CLI} --api ${api} ${args} < /dev/null`, 40_000);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A failure as a user should see it: one line, the status given, no stack trace. */
function oneLine(r: { status: number | null; stderr: string }, status: number, re: RegExp, what: string): void {
  assert.equal(r.status, status, `${what}: status (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0], re, what);
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+|Emitted 'error'|node:internal/, `${what}: no stack trace`);
}

test('nc: a refused, unreachable or malformed connect is one line and a non-zero status', { skip, timeout: 120_000 }, () => {
  oneLine(cli('nc 10.0.0.1 9'), 1, /^tapstack: nc: connect to 10\.0\.0\.1:9: connection refused \(ECONNREFUSED\)$/, 'refused by the kernel');
  oneLine(cli('nc 10.0.0.77 9'), 1, /^tapstack: nc: connect to 10\.0\.0\.77:9: host is unreachable \(EHOSTUNREACH\)$/, 'nobody answers ARP');
  // Our own address: the RST comes back through the loopback before the connect's reply (it was ENOTCONN).
  oneLine(cli('nc 10.0.0.2 1'), 1, /^tapstack: nc: connect to 10\.0\.0\.2:1: connection refused \(ECONNREFUSED\)$/, 'refused by the stack itself');
  oneLine(cli('nc fd00::1 9'), 1, /^tapstack: nc: connect to \[fd00::1\]:9: connection refused \(ECONNREFUSED\)$/, 'refused over IPv6');
  oneLine(cli('nc 10.0.0.1 99999'), 2, /^tapstack: nc: 99999 is not a port/, 'a port out of range');
  oneLine(cli('nc some.name 80'), 2, /is not an IP address/, 'a name');
  oneLine(cli('nc -l 80'), 1, /^tapstack: nc: listen on \[::\]:80: address already in use \(EADDRINUSE\)$/, 'a port the HTTP service holds');
  oneLine(cli('bogus'), 2, /^tapstack: /, 'an unknown command');
});

test('serve: both families by default, the address printed as [::]:PORT; a port in use is one line', { skip, timeout: 60_000 }, async () => {
  oneLine(cli('serve /tmp --port 80'), 1, /^tapstack: serve: listen on \[::\]:80: address already in use \(EADDRINUSE\)$/, 'port in use');
  oneLine(cli('serve /nonexistent'), 2, /no such directory/, 'no directory');
  const sv = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port 8081 --quiet`);
  await waitLine(sv, /serving .* on \[::\]:8081/, 'serve to listen');
  for (const url of ['http://10.0.0.2:8081/api.md', 'http://[fd00::2]:8081/api.md']) {
    assert.equal(ns.ok(`curl -sS --max-time 10 -o /dev/null -w '%{http_code}' ${url}`), '200', url);
  }
  sv.kill('SIGTERM');
});

test('run: the program with or without --, its own options untouched, --api and --help before it', { skip, timeout: 60_000 }, () => {
  assert.equal(cli('run true').status, 0, 'run true');
  assert.equal(cli('run -- false').status, 1, 'the program\'s status');
  const echo = cli('run echo -n hi');
  assert.equal(echo.stdout, 'hi', 'echo -n: the -n is the program\'s');
  assert.equal(cli(`run --api ${api} -- true`).status, 0, '--api after run');
  const help = cli('run --help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /tapstack run \[--api PATH\] \[--\] CMD/);
  oneLine(cli('run'), 2, /name a command/, 'no command');
  oneLine(cli('run nosuchprogram'), 127, /command not found/, 'a program that does not exist');
});

test('a closed stdout (| head) ends a command quietly; check-config and --help say everything', { skip, timeout: 60_000 }, () => {
  const piped = ns.sh(`${process.execPath} ${CLI} --api ${api} stats | head -1`, 30_000);
  assert.equal(piped.stderr, '', `no EPIPE trace: ${piped.stderr}`);
  const cc = spawnSync(process.execPath, [CLI, 'check-config'], { encoding: 'utf8' });
  assert.equal(cc.status, 0);
  const conf = JSON.parse(cc.stdout) as Record<string, unknown>;
  for (const k of ['tap', 'ipv4', 'services', 'fault', 'sysctl', 'apiMaxSockets', 'apiMaxBuffered', 'ipv6Slaac', 'offload']) assert.ok(k in conf, `check-config shows ${k}`);
  const dh = spawnSync(process.execPath, [DAEMON, '--help'], { encoding: 'utf8' });
  assert.equal(dh.status, 0);
  assert.match(dh.stdout, /Defaults \(.*default\.json\):\n {2}--tap +tap0\n/, 'tapstackd --help: each flag\'s default');
  assert.match(dh.stdout, /Keys only a --config file sets[^\n]*\n(?: {2}\w+ +.*\n)*? {2}services /, 'tapstackd --help: the config-only keys');
});
