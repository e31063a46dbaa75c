/* Spool under Kafka outages: brokers down during a 100k-event run, then up; kill -9 while spooling. */
#include "edr_test.h"
#include "sensor_test.h"

#include "edr/identity.h"

#include <dirent.h>
#include <inttypes.h>

#define MAX_HOSTS 16
#define MAX_SEQ   (1u << 18)

typedef struct {
    uint8_t id[16];
    uint64_t last_seq;
    uint64_t base; /* seen[] index 0 (seqs start at the clock: see sensor/state.c) */
    int has_base;
    uint64_t first_seq;
    uint8_t *seen;
    uint64_t frames;
} host_t;

typedef struct {
    host_t h[MAX_HOSTS];
    int n;
    uint64_t events;       /* non-health events of first deliveries */
    uint64_t dups;
    uint64_t order_errors; /* a new seq below one already seen for the host */
    uint64_t want_events;
    uint64_t health;
    uint64_t spool_overflow; /* largest spool/overflow drop count reported by health */
    uint64_t refused_max;    /* largest kafka/refused drop count reported by health */
    uint64_t refused_last;   /* kafka/refused in the last health event read (0: none) */
    /* kill -9 test: (host, seq) pairs that were in the spool */
    struct {
        uint8_t host[16];
        uint64_t seq;
    } *need;
    size_t n_need;
} tally_t;

static host_t *host_of(tally_t *t, const uint8_t *id)
{
    for (int i = 0; i < t->n; i++)
        if (!memcmp(t->h[i].id, id, 16))
            return &t->h[i];
    assert_true(t->n < MAX_HOSTS);
    host_t *h = &t->h[t->n++];
    memcpy(h->id, id, 16);
    h->seen = calloc(MAX_SEQ, 1);
    return h;
}

/* The seen flag of seq for host h. */
static uint8_t *seen_at(host_t *h, uint64_t seq)
{
    if (!h->has_base) {
        h->base = seq > MAX_SEQ / 2 ? seq - MAX_SEQ / 2 : 0;
        h->has_base = 1;
    }
    assert_true(seq >= h->base && seq - h->base < MAX_SEQ);
    return &h->seen[seq - h->base];
}

static int on_batch(void *ud, const Edr__V1__EventBatch *b)
{
    tally_t *t = ud;
    host_t *h = host_of(t, b->sensor->host_id.data);
    uint8_t *seen = seen_at(h, b->seq);
    if (*seen) {
        t->dups++; /* at-least-once: a purged in-flight frame sent again */
    } else {
        if (b->seq < h->last_seq)
            t->order_errors++;
        *seen = 1;
        if (!h->first_seq || b->seq < h->first_seq)
            h->first_seq = b->seq;
        if (b->seq > h->last_seq)
            h->last_seq = b->seq;
        h->frames++;
        for (size_t i = 0; i < b->n_events; i++) {
            if (b->events[i]->body_case == EDR__V1__EVENT__BODY_SENSOR_HEALTH) {
                const Edr__V1__SensorHealth *sh = b->events[i]->sensor_health;
                t->health++;
                t->refused_last = 0;
                for (size_t k = 0; k < sh->n_drops; k++) {
                    const char *src = sh->drops[k]->source, *why = sh->drops[k]->reason;
                    uint64_t n = sh->drops[k]->count;
                    if (!strcmp(src, "spool") && !strcmp(why, "overflow") && n > t->spool_overflow)
                        t->spool_overflow = n;
                    if (!strcmp(src, "kafka") && !strcmp(why, "refused")) {
                        t->refused_last = n;
                        if (n > t->refused_max)
                            t->refused_max = n;
                    }
                }
            }
            else
                t->events++;
        }
    }
    return t->want_events && t->events >= t->want_events;
}

static void tally_free(tally_t *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->h[i].seen);
    free(t->need);
}

static void set_brokers(edr_kafka_cluster_t *cl, int up)
{
    rd_kafka_mock_cluster_t *m = edr_kafka_cluster_mock(cl);
    for (int b = 1; b <= 1; b++) {
        if (up)
            rd_kafka_mock_broker_set_up(m, b);
        else
            rd_kafka_mock_broker_set_down(m, b);
    }
}

static uint64_t spool_bytes(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/spool", dir);
    DIR *d = opendir(p);
    uint64_t total = 0;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".seg"))
            continue;
        char f[8192];
        struct stat st;
        snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
        if (stat(f, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static edr_kafka_cluster_t *cluster(edr_config_t **cfg)
{
    char err[256];
    *cfg = edr_config_new();
    assert_non_null(*cfg);
    edr_kafka_cluster_t *cl = edr_kafka_cluster_new(*cfg, 1, 4, err, sizeof(err));
    if (!cl)
        fail_msg("embedded kafka: %s", err);
    return cl;
}

/* A test's embedded cluster and scratch directory, with the sensor's
 * --state-dir and --brokers arguments and its log path. */
typedef struct {
    edr_config_t *cfg;
    edr_kafka_cluster_t *cl;
    char dir[32];
    char state[64], state_arg[96], log[64], brokers[600];
} run_t;

static void run_begin(run_t *r)
{
    r->cl = cluster(&r->cfg);
    snprintf(r->dir, sizeof(r->dir), "/tmp/edr-spool-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->state, sizeof(r->state), "%s/state", r->dir);
    snprintf(r->state_arg, sizeof(r->state_arg), "--state-dir=%s", r->state);
    snprintf(r->log, sizeof(r->log), "%s/sensor.log", r->dir);
    snprintf(r->brokers, sizeof(r->brokers), "--brokers=%s", edr_kafka_cluster_bootstraps(r->cl));
}

static void run_end(run_t *r)
{
    edr_kafka_cluster_destroy(r->cl);
    edr_config_destroy(r->cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
}

/* Brokers down for the first seconds of a 100k-event run, then up: every
 * event arrives exactly once after deduplication, per-host seqs increase
 * without gaps. */
static void test_outage_then_recovery(void **state)
{
    (void)state;
    run_t r;
    run_begin(&r);
    set_brokers(r.cl, 0);
    const char *args[] = {"--source=synth", "--hosts=8", "--rate=25000", "--max-events=100000",
                          r.state_arg, r.brokers, "--set", "sensor.batch_events=500",
                          "--set", "sensor.spool_after=1s", "--set", "sensor.shutdown_timeout=60s",
                          "--set", "sensor.health_interval=1s", "--set", "log.level=info", NULL};
    pid_t pid = st_spawn_sensor(args, r.log);
    assert_true(pid > 0);
    /* stay down until frames are on disk */
    double t0 = st_now();
    while (spool_bytes(r.state) < 200000 && st_now() - t0 < 20)
        usleep(50000);
    uint64_t spooled = spool_bytes(r.state);
    set_brokers(r.cl, 1);
    int rc = st_wait(pid, 90);
    if (rc != 0 || spooled < 200000)
        st_dump_log(r.log);
    assert_true(spooled >= 200000);
    assert_int_equal(rc, 0);

    tally_t t = {.want_events = 100000};
    int bad = st_consume(r.cfg, edr_kafka_cluster_bootstraps(r.cl), on_batch, &t, 1.5, 60);
    assert_int_equal(bad, 0);
    assert_int_equal(t.events, 100000);
    assert_int_equal(t.order_errors, 0);
    int synth_hosts = 0;
    for (int i = 0; i < t.n; i++) {
        /* no gaps: every seq between the first and the last arrived */
        uint64_t span = t.h[i].last_seq - t.h[i].first_seq + 1;
        assert_int_equal(span, t.h[i].frames);
        synth_hosts++;
    }
    assert_true(synth_hosts >= 8); /* 8 simulated hosts (+ the sensor's own for health) */
    assert_true(t.health >= 1);
    fprintf(stderr, "outage: %" PRIu64 " bytes spooled while down, %" PRIu64
                    " events delivered, %" PRIu64 " duplicate frames\n",
            spooled, t.events, t.dups);
    tally_free(&t);
    run_end(&r);
}

/* Collects (host, seq) of every frame in the spool from its head. */
static void read_spool(const char *state, tally_t *t)
{
    char p[8400];
    snprintf(p, sizeof(p), "%s/spool/head", state);
    uint64_t hseg = 0, hoff = 0;
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%" SCNu64 " %" SCNu64, &hseg, &hoff) != 2)
            hseg = hoff = 0;
        fclose(f);
    }
    edr_frame_ctx_t *dec = edr_frame_ctx_new(NULL);
    for (uint64_t seg = hseg ? hseg : 1; seg < hseg + 1000; seg++) {
        snprintf(p, sizeof(p), "%s/spool/%016" PRIx64 ".seg", state, seg);
        FILE *sf = fopen(p, "rb");
        if (!sf) {
            if (seg > hseg + 1)
                break;
            continue;
        }
        fseek(sf, 0, SEEK_END);
        long len = ftell(sf);
        fseek(sf, 0, SEEK_SET);
        uint8_t *buf = malloc((size_t)len + 1);
        assert_int_equal(fread(buf, 1, (size_t)len, sf), (size_t)len);
        fclose(sf);
        size_t off = seg == hseg ? hoff : 0;
        size_t fl;
        while ((fl = edr_frame_len(buf + off, (size_t)len - off)) && fl <= (size_t)len - off) {
            Edr__V1__EventBatch *b;
            if (edr_frame_decode(dec, buf + off, fl, &b) == 0) {
                t->need = realloc(t->need, (t->n_need + 1) * sizeof(*t->need));
                memcpy(t->need[t->n_need].host, b->sensor->host_id.data, 16);
                t->need[t->n_need].seq = b->seq;
                t->n_need++;
            }
            off += fl;
        }
        free(buf);
    }
    edr_frame_ctx_destroy(dec);
}

static int on_batch_need(void *ud, const Edr__V1__EventBatch *b)
{
    tally_t *t = ud;
    on_batch(t, b);
    for (size_t i = 0; i < t->n_need; i++) {
        host_t *h = host_of(t, t->need[i].host);
        if (!*seen_at(h, t->need[i].seq))
            return 0;
    }
    return 1;
}

/* kill -9 while spooling: every frame already in the spool is delivered by
 * the next run, even with a torn frame at the end of the spool. */
static void test_kill9_while_spooling(void **state)
{
    (void)state;
    run_t r;
    run_begin(&r);
    set_brokers(r.cl, 0);
    const char *args[] = {"--source=synth", "--hosts=4", "--rate=20000", r.state_arg, r.brokers,
                          "--set", "sensor.batch_events=400", "--set", "sensor.spool_after=500ms",
                          NULL};
    pid_t pid = st_spawn_sensor(args, r.log);
    assert_true(pid > 0);
    double t0 = st_now();
    while (spool_bytes(r.state) < 300000 && st_now() - t0 < 20)
        usleep(50000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    tally_t t = {0};
    read_spool(r.state, &t);
    fprintf(stderr, "kill -9: %zu frames in the spool\n", t.n_need);
    if (t.n_need < 10)
        st_dump_log(r.log);
    assert_true(t.n_need >= 10);
    /* a torn append: half a frame at the end of the last segment */
    {
        char p[8400];
        uint64_t last = 0;
        DIR *d;
        snprintf(p, sizeof(p), "%s/spool", r.state);
        assert_non_null(d = opendir(p));
        struct dirent *de;
        while ((de = readdir(d)))
            if (strstr(de->d_name, ".seg")) {
                uint64_t v = strtoull(de->d_name, NULL, 16);
                if (v > last)
                    last = v;
            }
        closedir(d);
        snprintf(p, sizeof(p), "%s/spool/%016" PRIx64 ".seg", r.state, last);
        FILE *f = fopen(p, "ab");
        assert_non_null(f);
        uint8_t torn[100] = {'E', 'D', 'R', 'F', 1, 1, 32, 0};
        torn[16] = 0x10; /* claims a 4 KiB payload that is not there */
        torn[17] = 0x10;
        fwrite(torn, 1, sizeof(torn), f);
        fclose(f);
    }
    set_brokers(r.cl, 1);
    const char *args2[] = {"--source=synth", "--hosts=1",          "--rate=100",
                           "--max-events=1", r.state_arg,          r.brokers,
                           "--set",          "sensor.shutdown_timeout=60s", NULL};
    pid = st_spawn_sensor(args2, r.log);
    int rc = st_wait(pid, 90);
    if (rc != 0)
        st_dump_log(r.log);
    assert_int_equal(rc, 0);
    int bad = st_consume(r.cfg, edr_kafka_cluster_bootstraps(r.cl), on_batch_need, &t, 1.0, 60);
    assert_int_equal(bad, 0);
    size_t missing = 0;
    for (size_t i = 0; i < t.n_need; i++) {
        host_t *h = host_of(&t, t.need[i].host);
        if (!*seen_at(h, t.need[i].seq))
            missing++;
    }
    if (missing)
        st_dump_log(r.log);
    assert_int_equal(missing, 0);
    assert_int_equal(t.order_errors, 0);
    /* the sensor reported the torn tail it cut */
    FILE *lf = fopen(r.log, "r");
    char line[1024];
    int torn_logged = 0;
    while (lf && fgets(line, sizeof(line), lf))
        if (strstr(line, "torn tail"))
            torn_logged = 1;
    if (lf)
        fclose(lf);
    assert_true(torn_logged);
    tally_free(&t);
    run_end(&r);
}

/* Lines of the log containing needle. */
static int log_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int found = 0;
    while (f && fgets(line, sizeof(line), f))
        found += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static int log_has(const char *path, const char *needle)
{
    return log_count(path, needle) > 0;
}

/* A spool far smaller than the outage needs: the oldest frames are dropped,
 * and every dropped event is counted in health: delivered + dropped = sent. */
static void test_overflow_counted(void **state)
{
    (void)state;
    run_t r;
    run_begin(&r);
    set_brokers(r.cl, 0);
    const char *args[] = {"--source=synth", "--hosts=2", "--rate=20000", "--max-events=40000",
                          r.state_arg, r.brokers, "--set", "sensor.batch_events=200", "--set",
                          "sensor.spool_max_bytes=256KiB", "--set", "sensor.spool_after=500ms",
                          "--set", "sensor.shutdown_timeout=60s", NULL};
    pid_t pid = st_spawn_sensor(args, r.log);
    assert_true(pid > 0);
    double t0 = st_now();
    while (!log_has(r.log, "stopping (--max-events reached)") && st_now() - t0 < 30)
        usleep(50000);
    assert_true(log_has(r.log, "stopping (--max-events reached)"));
    set_brokers(r.cl, 1);
    int rc = st_wait(pid, 90);
    if (rc)
        st_dump_log(r.log);
    assert_int_equal(rc, 0);
    tally_t t = {0};
    st_consume(r.cfg, edr_kafka_cluster_bootstraps(r.cl), on_batch, &t, 2.0, 30);
    fprintf(stderr, "overflow: %" PRIu64 " events delivered, %" PRIu64 " counted as dropped\n",
            t.events, t.spool_overflow);
    assert_true(t.spool_overflow > 0);
    assert_int_equal(t.events + t.spool_overflow, 40000);
    assert_int_equal(t.order_errors, 0);
    tally_free(&t);
    run_end(&r);
}

/* Frames Kafka refuses whatever the retries (here: larger than the
 * producer's message.max.bytes) are counted as lost and logged, not spooled
 * and replayed forever: the small health frames behind them still go out,
 * and the sensor stops on time. */
static void test_refused_frames_counted(void **state)
{
    (void)state;
    run_t r;
    run_begin(&r);
    /* unpaced, so every batch has 300 events (too large for Kafka here); 20,000 =
     * 66 x 300 + 200: the last batch is flushed at the stop */
    const char *args[] = {"--source=synth", "--hosts=2", "--rate=0", "--max-events=20000",
                          r.state_arg, r.brokers, "--set", "sensor.batch_events=300", "--set",
                          "kafka.properties.message.max.bytes=1000", "--set",
                          "sensor.health_interval=200ms", NULL};
    pid_t pid = st_spawn_sensor(args, r.log);
    assert_true(pid > 0);
    int rc = st_wait(pid, 30);
    if (rc)
        st_dump_log(r.log);
    assert_int_equal(rc, 0);
    assert_true(log_has(r.log, "kafka refused a frame"));
    assert_false(log_has(r.log, "spooling frames to disk"));
    if (!log_has(r.log, " 20000 dropped"))
        st_dump_log(r.log);
    assert_true(log_has(r.log, " 20000 dropped")); /* every event, counted */
    tally_t t = {0};
    st_consume(r.cfg, edr_kafka_cluster_bootstraps(r.cl), on_batch, &t, 2.0, 30);
    fprintf(stderr, "refused: %" PRIu64 " events delivered, %" PRIu64 " health reports\n",
            t.events, t.health);
    assert_int_equal(t.events, 0);
    assert_true(t.health > 0); /* the frames behind the refused ones went out */
    tally_free(&t);

    /* Every refused event is in a delivered health event: the last batch is
     * refused during the drain at the stop, and the last health event comes
     * after the drain. Anything counted after it would be reported by the
     * next run (from the state directory), so the two add up. */
    const char *args2[] = {"--source=synth", "--hosts=1", "--max-events=100", r.state_arg,
                           r.brokers, "--set", "sensor.health_interval=200ms", NULL};
    pid = st_spawn_sensor(args2, r.log);
    assert_true(pid > 0);
    assert_int_equal(st_wait(pid, 30), 0);
    tally_t t2 = {0};
    st_consume(r.cfg, edr_kafka_cluster_bootstraps(r.cl), on_batch, &t2, 2.0, 30);
    fprintf(stderr, "refused: the first run's health events reported %" PRIu64
                    ", the next run's %" PRIu64 "\n",
            t2.refused_max, t2.refused_last);
    if (t2.refused_max + t2.refused_last != 20000)
        st_dump_log(r.log);
    assert_int_equal(t2.refused_max + t2.refused_last, 20000);
    tally_free(&t2);
    run_end(&r);
}

/* The idempotent producer is refused a producer id (cluster authorization
 * failed: a fatal error in librdkafka, after which the client never sends
 * again): the sensor replaces the client and every event arrives, in order. */
static void test_fatal_producer_replaced(void **state)
{
    (void)state;
    run_t r;
    run_begin(&r);
    /* InitProducerId is Kafka API key 22. Two refusals: the sensor replaces
     * its first client once it dropped its capabilities, and that client
     * may have taken the first refusal before it went (or not) */
    rd_kafka_mock_push_request_errors(edr_kafka_cluster_mock(r.cl), 22, 2,
                                      RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    const char *args[] = {"--source=synth", "--hosts=2", "--rate=20000", "--max-events=20000",
                          r.state_arg, r.brokers, "--set", "sensor.batch_events=500", "--set",
                          "sensor.shutdown_timeout=30s", "--set", "log.level=info", NULL};
    pid_t pid = st_spawn_sensor(args, r.log);
    assert_true(pid > 0);
    int rc = st_wait(pid, 60);
    if (rc)
        st_dump_log(r.log);
    assert_int_equal(rc, 0);
    assert_true(log_has(r.log, "kafka producer: fatal error"));
    assert_true(log_has(r.log, "was replaced by a new one"));
    tally_t t = {.want_events = 20000};
    assert_int_equal(st_consume(r.cfg, edr_kafka_cluster_bootstraps(r.cl), on_batch, &t, 1.5, 30),
                     0);
    fprintf(stderr, "fatal producer: %" PRIu64 " events delivered, %" PRIu64
                    " duplicate frames\n",
            t.events, t.dups);
    assert_int_equal(t.events, 20000);
    assert_int_equal(t.order_errors, 0);
    tally_free(&t);
    run_end(&r);
}

/* A refusal that persists: the failed client is replaced, but not again
 * and again (5 s, then 10 s while no frame gets through); the frames wait
 * in the spool, none is dropped. */
static void test_fatal_producer_backoff(void **state)
{
    (void)state;
    run_t r;
    run_begin(&r);
    rd_kafka_resp_err_t refusals[1000];
    for (size_t i = 0; i < 1000; i++)
        refusals[i] = RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    rd_kafka_mock_push_request_errors_array(edr_kafka_cluster_mock(r.cl), 22, 1000, refusals);
    const char *args[] = {"--source=synth", "--hosts=1", "--rate=1000", "--max-events=8000",
                          r.state_arg, r.brokers, "--set", "sensor.batch_events=500", "--set",
                          "sensor.shutdown_timeout=1s", "--set", "log.level=info", NULL};
    pid_t pid = st_spawn_sensor(args, r.log);
    assert_true(pid > 0);
    int rc = st_wait(pid, 60);
    int fatal = log_count(r.log, "kafka producer: fatal error");
    int replaced = log_count(r.log, "was replaced by a new one");
    fprintf(stderr, "persistent refusal over ~9 s: %d fatal errors, %d replacements\n", fatal,
            replaced);
    if (rc || replaced < 1 || replaced > 3 || !log_has(r.log, " 0 dropped") || getenv("DUMP"))
        st_dump_log(r.log);
    assert_int_equal(rc, 0);
    /* 5 s, then 10 s apart: 2 in a run of ~9 s, 3 if a slow machine stretches
     * it past 15 s (without the backoff: hundreds) */
    assert_true(replaced >= 1 && replaced <= 3);
    assert_true(log_has(r.log, " 0 dropped"));
    assert_true(spool_bytes(r.state) > 0); /* the frames wait there for the next run */
    run_end(&r);
}

int main(void)
{
    edr_log_init("test", EDR_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_outage_then_recovery, st_cleanup),
        cmocka_unit_test_teardown(test_kill9_while_spooling, st_cleanup),
        cmocka_unit_test_teardown(test_overflow_counted, st_cleanup),
        cmocka_unit_test_teardown(test_refused_frames_counted, st_cleanup),
        cmocka_unit_test_teardown(test_fatal_producer_replaced, st_cleanup),
        cmocka_unit_test_teardown(test_fatal_producer_backoff, st_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
