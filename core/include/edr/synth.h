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

/* A batch of ProcessStart events (seeded = true) for every process host h
 * has running now, as a sensor reports them from /proc when it starts.
 * Consumes no randomness: the streams that follow are the same whether or
 * not it is called (only the batch sequence advances). NULL when out of memory. */
Edr__V1__EventBatch *edr_synth_seed_batch(edr_synth_t *s, uint32_t h, edr_arena_t *a);

/* Host id of simulated host h. */
void edr_synth_host_id(const edr_synth_t *s, uint32_t h, uint8_t out[16]);

/* ------------------------------------------------------------------
 * Embedded attack chains with ground truth (root-cause benchmarks, tests).
 * An attack is emitted by edr_synth_next_batch() interleaved with the
 * host's noise once the host has emitted spec.after_events events; with no
 * attack added the stream is exactly as before.
 */
typedef enum {
    EDR_SYNTH_ATTACK_SERVICE_EXPLOIT = 1, /* a service accepts the attacker, fetches a payload, spawns a shell */
    EDR_SYNTH_ATTACK_DOWNLOAD_EXECUTE = 2, /* a user session downloads a file with curl and runs it */
    EDR_SYNTH_ATTACK_LATERAL = 3,          /* service exploit on host, then ssh to target_host and on there */
} edr_synth_attack_kind_t;

typedef struct edr_synth_attack_spec {
    edr_synth_attack_kind_t kind;
    uint32_t host;        /* where the attack enters */
    uint32_t target_host; /* lateral: where it continues (and the alert is) */
    uint32_t depth;       /* processes in the chain below the first step (1..8) */
    uint64_t after_events; /* the host's events before the attack starts */
} edr_synth_attack_spec_t;

/* One entity of the attack: a process (entity id), a file (host, path) or a
 * remote peer (host seeing it, IPv4). */
typedef struct edr_synth_truth {
    uint8_t kind; /* 1 process, 2 file, 3 remote */
    uint8_t host_id[16];
    uint8_t entity_id[16];
    char path[64];
    uint8_t ip[4];
} edr_synth_truth_t;

#define EDR_SYNTH_TRUTH_MAX 48

typedef struct edr_synth_attack {
    edr_synth_attack_spec_t spec;
    int done;               /* every step has been emitted */
    int root_class;         /* edr.v1 Incident.RootCauseClass value */
    edr_synth_truth_t root; /* the root cause */
    edr_synth_truth_t alert; /* the last process of the chain (where an alert fires) */
    uint64_t alert_ns;
    edr_synth_truth_t first; /* the first malicious process */
    size_t n_truth;         /* every attack entity, root included */
    edr_synth_truth_t truth[EDR_SYNTH_TRUTH_MAX];
} edr_synth_attack_t;

/* Plans an attack. Returns its index (>= 0), EDR_EINVAL (bad host, kind or
 * depth), EDR_EBUSY (a host of it already has an attack in progress), or
 * EDR_ENOMEM. */
int edr_synth_add_attack(edr_synth_t *s, const edr_synth_attack_spec_t *spec);
size_t edr_synth_attack_count(const edr_synth_t *s);
/* Attack i with its ground truth (complete once done is set); NULL when out of range. */
const edr_synth_attack_t *edr_synth_attack(const edr_synth_t *s, size_t i);

#endif
