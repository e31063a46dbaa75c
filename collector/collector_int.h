/* The collector: consumes edr.telemetry.v1 in a consumer group and stores every batch exactly once. */
#ifndef EDR_COLLECTOR_INT_H
#define EDR_COLLECTOR_INT_H

#include "edr/config.h"
#include "edr/frame.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>

typedef struct edr_collector edr_collector_t;

typedef struct edr_collector_opts {
    double exit_when_idle; /* seconds without a message (after an assignment) before exiting; 0: never */
    int assign_all;        /* 1: no consumer group; consume every partition (one collector) */
} edr_collector_opts_t;

/* Builds a collector from configuration: Kafka clients (starting the
 * embedded cluster when kafka.brokers is "embedded"), the metrics listener.
 * On error returns NULL and fills err. */
edr_collector_t *edr_collector_new(const edr_config_t *cfg, const edr_collector_opts_t *opts,
                                   char *err, size_t errlen);
/* Consumes until *stop becomes non-zero, the idle limit passes, or a fatal
 * error. Returns 0, or 1 on a fatal error (logged). May be called again on
 * the same collector after it returned: it goes on where it stopped, with
 * its shards open and their caches warm. */
int edr_collector_run(edr_collector_t *c, volatile sig_atomic_t *stop);
void edr_collector_destroy(edr_collector_t *c);

/* Counters for benchmarks and tests. last_commit is CLOCK_MONOTONIC seconds
 * of the last store commit that wrote batches; cpu is the consuming
 * thread's CPU seconds inside edr_collector_run. */
typedef struct edr_collector_stats {
    uint64_t events, batches, duplicates, deadletters, commits;
    uint64_t deadletter_retries; /* not delivered to the dead-letter topic: read again */
    uint64_t deadletter_lost;    /* refused by the dead-letter topic for good (logged) */
    uint64_t gap;                /* batches gone from the topic before they were stored */
    uint64_t nomem;              /* batches read again after memory ran out decoding them */
    uint64_t retention_errors;   /* shard retention runs that failed (tried again a minute later) */
    uint64_t store_writes;       /* RocksDB entries committed (see edr_store_writer_stats) */
    uint64_t store_writes_saved; /* index entries not rewritten */
    double last_commit;
    double cpu;
} edr_collector_stats_t;
void edr_collector_stats(const edr_collector_t *c, edr_collector_stats_t *st);

/* Whether the store's shards should write the write-ahead log (log_now:
 * they do) when the consuming thread was busy this share of the last
 * second; threshold is collector.store_wal_busy as a fraction. */
int edr__collector_store_log(int log_now, double busy, double threshold);

/* Why a Kafka message cannot be stored; "" when it can. */
typedef struct edr_collector_verdict {
    int err;            /* 0, or the edr_err_t of a frame decode error */
    const char *reason; /* header value: an edr_err_name ("FRAME_CHECKSUM") or
                           NO_KEY, NO_SENSOR, HOST_MISMATCH, BAD_TIMESTAMP */
    char detail[160];   /* human message */
} edr_collector_verdict_t;

/* Checks one telemetry message: frame decode (every codec error), schema
 * version, sensor host id equal to the 16-byte key, every event time
 * between 2000-01-01 and now + max_ahead_ns. Returns 0 with *batch set (in
 * ctx's arena), or -1 with v filled. */
int edr_collector_check(edr_frame_ctx_t *ctx, const void *key, size_t key_len, const void *val,
                        size_t val_len, uint64_t now_ns, uint64_t max_ahead_ns,
                        Edr__V1__EventBatch **batch, edr_collector_verdict_t *v);

/* Metrics endpoint: a thread serving Prometheus text on a listening socket. */
typedef struct edr_metrics edr_metrics_t;
/* listen is "host:port" (port 0: any free port). NULL on error (err filled). */
edr_metrics_t *edr_metrics_new(const char *listen, char *err, size_t errlen);
void edr_metrics_destroy(edr_metrics_t *m);
/* Replaces the text served (copied). Thread-safe. */
void edr_metrics_publish(edr_metrics_t *m, const char *text, size_t len);
/* The port actually bound. */
int edr_metrics_port(const edr_metrics_t *m);

#endif
