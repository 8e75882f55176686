/*
 * preload_dgram.c - the LD_PRELOAD library's addresses on the wire (the
 * API's u16 length + sockaddr) and the data of its UDP sockets: one
 * SOCK_SEQPACKET message per datagram on the data descriptor, `u16 addrlen,
 * sockaddr, [control messages,] payload` (docs/api.md "Datagram sockets").
 */
#define _GNU_SOURCE
#include "preload_int.h"

#include <netinet/in.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>

/* ---- addresses ---------------------------------------------------------- */

/* struct sockaddr -> the API's u16 length + sockaddr at p (room for 30 bytes). Bytes written, or -errno. */
int addr_to_wire(const struct sockaddr *sa, socklen_t len, uint8_t *p) {
  if (!sa || len < (socklen_t)sizeof(sa_family_t)) return -EINVAL;
  if (sa->sa_family == AF_INET) {
    if (len < (socklen_t)sizeof(struct sockaddr_in)) return -EINVAL;
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    put16(p, WIRE_IN_LEN);
    put16(p + 2, AF_INET);
    put16(p + 4, ntohs(in->sin_port));
    memcpy(p + 6, &in->sin_addr, 4);
    return 2 + WIRE_IN_LEN;
  }
  if (sa->sa_family == AF_INET6) {
    if (len < 24) return -EINVAL; /* SIN6_LEN_RFC2133: without scope id, as inet6 accepts */
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    put16(p, WIRE_IN6_LEN);
    put16(p + 2, AF_INET6);
    put16(p + 4, ntohs(in6->sin6_port));
    put32(p + 6, ntohl(in6->sin6_flowinfo));
    memcpy(p + 10, &in6->sin6_addr, 16);
    put32(p + 26, len >= (socklen_t)sizeof *in6 ? in6->sin6_scope_id : 0);
    return 2 + WIRE_IN6_LEN;
  }
  if (sa->sa_family == AF_UNSPEC) {
    put16(p, 2);
    put16(p + 2, AF_UNSPEC);
    return 4;
  }
  return -EAFNOSUPPORT;
}

/* The API's sockaddr (without its length) -> the caller's buffer, truncated to *alen; *alen = the full size. */
void wire_to_addr(const uint8_t *w, size_t wlen, struct sockaddr *sa, socklen_t *alen) {
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } u;
  memset(&u, 0, sizeof u);
  socklen_t n = 0;
  if (wlen >= WIRE_IN_LEN && get16(w) == AF_INET) {
    u.in.sin_family = AF_INET;
    u.in.sin_port = htons(get16(w + 2));
    memcpy(&u.in.sin_addr, w + 4, 4);
    n = sizeof u.in;
  } else if (wlen >= WIRE_IN6_LEN && get16(w) == AF_INET6) {
    u.in6.sin6_family = AF_INET6;
    u.in6.sin6_port = htons(get16(w + 2));
    u.in6.sin6_flowinfo = htonl(get32(w + 4));
    memcpy(&u.in6.sin6_addr, w + 8, 16);
    u.in6.sin6_scope_id = get32(w + 24);
    n = sizeof u.in6;
  }
  if (!sa || !alen) return;
  socklen_t c = *alen < n ? *alen : n;
  memcpy(sa, &u, c);
  *alen = n;
}

/* ---- data on UDP sockets ------------------------------------------------- */

#define IOV_INLINE 16

ssize_t udp_send(int fd, int k, const struct iovec *iov, int iovcnt, const struct sockaddr *to, socklen_t tolen,
                        int flags) {
  uint8_t hdr[2 + 30];
  size_t hl = 2;
  put16(hdr, 0);
  if (to && tolen) {
    int n = addr_to_wire(to, tolen, hdr);
    if (n < 0) return fail(-n);
    /* udp_sendmsg: an AF_INET socket takes AF_INET (or AF_UNSPEC) destinations only. */
    if (k == K_UDP4 && to->sa_family != AF_INET && to->sa_family != AF_UNSPEC) return fail(EAFNOSUPPORT);
    if (to->sa_family == AF_UNSPEC) put16(hdr, 0); /* AF_UNSPEC: to the connected peer */
    else hl = (size_t)n;
  }
  if (iovcnt < 0 || iovcnt > IOV_MAX) return fail(EINVAL);
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  if (total > (k == K_UDP6 ? UDP_MAX6 : UDP_MAX4)) return fail(EMSGSIZE);
  struct iovec inl[IOV_INLINE + 1], *v = inl;
  if (iovcnt + 1 > IOV_INLINE + 1 && !(v = malloc(sizeof *v * (size_t)(iovcnt + 1)))) return fail(ENOBUFS);
  v[0].iov_base = hdr;
  v[0].iov_len = hl;
  if (iovcnt) memcpy(v + 1, iov, sizeof *v * (size_t)iovcnt);
  struct msghdr mh = {0};
  mh.msg_iov = v;
  mh.msg_iovlen = (size_t)iovcnt + 1;
  ssize_t w = real_sendmsg(fd, &mh, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
  int e = errno;
  if (v != inl) free(v);
  if (w < 0) {
    /* The daemon's end gone (the socket closed under us): EPIPE as a write to a dead socket, SIGPIPE unless asked not. */
    if (e == EPIPE && !(flags & MSG_NOSIGNAL)) raise(SIGPIPE);
    return fail(e);
  }
  return w >= (ssize_t)hl ? w - (ssize_t)hl : 0;
}

/* Copy the whole control messages of `src` that fit into `dst` (room *dlen); *dlen = bytes used. 1 when one did not fit. */
static int put_cmsgs(const uint8_t *src, size_t slen, void *dst, size_t *dlen) {
  size_t room = dst && dlen ? *dlen : 0, used = 0;
  int cut = 0;
  for (size_t p = 0; p + 16 <= slen;) {
    uint64_t cl;
    memcpy(&cl, src + p, 8);
    if (cl < 16 || cl > slen - p) break;
    size_t span = ((size_t)cl + 7) & ~(size_t)7;
    if (span > slen - p) span = slen - p;
    if (cl > room - used) {
      cut = 1;
      break;
    }
    size_t take = span <= room - used ? span : (size_t)cl;
    memcpy((uint8_t *)dst + used, src + p, take);
    used += take;
    p += span;
  }
  if (dlen) *dlen = used;
  return cut;
}

ssize_t udp_recv(int fd, int k, int cmsg, const struct iovec *iov, int iovcnt, struct sockaddr *from, socklen_t *fromlen,
                        int flags, int *msg_flags, void *ctl, size_t *ctllen) {
  size_t alen = k == K_UDP6 ? WIRE_IN6_LEN : WIRE_IN_LEN;
  uint8_t hdr[2 + WIRE_IN6_LEN + 2 + DGRAM_MAX_CONTROL];
  size_t extra = 0;
  if (iovcnt < 0 || iovcnt > IOV_MAX) return fail(EINVAL);
  if (cmsg) {
    /* The socket asked for control messages: they sit between the address and the payload, so look first. */
    uint8_t ph[2 + WIRE_IN6_LEN + 2];
    ssize_t p = real_recv(fd, ph, sizeof ph, MSG_PEEK | (flags & MSG_DONTWAIT));
    if (p < 0) return fail(errno);
    if (p == 0) return 0;
    if (p >= 2 && get16(ph) != DGRAM_ERR_MARK && get16(ph) & DGRAM_F_CMSG) {
      if ((size_t)p < 2 + alen + 2) return fail(EPROTO);
      extra = 2 + (size_t)get16(ph + 2 + alen);
      if (extra > 2 + DGRAM_MAX_CONTROL) return fail(EPROTO);
    }
  }
  struct iovec inl[IOV_INLINE + 1], *v = inl;
  if (iovcnt + 1 > IOV_INLINE + 1 && !(v = malloc(sizeof *v * (size_t)(iovcnt + 1)))) return fail(ENOBUFS);
  v[0].iov_base = hdr;
  v[0].iov_len = 2 + alen + extra;
  if (iovcnt) memcpy(v + 1, iov, sizeof *v * (size_t)iovcnt);
  struct msghdr mh = {0};
  mh.msg_iov = v;
  mh.msg_iovlen = (size_t)iovcnt + 1;
  ssize_t n = real_recvmsg(fd, &mh, flags & (MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC));
  int e = errno;
  if (v != inl) free(v);
  if (n < 0) return fail(e);
  if (n == 0) return 0; /* the daemon's end is gone: the socket was closed in the daemon */
  if (n >= 6 && get16(hdr) == DGRAM_ERR_MARK) {
    /* The socket's pending error (ECONNREFUSED, ...), or a send the stack refused: reported once. */
    if (flags & MSG_PEEK) {
      uint8_t drop[6];
      real_recv(fd, drop, sizeof drop, MSG_DONTWAIT);
    }
    return fail((int)get32(hdr + 2));
  }
  /* The daemon gives every datagram its source in the socket's family (docs/api.md). */
  if (n < (ssize_t)(2 + alen + extra) || (get16(hdr) & ~DGRAM_F_CMSG) != alen || !(get16(hdr) & DGRAM_F_CMSG) != !extra)
    return fail(EPROTO);
  if (from && fromlen) wire_to_addr(hdr + 2, alen, from, fromlen);
  else if (fromlen) *fromlen = 0;
  int cut = 0;
  if (extra) cut = put_cmsgs(hdr + 2 + alen + 2, extra - 2, ctl, ctllen);
  else if (ctllen) *ctllen = 0;
  if (msg_flags) *msg_flags = (mh.msg_flags & MSG_TRUNC) | (cut ? MSG_CTRUNC : 0);
  return n - (ssize_t)(2 + alen + extra);
}
