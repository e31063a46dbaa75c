/* Ring-buffer records shared by the eBPF programs (edr.bpf.c) and user space (src_ebpf.c). */
#ifndef EDR_SENSOR_BPF_H
#define EDR_SENSOR_BPF_H

/*
 * Every record starts with edr_bpf_hdr. Variable data (paths, argv) follows
 * the fixed part of each record as NUL-terminated strings packed back to back;
 * the fixed part gives their lengths (each including its NUL, 0 = absent).
 * Times are boot-clock ns (bpf_ktime_get_boot_ns, task->start_boottime).
 * Integer types: this header is included by BPF code (vmlinux.h types) and by
 * user space (stdint); the EDR_U* aliases cover both.
 */
#ifdef __bpf__
typedef __u8 edr_u8;
typedef __u16 edr_u16;
typedef __u32 edr_u32;
typedef __u64 edr_u64;
#else
#include <stdint.h>
typedef uint8_t edr_u8;
typedef uint16_t edr_u16;
typedef uint32_t edr_u32;
typedef uint64_t edr_u64;
#endif

/* What identifies a version of a file's content beside (dev, inode, size),
 * for the executable hash cache: its mtime and its ctime (ns) folded into one
 * value. mtime alone can be set back by the file's owner (touch -r), so a
 * binary changed in place kept the hash of what it was (review-fidelity 5);
 * ctime cannot be set from user space and moves with every change. 0 when
 * the kernel's inode has neither field (then size and inode must do). */
static inline edr_u64 edr_change_stamp(edr_u64 mtime_ns, edr_u64 ctime_ns)
{
    return mtime_ns ^ (ctime_ns * 0x9E3779B97F4A7C15ULL);
}

#define EDR_BPF_PATH_MAX 4096
#define EDR_BPF_NAME_MAX 256
#define EDR_BPF_ARGS_MAX 8192 /* argv bytes kept per exec; longer is truncated */
#define EDR_BPF_STR_MAX  1024 /* execve filename / interpreter strings */
#define EDR_BPF_CGNAME   128
#define EDR_BPF_DATA_MAX 16384 /* variable part of any record */
#define EDR_BPF_SCRATCH  32768 /* per-CPU record scratch (fixed part + data + slack) */

/* Record kinds; also the index of the per-kind drop counter. */
enum edr_bpf_kind {
    EDR_BPF_FORK = 1,
    EDR_BPF_EXEC, /* tp_btf/sched_process_exec: exe, cwd, argv, cgroup */
    EDR_BPF_EXIT,
    EDR_BPF_ACCESS,
    EDR_BPF_FILE_CREATE,
    EDR_BPF_FILE_WRITE,
    EDR_BPF_FILE_RENAME,
    EDR_BPF_FILE_DELETE,
    EDR_BPF_FILE_CHMOD,
    EDR_BPF_FILE_CHOWN,
    EDR_BPF_FILE_MMAP, /* mmap PROT_EXEC of a file, once per (process, inode) */
    EDR_BPF_NET,
    EDR_BPF_URING_DONE, /* completion of an io_uring request a record above waits for */
    EDR_BPF_MEM_EXEC,   /* anonymous memory made executable, once per process */
    EDR_BPF_BPF_LOAD,   /* a BPF program loaded (bpf(BPF_PROG_LOAD)) */
    EDR_BPF_BPF_ATTACH, /* a BPF program attached (link made or updated, BPF_PROG_ATTACH) */
    EDR_BPF_KIND_MAX,
};

/* Drop counters: one per record kind (ring buffer full), then this one:
 * files opened for writing whose first write went unreported because
 * another file took their slot in the write-tracking table while they
 * were open and not yet written. */
#define EDR_BPF_DROP_WRITE_TRACK EDR_BPF_KIND_MAX
/* mprotect(PROT_EXEC) calls whose mappings could not be looked up
 * (bpf_find_vma found the address space locked): what they made executable
 * went unreported. */
#define EDR_BPF_DROP_VMA_BUSY (EDR_BPF_KIND_MAX + 1)
/* mprotect(PROT_EXEC) calls over more mappings than are looked at: those
 * past the first EDR_MPROTECT_VMAS went unexamined. */
#define EDR_BPF_DROP_VMA_MANY (EDR_BPF_KIND_MAX + 2)
#define EDR_BPF_DROP_MAX      (EDR_BPF_KIND_MAX + 3)

/* Network actions, equal to edr.v1 Network.Action. */
enum edr_bpf_net_action {
    EDR_BPF_NET_CONNECT = 1,
    EDR_BPF_NET_ACCEPT = 2,
    EDR_BPF_NET_LISTEN = 3,
    EDR_BPF_NET_CLOSE = 4,
    EDR_BPF_NET_SEND = 5,
};

/* What made anonymous memory executable, equal to edr.v1 FileExec.MemoryBy. */
enum edr_bpf_mem_by {
    EDR_BPF_MEM_BY_MMAP = 1,
    EDR_BPF_MEM_BY_MPROTECT = 2,
    EDR_BPF_MEM_BY_EXEC = 3,
    EDR_BPF_MEM_BY_SHMAT = 4,
    EDR_BPF_MEM_BY_PERSONALITY = 5,
};

/* Process access kinds, equal to edr.v1 ProcessAccess.Kind. */
enum edr_bpf_access_kind {
    EDR_BPF_ACCESS_PTRACE = 1,
    EDR_BPF_ACCESS_VM_READ = 2,
    EDR_BPF_ACCESS_VM_WRITE = 3,
    EDR_BPF_ACCESS_PIDFD_GETFD = 5,
};

struct edr_bpf_hdr {
    edr_u32 kind;
    edr_u32 size;           /* whole record in bytes */
    edr_u64 ts_boot_ns;     /* when it happened */
    edr_u64 start_boot_ns;  /* actor's thread-group leader start_boottime */
    edr_u64 pstart_boot_ns; /* real parent's leader start_boottime */
    edr_u32 tgid;
    edr_u32 tid;
    edr_u32 ppid; /* real parent tgid */
    edr_u32 uid;
    edr_u32 gid;
    edr_u32 pad;
};

/* EDR_BPF_FORK: the header describes the child (actor = child, parent = forker). */
struct edr_bpf_fork {
    struct edr_bpf_hdr h;
};

/* EDR_BPF_EXEC: data = exe path, cwd, filename as passed to execve,
 * interpreter (differs from filename for scripts), argv bytes (NUL separated). */
struct edr_bpf_exec {
    struct edr_bpf_hdr h;
    edr_u64 cgroup_id;
    edr_u64 dev; /* of the executable image */
    edr_u64 ino;
    edr_u64 change_ns; /* edr_change_stamp() of the image */
    edr_u64 size;
    edr_u32 old_pid;
    edr_u32 args_truncated;
    edr_u16 exe_len;
    edr_u16 cwd_len;
    edr_u16 filename_len;
    edr_u16 interp_len;
    edr_u32 args_len;
    edr_u32 euid; /* effective ids after the exec (h.uid/gid are the real ones) */
    edr_u32 egid;
    edr_u32 pad2;
    char cgroup_name[EDR_BPF_CGNAME];
    char data[];
};

/* EDR_BPF_EXIT: the whole thread group ended. */
struct edr_bpf_exit {
    struct edr_bpf_hdr h;
    edr_u32 exit_code; /* wait status: (code << 8) | signal */
    edr_u32 pad;
};

/* EDR_BPF_ACCESS: the actor attached to / read / wrote another process. */
struct edr_bpf_access {
    struct edr_bpf_hdr h;
    edr_u64 target_start_boot_ns;
    edr_u32 target_tgid;
    edr_u32 kind;    /* enum edr_bpf_access_kind */
    edr_u32 request; /* ptrace request */
    edr_u32 pad;
};

/* EDR_BPF_MEM_EXEC: anonymous memory (no file) mapped executable by mmap
 * or made executable by mprotect / pkey_mprotect: the range and the
 * protection asked for. */
struct edr_bpf_mem_exec {
    struct edr_bpf_hdr h;
    edr_u64 addr;
    edr_u64 len;
    edr_u32 prot;
    edr_u32 by; /* enum edr_bpf_mem_by, equal to edr.v1 FileExec.MemoryBy */
};

/* One loaded BPF program, a record of the kernel's struct bpf_prog: what the
 * iterator edr_iter_progs writes to user space, and the body of an
 * EDR_BPF_BPF_LOAD record. Strings are NUL-terminated within their arrays. */
struct edr_bpf_prog_rec {
    edr_u32 id;
    edr_u32 type;
    edr_u32 attach_type;
    edr_u32 insn_count;
    edr_u64 load_time; /* boot-clock ns */
    edr_u8 tag[8];
    char name[16];
    char attach_to[64];
};

/* EDR_BPF_BPF_LOAD: the program a successful BPF_PROG_LOAD returned. */
struct edr_bpf_bpf_load {
    struct edr_bpf_hdr h;
    struct edr_bpf_prog_rec p;
};

/* A BPF program's attachment, as the kernel keeps it: the link (link_id 0
 * when attached without one, by BPF_PROG_ATTACH), its program and where it
 * is attached (edr.v1 BpfAttach). Written by the link iterator
 * edr_iter_links for the sensor's scan, and the body of an EDR_BPF_BPF_ATTACH
 * record. */
struct edr_bpf_link_rec {
    edr_u32 link_id;
    edr_u32 link_type;   /* enum bpf_link_type */
    edr_u32 attach_type; /* enum bpf_attach_type */
    edr_u32 prog_id;
    edr_u32 prog_type;
    edr_u16 unverified;    /* 1: program and target as the call's argument named them after
                              the call, not found so in the kernel's state */
    edr_u16 socket_option; /* put on a socket by setsockopt with this option (26
                              SO_ATTACH_FILTER, 50 SO_ATTACH_BPF, 51, 52 the reuseport
                              ones); target_id its inode */
    edr_u32 dev_netns;     /* an interface's target: its network namespace's inode */
    edr_u32 holder;        /* descriptor scan (user space): 1 + the index of the header of
                              a process holding it in the scan's list; else 0 */
    edr_u64 target_id;  /* cgroup id, ifindex, netns inode, map id, perf event config */
    edr_u64 held_key;   /* a socket's or a perf event's program (no link): a digest of where
                           it is held (the socket's filter, its reuseport group, the perf
                           event) and of the program, the same in an event and in the
                           descriptor scan; else 0 */
    char prog_name[16];
    char target[256];
    edr_u32 defunct; /* a link the kernel detached (BPF_LINK_DETACH, its interface,
                        cgroup or namespace gone) that a descriptor still holds */
    edr_u32 part;    /* user space: where its scan listed it (a tc classifier's parent, TC_H_*);
                        else 0 */
    edr_u32 detach;  /* a hook's record of BPF_LINK_DETACH or BPF_PROG_DETACH: taken off */
    edr_u32 pad_e;
};

/* One program attached to a cgroup without a link, as the cgroup iterator
 * edr_iter_cgroups writes it (small: the iterator writes one buffer of 32
 * KiB in all; the program's name and type come from the program scan);
 * after the walk, one record with end EDR_CG_END (a walk cut short by that
 * buffer has none). A cgroup's records are written at once: the buffer holds
 * all of them or none. */
struct edr_bpf_cg_rec {
    edr_u64 cgroup_id;
    edr_u32 prog_id;
    edr_u16 atype; /* enum cgroup_bpf_attach_type: the cgroup's list */
    edr_u16 end;   /* EDR_CG_END: the walk's last record; EDR_CG_CUT: the cgroup's, in place
                      of its last program: it has more than EDR_CG_RECS; EDR_CG_EMPTY: a
                      cgroup in cg_watch that holds none (prog_id 0) */
};
#define EDR_CG_END   1
#define EDR_CG_CUT   2
#define EDR_CG_EMPTY 3
/* Cgroups the sensor listed programs of (the cg_watch map, filled by user
 * space): the walk says when it met one holding none now. */
#define EDR_CG_WATCH 4096

/* Programs on one cgroup's lists the cgroup iterator writes at most (and
 * entries of one list it walks: the kernel's BPF_CGROUP_MAX_PROGS). */
#define EDR_CG_RECS     512
#define EDR_CG_LIST_MAX 64

struct edr_bpf_bpf_attach {
    struct edr_bpf_hdr h;
    struct edr_bpf_link_rec l;
};

/* EDR_BPF_FILE_*: data = path pieces, in the order rel, dir, rel2, dir2. A
 * path is dir + "/" + rel: rel is the string the process passed (may be
 * empty, relative, or absolute, in which case dir is absent), dir is absolute
 * (from the kernel's dentries). Rename: (rel, dir) of the old path, then
 * (rel2, dir2) of the new one. */
struct edr_bpf_file {
    struct edr_bpf_hdr h;
    edr_u64 dev;
    edr_u64 ino;
    edr_u64 bytes; /* FILE_WRITE: size of the first write; MMAP: 1 for code that may
                    * not be the file's (writable, or private pages written) */
    edr_u32 mode;  /* CREATE: i_mode; CHMOD: new mode; MMAP: prot */
    edr_u32 uid;   /* CHOWN (-1: unchanged) */
    edr_u32 gid;   /* CHOWN (-1: unchanged) */
    edr_u16 dir_len;
    edr_u16 rel_len;
    edr_u16 dir2_len;
    edr_u16 rel2_len;
    edr_u32 pad;
    /* io_uring path operations (rename, unlink, mkdir, symlink, link) are
     * recorded at submission, where the kernel holds the names it copied,
     * and are events once an EDR_BPF_URING_DONE record of the same
     * submission says they succeeded (or, without one, after a wait): the
     * submission's number (never reused), else 0 */
    edr_u64 uring_req;
    char data[];
};

/* EDR_BPF_URING_DONE: the request of waiting records completed with res
 * (negative: an errno, the operation did not happen). */
struct edr_bpf_uring_done {
    struct edr_bpf_hdr h;
    edr_u64 req; /* the submission number its records carry */
    edr_u64 res; /* the CQE's result, sign-extended */
};

/* EDR_BPF_NET: addresses in network order; IPv4 in the first 4 bytes. */
struct edr_bpf_net {
    struct edr_bpf_hdr h;
    edr_u8 local_ip[16];
    edr_u8 remote_ip[16];
    edr_u16 local_port;  /* host order */
    edr_u16 remote_port; /* host order */
    edr_u16 family;      /* AF_INET or AF_INET6 */
    edr_u8 protocol;     /* IPPROTO_TCP or IPPROTO_UDP */
    edr_u8 action;       /* enum edr_bpf_net_action */
    edr_u32 error;       /* CONNECT: 0 made, else the errno it failed with (EINPROGRESS: not seen) */
    edr_u32 netns;       /* the socket's network namespace (inode number) */
};

/* Largest record user space accepts. */
#define EDR_BPF_REC_MAX EDR_BPF_SCRATCH

#endif
