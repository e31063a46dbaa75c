/* The sensor: wires the state dir, the source, the batcher and the output together on one libuv loop. */
#include "edr/err.h"
#include "edr/jsonl.h"
#include "edr/event.h"
#include "edr/log.h"
#include "caps.h"
#include "sensor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

/*
 * Life of a sensor:
 *   new:  state dir (lock, seq), output (Kafka producer + spool, or JSON lines)
 *   run:  start the source (auto: ebpf, else fallback), drop capabilities,
 *         timers: batch age, Kafka service, health, control (limits, signals)
 *   stop: source stopped (pending events emitted), batch flushed; Kafka
 *         delivery continues for sensor.shutdown_timeout; then the last
 *         health event (counting the drain's drops) in a batch of its own;
 *         whatever is still in flight then is purged into the spool (fsynced).
 *         Drops counted after that are saved in the state directory and
 *         reported by the next run.
 */

struct edr_sensor {
    edr_config_t *cfg;
    edr_sensor_opts_t opts;
    uv_loop_t loop;
    int loop_ok;
    uv_timer_t t_batch, t_kafka, t_health, t_control, t_inventory;
    /* librdkafka writes to kq_fd[1] when its main queue (delivery reports,
     * errors) gets an event: the loop serves it at once instead of polling */
    int kq_fd[2];
    uv_poll_t p_kafka;
    int kq_on;
    uv_signal_t s_term, s_int, s_hup;
    uv_async_t a_stop;
    int handles_ok;

    edr__state_t *state;
    edr__drops_t drops;
    edr_emit_t em;
    int em_ok;
    edr_frame_ctx_t *enc;
    edr_frame_ctx_t *dec; /* counts events of spooled/dropped frames, reads spool keys */
    uint32_t dict_id;

    int jsonl;
    int null_out;
    uint64_t null_bytes;
    FILE *out;
    int out_failed; /* a write to out failed: nothing more is written */
    edr_kafka_cluster_t *embedded;
    char boot[1024]; /* bootstrap servers the producer was made with */
    edr_spool_t *spool;
    edr__producer_t *prod;
    edr__drops_t reported; /* the counters the last health event carried */

    edr_source_t *src;
    const char *fidelity;
    uint64_t batch_interval_ns;
    uint64_t start_mono;
    uint8_t self_entity[EDR_ID_LEN];

    int stopping;         /* 1: stop requested; 2: draining output */
    int starting;         /* the source is starting (the loop may run inside) */
    const char *stop_pending; /* a stop asked while starting: served after */
    uint64_t drain_deadline;
    int final_health; /* the last health event was emitted (after the drain) */
    int rc;
};

/* ---- output ---- */

/* The Kafka client of the producer, from the current configuration: at
 * start, and to replace one in a fatal state. */
static rd_kafka_t *make_producer(void *ud, char *err, size_t errlen)
{
    edr_sensor_t *s = ud;
    rd_kafka_conf_t *conf = edr_kafka_conf_new(s->cfg, s->boot, err, errlen);
    if (!conf)
        return NULL;
    edr__producer_conf(s->prod, conf);
    rd_kafka_t *rk = edr_kafka_producer_new(s->cfg, s->boot, conf, err, errlen);
    if (rk && s->kq_fd[1] >= 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_get_main(rk);
        rd_kafka_queue_io_event_enable(q, s->kq_fd[1], "k", 1);
        rd_kafka_queue_destroy(q);
    }
    return rk;
}

/* --output jsonl. The first failed write (stdout closed, disk full) ends
 * the output (no memory to format an event only drops, and counts, the
 * events not formatted): nothing more is written, every event from then on counts as
 * dropped, and the control timer stops the sensor, whose run then fails. A
 * failed batch counts whole: how much of it stdio passed on before the error
 * is not known, and a loss must not go uncounted. As for frames, the
 * sensor's own health reports are not counted as events lost. */
static int ship_jsonl(void *ud, Edr__V1__EventBatch *b)
{
    edr_sensor_t *s = ud;
    int rc = s->out_failed ? EDR_EIO : 0;
    size_t i = 0;
    for (; rc == 0 && i < b->n_events; i++)
        rc = edr_jsonl_write_event(s->out, b, b->events[i]);
    if (rc == EDR_ENOMEM) {
        /* no memory to format an event: the output still works, so the
         * events not formatted are counted and the sensor goes on */
        uint64_t lost = 0;
        for (i--; i < b->n_events; i++)
            lost += edr_event_from_source(b->events[i]);
        edr_log_error("output: out of memory formatting JSON lines: %llu events dropped",
                      (unsigned long long)lost);
        edr__drops_add(&s->drops, "output", "nomem", lost);
        if (fflush(s->out) == 0)
            return rc;
        rc = EDR_EIO; /* and the output failed too: counted below (again, at worst) */
    }
    if (rc == 0 && fflush(s->out) != 0)
        rc = EDR_EIO;
    if (rc == 0)
        return 0;
    if (!s->out_failed) {
        edr_log_error("output: cannot write JSON lines: %s", strerror(errno));
        s->out_failed = 1;
    }
    edr__drops_add(&s->drops, "output", "write_error", edr_batch_source_events(b));
    return rc;
}

static int ship_kafka(void *ud, Edr__V1__EventBatch *b)
{
    edr_sensor_t *s = ud;
    const uint8_t *fr;
    size_t fl;
    int rc = edr_frame_encode(s->enc, b, s->dict_id, &fr, &fl);
    if (rc) {
        edr_log_error("cannot encode a batch of %zu events: %s", b->n_events, edr_strerror(rc));
        edr__drops_add(&s->drops, "encode", edr_err_name(rc), edr_batch_source_events(b));
        return rc;
    }
    return edr__producer_send(s->prod, b->sensor->host_id.data, fr, fl, edr_batch_source_events(b));
}

/* sensor.output=null: encode and discard (benchmarks measure everything but Kafka) */
static int ship_null(void *ud, Edr__V1__EventBatch *b)
{
    edr_sensor_t *s = ud;
    const uint8_t *fr;
    size_t fl;
    int rc = edr_frame_encode(s->enc, b, s->dict_id, &fr, &fl);
    if (rc) {
        edr__drops_add(&s->drops, "encode", edr_err_name(rc), edr_batch_source_events(b));
        return rc;
    }
    s->null_bytes += fl;
    return 0;
}

static void on_spool_drop(void *ud, const uint8_t *frame, size_t len, const char *reason)
{
    edr_sensor_t *s = ud;
    /* a frame whose events cannot be counted (corrupt, or its dictionary
     * gone) still counts as one loss; a frame of health events only as none */
    edr__drops_add(&s->drops, "spool", reason, edr__frame_events(s->dec, frame, len));
}

/* ---- helpers ---- */

static void self_entity(edr_sensor_t *s)
{
    uint64_t start_ns = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        unsigned long long st = 0;
        /* fields after the name: state(3) ... starttime(22) */
        if (p && sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                        "%*d %llu",
                        &st) == 1)
            start_ns = st * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
        fclose(f);
    }
    edr_entity_id(s->em.host_id, s->em.boot_id, (uint32_t)getpid(), start_ns, s->self_entity);
}

static int drop_caps(const char *fidelity)
{
    /* what each source still needs after it started: reading other
     * processes' /proc entries and resolving fanotify file handles */
    cap_value_t keep_fallback[] = {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_NET_ADMIN};
    cap_value_t keep_ebpf[] = {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_BPF, CAP_PERFMON};
    cap_value_t *keep = NULL;
    int n_keep = 0;
    if (strcmp(fidelity, "fallback") == 0) {
        keep = keep_fallback;
        n_keep = 3;
    } else if (strcmp(fidelity, "ebpf") == 0) {
        keep = keep_ebpf;
        n_keep = 4;
    }
    int rc = edr__caps_limit(keep, n_keep);
    if (rc) {
        edr_log_warn("cannot drop capabilities: %s", strerror(errno));
        return rc;
    }
    edr_log_info("capabilities dropped (kept %d for the %s source)", n_keep, fidelity);
    return 0;
}

static edr_source_t *make_source(edr_sensor_t *s, const char *name, char *err, size_t errlen)
{
    if (strcmp(name, "synth") == 0 || strcmp(name, "synthetic") == 0)
        return edr_source_synth_new(s->cfg, err, errlen);
    if (strcmp(name, "fallback") == 0)
        return edr_source_fallback_new(s->cfg, err, errlen);
    if (strncmp(name, "sysmon:", 7) == 0)
        return edr_source_replay_new(s->cfg, name + 7, err, errlen);
    if (strcmp(name, "ebpf") == 0) {
#ifdef EDR_SENSOR_HAVE_EBPF
        return edr_source_ebpf_new(s->cfg, err, errlen);
#else
        snprintf(err, errlen, "source ebpf: not built into this edr-sensor");
        return NULL;
#endif
    }
    snprintf(err, errlen, "sensor.source: unknown source '%s' (auto, ebpf, fallback, synth, "
                          "sysmon:FILE)",
             name);
    return NULL;
}

/* ---- lifecycle ---- */

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void emit_health(edr_sensor_t *s)
{
    edr__health_t h = {0};
    h.fidelity = s->fidelity ? s->fidelity : "none";
    h.uptime_ns = edr__mono_ns() - s->start_mono;
    h.batch_depth = s->em.n;
    h.batch_capacity = s->em.batch_events;
    h.self_entity = s->self_entity;
    h.self_pid = (uint32_t)getpid();
    if (s->prod) {
        edr__producer_stats_t ps;
        edr__producer_get_stats(s->prod, &ps);
        h.kafka_outq = ps.outq;
        h.events_sent = edr__producer_events_acked(s->prod);
    } else {
        h.events_sent = s->em.emitted;
    }
    if (s->spool) {
        h.have_spool = 1;
        edr_spool_get_stats(s->spool, &h.spool);
    }
    if (edr__health_emit(&s->em, &s->drops, &h) == 0)
        s->reported = s->drops;
}

static void on_control_timer(uv_timer_t *t);

static void begin_stop(edr_sensor_t *s, const char *why)
{
    if (s->stopping)
        return;
    if (s->starting) {
        /* the source's start may run the loop (ebpf cleans up after a failed
         * start): the source that ends up running is stopped afterwards */
        s->stop_pending = why;
        return;
    }
    s->stopping = 1;
    edr_log_info("stopping (%s): flushing", why);
    if (s->src && s->src->ops->stop)
        s->src->ops->stop(s->src);
    edr__emit_flush(&s->em);
    s->stopping = 2;
    s->drain_deadline = edr__mono_ns() + edr_config_duration_ns(s->cfg, "sensor.shutdown_timeout");
    if (uv_is_active((uv_handle_t *)&s->t_control))
        uv_timer_start(&s->t_control, on_control_timer, 20, 20);
}

static void finish(edr_sensor_t *s)
{
    if (s->prod)
        edr__producer_spool_inflight(s->prod);
    if (s->spool)
        edr_spool_sync(s->spool);
    uv_close((uv_handle_t *)&s->t_batch, close_cb);
    uv_close((uv_handle_t *)&s->t_kafka, close_cb);
    if (s->kq_on)
        uv_close((uv_handle_t *)&s->p_kafka, close_cb);
    s->kq_on = 0;
    uv_close((uv_handle_t *)&s->t_health, close_cb);
    uv_close((uv_handle_t *)&s->t_inventory, close_cb);
    uv_close((uv_handle_t *)&s->t_control, close_cb);
    uv_close((uv_handle_t *)&s->s_term, close_cb);
    uv_close((uv_handle_t *)&s->s_int, close_cb);
    uv_close((uv_handle_t *)&s->s_hup, close_cb);
    uv_close((uv_handle_t *)&s->a_stop, close_cb);
    s->handles_ok = 0;
    s->stopping = 3;
}

/* The batch timer is one-shot: armed when a batch gets its first event, for
 * sensor.batch_interval, so that an idle or a busy sensor is not woken in
 * between (a wakeup costs tens of microseconds on a VM). */
static void on_batch_timer(uv_timer_t *t);

static void arm_batch_timer(edr_sensor_t *s, uint64_t ns)
{
    uint64_t ms = (ns + 999999) / 1000000;
    uv_timer_start(&s->t_batch, on_batch_timer, ms ? ms : 1, 0);
}

static void on_batch_timer(uv_timer_t *t)
{
    edr_sensor_t *s = t->data;
    if (!s->em.n)
        return;
    uint64_t age = edr__mono_ns() - s->em.first_mono;
    if (age >= s->batch_interval_ns)
        edr__emit_flush(&s->em);
    else
        arm_batch_timer(s, s->batch_interval_ns - age);
}

static void on_batch_open(void *ud)
{
    edr_sensor_t *s = ud;
    if (!uv_is_closing((uv_handle_t *)&s->t_batch))
        arm_batch_timer(s, s->batch_interval_ns);
}

/* Kafka's acknowledgements and errors are served when they come (p_kafka);
 * the timer does what is due by time: an outage without acknowledgements,
 * retries, spool syncs. */
static void on_kafka_timer(uv_timer_t *t)
{
    edr_sensor_t *s = t->data;
    if (s->prod)
        edr__producer_tick(s->prod, edr__mono_ns());
}

static void on_kafka_event(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    edr_sensor_t *s = h->data;
    char buf[256];
    while (read(s->kq_fd[0], buf, sizeof(buf)) > 0)
        ;
    if (s->prod)
        edr__producer_tick(s->prod, edr__mono_ns());
}

static void on_health_timer(uv_timer_t *t)
{
    edr_sensor_t *s = t->data;
    if (!s->stopping)
        emit_health(s);
}

static void on_inventory_timer(uv_timer_t *t)
{
    edr_sensor_t *s = t->data;
    if (!s->stopping) edr__inventory_emit(&s->em, NULL, edr__utc_ns(), 0);
}

/* The inventory of running processes: only from sources that watch this
 * host (eBPF, fallback), at once and then every sensor.inventory_interval
 * (0: never). */
static void arm_inventory_timer(edr_sensor_t *s, uint64_t first_ms)
{
    uint64_t ns = edr_config_duration_ns(s->cfg, "sensor.inventory_interval");
    uint64_t ms = ns && ns < 1000000 ? 1 : ns / 1000000; /* under 1 ms: 1 ms, not never */
    int kind = s->em.info.source;
    if (!ms || (kind != EDR__V1__SENSOR_INFO__SOURCE_KIND__EBPF &&
                kind != EDR__V1__SENSOR_INFO__SOURCE_KIND__FALLBACK)) {
        uv_timer_stop(&s->t_inventory);
        return;
    }
    uv_timer_start(&s->t_inventory, on_inventory_timer, first_ms, ms);
}

static void on_control_timer(uv_timer_t *t)
{
    edr_sensor_t *s = t->data;
    uint64_t now = edr__mono_ns();
    if (s->em.emitted != s->em.last_event_count) { /* events since the last tick */
        s->em.last_event_count = s->em.emitted;
        s->em.last_event_mono = now;
    }
    if (!s->stopping) {
        if (s->out_failed)
            begin_stop(s, "output failed");
        else if (s->opts.max_events && s->em.emitted >= s->opts.max_events)
            begin_stop(s, "--max-events reached");
        else if (s->src && s->src->ops->done && s->src->ops->done(s->src))
            begin_stop(s, "source finished");
        else if (s->opts.exit_after_idle_ns &&
                 now - (s->em.last_event_mono ? s->em.last_event_mono : s->start_mono) >
                     s->opts.exit_after_idle_ns)
            begin_stop(s, "idle");
    }
    if (s->stopping == 2) {
        if (s->prod)
            edr__producer_tick(s->prod, now);
        int done = !s->prod || edr__producer_idle(s->prod) || now >= s->drain_deadline;
        if (done && !s->final_health) {
            /* The last health event goes out once everything else has been
             * delivered (or the drain timed out), in a batch of its own: it
             * counts what the drain dropped (e.g. a frame Kafka refused). */
            s->final_health = 1;
            emit_health(s);
            edr__emit_flush(&s->em);
            if (s->prod && now < s->drain_deadline)
                return; /* delivered like the rest, or spooled at the deadline */
        }
        if (done) {
            if (s->prod && !edr__producer_idle(s->prod))
                edr_log_warn("shutdown timeout: undelivered frames stay in the spool");
            finish(s);
        }
    }
}

/* A setting a reload changed: said when the running sensor does not take it
 * (review-1206g L1: every setting but a fixed list of ten was ignored
 * without a word, sensor.spool_sync_interval among them). */
static int reload_said(const char *key, void *ud)
{
    static const char *const applied[] = {"sensor.batch_events",
                                          "sensor.batch_interval",
                                          "sensor.health_interval",
                                          "sensor.inventory_interval",
                                          "sensor.spool_max_bytes",
                                          "sensor.spool_after",
                                          "sensor.spool_sync_interval",
                                          "sensor.shutdown_timeout", /* read at the stop */
                                          "log.level"};
    /* the sections a sensor reads (collector.* and analyzer.* are not its:
     * review-1206i L1) */
    static const char *const own[] = {"sensor.", "kafka.", "frame.", "host.", "log."};
    (void)ud;
    size_t o = 0;
    while (o < sizeof(own) / sizeof(own[0]) && strncmp(key, own[o], strlen(own[o])))
        o++;
    if (o == sizeof(own) / sizeof(own[0])) return 0;
    for (size_t i = 0; i < sizeof(applied) / sizeof(applied[0]); i++)
        if (!strcmp(key, applied[i])) return 0;
    edr_log_warn("reload: %s changed: takes effect at restart", key);
    return 0;
}

static void apply_reload(edr_sensor_t *s, edr_config_t *nc)
{
    edr_config_diff(s->cfg, nc, reload_said, NULL);
    int crc = edr__emit_configure(&s->em, nc);
    if (crc != 0) {
        /* out of range is refused when the file is read (settings.def) */
        edr_log_error("reload: %s; configuration kept",
                      crc == EDR_ERANGE ? "sensor.batch_events: must be 1..1000000"
                                        : edr_strerror(crc));
        edr_config_destroy(nc);
        return;
    }
    edr_config_destroy(s->cfg);
    s->cfg = nc;
    s->batch_interval_ns = edr_config_duration_ns(nc, "sensor.batch_interval");
    uint64_t hi = edr_config_duration_ns(nc, "sensor.health_interval") / 1000000;
    uv_timer_start(&s->t_health, on_health_timer, hi ? hi : 1, hi ? hi : 1);
    if (edr_config_duration_ns(nc, "sensor.inventory_interval") !=
        (uint64_t)uv_timer_get_repeat(&s->t_inventory) * 1000000)
        arm_inventory_timer(s, edr_config_duration_ns(nc, "sensor.inventory_interval") / 1000000);
    if (s->spool) {
        edr_spool_set_max(s->spool, edr_config_size(nc, "sensor.spool_max_bytes"));
        edr_spool_set_sync(s->spool, edr_config_duration_ns(nc, "sensor.spool_sync_interval"));
    }
    if (s->prod)
        edr__producer_set_spool_after(s->prod, edr_config_duration_ns(nc, "sensor.spool_after"));
    edr_log_info("configuration reloaded");
}

static void on_signal(uv_signal_t *h, int sig)
{
    edr_sensor_t *s = h->data;
    if (sig == SIGHUP) {
        if (!s->opts.reload) {
            edr_log_info("SIGHUP: no configuration to reload");
            return;
        }
        edr_config_t *nc = s->opts.reload(s->opts.reload_ud);
        if (!nc) {
            edr_log_error("reload failed: configuration kept");
            return;
        }
        apply_reload(s, nc);
        return;
    }
    begin_stop(s, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_async_stop(uv_async_t *a)
{
    begin_stop(a->data, "requested");
}

void edr_sensor_stop(edr_sensor_t *s)
{
    if (s && s->handles_ok)
        uv_async_send(&s->a_stop);
}

const char *edr_sensor_fidelity(const edr_sensor_t *s)
{
    return s->fidelity ? s->fidelity : "none";
}

void edr_sensor_get_stats(const edr_sensor_t *s, edr_sensor_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->events = s->em.emitted;
    out->batches = s->em.batches;
    out->drops = s->drops.total;
    if (s->prod) {
        edr__producer_stats_t ps;
        edr__producer_get_stats(s->prod, &ps);
        out->frames_acked = ps.frames_direct_acked + ps.frames_replay_acked;
        out->frames_spooled = ps.frames_spooled;
    }
}

edr_sensor_t *edr_sensor_new(edr_config_t *cfg, const edr_sensor_opts_t *opts, char *err,
                             size_t errlen)
{
    edr_sensor_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->kq_fd[0] = s->kq_fd[1] = -1;
    if (opts)
        s->opts = *opts;
    s->cfg = cfg;
    s->start_mono = edr__mono_ns();
    const char *output = edr_config_str(cfg, "sensor.output");
    if (strcmp(output, "jsonl") == 0) {
        s->jsonl = 1;
    } else if (strcmp(output, "null") == 0) {
        s->null_out = 1;
    } else if (strcmp(output, "kafka") != 0) {
        snprintf(err, errlen, "sensor.output: expected kafka, jsonl or null, got '%s'", output);
        goto fail;
    }
    int64_t be = edr_config_int(cfg, "sensor.batch_events");
    if (be < 1 || be > 1000000) {
        snprintf(err, errlen, "sensor.batch_events: must be 1..1000000, got %" PRId64, be);
        goto fail;
    }
    s->batch_interval_ns = edr_config_duration_ns(cfg, "sensor.batch_interval");
    if (s->batch_interval_ns < 1000000) {
        snprintf(err, errlen, "sensor.batch_interval: must be at least 1ms");
        goto fail;
    }
    if (edr_config_duration_ns(cfg, "sensor.health_interval") < 1000000) {
        snprintf(err, errlen, "sensor.health_interval: must be at least 1ms");
        goto fail;
    }
    const char *dir = edr_config_str(cfg, "sensor.state_dir");
    if (!*dir) {
        snprintf(err, errlen, "sensor.state_dir: must not be empty");
        goto fail;
    }
    if (!(s->state = edr__state_open(dir, s->opts.no_lock, err, errlen)))
        goto fail;

    /* frames: zstd level, split form and dictionaries */
    if (!(s->enc = edr_frame_ctx_from_config(cfg, &s->dict_id, err, errlen)) ||
        !(s->dec = edr_frame_ctx_from_config(cfg, NULL, err, errlen)))
        goto fail;

    if (edr__emit_init(&s->em, cfg, 0, s->state, &s->drops,
                       s->jsonl ? ship_jsonl : s->null_out ? ship_null : ship_kafka, s, err, errlen))
        goto fail;
    s->em_ok = 1;
    s->em.limit = s->opts.max_events;
    if (s->jsonl) {
        s->out = s->opts.jsonl_out ? s->opts.jsonl_out : stdout;
    } else if (!s->null_out) {
        char sp[4096], topic[256];
        snprintf(sp, sizeof(sp), "%s/spool", dir);
        s->spool = edr_spool_open(sp, edr_config_size(cfg, "sensor.spool_max_bytes"),
                                  edr_config_duration_ns(cfg, "sensor.spool_sync_interval"),
                                  on_spool_drop, s, err, errlen);
        if (!s->spool)
            goto fail;
        const char *boot = edr_kafka_bootstraps(cfg, &s->embedded, err, errlen);
        if (!boot)
            goto fail;
        if (s->embedded)
            edr_log_warn("kafka.brokers is 'embedded': producing into a cluster inside this "
                         "process, which no collector elsewhere reads and which is gone at exit "
                         "(for trials only; point kafka.brokers at a cluster)");
        edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
        s->prod = edr__producer_new(topic, s->spool,
                                    edr_config_duration_ns(cfg, "sensor.spool_after"), &s->drops,
                                    s->dec);
        if (!s->prod) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (snprintf(s->boot, sizeof(s->boot), "%s", boot) >= (int)sizeof(s->boot)) {
            snprintf(err, errlen, "kafka.brokers: longer than %zu bytes", sizeof(s->boot) - 1);
            goto fail;
        }
        if (pipe(s->kq_fd) != 0) {
            snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
            s->kq_fd[0] = s->kq_fd[1] = -1;
            goto fail;
        }
        for (int i = 0; i < 2; i++) {
            fcntl(s->kq_fd[i], F_SETFL, O_NONBLOCK);
            fcntl(s->kq_fd[i], F_SETFD, FD_CLOEXEC);
        }
        rd_kafka_t *rk = make_producer(s, err, errlen);
        if (!rk)
            goto fail;
        edr__producer_attach(s->prod, rk);
        edr__producer_set_remake(s->prod, make_producer, s);
    }

    if (uv_loop_init(&s->loop) != 0) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    s->loop_ok = 1;
    return s;
fail:
    s->cfg = NULL; /* the caller keeps cfg on failure */
    edr_sensor_destroy(s);
    return NULL;
}

static int start_source(edr_sensor_t *s)
{
    char err[512];
    const char *name = edr_config_str(s->cfg, "sensor.source");
    int rc = 0;
    if (strcmp(name, "auto") == 0) {
#ifdef EDR_SENSOR_HAVE_EBPF
        s->src = edr_source_ebpf_new(s->cfg, err, sizeof(err));
        if (s->src && (rc = s->src->ops->start(s->src, &s->loop, &s->em)) == 0) {
            edr_log_info("source auto: using ebpf");
            goto started;
        }
        edr_log_warn("source auto: ebpf unavailable (%s): using fallback",
                     s->src ? edr_strerror(rc) : err);
        if (s->src)
            s->src->ops->destroy(s->src);
#else
        edr_log_info("source auto: ebpf not built into this edr-sensor: using fallback");
#endif
        name = "fallback";
    }
    s->src = make_source(s, name, err, sizeof(err));
    if (!s->src) {
        edr_log_error("%s", err);
        return EDR_ECONFIG;
    }
    if ((rc = s->src->ops->start(s->src, &s->loop, &s->em)) != 0) {
        edr_log_error("source %s: cannot start: %s", s->src->ops->name, edr_strerror(rc));
        s->src->ops->destroy(s->src);
        s->src = NULL;
        return rc;
    }
    goto started;
started:
    s->fidelity = s->src->ops->name;
    s->em.info.source = (Edr__V1__SensorInfo__SourceKind)s->src->ops->source_kind;
    edr_log_info("source %s started", s->fidelity);
    return 0;
}

int edr_sensor_run(edr_sensor_t *s)
{
    uv_timer_init(&s->loop, &s->t_batch);
    uv_timer_init(&s->loop, &s->t_kafka);
    uv_timer_init(&s->loop, &s->t_health);
    uv_timer_init(&s->loop, &s->t_inventory);
    uv_timer_init(&s->loop, &s->t_control);
    uv_signal_init(&s->loop, &s->s_term);
    uv_signal_init(&s->loop, &s->s_int);
    uv_signal_init(&s->loop, &s->s_hup);
    uv_async_init(&s->loop, &s->a_stop, on_async_stop);
    s->t_batch.data = s->t_kafka.data = s->t_health.data = s->t_control.data = s;
    s->t_inventory.data = s;
    s->s_term.data = s->s_int.data = s->s_hup.data = s->a_stop.data = s;
    s->handles_ok = 1;
    self_entity(s);
    /* signals are watched before the source starts (seeding /proc, loading
     * BPF programs take a while): a stop or reload asked meanwhile waits in
     * the loop and is served once it runs, instead of killing a half-started
     * sensor (the default action of all three). A caller that blocked them
     * (edr-sensor does, from the top of main) has them delivered from here. */
    uv_signal_start(&s->s_term, on_signal, SIGTERM);
    uv_signal_start(&s->s_int, on_signal, SIGINT);
    uv_signal_start(&s->s_hup, on_signal, SIGHUP);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
    s->starting = 1;
    int rc = start_source(s);
    s->starting = 0;
    if (rc) {
        finish(s);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        return rc;
    }
    if (!s->opts.keep_caps && geteuid() == 0 && drop_caps(s->fidelity) == 0 && s->prod) {
        /* Capabilities are per thread: the Kafka client's threads, made
         * before the drop, would keep them all. A new client made now has
         * threads with the dropped set (the embedded cluster's, a trial
         * setting, keep theirs). */
        if (edr__producer_renew(s->prod, 2000) != 0)
            edr_log_warn("the Kafka client made before the capability drop is still in use "
                         "(it had frames in flight): its threads keep the capabilities");
    }
    if (!s->opts.keep_caps && geteuid() == 0)
        edr_log_info("capabilities of all threads (permitted and effective): %llx",
                     edr__caps_effective_all());
    s->em.on_open = on_batch_open;
    s->em.on_open_ud = s;
    if (s->em.n) /* events emitted while starting */
        arm_batch_timer(s, s->batch_interval_ns);
    if (s->prod) {
        uv_timer_start(&s->t_kafka, on_kafka_timer, 100, 100);
        s->p_kafka.data = s;
        if (uv_poll_init(&s->loop, &s->p_kafka, s->kq_fd[0]) == 0) {
            s->kq_on = 1;
            uv_poll_start(&s->p_kafka, UV_READABLE, on_kafka_event);
        } else {
            uv_timer_start(&s->t_kafka, on_kafka_timer, 5, 5); /* poll instead */
        }
    }
    uint64_t hi = edr_config_duration_ns(s->cfg, "sensor.health_interval") / 1000000;
    uv_timer_start(&s->t_health, on_health_timer, hi, hi);
    /* every 100 ms while running, every 20 ms while draining (begin_stop) */
    uv_timer_start(&s->t_control, on_control_timer, 100, 100);
    /* only health events sent to Kafka report to the fleet's store */
    uint64_t carried = s->prod ? edr__drops_carry(&s->drops, edr__state_dir(s->state)) : 0;
    emit_health(s); /* says the fidelity at once */
    arm_inventory_timer(s, 0);
    if (carried && edr__emit_flush(&s->em) == 0)
        edr__drops_carried(edr__state_dir(s->state));
    if (s->stop_pending)
        begin_stop(s, s->stop_pending);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    edr_sensor_stats_t st;
    edr_sensor_get_stats(s, &st);
    edr_log_info("stopped: %" PRIu64 " events in %" PRIu64 " batches, %" PRIu64
                 " frames acknowledged, %" PRIu64 " spooled, %" PRIu64
                 " dropped (events of the source: the sensor's own health and inventory events "
                 "ride in the same batches, uncounted)",
                 st.events, st.batches, st.frames_acked, st.frames_spooled, st.drops);
    if (s->prod) {
        edr__producer_stats_t ps;
        edr__producer_get_stats(s->prod, &ps);
        if (ps.frames_reordered)
            edr_log_warn("%" PRIu64 " frames failed after newer ones were spooled and were "
                         "spooled behind them: delivered out of per-host order (not lost)",
                         ps.frames_reordered);
    }
    /* a run whose output or source failed midway did not do its job: its
     * exit says so, as a source that could not start does */
    if (!s->rc)
        s->rc = s->out_failed ? EDR_EIO : s->em.source_rc;
    return s->rc; /* drops not reported yet are saved by edr_sensor_destroy */
}

void edr_sensor_destroy(edr_sensor_t *s)
{
    if (!s)
        return;
    if (s->src && !s->stopping && s->src->ops->stop)
        s->src->ops->stop(s->src);
    if (s->loop_ok) {
        if (s->handles_ok)
            finish(s);
        uv_run(&s->loop, UV_RUN_DEFAULT); /* run close callbacks */
        uv_loop_close(&s->loop);
    }
    if (s->src)
        s->src->ops->destroy(s->src);
    edr__producer_destroy(s->prod);
    /* Drops no health event reported (those of the last moments, of a
     * source that failed to start, of frames the closing client still
     * held) are saved for the next run to report: after the client's
     * destruction, which counts its own. */
    if (s->prod && s->state)
        edr__drops_save_unreported(&s->drops, &s->reported, edr__state_dir(s->state));
    for (int i = 0; i < 2; i++) /* after the client that writes to it */
        if (s->kq_fd[i] >= 0)
            close(s->kq_fd[i]);
    edr_kafka_cluster_destroy(s->embedded);
    edr_spool_close(s->spool);
    if (s->em_ok)
        edr__emit_close(&s->em);
    edr_frame_ctx_destroy(s->enc);
    edr_frame_ctx_destroy(s->dec);
    edr__state_close(s->state);
    edr_config_destroy(s->cfg);
    free(s);
}
