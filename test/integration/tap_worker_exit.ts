/**
 * A helper the multi-queue TAP test runs inside its namespace: a worker
 * thread opens a queue of TAP `NAME` and starts its reader; once it says so,
 * the main thread exits with status 3 while the reader runs. The addon must
 * close the reader's poll handle as the worker's environment ends (an async
 * cleanup hook): a handle left open aborts the process instead.
 * Usage: tap_worker_exit.js NAME
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadAddon } from '../../src/drivers/addon.js';

if (isMainThread) {
  const w = new Worker(new URL(import.meta.url), { workerData: process.argv[2] });
  w.on('message', () => process.exit(3));
} else {
  const a = loadAddon();
  const q = a.openTap(workerData as string, true, true);
  const slot = q.vnetHdrSize + 1536;
  a.startReader(q.fd, Buffer.alloc(slot * 4), slot, new Int32Array(4), () => {});
  parentPort!.postMessage('reading');
}
