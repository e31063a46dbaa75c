/* Streaming analysis: frames consumed from edr.telemetry.v1 on the embedded Kafka cluster into per-host graphs give the same root cause and chain as the store-built analysis, also after window evictions. */
#define _GNU_SOURCE
#include "edr_test.h"
#include "edr_test_dict.h"

#include "edr/arena.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/graph.h"
#include "edr/kafka.h"
#include "edr/store.h"
#include "edr/stream.h"
#include "edr/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOSTS 4
#define PARTS 2

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Sorted entity ids of the chain (processes, files and remotes alike). */
static size_t chain_ids(const edr_graph_t *g, const edr_rca_t *r, uint8_t (*out)[16], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_chain && n < max; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, r->chain[i].node, &in);
        memcpy(out[n++], in.entity_id, 16);
    }
    qsort(out, n, 16, cmp_id);
    return n;
}

static void same_result(const edr_graph_t *ga, const edr_rca_t *a, const edr_graph_t *gb, const edr_rca_t *b)
{
    edr_graph_node_info_t ra, rb;
    edr_graph_node(ga, a->root, &ra);
    edr_graph_node(gb, b->root, &rb);
    assert_int_equal(a->cls, b->cls);
    assert_memory_equal(ra.entity_id, rb.entity_id, 16);
    static uint8_t ia[512][16], ib[512][16];
    size_t na = chain_ids(ga, a, ia, 512), nb = chain_ids(gb, b, ib, 512);
    if (na != nb)
        fail_msg("chains differ in length: %zu (store) vs %zu (stream): %s / %s", na, nb, a->reason, b->reason);
    assert_memory_equal(ia, ib, na * 16);
}

static void test_stream_matches_store(void **state)
{
    (void)state;
    char err[256];
    edr_config_t *cfg = edr_config_new();
    assert_non_null(cfg);
    edr_kafka_cluster_t *kc = edr_kafka_cluster_new(cfg, 1, PARTS, err, sizeof(err));
    if (!kc)
        fail_msg("%s", err);
    const char *boot = edr_kafka_cluster_bootstraps(kc);
    char topic[128];
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    rd_kafka_t *prod = edr_kafka_producer_new(cfg, boot, NULL, err, sizeof(err));
    if (!prod)
        fail_msg("%s", err);

    char dir[] = "/tmp/edr-stream-rca-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char store[96];
    snprintf(store, sizeof(store), "%s/s", dir);
    edr_store_writer_t *w = edr_store_writer_open(store, 0, NULL, err, sizeof(err));
    if (!w)
        fail_msg("%s", err);

    /* a lateral move 0 -> 1, a service exploit on 2 early, a download-execute on 3 late */
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 4242};
    edr_synth_t *s = edr_synth_new(&so);
    edr_synth_attack_spec_t sp[] = {
        {.kind = EDR_SYNTH_ATTACK_LATERAL, .host = 0, .target_host = 1, .depth = 4, .after_events = 700},
        {.kind = EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, .host = 2, .depth = 3, .after_events = 400},
        {.kind = EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, .host = 3, .depth = 2, .after_events = 2600},
    };
    for (size_t i = 0; i < 3; i++)
        assert_true(edr_synth_add_attack(s, &sp[i]) >= 0);
    edr_frame_ctx_t *fc = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    size_t sent = 0;
    for (int round = -1; round < 31; round++)
        for (uint32_t h = 0; h < HOSTS; h++) {
            Edr__V1__EventBatch *b = round < 0 ? edr_synth_seed_batch(s, h, &a) : edr_synth_next_batch(s, h, 100, &a);
            const uint8_t *f;
            size_t fl;
            assert_int_equal(edr_frame_encode(fc, b, 0, &f, &fl), 0);
            assert_true(edr_store_writer_add(w, f, fl, b) >= 0);
            rd_kafka_resp_err_t ke = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(b->sensor->host_id.data, 16),
                RD_KAFKA_V_VALUE((void *)f, fl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            assert_int_equal(ke, 0);
            sent++;
            edr_arena_reset(&a);
        }
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_store_writer_destroy(w);
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    for (size_t i = 0; i < 3; i++)
        assert_true(edr_synth_attack(s, i)->done);

    /* the streaming side: assigned partitions from the beginning, every frame into two streams:
     * a 1 h window (everything) and a 150 ms window (evictions while the data flows) */
    rd_kafka_t *cons = edr_kafka_consumer_new(cfg, boot, "edr-test-stream", NULL, err, sizeof(err));
    if (!cons)
        fail_msg("%s", err);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(PARTS);
    for (int p = 0; p < PARTS; p++)
        rd_kafka_topic_partition_list_add(tp, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(cons, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    edr_stream_t *full = edr_stream_new(NULL);
    edr_stream_opts_t small_o = {.window_ns = 150000000ull};
    edr_stream_t *small = edr_stream_new(&small_o);
    assert_non_null(full);
    assert_non_null(small);
    size_t got = 0;
    double t_end = now_s() + 60;
    while (got < sent && now_s() < t_end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (!m)
            continue;
        if (!m->err) {
            assert_int_equal(edr_stream_add_frame(full, m->payload, m->len), 0);
            assert_int_equal(edr_stream_add_frame(small, m->payload, m->len), 0);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(got, sent);
    /* a bad frame is refused and counted, nothing else changes */
    static const uint8_t junk[40] = "EDRF garbage";
    assert_true(edr_stream_add_frame(full, junk, sizeof(junk)) < 0);
    edr_stream_stats_t fs, ss;
    edr_stream_stats(full, &fs);
    edr_stream_stats(small, &ss);
    assert_int_equal(fs.bad_frames, 1);
    assert_int_equal(fs.frames, sent);
    assert_int_equal(fs.hosts, HOSTS);
    assert_int_equal(fs.rebuilds, 0);
    assert_true(ss.rebuilds > 0);
    assert_true(ss.frames_kept < fs.frames_kept / 2);
    assert_true(ss.edges < fs.edges / 2);

    edr_store_t *st = edr_store_open(store, NULL, err, sizeof(err));
    if (!st)
        fail_msg("%s", err);
    for (size_t i = 0; i < 3; i++) {
        const edr_synth_attack_t *at = edr_synth_attack(s, i);
        for (int first = 0; first < 2; first++) {
            const uint8_t *ent = first ? at->first.entity_id : at->alert.entity_id;
            edr_graph_t *g = edr_graph_new();
            int e = 0;
            edr_rca_t *rs = edr_rca_run_store(g, st, ent, 0, NULL, NULL, NULL, &e);
            assert_non_null(rs);
            const edr_graph_t *sg = NULL;
            edr_rca_t *rm = edr_stream_rca(full, ent, 0, NULL, &sg, &e);
            assert_non_null(rm);
            same_result(g, rs, sg, rm);
            edr_rca_destroy(rm);
            /* the late attack is inside the small window: same answer after evictions */
            if (i == 2) {
                rm = edr_stream_rca(small, ent, 0, NULL, &sg, &e);
                assert_non_null(rm);
                same_result(g, rs, sg, rm);
                edr_rca_destroy(rm);
            }
            edr_rca_destroy(rs);
            edr_graph_destroy(g);
        }
    }
    /* the first attack left the small window: it is not found there, and says so */
    int e = 0;
    const edr_graph_t *sg = NULL;
    assert_null(edr_stream_rca(small, edr_synth_attack(s, 1)->first.entity_id, 0, NULL, &sg, &e));
    assert_int_equal(e, EDR_ENOENT);

    edr_store_destroy(st);
    edr_stream_destroy(full);
    edr_stream_destroy(small);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    edr_kafka_cluster_destroy(kc);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(fc);
    edr_synth_destroy(s);
    edr_config_destroy(cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
}

/* Frames a sensor compressed with a trained dictionary: the stream decodes
 * them with opts.dict_dir, rejects them (counted) without it, and refuses to
 * start on a dictionary directory it cannot read. */
static void test_stream_dictionary(void **state)
{
    (void)state;
    char dir[] = "/tmp/edr-stream-dict-XXXXXX", path[96];
    assert_non_null(mkdtemp(dir));
    edr_synth_opts_t so = {.hosts = 2, .seed = 5};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    static uint8_t frames[64][1 << 16];
    size_t flen[64];
    snprintf(path, sizeof(path), "%s/fleet.zdict", dir);
    uint32_t id = edr_test_train_dict(enc, path, 2, 6, 100, 200);
    for (int i = 0; i < 64; i++) {
        edr_arena_reset(&a);
        Edr__V1__EventBatch *b = edr_synth_next_batch(sy, (uint32_t)i % 2, 200, &a);
        const uint8_t *f;
        assert_int_equal(edr_frame_encode(enc, b, id, &f, &flen[i]), 0);
        assert_true(flen[i] <= sizeof(frames[i]));
        memcpy(frames[i], f, flen[i]);
    }
    edr_stream_opts_t with = {.dict_dir = dir}, bad = {.dict_dir = "/nonexistent/dicts"};
    edr_stream_t *sw = edr_stream_new(&with), *sn = edr_stream_new(NULL);
    assert_non_null(sw);
    assert_non_null(sn);
    assert_null(edr_stream_new(&bad));
    for (int i = 0; i < 64; i++) {
        assert_int_equal(edr_stream_add_frame(sw, frames[i], flen[i]), 0);
        assert_int_equal(edr_stream_add_frame(sn, frames[i], flen[i]), EDR_EFRAME_DICT);
    }
    edr_stream_stats_t st;
    edr_stream_stats(sw, &st);
    assert_int_equal(st.events, 64 * 200);
    edr_stream_stats(sn, &st);
    assert_int_equal(st.bad_frames, 64);
    edr_stream_destroy(sw);
    edr_stream_destroy(sn);
    edr_frame_ctx_destroy(enc);
    edr_arena_close(&a);
    edr_synth_destroy(sy);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* One frame with an event ten days ahead of the wall clock is refused (it
 * would slide its host's window past all of its real telemetry, and every
 * later frame rebuilt the graph); frames of the host go on being added, and
 * windows move without a rebuild per frame. */
static void test_stream_far_future_refused(void **state)
{
    (void)state;
    edr_synth_opts_t so = {.hosts = 1, .seed = 9};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    edr_stream_opts_t o = {.window_ns = 60ull * 1000000000ull}; /* a minute */
    edr_stream_t *st = edr_stream_new(&o);
    assert_non_null(st);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull;
    const uint8_t *f;
    size_t fl;
    edr_arena_reset(&a);
    Edr__V1__EventBatch *b = edr_synth_next_batch(sy, 0, 50, &a);
    b->base_time_ns = now + 10ull * 86400 * 1000000000ull;
    assert_int_equal(edr_frame_encode(enc, b, 0, &f, &fl), 0);
    assert_int_equal(edr_stream_add_frame(st, f, fl), EDR_ERANGE);
    /* 200 frames a second apart, over three minutes and a bit: evictions
     * happen as the window moves, not at every frame */
    for (int i = 0; i < 200; i++) {
        edr_arena_reset(&a);
        b = edr_synth_next_batch(sy, 0, 50, &a);
        b->base_time_ns = now - 3600ull * 1000000000ull + (uint64_t)i * 1000000000ull;
        for (size_t k = 0; k < b->n_events; k++)
            b->events[k]->time_offset_ns = (int64_t)(k * 1000);
        assert_int_equal(edr_frame_encode(enc, b, 0, &f, &fl), 0);
        assert_int_equal(edr_stream_add_frame(st, f, fl), 0);
    }
    edr_stream_stats_t sst;
    edr_stream_stats(st, &sst);
    assert_int_equal(sst.bad_frames, 1);
    assert_int_equal(sst.frames, 200);
    if (sst.rebuilds < 1 || sst.rebuilds > 4)
        fail_msg("%llu rebuilds for 200 s of telemetry in a 60 s window",
                 (unsigned long long)sst.rebuilds);
    edr_stream_destroy(st);
    edr_frame_ctx_destroy(enc);
    edr_arena_close(&a);
    edr_synth_destroy(sy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_matches_store),
        cmocka_unit_test(test_stream_dictionary),
        cmocka_unit_test(test_stream_far_future_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
