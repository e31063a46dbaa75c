/* Start-up conditions of a collector's shards.
 * - A collector whose shard another process holds (a second collector on
 *   the store, an edr import) waits for the lock, saying so, and a SIGTERM
 *   during that wait stops it at once with exit 0 (it waited a minute a
 *   shard, its SIGTERM unheard, then exited 1: review-1206n-coll 3,
 *   review-1206o 8).
 * - Assigned a partition above the 1,024 a store has shards for, it opens
 *   no shard, names the limit and exits 1 (with a topic of 1,100
 *   partitions it opened 1,024 shards first and filled the disk:
 *   review-1206n-coll 2).
 * - A member of a group left without a partition says it waits for one,
 *   every 10 s, and logs no "0 events/s" progress lines (it said nothing
 *   for 30-45 s, and an idle collector logged "0 events/s" every 10 s for
 *   ever: review-1206n-coll 8, 10). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

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

static void test_partition_out_of_range(void **state)
{
    (void)state;
    h_start(&h, 1, 1030, HOSTS);
    cu_log_new(col_log, "0415r");
    pid = cu_collector(&h, h.store, NULL, 0, NULL, col_log); /* --assign-all */
    int rc = h_wait(pid, 60);
    pid = -1;
    char *log = cu_log_read(col_log);
    fprintf(stderr, "exit %d\n%s", rc, log ? log : "");
    free(log);
    assert_int_equal(rc, 1);
    assert_int_equal(cu_log_count(col_log, "partition 1024 out of range: a collector takes "
                                           "partitions 0-1023"),
                     1);
    DIR *d = opendir(h.store);
    assert_non_null(d);
    struct dirent *de;
    int shards = 0;
    while ((de = readdir(d)))
        shards += !strncmp(de->d_name, "shard-", 6);
    closedir(d);
    assert_int_equal(shards, 0);
    passed = 1;
}

static void test_member_without_partition(void **state)
{
    (void)state;
    char log_b[96];
    h_start(&h, 1, 1, HOSTS);
    cu_log_new(col_log, "0415a");
    cu_log_new(log_b, "0415b");
    h_produce(&h, 1, EVENTS);
    pid = cu_collector(&h, h.store, "g0415i", 0, NULL, col_log);
    assert_true(cu_wait_blocks(h.store, HOSTS, 30) >= 0);
    pid_t b = cu_collector(&h, h.store, "g0415i", 0, NULL, log_b);
    double waited = cu_log_wait(log_b, "holding no partition of", 30);
    int b_progress = cu_log_count(log_b, "events/s");
    int rc = cu_stop(b, 10);
    fprintf(stderr, "the second member said it waits after %.1f s\n", waited);
    assert_true(waited >= 0);
    assert_int_equal(b_progress, 0);
    assert_int_equal(rc, 0);
    if (getenv("EDR_TEST_KEEP_LOGS") == NULL) unlink(log_b);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stop_while_shard_locked, teardown),
        cmocka_unit_test_teardown(test_partition_out_of_range, teardown),
        cmocka_unit_test_teardown(test_member_without_partition, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
