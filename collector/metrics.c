/* Prometheus text endpoint: one thread, one connection at a time, serving the last published snapshot. */
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
 * answer, in all: one that dribbles or does not read cannot hold the only
 * serving thread (or the collector's stop) for longer. */
#define REQUEST_MS 2000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until cfd is ready for events, the deadline passes or a stop is
 * asked for: 1 when ready, 0 otherwise. */
static int wait_client(edr_metrics_t *m, int cfd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = cfd, .events = events},
                              {.fd = m->stop_pipe[0], .events = POLLIN}};
        int r = poll(p, 2, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || p[1].revents)
            return 0;
        return 1;
    }
}

static void serve_one(edr_metrics_t *m, int cfd)
{
    char req[2048];
    size_t got = 0;
    int64_t deadline = mono_ms() + REQUEST_MS;
    /* read the request head (bounded in size and time); the content does not matter */
    while (got < sizeof(req) - 1 && wait_client(m, cfd, POLLIN, deadline)) {
        ssize_t n = read(cfd, req + got, sizeof(req) - 1 - got);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    /* the answer is a copy: publishing (the consuming thread) never waits on a client */
    pthread_mutex_lock(&m->mu);
    size_t len = m->len;
    char *body = len ? malloc(len) : NULL;
    if (body)
        memcpy(body, m->text, len);
    else
        len = 0;
    pthread_mutex_unlock(&m->mu);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      len);
    deadline = mono_ms() + REQUEST_MS;
    const char *parts[2] = {head, body};
    size_t lens[2] = {(size_t)hl, len};
    for (int i = 0; i < 2; i++)
        for (size_t off = 0; off < lens[i];) {
            /* MSG_NOSIGNAL: a client gone early is no SIGPIPE for a host process
             * that keeps the default action (the edr CLI runs collectors too) */
            ssize_t w = send(cfd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!wait_client(m, cfd, POLLOUT, deadline))
                    goto out;
            } else
                goto out;
        }
out:
    free(body);
}

static void *run(void *arg)
{
    edr_metrics_t *m = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = m->fd, .events = POLLIN}, {.fd = m->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            /* non-blocking: a connection reset before the accept leaves nothing to wait for */
            int cfd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd >= 0) {
                serve_one(m, cfd);
                close(cfd);
            } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the connection stays queued: wait instead of spinning on it */
                struct pollfd s = {.fd = m->stop_pipe[0], .events = POLLIN};
                if (poll(&s, 1, 200) > 0)
                    break;
            }
        }
    }
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
    if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(m->fd, 8) != 0) {
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
