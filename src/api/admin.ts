/**
 * The API's own calls, tapstack's rather than the kernel's (ts_sockets,
 * ts_counters, ts_sysctl, ts_capture, ts_trace): what `tapstack ss`,
 * `stats`, `sysctl`, `capture` and `trace` ask the daemon. Apart from server.ts, which
 * dispatches them, as /proc, sysctl and packet sockets are apart from the
 * socket calls in Linux.
 */
import type { Stack } from '../net/stack.js';
import type { StackLog } from '../net/core/net.js';
import type { Sock } from '../net/core/sock.js';
import { inetDiagDump } from '../net/ipv4/inet_diag.js';
import { sysctlGet, sysctlList, sysctlSet } from '../net/sysctl.js';
import { compileFilter, FilterError, type FramePredicate } from '../lib/pcap_filter.js';
import { EACCES, EINVAL, ENOBUFS, ENOSYS, EOPNOTSUPP, EPERM } from '../uapi.js';
import { TcpCongError } from '../net/ipv4/tcp_cong.js';
import type { TcpCongModules } from '../net/ipv4/tcp_cong_module.js';
import { isAbsolute } from 'node:path';
import { Capture, CaptureHub } from './capture.js';
import { compileSsFilter, SsFilterError, type SsPredicate } from '../lib/ss_filter.js';
import { Trace, TraceHub } from './trace.js';
import type { ApiClient, ApiMib } from './conn.js';
import type { Outcome } from './files.js';
import { unixAddon } from './unix.js';
import { CAPTURE_PCAPNG } from './proto.js';

/** The largest reply of tapstack's own JSON calls: not bound by the request limit (100k sockets are a few MB). */
const API_MAX_REPLY = 64 * 1024 * 1024;
/** Each end of a capture's socketpair: a burst of frames fits while the reader catches up. */
const CAPTURE_PAIR_BUF = 1 << 20;

const err = (errno: number): Outcome => ({ ret: -errno });

export class ApiAdmin {
  readonly #ux = unixAddon();
  readonly #pair = new Int32Array(2);
  /** Live captures (tapstack capture), made on the first one. */
  #captures: CaptureHub | null = null;
  /** Live traces (tapstack trace), made on the first one. */
  #traces: TraceHub | null = null;
  /** Loadable congestion control (tapstack cc). */
  ccModules: TcpCongModules | null = null;

  constructor(
    readonly stack: Stack,
    readonly log: StackLog,
    readonly mib: ApiMib,
    /** The client and descriptor holding a socket, for `ss`'s users column. */
    readonly ownerOf: (sk: Sock) => { pid: number; fd: number } | null,
  ) {}

  json(v: unknown): Outcome {
    const b = Buffer.from(JSON.stringify(v));
    if (b.length > API_MAX_REPLY) return err(ENOBUFS);
    return { ret: b.length, body: (w) => w.bytes(b) };
  }

  /** `ss -tanpie` as data: every socket, with the owning client where there is one. */
  sockets(info: boolean): Outcome {
    return this.json(inetDiagDump(this.stack.tcp, this.stack.udp, { info, owner: this.ownerOf }).rows);
  }

  /** Every counter, the API's own included (nstat). */
  counters(): Outcome {
    return this.json({ ...this.stack.counters(), Api: { ...this.mib } });
  }

  /**
   * "" lists every setting, "name" reads one, "name=value" writes one. Writes
   * need uid 0, as /proc/sys is root's; a bad value is EINVAL, an unknown name
   * ENOENT, a read-only one EPERM (src/net/sysctl.ts has the names).
   */
  sysctl(c: ApiClient, req: string): Outcome {
    if (req === '') return this.json(Object.fromEntries(sysctlList(this.stack)));
    const eq = req.indexOf('=');
    const name = (eq < 0 ? req : req.slice(0, eq)).trim();
    if (eq < 0) {
      const v = sysctlGet(this.stack, name);
      return typeof v === 'number' && v < 0 ? err(-v) : this.json({ [name]: v });
    }
    if (c.uid !== 0) return err(EACCES);
    const why = { message: '' };
    const rc = sysctlSet(this.stack, name, req.slice(eq + 1).trim(), why);
    if (rc < 0) {
      this.log.debug({ pid: c.pid, msg: why.message }, 'api: sysctl refused');
      return err(-rc);
    }
    return this.json({ [name]: sysctlGet(this.stack, name) });
  }

  /**
   * tapstack capture: every frame the device sees that the filter takes, as
   * pcap on a descriptor for the client (root only, as a packet socket is);
   * a bad filter is EINVAL (the CLI names the fault before asking).
   */
  capture(c: ApiClient, flags: number, filterText: string): Outcome {
    if (c.uid !== 0) return err(EPERM);
    if (flags & ~CAPTURE_PCAPNG) return err(EINVAL);
    if (!c.wantFds) return err(EOPNOTSUPP);
    let filter: FramePredicate;
    try {
      filter = compileFilter(filterText);
    } catch (e) {
      if (e instanceof FilterError) return err(EINVAL);
      throw e;
    }
    if (this.#ux.socketPair(CAPTURE_PAIR_BUF, CAPTURE_PAIR_BUF, this.#pair) < 0) return err(ENOBUFS);
    this.#captures ??= new CaptureHub(this.stack, (x) => {
      this.mib.CaptureDrops += x.dropped;
      this.log.info({ frames: x.frames, dropped: x.dropped }, 'api: capture ended');
    });
    this.#captures.add(new Capture(this.#pair[0], filter, this.#captures, (flags & CAPTURE_PCAPNG) !== 0));
    this.mib.Captures++;
    this.log.info({ pid: c.pid, filter: filterText, pcapng: (flags & CAPTURE_PCAPNG) !== 0 }, 'api: capture started');
    return { ret: 0, fd: this.#pair[1] };
  }

  /**
   * tapstack trace: TCP's tracepoints for every socket the ss-style filter
   * takes, as JSON lines on a descriptor for the client (root only, as
   * tracefs is); a bad filter is EINVAL.
   */
  trace(c: ApiClient, filterText: string): Outcome {
    if (c.uid !== 0) return err(EPERM);
    if (!c.wantFds) return err(EOPNOTSUPP);
    let filter: SsPredicate;
    try {
      filter = compileSsFilter(filterText);
    } catch (e) {
      if (e instanceof SsFilterError) return err(EINVAL);
      throw e;
    }
    if (this.#ux.socketPair(CAPTURE_PAIR_BUF, CAPTURE_PAIR_BUF, this.#pair) < 0) return err(ENOBUFS);
    this.#traces ??= new TraceHub(this.stack, (t) => {
      this.mib.TraceDrops += t.out.dropped;
      this.log.info({ records: t.out.records, dropped: t.out.dropped }, 'api: trace ended');
    });
    this.#traces.add(new Trace(this.#pair[0], filter, this.#traces));
    this.mib.Traces++;
    this.log.info({ pid: c.pid, filter: filterText }, 'api: trace started');
    return { ret: 0, fd: this.#pair[1] };
  }

  /**
   * tapstack cc: "list" (anyone), "load PATH" and "unload NAME" (root only,
   * as module loading is: EPERM). A refused load is its errno (ENOENT,
   * EPERM for a file root does not alone control, EINVAL for what is not a
   * module, EEXIST for a taken name), the reason logged; unload is ENOENT or
   * EBUSY (sockets use it, or it is the default). The reply may come later
   * (a load starts a worker).
   */
  cc(c: ApiClient, req: string, reply: (o: Outcome) => void): void {
    const mods = this.ccModules;
    if (!mods) return reply(err(ENOSYS));
    const sp = req.indexOf(' ');
    const verb = sp < 0 ? req : req.slice(0, sp);
    const arg = sp < 0 ? '' : req.slice(sp + 1);
    if (verb === 'list' && !arg) return reply(this.json(mods.list()));
    if ((verb !== 'load' && verb !== 'unload') || !arg) return reply(err(EINVAL));
    if (c.uid !== 0) return reply(err(EPERM));
    if (verb === 'unload') {
      const rc = mods.unload(arg);
      this.log.info({ pid: c.pid, module: arg, rc }, 'api: cc unload');
      return reply(rc < 0 ? err(-rc) : this.json({ unloaded: arg }));
    }
    // The daemon's working directory is nobody's business: a path must say where it is.
    if (!isAbsolute(arg)) return reply(err(EINVAL));
    mods.load(arg).then(
      (m) => {
        this.log.info({ pid: c.pid, module: m.name, file: arg }, 'api: cc load');
        reply(this.json({ loaded: m.name, hooks: m.hooks }));
      },
      (e: unknown) => {
        // Anything else (the file changed under the checks, no worker): not loadable, never a crash.
        const errno = e instanceof TcpCongError ? e.errno : EINVAL;
        this.log.warn({ pid: c.pid, file: arg, errno, reason: (e as Error).message }, 'api: cc load refused');
        reply(err(errno));
      },
    );
  }

  stop(): void {
    this.#traces?.closeAll();
    this.#captures?.closeAll();
  }
}
