/*
 * unix.c - the UNIX-socket addon of tapstack: what the syscall API needs and
 * Node's `net` does not offer.
 *
 *   - SCM_RIGHTS: the daemon hands a client one end of a socketpair per stack
 *     socket (the data descriptor, see docs/api.md); Node's net module drops
 *     ancillary data on non-IPC pipes, so the API connection is read and
 *     written here with recvmsg/sendmsg;
 *   - SO_PEERCRED: the client's pid/uid/gid come from the kernel, never from
 *     a message;
 *   - readiness through uv_poll on raw fds, so a pump can stop reading a
 *     descriptor whose stack socket has no send-buffer room (back-pressure
 *     stays with TCP) without Node buffering anything;
 *   - page buffers: memory the API holds for a client (queued replies, a
 *     partial request) mapped on its own and unmapped when released, so it
 *     goes back to the system when the client's bytes go, not at some later
 *     garbage collection and not into a fragmented malloc heap.
 *   - the data rings (ring_napi.c, ring.h): a socket's data in shared
 *     memory, the socketpair left as its doorbell;
 *   - one AF_UNIX datagram to a path (sd_notify: Node's dgram has no
 *     AF_UNIX), for tapstackd's messages to the service manager.
 *
 * Calls on the data path return a byte count or -errno and never throw;
 * setup calls throw an Error whose `code` is the errno name.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 16

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, what ? what : "", strerror(err));
  napi_value code, message, error, errno_v;
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &errno_v);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  return argc < want ? -1 : 0;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

/* A Uint8Array/Buffer plus an (offset, length) window inside it. */
static int get_window(napi_env env, napi_value *argv, uint8_t **p, size_t *len) {
  napi_typedarray_type type;
  size_t n, boff;
  void *data;
  napi_value ab;
  int32_t off, l;
  if (napi_get_typedarray_info(env, argv[0], &type, &n, &data, &ab, &boff) != napi_ok || type != napi_uint8_array)
    return -1;
  if (get_i32(env, argv[1], &off) || get_i32(env, argv[2], &l) || off < 0 || l < 0 || (size_t)off + (size_t)l > n)
    return -1;
  *p = (uint8_t *)data + off;
  *len = (size_t)l;
  return 0;
}

static napi_value num(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

static int fill_addr(const char *path, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa->sun_path) return -1;
  strcpy(sa->sun_path, path);
  return 0;
}

/* unixListen(path, backlog) -> fd. The caller removes a stale file first. */
static napi_value unix_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t plen;
  int32_t backlog;
  struct sockaddr_un sa;
  if (get_args(env, info, 2, argv) || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
      get_i32(env, argv[1], &backlog))
    return throw_type(env, "unixListen(path: string, backlog: number)");
  if (fill_addr(path, &sa) < 0) return throw_errno(env, ENAMETOOLONG, "bind", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", NULL);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "bind", path);
  }
  return num(env, fd);
}

/* unixConnect(path) -> fd (non-blocking once connected). */
static napi_value unix_connect(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t plen;
  struct sockaddr_un sa;
  if (get_args(env, info, 1, argv) || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok)
    return throw_type(env, "unixConnect(path: string)");
  if (fill_addr(path, &sa) < 0) return throw_errno(env, ENAMETOOLONG, "connect", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", NULL);
  int rc;
  do rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "connect", path);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return num(env, fd);
}

/* accept(fd) -> new fd, or -errno (-EAGAIN when the queue is empty). */
static napi_value unix_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return throw_type(env, "accept(fd)");
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
  return num(env, c < 0 ? -errno : c);
}

/* peerCred(fd, out: Int32Array[3]) -> 0 or -errno; out = pid, uid, gid. */
static napi_value peer_cred(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  napi_typedarray_type type;
  size_t n, boff;
  void *data;
  napi_value ab;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) ||
      napi_get_typedarray_info(env, argv[1], &type, &n, &data, &ab, &boff) != napi_ok || type != napi_int32_array || n < 3)
    return throw_type(env, "peerCred(fd, out: Int32Array(3))");
  struct ucred cr;
  socklen_t l = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) return num(env, -errno);
  int32_t *o = (int32_t *)data;
  o[0] = cr.pid;
  o[1] = (int32_t)cr.uid;
  o[2] = (int32_t)cr.gid;
  return num(env, 0);
}

/* socketPair(sndbuf, rcvbuf, out: Int32Array[2]) -> 0 or -errno. Both ends
 * non-blocking and close-on-exec; buffers as small as asked so the pair adds
 * little to what TCP already buffers. */
static napi_value socket_pair(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t snd, rcv, stype = SOCK_STREAM;
  napi_typedarray_type type;
  size_t n, boff, argc = 4;
  void *data;
  napi_value ab;
  if (get_args(env, info, 3, argv) || get_i32(env, argv[0], &snd) || get_i32(env, argv[1], &rcv) ||
      napi_get_typedarray_info(env, argv[2], &type, &n, &data, &ab, &boff) != napi_ok || type != napi_int32_array || n < 2)
    return throw_type(env, "socketPair(sndbuf, rcvbuf, out: Int32Array(2)[, type])");
  /* Optional socket type: SOCK_STREAM (default) or SOCK_SEQPACKET (datagram sockets' data descriptors). */
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 4) {
    napi_valuetype vt;
    if (napi_typeof(env, argv[3], &vt) == napi_ok && vt == napi_number && get_i32(env, argv[3], &stype) == 0 &&
        stype != SOCK_STREAM && stype != SOCK_SEQPACKET)
      return throw_type(env, "socketPair: type must be SOCK_STREAM or SOCK_SEQPACKET");
  }
  int sv[2];
  if (socketpair(AF_UNIX, stype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return num(env, -errno);
  for (int i = 0; i < 2; i++) {
    if (snd > 0) setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
    if (rcv > 0) setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  }
  ((int32_t *)data)[0] = sv[0];
  ((int32_t *)data)[1] = sv[1];
  return num(env, 0);
}

/* sendmsg(fd, buf, off, len, fds: Int32Array, nfds) -> bytes or -errno.
 * Never blocks, never raises SIGPIPE. The fds ride on the first byte. */
static napi_value send_msg(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t fd, nfds;
  uint8_t *p;
  size_t len;
  napi_typedarray_type type;
  size_t n = 0, boff;
  void *fdata = NULL;
  napi_value ab;
  if (get_args(env, info, 6, argv) || get_i32(env, argv[0], &fd) || get_window(env, argv + 1, &p, &len) ||
      get_i32(env, argv[5], &nfds) || nfds < 0 || nfds > MAX_FDS)
    return throw_type(env, "sendmsg(fd, buf, off, len, fds: Int32Array, nfds <= 16)");
  if (nfds > 0 && (napi_get_typedarray_info(env, argv[4], &type, &n, &fdata, &ab, &boff) != napi_ok ||
                   type != napi_int32_array || n < (size_t)nfds))
    return throw_type(env, "sendmsg: fds must be an Int32Array holding nfds descriptors");
  struct iovec iov = {p, len};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } u;
  if (nfds > 0) {
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fdata, sizeof(int) * (size_t)nfds);
  }
  ssize_t rc;
  do rc = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (rc < 0 && errno == EINTR);
  return num(env, rc < 0 ? -errno : rc);
}

/* recvmsg(fd, buf, off, len, fdsOut: Int32Array) -> bytes (0 at EOF) or
 * -errno; fdsOut[0] = number of received descriptors, then the fds. */
static napi_value recv_msg(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  uint8_t *p;
  size_t len;
  napi_typedarray_type type;
  size_t n, boff;
  void *fdata;
  napi_value ab;
  if (get_args(env, info, 5, argv) || get_i32(env, argv[0], &fd) || get_window(env, argv + 1, &p, &len) ||
      napi_get_typedarray_info(env, argv[4], &type, &n, &fdata, &ab, &boff) != napi_ok || type != napi_int32_array ||
      n < MAX_FDS + 1)
    return throw_type(env, "recvmsg(fd, buf, off, len, fdsOut: Int32Array(17))");
  int32_t *fo = (int32_t *)fdata;
  fo[0] = 0;
  struct iovec iov = {p, len};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } u;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t rc;
  do rc = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return num(env, -errno);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int *fds = (int *)CMSG_DATA(c);
    for (int i = 0; i < cnt; i++) {
      if (fo[0] < MAX_FDS) fo[1 + fo[0]++] = fds[i];
      else close(fds[i]); /* more than we can report: do not leak them */
    }
  }
  return num(env, rc);
}

/* read(fd, buf, off, len) / write(fd, buf, off, len) -> bytes or -errno. */
static napi_value fd_read(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  uint8_t *p;
  size_t len;
  if (get_args(env, info, 4, argv) || get_i32(env, argv[0], &fd) || get_window(env, argv + 1, &p, &len))
    return throw_type(env, "read(fd, buf, off, len)");
  ssize_t rc;
  do rc = recv(fd, p, len, MSG_DONTWAIT);
  while (rc < 0 && errno == EINTR);
  return num(env, rc < 0 ? -errno : rc);
}

static napi_value fd_write(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  uint8_t *p;
  size_t len;
  if (get_args(env, info, 4, argv) || get_i32(env, argv[0], &fd) || get_window(env, argv + 1, &p, &len))
    return throw_type(env, "write(fd, buf, off, len)");
  ssize_t rc;
  do rc = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (rc < 0 && errno == EINTR);
  return num(env, rc < 0 ? -errno : rc);
}

/* writeMsgs(fd, buf, ends: Uint32Array, count) -> how many messages were
 * sent, or -errno when none was. Message i is buf[ends[i - 1] (0 for the
 * first), ends[i]): each one record of a SOCK_SEQPACKET pair, all in one
 * sendmmsg (a datagram socket's pump moves a batch per run, not a syscall
 * per datagram). Never blocks, never raises SIGPIPE; the kernel takes a
 * prefix of the batch when the pair fills. */
#define WRITE_MSGS_MAX 64
static napi_value write_msgs(napi_env env, napi_callback_info info) {
  napi_value argv[4], ab;
  int32_t fd, count;
  napi_typedarray_type type;
  size_t n, en, boff;
  void *data, *edata;
  if (get_args(env, info, 4, argv) || get_i32(env, argv[0], &fd) ||
      napi_get_typedarray_info(env, argv[1], &type, &n, &data, &ab, &boff) != napi_ok || type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[2], &type, &en, &edata, &ab, &boff) != napi_ok || type != napi_uint32_array ||
      get_i32(env, argv[3], &count) || count < 1 || count > WRITE_MSGS_MAX || (size_t)count > en)
    return throw_type(env, "writeMsgs(fd, buf, ends: Uint32Array, count: 1..64)");
  struct mmsghdr mm[WRITE_MSGS_MAX];
  struct iovec iov[WRITE_MSGS_MAX];
  const uint32_t *ends = edata;
  uint32_t start = 0;
  memset(mm, 0, sizeof mm[0] * (size_t)count);
  for (int i = 0; i < count; i++) {
    if (ends[i] < start || ends[i] > n) return throw_type(env, "writeMsgs: ends must rise within buf");
    iov[i].iov_base = (uint8_t *)data + start;
    iov[i].iov_len = ends[i] - start;
    mm[i].msg_hdr.msg_iov = &iov[i];
    mm[i].msg_hdr.msg_iovlen = 1;
    start = ends[i];
  }
  int rc;
  do rc = sendmmsg(fd, mm, (unsigned)count, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (rc < 0 && errno == EINTR);
  return num(env, rc < 0 ? -errno : rc);
}

static napi_value fd_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, how;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || get_i32(env, argv[1], &how))
    return throw_type(env, "shutdown(fd, how)");
  return num(env, shutdown(fd, how) < 0 ? -errno : 0);
}

static napi_value fd_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return throw_type(env, "close(fd)");
  return num(env, close(fd) < 0 ? -errno : 0);
}

/* ioctlInt(fd, request) -> the int the ioctl returns, or -errno
 * (FIONREAD/SIOCINQ, SIOCOUTQ on the daemon's end of a pair). */
static napi_value ioctl_int(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, req;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || get_i32(env, argv[1], &req))
    return throw_type(env, "ioctlInt(fd, request)");
  int v = 0;
  return num(env, ioctl(fd, (unsigned long)req, &v) < 0 ? -errno : v);
}

/* dupFd(fd) -> a new close-on-exec descriptor for the same open file, or
 * -errno. The daemon keeps one of the client's end of a stream pair so it can
 * set that end's readiness (a listener's pending connection, a handshake in
 * progress) the way the kernel sets a socket's. */
static napi_value dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return throw_type(env, "dupFd(fd)");
  int rc = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return num(env, rc < 0 ? -errno : rc);
}

/* setSndbuf(fd, bytes) -> 0 or -errno: SO_SNDBUF (the kernel doubles it and
 * clamps it to its minimum). */
static napi_value set_sndbuf(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, v;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || get_i32(env, argv[1], &v))
    return throw_type(env, "setSndbuf(fd, bytes)");
  return num(env, setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) < 0 ? -errno : 0);
}

/* pollEvents(fd) -> revents of a zero-timeout poll(2) for POLLIN, or -errno:
 * POLLHUP on the daemon's end of a stream pair means every copy of the
 * client's end is closed. */
static napi_value poll_events(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return throw_type(env, "pollEvents(fd)");
  struct pollfd p = {fd, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, 0);
  while (rc < 0 && errno == EINTR);
  return num(env, rc < 0 ? -errno : p.revents);
}

/* sendDgram(path, buf) -> bytes sent, or -errno: one datagram on a fresh
 * AF_UNIX SOCK_DGRAM socket, closed after (sd_notify's protocol: the service
 * manager's NOTIFY_SOCKET). A path starting with '@' is in the abstract
 * namespace (the '@' becomes the leading NUL, the address is as long as the
 * name, as systemd binds it). Never blocks: a full queue is -EAGAIN. */
static napi_value send_dgram(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t plen, n, boff;
  napi_typedarray_type type;
  void *data;
  napi_value ab;
  if (get_args(env, info, 2, argv) || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &n, &data, &ab, &boff) != napi_ok || type != napi_uint8_array)
    return throw_type(env, "sendDgram(path: string, buf: Uint8Array)");
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (plen < 2 || plen >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) return num(env, -EINVAL);
  memcpy(sa.sun_path, path, plen);
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  else salen++; /* the terminating NUL of a filesystem path */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return num(env, -errno);
  ssize_t rc;
  do rc = sendto(fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  while (rc < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  return num(env, rc < 0 ? -e : rc);
}

/* ---- page buffers ----------------------------------------------------- */

static void page_unmap(napi_env env, void *data, void *hint) {
  munmap(data, (size_t)(uintptr_t)hint);
}

/* pageBuffer(size) -> a Buffer of `size` bytes over its own anonymous
 * mapping (whole pages; untouched pages cost nothing), or null when the
 * mapping fails (the caller falls back to the heap). */
static napi_value page_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  int32_t size;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &size) || size <= 0) return throw_type(env, "pageBuffer(size > 0)");
  long pg = sysconf(_SC_PAGESIZE);
  size_t mapped = ((size_t)size + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
  void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    napi_get_null(env, &out);
    return out;
  }
  if (napi_create_external_buffer(env, (size_t)size, p, page_unmap, (void *)(uintptr_t)mapped, &out) != napi_ok) {
    munmap(p, mapped);
    napi_get_null(env, &out);
  }
  return out;
}

/* pageRelease(buf) -> true if the buffer's memory was released: its
 * ArrayBuffer is detached (every view of it now has length 0, so nothing can
 * touch the memory after) and Node runs the unmap on its next turn. Only for
 * buffers from pageBuffer: detaching a view of Node's shared pool would take
 * the pool with it, so a view that is not its whole ArrayBuffer is refused
 * (false), as is one already released. */
static napi_value page_release(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab, out;
  napi_typedarray_type type;
  size_t n, boff;
  void *data;
  bool ok = false;
  if (get_args(env, info, 1, argv) || napi_get_typedarray_info(env, argv[0], &type, &n, &data, &ab, &boff) != napi_ok)
    return throw_type(env, "pageRelease(buf: Buffer)");
  bool detached = false;
  size_t ablen = 0;
  void *abdata = NULL;
  napi_is_detached_arraybuffer(env, ab, &detached);
  if (!detached && napi_get_arraybuffer_info(env, ab, &abdata, &ablen) == napi_ok && boff == 0 && ablen == n && n > 0)
    ok = napi_detach_arraybuffer(env, ab) == napi_ok;
  if (!ok) {
    /* A pending exception from a failed detach would surface later in unrelated code. */
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
  }
  napi_get_boolean(env, ok, &out);
  return out;
}

/* ---- readiness -------------------------------------------------------- */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb_ref;
  napi_async_context async;
  int closing;
  /* The events last started (0: stopped): watchSet with the same ones does
   * nothing, since uv_poll_start re-arms even an unchanged handle, and the
   * pumps set their interest after every run (two epoll_ctl calls each, per
   * message on a request/response connection). */
  int ev;
} watch_t;

static void watch_free(uv_handle_t *h) { free(h->data); }

static void on_ready(uv_poll_t *h, int status, int events) {
  watch_t *w = (watch_t *)h->data;
  if (w->closing) return;
  if (status < 0) w->ev = 0; /* libuv stopped the handle (POLLERR) */
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, w->cb_ref, &cb);
  napi_get_global(env, &recv);
  napi_create_int32(env, events, &argv[0]);
  napi_create_int32(env, status, &argv[1]);
  if (napi_make_callback(env, w->async, recv, cb, 2, argv, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

/* watch(fd, cb(events, status)) -> handle; nothing is watched until
 * watchSet(handle, UV_READABLE|UV_WRITABLE|UV_DISCONNECT). */
static napi_value watch(napi_env env, napi_callback_info info) {
  napi_value argv[2], handle, name;
  int32_t fd;
  napi_valuetype t;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok ||
      t != napi_function)
    return throw_type(env, "watch(fd, cb)");
  watch_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "calloc", NULL);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    free(w);
    return throw_errno(env, -rc, "uv_poll_init", NULL);
  }
  w->env = env;
  w->poll.data = w;
  napi_create_reference(env, argv[1], 1, &w->cb_ref);
  napi_create_string_utf8(env, "tapstack:unix-watch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->async);
  napi_create_external(env, w, NULL, NULL, &handle);
  return handle;
}

static watch_t *get_watch(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok)
    return NULL;
  return (watch_t *)p;
}

static napi_value watch_set(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t ev;
  watch_t *w;
  if (get_args(env, info, 2, argv) || !(w = get_watch(env, argv[0])) || get_i32(env, argv[1], &ev))
    return throw_type(env, "watchSet(handle, events)");
  if (w->closing || ev == w->ev) return NULL;
  int rc = ev == 0 ? uv_poll_stop(&w->poll) : uv_poll_start(&w->poll, ev, on_ready);
  w->ev = rc < 0 ? 0 : ev;
  return NULL;
}

/* watchClose(handle): stops watching; the fd itself stays open. */
static napi_value watch_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  watch_t *w;
  if (get_args(env, info, 1, argv) || !(w = get_watch(env, argv[0]))) return throw_type(env, "watchClose(handle)");
  if (w->closing) return NULL;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->cb_ref);
  napi_async_destroy(env, w->async);
  uv_close((uv_handle_t *)&w->poll, watch_free);
  return NULL;
}

#define EXPORT(name, fn)                                                                \
  do {                                                                                  \
    napi_value f;                                                                       \
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f) != napi_ok ||   \
        napi_set_named_property(env, exports, name, f) != napi_ok)                      \
      return NULL;                                                                      \
  } while (0)

#define CONST(name, v)                                  \
  do {                                                  \
    napi_value x;                                       \
    napi_create_int32(env, (v), &x);                    \
    napi_set_named_property(env, exports, name, x);     \
  } while (0)

int ring_init(napi_env env, napi_value exports); /* ring_napi.c */

static napi_value init(napi_env env, napi_value exports) {
  if (ring_init(env, exports) < 0) return NULL;
  EXPORT("unixListen", unix_listen);
  EXPORT("unixConnect", unix_connect);
  EXPORT("accept", unix_accept);
  EXPORT("peerCred", peer_cred);
  EXPORT("socketPair", socket_pair);
  EXPORT("sendmsg", send_msg);
  EXPORT("recvmsg", recv_msg);
  EXPORT("read", fd_read);
  EXPORT("write", fd_write);
  EXPORT("writeMsgs", write_msgs);
  EXPORT("shutdown", fd_shutdown);
  EXPORT("close", fd_close);
  EXPORT("ioctlInt", ioctl_int);
  EXPORT("dupFd", dup_fd);
  EXPORT("setSndbuf", set_sndbuf);
  EXPORT("pollEvents", poll_events);
  EXPORT("watch", watch);
  EXPORT("watchSet", watch_set);
  EXPORT("watchClose", watch_close);
  EXPORT("pageBuffer", page_buffer);
  EXPORT("pageRelease", page_release);
  EXPORT("sendDgram", send_dgram);
  CONST("UV_READABLE", UV_READABLE);
  CONST("UV_WRITABLE", UV_WRITABLE);
  CONST("UV_DISCONNECT", UV_DISCONNECT);
  CONST("FIONREAD", FIONREAD);
  CONST("SIOCOUTQ", TIOCOUTQ);
  CONST("MAX_FDS", MAX_FDS);
  CONST("PAGE_SIZE", (int32_t)sysconf(_SC_PAGESIZE));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
