/* Internal layout of the provenance graph shared by the builder, the analysis and the exporters. */
#ifndef EDR_GRAPH_INT_H
#define EDR_GRAPH_INT_H

#include "edr/graph.h"

#include <stdint.h>

/* Node flags. */
#define GN_STARTED  0x01 /* a process start (or record) was seen: image and command line known */
#define GN_INBOUND  0x02 /* remote: the peer connected to us */
#define GN_BOUNDARY 0x04 /* process: cached "is a trust boundary" (set by the analysis, unused) */

/* One node: 64 bytes. Strings are offsets into the string pool (0 = none). */
typedef struct gnode {
    uint8_t id[16];
    uint64_t t0;      /* start / first seen */
    uint64_t t_last;  /* last event */
    uint32_t s_a;     /* exe (process), path (file), ip bytes (remote: len byte + ip, then len byte + local ip) */
    uint32_t s_b;     /* command line (process), directory (file) */
    uint32_t s_c;     /* user (process) */
    uint32_t in_head; /* newest incoming edge, EDR_GRAPH_NONE */
    uint32_t out_head;
    uint32_t parent;  /* parent process node */
    uint32_t pid;     /* pid (process), port (remote) */
    uint16_t host;
    uint8_t kind;
    uint8_t flags;
} gnode_t;

/* One edge: 32 bytes. Incoming and outgoing lists are threaded through the
 * edges (newest first), so adding an edge never allocates per node. */
typedef struct gedge {
    uint32_t src, dst;
    uint32_t next_in, next_out;
    uint64_t t;
    uint32_t aux;
    uint8_t kind;
    uint8_t flags;
    uint16_t pad;
} gedge_t;

#define GE_WRITE_ACCESS 0x01 /* access edge: can change the target (write, inject, attach) */

typedef struct ghost {
    uint8_t id[16];
    uint32_t name;  /* string pool offset */
    uint32_t node;  /* host node */
    uint64_t from_ns, to_ns; /* window loaded from a store (to_ns 0: open); valid when loaded */
    uint32_t loaded;
    uint64_t file_seed; /* hash seed of the host's file node ids */
} ghost_t;

/* Open-addressing table keyed by a non-zero 64-bit hash with two 32-bit
 * values: counters (a: count) and TCP flow sides (a: edge, b: side). */
typedef struct gktab {
    struct gkslot {
        uint64_t key; /* 0: empty */
        uint32_t a, b;
    } *slots;
    size_t cap, n;
} gktab_t;

struct edr_graph {
    gnode_t *nodes;
    size_t n_nodes, cap_nodes;
    gedge_t *edges;
    size_t n_edges, cap_edges;
    /* open addressing keyed by node id: node index + 1 and the high half of
     * the id's hash, so that a probe reads a node only when its tag matches */
    struct gslot {
        uint32_t node;
        uint32_t tag;
    } *index;
    size_t index_cap;
    char *pool; /* strings, NUL terminated */
    size_t pool_len, pool_cap;
    uint32_t *interned; /* open addressing: pool offset, keyed by string hash */
    size_t interned_cap, n_interned;
    ghost_t *hosts;
    size_t n_hosts, cap_hosts;
    /* flows: one side of a TCP connection, to link connect and accept across hosts */
    gktab_t flows;
    /* per (host, ip) count of network edges: the rarity of a peer */
    gktab_t ipcnt;
    /* per (host, edge kind, source label, destination label) count of edges:
     * the rarity of an edge pattern on that host (parent exe -> child exe,
     * exe -> file directory, exe -> remote port, ...) */
    gktab_t patcnt;
    size_t pat_mark; /* edges below it are counted in patcnt */
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
