/* bench ingest: synthetic events through the embedded cluster into the collector and its store, against the decode-only limit. */
#define _GNU_SOURCE
#include "bench_util.h"
#include "collector_int.h"
#include "edr/arena.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/event.h"
#include "edr/frame.h"
#include "edr/identity.h"
#include "edr/kafka.h"
#include "edr/log.h"
#include "edr/store.h"
#include "edr/synth.h"
#include "event_pack.h"

#include <dirent.h>
#include <getopt.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    size_t *off;
    size_t n, ncap;
} frames_t;

/* CPU seconds of every thread of this process: the collector's thread, its
 * Kafka client threads and RocksDB's background flushes and compactions. */
static double proc_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void frames_add(frames_t *f, const uint8_t *p, size_t n)
{
    if (f->len + n > f->cap) {
        f->cap = (f->cap + n) * 2;
        f->buf = realloc(f->buf, f->cap);
    }
    if (f->n == f->ncap) {
        f->ncap = f->ncap ? f->ncap * 2 : 1024;
        f->off = realloc(f->off, (f->ncap + 1) * sizeof(size_t));
    }
    memcpy(f->buf + f->len, p, n);
    f->off[f->n++] = f->len;
    f->len += n;
    f->off[f->n] = f->len;
}

/* A sensor would attach the image hash; synth does not, so derive a stable one from the path. */
static void fake_sha(const char *exe, uint8_t out[32])
{
    XXH128_hash_t a = XXH3_128bits(exe, strlen(exe));
    XXH128_hash_t b = XXH3_128bits_withSeed(exe, strlen(exe), 1);
    memcpy(out, &a, 16);
    memcpy(out + 16, &b, 16);
}

static void hexs(FILE *f, const uint8_t *p, size_t n)
{
    fputs("\\\\x", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

static void tsv_str(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\t')
            fputs("\\t", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\\')
            fputs("\\\\", f);
        else
            fputc(*s, f);
    }
}

struct run_arg {
    edr_collector_t *c;
    volatile sig_atomic_t stop;
    int rc;
};

static void *run_thread(void *p)
{
    pthread_setname_np(pthread_self(), "collector"); /* perf report --comm collector */
    struct run_arg *r = p;
    r->rc = edr_collector_run(r->c, &r->stop);
    return NULL;
}

typedef struct {
    uint8_t entity[16], sha[32], host[16];
    uint64_t t;
} target_t;

/* Query keys: a uniform sample (reservoir) of the processes started in the run. */
#define N_TARGETS 1000
static target_t targets[N_TARGETS];
static uint64_t n_seen_targets;

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), cmp_dbl);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static int count_hosts(const uint8_t h[16], uint64_t last, void *ud)
{
    (void)h;
    (void)last;
    (*(int *)ud)++;
    return 0;
}

static int count_anc(const Edr__V1__ProcessRecord *p, void *ud)
{
    (void)p;
    (*(int *)ud)++;
    return 0;
}
static int count_ev(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                    void *ud)
{
    (void)b;
    (void)e;
    (void)k;
    (*(int *)ud)++;
    return 0;
}

/* The three queries over every sampled target once, in random order. */
typedef struct {
    size_t n;
    double *anc, *ev, *hash; /* latencies, s */
    uint64_t n_anc, n_ev, n_hash;
} queries_t;

static void run_queries(edr_store_t *s, uint64_t *rng, queries_t *q)
{
    size_t nq = n_seen_targets < N_TARGETS ? (size_t)n_seen_targets : N_TARGETS;
    memset(q, 0, sizeof(*q));
    q->n = nq;
    q->anc = calloc(nq + 1, sizeof(double));
    q->ev = calloc(nq + 1, sizeof(double));
    q->hash = calloc(nq + 1, sizeof(double));
    for (size_t i = nq; i > 1; i--) { /* shuffle: no locality from the sampling order */
        size_t j = (size_t)(rng_next(rng) % i);
        target_t tmp = targets[i - 1];
        targets[i - 1] = targets[j];
        targets[j] = tmp;
    }
    for (size_t i = 0; i < nq; i++) {
        int c = 0;
        double q0 = now_s();
        edr_store_process_ancestry(s, targets[i].entity, 0, count_anc, &c);
        q->anc[i] = now_s() - q0;
        q->n_anc += (uint64_t)c;
        c = 0;
        q0 = now_s();
        edr_store_entity_events(s, targets[i].entity, targets[i].t,
                                targets[i].t + 3600ull * 1000000000ull, count_ev, &c);
        q->ev[i] = now_s() - q0;
        q->n_ev += (uint64_t)c;
        c = 0;
        q0 = now_s();
        edr_store_hash_hosts(s, targets[i].sha, count_hosts, &c);
        q->hash[i] = now_s() - q0;
        q->n_hash += (uint64_t)c;
    }
}

static void print_query_counts(const queries_t *q)
{
    double n = q->n ? (double)q->n : 1;
    printf("queries over %zu sampled processes: ancestry depth %.1f, %.1f events in a 1 h "
           "window, %.1f hosts per image hash (averages)\n",
           q->n, (double)q->n_anc / n, (double)q->n_ev / n, (double)q->n_hash / n);
}

static void print_query_results(queries_t *q)
{
    printf("RESULT query_ancestry_p50_us %.1f us\n", pct(q->anc, q->n, 0.50) * 1e6);
    printf("RESULT query_ancestry_p99_us %.1f us\n", pct(q->anc, q->n, 0.99) * 1e6);
    printf("RESULT query_process_events_p50_us %.1f us\n", pct(q->ev, q->n, 0.50) * 1e6);
    printf("RESULT query_process_events_p99_us %.1f us\n", pct(q->ev, q->n, 0.99) * 1e6);
    printf("RESULT query_hash_hosts_p50_us %.1f us\n", pct(q->hash, q->n, 0.50) * 1e6);
    printf("RESULT query_hash_hosts_p99_us %.1f us\n", pct(q->hash, q->n, 0.99) * 1e6);
    free(q->anc);
    free(q->ev);
    free(q->hash);
}

/* Offers one process to the reservoir of query targets (a uniform sample). */
static void sample_target(uint64_t *rng, const uint8_t entity[16], const uint8_t sha[32],
                          const uint8_t *host, uint64_t t)
{
    uint64_t slot = n_seen_targets < N_TARGETS ? n_seen_targets
                                               : rng_next(rng) % (n_seen_targets + 1);
    n_seen_targets++;
    if (slot >= N_TARGETS)
        return;
    target_t *tg = &targets[slot];
    memcpy(tg->entity, entity, 16);
    memcpy(tg->sha, sha, 32);
    if (host)
        memcpy(tg->host, host, 16);
    tg->t = t;
}

/* --query-store: targets sampled from a store's process records (those with
 * a parent and an image hash, as the ingest samples process starts), the
 * window from each one's start. */
static int sample_record(const Edr__V1__ProcessRecord *p, void *ud)
{
    if (p->entity_id.len == 16 && p->parent_entity_id.len == 16 && p->exe_sha256.len == 32)
        sample_target(ud, p->entity_id.data, p->exe_sha256.data,
                      p->host_id.len == 16 ? p->host_id.data : NULL, p->start_time_ns);
    return 0;
}

/* Re-measures the queries of an existing store (e.g. one kept with --store,
 * recompacted under other options) without producing or ingesting. */
static int query_store(const char *dir)
{
    char err[512];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    edr_store_t *s = edr_store_open(dir, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "bench_ingest: %s\n", err);
        return 1;
    }
    int rc = edr_store_processes(s, sample_record, &rng);
    edr_store_destroy(s);
    if (rc || !n_seen_targets) {
        fprintf(stderr, "bench_ingest: %s: %s\n", dir,
                rc ? edr_strerror(rc) : "no process records to query");
        return 1;
    }
    /* a reader opened afresh, as after an ingest */
    if (!(s = edr_store_open(dir, NULL, err, sizeof(err)))) {
        fprintf(stderr, "bench_ingest: %s\n", err);
        return 1;
    }
    queries_t qr;
    run_queries(s, &rng, &qr);
    edr_store_destroy(s);
    print_query_counts(&qr);
    print_query_results(&qr);
    return 0;
}

typedef struct {
    double from_start, from_first, cpu, proc_cpu; /* summed over the runs */
    uint64_t events, batches, writes, writes_saved;
    int rc;
} consumed_t;

/* The collector that consumes the chunks: one for the whole run, as a
 * deployed collector runs, unless --restart-chunks asks for a new one per
 * chunk (how the figures were measured before 2026-12-06: each restart
 * starts with cold caches, and about half the batches of a 2 M-event chunk
 * were their host's first since the restart, ~100 more entries a batch). */
static edr_collector_t *kept;

/* Closes the collector (consume() opens the next one): flushes its
 * memtables; returns the seconds it took. */
static double close_collector(void)
{
    double d0 = now_s();
    edr_collector_destroy(kept);
    kept = NULL;
    return now_s() - d0;
}

/* Runs the collector (starting one when none is open: it resumes from the
 * offsets its store shards hold) until it has committed `expect` more
 * events, then stops its thread; with restart, closes it too. The clock runs
 * from the first batch it stores to its last commit; the start-up before it
 * is reported apart (from_start). */
static int consume(edr_config_t *cfg, uint64_t expect, int restart, consumed_t *acc)
{
    char err[1024];
    edr_collector_opts_t co = {.assign_all = 1}; /* no group join between chunks */
    double c0 = now_s(), p0 = proc_cpu_s(), p_end = 0;
    if (!kept && !(kept = edr_collector_new(cfg, &co, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    edr_collector_t *col = kept;
    edr_collector_stats_t cs0, cs;
    edr_collector_stats(col, &cs0);
    double opened = now_s();
    struct run_arg ra = {col, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &ra);
    double first = 0;
    int rc = 0;
    for (;;) {
        usleep(2000);
        edr_collector_stats(col, &cs);
        if (!first && cs.batches > cs0.batches) first = now_s();
        if (cs.events - cs0.events >= expect && cs.last_commit > 0) {
            p_end = proc_cpu_s();
            break;
        }
        if (now_s() - c0 > 600) {
            fprintf(stderr, "collector stored only %llu of %llu events in 600 s\n",
                    (unsigned long long)(cs.events - cs0.events), (unsigned long long)expect);
            rc = -1;
            break;
        }
    }
    ra.stop = 1;
    pthread_join(th, NULL);
    edr_collector_stats(col, &cs);
    double closing = restart ? close_collector() : 0;
    uint64_t events = cs.events - cs0.events;
    double cpu = cs.cpu - cs0.cpu;
    fprintf(stderr,
            "# collector run: opened in %.3f s, first batch stored %.3f s after start, "
            "closed in %.3f s; %.0f events/s from the first batch, %.0f per CPU second\n",
            opened - c0, first ? first - c0 : 0, closing,
            first && cs.last_commit > first ? (double)events / (cs.last_commit - first) : 0,
            cpu > 0 ? (double)events / cpu : 0);
    acc->from_start += cs.last_commit - c0;
    acc->from_first += first ? cs.last_commit - first : 0;
    acc->cpu += cpu;
    acc->proc_cpu += p_end > p0 ? p_end - p0 : 0;
    acc->events += events;
    acc->batches += cs.batches - cs0.batches;
    acc->writes += cs.store_writes - cs0.store_writes;
    acc->writes_saved += cs.store_writes_saved - cs0.store_writes_saved;
    if (events != expect) {
        fprintf(stderr, "collector stored %llu events, expected %llu\n", (unsigned long long)events,
                (unsigned long long)expect);
        rc = -1;
    }
    return rc ? rc : ra.rc;
}

/* --dict: a dictionary trained on the compressed forms of 1,000 batches of
 * another synthetic fleet (seed 1, not the measured one's 2026), as an
 * operator would train one on a sample of a fleet's traffic (edr dict
 * train), written to dir/bench.zdict. Returns its id, or 0 after a message. */
static uint32_t train_dict(const char *dir, uint32_t hosts, uint32_t per_batch,
                           const edr_frame_opts_t *fo, edr_frame_ctx_t *enc, edr_frame_ctx_t *dec)
{
    edr_synth_opts_t so = {.hosts = hosts, .seed = 1};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_frame_ctx_t *tr = edr_frame_ctx_new(fo), *un = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    frames_t smp = {0};
    for (uint32_t i = 0; i < 1000; i++) {
        edr_arena_reset(&a);
        Edr__V1__EventBatch *b = edr_synth_next_batch(sy, i % hosts, per_batch, &a);
        const uint8_t *f, *form;
        size_t fl, forml;
        edr_frame_header_t h;
        if (!b || edr_frame_encode(tr, b, 0, &f, &fl) ||
            edr_frame_payload(un, f, fl, &form, &forml, &h))
            break;
        frames_add(&smp, form, forml);
    }
    size_t *lens = calloc(smp.n + 1, sizeof(size_t));
    for (size_t i = 0; lens && i < smp.n; i++)
        lens[i] = smp.off[i + 1] - smp.off[i];
    static uint8_t buf[112640];
    long dl = lens ? edr_dict_train(buf, sizeof(buf), smp.buf, lens, (unsigned)smp.n) : -1;
    uint32_t id = 0;
    char path[512];
    snprintf(path, sizeof(path), "%s/bench.zdict", dir);
    FILE *f = dl > 0 ? fopen(path, "wb") : NULL;
    edr_dict_t *d1 = dl > 0 ? edr_dict_new(buf, (size_t)dl, fo->zstd_level) : NULL,
               *d2 = dl > 0 ? edr_dict_new(buf, (size_t)dl, 0) : NULL;
    if (f && fwrite(buf, 1, (size_t)dl, f) == (size_t)dl && fclose(f) == 0 && d1 && d2 &&
        edr_frame_ctx_add_dict(enc, d1) == 0 && edr_frame_ctx_add_dict(dec, d2) == 0) {
        id = edr_dict_id(d1);
        fprintf(stderr, "dictionary: %ld bytes trained on %zu batches of another fleet, id %u\n",
                dl, smp.n, id);
    } else {
        fprintf(stderr, "cannot train or write the dictionary (%ld)\n", dl);
        if (f && !id)
            fclose(f);
    }
    free(lens);
    free(smp.buf);
    free(smp.off);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(tr);
    edr_frame_ctx_destroy(un);
    edr_synth_destroy(sy);
    return id;
}

int main(int argc, char **argv)
{
    uint64_t n_events = 2000000;
    uint32_t hosts = 1000, per_batch = 1000, n_partitions = 16;
    const char *peer_dir = NULL;
    char store[256] = "";
    int own_store = 0; /* made here: removed at the end */
    edr_frame_opts_t fo = {0};
    int use_dict = 0, old_decoder = 0, restart = 0;
    static const struct option opts[] = {{"dict", no_argument, 0, 'd'},
                                         {"events", required_argument, 0, 'n'},
                                         {"hosts", required_argument, 0, 'H'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"store", required_argument, 0, 's'},
                                         {"peer-dir", required_argument, 0, 'p'},
                                         {"partitions", required_argument, 0, 'P'},
                                         {"unsplit", no_argument, 0, 'u'},
                                         {"protobuf-c", no_argument, 0, 'j'},
                                         {"level", required_argument, 0, 'L'},
                                         {"query-store", required_argument, 0, 'Q'},
                                         {"restart-chunks", no_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "n:H:b:s:p:P:udjL:Q:R", opts, NULL)) != -1) {
        if (o == 'Q')
            return query_store(optarg);
        else if (o == 'L' && atoi(optarg) >= 1 && atoi(optarg) <= 19)
            fo.zstd_level = atoi(optarg); /* as the sensor's frame.zstd_level */
        else if (o == 'R')
            restart = 1; /* a new collector for each chunk (see `kept`) */
        else if (o == 'j')
            old_decoder = 1; /* the collector decodes as before pbunpack.c */
        else if (o == 'd')
            use_dict = 1; /* frames compressed with a trained dictionary (frame.dict_id) */
        else if (o == 'u')
            fo.unsplit = 1; /* frames as a sensor with frame.split=false sends them */
        else if (o == 'n')
            n_events = strtoull(optarg, NULL, 10);
        else if (o == 'H')
            hosts = (uint32_t)strtoul(optarg, NULL, 10);
        else if (o == 'b')
            per_batch = (uint32_t)strtoul(optarg, NULL, 10);
        else if (o == 's')
            snprintf(store, sizeof(store), "%s", optarg);
        else if (o == 'p')
            peer_dir = optarg;
        else if (o == 'P' && atoi(optarg) > 0)
            n_partitions = (uint32_t)atoi(optarg);
        else {
            fprintf(
                stderr,
                "usage: bench_ingest [--events N] [--hosts N] [--batch N] [--store DIR] "
                "[--peer-dir DIR] [--partitions N] [--unsplit] [--dict] [--protobuf-c] [--level N] "
                "[--restart-chunks] | --query-store DIR\n");
            return 2;
        }
    }
    edr_log_init("bench_ingest", EDR_LOG_WARN);
    edr__frame_direct_unpack = !old_decoder;
    if (!store[0]) {
        snprintf(store, sizeof(store), "/tmp/edr-bench-ingest-XXXXXX");
        if (!mkdtemp(store))
            return 1;
        own_store = 1;
    }
    char err[1024], setb[600];
    edr_config_t *cfg = edr_config_new();
    /* The embedded broker keeps only about 5 MB per partition. Events go in
     * chunks of at most 125,000 per partition (~2.5 MB at 20 B/event): each
     * chunk is produced while no collector runs, then a collector consumes
     * it as a backlog; the broker drops old, already stored messages as the
     * next chunk arrives. The store grows across chunks to the full size. */
    int parts = (int)n_partitions;
    uint64_t chunk = (uint64_t)parts * 125000;
    edr_kafka_cluster_t *cl = edr_kafka_cluster_new(cfg, 1, parts, err, sizeof(err));
    if (!cl) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(setb, sizeof(setb), "kafka.brokers=%s", edr_kafka_cluster_bootstraps(cl));
    char sstore[400];
    snprintf(sstore, sizeof(sstore), "collector.store_dir=%s", store);
    char dict_dir[64] = "", sdict[128] = "frame.dict_dir=";
    if (use_dict) {
        snprintf(dict_dir, sizeof(dict_dir), "/tmp/edr-bench-dict-XXXXXX");
        if (!mkdtemp(dict_dir))
            return 1;
        snprintf(sdict, sizeof(sdict), "frame.dict_dir=%s", dict_dir);
    }
    char *sets[] = {setb, sstore, "collector.retention=0", "collector.metrics_listen=off",
                    "collector.min_free_disk=64MiB", "log.level=warn", sdict};
    if (edr_config_load_standard(cfg, NULL, sets, 7))
        return 1;

    /* produce */
    char topic[128];
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    rd_kafka_t *prod = edr_kafka_producer_new(cfg, edr_kafka_cluster_bootstraps(cl), NULL, err,
                                              sizeof(err));
    edr_synth_opts_t so = {.hosts = hosts, .seed = 2026};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(&fo);
    edr_frame_ctx_t *dec = edr_frame_ctx_new(NULL);
    uint32_t dict_id = use_dict ? train_dict(dict_dir, hosts, per_batch, &fo, enc, dec) : 0;
    if (use_dict && !dict_id)
        return 1;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    frames_t fr = {0};
    FILE *fev = NULL, *fpr = NULL;
    if (peer_dir) {
        char p[512];
        snprintf(p, sizeof(p), "%s/events.tsv", peer_dir);
        fev = fopen(p, "w");
        snprintf(p, sizeof(p), "%s/procs.tsv", peer_dir);
        fpr = fopen(p, "w");
        if (!fev || !fpr) {
            fprintf(stderr, "cannot write into %s\n", peer_dir);
            return 1;
        }
    }
    uint64_t rng = 0x2545f4914f6cdd1dull;
    consumed_t consumed = {0};
    double t_produce = 0;
    uint64_t sent = 0, starts = 0;
    double t0 = now_s();
    for (uint32_t h = 0; sent < n_events; h = (h + 1) % hosts) {
        size_t n = n_events - sent < per_batch ? (size_t)(n_events - sent) : per_batch;
        Edr__V1__EventBatch *b = edr_synth_next_batch(sy, h, n, &a);
        for (size_t i = 0; i < b->n_events; i++) {
            Edr__V1__Event *e = b->events[i];
            uint64_t t = edr_event_time(b, e);
            if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_START) {
                uint8_t *sha = edr_arena_alloc(&a, 32);
                fake_sha(e->process_start->exe, sha);
                e->process_start->exe_sha256.data = sha;
                e->process_start->exe_sha256.len = 32;
                starts++;
                if (e->parent_entity_id.len == 16)
                    sample_target(&rng, e->entity_id.data, sha, b->sensor->host_id.data, t);
                if (fpr) {
                    Edr__V1__ProcessStart *ps = e->process_start;
                    hexs(fpr, e->entity_id.data, 16);
                    fputc('\t', fpr);
                    hexs(fpr, b->sensor->host_id.data, 16);
                    fprintf(fpr, "\t%u\t", e->pid);
                    if (e->parent_entity_id.len == 16)
                        hexs(fpr, e->parent_entity_id.data, 16);
                    else
                        fputs("\\N", fpr);
                    fputc('\t', fpr);
                    tsv_str(fpr, ps->exe);
                    fputc('\t', fpr);
                    for (size_t k = 0; k < ps->n_argv; k++) {
                        if (k)
                            fputc(' ', fpr);
                        tsv_str(fpr, ps->argv[k]);
                    }
                    fputc('\t', fpr);
                    hexs(fpr, sha, 32);
                    fprintf(fpr, "\t%llu\n", (unsigned long long)t);
                }
            }
            if (fev) {
                const char *path = NULL;
                char remote[64] = "";
                switch (e->body_case) {
                case EDR__V1__EVENT__BODY_FILE_CREATE: path = e->file_create->path; break;
                case EDR__V1__EVENT__BODY_FILE_WRITE: path = e->file_write->path; break;
                case EDR__V1__EVENT__BODY_FILE_DELETE: path = e->file_delete->path; break;
                case EDR__V1__EVENT__BODY_FILE_RENAME: path = e->file_rename->new_path; break;
                case EDR__V1__EVENT__BODY_FILE_EXEC: path = e->file_exec->path; break;
                case EDR__V1__EVENT__BODY_PROCESS_START: path = e->process_start->exe; break;
                case EDR__V1__EVENT__BODY_NETWORK:
                    if (e->network->remote && e->network->remote->ip.len == 4) {
                        const uint8_t *ip = e->network->remote->ip.data;
                        snprintf(remote, sizeof(remote), "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
                    }
                    break;
                default: break;
                }
                hexs(fev, b->sensor->host_id.data, 16);
                fprintf(fev, "\t%llu\t", (unsigned long long)t);
                hexs(fev, e->entity_id.data, e->entity_id.len);
                fprintf(fev, "\t%u\t%s\t", e->pid, edr_event_kind_name(e->body_case));
                if (path)
                    tsv_str(fev, path);
                else
                    fputs("\\N", fev);
                fprintf(fev, "\t%s\n", remote[0] ? remote : "\\N");
            }
        }
        const uint8_t *f;
        size_t fl;
        if (edr_frame_encode(enc, b, dict_id, &f, &fl))
            return 1;
        frames_add(&fr, f, fl);
        while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_KEY(b->sensor->host_id.data, 16),
                                 RD_KAFKA_V_VALUE((void *)f, fl),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
        rd_kafka_poll(prod, 0);
        sent += b->n_events;
        edr_arena_reset(&a);
        if (sent - consumed.events >= chunk || sent == n_events) {
            if (rd_kafka_flush(prod, 120000))
                return 1;
            t_produce += now_s() - t0;
            /* the peers' files are written out before the collector runs:
             * their writeback (~150 B an event) must not share its window,
             * nor their pages the page cache (the ext4 journal commit and
             * reclaim of ~1.5 GB of them at 10 M events slowed the collector
             * by a fifth: bench_ingest with and without --peer-dir) */
            if ((fev && (fflush(fev) || fdatasync(fileno(fev)))) ||
                (fpr && (fflush(fpr) || fdatasync(fileno(fpr))))) {
                fprintf(stderr, "cannot write the peers' files in %s\n", peer_dir);
                return 1;
            }
            if (fev) {
                syncfs(fileno(fev));
                posix_fadvise(fileno(fev), 0, 0, POSIX_FADV_DONTNEED);
                posix_fadvise(fileno(fpr), 0, 0, POSIX_FADV_DONTNEED);
            }
            if (consume(cfg, sent - consumed.events, restart, &consumed)) return 1;
            t0 = now_s();
        }
    }
    if (kept) fprintf(stderr, "# collector closed in %.3f s\n", close_collector());
    rd_kafka_destroy(prod);
    if (fev)
        fclose(fev);
    if (fpr)
        fclose(fpr);
    fprintf(stderr, "produced %llu events (%zu frames, %.1f B/event on the wire) in %.1f s\n",
            (unsigned long long)sent, fr.n, (double)fr.len / (double)sent, t_produce);

    /* decode-only limit: decompress + decode of the same frames, one core */
    uint64_t dec_events = 0;
    double d0 = now_s(), dc0 = thread_cpu_s();
    for (size_t i = 0; i < fr.n; i++) {
        Edr__V1__EventBatch *b;
        if (edr_frame_decode(dec, fr.buf + fr.off[i], fr.off[i + 1] - fr.off[i], &b) == 0)
            dec_events += b->n_events;
    }
    double dec_rate = (double)dec_events / (now_s() - d0);
    double dec_rate_cpu = (double)dec_events / (thread_cpu_s() - dc0);
    /* the same through the join and protobuf-c's unpack, the decoder every
     * split frame went through before the direct unpack (pbsplit_unpack.c):
     * the limit earlier ratios were measured against */
    uint64_t joined_events = 0;
    edr__frame_direct_unpack = 0;
    d0 = now_s();
    for (size_t i = 0; i < fr.n; i++) {
        Edr__V1__EventBatch *b;
        if (edr_frame_decode(dec, fr.buf + fr.off[i], fr.off[i + 1] - fr.off[i], &b) == 0)
            joined_events += b->n_events;
    }
    double joined_rate = (double)joined_events / (now_s() - d0);
    edr__frame_direct_unpack = !old_decoder;
    edr_frame_ctx_destroy(dec);

    edr_collector_stats_t cs = {.events = consumed.events, .batches = consumed.batches,
                                .cpu = consumed.cpu};
    double rate_start = (double)cs.events / consumed.from_start;
    double rate_steady = consumed.from_first > 0 ? (double)cs.events / consumed.from_first : 0;
    double rate_cpu = cs.cpu > 0 ? (double)cs.events / cs.cpu : 0;

    /* compaction, size */
    uint64_t disk = 0, cf_bytes[16] = {0}, cf_keys[16] = {0};
    const char *cf_names[16] = {0};
    size_t n_cf = 0;
    DIR *d = opendir(store);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        unsigned sh;
        if (sscanf(de->d_name, "shard-%u", &sh) != 1)
            continue;
        edr_store_writer_t *w = edr_store_writer_open(store, sh, NULL, err, sizeof(err));
        if (!w)
            continue;
        edr_store_writer_compact(w);
        edr_store_cf_stat_t cst[16];
        size_t ncf = edr_store_writer_cf_stats(w, cst, 16);
        for (size_t i = 0; i < ncf; i++) {
            cf_bytes[i] += cst[i].sst_bytes;
            cf_keys[i] += cst[i].keys;
            cf_names[i] = cst[i].name;
        }
        n_cf = ncf;
        edr_store_writer_destroy(w);
    }
    if (d)
        closedir(d);
    enum { CFI_BLOCKS = 1 }; /* edr_store_writer_cf_stats order: default, blocks, ... */
    edr_store_opts_t sro = {.dict_dir = dict_dir[0] ? dict_dir : NULL};
    edr_store_t *s = edr_store_open(store, &sro, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    edr_store_stats_t st;
    edr_store_stats(s, &st);
    disk = st.disk_bytes;

    /* queries: each over every sampled key once, in random order */
    queries_t qr;
    run_queries(s, &rng, &qr);
    size_t nq = qr.n;
    edr_store_destroy(s);
    printf("collector: %llu events in %llu batches; %.2f s from start (collector start-up included), "
           "%.2f s from first batch; consuming thread %.2f s CPU\n",
           (unsigned long long)cs.events, (unsigned long long)cs.batches, consumed.from_start,
           consumed.from_first, cs.cpu);
    printf("store: %llu blocks, %llu bytes on disk after compaction; frames %llu bytes\n",
           (unsigned long long)st.blocks, (unsigned long long)disk,
           (unsigned long long)st.frame_bytes);
    print_query_counts(&qr);
    printf("RESULT ingest_events_per_s %.0f events/s\n", rate_steady);
    printf("RESULT ingest_events_per_s_from_start %.0f events/s\n", rate_start);
    printf("RESULT ingest_events_per_cpu_s %.0f events/s\n", rate_cpu);
    printf("RESULT ingest_events_per_process_cpu_s %.0f events/s\n",
           consumed.proc_cpu > 0 ? (double)cs.events / consumed.proc_cpu : 0);
    printf("RESULT decode_only_events_per_s %.0f events/s\n", dec_rate);
    printf("RESULT ingest_ratio_to_decode %.2f ratio\n", rate_steady / dec_rate);
    printf("RESULT decode_joined_events_per_s %.0f events/s\n", joined_rate);
    printf("RESULT ingest_ratio_to_joined_decode %.2f ratio\n", rate_steady / joined_rate);
    /* The same on CPU time (consuming thread against the decoding thread):
     * steadier than wall time while compactions share the cores, and the
     * store's own cost per 1,000 events, which a faster or slower decoder
     * does not move. */
    if (rate_cpu > 0 && dec_rate_cpu > 0) {
        printf("RESULT decode_only_events_per_cpu_s %.0f events/s\n", dec_rate_cpu);
        printf("RESULT ingest_ratio_to_decode_cpu %.2f ratio\n", rate_cpu / dec_rate_cpu);
        printf("RESULT store_cpu_us_per_1000_events %.0f us\n",
               1e9 / rate_cpu - 1e9 / dec_rate_cpu);
    }
    /* RocksDB entries per stored batch: the store's work, free of the machine's noise */
    printf("RESULT store_writes_per_batch %.1f entries\n",
           consumed.batches ? (double)consumed.writes / (double)consumed.batches : 0.0);
    printf("RESULT store_writes_saved_per_batch %.1f entries\n",
           consumed.batches ? (double)consumed.writes_saved / (double)consumed.batches : 0.0);
    printf("RESULT store_bytes_per_event %.2f B/event\n", (double)disk / (double)cs.events);
    printf("RESULT wire_bytes_per_event %.2f B/event\n", (double)fr.len / (double)sent);
    uint64_t sst_total = 0;
    for (size_t i = 0; i < n_cf; i++) {
        sst_total += cf_bytes[i];
        printf("RESULT store_cf_%s_bytes_per_event %.2f B/event\n", cf_names[i],
               (double)cf_bytes[i] / (double)cs.events);
        printf("RESULT store_cf_%s_keys_per_batch %.1f keys\n", cf_names[i],
               (double)cf_keys[i] / (double)(cs.batches ? cs.batches : 1));
    }
    printf("RESULT store_other_files_bytes_per_event %.2f B/event\n",
           (double)(disk > sst_total ? disk - sst_total : 0) / (double)cs.events);
    printf("RESULT store_events %llu events\n", (unsigned long long)cs.events);
    printf("RESULT store_index_bytes_per_event %.2f B/event\n",
           (double)(sst_total - (n_cf > CFI_BLOCKS ? cf_bytes[CFI_BLOCKS] : 0)) / (double)cs.events);
    if (peer_dir) { /* the peers time the same keys */
        char p[512];
        snprintf(p, sizeof(p), "%s/targets", peer_dir);
        FILE *f = fopen(p, "w");
        for (size_t i = 0; f && i < nq; i++) {
            char hx[65], hy[65];
            fprintf(f, "%s %s %llu %llu\n", edr_hex(targets[i].entity, 16, hy),
                    edr_hex(targets[i].sha, 32, hx), (unsigned long long)targets[i].t,
                    (unsigned long long)(targets[i].t + 3600ull * 1000000000ull));
        }
        if (f)
            fclose(f);
    }
    print_query_results(&qr);
    edr_kafka_cluster_destroy(cl);
    edr_synth_destroy(sy);
    edr_frame_ctx_destroy(enc);
    edr_arena_close(&a);
    free(fr.buf);
    free(fr.off);
    edr_config_destroy(cfg);
    if (own_store)
        bench_rm_tree(store);
    if (dict_dir[0])
        bench_rm_tree(dict_dir);
    return 0;
}
