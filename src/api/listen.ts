/**
 * The API's UNIX socket: made at the configured path (mode 0660, the
 * configured group; a stale socket file left by a dead daemon replaced,
 * a live daemon's refused), and its accept loop: each connection with its
 * peer's credentials (SO_PEERCRED) goes to the server. accept(2) failing for
 * want of descriptors or memory leaves the listener alone for a while
 * rather than spinning, logged at most once per interval with a count.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StackLog } from '../net/core/net.js';
import { EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM, errnoName } from '../uapi.js';
import type { ApiMib } from './conn.js';
import { unixAddon } from './unix.js';

/**
 * accept(2) failed for want of descriptors or memory: the connection stays
 * queued and the listener readable, so retrying at once only spins. The
 * listener is left alone this long (or until a client goes and frees a
 * descriptor), as servers back off at their descriptor limit.
 */
export const ACCEPT_BACKOFF_MS = 100;
/** Accept failures are logged at most once per this interval, with their count. */
export const ACCEPT_LOG_MS = 5000;

export class ApiListener {
  readonly #ux = unixAddon();
  #path = '';
  #listenFd = -1;
  #watch: unknown = null;
  /** The listener is unwatched after accept failed for want of resources (ACCEPT_BACKOFF_MS). */
  #acceptTimer: NodeJS.Timeout | null = null;
  /** Accept failures not yet logged, the last errno, and when one was last logged. */
  #acceptFails = 0;
  #acceptErr = 0;
  #acceptLogged = -Infinity;
  readonly #cred = new Int32Array(3);

  constructor(
    readonly mib: ApiMib,
    readonly log: StackLog,
    /** A new connection and its peer's pid, uid and gid. */
    readonly connected: (fd: number, pid: number, uid: number, gid: number) => void,
  ) {}

  /** Create the directory, replace a stale socket file, listen, set mode 0660 and the group. */
  start(path: string, gid: number | null): void {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      const st = lstatSync(path);
      if (!st.isSocket()) throw new Error(`api: ${path} exists and is not a socket`);
      let live = false;
      try {
        const fd = this.#ux.unixConnect(path);
        this.#ux.close(fd);
        live = true;
      } catch {
        // ECONNREFUSED: a socket file nobody listens on, left by a dead daemon.
      }
      if (live) throw new Error(`api: another daemon is listening on ${path}`);
      unlinkSync(path);
    }
    this.#listenFd = this.#ux.unixListen(path, 511);
    this.#path = path;
    chmodSync(path, 0o660);
    if (gid !== null) chownSync(path, process.getuid?.() ?? 0, gid);
    this.#watch = this.#ux.watch(this.#listenFd, () => this.#acceptClients());
    this.#ux.watchSet(this.#watch, this.#ux.UV_READABLE);
  }

  /** Close the socket and remove its file; false if it was not listening. */
  stop(): boolean {
    if (this.#listenFd < 0) return false;
    if (this.#acceptTimer) clearTimeout(this.#acceptTimer);
    this.#acceptTimer = null;
    this.#ux.watchClose(this.#watch);
    this.#ux.close(this.#listenFd);
    this.#listenFd = -1;
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
    return true;
  }

  #acceptClients(): void {
    for (let i = 0; i < 64; i++) {
      const fd = this.#ux.accept(this.#listenFd);
      if (fd < 0) {
        if (fd === -EAGAIN) return;
        this.#acceptFailed(-fd);
        // Out of descriptors or memory: the connection stays queued, so back off; anything else (a peer gone) was one connection's.
        if (fd === -EMFILE || fd === -ENFILE || fd === -ENOBUFS || fd === -ENOMEM) return this.#acceptPause();
        continue;
      }
      if (this.#acceptFails) this.#acceptLog('api: accepting again');
      if (this.#ux.peerCred(fd, this.#cred) < 0) {
        this.#ux.close(fd);
        continue;
      }
      this.connected(fd, this.#cred[0], this.#cred[1], this.#cred[2]);
    }
  }

  /** Count an accept failure; log at most once per ACCEPT_LOG_MS, with how many there were. */
  #acceptFailed(errno: number): void {
    this.mib.AcceptFailed++;
    this.#acceptFails++;
    this.#acceptErr = errno;
    if (performance.now() - this.#acceptLogged >= ACCEPT_LOG_MS) this.#acceptLog('api: accept failed; backing off');
  }

  #acceptLog(msg: 'api: accepting again' | 'api: accept failed; backing off'): void {
    this.log.warn({ err: errnoName(-this.#acceptErr), failures: this.#acceptFails, backoffMs: ACCEPT_BACKOFF_MS }, msg);
    this.#acceptFails = 0;
    this.#acceptLogged = performance.now();
  }

  /** Stop watching the listener for ACCEPT_BACKOFF_MS (a client that goes frees a descriptor and ends it early: resume). */
  #acceptPause(): void {
    if (this.#acceptTimer || this.#listenFd < 0) return;
    this.mib.AcceptPaused++;
    this.#ux.watchSet(this.#watch, 0);
    this.#acceptTimer = setTimeout(() => this.resume(), ACCEPT_BACKOFF_MS);
  }

  /** Descriptors were freed (a client went): accept again now if backing off. */
  resume(): void {
    if (!this.#acceptTimer || this.#listenFd < 0) return;
    clearTimeout(this.#acceptTimer);
    this.#acceptTimer = null;
    this.#ux.watchSet(this.#watch, this.#ux.UV_READABLE);
  }
}
