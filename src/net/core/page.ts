/**
 * A refcounted buffer that received payload lives in (struct page, for an
 * skb's fragments): a page of the receive-page cache, or a driver's ring
 * slot that TCP kept instead of copying from (dev.rxPage).
 */
export class RcvPage {
  /** RcvSegs pointing into this page. */
  refs = 0;
  /**
   * Where the page goes once no RcvSeg points into it, when it is not the
   * cache's own: a ring slot's buffer goes back to its driver's pool.
   */
  release: ((p: RcvPage) => void) | null = null;
  constructor(readonly buf: Buffer) {}
}
