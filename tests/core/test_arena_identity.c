/* Arena allocator, identity hashing and hex helpers, log level parsing. */
#include "edr_test.h"

#include "edr/arena.h"
#include "edr/err.h"
#include "edr/identity.h"
#include "edr/log.h"

#include <stdint.h>
#include <string.h>

static void test_arena_reuse(void **state)
{
    (void)state;
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 1000; i++) {
            char *p = edr_arena_alloc(&a, 100);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 16, 0);
            memset(p, i, 100);
        }
        edr_arena_reset(&a);
    }
    /* after a reset the arena is one chunk that fits the high-water mark */
    assert_true(a.high_water >= 1000 * 112);
    assert_string_equal(edr_arena_strdup(&a, "abc"), "abc");
    edr_arena_close(&a);
}

static void test_entity_ids(void **state)
{
    (void)state;
    uint8_t host[16] = {1}, boot[16] = {2}, a[16], b[16], c[16];
    edr_entity_id(host, boot, 100, 5000, a);
    edr_entity_id(host, boot, 100, 5000, b);
    assert_memory_equal(a, b, 16);
    edr_entity_id(host, boot, 100, 5001, c); /* pid reused later: another entity */
    assert_memory_not_equal(a, c, 16);
    edr_entity_id_from_guid(host, "{94325212-F5A5-627B-B809-87F375550000}", 38, a);
    edr_entity_id_from_guid(host, "{94325212-f5a5-627b-b809-87f375550000}", 38, b);
    assert_memory_equal(a, b, 16); /* GUIDs are case-insensitive */
    char hex[33];
    /* the ids of stores already written do not change (values of the one-shot hash) */
    assert_string_equal(edr_hex(a, 16, hex), "22c2e819a7503145fb8ae10cc2aab8e8");
    edr_host_id_from_name("Web-01.Example.NET", c);
    assert_string_equal(edr_hex(c, 16, hex), "2f8daa85a676a81d20bec400c9f3fa06");
    /* the whole id counts: two long ones that differ past 128 (GUID) and 255
     * (host name) characters are two */
    static char l1[600], l2[600];
    memset(l1, 'a', sizeof(l1) - 1);
    memset(l2, 'a', sizeof(l2) - 1);
    l2[400] = 'b';
    edr_entity_id_from_guid(host, l1, strlen(l1), a);
    edr_entity_id_from_guid(host, l2, strlen(l2), b);
    assert_memory_not_equal(a, b, 16);
    edr_host_id_from_name(l1, a);
    edr_host_id_from_name(l2, b);
    assert_memory_not_equal(a, b, 16);
}

/* Sizes of the order of SIZE_MAX are refused, not wrapped into a small
 * block or an endless doubling. */
static void test_arena_huge(void **state)
{
    (void)state;
    edr_arena_t ar;
    edr_arena_init(&ar, 4096);
    assert_null(edr_arena_alloc(&ar, SIZE_MAX - 3));
    assert_null(edr_arena_alloc(&ar, ((size_t)1 << 63) + 1));
    assert_null(edr_arena_dup(&ar, "", SIZE_MAX));
    assert_non_null(edr_arena_alloc(&ar, 100));
    edr_arena_close(&ar);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t in[4] = {0xde, 0xad, 0xbe, 0xef}, out[4];
    char s[9];
    assert_string_equal(edr_hex(in, 4, s), "deadbeef");
    assert_int_equal(edr_unhex("DE-AD-BE-EF", out, 4), 0);
    assert_memory_equal(in, out, 4);
    assert_int_equal(edr_unhex("deadbee", out, 4), EDR_EINVAL);
    assert_int_equal(edr_unhex("deadbeefaa", out, 4), EDR_EINVAL);
    assert_int_equal(edr_unhex("zzadbeef", out, 4), EDR_EINVAL);
    uint8_t hid[16];
    assert_int_equal(edr_host_id_local(hid), 0);
}

static void test_log_levels(void **state)
{
    (void)state;
    edr_log_level_t l;
    assert_int_equal(edr_log_level_parse("debug", &l), 0);
    assert_int_equal(l, EDR_LOG_DEBUG);
    assert_int_equal(edr_log_level_parse("chatty", &l), EDR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_reuse),
        cmocka_unit_test(test_entity_ids),
        cmocka_unit_test(test_arena_huge),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
