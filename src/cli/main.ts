#!/usr/bin/env node
/**
 * tapstack: the user's command line. Everything but check-config talks to
 * a running tapstackd over its API socket (--api), as any client would.
 */
import { dirname, join, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { formatIpv4, formatIpv6, formatMac } from '../lib/addr.js';
import { ConfigError, loadConfig } from '../daemon/config.js';
import { Client, DEFAULT_API_PATH, connect, createServer, type SocketRow, type StackSocket } from '../client/index.js';
import { FileServer } from './serve.js';

const DEFAULT_API = DEFAULT_API_PATH;
/** The LD_PRELOAD library node-gyp builds beside the addons (native/preload.c). */
const PRELOAD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build', 'Release', 'tapstack_preload.so');

function die(msg: string, code = 1): never {
  process.stderr.write(`tapstack: ${msg}\n`);
  process.exit(code);
}

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

/** The address columns are as wide as the longest address shown (IPv6 ones run past ss's 22). */
function ssWidths(rows: SocketRow[]): [number, number] {
  let l = 'Local Address:Port'.length;
  let p = 'Peer Address:Port'.length;
  for (const r of rows) {
    l = Math.max(l, r.local.length);
    p = Math.max(p, r.peer.length);
  }
  return [Math.max(22, l), Math.max(22, p)];
}

function ssLine(r: SocketRow, info: boolean, [lw, pw]: [number, number]): string {
  const proc = r.owner ? `pid=${r.owner.pid},fd=${r.owner.fd}` : '';
  let line = `${(r.proto ?? 'tcp').padEnd(5)} ${r.state.padEnd(12)} ${String(r.recvQ).padStart(6)} ${String(r.sendQ).padStart(6)}   ${r.local.padEnd(lw)} ${r.peer.padEnd(pw)} ${proc}`;
  if (info && r.info) line += `\n\t ${ssInfo(r.info)}`;
  return line.trimEnd();
}

/** The TCP_INFO line of `ss -i`, in ss's words and units (ms with three decimals for times in us). */
function ssInfo(i: Record<string, number>): string {
  const ms = (us: number) => String(Math.round(us) / 1000);
  const parts = [
    i.options & 4 ? `wscale:${i.snd_wscale},${i.rcv_wscale}` : '',
    `rto:${ms(i.rto)}`,
    `rtt:${ms(i.rtt)}/${ms(i.rttvar)}`,
    `ato:${ms(i.ato)}`,
    `mss:${i.snd_mss}`,
    `pmtu:${i.pmtu}`,
    `rcvmss:${i.rcv_mss}`,
    `advmss:${i.advmss}`,
    `cwnd:${i.snd_cwnd}`,
    i.snd_ssthresh < 0x7fffffff ? `ssthresh:${i.snd_ssthresh}` : '',
    `bytes_sent:${i.bytes_sent}`,
    i.bytes_retrans ? `bytes_retrans:${i.bytes_retrans}` : '',
    `bytes_acked:${i.bytes_acked}`,
    `bytes_received:${i.bytes_received}`,
    `segs_out:${i.segs_out}`,
    `segs_in:${i.segs_in}`,
    `data_segs_out:${i.data_segs_out}`,
    `data_segs_in:${i.data_segs_in}`,
    `lastsnd:${i.last_data_sent}`,
    `lastrcv:${i.last_data_recv}`,
    `lastack:${i.last_ack_recv}`,
    i.pacing_rate ? `pacing_rate:${(i.pacing_rate * 8 / 1e6).toFixed(1)}Mbps` : '',
    i.delivery_rate ? `delivery_rate:${(i.delivery_rate * 8 / 1e6).toFixed(1)}Mbps` : '',
    `delivered:${i.delivered}`,
    i.unacked ? `unacked:${i.unacked}` : '',
    i.retrans || i.total_retrans ? `retrans:${i.retrans}/${i.total_retrans}` : '',
    i.lost ? `lost:${i.lost}` : '',
    i.sacked ? `sacked:${i.sacked}` : '',
    i.reordering !== 3 ? `reordering:${i.reordering}` : '',
    i.rcv_rtt ? `rcv_rtt:${ms(i.rcv_rtt)}` : '',
    `rcv_space:${i.rcv_space}`,
    `rcv_ssthresh:${i.rcv_ssthresh}`,
    i.notsent_bytes ? `notsent:${i.notsent_bytes}` : '',
    i.min_rtt && i.min_rtt < 0xffffffff ? `minrtt:${ms(i.min_rtt)}` : '',
    `snd_wnd:${i.snd_wnd}`,
    `rcv_wnd:${i.rcv_wnd}`,
  ];
  return parts.filter(Boolean).join(' ');
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

/** Pipe stdin to the socket and the socket to stdout; stdin's EOF half-closes (nc -N). */
function pipeStdio(s: StackSocket | import('node:stream').Duplex): Promise<void> {
  return new Promise((res) => {
    process.stdin.pipe(s);
    s.pipe(process.stdout);
    s.on('error', (e) => {
      process.stderr.write(`tapstack: nc: ${(e as Error).message}\n`);
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
        const c = loadConfig(args.file, {});
        process.stdout.write(
          JSON.stringify(
            {
              tap: c.tap,
              mtu: c.mtu,
              mac: formatMac(c.mac),
              ipv4: c.ipv4.map((a) => `${formatIpv4(a.addr)}/${a.prefix}`),
              gateway: c.gateway ? formatIpv4(c.gateway) : null,
              hostIpv4: c.hostIpv4 ? `${formatIpv4(c.hostIpv4.addr)}/${c.hostIpv4.prefix}` : null,
              ipv6: c.ipv6 ? c.ipv6.map((a) => `${formatIpv6(a.addr)}/${a.prefix}`) : null,
              ipv6Gateway: c.ipv6Gateway ? formatIpv6(c.ipv6Gateway) : null,
              hostIpv6: c.hostIpv6 ? `${formatIpv6(c.hostIpv6.addr)}/${c.hostIpv6.prefix}` : null,
              hostMac: c.hostMac ? formatMac(c.hostMac) : null,
              vnetHdr: c.vnetHdr,
              api: c.api,
              pcap: c.pcap,
              statsFile: c.statsFile,
              logLevel: c.logLevel,
            },
            null,
            2,
          ) + '\n',
        );
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
      const out = [`${'Netid'.padEnd(5)} ${'State'.padEnd(12)} ${'Recv-Q'.padStart(6)} ${'Send-Q'.padStart(6)}   ${'Local Address:Port'.padEnd(w[0])} ${'Peer Address:Port'.padEnd(w[1])} Process`];
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
        const port = args.p ?? args.port ?? (args.host && /^\d+$/.test(args.host) ? Number(args.host) : undefined);
        if (!port) die('nc: -l needs a port (-p PORT or PORT)', 2);
        const server = createServer({ api, allowHalfOpen: true });
        server.on('error', (e) => die(`nc: ${(e as Error).message}`));
        server.listen(port, args.s ?? '0.0.0.0');
        const s = await new Promise<StackSocket>((res) => server.once('connection', res));
        server.close();
        await pipeStdio(s);
        return;
      }
      if (!args.host || !args.port) die('nc: need HOST PORT (or -l)', 2);
      try {
        new Client({ path: api }).close(); // the one-line error if the daemon is not there
      } catch (e) {
        die((e as Error).message);
      }
      const s = connect({ host: args.host, port: args.port, api, localAddress: args.s, localPort: args.p, allowHalfOpen: true });
      await pipeStdio(s);
    },
  )
  .command(
    'serve <dir>',
    'serve DIR over HTTP/1.1 (keep-alive, ranges) on the stack',
    (y) =>
      y
        .positional('dir', { type: 'string', demandOption: true })
        .option('port', { type: 'number', default: 8080, describe: 'TCP port on the stack' })
        .option('host', { type: 'string', default: '0.0.0.0', describe: 'local address' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'no access log' }),
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
      const files = new FileServer(root, args.quiet ? () => {} : (l) => process.stderr.write(`${l}\n`));
      const server = createServer({ api: args.api }, (s) => files.handle(s));
      server.on('error', (e) => die(`serve: ${(e as Error).message}`));
      server.listen(args.port, args.host, () => process.stderr.write(`tapstack: serving ${root} on ${args.host}:${args.port}\n`));
      const stop = () => server.close(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
  )
  .command(
    'run',
    'run CMD with its AF_INET/AF_INET6 TCP and UDP sockets on the stack (LD_PRELOAD), exit with its status',
    (y) => y.usage('$0 run [--api PATH] -- CMD [ARGS...]').parserConfiguration({ 'populate--': true }),
    (args) => {
      const argv = ((args['--'] as (string | number)[] | undefined) ?? args._.slice(1)).map(String);
      if (!argv.length) die('run: name a command: tapstack run -- CMD [ARGS...]', 2);
      if (!existsSync(PRELOAD)) die(`run: ${PRELOAD} is missing (npm install builds it)`);
      try {
        new Client({ path: args.api }).close();
      } catch (e) {
        die((e as Error).message);
      }
      // Appended, so a preload the user already has keeps its place first.
      const pre = process.env.LD_PRELOAD ? `${process.env.LD_PRELOAD} ${PRELOAD}` : PRELOAD;
      const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env: { ...process.env, LD_PRELOAD: pre, TAPSTACK_API: resolve(args.api) } });
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
