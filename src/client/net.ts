/**
 * net-style sockets and servers over the stack: connect() and
 * createServer(), whose data flows through each socket's data descriptor or
 * its rings, so a stack connection behaves as a net.Socket does.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { unixAddon } from '../api/unix.js';
import { AF_INET, AF_INET6, SO_ERROR, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET, IPPROTO_TCP, TCP_FASTOPEN } from '../uapi.js';
import { Client, DEFAULT_API_PATH, SyscallError, acquire, release, ringsWanted, type SockAddrText } from './client.js';
import { RingSocket } from './ring_socket.js';

export interface StackConnectOptions {
  host: string;
  port: number;
  /** API socket path of the daemon (default DEFAULT_API_PATH). */
  api?: string;
  localAddress?: string;
  localPort?: number;
  noDelay?: boolean;
  /** As net: false (the default) ends our side when the peer's FIN arrives; true leaves that to the caller. */
  allowHalfOpen?: boolean;
  /** Data through shared-memory rings when the daemon offers them (default: unless TAPSTACK_RINGS=0). */
  rings?: boolean;
}

/** A net.Socket over a stack socket's data descriptor; `fd` is the stack descriptor for raw calls. */
export type StackSocket = net.Socket & { stackFd: number; client: Client };

function wrap(client: Client, path: string, fd: number, data: number, ring: number, addrs: { local?: SockAddrText; peer?: SockAddrText }, allowHalfOpen: boolean): StackSocket {
  // Node never ends our side by itself: the descriptor's EOF may be an error, known only after SO_ERROR.
  const s = (ring >= 0 ? RingSocket.open(data, ring) : new net.Socket({ fd: data, readable: true, writable: true, allowHalfOpen: true })) as StackSocket;
  s.stackFd = fd;
  s.client = client;
  const define = (k: string, v: unknown) => Object.defineProperty(s, k, { value: v, configurable: true });
  const setAddrs = (local?: SockAddrText, peer?: SockAddrText) => {
    if (local) {
      define('localAddress', local.addr);
      define('localPort', local.port);
      define('localFamily', familyName(local));
    }
    if (peer) {
      define('remoteAddress', peer.addr);
      define('remotePort', peer.port);
      define('remoteFamily', familyName(peer));
    }
  };
  setAddrs(addrs.local, addrs.peer);
  (s as unknown as { setAddrs: typeof setAddrs }).setAddrs = setAddrs;
  // The descriptor's EOF is the peer's FIN or a connection error; SO_ERROR tells which.
  let eofSeen!: (e: Error | null) => void;
  const eof = new Promise<Error | null>((r) => (eofSeen = r));
  (s as unknown as { stackEof: Promise<Error | null> }).stackEof = eof;
  // While a connect is in flight its own result reports the error: asking SO_ERROR then would
  // take the error from under it (sock_error reads it once), and connect() would see ENOTCONN.
  let connecting: Promise<unknown> = Promise.resolve();
  (s as unknown as { stackConnecting: (p: Promise<unknown>) => void }).stackConnecting = (p) => {
    connecting = p.catch(() => {});
  };
  s.on('end', () => {
    connecting.then(() => client.getsockoptInt(fd, SOL_SOCKET, SO_ERROR)).then(
      (e) => {
        const err = e ? new SyscallError(e, 'read') : null;
        eofSeen(err);
        if (err) s.destroy(err);
        else if (!allowHalfOpen) s.end();
      },
      () => {
        eofSeen(null);
        if (!allowHalfOpen) s.end();
      },
    );
  });
  s.once('close', () => {
    client.closeFd(fd).catch(() => {}).finally(() => release(path, client));
  });
  s.setNoDelay = (on = true) => {
    client.setsockopt(fd, 6, 1, on ? 1 : 0).catch(() => {});
    return s;
  };
  s.setKeepAlive = (on = false, delay = 0) => {
    client.setsockopt(fd, SOL_SOCKET, 9, on ? 1 : 0).catch(() => {});
    if (on && delay >= 1000) client.setsockopt(fd, 6, 4, Math.floor(delay / 1000)).catch(() => {});
    return s;
  };
  return s;
}

/** 'IPv4' or 'IPv6', as net.Socket reports a family. */
function familyName(sa: SockAddrText): string {
  return sa.family === AF_INET6 ? 'IPv6' : 'IPv4';
}

/**
 * A sockaddr for an address string in the socket's family; a dotted IPv4
 * address on an AF_INET6 socket becomes v4-mapped (::ffff:a.b.c.d), and no
 * address means the family's wildcard.
 */
function inetSockaddr(family: number, addr: string | undefined, port: number): SockAddrText {
  if (family === AF_INET6) {
    const a = addr === undefined || addr === '' ? '::' : net.isIPv4(addr) ? `::ffff:${addr}` : addr;
    return { family: AF_INET6, addr: a, port, flowinfo: 0, scopeId: 0 };
  }
  return { family: AF_INET, addr: addr ?? '0.0.0.0', port };
}

/** net.connect() over the stack: the socket emits 'connect' when the handshake completes. */
export function connect(opts: StackConnectOptions, listener?: () => void): StackSocket {
  const path = opts.api ?? DEFAULT_API_PATH;
  const client = acquire(path, opts.rings ?? ringsWanted());
  let inner: StackSocket | null = null;
  // An IPv6 peer (or local address) needs an AF_INET6 socket, as net.connect picks by address.
  const family = net.isIPv6(opts.host) || (opts.localAddress !== undefined && net.isIPv6(opts.localAddress)) ? AF_INET6 : AF_INET;
  const ready = (async () => {
    await client.ready();
    const { fd, data, ring } = await client.socket(family, SOCK_STREAM, 0);
    if (data < 0) throw new Error('tapstackd did not pass a data descriptor');
    inner = wrap(client, path, fd, data, ring, {}, true);
    if (opts.noDelay) await client.setsockopt(fd, 6, 1, 1);
    if (opts.localAddress || opts.localPort) await client.bind(fd, inetSockaddr(family, opts.localAddress, opts.localPort ?? 0));
    return inner;
  })();
  // Hand back a socket synchronously: a Duplex that becomes the real one once the descriptor exists.
  const out = new DeferredSocket(ready, async (s) => {
    await client.connect(s.stackFd, inetSockaddr(family, opts.host, opts.port));
    const [local, peer] = await Promise.all([client.getsockname(s.stackFd), client.getpeername(s.stackFd)]);
    (s as unknown as { setAddrs: (l?: SockAddrText, p?: SockAddrText) => void }).setAddrs(local, peer);
  }, () => release(path, client), opts.allowHalfOpen ?? false);
  if (listener) out.once('connect', listener);
  return out as unknown as StackSocket;
}

export const createConnection = connect;

/**
 * The socket connect() returns: a Duplex standing in for the net.Socket
 * that exists once the daemon has passed the descriptor and the handshake
 * is done. Writes before that are held (bounded by the stream's
 * highWaterMark, as net.Socket holds writes while connecting).
 */
class DeferredSocket extends Duplex {
  inner: StackSocket | null = null;
  connecting = true;
  #early: ((err?: Error | null) => void) | null = null;
  constructor(ready: Promise<StackSocket>, connectFn: (s: StackSocket) => Promise<void>, onFail: () => void, allowHalfOpen: boolean) {
    super({ allowHalfOpen });
    ready
      .then(async (s) => {
        this.inner = s;
        // A refused or unreachable connect rejects with its own errno; an error the descriptor
        // raises meanwhile is the same failure, reported once, by the connect.
        let early: Error | null = null;
        const hold = (e: Error) => (early ??= e);
        s.on('error', hold);
        const connected = connectFn(s);
        (s as unknown as { stackConnecting: (p: Promise<unknown>) => void }).stackConnecting(connected);
        await connected;
        s.off('error', hold);
        if (early) throw early;
        this.connecting = false;
        s.on('data', (d) => {
          if (!this.push(d)) s.pause();
        });
        const eof = (s as unknown as { stackEof: Promise<Error | null> }).stackEof;
        s.on('end', () => {
          eof.then((err) => (err ? this.destroy(err) : this.push(null)));
        });
        s.on('error', (e) => this.destroy(e));
        s.on('close', () => {
          // After an EOF, wait for its SO_ERROR verdict before closing.
          const settle = () => {
            if (!this.destroyed) this.destroy();
          };
          if (s.readableEnded) eof.then(settle);
          else settle();
        });
        this.emit('connect');
        this.emit('ready');
        const cb = this.#early;
        this.#early = null;
        cb?.();
      })
      .catch((e) => {
        if (this.inner) this.inner.destroy();
        else onFail();
        this.destroy(e);
      });
  }
  get stackFd(): number {
    return this.inner?.stackFd ?? -1;
  }
  /** As net.Socket's: 'opening' while connecting, then by which ways are still open. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
  /** As net.Socket's: no connection under it yet (or any more). */
  get pending(): boolean {
    return this.connecting || !this.inner || this.destroyed;
  }
  /** Bytes written and not yet taken, here and in the socket under it. */
  get bufferSize(): number {
    return this.writableLength + (this.inner?.writableLength ?? 0);
  }
  get remoteAddress(): string | undefined {
    return this.inner?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.inner?.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.inner?.remoteFamily;
  }
  get localFamily(): string | undefined {
    return (this.inner as unknown as { localFamily?: string } | null)?.localFamily;
  }
  get localAddress(): string | undefined {
    return this.inner?.localAddress;
  }
  get localPort(): number | undefined {
    return this.inner?.localPort;
  }
  override _read(): void {
    this.inner?.resume();
  }
  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.connecting || !this.inner) {
      this.#early = () => this._write(chunk, enc, cb);
      return;
    }
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', () => cb());
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (!this.inner || this.connecting) {
      this.#early = () => this._final(cb);
      return;
    }
    this.inner.end(cb);
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.inner && !this.inner.destroyed) this.inner.destroy();
    cb(err);
  }
  setNoDelay(on = true): this {
    this.inner?.setNoDelay(on);
    return this;
  }
}

export interface StackServerOptions {
  api?: string;
  /** As net.createServer: false (the default) ends a connection's side when the peer's FIN arrives. */
  allowHalfOpen?: boolean;
  /**
   * TCP Fast Open on the listener (TCP_FASTOPEN): at most this many
   * connections opened by their SYN and not yet through their handshake.
   * The stack does it when net.ipv4.tcp_fastopen has the server bit (2).
   */
  fastopen?: number;
  /** Connections' data through shared-memory rings when the daemon offers them (default: unless TAPSTACK_RINGS=0). */
  rings?: boolean;
}

/** net.createServer() over the stack. */
export function createServer(opts: StackServerOptions | ((s: StackSocket) => void) = {}, listener?: (s: StackSocket) => void): StackServer {
  if (typeof opts === 'function') return new StackServer({}, opts);
  return new StackServer(opts, listener);
}

export class StackServer extends EventEmitter {
  #client: Client | null = null;
  #fd = -1;
  #address: SockAddrText | null = null;
  #closing = false;
  readonly #path: string;
  readonly #allowHalfOpen: boolean;
  readonly #fastopen: number | undefined;
  readonly #rings: boolean;
  constructor(opts: StackServerOptions = {}, listener?: (s: StackSocket) => void) {
    super();
    this.#rings = opts.rings ?? ringsWanted();
    this.#path = opts.api ?? DEFAULT_API_PATH;
    this.#allowHalfOpen = opts.allowHalfOpen ?? false;
    this.#fastopen = opts.fastopen;
    if (listener) this.on('connection', listener);
  }

  get listening(): boolean {
    return this.#fd >= 0 && !this.#closing;
  }

  address(): { address: string; port: number; family: string } | null {
    return this.#address ? { address: this.#address.addr, port: this.#address.port, family: familyName(this.#address) } : null;
  }

  listen(port: number, host?: string | (() => void), backlog?: number | (() => void), cb?: () => void): this {
    const h = typeof host === 'string' ? host : '0.0.0.0';
    const b = typeof backlog === 'number' ? backlog : 511;
    const done = [host, backlog, cb].find((x) => typeof x === 'function') as (() => void) | undefined;
    if (done) this.once('listening', done);
    (async () => {
      const client = acquire(this.#path, this.#rings);
      this.#client = client;
      await client.ready();
      // '::' (or any IPv6 address) listens on an AF_INET6 socket: dual-stack for '::', as net.Server does.
      const family = net.isIPv6(h) ? AF_INET6 : AF_INET;
      const { fd, data, ring } = await client.socket(family, SOCK_STREAM, 0);
      if (data >= 0) unixAddon().close(data); // a listener carries no data
      if (ring >= 0) unixAddon().close(ring);
      this.#fd = fd;
      await client.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
      await client.bind(fd, inetSockaddr(family, h, port));
      if (this.#fastopen !== undefined) await client.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, this.#fastopen);
      await client.listen(fd, b);
      this.#address = await client.getsockname(fd);
      this.emit('listening');
      this.#acceptLoop(client, fd);
    })().catch((e) => {
      this.#cleanup();
      this.emit('error', e);
    });
    return this;
  }

  async #acceptLoop(client: Client, fd: number): Promise<void> {
    while (!this.#closing) {
      let a;
      try {
        a = await client.accept(fd, 0);
      } catch (e) {
        if (this.#closing) break;
        const code = (e as SyscallError).code;
        if (code === 'EMFILE' || code === 'ENOBUFS') {
          this.emit('error', e);
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        this.emit('error', e);
        break;
      }
      const local = await client.getsockname(a.fd).catch(() => undefined);
      acquire(this.#path, this.#rings); // each connection holds the shared client too
      const s = wrap(client, this.#path, a.fd, a.data, a.ring, { local, peer: a.peer }, this.#allowHalfOpen);
      this.emit('connection', s);
    }
  }

  close(cb?: (err?: Error) => void): this {
    if (cb) this.once('close', cb);
    if (this.#closing) return this;
    this.#closing = true;
    const client = this.#client;
    if (client && this.#fd >= 0) {
      client.closeFd(this.#fd).catch(() => {}).finally(() => this.#cleanup());
    } else this.#cleanup();
    return this;
  }

  #cleanup(): void {
    if (this.#client) release(this.#path, this.#client);
    this.#client = null;
    this.#fd = -1;
    queueMicrotask(() => this.emit('close'));
  }
}
