/* The sensor's capability report counts what a thread can raise again (its
 * permitted set), not only what is effective now. */
#include "edr_test.h"

#include "caps.h"

#include <sys/capability.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a child (it gives up capabilities for good): permitted {CAP_NET_ADMIN,
 * CAP_SYS_PTRACE}, effective {CAP_SYS_PTRACE} only; the report must show
 * both, since the thread can make CAP_NET_ADMIN effective again. */
static void test_permitted_counted(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cap_value_t prm[] = {CAP_NET_ADMIN, CAP_SYS_PTRACE}, eff[] = {CAP_SYS_PTRACE};
        cap_t c = cap_init();
        unsigned long long got = 1; /* bit 0 (CAP_CHOWN) marks a failed setup */
        if (c && cap_set_flag(c, CAP_PERMITTED, 2, prm, CAP_SET) == 0 &&
            cap_set_flag(c, CAP_EFFECTIVE, 1, eff, CAP_SET) == 0 && cap_set_proc(c) == 0)
            got = edr__caps_effective_all();
        (void)!write(pfd[1], &got, sizeof(got));
        _exit(0);
    }
    close(pfd[1]);
    unsigned long long got = 0;
    assert_int_equal(read(pfd[0], &got, sizeof(got)), sizeof(got));
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(got, 1ull << CAP_NET_ADMIN | 1ull << CAP_SYS_PTRACE);
}

/* Read where it can be: never the "unknown" value, and as root with nothing
 * dropped, something. */
static void test_report_readable(void **state)
{
    (void)state;
    unsigned long long all = edr__caps_effective_all();
    assert_true(all != EDR_CAPS_UNKNOWN);
    if (geteuid() == 0)
        assert_true(all != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_permitted_counted),
                                       cmocka_unit_test(test_report_readable)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
