/* The gaps a partition counted (gaps.h). */
#include "gaps.h"

int64_t edr_gaps_overlap(const edr_gaps_t *g, int64_t lo, int64_t hi)
{
    int64_t n = 0;
    for (int i = 0; i < g->n; i++) {
        int64_t a = g->r[i].lo > lo ? g->r[i].lo : lo;
        int64_t b = g->r[i].hi < hi ? g->r[i].hi : hi;
        if (b > a)
            n += b - a;
    }
    return n;
}

void edr_gaps_add(edr_gaps_t *g, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return;
    struct {
        int64_t lo, hi;
    } out[EDR_GAPS + 1];
    int n = 0, placed = 0;
    for (int i = 0; i < g->n; i++) {
        if (g->r[i].hi < lo) { /* wholly below, not touching */
            out[n].lo = g->r[i].lo;
            out[n++].hi = g->r[i].hi;
        } else if (g->r[i].lo > hi) { /* wholly above: the new range goes before it */
            if (!placed) {
                out[n].lo = lo;
                out[n++].hi = hi;
                placed = 1;
            }
            out[n].lo = g->r[i].lo;
            out[n++].hi = g->r[i].hi;
        } else { /* overlapping or adjacent: absorbed into the new range */
            lo = g->r[i].lo < lo ? g->r[i].lo : lo;
            hi = g->r[i].hi > hi ? g->r[i].hi : hi;
        }
    }
    if (!placed) {
        out[n].lo = lo;
        out[n++].hi = hi;
    }
    int skip = n > EDR_GAPS ? n - EDR_GAPS : 0; /* full: the lowest is forgotten */
    g->n = n - skip;
    for (int i = 0; i < g->n; i++) {
        g->r[i].lo = out[i + skip].lo;
        g->r[i].hi = out[i + skip].hi;
    }
}
