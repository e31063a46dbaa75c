/* Producer loss accounting against the embedded Kafka mock: every event is acknowledged, spooled or counted once, in per-host order. */
#include "edr_test.h"
#include "sensor_test.h"

#include "edr/arena.h"
#include "edr/synth.h"
#include "sensor_int.h"

#include <inttypes.h>

#define MAX_SEQ 4096

/* A producer over its own spool and embedded cluster, fed synthetic
 * batches of one host, its drops counted the way the sensor counts them. */
typedef struct {
    edr_config_t *cfg;
    edr_kafka_cluster_t *cl;
    char dir[32];
    edr_spool_t *sp;
    uint64_t spool_max;
    uint64_t spool_sync_ns; /* the spool's sync interval: 1 s */
    uint64_t acked_before;  /* events acknowledged in earlier runs (rig_restart) */
    edr__drops_t drops;
    edr_frame_ctx_t *enc, *dec;
    edr_synth_t *syn;
    edr_arena_t arena;
    uint8_t host[16];
    edr__producer_t *p;
    uint64_t sent; /* events handed to the producer (or appended to its spool) */
    uint64_t first_seq;
} rig_t;

static void on_spool_drop(void *ud, const uint8_t *frame, size_t len, const char *reason)
{
    rig_t *r = ud;
    edr__drops_add(&r->drops, "spool", reason, edr__frame_events(r->dec, frame, len));
}

/* Opens the spool in the rig's directory sub. */
static void rig_spool_open(rig_t *r, const char *sub)
{
    char err[512], sd[64];
    snprintf(sd, sizeof(sd), "%s/%s", r->dir, sub);
    r->sp = edr_spool_open(sd, r->spool_max, r->spool_sync_ns, on_spool_drop, r, err, sizeof(err));
    if (!r->sp)
        fail_msg("spool: %s", err);
}

/* spool_max: the spool's bound; max_msg: the client's message.max.bytes or NULL. */
static void rig_open(rig_t *r, uint64_t spool_max, const char *max_msg)
{
    char err[512];
    memset(r, 0, sizeof(*r));
    r->cfg = edr_config_new();
    assert_non_null(r->cfg);
    if (max_msg)
        assert_int_equal(edr_config_set(r->cfg, "kafka.properties.message.max.bytes", max_msg,
                                        "test", err, sizeof(err)),
                         0);
    r->cl = edr_kafka_cluster_new(r->cfg, 1, 1, err, sizeof(err));
    if (!r->cl)
        fail_msg("embedded kafka: %s", err);
    snprintf(r->dir, sizeof(r->dir), "/tmp/edr-prod-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->spool_max = spool_max;
    r->spool_sync_ns = 1000000000ull;
    rig_spool_open(r, "spool");
    r->enc = edr_frame_ctx_new(NULL);
    r->dec = edr_frame_ctx_new(NULL);
    edr_synth_opts_t so = {.hosts = 1, .seed = 7};
    r->syn = edr_synth_new(&so);
    assert_non_null(r->syn);
    edr_synth_host_id(r->syn, 0, r->host);
    edr_arena_init(&r->arena, 1 << 16);
}

/* The producer, made once the spool holds what the test put there. */
static void rig_producer(rig_t *r, uint64_t spool_after_ns)
{
    char err[512], topic[256];
    edr_topic_name(r->cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    r->p = edr__producer_new(topic, r->sp, spool_after_ns, &r->drops, r->dec);
    assert_non_null(r->p);
    const char *boot = edr_kafka_cluster_bootstraps(r->cl);
    rd_kafka_conf_t *conf = edr_kafka_conf_new(r->cfg, boot, err, sizeof(err));
    assert_non_null(conf);
    edr__producer_conf(r->p, conf);
    rd_kafka_t *rk = edr_kafka_producer_new(r->cfg, boot, conf, err, sizeof(err));
    if (!rk)
        fail_msg("producer: %s", err);
    edr__producer_attach(r->p, rk);
}

static void rig_close(rig_t *r)
{
    edr__producer_destroy(r->p);
    edr_spool_close(r->sp);
    edr_kafka_cluster_destroy(r->cl);
    edr_config_destroy(r->cfg);
    edr_arena_close(&r->arena);
    edr_synth_destroy(r->syn);
    edr_frame_ctx_destroy(r->enc);
    edr_frame_ctx_destroy(r->dec);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
}

/* The sensor stops and a new run starts over the same spool directory,
 * with a new producer; the drop counters go on (the sensor carries them
 * across runs), the events acknowledged so far are added to acked_before.
 * crash: as a kill -9 now would leave things: the next run gets the spool
 * as it is on disk now (copied before the stop, which writes nothing to the
 * copy), and the counts are those of now (the worst case for double
 * counting: a health event reported every drop counted so far). */
static void rig_restart(rig_t *r, int crash)
{
    char cmd[160];
    edr__drops_t now = r->drops;
    uint64_t acked = edr__producer_events_acked(r->p);
    if (crash) {
        snprintf(cmd, sizeof(cmd), "cp -a '%s/spool' '%s/crash'", r->dir, r->dir);
        assert_int_equal(system(cmd), 0);
    }
    edr__producer_set_drain(r->p, 200000000ull);
    edr__producer_spool_inflight(r->p);
    if (!crash)
        acked = edr__producer_events_acked(r->p);
    edr__producer_destroy(r->p);
    r->p = NULL;
    edr_spool_close(r->sp);
    if (crash)
        r->drops = now;
    r->acked_before += acked;
    rig_spool_open(r, crash ? "crash" : "spool");
}

/* The next batch of n events as a frame (valid until the next call); with
 * health, its last event is a sensor health report, which r->sent does not
 * count (the sensor's count of events made does not either). */
static void next_frame_of(rig_t *r, size_t n, int health, const uint8_t **fr, size_t *fl)
{
    edr_arena_reset(&r->arena);
    Edr__V1__EventBatch *b = edr_synth_next_batch(r->syn, 0, n, &r->arena);
    assert_non_null(b);
    assert_int_equal(b->n_events, n);
    Edr__V1__SensorHealth sh;
    if (health) {
        edr__v1__sensor_health__init(&sh);
        Edr__V1__Event *e = b->events[n - 1];
        e->body_case = EDR__V1__EVENT__BODY_SENSOR_HEALTH;
        e->sensor_health = &sh;
    }
    if (!r->first_seq)
        r->first_seq = b->seq;
    assert_int_equal(edr_frame_encode(r->enc, b, 0, fr, fl), 0);
    r->sent += n - (health ? 1 : 0);
}

static void next_frame(rig_t *r, size_t n, const uint8_t **fr, size_t *fl)
{
    next_frame_of(r, n, 0, fr, fl);
}

/* A batch of n events appended to the spool, as an earlier run left it. */
static size_t spool_batch(rig_t *r, size_t n)
{
    const uint8_t *fr;
    size_t fl;
    next_frame(r, n, &fr, &fl);
    assert_int_equal(edr_spool_append(r->sp, fr, fl), 0);
    return fl;
}

/* A batch of n events handed to the producer. */
static void send_batch(rig_t *r, size_t n)
{
    const uint8_t *fr;
    size_t fl;
    next_frame(r, n, &fr, &fl);
    assert_int_equal(edr__producer_send(r->p, r->host, fr, fl, n), 0);
}

static void set_broker(rig_t *r, int up)
{
    rd_kafka_mock_cluster_t *m = edr_kafka_cluster_mock(r->cl);
    if (up)
        rd_kafka_mock_broker_set_up(m, 1);
    else
        rd_kafka_mock_broker_set_down(m, 1);
}

static void tick(rig_t *r)
{
    edr__producer_tick(r->p, edr__mono_ns());
}

/* Ticks until the producer has nothing in flight, held or spooled. */
static int run_idle(rig_t *r, double timeout_s)
{
    double t0 = st_now();
    while (st_now() - t0 < timeout_s) {
        tick(r);
        if (edr__producer_idle(r->p))
            return 1;
        usleep(10000);
    }
    return 0;
}

static uint64_t drop_count(const edr__drops_t *d, const char *source, const char *reason)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->d[i].source, source) && !strcmp(d->d[i].reason, reason))
            return d->d[i].count;
    return 0;
}

/* What the topic holds: distinct batches and their events, and batches that
 * came after a later one of the host (per-host order broken). */
typedef struct {
    uint64_t first_seq;
    uint8_t seen[MAX_SEQ];
    uint64_t max_seq;
    uint64_t events, frames, dups, order_errors;
    uint64_t want;
} tally_t;

static int on_batch(void *ud, const Edr__V1__EventBatch *b)
{
    tally_t *t = ud;
    assert_true(b->seq >= t->first_seq && b->seq - t->first_seq < MAX_SEQ);
    uint8_t *seen = &t->seen[b->seq - t->first_seq];
    if (*seen) {
        t->dups++;
    } else {
        *seen = 1;
        if (b->seq < t->max_seq)
            t->order_errors++;
        t->events += b->n_events;
        t->frames++;
    }
    if (b->seq > t->max_seq)
        t->max_seq = b->seq;
    return t->events >= t->want;
}

/* Reads the topic's one partition from its start (assigned, no group join:
 * faster) until want events arrived and 0.3 s passed without a message. */
static void consume(rig_t *r, tally_t *t, uint64_t want)
{
    memset(t, 0, sizeof(*t));
    t->first_seq = r->first_seq;
    t->want = want;
    char err[512], topic[256];
    edr_topic_name(r->cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    rd_kafka_t *c = edr_kafka_consumer_new(r->cfg, edr_kafka_cluster_bootstraps(r->cl),
                                           "test-producer", NULL, err, sizeof(err));
    if (!c)
        fail_msg("consumer: %s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int complete = 0;
    double t0 = st_now(), last = t0;
    while (st_now() - t0 < 20 && !(complete && st_now() - last > 0.3)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
        if (!m)
            continue;
        if (!m->err) {
            Edr__V1__EventBatch *b;
            last = st_now();
            assert_int_equal(edr_frame_decode(r->dec, m->payload, m->len, &b), 0);
            complete = on_batch(t, b);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(c);
}

/*
 * The spool is at its bound while it is replayed: frames from its head are
 * in flight to Kafka when new frames push them out of the spool. Kafka then
 * acknowledges them. They were delivered, so they are not lost: before,
 * the bound counted each as "spool/overflow" and the acknowledgement as
 * delivered, and delivered + dropped exceeded what was sent.
 */
static void test_overflow_in_flight_counted_once(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 256 << 10, NULL);
    /* an earlier run's frames: 300 batches of 5 events; the first replay
     * reads 256 of them (its window) and the spool stays in SPOOLING */
    size_t fl = 0;
    for (int i = 0; i < 300; i++)
        fl = spool_batch(&r, 5);
    assert_true(300 * fl < (200u << 10)); /* all of them fit in the spool */
    edr_spool_pos_t tail0 = edr_spool_tail(r.sp);
    rig_producer(&r, 5000000000ull);
    tick(&r); /* replays 256: in flight, their reports not served yet */
    edr__producer_stats_t ps;
    edr__producer_get_stats(r.p, &ps);
    assert_true(ps.outq >= 256);
    assert_int_equal(ps.spooling, 1);
    /* new frames while spooling push every frame of the earlier run out */
    int n_new = 0;
    while (edr_spool_pos_cmp(edr_spool_head(r.sp), tail0) < 0 && n_new < 2000) {
        send_batch(&r, 5);
        n_new++;
    }
    assert_true(edr_spool_pos_cmp(edr_spool_head(r.sp), tail0) >= 0);
    assert_true(run_idle(&r, 20));
    uint64_t acked = edr__producer_events_acked(r.p);
    uint64_t overflow = drop_count(&r.drops, "spool", "overflow");
    fprintf(stderr,
            "in-flight overflow: %" PRIu64 " events sent, %" PRIu64 " acknowledged, %" PRIu64
            " counted as overflow (%d new frames)\n",
            r.sent, acked, overflow, n_new);
    tally_t t;
    consume(&r, &t, acked);
    /* every event once: delivered or dropped, never both */
    assert_int_equal(acked + r.drops.total, r.sent);
    assert_int_equal(t.events, acked);
    assert_int_equal(t.order_errors, 0);
    /* the 256 frames in flight were delivered; the 44 after them were
     * dropped by the bound before they were read, and counted */
    for (int i = 0; i < 256; i++)
        assert_true(t.seen[i]);
    for (int i = 256; i < 300; i++)
        assert_false(t.seen[i]);
    assert_true(overflow >= 44 * 5);
    rig_close(&r);
}

/*
 * A spooled frame Kafka refuses for good (here larger than the client's
 * message.max.bytes) sits behind a frame still waiting for its
 * acknowledgement when an outage restarts the replay: it is counted once,
 * not again at every replay.
 */
static void test_refused_replay_counted_once(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 64 << 20, "20000");
    spool_batch(&r, 20);
    size_t big = spool_batch(&r, 3000);
    assert_true(big > 20000);
    spool_batch(&r, 20);
    set_broker(&r, 0);
    rig_producer(&r, 200000000ull); /* 200 ms without an acknowledgement is an outage */
    /* the first and last sent (no broker: they wait), the big one refused
     * (counted once the first is settled: P7) */
    double t0 = st_now();
    edr__producer_stats_t ps = {0};
    while (ps.frames_replayed < 2 && st_now() - t0 < 5) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        usleep(20000);
    }
    assert_int_equal(ps.frames_replayed, 2);
    /* outages restart the replay from the spool's head: two of them */
    t0 = st_now();
    while (st_now() - t0 < 10) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        if (ps.outages >= 2)
            break;
        usleep(20000);
    }
    assert_true(ps.outages >= 2);
    set_broker(&r, 1);
    assert_true(run_idle(&r, 20));
    uint64_t acked = edr__producer_events_acked(r.p);
    fprintf(stderr, "refused: %" PRIu64 " outages, %" PRIu64 " events counted as refused, %" PRIu64
                    " acknowledged\n",
            ps.outages, drop_count(&r.drops, "kafka", "refused"), acked);
    assert_int_equal(drop_count(&r.drops, "kafka", "refused"), 3000);
    assert_int_equal(acked, 40);
    assert_int_equal(acked + r.drops.total, r.sent);
    tally_t t;
    consume(&r, &t, 40);
    assert_int_equal(t.events, 40);
    assert_int_equal(t.order_errors, 0);
    rig_close(&r);
}

/*
 * Delivery reports of frames sent directly that come only after the
 * outage's drain gave up on them: frames sent meanwhile must not overtake
 * them. Before, the late failures were appended to the spool behind the
 * newer frames and reached Kafka after them.
 */
static void test_late_reports_keep_order(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 64 << 20, NULL);
    set_broker(&r, 0);
    rig_producer(&r, 100000000ull);
    edr__producer_set_drain(r.p, 0); /* every report of the purge comes after the drain */
    for (int i = 0; i < 5; i++)
        send_batch(&r, 10); /* direct, waiting for the broker */
    double t0 = st_now();
    edr__producer_stats_t ps = {0};
    while (st_now() - t0 < 10) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        if (ps.outages >= 1)
            break;
        usleep(20000);
    }
    assert_true(ps.outages >= 1);
    for (int i = 0; i < 5; i++)
        send_batch(&r, 10); /* newer: behind the five */
    set_broker(&r, 1);
    assert_true(run_idle(&r, 20));
    uint64_t acked = edr__producer_events_acked(r.p);
    edr__producer_get_stats(r.p, &ps);
    tally_t t;
    consume(&r, &t, 100);
    fprintf(stderr, "late reports: %" PRIu64 " outages, %" PRIu64 " events acknowledged, %" PRIu64
                    " batches out of order\n",
            ps.outages, acked, t.order_errors);
    assert_int_equal(t.events, 100);
    assert_int_equal(t.order_errors, 0);
    assert_int_equal(acked, 100);
    assert_int_equal(r.drops.total, 0);
    rig_close(&r);
}

/*
 * The sensor stops while frames are held behind direct frames not reported
 * back yet: everything ends up in the spool, in send order, for the next
 * run; nothing is counted as lost.
 */
static void test_shutdown_spools_held_in_order(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 64 << 20, NULL);
    set_broker(&r, 0);
    rig_producer(&r, 100000000ull);
    edr__producer_set_drain(r.p, 0);
    for (int i = 0; i < 5; i++)
        send_batch(&r, 10);
    double t0 = st_now();
    edr__producer_stats_t ps = {0};
    while (st_now() - t0 < 10) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        if (ps.outages >= 1)
            break;
        usleep(20000);
    }
    assert_true(ps.outages >= 1);
    for (int i = 0; i < 5; i++)
        send_batch(&r, 10);
    edr__producer_destroy(r.p); /* the stop: no tick in between */
    r.p = NULL;
    assert_int_equal(r.drops.total, 0);
    edr_spool_pos_t pos = edr_spool_head(r.sp), next;
    const uint8_t *fr;
    size_t fl;
    uint64_t n = 0, prev = 0;
    while (edr_spool_read(r.sp, &pos, &fr, &fl, &next) == 1) {
        Edr__V1__EventBatch *b;
        assert_int_equal(edr_frame_decode(r.dec, fr, fl, &b), 0);
        if (b->seq <= prev)
            fail_msg("spooled batch seq %" PRIu64 " after %" PRIu64, (uint64_t)b->seq, prev);
        prev = b->seq;
        n++;
        pos = next;
    }
    assert_int_equal(n, 10);
    rig_close(&r);
}

/*
 * The spool holds [A, BIG, C]; BIG is larger than the client's
 * message.max.bytes. Kafka is down, so A is still unacknowledged when BIG
 * is refused and the sensor stops (crash: is killed). The next run replays
 * the spool from A: BIG is refused again. Over both runs its 3000 events
 * must be counted once: before, each run counted them (6000 after two).
 */
static void refused_across_restart(int crash)
{
    rig_t r;
    rig_open(&r, 64 << 20, "20000");
    spool_batch(&r, 20);
    size_t big = spool_batch(&r, 3000);
    assert_true(big > 20000);
    spool_batch(&r, 20);
    set_broker(&r, 0);
    rig_producer(&r, 5000000000ull);
    /* A and C go to librdkafka (no broker: they wait), BIG, read between
     * them, is refused */
    edr__producer_stats_t ps = {0};
    double t0 = st_now();
    while (st_now() - t0 < 5) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        if (ps.frames_replayed >= 2)
            break;
        usleep(20000);
    }
    assert_int_equal(ps.frames_replayed, 2);
    uint64_t refused1 = drop_count(&r.drops, "kafka", "refused");
    rig_restart(&r, crash);
    set_broker(&r, 1);
    rig_producer(&r, 5000000000ull);
    assert_true(run_idle(&r, 20));
    uint64_t acked = r.acked_before + edr__producer_events_acked(r.p);
    uint64_t refused = drop_count(&r.drops, "kafka", "refused");
    fprintf(stderr,
            "refused across a %s: %" PRIu64 " events counted as refused in the first run, %" PRIu64
            " in both (3000 made), %" PRIu64 " acknowledged, %" PRIu64 " dropped, %" PRIu64
            " made\n",
            crash ? "crash" : "stop", refused1, refused, acked, r.drops.total, r.sent);
    assert_int_equal(refused, 3000);
    assert_int_equal(acked, 40);
    assert_int_equal(acked + r.drops.total, r.sent);
    tally_t t;
    consume(&r, &t, 40);
    assert_int_equal(t.events, 40);
    assert_int_equal(t.order_errors, 0);
    rig_close(&r);
}

static void test_refused_counted_once_across_stop(void **state)
{
    (void)state;
    refused_across_restart(0);
}

static void test_refused_counted_once_across_crash(void **state)
{
    (void)state;
    refused_across_restart(1);
}

/*
 * The spool holds [A, BIG]; Kafka acknowledges A and refuses BIG, both are
 * settled and counted, and the sensor is killed before the spool's head
 * would be written by its periodic sync (here once a minute). The next run
 * must not replay BIG and count it again: the head is on disk once a loss
 * it moved over is counted.
 */
static void test_refused_settled_not_counted_after_crash(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 64 << 20, "20000");
    edr_spool_close(r.sp);
    r.spool_sync_ns = 60000000000ull;
    rig_spool_open(&r, "spool");
    spool_batch(&r, 20);
    size_t big = spool_batch(&r, 3000);
    assert_true(big > 20000);
    rig_producer(&r, 5000000000ull);
    assert_true(run_idle(&r, 20));
    assert_int_equal(drop_count(&r.drops, "kafka", "refused"), 3000);
    assert_int_equal(edr__producer_events_acked(r.p), 20);
    rig_restart(&r, 1);
    rig_producer(&r, 5000000000ull);
    assert_true(run_idle(&r, 20));
    uint64_t acked = r.acked_before + edr__producer_events_acked(r.p);
    fprintf(stderr,
            "refused, settled, then a crash: %" PRIu64 " events counted as refused (3000 made), "
            "%" PRIu64 " acknowledged (20 made)\n",
            drop_count(&r.drops, "kafka", "refused"), acked);
    assert_int_equal(drop_count(&r.drops, "kafka", "refused"), 3000);
    assert_int_equal(acked, 20);
    assert_int_equal(acked + r.drops.total, r.sent);
    rig_close(&r);
}

/*
 * Frames held in memory behind direct frames not reported back yet (HOLD)
 * reach the hold's limit (32 MiB; lowered here) before those reports come:
 * the held frames are spooled then, and the direct frames whose failures
 * are reported after that are spooled behind them. They are out of
 * per-host order, said in frames_reordered, and not lost: every event is
 * delivered once.
 */
static void test_hold_limit_spools_late_failures_behind(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 64 << 20, NULL);
    set_broker(&r, 0);
    rig_producer(&r, 100000000ull);
    edr__producer_set_drain(r.p, 0); /* the purge's reports come after the drain */
    for (int i = 0; i < 5; i++)
        send_batch(&r, 10); /* direct, waiting for the broker */
    double t0 = st_now();
    edr__producer_stats_t ps = {0};
    while (st_now() - t0 < 10) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        if (ps.outages >= 1)
            break;
        usleep(20000);
    }
    assert_true(ps.outages >= 1);
    /* no tick from here until the five newer frames are in: no report is
     * served meanwhile. Two are held, the third passes the limit: all
     * three are spooled, then the last two */
    for (int i = 0; i < 5; i++) {
        const uint8_t *fr;
        size_t fl;
        next_frame(&r, 10, &fr, &fl);
        if (i == 0)
            edr__producer_set_hold_max(r.p, 2 * fl + fl / 2);
        assert_int_equal(edr__producer_send(r.p, r.host, fr, fl, 10), 0);
    }
    edr__producer_get_stats(r.p, &ps);
    assert_int_equal(ps.frames_spooled, 5);
    assert_int_equal(ps.frames_reordered, 0);
    /* the five direct frames' failures come now: spooled behind the newer */
    t0 = st_now();
    while (ps.frames_reordered < 5 && st_now() - t0 < 10) {
        tick(&r);
        edr__producer_get_stats(r.p, &ps);
        usleep(20000);
    }
    assert_int_equal(ps.frames_reordered, 5);
    assert_int_equal(ps.frames_spooled, 10);
    set_broker(&r, 1);
    assert_true(run_idle(&r, 20));
    uint64_t acked = edr__producer_events_acked(r.p);
    tally_t t;
    consume(&r, &t, 100);
    fprintf(stderr,
            "hold limit: %" PRIu64 " frames reordered, %" PRIu64 " events acknowledged, %" PRIu64
            " batches out of order, %" PRIu64 " duplicates\n",
            ps.frames_reordered, acked, t.order_errors, t.dups);
    assert_int_equal(t.events, 100);
    assert_int_equal(t.order_errors, 5);
    assert_int_equal(acked, 100);
    assert_int_equal(r.drops.total, 0);
    rig_close(&r);
}

/*
 * A lost frame counts its events but sensor health reports, whichever way
 * it is lost (the spool's own drops, and the count of events made, leave
 * them out: each report repeats the counters of the one before). Here a
 * direct frame and a replayed one, each of 3000 events with one health
 * report, are refused: 2 x 2999. Before, both counted 3000.
 */
static void test_refused_counts_no_health_reports(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 64 << 20, "20000");
    const uint8_t *fr;
    size_t fl;
    spool_batch(&r, 20);
    next_frame_of(&r, 3000, 1, &fr, &fl);
    assert_true(fl > 20000);
    assert_int_equal(edr_spool_append(r.sp, fr, fl), 0);
    rig_producer(&r, 5000000000ull);
    assert_true(run_idle(&r, 20)); /* the spool replayed: the first acknowledged */
    next_frame_of(&r, 3000, 1, &fr, &fl);
    assert_int_equal(edr__producer_send(r.p, r.host, fr, fl, 3000), 0);
    assert_true(run_idle(&r, 20));
    uint64_t acked = edr__producer_events_acked(r.p);
    fprintf(stderr, "refused with health reports: %" PRIu64 " events counted as refused (2 x 2999 "
                    "made), %" PRIu64 " acknowledged\n",
            drop_count(&r.drops, "kafka", "refused"), acked);
    assert_int_equal(drop_count(&r.drops, "kafka", "refused"), 2 * 2999);
    assert_int_equal(acked, 20);
    assert_int_equal(acked + r.drops.total, r.sent);
    rig_close(&r);
}

int main(void)
{
    edr_log_init("test_producer", EDR_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_in_flight_counted_once),
        cmocka_unit_test(test_refused_replay_counted_once),
        cmocka_unit_test(test_late_reports_keep_order),
        cmocka_unit_test(test_shutdown_spools_held_in_order),
        cmocka_unit_test(test_refused_counted_once_across_stop),
        cmocka_unit_test(test_refused_counted_once_across_crash),
        cmocka_unit_test(test_refused_settled_not_counted_after_crash),
        cmocka_unit_test(test_hold_limit_spools_late_failures_behind),
        cmocka_unit_test(test_refused_counts_no_health_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
