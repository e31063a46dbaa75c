/* Broker faults during ingest: injected request errors and brokers going down and up; afterwards
 * every (host, seq) is stored exactly once and every bad frame dead-lettered once. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#include <pthread.h>

#define HOSTS             60
#define PARTS             6
#define MIN_ROUNDS        14
#define MAX_ROUNDS        36
#define EVENTS            200 /* at most 430 k events, ~3.5 MB per partition: under the mock's 5 MB */
#define BAD_FRAMES        7   /* one junk message after every other round */
#define GROUP             "t0403"
#define SOCKET_TIMEOUT_MS "3000"

/* Kafka protocol request types (ApiKey) */
enum { API_PRODUCE = 0, API_FETCH = 1, API_HEARTBEAT = 12 };

static harness_t h;
static pid_t pid = -1;
static int passed;
static char col_log[96];
static pthread_t faults_th;
static int faults_started;
static volatile int faults_done;

static int teardown(void **state)
{
    (void)state;
    if (faults_started) pthread_join(faults_th, NULL);
    cu_teardown(&h, pid, passed, col_log);
    return 0;
}

/* EDR_TEST_FAULTS="fetch,produce,group,down1,down3,coord" runs only those (debugging).
 * By default all but "coord": the group coordinator (broker 2) down for longer
 * than the session timeout. With librdkafka 2.0.2's mock cluster the consumer's
 * JoinGroup is then never answered again (re-sent after each request timeout,
 * also on fresh connections), so the collector stays without partitions: a
 * limitation of the embedded cluster, see the report of issue 4. Run it with
 * EDR_TEST_FAULTS=coord (expect a failure). */
static int on(const char *what)
{
    const char *f = getenv("EDR_TEST_FAULTS");
    return f ? strstr(f, what) != NULL : strcmp(what, "coord") != 0;
}

static void sleep_until(double t0, double at)
{
    double d = t0 + at - h_now();
    if (d > 0) usleep((useconds_t)(d * 1e6));
}

/* The fault schedule, run while the main thread produces: one kind of fault at a time. */
static void *faults(void *arg)
{
    rd_kafka_mock_cluster_t *mc = arg;
    double t0 = h_now();
    sleep_until(t0, 0.3);
    if (on("fetch")) {
        fprintf(stderr, "faults: fetch errors (any broker) and on broker 3 with delays\n");
        rd_kafka_mock_push_request_errors(
            mc, API_FETCH, 8, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
        rd_kafka_mock_broker_push_request_error_rtts(
            mc, 3, API_FETCH, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 200,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 500, RD_KAFKA_RESP_ERR__TRANSPORT, 0,
            RD_KAFKA_RESP_ERR_NO_ERROR, 800);
    }
    sleep_until(t0, 0.8);
    if (on("produce")) {
        fprintf(stderr, "faults: produce errors\n");
        rd_kafka_mock_push_request_errors(
            mc, API_PRODUCE, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    }
    sleep_until(t0, 1.3);
    if (on("group")) {
        fprintf(stderr, "faults: heartbeat error (forced rebalance)\n");
        /* only REBALANCE_IN_PROGRESS: NOT_COORDINATOR on Heartbeat/JoinGroup/SyncGroup
         * during a join makes the client re-send its JoinGroup while the mock
         * still holds the first one, and librdkafka 2.0's mock then aborts
         * (rdkafka_mock_cgrp.c: Assertion `!member->resp' failed) */
        rd_kafka_mock_push_request_errors(mc, API_HEARTBEAT, 1,
                                          RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
        /* let the forced rebalance finish (every partition assigned again)
         * before the brokers go down */
        double w = h_now();
        while (cu_log_count(col_log, "assigned: resuming") < 2 * PARTS && h_now() - w < 40)
            usleep(50000);
        fprintf(stderr, "faults: partitions re-assigned %.1f s after the group errors\n",
                h_now() - w);
    }
    t0 = h_now();
    if (on("down1")) {
        fprintf(stderr, "faults: broker 1 (leader of partitions 0 and 3) down\n");
        rd_kafka_mock_broker_set_down(mc, 1);
        sleep_until(t0, 2.5);
        fprintf(stderr, "faults: broker 1 up\n");
        rd_kafka_mock_broker_set_up(mc, 1);
    }
    sleep_until(t0, 3.5);
    if (on("down3")) {
        fprintf(stderr, "faults: broker 3 (leader of partitions 2 and 5) down\n");
        rd_kafka_mock_broker_set_down(mc, 3);
        sleep_until(t0, 6.0);
        fprintf(stderr, "faults: broker 3 up\n");
        rd_kafka_mock_broker_set_up(mc, 3);
    }
    if (on("coord")) {
        sleep_until(t0, 7.0);
        fprintf(stderr, "faults: broker 2 (group coordinator) down for longer than the session\n");
        rd_kafka_mock_broker_set_down(mc, 2);
        sleep_until(t0, 11.0);
        fprintf(stderr, "faults: broker 2 up\n");
        rd_kafka_mock_broker_set_up(mc, 2);
    }
    faults_done = 1;
    return NULL;
}

/* Reads the dead-letter topic without a group join (assigned partitions);
 * returns how many messages it holds, reading until `expect` or a timeout,
 * then a little longer to see any extra. */
static int count_deadletters(int expect)
{
    char topic[128];
    edr_topic_name(h.cfg, EDR_TOPIC_DEADLETTER, topic, sizeof(topic));
    rd_kafka_t *c = h_topic_reader(&h, topic);
    assert_non_null(c);
    int n = 0;
    double t0 = h_now(), last = h_now();
    while (h_now() - t0 < 20 && (n < expect || h_now() - last < 1.0)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (!m->err) {
            const void *v;
            size_t vl;
            rd_kafka_headers_t *hd = NULL;
            if (!rd_kafka_message_headers(m, &hd) &&
                !rd_kafka_header_get_last(hd, "reason", &v, &vl) &&
                ((vl == 15 && !memcmp(v, "FRAME_BAD_MAGIC", 15)) ||
                 (vl == 15 && !memcmp(v, "FRAME_TRUNCATED", 15))))
                n++;
            last = h_now();
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(c);
    return n;
}

static void test_broker_faults(void **state)
{
    (void)state;
    h_start(&h, 3, PARTS, HOSTS);
    cu_log_new(col_log, "0403");
    /* requests in flight to a broker that goes down get no answer from the
     * mock (librdkafka 2.0) until socket.timeout.ms: shorten it so a broker
     * outage costs seconds, not a minute (as for the collector below).
     * One produce request in flight: the mock does not check the sequence
     * numbers of an idempotent producer that is not transactional, so when
     * a request fails with an injected error while the next one to the same
     * partition succeeds, the mock appends the second and the producer takes
     * the first as implicitly acknowledged (a real broker refuses the second,
     * OUT_OF_ORDER_SEQUENCE_NUMBER). That lost 1-4 batches of a round in
     * about 1 run in 25 (seen with NOT_LEADER_FOR_PARTITION,
     * REQUEST_TIMED_OUT, LEADER_NOT_AVAILABLE and
     * NOT_ENOUGH_REPLICAS_AFTER_APPEND), batches that were then not in the
     * log at all: a loss before the collector, which h_verify now tells
     * apart ("not in the log"). */
    char err[256];
    assert_int_equal(edr_config_set(h.cfg, "kafka.properties.socket.timeout.ms", SOCKET_TIMEOUT_MS,
                                    "test", err, sizeof(err)),
                     0);
    assert_int_equal(edr_config_set(h.cfg, "kafka.properties.max.in.flight.requests.per.connection",
                                    "1", "test", err, sizeof(err)),
                     0);
    h_producer_new(&h);
    rd_kafka_mock_cluster_t *mc = edr_kafka_cluster_mock(h.cl);
    for (int p = 0; p < PARTS; p++)
        assert_int_equal(rd_kafka_mock_partition_set_leader(mc, h.topic, p, 1 + p % 3), 0);
    assert_int_equal(rd_kafka_mock_coordinator_set(mc, "group", GROUP, 2), 0);

    h_produce(&h, 2, EVENTS);
    /* EDR_TEST_COLLECTOR_SET / _SET2=key=value add settings (debugging, e.g.
     * kafka.properties.debug=cgrp and log.level=debug) */
    const char *sets[] = {
        "collector.commit_interval=20ms", "kafka.properties.socket.timeout.ms=" SOCKET_TIMEOUT_MS,
        getenv("EDR_TEST_COLLECTOR_SET"), getenv("EDR_TEST_COLLECTOR_SET2"), NULL};
    pid = cu_collector(&h, h.store, GROUP, 0, sets, col_log);
    double joined = cu_wait_blocks(h.store, 1, 30);
    assert_true(joined >= 0);
    fprintf(stderr, "collector joined and stored its first batch after %.1f s\n", joined);

    /* the rest of the ingest, paced, while the fault schedule runs */
    assert_int_equal(pthread_create(&faults_th, NULL, faults, mc), 0);
    faults_started = 1;
    double t0 = h_now();
    static const char junk[] = "a message that is not a frame";
    uint8_t key[16] = {0x42};
    int bad = 0;
    uint32_t r;
    for (r = 2; r < MAX_ROUNDS && (r < MIN_ROUNDS || !faults_done); r++) {
        usleep(600000);
        h_produce(&h, 1, EVENTS);
        if (r % 2 == 0 && bad < BAD_FRAMES) {
            key[1] = (uint8_t)bad++;
            h_produce_raw(&h, key, 16, junk, sizeof(junk));
        }
        fprintf(stderr, "t=%.1f s: round %u produced, %llu of %llu batches stored\n", h_now() - t0,
                r + 1, (unsigned long long)cu_stored_blocks(h.store),
                (unsigned long long)h.produced_batches);
    }
    while (bad < BAD_FRAMES) {
        key[1] = (uint8_t)bad++;
        h_produce_raw(&h, key, 16, junk, sizeof(junk));
    }
    assert_int_equal(rd_kafka_flush(h.prod, 30000), 0);
    pthread_join(faults_th, NULL);
    faults_started = 0;
    assert_true(faults_done);

    double caught = cu_wait_blocks(h.store, h.produced_batches, 60);
    fprintf(stderr, "collector caught up %.1f s after the faults ended (%llu batches; %llu messages "
            "the producer failed to deliver)\n",
            caught, (unsigned long long)cu_stored_blocks(h.store),
            (unsigned long long)h.failed_deliveries);
    if (caught < 0) { /* say which batches are missing before failing */
        cu_stop(pid, 30);
        h_verify(&h, h.store, r);
        fail_msg("the collector did not store every batch within 60 s of the faults' end");
    }
    usleep(500000); /* anything extra (a duplicate) would show now */
    assert_true(cu_running(pid));
    /* the forced rebalance made it give its partitions back (counted before the
     * stop, which revokes them too) and take them again */
    int revokes = cu_log_count(col_log, "revoked");
    fprintf(stderr, "partition revocations seen by the collector: %d\n", revokes);
    if (on("group")) assert_true(revokes >= PARTS);
    assert_int_equal(cu_stop(pid, 30), 0);
    assert_int_equal(h_verify(&h, h.store, r), 0);

    /* the faults did reach the collector: the delayed errors of broker 3 were all
     * consumed by its fetches */
    size_t left = 99;
    if (on("fetch")) {
        assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(mc, 3, API_FETCH, &left), 0);
        assert_int_equal(left, 0);
    }
    assert_int_equal(cu_log_count(col_log, "store commit failed"), 0);
    /* every bad frame was dead-lettered exactly once despite the produce errors */
    assert_int_equal(count_deadletters(BAD_FRAMES), BAD_FRAMES);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_broker_faults, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
