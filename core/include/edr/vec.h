/* Growable arrays: the capacity check and doubling that every append needs, in one place. */
#ifndef EDR_VEC_H
#define EDR_VEC_H

#include "edr/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for at least need elements of elem bytes in the array whose
 * pointer is at arrp (a T **, NULL when empty) and whose capacity is *cap:
 * doubles the capacity (from first when 0) until it fits. Returns 0, or
 * EDR_ENOMEM with the array and *cap unchanged. */
static inline int edr_vec_reserve(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : (first ? first : 16);
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return EDR_ENOMEM;
        c *= 2;
    }
    void *old, *p;
    memcpy(&old, arrp, sizeof(old)); /* the caller's T * read as void *, without aliasing it */
    if (!(p = realloc(old, c * elem)))
        return EDR_ENOMEM;
    memcpy(arrp, &p, sizeof(p));
    *cap = c;
    return 0;
}

/* EDR_VEC_RESERVE(items, cap, n, first) for a T *items and a size_t cap. */
#define EDR_VEC_RESERVE(arr, cap, need, first)                                                    \
    edr_vec_reserve(&(arr), &(cap), (need), sizeof(*(arr)), (first))

#endif
