/* edr kafka serve: the embedded Kafka cluster as a process other components connect to. */
#include "cli_int.h"
#include "edr/config.h"
#include "edr/kafka.h"
#include "edr/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t serve_stop;

static void on_signal(int sig)
{
    (void)sig;
    serve_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: edr kafka serve [--config FILE] [--set key=value]... [--bootstrap-file F]\n"
               "Runs the embedded Kafka cluster (librdkafka's mock cluster: the real protocol\n"
               "on loopback) with every edr topic, prints its bootstrap servers and serves\n"
               "until SIGINT/SIGTERM. Point components at it with kafka.brokers.\n");
}

int edr_cmd_kafka(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"bootstrap-file", required_argument, 0, 'b'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "serve") != 0) {
        int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *cfg_path = NULL, *bfile = NULL;
    char *sets[EDR_CLI_MAX_SETS];
    int n_sets = 0, c;
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:b:h", opts, NULL)) != -1) {
        if (c == 'c')
            cfg_path = optarg;
        else if (c == 's') {
            if (edr_cli_add_set("kafka serve", sets, &n_sets, optarg))
                return 2;
        }
        else if (c == 'b')
            bfile = optarg;
        else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    edr_config_t *cfg = edr_config_new();
    if (!cfg || edr_config_load_standard(cfg, cfg_path, sets, n_sets)) {
        edr_config_destroy(cfg);
        return 1;
    }
    char err[512];
    edr_kafka_cluster_t *cl =
        edr_kafka_cluster_new(cfg, (int)edr_config_int(cfg, "kafka.embedded.brokers"),
                              (int)edr_config_int(cfg, "kafka.partitions"), err, sizeof(err));
    if (!cl) {
        edr_log_error("%s", err);
        edr_config_destroy(cfg);
        return 1;
    }
    printf("%s\n", edr_kafka_cluster_bootstraps(cl));
    fflush(stdout);
    if (bfile) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", bfile);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", edr_kafka_cluster_bootstraps(cl)) < 0 || fclose(f) != 0 ||
            rename(tmp, bfile) != 0) {
            edr_log_error("cannot write %s", bfile);
            edr_kafka_cluster_destroy(cl);
            edr_config_destroy(cfg);
            return 1;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!serve_stop)
        pause();
    edr_kafka_cluster_destroy(cl);
    edr_config_destroy(cfg);
    return 0;
}
