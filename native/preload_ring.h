/*
 * preload_ring.h - the LD_PRELOAD library's reads through a stream
 * socket's down ring (RING_LEVEL, docs/api.md "Data rings"): internal to
 * libtapstack_preload.so (preload.c, preload_ring.c).
 */
#ifndef TAPSTACK_PRELOAD_RING_H
#define TAPSTACK_PRELOAD_RING_H

#include <pthread.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ring.h"

/* pring_recv's answer when the socket has no ring (any more): the read is the descriptor's. */
#define PRING_PLAIN (-100000)

/* The flags a ringed read takes; any other sends the socket back to its socketpair first. */
#define PRING_FLAGS (MSG_PEEK | MSG_WAITALL | MSG_DONTWAIT | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)

struct pring {
  pthread_mutex_t mu; /* the consumer is single: one reader at a time, never held across a wait or an API call */
  struct tsr_end e;
  uint8_t *map;
  size_t maplen;
  uint32_t taken; /* doorbell bytes taken out of the descriptor (ts_ring_off's count) */
  int off;        /* turned off (ts_ring_off, listen): reads are the descriptor's */
  int wait_known, wait_ms; /* preload.c's ring_wait_ms, remembered */
  int eof_told;   /* the end of the stream was read: the daemon was told (it shuts the descriptor's read side then) */
  int slot;       /* RING_POOL: the pool's slot whose mapping this is (-1: a ring of its own) */
  unsigned gen;   /* the pool it came from (pring_pool_forget starts a new one) */
};

/* ts_ring_wake for the socket: the daemon looks at the ring again (called without r->mu). */
typedef void (*pring_wake_fn)(void *arg);
/* How long a read on fd may wait, asked only when it would: ms, -1 for ever, -2 not at all (O_NONBLOCK). */
typedef int (*pring_wait_fn)(int fd);

extern ssize_t (*real_recv)(int, void *, size_t, int);

/* Map the memfd the daemon passed (closed here either way), or take pool slot `slot`'s mapping (with a
 * memfd: the slot's new one): the ring, or NULL. g_mu held. */
struct pring *pring_attach(int memfd, int slot);
/* RING_POOL: the daemon's new memfd for `slot` (closed here), mapped into the pool: 0, -1 (the slot is unusable). */
int pring_slot_set(int slot, int memfd);
/* Forget the pool (a fork's child: none of it is mapped here; unmap 1: the API connection was lost). */
void pring_pool_forget(int unmap);
/* Unmap, or give a pooled mapping back to its slot (g_mu and r->mu held, or the ring unreachable); the
 * struct stays for readers that still hold it. */
void pring_unmap(struct pring *r);
/* Take `n` doorbell bytes out of fd (ts_ring_off: exactly those the daemon sent that we did not take). */
void pring_take_bells(int fd, uint32_t n);
/*
 * A read of the program's through the ring: bytes (0 at the end of the
 * stream), -errno, or PRING_PLAIN. Waits (poll on fd for POLLIN, as long
 * as `wait` says) unless MSG_DONTWAIT; MSG_PEEK, MSG_WAITALL as recv(2).
 */
ssize_t pring_recv(struct pring *r, int fd, const struct iovec *iov, int iovcnt, int flags, pring_wait_fn wait,
                   pring_wake_fn wake, void *arg);

#endif
