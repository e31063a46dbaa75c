/* Process cache of the sensor: entity ids, parents and enrichment (exe hash, user names, container)
 * per live process. */
#ifndef EDR_SENSOR_PROC_CACHE_H
#define EDR_SENSOR_PROC_CACHE_H

#include "edr/identity.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Entity ids: edr_entity_id(host, boot, tgid, start) where start is the
 * thread-group leader's start_boottime truncated to the clock tick
 * (1e9 / sysconf(_SC_CLK_TCK) ns, 10 ms). /proc/PID/stat only gives ticks, so
 * this truncation makes ids of processes seeded from /proc, seen by eBPF, or
 * by any other /proc-based source agree. Use edr_proc_start_key().
 */
uint64_t edr_proc_start_key(uint64_t start_boot_ns);

#define EDR_PROC_EXE_MAX 256

typedef struct edr_proc {
    uint32_t tgid;
    uint8_t state; /* internal: 0 free, 1 used (next to tgid: a probe reads one cache line) */
    uint32_t ppid;
    uint64_t start_key;     /* edr_proc_start_key(start_boottime) */
    uint64_t start_boot_ns; /* as reported (exact from eBPF, tick-precise when seeded) */
    uint8_t id[EDR_ID_LEN];
    uint8_t parent_id[EDR_ID_LEN];
    int has_parent;
    uint32_t uid, gid;
    uint64_t cgroup_id;
    char exe[EDR_PROC_EXE_MAX];
    char container_id[65];
} edr_proc_t;

typedef struct edr_proc_cache edr_proc_cache_t;

/* A cache for host/boot ids, holding up to capacity processes (rounded up to
 * a power of two), with a worker thread hashing executables. NULL when out of
 * memory or the thread cannot start. Caller frees with edr_proc_cache_destroy(). */
edr_proc_cache_t *edr_proc_cache_new(const uint8_t host_id[EDR_ID_LEN],
                                     const uint8_t boot_id[EDR_ID_LEN], size_t capacity);
/* Stops the hashing thread and frees everything; accepts NULL. */
void edr_proc_cache_destroy(edr_proc_cache_t *c);

/* Entity id of (tgid, start_boot_ns) on this host and boot. */
void edr_proc_cache_entity_id(const edr_proc_cache_t *c, uint32_t tgid, uint64_t start_boot_ns,
                              uint8_t out[EDR_ID_LEN]);

/* The cached process tgid if it is the one that started at start_boot_ns,
 * else NULL. The pointer is valid until the next put/remove. */
edr_proc_t *edr_proc_cache_get(edr_proc_cache_t *c, uint32_t tgid, uint64_t start_boot_ns);
/* Any cached process with this tgid, or NULL. */
edr_proc_t *edr_proc_cache_find(edr_proc_cache_t *c, uint32_t tgid);

/* The entry for (tgid, start_boot_ns), created (zeroed, id filled) or
 * replacing an older process with that tgid. NULL when the cache is full. */
edr_proc_t *edr_proc_cache_put(edr_proc_cache_t *c, uint32_t tgid, uint64_t start_boot_ns);
/* Forgets tgid; may move other entries (pointers from get/find/put become
 * invalid). */
void edr_proc_cache_remove(edr_proc_cache_t *c, uint32_t tgid);
size_t edr_proc_cache_count(const edr_proc_cache_t *c);

/* A user-space process as /proc/PID/stat gives it. */
typedef struct edr_proc_stat {
    uint32_t pid, ppid;
    uint64_t start_ns; /* boot-clock ns, tick precision */
} edr_proc_stat_t;

/* Every user-space process under root ("/proc" when NULL; kernel threads are
 * left out), oldest first, into *out (the caller frees it). Returns how
 * many, or a negative edr_err_t. */
int edr_proc_list(const char *root, edr_proc_stat_t **out);

/* Called for every process found by edr_proc_cache_seed, parents before
 * children where possible: argv is NUL-separated (argv_len bytes), cwd may be "". */
typedef void (*edr_proc_seed_fn)(edr_proc_t *p, const char *argv, size_t argv_len, const char *cwd,
                                 void *ud);

/* Adds every user-space process of /proc (kernel threads are skipped) with
 * its parent links; calls fn for each. Returns how many were added, or a
 * negative edr_err_t when /proc cannot be read. */
int edr_proc_cache_seed(edr_proc_cache_t *c, const char *proc_root, edr_proc_seed_fn fn, void *ud);

/* Name of a uid / gid ("" when it has none); cached, valid while c lives. */
/* Start time (boot-clock ns, tick precision, as seeding gives) of a running
 * process from /proc/PID/stat: 0, or -1 when it is gone. */
int edr_proc_start_from_proc(uint32_t pid, uint64_t *start_boot_ns);

const char *edr_proc_cache_user(edr_proc_cache_t *c, uint32_t uid);
const char *edr_proc_cache_group(edr_proc_cache_t *c, uint32_t gid);

/* The change stamp (bpf/edr_bpf.h edr_change_stamp: mtime and ctime) of a
 * file's stat, as the eBPF programs compute it from its inode. */
struct stat;
uint64_t edr__stat_change_ns(const struct stat *st);

/* sha256 of an executable identified by (dev (kernel encoding), inode,
 * change stamp, size): 1 and out filled when known; 0 when not yet known (hashing is
 * queued on the worker thread, off the caller's path); -1 when the file could
 * not be hashed. */
int edr_proc_cache_exe_hash(edr_proc_cache_t *c, const char *path, uint64_t kdev, uint64_t ino,
                            uint64_t change_ns, uint64_t size, uint8_t out[32]);

/* Like edr_proc_cache_exe_hash for a file already asked for, without queueing
 * anything: waits until the worker has hashed it or CLOCK_MONOTONIC reaches
 * deadline_mono_ns. 1 and out filled when known; -1 when it could not be
 * hashed; 0 when the deadline passed or the file was never asked for (or its
 * cache slot was taken by another file meanwhile). */
int edr_proc_cache_exe_hash_wait(edr_proc_cache_t *c, uint64_t kdev, uint64_t ino,
                                  uint64_t change_ns, uint64_t size, uint64_t deadline_mono_ns,
                                  uint8_t out[32]);

/* Container id (64 hex digits) found in a cgroup path or name such as
 * "docker-<id>.scope" or ".../<id>"; "" when none. */
void edr_proc_container_id(const char *cgroup, char out[65]);

/* SHA-256 of n bytes (exposed for tests). */
void edr_sha256(const void *data, size_t n, uint8_t out[32]);

#endif
