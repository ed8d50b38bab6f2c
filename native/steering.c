/* The TUN steering program; see steering.h. Hand-assembled eBPF (no clang/libbpf at run time): a socket
 * filter program using the classic packet loads (BPF_LD|BPF_ABS/IND: ctx in r6, offsets from the IP header,
 * which is where a TUN's skb->data points; 16/32-bit loads arrive in host order; an out-of-range load ends
 * the program with 0, i.e. queue 0). Its return value modulo the number of queues is the queue. The header
 * offsets are the packet core's (core/packet.h): the program reads the fields the parser reads. */
#define _GNU_SOURCE
#include "steering.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/packet.h"

enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

struct prog {
  struct bpf_insn *ins;
  int n, cap;
  int label_at[16];        /* instruction index of each label, -1 until placed */
  struct fix { int at, label; } *fixes;
  int nfix;
};

enum label { L_IPV6, L_RET0, L_FWD4, L_FWD6, L_MIX, L_P4R, L_P4F, L_P6R, L_P6F };

static int emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  if (p->n == p->cap) return -1;
  p->ins[p->n] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
  return p->n++;
}

/* A jump to a label, resolved at the end. */
static void jmp(struct prog *p, uint8_t code, uint8_t dst, int32_t imm, int label) {
  int at = emit(p, code, dst, 0, 0, imm);
  if (at >= 0) p->fixes[p->nfix++] = (struct fix){at, label};
}

static void place(struct prog *p, int label) { p->label_at[label] = p->n; }

static int resolve(struct prog *p) {
  for (int i = 0; i < p->nfix; i++) {
    int target = p->label_at[p->fixes[i].label];
    if (target < 0) return -1;
    p->ins[p->fixes[i].at].off = (int16_t)(target - (p->fixes[i].at + 1));
  }
  return 0;
}

#define LD_ABS(size, off) emit(p, BPF_LD | BPF_ABS | (size), 0, 0, 0, (off))
#define LD_IND(size, reg, off) emit(p, BPF_LD | BPF_IND | (size), 0, (reg), 0, (off))
#define MOV_X(dst, src) emit(p, BPF_ALU64 | BPF_MOV | BPF_X, (dst), (src), 0, 0)
#define MOV_K(dst, k) emit(p, BPF_ALU64 | BPF_MOV | BPF_K, (dst), 0, 0, (k))
#define ALU32_K(op, dst, k) emit(p, BPF_ALU | (op) | BPF_K, (dst), 0, 0, (k))
#define ALU32_X(op, dst, src) emit(p, BPF_ALU | (op) | BPF_X, (dst), (src), 0, 0)

static uint32_t be32(const uint8_t *b) { return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3]; }

/* r8 = the 16-bit port at (r9 + off) if the protocol byte at proto_off is TCP or UDP, else 0. */
static void port_at(struct prog *p, int proto_off, int off, int l_port, int ind) {
  MOV_K(R8, 0);
  LD_ABS(BPF_B, proto_off);
  jmp(p, BPF_JMP | BPF_JEQ | BPF_K, R0, IPPROTO_TCP_, l_port);
  jmp(p, BPF_JMP | BPF_JEQ | BPF_K, R0, IPPROTO_UDP_, l_port);
  jmp(p, BPF_JMP | BPF_JA, 0, 0, L_MIX);
  place(p, l_port);
  if (ind) LD_IND(BPF_H, R9, off);
  else LD_ABS(BPF_H, off);
  MOV_X(R8, R0);
  jmp(p, BPF_JMP | BPF_JA, 0, 0, L_MIX);
}

/* r7 = xor of the four 32-bit words of the IPv6 address at off. */
static void fold6(struct prog *p, int off) {
  LD_ABS(BPF_W, off);
  MOV_X(R7, R0);
  for (int k = 1; k < 4; k++) {
    LD_ABS(BPF_W, off + 4 * k);
    ALU32_X(BPF_XOR, R7, R0);
  }
}

int l4_steering_attach(int tun_fd, uint32_t nqueues, const uint8_t *vips4, uint32_t n4, const uint8_t *vips6,
                       uint32_t n6, const char **failed_call, char *log, uint32_t loglen) {
  /* Before any return: the caller prints log when it is not empty, whichever step failed. */
  if (log && loglen) log[0] = 0;
  if (nqueues == 0) {
    *failed_call = "steering program (no queues)";
    return -EINVAL;
  }
  if (n4 > L4_STEERING_MAX_VIPS || n6 > L4_STEERING_MAX_VIPS) {
    *failed_call = "steering program (too many VIPs)";
    return -E2BIG;
  }
  struct prog pr = {0};
  struct prog *p = &pr;
  pr.cap = 96 + (int)n4 + 10 * (int)n6;
  pr.ins = calloc((size_t)pr.cap, sizeof(*pr.ins));
  pr.fixes = calloc((size_t)pr.cap, sizeof(*pr.fixes));
  if (!pr.ins || !pr.fixes) {
    free(pr.ins);
    free(pr.fixes);
    *failed_call = "calloc";
    return -ENOMEM;
  }
  for (int i = 0; i < 16; i++) pr.label_at[i] = -1;

  MOV_X(R6, R1);
  LD_ABS(BPF_B, IP_OFF_VERSION);
  ALU32_K(BPF_RSH, R0, 4);
  jmp(p, BPF_JMP | BPF_JEQ | BPF_K, R0, 6, L_IPV6);
  jmp(p, BPF_JMP | BPF_JNE | BPF_K, R0, 4, L_RET0);
  /* IPv4: r9 = header length, r7 = destination address */
  LD_ABS(BPF_B, IP_OFF_VERSION);
  ALU32_K(BPF_AND, R0, 0x0f);
  ALU32_K(BPF_LSH, R0, 2);
  MOV_X(R9, R0);
  LD_ABS(BPF_W, IP4_OFF_DADDR);
  MOV_X(R7, R0);
  for (uint32_t i = 0; i < n4; i++) jmp(p, BPF_JMP32 | BPF_JEQ | BPF_K, R7, (int32_t)be32(vips4 + 4 * i), L_FWD4);
  /* not to a VIP: a reply, the client is the destination */
  port_at(p, IP4_OFF_PROTO, L4_OFF_DPORT, L_P4R, 1);
  if (n4) { /* (the verifier refuses unreachable code: no VIP, no "to a VIP" branch) */
    place(p, L_FWD4);
    LD_ABS(BPF_W, IP4_OFF_SADDR);
    MOV_X(R7, R0);
    port_at(p, IP4_OFF_PROTO, L4_OFF_SPORT, L_P4F, 1);
  }
  /* IPv6 (extension headers are not walked: such packets hash on the address alone) */
  place(p, L_IPV6);
  for (uint32_t i = 0; i < n6; i++) {
    const uint8_t *v = vips6 + 16 * i;
    for (int k = 0; k < 4; k++) {
      LD_ABS(BPF_W, IP6_OFF_DADDR + 4 * k);
      /* on mismatch skip the rest of this VIP's chain: the remaining (3-k) load+compare pairs and the jump */
      emit(p, BPF_JMP32 | BPF_JNE | BPF_K, R0, 0, (int16_t)(2 * (3 - k) + 1), (int32_t)be32(v + 4 * k));
    }
    jmp(p, BPF_JMP | BPF_JA, 0, 0, L_FWD6);
  }
  fold6(p, IP6_OFF_DADDR);
  port_at(p, IP6_OFF_NEXT, IP6_HDR_LEN + L4_OFF_DPORT, L_P6R, 0);
  if (n6) {
    place(p, L_FWD6);
    fold6(p, IP6_OFF_SADDR);
    port_at(p, IP6_OFF_NEXT, IP6_HDR_LEN + L4_OFF_SPORT, L_P6F, 0);
  }
  /* hash (client address, client port) */
  place(p, L_MIX);
  MOV_X(R0, R7);
  ALU32_X(BPF_XOR, R0, R8);
  ALU32_K(BPF_LSH, R8, 16);
  ALU32_X(BPF_XOR, R0, R8);
  ALU32_K(BPF_MUL, R0, (int32_t)0x9E3779B1u);
  MOV_X(R1, R0);
  ALU32_K(BPF_RSH, R1, 16);
  ALU32_X(BPF_XOR, R0, R1);
  /* hash % nqueues + nqueues: the kernel takes it modulo the device's queue count, so alone this is hash % nqueues,
   * and while a live handover's predecessor still holds the first nqueues queues, only this process's queues (which
   * follow them) get packets: the predecessor's drain and nothing is dropped when it detaches them. */
  ALU32_K(BPF_MOD, R0, (int32_t)nqueues);
  ALU32_K(BPF_ADD, R0, (int32_t)nqueues);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  place(p, L_RET0);
  MOV_K(R0, (int32_t)nqueues); /* this process's first queue */
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

  if (pr.n >= pr.cap || resolve(p) != 0) {
    free(pr.ins);
    free(pr.fixes);
    *failed_call = "steering program (assembly)";
    return -EINVAL;
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = (uint64_t)(uintptr_t)pr.ins;
  attr.insn_cnt = (uint32_t)pr.n;
  attr.license = (uint64_t)(uintptr_t) "GPL";
  int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
  int err = errno;
  if (prog_fd < 0 && log && loglen > 1) {
    /* Load again with the verifier's log, only to say why (a log buffer too small would itself fail a load). */
    size_t big = 1 << 20;
    char *buf = malloc(big);
    if (buf) {
      buf[0] = 0;
      attr.log_buf = (uint64_t)(uintptr_t)buf;
      attr.log_size = (uint32_t)big;
      attr.log_level = 1;
      int fd2 = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
      if (fd2 >= 0) close(fd2);
      size_t len = strlen(buf);
      size_t from = len > loglen - 1 ? len - (loglen - 1) : 0;
      memcpy(log, buf + from, len - from + 1);
      free(buf);
    }
  }
  free(pr.ins);
  free(pr.fixes);
  if (prog_fd < 0) {
    *failed_call = "bpf(BPF_PROG_LOAD)";
    return -err;
  }
  int r = ioctl(tun_fd, TUNSETSTEERINGEBPF, &prog_fd);
  err = errno;
  close(prog_fd); /* the device keeps its own reference */
  if (r < 0) {
    *failed_call = "ioctl(TUNSETSTEERINGEBPF)";
    return -err;
  }
  return 0;
}

int l4_steering_detach(int tun_fd) {
  int none = -1;
  return ioctl(tun_fd, TUNSETSTEERINGEBPF, &none) < 0 ? -errno : 0;
}
