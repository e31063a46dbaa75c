/* edr store: read commands over a store (secondary instances, safe while a collector writes). */
#include "cli_int.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/event.h"
#include "edr/identity.h"
#include "edr/jsonl.h"
#include "edr/store.h"
#include "edr/vec.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edr store COMMAND --store DIR [OPTIONS] [ARG]\n"
            "  stats                 blocks, events, hosts, bytes on disk, bytes/event\n"
            "  hosts                 every host with first/last seen, last seq, latest health\n"
            "  host HOST             events of a host (HOST: its name or 32 hex digits)\n"
            "  proc ENTITY           one process record (ENTITY: 32 hex digits)\n"
            "  tree ENTITY           its ancestry (root last) and its children\n"
            "  events ENTITY         events of the process\n"
            "  hash SHA256           every (host, process) that ran this image; --hosts: each\n"
            "                        host once, with the latest hour it ran there\n"
            "  file PATH             blocks with an event naming the path\n"
            "  remote IP             blocks with a connection to or from the address\n"
            "options:\n"
            "  --from TIME, --to TIME  host, events, file, remote: only [from, to): UTC time\n"
            "                        (2022-05-11T18:10:33.5Z), an age (-2h, -15m, -7d), now,\n"
            "                        or ns since the epoch\n"
            "  --limit N             host: at most N events (default 10000; 0: all)\n"
            "  --pid N, --kind KIND  host, events: only the events of that pid, or of that\n"
            "                        kind (process_start, file_write, network ...)\n"
            "  --json                host, events, proc, tree: one JSON object per line (ECS\n"
            "                        names, as the sensor's JSON lines output)\n"
            "  --config FILE, --set KEY=VALUE  configuration (docs/config.md); the store is\n"
            "                        read with frame.dict_dir's dictionaries\n"
            "Telemetry text (paths, command lines, host names) is printed with control\n"
            "characters escaped.\n");
}

/* --------------------------------------------------------------- hosts */

typedef struct {
    const char *want;
    uint8_t id[16], by_id[16];
    int found, n, id_match;
} host_find_t;

static int host_find_cb(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)health;
    host_find_t *hf = ud;
    hf->n++;
    if (h->host_id.len != 16)
        return 0;
    char hex[33];
    edr_hex(h->host_id.data, 16, hex);
    if (hf->want && strcasecmp(hex, hf->want) == 0) {
        memcpy(hf->by_id, h->host_id.data, 16);
        hf->id_match = 1;
    }
    if (!hf->want || (h->hostname && strcasecmp(h->hostname, hf->want) == 0) ||
        strcasecmp(hex, hf->want) == 0) {
        memcpy(hf->id, h->host_id.data, 16);
        hf->found++;
    }
    return 0;
}

int edr_cli_find_host(edr_store_t *s, const char *want, uint8_t id[16], int *n_hosts)
{
    host_find_t hf = {.want = want};
    int rc = edr_store_hosts(s, host_find_cb, &hf);
    if (rc)
        return rc;
    if (n_hosts)
        *n_hosts = hf.n;
    /* an exact id wins over names: a host named like another's id (a name
     * is the sensor's to choose) cannot hide that host */
    if (hf.id_match) {
        memcpy(id, hf.by_id, 16);
        return 1;
    }
    memcpy(id, hf.id, 16);
    return hf.found;
}

/* Host names by id, for the lines that name a host. */
typedef struct {
    uint8_t id[16];
    char *name;
} host_name_t;

typedef struct {
    host_name_t *v;
    size_t n, cap;
    uint64_t hits; /* lines printed by hash, file and remote */
} host_names_t;

static int names_cb(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)health;
    host_names_t *hn = ud;
    if (h->host_id.len != 16)
        return 0;
    if (EDR_VEC_RESERVE(hn->v, hn->cap, hn->n + 1, 16))
        return EDR_ENOMEM;
    memcpy(hn->v[hn->n].id, h->host_id.data, 16);
    hn->v[hn->n].name = strdup(h->hostname ? h->hostname : "");
    if (!hn->v[hn->n].name)
        return EDR_ENOMEM;
    hn->n++;
    return 0;
}

static void print_host(const host_names_t *hn, const uint8_t id[16])
{
    for (size_t i = 0; i < hn->n; i++)
        if (!memcmp(hn->v[i].id, id, 16) && hn->v[i].name[0]) {
            edr_cli_print_escaped(stdout, hn->v[i].name);
            return;
        }
    char h[33];
    fputs(edr_hex(id, 16, h), stdout);
}

static void print_time(uint64_t ns)
{
    char t[32];
    fputs(ns ? edr_jsonl_time_format(ns, t) : "-", stdout);
}

static int host_cb(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)ud;
    char id[33];
    edr_hex(h->host_id.data, h->host_id.len == 16 ? 16 : 0, id);
    printf("%s ", id);
    edr_cli_print_escaped(stdout, h->hostname && *h->hostname ? h->hostname : "-");
    printf(" first ");
    print_time(h->first_seen_ns);
    printf(" last ");
    print_time(h->last_seen_ns);
    printf(" seq %llu", (unsigned long long)h->last_seq);
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

/* ----------------------------------------------------------- processes */

static void print_proc(const Edr__V1__ProcessRecord *p, const char *indent)
{
    char e[33], par[33];
    edr_hex(p->entity_id.data, p->entity_id.len == 16 ? 16 : 0, e);
    edr_hex(p->parent_entity_id.data, p->parent_entity_id.len == 16 ? 16 : 0, par);
    printf("%s%s pid %u parent %s start ", indent, e, p->pid, par[0] ? par : "-");
    print_time(p->start_time_ns);
    if (p->end_time_ns) {
        printf(" end ");
        print_time(p->end_time_ns);
        if (p->exit_unknown)
            printf(" exit ?");
        else
            printf(" exit %d", p->exit_code);
        if (p->exit_signal && !p->exit_unknown) printf(" signal %d", p->exit_signal);
    } else
        printf(" running");
    printf(" execs %u\n%s  ", p->exec_count, indent);
    edr_cli_print_escaped(stdout, p->exe && *p->exe ? p->exe : "-");
    printf(" :: ");
    edr_cli_print_escaped(stdout, p->command_line ? p->command_line : "");
    printf("\n");
}

typedef struct {
    int json, write_failed;
    const char *relation; /* --json: edr.relation */
    const char *indent;   /* text */
    uint8_t last_parent[16]; /* the parent of the last record reported */
    int has_parent;
} proc_out_t;

static int proc_cb(const Edr__V1__ProcessRecord *p, void *ud)
{
    proc_out_t *o = ud;
    o->has_parent =
        p->parent_entity_id.len == 16 &&
        !(p->entity_id.len == 16 && !memcmp(p->entity_id.data, p->parent_entity_id.data, 16));
    if (o->has_parent) memcpy(o->last_parent, p->parent_entity_id.data, 16);
    if (!o->json) {
        print_proc(p, o->indent);
        return 0;
    }
    if (edr_jsonl_write_process(stdout, p, o->relation) == 0)
        return 0;
    o->write_failed = 1;
    return 1;
}

/* edr store tree: text, two headed lists; JSON, one line per process with
 * edr.relation. */
static int show_tree(edr_store_t *s, const uint8_t id[16], proc_out_t *po)
{
    po->indent = "  ";
    po->relation = "ancestry";
    if (!po->json)
        printf("ancestry:\n");
    po->has_parent = 0;
    int rc = edr_store_process_ancestry(s, id, 0, proc_cb, po);
    if (rc)
        return rc;
    /* the walk ended at a record naming a parent the store does not hold
     * (retired by retention, or never reported): say so, so that it is not
     * taken for the root (review-1206k 9) */
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    Edr__V1__ProcessRecord *pp;
    if (po->has_parent && edr_store_process_get(s, po->last_parent, &a, &pp) == EDR_ENOENT) {
        char hex[33];
        edr_hex(po->last_parent, 16, hex);
        if (!po->json)
            printf("  (parent %s is not in the store: retired, or never reported; the ancestry "
                   "is cut here)\n",
                   hex);
        else
            fprintf(stderr,
                    "edr store: the ancestry is cut: parent %s is not in the store "
                    "(retired, or never reported)\n",
                    hex);
    }
    edr_arena_close(&a);
    po->relation = "child";
    if (!po->json)
        printf("children:\n");
    return edr_store_process_children(s, id, proc_cb, po);
}

/* -------------------------------------------------------------- events */

static void print_endpoint(const Edr__V1__Endpoint *ep)
{
    char ip[64] = "?";
    if (ep && (ep->ip.len == 4 || ep->ip.len == 16))
        inet_ntop(ep->ip.len == 4 ? AF_INET : AF_INET6, ep->ip.data, ip, sizeof(ip));
    printf(ep && ep->ip.len == 16 ? "[%s]:%u" : "%s:%u", ip, ep ? ep->port : 0);
}

/* What the event did, after its kind: the fields an analyst reads first. */
static void print_detail(const Edr__V1__Event *e)
{
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_START: {
        const Edr__V1__ProcessStart *ps = e->process_start;
        putchar(' ');
        edr_cli_print_escaped(stdout, ps->exe && *ps->exe ? ps->exe : "-");
        printf(" ::");
        if (ps->command_line && *ps->command_line) {
            putchar(' ');
            edr_cli_print_escaped(stdout, ps->command_line);
        }
        for (size_t i = 0; !(ps->command_line && *ps->command_line) && i < ps->n_argv; i++) {
            putchar(' ');
            edr_cli_print_escaped(stdout, ps->argv[i]);
        }
        break;
    }
    case EDR__V1__EVENT__BODY_PROCESS_FORK: printf(" ppid %u", e->process_fork->ppid); break;
    case EDR__V1__EVENT__BODY_PROCESS_EXIT:
        if (e->process_exit->status_unknown) {
            printf(" exit ?");
            break;
        }
        printf(" exit %d", e->process_exit->exit_code);
        if (e->process_exit->signal)
            printf(" signal %d", e->process_exit->signal);
        break;
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS:
        printf(" target pid %u", e->process_access->target_pid);
        if (e->process_access->target_exe && *e->process_access->target_exe) {
            putchar(' ');
            edr_cli_print_escaped(stdout, e->process_access->target_exe);
        }
        break;
    case EDR__V1__EVENT__BODY_FILE_CREATE:
        putchar(' ');
        edr_cli_print_escaped(stdout, e->file_create->path);
        break;
    case EDR__V1__EVENT__BODY_FILE_WRITE:
        putchar(' ');
        edr_cli_print_escaped(stdout, e->file_write->path);
        printf(" (%llu bytes)", (unsigned long long)e->file_write->bytes);
        break;
    case EDR__V1__EVENT__BODY_FILE_DELETE:
        putchar(' ');
        edr_cli_print_escaped(stdout, e->file_delete->path);
        break;
    case EDR__V1__EVENT__BODY_FILE_ATTR:
        putchar(' ');
        edr_cli_print_escaped(stdout, e->file_attr->path);
        break;
    case EDR__V1__EVENT__BODY_FILE_RENAME:
        putchar(' ');
        edr_cli_print_escaped(stdout, e->file_rename->old_path);
        printf(" -> ");
        edr_cli_print_escaped(stdout, e->file_rename->new_path);
        break;
    case EDR__V1__EVENT__BODY_FILE_EXEC: {
        const Edr__V1__FileExec *x = e->file_exec;
        if (x->anonymous) { /* no file: the range and what it may do */
            char pr[4];
            printf(" anonymous memory 0x%llx +%llu %s by %s", (unsigned long long)x->address,
                   (unsigned long long)x->length, edr_prot_name(x->prot, pr),
                   edr_memory_by_name(x->by));
            if (!x->path || !*x->path)
                break;
            printf(" path"); /* not ours (an import): shown, not hidden */
        }
        putchar(' ');
        edr_cli_print_escaped(stdout, e->file_exec->path);
        if (e->file_exec->mapped) {
            char pr[4];
            printf(" (mapped%s%s%s)", x->prot ? " " : "", x->prot ? edr_prot_name(x->prot, pr) : "",
                   x->modified ? ", modified" : "");
        }
        if (e->file_exec->sha256.len == 32) {
            char h[65];
            printf(" sha256 %s", edr_hex(e->file_exec->sha256.data, 32, h));
        }
        break;
    }
    case EDR__V1__EVENT__BODY_BPF_LOAD: {
        const Edr__V1__BpfLoad *x = e->bpf_load;
        printf(" type %u id %u ", x->prog_type, x->prog_id);
        edr_cli_print_escaped(stdout, x->name && *x->name ? x->name : "-");
        if (x->attach_to && *x->attach_to) {
            printf(" for ");
            edr_cli_print_escaped(stdout, x->attach_to);
        }
        if (x->tag.len == 8) {
            char h[17];
            printf(" tag %s", edr_hex(x->tag.data, 8, h));
        }
        if (x->found)
            printf(" (found loaded, loader not seen)");
        break;
    }
    case EDR__V1__EVENT__BODY_BPF_ATTACH:
    case EDR__V1__EVENT__BODY_BPF_DETACH: { /* one message type for both */
        const Edr__V1__BpfAttach *x = edr_event_bpf_link(e);
        printf(" program type %u id %u ", x->prog_type, x->prog_id);
        edr_cli_print_escaped(stdout, x->prog_name && *x->prog_name ? x->prog_name : "-");
        if (x->link_id)
            printf(" link %u type %u", x->link_id, x->link_type);
        else
            printf(" (no link)");
        printf(" attach type %u at ", x->attach_type);
        edr_cli_print_escaped(stdout, x->target && *x->target ? x->target : "-");
        if (x->target_id) printf(" (id %llu)", (unsigned long long)x->target_id);
        if (e->body_case == EDR__V1__EVENT__BODY_BPF_DETACH && x->found)
            printf(" (found gone, remover not seen)");
        else if (e->body_case == EDR__V1__EVENT__BODY_BPF_DETACH)
            printf(" (by a detach call of this process)");
        else if (x->found && e->pid) /* the descriptor scan's: a process holding it */
            printf(" (found attached, held by this process; attacher not seen)");
        else if (x->found)
            printf(" (found attached, attacher not seen)");
        if (x->unverified) printf(" (unverified: as the call's argument read after it)");
        if (x->socket_option == 26) printf(" (classic BPF, by setsockopt SO_ATTACH_FILTER)");
        if (x->socket_option == 50) printf(" (by setsockopt SO_ATTACH_BPF)");
        if (x->socket_option == 51)
            printf(" (classic BPF picking a reuseport socket, by setsockopt "
                   "SO_ATTACH_REUSEPORT_CBPF)");
        if (x->socket_option == 52)
            printf(" (picking a reuseport socket, by setsockopt SO_ATTACH_REUSEPORT_EBPF)");
        if (x->socket_option == 22)
            printf(" (picking a packet fanout socket, by setsockopt PACKET_FANOUT_DATA)");
        if (!x->prog_id && !x->socket_option && (x->attach_type == 46 || x->attach_type == 47))
            printf(" (classic BPF tc classifier)");
        break;
    }
    case EDR__V1__EVENT__BODY_NETWORK: {
        const Edr__V1__Network *n = e->network;
        const ProtobufCEnumValue *a =
            protobuf_c_enum_descriptor_get_value(&edr__v1__network__action__descriptor, n->action);
        const ProtobufCEnumValue *pr = protobuf_c_enum_descriptor_get_value(
            &edr__v1__network__protocol__descriptor, n->protocol);
        printf(" %s %s ", a ? a->name : "?", pr ? pr->name : "?");
        print_endpoint(n->local);
        printf(n->direction == EDR__V1__NETWORK__DIRECTION__INBOUND ? " <- " : " -> ");
        print_endpoint(n->remote);
        break;
    }
    case EDR__V1__EVENT__BODY_DNS_QUERY:
        putchar(' ');
        edr_cli_print_escaped(stdout, e->dns_query->name);
        break;
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH: {
        uint64_t drops = 0;
        for (size_t i = 0; i < e->sensor_health->n_drops; i++)
            drops += e->sensor_health->drops[i]->count;
        putchar(' ');
        edr_cli_print_escaped(stdout, e->sensor_health->fidelity);
        printf(" drops %llu", (unsigned long long)drops);
        break;
    }
    default: break;
    }
}

typedef struct {
    int json, with_entity;
    uint64_t limit, n;
    int write_failed;
    long pid;                          /* -1: any */
    Edr__V1__Event__BodyCase kind;     /* with_kind: only this kind */
    int with_kind;
} ev_out_t;

static int ev_cb(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                 void *ud)
{
    (void)k;
    ev_out_t *o = ud;
    if ((o->pid >= 0 && e->pid != (uint32_t)o->pid) || (o->with_kind && e->body_case != o->kind))
        return 0;
    if (o->limit && o->n == o->limit)
        return 1; /* stop: the caller says so */
    o->n++;
    if (o->json) {
        if (edr_jsonl_write_event(stdout, b, e) == EDR_EIO) {
            o->write_failed = 1;
            return 1;
        }
        return 0;
    }
    print_time(edr_event_time(b, e));
    printf(" %s pid %u", edr_event_kind_name(e->body_case), e->pid);
    if (o->with_entity) {
        char h[33];
        printf(" %s", e->entity_id.len == 16 ? edr_hex(e->entity_id.data, 16, h) : "-");
    }
    print_detail(e);
    putchar('\n');
    return 0;
}

/* -------------------------------------------------------------- images */

static int hash_cb(const uint8_t host[16], const uint8_t ent[16], void *ud)
{
    char e[33];
    ((host_names_t *)ud)->hits++;
    printf("host ");
    print_host(ud, host);
    printf(" process %s\n", edr_hex(ent, 16, e));
    return 0;
}

static int hash_host_cb(const uint8_t host[16], uint64_t last_bucket_ns, void *ud)
{
    ((host_names_t *)ud)->hits++;
    printf("host ");
    print_host(ud, host);
    printf(" last seen in the hour from ");
    print_time(last_bucket_ns);
    putchar('\n');
    return 0;
}

static int blk_cb(const edr_block_info_t *bi, void *ud)
{
    ((host_names_t *)ud)->hits++;
    printf("host ");
    print_host(ud, bi->key.host_id);
    printf(" seq %llu events %u time ", (unsigned long long)bi->key.seq, bi->n_events);
    print_time(bi->first_ns);
    printf(" .. ");
    print_time(bi->last_ns);
    putchar('\n');
    return 0;
}

/* ---------------------------------------------------------------- main */

int edr_cmd_store(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"limit", required_argument, 0, 'l'},
                                         {"json", no_argument, 0, 'j'},
                                         {"hosts", no_argument, 0, 'H'},
                                         {"pid", required_argument, 0, 'p'},
                                         {"kind", required_argument, 0, 'k'},
                                         {"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 'x'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL;
    uint64_t from = 0, to = 0, now = edr_cli_now_ns();
    ev_out_t eo = {.limit = 10000, .pid = -1};
    proc_out_t po = {.indent = ""};
    const char *cfg_path = NULL;
    char *sets[EDR_CLI_MAX_SETS];
    int n_sets = 0;
    int c, by_host = 0, limit_set = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:f:t:l:jHp:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'x':
            if (edr_cli_add_set("store", sets, &n_sets, optarg))
                return 2;
            break;
        case 's': dir = optarg; break;
        case 'f':
        case 't':
            if (edr_cli_parse_time(optarg, now, c == 'f' ? &from : &to)) {
                fprintf(stderr, "edr store: --%s ", c == 'f' ? "from" : "to");
                edr_cli_print_escaped(stderr, optarg);
                fprintf(stderr, ": not a time (2022-05-11T18:10:33Z, -2h, now, or ns)\n");
                return 2;
            }
            break;
        case 'l': {
            long long v;
            if (edr_cli_parse_num("store", "--limit", optarg, 0, INT64_MAX, &v))
                return 2;
            eo.limit = (uint64_t)v;
            limit_set = 1;
            break;
        }
        case 'j': eo.json = po.json = 1; break;
        case 'p': {
            long long v;
            if (edr_cli_parse_num("store", "--pid", optarg, 0, UINT32_MAX, &v))
                return 2;
            eo.pid = (long)v;
            break;
        }
        case 'k': {
            static const Edr__V1__Event__BodyCase kinds[] = {
                EDR__V1__EVENT__BODY_PROCESS_START,    EDR__V1__EVENT__BODY_PROCESS_FORK,
                EDR__V1__EVENT__BODY_PROCESS_EXIT,     EDR__V1__EVENT__BODY_PROCESS_ACCESS,
                EDR__V1__EVENT__BODY_FILE_CREATE,      EDR__V1__EVENT__BODY_FILE_WRITE,
                EDR__V1__EVENT__BODY_FILE_RENAME,      EDR__V1__EVENT__BODY_FILE_DELETE,
                EDR__V1__EVENT__BODY_FILE_ATTR,        EDR__V1__EVENT__BODY_FILE_EXEC,
                EDR__V1__EVENT__BODY_NETWORK,          EDR__V1__EVENT__BODY_DNS_QUERY,
                EDR__V1__EVENT__BODY_SENSOR_HEALTH,    EDR__V1__EVENT__BODY_BPF_LOAD,
                EDR__V1__EVENT__BODY_BPF_ATTACH,       EDR__V1__EVENT__BODY_BPF_DETACH,
                EDR__V1__EVENT__BODY_PROCESS_INVENTORY};
            eo.with_kind = 0;
            for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !eo.with_kind; i++)
                if (!strcmp(optarg, edr_event_kind_name(kinds[i]))) {
                    eo.kind = kinds[i];
                    eo.with_kind = 1;
                }
            if (!eo.with_kind) {
                fprintf(stderr, "edr store: --kind ");
                edr_cli_print_escaped(stderr, optarg);
                fprintf(stderr, ": not an event kind (");
                for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                    fprintf(stderr, "%s%s", i ? ", " : "", edr_event_kind_name(kinds[i]));
                fprintf(stderr, ")\n");
                return 2;
            }
            break;
        }
        case 'H': by_host = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || optind >= argc) {
        fprintf(stderr, "edr store: %s\n", !dir ? "--store DIR is required" : "which command?");
        usage(stderr);
        return 2;
    }
    if (to && from >= to) {
        fprintf(stderr, "edr store: --from is not before --to\n");
        return 2;
    }
    const char *cmd = argv[optind];
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    static const struct {
        const char *name, *arg;
    } cmds[] = {{"stats", NULL},        {"hosts", NULL},       {"host", "a host name or id"},
                {"proc", "an entity id"}, {"tree", "an entity id"}, {"events", "an entity id"},
                {"hash", "a SHA256"},   {"file", "a PATH"},    {"remote", "an IP address"}};
    size_t ci = 0;
    while (ci < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmds[ci].name, cmd))
        ci++;
    if (ci == sizeof(cmds) / sizeof(cmds[0])) {
        fprintf(stderr, "edr store: ");
        edr_cli_print_escaped(stderr, cmd);
        fprintf(stderr, ": no such command\n");
        usage(stderr);
        return 2;
    }
    if ((cmds[ci].arg != NULL) != (arg != NULL) || (arg && optind + 2 < argc)) {
        if (cmds[ci].arg)
            fprintf(stderr, "edr store %s: want %s\n", cmd, cmds[ci].arg);
        else
            fprintf(stderr, "edr store %s: takes no argument\n", cmd);
        return 2;
    }
    /* an option the command does not use is refused, not ignored */
    int evcmd = !strcmp(cmd, "host") || !strcmp(cmd, "events");
    const char *unused = eo.json && !evcmd && strcmp(cmd, "proc") && strcmp(cmd, "tree") ? "--json"
                         : (eo.pid >= 0 || eo.with_kind) && !evcmd ? "--pid and --kind"
                         : limit_set && strcmp(cmd, "host")         ? "--limit"
                         : by_host && strcmp(cmd, "hash")           ? "--hosts"
                         : (from || to) && !evcmd && strcmp(cmd, "file") && strcmp(cmd, "remote")
                             ? "--from and --to"
                             : NULL;
    if (unused) {
        fprintf(stderr, "edr store %s: %s: not used by this command\n", cmd, unused);
        return 2;
    }
    uint8_t id[32], ip[16];
    size_t ip_len = 0;
    if ((!strcmp(cmd, "proc") || !strcmp(cmd, "tree") || !strcmp(cmd, "events")) &&
        edr_unhex(arg, id, 16)) {
        fprintf(stderr, "edr store %s: want an entity id of 32 hex digits\n", cmd);
        return 2;
    }
    if (!strcmp(cmd, "file") && arg[0] != '/' && !strchr(arg, '\\')) {
        fprintf(stderr, "edr store file: want an absolute path (/etc/passwd, C:\\x.exe)\n");
        return 2;
    }
    if (!strcmp(cmd, "hash") && edr_unhex(arg, id, 32)) {
        fprintf(stderr, "edr store hash: want a SHA256 of 64 hex digits\n");
        return 2;
    }
    if (!strcmp(cmd, "remote")) {
        if (inet_pton(AF_INET, arg, ip) == 1)
            ip_len = 4;
        else if (inet_pton(AF_INET6, arg, ip) == 1)
            ip_len = 16;
        else {
            fprintf(stderr, "edr store remote: ");
            edr_cli_print_escaped(stderr, arg);
            fprintf(stderr, ": not an IPv4 or IPv6 address\n");
            return 2;
        }
    }

    char err[1024];
    edr_config_t *cfg = edr_config_new();
    if (!cfg || edr_config_load_standard(cfg, cfg_path, sets, n_sets) != 0) {
        edr_config_destroy(cfg); /* the loader said why */
        return 1;                /* a bad setting (docs/config.md); 2 is for bad flags */
    }
    /* blocks decode as the collector took them: with frame.dict_dir's
     * dictionaries and up to frame.max_raw_bytes */
    const char *dd = edr_config_str(cfg, "frame.dict_dir");
    edr_store_opts_t sto = {.dict_dir = dd && *dd ? dd : NULL,
                            .max_raw_len = edr_config_size(cfg, "frame.max_raw_bytes")};
    edr_store_t *s = edr_store_open(dir, &sto, err, sizeof(err));
    edr_config_destroy(cfg);
    if (!s) {
        edr_cli_error("edr store", "%s", err);
        return 1;
    }
    int rc = 0;
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    host_names_t hn = {0};
    if (!strcmp(cmd, "hash") || !strcmp(cmd, "file") || !strcmp(cmd, "remote"))
        rc = edr_store_hosts(s, names_cb, &hn);
    if (rc) {
    } else if (!strcmp(cmd, "stats")) {
        edr_store_stats_t st;
        rc = edr_store_stats(s, &st);
        if (!rc)
            printf("shards %llu\nhosts %llu\nblocks %llu\nevents %llu\nframe_bytes %llu\n"
                   "disk_bytes %llu\nbytes_per_event %.2f\nprocesses ~%llu\nspan_hours %llu\n"
                   "wide_span_hosts %llu\nwide_span_hours %llu\n",
                   (unsigned long long)st.shards, (unsigned long long)st.hosts,
                   (unsigned long long)st.blocks, (unsigned long long)st.events,
                   (unsigned long long)st.frame_bytes, (unsigned long long)st.disk_bytes,
                   st.events ? (double)st.disk_bytes / (double)st.events : 0.0,
                   (unsigned long long)st.processes, (unsigned long long)st.span_hours,
                   (unsigned long long)st.wide_span_hosts, (unsigned long long)st.wide_span_hours);
    } else if (!strcmp(cmd, "hosts")) {
        rc = edr_store_hosts(s, host_cb, NULL);
    } else if (!strcmp(cmd, "host")) {
        uint8_t hid[16];
        int n = 0;
        rc = edr_cli_find_host(s, arg, hid, &n);
        if (rc == 1) {
            eo.with_entity = 1;
            rc = edr_store_host_events(s, hid, from, to, ev_cb, &eo);
            if (rc == 1 && !eo.write_failed) {
                fprintf(stderr, "edr store host: stopped at %llu events (--limit; 0 for all)\n",
                        (unsigned long long)eo.limit);
                rc = 0;
            }
        } else if (rc >= 0) {
            fprintf(stderr, "edr store host: ");
            edr_cli_print_escaped(stderr, arg);
            fprintf(stderr, rc ? ": %d hosts have that name: give the id (edr store hosts)\n"
                               : ": not in the store (%d hosts: edr store hosts)\n",
                    rc ? rc : n);
            rc = 1;
        }
    } else if (!strcmp(cmd, "hash")) {
        rc = by_host ? edr_store_hash_hosts(s, id, hash_host_cb, &hn)
                     : edr_store_hash_processes(s, id, hash_cb, &hn);
    } else if (!strcmp(cmd, "file")) {
        rc = edr_store_file_blocks(s, arg, from, to, blk_cb, &hn);
    } else if (!strcmp(cmd, "remote")) {
        rc = edr_store_remote_blocks(s, ip, ip_len, from, to, blk_cb, &hn);
    } else if (!strcmp(cmd, "proc")) {
        Edr__V1__ProcessRecord *p;
        rc = edr_store_process_get(s, id, &a, &p);
        if (!rc)
            proc_cb(p, &po);
    } else if (!strcmp(cmd, "tree") || !strcmp(cmd, "events")) {
        /* an entity the store does not know is said so, before any heading */
        Edr__V1__ProcessRecord *p;
        rc = edr_store_process_get(s, id, &a, &p);
        if (!rc && !strcmp(cmd, "tree"))
            rc = show_tree(s, id, &po);
        else if (!rc) {
            eo.limit = 0;
            rc = edr_store_entity_events(s, id, from, to, ev_cb, &eo);
        }
    }
    /* no match: said so, and exit 1, as a process or host not in the store
     * (nothing was printed, exit 0: review-1206n-import 10) */
    if (!rc && !hn.hits &&
        (!strcmp(cmd, "hash") || !strcmp(cmd, "file") || !strcmp(cmd, "remote"))) {
        fprintf(stderr, "edr store %s: ", cmd);
        edr_cli_print_escaped(stderr, arg ? arg : "");
        fprintf(stderr, ": no match%s\n", from || to ? " in the time window" : "");
        rc = 1;
    }
    if (eo.write_failed || po.write_failed) {
        fprintf(stderr, "edr store %s: writing the output failed\n", cmd);
        rc = 1;
    } else if (rc == EDR_ENOENT) {
        fprintf(stderr, "edr store %s: ", cmd);
        edr_cli_print_escaped(stderr, arg ? arg : "");
        fprintf(stderr, ": not in the store\n");
        rc = 1;
    } else if (rc < 0) {
        fprintf(stderr, "edr store %s: %s\n", cmd, edr_strerror(rc));
        rc = 1;
    }
    if (edr_store_bad_blocks(s)) {
        fprintf(stderr, "edr store %s: %llu stored blocks could not be decoded (damaged): the "
                        "answer misses their events\n",
                cmd, (unsigned long long)edr_store_bad_blocks(s));
        if (!rc)
            rc = 1;
    }
    if (fflush(stdout) != 0 && !rc) {
        fprintf(stderr, "edr store %s: writing the output failed\n", cmd);
        rc = 1;
    }
    for (size_t i = 0; i < hn.n; i++)
        free(hn.v[i].name);
    free(hn.v);
    edr_arena_close(&a);
    edr_store_destroy(s);
    return rc;
}
