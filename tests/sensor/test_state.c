/* Sensor state directory: batch seqs increase across restarts, and across the loss of the directory itself. */
#include "edr_test.h"

#include "sensor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    if (!mkdtemp(root))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_seq_increases)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    (void)!system(cmd);
    return rc;
}
