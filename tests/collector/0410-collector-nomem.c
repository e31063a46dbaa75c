/* Memory runs out while the collector decodes a valid batch (its address space limited from
 * outside with prlimit): the batch is not dead-lettered as bad input; the partition waits, says
 * why, and stores it, and everything after it in order, once memory is there again. When memory
 * stays short (30 tries a second apart), the batch goes to the dead-letter topic with reason
 * NOMEM and the partition goes on: one batch too large for the machine does not stop its host's
 * telemetry for ever. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#include <errno.h>
#include <sys/resource.h>

#define HOSTS    2
#define EVENTS   200
#define BIG_MB   40 /* the command line of one process start in the big batch */
#define HEADROOM (24ull << 20)

CU_ONE_COLLECTOR_TEST

/* Produces one batch of host 0 whose first process start has a BIG_MB command line. */
static void produce_big(void)
{
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    Edr__V1__EventBatch *b = edr_synth_next_batch(h.synth, 0, EVENTS, &a);
    assert_non_null(b);
    size_t n = (size_t)BIG_MB << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'A', n);
    big[n] = 0;
    int found = 0;
    for (size_t e = 0; e < b->n_events; e++) {
        if (b->events[e]->body_case != EDR__V1__EVENT__BODY_PROCESS_START) continue;
        h.produced_starts++;
        if (!found++) b->events[e]->process_start->command_line = big;
    }
    assert_true(found);
    const uint8_t *fr;
    size_t fl;
    assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
    fprintf(stderr, "big batch: %zu bytes framed\n", fl);
    h.produced_events += b->n_events;
    h.produced_batches++;
    h_produce_raw(&h, b->sensor->host_id.data, 16, fr, fl);
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    free(big);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
}

static uint64_t vm_size(pid_t p)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmSize: %llu kB", &kb) == 1) break;
    fclose(f);
    return kb << 10;
}

/* Starts the collector, stores two rounds, then limits its address space to
 * HEADROOM above what it maps: too little for the big batch. Returns the
 * metrics port; skips where the limit cannot be set. */
static int start_limited(const char *name, struct rlimit *lim)
{
    passed = 0;
    h_start(&h, 1, 1, HOSTS);
    cu_log_new(col_log, name);
    const char *sets[] = {"collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    h_produce(&h, 2, EVENTS);
    assert_true(cu_wait_blocks(h.store, 2 * HOSTS, 30) >= 0);

    uint64_t vm = vm_size(pid);
    if (vm > (1ull << 40)) {
        fprintf(stderr, "skipped: the collector maps %llu GiB (a sanitizer build, whose allocator "
                        "aborts instead of failing)\n",
                (unsigned long long)(vm >> 30));
        passed = 1;
        skip();
    }
    lim->rlim_cur = vm + HEADROOM;
    lim->rlim_max = RLIM_INFINITY;
    if (prlimit(pid, RLIMIT_AS, lim, NULL) != 0) {
        fprintf(stderr, "skipped: cannot limit the collector's memory (%s)\n", strerror(errno));
        passed = 1;
        skip();
    }
    return port;
}

static void test_nomem_not_deadlettered(void **state)
{
    (void)state;
    struct rlimit lim;
    int port = start_limited("0410", &lim);
    produce_big();
    h_produce(&h, 1, EVENTS); /* behind it: must wait for it */
    double t0 = h_now();
    while (h_now() - t0 < 4 && cu_stored_blocks(h.store) == 2 * HOSTS) usleep(100000);
    assert_true(cu_running(pid));
    /* nothing stored past it (it was not dead-lettered), nothing out of order */
    assert_int_equal(cu_stored_blocks(h.store), 2 * HOSTS);
    assert_true(cu_log_wait(col_log, "out of memory decoding the batch", 20) >= 0);

    /* memory comes back: the batch and those behind it are stored; nothing dead-lettered */
    lim.rlim_cur = RLIM_INFINITY;
    assert_int_equal(prlimit(pid, RLIMIT_AS, &lim, NULL), 0);
    double w = cu_wait_blocks(h.store, h.produced_batches, 30);
    assert_true(w >= 0);
    fprintf(stderr, "stored everything %.1f s after the limit was lifted\n", w);
    usleep(1200000);
    char *m = cu_metrics_get(port);
    assert_non_null(m);
    double v = -1;
    assert_int_equal(cu_metric(m, "edr_collector_nomem_retries_total", &v), 0);
    fprintf(stderr, "%.0f reads of the big batch ran out of memory\n", v);
    assert_true(v >= 1);
    assert_int_equal(cu_metric(m, "edr_collector_deadletters_total", &v), -1); /* no reason yet */
    free(m);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    uint32_t per_host[HOSTS] = {4, 3}; /* host 0 also sent the big batch */
    assert_int_equal(h_verify_hosts(&h, h.store, per_host), 0);
    passed = 1;
}

static void reason_of(const rd_kafka_message_t *m, void *ud)
{
    rd_kafka_headers_t *hd = NULL;
    const void *v = NULL;
    size_t vl = 0;
    if (!rd_kafka_message_headers(m, &hd) && !rd_kafka_header_get_last(hd, "reason", &v, &vl))
        snprintf(ud, 32, "%.*s", (int)vl, (const char *)v);
}

static void test_nomem_gives_up(void **state)
{
    (void)state;
    struct rlimit lim;
    int port = start_limited("0410b", &lim);
    produce_big();
    h_produce(&h, 1, EVENTS); /* behind it: stored once it is given up */
    /* 30 tries a second apart, then the batch is dead-lettered and the round behind it stored */
    double w = cu_wait_blocks(h.store, 3 * HOSTS, 120); /* each try waits 1 s, then fetches */
    assert_true(w >= 0);
    fprintf(stderr, "the batches behind the big one were stored after %.1f s\n", w);
    assert_true(cu_running(pid));
    assert_true(cu_log_wait(col_log, "to the dead-letter topic: NOMEM", 10) >= 0);
    char reason[32] = "";
    assert_int_equal(h_read_deadletters(&h, "t0410b", 1, 1.0, 20, reason_of, reason), 1);
    assert_string_equal(reason, "NOMEM");
    assert_true(cu_metric_now(port, "edr_collector_nomem_retries_total") == 30);
    assert_true(cu_metric_now(port, "edr_collector_deadletters_total{reason=\"NOMEM\"}") == 1);
    lim.rlim_cur = RLIM_INFINITY;
    assert_int_equal(prlimit(pid, RLIMIT_AS, &lim, NULL), 0);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    /* everything but the big batch is in the store, which stays out of it */
    assert_int_equal(cu_stored_blocks(h.store), h.produced_batches - 1);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nomem_not_deadlettered, teardown),
        cmocka_unit_test_teardown(test_nomem_gives_up, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
