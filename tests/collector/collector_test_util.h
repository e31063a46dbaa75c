/* Helpers shared by the collector fault tests: a collector child with its log captured, store
 * polling, the metrics endpoint. */
#ifndef EDR_TEST_COLLECTOR_UTIL_H
#define EDR_TEST_COLLECTOR_UTIL_H

#include "harness.h"

#include <stdint.h>
#include <sys/types.h>

/* Makes an empty log file /tmp/edr-test-<tag>-XXXXXX.log; path must hold 96 bytes. */
void cu_log_new(char *path, const char *tag);

/* Like h_collector() (extra "--set" values win over its defaults), with the
 * child's stderr appended to log_path and log.level=info, so the test can
 * read what the collector says. */
pid_t cu_collector(harness_t *h, const char *store, const char *group, double idle_s,
                   const char *const *sets, const char *log_path);

/* SIGTERM, then waits up to timeout seconds (SIGKILL after). Returns the
 * exit code, or -1 when it had to be killed or died from a signal. */
int cu_stop(pid_t pid, double timeout);

/* A fault test's end: stops its collector child if it still runs (pid <= 0:
 * none), removes its log when the test passed (else says where it is kept,
 * as EDR_TEST_KEEP_LOGS=1 does for passing tests too), stops the harness. */
void cu_teardown(harness_t *h, pid_t pid, int passed, const char *log_path);

/* The file-scope state of a fault test with one collector child (h, pid,
 * passed, col_log) and its cmocka teardown, which calls cu_teardown. */
#define CU_ONE_COLLECTOR_TEST                                                                      \
    static harness_t h;                                                                            \
    static pid_t pid = -1;                                                                         \
    static int passed;                                                                             \
    static char col_log[96];                                                                       \
    static int teardown(void **state)                                                              \
    {                                                                                              \
        (void)state;                                                                               \
        cu_teardown(&h, pid, passed, col_log);                                                     \
        return 0;                                                                                  \
    }

/* Mounts a tmpfs with mount options opts (e.g. "size=14m,mode=0700") on h's
 * store directory: 0, or -1 after saying why the test is skipped (it needs
 * root and mount rights). */
int cu_mount_store(harness_t *h, const char *opts);

/* 1 while the child runs, 0 once it has exited (and is reaped). */
int cu_running(pid_t pid);

/* Batches stored in the store (all shards), 0 when nothing is there yet. */
uint64_t cu_stored_blocks(const char *store);

/* Polls the store until it holds at least n batches; returns the seconds
 * waited, or -1 after timeout. */
double cu_wait_blocks(const char *store, uint64_t n, double timeout);

/* Batches stored for host index i of h's generator (all shards). */
uint64_t cu_host_blocks(harness_t *h, const char *store, uint32_t i);

/* Batches stored for every host of h (counts[h->hosts]), one store open;
 * 0 when the store could be read, -1 when not. */
int cu_hosts_blocks(harness_t *h, const char *store, uint64_t *counts);

/* The whole log file as a string (caller frees), "" when unreadable. */
char *cu_log_read(const char *path);
/* Number of lines of the log containing needle. */
int cu_log_count(const char *path, const char *needle);
/* Waits until the log contains needle; returns the seconds waited or -1. */
double cu_log_wait(const char *path, const char *needle, double timeout);

/* What a collector logged when it stopped: batches it stored and duplicates
 * it skipped; both UINT64_MAX when it said nothing. */
void cu_stop_summary(const char *log_path, uint64_t *batches, uint64_t *dups);
/* The dead letters its stop summary counts (UINT64_MAX when it said nothing). */
uint64_t cu_stop_deadletters(const char *log_path);

/* The metrics port the collector logged ("metrics on http://127.0.0.1:N/metrics"),
 * waiting up to timeout seconds; -1 when never logged. */
int cu_metrics_port(const char *log_path, double timeout);

/* GET /metrics on 127.0.0.1:port with a plain socket. Returns a malloc'd
 * body (caller frees) after checking the status line is 200, or NULL. */
char *cu_metrics_get(int port);

/* Value of the series named exactly `series` (e.g. "edr_collector_lag{partition=\"3\"}")
 * in Prometheus text; 0 when found, -1 when absent. */
int cu_metric(const char *text, const char *series, double *value);

/* Waits for the next publication of the metrics (they are rebuilt once a
 * second), then the value of `series` on 127.0.0.1:port; NAN when the
 * endpoint does not answer or the series is absent. */
double cu_metric_now(int port, const char *series);

/* Produces n_batches batches of n events for host index i alone (counted
 * in h like h_produce). */
void cu_produce_host(harness_t *h, uint32_t i, uint32_t n_batches, size_t n);

/* The partition the default producer partitioner sends a 16-byte host key to. */
int32_t cu_partition_of(const uint8_t key[16], int32_t partitions);

/* Another member joins the group until it has partitions, then leaves: two
 * rebalances, each revoking the collector's partitions and assigning them
 * again. 0, or -1 when it got no partition in 30 s. */
int cu_join_and_leave(harness_t *h, const char *group);

#endif
