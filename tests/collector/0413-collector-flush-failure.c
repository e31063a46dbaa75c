/* A flush that fails (the store runs without RocksDB's write-ahead log): the
 * collector closes the shard, re-opens it and reads again what the lost
 * memtables held. Every batch is stored once and counted once, and a bad
 * frame read again has its dead letter sent again but counted once. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#define HOSTS  12
#define PARTS  2
#define ROUNDS 4
#define EVENTS 100
#define JUNK   10

CU_ONE_COLLECTOR_TEST

/* The collector with the store's flush-failure hook: its first flush fails. */
static pid_t failflush_collector(const char *group, const char *const *sets)
{
    setenv("EDR_TEST_FAIL_FLUSH", "1", 1);
    setenv("EDR_TEST_COLLECTOR", EDR_FAILFLUSH_COLLECTOR, 1);
    pid_t p = cu_collector(&h, h.store, group, 0, sets, col_log);
    unsetenv("EDR_TEST_COLLECTOR");
    unsetenv("EDR_TEST_FAIL_FLUSH");
    return p;
}

static void test_flush_failure(void **state)
{
    (void)state;
    h_start(&h, 1, PARTS, HOSTS);
    static const char text[] = "not a frame: a dead letter";
    for (int r = 0, j = 0; r < ROUNDS; r++) {
        h_produce(&h, 1, EVENTS);
        for (; j < JUNK * (r + 1) / ROUNDS; j++) {
            uint8_t key[16] = {0xde, 0xad};
            key[15] = (uint8_t)j;
            h_produce_raw(&h, key, 16, text, sizeof(text));
        }
    }
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);

    cu_log_new(col_log, "0413");
    /* the first flush fails: no write-ahead log ever, so it is the timed one
     * that follows the first commits */
    /* the first flush is due 3 s after the shard opens: by then every frame
     * is read and committed, so the lost commits hold bad frames */
    const char *sets[] = {"collector.store_wal_busy=0", "collector.store_flush_interval=3s", NULL};
    pid = failflush_collector("t0413", sets);
    assert_true(pid > 0);
    if (cu_log_wait(col_log, "store shard re-opened", 60) < 0)
        fail_msg("no shard was re-opened after the failed flush");
    assert_true(cu_wait_blocks(h.store, (uint64_t)HOSTS * ROUNDS, 60) >= 0);
    /* each bad frame is in the dead-letter topic, those of the failed
     * shard twice (at least once, as documented) */
    int copies = h_read_deadletters(&h, "t0413-dlq-reader", JUNK, 3, 60, NULL, NULL);
    fprintf(stderr, "%d dead letters read for %d bad frames\n", copies, JUNK);
    assert_true(copies > JUNK); /* some were read again: the test reached the path */
    assert_int_equal(cu_stop(pid, 20), 0);
    pid = -1;
    assert_int_equal(h_verify(&h, h.store, ROUNDS), 0);
    assert_true(cu_log_count(col_log, "flush failed (test)") == 1);
    uint64_t stored, dups;
    cu_stop_summary(col_log, &stored, &dups);
    uint64_t dl = cu_stop_deadletters(col_log);
    fprintf(stderr, "the collector reports %llu batches stored (%llu produced), %llu dead "
                    "letters (%d bad frames)\n",
            (unsigned long long)stored, (unsigned long long)h.produced_batches,
            (unsigned long long)dl, JUNK);
    assert_true(stored == h.produced_batches);
    assert_true(dl == JUNK);
    passed = 1;
}

/* The same with batches parked by the rate limit: a commit stores the other
 * hosts' batches past the first parked one, where the stored offset stays;
 * after the failed flush they are read again, and counted once (review-1206i
 * M2: 64 batches and 12,400 events counted for 42 and 10,200). */
static void test_flush_failure_parked(void **state)
{
    (void)state;
    passed = 0;
    h_start(&h, 1, 1, HOSTS);
    uint32_t per_host[HOSTS];
    cu_produce_host(&h, 0, 20, 400); /* 8,000 events at 1,000/s: parked for seconds */
    per_host[0] = 20;
    for (uint32_t i = 1; i < HOSTS; i++) {
        cu_produce_host(&h, i, 2, EVENTS);
        per_host[i] = 2;
    }
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    cu_log_new(col_log, "0413p");
    const char *sets[] = {"collector.store_wal_busy=0", "collector.store_flush_interval=3s",
                          "collector.host_rate_limit=1000", NULL};
    pid = failflush_collector("t0413p", sets);
    assert_true(pid > 0);
    if (cu_log_wait(col_log, "store shard re-opened", 60) < 0)
        fail_msg("no shard was re-opened after the failed flush");
    assert_true(cu_wait_blocks(h.store, h.produced_batches, 60) >= 0);
    assert_int_equal(cu_stop(pid, 20), 0);
    pid = -1;
    assert_int_equal(h_verify_hosts(&h, h.store, per_host), 0);
    uint64_t stored, dups;
    cu_stop_summary(col_log, &stored, &dups);
    fprintf(stderr, "with parked batches: %llu batches counted, %llu produced\n",
            (unsigned long long)stored, (unsigned long long)h.produced_batches);
    assert_true(stored == h.produced_batches);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_flush_failure, teardown),
        cmocka_unit_test_teardown(test_flush_failure_parked, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
