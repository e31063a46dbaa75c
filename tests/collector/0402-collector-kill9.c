/* kill -9 the collector at random points of a multi-million-event ingest, 20+ times: every (host, seq) ends up stored exactly once. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

#include <dirent.h>

#define HOSTS  300
#define ROUNDS 10
#define EVENTS 500 /* 1.5 M events */
#define KILLS  20
#define PARTITIONS 16

static uint64_t stored_blocks(const char *store)
{
    char err[512];
    edr_store_t *s = edr_store_open(store, NULL, err, sizeof(err));
    if (!s)
        return 0;
    edr_store_stats_t st = {0};
    edr_store_stats(s, &st);
    edr_store_destroy(s);
    return st.blocks;
}

/* Waits until the child has all n store shards open (one per partition: it
 * consumes once every shard is open, after ~20-50 ms per shard on a small
 * machine); returns seconds waited or -1. */
static double wait_shards_open(pid_t pid, int n, double timeout)
{
    double t0 = h_now();
    char dir[64], link[512], target[4096];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    while (h_now() - t0 < timeout) {
        DIR *d = opendir(dir);
        struct dirent *de;
        char seen[64][16];
        int found = 0;
        while (d && (de = readdir(d)) && found < n) {
            snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
            ssize_t len = readlink(link, target, sizeof(target) - 1);
            if (len <= 0)
                continue;
            target[len] = 0;
            const char *sh = strstr(target, "/shard-");
            if (!sh)
                continue;
            char name[16];
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(sh + 7, "/"), sh + 7);
            int dup = 0;
            for (int i = 0; i < found && !dup; i++)
                dup = !strcmp(seen[i], name);
            if (!dup && found < 64)
                snprintf(seen[found++], sizeof(seen[0]), "%s", name);
        }
        if (d)
            closedir(d);
        if (found >= n)
            return h_now() - t0;
        usleep(5000);
    }
    return -1;
}

static void test_kill9(void **state)
{
    (void)state;
    harness_t h;
    h_start(&h, 3, PARTITIONS, HOSTS); /* the embedded broker keeps ~5 MB per partition */
    double t0 = h_now();
    h_produce(&h, ROUNDS, EVENTS);
    fprintf(stderr, "produced %llu events in %.1f s\n", (unsigned long long)h.produced_events,
            h_now() - t0);
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    fprintf(stderr, "kill schedule seed %u\n", seed);
    /* kills land during the ingest whatever the store writer's speed: small commits, and
     * without the write-ahead log (the default: a kill loses what was not flushed, which
     * is read again) a flush every 50 ms, so kills fall between flushes and commits. Kills
     * land before the collector's first check of its thread's busy share (after 1 s), so
     * the shards still commit without the log; every other run writes the log throughout
     * (as shards do when the collector is not busy), so kills also fall on commits in it
     * and on a store left by the other mode */
    const char *sets[] = {"collector.commit_interval=5ms", "collector.store_flush_interval=50ms",
                          "kafka.properties.group.instance.id=kill9", NULL, NULL};
    int mid = 0;
    double tk = h_now();
    uint64_t stored = 0;
    for (int k = 0; k < KILLS; k++) {
        /* without the group join (3.7 s per restart on the embedded cluster) so 20 restarts
         * fit the time budget; the final run below resumes through the consumer group */
        sets[3] = k % 2 ? "collector.store_wal=true" : NULL;
        pid_t pid = h_collector(&h, h.store, NULL, 0, sets);
        double join = wait_shards_open(pid, PARTITIONS, 30);
        assert_true(join >= 0);
        /* a random point of the ingest, which starts once every shard is open: 0-0.4 s
         * scaled by the share of batches not yet stored, so that 20 kills land within the
         * ingest whatever the writer's speed (a fixed 0-0.4 s let a writer with its shards
         * opened in parallel finish before half of them) */
        double delay = (double)(rand() % 400) / 1000.0 * (double)(h.produced_batches - stored) /
                       (double)h.produced_batches;
        usleep((useconds_t)(delay * 1e6));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st));
        uint64_t n = stored_blocks(h.store);
        mid += n > 0 && n < h.produced_batches;
        stored = n;
        fprintf(stderr, "kill %d (%s) at %.2f s after its join (%.2f s; t=%.1f): %llu of %llu batches stored\n", k + 1,
                k % 2 ? "with the log" : "without", delay, join, h_now() - tk,
                (unsigned long long)n, (unsigned long long)h.produced_batches);
    }
    pid_t pid = h_collector(&h, h.store, "t0402", 4, NULL);
    assert_int_equal(h_wait(pid, 120), 0);
    assert_int_equal(h_verify(&h, h.store, ROUNDS), 0);
    fprintf(stderr, "%d kills landed in the middle of the ingest\n", mid);
    assert_true(mid >= 10); /* the test means something only when most kills interrupt the ingest */
    h_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill9)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
