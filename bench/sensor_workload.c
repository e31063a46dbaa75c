/* bench sensor-overhead workload: fork+exec, file create/write/rename/delete and loopback connects at fixed rates; counts what a sensor saw. */
#include "edr/arena.h"
#include "edr/jsonl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile int stop_accept;

static void *acceptor(void *arg)
{
    int ls = *(int *)arg;
    while (!stop_accept) {
        int c = accept(ls, NULL, NULL);
        if (c >= 0) {
            char b[8];
            ssize_t r = read(c, b, sizeof(b));
            (void)r;
            close(c);
        }
    }
    return NULL;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* run DIR SECONDS EXEC_PER_S FILE_OPS_PER_S CONNECTS_PER_S */
static int run(char **argv)
{
    const char *dir = argv[0];
    double secs = atof(argv[1]);
    double exec_rate = atof(argv[2]), file_rate = atof(argv[3]), conn_rate = atof(argv[4]);
    char true_path[4096], pids_path[4096], cmd[8300];
    snprintf(true_path, sizeof(true_path), "%s/wl-true", dir);
    snprintf(pids_path, sizeof(pids_path), "%s/pids", dir);
    snprintf(cmd, sizeof(cmd), "cp /usr/bin/true '%s'", true_path);
    if (system(cmd) != 0)
        return 1;
    FILE *pf = fopen(pids_path, "w");
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (!pf || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 512) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl))
        return 1;
    pthread_t th;
    pthread_create(&th, NULL, acceptor, &ls);
    /* file ops come in cycles of three: create+write, rename, delete */
    double cycle_rate = file_rate / 3.0;
    uint64_t n_exec = 0, n_cycles = 0, n_conn = 0, failed = 0;
    double t0 = now_s(), c0 = cpu_s(RUSAGE_SELF), ch0 = cpu_s(RUSAGE_CHILDREN);
    char *const targv[] = {true_path, NULL};
    for (;;) {
        double el = now_s() - t0;
        if (el >= secs)
            break;
        while (n_exec < (uint64_t)(el * exec_rate)) {
            pid_t pid;
            if (posix_spawn(&pid, true_path, NULL, NULL, targv, environ) == 0)
                fprintf(pf, "%d\n", (int)pid);
            else
                failed++;
            n_exec++;
        }
        while (n_cycles < (uint64_t)(el * cycle_rate)) {
            char a[4200], b[4200];
            snprintf(a, sizeof(a), "%s/f-%llu", dir, (unsigned long long)n_cycles);
            snprintf(b, sizeof(b), "%s/g-%llu", dir, (unsigned long long)n_cycles);
            int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
            if (fd < 0 || write(fd, "workload data\n", 14) != 14 || close(fd) || rename(a, b) ||
                unlink(b))
                failed++;
            n_cycles++;
        }
        while (n_conn < (uint64_t)(el * conn_rate)) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) || write(c, "x", 1) != 1)
                failed++;
            if (c >= 0)
                close(c);
            n_conn++;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        usleep(500);
    }
    while (waitpid(-1, NULL, 0) > 0)
        ;
    double wall = now_s() - t0;
    double cpu = cpu_s(RUSAGE_SELF) - c0 + cpu_s(RUSAGE_CHILDREN) - ch0;
    stop_accept = 1;
    shutdown(ls, SHUT_RDWR); /* wakes accept() without a connection of its own */
    pthread_join(th, NULL);
    close(ls);
    fclose(pf);
    printf("generated exec %llu file_ops %llu connects %llu failed %llu cpu_s %.3f wall_s %.3f "
           "port %u\n",
           (unsigned long long)n_exec, (unsigned long long)n_cycles * 3, (unsigned long long)n_conn,
           (unsigned long long)failed, cpu, wall, ntohs(sa.sin_port));
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* count-jsonl JSONL DIR PORT: what our sensor saw of the workload */
static int count(char **argv)
{
    const char *jl = argv[0], *dir = argv[1];
    unsigned port = (unsigned)atoi(argv[2]);
    char pids_path[4096];
    snprintf(pids_path, sizeof(pids_path), "%s/pids", dir);
    FILE *pf = fopen(pids_path, "r");
    FILE *f = fopen(jl, "r");
    if (!pf || !f)
        return 1;
    int *pids = NULL, n = 0, cap = 0, v;
    while (fscanf(pf, "%d", &v) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            pids = realloc(pids, (size_t)cap * sizeof(*pids));
        }
        pids[n++] = v;
    }
    fclose(pf);
    qsort(pids, (size_t)n, sizeof(*pids), cmp_int);
    uint8_t *seen = calloc((size_t)n + 1, 1);
    size_t dl = strlen(dir);
    uint64_t execs = 0, creates = 0, writes = 0, renames = 0, deletes = 0, conns = 0, drops = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    while ((len = getline(&line, &lcap, f)) > 0) {
        Edr__V1__Event *e;
        uint64_t t;
        uint8_t host[16];
        const char *hn;
        if (edr_jsonl_parse_line(line, (size_t)len, &a, &e, &t, host, &hn, NULL, 0) == 0) {
            switch (e->body_case) {
            case EDR__V1__EVENT__BODY_PROCESS_START: {
                int key = (int)e->pid;
                int *hit = bsearch(&key, pids, (size_t)n, sizeof(int), cmp_int);
                if (hit && !seen[hit - pids]) {
                    seen[hit - pids] = 1;
                    execs++;
                }
                break;
            }
            case EDR__V1__EVENT__BODY_FILE_CREATE: /* not wl-true and pids, made by us */
                creates += e->file_create->path && !strncmp(e->file_create->path, dir, dl) &&
                           !strstr(e->file_create->path, "/wl-true") &&
                           !strstr(e->file_create->path, "/pids");
                break;
            case EDR__V1__EVENT__BODY_FILE_WRITE:
                writes += e->file_write->path && !strncmp(e->file_write->path, dir, dl) &&
                          !strstr(e->file_write->path, "/wl-true") &&
                          !strstr(e->file_write->path, "/pids");
                break;
            case EDR__V1__EVENT__BODY_FILE_RENAME:
                renames += e->file_rename->old_path && !strncmp(e->file_rename->old_path, dir, dl);
                break;
            case EDR__V1__EVENT__BODY_FILE_DELETE:
                deletes += e->file_delete->path && !strncmp(e->file_delete->path, dir, dl);
                break;
            case EDR__V1__EVENT__BODY_NETWORK:
                conns += e->network->action == EDR__V1__NETWORK__ACTION__CONNECT &&
                         e->network->remote && e->network->remote->port == port;
                break;
            case EDR__V1__EVENT__BODY_SENSOR_HEALTH: {
                uint64_t d = 0;
                for (size_t i = 0; i < e->sensor_health->n_drops; i++)
                    d += e->sensor_health->drops[i]->count;
                drops = d; /* cumulative: the last report counts */
                break;
            }
            default:
                break;
            }
        }
        edr_arena_reset(&a);
    }
    printf("seen exec %llu file_ops %llu connects %llu drops %llu (creates %llu writes %llu "
           "renames %llu deletes %llu)\n",
           (unsigned long long)execs, (unsigned long long)(creates + renames + deletes),
           (unsigned long long)conns, (unsigned long long)drops, (unsigned long long)creates,
           (unsigned long long)writes, (unsigned long long)renames, (unsigned long long)deletes);
    free(line);
    free(pids);
    free(seen);
    fclose(f);
    edr_arena_close(&a);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "run"))
        return run(argv + 2);
    if (argc == 5 && !strcmp(argv[1], "count-jsonl"))
        return count(argv + 2);
    fprintf(stderr, "usage: bench_sensor_workload run DIR SECONDS EXEC/S FILEOPS/S CONNECTS/S\n"
                    "       bench_sensor_workload count-jsonl JSONL DIR PORT\n");
    return 2;
}
