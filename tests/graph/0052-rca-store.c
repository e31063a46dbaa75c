/* Root-cause analysis through a RocksDB store: lateral moves followed across hosts (library and edr rca), edge-pattern rarity counted from the store's history. */
#define _GNU_SOURCE
#include "edr_test.h"

#include "edr/arena.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/graph.h"
#include "edr/identity.h"
#include "edr/store.h"
#include "edr/synth.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char store[96];
} tmp_t;

static void tmp_make(tmp_t *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/edr-rca-store-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->store, sizeof(t->store), "%s/s", t->dir);
}

static void tmp_remove(tmp_t *t)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    (void)!system(cmd);
}

/* Writes batches with the collector's store writer, host h into shard h % 2. */
typedef struct {
    edr_store_writer_t *w[2];
    edr_frame_ctx_t *fc;
} sw_t;

static void sw_open(sw_t *x, const char *store)
{
    char err[256];
    x->fc = edr_frame_ctx_new(NULL);
    assert_non_null(x->fc);
    for (int i = 0; i < 2; i++) {
        x->w[i] = edr_store_writer_open(store, (uint32_t)i, NULL, err, sizeof(err));
        if (!x->w[i])
            fail_msg("%s", err);
    }
}

static void sw_add(sw_t *x, uint32_t shard, const Edr__V1__EventBatch *b)
{
    const uint8_t *f;
    size_t fl;
    assert_int_equal(edr_frame_encode(x->fc, b, 0, &f, &fl), 0);
    assert_true(edr_store_writer_add(x->w[shard % 2], f, fl, b) >= 0);
    assert_int_equal(edr_store_writer_commit(x->w[shard % 2]), 0);
}

static void sw_close(sw_t *x)
{
    for (int i = 0; i < 2; i++)
        edr_store_writer_destroy(x->w[i]);
    edr_frame_ctx_destroy(x->fc);
}

/* ------------------------------------------------------------ lateral move through the store */

#define HOSTS 4

/* Host 0: service exploit, then ssh into host 1 where the attack goes on
 * (the alert); host 2: an unrelated service exploit; host 3: noise only. */
static edr_synth_t *lateral_store(const char *store, int *lat_idx)
{
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 77};
    edr_synth_t *s = edr_synth_new(&so);
    assert_non_null(s);
    edr_synth_attack_spec_t lat = {.kind = EDR_SYNTH_ATTACK_LATERAL, .host = 0, .target_host = 1, .depth = 3,
                                   .after_events = 800};
    edr_synth_attack_spec_t svc = {.kind = EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, .host = 2, .depth = 2,
                                   .after_events = 500};
    *lat_idx = edr_synth_add_attack(s, &lat);
    assert_true(*lat_idx >= 0);
    assert_true(edr_synth_add_attack(s, &svc) >= 0);
    sw_t w;
    sw_open(&w, store);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    for (uint32_t h = 0; h < HOSTS; h++) {
        sw_add(&w, h, edr_synth_seed_batch(s, h, &a));
        edr_arena_reset(&a);
    }
    for (int round = 0; round < 30; round++)
        for (uint32_t h = 0; h < HOSTS; h++) {
            sw_add(&w, h, edr_synth_next_batch(s, h, 100, &a));
            edr_arena_reset(&a);
        }
    sw_close(&w);
    edr_arena_close(&a);
    for (size_t i = 0; i < edr_synth_attack_count(s); i++)
        assert_true(edr_synth_attack(s, i)->done);
    return s;
}

static int node_is(const edr_graph_t *g, uint32_t n, const edr_synth_truth_t *t)
{
    edr_graph_node_info_t in;
    edr_graph_node(g, n, &in);
    if (memcmp(t->host_id, in.host_id, 16))
        return 0;
    return (t->kind == 1 && in.kind == EDR_NODE_PROCESS && !memcmp(t->entity_id, in.entity_id, 16)) ||
           (t->kind == 2 && in.kind == EDR_NODE_FILE && !strcmp(t->path, in.path)) ||
           (t->kind == 3 && in.kind == EDR_NODE_REMOTE && in.ip_len == 4 && !memcmp(t->ip, in.ip, 4));
}

static size_t truth_found(const edr_graph_t *g, const edr_rca_t *r, const edr_synth_attack_t *at)
{
    size_t found = 0;
    for (size_t i = 0; i < at->n_truth; i++)
        for (size_t k = 0; k < r->n_chain; k++)
            if (node_is(g, r->chain[k].node, &at->truth[i])) {
                found++;
                break;
            }
    return found;
}

static void test_lateral_library(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t);
    int li;
    edr_synth_t *s = lateral_store(t.store, &li);
    const edr_synth_attack_t *at = edr_synth_attack(s, (size_t)li);
    char err[256];
    edr_store_t *st = edr_store_open(t.store, NULL, err, sizeof(err));
    if (!st)
        fail_msg("%s", err);
    uint8_t h0[16], h1[16];
    edr_synth_host_id(s, 0, h0);
    edr_synth_host_id(s, 1, h1);

    /* from the alert on host 1: the walk crosses back into host 0's exploited service */
    edr_graph_t *g = edr_graph_new();
    edr_rca_store_stats_t rs;
    int e = 0;
    edr_rca_t *r = edr_rca_run_store(g, st, at->alert.entity_id, 0, NULL, NULL, &rs, &e);
    assert_non_null(r);
    edr_graph_node_info_t in;
    edr_graph_node(g, r->root, &in);
    assert_int_equal(r->cls, EDR_RCA_INBOUND_CONNECTION);
    assert_memory_equal(in.entity_id, at->root.entity_id, 16);
    assert_memory_equal(in.host_id, h0, 16);
    assert_int_equal(rs.hops, 1);
    assert_int_equal(rs.hosts, 2); /* hosts 2 and 3 are never read */
    assert_int_equal(truth_found(g, r, at), at->n_truth);
    edr_rca_destroy(r);
    edr_graph_destroy(g);

    /* from the first malicious process on host 0: the chain follows the ssh into host 1 */
    g = edr_graph_new();
    r = edr_rca_run_store(g, st, at->first.entity_id, 0, NULL, NULL, &rs, &e);
    assert_non_null(r);
    assert_int_equal(rs.hops, 1);
    assert_int_equal(truth_found(g, r, at), at->n_truth);
    int alert_in = 0;
    for (size_t k = 0; k < r->n_chain; k++)
        alert_in += node_is(g, r->chain[k].node, &at->alert);
    assert_int_equal(alert_in, 1);
    edr_rca_destroy(r);
    edr_graph_destroy(g);

    /* confined to one host, the same alert stops at the ssh session on host 1 */
    edr_rca_store_opts_t so;
    edr_rca_store_opts_default(&so);
    so.max_hosts = 1;
    g = edr_graph_new();
    r = edr_rca_run_store(g, st, at->alert.entity_id, 0, NULL, &so, &rs, &e);
    assert_non_null(r);
    edr_graph_node(g, r->root, &in);
    assert_memory_equal(in.host_id, h1, 16);
    assert_int_equal(r->cls, EDR_RCA_USER_SESSION);
    assert_int_equal(rs.hops, 0);
    assert_true(truth_found(g, r, at) < at->n_truth);
    edr_rca_destroy(r);
    edr_graph_destroy(g);

    /* an unknown entity is a clear error */
    static const uint8_t nobody[16] = {1, 2, 3};
    g = edr_graph_new();
    assert_null(edr_rca_run_store(g, st, nobody, 0, NULL, NULL, NULL, &e));
    assert_int_equal(e, EDR_ENOENT);
    edr_graph_destroy(g);

    edr_store_destroy(st);
    edr_synth_destroy(s);
    tmp_remove(&t);
}

static int json_chain_has(json_t *chain, const char *hex)
{
    size_t k;
    json_t *it;
    json_array_foreach(chain, k, it)
    {
        const char *id = json_string_value(json_object_get(it, "entity_id"));
        if (id && !strcmp(id, hex))
            return 1;
    }
    return 0;
}

/* The user's path: edr rca --store DIR --entity ID --json, across the lateral move. */
static void test_lateral_cli(void **state)
{
    (void)state;
    if (access(EDR_BIN_DIR "/edr", X_OK) != 0)
        skip();
    tmp_t t;
    tmp_make(&t);
    int li;
    edr_synth_t *s = lateral_store(t.store, &li);
    const edr_synth_attack_t *at = edr_synth_attack(s, (size_t)li);
    char alert[33], root[33], cmd[512];
    edr_hex(at->alert.entity_id, 16, alert);
    edr_hex(at->root.entity_id, 16, root);
    snprintf(cmd, sizeof(cmd), "%s/edr rca --store %s --entity %s --json", EDR_BIN_DIR, t.store, alert);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t je;
    json_t *o = json_loadf(p, 0, &je);
    assert_int_equal(pclose(p), 0);
    if (!o)
        fail_msg("%s: no JSON: %s", cmd, je.text);
    json_t *rc = json_object_get(o, "root_cause");
    assert_string_equal(json_string_value(json_object_get(rc, "entity_id")), root);
    assert_string_equal(json_string_value(json_object_get(rc, "class")), "inbound_connection");
    json_t *chain = json_object_get(o, "chain");
    assert_string_equal(json_string_value(json_object_get(json_array_get(chain, 0), "entity_id")), root);
    /* every attack process, on both hosts, is in the chain */
    for (size_t i = 0; i < at->n_truth; i++) {
        if (at->truth[i].kind != 1)
            continue;
        char hex[33];
        edr_hex(at->truth[i].entity_id, 16, hex);
        if (!json_chain_has(chain, hex))
            fail_msg("chain lacks attack process %s", hex);
    }
    json_decref(o);
    /* with the analysis held to one host it stops at host 1's ssh session */
    snprintf(cmd, sizeof(cmd), "%s/edr rca --store %s --entity %s --json --set analyzer.rca_max_hosts=1", EDR_BIN_DIR,
             t.store, alert);
    p = popen(cmd, "r");
    assert_non_null(p);
    o = json_loadf(p, 0, &je);
    assert_int_equal(pclose(p), 0);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "root_cause"), "class")),
                        "user_session");
    json_decref(o);
    edr_synth_destroy(s);
    tmp_remove(&t);
}

/* ------------------------------------------------------------ edge-pattern rarity from the store */

typedef struct {
    edr_arena_t a;
    Edr__V1__EventBatch b;
    Edr__V1__SensorInfo si;
    Edr__V1__Event *ev[512];
    uint8_t host[16];
    uint64_t t;
} bld_t;

static void bld_init(bld_t *x, const char *hostname, uint64_t t)
{
    memset(x, 0, sizeof(*x));
    edr_arena_init(&x->a, 1 << 16);
    edr_host_id_from_name(hostname, x->host);
    edr__v1__sensor_info__init(&x->si);
    x->si.host_id.data = x->host;
    x->si.host_id.len = 16;
    x->si.hostname = (char *)hostname;
    edr__v1__event_batch__init(&x->b);
    x->b.sensor = &x->si;
    x->b.events = x->ev;
    x->b.seq = 1;
    x->b.schema_version = 1;
    x->t = t;
    x->b.base_time_ns = t;
}

static void bld_next(bld_t *x, uint64_t t)
{
    edr_arena_reset(&x->a);
    x->b.n_events = 0;
    x->b.seq++;
    x->t = t;
    x->b.base_time_ns = t;
}

static void pid_id(const bld_t *x, uint32_t pid, uint8_t out[16])
{
    static const uint8_t boot[16] = {9};
    edr_entity_id(x->host, boot, pid, pid * 1000ull, out);
}

static Edr__V1__Event *ev_new(bld_t *x, uint32_t pid, uint32_t ppid)
{
    Edr__V1__Event *e = edr_arena_alloc(&x->a, sizeof(*e));
    edr__v1__event__init(e);
    x->t += 1000000;
    e->time_offset_ns = (int64_t)(x->t - x->b.base_time_ns);
    e->pid = e->tid = pid;
    uint8_t id[16];
    pid_id(x, pid, id);
    e->entity_id.data = edr_arena_dup(&x->a, id, 16);
    e->entity_id.len = 16;
    if (ppid) {
        pid_id(x, ppid, id);
        e->parent_entity_id.data = edr_arena_dup(&x->a, id, 16);
        e->parent_entity_id.len = 16;
    }
    x->ev[x->b.n_events++] = e;
    return e;
}

static void ev_start(bld_t *x, uint32_t pid, uint32_t ppid, const char *exe)
{
    Edr__V1__Event *e = ev_new(x, pid, ppid);
    Edr__V1__ProcessStart *ps = edr_arena_alloc(&x->a, sizeof(*ps));
    edr__v1__process_start__init(ps);
    ps->exe = (char *)exe;
    ps->command_line = (char *)exe;
    ps->start_time_ns = x->t;
    e->body_case = EDR__V1__EVENT__BODY_PROCESS_START;
    e->process_start = ps;
}

static void ev_write(bld_t *x, uint32_t pid, const char *path)
{
    Edr__V1__Event *e = ev_new(x, pid, 0);
    Edr__V1__FileWrite *w = edr_arena_alloc(&x->a, sizeof(*w));
    edr__v1__file_write__init(w);
    w->path = edr_arena_strdup(&x->a, path);
    e->body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
    e->file_write = w;
}

static void ev_exec(bld_t *x, uint32_t pid, const char *path)
{
    Edr__V1__Event *e = ev_new(x, pid, 0);
    Edr__V1__FileExec *fx = edr_arena_alloc(&x->a, sizeof(*fx));
    edr__v1__file_exec__init(fx);
    fx->path = (char *)path;
    e->body_case = EDR__V1__EVENT__BODY_FILE_EXEC;
    e->file_exec = fx;
}

/* A TCP event of pid: local (lip:lport), remote (rip:rport). */
static void ev_tcp(bld_t *x, uint32_t pid, int accept, const uint8_t lip[4], uint32_t lport,
                   const uint8_t rip[4], uint32_t rport)
{
    Edr__V1__Event *e = ev_new(x, pid, 0);
    Edr__V1__Network *nw = edr_arena_alloc(&x->a, sizeof(*nw));
    Edr__V1__Endpoint *l = edr_arena_alloc(&x->a, sizeof(*l)), *r = edr_arena_alloc(&x->a, sizeof(*r));
    edr__v1__network__init(nw);
    edr__v1__endpoint__init(l);
    edr__v1__endpoint__init(r);
    nw->action = accept ? EDR__V1__NETWORK__ACTION__ACCEPT : EDR__V1__NETWORK__ACTION__CONNECT;
    nw->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
    l->ip.data = edr_arena_dup(&x->a, lip, 4);
    l->ip.len = 4;
    l->port = lport;
    r->ip.data = edr_arena_dup(&x->a, rip, 4);
    r->ip.len = 4;
    r->port = rport;
    nw->local = l;
    nw->remote = r;
    e->body_case = EDR__V1__EVENT__BODY_NETWORK;
    e->network = nw;
}

/*
 * An ssh session on "db-1" came from 10.9.9.9, whose own telemetry is not
 * in the store; n other hosts connected to db-1 in the same seconds. The
 * lateral probe decodes at most 32 of their blocks looking for the
 * connect: past that, the answer says it was cut (truncated, probes_cut)
 * instead of presenting the session as the whole story.
 */
static void test_lateral_probe_cut(void **state)
{
    (void)state;
    static const uint8_t db[4] = {10, 1, 1, 1}, from[4] = {10, 9, 9, 9};
    const uint64_t t0 = 1767225600ull * 1000000000ull;
    for (int n = 20; n <= 40; n += 20) {
        tmp_t t;
        tmp_make(&t);
        sw_t w;
        sw_open(&w, t.store);
        bld_t x;
        bld_init(&x, "db-1", t0);
        ev_start(&x, 1, 0, "/usr/lib/systemd/systemd");
        ev_start(&x, 100, 1, "/usr/sbin/sshd");
        ev_tcp(&x, 100, 1, db, 22, from, 50001);
        ev_start(&x, 200, 100, "/usr/bin/bash");
        ev_start(&x, 201, 200, "/usr/bin/id");
        sw_add(&w, 0, &x.b);
        uint8_t alert[16];
        pid_id(&x, 201, alert);
        edr_arena_close(&x.a);
        for (int i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof(name), "web-%d", i);
            bld_init(&x, name, t0);
            const uint8_t me[4] = {10, 2, 0, (uint8_t)(i + 1)};
            ev_start(&x, 300, 1, "/usr/bin/psql");
            ev_tcp(&x, 300, 0, me, 40000 + (uint32_t)i, db, 5432);
            sw_add(&w, (uint32_t)i + 1, &x.b);
            edr_arena_close(&x.a);
        }
        sw_close(&w);
        char err[256];
        edr_store_t *st = edr_store_open(t.store, NULL, err, sizeof(err));
        if (!st)
            fail_msg("%s", err);
        edr_graph_t *g = edr_graph_new();
        edr_rca_store_stats_t rs;
        int e = 0;
        edr_rca_t *r = edr_rca_run_store(g, st, alert, 0, NULL, NULL, &rs, &e);
        assert_non_null(r);
        assert_int_equal(r->cls, EDR_RCA_USER_SESSION); /* sshd's session, its source unknown */
        assert_int_equal(rs.hops, 0);
        if (n <= 32) {
            assert_int_equal(rs.probes, (uint64_t)n);
            assert_int_equal(rs.probes_cut, 0);
            assert_false(r->truncated);
        } else {
            assert_int_equal(rs.probes, 32);
            assert_int_equal(rs.probes_cut, (uint64_t)n - 32);
            assert_true(r->truncated);
        }
        edr_rca_destroy(r);
        edr_graph_destroy(g);
        edr_store_destroy(st);
        tmp_remove(&t);
    }
}

/*
 * History (a day earlier, read from the store): the deployer writes into
 * /opt/app/ every day, 60 times. Today /opt/app/run.sh is written by nc once
 * (a pattern the host has never shown), then by the deployer ten times, and
 * a worker maps it. With at most 4 incoming edges per node followed, the
 * rare nc write must be kept although it is the oldest.
 */
static void test_rarity_from_store(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t);
    sw_t w;
    sw_open(&w, t.store);
    const uint64_t day = 86400ull * 1000000000ull, t0 = 1767225600ull * 1000000000ull;
    bld_t x;
    bld_init(&x, "app-7", t0);
    ev_start(&x, 1, 0, "/usr/lib/systemd/systemd");
    for (uint32_t i = 0; i < 60; i++) {
        ev_start(&x, 1000 + i, 1, "/usr/bin/deployer");
        char p[64];
        snprintf(p, sizeof(p), "/opt/app/lib-%u.jar", i);
        ev_write(&x, 1000 + i, p);
    }
    sw_add(&w, 0, &x.b);
    bld_next(&x, t0 + day);
    ev_start(&x, 50, 1, "/usr/bin/nc");
    ev_write(&x, 50, "/opt/app/run.sh");
    for (uint32_t i = 0; i < 10; i++) {
        ev_start(&x, 2000 + i, 1, "/usr/bin/deployer");
        ev_write(&x, 2000 + i, "/opt/app/run.sh");
    }
    ev_start(&x, 3000, 1, "/usr/bin/worker");
    ev_exec(&x, 3000, "/opt/app/run.sh");
    ev_start(&x, 3001, 3000, "/usr/bin/id");
    sw_add(&w, 0, &x.b);
    sw_close(&w);

    char err[256];
    edr_store_t *st = edr_store_open(t.store, NULL, err, sizeof(err));
    if (!st)
        fail_msg("%s", err);
    edr_rca_opts_t ro;
    edr_rca_opts_default(&ro);
    ro.max_fanin = 4;
    edr_rca_store_opts_t so;
    edr_rca_store_opts_default(&so);
    so.lookback_ns = 3 * day;
    uint8_t start[16], nc[16];
    pid_id(&x, 3001, start);
    pid_id(&x, 50, nc);
    edr_graph_t *g = edr_graph_new();
    int e = 0;
    edr_rca_t *r = edr_rca_run_store(g, st, start, 0, &ro, &so, NULL, &e);
    assert_non_null(r);
    uint32_t ncn = edr_graph_find_entity(g, nc);
    assert_int_not_equal(ncn, EDR_GRAPH_NONE);
    uint32_t rare = EDR_GRAPH_NONE, common = EDR_GRAPH_NONE;
    for (uint32_t k = 0; k < edr_graph_edge_count(g); k++) {
        edr_graph_edge_info_t ei;
        edr_graph_edge(g, k, &ei);
        if (ei.kind != EDR_EDGE_WRITE)
            continue;
        if (ei.src == ncn)
            rare = k;
        else
            common = k;
    }
    assert_int_not_equal(rare, EDR_GRAPH_NONE);
    /* counted over the host's history from the store: 60 + 10 deployer writes into /opt/app/ */
    assert_int_equal(edr_graph_edge_rarity(g, rare), 1);
    assert_int_equal(edr_graph_edge_rarity(g, common), 70);
    int kept_rare = 0;
    size_t kept_writes = 0;
    for (size_t k = 0; k < r->n_edges; k++) {
        edr_graph_edge_info_t ei;
        edr_graph_edge(g, r->edges[k], &ei);
        kept_rare += r->edges[k] == rare;
        kept_writes += ei.kind == EDR_EDGE_WRITE;
    }
    assert_int_equal(kept_rare, 1);
    assert_int_equal(kept_writes, 4);
    assert_true(r->truncated);
    edr_rca_destroy(r);
    edr_graph_destroy(g);

    /* the history outside the window is what makes the deployer common: with only today loaded, the
     * nc write is still the rarest but the deployer's pattern counts 10 */
    so.lookback_ns = day / 2;
    g = edr_graph_new();
    r = edr_rca_run_store(g, st, start, 0, &ro, &so, NULL, &e);
    assert_non_null(r);
    for (uint32_t k = 0; k < edr_graph_edge_count(g); k++) {
        edr_graph_edge_info_t ei;
        edr_graph_edge(g, k, &ei);
        if (ei.kind == EDR_EDGE_WRITE && ei.src != edr_graph_find_entity(g, nc))
            assert_int_equal(edr_graph_edge_rarity(g, k), 10);
    }
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_store_destroy(st);
    edr_arena_close(&x.a);
    tmp_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lateral_library),
        cmocka_unit_test(test_lateral_cli),
        cmocka_unit_test(test_rarity_from_store),
        cmocka_unit_test(test_lateral_probe_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
