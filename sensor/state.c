/* Sensor state directory: single-instance lock and the persisted batch sequence. */
#include "edr/err.h"
#include "edr/log.h"
#include "edr/privdir.h"
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
 *
 * A full file system (review-1206g M1: every batch was dropped, with an
 * error line each, until space came back, Kafka working or not): when the
 * new file cannot be written, R is overwritten in place in "seq" (a digit
 * string over one as long and smaller is, torn anywhere, at least the old
 * value; an overwrite needs no new block, except on copy-on-write file
 * systems such as btrfs and ZFS). When that fails too, the sensor goes on
 * handing out seqs in memory and tries again every SEQ_RETRY batches; a
 * restart before one succeeds would hand out seqs the run already used
 * (their batches then skipped by collectors as redeliveries): said in the
 * log, and only on a copy-on-write file system with no room at all (or when
 * a "seq" of a sensor from before 2026-12-06, written without its leading
 * zeros, was to gain a digit).
 */
#define SEQ_RESERVE 65536
#define SEQ_RETRY   1024
/* the largest R read back: R + SEQ_RESERVE, and the seqs of a run up to the
 * next reservation, must not wrap */
#define SEQ_MAX (UINT64_MAX - 2 * (uint64_t)SEQ_RESERVE)

typedef struct {
    uint8_t host[EDR_ID_LEN];
    uint64_t seq;
    int used;
} seq_slot_t;

struct edr__state {
    char *dir;
    int dfd; /* dir, opened once: the files are opened relative to it */
    int lock_fd;
    uint64_t base;     /* first seq of this run */
    uint64_t reserved; /* persisted R, or where to try again to persist one (unpersisted) */
    int unpersisted;   /* the last reservation could not be written */
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

/* Writes R in place in "seq" when it has as many digits as the value
 * there (see above). 0 or EDR_EIO (errno set). */
static int overwrite_reserved(edr__state_t *st, uint64_t r)
{
    char old[32], line[32];
    int fd = openat(st->dfd, "seq", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return EDR_EIO;
    ssize_t n = pread(fd, old, sizeof(old), 0);
    int w = n >= 2 && n <= 21 ? (int)n - 1 : 0; /* its digits, as many written */
    int m = w ? snprintf(line, sizeof(line), "%0*" PRIu64 "\n", w, r) : 0;
    int ok = w && n == m && old[n - 1] == '\n' && memcmp(line, old, (size_t)m) > 0 &&
             pwrite(fd, line, (size_t)m, 0) == m && fdatasync(fd) == 0;
    int e = ok ? 0 : w && n != m ? ENOSPC : errno; /* more digits: it needs the new file */
    close(fd);
    errno = e;
    if (!ok) return EDR_EIO;
    st->reserved = r;
    return 0;
}

/* R in a new file, renamed over "seq": 20 digits, zero-padded, so that an
 * overwrite in place (a full file system) never needs more than there are
 * (review-1206i L2: a reservation gaining a digit could not be written so;
 * a file of an older sensor, shorter, still can until its first rewrite) */
static int write_reserved(edr__state_t *st, uint64_t r)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "%020" PRIu64 "\n", r);
    int fd =
        openat(st->dfd, "seq.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        if ((e == ENOSPC || e == EDQUOT) && overwrite_reserved(st, r) == 0) return 0;
        errno = e;
        return EDR_EIO;
    }
    int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    int e = errno;
    close(fd);
    errno = e;
    if (!ok || renameat(st->dfd, "seq.tmp", st->dfd, "seq") != 0) {
        e = errno;
        unlinkat(st->dfd, "seq.tmp", 0); /* what it took of a full file system */
        if ((e == ENOSPC || e == EDQUOT) && overwrite_reserved(st, r) == 0) return 0;
        errno = e;
        return EDR_EIO;
    }
    fsync(st->dfd);
    st->reserved = r;
    return 0;
}

/* The reservation in the file "seq": digits and a newline, nothing else,
 * 1 to SEQ_MAX. 0 with *r set; 1 when there is no file (a new state
 * directory); -1 with err filled. */
static int read_reserved(edr__state_t *st, uint64_t *r, char *err, size_t errlen)
{
    int fd = openat(st->dfd, "seq", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "state file %s/seq: cannot open: %s", st->dir, strerror(errno));
        return -1;
    }
    char buf[32];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof(buf) && (k = read(fd, buf + len, sizeof(buf) - len)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "state file %s/seq: cannot read: %s", st->dir,
                     strerror(errno));
            close(fd);
            return -1;
        }
        len += (size_t)k;
    }
    close(fd);
    size_t digits = 0;
    while (digits < len && buf[digits] >= '0' && buf[digits] <= '9')
        digits++;
    if (digits == 0 || digits > 20 || len != digits + 1 || buf[digits] != '\n') {
        snprintf(err, errlen, "state file %s/seq: not a sequence number (digits and a newline)",
                 st->dir);
        return -1;
    }
    buf[digits] = '\0';
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, 10);
    if (errno == ERANGE || v > SEQ_MAX) {
        snprintf(err, errlen,
                 "state file %s/seq: sequence %s is above %" PRIu64 ": refusing (it would wrap)",
                 st->dir, buf, (uint64_t)SEQ_MAX);
        return -1;
    }
    if (v == 0) {
        snprintf(err, errlen, "state file %s/seq: sequence 0: refusing", st->dir);
        return -1;
    }
    *r = v;
    return 0;
}

edr__state_t *edr__state_open(const char *dir, int no_lock, char *err, size_t errlen)
{
    edr__state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->lock_fd = st->dfd = -1;
    if (!(st->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((st->dfd = edr_private_dir_open(dir, "sensor.state_dir", NULL, err, errlen)) < 0) goto fail;
    /* the directory itself is locked: a lock file deleted by hand (a "stale
     * lock" cleanup) let a second sensor run on the same spool, which both
     * then corrupted (review-1206g L2). The lock file stays, for the pid
     * and for sensors older than 2026-12-06, which lock it */
    int held = 0; /* by another sensor: which one, its lock file says */
    if (!no_lock && flock(st->dfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            snprintf(err, errlen, "state dir %s: cannot lock: %s", dir, strerror(errno));
            goto fail;
        }
        held = 1;
    }
    if (!no_lock) {
        st->lock_fd = openat(st->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (st->lock_fd < 0) {
            snprintf(err, errlen, "state dir %s: cannot open lock: %s", dir, strerror(errno));
            goto fail;
        }
        if (held || flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            if (!held && errno != EWOULDBLOCK) {
                snprintf(err, errlen, "state dir %s: cannot lock: %s", dir, strerror(errno));
                goto fail;
            }
            char other[32] = "";
            ssize_t r = pread(st->lock_fd, other, sizeof(other) - 1, 0);
            other[r > 0 ? r : 0] = 0;
            other[strcspn(other, "\n")] = 0;
            for (char *c = other; *c; c++)
                if (*c < '0' || *c > '9')
                    *c = '?';
            snprintf(err, errlen, "state dir %s: another edr-sensor runs (pid %s)", dir,
                     *other ? other : "?");
            goto fail;
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(st->lock_fd, 0) != 0 || pwrite(st->lock_fd, pid, (size_t)n, 0) != n)
            edr_log_warn("state dir %s: cannot write the pid to the lock file", dir);
    }
    uint64_t r;
    int rc = read_reserved(st, &r, err, errlen);
    if (rc < 0)
        goto fail;
    if (rc > 0) { /* a new state directory */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        r = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
        if (r == 0)
            r = 1;
    }
    st->base = r;
    if (write_reserved(st, r + SEQ_RESERVE)) {
        if (errno != ENOSPC && errno != EDQUOT) {
            snprintf(err, errlen, "state file %s/seq: cannot write: %s", dir, strerror(errno));
            goto fail;
        }
        edr_log_error("state dir %s: cannot persist the batch sequence (%s): going on without "
                      "it; a restart before there is room may reuse its seqs",
                      dir, strerror(errno));
        st->unpersisted = 1;
        st->reserved = r + SEQ_RETRY;
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
    if (st->dfd >= 0)
        close(st->dfd);
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
    if (next > UINT64_MAX - SEQ_RESERVE) {
        edr_log_error("state dir %s: the batch sequence is exhausted", st->dir);
        return 0;
    }
    if (next >= st->reserved) {
        if (write_reserved(st, next + SEQ_RESERVE) == 0) {
            if (st->unpersisted)
                edr_log_info("state dir %s: the batch sequence is persisted again", st->dir);
            st->unpersisted = 0;
        } else {
            if (!st->unpersisted)
                edr_log_error("state dir %s: cannot persist the batch sequence (%s): going on "
                              "without it, trying again every %d batches; a restart before "
                              "there is room may reuse its seqs",
                              st->dir, strerror(errno), SEQ_RETRY);
            st->unpersisted = 1;
            st->reserved = next + SEQ_RETRY;
        }
    }
    s->seq = next;
    return next;
}
