/* Terminal escaping of telemetry text: nothing a hostile command line holds
 * can move the cursor, recolour or retitle the analyst's terminal. */
#include "edr/text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *escaped(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    edr_text_fput_escaped(f, s);
    fclose(f);
    return buf;
}

static void expect(const char *in, const char *want)
{
    char *got = escaped(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_plain_text_unchanged(void **state)
{
    (void)state;
    expect("/usr/bin/curl -s http://x/a.sh", "/usr/bin/curl -s http://x/a.sh");
    expect("caf\xc3\xa9", "caf\xc3\xa9"); /* UTF-8 stays readable */
    expect("", "");
    expect(NULL, "");
}

static void test_control_bytes_made_visible(void **state)
{
    (void)state;
    expect("a\nb\tc\\d", "a\\nb\\tc\\\\d");
    expect("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"); /* clear screen, set title */
    expect("x\ry", "x\\x0dy");                                      /* overwrite the line */
    expect("\x7f\x01", "\\x7f\\x01");
    /* no output byte of any input is a control byte */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = 0;
    char *got = escaped(all);
    for (const unsigned char *p = (const unsigned char *)got; *p; p++)
        assert_true(*p >= 0x20 && *p != 0x7f);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_control_bytes_made_visible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
