/* The gaps a partition counted: offset ranges gone from the topic before they were stored. */
#ifndef EDR_COLLECTOR_GAPS_H
#define EDR_COLLECTOR_GAPS_H

#include <stdint.h>

/* At most EDR_GAPS ranges [lo, hi), in offset order, neither overlapping
 * nor adjacent. A shard closed after a failed flush is read again from its
 * last flush, at most a flush interval back: the gaps met in that span are
 * met again and must not be counted again. Offsets only grow between two
 * such re-reads, so when a ninth range comes the lowest one is forgotten
 * (counted again only if nine gaps fell within one flush interval). */
#define EDR_GAPS 8

typedef struct edr_gaps {
    struct {
        int64_t lo, hi;
    } r[EDR_GAPS];
    int n;
} edr_gaps_t;

/* How many offsets of [lo, hi) the ranges hold. */
int64_t edr_gaps_overlap(const edr_gaps_t *g, int64_t lo, int64_t hi);

/* Adds [lo, hi), merged with the ranges it overlaps or touches. */
void edr_gaps_add(edr_gaps_t *g, int64_t lo, int64_t hi);

#endif
