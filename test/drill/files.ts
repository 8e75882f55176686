/**
 * The files a script makes and opens (`/tmp/testfile`): kept in a private
 * directory made for the run on first use and removed when it ends, so
 * runs never share or leave files, and nothing outside /tmp is touched.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class RunFiles {
  #dir: string | null = null;

  /** The real path of a script's /tmp/NAME (one level, no '..'), or null for any other path. */
  path(p: string): string | null {
    const m = /^\/tmp\/([A-Za-z0-9_.-]+)$/.exec(p);
    if (!m || m[1] === '.' || m[1] === '..') return null;
    this.#dir ??= mkdtempSync(join(tmpdir(), 'tapstack-drill-'));
    return join(this.#dir, m[1]);
  }

  remove(): void {
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = null;
  }
}
