/**
 * The descriptors a script uses besides sockets and epoll: files it opened
 * (from the run's private /tmp, files.ts) and pipes, for sendfile(2) and
 * splice(2) against the stack.
 */

/** An open file: its bytes as they were at open(), and the file offset. */
export interface FileFd {
  kind: 'file';
  fd: number;
  data: Buffer;
  pos: number;
}

/** A pipe's buffer (PIPE_DEF_BUFFERS pages of 4096 bytes, as Linux's default pipe). */
export class Pipe {
  static readonly CAPACITY = 16 * 4096;
  readonly chunks: Buffer[] = [];
  len = 0;
  readers = 1;
  writers = 1;

  space(): number {
    return Pipe.CAPACITY - this.len;
  }

  /** Take up to `len` bytes from buf[off..]: what fits. */
  write(buf: Buffer, off: number, len: number): number {
    const n = Math.min(len, this.space());
    if (n > 0) {
      this.chunks.push(Buffer.from(buf.subarray(off, off + n)));
      this.len += n;
    }
    return n;
  }

  /** Remove and return up to `len` bytes. */
  read(len: number): Buffer {
    const all = Buffer.concat(this.chunks);
    const out = all.subarray(0, Math.min(len, all.length));
    this.chunks.length = 0;
    if (out.length < all.length) this.chunks.push(all.subarray(out.length));
    this.len -= out.length;
    return out;
  }
}

export interface PipeFd {
  kind: 'pipe';
  fd: number;
  pipe: Pipe;
  /** The write end (pipe[1]). */
  write: boolean;
}

/** SPLICE_F_NONBLOCK. */
export const SPLICE_F_NONBLOCK = 2;
