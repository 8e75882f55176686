/**
 * The API unit tests' setup: an ApiServer on a temporary UNIX socket over a
 * stack on the in-memory link, and the small waits they share.
 */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness } from './harness.js';
import { ApiServer, API_DEFAULTS } from '../../src/api/server.js';
import type { SyscallError } from '../../src/client/index.js';
import type { Stack } from '../../src/net/stack.js';
import { AF_INET } from '../../src/uapi.js';

/**
 * A maker of in-process API servers, each on its own socket in one temporary
 * directory removed after the file's tests; over a new IPv4 harness, or the
 * harness given (an IPv6 one).
 */
export function inProcessApi(prefix: string): <H extends { stack: Stack } = Harness>(h?: H) => { h: H; server: ApiServer; path: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  return <H extends { stack: Stack } = Harness>(given?: H) => {
    const h = given ?? (Harness.withPeer(AF_INET) as unknown as H);
    const path = join(dir, `api${n++}.sock`);
    const server = new ApiServer(h.stack, { path, gid: null, lowPortGid: null, ...API_DEFAULTS }, { debug() {}, info() {}, warn() {} });
    server.start();
    return { h, server, path };
  };
}

/** Wait (bounded, in real time: the server runs on the event loop) until `cond` holds. */
export async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** 'ok', or the errno name a call failed with. */
export async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as SyscallError).code;
  }
}
