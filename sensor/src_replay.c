/* Replay source: Sysmon exports and our JSON lines (core sysmon.h parser), each host's events kept as its own. */
#include "edr/config.h"
#include "edr/err.h"
#include "edr/log.h"
#include "edr/sysmon.h"
#include "sensor_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINES_PER_TURN 512
#define MAX_REPORTED   20

typedef struct {
    edr_source_t base;
    char *path;
    FILE *f;
    char *line;
    size_t line_cap;
    uint64_t lineno;
    edr_sysmon_parser_t *parser;
    edr_sysmon_batcher_t *batcher;
    edr_arena_t arena;
    uint64_t rate, t0, events;
    uint64_t added, flushed; /* records handed to the batcher, and the events it passed on */
    uint64_t batch_ns;       /* sensor.batch_interval: how long a record waits at most (--rate) */
    uint64_t wait_mono;      /* when the oldest record the batcher holds came, 0: none */
    uv_timer_t timer;
    uv_idle_t idle;
    int running, eof;
    edr_emit_t *em;
} replay_src_t;

static int on_batch(void *ud, Edr__V1__EventBatch *b)
{
    replay_src_t *r = ud;
    r->flushed += b->n_events;
    return edr_emit_batch(r->em, b);
}

static void on_error(void *ud, uint64_t lineno, edr_sysmon_skip_t reason, const char *msg)
{
    replay_src_t *r = ud;
    const edr_sysmon_stats_t *st = edr_sysmon_parser_stats(r->parser);
    if (st->n_errors <= MAX_REPORTED) {
        /* the input's bytes, quoted in msg, are escaped by edr_log */
        edr_log_warn("%s:%" PRIu64 ": %s: %.400s", r->path, lineno, edr_sysmon_skip_name(reason),
                     msg);
    }
    else if (st->n_errors == MAX_REPORTED + 1)
        edr_log_warn("%s: more bad lines; counting them silently", r->path);
}

static void finish(replay_src_t *r)
{
    if (r->eof)
        return;
    r->eof = 1;
    edr_sysmon_batcher_flush(r->batcher);
    const edr_sysmon_stats_t *st = edr_sysmon_parser_stats(r->parser);
    edr_log_info("replay %s: %" PRIu64 " lines, %" PRIu64 " events, skipped: %" PRIu64
                 " other channel, %" PRIu64 " unmapped, %" PRIu64 " malformed, %" PRIu64
                 " bad field, %" PRIu64 " too long",
                 r->path, st->lines, st->events, st->skipped[EDR_SYSMON_SKIP_OTHER_CHANNEL],
                 st->skipped[EDR_SYSMON_SKIP_UNMAPPED], st->skipped[EDR_SYSMON_SKIP_MALFORMED],
                 st->skipped[EDR_SYSMON_SKIP_BAD_FIELD], st->skipped[EDR_SYSMON_SKIP_TOO_LONG]);
    /* unreadable input is telemetry lost: it shows in health as drops */
    edr_emit_drop(r->em, "replay", "malformed", st->skipped[EDR_SYSMON_SKIP_MALFORMED]);
    edr_emit_drop(r->em, "replay", "bad_field", st->skipped[EDR_SYSMON_SKIP_BAD_FIELD]);
    edr_emit_drop(r->em, "replay", "too_long", st->skipped[EDR_SYSMON_SKIP_TOO_LONG]);
    uv_timer_stop(&r->timer);
    uv_idle_stop(&r->idle);
}

/* Reads up to max events' worth of lines; returns events produced. */
static uint64_t pump(replay_src_t *r, uint64_t max)
{
    uint64_t got = 0, lines = 0;
    while (!r->eof && got < max && lines < 4 * LINES_PER_TURN) {
        /* --max-events counts the records waiting in the batcher too */
        if (edr_emit_remaining(r->em) <= r->added - r->flushed) {
            finish(r);
            break;
        }
        ssize_t n = edr_sysmon_read_line(r->parser, r->f, &r->line, &r->line_cap, r->lineno + 1);
        if (n == EDR_EAGAIN) break; /* an overlong line goes on: back to the loop (signals) first */
        if (n == EDR_ENOMEM) {
            edr_emit_drop(r->em, "replay", "nomem", 1);
            r->lineno++;
            continue;
        }
        if (n < 0) {
            /* what was read is shipped; the rest of the input, of unknown
             * size, counts as one loss, and the run fails as one whose
             * file could not be opened */
            if (ferror(r->f)) {
                edr_log_error("replay %s: read error: %s", r->path, strerror(errno));
                edr_emit_drop(r->em, "replay", "read_error", 1);
                r->em->source_rc = EDR_EIO;
            }
            finish(r);
            break;
        }
        r->lineno++;
        lines++;
        if (n == 0) continue; /* too long: dropped, counted and reported */
        edr_sysmon_record_t rec;
        int rc = edr_sysmon_parse_line(r->parser, r->line, (size_t)n, r->lineno, &r->arena, &rec);
        if (rc == 1) {
            if (edr_sysmon_batcher_add(r->batcher, &rec) != 0)
                edr_emit_drop(r->em, "replay", "batch", 1);
            else
                r->added++;
            got++;
        } else if (rc < 0) {
            edr_emit_drop(r->em, "replay", "nomem", 1);
        }
        edr_arena_reset(&r->arena);
    }
    r->events += got;
    return got;
}

static void on_idle(uv_idle_t *h)
{
    pump(h->data, LINES_PER_TURN);
}

static void on_timer(uv_timer_t *t)
{
    replay_src_t *r = t->data;
    uint64_t now = edr__mono_ns();
    uint64_t due = (now - r->t0) / 1000 * r->rate / 1000000;
    if (due > r->events)
        pump(r, due - r->events);
    /* at a set rate records come slowly: the batcher's batch is shipped
     * after sensor.batch_interval as a sensor's are, not once it is full
     * (at --rate 5, 1,000 records took 200 s to come out: review-1206k F8) */
    if (r->added == r->flushed)
        r->wait_mono = 0;
    else if (!r->wait_mono)
        r->wait_mono = now;
    else if (now - r->wait_mono >= r->batch_ns && !r->eof) {
        edr_sysmon_batcher_flush(r->batcher); /* a failed ship is counted by edr_emit_batch */
        r->wait_mono = 0;
    }
}

static int replay_start(edr_source_t *src, uv_loop_t *loop, edr_emit_t *em)
{
    replay_src_t *r = (replay_src_t *)src;
    r->em = em;
    r->t0 = edr__mono_ns();
    uv_timer_init(loop, &r->timer);
    uv_idle_init(loop, &r->idle);
    r->timer.data = r->idle.data = r;
    r->running = 1;
    if (r->rate)
        uv_timer_start(&r->timer, on_timer, 5, 5);
    else
        uv_idle_start(&r->idle, on_idle);
    edr_log_info("replay source: %s %s", r->path, r->rate ? "rate-limited" : "as fast as possible");
    return 0;
}

static void replay_stop(edr_source_t *src)
{
    replay_src_t *r = (replay_src_t *)src;
    if (!r->running)
        return;
    r->running = 0;
    if (!r->eof)
        edr_sysmon_batcher_flush(r->batcher); /* pending events go out */
    r->eof = 1;
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_close((uv_handle_t *)&r->idle, NULL);
}

static int replay_done(edr_source_t *src)
{
    return ((replay_src_t *)src)->eof;
}

static void replay_destroy(edr_source_t *src)
{
    replay_src_t *r = (replay_src_t *)src;
    if (r->f)
        fclose(r->f);
    free(r->line);
    edr_sysmon_batcher_destroy(r->batcher);
    edr_sysmon_parser_destroy(r->parser);
    edr_arena_close(&r->arena);
    free(r->path);
    free(r);
}

static const edr_source_ops_t replay_ops = {
    .name = "replay",
    .source_kind = EDR__V1__SENSOR_INFO__SOURCE_KIND__REPLAY,
    .start = replay_start,
    .stop = replay_stop,
    .done = replay_done,
    .destroy = replay_destroy,
};

edr_source_t *edr_source_replay_new(const struct edr_config *cfg, const char *path, char *err,
                                    size_t errlen)
{
    int64_t rate = edr_config_int(cfg, "sensor.rate");
    if (rate < 0) {
        snprintf(err, errlen, "sensor.rate: must not be negative");
        return NULL;
    }
    if (!path || !*path) {
        snprintf(err, errlen, "source sysmon: a file is needed (sysmon:FILE)");
        return NULL;
    }
    replay_src_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->base.ops = &replay_ops;
    edr_arena_init(&r->arena, 1 << 16);
    r->rate = (uint64_t)rate;
    r->batch_ns = edr_config_duration_ns(cfg, "sensor.batch_interval");
    r->path = strdup(path);
    r->f = fopen(path, "r");
    struct stat st;
    if (r->f && fstat(fileno(r->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        /* fopen() opens a directory; only its first read would fail */
        fclose(r->f);
        r->f = NULL;
        errno = EISDIR;
    }
    if (!r->f) {
        snprintf(err, errlen, "source sysmon: cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    edr_sysmon_opts_t po = {.on_error = on_error, .ud = r};
    r->parser = edr_sysmon_parser_new(&po);
    r->batcher = edr_sysmon_batcher_new((size_t)edr_config_int(cfg, "sensor.batch_events"), on_batch, r);
    if (!r->path || !r->parser || !r->batcher) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return &r->base;
fail:
    replay_destroy(&r->base);
    return NULL;
}
