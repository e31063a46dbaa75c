/* Synthetic source: realistic mixed telemetry of many simulated hosts at a chosen rate (core synth.h). */
#include "edr/config.h"
#include "edr/err.h"
#include "edr/log.h"
#include "edr/synth.h"
#include "sensor_int.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    edr_source_t base;
    edr_synth_t *syn;
    edr_arena_t arena;
    uint32_t hosts, next_host;
    uint64_t rate;       /* events/s, 0: as fast as possible */
    size_t batch;        /* events per batch */
    uint64_t t0;         /* monotonic start */
    uint64_t sent;
    uv_timer_t timer;
    uv_idle_t idle;
    int running, finished;
    edr_emit_t *em;
} synth_src_t;

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
    if (due > s->sent)
        produce(s, due - s->sent);
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
    synth_src_t *s = calloc(1, sizeof(*s));
    edr_synth_opts_t so = {.hosts = (uint32_t)hosts,
                           .seed = (uint64_t)edr_config_int(cfg, "sensor.synth_seed")};
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
    return &s->base;
}
