/* Root-cause analysis through the store's read API: loads the hosts an analysis needs, following lateral moves across hosts. */
#include "graph_int.h"

#include "edr/err.h"
#include "edr/event.h"

#include <stdlib.h>
#include <string.h>

void edr_rca_store_opts_default(edr_rca_store_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->lookback_ns = 24ull * 3600 * 1000000000ull;
    o->forward_ns = 24ull * 3600 * 1000000000ull;
    o->max_hosts = 8;
}

#ifdef HAVE_EDR_CORE_STORE
#include "edr/store.h"

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int ghost_find(const edr_graph_t *g, const uint8_t id[16])
{
    for (size_t i = 0; i < g->n_hosts; i++)
        if (!memcmp(g->hosts[i].id, id, 16))
            return (int)i;
    return -1;
}

typedef struct {
    edr_graph_t *g;
    uint64_t events;
} load_ctx_t;

static int load_event(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                      void *ud)
{
    (void)k;
    load_ctx_t *lc = ud;
    lc->events++;
    int rc = edr_graph_add_event(lc->g, b, e);
    return rc == EDR_EINVAL ? 0 : rc;
}

static int load_range(edr_graph_t *g, edr_store_t *s, const uint8_t host[16], uint64_t from, uint64_t to,
                      edr_rca_store_stats_t *st)
{
    if (to != UINT64_MAX && to <= from)
        return 0;
    load_ctx_t lc = {g, 0};
    int rc = edr_store_host_events(s, host, from, to == UINT64_MAX ? 0 : to, load_event, &lc);
    if (st)
        st->events += lc.events;
    return rc;
}

/* Makes sure the graph holds host's events in [from, to) (to UINT64_MAX:
 * open): loads what an earlier load did not cover. */
static int host_ensure(edr_graph_t *g, edr_store_t *s, const uint8_t host[16], uint64_t from, uint64_t to,
                       edr_rca_store_stats_t *st)
{
    int hi = ghost_find(g, host);
    int rc;
    if (hi >= 0 && g->hosts[hi].loaded) {
        ghost_t *h = &g->hosts[hi];
        uint64_t of = h->from_ns, ot = h->to_ns;
        if (from < of && (rc = load_range(g, s, host, from, of, st)) != 0)
            return rc;
        if (to > ot && (rc = load_range(g, s, host, ot, to, st)) != 0)
            return rc;
        hi = ghost_find(g, host);
        g->hosts[hi].from_ns = from < of ? from : of;
        g->hosts[hi].to_ns = to > ot ? to : ot;
        return 0;
    }
    if ((rc = load_range(g, s, host, from, to, st)) != 0)
        return rc;
    hi = ghost_find(g, host);
    if (hi < 0)
        return 0; /* no events in the window */
    g->hosts[hi].loaded = 1;
    g->hosts[hi].from_ns = from;
    g->hosts[hi].to_ns = to;
    if (st)
        st->hosts++;
    return 0;
}

static int add_record(const Edr__V1__ProcessRecord *p, void *ud)
{
    int rc = edr_graph_add_process_record(ud, p, NULL);
    return rc == EDR_EINVAL ? 0 : rc;
}

/* Loads the window around time t of the host of process entity, and the
 * process's ancestry from the process records (ancestors started before the
 * window: the service that was exploited). */
static int load_process(edr_graph_t *g, edr_store_t *s, const uint8_t entity[16], uint64_t t,
                        const edr_rca_store_opts_t *o, edr_rca_store_stats_t *st)
{
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    Edr__V1__ProcessRecord *pr = NULL;
    int rc = edr_store_process_get(s, entity, &a, &pr);
    if (rc)
        goto out;
    if (pr->host_id.len != 16) {
        rc = EDR_ENOENT;
        goto out;
    }
    uint8_t host[16];
    memcpy(host, pr->host_id.data, 16);
    if (!t)
        t = pr->start_time_ns;
    uint64_t from = t ? sub_sat(t, o->lookback_ns) : 0;
    uint64_t to = t && o->forward_ns ? add_sat(t, o->forward_ns) : UINT64_MAX;
    if ((rc = host_ensure(g, s, host, from, to, st)) != 0)
        goto out;
    rc = edr_store_process_ancestry(s, entity, 0, add_record, g);
out:
    edr_arena_close(&a);
    return rc;
}

int edr_graph_load_store_host(edr_graph_t *g, struct edr_store *s, const uint8_t host_id[16],
                              uint64_t from_ns, uint64_t to_ns)
{
    return host_ensure(g, s, host_id, from_ns, to_ns ? to_ns : UINT64_MAX, NULL);
}

/* ------------------------------------------------------------ lateral moves */

typedef struct {
    const uint8_t *acc_host;    /* host that accepted */
    const uint8_t *lip;         /* its address in the flow */
    size_t lip_len;
    uint32_t lport;             /* its port */
    const uint8_t *peer;        /* the peer's address */
    size_t peer_len;
    uint32_t peer_port;
    uint64_t lo, hi;            /* when the connect may have happened */
    edr_block_key_t cand[32];   /* blocks of other hosts naming our address */
    size_t n_cand;
    uint64_t n_over;            /* more such blocks, not examined */
    int found;
    uint8_t host[16], entity[16];
    uint64_t t;
} probe_t;

static int probe_block(const edr_block_info_t *bi, void *ud)
{
    probe_t *p = ud;
    if (!memcmp(bi->key.host_id, p->acc_host, 16))
        return 0;
    if (bi->first_ns > p->hi || bi->last_ns < p->lo)
        return 0;
    if (p->n_cand < sizeof(p->cand) / sizeof(p->cand[0]))
        p->cand[p->n_cand++] = bi->key;
    else
        p->n_over++;
    return 0;
}

static int ip_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (al == bl)
        return !memcmp(a, b, al);
    if (al == 16 && bl == 4)
        return !memcmp(a, v4map, 12) && !memcmp(a + 12, b, 4);
    if (al == 4 && bl == 16)
        return !memcmp(b, v4map, 12) && !memcmp(b + 12, a, 4);
    return 0;
}

/* The connect that is the other side of the accepted flow: same four-tuple. */
static int probe_event(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                       void *ud)
{
    probe_t *p = ud;
    const Edr__V1__Network *nw = e->body_case == EDR__V1__EVENT__BODY_NETWORK ? e->network : NULL;
    if (!nw || nw->action != EDR__V1__NETWORK__ACTION__CONNECT || !nw->remote || !nw->local ||
        edr_connect_failed(nw) || e->entity_id.len != 16)
        return 0;
    if (nw->remote->port != p->lport || nw->local->port != p->peer_port ||
        !ip_eq(nw->remote->ip.data, nw->remote->ip.len, p->lip, p->lip_len) ||
        !ip_eq(nw->local->ip.data, nw->local->ip.len, p->peer, p->peer_len))
        return 0;
    uint64_t t = b->base_time_ns + (uint64_t)e->time_offset_ns;
    if (t < p->lo || t > p->hi)
        return 0;
    p->found = 1;
    memcpy(p->host, k->host_id, 16);
    memcpy(p->entity, e->entity_id.data, 16);
    p->t = t;
    return 1;
}

/* The inbound entry of r (an accepted connection), or EDR_GRAPH_NONE. */
static uint32_t inbound_entry(const edr_graph_t *g, const edr_rca_t *r)
{
    for (size_t i = 0; i < r->n_chain; i++) {
        const edr_rca_item_t *it = &r->chain[i];
        if (it->role != EDR_ROLE_ENTRY || it->edge == EDR_GRAPH_NONE)
            continue;
        const gedge_t *ed = &g->edges[it->edge];
        if (ed->kind == EDR_EDGE_ACCEPT && (g->nodes[ed->src].flags & GN_INBOUND))
            return it->edge;
    }
    return EDR_GRAPH_NONE;
}

/* 1 when the accepting process already has a cross-host link for that flow. */
static int linked(const edr_graph_t *g, uint32_t acc)
{
    const gedge_t *a = &g->edges[acc];
    for (uint32_t e = g->nodes[a->dst].in_head; e != EDR_GRAPH_NONE; e = g->edges[e].next_in)
        if (g->edges[e].kind == EDR_EDGE_LATERAL && g->edges[e].t == a->t)
            return 1;
    return 0;
}

/* Finds the process of another host in the store that opened the flow the
 * entry edge accepted, and loads it with its host's window. 1 when loaded,
 * 0 when the peer is no host of the store, or a negative error. */
/* follow_lateral's answer when the other side was not found in the blocks it
 * examined and more candidate blocks were left (more than fit in a probe). */
#define LATERAL_CUT 2

static int follow_lateral(edr_graph_t *g, edr_store_t *s, uint32_t acc, const edr_rca_opts_t *ro,
                          const edr_rca_store_opts_t *o, edr_rca_store_stats_t *st)
{
    const gedge_t *a = &g->edges[acc];
    const gnode_t *rem = &g->nodes[a->src];
    probe_t p;
    memset(&p, 0, sizeof(p));
    p.acc_host = g->hosts[g->nodes[a->dst].host].id;
    p.lip_len = edr__graph_local_ip(g, rem, &p.lip);
    p.peer_len = edr__graph_remote_ip(g, rem, &p.peer);
    uint32_t peer_port = edr__graph_edge_aux(g, acc);
    if (!p.lip_len || !p.peer_len || !peer_port || !rem->pid)
        return 0;
    p.lport = rem->pid;
    p.peer_port = peer_port;
    uint64_t skew = ro ? ro->clock_skew_ns : 2000000000ull;
    p.lo = sub_sat(a->t, skew);
    p.hi = add_sat(a->t, skew);
    int rc = edr_store_remote_blocks(s, p.lip, p.lip_len, p.lo, add_sat(p.hi, 1), probe_block, &p);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < p.n_cand && !p.found; i++) {
        if (st)
            st->probes++;
        rc = edr_store_block_events(s, &p.cand[i], probe_event, &p);
        if (rc < 0 && rc != EDR_ENOENT)
            return rc;
    }
    if (!p.found) {
        if (st)
            st->probes_cut += p.n_over; /* the other side may be in one of those */
        return p.n_over ? LATERAL_CUT : 0;
    }
    int hi = ghost_find(g, p.host);
    if (hi >= 0 && g->hosts[hi].loaded && edr_graph_find_entity(g, p.entity) != EDR_GRAPH_NONE)
        return 0; /* loaded already: the flow did not link (nothing more to learn) */
    if ((rc = load_process(g, s, p.entity, p.t, o, st)) != 0)
        return rc == EDR_ENOENT ? 0 : rc;
    if (st)
        st->hops++;
    return 1;
}

/* Forward: connections made by the attack's processes to another host of
 * the store, where the accepting side is found by (our address, their
 * address, their port, time). */
#define FWD_MAX 16
typedef struct {
    const uint8_t *our_host;
    struct fwd_conn {
        const uint8_t *lip; /* our address (the accepting host names it as remote) */
        size_t lip_len;
        const uint8_t *ip; /* their address */
        size_t ip_len;
        uint32_t port;
        uint64_t t;
    } conn[FWD_MAX];
    size_t n_conn;
    const uint8_t *lip; /* the address of this round */
    size_t lip_len;
    uint64_t skew, lo, hi;
    edr_block_key_t cand[32];
    size_t n_cand;
    uint64_t n_over; /* more candidate blocks, not examined */
    size_t n_found;
    struct {
        uint8_t host[16], entity[16];
        uint64_t t;
    } found[FWD_MAX];
} fwd_t;

static int fwd_block(const edr_block_info_t *bi, void *ud)
{
    fwd_t *f = ud;
    if (!memcmp(bi->key.host_id, f->our_host, 16) || bi->first_ns > f->hi || bi->last_ns < f->lo)
        return 0;
    if (f->n_cand < sizeof(f->cand) / sizeof(f->cand[0]))
        f->cand[f->n_cand++] = bi->key;
    else
        f->n_over++;
    return 0;
}

static int fwd_event(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k, void *ud)
{
    fwd_t *f = ud;
    const Edr__V1__Network *nw = e->body_case == EDR__V1__EVENT__BODY_NETWORK ? e->network : NULL;
    if (!nw || nw->action != EDR__V1__NETWORK__ACTION__ACCEPT || !nw->remote || !nw->local ||
        e->entity_id.len != 16 || !ip_eq(nw->remote->ip.data, nw->remote->ip.len, f->lip, f->lip_len))
        return 0;
    uint64_t t = b->base_time_ns + (uint64_t)e->time_offset_ns;
    for (size_t i = 0; i < f->n_conn; i++) {
        const struct fwd_conn *c = &f->conn[i];
        if (!ip_eq(c->lip, c->lip_len, f->lip, f->lip_len) || nw->local->port != c->port ||
            !ip_eq(nw->local->ip.data, nw->local->ip.len, c->ip, c->ip_len) || t + f->skew < c->t ||
            t > c->t + f->skew)
            continue;
        if (f->n_found < FWD_MAX) {
            memcpy(f->found[f->n_found].host, k->host_id, 16);
            memcpy(f->found[f->n_found].entity, e->entity_id.data, 16);
            f->found[f->n_found].t = t;
            f->n_found++;
        }
        break;
    }
    return 0;
}

/* 1 when process p has a cross-host link out near time t. */
static int linked_out(const edr_graph_t *g, uint32_t p, uint64_t t, uint64_t skew)
{
    for (uint32_t e = g->nodes[p].out_head; e != EDR_GRAPH_NONE; e = g->edges[e].next_out)
        if (g->edges[e].kind == EDR_EDGE_LATERAL && g->edges[e].t + skew >= t && g->edges[e].t <= t + skew)
            return 1;
    return 0;
}

/* Loads the hosts that accepted connections of the attack's processes.
 * Returns how many host windows were loaded, or a negative error; sets *cut
 * when candidate blocks were left unexamined. */
static int follow_forward(edr_graph_t *g, edr_store_t *s, const edr_rca_t *r, const edr_rca_opts_t *ro,
                          const edr_rca_store_opts_t *o, edr_rca_store_stats_t *st, int *cut)
{
    fwd_t f;
    memset(&f, 0, sizeof(f));
    f.skew = ro ? ro->clock_skew_ns : 2000000000ull;
    for (size_t i = 0; i < r->n_chain && f.n_conn < FWD_MAX; i++) {
        uint32_t p = r->chain[i].node;
        if (p == r->root || g->nodes[p].kind != EDR_NODE_PROCESS || r->chain[i].role == EDR_ROLE_ENTRY)
            continue;
        for (uint32_t e = g->nodes[p].out_head; e != EDR_GRAPH_NONE && f.n_conn < FWD_MAX; e = g->edges[e].next_out) {
            const gedge_t *ed = &g->edges[e];
            if (ed->kind != EDR_EDGE_CONNECT || linked_out(g, p, ed->t, f.skew))
                continue;
            const gnode_t *rem = &g->nodes[ed->dst];
            const uint8_t *lip, *ip;
            size_t ll = edr__graph_local_ip(g, rem, &lip), il = edr__graph_remote_ip(g, rem, &ip);
            if (!ll || !il)
                continue;
            f.our_host = g->hosts[g->nodes[p].host].id;
            f.conn[f.n_conn++] = (struct fwd_conn){lip, ll, ip, il, rem->pid, ed->t};
        }
    }
    int rc;
    /* one store query per distinct local address (rounds over the connections) */
    for (size_t i = 0; i < f.n_conn; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = ip_eq(f.conn[j].lip, f.conn[j].lip_len, f.conn[i].lip, f.conn[i].lip_len);
        if (seen)
            continue;
        f.lip = f.conn[i].lip;
        f.lip_len = f.conn[i].lip_len;
        f.lo = UINT64_MAX;
        f.hi = 0;
        for (size_t j = i; j < f.n_conn; j++)
            if (ip_eq(f.conn[j].lip, f.conn[j].lip_len, f.lip, f.lip_len)) {
                f.lo = f.conn[j].t < f.lo ? f.conn[j].t : f.lo;
                f.hi = f.conn[j].t > f.hi ? f.conn[j].t : f.hi;
            }
        f.lo = sub_sat(f.lo, f.skew);
        f.hi = add_sat(f.hi, f.skew);
        f.n_cand = 0;
        rc = edr_store_remote_blocks(s, f.lip, f.lip_len, f.lo, add_sat(f.hi, 1), fwd_block, &f);
        if (rc < 0)
            return rc;
        for (size_t k = 0; k < f.n_cand; k++) {
            if (st)
                st->probes++;
            rc = edr_store_block_events(s, &f.cand[k], fwd_event, &f);
            if (rc < 0 && rc != EDR_ENOENT)
                return rc;
        }
        if (f.n_over) {
            if (st)
                st->probes_cut += f.n_over;
            *cut = 1;
        }
    }
    int loaded = 0;
    for (size_t i = 0; i < f.n_found; i++) {
        int hi = ghost_find(g, f.found[i].host);
        if (hi >= 0 && g->hosts[hi].loaded)
            continue;
        if (g->n_hosts >= o->max_hosts)
            break;
        rc = load_process(g, s, f.found[i].entity, f.found[i].t, o, st);
        if (rc && rc != EDR_ENOENT)
            return rc;
        if (!rc) {
            loaded++;
            if (st)
                st->hops++;
        }
    }
    return loaded;
}

edr_rca_t *edr_rca_run_store(edr_graph_t *g, struct edr_store *s, const uint8_t entity[16], uint64_t at_ns,
                             const edr_rca_opts_t *ro, const edr_rca_store_opts_t *so,
                             edr_rca_store_stats_t *st, int *err)
{
    edr_rca_store_opts_t o;
    if (so)
        o = *so;
    else
        edr_rca_store_opts_default(&o);
    if (!o.lookback_ns)
        o.lookback_ns = 24ull * 3600 * 1000000000ull;
    if (!o.max_hosts)
        o.max_hosts = 8;
    if (st)
        memset(st, 0, sizeof(*st));
    int rc = 0, cut = 0;
    edr_rca_t *r = NULL;
    uint32_t start = edr_graph_find_entity(g, entity);
    if (start == EDR_GRAPH_NONE || !g->hosts[g->nodes[start].host].loaded) {
        if ((rc = load_process(g, s, entity, at_ns, &o, st)) != 0)
            goto out;
        start = edr_graph_find_entity(g, entity);
        if (start == EDR_GRAPH_NONE) {
            rc = EDR_ENOENT;
            goto out;
        }
    }
    for (uint32_t hosts = 1;; hosts++) {
        r = edr_rca_run(g, start, at_ns, ro, &rc);
        if (!r)
            goto out;
        if (hosts >= o.max_hosts)
            break;
        /* backwards: the entry came from another host's process */
        uint32_t acc = inbound_entry(g, r);
        int f = acc == EDR_GRAPH_NONE || linked(g, acc) ? 0 : follow_lateral(g, s, acc, ro, &o, st);
        if (f == LATERAL_CUT) {
            cut = 1;
            f = 0;
        }
        /* forwards: the attack connected into another host */
        if (f == 0)
            f = follow_forward(g, s, r, ro, &o, st, &cut);
        if (f < 0) {
            rc = f;
            goto out;
        }
        if (f == 0)
            break;
        /* the graph now holds the connecting host: the flow is linked, analyse again */
        edr_rca_destroy(r);
        r = NULL;
    }
out:
    if (rc) {
        edr_rca_destroy(r);
        r = NULL;
    }
    if (r && cut)
        r->truncated = 1; /* a cross-host link may have been missed */
    if (err)
        *err = rc;
    return r;
}

#else
int edr_graph_load_store_host(edr_graph_t *g, struct edr_store *s, const uint8_t host_id[16],
                              uint64_t from_ns, uint64_t to_ns)
{
    (void)g;
    (void)s;
    (void)host_id;
    (void)from_ns;
    (void)to_ns;
    return EDR_EUNSUPPORTED;
}

edr_rca_t *edr_rca_run_store(edr_graph_t *g, struct edr_store *s, const uint8_t entity[16], uint64_t at_ns,
                             const edr_rca_opts_t *ro, const edr_rca_store_opts_t *so,
                             edr_rca_store_stats_t *st, int *err)
{
    (void)g;
    (void)s;
    (void)entity;
    (void)at_ns;
    (void)ro;
    (void)so;
    (void)st;
    if (err)
        *err = EDR_EUNSUPPORTED;
    return NULL;
}
#endif
