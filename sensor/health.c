/* Sensor health: drop counters from every stage and the periodic SensorHealth event. */
#include "sensor_int.h"

#include "edr/event.h"
#include "edr/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void edr__drops_add(edr__drops_t *d, const char *source, const char *reason, uint64_t n)
{
    if (!n)
        return;
    /* ("sha256", "late") counts events that shipped without their exe hash,
     * ("ebpf.io_uring", "unconfirmed") io_uring operations reported without
     * their completion: reported with the drops, but no event was lost */
    if (strcmp(source, "sha256") != 0 &&
        !(strcmp(source, "ebpf.io_uring") == 0 && strcmp(reason, "unconfirmed") == 0))
        d->total += n;
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->d[i].source, source) == 0 && strcmp(d->d[i].reason, reason) == 0) {
            d->d[i].count += n;
            return;
        }
    }
    /* the table is small: past its end everything lands in one catch-all row */
    if (d->n < EDR__MAX_DROPS - 1) {
        edr__drop_t *x = &d->d[d->n++];
        snprintf(x->source, sizeof(x->source), "%s", source);
        snprintf(x->reason, sizeof(x->reason), "%s", reason);
        x->count = n;
        return;
    }
    edr__drop_t *x = &d->d[EDR__MAX_DROPS - 1];
    if (d->n == EDR__MAX_DROPS - 1) {
        d->n++;
        snprintf(x->source, sizeof(x->source), "other");
        snprintf(x->reason, sizeof(x->reason), "other");
        x->count = 0;
    }
    x->count += n;
}

/* Source events of the frame (edr_event_from_source: not the sensor's own
 * health and inventory, which the next ones repeat); 1 when it cannot be
 * read. */
uint64_t edr__frame_events(edr_frame_ctx_t *ctx, const uint8_t *frame, size_t len)
{
    Edr__V1__EventBatch *b;
    if (!ctx || !frame || edr_frame_decode(ctx, frame, len, &b) != 0)
        return 1;
    return edr_batch_source_events(b);
}

static Edr__V1__SensorHealth__Queue *queue(edr_arena_t *a, const char *name, uint64_t depth,
                                           uint64_t cap)
{
    Edr__V1__SensorHealth__Queue *q = edr_arena_alloc(a, sizeof(*q));
    if (!q)
        return NULL;
    edr__v1__sensor_health__queue__init(q);
    q->name = (char *)name;
    q->depth = depth;
    q->capacity = cap;
    return q;
}

int edr__health_emit(edr_emit_t *em, const edr__drops_t *d, const edr__health_t *h)
{
    Edr__V1__Event *e = edr_emit_begin(em, edr__utc_ns());
    if (!e)
        return -1;
    edr_arena_t *a = edr_emit_arena(em);
    Edr__V1__SensorHealth *sh = edr_arena_alloc(a, sizeof(*sh));
    Edr__V1__SensorHealth__Drop **drops = edr_arena_alloc(a, sizeof(*drops) * (size_t)(d->n + 1));
    Edr__V1__SensorHealth__Queue **qs = edr_arena_alloc(a, sizeof(*qs) * 3);
    if (!sh || !drops || !qs) {
        /* the event is begun: ship it empty rather than leave a hole */
        e->body_case = EDR__V1__EVENT__BODY__NOT_SET;
        edr_emit_end(em, e);
        return -1;
    }
    edr__v1__sensor_health__init(sh);
    sh->fidelity = (char *)h->fidelity;
    for (int i = 0; i < d->n; i++) {
        Edr__V1__SensorHealth__Drop *x = edr_arena_alloc(a, sizeof(*x));
        if (!x)
            break;
        edr__v1__sensor_health__drop__init(x);
        x->source = edr_arena_strdup(a, d->d[i].source);
        x->reason = edr_arena_strdup(a, d->d[i].reason);
        x->count = d->d[i].count;
        drops[sh->n_drops++] = x;
    }
    sh->drops = drops;
    sh->queues = qs;
    if ((qs[sh->n_queues] = queue(a, "batch", h->batch_depth, h->batch_capacity)))
        sh->n_queues++;
    if ((qs[sh->n_queues] = queue(a, "kafka", h->kafka_outq, 0)))
        sh->n_queues++;
    if (h->have_spool) {
        sh->spool_bytes = h->spool.bytes;
        sh->spool_frames = h->spool.frames;
    }
    sh->events_sent = h->events_sent;
    sh->uptime_ns = h->uptime_ns;
    if (h->self_entity) {
        e->entity_id.data = edr_arena_dup(a, h->self_entity, EDR_ID_LEN);
        e->entity_id.len = e->entity_id.data ? EDR_ID_LEN : 0;
    }
    e->pid = e->tid = h->self_pid;
    e->body_case = EDR__V1__EVENT__BODY_SENSOR_HEALTH;
    e->sensor_health = sh;
    edr_emit_end(em, e);
    return sh->n_drops == (size_t)d->n ? 0 : -1;
}

/* ---- drops no health event reported ---- */

static void unreported_path(const char *dir, char *p, size_t n)
{
    snprintf(p, n, "%s/unreported-drops", dir);
}

static uint64_t reported_count(const edr__drops_t *r, const edr__drop_t *x)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->d[i].source, x->source) && !strcmp(r->d[i].reason, x->reason))
            return r->d[i].count;
    return 0;
}

uint64_t edr__drops_save_unreported(const edr__drops_t *d, const edr__drops_t *reported,
                                    const char *dir)
{
    char p[4096], tmp[4200];
    unreported_path(dir, p, sizeof(p));
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *f = NULL;
    uint64_t total = 0;
    for (int i = 0; i < d->n; i++) {
        uint64_t was = reported_count(reported, &d->d[i]);
        if (d->d[i].count <= was)
            continue;
        if (!f) {
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0 || !(f = fdopen(fd, "w"))) {
                if (fd >= 0)
                    close(fd);
                edr_log_error("%s: %s; drops counted after the last health event are only in "
                              "this log",
                              tmp, strerror(errno));
                return 0;
            }
        }
        fprintf(f, "%s %s %" PRIu64 "\n", d->d[i].source, d->d[i].reason, d->d[i].count - was);
        total += d->d[i].count - was;
    }
    if (!f) {
        /* nothing unreported: a file left by an earlier run (its drops since
         * reported) must not be carried again */
        edr__drops_carried(dir);
        return 0;
    }
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, p) != 0) {
        edr_log_error("%s: %s; drops counted after the last health event are only in this log", p,
                      strerror(errno));
        unlink(tmp);
        return 0;
    }
    edr_log_warn("%" PRIu64 " drops were counted after the last health event: saved in %s, the "
                 "next run's health events report them",
                 total, p);
    return total;
}

uint64_t edr__drops_carry(edr__drops_t *d, const char *dir)
{
    char p[4096], line[256];
    unreported_path(dir, p, sizeof(p));
    /* not through a symbolic link (the state directory is checked, its files are not) */
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        else if (errno != ENOENT)
            edr_log_error("%s: %s; drops of an earlier run not carried", p, strerror(errno));
        return 0;
    }
    uint64_t total = 0;
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        char src[48], why[32];
        uint64_t n;
        lineno++;
        if (sscanf(line, "%47s %31s %" SCNu64, src, why, &n) != 3) {
            edr_log_warn("%s:%d: not a drop count; skipped", p, lineno);
            continue;
        }
        edr__drops_add(d, src, why, n);
        total += n;
    }
    fclose(f);
    if (total)
        edr_log_warn("%" PRIu64 " drops of an earlier run, counted after its last health event, "
                     "are added to this run's counters",
                     total);
    return total;
}

void edr__drops_carried(const char *dir)
{
    char p[4096];
    unreported_path(dir, p, sizeof(p));
    if (unlink(p) != 0 && errno != ENOENT)
        edr_log_warn("%s: cannot remove: %s (its drops will be reported again)", p,
                     strerror(errno));
}
