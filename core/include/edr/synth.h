/* Synthetic telemetry: realistic mixed event streams for many hosts (tests, benchmarks, demo). */
#ifndef EDR_SYNTH_H
#define EDR_SYNTH_H

#include "edr/arena.h"
#include "edr/v1/batch.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct edr_synth_opts {
    uint32_t hosts;    /* number of simulated hosts (>= 1) */
    uint64_t seed;     /* same seed, same stream */
    uint64_t start_ns; /* UTC ns of the first event; 0: 2026-01-01 */
} edr_synth_opts_t;

typedef struct edr_synth edr_synth_t;

/* NULL when out of memory. */
edr_synth_t *edr_synth_new(const edr_synth_opts_t *opts);
void edr_synth_destroy(edr_synth_t *s);

/* The next batch of n events of host h (0 <= h < hosts): process trees
 * (fork, exec with real-looking command lines, exit), file creates, writes
 * in home directories and /tmp, renames, deletes, connects, accepts, DNS.
 * Batch and strings are allocated in a (reset it after use); the host's
 * batch sequence advances by one. NULL when out of memory. */
Edr__V1__EventBatch *edr_synth_next_batch(edr_synth_t *s, uint32_t h, size_t n, edr_arena_t *a);

/* Host id of simulated host h. */
void edr_synth_host_id(const edr_synth_t *s, uint32_t h, uint8_t out[16]);

#endif
