/* A tiny BPF program loaded, and bpf() called, the ways the sensor's tests
 * need (shared by test_sensor_ebpf.c and 0120-sensor-ebpf-chain.c). */
#ifndef EDR_TEST_BPF_PROG_H
#define EDR_TEST_BPF_PROG_H

#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* bpf(cmd, at) by the 64-bit syscall with bits above the command's 32 set
 * (the kernel ignores them, review-1206b 1) or by the ia32 one (int $0x80,
 * which the syscall hooks do not see unless sensor.ebpf_ia32 says so; at and
 * all it points to must then lie below 4 GiB). */
static inline long test_bpf_call(int ia32, long cmd, union bpf_attr *at)
{
    long r;
    if (ia32)
        __asm__ volatile("int $0x80"
                         : "=a"(r)
                         : "a"(357L), "b"(cmd), "c"((long)(uintptr_t)at), "d"((long)sizeof(*at))
                         : "memory");
    else
        r = syscall(SYS_bpf, cmd | (1L << 32), at, sizeof(*at));
    return r;
}

/* Room below 4 GiB for what an ia32 bpf() reads (a page), or MAP_FAILED. */
static inline uint8_t *test_low_page(void)
{
    return mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
}

/* Loads a two-instruction program of type `type` (returning 1 for a
 * cgroup_skb, cgroup_sock or cgroup_device, which then allow, else 0)
 * named name with
 * bpf(BPF_PROG_LOAD), by test_bpf_call; writes its bpf_prog_info to fd out
 * when out >= 0. Returns its fd or -1. */
static inline int load_test_prog_of(const char *name, int ia32, int out, uint32_t type,
                                    uint32_t expected_attach_type)
{
    uint8_t *m = test_low_page();
    if (m == MAP_FAILED) return -1;
    struct bpf_insn *ok = (struct bpf_insn *)m;
    ok[0] = (struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K,
                              .dst_reg = BPF_REG_0,
                              .imm = type == BPF_PROG_TYPE_CGROUP_SKB ||
                                     type == BPF_PROG_TYPE_CGROUP_SOCK ||
                                     type == BPF_PROG_TYPE_CGROUP_DEVICE};
    ok[1] = (struct bpf_insn){.code = BPF_JMP | BPF_EXIT};
    strcpy((char *)m + 64, "GPL");
    union bpf_attr *at = (union bpf_attr *)(m + 128);
    memset(at, 0, sizeof(*at));
    at->prog_type = type;
    at->expected_attach_type = expected_attach_type;
    at->insns = (uint64_t)(uintptr_t)ok;
    at->insn_cnt = 2;
    at->license = (uint64_t)(uintptr_t)(m + 64);
    snprintf(at->prog_name, sizeof(at->prog_name), "%s", name);
    long fd = test_bpf_call(ia32, BPF_PROG_LOAD, at);
    if (fd < 0) return -1;
    if (out < 0) return (int)fd;
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    memset(at, 0, sizeof(*at));
    at->info.bpf_fd = (uint32_t)fd;
    at->info.info_len = sizeof(info);
    at->info.info = (uint64_t)(uintptr_t)&info;
    if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, at, sizeof(*at)) != 0 ||
        write(out, &info, sizeof(info)) != (ssize_t)sizeof(info))
        return -1;
    return (int)fd;
}

/* A raw tracepoint program named prog_name attached to tracepoint tp
 * (bpf(BPF_RAW_TRACEPOINT_OPEN)), both calls by test_bpf_call. Returns the
 * link's fd (the program's in *prog_fd) or -1. */
static inline int test_raw_tp_link(const char *prog_name, const char *tp, int ia32, int *prog_fd)
{
    int p = load_test_prog_of(prog_name, ia32, -1, BPF_PROG_TYPE_RAW_TRACEPOINT, 0);
    uint8_t *low = test_low_page();
    if (p < 0 || low == MAP_FAILED || strlen(tp) >= 64) return -1;
    union bpf_attr *at = (union bpf_attr *)(low + 64);
    strcpy((char *)low, tp);
    memset(at, 0, sizeof(*at));
    at->raw_tracepoint.name = (uint64_t)(uintptr_t)low;
    at->raw_tracepoint.prog_fd = (uint32_t)p;
    *prog_fd = p;
    return (int)test_bpf_call(ia32, BPF_RAW_TRACEPOINT_OPEN, at);
}

/* A socket filter: what test_bpf_load_reported and 0120 load. */
static inline int load_test_prog(const char *name, int ia32, int out)
{
    return load_test_prog_of(name, ia32, out, BPF_PROG_TYPE_SOCKET_FILTER, 0);
}

/* Whether this kernel runs BPF programs for the sensor: kernel BTF (for
 * CO-RE and tp_btf) and a socket filter that loads. Where it does, the
 * sensor's programs not loading is a failure of the sensor (a program the
 * verifier rejects, say), not a reason to skip. */
static inline int test_bpf_runs_here(void)
{
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return 0;
    int fd = load_test_prog("edr_probe", 0, -1);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

#endif
