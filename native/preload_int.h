/*
 * preload_int.h - what the LD_PRELOAD library's files share (preload.c,
 * preload_dgram.c): the wire's constants and byte order, the socket kinds,
 * libc's own calls. Internal: nothing here is exported from the library.
 */
#ifndef TAPSTACK_PRELOAD_INT_H
#define TAPSTACK_PRELOAD_INT_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

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

extern ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
extern ssize_t (*real_recvmsg)(int, struct msghdr *, int);
extern ssize_t (*real_recv)(int, void *, size_t, int);

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

#endif
