/* Fallback source in process: the exit of processes whose leader is not their last thread, a reset
 * connection held open past several polls, and the start time of a fork seen after /proc lost it on
 * a machine that slept. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "edr/arena.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/identity.h"
#include "edr/log.h"
#include "source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a test emitter: keeps every event ----------------------------------- */

struct edr_emit {
    edr_arena_t arena;
    Edr__V1__Event **ev;
    size_t n, cap;
    uint8_t host[EDR_ID_LEN], boot[EDR_ID_LEN];
};

Edr__V1__Event *edr_emit_begin(edr_emit_t *em, uint64_t t)
{
    Edr__V1__Event *e = edr_arena_alloc(&em->arena, sizeof(*e));
    if (!e) return NULL;
    edr__v1__event__init(e);
    e->time_offset_ns = (int64_t)t;
    return e;
}

void edr_emit_end(edr_emit_t *em, Edr__V1__Event *e)
{
    if (em->n == em->cap) {
        em->cap = em->cap ? em->cap * 2 : 4096;
        em->ev = realloc(em->ev, em->cap * sizeof(*em->ev));
        if (!em->ev) abort();
    }
    em->ev[em->n++] = e;
}

edr_arena_t *edr_emit_arena(edr_emit_t *em)
{
    return &em->arena;
}

void edr_emit_drop(edr_emit_t *em, const char *source, const char *reason, uint64_t n)
{
    (void)em;
    fprintf(stderr, "drop: %s %s %llu\n", source, reason, (unsigned long long)n);
}

const uint8_t *edr_emit_host_id(const edr_emit_t *em)
{
    return em->host;
}

const uint8_t *edr_emit_boot_id(const edr_emit_t *em)
{
    return em->boot;
}

uint64_t edr__utc_ns(void); /* sensor/state.c, linked in */

/* ---- fixture ------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    edr_emit_t em;
    edr_source_t *src;
    char dir[64];
} fixture_t;

/* Starts the fallback source watching a temporary directory, polling sock_diag
 * every 20 ms; 0, or -1 when it cannot run here (reason printed). */
static int fx_start(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    if (geteuid() != 0) {
        print_message("SKIP: the fallback source needs root (proc connector, fanotify)\n");
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/edr-fb-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    edr_config_t *cfg = edr_config_new();
    char err[256], paths[128];
    snprintf(paths, sizeof(paths), "%s", f->dir);
    if (edr_config_set(cfg, "sensor.fallback_paths", paths, "test", err, sizeof(err)) ||
        edr_config_set(cfg, "sensor.fallback_poll", "20ms", "test", err, sizeof(err))) {
        print_message("config: %s\n", err);
        edr_config_destroy(cfg);
        return -1;
    }
    uv_loop_init(&f->loop);
    edr_arena_init(&f->em.arena, 1 << 22);
    edr_host_id_local(f->em.host);
    edr_boot_id_local(f->em.boot);
    f->src = edr_source_fallback_new(cfg, err, sizeof(err));
    edr_config_destroy(cfg);
    if (!f->src) {
        print_message("fallback source: %s\n", err);
        return -1;
    }
    int rc = f->src->ops->start(f->src, &f->loop, &f->em);
    if (rc) {
        print_message("SKIP: fallback source unavailable here: %s\n", edr_strerror(rc));
        f->src->ops->destroy(f->src);
        f->src = NULL;
        return -1;
    }
    return 0;
}

static void pump(fixture_t *f, int ms)
{
    struct timespec ts = {0, 10 * 1000000};
    for (int i = 0; i < ms / 10; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        nanosleep(&ts, NULL);
    }
}

static void fx_stop(fixture_t *f)
{
    char cmd[128];
    if (f->src) {
        f->src->ops->stop(f->src);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        f->src->ops->destroy(f->src);
        uv_loop_close(&f->loop);
    }
    edr_arena_close(&f->em.arena);
    free(f->em.ev);
    if (f->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", f->dir);
    }
}

/* Waits for pid, while the loop runs (late: before it runs again, so that
 * the source reads every message of pid after the fact); its wait status. */
static int wait_subject(fixture_t *f, pid_t pid, int late);

/* Waits for pid while the loop runs; its wait status. */
static int wait_pumping(fixture_t *f, pid_t pid)
{
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        pump(f, 10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    fail_msg("child %d did not end", (int)pid);
    return st;
}

/* Runs fn in a grandchild (the source leaves out what its own process
 * forks): *subject is its pid; returns the pid of the child between, which
 * waits for it and exits with its status (3 when it did not exit). */
static pid_t spawn_subject(void (*fn)(void), pid_t *subject)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        pid_t s = fork();
        if (s == 0) {
            fn();
            _exit(0);
        }
        if (s < 0 || write(p[1], &s, sizeof(s)) != sizeof(s)) _exit(4);
        int st;
        waitpid(s, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
    }
    close(p[1]);
    assert_int_equal(read(p[0], subject, sizeof(*subject)), (ssize_t)sizeof(*subject));
    close(p[0]);
    return mid;
}

static int wait_subject(fixture_t *f, pid_t pid, int late)
{
    int st = 0;
    if (!late) return wait_pumping(f, pid);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

/* ---- process exits ------------------------------------------------------- */

static void *exec_from_thread(void *arg)
{
    (void)arg;
    char *const argv[] = {"sleep", "0.2", NULL};
    execv("/bin/sleep", argv);
    _exit(111);
}

static void *exit_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    exit(7); /* exit_group: the process's status is 7 */
}

static void subject_exec_from_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, exec_from_thread, NULL) != 0) _exit(112);
    for (;;)
        pause();
}

static void subject_leader_exits_first(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, exit_later, NULL) != 0) _exit(112);
    pthread_exit(NULL);
}

/* A thread other than the leader calls execve(): the kernel kills the leader
 * (its exit message) and the thread goes on as the process, now running
 * sleep. One ProcessExit, after the exec's ProcessStart, at the real end;
 * whether the source reads the messages as they come or after the end. */
static void test_exec_from_thread(void **state)
{
    (void)state;
    fixture_t f;
    if (fx_start(&f)) {
        fx_stop(&f);
        skip();
    }
    for (int late = 0; late < 2; late++) {
        pump(&f, 100);
        size_t from = f.em.n;
        pid_t c;
        int st = wait_subject(&f, spawn_subject(subject_exec_from_thread, &c), late);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        pump(&f, 200);

        int exits = 0, start_at = -1, exit_at = -1;
        for (size_t i = from; i < f.em.n; i++) {
            Edr__V1__Event *e = f.em.ev[i];
            if (e->pid != (uint32_t)c) continue;
            if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_START && start_at < 0)
                start_at = (int)i;
            if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_EXIT) {
                exits++;
                exit_at = (int)i;
            }
        }
        print_message("exec from a thread%s: %d ProcessExit, start at %d, exit at %d\n",
                      late ? " (read late)" : "", exits, start_at, exit_at);
        assert_true(start_at >= 0);
        assert_int_equal(exits, 1);
        assert_true(exit_at > start_at);
    }
    fx_stop(&f);
}

/* The leader calls pthread_exit(); another thread exits the process 300 ms
 * later with status 7. One ProcessExit, with code 7, not the leader's 0;
 * whether the source reads the messages as they come or after the end. */
static void test_leader_exits_first(void **state)
{
    (void)state;
    fixture_t f;
    if (fx_start(&f)) {
        fx_stop(&f);
        skip();
    }
    for (int late = 0; late < 2; late++) {
        pump(&f, 100);
        pid_t c;
        int st = wait_subject(&f, spawn_subject(subject_leader_exits_first, &c), late);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 7);
        pump(&f, 200);

        int exits = 0, code = -1;
        for (size_t i = 0; i < f.em.n; i++) {
            Edr__V1__Event *e = f.em.ev[i];
            if (e->pid == (uint32_t)c && e->body_case == EDR__V1__EVENT__BODY_PROCESS_EXIT) {
                exits++;
                code = e->process_exit->exit_code;
            }
        }
        print_message("leader exits first%s: %d ProcessExit, code %d\n", late ? " (read late)" : "",
                      exits, code);
        assert_int_equal(exits, 1);
        assert_int_equal(code, 7);
    }
    fx_stop(&f);
}

/* ---- connections --------------------------------------------------------- */

/* A child connects to a listener of this process and holds the connection;
 * a poll reports it. This process then resets it (SO_LINGER 0): the child's
 * socket is unhashed, so polls no longer list it, while the child keeps it
 * open for many polls, then closes it. One Connect, the child's, and not a
 * second one without a process when the socket is destroyed. */
static void test_reset_connection_held(void **state)
{
    (void)state;
    fixture_t f;
    if (fx_start(&f)) {
        fx_stop(&f);
        skip();
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        char b;
        alarm(20);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) _exit(1);
        struct sockaddr_in me;
        socklen_t ml = sizeof(me);
        getsockname(s, (struct sockaddr *)&me, &ml);
        if (write(ready[1], &me.sin_port, sizeof(me.sin_port)) != sizeof(me.sin_port)) _exit(2);
        if (read(go[0], &b, 1) != 1) _exit(3); /* reset by now: hold it a while */
        struct timespec ts = {0, 400 * 1000000};
        nanosleep(&ts, NULL);
        close(s);
        _exit(0);
    }
    uint16_t port_be;
    assert_int_equal(read(ready[0], &port_be, sizeof(port_be)), (ssize_t)sizeof(port_be));
    unsigned cport = ntohs(port_be);
    int a = accept(ls, NULL, NULL);
    assert_true(a >= 0);
    pump(&f, 150); /* polls see the connection and find its owner */
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(a); /* RST: the child's socket goes to CLOSE, out of the hash tables */
    assert_int_equal(write(go[1], "g", 1), 1);
    int st = wait_pumping(&f, c);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pump(&f, 150);
    close(ls);

    int connects = 0, owned = 0;
    for (size_t i = 0; i < f.em.n; i++) {
        Edr__V1__Event *e = f.em.ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_NETWORK ||
            e->network->action != EDR__V1__NETWORK__ACTION__CONNECT || !e->network->local ||
            e->network->local->port != cport)
            continue;
        connects++;
        owned += e->pid == (uint32_t)c;
    }
    print_message("reset connection: %d Connect events for port %u, %d by the child\n", connects,
                  cport, owned);
    assert_int_equal(owned, 1);
    assert_int_equal(connects, 1);
    fx_stop(&f);
}

/* ---- clocks -------------------------------------------------------------- */

#define SLEPT_S 100000 /* the boot clock's lead in the time namespace below */

static void subject_exits(void) {}

/* Runs in a time namespace whose boot clock leads the monotonic one by
 * SLEPT_S, as after a suspend (/proc start times move with it): a child that
 * is gone before the source reads /proc gets its start time from the
 * connector's timestamp, a monotonic time. Exit status 0 when its ProcessFork
 * says when it started. */
static int fork_start_in_timens(void)
{
    fixture_t f;
    if (fx_start(&f)) {
        fx_stop(&f);
        return 77;
    }
    pump(&f, 50);
    uint64_t t0 = edr__utc_ns();
    pid_t c;
    int st;
    /* reaped: /proc/PID is gone when the fork message is read */
    waitpid(spawn_subject(subject_exits, &c), &st, 0);
    uint64_t t1 = edr__utc_ns();
    pump(&f, 100);
    int rc = 1;
    for (size_t i = 0; i < f.em.n; i++) {
        Edr__V1__Event *e = f.em.ev[i];
        if (e->pid != (uint32_t)c || e->body_case != EDR__V1__EVENT__BODY_PROCESS_FORK) continue;
        int64_t d = (int64_t)e->process_fork->start_time_ns - (int64_t)t0;
        fprintf(stderr, "fork start time %+.3f s from the fork (took %.3f s)\n", (double)d / 1e9,
                (double)(t1 - t0) / 1e9);
        /* clock ticks truncate it by up to 10 ms */
        rc = d > -20000000 && d < (int64_t)(t1 - t0) + 1000000000 ? 0 : 2;
    }
    fx_stop(&f);
    return rc;
}

static void test_fork_start_after_suspend(void **state)
{
    (void)state;
    if (geteuid() != 0) skip();
    pid_t h = fork();
    assert_true(h >= 0);
    if (h == 0) { /* a helper: the namespace applies to its children */
        char off[64];
        if (unshare(CLONE_NEWTIME) != 0) _exit(77);
        int fd = open("/proc/self/timens_offsets", O_WRONLY);
        int n = snprintf(off, sizeof(off), "boottime %d 0\n", SLEPT_S);
        if (fd < 0 || write(fd, off, (size_t)n) != n) _exit(77);
        close(fd);
        pid_t c = fork();
        if (c == 0) _exit(fork_start_in_timens());
        int st;
        waitpid(c, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
    }
    int st;
    assert_int_equal(waitpid(h, &st, 0), h);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        print_message("SKIP: no time namespaces here\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    edr_log_init("test_src_fallback", EDR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_from_thread),
        cmocka_unit_test(test_leader_exits_first),
        cmocka_unit_test(test_reset_connection_held),
        cmocka_unit_test(test_fork_start_after_suspend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
