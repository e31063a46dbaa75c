/* edr analyze --follow: consumes edr.telemetry.v1 into per-host graphs over a bounded window and answers root-cause requests on demand. */
#define _GNU_SOURCE
#include "cli_int.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/identity.h"

#ifdef HAVE_EDR_ANALYZER
#include "edr/kafka.h"
#include "edr/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: edr analyze --follow [--rca ENTITY]... [--idle SECONDS] [--config FILE] [--set KEY=VALUE]...\n"
               "Consumes edr.telemetry.v1 (group analyzer.group_id) into one provenance graph per host,\n"
               "keeping analyzer.graph_window of telemetry, and runs root-cause analyses on demand:\n"
               "  stdin lines   'rca ENTITY' (32 hex digits) prints the result as a JSON object;\n"
               "                'stats' prints counters\n"
               "  --rca ENTITY  analyse once the consumer has read what the topic held when the group\n"
               "                assigned its partitions, or no message arrived for --idle seconds\n"
               "                (default 5), whichever comes first; then exit (1 when interrupted first,\n"
               "                or when no partition was assigned within 30 s and --idle: Kafka down)\n");
}

/* Whether the consumer has read, on every assigned partition, up to the end
 * the log had when it was first asked. *as holds the assignment with those
 * targets in .offset (-1: nothing to wait for), made at the first call. A
 * live fleet never leaves the topic idle: waiting for --idle alone never
 * answered. Returns 1 caught up, 0 not yet, -1 when the watermarks cannot be
 * had (the idle rule then decides). */
static int caught_up(rd_kafka_t *cons, rd_kafka_topic_partition_list_t **as)
{
    if (!*as) {
        if (rd_kafka_assignment(cons, as) != 0 || !*as)
            return -1;
        for (int i = 0; i < (*as)->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &(*as)->elems[i];
            int64_t lo = -1, hi = -1;
            if (rd_kafka_query_watermark_offsets(cons, tp->topic, tp->partition, &lo, &hi, 2000) != 0)
                return -1; /* keeps the list: asked again no more */
            tp->offset = hi > lo ? hi : -1; /* an empty log: nothing to wait for */
        }
        /* the group's committed offsets: a partition read to its end by an
         * earlier run delivers nothing, its position stays unknown */
        rd_kafka_topic_partition_list_t *cm = rd_kafka_topic_partition_list_copy(*as);
        if (cm && rd_kafka_committed(cons, cm, 2000) == 0)
            for (int i = 0; i < cm->cnt; i++)
                if (cm->elems[i].offset >= 0 && cm->elems[i].offset >= (*as)->elems[i].offset)
                    (*as)->elems[i].offset = -1;
        if (cm)
            rd_kafka_topic_partition_list_destroy(cm);
    }
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(*as);
    if (!pos)
        return 0;
    int done = rd_kafka_position(cons, pos) == 0;
    for (int i = 0; done && i < pos->cnt; i++)
        if ((*as)->elems[i].offset >= 0 && pos->elems[i].offset < (*as)->elems[i].offset)
            done = 0;
    rd_kafka_topic_partition_list_destroy(pos);
    return done;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_stats(edr_stream_t *s)
{
    edr_stream_stats_t st;
    edr_stream_stats(s, &st);
    printf("{\"frames\":%llu,\"bad_frames\":%llu,\"events\":%llu,\"hosts\":%llu,\"rebuilds\":%llu,"
           "\"frames_kept\":%llu,\"bytes_kept\":%llu,\"edges\":%llu,\"graph_bytes\":%llu}\n",
           (unsigned long long)st.frames, (unsigned long long)st.bad_frames, (unsigned long long)st.events,
           (unsigned long long)st.hosts, (unsigned long long)st.rebuilds, (unsigned long long)st.frames_kept,
           (unsigned long long)st.bytes_kept, (unsigned long long)st.edges, (unsigned long long)st.graph_bytes);
    fflush(stdout);
}

/* Analyses one entity given as hex; prints the JSON result or an error message. Returns 0 when analysed. */
static int analyse(edr_stream_t *s, const char *hex, const edr_rca_opts_t *ro)
{
    uint8_t id[16];
    if (strlen(hex) != 32 || edr_unhex(hex, id, 16) != 0) {
        fprintf(stderr, "edr analyze: rca ");
        edr_cli_print_escaped(stderr, hex);
        fprintf(stderr, ": not 32 hex digits\n");
        return 1;
    }
    const edr_graph_t *g = NULL;
    int err = 0;
    edr_rca_t *r = edr_stream_rca(s, id, 0, ro, &g, &err);
    if (!r) {
        fprintf(stderr, "edr analyze: rca %s: %s\n", hex,
                err == EDR_ENOENT ? "not in any host's window" : edr_strerror(err));
        return 1;
    }
    int rc = edr_rca_write_json(g, r, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    edr_rca_destroy(r);
    return rc ? 1 : 0;
}

/* One request line from stdin (without its newline). */
static void request(edr_stream_t *s, const char *line, const edr_rca_opts_t *ro)
{
    if (!strncmp(line, "rca ", 4))
        analyse(s, line + 4, ro);
    else if (!strcmp(line, "stats"))
        print_stats(s);
    else if (*line) {
        fprintf(stderr, "edr analyze: unknown request '");
        edr_cli_print_escaped(stderr, line);
        fprintf(stderr, "' (rca ENTITY, stats)\n");
    }
}

int edr_cmd_analyze(int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, 'F'},       {"rca", required_argument, NULL, 'r'},
                                         {"idle", required_argument, NULL, 'i'},   {"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 'x'},    {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL, *rcas[32];
    char *sets[EDR_CLI_MAX_SETS];
    int n_sets = 0, n_rcas = 0, follow = 0, rc = 1, c;
    double idle = 5;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'F':
            follow = 1;
            break;
        case 'r':
            if (n_rcas == 32) {
                fprintf(stderr, "edr analyze: more than 32 --rca entities\n");
                return 2;
            }
            rcas[n_rcas++] = optarg;
            break;
        case 'i': {
            char *end;
            idle = strtod(optarg, &end);
            if (end == optarg || *end || !(idle >= 0 && idle <= 86400)) {
                fprintf(stderr, "edr analyze: --idle '");
                edr_cli_print_escaped(stderr, optarg);
                fprintf(stderr, "': not a number of seconds (0 to 86400)\n");
                return 2;
            }
            break;
        }
        case 'c':
            cfg_path = optarg;
            break;
        case 'x':
            if (edr_cli_add_set("analyze", sets, &n_sets, optarg))
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!follow || optind != argc) {
        usage(stderr);
        return 2;
    }
    edr_config_t *cfg = edr_config_new();
    edr_kafka_cluster_t *emb = NULL;
    rd_kafka_t *cons = NULL;
    edr_stream_t *s = NULL;
    char err[512];
    if (!cfg || edr_config_load_standard(cfg, cfg_path, sets, n_sets) != 0)
        goto out;
    const char *boot = edr_kafka_bootstraps(cfg, &emb, err, sizeof(err));
    if (!boot) {
        fprintf(stderr, "edr analyze: kafka: %s\n", err);
        goto out;
    }
    cons = edr_kafka_consumer_new(cfg, boot, edr_config_str(cfg, "analyzer.group_id"), NULL, err, sizeof(err));
    if (!cons) {
        fprintf(stderr, "edr analyze: kafka consumer: %s\n", err);
        goto out;
    }
    char topic[256];
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t ke = rd_kafka_subscribe(cons, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (ke) {
        fprintf(stderr, "edr analyze: subscribe %s: %s\n", topic, rd_kafka_err2str(ke));
        goto out;
    }
    edr_stream_opts_t so = {.window_ns = edr_config_duration_ns(cfg, "analyzer.graph_window"),
                            .max_hosts = (uint32_t)edr_config_int(cfg, "analyzer.rca_max_hosts"),
                            .max_raw_len = (uint32_t)edr_config_size(cfg, "frame.max_raw_bytes"),
                            .dict_dir = edr_config_str(cfg, "frame.dict_dir")};
    s = edr_stream_new(&so);
    if (!s) {
        fprintf(stderr, "edr analyze: cannot start the analysis (out of memory, or "
                        "frame.dict_dir unreadable: see above)\n");
        goto out;
    }
    edr_rca_opts_t ro;
    edr_rca_opts_from_config(&ro, cfg);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int stdin_open = !n_rcas;
    /* stdin is read only when poll() says it has data: no O_NONBLOCK (it
     * belongs to the open file description, shared with the shell and
     * whatever runs next, and was left set) */
    char line[256];
    size_t ll = 0;
    int skipping = 0; /* inside an over-long request: dropped up to its newline */
    double last_msg = now_s();
    int assigned = 0; /* the idle time of --rca counts from the group's assignment (a join takes seconds) */
    enum { JOIN_WAIT_S = 30 }; /* --rca waits this long (and --idle) for the assignment */
    rd_kafka_topic_partition_list_t *cu = NULL; /* caught_up()'s targets */
    int cu_state = 0;     /* caught_up(): -1 gave up on watermarks */
    double cu_check = 0;  /* next check, every 200 ms */
    int answered = !n_rcas;
    rc = 0;
    while (!stop_flag) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 50);
        if (!assigned) {
            rd_kafka_topic_partition_list_t *as = NULL;
            if (m || (rd_kafka_assignment(cons, &as) == 0 && as && as->cnt > 0)) {
                assigned = 1;
                last_msg = now_s();
            }
            if (as)
                rd_kafka_topic_partition_list_destroy(as);
        }
        if (m) {
            if (!m->err) {
                int e = edr_stream_add_frame(s, m->payload, m->len);
                if (e && e != EDR_ENOMEM)
                    fprintf(stderr, "edr analyze: %s [%d] offset %lld: %s\n", topic, (int)m->partition,
                            (long long)m->offset, edr_strerror(e));
                else if (e) {
                    fprintf(stderr, "edr analyze: out of memory\n");
                    rd_kafka_message_destroy(m);
                    rc = 1;
                    break;
                }
                last_msg = now_s();
            }
            rd_kafka_message_destroy(m);
        }
        if (n_rcas && assigned && cu_state >= 0 && now_s() >= cu_check) {
            cu_state = caught_up(cons, &cu);
            cu_check = now_s() + 0.2;
        }
        /* no assignment: Kafka unreachable, or no such group coordinator;
         * --rca waited for it for ever */
        if (n_rcas && !assigned && now_s() - last_msg >= JOIN_WAIT_S + idle) {
            fprintf(stderr, "edr analyze: no partition of %s assigned in %.0f s (Kafka unreachable?)"
                            "; nothing analysed\n", topic, JOIN_WAIT_S + idle);
            rc = 1;
            answered = 1;
            break;
        }
        if (n_rcas && assigned && (cu_state == 1 || now_s() - last_msg >= idle)) {
            for (int i = 0; i < n_rcas; i++)
                rc |= analyse(s, rcas[i], &ro);
            answered = 1;
            break;
        }
        if (!stdin_open)
            continue;
        struct pollfd pf = {.fd = 0, .events = POLLIN};
        if (poll(&pf, 1, 0) <= 0)
            continue;
        ssize_t n = read(0, line + ll, sizeof(line) - 1 - ll);
        if (n == 0) {
            stdin_open = 0; /* keep following; SIGINT/SIGTERM stop */
            continue;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                stdin_open = 0;
            continue;
        }
        ll += (size_t)n;
        line[ll] = '\0';
        char *nl;
        while ((nl = memchr(line, '\n', ll)) != NULL) {
            *nl = '\0';
            if (skipping)
                skipping = 0; /* the tail of an over-long request */
            else
                request(s, line, &ro);
            size_t rest = ll - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest + 1);
            ll = rest;
        }
        if (ll == sizeof(line) - 1) {
            if (!skipping)
                fprintf(stderr, "edr analyze: request longer than %zu bytes: dropped\n", sizeof(line) - 2);
            skipping = 1;
            ll = 0;
        }
    }
    if (!answered && rc == 0) {
        fprintf(stderr, "edr analyze: interrupted before the analysis\n");
        rc = 1;
    }
    if (cu)
        rd_kafka_topic_partition_list_destroy(cu);
out:
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    edr_stream_destroy(s);
    edr_kafka_cluster_destroy(emb);
    edr_config_destroy(cfg);
    return rc;
}

#else
int edr_cmd_analyze(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "edr analyze: this build has no analyzer library\n");
    return 1;
}
#endif
