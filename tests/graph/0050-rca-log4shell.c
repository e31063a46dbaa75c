/* Acceptance on real data: Log4Shell recorded by Sysmon for Linux and Windows; root cause, chain, no noise. */
#define _GNU_SOURCE
#include "edr_test.h"

#include "edr/err.h"
#include "edr/graph.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINUX_FILE EDR_DATASETS "/otrf-log4shell/linux-sysmon-syslog.jsonl"
#define WIN_FILE   EDR_DATASETS "/otrf-log4shell/windows-sysmon-eventdata.jsonl"

static edr_graph_t *load(const char *path)
{
    if (access(path, R_OK) != 0)
        return NULL;
    edr_graph_t *g = edr_graph_new();
    char err[256];
    assert_int_equal(edr_graph_load_sysmon(g, path, err, sizeof(err)), 0);
    return g;
}

static int chain_has_pid(const edr_graph_t *g, const edr_rca_t *r, uint32_t pid)
{
    for (size_t i = 0; i < r->n_chain; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, r->chain[i].node, &in);
        if (in.kind == EDR_NODE_PROCESS && in.pid == pid)
            return 1;
    }
    return 0;
}

static int chain_has_remote(const edr_graph_t *g, const edr_rca_t *r, const uint8_t ip[4], uint32_t port,
                            int inbound)
{
    for (size_t i = 0; i < r->n_chain; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, r->chain[i].node, &in);
        if (in.kind != EDR_NODE_REMOTE || in.inbound != inbound)
            continue;
        const uint8_t *p = in.ip_len == 16 ? in.ip + 12 : in.ip;
        if (!memcmp(p, ip, 4) && (!port || in.port == port))
            return 1;
    }
    return 0;
}

static void no_noise(const edr_graph_t *g, const edr_rca_t *r, const char *const *names, const uint32_t *pids)
{
    for (size_t i = 0; i < r->n_chain; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, r->chain[i].node, &in);
        if (in.kind == EDR_NODE_REMOTE) {
            assert_false(in.ip_len == 4 && in.ip[0] == 169 && in.ip[1] == 254);
            continue;
        }
        if (in.kind != EDR_NODE_PROCESS)
            continue;
        for (const char *const *n = names; *n; n++)
            if (strstr(in.executable, *n))
                fail_msg("noise process %s (%u) in the chain", in.executable, in.pid);
        for (const uint32_t *p = pids; *p; p++)
            if (in.pid == *p)
                fail_msg("noise pid %u in the chain", in.pid);
    }
}

/* One dataset's acceptance: its documented root, attack entities and noise. */
typedef struct dataset {
    const char *file;
    uint8_t attacker[4];
    const char *const *noise;     /* executables that must stay out of the chain */
    const uint32_t *noise_pids;   /* 0 ends */
    uint32_t starts[2];           /* a late attack process and the first malicious one */
    uint32_t root_pid;
    const char *root_exe;
    uint32_t entry_port;          /* the inbound connection the root accepted (0: not checked) */
    const uint32_t *attack;       /* pids, 0 ends */
    struct {
        uint16_t port;
        int inbound;
    } remotes[3];
} dataset_t;

static void check_dataset(const dataset_t *d)
{
    edr_graph_t *g = load(d->file);
    if (!g)
        skip();
    for (size_t k = 0; k < 2; k++) {
        int err = 0;
        uint32_t n = edr_graph_find_pid(g, NULL, d->starts[k], 0, &err);
        assert_int_not_equal(n, EDR_GRAPH_NONE);
        edr_rca_t *r = edr_rca_run(g, n, 0, NULL, &err);
        assert_non_null(r);
        edr_graph_node_info_t in;
        edr_graph_node(g, r->root, &in);
        assert_int_equal(in.pid, d->root_pid);
        assert_non_null(strcasestr(in.executable, d->root_exe));
        assert_int_equal(r->cls, EDR_RCA_INBOUND_CONNECTION);
        assert_int_equal(r->chain[0].node, r->root);
        if (d->entry_port) {
            /* the entry: the inbound connection from the attacker */
            assert_int_not_equal(r->entry, EDR_GRAPH_NONE);
            edr_graph_node(g, r->entry, &in);
            assert_int_equal(in.kind, EDR_NODE_REMOTE);
            assert_true(in.inbound);
            assert_memory_equal(in.ip_len == 16 ? in.ip + 12 : in.ip, d->attacker, 4);
            assert_int_equal(in.port, d->entry_port);
        }
        for (const uint32_t *a = d->attack; *a; a++)
            if (!chain_has_pid(g, r, *a))
                fail_msg("from %u: attack pid %u missing from the chain", d->starts[k], *a);
        for (size_t i = 0; i < 3; i++)
            assert_true(chain_has_remote(g, r, d->attacker, d->remotes[i].port, d->remotes[i].inbound));
        no_noise(g, r, d->noise, d->noise_pids);
        edr_rca_destroy(r);
    }
    edr_graph_destroy(g);
}

static void test_linux(void **state)
{
    (void)state;
    static const char *const noise[] = {"wdavdaemon", "telemetryd", "dependency-agent", "/man", "whatis",
                                        "dpkg", "omicli", "/grep", "udevd", "ruby", NULL};
    static const uint32_t noise_pids[] = {2813, 17823, 17828, 475, 2030, 1774, 2001, 0};
    static const uint32_t attack[] = {1340, 17790, 17793, 17794, 17806, 17832, 0};
    static const dataset_t d = {.file = LINUX_FILE,
                                .attacker = {192, 168, 2, 6},
                                .noise = noise,
                                .noise_pids = noise_pids,
                                .starts = {17832, 17790},
                                .root_pid = 1340,
                                .root_exe = "java",
                                .attack = attack,
                                .remotes = {{1389, 0}, {8888, 0}, {443, 0}}};
    check_dataset(&d);
}

static void test_windows(void **state)
{
    (void)state;
    static const char *const noise[] = {"csrss", "lsass", "svchost", "wmiprvse", NULL};
    static const uint32_t noise_pids[] = {7716, 11924, 560, 776, 892, 1008, 3968, 0};
    static const uint32_t attack[] = {3936, 2084, 11780, 0};
    static const dataset_t d = {.file = WIN_FILE,
                                .attacker = {192, 168, 3, 5},
                                .noise = noise,
                                .noise_pids = noise_pids,
                                .starts = {11780, 2084},
                                .root_pid = 3936,
                                .root_exe = "tomcat9.exe",
                                .entry_port = 8080,
                                .attack = attack,
                                .remotes = {{8080, 1}, {1389, 0}, {443, 0}}};
    check_dataset(&d);
}

/* The path: edr import sysmon into a store, then edr rca --store ... --json. */
static void test_cli_store(void **state)
{
    (void)state;
    if (access(LINUX_FILE, R_OK) != 0 || access(EDR_BIN_DIR "/edr", X_OK) != 0)
        skip();
    char dir[] = "/tmp/edr-rca-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/edr import sysmon %s %s --store %s/s >/dev/null 2>&1", EDR_BIN_DIR,
             LINUX_FILE, WIN_FILE, dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)!system(cmd);
        fail_msg("edr import sysmon failed (%d)", rc);
    }
    static const struct {
        const char *host;
        int pid;
        int root;
    } cases[] = {{"UBUNTU5", 17832, 1340}, {"UBUNTU5", 17790, 1340}, {"WORKSTATION5", 11780, 3936},
                 {"WORKSTATION5", 2084, 3936}};
    for (size_t i = 0; i < 4; i++) {
        snprintf(cmd, sizeof(cmd), "%s/edr rca --store %s/s --host %s --pid %d --json", EDR_BIN_DIR, dir,
                 cases[i].host, cases[i].pid);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        json_error_t je;
        json_t *o = json_loadf(p, 0, &je);
        assert_int_equal(pclose(p), 0);
        if (!o)
            fail_msg("%s: no JSON: %s", cmd, je.text);
        json_t *rc_ = json_object_get(o, "root_cause");
        assert_int_equal(json_integer_value(json_object_get(rc_, "pid")), cases[i].root);
        assert_string_equal(json_string_value(json_object_get(rc_, "class")), "inbound_connection");
        json_t *chain = json_object_get(o, "chain");
        assert_int_equal(json_integer_value(json_object_get(json_array_get(chain, 0), "pid")), cases[i].root);
        int found = 0;
        size_t k;
        json_t *it;
        json_array_foreach(chain, k, it) found += json_integer_value(json_object_get(it, "pid")) == cases[i].pid;
        assert_int_equal(found, 1);
        json_decref(o);
    }
    /* an export through the CLI */
    snprintf(cmd, sizeof(cmd), "%s/edr rca --store %s/s --host UBUNTU5 --pid 17832 --format html -o %s/card.html 2>/dev/null",
             EDR_BIN_DIR, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/card.html", dir);
    assert_int_equal(access(cmd, R_OK), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linux),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_cli_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
