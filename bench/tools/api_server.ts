/**
 * A server written with the client library, for `npm run bench`: the same
 * work the in-process services do, but through the syscall API and the data
 * descriptors, so the two can be compared in one run.
 *
 *   node api_server.js API sink PORT          read and drop (like discard)
 *   node api_server.js API source PORT BYTES  send BYTES per connection, then close
 *   node api_server.js API echo PORT          echo (for request/response)
 *
 * Prints "listening" once the listener is up.
 */
import { createServer, type StackSocket } from '../../src/client/index.js';

const [api, mode, portArg, bytesArg] = process.argv.slice(2);
const port = Number(portArg);
const handlers: Record<string, (s: StackSocket) => void> = {
  sink: (s) => {
    s.on('data', () => {});
    s.on('end', () => s.end());
  },
  source: (s) => {
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    let left = Number(bytesArg);
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    s.on('data', () => {});
    pump();
  },
  echo: (s) => {
    s.setNoDelay(true);
    s.pipe(s);
  },
};
const h = handlers[mode];
if (!h || !Number.isInteger(port)) {
  process.stderr.write('usage: api_server.js API sink|source|echo PORT [BYTES]\n');
  process.exit(2);
}
const srv = createServer({ api }, (s) => {
  s.on('error', () => {});
  h(s);
});
srv.on('error', (e) => {
  process.stderr.write(`api_server: ${(e as Error).message}\n`);
  process.exit(1);
});
srv.listen(port, '0.0.0.0', () => process.stdout.write('listening\n'));
