/* edr analyze --follow as a user runs it: synthetic attacks on the embedded Kafka cluster, root causes asked on stdin and with --rca, bad requests answered with a clear error while the analyzer keeps running. */
#define _GNU_SOURCE
#include "edr_test.h"

#include "edr/arena.h"
#include "edr/config.h"
#include "edr/frame.h"
#include "edr/identity.h"
#include "edr/kafka.h"
#include "edr/synth.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOSTS 3

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A running `edr analyze`: its stdin, and what it printed so far. */
typedef struct proc {
    pid_t pid;
    int in, out, err;
    char obuf[1 << 16], ebuf[1 << 14];
    size_t olen, elen;
} proc_t;

static void proc_start(proc_t *p, char *const argv[])
{
    int pi[2], po[2], pe[2];
    assert_int_equal(pipe(pi), 0);
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        dup2(pi[0], 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pi[0]);
    close(po[1]);
    close(pe[1]);
    p->in = pi[1];
    p->out = po[0];
    p->err = pe[0];
    p->olen = p->elen = 0;
    fcntl(p->out, F_SETFL, O_NONBLOCK);
    fcntl(p->err, F_SETFL, O_NONBLOCK);
}

/* Reads what is there (waits up to ms); 0 when both outputs are closed. */
static int proc_pump(proc_t *p, int ms)
{
    struct pollfd pf[2] = {{.fd = p->out, .events = POLLIN}, {.fd = p->err, .events = POLLIN}};
    if (poll(pf, 2, ms) <= 0)
        return 1;
    int open = 0;
    for (int i = 0; i < 2; i++) {
        char *b = i ? p->ebuf : p->obuf;
        size_t *l = i ? &p->elen : &p->olen, cap = i ? sizeof(p->ebuf) : sizeof(p->obuf);
        ssize_t n = pf[i].fd >= 0 ? read(pf[i].fd, b + *l, cap - 1 - *l) : 0;
        if (n > 0)
            *l += (size_t)n;
        b[*l] = '\0';
        open |= n != 0 || (n < 0 && errno == EAGAIN);
    }
    return open;
}

static void proc_say(proc_t *p, const char *s, size_t n)
{
    assert_int_equal(write(p->in, s, n), (ssize_t)n);
}

/* Next JSON value on stdout (consumed), waiting up to 20 s. */
static json_t *proc_json(proc_t *p)
{
    double end = now_s() + 20;
    for (;;) {
        size_t skip = 0;
        while (skip < p->olen && (p->obuf[skip] == '\n' || p->obuf[skip] == ' '))
            skip++;
        json_error_t je;
        json_t *v = skip < p->olen ? json_loadb(p->obuf + skip, p->olen - skip, JSON_DISABLE_EOF_CHECK, &je) : NULL;
        if (v) {
            size_t used = skip + (size_t)je.position;
            memmove(p->obuf, p->obuf + used, p->olen - used + 1);
            p->olen -= used;
            return v;
        }
        if (now_s() > end)
            fail_msg("no JSON from edr analyze; stdout '%s', stderr '%s'", p->obuf, p->ebuf);
        proc_pump(p, 100);
    }
}

/* Waits (up to 10 s) until stderr holds s. */
static void proc_expect_err(proc_t *p, const char *s)
{
    double end = now_s() + 10;
    while (!strstr(p->ebuf, s)) {
        if (now_s() > end)
            fail_msg("edr analyze did not say '%s'; stderr '%s'", s, p->ebuf);
        proc_pump(p, 100);
    }
}

static int proc_wait(proc_t *p, double secs)
{
    double end = now_s() + secs;
    int st;
    while (waitpid(p->pid, &st, WNOHANG) == 0) {
        if (now_s() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            fail_msg("edr analyze did not exit; stderr '%s'", p->ebuf);
        }
        proc_pump(p, 50);
    }
    while (proc_pump(p, 0))
        ;
    close(p->in);
    close(p->out);
    close(p->err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The root cause of a result matches the generator's ground truth. */
static void assert_root(json_t *res, const edr_synth_attack_t *at)
{
    json_t *root = json_object_get(res, "root_cause");
    assert_non_null(root);
    const char *kind = json_string_value(json_object_get(root, "kind"));
    assert_non_null(kind);
    char want[40];
    switch (at->root.kind) {
    case 1:
        assert_string_equal(kind, "process");
        assert_string_equal(json_string_value(json_object_get(root, "entity_id")), edr_hex(at->root.entity_id, 16, want));
        break;
    case 2:
        assert_string_equal(kind, "file");
        assert_string_equal(json_string_value(json_object_get(root, "path")), at->root.path);
        break;
    default:
        assert_string_equal(kind, "remote");
        snprintf(want, sizeof(want), "%u.%u.%u.%u", at->root.ip[0], at->root.ip[1], at->root.ip[2], at->root.ip[3]);
        assert_string_equal(json_string_value(json_object_get(root, "remote_ip")), want);
        break;
    }
    /* the chain ends at the process asked about */
    json_t *chain = json_object_get(res, "chain");
    assert_true(json_array_size(chain) >= 2);
}

static void test_analyze_follow(void **state)
{
    (void)state;
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/edr", EDR_BIN_DIR);
    if (access(bin, X_OK) != 0)
        skip();
    char err[256];
    edr_config_t *cfg = edr_config_new();
    assert_non_null(cfg);
    edr_kafka_cluster_t *kc = edr_kafka_cluster_new(cfg, 1, 2, err, sizeof(err));
    if (!kc)
        fail_msg("%s", err);
    const char *boot = edr_kafka_cluster_bootstraps(kc);
    char topic[128];
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    rd_kafka_t *prod = edr_kafka_producer_new(cfg, boot, NULL, err, sizeof(err));
    if (!prod)
        fail_msg("%s", err);

    /* a service exploit on host 0, a download-execute on host 2, amid noise */
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 5454};
    edr_synth_t *s = edr_synth_new(&so);
    assert_non_null(s);
    edr_synth_attack_spec_t sp[] = {
        {.kind = EDR_SYNTH_ATTACK_SERVICE_EXPLOIT, .host = 0, .depth = 3, .after_events = 300},
        {.kind = EDR_SYNTH_ATTACK_DOWNLOAD_EXECUTE, .host = 2, .depth = 2, .after_events = 900},
    };
    for (size_t i = 0; i < 2; i++)
        assert_true(edr_synth_add_attack(s, &sp[i]) >= 0);
    edr_frame_ctx_t *fc = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    long long events = 0;
    for (int round = -1; round < 16; round++)
        for (uint32_t h = 0; h < HOSTS; h++) {
            Edr__V1__EventBatch *b = round < 0 ? edr_synth_seed_batch(s, h, &a) : edr_synth_next_batch(s, h, 100, &a);
            const uint8_t *f;
            size_t fl;
            assert_int_equal(edr_frame_encode(fc, b, 0, &f, &fl), 0);
            rd_kafka_resp_err_t ke = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(b->sensor->host_id.data, 16),
                RD_KAFKA_V_VALUE((void *)f, fl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            assert_int_equal(ke, 0);
            events += (long long)b->n_events;
            edr_arena_reset(&a);
        }
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    const edr_synth_attack_t *at0 = edr_synth_attack(s, 0), *at1 = edr_synth_attack(s, 1);
    assert_true(at0->done && at1->done);
    char alert0[33], alert1[33], first1[33];
    edr_hex(at0->alert.entity_id, 16, alert0);
    edr_hex(at1->alert.entity_id, 16, alert1);
    edr_hex(at1->first.entity_id, 16, first1);

    /* two analyzers in their own groups, started together (each join takes seconds):
     * A answers requests on stdin, B analyses --rca once the topic is idle and exits */
    char brokers[256], rca_opt[64];
    snprintf(brokers, sizeof(brokers), "kafka.brokers=%s", boot);
    snprintf(rca_opt, sizeof(rca_opt), "%s", alert1);
    char *argv_a[] = {bin, "analyze", "--follow", "--set", brokers, "--set", "analyzer.group_id=edr-test-analyze-a", NULL};
    char *argv_b[] = {bin,     "analyze", "--follow", "--set", brokers, "--set", "analyzer.group_id=edr-test-analyze-b",
                      "--rca", rca_opt,   "--rca", "0123456789abcdefXYZ", "--idle", "1", NULL};
    static proc_t pa, pb;
    proc_start(&pa, argv_a);
    proc_start(&pb, argv_b);

    /* A: wait until every event is in its graphs */
    long long seen = -1;
    double end = now_s() + 30;
    while (seen < events) {
        if (now_s() > end)
            fail_msg("edr analyze consumed %lld of %lld events; stderr '%s'", seen, events, pa.ebuf);
        proc_say(&pa, "stats\n", 6);
        json_t *st = proc_json(&pa);
        seen = (long long)json_integer_value(json_object_get(st, "events"));
        if (seen == events)
            assert_int_equal(json_integer_value(json_object_get(st, "hosts")), HOSTS);
        json_decref(st);
        if (seen < events)
            usleep(200000);
    }
    assert_int_equal(seen, events);

    /* bad requests: each gets a clear error, nothing is printed on stdout */
    proc_say(&pa, "explain everything\n", 19);
    proc_expect_err(&pa, "unknown request 'explain everything' (rca ENTITY, stats)");
    proc_say(&pa, "rca 12zz\n", 9);
    proc_expect_err(&pa, "rca 12zz: not 32 hex digits");
    proc_say(&pa, "rca \x1b[31mred\n", 13);
    proc_expect_err(&pa, ": not 32 hex digits");
    assert_null(strchr(pa.ebuf, '\x1b')); /* terminal escapes from the request are not echoed raw */
    proc_say(&pa, "rca 00000000000000000000000000000001\n", 37);
    proc_expect_err(&pa, "rca 00000000000000000000000000000001: not in any host's window");
    static char longreq[2000];
    memset(longreq, 'a', sizeof(longreq) - 1);
    memcpy(longreq, "rca ", 4);
    longreq[sizeof(longreq) - 1] = '\n';
    proc_say(&pa, longreq, sizeof(longreq));
    proc_expect_err(&pa, "request longer than 254 bytes: dropped");
    assert_null(strstr(pa.ebuf, "unknown request 'aaa")); /* the tail of the long line is not a request */
    assert_int_equal(strspn(pa.obuf, " \n"), pa.olen); /* nothing answered on stdout */

    /* and it keeps running: the root causes of both attacks, from the alert and from the first process */
    char req[64];
    int n = snprintf(req, sizeof(req), "rca %s\n", alert0);
    proc_say(&pa, req, (size_t)n);
    json_t *r = proc_json(&pa);
    assert_root(r, at0);
    json_decref(r);
    n = snprintf(req, sizeof(req), "rca %s\n", first1);
    proc_say(&pa, req, (size_t)n);
    r = proc_json(&pa);
    assert_root(r, at1);
    json_decref(r);
    assert_null(strstr(pa.ebuf, "unknown request 'stats")); /* nothing more went wrong */

    /* end of stdin does not stop the follower; SIGTERM does, cleanly */
    close(pa.in);
    pa.in = open("/dev/null", O_WRONLY);
    usleep(200000);
    assert_int_equal(waitpid(pa.pid, NULL, WNOHANG), 0);
    kill(pa.pid, SIGTERM);
    assert_int_equal(proc_wait(&pa, 15), 0);

    /* B: the good entity answered, the bad one refused, exit status 1 for it */
    r = proc_json(&pb);
    assert_root(r, at1);
    json_decref(r);
    assert_int_equal(proc_wait(&pb, 30), 1);
    assert_non_null(strstr(pb.ebuf, "rca 0123456789abcdefXYZ: not 32 hex digits"));

    /* a live topic is never idle: D answers once it has read what the topic
     * held, while a sensor keeps sending (it waited for --idle, forever) */
    char *argv_d[] = {bin,     "analyze", "--follow", "--set", brokers, "--set", "analyzer.group_id=edr-test-analyze-d",
                      "--rca", rca_opt,   "--idle",   "600",  NULL};
    static proc_t pd;
    proc_start(&pd, argv_d);
    double t0 = now_s();
    int st, exited = 0;
    while (!exited && now_s() - t0 < 60) {
        Edr__V1__EventBatch *b = edr_synth_next_batch(s, 1, 20, &a);
        const uint8_t *f;
        size_t fl;
        assert_int_equal(edr_frame_encode(fc, b, 0, &f, &fl), 0);
        assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(b->sensor->host_id.data, 16),
                                           RD_KAFKA_V_VALUE((void *)f, fl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
        edr_arena_reset(&a);
        rd_kafka_poll(prod, 0);
        proc_pump(&pd, 100);
        exited = waitpid(pd.pid, &st, WNOHANG) == pd.pid;
    }
    if (!exited) {
        kill(pd.pid, SIGKILL);
        waitpid(pd.pid, &st, 0);
        fail_msg("edr analyze --rca on a live topic did not answer in 60 s; stderr '%s'", pd.ebuf);
    }
    while (proc_pump(&pd, 0))
        ;
    r = proc_json(&pd);
    assert_root(r, at1);
    json_decref(r);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(pd.in);
    close(pd.out);
    close(pd.err);

    /* interrupted before it answers: exit status 1, and it says so */
    char *argv_e[] = {bin,     "analyze", "--follow", "--set", brokers, "--set", "analyzer.group_id=edr-test-analyze-e",
                      "--rca", rca_opt,   "--idle",   "600",  NULL};
    static proc_t pe;
    proc_start(&pe, argv_e);
    usleep(1000000); /* its signal handlers are in place (the group join takes longer) */
    kill(pe.pid, SIGINT);
    assert_int_equal(proc_wait(&pe, 15), 1);
    assert_non_null(strstr(pe.ebuf, "interrupted before the analysis"));

    /* Kafka unreachable: it gives up after the join wait (30 s) and --idle,
     * exit 1, instead of waiting for ever */
    char *argv_k[] = {bin,     "analyze", "--follow", "--set", "kafka.brokers=127.0.0.1:1",
                      "--rca", rca_opt,   "--idle",   "1",     NULL};
    static proc_t pk;
    proc_start(&pk, argv_k);
    assert_int_equal(proc_wait(&pk, 60), 1);
    assert_non_null(strstr(pk.ebuf, "no partition of edr.telemetry.v1 assigned in 31 s"));

    /* bad options are refused before anything starts */
    char *argv_c[] = {bin, "analyze", "--follow", "--rca", alert1, "--idle", "soon", NULL};
    static proc_t pc;
    proc_start(&pc, argv_c);
    assert_int_equal(proc_wait(&pc, 10), 2);
    assert_non_null(strstr(pc.ebuf, "--idle 'soon': not a number of seconds"));

    rd_kafka_destroy(prod);
    edr_kafka_cluster_destroy(kc);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(fc);
    edr_synth_destroy(s);
    edr_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyze_follow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
