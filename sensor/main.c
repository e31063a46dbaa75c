/* edr-sensor: the endpoint daemon's command line (flags, configuration, reload) over edr_sensor_*. */
#include "edr/config.h"
#include "edr/err.h"
#include "edr/log.h"
#include "edr/version.h"
#include "sensor.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: edr-sensor [OPTIONS]\n"
    "Collects process, file and network telemetry on this host, batches it into\n"
    "zstd-compressed protobuf frames and produces them to Kafka (key = host id),\n"
    "spooling to disk while Kafka is unreachable.\n"
    "\n"
    "  -c, --config FILE       configuration file (default $EDR_CONFIG)\n"
    "  -s, --set KEY=VALUE     override one setting (repeatable; see edr config defaults)\n"
    "      --source SRC        auto, ebpf, fallback, synth, or sysmon:FILE (sensor.source)\n"
    "      --output OUT        kafka; jsonl: print events as JSON lines; null: encode, discard\n"
    "      --rate N            synth/replay events per second, 0: as fast as possible\n"
    "      --hosts N           hosts simulated by the synth source (sensor.synth_hosts)\n"
    "      --state-dir DIR     state directory: lock, batch sequence, spool\n"
    "      --brokers LIST      Kafka bootstrap servers (kafka.brokers)\n"
    "      --max-events N      stop after N source events (tests, benchmarks)\n"
    "      --exit-after-idle D exit when no event came for duration D (e.g. 2s)\n"
    "      --keep-caps         do not drop capabilities after the source started\n"
    "  -V, --version           print the version\n"
    "  -h, --help              this help\n"
    "\n"
    "Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT flush and exit.\n";

typedef struct {
    const char *cfg_path;
    char **sets;
    int n_sets;
} reload_ctx_t;

static edr_config_t *reload(void *ud)
{
    reload_ctx_t *r = ud;
    edr_config_t *cfg = edr_config_new();
    if (!cfg || edr_config_load_standard(cfg, r->cfg_path, r->sets, r->n_sets)) {
        edr_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

static int parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') {
        fprintf(stderr, "edr-sensor: %s: expected a non-negative integer, got '%s'\n", flag, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        fprintf(stderr, "edr-sensor: %s: expected a non-negative integer, got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_SOURCE = 256, O_OUTPUT, O_RATE, O_HOSTS, O_STATE, O_BROKERS, O_MAX, O_IDLE, O_CAPS };
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"source", required_argument, 0, O_SOURCE},
                                         {"output", required_argument, 0, O_OUTPUT},
                                         {"rate", required_argument, 0, O_RATE},
                                         {"hosts", required_argument, 0, O_HOSTS},
                                         {"state-dir", required_argument, 0, O_STATE},
                                         {"brokers", required_argument, 0, O_BROKERS},
                                         {"max-events", required_argument, 0, O_MAX},
                                         {"exit-after-idle", required_argument, 0, O_IDLE},
                                         {"keep-caps", no_argument, 0, O_CAPS},
                                         {"version", no_argument, 0, 'V'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    edr_config_args_t args = {0};
    char num[32];
    int c, rc = 1;
    const char *cfg_path = NULL;
    edr_sensor_opts_t so = {0};
    umask(077);
    /* a stop or reload request during startup stays pending until
     * edr_sensor_run() watches these signals (their default action would kill
     * the daemon half-started); threads started meanwhile inherit the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    edr_log_init("edr-sensor", EDR_LOG_INFO);
#define ADD_SET(key, value)                                                                        \
    do {                                                                                           \
        if (edr_config_args_add(&args, key, value)) {                                              \
            fprintf(stderr, "edr-sensor: out of memory\n");                                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)
    while ((c = getopt_long(argc, argv, "c:s:Vh", opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 's': {
            int r = edr_config_args_add(&args, NULL, optarg);
            if (r == EDR_EINVAL) {
                fprintf(stderr, "edr-sensor: --set: expected KEY=VALUE, got '%s'\n", optarg);
                return 2;
            }
            if (r) {
                fprintf(stderr, "edr-sensor: out of memory\n");
                return 1;
            }
            break;
        }
        case O_SOURCE:
            ADD_SET("sensor.source", optarg);
            break;
        case O_OUTPUT:
            ADD_SET("sensor.output", optarg);
            break;
        case O_RATE:
            if (parse_u64("--rate", optarg, &v))
                return 2;
            snprintf(num, sizeof(num), "%" PRIu64, v);
            ADD_SET("sensor.rate", num);
            break;
        case O_HOSTS:
            if (parse_u64("--hosts", optarg, &v))
                return 2;
            snprintf(num, sizeof(num), "%" PRIu64, v);
            ADD_SET("sensor.synth_hosts", num);
            break;
        case O_STATE:
            ADD_SET("sensor.state_dir", optarg);
            break;
        case O_BROKERS:
            ADD_SET("kafka.brokers", optarg);
            break;
        case O_MAX:
            if (parse_u64("--max-events", optarg, &so.max_events))
                return 2;
            break;
        case O_IDLE:
            if (edr_parse_duration(optarg, &so.exit_after_idle_ns) || !so.exit_after_idle_ns) {
                fprintf(stderr, "edr-sensor: --exit-after-idle: expected a duration like 2s, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_CAPS:
            so.keep_caps = 1;
            break;
        case 'V':
            printf("edr-sensor %s\n", edr_version_long());
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edr-sensor: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    edr_config_t *cfg = edr_config_new();
    if (!cfg) {
        fprintf(stderr, "edr-sensor: out of memory\n");
        return 1;
    }
    if (edr_config_load_standard(cfg, cfg_path, args.sets, args.n)) {
        edr_config_destroy(cfg);
        return 1;
    }
    if (strcmp(edr_config_str(cfg, "sensor.output"), "jsonl") == 0)
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    reload_ctx_t rctx = {cfg_path, args.sets, args.n};
    so.reload = reload;
    so.reload_ud = &rctx;
    char err[1024];
    edr_sensor_t *s = edr_sensor_new(cfg, &so, err, sizeof(err));
    if (!s) {
        edr_log_error("%s", err);
        edr_config_destroy(cfg);
        return 1;
    }
    rc = edr_sensor_run(s) ? 1 : 0;
    edr_sensor_destroy(s);
    edr_config_args_free(&args);
    return rc;
}
