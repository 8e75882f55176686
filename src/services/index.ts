/**
 * The built-in services, inetd style, in-process on the stack's own socket
 * calls: echo (RFC 862), discard (RFC 863), chargen (RFC 864) and a small
 * HTTP/1.1 server with the status page. Each listens on every address of
 * the stack at its configured port, or not at all for null.
 */
import { type Stack } from '../net/stack.js';
import { ChargenApp } from './chargen.js';
import { DiscardApp } from './discard.js';
import { EchoApp } from './echo.js';
import { HTTP_IDLE_MS, HTTP_LINGER_MS, HttpApp, HttpStats } from './http.js';
import type { ServiceRow } from './status.js';
import { StreamListener, type ListenOptions, type StreamApp } from './stream.js';
import { DgramService } from './udp.js';
import { AF_INET, AF_INET6 } from '../uapi.js';
import { type StackLog, nullLog } from '../net/core/net.js';

export interface ServicesConfig {
  echo: number | null;
  discard: number | null;
  chargen: number | null;
  http: number | null;
}

export type ServiceName = keyof ServicesConfig;

/** The well-known ports (a key left out of a config keeps its default). */
export const DEFAULT_SERVICES: Readonly<ServicesConfig> = Object.freeze({ echo: 7, discard: 9, chargen: 19, http: 80 });

const NAMES: readonly ServiceName[] = ['echo', 'discard', 'chargen', 'http'];

/** Connections per service beyond which new ones are closed at once. */
export const MAX_CONNECTIONS = 1024;

export class Services {
  readonly listeners: StreamListener[] = [];
  /** echo and discard over UDP, on the same ports as their TCP twins. */
  readonly dgram: DgramService[] = [];
  readonly httpStats = new HttpStats();
  /** Services that could not listen (port taken, bad port), with why. */
  readonly failed: { name: ServiceName; port: number; error: string }[] = [];

  /** The port each running service listens on. */
  get ports(): Partial<Record<ServiceName, number>> {
    return Object.fromEntries(this.listeners.map((l) => [l.name, l.port]));
  }

  /** Rows for the status page. */
  rows(): ServiceRow[] {
    return [
      ...this.listeners.map((l) => ({ name: l.name, port: l.port, stats: l.stats, ...(l.name === 'http' ? { extra: { ...this.httpStats } } : {}) })),
      ...this.dgram.map((d) => ({ name: `${d.name}/udp`, port: d.port, stats: d.stats, extra: { ...d.dstats } })),
    ];
  }

  /** Close one service's listeners (TCP and its UDP twin) and connections, as stop() does; forget its failures. */
  stopService(name: ServiceName): void {
    for (const l of this.listeners.filter((x) => x.name === name)) l.stop();
    this.listeners.splice(0, this.listeners.length, ...this.listeners.filter((x) => x.name !== name));
    for (const d of this.dgram.filter((x) => x.name === name)) d.stop();
    this.dgram.splice(0, this.dgram.length, ...this.dgram.filter((x) => x.name !== name));
    this.failed.splice(0, this.failed.length, ...this.failed.filter((x) => x.name !== name));
  }

  /** Close every listener and connection (FIN, or RST where data is unread). */
  stop(): void {
    for (const l of this.listeners) l.stop();
    this.listeners.length = 0;
    for (const d of this.dgram) d.stop();
    this.dgram.length = 0;
  }
}

export function startServices(stack: Stack, config: Partial<ServicesConfig> = DEFAULT_SERVICES, log: StackLog = nullLog): Services {
  const services = new Services();
  for (const name of NAMES) startService(services, stack, name, name in config ? config[name] : DEFAULT_SERVICES[name], log);
  log.info({ services: services.ports, udp: services.dgram.map((d) => `${d.name}/${d.port}`) }, 'services listening');
  return services;
}

/**
 * Start one service on `port` (null or undefined: not at all), its UDP twin
 * for echo and discard; a failure is logged and kept in `failed`. The
 * daemon's reload moves a service with stopService, then this.
 */
export function startService(services: Services, stack: Stack, name: ServiceName, port: number | null | undefined, log: StackLog = nullLog): void {
  if (port === null || port === undefined) return;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    services.failed.push({ name, port, error: 'not a port number' });
    log.warn({ service: name, port }, 'service not started: not a port number');
    return;
  }
  const http = { stack, stats: services.httpStats, services: () => services.rows() };
  const apps: Record<ServiceName, [() => StreamApp, ListenOptions]> = {
    echo: [() => new EchoApp(), {}],
    discard: [() => new DiscardApp(), {}],
    chargen: [() => new ChargenApp(), {}],
    http: [() => new HttpApp(http), { idleMs: HTTP_IDLE_MS, lingerMs: HTTP_LINGER_MS }],
  };
  const [factory, opts] = apps[name];
  try {
    services.listeners.push(new StreamListener(stack, name, port, factory, { maxConnections: MAX_CONNECTIONS, ...opts }, log));
  } catch (e) {
    services.failed.push({ name, port, error: (e as Error).message });
    log.warn({ service: name, port, err: (e as Error).message }, 'service not started');
  }
  if (name !== 'echo' && name !== 'discard') return;
  try {
    // With IPv6, one dual-stack AF_INET6 socket serves both families (IPv4 peers v4-mapped).
    services.dgram.push(new DgramService(stack, name, port, name === 'echo', stack.ipv6.enabled ? AF_INET6 : AF_INET, log));
  } catch (e) {
    services.failed.push({ name, port, error: `udp: ${(e as Error).message}` });
    log.warn({ service: `${name}/udp`, port, err: (e as Error).message }, 'service not started');
  }
}
