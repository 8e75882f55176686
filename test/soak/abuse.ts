/**
 * The soak's abusive API client, written from docs/api.md alone (the
 * hello, the frame header, call numbers): every `everyMs` a burst of
 *  - a flood: cheap calls (getsockopt on a descriptor that is not open,
 *    EBADF) pipelined without ever reading a reply, until the daemon
 *    stops taking them or `floodFrames` are written;
 *  - a socket() flood: stack sockets made and never closed, left to the
 *    daemon to release when the client goes;
 *  - a partial frame: half a header, then nothing, held open;
 * each connection dropped after `holdMs`. Whether the daemon pushes back
 * (stops reading), answers or closes the connection, this client only
 * counts it; the soak's verdict is that the other flows are not hurt.
 * Arguments: one JSON object (AbuseArgs). Prints one JSON line per burst.
 */
import net from 'node:net';
import { API_MAGIC, API_VERSION, FrameWriter, HELLO_LEN, SYS } from '../../src/api/proto.js';

export interface AbuseArgs {
  api: string;
  until: number;
  everyMs: number;
  holdMs: number;
  floodFrames: number;
}

const a = JSON.parse(process.argv[2]) as AbuseArgs;
const stats = { bursts: 0, frames: 0, bytes: 0, pushedBack: 0, closedByDaemon: 0, errors: 0, lastError: null as string | null };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hello(): Buffer {
  const b = Buffer.alloc(HELLO_LEN);
  b.writeUInt32LE(API_MAGIC, 0);
  b.writeUInt16LE(API_VERSION, 4);
  return b;
}

/** A connection that has said hello; resolves once connected. */
function open(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(a.api);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', (e) => ((stats.errors++), (stats.lastError = e.message)));
      // The daemon ending the connection is a defence, not an error of ours.
      s.on('end', () => stats.closedByDaemon++);
      // Replies are never read: pause, so the kernel's buffers fill and the daemon sees a client that does not read.
      s.pause();
      s.write(hello());
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Write frames built by `frame(i)` until `n` are out, the socket will not take more within 2 s, or it closes. */
async function flood(s: net.Socket, n: number, frame: (i: number) => Buffer): Promise<void> {
  for (let i = 0; i < n && !s.destroyed; ) {
    const batch: Buffer[] = [];
    for (let k = 0; k < 256 && i < n; k++, i++) batch.push(frame(i));
    const b = Buffer.concat(batch);
    stats.frames += batch.length;
    stats.bytes += b.length;
    if (!s.write(b)) {
      const drained = await Promise.race([new Promise<boolean>((r) => s.once('drain', () => r(true))), sleep(2000).then(() => false)]);
      if (!drained) {
        stats.pushedBack++;
        return;
      }
    }
  }
}

const badFd = (i: number) => new FrameWriter(i, SYS.getsockopt).i32(1_000_000 + (i & 1023)).i32(1).i32(4).u32(4).finish();
const newSocket = (i: number) => new FrameWriter(i, SYS.socket).i32(2).i32(1).i32(0).finish();

async function burst(): Promise<void> {
  const conns: net.Socket[] = [];
  try {
    const f = await open();
    conns.push(f);
    await flood(f, a.floodFrames, badFd);
    const k = await open();
    conns.push(k);
    await flood(k, 200, newSocket);
    const p = await open();
    conns.push(p);
    // Half a frame header: a length promising more, then nothing.
    p.write(Buffer.from([64, 0, 0, 0, 1, 0]));
    await sleep(a.holdMs);
  } catch (e) {
    stats.errors++;
    stats.lastError = (e as Error).message;
  } finally {
    for (const c of conns) c.destroy();
  }
  stats.bursts++;
  process.stdout.write(JSON.stringify({ abuse: stats }) + '\n');
}

while (Date.now() < a.until) {
  const t0 = Date.now();
  await burst();
  const rest = Math.min(a.everyMs - (Date.now() - t0), a.until - Date.now());
  if (rest > 0) await sleep(rest);
}
process.stdout.write(JSON.stringify({ abuse: stats, final: true }) + '\n');
process.exit(0);
