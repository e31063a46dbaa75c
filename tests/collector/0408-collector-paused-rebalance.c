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
    assert_int_equal(cu_join_and_leave(&h, GROUP), 0);
    assert_int_equal(cu_join_and_leave(&h, GROUP), 0);
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
