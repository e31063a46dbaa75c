/* edr store: read commands over a store (secondary instances, safe while a collector writes). */
#include "cli_int.h"
#include "edr/err.h"
#include "edr/event.h"
#include "edr/identity.h"
#include "edr/store.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: edr store COMMAND --store DIR [ARGS]\n"
               "  stats                 blocks, events, hosts, bytes on disk, bytes/event\n"
               "  hosts                 every host with first/last seen, last seq, latest health\n"
               "  proc ENTITY           one process record (ENTITY: 32 hex digits)\n"
               "  tree ENTITY           its ancestry (root last) and its children\n"
               "  events ENTITY         events of the process [--from NS] [--to NS]\n"
               "  hash SHA256           every (host, process) that ran this image\n"
               "  file PATH             blocks with an event naming the path\n");
}

static void print_proc(const Edr__V1__ProcessRecord *p, const char *indent)
{
    char e[33], par[33];
    edr_hex(p->entity_id.data, p->entity_id.len == 16 ? 16 : 0, e);
    edr_hex(p->parent_entity_id.data, p->parent_entity_id.len == 16 ? 16 : 0, par);
    printf("%s%s pid %u parent %s start %llu end %llu exit %d execs %u\n%s  ", indent, e, p->pid,
           par[0] ? par : "-", (unsigned long long)p->start_time_ns,
           (unsigned long long)p->end_time_ns, p->exit_code, p->exec_count, indent);
    edr_cli_print_escaped(stdout, p->exe ? p->exe : "");
    printf(" :: ");
    edr_cli_print_escaped(stdout, p->command_line ? p->command_line : "");
    printf("\n");
}

static int proc_cb(const Edr__V1__ProcessRecord *p, void *ud)
{
    print_proc(p, ud);
    return 0;
}

static int host_cb(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)ud;
    char id[33];
    edr_hex(h->host_id.data, h->host_id.len == 16 ? 16 : 0, id);
    printf("%s ", id);
    edr_cli_print_escaped(stdout, h->hostname ? h->hostname : "");
    printf(" first %llu last %llu seq %llu", (unsigned long long)h->first_seen_ns,
           (unsigned long long)h->last_seen_ns, (unsigned long long)h->last_seq);
    if (health && health->sensor_health) {
        uint64_t drops = 0;
        for (size_t i = 0; i < health->sensor_health->n_drops; i++)
            drops += health->sensor_health->drops[i]->count;
        printf(" health ");
        edr_cli_print_escaped(stdout, health->sensor_health->fidelity);
        printf(" drops %llu", (unsigned long long)drops);
    }
    printf("\n");
    return 0;
}

static int ev_cb(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                 void *ud)
{
    (void)k;
    (void)ud;
    printf("%llu %s pid %u\n", (unsigned long long)edr_event_time(b, e),
           edr_event_kind_name(e->body_case), e->pid);
    return 0;
}

static int hash_cb(const uint8_t host[16], const uint8_t ent[16], void *ud)
{
    (void)ud;
    char h[33], e[33];
    printf("host %s process %s\n", edr_hex(host, 16, h), edr_hex(ent, 16, e));
    return 0;
}

static int blk_cb(const edr_block_info_t *bi, void *ud)
{
    (void)ud;
    char h[33];
    printf("host %s bucket %u seq %llu events %u time %llu..%llu\n",
           edr_hex(bi->key.host_id, 16, h), bi->key.bucket, (unsigned long long)bi->key.seq,
           bi->n_events, (unsigned long long)bi->first_ns, (unsigned long long)bi->last_ns);
    return 0;
}

int edr_cmd_store(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL;
    uint64_t from = 0, to = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:f:t:h", opts, NULL)) != -1) {
        if (c == 's')
            dir = optarg;
        else if (c == 'f')
            from = strtoull(optarg, NULL, 10);
        else if (c == 't')
            to = strtoull(optarg, NULL, 10);
        else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (!dir || optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    char err[1024];
    edr_store_t *s = edr_store_open(dir, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "edr store: %s\n", err);
        return 1;
    }
    int rc = 0;
    uint8_t id[32];
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    if (!strcmp(cmd, "stats")) {
        edr_store_stats_t st;
        rc = edr_store_stats(s, &st);
        if (!rc)
            printf("shards %llu\nhosts %llu\nblocks %llu\nevents %llu\nframe_bytes %llu\n"
                   "disk_bytes %llu\nbytes_per_event %.2f\nprocesses ~%llu\n",
                   (unsigned long long)st.shards, (unsigned long long)st.hosts,
                   (unsigned long long)st.blocks, (unsigned long long)st.events,
                   (unsigned long long)st.frame_bytes, (unsigned long long)st.disk_bytes,
                   st.events ? (double)st.disk_bytes / (double)st.events : 0.0,
                   (unsigned long long)st.processes);
    } else if (!strcmp(cmd, "hosts")) {
        rc = edr_store_hosts(s, host_cb, NULL);
    } else if (!strcmp(cmd, "hash")) {
        if (!arg || edr_unhex(arg, id, 32)) {
            fprintf(stderr, "edr store hash: want 64 hex digits\n");
            rc = 2;
        } else
            rc = edr_store_hash_processes(s, id, hash_cb, NULL);
    } else if (!strcmp(cmd, "file")) {
        if (!arg)
            rc = 2;
        else
            rc = edr_store_file_blocks(s, arg, from, to, blk_cb, NULL);
    } else if (!strcmp(cmd, "proc") || !strcmp(cmd, "tree") || !strcmp(cmd, "events")) {
        if (!arg || edr_unhex(arg, id, 16)) {
            fprintf(stderr, "edr store %s: want an entity id of 32 hex digits\n", cmd);
            rc = 2;
        } else if (!strcmp(cmd, "proc")) {
            Edr__V1__ProcessRecord *p;
            rc = edr_store_process_get(s, id, &a, &p);
            if (!rc)
                print_proc(p, "");
        } else if (!strcmp(cmd, "tree")) {
            printf("ancestry:\n");
            rc = edr_store_process_ancestry(s, id, 0, proc_cb, "  ");
            if (!rc) {
                printf("children:\n");
                rc = edr_store_process_children(s, id, proc_cb, "  ");
            }
        } else
            rc = edr_store_entity_events(s, id, from, to, ev_cb, NULL);
    } else {
        usage(stderr);
        rc = 2;
    }
    if (rc < 0) {
        fprintf(stderr, "edr store %s: %s\n", cmd, edr_strerror(rc));
        rc = 1;
    }
    edr_arena_close(&a);
    edr_store_destroy(s);
    return rc;
}
