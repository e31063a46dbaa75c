/* Benchmark: root-cause analysis over an in-memory graph of synthetic fleet telemetry with embedded attack chains and ground truth. */
#include "edr/arena.h"
#include "edr/err.h"
#include "edr/graph.h"
#include "edr/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int truth_has(const edr_synth_attack_t *at, const edr_graph_node_info_t *in)
{
    for (size_t i = 0; i < at->n_truth; i++) {
        const edr_synth_truth_t *t = &at->truth[i];
        if (memcmp(t->host_id, in->host_id, 16))
            continue;
        if ((t->kind == 1 && in->kind == EDR_NODE_PROCESS && !memcmp(t->entity_id, in->entity_id, 16)) ||
            (t->kind == 2 && in->kind == EDR_NODE_FILE && !strcmp(t->path, in->path)) ||
            (t->kind == 3 && in->kind == EDR_NODE_REMOTE && in->ip_len == 4 && !memcmp(t->ip, in->ip, 4)))
            return 1;
    }
    return 0;
}

/* Truth entities found in the chain (each counted once). */
static size_t truth_found(const edr_graph_t *g, const edr_rca_t *r, const edr_synth_attack_t *at)
{
    size_t found = 0;
    for (size_t k = 0; k < at->n_truth; k++) {
        const edr_synth_truth_t *t = &at->truth[k];
        for (size_t j = 0; j < r->n_chain; j++) {
            edr_graph_node_info_t in;
            edr_graph_node(g, r->chain[j].node, &in);
            if (!memcmp(t->host_id, in.host_id, 16) &&
                ((t->kind == 1 && in.kind == EDR_NODE_PROCESS && !memcmp(t->entity_id, in.entity_id, 16)) ||
                 (t->kind == 2 && in.kind == EDR_NODE_FILE && !strcmp(t->path, in.path)) ||
                 (t->kind == 3 && in.kind == EDR_NODE_REMOTE && in.ip_len == 4 && !memcmp(t->ip, in.ip, 4)))) {
                found++;
                break;
            }
        }
    }
    return found;
}

int main(int argc, char **argv)
{
    uint64_t events = 10000000;
    uint32_t hosts = 1000, attacks = 100, batch = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--hosts") && i + 1 < argc)
            hosts = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--attacks") && i + 1 < argc)
            attacks = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_rca [--events N (10000000)] [--hosts N] [--attacks N]\n");
            return 2;
        }
    }
    if (hosts < 2 || attacks * 2 > hosts) {
        fprintf(stderr, "bench_rca: need at least two hosts per attack\n");
        return 2;
    }
    edr_synth_opts_t so = {.hosts = hosts, .seed = 2026};
    edr_synth_t *s = edr_synth_new(&so);
    edr_graph_t *g = edr_graph_new();
    if (!s || !g)
        return 1;
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
            return 1;
        }
    }
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    double t_gen = 0, t_build = 0, t0;
    uint64_t done = 0;
    for (uint32_t h = 0; h < hosts; h++) {
        Edr__V1__EventBatch *b = edr_synth_seed_batch(s, h, &a);
        if (!b || edr_graph_add_batch(g, b) != 0)
            return 1;
        done += b->n_events;
        edr_arena_reset(&a);
    }
    while (done < events) {
        for (uint32_t h = 0; h < hosts && done < events; h++) {
            t0 = now_s();
            Edr__V1__EventBatch *b = edr_synth_next_batch(s, h, batch, &a);
            double t1 = now_s();
            if (!b || edr_graph_add_batch(g, b) != 0) {
                fprintf(stderr, "bench_rca: out of memory at %llu events\n", (unsigned long long)done);
                return 1;
            }
            t_build += now_s() - t1;
            t_gen += t1 - t0;
            done += b->n_events;
            edr_arena_reset(&a);
        }
    }
    size_t n_edges = edr_graph_edge_count(g), n_nodes = edr_graph_node_count(g);
    size_t procs = 0;
    for (uint32_t n = 0; n < n_nodes; n++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, n, &in);
        procs += in.kind == EDR_NODE_PROCESS;
    }
    /* one analysis per alert (the chain's last process) and one from the first malicious process */
    size_t n_at = edr_synth_attack_count(s), runs = 0, root_ok = 0, chain_n = 0, chain_tp = 0, truth_n = 0,
           truth_tp = 0, incomplete = 0;
    double *lat = calloc(2 * n_at + 1, sizeof(double));
    double edges_before = 0, edges_after = 0;
    edr_rca_opts_t ro;
    edr_rca_opts_default(&ro);
    for (size_t i = 0; i < n_at; i++) {
        const edr_synth_attack_t *at = edr_synth_attack(s, i);
        if (!at->done) {
            incomplete++;
            continue;
        }
        for (int from_first = 0; from_first < 2; from_first++) {
            uint32_t st = edr_graph_find_entity(g, from_first ? at->first.entity_id : at->alert.entity_id);
            if (st == EDR_GRAPH_NONE)
                continue;
            t0 = now_s();
            edr_rca_t *r = edr_rca_run(g, st, 0, &ro, NULL);
            lat[runs] = (now_s() - t0) * 1000.0;
            if (!r)
                return 1;
            runs++;
            edr_graph_node_info_t in;
            edr_graph_node(g, r->root, &in);
            if ((int)r->cls == at->root_class &&
                (at->root.kind == 1 ? !memcmp(in.entity_id, at->root.entity_id, 16)
                                    : !strcmp(in.path, at->root.path)))
                root_ok++;
            for (size_t k = 0; k < r->n_chain; k++) {
                edr_graph_node(g, r->chain[k].node, &in);
                chain_tp += truth_has(at, &in);
            }
            chain_n += r->n_chain;
            truth_n += at->n_truth;
            truth_tp += truth_found(g, r, at);
            edges_before += (double)r->edges_unpruned;
            edges_after += (double)r->n_edges;
            edr_rca_destroy(r);
        }
    }
    qsort(lat, runs, sizeof(double), cmp_d);
    double p50 = runs ? lat[runs / 2] : 0, p99 = runs ? lat[(size_t)((double)(runs - 1) * 0.99)] : 0;
    printf("# in-memory graph built from edr.v1 events (synthetic, not read back from a RocksDB store)\n");
    printf("# %llu events, %u hosts, %zu processes, %zu nodes, %zu edges, %zu attacks (%zu incomplete), %zu analyses\n",
           (unsigned long long)done, hosts, procs, n_nodes, n_edges, n_at, incomplete, runs);
    printf("RESULT rca_events %llu events\n", (unsigned long long)done);
    printf("RESULT rca_processes %zu processes\n", procs);
    printf("RESULT graph_build_rate %.2f M_edges/s\n", t_build > 0 ? (double)n_edges / t_build / 1e6 : 0);
    printf("RESULT graph_build_rate_events %.2f M_events/s\n", t_build > 0 ? (double)done / t_build / 1e6 : 0);
    printf("RESULT synth_rate_peer %.2f M_events/s\n", t_gen > 0 ? (double)done / t_gen / 1e6 : 0);
    printf("RESULT graph_edge_bytes %zu bytes/edge\n", edr_graph_edge_size());
    printf("RESULT graph_memory_per_edge %.1f bytes/edge\n", n_edges ? (double)edr_graph_memory(g) / (double)n_edges : 0);
    printf("RESULT rca_latency_p50 %.3f ms\n", p50);
    printf("RESULT rca_latency_p99 %.3f ms\n", p99);
    printf("RESULT rca_subgraph_edges_unpruned_avg %.1f edges\n", runs ? edges_before / (double)runs : 0);
    printf("RESULT rca_subgraph_edges_pruned_avg %.1f edges\n", runs ? edges_after / (double)runs : 0);
    printf("RESULT rca_root_accuracy %.3f ratio\n", runs ? (double)root_ok / (double)runs : 0);
    printf("RESULT rca_chain_precision %.4f ratio\n", chain_n ? (double)chain_tp / (double)chain_n : 0);
    printf("RESULT rca_chain_recall %.4f ratio\n", truth_n ? (double)truth_tp / (double)truth_n : 0);
    free(lat);
    edr_arena_close(&a);
    edr_graph_destroy(g);
    edr_synth_destroy(s);
    return 0;
}
