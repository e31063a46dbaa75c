/* Collector loop: consumer group, validation and dead letters, per-partition store shards, back-pressure, rate limits. */
#include "collector_int.h"
#include "gaps.h"

#include "edr/cpus.h"
#include "edr/err.h"
#include "edr/event.h"
#include "edr/kafka.h"
#include "edr/jsonl.h"
#include "edr/log.h"
#include "edr/privdir.h"
#include "edr/text.h"
#include "edr/store.h"
#include "edr/vec.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define MAX_PARTS    1024
#define MAX_REASONS  24
#define MIN_TIME_NS  EDR_TIME_MIN_NS /* 2000-01-01 */
#define NOMEM_TRIES  30 /* then a batch that does not fit in memory is dead-lettered */
#define DL_DRAIN_S   5.0 /* longest wait for dead letters in flight at a revocation or a stop */
/* The dead-letter producer's queue (queue.buffering.max.kbytes unless
 * kafka.properties sets it): every dead letter not yet answered, of every
 * partition, is a copy in it. librdkafka's default is 1 GiB; twice the
 * producers' message.max.bytes (64 MiB) still takes the largest frame. */
#define DL_QUEUE_KB  "131072"

/*
 * Exactly-once state machine, per partition p (shard p of the store):
 *
 *   next   the offset of the next message to store. It starts at the offset
 *          recorded in the shard (or the beginning), and after each message
 *          is handled (stored, skipped as duplicate, or dead-lettered) it is
 *          message offset + 1. The shard's commit writes `next` in the same
 *          WriteBatch as the batches before it, so the stored offset never
 *          runs ahead of or behind the stored data.
 *   seek   set when we asked the consumer to re-fetch from `next` (after a
 *          pause for back-pressure or a rate limit, or a failed commit):
 *          messages are ignored until one with offset == next arrives, so a
 *          message already in the local queue can never be stored out of order.
 *   paused the partition is paused; every message of it is ignored (it is
 *          fetched again after the seek that accompanies resume).
 *
 *   dl     the dead letters of the partition at offsets >= committed_next,
 *          by offset, each SENT (no answer from Kafka yet), DONE
 *          (acknowledged, or refused for good: nothing more to do) or FAILED
 *          (not taken for a reason that may pass: timeout, broker gone).
 *          Sending one never waits: the partition goes on at once.
 *   full   the partition's SENT dead letters reached its share of the
 *          dead-letter producer's queue (dl_room): it is paused, at the
 *          frame that did not fit, until half the share is free again, then
 *          fetched from there. So a flood of bad frames while the
 *          dead-letter topic is down holds a bounded amount of memory and
 *          only its own partition: the others always find room for theirs.
 *   hold   a dead letter FAILED: the partition is paused until none of its
 *          dead letters is SENT, then next moves back to the lowest FAILED
 *          one and the partition is fetched from there (rewound): that frame
 *          is read and sent again, the batches after it are duplicates, and
 *          a frame whose dead letter is SENT or DONE is not sent again.
 *
 *   parked the batches of hosts over their rate limit
 *          (collector.host_rate_limit), by offset: copies kept in memory
 *          while the partition goes on with the other hosts' batches (it
 *          held the whole partition before 2026-12-06: every host keyed to
 *          it lagged behind the flood, review-1206f H1), stored as their
 *          host's allowance comes, in order for each host (a host with a
 *          batch parked parks the next ones too). The stored offset does
 *          not pass the lowest parked one: a crash, a revocation or a stop
 *          reads them again from Kafka (the batches stored after them are
 *          then duplicates). Past collector.rate_limit_memory of copies the
 *          partition waits instead, as before.
 *
 * Invariants: a message is stored only when its offset == next (or > next
 * without a pending seek: a gap in the log) and the partition is not paused,
 * or, parked, when its host's allowance lets it.
 * A commit writes min(next, the lowest offset whose dead letter is not
 * DONE) as the stored offset: the offset moves past a bad frame only once
 * Kafka has its dead letter, so a crash, a revocation or a stop before that
 * reads the frame again (the batches stored after it are then duplicates).
 * Waiting for a dead letter holds back only its own partition's offset;
 * only a revocation and a stop wait for answers, at most DL_DRAIN_S.
 * A report whose epoch is older than the partition's last log reset is for
 * a frame of a log that no longer exists: if it failed, the frame is lost.
 */
enum { DL_SENT, DL_DONE, DL_FAILED };

typedef struct dl_rec {
    int64_t offset;
    int state;
    int gone;   /* the topic deleted the frame while its dead letter was SENT */
    size_t len; /* bytes of its copy in the dead-letter producer */
} dl_rec_t;

typedef struct parked {
    int64_t offset;
    uint8_t host[16];
    uint32_t events;
    size_t len;
    uint8_t *frame; /* a copy of the message's value */
} parked_t;

typedef struct part {
    int owned;
    int paused; /* by the rate limit, after memory ran out, or a dead letter FAILED (dl_hold) */
    int seek;
    int broken; /* shard write failed; re-opened by the health check */
    int64_t next;
    int64_t committed_next;
    uint64_t pend_batches, pend_events, pend_dups; /* since the last commit; counted once committed */
    dl_rec_t *dl; /* see above */
    size_t n_dl, cap_dl;
    unsigned dl_sent, dl_failed; /* records in those states */
    uint64_t dl_sent_bytes;      /* len of the SENT records */
    int dl_hold;                 /* paused until no dead letter is SENT, then rewound */
    int dl_full;                 /* paused until half its share of the dead-letter queue is free */
    double dl_full_said;         /* when a full hold was last logged */
    uint32_t epoch;              /* the assignment (and log) the dead letters' reports are for */
    uint32_t reset_epoch;        /* the epoch its last log reset began (kept by part_reset) */
    double resume_at;
    int fresh;       /* the shard has no stored offset: the first message sets next */
    int64_t nomem_at; /* offset whose decode ran out of memory, nomem_tries times */
    unsigned nomem_tries;
    double seek_at;  /* when the pending seek was asked for (or last asked again) */
    double gap_at;   /* when the log's start was last asked for while seeking */
    edr_store_writer_t *w;
    /* offsets below it were counted (batches, events, duplicates) when read
     * before: a shard closed after a failed flush (no write-ahead log)
     * loses its commits since the last flush, which are read again and
     * stored, but not counted twice. Kept across revocations; reset with
     * the log (note_log_reset). Dead letters and gaps below it were
     * counted too; the gaps counted are kept (gaps.h), so a gap read again
     * is not counted again, while offsets stored before, whose commit was
     * lost and which the topic no longer has, are (kept likewise). */
    int64_t counted_next;
    /* offsets at and above counted_next counted too: batches a commit
     * stored past a parked one (which holds the stored offset back), as
     * ranges [lo, hi), in order. Kept like counted_next (review-1206i M2:
     * after a failed flush they were read again and counted again) */
    struct {
        int64_t lo, hi;
    } * cnt;
    size_t n_cnt, cap_cnt;
    int64_t *pend_offs; /* offsets of the batches counted in the next commit */
    size_t n_pend_offs, cap_pend_offs;
    edr_gaps_t gaps;
    parked_t *pk; /* parked batches, by offset (see above) */
    size_t n_pk, cap_pk;
    double pk_wait; /* memory ran out storing one: none before then */
    int64_t hw;     /* its high watermark as its leader last said (publish_metrics) */
    double hw_at;
} part_t;

typedef struct hostrate {
    uint8_t id[16];
    int used;
    double tokens;
    double last;
    uint32_t parked; /* its batches parked (all partitions): the next ones park too */
    uint32_t pass;   /* the drain pass that found its allowance short */
} hostrate_t;

struct edr_collector {
    const edr_config_t *cfg;
    edr_collector_opts_t opts;
    edr_kafka_cluster_t *embedded;
    rd_kafka_t *cons, *dlq;
    char topic[256], dlq_topic[256], store_dir[4096];
    edr_frame_ctx_t *fctx;
    edr_metrics_t *metrics;
    part_t parts[MAX_PARTS];
    int fatal;
    int ever_assigned;
    int retire_due; /* shards were assigned: run retention at the next turn of the loop */
    int bp_paused;
    char bp_why[256];
    uint64_t min_free;
    uint64_t max_ahead_ns;
    double commit_interval;
    /* the store's write-ahead log (without collector.store_wal): skipped
     * while the consuming thread is busy (edr__collector_store_log) */
    double log_busy;      /* collector.store_wal_busy, a fraction */
    int store_log;        /* the shards are asked to write it */
    double busy;          /* the consuming thread's busy share over the last second */
    double busy_t0, busy_cpu0;
    uint64_t free_disk;   /* free bytes where the store is, at the last health check */
    double host_rate;
    hostrate_t *rates;
    size_t rates_cap, n_rates;
    uint64_t pk_max;         /* collector.rate_limit_memory */
    uint64_t pk_bytes, n_pk; /* parked copies, all partitions */
    uint32_t pk_pass;        /* drain passes (park_drain) */
    double pk_drained;       /* when the last one ran */
    uint32_t epochs;     /* the last part_t.epoch given */
    unsigned n_owned;    /* partitions owned: they share the dead-letter queue */
    uint64_t dl_queue_msgs, dl_queue_bytes; /* the dead-letter producer's queue limits (0: none) */
    uint64_t dl_unacked; /* dead letters sent and not answered yet (all partitions) */
    int dl_settle_due;   /* a report came that dl_settle() acts on */
    int dlq_fatal;       /* the dead-letter producer takes nothing more */
    double offsets_sent; /* when kafka_offsets() last committed to the group */
    double dl_said_t0;   /* dead letters logged one by one: the minute's start, */
    unsigned dl_said;    /* how many were logged in it, */
    uint64_t dl_unsaid;  /* and how many were not */
    int stopping;        /* edr_collector_run() has returned: a revocation does not wait */
    volatile sig_atomic_t *stop;

    /* counters */
    uint64_t events, batches, duplicates, deadletters, rate_limited, pauses, commits,
        commit_errors, store_writes, store_writes_saved;
    uint64_t
        rate_held; /* times a host's batch found the parking memory full: its partition waited */
    uint64_t dl_retries; /* dead letters Kafka did not take, to be sent again */
    uint64_t dl_lost;    /* dead letters Kafka refused for good (logged, frame not kept) */
    uint64_t dl_full_holds; /* times a partition waited for room in the dead-letter queue */
    uint64_t gap;        /* messages gone from the log before they were stored (retention) */
    uint64_t log_resets; /* partitions whose log restarted below the stored offset */
    uint64_t nomem;      /* batches read again after memory ran out decoding them */
    uint64_t ret_errors; /* retention runs of a shard that failed (logged; tried again in a minute) */
    uint64_t keep_ns;    /* collector.retention, 0: for ever */
    double rate_said;    /* when a rate-limited host was last logged */
    uint64_t old_batches; /* stored though dated before the horizon (deleted at the next run) */
    double old_said;      /* when that was last logged */
    struct {
        const char *reason;
        uint64_t n;
    } dl[MAX_REASONS];
    double last_data_commit, cpu;
    double last_msg, last_commit, last_health, last_metrics, started;
    uint64_t metrics_events_prev;
    double metrics_t_prev, events_per_s;
    /* the cluster as librdkafka's statistics see it (once a second): brokers
     * this consumer is connected to, and whether it had been cut off */
    int kafka_brokers_up, kafka_stats_seen, kafka_cut_off;
    int kafka_stats_on; /* statistics.interval.ms > 0 (kafka.properties may turn it off) */
    double kafka_down_since;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int edr_collector_check(edr_frame_ctx_t *ctx, const void *key, size_t key_len, const void *val,
                        size_t val_len, uint64_t now_ns, uint64_t max_ahead_ns,
                        Edr__V1__EventBatch **batch, edr_collector_verdict_t *v)
{
    memset(v, 0, sizeof(*v));
    if (!key || key_len != 16) {
        v->reason = "NO_KEY";
        snprintf(v->detail, sizeof(v->detail), "message key is %zu bytes, not a 16-byte host id",
                 key_len);
        return -1;
    }
    Edr__V1__EventBatch *b;
    int rc = edr_frame_decode(ctx, val, val_len, &b);
    if (rc) {
        v->err = rc;
        v->reason = edr_err_name(rc);
        snprintf(v->detail, sizeof(v->detail), "%s", edr_strerror(rc));
        return -1;
    }
    if (!b->sensor || b->sensor->host_id.len != 16) {
        v->reason = "NO_SENSOR";
        snprintf(v->detail, sizeof(v->detail), "batch has no sensor host id");
        return -1;
    }
    if (memcmp(b->sensor->host_id.data, key, 16) != 0) {
        v->reason = "HOST_MISMATCH";
        snprintf(v->detail, sizeof(v->detail), "batch host id differs from the message key");
        return -1;
    }
    uint64_t hi = now_ns + max_ahead_ns;
    uint64_t t = b->base_time_ns;
    for (size_t i = 0; i <= b->n_events; i++) {
        if (i > 0)
            t = b->base_time_ns + (uint64_t)b->events[i - 1]->time_offset_ns;
        if (t < MIN_TIME_NS || t > hi) {
            v->reason = "BAD_TIMESTAMP";
            snprintf(v->detail, sizeof(v->detail),
                     "event time %llu ns is before 2000 or too far in the future",
                     (unsigned long long)t);
            return -1;
        }
    }
    *batch = b;
    return 0;
}

static void count_dl(edr_collector_t *c, const char *reason)
{
    c->deadletters++;
    for (int i = 0; i < MAX_REASONS; i++) {
        if (!c->dl[i].reason) {
            c->dl[i].reason = reason;
            c->dl[i].n = 1;
            return;
        }
        if (!strcmp(c->dl[i].reason, reason)) {
            c->dl[i].n++;
            return;
        }
    }
}

static int shard_open(edr_collector_t *c, int p)
{
    char err[512];
    edr_store_opts_t so = {
        .sync = edr_config_bool(c->cfg, "collector.store_sync"),
        .no_wal = !edr_config_bool(c->cfg, "collector.store_wal"),
        .min_free = c->min_free,
        .flush_interval_ns = edr_config_duration_ns(c->cfg, "collector.store_flush_interval"),
    };
    /* the previous owner may still be closing the shard: wait for its lock,
     * unless asked to stop (a second collector on the store waited a
     * minute a shard, its SIGTERM unheard: review-1206n-coll 3) */
    int tries;
    for (tries = 0; tries < 600 && !(c->stop && *c->stop); tries++) {
        c->parts[p].w = edr_store_writer_open(c->store_dir, (uint32_t)p, &so, err, sizeof(err));
        if (c->parts[p].w)
            break;
        /* waiting for a lock: said at once, then every 30 s (every 2 s for
         * each of 16 shards made a page of the same line a second) */
        if (!strstr(err, "lock") || tries % 300 == 0)
            edr_log_warn("%s%s", err, strstr(err, "lock") ? " (waiting)" : "");
        if (!strstr(err, "lock") && tries > 10)
            break;
        usleep(100000);
    }
    if (!c->parts[p].w) {
        if (c->stop && *c->stop)
            return EDR_EAGAIN; /* asked to stop: not an error (review-1206o 8) */
        edr_log_error("partition %d: cannot open its store shard: %s", p,
                      strstr(err, "lock")
                          ? "another process holds it still after 60 s (a second collector on "
                            "this store?)"
                          : err);
        return EDR_ESTORE;
    }
    int64_t off;
    int rc = edr_store_writer_offset(c->parts[p].w, &off);
    if (rc == EDR_ENOENT) {
        /* a new shard starts at the topic's start as it is now: what the
         * topic deletes later, before it is read, is lost and counted (the
         * first message read set the start, so a burst the topic trimmed
         * after the assignment went uncounted: review-1206p-kafka F1).
         * Without an answer, the first message read sets it. */
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t we =
            c->cons ? rd_kafka_query_watermark_offsets(c->cons, c->topic, p, &lo, &hi, 5000)
                    : RD_KAFKA_RESP_ERR__STATE;
        if (we == RD_KAFKA_RESP_ERR_NO_ERROR) {
            off = lo;
            edr_log_info("partition %d: a new store shard starts at offset %lld, the topic's "
                         "start",
                         p, (long long)lo);
        } else {
            off = 0; /* librdkafka starts at the log's start when it no longer has 0 */
            c->parts[p].fresh = 1;
            edr_log_warn("partition %d: a new store shard; the topic's start is unknown (%s): "
                         "the first message read sets it, and what the topic deletes before it "
                         "is not counted as lost",
                         p, rd_kafka_err2str(we));
        }
    }
    else if (rc) {
        edr_store_writer_destroy(c->parts[p].w);
        c->parts[p].w = NULL;
        return rc;
    }
    c->parts[p].next = c->parts[p].committed_next = off;
    edr_store_writer_want_wal(c->parts[p].w, c->store_log);
    return 0;
}

/* Free space under which the store's log is not written (or 4 times
 * collector.min_free_disk when that is more). */
#define LOG_MIN_FREE (1ull << 30)

int edr__collector_store_log(int log_now, double busy, double threshold)
{
    /* a commit with the log costs the consuming thread about a fifth more
     * (docs/design-deltas.md), so one busy just under the threshold with the
     * log is well under it without: back to the log only at 5/8 of it */
    return busy < threshold * (log_now ? 1.0 : 0.625);
}

/* Once a second: how busy the consuming thread was, and whether the shards
 * write the store's log (see collector.store_wal_busy). */
static void busy_check(edr_collector_t *c, double now, double cpu)
{
    c->busy = (cpu - c->busy_cpu0) / (now - c->busy_t0);
    c->busy_t0 = now;
    c->busy_cpu0 = cpu;
    /* Near a full disk, no log: an append that fails for want of space
     * makes Debian's RocksDB (built with assertions) abort when the log is
     * synced later (seen with 0404's full tmpfs). Leaving it costs nothing. */
    uint64_t roomy = c->min_free * 4 > LOG_MIN_FREE ? c->min_free * 4 : LOG_MIN_FREE;
    int log = c->free_disk >= roomy && edr__collector_store_log(c->store_log, c->busy, c->log_busy);
    if (log == c->store_log)
        return;
    if (log && (c->bp_paused || !c->n_owned))
        return; /* idle because RocksDB is behind (no waiting flushes now), or owning nothing */
    c->store_log = log;
    if (!log && c->free_disk < roomy)
        edr_log_debug("%llu bytes free under %s: the store's shards commit without the "
                      "write-ahead log", (unsigned long long)c->free_disk, c->store_dir);
    else
        edr_log_debug("consuming thread busy %.0f%%: the store's shards commit %s the "
                      "write-ahead log", c->busy * 100, log ? "with" : "without");
    for (int p = 0; p < MAX_PARTS; p++)
        if (c->parts[p].w)
            edr_store_writer_want_wal(c->parts[p].w, log);
}

/* Index of the first dead letter of pt at an offset >= off (n_dl when none). */
static size_t dl_lower(const part_t *pt, int64_t off)
{
    size_t lo = 0, hi = pt->n_dl;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pt->dl[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static dl_rec_t *dl_find(part_t *pt, int64_t off)
{
    size_t i = dl_lower(pt, off);
    return i < pt->n_dl && pt->dl[i].offset == off ? &pt->dl[i] : NULL;
}

/* Moves dead letter d of pt to state st, keeping pt's counts. */
static void dl_set(part_t *pt, dl_rec_t *d, int st)
{
    if (d->state == DL_SENT) {
        pt->dl_sent--;
        pt->dl_sent_bytes -= d->len;
    } else if (d->state == DL_FAILED) {
        pt->dl_failed--;
    }
    d->state = st;
    if (st == DL_SENT) {
        pt->dl_sent++;
        pt->dl_sent_bytes += d->len;
    } else if (st == DL_FAILED) {
        pt->dl_failed++;
    }
}

static void dl_drop(part_t *pt, size_t i)
{
    dl_set(pt, &pt->dl[i], DL_DONE);
    memmove(&pt->dl[i], &pt->dl[i + 1], (pt->n_dl - i - 1) * sizeof(pt->dl[0]));
    pt->n_dl--;
}

/* Forgets the dead letters of pt: the reports still to come for them belong
 * to an older epoch and change nothing. */
static void dl_forget(edr_collector_t *c, part_t *pt)
{
    pt->n_dl = 0;
    pt->dl_sent = pt->dl_failed = 0;
    pt->dl_sent_bytes = 0;
    pt->epoch = ++c->epochs;
}

/* The offset a commit of pt may store: next, or the lowest offset whose
 * dead letter is not DONE when that is lower. */
static int64_t dl_safe_next(const part_t *pt)
{
    for (size_t i = 0; i < pt->n_dl; i++)
        if (pt->dl[i].state != DL_DONE)
            return pt->dl[i].offset < pt->next ? pt->dl[i].offset : pt->next;
    return pt->next;
}

static hostrate_t *rate_find(edr_collector_t *c, const uint8_t id[16]);

/* Whether the batch or dead letter at offset off was counted already. */
static int counted(const part_t *pt, int64_t off)
{
    if (off < pt->counted_next) return 1;
    size_t lo = 0, hi = pt->n_cnt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (off < pt->cnt[mid].lo)
            hi = mid;
        else if (off >= pt->cnt[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* Notes offset off as counted (past counted_next); out of memory, it is
 * not noted: counted again if read again after a failed flush. */
static void counted_add(part_t *pt, int64_t off)
{
    size_t i = pt->n_cnt;
    while (i > 0 && pt->cnt[i - 1].lo > off) /* offsets mostly grow: from the end */
        i--;
    if (i > 0 && off < pt->cnt[i - 1].hi) return;
    int joins_prev = i > 0 && pt->cnt[i - 1].hi == off;
    int joins_next = i < pt->n_cnt && pt->cnt[i].lo == off + 1;
    if (joins_prev && joins_next) {
        pt->cnt[i - 1].hi = pt->cnt[i].hi;
        memmove(pt->cnt + i, pt->cnt + i + 1, (pt->n_cnt - i - 1) * sizeof(pt->cnt[0]));
        pt->n_cnt--;
    } else if (joins_prev) {
        pt->cnt[i - 1].hi = off + 1;
    } else if (joins_next) {
        pt->cnt[i].lo = off;
    } else {
        if (EDR_VEC_RESERVE(pt->cnt, pt->cap_cnt, pt->n_cnt + 1, 16)) return;
        memmove(pt->cnt + i + 1, pt->cnt + i, (pt->n_cnt - i) * sizeof(pt->cnt[0]));
        pt->cnt[i].lo = off;
        pt->cnt[i].hi = off + 1;
        pt->n_cnt++;
    }
}

/* counted_next moved to `to`: the ranges below it go. */
static void counted_trim(part_t *pt)
{
    size_t k = 0;
    while (k < pt->n_cnt && pt->cnt[k].hi <= pt->counted_next)
        k++;
    memmove(pt->cnt, pt->cnt + k, (pt->n_cnt - k) * sizeof(pt->cnt[0]));
    pt->n_cnt -= k;
}

/* Forgets the parked batches of pt at offsets >= from (the partition reads
 * them again from Kafka: it rewinds, or its stored offset is re-read). */
static void park_forget(edr_collector_t *c, part_t *pt, int64_t from)
{
    while (pt->n_pk && pt->pk[pt->n_pk - 1].offset >= from) {
        parked_t *k = &pt->pk[--pt->n_pk];
        hostrate_t *hr = rate_find(c, k->host);
        if (hr && hr->parked) hr->parked--;
        c->pk_bytes -= k->len;
        c->n_pk--;
        free(k->frame);
    }
    if (!pt->n_pk) {
        free(pt->pk);
        pt->pk = NULL;
        pt->cap_pk = 0;
    }
}

/* The offset a commit of pt may store: dl_safe_next, or the lowest parked
 * batch's offset when that is lower. */
static int64_t safe_next(const part_t *pt)
{
    int64_t to = dl_safe_next(pt);
    return pt->n_pk && pt->pk[0].offset < to ? pt->pk[0].offset : to;
}

/* Partition p's state cleared (its shard closed by the caller), for a new
 * assignment or after a revocation. */
static void part_reset(edr_collector_t *c, int p)
{
    park_forget(c, &c->parts[p], INT64_MIN);        /* read again by this partition's next owner */
    uint32_t reset_epoch = c->parts[p].reset_epoch; /* for reports still to come */
    if (c->parts[p].owned)
        c->n_owned--;
    free(c->parts[p].dl);
    /* a failed close's commits, read again */
    int64_t counted_next = c->parts[p].counted_next;
    edr_gaps_t gaps = c->parts[p].gaps;
    void *cnt = c->parts[p].cnt;
    size_t n_cnt = c->parts[p].n_cnt, cap_cnt = c->parts[p].cap_cnt;
    free(c->parts[p].pend_offs);
    memset(&c->parts[p], 0, sizeof(c->parts[p]));
    c->parts[p].cnt = cnt;
    c->parts[p].n_cnt = n_cnt;
    c->parts[p].cap_cnt = cap_cnt;
    c->parts[p].epoch = ++c->epochs;
    c->parts[p].reset_epoch = reset_epoch;
    c->parts[p].counted_next = counted_next;
    c->parts[p].gaps = gaps;
    c->parts[p].hw = -1;
}

/* Asks the consumer to fetch partition p from its next offset again. Until
 * that offset arrives, the partition's messages are ignored; one that does
 * not come (the seek failed, or was lost in the consumer) is asked for again
 * by skip_seek() every few seconds. */
static void seek_part(edr_collector_t *c, int p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, p)->offset = c->parts[p].next;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->cons, l, 5000);
    if (e) {
        edr_log_warn("seek partition %d to %lld: %s (asked again in a few seconds)", p,
                     (long long)c->parts[p].next, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (l->elems[0].err) {
        edr_log_warn("seek partition %d to %lld: %s (asked again in a few seconds)", p,
                     (long long)c->parts[p].next, rd_kafka_err2str(l->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(l);
    c->parts[p].seek = 1;
    c->parts[p].seek_at = now_s();
}

/* Offsets next..to-1 of partition p are gone from the topic: counted as
 * lost, said, and next moves to `to`. */
static void note_gap(edr_collector_t *c, int p, int64_t to)
{
    part_t *pt = &c->parts[p];
    if (pt->fresh) {
        edr_log_info("partition %d: a new store shard starts at offset %lld, the topic's start",
                     p, (long long)to);
        pt->next = to;
        pt->fresh = 0;
        return;
    }
    for (size_t i = 0; i < pt->n_dl && pt->dl[i].offset < to;) {
        dl_rec_t *d = &pt->dl[i];
        if (d->state == DL_SENT) { /* its report decides; it cannot be read again */
            d->gone = 1;
            i++;
            continue;
        }
        if (d->state == DL_FAILED && !counted(pt, d->offset)) {
            /* a dead letter to be sent again whose frame the topic no longer has
             * (below counted_next: one sent again, whose first copy Kafka has) */
            edr_log_error("partition %d: the frame at offset %lld, whose dead letter did not "
                          "reach Kafka, was deleted from %s before it was sent again: lost",
                          p, (long long)d->offset, c->topic);
            c->dl_lost++;
        }
        dl_drop(pt, i);
    }
    /* a gap read again after a failed flush (see counted_next) was counted */
    int64_t again = edr_gaps_overlap(&pt->gaps, pt->next, to);
    c->gap += (uint64_t)(to - pt->next - again);
    if (again)
        edr_log_error("partition %d: offsets %lld..%lld are no longer in %s (deleted by the "
                      "topic's retention before they were stored): %lld batches lost (%lld of "
                      "them counted before)",
                      p, (long long)pt->next, (long long)to - 1, c->topic,
                      (long long)(to - pt->next), (long long)again);
    else
        edr_log_error("partition %d: offsets %lld..%lld are no longer in %s (deleted by the "
                      "topic's retention before they were stored): %lld batches lost",
                      p, (long long)pt->next, (long long)to - 1, c->topic,
                      (long long)(to - pt->next));
    edr_gaps_add(&pt->gaps, pt->next, to);
    pt->next = to;
}

/* A message below the stored offset, with no seek under way: either a
 * redelivery (skipped), or the partition's log restarted below that offset
 * (the topic recreated, a cluster without persistence restarted, an unclean
 * leader election truncated it): Kafka said the stored offset was out of
 * range and the consumer went back to the log's start. The log then ends
 * below the stored offset, which the high watermark of the fetch that
 * brought this message shows. Its messages are then new: consumption
 * restarts at this one (a batch already stored is still recognised by host
 * and seq). Returns 1 when it did. */
static int note_log_reset(edr_collector_t *c, int p, int64_t offset)
{
    part_t *pt = &c->parts[p];
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(c->cons, c->topic, p, &lo, &hi) != 0 || hi < 0 ||
        hi >= pt->next || offset >= hi)
        return 0;
    c->log_resets++;
    dl_forget(c, pt); /* their offsets are of the old log */
    park_forget(c, pt, INT64_MIN);
    pt->reset_epoch = pt->epoch;
    pt->counted_next = 0;
    pt->n_cnt = 0;
    pt->gaps.n = 0;
    edr_log_error("partition %d: the log of %s ends at offset %lld, below the stored offset %lld: "
                  "it was recreated or truncated; consuming it from offset %lld",
                  p, c->topic, (long long)hi, (long long)pt->next, (long long)offset);
    pt->next = offset;
    return 1;
}

/* Partition p is seeking its next offset and a later one arrived (offset
 * `seen`). Usually a message fetched before the seek, to be ignored. But
 * when the topic's retention deleted `next` before it was stored, the
 * consumer restarts at the log's start and `next` never comes: the messages
 * in between are lost, counted and said, and consumption goes on from the
 * start. A seek that never took effect is asked for again. Called at most
 * once a second per partition (a query to the partition's leader). */
static void skip_seek(edr_collector_t *c, int p, int64_t seen, double now)
{
    part_t *pt = &c->parts[p];
    if (now - pt->gap_at < 1.0)
        return;
    pt->gap_at = now;
    int64_t lo = -1, hi = -1;
    /* short: it runs on the consuming thread (a timeout just waits for the next try) */
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->cons, c->topic, p, &lo, &hi, 200);
    if (!e && lo > pt->next && seen >= lo) {
        note_gap(c, p, lo);
        if (seen != pt->next)
            seek_part(c, p);
    } else if (now - pt->seek_at >= 5.0) {
        edr_log_warn("partition %d: offset %lld not fetched %.0f s after the seek; seeking again",
                     p, (long long)pt->next, now - pt->seek_at);
        seek_part(c, p);
    }
}

static void pause_part(edr_collector_t *c, int p, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, p);
    if (pause)
        rd_kafka_pause_partitions(c->cons, l);
    else
        rd_kafka_resume_partitions(c->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Closes partition p's shard after a failed commit or flush; the health
 * check re-opens it and the partition reads again from the offset the
 * shard holds (commits not flushed are gone with their offsets when the
 * store runs without a write-ahead log: counted_next keeps them from being
 * counted twice). */
static void discard_shard(edr_collector_t *c, int p)
{
    part_t *pt = &c->parts[p];
    edr_store_writer_destroy(pt->w);
    pt->w = NULL;
    pt->broken = 1;
    pt->pend_batches = pt->pend_events = pt->pend_dups = 0; /* re-read, counted again */
    pt->n_pend_offs = 0;
    park_forget(c, pt, INT64_MIN); /* read again from the shard's stored offset, below them */
    pause_part(c, p, 1);
}

/* Commits partition p's shard when it has pending work or its stored
 * offset may move: its batches, and as offset next or, when lower, the
 * first offset whose dead letter Kafka has not acknowledged. A failed shard
 * is closed, marked broken and re-opened by the health check; its partition
 * re-reads from its stored offset. */
static void commit_part(edr_collector_t *c, int p)
{
    part_t *pt = &c->parts[p];
    if (!pt->owned || !pt->w)
        return;
    int64_t to = safe_next(pt);
    if (to == pt->committed_next && !edr_store_writer_pending(pt->w) && !pt->pend_dups)
        return;
    edr_store_writer_set_offset(pt->w, to);
    edr_store_writer_stats_t w0, w1;
    edr_store_writer_stats(pt->w, &w0);
    int rc = edr_store_writer_commit(pt->w);
    if (rc) {
        c->commit_errors++;
        edr_log_error("partition %d: store commit failed (%s); pausing it and re-reading "
                      "from its stored offset",
                      p, edr_strerror(rc));
        discard_shard(c, p);
        return;
    }
    pt->committed_next = to;
    if (to > pt->counted_next)
        pt->counted_next = to;
    for (size_t i = 0; i < pt->n_pend_offs; i++)
        if (pt->pend_offs[i] >= pt->counted_next) counted_add(pt, pt->pend_offs[i]);
    pt->n_pend_offs = 0;
    counted_trim(pt);
    size_t passed = dl_lower(pt, to); /* DONE, and never read again */
    if (passed) {
        memmove(pt->dl, pt->dl + passed, (pt->n_dl - passed) * sizeof(pt->dl[0]));
        pt->n_dl -= passed;
    }
    edr_store_writer_stats(pt->w, &w1);
    c->store_writes += w1.writes - w0.writes;
    c->store_writes_saved += w1.writes_saved - w0.writes_saved;
    c->batches += pt->pend_batches;
    c->events += pt->pend_events;
    c->duplicates += pt->pend_dups;
    pt->pend_batches = pt->pend_events = pt->pend_dups = 0;
    c->commits++;
    c->last_data_commit = now_s();
}

/* Commits every shard with pending work (commit_part); never waits for Kafka. */
/* Tells the consumer group, once a second, the offsets its partitions'
 * shards hold, so that Kafka's own tools show the group's lag (kcat,
 * kafka-consumer-groups, lag exporters): it committed none, and a group
 * showed no offsets or stale ones of another member (review-1206p-kafka F4).
 * For monitoring only: the collector resumes from the offsets in its
 * shards, written with the data, never from these. A commit that fails is
 * not tried again (the next second's carries newer offsets). At a stop
 * (last != 0) it waits for the answer, 2 s at most. */
static void kafka_offsets(edr_collector_t *c, int last)
{
    double now = now_s();
    /* not while the cluster is away: each commit would wait in the
     * consumer's close for the session timeout (a stop took 47 s instead of
     * 0.03 s after an outage: review-1206q 2) */
    if (c->opts.assign_all || !c->n_owned || (!last && now - c->offsets_sent < 1.0) ||
        (c->kafka_stats_seen && c->kafka_brokers_up == 0))
        return;
    c->offsets_sent = now;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->n_owned);
    for (int p = 0; p < MAX_PARTS; p++)
        if (c->parts[p].owned && c->parts[p].w)
            rd_kafka_topic_partition_list_add(l, c->topic, p)->offset = c->parts[p].committed_next;
    rd_kafka_queue_t *q = last && l->cnt ? rd_kafka_queue_new(c->cons) : NULL;
    if (q) { /* the answer, or 2 s, whichever comes first */
        if (rd_kafka_commit_queue(c->cons, l, q, NULL, NULL) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 2000);
            if (ev)
                rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(q);
    } else if (l->cnt) {
        rd_kafka_commit(c->cons, l, 1);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void commit_all(edr_collector_t *c)
{
    for (int p = 0; p < MAX_PARTS; p++) {
        commit_part(c, p);
        /* without the WAL, commits reach disk (and readers) when flushed;
         * a failed flush re-opens the shard, like a failed commit */
        if (c->parts[p].owned && c->parts[p].w && edr_store_writer_tick(c->parts[p].w)) {
            edr_log_error("partition %d: store flush failed; pausing it and re-reading from its "
                          "stored offset", p);
            c->commit_errors++;
            discard_shard(c, p);
        }
    }
    c->last_commit = now_s();
    kafka_offsets(c, 0);
}

/* Pauses partition p until `until` (monotonic seconds); the health check
 * resumes it, fetching again from its next offset. */
static void hold_part(edr_collector_t *c, int p, double until)
{
    c->parts[p].paused = 1;
    c->parts[p].resume_at = until;
    pause_part(c, p, 1);
}

/* 1 when partition p may send one more dead letter of len bytes: its SENT
 * ones stay within its share of the dead-letter producer's queue (the
 * queue's limits divided by the partitions owned), so that every partition
 * finds room for its own and none gets a full queue because of another.
 * One is always allowed: a frame larger than the share is sent alone. With
 * half (half != 0), whether half the share is free (a full hold ends). */
static int dl_room(const edr_collector_t *c, const part_t *pt, size_t len, int half)
{
    if (!pt->dl_sent)
        return 1;
    uint64_t n = c->n_owned ? c->n_owned : 1, d = half ? 2 : 1;
    uint64_t msgs = c->dl_queue_msgs ? c->dl_queue_msgs / n / d : UINT64_MAX;
    uint64_t bytes = c->dl_queue_bytes ? c->dl_queue_bytes / n / d : UINT64_MAX;
    return pt->dl_sent + (half ? 0 : 1) <= msgs && pt->dl_sent_bytes + len <= bytes;
}

/* Acts on the dead letters of partition p: one FAILED holds the partition
 * (see the state machine above) and, once none of its dead letters is
 * SENT, next moves back to the lowest FAILED one and the partition is
 * fetched from there; a partition held for room in the dead-letter queue is
 * fetched again from next once half its share is free. */
static void dl_settle(edr_collector_t *c, int p)
{
    part_t *pt = &c->parts[p];
    if (!pt->owned)
        return;
    if (pt->dl_failed && !pt->dl_hold) {
        pt->dl_hold = 1;
        hold_part(c, p, DBL_MAX);
        if (pt->dl_sent)
            edr_log_info("partition %d: waiting for the answers to its %u other dead letters "
                         "in flight before reading it again", p, pt->dl_sent);
    }
    if (pt->dl_hold) {
        if (pt->dl_sent)
            return;
        int64_t low = -1;
        for (size_t i = 0; i < pt->n_dl;) {
            if (pt->dl[i].state == DL_FAILED) {
                if (low < 0)
                    low = pt->dl[i].offset;
                dl_drop(pt, i); /* sent again when read again */
            } else {
                i++;
            }
        }
        if (low >= 0 && low < pt->next) {
            pt->next = low; /* batches stored past it are duplicates when read again */
            park_forget(c, pt, low);
        }
    } else if (!pt->dl_full || !dl_room(c, pt, 0, 1)) {
        return;
    }
    pt->dl_hold = pt->dl_full = 0;
    pt->paused = 0;
    if (!c->bp_paused && !pt->broken) { /* else the health check resumes and seeks */
        pause_part(c, p, 0);
        seek_part(c, p);
    }
}

static void dl_settle_all(edr_collector_t *c)
{
    c->dl_settle_due = 0;
    for (int p = 0; p < MAX_PARTS; p++)
        if (c->parts[p].dl_failed || c->parts[p].dl_hold || c->parts[p].dl_full)
            dl_settle(c, p);
}

/* Dead letters of the owned partitions that are SENT (sent_only), or SENT
 * or FAILED; *fp and *fo (when fp is not NULL): partition and offset of the
 * first of them. */
static unsigned dl_open_count(const edr_collector_t *c, int sent_only, int *fp, int64_t *fo)
{
    unsigned n = 0;
    for (int p = 0; p < MAX_PARTS; p++) {
        const part_t *pt = &c->parts[p];
        unsigned k = pt->owned ? pt->dl_sent + (sent_only ? 0 : pt->dl_failed) : 0;
        if (!k)
            continue;
        for (size_t i = 0; fp && !n && i < pt->n_dl; i++)
            if (pt->dl[i].state == DL_SENT || (!sent_only && pt->dl[i].state == DL_FAILED)) {
                *fp = p;
                *fo = pt->dl[i].offset;
                break;
            }
        n += k;
    }
    return n;
}

/* At a revocation or a stop: serves the dead-letter producer for up to
 * max_s seconds until no dead letter of an owned partition is SENT, saying
 * what it waits for, so that the commit that follows can move the stored
 * offsets past them. One not acknowledged by then keeps its partition's
 * stored offset at its frame: the frame is read and sent again later. */
static void dl_drain(edr_collector_t *c, double max_s, const char *why)
{
    int fp = -1;
    int64_t fo = 0;
    if (max_s <= 0)
        return;
    double t0 = now_s();
    unsigned n = dl_open_count(c, 1, &fp, &fo);
    int waited = n > 0;
    if (waited) {
        edr_log_warn("%s: waiting up to %.0f s for %u dead letters not yet acknowledged by %s "
                     "(the first from partition %d offset %lld)",
                     why, max_s, n, c->dlq_topic, fp, (long long)fo);
        while (n && !c->dlq_fatal && now_s() - t0 < max_s) {
            rd_kafka_poll(c->dlq, 100);
            n = dl_open_count(c, 1, &fp, &fo);
        }
    }
    unsigned left = dl_open_count(c, 0, &fp, &fo);
    if (!left) {
        if (waited)
            edr_log_info("%s: the dead letters were acknowledged after %.1f s", why,
                         now_s() - t0);
        return;
    }
    edr_log_warn("%s: %u dead letters not acknowledged by %s (the first from partition %d offset "
                 "%lld): the stored offsets of their partitions stay at their frames, which are "
                 "read and sent again",
                 why, left, c->dlq_topic, fp, (long long)fo);
}

/* Shards of a new assignment, opened by several threads: most of an open is
 * CPU (RocksDB writes and re-parses its OPTIONS file, once per column family
 * of a new shard), 20-50 ms a shard, and consumption starts only once every
 * shard is open. */
typedef struct {
    edr_collector_t *c;
    const int *parts;
    int *rc;
    int n;
    atomic_int next;
} open_job_t;

static void *open_worker(void *arg)
{
    open_job_t *j = arg;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;)
        j->rc[i] = shard_open(j->c, j->parts[i]);
    return NULL;
}

/* Opens the shards of parts[0..n) on up to one thread per CPU it may use
 * (at most 8); rc[i] is shard_open()'s result for parts[i]. */
static void open_shards(edr_collector_t *c, const int *parts, int n, int *rc)
{
    open_job_t j = {.c = c, .parts = parts, .rc = rc, .n = n};
    unsigned cpus = edr_cpu_budget();
    int nt = (int)(cpus > 8 ? 8 : cpus) - 1; /* this thread works too */
    pthread_t th[8];
    int started = 0;
    for (; started < nt && started < n - 1; started++)
        if (pthread_create(&th[started], NULL, open_worker, &j) != 0)
            break;
    open_worker(&j);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

static void assign_parts(edr_collector_t *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    int want[MAX_PARTS], rc[MAX_PARTS], n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p < 0 || p >= MAX_PARTS || n == MAX_PARTS) {
            /* fatal: and no shard is opened (1,024 were, filling a disk) */
            edr_log_error("partition %d out of range: a collector takes partitions 0-%d (the "
                          "topic has more: kafka.partitions or the cluster's topic)",
                          p, MAX_PARTS - 1);
            c->fatal = 1;
            return;
        }
        want[n++] = p;
    }
    for (int k = 0; k < n; k++)
        part_reset(c, want[k]);
    open_shards(c, want, n, rc);
    for (int k = 0; k < n; k++) {
        int p = want[k];
        if (rc[k]) {
            if (rc[k] != EDR_EAGAIN) c->fatal = 1; /* shard_open said why */
            continue;
        }
        c->parts[p].owned = 1;
        c->n_owned++;
        edr_log_info("partition %d assigned: resuming at stored offset %lld", p,
                     (long long)c->parts[p].next);
    }
    /* the assignment resumes every opened partition at its stored offset */
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < MAX_PARTS && c->parts[p].owned)
            parts->elems[i].offset = c->parts[p].next;
    }
    c->ever_assigned = 1;
    c->retire_due = 1; /* shards just opened: what is past the horizon goes now */
    c->last_msg = now_s();
    rd_kafka_resp_err_t ae = rd_kafka_assign(rk, parts);
    if (ae) {
        /* e.g. a cooperative assignment strategy set in kafka.properties:
         * nothing would be consumed, silently */
        edr_log_error("cannot take the assigned partitions: %s (kafka.properties "
                      "partition.assignment.strategy must be an eager one: range, roundrobin)",
                      rd_kafka_err2str(ae));
        c->fatal = 1;
        return;
    }
    /* A partition paused before a rebalance (back-pressure, rate limit, a
     * broken shard) and given back to this consumer stays paused in
     * librdkafka across the assignment: nothing would ever resume it. */
    rd_kafka_resume_partitions(rk, parts);
    /* back-pressure outlives a rebalance: the new assignment waits with the
     * rest until the health check finds the store healthy again, and resumes
     * them all (review-1206f L4: it was resumed, storing for up to 0.25 s
     * below collector.min_free_disk, and the pause was counted again) */
    if (c->bp_paused) rd_kafka_pause_partitions(rk, parts);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    edr_collector_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign_parts(c, rk, parts);
    } else {
        /* a stop has waited already (edr_collector_run), and said so */
        dl_drain(c, c->stopping ? 0 : DL_DRAIN_S, "partitions revoked");
        /* eager rebalancing revokes every partition: the dead letters still
         * queued are for frames whose stored offsets stay at them, which the
         * partitions' next owners send; sent from here too, they would
         * arrive twice */
        if (dl_open_count(c, 1, NULL, NULL))
            rd_kafka_purge(c->dlq, RD_KAFKA_PURGE_F_QUEUE);
        commit_all(c);
        for (int i = 0; i < parts->cnt; i++) {
            int p = parts->elems[i].partition;
            if (p < 0 || p >= MAX_PARTS)
                continue;
            edr_store_writer_destroy(c->parts[p].w);
            part_reset(c, p);
            edr_log_info("partition %d revoked", p);
        }
        rd_kafka_assign(rk, NULL);
    }
}

static hostrate_t *rate_get(edr_collector_t *c, const uint8_t id[16], double now)
{
    if (c->n_rates * 2 >= c->rates_cap) {
        size_t ncap = c->rates_cap ? c->rates_cap * 2 : 256;
        hostrate_t *n = calloc(ncap, sizeof(*n));
        if (!n)
            return NULL;
        for (size_t i = 0; i < c->rates_cap; i++) {
            if (!c->rates[i].used)
                continue;
            size_t j = XXH3_64bits(c->rates[i].id, 16) & (ncap - 1);
            while (n[j].used)
                j = (j + 1) & (ncap - 1);
            n[j] = c->rates[i];
        }
        free(c->rates);
        c->rates = n;
        c->rates_cap = ncap;
    }
    hostrate_t *h = rate_find(c, id);
    if (h) return h;
    size_t j = XXH3_64bits(id, 16) & (c->rates_cap - 1);
    while (c->rates[j].used) /* the free slot rate_find stopped at */
        j = (j + 1) & (c->rates_cap - 1);
    h = &c->rates[j];
    memcpy(h->id, id, 16);
    h->used = 1;
    h->tokens = c->host_rate;
    h->last = now;
    c->n_rates++;
    return h;
}

/* The rate state of host id, or NULL when it has none. */
static hostrate_t *rate_find(edr_collector_t *c, const uint8_t id[16])
{
    if (!c->rates_cap) return NULL;
    size_t j = XXH3_64bits(id, 16) & (c->rates_cap - 1);
    while (c->rates[j].used) {
        if (!memcmp(c->rates[j].id, id, 16)) return &c->rates[j];
        j = (j + 1) & (c->rates_cap - 1);
    }
    return NULL;
}

/* Adds what the host was allowed since it was last asked (a second's worth
 * at most); 1 when a batch of `events` may be stored now (then taken from
 * the allowance). A batch larger than a second's worth passes when the
 * allowance is full. */
static int rate_take(edr_collector_t *c, hostrate_t *hr, double now, double events)
{
    hr->tokens += (now - hr->last) * c->host_rate;
    if (hr->tokens > c->host_rate) hr->tokens = c->host_rate;
    hr->last = now;
    if (hr->tokens < events && hr->tokens < c->host_rate) return 0;
    hr->tokens -= events;
    return 1;
}

/* Keeps a copy of message m (a valid batch of `events` events of host hr)
 * parked. 0, or -1 when collector.rate_limit_memory is used up (or memory
 * ran out): the caller holds the partition instead. */
static int park(edr_collector_t *c, part_t *pt, const rd_kafka_message_t *m, uint32_t events,
                hostrate_t *hr)
{
    if (c->pk_bytes + m->len > c->pk_max || EDR_VEC_RESERVE(pt->pk, pt->cap_pk, pt->n_pk + 1, 16))
        return -1;
    uint8_t *copy = malloc(m->len ? m->len : 1);
    if (!copy) return -1;
    memcpy(copy, m->payload, m->len);
    parked_t *k = &pt->pk[pt->n_pk++];
    k->offset = m->offset;
    memcpy(k->host, m->key, 16);
    k->events = events;
    k->len = m->len;
    k->frame = copy;
    hr->parked++;
    c->pk_bytes += m->len;
    c->n_pk++;
    return 0;
}

/* What a dead letter's delivery report needs (its message's opaque). */
typedef struct {
    int partition;
    uint32_t epoch; /* the partition's epoch when it was sent */
    int64_t offset;
    const char *reason; /* static: a verdict's reason */
    int counted;        /* sent again after a failed flush: counted the first time */
} dl_ref_t;

/* Says that the producer is in a fatal state, once; edr_collector_run then
 * stops (a restart makes a new producer). */
static void dlq_check_fatal(edr_collector_t *c)
{
    char why[256];
    if (c->dlq_fatal || !rd_kafka_fatal_error(c->dlq, why, sizeof(why)))
        return;
    edr_log_error("dead-letter producer: fatal error: %s", why);
    c->dlq_fatal = 1;
    c->fatal = 1;
}

/* 1 when the report of r is for a frame of a log that was reset since it
 * was sent (note_log_reset): the offset is of a log that no longer exists,
 * so nobody reads that frame again. (After a truncation that kept the
 * frame, consumption restarted below it and it was read again as new: then
 * a loss is counted for a frame that was dead-lettered again.) */
static int dl_orphan(const part_t *pt, const dl_ref_t *r)
{
    return r->epoch < pt->reset_epoch;
}

static void dl_lost_reset(edr_collector_t *c, const dl_ref_t *r, rd_kafka_resp_err_t e)
{
    c->dl_lost++;
    edr_log_error("partition %d offset %lld: dead letter not delivered (%s), and the log of %s "
                  "was reset since it was sent (recreated or truncated): the frame is lost",
                  r->partition, (long long)r->offset, rd_kafka_err2str(e), c->topic);
}

/* A dead letter Kafka did not take; d is its record, NULL when the report
 * is for a partition no longer ours (or a log since reset). */
static void dl_failed(edr_collector_t *c, const dl_ref_t *r, dl_rec_t *d, rd_kafka_resp_err_t e)
{
    part_t *pt = &c->parts[r->partition];
    if (!d && dl_orphan(pt, r) && !edr_kafka_refused_for_good(e)) {
        dl_lost_reset(c, r, e);
        dlq_check_fatal(c);
        return;
    }
    if (edr_kafka_refused_for_good(e) || (d && d->gone)) {
        if (r->counted) {
            edr_log_warn("partition %d offset %lld: dead letter sent again not delivered (%s); "
                         "counted when first read",
                         r->partition, (long long)r->offset, rd_kafka_err2str(e));
        } else if (d && d->gone) {
            c->dl_lost++;
            edr_log_error("partition %d offset %lld: dead letter not delivered (%s), and %s "
                          "deleted the frame meanwhile: lost",
                          r->partition, (long long)r->offset, rd_kafka_err2str(e), c->topic);
        } else {
            c->dl_lost++;
            edr_log_error("partition %d offset %lld: the dead-letter topic refused the frame "
                          "(%s): it is not kept anywhere",
                          r->partition, (long long)r->offset, rd_kafka_err2str(e));
        }
        if (d)
            dl_set(pt, d, DL_DONE);
        return;
    }
    c->dl_retries++;
    dlq_check_fatal(c);
    if (!d) {
        /* the stored offset did not pass it: whoever owns the partition
         * now reads the frame again */
        edr_log_warn("partition %d offset %lld: dead letter not delivered (%s); the partition "
                     "is read again from it by its owner",
                     r->partition, (long long)r->offset, rd_kafka_err2str(e));
        return;
    }
    edr_log_warn("partition %d offset %lld: dead letter not delivered (%s): reading it again",
                 r->partition, (long long)r->offset, rd_kafka_err2str(e));
    dl_set(pt, d, DL_FAILED);
}

static void dlq_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    edr_collector_t *c = opaque;
    dl_ref_t *r = m->_private;
    if (!r)
        return;
    c->dl_unacked--;
    part_t *pt = &c->parts[r->partition];
    dl_rec_t *d = pt->owned && pt->epoch == r->epoch ? dl_find(pt, r->offset) : NULL;
    if (d && d->state != DL_SENT)
        d = NULL; /* not this send's record (cannot happen: one send in flight per frame) */
    if (!m->err) {
        if (!r->counted)
            count_dl(c, r->reason); /* counted once Kafka has it */
        if (d)
            dl_set(pt, d, DL_DONE);
    } else if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
               m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        /* purged by a revocation or edr_collector_destroy, after dl_drain()
         * said which were not acknowledged; one of a log since reset is not
         * read again by anyone */
        if (d)
            dl_set(pt, d, DL_FAILED);
        else if (dl_orphan(pt, r))
            dl_lost_reset(c, r, m->err);
    } else {
        dl_failed(c, r, d, m->err);
    }
    if (d && (pt->dl_failed || pt->dl_hold || pt->dl_full))
        c->dl_settle_due = 1;
    free(r);
}

/* Sends message m to the dead-letter topic without waiting for Kafka.
 * Returns 0 when it is on its way, or needs not be sent (its dead letter is
 * already SENT or DONE, or the topic refused it for good); 1 when the
 * partition waits and reads m again: until half its share of the
 * dead-letter queue is free (dl_room), or a second (the producer's queue is
 * full, memory ran out, or the producer failed at once). */
/* A new minute of dead-letter logging: says how many the last one did not
 * log one by one. Also from the main loop, so that the count of a burst is
 * said a minute after it, not at the next dead letter (review-1206q 7). */
static void dl_said_minute(edr_collector_t *c, double now)
{
    if (now - c->dl_said_t0 < 60) return;
    if (c->dl_unsaid)
        edr_log_warn("%llu more frames went to the dead-letter topic in the last minute, not "
                     "logged one by one (edr_collector_deadletters_total counts them)",
                     (unsigned long long)c->dl_unsaid);
    c->dl_said_t0 = now;
    c->dl_said = 0;
    c->dl_unsaid = 0;
}

static int dead_letter(edr_collector_t *c, const rd_kafka_message_t *m,
                       const edr_collector_verdict_t *v)
{
    int p = m->partition;
    part_t *pt = &c->parts[p];
    size_t at = dl_lower(pt, m->offset);
    dl_rec_t *d = at < pt->n_dl && pt->dl[at].offset == m->offset ? &pt->dl[at] : NULL;
    if (d && d->state != DL_FAILED) {
        edr_log_debug("partition %d offset %lld: its dead letter is %s", p, (long long)m->offset,
                      d->state == DL_SENT ? "on its way already" : "in Kafka already");
        return 0;
    }
    size_t len = m->len + m->key_len;
    if (!dl_room(c, pt, len, 0)) {
        double now = now_s();
        c->dl_full_holds++;
        if (now - pt->dl_full_said >= 10.0) {
            pt->dl_full_said = now;
            edr_log_warn("partition %d: %u dead letters (%llu bytes) not yet acknowledged by %s "
                         "fill its share of the dead-letter queue: pausing it at offset %lld "
                         "until half of them are answered",
                         p, pt->dl_sent, (unsigned long long)pt->dl_sent_bytes, c->dlq_topic,
                         (long long)m->offset);
        }
        pt->dl_full = 1;
        hold_part(c, p, DBL_MAX); /* dl_settle() resumes it */
        return 1;
    }
    char part[16], off[32];
    snprintf(part, sizeof(part), "%d", p);
    snprintf(off, sizeof(off), "%lld", (long long)m->offset);
    dl_ref_t *r = malloc(sizeof(*r));
    if (!r || (!d && EDR_VEC_RESERVE(pt->dl, pt->cap_dl, pt->n_dl + 1, 16))) {
        free(r);
        edr_log_error("partition %d offset %lld: out of memory sending its dead letter; "
                      "reading it again in 1 s", p, (long long)m->offset);
        hold_part(c, p, now_s() + 1.0);
        return 1;
    }
    r->partition = p;
    r->epoch = pt->epoch;
    r->offset = m->offset;
    r->reason = v->reason;
    /* a commit passes a frame only once its dead letter is in Kafka */
    r->counted = counted(pt, m->offset);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        c->dlq, RD_KAFKA_V_TOPIC(c->dlq_topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("reason", v->reason, -1), RD_KAFKA_V_HEADER("error", v->detail, -1),
        RD_KAFKA_V_HEADER("source.topic", c->topic, -1),
        RD_KAFKA_V_HEADER("source.partition", part, -1),
        RD_KAFKA_V_HEADER("source.offset", off, -1), RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
    if (e) {
        free(r);
        if (edr_kafka_refused_for_good(e)) {
            c->dl_lost += !counted(pt, m->offset); /* else Kafka has its first copy */
            edr_log_error("partition %d offset %lld: the dead-letter topic refused the frame "
                          "(%s): it is not kept anywhere",
                          p, (long long)m->offset, rd_kafka_err2str(e));
            if (d)
                dl_set(pt, d, DL_DONE);
            return 0;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            c->dl_retries++;
            edr_log_error("partition %d offset %lld: dead-letter topic: %s; reading it again in "
                          "1 s", p, (long long)m->offset, rd_kafka_err2str(e));
            dlq_check_fatal(c);
        } else if (c->dl_queue_bytes && len > c->dl_queue_bytes) {
            /* it never fits: the partition waits until the setting is raised */
            edr_log_error("partition %d offset %lld: the frame (%zu bytes) is larger than the "
                          "dead-letter producer's whole queue (kafka.properties."
                          "queue.buffering.max.kbytes): raise it; trying again in 1 s",
                          p, (long long)m->offset, len);
        }
        hold_part(c, p, now_s() + 1.0);
        return 1;
    }
    c->dl_unacked++;
    if (d) {
        d->len = len;
        dl_set(pt, d, DL_SENT);
    } else {
        memmove(&pt->dl[at + 1], &pt->dl[at], (pt->n_dl - at) * sizeof(pt->dl[0]));
        pt->dl[at] = (dl_rec_t){.offset = m->offset, .state = DL_DONE, .len = len};
        pt->n_dl++;
        dl_set(pt, &pt->dl[at], DL_SENT);
    }
    /* queued (Kafka's answer decides: a failed one is sent again); said for
     * the first 10 of each minute, then counted (a line for each of 50,000
     * garbage messages made 5 MB of log: review-1206p-sec L5) */
    dl_said_minute(c, now_s());
    if (c->dl_said < 10) {
        c->dl_said++;
        edr_log_warn("partition %d offset %lld: to the dead-letter topic: %s (%s)", p,
                     (long long)m->offset, v->reason, v->detail);
    } else {
        c->dl_unsaid++;
    }
    return 0;
}

/* Handles one telemetry message: returns 0 when handled (next advanced),
 * 1 when the partition waits (rate limit, memory, a full dead-letter
 * queue): the message is fetched again. */
/* Stores batch b, the frame of partition p's message at `offset`, in the
 * partition's shard and counts it when committed: 0 stored, 1 a duplicate,
 * EDR_ENOMEM (the writer took it back whole), or another error (logged). */
/* A batch dated before collector.retention is stored and counted, and the
 * next hourly retention run deletes it: said, at most every 10 minutes
 * (the 2022 Sysmon replays were stored, shown, then gone within the hour,
 * saying nothing: review-1206n-coll 5). */
static void old_batch(edr_collector_t *c, int p, const Edr__V1__EventBatch *b)
{
    uint64_t now = wall_ns();
    if (!c->keep_ns || c->keep_ns >= now || b->base_time_ns >= now - c->keep_ns) return;
    c->old_batches++;
    double t = now_s();
    if (c->old_said && t - c->old_said < 600) return;
    c->old_said = t;
    char when[32];
    edr_log_warn("partition %d: batches dated before collector.retention (this one from %s) are "
                 "stored, and deleted at the next hourly retention run (%llu so far); "
                 "collector.retention=0 keeps everything",
                 p, edr_jsonl_time_format(b->base_time_ns, when),
                 (unsigned long long)c->old_batches);
}

static int store_batch(edr_collector_t *c, int p, int64_t offset, const void *frame, size_t len,
                       const Edr__V1__EventBatch *b)
{
    part_t *pt = &c->parts[p];
    int rc = edr_store_writer_add(pt->w, frame, len, b);
    if (rc == EDR_ENOMEM) return rc;
    if (rc < 0) {
        edr_log_error("partition %d offset %lld: store: %s", p, (long long)offset,
                      edr_strerror(rc));
        return rc;
    }
    edr_log_debug("partition %d offset %lld: batch seq %llu of %02x%02x%02x%02x %s", p,
                  (long long)offset, (unsigned long long)b->seq, b->sensor->host_id.data[0],
                  b->sensor->host_id.data[1], b->sensor->host_id.data[2],
                  b->sensor->host_id.data[3], rc == 1 ? "is a duplicate" : "added");
    if (counted(pt, offset))
        ; /* counted when first stored (a commit since lost with an unflushed shard) */
    else {
        if (rc == 1)
            pt->pend_dups++;
        else {
            pt->pend_batches++;
            pt->pend_events += b->n_events;
            old_batch(c, p, b);
        }
        if (!EDR_VEC_RESERVE(pt->pend_offs, pt->cap_pend_offs, pt->n_pend_offs + 1, 64))
            pt->pend_offs[pt->n_pend_offs++] = offset;
    }
    return rc;
}

static int handle(edr_collector_t *c, const rd_kafka_message_t *m)
{
    int p = m->partition;
    part_t *pt = &c->parts[p];
    Edr__V1__EventBatch *b;
    edr_collector_verdict_t v;
    if (edr_collector_check(c->fctx, m->key, m->key_len, m->payload, m->len, wall_ns(),
                            c->max_ahead_ns, &b, &v)) {
        if (pt->nomem_at != m->offset)
            pt->nomem_tries = 0;
        if (v.err == EDR_ENOMEM && pt->nomem_tries < NOMEM_TRIES) {
            /* not the frame's fault: it is read again in a second (its
             * header says how much memory it needs, up to frame.max_raw_bytes) */
            c->nomem++;
            pt->nomem_at = m->offset;
            pt->nomem_tries++;
            edr_log_error("partition %d offset %lld: out of memory decoding the batch; "
                          "reading it again in 1 s (%u of %d tries)",
                          p, (long long)m->offset, pt->nomem_tries, NOMEM_TRIES);
            hold_part(c, p, now_s() + 1.0);
            return 1;
        }
        if (dead_letter(c, m, &v))
            return 1;
        pt->next = m->offset + 1;
        return 0;
    }
    if (c->host_rate > 0) {
        double now = now_s();
        hostrate_t *hr = rate_get(c, b->sensor->host_id.data, now);
        /* a host with batches parked parks this one too: its own stay in order */
        if (hr && (hr->parked || !rate_take(c, hr, now, (double)b->n_events))) {
            /* said, at most once a minute (only counted before:
             * review-1206n-coll 7) */
            if (now - c->rate_said >= 60) {
                c->rate_said = now;
                char hx[33]; /* the log escapes the name (it was escaped twice:
                              * review-1206p-sec L6) */
                edr_log_warn("host %s (%.64s, partition %d) is over collector.host_rate_limit "
                             "(%.0f events/s): its batches wait, the other hosts go on (%llu "
                             "held so far)",
                             edr_hex(b->sensor->host_id.data, 16, hx),
                             b->sensor->hostname ? b->sensor->hostname : "", p, c->host_rate,
                             (unsigned long long)c->rate_limited + 1);
            }
            if (park(c, pt, m, (uint32_t)b->n_events, hr) == 0) {
                c->rate_limited++;
                pt->next = m->offset + 1; /* the others go on */
                return 0;
            }
            /* no room for its copy: the partition waits, all of it */
            if (!hr->parked) {
                double need = (double)b->n_events;
                double wait = (need < c->host_rate ? need : c->host_rate) - hr->tokens;
                c->rate_limited++;
                c->rate_held++;
                hold_part(c, p, now + wait / c->host_rate);
            } else { /* behind its parked batches: until some are stored */
                c->rate_held++;
                hold_part(c, p, now + 0.25);
            }
            return 1;
        }
    }
    int rc = store_batch(c, p, m->offset, m->payload, m->len, b);
    if (rc == EDR_ENOMEM) {
        /* the writer took the batch back whole: store it again in a second */
        c->nomem++;
        edr_log_error("partition %d offset %lld: out of memory storing the batch; storing it "
                      "again in 1 s", p, (long long)m->offset);
        hold_part(c, p, now_s() + 1.0);
        return 1;
    }
    if (rc < 0) {
        c->fatal = 1;
        return 0;
    }
    pt->next = m->offset + 1;
    return 0;
}

/* Stores parked batches whose host's allowance has come, each host's in
 * order (a host whose allowance is short waits, with its later ones, for
 * the next pass); every 50 ms. Nothing while the partition cannot store. */
static void park_drain(edr_collector_t *c, double now)
{
    c->pk_drained = now;
    c->pk_pass++;
    for (int p = 0; p < MAX_PARTS && c->n_pk; p++) {
        part_t *pt = &c->parts[p];
        /* also while the partition waits (its own batches held behind the
         * parked ones, a dead letter, memory): these are read already */
        if (!pt->n_pk || !pt->owned || !pt->w || pt->broken || c->bp_paused || now < pt->pk_wait)
            continue;
        size_t kept = 0, i = 0;
        for (; i < pt->n_pk; i++) {
            parked_t *k = &pt->pk[i];
            hostrate_t *hr = rate_find(c, k->host);
            if (hr && (hr->pass == c->pk_pass || !rate_take(c, hr, now, (double)k->events))) {
                if (hr) hr->pass = c->pk_pass; /* its later ones wait behind it */
                pt->pk[kept++] = *k;
                continue;
            }
            Edr__V1__EventBatch *b;
            int rc = edr_frame_decode(c->fctx, k->frame, k->len, &b);
            if (rc == 0) rc = store_batch(c, p, k->offset, k->frame, k->len, b);
            if (rc == EDR_ENOMEM) { /* tried again in a second, this and the rest */
                c->nomem++;
                edr_log_error("partition %d offset %lld: out of memory storing a rate-limited "
                              "batch; storing it again in 1 s",
                              p, (long long)k->offset);
                if (hr) /* its allowance back */
                    hr->tokens += (double)k->events;
                pt->pk_wait = now + 1.0;
                break;
            }
            if (rc < 0) { /* it decoded when it came: a failure now is the store's */
                c->fatal = 1;
                pt->pk[kept++] = *k;
                continue;
            }
            if (hr && hr->parked) hr->parked--;
            c->pk_bytes -= k->len;
            c->n_pk--;
            free(k->frame);
        }
        for (; i < pt->n_pk; i++)
            pt->pk[kept++] = pt->pk[i];
        pt->n_pk = kept;
    }
}

static void health_check(edr_collector_t *c)
{
    double now = now_s();
    char why[256] = "";
    struct statvfs sv;
    if (statvfs(c->store_dir, &sv) == 0) {
        uint64_t fr = (uint64_t)sv.f_bavail * sv.f_frsize;
        c->free_disk = fr;
        /* paused, it resumes at an eighth more: the space a compaction
         * frees on its way made it resume and pause again */
        if (fr < c->min_free + (c->bp_paused ? c->min_free / 8 : 0))
            snprintf(why, sizeof(why), "free disk space on %.150s is %llu bytes, below %llu",
                     c->store_dir, (unsigned long long)fr, (unsigned long long)c->min_free);
    }
    for (int p = 0; p < MAX_PARTS && !why[0]; p++)
        if (c->parts[p].owned && c->parts[p].w &&
            edr_store_writer_stalled(c->parts[p].w, why, sizeof(why)))
            break;
    if (why[0] && !c->bp_paused) {
        commit_all(c);
        rd_kafka_topic_partition_list_t *l = NULL;
        if (!rd_kafka_assignment(c->cons, &l) && l) {
            rd_kafka_pause_partitions(c->cons, l);
            rd_kafka_topic_partition_list_destroy(l);
        }
        c->bp_paused = 1;
        c->pauses++;
        snprintf(c->bp_why, sizeof(c->bp_why), "%s", why);
        edr_log_warn("pausing consumption: %s", why);
    } else if (!why[0] && c->bp_paused) {
        c->bp_paused = 0;
        edr_log_info("resuming consumption: %s no longer holds", c->bp_why);
        for (int p = 0; p < MAX_PARTS; p++) {
            part_t *pt = &c->parts[p];
            if (!pt->owned || pt->broken || pt->paused)
                continue;
            seek_part(c, p);
            pause_part(c, p, 0);
        }
    }
    /* re-open broken shards, resume rate-limited partitions */
    for (int p = 0; p < MAX_PARTS; p++) {
        part_t *pt = &c->parts[p];
        if (!pt->owned)
            continue;
        if (pt->broken && !c->bp_paused) {
            if (shard_open(c, p) == 0) {
                pt->broken = 0;
                /* retention done since the last flush was lost with the
                 * commits (no write-ahead log): done again now */
                c->retire_due = 1;
                edr_log_info("partition %d: store shard re-opened, re-reading from offset %lld",
                             p, (long long)pt->next);
                if (!pt->paused)
                    pause_part(c, p, 0);
                seek_part(c, p); /* after the resume, see below */
            }
        }
        if (pt->paused && now >= pt->resume_at) {
            pt->paused = 0;
            if (!c->bp_paused && !pt->broken) {
                /* resumed, then sought: a seek of a paused partition took
                 * effect about a second later (librdkafka 2.0), so every
                 * hold lasted ~2 s. What the resume lets in before the seek
                 * is newer than `next` and ignored while seeking */
                pause_part(c, p, 0);
                seek_part(c, p);
            }
        }
    }
    c->last_health = now;
}

/* The metrics text, grown as it is written (a lag line per owned partition:
 * up to MAX_PARTS of them); failed is set when memory ran out. */
typedef struct {
    char *t;
    size_t len, cap;
    int failed;
} mtext_t;

__attribute__((format(printf, 2, 3))) static void mtext_add(mtext_t *m, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !m->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(m->t + m->len, m->cap - m->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            m->failed = 1;
            return;
        }
        if ((size_t)n < m->cap - m->len) {
            m->len += (size_t)n;
            return;
        }
        size_t cap = m->cap * 2 > m->len + (size_t)n + 1 ? m->cap * 2 : m->len + (size_t)n + 1;
        char *t = realloc(m->t, cap);
        if (!t) {
            m->failed = 1;
            return;
        }
        m->t = t;
        m->cap = cap;
    }
}

static void mcounter(mtext_t *m, const char *name, uint64_t v)
{
    mtext_add(m, "# TYPE %s counter\n%s %llu\n", name, name, (unsigned long long)v);
}

static void publish_metrics(edr_collector_t *c)
{
    double now = now_s();
    if (c->metrics_t_prev > 0 && now > c->metrics_t_prev)
        c->events_per_s = (double)(c->events - c->metrics_events_prev) / (now - c->metrics_t_prev);
    c->metrics_events_prev = c->events;
    c->metrics_t_prev = now;
    c->last_metrics = now;
    if (!c->metrics)
        return;
    mtext_t mt = {malloc(8192), 0, 8192, 0};
    if (!mt.t)
        return;
#define OUT(...) mtext_add(&mt, __VA_ARGS__)
    mcounter(&mt, "edr_collector_events_total", c->events);
    OUT("# TYPE edr_collector_events_per_second gauge\nedr_collector_events_per_second %.0f\n",
        c->events_per_s);
    mcounter(&mt, "edr_collector_batches_total", c->batches);
    mcounter(&mt, "edr_collector_duplicates_total", c->duplicates);
    OUT("# TYPE edr_collector_deadletters_total counter\n");
    for (int i = 0; i < MAX_REASONS && c->dl[i].reason; i++)
        OUT("edr_collector_deadletters_total{reason=\"%s\"} %llu\n", c->dl[i].reason,
            (unsigned long long)c->dl[i].n);
    OUT("# TYPE edr_collector_deadletters_unacked gauge\nedr_collector_deadletters_unacked "
        "%llu\n", (unsigned long long)c->dl_unacked);
    mcounter(&mt, "edr_collector_deadletter_retries_total", c->dl_retries);
    mcounter(&mt, "edr_collector_deadletter_lost_total", c->dl_lost);
    mcounter(&mt, "edr_collector_deadletter_holds_total", c->dl_full_holds);
    mcounter(&mt, "edr_collector_log_gap_batches_total", c->gap);
    mcounter(&mt, "edr_collector_log_resets_total", c->log_resets);
    mcounter(&mt, "edr_collector_nomem_retries_total", c->nomem);
    mcounter(&mt, "edr_collector_retention_errors_total", c->ret_errors);
    mcounter(&mt, "edr_collector_rate_limited_total", c->rate_limited);
    mcounter(&mt, "edr_collector_rate_limit_holds_total", c->rate_held);
    OUT("# TYPE edr_collector_rate_limit_parked_batches gauge\n"
        "edr_collector_rate_limit_parked_batches %llu\n"
        "# TYPE edr_collector_rate_limit_parked_bytes gauge\n"
        "edr_collector_rate_limit_parked_bytes %llu\n",
        (unsigned long long)c->n_pk, (unsigned long long)c->pk_bytes);
    OUT("# TYPE edr_collector_paused gauge\nedr_collector_paused %d\n", c->bp_paused);
    mcounter(&mt, "edr_collector_pauses_total", c->pauses);
    mcounter(&mt, "edr_collector_commit_errors_total", c->commit_errors);
    mcounter(&mt, "edr_collector_store_writes_total", c->store_writes);
    mcounter(&mt, "edr_collector_store_writes_saved_total", c->store_writes_saved);
    uint64_t bytes = 0;
    int wal_shards = 0;
    /* a partition not fetched (paused, its shard broken) keeps the high
     * watermark of its last fetch: asked of its leader instead, two
     * partitions a scrape, 50 ms each at most (this is the consuming
     * thread; review-1206f M1: the lag read 0 all through a back-pressure
     * pause while the backlog grew). The two asked longest ago: in
     * partition order, 0 and 1 were asked at every scrape and the others
     * never (review-1206n-coll 2). */
    int ask[2] = {-1, -1};
    for (int p = 0; p < MAX_PARTS; p++) {
        part_t *pt = &c->parts[p];
        if (!pt->owned || now - pt->hw_at < 1.0) continue;
        int64_t lo = 0, hi = -1;
        if (!(pt->paused || pt->broken || c->bp_paused) &&
            rd_kafka_get_watermark_offsets(c->cons, c->topic, p, &lo, &hi) == 0 && hi >= 0)
            continue;
        if (ask[0] < 0 || pt->hw_at < c->parts[ask[0]].hw_at) {
            ask[1] = ask[0];
            ask[0] = p;
        } else if (ask[1] < 0 || pt->hw_at < c->parts[ask[1]].hw_at)
            ask[1] = p;
    }
    OUT("# TYPE edr_collector_lag gauge\n");
    for (int p = 0; p < MAX_PARTS; p++) {
        part_t *pt = &c->parts[p];
        if (!pt->owned)
            continue;
        int64_t lo = 0, hi = -1;
        if (rd_kafka_get_watermark_offsets(c->cons, c->topic, p, &lo, &hi) != 0) hi = -1;
        if (pt->paused || pt->broken || c->bp_paused || hi < 0) {
            if (p == ask[0] || p == ask[1]) {
                int64_t qlo = -1, qhi = -1;
                pt->hw_at = now;
                if (rd_kafka_query_watermark_offsets(c->cons, c->topic, p, &qlo, &qhi, 50) == 0)
                    pt->hw = qhi;
            }
            if (pt->hw > hi) hi = pt->hw;
        }
        if (hi >= 0)
            OUT("edr_collector_lag{partition=\"%d\"} %lld\n", p,
                (long long)(hi > pt->committed_next ? hi - pt->committed_next : 0));
        if (pt->w) {
            bytes += edr_store_writer_disk_bytes(pt->w);
            wal_shards += edr_store_writer_wal(pt->w);
        }
    }
    if (c->kafka_stats_on) {
        OUT("# TYPE edr_collector_kafka_brokers_up gauge\nedr_collector_kafka_brokers_up %d\n",
            c->kafka_brokers_up);
        OUT("# TYPE edr_collector_kafka_up gauge\nedr_collector_kafka_up %d\n",
            c->kafka_brokers_up > 0);
    }
    OUT("# TYPE edr_collector_store_wal_shards gauge\nedr_collector_store_wal_shards %d\n",
        wal_shards);
    OUT("# TYPE edr_collector_busy gauge\nedr_collector_busy %.3f\n", c->busy);
    OUT("# TYPE edr_collector_store_bytes gauge\nedr_collector_store_bytes %llu\n",
        (unsigned long long)bytes);
    OUT("# TYPE edr_collector_bytes_per_event gauge\nedr_collector_bytes_per_event %.2f\n",
        c->events ? (double)bytes / (double)c->events : 0.0);
#undef OUT
    if (!mt.failed) /* else the last whole text stays published */
        edr_metrics_publish(c->metrics, mt.t, mt.len);
    free(mt.t);
}

/* librdkafka's statistics (statistics.interval.ms, served by the consumer
 * poll): how many brokers the consumer is connected to. Without this, a
 * collector cut off from its cluster shows only in its log: the lag gauge
 * keeps the last watermark it saw (review-daemons L8). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    edr_collector_t *c = opaque;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = json_object_get(root, "brokers");
    if (!json_is_object(brokers)) {
        json_decref(root);
        return 0; /* librdkafka frees json */
    }
    int up = 0;
    const char *name;
    json_t *b;
    json_object_foreach(brokers, name, b) {
        const char *src = json_string_value(json_object_get(b, "source"));
        const char *st = json_string_value(json_object_get(b, "state"));
        /* not the client's internal queue broker, nor the group coordinator's
         * alias of a real one; a bootstrap entry counts while it is connected */
        if (src && (!strcmp(src, "internal") || !strcmp(src, "logical")))
            continue;
        if (st && !strcmp(st, "UP"))
            up++;
    }
    json_decref(root);
    double now = now_s();
    if (c->kafka_stats_seen && c->kafka_brokers_up > 0 && up == 0) {
        c->kafka_down_since = now;
        c->kafka_cut_off = 1;
        edr_log_warn("kafka: connected to no broker; consuming waits for the cluster "
                     "(edr_collector_kafka_up 0; the lag gauge keeps its last value)");
    } else if (c->kafka_cut_off && up > 0) {
        c->kafka_cut_off = 0;
        edr_log_info("kafka: connected again after %.0f s", now - c->kafka_down_since);
    }
    c->kafka_brokers_up = up;
    c->kafka_stats_seen = 1;
    return 0;
}

/* A numeric property of client rk as it runs; 0 when it has none. */
static uint64_t conf_u64(rd_kafka_t *rk, const char *name)
{
    char v[64];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, v, &n) != RD_KAFKA_CONF_OK)
        return 0;
    return strtoull(v, NULL, 10);
}

edr_collector_t *edr_collector_new(const edr_config_t *cfg, const edr_collector_opts_t *opts,
                                   char *err, size_t errlen)
{
    edr_collector_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    if (opts)
        c->opts = *opts;
    /* said by name (review-1206f L3: "store : No such file or directory",
     * "subscribe ...: Local: Unknown group") */
    static const char *const named[] = {"collector.store_dir", "collector.group_id"};
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        if (!edr_config_str(cfg, named[i])[0]) {
            snprintf(err, errlen, "%s is empty", named[i]);
            free(c);
            return NULL;
        }
    snprintf(c->store_dir, sizeof(c->store_dir), "%s", edr_config_str(cfg, "collector.store_dir"));
    /* a store that is not a directory, or one somebody else controls (a
     * symbolic link, another owner, writable by others: they could replace
     * its shards, or read what root writes there), fails now, not after the
     * group join (review-1206n-coll 6, review-1206p-sec 1) */
    int sfd = edr_private_dir_open(c->store_dir, "collector.store_dir", NULL, err, errlen);
    if (sfd < 0) {
        free(c);
        return NULL;
    }
    close(sfd);
    c->min_free = edr_config_size(cfg, "collector.min_free_disk");
    c->max_ahead_ns = edr_config_duration_ns(cfg, "collector.max_clock_ahead");
    c->keep_ns = edr_config_duration_ns(cfg, "collector.retention");
    c->commit_interval = (double)edr_config_duration_ns(cfg, "collector.commit_interval") / 1e9;
    c->log_busy = (double)edr_config_int(cfg, "collector.store_wal_busy") / 100.0;
    c->host_rate = (double)edr_config_int(cfg, "collector.host_rate_limit");
    c->pk_max = edr_config_size(cfg, "collector.rate_limit_memory");
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, c->topic, sizeof(c->topic));
    edr_topic_name(cfg, EDR_TOPIC_DEADLETTER, c->dlq_topic, sizeof(c->dlq_topic));
    edr_frame_opts_t fo = {.max_raw_len = (uint32_t)edr_config_size(cfg, "frame.max_raw_bytes")};
    c->fctx = edr_frame_ctx_new(&fo);
    if (!c->fctx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    const char *dd = edr_config_str(cfg, "frame.dict_dir");
    if (*dd && edr_frame_ctx_load_dicts(c->fctx, dd) < 0) {
        snprintf(err, errlen, "frame.dict_dir %s: cannot load dictionaries", dd);
        goto fail;
    }
    if (mkdir(c->store_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "store %s: %s", c->store_dir, strerror(errno));
        goto fail;
    }
    const char *boot = edr_kafka_bootstraps(cfg, &c->embedded, err, errlen);
    if (!boot)
        goto fail;
    if (c->embedded)
        edr_log_warn("kafka.brokers is 'embedded': consuming from a cluster inside this process, "
                     "which no sensor elsewhere produces into (for trials only; point "
                     "kafka.brokers at a cluster)");
    rd_kafka_conf_t *conf = edr_kafka_conf_new(cfg, boot, err, errlen);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, c);
    /* kafka.properties is applied again over it: the user's value wins */
    if (edr_kafka_conf_set(conf, "statistics.interval.ms", "1000", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    c->cons = edr_kafka_consumer_new(cfg, boot, edr_config_str(cfg, "collector.group_id"), conf,
                                     err, errlen);
    if (!c->cons)
        goto fail;
    rd_kafka_conf_t *dconf = edr_kafka_conf_new(cfg, boot, err, errlen);
    if (!dconf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(dconf, dlq_dr);
    rd_kafka_conf_set_opaque(dconf, c);
    /* kafka.properties is applied again over it: the user's value wins */
    if (edr_kafka_conf_set(dconf, "queue.buffering.max.kbytes", DL_QUEUE_KB, err, errlen)) {
        rd_kafka_conf_destroy(dconf);
        goto fail;
    }
    c->dlq = edr_kafka_producer_new(cfg, boot, dconf, err, errlen);
    if (!c->dlq)
        goto fail;
    c->kafka_stats_on = conf_u64(c->cons, "statistics.interval.ms") > 0;
    if (!c->kafka_stats_on)
        edr_log_info("kafka.properties.statistics.interval.ms is 0: no edr_collector_kafka_up "
                     "metrics (they come from librdkafka's statistics)");
    c->dl_queue_msgs = conf_u64(c->dlq, "queue.buffering.max.messages");
    c->dl_queue_bytes = conf_u64(c->dlq, "queue.buffering.max.kbytes") * 1024;
    const char *ml = edr_config_str(cfg, "collector.metrics_listen");
    if (*ml && strcmp(ml, "off") != 0) {
        c->metrics = edr_metrics_new(ml, err, errlen);
        if (!c->metrics)
            goto fail;
        edr_log_info("metrics on http://%.*s:%d/metrics", (int)(strrchr(ml, ':') - ml), ml,
                     edr_metrics_port(c->metrics));
    }
    if (c->opts.assign_all) {
        /* every partition, from the offsets stored in the shards, without a group */
        rd_kafka_topic_t *t = rd_kafka_topic_new(c->cons, c->topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(c->cons, 0, t, &md, 10000);
        rd_kafka_topic_destroy(t);
        if (e || md->topic_cnt != 1 || md->topics[0].err) {
            snprintf(err, errlen, "metadata of %s: %s", c->topic,
                     rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
            if (md)
                rd_kafka_metadata_destroy(md);
            goto fail;
        }
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            rd_kafka_topic_partition_list_add(l, c->topic, md->topics[0].partitions[i].id);
        rd_kafka_metadata_destroy(md);
        assign_parts(c, c->cons, l);
        rd_kafka_topic_partition_list_destroy(l);
        return c;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->cons, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe %s: %s", c->topic, rd_kafka_err2str(e));
        goto fail;
    }
    return c;
fail:
    edr_collector_destroy(c);
    return NULL;
}

/* Retires what is past collector.retention in every owned shard. Returns
 * how many shards failed (the store logged why). A shard whose retention
 * write failed is closed and re-opened, as after a failed commit: the
 * writer takes no more work (edr_store_writer_failed). */
static int retention(edr_collector_t *c)
{
    uint64_t keep = edr_config_duration_ns(c->cfg, "collector.retention");
    uint64_t now = wall_ns();
    int failed = 0;
    if (!keep || keep >= now)
        return 0;
    for (int p = 0; p < MAX_PARTS; p++)
        if (c->parts[p].owned && c->parts[p].w &&
            edr_store_writer_retire(c->parts[p].w, now - keep)) {
            failed++;
            if (edr_store_writer_failed(c->parts[p].w)) {
                edr_log_error("partition %d: store write failed; pausing it and re-reading from "
                              "its stored offset",
                              p);
                discard_shard(c, p);
            }
        }
    c->ret_errors += (uint64_t)failed;
    return failed;
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void edr_collector_stats(const edr_collector_t *c, edr_collector_stats_t *st)
{
    st->events = c->events;
    st->batches = c->batches;
    st->duplicates = c->duplicates;
    st->deadletters = c->deadletters;
    st->deadletter_retries = c->dl_retries;
    st->deadletter_lost = c->dl_lost;
    st->gap = c->gap;
    st->nomem = c->nomem;
    st->retention_errors = c->ret_errors;
    st->commits = c->commits;
    st->store_writes = c->store_writes;
    st->store_writes_saved = c->store_writes_saved;
    st->last_commit = c->last_data_commit;
    st->cpu = c->cpu;
}

int edr_collector_run(edr_collector_t *c, volatile sig_atomic_t *stop)
{
    double cpu0 = thread_cpu();
    c->stop = stop;
    c->stopping = 0; /* run again after it returned (bench_ingest between its chunks) */
    c->started = c->last_msg = c->last_commit = c->last_health = c->busy_t0 = now_s();
    c->busy_cpu0 = cpu0;
    double next_ret = 0, last_log = c->started;
    uint64_t log_events = 0, log_done = 0;
    while (!*stop && !c->fatal) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->cons, 20);
        double now = now_s();
        if (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    edr_log_warn("consumer: %s", rd_kafka_message_errstr(m));
            } else if (m->partition >= 0 && m->partition < MAX_PARTS) {
                part_t *pt = &c->parts[m->partition];
                c->last_msg = now;
                int take = pt->owned && pt->w && !pt->paused && !pt->broken && !c->bp_paused;
                if (take && pt->seek && m->offset > pt->next)
                    skip_seek(c, m->partition, m->offset, now);
                /* below next while seeking: its log restarted while the
                 * partition waited (review-1206f M2: only the path without
                 * a seek looked, and the new log's first `next` messages
                 * were skipped without a word) */
                if (take && pt->seek && m->offset < pt->next &&
                    note_log_reset(c, m->partition, m->offset))
                    pt->seek = 0;
                if (take && pt->seek) {
                    if (m->offset == pt->next)
                        pt->seek = 0;
                    else
                        take = 0;
                }
                if (take && m->offset > pt->next)
                    /* the topic is neither compacted nor transactional: the
                     * messages before this one were deleted (resuming at a
                     * stored offset the topic no longer has) */
                    note_gap(c, m->partition, m->offset);
                if (take && m->offset < pt->next)
                    note_log_reset(c, m->partition, m->offset);
                if (take && m->offset >= pt->next) {
                    pt->fresh = 0;
                    handle(c, m);
                }
                else
                    edr_log_debug("partition %d offset %lld ignored (next %lld%s%s%s%s)",
                                  m->partition, (long long)m->offset, (long long)pt->next,
                                  !pt->owned || !pt->w ? ", not owned" : "",
                                  pt->paused ? ", rate-limited" : "",
                                  pt->broken ? ", shard broken" : "",
                                  c->bp_paused ? ", paused" : pt->seek ? ", seeking" : "");
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(c->dlq, 0); /* dead letters' reports */
        if (c->dl_settle_due)
            dl_settle_all(c);
        size_t pending = 0;
        for (int p = 0; p < MAX_PARTS; p++)
            if (c->parts[p].w)
                pending += edr_store_writer_pending(c->parts[p].w);
        if (pending >= 2048 || now - c->last_commit >= c->commit_interval || !m)
            commit_all(c);
        if (now - c->last_health >= 0.25)
            health_check(c);
        if (now - c->busy_t0 >= 1.0)
            busy_check(c, now, thread_cpu());
        if (now - c->last_metrics >= 1.0)
            publish_metrics(c);
        if (c->retire_due || now >= next_ret) { /* hourly and at each assignment; a
                                                  * minute after a failed run */
            c->retire_due = 0;
            next_ret = now + (retention(c) ? 60 : 3600);
        }
        /* every 10 s while something happens or no partition is held; an
         * idle collector every 10 minutes (it logged "0 events/s" every 10 s
         * for ever: review-1206n-coll 10), and one waiting for partitions
         * says so (nothing was said for 30-45 s: 8), every 10 s for its
         * first 2 minutes (a group with more members than partitions leaves
         * some with none for good) */
        uint64_t done = c->events + c->duplicates + c->deadletters;
        if (now - last_log >= 10 && !*stop &&
            (done != log_done || (!c->n_owned && now - c->started < 120) ||
             now - last_log >= 600)) {
            if (!c->n_owned && !c->fatal)
                edr_log_info("holding no partition of %s: waiting for the group (%s) to assign "
                             "some",
                             c->topic, edr_config_str(c->cfg, "collector.group_id"));
            else
                edr_log_info("stored %llu events in %llu batches (%.0f events/s), %llu "
                             "duplicates, %llu dead letters",
                             (unsigned long long)c->events, (unsigned long long)c->batches,
                             (double)(c->events - log_events) / (now - last_log),
                             (unsigned long long)c->duplicates, (unsigned long long)c->deadletters);
            last_log = now;
            log_events = c->events;
            log_done = done;
        }
        if (c->dl_unsaid) dl_said_minute(c, now);
        if (c->n_pk && now - c->pk_drained >= 0.05) park_drain(c, now);
        if (c->opts.exit_when_idle > 0 && c->ever_assigned && !c->bp_paused && !c->n_pk &&
            now - c->last_msg >= c->opts.exit_when_idle)
            break;
    }
    c->stopping = 1;
    dl_drain(c, DL_DRAIN_S, "stopping");
    commit_all(c);
    kafka_offsets(c, 1);
    c->cpu += thread_cpu() - cpu0;
    edr_log_info("stopping: stored %llu events in %llu batches, %llu duplicates skipped, %llu "
                 "dead letters (%llu of them lost: not in the dead-letter topic), %llu batches "
                 "deleted from the topic before they were stored; consuming thread %.2f s CPU "
                 "(%.0f events per CPU-second)",
                 (unsigned long long)c->events, (unsigned long long)c->batches,
                 (unsigned long long)c->duplicates, (unsigned long long)c->deadletters,
                 (unsigned long long)c->dl_lost, (unsigned long long)c->gap, c->cpu,
                 c->cpu > 0 ? (double)c->events / c->cpu : 0.0);
    return c->fatal ? 1 : 0;
}

void edr_collector_destroy(edr_collector_t *c)
{
    if (!c)
        return;
    if (c->cons) {
        if (c->opts.assign_all)
            commit_all(c);
        rd_kafka_consumer_close(c->cons); /* runs the revoke callback: commits, closes shards */
        rd_kafka_destroy(c->cons);
    }
    if (c->dlq) {
        /* dead letters still unanswered (dl_drain said so): the stored
         * offsets are not past their frames, which are read and sent again;
         * one sent now would arrive twice. The purge reports them (their
         * opaques are freed), before the records their reports look up */
        rd_kafka_purge(c->dlq, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(c->dlq, 1000);
        rd_kafka_destroy(c->dlq);
    }
    for (int p = 0; p < MAX_PARTS; p++) {
        edr_store_writer_destroy(c->parts[p].w);
        free(c->parts[p].dl);
        park_forget(c, &c->parts[p], INT64_MIN); /* read again at the next start */
        free(c->parts[p].cnt);
        free(c->parts[p].pend_offs);
    }
    edr_metrics_destroy(c->metrics);
    edr_kafka_cluster_destroy(c->embedded);
    edr_frame_ctx_destroy(c->fctx);
    free(c->rates);
    free(c);
}
