/* Root-cause analysis: time-respecting backward traversal with pruning, root classification, attack chain and impact. */
#include "graph_int.h"

#include "edr/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LIST  96  /* entries per comma-separated list */
#define MAX_PATH  256 /* steps of the causal path */
#define UNPRUNED_CAP 200000

/* ------------------------------------------------------------ options */

#define DEF_NOISE                                                                                  \
    "/proc/,/sys/,/dev/,/run/udev/,/usr/lib/,/lib/,/lib64/,/usr/lib64/,/usr/lib32/,/usr/share/locale/," \
    "/usr/lib/locale/,/usr/share/fonts/,/usr/share/zoneinfo/,/var/cache/fontconfig/,"            \
    "/etc/ld.so.cache,/etc/localtime,/etc/nsswitch.conf,/etc/passwd,/etc/group,/etc/hosts,"     \
    "/etc/resolv.conf,/var/cache/ldconfig/,/var/lib/dpkg/,/var/log/journal/,"                   \
    "c:\\windows\\system32\\,c:\\windows\\syswow64\\,c:\\windows\\winsxs\\,"                     \
    "c:\\windows\\microsoft.net\\,c:\\windows\\assembly\\,c:\\windows\\fonts\\,"                \
    "c:\\windows\\prefetch\\,c:\\programdata\\microsoft\\windows defender\\,*.mui"
#define DEF_BOUNDARIES                                                                             \
    "init,systemd,launchd,containerd-shim,containerd-shim-runc-v2,dockerd,kthreadd,"            \
    "smss.exe,csrss.exe,wininit.exe,services.exe,lsass.exe,svchost.exe,wmiprvse.exe,"           \
    "system,registry,msmpeng.exe"
#define DEF_SESSIONS                                                                               \
    "sshd,login,gdm-session-worker,lightdm,sddm,xrdp-sesman,su,sudo,winlogon.exe,userinit.exe,"  \
    "explorer.exe"
#define DEF_SCHEDULERS "cron,crond,atd,anacron,taskeng.exe,taskhostw.exe"

void edr_rca_opts_default(edr_rca_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->clock_skew_ns = 2000000000ull;
    o->entry_window_ns = 60000000000ull;
    o->max_nodes = 20000;
    o->max_fanin = 64;
    o->noise_fanin = 64;
    o->rare_max = 8;
    o->max_chain = 4096;
    o->noise_paths = DEF_NOISE;
    o->trust_boundaries = DEF_BOUNDARIES;
    o->session_managers = DEF_SESSIONS;
    o->schedulers = DEF_SCHEDULERS;
}

void edr_rca_opts_from_config(edr_rca_opts_t *o, const edr_config_t *cfg)
{
    edr_rca_opts_default(o);
    o->clock_skew_ns = edr_config_duration_ns(cfg, "analyzer.clock_skew");
    o->entry_window_ns = edr_config_duration_ns(cfg, "analyzer.rca_entry_window");
    o->max_nodes = (uint32_t)edr_config_int(cfg, "analyzer.rca_max_nodes");
    o->max_fanin = (uint32_t)edr_config_int(cfg, "analyzer.rca_max_fanin");
    o->noise_fanin = (uint32_t)edr_config_int(cfg, "analyzer.rca_noise_fanin");
    o->rare_max = (uint32_t)edr_config_int(cfg, "analyzer.rca_rare_max");
    o->max_chain = (uint32_t)edr_config_int(cfg, "analyzer.rca_max_chain");
    const char *s = edr_config_str(cfg, "analyzer.rca_noise_paths");
    if (*s)
        o->noise_paths = s;
    s = edr_config_str(cfg, "analyzer.rca_trust_boundaries");
    if (*s)
        o->trust_boundaries = s;
    s = edr_config_str(cfg, "analyzer.rca_session_managers");
    if (*s)
        o->session_managers = s;
    s = edr_config_str(cfg, "analyzer.rca_schedulers");
    if (*s)
        o->schedulers = s;
    if (!o->max_nodes)
        o->max_nodes = 20000;
    if (!o->max_fanin)
        o->max_fanin = 64;
    if (!o->max_chain)
        o->max_chain = 4096;
}

const char *edr_rca_class_name(edr_rca_class_t c)
{
    switch (c) {
    case EDR_RCA_INBOUND_CONNECTION:
        return "inbound_connection";
    case EDR_RCA_DOWNLOAD_EXECUTE:
        return "download_execute";
    case EDR_RCA_USER_SESSION:
        return "user_session";
    case EDR_RCA_PERSISTENCE:
        return "persistence";
    default:
        return "unknown";
    }
}

const char *edr_rca_role_name(edr_rca_role_t r)
{
    static const char *const n[] = {"root", "path", "entry", "spawned", "network", "dropped", "written"};
    return (unsigned)r < sizeof(n) / sizeof(n[0]) ? n[r] : "other";
}

/* ------------------------------------------------------------ context */

typedef struct {
    char buf[2048];
    const char *item[MAX_LIST];
    size_t len[MAX_LIST];
    int n;
} strlist_t;

static void list_parse(strlist_t *l, const char *s)
{
    l->n = 0;
    snprintf(l->buf, sizeof(l->buf), "%s", s ? s : "");
    char *p = l->buf;
    while (*p && l->n < MAX_LIST) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char *e = p;
        while (*e && *e != ',')
            e++;
        char *end = e;
        while (end > p && end[-1] == ' ')
            end--;
        l->item[l->n] = p;
        l->len[l->n] = (size_t)(end - p);
        l->n++;
        if (!*e)
            break;
        *end = '\0';
        p = e + 1;
    }
}

static int list_has_name(const strlist_t *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strlen(name) == l->len[i] && strncasecmp(name, l->item[i], l->len[i]) == 0)
            return 1;
    return 0;
}

/* small open-addressing set/map: node -> value */
typedef struct {
    uint32_t *keys; /* node + 1 */
    uint64_t *vals;
    size_t cap, n;
} nmap_t;

static int nmap_init(nmap_t *m, size_t cap)
{
    m->cap = 64;
    while (m->cap < cap * 2)
        m->cap *= 2;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof(*m->keys));
    m->vals = calloc(m->cap, sizeof(*m->vals));
    if (m->keys && m->vals)
        return 0;
    free(m->keys); /* nothing half made is left to the caller */
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    return EDR_ENOMEM;
}

static void nmap_free(nmap_t *m)
{
    free(m->keys);
    free(m->vals);
}

static size_t nmap_slot(const nmap_t *m, uint32_t k)
{
    size_t j = ((uint64_t)k * 0x9E3779B97F4A7C15ull >> 20) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != k + 1)
        j = (j + 1) & (m->cap - 1);
    return j;
}

static uint64_t *nmap_get(const nmap_t *m, uint32_t k)
{
    size_t j = nmap_slot(m, k);
    return m->keys[j] ? &m->vals[j] : NULL;
}

/* Inserts k (value v) unless present; returns the value slot, NULL on OOM. */
static uint64_t *nmap_put(nmap_t *m, uint32_t k, uint64_t v, int *added)
{
    *added = 0;
    if ((m->n + 1) * 2 > m->cap) {
        nmap_t bigger;
        if (nmap_init(&bigger, m->cap) != 0) {
            nmap_free(&bigger);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = nmap_slot(&bigger, m->keys[i] - 1);
                bigger.keys[j] = m->keys[i];
                bigger.vals[j] = m->vals[i];
                bigger.n++;
            }
        nmap_free(m);
        *m = bigger;
    }
    size_t j = nmap_slot(m, k);
    if (!m->keys[j]) {
        m->keys[j] = k + 1;
        m->vals[j] = v;
        m->n++;
        *added = 1;
    }
    return &m->vals[j];
}

typedef struct {
    const edr_graph_t *g;
    edr_rca_opts_t o;
    strlist_t noise, bounds, sessions, scheds;
    edr_rca_t *r;
    nmap_t chain_set;  /* node -> index in r->chain */
    nmap_t impact_set; /* node -> index in r->impact */
    nmap_t edge_set;   /* edge -> 1 (subgraph) */
    size_t cap_chain, cap_impact, cap_edges;
    uint32_t path[MAX_PATH];
    uint32_t path_edge[MAX_PATH]; /* edge into path[i] from path[i-1] (index 0: none) */
    int n_path;
    struct cand *cand; /* incoming edges of one node considered by the backward walk */
    size_t cand_cap;
} ctx_t;

typedef struct cand {
    uint32_t edge;
    uint32_t rarity; /* edges of the same pattern on the host */
    uint64_t t;
} cand_t;

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->rarity != y->rarity)
        return x->rarity < y->rarity ? -1 : 1;
    if (x->t != y->t)
        return x->t > y->t ? -1 : 1;
    return x->edge < y->edge ? -1 : x->edge > y->edge;
}

static const gnode_t *N(const ctx_t *c, uint32_t n)
{
    return &c->g->nodes[n];
}

static const gedge_t *E(const ctx_t *c, uint32_t e)
{
    return &c->g->edges[e];
}

static int ends_with_ci(const char *s, size_t sl, const char *suf, size_t fl)
{
    return sl >= fl && strncasecmp(s + sl - fl, suf, fl) == 0;
}

static int noise_path(const ctx_t *c, const char *path)
{
    size_t pl = strlen(path);
    for (int i = 0; i < c->noise.n; i++) {
        const char *it = c->noise.item[i];
        size_t l = c->noise.len[i];
        if (it[0] == '*') {
            if (ends_with_ci(path, pl, it + 1, l - 1))
                return 1;
        } else if (pl >= l && strncasecmp(path, it, l) == 0)
            return 1;
    }
    return 0;
}

/* A file is noise when its path is, or when very many processes map or execute it. */
static int noise_file(const ctx_t *c, uint32_t f)
{
    if (noise_path(c, edr__gstr(c->g, N(c, f)->s_a)))
        return 1;
    if (!c->o.noise_fanin)
        return 0;
    uint32_t k = 0;
    for (uint32_t e = N(c, f)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out)
        if ((E(c, e)->kind == EDR_EDGE_MMAP) && ++k > c->o.noise_fanin)
            return 1;
    return 0;
}

static const char *proc_name(const ctx_t *c, uint32_t p)
{
    const char *n = edr__basename(edr__gstr(c->g, N(c, p)->s_a));
    return *n ? n : "a process with no recorded image";
}

/* 0: not a boundary, 1: session manager, 2: scheduler, 3: other trust boundary. */
static int boundary_kind(const ctx_t *c, uint32_t p)
{
    if (p == EDR_GRAPH_NONE || N(c, p)->kind != EDR_NODE_PROCESS)
        return 0;
    const char *b = proc_name(c, p);
    if (list_has_name(&c->sessions, b))
        return 1;
    if (list_has_name(&c->scheds, b))
        return 2;
    if (N(c, p)->pid == 1 || list_has_name(&c->bounds, b))
        return 3;
    return 0;
}

static uint32_t ip_rarity(const ctx_t *c, uint32_t remote)
{
    const uint8_t *ip;
    size_t l = edr__graph_remote_ip(c->g, N(c, remote), &ip);
    return l ? edr__graph_ip_count(c->g, N(c, remote)->host, ip, l) : UINT32_MAX;
}

static int within(uint64_t t, uint64_t lo, uint64_t hi)
{
    return t >= lo && t <= hi;
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int untrusted_injector(const ctx_t *c, uint32_t q);

/* ------------------------------------------------------------ result lists */

static int edge_mark(ctx_t *c, uint32_t e)
{
    if (e == EDR_GRAPH_NONE)
        return 0;
    int added;
    if (!nmap_put(&c->edge_set, e, 1, &added))
        return EDR_ENOMEM;
    if (!added)
        return 0;
    if (edr__grow((void **)&c->r->edges, &c->cap_edges, c->r->n_edges + 1, sizeof(*c->r->edges), 256))
        return EDR_ENOMEM;
    c->r->edges[c->r->n_edges++] = e;
    return 0;
}

static int item_add(ctx_t *c, int impact, uint32_t node, uint32_t edge, uint64_t t, uint32_t port,
                    edr_rca_role_t role)
{
    nmap_t *set = impact ? &c->impact_set : &c->chain_set;
    edr_rca_item_t **arr = impact ? &c->r->impact : &c->r->chain;
    size_t *n = impact ? &c->r->n_impact : &c->r->n_chain;
    size_t *cap = impact ? &c->cap_impact : &c->cap_chain;
    uint64_t *have = nmap_get(set, node);
    if (have) {
        edr_rca_item_t *it = &(*arr)[*have];
        if (role == EDR_ROLE_PATH && it->role != EDR_ROLE_ROOT) {
            it->role = (uint8_t)role;
            it->on_path = 1;
        }
        return 0;
    }
    if (*n >= c->o.max_chain) {
        c->r->truncated = 1;
        return 0;
    }
    int added;
    uint64_t *slot = nmap_put(set, node, *n, &added);
    if (!slot)
        return EDR_ENOMEM;
    if (edr__grow((void **)arr, cap, *n + 1, sizeof(**arr), 64))
        return EDR_ENOMEM;
    edr_rca_item_t *it = &(*arr)[*n];
    *slot = *n;
    (*n)++;
    it->node = node;
    it->edge = edge;
    it->time_ns = t;
    it->port = port;
    it->role = (uint8_t)role;
    it->on_path = role == EDR_ROLE_PATH || role == EDR_ROLE_ROOT;
    if (edge != EDR_GRAPH_NONE)
        return edge_mark(c, edge);
    return 0;
}

/* ------------------------------------------------------------ backward traversal */

typedef struct {
    uint32_t node;
    uint64_t bound;
} work_t;

/*
 * Breadth-first walk against the arrow of time: from each node, follow
 * incoming edges that happened no later than the dependency being explained
 * (plus the clock-skew tolerance). With prune set: trust boundaries are not
 * expanded, noise files and files with no writer in the window are dropped,
 * network peers are kept only when rare and in the entry window, only write
 * access between processes counts, and each node keeps at most max_fanin
 * edges: the rarest edge patterns of the host first, then the latest.
 * Returns the number of edges followed.
 */
static long backward(ctx_t *c, uint32_t start, uint64_t bound, int prune)
{
    const edr_graph_t *g = c->g;
    nmap_t seen;
    long followed = 0;
    size_t cap = 1024, head = 0, tail = 0;
    work_t *q = malloc(cap * sizeof(*q));
    if (!q || nmap_init(&seen, 1024) != 0) {
        free(q);
        return EDR_ENOMEM;
    }
    int added;
    nmap_put(&seen, start, bound, &added);
    q[tail++] = (work_t){start, bound};
    size_t limit = prune ? c->o.max_nodes : UNPRUNED_CAP;
    while (head < tail) {
        work_t w = q[head++];
        const gnode_t *x = &g->nodes[w.node];
        if (prune && w.node != start && x->kind == EDR_NODE_PROCESS && boundary_kind(c, w.node))
            continue;
        if (prune && x->kind == EDR_NODE_FILE && noise_file(c, w.node))
            continue;
        uint64_t lim = add_sat(w.bound, c->o.clock_skew_ns);
        size_t nc = 0;
        /* unpruned, the walk ends after UNPRUNED_CAP edges: a node with
         * millions of incoming edges (a server's accepts) collects no more
         * candidates than can still be followed */
        size_t room = prune ? SIZE_MAX : (size_t)followed < UNPRUNED_CAP ? UNPRUNED_CAP - (size_t)followed + 1 : 1;
        for (uint32_t e = x->in_head; e != EDR_GRAPH_NONE && nc < room; e = g->edges[e].next_in) {
            const gedge_t *ed = &g->edges[e];
            if (ed->t > lim)
                continue;
            if (prune) {
                const gnode_t *s = &g->nodes[ed->src];
                switch (ed->kind) {
                case EDR_EDGE_EXEC:
                case EDR_EDGE_MMAP: {
                    /* a file only explains something when we saw it written */
                    uint32_t wi = s->in_head;
                    if (wi == EDR_GRAPH_NONE || noise_file(c, ed->src))
                        continue;
                    break;
                }
                case EDR_EDGE_ACCEPT:
                    if (ed->t + c->o.entry_window_ns < w.bound ||
                        ip_rarity(c, ed->src) > c->o.rare_max)
                        continue;
                    break;
                case EDR_EDGE_ACCESS:
                    if (!(ed->flags & GE_WRITE_ACCESS) || !untrusted_injector(c, ed->src))
                        continue;
                    break;
                default:
                    break;
                }
            }
            if (edr__grow((void **)&c->cand, &c->cand_cap, nc + 1, sizeof(*c->cand), 256)) {
                followed = EDR_ENOMEM;
                goto out;
            }
            c->cand[nc++] = (cand_t){e, 0, ed->t};
        }
        if (prune && nc > c->o.max_fanin) {
            /* dependency explosion: keep the rarest edge patterns of the
             * host (then the latest), not merely the latest */
            for (size_t i = 0; i < nc; i++)
                c->cand[i].rarity = edr_graph_edge_rarity(g, c->cand[i].edge);
            qsort(c->cand, nc, sizeof(*c->cand), cmp_cand);
            nc = c->o.max_fanin;
            c->r->truncated = 1;
        }
        for (size_t ci = 0; ci < nc; ci++) {
            uint32_t e = c->cand[ci].edge;
            const gedge_t *ed = &g->edges[e];
            followed++;
            if (prune && edge_mark(c, e) != 0) {
                followed = EDR_ENOMEM;
                goto out;
            }
            uint64_t nb = ed->t ? ed->t : w.bound;
            uint64_t *sb = nmap_put(&seen, ed->src, nb, &added);
            if (!sb) {
                followed = EDR_ENOMEM;
                goto out;
            }
            if (!added) {
                if (*sb >= nb)
                    continue;
                *sb = nb; /* reached later: more of its past can matter */
            }
            if (seen.n > limit || (size_t)followed > UNPRUNED_CAP) {
                c->r->truncated |= prune;
                goto out;
            }
            if (tail == cap) {
                if (head > 0) {
                    memmove(q, q + head, (tail - head) * sizeof(*q));
                    tail -= head;
                    head = 0;
                }
                if (edr__grow((void **)&q, &cap, tail + 1, sizeof(*q), 1024)) {
                    followed = EDR_ENOMEM;
                    goto out;
                }
            }
            q[tail++] = (work_t){ed->src, nb};
        }
    }
out:
    if (prune)
        c->r->nodes_visited = seen.n;
    nmap_free(&seen);
    free(q);
    return followed;
}

/* ------------------------------------------------------------ the causal path */

/* Latest incoming edge of kind k into n with lo <= t <= hi. */
static uint32_t latest_in(const ctx_t *c, uint32_t n, edr_edge_kind_t k, uint64_t lo, uint64_t hi)
{
    uint32_t best = EDR_GRAPH_NONE;
    for (uint32_t e = N(c, n)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in)
        if (E(c, e)->kind == k && within(E(c, e)->t, lo, hi) &&
            (best == EDR_GRAPH_NONE || E(c, e)->t > E(c, best)->t))
            best = e;
    return best;
}

static int in_path(const ctx_t *c, uint32_t n)
{
    for (int i = 0; i < c->n_path; i++)
        if (c->path[i] == n)
            return 1;
    return 0;
}

/* The path is built from the start backwards; path[0] is the start until reversed. */
static int path_push(ctx_t *c, uint32_t n, uint32_t edge_to_prev)
{
    if (c->n_path >= MAX_PATH) {
        c->r->truncated = 1;
        return 0;
    }
    /* edge_to_prev leads from n to the previously pushed node */
    if (c->n_path > 0)
        c->path_edge[c->n_path - 1] = edge_to_prev;
    c->path[c->n_path] = n;
    c->path_edge[c->n_path] = EDR_GRAPH_NONE;
    c->n_path++;
    return 1;
}

/* The writer of file f that explains its content at time t: the latest write
 * or rename into it (or, for a rename, the latest write to the old name). */
static uint32_t file_writer(const ctx_t *c, uint32_t f, uint64_t t, uint32_t *file_out)
{
    uint64_t hi = add_sat(t, c->o.clock_skew_ns);
    uint32_t w = latest_in(c, f, EDR_EDGE_WRITE, 0, hi);
    uint32_t rn = latest_in(c, f, EDR_EDGE_RENAME, 0, hi);
    *file_out = f;
    if (rn != EDR_GRAPH_NONE && (w == EDR_GRAPH_NONE || E(c, rn)->t >= E(c, w)->t)) {
        uint32_t from = latest_in(c, f, EDR_EDGE_RENAME_FROM, 0, add_sat(E(c, rn)->t, c->o.clock_skew_ns));
        if (from != EDR_GRAPH_NONE) {
            uint32_t w0 = latest_in(c, E(c, from)->src, EDR_EDGE_WRITE, 0, hi);
            if (w0 != EDR_GRAPH_NONE) {
                *file_out = E(c, from)->src;
                return w0;
            }
        }
        return rn;
    }
    return w;
}

/* Latest usable outbound connection of p in [lo, hi]; rare_only: to rare peers. */
static uint32_t connect_in_window(const ctx_t *c, uint32_t p, uint64_t lo, uint64_t hi, int rare_only,
                                  int earliest)
{
    uint32_t best = EDR_GRAPH_NONE;
    for (uint32_t e = N(c, p)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out) {
        const gedge_t *ed = E(c, e);
        if (ed->kind != EDR_EDGE_CONNECT || !within(ed->t, lo, hi))
            continue;
        if (rare_only && ip_rarity(c, ed->dst) > c->o.rare_max)
            continue;
        if (best == EDR_GRAPH_NONE || (earliest ? ed->t < E(c, best)->t : ed->t > E(c, best)->t))
            best = e;
    }
    return best;
}

static int is_downloader(const char *name)
{
    static const char *const d[] = {"curl", "wget", "fetch", "aria2c", "scp", "sftp", "tftp",
                                     "certutil.exe", "bitsadmin.exe", "curl.exe", "wget.exe"};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        if (strcasecmp(name, d[i]) == 0)
            return 1;
    return 0;
}

/*
 * Classifies a service-like root (parent unknown or a trust boundary) from
 * its network activity in the entry window before the first attack step t1.
 * Returns the process to continue from when the entry came from another
 * host's process over a linked flow, else EDR_GRAPH_NONE.
 */
static uint32_t classify_service(ctx_t *c, uint32_t root, uint64_t t1, uint64_t *cont_bound,
                                 uint32_t *cont_edge)
{
    edr_rca_t *r = c->r;
    uint64_t lo = sub_sat(t1, c->o.entry_window_ns), hi = add_sat(t1, c->o.clock_skew_ns);
    uint32_t best = EDR_GRAPH_NONE, best_rar = UINT32_MAX, best_pat = UINT32_MAX, any = EDR_GRAPH_NONE;
    for (uint32_t e = N(c, root)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in) {
        const gedge_t *ed = E(c, e);
        if (ed->kind != EDR_EDGE_ACCEPT || !within(ed->t, lo, hi))
            continue;
        if (any == EDR_GRAPH_NONE || ed->t > E(c, any)->t)
            any = e;
        /* the rarest peer of the host, then the rarest (peer, service) pattern, then the latest */
        uint32_t rar = ip_rarity(c, ed->src), pat = edr_graph_edge_rarity(c->g, e);
        if (rar < best_rar || (rar == best_rar && (pat < best_pat || (pat == best_pat && ed->t > E(c, best)->t)))) {
            best = e;
            best_rar = rar;
            best_pat = pat;
        }
    }
    char ipb[64];
    if (best != EDR_GRAPH_NONE && best_rar <= c->o.rare_max) {
        r->cls = EDR_RCA_INBOUND_CONNECTION;
        r->entry = E(c, best)->src;
        r->entry_ns = E(c, best)->t;
        const uint8_t *ip;
        size_t l = edr__graph_remote_ip(c->g, N(c, r->entry), &ip);
        edr__ip_format(ip, l, ipb, sizeof(ipb));
        snprintf(r->reason, sizeof(r->reason),
                 "%s accepted a connection from %s on port %u and then started the attack",
                 proc_name(c, root), ipb, N(c, r->entry)->pid);
        /* the peer is another host we see: continue there */
        for (uint32_t e = N(c, root)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in)
            if (E(c, e)->kind == EDR_EDGE_LATERAL && E(c, e)->t + c->o.clock_skew_ns >= E(c, best)->t &&
                E(c, e)->t <= E(c, best)->t + c->o.clock_skew_ns && !in_path(c, E(c, e)->src)) {
                *cont_bound = E(c, e)->t;
                *cont_edge = e;
                return E(c, e)->src;
            }
        return EDR_GRAPH_NONE;
    }
    uint32_t cn = connect_in_window(c, root, lo, hi, 1, 1);
    if (cn != EDR_GRAPH_NONE && boundary_kind(c, root) == 0) {
        r->cls = EDR_RCA_INBOUND_CONNECTION;
        r->entry = E(c, cn)->dst;
        r->entry_ns = E(c, cn)->t;
        const uint8_t *ip;
        size_t l = edr__graph_remote_ip(c->g, N(c, r->entry), &ip);
        edr__ip_format(ip, l, ipb, sizeof(ipb));
        snprintf(r->reason, sizeof(r->reason),
                 "service %s talked to the rare peer %s:%u just before starting the attack "
                 "(the inbound request itself was not recorded)",
                 proc_name(c, root), ipb, N(c, r->entry)->pid);
        return EDR_GRAPH_NONE;
    }
    if (any != EDR_GRAPH_NONE) {
        r->cls = EDR_RCA_INBOUND_CONNECTION;
        r->entry = E(c, any)->src;
        r->entry_ns = E(c, any)->t;
        snprintf(r->reason, sizeof(r->reason),
                 "%s accepted connections shortly before starting the attack (no rare peer)",
                 proc_name(c, root));
        return EDR_GRAPH_NONE;
    }
    r->cls = EDR_RCA_UNKNOWN;
    snprintf(r->reason, sizeof(r->reason), "%s has no recorded parent and no network entry",
             proc_name(c, root));
    return EDR_GRAPH_NONE;
}

/* A process whose write access into another explains it: its image is
 * known, it is no trust boundary and it is not a system binary (those open
 * every new process: csrss, lsass, the services host). */
static int untrusted_injector(const ctx_t *c, uint32_t q)
{
    const char *exe = edr__gstr(c->g, N(c, q)->s_a);
    return *exe && !boundary_kind(c, q) && !noise_path(c, exe);
}

/* Walks from the start to the root cause; fills c->path (start first). */
static int walk(ctx_t *c)
{
    edr_rca_t *r = c->r;
    uint32_t cur = r->start;
    uint64_t bound = r->start_ns;
    c->n_path = 0;
    path_push(c, cur, EDR_GRAPH_NONE);
    if (N(c, cur)->kind != EDR_NODE_PROCESS) {
        r->root = cur;
        r->cls = EDR_RCA_UNKNOWN;
        snprintf(r->reason, sizeof(r->reason), "analysis started from a non-process node");
        return 0;
    }
    /* a step pushes at most two nodes: it starts only with room for them, so
     * the node the walk stops at is on the path (a push refused for room
     * left the walk going on without it: the chain lost its own start) */
    for (int step = 0; step < MAX_PATH && c->n_path + 2 <= MAX_PATH; step++) {
        uint64_t hi = add_sat(bound, c->o.clock_skew_ns);
        /* 1. the image: written here, from the network? */
        uint32_t ex = latest_in(c, cur, EDR_EDGE_EXEC, 0, hi);
        if (ex != EDR_GRAPH_NONE && !noise_file(c, E(c, ex)->src)) {
            uint32_t f = E(c, ex)->src, src_file;
            uint32_t we = file_writer(c, f, E(c, ex)->t, &src_file);
            if (we != EDR_GRAPH_NONE && !in_path(c, E(c, we)->src)) {
                uint32_t w = E(c, we)->src;
                uint64_t wt = E(c, we)->t;
                uint32_t cn = connect_in_window(c, w, sub_sat(wt, c->o.entry_window_ns),
                                                add_sat(wt, c->o.clock_skew_ns), 0, 0);
                path_push(c, f, ex);
                if (cn != EDR_GRAPH_NONE || is_downloader(proc_name(c, w))) {
                    r->root = f;
                    r->cls = EDR_RCA_DOWNLOAD_EXECUTE;
                    r->entry = w;
                    r->entry_ns = wt;
                    snprintf(r->reason, sizeof(r->reason),
                             "%s was written by %s%s and then executed", edr__gstr(c->g, N(c, f)->s_a),
                             proc_name(c, w), cn != EDR_GRAPH_NONE ? " after a network connection" : "");
                    edge_mark(c, we);
                    return 0;
                }
                /* dropped by a local process: that process is the cause */
                path_push(c, w, we);
                cur = w;
                bound = wt;
                continue;
            }
        }
        /* 2. injected by another process */
        uint32_t inj = EDR_GRAPH_NONE, inj_rar = UINT32_MAX;
        uint32_t cur_parent = edr__graph_parent(c->g, cur);
        for (uint32_t e = N(c, cur)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in)
            if (E(c, e)->kind == EDR_EDGE_ACCESS && (E(c, e)->flags & GE_WRITE_ACCESS) &&
                E(c, e)->t <= hi && untrusted_injector(c, E(c, e)->src) &&
                E(c, e)->src != cur_parent && !in_path(c, E(c, e)->src)) {
                /* several injectors: the rarest (injector image -> target image) pattern */
                uint32_t rar = edr_graph_edge_rarity(c->g, e);
                if (rar < inj_rar) {
                    inj = e;
                    inj_rar = rar;
                }
            }
        if (inj != EDR_GRAPH_NONE) {
            path_push(c, E(c, inj)->src, inj);
            cur = E(c, inj)->src;
            bound = E(c, inj)->t;
            continue;
        }
        /* 3. the parent */
        uint32_t p = cur_parent;
        /* the first step of the attack below the root: the start of the
         * child it forked, else the step that led here (the write of the
         * file that ran, the injection, the start itself): not the root's
         * own start, which for a service is days before the attack */
        uint64_t t1 = bound;
        if (c->n_path > 1 && N(c, c->path[c->n_path - 2])->kind == EDR_NODE_PROCESS &&
            edr__graph_parent(c->g, c->path[c->n_path - 2]) == cur)
            t1 = N(c, c->path[c->n_path - 2])->t0;
        int bk = boundary_kind(c, p);
        if (p == EDR_GRAPH_NONE || in_path(c, p) || bk == 3 ||
            (bk == 0 && boundary_kind(c, cur) == 3)) {
            r->root = cur;
            uint64_t cb = 0;
            uint32_t ce = EDR_GRAPH_NONE;
            uint32_t nx = classify_service(c, cur, t1, &cb, &ce);
            if (nx != EDR_GRAPH_NONE) {
                path_push(c, nx, ce);
                cur = nx;
                bound = cb;
                continue;
            }
            return 0;
        }
        uint32_t fe = latest_in(c, cur, EDR_EDGE_FORK, 0, UINT64_MAX);
        if (bk == 1 || bk == 2) {
            /* a session started by another host's process over a linked flow */
            uint64_t st = N(c, cur)->t0;
            uint32_t lat = latest_in(c, p, EDR_EDGE_LATERAL, sub_sat(st, c->o.entry_window_ns),
                                     add_sat(st, c->o.clock_skew_ns));
            if (bk == 1 && lat != EDR_GRAPH_NONE && !in_path(c, E(c, lat)->src)) {
                edge_mark(c, fe);
                path_push(c, E(c, lat)->src, lat);
                cur = E(c, lat)->src;
                bound = E(c, lat)->t;
                continue;
            }
            r->root = cur;
            r->cls = bk == 1 ? EDR_RCA_USER_SESSION : EDR_RCA_PERSISTENCE;
            if (bk == 1) {
                uint32_t best = EDR_GRAPH_NONE;
                for (uint32_t e = N(c, p)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in)
                    if (E(c, e)->kind == EDR_EDGE_ACCEPT &&
                        within(E(c, e)->t, sub_sat(st, c->o.entry_window_ns), add_sat(st, c->o.clock_skew_ns)) &&
                        (best == EDR_GRAPH_NONE || ip_rarity(c, E(c, e)->src) < ip_rarity(c, E(c, best)->src)))
                        best = e;
                if (best != EDR_GRAPH_NONE) {
                    r->entry = E(c, best)->src;
                    r->entry_ns = E(c, best)->t;
                }
            }
            snprintf(r->reason, sizeof(r->reason), "%s was started by %s (%s)", proc_name(c, cur),
                     proc_name(c, p), bk == 1 ? "a logon session" : "a scheduled task or job");
            return 0;
        }
        path_push(c, p, fe);
        bound = fe != EDR_GRAPH_NONE && E(c, fe)->t ? E(c, fe)->t : N(c, p)->t_last;
        cur = p;
    }
    r->root = cur;
    r->cls = EDR_RCA_UNKNOWN;
    r->truncated = 1;
    snprintf(r->reason, sizeof(r->reason), "causal path longer than %d steps", MAX_PATH);
    return 0;
}

/* ------------------------------------------------------------ chain and impact */

/* Time at which a node joins the story. */
static uint64_t item_time(const ctx_t *c, uint32_t n, uint32_t edge)
{
    if (N(c, n)->kind == EDR_NODE_PROCESS && N(c, n)->t0)
        return N(c, n)->t0;
    return edge != EDR_GRAPH_NONE ? E(c, edge)->t : N(c, n)->t0;
}

/* Adds the network activity and dropped files of one attack process. */
static int attack_process_edges(ctx_t *c, uint32_t p, uint64_t from)
{
    int rc;
    for (uint32_t e = N(c, p)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out) {
        const gedge_t *ed = E(c, e);
        if (ed->t && ed->t + c->o.clock_skew_ns < from)
            continue;
        if (ed->kind == EDR_EDGE_CONNECT) {
            if ((rc = item_add(c, 0, ed->dst, e, ed->t, edr__graph_edge_aux(c->g, e), EDR_ROLE_NETWORK)))
                return rc;
        } else if (ed->kind == EDR_EDGE_WRITE || ed->kind == EDR_EDGE_RENAME) {
            /* written and later executed by someone: a dropped payload */
            for (uint32_t x = N(c, ed->dst)->out_head; x != EDR_GRAPH_NONE; x = E(c, x)->next_out)
                if (E(c, x)->kind == EDR_EDGE_EXEC && E(c, x)->t + c->o.clock_skew_ns >= ed->t) {
                    if ((rc = item_add(c, 0, ed->dst, e, ed->t, 0, EDR_ROLE_DROPPED)))
                        return rc;
                    break;
                }
        }
    }
    for (uint32_t e = N(c, p)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in) {
        const gedge_t *ed = E(c, e);
        if (ed->kind == EDR_EDGE_ACCEPT && ed->t + c->o.clock_skew_ns >= from &&
            ip_rarity(c, ed->src) <= c->o.rare_max)
            if ((rc = item_add(c, 0, ed->src, e, ed->t, edr__graph_edge_aux(c->g, e), EDR_ROLE_NETWORK)))
                return rc;
    }
    return 0;
}

/* Every process descending from seed (fork edges, at or after from), seed included, into the chain. */
static int subtree(ctx_t *c, uint32_t seed, uint64_t from, int impact)
{
    size_t cap = 64, n = 0;
    uint32_t *st = malloc(cap * sizeof(*st));
    int rc = 0;
    if (!st)
        return EDR_ENOMEM;
    st[n++] = seed;
    while (n) {
        uint32_t p = st[--n];
        for (uint32_t e = N(c, p)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out) {
            const gedge_t *ed = E(c, e);
            if (ed->kind != EDR_EDGE_FORK || (ed->t && ed->t + c->o.clock_skew_ns < from))
                continue;
            nmap_t *set = impact ? &c->impact_set : &c->chain_set;
            if (nmap_get(set, ed->dst))
                continue;
            if ((rc = item_add(c, impact, ed->dst, e, item_time(c, ed->dst, e), 0,
                               impact ? EDR_ROLE_SPAWNED : EDR_ROLE_SPAWNED)))
                goto out;
            if (!nmap_get(set, ed->dst))
                continue; /* capped */
            if (edr__grow((void **)&st, &cap, n + 1, sizeof(*st), 64)) {
                rc = EDR_ENOMEM;
                goto out;
            }
            st[n++] = ed->dst;
        }
    }
out:
    free(st);
    return rc;
}

/* The attack moved to another host over a linked flow: the process that
 * accepted it there (or, when that is a daemon such as sshd, the first
 * process it started right after) and its subtree belong to the attack. */
static int lateral_spread(ctx_t *c, uint32_t p)
{
    int rc;
    for (uint32_t e = N(c, p)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out) {
        const gedge_t *ed = E(c, e);
        if (ed->kind != EDR_EDGE_LATERAL)
            continue;
        uint32_t t = ed->dst, first = EDR_GRAPH_NONE, fe = EDR_GRAPH_NONE;
        if (!boundary_kind(c, t)) {
            if ((rc = item_add(c, 0, t, e, ed->t, 0, EDR_ROLE_SPAWNED)))
                return rc;
            continue;
        }
        for (uint32_t k = N(c, t)->out_head; k != EDR_GRAPH_NONE; k = E(c, k)->next_out)
            if (E(c, k)->kind == EDR_EDGE_FORK && within(E(c, k)->t, ed->t, add_sat(ed->t, c->o.clock_skew_ns)) &&
                (first == EDR_GRAPH_NONE || E(c, k)->t < E(c, fe)->t)) {
                first = E(c, k)->dst;
                fe = k;
            }
        if (first == EDR_GRAPH_NONE || nmap_get(&c->chain_set, first))
            continue;
        if ((rc = item_add(c, 0, first, fe, item_time(c, first, fe), 0, EDR_ROLE_SPAWNED)) ||
            (rc = subtree(c, first, N(c, first)->t0, 0)))
            return rc;
    }
    return 0;
}

static int build_chain(ctx_t *c)
{
    edr_rca_t *r = c->r;
    int rc;
    /* path: stored start-first; the root is the last entry */
    int ri = c->n_path - 1;
    while (ri > 0 && c->path[ri] != r->root)
        ri--;
    if ((rc = item_add(c, 0, r->root, EDR_GRAPH_NONE, item_time(c, r->root, EDR_GRAPH_NONE), 0,
                       EDR_ROLE_ROOT)))
        return rc;
    for (int i = ri - 1; i >= 0; i--) {
        uint32_t e = c->path_edge[i];
        if ((rc = item_add(c, 0, c->path[i], e, item_time(c, c->path[i], e), 0, EDR_ROLE_PATH)))
            return rc;
    }
    /* path nodes beyond the root (another host's source): keep them too */
    for (int i = ri + 1; i < c->n_path; i++)
        if ((rc = item_add(c, 0, c->path[i], c->path_edge[i - 1] , item_time(c, c->path[i], EDR_GRAPH_NONE), 0, EDR_ROLE_PATH)))
            return rc;
    /* the entry */
    uint64_t t1 = ri > 0 ? item_time(c, c->path[ri - 1], c->path_edge[ri - 1]) : r->start_ns;
    if (r->entry != EDR_GRAPH_NONE) {
        uint32_t ee = EDR_GRAPH_NONE;
        for (uint32_t e = N(c, r->entry)->out_head; e != EDR_GRAPH_NONE && ee == EDR_GRAPH_NONE;
             e = E(c, e)->next_out)
            if (E(c, e)->t == r->entry_ns)
                ee = e;
        for (uint32_t e = N(c, r->entry)->in_head; e != EDR_GRAPH_NONE && ee == EDR_GRAPH_NONE;
             e = E(c, e)->next_in)
            if (E(c, e)->t == r->entry_ns)
                ee = e;
        uint32_t port = ee != EDR_GRAPH_NONE ? edr__graph_edge_aux(c->g, ee) : 0;
        if ((rc = item_add(c, 0, r->entry, ee, r->entry_ns, port, EDR_ROLE_ENTRY)))
            return rc;
    }
    if (N(c, r->root)->kind == EDR_NODE_PROCESS && r->cls == EDR_RCA_INBOUND_CONNECTION) {
        /* payload peers: rare outbound connections of the service before the first step */
        uint64_t lo = r->entry_ns && r->entry_ns < t1 ? sub_sat(r->entry_ns, c->o.clock_skew_ns)
                                                      : sub_sat(t1, c->o.entry_window_ns);
        for (uint32_t e = N(c, r->root)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out) {
            const gedge_t *ed = E(c, e);
            if (ed->kind == EDR_EDGE_CONNECT && within(ed->t, lo, add_sat(t1, c->o.clock_skew_ns)) &&
                ip_rarity(c, ed->dst) <= c->o.rare_max)
                if ((rc = item_add(c, 0, ed->dst, e, ed->t, edr__graph_edge_aux(c->g, e), EDR_ROLE_ENTRY)))
                    return rc;
        }
    }
    if (r->cls == EDR_RCA_DOWNLOAD_EXECUTE && r->entry != EDR_GRAPH_NONE) {
        uint32_t cn = connect_in_window(c, r->entry, sub_sat(r->entry_ns, c->o.entry_window_ns),
                                        add_sat(r->entry_ns, c->o.clock_skew_ns), 0, 0);
        if (cn != EDR_GRAPH_NONE &&
            (rc = item_add(c, 0, E(c, cn)->dst, cn, E(c, cn)->t, edr__graph_edge_aux(c->g, cn), EDR_ROLE_ENTRY)))
            return rc;
    }
    /* the attack: everything the path's processes (below the root) started */
    for (int i = ri - 1; i >= 0; i--)
        if (N(c, c->path[i])->kind == EDR_NODE_PROCESS &&
            (rc = subtree(c, c->path[i], sub_sat(N(c, c->path[i])->t0, c->o.clock_skew_ns), 0)))
            return rc;
    /* their connections and dropped files (the list grows while we walk it) */
    for (size_t i = 0; i < r->n_chain; i++) {
        uint32_t n = r->chain[i].node;
        if (n == r->root || N(c, n)->kind != EDR_NODE_PROCESS)
            continue;
        if ((rc = attack_process_edges(c, n, N(c, n)->t0)))
            return rc;
        if ((rc = lateral_spread(c, n)))
            return rc;
    }
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    const edr_rca_item_t *x = a, *y = b;
    if (x->role == EDR_ROLE_ROOT || y->role == EDR_ROLE_ROOT)
        return (y->role == EDR_ROLE_ROOT) - (x->role == EDR_ROLE_ROOT);
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    if (x->on_path != y->on_path)
        return y->on_path - x->on_path;
    return x->node < y->node ? -1 : x->node > y->node;
}

static int build_impact(ctx_t *c)
{
    edr_rca_t *r = c->r;
    int rc;
    uint64_t from = r->entry_ns ? r->entry_ns : 0;
    /* the download: every process that ran it, and what became of the file */
    if (r->cls == EDR_RCA_DOWNLOAD_EXECUTE) {
        /* runs of the file before the download (an older content at the
         * same path) are not the attack's */
        uint64_t since = sub_sat(from, c->o.clock_skew_ns);
        for (uint32_t e = N(c, r->root)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out)
            if (E(c, e)->kind == EDR_EDGE_EXEC && E(c, e)->t >= since) {
                if ((rc = item_add(c, 1, E(c, e)->dst, e, E(c, e)->t, 0, EDR_ROLE_SPAWNED)))
                    return rc;
                if ((rc = subtree(c, E(c, e)->dst, E(c, e)->t, 1)))
                    return rc;
            }
        for (uint32_t e = N(c, r->root)->in_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_in)
            if (E(c, e)->kind == EDR_EDGE_DELETE && E(c, e)->t >= from)
                if ((rc = item_add(c, 1, r->root, e, E(c, e)->t, 0, EDR_ROLE_WRITTEN)))
                    return rc;
    }
    /* every attack process of the chain and what it started */
    for (size_t i = 0; i < r->n_chain; i++) {
        uint32_t n = r->chain[i].node;
        if (n == r->root || N(c, n)->kind != EDR_NODE_PROCESS || r->chain[i].role == EDR_ROLE_ENTRY)
            continue;
        if ((rc = item_add(c, 1, n, r->chain[i].edge, r->chain[i].time_ns, 0, EDR_ROLE_SPAWNED)))
            return rc;
        if ((rc = subtree(c, n, N(c, n)->t0, 1)))
            return rc;
    }
    /* files, connections and other hosts reached by those processes; processes
     * that later ran a file the attack wrote (persistence firing) */
    for (size_t i = 0; i < r->n_impact; i++) {
        uint32_t p = r->impact[i].node;
        if (N(c, p)->kind != EDR_NODE_PROCESS)
            continue;
        for (uint32_t e = N(c, p)->out_head; e != EDR_GRAPH_NONE; e = E(c, e)->next_out) {
            const gedge_t *ed = E(c, e);
            switch (ed->kind) {
            case EDR_EDGE_WRITE:
            case EDR_EDGE_RENAME:
            case EDR_EDGE_DELETE:
                if (noise_path(c, edr__gstr(c->g, N(c, ed->dst)->s_a)))
                    break;
                if ((rc = item_add(c, 1, ed->dst, e, ed->t, 0, EDR_ROLE_WRITTEN)))
                    return rc;
                if (ed->kind != EDR_EDGE_DELETE)
                    for (uint32_t x = N(c, ed->dst)->out_head; x != EDR_GRAPH_NONE; x = E(c, x)->next_out)
                        if (E(c, x)->kind == EDR_EDGE_EXEC && E(c, x)->t >= ed->t &&
                            !nmap_get(&c->impact_set, E(c, x)->dst))
                            if ((rc = item_add(c, 1, E(c, x)->dst, x, E(c, x)->t, 0, EDR_ROLE_SPAWNED)))
                                return rc;
                break;
            case EDR_EDGE_CONNECT:
                if ((rc = item_add(c, 1, ed->dst, e, ed->t, edr__graph_edge_aux(c->g, e), EDR_ROLE_NETWORK)))
                    return rc;
                break;
            case EDR_EDGE_LATERAL:
                if (!boundary_kind(c, ed->dst) &&
                    (rc = item_add(c, 1, ed->dst, e, ed->t, 0, EDR_ROLE_SPAWNED)))
                    return rc;
                break;
            default:
                break;
            }
        }
    }
    /* the service's own payload connections */
    for (size_t i = 0; i < r->n_chain; i++)
        if (r->chain[i].role == EDR_ROLE_ENTRY && N(c, r->chain[i].node)->kind == EDR_NODE_REMOTE &&
            r->chain[i].edge != EDR_GRAPH_NONE && E(c, r->chain[i].edge)->kind == EDR_EDGE_CONNECT)
            if ((rc = item_add(c, 1, r->chain[i].node, r->chain[i].edge, r->chain[i].time_ns,
                               r->chain[i].port, EDR_ROLE_NETWORK)))
                return rc;
    return 0;
}

edr_rca_t *edr_rca_run(const edr_graph_t *g, uint32_t start, uint64_t at_ns, const edr_rca_opts_t *opts,
                       int *err)
{
    int rc = 0;
    ctx_t *c = calloc(1, sizeof(*c));
    edr_rca_t *r = calloc(1, sizeof(*r));
    if (!c || !r) {
        rc = EDR_ENOMEM;
        goto out;
    }
    if (start >= g->n_nodes) {
        rc = EDR_ERANGE;
        goto out;
    }
    c->g = g;
    c->r = r;
    if (opts)
        c->o = *opts;
    else
        edr_rca_opts_default(&c->o);
    list_parse(&c->noise, c->o.noise_paths);
    list_parse(&c->bounds, c->o.trust_boundaries);
    list_parse(&c->sessions, c->o.session_managers);
    list_parse(&c->scheds, c->o.schedulers);
    if (nmap_init(&c->chain_set, 64) || nmap_init(&c->impact_set, 64) || nmap_init(&c->edge_set, 256)) {
        rc = EDR_ENOMEM;
        goto out;
    }
    r->start = start;
    r->start_ns = at_ns ? at_ns : g->nodes[start].t_last;
    r->root = start;
    r->entry = EDR_GRAPH_NONE;
    r->cls = EDR_RCA_UNKNOWN;
    long un = backward(c, start, r->start_ns, 0);
    if (un < 0) {
        rc = (int)un;
        goto out;
    }
    r->edges_unpruned = (size_t)un;
    long pr = backward(c, start, r->start_ns, 1);
    if (pr < 0) {
        rc = (int)pr;
        goto out;
    }
    r->edges_back = (size_t)pr;
    if ((rc = walk(c)) || (rc = build_chain(c)) || (rc = build_impact(c)))
        goto out;
    if (r->n_chain > 1) /* an empty list may be NULL, undefined for qsort */
        qsort(r->chain, r->n_chain, sizeof(*r->chain), cmp_item);
    if (r->n_impact > 1)
        qsort(r->impact, r->n_impact, sizeof(*r->impact), cmp_item);
out:
    if (c) {
        nmap_free(&c->chain_set);
        nmap_free(&c->impact_set);
        nmap_free(&c->edge_set);
        free(c->cand);
    }
    free(c);
    if (rc) {
        edr_rca_destroy(r);
        r = NULL;
    }
    if (err)
        *err = rc;
    return r;
}

void edr_rca_destroy(edr_rca_t *r)
{
    if (!r)
        return;
    free(r->chain);
    free(r->impact);
    free(r->edges);
    free(r);
}

int edr_rca_in_chain(const edr_rca_t *r, uint32_t n)
{
    for (size_t i = 0; i < r->n_chain; i++)
        if (r->chain[i].node == n)
            return 1;
    return 0;
}
