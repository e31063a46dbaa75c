/* Synthetic source: realistic mixed telemetry of many simulated hosts at a chosen rate (core synth.h). */
#define _GNU_SOURCE /* mkostemp */
#include "edr/config.h"
#include "edr/err.h"
#include "edr/identity.h"
#include "edr/jsonl.h"
#include "edr/log.h"
#include "edr/synth.h"
#include "sensor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    edr_source_t base;
    edr_synth_t *syn;
    edr_arena_t arena;
    uint32_t hosts, next_host;
    uint64_t rate;       /* events/s, 0: as fast as possible */
    size_t batch;        /* events per batch (rate-limited: what a host does in a batch interval) */
    uint64_t t0;         /* monotonic start */
    uint64_t sent;
    uv_timer_t timer;
    uv_idle_t idle;
    int running, finished;
    edr_emit_t *em;
    char *truth_path; /* sensor.synth_truth */
    int truth_written;
} synth_src_t;

static void put_truth(FILE *f, const char *name, const edr_synth_truth_t *t)
{
    static const char *const kinds[] = {"", "process", "file", "remote"};
    char h[33], id[33];
    fprintf(f, "\"%s\":{\"kind\":\"%s\",\"host_id\":\"%s\"", name, t->kind < 4 ? kinds[t->kind] : "",
            edr_hex(t->host_id, 16, h));
    if (t->kind == 1)
        fprintf(f, ",\"entity_id\":\"%s\"", edr_hex(t->entity_id, 16, id));
    if (t->kind == 2) {
        fputs(",\"path\":\"", f);
        for (const char *p = t->path; *p && p < t->path + sizeof(t->path); p++)
            fprintf(f, (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? "\\u%04x" : "%c",
                    (unsigned char)*p);
        fputc('"', f);
    }
    if (t->kind == 3)
        fprintf(f, ",\"ip\":\"%u.%u.%u.%u\"", t->ip[0], t->ip[1], t->ip[2], t->ip[3]);
    fputc('}', f);
}

/* Writes the ground truth of every embedded attack as JSON lines (0600):
 * into a new file of a random name beside it (created, so that a symlink
 * planted in a shared directory is not followed), renamed into place. A
 * truth file not written fails the run: a benchmark scored without it must
 * not pass for one scored. */
static void write_truth(synth_src_t *s)
{
    if (!s->truth_path || s->truth_written)
        return;
    s->truth_written = 1;
    char tmp[4200];
    FILE *f;
    int fd, ok = 0;
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", s->truth_path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        goto out;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        goto out;
    if (!(f = fdopen(fd, "w"))) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    size_t n = edr_synth_attack_count(s->syn);
    errno = 0;
    for (size_t i = 0; i < n; i++) {
        const edr_synth_attack_t *a = edr_synth_attack(s->syn, i);
        fprintf(f, "{\"attack\":%zu,\"kind\":%d,\"done\":%s,\"root_class\":%d,\"alert_ns\":%llu,", i,
                (int)a->spec.kind, a->done ? "true" : "false", a->root_class,
                (unsigned long long)a->alert_ns);
        put_truth(f, "root", &a->root);
        fputc(',', f);
        put_truth(f, "first", &a->first);
        fputc(',', f);
        put_truth(f, "alert", &a->alert);
        fputs(",\"entities\":[", f);
        for (size_t k = 0; k < a->n_truth; k++) {
            fputs(k ? ",{" : "{", f);
            put_truth(f, "e", &a->truth[k]);
            fputc('}', f);
        }
        fputs("]}\n", f);
    }
    /* a failed write sticks to f (ferror) with its errno; then fclose() and
     * rename() may fail on their own */
    int werr = fflush(f) != 0 || ferror(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !werr)
        werr = errno;
    if (!werr && rename(tmp, s->truth_path) != 0)
        werr = errno;
    if (werr) {
        unlink(tmp);
        errno = werr;
        goto out;
    }
    ok = 1;
    edr_log_info("synthetic source: ground truth of %zu attacks in %s", n, s->truth_path);
out:
    if (!ok) {
        edr_log_error("synthetic source: cannot write %s: %s", s->truth_path, strerror(errno));
        s->em->source_rc = EDR_EIO;
    }
}

/* Emits up to n events as batches; returns events emitted. */
static uint64_t produce(synth_src_t *s, uint64_t n)
{
    uint64_t done = 0;
    while (done < n) {
        uint64_t left = edr_emit_remaining(s->em);
        if (left == 0) {
            s->finished = 1;
            break;
        }
        uint64_t k = n - done;
        if (k > s->batch)
            k = s->batch;
        if (k > left)
            k = left;
        Edr__V1__EventBatch *b = edr_synth_next_batch(s->syn, s->next_host, (size_t)k, &s->arena);
        s->next_host = (s->next_host + 1) % s->hosts;
        if (!b) {
            edr_emit_drop(s->em, "synthetic", "nomem", k);
        } else {
            edr_emit_batch(s->em, b);
        }
        edr_arena_reset(&s->arena);
        done += k;
    }
    s->sent += done;
    return done;
}

static void on_idle(uv_idle_t *h)
{
    synth_src_t *s = h->data;
    produce(s, s->batch);
    if (s->finished)
        uv_idle_stop(&s->idle);
}

static void on_timer(uv_timer_t *t)
{
    synth_src_t *s = t->data;
    uint64_t due = (edr__mono_ns() - s->t0) / 1000 * s->rate / 1000000;
    uint64_t n = due > s->sent ? due - s->sent : 0;
    /* whole batches only, as sensors send them (the last may be short):
     * a batch every 5 ms tick made frames of 5 events at 1,000 events/s */
    if (n >= s->batch)
        n -= n % s->batch;
    else if (n < edr_emit_remaining(s->em))
        n = 0;
    if (n)
        produce(s, n);
    if (s->finished)
        uv_timer_stop(&s->timer);
}

static int synth_start(edr_source_t *src, uv_loop_t *loop, edr_emit_t *em)
{
    synth_src_t *s = (synth_src_t *)src;
    s->em = em;
    s->t0 = edr__mono_ns();
    uv_timer_init(loop, &s->timer);
    uv_idle_init(loop, &s->idle);
    s->timer.data = s->idle.data = s;
    if (s->rate)
        uv_timer_start(&s->timer, on_timer, 5, 5);
    else
        uv_idle_start(&s->idle, on_idle);
    s->running = 1;
    edr_log_info("synthetic source: %u hosts, %s", s->hosts, s->rate ? "rate-limited" : "as fast as possible");
    return 0;
}

static void synth_stop(edr_source_t *src)
{
    synth_src_t *s = (synth_src_t *)src;
    if (!s->running)
        return;
    s->running = 0;
    write_truth(s);
    uv_close((uv_handle_t *)&s->timer, NULL);
    uv_close((uv_handle_t *)&s->idle, NULL);
}

static int synth_done(edr_source_t *src)
{
    return ((synth_src_t *)src)->finished;
}

static void synth_destroy(edr_source_t *src)
{
    synth_src_t *s = (synth_src_t *)src;
    edr_synth_destroy(s->syn);
    edr_arena_close(&s->arena);
    free(s->truth_path);
    free(s);
}

static const edr_source_ops_t synth_ops = {
    .name = "synthetic",
    .source_kind = EDR__V1__SENSOR_INFO__SOURCE_KIND__SYNTHETIC,
    .start = synth_start,
    .stop = synth_stop,
    .done = synth_done,
    .destroy = synth_destroy,
};

edr_source_t *edr_source_synth_new(const struct edr_config *cfg, char *err, size_t errlen)
{
    int64_t hosts = edr_config_int(cfg, "sensor.synth_hosts");
    int64_t rate = edr_config_int(cfg, "sensor.rate");
    int64_t batch = edr_config_int(cfg, "sensor.batch_events");
    if (hosts < 1 || hosts > 1000000) {
        snprintf(err, errlen, "sensor.synth_hosts: must be 1..1000000");
        return NULL;
    }
    if (rate < 0) {
        snprintf(err, errlen, "sensor.rate: must not be negative");
        return NULL;
    }
    /* events are stamped from now, as a sensor's are (they started at
     * 2026-01-01, which a collector's retention deleted: review-1206p-docs
     * L10), or from a given time */
    const char *start = edr_config_str(cfg, "sensor.synth_start");
    uint64_t start_ns = 0;
    if (!strcmp(start, "now")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    } else if (edr_jsonl_time_parse(start, strlen(start), &start_ns) != 0 || !start_ns) {
        snprintf(err, errlen,
                 "sensor.synth_start: want now or a UTC time like "
                 "2026-01-01T00:00:00Z");
        return NULL;
    }
    synth_src_t *s = calloc(1, sizeof(*s));
    edr_synth_opts_t so = {.hosts = (uint32_t)hosts,
                           .seed = (uint64_t)edr_config_int(cfg, "sensor.synth_seed"),
                           .start_ns = start_ns};
    if (!s || !(s->syn = edr_synth_new(&so))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &synth_ops;
    edr_arena_init(&s->arena, 1 << 20);
    s->hosts = (uint32_t)hosts;
    s->rate = (uint64_t)rate;
    s->batch = batch > 0 ? (size_t)batch : 1000;
    if (rate) {
        /* each simulated host ships what it did in a batch interval, as the
         * sensor on it would: rate x interval / hosts events, at least one */
        double per = (double)rate * (double)edr_config_duration_ns(cfg, "sensor.batch_interval") /
                     1e9 / (double)hosts;
        if (per < (double)s->batch)
            s->batch = per < 1 ? 1 : (size_t)per;
    }
    const char *truth = edr_config_str(cfg, "sensor.synth_truth");
    if (*truth && !(s->truth_path = strdup(truth))) {
        synth_destroy(&s->base);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int64_t attacks = edr_config_int(cfg, "sensor.synth_attacks");
    if (attacks < 0 || attacks > hosts) {
        synth_destroy(&s->base);
        snprintf(err, errlen, "sensor.synth_attacks: must be 0..sensor.synth_hosts (%lld)",
                 (long long)hosts);
        return NULL;
    }
    int64_t free_host = attacks; /* hosts from here have no attack of their own */
    for (int64_t i = 0; i < attacks; i++) {
        /* kinds in turn; lateral movement needs a second host without an
         * attack (the next host, attacked itself, left the attack unplanned
         * as "resource busy"): the other kinds once none is left */
        int kind = 1 + (int)(i % 3);
        if (kind == EDR_SYNTH_ATTACK_LATERAL && free_host >= hosts)
            kind = 1 + (int)(i / 3 % 2);
        edr_synth_attack_spec_t sp = {.kind = (edr_synth_attack_kind_t)kind,
                                      .host = (uint32_t)i,
                                      .target_host = kind == EDR_SYNTH_ATTACK_LATERAL
                                                         ? (uint32_t)free_host++
                                                         : 0,
                                      .depth = 3,
                                      .after_events = 2000 + (uint64_t)i * 500};
        int rc = edr_synth_add_attack(s->syn, &sp);
        if (rc < 0)
            edr_log_warn("synthetic source: attack %lld not planned: %s", (long long)i,
                         edr_strerror(rc));
    }
    return &s->base;
}
