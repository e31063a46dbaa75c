/* edr-collector: flags and signals around the collector loop. */
#include "collector_int.h"

#include "edr/config.h"
#include "edr/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: edr-collector [--config FILE] [--set key=value]... [--store DIR]\n"
               "                     [--brokers LIST] [--group ID] [--exit-when-idle SECONDS]\n"
               "Consumes edr.telemetry.v1 in a consumer group and stores every batch exactly\n"
               "once in the RocksDB store (one shard per partition). Bad frames go to\n"
               "edr.deadletter.v1 with the reason in a header. Metrics in Prometheus format\n"
               "on collector.metrics_listen. 'edr config defaults' lists every setting.\n"
               "\n"
               "  --store DIR              collector.store_dir\n"
               "  --brokers LIST           kafka.brokers ('embedded': in-process cluster)\n"
               "  --group ID               collector.group_id\n"
               "  --exit-when-idle SECS    exit after SECS without a message (tests, benchmarks)\n"
               "  --assign-all             no consumer group: consume every partition (a single\n"
               "                           collector; restarts skip the group join)\n");
}

int main(int argc, char **argv)
{
    edr_log_init("edr-collector", EDR_LOG_INFO);
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"store", required_argument, 0, 'S'},
                                         {"brokers", required_argument, 0, 'b'},
                                         {"group", required_argument, 0, 'g'},
                                         {"exit-when-idle", required_argument, 0, 'i'},
                                         {"assign-all", no_argument, 0, 'A'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cfg_path = NULL;
    char *sets[128];
    char extra[3][4200];
    int n_sets = 0, n_extra = 0, c;
    edr_collector_opts_t co = {0};
    while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 's':
            if (n_sets < 120)
                sets[n_sets++] = optarg;
            break;
        case 'S':
        case 'b':
        case 'g':
            snprintf(extra[n_extra], sizeof(extra[0]), "%s=%s",
                     c == 'S' ? "collector.store_dir" : c == 'b' ? "kafka.brokers" : "collector.group_id",
                     optarg);
            sets[n_sets++] = extra[n_extra++ % 3];
            break;
        case 'i': co.exit_when_idle = atof(optarg); break;
        case 'A': co.assign_all = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edr-collector: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    edr_config_t *cfg = edr_config_new();
    if (!cfg || edr_config_load_standard(cfg, cfg_path, sets, n_sets)) {
        edr_config_destroy(cfg);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    char err[1024];
    edr_collector_t *col = edr_collector_new(cfg, &co, err, sizeof(err));
    if (!col) {
        edr_log_error("%s", err);
        edr_config_destroy(cfg);
        return 1;
    }
    int rc = edr_collector_run(col, &stop_flag);
    edr_collector_destroy(col);
    edr_config_destroy(cfg);
    return rc;
}
