/*
 * ring.h - the shared-memory data rings between an application and
 * tapstackd (docs/api.md, "Data rings"): plain C, no Node, so the client
 * addon and the LD_PRELOAD library share one implementation.
 *
 * One memfd per stream socket, mapped by both sides:
 *
 *   0      header: u32 magic, u32 version, u32 up_size, u32 down_size
 *   64     ring UP   (application -> daemon)
 *   320    ring DOWN (daemon -> application)
 *   4096   UP's data (up_size bytes), then DOWN's (down_size bytes)
 *
 * Each ring is single-producer single-consumer, as io_uring's SQ/CQ:
 * free-running u32 indices masked by the size (a power of two). Every word
 * has exactly one writer, so neither side ever needs a read-modify-write on
 * shared memory:
 *
 *   +0   prod        producer: bytes ever produced
 *   +4   prod_flags  producer: TSR_NEED_SPACE (asleep until room), TSR_FIN (no data after prod)
 *   +64  cons        consumer: bytes ever consumed
 *   +68  cons_flags  consumer: TSR_NEED_WAKEUP (asleep until data), TSR_CLOSED (reads no more)
 *
 * The flags are the low byte; the upper 24 bits of a flags word count the
 * writer's sleeps, so the other side rings once per sleep (a flags word it
 * has not rung for yet) and never misses a sleep that looks like the last.
 *
 * Wake-ups go over a doorbell descriptor (a byte on the socket's socketpair)
 * only when the other side said it sleeps, as IORING_SQ_NEED_WAKEUP: the
 * sleeper sets its flag, issues a full fence, and looks at the ring again
 * before sleeping; the other side publishes its index, issues a full fence,
 * and rings if the flag is set. One of the two always sees the other.
 *
 * Each side keeps the indices it owns in private memory (struct tsr_end) and
 * only reads the other's: an index or flag read from the mapping is
 * untrusted (the daemon's view of an application) and checked before any
 * byte moves: the other side's index may never put more than the ring's
 * size between the two, nor move backwards past our own. A violation is
 * -EFAULT and the end is dead from then on.
 */
#ifndef TAPSTACK_RING_H
#define TAPSTACK_RING_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define TSR_MAGIC 0x47525354u /* "TSRG" */
#define TSR_VERSION 1u
#define TSR_HDR 4096u
#define TSR_MIN 4096u
#define TSR_MAX (64u << 20)

#define TSR_UP 0
#define TSR_DOWN 1
#define TSR_ROLE_APP 0
#define TSR_ROLE_DAEMON 1

#define TSR_NEED_SPACE 1u  /* prod_flags */
#define TSR_FIN 2u         /* prod_flags */
#define TSR_NEED_WAKEUP 1u /* cons_flags */
#define TSR_CLOSED 2u      /* cons_flags */
#define TSR_SLEEP 0x100u   /* one sleep, in a flags word's upper 24 bits */

#define TSR_RING_OFF(r) (64u + (unsigned)(r) * 256u)
#define TSR_PROD 0u
#define TSR_PROD_FLAGS 4u
#define TSR_CONS 64u
#define TSR_CONS_FLAGS 68u

struct tsr_end {
  uint8_t *base;     /* NULL once dead or unmapped */
  size_t maplen;
  uint32_t size[2];
  int out, in;       /* the ring we produce into, the one we consume from */
  uint32_t prod;     /* ours: produced into `out` */
  uint32_t cons;     /* ours: consumed from `in` */
  uint32_t pflags;   /* ours: out's prod_flags */
  uint32_t cflags;   /* ours: in's cons_flags */
  uint32_t peek;     /* bytes the last tsr_peek reported available (tsr_advance's bound) */
  uint32_t rang_w;   /* out's cons_flags when we last rang for NEED_WAKEUP (one bell per sleep) */
  uint32_t rang_s;   /* in's prod_flags when we last rang for NEED_SPACE */
  int bell;          /* the doorbell descriptor, -1 for none */
  int faulted;
  int level;         /* RING_LEVEL consumer: NEED_WAKEUP stays set until the producer rang for it */
  int want_bell;     /* a bell was due with no descriptor to ring (bell -1): the caller rings its own way */
  uint32_t bells;    /* doorbell bytes sent (ts_ring_off: the client takes exactly these out of its end) */
};

static inline volatile uint32_t *tsr_word(const struct tsr_end *e, int ring, unsigned field) {
  return (volatile uint32_t *)(e->base + TSR_RING_OFF(ring) + field);
}
static inline uint32_t tsr_load(const struct tsr_end *e, int ring, unsigned field) {
  return __atomic_load_n(tsr_word(e, ring, field), __ATOMIC_ACQUIRE);
}
static inline void tsr_store(const struct tsr_end *e, int ring, unsigned field, uint32_t v) {
  __atomic_store_n(tsr_word(e, ring, field), v, __ATOMIC_RELEASE);
}
static inline uint8_t *tsr_data(const struct tsr_end *e, int ring) {
  return e->base + TSR_HDR + (ring == TSR_DOWN ? e->size[TSR_UP] : 0);
}
static inline int tsr_pow2(uint32_t x) { return x >= TSR_MIN && x <= TSR_MAX && (x & (x - 1)) == 0; }

/* The mapping's length for these sizes. */
static inline size_t tsr_maplen(uint32_t up, uint32_t down) { return (size_t)TSR_HDR + up + down; }

/* Lay out a fresh (zeroed) mapping: the creator's side (the daemon). */
static inline void tsr_format(uint8_t *base, uint32_t up, uint32_t down) {
  uint32_t *h = (uint32_t *)base;
  h[1] = TSR_VERSION;
  h[2] = up;
  h[3] = down;
  __atomic_store_n(&h[0], TSR_MAGIC, __ATOMIC_RELEASE);
}

/*
 * Take one side of a mapping. The sizes are read once and checked against
 * the mapping's length; `role` says which ring is ours to produce into.
 * 0, or -EPROTO for a header that is not a ring's.
 */
static inline int tsr_attach(struct tsr_end *e, uint8_t *base, size_t maplen, int role) {
  memset(e, 0, sizeof *e);
  e->bell = -1;
  if (maplen < TSR_HDR) return -EPROTO;
  const uint32_t *h = (const uint32_t *)base;
  if (__atomic_load_n(&h[0], __ATOMIC_ACQUIRE) != TSR_MAGIC || h[1] != TSR_VERSION) return -EPROTO;
  uint32_t up = h[2], down = h[3];
  if (!tsr_pow2(up) || !tsr_pow2(down) || tsr_maplen(up, down) > maplen) return -EPROTO;
  e->base = base;
  e->maplen = maplen;
  e->size[TSR_UP] = up;
  e->size[TSR_DOWN] = down;
  e->out = role == TSR_ROLE_DAEMON ? TSR_DOWN : TSR_UP;
  e->in = role == TSR_ROLE_DAEMON ? TSR_UP : TSR_DOWN;
  return 0;
}

static inline int tsr_fault(struct tsr_end *e) {
  e->faulted = 1;
  return -EFAULT;
}

static inline void tsr_ring_bell(struct tsr_end *e) {
  static const char b = 1;
  if (e->bell < 0) e->want_bell = 1;
  else if (send(e->bell, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) e->bells++;
}

/*
 * The other side's consume index on `out`, checked: at most size behind our
 * prod and never ahead of it. -1 (and the end faulted) otherwise.
 */
static inline int64_t tsr_peer_cons(struct tsr_end *e) {
  uint32_t c = tsr_load(e, e->out, TSR_CONS);
  if ((uint32_t)(e->prod - c) > e->size[e->out]) return tsr_fault(e), -1;
  return c;
}

/* The other side's produce index on `in`, checked: at most size ahead of our cons. */
static inline int64_t tsr_peer_prod(struct tsr_end *e) {
  uint32_t p = tsr_load(e, e->in, TSR_PROD);
  if ((uint32_t)(p - e->cons) > e->size[e->in]) return tsr_fault(e), -1;
  return p;
}

/* After publishing into `out`: ring if the consumer sleeps, once per sleep (its flags word counts them). */
static inline void tsr_kick_consumer(struct tsr_end *e) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t f = tsr_load(e, e->out, TSR_CONS_FLAGS);
  if (!(f & TSR_NEED_WAKEUP) || f == e->rang_w) return;
  e->rang_w = f;
  tsr_ring_bell(e);
}

/*
 * After freeing room in `in`: ring if the producer waits for room, once per
 * wait, and only once half the ring is free (as a UNIX socket wakes its
 * writer only when most of its buffer is free): a producer far ahead is
 * woken once per half ring, not once per read.
 */
static inline void tsr_kick_producer(struct tsr_end *e) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t f = tsr_load(e, e->in, TSR_PROD_FLAGS);
  if (!(f & TSR_NEED_SPACE) || f == e->rang_s) return;
  uint32_t used = tsr_load(e, e->in, TSR_PROD) - e->cons;
  if (used > e->size[e->in] - e->size[e->in] / 2) return; /* not yet (or a bogus prod: the next peek says so) */
  e->rang_s = f;
  tsr_ring_bell(e);
}

/*
 * RING_LEVEL (docs/api.md): the producer keeps a doorbell byte in the
 * consumer's descriptor while `out` holds data (or FIN): rung once per
 * sleep the consumer announced, as tsr_kick_consumer, but also when the
 * consumer asks again ("ring me": it took the byte and then found data)
 * with nothing newly published. A consumer that sleeps on an empty ring is
 * rung by the next publish.
 */
static inline void tsr_kick_level(struct tsr_end *e) {
  if (!e->base || e->faulted) return;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  int64_t c = tsr_peer_cons(e);
  if (c < 0) return;
  if ((uint32_t)c == e->prod && !(e->pflags & TSR_FIN)) return;
  uint32_t f = tsr_load(e, e->out, TSR_CONS_FLAGS);
  if (!(f & TSR_NEED_WAKEUP) || f == e->rang_w) return;
  e->rang_w = f;
  tsr_ring_bell(e);
}

/* Our own flag words: stored only when they change. */
static inline void tsr_set_pflags(struct tsr_end *e, uint32_t f) {
  if (f != e->pflags) tsr_store(e, e->out, TSR_PROD_FLAGS, e->pflags = f);
}
static inline void tsr_set_cflags(struct tsr_end *e, uint32_t f) {
  if (f != e->cflags) tsr_store(e, e->in, TSR_CONS_FLAGS, e->cflags = f);
}

/*
 * What tsr_write and tsr_reserve check first: the room in `out` (0 when
 * full), -EPIPE once the consumer said it reads no more or we sent FIN,
 * -EFAULT for a corrupt ring. A producer that asks clears its NEED_SPACE.
 */
static inline int64_t tsr_room(struct tsr_end *e) {
  if (!e->base || e->faulted) return -EFAULT;
  if (e->pflags & TSR_FIN) return -EPIPE;
  if (e->pflags & TSR_NEED_SPACE) tsr_set_pflags(e, e->pflags & ~TSR_NEED_SPACE);
  if (tsr_load(e, e->out, TSR_CONS_FLAGS) & TSR_CLOSED) return -EPIPE;
  int64_t c = tsr_peer_cons(e);
  if (c < 0) return -EFAULT;
  return e->size[e->out] - (uint32_t)(e->prod - (uint32_t)c);
}

/*
 * Copy up to len bytes into `out`: the bytes taken (0 when full), -EPIPE
 * once the consumer said it reads no more or we sent FIN, -EFAULT for a
 * corrupt ring.
 */
static inline int64_t tsr_write(struct tsr_end *e, const uint8_t *src, size_t len) {
  int64_t r = tsr_room(e);
  if (r < 0) return r;
  uint32_t room = (uint32_t)r;
  uint32_t size = e->size[e->out];
  uint32_t n = len < room ? (uint32_t)len : room;
  if (!n) return 0;
  uint32_t at = e->prod & (size - 1);
  uint32_t first = size - at < n ? size - at : n;
  uint8_t *d = tsr_data(e, e->out);
  memcpy(d + at, src, first);
  if (n > first) memcpy(d, src + first, n - first);
  e->prod += n;
  tsr_store(e, e->out, TSR_PROD, e->prod);
  tsr_kick_consumer(e);
  return n;
}

/*
 * Room in `out` for a batch the caller copies itself (into ringView's
 * buffer) and publishes with tsr_commit: the room (0 when full), and in
 * *off the offset of our produce index. -EPIPE, -EFAULT as tsr_write.
 */
static inline int64_t tsr_reserve(struct tsr_end *e, uint32_t *off) {
  *off = 0;
  e->peek = 0;
  int64_t r = tsr_room(e);
  if (r < 0) return r;
  *off = e->prod & (e->size[e->out] - 1);
  e->peek = (uint32_t)r;
  return e->peek;
}

/* Publish n bytes copied after tsr_reserve (at most its room): 0, -EINVAL past it. */
static inline int tsr_commit(struct tsr_end *e, uint32_t n) {
  if (!e->base || e->faulted) return -EFAULT;
  if (n > e->peek) return -EINVAL;
  if (!n) return 0;
  e->peek = 0;
  e->prod += n;
  tsr_store(e, e->out, TSR_PROD, e->prod);
  tsr_kick_consumer(e);
  return 0;
}

/*
 * Bytes waiting in `in`, and in *off the offset (in `in`'s data) of the
 * contiguous run at our cons, of *len bytes. 0 with FIN seen: the end of
 * the stream. -EAGAIN when empty, -EFAULT for a corrupt ring.
 */
static inline int64_t tsr_peek(struct tsr_end *e, uint32_t *off, uint32_t *len) {
  *off = *len = 0;
  e->peek = 0;
  if (!e->base || e->faulted) return -EFAULT;
  if ((e->cflags & TSR_NEED_WAKEUP) && !e->level) tsr_set_cflags(e, e->cflags & ~TSR_NEED_WAKEUP);
  /* FIN before prod: a FIN seen means prod is final. */
  uint32_t pf = tsr_load(e, e->in, TSR_PROD_FLAGS);
  int64_t p = tsr_peer_prod(e);
  if (p < 0) return -EFAULT;
  uint32_t avail = (uint32_t)p - e->cons;
  if (!avail) return (pf & TSR_FIN) ? 0 : -EAGAIN;
  uint32_t size = e->size[e->in];
  uint32_t at = e->cons & (size - 1);
  *off = at;
  *len = size - at < avail ? size - at : avail;
  e->peek = avail;
  return avail;
}

/* Consume n bytes of what tsr_peek reported. 0, or -EFAULT past it. */
static inline int tsr_advance(struct tsr_end *e, uint32_t n) {
  if (!e->base || e->faulted) return -EFAULT;
  if (n > e->peek) return -EINVAL;
  if (!n) return 0;
  e->peek -= n;
  e->cons += n;
  tsr_store(e, e->in, TSR_CONS, e->cons);
  tsr_kick_producer(e);
  return 0;
}

/* Copy up to len bytes out of `in`: the count, 0 at the end of the stream, -EAGAIN, -EFAULT. */
static inline int64_t tsr_read(struct tsr_end *e, uint8_t *dst, size_t len) {
  uint32_t off, first;
  int64_t avail = tsr_peek(e, &off, &first);
  if (avail <= 0) return avail;
  uint32_t n = len < (uint64_t)avail ? (uint32_t)len : (uint32_t)avail;
  const uint8_t *s = tsr_data(e, e->in);
  uint32_t a = first < n ? first : n;
  memcpy(dst, s + off, a);
  if (n > a) memcpy(dst + a, s, n - a);
  tsr_advance(e, n);
  return n;
}

/*
 * About to sleep: for data in `in` (dir 0) or room in `out` (dir 1: half the ring free). Sets
 * the flag, fences, looks again: 1 if there is something after all (the
 * flag is cleared, do not sleep), 0 to sleep (the other side will ring),
 * -EFAULT.
 */
static inline int tsr_prepare_wait(struct tsr_end *e, int dir) {
  if (!e->base || e->faulted) return -EFAULT;
  if (dir == 0) {
    tsr_set_cflags(e, (e->cflags + TSR_SLEEP) | TSR_NEED_WAKEUP);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint32_t pf = tsr_load(e, e->in, TSR_PROD_FLAGS);
    int64_t p = tsr_peer_prod(e);
    if (p < 0) return -EFAULT;
    if ((uint32_t)p != e->cons || (pf & TSR_FIN)) {
      if (!e->level) tsr_set_cflags(e, e->cflags & ~TSR_NEED_WAKEUP);
      return 1;
    }
    return 0;
  }
  tsr_set_pflags(e, (e->pflags + TSR_SLEEP) | TSR_NEED_SPACE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  int64_t c = tsr_peer_cons(e);
  if (c < 0) return -EFAULT;
  /* Sleep until half the ring is free: the consumer rings then (tsr_kick_producer), not before. */
  if ((uint32_t)(e->prod - (uint32_t)c) <= e->size[e->out] / 2 || (tsr_load(e, e->out, TSR_CONS_FLAGS) & TSR_CLOSED)) {
    tsr_set_pflags(e, e->pflags & ~TSR_NEED_SPACE);
    return 1;
  }
  return 0;
}

/* The end of our stream (FIN after the data): the consumer is rung whatever it said. */
static inline void tsr_fin(struct tsr_end *e) {
  if (!e->base || e->faulted || (e->pflags & TSR_FIN)) return;
  tsr_set_pflags(e, (e->pflags & ~TSR_NEED_SPACE) | TSR_FIN);
  tsr_ring_bell(e);
}

/* We read no more from `in`: the producer's writes fail with EPIPE from now on. */
static inline void tsr_close_in(struct tsr_end *e) {
  if (!e->base || e->faulted || (e->cflags & TSR_CLOSED)) return;
  tsr_set_cflags(e, (e->cflags & ~TSR_NEED_WAKEUP) | TSR_CLOSED);
  tsr_ring_bell(e);
}

/* Bytes queued: in `in` waiting for us (which 0), or in `out` not yet consumed (which 1); -EFAULT. */
static inline int64_t tsr_queued(struct tsr_end *e, int which) {
  if (!e->base || e->faulted) return -EFAULT;
  if (which == 0) {
    int64_t p = tsr_peer_prod(e);
    return p < 0 ? (int64_t)-EFAULT : (int64_t)(uint32_t)((uint32_t)p - e->cons);
  }
  int64_t c = tsr_peer_cons(e);
  return c < 0 ? (int64_t)-EFAULT : (int64_t)(uint32_t)(e->prod - (uint32_t)c);
}

/* What the other side said: bit 0 FIN on `in`, bit 1 CLOSED on `out`. */
static inline int tsr_peer_state(const struct tsr_end *e) {
  if (!e->base) return 3;
  return ((tsr_load(e, e->in, TSR_PROD_FLAGS) & TSR_FIN) ? 1 : 0) | ((tsr_load(e, e->out, TSR_CONS_FLAGS) & TSR_CLOSED) ? 2 : 0);
}

#endif
