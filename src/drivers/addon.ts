/** The native TAP addon (native/tap.c), typed. */
import { createRequire } from 'node:module';

export interface TapAddon {
  /** multiQueue: IFF_MULTI_QUEUE; each call on the same name attaches one more queue (docs/shards.md). */
  openTap(name: string, vnetHdr: boolean, multiQueue?: boolean): { fd: number; name: string; vnetHdrSize: number };
  setOffload(fd: number, flags: number): void;
  /** On: our steering program picks the queue of the kernel's frames (native/tap_steer.c, src/drivers/tap_steer.ts); off: tun's flow hash. */
  setSteering(fd: number, on: boolean): void;
  linkSetUp(name: string, up: boolean): void;
  linkSetMtu(name: string, mtu: number): void;
  linkSetMac(name: string, mac: Uint8Array): void;
  linkGetMac(name: string): Buffer;
  linkGetIndex(name: string): number;
  addrSetIpv4(name: string, addr: number, prefix: number): void;
  /** Add an IPv6 address to the kernel side (AF_INET6 SIOCSIFADDR); EEXIST when it is there already. */
  addrSetIpv6(name: string, addr: Uint8Array, prefix: number): void;
  closeFd(fd: number): void;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  writeBatch(fd: number, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, count: number): number;
  startReader(fd: number, ring: Uint8Array, slotSize: number, lengths: Int32Array, cb: (count: number, err: string | null) => void): unknown;
  pauseReader(h: unknown): void;
  resumeReader(h: unknown): void;
  stopReader(h: unknown): void;
  /** Slot i's next frames go into buf (>= slotSize bytes): the stack kept the old one. */
  setSlot(h: unknown, i: number, buf: Uint8Array): void;
  TUN_F_CSUM: number;
  TUN_F_TSO4: number;
  TUN_F_TSO6: number;
  TUN_F_TSO_ECN: number;
}

let cached: TapAddon | null = null;

/** Load build/Release/tap.node (built by `npm install`). */
export function loadAddon(): TapAddon {
  if (!cached) {
    const require = createRequire(import.meta.url);
    cached = require('../../../build/Release/tap.node') as TapAddon;
  }
  return cached;
}

/** An Error from the addon carries the errno name as `code`. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}
