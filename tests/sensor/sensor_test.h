/* Helpers for sensor tests: run edr-sensor as a child process, read frames back from Kafka. */
#ifndef EDR_SENSOR_TEST_H
#define EDR_SENSOR_TEST_H

#include "edr/config.h"
#include "edr/frame.h"
#include "edr/kafka.h"
#include "edr/log.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static inline double st_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Children started by st_spawn_sensor, killed by st_cleanup (a failed
 * assertion must not leave a sensor running). */
static pid_t st_children[64];
static int st_n_children;

static inline int st_cleanup(void **state)
{
    (void)state;
    for (int i = 0; i < st_n_children; i++) {
        if (st_children[i] > 0 && waitpid(st_children[i], NULL, WNOHANG) == 0) {
            kill(st_children[i], SIGKILL);
            waitpid(st_children[i], NULL, 0);
        }
    }
    st_n_children = 0;
    return 0;
}

/* Starts edr-sensor with argv (NULL-terminated, without the program),
 * stderr to logpath and stdout to outpath (NULL: the test's). Returns the
 * pid or -1. */
static inline pid_t st_spawn_sensor_out(const char *const *args, const char *logpath,
                                        const char *outpath)
{
    const char *argv[64];
    int n = 0;
    static char prog[4096];
    snprintf(prog, sizeof(prog), "%s/edr-sensor", EDR_BIN_DIR);
    argv[n++] = prog;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (outpath)
        posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == 0 && st_n_children < 64)
        st_children[st_n_children++] = pid;
    return rc == 0 ? pid : -1;
}

/* Starts edr-sensor with argv and stderr to logpath. Returns the pid or -1. */
static inline pid_t st_spawn_sensor(const char *const *args, const char *logpath)
{
    return st_spawn_sensor_out(args, logpath, NULL);
}

/* Waits up to timeout_s for pid; returns its exit status, or -1 (then kills it). */
static inline int st_wait(pid_t pid, double timeout_s)
{
    double t0 = st_now();
    int status;
    while (st_now() - t0 < timeout_s) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static inline void st_dump_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n++ < 200)
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/* Consumes the telemetry topic from the beginning, calling fn per decoded
 * batch, until fn returns non-zero ("have everything") and then quiet_s
 * seconds pass without a message, or timeout_s. Returns frames that failed
 * to decode, or -1 on a client error. */
typedef int (*st_batch_fn)(void *ud, const Edr__V1__EventBatch *b);
static inline int st_consume(edr_config_t *cfg, const char *boot, st_batch_fn fn, void *ud,
                             double quiet_s, double timeout_s)
{
    char err[512], topic[256];
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    char group[64];
    snprintf(group, sizeof(group), "t-%d-%ld", getpid(), (long)(st_now() * 1000));
    rd_kafka_t *c = edr_kafka_consumer_new(cfg, boot, group, NULL, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        return -1;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    edr_frame_ctx_t *dec = edr_frame_ctx_new(NULL);
    int bad = 0, complete = 0;
    double t0 = st_now(), last = t0;
    while (st_now() - t0 < timeout_s) {
        if (complete && st_now() - last > quiet_s)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        if (!m->err) {
            last = st_now();
            Edr__V1__EventBatch *b;
            if (edr_frame_decode(dec, m->payload, m->len, &b) != 0)
                bad++;
            else if (fn(ud, b))
                complete = 1;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    edr_frame_ctx_destroy(dec);
    return bad;
}

#endif
