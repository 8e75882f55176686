/*
 * preload_ring.c - reads through a stream socket's down ring, for the
 * LD_PRELOAD library (RING_LEVEL, docs/api.md "Data rings").
 *
 * The program polls its descriptor itself (poll, select, epoll: none of
 * them pass through us), so its readiness must follow the ring: the daemon
 * keeps a byte in the descriptor while the ring holds data or its end. We
 * take that byte out when a read leaves the ring empty (or finds it so), and
 * then announce a new sleep (NEED_WAKEUP with the sleep count bumped): the
 * daemon's next publish rings again, a new byte, so edge-triggered epoll
 * sees an edge for every batch of data as it would on the socketpair. If data came between our look and the announcement,
 * the byte is gone while data waits: ts_ring_wake asks the daemon to ring
 * once more ("ring me"), so the descriptor never stays unreadable over
 * unread data for longer than that call.
 *
 * The up direction stays on the socketpair (writes are the kernel's, and so
 * is POLLOUT). Nothing here ever writes to the descriptor: every wake of
 * the daemon (room made in the ring, "ring me") is an API call.
 */
#define _GNU_SOURCE
#include "preload_ring.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The most TAPSTACK_BUSY_READ may ask for, in µs: a spin is a CPU held, bounded. */
#define BUSY_READ_MAX 10000

/*
 * RING_POOL (docs/api.md): the mappings the daemon named by slot, kept between our sockets so a short
 * connection costs no mmap or munmap. A slot is busy while a socket reads through it; the daemon names
 * it again only after our close of that socket (or its ts_ring_off), which we send after it is free
 * here. Every mapping is MADV_DONTFORK: a forked child, another client, never sees a ring of ours.
 * g_mu held for all of it.
 */
#define PRING_SLOTS 256 /* the slot is a byte on the wire */
static struct {
  uint8_t *map;
  size_t maplen;
  int busy;
} g_slot[PRING_SLOTS];
/* Bumped when the pool is forgotten (the API connection lost, a fork's child): older rings unmap themselves. */
static unsigned g_slot_gen = 1;

static uint8_t *map_memfd(int memfd, size_t *len) {
  struct stat st;
  uint8_t *map = NULL;
  if (fstat(memfd, &st) == 0 && st.st_size >= (off_t)TSR_HDR) {
    *len = (size_t)st.st_size;
    map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (map == MAP_FAILED) map = NULL;
    else madvise(map, *len, MADV_DONTFORK);
  }
  close(memfd);
  return map;
}

int pring_slot_set(int slot, int memfd) {
  if (slot < 0 || slot >= PRING_SLOTS || g_slot[slot].busy) {
    close(memfd); /* not a slot we can take, or one a socket reads through: the attach that names it fails */
    return -1;
  }
  if (g_slot[slot].map) munmap(g_slot[slot].map, g_slot[slot].maplen); /* the daemon replaced it */
  g_slot[slot].map = map_memfd(memfd, &g_slot[slot].maplen);
  return g_slot[slot].map ? 0 : -1;
}

void pring_pool_forget(int unmap) {
  for (int i = 0; i < PRING_SLOTS; i++)
    if (unmap && g_slot[i].map && !g_slot[i].busy) munmap(g_slot[i].map, g_slot[i].maplen);
  memset(g_slot, 0, sizeof g_slot);
  g_slot_gen++;
}

struct pring *pring_attach(int memfd, int slot) {
  if (slot >= 0 && memfd >= 0 && pring_slot_set(slot, memfd) < 0) return NULL;
  if (slot >= 0 && (slot >= PRING_SLOTS || !g_slot[slot].map || g_slot[slot].busy)) return NULL;
  struct pring *r = calloc(1, sizeof *r);
  if (!r) {
    if (slot < 0) close(memfd);
    return NULL;
  }
  r->slot = slot;
  r->gen = g_slot_gen;
  if (slot >= 0) {
    r->map = g_slot[slot].map;
    r->maplen = g_slot[slot].maplen;
  } else {
    r->map = map_memfd(memfd, &r->maplen);
  }
  if (!r->map || tsr_attach(&r->e, r->map, r->maplen, TSR_ROLE_APP) < 0) {
    if (r->map && slot < 0) munmap(r->map, r->maplen);
    free(r);
    return NULL;
  }
  if (slot >= 0) g_slot[slot].busy = 1;
  pthread_mutex_init(&r->mu, NULL);
  r->e.level = 1;
  r->e.cflags = TSR_NEED_WAKEUP; /* the daemon formats the ring with us asleep (ringLevel) */
  r->e.bell = -1;                /* never a byte up the pair: wakes go over the API */
  return r;
}

void pring_unmap(struct pring *r) {
  if (r->map) {
    /* A pooled ring goes back to its slot: the daemon resets it once our close or ts_ring_off reaches it. */
    if (r->slot >= 0 && r->gen == g_slot_gen && g_slot[r->slot].map == r->map) g_slot[r->slot].busy = 0;
    else munmap(r->map, r->maplen);
  }
  r->map = NULL;
  r->e.base = NULL;
  r->off = 1;
}

void pring_take_bells(int fd, uint32_t n) {
  uint8_t b[256];
  while (n) {
    ssize_t k = real_recv(fd, b, n < sizeof b ? n : sizeof b, MSG_DONTWAIT);
    if (k <= 0) break; /* they are all there already (a socketpair write is synchronous); EOF: none left to take */
    n -= (uint32_t)k;
  }
}

/* Take the readiness byte(s) out of fd; *hup when the daemon's end is gone (EOF). */
static uint32_t drain(int fd, int *hup) {
  uint8_t b[64];
  uint32_t took = 0;
  for (;;) {
    ssize_t k = real_recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (k == 0) *hup = 1;
    if (k <= 0) return took;
    took += (uint32_t)k;
    if ((size_t)k < sizeof b) return took;
  }
}

/*
 * A read left the ring empty (no FIN): take the readiness byte out and announce a new sleep now, not
 * at the next read (r->mu held). A program on edge-triggered epoll (nginx) reads once, takes fewer
 * bytes than it asked for as "drained", and waits for the next edge: only a new byte makes one, and
 * the daemon writes one only for an announced sleep. If data came meanwhile, ring me.
 */
static void settle(struct pring *r, int fd) {
  uint32_t off, len;
  if (tsr_peek(&r->e, &off, &len) != -EAGAIN) return;
  int hup = 0;
  uint32_t took = drain(fd, &hup);
  r->taken += took;
  /* As below: a sleep announced and not rung yet stays the one to ring for. */
  if (took || !(r->e.cflags & TSR_NEED_WAKEUP)) {
    if (tsr_prepare_wait(&r->e, 0) == 1) r->e.want_bell = 1;
  }
}

/*
 * TAPSTACK_BUSY_READ=µs (0, the default: off), the counterpart of Linux's
 * net.core.busy_read: a blocking read that finds the ring empty watches it
 * that long before it sleeps. Data that comes meanwhile is read with no
 * wake-up on either side (the daemon still rings once for the sleep the
 * last read announced, for edge-triggered waiters, but nobody sleeps on
 * it: settle takes the byte). Read once.
 */
static int busy_read_us(void) {
  static int us = -1;
  int v = __atomic_load_n(&us, __ATOMIC_RELAXED);
  if (v >= 0) return v;
  const char *s = getenv("TAPSTACK_BUSY_READ");
  long n = s ? strtol(s, NULL, 10) : 0;
  v = n < 0 ? 0 : n > BUSY_READ_MAX ? BUSY_READ_MAX : (int)n;
  __atomic_store_n(&us, v, __ATOMIC_RELAXED);
  return v;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Spin (r->mu held) until the ring holds data or its end, or `us` pass: 1 if something came. */
static int busy_wait(struct tsr_end *e, int us) {
  uint64_t end = now_ns() + (uint64_t)us * 1000u;
  for (unsigned i = 1;; i++) {
    if (!e->base || e->faulted) return 1; /* take() says what */
    if (tsr_load(e, e->in, TSR_PROD) != e->cons || (tsr_load(e, e->in, TSR_PROD_FLAGS) & TSR_FIN)) return 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((i & 31) == 0 && now_ns() >= end) return 0;
  }
}

/* Copy what the ring holds into iov from byte `at` on; consumed unless peek. Bytes, 0 at the end, -EAGAIN, -EFAULT. */
static int64_t take(struct tsr_end *e, const struct iovec *iov, int iovcnt, size_t at, int peek) {
  uint32_t off, first;
  int64_t avail = tsr_peek(e, &off, &first);
  if (avail <= 0) return avail;
  const uint8_t *d = tsr_data(e, e->in);
  uint32_t size = e->size[e->in], pos = off;
  uint64_t left = (uint64_t)avail;
  size_t got = 0, skip = at;
  for (int i = 0; i < iovcnt && left; i++) {
    size_t l = iov[i].iov_len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
    l -= skip;
    skip = 0;
    while (l && left) {
      uint64_t run = size - pos;
      if (run > left) run = left;
      if (run > l) run = l;
      memcpy(p, d + pos, run);
      p += run;
      l -= run;
      left -= run;
      got += run;
      pos = (pos + (uint32_t)run) & (size - 1);
    }
  }
  if (!peek && got) tsr_advance(e, (uint32_t)got);
  return (int64_t)got;
}

ssize_t pring_recv(struct pring *r, int fd, const struct iovec *iov, int iovcnt, int flags, pring_wait_fn wait,
                   pring_wake_fn wake, void *arg) {
  size_t want = 0;
  for (int i = 0; i < iovcnt; i++) want += iov[i].iov_len;
  if (!want) return 0;
  int peek = (flags & MSG_PEEK) != 0;
  int nonblock = (flags & MSG_DONTWAIT) != 0;
  int all = (flags & MSG_WAITALL) && !peek && !nonblock;
  size_t done = 0;
  /* A busy read spins only where the read would block (not O_NONBLOCK), and no longer than SO_RCVTIMEO. */
  int busy = nonblock ? 0 : busy_read_us();
  if (busy > 0) {
    int ms = wait(fd);
    if (ms == -2) busy = 0;
    else if (ms >= 0 && ms < busy / 1000) busy = ms * 1000;
  }
  for (;;) {
    pthread_mutex_lock(&r->mu);
    if (r->off) {
      pthread_mutex_unlock(&r->mu);
      /* Turned off meanwhile (another thread forked, say): the rest is the descriptor's. */
      return done ? (ssize_t)done : PRING_PLAIN;
    }
    int64_t n = take(&r->e, iov, iovcnt, done, peek);
    if (n == -EAGAIN && busy > 0 && busy_wait(&r->e, busy)) n = take(&r->e, iov, iovcnt, done, peek);
    if (n > 0 && !peek) settle(r, fd);
    if (n == -EAGAIN) {
      int hup = 0;
      uint32_t took = drain(fd, &hup);
      r->taken += took;
      /* A new sleep only when we took the byte: else the one we announced is still unrung. */
      if (took || !(r->e.cflags & TSR_NEED_WAKEUP)) {
        int w = tsr_prepare_wait(&r->e, 0);
        if (w < 0) n = w;
        else if (w == 1) {
          r->e.want_bell = 1; /* data came meanwhile and its byte is gone: ring me */
          n = take(&r->e, iov, iovcnt, done, peek);
        }
      }
      if (n == -EAGAIN && hup) {
        /* The daemon let go of the socket (closed, or the ring faulted): whatever is left, then the end. */
        n = take(&r->e, iov, iovcnt, done, peek);
        if (n == -EAGAIN) n = 0;
      }
    }
    if (n == 0 && !r->eof_told) {
      /* The end of the stream read: the daemon shuts the descriptor's read side now that the ring is
       * empty, so POLLRDHUP (and POLLHUP after a reset) show as on a socket. */
      r->eof_told = 1;
      r->e.want_bell = 1;
    }
    int ring_me = r->e.want_bell;
    r->e.want_bell = 0;
    pthread_mutex_unlock(&r->mu);
    if (ring_me) wake(arg);
    if (n > 0) {
      done += (size_t)n;
      if (!all || done == want) return (ssize_t)done;
      continue;
    }
    if (n == 0) return (ssize_t)done; /* the end of the stream (after what MSG_WAITALL gathered) */
    if (n != -EAGAIN) return done ? (ssize_t)done : (ssize_t)n;
    int timeo = nonblock ? -2 : wait(fd);
    if (timeo == -2) return done ? (ssize_t)done : -EAGAIN;
    /* Blocking (MSG_WAITALL may have part): wait for the readiness byte. */
    struct pollfd p = {fd, POLLIN, 0};
    int pr = poll(&p, 1, timeo);
    if (pr < 0) return done ? (ssize_t)done : -errno; /* EINTR, as recv(2) */
    if (pr == 0) return done ? (ssize_t)done : -EAGAIN; /* SO_RCVTIMEO ran out */
    if (p.revents & POLLNVAL) return -EBADF; /* closed by another thread meanwhile: r is not ours to touch */
  }
}
