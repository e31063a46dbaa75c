/* A dead letter Kafka does not acknowledge holds back only its own partition: while the
 * dead-letter topic takes nothing, the other partition's batches are stored and committed and
 * the metrics stay current; the partition with the bad frame keeps its stored offset at the
 * frame and is read again when the delivery fails; a stop waits a bounded time, saying for what.
 * In the end every good batch is stored once and the dead letter arrives once with its reason.
 * A flood of bad frames while the topic is down holds at most its partition's share of the
 * dead-letter queue: that partition pauses, the other still sends its own, nothing is lost.
 * Deliveries are held back by a dead-letter topic without a leader and a long message timeout,
 * and fail when the test injects an error: no step races the clock.
 * Dead letters are logged one by one for the first 10 of each minute, then counted (a line for
 * each of 50,000 garbage messages made 5 MB of log: review-1206p-sec L5). */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#define HOSTS 8
#define PARTS 2
#define PA    0 /* the partition with the bad frame */
#define PB    1 /* the partition that must not wait for it */
#define EVENTS 50
#define API_PRODUCE 0
/* message.timeout.ms of the collector's producers: no dead letter times out during a test */
#define DL_TIMEOUT "kafka.properties.message.timeout.ms=60000"

CU_ONE_COLLECTOR_TEST

static uint32_t per_host[HOSTS];
static pid_t pid2 = -1; /* a second collector in the group */

static int teardown2(void **state)
{
    if (pid2 > 0 && cu_running(pid2))
        cu_stop(pid2, 10);
    pid2 = -1;
    return teardown(state);
}

static rd_kafka_mock_cluster_t *mock_cluster(void)
{
    return edr_kafka_cluster_mock(h.cl);
}

static void set_dlq_leader(int32_t broker)
{
    char topic[128];
    edr_topic_name(h.cfg, EDR_TOPIC_DEADLETTER, topic, sizeof(topic));
    rd_kafka_mock_cluster_t *mc = edr_kafka_cluster_mock(h.cl);
    for (int32_t p = 0; p < PARTS; p++)
        assert_int_equal(rd_kafka_mock_partition_set_leader(mc, topic, p, broker), 0);
}

static int32_t host_part(uint32_t i)
{
    uint8_t id[16];
    edr_synth_host_id(h.synth, i, id);
    return cu_partition_of(id, PARTS);
}

/* n batches for every host of partition p. */
static void produce_part(int32_t p, uint32_t n)
{
    for (uint32_t i = 0; i < HOSTS; i++)
        if (host_part(i) == p) {
            cu_produce_host(&h, i, n, EVENTS);
            per_host[i] += n;
        }
}

/* 1 when every host of partition p has all its batches stored. */
static int part_stored(int32_t p)
{
    uint64_t got[HOSTS];
    if (cu_hosts_blocks(&h, h.store, got))
        return 0;
    for (uint32_t i = 0; i < HOSTS; i++)
        if (host_part(i) == p && got[i] != per_host[i])
            return 0;
    return 1;
}

static int64_t high_watermark(int32_t p)
{
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(h.prod, h.topic, p, &lo, &hi, 5000), 0);
    return hi;
}

typedef struct {
    int n;
    char reason[64], part[16], off[32];
    int64_t offs[PARTS][16]; /* source offsets, by source partition */
    int n_offs[PARTS];
} dl_seen_t;

static void header(const rd_kafka_message_t *m, const char *name, char *out, size_t outlen)
{
    rd_kafka_headers_t *hd = NULL;
    const void *v;
    size_t vl;
    out[0] = 0;
    if (!rd_kafka_message_headers(m, &hd) && !rd_kafka_header_get_last(hd, name, &v, &vl))
        snprintf(out, outlen, "%.*s", (int)vl, (const char *)v);
}

static void on_dl(const rd_kafka_message_t *m, void *ud)
{
    dl_seen_t *s = ud;
    s->n++;
    header(m, "reason", s->reason, sizeof(s->reason));
    header(m, "source.partition", s->part, sizeof(s->part));
    header(m, "source.offset", s->off, sizeof(s->off));
    int p = atoi(s->part);
    if (p >= 0 && p < PARTS && s->n_offs[p] < 16)
        s->offs[p][s->n_offs[p]++] = atoll(s->off);
}

/* 1 when the dead letters seen from partition p are offsets first..first+n-1, each once. */
static int dl_offsets_are(const dl_seen_t *s, int32_t p, int64_t first, int n)
{
    if (s->n_offs[p] != n)
        return 0;
    for (int64_t o = first; o < first + n; o++) {
        int k = 0;
        for (int i = 0; i < s->n_offs[p]; i++)
            k += s->offs[p][i] == o;
        if (k != 1)
            return 0;
    }
    return 1;
}

static const char junk[] = "not a frame at all, just some text";

/* n bad frames in a row on partition p; returns the offset of the first. */
static int64_t produce_junk(int32_t p, int n)
{
    uint8_t key[16] = {0};
    while (cu_partition_of(key, PARTS) != p)
        key[0]++;
    int64_t first = high_watermark(p);
    for (int i = 0; i < n; i++)
        h_produce_raw(&h, key, 16, junk, sizeof(junk));
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    return first;
}

/* A fresh cluster whose dead-letter topic takes nothing (no leader). */
static void start_cluster(void)
{
    h_start(&h, 1, PARTS, HOSTS);
    memset(per_host, 0, sizeof(per_host));
    passed = 0;
    int on_a = 0, on_b = 0;
    for (uint32_t i = 0; i < HOSTS; i++)
        host_part(i) == PA ? on_a++ : on_b++;
    assert_true(on_a > 0 && on_b > 0);
    set_dlq_leader(-1);
}

/* Every partition's stored offset (read from its shard) is its high watermark. */
static void assert_offsets_at_end(void)
{
    for (int32_t p = 0; p < PARTS; p++) {
        char err[512];
        int64_t off = -1;
        edr_store_writer_t *w = edr_store_writer_open(h.store, (uint32_t)p, NULL, err, sizeof(err));
        if (!w)
            fail_msg("shard %d: %s", p, err);
        assert_int_equal(edr_store_writer_offset(w, &off), 0);
        edr_store_writer_destroy(w);
        if (off != high_watermark(p))
            fail_msg("partition %d: stored offset %lld, want %lld", p, (long long)off,
                     (long long)high_watermark(p));
    }
}

/* Polls the metrics until `series` has value `want` (they are rebuilt once a second); returns
 * the text then (caller frees), or fails the test after timeout seconds. */
static char *metrics_when(int port, const char *series, double want, double timeout)
{
    double t0 = h_now(), v = NAN;
    for (;;) {
        char *m = cu_metrics_get(port);
        if (m && cu_metric(m, series, &v) == 0 && v == want)
            return m;
        free(m);
        if (h_now() - t0 > timeout)
            fail_msg("metric %s is %g after %.0f s, want %g", series, v, timeout, want);
        usleep(100000);
    }
}

/* A fresh cluster whose dead-letter topic takes nothing; partition A gets good batches, a bad
 * frame (at *bad_off) and good batches, B good batches. Returns the bad frame's reason. */
static const char *start_with_bad_frame(int64_t *bad_off)
{
    start_cluster();
    produce_part(PA, 2);
    produce_part(PB, 2);
    *bad_off = produce_junk(PA, 1);
    produce_part(PA, 2);
    edr_frame_ctx_t *dec = edr_frame_ctx_new(NULL);
    Edr__V1__EventBatch *b;
    const char *reason = edr_err_name(edr_frame_decode(dec, junk, sizeof(junk), &b));
    edr_frame_ctx_destroy(dec);
    return reason;
}

static void test_deadletter_holds_only_its_partition(void **state)
{
    (void)state;
    int64_t bad_off;
    const char *reason = start_with_bad_frame(&bad_off);
    int64_t a_end = high_watermark(PA);

    cu_log_new(col_log, "0412");
    const char *sets[] = {DL_TIMEOUT, "collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, "t0412", 0, sets, col_log);
    assert_true(pid > 0);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    if (cu_log_wait(col_log, "to the dead-letter topic:", 30) < 0)
        fail_msg("the collector never dead-lettered the bad frame");

    /* the dead letter cannot be delivered (no leader): B's new batches are stored anyway */
    produce_part(PB, 3);
    double t0 = h_now();
    while (!part_stored(PB) && h_now() - t0 < 20)
        usleep(50000);
    if (!part_stored(PB))
        fail_msg("partition %d's batches were not stored within 20 s while a dead letter of "
                 "partition %d was undelivered", PB, PA);
    /* committed and published: B has no lag; A's stored offset stays at the bad frame, whose
     * dead letter is counted as unacknowledged */
    char series[64];
    double v = -1;
    snprintf(series, sizeof(series), "edr_collector_lag{partition=\"%d\"}", PB);
    char *m = metrics_when(port, series, 0, 10);
    snprintf(series, sizeof(series), "edr_collector_lag{partition=\"%d\"}", PA);
    assert_int_equal(cu_metric(m, series, &v), 0);
    if (v != (double)(a_end - bad_off))
        fail_msg("partition %d lag %g, want %lld (stored offset held at the bad frame)", PA, v,
                 (long long)(a_end - bad_off));
    assert_int_equal(cu_metric(m, "edr_collector_deadletters_unacked", &v), 0);
    assert_true(v == 1);
    free(m);
    assert_int_equal(cu_log_count(col_log, "dead letter not delivered"), 0); /* still in flight */

    /* the topic comes back but refuses that delivery (an error that is not for good), then
     * answers only with retriable errors: A is read again from the bad frame, which is sent
     * again and stays in flight */
    rd_kafka_resp_err_t errs[1001]; /* retried every 100 ms: in flight for ~100 s */
    errs[0] = RD_KAFKA_RESP_ERR_POLICY_VIOLATION;
    for (int i = 1; i < 1001; i++)
        errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    rd_kafka_mock_push_request_errors_array(mock_cluster(), API_PRODUCE, 1001, errs);
    set_dlq_leader(1);
    if (cu_log_wait(col_log, "dead letter not delivered", 30) < 0)
        fail_msg("the collector never said the dead letter was not delivered");
    t0 = h_now();
    while (cu_log_count(col_log, "to the dead-letter topic:") < 2 && h_now() - t0 < 20)
        usleep(50000);
    assert_int_equal(cu_log_count(col_log, "to the dead-letter topic:"), 2);

    /* a stop while it is in flight waits (a bounded time), saying for what; the topic takes it
     * meanwhile: the dead letter is delivered and the stored offset moves past it */
    kill(pid, SIGTERM);
    if (cu_log_wait(col_log, "stopping: waiting up to", 20) < 0)
        fail_msg("the stop did not say it waits for the dead letter");
    assert_true(cu_log_count(col_log, "not yet acknowledged") >= 1);
    rd_kafka_mock_clear_request_errors(mock_cluster(), API_PRODUCE);
    assert_int_equal(h_wait(pid, 20), 0);
    pid = -1;
    assert_true(cu_log_count(col_log, "stopping: the dead letters were acknowledged") == 1);
    assert_offsets_at_end();

    /* the dead letter arrived once with its reason; every good batch is stored once */
    dl_seen_t seen = {0};
    assert_int_equal(h_read_deadletters(&h, "t0412-dlq-reader", 1, 1, 30, on_dl, &seen), 1);
    assert_string_equal(seen.reason, reason);
    assert_int_equal(atoi(seen.part), PA);
    assert_int_equal(atoll(seen.off), bad_off);
    assert_int_equal(h_verify_hosts(&h, h.store, per_host), 0);
    char *log = cu_log_read(col_log);
    assert_non_null(strstr(log, "1 dead letters (0 of them lost: not in the dead-letter topic"));
    free(log);
    passed = 1;
}

/* A rebalance while a dead letter is in flight waits a bounded time, saying for what; the
 * partition's new owner reads the frame again and the copy still queued is not sent: the dead
 * letter arrives once. */
static void test_deadletter_at_revocation(void **state)
{
    (void)state;
    int64_t bad_off;
    const char *reason = start_with_bad_frame(&bad_off);
    cu_log_new(col_log, "0412b");
    const char *sets[] = {DL_TIMEOUT, NULL};
    pid = cu_collector(&h, h.store, "t0412b", 0, sets, col_log);
    assert_true(pid > 0);
    if (cu_log_wait(col_log, "to the dead-letter topic:", 30) < 0)
        fail_msg("the collector never dead-lettered the bad frame");
    /* a second member: every partition is revoked from the first */
    pid2 = cu_collector(&h, h.store, "t0412b", 0, sets, col_log);
    assert_true(pid2 > 0);
    if (cu_log_wait(col_log, "partitions revoked: waiting up to", 30) < 0)
        fail_msg("the revocation did not say it waits for the dead letter");
    if (cu_log_wait(col_log, "partitions revoked: 1 dead letters not acknowledged", 30) < 0)
        fail_msg("the revocation did not end its wait");
    char want[96];
    snprintf(want, sizeof(want), "partition %d assigned: resuming at stored offset %lld", PA,
             (long long)bad_off);
    if (cu_log_wait(col_log, want, 30) < 0)
        fail_msg("partition %d was not resumed at its bad frame", PA);
    /* its new owner sends the dead letter again; the topic comes back */
    double t0 = h_now();
    while (cu_log_count(col_log, "to the dead-letter topic:") < 2 && h_now() - t0 < 20)
        usleep(50000);
    assert_true(cu_log_count(col_log, "to the dead-letter topic:") >= 2);
    set_dlq_leader(1);
    dl_seen_t seen = {0};
    assert_int_equal(h_read_deadletters(&h, "t0412b-dlq-reader", 1, 2, 60, on_dl, &seen), 1);
    assert_string_equal(seen.reason, reason);
    assert_int_equal(atoll(seen.off), bad_off);
    t0 = h_now();
    while (!(part_stored(PA) && part_stored(PB)) && h_now() - t0 < 30)
        usleep(100000);
    assert_int_equal(cu_stop(pid2, 20), 0);
    pid2 = -1;
    assert_int_equal(cu_stop(pid, 20), 0);
    pid = -1;
    assert_int_equal(h_verify_hosts(&h, h.store, per_host), 0);
    passed = 1;
}

/* A flood of bad frames while the dead-letter topic is down: A's dead letters in flight stop at
 * its share of the dead-letter producer's queue (queue.buffering.max.messages 4 over the 2
 * partitions it owns) and A pauses at the next bad frame; B still finds room for its own dead
 * letter and stores the batches after it. Once the topic is back, every bad frame arrives once,
 * none is lost, and A's batches behind the flood are stored. */
static void test_deadletters_bounded_per_partition(void **state)
{
    (void)state;
    start_cluster();
    produce_part(PA, 1);
    produce_part(PB, 1);
    int64_t a_bad = produce_junk(PA, 5), b_bad = produce_junk(PB, 1);
    produce_part(PA, 1);
    produce_part(PB, 2);
    int64_t a_end = high_watermark(PA);

    cu_log_new(col_log, "0412c");
    const char *sets[] = {DL_TIMEOUT, "kafka.properties.queue.buffering.max.messages=4",
                          "collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, "t0412c", 0, sets, col_log);
    assert_true(pid > 0);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    if (cu_log_wait(col_log, "its share of the dead-letter queue: pausing it", 30) < 0)
        fail_msg("partition %d was not paused at its share of the dead-letter queue", PA);
    double t0 = h_now();
    while (!part_stored(PB) && h_now() - t0 < 20)
        usleep(50000);
    if (!part_stored(PB))
        fail_msg("partition %d's batches after its bad frame were not stored while partition %d "
                 "had its share of dead letters in flight", PB, PA);
    /* 2 of A's and B's 1 in flight; A's stored offset at its first bad frame
     * (the snapshot that first shows 3 in flight may precede the commit of
     * the batches before them: a second at most) */
    char *m = metrics_when(port, "edr_collector_deadletters_unacked", 3, 10);
    free(m);
    char series[64];
    double v = -1;
    snprintf(series, sizeof(series), "edr_collector_lag{partition=\"%d\"}", PA);
    m = metrics_when(port, series, (double)(a_end - a_bad), 10);
    assert_int_equal(cu_metric(m, "edr_collector_deadletters_unacked", &v), 0);
    assert_true(v == 3);
    assert_int_equal(cu_metric(m, "edr_collector_deadletter_holds_total", &v), 0);
    assert_true(v >= 1);
    assert_int_equal(cu_metric(m, "edr_collector_deadletter_lost_total", &v), 0);
    assert_true(v == 0);
    free(m);
    assert_int_equal(cu_log_count(col_log, "to the dead-letter topic:"), 3);
    assert_int_equal(cu_log_count(col_log, "dead letter not delivered"), 0);

    /* the topic comes back: A goes on, 2 at a time */
    set_dlq_leader(1);
    dl_seen_t seen = {0};
    assert_int_equal(h_read_deadletters(&h, "t0412c-dlq-reader", 6, 1, 60, on_dl, &seen), 6);
    if (!dl_offsets_are(&seen, PA, a_bad, 5) || !dl_offsets_are(&seen, PB, b_bad, 1))
        fail_msg("dead letters: %d from partition %d, %d from partition %d, want each bad frame "
                 "once", seen.n_offs[PA], PA, seen.n_offs[PB], PB);
    t0 = h_now();
    while (!(part_stored(PA) && part_stored(PB)) && h_now() - t0 < 30)
        usleep(100000);
    assert_int_equal(cu_stop(pid, 20), 0);
    pid = -1;
    assert_offsets_at_end();
    assert_int_equal(h_verify_hosts(&h, h.store, per_host), 0);
    char *log = cu_log_read(col_log);
    assert_non_null(strstr(log, "6 dead letters (0 of them lost: not in the dead-letter topic"));
    free(log);
    passed = 1;
}

static void test_deadletter_log_bounded(void **state)
{
    (void)state;
    h_start(&h, 1, PARTS, HOSTS);
    const char bad[] = "not a frame";
    for (int i = 0; i < 25; i++) {
        uint8_t key[16] = {0x42, (uint8_t)i};
        h_produce_raw(&h, key, 16, bad, sizeof(bad));
    }
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    cu_log_new(col_log, "0412-log");
    const char *sets[] = {"collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    double t0 = h_now(), n = 0;
    while ((n = cu_metric_now(
                port, "edr_collector_deadletters_total{reason=\"FRAME_TRUNCATED\"}")) < 25 &&
           h_now() - t0 < 30)
        usleep(200000);
    assert_true(n == 25);
    assert_int_equal(h_read_deadletters(&h, "t0412-log-reader", 25, 3, 30, NULL, NULL), 25);
    assert_int_equal(cu_log_count(col_log, "to the dead-letter topic:"), 10);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_deadletter_holds_only_its_partition, teardown),
        cmocka_unit_test_teardown(test_deadletter_at_revocation, teardown2),
        cmocka_unit_test_teardown(test_deadletters_bounded_per_partition, teardown),
        cmocka_unit_test_teardown(test_deadletter_log_bounded, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
