/*
 * tap.c - the TAP device addon of tapstack.
 *
 * Opens /dev/net/tun, configures the interface with ioctls (never by
 * shelling out to ip), and moves frames in batches:
 *   - reads are driven by libuv readiness (uv_poll); each wake-up drains up
 *     to `slotCount` frames into a ring the JS side owns and hands JS the
 *     count in one call, so there is no allocation per frame or per wake-up;
 *   - writes take one frame, or a batch described by offsets/lengths into
 *     one buffer (TAP has no multi-frame writev: one write(2) is one frame,
 *     but the batch crosses the JS/C boundary once).
 * Errors reach JS as Error objects whose `code` is the errno name.
 */
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap_steer.h"

#define CHECK_NAPI(env, call)                                         \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error((env), "EINTERNAL", "N-API call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* errno's name as Node spells it; libuv has no name for EBADFD, which tun
 * answers once its interface is deleted (the caller must recognise it). */
static const char *errno_name(int err) {
  if (err == EBADFD) return "EBADFD";
  return uv_err_name(-err);
}

/* Throw an Error carrying errno's name as `code`, like Node's own. */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  char msg[256];
  const char *name = errno_name(err);
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, what ? what : "", strerror(err));
  napi_value code, message, error, errno_v, syscall_v;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &errno_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_set_named_property(env, error, "syscall", syscall_v);
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
  if (argc < want) return -1;
  return 0;
}

/* An interface name: 1 to IFNAMSIZ-1 (15) bytes, as the kernel allows. */
static int get_ifname(napi_env env, napi_value v, char out[IFNAMSIZ]) {
  size_t len = 0;
  memset(out, 0, IFNAMSIZ);
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len == 0 || len > IFNAMSIZ - 1) return -1;
  if (napi_get_value_string_utf8(env, v, out, IFNAMSIZ, &len) != napi_ok) return -1;
  return 0;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static int get_bool(napi_env env, napi_value v, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) return -1;
  return napi_get_value_bool(env, v, out) == napi_ok ? 0 : -1;
}

/* Any Buffer/Uint8Array/ArrayBuffer-view: its bytes. */
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    void *p;
    if (napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &offset) != napi_ok) return -1;
    if (type != napi_uint8_array) return -1;
    *data = p;
    *len = length;
    return 0;
  }
  if (napi_is_buffer(env, v, &is) == napi_ok && is) {
    void *p;
    if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return -1;
    *data = p;
    return 0;
  }
  return -1;
}

static int get_i32_array(napi_env env, napi_value v, int32_t **data, size_t *count) {
  bool is;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void *p;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  if (napi_get_typedarray_info(env, v, &type, count, &p, &ab, &offset) != napi_ok) return -1;
  if (type != napi_int32_array) return -1;
  *data = p;
  return 0;
}

/* A throwaway AF_INET datagram socket: the handle interface ioctls need. */
static int ctl_socket(void) { return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

static int if_ioctl(unsigned long req, struct ifreq *ifr) {
  int s = ctl_socket();
  if (s < 0) return -errno;
  int rc = ioctl(s, req, ifr);
  int err = errno;
  close(s);
  return rc < 0 ? -err : 0;
}

/*
 * openTap(name, vnetHdr, multiQueue?) -> { fd, name, vnetHdrSize }
 * With multiQueue (IFF_MULTI_QUEUE), each call on the same name attaches one
 * more queue to the interface: tun steers each flow to one of them.
 */
static napi_value open_tap(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  char name[IFNAMSIZ];
  bool vnet = false, multi = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || get_ifname(env, argv[0], name) ||
      get_bool(env, argv[1], &vnet) || (argc > 2 && get_bool(env, argv[2], &multi)))
    return throw_type(env, "openTap(name: string (1-15 bytes), vnetHdr: boolean, multiQueue?: boolean)");

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", "/dev/net/tun");

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) | (multi ? IFF_MULTI_QUEUE : 0);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "ioctl(TUNSETIFF)", name);
  }
  int hdrsz = 0;
  if (vnet) {
    /* virtio_net_hdr_v1 (12 bytes, with num_buffers) as virtio 1.0 uses. */
    hdrsz = 12;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, err, "ioctl(TUNSETVNETHDRSZ)", name);
    }
  }
  napi_value result, v;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_create_int32(env, fd, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "fd", v));
  CHECK_NAPI(env, napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "name", v));
  CHECK_NAPI(env, napi_create_int32(env, hdrsz, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "vnetHdrSize", v));
  return result;
}

/* setSteering(fd, on): our steering program on the multi-queue TAP (tap_steer.c), or tun's hash again. */
static napi_value set_steering(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  bool on;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || get_bool(env, argv[1], &on))
    return throw_type(env, "setSteering(fd: number, on: boolean)");
  int rc = on ? tap_steer_attach(fd) : tap_steer_detach(fd);
  if (rc < 0) return throw_errno(env, -rc, on ? "bpf(BPF_PROG_LOAD)/ioctl(TUNSETSTEERINGEBPF)" : "ioctl(TUNSETSTEERINGEBPF)", NULL);
  return NULL;
}

/* setOffload(fd, flags): TUNSETOFFLOAD with TUN_F_* bits. */
static napi_value set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, flags;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || get_i32(env, argv[1], &flags))
    return throw_type(env, "setOffload(fd: number, flags: number)");
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) return throw_errno(env, errno, "ioctl(TUNSETOFFLOAD)", NULL);
  return NULL;
}

/* linkSetUp(name, up) */
static napi_value link_set_up(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  bool up;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 2, argv) || get_ifname(env, argv[0], ifr.ifr_name) || get_bool(env, argv[1], &up))
    return throw_type(env, "linkSetUp(name: string, up: boolean)");
  int rc = if_ioctl(SIOCGIFFLAGS, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCGIFFLAGS)", ifr.ifr_name);
  if (up) ifr.ifr_flags |= IFF_UP;
  else ifr.ifr_flags &= ~IFF_UP;
  rc = if_ioctl(SIOCSIFFLAGS, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCSIFFLAGS)", ifr.ifr_name);
  return NULL;
}

/* linkSetMtu(name, mtu) */
static napi_value link_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  int32_t mtu;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 2, argv) || get_ifname(env, argv[0], ifr.ifr_name) || get_i32(env, argv[1], &mtu))
    return throw_type(env, "linkSetMtu(name: string, mtu: number)");
  ifr.ifr_mtu = mtu;
  int rc = if_ioctl(SIOCSIFMTU, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCSIFMTU)", ifr.ifr_name);
  return NULL;
}

/* linkSetMac(name, mac: Uint8Array(6)) */
static napi_value link_set_mac(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  uint8_t *mac;
  size_t len;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 2, argv) || get_ifname(env, argv[0], ifr.ifr_name) || get_bytes(env, argv[1], &mac, &len) || len != 6)
    return throw_type(env, "linkSetMac(name: string, mac: Uint8Array of 6 bytes)");
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
  int rc = if_ioctl(SIOCSIFHWADDR, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCSIFHWADDR)", ifr.ifr_name);
  return NULL;
}

/* linkGetMac(name) -> Buffer(6) */
static napi_value link_get_mac(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  struct ifreq ifr;
  void *data;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 1, argv) || get_ifname(env, argv[0], ifr.ifr_name))
    return throw_type(env, "linkGetMac(name: string)");
  int rc = if_ioctl(SIOCGIFHWADDR, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCGIFHWADDR)", ifr.ifr_name);
  CHECK_NAPI(env, napi_create_buffer_copy(env, 6, ifr.ifr_hwaddr.sa_data, &data, &out));
  return out;
}

/* linkGetIndex(name) -> ifindex */
static napi_value link_get_index(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 1, argv) || get_ifname(env, argv[0], ifr.ifr_name))
    return throw_type(env, "linkGetIndex(name: string)");
  int rc = if_ioctl(SIOCGIFINDEX, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCGIFINDEX)", ifr.ifr_name);
  CHECK_NAPI(env, napi_create_int32(env, ifr.ifr_ifindex, &out));
  return out;
}

/* addrSetIpv4(name, addr: host-order uint32, prefix) configures the kernel
 * side of the interface; the kernel derives the broadcast address and the
 * connected route itself. */
static napi_value addr_set_ipv4(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct ifreq ifr;
  uint32_t addr;
  int32_t prefix;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 3, argv) || get_ifname(env, argv[0], ifr.ifr_name) ||
      napi_get_value_uint32(env, argv[1], &addr) != napi_ok || get_i32(env, argv[2], &prefix) || prefix < 0 || prefix > 32)
    return throw_type(env, "addrSetIpv4(name: string, addr: uint32, prefix: 0..32)");
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(addr);
  int rc = if_ioctl(SIOCSIFADDR, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCSIFADDR)", ifr.ifr_name);
  sin = (struct sockaddr_in *)&ifr.ifr_netmask;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(prefix == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - prefix)));
  rc = if_ioctl(SIOCSIFNETMASK, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCSIFNETMASK)", ifr.ifr_name);
  return NULL;
}

/* struct in6_ifreq (linux/ipv6.h, which cannot be included beside
 * netinet/in.h): what SIOCSIFADDR on an AF_INET6 socket takes. */
struct tapstack_in6_ifreq {
  struct in6_addr ifr6_addr;
  uint32_t ifr6_prefixlen;
  int ifr6_ifindex;
};

/* addrSetIpv6(name, addr: 16 bytes, prefix) adds an IPv6 address to the
 * kernel side of the interface (the ifindex from SIOCGIFINDEX); the kernel
 * adds the prefix route and runs its own DAD. EEXIST when it is there. */
static napi_value addr_set_ipv6(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct ifreq ifr;
  uint8_t *addr;
  size_t len;
  int32_t prefix;
  memset(&ifr, 0, sizeof ifr);
  if (get_args(env, info, 3, argv) || get_ifname(env, argv[0], ifr.ifr_name) || get_bytes(env, argv[1], &addr, &len) || len != 16 ||
      get_i32(env, argv[2], &prefix) || prefix < 0 || prefix > 128)
    return throw_type(env, "addrSetIpv6(name: string, addr: 16 bytes, prefix: 0..128)");
  int rc = if_ioctl(SIOCGIFINDEX, &ifr);
  if (rc < 0) return throw_errno(env, -rc, "ioctl(SIOCGIFINDEX)", ifr.ifr_name);
  struct tapstack_in6_ifreq ifr6;
  memset(&ifr6, 0, sizeof ifr6);
  memcpy(&ifr6.ifr6_addr, addr, 16);
  ifr6.ifr6_prefixlen = (uint32_t)prefix;
  ifr6.ifr6_ifindex = ifr.ifr_ifindex;
  int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return throw_errno(env, errno, "socket(AF_INET6)", ifr.ifr_name);
  rc = ioctl(s, SIOCSIFADDR, &ifr6);
  int err = errno;
  close(s);
  if (rc < 0) return throw_errno(env, err, "ioctl(SIOCSIFADDR, AF_INET6)", ifr.ifr_name);
  return NULL;
}

/* closeFd(fd) */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return throw_type(env, "closeFd(fd: number)");
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close", NULL);
  return NULL;
}

/* write(fd, buf, offset, length) -> bytes written, or -EAGAIN when the
 * device queue is full (the caller counts it as a tx drop). */
static napi_value write_frame(napi_env env, napi_callback_info info) {
  napi_value argv[4], out;
  int32_t fd, off, len;
  uint8_t *data;
  size_t size;
  if (get_args(env, info, 4, argv) || get_i32(env, argv[0], &fd) || get_bytes(env, argv[1], &data, &size) ||
      get_i32(env, argv[2], &off) || get_i32(env, argv[3], &len) || off < 0 || len < 0 || (size_t)off + (size_t)len > size)
    return throw_type(env, "write(fd: number, buf: Uint8Array, offset: number, length: number) within the buffer");
  ssize_t n = write(fd, data + off, (size_t)len);
  if (n < 0) {
    if (errno == EAGAIN || errno == ENOBUFS) n = -errno;
    else return throw_errno(env, errno, "write", NULL);
  }
  CHECK_NAPI(env, napi_create_int32(env, (int32_t)n, &out));
  return out;
}

/* writeBatch(fd, buf, offsets: Int32Array, lengths: Int32Array, count) ->
 * frames consumed. Stops at EAGAIN (not consumed); a frame the kernel
 * rejects (EINVAL, EIO...) is consumed and its length is overwritten with
 * -errno so the caller can count it. */
static napi_value write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[5], out;
  int32_t fd, count, *offs, *lens;
  uint8_t *data;
  size_t size, noffs, nlens;
  if (get_args(env, info, 5, argv) || get_i32(env, argv[0], &fd) || get_bytes(env, argv[1], &data, &size) ||
      get_i32_array(env, argv[2], &offs, &noffs) || get_i32_array(env, argv[3], &lens, &nlens) ||
      get_i32(env, argv[4], &count) || count < 0 || (size_t)count > noffs || (size_t)count > nlens)
    return throw_type(env, "writeBatch(fd, buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, count)");
  int32_t i;
  for (i = 0; i < count; i++) {
    if (offs[i] < 0 || lens[i] < 0 || (size_t)offs[i] + (size_t)lens[i] > size) {
      lens[i] = -EFAULT;
      continue;
    }
    ssize_t n = write(fd, data + offs[i], (size_t)lens[i]);
    if (n < 0) {
      if (errno == EINTR) { i--; continue; }
      if (errno == EAGAIN) break;
      if (errno == EBADF || errno == EBADFD) return throw_errno(env, errno, "write", NULL);
      lens[i] = -errno;
    }
  }
  CHECK_NAPI(env, napi_create_int32(env, i, &out));
  return out;
}

/* ---- the reader ---------------------------------------------------------- */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref ring_ref, lens_ref, cb_ref;
  napi_async_context async;
  /* Where each slot's next frame is read: the ring's own slots at first; setSlot() gives a slot
   * whose buffer a socket kept a fresh one (slot_refs[i] holds it; NULL for the ring's own). */
  uint8_t **slots;
  napi_ref *slot_refs;
  int32_t *lens;
  int32_t slot_size, slot_count;
  int fd;
  int closing;
  /* Closes the poll handle if the thread's environment ends with the reader running (a worker thread's end). */
  napi_async_cleanup_hook_handle cleanup;
} reader_t;

static void reader_free(uv_handle_t *h) {
  reader_t *r = (reader_t *)h->data;
  free(r->slots);
  free(r->slot_refs);
  free(r);
}

static void reader_release(reader_t *r) {
  if (r->closing) return;
  r->closing = 1;
  if (r->cleanup) napi_remove_async_cleanup_hook(r->cleanup);
  r->cleanup = NULL;
  uv_poll_stop(&r->poll);
  napi_delete_reference(r->env, r->ring_ref);
  for (int32_t i = 0; i < r->slot_count; i++)
    if (r->slot_refs[i]) napi_delete_reference(r->env, r->slot_refs[i]);
  napi_delete_reference(r->env, r->lens_ref);
  napi_delete_reference(r->env, r->cb_ref);
  napi_async_destroy(r->env, r->async);
  uv_close((uv_handle_t *)&r->poll, reader_free);
}

static void reader_closed_at_teardown(uv_handle_t *h) {
  reader_t *r = (reader_t *)h->data;
  napi_async_cleanup_hook_handle done = r->cleanup;
  reader_free(h);
  napi_remove_async_cleanup_hook(done);
}

/*
 * The environment is going away with the reader running (a worker thread
 * ending, or the process exiting under it): its poll handle must be closed
 * before the thread's loop is, and Node waits for the close (an async
 * cleanup hook) instead of finding the handle open. The references go with
 * the environment.
 */
static void reader_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  reader_t *r = (reader_t *)arg;
  r->cleanup = handle;
  r->closing = 1;
  uv_poll_stop(&r->poll);
  uv_close((uv_handle_t *)&r->poll, reader_closed_at_teardown);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  reader_t *r = (reader_t *)h->data;
  if (r->closing) return;
  int32_t n = 0;
  int err = status < 0 ? -status : 0;
  while (!err && n < r->slot_count) {
    ssize_t got = read(r->fd, r->slots[n], (size_t)r->slot_size);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) err = errno;
      break;
    }
    r->lens[n++] = (int32_t)got;
  }
  if (n == 0 && !err) return;

  napi_env env = r->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, r->cb_ref, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object receiver */
  napi_create_int32(env, n, &argv[0]);
  if (err) napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &argv[1]);
  else napi_get_null(env, &argv[1]);
  /* make_callback: process.nextTick and microtasks run after each batch. */
  napi_status st = napi_make_callback(env, r->async, recv, cb, 2, argv, &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

/* startReader(fd, ring: Uint8Array, slotSize, lengths: Int32Array, cb(count, errCode|null)) -> handle */
static napi_value start_reader(napi_env env, napi_callback_info info) {
  napi_value argv[5], handle, name;
  int32_t fd, slot_size, *lens;
  uint8_t *ring;
  size_t ring_len, nlens;
  napi_valuetype t;
  if (get_args(env, info, 5, argv) || get_i32(env, argv[0], &fd) || get_bytes(env, argv[1], &ring, &ring_len) ||
      get_i32(env, argv[2], &slot_size) || get_i32_array(env, argv[3], &lens, &nlens) ||
      napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function || slot_size <= 0 || nlens == 0 ||
      (size_t)slot_size * nlens > ring_len)
    return throw_type(env, "startReader(fd, ring: Uint8Array, slotSize, lengths: Int32Array, cb) with ring >= slotSize*lengths.length");

  reader_t *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, ENOMEM, "calloc", NULL);
  r->env = env;
  r->fd = fd;
  r->lens = lens;
  r->slot_size = slot_size;
  r->slot_count = (int32_t)nlens;
  r->slots = calloc(nlens, sizeof *r->slots);
  r->slot_refs = calloc(nlens, sizeof *r->slot_refs);
  if (!r->slots || !r->slot_refs) {
    free(r->slots);
    free(r->slot_refs);
    free(r);
    return throw_errno(env, ENOMEM, "calloc", NULL);
  }
  for (size_t i = 0; i < nlens; i++) r->slots[i] = ring + i * (size_t)slot_size;
  uv_loop_t *loop;
  CHECK_NAPI(env, napi_get_uv_event_loop(env, &loop));
  int rc = uv_poll_init(loop, &r->poll, fd);
  if (rc < 0) {
    free(r->slots);
    free(r->slot_refs);
    free(r);
    return throw_errno(env, -rc, "uv_poll_init", NULL);
  }
  r->poll.data = r;
  napi_create_reference(env, argv[1], 1, &r->ring_ref);
  napi_create_reference(env, argv[3], 1, &r->lens_ref);
  napi_create_reference(env, argv[4], 1, &r->cb_ref);
  napi_create_string_utf8(env, "tapstack:tap-reader", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->async);
  rc = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (rc < 0) {
    reader_release(r);
    return throw_errno(env, -rc, "uv_poll_start", NULL);
  }
  if (napi_add_async_cleanup_hook(env, reader_teardown, r, &r->cleanup) != napi_ok) {
    reader_release(r);
    return throw_errno(env, ENOMEM, "napi_add_async_cleanup_hook", NULL);
  }
  CHECK_NAPI(env, napi_create_external(env, r, NULL, NULL, &handle));
  return handle;
}

static reader_t *get_reader(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *p = NULL;
  napi_valuetype t;
  if (get_args(env, info, 1, argv) || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || !p) {
    throw_type(env, "expected a reader handle from startReader()");
    return NULL;
  }
  return (reader_t *)p;
}

/* pauseReader(handle) / resumeReader(handle): back-pressure without closing. */
static napi_value pause_reader(napi_env env, napi_callback_info info) {
  reader_t *r = get_reader(env, info);
  if (r && !r->closing) uv_poll_stop(&r->poll);
  return NULL;
}

static napi_value resume_reader(napi_env env, napi_callback_info info) {
  reader_t *r = get_reader(env, info);
  if (r && !r->closing) uv_poll_start(&r->poll, UV_READABLE, on_readable);
  return NULL;
}

/*
 * setSlot(handle, i, buf): slot i's next frames are read into buf (at least
 * slotSize bytes), held until the slot is given another. For a slot whose
 * buffer the stack kept (received payload referenced by a socket's queue,
 * not copied): the reader must not write over it.
 */
static napi_value set_slot(napi_env env, napi_callback_info info) {
  napi_value argv[3], handle;
  int32_t i;
  uint8_t *data;
  size_t len;
  napi_valuetype t;
  void *p = NULL;
  if (get_args(env, info, 3, argv) || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || !p || get_i32(env, argv[1], &i) ||
      get_bytes(env, argv[2], &data, &len))
    return throw_type(env, "setSlot(handle, index, buf: Uint8Array)");
  reader_t *r = (reader_t *)p;
  if (r->closing) return NULL;
  if (i < 0 || i >= r->slot_count || len < (size_t)r->slot_size)
    return throw_type(env, "setSlot: index out of range, or buf shorter than the slot size");
  napi_ref ref;
  CHECK_NAPI(env, napi_create_reference(env, argv[2], 1, &ref));
  if (r->slot_refs[i]) napi_delete_reference(env, r->slot_refs[i]);
  r->slot_refs[i] = ref;
  r->slots[i] = data;
  (void)handle;
  return NULL;
}

/* stopReader(handle): stops polling and releases the ring; the handle must
 * not be used again. The fd stays open (closeFd closes it). */
static napi_value stop_reader(napi_env env, napi_callback_info info) {
  reader_t *r = get_reader(env, info);
  if (r) reader_release(r);
  return NULL;
}

#define EXPORT(name, fn)                                                        \
  do {                                                                          \
    napi_value f;                                                               \
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f) != napi_ok || \
        napi_set_named_property(env, exports, name, f) != napi_ok)              \
      return NULL;                                                              \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("openTap", open_tap);
  EXPORT("setOffload", set_offload);
  EXPORT("setSteering", set_steering);
  EXPORT("linkSetUp", link_set_up);
  EXPORT("linkSetMtu", link_set_mtu);
  EXPORT("linkSetMac", link_set_mac);
  EXPORT("linkGetMac", link_get_mac);
  EXPORT("linkGetIndex", link_get_index);
  EXPORT("addrSetIpv4", addr_set_ipv4);
  EXPORT("addrSetIpv6", addr_set_ipv6);
  EXPORT("closeFd", close_fd);
  EXPORT("write", write_frame);
  EXPORT("writeBatch", write_batch);
  EXPORT("startReader", start_reader);
  EXPORT("pauseReader", pause_reader);
  EXPORT("resumeReader", resume_reader);
  EXPORT("stopReader", stop_reader);
  EXPORT("setSlot", set_slot);
  napi_value v;
  napi_create_uint32(env, TUN_F_CSUM, &v);
  napi_set_named_property(env, exports, "TUN_F_CSUM", v);
  napi_create_uint32(env, TUN_F_TSO4, &v);
  napi_set_named_property(env, exports, "TUN_F_TSO4", v);
  napi_create_uint32(env, TUN_F_TSO6, &v);
  napi_set_named_property(env, exports, "TUN_F_TSO6", v);
  napi_create_uint32(env, TUN_F_TSO_ECN, &v);
  napi_set_named_property(env, exports, "TUN_F_TSO_ECN", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
