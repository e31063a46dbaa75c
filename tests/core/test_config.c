/* Configuration: defaults, YAML file, environment, --set, and clear errors with file and line. */
#include "edr_test.h"

#include "edr/config.h"
#include "edr/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *write_tmp(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/edr-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    edr_config_t *c = edr_config_new();
    assert_string_equal(edr_config_str(c, "kafka.brokers"), "embedded");
    assert_int_equal(edr_config_size(c, "frame.max_raw_bytes"), 64u << 20);
    assert_int_equal(edr_config_duration_ns(c, "sensor.batch_interval"), 100000000ull);
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 1000);
    edr_config_destroy(c);
}

static int cb(const char *k, const char *v, void *ud)
{
    if (!strcmp(k, "security.protocol") && !strcmp(v, "SASL_SSL"))
        (*(int *)ud)++;
    return 0;
}

static void test_file_env_flag_precedence(void **state)
{
    (void)state;
    char *p = write_tmp("kafka:\n  brokers: \"10.1.1.1:9092\"\n  topic_prefix: prod.\n"
                        "  properties:\n    security.protocol: SASL_SSL\n"
                        "sensor:\n  batch_events: 500\n  batch_interval: 250ms\n");
    edr_config_t *c = edr_config_new();
    char err[512];
    assert_int_equal(edr_config_load_file(c, p, err, sizeof(err)), 0);
    assert_string_equal(edr_config_str(c, "kafka.brokers"), "10.1.1.1:9092");
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 500);
    char *envp[] = {"EDR_SENSOR_BATCH_EVENTS=700", "EDR_UNRELATED=1", NULL};
    assert_int_equal(edr_config_load_env(c, envp, err, sizeof(err)), 0);
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 700); /* env beats file */
    assert_int_equal(edr_config_set_kv(c, "sensor.batch_events=900", "--set", err, sizeof(err)), 0);
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 900); /* flag beats env */
    assert_int_equal(edr_config_duration_ns(c, "sensor.batch_interval"), 250000000ull);
    int found = 0;
    assert_int_equal(edr_config_foreach(c, "kafka.properties.", cb, &found), 0);
    assert_int_equal(found, 1);
    edr_config_destroy(c);
    unlink(p);
}

/* Command-line settings keep their order (the last of a key wins), any count,
 * any length; a KEY=VALUE without '=' is refused and not added. */
static void test_command_line_args(void **state)
{
    (void)state;
    edr_config_args_t a = {0};
    char big[9000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (int i = 0; i < 300; i++)
        assert_int_equal(edr_config_args_add(&a, "kafka.brokers", "h:1"), 0);
    assert_int_equal(edr_config_args_add(&a, NULL, "sensor.batch_events=900"), 0);
    assert_int_equal(edr_config_args_add(&a, "kafka.topic_prefix", big), 0);
    assert_int_equal(edr_config_args_add(&a, NULL, "no-equals"), EDR_EINVAL);
    assert_int_equal(a.n, 302);
    assert_int_equal(edr_config_args_add(&a, "sensor.batch_events", "901"), 0);
    edr_config_t *c = edr_config_new();
    assert_int_equal(edr_config_load_standard(c, NULL, a.sets, a.n), 0);
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 901);
    assert_int_equal(strlen(edr_config_str(c, "kafka.topic_prefix")), sizeof(big) - 1);
    edr_config_destroy(c);
    edr_config_args_free(&a);
    assert_int_equal(a.n, 0);
    edr_config_args_free(&a); /* twice is harmless */
}

static void test_errors_name_file_line_setting(void **state)
{
    (void)state;
    char err[512];
    edr_config_t *c = edr_config_new();
    char *p = write_tmp("log:\n  level: info\nsensor:\n  batch_interval: soon\n");
    assert_int_equal(edr_config_load_file(c, p, err, sizeof(err)), EDR_ECONFIG);
    char want[256];
    snprintf(want, sizeof(want), "%s:4: sensor.batch_interval: 'soon' is not a duration", p);
    assert_non_null(strstr(err, want));
    unlink(p);

    p = write_tmp("kafka:\n  brokerz: x\n");
    assert_int_equal(edr_config_load_file(c, p, err, sizeof(err)), EDR_ECONFIG);
    assert_non_null(strstr(err, ":2: kafka.brokerz: unknown setting"));
    unlink(p);

    p = write_tmp("kafka: [1, 2\n");
    assert_int_equal(edr_config_load_file(c, p, err, sizeof(err)), EDR_ECONFIG);
    assert_non_null(strstr(err, p));
    unlink(p);

    p = write_tmp("- a\n- b\n");
    assert_int_equal(edr_config_load_file(c, p, err, sizeof(err)), EDR_ECONFIG);
    assert_non_null(strstr(err, "top level must be a mapping"));
    unlink(p);

    assert_int_equal(edr_config_load_file(c, "/nonexistent/edr.yaml", err, sizeof(err)), EDR_EIO);
    assert_non_null(strstr(err, "/nonexistent/edr.yaml"));
    /* a directory is said to be one (the parser said "byte 0: input error") */
    assert_int_equal(edr_config_load_file(c, "/tmp", err, sizeof(err)), EDR_EIO);
    assert_non_null(strstr(err, "/tmp: cannot open: Is a directory"));

    char *envp[] = {"EDR_FRAME_MAX_RAW_BYTES=lots", NULL};
    assert_int_equal(edr_config_load_env(c, envp, err, sizeof(err)), EDR_ECONFIG);
    assert_non_null(strstr(err, "EDR_FRAME_MAX_RAW_BYTES"));
    assert_int_equal(edr_config_set_kv(c, "novalue", "--set", err, sizeof(err)), EDR_ECONFIG);
    assert_int_equal(edr_config_set_kv(c, "log.level=loud", "--set", err, sizeof(err)), EDR_ECONFIG);
    /* nothing changed by the failures */
    assert_int_equal(edr_config_size(c, "frame.max_raw_bytes"), 64u << 20);
    assert_string_equal(edr_config_str(c, "log.level"), "info");
    edr_config_destroy(c);
}

static void test_parsers(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(edr_parse_size("64MiB", &v), 0);
    assert_int_equal(v, 64u << 20);
    assert_int_equal(edr_parse_size("10", &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(edr_parse_size("-1", &v), EDR_EINVAL);
    assert_int_equal(edr_parse_size("99999999999999999999GiB", &v), EDR_EINVAL);
    assert_int_equal(edr_parse_duration("8h", &v), 0);
    assert_int_equal(v, 8ull * 3600 * 1000000000ull);
    assert_int_equal(edr_parse_duration("100", &v), EDR_EINVAL); /* a unit is required */
    assert_int_equal(edr_parse_duration("0", &v), 0);
    assert_int_equal(edr_parse_size("1 KiB", &v), 0); /* a space before the unit */
    assert_int_equal(v, 1024);
    assert_int_equal(edr_parse_duration("1 s", &v), EDR_EINVAL);
    assert_int_equal(edr_parse_duration("300000d", &v), EDR_EINVAL); /* past 2^64 ns */
    assert_int_equal(edr_parse_size("3XB", &v), EDR_EINVAL);
}

static void test_every_setting_documented(void **state)
{
    (void)state;
    /* docs/config.md must name every setting the code knows */
    FILE *f = fopen(EDR_SOURCE_DIR "/docs/config.md", "r");
    assert_non_null(f);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = 0;
    fclose(f);
    char *defs = NULL;
    size_t dl = 0;
    FILE *m = open_memstream(&defs, &dl);
    edr_config_write_defaults(m);
    fclose(m);
    /* every "# help (type; env EDR_X)" line names an env var: check each in the docs */
    int checked = 0;
    for (char *p = strstr(defs, "env EDR_"); p; p = strstr(p + 1, "env EDR_")) {
        char name[128];
        sscanf(p + 4, "%127[A-Z0-9_]", name);
        if (!strstr(doc, name))
            fail_msg("docs/config.md does not document %s", name);
        checked++;
    }
    assert_true(checked > 20);
    /* the defaults are one YAML mapping: each section once */
    char seen[16][32];
    int n_sec = 0;
    for (char *p = defs; (p = strchr(p, '\n')) != NULL; p++) {
        char key[32];
        if (p[1] < 'a' || p[1] > 'z' || sscanf(p + 1, "%31[a-z_]:", key) != 1) continue;
        for (int i = 0; i < n_sec; i++)
            if (!strcmp(seen[i], key)) fail_msg("section %s: appears twice in the defaults", key);
        assert_true(n_sec < 16);
        strcpy(seen[n_sec++], key);
    }
    assert_true(n_sec >= 5);
    free(defs);
}

/* Loads text as a config file into a fresh configuration; returns the
 * result, err holding the message with the file name replaced by "F". */
static int load_text(const char *text, size_t len, char *err, size_t errlen, edr_config_t **out)
{
    char path[64];
    strcpy(path, "/tmp/edr-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    edr_config_t *c = edr_config_new();
    err[0] = 0;
    int rc = edr_config_load_file(c, path, err, errlen);
    unlink(path);
    /* "F" for the path, so that messages compare exactly */
    char *p = strstr(err, path);
    if (p) {
        char tmp[1024];
        snprintf(tmp, sizeof(tmp), "%.*sF%s", (int)(p - err), err, p + strlen(path));
        snprintf(err, errlen, "%s", tmp);
    }
    if (out)
        *out = c;
    else
        edr_config_destroy(c);
    return rc;
}

static void expect_load_error(const char *text, size_t len, const char *want)
{
    char err[1024];
    int rc = load_text(text, len, err, sizeof(err), NULL);
    if (rc != EDR_ECONFIG || strcmp(err, want) != 0)
        fail_msg("loading %.*s: rc %d, '%s' (expected '%s')", (int)len, text, rc, err, want);
}
#define EXPECT_LOAD_ERROR(text, want) expect_load_error(text, sizeof(text) - 1, want)

/* A second document after "---" would be ignored: it is an error. */
static void test_second_document_refused(void **state)
{
    (void)state;
    EXPECT_LOAD_ERROR("log: {level: debug}\n---\nkafka: {brokers: real:9092}\n",
                      "F:2: a second YAML document is not supported");
    EXPECT_LOAD_ERROR("log: {level: debug}\n...\n---\nkafka:\n  brokers: real:9092\n",
                      "F:3: a second YAML document is not supported");
    /* one document with explicit markers is fine */
    char err[512];
    edr_config_t *c;
    assert_int_equal(load_text("---\nlog: {level: debug}\n...\n", 27, err, sizeof(err), &c), 0);
    assert_string_equal(edr_config_str(c, "log.level"), "debug");
    edr_config_destroy(c);
}

/* The same full setting given twice in a file (in one mapping, in a repeated
 * section, or dotted and nested) is an error naming both lines. */
static void test_key_given_twice(void **state)
{
    (void)state;
    EXPECT_LOAD_ERROR("sensor:\n  batch_events: 10\n  batch_events: 20\n",
                      "F:3: sensor.batch_events: given twice (first at line 2)");
    EXPECT_LOAD_ERROR(
        "sensor:\n  batch_events: 10\nlog:\n  level: info\nsensor:\n  batch_events: 20\n",
        "F:6: sensor.batch_events: given twice (first at line 2)");
    EXPECT_LOAD_ERROR("kafka:\n  embedded.brokers: 1\n  embedded:\n    brokers: 2\n",
                      "F:4: kafka.embedded.brokers: given twice (first at line 2)");
    EXPECT_LOAD_ERROR("kafka:\n  properties:\n    acks: all\n    acks: 1\n",
                      "F:4: kafka.properties.acks: given twice (first at line 3)");
    /* a section repeated with different settings is fine */
    char err[512];
    edr_config_t *c;
    assert_int_equal(
        load_text("sensor: {batch_events: 10}\nlog: {level: warn}\nsensor: {rate: 5}\n",
                  sizeof("sensor: {batch_events: 10}\nlog: {level: warn}\nsensor: {rate: 5}\n") - 1,
                  err, sizeof(err), &c),
        0);
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 10);
    assert_int_equal(edr_config_int(c, "sensor.rate"), 5);
    edr_config_destroy(c);
}

/* YAML nulls are "no value", not the strings "~", "null" or ""; quoted they are strings. */
static void test_null_and_nul_refused(void **state)
{
    (void)state;
    EXPECT_LOAD_ERROR("sensor:\n  state_dir: ~\n", "F:2: sensor.state_dir: no value");
    EXPECT_LOAD_ERROR("sensor:\n  state_dir: null\n", "F:2: sensor.state_dir: no value");
    EXPECT_LOAD_ERROR("sensor:\n  state_dir: NULL\n", "F:2: sensor.state_dir: no value");
    EXPECT_LOAD_ERROR("kafka:\n  brokers:\nlog:\n  level: info\n", "F:2: kafka.brokers: no value");
    EXPECT_LOAD_ERROR("kafka:\n  properties:\n    acks:\n", "F:3: kafka.properties.acks: no value");
    EXPECT_LOAD_ERROR("kafka:\n  topic_prefix: Null\n", "F:2: kafka.topic_prefix: no value");
    EXPECT_LOAD_ERROR("kafka:\n  properties:\n    acks: ~\n",
                      "F:3: kafka.properties.acks: no value");
    char err[512];
    edr_config_t *c;
    const char *quoted = "kafka:\n  topic_prefix: \"\"\nhost:\n  name: '~'\n";
    assert_int_equal(load_text(quoted, strlen(quoted), err, sizeof(err), &c), 0);
    assert_string_equal(edr_config_str(c, "kafka.topic_prefix"), "");
    assert_string_equal(edr_config_str(c, "host.name"), "~");
    edr_config_destroy(c);
    /* an empty section (its settings commented out) is no setting, not an error */
    const char *empty =
        "sensor:\n  # batch_events: 5\nkafka:\n  properties:\nlog:\n  level: warn\n";
    assert_int_equal(load_text(empty, strlen(empty), err, sizeof(err), &c), 0);
    assert_string_equal(edr_config_str(c, "log.level"), "warn");
    assert_int_equal(edr_config_int(c, "sensor.batch_events"), 1000);
    edr_config_destroy(c);
    /* an embedded NUL is refused, in a value or in a name */
    EXPECT_LOAD_ERROR("kafka:\n  brokers: \"a:1\\0b:2\"\n",
                      "F:2: kafka.brokers: the value contains a NUL byte");
    EXPECT_LOAD_ERROR("sensor:\n  \"batch_events\\0junk\": 7\n",
                      "F:2: setting names must not contain a NUL byte");
}

/* Reader errors (bad UTF-8) name their line and byte (from 0): libyaml sets
 * no line for them, and they were all reported at line 1. */
static void test_bad_utf8_place(void **state)
{
    (void)state;
    EXPECT_LOAD_ERROR("log:\n  level: \xff\xfe\n",
                      "F:2: byte 14: invalid leading UTF-8 octet (#FF)");
    EXPECT_LOAD_ERROR("log:\n  level: info\n\nhost:\n  name: a\xc3(\n",
                      "F:5: byte 36: invalid trailing UTF-8 octet (#28)");
    /* parser errors still name the line */
    char err[512];
    assert_int_equal(load_text("log:\n  level: info\n kafka: [\n", 28, err, sizeof(err), NULL),
                     EDR_ECONFIG);
    assert_non_null(strstr(err, "F:3: "));
}

/* Aliases are refused before they expand: the 466-byte "billion laughs" file
 * (1.1e5 entries, 47 s before) fails at once, and so does a cyclic alias. */
static void test_aliases_refused(void **state)
{
    (void)state;
    const char *laughs =
        "kafka:\n  properties:\n"
        "    l0: &l0 {a: x, b: x, c: x, d: x, e: x, f: x, g: x, h: x, i: x, j: x}\n"
        "    l1: &l1 {a: *l0, b: *l0, c: *l0, d: *l0, e: *l0, f: *l0, g: *l0, h: *l0, i: *l0, j: "
        "*l0}\n"
        "    l2: &l2 {a: *l1, b: *l1, c: *l1, d: *l1, e: *l1, f: *l1, g: *l1, h: *l1, i: *l1, j: "
        "*l1}\n"
        "    l3: &l3 {a: *l2, b: *l2, c: *l2, d: *l2, e: *l2, f: *l2, g: *l2, h: *l2, i: *l2, j: "
        "*l2}\n"
        "    l4: &l4 {a: *l3, b: *l3, c: *l3, d: *l3, e: *l3, f: *l3, g: *l3, h: *l3, i: *l3, j: "
        "*l3}\n";
    char err[512];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(load_text(laughs, strlen(laughs), err, sizeof(err), NULL), EDR_ECONFIG);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_string_equal(err, "F:4: aliases are not supported");
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    EXPECT_LOAD_ERROR("kafka: &a\n  properties: *a\n", "F:2: aliases are not supported");
    EXPECT_LOAD_ERROR("sensor:\n  rate: &v 5\n  synth_seed: *v\n",
                      "F:3: aliases are not supported");
    /* an anchor used nowhere else is harmless */
    edr_config_t *c;
    assert_int_equal(load_text("sensor: &s\n  rate: 7\n", 21, err, sizeof(err), &c), 0);
    assert_int_equal(edr_config_int(c, "sensor.rate"), 7);
    edr_config_destroy(c);
}

/* Pass-through maps hold at most 1024 entries; replacing one does not count. */
static void test_passthrough_capped(void **state)
{
    (void)state;
    edr_config_t *c = edr_config_new();
    char err[512], key[64];
    for (int i = 0; i < 1024; i++) {
        snprintf(key, sizeof(key), "kafka.properties.k%d", i);
        assert_int_equal(edr_config_set(c, key, "v", "test", err, sizeof(err)), 0);
    }
    assert_int_equal(edr_config_set(c, "kafka.properties.k5", "w", "test", err, sizeof(err)), 0);
    assert_int_equal(edr_config_set(c, "kafka.properties.one_more", "v", "test", err, sizeof(err)),
                     EDR_ECONFIG);
    assert_string_equal(
        err, "test: kafka.properties.one_more: too many kafka.properties entries (at most 1024)");
    edr_config_destroy(c);
}

/* Reads what edr_config_load_env writes to stderr. */
static char *env_warnings(char *const *envp)
{
    static char buf[8192];
    char err[512];
    edr_config_t *c = edr_config_new();
    fflush(stderr);
    int saved = dup(2);
    FILE *t = tmpfile();
    assert_non_null(t);
    dup2(fileno(t), 2);
    assert_int_equal(edr_config_load_env(c, envp, err, sizeof(err)), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(t);
    size_t n = fread(buf, 1, sizeof(buf) - 1, t);
    buf[n] = 0;
    fclose(t);
    edr_config_destroy(c);
    return buf;
}

/* An EDR_ variable that is no setting (a typo) is warned about, not an error;
 * the project's own other EDR_ variables are not. */
static void test_env_unknown_warned(void **state)
{
    (void)state;
    char *typo[] = {"PATH=/bin", "EDR_KAFKA_BROKER=kafka-1:9093", "EDR_KAFKA_BROKERS=embedded",
                    NULL};
    char *out = env_warnings(typo);
    assert_non_null(strstr(out, "environment EDR_KAFKA_BROKER: no such setting, ignored"));
    assert_null(strstr(out, "EDR_KAFKA_BROKERS:"));
    /* the same environment again (a reload): said once per process */
    out = env_warnings(typo);
    if (*out)
        fail_msg("warned again on reload: %s", out);
    char *ours[] = {"EDR_CONFIG=/etc/edr.yaml",
                    "EDR_BUILD=build",
                    "EDR_WERROR=ON",
                    "EDR_ZSTD_LEVEL=3",
                    "EDR_TEST_SEED=5",
                    "EDR_TEST_KEEP_LOGS=1",
                    "EDR_SANITIZE=1",
                    "EDR_DATASETS=/d",
                    "EDR_SHARED_DIR=/s",
                    "EDR_LOG_LEVEL=info",
                    NULL};
    out = env_warnings(ours);
    if (*out)
        fail_msg("unexpected warnings: %s", out);
}

/* Numeric settings are bounded: a value the consumer would cast into
 * something else is refused, naming the range; every default is in range. */
static void test_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *key, *def;
    } table[] = {
#define S(k, t, d, lo, hi, h) {k, d},
#include "../../core/src/settings.def"
#undef S
    };
    edr_config_t *c = edr_config_new();
    char err[512];
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (edr_config_set(c, table[i].key, table[i].def, "default", err, sizeof(err)) != 0)
            fail_msg("default out of range: %s", err);
    static const struct {
        const char *kv, *err; /* err NULL: accepted */
    } cases[] = {
        {"frame.max_raw_bytes=4GiB",
         "--set: frame.max_raw_bytes: '4GiB' is out of range 1KiB..4294967295B"},
        {"frame.max_raw_bytes=4100MiB",
         "--set: frame.max_raw_bytes: '4100MiB' is out of range 1KiB..4294967295B"},
        {"frame.max_raw_bytes=4294967295", NULL},
        {"frame.max_raw_bytes=0",
         "--set: frame.max_raw_bytes: '0' is out of range 1KiB..4294967295B"},
        {"frame.zstd_level=100", "--set: frame.zstd_level: '100' is out of range 1..19"},
        {"frame.zstd_level=-50000", "--set: frame.zstd_level: '-50000' is out of range 1..19"},
        {"frame.zstd_level=0", "--set: frame.zstd_level: '0' is out of range 1..19"},
        {"frame.zstd_level=19", NULL},
        {"frame.dict_id=4294967296",
         "--set: frame.dict_id: '4294967296' is out of range 0..4294967295"},
        {"analyzer.rca_max_nodes=-1",
         "--set: analyzer.rca_max_nodes: '-1' is out of range 1..10000000"},
        {"analyzer.rca_max_chain=-1",
         "--set: analyzer.rca_max_chain: '-1' is out of range 1..1000000"},
        {"analyzer.rca_max_hosts=-1",
         "--set: analyzer.rca_max_hosts: '-1' is out of range 1..100000"},
        {"analyzer.rca_max_hosts=0",
         "--set: analyzer.rca_max_hosts: '0' is out of range 1..100000"},
        {"analyzer.rca_max_fanin=4294967297",
         "--set: analyzer.rca_max_fanin: '4294967297' is out of range 1..1000000"},
        {"collector.host_rate_limit=-5",
         "--set: collector.host_rate_limit: '-5' is out of range 0..1000000000"},
        {"collector.host_rate_limit=2000", NULL},
        {"sensor.rate=-1", "--set: sensor.rate: '-1' is out of range 0..1000000000"},
        {"collector.retention=200000d",
         "--set: collector.retention: '200000d' is out of range 0..106751d"},
        {"collector.retention=106751d", NULL},
        {"collector.retention=0", NULL},
        {"sensor.batch_interval=9223372036854775808ns",
         "--set: sensor.batch_interval: '9223372036854775808ns' is out of range 1ms..106751d"},
        {"sensor.batch_interval=0", "--set: sensor.batch_interval: '0' is out of range 1ms..106751d"},
        {"sensor.health_interval=500us",
         "--set: sensor.health_interval: '500us' is out of range 1ms..106751d"},
        {"sensor.batch_events=1000001",
         "--set: sensor.batch_events: '1000001' is out of range 1..1000000"},
        {"sensor.spool_max_bytes=16TiB", NULL}, /* sizes without bounds stay unbounded */
        {"sensor.synth_seed=-7", NULL},         /* and so do ints */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = edr_config_set_kv(c, cases[i].kv, "--set", err, sizeof(err));
        if (cases[i].err ? (rc != EDR_ECONFIG || strcmp(err, cases[i].err) != 0) : rc != 0)
            fail_msg("%s: rc %d '%s' (expected %s)", cases[i].kv, rc, rc ? err : "",
                     cases[i].err ? cases[i].err : "accepted");
    }
    /* the same check for a file and the environment */
    EXPECT_LOAD_ERROR("frame:\n  zstd_level: 20\n",
                      "F:2: frame.zstd_level: '20' is out of range 1..19");
    char *envp[] = {"EDR_ANALYZER_RCA_MAX_NODES=0", NULL};
    assert_int_equal(edr_config_load_env(c, envp, err, sizeof(err)), EDR_ECONFIG);
    assert_string_equal(err, "environment EDR_ANALYZER_RCA_MAX_NODES: analyzer.rca_max_nodes: '0' "
                             "is out of range 1..10000000");
    edr_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_env_flag_precedence),
        cmocka_unit_test(test_command_line_args),
        cmocka_unit_test(test_errors_name_file_line_setting),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_every_setting_documented),
        cmocka_unit_test(test_second_document_refused),
        cmocka_unit_test(test_key_given_twice),
        cmocka_unit_test(test_null_and_nul_refused),
        cmocka_unit_test(test_bad_utf8_place),
        cmocka_unit_test(test_aliases_refused),
        cmocka_unit_test(test_passthrough_capped),
        cmocka_unit_test(test_env_unknown_warned),
        cmocka_unit_test(test_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
