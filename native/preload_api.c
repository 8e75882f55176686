/*
 * preload_api.c - the LD_PRELOAD library's core: libc's own calls, the
 * descriptor table, the API connection (hello, one request and its reply),
 * fork handling, and the install of a new socket's descriptor (and its down
 * ring's mapping). The socket calls are preload_sock.c's, the data path
 * preload.c's (see there for the design).
 */
/* node-gyp builds with _FILE_OFFSET_BITS=64, which renames fcntl to fcntl64 in
 * the headers; we define both symbols ourselves (64-bit: the same call). */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/un.h>

#include "preload_int.h"
#include "preload_ring.h"

/* ---- libc's own functions ---------------------------------------------- */

int (*real_socket)(int, int, int);
int (*real_bind)(int, const struct sockaddr *, socklen_t);
int (*real_listen)(int, int);
int (*real_accept)(int, struct sockaddr *, socklen_t *);
int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
int (*real_connect)(int, const struct sockaddr *, socklen_t);
int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
int (*real_setsockopt)(int, int, int, const void *, socklen_t);
int (*real_getsockopt)(int, int, int, void *, socklen_t *);
int (*real_shutdown)(int, int);
int (*real_close)(int);
int (*real_fcntl)(int, int, ...);
int (*real_fcntl64)(int, int, ...);
int (*real_ioctl)(int, unsigned long, ...);
int (*real_dup)(int);
int (*real_dup2)(int, int);
int (*real_dup3)(int, int, int);
ssize_t (*real_send)(int, const void *, size_t, int);
ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
ssize_t (*real_recv)(int, void *, size_t, int);
ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
ssize_t (*real_recvmsg)(int, struct msghdr *, int);
ssize_t (*real_read)(int, void *, size_t);
ssize_t (*real_write)(int, const void *, size_t);
ssize_t (*real_readv)(int, const struct iovec *, int);
ssize_t (*real_writev)(int, const struct iovec *, int);
ssize_t (*real_read_chk)(int, void *, size_t, size_t);
ssize_t (*real_recv_chk)(int, void *, size_t, size_t, int);
ssize_t (*real_recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
FILE *(*real_fdopen)(int, const char *);
ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);

pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
void resolve_all(void) {
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

/* ---- the descriptor table ----------------------------------------------- */

unsigned char kind[MAXFD];
struct tsock *tab[MAXFD];

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
int g_api = -1;
unsigned g_epoch = 1;
static uint32_t g_id;
/* Replies still owed to requests sent without waiting (close): read and dropped before the next reply. */
static unsigned g_skip;
#define SKIP_MAX 64
pid_t g_pid;
static int g_warned;
/* Connections waiting in listeners' queues, all of this process (a fork's child drops its copies). */
int g_queued;
/* The daemon does not know ts_accept_batch (ENOSYS): accept4 one at a time. */
int g_nobatch;
/* The daemon sends nothing back for a close with CLOSE_F_NOREPLY (its hello said so). */
int g_close_noreply;
/* TAPSTACK_PRELOAD_RINGS=1: ask for down rings (RING_LEVEL) from a pool (RING_POOL); g_level, g_pool: the
 * daemon gives them. Off by default: with the pool a connection no longer pays a memfd and its mappings,
 * but every small read still costs the doorbell byte, and nginx is no faster over rings (README). */
int g_want_rings;
int g_level;
int g_pool;
/* Sockets of this process reading through a ring (a fork turns them off). */
int g_rings;

void set_fd(int fd, struct tsock *s) {
  tab[fd] = s;
  int k = K_NONE;
  if (s) k = s->udp ? (s->family == AF_INET6 ? K_UDP6 : K_UDP4) : s->listening ? K_LISTEN : s->fresh ? K_FRESH : K_TCP;
  __atomic_store_n(&kind[fd], (unsigned char)k, __ATOMIC_RELEASE);
}

/* The socket's kind changed (listen, connect): every descriptor naming it follows. Under g_mu. */
void set_kind_locked(int fd, struct tsock *s) {
  if (tab[fd] == s) set_fd(fd, s);
  if (s->refs > 1)
    for (int i = 0; i < MAXFD; i++)
      if (i != fd && tab[i] == s) set_fd(i, s);
}

/* Listeners open in this process: a fork marks them shared. */
int g_listeners;

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
  pring_pool_forget(0); /* the parent's pooled rings are not mapped here (MADV_DONTFORK) */
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

void bag_close(struct fdbag *b) {
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

void api_lost(void) {
  pring_pool_forget(1); /* the daemon's side of the pool went with the connection */
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
  put16(hello + 6, HELLO_WANT_FDS | (g_want_rings ? HELLO_WANT_RINGS | HELLO_RING_LEVEL | HELLO_RING_POOL : 0));
  int rc = write_all(fd, hello, sizeof hello);
  if (!rc) rc = read_all(fd, reply, sizeof reply, NULL);
  if (!rc && (get32(reply) != API_MAGIC || !(get16(reply + 6) & HELLO_WANT_FDS))) rc = -EPROTO;
  if (!rc) g_close_noreply = (get16(reply + 6) & HELLO_CLOSE_NOREPLY) != 0;
  if (!rc) g_level = (get16(reply + 6) & (HELLO_WANT_RINGS | HELLO_RING_LEVEL)) == (HELLO_WANT_RINGS | HELLO_RING_LEVEL);
  if (!rc) g_pool = g_level && (get16(reply + 6) & HELLO_RING_POOL) != 0;
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

/*
 * One request and its reply (g_mu held). With `noreply` 1 the request is only
 * sent: its reply is dropped before the next call's (close(2) of a socket
 * tells the program nothing the library does not already know, and the
 * kernel's close does not wait for the network either); with 2 no reply
 * comes at all (a close with CLOSE_F_NOREPLY).
 */
int api_send_locked(uint16_t call, const uint8_t *args, size_t alen, struct reply *r, int noreply) {
  r->fd = -1;
  r->ring = -1;
  r->slot = -1;
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
  if (g_pool && (get16(rh + 10) & FRAME_F_RING_SLOT)) r->slot = get16(rh + 10) >> 8;
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

int api_call_locked(uint16_t call, const uint8_t *args, size_t alen, struct reply *r) {
  return api_send_locked(call, args, alen, r, 0);
}

/* ---- helpers for the wrappers ------------------------------------------- */

/* The socket behind fd for a socket call, or NULL with *err set (EBADF: not ours to speak for). */
struct tsock *sock_of(int fd) {
  if (fd_kind(fd) == K_NONE || !ours()) return NULL;
  return tab[fd];
}

/* A socket call on a stack socket. Sockets inherited over fork, or made on a
 * connection that was lost, are not in this connection's table: EBADF. */
int call_on(struct tsock *s, uint16_t call, uint8_t *args, size_t alen, struct reply *r) {
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

int nonblocking(int fd) {
  int fl = real_fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

/* SO_RCVTIMEO/SO_SNDTIMEO in ms (-1: none), mirrored on the descriptor by setsockopt. */
int timeo_ms(int fd, int opt) {
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
void qconn_abort_locked(struct qconn *c, pid_t pid, unsigned epoch) {
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
void acceptq_drop_locked(struct tsock *s, int lfd) {
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
void ring_off_locked(struct tsock *s, int fd) {
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
void ring_wait_forget(int fd) {
  if (fd_kind(fd) == K_NONE) return;
  struct tsock *s = tab[fd];
  if (s && s->ring) s->ring->wait_known = 0;
}

static void rings_off_all_locked(void) {
  for (int i = 0; g_rings > 0 && i < MAXFD; i++)
    if (tab[i] && tab[i]->ring && !tab[i]->ring->off) ring_off_locked(tab[i], i);
}

/* Before an exec, or a child that execs (preload_exec.c): the new program has no mapping of the
 * rings, so every socket it may inherit goes back to its socketpair first, as at fork. all = 0:
 * those with a descriptor exec keeps (no FD_CLOEXEC); all = 1: every ring (vfork, posix_spawn's
 * file actions: the child may clear FD_CLOEXEC or dup2 any descriptor before it execs). */
void rings_off_exec(int all) {
  if (!ours() || __atomic_load_n(&g_rings, __ATOMIC_RELAXED) == 0) return;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; g_rings > 0 && i < MAXFD; i++) {
    struct tsock *s = tab[i];
    if (!s || !s->ring || s->ring->off) continue;
    if (!all) {
      int fl = real_fcntl(i, F_GETFD);
      if (fl < 0 || (fl & FD_CLOEXEC)) continue;
    }
    ring_off_locked(s, i);
  }
  pthread_mutex_unlock(&g_mu);
}

/* Before the descriptor is read by someone who does not know the ring (stdio, splice, another program). */
void ring_off(int fd) {
  if (fd < 0 || fd >= MAXFD || !ours()) return;
  pthread_mutex_lock(&g_mu);
  if (tab[fd] && tab[fd]->ring && !tab[fd]->ring->off) ring_off_locked(tab[fd], fd);
  pthread_mutex_unlock(&g_mu);
}

/* install()'s: the ring memfd that came with the socket, or its pool slot (g_mu held); one we cannot map
 * sends the socket back to its pair. */
static void ring_attach_locked(struct tsock *s, int dfd, int ringfd, int slot) {
  if (ringfd < 0 && slot < 0) return;
  if (!g_level) {
    if (ringfd >= 0) real_close(ringfd); /* not asked for: the daemon would not have made it */
    return;
  }
  struct pring *r = pring_attach(ringfd, slot);
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

void release_locked(int fd) {
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
int install(int api, int dfd, int ringfd, int slot, int family, int udp, int nonblock, int cloexec) {
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
  if (!udp) ring_attach_locked(s, dfd, ringfd, slot);
  else if (ringfd >= 0) real_close(ringfd);
  if (tab[dfd]) release_locked(dfd); /* a stale entry: its descriptor was closed behind our back */
  set_fd(dfd, s);
  return dfd;
}

/*
 * A listener inherited over fork (g_mu held): the daemon gives this process a file of its own for
 * the socket the process that made it still holds (ts_inherit; nginx's workers accept on the
 * master's listeners so), once it sees that we hold the listener's descriptor. Then the socket is
 * ours to call on, shared.
 */
int inherit_locked(struct tsock *s) {
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
