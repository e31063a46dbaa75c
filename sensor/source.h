/* Event sources of the sensor: one small interface, one file per source
 * (src_ebpf.c, src_fallback.c, src_replay.c, src_synth.c). */
#ifndef EDR_SENSOR_SOURCE_H
#define EDR_SENSOR_SOURCE_H

#include "edr/arena.h"
#include "edr/v1/batch.pb-c.h"

#include <stdint.h>
#include <uv.h>

typedef struct edr_source edr_source_t;
typedef struct edr_emit edr_emit_t;

/*
 * Where a source puts events. Sources run on the sensor's libuv loop thread
 * (they register their fds or timers with the loop in start()), so emitting
 * is a plain function call, no locking.
 *
 *   Edr__V1__Event *e = edr_emit_begin(em, time_utc_ns);
 *   if (!e) { count a drop; return; }        (NULL: batch memory exhausted)
 *   e->entity_id = ...; e->body_case = ...;  all memory from edr_emit_arena(em)
 *   edr_emit_end(em, e);
 *
 * The event lives in the current batch's arena until the batch is shipped.
 */
Edr__V1__Event *edr_emit_begin(edr_emit_t *em, uint64_t time_utc_ns);
void edr_emit_end(edr_emit_t *em, Edr__V1__Event *e);
edr_arena_t *edr_emit_arena(edr_emit_t *em);

/* Called just before the open batch is shipped, while its events and arena
 * are intact: a source may complete fields of events it ended earlier (the
 * eBPF source fills in executable hashes computed in the background). One
 * hook per emitter; NULL removes it. */
typedef void (*edr_emit_pre_ship_fn)(void *ud);
void edr_emit_set_pre_ship(edr_emit_t *em, edr_emit_pre_ship_fn fn, void *ud);

/* Counts a loss attributed to this source ("ebpf.ringbuf.process",
 * "ringbuf_full"); reported in sensor health events. n is added. */
void edr_emit_drop(edr_emit_t *em, const char *source, const char *reason, uint64_t n);

/* Host identity the sensor runs with (entity ids are derived from it). */
const uint8_t *edr_emit_host_id(const edr_emit_t *em);
const uint8_t *edr_emit_boot_id(const edr_emit_t *em);

typedef struct edr_source_ops {
    const char *name;                 /* "ebpf", "fallback", "replay", "synthetic" */
    int source_kind;                  /* Edr__V1__SensorInfo__SourceKind */
    /* Starts collecting on loop, emitting into em. 0, or a negative edr_err_t
     * (EDR_EUNSUPPORTED when the kernel lacks what it needs, with a logged reason). */
    int (*start)(edr_source_t *src, uv_loop_t *loop, edr_emit_t *em);
    /* Stops collecting; pending events are emitted before it returns. */
    void (*stop)(edr_source_t *src);
    /* True when a finite source (replay) has emitted everything. */
    int (*done)(edr_source_t *src);
    void (*destroy)(edr_source_t *src);
} edr_source_ops_t;

struct edr_source {
    const edr_source_ops_t *ops;
};

/* Additions for sources that carry other hosts' telemetry (synthetic, replay). */

/* Ships a complete batch of any host now (encoded and sent, or printed).
 * The sensor assigns b->seq (per host, increasing across restarts); the rest
 * of b, including b->sensor, is kept. b may live in the caller's memory and is
 * not referenced after the call. Returns 0, or a negative edr_err_t (the loss
 * is counted). */
int edr_emit_batch(edr_emit_t *em, Edr__V1__EventBatch *b);

/* Events emitted so far (edr_emit_end and edr_emit_batch), for sources that
 * stop after a count. */
uint64_t edr_emit_count(const edr_emit_t *em);

/* Events a finite source may still emit before the sensor's --max-events
 * limit; UINT64_MAX when there is no limit. */
uint64_t edr_emit_remaining(const edr_emit_t *em);

/* Constructors, one per source file. Each returns NULL and fills err when the
 * source cannot be made (bad argument, out of memory); kernel support is
 * checked in start(). cfg is read during the call only. */
struct edr_config;
edr_source_t *edr_source_synth_new(const struct edr_config *cfg, char *err, size_t errlen);
edr_source_t *edr_source_replay_new(const struct edr_config *cfg, const char *path, char *err,
                                    size_t errlen);
edr_source_t *edr_source_fallback_new(const struct edr_config *cfg, char *err, size_t errlen);
/* Provided by src_ebpf.c when it is built (EDR_SENSOR_HAVE_EBPF is then defined). */
edr_source_t *edr_source_ebpf_new(const struct edr_config *cfg, char *err, size_t errlen);
/* Tests: the eBPF source's program of this name fails every load, as on a
 * kernel without its hook (NULL: none). */
extern const char *edr__ebpf_test_refuse;
/* Tests: the eBPF program of this C name fails to attach (its descriptor
 * then names another file), after every program loaded. */
extern const char *edr__ebpf_test_refuse_attach;
extern unsigned edr__ebpf_test_loads; /* tests: loads the eBPF source attempted */
/* Tests: when non-zero, the cgroups the cgroup scan watches (EDR_CG_WATCH). */
extern unsigned edr__ebpf_test_cg_watch_max;
/* Tests: the attachments the eBPF source's interface and cgroup scans know. */
size_t edr__ebpf_test_known(const edr_source_t *src);
/* Whether the BPF LSM is active: 1, 0, -1 unknown; lsm_path is securityfs's
 * LSM list, read first (tests give a path that is not there); *via says how
 * the answer was got. */
int edr__ebpf_lsm_active(const char *lsm_path, const char **via);
/* Tests: the wakeups the eBPF source's programs asked for so far. */
uint64_t edr__ebpf_test_wakeups(const edr_source_t *src);

#endif
