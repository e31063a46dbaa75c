/* bench_hook_floor: attaches an empty BPF program to every hook the eBPF sensor uses and
 * waits for SIGTERM, so that a workload run meanwhile pays what the kernel charges for the
 * hooks alone (the syscall tracepoint path, the dispatch to a BPF program) and nothing of
 * the sensor's own work.
 *
 * The hooks are read from the sensor's BPF object (its skeleton's embedded ELF), so the
 * set follows the sensor: every "tracepoint/<category>/<name>" program gets an empty
 * tracepoint program on the same tracepoint, every "tp_btf/<name>" an empty raw
 * tracepoint program on the same kernel tracepoint. Mode "tracepoint" (default) skips
 * tp_btf/sys_exit (the sensor's fallback when the syscall tracepoints cannot be
 * attached), mode "raw" takes it instead of the per-syscall tracepoints, and mode
 * "tracepoint+ia32" takes both, as the sensor does with sensor.ebpf_ia32 (one program on
 * sys_exit for the ia32 syscalls the per-syscall tracepoints do not see).
 * Prints "hook-floor: attached N" on stdout once every hook is in place.
 * Needs root and tracefs (mounted at /sys/kernel/tracing when missing). */
#include "edr_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_HOOKS 256

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* An empty program of the given type: r0 = 0; exit. */
static int empty_prog(enum bpf_prog_type type)
{
    struct bpf_insn insns[2];
    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[1].code = BPF_JMP | BPF_EXIT;
    return bpf_prog_load(type, "edr_floor", "GPL", insns, 2, NULL);
}

/* The tracefs id of tracepoint CATEGORY/NAME, or -1. */
static long tracepoint_id(const char *category, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/%s/id", category, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long id = -1;
    if (fscanf(f, "%ld", &id) != 1)
        id = -1;
    fclose(f);
    return id;
}

static int attach_tracepoint(int prog_fd, const char *category, const char *name)
{
    long id = tracepoint_id(category, name);
    if (id < 0) {
        fprintf(stderr, "hook-floor: no tracepoint %s/%s in tracefs\n", category, name);
        return -1;
    }
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = (unsigned long long)id;
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    int pfd = (int)syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0 || ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog_fd) || ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0)) {
        fprintf(stderr, "hook-floor: attach to %s/%s: %s\n", category, name, strerror(errno));
        if (pfd >= 0)
            close(pfd);
        return -1;
    }
    return pfd;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "tracepoint";
    int raw = strcmp(mode, "raw") == 0, ia32 = strcmp(mode, "tracepoint+ia32") == 0;
    if (argc > 2 || (!raw && !ia32 && strcmp(mode, "tracepoint") != 0)) {
        fprintf(stderr, "usage: bench_hook_floor [tracepoint|tracepoint+ia32|raw]\n");
        return 2;
    }
    libbpf_set_print(quiet);
    if (access("/sys/kernel/tracing/events", F_OK) != 0 &&
        mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
        fprintf(stderr, "hook-floor: tracefs unavailable: %s\n", strerror(errno));
        return 1;
    }
    size_t sz;
    const void *elf = edr_bpf__elf_bytes(&sz);
    struct bpf_object *obj = bpf_object__open_mem(elf, sz, NULL);
    if (!obj) {
        fprintf(stderr, "hook-floor: cannot open the sensor's BPF object: %s\n", strerror(errno));
        return 1;
    }
    int tp_fd = empty_prog(BPF_PROG_TYPE_TRACEPOINT);
    int raw_fd = empty_prog(BPF_PROG_TYPE_RAW_TRACEPOINT);
    if (tp_fd < 0 || raw_fd < 0) {
        fprintf(stderr, "hook-floor: cannot load an empty program: %s\n", strerror(errno));
        return 1;
    }
    static int fds[MAX_HOOKS];
    int n = 0, rc = 1;
    struct bpf_program *p;
    bpf_object__for_each_program(p, obj)
    {
        const char *sec = bpf_program__section_name(p);
        char category[128], name[128];
        int fd = -1;
        if (n == MAX_HOOKS) {
            fprintf(stderr, "hook-floor: more than %d hooks\n", MAX_HOOKS);
            goto out;
        }
        if (sscanf(sec, "tracepoint/%127[^/]/%127s", category, name) == 2) {
            if (raw)
                continue;
            fd = attach_tracepoint(tp_fd, category, name);
        } else if (sscanf(sec, "tp_btf/%127s", name) == 1) {
            int sys = strcmp(name, "sys_enter") == 0 || strcmp(name, "sys_exit") == 0;
            /* the raw program or the ia32 one: one of them, as the sensor loads */
            int for_ia32 = strcmp(bpf_program__name(p), "edr_sys_exit_ia32") == 0;
            if (sys && (raw ? for_ia32 : !(ia32 && for_ia32))) continue;
            fd = bpf_raw_tracepoint_open(name, raw_fd);
            if (fd < 0)
                fprintf(stderr, "hook-floor: raw tracepoint %s: %s\n", name, strerror(errno));
        } else if (strncmp(sec, "iter/", 5) == 0) {
            continue; /* an iterator the sensor reads on its own schedule: no hook */
        } else {
            fprintf(stderr, "hook-floor: the sensor's program section '%s' is not handled\n", sec);
            goto out;
        }
        if (fd < 0)
            goto out;
        fds[n++] = fd;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    printf("hook-floor: attached %d\n", n);
    fflush(stdout);
    while (!stop)
        pause();
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(tp_fd);
    close(raw_fd);
    bpf_object__close(obj);
    return rc;
}
