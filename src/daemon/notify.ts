/**
 * tapstackd's side of the service manager's notification protocol
 * (systemd's sd_notify(3)): each message is one datagram of "KEY=value"
 * lines to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or, with a
 * leading '@', an abstract name. Node's dgram has no AF_UNIX, so the
 * datagram goes through our UNIX addon (native/unix.c, sendDgram).
 *
 * The watchdog follows sd_watchdog_enabled(3): $WATCHDOG_USEC is the
 * interval the manager expects a WATCHDOG=1 within, for the process named
 * by $WATCHDOG_PID if that is set (another pid's watchdog is not ours);
 * keep-alives go at half the interval, from a timer of the event loop, so
 * a loop that stops turning stops them.
 *
 * Nothing is removed from the environment (sd_notify's unset_environment is
 * 0): a child started from the daemon sees what the daemon saw.
 */
import { createRequire } from 'node:module';

interface NotifyAddon {
  sendDgram(path: string, buf: Uint8Array): number;
}

let addon: NotifyAddon | null = null;
function notifyAddon(): NotifyAddon {
  if (!addon) addon = createRequire(import.meta.url)('../../../build/Release/unix.node') as NotifyAddon;
  return addon;
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime reads that clock), as MONOTONIC_USEC wants it. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

export interface NotifyEnv {
  NOTIFY_SOCKET?: string;
  WATCHDOG_USEC?: string;
  WATCHDOG_PID?: string;
}

/** What the environment asks for, and why a value in it is ignored. */
export interface NotifySetup {
  /** The socket to notify, or null (none given, or not usable). */
  socket: string | null;
  /** Microseconds of the watchdog interval for this process; 0: no watchdog. */
  watchdogUsec: number;
  /** Each variable that was set but cannot be used, with why (logged by the daemon). */
  ignored: { name: string; value: string; why: string }[];
}

/** Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as sd_notify and sd_watchdog_enabled do. */
export function notifySetup(env: NotifyEnv, pid: number): NotifySetup {
  const ignored: NotifySetup['ignored'] = [];
  let socket: string | null = null;
  const s = env.NOTIFY_SOCKET;
  if (s !== undefined && s !== '') {
    // sd_notify takes an absolute path or an abstract name; systemd's vsock: form is not for a daemon on a TAP.
    if ((s[0] === '/' || s[0] === '@') && s.length >= 2 && Buffer.byteLength(s) < 108) socket = s;
    else ignored.push({ name: 'NOTIFY_SOCKET', value: s, why: 'is not an absolute path or an @abstract name (of at most 107 bytes)' });
  }
  let watchdogUsec = 0;
  const u = env.WATCHDOG_USEC;
  if (u !== undefined && u !== '') {
    const p = env.WATCHDOG_PID;
    const forPid = p === undefined || p === '' ? pid : /^\d+$/.test(p) ? Number(p) : NaN;
    if (!/^\d+$/.test(u) || Number(u) === 0) ignored.push({ name: 'WATCHDOG_USEC', value: u, why: 'is not a positive number of microseconds' });
    else if (Number.isNaN(forPid)) ignored.push({ name: 'WATCHDOG_PID', value: p!, why: 'is not a pid' });
    else if (forPid !== pid) ignored.push({ name: 'WATCHDOG_PID', value: p!, why: `names another process (this one is ${pid}): the watchdog is not ours` });
    else if (!socket) ignored.push({ name: 'WATCHDOG_USEC', value: u, why: 'is set without a usable NOTIFY_SOCKET' });
    else watchdogUsec = Number(u);
  }
  return { socket, watchdogUsec, ignored };
}

export class Notifier {
  /** Datagrams sent, and those the socket refused. */
  sent = 0;
  failed = 0;
  #timer: NodeJS.Timeout | null = null;
  /** The errno of the last failure, so a socket that stays broken is reported once, not per message. */
  #lastErr = 0;

  constructor(
    readonly setup: NotifySetup,
    readonly onError: (errno: number, message: string) => void = () => {},
  ) {}

  get enabled(): boolean {
    return this.setup.socket !== null;
  }

  /** Send one message of "KEY=value" lines; false when there is no socket or it refused the datagram. */
  notify(...lines: string[]): boolean {
    const path = this.setup.socket;
    if (!path) return false;
    const msg = lines.join('\n');
    const rc = notifyAddon().sendDgram(path, Buffer.from(msg, 'utf8'));
    if (rc < 0) {
      this.failed++;
      if (-rc !== this.#lastErr) {
        this.#lastErr = -rc;
        this.onError(-rc, msg.split('\n')[0]);
      }
      return false;
    }
    this.#lastErr = 0;
    this.sent++;
    return true;
  }

  /** Start the keep-alives (WATCHDOG=1 every half interval) if the manager asked for them. */
  watchdogStart(): void {
    if (!this.setup.watchdogUsec || this.#timer) return;
    const everyMs = Math.max(1, Math.floor(this.setup.watchdogUsec / 2000));
    this.notify('WATCHDOG=1');
    this.#timer = setInterval(() => this.notify('WATCHDOG=1'), everyMs);
    // The keep-alive says the loop turns; it does not keep the process up by itself.
    this.#timer.unref();
  }

  watchdogStop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
