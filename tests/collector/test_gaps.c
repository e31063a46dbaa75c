/* The gaps a partition counted (collector/gaps.c): a gap met again after a failed flush is not
 * counted again, whichever of the gaps since the last flush it is (review-1204b 2: only the last
 * one was remembered, so an earlier one read again counted twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gaps.h"

/* The review's case: two gaps between two flushes, then the shard read again from offset 5. */
static void test_two_gaps_read_again(void **state)
{
    (void)state;
    edr_gaps_t g = {.n = 0};
    edr_gaps_add(&g, 10, 20);
    edr_gaps_add(&g, 25, 30);
    assert_int_equal(g.n, 2);
    /* read again from 5, the log now starting at 30: 25 offsets gone, 15 counted before */
    assert_int_equal(edr_gaps_overlap(&g, 5, 30), 15);
    edr_gaps_add(&g, 5, 30);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.r[0].lo, 5);
    assert_int_equal(g.r[0].hi, 30);
    /* met a third time: all of it counted */
    assert_int_equal(edr_gaps_overlap(&g, 5, 30), 25);
    assert_int_equal(edr_gaps_overlap(&g, 0, 100), 25);
    assert_int_equal(edr_gaps_overlap(&g, 30, 100), 0);
}

static void test_merge_and_order(void **state)
{
    (void)state;
    edr_gaps_t g = {.n = 0};
    edr_gaps_add(&g, 7, 7); /* empty: nothing */
    assert_int_equal(g.n, 0);
    edr_gaps_add(&g, 40, 50);
    edr_gaps_add(&g, 50, 60); /* adjacent: one range */
    assert_int_equal(g.n, 1);
    edr_gaps_add(&g, 10, 20); /* below: kept in order */
    edr_gaps_add(&g, 25, 30);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.r[0].lo, 10);
    assert_int_equal(g.r[1].lo, 25);
    assert_int_equal(g.r[2].lo, 40);
    assert_int_equal(g.r[2].hi, 60);
    edr_gaps_add(&g, 18, 26); /* bridges the first two */
    assert_int_equal(g.n, 2);
    assert_int_equal(g.r[0].lo, 10);
    assert_int_equal(g.r[0].hi, 30);
    assert_int_equal(edr_gaps_overlap(&g, 0, 1000), 20 + 20);
}

static void test_full_forgets_lowest(void **state)
{
    (void)state;
    edr_gaps_t g = {.n = 0};
    for (int i = 0; i <= EDR_GAPS; i++)
        edr_gaps_add(&g, 100 * i, 100 * i + 10);
    assert_int_equal(g.n, EDR_GAPS);
    assert_int_equal(g.r[0].lo, 100); /* [0, 10) forgotten */
    assert_int_equal(g.r[EDR_GAPS - 1].lo, 100 * EDR_GAPS);
    assert_int_equal(edr_gaps_overlap(&g, 0, 100000), 10 * EDR_GAPS);
    for (int i = 1; i < g.n; i++)
        assert_true(g.r[i].lo > g.r[i - 1].hi);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_gaps_read_again),
                                       cmocka_unit_test(test_merge_and_order),
                                       cmocka_unit_test(test_full_forgets_lowest)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
