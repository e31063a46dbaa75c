/* Provenance graph of hosts over a time window: building, root-cause analysis, attack chain, impact and exports. */
#ifndef EDR_GRAPH_H
#define EDR_GRAPH_H

#include "edr/config.h"
#include "edr/v1/batch.pb-c.h"
#include "edr/v1/entity.pb-c.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ graph */

/* Node kinds; values equal edr.v1.GraphNode.Kind. */
typedef enum {
    EDR_NODE_PROCESS = 1,
    EDR_NODE_FILE = 2,
    EDR_NODE_REMOTE = 3,
    EDR_NODE_HOST = 4,
} edr_node_kind_t;

/* Edge kinds. Every edge carries the time of the event that made it. */
typedef enum {
    EDR_EDGE_FORK = 1,    /* parent process -> child process (fork, or the parent of an exec) */
    EDR_EDGE_EXEC,        /* image file -> process (execve) */
    EDR_EDGE_MMAP,        /* file -> process (mmap PROT_EXEC, image load) */
    EDR_EDGE_WRITE,       /* process -> file (create, write, chmod/chown) */
    EDR_EDGE_RENAME,      /* process -> file under its new name */
    EDR_EDGE_RENAME_FROM, /* file under its old name -> file under its new name */
    EDR_EDGE_DELETE,      /* process -> file */
    EDR_EDGE_CONNECT,     /* process -> remote endpoint */
    EDR_EDGE_ACCEPT,      /* remote endpoint -> process */
    EDR_EDGE_ACCESS,      /* process -> process (ptrace, vm read/write, OpenProcess) */
    EDR_EDGE_LATERAL,     /* connecting process -> accepting process on another host (one flow) */
    EDR_EDGE__COUNT
} edr_edge_kind_t;

#define EDR_GRAPH_NONE UINT32_MAX /* "no node" / "no edge" */

typedef struct edr_graph edr_graph_t;

/* Everything known about one node. Strings point into the graph and stay
 * valid until it is destroyed; absent strings are "" (never NULL). */
typedef struct edr_graph_node_info {
    edr_node_kind_t kind;
    uint8_t entity_id[16]; /* process entity id; other kinds: a stable hash of (host, key) */
    uint8_t host_id[16];
    const char *hostname;
    uint32_t pid;             /* processes */
    uint32_t parent;          /* parent process node, EDR_GRAPH_NONE when unknown */
    const char *executable;   /* processes: image path */
    const char *command_line; /* processes: argv joined with spaces, or as imported */
    const char *user;
    const char *path; /* files */
    uint8_t ip[16];   /* remotes: 4 bytes (IPv4) or 16 */
    uint8_t ip_len;
    uint8_t inbound;  /* remotes: 1 when the peer connected to us */
    uint32_t port;    /* remotes: the peer's service port (outbound), or our local port (inbound) */
    uint8_t local_ip[16]; /* remotes: our own address in the first flow seen, local_ip_len 0: unknown */
    uint8_t local_ip_len;
    uint64_t time_ns; /* processes: start time; others: first seen */
    uint64_t last_ns; /* last event of or about the node */
    uint64_t end_ns;  /* processes: exit time, 0 when not seen */
    uint32_t n_in, n_out; /* edge counts */
} edr_graph_node_info_t;

typedef struct edr_graph_edge_info {
    edr_edge_kind_t kind;
    uint32_t src, dst;
    uint64_t time_ns; /* 0: before the window (known from a record, not an event) */
    uint32_t aux;     /* connect/accept: the peer's port; access: granted access mask */
} edr_graph_edge_info_t;

/* A new, empty graph. NULL when out of memory. Caller frees with
 * edr_graph_destroy(). Not thread-safe; readers may share a graph that no
 * longer changes. */
edr_graph_t *edr_graph_new(void);
void edr_graph_destroy(edr_graph_t *g);

/* Adds every event of a decoded batch (incrementally: batches of any host,
 * in any order). Events without a usable actor are skipped. Returns 0, or
 * EDR_ENOMEM (the graph then holds a prefix of the batch), or EDR_EINVAL
 * when the batch has no sensor host id. */
int edr_graph_add_batch(edr_graph_t *g, const Edr__V1__EventBatch *b);
/* Adds one event of batch b (b gives host and time base). */
int edr_graph_add_event(edr_graph_t *g, const Edr__V1__EventBatch *b, const Edr__V1__Event *e);
/* Adds or completes a process from a store record (host given by r->host_id):
 * image, command line, pid, start, parent edge. 0, EDR_EINVAL or EDR_ENOMEM. */
int edr_graph_add_process_record(edr_graph_t *g, const Edr__V1__ProcessRecord *r,
                                 const char *hostname);

size_t edr_graph_node_count(const edr_graph_t *g);
size_t edr_graph_edge_count(const edr_graph_t *g);
/* Resident bytes held (nodes and edges by use, indexes, strings, tables). */
size_t edr_graph_memory(const edr_graph_t *g);
/* The same figure by part (bytes each). */
typedef struct edr_graph_mem {
    size_t nodes, edges;  /* node and edge arrays, by the pages in use */
    size_t index;         /* node id -> node table */
    size_t strings;       /* string pool (by the pages in use) */
    size_t intern;        /* string -> pool offset table */
    size_t hosts;         /* host records */
    size_t flows;         /* TCP flow sides (lateral links) */
    size_t peers;         /* per (host, peer address) counts */
    size_t patterns;      /* per edge pattern counts (rarity) */
    size_t users;         /* process users */
    size_t aux;           /* edge ports and access masks kept beside the edges */
    size_t total;
} edr_graph_mem_t;
/* Fills m and returns m->total (equal to edr_graph_memory()). */
size_t edr_graph_memory_parts(const edr_graph_t *g, edr_graph_mem_t *m);
/* Bytes per edge of the edge table itself. */
size_t edr_graph_edge_size(void);

/* Rarity of edge e's pattern on its host: how many edges of the graph have
 * the same (kind, source label, destination label), where a label is a
 * process image, a file's directory, an outbound port or an inbound peer
 * address (parent exe -> child exe, exe -> directory written, exe -> remote
 * port, peer -> service). 1 is the rarest; 0 for an unknown edge. */
uint32_t edr_graph_edge_rarity(const edr_graph_t *g, uint32_t e);

/* Fills info for node n. 0, or EDR_ERANGE for an unknown node. */
int edr_graph_node(const edr_graph_t *g, uint32_t n, edr_graph_node_info_t *info);
int edr_graph_edge(const edr_graph_t *g, uint32_t e, edr_graph_edge_info_t *info);
/* Node of a process entity (or any node id), EDR_GRAPH_NONE when absent. */
uint32_t edr_graph_find_entity(const edr_graph_t *g, const uint8_t id[16]);
/* The remote endpoint node a host saw: peer address ip (4 or 16 bytes, as
 * recorded), port (outbound: the peer's service port; inbound: our local
 * port) and direction. EDR_GRAPH_NONE when absent. */
uint32_t edr_graph_find_remote(const edr_graph_t *g, const uint8_t host_id[16], const uint8_t *ip, size_t ip_len,
                               uint32_t port, int inbound);
/* The process with this pid on a host (host_id NULL: any host, EDR_EINVAL
 * through *err when several hosts have it). Where the pid was reused, the
 * latest process started at or before at_ns (0: the latest of all).
 * EDR_GRAPH_NONE when none. */
uint32_t edr_graph_find_pid(const edr_graph_t *g, const uint8_t *host_id, uint32_t pid,
                            uint64_t at_ns, int *err);
/* Host id of a host named (case-insensitive) or given as 32 hex digits.
 * 0, or EDR_ENOENT. */
int edr_graph_find_host(const edr_graph_t *g, const char *name_or_id, uint8_t out[16]);
/* Number of hosts seen; host i's id into out. */
size_t edr_graph_host_count(const edr_graph_t *g);
void edr_graph_host_id(const edr_graph_t *g, size_t i, uint8_t out[16]);

/* ------------------------------------------------------------- loading */

/* Parses a Sysmon / JSON-lines export with the shared parser (edr/sysmon.h)
 * and adds every event. Returns 0 (skipped lines are not errors), or EDR_EIO
 * / EDR_ENOMEM with a message in err. */
int edr_graph_load_sysmon(edr_graph_t *g, const char *path, char *err, size_t errlen);

struct edr_sysmon_stats;
/* The same, and the parser's counts (lines read, skipped by reason, the
 * first bad lines) in *st when st is not NULL: a caller shows what it left
 * out. */
int edr_graph_load_sysmon_stats(edr_graph_t *g, const char *path, struct edr_sysmon_stats *st, char *err,
                                size_t errlen);

struct edr_store;
/* Adds every event of one host with from_ns <= time < to_ns (to_ns 0: no
 * bound) from an open store; the graph remembers the window, so a later
 * load (or edr_rca_run_store()) reads only what it did not cover. Only when
 * the store library is built (HAVE_EDR_CORE_STORE); otherwise returns
 * EDR_EUNSUPPORTED. */
int edr_graph_load_store_host(edr_graph_t *g, struct edr_store *s, const uint8_t host_id[16],
                              uint64_t from_ns, uint64_t to_ns);

/* ---------------------------------------------------------- root cause */

/* Root-cause classes; values equal edr.v1.Incident.RootCauseClass. */
typedef enum {
    EDR_RCA_INBOUND_CONNECTION = 1, /* a service accepted a connection and was exploited */
    EDR_RCA_DOWNLOAD_EXECUTE = 2,   /* a file written from the network, then executed */
    EDR_RCA_USER_SESSION = 3,       /* a user logon session */
    EDR_RCA_PERSISTENCE = 4,        /* a persistence mechanism fired */
    EDR_RCA_UNKNOWN = 5,
} edr_rca_class_t;

/* "inbound_connection", "download_execute", "user_session", "persistence", "unknown". */
const char *edr_rca_class_name(edr_rca_class_t c);

typedef struct edr_rca_opts {
    uint64_t clock_skew_ns;   /* an edge up to this much after the dependency still explains it */
    uint64_t entry_window_ns; /* how long before the first attack step the entry is looked for */
    uint32_t max_nodes;       /* backward traversal visits at most this many nodes */
    uint32_t max_fanin;       /* per node, at most this many incoming edges are followed */
    uint32_t noise_fanin;     /* files executed/mapped by more processes are noise */
    uint32_t rare_max;        /* a peer IP is rare on a host with at most this many edges */
    uint32_t max_chain;       /* chain and impact hold at most this many entries each */
    const char *noise_paths;  /* comma-separated path prefixes (or ".so" style suffixes) pruned */
    const char *trust_boundaries; /* comma-separated image basenames where the walk stops */
    const char *session_managers; /* boundaries that start user sessions */
    const char *schedulers;       /* boundaries that run persistence (cron, at, tasks) */
} edr_rca_opts_t;

/* Defaults (the values documented in core/src/settings.def). */
void edr_rca_opts_default(edr_rca_opts_t *o);
/* Reads analyzer.clock_skew and analyzer.rca_* settings. Strings point into cfg. */
void edr_rca_opts_from_config(edr_rca_opts_t *o, const edr_config_t *cfg);

/* One node of a chain or impact list. */
typedef struct edr_rca_item {
    uint32_t node;
    uint32_t edge;    /* the edge that put it there (EDR_GRAPH_NONE for the root) */
    uint64_t time_ns; /* when it joined the attack */
    uint32_t port;    /* remotes: port of that connection */
    uint8_t on_path;  /* 1: on the causal path from the root to the start */
    uint8_t role;     /* edr_rca_role_t */
} edr_rca_item_t;

typedef enum {
    EDR_ROLE_ROOT = 0,
    EDR_ROLE_PATH,     /* causal path root -> start */
    EDR_ROLE_ENTRY,    /* how it came in: accepted peer, downloader, payload peers */
    EDR_ROLE_SPAWNED,  /* a process of the attack off the path */
    EDR_ROLE_NETWORK,  /* a connection made by the attack */
    EDR_ROLE_DROPPED,  /* a file written by the attack and executed */
    EDR_ROLE_WRITTEN,  /* impact: written, renamed, deleted */
} edr_rca_role_t;
const char *edr_rca_role_name(edr_rca_role_t r);

/* Result of one analysis. Arrays are owned by it. */
typedef struct edr_rca {
    uint32_t start;          /* the node analysed */
    uint64_t start_ns;       /* the dependency time analysed (alert time) */
    uint32_t root;           /* root cause node */
    edr_rca_class_t cls;
    uint32_t entry;          /* remote (inbound) or downloader process, EDR_GRAPH_NONE */
    uint64_t entry_ns;
    char reason[256];        /* one sentence: why this root and class */
    edr_rca_item_t *chain;   /* root first, then in causal (time) order */
    size_t n_chain;
    edr_rca_item_t *impact;  /* forward from the root: processes, files, connections */
    size_t n_impact;
    uint32_t *edges;         /* the pruned subgraph (edge ids) */
    size_t n_edges;
    size_t edges_back;     /* of them, those of the backward walk from the start */
    size_t edges_unpruned; /* edges that backward walk reaches without pruning (capped) */
    size_t nodes_visited;
    int truncated;           /* a cap was hit */
} edr_rca_t;

/* Root cause, chain, pruned subgraph and impact of node start (normally a
 * process) as of at_ns (0: its last event). opts NULL: defaults. Returns
 * NULL and sets *err (EDR_ERANGE: no such node, EDR_ENOMEM). Caller frees
 * with edr_rca_destroy(). Read-only on g. */
edr_rca_t *edr_rca_run(const edr_graph_t *g, uint32_t start, uint64_t at_ns,
                       const edr_rca_opts_t *opts, int *err);
void edr_rca_destroy(edr_rca_t *r);

/* ------------------------------------------------- analysis from a store */

typedef struct edr_rca_store_opts {
    uint64_t lookback_ns; /* history loaded before the analysed time (0: 24 h); edge-pattern rarity is counted over it */
    uint64_t forward_ns;  /* loaded after it, for the impact (0: up to the newest event) */
    uint32_t max_hosts;   /* hosts one analysis may load, lateral moves included (0: 8) */
} edr_rca_store_opts_t;

typedef struct edr_rca_store_stats {
    uint32_t hosts;  /* host windows loaded */
    uint32_t hops;   /* lateral moves followed into another host */
    uint64_t events; /* events read from the store */
    uint64_t probes; /* blocks decoded to find the other side of an accepted flow */
    uint64_t probes_cut; /* candidate blocks left unexamined (more than 32 in one probe);
                          * the result is then marked truncated */
} edr_rca_store_stats_t;

/* analyzer.rca_lookback / rca_forward defaults, 8 hosts. */
void edr_rca_store_opts_default(edr_rca_store_opts_t *o);

/*
 * Root cause of a process read from a store: loads into g (which may
 * already hold data: windows loaded earlier are not read twice) the window
 * of the process's host around at_ns (0: its start) and the process's
 * ancestry records, runs edr_rca_run(), and while the entry is a connection
 * accepted from an address that another host of the store connected from
 * (same four-tuple, within the clock skew), loads that host's window around
 * the connecting process and analyses again, so that the chain continues
 * across the lateral move. r->start is the process's node in g. Returns
 * NULL and sets *err: EDR_ENOENT (no such process), EDR_ESTORE, EDR_ENOMEM,
 * EDR_EUNSUPPORTED (built without the store). st may be NULL.
 */
edr_rca_t *edr_rca_run_store(edr_graph_t *g, struct edr_store *s, const uint8_t entity[16], uint64_t at_ns,
                             const edr_rca_opts_t *ro, const edr_rca_store_opts_t *so,
                             edr_rca_store_stats_t *st, int *err);

/* 1 when node n is in the chain of r. */
int edr_rca_in_chain(const edr_rca_t *r, uint32_t n);

/* -------------------------------------------------------------- exports */

typedef enum {
    EDR_EXPORT_DOT = 0,
    EDR_EXPORT_GRAPHML,
    EDR_EXPORT_CYJS, /* Cytoscape.js elements JSON ("json") */
    EDR_EXPORT_STIX, /* STIX 2.1 bundle */
    EDR_EXPORT_SVG,  /* rendered with libgvc (dot layout) */
    EDR_EXPORT_HTML, /* self-contained incident card */
} edr_export_format_t;

/* "dot", "graphml", "json", "stix", "svg", "html": 0 or EDR_EINVAL. */
int edr_export_format_parse(const char *s, edr_export_format_t *out);

typedef struct edr_export_opts {
    const char *title;           /* incident title; NULL: from the root cause */
    const char *const *actions;  /* actions taken (HTML card), may be NULL */
    size_t n_actions;
    uint64_t created_ns;         /* card time; 0: now */
} edr_export_opts_t;

/* Writes the analysed subgraph (chain, entry, impact, pruned edges) of r in
 * format f to out. Every string from telemetry is escaped for the format.
 * opts may be NULL. 0, EDR_EIO on a write error, EDR_ENOMEM, or
 * EDR_EUNSUPPORTED when graphviz cannot render. */
int edr_rca_export(const edr_graph_t *g, const edr_rca_t *r, edr_export_format_t f,
                   const edr_export_opts_t *opts, FILE *out);

/* The result as one JSON object: {"root_cause": node+class, "chain": [...]
 * (root -> start), "impact": [...], "path": [...], "stats": {...}}. Node
 * fields: entity_id, kind, class (root only), pid, executable,
 * command_line, path, remote_ip, remote_port, time. 0 or EDR_EIO/ENOMEM. */
int edr_rca_write_json(const edr_graph_t *g, const edr_rca_t *r, FILE *out);

/* Human summary; telemetry text has control characters escaped. */
int edr_rca_write_text(const edr_graph_t *g, const edr_rca_t *r, FILE *out);

#endif
