// SPDX-License-Identifier: GPL-2.0
/* Feature probe: one BPF LSM program that allows everything, loaded (never attached) at start to
 * learn whether this kernel accepts trampoline-based programs (BPF LSM, fentry). */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int BPF_PROG(edr_probe_lsm, struct file *file)
{
    return 0;
}
