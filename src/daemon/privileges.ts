/**
 * The privilege drop (config keys user and group), for the single event
 * loop and for the shards alike: once everything that needs root or
 * CAP_NET_ADMIN is done (the TAP's queues open and the kernel side
 * configured, the API socket bound, the pcap file open, the shards'
 * threads running), the daemon becomes the configured user.
 */
import { chownSync, readdirSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config.js';

/**
 * The permitted, effective and ambient capability masks of every thread
 * (capabilities are per thread) that are not zero, as tid.CapXxx -> hex.
 * (Inheritable ones grant nothing without an exec of a file with capabilities.)
 */
export function capsLeft(): Record<string, string> {
  const left: Record<string, string> = {};
  for (const tid of readdirSync('/proc/self/task')) {
    const st = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
    for (const m of st.matchAll(/^(CapPrm|CapEff|CapAmb):\s*([0-9a-f]+)$/gm)) if (BigInt(`0x${m[2]}`) !== 0n) left[`${tid}.${m[1]}`] = m[2];
  }
  return left;
}

/**
 * Become `u`: the API socket (if any) handed to the user, group apiGroup
 * or the user's; then setgroups([]), setgid, setuid: from root to another
 * uid the kernel clears the permitted, effective and ambient capabilities
 * of every thread (glibc's setuid runs on all of them, the worker threads
 * too), which is checked before going on. Returns why it could not, or
 * null once the daemon runs as `u` with no capabilities.
 */
export function dropPrivileges(u: NonNullable<Config['user']>, log: Logger, api: { path: string; group: number | null } | null): string | null {
  const who = `user ${u.name} (uid ${u.uid}, gid ${u.gid})`;
  if (process.geteuid!() !== 0) {
    if (process.geteuid!() !== u.uid || process.getegid!() !== u.gid) return `cannot drop to ${who}: the daemon runs as uid ${process.geteuid!()}, gid ${process.getegid!()}, not as root`;
    const left = capsLeft();
    if (Object.keys(left).length) return `runs as ${who} already but holds capabilities ${JSON.stringify(left)}: start it as root (the drop clears them) or without them`;
    log.info({ user: u.name, uid: u.uid, gid: u.gid }, `running as ${who} already, no capabilities`);
    return null;
  }
  if (api) {
    try {
      chownSync(api.path, u.uid, api.group ?? u.gid);
    } catch (e) {
      return `cannot hand the API socket ${api.path} to ${who}: ${(e as Error).message}`;
    }
  }
  try {
    process.setgroups!([]);
    process.setgid!(u.gid);
    process.setuid!(u.uid);
  } catch (e) {
    return `cannot drop to ${who}: ${(e as Error).message}`;
  }
  const left = capsLeft();
  if (Object.keys(left).length) return `capabilities remain after dropping to ${who}: ${JSON.stringify(left)}`;
  log.info({ user: u.name, uid: u.uid, gid: u.gid, api: api?.path ?? null }, `dropped privileges: running as ${who}, no capabilities`);
  return null;
}
