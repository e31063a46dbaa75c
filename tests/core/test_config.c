/* Configuration: defaults, YAML file, environment, --set, and clear errors with file and line. */
#include "edr_test.h"

#include "edr/config.h"
#include "edr/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_env_flag_precedence),
        cmocka_unit_test(test_command_line_args),
        cmocka_unit_test(test_errors_name_file_line_setting),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_every_setting_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
