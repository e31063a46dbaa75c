/* On-disk spool: frames back to back in numbered segment files, a head file, bounded by size. */
#include "spool.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/log.h"
#include "edr/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Layout of the spool directory:
 *
 *   SSSSSSSSSSSSSSSS.seg   segment number S (16 hex digits): wire frames back
 *                          to back, the frame file format (edr_frame_len walks it)
 *   head                   "SEG OFF\n": the oldest frame not yet delivered
 *
 * Invariants:
 *   I1  Segments are numbered first..last without gaps; only the last one is
 *       ever written, and only by appending whole frames.
 *   I2  Frames leave the spool in append order: head only moves forward
 *       (edr_spool_ack), over frames the producer has had acknowledged.
 *   I3  bytes (sum of segment sizes) <= max_bytes after every append: to make
 *       room the oldest segment goes first, its undelivered frames reported
 *       through on_drop ("overflow") - the newest data is kept. Frames before
 *       the caller's cursor (edr_spool_set_cursor: read and in flight to
 *       Kafka) are not reported: whether they are lost depends on their
 *       delivery reports, which only the caller sees; it counts each once,
 *       as delivered or as lost. The head moves past them all the same.
 *   I4  A crash leaves at most one torn frame, at the end of the last
 *       segment; open() validates the last segment frame by frame (header and
 *       XXH3 checksum) and truncates at the first bad frame. Frames fully
 *       written before a kill -9 are in the page cache and survive it; fsync
 *       (every append, or every sync interval) makes them survive power loss.
 *   I5  The head file may lag behind (it is written by tick/sync): after a
 *       crash some delivered frames are sent again. Delivery is at least once;
 *       consumers deduplicate by (host id, batch seq).
 */

typedef struct {
    uint64_t size;   /* bytes in the file */
    uint64_t frames; /* whole frames in the file */
} seg_t;

struct edr_spool {
    char *dir;
    uint64_t max_bytes;
    uint64_t sync_ns;
    edr_spool_drop_cb on_drop;
    void *ud;

    uint64_t first;  /* oldest segment number */
    seg_t *segs;     /* segs[i] is segment first + i */
    size_t n_segs, cap_segs;
    int tail_fd;     /* last segment, O_APPEND */
    uint64_t seg_max;

    edr_spool_pos_t head;
    edr_spool_pos_t cursor; /* frames in [head, cursor) are in flight: the caller's to count */
    uint64_t frames; /* frames from head to tail */
    uint64_t bytes;

    int read_fd;
    uint64_t read_seg;
    uint8_t *buf;
    size_t buf_cap;

    int dirty;          /* appended, not yet fsynced */
    uint64_t full_said; /* when a full file system was last said (mono ns), 0: never */
    int unlink_failed;  /* a segment removed from the list is still on disk: write the head */
    int head_dirty;     /* head moved, not yet written */
    uint64_t last_sync;
    edr_spool_stats_t st;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void seg_path(const edr_spool_t *sp, uint64_t seg, char *out, size_t len)
{
    snprintf(out, len, "%s/%016" PRIx64 ".seg", sp->dir, seg);
}

static uint64_t get64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int grow_buf(edr_spool_t *sp, size_t need)
{
    if (need <= sp->buf_cap)
        return 0;
    size_t cap = sp->buf_cap ? sp->buf_cap : 65536;
    while (cap < need)
        cap *= 2;
    uint8_t *nb = realloc(sp->buf, cap);
    if (!nb)
        return EDR_ENOMEM;
    sp->buf = nb;
    sp->buf_cap = cap;
    return 0;
}

/* Reads and validates the frame at off of fd (file size size). Returns its
 * length, 0 at end of file, or -1 when what is there is not a whole valid frame. */
/* Reads the frame at off of a segment of size bytes into sp->buf: its
 * length; 0 at the end; READ_BAD when the bytes there are not a whole,
 * intact frame (torn, damaged); READ_ERR when they could not be read (an
 * I/O error, no memory), which says nothing of the frame. */
#define READ_BAD (-1)
#define READ_ERR (-2)

static long read_frame(edr_spool_t *sp, int fd, uint64_t off, uint64_t size)
{
    if (off >= size)
        return 0;
    uint8_t hdr[EDR_FRAME_HEADER_SIZE];
    if (size - off < sizeof(hdr))
        return READ_BAD;
    ssize_t r = pread(fd, hdr, sizeof(hdr), (off_t)off);
    if (r < 0)
        return READ_ERR;
    if (r != sizeof(hdr))
        return READ_BAD;
    size_t fl = edr_frame_len(hdr, sizeof(hdr));
    if (fl < sizeof(hdr) || fl > size - off)
        return READ_BAD;
    if (grow_buf(sp, fl))
        return READ_ERR;
    r = pread(fd, sp->buf, fl, (off_t)off);
    if (r < 0)
        return READ_ERR;
    if (r != (ssize_t)fl)
        return READ_BAD;
    size_t hl = (size_t)hdr[6] | (size_t)hdr[7] << 8;
    if (hl < sizeof(hdr) || hl > fl)
        return READ_BAD;
    if (edr_frame_checksum(sp->buf + hl, fl - hl) != get64le(hdr + 24))
        return READ_BAD;
    return (long)fl;
}

static int seg_add(edr_spool_t *sp)
{
    if (EDR_VEC_RESERVE(sp->segs, sp->cap_segs, sp->n_segs + 1, 16))
        return EDR_ENOMEM;
    sp->segs[sp->n_segs].size = 0;
    sp->segs[sp->n_segs].frames = 0;
    sp->n_segs++;
    return 0;
}

static int open_tail(edr_spool_t *sp, int create)
{
    char p[4096];
    seg_path(sp, sp->first + sp->n_segs - 1, p, sizeof(p));
    /* the old tail stays open until the new one is: a failed roll (no space,
     * no descriptors) leaves appends going to the old tail, not to nothing */
    int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
    if (fd < 0) {
        edr_log_error("spool: cannot open %s: %s", p, strerror(errno));
        return EDR_EIO;
    }
    if (sp->tail_fd >= 0)
        close(sp->tail_fd);
    sp->tail_fd = fd;
    return 0;
}

/* Starts a new, empty last segment. */
static int roll(edr_spool_t *sp)
{
    if (sp->tail_fd >= 0 && sp->dirty)
        fdatasync(sp->tail_fd);
    int rc = seg_add(sp);
    if (rc)
        return rc;
    if ((rc = open_tail(sp, 1))) {
        sp->n_segs--;
        return rc;
    }
    return 0;
}

static void write_head(edr_spool_t *sp, int do_sync)
{
    char p[4096], tmp[4096], line[64];
    snprintf(p, sizeof(p), "%s/head", sp->dir);
    snprintf(tmp, sizeof(tmp), "%s/head.tmp", sp->dir);
    int n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 "\n", sp->head.seg, sp->head.off);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int ok = write(fd, line, (size_t)n) == n && (!do_sync || fsync(fd) == 0);
    close(fd);
    if (ok && rename(tmp, p) == 0)
        sp->head_dirty = 0;
}

unsigned edr__spool_test_unlink_fail;

/* Unlinks the oldest segment and forgets it (its frames are the caller's
 * business: delivered, or reported as dropped). A file that stays (the
 * unlink failed: EIO, EROFS) would be read again at the next start as the
 * oldest of the segments, its frames delivered or counted lost already
 * (review-1206g L3): the caller writes the head at once (head_after_unlink),
 * which a start trusts over the files below it. */
static void remove_first(edr_spool_t *sp)
{
    char p[4096];
    seg_path(sp, sp->first, p, sizeof(p));
    if (sp->read_fd >= 0 && sp->read_seg == sp->first) {
        close(sp->read_fd);
        sp->read_fd = -1;
    }
    int failed = edr__spool_test_unlink_fail && --edr__spool_test_unlink_fail == 0;
    if (failed) errno = EIO;
    if ((failed || unlink(p) != 0) && errno != ENOENT) {
        edr_log_error("spool: cannot remove %s: %s (the head is written at once)", p,
                      strerror(errno));
        sp->unlink_failed = 1;
    }
    sp->bytes -= sp->segs[0].size;
    memmove(sp->segs, sp->segs + 1, (sp->n_segs - 1) * sizeof(*sp->segs));
    sp->n_segs--;
    sp->first++;
}

/* After remove_first: a segment left on disk is behind a head written now. */
static void head_after_unlink(edr_spool_t *sp)
{
    if (!sp->unlink_failed) return;
    sp->unlink_failed = 0;
    sp->head_dirty = 1;
    write_head(sp, 1);
}

/* Drops the oldest segment, reporting its undelivered frames (those before
 * the cursor are in flight: counted in evicted_sent, left to the caller). */
static void drop_oldest(edr_spool_t *sp, const char *reason)
{
    char p[4096];
    seg_path(sp, sp->first, p, sizeof(p));
    uint64_t from = sp->head.seg == sp->first ? sp->head.off : 0;
    int fd = sp->head.seg > sp->first ? -1 : open(p, O_RDONLY | O_CLOEXEC);
    uint64_t lost = 0, sent = 0;
    if (fd >= 0) {
        long fl;
        for (uint64_t off = from; (fl = read_frame(sp, fd, off, sp->segs[0].size)) > 0;
             off += (uint64_t)fl) {
            if (edr_spool_pos_cmp((edr_spool_pos_t){sp->first, off}, sp->cursor) < 0) {
                sent++;
                continue;
            }
            lost++;
            if (sp->on_drop)
                sp->on_drop(sp->ud, sp->buf, (size_t)fl, reason);
        }
        close(fd);
    }
    remove_first(sp);
    sp->st.dropped_frames += lost;
    sp->st.evicted_sent += sent;
    lost += sent;
    sp->frames = sp->frames > lost ? sp->frames - lost : 0;
    if (edr_spool_pos_cmp(sp->head, (edr_spool_pos_t){sp->first, 0}) < 0) {
        sp->head.seg = sp->first;
        sp->head.off = 0;
        sp->head_dirty = 1;
    }
    head_after_unlink(sp);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

edr_spool_t *edr_spool_open(const char *dir, uint64_t max_bytes, uint64_t sync_interval_ns,
                            edr_spool_drop_cb on_drop, void *ud, char *err, size_t errlen)
{
    edr_spool_t *sp = calloc(1, sizeof(*sp));
    uint64_t *nums = NULL;
    size_t n_nums = 0, cap_nums = 0;
    DIR *d = NULL;
    if (!sp || !(sp->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sp->tail_fd = sp->read_fd = -1;
    sp->on_drop = on_drop;
    sp->ud = ud;
    sp->sync_ns = sync_interval_ns;
    edr_spool_set_max(sp, max_bytes);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool %s: cannot create: %s", dir, strerror(errno));
        goto fail;
    }
    chmod(dir, 0700);
    if (!(d = opendir(dir))) {
        snprintf(err, errlen, "spool %s: cannot open: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l != 20 || strcmp(de->d_name + 16, ".seg") != 0)
            continue;
        char *end;
        uint64_t v = strtoull(de->d_name, &end, 16);
        if (end != de->d_name + 16)
            continue;
        if (n_nums == cap_nums) {
            cap_nums = cap_nums ? cap_nums * 2 : 16;
            uint64_t *nn = realloc(nums, cap_nums * sizeof(*nn));
            if (!nn) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            nums = nn;
        }
        nums[n_nums++] = v;
    }
    closedir(d);
    d = NULL;
    if (n_nums) /* nums is NULL for an empty directory: qsort must not see it */
        qsort(nums, n_nums, sizeof(*nums), cmp_u64);
    /* keep the newest run of consecutive segments (I1); older strays are from
     * an interrupted drop and already counted as lost */
    size_t start = 0;
    for (size_t i = 1; i < n_nums; i++)
        if (nums[i] != nums[i - 1] + 1)
            start = i;
    for (size_t i = 0; i < start; i++) {
        char p[4096];
        seg_path(sp, nums[i], p, sizeof(p));
        unlink(p);
    }
    sp->first = n_nums ? nums[start] : 1;
    for (size_t i = start; i < n_nums; i++) {
        char p[4096];
        struct stat stt;
        seg_path(sp, nums[i], p, sizeof(p));
        if (seg_add(sp) || stat(p, &stt) != 0) {
            snprintf(err, errlen, "spool %s: cannot read segment %s", dir, p);
            goto fail;
        }
        sp->segs[sp->n_segs - 1].size = (uint64_t)stt.st_size;
        sp->bytes += (uint64_t)stt.st_size;
    }
    /* head */
    sp->head.seg = sp->first;
    {
        char p[4096];
        snprintf(p, sizeof(p), "%s/head", dir);
        FILE *f = fopen(p, "r");
        uint64_t hs, ho;
        if (f && fscanf(f, "%" SCNu64 " %" SCNu64, &hs, &ho) == 2 && hs >= sp->first &&
            hs < sp->first + (sp->n_segs ? sp->n_segs : 1)) {
            sp->head.seg = hs;
            sp->head.off = ho;
        }
        if (f)
            fclose(f);
    }
    /* count frames; validate the last segment fully and cut a torn tail (I4) */
    for (size_t i = 0; i < sp->n_segs; i++) {
        char p[4096];
        uint64_t seg = sp->first + i;
        seg_path(sp, seg, p, sizeof(p));
        int last = i + 1 == sp->n_segs;
        int fd = open(p, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, errlen, "spool %s: cannot open %s: %s", dir, p, strerror(errno));
            goto fail;
        }
        uint64_t off = 0;
        long fl;
        while ((fl = read_frame(sp, fd, off, sp->segs[i].size)) > 0) {
            if (seg > sp->head.seg || (seg == sp->head.seg && off >= sp->head.off))
                sp->frames++;
            sp->segs[i].frames++;
            off += (uint64_t)fl;
        }
        if (fl == READ_ERR) { /* cutting here would throw away frames that may be whole */
            snprintf(err, errlen, "spool %s: cannot read %s: %s", dir, p,
                     errno ? strerror(errno) : "out of memory");
            close(fd);
            goto fail;
        }
        if (fl < 0 && last) {
            uint64_t cut = sp->segs[i].size - off;
            edr_log_warn("spool: cutting a torn tail of %" PRIu64 " bytes from %s", cut, p);
            if (ftruncate(fd, (off_t)off) == 0) {
                sp->st.torn_bytes += cut;
                sp->bytes -= cut;
                sp->segs[i].size = off;
                fsync(fd);
            }
            /* an append the last run did not finish, or frames after a
             * damaged one: lost, and said so like any other loss */
            sp->st.dropped_frames++;
            if (sp->on_drop)
                sp->on_drop(sp->ud, NULL, 0, "torn");
        }
        close(fd);
    }
    if (edr_spool_pos_cmp(sp->head, edr_spool_tail(sp)) > 0)
        sp->head = edr_spool_tail(sp);
    sp->cursor = sp->head;
    if (sp->n_segs == 0) {
        if (roll(sp)) {
            snprintf(err, errlen, "spool %s: cannot create a segment", dir);
            goto fail;
        }
    } else if (open_tail(sp, 0)) {
        snprintf(err, errlen, "spool %s: cannot open the last segment", dir);
        goto fail;
    }
    sp->last_sync = mono_ns();
    free(nums);
    if (sp->frames)
        edr_log_info("spool: %" PRIu64 " frames (%" PRIu64 " bytes) waiting in %s", sp->frames,
                     sp->bytes, dir);
    return sp;
fail:
    if (d)
        closedir(d);
    free(nums);
    edr_spool_close(sp);
    return NULL;
}

void edr_spool_close(edr_spool_t *sp)
{
    if (!sp)
        return;
    if (sp->tail_fd >= 0) {
        if (sp->dirty)
            fdatasync(sp->tail_fd);
        close(sp->tail_fd);
    }
    if (sp->dir && sp->n_segs)
        write_head(sp, 1);
    if (sp->read_fd >= 0)
        close(sp->read_fd);
    free(sp->segs);
    free(sp->buf);
    free(sp->dir);
    free(sp);
}

void edr_spool_set_sync(edr_spool_t *sp, uint64_t sync_interval_ns)
{
    sp->sync_ns = sync_interval_ns;
}

void edr_spool_set_max(edr_spool_t *sp, uint64_t max_bytes)
{
    sp->max_bytes = max_bytes < 4096 ? 4096 : max_bytes;
    /* segments of an eighth of the bound, 64 KiB to 64 MiB, and never more
     * than half of it: the oldest segment goes only when another exists, so
     * a bound below two segments would not hold (16 KiB grew to 64 KiB) */
    uint64_t s = sp->max_bytes / 8, lo = sp->max_bytes / 2 < 65536 ? sp->max_bytes / 2 : 65536;
    sp->seg_max = s < lo ? lo : s > (64u << 20) ? (64u << 20) : s;
}

int edr_spool_append(edr_spool_t *sp, const void *frame, size_t len)
{
    if (len > sp->max_bytes) {
        sp->st.dropped_frames++;
        if (sp->on_drop)
            sp->on_drop(sp->ud, frame, len, "too_large");
        return EDR_ERANGE;
    }
    seg_t *t = &sp->segs[sp->n_segs - 1];
    if (t->size > 0 && t->size + len > sp->seg_max) {
        int rc = roll(sp);
        if (rc)
            return rc;
        t = &sp->segs[sp->n_segs - 1];
    }
    while (sp->bytes + len > sp->max_bytes && sp->n_segs > 1)
        drop_oldest(sp, "overflow");
    for (;;) {
        t = &sp->segs[sp->n_segs - 1];
        errno = 0;
        ssize_t w = write(sp->tail_fd, frame, len);
        if (w == (ssize_t)len) break;
        int e = w < 0 ? errno : ENOSPC; /* a short write: the file system filled up */
        if (w > 0 && ftruncate(sp->tail_fd, (off_t)t->size) != 0)
            edr_log_error("spool: cannot undo a short write: %s", strerror(errno));
        /* A full file system is the bound, reached before sensor.spool_max_bytes:
         * the oldest frames make room, as past the bound (review-1206g M2:
         * every new frame was dropped instead, the spool kept the outage's
         * first minutes and lost the rest, an error line each) */
        /* the tail the only segment (a file system smaller than one, 64 MiB
         * under the default bound): a new tail makes the old one the oldest,
         * which then goes (review-1206i M1: every new frame was dropped) */
        if ((e == ENOSPC || e == EDQUOT) && sp->n_segs == 1 && t->size > 0 && roll(sp) == 0)
            continue;
        if ((e == ENOSPC || e == EDQUOT) && sp->n_segs > 1) {
            uint64_t now = mono_ns();
            if (!sp->full_said || now - sp->full_said >= 60000000000ull) {
                edr_log_warn("spool: the file system of %s is full at %" PRIu64
                             " bytes of spool (bound %" PRIu64 "): the oldest frames make room "
                             "(counted spool/overflow)",
                             sp->dir, sp->bytes, sp->max_bytes);
                sp->full_said = now;
            }
            drop_oldest(sp, "overflow");
            continue;
        }
        edr_log_error("spool: append failed: %s", w < 0 ? strerror(e) : "short write");
        return EDR_EIO;
    }
    t->size += len;
    t->frames++;
    sp->bytes += len;
    sp->frames++;
    sp->st.appended++;
    sp->dirty = 1;
    if (sp->sync_ns == 0)
        edr_spool_sync(sp); /* a failed sync is logged; the frame is appended all the same, and
                             * replayed: not a loss (it was counted as one) */
    return 0;
}

int edr_spool_read(edr_spool_t *sp, edr_spool_pos_t *pos, const uint8_t **frame, size_t *len,
                   edr_spool_pos_t *next)
{
    for (;;) {
        if (edr_spool_pos_cmp(*pos, sp->head) < 0)
            *pos = sp->head;
        uint64_t idx = pos->seg - sp->first;
        if (idx >= sp->n_segs)
            return 0;
        seg_t *s = &sp->segs[idx];
        if (pos->off >= s->size) {
            if (idx + 1 >= sp->n_segs)
                return 0;
            pos->seg++;
            pos->off = 0;
            continue;
        }
        if (sp->read_fd < 0 || sp->read_seg != pos->seg) {
            char p[4096];
            if (sp->read_fd >= 0)
                close(sp->read_fd);
            seg_path(sp, pos->seg, p, sizeof(p));
            sp->read_fd = open(p, O_RDONLY | O_CLOEXEC);
            sp->read_seg = pos->seg;
            if (sp->read_fd < 0) {
                edr_log_error("spool: cannot open %s: %s", p, strerror(errno));
                return EDR_EIO;
            }
        }
        long fl = read_frame(sp, sp->read_fd, pos->off, s->size);
        if (fl == READ_ERR) {
            edr_log_error("spool: cannot read segment %" PRIu64 " at %" PRIu64 ": %s (tried "
                          "again later)",
                          pos->seg, pos->off, errno ? strerror(errno) : "out of memory");
            return EDR_EIO;
        }
        if (fl > 0) {
            *frame = sp->buf;
            *len = (size_t)fl;
            next->seg = pos->seg;
            next->off = pos->off + (uint64_t)fl;
            return 1;
        }
        /* corrupt in the middle (disk damage): the rest of this segment is
         * lost. The frames counted past this point go, each counted as a
         * drop (at least one: frames after a damage found at open were never
         * counted), and the segment ends here from now on, so that reading
         * it again (a replay after an outage starts over) counts nothing twice. */
        uint64_t before = 0;
        for (uint64_t off = 0; off < pos->off;) {
            long l = read_frame(sp, sp->read_fd, off, pos->off);
            if (l <= 0)
                break;
            off += (uint64_t)l;
            before++;
        }
        uint64_t lost = s->frames > before ? s->frames - before : 0;
        edr_log_error("spool: corrupt frame in segment %" PRIu64 " at %" PRIu64
                      ", skipping the rest of it (%" PRIu64 " frames counted there)",
                      pos->seg, pos->off, lost);
        s->frames = before;
        sp->frames = sp->frames > lost ? sp->frames - lost : 0;
        for (uint64_t i = 0; i < (lost ? lost : 1); i++) {
            sp->st.dropped_frames++;
            if (sp->on_drop)
                sp->on_drop(sp->ud, NULL, 0, "corrupt");
        }
        /* the last segment is cut on disk too, so that appends stay aligned */
        if (idx + 1 < sp->n_segs || ftruncate(sp->tail_fd, (off_t)pos->off) == 0) {
            sp->bytes -= s->size - pos->off;
            s->size = pos->off;
        }
        if (idx + 1 >= sp->n_segs)
            return 0;
        pos->seg++;
        pos->off = 0;
    }
}

void edr_spool_ack(edr_spool_t *sp, edr_spool_pos_t pos, uint64_t n)
{
    if (edr_spool_pos_cmp(pos, sp->head) <= 0)
        return;
    sp->head = pos;
    sp->head_dirty = 1;
    sp->frames = sp->frames > n ? sp->frames - n : 0;
    /* finished segments before the head go; the last one stays for appends */
    while (sp->n_segs > 1 && sp->first < sp->head.seg)
        remove_first(sp);
    /* everything delivered and the tail segment is big: start afresh */
    if (sp->frames == 0 && sp->n_segs == 1 && sp->segs[0].size > sp->seg_max / 2 &&
        edr_spool_pos_cmp(sp->head, edr_spool_tail(sp)) == 0) {
        if (roll(sp) == 0) {
            sp->head.seg = sp->first + 1;
            sp->head.off = 0;
            remove_first(sp);
        }
    }
    head_after_unlink(sp);
}

void edr_spool_set_cursor(edr_spool_t *sp, edr_spool_pos_t pos)
{
    sp->cursor = pos;
}

edr_spool_pos_t edr_spool_head(const edr_spool_t *sp)
{
    return sp->head;
}

edr_spool_pos_t edr_spool_tail(const edr_spool_t *sp)
{
    edr_spool_pos_t t = {sp->first, 0};
    if (sp->n_segs) {
        t.seg = sp->first + sp->n_segs - 1;
        t.off = sp->segs[sp->n_segs - 1].size;
    }
    return t;
}

int edr_spool_pos_cmp(edr_spool_pos_t a, edr_spool_pos_t b)
{
    if (a.seg != b.seg)
        return a.seg < b.seg ? -1 : 1;
    return a.off < b.off ? -1 : a.off > b.off;
}

int edr_spool_empty(const edr_spool_t *sp)
{
    edr_spool_pos_t h = sp->head;
    edr_spool_pos_t t = edr_spool_tail(sp);
    /* a head at the end of a finished segment equals the start of the next */
    while (h.seg < t.seg && h.off >= sp->segs[h.seg - sp->first].size) {
        h.seg++;
        h.off = 0;
    }
    return edr_spool_pos_cmp(h, t) >= 0;
}

void edr_spool_get_stats(const edr_spool_t *sp, edr_spool_stats_t *out)
{
    *out = sp->st;
    out->bytes = sp->bytes;
    out->frames = sp->frames;
}

int edr_spool_sync(edr_spool_t *sp)
{
    int rc = 0;
    if (sp->dirty && sp->tail_fd >= 0) {
        if (fdatasync(sp->tail_fd) != 0) {
            edr_log_error("spool: fsync failed: %s", strerror(errno));
            rc = EDR_EIO;
        } else {
            sp->dirty = 0;
        }
    }
    if (sp->head_dirty)
        write_head(sp, 0);
    sp->last_sync = mono_ns();
    return rc;
}

void edr_spool_tick(edr_spool_t *sp, uint64_t now_ns)
{
    uint64_t every = sp->sync_ns ? sp->sync_ns : 100000000ull;
    if ((sp->dirty || sp->head_dirty) && now_ns - sp->last_sync >= every)
        edr_spool_sync(sp);
}
