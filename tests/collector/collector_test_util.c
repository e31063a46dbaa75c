/* Helpers shared by the collector fault tests: a collector child with its log captured, store
 * polling, the metrics endpoint. */
#define _GNU_SOURCE
#include "collector_test_util.h"

#include <math.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>

void cu_log_new(char *path, const char *tag)
{
    snprintf(path, 96, "/tmp/edr-test-%s-XXXXXX.log", tag);
    int fd = mkstemps(path, 4);
    if (fd < 0) abort();
    close(fd);
}

pid_t cu_collector(harness_t *h, const char *store, const char *group, double idle_s,
                   const char *const *sets, const char *log_path)
{
    const char *all[56];
    int n = 0;
    all[n++] = "log.level=info";
    for (int i = 0; sets && sets[i] && n < 54; i++)
        all[n++] = sets[i];
    all[n] = NULL;
    /* the child inherits stderr: point it at the log file around the fork */
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (saved < 0 || fd < 0) abort();
    dup2(fd, 2);
    close(fd);
    pid_t pid = h_collector(h, store, group, idle_s, all);
    dup2(saved, 2);
    close(saved);
    return pid;
}

int cu_stop(pid_t pid, double timeout)
{
    kill(pid, SIGTERM);
    return h_wait(pid, timeout);
}

void cu_teardown(harness_t *h, pid_t pid, int passed, const char *log_path)
{
    if (pid > 0 && cu_running(pid)) cu_stop(pid, 10);
    if (passed && !getenv("EDR_TEST_KEEP_LOGS"))
        unlink(log_path);
    else if (log_path[0])
        fprintf(stderr, "collector log kept in %s\n", log_path);
    h_stop(h);
}

int cu_running(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

uint64_t cu_stored_blocks(const char *store)
{
    char err[512];
    edr_store_t *s = edr_store_open(store, NULL, err, sizeof(err));
    if (!s) return 0;
    edr_store_stats_t st = {0};
    edr_store_stats(s, &st);
    edr_store_destroy(s);
    return st.blocks;
}

double cu_wait_blocks(const char *store, uint64_t n, double timeout)
{
    double t0 = h_now();
    while (h_now() - t0 < timeout) {
        if (cu_stored_blocks(store) >= n) return h_now() - t0;
        usleep(100000);
    }
    return -1;
}

static int count_cb(const edr_block_info_t *bi, void *ud)
{
    (void)bi;
    ++*(uint64_t *)ud;
    return 0;
}

uint64_t cu_host_blocks(harness_t *h, const char *store, uint32_t i)
{
    char err[512];
    edr_store_t *s = edr_store_open(store, NULL, err, sizeof(err));
    if (!s) return 0;
    uint8_t id[16];
    edr_synth_host_id(h->synth, i, id);
    uint64_t n = 0;
    edr_store_host_blocks(s, id, 0, 0, count_cb, &n);
    edr_store_destroy(s);
    return n;
}

int cu_hosts_blocks(harness_t *h, const char *store, uint64_t *counts)
{
    char err[512];
    memset(counts, 0, h->hosts * sizeof(*counts));
    edr_store_t *s = edr_store_open(store, NULL, err, sizeof(err));
    if (!s) return -1;
    for (uint32_t i = 0; i < h->hosts; i++) {
        uint8_t id[16];
        edr_synth_host_id(h->synth, i, id);
        edr_store_host_blocks(s, id, 0, 0, count_cb, &counts[i]);
    }
    edr_store_destroy(s);
    return 0;
}

char *cu_log_read(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (!b) abort();
    while (f) {
        if (cap - len < 4096 && !(b = realloc(b, cap *= 2))) abort();
        size_t r = fread(b + len, 1, cap - len - 1, f);
        if (!r) break;
        len += r;
    }
    if (f) fclose(f);
    b[len] = 0;
    return b;
}

int cu_log_count(const char *path, const char *needle)
{
    char *t = cu_log_read(path);
    int n = 0;
    for (char *p = t; (p = strstr(p, needle)); p++) {
        n++;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl;
    }
    free(t);
    return n;
}

double cu_log_wait(const char *path, const char *needle, double timeout)
{
    double t0 = h_now();
    while (h_now() - t0 < timeout) {
        if (cu_log_count(path, needle)) return h_now() - t0;
        usleep(50000);
    }
    return -1;
}

void cu_stop_summary(const char *log_path, uint64_t *batches, uint64_t *dups)
{
    char *t = cu_log_read(log_path);
    const char *p = strstr(t, "stopping: stored ");
    unsigned long long ev = 0, b = 0, d = 0;
    *batches = *dups = UINT64_MAX;
    if (p && sscanf(p, "stopping: stored %llu events in %llu batches, %llu duplicates", &ev, &b,
                    &d) == 3) {
        *batches = b;
        *dups = d;
    }
    free(t);
}

uint64_t cu_stop_deadletters(const char *log_path)
{
    char *t = cu_log_read(log_path);
    const char *p = strstr(t, "stopping: stored ");
    p = p ? strstr(p, " duplicates skipped, ") : NULL;
    unsigned long long n = 0;
    uint64_t r = p && sscanf(p, " duplicates skipped, %llu dead letters", &n) == 1 ? n : UINT64_MAX;
    free(t);
    return r;
}

int cu_metrics_port(const char *log_path, double timeout)
{
    static const char tag[] = "metrics on http://127.0.0.1:";
    if (cu_log_wait(log_path, tag, timeout) < 0) return -1;
    char *t = cu_log_read(log_path);
    char *p = strstr(t, tag);
    int port = p ? atoi(p + sizeof(tag) - 1) : -1;
    free(t);
    return port > 0 ? port : -1;
}

char *cu_metrics_get(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (b && poll(&p, 1, 5000) > 0) {
        if (cap - len < 4096 && !(b = realloc(b, cap *= 2))) break;
        ssize_t r = read(fd, b + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (!b) return NULL;
    b[len] = 0;
    char *body = strstr(b, "\r\n\r\n");
    if (strncmp(b, "HTTP/1.0 200", 12) != 0 && strncmp(b, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "metrics: unexpected answer: %.80s\n", b);
        free(b);
        return NULL;
    }
    if (!body) {
        free(b);
        return NULL;
    }
    memmove(b, body + 4, strlen(body + 4) + 1);
    return b;
}

int cu_metric(const char *text, const char *series, double *value)
{
    size_t sl = strlen(series);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, series, sl) && p[sl] == ' ') {
            *value = strtod(p + sl + 1, NULL);
            return 0;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}

double cu_metric_now(int port, const char *series)
{
    usleep(1200000);
    char *m = cu_metrics_get(port);
    double v = NAN;
    if (m && cu_metric(m, series, &v)) v = NAN;
    free(m);
    return v;
}

int32_t cu_partition_of(const uint8_t key[16], int32_t partitions)
{
    /* librdkafka's default partitioner (consistent_random) for a non-empty
     * key: CRC32 of the key modulo the partition count */
    return rd_kafka_msg_partitioner_consistent_random(NULL, key, 16, partitions, NULL, NULL);
}

void cu_produce_host(harness_t *h, uint32_t i, uint32_t n_batches, size_t n)
{
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    for (uint32_t r = 0; r < n_batches; r++) {
        Edr__V1__EventBatch *b = edr_synth_next_batch(h->synth, i, n, &a);
        const uint8_t *fr;
        size_t fl;
        if (!b || edr_frame_encode(enc, b, 0, &fr, &fl)) abort();
        for (size_t e = 0; e < b->n_events; e++)
            if (b->events[e]->body_case == EDR__V1__EVENT__BODY_PROCESS_START) h->produced_starts++;
        h->produced_events += b->n_events;
        h->produced_batches++;
        h_produce_raw(h, b->sensor->host_id.data, 16, fr, fl);
        edr_arena_reset(&a);
    }
    if (rd_kafka_flush(h->prod, 60000)) abort();
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
}

int cu_mount_store(harness_t *h, const char *opts)
{
    if (mount("tmpfs", h->store, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0) return 0;
    fprintf(stderr, "skipped: cannot mount a tmpfs on %s (%s); needs root and mount rights\n",
            h->store, strerror(errno));
    return -1;
}

int cu_join_and_leave(harness_t *h, const char *group)
{
    char err[512];
    rd_kafka_t *c = edr_kafka_consumer_new(h->cfg, h->boot, group, NULL, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "cu_join_and_leave: %s\n", err);
        return -1;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, h->topic, RD_KAFKA_PARTITION_UA);
    int got = rd_kafka_subscribe(c, sub) ? -1 : 0;
    rd_kafka_topic_partition_list_destroy(sub);
    for (double t0 = h_now(); !got && h_now() - t0 < 30;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m) rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        if (!rd_kafka_assignment(c, &a) && a) {
            got = a->cnt > 0;
            rd_kafka_topic_partition_list_destroy(a);
        }
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return got > 0 ? 0 : -1;
}
