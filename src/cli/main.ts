#!/usr/bin/env node
/**
 * tapstack: the user's command line. Everything but check-config talks to
 * a running tapstackd over its API socket (--api), as any client would.
 */
import { dirname, join, resolve } from 'node:path';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { isIP, Socket as NetSocket } from 'node:net';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, configView, loadConfig } from '../daemon/config.js';
import { Client, DEFAULT_API_PATH, connect, createServer, type StackSocket } from '../client/index.js';
import { FileServer } from './serve.js';
import { ssHeader, ssLine, ssWidths } from './ss.js';
import { compileFilter } from '../lib/pcap_filter.js';
import { compileSsFilter } from '../lib/ss_filter.js';
import { PlotError, runPlot } from './plot.js';
import { LabError, runLab } from './lab.js';
import type { CcListEntry } from '../net/ipv4/tcp_cong_module.js';

const DEFAULT_API = DEFAULT_API_PATH;
/** The LD_PRELOAD library node-gyp builds beside the addons (native/preload.c). */
const PRELOAD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build', 'Release', 'tapstack_preload.so');

function die(msg: string, code = 1): never {
  process.stderr.write(`tapstack: ${msg}\n`);
  process.exit(code);
}

/** An error in one line: the errno's text and name for a failed call (`connection refused (ECONNREFUSED)`), else its message. */
function why(e: unknown): string {
  const x = e as { errno?: number; code?: string; message?: string };
  const text = typeof x.errno === 'number' ? getSystemErrorMap().get(-Math.abs(x.errno))?.[1] : undefined;
  return text && x.code ? `${text} (${x.code})` : String(x.message ?? e);
}

/** A TCP port from the command line, or a one-line error naming what was given. */
function port(v: unknown, what: string, zeroOk = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1) || n > 65535) die(`${what}: ${v} is not a port (${zeroOk ? 0 : 1}-65535)`, 2);
  return n;
}

/** host:port as ss and curl write it: an IPv6 address in brackets. */
function hostPort(host: string, p: number): string {
  return host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`;
}

/**
 * What the daemon writes on a descriptor it handed us (a capture, a trace),
 * copied to FILE or standard output until interrupted or the daemon goes.
 * A reader that stopped (tcpdump -c N, head) ends the copy quietly, as
 * tcpdump's writer does.
 */
function copyStream(fd: number, file: string, what: string): void {
  const src = new NetSocket({ fd, readable: true, writable: false });
  const dst = file === '-' ? process.stdout : createWriteStream(file, { mode: 0o640 });
  const stop = () => src.destroy();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  src.on('error', () => {});
  dst.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.stderr.write(`${what}: ${e.message}\n`);
    src.destroy();
  });
  src.pipe(dst);
}

const RUN_HELP = `tapstack run [--api PATH] [--] CMD [ARGS...]

Run an unmodified program with its TCP and UDP sockets (AF_INET, AF_INET6) on
the stack, through the LD_PRELOAD library (build/Release/tapstack_preload.so);
exits with the program's status. Everything from CMD on is the program's.

  --api PATH   tapstackd's API socket (default ${DEFAULT_API})

Examples:
  tapstack run curl -s http://10.0.0.1:8000/
  tapstack run -- python3 -m http.server 8080
`;

// `tapstack ... | head` closes the pipe early: that ends the command, quietly, as it does for other tools.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  die(`stdout: ${why(e)}`);
});

/** A client for one command, or the one-line reason the daemon cannot be reached. */
async function client(api: string): Promise<Client> {
  try {
    const c = new Client({ path: api, descriptors: false });
    await c.ready();
    return c;
  } catch (e) {
    die((e as Error).message);
  }
}

/** nstat's names: group + counter (TcpExtTCPAbortOnData, IpInReceives). */
function flatten(counters: Record<string, unknown>): [string, number][] {
  const out: [string, number][] = [];
  for (const [group, vals] of Object.entries(counters)) {
    if (!vals || typeof vals !== 'object') continue;
    for (const [k, v] of Object.entries(vals as Record<string, unknown>)) {
      if (typeof v === 'number') out.push([`${group}${k}`, v]);
      else if (v && typeof v === 'object') for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) if (typeof v2 === 'number') out.push([`${group}${k}${k2}`, v2]);
    }
  }
  return out;
}

/** --fastopen does nothing while the stack's net.ipv4.tcp_fastopen lacks the server bit (TFO_SERVER_ENABLE): say so. */
async function fastopenServerBitCheck(api: string): Promise<void> {
  const c = await client(api);
  let v = NaN;
  try {
    v = Number((await c.sysctl('net.ipv4.tcp_fastopen'))['net.ipv4.tcp_fastopen']);
  } catch {
    // Not readable here: nothing to say.
  }
  c.close();
  if (Number.isInteger(v) && !(v & 2)) {
    process.stderr.write(`tapstack: serve: --fastopen: net.ipv4.tcp_fastopen is ${v}, without the server bit (2): Fast Open stays off until it is set (tapstack sysctl net.ipv4.tcp_fastopen=${v | 2})\n`);
  }
}

/** Pipe stdin to the socket and the socket to stdout; stdin's EOF half-closes (nc -N). */
function pipeStdio(s: StackSocket | import('node:stream').Duplex, label: () => string): Promise<void> {
  return new Promise((res) => {
    process.stdin.pipe(s);
    s.pipe(process.stdout);
    s.on('error', (e) => {
      process.stderr.write(`tapstack: nc: ${label()}${why(e)}\n`);
      process.exitCode = 1;
    });
    s.on('close', () => {
      process.stdin.unpipe(s);
      process.stdin.destroy();
      res();
    });
  });
}

await yargs(hideBin(process.argv))
  .scriptName('tapstack')
  .usage('$0 <command> [options]')
  .option('api', { type: 'string', default: DEFAULT_API, describe: "tapstackd's API socket", global: true })
  .command(
    'check-config [file]',
    'check a tapstackd config file the way the daemon will, and print the result',
    (y) => y.positional('file', { type: 'string', describe: 'config file (default: config/default.json)' }),
    (args) => {
      try {
        process.stdout.write(JSON.stringify(configView(loadConfig(args.file, {})), null, 2) + '\n');
      } catch (e) {
        if (e instanceof ConfigError) {
          process.stderr.write(`tapstack: ${e.message}\n`);
          process.exit(78);
        }
        throw e;
      }
    },
  )
  .command(
    'ss',
    'list the stack\'s sockets like `ss -tuanpie`',
    (y) =>
      y
        .option('info', { alias: 'i', type: 'boolean', describe: 'show TCP_INFO fields' })
        .option('listening', { alias: 'l', type: 'boolean', describe: 'listening sockets only (and unconnected UDP ones, as ss -l)' })
        .option('tcp', { alias: 't', type: 'boolean', describe: 'TCP sockets only' })
        .option('udp', { alias: 'u', type: 'boolean', describe: 'UDP sockets only' }),
    async (args) => {
      const c = await client(args.api);
      let rows = await c.sockets(!!args.info);
      if (args.listening) rows = rows.filter((r) => r.state === 'LISTEN' || r.state === 'UNCONN');
      if (args.tcp && !args.udp) rows = rows.filter((r) => !r.proto);
      if (args.udp && !args.tcp) rows = rows.filter((r) => r.proto === 'udp');
      const w = ssWidths(rows);
      const out = [ssHeader(w)];
      for (const r of rows) out.push(ssLine(r, !!args.info, w));
      process.stdout.write(out.join('\n') + '\n');
      c.close();
    },
  )
  .command(
    'stats [pattern]',
    'print every counter, like `nstat -az`',
    (y) => y.positional('pattern', { type: 'string', describe: 'only counters whose name contains this' }).option('json', { type: 'boolean', describe: 'JSON, grouped as the daemon keeps them' }),
    async (args) => {
      const c = await client(args.api);
      const counters = await c.counters();
      c.close();
      if (args.json) {
        process.stdout.write(JSON.stringify(counters, null, 2) + '\n');
        return;
      }
      const lines = ['#tapstack'];
      for (const [k, v] of flatten(counters)) if (!args.pattern || k.includes(args.pattern)) lines.push(`${k.padEnd(32)} ${String(v).padEnd(15)} 0.0`);
      process.stdout.write(lines.join('\n') + '\n');
    },
  )
  .command(
    'sysctl [setting]',
    'read or set the stack\'s Linux-named settings (name, or name=value)',
    (y) => y.positional('setting', { type: 'string', describe: 'net.ipv4.tcp_sack, or net.ipv4.tcp_sack=0; none lists all' }),
    async (args) => {
      const c = await client(args.api);
      let v: Record<string, unknown>;
      try {
        v = await c.sysctl(args.setting ?? '');
      } catch (e) {
        const code = (e as { code?: string }).code;
        die(`sysctl: ${args.setting}: ${code === 'ENOENT' ? 'no such setting' : code === 'EACCES' ? 'permission denied (root only)' : code === 'EINVAL' ? 'invalid value' : code === 'EPERM' ? 'read-only' : code}`);
      }
      c.close();
      process.stdout.write(Object.entries(v).map(([k, x]) => `${k} = ${x}`).join('\n') + '\n');
    },
  )
  .command(
    'cc <action> [arg]',
    'congestion control modules: `cc list`, `cc load FILE` (root; a root-owned JavaScript module, docs/congestion.md), `cc unload NAME` (root)',
    (y) =>
      y
        .positional('action', { type: 'string', choices: ['list', 'load', 'unload'], demandOption: true })
        .positional('arg', { type: 'string', describe: 'load: the module file; unload: the algorithm name' }),
    async (args) => {
      const action = args.action as string;
      if (action !== 'list' && !args.arg) die(`cc ${action}: ${action === 'load' ? 'FILE' : 'NAME'} missing`);
      // The daemon resolves nothing against the caller's directory.
      const arg = action === 'load' ? resolve(args.arg!) : (args.arg ?? '');
      const c = await client(args.api);
      let v: unknown;
      try {
        v = await c.cc(action === 'list' ? 'list' : `${action} ${arg}`);
      } catch (e) {
        const code = (e as { code?: string }).code;
        // Loaded only to explain a refusal: the stack's code stays out of every other command.
        const { congModuleProblem } = await import('../net/ipv4/tcp_cong_module.js');
        let why: string = code ?? String(e);
        if (code === 'EPERM') why = action === 'load' ? ((await congModuleProblem(arg).catch(() => null)) ?? 'permission denied (root only)') : 'permission denied (root only)';
        else if (code === 'ENOENT') why = action === 'load' ? 'no such file' : 'no such module';
        else if (code === 'EEXIST') why = 'an algorithm of that name is already registered';
        else if (code === 'EBUSY') why = 'in use (sockets use it, or it is net.ipv4.tcp_congestion_control)';
        else if (code === 'ENOSYS') why = 'this daemon has no module support';
        else if (code === 'EINVAL' && action === 'load') why = `not a valid module: ${(await congModuleProblem(arg).catch((x: Error) => x.message)) ?? "see the daemon's log ('api: cc load refused')"}`;
        die(`cc ${action}${arg ? ` ${arg}` : ''}: ${why}`);
      }
      c.close();
      if (action === 'list') {
        const rows = v as CcListEntry[];
        for (const r of rows) {
          const extra = r.kind === 'builtin' ? '' : ` ${r.file} users:${r.users} calls:${r.calls} faults:${r.faults} fallbacks:${r.fallbacks}${r.lastFault ? ` last: ${r.lastFault}` : ''}`;
          process.stdout.write(`${r.name.padEnd(16)} ${r.kind.padEnd(8)}${extra}`.trimEnd() + '\n');
        }
      } else {
        process.stdout.write(action === 'load' ? `${(v as { loaded: string }).loaded}\n` : '');
      }
    },
  )
  .command(
    'capture [filter..]',
    'write the frames the stack sees (both ways) as pcap, live: `tapstack capture tcp port 80 -w - | tcpdump -r -`',
    (y) =>
      y
        .positional('filter', { type: 'string', array: true, describe: 'a pcap-filter subset: ip, ip6, arp, tcp, udp, icmp, icmp6, [src|dst] host ADDR, [src|dst] port N, and/or/not, ( )' })
        .option('w', { type: 'string', demandOption: true, describe: 'the pcap file to write, - for standard output' })
        .option('pcapng', { type: 'boolean', default: false, describe: "write pcapng: the interface's name and each packet's direction (in/out) in the file" }),
    async (args) => {
      const filter = (args.filter ?? []).join(' ');
      try {
        compileFilter(filter);
      } catch (e) {
        die(`capture: bad filter: ${(e as Error).message}`);
      }
      if (args.w === '-' && process.stdout.isTTY) die('capture: standard output is a terminal; pipe it (| tcpdump -r -) or give -w FILE');
      let c: Client;
      let fd: number;
      try {
        c = new Client({ path: args.api, descriptors: true });
        await c.ready();
        fd = await c.capture(filter, { pcapng: args.pcapng });
      } catch (e) {
        const code = (e as { code?: string }).code;
        die(code === 'EPERM' ? 'capture: permission denied (root only, as a packet socket is)' : `capture: ${why(e)}`);
      }
      c.close();
      copyStream(fd, args.w, 'capture');
    },
  )
  .command(
    'trace [filter..]',
    'stream the TCP events (state changes, segments, retransmissions with their reason, cwnd/ssthresh/srtt, SACK, window updates, drops with their reason, send-buffer wake-ups) of the sockets an ss-style filter selects, as JSON lines (docs/trace.md); `tapstack plot` draws them',
    (y) =>
      y
        .usage('$0 trace [--api PATH] [-w FILE] [FILTER...]')
        .positional('filter', {
          type: 'string',
          array: true,
          describe: "ss's filter: state NAME, src|dst ADDR[/LEN][:PORT], sport|dport OP :PORT (OP: = != < > <= >=), and/or/not, ( ); none: every socket",
        })
        .option('w', { type: 'string', default: '-', describe: 'the file to write the JSON lines to, - for standard output' })
        .example("$0 trace 'dport = :80'", 'the connections to port 80')
        .example("$0 trace src 10.0.0.1 -w conn.jsonl", 'save a trace for tapstack plot'),
    async (args) => {
      const filter = (args.filter ?? []).join(' ');
      try {
        compileSsFilter(filter);
      } catch (e) {
        die(`trace: bad filter: ${(e as Error).message}`, 2);
      }
      let c: Client;
      let fd: number;
      try {
        c = new Client({ path: args.api, descriptors: true });
        await c.ready();
        fd = await c.trace(filter);
      } catch (e) {
        const code = (e as { code?: string }).code;
        die(code === 'EPERM' ? 'trace: permission denied (root only, as tracefs is)' : `trace: ${why(e)}`);
      }
      c.close();
      copyStream(fd, args.w, 'trace');
    },
  )
  .command(
    'plot [file]',
    "draw a connection's time-sequence graph and its cwnd/ssthresh/in flight, from a trace (tapstack trace's JSON lines) or a capture (pcap, pcapng), as PREFIX.svg and PREFIX.html (zoomable); needs no daemon",
    (y) =>
      y
        .usage('$0 plot [FILE|-] [-o PREFIX] [--conn N] [--list] [--dir out|in]')
        .positional('file', { type: 'string', default: '-', describe: 'a trace (JSON lines) or a pcap/pcapng file; - (the default) reads standard input until EOF or Ctrl-C' })
        .option('o', { type: 'string', describe: 'write PREFIX.svg and PREFIX.html (default: the input file\'s name without its extension; tapstack-plot for standard input)' })
        .option('svg', { type: 'string', describe: 'write the SVG here (only this, unless -o or --html too)' })
        .option('html', { type: 'string', describe: 'write the HTML page here (only this, unless -o or --svg too)' })
        .option('conn', { type: 'string', describe: 'the connection to draw, by its number in --list (default: the one that carried the most data)' })
        .option('list', { type: 'boolean', describe: 'list the connections (number, addresses, payload bytes each way, records) and draw nothing' })
        .option('dir', { type: 'string', describe: 'the data direction: out is what the traced socket (a capture: the side that opened the connection) sent (default: the one with more payload)' })
        .example("$0 trace 'dport = :80' | $0 plot - -o conn", 'draw a live trace when it ends (or at Ctrl-C)')
        .example('$0 plot conn.pcap --list', "a capture's connections")
        .example('$0 plot conn.pcap --conn 1 --dir in -o c1', 'the second connection, the data its opener received'),
    async (args) => {
      if (args.dir !== undefined && args.dir !== 'out' && args.dir !== 'in') die(`plot: --dir ${args.dir}: out or in`, 2);
      if (args.conn !== undefined && !/^\d+$/.test(args.conn)) die(`plot: --conn ${args.conn}: a connection's number (--list shows them)`, 2);
      if ((args.file ?? '-') === '-' && process.stdin.isTTY) die('plot: standard input is a terminal: name a FILE, or pipe a trace in (tapstack trace ... | tapstack plot -)', 2);
      try {
        await runPlot(
          { file: args.file ?? '-', prefix: args.o, svg: args.svg, html: args.html, conn: args.conn === undefined ? undefined : Number(args.conn), dir: args.dir, list: args.list },
          (s) => process.stdout.write(s),
          (s) => process.stderr.write(`tapstack: plot: ${s}\n`),
        );
      } catch (e) {
        if (e instanceof PlotError) die(`plot: ${e.message}`, e.status);
        throw e;
      }
      // A live trace on standard input may still be open after Ctrl-C: the work is done.
      process.exit(0);
    },
  )
  .command(
    'lab <scenario>',
    'run a scenario file (docs/lab.md: a bottleneck, its queue discipline, delay, loss, cross traffic, and TCP flows with their congestion control) between stacks on a virtual clock, faster than real time and the same for the same seed; print per flow goodput, share, retransmissions, RTT and queueing-delay percentiles and Jain\'s fairness index, and write the plots; needs no daemon',
    (y) =>
      y
        .usage('$0 lab SCENARIO.json [--seed N] [--out DIR | --no-plots] [--json]')
        .positional('scenario', { type: 'string', describe: 'the scenario file (JSON, docs/lab.md)' })
        .option('seed', { type: 'string', describe: "the random seed (default: the scenario's seed, else 1)" })
        .option('out', { type: 'string', describe: "write results.json, each flow's time-sequence and cwnd graphs (flowN-NAME.svg and .html) and queue.svg here (default: lab-NAME, NAME the scenario's)" })
        .option('plots', { type: 'boolean', default: true, describe: 'write the files (--no-plots: only print)' })
        .option('json', { type: 'boolean', describe: 'print the results as JSON instead of the table' })
        .example('$0 lab examples/two-cubic.json', 'two CUBIC flows sharing a bottleneck')
        .example('$0 lab examples/shallow-buffer.json --seed 7 --json', 'another seed, machine-readable'),
    async (args) => {
      let seed: number | undefined;
      if (args.seed !== undefined) {
        seed = Number(args.seed);
        if (!/^\d+$/.test(args.seed) || seed > 0xffffffff) die(`lab: --seed ${args.seed}: a whole number from 0 to 4294967295`, 2);
      }
      try {
        await runLab(
          { file: args.scenario!, seed, out: args.plots ? args.out : null, json: args.json },
          (s) => process.stdout.write(s),
          (s) => process.stderr.write(`tapstack: lab: ${s}\n`),
        );
      } catch (e) {
        if (e instanceof LabError) die(`lab: ${e.message}`, e.status);
        throw e;
      }
    },
  )
  .command(
    'nc [host] [port]',
    'connect to HOST PORT (or listen with -l) over the stack; stdin to the socket, the socket to stdout',
    (y) =>
      y
        .positional('host', { type: 'string' })
        .positional('port', { type: 'number' })
        .option('listen', { alias: 'l', type: 'boolean', describe: 'accept one connection instead' })
        .option('p', { type: 'number', describe: 'local port (with -l: the port to listen on)' })
        .option('s', { type: 'string', describe: 'local address' }),
    async (args) => {
      const api = args.api;
      if (args.listen) {
        const given = args.p ?? args.port ?? (args.host && /^\d+$/.test(args.host) ? Number(args.host) : undefined);
        if (given === undefined) die('nc: -l needs a port (-p PORT or PORT)', 2);
        const p = port(given, 'nc');
        const host = args.s ?? '::';
        const server = createServer({ api, allowHalfOpen: true });
        server.on('error', (e) => die(`nc: listen on ${hostPort(host, p)}: ${why(e)}`));
        server.listen(p, host);
        const s = await new Promise<StackSocket>((res) => server.once('connection', res));
        server.close();
        await pipeStdio(s, () => '');
        return;
      }
      if (!args.host || args.port === undefined) die('nc: need HOST PORT (or -l)', 2);
      if (!isIP(args.host)) die(`nc: ${args.host} is not an IP address (tapstack nc does not resolve names)`, 2);
      const p = port(args.port, 'nc');
      if (args.p !== undefined) port(args.p, 'nc -p', true);
      try {
        new Client({ path: api }).close(); // the one-line error if the daemon is not there
      } catch (e) {
        die((e as Error).message);
      }
      let s: StackSocket;
      try {
        s = connect({ host: args.host, port: p, api, localAddress: args.s, localPort: args.p, allowHalfOpen: true });
      } catch (e) {
        die(`nc: ${args.host}: ${why(e)}`, 2);
      }
      let connected = false;
      s.once('connect', () => (connected = true));
      await pipeStdio(s, () => (connected ? '' : `connect to ${hostPort(args.host!, p)}: `));
    },
  )
  .command(
    'serve <dir>',
    'serve DIR over HTTP/1.1 (keep-alive, ranges) on the stack',
    (y) =>
      y
        .positional('dir', { type: 'string', demandOption: true })
        .option('port', { type: 'number', default: 8080, describe: 'TCP port on the stack' })
        .option('host', { type: 'string', default: '::', describe: 'local address (:: is both families, as Node listens)' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'no access log' })
        .option('fastopen', {
          type: 'number',
          describe: 'TCP Fast Open on the listener (TCP_FASTOPEN): at most N connections opened by their SYN before their handshake ends; needs the server bit of net.ipv4.tcp_fastopen (tapstack sysctl net.ipv4.tcp_fastopen=3)',
        }),
    async (args) => {
      const root = resolve(args.dir);
      try {
        if (!statSync(root).isDirectory()) die(`serve: ${root} is not a directory`, 2);
      } catch {
        die(`serve: ${root}: no such directory`, 2);
      }
      try {
        new Client({ path: args.api }).close();
      } catch (e) {
        die((e as Error).message);
      }
      const p = port(args.port, 'serve --port');
      const fastopen = args.fastopen;
      if (fastopen !== undefined) {
        if (!Number.isInteger(fastopen) || fastopen < 0 || fastopen > 0x7fffffff) die(`serve: --fastopen ${fastopen} is not a queue length (0 or more)`, 2);
        await fastopenServerBitCheck(args.api);
      }
      const files = new FileServer(root, args.quiet ? () => {} : (l) => process.stderr.write(`${l}\n`));
      const server = createServer({ api: args.api, fastopen }, (s) => files.handle(s));
      server.on('error', (e) => die(`serve: listen on ${hostPort(args.host, p)}: ${why(e)}`));
      server.listen(p, args.host, () => process.stderr.write(`tapstack: serving ${root} on ${hostPort(args.host, p)}\n`));
      const stop = () => server.close(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
  )
  .command(
    'run [cmd..]',
    'run an unmodified program with its TCP and UDP sockets (AF_INET, AF_INET6) on the stack, through the LD_PRELOAD library; exits with its status. Everything from CMD on is the program\'s (a `--` before it is allowed)',
    (y) =>
      y
        .usage('$0 run [--api PATH] [--] CMD [ARGS...]')
        .positional('cmd', { type: 'string', array: true, describe: 'the program and its arguments' })
        .example('$0 run curl -s http://10.0.0.1:8000/', 'curl over the stack')
        .example('$0 run -- python3 -m http.server 8080', 'a server on the stack')
        // The program's own options are not ours: parsing stops at its name.
        .parserConfiguration({ 'populate--': true, 'halt-at-non-option': true }),
    (args) => {
      // Parsing halts at the first word that is not ours: yargs hands back everything from there
      // (the command's own name first, as it was that word when the top level parsed).
      // Our own options (--api, --help) may come between `run` and the program's name.
      const rest = ((args['--'] as (string | number)[] | undefined) ?? []).map(String);
      if (rest[0] === 'run') rest.shift();
      let api = args.api;
      while (rest.length && rest[0].startsWith('-')) {
        const o = rest.shift()!;
        if (o === '--') break;
        if (o === '--help' || o === '-h') {
          process.stdout.write(RUN_HELP);
          process.exit(0);
        }
        if (o === '--api' && rest.length) api = rest.shift()!;
        else if (o.startsWith('--api=')) api = o.slice(6);
        else die(`run: unknown option ${o} (the program's own options come after its name, or after --)`, 2);
      }
      const argv = [...((args.cmd as (string | number)[] | undefined) ?? []).map(String), ...rest];
      if (!argv.length) die('run: name a command: tapstack run [--] CMD [ARGS...]', 2);
      if (!existsSync(PRELOAD)) die(`run: ${PRELOAD} is missing (npm install builds it)`);
      try {
        new Client({ path: api }).close();
      } catch (e) {
        die((e as Error).message);
      }
      // Appended, so a preload the user already has keeps its place first.
      const pre = process.env.LD_PRELOAD ? `${process.env.LD_PRELOAD} ${PRELOAD}` : PRELOAD;
      const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env: { ...process.env, LD_PRELOAD: pre, TAPSTACK_API: resolve(api) } });
      child.on('error', (e) => die(`run: ${argv[0]}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'command not found' : e.message}`, 127));
      // The terminal's SIGINT reaches the child itself (same process group); others are passed on.
      process.on('SIGINT', () => {});
      for (const sig of ['SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => child.kill(sig));
      child.on('exit', (code, sig) => process.exit(code ?? 128 + (sig ? osConstants.signals[sig] : 0)));
    },
  )
  .demandCommand(1, 'name a command (see --help)')
  .strict()
  .help()
  .fail((msg, err) => {
    process.stderr.write(`tapstack: ${err ? err.message : msg}\n`);
    process.exit(2);
  })
  .parseAsync();
