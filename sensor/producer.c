/* Producer: frames to Kafka keyed by host id, to the spool while Kafka is unreachable, replayed in order. */
#include "edr/err.h"
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
 * librdkafka's queue and in-flight requests, waits for their (failed)
 * delivery reports, sorts the failed direct frames by send order and appends
 * them to the spool, then enters SPOOLING.
 *
 * DIRECT:   new frames go straight to librdkafka (one partition per host key,
 *           idempotent, acks=all, so librdkafka keeps their order).
 * SPOOLING: new frames are appended to the spool. Every second (after an
 *           outage) or at once, a bounded window of frames is read from the
 *           spool's replay cursor and produced. A spool frame is acknowledged
 *           in the spool (head moves) only when Kafka acknowledged it and every
 *           frame before it. When the cursor reaches the tail the producer
 *           goes DIRECT: later frames queue in librdkafka behind the replayed
 *           ones, so per-host order holds.
 *
 * Invariants:
 *   P1  A frame is in exactly one place: librdkafka's queue, the spool, or
 *       acknowledged (or counted as a drop). Shutdown purges what is in
 *       flight into the spool.
 *   P2  Per host, frames reach Kafka in send order: failed direct frames are
 *       spooled before anything newer (the purge drains first); replays are
 *       read in spool order; DIRECT resumes only behind the last replay.
 *   P3  A purged in-flight frame may have reached Kafka anyway (its ack was
 *       lost): it is sent again. Delivery is at least once; consumers
 *       deduplicate by (host id, batch seq).
 *   P4  A frame Kafka refuses whatever the retries (larger than the broker or
 *       topic takes, an invalid record) is counted as lost ("kafka",
 *       "refused") and logged, not spooled: spooled, it would be replayed and
 *       refused again every second, and every frame behind it would wait.
 */

#define RING_CAP      1024u /* replay frames tracked in flight */
#define REPLAY_WINDOW 256u
#define DRAIN_MS      3000

typedef struct {
    edr_spool_pos_t next; /* spool position after this frame */
    uint64_t events;
    int acked;
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
    edr__drops_t *drops;
    edr_frame_ctx_t *count_ctx;

    int spooling;
    int outage;
    const char *outage_why;
    uint64_t direct_id;
    uint64_t progress_ns;
    uint64_t retry_at;

    failed_t *failed;
    size_t n_failed, cap_failed;

    slot_t ring[RING_CAP];
    uint64_t ring_base, ring_next; /* replay ids in flight: [base, next) */
    edr_spool_pos_t cursor;
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

static uint64_t events_of(uintptr_t op)
{
    return (uint64_t)(op >> 41);
}

static void push_failed(edr__producer_t *p, uint64_t id, const void *buf, size_t len)
{
    if (EDR_VEC_RESERVE(p->failed, p->cap_failed, p->n_failed + 1, 64))
        goto lost;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        goto lost;
    memcpy(copy, buf, len);
    p->failed[p->n_failed++] = (failed_t){id, copy, len};
    return;
lost:
    edr__drops_add(p->drops, "producer", "nomem", 1);
}

static void advance_ring(edr__producer_t *p)
{
    while (p->ring_base < p->ring_next && p->ring[p->ring_base % RING_CAP].acked) {
        slot_t *s = &p->ring[p->ring_base % RING_CAP];
        edr_spool_ack(p->spool, s->next, 1);
        p->events_acked += s->events;
        p->ring_base++;
    }
}

static void drop_refused(edr__producer_t *p, rd_kafka_resp_err_t e, size_t len, uint64_t events)
{
    edr_log_error("kafka refused a frame of %zu bytes (%" PRIu64 " events) for good: %s; "
                  "counted as lost",
                  len, events, rd_kafka_err2str(e));
    edr__drops_add(p->drops, "kafka", "refused", events ? events : 1);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    edr__producer_t *p = opaque;
    uintptr_t op = (uintptr_t)m->_private;
    if (!p)
        return;
    if (op & 1) {
        uint64_t id = (uint64_t)(op >> 1);
        if (id < p->ring_base || id >= p->ring_next)
            return; /* from before a reset: the frame is still in the spool */
        if (m->err && edr_kafka_refused_for_good(m->err)) {
            drop_refused(p, m->err, m->len, p->ring[id % RING_CAP].events);
            p->ring[id % RING_CAP].acked = 1; /* gone from the spool with the others */
            advance_ring(p);
            return;
        }
        if (m->err) {
            if (!p->outage)
                p->outage_why = rd_kafka_err2str(m->err);
            p->outage = 1;
            return;
        }
        p->ring[id % RING_CAP].acked = 1;
        p->st.frames_replay_acked++;
        p->progress_ns = edr__mono_ns();
        p->remake_backoff = 0; /* the client works */
        advance_ring(p);
        return;
    }
    if (m->err && edr_kafka_refused_for_good(m->err)) {
        drop_refused(p, m->err, m->len, events_of(op));
        return;
    }
    if (m->err) {
        if (!p->outage)
            p->outage_why = rd_kafka_err2str(m->err);
        p->outage = 1;
        push_failed(p, (uint64_t)((op >> 1) & ((1ull << 40) - 1)), m->payload, m->len);
        return;
    }
    p->st.frames_direct_acked++;
    p->events_acked += events_of(op);
    p->progress_ns = edr__mono_ns();
    p->remake_backoff = 0; /* the client works */
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
    if (left > 0) {
        edr_log_error("kafka producer: %d messages and requests never came back from the failed "
                      "client in %llu s; counted as lost",
                      left, (unsigned long long)(FATAL_DRAIN_NS / 1000000000ull));
        edr__drops_add(p->drops, "kafka", "fatal_client", (uint64_t)left);
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
    rd_kafka_destroy(p->rk);
    p->rk = n;
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
    p->drops = drops;
    p->count_ctx = count_ctx;
    p->cursor = edr_spool_head(spool);
    /* frames left from an earlier run go first */
    if (!edr_spool_empty(spool)) {
        p->spooling = 1;
        edr_log_info("spool: replaying frames left by an earlier run");
    }
    return p;
}

static int cmp_failed(const void *a, const void *b)
{
    const failed_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void spool_frame(edr__producer_t *p, const uint8_t *buf, size_t len)
{
    int rc = edr_spool_append(p->spool, buf, len);
    if (rc == 0)
        p->st.frames_spooled++;
    else if (rc != EDR_ERANGE) /* ERANGE was reported through the drop callback */
        edr__drops_add(p->drops, "spool", "write_error", edr__frame_events(p->count_ctx, buf, len));
}

static void flush_failed(edr__producer_t *p)
{
    if (!p->n_failed)
        return;
    qsort(p->failed, p->n_failed, sizeof(*p->failed), cmp_failed);
    for (size_t i = 0; i < p->n_failed; i++) {
        spool_frame(p, p->failed[i].buf, p->failed[i].len);
        free(p->failed[i].buf);
    }
    p->n_failed = 0;
}

static void enter_outage(edr__producer_t *p, const char *why)
{
    if (!p->spooling || p->st.outages == 0 || rd_kafka_outq_len(p->rk) > 0)
        edr_log_warn("kafka unreachable (%s): spooling frames to disk", why);
    p->st.outages++;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    uint64_t deadline = edr__mono_ns() + DRAIN_MS * 1000000ull;
    while (rd_kafka_outq_len(p->rk) > 0 && edr__mono_ns() < deadline)
        rd_kafka_poll(p->rk, 10);
    flush_failed(p);
    p->ring_base = p->ring_next; /* unacknowledged replays stay in the spool */
    p->cursor = edr_spool_head(p->spool);
    p->spooling = 1;
    p->outage = 0;
    p->retry_at = edr__mono_ns() + 1000000000ull;
}

int edr__producer_send(edr__producer_t *p, const uint8_t *key, const uint8_t *frame, size_t len,
                       uint64_t n_events)
{
    if (p->outage)
        enter_outage(p, p->outage_why ? p->outage_why : "delivery failed");
    if (p->spooling) {
        spool_frame(p, frame, len);
        return 0;
    }
    if (n_events >= (1ull << 23))
        n_events = (1ull << 23) - 1;
    uintptr_t op = (uintptr_t)((n_events << 41) | ((p->direct_id++ & ((1ull << 40) - 1)) << 1));
    if (rd_kafka_outq_len(p->rk) == 0)
        p->progress_ns = edr__mono_ns();
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(key, EDR_ID_LEN),
        RD_KAFKA_V_VALUE((void *)frame, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)op), RD_KAFKA_V_END);
    if (e && edr_kafka_refused_for_good(e)) { /* larger than message.max.bytes */
        drop_refused(p, e, len, n_events);
        return 0;
    }
    if (e) {
        enter_outage(p, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? "producer queue full"
                                                           : rd_kafka_err2str(e));
        spool_frame(p, frame, len);
    }
    return 0;
}

/* Reads the key (sensor host id) and event count of a spooled frame. */
static int frame_key(edr__producer_t *p, const uint8_t *frame, size_t len, uint8_t key[EDR_ID_LEN],
                     uint64_t *events)
{
    Edr__V1__EventBatch *b;
    if (edr_frame_decode(p->count_ctx, frame, len, &b) != 0 || !b->sensor ||
        b->sensor->host_id.len != EDR_ID_LEN)
        return EDR_EPARSE;
    memcpy(key, b->sensor->host_id.data, EDR_ID_LEN);
    *events = b->n_events;
    return 0;
}

static void replay_fill(edr__producer_t *p, uint64_t now)
{
    while (p->ring_next - p->ring_base < REPLAY_WINDOW) {
        const uint8_t *fr;
        size_t fl;
        edr_spool_pos_t next;
        int r = edr_spool_read(p->spool, &p->cursor, &fr, &fl, &next);
        if (r == 0) {
            if (p->spooling) {
                p->spooling = 0;
                /* read to its end, not yet all acknowledged: what is in flight
                 * stays in the spool until Kafka acknowledges it */
                edr_log_info("kafka reachable: every spooled frame sent again (%" PRIu64
                             " awaiting acknowledgement, kept in the spool until then); "
                             "sending directly again",
                             (uint64_t)(p->ring_next - p->ring_base));
            }
            return;
        }
        if (r < 0) {
            p->retry_at = now + 1000000000ull;
            return;
        }
        uint8_t key[EDR_ID_LEN];
        uint64_t events = 0;
        slot_t *s = &p->ring[p->ring_next % RING_CAP];
        s->next = next;
        s->events = 0;
        s->acked = 0;
        if (frame_key(p, fr, fl, key, &events) != 0) {
            /* undecodable (e.g. its dictionary is gone): counted, skipped */
            edr__drops_add(p->drops, "spool", "undecodable", 1);
            s->acked = 1;
            p->ring_next++;
            p->cursor = next;
            advance_ring(p);
            continue;
        }
        s->events = events;
        if (rd_kafka_outq_len(p->rk) == 0)
            p->progress_ns = now;
        uintptr_t op = (uintptr_t)((p->ring_next << 1) | 1);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(key, EDR_ID_LEN),
            RD_KAFKA_V_VALUE((void *)fr, fl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)op), RD_KAFKA_V_END);
        if (e && edr_kafka_refused_for_good(e)) {
            drop_refused(p, e, fl, events);
            s->acked = 1;
            p->ring_next++;
            p->cursor = next;
            advance_ring(p);
            continue;
        }
        if (e) {
            p->retry_at = now + (e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? 10000000ull : 1000000000ull);
            return;
        }
        p->ring_next++;
        p->cursor = next;
    }
}

void edr__producer_tick(edr__producer_t *p, uint64_t now)
{
    rd_kafka_poll(p->rk, 0);
    if (p->outage)
        enter_outage(p, p->outage_why ? p->outage_why : "delivery failed");
    else if (rd_kafka_outq_len(p->rk) > 0 && now > p->progress_ns &&
             now - p->progress_ns > p->spool_after_ns)
        enter_outage(p, "no acknowledgement");
    if (p->n_failed)
        flush_failed(p);
    if (p->fatal)
        replace_fatal(p, now);
    if (p->spooling && !p->fatal && now >= p->retry_at)
        replay_fill(p, now);
    edr_spool_tick(p->spool, now);
}

int edr__producer_idle(const edr__producer_t *p)
{
    return !p->spooling && rd_kafka_outq_len(p->rk) == 0 && p->n_failed == 0 &&
           p->ring_base == p->ring_next;
}

void edr__producer_spool_inflight(edr__producer_t *p)
{
    rd_kafka_poll(p->rk, 0);
    if (rd_kafka_outq_len(p->rk) > 0 || p->n_failed)
        enter_outage(p, "shutting down");
    edr_spool_sync(p->spool);
}

void edr__producer_set_spool_after(edr__producer_t *p, uint64_t ns)
{
    p->spool_after_ns = ns;
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
        rd_kafka_destroy(p->rk);
    }
    for (size_t i = 0; i < p->n_failed; i++)
        free(p->failed[i].buf);
    free(p->failed);
    free(p->topic);
    free(p);
}
