/* Dead letters that Kafka does not take are not lost: while the dead-letter topic has no leader,
 * the bad frames' deliveries time out; the collector reads them again and sends them again
 * once the topic is back, and the good batches around them are stored exactly once. */
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

CU_ONE_COLLECTOR_TEST

static void set_dlq_leader(int32_t broker)
{
    char topic[128];
    edr_topic_name(h.cfg, EDR_TOPIC_DEADLETTER, topic, sizeof(topic));
    rd_kafka_mock_cluster_t *mc = edr_kafka_cluster_mock(h.cl);
    for (int32_t p = 0; p < PARTS; p++)
        rd_kafka_mock_partition_set_leader(mc, topic, p, broker);
}

static void test_deadletter_redelivered(void **state)
{
    (void)state;
    h_start(&h, 1, PARTS, HOSTS);
    set_dlq_leader(-1); /* the dead-letter topic takes nothing */
    h_produce(&h, ROUNDS / 2, EVENTS);
    const char junk[] = "not a frame at all, just some text";
    uint8_t key[16] = {0x42};
    h_produce_raw(&h, key, 16, junk, sizeof(junk));
    key[0] = 0x43;
    h_produce_raw(&h, key, 16, junk, sizeof(junk));
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    h_produce(&h, ROUNDS - ROUNDS / 2, EVENTS);

    cu_log_new(col_log, "0407");
    const char *sets[] = {"kafka.properties.message.timeout.ms=2000", NULL};
    pid = cu_collector(&h, h.store, "t0407", 0, sets, col_log);
    assert_true(pid > 0);
    /* the first delivery times out: said, and the frame is read again */
    if (cu_log_wait(col_log, "dead letter not delivered", 60) < 0)
        fail_msg("the collector never said a dead letter was not delivered");
    set_dlq_leader(1);
    /* each bad frame once: none lost, and no extra copy within 3 s */
    assert_int_equal(h_read_deadletters(&h, "t0407-dlq-reader", 2, 3, 60, NULL, NULL), 2);
    assert_true(cu_wait_blocks(h.store, (uint64_t)HOSTS * ROUNDS, 60) >= 0);
    assert_int_equal(cu_stop(pid, 20), 0);
    pid = -1;
    assert_int_equal(h_verify(&h, h.store, ROUNDS), 0);
    char *log = cu_log_read(col_log);
    assert_non_null(strstr(log, "2 dead letters (0 of them lost: not in the dead-letter topic"));
    free(log);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_deadletter_redelivered, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
