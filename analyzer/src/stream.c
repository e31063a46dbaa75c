/* Streaming analysis: per-host graphs built batch by batch over a bounded window, rebuilt from retained frames on eviction, root cause on demand. */
#include "edr/stream.h"

#include "edr/err.h"
#include "edr/frame.h"
#include "edr/log.h"
#include "edr/vec.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A process carried over a rebuild: active in the window, or an ancestor of one. */
typedef struct {
    uint8_t entity[16], parent[16];
    uint32_t pid;
    char *exe, *cmd, *user;
    uint64_t start_ns;
} carried_t;

typedef struct {
    uint64_t first_ns, last_ns;
    uint8_t *buf;
    size_t len;
} kept_t;

typedef struct {
    uint8_t id[16];
    edr_graph_t *g;
    kept_t *frames; /* oldest first */
    size_t n_frames, cap_frames;
    carried_t *carried;
    size_t n_carried;
    uint64_t newest_ns, from_ns; /* newest event; start of what the graph holds */
} shost_t;

struct edr_stream {
    edr_stream_opts_t o;
    edr_frame_ctx_t *fc;
    shost_t *hosts;
    size_t n_hosts, cap_hosts;
    edr_graph_t *scratch; /* joined hosts of the last analysis */
    edr_stream_stats_t st;
};

edr_stream_t *edr_stream_new(const edr_stream_opts_t *opts)
{
    edr_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (opts)
        s->o = *opts;
    if (!s->o.window_ns)
        s->o.window_ns = 3600ull * 1000000000ull;
    if (!s->o.max_hosts)
        s->o.max_hosts = 8;
    if (!s->o.max_clock_ahead_ns)
        s->o.max_clock_ahead_ns = 86400ull * 1000000000ull;
    edr_frame_opts_t fo = {.max_raw_len = s->o.max_raw_len};
    s->fc = edr_frame_ctx_new(&fo);
    int nd = s->fc && s->o.dict_dir && *s->o.dict_dir
                 ? edr_frame_ctx_load_dicts(s->fc, s->o.dict_dir)
                 : 0;
    if (!s->fc || nd < 0) {
        if (nd < 0)
            edr_log_error("frame.dict_dir %s: cannot load dictionaries: %s", s->o.dict_dir,
                          edr_strerror(nd));
        edr_frame_ctx_destroy(s->fc);
        free(s);
        return NULL;
    }
    s->o.dict_dir = NULL; /* the caller's string: not kept */
    return s;
}

static void carried_free(shost_t *h)
{
    for (size_t i = 0; i < h->n_carried; i++) {
        free(h->carried[i].exe);
        free(h->carried[i].cmd);
        free(h->carried[i].user);
    }
    free(h->carried);
    h->carried = NULL;
    h->n_carried = 0;
}

void edr_stream_destroy(edr_stream_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_hosts; i++) {
        shost_t *h = &s->hosts[i];
        edr_graph_destroy(h->g);
        for (size_t k = 0; k < h->n_frames; k++)
            free(h->frames[k].buf);
        free(h->frames);
        carried_free(h);
    }
    free(s->hosts);
    edr_graph_destroy(s->scratch);
    edr_frame_ctx_destroy(s->fc);
    free(s);
}

static shost_t *host_get(edr_stream_t *s, const uint8_t id[16])
{
    for (size_t i = 0; i < s->n_hosts; i++)
        if (!memcmp(s->hosts[i].id, id, 16))
            return &s->hosts[i];
    if (EDR_VEC_RESERVE(s->hosts, s->cap_hosts, s->n_hosts + 1, 16))
        return NULL;
    shost_t *h = &s->hosts[s->n_hosts];
    memset(h, 0, sizeof(*h));
    memcpy(h->id, id, 16);
    h->g = edr_graph_new();
    if (!h->g)
        return NULL;
    s->n_hosts++;
    s->st.hosts++;
    return h;
}

/* Adds host h's carried processes and retained frames to g. */
static int host_fill(edr_stream_t *s, const shost_t *h, edr_graph_t *g)
{
    int rc;
    for (size_t i = 0; i < h->n_carried; i++) {
        const carried_t *c = &h->carried[i];
        Edr__V1__ProcessRecord r;
        edr__v1__process_record__init(&r);
        r.entity_id.data = (uint8_t *)c->entity;
        r.entity_id.len = 16;
        r.host_id.data = (uint8_t *)h->id;
        r.host_id.len = 16;
        static const uint8_t zero[16];
        if (memcmp(c->parent, zero, 16)) {
            r.parent_entity_id.data = (uint8_t *)c->parent;
            r.parent_entity_id.len = 16;
        }
        r.pid = c->pid;
        r.exe = c->exe;
        r.command_line = c->cmd;
        r.user = c->user;
        r.start_time_ns = c->start_ns;
        if ((rc = edr_graph_add_process_record(g, &r, NULL)) != 0)
            return rc;
    }
    for (size_t i = 0; i < h->n_frames; i++) {
        Edr__V1__EventBatch *b;
        if ((rc = edr_frame_decode(s->fc, h->frames[i].buf, h->frames[i].len, &b)) != 0)
            return rc;
        if ((rc = edr_graph_add_batch(g, b)) != 0)
            return rc;
    }
    return 0;
}

static char *dup_or_null(const char *x)
{
    return x && *x ? strdup(x) : NULL;
}

/* Drops frames older than the window and rebuilds the host's graph from the
 * rest plus the processes still active in it (with their ancestors). */
static int host_evict(edr_stream_t *s, shost_t *h)
{
    uint64_t cut = h->newest_ns > s->o.window_ns ? h->newest_ns - s->o.window_ns : 0;
    /* processes to carry: an event at or after the cut, or an ancestor of such a process */
    size_t nn = edr_graph_node_count(h->g);
    uint8_t *keep = calloc(nn ? nn : 1, 1);
    if (!keep)
        return EDR_ENOMEM;
    size_t n_keep = 0;
    for (uint32_t n = 0; n < nn; n++) {
        edr_graph_node_info_t in;
        edr_graph_node(h->g, n, &in);
        if (in.kind != EDR_NODE_PROCESS || in.last_ns < cut)
            continue;
        for (uint32_t p = n; p != EDR_GRAPH_NONE && !keep[p];) {
            keep[p] = 1;
            n_keep++;
            edr_graph_node_info_t pi;
            edr_graph_node(h->g, p, &pi);
            p = pi.parent;
        }
    }
    carried_t *cv = calloc(n_keep ? n_keep : 1, sizeof(*cv));
    if (!cv) {
        free(keep);
        return EDR_ENOMEM;
    }
    size_t k = 0;
    for (uint32_t n = 0; n < nn && k < n_keep; n++) {
        if (!keep[n])
            continue;
        edr_graph_node_info_t in;
        edr_graph_node(h->g, n, &in);
        carried_t *c = &cv[k++];
        memcpy(c->entity, in.entity_id, 16);
        if (in.parent != EDR_GRAPH_NONE) {
            edr_graph_node_info_t pi;
            edr_graph_node(h->g, in.parent, &pi);
            memcpy(c->parent, pi.entity_id, 16);
        }
        c->pid = in.pid;
        c->exe = dup_or_null(in.executable);
        c->cmd = dup_or_null(in.command_line);
        c->user = dup_or_null(in.user);
        c->start_ns = in.time_ns;
    }
    free(keep);
    carried_free(h);
    h->carried = cv;
    h->n_carried = k;
    /* every frame wholly before the cut goes, not only a leading run: frames
     * come in arrival order, and a late one may be older than those before */
    size_t kept = 0;
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < h->n_frames; i++) {
        if (h->frames[i].last_ns < cut) {
            free(h->frames[i].buf);
            continue;
        }
        if (h->frames[i].first_ns < first)
            first = h->frames[i].first_ns;
        h->frames[kept++] = h->frames[i];
    }
    h->n_frames = kept;
    edr_graph_t *g = edr_graph_new();
    if (!g)
        return EDR_ENOMEM;
    int rc = host_fill(s, h, g);
    if (rc) {
        edr_graph_destroy(g);
        return rc;
    }
    edr_graph_destroy(h->g);
    h->g = g;
    /* a frame reaching back before the cut keeps from_ns there: the next
     * eviction waits for the window to move on instead of coming at once */
    h->from_ns = h->n_frames && first > cut ? first : cut;
    s->st.rebuilds++;
    return 0;
}

int edr_stream_add_frame(edr_stream_t *s, const void *frame, size_t len)
{
    Edr__V1__EventBatch *b;
    int rc = edr_frame_decode(s->fc, frame, len, &b);
    if (rc) {
        s->st.bad_frames++;
        return rc;
    }
    if (!b->sensor || b->sensor->host_id.len != 16) {
        s->st.bad_frames++;
        return EDR_EINVAL;
    }
    shost_t *h = host_get(s, b->sensor->host_id.data);
    if (!h)
        return EDR_ENOMEM;
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i = 0; i < b->n_events; i++) {
        uint64_t t = b->base_time_ns + (uint64_t)b->events[i]->time_offset_ns;
        first = t < first ? t : first;
        last = t > last ? t : last;
    }
    if (!b->n_events)
        first = last = b->base_time_ns;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (last > now + s->o.max_clock_ahead_ns) {
        s->st.bad_frames++;
        return EDR_ERANGE;
    }
    if (h->n_frames == h->cap_frames) {
        size_t n = h->cap_frames ? h->cap_frames * 2 : 64;
        kept_t *p = realloc(h->frames, n * sizeof(*p));
        if (!p)
            return EDR_ENOMEM;
        h->frames = p;
        h->cap_frames = n;
    }
    kept_t *k = &h->frames[h->n_frames];
    k->buf = malloc(len);
    if (!k->buf)
        return EDR_ENOMEM;
    memcpy(k->buf, frame, len);
    k->len = len;
    k->first_ns = first;
    k->last_ns = last;
    h->n_frames++;
    if (!h->from_ns || first < h->from_ns)
        h->from_ns = first;
    if (last > h->newest_ns)
        h->newest_ns = last;
    s->st.frames++;
    s->st.events += b->n_events;
    if ((rc = edr_graph_add_batch(h->g, b)) != 0)
        return rc;
    if (h->newest_ns > h->from_ns && h->newest_ns - h->from_ns > 2 * s->o.window_ns)
        return host_evict(s, h);
    return 0;
}

static shost_t *host_of(const edr_stream_t *s, const uint8_t entity[16], uint32_t *node)
{
    for (size_t i = 0; i < s->n_hosts; i++) {
        uint32_t n = edr_graph_find_entity(s->hosts[i].g, entity);
        if (n != EDR_GRAPH_NONE) {
            edr_graph_node_info_t in;
            edr_graph_node(s->hosts[i].g, n, &in);
            if (in.kind == EDR_NODE_PROCESS && !memcmp(in.host_id, s->hosts[i].id, 16)) {
                *node = n;
                return &s->hosts[i];
            }
        }
    }
    return NULL;
}

const edr_graph_t *edr_stream_host_graph(const edr_stream_t *s, const uint8_t entity[16])
{
    uint32_t n;
    shost_t *h = host_of(s, entity, &n);
    return h ? h->g : NULL;
}

static int ip_v4(const uint8_t *ip, size_t len, uint8_t out[4])
{
    static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (len == 4) {
        memcpy(out, ip, 4);
        return 1;
    }
    if (len == 16 && !memcmp(ip, v4map, 12)) {
        memcpy(out, ip + 12, 4);
        return 1;
    }
    return 0;
}

/* 1 when the graph of host o saw the other side of a flow: peer_ip connecting
 * to (ip, port) (inbound 0: o made the connection) or accepting from ip on
 * port (inbound 1: o accepted it), o's own address being peer_ip. */
static int host_saw(const shost_t *o, const uint8_t *ip, size_t ip_len, uint32_t port, int inbound,
                    const uint8_t *peer_ip, size_t peer_len)
{
    uint8_t a[4], b[4];
    uint32_t n = edr_graph_find_remote(o->g, o->id, ip, ip_len, port, inbound);
    if (n == EDR_GRAPH_NONE && ip_v4(ip, ip_len, a))
        n = edr_graph_find_remote(o->g, o->id, a, 4, port, inbound);
    if (n == EDR_GRAPH_NONE)
        return 0;
    edr_graph_node_info_t in;
    edr_graph_node(o->g, n, &in);
    if (!in.local_ip_len)
        return 1;
    return (in.local_ip_len == peer_len && !memcmp(in.local_ip, peer_ip, peer_len)) ||
           (ip_v4(in.local_ip, in.local_ip_len, a) && ip_v4(peer_ip, peer_len, b) && !memcmp(a, b, 4));
}

/* Hosts of the stream on the other side of r's entry or of its outbound connections. */
static size_t peers_of(edr_stream_t *s, const edr_graph_t *g, const edr_rca_t *r, shost_t **set, size_t *n_setp,
                       size_t max)
{
    size_t n_set = *n_setp, n0 = n_set;
    for (size_t i = 0; i < r->n_chain && n_set < max; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, r->chain[i].node, &in);
        if (in.kind != EDR_NODE_REMOTE || !in.local_ip_len)
            continue;
        for (size_t k = 0; k < s->n_hosts && n_set < max; k++) {
            shost_t *o = &s->hosts[k];
            int have = 0;
            for (size_t j = 0; j < n_set; j++)
                have |= set[j] == o;
            if (have)
                continue;
            /* inbound: o connected to our address and port; outbound: o accepted from our address */
            int hit = in.inbound ? host_saw(o, in.local_ip, in.local_ip_len, in.port, 0, in.ip, in.ip_len)
                                 : host_saw(o, in.local_ip, in.local_ip_len, in.port, 1, in.ip, in.ip_len);
            if (hit)
                set[n_set++] = o;
        }
    }
    *n_setp = n_set;
    return n_set - n0;
}

edr_rca_t *edr_stream_rca(edr_stream_t *s, const uint8_t entity[16], uint64_t at_ns, const edr_rca_opts_t *ro,
                          const edr_graph_t **g_out, int *err)
{
    int rc = 0;
    uint32_t start;
    edr_rca_t *r = NULL;
    shost_t *h = host_of(s, entity, &start);
    shost_t *set[64];
    size_t n_set = 1, max = s->o.max_hosts < 64 ? s->o.max_hosts : 64;
    if (!h) {
        rc = EDR_ENOENT;
        goto out;
    }
    set[0] = h;
    const edr_graph_t *g = h->g;
    for (;;) {
        r = edr_rca_run(g, start, at_ns, ro, &rc);
        if (!r)
            goto out;
        if (n_set >= max || !peers_of(s, g, r, set, &n_set, max))
            break;
        /* join the hosts' windows into one graph: the flows link across them */
        edr_rca_destroy(r);
        r = NULL;
        edr_graph_destroy(s->scratch);
        s->scratch = edr_graph_new();
        if (!s->scratch) {
            rc = EDR_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n_set; i++)
            if ((rc = host_fill(s, set[i], s->scratch)) != 0)
                goto out;
        g = s->scratch;
        start = edr_graph_find_entity(g, entity);
        if (start == EDR_GRAPH_NONE) {
            rc = EDR_ENOENT;
            goto out;
        }
    }
    *g_out = g;
out:
    if (rc) {
        edr_rca_destroy(r);
        r = NULL;
    }
    if (err)
        *err = rc;
    return r;
}

void edr_stream_stats(const edr_stream_t *s, edr_stream_stats_t *st)
{
    *st = s->st;
    st->frames_kept = st->bytes_kept = st->edges = st->graph_bytes = 0;
    for (size_t i = 0; i < s->n_hosts; i++) {
        const shost_t *h = &s->hosts[i];
        st->frames_kept += h->n_frames;
        for (size_t k = 0; k < h->n_frames; k++)
            st->bytes_kept += h->frames[k].len;
        st->edges += edr_graph_edge_count(h->g);
        st->graph_bytes += edr_graph_memory(h->g);
    }
}
