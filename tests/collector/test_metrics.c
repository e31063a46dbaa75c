/* Metrics endpoint: a client that dribbles its request cannot hold the only serving thread
 * past its 2 s allowance, nor the collector's stop. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

typedef struct {
    int port;
    double seconds;
} dribble_t;

/* A request head that never ends: one byte every 300 ms for `seconds`. */
static void *dribble(void *arg)
{
    dribble_t *d = arg;
    int fd = connect_to(d->port);
    if (fd < 0)
        return NULL;
    for (double t0 = now_s(); now_s() - t0 < d->seconds;) {
        if (write(fd, "G", 1) != 1)
            break;
        usleep(300000);
    }
    close(fd);
    return NULL;
}

/* The whole answer to one request (raw bytes). */
static char *ask(int port, const char *req, size_t req_len)
{
    int fd = connect_to(port);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, req, req_len), (ssize_t)req_len);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(fd);
    return buf;
}

static char *get_metrics(int port)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    return ask(port, req, sizeof(req) - 1);
}

/* A scrape answered with the metrics in under limit seconds. */
static void scrape_within(int port, double limit, const char *beside)
{
    double t0 = now_s();
    char *body = get_metrics(port);
    double waited = now_s() - t0;
    fprintf(stderr, "answered after %.2f s %s\n", waited, beside);
    assert_non_null(strstr(body, "HTTP/1.0 200 OK"));
    assert_non_null(strstr(body, "x_total 1\n"));
    assert_true(waited < limit);
    free(body);
}

/* An endpoint on a free loopback port serving "x_total 1". */
static edr_metrics_t *serve_x_total(int *port)
{
    char err[256];
    edr_metrics_t *m = edr_metrics_new("127.0.0.1:0", err, sizeof(err));
    assert_non_null(m);
    const char text[] = "# TYPE x_total counter\nx_total 1\n";
    edr_metrics_publish(m, text, sizeof(text) - 1);
    *port = edr_metrics_port(m);
    return m;
}

/* Idle clients, more than are served at once, do not keep a scrape out (one
 * at a time, ten of them held it for over ten seconds); what is not a GET
 * of /metrics is answered as such. */
static void test_idle_clients_and_bad_requests(void **state)
{
    (void)state;
    int port;
    edr_metrics_t *m = serve_x_total(&port);
    int idle[40];
    for (int i = 0; i < 40; i++) {
        idle[i] = connect_to(port);
        assert_true(idle[i] >= 0);
        assert_int_equal(write(idle[i], "GET /metrics HTTP/1.1\r\n", 23), 23);
    }
    usleep(200000);
    scrape_within(port, 1.0, "beside 40 idle clients");
    for (int i = 0; i < 40; i++)
        close(idle[i]);

    struct {
        const char *req, *status;
        int body;
    } cases[] = {
        {"GET /foo HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found", 0},
        /* a long path is a path (it was 400 past 63 bytes) */
        {"GET /metrics/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n",
         "HTTP/1.0 404 Not Found", 0},
        {"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.0 404 Not Found", 0},
        {"POST /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 405 Method Not Allowed", 0},
        {"\x01\x02\xffhello\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"HEAD /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.0 200 OK", 1},
        /* not HTTP/1.x: the version is read, and the line ends after it
         * (review-1206f L1: both were answered 200) */
        {"GET /metrics\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"GET /metrics SMTP/9.9 garbage\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"GET /metrics HTTP/1.1x\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"GET /metrics HTTP/1.10\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"GET /metrics HTTP/1.0\n\n", "HTTP/1.0 200 OK", 1},
        /* a query is ignored (it was 404); the parts are one space apart
         * (review-1206n-coll 9: these three were 200) */
        {"GET /metrics?x=1 HTTP/1.1\r\n\r\n", "HTTP/1.0 200 OK", 1},
        {"GET/metrics HTTP/1.1\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"GET\t/metrics HTTP/1.1\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
        {"GET /metrics\r\n HTTP/1.1\r\n\r\n", "HTTP/1.0 400 Bad Request", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = ask(port, cases[i].req, strlen(cases[i].req));
        if (strncmp(body, cases[i].status, strlen(cases[i].status)) ||
            !strstr(body, "x_total 1") != !cases[i].body)
            fail_msg("case %zu: %s", i, body);
        free(body);
    }
    /* a head that fills the collector's 2 KiB without ending: 431, not the
     * metrics (2,047 bytes: all it reads, none left unread to reset the
     * connection) */
    char big[2047];
    int bl = snprintf(big, sizeof(big), "GET /metrics HTTP/1.0\r\nX-Pad: ");
    memset(big + bl, 'a', sizeof(big) - (size_t)bl);
    char *body = ask(port, big, sizeof(big));
    if (strncmp(body, "HTTP/1.0 431 ", 13)) fail_msg("a head past 2 KiB: %.60s", body);
    free(body);
    edr_metrics_destroy(m);
}

static void test_dribbling_client(void **state)
{
    (void)state;
    int port;
    edr_metrics_t *m = serve_x_total(&port);

    /* served while another client dribbles for 9 s: after its 2 s at most */
    dribble_t d = {port, 9};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dribble, &d), 0);
    usleep(200000);
    scrape_within(port, 5.0, "while another client dribbled"); /* the dribbler alone: 9 s */
    pthread_join(th, NULL);

    /* and stopping does not wait for a dribbling client */
    d.seconds = 9;
    assert_int_equal(pthread_create(&th, NULL, dribble, &d), 0);
    usleep(300000);
    double t0 = now_s();
    edr_metrics_destroy(m);
    double stop = now_s() - t0;
    fprintf(stderr, "stopped in %.2f s while a client dribbled\n", stop);
    assert_true(stop < 5.0);
    pthread_join(th, NULL);
}

/* collector.metrics_listen is host:port with a port from 0 to 65535: a
 * port that is not a number, or too large, is refused (atoi bound ":abc"
 * to a random port and ":70000" to 4464). */
/* collector.store_wal_busy: the store's log is skipped from the threshold
 * on and written again below 5/8 of it; 0 skips it always, 1 (100 %) only
 * when the thread never rests. */
static void test_store_log_rule(void **state)
{
    (void)state;
    assert_true(edr__collector_store_log(1, 0.10, 0.80));
    assert_true(edr__collector_store_log(1, 0.79, 0.80));
    assert_false(edr__collector_store_log(1, 0.80, 0.80));
    assert_false(edr__collector_store_log(0, 0.60, 0.80)); /* between: stays without */
    assert_true(edr__collector_store_log(0, 0.49, 0.80));
    assert_false(edr__collector_store_log(0, 0.0, 0.0));
    assert_false(edr__collector_store_log(1, 0.0, 0.0));
    assert_true(edr__collector_store_log(1, 0.99, 1.0));
}

static void test_listen_address_checked(void **state)
{
    (void)state;
    char err[256];
    const char *bad[] = {"127.0.0.1:abc", "127.0.0.1:70000", "127.0.0.1:-1", "127.0.0.1:",
                         "127.0.0.1:80x", "127.0.0.1", "localhost:9000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        edr_metrics_t *m = edr_metrics_new(bad[i], err, sizeof(err));
        if (m) {
            edr_metrics_destroy(m);
            fail_msg("%s accepted", bad[i]);
        }
        assert_non_null(strstr(err, "collector.metrics_listen"));
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the dribbler writes to a connection the server gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dribbling_client),
        cmocka_unit_test(test_idle_clients_and_bad_requests),
        cmocka_unit_test(test_listen_address_checked),
        cmocka_unit_test(test_store_log_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
