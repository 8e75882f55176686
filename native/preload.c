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
 *
 * This file is the data path (read, write and their kin, the error queue);
 * the API connection, the descriptor table and fork handling are
 * preload_api.c's, the socket calls preload_sock.c's.
 */
/* node-gyp builds with _FILE_OFFSET_BITS=64, which renames fcntl to fcntl64 in
 * the headers; we define both symbols ourselves (64-bit: the same call). */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "preload_int.h"
#include "preload_ring.h"

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
