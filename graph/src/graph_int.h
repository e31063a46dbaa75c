/* Internal layout of the provenance graph shared by the builder, the analysis and the exporters. */
#ifndef EDR_GRAPH_INT_H
#define EDR_GRAPH_INT_H

#include "edr/graph.h"

#include <stdint.h>

/* Node flags. */
#define GN_STARTED 0x01 /* a process start (or record) was seen: image and command line known */
#define GN_INBOUND 0x02 /* remote: the peer connected to us */
#define GN_PARENT  0x04 /* process: its parent is known (the source of its one fork edge) */

/* Node and edge ids: a graph holds at most GRAPH_MAX_NODES nodes (an edge
 * keeps its kind and flags in the high bits of its two node ids) and fewer
 * than UINT32_MAX edges. */
#define GRAPH_NODE_BITS 28
#define GRAPH_MAX_NODES ((1u << GRAPH_NODE_BITS) - 2)

/* One node: 56 bytes. Strings are offsets into the string pool (0 = none).
 * A process's parent is the source of its fork edge (GN_PARENT says there
 * is one) and its user is kept in g->users: both are read only by the
 * analysis and the exports, never while building. */
typedef struct gnode {
    uint8_t id[16];
    uint64_t t0;      /* start / first seen */
    uint64_t t_last;  /* last event */
    uint32_t s_a;     /* exe (process), path (file), ip bytes (remote: len byte + ip, then len byte + local ip) */
    uint32_t s_b;     /* command line (process), directory (file) */
    uint32_t in_head; /* newest incoming edge, EDR_GRAPH_NONE */
    uint32_t out_head;
    uint32_t pid;     /* pid (process), port (remote) */
    uint16_t host;
    uint8_t kind;
    uint8_t flags;
} gnode_t;

/* One edge: 24 bytes. Incoming and outgoing lists are threaded through the
 * edges (newest first), so adding an edge never allocates per node. The
 * port or access mask of an edge (edr_graph_edge_info_t.aux) is not stored
 * here: a connect edge's is its remote node's port, the others (accept,
 * lateral, access) are kept in g->aux when not 0 (GE_AUX). */
typedef struct gedge {
    uint32_t src : GRAPH_NODE_BITS;
    uint32_t kind : 4;
    uint32_t dst : GRAPH_NODE_BITS;
    uint32_t flags : 4;
    uint32_t next_in, next_out;
    uint64_t t;
} gedge_t;

#define GE_WRITE_ACCESS 0x01 /* access edge: can change the target (write, inject, attach) */
#define GE_AUX          0x02 /* the edge has an entry in g->aux */

typedef struct ghost {
    uint8_t id[16];
    uint32_t name;  /* string pool offset */
    uint32_t node;  /* host node */
    uint64_t from_ns, to_ns; /* window loaded from a store (to_ns 0: open); valid when loaded */
    uint32_t loaded;
    uint64_t file_seed; /* hash seed of the host's file node ids */
} ghost_t;

/* Open-addressing table (linear probing, any capacity, load at most 0.8)
 * keyed by a non-zero 32-bit number (a node + 1) with a 32-bit value. */
typedef struct gktab {
    struct gkslot {
        uint32_t key; /* 0: empty */
        uint32_t val;
    } *slots;
    size_t cap, n;
} gktab_t;

/* Counters keyed by a 64-bit hash (see count_inc() in graph.c). */
typedef struct gctab {
    uint64_t *slots; /* high 48 bits of the key, 16-bit count; 0: empty */
    size_t cap, n;
    struct gbig {
        uint64_t key;
        uint32_t n;
    } *big; /* counts past 0xfffe */
    size_t cap_big, n_big;
} gctab_t;

/* TCP flows keyed by a 64-bit hash of the four-tuple (exact), 16-byte
 * slots: the key's two halves, the first side's edge or FLOW_LINKED, and
 * the time (s) of that side or of the link. Two sides are one connection
 * only within FLOW_WINDOW_S of each other: a four-tuple is reused, and a
 * side whose peer was never seen must not link to a connection hours
 * later. */
#define FLOW_LINKED   UINT32_MAX
#define FLOW_WINDOW_S 120
typedef struct gftab {
    struct gfslot {
        uint32_t lo, hi; /* 0, 0: empty */
        uint32_t edge;
        uint32_t t_s;
    } *slots;
    size_t cap, n;
} gftab_t;

/* One edge's port or access mask, in edge order (sorted by edge). */
typedef struct gaux {
    uint32_t edge, val;
} gaux_t;

struct edr_graph {
    gnode_t *nodes;
    size_t n_nodes, cap_nodes;
    gedge_t *edges;
    size_t n_edges, cap_edges;
    /* open addressing keyed by node id, 4-byte slots: node index + 1 (0:
     * empty) and 4 more bits of the id's hash, so that a probe reads a node
     * only for one slot in 16 that is not its own */
    uint32_t *index;
    size_t index_cap;
    char *pool; /* strings, NUL terminated (a mapping: counted by the pages in use) */
    size_t pool_len, pool_cap;
    uint32_t *interned; /* open addressing: pool offset, keyed by string hash */
    size_t interned_cap, n_interned;
    ghost_t *hosts;
    size_t n_hosts, cap_hosts;
    /* flows: one side of a TCP connection, to link connect and accept across
     * hosts (see flow_side() in graph.c) */
    gftab_t flows;
    /* per (host, ip) count of network edges: the rarity of a peer */
    gctab_t ipcnt;
    /* per (host, edge kind, source label, destination label) count of edges:
     * the rarity of an edge pattern on that host (parent exe -> child exe,
     * exe -> file directory, exe -> remote port, ...) */
    gctab_t patcnt;
    size_t pat_mark; /* edges below it are counted in patcnt */
    /* process users: key node + 1, value pool offset */
    gktab_t users;
    /* edge ports and access masks (GE_AUX), appended in edge order */
    gaux_t *aux;
    size_t n_aux, cap_aux;
};

static inline const char *edr__gstr(const edr_graph_t *g, uint32_t off)
{
    return off ? g->pool + off : "";
}

/* Peer count of an IP on a host (how often the host talked to it). */
uint32_t edr__graph_ip_count(const edr_graph_t *g, uint16_t host, const uint8_t *ip, size_t ip_len);
/* IP bytes of a remote node: returns length (4 or 16) and sets *ip. */
size_t edr__graph_remote_ip(const edr_graph_t *g, const gnode_t *n, const uint8_t **ip);
/* Our own address in the flows of a remote node (0 when unknown). */
size_t edr__graph_local_ip(const edr_graph_t *g, const gnode_t *n, const uint8_t **ip);
/* Parent process node of process node n, EDR_GRAPH_NONE when unknown. */
uint32_t edr__graph_parent(const edr_graph_t *g, uint32_t n);
/* Port or access mask of edge e (edr_graph_edge_info_t.aux). */
uint32_t edr__graph_edge_aux(const edr_graph_t *g, uint32_t e);
/* Pattern key of edge e (0 when the edge has no pattern). */
uint64_t edr__graph_edge_pattern(const edr_graph_t *g, uint32_t e);
/* Grows the array *p of *cap elements of elem bytes to hold need (capacity
 * doubled, from first when empty). On failure returns EDR_ENOMEM and changes
 * nothing. */
int edr__grow(void **p, size_t *cap, size_t need, size_t elem, size_t first);
/* Formats an IP (4 or 16 bytes) as text. */
void edr__ip_format(const uint8_t *ip, size_t len, char *out, size_t outlen);
/* Basename of a path (after the last '/' or '\\'). */
const char *edr__basename(const char *path);

#endif
