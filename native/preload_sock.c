/*
 * preload_sock.c - the LD_PRELOAD library's socket calls on stack sockets:
 * socket, bind, listen, accept, connect, the names, the options, shutdown,
 * close, and the descriptor calls that must keep the table (dup, fcntl,
 * ioctl). Each is one request over the API (preload_api.c); blocking ones
 * wait here with poll(2) on the descriptor, never in the daemon.
 */
/* node-gyp builds with _FILE_OFFSET_BITS=64, which renames fcntl to fcntl64 in
 * the headers; we define both symbols ourselves (64-bit: the same call). */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "preload_int.h"
#include "preload_ring.h"

/* ---- socket calls ------------------------------------------------------- */

EXPORT int socket(int domain, int type, int protocol) {
  resolve();
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if ((domain != AF_INET && domain != AF_INET6) || (base != SOCK_STREAM && base != SOCK_DGRAM) || !ours())
    return real_socket(domain, type, protocol);
  uint8_t a[12];
  put32(a, (uint32_t)domain);
  put32(a + 4, (uint32_t)(base | SOCK_NONBLOCK)); /* never blocks in the daemon: waits happen here */
  put32(a + 8, (uint32_t)protocol);
  struct reply r;
  pthread_mutex_lock(&g_mu);
  int rc = api_call_locked(C_SOCKET, a, sizeof a, &r);
  if (rc >= 0) rc = install(rc, r.fd, r.ring, r.slot, domain, base == SOCK_DGRAM, type & SOCK_NONBLOCK, type & SOCK_CLOEXEC);
  else bag_close(&r.fds);
  if (rc >= 0 && base == SOCK_STREAM) {
    tab[rc]->fresh = 1;
    set_fd(rc, tab[rc]);
  }
  pthread_mutex_unlock(&g_mu);
  return rc < 0 ? fail(-rc) : rc;
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  resolve();
  struct tsock *s = sock_of(fd);
  if (!s) return real_bind(fd, addr, len);
  uint8_t a[4 + 30];
  int n = addr_to_wire(addr, len, a + 4);
  if (n < 0) return fail(-n);
  struct reply r;
  int rc = call_on(s, C_BIND, a, 4 + (size_t)n, &r);
  return rc < 0 ? fail(-rc) : 0;
}

EXPORT int listen(int fd, int backlog) {
  resolve();
  struct tsock *s = sock_of(fd);
  if (!s) return real_listen(fd, backlog);
  uint8_t a[8];
  put32(a + 4, (uint32_t)backlog);
  struct reply r;
  int rc = call_on(s, C_LISTEN, a, sizeof a, &r);
  if (rc < 0) return fail(-rc);
  pthread_mutex_lock(&g_mu);
  if (!s->listening) g_listeners++;
  s->listening = 1;
  ring_off_locked(s, fd); /* a listener carries no data: its ring is let go here (the daemon never fills it) */
  set_kind_locked(fd, s);
  pthread_mutex_unlock(&g_mu);
  return 0;
}

/* Hand the program the listener's oldest queued connection (g_mu held): its byte in the
 * listener's descriptor goes, and it gets the program's flags now, as accept4 gives them. */
static int acceptq_pop_locked(int fd, struct tsock *s, struct sockaddr *addr, socklen_t *alen, int flags) {
  struct acceptq *q = s->q;
  struct qconn c = q->v[q->head];
  q->head = (q->head + 1) % ACCEPT_BATCH;
  q->n--;
  g_queued--;
  uint8_t b;
  real_recv(fd, &b, 1, MSG_DONTWAIT);
  wire_to_addr(c.peer, c.plen, addr, alen);
  return install(c.api, c.dfd, c.ring, c.slot, s->family, 0, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
}

/*
 * One round trip for every connection the listener holds, up to ACCEPT_BATCH (g_mu held): the
 * first is the program's now, the rest wait in s->q for its next accept calls, each keeping the
 * listener's descriptor readable by a byte the daemon put there (ACCEPT_BATCH_F_QUEUE). Returns
 * the first's descriptor or -errno, as accept4.
 */
static int accept_batch_locked(int fd, struct tsock *s, struct sockaddr *addr, socklen_t *alen, int flags) {
  struct reply r;
  uint8_t a[16];
  put32(a, (uint32_t)s->api);
  put32(a + 4, (uint32_t)SOCK_NONBLOCK);
  /* With rings each connection brings two descriptors: half as many fit the reply's SCM_RIGHTS room; with
   * pooled ones most bring one, and the daemon stops where a second might not fit. */
  put32(a + 8, s->shared ? 1 : g_level && !g_pool ? ACCEPT_BATCH / 2 : ACCEPT_BATCH);
  put32(a + 12, (s->shared ? 0 : ACCEPT_BATCH_F_QUEUE) | (g_level ? ACCEPT_BATCH_F_RINGS : 0));
  int rc = -ENOSYS;
  if (!g_nobatch) rc = api_call_locked(C_TS_ACCEPT_BATCH, a, sizeof a, &r);
  if (rc == -ENOSYS) {
    /* An older daemon: one at a time. */
    g_nobatch = 1;
    put32(a + 4, (uint32_t)SOCK_NONBLOCK);
    rc = api_call_locked(C_ACCEPT4, a, 8, &r);
    if (rc < 0) {
      bag_close(&r.fds);
      return rc;
    }
    if (r.blen >= 2) wire_to_addr(r.body + 2, r.blen - 2, addr, alen);
    return install(rc, r.fd, r.ring, r.slot, s->family, 0, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
  }
  if (rc <= 0) {
    bag_close(&r.fds);
    return rc < 0 ? rc : -EAGAIN;
  }
  if (!s->q) s->q = calloc(1, sizeof *s->q);
  int first = -EIO;
  size_t off = 0;
  int next = 0; /* the next descriptor of the reply's, in entry order */
  size_t ent = g_level ? 8 : 6; /* i32 fd, [u16 descriptors], u16 sockaddr length */
  for (int i = 0; i < rc; i++) {
    struct qconn c = {.api = -1, .dfd = -1, .ring = -1, .slot = -1};
    int nfd = 1;
    if (off + ent <= r.blen) {
      c.api = (int32_t)get32(r.body + off);
      if (g_level) {
        uint16_t v = get16(r.body + off + 4); /* its descriptors, and a pooled ring's slot as in FRAME_F_RING_SLOT */
        nfd = v & 3;
        if (g_pool && (v & FRAME_F_RING_SLOT)) c.slot = v >> 8;
      }
      size_t pl = get16(r.body + off + ent - 2);
      if (off + ent + pl <= r.blen && pl <= sizeof c.peer) {
        c.plen = (uint16_t)pl;
        memcpy(c.peer, r.body + off + ent, pl);
      }
      off += ent + pl;
    }
    if (nfd >= 1 && next < r.fds.n) c.dfd = r.fds.v[next++];
    if (nfd >= 2 && next < r.fds.n) c.ring = r.fds.v[next++];
    if (c.slot >= 0 && c.ring >= 0) {
      /* The slot's new memfd goes into the pool now, whether or not this connection is ever accepted: the
       * daemon's next naming of the slot without one means this mapping. */
      pring_slot_set(c.slot, c.ring);
      c.ring = -1;
    }
    if (i == 0) {
      wire_to_addr(c.peer, c.plen, addr, alen);
      if (c.api >= 0) first = install(c.api, c.dfd, c.ring, c.slot, s->family, 0, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
      else {
        if (c.dfd >= 0) real_close(c.dfd);
        if (c.ring >= 0) real_close(c.ring);
      }
      continue;
    }
    if (!s->q || c.dfd < 0 || c.api < 0 || s->q->n == ACCEPT_BATCH) {
      /* No room to keep it (or a reply we cannot read): give it back, and its byte. */
      uint8_t b;
      real_recv(fd, &b, 1, MSG_DONTWAIT);
      if (c.api >= 0) qconn_abort_locked(&c, s->pid, s->epoch);
      else {
        if (c.dfd >= 0) real_close(c.dfd);
        if (c.ring >= 0) real_close(c.ring);
      }
      continue;
    }
    s->q->v[(s->q->head + s->q->n) % ACCEPT_BATCH] = c;
    s->q->n++;
    g_queued++;
  }
  while (next < r.fds.n) real_close(r.fds.v[next++]); /* none of the entries' */
  return first;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *alen, int flags) {
  struct tsock *s = sock_of(fd);
  if (!s) return flags < 0 ? real_accept(fd, addr, alen) : real_accept4(fd, addr, alen, flags);
  if (flags < 0) flags = 0;
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return fail(EINVAL);
  if (s->udp) return fail(EOPNOTSUPP);
  for (;;) {
    pthread_mutex_lock(&g_mu);
    int rc;
    if (s->pid != g_pid && s->epoch != g_epoch) rc = inherit_locked(s);
    else rc = 0;
    if (rc < 0) {
      /* not ours, nor our parent's */
    } else if (s->pid != g_pid || s->epoch != g_epoch) rc = -EBADF;
    else if (s->q && s->q->n) rc = acceptq_pop_locked(fd, s, addr, alen, flags);
    else rc = accept_batch_locked(fd, s, addr, alen, flags);
    pthread_mutex_unlock(&g_mu);
    if (rc >= 0) return rc;
    if (rc != -EAGAIN || nonblocking(fd)) return fail(-rc);
    /* Blocking accept: the listener's descriptor is readable while a connection waits. */
    struct pollfd p = {fd, POLLIN, 0};
    int pr = poll(&p, 1, timeo_ms(fd, SO_RCVTIMEO));
    if (pr < 0) return -1; /* EINTR, as accept(2) */
    if (pr == 0) return fail(EAGAIN);
  }
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen) {
  resolve();
  return do_accept(fd, addr, alen, -1);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags) {
  resolve();
  return do_accept(fd, addr, alen, flags < 0 ? 0 : flags);
}

int sock_error(struct tsock *s) {
  uint8_t a[16];
  put32(a + 4, SOL_SOCKET);
  put32(a + 8, SO_ERROR);
  put32(a + 12, 4);
  struct reply r;
  int rc = call_on(s, C_GETSOCKOPT, a, sizeof a, &r);
  if (rc < 0) return -rc;
  return r.blen >= 4 ? (int)get32(r.body) : 0;
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  resolve();
  struct tsock *s = sock_of(fd);
  if (!s) return real_connect(fd, addr, len);
  uint8_t a[4 + 30];
  int n = addr_to_wire(addr, len, a + 4);
  if (n < 0) return fail(-n);
  struct reply r;
  int rc = call_on(s, C_CONNECT, a, 4 + (size_t)n, &r);
  if ((rc >= 0 || rc == -EINPROGRESS) && s->fresh) {
    /* Connecting: the pair is the connection's now (held unwritable until the handshake ends). */
    pthread_mutex_lock(&g_mu);
    s->fresh = 0;
    set_kind_locked(fd, s);
    pthread_mutex_unlock(&g_mu);
  }
  if (rc >= 0) return 0;
  if (rc != -EINPROGRESS || nonblocking(fd)) return fail(-rc);
  /* Blocking connect: the descriptor turns writable when the handshake ends, either way. */
  struct pollfd p = {fd, POLLOUT, 0};
  int pr = poll(&p, 1, timeo_ms(fd, SO_SNDTIMEO));
  if (pr < 0) return -1;                 /* EINTR: the connection goes on, as Linux's */
  if (pr == 0) return fail(EINPROGRESS); /* SO_SNDTIMEO ran out */
  /* The rest of __inet_stream_connect: asked again, the stack answers 0 (now SS_CONNECTED) or the error. */
  rc = call_on(s, C_CONNECT, a, 4 + (size_t)n, &r);
  return rc < 0 ? fail(-rc) : 0;
}

static int getname(int fd, struct sockaddr *addr, socklen_t *alen, int peer) {
  struct tsock *s = sock_of(fd);
  if (!s) return peer ? real_getpeername(fd, addr, alen) : real_getsockname(fd, addr, alen);
  if (!alen) return fail(EFAULT);
  uint8_t a[4];
  struct reply r;
  int rc = call_on(s, peer ? C_GETPEERNAME : C_GETSOCKNAME, a, sizeof a, &r);
  if (rc < 0) return fail(-rc);
  if (r.blen < 2) return fail(EPROTO);
  wire_to_addr(r.body + 2, r.blen - 2, addr, alen);
  return 0;
}

EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *alen) {
  resolve();
  return getname(fd, addr, alen, 0);
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *alen) {
  resolve();
  return getname(fd, addr, alen, 1);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  resolve();
  struct tsock *s = sock_of(fd);
  if (!s) return real_setsockopt(fd, level, name, val, len);
  uint8_t a[16 + 512];
  size_t vl = len > 512 ? 512 : len; /* no option the stack knows is longer */
  if (vl && !val) return fail(EFAULT);
  put32(a + 4, (uint32_t)level);
  put32(a + 8, (uint32_t)name);
  put32(a + 12, (uint32_t)vl);
  if (vl) memcpy(a + 16, val, vl);
  struct reply r;
  int rc = call_on(s, C_SETSOCKOPT, a, 16 + vl, &r);
  if (rc < 0) return fail(-rc);
  /* Datagrams may now carry control messages on the descriptor: reads look for them. */
  if ((level == SOL_IP && name == IP_PKTINFO) || (level == SOL_IPV6 && name == IPV6_RECVPKTINFO) ||
      (level == SOL_SOCKET && name == SO_TIMESTAMPING))
    __atomic_store_n(&s->cmsg, 1, __ATOMIC_RELEASE);
  /* Reads and writes on the descriptor are the kernel's: their timeouts must be there too. */
  if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
    real_setsockopt(fd, level, name, val, len);
    ring_wait_forget(fd);
  }
  return 0;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  resolve();
  struct tsock *s = sock_of(fd);
  if (!s) return real_getsockopt(fd, level, name, val, len);
  if (!len) return fail(EFAULT);
  uint8_t a[16];
  put32(a + 4, (uint32_t)level);
  put32(a + 8, (uint32_t)name);
  put32(a + 12, (uint32_t)*len);
  struct reply r;
  int rc = call_on(s, C_GETSOCKOPT, a, sizeof a, &r);
  if (rc < 0) return fail(-rc);
  size_t n = (size_t)rc < r.blen ? (size_t)rc : r.blen;
  if (n > *len) n = *len;
  if (n && !val) return fail(EFAULT);
  memcpy(val, r.body, n);
  *len = (socklen_t)n;
  return 0;
}

EXPORT int shutdown(int fd, int how) {
  resolve();
  struct tsock *s = sock_of(fd);
  if (!s) return real_shutdown(fd, how);
  uint8_t a[8];
  struct reply r;
  if (how < SHUT_RD || how > SHUT_RDWR) return fail(EINVAL);
  if (s->udp || s->listening) {
    put32(a + 4, (uint32_t)how);
    int rc = call_on(s, C_SHUTDOWN, a, sizeof a, &r);
    return rc < 0 ? fail(-rc) : 0;
  }
  if (s->pid != g_pid && how != SHUT_RD) {
    /* Inherited over fork: the descriptor is a copy of the parent's, and shutting its
     * write side is the FIN after the data, whichever process asks. */
    return real_shutdown(fd, SHUT_WR);
  }
  if (how != SHUT_RD) {
    /* Unconnected: ENOTCONN, before anything is shut. */
    int rc = call_on(s, C_GETPEERNAME, a, 4, &r);
    if (rc < 0) return fail(rc == -ENOTCONN ? ENOTCONN : -rc);
  }
  if (how != SHUT_WR) {
    ring_off(fd); /* the descriptor's read side is shut below: what the ring held goes there first */
    /* The read side first: once the FIN below is out, the connection may be over (CLOSE_WAIT's
     * LAST_ACK answered) before a later SHUT_RD reached the stack, which would say ENOTCONN
     * where Linux's one shutdown(SHUT_RDWR) succeeds. */
    put32(a + 4, SHUT_RD);
    int rc = call_on(s, C_SHUTDOWN, a, sizeof a, &r);
    if (rc < 0) return fail(-rc);
    /* Reads then take what is queued and end there (0), as after tcp_shutdown's RCV_SHUTDOWN. */
    real_shutdown(fd, SHUT_RD);
  }
  /* The FIN must follow what is still in the pair: shut the descriptor, the daemon sends FIN
   * after the data (docs/api.md). */
  if (how != SHUT_RD && real_shutdown(fd, SHUT_WR) < 0) return -1;
  return 0;
}

EXPORT int close(int fd) {
  resolve();
  if (!ours()) return real_close(fd);
  if (fd >= 0 && fd == g_api) return fail(EBADF); /* ours, not the program's: as if never open */
  if (fd_kind(fd) != K_NONE) {
    /* Our descriptor first, so the daemon sees whether it was the last copy. */
    pthread_mutex_lock(&g_mu);
    struct tsock *s = tab[fd];
    if (s && s->refs == 1 && s->q && s->q->n) acceptq_drop_locked(s, fd);
    int rc = real_close(fd);
    int e = errno;
    if (tab[fd]) release_locked(fd);
    pthread_mutex_unlock(&g_mu);
    errno = e;
    return rc;
  }
  return real_close(fd);
}

/* ---- descriptor duplication --------------------------------------------- */

/* newfd now names what oldfd names (g_mu held; newfd's old entry already released). */
static void dup_entry_locked(int oldfd, int newfd) {
  if (newfd < 0 || newfd >= MAXFD) return;
  struct tsock *s = (oldfd >= 0 && oldfd < MAXFD) ? tab[oldfd] : NULL;
  if (tab[newfd]) release_locked(newfd);
  if (s) s->refs++;
  set_fd(newfd, s);
}

/* dup2/dup3 onto our API connection's number: move the connection first. */
static void move_api_locked(int target) {
  if (g_api < 0 || g_api != target) return;
  int n = real_fcntl(g_api, F_DUPFD_CLOEXEC, 100);
  if (n >= 0) {
    real_close(g_api);
    g_api = n;
  } else {
    api_lost();
  }
}

/* A new descriptor n from dup(fd) or F_DUPFD (g_mu held): in the table, or EMFILE past it. */
static int dup_taken_locked(int fd, int n) {
  if (n < 0) return n;
  if (n >= MAXFD) {
    real_close(n);
    return fail(EMFILE);
  }
  dup_entry_locked(fd, n);
  return n;
}

EXPORT int dup(int fd) {
  resolve();
  if (fd_kind(fd) == K_NONE || !ours()) return real_dup(fd);
  pthread_mutex_lock(&g_mu);
  int n = real_dup(fd);
  n = dup_taken_locked(fd, n);
  pthread_mutex_unlock(&g_mu);
  return n;
}

static int do_dup3(int oldfd, int newfd, int flags, int is2) {
  if (!ours()) return is2 ? real_dup2(oldfd, newfd) : real_dup3(oldfd, newfd, flags);
  /* Onto stdin/stdout/stderr: stdio (and whatever the program execs) reads it directly. */
  if (newfd >= 0 && newfd <= 2 && oldfd != newfd && fd_kind(oldfd) == K_TCP) ring_off(oldfd);
  pthread_mutex_lock(&g_mu);
  move_api_locked(newfd);
  int rc = is2 ? real_dup2(oldfd, newfd) : real_dup3(oldfd, newfd, flags);
  if (rc >= 0 && oldfd != newfd) dup_entry_locked(oldfd, newfd);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

EXPORT int dup2(int oldfd, int newfd) {
  resolve();
  return do_dup3(oldfd, newfd, 0, 1);
}

EXPORT int dup3(int oldfd, int newfd, int flags) {
  resolve();
  return do_dup3(oldfd, newfd, flags, 0);
}

static int do_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg) {
  if (cmd == F_SETFL) {
    int rc = fn(fd, cmd, arg);
    ring_wait_forget(fd);
    return rc;
  }
  if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || fd_kind(fd) == K_NONE || !ours()) return fn(fd, cmd, arg);
  pthread_mutex_lock(&g_mu);
  int n = fn(fd, cmd, arg);
  n = dup_taken_locked(fd, n);
  pthread_mutex_unlock(&g_mu);
  return n;
}

/* fcntl's flags (O_NONBLOCK, FD_CLOEXEC) are the descriptor's own; only dups need the table. */
EXPORT int fcntl(int fd, int cmd, ...) {
  resolve();
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return do_fcntl(real_fcntl, fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...) {
  resolve();
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return do_fcntl(real_fcntl64, fd, cmd, arg);
}

EXPORT int ioctl(int fd, unsigned long req, ...) {
  resolve();
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  int k = fd_kind(fd);
  if (req == FIONBIO) {
    int rc = real_ioctl(fd, req, arg);
    ring_wait_forget(fd);
    return rc;
  }
  if (k == K_NONE || !ours() || (req != FIONREAD && req != SIOCOUTQ)) return real_ioctl(fd, req, arg);
  if (!arg) return fail(EFAULT);
  if (k != K_TCP && req == FIONREAD) {
    /* The next message's size on the descriptor, less its header: the next datagram's, as Linux's UDP. */
    int v = 0;
    if (real_ioctl(fd, FIONREAD, &v) < 0) return -1;
    int h = 2 + (k == K_UDP6 ? WIRE_IN6_LEN : WIRE_IN_LEN);
    *(int *)arg = v > h ? v - h : 0;
    return 0;
  }
  struct tsock *s = sock_of(fd);
  if (!s) return real_ioctl(fd, req, arg);
  uint8_t a[8];
  put32(a + 4, (uint32_t)req);
  struct reply r;
  int rc = call_on(s, C_IOCTL, a, sizeof a, &r);
  if (rc < 0) return fail(-rc);
  *(int *)arg = rc;
  return 0;
}
