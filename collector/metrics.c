/* Prometheus text endpoint: one thread, up to MAX_CLIENTS connections at once (poll), serving the last published snapshot. */
#define _GNU_SOURCE /* accept4 */
#include "collector_int.h"

#include "edr/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct edr_metrics {
    int fd;
    int port;
    int stop_pipe[2];
    pthread_t th;
    pthread_mutex_t mu;
    char *text;
    size_t len;
};

/* A client gets REQUEST_MS to send its request head and as long to take the
 * answer, in all. Up to MAX_CLIENTS are served at once, each by poll(); one
 * more evicts the client that has waited longest for its request head, so
 * that clients that dribble or stay idle cannot keep a scrape out (one at a
 * time, ten idle connections held /metrics for ten seconds and more). */
#define REQUEST_MS  2000
#define MAX_CLIENTS 16
#define HEAD_MAX    2048

typedef struct client {
    int fd;          /* -1: free */
    int64_t deadline;
    char req[HEAD_MAX];
    size_t got;
    char *out;       /* the answer, once the head is in */
    size_t out_len, out_off;
} client_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_close(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
}

/* The answer to a request head: the last published snapshot for GET (and
 * its head alone for HEAD) of /metrics or /; 404 for other paths, 405 for
 * other methods, 400 for what is not an HTTP/1.x request line, 431 for a
 * head that filled the buffer without ending (whole: it ended). */
/* Whether r starts with an HTTP/1.x request line: METHOD SP path SP
 * HTTP/1.0|1 then CRLF or LF; the method (up to 7 capitals) into method and
 * the path as r[*p0, *p1). */
static int request_line(const char *r, char method[8], int *p0, int *p1)
{
    int i = 0;
    while (i < 7 && r[i] >= 'A' && r[i] <= 'Z') {
        method[i] = r[i];
        i++;
    }
    method[i] = 0;
    if (!i || r[i] != ' ') return 0;
    *p0 = ++i;
    while ((unsigned char)r[i] > ' ' && r[i] != 0x7f)
        i++;
    *p1 = i;
    if (*p1 == *p0 || r[i] != ' ' || strncmp(r + i + 1, "HTTP/1.", 7) ||
        (r[i + 8] != '0' && r[i + 8] != '1'))
        return 0;
    i += 9;
    return r[i] == '\n' || (r[i] == '\r' && r[i + 1] == '\n');
}

static void client_answer(edr_metrics_t *m, client_t *c, int whole)
{
    char method[8] = "";
    /* the path is req[p0, p1), of any length (a path past 63 bytes was
     * answered 400 before 2026-12-06); the request line is the whole line:
     * "HTTP/1.0" or "HTTP/1.1", then its end (the version was not checked
     * before 2026-12-06: review-1206f L1), its parts one space apart (a
     * tab, no space or a line break between them passed:
     * review-1206n-coll 9) */
    int p0 = 0, p1 = 0, ok = request_line(c->req, method, &p0, &p1);
    int get = ok && !strcmp(method, "GET"), head = ok && !strcmp(method, "HEAD");
    size_t plen = (size_t)(p1 - p0);
    /* a query is ignored, as scrapers may send one ("?x=1" was 404) */
    const char *q = memchr(c->req + p0, '?', plen);
    if (q) plen = (size_t)(q - (c->req + p0));
    int known =
        (plen == 8 && !memcmp(c->req + p0, "/metrics", 8)) || (plen == 1 && c->req[p0] == '/');
    const char *status = !whole          ? "431 Request Header Fields Too Large"
                         : !ok           ? "400 Bad Request"
                         : !get && !head ? "405 Method Not Allowed"
                         : !known        ? "404 Not Found"
                                         : "200 OK";
    /* the answer is a copy: publishing (the consuming thread) never waits on a client */
    size_t len = 0;
    char *body = NULL;
    if (status[0] == '2') {
        pthread_mutex_lock(&m->mu);
        len = m->len;
        body = len ? malloc(len) : NULL;
        if (body)
            memcpy(body, m->text, len);
        else
            len = 0;
        pthread_mutex_unlock(&m->mu);
    } else {
        body = strdup(status);
        len = body ? strlen(body) : 0;
    }
    char hd[256];
    int hl = snprintf(hd, sizeof(hd),
                      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, len);
    size_t send_body = head ? 0 : len;
    c->out = malloc((size_t)hl + send_body);
    if (c->out) {
        memcpy(c->out, hd, (size_t)hl);
        if (send_body)
            memcpy(c->out + hl, body, send_body);
        c->out_len = (size_t)hl + send_body;
        c->out_off = 0;
    }
    free(body);
    c->deadline = mono_ms() + REQUEST_MS;
    if (!c->out)
        client_close(c);
}

/* Reads what the client sent; 0 to go on, -1 when it is done with. */
static int client_read(edr_metrics_t *m, client_t *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        c->got += (size_t)n;
        c->req[c->got] = 0;
        if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") || c->got == sizeof(c->req) - 1) {
            client_answer(m, c,
                          c->got < sizeof(c->req) - 1 || strstr(c->req, "\r\n\r\n") ||
                              strstr(c->req, "\n\n"));
            return c->fd < 0 ? -1 : 0;
        }
    }
}

/* Sends what is left of the answer; -1 once done (or failed). */
static int client_write(client_t *c)
{
    while (c->out_off < c->out_len) {
        /* MSG_NOSIGNAL: a client gone early is no SIGPIPE for a host process
         * that keeps the default action (the edr CLI runs collectors too) */
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0)
            c->out_off += (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else if (w < 0 && errno == EAGAIN)
            return 0;
        else
            return -1;
    }
    return -1;
}

static void *run(void *arg)
{
    edr_metrics_t *m = arg;
    client_t *cl = calloc(MAX_CLIENTS, sizeof(*cl));
    if (!cl)
        return NULL;
    for (int i = 0; i < MAX_CLIENTS; i++)
        cl[i].fd = -1;
    for (;;) {
        struct pollfd p[2 + MAX_CLIENTS];
        int idx[MAX_CLIENTS], n = 2;
        int64_t now = mono_ms(), wait = -1;
        p[0] = (struct pollfd){.fd = m->fd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = m->stop_pipe[0], .events = POLLIN};
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (cl[i].fd < 0)
                continue;
            if (now >= cl[i].deadline) { /* its time is up */
                client_close(&cl[i]);
                continue;
            }
            if (wait < 0 || cl[i].deadline - now < wait)
                wait = cl[i].deadline - now;
            idx[n - 2] = i;
            p[n++] = (struct pollfd){.fd = cl[i].fd, .events = cl[i].out ? POLLOUT : POLLIN};
        }
        if (poll(p, (nfds_t)n, (int)wait) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        for (int k = 2; k < n; k++) {
            client_t *c = &cl[idx[k - 2]];
            if (!p[k].revents)
                continue;
            if ((c->out ? client_write(c) : client_read(m, c)) < 0)
                client_close(c);
        }
        if (!(p[0].revents & POLLIN))
            continue;
        /* non-blocking: a connection reset before the accept leaves nothing to wait for */
        int cfd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the connection stays queued: wait instead of spinning on it */
                struct pollfd s = {.fd = m->stop_pipe[0], .events = POLLIN};
                if (poll(&s, 1, 200) > 0)
                    break;
            }
            continue;
        }
        int slot = -1, oldest = -1;
        for (int i = 0; i < MAX_CLIENTS && slot < 0; i++) {
            if (cl[i].fd < 0)
                slot = i;
            else if (!cl[i].out && (oldest < 0 || cl[i].deadline < cl[oldest].deadline))
                oldest = i;
        }
        if (slot < 0 && oldest >= 0) {
            client_close(&cl[oldest]);
            slot = oldest;
        }
        if (slot < 0) { /* every one is being answered: this one waits its turn no more */
            close(cfd);
            continue;
        }
        cl[slot] = (client_t){.fd = cfd, .deadline = mono_ms() + REQUEST_MS};
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        client_close(&cl[i]);
    free(cl);
    return NULL;
}

edr_metrics_t *edr_metrics_new(const char *addr, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
        snprintf(err, errlen, "collector.metrics_listen: '%s' is not host:port", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    char *end = NULL;
    errno = 0;
    long port = colon[1] >= '0' && colon[1] <= '9' ? strtol(colon + 1, &end, 10) : -1;
    if (port < 0 || port > 65535 || errno || *end) {
        snprintf(err, errlen, "collector.metrics_listen: '%s' is not a port (0-65535)", colon + 1);
        return NULL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "collector.metrics_listen: '%s' is not an IPv4 address", host);
        return NULL;
    }
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127)
        edr_log_warn("collector.metrics_listen %s: not a loopback address: the metrics (host "
                     "activity, lag, loss) are served to the network without authentication",
                     addr);
    edr_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->stop_pipe[0] = m->stop_pipe[1] = -1;
    pthread_mutex_init(&m->mu, NULL);
    m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(m->fd, 64) != 0) {
        snprintf(err, errlen, "collector.metrics_listen %s: %s", addr, strerror(errno));
        goto fail;
    }
    socklen_t sl = sizeof(sa);
    getsockname(m->fd, (struct sockaddr *)&sa, &sl);
    m->port = ntohs(sa.sin_port);
    if (pipe(m->stop_pipe) != 0 || pthread_create(&m->th, NULL, run, m) != 0) {
        snprintf(err, errlen, "cannot start the metrics thread");
        goto fail;
    }
    return m;
fail:
    if (m->fd >= 0)
        close(m->fd);
    if (m->stop_pipe[0] >= 0) {
        close(m->stop_pipe[0]);
        close(m->stop_pipe[1]);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
    return NULL;
}

void edr_metrics_destroy(edr_metrics_t *m)
{
    if (!m)
        return;
    if (write(m->stop_pipe[1], "x", 1) == 1)
        pthread_join(m->th, NULL);
    close(m->stop_pipe[0]);
    close(m->stop_pipe[1]);
    close(m->fd);
    pthread_mutex_destroy(&m->mu);
    free(m->text);
    free(m);
}

void edr_metrics_publish(edr_metrics_t *m, const char *text, size_t len)
{
    char *t = malloc(len + 1);
    if (!t)
        return;
    memcpy(t, text, len);
    t[len] = 0;
    pthread_mutex_lock(&m->mu);
    free(m->text);
    m->text = t;
    m->len = len;
    pthread_mutex_unlock(&m->mu);
}

int edr_metrics_port(const edr_metrics_t *m)
{
    return m->port;
}
