/* Provenance graph builder: decoded edr.v1 events in, compact nodes and time-stamped edges out. */
#define _GNU_SOURCE /* mremap */
#include "graph_int.h"

#include "edr/err.h"
#include "edr/event.h"
#include "edr/identity.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

_Static_assert(sizeof(gnode_t) == 56, "graph node must stay compact");
_Static_assert(sizeof(gedge_t) == 24, "graph edge must stay compact");

static const uint8_t zero_id[16];

/* ------------------------------------------------------------ growth */

int edr__grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return EDR_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* Growth of the node, edge, string and edge-port arrays: page-aligned
 * mappings grown in place or moved by the kernel (no copy); the pages past
 * the last element are never written, so they take no memory. */
static int grow_mapped(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *q = *p ? mremap(*p, *cap * elem, n * elem, MREMAP_MAYMOVE)
                 : mmap(NULL, n * elem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return EDR_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static void free_mapped(void *p, size_t cap, size_t elem)
{
    if (p)
        munmap(p, cap * elem);
}

/* ------------------------------------------------------------ hash tables */

/* The hash tables use linear probing over any capacity (not only powers of
 * two): the home slot of a 32-bit hash h is h * cap / 2^32, and a full
 * table grows by half, so that its load stays between about 0.5 and its
 * maximum instead of dropping to a quarter after a doubling. */
static inline size_t home32(uint32_t h, size_t cap)
{
    return (size_t)(((uint64_t)h * cap) >> 32);
}

static inline size_t next_slot(size_t j, size_t cap)
{
    return ++j == cap ? 0 : j;
}

/* 1 when a table of cap slots holding n must grow before one more is added
 * (load above num/den afterwards). */
static inline int table_full(size_t n, size_t cap, size_t num, size_t den)
{
    return (n + 1) * den > cap * num;
}

static inline size_t table_grown(size_t cap, size_t first)
{
    return cap ? cap + cap / 2 : first;
}

/* ------------------------------------------------------------ strings */

static int intern_rehash(edr_graph_t *g, size_t ncap)
{
    uint32_t *t = calloc(ncap, sizeof(*t));
    if (!t)
        return EDR_ENOMEM;
    for (size_t i = 0; i < g->interned_cap; i++) {
        uint32_t off = g->interned[i];
        if (!off)
            continue;
        const char *s = g->pool + off;
        size_t j = home32((uint32_t)XXH3_64bits(s, strlen(s)), ncap);
        while (t[j])
            j = next_slot(j, ncap);
        t[j] = off;
    }
    free(g->interned);
    g->interned = t;
    g->interned_cap = ncap;
    return 0;
}

/* Pool offset of a copy of s[0..n) (interned); 0 for the empty string or on
 * out of memory (the caller then loses a label, not the event). */
static uint32_t intern_n(edr_graph_t *g, const char *s, size_t n)
{
    if (!s || !n)
        return 0;
    /* probes compare strings (a miss each): the load stays at most 0.5 */
    if (table_full(g->n_interned, g->interned_cap, 1, 2) &&
        intern_rehash(g, table_grown(g->interned_cap, 4096)) != 0)
        return 0;
    uint64_t h = XXH3_64bits(s, n);
    size_t j = home32((uint32_t)h, g->interned_cap);
    while (g->interned[j]) {
        const char *c = g->pool + g->interned[j];
        if (strncmp(c, s, n) == 0 && c[n] == '\0')
            return g->interned[j];
        j = next_slot(j, g->interned_cap);
    }
    if (g->pool_len + n + 1 > UINT32_MAX)
        return 0;
    if (grow_mapped((void **)&g->pool, &g->pool_cap, g->pool_len + n + 1, 1) != 0)
        return 0;
    uint32_t off = (uint32_t)g->pool_len;
    memcpy(g->pool + off, s, n);
    g->pool[off + n] = '\0';
    g->pool_len += n + 1;
    g->interned[j] = off;
    g->n_interned++;
    return off;
}

static uint32_t intern(edr_graph_t *g, const char *s)
{
    return s ? intern_n(g, s, strlen(s)) : 0;
}

/* Raw bytes (remote IPs): each of the two stored as one length byte and the
 * bytes, not interned (q may be NULL: length 0). */
static uint32_t pool_bytes(edr_graph_t *g, const uint8_t *p, size_t n, const uint8_t *q, size_t m)
{
    if (!q || (m != 4 && m != 16))
        m = 0;
    if (g->pool_len + n + m + 2 > UINT32_MAX ||
        grow_mapped((void **)&g->pool, &g->pool_cap, g->pool_len + n + m + 2, 1) != 0)
        return 0;
    uint32_t off = (uint32_t)g->pool_len;
    g->pool[off] = (char)n;
    memcpy(g->pool + off + 1, p, n);
    g->pool[off + 1 + n] = (char)m;
    if (m)
        memcpy(g->pool + off + 2 + n, q, m);
    g->pool_len += n + m + 2;
    return off;
}

/* ------------------------------------------------------------ nodes */

static inline uint64_t id_hash(const uint8_t id[16])
{
    uint64_t h;
    memcpy(&h, id + 4, 8);
    return h ^ (h >> 29);
}

/* Index slot of node n with hash h: node + 1 in the low bits, 4 bits of
 * the hash above them. */
#define IDX_NODE_MASK ((1u << GRAPH_NODE_BITS) - 1)

static inline uint32_t id_tag(uint64_t h)
{
    return (uint32_t)(h >> 60) << GRAPH_NODE_BITS;
}

static inline size_t id_home(uint64_t h, size_t cap)
{
    return home32((uint32_t)h, cap);
}

/* Index load at most 0.75: most lookups find their node within a slot or
 * two; a new node's search runs to the end of its cluster, but a slot of
 * another node is read only when its 4 tag bits match (one in 16). */
static int index_rehash(edr_graph_t *g, size_t ncap)
{
    uint32_t *t = calloc(ncap, sizeof(*t));
    if (!t)
        return EDR_ENOMEM;
    for (size_t i = 0; i < g->n_nodes; i++) {
        uint64_t h = id_hash(g->nodes[i].id);
        size_t j = id_home(h, ncap);
        while (t[j])
            j = next_slot(j, ncap);
        t[j] = ((uint32_t)i + 1) | id_tag(h);
    }
    free(g->index);
    g->index = t;
    g->index_cap = ncap;
    return 0;
}

/* The node of this id and kind (ANY_KIND: any, a process first). */
#define ANY_KIND 0xff
static uint32_t find_id(const edr_graph_t *g, const uint8_t id[16], unsigned kind)
{
    if (!g->index_cap)
        return EDR_GRAPH_NONE;
    uint64_t h = id_hash(id);
    uint32_t tag = id_tag(h);
    size_t j = id_home(h, g->index_cap);
    uint32_t other = EDR_GRAPH_NONE;
    for (uint32_t v; (v = g->index[j]) != 0; j = next_slot(j, g->index_cap)) {
        uint32_t n = (v & IDX_NODE_MASK) - 1;
        if ((v & ~IDX_NODE_MASK) != tag || memcmp(g->nodes[n].id, id, 16) != 0)
            continue;
        if (g->nodes[n].kind == kind ||
            (kind == ANY_KIND && g->nodes[n].kind == EDR_NODE_PROCESS))
            return n;
        if (kind == ANY_KIND && other == EDR_GRAPH_NONE)
            other = n;
    }
    return other;
}

/* Ids are unique per kind (a forged event can give a process another
 * kind's id): a process of that id first. */
uint32_t edr_graph_find_entity(const edr_graph_t *g, const uint8_t id[16])
{
    return find_id(g, id, ANY_KIND);
}

/* Node with this id, made (kind, host, time t) when absent. EDR_GRAPH_NONE
 * when out of memory. *made tells whether it is new. */
static uint32_t node_get(edr_graph_t *g, const uint8_t id[16], edr_node_kind_t kind, uint16_t host,
                         uint64_t t, int *made)
{
    *made = 0;
    if (table_full(g->n_nodes, g->index_cap, 3, 4) && index_rehash(g, table_grown(g->index_cap, 65536)) != 0)
        return EDR_GRAPH_NONE;
    uint64_t h = id_hash(id);
    uint32_t tag = id_tag(h);
    size_t j = id_home(h, g->index_cap);
    for (uint32_t v; (v = g->index[j]) != 0; j = next_slot(j, g->index_cap)) {
        uint32_t n = (v & IDX_NODE_MASK) - 1;
        /* the kind too: a forged event can give a process the id of a
         * remote address or file node (their ids are hashes anyone can
         * compute), whose fields would then be read as another kind's */
        if ((v & ~IDX_NODE_MASK) == tag && memcmp(g->nodes[n].id, id, 16) == 0 &&
            g->nodes[n].kind == (uint8_t)kind) {
            gnode_t *x = &g->nodes[n];
            if (t && (t < x->t0 || !x->t0) && !(x->flags & GN_STARTED))
                x->t0 = t;
            if (t > x->t_last)
                x->t_last = t;
            return n;
        }
    }
    if (g->n_nodes >= GRAPH_MAX_NODES ||
        grow_mapped((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(gnode_t)) != 0)
        return EDR_GRAPH_NONE;
    uint32_t n = (uint32_t)g->n_nodes++;
    gnode_t *x = &g->nodes[n];
    memset(x, 0, sizeof(*x));
    memcpy(x->id, id, 16);
    x->t0 = x->t_last = t;
    x->in_head = x->out_head = EDR_GRAPH_NONE;
    x->host = host;
    x->kind = (uint8_t)kind;
    g->index[j] = (n + 1) | tag;
    *made = 1;
    return n;
}

static uint32_t proc_get(edr_graph_t *g, uint16_t host, const uint8_t id[16], uint32_t pid, uint64_t t)
{
    int made;
    uint32_t n = node_get(g, id, EDR_NODE_PROCESS, host, t, &made);
    if (n != EDR_GRAPH_NONE && pid && !g->nodes[n].pid)
        g->nodes[n].pid = pid;
    return n;
}

/* Node id of a file of a host. */
static inline void file_id(const edr_graph_t *g, uint16_t host, const char *path, size_t len, uint8_t id[16])
{
    XXH128_hash_t h = XXH3_128bits_withSeed(path, len, g->hosts[host].file_seed);
    memcpy(id, &h.high64, 8);
    memcpy(id + 8, &h.low64, 8);
}

static uint32_t file_get(edr_graph_t *g, uint16_t host, const char *path, uint64_t t)
{
    size_t len = strlen(path);
    if (!len)
        return EDR_GRAPH_NONE;
    uint8_t id[16];
    file_id(g, host, path, len, id);
    int made;
    uint32_t n = node_get(g, id, EDR_NODE_FILE, host, t, &made);
    if (n != EDR_GRAPH_NONE && made) {
        g->nodes[n].s_a = intern_n(g, path, len);
        size_t dl = (size_t)(edr__basename(path) - path);
        g->nodes[n].s_b = dl ? intern_n(g, path, dl) : 0;
    }
    return n;
}

/* Node id of a remote endpoint as seen from a host. */
static void remote_id(const uint8_t host_id[16], const uint8_t *ip, size_t ip_len, uint32_t port, int inbound,
                      uint8_t id[16])
{
    uint8_t key[16 + 16 + 6];
    memcpy(key, host_id, 16);
    memset(key + 16, 0, 16);
    memcpy(key + 16, ip, ip_len);
    key[32] = (uint8_t)ip_len;
    key[33] = (uint8_t)inbound;
    memcpy(key + 34, &port, 4);
    XXH128_hash_t h = XXH3_128bits_withSeed(key, sizeof(key), 0x72656dull);
    memcpy(id, &h.high64, 8);
    memcpy(id + 8, &h.low64, 8);
}

uint32_t edr_graph_find_remote(const edr_graph_t *g, const uint8_t host_id[16], const uint8_t *ip, size_t ip_len,
                               uint32_t port, int inbound)
{
    if (ip_len != 4 && ip_len != 16)
        return EDR_GRAPH_NONE;
    uint8_t id[16];
    remote_id(host_id, ip, ip_len, port, inbound ? 1 : 0, id);
    return find_id(g, id, EDR_NODE_REMOTE);
}

static uint32_t remote_get(edr_graph_t *g, uint16_t host, const uint8_t *ip, size_t ip_len,
                           uint32_t port, int inbound, uint64_t t, const uint8_t *lip, size_t lip_len)
{
    uint8_t id[16];
    remote_id(g->hosts[host].id, ip, ip_len, port, inbound, id);
    int made;
    uint32_t n = node_get(g, id, EDR_NODE_REMOTE, host, t, &made);
    if (n != EDR_GRAPH_NONE && made) {
        g->nodes[n].s_a = pool_bytes(g, ip, ip_len, lip, lip_len);
        g->nodes[n].pid = port;
        if (inbound)
            g->nodes[n].flags |= GN_INBOUND;
    }
    return n;
}

size_t edr__graph_remote_ip(const edr_graph_t *g, const gnode_t *n, const uint8_t **ip)
{
    if (n->kind != EDR_NODE_REMOTE || !n->s_a) {
        *ip = NULL;
        return 0;
    }
    size_t len = (uint8_t)g->pool[n->s_a];
    if (len != 4 && len != 16) { /* never written so: not an address */
        *ip = NULL;
        return 0;
    }
    *ip = (const uint8_t *)g->pool + n->s_a + 1;
    return len;
}

size_t edr__graph_local_ip(const edr_graph_t *g, const gnode_t *n, const uint8_t **ip)
{
    *ip = NULL;
    if (n->kind != EDR_NODE_REMOTE || !n->s_a)
        return 0;
    size_t rlen = (uint8_t)g->pool[n->s_a];
    if (rlen != 4 && rlen != 16)
        return 0;
    size_t off = n->s_a + 1 + rlen, len = (uint8_t)g->pool[off];
    if (len != 4 && len != 16)
        return 0;
    *ip = (const uint8_t *)g->pool + off + 1;
    return len;
}

/* ------------------------------------------------------------ hosts */

static int host_get(edr_graph_t *g, const uint8_t id[16], const char *name, uint16_t *out)
{
    for (size_t i = 0; i < g->n_hosts; i++)
        if (memcmp(g->hosts[i].id, id, 16) == 0) {
            if (!g->hosts[i].name && name && *name) {
                g->hosts[i].name = intern(g, name);
                g->nodes[g->hosts[i].node].s_a = g->hosts[i].name;
            }
            *out = (uint16_t)i;
            return 0;
        }
    if (g->n_hosts >= UINT16_MAX)
        return EDR_ERANGE;
    if (edr__grow((void **)&g->hosts, &g->cap_hosts, g->n_hosts + 1, sizeof(ghost_t), 1024) != 0)
        return EDR_ENOMEM;
    ghost_t *h = &g->hosts[g->n_hosts];
    memset(h, 0, sizeof(*h));
    memcpy(h->id, id, 16);
    h->file_seed = XXH3_64bits_withSeed(id, 16, 0x66696c65ull);
    h->name = name ? intern(g, name) : 0;
    int made;
    uint16_t hi = (uint16_t)g->n_hosts++;
    h->node = node_get(g, id, EDR_NODE_HOST, hi, 0, &made);
    if (h->node == EDR_GRAPH_NONE) {
        g->n_hosts--;
        return EDR_ENOMEM;
    }
    g->nodes[h->node].s_a = h->name;
    *out = hi;
    return 0;
}

/* ------------------------------------------------------------ edges */

static uint32_t edge_add(edr_graph_t *g, edr_edge_kind_t kind, uint32_t src, uint32_t dst, uint64_t t,
                         uint32_t aux)
{
    if (src == EDR_GRAPH_NONE || dst == EDR_GRAPH_NONE)
        return EDR_GRAPH_NONE;
    if (g->n_edges >= UINT32_MAX - 1 ||
        grow_mapped((void **)&g->edges, &g->cap_edges, g->n_edges + 1, sizeof(gedge_t)) != 0)
        return EDR_GRAPH_NONE;
    /* a connect edge's port is its remote node's; others are kept aside */
    int keep_aux = aux && !(kind == EDR_EDGE_CONNECT && aux == g->nodes[dst].pid);
    if (keep_aux && grow_mapped((void **)&g->aux, &g->cap_aux, g->n_aux + 1, sizeof(gaux_t)) != 0)
        return EDR_GRAPH_NONE;
    uint32_t e = (uint32_t)g->n_edges++;
    if (keep_aux)
        g->aux[g->n_aux++] = (gaux_t){e, aux};
    gedge_t *x = &g->edges[e];
    x->src = src;
    x->dst = dst;
    x->t = t;
    x->kind = (unsigned)kind;
    x->flags = keep_aux ? GE_AUX : 0;
    x->next_out = g->nodes[src].out_head;
    g->nodes[src].out_head = e;
    x->next_in = g->nodes[dst].in_head;
    g->nodes[dst].in_head = e;
    if (t > g->nodes[dst].t_last)
        g->nodes[dst].t_last = t;
    return e;
}

uint32_t edr__graph_edge_aux(const edr_graph_t *g, uint32_t e)
{
    const gedge_t *x = &g->edges[e];
    if (x->flags & GE_AUX) {
        size_t lo = 0, hi = g->n_aux;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (g->aux[mid].edge < e)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo < g->n_aux && g->aux[lo].edge == e ? g->aux[lo].val : 0;
    }
    return x->kind == EDR_EDGE_CONNECT ? g->nodes[x->dst].pid : 0;
}

uint32_t edr__graph_parent(const edr_graph_t *g, uint32_t n)
{
    if (!(g->nodes[n].flags & GN_PARENT))
        return EDR_GRAPH_NONE;
    for (uint32_t e = g->nodes[n].in_head; e != EDR_GRAPH_NONE; e = g->edges[e].next_in)
        if (g->edges[e].kind == EDR_EDGE_FORK)
            return g->edges[e].src;
    return EDR_GRAPH_NONE;
}

/* 1 when one of the newest few incoming edges of dst is (kind, src). */
static int recent_in(const edr_graph_t *g, uint32_t dst, uint32_t src, edr_edge_kind_t kind)
{
    uint32_t e = g->nodes[dst].in_head;
    for (int i = 0; i < 4 && e != EDR_GRAPH_NONE; i++, e = g->edges[e].next_in)
        if (g->edges[e].src == src && g->edges[e].kind == kind)
            return 1;
    return 0;
}

/* ------------------------------------------------------------ peers and flows */

static uint64_t ip_key(uint16_t host, const uint8_t *ip, size_t len)
{
    uint8_t k[18];
    memset(k, 0, sizeof(k));
    memcpy(k, &host, 2);
    memcpy(k + 2, ip, len);
    return XXH3_64bits(k, sizeof(k)) | 1;
}

/* gktab_t: 8-byte slots, load at most 0.8. The home slot of a key comes
 * from the key alone (rehashing needs nothing else). */
static inline size_t ktab_home(uint32_t key)
{
    return (uint32_t)(key * 0x9E3779B1u);
}

static int ktab_rehash(gktab_t *c, size_t ncap)
{
    struct gkslot *t = calloc(ncap, sizeof(*t));
    if (!t)
        return EDR_ENOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].key)
            continue;
        size_t j = home32((uint32_t)ktab_home(c->slots[i].key), ncap);
        while (t[j].key)
            j = next_slot(j, ncap);
        t[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = t;
    c->cap = ncap;
    return 0;
}

/* Slot of key k (non-zero); when absent, added with value 0 (NULL when out
 * of memory, or absent and add is 0). */
static struct gkslot *ktab_slot(gktab_t *c, uint32_t k, int add)
{
    if (add && table_full(c->n, c->cap, 4, 5) && ktab_rehash(c, table_grown(c->cap, 1024)) != 0)
        return NULL;
    if (!c->cap)
        return NULL;
    size_t j = home32((uint32_t)ktab_home(k), c->cap);
    while (c->slots[j].key) {
        if (c->slots[j].key == k)
            return &c->slots[j];
        j = next_slot(j, c->cap);
    }
    if (!add)
        return NULL;
    c->slots[j].key = k;
    c->n++;
    return &c->slots[j];
}

/* gctab_t: counters keyed by a 64-bit hash, each slot 8 bytes: the high 48
 * bits of the hash (the home slot is chosen from them, so two keys are
 * merged only when those 48 bits agree: about 0.02 pairs among 4 M keys)
 * and a 16-bit count. A count past 0xfffe is kept exactly in c->big (a
 * small table keyed by the 48 bits) and its slot reads 0xffff. */
#define CT_HI       (~(uint64_t)0xffff)
#define CT_SAT      0xffffu

static inline uint64_t ct_key(uint64_t k)
{
    return k & CT_HI ? k & CT_HI : (uint64_t)1 << 16;
}

static inline size_t ctab_home(uint64_t key, size_t cap)
{
    return home32((uint32_t)(key >> 16), cap);
}

static int ctab_rehash(gctab_t *c, size_t ncap)
{
    uint64_t *t = calloc(ncap, sizeof(*t));
    if (!t)
        return EDR_ENOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i])
            continue;
        size_t j = ctab_home(c->slots[i], ncap);
        while (t[j])
            j = next_slot(j, ncap);
        t[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = t;
    c->cap = ncap;
    return 0;
}

/* The exact count of a saturated key (NULL when absent and add is 0, or
 * out of memory). */
static uint32_t *ctab_big(gctab_t *c, uint64_t key, int add)
{
    if (add && (c->n_big + 1) * 2 > c->cap_big) {
        size_t ncap = c->cap_big ? c->cap_big * 2 : 64;
        struct gbig *t = calloc(ncap, sizeof(*t));
        if (!t)
            return NULL;
        for (size_t i = 0; i < c->cap_big; i++)
            if (c->big[i].key) {
                size_t j = ctab_home(c->big[i].key, ncap);
                while (t[j].key)
                    j = next_slot(j, ncap);
                t[j] = c->big[i];
            }
        free(c->big);
        c->big = t;
        c->cap_big = ncap;
    }
    if (!c->cap_big)
        return NULL;
    size_t j = ctab_home(key, c->cap_big);
    while (c->big[j].key) {
        if (c->big[j].key == key)
            return &c->big[j].n;
        j = next_slot(j, c->cap_big);
    }
    if (!add)
        return NULL;
    c->big[j].key = key;
    c->n_big++;
    return &c->big[j].n;
}

/* Adds one to the counter of hash k; out of memory loses the count only. */
static void count_inc(gctab_t *c, uint64_t k)
{
    if (table_full(c->n, c->cap, 4, 5) && ctab_rehash(c, table_grown(c->cap, 1024)) != 0)
        return;
    uint64_t key = ct_key(k);
    size_t j = ctab_home(key, c->cap);
    while (c->slots[j]) {
        if ((c->slots[j] & CT_HI) == key) {
            uint32_t n = (uint32_t)(c->slots[j] & 0xffff);
            if (n < CT_SAT - 1) {
                c->slots[j]++;
                return;
            }
            uint32_t *b = ctab_big(c, key, 1);
            if (!b)
                return;
            if (n == CT_SAT - 1) {
                *b = CT_SAT;
                c->slots[j] = key | CT_SAT;
            } else if (*b < UINT32_MAX)
                ++*b;
            return;
        }
        j = next_slot(j, c->cap);
    }
    c->slots[j] = key | 1;
    c->n++;
}

/* Takes one from the counter of hash k (a count made under a label that
 * changed since); a counter already at zero stays there. */
static void count_dec(gctab_t *c, uint64_t k)
{
    if (!c->cap)
        return;
    uint64_t key = ct_key(k);
    size_t j = ctab_home(key, c->cap);
    while (c->slots[j]) {
        if ((c->slots[j] & CT_HI) == key) {
            uint32_t n = (uint32_t)(c->slots[j] & 0xffff);
            if (n == CT_SAT) {
                uint32_t *b = ctab_big(c, key, 0);
                if (b && *b > CT_SAT)
                    --*b;
                else
                    c->slots[j]--; /* back below saturation: the slot counts again */
            } else if (n > 0)
                c->slots[j]--;
            return;
        }
        j = next_slot(j, c->cap);
    }
}

static uint32_t count_get(const gctab_t *c, uint64_t k)
{
    if (!c->cap)
        return 0;
    uint64_t key = ct_key(k);
    size_t j = ctab_home(key, c->cap);
    while (c->slots[j]) {
        if ((c->slots[j] & CT_HI) == key) {
            uint32_t n = (uint32_t)(c->slots[j] & 0xffff);
            if (n < CT_SAT)
                return n;
            const uint32_t *b = ctab_big((gctab_t *)c, key, 0);
            return b ? *b : n;
        }
        j = next_slot(j, c->cap);
    }
    return 0;
}

static void ip_count_inc(edr_graph_t *g, uint16_t host, const uint8_t *ip, size_t len)
{
    count_inc(&g->ipcnt, ip_key(host, ip, len));
}

uint32_t edr__graph_ip_count(const edr_graph_t *g, uint16_t host, const uint8_t *ip, size_t len)
{
    return count_get(&g->ipcnt, ip_key(host, ip, len));
}

/* ------------------------------------------------------------ edge patterns */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* The label of a node in a pattern: image (process), directory (file),
 * port (outbound remote) or peer address (inbound remote). Strings are
 * interned, so their pool offsets name them. */
static uint64_t pat_label(const edr_graph_t *g, uint32_t n)
{
    const gnode_t *x = &g->nodes[n];
    switch (x->kind) {
    case EDR_NODE_PROCESS:
        return x->s_a;
    case EDR_NODE_FILE:
        return x->s_b;
    case EDR_NODE_REMOTE: {
        if (!(x->flags & GN_INBOUND))
            return (uint64_t)1 << 40 | x->pid;
        const uint8_t *ip;
        size_t l = edr__graph_remote_ip(g, x, &ip);
        return l ? XXH3_64bits(ip, l) | (uint64_t)1 << 63 : 0;
    }
    default:
        return 0;
    }
}

uint64_t edr__graph_edge_pattern(const edr_graph_t *g, uint32_t e)
{
    const gedge_t *x = &g->edges[e];
    uint64_t a = pat_label(g, x->src), b = pat_label(g, x->dst);
    uint64_t k = mix64(a * 0x9E3779B97F4A7C15ull ^ mix64(b + x->kind) ^
                       (uint64_t)g->nodes[x->dst].host << 48);
    return k ? k : 1;
}

/* Counts the patterns of the edges added since the last call (at the end of
 * each add: by then a new process has its image). */
static void pat_catch_up(edr_graph_t *g)
{
    uint64_t keys[64];
    while (g->pat_mark < g->n_edges) {
        size_t n = g->n_edges - g->pat_mark;
        if (n > 64)
            n = 64;
        /* the counter table is much larger than the caches: fetch the slots
         * of the run first, then count, so that the misses overlap */
        for (size_t i = 0; i < n; i++) {
            keys[i] = edr__graph_edge_pattern(g, (uint32_t)(g->pat_mark + i));
            if (g->patcnt.cap)
                __builtin_prefetch(&g->patcnt.slots[ctab_home(ct_key(keys[i]), g->patcnt.cap)], 1);
        }
        for (size_t i = 0; i < n; i++)
            count_inc(&g->patcnt, keys[i]);
        g->pat_mark += n;
    }
}

/* Gives process n its image s. Edge patterns are counted under their
 * nodes' labels when the edge is added; a label set later (an exec after
 * the fork edge, a record or a parent's image loaded after the events)
 * would leave those edges' patterns uncounted under the label they are
 * looked up with (rarity 0, and an answer that depended on the order the
 * data came in). The counted edges of n move to the new label. */
static void proc_set_image(edr_graph_t *g, uint32_t n, uint32_t s)
{
    gnode_t *x = &g->nodes[n];
    if (x->s_a == s)
        return;
    uint32_t heads[2] = {x->in_head, x->out_head};
    for (int side = 0; side < 2; side++)
        for (uint32_t e = heads[side]; e != EDR_GRAPH_NONE;
             e = side ? g->edges[e].next_out : g->edges[e].next_in)
            if (e < g->pat_mark)
                count_dec(&g->patcnt, edr__graph_edge_pattern(g, e));
    x->s_a = s;
    for (int side = 0; side < 2; side++)
        for (uint32_t e = heads[side]; e != EDR_GRAPH_NONE;
             e = side ? g->edges[e].next_out : g->edges[e].next_in)
            if (e < g->pat_mark)
                count_inc(&g->patcnt, edr__graph_edge_pattern(g, e));
}

uint32_t edr_graph_edge_rarity(const edr_graph_t *g, uint32_t e)
{
    if (e >= g->n_edges)
        return 0;
    if (e >= g->pat_mark)
        return 1;
    return count_get(&g->patcnt, edr__graph_edge_pattern(g, e));
}

static int ip_usable(const uint8_t *ip, size_t len)
{
    if (len == 4)
        return ip[0] != 127 && ip[0] != 0;
    if (len == 16) {
        static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        return memcmp(ip, zero_id, 16) != 0 && memcmp(ip, lo6, 16) != 0;
    }
    return 0;
}

/* Key of a TCP flow by its four-tuple; 0 when it cannot be linked. */
static uint64_t flow_key(const Edr__V1__Endpoint *client, const Edr__V1__Endpoint *server)
{
    if (!client || !server || !ip_usable(client->ip.data, client->ip.len) ||
        !ip_usable(server->ip.data, server->ip.len) || !client->port || !server->port)
        return 0;
    uint8_t k[40];
    memset(k, 0, sizeof(k));
    memcpy(k, client->ip.data, client->ip.len);
    memcpy(k + 16, server->ip.data, server->ip.len);
    memcpy(k + 32, &client->port, 4);
    memcpy(k + 36, &server->port, 4);
    return XXH3_64bits(k, sizeof(k)) | 1;
}

/* The flow an event records a side of (client, server, side 1 connect or 2
 * accept); 0 when the event is not one. */
static int event_flow(const Edr__V1__Event *e, const Edr__V1__Endpoint **client, const Edr__V1__Endpoint **server)
{
    const Edr__V1__Network *nw = e->body_case == EDR__V1__EVENT__BODY_NETWORK ? e->network : NULL;
    if (!nw || nw->protocol == EDR__V1__NETWORK__PROTOCOL__UDP || edr_connect_failed(nw))
        return 0;
    if (nw->action == EDR__V1__NETWORK__ACTION__CONNECT) {
        *client = nw->local;
        *server = nw->remote;
        return 1;
    }
    if (nw->action == EDR__V1__NETWORK__ACTION__ACCEPT) {
        *client = nw->remote;
        *server = nw->local;
        return 2;
    }
    return 0;
}

static inline size_t flow_home(uint64_t k, size_t cap)
{
    return home32((uint32_t)(k >> 32), cap);
}

static int ftab_rehash(gftab_t *c, size_t ncap)
{
    struct gfslot *t = calloc(ncap, sizeof(*t));
    if (!t)
        return EDR_ENOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].lo)
            continue;
        size_t j = flow_home((uint64_t)c->slots[i].hi << 32 | c->slots[i].lo, ncap);
        while (t[j].lo)
            j = next_slot(j, ncap);
        t[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = t;
    c->cap = ncap;
    return 0;
}

/* Records one side of a TCP flow; when the other side is known from another
 * host, within FLOW_WINDOW_S, links the connecting process to the
 * accepting one. A slot holds the first side's edge (its kind tells the
 * side: connect 1, accept 2), then FLOW_LINKED once both sides were seen. */
static void flow_side(edr_graph_t *g, const Edr__V1__Endpoint *client, const Edr__V1__Endpoint *server,
                      int side, uint32_t edge)
{
    uint64_t key = flow_key(client, server); /* low bit set: lo is never 0 */
    if (!key)
        return;
    gftab_t *c = &g->flows;
    if (table_full(c->n, c->cap, 4, 5) && ftab_rehash(c, table_grown(c->cap, 1024)) != 0)
        return;
    uint32_t lo = (uint32_t)key, hi = (uint32_t)(key >> 32);
    size_t j = flow_home(key, c->cap);
    while (c->slots[j].lo && (c->slots[j].lo != lo || c->slots[j].hi != hi))
        j = next_slot(j, c->cap);
    struct gfslot *f = &c->slots[j];
    const gedge_t *mine = &g->edges[edge];
    uint32_t t_s = (uint32_t)(mine->t / 1000000000ull);
    if (!f->lo) { /* first side seen */
        f->lo = lo;
        f->hi = hi;
        f->edge = edge;
        f->t_s = t_s;
        c->n++;
        return;
    }
    if ((t_s > f->t_s ? t_s - f->t_s : f->t_s - t_s) > FLOW_WINDOW_S) {
        /* another connection on the same four-tuple: it starts over */
        f->edge = edge;
        f->t_s = t_s;
        return;
    }
    if (f->edge == FLOW_LINKED)
        return; /* linked already */
    const gedge_t *other = &g->edges[f->edge];
    if ((other->kind == EDR_EDGE_CONNECT ? 1 : 2) == side)
        return; /* same side again (repeated event) */
    uint32_t conn_proc = side == 1 ? mine->src : other->src;
    uint32_t acc_proc = side == 2 ? mine->dst : other->dst;
    if (g->nodes[conn_proc].host != g->nodes[acc_proc].host) {
        uint64_t t = side == 2 ? mine->t : other->t;
        edge_add(g, EDR_EDGE_LATERAL, conn_proc, acc_proc, t, server->port);
    }
    f->edge = FLOW_LINKED;
    f->t_s = t_s;
}

/* ------------------------------------------------------------ events */

/* Sets the user of process node n (out of memory loses it). */
static void user_set(edr_graph_t *g, uint32_t n, uint32_t off)
{
    struct gkslot *x = ktab_slot(&g->users, n + 1, 1);
    if (x)
        x->val = off;
}

static void set_cmdline(edr_graph_t *g, gnode_t *x, const Edr__V1__ProcessStart *ps)
{
    if (ps->command_line && *ps->command_line) {
        x->s_b = intern(g, ps->command_line);
        return;
    }
    if (!ps->n_argv)
        return;
    char buf[4096];
    size_t n = 0;
    for (size_t i = 0; i < ps->n_argv && n + 1 < sizeof(buf); i++) {
        if (i)
            buf[n++] = ' ';
        size_t l = strlen(ps->argv[i]);
        if (l > sizeof(buf) - 1 - n)
            l = sizeof(buf) - 1 - n;
        memcpy(buf + n, ps->argv[i], l);
        n += l;
    }
    x->s_b = intern_n(g, buf, n);
}

/* The file an event names first (image started, path written, created,
 * changed, deleted or executed, new name of a rename); NULL when none. */
static const char *event_file(const Edr__V1__Event *e)
{
    const char *p = NULL;
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_START:
        p = e->process_start ? e->process_start->exe : NULL;
        break;
    case EDR__V1__EVENT__BODY_FILE_CREATE:
        p = e->file_create ? e->file_create->path : NULL;
        break;
    case EDR__V1__EVENT__BODY_FILE_WRITE:
        p = e->file_write ? e->file_write->path : NULL;
        break;
    case EDR__V1__EVENT__BODY_FILE_ATTR:
        p = e->file_attr ? e->file_attr->path : NULL;
        break;
    case EDR__V1__EVENT__BODY_FILE_RENAME:
        p = e->file_rename ? e->file_rename->new_path : NULL;
        break;
    case EDR__V1__EVENT__BODY_FILE_DELETE:
        p = e->file_delete ? e->file_delete->path : NULL;
        break;
    case EDR__V1__EVENT__BODY_FILE_EXEC:
        p = e->file_exec ? e->file_exec->path : NULL;
        break;
    default:
        break;
    }
    return p && *p ? p : NULL;
}

/* 1 when the event is a connection the graph records (connect, send or
 * accept with a usable peer), with its direction and the port that labels
 * the remote node (the local port of an accept, the peer's of a connect). */
static int event_remote(const Edr__V1__Event *e, int *inbound, uint32_t *port)
{
    const Edr__V1__Network *nw = e->body_case == EDR__V1__EVENT__BODY_NETWORK ? e->network : NULL;
    if (!nw || !nw->remote || edr_connect_failed(nw))
        return 0; /* a refused or failed attempt connected nothing */
    if (nw->action == EDR__V1__NETWORK__ACTION__CONNECT || nw->action == EDR__V1__NETWORK__ACTION__SEND)
        *inbound = 0;
    else if (nw->action == EDR__V1__NETWORK__ACTION__ACCEPT)
        *inbound = 1;
    else
        return 0;
    if (!ip_usable(nw->remote->ip.data, nw->remote->ip.len))
        return 0; /* unspecified and loopback peers say nothing about the attack */
    *port = *inbound ? (nw->local ? nw->local->port : 0) : nw->remote->port;
    return 1;
}

static int add_event_host(edr_graph_t *g, uint16_t host, uint64_t base, const Edr__V1__Event *e)
{
    if (e->entity_id.len != 16 || !memcmp(e->entity_id.data, zero_id, 16))
        return 0;
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_DNS_QUERY:
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH:
    case EDR__V1__EVENT__BODY__NOT_SET:
        return 0;
    default:
        break;
    }
    uint64_t t = base + (uint64_t)e->time_offset_ns;
    uint32_t a = proc_get(g, host, e->entity_id.data, e->pid, t);
    if (a == EDR_GRAPH_NONE)
        return EDR_ENOMEM;
    uint64_t fork_t = 0;
    uint32_t ppid = 0; /* the parent's pid, which a parent with no events of its own keeps */
    if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_START && e->process_start) {
        fork_t = e->process_start->start_time_ns ? e->process_start->start_time_ns : t;
        ppid = e->process_start->ppid;
    } else if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_FORK && e->process_fork) {
        fork_t = e->process_fork->start_time_ns ? e->process_fork->start_time_ns : t;
        ppid = e->process_fork->ppid;
    }
    if (e->parent_entity_id.len == 16 && memcmp(e->parent_entity_id.data, zero_id, 16) &&
        !(g->nodes[a].flags & GN_PARENT) &&
        memcmp(e->parent_entity_id.data, e->entity_id.data, 16)) {
        uint32_t p = proc_get(g, host, e->parent_entity_id.data, ppid, fork_t ? fork_t : t);
        if (p == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        g->nodes[a].flags |= GN_PARENT;
        uint64_t et = fork_t ? fork_t : g->nodes[a].t0;
        if (edge_add(g, EDR_EDGE_FORK, p, a, et, 0) == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
    }
    gnode_t *x;
    /* the image a source names on an event other than the start (imports:
     * a process older than the log), until a start names one */
    if (e->exe && *e->exe && e->body_case != EDR__V1__EVENT__BODY_PROCESS_START &&
        !(g->nodes[a].flags & GN_STARTED) && !*edr__gstr(g, g->nodes[a].s_a))
        proc_set_image(g, a, intern(g, e->exe));
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_START: {
        const Edr__V1__ProcessStart *ps = e->process_start;
        if (!ps)
            return 0;
        x = &g->nodes[a];
        x->t0 = fork_t;
        x->flags |= GN_STARTED;
        if (ps->exe && *ps->exe)
            proc_set_image(g, a, intern(g, ps->exe));
        set_cmdline(g, x, ps);
        if (ps->user && *ps->user)
            user_set(g, a, intern(g, ps->user));
        /* imports name the parent's image: the parent may have no start of its own */
        if (ps->parent_exe && *ps->parent_exe) {
            uint32_t p = edr__graph_parent(g, a);
            if (p != EDR_GRAPH_NONE && !g->nodes[p].s_a)
                proc_set_image(g, p, intern(g, ps->parent_exe));
        }
        if (ps->exe && *ps->exe) {
            uint32_t f = file_get(g, host, ps->exe, fork_t);
            if (f == EDR_GRAPH_NONE)
                return EDR_ENOMEM;
            if (!recent_in(g, a, f, EDR_EDGE_EXEC))
                edge_add(g, EDR_EDGE_EXEC, f, a, fork_t, 0);
        }
        return 0;
    }
    case EDR__V1__EVENT__BODY_PROCESS_FORK:
        if (fork_t && !(g->nodes[a].flags & GN_STARTED))
            g->nodes[a].t0 = fork_t;
        return 0;
    case EDR__V1__EVENT__BODY_PROCESS_EXIT:
        /* the end time is the node's last event time */
        return 0;
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS: {
        const Edr__V1__ProcessAccess *pa = e->process_access;
        if (!pa || pa->target_entity_id.len != 16)
            return 0;
        uint32_t tg = proc_get(g, host, pa->target_entity_id.data, pa->target_pid, 0);
        if (tg == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        if (tg == a)
            return 0;
        if (tg != EDR_GRAPH_NONE && !g->nodes[tg].s_a && pa->target_exe && *pa->target_exe)
            proc_set_image(g, tg, intern(g, pa->target_exe));
        uint32_t ed = edge_add(g, EDR_EDGE_ACCESS, a, tg, t, pa->access_mask);
        if (ed == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        /* PROCESS_CREATE_THREAD 0x2, VM_OPERATION 0x8, VM_WRITE 0x20 */
        if (pa->kind == EDR__V1__PROCESS_ACCESS__KIND__VM_WRITE ||
            pa->kind == EDR__V1__PROCESS_ACCESS__KIND__PTRACE_ATTACH ||
            pa->kind == EDR__V1__PROCESS_ACCESS__KIND__PIDFD_GETFD ||
            (pa->kind == EDR__V1__PROCESS_ACCESS__KIND__OPEN_PROCESS &&
             (pa->access_mask & 0x2a) == 0x2a))
            g->edges[ed].flags |= GE_WRITE_ACCESS;
        return 0;
    }
    case EDR__V1__EVENT__BODY_FILE_CREATE:
    case EDR__V1__EVENT__BODY_FILE_WRITE:
    case EDR__V1__EVENT__BODY_FILE_ATTR: {
        const char *path = event_file(e);
        if (!path)
            return 0;
        uint32_t f = file_get(g, host, path, t);
        if (f == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        if (g->nodes[f].in_head != EDR_GRAPH_NONE &&
            g->edges[g->nodes[f].in_head].src == a &&
            g->edges[g->nodes[f].in_head].kind == EDR_EDGE_WRITE)
            return 0; /* the same writer again: the first write time is kept */
        return edge_add(g, EDR_EDGE_WRITE, a, f, t, 0) == EDR_GRAPH_NONE ? EDR_ENOMEM : 0;
    }
    case EDR__V1__EVENT__BODY_FILE_RENAME: {
        const Edr__V1__FileRename *rn = e->file_rename;
        if (!rn || !rn->new_path || !*rn->new_path)
            return 0;
        uint32_t nf = file_get(g, host, rn->new_path, t);
        if (nf == EDR_GRAPH_NONE || edge_add(g, EDR_EDGE_RENAME, a, nf, t, 0) == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        if (rn->old_path && *rn->old_path) {
            uint32_t of = file_get(g, host, rn->old_path, t);
            if (of == EDR_GRAPH_NONE ||
                edge_add(g, EDR_EDGE_RENAME_FROM, of, nf, t, 0) == EDR_GRAPH_NONE)
                return EDR_ENOMEM;
        }
        return 0;
    }
    case EDR__V1__EVENT__BODY_FILE_DELETE: {
        if (!e->file_delete || !e->file_delete->path || !*e->file_delete->path)
            return 0;
        uint32_t f = file_get(g, host, e->file_delete->path, t);
        if (f == EDR_GRAPH_NONE || edge_add(g, EDR_EDGE_DELETE, a, f, t, 0) == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        return 0;
    }
    case EDR__V1__EVENT__BODY_FILE_EXEC: {
        const Edr__V1__FileExec *fx = e->file_exec;
        if (!fx || !fx->path || !*fx->path)
            return 0;
        uint32_t f = file_get(g, host, fx->path, t);
        if (f == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        edr_edge_kind_t k = fx->mapped ? EDR_EDGE_MMAP : EDR_EDGE_EXEC;
        if (recent_in(g, a, f, k))
            return 0;
        return edge_add(g, k, f, a, t, 0) == EDR_GRAPH_NONE ? EDR_ENOMEM : 0;
    }
    case EDR__V1__EVENT__BODY_NETWORK: {
        const Edr__V1__Network *nw = e->network;
        int inbound;
        uint32_t port;
        if (!event_remote(e, &inbound, &port))
            return 0;
        const uint8_t *ip = nw->remote->ip.data;
        size_t ipl = nw->remote->ip.len;
        uint32_t r = remote_get(g, host, ip, ipl, port, inbound, t, nw->local ? nw->local->ip.data : NULL,
                                nw->local ? nw->local->ip.len : 0);
        if (r == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        ip_count_inc(g, host, ip, ipl);
        uint32_t ed = inbound ? edge_add(g, EDR_EDGE_ACCEPT, r, a, t, nw->remote->port)
                              : edge_add(g, EDR_EDGE_CONNECT, a, r, t, nw->remote->port);
        if (ed == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        const Edr__V1__Endpoint *client, *server;
        int side = event_flow(e, &client, &server);
        if (side)
            flow_side(g, client, server, side, ed);
        return 0;
    }
    default:
        return 0;
    }
}

static int batch_host(edr_graph_t *g, const Edr__V1__EventBatch *b, uint16_t *host)
{
    if (!b->sensor || b->sensor->host_id.len != 16)
        return EDR_EINVAL;
    return host_get(g, b->sensor->host_id.data, b->sensor->hostname, host);
}

int edr_graph_add_event(edr_graph_t *g, const Edr__V1__EventBatch *b, const Edr__V1__Event *e)
{
    uint16_t host;
    int rc = batch_host(g, b, &host);
    if (rc)
        return rc;
    rc = add_event_host(g, host, b->base_time_ns, e);
    pat_catch_up(g);
    return rc;
}

/* A fleet graph is far larger than the caches and events touch it at
 * random: each node lookup is an index slot and a node, each a miss, and a
 * duplicate check reads the node's newest edge, a third. A batch is added in
 * runs of PF_RUN events, each run preceded by three passes that fetch the
 * index slots of its entities (actor, parent, first file), then their nodes,
 * then their newest incoming edges, so that the misses overlap instead of
 * following each other. Prefetches are hints: nothing is changed. */
#define PF_RUN 32

static void prefetch_run(const edr_graph_t *g, uint16_t host, Edr__V1__Event *const *ev, size_t n)
{
    if (!g->index_cap)
        return;
    uint8_t fid[PF_RUN][16], rid[PF_RUN][16];
    const uint8_t *key[4 * PF_RUN];
    size_t slot[4 * PF_RUN], nk = 0, cap = g->index_cap;
    for (size_t i = 0; i < n; i++) {
        const Edr__V1__Event *e = ev[i];
        if (e->entity_id.len != 16)
            continue;
        key[nk++] = e->entity_id.data;
        if (e->parent_entity_id.len == 16)
            key[nk++] = e->parent_entity_id.data;
        const char *p = event_file(e);
        if (p) {
            file_id(g, host, p, strlen(p), fid[i]);
            key[nk++] = fid[i];
        }
        int inbound;
        uint32_t port;
        if (event_remote(e, &inbound, &port)) {
            const ProtobufCBinaryData *ip = &e->network->remote->ip;
            remote_id(g->hosts[host].id, ip->data, ip->len, port, inbound, rid[i]);
            key[nk++] = rid[i];
            if (g->ipcnt.cap)
                __builtin_prefetch(&g->ipcnt.slots[ctab_home(ct_key(ip_key(host, ip->data, ip->len)), g->ipcnt.cap)], 1);
        }
        const Edr__V1__Endpoint *client, *server;
        uint64_t fk;
        if (g->flows.cap && event_flow(e, &client, &server) && (fk = flow_key(client, server)) != 0)
            __builtin_prefetch(&g->flows.slots[flow_home(fk, g->flows.cap)]);
    }
    for (size_t k = 0; k < nk; k++) {
        slot[k] = id_home(id_hash(key[k]), cap);
        __builtin_prefetch(&g->index[slot[k]]);
    }
    /* the first slot whose tag matches: its node is very likely the one */
    for (size_t k = 0; k < nk; k++) {
        uint32_t tag = id_tag(id_hash(key[k])), v;
        size_t j = slot[k];
        while ((v = g->index[j]) != 0 && (v & ~IDX_NODE_MASK) != tag)
            j = next_slot(j, cap);
        slot[k] = v ? (v & IDX_NODE_MASK) - 1 : EDR_GRAPH_NONE;
        if (v)
            __builtin_prefetch(&g->nodes[slot[k]], 1);
    }
    for (size_t k = 0; k < nk; k++)
        if (slot[k] != EDR_GRAPH_NONE && g->nodes[slot[k]].in_head != EDR_GRAPH_NONE)
            __builtin_prefetch(&g->edges[g->nodes[slot[k]].in_head]);
}

int edr_graph_add_batch(edr_graph_t *g, const Edr__V1__EventBatch *b)
{
    uint16_t host;
    int rc = batch_host(g, b, &host);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n_events && !rc; i += PF_RUN) {
        size_t end = i + PF_RUN < b->n_events ? i + PF_RUN : b->n_events;
        prefetch_run(g, host, b->events + i, end - i);
        for (size_t k = i; k < end && !rc; k++)
            rc = add_event_host(g, host, b->base_time_ns, b->events[k]);
    }
    pat_catch_up(g);
    return rc;
}

int edr_graph_add_process_record(edr_graph_t *g, const Edr__V1__ProcessRecord *r, const char *hostname)
{
    if (!r || r->entity_id.len != 16 || r->host_id.len != 16)
        return EDR_EINVAL;
    uint16_t host;
    int rc = host_get(g, r->host_id.data, hostname, &host);
    if (rc)
        return rc;
    uint32_t a = proc_get(g, host, r->entity_id.data, r->pid, r->start_time_ns);
    if (a == EDR_GRAPH_NONE)
        return EDR_ENOMEM;
    gnode_t *x = &g->nodes[a];
    if (!(x->flags & GN_STARTED)) {
        if (r->exe && *r->exe)
            proc_set_image(g, a, intern(g, r->exe));
        if (r->command_line && *r->command_line)
            x->s_b = intern(g, r->command_line);
        if (r->user && *r->user)
            user_set(g, a, intern(g, r->user));
        if (r->start_time_ns)
            x->t0 = r->start_time_ns;
        x->flags |= GN_STARTED;
    }
    if (r->end_time_ns > x->t_last)
        x->t_last = r->end_time_ns;
    if (!(x->flags & GN_PARENT) && r->parent_entity_id.len == 16 &&
        memcmp(r->parent_entity_id.data, zero_id, 16)) {
        uint32_t p = proc_get(g, host, r->parent_entity_id.data, r->ppid, 0);
        if (p == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
        g->nodes[a].flags |= GN_PARENT;
        if (edge_add(g, EDR_EDGE_FORK, p, a, g->nodes[a].t0, 0) == EDR_GRAPH_NONE)
            return EDR_ENOMEM;
    }
    pat_catch_up(g);
    return 0;
}

/* ------------------------------------------------------------ lifetime and queries */

edr_graph_t *edr_graph_new(void)
{
    edr_graph_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    if (grow_mapped((void **)&g->pool, &g->pool_cap, 4096, 1) != 0) {
        free(g);
        return NULL;
    }
    g->pool[0] = '\0';
    g->pool_len = 1;
    return g;
}

void edr_graph_destroy(edr_graph_t *g)
{
    if (!g)
        return;
    free_mapped(g->nodes, g->cap_nodes, sizeof(gnode_t));
    free_mapped(g->edges, g->cap_edges, sizeof(gedge_t));
    free_mapped(g->pool, g->pool_cap, 1);
    free_mapped(g->aux, g->cap_aux, sizeof(gaux_t));
    free(g->index);
    free(g->interned);
    free(g->hosts);
    free(g->flows.slots);
    free(g->ipcnt.slots);
    free(g->ipcnt.big);
    free(g->patcnt.slots);
    free(g->patcnt.big);
    free(g->users.slots);
    free(g);
}

size_t edr_graph_node_count(const edr_graph_t *g)
{
    return g->n_nodes;
}

size_t edr_graph_edge_count(const edr_graph_t *g)
{
    return g->n_edges;
}

size_t edr_graph_edge_size(void)
{
    return sizeof(gedge_t);
}

/* Resident bytes. The node, edge, string and edge-port arrays are anonymous
 * mappings grown by mremap: pages past the last element were never
 * written, so the kernel has not backed them and they are counted by use
 * (whole pages), not capacity. The hash tables are written all over and
 * counted whole. */
static size_t pages_used(size_t n, size_t elem)
{
    const size_t page = 4096;
    return (n * elem + page - 1) / page * page;
}

static size_t ctab_bytes(const gctab_t *c)
{
    return c->cap * sizeof(*c->slots) + c->cap_big * sizeof(*c->big);
}

size_t edr_graph_memory_parts(const edr_graph_t *g, edr_graph_mem_t *m)
{
    memset(m, 0, sizeof(*m));
    m->nodes = pages_used(g->n_nodes, sizeof(gnode_t));
    m->edges = pages_used(g->n_edges, sizeof(gedge_t));
    m->index = g->index_cap * sizeof(*g->index);
    m->strings = pages_used(g->pool_len, 1);
    m->intern = g->interned_cap * sizeof(*g->interned);
    m->hosts = g->cap_hosts * sizeof(ghost_t);
    m->flows = g->flows.cap * sizeof(*g->flows.slots);
    m->peers = ctab_bytes(&g->ipcnt);
    m->patterns = ctab_bytes(&g->patcnt);
    m->users = g->users.cap * sizeof(*g->users.slots);
    m->aux = pages_used(g->n_aux, sizeof(gaux_t));
    m->total = m->nodes + m->edges + m->index + m->strings + m->intern + m->hosts + m->flows + m->peers +
               m->patterns + m->users + m->aux;
    return m->total;
}

size_t edr_graph_memory(const edr_graph_t *g)
{
    edr_graph_mem_t m;
    return edr_graph_memory_parts(g, &m);
}

int edr_graph_node(const edr_graph_t *g, uint32_t n, edr_graph_node_info_t *info)
{
    if (n >= g->n_nodes)
        return EDR_ERANGE;
    const gnode_t *x = &g->nodes[n];
    memset(info, 0, sizeof(*info));
    info->kind = (edr_node_kind_t)x->kind;
    memcpy(info->entity_id, x->id, 16);
    const ghost_t *h = &g->hosts[x->host];
    memcpy(info->host_id, h->id, 16);
    info->hostname = edr__gstr(g, h->name);
    info->parent = edr__graph_parent(g, n);
    info->executable = info->command_line = info->user = info->path = "";
    info->time_ns = x->t0;
    info->last_ns = x->t_last;
    switch (x->kind) {
    case EDR_NODE_PROCESS:
        info->pid = x->pid;
        info->executable = edr__gstr(g, x->s_a);
        info->command_line = edr__gstr(g, x->s_b);
        {
            const struct gkslot *u = ktab_slot((gktab_t *)&g->users, n + 1, 0);
            info->user = edr__gstr(g, u ? u->val : 0);
        }
        break;
    case EDR_NODE_FILE:
        info->path = edr__gstr(g, x->s_a);
        break;
    case EDR_NODE_REMOTE: {
        const uint8_t *ip;
        size_t l = edr__graph_remote_ip(g, x, &ip);
        if (l)
            memcpy(info->ip, ip, l);
        info->ip_len = (uint8_t)l;
        info->port = x->pid;
        info->inbound = (x->flags & GN_INBOUND) != 0;
        l = edr__graph_local_ip(g, x, &ip);
        if (l)
            memcpy(info->local_ip, ip, l);
        info->local_ip_len = (uint8_t)l;
        break;
    }
    default:
        break;
    }
    for (uint32_t e = x->in_head; e != EDR_GRAPH_NONE; e = g->edges[e].next_in)
        info->n_in++;
    for (uint32_t e = x->out_head; e != EDR_GRAPH_NONE; e = g->edges[e].next_out)
        info->n_out++;
    return 0;
}

int edr_graph_edge(const edr_graph_t *g, uint32_t e, edr_graph_edge_info_t *info)
{
    if (e >= g->n_edges)
        return EDR_ERANGE;
    const gedge_t *x = &g->edges[e];
    info->kind = (edr_edge_kind_t)x->kind;
    info->src = x->src;
    info->dst = x->dst;
    info->time_ns = x->t;
    info->aux = edr__graph_edge_aux(g, e);
    return 0;
}

uint32_t edr_graph_find_pid(const edr_graph_t *g, const uint8_t *host_id, uint32_t pid, uint64_t at_ns,
                            int *err)
{
    uint32_t best = EDR_GRAPH_NONE;
    int hosts_seen = -1, multi = 0;
    if (err)
        *err = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const gnode_t *x = &g->nodes[i];
        if (x->kind != EDR_NODE_PROCESS || x->pid != pid)
            continue;
        if (host_id && memcmp(g->hosts[x->host].id, host_id, 16))
            continue;
        if (at_ns && x->t0 > at_ns)
            continue;
        if (hosts_seen >= 0 && hosts_seen != x->host)
            multi = 1;
        hosts_seen = x->host;
        /* prefer the process whose start we saw, then the latest start */
        if (best == EDR_GRAPH_NONE ||
            ((x->flags & GN_STARTED) && !(g->nodes[best].flags & GN_STARTED)) ||
            ((x->flags & GN_STARTED) == (g->nodes[best].flags & GN_STARTED) && x->t0 > g->nodes[best].t0))
            best = (uint32_t)i;
    }
    if (multi && !host_id) {
        if (err)
            *err = EDR_EINVAL;
        return EDR_GRAPH_NONE;
    }
    return best;
}

int edr_graph_find_host(const edr_graph_t *g, const char *name, uint8_t out[16])
{
    for (size_t i = 0; i < g->n_hosts; i++) {
        const char *hn = edr__gstr(g, g->hosts[i].name);
        if (strcasecmp(hn, name) == 0) {
            memcpy(out, g->hosts[i].id, 16);
            return 0;
        }
    }
    uint8_t id[16];
    if (strlen(name) == 32 && edr_unhex(name, id, 16) == 0)
        for (size_t i = 0; i < g->n_hosts; i++)
            if (!memcmp(g->hosts[i].id, id, 16)) {
                memcpy(out, id, 16);
                return 0;
            }
    return EDR_ENOENT;
}

size_t edr_graph_host_count(const edr_graph_t *g)
{
    return g->n_hosts;
}

void edr_graph_host_id(const edr_graph_t *g, size_t i, uint8_t out[16])
{
    memcpy(out, g->hosts[i].id, 16);
}

/* ------------------------------------------------------------ small helpers */

void edr__ip_format(const uint8_t *ip, size_t len, char *out, size_t outlen)
{
    if (len == 4) {
        snprintf(out, outlen, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
        return;
    }
    if (len == 16) {
        static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(ip, v4map, 12)) {
            snprintf(out, outlen, "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
            return;
        }
        size_t n = 0;
        for (int i = 0; i < 8 && n < outlen; i++)
            n += (size_t)snprintf(out + n, outlen - n, "%s%x", i ? ":" : "",
                                  (unsigned)(ip[2 * i] << 8 | ip[2 * i + 1]));
        return;
    }
    snprintf(out, outlen, "?");
}

const char *edr__basename(const char *path)
{
    const char *b = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    return b;
}
