/*
 * preload_int.h - what the LD_PRELOAD library's files share: the wire's
 * constants and byte order, the socket kinds, libc's own calls, the
 * descriptor table and the API connection (preload_api.c), the socket calls
 * (preload_sock.c), the data path (preload.c), datagrams (preload_dgram.c).
 * Internal: nothing here is exported from the library (-fvisibility=hidden).
 */
#ifndef TAPSTACK_PRELOAD_INT_H
#define TAPSTACK_PRELOAD_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* K_FRESH: a TCP socket that never connected (SS_UNCONNECTED): its data calls
 * are answered here, as a listener's are (reads ENOTCONN, writes EPIPE). */
enum { K_NONE = 0, K_TCP = 1, K_UDP4 = 2, K_UDP6 = 3, K_LISTEN = 4, K_FRESH = 5 };

/* The daemon's datagram descriptor: an error message is u16 0xffff, i32 errno. */
#define DGRAM_ERR_MARK 0xffff
/* In addrlen: control messages (u16 length, then struct cmsghdr's as the kernel lays them out) follow the address. */
#define DGRAM_F_CMSG 0x8000
#define DGRAM_MAX_CONTROL 4096
#define WIRE_IN_LEN 8
#define WIRE_IN6_LEN 28
/* Largest UDP payloads (IPv4, IPv6), as udp_sendmsg checks them. */
#define UDP_MAX4 65507
#define UDP_MAX6 65527

static inline void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint16_t get16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static inline uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline int fail(int e) {
  errno = e;
  return -1;
}

/* preload_dgram.c: addresses on the wire, and UDP data on the datagram descriptor. */
int addr_to_wire(const struct sockaddr *sa, socklen_t len, uint8_t *p);
void wire_to_addr(const uint8_t *w, size_t wlen, struct sockaddr *sa, socklen_t *alen);
ssize_t udp_send(int fd, int k, const struct iovec *iov, int iovcnt, const struct sockaddr *to, socklen_t tolen, int flags);
ssize_t udp_recv(int fd, int k, int cmsg, const struct iovec *iov, int iovcnt, struct sockaddr *from, socklen_t *fromlen,
                 int flags, int *msg_flags, void *ctl, size_t *ctllen);

#define EXPORT __attribute__((visibility("default")))

/* ---- the protocol (docs/api.md) ---------------------------------------- */

#define API_MAGIC 0x50415354u
#define API_VERSION 1
#define HELLO_WANT_FDS 1
#define HELLO_WANT_RINGS 2
#define HELLO_RING_LEVEL 8
#define HELLO_RING_POOL 16
#define FRAME_F_FD 1
#define FRAME_F_FDS 2
/* RING_POOL: the socket's ring is the pool's slot in bits 8-15 (a new memfd for it with the ring's, else reused). */
#define FRAME_F_RING_SLOT 8
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

/* ---- libc's own functions (preload_api.c resolves them) ------------------ */

extern int (*real_socket)(int, int, int);
extern int (*real_bind)(int, const struct sockaddr *, socklen_t);
extern int (*real_listen)(int, int);
extern int (*real_accept)(int, struct sockaddr *, socklen_t *);
extern int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
extern int (*real_connect)(int, const struct sockaddr *, socklen_t);
extern int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
extern int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
extern int (*real_setsockopt)(int, int, int, const void *, socklen_t);
extern int (*real_getsockopt)(int, int, int, void *, socklen_t *);
extern int (*real_shutdown)(int, int);
extern int (*real_close)(int);
extern int (*real_fcntl)(int, int, ...);
extern int (*real_fcntl64)(int, int, ...);
extern int (*real_ioctl)(int, unsigned long, ...);
extern int (*real_dup)(int);
extern int (*real_dup2)(int, int);
extern int (*real_dup3)(int, int, int);
extern ssize_t (*real_send)(int, const void *, size_t, int);
extern ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
extern ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
extern ssize_t (*real_recv)(int, void *, size_t, int);
extern ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
extern ssize_t (*real_recvmsg)(int, struct msghdr *, int);
extern ssize_t (*real_read)(int, void *, size_t);
extern ssize_t (*real_write)(int, const void *, size_t);
extern ssize_t (*real_readv)(int, const struct iovec *, int);
extern ssize_t (*real_writev)(int, const struct iovec *, int);
extern ssize_t (*real_read_chk)(int, void *, size_t, size_t);
extern ssize_t (*real_recv_chk)(int, void *, size_t, size_t, int);
extern ssize_t (*real_recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
extern FILE *(*real_fdopen)(int, const char *);
extern ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
extern int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);

extern pthread_once_t resolve_once;
void resolve_all(void);
static inline void resolve(void) {
  if (__builtin_expect(real_close == NULL, 0)) pthread_once(&resolve_once, resolve_all);
}

/* ---- the descriptor table (preload_api.c) --------------------------------- */

/* Descriptors above this are never stack sockets (a new one there is refused with EMFILE). */
#define MAXFD 65536

/* A connection ts_accept_batch returned that no accept has handed to the program yet. */
struct qconn {
  int api;
  int dfd;
  int ring; /* its ring's memfd, or -1 */
  int slot; /* RING_POOL: its ring's slot in the pool (its memfd, if new, is mapped there already), or -1 */
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
extern unsigned char kind[MAXFD];
extern struct tsock *tab[MAXFD];
extern pthread_mutex_t g_mu;
extern int g_api;
extern unsigned g_epoch;
extern pid_t g_pid;
/* Connections waiting in listeners' queues, all of this process (a fork's child drops its copies). */
extern int g_queued;
/* The daemon does not know ts_accept_batch (ENOSYS): accept4 one at a time. */
extern int g_nobatch;
/* The daemon sends nothing back for a close with CLOSE_F_NOREPLY (its hello said so). */
extern int g_close_noreply;
/* RING_LEVEL rings asked for; g_level: the daemon gives them. */
extern int g_want_rings;
extern int g_level;
/* RING_POOL: the daemon names rings by pool slot (preload_ring.c keeps the mappings). */
extern int g_pool;
/* Sockets of this process reading through a ring (a fork turns them off). */
extern int g_rings;
/* Listeners open in this process: a fork marks them shared. */
extern int g_listeners;

static inline int ours(void) { return getpid() == g_pid; }

static inline int fd_kind(int fd) {
  if (fd < 0 || fd >= MAXFD) return K_NONE;
  return __atomic_load_n(&kind[fd], __ATOMIC_ACQUIRE);
}

void set_fd(int fd, struct tsock *s);
void set_kind_locked(int fd, struct tsock *s);

/* ---- the API connection (preload_api.c) ---------------------------------- */

/* Descriptors that came with a reply, in arrival order. */
struct fdbag {
  int n;
  int v[ACCEPT_BATCH];
};

struct reply {
  int32_t ret;
  uint8_t body[4096]; /* what fits is kept: sockaddrs, option values, an error-queue entry */
  size_t blen;
  int fd;            /* the first descriptor that came, or -1 */
  int ring;          /* socket, accept4: the ring memfd after it (FRAME_F_RING), or -1 */
  int slot;          /* RING_POOL: the ring's slot in the pool (FRAME_F_RING_SLOT), or -1 */
  struct fdbag fds;  /* all of them (ts_accept_batch's several) */
};

void bag_close(struct fdbag *b);
void api_lost(void);
int api_send_locked(uint16_t call, const uint8_t *args, size_t alen, struct reply *r, int noreply);
int api_call_locked(uint16_t call, const uint8_t *args, size_t alen, struct reply *r);
struct tsock *sock_of(int fd);
int call_on(struct tsock *s, uint16_t call, uint8_t *args, size_t alen, struct reply *r);
int inherit_locked(struct tsock *s);
int nonblocking(int fd);
int timeo_ms(int fd, int opt);
void qconn_abort_locked(struct qconn *c, pid_t pid, unsigned epoch);
void acceptq_drop_locked(struct tsock *s, int lfd);
void ring_off_locked(struct tsock *s, int fd);
void ring_wait_forget(int fd);
void ring_off(int fd);
void rings_off_exec(int all);
void release_locked(int fd);
int install(int api, int dfd, int ringfd, int slot, int family, int udp, int nonblock, int cloexec);

/* ---- preload_sock.c ------------------------------------------------------ */

/* SO_ERROR of the socket (0, an errno; EBADF when it is not ours to ask). */
int sock_error(struct tsock *s);

#endif
