/* SIGTERM at random moments, 20 short runs of the fallback and synthetic sources: exit 0 and a flush that loses nothing. */
#include "edr_test.h"
#include "sensor_test.h"

#include "edr/identity.h"

#include <inttypes.h>

/*
 * Each run starts edr-sensor (fallback and synth in turn) into an embedded
 * Kafka cluster the test owns, sends SIGTERM after a random delay (from the
 * moment the daemon's main() holds the signal: during startup, seeding, or
 * while events flow), and checks what an operator would: exit status 0, a
 * "stopping (SIGTERM): flushing" line, and a summary in which every batch
 * was acknowledged by Kafka. All runs share one state directory (batch seqs
 * increase across restarts), so at the end the topic must hold exactly the
 * batches and the events the runs' summaries report: (host id, seq) unique.
 * (The embedded cluster keeps about 5 MB per partition: the synthetic rate
 * is kept low enough that nothing is evicted before the final read.)
 *
 * Half of the fallback runs start a fork storm (a child forking 4000
 * short-lived processes) once the source runs; SIGTERM comes while it goes
 * on, or (runs 0, 8, 16) after it ended, so that the source has seen every
 * fork: its process table then grows past its first rehash, which used to
 * read the parent's entry from the freed table and kill the sensor with
 * SIGSEGV (exit 139), the failure this test was written for.
 *
 * The random seed is printed; EDR_TEST_SEED=N repeats a sequence.
 */

#define RUNS  20
#define FORKS 4000

typedef struct {
    uint8_t host[EDR_ID_LEN];
    uint64_t seq;
    uint64_t events; /* without health events */
} seen_t;

typedef struct {
    seen_t *v;
    size_t n, cap;
    uint64_t want_batches;
} seen_list_t;

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: small and reproducible from the printed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* 1 once the process has SIGTERM blocked or caught, that is once edr-sensor's
 * main() runs (before, SIGTERM would kill the program loader's work). */
static int holds_sigterm(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* the exec may not have happened yet: the image must be edr-sensor */
    if (!strstr(buf, "Name:\tedr-sensor"))
        return 0;
    unsigned long long blk = 0, cgt = 0;
    const char *b = strstr(buf, "\nSigBlk:"), *c = strstr(buf, "\nSigCgt:");
    if (b)
        blk = strtoull(b + 8, NULL, 16);
    if (c)
        cgt = strtoull(c + 8, NULL, 16);
    unsigned long long bit = 1ull << (SIGTERM - 1);
    return ((blk | cgt) & bit) != 0;
}

static int log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Reads the exit summary; 0 when found. */
static int log_summary(const char *path, uint64_t *events, uint64_t *batches, uint64_t *acked,
                       uint64_t *spooled, uint64_t *dropped)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[2048];
    int rc = -1;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "stopped: ");
        if (p && sscanf(p,
                        "stopped: %" SCNu64 " events in %" SCNu64 " batches, %" SCNu64
                        " frames acknowledged, %" SCNu64 " spooled, %" SCNu64 " dropped",
                        events, batches, acked, spooled, dropped) == 5)
            rc = 0;
    }
    fclose(f);
    return rc;
}

/* A child that starts n short-lived processes as fast as it can (vfork: no
 * page tables to copy, each is still a fork and an exit to the sensor). */
static pid_t fork_storm(int n)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    for (int i = 0; i < n; i++) {
        pid_t c = vfork();
        if (c == 0)
            _exit(0);
        if (c > 0)
            waitpid(c, NULL, 0);
    }
    _exit(0);
}

static int on_batch(void *ud, const Edr__V1__EventBatch *b)
{
    seen_list_t *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        assert_non_null(s->v);
    }
    seen_t *x = &s->v[s->n++];
    memset(x, 0, sizeof(*x));
    if (b->sensor && b->sensor->host_id.len == EDR_ID_LEN)
        memcpy(x->host, b->sensor->host_id.data, EDR_ID_LEN);
    x->seq = b->seq;
    for (size_t i = 0; i < b->n_events; i++)
        if (b->events[i]->body_case != EDR__V1__EVENT__BODY_SENSOR_HEALTH &&
            b->events[i]->body_case != EDR__V1__EVENT__BODY_PROCESS_INVENTORY)
            x->events++;            /* the summaries count source events, not the sensor's own */
    return s->n >= s->want_batches; /* duplicates only make this early: quiet_s covers it */
}

static int cmp_seen(const void *a, const void *b)
{
    const seen_t *x = a, *y = b;
    int c = memcmp(x->host, y->host, EDR_ID_LEN);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void test_sigterm_runs(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip(); /* the fallback source needs root (proc connector, fanotify) */
    }
    const char *es = getenv("EDR_TEST_SEED");
    uint64_t seed = es ? strtoull(es, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    fprintf(stderr, "seed %" PRIu64 " (EDR_TEST_SEED=%" PRIu64 " repeats it)\n", seed, seed);
    rng_state = seed ? seed : 1;

    edr_config_t *cfg = edr_config_new();
    char err[256];
    edr_kafka_cluster_t *cl = edr_kafka_cluster_new(cfg, 1, 2, err, sizeof(err));
    assert_non_null(cl);
    const char *boot = edr_kafka_cluster_bootstraps(cl);
    char dir[] = "/tmp/edr-sigterm-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char work[4200], sd[4300], brokers[512], paths[4300];
    snprintf(work, sizeof(work), "%s/work", dir);
    assert_int_equal(mkdir(work, 0700), 0);
    snprintf(sd, sizeof(sd), "--state-dir=%s/state", dir);
    snprintf(brokers, sizeof(brokers), "--brokers=%s", boot);
    snprintf(paths, sizeof(paths), "sensor.fallback_paths=%s", work);

    uint64_t sum_events = 0, sum_batches = 0;
    double t_start = st_now();
    for (int run = 0; run < RUNS; run++) {
        int fallback = run % 2 == 0;
        int storm = fallback && run % 4 == 0;
        int after_storm = storm && run % 8 == 0;
        char log[4300];
        snprintf(log, sizeof(log), "%s/sensor-%02d.log", dir, run);
        const char *fb_args[] = {"--source=fallback", sd, brokers, "--set", paths,
                                 "--set", "sensor.batch_interval=20ms",
                                 "--set", "sensor.fallback_poll=50ms",
                                 "--set", "sensor.shutdown_timeout=20s", NULL};
        const char *syn_args[] = {"--source=synth", "--rate=10000", "--hosts=3", sd, brokers,
                                  "--set", "sensor.batch_interval=20ms",
                                  "--set", "sensor.shutdown_timeout=20s", NULL};
        pid_t sensor = st_spawn_sensor(fallback ? fb_args : syn_args, log);
        assert_true(sensor > 0);
        double t0 = st_now();
        while (!holds_sigterm(sensor) && st_now() - t0 < 10)
            usleep(1000);
        assert_true(holds_sigterm(sensor));
        pid_t forker = -1;
        if (storm) {
            /* the storm must be seen: wait for the source, then fork */
            while (!log_has(log, "source fallback started") && st_now() - t0 < 20)
                usleep(5000);
            assert_true(log_has(log, "source fallback started"));
            forker = fork_storm(FORKS);
            assert_true(forker > 0);
            if (after_storm) {
                assert_int_equal(waitpid(forker, NULL, 0), forker);
                forker = -1;
            }
        }
        /* 0..800 ms after main() took SIGTERM over, or after the storm began/ended */
        useconds_t delay = (useconds_t)(rng() % 800000);
        usleep(delay);
        double t_term = st_now();
        assert_int_equal(kill(sensor, SIGTERM), 0);
        int rc = st_wait(sensor, 40);
        double t_exit = st_now();
        if (forker > 0)
            waitpid(forker, NULL, 0);
        uint64_t ev = 0, ba = 0, ack = 0, sp = 0, dr = 0;
        int have_summary = log_summary(log, &ev, &ba, &ack, &sp, &dr) == 0;
        fprintf(stderr, "run %2d %-9s%s SIGTERM after %3u ms, %.2f s to start, %.2f s to exit: exit %d, %" PRIu64
                        " events in %" PRIu64 " batches, %" PRIu64 " acknowledged, %" PRIu64
                        " spooled, %" PRIu64 " dropped\n",
                run, fallback ? "fallback" : "synth",
                after_storm ? "+forked" : storm ? "+forks " : "       ",
                (unsigned)(delay / 1000), t_term - t0 - delay / 1e6, t_exit - t_term, rc, ev, ba, ack,
                sp, dr);
        if (rc != 0 || !have_summary || !log_has(log, "stopping (SIGTERM): flushing") ||
            ack != ba || sp != 0) {
            st_dump_log(log);
            fail_msg("run %d: SIGTERM did not lead to a clean flush and exit 0 (exit %d)", run, rc);
        }
        sum_events += ev;
        sum_batches += ba;
    }
    fprintf(stderr, "%d runs in %.1f s: %" PRIu64 " events in %" PRIu64 " batches\n", RUNS,
            st_now() - t_start, sum_events, sum_batches);

    /* everything the summaries report is in Kafka, once per (host, seq) */
    seen_list_t seen = {.want_batches = sum_batches};
    assert_int_equal(st_consume(cfg, boot, on_batch, &seen, 1.5, 60), 0);
    qsort(seen.v, seen.n, sizeof(*seen.v), cmp_seen);
    uint64_t uniq = 0, uniq_events = 0;
    for (size_t i = 0; i < seen.n; i++) {
        if (i && cmp_seen(&seen.v[i - 1], &seen.v[i]) == 0)
            continue;
        uniq++;
        uniq_events += seen.v[i].events;
    }
    fprintf(stderr, "consumed %zu frames: %" PRIu64 " unique batches, %" PRIu64 " events\n",
            seen.n, uniq, uniq_events);
    if (uniq != sum_batches) /* which seqs of which host are missing */
        for (size_t i = 0, j; i < seen.n; i = j) {
            char h[33];
            size_t u = 0;
            for (j = i; j < seen.n && !memcmp(seen.v[j].host, seen.v[i].host, EDR_ID_LEN); j++)
                u += j == i || seen.v[j].seq != seen.v[j - 1].seq;
            fprintf(stderr, "  host %s: %zu batches, seq %" PRIu64 "..%" PRIu64 "\n",
                    edr_hex(seen.v[i].host, EDR_ID_LEN, h), u, seen.v[i].seq, seen.v[j - 1].seq);
        }
    assert_int_equal(uniq, sum_batches);
    assert_int_equal(uniq_events, sum_events);

    free(seen.v);
    edr_kafka_cluster_destroy(cl);
    edr_config_destroy(cfg);
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    edr_log_init("test", EDR_LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_sigterm_runs, st_cleanup)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
