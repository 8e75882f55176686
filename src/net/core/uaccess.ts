/**
 * User memory that faults (include/linux/uaccess.h's copy_from_user and
 * copy_to_user failing): a caller marks the bytes of a buffer from some
 * offset on as inaccessible, as a bad or partly unmapped user pointer is,
 * and the protocols' copies check before they copy, failing with EFAULT
 * where Linux's do. The mark is on the buffer's memory, so every view of
 * it (a subarray) sees it.
 */
const faults = new WeakMap<ArrayBufferLike, number>();

/**
 * A buffer of `len` bytes standing for user memory whose first `valid`
 * bytes are readable and writable and the rest fault (0: a bad pointer
 * such as NULL).
 */
export function userBuffer(len: number, valid = 0): Buffer {
  const b = Buffer.alloc(len);
  faults.set(b.buffer, b.byteOffset + Math.max(0, Math.min(valid, len)));
  return b;
}

/** How many of the `len` bytes of `b` from `off` on can be accessed before a fault (len when none). */
export function userAccessible(b: Uint8Array, off: number, len: number): number {
  const f = faults.get(b.buffer);
  if (f === undefined) return len;
  return Math.max(0, Math.min(len, f - (b.byteOffset + off)));
}
