/**
 * What the lab keeps of a run for its report and plots: growable sample
 * arrays (RTT, queueing delay) and series thinned to what a graph can show
 * (per time bucket the first, lowest, highest and last point of a step
 * line; contiguous segments sent in one bucket merged into one bar), so a
 * five-minute run draws in a few hundred kilobytes. Recording is
 * allocation-free per packet but for the amortized growth of arrays.
 */

/** Numbers appended to a Float64Array that doubles when full. */
export class Samples {
  a = new Float64Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  /** The values, sorted ascending (a copy). */
  sorted(): Float64Array {
    return this.a.slice(0, this.n).sort();
  }
}

/** The q-quantile (0..1) of sorted values, nearest rank; NaN when there are none. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function mean(a: Float64Array, n = a.length): number {
  if (n === 0) return NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i];
  return s / n;
}

/** Round to microsecond-like precision so series print the same everywhere. */
const r6 = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * A step line [t, v, ...] (v may be null: a break) thinned per bucket of
 * `bucket` seconds to its first, lowest, highest and last points in time
 * order, so peaks and troughs survive.
 */
export class StepSeries {
  readonly out: (number | null)[] = [];
  #b = -Infinity;
  #n = 0;
  // First, min, max, last of the open bucket: times and values.
  #t = new Float64Array(4);
  #v = new Float64Array(4);
  #lastNull = false;
  constructor(readonly bucket: number) {}

  push(t: number, v: number | null): void {
    if (v === null) {
      this.#flush();
      if (!this.#lastNull) this.out.push(r6(t), null);
      this.#lastNull = true;
      this.#b = -Infinity;
      return;
    }
    this.#lastNull = false;
    const b = Math.floor(t / this.bucket);
    if (b !== this.#b) {
      this.#flush();
      this.#b = b;
      this.#n = 1;
      this.#t.fill(t);
      this.#v.fill(v);
      return;
    }
    if (v < this.#v[1]) {
      this.#v[1] = v;
      this.#t[1] = t;
    }
    if (v > this.#v[2]) {
      this.#v[2] = v;
      this.#t[2] = t;
    }
    this.#t[3] = t;
    this.#v[3] = v;
    this.#n++;
  }

  #flush(): void {
    if (this.#n === 0) return;
    this.#n = 0;
    // The four points in time order (first and last are already first and last), repeats dropped.
    let ia = 1;
    let ib = 2;
    if (this.#t[ib] < this.#t[ia]) [ia, ib] = [ib, ia];
    let lastT = NaN;
    let lastV = NaN;
    for (const i of [0, ia, ib, 3]) {
      const t = r6(this.#t[i]);
      const v = this.#v[i];
      if (t === lastT && v === lastV) continue;
      if (v === lastV && i !== 3) continue;
      this.out.push(t, v);
      lastT = t;
      lastV = v;
    }
  }

  finish(): (number | null)[] {
    this.#flush();
    return this.out;
  }
}

/** Bars [t, lo, hi]: a segment contiguous with the open bar, in its bucket, extends it. */
export class BarSeries {
  readonly out: number[] = [];
  #b = -Infinity;
  #t = 0;
  #lo = 0;
  #hi = 0;
  #open = false;
  constructor(readonly bucket: number) {}

  push(t: number, lo: number, hi: number): void {
    const b = Math.floor(t / this.bucket);
    if (this.#open && b === this.#b && lo >= this.#lo && lo <= this.#hi) {
      if (hi > this.#hi) this.#hi = hi;
      return;
    }
    this.#flush();
    this.#open = true;
    this.#b = b;
    this.#t = t;
    this.#lo = lo;
    this.#hi = hi;
  }

  #flush(): void {
    if (!this.#open) return;
    this.#open = false;
    this.out.push(r6(this.#t), this.#lo, this.#hi);
  }

  finish(): number[] {
    this.#flush();
    return this.out;
  }
}
