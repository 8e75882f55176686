/**
 * Congestion controls a scenario loads (`cc_modules`): modules in the
 * daemon's format (docs/congestion.md, as `tapstack cc load` takes them),
 * loaded by the daemon's loader, TcpCongModules, so they run contained the
 * same way: a worker thread per module, a view of the socket, checked
 * answers, a fault sending the socket to Reno.
 *
 * One TcpCongModules for the whole lab, not one per sender stack: a module
 * is one worker whatever the number of flows (a per-stack set would start
 * a worker per flow and module, up to 64 x 16 threads), and a socket's
 * state in the worker is keyed by an id the module hands out, not by its
 * stack. The set is bound to a stack of its own that never carries a frame
 * (the module's home): its registry is the one load() checks, its MIB
 * counts the modules' faults for the whole lab, and its clock is the
 * lab's virtual clock, which every stack shares, so the `now` a hook sees
 * is the flow's. Each loaded module's ops are then registered in every
 * sender's registry too, so any flow's `cc` may name it. A module stopped
 * after an overrun leaves only the home's registry: the senders' keep its
 * ops, whose init then gives Reno (counted as a fallback), as a daemon's
 * socket on a broken module does.
 */
import { resolve } from 'node:path';
import { Stack } from '../net/stack.js';
import type { VirtualTime } from '../lib/time.js';
import { SeededRandom } from '../lib/random.js';
import type { StackLog } from '../net/core/net.js';
import { TcpCongError } from '../net/ipv4/tcp_cong.js';
import type { TcpCongRegistry } from '../net/ipv4/tcp_cong.js';
import { type TcpCongModule, TcpCongModules } from '../net/ipv4/tcp_cong_module.js';
import { ScenarioError } from './scenario.js';

/** One module of the scenario: its `cc_modules` entry as written, and what was loaded from it. */
export interface LabCcModule {
  path: string;
  mod: TcpCongModule;
}

/** The home stack's link: it never sends (no socket of its own, never up). */
const NO_LINK = { xmit: () => true };

export class LabCcModules {
  readonly loaded: LabCcModule[] = [];
  /** The loader's warnings (a module's first fault, a module stopped), in order: the lab's notes. */
  readonly warnings: string[] = [];
  readonly home: Stack;
  readonly set: TcpCongModules;

  private constructor(readonly time: VirtualTime) {
    const log: StackLog = {
      debug() {},
      info() {},
      warn: (o, msg) => {
        const m = o as { module?: string; reason?: string };
        this.warnings.push(`${m.module}: ${msg} (${m.reason})`);
      },
    };
    this.home = new Stack({ ifname: 'labcc', mac: Buffer.from([2, 0x1a, 0xb0, 0xff, 0xff, 0xff]), mtu: 1500, ipv4: [], gateway: 0 }, NO_LINK, time, new SeededRandom(1), log);
    // The lab runs as its user, on the user's files: those must be the user's (not root's), still not group/other-writable.
    this.set = new TcpCongModules(this.home.tcp, log, { ownerUid: process.getuid?.() ?? 0 });
  }

  /**
   * Load `paths` (relative to `baseDir`, the scenario file's folder) on the
   * lab's clock. A refusal is a ScenarioError naming the entry
   * (`cc_modules[1]: FILE: why`), after stopping what was loaded.
   */
  static async load(paths: readonly string[], baseDir: string, time: VirtualTime): Promise<LabCcModules> {
    const m = new LabCcModules(time);
    try {
      for (const [i, p] of paths.entries()) {
        try {
          m.loaded.push({ path: p, mod: await m.set.load(resolve(baseDir, p)) });
        } catch (e) {
          if (e instanceof TcpCongError) throw new ScenarioError(`cc_modules[${i}]: ${e.message}`);
          throw e;
        }
      }
    } catch (e) {
      m.stop();
      throw e;
    }
    return m;
  }

  /** A sender's registry gets every module's algorithm beside the built-in ones. */
  registerInto(reg: TcpCongRegistry): void {
    // The home's registry has the same built-in names and load() refused duplicates: this cannot clash.
    for (const { mod } of this.loaded) reg.register(mod.ops);
  }

  /** The run is over: every worker ends (or the process would wait on them). */
  stop(): void {
    this.set.stop();
  }
}
