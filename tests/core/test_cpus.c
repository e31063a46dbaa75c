/* The CPUs a process may keep busy: its affinity, capped by the CPU quota
 * of its cgroup or an ancestor's (a container started with --cpus=1 on a
 * large host sized its compaction pool to the host: review-1206o 8). */
#define _GNU_SOURCE
#include "edr/cpus.h"

#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char root[64];

static unsigned affinity(void)
{
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    return (unsigned)CPU_COUNT(&set);
}

/* Writes text to root/rel, making its directories. */
static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static unsigned budget(void)
{
    char cg[128], fs[128];
    snprintf(cg, sizeof(cg), "%s/proc-cgroup", root);
    snprintf(fs, sizeof(fs), "%s/fs", root);
    return edr__cpu_budget_at(cg, fs);
}

static void test_v2_quota_of_an_ancestor(void **state)
{
    (void)state;
    put("proc-cgroup", "0::/box/app\n");
    put("fs/box/app/cpu.max", "max 100000\n");
    assert_int_equal(budget(), affinity()); /* no quota */
    put("fs/box/cpu.max", "50000 100000\n"); /* half a CPU, one level up */
    assert_int_equal(budget(), 1);
    put("fs/box/cpu.max", "1000000 100000\n"); /* 10 CPUs: the affinity is less */
    assert_int_equal(budget(), affinity() < 10 ? affinity() : 10);
    put("fs/box/cpu.max", "garbage\n");
    assert_int_equal(budget(), affinity());
}

static void test_v1_quota(void **state)
{
    (void)state;
    put("proc-cgroup", "5:memory:/x\n4:cpu,cpuacct:/c\n0::/\n");
    put("fs/cpu,cpuacct/c/cpu.cfs_quota_us", "-1\n");
    put("fs/cpu,cpuacct/c/cpu.cfs_period_us", "100000\n");
    assert_int_equal(budget(), affinity());
    put("fs/cpu,cpuacct/c/cpu.cfs_quota_us", "100000\n");
    assert_int_equal(budget(), 1);
    put("fs/cpu,cpuacct/c/cpu.cfs_quota_us", "150000\n"); /* 1.5 rounds up */
    assert_int_equal(budget(), affinity() < 2 ? affinity() : 2);
}

static void test_nothing_to_read(void **state)
{
    (void)state;
    assert_int_equal(edr__cpu_budget_at("/nonexistent/cgroup", "/nonexistent"), affinity());
    unsigned n = edr_cpu_budget();
    assert_true(n >= 1 && n <= (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
}

static int rm_tree(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static int mk_tree(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/edr-test-cpus-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2_quota_of_an_ancestor, mk_tree, rm_tree),
        cmocka_unit_test_setup_teardown(test_v1_quota, mk_tree, rm_tree),
        cmocka_unit_test(test_nothing_to_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
