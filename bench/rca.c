/* Benchmark: root-cause analysis through a RocksDB store of synthetic fleet telemetry with embedded attack chains and ground truth; the in-memory graph is the peer. */
#define _GNU_SOURCE
#include "bench_util.h"
#include "edr/arena.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/graph.h"
#include "edr/store.h"
#include "edr/synth.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: the machine is shared, and wall time also
 * counts the time the thread waited for a core. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int truth_match(const edr_synth_truth_t *t, const edr_graph_node_info_t *in)
{
    if (memcmp(t->host_id, in->host_id, 16))
        return 0;
    return (t->kind == 1 && in->kind == EDR_NODE_PROCESS && !memcmp(t->entity_id, in->entity_id, 16)) ||
           (t->kind == 2 && in->kind == EDR_NODE_FILE && !strcmp(t->path, in->path)) ||
           (t->kind == 3 && in->kind == EDR_NODE_REMOTE && in->ip_len == 4 && !memcmp(t->ip, in->ip, 4));
}

/* Scores of one family of analyses (store or in-memory). */
typedef struct {
    double *lat;
    size_t runs, root_ok, chain_n, chain_tp, truth_n, truth_tp, misses;
    double edges_before, edges_after, hops, events_loaded, load_s;
} score_t;

static void score(score_t *sc, const edr_graph_t *g, const edr_rca_t *r, const edr_synth_attack_t *at,
                  double ms, int verbose)
{
    sc->lat[sc->runs++] = ms;
    edr_graph_node_info_t in;
    edr_graph_node(g, r->root, &in);
    if ((int)r->cls == at->root_class &&
        (at->root.kind == 1 ? !memcmp(in.entity_id, at->root.entity_id, 16) : !strcmp(in.path, at->root.path)))
        sc->root_ok++;
    size_t tp = 0, found = 0;
    for (size_t k = 0; k < r->n_chain; k++) {
        edr_graph_node(g, r->chain[k].node, &in);
        for (size_t i = 0; i < at->n_truth; i++)
            if (truth_match(&at->truth[i], &in)) {
                tp++;
                break;
            }
    }
    for (size_t i = 0; i < at->n_truth; i++)
        for (size_t k = 0; k < r->n_chain; k++) {
            edr_graph_node(g, r->chain[k].node, &in);
            if (truth_match(&at->truth[i], &in)) {
                found++;
                break;
            }
        }
    if ((tp < r->n_chain || found < at->n_truth) && verbose)
        fprintf(stderr, "# attack kind %d depth %u: chain %zu (%zu true), truth %zu found %zu: %s\n",
                at->spec.kind, at->spec.depth, r->n_chain, tp, at->n_truth, found, r->reason);
    sc->misses += found < at->n_truth;
    sc->chain_tp += tp;
    sc->chain_n += r->n_chain;
    sc->truth_n += at->n_truth;
    sc->truth_tp += found;
    sc->edges_before += (double)r->edges_unpruned;
    sc->edges_after += (double)r->edges_back; /* the same walk, pruned */
}

static void report(const char *pfx, score_t *sc)
{
    qsort(sc->lat, sc->runs, sizeof(double), cmp_d);
    double n = sc->runs ? (double)sc->runs : 1;
    double p50 = sc->runs ? sc->lat[sc->runs / 2] : 0;
    double p99 = sc->runs ? sc->lat[(size_t)((double)(sc->runs - 1) * 0.99)] : 0;
    printf("RESULT %slatency_p50 %.3f ms\n", pfx, p50);
    printf("RESULT %slatency_p99 %.3f ms\n", pfx, p99);
    printf("RESULT %ssubgraph_edges_unpruned_avg %.1f edges\n", pfx, sc->edges_before / n);
    printf("RESULT %ssubgraph_edges_pruned_avg %.1f edges\n", pfx, sc->edges_after / n);
    printf("RESULT %sroot_accuracy %.3f ratio\n", pfx, (double)sc->root_ok / n);
    printf("RESULT %schain_precision %.4f ratio\n", pfx, sc->chain_n ? (double)sc->chain_tp / (double)sc->chain_n : 0);
    printf("RESULT %schain_recall %.4f ratio\n", pfx, sc->truth_n ? (double)sc->truth_tp / (double)sc->truth_n : 0);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_rca [--events N (10000000)] [--hosts N (1000)] [--attacks N (100)]\n"
                    "                 [--shards N (4)] [--store DIR (a temporary one, removed)] [--keep]\n"
                    "                 [--check]   exit 1 unless recall is 1.0, precision >= 0.95 and every root is right\n");
}

int main(int argc, char **argv)
{
    uint64_t events = 10000000;
    uint32_t hosts = 1000, attacks = 100, batch = 100, shards = 4;
    const char *store_arg = NULL;
    int keep = 0, check = 0, rc = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--hosts") && i + 1 < argc)
            hosts = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--attacks") && i + 1 < argc)
            attacks = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--shards") && i + 1 < argc)
            shards = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--store") && i + 1 < argc)
            store_arg = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else if (!strcmp(argv[i], "--check"))
            check = 1;
        else {
            usage();
            return 2;
        }
    }
    if (hosts < 2 || attacks * 2 > hosts || !shards || shards > 64) {
        fprintf(stderr, "bench_rca: need at least two hosts per attack and 1..64 shards\n");
        return 2;
    }
    char dir[4096];
    if (store_arg)
        snprintf(dir, sizeof(dir), "%s", store_arg);
    else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/edr-bench-rca-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("bench_rca: mkdtemp");
            return 1;
        }
    }
    mkdir(dir, 0700);
    chmod(dir, 0700);

    edr_synth_opts_t so = {.hosts = hosts, .seed = 2026};
    edr_synth_t *s = edr_synth_new(&so);
    edr_graph_t *g = edr_graph_new();
    edr_frame_ctx_t *fc = edr_frame_ctx_new(NULL);
    edr_store_writer_t *w[64] = {0};
    edr_store_t *st = NULL;
    double *lat_store = NULL, *lat_mem = NULL;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    if (!s || !g || !fc)
        goto out;
    /* the collector's store writer, one shard per partition (host % shards) */
    for (uint32_t i = 0; i < shards; i++) {
        char err[256];
        edr_store_opts_t wo = {.sync = 0};
        w[i] = edr_store_writer_open(dir, i, &wo, err, sizeof(err));
        if (!w[i]) {
            fprintf(stderr, "bench_rca: %s\n", err);
            goto out;
        }
    }
    uint64_t per_host = events / hosts;
    /* attacks on distinct hosts, starting somewhere in the middle of each host's stream */
    for (uint32_t i = 0; i < attacks; i++) {
        edr_synth_attack_spec_t sp = {.kind = (edr_synth_attack_kind_t)(1 + i % 3),
                                      .host = i * 2,
                                      .target_host = i * 2 + 1,
                                      .depth = 1 + (i * 7) % 8,
                                      .after_events = per_host / 4 + (i * 7919) % (per_host / 3 + 1)};
        if (edr_synth_add_attack(s, &sp) < 0) {
            fprintf(stderr, "bench_rca: cannot plan attack %u\n", i);
            goto out;
        }
    }
    double t_gen = 0, t_build = 0, t_enc = 0, t_store = 0, t0, t1, t2, t3, c_build = 0, c1;
    uint64_t done = 0, frame_bytes = 0, n_batches = 0;
    uint32_t pending[64] = {0};
    for (uint32_t h = 0; done < events || h < hosts; h++) {
        uint32_t hh = h % hosts;
        t0 = now_s();
        Edr__V1__EventBatch *b = h < hosts ? edr_synth_seed_batch(s, hh, &a) : edr_synth_next_batch(s, hh, batch, &a);
        c1 = thread_cpu_s();
        t1 = now_s();
        if (!b || edr_graph_add_batch(g, b) != 0) {
            fprintf(stderr, "bench_rca: out of memory at %llu events\n", (unsigned long long)done);
            goto out;
        }
        t2 = now_s();
        c_build += thread_cpu_s() - c1;
        const uint8_t *f;
        size_t fl;
        if (edr_frame_encode(fc, b, 0, &f, &fl) != 0) {
            fprintf(stderr, "bench_rca: frame encode failed\n");
            goto out;
        }
        t3 = now_s();
        uint32_t sh = hh % shards;
        if (edr_store_writer_add(w[sh], f, fl, b) < 0 ||
            (++pending[sh] >= 64 && edr_store_writer_commit(w[sh]) != 0)) {
            fprintf(stderr, "bench_rca: store write failed\n");
            goto out;
        }
        if (pending[sh] >= 64)
            pending[sh] = 0;
        t_store += now_s() - t3;
        t_enc += t3 - t2;
        t_build += t2 - t1;
        t_gen += t1 - t0;
        done += b->n_events;
        frame_bytes += fl;
        n_batches++;
        edr_arena_reset(&a);
    }
    t0 = now_s();
    uint64_t disk = 0;
    for (uint32_t i = 0; i < shards; i++) {
        if (edr_store_writer_commit(w[i]) != 0) {
            fprintf(stderr, "bench_rca: store commit failed\n");
            goto out;
        }
        disk += edr_store_writer_disk_bytes(w[i]);
        edr_store_writer_destroy(w[i]);
        w[i] = NULL;
    }
    t_store += now_s() - t0;
    size_t n_edges = edr_graph_edge_count(g), n_nodes = edr_graph_node_count(g);
    size_t procs = 0;
    for (uint32_t n = 0; n < n_nodes; n++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, n, &in);
        procs += in.kind == EDR_NODE_PROCESS;
    }
    char err[256];
    st = edr_store_open(dir, NULL, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "bench_rca: %s\n", err);
        goto out;
    }
    /* one analysis per alert (the chain's last process) and one from the first malicious process */
    size_t n_at = edr_synth_attack_count(s), incomplete = 0;
    lat_store = calloc(2 * n_at + 1, sizeof(double));
    lat_mem = calloc(2 * n_at + 1, sizeof(double));
    if (!lat_store || !lat_mem)
        goto out;
    score_t ss = {.lat = lat_store}, sm = {.lat = lat_mem};
    edr_rca_opts_t ro;
    edr_rca_opts_default(&ro);
    edr_rca_store_opts_t rso;
    edr_rca_store_opts_default(&rso);
    uint64_t loaded_edges = 0;
    for (size_t i = 0; i < n_at; i++) {
        const edr_synth_attack_t *at = edr_synth_attack(s, i);
        if (!at->done) {
            incomplete++;
            continue;
        }
        for (int from_first = 0; from_first < 2; from_first++) {
            const uint8_t *ent = from_first ? at->first.entity_id : at->alert.entity_id;
            /* through the store: a fresh graph per alert, loaded by the analysis */
            edr_graph_t *sg = edr_graph_new();
            edr_rca_store_stats_t rst;
            int e2 = 0;
            t0 = now_s();
            edr_rca_t *r = sg ? edr_rca_run_store(sg, st, ent, 0, &ro, &rso, &rst, &e2) : NULL;
            t1 = now_s();
            if (!r) {
                fprintf(stderr, "bench_rca: analysis through the store failed: %s\n", edr_strerror(e2));
                edr_graph_destroy(sg);
                goto out;
            }
            score(&ss, sg, r, at, (t1 - t0) * 1000.0, 1);
            ss.hops += rst.hops;
            ss.events_loaded += (double)rst.events;
            loaded_edges += edr_graph_edge_count(sg);
            edr_rca_destroy(r);
            edr_graph_destroy(sg);
            /* the peer: the same analysis on the in-memory fleet graph */
            uint32_t n = edr_graph_find_entity(g, ent);
            if (n == EDR_GRAPH_NONE)
                continue;
            t0 = now_s();
            r = edr_rca_run(g, n, 0, &ro, &e2);
            t1 = now_s();
            if (!r)
                goto out;
            score(&sm, g, r, at, (t1 - t0) * 1000.0, 0);
            edr_rca_destroy(r);
        }
    }
    double tot_store_s = 0;
    for (size_t i = 0; i < ss.runs; i++)
        tot_store_s += ss.lat[i] / 1000.0;
    printf("# store %s: %u shards written with edr_store_writer (the collector's writer), %llu batches of %u events, "
           "frames %.1f MB, disk %.1f MB\n",
           dir, shards, (unsigned long long)n_batches, batch, (double)frame_bytes / 1e6, (double)disk / 1e6);
    printf("# %llu events, %u hosts, %zu processes; in-memory fleet graph %zu nodes, %zu edges; %zu attacks "
           "(%zu incomplete), %zu analyses each way\n",
           (unsigned long long)done, hosts, procs, n_nodes, n_edges, n_at, incomplete, ss.runs);
    printf("# store analyses: a fresh graph per alert, loaded through edr_store_host_events/process_ancestry/"
           "remote_blocks (24 h lookback); latency includes the loading\n");
    printf("RESULT rca_events %llu events\n", (unsigned long long)done);
    printf("RESULT rca_processes %zu processes\n", procs);
    printf("RESULT store_write_rate %.2f M_events/s\n", t_store > 0 ? (double)done / t_store / 1e6 : 0);
    printf("RESULT store_frame_bytes_per_event %.1f bytes/event\n", done ? (double)frame_bytes / (double)done : 0);
    printf("RESULT store_disk %.1f MB\n", (double)disk / 1e6);
    printf("RESULT graph_build_rate %.2f M_edges/s\n", t_build > 0 ? (double)n_edges / t_build / 1e6 : 0);
    printf("RESULT graph_build_rate_events %.2f M_events/s\n", t_build > 0 ? (double)done / t_build / 1e6 : 0);
    printf("RESULT graph_build_rate_cpu %.2f M_edges/cpu_s\n", c_build > 0 ? (double)n_edges / c_build / 1e6 : 0);
    printf("RESULT graph_load_rate_from_store %.2f M_edges/s\n",
           tot_store_s > 0 ? (double)loaded_edges / tot_store_s / 1e6 : 0);
    printf("RESULT synth_rate_peer %.2f M_events/s\n", t_gen > 0 ? (double)done / t_gen / 1e6 : 0);
    printf("RESULT frame_encode_rate_peer %.2f M_events/s\n", t_enc > 0 ? (double)done / t_enc / 1e6 : 0);
    printf("RESULT graph_edge_bytes %zu bytes/edge\n", edr_graph_edge_size());
    printf("RESULT graph_memory_per_edge %.1f bytes/edge\n", n_edges ? (double)edr_graph_memory(g) / (double)n_edges : 0);
    {
        edr_graph_mem_t gm;
        edr_graph_memory_parts(g, &gm);
        double ne = n_edges ? (double)n_edges : 1;
        const struct {
            const char *name;
            size_t bytes;
        } part[] = {{"edges", gm.edges},     {"nodes", gm.nodes},       {"index", gm.index},
                    {"strings", gm.strings}, {"intern", gm.intern},     {"hosts", gm.hosts},
                    {"flows", gm.flows},     {"peers", gm.peers},       {"patterns", gm.patterns},
                    {"users", gm.users},     {"aux", gm.aux}};
        for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++)
            printf("RESULT graph_memory_%s_per_edge %.2f bytes/edge\n", part[i].name, (double)part[i].bytes / ne);
        printf("RESULT graph_memory_total %.1f MB\n", (double)gm.total / 1e6);
    }
    printf("RESULT rca_store_events_loaded_avg %.0f events\n", ss.runs ? ss.events_loaded / (double)ss.runs : 0);
    printf("RESULT rca_store_lateral_hops_avg %.2f hops\n", ss.runs ? ss.hops / (double)ss.runs : 0);
    report("rca_", &ss);
    report("rca_mem_peer_", &sm);
    rc = 0;
    if (check && (ss.truth_tp != ss.truth_n || ss.chain_tp < 0.95 * (double)ss.chain_n || ss.root_ok != ss.runs ||
                  !ss.runs || incomplete)) {
        fprintf(stderr, "bench_rca: check failed (store analyses): recall, precision or root accuracy below target\n");
        rc = 1;
    }
out:
    for (uint32_t i = 0; i < 64; i++)
        edr_store_writer_destroy(w[i]);
    edr_store_destroy(st);
    free(lat_store);
    free(lat_mem);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(fc);
    edr_graph_destroy(g);
    edr_synth_destroy(s);
    if (!keep && !store_arg)
        bench_rm_tree(dir);
    return rc;
}
