/*
 * libtapstack_preload.so: run unmodified programs over tapstack
 * (`tapstack run -- CMD`, or LD_PRELOAD=.../tapstack_preload.so).
 *
 * AF_INET/AF_INET6 SOCK_STREAM and SOCK_DGRAM sockets are made over the
 * syscall API (docs/api.md) instead of the kernel; every other socket
 * (AF_UNIX, AF_NETLINK, SOCK_RAW, ...) is the kernel's, untouched.
 *
 * The program's descriptor for a stack socket is the API's data descriptor
 * itself, so read/write/poll/select/epoll on a TCP socket are plain kernel
 * calls on a socketpair: only the socket calls (bind, connect, accept, ...)
 * go over the API. UDP data is framed (`u16 addrlen, sockaddr, payload` per
 * SOCK_SEQPACKET message), so the data calls on UDP sockets are wrapped.
 *
 * Blocking never happens in the daemon: every stack socket is non-blocking
 * on the daemon's side, and a blocking accept/connect waits here with poll(2)
 * on the descriptor, whose readiness the daemon keeps like a kernel socket's
 * (a listener is readable while a connection waits; a connecting socket is
 * writable once the handshake is done). So the API connection's mutex is
 * held only for one request and its reply, never while a call waits.
 *
 * One API connection per process, opened on the first stack socket. After
 * fork() the child opens its own on first use: sockets it inherited stay
 * the parent's (their data descriptors work in both processes, socket calls
 * on them fail in the child with EBADF except shutdown(SHUT_WR), which is the
 * descriptor's own, and close() in the child closes only its descriptor).
 * A connected socket the parent closes lives on while a child holds it
 * (CLOSE_F_SHARED), so fork-per-connection servers work. A vfork() child
 * (which shares our memory) is never touched: every wrapper passes straight
 * to libc when getpid() is not ours.
 */
/* node-gyp builds with _FILE_OFFSET_BITS=64, which renames fcntl to fcntl64 in
 * the headers; we define both symbols ourselves (64-bit: the same call). */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload_int.h"
#include "preload_ring.h"

#define EXPORT __attribute__((visibility("default")))

/* ---- the protocol (docs/api.md) ---------------------------------------- */

#define API_MAGIC 0x50415354u
#define API_VERSION 1
#define HELLO_WANT_FDS 1
#define HELLO_WANT_RINGS 2
#define HELLO_RING_LEVEL 8
#define FRAME_F_FD 1
#define FRAME_F_FDS 2
#define CLOSE_F_SHARED 1
#define CLOSE_F_NOREPLY 2
#define HELLO_CLOSE_NOREPLY 4
#define HDR_LEN 12
#define DEFAULT_API "/run/tapstack/api.sock"

enum {
  C_CLOSE = 3,
  C_IOCTL = 16,
  C_SOCKET = 41,
  C_CONNECT = 42,
  C_SENDTO = 44,
  C_ACCEPT4 = 288,
  C_SHUTDOWN = 48,
  C_BIND = 49,
  C_LISTEN = 50,
  C_GETSOCKNAME = 51,
  C_GETPEERNAME = 52,
  C_SETSOCKOPT = 54,
  C_GETSOCKOPT = 55,
  C_RECVMSG = 47,
  C_TS_ZEROCOPY = 0x1004,
  C_TS_ACCEPT_BATCH = 0x1007,
  C_TS_INHERIT = 0x1008,
  C_TS_RING_WAKE = 0x1009,
  C_TS_RING_OFF = 0x100a,
};
/* ts_accept_batch: the most connections one call returns (the daemon's ACCEPT_BATCH_MAX), and its
 * flag asking for a byte per queued connection in the listener's descriptor. */
#define ACCEPT_BATCH 16
#define ACCEPT_BATCH_F_QUEUE 1
/* ...and its flag giving each connection its ring (entries then say how many descriptors are theirs), half as many per call. */
#define ACCEPT_BATCH_F_RINGS 2

/* ---- libc's own functions ---------------------------------------------- */

static int (*real_socket)(int, int, int);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static int (*real_shutdown)(int, int);
static int (*real_close)(int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t (*real_sendmsg)(int, const struct msghdr *, int); /* preload_dgram.c's too */
ssize_t (*real_recv)(int, void *, size_t, int); /* preload_ring.c's too */
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
ssize_t (*real_recvmsg)(int, struct msghdr *, int); /* preload_dgram.c's too */
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_read_chk)(int, void *, size_t, size_t);
static ssize_t (*real_recv_chk)(int, void *, size_t, size_t, int);
static ssize_t (*real_recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
static FILE *(*real_fdopen)(int, const char *);
static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
static int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
static void resolve_all(void) {
  RESOLVE(socket);
  RESOLVE(bind);
  RESOLVE(listen);
  RESOLVE(accept);
  RESOLVE(accept4);
  RESOLVE(connect);
  RESOLVE(getsockname);
  RESOLVE(getpeername);
  RESOLVE(setsockopt);
  RESOLVE(getsockopt);
  RESOLVE(shutdown);
  RESOLVE(close);
  RESOLVE(fcntl);
  RESOLVE(fcntl64);
  if (!real_fcntl64) real_fcntl64 = real_fcntl;
  RESOLVE(ioctl);
  RESOLVE(dup);
  RESOLVE(dup2);
  RESOLVE(dup3);
  RESOLVE(send);
  RESOLVE(sendto);
  RESOLVE(sendmsg);
  RESOLVE(recv);
  RESOLVE(recvfrom);
  RESOLVE(recvmsg);
  RESOLVE(read);
  RESOLVE(write);
  RESOLVE(readv);
  RESOLVE(writev);
  real_read_chk = dlsym(RTLD_NEXT, "__read_chk");
  real_recv_chk = dlsym(RTLD_NEXT, "__recv_chk");
  real_recvfrom_chk = dlsym(RTLD_NEXT, "__recvfrom_chk");
  RESOLVE(fdopen);
  RESOLVE(splice);
  RESOLVE(recvmmsg);
}
static inline void resolve(void) {
  if (__builtin_expect(real_close == NULL, 0)) pthread_once(&resolve_once, resolve_all);
}

/* ---- the descriptor table ----------------------------------------------- */

/* Descriptors above this are never stack sockets (a new one there is refused with EMFILE). */
#define MAXFD 65536

/* K_FRESH: a TCP socket that never connected (SS_UNCONNECTED): its data calls
 * are answered here, as a listener's are (reads ENOTCONN, writes EPIPE). */

/* A connection ts_accept_batch returned that no accept has handed to the program yet. */
struct qconn {
  int api;
  int dfd;
  int ring; /* its ring's memfd, or -1 */
  uint16_t plen;
  uint8_t peer[WIRE_IN6_LEN];
};

/* A listener's connections accepted in the daemon and waiting here for the program's accept
 * calls; each holds a byte in the listener's descriptor until it is handed on. */
struct acceptq {
  int head, n;
  struct qconn v[ACCEPT_BATCH];
};

struct tsock {
  struct acceptq *q; /* a listener's queue (NULL until its first batch) */
  int api;       /* the socket's number in the daemon's table for our connection */
  int family;
  int udp;
  int listening;
  int fresh;     /* TCP, never connected: nothing of its pair is the program's yet */
  int refs;      /* descriptors of this process naming it (dup) */
  pid_t pid;     /* the process whose API connection owns it */
  unsigned epoch; /* the API connection it was made on */
  int cmsg;      /* an option that adds control messages to reads was set (IP_PKTINFO, ...) */
  int shared;    /* a listener other processes hold too (fork): accepted one at a time, no queue */
  struct pring *ring; /* RING_LEVEL: reads through the down ring (preload_ring.c); set at install, never cleared */
};

/* kind[] is read without the lock on the data path (is this a UDP socket?);
 * tab[] and everything else change only under g_mu. */
static unsigned char kind[MAXFD];
static struct tsock *tab[MAXFD];

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_api = -1;
static unsigned g_epoch = 1;
static uint32_t g_id;
/* Replies still owed to requests sent without waiting (close): read and dropped before the next reply. */
static unsigned g_skip;
#define SKIP_MAX 64
static pid_t g_pid;
static int g_warned;
/* Connections waiting in listeners' queues, all of this process (a fork's child drops its copies). */
static int g_queued;
/* The daemon does not know ts_accept_batch (ENOSYS): accept4 one at a time. */
static int g_nobatch;
/* The daemon sends nothing back for a close with CLOSE_F_NOREPLY (its hello said so). */
static int g_close_noreply;
/* TAPSTACK_PRELOAD_RINGS=1: ask for down rings (RING_LEVEL); g_level: the daemon gives them. */
static int g_want_rings;
static int g_level;
/* Sockets of this process reading through a ring (a fork turns them off). */
static int g_rings;

static inline int ours(void) { return getpid() == g_pid; }

static inline int fd_kind(int fd) {
  if (fd < 0 || fd >= MAXFD) return K_NONE;
  return __atomic_load_n(&kind[fd], __ATOMIC_ACQUIRE);
}

static void set_fd(int fd, struct tsock *s) {
  tab[fd] = s;
  int k = K_NONE;
  if (s) k = s->udp ? (s->family == AF_INET6 ? K_UDP6 : K_UDP4) : s->listening ? K_LISTEN : s->fresh ? K_FRESH : K_TCP;
  __atomic_store_n(&kind[fd], (unsigned char)k, __ATOMIC_RELEASE);
}

/* The socket's kind changed (listen, connect): every descriptor naming it follows. Under g_mu. */
static void set_kind_locked(int fd, struct tsock *s) {
  if (tab[fd] == s) set_fd(fd, s);
  if (s->refs > 1)
    for (int i = 0; i < MAXFD; i++)
      if (i != fd && tab[i] == s) set_fd(i, s);
}

/* Listeners open in this process: a fork marks them shared. */
static int g_listeners;

/* After fork both processes hold every listener (g_mu held): from now on each accepts one
 * connection per call and queues none, since a byte a queue left in the shared descriptor
 * would wake the other process for a connection it cannot take. */
static void mark_listeners_shared(void) {
  for (int i = 0; g_listeners > 0 && i < MAXFD; i++)
    if (tab[i] && tab[i]->listening) tab[i]->shared = 1;
}

/* Every ring of this process back to its socketpair (g_mu held): two processes cannot share one ring's consumer. */
static void rings_off_all_locked(void);

static void on_fork_prepare(void) {
  pthread_mutex_lock(&g_mu);
  rings_off_all_locked();
}
static void on_fork_parent(void) {
  mark_listeners_shared();
  pthread_mutex_unlock(&g_mu);
}
/* The child must not speak on the parent's API connection (a request of the
 * parent's may be half written): it drops its copy and opens its own later. */
static void on_fork_child(void) {
  pthread_mutex_init(&g_mu, NULL);
  g_pid = getpid();
  /* Connections queued for the parent's accept calls stay the parent's: drop our copies. */
  for (int i = 0; g_queued > 0 && i < MAXFD; i++) {
    struct acceptq *q = tab[i] ? tab[i]->q : NULL;
    if (!q) continue;
    for (; q->n > 0; q->n--, g_queued--) {
      real_close(q->v[q->head].dfd);
      if (q->v[q->head].ring >= 0) real_close(q->v[q->head].ring);
      q->head = (q->head + 1) % ACCEPT_BATCH;
    }
  }
  g_queued = 0;
  mark_listeners_shared();
  if (g_api >= 0) real_close(g_api);
  g_api = -1;
  g_skip = 0;
  g_epoch++;
}

/* The daemon's path, read once at load: programs may clear their environment later (nginx's
 * workers keep only TZ), and a forked worker still reaches the daemon its parent used. */
static char g_api_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

__attribute__((constructor)) static void preload_init(void) {
  resolve();
  g_pid = getpid();
  const char *path = getenv("TAPSTACK_API");
  if (!path || !*path) path = DEFAULT_API;
  if (strlen(path) < sizeof g_api_path) strcpy(g_api_path, path);
  const char *rings = getenv("TAPSTACK_PRELOAD_RINGS");
  g_want_rings = rings && !strcmp(rings, "1");
  pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

/* ---- the API connection ------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = real_send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Descriptors that came with a reply, in arrival order. */
struct fdbag {
  int n;
  int v[ACCEPT_BATCH];
};

static void bag_close(struct fdbag *b) {
  for (int i = 0; i < b->n; i++) real_close(b->v[i]);
  b->n = 0;
}

/* Read exactly n bytes; descriptors riding on them go to *bag (NULL, or past its room: closed). */
static int read_all(int fd, uint8_t *p, size_t n, struct fdbag *bag) {
  while (n) {
    struct iovec iov = {p, n};
    union {
      char buf[CMSG_SPACE(sizeof(int) * ACCEPT_BATCH)];
      struct cmsghdr align;
    } u;
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    ssize_t r = real_recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -ECONNRESET;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      int *fds = (int *)CMSG_DATA(c);
      for (int i = 0; i < cnt; i++) {
        if (bag && bag->n < ACCEPT_BATCH) bag->v[bag->n++] = fds[i];
        else real_close(fds[i]);
      }
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void api_lost(void) {
  if (g_api >= 0) real_close(g_api);
  g_api = -1;
  g_skip = 0;
  g_epoch++;
}

/* Read and drop the replies owed to requests sent without waiting (g_mu held). 0, or -1 if the stream broke. */
static int skip_owed(void) {
  while (g_skip) {
    uint8_t rh[HDR_LEN + 4];
    if (read_all(g_api, rh, sizeof rh, NULL)) return -1;
    uint32_t len = get32(rh);
    if (len < sizeof rh) return -1;
    for (size_t skip = len - sizeof rh; skip;) {
      uint8_t junk[512];
      size_t n = skip < sizeof junk ? skip : sizeof junk;
      if (read_all(g_api, junk, n, NULL)) return -1;
      skip -= n;
    }
    g_skip--;
  }
  return 0;
}

/* Connect and say hello (with g_mu held). 0 or -errno. */
static int api_open(void) {
  if (g_api >= 0) return 0;
  const char *path = g_api_path;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (!*path) return -ENAMETOOLONG; /* TAPSTACK_API did not fit in sun_path */
  strcpy(sa.sun_path, path);
  int fd = real_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (real_connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    real_close(fd);
    if (!g_warned++) fprintf(stderr, "tapstack preload: cannot reach tapstackd at %s: %s\n", path, strerror(e));
    return -e;
  }
  /* Out of the way of the low numbers programs dup2 onto (stdio, shell redirections). */
  int hi = real_fcntl(fd, F_DUPFD_CLOEXEC, 100);
  if (hi >= 0) {
    real_close(fd);
    fd = hi;
  }
  uint8_t hello[12] = {0}, reply[16];
  put32(hello, API_MAGIC);
  put16(hello + 4, API_VERSION);
  put16(hello + 6, HELLO_WANT_FDS | (g_want_rings ? HELLO_WANT_RINGS | HELLO_RING_LEVEL : 0));
  int rc = write_all(fd, hello, sizeof hello);
  if (!rc) rc = read_all(fd, reply, sizeof reply, NULL);
  if (!rc && (get32(reply) != API_MAGIC || !(get16(reply + 6) & HELLO_WANT_FDS))) rc = -EPROTO;
  if (!rc) g_close_noreply = (get16(reply + 6) & HELLO_CLOSE_NOREPLY) != 0;
  if (!rc) g_level = (get16(reply + 6) & (HELLO_WANT_RINGS | HELLO_RING_LEVEL)) == (HELLO_WANT_RINGS | HELLO_RING_LEVEL);
  if (!rc && !g_level && (get16(reply + 6) & HELLO_WANT_RINGS)) {
    /* A daemon that knows rings but not RING_LEVEL would fill rings no read of ours looks at: say hello
     * again without asking for them. */
    real_close(fd);
    g_want_rings = 0;
    return api_open();
  }
  if (rc) {
    real_close(fd);
    return rc;
  }
  g_api = fd;
  return 0;
}

struct reply {
  int32_t ret;
  uint8_t body[4096]; /* what fits is kept: sockaddrs, option values, an error-queue entry */
  size_t blen;
  int fd;            /* the first descriptor that came, or -1 */
  int ring;          /* socket, accept4: the ring memfd after it (FRAME_F_RING), or -1 */
  struct fdbag fds;  /* all of them (ts_accept_batch's several) */
};

/* One request and its reply, with g_mu held. Returns ret (>= 0) or -errno. */
/*
 * One request and its reply (g_mu held). With `noreply` 1 the request is only
 * sent: its reply is dropped before the next call's (close(2) of a socket
 * tells the program nothing the library does not already know, and the
 * kernel's close does not wait for the network either); with 2 no reply
 * comes at all (a close with CLOSE_F_NOREPLY).
 */
static int api_send_locked(uint16_t call, const uint8_t *args, size_t alen, struct reply *r, int noreply) {
  r->fd = -1;
  r->ring = -1;
  r->fds.n = 0;
  r->blen = 0;
  int rc = api_open();
  if (rc) return rc;
  uint8_t hdr[HDR_LEN];
  uint32_t id = ++g_id;
  put32(hdr, (uint32_t)(HDR_LEN + alen));
  put32(hdr + 4, id);
  put16(hdr + 8, call);
  put16(hdr + 10, 0);
  struct iovec iov[2] = {{hdr, HDR_LEN}, {(void *)args, alen}};
  struct msghdr mh = {0};
  mh.msg_iov = iov;
  mh.msg_iovlen = alen ? 2 : 1;
  size_t left = HDR_LEN + alen;
  /* sendmsg may take part of a large frame; finish it byte-exact. */
  ssize_t w;
  do w = real_sendmsg(g_api, &mh, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w < 0) {
    api_lost();
    return -ECONNRESET;
  }
  if ((size_t)w < left) {
    size_t done = (size_t)w;
    if (done < HDR_LEN) {
      if (write_all(g_api, hdr + done, HDR_LEN - done) || write_all(g_api, args, alen)) goto lost;
    } else if (write_all(g_api, args + (done - HDR_LEN), alen - (done - HDR_LEN))) {
      goto lost;
    }
  }
  if (noreply == 2) return 0; /* one-way: the daemon answers nothing (CLOSE_F_NOREPLY) */
  if (noreply) {
    /* Bounded: a program that only closes must not pile replies up until the daemon stops reading it. */
    if (++g_skip >= SKIP_MAX && skip_owed()) goto lost;
    return 0;
  }
  if (skip_owed()) goto lost;
  uint8_t rh[HDR_LEN + 4];
  if (read_all(g_api, rh, sizeof rh, &r->fds)) goto lost;
  uint32_t len = get32(rh);
  if (len < sizeof rh || get32(rh + 4) != id) goto lost; /* one request at a time: anything else is a broken stream */
  r->ret = (int32_t)get32(rh + 12);
  size_t body = len - sizeof rh;
  size_t keep = body < sizeof r->body ? body : sizeof r->body;
  if (read_all(g_api, r->body, keep, &r->fds)) goto lost;
  for (size_t skip = body - keep; skip;) {
    uint8_t junk[512];
    size_t n = skip < sizeof junk ? skip : sizeof junk;
    if (read_all(g_api, junk, n, &r->fds)) goto lost;
    skip -= n;
  }
  r->blen = keep;
  /* One at most, and a ring's memfd after it for socket and accept4: a stray extra is not ours to keep. */
  int keep_fds = call == C_TS_ACCEPT_BATCH ? ACCEPT_BATCH : call == C_SOCKET || call == C_ACCEPT4 ? 2 : 1;
  while (r->fds.n > keep_fds) real_close(r->fds.v[--r->fds.n]);
  r->fd = r->fds.n ? r->fds.v[0] : -1;
  if (call != C_TS_ACCEPT_BATCH && r->fds.n > 1) r->ring = r->fds.v[1];
  return r->ret;
lost:
  bag_close(&r->fds);
  r->fd = -1;
  api_lost();
  return -ECONNRESET;
}

static int api_call_locked(uint16_t call, const uint8_t *args, size_t alen, struct reply *r) {
  return api_send_locked(call, args, alen, r, 0);
}

/* ---- helpers for the wrappers ------------------------------------------- */

/* The socket behind fd for a socket call, or NULL with *err set (EBADF: not ours to speak for). */
static struct tsock *sock_of(int fd) {
  if (fd_kind(fd) == K_NONE || !ours()) return NULL;
  return tab[fd];
}

/* A socket call on a stack socket. Sockets inherited over fork, or made on a
 * connection that was lost, are not in this connection's table: EBADF. */
static int inherit_locked(struct tsock *s);
static int call_on(struct tsock *s, uint16_t call, uint8_t *args, size_t alen, struct reply *r) {
  pthread_mutex_lock(&g_mu);
  int rc = 0;
  if (s->pid != g_pid && s->epoch != g_epoch && s->listening) rc = inherit_locked(s); /* a listener inherited over fork */
  if (rc < 0) {
    /* not ours, nor our parent's */
  } else if (s->pid != g_pid || s->epoch != g_epoch) rc = -EBADF;
  else {
    put32(args, (uint32_t)s->api);
    rc = api_call_locked(call, args, alen, r);
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int nonblocking(int fd) {
  int fl = real_fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

/* SO_RCVTIMEO/SO_SNDTIMEO in ms (-1: none), mirrored on the descriptor by setsockopt. */
static int timeo_ms(int fd, int opt) {
  struct timeval tv;
  socklen_t l = sizeof tv;
  if (real_getsockopt(fd, SOL_SOCKET, opt, &tv, &l) < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0)) return -1;
  long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
  return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Drop one descriptor's reference (g_mu held, the descriptor already closed
 * or replaced); the last one closes the socket in the daemon. With
 * CLOSE_F_SHARED the daemon keeps a connected socket while a forked child
 * still holds its descriptor, and releases it at the last close, as the
 * kernel does; when ours was the last copy, it releases it at once. */
/* Close a queued connection nobody accepted (g_mu held): reset, as Linux resets the children
 * left in a closed listener's accept queue (inet_csk_listen_stop). One-way: nothing to wait for. */
static void qconn_abort_locked(struct qconn *c, pid_t pid, unsigned epoch) {
  real_close(c->dfd);
  if (c->ring >= 0) real_close(c->ring);
  if (pid != g_pid || epoch != g_epoch || g_api < 0) return; /* the connection it was made on is gone, and the socket with it */
  struct reply r;
  uint8_t a[24];
  put32(a, (uint32_t)c->api);
  put32(a + 4, SOL_SOCKET);
  put32(a + 8, SO_LINGER);
  put32(a + 12, 8);
  put32(a + 16, 1);
  put32(a + 20, 0);
  api_send_locked(C_SETSOCKOPT, a, sizeof a, &r, 1);
  put32(a + 4, g_close_noreply ? CLOSE_F_NOREPLY : 0);
  api_send_locked(C_CLOSE, a, 8, &r, g_close_noreply ? 2 : 1);
}

/* Empty a listener's queue (g_mu held); with lfd >= 0, still open, take back each one's byte
 * there, so copies of the descriptor in other processes are not left readable. */
static void acceptq_drop_locked(struct tsock *s, int lfd) {
  struct acceptq *q = s->q;
  if (!q) return;
  for (; q->n > 0; q->n--, g_queued--) {
    uint8_t b;
    if (lfd >= 0) real_recv(lfd, &b, 1, MSG_DONTWAIT);
    qconn_abort_locked(&q->v[q->head], s->pid, s->epoch);
    q->head = (q->head + 1) % ACCEPT_BATCH;
  }
}

/* ---- the down ring (RING_LEVEL; the reads themselves are preload_ring.c's) ---- */

/* Take the socket back to its socketpair (g_mu held): ts_ring_off moves what the ring holds unread
 * into the pair ahead of anything newer, and says how many doorbell bytes it ever sent down: exactly
 * the ones we did not take are taken out of the descriptor, so none is read as data. */
static void ring_off_locked(struct tsock *s, int fd) {
  struct pring *r = s->ring;
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  if (!r->off) {
    if (s->pid == g_pid && s->epoch == g_epoch && g_api >= 0 && !s->listening) {
      uint8_t a[4];
      struct reply rep;
      put32(a, (uint32_t)s->api);
      int rc = api_call_locked(C_TS_RING_OFF, a, sizeof a, &rep);
      bag_close(&rep.fds);
      if (rc >= 0 && fd >= 0) pring_take_bells(fd, ((uint32_t)rc - r->taken) & 0x7fffffff);
    }
    pring_unmap(r);
    g_rings--;
  }
  pthread_mutex_unlock(&r->mu);
}

/* O_NONBLOCK or SO_RCVTIMEO may change: ring_wait_ms asks again. */
static void ring_wait_forget(int fd) {
  if (fd_kind(fd) == K_NONE) return;
  struct tsock *s = tab[fd];
  if (s && s->ring) s->ring->wait_known = 0;
}

static void rings_off_all_locked(void) {
  for (int i = 0; g_rings > 0 && i < MAXFD; i++)
    if (tab[i] && tab[i]->ring && !tab[i]->ring->off) ring_off_locked(tab[i], i);
}

/* Before the descriptor is read by someone who does not know the ring (stdio, splice, another program). */
static void ring_off(int fd) {
  if (fd < 0 || fd >= MAXFD || !ours()) return;
  pthread_mutex_lock(&g_mu);
  if (tab[fd] && tab[fd]->ring && !tab[fd]->ring->off) ring_off_locked(tab[fd], fd);
  pthread_mutex_unlock(&g_mu);
}

/* install()'s: the ring memfd that came with the socket (g_mu held); one we cannot map sends the socket back to its pair. */
static void ring_attach_locked(struct tsock *s, int dfd, int ringfd) {
  if (ringfd < 0) return;
  if (!g_level) {
    real_close(ringfd); /* not asked for: the daemon would not have made it */
    return;
  }
  struct pring *r = pring_attach(ringfd);
  if (r) {
    s->ring = r;
    g_rings++;
    return;
  }
  uint8_t a[4];
  struct reply rep;
  put32(a, (uint32_t)s->api);
  int rc = api_call_locked(C_TS_RING_OFF, a, sizeof a, &rep);
  bag_close(&rep.fds);
  if (rc > 0) pring_take_bells(dfd, (uint32_t)rc);
}

static void ring_free(struct pring *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  if (!r->off) g_rings--;
  pring_unmap(r);
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static void release_locked(int fd) {
  struct tsock *s = tab[fd];
  set_fd(fd, NULL);
  if (!s || --s->refs > 0) return;
  acceptq_drop_locked(s, -1);
  ring_free(s->ring);
  free(s->q);
  if (s->listening) g_listeners--;
  if (s->pid == g_pid && s->epoch == g_epoch && g_api >= 0) {
    uint8_t a[8];
    struct reply r;
    put32(a, (uint32_t)s->api);
    put32(a + 4, CLOSE_F_SHARED | (g_close_noreply ? CLOSE_F_NOREPLY : 0));
    api_send_locked(C_CLOSE, a, sizeof a, &r, g_close_noreply ? 2 : 1);
  }
  free(s);
}

/* A new stack socket's descriptor arrived: give it the program's flags and a table entry. */
static int install(int api, int dfd, int ringfd, int family, int udp, int nonblock, int cloexec) {
  if (dfd < 0 || dfd >= MAXFD) {
    if (dfd >= 0) real_close(dfd);
    if (ringfd >= 0) real_close(ringfd);
    uint8_t a[4];
    struct reply r;
    put32(a, (uint32_t)api);
    api_call_locked(C_CLOSE, a, sizeof a, &r);
    return dfd < 0 ? -EIO : -EMFILE;
  }
  /* The pair is made non-blocking and close-on-exec; keep only what was asked. */
  if (!cloexec) real_fcntl(dfd, F_SETFD, 0);
  int fl = real_fcntl(dfd, F_GETFL);
  if (fl >= 0) real_fcntl(dfd, F_SETFL, nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
  struct tsock *s = calloc(1, sizeof *s);
  if (!s) {
    real_close(dfd);
    if (ringfd >= 0) real_close(ringfd);
    return -ENOMEM;
  }
  s->api = api;
  s->family = family;
  s->udp = udp;
  s->refs = 1;
  s->pid = g_pid;
  s->epoch = g_epoch;
  if (!udp) ring_attach_locked(s, dfd, ringfd);
  else if (ringfd >= 0) real_close(ringfd);
  if (tab[dfd]) release_locked(dfd); /* a stale entry: its descriptor was closed behind our back */
  set_fd(dfd, s);
  return dfd;
}

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
  if (rc >= 0) rc = install(rc, r.fd, r.ring, domain, base == SOCK_DGRAM, type & SOCK_NONBLOCK, type & SOCK_CLOEXEC);
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
  return install(c.api, c.dfd, c.ring, s->family, 0, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
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
  /* With rings each connection brings two descriptors: half as many fit the reply's SCM_RIGHTS room. */
  put32(a + 8, s->shared ? 1 : g_level ? ACCEPT_BATCH / 2 : ACCEPT_BATCH);
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
    return install(rc, r.fd, r.ring, s->family, 0, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
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
    struct qconn c = {.api = -1, .dfd = -1, .ring = -1};
    int nfd = 1;
    if (off + ent <= r.blen) {
      c.api = (int32_t)get32(r.body + off);
      if (g_level) nfd = get16(r.body + off + 4);
      size_t pl = get16(r.body + off + ent - 2);
      if (off + ent + pl <= r.blen && pl <= sizeof c.peer) {
        c.plen = (uint16_t)pl;
        memcpy(c.peer, r.body + off + ent, pl);
      }
      off += ent + pl;
    }
    if (nfd >= 1 && next < r.fds.n) c.dfd = r.fds.v[next++];
    if (nfd >= 2 && next < r.fds.n) c.ring = r.fds.v[next++];
    if (i == 0) {
      wire_to_addr(c.peer, c.plen, addr, alen);
      if (c.api >= 0) first = install(c.api, c.dfd, c.ring, s->family, 0, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
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

/*
 * A listener inherited over fork (g_mu held): the daemon gives this process a file of its own for
 * the socket the process that made it still holds (ts_inherit; nginx's workers accept on the
 * master's listeners so), once it sees that we hold the listener's descriptor. Then the socket is
 * ours to call on, shared.
 */
static int inherit_locked(struct tsock *s) {
  if (!s->listening || s->udp) return -EBADF;
  int dfd = -1;
  for (int i = 0; i < MAXFD && dfd < 0; i++)
    if (tab[i] == s) dfd = i;
  if (dfd < 0) return -EBADF;
  uint8_t a[12];
  struct reply r;
  put32(a, (uint32_t)s->pid);
  put32(a + 4, (uint32_t)s->api);
  put32(a + 8, (uint32_t)dfd);
  int rc = api_call_locked(C_TS_INHERIT, a, sizeof a, &r);
  bag_close(&r.fds);
  if (rc < 0) return rc == -ENOSYS || rc == -EPERM ? -EBADF : rc;
  s->api = rc;
  s->pid = g_pid;
  s->epoch = g_epoch;
  s->shared = 1;
  return 0;
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

static int sock_error(struct tsock *s) {
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

/* A datagram socket asked for control messages (IP_PKTINFO, ...): its reads look for them first. */
static inline int want_cmsg(int fd) {
  struct tsock *s = tab[fd];
  return s && __atomic_load_n(&s->cmsg, __ATOMIC_ACQUIRE);
}

/* The UDP kind of fd if its data calls are ours to frame, else 0. A
 * listener's descriptor carries no data, nor does a TCP socket's that never
 * connected: reads fail with ENOTCONN and writes with EPIPE, as on Linux
 * (sk_stream_wait_connect; the listener's readiness byte is not the
 * program's to read); that is answered here as kind -ENOTCONN. */
static inline int udp_kind(int fd) {
  int k = fd_kind(fd);
  if (k == K_TCP || k == K_NONE || !ours()) return 0;
  return k == K_LISTEN || k == K_FRESH ? -ENOTCONN : k;
}

/* A TCP write the pair refused with EPIPE: the connection is over. A reset
 * not yet reported is reported now (ECONNRESET, no SIGPIPE), as
 * sk_stream_error reads sk_err first; else EPIPE, and SIGPIPE unless
 * MSG_NOSIGNAL (the pair is written with MSG_NOSIGNAL: the signal is ours
 * to raise). */
static ssize_t tcp_sent(int fd, ssize_t n, int flags) {
  if (n >= 0 || errno != EPIPE) return n;
  struct tsock *s = sock_of(fd);
  int e = s ? sock_error(s) : 0;
  if (e && e != EBADF) return fail(e); /* EBADF: inherited over fork, the socket is not ours to ask */
  if (!(flags & MSG_NOSIGNAL)) raise(SIGPIPE);
  return fail(EPIPE);
}

/* A TCP read at the end of the stream: a reset not yet reported is reported
 * now, as tcp_recvmsg reads sk_err before it says EOF. One call to the
 * daemon per end of stream, none on the data path. */
static ssize_t tcp_received(int fd, ssize_t n, size_t len) {
  if (n != 0 || len == 0) return n;
  struct tsock *s = sock_of(fd);
  int e = s ? sock_error(s) : 0;
  return e && e != EBADF ? fail(e) : 0; /* EBADF: inherited over fork, the end of the stream stands */
}

static size_t iov_len(const struct iovec *iov, int iovcnt) {
  size_t n = 0;
  for (int i = 0; iov && i < iovcnt; i++) n += iov[i].iov_len;
  return n;
}

/* pring_recv's: how long a read may wait, asked only when it would (O_NONBLOCK, SO_RCVTIMEO are the
 * descriptor's), and remembered until fcntl(F_SETFL), FIONBIO or SO_RCVTIMEO, all of which pass
 * through here, change it (a blocking reader would pay two system calls per wait otherwise). */
static int ring_wait_ms(int fd) {
  struct tsock *s = tab[fd];
  struct pring *r = s ? s->ring : NULL;
  if (r && r->wait_known) return r->wait_ms;
  int ms = nonblocking(fd) ? -2 : timeo_ms(fd, SO_RCVTIMEO);
  if (r) {
    r->wait_ms = ms;
    r->wait_known = 1;
  }
  return ms;
}

/* pring_recv's: the daemon looks at the socket's ring again. */
static void ring_wake(void *arg) {
  uint8_t a[4];
  struct reply r;
  call_on(arg, C_TS_RING_WAKE, a, sizeof a, &r);
}

/* A TCP read through the socket's down ring: 1 with *out as the wrapper returns it, 0 when the read is
 * the descriptor's (no ring, or turned off; flags the ring does not do turn it off first). */
static int ring_read(int fd, const struct iovec *iov, int iovcnt, int flags, ssize_t *out) {
  struct tsock *s = tab[fd];
  struct pring *r = s ? s->ring : NULL;
  if (!r || __atomic_load_n(&r->off, __ATOMIC_ACQUIRE) || !ours()) return 0;
  if (flags & ~PRING_FLAGS) {
    ring_off(fd);
    return 0;
  }
  if (iovcnt < 0 || iovcnt > IOV_MAX) {
    *out = fail(EINVAL);
    return 1;
  }
  ssize_t n = pring_recv(r, fd, iov, iovcnt, flags, ring_wait_ms, ring_wake, s);
  if (n == PRING_PLAIN) return 0;
  *out = n < 0 ? fail((int)-n) : tcp_received(fd, n, iov_len(iov, iovcnt));
  return 1;
}

static ssize_t listener_data(int fd, int writing, int flags) {
  (void)fd;
  if (!writing) return fail(ENOTCONN);
  if (!(flags & MSG_NOSIGNAL)) raise(SIGPIPE);
  return fail(EPIPE);
}

/* What a Fast Open SYN can carry at most (an MSS less the option space): no more need cross the API. */
#define TFO_SYN_MAX 1500

/* sendto/sendmsg with MSG_FASTOPEN on a stream socket (tcp_sendmsg_fastopen):
 * the connect and what the SYN carries go to the daemon in one call, the rest
 * through the descriptor once the handshake is done. Non-blocking: the bytes
 * the SYN took, or EINPROGRESS (a cookie request went out, nothing taken).
 * Blocking: wait for the handshake as a blocking connect() does; if it
 * fails, that is the call's error, whatever the SYN carried. */
static ssize_t tcp_fastopen_send(int fd, const struct iovec *iov, int iovcnt, const struct sockaddr *to, socklen_t tolen,
                                 int flags) {
  struct tsock *s = sock_of(fd);
  if (!s) return fail(EBADF);
  if (iovcnt < 0 || iovcnt > IOV_MAX) return fail(EINVAL);
  uint8_t a[8 + 2 + 30 + TFO_SYN_MAX];
  int nb = (flags & MSG_DONTWAIT) || nonblocking(fd);
  put32(a + 4, (uint32_t)(MSG_FASTOPEN | (nb ? MSG_DONTWAIT : 0)));
  size_t off = 8;
  if (to && tolen) {
    int n = addr_to_wire(to, tolen, a + off);
    if (n < 0) return fail(-n);
    off += (size_t)n;
  } else {
    put16(a + off, 0);
    off += 2;
  }
  size_t total = 0, head = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  for (int i = 0; i < iovcnt && head < TFO_SYN_MAX; i++) {
    size_t c = iov[i].iov_len < TFO_SYN_MAX - head ? iov[i].iov_len : TFO_SYN_MAX - head;
    if (c) memcpy(a + off + head, iov[i].iov_base, c);
    head += c;
  }
  struct reply r;
  int rc = call_on(s, C_SENDTO, a, off + head, &r);
  if ((rc >= 0 || rc == -EINPROGRESS) && s->fresh) {
    /* Connecting, as after connect(): the pair is the connection's now. */
    pthread_mutex_lock(&g_mu);
    s->fresh = 0;
    set_kind_locked(fd, s);
    pthread_mutex_unlock(&g_mu);
  }
  if (rc < 0 && rc != -EINPROGRESS) return fail(-rc);
  if (nb) return rc < 0 ? fail(EINPROGRESS) : rc;
  struct pollfd p = {fd, POLLOUT, 0};
  int pr = poll(&p, 1, timeo_ms(fd, SO_SNDTIMEO));
  if (pr < 0) return -1;
  if (pr == 0) return rc > 0 ? rc : fail(EINPROGRESS); /* SO_SNDTIMEO ran out */
  int e;
  if (to && tolen) {
    /* The rest of __inet_stream_connect, as connect() ends: 0 (now SS_CONNECTED, a later connect()
     * says EISCONN) or the error. */
    uint8_t c[4 + 30];
    int n = addr_to_wire(to, tolen, c + 4);
    int cr = n < 0 ? n : call_on(s, C_CONNECT, c, 4 + (size_t)n, &r);
    e = cr < 0 ? -cr : 0;
  } else {
    e = sock_error(s);
  }
  if (e) return fail(e);
  size_t sent = rc > 0 ? (size_t)rc : 0;
  /* The rest as a plain send through the descriptor. */
  size_t skip = sent;
  for (int i = 0; i < iovcnt && sent < total; i++) {
    size_t l = iov[i].iov_len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    const uint8_t *b = (const uint8_t *)iov[i].iov_base + skip;
    l -= skip;
    skip = 0;
    while (l) {
      ssize_t w = real_send(fd, b, l, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (sent) return (ssize_t)sent;
        if (errno == EPIPE && !(flags & MSG_NOSIGNAL)) raise(SIGPIPE);
        return -1;
      }
      b += w;
      l -= (size_t)w;
      sent += (size_t)w;
    }
  }
  return (ssize_t)sent;
}

/* ---- the error queue and MSG_ZEROCOPY: the daemon's, never the descriptor's -- */

/* Control-message room asked for at most (docs/api.md: the daemon's cap is larger). */
#define ERRQ_MAX_CONTROL 1024

/* recvmsg(MSG_ERRQUEUE) on a stack socket: the entry's data, source and
 * control messages (laid out by the daemon as the kernel writes them) come
 * over the API; the data descriptor never carries them. */
static ssize_t errqueue_recv(struct tsock *s, struct msghdr *msg, int flags) {
  size_t total = 0;
  for (size_t i = 0; i < msg->msg_iovlen; i++) total += msg->msg_iov[i].iov_len;
  size_t ctl = msg->msg_control ? msg->msg_controllen : 0;
  if (ctl > ERRQ_MAX_CONTROL) ctl = ERRQ_MAX_CONTROL;
  size_t room = sizeof(((struct reply *)0)->body) - (4 + 2 + WIRE_IN6_LEN + 4) - ctl;
  if (total > room) total = room;
  uint8_t a[16];
  put32(a + 4, (uint32_t)flags);
  put32(a + 8, (uint32_t)total);
  put32(a + 12, (uint32_t)ctl);
  struct reply r;
  int rc = call_on(s, C_RECVMSG, a, sizeof a, &r);
  if (rc < 0) return fail(-rc);
  if (r.blen < 6) return fail(EPROTO);
  uint32_t mflags = get32(r.body);
  size_t alen = get16(r.body + 4);
  size_t off = 6 + alen;
  if (r.blen < off + 4) return fail(EPROTO);
  size_t clen = get32(r.body + off);
  off += 4;
  if (clen > ctl || r.blen < off + clen) return fail(EPROTO);
  socklen_t nl = msg->msg_namelen;
  if (msg->msg_name && alen) wire_to_addr(r.body + 6, alen, msg->msg_name, &nl);
  else nl = 0;
  msg->msg_namelen = nl;
  if (clen) memcpy(msg->msg_control, r.body + off, clen);
  msg->msg_controllen = clen;
  off += clen;
  size_t n = r.blen - off;
  if (n > (size_t)rc) n = (size_t)rc;
  for (size_t i = 0, done = 0; i < msg->msg_iovlen && done < n; i++) {
    size_t c = msg->msg_iov[i].iov_len < n - done ? msg->msg_iov[i].iov_len : n - done;
    memcpy(msg->msg_iov[i].iov_base, r.body + off + done, c);
    done += c;
  }
  msg->msg_flags = (int)mflags;
  return rc;
}

static ssize_t errqueue_recv_buf(struct tsock *s, void *buf, size_t len, int flags) {
  struct iovec v = {buf, len};
  struct msghdr m = {0};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  return errqueue_recv(s, &m, flags);
}

/* A MSG_ZEROCOPY send took `n` bytes into the data descriptor: the daemon
 * queues its completion (the data was copied, as the kernel reports with
 * SO_EE_CODE_ZEROCOPY_COPIED). errno is kept: the send succeeded. */
static void zerocopy_sent(int fd, ssize_t n) {
  struct tsock *s = sock_of(fd);
  if (!s || n <= 0) return;
  int e = errno;
  uint8_t a[8];
  put32(a + 4, (uint32_t)n);
  struct reply r;
  call_on(s, C_TS_ZEROCOPY, a, sizeof a, &r);
  errno = e;
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen) {
  resolve();
  int k = fd_kind(fd);
  if ((k == K_TCP || k == K_FRESH) && (flags & MSG_FASTOPEN)) {
    struct iovec v = {(void *)buf, len};
    return tcp_fastopen_send(fd, &v, 1, to, tolen, flags);
  }
  if (k == K_TCP) {
    /* TCP ignores the address, as Linux's; MSG_ZEROCOPY is the daemon's to complete. */
    ssize_t n = tcp_sent(fd, real_send(fd, buf, len, (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL), flags);
    if (flags & MSG_ZEROCOPY) zerocopy_sent(fd, n);
    return n;
  }
  if (!(k = udp_kind(fd))) return real_sendto(fd, buf, len, flags, to, tolen);
  if (k < 0) return listener_data(fd, 1, flags);
  struct iovec v = {(void *)buf, len};
  ssize_t n = udp_send(fd, k, &v, 1, to, tolen, flags & ~MSG_ZEROCOPY);
  if (flags & MSG_ZEROCOPY) zerocopy_sent(fd, n);
  return n;
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags) {
  resolve();
  if ((flags & MSG_FASTOPEN) && (fd_kind(fd) == K_TCP || fd_kind(fd) == K_FRESH)) {
    /* No address: the deferred connect's first send, else the connect's EINVAL (tcp_v4_connect). */
    struct iovec v = {(void *)buf, len};
    return tcp_fastopen_send(fd, &v, 1, NULL, 0, flags);
  }
  if (flags & MSG_ZEROCOPY && fd_kind(fd) != K_NONE) return sendto(fd, buf, len, flags, NULL, 0);
  if (fd_kind(fd) == K_TCP && ours()) return tcp_sent(fd, real_send(fd, buf, len, flags | MSG_NOSIGNAL), flags);
  int k = udp_kind(fd);
  if (!k) return real_send(fd, buf, len, flags);
  if (k < 0) return listener_data(fd, 1, flags);
  struct iovec v = {(void *)buf, len};
  return udp_send(fd, k, &v, 1, NULL, 0, flags);
}

EXPORT ssize_t write(int fd, const void *buf, size_t len) {
  resolve();
  if (fd_kind(fd) == K_TCP && ours()) return tcp_sent(fd, real_send(fd, buf, len, MSG_NOSIGNAL), 0);
  int k = udp_kind(fd);
  if (!k) return real_write(fd, buf, len);
  if (k < 0) return listener_data(fd, 1, 0);
  struct iovec v = {(void *)buf, len};
  return udp_send(fd, k, &v, 1, NULL, 0, 0);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  resolve();
  if (fd_kind(fd) == K_TCP && ours()) {
    if (iovcnt < 0 || iovcnt > IOV_MAX) return fail(EINVAL);
    struct msghdr m = {0};
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)iovcnt;
    return tcp_sent(fd, real_sendmsg(fd, &m, MSG_NOSIGNAL), 0);
  }
  int k = udp_kind(fd);
  if (!k) return real_writev(fd, iov, iovcnt);
  if (k < 0) return listener_data(fd, 1, 0);
  return udp_send(fd, k, iov, iovcnt, NULL, 0, 0);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  resolve();
  int k = fd_kind(fd);
  if ((k == K_TCP || k == K_FRESH) && msg && (flags & MSG_FASTOPEN))
    return tcp_fastopen_send(fd, msg->msg_iov, (int)msg->msg_iovlen, msg->msg_name, msg->msg_namelen, flags);
  if (k == K_TCP && msg && ours()) {
    struct msghdr m = *msg;
    m.msg_name = NULL;
    m.msg_namelen = 0;
    ssize_t n = tcp_sent(fd, real_sendmsg(fd, &m, (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL), flags);
    if (flags & MSG_ZEROCOPY) zerocopy_sent(fd, n);
    return n;
  }
  if (!(k = udp_kind(fd))) return real_sendmsg(fd, msg, flags);
  if (k < 0) return listener_data(fd, 1, flags);
  if (!msg) return fail(EFAULT);
  ssize_t n = udp_send(fd, k, msg->msg_iov, (int)msg->msg_iovlen, msg->msg_name, msg->msg_namelen, flags & ~MSG_ZEROCOPY);
  if (flags & MSG_ZEROCOPY) zerocopy_sent(fd, n);
  return n;
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen) {
  resolve();
  if (flags & MSG_ERRQUEUE) {
    struct tsock *s = sock_of(fd);
    if (s) {
      if (fromlen) *fromlen = 0;
      return errqueue_recv_buf(s, buf, len, flags);
    }
  }
  int k = fd_kind(fd);
  if (k == K_TCP) {
    /* A TCP socket reports no source address (the pair's would be AF_UNIX). */
    struct iovec v = {buf, len};
    ssize_t n;
    if (!ring_read(fd, &v, 1, flags, &n)) n = tcp_received(fd, real_recv(fd, buf, len, flags), len);
    if (n >= 0 && fromlen) *fromlen = 0;
    return n;
  }
  if (!(k = udp_kind(fd))) return real_recvfrom(fd, buf, len, flags, from, fromlen);
  if (k < 0) return listener_data(fd, 0, 0);
  struct iovec v = {buf, len};
  return udp_recv(fd, k, want_cmsg(fd), &v, 1, from, fromlen, flags, NULL, NULL, NULL);
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags) {
  resolve();
  if (flags & MSG_ERRQUEUE) {
    struct tsock *s = sock_of(fd);
    if (s) return errqueue_recv_buf(s, buf, len, flags);
  }
  if (fd_kind(fd) == K_TCP && ours()) {
    struct iovec v = {buf, len};
    ssize_t n;
    if (ring_read(fd, &v, 1, flags, &n)) return n;
    return tcp_received(fd, real_recv(fd, buf, len, flags), len);
  }
  int k = udp_kind(fd);
  if (!k) return real_recv(fd, buf, len, flags);
  if (k < 0) return listener_data(fd, 0, 0);
  struct iovec v = {buf, len};
  return udp_recv(fd, k, want_cmsg(fd), &v, 1, NULL, NULL, flags, NULL, NULL, NULL);
}

EXPORT ssize_t read(int fd, void *buf, size_t len) {
  resolve();
  if (fd_kind(fd) == K_TCP && ours()) {
    struct iovec v = {buf, len};
    ssize_t n;
    if (ring_read(fd, &v, 1, 0, &n)) return n;
    return tcp_received(fd, real_read(fd, buf, len), len);
  }
  int k = udp_kind(fd);
  if (!k) return real_read(fd, buf, len);
  if (k < 0) return listener_data(fd, 0, 0);
  struct iovec v = {buf, len};
  return udp_recv(fd, k, want_cmsg(fd), &v, 1, NULL, NULL, 0, NULL, NULL, NULL);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  resolve();
  if (fd_kind(fd) == K_TCP && ours()) {
    ssize_t n;
    if (ring_read(fd, iov, iovcnt, 0, &n)) return n;
    return tcp_received(fd, real_readv(fd, iov, iovcnt), iov_len(iov, iovcnt));
  }
  int k = udp_kind(fd);
  if (!k) return real_readv(fd, iov, iovcnt);
  if (k < 0) return listener_data(fd, 0, 0);
  return udp_recv(fd, k, want_cmsg(fd), iov, iovcnt, NULL, NULL, 0, NULL, NULL, NULL);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  resolve();
  if (flags & MSG_ERRQUEUE) {
    struct tsock *s = sock_of(fd);
    if (s) return msg ? errqueue_recv(s, msg, flags) : fail(EFAULT);
  }
  int k = fd_kind(fd);
  if (k == K_TCP && msg) {
    struct msghdr m = *msg;
    m.msg_name = NULL;
    m.msg_namelen = 0;
    ssize_t n;
    if (ring_read(fd, m.msg_iov, (int)m.msg_iovlen, flags, &n)) {
      m.msg_controllen = 0; /* nothing rides on a stream's bytes */
      m.msg_flags = 0;
    } else {
      n = tcp_received(fd, real_recvmsg(fd, &m, flags), iov_len(m.msg_iov, (int)m.msg_iovlen));
    }
    if (n >= 0) {
      msg->msg_namelen = 0;
      msg->msg_controllen = m.msg_controllen;
      msg->msg_flags = m.msg_flags;
    }
    return n;
  }
  if (!(k = udp_kind(fd))) return real_recvmsg(fd, msg, flags);
  if (k < 0) return listener_data(fd, 0, 0);
  if (!msg) return fail(EFAULT);
  int mf = 0;
  socklen_t nl = msg->msg_namelen;
  size_t cl = msg->msg_control ? msg->msg_controllen : 0;
  ssize_t n = udp_recv(fd, k, want_cmsg(fd), msg->msg_iov, (int)msg->msg_iovlen, msg->msg_name, msg->msg_name ? &nl : NULL, flags, &mf,
                       msg->msg_control, &cl);
  if (n < 0) return n;
  msg->msg_namelen = msg->msg_name ? nl : 0;
  msg->msg_controllen = cl; /* IP_PKTINFO and the like, as the daemon put them before the payload */
  msg->msg_flags = mf;
  return n;
}

/* ---- what reads the descriptor behind our back: the ring goes first ------- */

/* _FORTIFY_SOURCE's checked reads (glibc's own call its internal read, which we never see). */
EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen) {
  resolve();
  if (len > buflen && real_read_chk) return real_read_chk(fd, buf, len, buflen); /* its overflow report */
  return read(fd, buf, len);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags) {
  resolve();
  if (len > buflen && real_recv_chk) return real_recv_chk(fd, buf, len, buflen, flags);
  return recv(fd, buf, len, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *from,
                              socklen_t *fromlen) {
  resolve();
  if (len > buflen && real_recvfrom_chk) return real_recvfrom_chk(fd, buf, len, buflen, flags, from, fromlen);
  return recvfrom(fd, buf, len, flags, from, fromlen);
}

/* stdio reads the descriptor with glibc's internal read. */
EXPORT FILE *fdopen(int fd, const char *mode) {
  resolve();
  if (fd_kind(fd) == K_TCP) ring_off(fd);
  return real_fdopen(fd, mode);
}

/* The kernel moves the bytes itself. */
EXPORT ssize_t splice(int in, loff_t *inoff, int out, loff_t *outoff, size_t len, unsigned int flags) {
  resolve();
  if (fd_kind(in) == K_TCP) ring_off(in);
  return real_splice(in, inoff, out, outoff, len, flags);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *timeout) {
  resolve();
  if (fd_kind(fd) == K_TCP) ring_off(fd);
  return real_recvmmsg(fd, v, n, flags, timeout);
}
