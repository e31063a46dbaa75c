/* edr-sensor operations: bad flags, configuration and input, output errors, single-instance lock, SIGHUP reload, SIGTERM flush, batches shipped by time. */
#include "edr_test.h"
#include "sensor_test.h"

#include "edr/jsonl.h"

#include <inttypes.h>

#define LINUX_DS EDR_DATASETS "/otrf-log4shell/linux-sysmon-syslog.jsonl"

static char dir[] = "/tmp/edr-flags-XXXXXX";
static char logp[4300], sdflag[4300];
static pid_t running = -1; /* killed by teardown when a test fails midway */

/* Lines of the sensor's log that contain needle. */
static int log_count(const char *needle)
{
    FILE *f = fopen(logp, "r");
    char buf[2048];
    int n = 0;
    while (f && fgets(buf, sizeof(buf), f))
        n += strstr(buf, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

static int log_has(const char *needle)
{
    return log_count(needle) > 0;
}

/* Writes a configuration file `name` in the test's directory into path, and empties the log. */
static void config_and_log(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    FILE *lf = fopen(logp, "w");
    assert_non_null(lf);
    fclose(lf);
}

/* Runs edr-sensor with args (log truncated first); returns the exit status. */
static int run(const char *const *args)
{
    FILE *f = fopen(logp, "w");
    if (f)
        fclose(f);
    pid_t pid = st_spawn_sensor(args, logp);
    assert_true(pid > 0);
    return st_wait(pid, 30);
}

static void expect(const char *const *args, int code, const char *msg)
{
    int rc = run(args);
    if (rc != code || !log_has(msg)) {
        st_dump_log(logp);
        fail_msg("%s ...: exit %d (expected %d), looking for '%s'", args[0], rc, code, msg);
    }
}

static void test_bad_flags(void **state)
{
    (void)state;
    expect((const char *[]){"--rate=abc", NULL}, 2, "--rate: expected a non-negative integer, got 'abc'");
    expect((const char *[]){"--max-events=-5", NULL}, 2, "--max-events: expected a non-negative integer");
    expect((const char *[]){"--exit-after-idle=soon", NULL}, 2, "--exit-after-idle: expected a duration");
    expect((const char *[]){"--set", "sensor.batch_events", NULL}, 2, "--set: expected KEY=VALUE");
    expect((const char *[]){"--no-such-flag", NULL}, 2, "usage: edr-sensor");
    expect((const char *[]){"stray", NULL}, 2, "unexpected argument 'stray'");
}

static void test_bad_config(void **state)
{
    (void)state;
    expect((const char *[]){sdflag, "--set", "sensor.batch_events=0", "--output=null", "--source=synth", NULL},
           1, "--set: sensor.batch_events: '0' is out of range 1..1000000");
    expect((const char *[]){sdflag, "--set", "sensor.batch_interval=banana", NULL}, 1,
           "sensor.batch_interval");
    expect((const char *[]){sdflag, "--set", "no.such.key=1", NULL}, 1, "no.such.key");
    expect((const char *[]){sdflag, "--output=xml", NULL}, 1,
           "sensor.output: expected kafka, jsonl or null, got 'xml'");
    expect((const char *[]){sdflag, "--output=null", "--source=warp-drive", NULL}, 1,
           "sensor.source: unknown source 'warp-drive'");
    expect((const char *[]){sdflag, "--output=null", "--set", "host.id=xyz", NULL}, 1,
           "host.id: expected 32 hex digits");
    char cfgp[4400];
    snprintf(cfgp, sizeof(cfgp), "%s/bad.yaml", dir);
    FILE *f = fopen(cfgp, "w");
    fputs("sensor:\n  batch_events: lots\n", f);
    fclose(f);
    expect((const char *[]){"--config", cfgp, NULL}, 1, "bad.yaml:2");
    expect((const char *[]){"--config", "/nonexistent/edr.yaml", NULL}, 1, "/nonexistent/edr.yaml");
}

static void test_lock_reload_term(void **state)
{
    (void)state;
    char cfgp[4400];
    config_and_log("good.yaml", "sensor:\n  batch_events: 100\n", cfgp, sizeof(cfgp));
    FILE *f;
    const char *args[] = {"--config", cfgp, sdflag, "--source=synth", "--rate=1000", "--output=null", NULL};
    pid_t pid = st_spawn_sensor(args, logp);
    running = pid;
    double t0 = st_now();
    while (!log_has("source synthetic started") && st_now() - t0 < 10)
        usleep(20000);
    assert_true(log_has("source synthetic started"));

    /* a second instance on the same state dir is refused */
    char log2[4400];
    snprintf(log2, sizeof(log2), "%s/second.log", dir);
    pid_t p2 = st_spawn_sensor(args, log2);
    assert_int_equal(st_wait(p2, 10), 1);
    FILE *f2 = fopen(log2, "r");
    char buf[1024];
    int refused = 0;
    while (fgets(buf, sizeof(buf), f2))
        refused |= strstr(buf, "another edr-sensor runs") != NULL;
    fclose(f2);
    assert_true(refused);

    /* SIGHUP with a good change, then a bad file: reload, then keep */
    f = fopen(cfgp, "w");
    fputs("sensor:\n  batch_events: 200\n  spool_sync_interval: 0s\n  shutdown_timeout: 9s\n"
          "kafka:\n  brokers: 127.0.0.1:1\nhost:\n  name: another\ncollector:\n  group_id: x\n",
          f);
    fclose(f);
    kill(pid, SIGHUP);
    t0 = st_now();
    while (!log_has("configuration reloaded") && st_now() - t0 < 5)
        usleep(20000);
    assert_true(log_has("configuration reloaded"));
    assert_true(log_has("kafka.brokers changed: takes effect at restart"));
    /* every setting the running sensor does not take is said, not only a
     * fixed list (review-1206g L1); one it takes is not */
    assert_true(log_has("host.name changed: takes effect at restart"));
    assert_false(log_has("spool_sync_interval changed"));
    assert_false(log_has("shutdown_timeout changed"));   /* read at the stop */
    assert_false(log_has("collector.group_id changed")); /* not the sensor's */
    assert_false(log_has("batch_events changed"));
    f = fopen(cfgp, "w");
    fputs("sensor:\n  batch_events: [\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    t0 = st_now();
    while (!log_has("reload failed: configuration kept") && st_now() - t0 < 5)
        usleep(20000);
    assert_true(log_has("reload failed: configuration kept"));
    /* a value out of range is named with its file and line, and its range
     * (review-daemons L7: it said "reload: sensor.batch_events: must be
     * 1..1000000" without either) */
    f = fopen(cfgp, "w");
    fputs("sensor:\n  batch_events: 0\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    t0 = st_now();
    while (log_count("reload failed: configuration kept") < 2 && st_now() - t0 < 5)
        usleep(20000);
    assert_int_equal(log_count("reload failed: configuration kept"), 2);
    assert_true(log_has("good.yaml:2: sensor.batch_events: '0' is out of range 1..1000000"));

    /* SIGTERM flushes and exits 0; the state files are private */
    kill(pid, SIGTERM);
    assert_int_equal(st_wait(pid, 20), 0);
    running = -1;
    assert_true(log_has("stopping (SIGTERM)"));
    struct stat st;
    char p[4500];
    snprintf(p, sizeof(p), "%s/state", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(p, sizeof(p), "%s/state/seq", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* Two things a trial run must say, once: that the default 'embedded' Kafka
 * is a cluster inside the sensor (nothing leaves the host), and that an
 * EDR_ variable naming no setting is ignored: not again at each SIGHUP. */
static void test_trial_warnings(void **state)
{
    (void)state;
    char cfgp[4400];
    config_and_log("trial.yaml", "sensor:\n  batch_events: 100\n", cfgp, sizeof(cfgp));
    setenv("EDR_KAFKA_BROKER", "kafka-1:9092", 1); /* a typo of EDR_KAFKA_BROKERS */
    const char *args[] = {"--config", cfgp, sdflag, "--source=synth", "--rate=1000", NULL};
    pid_t pid = st_spawn_sensor(args, logp);
    unsetenv("EDR_KAFKA_BROKER");
    running = pid;
    double t0 = st_now();
    while (!log_has("source synthetic started") && st_now() - t0 < 10)
        usleep(20000);
    assert_true(log_has("source synthetic started"));
    if (!log_has("warning: kafka.brokers is 'embedded'")) {
        st_dump_log(logp);
        fail_msg("no warning about the embedded cluster");
    }
    for (int i = 1; i <= 2; i++) {
        kill(pid, SIGHUP);
        t0 = st_now();
        while (log_count("configuration reloaded") < i && st_now() - t0 < 5)
            usleep(20000);
        assert_int_equal(log_count("configuration reloaded"), i);
    }
    kill(pid, SIGTERM);
    assert_int_equal(st_wait(pid, 20), 0);
    running = -1;
    if (log_count("environment EDR_KAFKA_BROKER: no such setting") != 1) {
        st_dump_log(logp);
        fail_msg("the unknown variable was not said exactly once");
    }
}

/* Output that cannot be written (stdout on /dev/full): every event is
 * counted as dropped, the error is said once, and the sensor exits 1
 * instead of passing for a run that delivered. */
static void test_output_write_error(void **state)
{
    (void)state;
    char src[4400];
    snprintf(src, sizeof(src), "--source=sysmon:%s", LINUX_DS);
    const char *args[] = {src, sdflag, "--output=jsonl", NULL};
    FILE *lf = fopen(logp, "w");
    assert_non_null(lf);
    fclose(lf);
    pid_t pid = st_spawn_sensor_out(args, logp, "/dev/full");
    int rc = st_wait(pid, 30);
    uint64_t events = 0, dropped = 0;
    FILE *f = fopen(logp, "r");
    assert_non_null(f);
    char buf[2048];
    while (fgets(buf, sizeof(buf), f)) {
        const char *p = strstr(buf, "stopped: ");
        if (p)
            sscanf(p, "stopped: %" SCNu64 " events in %*u batches, %*u frames acknowledged, "
                      "%*u spooled, %" SCNu64 " dropped",
                   &events, &dropped);
    }
    fclose(f);
    if (rc != 1 || events != 93 || dropped != events ||
        log_count("output: cannot write JSON lines: No space left on device") != 1) {
        st_dump_log(logp);
        fail_msg("stdout on /dev/full: exit %d, %" PRIu64 " events, %" PRIu64 " dropped", rc,
                 events, dropped);
    }
}

/* Input that cannot be read ends the run like input that cannot be opened:
 * a directory is refused at open, a read error exits 1. */
static void test_replay_read_error(void **state)
{
    (void)state;
    char src[4400], msg[4400];
    snprintf(src, sizeof(src), "--source=sysmon:%s", dir);
    snprintf(msg, sizeof(msg), "cannot open %s: Is a directory", dir);
    expect((const char *[]){src, sdflag, "--output=null", NULL}, 1, msg);
    /* reading the sensor's own memory at offset 0 fails with EIO */
    expect((const char *[]){"--source=sysmon:/proc/self/mem", sdflag, "--output=null", NULL}, 1,
           "replay /proc/self/mem: read error: Input/output error");
}

/* The synthetic source's ground truth goes through a temporary file that is
 * created, not opened: a symlink planted where a predictable name would be
 * is not followed. A truth file that cannot be written fails the run. */
static void test_synth_truth(void **state)
{
    (void)state;
    char truth[4400], planted[4500], victim[4400], set[4600];
    snprintf(truth, sizeof(truth), "%s/truth.jsonl", dir);
    snprintf(planted, sizeof(planted), "%s.tmp", truth);
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    assert_int_equal(symlink(victim, planted), 0);
    snprintf(set, sizeof(set), "sensor.synth_truth=%s", truth);
    expect((const char *[]){sdflag, "--source=synth", "--hosts=2", "--output=null",
                            "--max-events=5000", "--set", "sensor.synth_attacks=2", "--set", set,
                            NULL},
           0, "ground truth of 2 attacks");
    static char buf[1 << 16]; /* a truth line lists every entity of its attack */
    f = fopen(victim, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    assert_string_equal(buf, "precious\n");
    assert_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    struct stat st;
    assert_int_equal(lstat(planted, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(truth, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    f = fopen(truth, "r");
    assert_non_null(f);
    int lines = 0;
    while (fgets(buf, sizeof(buf), f)) {
        assert_non_null(strstr(buf, ",\"root\":{\"kind\":\""));
        assert_non_null(strstr(buf, "]}\n"));
        /* the first attack (after 2000 events) is complete: it has entities */
        if (lines == 0)
            assert_non_null(strstr(buf, ",\"entities\":[{\"e\":{\"kind\":\""));
        assert_true(strncmp(buf, lines ? "{\"attack\":1," : "{\"attack\":0,", 12) == 0);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 2);

    /* as many attacks as hosts are all planned (a lateral one took the
     * next host, attacked itself: "attack 2 not planned: resource busy") */
    snprintf(set, sizeof(set), "sensor.synth_truth=%s", truth);
    expect((const char *[]){sdflag, "--source=synth", "--hosts=3", "--output=null",
                            "--max-events=8000", "--set", "sensor.synth_attacks=3", "--set", set,
                            NULL},
           0, "ground truth of 3 attacks");

    snprintf(set, sizeof(set), "sensor.synth_truth=%s/no-such-dir/truth.jsonl", dir);
    expect((const char *[]){sdflag, "--source=synth", "--output=null", "--max-events=100", "--set",
                            set, NULL},
           1, "no-such-dir/truth.jsonl: No such file or directory");
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(logp, sizeof(logp), "%s/sensor.log", dir);
    snprintf(sdflag, sizeof(sdflag), "--state-dir=%s/state", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (running > 0) {
        kill(running, SIGKILL);
        waitpid(running, NULL, 0);
    }
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static double real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds since the epoch of a JSON line's @timestamp (0 when it has none). */
static double parse_ts(const char *line)
{
    const char *p = strstr(line, "\"@timestamp\":\""), *q;
    uint64_t ns;
    if (!p || !(q = strchr(p + 14, '"')) || edr_jsonl_time_parse(p + 14, (size_t)(q - p - 14), &ns))
        return 0;
    return (double)ns / 1e9;
}

/* A batch that does not fill up by count ships when sensor.batch_interval
 * has passed since its first event: not sooner, and not never (the batch
 * timer is armed when a batch opens, not run periodically). Health events
 * every 100 ms go through the batcher (the synthetic source ships its own
 * batches); with a 400 ms interval, the first of a batch reaches the output
 * ~400 ms after it was made, the others less. */
static void test_batch_interval(void **state)
{
    (void)state;
    char outp[4400];
    snprintf(outp, sizeof(outp), "%s/batches.jsonl", dir);
    FILE *lf = fopen(logp, "w");
    fclose(lf);
    const char *args[] = {sdflag, "--source=synth", "--hosts=1", "--rate=1", "--output=jsonl",
                          "--set", "sensor.batch_interval=400ms", "--set",
                          "sensor.health_interval=100ms", NULL};
    pid_t pid = st_spawn_sensor_out(args, logp, outp);
    running = pid;
    /* when the output grew: (real time, size) */
    enum { MAX_SAMPLES = 4096 };
    static double when[MAX_SAMPLES];
    static off_t upto[MAX_SAMPLES];
    int ns = 0;
    double t0 = st_now();
    while (st_now() - t0 < 4 && ns < MAX_SAMPLES) {
        struct stat stt;
        if (stat(outp, &stt) == 0 && stt.st_size > (ns ? upto[ns - 1] : 0)) {
            when[ns] = real_now();
            upto[ns++] = stt.st_size;
        }
        usleep(1000);
    }
    kill(pid, SIGTERM);
    assert_int_equal(st_wait(pid, 20), 0);
    running = -1;
    /* each health line's wait: from its @timestamp to when it was in the file */
    FILE *f = fopen(outp, "r");
    assert_non_null(f);
    char line[8192];
    off_t off = 0;
    int n_health = 0, n_long = 0, j = 0;
    double max_wait = 0;
    while (fgets(line, sizeof(line), f)) {
        off += (off_t)strlen(line);
        while (j < ns && upto[j] < off)
            j++;
        if (j == ns)
            break; /* written by the final flush, after sampling stopped */
        if (!strstr(line, "\"sensor_health\""))
            continue;
        double wait = when[j] - parse_ts(line);
        n_health++;
        n_long += wait >= 0.25; /* the first of a batch: ~400 ms */
        if (wait > max_wait)
            max_wait = wait;
    }
    fclose(f);
    if (n_health < 20 || n_long < n_health / 8 || max_wait > 0.9) {
        st_dump_log(logp);
        fail_msg("%d health events in 4 s, %d waited 250 ms or more for their batch, the "
                 "longest %.0f ms (batch interval 400 ms)",
                 n_health, n_long, max_wait * 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test_teardown(test_output_write_error, st_cleanup),
        cmocka_unit_test_teardown(test_replay_read_error, st_cleanup),
        cmocka_unit_test_teardown(test_synth_truth, st_cleanup),
        cmocka_unit_test_teardown(test_lock_reload_term, st_cleanup),
        cmocka_unit_test_teardown(test_batch_interval, st_cleanup),
        cmocka_unit_test_teardown(test_trial_warnings, st_cleanup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
