/* Replay of both Log4Shell datasets through edr-sensor --output jsonl: counts per event type, parent links. */
#include "edr_test.h"
#include "sensor_test.h"

#include "edr/event.h"
#include "edr/jsonl.h"

#include <jansson.h>

#define LINUX_DS   EDR_DATASETS "/otrf-log4shell/linux-sysmon-syslog.jsonl"
#define WINDOWS_DS EDR_DATASETS "/otrf-log4shell/windows-sysmon-eventdata.jsonl"

/* Sysmon event id -> our event kind (issue 3's mapping); 0: not mapped. */
static int kind_of_sysmon(int id)
{
    switch (id) {
    case 1:
        return EDR__V1__EVENT__BODY_PROCESS_START;
    case 3:
        return EDR__V1__EVENT__BODY_NETWORK;
    case 5:
        return EDR__V1__EVENT__BODY_PROCESS_EXIT;
    case 7:
        return EDR__V1__EVENT__BODY_FILE_EXEC;
    case 10:
        return EDR__V1__EVENT__BODY_PROCESS_ACCESS;
    case 11:
        return EDR__V1__EVENT__BODY_FILE_CREATE;
    case 22:
        return EDR__V1__EVENT__BODY_DNS_QUERY;
    case 23:
    case 26:
        return EDR__V1__EVENT__BODY_FILE_DELETE;
    default:
        return 0;
    }
}

/* Expected counts straight from the raw file (jansson; the XML's EventID by
 * string search), independent of the parser under test. */
static void expected_counts(const char *path, uint64_t *want)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            continue;
        int id = 0;
        json_t *sm = json_object_get(j, "SyslogMessage");
        if (json_is_string(sm)) {
            const char *p = strstr(json_string_value(sm), "<EventID>");
            if (p)
                id = atoi(p + 9);
        } else {
            id = (int)json_integer_value(json_object_get(j, "EventID"));
        }
        int k = kind_of_sysmon(id);
        if (k)
            want[k]++;
        json_decref(j);
    }
    free(line);
    fclose(f);
}

typedef struct {
    uint8_t id[16], parent[16];
    uint32_t pid;
    int kind;
} rec_t;

typedef struct {
    rec_t *r;
    size_t n;
    uint64_t kinds[EDR_EVENT_KINDS];
} out_t;

static void run_replay(const char *ds, out_t *o)
{
    char dir[] = "/tmp/edr-replay-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src[4200], sd[4300], out[4300], log[4300];
    snprintf(src, sizeof(src), "--source=sysmon:%s", ds);
    snprintf(sd, sizeof(sd), "--state-dir=%s/state", dir);
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    snprintf(log, sizeof(log), "%s/sensor.log", dir);
    const char *args[] = {src, sd, "--output=jsonl", NULL};
    /* stdout to the output file: spawn through a small redirect */
    const char *argv[8];
    char prog[4096];
    snprintf(prog, sizeof(prog), "%s/edr-sensor", EDR_BIN_DIR);
    argv[0] = prog;
    for (int i = 0; args[i]; i++)
        argv[i + 1] = args[i], argv[i + 2] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int rc = st_wait(pid, 60);
    if (rc)
        st_dump_log(log);
    assert_int_equal(rc, 0);

    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    memset(o, 0, sizeof(*o));
    o->r = calloc(4096, sizeof(*o->r));
    while ((len = getline(&line, &cap, f)) > 0) {
        Edr__V1__Event *e;
        uint64_t t;
        uint8_t host[16];
        const char *hn;
        char msg[128];
        int prc = edr_jsonl_parse_line(line, (size_t)len, &a, &e, &t, host, &hn, msg, sizeof(msg));
        if (prc)
            fail_msg("output line does not parse back: %s: %.200s", msg, line);
        if (e->body_case == EDR__V1__EVENT__BODY_SENSOR_HEALTH)
            continue;
        o->kinds[e->body_case]++;
        assert_true(o->n < 4096);
        rec_t *r = &o->r[o->n++];
        r->kind = e->body_case;
        r->pid = e->pid;
        if (e->entity_id.len == 16)
            memcpy(r->id, e->entity_id.data, 16);
        if (e->parent_entity_id.len == 16)
            memcpy(r->parent, e->parent_entity_id.data, 16);
        edr_arena_reset(&a);
    }
    free(line);
    fclose(f);
    edr_arena_close(&a);
    char cmd[4300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* pid of the process an entity id names (any event it acted in); 0: unknown */
static uint32_t pid_of(const out_t *o, const uint8_t *id)
{
    static const uint8_t zero[16];
    if (!memcmp(id, zero, 16))
        return 0;
    for (size_t i = 0; i < o->n; i++)
        if (!memcmp(o->r[i].id, id, 16))
            return o->r[i].pid;
    return 0;
}

/* The ProcessStart of pid must name a parent that resolves to ppid. */
static void assert_parent(const out_t *o, uint32_t pid, uint32_t ppid)
{
    for (size_t i = 0; i < o->n; i++) {
        const rec_t *r = &o->r[i];
        if (r->kind == EDR__V1__EVENT__BODY_PROCESS_START && r->pid == pid) {
            uint32_t got = pid_of(o, r->parent);
            if (got != ppid)
                fail_msg("process %u: parent resolves to pid %u, expected %u", pid, got, ppid);
            return;
        }
    }
    fail_msg("no process start for pid %u", pid);
}

static void check_counts(const char *ds, const out_t *o)
{
    uint64_t want[EDR_EVENT_KINDS] = {0};
    expected_counts(ds, want);
    for (int k = 0; k < EDR_EVENT_KINDS; k++) {
        if (want[k] != o->kinds[k])
            fail_msg("%s: %s: %llu events, expected %llu", ds,
                     edr_event_kind_name((Edr__V1__Event__BodyCase)k),
                     (unsigned long long)o->kinds[k], (unsigned long long)want[k]);
    }
}

static void test_replay_linux(void **state)
{
    (void)state;
    out_t o;
    run_replay(LINUX_DS, &o);
    check_counts(LINUX_DS, &o);
    assert_true(o.kinds[EDR__V1__EVENT__BODY_PROCESS_START] > 10);
    /* the attack chain of the ground truth, link by link */
    assert_parent(&o, 17790, 1340);  /* bash -c {echo,...}|{base64,-d}|{bash,-i} <- java */
    assert_parent(&o, 17793, 17790); /* base64 -d */
    assert_parent(&o, 17794, 17790); /* bash -i */
    assert_parent(&o, 17832, 17806); /* whoami <- reverse shell bash */
    free(o.r);
}

static void test_replay_windows(void **state)
{
    (void)state;
    out_t o;
    run_replay(WINDOWS_DS, &o);
    check_counts(WINDOWS_DS, &o);
    assert_parent(&o, 2084, 3936);  /* powershell -Enc <- tomcat9 */
    assert_parent(&o, 11780, 2084); /* conhost <- powershell */
    free(o.r);
}

/* Bad input: a file of garbage lines and a missing file. */
/* --rate: records come out as they come, a batch at most sensor.batch_interval
 * after its first (they waited until 1,000 had come: at --rate 5 the first
 * output took 200 s, review-1206k F8). At 20 records a second, 200 ms
 * batches, some are out after 2 s while the replay runs on. */
static void test_replay_rate_ships_on_time(void **state)
{
    (void)state;
    char dir[] = "/tmp/edr-replay-rate-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sd[4300], src[4400], log[4300], out[4300];
    snprintf(sd, sizeof(sd), "--state-dir=%s/state", dir);
    snprintf(src, sizeof(src), "--source=sysmon:%s", LINUX_DS);
    snprintf(log, sizeof(log), "%s/sensor.log", dir);
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    const char *args[] = {src,
                          sd,
                          "--output=jsonl",
                          "--rate=20",
                          "--set=sensor.batch_interval=200ms",
                          "--set=sensor.health_interval=1h",
                          NULL};
    pid_t pid = st_spawn_sensor_out(args, log, out);
    assert_true(pid > 0);
    usleep(2000000);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char buf[8192];
    int events = 0;
    while (fgets(buf, sizeof(buf), f))
        events += strstr(buf, "\"sensor_health\"") == NULL;
    fclose(f);
    kill(pid, SIGTERM);
    assert_int_equal(st_wait(pid, 30), 0);
    if (events < 10 || events > 60) st_dump_log(log);
    assert_true(events >= 10 && events <= 60); /* ~40 due; the file has 93 */
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_replay_bad_input(void **state)
{
    (void)state;
    char dir[] = "/tmp/edr-replay-bad-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char bad[4200], sd[4300], src[4400], log[4300];
    snprintf(bad, sizeof(bad), "%s/bad.jsonl", dir);
    FILE *f = fopen(bad, "w");
    fputs("not json at all\n{\"EventID\": \"x\"}\n[1,2]\n\n", f);
    /* one good line from the dataset in the middle: it must come through */
    FILE *ds = fopen(LINUX_DS, "r");
    char *line = NULL;
    size_t cap = 0;
    assert_true(getline(&line, &cap, ds) > 0);
    fputs(line, f);
    free(line);
    fclose(ds);
    fputs("{\"truncated\": \n", f);
    fputs("{\"a\": \x1b[31m}\n", f); /* an escape sequence, quoted in the error message */
    fclose(f);
    snprintf(sd, sizeof(sd), "--state-dir=%s/state", dir);
    snprintf(src, sizeof(src), "--source=sysmon:%s", bad);
    snprintf(log, sizeof(log), "%s/sensor.log", dir);
    const char *args[] = {src, sd, "--output=null", NULL};
    pid_t pid = st_spawn_sensor(args, log);
    assert_int_equal(st_wait(pid, 30), 0);
    /* the bad lines are reported with their line numbers, the good one counted */
    f = fopen(log, "r");
    char buf[1024];
    int l1 = 0, l6 = 0, l7 = 0, summary = 0, raw_esc = 0;
    while (fgets(buf, sizeof(buf), f)) {
        if (strstr(buf, "bad.jsonl:1:"))
            l1 = 1;
        if (strstr(buf, "bad.jsonl:6:"))
            l6 = 1;
        if (strstr(buf, "bad.jsonl:7:") && strstr(buf, "\\x1b"))
            l7 = 1;
        if (strchr(buf, 0x1b))
            raw_esc = 1;
        if (strstr(buf, "7 lines, 1 events"))
            summary = 1;
    }
    fclose(f);
    if (!l1 || !l6 || !l7 || raw_esc || !summary)
        st_dump_log(log);
    assert_true(l1 && l6 && l7 && !raw_esc && summary);

    /* --max-events counts the records waiting in a batch: 3 means 3 */
    char out[4300];
    snprintf(out, sizeof(out), "%s/max.jsonl", dir);
    snprintf(src, sizeof(src), "--source=sysmon:%s", LINUX_DS);
    const char *args3[] = {src, sd, "--output=jsonl", "--max-events=3", NULL};
    pid = st_spawn_sensor_out(args3, log, out);
    assert_int_equal(st_wait(pid, 30), 0);
    f = fopen(out, "r");
    assert_non_null(f);
    int lines = 0, sources = 0;
    while (fgets(buf, sizeof(buf), f))
        if (strchr(buf, '\n')) {
            lines++;
            if (!strstr(buf, "sensor_health"))
                sources++;
        }
    fclose(f);
    if (sources != 3)
        fail_msg("--max-events=3: %d events from the file (%d lines)", sources, lines);

    /* a missing file: clear error, exit 1 */
    snprintf(src, sizeof(src), "--source=sysmon:%s/nope.jsonl", dir);
    const char *args2[] = {src, sd, "--output=null", NULL};
    pid = st_spawn_sensor(args2, log);
    assert_int_equal(st_wait(pid, 30), 1);
    char cmd[4300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_linux),
        cmocka_unit_test(test_replay_windows),
        cmocka_unit_test_teardown(test_replay_bad_input, st_cleanup),
        cmocka_unit_test_teardown(test_replay_rate_ships_on_time, st_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
