/* Workload for bench/ebpf-completeness.sh: fork+exec and file create/write/rename/delete at fixed
 * rates, counted. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    double rate, secs;
    const char *dir, *tag;
    unsigned long done;
    double elapsed;
} job_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until item i of a steady rate is due (paces in 1 ms steps). */
static void pace(double t0, double rate, unsigned long i)
{
    double due = t0 + (double)i / rate, t = now_s();
    if (due > t) {
        struct timespec ts = {(time_t)(due - t),
                              (long)((due - t - (double)(time_t)(due - t)) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void *exec_loop(void *arg)
{
    job_t *j = arg;
    double t0 = now_s();
    unsigned long n = (unsigned long)(j->rate * j->secs);
    for (unsigned long i = 0; i < n; i++) {
        pace(t0, j->rate, i);
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/true", "true", j->tag, (char *)NULL);
            _exit(127);
        }
        if (p > 0) {
            j->done++;
            /* reap finished children without blocking */
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
        }
    }
    while (wait(NULL) > 0 || errno == EINTR) {
    }
    j->elapsed = now_s() - t0;
    return NULL;
}

/* One cycle = 4 file operations: create, first write, rename, delete. */
static void *file_loop(void *arg)
{
    job_t *j = arg;
    char a[512], b[512];
    double t0 = now_s();
    unsigned long cycles = (unsigned long)(j->rate / 4 * j->secs);
    for (unsigned long i = 0; i < cycles; i++) {
        pace(t0, j->rate / 4, i);
        snprintf(a, sizeof(a), "%s/f%lu.tmp", j->dir, i);
        snprintf(b, sizeof(b), "%s/f%lu.dat", j->dir, i);
        int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) continue;
        if (write(fd, "0123456789abcdef", 16) != 16) {
            close(fd);
            continue;
        }
        close(fd);
        if (rename(a, b) != 0 || unlink(b) != 0) continue;
        j->done += 4;
    }
    j->elapsed = now_s() - t0;
    return NULL;
}

int main(int argc, char **argv)
{
    job_t ex = {2000, 5, NULL, "edr-bench", 0, 0}, fi = {20000, 5, NULL, NULL, 0, 0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--exec-rate"))
            ex.rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--file-rate"))
            fi.rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            ex.secs = fi.secs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            fi.dir = argv[i + 1];
        else if (!strcmp(argv[i], "--tag"))
            ex.tag = argv[i + 1];
        else {
            fprintf(stderr, "bench_ebpf_load: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!fi.dir) {
        fprintf(stderr, "usage: bench_ebpf_load --dir DIR [--exec-rate N] [--file-rate N] "
                        "[--seconds S] [--tag T]\n");
        return 2;
    }
    pthread_t te, tf;
    pthread_create(&te, NULL, exec_loop, &ex);
    pthread_create(&tf, NULL, file_loop, &fi);
    pthread_join(te, NULL);
    pthread_join(tf, NULL);
    printf("execs %lu %.3f\nfileops %lu %.3f\n", ex.done, ex.elapsed, fi.done, fi.elapsed);
    return 0;
}
