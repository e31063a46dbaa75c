/* Sensor state directory: batch seqs increase across restarts, and across the loss of the directory itself; drops no health event reported are carried into the next run. */
#include "edr_test.h"

#include "sensor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/edr-test-state-XXXXXX";

static uint64_t take(const char *dir, const uint8_t host[EDR_ID_LEN], int n)
{
    char err[256];
    edr__state_t *st = edr__state_open(dir, 0, err, sizeof(err));
    if (!st)
        fail_msg("state %s: %s", dir, err);
    uint64_t last = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = edr__state_next_seq(st, host);
        assert_true(s > last);
        last = s;
    }
    edr__state_close(st);
    return last;
}

/* A restart continues above the last seq; a lost state directory (a new one
 * for the same host) still starts above every seq the old one gave out, so a
 * collector does not take the new batches for redeliveries of stored ones. */
static void test_seq_increases(void **state)
{
    (void)state;
    uint8_t host[EDR_ID_LEN];
    memset(host, 0xab, sizeof(host));
    char a[300], b[300];
    snprintf(a, sizeof(a), "%s/a", root);
    snprintf(b, sizeof(b), "%s/b", root);
    uint64_t s1 = take(a, host, 70000); /* past one reservation */
    uint64_t s2 = take(a, host, 1);
    assert_true(s2 > s1);
    uint64_t s3 = take(b, host, 1);
    assert_true(s3 > s2);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", a);
    assert_int_equal(system(cmd), 0);
    uint64_t s4 = take(a, host, 1); /* the same path, recreated */
    assert_true(s4 > s3);
}

static uint64_t count_of(const edr__drops_t *d, const char *src, const char *why)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->d[i].source, src) && !strcmp(d->d[i].reason, why))
            return d->d[i].count;
    return 0;
}

/* What a run counted beyond its last health event is saved, added to the
 * next run's counters once, and a damaged line is skipped, not fatal. */
static void test_unreported_drops_carried(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/drops", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    edr__drops_t now = {0}, reported = {0}, next = {0};
    edr__drops_add(&now, "kafka", "refused", 500);
    edr__drops_add(&now, "ebpf.file_write", "write_track_evicted", 3);
    reported = now; /* the last health event carried these */
    edr__drops_add(&now, "kafka", "refused", 200);
    edr__drops_add(&now, "spool", "write_error", 7);
    assert_int_equal(edr__drops_save_unreported(&now, &reported, dir), 207);

    edr__drops_add(&next, "kafka", "refused", 1); /* the next run's own */
    assert_int_equal(edr__drops_carry(&next, dir), 207);
    assert_int_equal(count_of(&next, "kafka", "refused"), 201);
    assert_int_equal(count_of(&next, "spool", "write_error"), 7);
    assert_int_equal(count_of(&next, "ebpf.file_write", "write_track_evicted"), 0);
    edr__drops_carried(dir);
    assert_int_equal(edr__drops_carry(&next, dir), 0); /* once */

    /* nothing beyond the last health event: no file */
    assert_int_equal(edr__drops_save_unreported(&reported, &reported, dir), 0);
    char p[400];
    snprintf(p, sizeof(p), "%s/unreported-drops", dir);
    assert_int_equal(access(p, F_OK), -1);

    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("kafka refused\nspool overflow 12\n\xff\xfe garbage\n", f);
    fclose(f);
    edr__drops_t third = {0};
    assert_int_equal(edr__drops_carry(&third, dir), 12);
    assert_int_equal(count_of(&third, "spool", "overflow"), 12);
    assert_int_equal(third.n, 1);

    /* the file could not be removed after the carry (say the first flush
     * failed), and a later health event reported everything: the run's end
     * removes it, so the next run does not carry the same drops again */
    assert_int_equal(edr__drops_save_unreported(&third, &third, dir), 0);
    assert_int_equal(access(p, F_OK), -1);
}

int main(void)
{
    if (!mkdtemp(root))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_seq_increases),
                                       cmocka_unit_test(test_unreported_drops_carried)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    (void)!system(cmd);
    return rc;
}
