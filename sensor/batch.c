/* Batcher: sources emit events into an arena-backed batch that is shipped by count or time. */
#include "edr/err.h"
#include "edr/event.h"
#include "edr/log.h"
#include "edr/version.h"
#include "sensor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define ARENA_LIMIT_MIN (16u << 20)

static void read_os(char *out, size_t len)
{
    snprintf(out, len, "Linux");
    FILE *f = fopen("/etc/os-release", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
            char *v = line + 12;
            v[strcspn(v, "\n")] = 0;
            if (*v == '"') {
                v++;
                char *q = strrchr(v, '"');
                if (q) *q = 0;
            }
            snprintf(out, len, "%.120s", v);
            break;
        }
    }
    fclose(f);
}

int edr__emit_configure(edr_emit_t *em, const edr_config_t *cfg)
{
    int64_t be = edr_config_int(cfg, "sensor.batch_events");
    if (be < 1 || be > 1000000) return EDR_ERANGE;
    if ((size_t)be > em->cap) {
        Edr__V1__Event **ne = realloc(em->events, (size_t)be * sizeof(*ne));
        if (!ne) return EDR_ENOMEM;
        em->events = ne;
        em->cap = (size_t)be;
    }
    em->batch_events = (size_t)be;
    size_t lim = (size_t)be * 4096;
    em->arena_limit = lim < ARENA_LIMIT_MIN ? ARENA_LIMIT_MIN : lim;
    /* a batch now full ships; a failure to ship is counted by the ship
     * itself, and is no fault of the configuration, which is applied */
    if (em->n >= em->batch_events) (void)edr__emit_flush(em);
    return 0;
}

int edr__emit_init(edr_emit_t *em, const edr_config_t *cfg, int source_kind, edr__state_t *st,
                   edr__drops_t *drops, edr__ship_fn ship, void *ud, char *err, size_t errlen)
{
    memset(em, 0, sizeof(*em));
    edr_arena_init(&em->arena, 1 << 20);
    em->state = st;
    em->drops = drops;
    em->ship = ship;
    em->ship_ud = ud;
    const char *hid = edr_config_str(cfg, "host.id");
    if (*hid) {
        if (edr_unhex(hid, em->host_id, EDR_ID_LEN)) {
            snprintf(err, errlen, "host.id: expected 32 hex digits, got '%s'", hid);
            return EDR_ECONFIG;
        }
    } else if (edr_host_id_local(em->host_id)) {
        snprintf(err, errlen, "cannot determine the host id: set host.id");
        return EDR_ECONFIG;
    }
    edr_boot_id_local(em->boot_id);
    struct utsname u;
    uname(&u);
    const char *hn = edr_config_str(cfg, "host.name");
    snprintf(em->hostname, sizeof(em->hostname), "%s", *hn ? hn : u.nodename);
    snprintf(em->kernel, sizeof(em->kernel), "%s", u.release);
    read_os(em->os, sizeof(em->os));
    edr__v1__sensor_info__init(&em->info);
    em->info.host_id.data = em->host_id;
    em->info.host_id.len = EDR_ID_LEN;
    em->info.hostname = em->hostname;
    em->info.boot_id.data = em->boot_id;
    em->info.boot_id.len = EDR_ID_LEN;
    em->info.os = em->os;
    em->info.kernel = em->kernel;
    em->info.sensor_version = EDR_VERSION_STRING;
    em->info.source = (Edr__V1__SensorInfo__SourceKind)source_kind;
    int rc = edr__emit_configure(em, cfg);
    if (rc) {
        snprintf(err, errlen, "sensor.batch_events: must be 1..1000000");
        return EDR_ECONFIG;
    }
    return 0;
}

void edr__emit_close(edr_emit_t *em)
{
    edr_arena_close(&em->arena);
    free(em->events);
    em->events = NULL;
}

Edr__V1__Event *edr_emit_begin(edr_emit_t *em, uint64_t time_utc_ns)
{
    /* never flushes here: the source may already hold arena memory for this event */
    if (em->n >= em->cap) {
        edr__drops_add(em->drops, "queue", "full", 1);
        return NULL;
    }
    Edr__V1__Event *e = edr_arena_alloc(&em->arena, sizeof(*e));
    if (!e) {
        edr__drops_add(em->drops, "queue", "nomem", 1);
        return NULL;
    }
    edr__v1__event__init(e);
    if (em->n == 0) {
        em->base_time_ns = time_utc_ns;
        em->first_mono = edr__mono_ns();
        if (em->on_open) em->on_open(em->on_open_ud);
    }
    e->time_offset_ns = (int64_t)(time_utc_ns - em->base_time_ns);
    return e;
}

void edr_emit_end(edr_emit_t *em, Edr__V1__Event *e)
{
    em->events[em->n++] = e;
    /* last_event_mono follows emitted from the sensor's control timer: no
     * clock read per event */
    em->emitted += edr_event_from_source(e);
    if (em->n >= em->batch_events || em->arena.used_total > em->arena_limit) edr__emit_flush(em);
}

edr_arena_t *edr_emit_arena(edr_emit_t *em)
{
    return &em->arena;
}

void edr_emit_drop(edr_emit_t *em, const char *source, const char *reason, uint64_t n)
{
    edr__drops_add(em->drops, source, reason, n);
}

const uint8_t *edr_emit_host_id(const edr_emit_t *em)
{
    return em->host_id;
}

const uint8_t *edr_emit_boot_id(const edr_emit_t *em)
{
    return em->boot_id;
}

uint64_t edr_emit_count(const edr_emit_t *em)
{
    return em->emitted;
}

int edr__emit_ship(edr_emit_t *em, Edr__V1__EventBatch *b)
{
    const uint8_t *host =
        b->sensor && b->sensor->host_id.len == EDR_ID_LEN ? b->sensor->host_id.data : em->host_id;
    uint64_t seq = edr__state_next_seq(em->state, host);
    if (!seq) {
        edr__drops_add(em->drops, "state", "seq_persist", edr_batch_source_events(b));
        return EDR_EIO;
    }
    b->seq = seq;
    b->schema_version = EDR_BATCH_SCHEMA_VERSION;
    em->batches++;
    return em->ship(em->ship_ud, b);
}

void edr_emit_set_pre_ship(edr_emit_t *em, edr_emit_pre_ship_fn fn, void *ud)
{
    em->pre_ship = fn;
    em->pre_ship_ud = ud;
}

int edr__emit_flush(edr_emit_t *em)
{
    if (em->n == 0) return 0;
    if (em->pre_ship) em->pre_ship(em->pre_ship_ud);
    Edr__V1__EventBatch b;
    edr__v1__event_batch__init(&b);
    b.sensor = &em->info;
    b.base_time_ns = em->base_time_ns;
    b.events = em->events;
    b.n_events = em->n;
    int rc = edr__emit_ship(em, &b);
    em->n = 0;
    edr_arena_reset(&em->arena);
    return rc;
}

int edr_emit_batch(edr_emit_t *em, Edr__V1__EventBatch *b)
{
    em->emitted += edr_batch_source_events(b);
    em->last_event_mono = edr__mono_ns();
    return edr__emit_ship(em, b);
}

uint64_t edr_emit_remaining(const edr_emit_t *em)
{
    if (!em->limit) return UINT64_MAX;
    return em->emitted >= em->limit ? 0 : em->limit - em->emitted;
}
