/* The sensor daemon as a library: configuration in, a libuv loop that collects and ships out. */
#ifndef EDR_SENSOR_H
#define EDR_SENSOR_H

#include "edr/config.h"

#include <stdint.h>
#include <stdio.h>

typedef struct edr_sensor edr_sensor_t;

typedef struct edr_sensor_opts {
    uint64_t max_events;         /* stop the source after this many events; 0: no limit */
    uint64_t exit_after_idle_ns; /* exit when no event came for this long; 0: never */
    int keep_caps;               /* 1: do not drop capabilities after the source started */
    int no_lock;                 /* 1: no single-instance lock (benchmarks in scratch dirs) */
    FILE *jsonl_out;             /* where --output jsonl writes; NULL: stdout */
    /* SIGHUP: returns a freshly loaded configuration (the sensor takes
     * ownership) or NULL to keep the current one. NULL: SIGHUP is ignored. */
    edr_config_t *(*reload)(void *ud);
    void *reload_ud;
} edr_sensor_opts_t;

/* Opens the state directory (lock, batch sequence, spool), the output
 * (Kafka producer or JSON lines) and the source named by sensor.source.
 * Takes ownership of cfg on success. On error returns NULL, fills err and
 * leaves cfg to the caller. */
edr_sensor_t *edr_sensor_new(edr_config_t *cfg, const edr_sensor_opts_t *opts, char *err,
                             size_t errlen);

/* Starts the source and runs the loop until SIGTERM/SIGINT, edr_sensor_stop(),
 * the end of a finite source or a --max-events/--exit-after-idle limit; then
 * flushes (delivering for at most sensor.shutdown_timeout, spooling the rest).
 * SIGTERM, SIGINT and SIGHUP are handled from the start of the call (also
 * while the source starts) and unblocked in the calling thread: a caller that
 * blocks them before edr_sensor_new() has one sent during startup served here.
 * Returns 0, or a negative edr_err_t when the source could not start, failed
 * later (an unreadable input, a ground truth file not written) or the output
 * failed (--output jsonl that could not be written). */
int edr_sensor_run(edr_sensor_t *s);

/* Asks a running sensor to flush and exit; safe from any thread. */
void edr_sensor_stop(edr_sensor_t *s);

/* Name of the source in use ("ebpf", "fallback", "replay", "synthetic"). */
const char *edr_sensor_fidelity(const edr_sensor_t *s);

/* Counters for tests and the exit summary. */
typedef struct edr_sensor_stats {
    uint64_t events;        /* emitted by the source (health events excluded) */
    uint64_t batches;       /* batches shipped */
    uint64_t frames_acked;  /* frames Kafka acknowledged (direct and replayed) */
    uint64_t frames_spooled;
    uint64_t drops;         /* events lost: every drop counter but ("sha256", "late") */
} edr_sensor_stats_t;
void edr_sensor_get_stats(const edr_sensor_t *s, edr_sensor_stats_t *out);

void edr_sensor_destroy(edr_sensor_t *s);

#endif
