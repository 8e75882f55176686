/**
 * dgram-style UDP sockets over the stack: createSocket() and DgramSocket,
 * as Node's dgram module has them.
 */
import { EventEmitter } from 'node:events';
import { DGRAM_ERR_MARK, DGRAM_F_CMSG, SOCKADDR_MAX_WIRE, sockaddrDecode, sockaddrWrite } from '../api/proto.js';
import { unixAddon } from '../api/unix.js';
import { AF_INET, AF_INET6, EAGAIN, IPPROTO_IPV6, IPV6_V6ONLY, SO_BROADCAST, SO_RCVBUF, SO_REUSEADDR, SO_REUSEPORT, SO_SNDBUF, SOCK_DGRAM, SOL_SOCKET } from '../uapi.js';
import { Client, DEFAULT_API_PATH, SyscallError, acquire, release, sockaddrFromText, sockaddrToText, type SockAddrText } from './client.js';

/** Where a datagram came from, as Node's dgram reports it. */
export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface DgramSocketOptions {
  type: 'udp4' | 'udp6';
  /** API socket path (default DEFAULT_API_PATH). */
  api?: string;
  reuseAddr?: boolean;
  reusePort?: boolean;
  /** udp6: IPV6_V6ONLY (default false: IPv4 peers appear v4-mapped). */
  ipv6Only?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
}

/** u16 length + wire sockaddr for a (family, address text, port). */
function sockaddrBytes(family: number, addr: string, port: number): Buffer {
  const b = Buffer.alloc(SOCKADDR_MAX_WIRE);
  return b.subarray(0, sockaddrWrite(b, 0, sockaddrFromText({ family, addr, port })));
}

/**
 * A UDP socket on the stack with Node's dgram shape: bind, connect, send,
 * 'message' with rinfo, 'listening', 'connect', 'close', 'error'. The
 * datagrams move over the socket's SOCK_SEQPACKET data descriptor (each
 * message `u16 addrlen, sockaddr, payload`); control calls go over the API.
 * Calls are queued in order, so send() right after bind() is fine. The
 * option setters return promises (the kernel's answer is a round trip away).
 */
export class DgramSocket extends EventEmitter {
  readonly #path: string;
  readonly #family: number;
  readonly #opts: DgramSocketOptions;
  #client: Client | null = null;
  #fd = -1;
  #data = -1;
  #watch: unknown = null;
  #chain: Promise<unknown>;
  #bound = false;
  #binding = false;
  #connected = false;
  #closed = false;
  #local: SockAddrText | null = null;
  #peer: SockAddrText | null = null;
  #out: { buf: Buffer; cb?: (err: Error | null, bytes?: number) => void }[] = [];
  readonly #rbuf = Buffer.allocUnsafe(65_536 + 64);

  constructor(opts: DgramSocketOptions) {
    super();
    if (opts.type !== 'udp4' && opts.type !== 'udp6') throw new TypeError(`Bad socket type ${String(opts.type)}: 'udp4' or 'udp6'`);
    this.#opts = opts;
    this.#path = opts.api ?? DEFAULT_API_PATH;
    this.#family = opts.type === 'udp6' ? AF_INET6 : AF_INET;
    this.#chain = this.#open();
    this.#chain.catch((e) => this.#fail(e as Error));
  }

  async #open(): Promise<void> {
    const client = acquire(this.#path);
    this.#client = client;
    await client.ready();
    const { fd, data } = await client.socket(this.#family, SOCK_DGRAM, 0);
    this.#fd = fd;
    this.#data = data;
    const o = this.#opts;
    if (o.reuseAddr) await client.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (o.reusePort) await client.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (this.#family === AF_INET6 && o.ipv6Only) await client.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    if (o.recvBufferSize) await client.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, o.recvBufferSize);
    if (o.sendBufferSize) await client.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, o.sendBufferSize);
    if (data < 0) throw Object.assign(new Error('tapstack dgram sockets need an API client with descriptors'), { code: 'EOPNOTSUPP' });
    const ux = unixAddon();
    this.#watch = ux.watch(data, (ev) => {
      if (ev & ux.UV_WRITABLE) this.#flush();
      if (ev & ux.UV_READABLE) this.#read();
    });
    this.#arm();
  }

  /** Run `fn` after every earlier call; failures go to the callback or 'error'. */
  #then<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(() => {
      if (this.#closed) throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
      return fn();
    });
    this.#chain = p.catch(() => {});
    return p;
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.emit('error', e);
  }

  #arm(): void {
    if (this.#watch === null || this.#closed) return;
    const ux = unixAddon();
    ux.watchSet(this.#watch, ux.UV_READABLE | (this.#out.length ? ux.UV_WRITABLE : 0));
  }

  #read(): void {
    const ux = unixAddon();
    for (let i = 0; i < 256 && !this.#closed; i++) {
      const n = ux.read(this.#data, this.#rbuf, 0, this.#rbuf.length);
      if (n === -EAGAIN || n <= 0) return;
      const b = this.#rbuf;
      const head = b.readUInt16LE(0);
      if (head === DGRAM_ERR_MARK) {
        this.#fail(new SyscallError(-b.readInt32LE(2), 'recvmsg'));
        continue;
      }
      const alen = head & ~DGRAM_F_CMSG;
      const from = sockaddrToText(sockaddrDecode(b.subarray(2, 2 + alen)));
      // Control messages (a socket option asked for them) come before the payload; this socket has no use for them.
      const at = head & DGRAM_F_CMSG ? 2 + alen + 2 + b.readUInt16LE(2 + alen) : 2 + alen;
      const msg = Buffer.from(b.subarray(at, n));
      this.emit('message', msg, { address: from.addr, family: from.family === AF_INET6 ? 'IPv6' : 'IPv4', port: from.port, size: msg.length } satisfies RemoteInfo);
    }
  }

  #flush(): void {
    const ux = unixAddon();
    while (this.#out.length) {
      const o = this.#out[0];
      const w = ux.write(this.#data, o.buf, 0, o.buf.length);
      if (w === -EAGAIN) break;
      this.#out.shift();
      if (w < 0) o.cb?.(new SyscallError(w, 'send'));
      else o.cb?.(null, o.buf.length - (o.buf.readUInt16LE(0) + 2));
    }
    this.#arm();
  }

  /** bind(port?, address?, cb?) or bind({ port, address }, cb?). */
  bind(port?: number | { port?: number; address?: string }, address?: string | (() => void), cb?: () => void): this {
    if (typeof port === 'object') {
      cb = address as (() => void) | undefined;
      address = port.address;
      port = port.port;
    }
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    if (this.#bound || this.#binding) throw Object.assign(new Error('Socket is already bound'), { code: 'ERR_SOCKET_ALREADY_BOUND' });
    this.#binding = true;
    const addr = address ?? (this.#family === AF_INET6 ? '::' : '0.0.0.0');
    this.#then(async () => {
      await this.#client!.bind(this.#fd, { family: this.#family, addr, port: port ?? 0 });
      this.#local = await this.#client!.getsockname(this.#fd);
      this.#bound = true;
    }).then(
      () => {
        if (cb) this.once('listening', cb);
        this.emit('listening');
      },
      (e) => this.#fail(e as Error),
    );
    return this;
  }

  /** Fix the peer: send() without an address goes there and only its datagrams arrive. */
  connect(port: number, address?: string | (() => void), cb?: () => void): void {
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    const addr = address ?? (this.#family === AF_INET6 ? '::1' : '127.0.0.1');
    this.#then(async () => {
      await this.#client!.connect(this.#fd, { family: this.#family, addr, port });
      this.#local = await this.#client!.getsockname(this.#fd);
      this.#peer = await this.#client!.getpeername(this.#fd);
      this.#bound = true;
      this.#connected = true;
    }).then(
      () => {
        cb?.();
        this.emit('connect');
      },
      (e) => this.#fail(e as Error),
    );
  }

  /** connect(AF_UNSPEC). */
  disconnect(): void {
    this.#then(async () => {
      await this.#client!.connect(this.#fd, { family: 0, addr: '', port: 0 });
      this.#connected = false;
      this.#peer = null;
    }).catch((e) => this.#fail(e as Error));
  }

  /** send(msg, cb?) when connected; send(msg, port, address?, cb?) otherwise. */
  send(msg: Buffer | Uint8Array | string, port?: number | ((err: Error | null, bytes?: number) => void), address?: string | ((err: Error | null, bytes?: number) => void), cb?: (err: Error | null, bytes?: number) => void): void {
    if (typeof port === 'function') {
      cb = port;
      port = undefined;
    }
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    const payload = typeof msg === 'string' ? Buffer.from(msg) : Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    const dest = port !== undefined ? { port, addr: address ?? (this.#family === AF_INET6 ? '::1' : '127.0.0.1') } : null;
    this.#then(async () => {
      // Node binds an unbound socket on its first send (and says 'listening').
      if (!this.#bound && !this.#binding) {
        this.#binding = true;
        await this.#client!.bind(this.#fd, { family: this.#family, addr: this.#family === AF_INET6 ? '::' : '0.0.0.0', port: 0 });
        this.#local = await this.#client!.getsockname(this.#fd);
        this.#bound = true;
        this.emit('listening');
      }
      const head = dest ? sockaddrBytes(this.#family, dest.addr, dest.port) : Buffer.from([0, 0]);
      this.#out.push({ buf: Buffer.concat([head, payload]), cb });
      this.#flush();
    }).catch((e) => (cb ? cb(e as Error) : this.#fail(e as Error)));
  }

  /** The bound address, as Node's socket.address(). */
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    if (!this.#local) throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
    return { address: this.#local.addr, family: this.#local.family === AF_INET6 ? 'IPv6' : 'IPv4', port: this.#local.port };
  }

  remoteAddress(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    if (!this.#peer || !this.#connected) throw Object.assign(new Error('Not connected'), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
    return { address: this.#peer.addr, family: this.#peer.family === AF_INET6 ? 'IPv6' : 'IPv4', port: this.#peer.port };
  }

  setBroadcast(flag: boolean): Promise<void> {
    return this.#then(() => this.#client!.setsockopt(this.#fd, SOL_SOCKET, SO_BROADCAST, flag ? 1 : 0));
  }
  setRecvBufferSize(n: number): Promise<void> {
    return this.#then(() => this.#client!.setsockopt(this.#fd, SOL_SOCKET, SO_RCVBUF, n));
  }
  getRecvBufferSize(): Promise<number> {
    return this.#then(() => this.#client!.getsockoptInt(this.#fd, SOL_SOCKET, SO_RCVBUF));
  }
  setSendBufferSize(n: number): Promise<void> {
    return this.#then(() => this.#client!.setsockopt(this.#fd, SOL_SOCKET, SO_SNDBUF, n));
  }
  getSendBufferSize(): Promise<number> {
    return this.#then(() => this.#client!.getsockoptInt(this.#fd, SOL_SOCKET, SO_SNDBUF));
  }

  /** Close the stack socket and the descriptor; 'close' once done. */
  close(cb?: () => void): this {
    if (this.#closed) return this;
    if (cb) this.once('close', cb);
    const finish = (): void => {
      this.#closed = true;
      const ux = unixAddon();
      if (this.#watch !== null) ux.watchClose(this.#watch);
      this.#watch = null;
      if (this.#data >= 0) ux.close(this.#data);
      this.#data = -1;
      for (const o of this.#out) o.cb?.(Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
      this.#out = [];
      const client = this.#client;
      const fd = this.#fd;
      const done = () => {
        if (client) release(this.#path, client);
        this.emit('close');
      };
      if (client && fd >= 0) client.closeFd(fd).catch(() => {}).finally(done);
      else done();
    };
    this.#chain.then(finish, finish);
    return this;
  }
}

/** dgram.createSocket: createSocket('udp4', (msg, rinfo) => ...) or createSocket({ type, api, reuseAddr }). */
export function createSocket(type: 'udp4' | 'udp6' | DgramSocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): DgramSocket {
  const s = new DgramSocket(typeof type === 'string' ? { type } : type);
  if (listener) s.on('message', listener);
  return s;
}
