/* The topic's retention deletes batches while the collector is paused (free disk space below
 * collector.min_free_disk): on resuming, the offset it seeks is gone. It says so, counts the
 * batches lost, and stores everything the topic still holds, each batch once.
 * The log restarts below the stored offset (a cluster without persistence restarted, the
 * topic recreated): the collector consumes the new log from its start, says so, and skips
 * none of it (it skipped every message below the old offset, silently).
 * A new store's shard starts at the topic's start as it is at the assignment: batches the
 * topic deletes after it, before they are read, are lost and counted (the first message read
 * set the start, so a burst trimmed by the topic went uncounted: review-1206p-kafka F1). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#define HOSTS      4
#define EVENTS     250
#define FIRST      4          /* rounds stored before the pause */
#define LEFT_MB    40         /* free space the ballast leaves: below MIN_FREE */
#define MIN_FREE   "64MiB"
#define MAX_FLOOD  4000       /* rounds; the embedded broker keeps ~5 MB a partition */

static harness_t h;
static pid_t pid = -1;
static int mounted, passed;
static char col_log[96], ballast[256];

static int teardown(void **state)
{
    (void)state;
    if (ballast[0]) unlink(ballast);
    if (pid > 0 && cu_running(pid)) cu_stop(pid, 10);
    pid = -1;
    if (mounted) umount2(h.store, MNT_DETACH);
    mounted = 0;
    cu_teardown(&h, -1, passed, col_log);
    return 0;
}

static void write_ballast(const char *path, size_t mb)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static char buf[1 << 20];
    memset(buf, 0x5a, sizeof(buf));
    for (size_t i = 0; i < mb; i++) assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
    close(fd);
}

static void watermarks(int64_t *lo, int64_t *hi)
{
    assert_int_equal(rd_kafka_query_watermark_offsets(h.prod, h.topic, 0, lo, hi, 5000), 0);
}

static void test_retention_gap(void **state)
{
    (void)state;
    h_start(&h, 1, 1, HOSTS);
    cu_log_new(col_log, "0409");
    if (cu_mount_store(&h, "size=256m,mode=0700")) {
        passed = 1;
        skip();
    }
    mounted = 1;
    const char *sets[] = {"collector.min_free_disk=" MIN_FREE,
                          "collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    h_produce(&h, FIRST, EVENTS);
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    assert_true(cu_wait_blocks(h.store, FIRST * HOSTS, 30) >= 0);
    int64_t stored_next = FIRST * HOSTS; /* offsets 0..15 are stored */

    /* the disk fills: the collector pauses */
    snprintf(ballast, sizeof(ballast), "%s/ballast", h.store);
    struct statvfs sv;
    assert_int_equal(statvfs(h.store, &sv), 0);
    uint64_t fr = (uint64_t)sv.f_bavail * sv.f_frsize;
    assert_true(fr > (LEFT_MB + 1) << 20);
    write_ballast(ballast, (size_t)(fr >> 20) - LEFT_MB);
    assert_true(cu_log_wait(col_log, "pausing consumption", 10) >= 0);

    /* meanwhile the topic's retention deletes what the collector would read next */
    int64_t lo = 0, hi = 0;
    uint32_t rounds = 0;
    while (rounds < MAX_FLOOD) {
        h_produce(&h, 50, EVENTS);
        rounds += 50;
        assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
        watermarks(&lo, &hi);
        if (lo > stored_next + 10) break;
    }
    fprintf(stderr, "flooded %u rounds: the topic now holds offsets %lld..%lld\n", rounds,
            (long long)lo, (long long)hi - 1);
    assert_true(lo > stored_next);
    assert_int_equal(cu_stored_blocks(h.store), (uint64_t)stored_next);

    /* space comes back: the collector resumes, finds its offset gone, and goes on */
    assert_int_equal(unlink(ballast), 0);
    ballast[0] = 0;
    assert_true(cu_log_wait(col_log, "resuming consumption", 10) >= 0);
    uint64_t want = (uint64_t)stored_next + (uint64_t)(hi - lo);
    double w = cu_wait_blocks(h.store, want, 60);
    if (w < 0)
        fail_msg("%llu of the %llu batches the topic still holds stored after 60 s (stalled)",
                 (unsigned long long)cu_stored_blocks(h.store) - (uint64_t)stored_next,
                 (unsigned long long)(hi - lo));
    fprintf(stderr, "caught up %.1f s after the space came back\n", w);

    /* it says what was lost, in its log and its metrics */
    char needle[160];
    snprintf(needle, sizeof(needle), "partition 0: offsets %lld..%lld are no longer in",
             (long long)stored_next, (long long)lo - 1);
    assert_int_equal(cu_log_count(col_log, needle), 1);
    usleep(1200000);
    char *m = cu_metrics_get(port);
    assert_non_null(m);
    double v = -1;
    assert_int_equal(cu_metric(m, "edr_collector_log_gap_batches_total", &v), 0);
    assert_true(v == (double)(lo - stored_next));
    assert_int_equal(cu_metric(m, "edr_collector_batches_total", &v), 0);
    assert_true(v == (double)want);
    free(m);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    uint64_t batches, dups;
    cu_stop_summary(col_log, &batches, &dups);
    assert_int_equal(batches, want);
    assert_int_equal(dups, 0);
    assert_int_equal(cu_stored_blocks(h.store), want); /* nothing twice */

    /* a new store on the same topic starts at the topic's start: no gap to count */
    char store2[] = "/tmp/edr-test-0409-fresh-XXXXXX", log2[96];
    assert_non_null(mkdtemp(store2));
    cu_log_new(log2, "0409-fresh");
    pid = cu_collector(&h, store2, "t0409-fresh", 0, NULL, log2);
    double w2 = cu_wait_blocks(store2, (uint64_t)(hi - lo), 60);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    snprintf(needle, sizeof(needle), "partition 0: a new store shard starts at offset %lld",
             (long long)lo);
    int fresh_said = cu_log_count(log2, needle), gap_said = cu_log_count(log2, "no longer in");
    nftw(store2, h_rm, 16, FTW_DEPTH | FTW_PHYS);
    if (w2 < 0 || fresh_said != 1 || gap_said != 0)
        fprintf(stderr, "new store's log kept in %s\n", log2);
    else
        unlink(log2);
    assert_true(w2 >= 0);
    assert_int_equal(fresh_said, 1);
    assert_int_equal(gap_said, 0);
    passed = 1;
}

static void test_log_restart(void **state)
{
    (void)state;
    passed = 0;
    h_start(&h, 1, 1, HOSTS);
    cu_log_new(col_log, "0409-restart");
    const char *sets[] = {"collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    h_produce(&h, 6, EVENTS);
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    assert_true(cu_wait_blocks(h.store, 6 * HOSTS, 30) >= 0); /* offsets 0..23 stored */
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;

    /* the cluster restarts empty; the sensors go on (their seqs continue) */
    rd_kafka_destroy(h.prod);
    h.prod = NULL;
    edr_kafka_cluster_destroy(h.cl);
    char err[512];
    h.cl = edr_kafka_cluster_new(h.cfg, 1, 1, err, sizeof(err));
    assert_non_null(h.cl);
    snprintf(h.boot, sizeof(h.boot), "%s", edr_kafka_cluster_bootstraps(h.cl));
    h_producer_new(&h);
    h_produce(&h, 2, EVENTS); /* offsets 0..7 of the new log */
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);

    unlink(col_log); /* a log of this run alone: its metrics port */
    cu_log_new(col_log, "0409-restart");
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    double w = cu_wait_blocks(h.store, 8 * HOSTS, 30);
    if (w < 0)
        fail_msg("%llu of the %d batches stored: the new log was skipped",
                 (unsigned long long)cu_stored_blocks(h.store), 8 * HOSTS);
    assert_int_equal(cu_log_count(col_log, "partition 0: the log of"), 1);
    assert_true(cu_log_count(col_log, "below the stored offset 24") == 1);
    assert_true(port > 0);
    usleep(1200000);
    assert_true(cu_metric_now(port, "edr_collector_log_resets_total") == 1);
    /* more of the new log: stored once each */
    h_produce(&h, 1, EVENTS);
    assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
    assert_true(cu_wait_blocks(h.store, 9 * HOSTS, 30) >= 0);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    assert_int_equal(cu_stored_blocks(h.store), 9 * HOSTS);
    passed = 1;
}

static void test_new_shard_counts_later_deletions(void **state)
{
    (void)state;
    passed = 0;
    h_start(&h, 1, 1, HOSTS);
    cu_log_new(col_log, "0409-new");
    const char *sets[] = {"collector.metrics_listen=127.0.0.1:0", NULL};
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);
    assert_true(cu_log_wait(col_log, "partition 0: a new store shard starts at offset 0", 20) >= 0);
    /* the collector stops reading (SIGSTOP) while a burst overflows the topic */
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int64_t lo = 0, hi = 0;
    uint32_t rounds = 0;
    while (rounds < MAX_FLOOD && lo == 0) {
        h_produce(&h, 50, EVENTS);
        rounds += 50;
        assert_int_equal(rd_kafka_flush(h.prod, 10000), 0);
        watermarks(&lo, &hi);
    }
    assert_int_equal(kill(pid, SIGCONT), 0);
    fprintf(stderr, "flooded %u rounds: the topic holds offsets %lld..%lld\n", rounds,
            (long long)lo, (long long)hi - 1);
    assert_true(lo > 0);
    double w = cu_wait_blocks(h.store, (uint64_t)(hi - lo), 60);
    assert_true(w >= 0);
    char needle[160];
    snprintf(needle, sizeof(needle), "partition 0: offsets 0..%lld are no longer in",
             (long long)lo - 1);
    assert_int_equal(cu_log_count(col_log, needle), 1);
    usleep(1200000);
    assert_true(cu_metric_now(port, "edr_collector_log_gap_batches_total") == (double)lo);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    assert_int_equal(cu_stored_blocks(h.store), (uint64_t)(hi - lo));
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_retention_gap, teardown),
        cmocka_unit_test_teardown(test_log_restart, teardown),
        cmocka_unit_test_teardown(test_new_shard_counts_later_deletions, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
