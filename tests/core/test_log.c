/* The logger writes one line per message whatever the message holds: text
 * from outside (a file name, a broker's error) cannot forge a line, a journal
 * priority or a terminal escape. */
#include "edr/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Runs one edr_log_warn(fmt, ...) with stderr in a temporary file; returns
 * what was written (caller frees). */
#define logged(...) (log_start(), edr_log_warn(__VA_ARGS__), log_end())

static int log_fd = -1, log_saved = -1;

static void log_start(void)
{
    char path[] = "/tmp/edr-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    log_saved = dup(2);
    assert_true(log_saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    log_fd = fd;
}

static char *log_end(void)
{
    int fd = log_fd;
    fflush(stderr);
    assert_int_equal(dup2(log_saved, 2), 2);
    close(log_saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    close(fd);
    return buf;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_journal_line_not_forged(void **state)
{
    (void)state;
    setenv("JOURNAL_STREAM", "8:1234", 1);
    edr_log_init("edr-collector", EDR_LOG_INFO);
    char *out = logged("store %s: broken",
                       "x\n<2>edr-collector: all hosts healthy\x1b[2K\r\xe2\x80\xae\xff");
    assert_string_equal(out, "<4>store x\\n<2>edr-collector: all hosts healthy\\x1b[2K\\x0d"
                             "\\u{202e}\\xff: broken\n");
    assert_int_equal(lines(out), 1);
    free(out);
    unsetenv("JOURNAL_STREAM");
}

static void test_plain_line_escaped_once(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    edr_log_init("edr-sensor", EDR_LOG_INFO);
    char *out = logged("file %s", "C:\\tmp\\a\tb \xc3\xa9");
    /* a backslash shows doubled once, a tab as \t, readable UTF-8 stays */
    assert_string_equal(out, "edr-sensor: warning: file C:\\\\tmp\\\\a\\tb \xc3\xa9\n");
    free(out);

    edr_log_set_level(EDR_LOG_ERROR);
    assert_int_equal(edr_log_get_level(), EDR_LOG_ERROR);
    out = logged("%s", "not shown");
    assert_string_equal(out, "");
    free(out);
    edr_log_set_level(EDR_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_journal_line_not_forged),
                                       cmocka_unit_test(test_plain_line_escaped_once)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
