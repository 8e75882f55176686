/*
 * tap_steer.c - the multi-queue TAP's steering program (docs/shards.md).
 *
 * Without a program, tun picks the queue of a frame from the kernel by its
 * flow hash, and remembers the queue a flow was last *written* from for 3 s
 * (tun_flow_update): a connection the stack opens stays on the opening
 * shard only while it is busy. With TUNSETSTEERINGEBPF, a socket-filter
 * program's return value (modulo the number of queues) is the queue, and
 * tun stops hashing on every write. Ours hashes the ports only, with a
 * function the stack computes too (src/drivers/tap_steer.ts), so a shard
 * can pick a source port whose flow comes back to it, always.
 *
 *   TCP/UDP over IPv4 and IPv6 (no extension headers): the ports;
 *   ICMP/ICMPv6 errors quoting TCP/UDP: the quoted ports, swapped (the
 *     quoted packet is ours), so an error reaches the flow's shard;
 *   everything else (ARP, NDP, echo, fragments, extension headers): queue 0.
 *
 * x = local_port << 16 | remote_port; h = x * 0x9E3779B1; h ^= h >> 16;
 * h *= 0x85EBCA6B; queue = (h >> 16) modulo the number of queues (all in
 * 32 bits). Two multiplies with a fold between: the low bits of one product
 * depend only on the low bits of its factor, and tun takes the result
 * modulo the queue count, so a single multiply would tie the queue to a
 * port's parity (the kernel's ephemeral ports come in steps of two, and a
 * shard picking a local port would skip half the range first).
 */
#include "tap_steer.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STEER_MAX 96

struct emitter {
  struct bpf_insn insn[STEER_MAX];
  int n;
  /* Jumps waiting for their label: instruction index and label number. */
  int fix_at[STEER_MAX], fix_label[STEER_MAX], nfix;
  int label_at[16];
};

static void put(struct emitter *e, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  if (e->n >= STEER_MAX) { /* build() reports it */
    e->n = STEER_MAX + 1;
    return;
  }
  struct bpf_insn *i = &e->insn[e->n++];
  memset(i, 0, sizeof *i);
  i->code = code;
  i->dst_reg = dst;
  i->src_reg = src;
  i->off = off;
  i->imm = imm;
}

/* Labels of the program below. */
enum { L_ZERO, L_V4, L_V6, L_PORTS4, L_ICMP4, L_INNER4, L_I4PORTS, L_PORTS6, L_ICMP6, L_I6, L_I6PORTS, L_MIX };

static void label(struct emitter *e, int l) { e->label_at[l] = e->n; }

/* if r0 == imm goto l (or, with BPF_JSET, if r0 & imm). */
static void jump(struct emitter *e, uint8_t op, int32_t imm, int l) {
  if (e->nfix < STEER_MAX) {
    e->fix_at[e->nfix] = e->n;
    e->fix_label[e->nfix] = l;
  }
  e->nfix++;
  put(e, BPF_JMP | op | BPF_K, BPF_REG_0, 0, 0, imm);
}

static void go(struct emitter *e, int l) {
  if (e->nfix < STEER_MAX) {
    e->fix_at[e->nfix] = e->n;
    e->fix_label[e->nfix] = l;
  }
  e->nfix++;
  put(e, BPF_JMP | BPF_JA, 0, 0, 0, 0);
}

/* r0 = the byte or big-endian half-word at `off` (+ reg, with BPF_IND) of the frame; beyond its end the program returns 0. */
static void load(struct emitter *e, uint8_t size, int reg, int32_t off) {
  if (reg < 0)
    put(e, BPF_LD | BPF_ABS | size, 0, 0, 0, off);
  else
    put(e, BPF_LD | BPF_IND | size, 0, (uint8_t)reg, 0, off);
}

static void alu(struct emitter *e, uint8_t cls, uint8_t op, uint8_t dst, int32_t imm) { put(e, cls | op | BPF_K, dst, 0, 0, imm); }
static void mov_reg(struct emitter *e, uint8_t dst, uint8_t src) { put(e, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }

/* Offsets from the Ethernet header (tun's program sees the frame from its MAC header). */
enum { ETH = 14, IP6_NEXT = ETH + 6, IP6_L4 = ETH + 40, ICMP_HDR = 8 };

static int build(struct emitter *e) {
  memset(e, 0, sizeof *e);
  mov_reg(e, BPF_REG_6, BPF_REG_1); /* LD_ABS/LD_IND take the frame from r6 */
  load(e, BPF_H, -1, 12);
  jump(e, BPF_JEQ, 0x0800, L_V4);
  jump(e, BPF_JEQ, 0x86dd, L_V6);
  label(e, L_ZERO);
  alu(e, BPF_ALU64, BPF_MOV, BPF_REG_0, 0);
  put(e, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

  /* IPv4: r7 = the header's length; a fragment (MF or an offset) has no ports in every piece. */
  label(e, L_V4);
  load(e, BPF_B, -1, ETH);
  alu(e, BPF_ALU64, BPF_AND, BPF_REG_0, 0x0f);
  alu(e, BPF_ALU64, BPF_LSH, BPF_REG_0, 2);
  mov_reg(e, BPF_REG_7, BPF_REG_0);
  load(e, BPF_H, -1, ETH + 6);
  jump(e, BPF_JSET, 0x3fff, L_ZERO);
  load(e, BPF_B, -1, ETH + 9);
  jump(e, BPF_JEQ, 6, L_PORTS4);
  jump(e, BPF_JEQ, 17, L_PORTS4);
  jump(e, BPF_JEQ, 1, L_ICMP4);
  go(e, L_ZERO);
  label(e, L_PORTS4);
  load(e, BPF_H, BPF_REG_7, ETH + 2); /* ours */
  mov_reg(e, BPF_REG_8, BPF_REG_0);
  load(e, BPF_H, BPF_REG_7, ETH); /* the kernel's */
  go(e, L_MIX);
  /* Destination unreachable, source quench, time exceeded, parameter problem quote our packet. */
  label(e, L_ICMP4);
  load(e, BPF_B, BPF_REG_7, ETH);
  jump(e, BPF_JEQ, 3, L_INNER4);
  jump(e, BPF_JEQ, 4, L_INNER4);
  jump(e, BPF_JEQ, 11, L_INNER4);
  jump(e, BPF_JEQ, 12, L_INNER4);
  go(e, L_ZERO);
  label(e, L_INNER4);
  load(e, BPF_B, BPF_REG_7, ETH + ICMP_HDR);
  alu(e, BPF_ALU64, BPF_AND, BPF_REG_0, 0x0f);
  alu(e, BPF_ALU64, BPF_LSH, BPF_REG_0, 2);
  put(e, BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_0, BPF_REG_7, 0, 0);
  mov_reg(e, BPF_REG_9, BPF_REG_0); /* r9 = outer + quoted header lengths */
  load(e, BPF_B, BPF_REG_7, ETH + ICMP_HDR + 9);
  jump(e, BPF_JEQ, 6, L_I4PORTS);
  jump(e, BPF_JEQ, 17, L_I4PORTS);
  go(e, L_ZERO);
  label(e, L_I4PORTS);
  load(e, BPF_H, BPF_REG_9, ETH + ICMP_HDR); /* the quoted source: ours */
  mov_reg(e, BPF_REG_8, BPF_REG_0);
  load(e, BPF_H, BPF_REG_9, ETH + ICMP_HDR + 2); /* the quoted destination: the kernel's */
  go(e, L_MIX);

  /* IPv6 without extension headers. */
  label(e, L_V6);
  load(e, BPF_B, -1, IP6_NEXT);
  jump(e, BPF_JEQ, 6, L_PORTS6);
  jump(e, BPF_JEQ, 17, L_PORTS6);
  jump(e, BPF_JEQ, 58, L_ICMP6);
  go(e, L_ZERO);
  label(e, L_PORTS6);
  load(e, BPF_H, -1, IP6_L4 + 2);
  mov_reg(e, BPF_REG_8, BPF_REG_0);
  load(e, BPF_H, -1, IP6_L4);
  go(e, L_MIX);
  /* Destination unreachable, packet too big, time exceeded, parameter problem (types 1-4). */
  label(e, L_ICMP6);
  load(e, BPF_B, -1, IP6_L4);
  jump(e, BPF_JEQ, 1, L_I6);
  jump(e, BPF_JEQ, 2, L_I6);
  jump(e, BPF_JEQ, 3, L_I6);
  jump(e, BPF_JEQ, 4, L_I6);
  go(e, L_ZERO);
  label(e, L_I6);
  load(e, BPF_B, -1, IP6_L4 + ICMP_HDR + 6);
  jump(e, BPF_JEQ, 6, L_I6PORTS);
  jump(e, BPF_JEQ, 17, L_I6PORTS);
  go(e, L_ZERO);
  label(e, L_I6PORTS);
  load(e, BPF_H, -1, IP6_L4 + ICMP_HDR + 40);
  mov_reg(e, BPF_REG_8, BPF_REG_0);
  load(e, BPF_H, -1, IP6_L4 + ICMP_HDR + 40 + 2);

  /* r8: our port, r0: the kernel's; the mix above, in 32 bits. */
  label(e, L_MIX);
  alu(e, BPF_ALU64, BPF_LSH, BPF_REG_8, 16);
  put(e, BPF_ALU64 | BPF_OR | BPF_X, BPF_REG_0, BPF_REG_8, 0, 0);
  alu(e, BPF_ALU, BPF_MUL, BPF_REG_0, (int32_t)0x9E3779B1u);
  mov_reg(e, BPF_REG_8, BPF_REG_0);
  alu(e, BPF_ALU, BPF_RSH, BPF_REG_8, 16);
  put(e, BPF_ALU | BPF_XOR | BPF_X, BPF_REG_0, BPF_REG_8, 0, 0);
  alu(e, BPF_ALU, BPF_MUL, BPF_REG_0, (int32_t)0x85EBCA6Bu);
  alu(e, BPF_ALU, BPF_RSH, BPF_REG_0, 16);
  put(e, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

  if (e->n > STEER_MAX || e->nfix > STEER_MAX) return -1;
  for (int k = 0; k < e->nfix; k++) e->insn[e->fix_at[k]].off = (int16_t)(e->label_at[e->fix_label[k]] - e->fix_at[k] - 1);
  return e->n;
}

int tap_steer_attach(int tap_fd) {
  struct emitter e;
  int n = build(&e);
  if (n < 0) return -E2BIG;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insns = (uint64_t)(uintptr_t)e.insn;
  a.insn_cnt = (uint32_t)n;
  a.license = (uint64_t)(uintptr_t) "GPL";
  int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
  if (prog < 0) return -errno;
  /* tun keeps its own reference to the program: ours can go. */
  int rc = ioctl(tap_fd, TUNSETSTEERINGEBPF, &prog);
  int err = errno;
  close(prog);
  return rc < 0 ? -err : 0;
}

int tap_steer_detach(int tap_fd) {
  int none = -1;
  return ioctl(tap_fd, TUNSETSTEERINGEBPF, &none) < 0 ? -errno : 0;
}
