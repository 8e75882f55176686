/**
 * Linux errno values (asm-generic/errno-base.h, errno.h). The stack returns
 * them negated, as the kernel's functions do; the API puts them on the wire
 * with their names (errnoName).
 */
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EPIPE = 32;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const EPROTO = 71;
export const EBADFD = 77;
export const ENOTSOCK = 88;
export const EDESTADDRREQ = 89;
export const EMSGSIZE = 90;
export const EPROTOTYPE = 91;
export const ENOPROTOOPT = 92;
export const EPROTONOSUPPORT = 93;
export const ESOCKTNOSUPPORT = 94;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ENOBUFS = 105;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ESHUTDOWN = 108;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTDOWN = 112;
export const EHOSTUNREACH = 113;
export const EALREADY = 114;
export const EINPROGRESS = 115;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [EINTR]: 'EINTR', [EBADF]: 'EBADF', [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM', [EACCES]: 'EACCES', [EFAULT]: 'EFAULT', [ENODEV]: 'ENODEV', [EINVAL]: 'EINVAL',
  [ENFILE]: 'ENFILE', [EMFILE]: 'EMFILE', [ENOTTY]: 'ENOTTY', [EPIPE]: 'EPIPE', [ERANGE]: 'ERANGE',
  [ENAMETOOLONG]: 'ENAMETOOLONG', [ENOSYS]: 'ENOSYS', [EPROTO]: 'EPROTO', [EBADFD]: 'EBADFD',
  [ENOTSOCK]: 'ENOTSOCK', [EDESTADDRREQ]: 'EDESTADDRREQ', [EMSGSIZE]: 'EMSGSIZE', [EPROTOTYPE]: 'EPROTOTYPE',
  [ENOPROTOOPT]: 'ENOPROTOOPT', [EPROTONOSUPPORT]: 'EPROTONOSUPPORT', [ESOCKTNOSUPPORT]: 'ESOCKTNOSUPPORT',
  [EOPNOTSUPP]: 'EOPNOTSUPP', [EAFNOSUPPORT]: 'EAFNOSUPPORT', [EADDRINUSE]: 'EADDRINUSE',
  [EADDRNOTAVAIL]: 'EADDRNOTAVAIL', [ENETDOWN]: 'ENETDOWN', [ENETUNREACH]: 'ENETUNREACH',
  [ECONNABORTED]: 'ECONNABORTED', [ECONNRESET]: 'ECONNRESET', [ENOBUFS]: 'ENOBUFS', [EISCONN]: 'EISCONN',
  [ENOTCONN]: 'ENOTCONN', [ESHUTDOWN]: 'ESHUTDOWN', [ETIMEDOUT]: 'ETIMEDOUT', [ECONNREFUSED]: 'ECONNREFUSED',
  [EHOSTDOWN]: 'EHOSTDOWN', [EHOSTUNREACH]: 'EHOSTUNREACH', [EALREADY]: 'EALREADY', [EINPROGRESS]: 'EINPROGRESS',
};

/** The errno's name ("ECONNREFUSED"), or "E<number>" for one this table lacks. */
export function errnoName(errno: number): string {
  const e = Math.abs(errno);
  return NAMES[e] ?? `E${e}`;
}

/** The number for a name, or 0. */
export function errnoByName(name: string): number {
  for (const k in NAMES) if (NAMES[k] === name) return Number(k);
  return 0;
}
