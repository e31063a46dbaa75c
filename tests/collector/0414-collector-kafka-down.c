/* A collector that loses its cluster says so in its metrics and its log, not only in warnings:
 * edr_collector_kafka_up and edr_collector_kafka_brokers_up fall to 0 while the only broker is
 * down and come back when it is up again; everything produced before, during and after the
 * outage is stored once. */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#define HOSTS  6
#define PARTS  2
#define EVENTS 50

CU_ONE_COLLECTOR_TEST

/* Waits up to timeout seconds for series to read want; returns the last value read. */
static double wait_metric(int port, const char *series, double want, double timeout)
{
    double t0 = h_now(), v = NAN;
    while (h_now() - t0 < timeout) {
        v = cu_metric_now(port, series);
        if (v == want)
            break;
    }
    return v;
}

static void test_kafka_down_metrics(void **state)
{
    (void)state;
    h_start(&h, 1, PARTS, HOSTS);
    cu_log_new(col_log, "0414");
    /* a broker that goes down answers no request in flight: a short socket
     * timeout keeps the outage to seconds (as in 0403) */
    const char *sets[] = {"collector.metrics_listen=127.0.0.1:0",
                          "kafka.properties.socket.timeout.ms=3000", NULL};
    char err[256];
    assert_int_equal(edr_config_set(h.cfg, "kafka.properties.socket.timeout.ms", "3000", "test",
                                    err, sizeof(err)),
                     0);
    h_producer_new(&h);
    h_produce(&h, 1, EVENTS);
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    assert_true(cu_wait_blocks(h.store, h.produced_batches, 30) >= 0);
    double v = wait_metric(port, "edr_collector_kafka_up", 1, 10);
    fprintf(stderr, "connected: kafka_up %.0f\n", v);
    assert_true(v == 1);
    assert_true(cu_metric_now(port, "edr_collector_kafka_brokers_up") >= 1);

    rd_kafka_mock_cluster_t *mc = edr_kafka_cluster_mock(h.cl);
    assert_int_equal(rd_kafka_mock_broker_set_down(mc, 1), 0);
    double t0 = h_now();
    v = wait_metric(port, "edr_collector_kafka_up", 0, 20);
    fprintf(stderr, "broker down: kafka_up %.0f after %.1f s\n", v, h_now() - t0);
    assert_true(v == 0);
    assert_true(cu_metric_now(port, "edr_collector_kafka_brokers_up") == 0);
    assert_true(cu_log_wait(col_log, "kafka: connected to no broker", 5) >= 0);
    /* produced during the outage: queued in the producer until the broker is back */
    h_produce_queued(&h, 1, EVENTS);
    usleep(1500000);
    assert_true(cu_metric_now(port, "edr_collector_kafka_up") == 0);

    assert_int_equal(rd_kafka_mock_broker_set_up(mc, 1), 0);
    t0 = h_now();
    v = wait_metric(port, "edr_collector_kafka_up", 1, 30);
    fprintf(stderr, "broker up: kafka_up %.0f after %.1f s\n", v, h_now() - t0);
    assert_true(v == 1);
    assert_true(cu_log_wait(col_log, "kafka: connected again after", 5) >= 0);
    h_produce(&h, 1, EVENTS);
    assert_int_equal(rd_kafka_flush(h.prod, 30000), 0);
    assert_true(cu_wait_blocks(h.store, h.produced_batches, 60) >= 0);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    assert_int_equal(h_verify(&h, h.store, 3), 0);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kafka_down_metrics, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
