/* Internal interfaces between the sensor's modules: batcher, state, health, producer. */
#ifndef EDR_SENSOR_INT_H
#define EDR_SENSOR_INT_H

#include "edr/arena.h"
#include "edr/config.h"
#include "edr/frame.h"
#include "edr/identity.h"
#include "edr/kafka.h"
#include "sensor.h"
#include "source.h"
#include "spool.h"

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

uint64_t edr__mono_ns(void);
uint64_t edr__utc_ns(void);

/* ---- state.c: state directory, single-instance lock, batch sequence ---- */

typedef struct edr__state edr__state_t;

/* Creates dir (0700) if needed, takes the lock (EDR_EBUSY when another sensor
 * holds it; skipped when no_lock) and reads the persisted sequence. NULL and
 * err on failure. */
edr__state_t *edr__state_open(const char *dir, int no_lock, char *err, size_t errlen);
const char *edr__state_dir(const edr__state_t *st);
void edr__state_close(edr__state_t *st);
/* Next batch seq of host: increasing per host across restarts (a restart may
 * skip values). Persists a reservation ahead of use; 0 when that fails. */
uint64_t edr__state_next_seq(edr__state_t *st, const uint8_t host[EDR_ID_LEN]);

/* ---- health.c: drop counters ---- */

#define EDR__MAX_DROPS 48

typedef struct {
    char source[48];
    char reason[32];
    uint64_t count;
} edr__drop_t;

typedef struct {
    edr__drop_t d[EDR__MAX_DROPS];
    int n;
    uint64_t total;
} edr__drops_t;

void edr__drops_add(edr__drops_t *d, const char *source, const char *reason, uint64_t n);

/* Drops counted after a run's last health event (while it drained at stop)
 * are saved in the state directory dir and added to the next run's counters,
 * so that a health event reports them. save writes what d counts beyond
 * reported (the counters of the last health event) and returns how many
 * (none: it removes the file);
 * carry adds a saved file's counts to d and returns how many; carried
 * removes the file once a health event carrying them was handed on. */
uint64_t edr__drops_save_unreported(const edr__drops_t *d, const edr__drops_t *reported,
                                    const char *dir);
uint64_t edr__drops_carry(edr__drops_t *d, const char *dir);
void edr__drops_carried(const char *dir);

/* What a health event reports besides the drops. */
typedef struct {
    const char *fidelity;
    uint64_t events_sent;
    uint64_t uptime_ns;
    uint64_t batch_depth, batch_capacity;
    uint64_t kafka_outq;
    int have_spool;
    edr_spool_stats_t spool;
    const uint8_t *self_entity; /* the sensor process, 16 bytes */
    uint32_t self_pid;
} edr__health_t;

/* Emits one SensorHealth event for the sensor's own host into em; 0 when it
 * carries every drop counter of d, -1 when it could not (out of memory). */
int edr__health_emit(edr_emit_t *em, const edr__drops_t *d, const edr__health_t *h);

/* ---- batch.c: the batcher behind edr_emit_* ---- */

/* Where finished batches go: the producer (frames) or JSON lines. */
typedef int (*edr__ship_fn)(void *ud, Edr__V1__EventBatch *b);

struct edr_emit {
    edr_arena_t arena;
    Edr__V1__Event **events; /* current batch, capacity cap */
    size_t n, cap;
    uint64_t base_time_ns;
    uint64_t first_mono;     /* when the first event of the batch came */
    size_t batch_events;     /* ship at this count */
    size_t arena_limit;      /* ship (or refuse) past this many arena bytes */
    Edr__V1__SensorInfo info;
    uint8_t host_id[EDR_ID_LEN];
    uint8_t boot_id[EDR_ID_LEN];
    char hostname[256];
    char os[128];
    char kernel[128];
    edr__state_t *state;
    edr__drops_t *drops;
    edr__ship_fn ship;
    void *ship_ud;
    uint64_t emitted;        /* source events (edr_emit_end + edr_emit_batch) */
    uint64_t limit;          /* --max-events, 0: none */
    uint64_t batches;
    uint64_t last_event_mono;  /* when emitted last changed, seen by the control timer (100 ms) */
    uint64_t last_event_count; /* emitted at that time */
    int in_health;           /* the event being built is a health event */
    edr_emit_pre_ship_fn pre_ship; /* the source's last word on the open batch */
    void *pre_ship_ud;
    void (*on_open)(void *ud);     /* a batch got its first event (arms the sensor's timer) */
    void *on_open_ud;
    /* 0, or the negative edr_err_t of a source's failure after its start (its
     * input unreadable, a file it must write not written): the run then
     * ends with it, as one whose source could not start */
    int source_rc;
};

/* Fills identity (host.id / host.name from cfg, else the machine's) and the
 * batching limits. 0 or a negative edr_err_t with err. */
int edr__emit_init(edr_emit_t *em, const edr_config_t *cfg, int source_kind, edr__state_t *st,
                   edr__drops_t *drops, edr__ship_fn ship, void *ud, char *err, size_t errlen);
void edr__emit_close(edr_emit_t *em);
/* Applies sensor.batch_events (SIGHUP): 0 when applied (an open batch now
 * full is shipped), EDR_ERANGE or EDR_ENOMEM when nothing changed. */
int edr__emit_configure(edr_emit_t *em, const edr_config_t *cfg);
/* Ships the open batch, if any. */
int edr__emit_flush(edr_emit_t *em);
/* Assigns the seq and hands b to the ship function. */
int edr__emit_ship(edr_emit_t *em, Edr__V1__EventBatch *b);

/* ---- inventory.c: the running processes, for the store's retention ---- */

/* Processes one ProcessInventory event lists at most. */
#define EDR__INVENTORY_PER_EVENT 1024

/* Emits the user-space processes of proc_root ("/proc" when NULL) with
 * their parents' entity ids, per_event (0: EDR__INVENTORY_PER_EVENT) to an
 * event, stamped now_utc_ns. Returns how many were listed, or a negative
 * edr_err_t (counted as a drop of source "inventory"). */
int edr__inventory_emit(edr_emit_t *em, const char *proc_root, uint64_t now_utc_ns,
                        size_t per_event);

/* ---- producer.c: frames to Kafka, spool when it is unreachable ---- */

typedef struct edr__producer edr__producer_t;

typedef struct {
    uint64_t frames_direct_acked;
    uint64_t frames_replay_acked;
    uint64_t frames_replayed;   /* spool frames handed to librdkafka (again after an outage:
                                 * counted again) */
    uint64_t frames_spooled;
    uint64_t outages;
    uint64_t producer_restarts; /* clients replaced after a fatal error */
    uint64_t frames_reordered;  /* spooled behind newer frames: failed after the wait for
                                 * them ended (see producer.c, HOLD); not lost */
    int spooling;        /* 1 while frames go to the spool */
    uint64_t outq;       /* frames inside librdkafka */
} edr__producer_stats_t;

/* A producer for topic over the opened spool (not owned). NULL when out of
 * memory. Then: edr__producer_conf() on the client's conf, create the client,
 * edr__producer_attach() it (owned from then on). */
edr__producer_t *edr__producer_new(const char *topic, edr_spool_t *spool, uint64_t spool_after_ns,
                                   edr__drops_t *drops, edr_frame_ctx_t *count_ctx);
void edr__producer_conf(edr__producer_t *p, rd_kafka_conf_t *conf);
void edr__producer_attach(edr__producer_t *p, rd_kafka_t *rk);
/* Makes a new client (edr__producer_conf() applied), or NULL with err
 * filled: called to replace a client in a fatal state. */
typedef rd_kafka_t *(*edr__producer_remake_fn)(void *ud, char *err, size_t errlen);
void edr__producer_set_remake(edr__producer_t *p, edr__producer_remake_fn fn, void *ud);

/* Replaces the client by a new one from the remake function, once its
 * queue is empty (delivery reports served for up to wait_ms): the threads
 * of the new client are created by the calling thread, with its
 * capabilities. A client found in a fatal state is left to the fatal-state
 * replacement (made from the same thread). 0, or -1 (the old client kept)
 * when it could not. */
int edr__producer_renew(edr__producer_t *p, int wait_ms);
/* Sends one frame keyed by key (16 bytes); spools it when Kafka is unreachable.
 * n_events: its events, what its acknowledgement counts in
 * edr__producer_events_acked, and what it counts as lost if the client goes
 * before reporting it back (other losses count its events that are not
 * sensor health reports, see producer.c). 0, or a negative edr_err_t when
 * the frame was lost (counted). */
int edr__producer_send(edr__producer_t *p, const uint8_t *key, const uint8_t *frame, size_t len,
                       uint64_t n_events);
/* Events of frames Kafka acknowledged, each frame counted once (a frame
 * counted as dropped is never counted here). A replayed frame is counted
 * once the spool's head moves over it, by the run that does: one left
 * unsettled at a stop is counted by the next run. */
uint64_t edr__producer_events_acked(const edr__producer_t *p);
/* Serves callbacks, detects outages, replays the spool. Call often. */
void edr__producer_tick(edr__producer_t *p, uint64_t now_ns);
/* 1 when nothing is in flight or held and the spool is empty. */
int edr__producer_idle(const edr__producer_t *p);
/* Gives up on in-flight frames: they go to the spool (shutdown). */
void edr__producer_spool_inflight(edr__producer_t *p);
void edr__producer_set_spool_after(edr__producer_t *p, uint64_t ns);
/* How long an outage waits for the delivery reports of what it purged
 * (3 s; tests shorten it to have reports come after it). */
void edr__producer_set_drain(edr__producer_t *p, uint64_t ns);
/* How many bytes of frames are held in memory behind direct frames not
 * reported back (32 MiB; tests lower it to reach the limit). */
void edr__producer_set_hold_max(edr__producer_t *p, size_t bytes);
void edr__producer_get_stats(const edr__producer_t *p, edr__producer_stats_t *out);
/* Spools what is in flight or held (edr__producer_spool_inflight), then
 * destroys the client: frames sent directly that it never reported back are
 * counted as lost ("kafka", "unconfirmed"). The spool stays open (the
 * caller's). Accepts NULL. */
void edr__producer_destroy(edr__producer_t *p);

/* Events in a frame (decoded with ctx), sensor health reports not counted;
 * 1 for a frame (or no frame: NULL) that does not decode, whose events are
 * lost all the same: at least one. */
uint64_t edr__frame_events(edr_frame_ctx_t *ctx, const uint8_t *frame, size_t len);

#endif
