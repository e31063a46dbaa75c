/* edr-collector: flags and signals around the collector loop. */
#include "collector_int.h"

#include "edr/config.h"
#include "edr/err.h"
#include "edr/log.h"
#include "edr/version.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edr-collector [--config FILE] [--set key=value]... [--store DIR]\n"
            "                     [--brokers LIST] [--group ID] [--exit-when-idle SECONDS]\n"
            "Consumes edr.telemetry.v1 in a consumer group and stores every batch exactly\n"
            "once in the RocksDB store (one shard per partition). Bad frames go to\n"
            "edr.deadletter.v1 with the reason in a header. Metrics in Prometheus format\n"
            "on collector.metrics_listen (http://127.0.0.1:9464/metrics by default; the\n"
            "metrics, and which count loss: docs/metrics.md). 'edr config defaults' lists\n"
            "every setting. SIGTERM or SIGINT stops it after storing what it read;\n"
            "SIGHUP is ignored (settings take effect at a restart).\n"
            "\n"
            "  -c, --config FILE        the YAML configuration (docs/config.md; default\n"
            "                           $EDR_CONFIG)\n"
            "  -s, --set KEY=VALUE      one setting, over the file and EDR_* variables\n"
            "  --store DIR              collector.store_dir\n"
            "  --brokers LIST           kafka.brokers ('embedded': in-process cluster)\n"
            "  --group ID               collector.group_id\n"
            "  --exit-when-idle SECS    exit after SECS without a message, once partitions\n"
            "                           were assigned (tests, benchmarks; 0: never)\n"
            "  --assign-all             no consumer group: consume every partition (a single\n"
            "                           collector; restarts skip the group join)\n"
            "  -V, --version            print the version\n"
            "  -h, --help               this help\n"
            "Exit codes: 0 stopped by a signal or --exit-when-idle, everything read stored;\n"
            "1 a bad setting, a store or Kafka it cannot use (the log says why); 2 bad flags.\n");
}

int main(int argc, char **argv)
{
    edr_log_init("edr-collector", EDR_LOG_INFO);
    /* what it writes (store files, outputs) holds telemetry: its own only
     * (RocksDB made its files 0644: review-1206p-sec 4) */
    umask(077);
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"store", required_argument, 0, 'S'},
                                         {"brokers", required_argument, 0, 'b'},
                                         {"group", required_argument, 0, 'g'},
                                         {"exit-when-idle", required_argument, 0, 'i'},
                                         {"assign-all", no_argument, 0, 'A'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    const char *cfg_path = NULL;
    edr_config_args_t args = {0};
    int c, rc = 2;
    edr_collector_opts_t co = {0};
    edr_config_t *cfg = NULL;
    while ((c = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 's': {
            int r = edr_config_args_add(&args, NULL, optarg);
            if (r == EDR_EINVAL)
                fprintf(stderr, "edr-collector: --set: expected KEY=VALUE, got '%s'\n", optarg);
            else if (r)
                fprintf(stderr, "edr-collector: out of memory\n");
            if (r)
                goto out;
            break;
        }
        case 'S':
        case 'b':
        case 'g':
            if (edr_config_args_add(&args,
                                    c == 'S'   ? "collector.store_dir"
                                    : c == 'b' ? "kafka.brokers"
                                               : "collector.group_id",
                                    optarg)) {
                fprintf(stderr, "edr-collector: out of memory\n");
                goto out;
            }
            break;
        case 'i': {
            char *end;
            co.exit_when_idle = strtod(optarg, &end);
            if (end == optarg || *end || !(co.exit_when_idle >= 0)) {
                fprintf(stderr, "edr-collector: --exit-when-idle: expected seconds, got '%s'\n", optarg);
                goto out;
            }
            break;
        }
        case 'A': co.assign_all = 1; break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'V':
            printf("edr-collector %s\n", edr_version_long());
            rc = 0;
            goto out;
        default: usage(stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edr-collector: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        goto out;
    }
    cfg = edr_config_new();
    rc = 1; /* a bad setting (docs/config.md); 2 is for bad flags */
    if (!cfg || edr_config_load_standard(cfg, cfg_path, args.sets, args.n))
        goto out;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* no reload: a hangup (a closed terminal, a reload by habit) killed it
     * without its flush and summary */
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    char err[1024];
    edr_collector_t *col = edr_collector_new(cfg, &co, err, sizeof(err));
    if (!col) {
        edr_log_error("%s", err);
        rc = 1;
        goto out;
    }
    rc = edr_collector_run(col, &stop_flag);
    edr_collector_destroy(col);
out:
    edr_config_destroy(cfg);
    edr_config_args_free(&args);
    return rc;
}
