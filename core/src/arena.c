/* Bump allocator with chunk reuse; also serves as protobuf-c's allocator. */
#include "edr/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct edr_arena_chunk {
    edr_arena_chunk_t *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

static void *pb_alloc(void *ud, size_t n)
{
    return edr_arena_alloc(ud, n);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    (void)p; /* freed by reset */
}

static edr_arena_chunk_t *chunk_new(size_t size)
{
    edr_arena_chunk_t *c = malloc(sizeof(*c) + size);
    if (!c)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

void edr_arena_init(edr_arena_t *a, size_t first_chunk)
{
    memset(a, 0, sizeof(*a));
    if (first_chunk < 4096)
        first_chunk = 4096;
    a->head = chunk_new(first_chunk);
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
}

void edr_arena_close(edr_arena_t *a)
{
    edr_arena_chunk_t *c = a->head;
    while (c) {
        edr_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void *edr_arena_alloc(edr_arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 4)
        return NULL; /* no size of that order is real; the rounding and doubling below would wrap */
    n = (n + 15) & ~(size_t)15;
    edr_arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = c ? c->size * 2 : 4096;
        while (size < n)
            size *= 2;
        edr_arena_chunk_t *nc = chunk_new(size);
        if (!nc)
            return NULL;
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_total += n;
    return p;
}

void *edr_arena_dup(edr_arena_t *a, const void *p, size_t n)
{
    void *d = n < SIZE_MAX ? edr_arena_alloc(a, n + 1) : NULL;
    if (d) {
        if (n)
            memcpy(d, p, n);
        ((char *)d)[n] = 0;
    }
    return d;
}

char *edr_arena_strdup(edr_arena_t *a, const char *s)
{
    return edr_arena_dup(a, s, strlen(s));
}

void edr_arena_reset(edr_arena_t *a)
{
    if (a->used_total > a->high_water)
        a->high_water = a->used_total;
    a->used_total = 0;
    edr_arena_chunk_t *c = a->head;
    if (c && c->next) {
        /* more than one chunk: replace all by one that fits the high water mark */
        size_t size = c->size;
        while (size < a->high_water)
            size *= 2;
        while (c) {
            edr_arena_chunk_t *next = c->next;
            free(c);
            c = next;
        }
        a->head = chunk_new(size);
        return;
    }
    if (c)
        c->used = 0;
}
