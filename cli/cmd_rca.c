/* edr rca: root cause, attack chain and impact of one process, from a store or a Sysmon export; graph exports. */
#define _GNU_SOURCE
#include "cli_int.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/identity.h"
#include "edr/log.h"

#ifdef HAVE_EDR_GRAPH
#include "edr/graph.h"
#ifdef HAVE_EDR_CORE_STORE
#include "edr/store.h"
#include "edr/sysmon.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edr rca (--store DIR | --sysmon FILE) (--entity ID | [--host H] --pid N [--at TIME])\n"
            "               [--json] [--format dot|graphml|json|stix|svg|html -o FILE]\n"
            "               [--title TEXT] [--action TEXT]... [--config FILE] [--set KEY=VALUE]...\n"
            "Finds where the attack that led to a process entered (root cause and its class),\n"
            "the chain from that root to the process, and the impact (what the attack did).\n"
            "  --entity ID   process entity id (32 hex digits)\n"
            "  --host H      hostname or host id; may be left out when the data holds one host\n"
            "  --pid N       the latest process with this pid (before --at when given)\n"
            "  --at TIME     UTC time (2022-05-11T18:10:33.5Z), an age (-2h), now, or ns\n"
            "  --json        one JSON object: root_cause, chain (root -> start), impact\n"
            "  --format F -o FILE   export the graph: DOT, GraphML, Cytoscape.js JSON, STIX 2.1,\n"
            "                SVG (graphviz) or a self-contained HTML incident card\n");
}

/* "2022-05-11T18:10:33.154Z" (fraction and Z optional) or plain ns. */
#ifdef HAVE_EDR_CORE_STORE
/*
 * The analysis through the store: with --entity, edr_rca_run_store() loads
 * the process's host window (analyzer.rca_lookback / rca_forward) and follows
 * lateral moves into other hosts of the store; with --pid, the host (given,
 * or the only one) is loaded first, around --at when given, to find the
 * process. Returns the result (r->start is the start node) or NULL after a
 * message.
 */
/* "edr rca: store DIR: what", the directory as the user typed it, escaped. */
/* Lines of the export that did not make it into the graph for a reason the
 * analyst should know (unreadable, a required field missing, too long: an
 * attacker's long command line can make one): counted, the first shown. */
static void report_skipped(const char *path, const edr_sysmon_stats_t *st)
{
    static const edr_sysmon_skip_t bad[] = {EDR_SYSMON_SKIP_MALFORMED, EDR_SYSMON_SKIP_BAD_FIELD,
                                            EDR_SYSMON_SKIP_TOO_LONG};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        n += st->skipped[bad[i]];
    if (!n)
        return;
    fprintf(stderr, "edr rca: ");
    edr_cli_print_escaped(stderr, path);
    fprintf(stderr, ": %llu of %llu lines left out:", (unsigned long long)n, (unsigned long long)st->lines);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (st->skipped[bad[i]])
            fprintf(stderr, " %s %llu", edr_sysmon_skip_name(bad[i]), (unsigned long long)st->skipped[bad[i]]);
    fprintf(stderr, "; the analysis may miss what they held\n");
    for (uint64_t e = 0; e < st->n_errors && e < EDR_SYSMON_FIRST_ERRORS; e++) {
        fprintf(stderr, "  line %llu: %s: ", (unsigned long long)st->first_errors[e].lineno,
                edr_sysmon_skip_name(st->first_errors[e].reason));
        edr_cli_print_escaped(stderr, st->first_errors[e].msg);
        fputc('\n', stderr);
    }
}

static void store_error(const char *dir, const char *what)
{
    fprintf(stderr, "edr rca: store ");
    edr_cli_print_escaped(stderr, dir);
    fprintf(stderr, ": %s\n", what);
}

static edr_rca_t *rca_store(edr_graph_t *g, const char *dir, const uint8_t *entity, const char *host, long pid,
                            uint64_t at, const edr_config_t *cfg, const edr_rca_opts_t *ro)
{
    char err[256];
    edr_rca_t *r = NULL;
    /* blocks decode as the collector took them: with frame.dict_dir's
     * dictionaries and up to frame.max_raw_bytes */
    const char *dd = edr_config_str(cfg, "frame.dict_dir");
    edr_store_opts_t sto = {.dict_dir = dd && *dd ? dd : NULL,
                            .max_raw_len = edr_config_size(cfg, "frame.max_raw_bytes")};
    edr_store_t *s = edr_store_open(dir, &sto, err, sizeof(err));
    if (!s) {
        edr_cli_error("edr rca", "%s", err);
        return NULL;
    }
    edr_rca_store_opts_t so;
    edr_rca_store_opts_default(&so);
    so.lookback_ns = edr_config_duration_ns(cfg, "analyzer.rca_lookback");
    so.forward_ns = edr_config_duration_ns(cfg, "analyzer.rca_forward");
    so.max_hosts = (uint32_t)edr_config_int(cfg, "analyzer.rca_max_hosts");
    uint8_t ent[16];
    if (entity)
        memcpy(ent, entity, 16);
    else {
        uint8_t hid[16];
        int n_hosts = 0, found = edr_cli_find_host(s, host, hid, &n_hosts);
        if (found != 1) {
            if (found < 0)
                store_error(dir, edr_strerror(found));
            else if (!host && n_hosts > 1)
                fprintf(stderr, "edr rca: the store holds %d hosts: give --host\n", n_hosts);
            else if (found > 1)
                fprintf(stderr, "edr rca: %d hosts have that name: give its id\n", found);
            else {
                fprintf(stderr, "edr rca: host ");
                edr_cli_print_escaped(stderr, host ? host : "(any)");
                fprintf(stderr, ": not in the store\n");
            }
            goto out;
        }
        uint64_t from = 0, to = 0;
        if (at) {
            from = at > so.lookback_ns ? at - so.lookback_ns : 0;
            to = so.forward_ns && at < UINT64_MAX - so.forward_ns ? at + so.forward_ns : 0;
        }
        int rc = edr_graph_load_store_host(g, s, hid, from, to);
        if (rc) {
            store_error(dir, edr_strerror(rc));
            goto out;
        }
        uint32_t n = edr_graph_find_pid(g, hid, (uint32_t)pid, at, NULL);
        if (n == EDR_GRAPH_NONE) {
            fprintf(stderr, "edr rca: pid %ld: no such process%s\n", pid, at ? " at that time" : "");
            goto out;
        }
        edr_graph_node_info_t in;
        edr_graph_node(g, n, &in);
        memcpy(ent, in.entity_id, 16);
    }
    int e2 = 0;
    r = edr_rca_run_store(g, s, ent, at, ro, &so, NULL, &e2);
    if (!r) {
        if (e2 == EDR_ENOENT && entity) {
            char hex[33];
            edr_hex(entity, 16, hex);
            fprintf(stderr, "edr rca: entity %s: not found\n", hex);
        } else {
            char why[200];
            snprintf(why, sizeof(why), "analysis failed: %s", edr_strerror(e2));
            store_error(dir, why);
        }
    }
    if (r && edr_store_bad_blocks(s))
        fprintf(stderr, "edr rca: warning: %llu stored blocks could not be decoded (damaged): the "
                        "graph misses their events\n",
                (unsigned long long)edr_store_bad_blocks(s));
out:
    edr_store_destroy(s);
    return r;
}
#endif

int edr_cmd_rca(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},  {"sysmon", required_argument, NULL, 'S'},
        {"entity", required_argument, NULL, 'e'}, {"host", required_argument, NULL, 'H'},
        {"pid", required_argument, NULL, 'p'},    {"at", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},         {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'}, {"title", required_argument, NULL, 't'},
        {"action", required_argument, NULL, 'A'}, {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'x'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *store = NULL, *sysmon = NULL, *entity_s = NULL, *host = NULL, *fmt_s = NULL,
               *out_path = NULL, *title = NULL, *cfg_path = NULL;
    const char *actions[32];
    char *sets[EDR_CLI_MAX_SETS];
    int n_actions = 0, n_sets = 0, json = 0, rc = 1;
    long pid = -1;
    uint64_t at = 0;
    edr_graph_t *g = NULL;
    edr_rca_t *r = NULL;
    edr_config_t *cfg = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            store = optarg;
            break;
        case 'S':
            sysmon = optarg;
            break;
        case 'e':
            entity_s = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'p': {
            long long v;
            if (edr_cli_parse_num("rca", "--pid", optarg, 0, UINT32_MAX, &v))
                return 2;
            pid = (long)v;
            break;
        }
        case 'a':
            if (edr_cli_parse_time(optarg, edr_cli_now_ns(), &at) != 0) {
                fprintf(stderr, "edr rca: --at ");
                edr_cli_print_escaped(stderr, optarg);
                fprintf(stderr, ": not a time (2022-05-11T18:10:33Z, -2h, now or ns)\n");
                return 2;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'f':
            fmt_s = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 't':
            title = optarg;
            break;
        case 'A':
            if (n_actions == (int)(sizeof(actions) / sizeof(actions[0]))) {
                fprintf(stderr, "edr rca: more than %zu --action options\n",
                        sizeof(actions) / sizeof(actions[0]));
                return 2;
            }
            actions[n_actions++] = optarg;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 'x':
            if (edr_cli_add_set("rca", sets, &n_sets, optarg))
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
    const char *why = !store == !sysmon      ? "give one of --store and --sysmon"
                      : !entity_s == (pid < 0) ? "give one of --pid and --entity"
                      : !!fmt_s != !!out_path  ? "--format and -o go together"
                      : optind != argc         ? "unexpected argument"
                                               : NULL;
    if (why) {
        fprintf(stderr, "edr rca: %s\n", why);
        usage(stderr);
        return 2;
    }
    edr_export_format_t fmt = EDR_EXPORT_DOT;
    if (fmt_s && edr_export_format_parse(fmt_s, &fmt) != 0) {
        fprintf(stderr, "edr rca: --format ");
        edr_cli_print_escaped(stderr, fmt_s);
        fprintf(stderr, ": unknown (dot, graphml, json, stix, svg, html)\n");
        return 2;
    }
    uint8_t entity[16];
    if (entity_s && edr_unhex(entity_s, entity, 16) != 0) {
        fprintf(stderr, "edr rca: --entity ");
        edr_cli_print_escaped(stderr, entity_s);
        fprintf(stderr, ": not 32 hex digits\n");
        return 2;
    }
    cfg = edr_config_new();
    if (!cfg || edr_config_load_standard(cfg, cfg_path, sets, n_sets) != 0)
        goto out;
    g = edr_graph_new();
    if (!g) {
        fprintf(stderr, "edr rca: out of memory\n");
        goto out;
    }
    edr_rca_opts_t ro;
    edr_rca_opts_from_config(&ro, cfg);
    int err = 0;
    if (sysmon) {
        char emsg[512];
        edr_sysmon_stats_t ss;
        if (edr_graph_load_sysmon_stats(g, sysmon, &ss, emsg, sizeof(emsg)) != 0) {
            edr_cli_error("edr rca", "%s", emsg);
            goto out;
        }
        report_skipped(sysmon, &ss);
        uint32_t start;
        if (entity_s) {
            start = edr_graph_find_entity(g, entity);
            if (start == EDR_GRAPH_NONE) {
                fprintf(stderr, "edr rca: entity %s: not found\n", entity_s);
                goto out;
            }
        } else {
            uint8_t hid[16];
            if (host && edr_graph_find_host(g, host, hid) != 0) {
                fprintf(stderr, "edr rca: host ");
                edr_cli_print_escaped(stderr, host);
                fprintf(stderr, ": not found\n");
                goto out;
            }
            start = edr_graph_find_pid(g, host ? hid : NULL, (uint32_t)pid, at, &err);
            if (err) {
                fprintf(stderr, "edr rca: pid %ld exists on several hosts: give --host\n", pid);
                goto out;
            }
            if (start == EDR_GRAPH_NONE) {
                fprintf(stderr, "edr rca: pid %ld: no such process%s\n", pid, at ? " at that time" : "");
                goto out;
            }
        }
        r = edr_rca_run(g, start, at, &ro, &err);
        if (!r) {
            fprintf(stderr, "edr rca: analysis failed: %s\n", edr_strerror(err));
            goto out;
        }
    } else {
#ifdef HAVE_EDR_CORE_STORE
        r = rca_store(g, store, entity_s ? entity : NULL, host, pid, at, cfg, &ro);
        if (!r)
            goto out;
#else
        fprintf(stderr, "edr rca: --store: this build has no store support\n");
        goto out;
#endif
    }
    if (out_path) {
        edr_cli_out_t o;
        if (edr_cli_out_open(&o, "rca", out_path))
            goto out;
        edr_export_opts_t eo = {.title = title, .actions = actions, .n_actions = (size_t)n_actions};
        int e2 = edr_rca_export(g, r, fmt, &eo, o.f);
        if (e2) {
            edr_cli_out_commit(&o, "rca", 0);
            fprintf(stderr, "edr rca: ");
            edr_cli_print_escaped(stderr, out_path);
            fprintf(stderr, ": %s\n", edr_strerror(e2));
            goto out;
        }
        if (edr_cli_out_commit(&o, "rca", 1))
            goto out;
        if (!json) {
            fprintf(stderr, "edr rca: wrote ");
            edr_cli_print_escaped(stderr, out_path);
            fputc('\n', stderr);
        }
    }
    int wr = 0;
    errno = 0;
    if (json)
        wr = edr_rca_write_json(g, r, stdout);
    else if (!out_path)
        wr = edr_rca_write_text(g, r, stdout);
    /* a full disk or a closed pipe shows only when the buffer goes out */
    if ((json || !out_path) && (wr || fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "edr rca: cannot write the result: %s\n",
                wr == EDR_ENOMEM ? "out of memory" : errno ? strerror(errno) : "write error");
        rc = 1;
    } else {
        rc = 0;
    }
out:
    edr_rca_destroy(r);
    edr_graph_destroy(g);
    edr_config_destroy(cfg);
    return rc;
}

#else /* no graph library in this build */
int edr_cmd_rca(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "edr rca: this build has no graph library\n");
    return 1;
}
#endif
