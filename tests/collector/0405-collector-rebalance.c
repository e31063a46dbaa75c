/* Two collectors in one consumer group, each writing the store shards of its partitions: a second
 * one joins mid-ingest, then the first stops; every batch ends up stored exactly once across the
 * shards. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#define HOSTS   64
#define PARTS   8
#define ROUNDS  20
#define EVENTS  200 /* 256 k events, ~1.5 MB per partition */
#define START_B 7   /* round after which the second collector starts */
#define STOP_A  13  /* round after which the first one stops */
#define GROUP   "t0405"

static harness_t h;
static pid_t pid_a = -1, pid_b = -1;
static int passed;
static char log_a[96], log_b[96];

static int teardown(void **state)
{
    (void)state;
    if (pid_a > 0 && cu_running(pid_a)) cu_stop(pid_a, 10);
    if (pid_b > 0 && cu_running(pid_b)) cu_stop(pid_b, 10);
    if (passed && !getenv("EDR_TEST_KEEP_LOGS")) {
        unlink(log_a);
        unlink(log_b);
    } else if (log_a[0]) {
        fprintf(stderr, "collector logs kept in %s and %s\n", log_a, log_b);
    }
    h_stop(&h);
    return 0;
}

static void test_rebalance(void **state)
{
    (void)state;
    h_start(&h, 3, PARTS, HOSTS);
    cu_log_new(log_a, "0405-a");
    cu_log_new(log_b, "0405-b");
    h_produce(&h, 4, EVENTS);
    const char *sets[] = {"collector.commit_interval=20ms", NULL};
    pid_a = cu_collector(&h, h.store, GROUP, 0, sets, log_a);
    double joined = cu_wait_blocks(h.store, 1, 30);
    assert_true(joined >= 0);
    fprintf(stderr, "collector A joined and stored its first batch after %.1f s\n", joined);
    double t0 = h_now();
    for (uint32_t r = 4; r < ROUNDS; r++) {
        usleep(500000);
        h_produce(&h, 1, EVENTS);
        if (r + 1 == START_B) {
            pid_b = cu_collector(&h, h.store, GROUP, 0, sets, log_b);
            fprintf(stderr, "t=%.1f s: collector B started\n", h_now() - t0);
        }
        if (r + 1 == STOP_A) {
            /* B must own some partitions (and A have given them up) before A goes */
            double w = cu_log_wait(log_b, "assigned: resuming", 30);
            assert_true(w >= 0);
            assert_true(cu_log_count(log_a, "revoked") >= 1);
            int a_parts =
                cu_log_count(log_a, "assigned: resuming") - cu_log_count(log_a, "revoked");
            int b_parts = cu_log_count(log_b, "assigned: resuming");
            fprintf(stderr, "t=%.1f s: A owns %d partitions, B %d; stopping A\n", h_now() - t0,
                    a_parts, b_parts);
            assert_true(b_parts >= 1 && b_parts < PARTS);
            assert_int_equal(cu_stop(pid_a, 30), 0);
            pid_a = -1;
            fprintf(stderr, "t=%.1f s: collector A stopped\n", h_now() - t0);
        }
        fprintf(stderr, "t=%.1f s: round %u produced, %llu of %llu batches stored\n", h_now() - t0,
                r + 1, (unsigned long long)cu_stored_blocks(h.store),
                (unsigned long long)h.produced_batches);
    }
    double caught = cu_wait_blocks(h.store, h.produced_batches, 60);
    fprintf(stderr, "caught up %.1f s after the last round\n", caught);
    assert_true(caught >= 0);
    /* B took over every partition after A left */
    assert_true(cu_log_count(log_b, "assigned: resuming") - cu_log_count(log_b, "revoked") ==
                PARTS);
    assert_int_equal(cu_stop(pid_b, 30), 0);
    pid_b = -1;

    /* each stored a part; together exactly what was produced, nothing twice */
    uint64_t ba, da, bb, db;
    cu_stop_summary(log_a, &ba, &da);
    cu_stop_summary(log_b, &bb, &db);
    fprintf(stderr,
            "A stored %llu batches (%llu duplicates skipped), B %llu (%llu); %llu produced\n",
            (unsigned long long)ba, (unsigned long long)da, (unsigned long long)bb,
            (unsigned long long)db, (unsigned long long)h.produced_batches);
    assert_true(ba != UINT64_MAX && bb != UINT64_MAX);
    assert_true(ba > 0 && bb > 0);
    assert_true(ba + bb == h.produced_batches);
    assert_true(da + db == 0); /* the shard's stored offset moved with it: nothing re-stored */

    /* read back through the read API fanning out over the shards */
    char err[512];
    edr_store_t *s = edr_store_open(h.store, NULL, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(edr_store_shards(s), PARTS);
    edr_store_destroy(s);
    assert_int_equal(h_verify(&h, h.store, ROUNDS), 0);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_rebalance, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
