/*
 * ring_napi.c - the data rings (ring.h) for Node: the daemon makes a
 * socket's memfd (sealed against shrinking, so nothing an application does
 * to it can make the daemon's accesses fault), the client library maps the
 * one it was passed. A ring is a handle (an external over a private struct
 * tsr_end); every call on a closed one returns -EBADF, and the daemon
 * unmaps at close, so it never touches a mapping after (the data view the
 * daemon reads from is detached at the same moment: every Buffer over it is
 * empty from then on).
 *
 * Part of the unix addon (unix.c calls ring_init). Data-path calls return a
 * count or -errno and never throw.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring.h"

/* ringReset zeroes up to this many bytes of a ring's data; more are punched out (MADV_REMOVE). */
#define RING_CLEAR_MEMSET (16u << 10)

typedef struct {
  struct tsr_end e;
  uint8_t *map;
  size_t maplen;
  /* Bytes we produced into / consumed from the rings since the last reset: what ringReset clears. */
  uint64_t out_total, in_total;
} ring_t;

static void ring_unmap(ring_t *r) {
  if (r->map) munmap(r->map, r->maplen);
  r->map = NULL;
  r->e.base = NULL;
}

static void ring_finalize(napi_env env, void *data, void *hint) {
  ring_t *r = data;
  ring_unmap(r);
  free(r);
}

static napi_value ret_num(napi_env env, int64_t v) {
  napi_value out;
  napi_create_double(env, (double)v, &out);
  return out;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  return argc < want ? -1 : 0;
}

static ring_t *get_ring(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* The (h, int) calls' arguments: the ring and the integer; -1 if either is not one. */
static int ring_int_args(napi_env env, napi_callback_info info, ring_t **r, int32_t *v) {
  napi_value argv[2];
  if (args(env, info, 2, argv) || !(*r = get_ring(env, argv[0])) || napi_get_value_int32(env, argv[1], v) != napi_ok) return -1;
  return 0;
}

/* The (h, out: Int32Array) calls' arguments: the ring and at least `min` int32s to write; NULL if either is not one. */
static int32_t *ring_out_args(napi_env env, napi_callback_info info, ring_t **r, size_t min) {
  napi_value argv[2];
  napi_typedarray_type type;
  size_t n;
  void *data;
  if (args(env, info, 2, argv) || !(*r = get_ring(env, argv[0])) ||
      napi_get_typedarray_info(env, argv[1], &type, &n, &data, NULL, NULL) != napi_ok || type != napi_int32_array || n < min)
    return NULL;
  return data;
}

/* A Uint8Array and an (offset, length) window inside it, checked. */
static int window(napi_env env, napi_value *argv, uint8_t **p, size_t *len) {
  napi_typedarray_type type;
  size_t n, boff;
  void *data;
  napi_value ab;
  int32_t off, l;
  if (napi_get_typedarray_info(env, argv[0], &type, &n, &data, &ab, &boff) != napi_ok || type != napi_uint8_array) return -1;
  if (napi_get_value_int32(env, argv[1], &off) != napi_ok || napi_get_value_int32(env, argv[2], &l) != napi_ok) return -1;
  if (off < 0 || l < 0 || (size_t)off + (size_t)l > n) return -1;
  *p = (uint8_t *)data + off;
  *len = (size_t)l;
  return 0;
}

static napi_value wrap(napi_env env, ring_t *r) {
  napi_value h;
  if (napi_create_external(env, r, ring_finalize, NULL, &h) != napi_ok) {
    ring_finalize(env, r, NULL);
    return NULL;
  }
  return h;
}

/*
 * ringCreate(upSize, downSize, fdOut: Int32Array) -> the daemon's handle;
 * fdOut[0] is the memfd to pass (the caller closes it once passed), or
 * -errno with a null handle.
 */
static napi_value ring_create(napi_env env, napi_callback_info info) {
  napi_value argv[3], nul;
  int32_t up, down;
  napi_typedarray_type type;
  size_t n;
  void *data;
  napi_get_null(env, &nul);
  if (args(env, info, 3, argv) || napi_get_value_int32(env, argv[0], &up) != napi_ok || napi_get_value_int32(env, argv[1], &down) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &n, &data, NULL, NULL) != napi_ok || type != napi_int32_array || n < 1)
    return type_error(env, "ringCreate(up, down, fdOut: Int32Array)");
  int32_t *fdOut = data;
  if (!tsr_pow2((uint32_t)up) || !tsr_pow2((uint32_t)down)) {
    fdOut[0] = -EINVAL;
    return nul;
  }
  size_t len = tsr_maplen((uint32_t)up, (uint32_t)down);
  int fd = memfd_create("tapstack-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    fdOut[0] = -errno;
    return nul;
  }
  /* Sealed at its size: an application cannot shrink it under the daemon's mapping (SIGBUS). */
  if (ftruncate(fd, (off_t)len) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    fdOut[0] = -errno;
    close(fd);
    return nul;
  }
  uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    fdOut[0] = -errno;
    close(fd);
    return nul;
  }
  ring_t *r = calloc(1, sizeof *r);
  if (!r) {
    munmap(map, len);
    close(fd);
    fdOut[0] = -ENOMEM;
    return nul;
  }
  r->map = map;
  r->maplen = len;
  tsr_format(map, (uint32_t)up, (uint32_t)down);
  tsr_attach(&r->e, map, len, TSR_ROLE_DAEMON);
  fdOut[0] = fd;
  return wrap(env, r);
}

/*
 * ringAttach(fd, role) -> a handle over the memfd's mapping (the caller may
 * close fd after), or a negative errno: -EPROTO for a header that is not a
 * ring's. role 0: the application's side, 1: the daemon's (tests).
 */
static napi_value ring_attach(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, role;
  if (args(env, info, 2, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &role) != napi_ok)
    return type_error(env, "ringAttach(fd, role)");
  struct stat st;
  if (fstat(fd, &st) < 0) return ret_num(env, -errno);
  if (st.st_size < (off_t)TSR_HDR || st.st_size > (off_t)(TSR_HDR + 2 * (size_t)TSR_MAX)) return ret_num(env, -EPROTO);
  size_t len = (size_t)st.st_size;
  uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return ret_num(env, -errno);
  ring_t *r = calloc(1, sizeof *r);
  if (!r) {
    munmap(map, len);
    return ret_num(env, -ENOMEM);
  }
  r->map = map;
  r->maplen = len;
  int rc = tsr_attach(&r->e, map, len, role ? TSR_ROLE_DAEMON : TSR_ROLE_APP);
  if (rc < 0) {
    ring_unmap(r);
    free(r);
    return ret_num(env, rc);
  }
  return wrap(env, r);
}

/* ringBell(h, fd): the doorbell descriptor (-1: none). */
static napi_value ring_bell(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t fd;
  if (ring_int_args(env, info, &r, &fd))
    return type_error(env, "ringBell(h, fd)");
  r->e.bell = fd;
  return NULL;
}

/* ringWrite(h, buf, off, len) -> bytes taken, -EPIPE, -EFAULT, -EBADF. */
static napi_value ring_write(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  ring_t *r;
  uint8_t *p;
  size_t len;
  if (args(env, info, 4, argv) || !(r = get_ring(env, argv[0])) || window(env, argv + 1, &p, &len)) return type_error(env, "ringWrite(h, buf, off, len)");
  if (!r->map) return ret_num(env, -EBADF);
  int64_t n = tsr_write(&r->e, p, len);
  if (n > 0) r->out_total += (uint64_t)n;
  return ret_num(env, n);
}

/* ringRead(h, buf, off, len) -> bytes read, 0 at the end of the stream, -EAGAIN, -EFAULT, -EBADF. */
static napi_value ring_read(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  ring_t *r;
  uint8_t *p;
  size_t len;
  if (args(env, info, 4, argv) || !(r = get_ring(env, argv[0])) || window(env, argv + 1, &p, &len)) return type_error(env, "ringRead(h, buf, off, len)");
  if (!r->map) return ret_num(env, -EBADF);
  int64_t n = tsr_read(&r->e, p, len);
  if (n > 0) r->in_total += (uint64_t)n;
  return ret_num(env, n);
}

/*
 * ringPeek(h, out: Int32Array) -> bytes waiting (0 at the end of the
 * stream, -EAGAIN, -EFAULT, -EBADF); out[0], out[1]: the offset and length
 * of the contiguous run at the consume index, in ringView's buffer.
 */
static napi_value ring_peek(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t *data = ring_out_args(env, info, &r, 2);
  if (!data) return type_error(env, "ringPeek(h, out: Int32Array)");
  if (!r->map) return ret_num(env, -EBADF);
  uint32_t off, len;
  int64_t rc = tsr_peek(&r->e, &off, &len);
  data[0] = (int32_t)off;
  data[1] = (int32_t)len;
  return ret_num(env, rc);
}

/* ringAdvance(h, n) -> 0, -EINVAL past what ringPeek reported, -EFAULT, -EBADF. */
static napi_value ring_advance(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t n;
  if (ring_int_args(env, info, &r, &n) || n < 0)
    return type_error(env, "ringAdvance(h, n)");
  if (!r->map) return ret_num(env, -EBADF);
  int rc = tsr_advance(&r->e, (uint32_t)n);
  if (rc == 0) r->in_total += (uint32_t)n;
  return ret_num(env, rc);
}

/* ringReserve(h, out: Int32Array) -> room in the ring we produce into (out[0]: the offset of the produce index in its ringView); -EPIPE, -EFAULT, -EBADF. */
static napi_value ring_reserve(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t *data = ring_out_args(env, info, &r, 1);
  if (!data) return type_error(env, "ringReserve(h, out: Int32Array)");
  if (!r->map) return ret_num(env, -EBADF);
  uint32_t off;
  int64_t rc = tsr_reserve(&r->e, &off);
  data[0] = (int32_t)off;
  return ret_num(env, rc);
}

/* ringCommit(h, n) -> 0: n bytes copied after ringReserve are published (the consumer rung if it sleeps); -EINVAL past the room. */
static napi_value ring_commit(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t n;
  if (ring_int_args(env, info, &r, &n) || n < 0)
    return type_error(env, "ringCommit(h, n)");
  if (!r->map) return ret_num(env, -EBADF);
  int rc = tsr_commit(&r->e, (uint32_t)n);
  if (rc == 0) r->out_total += (uint32_t)n;
  return ret_num(env, rc);
}

/* ringWait(h, dir) -> 1 ready after all, 0 asleep (the other side will ring), -EFAULT, -EBADF. */
static napi_value ring_wait(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t dir;
  if (ring_int_args(env, info, &r, &dir))
    return type_error(env, "ringWait(h, dir)");
  if (!r->map) return ret_num(env, -EBADF);
  return ret_num(env, tsr_prepare_wait(&r->e, dir ? 1 : 0));
}

/* ringFin(h): FIN after what we produced. ringCloseIn(h): we consume no more. */
static napi_value ring_fin(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t *r;
  if (args(env, info, 1, argv) || !(r = get_ring(env, argv[0]))) return type_error(env, "ringFin(h)");
  if (r->map) tsr_fin(&r->e);
  return NULL;
}

static napi_value ring_close_in(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t *r;
  if (args(env, info, 1, argv) || !(r = get_ring(env, argv[0]))) return type_error(env, "ringCloseIn(h)");
  if (r->map) tsr_close_in(&r->e);
  return NULL;
}

/* ringQueued(h, which) -> bytes waiting for us (0) or not yet taken by the other side (1); -EFAULT, -EBADF. */
static napi_value ring_queued(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t which;
  if (ring_int_args(env, info, &r, &which))
    return type_error(env, "ringQueued(h, which)");
  if (!r->map) return ret_num(env, -EBADF);
  return ret_num(env, tsr_queued(&r->e, which ? 1 : 0));
}

/* ringPeer(h) -> bit 0: the other side's FIN; bit 1: it consumes no more (3 once closed). */
static napi_value ring_peer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t *r;
  if (args(env, info, 1, argv) || !(r = get_ring(env, argv[0]))) return type_error(env, "ringPeer(h)");
  return ret_num(env, tsr_peer_state(&r->e));
}

/*
 * ringLevel(h): RING_LEVEL (docs/api.md), before the memfd is passed: the
 * consumer of the ring we produce into starts asleep (NEED_WAKEUP, its
 * first sleep), so the first data rings its descriptor readable.
 */
static napi_value ring_level(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t *r;
  if (args(env, info, 1, argv) || !(r = get_ring(env, argv[0]))) return type_error(env, "ringLevel(h)");
  if (r->map) tsr_store(&r->e, r->e.out, TSR_CONS_FLAGS, TSR_NEED_WAKEUP);
  return NULL;
}

/* ringKick(h): RING_LEVEL's check after every pump run: a byte for a consumer that asks for one while data waits. */
static napi_value ring_kick(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t *r;
  if (args(env, info, 1, argv) || !(r = get_ring(env, argv[0]))) return type_error(env, "ringKick(h)");
  if (r->map) tsr_kick_level(&r->e);
  return NULL;
}

/* ringBells(h) -> doorbell bytes sent so far (ts_ring_off's answer). */
static napi_value ring_bells(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t *r;
  if (args(env, info, 1, argv) || !(r = get_ring(env, argv[0]))) return type_error(env, "ringBells(h)");
  return ret_num(env, r->e.bells);
}

/*
 * ringUnsent(h, out: Int32Array) -> bytes we produced that the other side
 * has not consumed (checked: -EFAULT for a bogus index), out[0] the offset
 * in ringView's buffer where they start (ts_ring_off moves them to the pair).
 */
static napi_value ring_unsent(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t *data = ring_out_args(env, info, &r, 1);
  if (!data) return type_error(env, "ringUnsent(h, out: Int32Array)");
  if (!r->map) return ret_num(env, -EBADF);
  int64_t n = tsr_queued(&r->e, 1);
  data[0] = n < 0 ? 0 : (int32_t)((r->e.prod - (uint32_t)n) & (r->e.size[r->e.out] - 1));
  return ret_num(env, n);
}

/*
 * ringView(h, which) -> a Buffer over ring `which`'s data (0 up, 1 down),
 * or over the whole mapping (2: tests that play a hostile application).
 * No copy, no finalizer of its own: ringClose detaches it before unmapping.
 */
static napi_value ring_view(napi_env env, napi_callback_info info) {
  napi_value out;
  ring_t *r;
  int32_t which;
  if (ring_int_args(env, info, &r, &which))
    return type_error(env, "ringView(h, which)");
  if (!r->map) return type_error(env, "ringView: the ring is closed");
  uint8_t *p = which == 2 ? r->map : tsr_data(&r->e, which ? TSR_DOWN : TSR_UP);
  size_t len = which == 2 ? r->maplen : r->e.size[which ? TSR_DOWN : TSR_UP];
  if (napi_create_external_buffer(env, len, p, NULL, NULL, &out) != napi_ok) return NULL;
  return out;
}

/* Clear `len` bytes of a ring's data from its start (a fresh ring's bytes start at 0): zeroed when few, else the pages
 * given back (MADV_REMOVE punches them out of the memfd, so every mapping of it reads zeros and holds no memory). */
static void ring_clear(uint8_t *data, uint32_t size, uint64_t len) {
  if (len > RING_CLEAR_MEMSET || len > size) {
    if (madvise(data, size, MADV_REMOVE) == 0) return;
    len = size; /* not shmem after all: zero it all */
  }
  memset(data, 0, (size_t)len);
}

/*
 * ringReset(h, full) -> 0 or -EBADF: the ring as new, for another socket of
 * the same client (RING_POOL, docs/api.md): no byte of the previous
 * connection stays readable in the mapping (what we produced into DOWN, what
 * the client put in UP as far as its index says, or everything with full),
 * the header page rewritten, every index and flag at 0 and our side
 * attached afresh (no sleep, bell or count carries over).
 */
static napi_value ring_reset(napi_env env, napi_callback_info info) {
  ring_t *r;
  int32_t full;
  if (ring_int_args(env, info, &r, &full)) return type_error(env, "ringReset(h, full)");
  if (!r->map) return ret_num(env, -EBADF);
  struct tsr_end *e = &r->e;
  uint32_t up = e->size[TSR_UP], down = e->size[TSR_DOWN];
  /* What the client produced past our consume index (its own word: clamped, a bogus one clears the whole ring). */
  uint32_t ahead = tsr_load(e, TSR_UP, TSR_PROD) - e->cons;
  uint64_t in_len = full ? (uint64_t)up + 1 : r->in_total + (ahead > up ? (uint64_t)up + 1 : ahead);
  uint64_t out_len = full ? (uint64_t)down + 1 : r->out_total;
  ring_clear(tsr_data(e, TSR_UP), up, in_len);
  ring_clear(tsr_data(e, TSR_DOWN), down, out_len);
  memset(r->map, 0, TSR_HDR);
  tsr_format(r->map, up, down);
  tsr_attach(e, r->map, r->maplen, TSR_ROLE_DAEMON);
  r->out_total = r->in_total = 0;
  return ret_num(env, 0);
}

/* ringClose(h, ...views): detach the views, unmap. Calls on the handle return -EBADF after. */
static napi_value ring_close(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return type_error(env, "ringClose(h, ...views)");
  ring_t *r = get_ring(env, argv[0]);
  if (!r) return type_error(env, "ringClose(h, ...views)");
  for (size_t i = 1; i < argc; i++) {
    napi_typedarray_type type;
    size_t n, boff;
    void *data;
    napi_value ab;
    bool detached = false;
    if (napi_get_typedarray_info(env, argv[i], &type, &n, &data, &ab, &boff) != napi_ok) continue;
    napi_is_detached_arraybuffer(env, ab, &detached);
    if (!detached) napi_detach_arraybuffer(env, ab);
  }
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
  }
  ring_unmap(r);
  return NULL;
}

#define RING_EXPORT(name, fn)                                                         \
  do {                                                                                \
    napi_value f;                                                                     \
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f) != napi_ok || \
        napi_set_named_property(env, exports, name, f) != napi_ok)                    \
      return -1;                                                                      \
  } while (0)

int ring_init(napi_env env, napi_value exports) {
  RING_EXPORT("ringCreate", ring_create);
  RING_EXPORT("ringAttach", ring_attach);
  RING_EXPORT("ringBell", ring_bell);
  RING_EXPORT("ringWrite", ring_write);
  RING_EXPORT("ringRead", ring_read);
  RING_EXPORT("ringPeek", ring_peek);
  RING_EXPORT("ringAdvance", ring_advance);
  RING_EXPORT("ringWait", ring_wait);
  RING_EXPORT("ringReserve", ring_reserve);
  RING_EXPORT("ringCommit", ring_commit);
  RING_EXPORT("ringFin", ring_fin);
  RING_EXPORT("ringCloseIn", ring_close_in);
  RING_EXPORT("ringQueued", ring_queued);
  RING_EXPORT("ringPeer", ring_peer);
  RING_EXPORT("ringView", ring_view);
  RING_EXPORT("ringClose", ring_close);
  RING_EXPORT("ringLevel", ring_level);
  RING_EXPORT("ringKick", ring_kick);
  RING_EXPORT("ringBells", ring_bells);
  RING_EXPORT("ringUnsent", ring_unsent);
  RING_EXPORT("ringReset", ring_reset);
  return 0;
}
