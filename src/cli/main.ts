#!/usr/bin/env node
/**
 * tapstack: the user's command line. It talks to a running tapstackd over
 * its API socket (--api); commands that need the API arrive with it. What
 * works without a daemon is here now.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { formatIpv4, formatMac } from '../lib/addr.js';
import { ConfigError, loadConfig } from '../daemon/config.js';

const DEFAULT_API = '/run/tapstack/api.sock';

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
  .demandCommand(1, 'name a command (see --help)')
  .strict()
  .help()
  .fail((msg, err) => {
    process.stderr.write(`tapstack: ${err ? err.message : msg}\n`);
    process.exit(2);
  })
  .parseAsync();
