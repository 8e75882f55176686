/**
 * Congestion controls a scenario loads (`cc_modules`): JavaScript modules
 * whose default export is a tcp_congestion_ops object (or an array of
 * them), registered in every sender's stack beside the built-in ones, so
 * a flow's `cc` can name them. Each is checked here for the members every
 * algorithm has; the stack's registry checks the rest when it registers it.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TcpCongestionOps } from '../net/ipv4/tcp_sock.js';
import { ScenarioError } from './scenario.js';

const isFn = (v: unknown): boolean => typeof v === 'function';

/** The modules' algorithms, in order; `baseDir` is what relative paths are relative to (the scenario file's folder). */
export async function loadCcModules(paths: readonly string[], baseDir: string): Promise<TcpCongestionOps[]> {
  const out: TcpCongestionOps[] = [];
  for (const [i, p] of paths.entries()) {
    const key = `cc_modules[${i}]`;
    const file = resolve(baseDir, p);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ScenarioError(`${key}: cannot load ${file}: ${code === 'ERR_MODULE_NOT_FOUND' ? 'no such file' : (e as Error).message.split('\n')[0]}`);
    }
    const list = Array.isArray(mod.default) ? mod.default : [mod.default];
    for (const ops of list) {
      const o = ops as Partial<TcpCongestionOps> & { congControl?: unknown } | undefined;
      if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || !/^[a-z0-9_]{1,15}$/.test(o.name) || !isFn(o.ssthresh) || !isFn(o.undoCwnd) || !(isFn(o.congAvoid) || isFn(o.congControl)))
        throw new ScenarioError(
          `${key}: ${file}: the default export must be congestion control operations (or an array of them): an object with a name (lowercase letters, digits, _; at most 15), ssthresh, undoCwnd, and congAvoid or congControl`,
        );
      out.push(o as TcpCongestionOps);
    }
  }
  return out;
}
