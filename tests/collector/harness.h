/* Collector test harness: an embedded cluster in the test process, synthetic producers, the collector as a child process, store verification. */
#ifndef EDR_TEST_COLLECTOR_HARNESS_H
#define EDR_TEST_COLLECTOR_HARNESS_H

#include "edr/arena.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/kafka.h"
#include "edr/log.h"
#include "edr/store.h"
#include "edr/synth.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct harness {
    edr_config_t *cfg;
    edr_kafka_cluster_t *cl;
    rd_kafka_t *prod;
    char boot[512];
    char store[128];
    char topic[128];
    edr_synth_t *synth;
    uint32_t hosts;
    uint64_t produced_events, produced_starts, produced_batches;
    /* messages the producer gave up on (counted as produced when queued): a
     * batch the collector cannot have stored, told apart from one it lost */
    volatile uint64_t failed_deliveries;
} harness_t;

static inline double h_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int h_rm(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static inline void h_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (!m->err)
        return;
    ((harness_t *)opaque)->failed_deliveries++;
    fprintf(stderr, "produce: delivery to partition %d failed: %s\n", (int)m->partition,
            rd_kafka_err2str(m->err));
}

/* (Re)makes the harness's producer from h->cfg, counting failed deliveries:
 * call it again after changing kafka.* settings. */
static inline void h_producer_new(harness_t *h)
{
    char err[512];
    if (h->prod)
        rd_kafka_destroy(h->prod);
    rd_kafka_conf_t *pc = edr_kafka_conf_new(h->cfg, h->boot, err, sizeof(err));
    if (!pc)
        abort();
    rd_kafka_conf_set_dr_msg_cb(pc, h_dr);
    rd_kafka_conf_set_opaque(pc, h);
    h->prod = edr_kafka_producer_new(h->cfg, h->boot, pc, err, sizeof(err));
    if (!h->prod) {
        fprintf(stderr, "producer: %s\n", err);
        abort();
    }
}

/* Starts a cluster and a producer; makes a fresh store directory. */
static inline void h_start(harness_t *h, int brokers, int partitions, uint32_t hosts)
{
    char err[512];
    memset(h, 0, sizeof(*h));
    edr_log_init("test", EDR_LOG_WARN);
    h->cfg = edr_config_new();
    h->cl = edr_kafka_cluster_new(h->cfg, brokers, partitions, err, sizeof(err));
    if (!h->cl) {
        fprintf(stderr, "cluster: %s\n", err);
        abort();
    }
    snprintf(h->boot, sizeof(h->boot), "%s", edr_kafka_cluster_bootstraps(h->cl));
    edr_topic_name(h->cfg, EDR_TOPIC_TELEMETRY, h->topic, sizeof(h->topic));
    h_producer_new(h);
    snprintf(h->store, sizeof(h->store), "/tmp/edr-test-collector-XXXXXX");
    if (!mkdtemp(h->store))
        abort();
    h->hosts = hosts;
    edr_synth_opts_t so = {.hosts = hosts, .seed = 11};
    h->synth = edr_synth_new(&so);
}

static inline void h_stop(harness_t *h)
{
    rd_kafka_destroy(h->prod);
    edr_kafka_cluster_destroy(h->cl);
    edr_synth_destroy(h->synth);
    edr_config_destroy(h->cfg);
    nftw(h->store, h_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void h_produce_raw(harness_t *h, const void *key, size_t kl, const void *val,
                                 size_t vl)
{
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(h->prod, RD_KAFKA_V_TOPIC(h->topic), RD_KAFKA_V_KEY(key, kl),
                                  RD_KAFKA_V_VALUE((void *)val, vl),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(h->prod, 10);
    if (e) {
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
        abort();
    }
    rd_kafka_poll(h->prod, 0);
}

/* Queues `rounds` batches of n events for every host (round robin) in the
 * producer, without waiting for their delivery. */
static inline void h_produce_queued(harness_t *h, uint32_t rounds, size_t n)
{
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    for (uint32_t r = 0; r < rounds; r++)
        for (uint32_t i = 0; i < h->hosts; i++) {
            Edr__V1__EventBatch *b = edr_synth_next_batch(h->synth, i, n, &a);
            const uint8_t *fr;
            size_t fl;
            if (!b || edr_frame_encode(enc, b, 0, &fr, &fl))
                abort();
            for (size_t e = 0; e < b->n_events; e++)
                if (b->events[e]->body_case == EDR__V1__EVENT__BODY_PROCESS_START)
                    h->produced_starts++;
            h->produced_events += b->n_events;
            h->produced_batches++;
            h_produce_raw(h, b->sensor->host_id.data, 16, fr, fl);
            edr_arena_reset(&a);
        }
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
}

/* Produces `rounds` batches of n events for every host (round robin) and
 * waits until Kafka has them. */
static inline void h_produce(harness_t *h, uint32_t rounds, size_t n)
{
    h_produce_queued(h, rounds, n);
    if (rd_kafka_flush(h->prod, 60000))
        abort();
}

/* Reads the dead-letter topic from the start, as consumer group `group`,
 * until `expect` messages came and quiet_s more seconds passed (to see that
 * no extra copy follows), or timeout seconds; on (may be NULL) sees each.
 * Returns how many were read. */
static inline int h_read_deadletters(harness_t *h, const char *group, int expect, double quiet_s,
                                     double timeout,
                                     void (*on)(const rd_kafka_message_t *m, void *ud), void *ud)
{
    char err[512], topic[128];
    edr_topic_name(h->cfg, EDR_TOPIC_DEADLETTER, topic, sizeof(topic));
    rd_kafka_t *c = edr_kafka_consumer_new(h->cfg, h->boot, group, NULL, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "dead-letter reader: %s\n", err);
        return -1;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    int n = 0;
    double t0 = h_now(), quiet_until = 0;
    while (h_now() - t0 < timeout && (n < expect || h_now() < quiet_until)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (!m->err) {
            if (on)
                on(m, ud);
            if (++n == expect)
                quiet_until = h_now() + quiet_s;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

/* Starts build/bin/edr-collector (or $EDR_TEST_COLLECTOR) with the harness's brokers and store and
 * extra "--set" values (NULL-terminated). */
static inline pid_t h_collector(harness_t *h, const char *store, const char *group,
                                double idle_s, const char *const *sets)
{
    char idle[32];
    snprintf(idle, sizeof(idle), "%g", idle_s);
    const char *argv[64];
    int n = 0;
    /* a build of it with test hooks (tests/collector/failflush_main.c) */
    const char *bin = getenv("EDR_TEST_COLLECTOR");
    argv[n++] = bin ? bin : EDR_BIN_DIR "/edr-collector";
    argv[n++] = "--brokers";
    argv[n++] = h->boot;
    argv[n++] = "--store";
    argv[n++] = store;
    if (group) {
        argv[n++] = "--group";
        argv[n++] = group;
    }
    argv[n++] = "--set";
    argv[n++] = "collector.retention=0";
    argv[n++] = "--set";
    argv[n++] = "collector.metrics_listen=off";
    argv[n++] = "--set";
    argv[n++] = "collector.min_free_disk=1MiB";
    argv[n++] = "--set";
    argv[n++] = "kafka.properties.session.timeout.ms=2500";
    argv[n++] = "--set";
    argv[n++] = "kafka.properties.heartbeat.interval.ms=300";
    argv[n++] = "--set";
    argv[n++] = "log.level=warn";
    if (idle_s > 0) {
        argv[n++] = "--exit-when-idle";
        argv[n++] = idle;
    }
    if (!group) {
        argv[n++] = "--assign-all";
        group = "unused";
    }
    for (int i = 0; sets && sets[i] && n < 60; i++) {
        argv[n++] = "--set";
        argv[n++] = sets[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test that aborted */
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits for a child up to timeout seconds (then kills it); returns its exit code or -1. */
static inline int h_wait(pid_t pid, double timeout)
{
    double t0 = h_now();
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (h_now() - t0 > timeout) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(20000);
    }
}

typedef struct {
    uint64_t *seqs;
    size_t n, cap;
} seqs_t;

static inline int h_seq_cb(const edr_block_info_t *bi, void *ud)
{
    seqs_t *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->seqs = realloc(s->seqs, s->cap * sizeof(uint64_t));
    }
    s->seqs[s->n++] = bi->key.seq;
    return 0;
}

static inline int h_exec_cb(const Edr__V1__ProcessRecord *p, void *ud)
{
    *(uint64_t *)ud += p->exec_count;
    return 0;
}

/* A consumer reading every partition of topic from the beginning, without a
 * group join (assigned partitions); NULL when it cannot be made. */
static inline rd_kafka_t *h_topic_reader(harness_t *h, const char *topic)
{
    char err[512];
    rd_kafka_t *c = edr_kafka_consumer_new(h->cfg, h->boot, "test-reader", NULL, err, sizeof(err));
    const struct rd_kafka_metadata *md = NULL;
    if (!c || rd_kafka_metadata(c, 0, NULL, &md, 10000) || !md) {
        fprintf(stderr, "read %s: %s\n", topic, c ? "no metadata" : err);
        if (c)
            rd_kafka_destroy(c);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(64);
    for (int t = 0; t < md->topic_cnt; t++)
        if (!strcmp(md->topics[t].topic, topic))
            for (int i = 0; i < md->topics[t].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(l, topic, md->topics[t].partitions[i].id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    return c;
}

/* Says where batch (host id, seq) sits in the telemetry topic, reading every
 * partition from the beginning without a group: "at partition P offset O"
 * (each copy), or that the log does not hold it. Tells a batch the collector
 * lost from one the cluster never held. */
static inline void h_log_locate(harness_t *h, const uint8_t id[16], uint64_t seq)
{
    rd_kafka_t *c = h_topic_reader(h, h->topic);
    if (!c) {
        fprintf(stderr, "verify:   (cannot read the topic)\n");
        return;
    }
    edr_frame_ctx_t *dec = edr_frame_ctx_new(NULL);
    int found = 0;
    double last = h_now();
    while (h_now() - last < 2.0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        Edr__V1__EventBatch *b;
        if (!m->err && m->key_len == 16 && !memcmp(m->key, id, 16) &&
            !edr_frame_decode(dec, m->payload, m->len, &b) && b->seq == seq) {
            fprintf(stderr, "verify:   seq %llu is in the log at partition %d offset %lld\n",
                    (unsigned long long)seq, (int)m->partition, (long long)m->offset);
            found++;
        }
        if (!m->err) last = h_now();
        rd_kafka_message_destroy(m);
    }
    if (!found)
        fprintf(stderr, "verify:   seq %llu is not in the log\n", (unsigned long long)seq);
    edr_frame_ctx_destroy(dec);
    rd_kafka_destroy(c);
}

/* Checks the store holds every produced (host, seq) exactly once: host i has
 * seqs 1..per_host[i] once each across all shards, the event count matches,
 * and every process start was applied once (exec counts add up). Returns the
 * number of problems, printed. */
static inline int h_verify_hosts(harness_t *h, const char *store, const uint32_t *per_host)
{
    char err[512];
    int bad = 0;
    edr_store_t *s = edr_store_open(store, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "verify: %s\n", err);
        return 1;
    }
    edr_store_stats_t st;
    if (edr_store_stats(s, &st)) {
        edr_store_destroy(s);
        return 1;
    }
    if (st.blocks != h->produced_batches || st.events != h->produced_events) {
        fprintf(stderr,
                "verify: %llu blocks / %llu events stored, %llu / %llu produced (%llu messages "
                "the producer failed to deliver)\n",
                (unsigned long long)st.blocks, (unsigned long long)st.events,
                (unsigned long long)h->produced_batches, (unsigned long long)h->produced_events,
                (unsigned long long)h->failed_deliveries);
        bad++;
    }
    for (uint32_t i = 0; i < h->hosts; i++) {
        uint8_t id[16];
        edr_synth_host_id(h->synth, i, id);
        seqs_t q = {0};
        edr_store_host_blocks(s, id, 0, 0, h_seq_cb, &q);
        uint8_t *seen = calloc(per_host[i] + 1, 1);
        int ok = seen && q.n == per_host[i];
        for (size_t k = 0; ok && k < q.n; k++) {
            ok = q.seqs[k] >= 1 && q.seqs[k] <= per_host[i] && !seen[q.seqs[k]];
            if (ok) seen[q.seqs[k]] = 1;
        }
        if (!ok && bad < 10) {
            fprintf(stderr, "verify: host %u has %zu blocks, want seqs 1..%u once each; missing:", i,
                    q.n, per_host[i]);
            if (seen) {
                memset(seen, 0, per_host[i] + 1);
                for (size_t k = 0; k < q.n; k++)
                    if (q.seqs[k] >= 1 && q.seqs[k] <= per_host[i])
                        seen[q.seqs[k]] = 1;
                for (uint32_t k = 1, shown = 0; k <= per_host[i] && shown < 8; k++)
                    if (!seen[k]) {
                        fprintf(stderr, " %u", k);
                        shown++;
                    }
            }
            fprintf(stderr, "\n");
            for (uint32_t k = 1, shown = 0; seen && k <= per_host[i] && shown < 2; k++)
                if (!seen[k]) {
                    h_log_locate(h, id, k);
                    shown++;
                }
            bad++;
        }
        free(seen);
        free(q.seqs);
    }
    uint64_t execs = 0;
    edr_store_processes(s, h_exec_cb, &execs);
    if (execs != h->produced_starts) {
        fprintf(stderr, "verify: process records count %llu execs, %llu were produced\n",
                (unsigned long long)execs, (unsigned long long)h->produced_starts);
        bad++;
    }
    edr_store_destroy(s);
    return bad;
}

/* h_verify_hosts with the same number of rounds for every host. */
static inline int h_verify(harness_t *h, const char *store, uint32_t rounds)
{
    uint32_t *per_host = malloc(h->hosts * sizeof(*per_host));
    if (!per_host)
        return 1;
    for (uint32_t i = 0; i < h->hosts; i++)
        per_host[i] = rounds;
    int bad = h_verify_hosts(h, store, per_host);
    free(per_host);
    return bad;
}

#endif
