/* Bump allocator for per-batch data: hot paths allocate from it and reset it per batch. */
#ifndef EDR_ARENA_H
#define EDR_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct edr_arena_chunk edr_arena_chunk_t;

/* Caller storage; initialise with edr_arena_init(), release with edr_arena_close(). */
typedef struct edr_arena {
    edr_arena_chunk_t *head; /* current chunk, older chunks linked behind it */
    size_t used_total;       /* bytes handed out since the last reset */
    size_t high_water;       /* largest used_total seen at a reset */
    ProtobufCAllocator pb;   /* protobuf-c allocator backed by this arena */
} edr_arena_t;

void edr_arena_init(edr_arena_t *a, size_t first_chunk);
void edr_arena_close(edr_arena_t *a);

/* Returns 16-byte aligned memory valid until the next reset, or NULL when out of memory. */
void *edr_arena_alloc(edr_arena_t *a, size_t n);

/* Copies n bytes (plus a NUL when as_string) into the arena; NULL when out of memory. */
void *edr_arena_dup(edr_arena_t *a, const void *p, size_t n);
char *edr_arena_strdup(edr_arena_t *a, const char *s);

/* Forgets everything allocated. Keeps one chunk big enough for the largest
 * batch seen, so steady state does no malloc at all. */
void edr_arena_reset(edr_arena_t *a);

#endif
