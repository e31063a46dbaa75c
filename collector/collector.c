/* Collector loop: consumer group, validation and dead letters, per-partition store shards, back-pressure, rate limits. */
#include "collector_int.h"

#include "edr/err.h"
#include "edr/kafka.h"
#include "edr/log.h"
#include "edr/store.h"

#include <errno.h>
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
#define MIN_TIME_NS  946684800000000000ull /* 2000-01-01 */
#define NOMEM_TRIES  30 /* then a batch that does not fit in memory is dead-lettered */

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
 * Invariants: a message is stored only when its offset == next (or > next
 * without a pending seek: a gap in the log) and the partition is not paused;
 * dead letters are flushed to Kafka before the commit that moves past them,
 * and one that Kafka did not take for a reason that may pass (timeout,
 * broker gone) moves next back to it, so that it is read and sent again.
 */
typedef struct part {
    int owned;
    int paused; /* by the rate limit, or after memory ran out */
    int seek;
    int broken; /* shard write failed; re-opened by the health check */
    int64_t next;
    int64_t committed_next;
    uint64_t pend_batches, pend_events, pend_dups; /* since the last commit; counted once committed */
    int64_t dl_retry; /* 1 + the lowest offset whose dead letter must be sent again; 0: none */
    double resume_at;
    int fresh;       /* the shard has no stored offset: the first message sets next */
    int64_t nomem_at; /* offset whose decode ran out of memory, nomem_tries times */
    unsigned nomem_tries;
    double seek_at;  /* when the pending seek was asked for (or last asked again) */
    double gap_at;   /* when the log's start was last asked for while seeking */
    edr_store_writer_t *w;
} part_t;

typedef struct hostrate {
    uint8_t id[16];
    int used;
    double tokens;
    double last;
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
    double host_rate;
    hostrate_t *rates;
    size_t rates_cap, n_rates;
    unsigned dlq_unflushed;
    volatile sig_atomic_t *stop;

    /* counters */
    uint64_t events, batches, duplicates, deadletters, rate_limited, pauses, commits,
        commit_errors, store_writes, store_writes_saved;
    uint64_t dl_retries; /* dead letters Kafka did not take, to be sent again */
    uint64_t dl_lost;    /* dead letters Kafka refused for good (logged, frame not kept) */
    uint64_t gap;        /* messages gone from the log before they were stored (retention) */
    uint64_t log_resets; /* partitions whose log restarted below the stored offset */
    uint64_t nomem;      /* batches read again after memory ran out decoding them */
    uint64_t ret_errors; /* retention runs of a shard that failed (logged; tried again in a minute) */
    struct {
        const char *reason;
        uint64_t n;
    } dl[MAX_REASONS];
    double last_data_commit, cpu;
    double last_msg, last_commit, last_health, last_metrics, started;
    uint64_t metrics_events_prev;
    double metrics_t_prev, events_per_s;
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
    edr_store_opts_t so = {.sync = edr_config_bool(c->cfg, "collector.store_sync")};
    /* the previous owner may still be closing the shard: wait for its lock */
    for (int tries = 0; tries < 600; tries++) {
        c->parts[p].w = edr_store_writer_open(c->store_dir, (uint32_t)p, &so, err, sizeof(err));
        if (c->parts[p].w)
            break;
        if (!strstr(err, "lock") || tries % 20 == 19)
            edr_log_warn("%s%s", err, strstr(err, "lock") ? " (waiting)" : "");
        if (!strstr(err, "lock") && tries > 10)
            break;
        usleep(100000);
    }
    if (!c->parts[p].w)
        return EDR_ESTORE;
    int64_t off;
    int rc = edr_store_writer_offset(c->parts[p].w, &off);
    if (rc == EDR_ENOENT) {
        off = 0; /* librdkafka starts at the log's start when it no longer has 0 */
        c->parts[p].fresh = 1;
    }
    else if (rc) {
        edr_store_writer_destroy(c->parts[p].w);
        c->parts[p].w = NULL;
        return rc;
    }
    c->parts[p].next = c->parts[p].committed_next = off;
    return 0;
}

static int flush_dlq(edr_collector_t *c)
{
    if (!c->dlq_unflushed)
        return 0;
    for (int waited = 1; rd_kafka_flush(c->dlq, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR; waited++) {
        if (waited % 10 == 0)
            edr_log_warn("dead-letter topic: %d messages not yet delivered after %d s, waiting",
                         rd_kafka_outq_len(c->dlq), waited);
        if (c->fatal || (c->stop && *c->stop))
            return -1; /* nothing committed: they are read and sent again */
    }
    c->dlq_unflushed = 0;
    return 0;
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
    if (pt->dl_retry && pt->dl_retry - 1 < to) {
        /* a dead letter to be sent again whose frame the topic no longer has */
        edr_log_error("partition %d: the frame at offset %lld, whose dead letter did not reach "
                      "Kafka, was deleted from %s before it was sent again: lost",
                      p, (long long)pt->dl_retry - 1, c->topic);
        c->dl_lost++;
        pt->dl_retry = 0;
    }
    c->gap += (uint64_t)(to - pt->next);
    edr_log_error("partition %d: offsets %lld..%lld are no longer in %s (deleted by the topic's "
                  "retention before they were stored): %lld batches lost",
                  p, (long long)pt->next, (long long)to - 1, c->topic, (long long)(to - pt->next));
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

/* Commits every shard with pending work. A failed shard is closed, marked
 * broken and re-opened by the health check; its partition re-reads from its
 * stored offset. */
static int commit_all(edr_collector_t *c)
{
    if (flush_dlq(c))
        return -1;
    for (int p = 0; p < MAX_PARTS; p++) {
        part_t *pt = &c->parts[p];
        int rewind = pt->dl_retry && pt->owned && pt->w;
        if (rewind && pt->dl_retry - 1 < pt->next)
            pt->next = pt->dl_retry - 1; /* batches stored past it are duplicates when read again */
        pt->dl_retry = 0;
        if (rewind)
            seek_part(c, p);
        if (!pt->owned || !pt->w || pt->next == pt->committed_next)
            continue;
        edr_store_writer_set_offset(pt->w, pt->next);
        edr_store_writer_stats_t w0, w1;
        edr_store_writer_stats(pt->w, &w0);
        int rc = edr_store_writer_commit(pt->w);
        if (rc) {
            c->commit_errors++;
            edr_log_error("partition %d: store commit failed (%s); pausing it and re-reading "
                          "from offset %lld",
                          p, edr_strerror(rc), (long long)pt->committed_next);
            edr_store_writer_destroy(pt->w);
            pt->w = NULL;
            pt->broken = 1;
            pt->pend_batches = pt->pend_events = pt->pend_dups = 0; /* re-read, counted again */
            pause_part(c, p, 1);
            continue;
        }
        pt->committed_next = pt->next;
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
    c->last_commit = now_s();
    return 0;
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

/* Opens the shards of parts[0..n) on up to one thread per CPU (at most 8);
 * rc[i] is shard_open()'s result for parts[i]. */
static void open_shards(edr_collector_t *c, const int *parts, int n, int *rc)
{
    open_job_t j = {.c = c, .parts = parts, .rc = rc, .n = n};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = (int)(cpus < 1 ? 1 : cpus > 8 ? 8 : cpus) - 1; /* this thread works too */
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
            edr_log_error("partition %d out of range", p);
            c->fatal = 1;
            continue;
        }
        memset(&c->parts[p], 0, sizeof(c->parts[p]));
        want[n++] = p;
    }
    open_shards(c, want, n, rc);
    for (int k = 0; k < n; k++) {
        int p = want[k];
        if (rc[k]) {
            edr_log_error("partition %d: cannot open its store shard", p);
            c->fatal = 1;
            continue;
        }
        c->parts[p].owned = 1;
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
    c->bp_paused = 0; /* fresh assignment: the health check pauses again if needed */
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    edr_collector_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign_parts(c, rk, parts);
    } else {
        commit_all(c);
        for (int i = 0; i < parts->cnt; i++) {
            int p = parts->elems[i].partition;
            if (p < 0 || p >= MAX_PARTS)
                continue;
            edr_store_writer_destroy(c->parts[p].w);
            memset(&c->parts[p], 0, sizeof(c->parts[p]));
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
    size_t j = XXH3_64bits(id, 16) & (c->rates_cap - 1);
    while (c->rates[j].used) {
        if (!memcmp(c->rates[j].id, id, 16))
            return &c->rates[j];
        j = (j + 1) & (c->rates_cap - 1);
    }
    hostrate_t *h = &c->rates[j];
    memcpy(h->id, id, 16);
    h->used = 1;
    h->tokens = c->host_rate;
    h->last = now;
    c->n_rates++;
    return h;
}

/* What a dead letter's delivery report needs (its message's opaque). */
typedef struct {
    int partition;
    int64_t offset;
    const char *reason; /* static: a verdict's reason */
} dl_ref_t;

static void dl_failed(edr_collector_t *c, const dl_ref_t *r, rd_kafka_resp_err_t e)
{
    part_t *pt = &c->parts[r->partition];
    if (edr_kafka_refused_for_good(e)) {
        c->dl_lost++;
        edr_log_error("partition %d offset %lld: the dead-letter topic refused the frame (%s): "
                      "it is not kept anywhere",
                      r->partition, (long long)r->offset, rd_kafka_err2str(e));
        return;
    }
    c->dl_retries++;
    edr_log_warn("partition %d offset %lld: dead letter not delivered (%s): reading it again",
                 r->partition, (long long)r->offset, rd_kafka_err2str(e));
    char why[256];
    if (rd_kafka_fatal_error(c->dlq, why, sizeof(why))) {
        /* this producer takes nothing more: stop, nothing committed past
         * the frame; a restart makes a new producer */
        edr_log_error("dead-letter producer: fatal error: %s", why);
        c->fatal = 1;
    }
    if (!pt->dl_retry || r->offset + 1 < pt->dl_retry)
        pt->dl_retry = r->offset + 1;
}

static void dlq_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    edr_collector_t *c = opaque;
    dl_ref_t *r = m->_private;
    if (!r)
        return;
    if (m->err)
        dl_failed(c, r, m->err);
    else
        count_dl(c, r->reason); /* counted once Kafka has it */
    free(r);
}

static void dead_letter(edr_collector_t *c, const rd_kafka_message_t *m,
                        const edr_collector_verdict_t *v)
{
    char part[16], off[32];
    snprintf(part, sizeof(part), "%d", m->partition);
    snprintf(off, sizeof(off), "%lld", (long long)m->offset);
    dl_ref_t *r = malloc(sizeof(*r)), rl;
    if (!r)
        r = &rl; /* out of memory: sent without a report, handled as not delivered */
    r->partition = m->partition;
    r->offset = m->offset;
    r->reason = v->reason;
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(
                c->dlq, RD_KAFKA_V_TOPIC(c->dlq_topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER("reason", v->reason, -1),
                RD_KAFKA_V_HEADER("error", v->detail, -1),
                RD_KAFKA_V_HEADER("source.topic", c->topic, -1),
                RD_KAFKA_V_HEADER("source.partition", part, -1),
                RD_KAFKA_V_HEADER("source.offset", off, -1),
                RD_KAFKA_V_OPAQUE(r == &rl ? NULL : r), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(c->dlq, 100);
    if (e || r == &rl) {
        edr_log_error("dead-letter topic: %s", e ? rd_kafka_err2str(e) : "out of memory");
        dl_failed(c, r, e ? e : RD_KAFKA_RESP_ERR__FAIL);
        if (r != &rl)
            free(r);
        if (!e)
            c->dlq_unflushed++;
        return;
    }
    c->dlq_unflushed++;
    edr_log_warn("partition %d offset %lld dead-lettered: %s (%s)", m->partition,
                 (long long)m->offset, v->reason, v->detail);
}

/* Pauses partition p until `until` (monotonic seconds); the health check
 * resumes it, fetching again from its next offset. */
static void hold_part(edr_collector_t *c, int p, double until)
{
    c->parts[p].paused = 1;
    c->parts[p].resume_at = until;
    pause_part(c, p, 1);
}

/* Handles one telemetry message: returns 0 when handled (next advanced),
 * 1 when the partition was rate limited (message to be fetched again). */
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
        dead_letter(c, m, &v);
        pt->next = m->offset + 1;
        return 0;
    }
    if (c->host_rate > 0) {
        double now = now_s();
        hostrate_t *hr = rate_get(c, b->sensor->host_id.data, now);
        if (hr) {
            hr->tokens += (now - hr->last) * c->host_rate;
            if (hr->tokens > c->host_rate)
                hr->tokens = c->host_rate;
            hr->last = now;
            double need = (double)b->n_events;
            /* a batch larger than the whole bucket passes when the bucket is full */
            if (hr->tokens < need && hr->tokens < c->host_rate) {
                c->rate_limited++;
                double wait = (need < c->host_rate ? need : c->host_rate) - hr->tokens;
                hold_part(c, p, now + wait / c->host_rate);
                return 1;
            }
            hr->tokens -= need;
        }
    }
    int rc = edr_store_writer_add(pt->w, m->payload, m->len, b);
    if (rc == EDR_ENOMEM) {
        /* the writer took the batch back whole: store it again in a second */
        c->nomem++;
        edr_log_error("partition %d offset %lld: out of memory storing the batch; storing it "
                      "again in 1 s", p, (long long)m->offset);
        hold_part(c, p, now_s() + 1.0);
        return 1;
    }
    if (rc < 0) {
        edr_log_error("partition %d offset %lld: store: %s", p, (long long)m->offset,
                      edr_strerror(rc));
        c->fatal = 1;
        return 0;
    }
    edr_log_debug("partition %d offset %lld: batch seq %llu of %02x%02x%02x%02x %s", p,
                  (long long)m->offset, (unsigned long long)b->seq, b->sensor->host_id.data[0],
                  b->sensor->host_id.data[1], b->sensor->host_id.data[2],
                  b->sensor->host_id.data[3], rc == 1 ? "is a duplicate" : "added");
    if (rc == 1)
        pt->pend_dups++;
    else {
        pt->pend_batches++;
        pt->pend_events += b->n_events;
    }
    pt->next = m->offset + 1;
    return 0;
}

static void health_check(edr_collector_t *c)
{
    double now = now_s();
    char why[256] = "";
    struct statvfs sv;
    if (statvfs(c->store_dir, &sv) == 0) {
        uint64_t fr = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (fr < c->min_free)
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
    mcounter(&mt, "edr_collector_deadletter_retries_total", c->dl_retries);
    mcounter(&mt, "edr_collector_deadletter_lost_total", c->dl_lost);
    mcounter(&mt, "edr_collector_log_gap_batches_total", c->gap);
    mcounter(&mt, "edr_collector_log_resets_total", c->log_resets);
    mcounter(&mt, "edr_collector_nomem_retries_total", c->nomem);
    mcounter(&mt, "edr_collector_retention_errors_total", c->ret_errors);
    mcounter(&mt, "edr_collector_rate_limited_total", c->rate_limited);
    OUT("# TYPE edr_collector_paused gauge\nedr_collector_paused %d\n", c->bp_paused);
    mcounter(&mt, "edr_collector_pauses_total", c->pauses);
    mcounter(&mt, "edr_collector_commit_errors_total", c->commit_errors);
    mcounter(&mt, "edr_collector_store_writes_total", c->store_writes);
    mcounter(&mt, "edr_collector_store_writes_saved_total", c->store_writes_saved);
    uint64_t bytes = 0;
    OUT("# TYPE edr_collector_lag gauge\n");
    for (int p = 0; p < MAX_PARTS; p++) {
        part_t *pt = &c->parts[p];
        if (!pt->owned)
            continue;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_get_watermark_offsets(c->cons, c->topic, p, &lo, &hi) == 0 && hi >= 0)
            OUT("edr_collector_lag{partition=\"%d\"} %lld\n", p,
                (long long)(hi > pt->committed_next ? hi - pt->committed_next : 0));
        if (pt->w)
            bytes += edr_store_writer_disk_bytes(pt->w);
    }
    OUT("# TYPE edr_collector_store_bytes gauge\nedr_collector_store_bytes %llu\n",
        (unsigned long long)bytes);
    OUT("# TYPE edr_collector_bytes_per_event gauge\nedr_collector_bytes_per_event %.2f\n",
        c->events ? (double)bytes / (double)c->events : 0.0);
#undef OUT
    if (!mt.failed) /* else the last whole text stays published */
        edr_metrics_publish(c->metrics, mt.t, mt.len);
    free(mt.t);
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
    snprintf(c->store_dir, sizeof(c->store_dir), "%s", edr_config_str(cfg, "collector.store_dir"));
    c->min_free = edr_config_size(cfg, "collector.min_free_disk");
    c->max_ahead_ns = edr_config_duration_ns(cfg, "collector.max_clock_ahead");
    c->commit_interval = (double)edr_config_duration_ns(cfg, "collector.commit_interval") / 1e9;
    c->host_rate = (double)edr_config_int(cfg, "collector.host_rate_limit");
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
    rd_kafka_conf_t *conf = edr_kafka_conf_new(cfg, boot, err, errlen);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->cons = edr_kafka_consumer_new(cfg, boot, edr_config_str(cfg, "collector.group_id"), conf,
                                     err, errlen);
    if (!c->cons)
        goto fail;
    rd_kafka_conf_t *dconf = edr_kafka_conf_new(cfg, boot, err, errlen);
    if (!dconf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(dconf, dlq_dr);
    rd_kafka_conf_set_opaque(dconf, c);
    c->dlq = edr_kafka_producer_new(cfg, boot, dconf, err, errlen);
    if (!c->dlq)
        goto fail;
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
 * how many shards failed (the store logged why). */
static int retention(edr_collector_t *c)
{
    uint64_t keep = edr_config_duration_ns(c->cfg, "collector.retention");
    uint64_t now = wall_ns();
    int failed = 0;
    if (!keep || keep >= now)
        return 0;
    for (int p = 0; p < MAX_PARTS; p++)
        if (c->parts[p].owned && c->parts[p].w && edr_store_writer_retire(c->parts[p].w, now - keep))
            failed++;
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
    c->started = c->last_msg = c->last_commit = c->last_health = now_s();
    double next_ret = 0, last_log = c->started;
    uint64_t log_events = 0;
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
        rd_kafka_poll(c->dlq, 0);
        size_t pending = 0;
        for (int p = 0; p < MAX_PARTS; p++)
            if (c->parts[p].w)
                pending += edr_store_writer_pending(c->parts[p].w);
        if (pending >= 2048 || now - c->last_commit >= c->commit_interval || !m)
            commit_all(c);
        if (now - c->last_health >= 0.25)
            health_check(c);
        if (now - c->last_metrics >= 1.0)
            publish_metrics(c);
        if (c->retire_due || now >= next_ret) { /* hourly and at each assignment; a
                                                  * minute after a failed run */
            c->retire_due = 0;
            next_ret = now + (retention(c) ? 60 : 3600);
        }
        if (now - last_log >= 10) {
            edr_log_info("stored %llu events in %llu batches (%.0f events/s), %llu duplicates, "
                         "%llu dead letters",
                         (unsigned long long)c->events, (unsigned long long)c->batches,
                         (double)(c->events - log_events) / (now - last_log),
                         (unsigned long long)c->duplicates, (unsigned long long)c->deadletters);
            last_log = now;
            log_events = c->events;
        }
        if (c->opts.exit_when_idle > 0 && c->ever_assigned && !c->bp_paused &&
            now - c->last_msg >= c->opts.exit_when_idle)
            break;
    }
    commit_all(c);
    c->cpu += thread_cpu() - cpu0;
    edr_log_info("stopping: stored %llu events in %llu batches, %llu duplicates skipped, %llu "
                 "dead letters (%llu refused by the dead-letter topic, not kept), %llu batches "
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
    for (int p = 0; p < MAX_PARTS; p++)
        edr_store_writer_destroy(c->parts[p].w);
    if (c->dlq) {
        rd_kafka_flush(c->dlq, 10000);
        rd_kafka_destroy(c->dlq);
    }
    edr_metrics_destroy(c->metrics);
    edr_kafka_cluster_destroy(c->embedded);
    edr_frame_ctx_destroy(c->fctx);
    free(c->rates);
    free(c);
}
