/**
 * A windowed running maximum (lib/win_minmax.c, Kathleen Nichols'
 * algorithm): the best, second-best and third-best samples of the window,
 * each newer than the one before, so the maximum over the last `win` time
 * units is known in constant time and space. Time is whatever unit the
 * caller counts (BBR counts round trips). Unsigned 32-bit arithmetic, as
 * the kernel's.
 */
export class Minmax {
  // s[0..2] of struct minmax: the times and values.
  t0 = 0;
  v0 = 0;
  t1 = 0;
  v1 = 0;
  t2 = 0;
  v2 = 0;

  /** minmax_get: the windowed maximum. */
  get(): number {
    return this.v0;
  }

  /** minmax_reset: forget everything; `meas` at `t` is the only sample. */
  reset(t: number, meas: number): number {
    this.t0 = this.t1 = this.t2 = t;
    this.v0 = this.v1 = this.v2 = meas;
    return meas;
  }

  /** minmax_running_max: add a sample at time `t`; the maximum over the last `win`. */
  runningMax(win: number, t: number, meas: number): number {
    // A new maximum, or nothing of the window left: start over from this sample.
    if (meas >= this.v0 || ((t - this.t2) >>> 0) > win) return this.reset(t, meas);
    if (meas >= this.v1) {
      this.t2 = this.t1 = t;
      this.v2 = this.v1 = meas;
    } else if (meas >= this.v2) {
      this.t2 = t;
      this.v2 = meas;
    }
    return this.#subwinUpdate(win, t, meas);
  }

  /** minmax_subwin_update: age the choices out of the window; keep later choices from later quarters. */
  #subwinUpdate(win: number, t: number, meas: number): number {
    const dt = (t - this.t0) >>> 0;
    if (dt > win) {
      // The best is out of the window: the second and third move up (twice if the second is too).
      this.#shift(t, meas);
      if (((t - this.t0) >>> 0) > win) this.#shift(t, meas);
    } else if (this.t1 === this.t0 && dt > win / 4) {
      // A quarter of the window without a second choice: take one from the second quarter.
      this.t2 = this.t1 = t;
      this.v2 = this.v1 = meas;
    } else if (this.t2 === this.t1 && dt > win / 2) {
      this.t2 = t;
      this.v2 = meas;
    }
    return this.v0;
  }

  #shift(t: number, meas: number): void {
    this.t0 = this.t1;
    this.v0 = this.v1;
    this.t1 = this.t2;
    this.v1 = this.v2;
    this.t2 = t;
    this.v2 = meas;
  }
}
