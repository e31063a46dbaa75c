/* Shared helpers for tests: cmocka plus a few conveniences. */
#ifndef EDR_TEST_H
#define EDR_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

/* Makes directory mnt and mounts a tmpfs with options opts on it (a small
 * file system to fill); the test is skipped, saying why, when it cannot. */
static inline void edr_test_tmpfs(const char *mnt, const char *opts)
{
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0) {
        print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
}

#endif
