/* Terminal escaping of telemetry text: nothing a hostile command line holds
 * can move the cursor, recolour or retitle the analyst's terminal. */
#include "edr/text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

/* C1 controls are terminal controls too (U+009B is CSI to xterm), and
 * bidirectional overrides make a command line read as another. */
static void test_c1_and_bidi_made_visible(void **state)
{
    (void)state;
    expect("a\xc2\x9b" "31mred", "a\\u{009b}31mred");          /* CSI as UTF-8 */
    expect("\xc2\x9d" "0;T\xc2\x9c", "\\u{009d}0;T\\u{009c}"); /* OSC ... ST */
    expect("ls \xe2\x80\xae" "txt.exe", "ls \\u{202e}txt.exe");  /* right-to-left override */
    expect("\xe2\x81\xa6x\xe2\x81\xa9", "\\u{2066}x\\u{2069}");
    expect("\xe2\x82\xac", "\xe2\x82\xac"); /* the euro sign is only text */
}

/* Bytes that are not well-formed UTF-8 are shown byte by byte: a lone 0x9b
 * is CSI to an 8-bit terminal, and overlong or surrogate forms hide others. */
static void test_ill_formed_utf8_made_visible(void **state)
{
    (void)state;
    expect("a\x9b" "2Jb", "a\\x9b2Jb");
    expect("\xc0\x9b", "\\xc0\\x9b");                 /* overlong */
    expect("\xed\xa0\x80", "\\xed\\xa0\\x80");     /* surrogate U+D800 */
    expect("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
    expect("\xe2\x82", "\\xe2\\x82");                 /* truncated at the end */
    expect("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* an emoji is text */
}

static void test_utf8_next(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_int_equal(edr_utf8_next((const unsigned char *)"A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(edr_utf8_next((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xe9);
    assert_int_equal(edr_utf8_next((const unsigned char *)"\xc3\xa9", 1, &cp), 0); /* cut */
    assert_int_equal(edr_utf8_next((const unsigned char *)"\xe0\x80\x80", 3, &cp), 0);
    assert_int_equal(edr_utf8_next((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
    assert_int_equal(cp, 0x10ffff);
    assert_int_equal(edr_utf8_next((const unsigned char *)"\x80", 1, &cp), 0);
    assert_int_equal(edr_utf8_next((const unsigned char *)"", 0, &cp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_control_bytes_made_visible),
        cmocka_unit_test(test_c1_and_bidi_made_visible),
        cmocka_unit_test(test_ill_formed_utf8_made_visible),
        cmocka_unit_test(test_utf8_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
