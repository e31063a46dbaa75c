/* bench sensor-pipeline: synthetic events -> sensor batcher -> frames (no Kafka), vs frame encoding alone. */
#include "edr/arena.h"
#include "edr/config.h"
#include "edr/frame.h"
#include "edr/log.h"
#include "edr/synth.h"
#include "sensor.h"
#include "sensor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    edr_frame_ctx_t *enc;
    uint64_t bytes, frames;
} sink_t;

static int ship(void *ud, Edr__V1__EventBatch *b)
{
    sink_t *k = ud;
    const uint8_t *fr;
    size_t fl;
    if (edr_frame_encode(k->enc, b, 0, &fr, &fl))
        return -1;
    k->bytes += fl;
    k->frames++;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 3000000;
    edr_log_init("bench_sensor_pipeline", EDR_LOG_WARN);
    edr_config_t *cfg = edr_config_new();
    char dir[] = "/tmp/edr-bench-sensor-XXXXXX";
    if (!cfg || !mkdtemp(dir))
        return 1;
    char kv[256];
    snprintf(kv, sizeof(kv), "sensor.state_dir=%s", dir);
    edr_config_set_kv(cfg, kv, "bench", NULL, 0);
    edr_config_set_kv(cfg, "host.id=000102030405060708090a0b0c0d0e0f", "bench", NULL, 0);
    char err[512];
    edr_synth_opts_t so = {.hosts = 1, .seed = 7};

    /* 1. frame encoding alone: pre-generated batches, encode only */
    size_t nb = (size_t)(events / BATCH);
    edr_arena_t *arenas = calloc(64, sizeof(*arenas));
    Edr__V1__EventBatch *pre[64];
    edr_synth_t *syn = edr_synth_new(&so);
    for (int i = 0; i < 64; i++) {
        edr_arena_init(&arenas[i], 1 << 20);
        pre[i] = edr_synth_next_batch(syn, 0, BATCH, &arenas[i]);
    }
    sink_t k1 = {edr_frame_ctx_new(NULL), 0, 0};
    double t0 = now_s();
    for (size_t i = 0; i < nb; i++)
        ship(&k1, pre[i % 64]);
    double enc_s = now_s() - t0;
    double enc_rate = (double)(nb * BATCH) / enc_s;

    /* 2. the sensor pipeline: synth generates, every event goes through
     * edr_emit_begin/end (as the kernel sources do), batches are framed */
    edr__state_t *st = edr__state_open(dir, 1, err, sizeof(err));
    edr__drops_t drops = {0};
    edr_emit_t em;
    sink_t k2 = {edr_frame_ctx_new(NULL), 0, 0};
    if (!st || edr__emit_init(&em, cfg, 4, st, &drops, ship, &k2, err, sizeof(err))) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    edr_arena_t ga;
    edr_arena_init(&ga, 1 << 20);
    edr_synth_t *syn2 = edr_synth_new(&so);
    t0 = now_s();
    uint64_t done = 0;
    while (done < nb * BATCH) {
        Edr__V1__EventBatch *b = edr_synth_next_batch(syn2, 0, BATCH, &ga);
        for (size_t i = 0; i < b->n_events; i++) {
            const Edr__V1__Event *src = b->events[i];
            Edr__V1__Event *e = edr_emit_begin(&em, b->base_time_ns + (uint64_t)src->time_offset_ns);
            if (!e)
                continue;
            int64_t off = e->time_offset_ns;
            *e = *src; /* body pointers stay in ga until this batch is framed */
            e->time_offset_ns = off;
            edr_emit_end(&em, e);
        }
        edr__emit_flush(&em);
        edr_arena_reset(&ga);
        done += b->n_events;
    }
    double pipe_s = now_s() - t0;
    double pipe_rate = (double)done / pipe_s;

    /* 3. the whole daemon in process: libuv loop, synth source, output null */
    edr_config_set_kv(cfg, "sensor.source=synth", "bench", NULL, 0);
    edr_config_set_kv(cfg, "sensor.output=null", "bench", NULL, 0);
    edr_sensor_opts_t o = {.max_events = nb * BATCH, .keep_caps = 1, .no_lock = 1};
    edr_sensor_t *s = edr_sensor_new(cfg, &o, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    t0 = now_s();
    edr_sensor_run(s);
    double d_s = now_s() - t0;
    edr_sensor_stats_t ss;
    edr_sensor_get_stats(s, &ss);
    double d_rate = (double)ss.events / d_s;
    edr_sensor_destroy(s);

    printf("events %llu per run, batches of %d, %.1f bytes/event framed\n",
           (unsigned long long)(nb * BATCH), BATCH, (double)k2.bytes / (double)done);
    printf("RESULT sensor_pipeline_events_per_s %.0f events/s\n", pipe_rate);
    printf("RESULT frame_encode_only_events_per_s %.0f events/s\n", enc_rate);
    printf("RESULT sensor_daemon_null_output_events_per_s %.0f events/s\n", d_rate);
    printf("RESULT sensor_pipeline_vs_encode_only %.2f ratio\n", pipe_rate / enc_rate);
    printf("target: sensor_pipeline >= 1000000 events/s on one core: %s\n",
           pipe_rate >= 1e6 ? "met" : "NOT met");
    edr__emit_close(&em);
    edr__state_close(st);
    edr_synth_destroy(syn);
    edr_synth_destroy(syn2);
    edr_frame_ctx_destroy(k1.enc);
    edr_frame_ctx_destroy(k2.enc);
    edr_arena_close(&ga);
    for (int i = 0; i < 64; i++)
        edr_arena_close(&arenas[i]);
    free(arenas);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
