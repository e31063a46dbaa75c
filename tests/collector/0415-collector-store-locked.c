/* A collector whose shard another process holds (a second collector on the
 * store, an edr import) waits for the lock, saying so, and a SIGTERM during
 * that wait stops it at once with exit 0 (it waited a minute a shard, its
 * SIGTERM unheard, then exited 1: review-1206n-coll 3, review-1206o 8). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#define HOSTS  2
#define EVENTS 50

CU_ONE_COLLECTOR_TEST

static void test_stop_while_shard_locked(void **state)
{
    (void)state;
    h_start(&h, 1, 1, HOSTS);
    cu_log_new(col_log, "0415");
    h_produce(&h, 1, EVENTS);
    char err[512];
    edr_store_writer_t *holder = edr_store_writer_open(h.store, 0, NULL, err, sizeof(err));
    assert_non_null(holder);
    pid = cu_collector(&h, h.store, "g0415", 0, NULL, col_log);
    assert_true(cu_log_wait(col_log, "(waiting)", 30) >= 0);
    double t0 = h_now();
    int rc = cu_stop(pid, 10);
    double took = h_now() - t0;
    pid = -1;
    fprintf(stderr, "stopped %.2f s after SIGTERM, exit %d\n", took, rc);
    assert_int_equal(rc, 0);
    assert_true(took < 5);
    assert_int_equal(cu_log_count(col_log, "cannot open its store shard"), 0);
    edr_store_writer_destroy(holder);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stop_while_shard_locked, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
