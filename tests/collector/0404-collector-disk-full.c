/* Disk full: on a small tmpfs the collector pauses when free space falls below
 * collector.min_free_disk, says why, and resumes without loss once space is freed. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#define HOSTS      40
#define EVENTS     250
#define MAX_ROUNDS 40
#define SMALL_MB   32 /* tmpfs size while filling */
#define PARTS      4  /* more than the two partitions a scrape asks the backlog of */
#define BIG_MB     160
#define MIN_FREE   "24MiB" /* so the threshold is crossed after ~8 MB of store */

static uint64_t free_bytes(const char *dir)
{
    struct statvfs sv;
    return statvfs(dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
}

/* what the teardown cleans up, also after a failed assertion */
static harness_t h;
static pid_t pid = -1;
static int mounted, passed;
static char col_log[96];

static int setup(void **state)
{
    (void)state;
    pid = -1;
    mounted = passed = 0;
    col_log[0] = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (pid > 0 && cu_running(pid)) cu_stop(pid, 10);
    if (mounted) umount2(h.store, MNT_DETACH);
    mounted = 0;
    cu_teardown(&h, -1, passed, col_log);
    return 0;
}

/* Starts the harness, a small tmpfs as its store (or skips the test) and a
 * collector on it (group NULL: the harness's). */
static void start_small(const char *group, const char *const *sets)
{
    h_start(&h, 1, PARTS, HOSTS);
    cu_log_new(col_log, "0404");
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%dm,mode=0700", SMALL_MB);
    if (cu_mount_store(&h, opts)) {
        passed = 1;
        skip();
    }
    mounted = 1;
    pid = cu_collector(&h, h.store, group, 0, sets, col_log);
}

/* Resizes the store's tmpfs to mb MiB. */
static void remount_mb(unsigned mb)
{
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%um,mode=0700", mb);
    assert_int_equal(mount("tmpfs", h.store, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, opts), 0);
}

/* Frees space: the store's tmpfs grows to BIG_MB. */
static void remount_big(void)
{
    remount_mb(BIG_MB);
}

/* Produces rounds of batches, paced, until the collector says it pauses
 * for want of disk space; the rounds produced. */
static uint32_t fill_until_paused(void)
{
    uint32_t rounds = 0;
    double paused_at = -1;
    while (rounds < MAX_ROUNDS && paused_at < 0) {
        h_produce(&h, 1, EVENTS);
        rounds++;
        for (int i = 0; i < 5 && paused_at < 0; i++) {
            usleep(100000);
            if (cu_log_count(col_log, "pausing consumption")) paused_at = h_now();
        }
        fprintf(stderr, "round %u: %llu batches stored, %llu bytes free on the tmpfs\n", rounds,
                (unsigned long long)cu_stored_blocks(h.store),
                (unsigned long long)free_bytes(h.store));
    }
    assert_true(cu_running(pid));
    if (paused_at < 0)
        fail_msg("the collector never paused in %u rounds (%llu bytes free)", rounds,
                 (unsigned long long)free_bytes(h.store));
    return rounds;
}

/* Produces 6 more rounds while the collector is paused; *s1 and *s2 get
 * the batches stored before and after a wait of wait_us. */
static void more_while_paused(uint32_t *rounds, unsigned wait_us, uint64_t *s1, uint64_t *s2)
{
    h_produce(&h, 6, EVENTS);
    *rounds += 6;
    *s1 = cu_stored_blocks(h.store);
    usleep(wait_us);
    *s2 = cu_stored_blocks(h.store);
}

static void test_disk_full(void **state)
{
    (void)state;
    const char *sets[] = {"collector.min_free_disk=" MIN_FREE,
                          "collector.metrics_listen=127.0.0.1:0", NULL};
    start_small(NULL, sets);
    int port = cu_metrics_port(col_log, 20);
    assert_true(port > 0);

    uint32_t rounds = fill_until_paused();

    /* it says why: in its log and in its metrics */
    char needle[256];
    snprintf(needle, sizeof(needle), "pausing consumption: free disk space on %s is", h.store);
    assert_int_equal(cu_log_count(col_log, needle), 1);
    assert_true(cu_log_count(col_log, "below 25165824"));
    assert_true(cu_metric_now(port, "edr_collector_paused") == 1);
    assert_true(cu_metric_now(port, "edr_collector_pauses_total") >= 1);
    uint64_t first_half = h.produced_batches;

    /* while paused more data arrives: it waits in Kafka, the store does not grow */
    uint64_t s1, s2;
    more_while_paused(&rounds, 1500000, &s1, &s2);
    fprintf(stderr,
            "paused: %llu then %llu batches stored of %llu produced (%llu before the pause)\n",
            (unsigned long long)s1, (unsigned long long)s2, (unsigned long long)h.produced_batches,
            (unsigned long long)first_half);
    assert_true(s1 == s2);
    assert_true(s2 < h.produced_batches);
    /* the lag shows what waits, though paused partitions are not fetched
     * (review-1206f M1: it kept the last fetch's value, 0, all through),
     * in every partition (review-1206n-coll 2: only the first two were
     * asked their backlog) */
    double lag = 0, waiting = (double)(h.produced_batches - s2);
    for (double t = h_now(); lag < waiting && h_now() - t < 6;) {
        lag = 0;
        for (int p = 0; p < PARTS; p++) {
            char series[64];
            snprintf(series, sizeof(series), "edr_collector_lag{partition=\"%d\"}", p);
            lag += cu_metric_now(port, series);
        }
    }
    fprintf(stderr, "lag while paused: %.0f messages (%.0f batches wait)\n", lag, waiting);
    assert_true(lag >= waiting);
    assert_true(cu_running(pid));
    assert_int_equal(cu_log_count(col_log, "resuming consumption"), 0);
    assert_int_equal(cu_log_count(col_log, "store commit failed"), 0); /* paused before ENOSPC */

    /* free space: the collector resumes on its own and stores everything */
    remount_big();
    double t0 = h_now();
    assert_true(cu_log_wait(col_log, "resuming consumption", 10) >= 0);
    assert_true(cu_wait_blocks(h.store, h.produced_batches, 30) >= 0);
    fprintf(stderr, "resumed and caught up %.1f s after the remount\n", h_now() - t0);
    assert_true(cu_metric_now(port, "edr_collector_paused") == 0);
    assert_true(cu_metric_now(port, "edr_collector_batches_total") == (double)h.produced_batches);
    assert_int_equal(cu_stop(pid, 30), 0);
    assert_int_equal(h_verify(&h, h.store, rounds), 0);
    passed = 1;
}

/* A rebalance while the collector is paused for want of disk space stores
 * nothing into the full disk: the partitions given back to it stay paused
 * (review-1206f L4; the consuming loop also leaves a message it is given
 * while paused, so this passes without that pause too); once there is
 * room, it resumes and stores every batch once. */
static void test_pause_survives_rebalance(void **state)
{
    (void)state;
    const char *sets[] = {"collector.min_free_disk=" MIN_FREE, NULL};
    start_small("t0404", sets);
    uint32_t rounds = fill_until_paused();
    /* far below the threshold, so that what closing the shards frees (the
     * space RocksDB preallocates for its files) does not lift the pause:
     * 8 MiB free */
    struct statvfs sv;
    assert_int_equal(statvfs(h.store, &sv), 0);
    uint64_t used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    remount_mb((unsigned)(used >> 20) + 9);
    assert_int_equal(cu_join_and_leave(&h, "t0404"), 0);
    uint64_t s1, s2;
    more_while_paused(&rounds, 2000000, &s1, &s2);
    fprintf(stderr, "after the rebalance: %llu then %llu batches stored of %llu produced\n",
            (unsigned long long)s1, (unsigned long long)s2, (unsigned long long)h.produced_batches);
    assert_true(s1 == s2);
    assert_true(s2 < h.produced_batches);
    assert_int_equal(cu_log_count(col_log, "resuming consumption"), 0);
    assert_int_equal(cu_log_count(col_log, "store commit failed"), 0);
    remount_big();
    assert_true(cu_log_wait(col_log, "resuming consumption", 10) >= 0);
    assert_true(cu_wait_blocks(h.store, h.produced_batches, 30) >= 0);
    assert_int_equal(cu_stop(pid, 30), 0);
    assert_int_equal(h_verify(&h, h.store, rounds), 0);
    passed = 1;
}

/* One frame that is not a frame, from its own key (a dead letter). */
static void produce_junk(uint32_t *junk)
{
    static const char text[] = "not a frame: a dead letter";
    uint8_t key[16] = {0xde, 0xad};
    key[15] = (uint8_t)++*junk;
    h_produce_raw(&h, key, 16, text, sizeof(text));
}

/* The disk really fills (a threshold too low to pause in time): commits fail
 * with ENOSPC, the collector keeps running, says why, and once space is freed
 * re-reads from its stored offsets: nothing lost, nothing twice. wal: the
 * store's shards write RocksDB's write-ahead log throughout (as they do when
 * the collector is not busy) instead of skipping it as at start. */
static void disk_really_full(int wal)
{
    h_start(&h, 1, PARTS, HOSTS);
    cu_log_new(col_log, wal ? "0404-enospc-wal" : "0404-enospc");
    if (cu_mount_store(&h, "size=14m,mode=0700")) {
        passed = 1;
        skip();
    }
    mounted = 1;
    const char *sets[] = {"collector.min_free_disk=64KiB",
                          wal ? "collector.store_wal=true" : "collector.store_wal=false", NULL};
    pid = cu_collector(&h, h.store, NULL, 0, sets, col_log);
    uint32_t rounds = 0, junk = 0;
    int hit = 0;
    while (rounds < MAX_ROUNDS && !hit) {
        h_produce(&h, 1, EVENTS);
        rounds++;
        produce_junk(&junk);
        for (int i = 0; i < 5 && !hit; i++) {
            usleep(100000);
            hit = cu_log_count(col_log, "store commit failed") +
                  cu_log_count(col_log, "pausing consumption");
        }
        fprintf(stderr, "round %u: %llu bytes free on the tmpfs\n", rounds,
                (unsigned long long)free_bytes(h.store));
    }
    if (!hit) fail_msg("neither a failed commit nor a pause in %u rounds", rounds);
    uint32_t more = 4;
    h_produce(&h, more, EVENTS);
    rounds += more;
    produce_junk(&junk);
    usleep(1500000);
    fprintf(stderr, "disk full: %d failed commits, %d pauses logged; %llu of %llu batches stored\n",
            cu_log_count(col_log, "store commit failed"),
            cu_log_count(col_log, "pausing consumption"),
            (unsigned long long)cu_stored_blocks(h.store), (unsigned long long)h.produced_batches);
    assert_true(cu_running(pid)); /* no crash, no exit */

    assert_int_equal(
        mount("tmpfs", h.store, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, "size=160m,mode=0700"),
        0);
    double w = cu_wait_blocks(h.store, h.produced_batches, 40);
    fprintf(stderr, "caught up %.1f s after the remount\n", w);
    assert_true(w >= 0);
    usleep(500000);
    assert_true(cu_running(pid));
    assert_int_equal(cu_stop(pid, 30), 0);
    assert_int_equal(h_verify(&h, h.store, rounds), 0);
    /* it says why, naming the shard, and counts only what it really stored */
    assert_true(cu_log_count(col_log, "No space left on device"));
    uint64_t stored, dups;
    cu_stop_summary(col_log, &stored, &dups);
    fprintf(stderr, "the collector reports %llu batches stored, %llu produced\n",
            (unsigned long long)stored, (unsigned long long)h.produced_batches);
    assert_true(stored == h.produced_batches);
    /* a bad frame read again after a lost commit is sent again, but counted once */
    uint64_t dl = cu_stop_deadletters(col_log);
    fprintf(stderr, "the collector reports %llu dead letters, %u bad frames produced\n",
            (unsigned long long)dl, junk);
    assert_true(dl == junk);
    passed = 1;
}

/* A new store made on a disk with a few MiB free: RocksDB's info LOG beside
 * it failed to write at DB::Open and Debian's RocksDB (assertions on)
 * aborted the collector (exit 134) before it could pause. Now it pauses,
 * says why, and stores everything once space is freed. */
static void test_new_store_nearly_full(void **state)
{
    (void)state;
    h_start(&h, 1, PARTS, HOSTS);
    cu_log_new(col_log, "0404-new");
    if (cu_mount_store(&h, "size=16m,mode=0700")) {
        passed = 1;
        skip();
    }
    mounted = 1;
    char filler[160], store[160];
    snprintf(filler, sizeof(filler), "%s/filler", h.store);
    snprintf(store, sizeof(store), "%s/st", h.store);
    int fd = open(filler, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    uint64_t fb = free_bytes(h.store);
    assert_int_equal(posix_fallocate(fd, 0, (off_t)(fb - (6u << 20))), 0);
    close(fd);
    fprintf(stderr, "%llu bytes free before the collector starts\n",
            (unsigned long long)free_bytes(h.store));
    h_produce(&h, 2, EVENTS);
    const char *sets[] = {"collector.min_free_disk=64KiB", NULL};
    pid = cu_collector(&h, store, NULL, 0, sets, col_log);
    assert_true(pid > 0);
    sleep(3);
    assert_true(cu_running(pid)); /* no abort */
    assert_int_equal(unlink(filler), 0);
    assert_true(cu_wait_blocks(store, h.produced_batches, 40) >= 0);
    assert_int_equal(cu_stop(pid, 30), 0);
    pid = -1;
    assert_int_equal(h_verify(&h, store, 2), 0);
    assert_int_equal(cu_log_count(col_log, "Assertion"), 0);
    passed = 1;
}

static void test_disk_really_full(void **state)
{
    (void)state;
    disk_really_full(0);
}

static void test_disk_really_full_wal(void **state)
{
    (void)state;
    disk_really_full(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_survives_rebalance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_store_nearly_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_really_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_really_full_wal, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
