/* Retention: a collector that joins its group with collector.retention set
 * retires what is past the horizon as soon as its shards are assigned (not an
 * hour later), counts no failure, and goes on storing. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#include <math.h>

#define HOSTS  6
#define EVENTS 100

CU_ONE_COLLECTOR_TEST

static void test_retired_at_assignment(void **state)
{
    (void)state;
    /* the synthetic fleet's telemetry is from 2026-01-01: stored, then kept */
    h_start(&h, 1, 2, HOSTS);
    cu_log_new(col_log, "0411");
    h_produce(&h, 2, EVENTS);
    pid = cu_collector(&h, h.store, "g0411", 0, NULL, col_log);
    assert_true(cu_wait_blocks(h.store, h.produced_batches, 30) >= 0);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    assert_int_equal(cu_stored_blocks(h.store), h.produced_batches);

    /* with a 24 h horizon, everything stored is past it */
    const char *sets[] = {"collector.retention=24h", "collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, "g0411", 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    assert_true(cu_log_wait(col_log, "assigned", 30) >= 0);
    double t0 = h_now();
    while (cu_stored_blocks(h.store) > 0 && h_now() - t0 < 30) usleep(100000);
    fprintf(stderr, "retired %.1f s after the assignment\n", h_now() - t0);
    assert_int_equal(cu_stored_blocks(h.store), 0);
    assert_true(cu_metric_now(port, "edr_collector_retention_errors_total") == 0);
    assert_true(cu_log_count(col_log, "retention: what is older than") >= 1);

    /* it goes on: a new round is stored (retention runs hourly, not per batch) */
    h_produce(&h, 1, EVENTS);
    assert_true(cu_wait_blocks(h.store, HOSTS, 30) >= 0);
    assert_true(cu_running(pid));
    /* its batches are past the horizon too: stored, and said to be deleted
     * at the next hourly run, once (review-1206n-coll 5: such batches went
     * within the hour, nothing said) */
    assert_int_equal(cu_log_count(col_log, "dated before collector.retention"), 1);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_retired_at_assignment, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
