/**
 * The packetdrill runner itself: the lexer and parser, the packet matcher
 * (a wrong expected field, a missing packet, an unexpected one, timing,
 * adding-up of segments), system-call checks, the shell/sysctl mapping and
 * the `%{ }%` evaluator. Scripts here are written for the tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lex, parseScript, ParseError } from '../drill/parse.js';
import { runScript } from '../drill/run.js';
import { runShell, RegistryTarget, ShellFailed, Unsupported } from '../drill/shell.js';
import { nstat } from '../drill/nstat.js';
import { AssertionFailed, runPython } from '../drill/pyexpr.js';
import { Stack } from '../../src/net/stack.js';
import { MemLink } from '../../src/drivers/memlink.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';

// defaults.sh's buffers (the SYN-ACK's wscale 8 comes from tcp_rmem), then packetdrill's usual preamble.
const PASSIVE = `\`sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))" net.ipv4.tcp_wmem="4096 $((256*1024)) 4194304"\`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
  +.1 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
`;

function run(src: string) {
  return runScript(src, '/nonexistent/t.pkt').outcome;
}

test('lexer: times, ranges, ellipses, flags, code and commands', () => {
  const t = lex('+.1...0.200 read(4, ..., 2000) = 2000\n*  > P. 1:1001(1000)\n0.1~0.2 %{ x = 1 }%\n`echo hi`');
  const kinds = t.map((x) => x.t + ('v' in x ? `:${x.v}` : '')).join(' ');
  assert.equal(
    kinds,
    'p:+ num:0.1 ell num:0.2 word:read p:( num:4 p:, ell p:, num:2000 p:) p:= num:2000 p:* p:> word:P p:. num:1 p:: num:1001 p:( num:1000 p:) num:0.1 p:~ num:0.2 code: x = 1  cmd:echo hi eof',
  );
});

test('parser: options, init command, packets with options, syscalls with structs and iovecs', () => {
  const s = parseScript(`--tolerance_usecs=10000
\`sysctl -q net.ipv4.tcp_min_tso_segs=10\`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
 +.3~+.4 > [ect0] F. 1:1(0) ack 1 win 256 <nop,nop,TS val 100 ecr 0,sack 1:2 3:4>
   +0 sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 10}, {..., 20}], msg_flags=0}, MSG_MORE|MSG_EOR) = 30
   +0 poll([{fd=4, events=POLLOUT, revents=POLLOUT}], 1, 1000) = 1
   +0 write(4, ..., 1000) = -1 EPIPE (Broken pipe)
   * %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%
\`/tmp/sysctl_restore_\${PPID}.sh\`
`);
  assert.equal(s.options.get('tolerance_usecs'), '10000');
  assert.equal(s.init.length, 1);
  assert.equal(s.cleanup.length, 1);
  assert.equal(s.events.length, 6);
  const p = s.events[1];
  assert.deepEqual(p.time, { type: 'rel', t: 0.3, end: 0.4 });
  assert.equal(p.action.k, 'packet');
  if (p.action.k !== 'packet') return;
  assert.equal(p.action.p.flags, 'F.');
  assert.equal(p.action.p.ecn, 'ect0');
  assert.equal(p.action.p.win, 256);
  assert.deepEqual(p.action.p.opts, [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'TS', val: 100, ecr: 0 }, { kind: 'sack', blocks: [[1, 2], [3, 4]] }]);
  const sm = s.events[2].action;
  assert.equal(sm.k, 'syscall');
  if (sm.k !== 'syscall') return;
  assert.equal(sm.s.args[1].k, 'struct');
  assert.equal(sm.s.args[2].k, 'or');
  const w = s.events[4].action;
  if (w.k !== 'syscall') return assert.fail('syscall');
  assert.deepEqual(w.s.ret, { k: 'int', v: -1 });
  assert.equal(w.s.errno, 'EPIPE');
  assert.equal(w.s.note, 'Broken pipe');
  assert.equal(s.events[5].time.type, 'any');
});

test('parser: a sequence range that does not match its length is an error with its line', () => {
  assert.throws(
    () => parseScript('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > P. 1:1001(100) ack 1\n'),
    (e: unknown) => e instanceof ParseError && e.line === 2 && /does not match length/.test(e.message),
  );
});

test('matcher: a script that matches the stack passes', () => {
  const o = run(PASSIVE + '   +0 write(4, ..., 1000) = 1000\n   +0 > P. 1:1001(1000) ack 1 win 256\n +.1 < . 1:1(0) ack 1001 win 257\n');
  assert.equal(o.status, 'pass', JSON.stringify(o));
});

// PASSIVE's five calls take 2 us each (the runner's call time): what follows starts at 0.200010, and a
// write there sends at 0.200011 and returns at 0.200012.
test('matcher: a wrong expected field fails with packetdrill-style message', () => {
  const o = run(PASSIVE + '   +0 write(4, ..., 1000) = 1000\n   +0 > P. 1:1001(1000) ack 2\n');
  assert.equal(o.status, 'fail');
  if (o.status !== 'fail') return;
  assert.match(o.message, /^t\.pkt:11: error handling packet: live packet field tcp_ack_seq: expected: 2 \(0x2\) vs actual: 1 \(0x1\)/);
  assert.match(o.message, /script packet: {2}0\.200012 P\. 1:1001\(1000\) ack 2/);
  assert.match(o.message, /actual packet: {2}0\.200011 P\. 1:1001\(1000\) ack 1 win 256/);
});

test('matcher: wrong options, window and flags are caught', () => {
  let o = run(PASSIVE.replace('<mss 1460,nop,nop,sackOK,nop,wscale 8>', '<mss 1460,sackOK,nop,nop,nop,wscale 8>'));
  assert.equal(o.status, 'fail');
  assert.match((o as { message: string }).message, /TCP options: expected: <mss 1460,sackOK,nop,nop,nop,wscale 8> vs actual: <mss 1460,nop,nop,sackOK,nop,wscale 8>/);
  o = run(PASSIVE + '   +0 write(4, ..., 1000) = 1000\n   +0 > P. 1:1001(1000) ack 1 win 255\n');
  assert.match((o as { message: string }).message, /tcp_window: expected: 255/);
  o = run(PASSIVE + '   +0 write(4, ..., 1000) = 1000\n   +0 > F. 1:1001(1000) ack 1\n');
  assert.match((o as { message: string }).message, /tcp_flags: expected: F\. vs actual: P\./);
});

test('matcher: an unexpected outbound packet fails the script', () => {
  // The write's data segment is not in the script: it is what shows up where the ACK was expected.
  const o = run(PASSIVE + '   +0 write(4, ..., 1000) = 1000\n +.1 < P. 1:101(100) ack 1 win 257\n   +0 > . 1:1(0) ack 101\n');
  assert.equal(o.status, 'fail');
  assert.match((o as { message: string }).message, /t\.pkt:12: error handling packet: live packet payload: expected 0 bytes vs actual 1000 bytes/);
});

test('matcher: a missing packet times out; an early or late one is a timing error', () => {
  let o = run(PASSIVE + '   +0 > P. 1:1001(1000) ack 1\n');
  assert.match((o as { message: string }).message, /t\.pkt:10: error handling packet: timed out waiting for outbound packet at 0\.200010 sec/);
  o = run(PASSIVE + '   +0 write(4, ..., 1000) = 1000\n  +.1 > P. 1:1001(1000) ack 1\n');
  assert.match((o as { message: string }).message, /timing error: expected outbound packet at 0\.300012 sec but happened at 0\.200011 sec; tolerance 0\.012500 sec/);
});

test('matcher: consecutive segments add up unless --strict_segments; more data than expected fails', () => {
  const tsoOff = '`ethtool -K tun0 tso off gso off`\n';
  const body = PASSIVE + '   +0 write(4, ..., 3000) = 3000\n   +0 > P. 1:3001(3000) ack 1\n';
  assert.equal(run(tsoOff + body).status, 'pass');
  const strict = run('--strict_segments\n' + tsoOff + body);
  assert.match((strict as { message: string }).message, /payload: expected 3000 bytes vs actual 1000 bytes/);
  // The sum takes the last part's flags (packetdrill's aggregate_packets): PSH comes from the 500-byte tail.
  const sum = run(tsoOff + PASSIVE + '   +0 write(4, ..., 2500) = 2500\n   +0 > . 1:2501(2500) ack 1\n');
  assert.match((sum as { message: string }).message, /tcp_flags: expected: \. vs actual: P\./);
  // With TSO on, the stack sends 2000-byte super-segments (tcp_min_tso_segs 2): expecting 1000 is "more data than expected".
  const more = run(PASSIVE + '   +0 write(4, ..., 3000) = 3000\n   +0 > . 1:1001(1000) ack 1\n');
  assert.match((more as { message: string }).message, /payload: expected 1000 bytes vs actual 2000 bytes/);
});

test('syscalls: return values, errno names, blocking ranges', () => {
  let o = run(PASSIVE + '   +0 shutdown(4, SHUT_WR) = 0\n   +0 > F. 1:1(0) ack 1\n   +0 write(4, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)\n');
  assert.match((o as { message: string }).message, /t\.pkt:12: runtime error in write call: Expected errno 11 \(EAGAIN\) but got 32 \(EPIPE\)/);
  o = run(PASSIVE + '   +0 getsockopt(4, SOL_SOCKET, SO_SNDBUF, [1], [4]) = 0\n');
  assert.match((o as { message: string }).message, /Bad getsockopt optval: expected: 1 actual: \d+/);
  // A read blocks until data arrives at +.1, within its ...0.100 range.
  assert.equal(run(PASSIVE + '   +0...0.100 read(4, ..., 100) = 100\n  +.1 < P. 1:101(100) ack 1 win 257\n').status, 'pass');
  // Expected to return at 0.300 but the data comes at 0.200.
  o = run(PASSIVE + '   +0...0.100 read(4, ..., 100) = 100\n  +0 < P. 1:101(100) ack 1 win 257\n');
  assert.match((o as { message: string }).message, /timing error: expected read syscall to return at 0\.300010 sec but happened at 0\.200011 sec/);
  // A call not marked as blocking that blocks.
  o = run(PASSIVE + '   +0 read(4, ..., 100) = 100\n');
  assert.match((o as { message: string }).message, /read call did not return/);
});

test('shell lines: sysctls map onto the stack, anything else is unsupported', () => {
  const stack = new Stack({ ifname: 't', mac: Buffer.alloc(6, 2), mtu: 1500, ipv4: [], gateway: 0 }, new MemLink(), new VirtualTime(), new SeededRandom(1));
  const s = stack.tcp.sysctl;
  const env = { sysctl: new RegistryTarget(stack), setTso: () => {}, dir: '/nonexistent', saved: [] as [string, string][] };
  runShell(env, 'sysctl -q net.ipv4.tcp_wmem="4096 $((256*1024)) 4194304" net.ipv4.tcp_fin_timeout=30');
  assert.deepEqual(s.tcp_wmem, [4096, 262144, 4194304]);
  assert.equal(s.tcp_fin_timeout, 30_000);
  runShell(env, '../common/set_sysctls.py /proc/sys/net/ipv4/tcp_min_tso_segs=10 \\\n /proc/sys/net/ipv4/tcp_slow_start_after_idle=0');
  assert.equal(s.tcp_min_tso_segs, 10);
  runShell(env, '/tmp/sysctl_restore_${PPID}.sh');
  assert.equal(s.tcp_min_tso_segs, 2);
  assert.equal(s.tcp_slow_start_after_idle, 1);
  assert.throws(() => runShell(env, 'sysctl -q net.ipv4.tcp_fack=1'), (e: unknown) => e instanceof Unsupported && /tcp_fack=1: not in the stack/.test(e.message));
  runShell(env, 'sysctl -q net.ipv4.tcp_pacing_ss_ratio=150');
  assert.equal(s.tcp_pacing_ss_ratio, 150);
  assert.throws(() => runShell(env, 'sysctl -q net.ipv4.tcp_sack=7'), (e: unknown) => e instanceof Unsupported && /tcp_sack: 7 is out of range/.test(e.message));
  assert.throws(() => runShell(env, 'echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect'), Unsupported);
  const o = run('`ip link set tun0 mtu 1400`\n' + PASSIVE);
  assert.deepEqual(o, { status: 'unsupported', reason: "shell command 'ip link set tun0 mtu 1400'" });
});

test('shell lines: nstat prints what changed since its last call, and a grep that finds nothing fails the line', () => {
  const stack = new Stack({ ifname: 't', mac: Buffer.alloc(6, 2), mtu: 1500, ipv4: [], gateway: 0 }, new MemLink(), new VirtualTime(), new SeededRandom(1));
  const nstatEnv = { counters: () => stack.counters(), history: null as Map<string, number> | null };
  const env = { sysctl: new RegistryTarget(stack), setTso: () => {}, dir: '/nonexistent', saved: [] as [string, string][], nstat: nstatEnv };
  const ext = stack.mibs.TcpExt;
  ext.OutOfWindowIcmps = 3;
  // The first call: since zero (no history), then remembered.
  assert.equal(nstat(nstatEnv, []), '#kernel\nTcpExtOutOfWindowIcmps          3                  0.0\n');
  runShell(env, 'nstat > /dev/null');
  assert.throws(() => runShell(env, 'nstat | grep TcpExtOutOfWindowIcmps > /dev/null'), ShellFailed);
  ext.OutOfWindowIcmps++;
  runShell(env, 'nstat | grep TcpExtOutOfWindowIcmps > /dev/null');
  // The grep above consumed the change: nothing new since.
  assert.throws(() => runShell(env, 'nstat | grep -q OutOfWindow'), ShellFailed);
  assert.match(nstat(nstatEnv, ['-az', 'TcpExtOutOfWindow*']), /TcpExtOutOfWindowIcmps +4 /);
  assert.throws(() => runShell(env, 'nstat | sort'), Unsupported);
  // In a script, the failing line fails the run at its line.
  const o = run('`nstat > /dev/null`\n`nstat | grep TcpExtOutOfWindowIcmps > /dev/null`\n' + PASSIVE);
  assert.equal(o.status, 'fail');
  assert.match((o as { message: string }).message, /:2: grep TcpExtOutOfWindowIcmps: no match/);
});

test('%{ }%: assignments, chained comparisons, failing asserts', () => {
  const vars = new Map<string, number>();
  const look = (n: string) => ({ tcpi_x: 1000, tcpi_y: 7 })[n] ?? assert.fail(n);
  runPython('LIMIT = 0x7fffffff\nassert 990 <= tcpi_x <= 1010, tcpi_x; assert tcpi_y == 7 and not tcpi_y > 7', vars, look);
  assert.equal(vars.get('LIMIT'), 0x7fffffff);
  assert.throws(() => runPython('assert tcpi_y == LIMIT, tcpi_y', vars, look), (e: unknown) => e instanceof AssertionFailed && e.detail === '7');
});

test('%{ }%: a backslash at the end of a line joins the next, as Python reads it', () => {
  const vars = new Map<string, number>();
  const look = (n: string) => ({ tcpi_x: 1000, tcpi_y: 7 })[n] ?? assert.fail(n);
  runPython(' assert tcpi_x == 1000, tcpi_x;\\\n       assert tcpi_y == \\\n 7, tcpi_y;\\\n', vars, look);
  assert.throws(() => runPython('assert tcpi_x == 1000; \\\n assert tcpi_y == 8, tcpi_y', vars, look), (e: unknown) => e instanceof AssertionFailed && e.detail === '7');
});

test('TCP_INQ: recvmsg reports the bytes left, 1 after the FIN; none without TCP_INQ', () => {
  const recv = (n: number, inq: number) =>
    `   +0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., ${n}}], msg_flags=0, msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=${inq}}]}, 0) = ${n}\n`;
  const body = '  +.1 < P. 1:3001(3000) ack 1 win 257\n' + recv(1000, 2000) + '   +0 < F. 3001:3001(0) ack 1 win 257\n' + recv(2000, 1) + '   +0 read(4, ..., 10) = 0\n';
  const on = '   +0 setsockopt(4, SOL_TCP, TCP_INQ, [1], 4) = 0\n   +0 getsockopt(4, SOL_TCP, TCP_INQ, [1], [4]) = 0\n';
  assert.equal(run(PASSIVE + on + body).status, 'pass');
  const off = run(PASSIVE + body);
  assert.match((off as { message: string }).message, /expected a TCP_CM_INQ control message, got none/);
});

test('module parameters: tcp_cubic ones are set for the stack of that run only', async () => {
  const { CubicParams } = await import('../../src/net/ipv4/tcp_cubic.js');
  const o = run('`echo 1 > /sys/module/tcp_cubic/parameters/hystart_detect`\n' + PASSIVE + '   +0 %{ x = 1 }%\n');
  assert.equal(o.status, 'pass', JSON.stringify(o));
  assert.notEqual(new CubicParams().hystartDetect, 1, 'the default differs from what the script set');
  const other = new Stack({ ifname: 'x', mac: Buffer.from([2, 0, 0, 0, 0, 1]), mtu: 1500, ipv4: [], gateway: 0 }, new MemLink(), new VirtualTime(0), new SeededRandom(1));
  const cubic = other.tcp.congestion.find('cubic') as import('../../src/net/ipv4/tcp_cubic.js').TcpCubicOps;
  assert.equal(cubic.params.hystartDetect, new CubicParams().hystartDetect, 'another stack keeps the default');
  const bad = run('`echo 1 > /sys/module/tcp_cubic/parameters/beta`\n' + PASSIVE);
  assert.equal(bad.status, 'unsupported');
  assert.match((bad as { reason: string }).reason, /parameter tcp_cubic\.beta not in the stack/);
});

test('epoll level-triggered keeps reporting until read; poll times out on the virtual clock', () => {
  const lt =
    '   +0 epoll_create(1) = 5\n' +
    '   +0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, fd=4}) = 0\n' +
    '   +0 epoll_wait(5, {events=0, fd=4}, 1, 0) = 0\n' +
    '  +.1 < P. 1:101(100) ack 1 win 257\n' +
    '   +0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1\n' +
    '   +0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1\n' +
    '   +0 read(4, ..., 100) = 100\n' +
    '   +0 epoll_wait(5, {events=0, fd=4}, 1, 0) = 0\n' +
    // Blocks until the data at +.05, inside its 0.1 s range.
    '   +0...0.050 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 100) = 1\n' +
    ' +.05 < P. 101:201(100) ack 1 win 257\n';
  assert.equal(run(PASSIVE + lt).status, 'pass');
  const to = '   +0...0.250 poll([{fd=4, events=POLLIN, revents=0}], 1, 250) = 0\n';
  assert.equal(run(PASSIVE + to).status, 'pass');
  const early = run(PASSIVE + '   +0...0.100 poll([{fd=4, events=POLLIN, revents=0}], 1, 250) = 0\n');
  assert.match((early as { message: string }).message, /poll call did not return|timing error: expected poll syscall to return/);
});

test('%{ }% reads TCP_INFO of the script socket at that moment', () => {
  assert.equal(run(PASSIVE + '   +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd; assert tcpi_state == 1 }%\n').status, 'pass');
  const o = run(PASSIVE + '   +0 %{\nassert tcpi_snd_mss == 1000, tcpi_snd_mss\nassert tcpi_snd_cwnd == 11, tcpi_snd_cwnd\n}%\n');
  assert.match((o as { message: string }).message, /^t\.pkt:10: assertion failed: tcpi_snd_cwnd == 11 \(10\)/);
  const bad = run(PASSIVE + '   +0 %{ assert tcpi_no_such_field == 1 }%\n');
  assert.match((bad as { message: string }).message, /error in Python code: TCP_INFO has no tcpi_no_such_field/);
  const py = run(PASSIVE + '   +0 %{ print(tcpi_snd_cwnd) }%\n');
  assert.equal(py.status, 'unsupported');
});

test('IPv6 run: the preamble plays over IPv6 (MSS 1460 from MTU 1520), the socket is AF_INET6, the frames are IPv6', () => {
  const { outcome, run: r } = runScript(PASSIVE, '/nonexistent/t.pkt', { family: 'ipv6' });
  assert.equal(outcome.status, 'pass', JSON.stringify(outcome));
  assert.ok(r);
  const socks = [...r.stack.tcp.socks];
  assert.ok(socks.length >= 2);
  for (const sk of socks) assert.equal(sk.family, 10);
  const child = socks.find((s) => s.state === 1)!;
  assert.equal(child.ipv6, true);
  assert.equal(child.advmss, 1460);
  // The SYN-ACK really went out as IPv6 through the stack's IPv6 layer, checksummed over its pseudo-header.
  assert.equal(r.outLog.length, 1);
  assert.ok(r.outLog[0].tcpCsumOk && r.outLog[0].ipCsumOk);
  assert.equal(r.stack.mibs.Ip6.InReceives, 2, 'the SYN and the ACK came in through ipv6_rcv');
  assert.ok(r.stack.mibs.Ip6.OutRequests >= 1);
  assert.equal(r.stack.mibs.Ip.InReceives, 0, 'nothing over IPv4');
});

test('IPv6 run: a wrong mss in the script fails as it would on Linux (no silent remapping)', () => {
  const src = PASSIVE.replace('<mss 1460,nop,nop,sackOK,nop,wscale 8>', '<mss 1440,nop,nop,sackOK,nop,wscale 8>');
  const o = runScript(src, '/nonexistent/t.pkt', { family: 'ipv6' }).outcome;
  assert.equal(o.status, 'fail');
  assert.match(o.status === 'fail' ? o.message : '', /mss/);
});

test('ipv4-mapped-ipv6 run: an AF_INET6 socket bound to ::ffff:192.168.0.1 talks IPv4', () => {
  const { outcome, run: r } = runScript(PASSIVE, '/nonexistent/t.pkt', { family: 'ipv4-mapped-ipv6' });
  assert.equal(outcome.status, 'pass', JSON.stringify(outcome));
  const child = [...r!.stack.tcp.socks].find((s) => s.state === 1)!;
  assert.equal(child.family, 10);
  assert.equal(child.ipv6, false);
  assert.equal(child.daddr >>> 0, 0xc0000201);
});

test('a script\'s own --remote_ip gives way to the run\'s (the command line wins, as in packetdrill): an IPv4 one in an IPv6 run plays over IPv6', () => {
  const { outcome, run: r } = runScript('--remote_ip=192.0.2.1\n--local_ip=192.168.0.1\n' + PASSIVE, '/nonexistent/t.pkt', { family: 'ipv6' });
  assert.equal(outcome.status, 'pass', JSON.stringify(outcome));
  assert.ok(outcome.status === 'pass' && outcome.notes.some((n) => /--remote_ip=192\.0\.2\.1: the ipv6 run uses fd3d:fa7b:d17d::1/.test(n)), JSON.stringify(outcome));
  assert.equal(r!.stack.mibs.Ip.InReceives, 0, 'nothing over IPv4');
});

test('a script naming --ip_version runs in that family only', () => {
  const src = `--ip_version=ipv6\n${PASSIVE}`;
  assert.equal(runScript(src, '/nonexistent/t.pkt', { family: 'ipv4' }).outcome.status, 'unsupported');
  assert.equal(runScript(src, '/nonexistent/t.pkt', { family: 'ipv6' }).outcome.status, 'pass');
});

test('inbound ICMP: "< icmp unreachable frag_needed mtu 600 [1:1001(1000)]" reaches the connection (PMTU 600: the stack resends at MSS 560); IPv6 runs take packet_too_big, and a name packetdrill lacks fails the run', () => {
  const base = PASSIVE + '   +0 write(4, ..., 2000) = 2000\n   +0 > P. 1:2001(2000) ack 1\n';
  const v4 = runScript(base + ' +.01 < icmp unreachable frag_needed mtu 600 [1:1001(1000)]\n', '/nonexistent/t.pkt', { family: 'ipv4' });
  assert.equal(v4.outcome.status, 'pass', JSON.stringify(v4.outcome));
  const child = [...v4.run!.stack.tcp.socks].find((s) => s.state === 1)!;
  assert.equal(child.mssCache, 560);
  const resent = v4.run!.outLog.filter((s) => s.at > 0.205 && s.seq === 1);
  assert.equal(resent.length, 1, 'the ICMP made the stack resend from the first byte at once');
  assert.ok(resent[0].len <= 2 * 560 && resent[0].len % 560 === 0);
  // An echoed sequence outside the window is ignored (tcp_v4_err's check): no resend, the MSS stays.
  const out = runScript(base + ' +.01 < icmp unreachable frag_needed mtu 600 [5000:6000(1000)]\n', '/nonexistent/t.pkt', { family: 'ipv4' });
  assert.equal(out.outcome.status, 'pass', JSON.stringify(out.outcome));
  assert.equal([...out.run!.stack.tcp.socks].find((s) => s.state === 1)!.mssCache, 1000);
  const v6 = runScript(base + ' +.01 < icmp packet_too_big mtu 1280 [1:1001(1000)]\n', '/nonexistent/t.pkt', { family: 'ipv6' });
  assert.equal(v6.outcome.status, 'pass', JSON.stringify(v6.outcome));
  assert.equal(v6.run!.stack.mibs.Icmp6.InPktTooBigs, 1);
  const bad = runScript(base + ' +.01 < icmp unreachable frag_needed mtu 600 [1:1001(1000)]\n', '/nonexistent/t.pkt', { family: 'ipv6' });
  assert.equal(bad.outcome.status, 'fail');
  assert.match(bad.outcome.status === 'fail' ? bad.outcome.message : '', /bad ICMPv6 code frag_needed/);
});

test('runner: the peer starts at the seq its SYN says; later seqs, our acks and SACK blocks count from it, the SYN-ACK\'s ack is absolute', () => {
  const src = `\`sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))" net.ipv4.tcp_wmem="4096 $((256*1024)) 4194304"\`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
  +.1 < S 1000:1000(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1001 <mss 1460,nop,nop,sackOK,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 < P. 1:11(10) ack 1 win 257
   +0 > . 1:1(0) ack 11
   +0 < P. 21:31(10) ack 1 win 257
   +0 > . 1:1(0) ack 11 <nop,nop,sack 21:31>
`;
  assert.deepEqual(run(src), { status: 'pass', notes: [] });
  // The old reading (every seq relative to 0): the ACK of 1:11 is off by the ISN.
  assert.equal(run(src.replace('ack 1001', 'ack 1')).status, 'fail');
});

test('runner: an outbound SYN matches whatever seq the script gives it (packetdrill maps our ISN onto it)', () => {
  const out = run(PASSIVE.replace('> S. 0:0(0) ack 1', '> S. 5000:5000(0) ack 1') + '   +0 write(4, ..., 10) = 10\n   +0 > P. 1:11(10) ack 1\n');
  assert.deepEqual(out, { status: 'pass', notes: [] });
});

test('shell: tc qdisc pfifo limit 0 makes the device drop, delete restores it; `;` separates commands; fq is not modelled', () => {
  const stack = new Stack({ ifname: 't', mac: Buffer.alloc(6, 2), mtu: 1500, ipv4: [], gateway: 0 }, new MemLink(), new VirtualTime(), new SeededRandom(1));
  const seen: (boolean | null)[] = [];
  const env = { sysctl: new RegistryTarget(stack), setTso: () => {}, dir: '/nonexistent', saved: [] as [string, string][], setQdisc: (d: boolean | null) => seen.push(d) };
  runShell(env, 'tc qdisc delete dev tun0 root 2>/dev/null ; tc qdisc add dev tun0 root pfifo limit 0');
  runShell(env, 'tc qdisc replace dev tun0 root pfifo');
  assert.deepEqual(seen, [null, true, false]);
  assert.throws(() => runShell(env, 'tc qdisc replace dev tun0 root fq'), (e: unknown) => e instanceof Unsupported && /fq is not modelled/.test(e.message));
});

test('runner: SOL_IP, TCP_LINGER2 and TCP_DEFER_ACCEPT options by name', () => {
  const out = run(
    PASSIVE +
      `   +0 setsockopt(4, SOL_IP, IP_TOS, [4], 1) = 0
   +0 getsockopt(4, SOL_IP, IP_TOS, [4], [4]) = 0
   +0 setsockopt(4, SOL_TCP, TCP_LINGER2, [-1], 4) = 0
   +0 getsockopt(4, SOL_TCP, TCP_LINGER2, [-1], [4]) = 0
   +0 setsockopt(3, SOL_TCP, TCP_DEFER_ACCEPT, [5], 4) = 0
   +0 getsockopt(3, SOL_TCP, TCP_DEFER_ACCEPT, [7], [4]) = 0
   +0 setsockopt(4, SOL_IP, IP_TTL, [0], 4) = -1 EINVAL (Invalid argument)
`,
  );
  assert.deepEqual(out, { status: 'pass', notes: [] });
});

test('runner: sendfile from a /tmp file the script makes, and splice socket -> pipe -> socket', () => {
  const src =
    '`/bin/rm -f /tmp/f2\n/bin/dd bs=1 count=30 if=/dev/zero of=/tmp/f2 status=none\n`\n' +
    PASSIVE +
    `   +0 open("/tmp/f2", O_RDONLY) = 5
   +0 sendfile(4, 5, NULL, 10) = 10
   +0 > P. 1:11(10) ack 1
   +0 < . 1:1(0) ack 11 win 257
   +0 sendfile(4, 5, [25], 10) = 5
   +0 > P. 11:16(5) ack 1
   +0 < . 1:1(0) ack 16 win 257
   +0 sendfile(4, 5, NULL, 100) = 20
   +0 > P. 16:36(20) ack 1
   +0 < . 1:1(0) ack 36 win 257
   +0 pipe([6, 7]) = 0
   +0 < P. 1:41(40) ack 36 win 257
   +0 > . 36:36(0) ack 41
   +0 splice(4, NULL, 7, NULL, 100, 0) = 40
   +0 splice(6, NULL, 4, NULL, 25, 0) = 25
   +0 > P. 36:61(25) ack 41
   +0 open("/tmp/nosuchfile", O_RDONLY) = -1 ENOENT (No such file or directory)
`;
  assert.deepEqual(run(src), { status: 'pass', notes: [] });
  assert.equal(run(src.replace('sendfile(4, 5, NULL, 100) = 20', 'sendfile(4, 5, NULL, 100) = 15')).status, 'fail', 'NULL reads from the file offset, which [off] leaves alone');
  assert.deepEqual(run(PASSIVE + '   +0 open("/etc/passwd", O_RDONLY) = 5\n'), { status: 'unsupported', reason: 'open of /etc/passwd (only /tmp files the script makes)' });
});

test('time: a system call takes 1 us to reach the stack and 1 us to return, so data it sends is acked a hair over the scripted gap, never a tie with the handshake\'s RTT', () => {
  const src =
    PASSIVE +
    `   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
  +.1 < . 1:1(0) ack 1001 win 257
   +0 %{ assert tcpi_min_rtt == 100000, tcpi_min_rtt }%
`;
  const { outcome, run: r } = runScript(src, '/nonexistent/t.pkt');
  assert.deepEqual(outcome, { status: 'pass', notes: [] });
  // The handshake's sample is 100 ms exactly (the SYN-ACK leaves at the SYN's time, no call in between);
  // the data's is 100 ms and the call's return, seen after it (packetdrill's "now").
  const child = [...r!.stack.tcp.socks].find((s) => s.state === 1)!;
  assert.equal(child.rackRttUs, 100_001);
});
