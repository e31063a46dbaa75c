/* Producer: frames to Kafka keyed by host id, to the spool while Kafka is unreachable, replayed in order. */
#include "edr/err.h"
#include "edr/event.h"
#include "edr/log.h"
#include "edr/vec.h"
#include "selfsock.h"
#include "sensor_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * Delivery state machine.
 *
 *   DIRECT --(outage)--> SPOOLING --(replay cursor reached the tail)--> DIRECT
 *
 * An outage is any of: a delivery report with an error, a producer queue that
 * is full, librdkafka's "all brokers down", or frames in flight with no
 * acknowledgement for sensor.spool_after. On an outage the producer purges
 * librdkafka's queue and in-flight requests, waits (DRAIN_MS) for their
 * (failed) delivery reports, sorts the failed direct frames by send order and
 * appends them to the spool, then enters SPOOLING.
 *
 * DIRECT:   new frames go straight to librdkafka (one partition per host key,
 *           idempotent, acks=all, so librdkafka keeps their order).
 * SPOOLING: new frames are appended to the spool. Every second (after an
 *           outage) or at once, frames are read from the spool's replay
 *           cursor into a window of REPLAY_WINDOW slots and produced. A slot
 *           is settled once Kafka acknowledged its frame, or its frame is
 *           lost (refused, undecodable, or lost to the bound); the spool's
 *           head moves over settled slots in order, and the frame is counted
 *           then (P7). After an outage the unsettled slots of the window are
 *           sent again, in order, before anything new is read. When the
 *           cursor reaches the tail the producer goes DIRECT: later frames
 *           queue in librdkafka behind the replayed ones, so per-host order
 *           holds.
 * HOLD:     when the drain ends with direct frames not reported back yet
 *           (their reports come later), frames to be spooled are held in
 *           memory instead, with the failed ones, until every direct frame
 *           has been reported: then all go to the spool in send order. Past
 *           HOLD_MAX_BYTES, or at shutdown, the held frames are spooled; a
 *           direct frame that fails after that is spooled behind newer frames
 *           (out of per-host order: logged and counted in frames_reordered,
 *           not lost; the store takes a late batch like any other).
 *
 * Every frame given to the producer gets an id in send order (direct_id);
 * a direct frame's id and event count travel in its opaque, a replayed
 * frame's slot and round (outages so far) in its.
 *
 * Invariants:
 *   P1  A frame is in exactly one place: librdkafka's queue, the spool, held
 *       in memory, or acknowledged (or counted as a drop). Shutdown purges
 *       what is in flight into the spool. Every event is counted at most once:
 *       acknowledged (events_acked) or dropped, never both.
 *   P2  Per host, frames reach Kafka in send order: failed direct frames are
 *       spooled before anything newer (the purge drains first, and a report
 *       later than the drain holds newer frames back); replays are read in
 *       spool order and re-sent in that order; DIRECT resumes only behind the
 *       last replay, with nothing held.
 *   P3  A purged in-flight frame may have reached Kafka anyway (its ack was
 *       lost): it is sent again. Delivery is at least once; consumers
 *       deduplicate by (host id, batch seq).
 *   P4  A frame Kafka refuses whatever the retries (larger than the broker or
 *       topic takes, an invalid record) is counted as lost ("kafka",
 *       "refused") and logged, not spooled: spooled, it would be replayed and
 *       refused again every second, and every frame behind it would wait. A
 *       replayed one is counted once: its slot stays settled across outages,
 *       and across runs by P7.
 *   P5  The spool knows the replay cursor (edr_spool_set_cursor): frames the
 *       bound drops before it are not the spool's to count. Their slots are
 *       marked evicted (a slot position at or before the head that was never
 *       acknowledged there); one acknowledged by Kafka counts as delivered,
 *       one whose copies all failed as ("spool", "overflow"): it can no
 *       longer be sent again.
 *   P6  Reports from before the last outage (late, or of purged copies) do
 *       not start another outage while spooling: they are not news.
 *   P7  A replayed frame is counted (events_acked, or its drop) when the
 *       spool's head moves over its slot or the bound evicts it, not when its
 *       report comes: until then the spool keeps it, and a stop or a crash
 *       before a frame ahead of it is settled has the next run send it again
 *       and judge it again. So it is counted once across runs: a slot left
 *       unsettled at the stop is counted by the run that passes it. When the
 *       head moves over a lost frame, it is written at once (edr_spool_sync),
 *       before any health event can report the loss: a kill -9 after that
 *       does not replay the frame (an acknowledged frame may be sent and
 *       counted again after a kill -9: I5 of spool.c, at least once).
 *
 * Units (one for every loss): a lost frame counts its source events
 * (edr_event_from_source: not the sensor's own health reports and process
 * inventories, which the next ones repeat), an undecodable frame 1
 * (edr__frame_events, as the spool's own drops count). The one exception is
 * a direct frame lost unreported ("kafka", "unconfirmed" or "fatal_client"):
 * its bytes are gone with the client, so it counts the n_events its caller
 * gave (its source events), at least 1. events_acked counts source events
 * too, so health's events_sent and its drops count the same things.
 */

#define REPLAY_WINDOW  256u /* spool frames read and not settled yet */
#define DRAIN_MS       3000
#define HOLD_MAX_BYTES (32u << 20) /* default; edr__producer_set_hold_max */
#define ID_MASK        ((1ull << 40) - 1)
#define ROUND_MASK     ((1ull << 23) - 1)

/* PENDING: not settled; DELIVERED: acknowledged; LOST: refused, undecodable
 * or lost to the bound. Either of the last two is counted once, by
 * slot_count (P7). */
enum { SLOT_PENDING, SLOT_DELIVERED, SLOT_LOST };

typedef struct {
    edr_spool_pos_t pos;  /* where the frame is in the spool */
    edr_spool_pos_t next; /* spool position after it */
    uint64_t events;      /* events in it (acknowledged: added to events_acked) */
    uint64_t lost_events; /* what a loss of it counts (health reports not) */
    const char *lost_source, *lost_reason; /* LOST: its drop; NULL: the spool counted it */
    uint32_t inflight;    /* copies handed to librdkafka, not reported back yet */
    uint8_t state;        /* SLOT_* */
    uint8_t counted;      /* its acknowledgement or loss is counted (P7) */
    uint8_t evicted;      /* the spool's bound dropped it: it cannot be sent again */
    uint8_t key[EDR_ID_LEN];
} slot_t;

typedef struct {
    uint64_t id;
    uint8_t *buf;
    size_t len;
} failed_t;

struct edr__producer {
    rd_kafka_t *rk;
    char *topic;
    edr_spool_t *spool;
    uint64_t spool_after_ns;
    uint64_t drain_ns;
    edr__drops_t *drops;
    edr_frame_ctx_t *count_ctx;

    int spooling;
    int outage;
    const char *outage_why;
    uint64_t direct_id;      /* id of the next frame (send order), from 1 */
    uint64_t round;          /* outages so far */
    uint64_t round_first_id; /* first frame id since the last outage */
    uint64_t direct_out;     /* direct frames in librdkafka, not reported back */
    uint64_t direct_out_events;
    uint64_t spool_last_id;  /* id of the newest frame appended to the spool */
    uint64_t progress_ns;
    uint64_t retry_at;

    failed_t *failed; /* failed direct frames, and held ones (hold) */
    size_t n_failed, cap_failed;
    size_t failed_bytes;
    size_t hold_max; /* bytes held at most (HOLD) */
    int hold;

    slot_t ring[REPLAY_WINDOW];
    uint64_t ring_base, ring_next; /* replay slots not settled: [base, next) */
    uint64_t resend;               /* next slot to send again after an outage */
    edr_spool_pos_t cursor;        /* where the next frame is read from the spool */
    edr__producer_stats_t st;
    uint64_t events_acked;

    int fatal;              /* the client is in a fatal state: replaced by remake() */
    uint64_t fatal_since;   /* when it was seen (waiting for its queue to empty) */
    uint64_t remake_at;     /* next replacement allowed */
    uint64_t remake_backoff; /* after a replacement: 5 s, doubling to 60 s while the new
                                client goes fatal before any acknowledgement */
    edr__producer_remake_fn remake;
    void *remake_ud;
};

#define SLOT(p, id) (&(p)->ring[(id) % REPLAY_WINDOW])

static uint64_t events_of(uintptr_t op)
{
    return (uint64_t)(op >> 41);
}

/* What a direct frame of n events counts if it is lost unreported. */
static uint64_t lost_of(uint64_t n)
{
    return n ? n : 1;
}

static int push_failed(edr__producer_t *p, uint64_t id, const void *buf, size_t len)
{
    if (EDR_VEC_RESERVE(p->failed, p->cap_failed, p->n_failed + 1, 64))
        return EDR_ENOMEM;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return EDR_ENOMEM;
    memcpy(copy, buf, len);
    p->failed[p->n_failed++] = (failed_t){id, copy, len};
    p->failed_bytes += len;
    return 0;
}

static void note_outage(edr__producer_t *p, const char *why)
{
    if (!p->outage)
        p->outage_why = why;
    p->outage = 1;
}

static void slot_lose(slot_t *s, const char *source, const char *reason)
{
    s->state = SLOT_LOST;
    s->lost_source = source;
    s->lost_reason = reason;
}

/* Counts what became of a settled slot's frame, once (P7). 1 when that was
 * a loss. */
static int slot_count(edr__producer_t *p, slot_t *s)
{
    if (s->counted || s->state == SLOT_PENDING)
        return 0;
    s->counted = 1;
    if (s->state == SLOT_DELIVERED) {
        p->events_acked += s->events;
        p->st.frames_replay_acked++;
        return 0;
    }
    if (!s->lost_source)
        return 0;
    edr__drops_add(p->drops, s->lost_source, s->lost_reason, s->lost_events);
    return 1;
}

/* Settles the replay window: marks the slots whose frames the spool's bound
 * dropped (P5) and counts them, those whose copies all failed as lost; then
 * takes settled slots off the front, counting them and moving the spool's
 * head over the ones it still has (P7). */
static void ring_settle(edr__producer_t *p)
{
    edr_spool_pos_t head = edr_spool_head(p->spool);
    for (uint64_t id = p->ring_base; id < p->ring_next; id++) {
        slot_t *s = SLOT(p, id);
        if (!s->evicted) {
            if (edr_spool_pos_cmp(s->next, head) > 0)
                break;
            s->evicted = 1;
        }
        /* its delivery failed, and the spool no longer has it */
        if (s->state == SLOT_PENDING && s->inflight == 0)
            slot_lose(s, "spool", "overflow");
        slot_count(p, s); /* no run can send it again: counted now */
    }
    int lost = 0;
    while (p->ring_base < p->ring_next) {
        slot_t *s = SLOT(p, p->ring_base);
        if (s->state == SLOT_PENDING)
            break;
        lost |= slot_count(p, s);
        if (!s->evicted)
            edr_spool_ack(p->spool, s->next, 1);
        p->ring_base++;
    }
    if (lost)
        edr_spool_sync(p->spool); /* the head, before a health event reports the loss (P7) */
    if (p->resend < p->ring_base)
        p->resend = p->ring_base;
}

static void log_refused(rd_kafka_resp_err_t e, size_t len, uint64_t events)
{
    edr_log_error("kafka refused a frame of %zu bytes (%" PRIu64 " events) for good: %s; "
                  "counted as lost",
                  len, events, rd_kafka_err2str(e));
}

/* A direct frame Kafka refused for good: counted now (it is nowhere else). */
static void drop_refused(edr__producer_t *p, rd_kafka_resp_err_t e, const void *frame, size_t len,
                         uint64_t events)
{
    log_refused(e, len, events);
    edr__drops_add(p->drops, "kafka", "refused", edr__frame_events(p->count_ctx, frame, len));
}

/* A replayed frame Kafka refused for good: counted when its slot is passed (P7). */
static void slot_refused(slot_t *s, rd_kafka_resp_err_t e, size_t len)
{
    log_refused(e, len, s->events);
    slot_lose(s, "kafka", "refused");
}

static void replay_report(edr__producer_t *p, const rd_kafka_message_t *m, uint64_t id,
                          uint64_t round)
{
    if (id < p->ring_base || id >= p->ring_next)
        return; /* a copy of a settled frame: counted already */
    slot_t *s = SLOT(p, id);
    if (s->inflight)
        s->inflight--;
    if (!m->err) {
        if (s->state == SLOT_PENDING)
            s->state = SLOT_DELIVERED; /* counted when passed (P7) */
        p->progress_ns = edr__mono_ns();
        p->remake_backoff = 0; /* the client works */
    } else if (edr_kafka_refused_for_good(m->err)) {
        if (s->state == SLOT_PENDING)
            slot_refused(s, m->err, m->len); /* gone from the spool with the others */
    } else if (round == (p->round & ROUND_MASK)) {
        note_outage(p, rd_kafka_err2str(m->err)); /* sent again after the outage (P6) */
    }
    ring_settle(p);
}

static void direct_report(edr__producer_t *p, const rd_kafka_message_t *m, uint64_t id,
                          uint64_t events)
{
    if (p->direct_out) {
        p->direct_out--;
        p->direct_out_events -= lost_of(events);
    }
    if (!m->err) {
        p->st.frames_direct_acked++;
        p->events_acked += events;
        p->progress_ns = edr__mono_ns();
        p->remake_backoff = 0; /* the client works */
        return;
    }
    if (edr_kafka_refused_for_good(m->err)) {
        drop_refused(p, m->err, m->payload, m->len, events);
        return;
    }
    /* a frame from before the last outage is not news (P6), except while
     * sending directly: only an outage spools what is in flight behind it */
    if (id >= p->round_first_id || !p->spooling)
        note_outage(p, rd_kafka_err2str(m->err));
    if (push_failed(p, id, m->payload, m->len))
        edr__drops_add(p->drops, "producer", "nomem",
                       edr__frame_events(p->count_ctx, m->payload, m->len));
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    edr__producer_t *p = opaque;
    uintptr_t op = (uintptr_t)m->_private;
    if (!p)
        return;
    if (op & 1)
        replay_report(p, m, (uint64_t)(op >> 1) & ID_MASK, (uint64_t)(op >> 41));
    else
        direct_report(p, m, (uint64_t)(op >> 1) & ID_MASK, events_of(op));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    edr__producer_t *p = opaque;
    if (!p)
        return;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!p->outage)
            p->outage_why = "all brokers down";
        p->outage = 1;
    } else if (rd_kafka_fatal_error(rk, NULL, 0)) {
        edr_log_error("kafka producer: fatal error: %s", reason);
        p->outage = 1;
        p->outage_why = "fatal producer error";
        p->fatal = 1;
    }
}

void edr__producer_conf(edr__producer_t *p, rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, p);
    /* the sensor's own broker connections, told apart by the fallback source */
    rd_kafka_conf_set_socket_cb(conf, edr_selfsock_socket_cb);
}

void edr__producer_attach(edr__producer_t *p, rd_kafka_t *rk)
{
    p->rk = rk;
}

void edr__producer_set_remake(edr__producer_t *p, edr__producer_remake_fn fn, void *ud)
{
    p->remake = fn;
    p->remake_at = 0;
    p->remake_ud = ud;
}

int edr__producer_renew(edr__producer_t *p, int wait_ms)
{
    if (!p->remake || !p->rk)
        return -1;
    rd_kafka_flush(p->rk, wait_ms); /* serves delivery reports and errors */
    if (p->fatal)
        return 0; /* replaced by replace_fatal, from this thread too */
    if (rd_kafka_outq_len(p->rk) > 0)
        return -1;
    char err[512] = "";
    rd_kafka_t *n = p->remake(p->remake_ud, err, sizeof(err));
    if (!n) {
        edr_log_warn("kafka producer: cannot make a new client: %s", err);
        return -1;
    }
    rd_kafka_destroy(p->rk);
    p->rk = n;
    return 0;
}

#define REMAKE_MIN_NS  5000000000ull
#define REMAKE_MAX_NS  60000000000ull
#define FATAL_DRAIN_NS 30000000000ull

static int cmp_failed(const void *a, const void *b)
{
    const failed_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Appends frame id to the spool; a frame older than one already there
 * breaks per-host order: said and counted (see HOLD above). */
static void spool_frame(edr__producer_t *p, uint64_t id, const uint8_t *buf, size_t len)
{
    if (id < p->spool_last_id) {
        p->st.frames_reordered++;
        edr_log_warn("kafka: a frame sent before the outage failed after newer frames were "
                     "spooled: spooled behind them, out of per-host order (%" PRIu64 " so far)",
                     p->st.frames_reordered);
    } else {
        p->spool_last_id = id;
    }
    int rc = edr_spool_append(p->spool, buf, len);
    if (rc == 0)
        p->st.frames_spooled++;
    else if (rc != EDR_ERANGE) /* ERANGE was reported through the drop callback */
        edr__drops_add(p->drops, "spool", "write_error", edr__frame_events(p->count_ctx, buf, len));
    ring_settle(p); /* the bound may have dropped frames in flight */
}

static void flush_failed(edr__producer_t *p)
{
    if (!p->n_failed)
        return;
    qsort(p->failed, p->n_failed, sizeof(*p->failed), cmp_failed);
    /* spool_frame may not add to the list: it is walked from a copy of its length */
    size_t n = p->n_failed;
    p->n_failed = 0;
    p->failed_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        spool_frame(p, p->failed[i].id, p->failed[i].buf, p->failed[i].len);
        free(p->failed[i].buf);
    }
}

static void release_hold(edr__producer_t *p)
{
    p->hold = 0;
    flush_failed(p);
}

/* Frame id goes to the spool, or is held in memory behind direct frames not
 * reported back yet (HOLD). */
static void spool_or_hold(edr__producer_t *p, uint64_t id, const uint8_t *buf, size_t len)
{
    if (p->hold) {
        if (p->failed_bytes + len <= p->hold_max && push_failed(p, id, buf, len) == 0)
            return;
        edr_log_warn("kafka: %" PRIu64 " frames sent before the outage are still not reported "
                     "back and %zu bytes are held behind them: spooling those now (one of "
                     "them failing later is spooled behind newer frames, and counted)",
                     p->direct_out, p->failed_bytes);
        release_hold(p);
    }
    spool_frame(p, id, buf, len);
}

/* The client goes while frames it held were never reported back (it is in
 * a fatal state, or the sensor stops): direct frames are counted as lost
 * ("kafka", reason: they may have arrived, but nothing will tell, and the
 * spool does not have them); replayed ones are still in the spool, and are
 * sent again, unless the bound dropped them (then "spool", "overflow"). */
static void forget_in_flight(edr__producer_t *p, const char *reason)
{
    if (p->direct_out) {
        edr_log_error("kafka producer: %" PRIu64 " frames (%" PRIu64 " events) were never "
                      "reported back by the client; counted as lost",
                      p->direct_out, p->direct_out_events);
        edr__drops_add(p->drops, "kafka", reason, p->direct_out_events);
        p->direct_out = 0;
        p->direct_out_events = 0;
    }
    for (uint64_t id = p->ring_base; id < p->ring_next; id++)
        SLOT(p, id)->inflight = 0;
    p->resend = p->ring_base;
    ring_settle(p);
    if (p->hold)
        release_hold(p);
}

/* A client in a fatal state (an idempotent producer fenced, or refused a
 * producer id) never sends again: everything it held goes to the spool (the
 * outage handling purged it; the client is replaced only once its queue is
 * empty, so no delivery report is lost with it), and a new client, with a
 * new producer id, replays the spool. A new client that goes fatal before
 * Kafka acknowledged anything waits longer before the next (5 s doubling to
 * 60 s), so a refusal that persists (a missing IdempotentWrite permission)
 * does not churn clients. Without a remake function frames stay spooled. */
static void replace_fatal(edr__producer_t *p, uint64_t now)
{
    if (!p->remake || now < p->remake_at)
        return;
    if (!p->fatal_since)
        p->fatal_since = now;
    int left = rd_kafka_outq_len(p->rk);
    if (left > 0 && now - p->fatal_since < FATAL_DRAIN_NS) {
        rd_kafka_poll(p->rk, 0);
        return;
    }
    char err[512] = "";
    rd_kafka_t *n = p->remake(p->remake_ud, err, sizeof(err));
    if (!n) {
        edr_log_error("kafka producer: cannot replace the failed client: %s (again in 5 s; "
                      "frames are spooled meanwhile)",
                      err);
        p->remake_at = now + REMAKE_MIN_NS;
        return;
    }
    if (left > 0)
        edr_log_error("kafka producer: %d messages and requests never came back from the failed "
                      "client in %llu s",
                      left, (unsigned long long)(FATAL_DRAIN_NS / 1000000000ull));
    rd_kafka_destroy(p->rk);
    p->rk = n;
    forget_in_flight(p, "fatal_client");
    p->fatal = 0;
    p->fatal_since = 0;
    p->st.producer_restarts++;
    p->retry_at = now; /* replay at once */
    p->remake_backoff = p->remake_backoff ? p->remake_backoff * 2 : REMAKE_MIN_NS;
    if (p->remake_backoff > REMAKE_MAX_NS)
        p->remake_backoff = REMAKE_MAX_NS;
    p->remake_at = now + p->remake_backoff;
    edr_log_warn("kafka producer: the client in a fatal state was replaced by a new one (the "
                 "next replacement no sooner than %llu s); replaying the spool",
                 (unsigned long long)(p->remake_backoff / 1000000000ull));
}

edr__producer_t *edr__producer_new(const char *topic, edr_spool_t *spool, uint64_t spool_after_ns,
                                   edr__drops_t *drops, edr_frame_ctx_t *count_ctx)
{
    edr__producer_t *p = calloc(1, sizeof(*p));
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->spool = spool;
    p->spool_after_ns = spool_after_ns;
    p->drain_ns = DRAIN_MS * 1000000ull;
    p->hold_max = HOLD_MAX_BYTES;
    p->drops = drops;
    p->count_ctx = count_ctx;
    p->direct_id = 1;
    p->round_first_id = 1;
    p->cursor = edr_spool_head(spool);
    edr_spool_set_cursor(spool, p->cursor);
    /* frames left from an earlier run go first */
    if (!edr_spool_empty(spool)) {
        p->spooling = 1;
        edr_log_info("spool: replaying frames left by an earlier run");
    }
    return p;
}

static void enter_outage(edr__producer_t *p, const char *why)
{
    if (!p->spooling || p->st.outages == 0 || rd_kafka_outq_len(p->rk) > 0)
        edr_log_warn("kafka unreachable (%s): spooling frames to disk", why);
    p->st.outages++;
    p->round++; /* what was sent before reports as an older round (P6) */
    p->round_first_id = p->direct_id;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    uint64_t deadline = edr__mono_ns() + p->drain_ns;
    while (rd_kafka_outq_len(p->rk) > 0 && edr__mono_ns() < deadline)
        rd_kafka_poll(p->rk, 10);
    if (p->direct_out == 0) {
        release_hold(p);
    } else if (!p->hold) {
        p->hold = 1;
        edr_log_warn("kafka: %" PRIu64 " frames sent before the outage not reported back in "
                     "%llu ms: newer frames are held in memory until they are (per-host order)",
                     p->direct_out, (unsigned long long)(p->drain_ns / 1000000ull));
    }
    p->resend = p->ring_base; /* unsettled replays are sent again, in order */
    p->spooling = 1;
    p->outage = 0;
    p->retry_at = edr__mono_ns() + 1000000000ull;
}

int edr__producer_send(edr__producer_t *p, const uint8_t *key, const uint8_t *frame, size_t len,
                       uint64_t n_events)
{
    if (p->outage)
        enter_outage(p, p->outage_why ? p->outage_why : "delivery failed");
    uint64_t id = p->direct_id++;
    if (p->spooling) {
        spool_or_hold(p, id, frame, len);
        return 0;
    }
    if (n_events >= (1ull << 23))
        n_events = (1ull << 23) - 1;
    uintptr_t op = (uintptr_t)((n_events << 41) | ((id & ID_MASK) << 1));
    if (rd_kafka_outq_len(p->rk) == 0)
        p->progress_ns = edr__mono_ns();
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(key, EDR_ID_LEN),
        RD_KAFKA_V_VALUE((void *)frame, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)op), RD_KAFKA_V_END);
    if (e && edr_kafka_refused_for_good(e)) { /* larger than message.max.bytes */
        drop_refused(p, e, frame, len, n_events);
        return 0;
    }
    if (e) {
        enter_outage(p, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? "producer queue full"
                                                           : rd_kafka_err2str(e));
        spool_or_hold(p, id, frame, len);
        return 0;
    }
    p->direct_out++;
    p->direct_out_events += lost_of(n_events);
    return 0;
}

/* Reads the key (sensor host id) and event counts of a spooled frame:
 * events all of them, lost those a loss counts (health reports not). */
static int frame_key(edr__producer_t *p, const uint8_t *frame, size_t len, uint8_t key[EDR_ID_LEN],
                     uint64_t *events, uint64_t *lost)
{
    Edr__V1__EventBatch *b;
    if (edr_frame_decode(p->count_ctx, frame, len, &b) != 0 || !b->sensor ||
        b->sensor->host_id.len != EDR_ID_LEN)
        return EDR_EPARSE;
    memcpy(key, b->sensor->host_id.data, EDR_ID_LEN);
    *events = *lost = edr_batch_source_events(b);
    return 0;
}

/* Hands the frame of slot id to librdkafka: 0 when it took it, or refused
 * it for good (settled: counted when passed); -1 when it cannot now
 * (retry_at set). */
static int send_slot(edr__producer_t *p, uint64_t id, const uint8_t *fr, size_t fl, uint64_t now)
{
    slot_t *s = SLOT(p, id);
    if (rd_kafka_outq_len(p->rk) == 0)
        p->progress_ns = now;
    uintptr_t op = (uintptr_t)(((p->round & ROUND_MASK) << 41) | ((id & ID_MASK) << 1) | 1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(s->key, EDR_ID_LEN),
        RD_KAFKA_V_VALUE((void *)fr, fl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)op), RD_KAFKA_V_END);
    if (e && edr_kafka_refused_for_good(e)) {
        slot_refused(s, e, fl);
        return 0;
    }
    if (e) {
        p->retry_at = now + (e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? 10000000ull : 1000000000ull);
        return -1;
    }
    s->inflight++;
    p->st.frames_replayed++;
    return 0;
}

static void replay_fill(edr__producer_t *p, uint64_t now)
{
    ring_settle(p); /* evictions are marked before any slot is read again */
    /* first the unsettled slots, sent again after an outage, in order */
    for (; p->resend < p->ring_next; p->resend++) {
        slot_t *s = SLOT(p, p->resend);
        if (s->state != SLOT_PENDING || s->evicted)
            continue;
        edr_spool_pos_t pos = s->pos, next;
        const uint8_t *fr;
        size_t fl;
        int r = edr_spool_read(p->spool, &pos, &fr, &fl, &next);
        if (r < 0) {
            p->retry_at = now + 1000000000ull;
            return;
        }
        if (r == 0 || edr_spool_pos_cmp(pos, s->pos) != 0) {
            /* damaged on disk since it was read: the spool counted it as corrupt */
            slot_lose(s, NULL, NULL);
            s->evicted = 1;
            continue;
        }
        if (send_slot(p, p->resend, fr, fl, now))
            return;
    }
    ring_settle(p);
    /* then new frames from the cursor */
    while (p->ring_next - p->ring_base < REPLAY_WINDOW) {
        const uint8_t *fr;
        size_t fl;
        edr_spool_pos_t next;
        int r = edr_spool_read(p->spool, &p->cursor, &fr, &fl, &next);
        if (r == 0) {
            if (p->spooling && !p->hold && !p->n_failed) {
                p->spooling = 0;
                /* read to its end, not yet all acknowledged: what is in flight
                 * stays in the spool until Kafka acknowledges it. Handed to
                 * the client is not delivered: it queues while no broker
                 * answers, so this does not say Kafka is back (it said so) */
                edr_log_info("spool read to its end: every spooled frame handed to the Kafka "
                             "client again (%" PRIu64 " not acknowledged yet, kept in the spool "
                             "until they are); new frames go to the client directly",
                             (uint64_t)(p->ring_next - p->ring_base));
            }
            break;
        }
        if (r < 0) {
            p->retry_at = now + 1000000000ull;
            break;
        }
        slot_t *s = SLOT(p, p->ring_next);
        memset(s, 0, sizeof(*s));
        s->pos = p->cursor;
        s->next = next;
        if (frame_key(p, fr, fl, s->key, &s->events, &s->lost_events) != 0) {
            /* undecodable (e.g. its dictionary is gone): skipped, counted when passed (P7) */
            s->lost_events = 1;
            slot_lose(s, "spool", "undecodable");
        } else if (send_slot(p, p->ring_next, fr, fl, now)) {
            break; /* read again next time */
        }
        p->ring_next++;
        p->resend = p->ring_next;
        p->cursor = next;
        edr_spool_set_cursor(p->spool, p->cursor);
    }
    ring_settle(p);
}

void edr__producer_tick(edr__producer_t *p, uint64_t now)
{
    rd_kafka_poll(p->rk, 0);
    if (p->outage)
        enter_outage(p, p->outage_why ? p->outage_why : "delivery failed");
    else if (rd_kafka_outq_len(p->rk) > 0 && now > p->progress_ns &&
             now - p->progress_ns > p->spool_after_ns)
        enter_outage(p, "no acknowledgement");
    if (p->hold && p->direct_out == 0) {
        edr_log_info("kafka: every frame sent before the outage reported back: %zu frames "
                     "spooled in send order",
                     p->n_failed);
        release_hold(p);
    } else if (!p->hold && p->n_failed) {
        flush_failed(p);
    }
    if (p->fatal)
        replace_fatal(p, now);
    if (p->spooling && !p->fatal && now >= p->retry_at)
        replay_fill(p, now);
    edr_spool_tick(p->spool, now);
}

int edr__producer_idle(const edr__producer_t *p)
{
    return !p->spooling && rd_kafka_outq_len(p->rk) == 0 && p->n_failed == 0 && !p->hold &&
           p->ring_base == p->ring_next;
}

void edr__producer_spool_inflight(edr__producer_t *p)
{
    rd_kafka_poll(p->rk, 0);
    if (rd_kafka_outq_len(p->rk) > 0 || p->n_failed)
        enter_outage(p, "shutting down");
    /* no report is served after this: what is held goes to the spool now */
    if (p->hold)
        release_hold(p);
    edr_spool_sync(p->spool);
}

void edr__producer_set_spool_after(edr__producer_t *p, uint64_t ns)
{
    p->spool_after_ns = ns;
}

void edr__producer_set_drain(edr__producer_t *p, uint64_t ns)
{
    p->drain_ns = ns;
}

void edr__producer_set_hold_max(edr__producer_t *p, size_t bytes)
{
    p->hold_max = bytes;
}

void edr__producer_get_stats(const edr__producer_t *p, edr__producer_stats_t *out)
{
    *out = p->st;
    out->spooling = p->spooling;
    out->outq = (uint64_t)rd_kafka_outq_len(p->rk);
}

uint64_t edr__producer_events_acked(const edr__producer_t *p)
{
    return p->events_acked;
}

void edr__producer_destroy(edr__producer_t *p)
{
    if (!p)
        return;
    if (p->rk) {
        edr__producer_spool_inflight(p);
        rd_kafka_destroy(p->rk); /* serves no delivery report */
        p->rk = NULL;
        forget_in_flight(p, "unconfirmed");
        flush_failed(p);
        edr_spool_sync(p->spool);
    }
    for (size_t i = 0; i < p->n_failed; i++)
        free(p->failed[i].buf);
    free(p->failed);
    free(p->topic);
    free(p);
}
