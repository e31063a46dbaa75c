// SPDX-License-Identifier: GPL-2.0
/* CO-RE programs of the eBPF source: process, file, network and access events into one ring buffer.
 *
 * Only BTF tracepoints are used: they need neither tracefs, kprobes, BPF
 * trampolines (fentry/fexit) nor BPF LSM, which some kernels refuse (the
 * development VM, 6.18 with CONFIG_BPF_LSM, returns EPERM when loading any
 * fentry or lsm program). Paths are rebuilt by walking dentries and mounts
 * (bpf_loop), as bpf_d_path is not allowed in tracepoints.
 *
 *   tp_btf/sched_process_fork   new thread groups (threads skipped)
 *   tp_btf/sched_process_exec   exe (bprm->file), cwd, argv (mm->arg_*), cgroup,
 *                               execve filename and interpreter (scripts)
 *   tp_btf/sched_process_exit   once, when signal->live reaches 0
 *   tp_btf/inet_sock_set_state  TCP close with both endpoints: the closing
 *                               process's own transition (socket locked by it)
 *   tp_btf/sys_exit             open family (create via FMODE_CREATED, arms the
 *                               first-write check), write family (first write
 *                               per open file), rename*, unlink*, rmdir,
 *                               chmod*, chown*, mmap PROT_EXEC, connect, accept*,
 *                               listen, sendto/sendmsg/sendmmsg to port 53,
 *                               ptrace ATTACH/SEIZE, process_vm_readv/writev
 *
 * Syscall numbers and registers are x86-64 (other architectures: process
 * events only). Needs kernel >= 6.2 (bpf_loop, bpf_task_from_pid); from 6.13
 * (bpf_task_from_vpid) a process access names its target from a caller in a
 * pid namespace too. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "edr_bpf.h"

char LICENSE[] SEC("license") = "GPL"; /* GPL-only helpers (probe reads of kernel memory) */

#define EDR_AF_INET            2
#define EDR_AF_INET6           10
#define EDR_AF_PACKET          17
#define EDR_S_IFMT             00170000
#define EDR_S_IFREG            0100000
#define EDR_S_IFDIR            0040000
#define EDR_S_IFLNK            0120000
#define EDR_FMODE_WRITE        0x2
#define EDR_FMODE_CREATED      0x100000
#define EDR_MAY_WRITE          0x2
#define EDR_PROT_EXEC          0x4
#define EDR_PROT_READ          0x1
#define EDR_PROT_WRITE         0x2
#define EDR_MAP_SHARED         0x1 /* and MAP_SHARED_VALIDATE (0x3) */
#define EDR_MAP_ANONYMOUS      0x20
#define EDR_O_TRUNC            01000
#define EDR_O_CREAT            0100
#define EDR_RENAME_EXCHANGE    2
#define EDR_PTRACE_MODE_ATTACH 0x02
#define EDR_SIGNAL_GROUP_EXIT  0x4
#define EDR_TCP_ESTABLISHED    1
#define EDR_TCP_SYN_SENT       2
#define EDR_TCP_SYN_RECV       3
#define EDR_TCP_FIN_WAIT1      4
#define EDR_TCP_CLOSE          7
#define EDR_TCP_CLOSE_WAIT     8
#define EDR_TCP_LAST_ACK       9
#define EDR_TCP_LISTEN         10

/* One ring buffer for everything, so records of one task stay in order.
 * User space may resize it before load. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Records lost because the ring buffer was full, per record kind. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, EDR_BPF_DROP_MAX);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

struct edr_scratch {
    char b[EDR_BPF_SCRATCH];
};

/* Per-CPU space where variable-size records are assembled. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct edr_scratch);
} scratch SEC(".maps");

/* The cgroup iterator's records of one cgroup, written in one piece (its
 * own: iterators run in the reader's context, where a tracepoint program
 * may interrupt and use `scratch`) */
struct edr_cg_scratch {
    __u32 n; /* records in r; kept here, not on the stack, so that the
                verifier does not follow every count through the walk */
    __u32 pad;
    struct edr_bpf_cg_rec r[EDR_CG_RECS];
};
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct edr_cg_scratch);
} cg_scratch SEC(".maps");
/* cgroup id -> 1: the cgroups whose programs the sensor's last scan listed
 * (EDR_CG_WATCH at most) */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, EDR_CG_WATCH);
    __type(key, __u64);
    __type(value, __u8);
} cg_watch SEC(".maps");

/* The descriptor scan under way (user space counts them) and the held
 * programs it wrote, by key, with the scan that wrote them: once a scan,
 * however many descriptors hold them (a socket dup'ed a million times,
 * review-1205-sock 5; past the table's size, some twice) */
volatile __u32 edr_fd_gen;
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536); /* past it, some written twice (review-1205-sock2 3) */
    __type(key, __u64);
    __type(value, __u32);
} fd_seen SEC(".maps");

/* Digests of classic programs (edr_prog_ident) by the program's address,
 * with the scan that made them: within one scan an address names one
 * program (one freed and another made there meanwhile is keyed as the
 * first until the next scan) */
struct edr_ident_memo {
    __u64 ident;
    __u32 gen;
    __u32 pad;
};
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct edr_ident_memo);
} ident_memo SEC(".maps");

/* The descriptor iterator's record (edr_iter_fd_progs: too big for its
 * stack; its own, as cg_scratch) */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct edr_bpf_bpf_attach);
} fd_scratch SEC(".maps");

/* The thread group whose activity is not reported (the sensor itself), set
 * before load: a compare instead of a map lookup on every hook. */
const volatile __u32 edr_self_tgid = 0;

/* Open file descriptions opened for writing and not yet written, in a
 * direct-mapped table: slot edr_wr_slot(file) holds the struct file * while
 * armed, 0 once written. Array slots are plain memory: arming is one atomic
 * exchange and the first write one compare-and-swap, where an LRU hash map
 * took a bucket lock on both sides (~500 ns an open, ~250 ns a first write).
 * Nothing clears a slot at close (no close hook; another descriptor may
 * still refer to the file): a later open hashing to the slot takes it, and
 * when the file it displaces is still open for writing, its first write
 * will go unreported: counted (EDR_BPF_DROP_WRITE_TRACK). A write checks
 * that the file is still a regular file. 8 bytes a slot (sensor.ebpf_write_slots). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1 << 19); /* user space sets 1 << edr_wr_slots_log2 before load */
    __type(key, __u32);
    __type(value, __u64);
} wr_armed SEC(".maps");

const volatile __u32 edr_wr_slots_log2 = 19; /* sensor.ebpf_write_slots */

static __always_inline __u32 edr_wr_slot(__u64 file)
{
    return (__u32)((file * 0x9E3779B97F4A7C15ULL) >> (64 - edr_wr_slots_log2));
}

/* Per-CPU buffer where a path is assembled backwards from its last component. */
struct edr_pathbuf {
    char b[EDR_BPF_PATH_MAX + EDR_BPF_NAME_MAX];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct edr_pathbuf);
} pathbuf SEC(".maps");

struct edr_mmap_key {
    __u64 start_boot_ns;
    __u64 exec_id; /* the leader's self_exec_id: an exec starts a new image (review-1206 5) */
    __u64 dev;
    __u64 ino;
    __u32 tgid;
    __u32 pad;
};

/* (process image, inode) pairs already reported as mapped executable; for
 * anonymous memory (dev and inode 0), how many ranges were reported. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct edr_mmap_key);
    __type(value, __u8);
} mmap_seen SEC(".maps");

/* Wakeups: 0 = every record wakes user space (the ring buffer's default);
 * otherwise each CPU submits without a wakeup until it has written
 * edr_wakeup_share bytes of ring (sensor.ebpf_wakeup_bytes over the CPUs
 * online at start) since the sensor last drained the ring, and user space
 * also drains the ring on a short timer. A wakeup is an irq_work (a
 * self-IPI, which costs a VM exit under virtualisation), so waking once per
 * record costs more than the programs themselves. The count is the CPU's
 * own: asking the ring how much is waiting (BPF_RB_AVAIL_DATA) reads the
 * position the consumer writes from another CPU, a cache miss on every
 * record (~100-150 ns of a ~750 ns unlink record here: bpf_stats of the
 * programs under the sensor-overhead workload, with and without it).
 * edr_drain_gen, which the sensor bumps after each drain, is written a few
 * times a second: read by every record, it stays in the CPUs' caches (no
 * CPU's count shares its cache line: slot 0 is not used); a
 * CPU's count starts again after it changes, so that wakeups do not grow
 * with the number of CPUs where the timer drains the ring first
 * (review-1206 M1: 842 wakeups for 6,200 records with a 1 KiB share). */
const volatile __u64 edr_wakeup_bytes = 0;
const volatile __u64 edr_wakeup_share = 0;
__u64 edr_drain_gen;

/* Each CPU's count of ring bytes, the drain it counts since and its
 * wakeups, a cache line each (a map lookup costs more than the count). The update is not
 * atomic: a program interrupting another on the same CPU (a softirq's
 * network hook), or CPUs past the last slot sharing one, can lose bytes of
 * it, which delays a wakeup; the timer's drain bounds the delay. */
#define EDR_WAKE_SLOTS  256
#define EDR_WAKE_STRIDE 8 /* u64s in a cache line */
__u64 edr_unwoken[(EDR_WAKE_SLOTS + 1) * EDR_WAKE_STRIDE];

static __always_inline __u64 *edr_unwoken_slot(void)
{
    /* slot 0 is left out: its line holds edr_drain_gen (review-1206b M2) */
    __u64 *c =
        &edr_unwoken[((bpf_get_smp_processor_id() & (EDR_WAKE_SLOTS - 1)) + 1) * EDR_WAKE_STRIDE];
    __u64 g = *(volatile __u64 *)&edr_drain_gen;

    if (c[1] != g) {
        c[1] = g;
        c[0] = 0;
    }
    return c;
}

/* The flags for submitting a record of size bytes. */
static __always_inline __u64 edr_rb_flags(__u32 size)
{
    __u64 *c;

    if (!edr_wakeup_bytes) return 0;
    c = edr_unwoken_slot();
    c[0] += (size + 8 + 7) & ~7ULL; /* its ring space: an 8-byte header, 8-aligned */
    if (c[0] < edr_wakeup_share) return BPF_RB_NO_WAKEUP;
    c[0] = 0;
    c[2]++; /* wakeups asked for (tests read them) */
    return BPF_RB_FORCE_WAKEUP;
}

/* The ring is full: the next record this CPU submits wakes the sensor (a
 * wakeup decided for the record that did not fit was lost with it). */
static __always_inline void edr_rb_full(void)
{
    if (edr_wakeup_bytes) edr_unwoken_slot()[0] = edr_wakeup_share;
}

/* Typed view of a kernel pointer: its fields then load directly (faulting
 * loads are caught) instead of through one bpf_probe_read_kernel call each. */
void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define EDR_CAST(p, type) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))

static __always_inline int edr_ignored(void)
{
    return (__u32)(bpf_get_current_pid_tgid() >> 32) == edr_self_tgid;
}

static __always_inline void edr_count_drop(__u32 kind)
{
    __u64 *n = bpf_map_lookup_elem(&drops, &kind);
    if (n) *n += 1;
}

/* A record of kind that did not fit in the ring: counted, and the sensor
 * woken by the next one */
static __always_inline void edr_ring_drop(__u32 kind)
{
    edr_count_drop(kind);
    edr_rb_full();
}

static __always_inline void edr_fill_hdr(struct edr_bpf_hdr *h, __u32 kind,
                                         struct task_struct *task)
{
    struct task_struct *t = EDR_CAST(task, struct task_struct);
    struct task_struct *p = EDR_CAST(t->real_parent, struct task_struct);
    const struct cred *cr = EDR_CAST(t->real_cred, struct cred);

    h->kind = kind;
    h->size = 0;
    h->ts_boot_ns = bpf_ktime_get_boot_ns();
    h->tgid = t->tgid;
    h->tid = t->pid;
    h->start_boot_ns = EDR_CAST(t->group_leader, struct task_struct)->start_boottime;
    h->ppid = p->tgid;
    h->pstart_boot_ns = EDR_CAST(p->group_leader, struct task_struct)->start_boottime;
    h->uid = cr->uid.val;
    h->gid = cr->gid.val;
    h->pad = 0;
}

static __always_inline void edr_fill_hdr_current(struct edr_bpf_hdr *h, __u32 kind)
{
    edr_fill_hdr(h, kind, (struct task_struct *)bpf_get_current_task());
}

/* A ring buffer record of kind, size bytes, with the current task's header;
 * NULL when the ring is full (counted as a drop of kind). */
static __always_inline void *edr_reserve_current(__u32 size, __u32 kind)
{
    struct edr_bpf_hdr *h = bpf_ringbuf_reserve(&events, size, 0);

    if (!h) {
        edr_ring_drop(kind);
        return NULL;
    }
    edr_fill_hdr_current(h, kind);
    h->size = size;
    return h;
}

static __always_inline void *edr_scratch(void)
{
    __u32 zero = 0;
    return bpf_map_lookup_elem(&scratch, &zero);
}

/* Sends an assembled record of size bytes from scratch. */
/* 0, or -1 when the ring buffer was full (counted as a drop of kind) */
static __always_inline int edr_submit(void *rec, __u32 size, __u32 kind)
{
    size &= (EDR_BPF_SCRATCH - 1); /* records never reach the scratch size */
    ((struct edr_bpf_hdr *)rec)->size = size;
    if (!bpf_ringbuf_output(&events, rec, size, edr_rb_flags(size))) return 0;
    edr_ring_drop(kind);
    return -1;
}

static __always_inline void edr_inode_info(struct inode *ino, __u64 *dev, __u64 *nr)
{
    struct inode *i = EDR_CAST(ino, struct inode);

    *dev = i->i_sb->s_dev;
    *nr = i->i_ino;
}

struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
/* Linux >= 6.13; weak, so that the programs still load where it is missing */
struct task_struct *bpf_task_from_vpid(s32 vpid) __ksym __weak;
/* Linux >= 6.7: open-coded iteration over a task's mappings */
int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task,
                          __u64 addr) __ksym __weak;
struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym __weak;
void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym __weak;
int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym __weak;
int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym __weak;
void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym __weak;
void bpf_task_release(struct task_struct *p) __ksym;

#ifndef bpf_ksym_exists /* libbpf < 1.2 */
#define bpf_ksym_exists(sym)                                                                       \
    ({                                                                                             \
        _Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak");          \
        !!sym;                                                                                     \
    })
#endif

static __always_inline struct edr_bpf_file *edr_file_rec(__u32 kind)
{
    struct edr_bpf_file *r = edr_scratch();

    if (!r) return NULL;
    edr_fill_hdr_current(&r->h, kind);
    r->dev = r->ino = r->bytes = 0;
    r->mode = r->uid = r->gid = 0;
    r->dir_len = r->rel_len = r->dir2_len = r->rel2_len = 0;
    r->pad = 0;
    r->uring_req = 0;
    return r;
}

static __always_inline void edr_net_fill(struct edr_bpf_net *r, struct sock *sock)
{
    struct sock_common *sk = &EDR_CAST(sock, struct sock)->__sk_common;
    __u16 fam = sk->skc_family;
    __u32 *l = (__u32 *)r->local_ip, *rm = (__u32 *)r->remote_ip;

    r->family = fam;
    r->netns = bpf_core_field_exists(sk->skc_net.net) /* CONFIG_NET_NS */
                   ? EDR_CAST(sk->skc_net.net, struct net)->ns.inum
                   : 0;
    r->local_port = sk->skc_num;
    r->remote_port = bpf_ntohs(sk->skc_dport);
    if (fam == EDR_AF_INET6) {
        for (int i = 0; i < 4; i++) {
            l[i] = sk->skc_v6_rcv_saddr.in6_u.u6_addr32[i];
            rm[i] = sk->skc_v6_daddr.in6_u.u6_addr32[i];
        }
    } else {
        l[0] = sk->skc_rcv_saddr;
        rm[0] = sk->skc_daddr;
        l[1] = l[2] = l[3] = rm[1] = rm[2] = rm[3] = 0;
    }
}

/* The remote end of r from a caller's address (AF_INET or AF_INET6). */
static __always_inline void edr_net_remote_sa(struct edr_bpf_net *r, const struct sockaddr_in6 *sa)
{
    r->remote_port = bpf_ntohs(sa->sin6_port);
    r->family = sa->sin6_family;
    __builtin_memset(r->remote_ip, 0, sizeof(r->remote_ip));
    if (sa->sin6_family == EDR_AF_INET6)
        __builtin_memcpy(r->remote_ip, &sa->sin6_addr, 16);
    else
        __builtin_memcpy(r->remote_ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
}

static __always_inline void edr_net_emit(struct sock *sk, __u8 action, __u8 proto)
{
    struct edr_bpf_net *r = edr_reserve_current(sizeof(*r), EDR_BPF_NET);

    if (!r) return;
    edr_net_fill(r, sk);
    r->protocol = proto;
    r->action = action;
    r->error = 0;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* ---- paths -------------------------------------------------------------- */

/* Steps of the walk: every component takes at least two bytes ("/x"), so
 * the buffer, not the depth, ends the walk of any real path (review-fidelity
 * 8: at 48 steps, a path 60 directories deep was shipped as its last 48
 * components, which looked like an absolute path). A step costs only for
 * the components a path has. */
#define EDR_PATH_DEPTH (EDR_BPF_PATH_MAX / 2 + 64)
#define EDR_PB_END     (EDR_BPF_PATH_MAX - 1)
#define EDR_CUT_MARK   "..." /* before the tail of a path too long for the buffer */
#define EDR_DELETED_MARK " (deleted)" /* after the path of an unlinked file */

struct edr_walk {
    struct dentry *d;
    struct vfsmount *vm;
    struct mount *mnt;
    __u32 off; /* start of the path built so far in pb */
    int done;
};

static __always_inline struct mount *edr_real_mount(struct vfsmount *vm)
{
    return (struct mount *)((char *)vm - bpf_core_field_offset(struct mount, mnt));
}

/* One step up (a bpf_loop callback, so the verifier checks it once):
 * prepends "/name" of the current dentry, or crosses a mount. */
static long edr_walk_step(__u32 i, void *ctx)
{
    struct edr_walk *w = ctx;
    __u32 zero = 0;
    char *pb = bpf_map_lookup_elem(&pathbuf, &zero);
    struct dentry *parent, *mroot, *d = EDR_CAST(w->d, struct dentry);
    struct vfsmount *vm = EDR_CAST(w->vm, struct vfsmount);
    struct mount *mnt = EDR_CAST(w->mnt, struct mount);
    const unsigned char *name;
    __u32 len;
    int own = 0;

    if (w->done || !pb) return 1;
    mroot = vm->mnt_root;
    parent = d->d_parent;
    if (w->d == parent && w->d != mroot) {
        /* in no directory: a pseudo file (memfd_create's "memfd:NAME", which
         * a fileless exec runs) or a dentry cut off from its tree. Its own
         * name, alone (it was reported as "/") */
        if (w->off != EDR_PB_END) {
            w->done = 1;
            return 1;
        }
        own = 1;
    } else if (w->d == mroot || w->d == parent) {
        struct mount *up = mnt->mnt_parent;
        if (w->d != mroot || up == w->mnt) {
            w->done = 1; /* reached the root */
            return 1;
        }
        w->d = mnt->mnt_mountpoint;
        w->mnt = up;
        w->vm = (struct vfsmount *)((char *)up + bpf_core_field_offset(struct mount, mnt));
        return 0;
    }
    len = d->d_name.len;
    name = d->d_name.name;
    if (len > EDR_BPF_NAME_MAX - 1) len = EDR_BPF_NAME_MAX - 1;
    if (len + 1 + sizeof(EDR_CUT_MARK) - 1 > w->off) {
        w->done = 2; /* too long: keep the tail, marked */
        return 1;
    }
    w->off -= len;
    bpf_probe_read_kernel(pb + (w->off & (EDR_BPF_PATH_MAX - 1)), len & (EDR_BPF_NAME_MAX - 1),
                          name);
    w->off -= 1;
    pb[w->off & (EDR_BPF_PATH_MAX - 1)] = '/';
    w->d = parent;
    if (own) {
        w->done = 1;
        return 1;
    }
    return 0;
}

/* Writes the absolute path of (dentry, vfsmount) at data + off (masked);
 * stores its length with the NUL in *len (0 when unavailable) and returns
 * the offset after it. */
static __always_inline __u32 edr_put_dpath(char *data, __u32 off, struct dentry *d,
                                           struct vfsmount *vm, __u16 *len)
{
    __u32 zero = 0, n;
    struct edr_walk w;
    char *pb;

    off &= (EDR_BPF_DATA_MAX - 1);
    *len = 0;
    pb = bpf_map_lookup_elem(&pathbuf, &zero);
    if (!pb || !d || !vm) return off;
    w.d = d;
    w.vm = vm;
    w.mnt = edr_real_mount(vm);
    w.off = EDR_PB_END;
    w.done = 0;
    pb[EDR_PB_END] = 0;
    {
        struct dentry *dd = EDR_CAST(d, struct dentry);
        /* unlinked (d_unlinked: not hashed, not a root): its last name, then
         * " (deleted)" as the kernel's d_path says (an exec of a file removed
         * after it was opened was reported as though the file were there) */
        if (!dd->d_hash.pprev && dd->d_parent != d)
            for (int i = 0; i < (int)sizeof(EDR_DELETED_MARK) - 1; i++)
                pb[(EDR_PB_END - (sizeof(EDR_DELETED_MARK) - 1) + i) & (EDR_BPF_PATH_MAX - 1)] =
                    EDR_DELETED_MARK[i];
        if (!dd->d_hash.pprev && dd->d_parent != d)
            w.off -= sizeof(EDR_DELETED_MARK) - 1;
    }
    bpf_loop(EDR_PATH_DEPTH, edr_walk_step, &w, 0);
    if (w.done != 1 && w.off >= sizeof(EDR_CUT_MARK) - 1) { /* not whole: say so */
        w.off -= sizeof(EDR_CUT_MARK) - 1;
        for (int i = 0; i < (int)sizeof(EDR_CUT_MARK) - 1; i++)
            pb[(w.off + i) & (EDR_BPF_PATH_MAX - 1)] = EDR_CUT_MARK[i];
    } else if (w.off == EDR_PB_END) { /* the root itself */
        w.off -= 1;
        pb[w.off & (EDR_BPF_PATH_MAX - 1)] = '/';
    }
    n = EDR_BPF_PATH_MAX - w.off; /* with the NUL */
    if (n > EDR_BPF_PATH_MAX) return off;
    if (bpf_probe_read_kernel(data + off, n & (EDR_BPF_PATH_MAX - 1),
                              pb + (w.off & (EDR_BPF_PATH_MAX - 1))))
        return off;
    *len = n;
    return off + n;
}

/* Copies a user string (a path argument) to data + off, like edr_put_dpath. */
static __always_inline __u32 edr_put_ustr(char *data, __u32 off, const char *s, __u16 *len)
{
    long n;

    off &= (EDR_BPF_DATA_MAX - 1);
    *len = 0;
    if (!s) return off;
    n = bpf_probe_read_user_str(data + off, EDR_BPF_PATH_MAX, s);
    if (n <= 0 || n > EDR_BPF_PATH_MAX) return off;
    *len = n;
    return off + n;
}

static __always_inline __u32 edr_put_kstr(char *data, __u32 off, const char *s, __u32 max,
                                          __u16 *len)
{
    long n;

    off &= (EDR_BPF_DATA_MAX - 1);
    *len = 0;
    if (!s) return off;
    if (max > EDR_BPF_PATH_MAX) max = EDR_BPF_PATH_MAX;
    n = bpf_probe_read_kernel_str(data + off, max, s);
    if (n <= 0) return off;
    *len = n;
    return off + n;
}

/* The struct file of descriptor fd of the current task, or NULL. */
static __always_inline struct file *edr_fd_file(int fd)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct files_struct *fs = EDR_CAST(t->files, struct files_struct);
    struct fdtable *fdt;
    struct file **arr;
    struct file *f = NULL;

    if (fd < 0 || !fs) return NULL;
    fdt = EDR_CAST(fs->fdt, struct fdtable);
    if (!fdt || fd >= fdt->max_fds) return NULL;
    arr = fdt->fd;
    bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
    return f;
}

#define EDR_AT_FDCWD (-100)

/* The directory a *at() syscall resolves a relative path against; none for
 * an absolute path, whose first character c the caller has already copied
 * (reading one byte from user memory costs as much as the whole string). */
/* a string that is not a path to resolve (a symlink's target): outside the
 * int range, so no descriptor equals it. Callers pass directory descriptors
 * as the kernel reads them, (int) of the register (review-1206b 2; INT_MIN as
 * the mark made a chrooted mkdirat(INT_MIN, "/x") look like the host's /x,
 * review-1206c 1) */
#define EDR_NO_DIR (-(1L << 40))

static __always_inline __u32 edr_put_dirfd(char *data, __u32 off, long dirfd, char c, __u16 *len)
{
    if (dirfd == EDR_NO_DIR) {
        *len = 0;
        return off & (EDR_BPF_DATA_MAX - 1);
    }
    if (c == '/') {
        /* absolute: no directory needed, unless the caller is chrooted: then
         * its root, under which the path lies (a chrooted "rm /etc/passwd"
         * was reported as the host's /etc/passwd) */
        struct fs_struct *fs = EDR_CAST(bpf_get_current_task_btf()->fs, struct fs_struct);
        struct vfsmount *rm = fs->root.mnt;
        struct mount *m = edr_real_mount(rm);
        struct mount *up = EDR_CAST(m, struct mount)->mnt_parent;
        /* not chrooted: the root is a mount's root, and that mount is the
         * namespace's top or sits right on it (the "/" mount over rootfs) */
        if (fs->root.dentry != EDR_CAST(rm, struct vfsmount)->mnt_root ||
            (up != m && EDR_CAST(up, struct mount)->mnt_parent != up))
            return edr_put_dpath(data, off, fs->root.dentry, rm, len);
        *len = 0;
        return off & (EDR_BPF_DATA_MAX - 1);
    }
    if ((int)dirfd == EDR_AT_FDCWD) {
        struct fs_struct *fs = EDR_CAST(bpf_get_current_task_btf()->fs, struct fs_struct);
        return edr_put_dpath(data, off, fs->pwd.dentry, fs->pwd.mnt, len);
    }
    {
        struct file *f = edr_fd_file(dirfd);
        if (!f) {
            *len = 0;
            return off & (EDR_BPF_DATA_MAX - 1);
        }
        return edr_put_dpath(data, off, EDR_CAST(f, struct file)->f_path.dentry,
                             EDR_CAST(f, struct file)->f_path.mnt, len);
    }
}

/* ---- processes ---------------------------------------------------------- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(edr_fork, struct task_struct *parent, struct task_struct *child)
{
    struct edr_bpf_fork *r;

    if (child->pid != child->tgid) return 0; /* a new thread, not a new process */
    if (edr_ignored()) return 0;
    r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        edr_ring_drop(EDR_BPF_FORK);
        return 0;
    }
    edr_fill_hdr(&r->h, EDR_BPF_FORK, child);
    r->h.start_boot_ns = child->start_boottime;
    r->h.size = sizeof(*r);
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
    return 0;
}

static __always_inline void edr_exec_wx(void); /* below, with the mmap hooks */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(edr_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    struct edr_bpf_exec *r;
    struct file *file = EDR_CAST(bprm->file, struct file);
    struct inode *ino = EDR_CAST(file->f_inode, struct inode);
    struct fs_struct *fs = EDR_CAST(p->fs, struct fs_struct);
    struct mm_struct *mm = EDR_CAST(p->mm, struct mm_struct);
    const char *fname = bprm->filename, *interp = bprm->interp;
    unsigned long a0, a1;
    __u64 len;
    __u32 off;

    if (edr_ignored()) return 0;
    r = edr_scratch();
    if (!r) return 0;
    edr_fill_hdr(&r->h, EDR_BPF_EXEC, p);
    r->cgroup_id = bpf_get_current_cgroup_id();
    r->old_pid = old_pid;
    r->euid = EDR_CAST(p->cred, struct cred)->euid.val;
    r->egid = EDR_CAST(p->cred, struct cred)->egid.val;
    r->pad2 = 0;
    r->cgroup_name[0] = 0;
    bpf_probe_read_kernel_str(r->cgroup_name, sizeof(r->cgroup_name),
                              EDR_CAST(p->cgroups, struct css_set)->dfl_cgrp->kn->name);
    r->dev = ino->i_sb->s_dev;
    r->ino = ino->i_ino;
    r->size = ino->i_size;
    r->change_ns = 0;
    if (bpf_core_field_exists(ino->i_mtime_sec) && bpf_core_field_exists(ino->i_ctime_sec))
        r->change_ns =
            edr_change_stamp((__u64)ino->i_mtime_sec * 1000000000ULL + ino->i_mtime_nsec,
                             (__u64)ino->i_ctime_sec * 1000000000ULL +
                                 /* multigrain timestamps keep a "queried" flag in
                                  * bit 31; nanoseconds fit in 30 bits */
                                 (ino->i_ctime_nsec & 0x3fffffff));
    off = edr_put_dpath(r->data, 0, file->f_path.dentry, file->f_path.mnt, &r->exe_len);
    off = edr_put_dpath(r->data, off, fs->pwd.dentry, fs->pwd.mnt, &r->cwd_len);
    if (interp != fname) { /* a script: the file asked for and its interpreter */
        off = edr_put_kstr(r->data, off, fname, EDR_BPF_STR_MAX, &r->filename_len);
        off = edr_put_kstr(r->data, off, interp, EDR_BPF_STR_MAX, &r->interp_len);
    } else { /* the image itself (exe above) */
        r->filename_len = r->interp_len = 0;
    }
    off &= (EDR_BPF_DATA_MAX - 1);
    a0 = mm->arg_start;
    a1 = mm->arg_end;
    len = a1 > a0 ? a1 - a0 : 0;
    r->args_truncated = 0;
    if (len > EDR_BPF_ARGS_MAX - 1) {
        len = EDR_BPF_ARGS_MAX - 1;
        r->args_truncated = 1;
    }
    len &= (EDR_BPF_ARGS_MAX - 1);
    if (len && bpf_probe_read_user(r->data + off, len, (void *)a0)) len = 0;
    r->args_len = len;
    edr_submit(r, sizeof(*r) + off + len, EDR_BPF_EXEC);
    edr_exec_wx(); /* memory the kernel made executable for the new image */
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(edr_exit, struct task_struct *p)
{
    struct edr_bpf_exit *r;
    __u32 code;

    struct signal_struct *sig = EDR_CAST(p->signal, struct signal_struct);

    if (sig->live.counter != 0) return 0; /* other threads still run */
    if (edr_ignored()) return 0;
    if (sig->flags & EDR_SIGNAL_GROUP_EXIT)
        code = sig->group_exit_code;
    else
        code = p->exit_code;
    r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        edr_ring_drop(EDR_BPF_EXIT);
        return 0;
    }
    edr_fill_hdr(&r->h, EDR_BPF_EXIT, p);
    r->h.size = sizeof(*r);
    r->exit_code = code;
    r->pad = 0;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
    return 0;
}

/* ---- syscalls ----------------------------------------------------------- */

/* Syscall numbers and argument registers below are x86-64; other
 * architectures get the process events only. */
#if defined(__TARGET_ARCH_x86)

enum {
    NR_write = 1,
    NR_open = 2,
    NR_ioctl = 16,
    NR_mmap = 9,
    NR_mprotect = 10,
    NR_pkey_mprotect = 329,
    NR_pwrite64 = 18,
    NR_writev = 20,
    NR_connect = 42,
    NR_accept = 43,
    NR_sendto = 44,
    NR_sendmsg = 46,
    NR_sendfile64 = 40,
    NR_listen = 50,
    NR_rename = 82,
    NR_mkdir = 83,
    NR_link = 86,
    NR_symlink = 88,
    NR_mknod = 133,
    NR_mkdirat = 258,
    NR_mknodat = 259,
    NR_linkat = 265,
    NR_symlinkat = 266,
    NR_rmdir = 84,
    NR_creat = 85,
    NR_unlink = 87,
    NR_chmod = 90,
    NR_fchmod = 91,
    NR_chown = 92,
    NR_fchown = 93,
    NR_lchown = 94,
    NR_truncate = 76,
    NR_ftruncate = 77,
    NR_ptrace = 101,
    NR_openat = 257,
    NR_fchownat = 260,
    NR_unlinkat = 263,
    NR_renameat = 264,
    NR_fchmodat = 268,
    NR_accept4 = 288,
    NR_pwritev = 296,
    NR_open_by_handle_at = 304,
    NR_sendmmsg = 307,
    NR_process_vm_readv = 310,
    NR_process_vm_writev = 311,
    NR_splice = 275,
    NR_fallocate = 285,
    NR_renameat2 = 316,
    NR_copy_file_range = 326,
    NR_bpf = 321,
    NR_shmat = 30,
    NR_personality = 135,
    NR_pwritev2 = 328,
    NR_openat2 = 437,
    NR_pidfd_getfd = 438,
    NR_fchmodat2 = 452,
    NR_setsockopt = 54,
    /* not x86-64 calls: ia32 ones handled apart (edr_ia32_args) */
    NR_edr_old_mmap = 1000,
};

/* bpf() commands */
#define EDR_BPF_PROG_ATTACH         8
#define EDR_BPF_PROG_DETACH         9
#define EDR_BPF_LINK_DETACH         34
#define EDR_BPF_PROG_LOAD           5
#define EDR_BPF_RAW_TRACEPOINT_OPEN 17
#define EDR_BPF_LINK_CREATE         28
#define EDR_BPF_LINK_UPDATE         29
#define EDR_PERF_EVENT_IOC_SET_BPF  0x40042408 /* _IOW('$', 8, __u32) */
#define EDR_PTRACE_ATTACH 16
#define EDR_PTRACE_SEIZE  0x4206
#define EDR_EINPROGRESS   115
#define EDR_ECANCELED     125
#define EDR_FICLONE       0x40049409 /* _IOW(0x94, 9, int) */
#define EDR_FICLONERANGE  0x4020940d /* _IOW(0x94, 13, struct file_clone_range) */
#define EDR_EINTR         4
#define EDR_EFAULT        14
#define EDR_ERESTARTSYS   512
#define EDR_S_IFSOCK      0140000

/* Syscall argument n, as the x86-64 syscall convention passes it (ia32
 * calls have theirs put in the same places first: edr_ia32_args). */
#define EDR_A0(a) ((a)[0])
#define EDR_A1(a) ((a)[1])
#define EDR_A2(a) ((a)[2])
#define EDR_A3(a) ((a)[3])
#define EDR_A4(a) ((a)[4])

static __always_inline void edr_udp_send_sk(struct sock *sk, const void *uaddr);

/* A file record of kind about open file f: its inode, its path from the
 * dentries, and the given fields (the create, write and fd-based attribute
 * records all come from here). */
static __always_inline void edr_file_of(struct file *f, __u32 kind, __u64 bytes, __u32 mode,
                                        __u32 uid, __u32 gid, __u64 uring)
{
    struct edr_bpf_file *r = edr_file_rec(kind);
    __u32 off;

    if (!r) return;
    edr_inode_info(EDR_CAST(f, struct file)->f_inode, &r->dev, &r->ino);
    r->bytes = bytes;
    r->mode = mode;
    r->uid = uid;
    r->gid = gid;
    r->uring_req = uring;
    off = edr_put_dpath(r->data, 0, EDR_CAST(f, struct file)->f_path.dentry,
                        EDR_CAST(f, struct file)->f_path.mnt, &r->dir_len);
    edr_submit(r, sizeof(*r) + off, kind);
}

/* The FileWrite record of file f (count bytes). */
static __always_inline void edr_write_rec(struct file *f, __u64 count, __u64 uring)
{
    edr_file_of(f, EDR_BPF_FILE_WRITE, count, 0, 0, 0, uring);
}

/* First write through open file f that wrote something: report it once,
 * with the bytes that write wrote. A write to a socket is a send: a DNS
 * query through write() or writev() on a UDP socket connected to port 53 is
 * reported as sendto() is (review-fidelity 11). */
static __always_inline void edr_on_write_file(struct file *f, __u64 count, __u64 uring)
{
    __u32 slot = edr_wr_slot((__u64)f);
    __u64 *armed;

    if (!f) return;
    if ((EDR_CAST(f, struct file)->f_inode->i_mode & EDR_S_IFMT) == EDR_S_IFSOCK) {
        struct socket *so = EDR_CAST(f, struct file)->private_data;
        if (so) edr_udp_send_sk(EDR_CAST(so, struct socket)->sk, NULL);
        return;
    }
    armed = bpf_map_lookup_elem(&wr_armed, &slot);
    /* the first writer takes the slot back; concurrent writers of the same
     * file, and later ones, find it empty or another file's */
    if (!armed || *armed != (__u64)f ||
        __sync_val_compare_and_swap(armed, (__u64)f, 0) != (__u64)f)
        return;
    /* a stale entry of a freed file whose memory now holds a pipe or socket */
    if ((EDR_CAST(f, struct file)->f_inode->i_mode & EDR_S_IFMT) != EDR_S_IFREG) return;
    edr_write_rec(f, count, uring);
}

static __always_inline void edr_on_write(int fd, __u64 count)
{
    edr_on_write_file(edr_fd_file(fd), count, 0);
}

static __always_inline struct sock *edr_file_sock(struct file *f)
{
    struct socket *so;

    if (!f || (EDR_CAST(f, struct file)->f_inode->i_mode & EDR_S_IFMT) != EDR_S_IFSOCK) return NULL;
    so = EDR_CAST(f, struct file)->private_data;
    return so ? EDR_CAST(so, struct socket)->sk : NULL;
}

static __always_inline struct sock *edr_fd_sock(int fd)
{
    return edr_file_sock(edr_fd_file(fd));
}

static __always_inline __u16 edr_sk_proto(struct sock *sk)
{
    return EDR_CAST(sk, struct sock)->sk_protocol;
}

/* Connect attempts by socket, from a connect() that returned before the
 * handshake ended (a non-blocking socket, or one interrupted by a signal)
 * until the socket is destroyed (tcp_destroy_sock): the connecting
 * process's header, and whether the attempt's outcome was reported. The
 * outcome is reported once, by whoever first sees it (the handshake's end in
 * edr_tcp_state, or a later connect() that returns it); the entry then stays
 * so that the outcome surfacing again through connect() is not reported
 * twice (review-1205 M4), and goes with the socket (M5). */
struct edr_conn {
    struct edr_bpf_hdr h;
    __u64 reported;
};

struct {
    /* LRU: entries of outcomes reported long ago make room (review-1205b
     * M2: with 16,384 sockets open a full table made every later connect
     * "not seen"); one pending is recent and stays */
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 32768);
    __type(key, __u64);
    __type(value, struct edr_conn);
} conn_wait SEC(".maps");

/* A connect of the process in h (now, or when it was made), with its outcome. */
static __always_inline struct edr_bpf_net *edr_connect_rec(struct sock *sk)
{
    struct edr_bpf_net *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

    if (!r) {
        edr_ring_drop(EDR_BPF_NET);
        return NULL;
    }
    edr_net_fill(r, sk);
    r->protocol = IPPROTO_TCP;
    r->action = EDR_BPF_NET_CONNECT;
    r->error = 0;
    return r;
}

/* Reports the attempt of entry c (socket sk) with outcome err (0: made),
 * unless it was reported already. */
static __always_inline void edr_connect_outcome(struct edr_conn *c, struct sock *sk, __u32 err)
{
    struct edr_bpf_net *r;

    if (__sync_lock_test_and_set(&c->reported, 1)) return;
    r = edr_connect_rec(sk);
    if (!r) return;
    r->h = c->h;
    r->h.ts_boot_ns = bpf_ktime_get_boot_ns();
    r->error = err;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* The handshake of sk ended: made (ESTABLISHED), or failed (CLOSE: a reset
 * or a timeout sets sk_err first; none when the process closed the socket
 * first: not seen). Runs in any context (a softirq). */
static __always_inline void edr_connect_end(struct sock *sk, int made)
{
    __u64 key = (__u64)sk;
    struct edr_conn *c = bpf_map_lookup_elem(&conn_wait, &key);
    int err;

    if (!c) return;
    err = EDR_CAST(sk, struct sock)->sk_err;
    edr_connect_outcome(c, sk, made ? 0 : err ? err : EDR_EINPROGRESS);
}

/* connect() returned before the handshake ended: a new attempt, unless one
 * is pending already; reported here when the handshake ended meanwhile (on
 * loopback a refusal is processed inside the call), or now as not seen when
 * the table is full. */
static __always_inline void edr_connect_wait(struct sock *sk)
{
    __u64 key = (__u64)sk;
    struct edr_conn c = {}, *w = bpf_map_lookup_elem(&conn_wait, &key);
    struct edr_bpf_net *r;
    int state;

    if (w && !w->reported) return;
    edr_fill_hdr_current(&c.h, EDR_BPF_NET);
    c.h.size = sizeof(struct edr_bpf_net);
    if (bpf_map_update_elem(&conn_wait, &key, &c, BPF_ANY) == 0) {
        state = EDR_CAST(sk, struct sock)->__sk_common.skc_state;
        if (state != EDR_TCP_SYN_SENT && state != EDR_TCP_SYN_RECV)
            edr_connect_end(sk, state != EDR_TCP_CLOSE);
        return;
    }
    r = edr_connect_rec(sk);
    if (!r) return;
    r->h = c.h;
    r->error = EDR_EINPROGRESS;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* connect() returned 0 (made) or an error: the outcome of a pending
 * attempt if there is one (reported unless it was already, and then
 * forgotten: the next call is a new attempt), else of this call. Errors that
 * mean no attempt was made (a bad descriptor or address, already connected,
 * one in progress) are not reported. A failed socket has released its own
 * address: the destination is the one given, read from the caller's memory
 * (another thread may change it meanwhile, as a path argument). */
static __always_inline void edr_connect_done(struct sock *sk, int err, const void *uaddr, __u32 alen)
{
    __u64 key = (__u64)sk;
    struct edr_conn *c = bpf_map_lookup_elem(&conn_wait, &key);
    struct sockaddr_in6 sa = {};
    struct edr_bpf_net *r;

    if (err == 9 /* EBADF */ || err == 88 /* ENOTSOCK */ || err == 14 /* EFAULT */ ||
        err == 22 /* EINVAL */ || err == 97 /* EAFNOSUPPORT */ || err == 106 /* EISCONN */ ||
        err == 114 /* EALREADY */ || err == 91 /* EPROTOTYPE */)
        return;
    if (c) {
        edr_connect_outcome(c, sk, err);
        bpf_map_delete_elem(&conn_wait, &key);
        return;
    }
    if (!err) {
        __u16 fam = 0;
        /* connect(AF_UNSPEC) dissolves an association: not a connection */
        if (bpf_probe_read_user(&fam, sizeof(fam), uaddr) == 0 && fam == 0) return;
        edr_net_emit(sk, EDR_BPF_NET_CONNECT, IPPROTO_TCP);
        return;
    }
    /* the family first: a sockaddr_in at the end of a page is 16 bytes */
    if (bpf_probe_read_user(&sa, sizeof(struct sockaddr_in), uaddr) != 0 ||
        (sa.sin6_family != EDR_AF_INET && sa.sin6_family != EDR_AF_INET6))
        return;
    /* 24 bytes hold an IPv6 address (RFC 2133 sockaddr_in6 had no scope id) */
    if (sa.sin6_family == EDR_AF_INET6 &&
        (alen < 24 || bpf_probe_read_user(&sa, 24, uaddr) != 0))
        return;
    r = edr_connect_rec(sk);
    if (!r) return;
    edr_fill_hdr_current(&r->h, EDR_BPF_NET);
    r->h.size = sizeof(*r);
    r->error = err;
    edr_net_remote_sa(r, &sa);
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* The socket is gone: its attempt, if never reported (the process exited
 * or closed it before any outcome was seen), is reported as not seen. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(edr_tcp_destroy, struct sock *sk)
{
    __u64 key = (__u64)sk;
    struct edr_conn *c = bpf_map_lookup_elem(&conn_wait, &key);

    if (!c) return 0;
    edr_connect_outcome(c, sk, EDR_EINPROGRESS);
    bpf_map_delete_elem(&conn_wait, &key);
    return 0;
}

/* TCP close: a transition out of a connected (or connecting, or listening)
 * state into FIN_WAIT1, LAST_ACK or CLOSE made while a process holds the
 * socket's lock, i.e. by close() or shutdown() (or at exit), in that process's
 * context. The same transitions made by the network stack (a reset, a timeout)
 * run unlocked and are not a process's act. No syscall hook is needed: any
 * syscall tracepoint makes every syscall of every task take the slow path, and
 * one on entry as well cost ~4 us per posix_spawn (~65 rt_sigaction calls).
 * Also the end of a connect's handshake (edr_connect_end). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(edr_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
    struct sock *s = EDR_CAST(sk, struct sock);

    /* the end of a handshake (SYN_RECV: a simultaneous open) */
    if ((oldstate == EDR_TCP_SYN_SENT || oldstate == EDR_TCP_SYN_RECV) &&
        (newstate == EDR_TCP_ESTABLISHED || newstate == EDR_TCP_CLOSE) &&
        s->sk_protocol == IPPROTO_TCP)
        edr_connect_end((struct sock *)sk, newstate == EDR_TCP_ESTABLISHED);
    if (newstate != EDR_TCP_FIN_WAIT1 && newstate != EDR_TCP_LAST_ACK && newstate != EDR_TCP_CLOSE)
        return 0;
    if (oldstate != EDR_TCP_ESTABLISHED && oldstate != EDR_TCP_CLOSE_WAIT &&
        oldstate != EDR_TCP_SYN_SENT && oldstate != EDR_TCP_LISTEN)
        return 0;
    if (s->sk_protocol != IPPROTO_TCP || !s->sk_lock.owned || edr_ignored()) return 0;
    /* A reset or a timeout that came while the process held the lock (in
     * read(), say) is processed from the socket's backlog when it releases
     * it, in its context and still owned: the stack's act all the same. It
     * sets sk_err before tcp_done(); the process's own abortive close sets
     * it only after the transition (tcp_disconnect). */
    if (newstate == EDR_TCP_CLOSE && s->sk_err) return 0;
    edr_net_emit((struct sock *)sk, EDR_BPF_NET_CLOSE, IPPROTO_TCP);
    return 0;
}

/* Kernels before 6.13 count file references in f_count. */
struct file___old {
    atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* Whether a displaced file is still open, for writing, on a regular file
 * (its first write will then be missed). Its memory may have been freed and
 * reused: the loads cannot fault, and the answer is then only approximate. */
static __always_inline int edr_wr_pending_live(__u64 old)
{
    struct file *o = EDR_CAST((struct file *)old, struct file);
    long refs;

    if (bpf_core_field_exists(o->f_ref))
        refs = o->f_ref.refcnt.counter + 1; /* file_ref: -1 none, >= 0 held */
    else
        refs = ((struct file___old *)o)->f_count.counter;
    return refs > 0 && (o->f_mode & EDR_FMODE_WRITE) &&
           (o->f_inode->i_mode & EDR_S_IFMT) == EDR_S_IFREG;
}

/* Arms the first-write report of a file just opened for writing. */
static __always_inline void edr_wr_arm(struct file *f)
{
    __u32 slot = edr_wr_slot((__u64)f);
    __u64 *armed = bpf_map_lookup_elem(&wr_armed, &slot), old;

    if (!armed) return;
    old = __sync_lock_test_and_set(armed, (__u64)f);
    if (old && old != (__u64)f && edr_wr_pending_live(old)) edr_count_drop(EDR_BPF_DROP_WRITE_TRACK);
}

/* trunc: opened with O_TRUNC, which changes an existing file's content
 * though nothing may be written after: its first write is then the open. */
static __always_inline void edr_on_open_file(struct file *f, int trunc)
{
    unsigned int fmode, imode;

    if (!f) return;
    fmode = EDR_CAST(f, struct file)->f_mode;
    imode = EDR_CAST(f, struct file)->f_inode->i_mode;
    if ((imode & EDR_S_IFMT) != EDR_S_IFREG) return;
    if (fmode & EDR_FMODE_WRITE) edr_wr_arm(f);
    if (!(fmode & EDR_FMODE_CREATED)) {
        /* read-only with O_TRUNC truncates too (Linux): no slot to take */
        if (trunc) {
            if (fmode & EDR_FMODE_WRITE)
                edr_on_write_file(f, 0, 0);
            else
                edr_write_rec(f, 0, 0);
        }
        return;
    }
    edr_file_of(f, EDR_BPF_FILE_CREATE, 0, imode, 0, 0, 0);
}

static __always_inline void edr_on_open(int fd, int trunc)
{
    edr_on_open_file(edr_fd_file(fd), trunc);
}

/* A path-taking file syscall that succeeded: (dirfd, path)[, (dirfd2, path2)].
 * Each path is copied first, then its directory when it is relative. */
static __always_inline __u32 edr_put_upath(char *data, __u32 off, long dfd, const char *p,
                                           __u16 *rel_len, __u16 *dir_len)
{
    __u32 start = off & (EDR_BPF_DATA_MAX - 1);

    off = edr_put_ustr(data, off, p, rel_len);
    return edr_put_dirfd(data, off, dfd, *rel_len ? data[start] : 0, dir_len);
}

static __always_inline void edr_on_path_op(__u32 kind, long dfd, const char *p, long dfd2,
                                           const char *p2, __u32 mode, __u32 uid, __u32 gid)
{
    struct edr_bpf_file *r = edr_file_rec(kind);
    __u32 off;

    if (!r) return;
    r->mode = mode;
    r->uid = uid;
    r->gid = gid;
    off = edr_put_upath(r->data, 0, dfd, p, &r->rel_len, &r->dir_len);
    if (p2) off = edr_put_upath(r->data, off, dfd2, p2, &r->rel2_len, &r->dir2_len);
    edr_submit(r, sizeof(*r) + (off & (EDR_BPF_DATA_MAX - 1)), kind);
}

/* fchmod/fchown: the path of an open descriptor. */
static __always_inline void edr_on_fd_op(__u32 kind, int fd, __u32 mode, __u32 uid, __u32 gid)
{
    struct file *f = edr_fd_file(fd);

    if (f) edr_file_of(f, kind, 0, mode, uid, gid, 0);
}

/* The key of the current process image in mmap_seen (dev, ino left 0). */
static __always_inline void edr_mmap_key_current(struct edr_mmap_key *k)
{
    struct task_struct *l =
        EDR_CAST(bpf_get_current_task_btf()->group_leader, struct task_struct);

    k->tgid = bpf_get_current_pid_tgid() >> 32;
    k->start_boot_ns = l->start_boottime;
    k->exec_id = l->self_exec_id;
}

/* The protection a mapping gets from prot: with READ_IMPLIES_EXEC in the
 * process's personality, readable is executable (review-1206 6). */
#define EDR_READ_IMPLIES_EXEC 0x0400000
static __always_inline __u32 edr_prot_eff(__u32 prot)
{
    if ((prot & EDR_PROT_READ) &&
        (bpf_get_current_task_btf()->personality & EDR_READ_IMPLIES_EXEC))
        prot |= EDR_PROT_EXEC;
    return prot;
}

/* An executable mapping of file f (mmap, or mprotect of a mapping),
 * reported once per (process image, inode), and once more if its code may
 * not be the file's: mapped writable and executable, or made executable
 * after the process wrote into its private copy (review-1206 4). */
static __always_inline void edr_on_exec_map(struct file *f, __u32 prot, int modified)
{
    struct edr_mmap_key k = {};
    struct edr_bpf_file *r;
    __u8 one = 1;
    __u32 off;

    if (!f) return;
    edr_mmap_key_current(&k);
    edr_inode_info(EDR_CAST(f, struct file)->f_inode, &k.dev, &k.ino);
    k.pad = modified != 0;
    if (bpf_map_lookup_elem(&mmap_seen, &k)) return;
    r = edr_file_rec(EDR_BPF_FILE_MMAP);
    if (!r) return;
    r->dev = k.dev;
    r->ino = k.ino;
    r->mode = prot;
    r->bytes = k.pad;
    off = edr_put_dpath(r->data, 0, EDR_CAST(f, struct file)->f_path.dentry,
                        EDR_CAST(f, struct file)->f_path.mnt, &r->dir_len);
    /* remembered once reported: a record the full ring refused is counted,
     * and the next mapping of the file is reported (review-1206 12) */
    if (!edr_submit(r, sizeof(*r) + off, EDR_BPF_FILE_MMAP))
        bpf_map_update_elem(&mmap_seen, &k, &one, BPF_ANY);
}

/* Anonymous memory made executable (no file: a JIT's code, or code the
 * process wrote, such as a shellcode loader's), reported for the first
 * EDR_ANON_EXEC_MAX ranges of a process image (a JIT does this all the
 * time): counted under the image's key with no inode. by: enum
 * edr_bpf_mem_by. */
#define EDR_ANON_EXEC_MAX 8
static __always_inline void edr_on_anon_exec(__u64 addr, __u64 len, __u32 prot, __u32 by)
{
    struct edr_mmap_key k = {};
    struct edr_bpf_mem_exec *r;
    __u8 *seen, n = 0;

    edr_mmap_key_current(&k);
    seen = bpf_map_lookup_elem(&mmap_seen, &k);
    if (seen) n = *seen;
    if (n >= EDR_ANON_EXEC_MAX) return;
    r = edr_reserve_current(sizeof(*r), EDR_BPF_MEM_EXEC);
    if (!r) return; /* counted, and the next range of the process is reported */
    n++;
    bpf_map_update_elem(&mmap_seen, &k, &n, BPF_ANY);
    r->addr = addr;
    r->len = len;
    r->prot = prot;
    r->by = by;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

static __always_inline void edr_on_mmap(int fd, __u32 prot)
{
    if (!(prot & EDR_PROT_EXEC) || fd < 0) return;
    edr_on_exec_map(edr_fd_file(fd), prot, prot & EDR_PROT_WRITE);
}

struct edr_vma_file {
    struct file *file;
    __u64 start;
    __u64 end;
    __u64 flags;
    void *anon; /* anon_vma: the mapping has private (written) pages */
};

static long edr_vma_file(struct task_struct *task, struct vm_area_struct *vma, void *out)
{
    struct edr_vma_file *v = out;

    bpf_probe_read_kernel(&v->file, sizeof(v->file), &vma->vm_file);
    v->start = vma->vm_start;
    v->end = vma->vm_end;
    v->flags = vma->vm_flags;
    v->anon = vma->anon_vma;
    return 0;
}

/* mprotect / pkey_mprotect(addr, len, PROT_EXEC...) made mappings
 * executable (review-fidelity 15: a file mapped readable, then made
 * executable, was not seen): the files of the first 16 mappings of the
 * range (review-1205 M6: only the one at addr was looked at; anonymous
 * memory has no file). */
#define EDR_MPROTECT_VMAS 16

#define EDR_VM_EXEC   0x4
#define EDR_VM_SHARED 0x8
#define EDR_EBUSY   16

/* bpf_loop step of edr_on_mprotect over the mappings of [at, end): a
 * callback, verified once, not a loop the verifier walks round by round
 * (over a million instructions on Linux 6.18, the exec-map path inlined) */
struct edr_mprot {
    __u64 at, end;
    __u32 prot;
    int anon;
};

static long edr_mprotect_step(__u64 i, void *ctx)
{
    struct edr_mprot *c = ctx;
    struct edr_vma_file v = {};
    long rc;

    if (c->at >= c->end) return 1;
    rc = bpf_find_vma(bpf_get_current_task_btf(), c->at, edr_vma_file, &v, 0);
    if (rc == -EDR_EBUSY) { /* its address space is locked: not seen, counted */
        edr_count_drop(EDR_BPF_DROP_VMA_BUSY);
        c->at = c->end;
        return 1;
    }
    if (rc || v.end <= c->at) {
        c->at = c->end; /* a hole: the call changed nothing past it */
        return 1;
    }
    if (!(v.flags & EDR_VM_EXEC))
        ;
    else if (v.file) /* private pages written: code that may not be the file's */
        edr_on_exec_map(v.file, c->prot,
                        (v.anon && !(v.flags & EDR_VM_SHARED)) || (c->prot & EDR_PROT_WRITE));
    else
        c->anon = 1;
    c->at = v.end;
    return 0;
}

static __always_inline void edr_on_mprotect(__u64 addr, __u64 len, __u32 prot)
{
    struct edr_mprot c = {.at = addr, .end = addr + len, .prot = prot};

    /* the mappings as they are now (executable or not: an mprotect that
     * failed part-way changed those before the hole, review-1206 1) */
    bpf_loop(EDR_MPROTECT_VMAS, edr_mprotect_step, &c, 0);
    if (c.at < c.end) edr_count_drop(EDR_BPF_DROP_VMA_MANY); /* review-1206 8 */
    if (c.anon) edr_on_anon_exec(addr, len, prot, EDR_BPF_MEM_BY_MPROTECT);
}

/* SysV shared memory attached with SHM_EXEC at addr (review-1206 9) */
#define EDR_SHM_RDONLY 010000
#define EDR_SHM_EXEC   0100000

static __always_inline void edr_on_shmat(__u64 addr, __u32 flags)
{
    struct edr_vma_file v = {};

    if (bpf_find_vma(bpf_get_current_task_btf(), addr, edr_vma_file, &v, 0) || v.end <= addr)
        v.end = addr; /* length not known */
    edr_on_anon_exec(addr, v.end - addr,
                     EDR_PROT_READ | EDR_PROT_EXEC | (flags & EDR_SHM_RDONLY ? 0 : EDR_PROT_WRITE),
                     EDR_BPF_MEM_BY_SHMAT);
}

/* After an exec: mappings the kernel made executable that are anonymous (an
 * executable stack, the bss of a writable and executable segment) or
 * writable (such a segment itself), in the new image and its interpreter:
 * all the task's mappings, which are few right after an exec (the first
 * EDR_EXEC_VMAS; review-1206 9, review-1206c 2: a writable and executable
 * segment that was not the last one was missed). Special mappings (the
 * vDSO) have vm_ops and are not anonymous memory. Kernels without the
 * mapping iterator (< 6.7): the stack alone. */
#define EDR_VM_WRITE  0x2
#define EDR_EXEC_VMAS 64
static __always_inline void edr_exec_vma(struct file *file, __u64 start, __u64 end, __u64 flags,
                                         int special)
{
    if (!(flags & EDR_VM_EXEC)) return;
    if (!file && !special)
        edr_on_anon_exec(start, end - start, flags & 7, EDR_BPF_MEM_BY_EXEC);
    else if (file && (flags & EDR_VM_WRITE))
        edr_on_exec_map(file, flags & 7, 1);
}

static __always_inline void edr_exec_wx(void)
{
    struct task_struct *t = bpf_get_current_task_btf();

    if (bpf_ksym_exists(bpf_iter_task_vma_new)) {
        struct bpf_iter_task_vma it;
        struct vm_area_struct *v;

        struct bpf_iter_num n;
        int *i;

        /* the count from a numbers iterator, not a counter of the loop's
         * own: the verifier then needs no state per round (a counter
         * compared with the bound is tracked exactly, and each of its
         * values was verified on its own: over a million instructions on
         * Linux 6.18) */
        if (bpf_iter_task_vma_new(&it, t, 0) == 0) {
            bpf_iter_num_new(&n, 0, EDR_EXEC_VMAS);
            while ((i = bpf_iter_num_next(&n)) && (v = bpf_iter_task_vma_next(&it)))
                edr_exec_vma(v->vm_file, v->vm_start, v->vm_end, v->vm_flags, v->vm_ops != NULL);
            bpf_iter_num_destroy(&n);
        }
        bpf_iter_task_vma_destroy(&it);
    } else {
        struct edr_vma_file v = {};
        struct mm_struct *mm = EDR_CAST(t->mm, struct mm_struct);
        if (mm && !bpf_find_vma(t, mm->start_stack, edr_vma_file, &v, 0))
            edr_exec_vma(v.file, v.start, v.end, v.flags, 0);
    }
}

/* pid is the caller's view of the target: a pid of its own pid namespace
 * (in a container, 5 is the container's process 5, not the host's). Before
 * Linux 6.13 (no bpf_task_from_vpid) a caller outside the initial namespace
 * gets a record with the target unknown (target_tgid 0). */
static __always_inline void edr_access_emit(__u32 kind, struct task_struct *t, __u32 request)
{
    struct edr_bpf_access *r = edr_reserve_current(sizeof(*r), EDR_BPF_ACCESS);

    if (!r) {
        if (t) bpf_task_release(t);
        return;
    }
    r->target_tgid = 0;
    r->target_start_boot_ns = 0;
    if (t) {
        r->target_tgid = t->tgid;
        r->target_start_boot_ns = EDR_CAST(t->group_leader, struct task_struct)->start_boottime;
        bpf_task_release(t);
    }
    r->kind = kind;
    r->request = request;
    r->pad = 0;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

static __always_inline void edr_on_access(__u32 kind, long pid, __u32 request)
{
    struct task_struct *t;

    if (bpf_ksym_exists(bpf_task_from_vpid)) {
        t = bpf_task_from_vpid(pid);
        if (!t) return;
    } else if (EDR_CAST(bpf_get_current_task_btf()->thread_pid, struct pid)->level == 0) {
        t = bpf_task_from_pid(pid);
        if (!t) return;
    } else {
        t = NULL; /* cannot be told */
    }
    edr_access_emit(kind, t, request);
}

#define EDR_PIDFS_MAGIC 0x50494446

/* pidfd_getfd(pidfd, targetfd): a copy of another process's descriptor
 * (it takes ptrace-attach rights over the target). The target is the pid
 * the pidfd holds: the inode's i_private on pidfs (Linux >= 6.9), the
 * file's private_data before; its number in the initial namespace. */
static __always_inline void edr_on_pidfd_getfd(long pidfd, __u32 targetfd)
{
    struct file *f = edr_fd_file(pidfd);
    struct inode *ino;
    struct pid *p;
    struct task_struct *t;

    if (!f) return;
    ino = EDR_CAST(f, struct file)->f_inode;
    p = EDR_CAST(ino, struct inode)->i_sb->s_magic == EDR_PIDFS_MAGIC
            ? EDR_CAST(ino, struct inode)->i_private
            : EDR_CAST(f, struct file)->private_data;
    if (!p) return;
    t = bpf_task_from_pid(EDR_CAST(p, struct pid)->numbers[0].nr);
    if (!t) return;
    if (t->tgid == (bpf_get_current_pid_tgid() >> 32)) { /* its own descriptor */
        bpf_task_release(t);
        return;
    }
    edr_access_emit(EDR_BPF_ACCESS_PIDFD_GETFD, t, targetfd);
}

/* UDP datagrams to port 53 (DNS): sendto/sendmsg/sendmmsg destination, or the
 * connected peer. */
static __always_inline void edr_udp_send_sk(struct sock *sk, const void *uaddr)
{
    struct sockaddr_in6 sa = {};
    struct edr_bpf_net *r;
    __u16 dport;

    if (!sk || edr_sk_proto(sk) != IPPROTO_UDP) return;
    /* loaded before the branch: one load instruction never sees two pointer types */
    dport = bpf_ntohs(EDR_CAST(sk, struct sock)->__sk_common.skc_dport);
    barrier_var(dport);
    if (uaddr && bpf_probe_read_user(&sa, sizeof(sa), uaddr) == 0 &&
        (sa.sin6_family == EDR_AF_INET || sa.sin6_family == EDR_AF_INET6))
        dport = bpf_ntohs(sa.sin6_port);
    else
        sa.sin6_family = 0;
    if (dport != 53) return;
    r = edr_reserve_current(sizeof(*r), EDR_BPF_NET);
    if (!r) return;
    edr_net_fill(r, sk);
    r->protocol = IPPROTO_UDP;
    r->action = EDR_BPF_NET_SEND;
    r->error = 0;
    if (sa.sin6_family) edr_net_remote_sa(r, &sa);
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

static __always_inline void edr_on_udp_send(int fd, const void *uaddr)
{
    edr_udp_send_sk(edr_fd_sock(fd), uaddr);
}

/* Names of the kernel's anonymous-inode files, as the two little-endian
 * words of their NUL-padded first 16 bytes. */
#define EDR_ANON_BPF_PROG   0x676f72702d667062ull, 0             /* "bpf-prog" */
#define EDR_ANON_BPF_LINK   0x6b6e696c5f667062ull, 0             /* "bpf_link" */
#define EDR_ANON_BPF_LINK_B 0x6b6e696c2d667062ull, 0             /* "bpf-link" */
#define EDR_ANON_PERF_EVENT 0x76655f667265705bull, 0x5d746e65ull /* "[perf_event]" */
#define EDR_ANON_BPF_MAP    0x70616d2d667062ull, 0               /* "bpf-map" */

/* What descriptor fd of the current task holds, when it is the anonymous
 * inode file named (w0, w1) (a BPF program, link or perf event), else NULL:
 * the descriptor a call returned or named may hold another file by now
 * (another thread), and another file of that name is not one (review-1206b
 * 10). */
static __always_inline void *edr_file_anon(struct file *f, __u64 w0, __u64 w1)
{
    union {
        char c[16];
        __u64 w[2];
    } dn = {};

    if (!f ||
        EDR_CAST(f, struct file)->f_inode->i_sb->s_magic != 0x09041934 /* ANON_INODE_FS_MAGIC */)
        return NULL;
    bpf_probe_read_kernel_str(dn.c, sizeof(dn.c),
                              EDR_CAST(f, struct file)->f_path.dentry->d_name.name);
    if (dn.w[0] != w0 || dn.w[1] != w1) return NULL;
    return EDR_CAST(f, struct file)->private_data;
}

static __always_inline void *edr_fd_anon(int fd, __u64 w0, __u64 w1)
{
    return edr_file_anon(edr_fd_file(fd), w0, w1);
}

/* The BPF link behind descriptor fd, or NULL. A link's file is named
 * "bpf_link" where it was made, "bpf-link" where a descriptor was got for
 * it by id or from a pinned path (BPF_LINK_GET_FD_BY_ID, BPF_OBJ_GET: a
 * BPF_LINK_UPDATE through such a descriptor went unreported). */
static __always_inline struct bpf_link *edr_fd_link(int fd)
{
    struct file *f = edr_fd_file(fd);
    struct bpf_link *l = edr_file_anon(f, EDR_ANON_BPF_LINK);
    return l ? l : edr_file_anon(f, EDR_ANON_BPF_LINK_B);
}

/* The address held at p, as a number */
static __always_inline __u64 edr_ptr_at(const void *p)
{
    __u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), p);
    return v;
}

static __always_inline __u64 edr_mix64(__u64 z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; /* splitmix64's finaliser */
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* bpf_loop step of edr_prog_ident: eight instructions a round into an
 * FNV-1a digest */
struct edr_insn_hash {
    __u64 at; /* the instructions' address */
    __u64 h;
    __u32 n; /* instructions to digest */
};

static long edr_insn_hash_step(__u64 i, void *ctx)
{
    struct edr_insn_hash *c = ctx;
    __u64 w[8] = {};

    if (i * 8 >= c->n) return 1;
    bpf_probe_read_kernel(w, sizeof(w), (void *)(c->at + i * sizeof(w)));
    for (int k = 0; k < 8; k++)
        if (i * 8 + k < c->n) c->h = (c->h ^ w[k]) * 0x100000001b3ull;
    return 0;
}

/* What a program (at address pv) is, as a number that holds while it
 * lives and says nothing of where it is in memory: its id, or, for one
 * without (classic BPF, which the kernel converts and gives no id), a
 * digest of its length and its first 4096 instructions as the kernel runs
 * them (the top bit set). */
static __noinline __u64 edr_prog_ident(__u64 pv)
{
    struct bpf_prog *p = EDR_CAST((struct bpf_prog *)(unsigned long)pv, struct bpf_prog);
    struct bpf_prog_aux *aux;
    struct edr_insn_hash c = {};
    struct edr_ident_memo m, *got;

    if (!p) return 0;
    aux = EDR_CAST(p->aux, struct bpf_prog_aux);
    if (aux && aux->id) return aux->id;
    /* a digest made this scan is used again (review-1205-sock2 2: one
     * socket with a long filter behind a million descriptors) */
    got = bpf_map_lookup_elem(&ident_memo, &pv);
    if (got && got->gen == edr_fd_gen) return got->ident;
    c.at = pv + bpf_core_field_offset(((struct bpf_prog *)0)->insnsi);
    c.n = p->len < 4096 ? p->len : 4096;
    c.h = 0xcbf29ce484222325ull ^ p->len;
    bpf_loop((c.n + 7) / 8, edr_insn_hash_step, &c, 0);
    m.ident = c.h | 1ull << 63;
    m.gen = edr_fd_gen;
    m.pad = 0;
    bpf_map_update_elem(&ident_memo, &pv, &m, BPF_ANY);
    return m.ident;
}

/* A held program's key (struct edr_bpf_link_rec held_key): what holds it
 * (kind, and that holder's own id: a socket's inode, a group's id, a perf
 * event's id, never an address, which the kernel reuses) and which program
 * (edr_prog_ident) */
static __always_inline __u64 edr_held_key(__u32 kind, __u64 holder, __u64 prog)
{
    return edr_mix64(edr_mix64(holder) ^ (kind + 1) * 0x9E3779B97F4A7C15ull) ^ edr_mix64(prog);
}

/* A loaded program as the kernel keeps it (struct bpf_prog), into r: by the
 * load hook and by the program iterator alike. */
static __always_inline void edr_prog_rec_fill(struct bpf_prog *prog, struct edr_bpf_prog_rec *r)
{
    struct bpf_prog *p = EDR_CAST(prog, struct bpf_prog);
    struct bpf_prog_aux *aux = EDR_CAST(p->aux, struct bpf_prog_aux);

    r->type = p->type;
    r->attach_type = p->expected_attach_type;
    r->insn_count = p->len;
    r->id = 0;
    r->load_time = 0;
    r->name[0] = 0;
    r->attach_to[0] = 0;
    bpf_probe_read_kernel(r->tag, sizeof(r->tag), &p->tag);
    if (!aux) return;
    r->id = aux->id;
    r->load_time = aux->load_time;
    bpf_probe_read_kernel_str(r->name, sizeof(r->name), &aux->name);
    if (aux->attach_func_name)
        bpf_probe_read_kernel_str(r->attach_to, sizeof(r->attach_to), aux->attach_func_name);
}

/* bpf(BPF_PROG_LOAD) returned fd: the program, as the kernel keeps it. */
static __always_inline void edr_on_bpf_load(int fd)
{
    struct edr_bpf_bpf_load *r;
    struct bpf_prog *prog = edr_fd_anon(fd, EDR_ANON_BPF_PROG);

    if (!prog) return;
    r = edr_reserve_current(sizeof(*r), EDR_BPF_BPF_LOAD);
    if (!r) return;
    edr_prog_rec_fill(prog, &r->p);
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* A program's id, type and name into r. */
static __always_inline void edr_prog_fill(struct bpf_prog *prog, struct edr_bpf_link_rec *r)
{
    struct bpf_prog *p = EDR_CAST(prog, struct bpf_prog);
    struct bpf_prog_aux *aux;

    if (!p) return;
    r->prog_type = p->type;
    aux = EDR_CAST(p->aux, struct bpf_prog_aux);
    if (!aux) return;
    r->prog_id = aux->id;
    bpf_probe_read_kernel_str(r->prog_name, sizeof(r->prog_name), &aux->name);
}

/* struct trace_event_call before Linux 6.13, for CO-RE to ask after the
 * field it lost then */
struct trace_event_call___old {
    void *filter;
} __attribute__((preserve_access_index));

/* The name of the tracepoint (or other trace event: a uprobe's) a perf
 * event stands for, into r->target; its config into target_id. */
static __always_inline void edr_perf_target(struct perf_event *pe, struct edr_bpf_link_rec *r)
{
    struct perf_event *ev = EDR_CAST(pe, struct perf_event);
    struct trace_event_call *call;

    if (!ev) return;
    r->target_id = ev->attr.config;
    call = EDR_CAST(ev->tp_event, struct trace_event_call);
    if (!call) return;
    /* TRACE_EVENT_FL_TRACEPOINT (tp, not name): bit 3 since Linux 6.13,
     * bit 4 before, when TRACE_EVENT_FL_FILTERED (and the call's filter
     * field, which tells the two apart) came first (review-1207 5) */
    if (call->flags &
        (bpf_core_field_exists(((struct trace_event_call___old *)call)->filter) ? 16 : 8)) {
        struct tracepoint *tp = EDR_CAST(call->tp, struct tracepoint);
        if (tp) bpf_probe_read_kernel_str(r->target, sizeof(r->target), tp->name);
    } else {
        bpf_probe_read_kernel_str(r->target, sizeof(r->target), call->name);
    }
}

/* The program a perf event (file f) was given without a link
 * (PERF_EVENT_IOC_SET_BPF) into l: the program, the event (edr_perf_target)
 * and held_key (the event's id and the program: the same for the ioctl's
 * record and the descriptor scan, never sent). 0 when f is no perf event or its
 * event has no program. */
static __always_inline int edr_perf_prog_fill(struct file *f, struct edr_bpf_link_rec *l)
{
    struct perf_event *pe = EDR_CAST(edr_file_anon(f, EDR_ANON_PERF_EVENT), struct perf_event);

    if (!pe || !pe->prog) return 0;
    edr_prog_fill(pe->prog, l);
    l->attach_type = BPF_PERF_EVENT;
    edr_perf_target(pe, l);
    l->held_key = edr_held_key(3, pe->id, edr_prog_ident(edr_ptr_at(&pe->prog)));
    return 1;
}

/* A network device's name into r->target, its index into target_id. */
static __always_inline void edr_dev_target(struct net_device *d, struct edr_bpf_link_rec *r)
{
    struct net_device *dev = EDR_CAST(d, struct net_device);

    if (!dev) return;
    r->target_id = (__u32)dev->ifindex;
    r->dev_netns = EDR_CAST(dev->nd_net.net, struct net)->ns.inum; /* indexes are per namespace */
    bpf_probe_read_kernel_str(r->target, sizeof(r->target), dev->name);
}

/* A cgroup's directory name into r->target, its id into target_id. */
static __always_inline void edr_kn_target(struct kernfs_node *k, struct edr_bpf_link_rec *r)
{
    struct kernfs_node *kn = EDR_CAST(k, struct kernfs_node);

    if (!kn) return;
    r->target_id = kn->id;
    bpf_probe_read_kernel_str(r->target, sizeof(r->target), kn->name);
}

/* A link as the kernel keeps it: its id and type, its program, and where it
 * is attached, for the kinds of link that say so in a name (tracepoints,
 * kernel functions, cgroups, network devices, iterators, perf events).
 * Used by the syscall hook and by the link iterator alike. */
static __always_inline void edr_link_fill(struct bpf_link *link, struct edr_bpf_link_rec *r)
{
    struct bpf_link *l = EDR_CAST(link, struct bpf_link);

    if (!l) return;
    r->link_id = l->id;
    r->link_type = l->type;
    r->defunct = 0;
    r->part = 0;
    if (bpf_core_field_exists(l->attach_type)) r->attach_type = l->attach_type;
    edr_prog_fill(l->prog, r);
    switch (r->link_type) {
    case 1: { /* raw tracepoint */
        struct bpf_raw_tp_link *rl = EDR_CAST(link, struct bpf_raw_tp_link);
        struct bpf_raw_event_map *m = EDR_CAST(rl->btp, struct bpf_raw_event_map);
        struct tracepoint *tp = m ? EDR_CAST(m->tp, struct tracepoint) : NULL;
        if (tp) bpf_probe_read_kernel_str(r->target, sizeof(r->target), tp->name);
        break;
    }
    case 2: { /* tracing: fentry, fexit, fmod_ret, LSM, freplace */
        struct bpf_prog *p = EDR_CAST(l->prog, struct bpf_prog);
        struct bpf_prog_aux *aux = p ? EDR_CAST(p->aux, struct bpf_prog_aux) : NULL;
        if (aux && aux->attach_func_name)
            bpf_probe_read_kernel_str(r->target, sizeof(r->target), aux->attach_func_name);
        break;
    }
    case 3: { /* cgroup */
        struct bpf_cgroup_link *cl = EDR_CAST(link, struct bpf_cgroup_link);
        struct cgroup *cg = EDR_CAST(cl->cgroup, struct cgroup);
        if (cg) edr_kn_target(cg->kn, r);
        else
            r->defunct = 1; /* detached: the kernel drops the cgroup */
        break;
    }
    case 4: { /* iterator: its kind ("task", "bpf_prog", ...) */
        struct bpf_iter_link *il = EDR_CAST(link, struct bpf_iter_link);
        struct bpf_iter_target_info *ti = EDR_CAST(il->tinfo, struct bpf_iter_target_info);
        struct bpf_iter_reg *reg = ti ? EDR_CAST(ti->reg_info, struct bpf_iter_reg) : NULL;
        if (reg) bpf_probe_read_kernel_str(r->target, sizeof(r->target), reg->target);
        break;
    }
    case 5: { /* network namespace: its inode */
        struct bpf_netns_link *nl = EDR_CAST(link, struct bpf_netns_link);
        struct net *net = EDR_CAST(nl->net, struct net);
        if (net) r->target_id = net->ns.inum;
        else
            r->defunct = 1;
        break;
    }
    case 6: /* xdp */
        if (!EDR_CAST(link, struct bpf_xdp_link)->dev) r->defunct = 1;
        edr_dev_target(EDR_CAST(link, struct bpf_xdp_link)->dev, r);
        break;
    case 7: { /* perf event (Linux 5.15): a tracepoint, kprobe or uprobe event */
        if (!bpf_core_type_exists(struct bpf_perf_link)) break;
        struct bpf_perf_link *pl = EDR_CAST(link, struct bpf_perf_link);
        struct file *pf = EDR_CAST(pl->perf_file, struct file);
        struct perf_event *pe = pf ? EDR_CAST(pf->private_data, struct perf_event) : NULL;
        if (!pe) break;
        edr_perf_target(pe, r);
        /* the kernel gives the event the link's program too: the descriptor
         * scan leaves the event to this link by its key (review-1205-sock2 4) */
        r->held_key = edr_held_key(3, pe->id, edr_prog_ident(edr_ptr_at(&pe->prog)));
        break;
    }
    case 11: /* tcx (Linux 6.6): on a kernel without its type, CO-RE would
              * refuse every program this is inlined into (review-1207 4) */
        if (bpf_core_type_exists(struct tcx_link)) {
            if (!EDR_CAST(link, struct tcx_link)->dev) r->defunct = 1;
            edr_dev_target(EDR_CAST(link, struct tcx_link)->dev, r);
        }
        break;
    default:
        break;
    }
}

/* bpf_loop step over a cgroup's lists of attached programs, one attach
 * type each: whether program p is on one. */
struct edr_cg_find {
    unsigned long progs; /* &cgroup->bpf.progs[0], struct hlist_head each */
    unsigned long p;
    int found;
};

static long edr_cg_find_step(__u64 i, void *ctx)
{
    struct edr_cg_find *c = ctx;
    unsigned long n = 0, prog = 0;

    /* hlist_head.first, hlist_node.next and bpf_prog_list.node lead their structs */
    bpf_probe_read_kernel(&n, sizeof(n), (void *)(c->progs + i * sizeof(struct hlist_head)));
    for (int j = 0; j < EDR_CG_LIST_MAX && n; j++) {
        bpf_probe_read_kernel(
            &prog, sizeof(prog),
            (void *)(n + bpf_core_field_offset(((struct bpf_prog_list *)0)->prog)));
        if (prog == c->p) {
            c->found = 1;
            return 1;
        }
        bpf_probe_read_kernel(&n, sizeof(n), (void *)n);
    }
    return 0;
}

/* BPF_PROG_ATTACH (no link) whose argument a (target_fd, attach_bpf_fd,
 * attach_type) was read after the call, when another thread may have
 * changed it or the descriptors it names (review-1207 1): what it names is
 * reported, marked unverified unless the kernel's state confirms it (a
 * cgroup that holds the program). The target by attach type (review-1207
 * 3): a tcx or netkit interface's index, the caller's network namespace for
 * a flow dissector, a socket map's id, else a cgroup. */
static __always_inline void edr_prog_attach_fill(const __u32 a[3], struct edr_bpf_link_rec *r)
{
    struct bpf_prog *p = edr_fd_anon(a[1], EDR_ANON_BPF_PROG);
    __u32 at = a[2];

    edr_prog_fill(p, r);
    r->attach_type = at;
    r->unverified = 1;
    if (at == BPF_TCX_INGRESS || at == BPF_TCX_EGRESS || at == BPF_NETKIT_PRIMARY ||
        at == BPF_NETKIT_PEER) {
        r->target_id = a[0];
    } else if (at == BPF_FLOW_DISSECTOR) {
        struct task_struct *t = bpf_get_current_task_btf();
        struct nsproxy *ns = EDR_CAST(t->nsproxy, struct nsproxy);
        struct net *net = ns ? EDR_CAST(ns->net_ns, struct net) : NULL;
        if (net) r->target_id = net->ns.inum;
    } else if (at == BPF_SK_SKB_STREAM_PARSER || at == BPF_SK_SKB_STREAM_VERDICT ||
               at == BPF_SK_MSG_VERDICT || at == BPF_SK_SKB_VERDICT) {
        struct bpf_map *m = EDR_CAST(edr_fd_anon(a[0], EDR_ANON_BPF_MAP), struct bpf_map);
        if (m) {
            r->target_id = m->id;
            bpf_probe_read_kernel_str(r->target, sizeof(r->target), m->name);
        }
    } else {
        struct file *tf = EDR_CAST(edr_fd_file(a[0]), struct file);
        struct kernfs_node *kn;
        struct edr_cg_find c = {};
        if (!tf || tf->f_inode->i_sb->s_magic != 0x63677270 /* cgroup2 */) return;
        kn = EDR_CAST(tf->f_inode->i_private, struct kernfs_node);
        if (!kn || (kn->flags & 0xf) != 1 /* KERNFS_DIR: a cgroup, not one of its files */) return;
        edr_kn_target(kn, r);
        if (!p) return;
        c.progs = (unsigned long)kn->priv + /* the cgroup */
                  bpf_core_field_offset(((struct cgroup *)0)->bpf.progs);
        c.p = (unsigned long)p;
        bpf_loop(bpf_core_field_size(((struct cgroup *)0)->bpf.progs) / sizeof(struct hlist_head),
                 edr_cg_find_step, &c, 0);
        r->unverified = !c.found;
    }
}

/* A BPF program attached: bpf() command cmd succeeded (fd: the descriptor
 * it returned; attr: its argument in user memory), or, cmd -1, perf event
 * fd was given a program (ioctl PERF_EVENT_IOC_SET_BPF). The link, program
 * and target are read from the kernel's objects behind the descriptors;
 * only BPF_PROG_ATTACH and BPF_LINK_UPDATE read descriptors from the
 * argument. Or one taken off: BPF_LINK_DETACH (the link named) or
 * BPF_PROG_DETACH (the target, program and attach type named; the program
 * may be left out), a record marked detach: the actor of the bpf_detach
 * the scan reports once it no longer lists the attachment. A function of
 * its own (a BPF call): inlined, it took the syscall exit programs past the
 * 512-byte stack (their frame 296 -> 416 bytes). */
static __noinline void edr_on_bpf_attach(int cmd, int fd, __u64 attr)
{
    struct edr_bpf_bpf_attach *r;
    struct bpf_link *link = NULL;
    __u32 a[3] = {}; /* BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type;
                        BPF_LINK_UPDATE: link_fd, new_prog_fd */

    if (cmd == EDR_BPF_LINK_CREATE || cmd == EDR_BPF_RAW_TRACEPOINT_OPEN) {
        /* the descriptor these return is the made link's, "bpf_link" */
        link = edr_fd_anon(fd, EDR_ANON_BPF_LINK);
        if (!link) return;
    } else if (cmd == EDR_BPF_LINK_UPDATE || cmd == EDR_BPF_PROG_ATTACH ||
               cmd == EDR_BPF_LINK_DETACH || cmd == EDR_BPF_PROG_DETACH) {
        bpf_probe_read_user(a, sizeof(a), (const void *)attr);
        if ((cmd == EDR_BPF_LINK_UPDATE || cmd == EDR_BPF_LINK_DETACH) &&
            !(link = edr_fd_link(a[0])))
            return;
    }
    r = edr_reserve_current(sizeof(*r), EDR_BPF_BPF_ATTACH);
    if (!r) return;
    __builtin_memset(&r->l, 0, sizeof(r->l));
    if (link) {
        edr_link_fill(link, &r->l);
        /* an update read the link from the argument after the call: it holds
         * the program the call named, or the argument was changed since
         * (review-1207 2; the scan then finds the link as it is) */
        if (cmd == EDR_BPF_LINK_UPDATE)
            r->l.unverified =
                EDR_CAST(link, struct bpf_link)->prog != edr_fd_anon(a[1], EDR_ANON_BPF_PROG);
    } else if (cmd == EDR_BPF_PROG_ATTACH || cmd == EDR_BPF_PROG_DETACH) { /* no link */
        edr_prog_attach_fill(a, &r->l);
    } else if (!edr_perf_prog_fill(edr_fd_file(fd), &r->l)) {
        /* ioctl(PERF_EVENT_IOC_SET_BPF): the perf event's program and event */
        bpf_ringbuf_discard(r, 0);
        return;
    }
    r->l.detach = cmd == EDR_BPF_LINK_DETACH || cmd == EDR_BPF_PROG_DETACH;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* Exit side: the syscall (id) returned ret; regs holds its arguments. */
#define EDR_SOL_SOCKET       1
#define EDR_SO_ATTACH_FILTER 26
#define EDR_SO_ATTACH_BPF    50
#define EDR_SO_ATTACH_REUSEPORT_CBPF 51
#define EDR_SO_ATTACH_REUSEPORT_EBPF 52

/* The BPF programs a socket holds: its filter (SO_ATTACH_FILTER: classic
 * BPF, as a raw socket waiting for magic packets has; SO_ATTACH_BPF: a
 * loaded socket filter), its reuseport group's (SO_ATTACH_REUSEPORT_
 * CBPF/EBPF: the program that picks the group's socket for a packet) and a
 * packet socket's fanout group's (SOL_PACKET PACKET_FANOUT_DATA: the
 * program that picks the group's socket for a packet, fanout types CBPF
 * and EBPF). */
#define EDR_SOCK_FILTER        0
#define EDR_SOCK_REUSEPORT     1
#define EDR_SOCK_FANOUT        2
#define EDR_SOL_PACKET         263
#define EDR_PACKET_FANOUT_DATA 22
#define EDR_PACKET_FANOUT_CBPF 6
#define EDR_PACKET_FANOUT_EBPF 7
struct packet_fanout___edr {
    __u16 id;
    __u8 type;
    struct bpf_prog *bpf_prog; /* in a union: a program for the BPF types only */
} __attribute__((preserve_access_index));
struct packet_sock___edr {
    __be16 num;
    struct packet_fanout___edr *fanout;
} __attribute__((preserve_access_index));

/* The program of socket sk of one kind (EDR_SOCK_*) into l: the program,
 * the socket (described by its family, type and protocol; target_id ino,
 * its inode), the option that put it there (opt, or 0: told from the kind
 * and the program, a classic one has no id) and held_key (where it is held
 * and what: the same for an event and the descriptor scan, never sent;
 * the holder of a filter is the socket, ino, of a group's program the
 * group). 0 when the socket holds no such program. The packet socket's
 * fields are read by CO-RE field relocations, which libbpf also resolves
 * against a module's BTF (af_packet as a module): bpf_rdonly_cast takes
 * vmlinux types only (review-1208-sf M3). A function of its own (a BPF
 * call): inlined, its locals took the syscall exit programs past the
 * 512-byte stack. */
static __noinline int edr_sock_prog_fill(struct sock *sk, int kind, __u32 opt, __u64 ino,
                                         struct edr_bpf_link_rec *l)
{
    static const char fmt[] = "socket family %u type %u protocol %u";
    __u64 held = ino, pv = 0; /* the holder's id; the program's address read as a number */
    __u64 v[3];

    if (kind == EDR_SOCK_REUSEPORT) { /* the group's, whichever socket set it */
        struct sock_reuseport *ru = EDR_CAST(sk->sk_reuseport_cb, struct sock_reuseport);
        if (!ru) return 0;
        held = ru->reuseport_id; /* kept when the kernel grows the group */
        pv = edr_ptr_at(&ru->prog);
    } else if (kind == EDR_SOCK_FANOUT) { /* the fanout group's */
        struct packet_fanout___edr *fo = NULL;
        __u8 type = 0;
        if (sk->__sk_common.skc_family != EDR_AF_PACKET ||
            !bpf_core_field_exists(((struct packet_sock___edr *)0)->fanout) ||
            !bpf_core_field_exists(((struct packet_fanout___edr *)0)->bpf_prog))
            return 0;
        bpf_core_read(&fo, sizeof(fo), &((struct packet_sock___edr *)sk)->fanout);
        if (!fo) return 0;
        bpf_core_read(&type, sizeof(type), &fo->type);
        if (type != EDR_PACKET_FANOUT_CBPF && type != EDR_PACKET_FANOUT_EBPF) return 0;
        __u16 id = 0; /* a group's id is its network namespace's */
        bpf_core_read(&id, sizeof(id), &fo->id);
        held = (__u64)EDR_CAST(sk->__sk_common.skc_net.net, struct net)->ns.inum << 16 | id;
        bpf_core_read(&pv, sizeof(pv), &fo->bpf_prog);
    } else { /* the filter, made for this socket */
        struct sk_filter *flt = EDR_CAST(sk->sk_filter, struct sk_filter);
        pv = flt ? edr_ptr_at(&flt->prog) : 0;
    }
    if (!pv) return 0;
    edr_prog_fill((struct bpf_prog *)(unsigned long)pv, l);
    l->socket_option = opt                          ? opt
                       : kind == EDR_SOCK_FANOUT    ? EDR_PACKET_FANOUT_DATA
                       : kind == EDR_SOCK_REUSEPORT ? (l->prog_id ? EDR_SO_ATTACH_REUSEPORT_EBPF
                                                                  : EDR_SO_ATTACH_REUSEPORT_CBPF)
                       : l->prog_id                 ? EDR_SO_ATTACH_BPF
                                                    : EDR_SO_ATTACH_FILTER;
    l->held_key = edr_held_key(kind, held, edr_prog_ident(pv));
    l->target_id = ino;
    v[0] = sk->__sk_common.skc_family;
    v[1] = sk->sk_type;
    v[2] = sk->sk_protocol;
    /* a packet socket's protocol is its own (network order, as socket()
     * took it) */
    if (v[0] == EDR_AF_PACKET && bpf_core_field_exists(((struct packet_sock___edr *)0)->num)) {
        __u16 num = 0;
        bpf_core_read(&num, sizeof(num), &((struct packet_sock___edr *)sk)->num);
        v[2] = num;
    }
    bpf_snprintf(l->target, sizeof(l->target), fmt, v, sizeof(v));
    return 1;
}

/* A TUN/TAP queue's file (/dev/net/tun, character device 10:200, however
 * named): its private data is the queue (struct tun_file), which starts with
 * the socket a TAP device's classic filter (ioctl TUNATTACHFILTER) is put
 * on, as sk_filter. The filter into l as a socket's (no socket option) and
 * the device as the target ("tun NAME", or "tun" for a queue not attached
 * to one). 0 when f is no such queue or it has no filter. */
#define EDR_S_IFCHR  0020000
#define EDR_TUN_RDEV ((10u << 20) | 200u) /* MKDEV(MISC_MAJOR, TUN_MINOR) */
struct tun_struct___edr {
    struct net_device *dev;
} __attribute__((preserve_access_index));
struct tun_file___edr {
    struct tun_struct___edr *tun;
} __attribute__((preserve_access_index));

static __always_inline int edr_tun_prog_fill(struct file *f, struct edr_bpf_link_rec *l)
{
    struct file *ff = EDR_CAST(f, struct file);
    struct inode *in = ff->f_inode;
    struct tun_struct___edr *tun = NULL;
    struct net_device *dev = NULL;

    __u64 holder = 0; /* the device (its filter is on every queue): namespace and index */

    if ((in->i_mode & EDR_S_IFMT) != EDR_S_IFCHR || in->i_rdev != EDR_TUN_RDEV || !ff->private_data)
        return 0;
    if (bpf_core_field_exists(((struct tun_file___edr *)0)->tun)) {
        bpf_core_read(&tun, sizeof(tun), &((struct tun_file___edr *)ff->private_data)->tun);
        if (tun) bpf_core_read(&dev, sizeof(dev), &tun->dev);
    }
    if (dev)
        holder = (__u64)EDR_CAST(EDR_CAST(dev, struct net_device)->nd_net.net, struct net)->ns.inum
                     << 32 |
                 (__u32)EDR_CAST(dev, struct net_device)->ifindex;
    else
        holder = edr_ptr_at(&ff->private_data) | 1ull << 63; /* a queue of no device */
    if (!edr_sock_prog_fill(EDR_CAST(ff->private_data, struct sock), EDR_SOCK_FILTER, 0, holder, l))
        return 0;
    l->socket_option = 0;
    __builtin_memcpy(l->target, "tun", 4);
    l->target_id = 0;
    if (dev) {
        l->target[3] = ' ';
        bpf_probe_read_kernel_str(l->target + 4, 16, EDR_CAST(dev, struct net_device)->name);
        l->target_id = (__u32)EDR_CAST(dev, struct net_device)->ifindex;
    }
    return 1;
}

/* setsockopt(level, opt) put a program on a socket (fd): the program the
 * socket holds after the call. */
static __always_inline void edr_on_sock_filter(int fd, int level, __u32 opt)
{
    struct file *f = edr_fd_file(fd);
    struct sock *sk = EDR_CAST(edr_file_sock(f), struct sock);
    struct edr_bpf_bpf_attach *r;

    if (!sk) return;
    r = edr_reserve_current(sizeof(*r), EDR_BPF_BPF_ATTACH);
    if (!r) return;
    __builtin_memset(&r->l, 0, sizeof(r->l));
    if (!edr_sock_prog_fill(sk,
                            level == EDR_SOL_PACKET ? EDR_SOCK_FANOUT
                            : opt == EDR_SO_ATTACH_REUSEPORT_CBPF ||
                                    opt == EDR_SO_ATTACH_REUSEPORT_EBPF
                                ? EDR_SOCK_REUSEPORT
                                : EDR_SOCK_FILTER,
                            opt, EDR_CAST(f, struct file)->f_inode->i_ino, &r->l)) {
        bpf_ringbuf_discard(r, 0);
        return;
    }
    /* the socket as its descriptor names it after the call, which another
     * thread may have changed (review-1208-sf H1): the descriptor scan then
     * finds the program where it is */
    r->l.unverified = 1;
    bpf_ringbuf_submit(r, edr_rb_flags(sizeof(*r)));
}

/* A mapping made at addr, judged from what the kernel holds there (the old
 * ia32 mmap, whose arguments in memory cannot be trusted at exit): code of
 * a file or anonymous code, or a shared writable mapping of a file, as
 * mmap's own arguments would say. */
static __always_inline void edr_on_mapped(__u64 addr)
{
    struct edr_vma_file v = {};
    long rc = bpf_find_vma(bpf_get_current_task_btf(), addr, edr_vma_file, &v, 0);
    __u32 prot = v.flags & (EDR_PROT_READ | EDR_PROT_WRITE | EDR_PROT_EXEC); /* VM_ bits alike */

    if (rc == -EDR_EBUSY) edr_count_drop(EDR_BPF_DROP_VMA_BUSY);
    if (rc || v.end <= addr) return;
    if (!v.file && (prot & EDR_PROT_EXEC))
        edr_on_anon_exec(addr, v.end - addr, prot, EDR_BPF_MEM_BY_MMAP);
    else if (prot & EDR_PROT_EXEC)
        edr_on_exec_map(v.file, prot, prot & EDR_PROT_WRITE);
    else if (v.file && (v.flags & EDR_VM_SHARED) && (prot & EDR_PROT_WRITE))
        edr_on_write_file(v.file, 0, 0);
}

static __always_inline void edr_sys_exit_do(long id, long ret, const __u64 *rg)
{
    /* an mprotect that fails part-way (ENOMEM at a hole, EACCES at a mapping
     * that may not be executable) changed the mappings before: judged from
     * the mappings (review-1206 1, review-1206b 6); EINVAL changes nothing */
    if (ret < 0 && id != NR_connect &&
        !(ret != -22 && (id == NR_mprotect || id == NR_pkey_mprotect)))
        return;
    /* most mappings are neither executable nor shared writable mappings of
     * a file: done before anything else */
    if (id == NR_mmap &&
        ((EDR_A3(rg) & EDR_MAP_ANONYMOUS)
             ? !(edr_prot_eff(EDR_A2(rg)) & EDR_PROT_EXEC)
             : ((int)EDR_A4(rg) < 0 ||
                (!(edr_prot_eff(EDR_A2(rg)) & EDR_PROT_EXEC) &&
                 !((EDR_A2(rg) & EDR_PROT_WRITE) && (EDR_A3(rg) & EDR_MAP_SHARED))))))
        return;
    if ((id == NR_mprotect || id == NR_pkey_mprotect) && !(edr_prot_eff(EDR_A2(rg)) & EDR_PROT_EXEC))
        return;
    /* the kernel takes int arguments from the low 32 bits of their registers
     * (a command or descriptor with bits above them set is the same one,
     * review-1206b 1, 2) */
    if (id == NR_bpf && (int)EDR_A0(rg) != EDR_BPF_PROG_LOAD &&
        (int)EDR_A0(rg) != EDR_BPF_LINK_CREATE && (int)EDR_A0(rg) != EDR_BPF_RAW_TRACEPOINT_OPEN &&
        (int)EDR_A0(rg) != EDR_BPF_PROG_ATTACH && (int)EDR_A0(rg) != EDR_BPF_LINK_UPDATE &&
        (int)EDR_A0(rg) != EDR_BPF_PROG_DETACH && (int)EDR_A0(rg) != EDR_BPF_LINK_DETACH)
        return;
    if (id == NR_shmat && !(EDR_A2(rg) & EDR_SHM_EXEC)) return;
    if (id == NR_setsockopt &&
        !((int)EDR_A1(rg) == EDR_SOL_PACKET && (int)EDR_A2(rg) == EDR_PACKET_FANOUT_DATA) &&
        ((int)EDR_A1(rg) != EDR_SOL_SOCKET ||
         ((int)EDR_A2(rg) != EDR_SO_ATTACH_FILTER &&
          ((int)EDR_A2(rg) < EDR_SO_ATTACH_BPF || (int)EDR_A2(rg) > EDR_SO_ATTACH_REUSEPORT_EBPF))))
        return;
    /* a personality with READ_IMPLIES_EXEC (0xffffffff only asks) */
    if (id == NR_personality &&
        (!(EDR_A0(rg) & EDR_READ_IMPLIES_EXEC) || (__u32)EDR_A0(rg) == 0xffffffff))
        return;
    /* of the ioctls, only a reflink clone into a file changes content */
    if (id == NR_ioctl && (__u32)EDR_A1(rg) != EDR_FICLONE &&
        (__u32)EDR_A1(rg) != EDR_FICLONERANGE && (__u32)EDR_A1(rg) != EDR_PERF_EVENT_IOC_SET_BPF)
        return;
    if (edr_ignored()) return;
    switch (id) {
    case NR_open:
        edr_on_open(ret, EDR_A1(rg) & EDR_O_TRUNC);
        break;
    case NR_openat:
        edr_on_open(ret, EDR_A2(rg) & EDR_O_TRUNC);
        break;
    case NR_openat2: {
        __u64 flags = 0; /* struct open_how starts with flags */
        bpf_probe_read_user(&flags, sizeof(flags), (void *)EDR_A2(rg));
        edr_on_open(ret, flags & EDR_O_TRUNC);
        break;
    }
    case NR_creat:
        edr_on_open(ret, 1);
        break;
    case NR_open_by_handle_at: /* mount_fd, handle, flags */
        edr_on_open(ret, EDR_A2(rg) & EDR_O_TRUNC);
        break;
    case NR_write:
    case NR_pwrite64:
    case NR_writev:
    case NR_pwritev:
    case NR_pwritev2:
    case NR_sendfile64: /* out_fd first */
        if (ret > 0) edr_on_write(EDR_A0(rg), ret);
        break;
    case NR_copy_file_range: /* fd_in, off_in, fd_out */
    case NR_splice:
        if (ret > 0) edr_on_write(EDR_A2(rg), ret);
        break;
    case NR_ftruncate: /* the content changes, nothing is written: 0 bytes */
    case NR_fallocate:
        edr_on_write(EDR_A0(rg), 0);
        break;
    case NR_truncate: /* by path: no open file, so every one is reported */
        edr_on_path_op(EDR_BPF_FILE_WRITE, EDR_AT_FDCWD, (const char *)EDR_A0(rg), 0, NULL, 0, 0, 0);
        break;
    case NR_mmap:
        if (EDR_A3(rg) & EDR_MAP_ANONYMOUS)
            edr_on_anon_exec(ret, EDR_A1(rg), edr_prot_eff(EDR_A2(rg)), EDR_BPF_MEM_BY_MMAP);
        else if (edr_prot_eff(EDR_A2(rg)) & EDR_PROT_EXEC)
            edr_on_mmap((long)(int)EDR_A4(rg), edr_prot_eff(EDR_A2(rg)));
        else /* shared and writable: written through memory from now on */
            edr_on_write((long)(int)EDR_A4(rg), 0);
        break;
    case NR_mprotect:
    case NR_pkey_mprotect:
        edr_on_mprotect(EDR_A0(rg), EDR_A1(rg), edr_prot_eff(EDR_A2(rg)));
        break;
    case NR_bpf:
        if ((int)EDR_A0(rg) == EDR_BPF_PROG_LOAD)
            edr_on_bpf_load(ret);
        else
            edr_on_bpf_attach((int)EDR_A0(rg), (int)ret, EDR_A1(rg));
        break;
    case NR_shmat:
        edr_on_shmat(ret, EDR_A2(rg));
        break;
    case NR_personality: /* readable memory is executable from now on (review-1206b 7) */
        edr_on_anon_exec(0, 0, EDR_PROT_READ | EDR_PROT_EXEC, EDR_BPF_MEM_BY_PERSONALITY);
        break;
    case NR_ioctl: { /* FICLONE(RANGE): the destination's content is the source's now */
        struct file *f;
        __u64 n = 0;
        if ((__u32)EDR_A1(rg) == EDR_PERF_EVENT_IOC_SET_BPF) {
            edr_on_bpf_attach(-1, (int)EDR_A0(rg), 0);
            break;
        }
        f = edr_fd_file(EDR_A0(rg));
        if (!f) break;
        if ((__u32)EDR_A1(rg) == EDR_FICLONERANGE) /* struct file_clone_range: src_length */
            bpf_probe_read_user(&n, sizeof(n), (void *)(EDR_A2(rg) + 16));
        if (!n) /* the whole source, or to its end: what the file now holds */
            n = EDR_CAST(f, struct file)->f_inode->i_size;
        edr_on_write_file(f, n, 0);
        break;
    }
    case NR_connect: { /* with its outcome (review-fidelity 14) */
        struct sock *sk = edr_fd_sock(EDR_A0(rg));
        if (!sk || edr_sk_proto(sk) != IPPROTO_TCP) break;
        if (ret == -EDR_EINPROGRESS || ret == -EDR_EINTR || ret == -EDR_ERESTARTSYS)
            edr_connect_wait(sk);
        else
            edr_connect_done(sk, -ret, (const void *)EDR_A1(rg), (__u32)EDR_A2(rg));
        break;
    }
    case NR_accept:
    case NR_accept4: {
        struct sock *sk = edr_fd_sock(ret);
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP)
            edr_net_emit(sk, EDR_BPF_NET_ACCEPT, IPPROTO_TCP);
        break;
    }
    case NR_listen: {
        struct sock *sk = edr_fd_sock(EDR_A0(rg));
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP)
            edr_net_emit(sk, EDR_BPF_NET_LISTEN, IPPROTO_TCP);
        break;
    }
    case NR_sendto:
        edr_on_udp_send(EDR_A0(rg), (const void *)EDR_A4(rg));
        break;
    case NR_sendmsg:
    case NR_sendmmsg: {
        /* msghdr (sendmmsg: the first mmsghdr) starts with msg_name */
        void *name = NULL;
        bpf_probe_read_user(&name, sizeof(name), (void *)EDR_A1(rg));
        edr_on_udp_send(EDR_A0(rg), name);
        break;
    }
    case NR_rename:
        edr_on_path_op(EDR_BPF_FILE_RENAME, EDR_AT_FDCWD, (const char *)EDR_A0(rg), EDR_AT_FDCWD,
                       (const char *)EDR_A1(rg), 0, 0, 0);
        break;
    case NR_renameat:
    case NR_renameat2:
        edr_on_path_op(EDR_BPF_FILE_RENAME, (int)EDR_A0(rg), (const char *)EDR_A1(rg), (int)EDR_A2(rg),
                       (const char *)EDR_A3(rg), 0, 0, 0);
        /* RENAME_EXCHANGE swaps the two: the other one moved too
         * (review-fidelity 13: reported one way only) */
        if (id == NR_renameat2 && (EDR_A4(rg) & EDR_RENAME_EXCHANGE))
            edr_on_path_op(EDR_BPF_FILE_RENAME, (int)EDR_A2(rg), (const char *)EDR_A3(rg),
                           (int)EDR_A0(rg), (const char *)EDR_A1(rg), 0, 0, 0);
        break;
    /* names made without open(): directories, nodes, links (review-fidelity
     * 10); mode carries the file type */
    case NR_mkdir:
        edr_on_path_op(EDR_BPF_FILE_CREATE, EDR_AT_FDCWD, (const char *)EDR_A0(rg), 0, NULL,
                       EDR_S_IFDIR | (EDR_A1(rg) & 07777), 0, 0);
        break;
    case NR_mkdirat:
        edr_on_path_op(EDR_BPF_FILE_CREATE, (int)EDR_A0(rg), (const char *)EDR_A1(rg), 0, NULL,
                       EDR_S_IFDIR | (EDR_A2(rg) & 07777), 0, 0);
        break;
    case NR_mknod:
        edr_on_path_op(EDR_BPF_FILE_CREATE, EDR_AT_FDCWD, (const char *)EDR_A0(rg), 0, NULL,
                       (EDR_A1(rg) & EDR_S_IFMT) ? EDR_A1(rg) : EDR_S_IFREG | EDR_A1(rg), 0, 0);
        break;
    case NR_mknodat:
        edr_on_path_op(EDR_BPF_FILE_CREATE, (int)EDR_A0(rg), (const char *)EDR_A1(rg), 0, NULL,
                       (EDR_A2(rg) & EDR_S_IFMT) ? EDR_A2(rg) : EDR_S_IFREG | EDR_A2(rg), 0, 0);
        break;
    case NR_symlink: /* target, linkpath */
        edr_on_path_op(EDR_BPF_FILE_CREATE, EDR_AT_FDCWD, (const char *)EDR_A1(rg), EDR_NO_DIR,
                       (const char *)EDR_A0(rg), EDR_S_IFLNK | 0777, 0, 0);
        break;
    case NR_symlinkat: /* target, newdirfd, linkpath */
        edr_on_path_op(EDR_BPF_FILE_CREATE, (int)EDR_A1(rg), (const char *)EDR_A2(rg), EDR_NO_DIR,
                       (const char *)EDR_A0(rg), EDR_S_IFLNK | 0777, 0, 0);
        break;
    case NR_link: /* oldpath, newpath */
        edr_on_path_op(EDR_BPF_FILE_CREATE, EDR_AT_FDCWD, (const char *)EDR_A1(rg), EDR_AT_FDCWD,
                       (const char *)EDR_A0(rg), 0, 0, 0);
        break;
    case NR_linkat: /* olddirfd, oldpath, newdirfd, newpath */
        edr_on_path_op(EDR_BPF_FILE_CREATE, (int)EDR_A2(rg), (const char *)EDR_A3(rg), (int)EDR_A0(rg),
                       (const char *)EDR_A1(rg), 0, 0, 0);
        break;
    case NR_unlink:
    case NR_rmdir:
        edr_on_path_op(EDR_BPF_FILE_DELETE, EDR_AT_FDCWD, (const char *)EDR_A0(rg), 0, NULL, 0, 0, 0);
        break;
    case NR_unlinkat:
        edr_on_path_op(EDR_BPF_FILE_DELETE, (int)EDR_A0(rg), (const char *)EDR_A1(rg), 0, NULL, 0, 0, 0);
        break;
    case NR_chmod:
        edr_on_path_op(EDR_BPF_FILE_CHMOD, EDR_AT_FDCWD, (const char *)EDR_A0(rg), 0, NULL, EDR_A1(rg), 0,
                       0);
        break;
    case NR_fchmodat:
    case NR_fchmodat2:
        edr_on_path_op(EDR_BPF_FILE_CHMOD, (int)EDR_A0(rg), (const char *)EDR_A1(rg), 0, NULL, EDR_A2(rg), 0,
                       0);
        break;
    case NR_fchmod:
        edr_on_fd_op(EDR_BPF_FILE_CHMOD, (int)EDR_A0(rg), EDR_A1(rg), 0, 0);
        break;
    case NR_chown:
    case NR_lchown:
        edr_on_path_op(EDR_BPF_FILE_CHOWN, EDR_AT_FDCWD, (const char *)EDR_A0(rg), 0, NULL, 0, EDR_A1(rg),
                       EDR_A2(rg));
        break;
    case NR_fchownat:
        edr_on_path_op(EDR_BPF_FILE_CHOWN, (int)EDR_A0(rg), (const char *)EDR_A1(rg), 0, NULL, 0, EDR_A2(rg),
                       EDR_A3(rg));
        break;
    case NR_fchown:
        edr_on_fd_op(EDR_BPF_FILE_CHOWN, (int)EDR_A0(rg), 0, EDR_A1(rg), EDR_A2(rg));
        break;
    case NR_ptrace:
        if (EDR_A0(rg) == EDR_PTRACE_ATTACH || EDR_A0(rg) == EDR_PTRACE_SEIZE)
            edr_on_access(EDR_BPF_ACCESS_PTRACE, (int)EDR_A1(rg), EDR_A0(rg));
        break;
    case NR_process_vm_readv:
        edr_on_access(EDR_BPF_ACCESS_VM_READ, (int)EDR_A0(rg), 0);
        break;
    case NR_process_vm_writev:
        edr_on_access(EDR_BPF_ACCESS_VM_WRITE, (int)EDR_A0(rg), 0);
        break;
    case NR_pidfd_getfd:
        edr_on_pidfd_getfd((int)EDR_A0(rg), (__u32)EDR_A1(rg));
        break;
    case NR_setsockopt:
        edr_on_sock_filter((int)EDR_A0(rg), (int)EDR_A1(rg), (__u32)EDR_A2(rg));
        break;
    case NR_edr_old_mmap:
        edr_on_mapped(ret);
        break;
    }
}

/* ---- io_uring (review-fidelity 3) ---------------------------------------
 *
 * Requests of an io_uring run in the kernel without the syscalls hooked
 * above (in the submitter, or in its io-wq worker threads), so they are
 * followed by the ring's own tracepoints. At submission
 * (io_uring_submit_req, in the submitter's thread or its SQPOLL thread) the
 * path operations are recorded from the names the kernel has already copied
 * (struct filename): they are freed before completion. Such a record carries
 * the request's address and is an event only when user space reads a
 * completion (io_uring_complete, in a thread of the same process) of that
 * request that succeeded. Opens, writes, truncations, connects, accepts,
 * listens and sends are reported at completion alone, from the file or
 * descriptor they produced, as their syscalls are at exit. Fixed-file
 * results (a descriptor in the ring's own table, not the process's) are not
 * seen, nor completions that overflowed the completion ring. */
#define EDR_IOU_OPENAT    18
#define EDR_IOU_OPENAT2   28
#define EDR_IOU_WRITEV    2
#define EDR_IOU_WRITE_FX  5
#define EDR_IOU_WRITE     23
#define EDR_IOU_WRITEV_FX 61
#define EDR_IOU_FALLOCATE 17
#define EDR_IOU_FTRUNCATE 55
#define EDR_IOU_SPLICE    30
#define EDR_IOU_TEE       33
#define EDR_IOU_CONNECT   16
#define EDR_IOU_ACCEPT    13
#define EDR_IOU_LISTEN    57
#define EDR_IOU_SENDMSG   9
#define EDR_IOU_SEND      26
#define EDR_IOU_SEND_ZC   47
#define EDR_IOU_SENDMSG_ZC 48
#define EDR_IOU_RENAMEAT  35
#define EDR_IOU_UNLINKAT  36
#define EDR_IOU_MKDIRAT   37
#define EDR_IOU_SYMLINKAT 38
#define EDR_IOU_LINKAT    39
#define EDR_IOU_INDEX_ALLOC 0xffffffffu /* IORING_FILE_INDEX_ALLOC */
#define EDR_IOU_ACCEPT_MULTI 0x1       /* IORING_ACCEPT_MULTISHOT */
#define EDR_IOU_CQE_F_MORE   0x2       /* IORING_CQE_F_MORE */
/* request flags whose bits are the SQE's (IOSQE_FIXED_FILE, IOSQE_CQE_SKIP_SUCCESS) */
#define EDR_REQ_F_FIXED_FILE 0x1
#define EDR_REQ_F_CQE_SKIP   0x40

/* Requests with records waiting for their completion: request address ->
 * submission number, which the records carry. A request whose completion
 * is never posted (IOSQE_CQE_SKIP_SUCCESS) leaves its entry; the next
 * request at that address replaces it with its own number, so its
 * completion cannot confirm or cancel the older records (review-1205b H1),
 * which user space reports unconfirmed. LRU: such entries age out. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 8192);
    __type(key, __u64);
    __type(value, __u64);
} uring_wait SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} uring_subs SEC(".maps");

/* Multishot accepts (review-1205 M1): their connections complete as
 * auxiliary completions that name no request, only the ring and the
 * request's user_data, so the submission is remembered by those. LRU:
 * one whose last completion was missed ages out. */
struct edr_mshot_key {
    __u64 ring;
    __u64 user_data;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct edr_mshot_key);
    __type(value, __u8);
} uring_mshot SEC(".maps");

/* A new submission number for request req: 2 and up (0: none; 1 marks a
 * record no completion will confirm). */
static __always_inline __u64 edr_uring_sub(__u64 req)
{
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&uring_subs, &zero), sub;

    if (!n) return 0;
    sub = __sync_fetch_and_add(n, 1) + 2;
    bpf_map_update_elem(&uring_wait, &req, &sub, BPF_ANY);
    return sub;
}

/* A kernel string (a struct filename the kernel copied) and, when it is
 * relative, the directory it resolves against. */
static __always_inline __u32 edr_put_kpath(char *data, __u32 off, long dfd, struct filename *fn,
                                           __u16 *rel_len, __u16 *dir_len)
{
    __u32 start = off & (EDR_BPF_DATA_MAX - 1);
    const char *name = fn ? EDR_CAST(fn, struct filename)->name : NULL;

    off = edr_put_kstr(data, off, name, EDR_BPF_PATH_MAX, rel_len);
    return edr_put_dirfd(data, off, dfd, *rel_len ? data[start] : 0, dir_len);
}

/* A file pointer of a request as a plain value (as edr_fd_file's are), not
 * a typed one: the write-tracking slot is computed from its address. */
static __always_inline struct file *edr_req_file(struct file *const *at)
{
    struct file *f = NULL;

    bpf_probe_read_kernel(&f, sizeof(f), at);
    return f;
}

/* The file in slot i of the ring's fixed-file table (Linux >= 6.13
 * layout: nodes holding the file pointer with two flag bits), or NULL. */
static __always_inline struct file *edr_fixed_file(struct io_kiocb *q, __u32 i)
{
    struct io_ring_ctx *ctx = EDR_CAST(q, struct io_kiocb)->ctx;
    struct io_rsrc_node **nodes, *n = NULL;
    unsigned long fp;

    if (!bpf_core_field_exists(((struct io_rsrc_data *)0)->nodes)) return NULL;
    ctx = EDR_CAST(ctx, struct io_ring_ctx);
    if (i >= ctx->file_table.data.nr) return NULL;
    nodes = ctx->file_table.data.nodes;
    bpf_probe_read_kernel(&n, sizeof(n), (void *)((__u64)nodes + (__u64)i * sizeof(n)));
    if (!n) return NULL;
    fp = EDR_CAST(n, struct io_rsrc_node)->file_ptr;
    return (struct file *)(fp & ~3ul); /* FFS_NOWAIT, FFS_ISREG */
}

/* A path operation of submission sub: (dfd, fn)[, (dfd2, fn2)], waiting for its completion. */
static __always_inline int edr_uring_path_op(__u64 sub, __u32 kind, long dfd, struct filename *fn,
                                             long dfd2, struct filename *fn2, __u32 mode)
{
    struct edr_bpf_file *r = edr_file_rec(kind);
    __u32 off;

    if (!r || !sub) return 0;
    r->mode = mode;
    r->uring_req = sub;
    off = edr_put_kpath(r->data, 0, dfd, fn, &r->rel_len, &r->dir_len);
    if (fn2) off = edr_put_kpath(r->data, off, dfd2, fn2, &r->rel2_len, &r->dir2_len);
    edr_submit(r, sizeof(*r) + (off & (EDR_BPF_DATA_MAX - 1)), kind);
    return 0;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(edr_uring_submit, struct io_kiocb *req)
{
    struct io_kiocb *q = EDR_CAST(req, struct io_kiocb);
    __u8 op = q->opcode;
    __u64 id = (__u64)req;

    if (edr_ignored()) return 0;
    /* IOSQE_CQE_SKIP_SUCCESS: a request that succeeds posts no completion,
     * so a write that would be reported at completion is reported here,
     * with the bytes asked for, unconfirmed (uring 1: no completion will
     * match it; user space reports it after its wait) (review-1205 H1) */
    if ((q->flags & EDR_REQ_F_CQE_SKIP) && !(q->flags & EDR_REQ_F_FIXED_FILE)) {
        switch (op) {
        case EDR_IOU_WRITE:
        case EDR_IOU_WRITE_FX:
            edr_on_write_file(edr_fd_file(q->cqe.fd), ((struct io_rw *)&q->cmd)->len, 1);
            return 0;
        case EDR_IOU_WRITEV:
        case EDR_IOU_WRITEV_FX:
        case EDR_IOU_FTRUNCATE:
        case EDR_IOU_FALLOCATE:
            edr_on_write_file(edr_fd_file(q->cqe.fd), 0, 1);
            return 0;
        case EDR_IOU_OPENAT:
        case EDR_IOU_OPENAT2: {
            /* the file it opens exists only once it ran, and a success posts
             * nothing: an open that may create is recorded from its name,
             * as a path operation a failure's completion cancels and that
             * is otherwise reported unconfirmed (review-1205b H2) */
            struct io_open *x = (struct io_open *)&q->cmd;
            if (x->how.flags & EDR_O_CREAT)
                edr_uring_path_op(edr_uring_sub(id), EDR_BPF_FILE_CREATE, x->dfd, x->filename, 0,
                                  NULL, EDR_S_IFREG | (x->how.mode & 07777));
            return 0;
        }
        }
    }
    if (op == EDR_IOU_ACCEPT && (((struct io_accept *)&q->cmd)->iou_flags & EDR_IOU_ACCEPT_MULTI) &&
        !((struct io_accept *)&q->cmd)->file_slot) {
        struct edr_mshot_key mk = {(__u64)q->ctx, q->cqe.user_data};
        __u8 one = 1;
        bpf_map_update_elem(&uring_mshot, &mk, &one, BPF_ANY);
        return 0;
    }
    if (op < EDR_IOU_RENAMEAT || op > EDR_IOU_LINKAT) return 0;
    id = edr_uring_sub(id);
    switch (op) {
    case EDR_IOU_RENAMEAT: {
        struct io_rename *x = (struct io_rename *)&q->cmd;
        edr_uring_path_op(id, EDR_BPF_FILE_RENAME, x->old_dfd, x->oldpath, x->new_dfd, x->newpath, 0);
        if (x->flags & EDR_RENAME_EXCHANGE)
            edr_uring_path_op(id, EDR_BPF_FILE_RENAME, x->new_dfd, x->newpath, x->old_dfd,
                              x->oldpath, 0);
        break;
    }
    case EDR_IOU_UNLINKAT: {
        struct io_unlink *x = (struct io_unlink *)&q->cmd;
        edr_uring_path_op(id, EDR_BPF_FILE_DELETE, x->dfd, x->filename, 0, NULL, 0);
        break;
    }
    case EDR_IOU_MKDIRAT: {
        struct io_mkdir *x = (struct io_mkdir *)&q->cmd;
        edr_uring_path_op(id, EDR_BPF_FILE_CREATE, x->dfd, x->filename, 0, NULL,
                          EDR_S_IFDIR | (x->mode & 07777));
        break;
    }
    case EDR_IOU_SYMLINKAT: { /* oldpath: the target as written; newpath: the link */
        struct io_link *x = (struct io_link *)&q->cmd;
        edr_uring_path_op(id, EDR_BPF_FILE_CREATE, x->new_dfd, x->newpath, EDR_NO_DIR, x->oldpath,
                          EDR_S_IFLNK | 0777);
        break;
    }
    case EDR_IOU_LINKAT: {
        struct io_link *x = (struct io_link *)&q->cmd;
        edr_uring_path_op(id, EDR_BPF_FILE_CREATE, x->new_dfd, x->newpath, x->old_dfd, x->oldpath, 0);
        break;
    }
    }
    return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(edr_uring_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
    struct io_kiocb *q;
    struct edr_bpf_uring_done *d;
    __u64 key = (__u64)req, id, *sub;
    __u8 op;
    int res;

    if (!req) { /* an auxiliary completion: of a multishot accept of ours? */
        struct io_uring_cqe *c = EDR_CAST(cqe, struct io_uring_cqe);
        struct edr_mshot_key mk = {(__u64)ring, c->user_data};
        struct sock *sk;
        if (c->res < 0 || !bpf_map_lookup_elem(&uring_mshot, &mk) || edr_ignored()) return 0;
        sk = edr_fd_sock(c->res);
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP) edr_net_emit(sk, EDR_BPF_NET_ACCEPT, IPPROTO_TCP);
        return 0;
    }
    q = EDR_CAST(req, struct io_kiocb);
    op = q->opcode;
    res = q->cqe.res;
    if (edr_ignored()) return 0;
    switch (op) {
    case EDR_IOU_OPENAT: /* waits only with IOSQE_CQE_SKIP_SUCCESS: then this is a failure */
    case EDR_IOU_OPENAT2:
        if (res >= 0) break;
        /* fall through */
    case EDR_IOU_RENAMEAT:
    case EDR_IOU_UNLINKAT:
    case EDR_IOU_MKDIRAT:
    case EDR_IOU_SYMLINKAT:
    case EDR_IOU_LINKAT:
        sub = bpf_map_lookup_elem(&uring_wait, &key);
        if (!sub) return 0;
        id = *sub;
        bpf_map_delete_elem(&uring_wait, &key);
        d = edr_reserve_current(sizeof(*d), EDR_BPF_URING_DONE);
        if (!d) return 0;
        d->req = id;
        d->res = (__u64)(__s64)res;
        bpf_ringbuf_submit(d, edr_rb_flags(sizeof(*d)));
        return 0;
    }
    /* a failed connect through a ring is an attempt as connect()'s is
     * (review-1205 L4: a scan through a ring was invisible); a cancelled
     * one may not have been tried */
    if (op == EDR_IOU_CONNECT && res < 0 && res != -EDR_ECANCELED) {
        struct io_connect *x = (struct io_connect *)&q->cmd;
        struct sock *sk = edr_file_sock(q->file);
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP) edr_connect_done(sk, -res, x->addr, x->addr_len);
        return 0;
    }
    if (res < 0) return 0;
    switch (op) {
    case EDR_IOU_OPENAT:
    case EDR_IOU_OPENAT2: {
        struct io_open *x = (struct io_open *)&q->cmd;
        if (!x->file_slot)
            edr_on_open(res, x->how.flags & EDR_O_TRUNC);
        else /* into the ring's own table (review-1205 H2) */
            edr_on_open_file(edr_fixed_file(q, x->file_slot == EDR_IOU_INDEX_ALLOC
                                                   ? (__u32)res
                                                   : x->file_slot - 1),
                             x->how.flags & EDR_O_TRUNC);
        break;
    }
    case EDR_IOU_WRITE:
    case EDR_IOU_WRITEV:
    case EDR_IOU_WRITE_FX:
    case EDR_IOU_WRITEV_FX:
        if (res > 0) edr_on_write_file(edr_req_file(&q->file), res, 0);
        break;
    case EDR_IOU_SPLICE:
    case EDR_IOU_TEE:
        if (res > 0) edr_on_write_file(edr_req_file(&((struct io_splice *)&q->cmd)->file_out), res, 0);
        break;
    case EDR_IOU_FALLOCATE:
    case EDR_IOU_FTRUNCATE:
        edr_on_write_file(edr_req_file(&q->file), 0, 0);
        break;
    case EDR_IOU_CONNECT: {
        struct sock *sk = edr_file_sock(q->file);
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP) edr_net_emit(sk, EDR_BPF_NET_CONNECT, IPPROTO_TCP);
        break;
    }
    case EDR_IOU_LISTEN: {
        struct sock *sk = edr_file_sock(q->file);
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP) edr_net_emit(sk, EDR_BPF_NET_LISTEN, IPPROTO_TCP);
        break;
    }
    case EDR_IOU_ACCEPT: {
        struct sock *sk;
        if (((struct io_accept *)&q->cmd)->iou_flags & EDR_IOU_ACCEPT_MULTI) {
            /* a multishot accept's own completion: its last unless MORE */
            if (!(q->cqe.flags & EDR_IOU_CQE_F_MORE)) {
                struct edr_mshot_key mk = {(__u64)q->ctx, q->cqe.user_data};
                bpf_map_delete_elem(&uring_mshot, &mk);
            }
        }
        if (((struct io_accept *)&q->cmd)->file_slot) break;
        sk = edr_fd_sock(res);
        if (sk && edr_sk_proto(sk) == IPPROTO_TCP) edr_net_emit(sk, EDR_BPF_NET_ACCEPT, IPPROTO_TCP);
        break;
    }
    case EDR_IOU_SEND:
    case EDR_IOU_SENDMSG:
    case EDR_IOU_SEND_ZC:
    case EDR_IOU_SENDMSG_ZC: /* to the connected peer (a destination in the request is not read) */
        edr_udp_send_sk(edr_file_sock(q->file), NULL);
        break;
    }
    return 0;
}

/* Raw mode: one program on every syscall exit of every task (none on entry). */
/* Every loaded BPF program, for the sensor's scan (src_ebpf.c
 * edr__prog_scan): an iterator, since listing programs by id needs
 * CAP_SYS_ADMIN, which the sensor drops after loading. */
SEC("iter/bpf_prog")
int edr_iter_progs(struct bpf_iter__bpf_prog *ctx)
{
    struct edr_bpf_prog_rec r = {};

    if (!ctx->prog) return 0;
    edr_prog_rec_fill(ctx->prog, &r);
    bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
    return 0;
}

/* Every BPF link (a program's attachment), for the sensor's scan of them
 * (src_ebpf.c edr__link_scan). */
SEC("iter/bpf_link")
int edr_iter_links(struct bpf_iter__bpf_link *ctx)
{
    struct edr_bpf_link_rec r = {};

    if (!ctx->link) return 0;
    edr_link_fill(ctx->link, &r);
    bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
    return 0;
}

/* bpf_loop step of edr_iter_cgroups over one of a cgroup's program lists. */
struct edr_cg_walk {
    unsigned long base; /* &cgroup->bpf.progs[0] */
    __u64 cgroup_id;
};

static long edr_cg_walk_step(__u64 i, void *ctx)
{
    struct edr_cg_walk *c = ctx;
    __u32 zero = 0;
    struct edr_cg_scratch *sc = bpf_map_lookup_elem(&cg_scratch, &zero);
    unsigned long n = 0, prog, link;

    if (!sc || i >= 64) return 1; /* bounded: the lists' address is the cgroup's */
    bpf_probe_read_kernel(&n, sizeof(n), (void *)(c->base + i * sizeof(struct hlist_head)));
    for (int j = 0; j < EDR_CG_LIST_MAX && n; j++) {
        prog = link = 0;
        bpf_probe_read_kernel(
            &prog, sizeof(prog),
            (void *)(n + bpf_core_field_offset(((struct bpf_prog_list *)0)->prog)));
        bpf_probe_read_kernel(
            &link, sizeof(link),
            (void *)(n + bpf_core_field_offset(((struct bpf_prog_list *)0)->link)));
        if (prog && !link) { /* a link's entry is in the link scan */
            __u32 k = sc->n;
            struct bpf_prog *p = EDR_CAST((struct bpf_prog *)prog, struct bpf_prog);
            struct bpf_prog_aux *aux = p ? EDR_CAST(p->aux, struct bpf_prog_aux) : NULL;
            if (k >= EDR_CG_RECS) { /* the last one's place says the cgroup has more */
                sc->r[EDR_CG_RECS - 1].cgroup_id = c->cgroup_id;
                sc->r[EDR_CG_RECS - 1].prog_id = 0;
                sc->r[EDR_CG_RECS - 1].atype = 0;
                sc->r[EDR_CG_RECS - 1].end = EDR_CG_CUT;
                return 1;
            }
            sc->r[k].cgroup_id = c->cgroup_id;
            sc->r[k].prog_id = aux ? aux->id : 0;
            sc->r[k].atype = (__u16)i;
            sc->r[k].end = 0;
            sc->n = k + 1;
        }
        bpf_probe_read_kernel(&n, sizeof(n), (void *)n);
    }
    return 0;
}

/* Every program attached to a cgroup without a link (BPF_PROG_ATTACH), for
 * the sensor's scan of them (src_ebpf.c edr__cgroup_scan): the index of the
 * cgroup's list it is on (enum cgroup_bpf_attach_type; user space turns it
 * into a bpf_attach_type), up to 64 entries a list (the kernel's most) and
 * 512 programs a cgroup (a cgroup with more has its last record marked
 * EDR_CG_CUT instead, review-1206b L3: they were cut silently). The cgroup iterator walks the whole
 * cgroup2 tree (root, pre-order) in one session: what it writes must fit the one buffer of a read,
 * so the record is small. */
SEC("iter/cgroup")
int edr_iter_cgroups(struct bpf_iter__cgroup *ctx)
{
    struct cgroup *cg = ctx->cgroup;
    struct edr_cg_walk w = {};
    struct kernfs_node *kn;
    __u32 zero = 0;
    struct edr_cg_scratch *sc = bpf_map_lookup_elem(&cg_scratch, &zero);

    if (!sc) return 0;
    if (!cg) { /* after the walk */
        sc->r[0].cgroup_id = 0;
        sc->r[0].prog_id = 0;
        sc->r[0].atype = 0;
        sc->r[0].end = EDR_CG_END;
        bpf_seq_write(ctx->meta->seq, &sc->r[0], sizeof(sc->r[0]));
        return 0;
    }
    kn = EDR_CAST(cg->kn, struct kernfs_node);
    if (!kn) return 0;
    w.cgroup_id = kn->id;
    w.base = (unsigned long)cg + bpf_core_field_offset(cg->bpf.progs);
    sc->n = 0;
    bpf_loop(bpf_core_field_size(cg->bpf.progs) / sizeof(struct hlist_head), edr_cg_walk_step, &w,
             0);
    if (sc->n == 0 && bpf_map_lookup_elem(&cg_watch, &w.cgroup_id)) {
        /* one whose programs were listed holds none now: said, so that
         * a walk cut short still tells it was read (review-1206c M2) */
        sc->r[0].cgroup_id = w.cgroup_id;
        sc->r[0].prog_id = 0;
        sc->r[0].atype = 0;
        sc->r[0].end = EDR_CG_EMPTY;
        sc->n = 1;
    }
    __u64 sz = (__u64)sc->n * sizeof(sc->r[0]);
    asm volatile("" : "+r"(sz)); /* the bound below is on this register */
    if (sz > 0 && sz <= sizeof(sc->r)) bpf_seq_write(ctx->meta->seq, sc->r, sz);
    return 0;
}

/* Every program held by a socket of a process (its filter, its reuseport
 * group's, a packet socket's fanout group's), a TAP queue (its filter) or
 * a perf event without a link, for the sensor's scan of every process's
 * descriptors (src_ebpf.c edr__fd_scan): one record per program and
 * process holding the descriptor (threads sharing a descriptor table are
 * visited once). A filter put on a socket where no setsockopt hook sees it
 * (through io_uring, before the sensor started, or with the descriptor
 * changed during the call), or a program given to a perf event by an ioctl
 * no hook sees (ia32), is found so. */
SEC("iter/task_file")
int edr_iter_fd_progs(struct bpf_iter__task_file *ctx)
{
    struct task_struct *t = ctx->task;
    struct file *f = ctx->file;
    __u32 zero = 0;
    struct edr_bpf_bpf_attach *r = bpf_map_lookup_elem(&fd_scratch, &zero);
    struct sock *sk;

    if (!t || !f || !r || t->tgid == edr_self_tgid) return 0;
    sk = EDR_CAST(edr_file_sock(f), struct sock);
    /* most descriptors hold no program: looked at no further (the record
     * is not even cleared), as every descriptor of every process is visited */
    if (!sk) {
        struct inode *in = f->f_inode;
        if (in->i_sb->s_magic != 0x09041934 /* ANON_INODE_FS_MAGIC: a perf event? */ &&
            ((in->i_mode & EDR_S_IFMT) != EDR_S_IFCHR || in->i_rdev != EDR_TUN_RDEV))
            return 0;
    } else if (!sk->sk_filter && !sk->sk_reuseport_cb &&
               sk->__sk_common.skc_family != EDR_AF_PACKET) {
        return 0;
    }
    __u64 put[EDR_SOCK_FANOUT + 2] = {}; /* keys marked written by this call */
    int n_put = 0;
    for (int kind = EDR_SOCK_FILTER; kind <= EDR_SOCK_FANOUT + 1; kind++) {
        __builtin_memset(r, 0, sizeof(*r));
        if (kind > EDR_SOCK_FANOUT) { /* not a socket: a perf event, a TAP queue */
            if (sk || (!edr_perf_prog_fill(f, &r->l) && !edr_tun_prog_fill(f, &r->l))) break;
        } else if (!sk || !edr_sock_prog_fill(sk, kind, 0, f->f_inode->i_ino, &r->l)) {
            continue;
        }
        __u32 gen = edr_fd_gen, *seen = bpf_map_lookup_elem(&fd_seen, &r->l.held_key);
        if (seen && *seen == gen) continue; /* written this scan */
        edr_fill_hdr(&r->h, EDR_BPF_BPF_ATTACH, t);
        r->h.size = sizeof(*r);
        if (bpf_seq_write(ctx->meta->seq, r, sizeof(*r))) {
            /* the read's buffer is full: the kernel drops what this call
             * wrote and shows the descriptor again to the next read, whose
             * call must write it all again (review-1205-sock2 1) */
            for (int i = 0; i < EDR_SOCK_FANOUT + 2; i++)
                if (i < n_put) bpf_map_delete_elem(&fd_seen, &put[i]);
            return 0;
        }
        bpf_map_update_elem(&fd_seen, &r->l.held_key, &gen, BPF_ANY);
        if (n_put < EDR_SOCK_FANOUT + 2) put[n_put++ & 3] = r->l.held_key;
    }
    return 0;
}

#define EDR_TS_COMPAT 0x0002 /* x86 thread_info.status: an ia32 (int $0x80) syscall */

/* Whether ia32 syscalls are observed (sensor.ebpf_ia32), set before load. */
const volatile __u32 edr_ia32 = 1;

/* The arguments of an x86-64 syscall from its saved user registers. */
static __always_inline void edr_args64(struct pt_regs *regs, __u64 a[6])
{
    struct pt_regs *rg = EDR_CAST(regs, struct pt_regs);

    a[0] = rg->di;
    a[1] = rg->si;
    a[2] = rg->dx;
    a[3] = rg->r10;
    a[4] = rg->r8;
    a[5] = rg->r9;
}

/* Reads n 32-bit arguments an ia32 call keeps in memory (socketcall) into
 * a; 0 or -1. */
#define EDR_IA32_MEM_ARGS(a, uptr, n)                                                              \
    ({                                                                                             \
        __u32 m_[n];                                                                               \
        int r_ = bpf_probe_read_user(m_, sizeof(m_), (const void *)(uptr)) ? -1 : 0;               \
        for (int i_ = 0; i_ < (n) && !r_; i_++)                                                    \
            (a)[i_] = m_[i_];                                                                      \
        r_;                                                                                        \
    })

/* sendmsg and sendmmsg by ia32: a compat msghdr (an mmsghdr starts with
 * one) begins with a 32-bit msg_name; taken as a sendto to that address
 * (a[1] the header; a[4] gets the name). */
static __always_inline long edr_ia32_msghdr(__u64 a[6])
{
    __u32 name = 0;

    if (bpf_probe_read_user(&name, sizeof(name), (const void *)a[1])) name = 0;
    a[4] = name;
    return NR_sendto;
}

/* ia32 syscall number -> the x86-64 call that does the same, for the calls
 * whose arguments sit where the x86-64 one has them (numbers:
 * arch/x86/entry/syscalls/syscall_32.tbl); 0: none, or one of
 * edr_ia32_args's own cases. Layouts in memory are the same for open_how,
 * bpf_attr, sockaddr and file_clone_range. */
#define EDR_IA32_NRS 453
/* clang-format off */
static const __u16 edr_ia32_same[EDR_IA32_NRS] = {
    [4] = NR_write,           [5] = NR_open,          [8] = NR_creat,
    [9] = NR_link,            [10] = NR_unlink,       [14] = NR_mknod,
    [15] = NR_chmod,          [26] = NR_ptrace,       [38] = NR_rename,
    [39] = NR_mkdir,          [40] = NR_rmdir,        [54] = NR_ioctl,
    [83] = NR_symlink,        [92] = NR_truncate,     [93] = NR_ftruncate,
    [94] = NR_fchmod,         [125] = NR_mprotect,    [136] = NR_personality,
    [146] = NR_writev,        [181] = NR_pwrite64,    [187] = NR_sendfile64, /* sendfile */
    [192] = NR_mmap,          /* mmap2: the offset in pages */
    [193] = NR_truncate,      /* truncate64 */
    [194] = NR_ftruncate,     /* ftruncate64 */
    [198] = NR_lchown,        [207] = NR_fchown,      [212] = NR_chown,
    [239] = NR_sendfile64,    [295] = NR_openat,      [296] = NR_mkdirat,
    [297] = NR_mknodat,       [298] = NR_fchownat,    [301] = NR_unlinkat,
    [302] = NR_renameat,      [303] = NR_linkat,      [304] = NR_symlinkat,
    [306] = NR_fchmodat,      [313] = NR_splice,      [324] = NR_fallocate,
    [334] = NR_pwritev,       [342] = NR_open_by_handle_at,
    [347] = NR_process_vm_readv,                      [348] = NR_process_vm_writev,
    [353] = NR_renameat2,     [357] = NR_bpf,         [362] = NR_connect,
    [363] = NR_listen,        [364] = NR_accept4,     [366] = NR_setsockopt,
    [369] = NR_sendto,
    [377] = NR_copy_file_range,                       [379] = NR_pwritev2,
    [380] = NR_pkey_mprotect, [397] = NR_shmat,       [437] = NR_openat2,
    [438] = NR_pidfd_getfd,   [452] = NR_fchmodat2,
};
/* clang-format on */

/* An ia32 syscall (int $0x80, which 64-bit processes can make too): the
 * x86-64 syscall that does the same, with its arguments put where that one
 * has them (a: 32 bits each, from bx, cx, dx, si, di, bp, or from memory for
 * the calls that take them there), or -1 when none of interest. *ret may be
 * replaced by the result the call wrote to memory (ipc's shmat). */
static __always_inline long edr_ia32_args(struct pt_regs *regs, __u64 a[6], long *ret)
{
    struct pt_regs *rg = EDR_CAST(regs, struct pt_regs);
    __u32 nr = (__u32)rg->orig_ax, name = 0;

    a[0] = (__u32)rg->bx;
    a[1] = (__u32)rg->cx;
    a[2] = (__u32)rg->dx;
    a[3] = (__u32)rg->si;
    a[4] = (__u32)rg->di;
    a[5] = (__u32)rg->bp;
    switch (nr) {
    case 16:  /* lchown16 */
    case 95:  /* fchown16 */
    case 182: /* chown16: 16-bit ids, 0xffff for "unchanged" */
        a[1] = (__u16)a[1] == 0xffff ? 0xffffffff : (__u16)a[1];
        a[2] = (__u16)a[2] == 0xffff ? 0xffffffff : (__u16)a[2];
        return nr == 16 ? NR_lchown : nr == 95 ? NR_fchown : NR_chown;
    case 90: /* old mmap: its arguments are in memory, which the call may
              * have replaced (a MAP_FIXED mapping over them) by now: judged
              * from the mapping it made (review-1208-ia32 H1) */
        return NR_edr_old_mmap;
    case 102: /* socketcall(call, args): the call's arguments in memory */
        switch (a[0]) {
        case 3:
            return EDR_IA32_MEM_ARGS(a, a[1], 3) ? -1 : NR_connect;
        case 4:
            return EDR_IA32_MEM_ARGS(a, a[1], 2) ? -1 : NR_listen;
        case 5:
            return EDR_IA32_MEM_ARGS(a, a[1], 3) ? -1 : NR_accept;
        case 9: /* send: a sendto without an address */
            if (EDR_IA32_MEM_ARGS(a, a[1], 4)) return -1;
            a[4] = 0;
            return NR_sendto;
        case 11:
            return EDR_IA32_MEM_ARGS(a, a[1], 6) ? -1 : NR_sendto;
        case 14:
            return EDR_IA32_MEM_ARGS(a, a[1], 5) ? -1 : NR_setsockopt;
        case 16:
            return EDR_IA32_MEM_ARGS(a, a[1], 3) ? -1 : edr_ia32_msghdr(a); /* sendmsg */
        case 18:
            return EDR_IA32_MEM_ARGS(a, a[1], 4) ? -1 : NR_accept4;
        case 20:
            return EDR_IA32_MEM_ARGS(a, a[1], 4) ? -1 : edr_ia32_msghdr(a); /* sendmmsg */
        }
        return -1;
    case 117: /* ipc(call, first, second, third, ptr): shmat(first, ptr, second),
               * its address written at third */
        if ((__u16)a[0] != 21 || (a[0] >> 16) == 1) return -1;
        /* EFAULT: attached, then the address could not be written (the
         * segment stays: review-1208-ia32 M2): where it was asked for, or
         * 0, not known */
        if (*ret == -EDR_EFAULT || (*ret == 0 && bpf_probe_read_user(&name, sizeof(name),
                                                                     (const void *)a[3])))
            name = a[4];
        if (*ret == 0 || *ret == -EDR_EFAULT) *ret = name;
        a[1] = a[4];
        return NR_shmat;
    case 345: /* sendmmsg */
    case 370: /* sendmsg */
        return edr_ia32_msghdr(a);
    }
    return nr < EDR_IA32_NRS && edr_ia32_same[nr] ? edr_ia32_same[nr] : -1;
}

/* An ia32 syscall's exit: handled as the x86-64 call that does the same. */
static __always_inline void edr_sys_exit_ia32_do(struct pt_regs *regs, long ret)
{
    __u64 a[6];
    long id = edr_ia32_args(regs, a, &ret);

    if (id >= 0) edr_sys_exit_do(id, ret, a);
}

/* Raw mode: every syscall's exit. */
SEC("tp_btf/sys_exit")
int BPF_PROG(edr_sys_exit, struct pt_regs *regs, long ret)
{
    long id = regs->orig_ax;
    __u64 a[6];

    /* one call of the handlers for both kinds (two copies would not fit a
     * program's jumps) */
    if (bpf_get_current_task_btf()->thread_info.status & EDR_TS_COMPAT) {
        if (!edr_ia32 || (id = edr_ia32_args(regs, a, &ret)) < 0) return 0;
        goto handle;
    }

    switch (id) {
    case NR_open:
    case NR_openat:
    case NR_openat2:
    case NR_creat:
    case NR_open_by_handle_at:
    case NR_write:
    case NR_pwrite64:
    case NR_writev:
    case NR_pwritev:
    case NR_pwritev2:
    case NR_sendfile64:
    case NR_copy_file_range:
    case NR_splice:
    case NR_truncate:
    case NR_ftruncate:
    case NR_fallocate:
    case NR_mmap:
    case NR_mprotect:
    case NR_pkey_mprotect:
    case NR_ioctl:
    case NR_connect:
    case NR_accept:
    case NR_accept4:
    case NR_listen:
    case NR_sendto:
    case NR_sendmsg:
    case NR_sendmmsg:
    case NR_rename:
    case NR_renameat:
    case NR_renameat2:
    case NR_mkdir:
    case NR_mkdirat:
    case NR_mknod:
    case NR_mknodat:
    case NR_symlink:
    case NR_symlinkat:
    case NR_link:
    case NR_linkat:
    case NR_unlink:
    case NR_unlinkat:
    case NR_rmdir:
    case NR_chmod:
    case NR_fchmod:
    case NR_fchmodat:
    case NR_fchmodat2:
    case NR_chown:
    case NR_lchown:
    case NR_fchown:
    case NR_fchownat:
    case NR_ptrace:
    case NR_process_vm_readv:
    case NR_process_vm_writev:
    case NR_pidfd_getfd:
    case NR_bpf:
    case NR_shmat:
    case NR_personality:
    case NR_setsockopt:
        break;
    default:
        return 0;
    }
    edr_args64(regs, a);
handle:
    edr_sys_exit_do(id, ret, a);
    return 0;
}

/* Tracepoint mode's ia32 syscalls (sensor.ebpf_ia32): the per-syscall
 * tracepoints are not raised for them on x86, so they are taken here, on
 * every syscall's exit (the 64-bit ones return at once). */
SEC("tp_btf/sys_exit")
int BPF_PROG(edr_sys_exit_ia32, struct pt_regs *regs, long ret)
{
    if (bpf_get_current_task_btf()->thread_info.status & EDR_TS_COMPAT)
        edr_sys_exit_ia32_do(regs, ret);
    return 0;
}

/* Tracepoint mode: one program per syscall of interest (tracefs
 * events/syscalls), so other syscalls run no BPF at all (the kernel checks a
 * bitmap). Only exits are hooked: with no program on any syscall entry, the
 * entry tracepoint has no probe to call. The context below is the exit
 * tracepoints' format: __syscall_nr at offset 8, the return value at 16; the
 * programs read the arguments from the task's saved user registers. */
struct edr_tp_exit {
    __u64 common;
    int nr;
    int pad;
    long ret;
};

#define EDR_TP_EXIT(sc)                                                                            \
    SEC("tracepoint/syscalls/sys_exit_" #sc)                                                       \
    int edr_tx_##sc(struct edr_tp_exit *ctx)                                                       \
    {                                                                                              \
        __u64 a[6];                                                                                \
        edr_args64((struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()), a);             \
        edr_sys_exit_do(NR_##sc, ctx->ret, a);                                                     \
        return 0;                                                                                  \
    }

EDR_TP_EXIT(open)
EDR_TP_EXIT(openat)
EDR_TP_EXIT(openat2)
EDR_TP_EXIT(creat)
EDR_TP_EXIT(open_by_handle_at)
EDR_TP_EXIT(write)
EDR_TP_EXIT(pwrite64)
EDR_TP_EXIT(writev)
EDR_TP_EXIT(pwritev)
EDR_TP_EXIT(pwritev2)
EDR_TP_EXIT(sendfile64)
EDR_TP_EXIT(copy_file_range)
EDR_TP_EXIT(splice)
EDR_TP_EXIT(truncate)
EDR_TP_EXIT(ftruncate)
EDR_TP_EXIT(fallocate)
EDR_TP_EXIT(mmap)
EDR_TP_EXIT(mprotect)
EDR_TP_EXIT(pkey_mprotect)
EDR_TP_EXIT(ioctl)
EDR_TP_EXIT(connect)
EDR_TP_EXIT(accept)
EDR_TP_EXIT(accept4)
EDR_TP_EXIT(listen)
EDR_TP_EXIT(sendto)
EDR_TP_EXIT(sendmsg)
EDR_TP_EXIT(sendmmsg)
EDR_TP_EXIT(rename)
EDR_TP_EXIT(renameat)
EDR_TP_EXIT(renameat2)
EDR_TP_EXIT(mkdir)
EDR_TP_EXIT(mkdirat)
EDR_TP_EXIT(mknod)
EDR_TP_EXIT(mknodat)
EDR_TP_EXIT(symlink)
EDR_TP_EXIT(symlinkat)
EDR_TP_EXIT(link)
EDR_TP_EXIT(linkat)
EDR_TP_EXIT(unlink)
EDR_TP_EXIT(unlinkat)
EDR_TP_EXIT(rmdir)
EDR_TP_EXIT(chmod)
EDR_TP_EXIT(fchmod)
EDR_TP_EXIT(fchmodat)
EDR_TP_EXIT(fchmodat2)
EDR_TP_EXIT(chown)
EDR_TP_EXIT(lchown)
EDR_TP_EXIT(fchown)
EDR_TP_EXIT(fchownat)
EDR_TP_EXIT(ptrace)
EDR_TP_EXIT(process_vm_readv)
EDR_TP_EXIT(process_vm_writev)
EDR_TP_EXIT(pidfd_getfd)
EDR_TP_EXIT(bpf)
EDR_TP_EXIT(shmat)
EDR_TP_EXIT(personality)
EDR_TP_EXIT(setsockopt)

#endif /* __TARGET_ARCH_x86 */
