/* Streaming analysis state: one provenance graph per host over a bounded time window, fed batch by batch, with root-cause analysis on demand. */
#ifndef EDR_STREAM_H
#define EDR_STREAM_H

#include "edr/graph.h"

#include <stddef.h>
#include <stdint.h>

typedef struct edr_stream edr_stream_t;

typedef struct edr_stream_opts {
    uint64_t window_ns;  /* telemetry kept per host, by event time (0: 1 h) */
    uint32_t max_hosts;  /* hosts one analysis may join across lateral moves (0: 8) */
    uint32_t max_raw_len; /* frame decode bound (0: frame default) */
    const char *dict_dir; /* zstd dictionaries frames may need (frame.dict_dir); NULL: none */
    uint64_t max_clock_ahead_ns; /* a frame with an event later than the wall clock plus this
                                  * is refused (0: 1 d, as collector.max_clock_ahead): one
                                  * far-future time would slide a host's window past all of
                                  * its real telemetry */
} edr_stream_opts_t;

/* NULL when out of memory or when dict_dir cannot be read (logged). opts may
 * be NULL. Caller frees with edr_stream_destroy(). */
edr_stream_t *edr_stream_new(const edr_stream_opts_t *opts);
void edr_stream_destroy(edr_stream_t *s);

/*
 * Adds one wire frame (as consumed from edr.telemetry.v1): decodes it, adds
 * its events to the graph of its host (edr_graph_add_batch, incrementally)
 * and keeps a copy of the frame while it is inside the window. When a host's
 * graph spans more than twice the window, frames older than the window are
 * dropped and the graph is rebuilt from the rest, carrying over the records
 * of processes still active (and their ancestors), so memory stays bounded
 * by the window. Returns 0, a EDR_EFRAME_* code (the frame is bad: nothing
 * changed), EDR_EINVAL (no host id), EDR_ERANGE (an event time past the
 * wall clock by more than max_clock_ahead_ns: refused) or EDR_ENOMEM.
 */
int edr_stream_add_frame(edr_stream_t *s, const void *frame, size_t len);

/*
 * Root cause of a process as of at_ns (0: its last event), from the graph of
 * its host; when the entry is a connection accepted from another host seen
 * in the stream (or the attack connected into one), the hosts' windows are
 * joined into one graph and analysed again. *g_out is the graph the result
 * refers to, valid until the next call on s. Returns NULL and sets *err
 * (EDR_ENOENT: the process is in no host's window, EDR_ENOMEM).
 */
edr_rca_t *edr_stream_rca(edr_stream_t *s, const uint8_t entity[16], uint64_t at_ns, const edr_rca_opts_t *ro,
                          const edr_graph_t **g_out, int *err);

typedef struct edr_stream_stats {
    uint64_t frames;     /* added */
    uint64_t bad_frames; /* rejected */
    uint64_t events;
    uint64_t hosts;
    uint64_t rebuilds;   /* window evictions */
    uint64_t frames_kept;
    uint64_t bytes_kept; /* frame bytes held */
    uint64_t edges;      /* edges of every host graph */
    uint64_t graph_bytes;
} edr_stream_stats_t;
void edr_stream_stats(const edr_stream_t *s, edr_stream_stats_t *st);

/* The host graph that holds entity, or NULL. */
const edr_graph_t *edr_stream_host_graph(const edr_stream_t *s, const uint8_t entity[16]);

#endif
