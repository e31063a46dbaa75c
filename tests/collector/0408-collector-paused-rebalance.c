/* A partition paused by the per-host rate limit when the group rebalances, and given back to
 * the same collector, is consumed again: the flooding host's batches are all stored. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#define HOSTS         8
#define PARTS         4
#define FLOOD         0
#define FLOOD_BATCHES 30
#define FLOOD_EVENTS  400 /* 12,000 events at 2,000/s: paused most of 6 s */
#define GROUP         "t0408"

CU_ONE_COLLECTOR_TEST

/* Another member joins the collector's group until it has partitions, then leaves: two
 * rebalances, each revoking the collector's partitions and assigning them again. */
static void join_and_leave(void)
{
    char err[512];
    rd_kafka_t *c = edr_kafka_consumer_new(h.cfg, h.boot, GROUP, NULL, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, h.topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(c, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);
    int got = 0;
    for (double t0 = h_now(); !got && h_now() - t0 < 30;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m)
            rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        if (!rd_kafka_assignment(c, &a) && a) {
            got = a->cnt > 0;
            rd_kafka_topic_partition_list_destroy(a);
        }
    }
    assert_true(got);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

static void test_paused_partition_survives_rebalance(void **state)
{
    (void)state;
    h_start(&h, 1, PARTS, HOSTS);
    cu_log_new(col_log, "0408");
    cu_produce_host(&h, FLOOD, FLOOD_BATCHES, FLOOD_EVENTS);
    for (uint32_t i = 0; i < HOSTS; i++)
        if (i != FLOOD) cu_produce_host(&h, i, 2, 100);
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);

    const char *sets[] = {"collector.host_rate_limit=2000", NULL};
    pid = cu_collector(&h, h.store, GROUP, 0, sets, col_log);
    assert_true(pid > 0);
    /* the flooder is being held back: its partition pauses between batches */
    double t0 = h_now();
    while (cu_host_blocks(&h, h.store, FLOOD) < 2 && h_now() - t0 < 30)
        usleep(100000);
    assert_true(cu_host_blocks(&h, h.store, FLOOD) >= 2);
    join_and_leave();
    join_and_leave();
    uint64_t after = cu_host_blocks(&h, h.store, FLOOD);
    fprintf(stderr, "flooding host: %llu of %d batches stored after the rebalances\n",
            (unsigned long long)after, FLOOD_BATCHES);

    /* everything arrives: nothing stays paused */
    t0 = h_now();
    while (cu_host_blocks(&h, h.store, FLOOD) < FLOOD_BATCHES && h_now() - t0 < 40)
        usleep(200000);
    uint64_t end = cu_host_blocks(&h, h.store, FLOOD);
    if (end != FLOOD_BATCHES)
        fail_msg("flooding host: %llu of %d batches stored 40 s after the rebalances",
                 (unsigned long long)end, FLOOD_BATCHES);
    assert_int_equal(cu_stop(pid, 20), 0);
    pid = -1;
    uint32_t per_host[HOSTS];
    for (uint32_t i = 0; i < HOSTS; i++)
        per_host[i] = i == FLOOD ? FLOOD_BATCHES : 2;
    assert_int_equal(h_verify_hosts(&h, h.store, per_host), 0);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_paused_partition_survives_rebalance, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
