/* A tiny BPF program loaded the ways the sensor's tests need (shared by
 * test_sensor_ebpf.c and 0120-sensor-ebpf-chain.c). */
#ifndef EDR_TEST_BPF_PROG_H
#define EDR_TEST_BPF_PROG_H

#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Loads a two-instruction socket filter named name with bpf(BPF_PROG_LOAD),
 * by the 64-bit syscall with bits above the command's 32 set (the kernel
 * ignores them, review-1206b 1) or by the ia32 one (int $0x80, which the
 * syscall hooks do not see); writes its id to fd out. Returns its fd or -1. */
static inline int load_test_prog(const char *name, int ia32, int out)
{
    /* ia32: everything the kernel reads must lie below 4 GiB */
    uint8_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | (ia32 ? MAP_32BIT : 0), -1, 0);
    if (m == MAP_FAILED) return -1;
    struct bpf_insn *ok = (struct bpf_insn *)m;
    ok[0] = (struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0};
    ok[1] = (struct bpf_insn){.code = BPF_JMP | BPF_EXIT};
    strcpy((char *)m + 64, "GPL");
    union bpf_attr *at = (union bpf_attr *)(m + 128);
    memset(at, 0, sizeof(*at));
    at->prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    at->insns = (uint64_t)(uintptr_t)ok;
    at->insn_cnt = 2;
    at->license = (uint64_t)(uintptr_t)(m + 64);
    strncpy(at->prog_name, name, sizeof(at->prog_name) - 1);
    long fd;
    if (ia32)
        __asm__ volatile("int $0x80"
                         : "=a"(fd)
                         : "a"(357L), "b"((long)BPF_PROG_LOAD), "c"((long)(uintptr_t)at),
                           "d"((long)sizeof(*at))
                         : "memory");
    else
        fd = syscall(SYS_bpf, (long)BPF_PROG_LOAD | (1L << 32), at, sizeof(*at));
    if (fd < 0) return -1;
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

#endif
