/* Sensor state directory: single-instance lock and the persisted batch sequence. */
#include "edr/err.h"
#include "edr/log.h"
#include "sensor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Batch sequence numbers: one counter per host id (the synthetic and replay
 * sources ship for many hosts). The file "seq" holds a reservation R: no seq
 * >= R has been used. Counters start at R after a restart, and R is moved
 * SEQ_RESERVE ahead (written, fsynced, renamed) before any counter reaches it,
 * so seqs increase across restarts and crashes without a write per batch. A
 * restart skips up to SEQ_RESERVE values; consumers only need "increasing".
 * A new state directory (first install, or the old one lost) starts at the
 * wall clock in nanoseconds (fits 64 bits until 2554): a host's earlier
 * sensor cannot have used more than one seq per nanosecond since its own
 * start (batches, plus SEQ_RESERVE per restart), so the new seqs lie above
 * every (host, seq) already stored, which a collector would otherwise skip
 * as redeliveries.
 */
#define SEQ_RESERVE 65536

typedef struct {
    uint8_t host[EDR_ID_LEN];
    uint64_t seq;
    int used;
} seq_slot_t;

struct edr__state {
    char *dir;
    int lock_fd;
    uint64_t base;     /* first seq of this run */
    uint64_t reserved; /* persisted R */
    seq_slot_t *slots;
    size_t cap, n;
};

uint64_t edr__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t edr__utc_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return chmod(tmp, 0700);
}

static int write_reserved(edr__state_t *st, uint64_t r)
{
    char p[4096], tmp[4096], line[64];
    snprintf(p, sizeof(p), "%s/seq", st->dir);
    snprintf(tmp, sizeof(tmp), "%s/seq.tmp", st->dir);
    int n = snprintf(line, sizeof(line), "%" PRIu64 "\n", r);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return EDR_EIO;
    int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, p) != 0)
        return EDR_EIO;
    int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    st->reserved = r;
    return 0;
}

edr__state_t *edr__state_open(const char *dir, int no_lock, char *err, size_t errlen)
{
    edr__state_t *st = calloc(1, sizeof(*st));
    if (!st || !(st->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    st->lock_fd = -1;
    if (mkdir_p(dir) != 0) {
        snprintf(err, errlen, "state dir %s: cannot create: %s", dir, strerror(errno));
        goto fail;
    }
    char p[4096];
    if (!no_lock) {
        snprintf(p, sizeof(p), "%s/lock", dir);
        st->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (st->lock_fd < 0) {
            snprintf(err, errlen, "state dir %s: cannot open lock: %s", dir, strerror(errno));
            goto fail;
        }
        if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            char other[32] = "";
            ssize_t r = pread(st->lock_fd, other, sizeof(other) - 1, 0);
            other[r > 0 ? r : 0] = 0;
            other[strcspn(other, "\n")] = 0;
            snprintf(err, errlen, "state dir %s: another edr-sensor runs (pid %s)", dir,
                     *other ? other : "?");
            goto fail;
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(st->lock_fd, 0) != 0 || pwrite(st->lock_fd, pid, (size_t)n, 0) != n)
            edr_log_warn("state dir %s: cannot write the pid to the lock file", dir);
    }
    snprintf(p, sizeof(p), "%s/seq", dir);
    FILE *f = fopen(p, "r");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t r = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    if (r == 0)
        r = 1;
    if (f) {
        if (fscanf(f, "%" SCNu64, &r) != 1 || r == 0) {
            fclose(f);
            snprintf(err, errlen, "state file %s: not a sequence number", p);
            goto fail;
        }
        fclose(f);
    }
    st->base = r;
    if (write_reserved(st, r + SEQ_RESERVE)) {
        snprintf(err, errlen, "state file %s: cannot write: %s", p, strerror(errno));
        goto fail;
    }
    return st;
fail:
    edr__state_close(st);
    return NULL;
}

const char *edr__state_dir(const edr__state_t *st)
{
    return st->dir;
}

void edr__state_close(edr__state_t *st)
{
    if (!st)
        return;
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->slots);
    free(st->dir);
    free(st);
}

static uint64_t hash_host(const uint8_t *h)
{
    uint64_t v;
    memcpy(&v, h, 8);
    return v * 0x9E3779B97F4A7C15ull;
}

static int grow(edr__state_t *st)
{
    size_t cap = st->cap ? st->cap * 2 : 64;
    seq_slot_t *ns = calloc(cap, sizeof(*ns));
    if (!ns)
        return EDR_ENOMEM;
    for (size_t i = 0; i < st->cap; i++) {
        if (!st->slots[i].used)
            continue;
        size_t j = hash_host(st->slots[i].host) & (cap - 1);
        while (ns[j].used)
            j = (j + 1) & (cap - 1);
        ns[j] = st->slots[i];
    }
    free(st->slots);
    st->slots = ns;
    st->cap = cap;
    return 0;
}

uint64_t edr__state_next_seq(edr__state_t *st, const uint8_t host[EDR_ID_LEN])
{
    if ((st->n + 1) * 2 > st->cap && grow(st))
        return 0;
    size_t j = hash_host(host) & (st->cap - 1);
    while (st->slots[j].used && memcmp(st->slots[j].host, host, EDR_ID_LEN) != 0)
        j = (j + 1) & (st->cap - 1);
    seq_slot_t *s = &st->slots[j];
    if (!s->used) {
        s->used = 1;
        memcpy(s->host, host, EDR_ID_LEN);
        s->seq = st->base - 1;
        st->n++;
    }
    uint64_t next = s->seq + 1;
    if (next >= st->reserved && write_reserved(st, next + SEQ_RESERVE)) {
        edr_log_error("state dir %s: cannot persist the batch sequence", st->dir);
        return 0;
    }
    s->seq = next;
    return next;
}
