/* eBPF source, end to end in process: a scripted shell chain is observed with exact events, ids,
 * paths and addresses. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "edr/arena.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/identity.h"
#include "edr/log.h"
#include "netdev_progs.h"
#include "proc_cache.h"
#include "test_bpf_prog.h"
#include "source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/fs.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/shm.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a test emitter: keeps every event ----------------------------------- */

struct edr_emit {
    edr_arena_t arena;
    Edr__V1__Event **ev;
    size_t n, cap;
    uint8_t host[EDR_ID_LEN], boot[EDR_ID_LEN];
    uint64_t drops;
    uint64_t drops_create; /* "ebpf.ringbuf.file_create" */
    uint64_t drops_wtrack; /* "ebpf.file_write" "write_track_evicted" */
    uint64_t hash_late;    /* "sha256" "late" */
    uint64_t truncated[2]; /* "truncated": ebpf.bpf_netdev_scan, ebpf.bpf_cgroup_scan */
    uint64_t
        unavailable[3]; /* "unavailable": ebpf.io_uring, ebpf.bpf_fd_scan, ebpf.bpf_link_scan */
    uint64_t not_watched; /* "ebpf.bpf_cgroup_scan" "not_watched" */
    edr_emit_pre_ship_fn pre_ship;
    void *pre_ship_ud;
};

void edr_emit_set_pre_ship(edr_emit_t *em, edr_emit_pre_ship_fn fn, void *ud)
{
    em->pre_ship = fn;
    em->pre_ship_ud = ud;
}

/* What the batcher does before it ships the open batch. */
static void ship(edr_emit_t *em)
{
    if (em->pre_ship) em->pre_ship(em->pre_ship_ud);
}

Edr__V1__Event *edr_emit_begin(edr_emit_t *em, uint64_t t)
{
    Edr__V1__Event *e = edr_arena_alloc(&em->arena, sizeof(*e));
    if (!e) return NULL;
    edr__v1__event__init(e);
    e->time_offset_ns = (int64_t)t;
    return e;
}

void edr_emit_end(edr_emit_t *em, Edr__V1__Event *e)
{
    if (em->n == em->cap) {
        em->cap = em->cap ? em->cap * 2 : 4096;
        em->ev = realloc(em->ev, em->cap * sizeof(*em->ev));
        assert_non_null(em->ev);
    }
    em->ev[em->n++] = e;
}

edr_arena_t *edr_emit_arena(edr_emit_t *em)
{
    return &em->arena;
}

void edr_emit_drop(edr_emit_t *em, const char *source, const char *reason, uint64_t n)
{
    em->drops += n;
    if (strcmp(source, "ebpf.ringbuf.file_create") == 0 && strcmp(reason, "ringbuf_full") == 0)
        em->drops_create += n;
    if (strcmp(source, "sha256") == 0 && strcmp(reason, "late") == 0) em->hash_late += n;
    if (strcmp(source, "ebpf.file_write") == 0 && strcmp(reason, "write_track_evicted") == 0)
        em->drops_wtrack += n;
    static const char *const cut[] = {"ebpf.bpf_netdev_scan", "ebpf.bpf_cgroup_scan"};
    for (int i = 0; i < 2; i++)
        if (strcmp(source, cut[i]) == 0 && strcmp(reason, "truncated") == 0) em->truncated[i] += n;
    if (strcmp(source, "ebpf.bpf_cgroup_scan") == 0 && strcmp(reason, "not_watched") == 0)
        em->not_watched += n;
    static const char *const unav[] = {"ebpf.io_uring", "ebpf.bpf_fd_scan", "ebpf.bpf_link_scan"};
    for (int i = 0; i < 3; i++)
        if (strcmp(source, unav[i]) == 0 && strcmp(reason, "unavailable") == 0)
            em->unavailable[i] += n;
}

const uint8_t *edr_emit_host_id(const edr_emit_t *em)
{
    return em->host;
}

const uint8_t *edr_emit_boot_id(const edr_emit_t *em)
{
    return em->boot;
}

/* ---- helpers ------------------------------------------------------------- */

static int id_eq(ProtobufCBinaryData b, const uint8_t id[EDR_ID_LEN])
{
    return b.len == EDR_ID_LEN && memcmp(b.data, id, EDR_ID_LEN) == 0;
}

static void self_entity_id(edr_emit_t *em, pid_t pid, uint8_t out[EDR_ID_LEN])
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')') + 2;
    unsigned long long start = 0;
    for (int field = 3; field < 22; field++)
        p = strchr(p, ' ') + 1;
    start = strtoull(p, NULL, 10);
    edr_entity_id(em->host, em->boot, (uint32_t)pid,
                  start * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK)), out);
}

/* The path (or image) an event names, NULL for other kinds. */
static const char *event_path(const Edr__V1__Event *e)
{
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_FILE_CREATE: return e->file_create->path;
    case EDR__V1__EVENT__BODY_FILE_WRITE: return e->file_write->path;
    case EDR__V1__EVENT__BODY_FILE_DELETE: return e->file_delete->path;
    case EDR__V1__EVENT__BODY_FILE_RENAME: return e->file_rename->old_path;
    case EDR__V1__EVENT__BODY_FILE_ATTR: return e->file_attr->path;
    case EDR__V1__EVENT__BODY_FILE_EXEC: return e->file_exec->path;
    case EDR__V1__EVENT__BODY_PROCESS_START: return e->process_start->exe;
    default: return NULL;
    }
}

static Edr__V1__Event *find(edr_emit_t *em, Edr__V1__Event__BodyCase k, uint32_t pid,
                            const char *path)
{
    for (size_t i = 0; i < em->n; i++) {
        Edr__V1__Event *e = em->ev[i];
        if (e->body_case != k || (pid && e->pid != pid)) continue;
        const char *p = event_path(e);
        if (path && (!p || strcmp(p, path) != 0)) continue;
        return e;
    }
    return NULL;
}

static Edr__V1__Event *find_net(edr_emit_t *em, Edr__V1__Network__Action a, int v6,
                                uint32_t remote_port, uint32_t local_port)
{
    for (size_t i = 0; i < em->n; i++) {
        Edr__V1__Event *e = em->ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_NETWORK || e->network->action != a) continue;
        Edr__V1__Network *n = e->network;
        if (!n->local || n->local->ip.len != (v6 ? 16u : 4u)) continue;
        if (remote_port && (!n->remote || n->remote->port != remote_port)) continue;
        if (local_port && n->local->port != local_port) continue;
        return e;
    }
    return NULL;
}

/* Waits for child c, which must have exited with status 0. */
static void reap_ok(pid_t c)
{
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void pump(uv_loop_t *loop, int ms)
{
    struct timespec ts = {0, 10 * 1000000};
    for (int i = 0; i < ms / 10; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        nanosleep(&ts, NULL);
    }
}

static int bind_lo(int v6, uint16_t *port)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    assert_true(fd >= 0);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Listens on both sockets, tells the parent, accepts one connection on each. */
static void listener_child(int s4, int s6, int ready)
{
    char buf[64];
    alarm(30);
    if (listen(s4, 4) != 0 || listen(s6, 4) != 0) _exit(1);
    if (write(ready, "L", 1) != 1) _exit(1);
    for (int i = 0; i < 2; i++) {
        int c = accept(i == 0 ? s4 : s6, NULL, NULL);
        if (c < 0) _exit(2);
        while (read(c, buf, sizeof(buf)) > 0) {
        }
        close(c);
    }
    /* DNS-shaped datagrams to loopback port 53 (nothing needs to listen) */
    int u4 = socket(AF_INET, SOCK_DGRAM, 0), u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(53)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a6.sin6_addr = in6addr_loopback;
    sendto(u4, "q", 1, 0, (struct sockaddr *)&a4, sizeof(a4));
    sendto(u6, "q", 1, 0, (struct sockaddr *)&a6, sizeof(a6));
    _exit(0);
}

typedef struct {
    uv_loop_t loop;
    edr_emit_t em;
    edr_source_t *src;
    edr_config_t *cfg;
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    edr_log_init("test_sensor_ebpf", getenv("EDR_TEST_LOG_INFO") ? EDR_LOG_INFO : EDR_LOG_WARN);
    if (geteuid() != 0) {
        print_message("SKIP: the eBPF source needs root (CAP_BPF, CAP_PERFMON)\n");
        *state = NULL;
        return 0;
    }
    uv_loop_init(&f.loop);
    edr_arena_init(&f.em.arena, 1 << 20);
    edr_host_id_local(f.em.host);
    edr_boot_id_local(f.em.boot);
    char err[256];
    /* ia32 syscalls are left unseen here: the tests of the scans make their
     * BPF calls that way to get ones no hook reports (test_ia32_syscalls
     * runs its own sources, with the default) */
    f.cfg = edr_config_new();
    assert_non_null(f.cfg);
    assert_int_equal(edr_config_set(f.cfg, "sensor.ebpf_ia32", "false", "test", err, sizeof(err)),
                     0);
    f.src = edr_source_ebpf_new(f.cfg, err, sizeof(err));
    assert_non_null(f.src);
    int rc = f.src->ops->start(f.src, &f.loop, &f.em);
    if (rc == EDR_EUNSUPPORTED && test_bpf_runs_here())
        fail_msg("this kernel runs BPF programs (kernel BTF, a socket filter loads), but the "
                 "sensor's did not load: see the log above");
    if (rc == EDR_EUNSUPPORTED || rc == EDR_EPERM) {
        print_message("SKIP: eBPF unavailable here: %s (see the log above)\n", edr_strerror(rc));
        f.src->ops->destroy(f.src);
        uv_loop_close(&f.loop);
        *state = NULL;
        return 0;
    }
    assert_int_equal(rc, 0);
    snprintf(f.dir, sizeof(f.dir), "/tmp/edr-ebpf-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    if (!f) return 0;
    f->src->ops->stop(f->src);
    f->src->ops->destroy(f->src);
    edr_config_destroy(f->cfg);
    uv_loop_close(&f->loop);
    edr_arena_close(&f->em.arena);
    free(f->em.ev);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    return 0;
}

/* Seeded processes: this test process is known with the id derived from /proc. */
static void test_seeded_self(void **state)
{
    fixture_t *f = *state;
    uint8_t self[EDR_ID_LEN];
    if (!f) skip();
    self_entity_id(&f->em, getpid(), self);
    Edr__V1__Event *e = find(&f->em, EDR__V1__EVENT__BODY_PROCESS_START, (uint32_t)getpid(), NULL);
    /* the sensor's own process is seeded too: it exists, it just is not traced */
    assert_non_null(e);
    assert_true(e->process_start->seeded);
    assert_true(id_eq(e->entity_id, self));
    assert_int_equal(e->process_start->ppid, (uint32_t)getppid());
    uint8_t parent[EDR_ID_LEN];
    self_entity_id(&f->em, getppid(), parent);
    assert_true(id_eq(e->parent_entity_id, parent));
}

static void test_scripted_chain(void **state)
{
    fixture_t *f = *state;
    uint8_t self[EDR_ID_LEN];
    uint16_t p4, p6;
    int ready[2];
    char script[2048], path[256], run[128], a[128], b[128];

    if (!f) skip();
    self_entity_id(&f->em, getpid(), self);
    snprintf(run, sizeof(run), "%s/run.sh", f->dir);
    snprintf(a, sizeof(a), "%s/a.txt", f->dir);
    snprintf(b, sizeof(b), "%s/b.txt", f->dir);

    int s4 = bind_lo(0, &p4), s6 = bind_lo(1, &p6);
    assert_int_equal(pipe(ready), 0);
    pid_t lpid = fork();
    assert_true(lpid >= 0);
    if (lpid == 0) listener_child(s4, s6, ready[1]);
    close(s4);
    close(s6);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);

    /* the sensor's own file activity is filtered in the kernel */
    snprintf(path, sizeof(path), "%s/self.txt", f->dir);
    FILE *sf = fopen(path, "w");
    assert_non_null(sf);
    fputs("self\n", sf);
    fclose(sf);

    snprintf(script, sizeof(script),
             "printf '%%s\\n' '#!/bin/bash' "
             "'exec 3<>/dev/tcp/127.0.0.1/%u' 'echo hello >&3' 'exec 3>&-' "
             "'exec 4<>/dev/tcp/::1/%u' 'echo hello >&4' 'exec 4>&-' "
             "'echo data > %s' 'mv %s %s' 'chmod 600 %s' 'rm %s' > %s; "
             "chmod +x %s; %s",
             p4, p6, a, a, b, b, b, run, run, run);
    pid_t sh = fork();
    assert_true(sh >= 0);
    if (sh == 0) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    int st = -1, lst = -1;
    for (int i = 0; i < 2000 && (st == -1 || lst == -1); i++) {
        if (st == -1 && waitpid(sh, &st, WNOHANG) == 0) st = -1;
        if (lst == -1 && waitpid(lpid, &lst, WNOHANG) == 0) lst = -1;
        pump(&f->loop, 10);
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(WIFEXITED(lst) && WEXITSTATUS(lst) == 0);
    pump(&f->loop, 300);

    /* the shell: forked by us (our fork is our own activity: not reported),
     * then exec'd /bin/sh; its parent is this process */
    assert_null(find(&f->em, EDR__V1__EVENT__BODY_PROCESS_FORK, (uint32_t)sh, NULL));
    Edr__V1__Event *shs = find(&f->em, EDR__V1__EVENT__BODY_PROCESS_START, (uint32_t)sh, NULL);
    assert_non_null(shs);
    assert_int_equal(shs->entity_id.len, EDR_ID_LEN);
    assert_true(id_eq(shs->parent_entity_id, self));
    assert_int_equal(shs->process_start->ppid, (uint32_t)getpid());
    assert_false(shs->process_start->seeded);
    assert_int_equal(shs->process_start->n_argv, 3);
    assert_string_equal(shs->process_start->argv[0], "sh");
    assert_string_equal(shs->process_start->argv[1], "-c");
    assert_string_equal(shs->process_start->argv[2], script);
    assert_string_equal(shs->process_start->user, "root");
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_string_equal(shs->process_start->cwd, cwd);
    const uint8_t *sh_id = shs->entity_id.data;

    /* the shell wrote the script itself (printf is a builtin) */
    Edr__V1__Event *cr = find(&f->em, EDR__V1__EVENT__BODY_FILE_CREATE, (uint32_t)sh, run);
    assert_non_null(cr);
    Edr__V1__Event *wr = find(&f->em, EDR__V1__EVENT__BODY_FILE_WRITE, (uint32_t)sh, run);
    assert_non_null(wr);
    assert_true(wr->file_write->bytes > 0);

    /* chmod +x by a child of the shell */
    Edr__V1__Event *cm = find(&f->em, EDR__V1__EVENT__BODY_FILE_ATTR, 0, run);
    assert_non_null(cm);
    assert_int_equal(cm->file_attr->kind, EDR__V1__FILE_ATTR__KIND__CHMOD);
    assert_true(id_eq(cm->parent_entity_id, sh_id));

    /* the script: exec of run.sh by a child of the shell, image /usr/bin/bash */
    Edr__V1__Event *fx = find(&f->em, EDR__V1__EVENT__BODY_FILE_EXEC, 0, run);
    assert_non_null(fx);
    assert_true(id_eq(fx->parent_entity_id, sh_id));
    uint32_t spid = fx->pid;
    Edr__V1__Event *ss = NULL;
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_START && e->pid == spid) ss = e;
    }
    assert_non_null(ss);
    assert_true(strstr(ss->process_start->exe, "bash") != NULL);
    assert_int_equal(ss->process_start->n_argv, 2);
    assert_string_equal(ss->process_start->argv[1], run);
    assert_true(id_eq(ss->parent_entity_id, sh_id));
    assert_memory_equal(ss->entity_id.data, fx->entity_id.data, EDR_ID_LEN);
    const uint8_t *script_id = ss->entity_id.data;
    Edr__V1__Event *fk = find(&f->em, EDR__V1__EVENT__BODY_PROCESS_FORK, spid, NULL);
    assert_non_null(fk); /* the shell forked it */
    assert_memory_equal(fk->entity_id.data, script_id, EDR_ID_LEN);
    assert_true(id_eq(fk->parent_entity_id, sh_id));
    assert_int_equal(fk->process_fork->ppid, (uint32_t)sh);

    /* connections: script -> listener, both families, both endpoints */
    for (int v6 = 0; v6 <= 1; v6++) {
        static const uint8_t lo4[4] = {127, 0, 0, 1};
        uint8_t lo6[16] = {0};
        lo6[15] = 1;
        const uint8_t *lo = v6 ? lo6 : lo4;
        size_t iplen = v6 ? 16 : 4;
        Edr__V1__Event *cn =
            find_net(&f->em, EDR__V1__NETWORK__ACTION__CONNECT, v6, v6 ? p6 : p4, 0);
        assert_non_null(cn);
        assert_int_equal(cn->pid, spid);
        assert_memory_equal(cn->entity_id.data, script_id, EDR_ID_LEN);
        assert_int_equal(cn->network->protocol, EDR__V1__NETWORK__PROTOCOL__TCP);
        assert_int_equal(cn->network->direction, EDR__V1__NETWORK__DIRECTION__OUTBOUND);
        assert_memory_equal(cn->network->remote->ip.data, lo, iplen);
        assert_memory_equal(cn->network->local->ip.data, lo, iplen);
        uint32_t cport = cn->network->local->port;
        assert_true(cport != 0);
        Edr__V1__Event *ac =
            find_net(&f->em, EDR__V1__NETWORK__ACTION__ACCEPT, v6, cport, v6 ? p6 : p4);
        assert_non_null(ac);
        assert_int_equal(ac->pid, (uint32_t)lpid);
        assert_true(id_eq(ac->parent_entity_id, self));
        assert_memory_equal(ac->network->remote->ip.data, lo, iplen);
        Edr__V1__Event *ls =
            find_net(&f->em, EDR__V1__NETWORK__ACTION__LISTEN, v6, 0, v6 ? p6 : p4);
        assert_non_null(ls);
        assert_int_equal(ls->pid, (uint32_t)lpid);
        Edr__V1__Event *cl =
            find_net(&f->em, EDR__V1__NETWORK__ACTION__CLOSE, v6, v6 ? p6 : p4, cport);
        assert_non_null(cl);
        assert_int_equal(cl->pid, spid);
        /* the listener's own (another process may send to port 53 meanwhile) */
        Edr__V1__Event *dns = NULL;
        for (size_t i = 0; i < f->em.n && !dns; i++) {
            Edr__V1__Event *x = f->em.ev[i];
            if (x->pid == (uint32_t)lpid && x->body_case == EDR__V1__EVENT__BODY_NETWORK &&
                x->network->action == EDR__V1__NETWORK__ACTION__SEND && x->network->remote &&
                x->network->remote->port == 53 && x->network->local &&
                x->network->local->ip.len == (v6 ? 16u : 4u))
                dns = x;
        }
        assert_non_null(dns);
        assert_int_equal(dns->network->protocol, EDR__V1__NETWORK__PROTOCOL__UDP);
        assert_memory_equal(dns->network->remote->ip.data, lo, iplen);
    }

    /* files of the script and its children */
    Edr__V1__Event *e = find(&f->em, EDR__V1__EVENT__BODY_FILE_CREATE, spid, a);
    assert_non_null(e);
    e = find(&f->em, EDR__V1__EVENT__BODY_FILE_WRITE, spid, a);
    assert_non_null(e);
    assert_int_equal(e->file_write->bytes, 5); /* "data\n" */
    e = find(&f->em, EDR__V1__EVENT__BODY_FILE_RENAME, 0, a);
    assert_non_null(e);
    assert_string_equal(e->file_rename->new_path, b);
    assert_true(id_eq(e->parent_entity_id, script_id));
    e = find(&f->em, EDR__V1__EVENT__BODY_FILE_ATTR, 0, b);
    assert_non_null(e);
    assert_int_equal(e->file_attr->mode & 0777, 0600);
    assert_true(id_eq(e->parent_entity_id, script_id));
    e = find(&f->em, EDR__V1__EVENT__BODY_FILE_DELETE, 0, b);
    assert_non_null(e);
    assert_true(id_eq(e->parent_entity_id, script_id));

    /* exits, once per process, with the status */
    size_t exits = 0;
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *x = f->em.ev[i];
        if (x->body_case == EDR__V1__EVENT__BODY_PROCESS_EXIT && x->pid == spid) {
            exits++;
            assert_int_equal(x->process_exit->exit_code, 0);
            assert_memory_equal(x->entity_id.data, script_id, EDR_ID_LEN);
        }
    }
    assert_int_equal(exits, 1);
    assert_non_null(find(&f->em, EDR__V1__EVENT__BODY_PROCESS_EXIT, (uint32_t)sh, NULL));

    /* nothing from this process itself, except its seed record */
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *x = f->em.ev[i];
        if (x->pid == (uint32_t)getpid())
            assert_int_equal(x->body_case, EDR__V1__EVENT__BODY_PROCESS_START);
    }
    assert_null(find(&f->em, EDR__V1__EVENT__BODY_FILE_CREATE, 0, path));
    assert_int_equal(f->em.drops, 0);
}

/* ptrace attach and process_vm_readv of another process name the target. */
static void test_process_access(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    pid_t target = fork();
    assert_true(target >= 0);
    if (target == 0) {
        alarm(20);
        pause();
        _exit(0);
    }
    pid_t actor = fork();
    assert_true(actor >= 0);
    if (actor == 0) {
        static char buf[16];
        char local[16];
        struct iovec l = {local, sizeof(local)}, r = {buf, sizeof(buf)};
        if (process_vm_readv(target, &l, 1, &r, 1, 0) < 0) _exit(1);
        if (ptrace(PTRACE_ATTACH, target, NULL, NULL) != 0) _exit(2);
        waitpid(target, NULL, __WALL);
        ptrace(PTRACE_DETACH, target, NULL, NULL);
        _exit(0);
    }
    int st;
    for (int i = 0; i < 500 && waitpid(actor, &st, WNOHANG) == 0; i++)
        pump(&f->loop, 10);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    pump(&f->loop, 200);
    uint8_t tid[EDR_ID_LEN];
    self_entity_id(&f->em, target, tid);
    kill(target, SIGKILL);
    waitpid(target, NULL, 0);

    int seen_read = 0, seen_attach = 0;
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_PROCESS_ACCESS || e->pid != (uint32_t)actor)
            continue;
        assert_int_equal(e->process_access->target_pid, (uint32_t)target);
        assert_true(id_eq(e->process_access->target_entity_id, tid));
        if (e->process_access->kind == EDR__V1__PROCESS_ACCESS__KIND__VM_READ) seen_read++;
        if (e->process_access->kind == EDR__V1__PROCESS_ACCESS__KIND__PTRACE_ATTACH) {
            seen_attach++;
            assert_int_equal(e->process_access->access_mask, PTRACE_ATTACH);
        }
    }
    assert_int_equal(seen_read, 1);
    assert_int_equal(seen_attach, 1);
}

/* In a pid namespace of its own (a container's), a process reads the memory
 * of a sibling and ptrace-attaches to it, naming it by its pid in that
 * namespace (2; the host's pid 2 is kthreadd): the events name the sibling. */
static void test_process_access_in_pid_namespace(void **state)
{
    fixture_t *f = *state;
    int up[2], down[2];
    if (!f) skip();
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) { /* its children are in the new namespace: 1, 2, 3 */
        char b;
        alarm(30);
        if (unshare(CLONE_NEWPID) != 0) _exit(77);
        pid_t ids[3] = {0};
        ids[0] = fork(); /* 1: the namespace's init, which ignores SIGSTOP */
        if (ids[0] == 0) {
            alarm(30);
            for (;;)
                pause();
        }
        ids[1] = fork(); /* 2: the target */
        if (ids[1] == 0) {
            alarm(30);
            for (;;)
                pause();
        }
        ids[2] = fork(); /* 3: the actor */
        if (ids[2] == 0) {
            static char buf[16];
            char local[16];
            struct iovec l = {local, sizeof(local)}, r = {buf, sizeof(buf)};
            if (getpid() != 3) _exit(4);
            if (process_vm_readv(2, &l, 1, &r, 1, 0) < 0) _exit(1);
            if (ptrace(PTRACE_ATTACH, 2, NULL, NULL) != 0) _exit(2);
            waitpid(2, NULL, __WALL);
            ptrace(PTRACE_DETACH, 2, NULL, NULL);
            _exit(0);
        }
        int st = 0;
        waitpid(ids[2], &st, 0);
        ids[2] = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ids[2] : -WEXITSTATUS(st) - 1;
        if (write(up[1], ids, sizeof(ids)) != sizeof(ids)) _exit(5);
        if (read(down[0], &b, 1) != 1) _exit(6); /* the test has the target's id */
        /* the namespace's end: the target goes too (its init waits until
         * this process reaped the target, so both are reaped in any order) */
        kill(ids[0], SIGKILL);
        while (wait(NULL) > 0) {
        }
        _exit(0);
    }
    pid_t ids[3];
    ssize_t n = 0;
    for (int i = 0; i < 500 && n == 0; i++) {
        struct pollfd pf = {up[0], POLLIN, 0};
        if (poll(&pf, 1, 10) == 1) n = read(up[0], ids, sizeof(ids));
        pump(&f->loop, 10);
    }
    int st;
    if (n != (ssize_t)sizeof(ids)) {
        waitpid(mid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            print_message("SKIP: no pid namespaces here\n");
            skip();
        }
        fail_msg("no word from the namespace's parent (status %d)", st);
    }
    if (ids[2] < 0) fail_msg("the actor failed at step %d", -ids[2] - 1);
    pid_t target = ids[1], actor = ids[2];
    pump(&f->loop, 200);
    uint8_t tid[EDR_ID_LEN];
    self_entity_id(&f->em, target, tid);
    assert_int_equal(write(down[1], "k", 1), 1);
    assert_int_equal(waitpid(mid, &st, 0), mid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("the namespace's parent: status %#x", st);
    close(up[0]), close(up[1]), close(down[0]), close(down[1]);

    int seen_read = 0, seen_attach = 0;
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_PROCESS_ACCESS || e->pid != (uint32_t)actor)
            continue;
        print_message("access kind %d by %d: target %u (the sibling is %d)\n",
                      (int)e->process_access->kind, (int)actor, e->process_access->target_pid,
                      (int)target);
        assert_int_equal(e->process_access->target_pid, (uint32_t)target);
        assert_true(id_eq(e->process_access->target_entity_id, tid));
        if (e->process_access->kind == EDR__V1__PROCESS_ACCESS__KIND__VM_READ) seen_read++;
        if (e->process_access->kind == EDR__V1__PROCESS_ACCESS__KIND__PTRACE_ATTACH) seen_attach++;
    }
    assert_int_equal(seen_read, 1);
    assert_int_equal(seen_attach, 1);
}

/* A ring buffer too small for a burst: the loss is counted per kind, and
 * events seen plus drops account for everything the burst did. */
static void sha256_of_file(const char *path, uint8_t out[32])
{
    static uint8_t buf[1 << 22];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    assert_true(n > 0 && n < (ssize_t)sizeof(buf));
    edr_sha256(buf, (size_t)n, out);
}

/* The first exec of a never-seen binary carries its sha256 once the batch
 * ships (the hash is computed off the event path and filled in before the
 * batch leaves); the next exec carries it at once. */
static void test_exe_hash_first_exec(void **state)
{
    fixture_t *f = *state;
    char path[256], cmd[512], tail[64];
    uint8_t want[32];
    if (!f) skip();
    snprintf(path, sizeof(path), "%s/hashme", f->dir);
    snprintf(cmd, sizeof(cmd), "cp /bin/true '%s'", path);
    assert_int_equal(system(cmd), 0);
    /* trailing bytes make a binary no cache has seen (the ELF still runs) */
    snprintf(tail, sizeof(tail), "edr-%d-%ld", (int)getpid(), (long)time(NULL));
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, tail, strlen(tail)), (ssize_t)strlen(tail));
    close(fd);
    sha256_of_file(path, want);
    for (int round = 0; round < 3; round++) {
        if (round == 2) {
            /* changed in place, same size, its mtime set back (touch -r):
             * the old hash stayed in the cache (review-fidelity 5) */
            struct stat before;
            assert_int_equal(stat(path, &before), 0);
            fd = open(path, O_WRONLY);
            assert_true(fd >= 0);
            tail[0] = 'E';
            assert_int_equal(pwrite(fd, tail, 1, before.st_size - (off_t)strlen(tail)), 1);
            struct timespec ts[2] = {before.st_atim, before.st_mtim};
            assert_int_equal(futimens(fd, ts), 0);
            close(fd);
            struct stat after;
            assert_int_equal(stat(path, &after), 0);
            assert_true(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                        after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
            sha256_of_file(path, want);
        }
        size_t first = f->em.n;
        pid_t c = fork();
        if (c == 0) {
            execl(path, path, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(c, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        Edr__V1__Event *ps = NULL, *fx = NULL;
        for (int i = 0; i < 100 && !(ps && fx); i++) {
            pump(&f->loop, 20);
            for (size_t k = first; k < f->em.n; k++) {
                Edr__V1__Event *e = f->em.ev[k];
                if (e->pid != (uint32_t)c) continue;
                if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_START) ps = e;
                if (e->body_case == EDR__V1__EVENT__BODY_FILE_EXEC && !e->file_exec->mapped &&
                    strcmp(e->file_exec->path, path) == 0)
                    fx = e;
            }
        }
        assert_non_null(ps);
        assert_non_null(fx);
        if (round == 1) { /* known by now: carried without waiting for the batch */
            assert_int_equal(ps->process_start->exe_sha256.len, 32);
            assert_memory_equal(ps->process_start->exe_sha256.data, want, 32);
        }
        ship(&f->em);
        assert_int_equal(ps->process_start->exe_sha256.len, 32);
        assert_memory_equal(ps->process_start->exe_sha256.data, want, 32);
        assert_int_equal(fx->file_exec->sha256.len, 32);
        assert_memory_equal(fx->file_exec->sha256.data, want, 32);
    }
}

/* A second eBPF source with settings changed (kv: key, value, ..., NULL),
 * on its own loop and emitter (the fixture's host and boot ids), started. */
static edr_source_t *start_own_source(fixture_t *f, const char *const *kv, uv_loop_t *loop,
                                      edr_emit_t *em)
{
    edr_config_t *cfg = edr_config_new();
    char err[256];
    assert_non_null(cfg);
    for (; kv[0]; kv += 2)
        assert_int_equal(edr_config_set(cfg, kv[0], kv[1], "test", err, sizeof(err)), 0);
    uv_loop_init(loop);
    memset(em, 0, sizeof(*em));
    edr_arena_init(&em->arena, 1 << 20);
    memcpy(em->host, f->em.host, EDR_ID_LEN);
    memcpy(em->boot, f->em.boot, EDR_ID_LEN);
    edr_source_t *src = edr_source_ebpf_new(cfg, err, sizeof(err));
    assert_non_null(src);
    edr_config_destroy(cfg);
    assert_int_equal(src->ops->start(src, loop, em), 0);
    return src;
}

static void close_own_loop(uv_loop_t *loop, edr_emit_t *em)
{
    uv_loop_close(loop);
    edr_arena_close(&em->arena);
    free(em->ev);
}

/* Stops and frees a source from start_own_source, with its loop and events. */
static void end_own_source(edr_source_t *src, uv_loop_t *loop, edr_emit_t *em)
{
    src->ops->stop(src);
    src->ops->destroy(src);
    close_own_loop(loop, em);
}

/* An exec whose executable is still being hashed when its batch ships
 * (sensor.ebpf_hash_wait 0, a 300 MB binary) ships without the hash, and that
 * is reported as the drop ("sha256", "late"), once per event left without it. */
static void test_exe_hash_late_is_reported(void **state)
{
    fixture_t *f = *state;
    char path[256], cmd[512];
    if (!f) skip();
    uv_loop_t loop;
    edr_emit_t em;
    const char *const kv[] = {"sensor.ebpf_hash_wait", "0s", NULL};
    edr_source_t *src = start_own_source(f, kv, &loop, &em);
    ship(&em); /* the seeded processes' batch: whatever it reports is not ours */
    uint64_t late0 = em.hash_late;

    snprintf(path, sizeof(path), "%s/bighash", f->dir);
    snprintf(cmd, sizeof(cmd), "cp /bin/true '%s'", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(truncate(path, 300ll << 20), 0); /* sparse tail: the ELF still runs */
    size_t first = em.n;
    pid_t c = fork();
    if (c == 0) {
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    Edr__V1__Event *ps = NULL, *fx = NULL;
    for (int i = 0; i < 100 && !(ps && fx); i++) {
        pump(&loop, 10);
        for (size_t k = first; k < em.n; k++) {
            Edr__V1__Event *e = em.ev[k];
            if (e->pid != (uint32_t)c) continue;
            if (e->body_case == EDR__V1__EVENT__BODY_PROCESS_START) ps = e;
            if (e->body_case == EDR__V1__EVENT__BODY_FILE_EXEC && !e->file_exec->mapped)
                fx = e;
        }
    }
    assert_non_null(ps);
    assert_non_null(fx);
    ship(&em); /* 300 MB take far longer to hash than the 0 s wait */
    assert_int_equal(ps->process_start->exe_sha256.len, 0);
    assert_int_equal(fx->file_exec->sha256.len, 0);
    print_message("late hashes reported: %llu (ours: 2)\n",
                  (unsigned long long)(em.hash_late - late0));
    assert_true(em.hash_late - late0 >= 2);
    end_own_source(src, &loop, &em);
    unlink(path);
}

/* Both kinds of syscall hooks see the same file events: per-syscall
 * tracepoints (the default here) and the tp_btf sys_exit fallback
 * (sensor.ebpf_hooks=raw), each in its own source over the same activity
 * (and a filter put on a socket, which only setsockopt's hook sees).
 * Paths reach the kernel in three forms, each reported absolute: absolute
 * (open), relative to the working directory (the rename's new name) and
 * relative to a directory descriptor (unlinkat). */
static void test_hooks_raw_and_tracepoint(void **state)
{
    fixture_t *f = *state;
    const char *modes[2] = {"raw", "tracepoint"};
    char a[128], b[128];
    if (!f) skip();
    for (int m = 0; m < 2; m++) {
        edr_emit_t em;
        uv_loop_t loop;
        const char *const kv[] = {"sensor.ebpf_hooks", modes[m], NULL};
        edr_source_t *src = start_own_source(f, kv, &loop, &em);
        snprintf(a, sizeof(a), "%s/hooks-%s", f->dir, modes[m]);
        snprintf(b, sizeof(b), "%s/hooks-%s.renamed", f->dir, modes[m]);
        pid_t c = fork();
        if (c == 0) {
            int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
            if (fd < 0 || write(fd, "x", 1) != 1) _exit(1);
            close(fd);
            const char *rel = strrchr(b, '/') + 1;
            int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
            if (dfd < 0 || chdir(f->dir) != 0) _exit(1);
            struct sock_filter ret0 = {BPF_RET | BPF_K, 0, 0, 0};
            struct sock_fprog fp = {.len = 1, .filter = &ret0};
            int us = socket(AF_INET, SOCK_DGRAM, 0);
            if (us < 0 || setsockopt(us, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0)
                _exit(1);
            _exit(rename(a, rel) == 0 && unlinkat(dfd, rel, 0) == 0 ? 0 : 1);
        }
        int st;
        waitpid(c, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        Edr__V1__Event *cr = NULL, *wr = NULL, *rn = NULL, *dl = NULL, *sf = NULL;
        for (int i = 0; i < 100 && !(cr && wr && rn && dl && sf); i++) {
            pump(&loop, 20);
            cr = find(&em, EDR__V1__EVENT__BODY_FILE_CREATE, (uint32_t)c, a);
            wr = find(&em, EDR__V1__EVENT__BODY_FILE_WRITE, (uint32_t)c, a);
            rn = find(&em, EDR__V1__EVENT__BODY_FILE_RENAME, (uint32_t)c, a);
            dl = find(&em, EDR__V1__EVENT__BODY_FILE_DELETE, (uint32_t)c, b);
            sf = find(&em, EDR__V1__EVENT__BODY_BPF_ATTACH, (uint32_t)c, NULL);
        }
        if (!(cr && wr && rn && dl && sf))
            fail_msg("hooks %s: create %d write %d rename %d delete %d socket filter %d", modes[m],
                     !!cr, !!wr, !!rn, !!dl, !!sf);
        assert_string_equal(rn->file_rename->new_path, b);
        end_own_source(src, &loop, &em);
    }
}

/* An ia32 syscall (int $0x80) with up to six arguments, from this 64-bit
 * process; what its pointers name must lie below 4 GiB. The sixth goes in
 * ebp, saved around the call (below the red zone). */
static long sys32(long nr, long a, long b, long c, long d, long e, long f)
{
    long r;
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "push %%rbp\n\t"
                     "mov %[f], %%rbp\n\t"
                     "int $0x80\n\t"
                     "pop %%rbp\n\t"
                     "add $128, %%rsp"
                     : "=a"(r)
                     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e), [f] "r"(f)
                     : "memory", "r8", "r9", "r10", "r11", "cc");
    return r;
}

#define L32(p) ((long)(uintptr_t)(p))

/* The child of test_ia32_syscalls: every call by int $0x80, strings and
 * structures in a page below 4 GiB. Exits 0 when every call succeeded. */
static void ia32_child(const char *dir, uint16_t port)
{
    uint8_t *m = test_low_page();
    if (m == MAP_FAILED) _exit(10);
    char *a = (char *)m, *b = a + 256, *d = a + 512, *c = a + 768, *x = a + 1024;
    uint32_t *args = (uint32_t *)(m + 1280), *mm = (uint32_t *)(m + 1344);
    uint32_t *msg = (uint32_t *)(m + 1408), *iov = (uint32_t *)(m + 1472);
    struct sockaddr_in *sin = (struct sockaddr_in *)(m + 1536), *dns = sin + 1;
    snprintf(a, 256, "%s/ia32-a", dir);
    snprintf(b, 256, "%s/ia32-b", dir);
    snprintf(d, 256, "%s/ia32-d", dir);
    snprintf(c, 256, "%s/ia32-c", dir);
    strcpy(x, "q");
    long fd = sys32(5, L32(a), O_CREAT | O_WRONLY | O_TRUNC, 0600, 0, 0, 0); /* open */
    if (fd < 0 || sys32(4, fd, L32(x), 1, 0, 0, 0) != 1) _exit(11);          /* write */
    sys32(6, fd, 0, 0, 0, 0, 0);                                             /* close */
    if (sys32(38, L32(a), L32(b), 0, 0, 0, 0) != 0) _exit(12);               /* rename */
    if (sys32(15, L32(b), 0640, 0, 0, 0, 0) != 0) _exit(13);                 /* chmod */
    if (sys32(182, L32(b), 0xffff, 0xffff, 0, 0, 0) != 0) _exit(14);         /* chown16 */
    if (sys32(39, L32(d), 0700, 0, 0, 0, 0) != 0 || sys32(40, L32(d), 0, 0, 0, 0, 0) != 0)
        _exit(15); /* mkdir, rmdir */
    /* b mapped executable by the old mmap (arguments in memory), c by mmap2 */
    fd = sys32(5, L32(b), O_RDONLY, 0, 0, 0, 0);
    uint32_t om[6] = {0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, (uint32_t)fd, 0};
    memcpy(mm, om, sizeof(om));
    if (fd < 0 || sys32(90, L32(mm), 0, 0, 0, 0, 0) < 0) _exit(16);
    long fc = sys32(5, L32(c), O_CREAT | O_RDWR, 0700, 0, 0, 0);
    if (fc < 0 || sys32(4, fc, L32(x), 1, 0, 0, 0) != 1) _exit(17);
    if (sys32(192, 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fc, 0) < 0) _exit(18);
    if (sys32(10, L32(b), 0, 0, 0, 0, 0) != 0) _exit(19); /* unlink */
    /* TCP connects: socketcall(SYS_CONNECT) and connect */
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    args[0] = AF_INET, args[1] = SOCK_STREAM, args[2] = 0;
    long s1 = sys32(102, 1, L32(args), 0, 0, 0, 0); /* SYS_SOCKET */
    args[0] = (uint32_t)s1, args[1] = (uint32_t)L32(sin), args[2] = sizeof(*sin);
    if (s1 < 0 || sys32(102, 3, L32(args), 0, 0, 0, 0) != 0) _exit(20);
    long s2 = sys32(359, AF_INET, SOCK_STREAM, 0, 0, 0, 0); /* socket */
    if (s2 < 0 || sys32(362, s2, L32(sin), sizeof(*sin), 0, 0, 0) != 0) _exit(21);
    /* a DNS datagram by socketcall(SYS_SENDMSG): a compat msghdr */
    *dns = *sin;
    dns->sin_port = htons(53);
    args[0] = AF_INET, args[1] = SOCK_DGRAM, args[2] = 0;
    long u = sys32(102, 1, L32(args), 0, 0, 0, 0);
    iov[0] = (uint32_t)L32(x), iov[1] = 1;
    uint32_t mh[7] = {(uint32_t)L32(dns), sizeof(*dns), (uint32_t)L32(iov), 1, 0, 0, 0};
    memcpy(msg, mh, sizeof(mh));
    args[0] = (uint32_t)u, args[1] = (uint32_t)L32(msg), args[2] = 0;
    if (u < 0 || sys32(102, 16, L32(args), 0, 0, 0, 0) != 1) _exit(22);
    /* a classic filter on that socket by socketcall(SYS_SETSOCKOPT): a compat
     * sock_fprog (16-bit length, 32-bit pointer) */
    struct sock_filter *ins = (struct sock_filter *)(m + 1664);
    uint32_t *fp = (uint32_t *)(m + 1728);
    ins[0] = (struct sock_filter){BPF_RET | BPF_K, 0, 0, 0};
    fp[0] = 1, fp[1] = (uint32_t)L32(ins);
    args[0] = (uint32_t)u, args[1] = SOL_SOCKET, args[2] = SO_ATTACH_FILTER;
    args[3] = (uint32_t)L32(fp), args[4] = 8;
    if (sys32(102, 14, L32(args), 0, 0, 0, 0) != 0) _exit(24);
    /* a DNS datagram by socketcall(SYS_SEND) on the socket connected */
    args[0] = (uint32_t)u, args[1] = (uint32_t)L32(dns), args[2] = sizeof(*dns);
    if (sys32(102, 3, L32(args), 0, 0, 0, 0) != 0) _exit(25);
    args[0] = (uint32_t)u, args[1] = (uint32_t)L32(x), args[2] = 1, args[3] = 0;
    if (sys32(102, 9, L32(args), 0, 0, 0, 0) != 1) _exit(26);
    /* lchown16 with real ids (root's) */
    if (sys32(5, L32(c), O_RDONLY, 0, 0, 0, 0) < 0 || sys32(16, L32(c), 0, 0, 0, 0, 0) != 0)
        _exit(27);
    /* executable shared memory by ipc(SHMAT, SHM_EXEC): its address written
     * to memory; then once more with nowhere to write it (-EFAULT, attached
     * all the same) */
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0700); /* x: SHM_EXEC asks for it */
    if (shm < 0) _exit(28);
    uint32_t *raddr = (uint32_t *)(m + 1792);
    long r1 = sys32(117, 21, shm, SHM_EXEC, L32(raddr), 0, 0);
    long r2 = sys32(117, 21, shm, SHM_EXEC, 1, 0, 0);
    shmctl(shm, IPC_RMID, NULL); /* gone once detached (at exit) */
    if (r1 != 0 || !*raddr) _exit(29);
    if (r2 != -EFAULT) _exit(30);
    /* a BPF program loaded */
    if (load_test_prog("edrtest_i32hk", 1, -1) < 0) _exit(23);
    _exit(0);
}

/* Whether this kernel runs ia32 syscalls (a child's int $0x80 getpid). */
static int ia32_runs(void)
{
    pid_t c = fork();
    int st = 0;
    if (c == 0) _exit(sys32(20, 0, 0, 0, 0, 0, 0) == getpid() ? 0 : 1);
    waitpid(c, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ia32 syscalls (int $0x80, which a 64-bit process can make to pass unseen
 * by hooks on the 64-bit ones) are reported as their x86-64 counterparts,
 * with both kinds of syscall hooks (sensor.ebpf_ia32, on by default): a
 * file created by open and written, renamed, chmod'ed, chown'ed by the
 * 16-bit call (0xffff: unchanged, reported as -1 is), deleted; a directory
 * made and removed; files mapped executable by the old mmap (its arguments
 * in memory) and by mmap2; TCP connects by socketcall and by connect; a DNS
 * datagram sent by socketcall's sendmsg (a compat msghdr); a classic
 * filter put on a socket by socketcall's setsockopt, and one by its send
 * on the socket connected; executable shared memory by ipc's shmat, also
 * when the call fails to write its address (attached all the same); a BPF
 * program loaded, with its actor; nothing else of those kinds. The fixture's source (sensor.ebpf_ia32=false)
 * sees none of the file events. */
static void test_ia32_syscalls(void **state)
{
    fixture_t *f = *state;
    /* hooks, sensor.ebpf_ia32, observed: raw hooks take them by default
     * (at no cost: their program runs on every syscall anyway), tracepoint
     * hooks when asked (a program on every syscall), not by default */
    const struct {
        const char *hooks, *ia32;
        int seen;
    } cf[3] = {{"raw", "auto", 1}, {"tracepoint", "true", 1}, {"tracepoint", "auto", 0}};
    const char *modes[3] = {"raw", "tracepoint", "tracepoint (default)"};
    char a[128], b[128], c[128], d[128];
    if (!f) skip();
    if (!ia32_runs()) {
        print_message("SKIP: this kernel does not run ia32 syscalls\n");
        skip();
    }
    snprintf(a, sizeof(a), "%s/ia32-a", f->dir);
    snprintf(b, sizeof(b), "%s/ia32-b", f->dir);
    snprintf(c, sizeof(c), "%s/ia32-c", f->dir);
    snprintf(d, sizeof(d), "%s/ia32-d", f->dir);
    uint16_t port;
    int ls = bind_lo(0, &port);
    assert_int_equal(listen(ls, 16), 0);
    for (int m = 0; m < 3; m++) {
        edr_emit_t em;
        uv_loop_t loop;
        const char *const kv[] = {"sensor.ebpf_hooks", cf[m].hooks, "sensor.ebpf_ia32", cf[m].ia32,
                                  NULL};
        edr_source_t *src = start_own_source(f, kv, &loop, &em);
        unlink(c);
        pid_t ch = fork();
        assert_true(ch >= 0);
        if (ch == 0) {
            alarm(20);
            ia32_child(f->dir, port);
        }
        int st;
        char why[256] = "";
        assert_int_equal(waitpid(ch, &st, 0), ch);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            snprintf(why, sizeof(why), "%s: the ia32 child failed (status %d)", modes[m], st);
        uint32_t pid = (uint32_t)ch;
        Edr__V1__Event *cr, *wr, *rn, *chm, *cho, *mk, *rd, *dl, *xb, *xc, *ld;
        Edr__V1__Event *cn[2], *dns, *sf, *cho0;
        int n_dns = 0, n_shm = 0, n_x = 0;
        for (int i = 0; i < (why[0] ? 1 : cf[m].seen ? 150 : 50); i++) {
            pump(&loop, 20);
            cr = find(&em, EDR__V1__EVENT__BODY_FILE_CREATE, pid, a);
            wr = find(&em, EDR__V1__EVENT__BODY_FILE_WRITE, pid, a);
            rn = find(&em, EDR__V1__EVENT__BODY_FILE_RENAME, pid, a);
            chm = cho = cho0 = NULL;
            n_dns = n_shm = n_x = 0;
            for (size_t j = 0; j < em.n; j++) {
                Edr__V1__Event *e = em.ev[j];
                if (e->pid != pid) continue;
                if (e->body_case == EDR__V1__EVENT__BODY_FILE_EXEC) {
                    n_x++;
                    n_shm += e->file_exec->anonymous &&
                             e->file_exec->by == EDR__V1__FILE_EXEC__MEMORY_BY__SHMAT;
                }
                if (e->body_case != EDR__V1__EVENT__BODY_FILE_ATTR) continue;
                if (!strcmp(e->file_attr->path, c) && e->file_attr->uid == 0 &&
                    e->file_attr->gid == 0)
                    cho0 = e;
                if (strcmp(e->file_attr->path, b) != 0) continue;
                if (e->file_attr->kind == EDR__V1__FILE_ATTR__KIND__CHMOD) chm = e;
                if (e->file_attr->kind == EDR__V1__FILE_ATTR__KIND__CHOWN) cho = e;
            }
            mk = find(&em, EDR__V1__EVENT__BODY_FILE_CREATE, pid, d);
            rd = find(&em, EDR__V1__EVENT__BODY_FILE_DELETE, pid, d);
            dl = find(&em, EDR__V1__EVENT__BODY_FILE_DELETE, pid, b);
            xb = find(&em, EDR__V1__EVENT__BODY_FILE_EXEC, pid, b);
            xc = find(&em, EDR__V1__EVENT__BODY_FILE_EXEC, pid, c);
            ld = sf = NULL;
            cn[0] = cn[1] = dns = NULL;
            for (size_t j = 0; j < em.n; j++) {
                Edr__V1__Event *e = em.ev[j];
                if (e->pid != pid) continue;
                if (e->body_case == EDR__V1__EVENT__BODY_BPF_LOAD &&
                    strcmp(e->bpf_load->name, "edrtest_i32hk") == 0)
                    ld = e;
                if (e->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH &&
                    e->bpf_attach->socket_option == SO_ATTACH_FILTER)
                    sf = e;
                if (e->body_case != EDR__V1__EVENT__BODY_NETWORK || !e->network->remote) continue;
                if (e->network->action == EDR__V1__NETWORK__ACTION__CONNECT &&
                    e->network->remote->port == port)
                    cn[cn[0] ? 1 : 0] = e;
                if (e->network->action == EDR__V1__NETWORK__ACTION__SEND &&
                    e->network->remote->port == 53)
                    dns = e, n_dns++;
            }
            if (cr && wr && rn && chm && cho && cho0 && mk && rd && dl && xb && xc && ld && cn[1] &&
                n_dns == 2 && n_shm == 2 && sf)
                break;
        }
        if (!why[0] && !cf[m].seen &&
            (cr || wr || rn || chm || cho || mk || rd || dl || xb || xc || ld || cn[0] || dns ||
             sf))
            snprintf(why, sizeof(why), "%s hooks, ia32 %s: an ia32 call was reported", cf[m].hooks,
                     cf[m].ia32);
        if (!why[0] && cf[m].seen &&
            !(cr && wr && rn && chm && cho && cho0 && mk && rd && dl && xb && xc && ld && cn[1] &&
              n_dns == 2 && n_shm == 2 && sf))
            snprintf(why, sizeof(why),
                     "%s hooks, ia32: create %d write %d rename %d chmod %d chown %d+%d mkdir %d "
                     "rmdir %d unlink %d mmap %d mmap2 %d bpf %d connects %d dns %d filter %d "
                     "shm %d",
                     modes[m], !!cr, !!wr, !!rn, !!chm, !!cho, !!cho0, !!mk, !!rd, !!dl, !!xb,
                     !!xc, !!ld, !!cn[0] + !!cn[1], n_dns, !!sf, n_shm);
        if (why[0]) { /* the source stopped first: its programs would be found by the next tests */
            end_own_source(src, &loop, &em);
            fail_msg("%s", why);
        }
        if (!cf[m].seen) {
            end_own_source(src, &loop, &em);
            continue;
        }
        assert_string_equal(rn->file_rename->new_path, b);
        assert_int_equal(chm->file_attr->mode, 0640);
        assert_int_equal(cho->file_attr->uid, UINT32_MAX);
        assert_int_equal(cho->file_attr->gid, UINT32_MAX);
        assert_int_equal(mk->file_create->mode, S_IFDIR | 0700);
        assert_true(xb->file_exec->mapped && xc->file_exec->mapped);
        assert_false(ld->bpf_load->found);
        assert_int_equal(ld->entity_id.len, EDR_ID_LEN);
        assert_int_equal(dns->network->protocol, EDR__V1__NETWORK__PROTOCOL__UDP);
        pump(&loop, 200); /* nothing more of those kinds: b, c and the two segments */
        n_x = 0;
        for (size_t j = 0; j < em.n; j++)
            n_x += em.ev[j]->pid == pid && em.ev[j]->body_case == EDR__V1__EVENT__BODY_FILE_EXEC;
        assert_int_equal(n_x, 4);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(cn[k]->network->protocol, EDR__V1__NETWORK__PROTOCOL__TCP);
            assert_int_equal(cn[k]->network->error, 0);
        }
        end_own_source(src, &loop, &em);
        if (m == 0) { /* the fixture's source leaves ia32 calls out */
            pump(&f->loop, 300);
            assert_null(find(&f->em, EDR__V1__EVENT__BODY_FILE_CREATE, pid, a));
            assert_null(find(&f->em, EDR__V1__EVENT__BODY_FILE_DELETE, pid, b));
            assert_null(find(&f->em, EDR__V1__EVENT__BODY_FILE_RENAME, pid, a));
        }
    }
    close(ls);
}

/* Close and first-write semantics of the exit-only hooks:
 * - a TCP close is reported once, by the process whose close()/shutdown()
 *   ended its side: an abortive close (linger 0, sends a reset), a shutdown()
 *   (the later close() adds nothing), and the passive side's close after the
 *   peer's FIN; the side that receives a reset is closed by the stack, not by
 *   its process, and its later close() is not reported;
 * - a write that fails is not a first write: the next one that writes is,
 *   with the bytes it wrote. */
static int count_close(edr_emit_t *em, pid_t pid, int with_remote, uint32_t *remote_port)
{
    int n = 0;
    for (size_t i = 0; i < em->n; i++) {
        Edr__V1__Event *e = em->ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_NETWORK ||
            e->network->action != EDR__V1__NETWORK__ACTION__CLOSE || e->pid != (uint32_t)pid)
            continue;
        uint32_t rp = e->network->remote ? e->network->remote->port : 0;
        if (with_remote != (rp != 0)) continue;
        if (remote_port) *remote_port = rp;
        n++;
    }
    return n;
}

static pid_t spawn_client(uint16_t port, int abortive)
{
    pid_t c = fork();
    assert_true(c >= 0);
    if (c) return c;
    alarm(20);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char b;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) _exit(1);
    if (abortive) {
        struct linger l = {1, 0};
        if (read(fd, &b, 1) != 1 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l))) _exit(2);
        _exit(close(fd) == 0 ? 0 : 3);
    }
    if (shutdown(fd, SHUT_WR) != 0) _exit(4);
    while (read(fd, &b, 1) > 0) {
    }
    _exit(close(fd) == 0 ? 0 : 5);
}

static void wait_pumping(fixture_t *f, pid_t c)
{
    int st = 0;
    for (int i = 0; i < 2000 && waitpid(c, &st, WNOHANG) == 0; i++)
        pump(&f->loop, 10);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_close_and_first_write(void **state)
{
    fixture_t *f = *state;
    int ready[2];
    uint16_t port;
    char path[128];
    if (!f) skip();
    int ls = bind_lo(0, &port);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t srv = fork();
    assert_true(srv >= 0);
    if (srv == 0) { /* the test process's own events are not reported: serve from a child */
        char b;
        alarm(20);
        int c1 = accept(ls, NULL, NULL);
        if (c1 < 0 || write(c1, "x", 1) != 1) _exit(1);
        while (read(c1, &b, 1) > 0) { /* until the reset */
        }
        close(c1);
        if (write(ready[1], "R", 1) != 1) _exit(2);
        int c2 = accept(ls, NULL, NULL);
        if (c2 < 0) _exit(3);
        while (read(c2, &b, 1) > 0) { /* until the client's FIN */
        }
        close(c2);
        _exit(0);
    }
    close(ls);
    close(ready[1]);
    pid_t ab = spawn_client(port, 1);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1); /* the server saw the reset and closed */
    close(ready[0]);
    pid_t gr = spawn_client(port, 0);
    wait_pumping(f, ab);
    wait_pumping(f, gr);
    wait_pumping(f, srv);

    snprintf(path, sizeof(path), "%s/first-write", f->dir);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0) _exit(1);
        void *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (bad == MAP_FAILED || write(fd, bad, 10) >= 0) _exit(2); /* EFAULT: nothing written */
        _exit(write(fd, "abc", 3) == 3 && close(fd) == 0 ? 0 : 3);
    }
    wait_pumping(f, w);
    pump(&f->loop, 300);

    uint32_t rp_gr = 0, rp_srv = 0;
    assert_int_equal(count_close(&f->em, ab, 1, NULL), 1);
    assert_int_equal(count_close(&f->em, gr, 1, &rp_gr), 1);
    assert_int_equal(rp_gr, port);
    /* the server: its close after the FIN, not the one after the reset; and
     * its listener, closed when it exited */
    assert_int_equal(count_close(&f->em, srv, 1, &rp_srv), 1);
    Edr__V1__Event *g = NULL;
    for (size_t i = 0; i < f->em.n && !g; i++) {
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case == EDR__V1__EVENT__BODY_NETWORK && e->pid == (uint32_t)gr &&
            e->network->action == EDR__V1__NETWORK__ACTION__CLOSE)
            g = e;
    }
    assert_non_null(g);
    assert_int_equal(rp_srv, g->network->local->port);
    assert_int_equal(count_close(&f->em, srv, 0, NULL), 1);
    for (size_t i = 0; i < f->em.n; i++) { /* the listener's close names no peer */
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case == EDR__V1__EVENT__BODY_NETWORK && e->pid == (uint32_t)srv &&
            e->network->action == EDR__V1__NETWORK__ACTION__CLOSE &&
            (!e->network->remote || e->network->remote->port == 0))
            assert_null(e->network->remote);
    }

    int writes = 0;
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_FILE_WRITE || e->pid != (uint32_t)w) continue;
        assert_string_equal(e->file_write->path, path);
        assert_int_equal(e->file_write->bytes, 3);
        writes++;
    }
    assert_int_equal(writes, 1);
}

/* Content changed without write(2) (review-fidelity 2: none of these was
 * reported, so `cp new existing_binary`, which copies with
 * copy_file_range, left no event): copy_file_range, sendfile, splice,
 * ftruncate, fallocate, an open with O_TRUNC of an existing file with no
 * write after it, a shared writable mapping; a write through a file
 * opened by handle (open_by_handle_at); truncate(2) by path; a read-only
 * open with O_TRUNC. Each file: one FileWrite of
 * the child that changed it, with the bytes the call moved (0: none moved). */
static void test_first_write_other_syscalls(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    static const char *const names[] = {"copied",    "sent",   "spliced",  "truncated",
                                        "allocated", "otrunc", "mapped",   "byhandle",
                                        "pathtrunc", "rdtrunc"};
    static const uint64_t bytes[] = {5, 5, 5, 0, 0, 0, 0, 5, 0, 0};
    enum { N = sizeof(names) / sizeof(names[0]) };
    char src[160], path[N][160];
    snprintf(src, sizeof(src), "%s/other-src", f->dir);
    int sfd = open(src, O_CREAT | O_WRONLY | O_TRUNC, 0600); /* the test's own: not reported */
    assert_true(sfd >= 0);
    assert_int_equal(write(sfd, "hello", 5), 5);
    close(sfd);
    for (int i = 0; i < N; i++) {
        snprintf(path[i], sizeof(path[i]), "%s/other-%s", f->dir, names[i]);
        int fd = open(path[i], O_CREAT | O_WRONLY | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "old content", 11), 11);
        close(fd);
    }
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int in = open(src, O_RDONLY), fd, p[2];
        if (in < 0) _exit(1);
        loff_t off = 0;
        fd = open(path[0], O_WRONLY);
        if (fd < 0 || copy_file_range(in, &off, fd, NULL, 5, 0) != 5) _exit(2);
        close(fd);
        off = 0;
        fd = open(path[1], O_WRONLY);
        if (fd < 0 || sendfile(fd, in, &off, 5) != 5) _exit(3);
        close(fd);
        fd = open(path[2], O_WRONLY);
        if (fd < 0 || pipe(p) != 0 || write(p[1], "hello", 5) != 5 ||
            splice(p[0], NULL, fd, NULL, 5, 0) != 5)
            _exit(4);
        close(fd);
        fd = open(path[3], O_WRONLY);
        if (fd < 0 || ftruncate(fd, 0) != 0) _exit(5);
        close(fd);
        fd = open(path[4], O_WRONLY);
        if (fd < 0 || fallocate(fd, 0, 0, 65536) != 0) _exit(6);
        close(fd);
        fd = open(path[5], O_WRONLY | O_TRUNC);
        if (fd < 0) _exit(7);
        close(fd);
        fd = open(path[6], O_RDWR);
        char *m = fd >= 0 ? mmap(NULL, 11, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
        if (m == MAP_FAILED) _exit(8);
        m[0] = 'N';
        if (munmap(m, 11) != 0 || close(fd) != 0) _exit(9);
        /* open_by_handle_at (review-fidelity 12: never armed) */
        struct {
            struct file_handle h;
            unsigned char b[MAX_HANDLE_SZ];
        } fh = {.h.handle_bytes = MAX_HANDLE_SZ};
        int mnt_id, mfd = open(f->dir, O_RDONLY | O_DIRECTORY);
        if (mfd < 0 || name_to_handle_at(AT_FDCWD, path[7], &fh.h, &mnt_id, 0) != 0) _exit(10);
        fd = open_by_handle_at(mfd, &fh.h, O_WRONLY);
        if (fd < 0 || write(fd, "hello", 5) != 5) _exit(11);
        /* truncate(2) by path, and a read-only open with O_TRUNC (it truncates
         * on Linux) (review-1204c F5) */
        if (truncate(path[8], 0) != 0) _exit(12);
        fd = open(path[9], O_RDONLY | O_TRUNC);
        _exit(fd >= 0 ? 0 : 13);
    }
    reap_ok(w);
    pump(&f->loop, 500);
    for (int i = 0; i < N; i++) {
        int writes = 0;
        for (size_t j = 0; j < f->em.n; j++) {
            Edr__V1__Event *e = f->em.ev[j];
            if (e->body_case != EDR__V1__EVENT__BODY_FILE_WRITE || e->pid != (uint32_t)w ||
                strcmp(e->file_write->path, path[i]) != 0)
                continue;
            if (e->file_write->bytes != bytes[i])
                fail_msg("%s: %llu bytes reported, %llu expected", names[i],
                         (unsigned long long)e->file_write->bytes, (unsigned long long)bytes[i]);
            writes++;
        }
        if (writes != 1) fail_msg("%s: %d FileWrite events, 1 expected", names[i], writes);
    }
}

/* Paths from the kernel's dentries (review-fidelity 8): a file 60 directories
 * deep is reported with its whole path (the walk stopped at 48 steps and
 * shipped the tail as if it were absolute); one longer than the 4 KiB
 * buffer is its tail after "...", never a path that looks whole. */
static void test_deep_and_long_paths(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char deep[1024], longname[201];
    int n = snprintf(deep, sizeof(deep), "%s/deep", f->dir);
    assert_int_equal(mkdir(deep, 0700), 0);
    for (int i = 1; i <= 60; i++) {
        n += snprintf(deep + n, sizeof(deep) - (size_t)n, "/d%d", i);
        assert_int_equal(mkdir(deep, 0700), 0);
    }
    snprintf(deep + n, sizeof(deep) - (size_t)n, "/deepfile");
    memset(longname, 'n', 200);
    longname[200] = 0;
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int fd = open(deep, O_CREAT | O_WRONLY, 0600);
        if (fd < 0 || close(fd) != 0) _exit(1);
        /* 25 directories of 200 bytes below f->dir: over 5,000 bytes */
        if (chdir(f->dir) != 0) _exit(2);
        for (int i = 0; i < 25; i++)
            if (mkdir(longname, 0700) != 0 || chdir(longname) != 0) _exit(3);
        fd = open("longfile", O_CREAT | O_WRONLY, 0600);
        _exit(fd >= 0 && close(fd) == 0 ? 0 : 4);
    }
    reap_ok(w);
    pump(&f->loop, 500);
    int deep_seen = 0, long_seen = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_FILE_CREATE || e->pid != (uint32_t)w) continue;
        const char *p = e->file_create->path;
        size_t pl = strlen(p);
        if (pl >= 9 && !strcmp(p + pl - 9, "/deepfile")) {
            assert_string_equal(p, deep);
            deep_seen++;
        } else if (pl >= 9 && !strcmp(p + pl - 9, "/longfile")) {
            fprintf(stderr, "path of %zu bytes reported as %zu: %.12s...%s\n",
                    strlen(f->dir) + 25 * 201 + 9, pl, p, p + pl - 30);
            assert_true(pl < 4096);
            assert_memory_equal(p, "...", 3);
            assert_memory_equal(p + pl - 9 - 201, "/", 1);
            assert_memory_equal(p + pl - 9 - 200, longname, 200);
            long_seen++;
        }
    }
    assert_int_equal(deep_seen, 1);
    assert_int_equal(long_seen, 1);
}

/* What an exec really ran as, and whether its command line is whole
 * (review-fidelity 6 and 9): a set-user-ID root image run by nobody carries
 * its effective ids (euid 0, "root") beside the real ones; an argv longer
 * than the 8 KiB kept is flagged as cut; an ordinary exec is neither. */
static void test_exec_effective_ids_and_cut_argv(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char dir[] = "/tmp/edr-test-suid-XXXXXX", bin[64], cmd[160];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    snprintf(bin, sizeof(bin), "%s/suid-true", dir);
    snprintf(cmd, sizeof(cmd), "cp /bin/true '%s' && chmod 4755 '%s'", bin, bin);
    assert_int_equal(system(cmd), 0);
    static char big[9000];
    memset(big, 'A', sizeof(big) - 1);
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            if (k == 0 && (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0))
                _exit(126);
            execl(k == 0 ? bin : "/bin/true", k == 0 ? "suid-true" : "true",
                  k == 1 ? big : "short", "LAST", (char *)NULL);
            _exit(127);
        }
        reap_ok(kids[k]);
    }
    pump(&f->loop, 500);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    Edr__V1__ProcessStart *ps[3] = {NULL, NULL, NULL};
    for (size_t j = 0; j < f->em.n; j++)
        for (int k = 0; k < 3; k++)
            if (f->em.ev[j]->pid == (uint32_t)kids[k] &&
                f->em.ev[j]->body_case == EDR__V1__EVENT__BODY_PROCESS_START)
                ps[k] = f->em.ev[j]->process_start;
    for (int k = 0; k < 3; k++)
        assert_non_null(ps[k]);
    /* set-user-ID root, run by nobody */
    assert_int_equal(ps[0]->uid, 65534);
    assert_int_equal(ps[0]->gid, 65534);
    assert_true(ps[0]->effective_ids);
    assert_int_equal(ps[0]->euid, 0);
    assert_int_equal(ps[0]->egid, 65534);
    assert_string_equal(ps[0]->effective_user, "root");
    assert_false(ps[0]->argv_truncated);
    /* 9,000 bytes of argument: cut, and flagged */
    assert_true(ps[1]->argv_truncated);
    assert_false(ps[1]->effective_ids);
    assert_true(ps[1]->n_argv == 2 && strlen(ps[1]->argv[1]) < sizeof(big) - 1);
    /* an ordinary exec: neither */
    assert_false(ps[2]->argv_truncated);
    assert_false(ps[2]->effective_ids);
    assert_int_equal(ps[2]->n_argv, 3);
    assert_string_equal(ps[2]->argv[2], "LAST");
}

/* A fileless exec and the exec of a removed file say what they ran
 * (review-fidelity 4: a memfd image was reported as "/", a removed file as
 * though it were still there, neither with a hash): "/memfd:NAME" and
 * "PATH (deleted)", the kernel's own names for them, hashed through
 * /proc/PID/exe while they run. */
static void test_fileless_and_deleted_exec(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char del[160], want_del[180];
    snprintf(del, sizeof(del), "%s/deltrue", f->dir);
    snprintf(want_del, sizeof(want_del), "%s (deleted)", del);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            int in = open("/bin/sleep", O_RDONLY), fd;
            struct stat st;
            if (in < 0 || fstat(in, &st) != 0) _exit(120);
            if (k == 0) {
                fd = memfd_create("innocent", MFD_CLOEXEC);
            } else {
                fd = open(del, O_CREAT | O_RDWR | O_TRUNC, 0755);
            }
            if (fd < 0 || sendfile(fd, in, NULL, (size_t)st.st_size) != st.st_size) _exit(121);
            if (k == 1) { /* opened again read-only (no writer left), then removed */
                close(fd);
                fd = open(del, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || unlink(del) != 0) _exit(122);
            }
            /* a second: hashed while it runs, also with both cores busy (at
             * 0.3 s a loaded machine's hash came after the exit, once) */
            char *argv[] = {k == 0 ? "memfd-payload" : "deleted-payload", "1", NULL};
            char *env[] = {NULL};
            fexecve(fd, argv, env);
            _exit(127);
        }
        wait_pumping(f, kids[k]); /* hashed while it runs */
    }
    pump(&f->loop, 300);
    ship(&f->em);
    uint8_t want[32];
    sha256_of_file("/bin/sleep", want);
    int seen = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_PROCESS_START) continue;
        if (e->pid == (uint32_t)kids[0]) {
            assert_string_equal(e->process_start->exe, "/memfd:innocent");
            assert_int_equal(e->process_start->exe_sha256.len, 32);
            assert_memory_equal(e->process_start->exe_sha256.data, want, 32);
            seen |= 1;
        } else if (e->pid == (uint32_t)kids[1]) {
            assert_string_equal(e->process_start->exe, want_del);
            assert_int_equal(e->process_start->exe_sha256.len, 32);
            assert_memory_equal(e->process_start->exe_sha256.data, want, 32);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
}

/* Paths of deletes and renames come from the caller's string (read at the
 * syscall's exit) joined to its directory (review-fidelity 7): inside a
 * chroot an absolute path lies under the chroot (it was reported as the
 * host's path) and ".." does not climb out of it; a ".." after a component
 * of the string that is a symbolic link is kept as written (it was folded
 * away, naming a file that never existed), and after a directory it is
 * folded ("plain/../folded", as "/tmp/../etc/passwd" must be; review-1204c 1). */
static void test_chroot_and_symlink_paths(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char root[160], p[256], want_victim[200], want_moved[200], want_dotdot[200];
    char want_victim2[200], want_folded[200];
    snprintf(root, sizeof(root), "%s/chr", f->dir);
    assert_int_equal(mkdir(root, 0700), 0);
    snprintf(p, sizeof(p), "%s/victim", root);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/a", root);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/victim2", root);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/plain", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/folded", f->dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/real", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/real/inner", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/lnk", f->dir);
    assert_int_equal(symlink("real/inner", p), 0);
    snprintf(p, sizeof(p), "%s/real/target", f->dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(want_victim, sizeof(want_victim), "%s/victim", root);
    snprintf(want_moved, sizeof(want_moved), "%s/b", root);
    snprintf(want_dotdot, sizeof(want_dotdot), "%s/lnk/../target", f->dir);
    snprintf(want_victim2, sizeof(want_victim2), "%s/victim2", root);
    snprintf(want_folded, sizeof(want_folded), "%s/folded", f->dir);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        /* lnk/../target is real/target (lnk is real/inner) */
        if (chdir(f->dir) != 0 || unlink("lnk/../target") != 0) _exit(1);
        /* plain is a directory: folded, like /tmp/../etc/passwd */
        if (unlink("plain/../folded") != 0) _exit(4);
        if (chroot(root) != 0 || chdir("/") != 0) _exit(2);
        /* ".." does not leave the chroot */
        if (unlink("/../../victim2") != 0) _exit(5);
        _exit(unlink("/victim") == 0 && rename("/a", "/b") == 0 ? 0 : 3);
    }
    reap_ok(w);
    pump(&f->loop, 500);
    int seen = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w) continue;
        if (e->body_case == EDR__V1__EVENT__BODY_FILE_DELETE) {
            const char *dp = e->file_delete->path;
            if (strstr(dp, "victim2")) {
                assert_string_equal(dp, want_victim2);
                seen |= 8;
            } else if (strstr(dp, "victim")) {
                assert_string_equal(dp, want_victim);
                seen |= 1;
            } else if (strstr(dp, "folded")) {
                assert_string_equal(dp, want_folded);
                seen |= 16;
            } else {
                assert_string_equal(dp, want_dotdot);
                seen |= 2;
            }
        } else if (e->body_case == EDR__V1__EVENT__BODY_FILE_RENAME) {
            assert_string_equal(e->file_rename->new_path, want_moved);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 31);
}

/* DNS through write() and writev() on a UDP socket connected to port 53,
 * as resolvers that connect first may send it (review-fidelity 11: only
 * sendto/sendmsg were seen): one send each, with the server's address. */
static void test_dns_by_write(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        struct iovec iov = {.iov_base = "q", .iov_len = 1};
        if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) != 0) _exit(1);
        /* nothing listens: the second send may fail with ECONNREFUSED */
        if (write(u, "q", 1) != 1) _exit(2);
        (void)!writev(u, &iov, 1);
        _exit(0);
    }
    reap_ok(w);
    pump(&f->loop, 300);
    int sends = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_NETWORK ||
            e->network->action != EDR__V1__NETWORK__ACTION__SEND)
            continue;
        assert_int_equal(e->network->protocol, EDR__V1__NETWORK__PROTOCOL__UDP);
        assert_non_null(e->network->remote);
        assert_int_equal(e->network->remote->port, 53);
        sends++;
    }
    assert_true(sends >= 1);
}

/* Names made without open() (review-fidelity 10: none was reported, so a
 * hard link to a sensitive file or a planted symlink left no trace): a
 * directory, a FIFO, a symbolic link (its target as written) and a hard
 * link (the file it names), each a FileCreate with its file type. Then an
 * exchange (renameat2 RENAME_EXCHANGE): a rename each way. */
static void test_links_dirs_nodes(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char base[160], want[4][200], orig[200];
    snprintf(base, sizeof(base), "%s/names", f->dir);
    assert_int_equal(mkdir(base, 0700), 0);
    snprintf(orig, sizeof(orig), "%s/orig", base);
    close(open(orig, O_CREAT | O_WRONLY, 0600));
    static const char *const leaf[4] = {"dir", "fifo", "sym", "hard"};
    for (int i = 0; i < 4; i++)
        snprintf(want[i], sizeof(want[i]), "%s/%s", base, leaf[i]);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        if (chdir(base) != 0) _exit(1);
        if (mkdirat(AT_FDCWD, "dir", 0750) != 0) _exit(2);
        if (mknod("fifo", S_IFIFO | 0600, 0) != 0) _exit(3);
        if (symlink("../elsewhere/target", "sym") != 0) _exit(4);
        if (link("orig", "hard") != 0) _exit(5);
        /* swapped: two renames (review-fidelity 13) */
        _exit(renameat2(AT_FDCWD, "dir", AT_FDCWD, "orig", RENAME_EXCHANGE) == 0 ? 0 : 6);
    }
    reap_ok(w);
    pump(&f->loop, 300);
    static const uint32_t type[4] = {S_IFDIR, S_IFIFO, S_IFLNK, 0};
    int seen = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_FILE_CREATE) continue;
        const Edr__V1__FileCreate *c = e->file_create;
        for (int i = 0; i < 4; i++) {
            if (strcmp(c->path, want[i]) != 0) continue;
            seen |= 1 << i;
            if (type[i]) assert_int_equal(c->mode & S_IFMT, type[i]);
            if (i == 0) assert_int_equal(c->mode & 07777, 0750);
            if (i == 2) assert_string_equal(c->link_target, "../elsewhere/target");
            if (i == 3) assert_string_equal(c->link_target, orig);
        }
    }
    if (seen != 15) fail_msg("created names seen: mask %d of 15", seen);
    int swapped = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_FILE_RENAME) continue;
        const Edr__V1__FileRename *r = e->file_rename;
        if ((!strcmp(r->old_path, want[0]) && !strcmp(r->new_path, orig)) ||
            (!strcmp(r->old_path, orig) && !strcmp(r->new_path, want[0])))
            swapped++;
    }
    assert_int_equal(swapped, 2);
}

/* Connect attempts with their outcome (review-fidelity 14: a refused
 * blocking connect was not reported, a refused non-blocking one looked like
 * a connection made). One event per attempt: refused blocking, refused
 * non-blocking (on loopback the refusal comes inside the call), made
 * non-blocking (the handshake ends after the call returned), each
 * non-blocking one asked about again with connect(). */
static void test_connect_outcomes(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    uint16_t closed, open_port;
    close(bind_lo(0, &closed)); /* a port nothing listens on */
    int ls = bind_lo(0, &open_port);
    assert_int_equal(listen(ls, 4), 0);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(closed)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != ECONNREFUSED) _exit(1);
        close(c);
        for (int i = 0; i < 2; i++) {
            c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            a.sin_port = htons(i ? open_port : closed);
            int rc = connect(c, (struct sockaddr *)&a, sizeof(a));
            if (rc != 0 && errno != EINPROGRESS && !(i == 0 && errno == ECONNREFUSED)) _exit(2);
            struct pollfd p = {.fd = c, .events = POLLOUT};
            if (poll(&p, 1, 5000) != 1) _exit(3);
            int err = -1;
            socklen_t l = sizeof(err);
            getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err != (i ? 0 : ECONNREFUSED)) _exit(4);
            /* asked again (a common idiom): the same attempt's outcome, not
             * another connect (review-1205 M4) */
            (void)!connect(c, (struct sockaddr *)&a, sizeof(a));
            close(c);
        }
        _exit(0);
    }
    reap_ok(w);
    close(ls);
    pump(&f->loop, 300);
    struct stat host;
    assert_int_equal(stat("/proc/self/ns/net", &host), 0);
    uint32_t host_netns = (uint32_t)host.st_ino;
    int refused = 0, made = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_NETWORK ||
            e->network->action != EDR__V1__NETWORK__ACTION__CONNECT)
            continue;
        const Edr__V1__Network *n = e->network;
        assert_non_null(n->remote);
        assert_int_equal(n->remote->ip.len, 4);
        assert_int_equal(n->netns, host_netns); /* review-fidelity 16 */
        if (n->remote->port == closed) {
            assert_int_equal(n->error, ECONNREFUSED);
            refused++;
        } else {
            assert_int_equal(n->remote->port, open_port);
            assert_int_equal(n->error, 0);
            assert_non_null(n->local);
            assert_true(n->local->port != 0);
            made++;
        }
    }
    assert_int_equal(refused, 2);
    assert_int_equal(made, 1);
}

/* A file mapped readable and then made executable with mprotect is an
 * executable mapping of it, as mmap(PROT_EXEC) is (review-fidelity 15);
 * so is one made executable with pkey_mprotect, or as the second mapping
 * of the range given (review-1205 M6); anonymous memory made executable
 * names no file and is not reported. */
static void test_mprotect_exec(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char path[3][200];
    static char page[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof(path[i]), "%s/mapped%d.bin", f->dir, i);
        int fd = open(path[i], O_CREAT | O_WRONLY, 0700);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
        close(fd);
    }
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int r0 = open(path[0], O_RDONLY), r1 = open(path[1], O_RDONLY), r2 = open(path[2], O_RDONLY);
        void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, r0, 0);
        if (m == MAP_FAILED || mprotect(m, 4096, PROT_READ | PROT_EXEC) != 0) _exit(1);
        /* an anonymous page, then the file's, made executable at once */
        uint8_t *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (two == MAP_FAILED ||
            mmap(two + 4096, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, r1, 0) == MAP_FAILED ||
            mprotect(two, 8192, PROT_READ | PROT_EXEC) != 0)
            _exit(2);
        void *k = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, r2, 0);
        if (k == MAP_FAILED || syscall(SYS_pkey_mprotect, k, 4096, PROT_READ | PROT_EXEC, -1) != 0)
            _exit(3);
        _exit(0);
    }
    reap_ok(w);
    pump(&f->loop, 300);
    int n[3] = {0, 0, 0};
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_FILE_EXEC) continue;
        if (!e->file_exec->mapped) continue;
        int hit = 0;
        for (int i = 0; i < 3; i++)
            if (strcmp(e->file_exec->path, path[i]) == 0) n[i]++, hit = 1;
        if (!hit && strncmp(e->file_exec->path, f->dir, strlen(f->dir)) == 0)
            fail_msg("unexpected mapping %s", e->file_exec->path);
    }
    for (int i = 0; i < 3; i++)
        if (n[i] != 1) fail_msg("%s: %d executable mappings reported, not 1", path[i], n[i]);
}

/* Anonymous memory made executable (shellcode written into the process,
 * or a JIT's code) is a FileExec with no file, for the first 8 ranges of a
 * process image: made executable by mprotect, mapped writable and
 * executable at once by mmap, by an mprotect that failed part-way (ENOMEM:
 * the mapping before the hole changed, review-1206 1), READ_IMPLIES_EXEC set
 * by personality() and memory then mapped readable (review-1206 6,
 * review-1206b 7), SysV shared memory attached with
 * SHM_EXEC, and the executable stack the kernel gives an image linked with
 * -z execstack (review-1206 9). Memory that is not executable is nothing. */
static void test_anonymous_exec_memory(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    enum { KIDS = 7 };
    const Edr__V1__FileExec__MemoryBy mm = EDR__V1__FILE_EXEC__MEMORY_BY__MMAP,
                                      mp = EDR__V1__FILE_EXEC__MEMORY_BY__MPROTECT;
    /* per child: events expected, and the first one's length (0: any), prot, by */
    const struct {
        int n;
        uint64_t len;
        uint32_t prot;
        Edr__V1__FileExec__MemoryBy by;
    } want[KIDS] = {
        {2, 4096, PROT_READ | PROT_EXEC, mp},
        {1, 12288, PROT_READ | PROT_WRITE | PROT_EXEC, mm},
        {1, 8192, PROT_READ | PROT_EXEC, mp},
        {2, 0, PROT_READ | PROT_EXEC, EDR__V1__FILE_EXEC__MEMORY_BY__PERSONALITY}, /* + mmap */
        {8, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, mm},
        {1, 65536, PROT_READ | PROT_WRITE | PROT_EXEC, EDR__V1__FILE_EXEC__MEMORY_BY__SHMAT},
        {9, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, mm}, /* 8, exec, then 1 more */
    };
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c[KIDS];
    uint64_t at[KIDS];
    for (int i = 0; i < KIDS; i++) {
        c[i] = fork();
        assert_true(c[i] >= 0);
        if (c[i] == 0) {
            const int rw = PROT_READ | PROT_WRITE, an = MAP_PRIVATE | MAP_ANONYMOUS;
            uint8_t *p = NULL;
            if (mmap(NULL, 4096, rw, an, -1, 0) == MAP_FAILED) _exit(1);
            if (i == 0) {
                p = mmap(NULL, 8192, rw, an, -1, 0);
                if (p == MAP_FAILED) _exit(2);
                p[0] = 0xc3; /* ret */
                if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) _exit(3);
                if (mmap(NULL, 4096, rw | PROT_EXEC, an, -1, 0) == MAP_FAILED) _exit(4);
            } else if (i == 1) {
                p = mmap(NULL, 12288, rw | PROT_EXEC, an, -1, 0);
            } else if (i == 2) { /* the second page is a hole: ENOMEM, the first changed */
                p = mmap(NULL, 8192, rw, an, -1, 0);
                if (p == MAP_FAILED || munmap(p + 4096, 4096) != 0) _exit(5);
                if (mprotect(p, 8192, PROT_READ | PROT_EXEC) == 0 || errno != ENOMEM) _exit(6);
            } else if (i == 3) {
                if (personality(READ_IMPLIES_EXEC) < 0) _exit(7);
                p = mmap(NULL, 4096, rw, an, -1, 0);
            } else if (i == 4) {
                for (int k = 0; k < 10; k++) { /* the first is checked */
                    uint8_t *q = mmap(NULL, 4096, rw | PROT_EXEC, an, -1, 0);
                    if (q == MAP_FAILED) _exit(8);
                    p = p ? p : q;
                }
            } else if (i == 5) {
                int id = shmget(IPC_PRIVATE, 65536, IPC_CREAT | 0600);
                if (id < 0) _exit(11);
                p = shmat(id, NULL, SHM_EXEC);
                shmctl(id, IPC_RMID, NULL);
                if (p == (void *)-1) _exit(12);
            } else { /* the cap used up, then an exec: a new image, a new count */
                for (int k = 0; k < 8; k++) {
                    uint8_t *q = mmap(NULL, 4096, rw | PROT_EXEC, an, -1, 0);
                    if (q == MAP_FAILED) _exit(13);
                    p = p ? p : q;
                }
                uint64_t a = (uint64_t)(uintptr_t)p;
                if (write(pp[1], &a, sizeof(a)) != (ssize_t)sizeof(a)) _exit(14);
                execl(EDR_EXECSTACK_HELPER, EDR_EXECSTACK_HELPER, (char *)NULL);
                _exit(15);
            }
            if (p == MAP_FAILED) _exit(9);
            uint64_t a = (uint64_t)(uintptr_t)p;
            if (write(pp[1], &a, sizeof(a)) != (ssize_t)sizeof(a)) _exit(10);
            _exit(0);
        }
        reap_ok(c[i]);
        assert_int_equal(read(pp[0], &at[i], sizeof(at[i])), (ssize_t)sizeof(at[i]));
    }
    close(pp[0]);
    close(pp[1]);
    pump(&f->loop, 300);
    int n[KIDS] = {0}, stack = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_FILE_EXEC || !e->file_exec->anonymous) continue;
        for (int i = 0; i < KIDS; i++) {
            if (e->pid != (uint32_t)c[i]) continue;
            const Edr__V1__FileExec *x = e->file_exec;
            if (i == KIDS - 1 && x->by == EDR__V1__FILE_EXEC__MEMORY_BY__EXEC) {
                stack++; /* the helper's stack, the new image's first */
                assert_int_equal(x->prot, PROT_READ | PROT_WRITE | PROT_EXEC);
                assert_int_equal(n[i], 8);
            }
            assert_true(x->mapped);
            assert_string_equal(x->path, "");
            assert_int_equal(e->entity_id.len, EDR_ID_LEN);
            if (n[i]++) continue; /* the first one is checked */
            if (want[i].by != EDR__V1__FILE_EXEC__MEMORY_BY__PERSONALITY)
                assert_int_equal(x->address, at[i]);
            if (want[i].len) assert_int_equal(x->length, want[i].len);
            assert_int_equal(x->prot, want[i].prot);
            assert_int_equal(x->by, want[i].by);
        }
    }
    for (int i = 0; i < KIDS; i++)
        if (n[i] != want[i].n)
            fail_msg("child %d: %d anonymous executable ranges reported, not %d", i, n[i], want[i].n);
    assert_int_equal(stack, 1);
}

/* Code of a mapped file that may not be the file's: a writable and
 * executable private mapping of a file the process already mapped for
 * execution, or a private copy written to and then made executable, is
 * reported apart from the file's own mapping, marked modified
 * (review-1206 4). */
static void test_modified_file_code(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char path[200];
    static char page[8192];
    snprintf(path, sizeof(path), "%s/lib.so", f->dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0700);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
    close(fd);
    pid_t c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = fork();
        assert_true(c[i] >= 0);
        if (c[i] == 0) {
            int r = open(path, O_RDONLY);
            if (r < 0 || mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, r, 0) == MAP_FAILED)
                _exit(1);
            if (i == 0) {
                if (mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE, r, 0) ==
                    MAP_FAILED)
                    _exit(2);
            } else {
                uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, r, 4096);
                if (p == MAP_FAILED) _exit(3);
                p[0] = 0xc3; /* the process's own copy of the page now */
                if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) _exit(4);
            }
            _exit(0);
        }
        reap_ok(c[i]);
    }
    pump(&f->loop, 300);
    for (int i = 0; i < 2; i++) {
        int plain = 0, modified = 0;
        for (size_t j = 0; j < f->em.n; j++) {
            Edr__V1__Event *e = f->em.ev[j];
            if (e->pid != (uint32_t)c[i] || e->body_case != EDR__V1__EVENT__BODY_FILE_EXEC ||
                strcmp(e->file_exec->path, path))
                continue;
            const Edr__V1__FileExec *x = e->file_exec;
            assert_true(x->mapped);
            assert_false(x->anonymous);
            if (x->modified) {
                modified++;
                assert_int_equal(x->prot, i == 0 ? (PROT_READ | PROT_WRITE | PROT_EXEC)
                                                 : (PROT_READ | PROT_EXEC));
            } else {
                plain++;
                assert_int_equal(x->prot, PROT_READ | PROT_EXEC);
            }
        }
        if (plain != 1 || modified != 1)
            fail_msg("child %d: %d plain and %d modified mappings of %s, not 1 and 1", i, plain,
                     modified, path);
    }
}

/* A BPF program loaded by another process (an eBPF rootkit's first step) is
 * a bpf_load event with the kernel's id, tag, type, name and instruction
 * count of it; a load the verifier refuses is nothing. One loaded where the
 * hooks do not see it (here by an ia32 syscall; a light skeleton loads from
 * inside a BPF program) is found by the sensor's scan of the kernel's
 * programs within about two seconds: marked found, with no actor
 * (review-1206b 3, 4). */
static void test_bpf_load_reported(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c[2];
    struct bpf_prog_info info[2];
    for (int i = 0; i < 2; i++) {
        c[i] = fork();
        assert_true(c[i] >= 0);
        if (c[i] == 0) {
            alarm(20);
            if (i == 0) {
                struct bpf_insn bad[1] = {{.code = BPF_JMP | BPF_EXIT}}; /* r0 never set */
                union bpf_attr at;
                memset(&at, 0, sizeof(at));
                at.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
                at.insns = (uint64_t)(uintptr_t)bad;
                at.insn_cnt = 1;
                at.license = (uint64_t)(uintptr_t) "GPL";
                strcpy(at.prog_name, "edrtest_bad");
                if (syscall(SYS_bpf, BPF_PROG_LOAD, &at, sizeof(at)) >= 0) _exit(1);
            }
            if (load_test_prog(i ? "edrtest_ia32" : "edrtest_flt", i, pp[1]) < 0) _exit(2);
            pause(); /* the programs stay loaded while their fd is open */
            _exit(0);
        }
        assert_int_equal(read(pp[0], &info[i], sizeof(info[i])), (ssize_t)sizeof(info[i]));
    }
    pump(&f->loop, 2600); /* the scan leaves programs younger than a second to the next one */
    for (int i = 0; i < 2; i++) {
        kill(c[i], SIGKILL);
        waitpid(c[i], NULL, 0);
    }
    close(pp[0]);
    close(pp[1]);
    int n[2] = {0, 0};
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_LOAD) continue;
        const Edr__V1__BpfLoad *x = e->bpf_load;
        for (int i = 0; i < 2; i++) {
            if (x->prog_id != info[i].id) continue;
            n[i]++;
            assert_string_equal(x->name, i ? "edrtest_ia32" : "edrtest_flt");
            assert_int_equal(x->prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
            assert_int_equal(x->tag.len, 8);
            assert_memory_equal(x->tag.data, info[i].tag, 8);
            assert_int_equal(x->insn_count, 2);
            assert_string_equal(x->attach_to, "");
            assert_int_equal(x->found, i == 1);
            if (i == 0) {
                assert_int_equal(e->pid, (uint32_t)c[0]);
                assert_int_equal(e->entity_id.len, EDR_ID_LEN);
            } else { /* no actor; found after it was loaded */
                assert_int_equal(e->pid, 0);
                assert_int_equal(e->entity_id.len, 0);
                assert_true(x->load_time_ns > 0);
                assert_true((uint64_t)e->time_offset_ns >= x->load_time_ns); /* absolute here */
            }
        }
    }
    assert_int_equal(n[0], 1);
    assert_int_equal(n[1], 1);
}

/* Filters put on sockets by setsockopt are bpf_attach events naming the
 * socket (family, type, protocol; its inode) and the option: a classic BPF
 * filter on a raw packet socket (SO_ATTACH_FILTER: how BPFDoor waits for
 * its magic packets; no program id) and a loaded socket filter program on a
 * UDP socket (SO_ATTACH_BPF: its id and name), a classic program that
 * picks the socket of a reuseport group (SO_ATTACH_REUSEPORT_CBPF), each
 * with its actor. Other socket options, and a refused filter, are
 * nothing. */
static void test_socket_filter_reported(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(20);
        struct sock_filter ins[2] = {{BPF_LD | BPF_H | BPF_ABS, 0, 0, 12},
                                     {BPF_RET | BPF_K, 0, 0, 0}};
        struct sock_fprog fp = {.len = 2, .filter = ins}, bad = {.len = 0, .filter = ins};
        int one = 1, ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
        int us = socket(AF_INET, SOCK_DGRAM, 0), rs = socket(AF_INET6, SOCK_DGRAM, 0);
        struct sock_filter pick[1] = {{BPF_RET | BPF_K, 0, 0, 0}};
        struct sock_fprog fr = {.len = 1, .filter = pick};
        if (ps < 0 || us < 0 || rs < 0) _exit(1);
        if (setsockopt(rs, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            setsockopt(rs, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fr, sizeof(fr)) != 0)
            _exit(8);
        if (setsockopt(us, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) _exit(2);
        if (setsockopt(us, SOL_SOCKET, SO_ATTACH_FILTER, &bad, sizeof(bad)) == 0) _exit(3);
        if (setsockopt(ps, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0) _exit(4);
        int pfd = load_test_prog("edrtest_sockf", 0, pp[1]);
        if (pfd < 0 || setsockopt(us, SOL_SOCKET, SO_ATTACH_BPF, &pfd, sizeof(pfd)) != 0) _exit(5);
        struct stat a, b, r;
        if (fstat(ps, &a) != 0 || fstat(us, &b) != 0 || fstat(rs, &r) != 0) _exit(6);
        uint64_t inos[3] = {a.st_ino, b.st_ino, r.st_ino};
        if (write(pp[1], inos, sizeof(inos)) != (ssize_t)sizeof(inos)) _exit(7);
        _exit(0);
    }
    struct bpf_prog_info info;
    uint64_t inos[3];
    assert_int_equal(read(pp[0], &info, sizeof(info)), (ssize_t)sizeof(info));
    assert_int_equal(read(pp[0], inos, sizeof(inos)), (ssize_t)sizeof(inos));
    reap_ok(c);
    close(pp[0]);
    close(pp[1]);
    const Edr__V1__BpfAttach *cl = NULL, *eb = NULL, *ru = NULL;
    int n = 0;
    for (int i = 0; i < 100 && !(cl && eb && ru); i++) {
        pump(&f->loop, 20);
        n = 0;
        for (size_t j = 0; j < f->em.n; j++) {
            Edr__V1__Event *e = f->em.ev[j];
            if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH || e->pid != (uint32_t)c) continue;
            n++;
            assert_int_equal(e->entity_id.len, EDR_ID_LEN);
            if (e->bpf_attach->socket_option == SO_ATTACH_FILTER) cl = e->bpf_attach;
            if (e->bpf_attach->socket_option == SO_ATTACH_BPF) eb = e->bpf_attach;
            if (e->bpf_attach->socket_option == SO_ATTACH_REUSEPORT_CBPF) ru = e->bpf_attach;
        }
    }
    if (!(cl && eb && ru))
        fail_msg("socket filters: classic %d, eBPF %d, reuseport %d", !!cl, !!eb, !!ru);
    assert_int_equal(n, 3); /* SO_REUSEADDR, SO_REUSEPORT and the refused filter: nothing */
    char want[128];
    snprintf(want, sizeof(want), "socket family %d type %d protocol %d", AF_PACKET, SOCK_RAW,
             htons(ETH_P_ALL));
    assert_string_equal(cl->target, want);
    assert_int_equal(cl->target_id, inos[0]);
    assert_int_equal(cl->prog_id, 0);
    assert_int_equal(cl->link_id, 0);
    assert_true(cl->unverified && eb->unverified && ru->unverified); /* found by number again */
    snprintf(want, sizeof(want), "socket family %d type %d protocol %d", AF_INET, SOCK_DGRAM,
             IPPROTO_UDP);
    assert_string_equal(eb->target, want);
    assert_int_equal(eb->target_id, inos[1]);
    assert_int_equal(eb->prog_id, info.id);
    assert_string_equal(eb->prog_name, "edrtest_sockf");
    assert_int_equal(eb->prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
    snprintf(want, sizeof(want), "socket family %d type %d protocol %d", AF_INET6, SOCK_DGRAM,
             IPPROTO_UDP);
    assert_string_equal(ru->target, want);
    assert_int_equal(ru->target_id, inos[2]);
}

static int tracepoint_event(uint64_t tp);
static uint32_t bpf_id_of(int fd);

/* The child of test_fd_scan_found: sockets with programs made before the
 * sensor starts (a packet socket with a classic filter, a UDP socket with
 * a loaded one, a reuseport group of two with a classic program, a packet
 * socket in a fanout group with a classic program) and a TAP device with a
 * classic filter, held by it and a child of its own; told (a byte on go), a
 * classic filter put by an ia32 setsockopt (no hook sees it: sensor.ebpf_ia32 false) and one by
 * setsockopt, a program given to a perf event (tracepoint tp) by an ia32
 * ioctl and one by ioctl, and a fanout group's program by setsockopt. Writes the socket program's
 * info, its child's pid, the sockets' inodes and the perf events' program ids to out, then waits to
 * be killed. */
static void fd_found_child(int out, int go, uint64_t tp)
{
    alarm(60);
    struct sock_filter ins[1] = {{BPF_RET | BPF_K, 0, 0, 0}};
    struct sock_fprog fp = {.len = 1, .filter = ins};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    int one = 1, ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    int us = socket(AF_INET, SOCK_DGRAM, 0), r1 = socket(AF_INET, SOCK_DGRAM, 0);
    int r2 = socket(AF_INET, SOCK_DGRAM, 0), ia = socket(AF_INET, SOCK_DGRAM, 0);
    int hk = socket(AF_INET, SOCK_DGRAM, 0);
    /* packet sockets in two fanout groups of type CBPF: one given its
     * program now, the other told */
    int fo1 = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    int fo2 = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    int g1 = (getpid() & 0x7fff) | PACKET_FANOUT_CBPF << 16, g2 = g1 ^ 1;
    if (fo1 < 0 || fo2 < 0 || setsockopt(fo1, SOL_PACKET, PACKET_FANOUT, &g1, sizeof(g1)) != 0 ||
        setsockopt(fo2, SOL_PACKET, PACKET_FANOUT, &g2, sizeof(g2)) != 0 ||
        setsockopt(fo1, SOL_PACKET, PACKET_FANOUT_DATA, &fp, sizeof(fp)) != 0)
        _exit(14);
    if (ps < 0 || us < 0 || r1 < 0 || r2 < 0 || ia < 0 || hk < 0) _exit(1);
    if (setsockopt(ps, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0) _exit(2);
    int pfd = load_test_prog("edrtest_sockp", 0, out);
    if (pfd < 0 || setsockopt(us, SOL_SOCKET, SO_ATTACH_BPF, &pfd, sizeof(pfd)) != 0) _exit(3);
    if (setsockopt(r1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        setsockopt(r2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(r1, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(r1, (struct sockaddr *)&sin, &sl) != 0 ||
        bind(r2, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        setsockopt(r1, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof(fp)) != 0)
        _exit(4);
    /* a TAP device with a classic filter (TUNATTACHFILTER), edrtapPID */
    struct ifreq ifr;
    int tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "edrtap%d", getpid() % 100000);
    if (tap < 0 || ioctl(tap, TUNSETIFF, &ifr) != 0 || ioctl(tap, TUNATTACHFILTER, &fp) != 0)
        _exit(13);
    pid_t holder = fork(); /* holds the same sockets: each is found once */
    if (holder == 0) {
        pause();
        _exit(0);
    }
    uint64_t v[11] = {(uint64_t)holder};
    int fds[8] = {ps, us, r1, r2, ia, hk, fo1, fo2};
    for (int i = 0; i < 8; i++) {
        struct stat st;
        if (fstat(fds[i], &st) != 0) _exit(5);
        v[i < 6 ? i + 1 : i + 3] = st.st_ino;
    }
    int tp32 = load_test_prog_of("edrtest_pe32", 0, -1, BPF_PROG_TYPE_TRACEPOINT, 0);
    int tp64 = load_test_prog_of("edrtest_pe64", 0, -1, BPF_PROG_TYPE_TRACEPOINT, 0);
    int pe32 = tracepoint_event(tp), pe64 = tracepoint_event(tp);
    v[7] = bpf_id_of(tp32);
    v[8] = bpf_id_of(tp64);
    if (pe32 < 0 || pe64 < 0 || !v[7] || !v[8]) _exit(11);
    if (holder < 0 || write(out, v, sizeof(v)) != (ssize_t)sizeof(v)) _exit(6);
    char b;
    if (read(go, &b, 1) != 1) _exit(7);
    uint8_t *m = test_low_page();
    if (m == MAP_FAILED) _exit(8);
    struct sock_filter *ins32 = (struct sock_filter *)m;
    uint32_t *fp32 = (uint32_t *)(m + 64); /* compat sock_fprog: 16-bit length, 32-bit pointer */
    ins32[0] = ins[0];
    fp32[0] = 1, fp32[1] = (uint32_t)L32(ins32);
    if (sys32(366, ia, SOL_SOCKET, SO_ATTACH_FILTER, L32(fp32), 8, 0) != 0) _exit(9);
    if (setsockopt(hk, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0) _exit(10);
    if (sys32(54, pe32, PERF_EVENT_IOC_SET_BPF, tp32, 0, 0, 0) != 0 ||
        ioctl(pe64, PERF_EVENT_IOC_SET_BPF, tp64) != 0)
        _exit(12);
    if (setsockopt(fo2, SOL_PACKET, PACKET_FANOUT_DATA, &fp, sizeof(fp)) != 0) _exit(15);
    pause();
    _exit(0);
}

/* An own source for the descriptor scan's tests: ia32 calls unobserved
 * (what they attach only the scan finds), a scan every second */
static const char *const fd_scan_kv[] = {"sensor.ebpf_ia32", "false", "sensor.ebpf_fd_scan", "1s",
                                         NULL};

/* Programs that sockets and perf events hold are found by the scan of
 * every process's descriptors: those put there before the sensor started,
 * at start, and those put there by a call no hook saw (an ia32 setsockopt
 * or ioctl, with sensor.ebpf_ia32 false) within about two seconds; each
 * once (a socket two processes hold, a reuseport group of two), named by a
 * process holding it. One put there by a setsockopt or ioctl the hooks saw
 * is their event, not found again. */
static void test_fd_scan_found(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char idp[] = "/sys/kernel/tracing/events/sched/sched_process_free/id";
    FILE *tf = fopen(idp, "r");
    unsigned long long tp = 0;
    if (!tf || fscanf(tf, "%llu", &tp) != 1) fail_msg("no tracepoint id in %s", idp);
    fclose(tf);
    if (!ia32_runs()) {
        print_message("SKIP: this kernel does not run ia32 syscalls\n");
        skip();
    }
    int pp[2], go[2];
    assert_int_equal(pipe(pp), 0);
    assert_int_equal(pipe(go), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) fd_found_child(pp[1], go[0], tp);
    struct bpf_prog_info info;
    uint64_t v[11];
    assert_int_equal(read(pp[0], &info, sizeof(info)), (ssize_t)sizeof(info));
    assert_int_equal(read(pp[0], v, sizeof(v)), (ssize_t)sizeof(v));
    pid_t holder = (pid_t)v[0];
    uv_loop_t loop;
    edr_emit_t em;
    edr_source_t *src = start_own_source(f, fd_scan_kv, &loop, &em);
    size_t at_start = em.n;
    assert_int_equal(write(go[1], "g", 1), 1);
    pump(&loop, 3200); /* found by the second scan that meets it */
    kill(c, SIGKILL);
    kill(holder, SIGKILL);
    waitpid(c, NULL, 0);
    waitpid(holder, NULL, 0);
    close(pp[0]);
    close(pp[1]);
    close(go[0]);
    close(go[1]);
    /* by the socket inode: found at start (index 1-3), found later (4), the
     * hooks' event (5) */
    int found[6] = {0}, later[6] = {0}, hooked = 0, pe_found[2] = {0}, pe_hooked = 0, tun = 0;
    int fo_found[2] = {0}, fo_hooked[2] = {0};
    const Edr__V1__BpfAttach *x[6] = {0}, *pe = NULL;
    char tap[64];
    snprintf(tap, sizeof(tap), "tun edrtap%d", (int)c % 100000);
    for (size_t j = 0; j < em.n; j++) {
        Edr__V1__Event *e = em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH) continue;
        for (int i = 0; i < 2; i++) /* the fanout groups' programs */
            if (e->bpf_attach->target_id == v[9 + i]) {
                assert_int_equal(e->bpf_attach->socket_option, PACKET_FANOUT_DATA);
                if (e->bpf_attach->found) fo_found[i]++;
                if (!e->bpf_attach->found && e->pid == (uint32_t)c) fo_hooked[i]++;
            }
        if (!strcmp(e->bpf_attach->target, tap)) {
            assert_true(e->bpf_attach->found);
            assert_true(e->pid == (uint32_t)c || e->pid == (uint32_t)holder);
            assert_int_equal(e->bpf_attach->prog_id, 0);
            assert_int_equal(e->bpf_attach->prog_type, 0); /* classic: the kernel gives none */
            assert_true(e->bpf_attach->target_id != 0);    /* the device's index */
            tun++;
        }
        for (int i = 0; i < 2; i++) /* the perf events' programs */
            if (e->bpf_attach->prog_id == v[7 + i] && e->bpf_attach->found) {
                assert_true(e->pid == (uint32_t)c || e->pid == (uint32_t)holder);
                assert_true(j >= at_start);
                pe_found[i]++;
                pe = i ? pe : e->bpf_attach;
            } else if (e->bpf_attach->prog_id == v[7 + i] && i == 1 && e->pid == (uint32_t)c) {
                pe_hooked++;
            }
        for (int i = 0; i < 6; i++) {
            if (e->bpf_attach->target_id != v[i + 1]) continue;
            if (e->bpf_attach->found) {
                assert_true(e->pid == (uint32_t)c || e->pid == (uint32_t)holder);
                assert_int_equal(e->entity_id.len, EDR_ID_LEN);
                found[i]++;
                later[i] += j >= at_start;
                x[i] = e->bpf_attach;
            } else if (i == 5 && e->pid == (uint32_t)c) {
                hooked++;
            }
        }
    }
    /* the events live in em: the source is ended after the checks (one
     * failing leaves it to the end of the process) */
    if (!found[0] || !found[1] || found[2] + found[3] != 1 || !found[4])
        fail_msg("found: packet %d, eBPF %d, reuseport %d+%d, ia32 %d", found[0], found[1],
                 found[2], found[3], found[4]);
    assert_int_equal(found[0], 1); /* once, though two processes hold it */
    assert_int_equal(found[1], 1);
    assert_int_equal(found[4], 1);
    assert_int_equal(later[4], 1);
    assert_int_equal(found[5], 0); /* the hooks' event: not found again */
    assert_int_equal(hooked, 1);
    char want[128];
    snprintf(want, sizeof(want), "socket family %d type %d protocol %d", AF_PACKET, SOCK_RAW,
             htons(ETH_P_ALL));
    assert_string_equal(x[0]->target, want);
    assert_int_equal(x[0]->socket_option, SO_ATTACH_FILTER);
    assert_int_equal(x[0]->prog_id, 0);
    assert_int_equal(x[1]->socket_option, SO_ATTACH_BPF);
    assert_int_equal(x[1]->prog_id, info.id);
    assert_string_equal(x[1]->prog_name, "edrtest_sockp");
    assert_int_equal(x[1]->prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
    assert_int_equal((x[2] ? x[2] : x[3])->socket_option, SO_ATTACH_REUSEPORT_CBPF);
    assert_int_equal(x[4]->socket_option, SO_ATTACH_FILTER);
    snprintf(want, sizeof(want), "socket family %d type %d protocol %d", AF_INET, SOCK_DGRAM,
             IPPROTO_UDP);
    assert_string_equal(x[4]->target, want);
    assert_false(x[4]->unverified);
    if (pe_found[0] != 1 || pe_found[1] || pe_hooked != 1)
        fail_msg("perf event programs: by ia32 ioctl found %d, by ioctl found %d and reported %d",
                 pe_found[0], pe_found[1], pe_hooked);
    assert_string_equal(pe->target, "sched_process_free");
    assert_int_equal(pe->target_id, tp);
    assert_int_equal(pe->attach_type, BPF_PERF_EVENT);
    assert_string_equal(pe->prog_name, "edrtest_pe32");
    assert_int_equal(tun, 1); /* the TAP device's filter, found at start */
    if (fo_found[0] != 1 || fo_hooked[0] || fo_found[1] || fo_hooked[1] != 1)
        fail_msg("fanout programs: at start found %d reported %d, told found %d reported %d",
                 fo_found[0], fo_hooked[0], fo_found[1], fo_hooked[1]);
    end_own_source(src, &loop, &em);
}

/* 300 filtered sockets in place when the sensor starts are each found
 * once: more records than one read of the iterator holds (about 87), and
 * none lost where a read ends (review-1205-sock2 1: the one that did not
 * fit was marked written, then skipped when the kernel showed it again). */
static void test_fd_scan_many(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    enum { N = 300 };
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(30);
        struct sock_filter ins[1] = {{BPF_RET | BPF_K, 0, 0, 0}};
        struct sock_fprog fp = {.len = 1, .filter = ins};
        static uint64_t inos[N];
        for (int i = 0; i < N; i++) {
            int u = socket(AF_INET, SOCK_DGRAM, 0);
            struct stat st;
            if (u < 0 || setsockopt(u, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0 ||
                fstat(u, &st) != 0)
                _exit(1);
            inos[i] = st.st_ino;
        }
        if (write(pp[1], inos, sizeof(inos)) != (ssize_t)sizeof(inos)) _exit(2);
        pause();
        _exit(0);
    }
    static uint64_t inos[N];
    assert_int_equal(read(pp[0], inos, sizeof(inos)), (ssize_t)sizeof(inos));
    uv_loop_t loop;
    edr_emit_t em;
    edr_source_t *src = start_own_source(f, fd_scan_kv, &loop, &em);
    pump(&loop, 2200); /* the start's scan and two more */
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    close(pp[0]);
    close(pp[1]);
    static int seen[N];
    memset(seen, 0, sizeof(seen));
    for (size_t j = 0; j < em.n; j++) {
        Edr__V1__Event *e = em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH || e->pid != (uint32_t)c) continue;
        for (int i = 0; i < N; i++)
            if (e->bpf_attach->target_id == inos[i]) seen[i]++;
    }
    end_own_source(src, &loop, &em);
    int once = 0, missed = 0;
    for (int i = 0; i < N; i++) {
        once += seen[i] == 1;
        missed += seen[i] == 0;
    }
    if (once != N) fail_msg("of %d filtered sockets: %d found once, %d missed", N, once, missed);
}

/* A filter put on anew faster than the scan's period, by a call no hook
 * sees (an ia32 setsockopt with sensor.ebpf_ia32 false), two programs in
 * turn, is still found (review-1205-sock 1: every attach made a new key,
 * and a key was reported only when two scans met it). */
static void test_fd_scan_reattach(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    if (!ia32_runs()) {
        print_message("SKIP: this kernel does not run ia32 syscalls\n");
        skip();
    }
    uv_loop_t loop;
    edr_emit_t em;
    edr_source_t *src = start_own_source(f, fd_scan_kv, &loop, &em);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(20);
        uint8_t *m = test_low_page();
        int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
        struct stat st;
        if (m == MAP_FAILED || ps < 0 || fstat(ps, &st) != 0) _exit(1);
        struct sock_filter *ins = (struct sock_filter *)m;
        uint32_t *fp = (uint32_t *)(m + 64); /* compat sock_fprog */
        fp[1] = (uint32_t)L32(ins);
        for (int i = 0;; i++) {
            ins[0] = (struct sock_filter){BPF_RET | BPF_K, 0, 0, (uint32_t)(i & 1)};
            fp[0] = 1;
            if (sys32(366, ps, SOL_SOCKET, SO_ATTACH_FILTER, L32(fp), 8, 0) != 0) _exit(2);
            if (i == 0 && write(pp[1], &st.st_ino, sizeof(st.st_ino)) != sizeof(st.st_ino))
                _exit(3);
            usleep(300000);
        }
    }
    uint64_t ino = 0;
    assert_int_equal(read(pp[0], &ino, sizeof(ino)), (ssize_t)sizeof(ino));
    pump(&loop, 4200);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    close(pp[0]);
    close(pp[1]);
    int found = 0;
    for (size_t j = 0; j < em.n; j++) {
        Edr__V1__Event *e = em.ev[j];
        if (e->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH && e->bpf_attach->target_id == ino) {
            assert_true(e->bpf_attach->found);
            assert_int_equal(e->pid, (uint32_t)c);
            assert_int_equal(e->bpf_attach->socket_option, SO_ATTACH_FILTER);
            found++;
        }
    }
    end_own_source(src, &loop, &em);
    if (found < 2) fail_msg("a filter put on anew every 300 ms: found %d times in 4 scans", found);
}

/* Two veth pairs (nl, lk: their first ends, named prefix + pid), an XDP
 * program put on nl through netlink by one child (named pn) and one on lk
 * through a BPF link by another (named pl), which keeps the link open until
 * killed; nl_exits: the first child exits once attached (netlink holds the
 * program), else it waits too. info: the programs, c: the children, pp: the
 * pipe they wrote through (open). 0, or -1 when veth interfaces cannot be
 * made (then nothing is left, and the reason to skip is printed). */
static int xdp_two_ways(const char *pn, const char *pl, int nl_exits, char nl[16], char lk[16],
                        int *ifn, int *ifl, pid_t c[2], struct bpf_prog_info info[2], int pp[2])
{
    char cmd[160];
    snprintf(nl, 16, "%.5sn%d", pn + 8, getpid() % 100000);
    snprintf(lk, 16, "%.5sl%d", pl + 8, getpid() % 100000);
    snprintf(cmd, sizeof(cmd),
             "ip link add %s type veth peer name %sp && ip link add %s type veth peer name %sp", nl,
             nl, lk, lk);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "ip link del %s 2>/dev/null; ip link del %s 2>/dev/null", nl,
                 lk);
        if (system(cmd)) {
        }
        print_message("SKIP: cannot make veth interfaces (ip link add ... type veth)\n");
        return -1;
    }
    *ifn = (int)if_nametoindex(nl);
    *ifl = (int)if_nametoindex(lk);
    assert_int_equal(pipe(pp), 0);
    for (int i = 0; i < 2; i++) {
        c[i] = fork();
        assert_true(c[i] >= 0);
        if (c[i] == 0) {
            alarm(20);
            int fd = load_test_prog_of(i ? pl : pn, 0, pp[1], BPF_PROG_TYPE_XDP, BPF_XDP);
            if (fd < 0) _exit(1);
            if (i == 0 && bpf_xdp_attach(*ifn, fd, XDP_FLAGS_SKB_MODE, NULL) != 0) _exit(2);
            if (i == 1 && bpf_link_create(fd, *ifl, BPF_XDP, NULL) < 0) _exit(3);
            if (i == 0 && nl_exits) _exit(0);
            pause(); /* the link lives while its descriptor is open */
            _exit(0);
        }
        assert_int_equal(read(pp[0], &info[i], sizeof(info[i])), (ssize_t)sizeof(info[i]));
    }
    return 0;
}

/* An XDP program put on an interface by netlink (`ip link set dev X xdp`,
 * libbpf's bpf_xdp_attach: no bpf() attach call, no link) is found by the
 * scan of the interfaces within about two seconds: no actor, the
 * interface's name and index (a veth the test makes). One put there by an XDP link is the hooks'
 * (a record with its actor), not found again by that scan. */
static void test_xdp_netlink_found(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char nl[16], lk[16], cmd[160];
    int ifn, ifl, pp[2];
    pid_t c[2];
    struct bpf_prog_info info[2];
    if (xdp_two_ways("edrtest_xdpnl", "edrtest_xdplk", 0, nl, lk, &ifn, &ifl, c, info, pp)) skip();
    pump(&f->loop, 3200); /* found by the second scan that meets it */
    for (int i = 0; i < 2; i++) {
        kill(c[i], SIGKILL);
        waitpid(c[i], NULL, 0);
    }
    close(pp[0]);
    close(pp[1]);
    snprintf(cmd, sizeof(cmd), "ip link del %s; ip link del %s", nl, lk);
    assert_int_equal(system(cmd), 0);
    const Edr__V1__BpfAttach *fnd = NULL, *rec = NULL;
    int found_lk = 0, found_nl = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH) continue;
        const Edr__V1__BpfAttach *x = e->bpf_attach;
        if (x->prog_id == info[0].id) {
            assert_true(x->found);
            assert_int_equal(e->pid, 0);
            fnd = x;
            found_nl++;
        }
        if (x->prog_id == info[1].id) {
            if (x->found) found_lk++;
            if (!x->found && e->pid == (uint32_t)c[1]) rec = x;
        }
    }
    if (!fnd || !rec) fail_msg("XDP by netlink found %d, by a link reported %d", !!fnd, !!rec);
    assert_string_equal(fnd->target, nl);
    assert_int_equal(fnd->target_id, (uint64_t)ifn);
    assert_int_equal(fnd->attach_type, BPF_XDP);
    assert_int_equal(fnd->link_id, 0);
    assert_string_equal(fnd->prog_name, "edrtest_xdpnl");
    assert_int_equal(fnd->prog_type, BPF_PROG_TYPE_XDP);
    assert_true(rec->link_id != 0);
    assert_int_equal(rec->target_id, (uint64_t)ifl);
    assert_int_equal(found_lk, 0);
    assert_int_equal(found_nl, 1); /* once, not again each scan */
}

/* tc BPF classifiers put on an interface by netlink (`tc filter add ...
 * bpf`, libbpf's bpf_tc_attach: no bpf() attach call, no link) are found
 * by the scan of the interfaces: one on the ingress hook of a clsact qdisc,
 * one on its egress hook (a veth the test makes), each once, with the
 * interface's name and index and the direction as the attach type; none
 * found again while they stay; each reported gone (bpf_detach) once when
 * its qdisc is deleted. */
static void test_tc_netlink_found(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char nl[16], cmd[160];
    snprintf(nl, sizeof(nl), "edrtc%d", getpid() % 100000);
    snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %sp", nl, nl);
    if (system(cmd) != 0) {
        print_message("SKIP: cannot make veth interfaces (ip link add ... type veth)\n");
        skip();
    }
    int ifn = (int)if_nametoindex(nl);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(20);
        DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifn,
                            .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
        if (bpf_tc_hook_create(&hook) != 0) _exit(1);
        for (int i = 0; i < 2; i++) {
            int fd = load_test_prog_of(i ? "edrtest_tcout" : "edrtest_tcin", 0, pp[1],
                                       BPF_PROG_TYPE_SCHED_CLS, 0);
            DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = fd);
            hook.attach_point = i ? BPF_TC_EGRESS : BPF_TC_INGRESS;
            if (fd < 0 || bpf_tc_attach(&hook, &o) != 0) _exit(2 + i);
        }
        _exit(0); /* the filters stay: netlink holds them */
    }
    struct bpf_prog_info info[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(read(pp[0], &info[i], sizeof(info[i])), (ssize_t)sizeof(info[i]));
    reap_ok(c);
    close(pp[0]);
    close(pp[1]);
    pump(&f->loop, 3200); /* two scans or more */
    size_t before = f->em.n;
    /* the filters taken off with their qdisc: each reported gone once */
    snprintf(cmd, sizeof(cmd), "tc qdisc del dev %s clsact", nl);
    assert_int_equal(system(cmd), 0);
    pump(&f->loop, 2200);
    snprintf(cmd, sizeof(cmd), "ip link del %s", nl);
    assert_int_equal(system(cmd), 0);
    const Edr__V1__BpfAttach *x[2] = {0};
    int n[2] = {0}, gone[2] = {0};
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case == EDR__V1__EVENT__BODY_BPF_DETACH) {
            for (int i = 0; i < 2; i++)
                if (e->bpf_detach->prog_id == info[i].id) {
                    assert_true(j >= before);
                    assert_string_equal(e->bpf_detach->target, nl);
                    gone[i]++;
                }
            continue;
        }
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH) continue;
        for (int i = 0; i < 2; i++)
            if (e->bpf_attach->prog_id == info[i].id) {
                assert_true(e->bpf_attach->found);
                assert_int_equal(e->pid, 0);
                x[i] = e->bpf_attach;
                n[i]++;
            }
    }
    if (!x[0] || !x[1]) fail_msg("tc filters found: ingress %d, egress %d", n[0], n[1]);
    if (gone[0] != 1 || gone[1] != 1)
        fail_msg("tc filters gone with their qdisc: ingress %d, egress %d (once each expected)",
                 gone[0], gone[1]);
    assert_int_equal(n[0], 1); /* once, not again each scan */
    assert_int_equal(n[1], 1);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(x[i]->target, nl);
        assert_int_equal(x[i]->target_id, (uint64_t)ifn);
        assert_int_equal(x[i]->link_id, 0);
        assert_int_equal(x[i]->prog_type, BPF_PROG_TYPE_SCHED_CLS);
    }
    assert_int_equal(x[0]->attach_type, EDR_NETDEV_TC_INGRESS); /* BPF_TCX_INGRESS */
    assert_int_equal(x[1]->attach_type, EDR_NETDEV_TC_EGRESS);
    assert_string_equal(x[0]->prog_name, "edrtest_tcin");
    assert_string_equal(x[1]->prog_name, "edrtest_tcout");
}

/* Attachments that go are reported as bpf_detach events, found (no actor),
 * once, after the attach event: an XDP program set through netlink and then
 * taken off the same way, and a BPF link (XDP) detached by another process
 * (BPF_LINK_DETACH) while its maker still holds it, which then exits. Until
 * 2026-12-05 nothing said an attachment was gone. */
static void test_detach_found(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char nl[16], lk[16], cmd[160];
    int ifn, ifl, pp[2];
    pid_t c[2];
    struct bpf_prog_info info[2];
    if (xdp_two_ways("edrtest_dtnl", "edrtest_dtlk", 1, nl, lk, &ifn, &ifl, c, info, pp)) skip();
    reap_ok(c[0]);
    pump(&f->loop, 3200); /* listed by two scans or more */
    size_t before = f->em.n;
    assert_int_equal(bpf_xdp_detach(ifn, XDP_FLAGS_SKB_MODE, NULL), 0);
    /* the link taken off by another process while its maker still holds it
     * (review-1206b H1: not reported until the holder closed it) */
    uint32_t lid = 0;
    for (size_t j = 0; j < before && !lid; j++)
        if (f->em.ev[j]->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH &&
            f->em.ev[j]->bpf_attach->prog_id == info[1].id)
            lid = f->em.ev[j]->bpf_attach->link_id;
    int lfd = lid ? bpf_link_get_fd_by_id(lid) : -1;
    assert_true(lfd >= 0);
    assert_int_equal(bpf_link_detach(lfd), 0);
    close(lfd);
    pump(&f->loop, 2200); /* a scan or two after */
    size_t held = f->em.n;
    kill(c[1], SIGKILL); /* now closed too: not gone a second time */
    waitpid(c[1], NULL, 0);
    pump(&f->loop, 1200);
    close(pp[0]);
    close(pp[1]);
    snprintf(cmd, sizeof(cmd), "ip link del %s; ip link del %s", nl, lk);
    assert_int_equal(system(cmd), 0);
    int att[2] = {0}, det[2] = {0}, det_early = 0, det_held = 0;
    uint32_t link_id = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        int gone = e->body_case == EDR__V1__EVENT__BODY_BPF_DETACH;
        if (!gone && e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH) continue;
        const Edr__V1__BpfAttach *x = gone ? e->bpf_detach : e->bpf_attach;
        int i = x->prog_id == info[0].id ? 0 : x->prog_id == info[1].id ? 1 : -1;
        if (i < 0) continue;
        if (!gone) {
            att[i]++;
            if (i == 1) link_id = x->link_id;
            continue;
        }
        det[i]++;
        det_early += j < before;
        det_held += i == 1 && j < held;
        assert_true(x->found);
        assert_int_equal(e->pid, 0);
        assert_int_equal(x->attach_type, BPF_XDP);
        assert_int_equal(x->prog_type, BPF_PROG_TYPE_XDP);
        assert_string_equal(x->target, i ? lk : nl);
        assert_int_equal(x->target_id, (uint64_t)(i ? ifl : ifn));
        if (i == 0) assert_int_equal(x->link_id, 0);
        if (i == 1) assert_int_equal(x->link_id, link_id);
        assert_string_equal(x->prog_name, i ? "edrtest_dtlk" : "edrtest_dtnl");
    }
    if (det[0] != 1 || det[1] != 1 || det_early || det_held != 1)
        fail_msg("attached: netlink %d, link %d; detached: netlink %d, link %d (%d before it was, "
                 "link while held %d)",
                 att[0], att[1], det[0], det[1], det_early, det_held);
    assert_true(att[0] >= 1 && att[1] >= 1);
    assert_true(link_id != 0);
}

/* Puts a classic cls_bpf filter of n "ret #0" instructions on interface
 * ifindex under parent, at priority prio, through rtnetlink (tc's own
 * messages stop at 16 KiB); 0 when the kernel took it. */
static int add_classic_tc_filter(int ifindex, uint32_t parent, int prio, int n)
{
    static char buf[40000] __attribute__((aligned(4)));
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, sizeof(buf));
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
    h->nlmsg_type = RTM_NEWTFILTER;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    struct tcmsg *t = NLMSG_DATA(h);
    t->tcm_family = AF_UNSPEC;
    t->tcm_ifindex = ifindex;
    t->tcm_parent = parent;
    t->tcm_info = TC_H_MAKE((uint32_t)prio << 16, htons(ETH_P_ALL));
    struct rtattr *kind = (struct rtattr *)(buf + NLMSG_ALIGN(h->nlmsg_len));
    kind->rta_type = TCA_KIND;
    kind->rta_len = RTA_LENGTH(4);
    memcpy(RTA_DATA(kind), "bpf", 4);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(kind->rta_len);
    struct rtattr *opt = (struct rtattr *)(buf + h->nlmsg_len);
    opt->rta_type = TCA_OPTIONS;
    struct rtattr *ol = RTA_DATA(opt);
    ol->rta_type = TCA_BPF_OPS_LEN;
    ol->rta_len = RTA_LENGTH(2);
    uint16_t len = (uint16_t)n;
    memcpy(RTA_DATA(ol), &len, 2);
    struct rtattr *ops = (struct rtattr *)((char *)ol + RTA_ALIGN(ol->rta_len));
    ops->rta_type = TCA_BPF_OPS;
    ops->rta_len = RTA_LENGTH(n * sizeof(struct sock_filter));
    struct sock_filter *f = RTA_DATA(ops);
    for (int i = 0; i < n; i++)
        f[i] = (struct sock_filter){.code = BPF_RET | BPF_K};
    struct rtattr *cid = (struct rtattr *)((char *)ops + RTA_ALIGN(ops->rta_len));
    cid->rta_type = TCA_BPF_CLASSID;
    cid->rta_len = RTA_LENGTH(4);
    uint32_t classid = 0x10001;
    memcpy(RTA_DATA(cid), &classid, 4);
    opt->rta_len = (unsigned short)((char *)cid + RTA_ALIGN(cid->rta_len) - (char *)opt);
    h->nlmsg_len += RTA_ALIGN(opt->rta_len);
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), err = -1;
    if (fd >= 0 && send(fd, h, h->nlmsg_len, 0) == (ssize_t)h->nlmsg_len &&
        recv(fd, buf, sizeof(buf), 0) >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        err = ((struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)buf))->error;
    if (fd >= 0) close(fd);
    return err;
}

/* tc classifiers under a qdisc set up by hand, not clsact: an htb root
 * (1:) and its class 1:1 each get the same loaded classifier (libbpf,
 * BPF_TC_CUSTOM), the root a classic one (tc's bytecode) in chains 0 and 5.
 * Each of the four is found once, on egress, its target naming the qdisc or
 * class; the classic ones with no program id. Until 2026-12-05 only clsact
 * and ingress hooks were read; then the same program in a second place and
 * the same classic filter in a second chain were one (review-1206 L6, L7).
 * Another interface, listed first, holds a classic filter of 4,096
 * instructions, which no dump can carry: its hook cannot be read, the
 * others still are (review-1206 M2: every later hook went unlisted). */
static void test_tc_under_qdiscs_found(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char nl[16], big[16], cmd[512];
    snprintf(big, sizeof(big), "edrhb%d", getpid() % 100000);
    snprintf(nl, sizeof(nl), "edrhq%d", getpid() % 100000);
    snprintf(cmd, sizeof(cmd),
             "ip link add %s type veth peer name %sp && ip link add %s type veth peer name %sp",
             big, big, nl, nl);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "ip link del %s 2>/dev/null; ip link del %s 2>/dev/null", big,
                 nl);
        if (system(cmd)) {
        }
        print_message("SKIP: cannot make veth interfaces (ip link add ... type veth)\n");
        skip();
    }
    snprintf(cmd, sizeof(cmd),
             "tc qdisc add dev %s root handle 1: htb default 1 && tc class add dev %s parent 1: "
             "classid 1:1 htb rate 100mbit 2>/dev/null && for c in 0 5; do tc filter add dev %s "
             "parent 1: chain $c prio 7 bpf bytecode '1,6 0 0 0,' classid 1:1 || exit 1; done && "
             "tc qdisc add dev %s clsact && tc filter add dev %s egress prio 2 bpf bytecode "
             "'1,6 0 0 0,' classid 1:1",
             nl, nl, nl, big, big);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "ip link del %s; ip link del %s", big, nl);
        assert_int_equal(system(cmd), 0);
        print_message("SKIP: no htb or clsact qdisc or bpf classifier in this kernel\n");
        skip();
    }
    int ifn = (int)if_nametoindex(nl), ifb = (int)if_nametoindex(big);
    assert_true(ifb < ifn); /* its hooks are read first */
    assert_int_equal(add_classic_tc_filter(ifb, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), 1, 4096),
                     0);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(20);
        int fd = load_test_prog_of("edrtest_tchq", 0, pp[1], BPF_PROG_TYPE_SCHED_CLS, 0);
        for (int i = 0; i < 2; i++) {
            DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifn, .attach_point = BPF_TC_CUSTOM,
                                .parent = i ? 0x10001u : 0x10000u);
            DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = fd);
            if (fd < 0 || bpf_tc_attach(&hook, &o) != 0) _exit(2 + i);
        }
        _exit(0); /* the filters stay: netlink holds them */
    }
    struct bpf_prog_info info;
    assert_int_equal(read(pp[0], &info, sizeof(info)), (ssize_t)sizeof(info));
    reap_ok(c);
    close(pp[0]);
    close(pp[1]);
    pump(&f->loop, 3200); /* two scans or more */
    snprintf(cmd, sizeof(cmd), "ip link del %s; ip link del %s", big, nl);
    assert_int_equal(system(cmd), 0);
    char qd[48], cl[48];
    snprintf(qd, sizeof(qd), "%s qdisc 1:0", nl);
    snprintf(cl, sizeof(cl), "%s class 1:1", nl);
    int n_qd = 0, n_cl = 0, n_classic = 0, n_big_egress = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH) continue;
        const Edr__V1__BpfAttach *x = e->bpf_attach;
        /* an interface's attachments only: the sensor sees every process's,
         * and another's link (a test running beside this one) may have a
         * target id equal to these ifindexes (a fresh-clone run once failed
         * on x->found so) */
        if (x->attach_type != EDR_NETDEV_XDP && x->attach_type != EDR_NETDEV_TC_INGRESS &&
            x->attach_type != EDR_NETDEV_TC_EGRESS)
            continue;
        if (x->target_id == (uint64_t)ifb) {
            assert_int_equal(x->prog_id, 0);
            assert_int_equal(x->attach_type, EDR_NETDEV_TC_EGRESS); /* not the big one */
            n_big_egress++;
            continue;
        }
        if (x->target_id != (uint64_t)ifn) continue;
        assert_true(x->found);
        assert_int_equal(x->attach_type, EDR_NETDEV_TC_EGRESS);
        assert_int_equal(x->link_id, 0);
        if (x->prog_id == info.id && !strcmp(x->target, qd))
            n_qd++;
        else if (x->prog_id == info.id && !strcmp(x->target, cl))
            n_cl++;
        else if (x->prog_id == 0 && !strcmp(x->target, qd))
            n_classic++;
        else
            fail_msg("unexpected: program %u at %s", x->prog_id, x->target);
    }
    if (n_qd != 1 || n_cl != 1 || n_classic != 2 || n_big_egress != 1)
        fail_msg("found: program under the qdisc %d, under the class %d, classic %d of 2, "
                 "the other interface's egress %d (once each expected)",
                 n_qd, n_cl, n_classic, n_big_egress);
}

/* The id of a BPF link or program (fd), or 0. */
static uint32_t bpf_id_of(int fd)
{
    union {
        struct bpf_link_info l;
        struct bpf_prog_info p;
    } i;
    union bpf_attr at;
    memset(&i, 0, sizeof(i));
    memset(&at, 0, sizeof(at));
    at.info.bpf_fd = (uint32_t)fd;
    at.info.info_len = sizeof(i);
    at.info.info = (uint64_t)(uintptr_t)&i;
    if (fd < 0 || syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &at, sizeof(at)) != 0) return 0;
    return i.l.id; /* both start with type and id */
}

/* A perf event of tracepoint id tp on CPU 0, or -1. */
static int tracepoint_event(uint64_t tp)
{
    struct perf_event_attr pa;
    memset(&pa, 0, sizeof(pa));
    pa.type = PERF_TYPE_TRACEPOINT;
    pa.size = sizeof(pa);
    pa.config = tp;
    pa.sample_period = 1;
    return (int)syscall(SYS_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
}

#define TEST_TCX_INGRESS 46 /* BPF_TCX_INGRESS (Linux 6.6; the build's headers may be older) */

/* What the child of test_bpf_attach_reported made: program and link ids. */
struct attach_made {
    uint32_t rtp_prog, rtp_link, tp_prog, tp_link, io_prog, cg_prog, cgl_prog, cgl_link, ia_prog,
        ia_link, upd_prog, tcx_prog, iacg_prog, iacg2_prog, dev_prog, late_prog;
};

/* bpf(BPF_PROG_ATTACH) of program fd prog to cgroup directory fd cg, by
 * test_bpf_call (ia32: the hooks do not see it). */
static long cg_attach(int ia32, int cg, int prog, uint32_t type, uint32_t flags)
{
    uint8_t *low = test_low_page();
    if (low == MAP_FAILED) return -1;
    union bpf_attr *at = (union bpf_attr *)low;
    memset(at, 0, sizeof(*at));
    at->target_fd = (uint32_t)cg;
    at->attach_bpf_fd = (uint32_t)prog;
    at->attach_type = type;
    at->attach_flags = flags;
    long rc = test_bpf_call(ia32, BPF_PROG_ATTACH, at);
    munmap(low, 4096);
    return rc;
}

/* A child that loads a program of type `type` named name, links it to
 * cgroup cgfd at attach type atype (BPF_LINK_CREATE) and holds the link
 * until killed; ids: the program's and the link's. Returns the child. */
static pid_t cg_link_held(const char *name, uint32_t type, int cgfd, uint32_t atype,
                          uint32_t ids[2])
{
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(40);
        int lp = load_test_prog_of(name, 0, -1, type, atype);
        int l = lp < 0 ? -1 : bpf_link_create(lp, cgfd, (enum bpf_attach_type)atype, NULL);
        uint32_t got[2] = {bpf_id_of(lp), bpf_id_of(l)};
        if (l < 0 || write(pp[1], got, sizeof(got)) != (ssize_t)sizeof(got)) _exit(1);
        pause();
        _exit(0);
    }
    assert_int_equal(read(pp[0], ids, 2 * sizeof(*ids)), (ssize_t)(2 * sizeof(*ids)));
    close(pp[0]);
    close(pp[1]);
    return c;
}

/* The bpf_attach (gone 0) or bpf_detach (gone 1) events among f's from
 * index `from` on, of program prog_id and, when target is not NULL, that
 * target; *first: the index of the first (n when none). */
static int attach_events(const edr_emit_t *em, size_t from, int gone, uint32_t prog_id,
                         const char *target, size_t *first)
{
    int k = 0;
    if (first) *first = em->n;
    for (size_t j = from; j < em->n; j++) {
        const Edr__V1__Event *e = em->ev[j];
        const Edr__V1__BpfAttach *x =
            e->body_case == EDR__V1__EVENT__BODY_BPF_DETACH && gone    ? e->bpf_detach
            : e->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH && !gone ? e->bpf_attach
                                                                       : NULL;
        if (!x || x->prog_id != prog_id || (target && strcmp(x->target, target))) continue;
        if (first && !k) *first = j;
        k++;
    }
    return k;
}

/* A scan cut short in one place still reports what went elsewhere
 * (review-1206b M1: 65 htb classes on any interface, one past what a scan
 * reads, had every scan take nothing as gone): while interface lk has 65
 * classes, an XDP program taken off another interface and a classifier
 * deleted from lk's root qdisc are each reported gone once, and the
 * classifier under a class, there all along, is not; the cut is counted.
 * Also: a program put behind a link in place of another (BPF_LINK_UPDATE) is
 * the new one's attach, with its actor (through a descriptor of the link
 * got by its id, whose file is named otherwise: it went unreported), and
 * the old one's detach. */
static void test_detach_past_a_cut(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char nl[16], lk[16], cmd[400], batch[300];
    int ifn, ifl, pp[2];
    pid_t c[2];
    struct bpf_prog_info info[2];
    if (xdp_two_ways("edrtest_ctnl", "edrtest_ctlk", 1, nl, lk, &ifn, &ifl, c, info, pp)) skip();
    reap_ok(c[0]);
    /* lk: an htb root with 64 classes (all read), a classifier on the root
     * and one under class 1:1 */
    snprintf(batch, sizeof(batch), "%s/tc.batch", f->dir);
    FILE *b = fopen(batch, "w");
    assert_non_null(b);
    fprintf(b, "qdisc add dev %s root handle 1: htb default 1\n", lk);
    for (int i = 1; i <= 64; i++)
        fprintf(b, "class add dev %s parent 1: classid 1:%x htb rate 1mbit\n", lk, i);
    fprintf(b, "filter add dev %s parent 1: prio 7 bpf bytecode '1,6 0 0 0,' classid 1:1\n", lk);
    fprintf(b, "filter add dev %s parent 1:1 prio 3 bpf bytecode '1,6 0 0 0,' classid 1:1\n", lk);
    fclose(b);
    snprintf(cmd, sizeof(cmd), "tc -batch %s", batch);
    if (system(cmd) != 0) {
        kill(c[1], SIGKILL);
        waitpid(c[1], NULL, 0);
        snprintf(cmd, sizeof(cmd), "ip link del %s; ip link del %s", nl, lk);
        assert_int_equal(system(cmd), 0);
        print_message("SKIP: no htb qdisc or bpf classifier in this kernel\n");
        skip();
    }
    char root_t[48], class_t[48];
    snprintf(root_t, sizeof(root_t), "%s qdisc 1:0", lk);
    snprintf(class_t, sizeof(class_t), "%s class 1:1", lk);
    pump(&f->loop, 3200); /* listed by two scans or more */
    assert_int_equal(attach_events(&f->em, 0, 0, 0, root_t, NULL), 1);
    assert_int_equal(attach_events(&f->em, 0, 0, 0, class_t, NULL), 1);
    /* the 65th class: from now on every scan of lk's classes is cut */
    uint64_t cut0 = f->em.truncated[0];
    snprintf(cmd, sizeof(cmd), "tc class add dev %s parent 1: classid 1:41 htb rate 1mbit", lk);
    assert_int_equal(system(cmd), 0);
    pump(&f->loop, 1200);
    /* what the scans know does not pile up while the cut lasts (review-1206c
     * H1: each partial scan added the whole listing to it again) */
    size_t known = edr__ebpf_test_known(f->src);
    pump(&f->loop, 3100);
    if (edr__ebpf_test_known(f->src) > known)
        fail_msg("attachments known grew from %zu to %zu in three scans cut short", known,
                 edr__ebpf_test_known(f->src));
    size_t before = f->em.n;
    assert_int_equal(bpf_xdp_detach(ifn, XDP_FLAGS_SKB_MODE, NULL), 0);
    snprintf(cmd, sizeof(cmd), "tc filter del dev %s parent 1: prio 7", lk);
    assert_int_equal(system(cmd), 0);
    pump(&f->loop, 2200);
    /* the XDP link given another program by a child (this process is the
     * sensor's, whose own calls are left out) */
    uint32_t lid = 0;
    for (size_t j = 0; j < before && !lid; j++)
        if (f->em.ev[j]->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH &&
            f->em.ev[j]->bpf_attach->prog_id == info[1].id)
            lid = f->em.ev[j]->bpf_attach->link_id;
    assert_true(lid != 0);
    size_t at_update = f->em.n;
    struct bpf_prog_info upd;
    pid_t u = fork();
    assert_true(u >= 0);
    if (u == 0) {
        alarm(20);
        int lfd = bpf_link_get_fd_by_id(lid);
        int fd = load_test_prog_of("edrtest_ctup", 0, pp[1], BPF_PROG_TYPE_XDP, BPF_XDP);
        if (lfd < 0 || fd < 0 || bpf_link_update(lfd, fd, NULL)) _exit(1);
        pause();
        _exit(0);
    }
    assert_int_equal(read(pp[0], &upd, sizeof(upd)), (ssize_t)sizeof(upd));
    pump(&f->loop, 2200);
    kill(u, SIGKILL);
    waitpid(u, NULL, 0);
    size_t end = f->em.n;
    uint64_t cuts = f->em.truncated[0] - cut0;
    kill(c[1], SIGKILL);
    waitpid(c[1], NULL, 0);
    close(pp[0]);
    close(pp[1]);
    snprintf(cmd, sizeof(cmd), "ip link del %s; ip link del %s", nl, lk);
    assert_int_equal(system(cmd), 0);
    pump(&f->loop, 1200); /* what lk held goes with it */
    size_t first;
    int xdp_gone = attach_events(&f->em, 0, 1, info[0].id, nl, &first);
    if (xdp_gone != 1 || first < before || first >= end)
        fail_msg("XDP program taken off %s while %s's classes were cut: reported gone %d times "
                 "(at %zu; taken off after %zu, interfaces deleted after %zu)",
                 nl, lk, xdp_gone, first, before, end);
    int root_gone = attach_events(&f->em, 0, 1, 0, root_t, &first);
    if (root_gone != 1 || first < before || first >= end)
        fail_msg("classifier deleted from %s while its classes were cut: reported gone %d times "
                 "(at %zu; deleted after %zu, interfaces deleted after %zu)",
                 root_t, root_gone, first, before, end);
    int class_gone = attach_events(&f->em, 0, 1, 0, class_t, &first);
    if (class_gone != 1 || first < end) /* once, with its interface */
        fail_msg("classifier under %s: reported gone %d times (first at %zu, interfaces deleted "
                 "after %zu)",
                 class_t, class_gone, first, end);
    if (cuts < 2)
        fail_msg("scans with %s's classes cut: %llu counted", lk, (unsigned long long)cuts);
    /* the update: the new program's attach by this process, the old one's
     * detach, found, with the link's id */
    size_t upd_at;
    assert_int_equal(attach_events(&f->em, at_update, 0, upd.id, NULL, &upd_at), 1);
    assert_int_equal(f->em.ev[upd_at]->pid, (uint32_t)u);
    assert_int_equal(f->em.ev[upd_at]->bpf_attach->link_id, lid);
    int old_gone = attach_events(&f->em, 0, 1, info[1].id, NULL, &first);
    if (old_gone != 1 || first < at_update || first >= end)
        fail_msg("the program replaced behind link %u: reported gone %d times (at %zu; replaced "
                 "after %zu)",
                 lid, old_gone, first, at_update);
    assert_int_equal(f->em.ev[first]->bpf_detach->link_id, lid);
}

/* Programs attached to a cgroup are reported gone once each, named by the
 * cgroup's path (review-1206b L9): one detached by another process
 * (BPF_PROG_DETACH) and a link taken off by a third (BPF_LINK_DETACH),
 * each that process's event, not found (review-1206b: a detach had no
 * actor); one with its cgroup removed, found. All while the walk of the
 * cgroups is cut short by 4 cgroups of 576 programs after them (the walk
 * writes 32 KiB at most: about 2,000 programs), where the only program of
 * a cgroup detached (review-1206c M2: a cgroup left without programs
 * wrote nothing and was not known to be read) and a cgroup removed (not
 * met at all) are told from ones the walk did not reach. Each of those 4
 * holds more programs than the scan lists of one (9 lists of 64): counted
 * cut, and none of their programs taken as gone (review-1206b L3: it was
 * cut silently, and programs pushed out of the listing looked gone). */
static void test_detach_cgroup(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    enum { FILLERS = 4 };
    char root[300], cg[400], vcg[420], big[FILLERS][420], rel[64], vrel[80];
    snprintf(root, sizeof(root), "%s/cgroup2-detach", f->dir);
    snprintf(rel, sizeof(rel), "/edrtest-dt-%d", (int)getpid());
    snprintf(vrel, sizeof(vrel), "%s-v", rel);
    snprintf(cg, sizeof(cg), "%s%s", root, rel);
    snprintf(vcg, sizeof(vcg), "%s%s", root, vrel);
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mount("none", root, "cgroup2", 0, NULL), 0);
    assert_int_equal(mkdir(cg, 0700), 0);
    assert_int_equal(mkdir(vcg, 0700), 0);
    for (int b = 0; b < FILLERS; b++) { /* after them in the walk (made later) */
        snprintf(big[b], sizeof(big[b]), "%s-big%d", cg, b);
        assert_int_equal(mkdir(big[b], 0700), 0);
    }
    int cgfd = open(cg, O_RDONLY | O_DIRECTORY), vfd = open(vcg, O_RDONLY | O_DIRECTORY);
    assert_true(cgfd >= 0 && vfd >= 0);
    int vp =
        load_test_prog_of("edrtest_cgv", 0, -1, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS);
    uint32_t v_id = bpf_id_of(vp);
    assert_true(v_id != 0);
    assert_int_equal(cg_attach(0, vfd, vp, BPF_CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI), 0);
    int in = load_test_prog_of("edrtest_cgdt1", 0, -1, BPF_PROG_TYPE_CGROUP_SKB,
                               BPF_CGROUP_INET_INGRESS);
    int out =
        load_test_prog_of("edrtest_cgdt2", 0, -1, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS);
    uint32_t in_id = bpf_id_of(in), out_id = bpf_id_of(out);
    assert_true(in_id && out_id);
    assert_int_equal(cg_attach(0, cgfd, in, BPF_CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI), 0);
    assert_int_equal(cg_attach(0, cgfd, out, BPF_CGROUP_INET_EGRESS, BPF_F_ALLOW_MULTI), 0);
    /* 9 lists of 64 programs on the other cgroup: 576, past the 512 listed */
    static const struct {
        uint32_t prog, atype;
    } lists[] = {{BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS},
                 {BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS},
                 {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE},
                 {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET4_POST_BIND},
                 {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET6_POST_BIND},
                 {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE},
                 {BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS},
                 {BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE},
                 {BPF_PROG_TYPE_CGROUP_SYSCTL, BPF_CGROUP_SYSCTL}};
    for (int b = 0; b < FILLERS; b++) {
        int bigfd = open(big[b], O_RDONLY | O_DIRECTORY);
        assert_true(bigfd >= 0);
        for (int l = 0; l < 9; l++)
            for (int i = 0; i < 64; i++) {
                int fd = load_test_prog_of("edrtest_cgbig", 0, -1, lists[l].prog, lists[l].atype);
                assert_true(fd >= 0);
                assert_int_equal(cg_attach(0, bigfd, fd, lists[l].atype, BPF_F_ALLOW_MULTI), 0);
                close(fd); /* the cgroup holds it */
            }
        close(bigfd);
    }
    /* a link on the cgroup, made and held by a child */
    uint32_t lk[2]; /* program, link */
    pid_t holder =
        cg_link_held("edrtest_cglk", BPF_PROG_TYPE_CGROUP_SKB, cgfd, BPF_CGROUP_INET_EGRESS, lk);
    uint64_t cut0 = f->em.truncated[1];
    pump(&f->loop, 3200); /* listed by two scans or more */
    size_t before = f->em.n;
    /* other processes take them off (this one is the sensor's, whose own
     * calls are left out) */
    pid_t by[3];
    for (int i = 0; i < 3; i++) {
        by[i] = fork();
        assert_true(by[i] >= 0);
        if (by[i] == 0) {
            alarm(20);
            if (i == 0) _exit(bpf_prog_detach2(in, cgfd, BPF_CGROUP_INET_INGRESS) ? 1 : 0);
            if (i == 2) _exit(bpf_prog_detach2(vp, vfd, BPF_CGROUP_INET_INGRESS) ? 3 : 0);
            int l = bpf_link_get_fd_by_id(lk[1]);
            _exit(l < 0 || bpf_link_detach(l) ? 2 : 0);
        }
        reap_ok(by[i]);
    }
    pump(&f->loop, 2200);
    size_t removed = f->em.n;
    close(cgfd);
    assert_int_equal(rmdir(cg), 0); /* its egress program goes with it */
    pump(&f->loop, 2200);
    size_t end = f->em.n;
    uint64_t cuts = f->em.truncated[1] - cut0;
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    for (int b = 0; b < FILLERS; b++)
        assert_int_equal(rmdir(big[b]), 0);
    close(vfd);
    assert_int_equal(rmdir(vcg), 0);
    pump(&f->loop, 1200);
    umount2(root, MNT_DETACH);
    rmdir(root);
    close(in);
    close(out);
    close(vp);
    size_t first;
    int in_gone = attach_events(&f->em, 0, 1, in_id, rel, &first);
    if (in_gone != 1 || first < before || first >= removed)
        fail_msg("program detached from %s: reported gone %d times (at %zu; detached after %zu, "
                 "cgroup removed after %zu)",
                 rel, in_gone, first, before, removed);
    const Edr__V1__BpfAttach *x = f->em.ev[first]->bpf_detach;
    assert_false(x->found);
    assert_int_equal(f->em.ev[first]->pid, (uint32_t)by[0]);
    assert_int_equal(x->attach_type, BPF_CGROUP_INET_INGRESS);
    assert_string_equal(x->prog_name, "edrtest_cgdt1");
    int link_gone = attach_events(&f->em, 0, 1, lk[0], NULL, &first);
    if (link_gone != 1 || first < before || first >= removed)
        fail_msg("link on %s taken off: reported gone %d times (at %zu; taken off after %zu, "
                 "cgroup removed after %zu)",
                 rel, link_gone, first, before, removed);
    x = f->em.ev[first]->bpf_detach;
    assert_false(x->found);
    assert_int_equal(f->em.ev[first]->pid, (uint32_t)by[1]);
    assert_int_equal(x->link_id, lk[1]);
    assert_string_equal(x->target, rel + 1); /* a link's: its cgroup directory's name */
    int out_gone = attach_events(&f->em, 0, 1, out_id, rel, &first);
    if (out_gone != 1 || first < removed || first >= end)
        fail_msg("program on cgroup %s removed: reported gone %d times (at %zu; removed after "
                 "%zu)",
                 rel, out_gone, first, removed);
    assert_true(f->em.ev[first]->bpf_detach->found); /* no call took it off */
    assert_int_equal(f->em.ev[first]->pid, 0);
    int v_gone = attach_events(&f->em, 0, 1, v_id, vrel, &first);
    if (v_gone != 1 || first < before || first >= removed)
        fail_msg("the only program of %s detached: reported gone %d times (at %zu; detached after "
                 "%zu, cgroup removed after %zu)",
                 vrel, v_gone, first, before, removed);
    assert_int_equal(f->em.ev[first]->pid, (uint32_t)by[2]);
    /* the big cgroups: cut, counted; none of their programs gone while there */
    if (cuts < 2)
        fail_msg("scans with cgroups of 576 programs: %llu counted cut", (unsigned long long)cuts);
    for (size_t j = 0; j < end; j++)
        if (f->em.ev[j]->body_case == EDR__V1__EVENT__BODY_BPF_DETACH &&
            !strcmp(f->em.ev[j]->bpf_detach->prog_name, "edrtest_cgbig"))
            fail_msg("a program of the cgroup past the limit reported gone while attached");
}

/* Which process a bpf_detach names (review-1206d): the first detach call
 * after the last scan that listed the attachment, not a later call that
 * did nothing (BPF_LINK_DETACH of a link already detached succeeds), nor an
 * earlier one made before the attachment was; and a BPF_PROG_DETACH on a
 * list without BPF_F_ALLOW_MULTI, which takes off what is there whatever
 * program it names, is that call's. */
/* Cgroups past what the cgroup scan can watch are counted once each, when
 * they come to be so, not again at every scan (review-1206e L5: the count
 * grew by their number each second). The watch is cut to one cgroup. */
static void test_not_watched_counted_once(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    enum { CGS = 3 };
    char root[300], cg[CGS][400];
    int fd[CGS], prog[CGS];
    snprintf(root, sizeof(root), "%s/cgroup2-watch", f->dir);
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mount("none", root, "cgroup2", 0, NULL), 0);
    for (int i = 0; i < CGS; i++) {
        snprintf(cg[i], sizeof(cg[i]), "%s/edrtest-nw%d-%d", root, i, (int)getpid());
        assert_int_equal(mkdir(cg[i], 0700), 0);
        fd[i] = open(cg[i], O_RDONLY | O_DIRECTORY);
        assert_true(fd[i] >= 0);
        prog[i] = load_test_prog_of("edrtest_nw", 0, -1, BPF_PROG_TYPE_CGROUP_SKB,
                                    BPF_CGROUP_INET_INGRESS);
        assert_true(prog[i] >= 0);
        assert_int_equal(cg_attach(0, fd[i], prog[i], BPF_CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI),
                         0);
    }
    uv_loop_t loop;
    edr_emit_t em;
    const char *const kv[] = {NULL};
    edr__ebpf_test_cg_watch_max = 1;
    edr_source_t *src = start_own_source(f, kv, &loop, &em);
    edr__ebpf_test_cg_watch_max = 0;
    pump(&loop, 2500);
    ship(&em);
    uint64_t early = em.not_watched;
    pump(&loop, 3000);
    ship(&em);
    print_message("not watched: %llu after 2.5 s, %llu after 5.5 s\n", (unsigned long long)early,
                  (unsigned long long)em.not_watched);
    assert_true(early >= CGS - 1); /* others' cgroups with programs may be listed too */
    assert_int_equal(em.not_watched, early);
    end_own_source(src, &loop, &em);
    for (int i = 0; i < CGS; i++) {
        close(prog[i]);
        close(fd[i]);
        rmdir(cg[i]);
    }
    umount(root);
    rmdir(root);
}

static void test_detach_by_whom(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char root[300], cg[400], rel[64];
    snprintf(root, sizeof(root), "%s/cgroup2-whom", f->dir);
    snprintf(rel, sizeof(rel), "/edrtest-whom-%d", (int)getpid());
    snprintf(cg, sizeof(cg), "%s%s", root, rel);
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mount("none", root, "cgroup2", 0, NULL), 0);
    assert_int_equal(mkdir(cg, 0700), 0);
    int cgfd = open(cg, O_RDONLY | O_DIRECTORY);
    assert_true(cgfd >= 0);
    /* a link held by a child; programs on the egress and ingress lists
     * without BPF_F_ALLOW_MULTI, attached by this process */
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    uint32_t lk[2];
    pid_t holder = cg_link_held("edrtest_whlk", BPF_PROG_TYPE_CGROUP_SOCK, cgfd,
                                BPF_CGROUP_INET_SOCK_CREATE, lk);
    int eg =
        load_test_prog_of("edrtest_wheg", 0, -1, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS);
    int in =
        load_test_prog_of("edrtest_whin", 0, -1, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS);
    /* and two on a BPF_F_ALLOW_MULTI list */
    int m[2];
    uint32_t m_id[2];
    for (int i = 0; i < 2; i++) {
        m[i] = load_test_prog_of("edrtest_whm", 0, -1, BPF_PROG_TYPE_CGROUP_SOCK,
                                 BPF_CGROUP_INET_SOCK_RELEASE);
        assert_true((m_id[i] = bpf_id_of(m[i])) != 0);
        assert_int_equal(cg_attach(0, cgfd, m[i], BPF_CGROUP_INET_SOCK_RELEASE, BPF_F_ALLOW_MULTI),
                         0);
    }
    uint32_t eg_id = bpf_id_of(eg), in_id = bpf_id_of(in);
    assert_true(eg_id && in_id);
    assert_int_equal(cg_attach(0, cgfd, eg, BPF_CGROUP_INET_EGRESS, 0), 0);
    assert_int_equal(cg_attach(0, cgfd, in, BPF_CGROUP_INET_INGRESS, 0), 0);
    pump(&f->loop, 3200); /* listed by two scans or more */
    /* the link taken off by one child, then "again" by another; the egress
     * program by a child naming another program; the ingress one by a child
     * naming none; the first multi-list program by a child naming it */
    pid_t by[5];
    for (int i = 0; i < 5; i++) {
        by[i] = fork();
        assert_true(by[i] >= 0);
        if (by[i] == 0) {
            alarm(20);
            if (i < 2) {
                int l = bpf_link_get_fd_by_id(lk[1]);
                _exit(l < 0 || bpf_link_detach(l) ? 1 : 0);
            }
            if (i == 4) _exit(bpf_prog_detach2(m[0], cgfd, BPF_CGROUP_INET_SOCK_RELEASE) ? 4 : 0);
            int other = load_test_prog_of("edrtest_whot", 0, -1, BPF_PROG_TYPE_CGROUP_SKB,
                                          BPF_CGROUP_INET_EGRESS);
            if (i == 2) _exit(other < 0 || bpf_prog_detach2(other, cgfd, BPF_CGROUP_INET_EGRESS));
            _exit(bpf_prog_detach(cgfd, BPF_CGROUP_INET_INGRESS) ? 3 : 0);
        }
        reap_ok(by[i]);
    }
    /* the second multi-list program taken off by this process (no hook sees
     * its calls): not the doing of the child's call naming the first
     * (review-1206e H1) */
    assert_int_equal(bpf_prog_detach2(m[1], cgfd, BPF_CGROUP_INET_SOCK_RELEASE), 0);
    /* the ingress list given another program by a child at once (its
     * attach reported, so the next scan lists it), then taken off by this
     * process, all within the 3 s a call is kept: not the doing of the
     * child's call before it was there */
    size_t again = f->em.n;
    pid_t put = fork();
    assert_true(put >= 0);
    if (put == 0) {
        alarm(20);
        int p2 = load_test_prog_of("edrtest_whin2", 0, pp[1], BPF_PROG_TYPE_CGROUP_SKB,
                                   BPF_CGROUP_INET_INGRESS);
        _exit(p2 < 0 || cg_attach(0, cgfd, p2, BPF_CGROUP_INET_INGRESS, 0) ? 1 : 0);
    }
    struct bpf_prog_info in2;
    assert_int_equal(read(pp[0], &in2, sizeof(in2)), (ssize_t)sizeof(in2));
    reap_ok(put);
    uint32_t in2_id = in2.id;
    /* meanwhile (a scan lists it) children repeat the link's detach, which
     * does nothing, while its removal waits to be reported (review-1206e
     * M1: a repeat after the next scan began replaced the call that did it) */
    for (int t = 0; t < 12; t++) {
        pid_t r = fork();
        assert_true(r >= 0);
        if (r == 0) {
            int l = bpf_link_get_fd_by_id(lk[1]);
            _exit(l < 0 || bpf_link_detach(l) ? 1 : 0);
        }
        reap_ok(r);
        pump(&f->loop, 100);
    }
    assert_int_equal(bpf_prog_detach(cgfd, BPF_CGROUP_INET_INGRESS), 0);
    pump(&f->loop, 1500);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    close(pp[0]);
    close(pp[1]);
    close(cgfd);
    assert_int_equal(rmdir(cg), 0);
    umount2(root, MNT_DETACH);
    rmdir(root);
    close(eg);
    close(in);
    close(m[0]);
    close(m[1]);
    static const char *const what[] = {"link",
                                       "egress program",
                                       "ingress program",
                                       "ingress program put on later",
                                       "first multi-list program",
                                       "second multi-list program"};
    uint32_t prog[6] = {lk[0], eg_id, in_id, in2_id, m_id[0], m_id[1]};
    uint32_t want[6] = {(uint32_t)by[0], (uint32_t)by[2], (uint32_t)by[3], 0, (uint32_t)by[4], 0};
    for (int i = 0; i < 6; i++) {
        size_t first;
        int k = attach_events(&f->em, i == 3 ? again : 0, 1, prog[i], NULL, &first);
        if (k != 1) fail_msg("%s: reported gone %d times", what[i], k);
        const Edr__V1__Event *e = f->em.ev[first];
        if (e->pid != want[i] || e->bpf_detach->found != !want[i])
            fail_msg("%s: gone by process %u%s, %u expected (the calls: link %d then %d, egress "
                     "%d, ingress %d, multi %d)",
                     what[i], e->pid, e->bpf_detach->found ? " (found)" : "", want[i], by[0], by[1],
                     by[2], by[3], by[4]);
    }
}

/* The ids of the BPF programs this process (the sensor's, in the fixture)
 * holds descriptors of, from /proc/self/fdinfo, into ids (at most cap);
 * how many. Read once: per event it cost 4,096 opens, 90 s of the suite
 * once an earlier test had left 2,300 attach events. */
static size_t own_progs(uint32_t *ids, size_t cap)
{
    char p[64], line[128];
    size_t n = 0;
    for (int fd = 0; fd < 4096 && n < cap; fd++) {
        snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
        FILE *fi = fopen(p, "r");
        if (!fi) continue;
        unsigned v;
        while (n < cap && fgets(line, sizeof(line), fi))
            if (sscanf(line, "prog_id: %u", &v) == 1) ids[n++] = v;
        fclose(fi);
    }
    return n;
}

static int own_prog(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

/* The attachments of BPF programs: a raw tracepoint, a tracepoint through a
 * perf event link and through the older ioctl, a cgroup program attached
 * with and without a link, a cgroup link given another program, a tcx
 * program on an interface index (not a descriptor), each with the process
 * that made it; and a link made by an ia32 bpf(), which the hooks do not
 * see, found by the scan of the kernel's links. None names a program of the
 * sensor's own. The cgroup's name is the attacker's choice of bytes. */
static void test_bpf_attach_reported(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char cgroot[300], cg[400], idp[] = "/sys/kernel/tracing/events/sched/sched_process_free/id";
    FILE *tf = fopen(idp, "r");
    unsigned long long tp = 0;
    if (!tf || fscanf(tf, "%llu", &tp) != 1) fail_msg("no tracepoint id in %s", idp);
    fclose(tf);
    snprintf(cgroot, sizeof(cgroot), "%s/cgroup2", f->dir);
    char cgname[64];
    snprintf(cgname, sizeof(cgname), "edrtest-%d-\x1b[1m\xff", (int)getpid());
    snprintf(cg, sizeof(cg), "%s/%s", cgroot, cgname);
    char inner[420];
    snprintf(inner, sizeof(inner), "%s/inner", cg);
    assert_int_equal(mkdir(cgroot, 0700), 0);
    assert_int_equal(mount("none", cgroot, "cgroup2", 0, NULL), 0);
    assert_int_equal(mkdir(cg, 0700), 0);
    struct stat cst;
    assert_int_equal(stat(cg, &cst), 0); /* a cgroup2 directory's inode is the cgroup's id */
    struct stat ist;
    assert_int_equal(mkdir(inner, 0700), 0);
    assert_int_equal(stat(inner, &ist), 0);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        alarm(20);
        struct attach_made m;
        union bpf_attr at;
        int pr = -1, l = test_raw_tp_link("edrtest_rtp", "task_rename", 0, &pr);
        if (!(m.rtp_prog = bpf_id_of(pr)) || !(m.rtp_link = bpf_id_of(l))) _exit(2);
        /* a tracepoint program on a perf event: by a link, and by the ioctl */
        int tpp = load_test_prog_of("edrtest_tp", 0, -1, BPF_PROG_TYPE_TRACEPOINT, 0);
        if (!(m.tp_prog = bpf_id_of(tpp))) _exit(3);
        int pe = tracepoint_event(tp);
        memset(&at, 0, sizeof(at));
        at.link_create.prog_fd = (uint32_t)tpp;
        at.link_create.target_fd = (uint32_t)pe;
        at.link_create.attach_type = BPF_PERF_EVENT;
        if (pe < 0 || (l = (int)test_bpf_call(0, BPF_LINK_CREATE, &at)) < 0 ||
            !(m.tp_link = bpf_id_of(l)))
            _exit(4);
        int iop = load_test_prog_of("edrtest_tpio", 0, -1, BPF_PROG_TYPE_TRACEPOINT, 0);
        if (!(m.io_prog = bpf_id_of(iop))) _exit(5);
        int pe2 = tracepoint_event(tp);
        if (pe2 < 0 || ioctl(pe2, PERF_EVENT_IOC_SET_BPF, iop) != 0) _exit(6);
        /* a cgroup's: attached without a link, and by a link */
        int cgfd = open(cg, O_RDONLY | O_DIRECTORY);
        int cgp = load_test_prog_of("edrtest_cgskb", 0, -1, BPF_PROG_TYPE_CGROUP_SKB,
                                    BPF_CGROUP_INET_EGRESS);
        if (cgfd < 0 || !(m.cg_prog = bpf_id_of(cgp))) _exit(7);
        memset(&at, 0, sizeof(at));
        at.target_fd = (uint32_t)cgfd;
        at.attach_bpf_fd = (uint32_t)cgp;
        at.attach_type = BPF_CGROUP_INET_EGRESS;
        at.attach_flags = BPF_F_ALLOW_MULTI; /* leaves the list open to the cgroups below */
        if (test_bpf_call(0, BPF_PROG_ATTACH, &at) != 0) _exit(8);
        int cgl = load_test_prog_of("edrtest_cglnk", 0, -1, BPF_PROG_TYPE_CGROUP_SKB,
                                    BPF_CGROUP_INET_INGRESS);
        if (!(m.cgl_prog = bpf_id_of(cgl))) _exit(9);
        memset(&at, 0, sizeof(at));
        at.link_create.prog_fd = (uint32_t)cgl;
        at.link_create.target_fd = (uint32_t)cgfd;
        at.link_create.attach_type = BPF_CGROUP_INET_INGRESS;
        int cgl_fd = (int)test_bpf_call(0, BPF_LINK_CREATE, &at);
        if (!(m.cgl_link = bpf_id_of(cgl_fd))) _exit(10);
        /* by ia32 calls: program and link found, not reported by a record */
        int iap = -1;
        l = test_raw_tp_link("edrtest_iartp", "task_newtask", 1, &iap);
        if (!(m.ia_prog = bpf_id_of(iap)) || !(m.ia_link = bpf_id_of(l))) _exit(12);
        /* a cgroup program attached by an ia32 bpf(): found by the cgroup scan */
        int iacg = load_test_prog_of("edrtest_iacg", 0, -1, BPF_PROG_TYPE_CGROUP_SOCK,
                                     BPF_CGROUP_INET_SOCK_CREATE);
        uint8_t *low = test_low_page();
        if (!(m.iacg_prog = bpf_id_of(iacg)) || low == MAP_FAILED) _exit(16);
        union bpf_attr *lat = (union bpf_attr *)low;
        memset(lat, 0, sizeof(*lat));
        lat->target_fd = (uint32_t)cgfd;
        lat->attach_bpf_fd = (uint32_t)iacg;
        lat->attach_type = BPF_CGROUP_INET_SOCK_CREATE;
        if (test_bpf_call(1, BPF_PROG_ATTACH, lat) != 0) _exit(17);
        /* behind 9 links on a list of a cgroup one level down, a program
         * attached by ia32 calls to two lists, a device program (its list's
         * number is not its attach type's), and one attached by the 64-bit
         * call after them all (review-1207b 1, 4, 5) */
        int icg = open(inner, O_RDONLY | O_DIRECTORY);
        for (int d = 0; d < 9; d++) {
            char dn[16];
            snprintf(dn, sizeof(dn), "edrtest_dec%d", d);
            int dp =
                load_test_prog_of(dn, 0, -1, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS);
            memset(&at, 0, sizeof(at));
            at.link_create.prog_fd = (uint32_t)dp;
            at.link_create.target_fd = (uint32_t)icg;
            at.link_create.attach_type = BPF_CGROUP_INET_INGRESS;
            if (dp < 0 || test_bpf_call(0, BPF_LINK_CREATE, &at) < 0) _exit(18);
        }
        int ia2 = load_test_prog_of("edrtest_iacg2", 0, -1, BPF_PROG_TYPE_CGROUP_SKB, 0);
        int dev = load_test_prog_of("edrtest_dev", 0, -1, BPF_PROG_TYPE_CGROUP_DEVICE, 0);
        int late = load_test_prog_of("edrtest_late", 0, -1, BPF_PROG_TYPE_CGROUP_SKB, 0);
        if (icg < 0 || !(m.iacg2_prog = bpf_id_of(ia2)) || !(m.dev_prog = bpf_id_of(dev)) ||
            !(m.late_prog = bpf_id_of(late)))
            _exit(19);
        if (cg_attach(1, icg, ia2, BPF_CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI) != 0) _exit(20);
        if (cg_attach(1, icg, ia2, BPF_CGROUP_INET_EGRESS, BPF_F_ALLOW_MULTI) != 0) _exit(21);
        if (cg_attach(1, icg, dev, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) != 0) _exit(22);
        if (cg_attach(0, icg, late, BPF_CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI) != 0) _exit(23);
        /* the cgroup link given another program */
        int upd = load_test_prog_of("edrtest_cgupd", 0, -1, BPF_PROG_TYPE_CGROUP_SKB,
                                    BPF_CGROUP_INET_INGRESS);
        memset(&at, 0, sizeof(at));
        at.link_update.link_fd = (uint32_t)cgl_fd;
        at.link_update.new_prog_fd = (uint32_t)upd;
        if (!(m.upd_prog = bpf_id_of(upd)) || test_bpf_call(0, BPF_LINK_UPDATE, &at) != 0)
            _exit(14);
        /* tcx on the loopback of a network namespace of its own: index 1,
         * while descriptor 1 is open (a pipe) */
        int tcx =
            load_test_prog_of("edrtest_tcx", 0, -1, BPF_PROG_TYPE_SCHED_CLS, TEST_TCX_INGRESS);
        memset(&at, 0, sizeof(at));
        at.target_fd = 1; /* target_ifindex, in headers since Linux 6.6 */
        at.attach_bpf_fd = (uint32_t)tcx;
        at.attach_type = TEST_TCX_INGRESS;
        if (unshare(CLONE_NEWNET) != 0 || !(m.tcx_prog = bpf_id_of(tcx)) ||
            test_bpf_call(0, BPF_PROG_ATTACH, &at) != 0)
            _exit(15);
        if (write(pp[1], &m, sizeof(m)) != sizeof(m)) _exit(13);
        pause(); /* the attachments stay while their descriptors are open */
        _exit(0);
    }
    struct attach_made m;
    close(pp[1]); /* a child that fails ends the read */
    ssize_t got = read(pp[0], &m, sizeof(m));
    if (got != (ssize_t)sizeof(m)) {
        int st = 0;
        waitpid(c, &st, 0);
        rmdir(inner);
        rmdir(cg);
        umount(cgroot);
        rmdir(cgroot);
        fail_msg("the attaching child failed (exit %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    pump(&f->loop, 3200); /* a link no record reported is found by the second scan that meets it */
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    close(pp[0]);
    rmdir(inner);
    rmdir(cg);
    umount(cgroot);
    rmdir(cgroot);
    int n[12] = {0};
    uint32_t own[512];
    size_t n_own = own_progs(own, 512);
    assert_true(n_own > 0 && n_own < 512);
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->body_case == EDR__V1__EVENT__BODY_BPF_LOAD &&
            own_prog(own, n_own, e->bpf_load->prog_id))
            fail_msg("the sensor's own program %u (%s) reported loaded", e->bpf_load->prog_id,
                     e->bpf_load->name);
        if (e->body_case != EDR__V1__EVENT__BODY_BPF_ATTACH) continue;
        const Edr__V1__BpfAttach *x = e->bpf_attach;
        if (own_prog(own, n_own, x->prog_id))
            fail_msg("a link of the sensor's own program %s reported", x->prog_name);
        int k = x->prog_id == m.rtp_prog     ? 0
                : x->prog_id == m.tp_prog    ? 1
                : x->prog_id == m.io_prog    ? 2
                : x->prog_id == m.cg_prog    ? 3
                : x->prog_id == m.cgl_prog   ? 4
                : x->prog_id == m.ia_prog    ? 5
                : x->prog_id == m.upd_prog   ? 6
                : x->prog_id == m.tcx_prog   ? 7
                : x->prog_id == m.iacg_prog  ? 8
                : x->prog_id == m.iacg2_prog ? 9
                : x->prog_id == m.dev_prog   ? 10
                : x->prog_id == m.late_prog  ? 11
                                             : -1;
        if (k < 0) continue;
        n[k]++;
        assert_int_equal(x->found, k == 5 || k == 8 || k == 9 || k == 10);
        assert_int_equal(x->unverified, k == 7); /* the cgroups confirm theirs */
        if (x->found) {                          /* no actor */
            assert_int_equal(e->pid, 0);
            assert_int_equal(e->entity_id.len, 0);
        } else {
            assert_int_equal(e->pid, (uint32_t)c);
            assert_int_equal(e->entity_id.len, EDR_ID_LEN);
        }
        switch (k) {
        case 0:
        case 5:
            assert_string_equal(x->prog_name, k ? "edrtest_iartp" : "edrtest_rtp");
            assert_int_equal(x->prog_type, BPF_PROG_TYPE_RAW_TRACEPOINT);
            assert_int_equal(x->link_id, k ? m.ia_link : m.rtp_link);
            assert_int_equal(x->link_type, BPF_LINK_TYPE_RAW_TRACEPOINT);
            assert_string_equal(x->target, k ? "task_newtask" : "task_rename");
            break;
        case 1:
        case 2:
            assert_string_equal(x->prog_name, k == 1 ? "edrtest_tp" : "edrtest_tpio");
            assert_int_equal(x->prog_type, BPF_PROG_TYPE_TRACEPOINT);
            assert_int_equal(x->link_id, k == 1 ? m.tp_link : 0); /* the ioctl makes no link */
            assert_int_equal(x->link_type, k == 1 ? BPF_LINK_TYPE_PERF_EVENT : 0);
            assert_int_equal(x->attach_type, BPF_PERF_EVENT);
            assert_string_equal(x->target, "sched_process_free");
            assert_int_equal(x->target_id, tp);
            break;
        case 9: /* on two lists, behind 9 links */
        case 10:
        case 11: { /* verified, behind them all */
            char want[512];
            snprintf(want, sizeof(want), "/%s/inner", cgname);
            assert_int_equal(x->link_id, 0);
            assert_int_equal(x->target_id, ist.st_ino);
            if (k == 11) {
                assert_string_equal(x->target, "inner"); /* the call's: its directory */
                assert_int_equal(x->attach_type, BPF_CGROUP_INET_INGRESS);
            } else {
                assert_string_equal(x->target, want); /* the scan's: its path */
                if (k == 10)
                    assert_int_equal(x->attach_type, BPF_CGROUP_DEVICE);
                else
                    assert_true(x->attach_type == BPF_CGROUP_INET_INGRESS ||
                                x->attach_type == BPF_CGROUP_INET_EGRESS);
            }
            break;
        }
        case 8: /* by the cgroup scan: the cgroup's path in the cgroup2 tree */
            assert_string_equal(x->prog_name, "edrtest_iacg");
            assert_int_equal(x->link_id, 0);
            assert_int_equal(x->link_type, 0);
            assert_int_equal(x->attach_type, BPF_CGROUP_INET_SOCK_CREATE);
            assert_int_equal(x->target_id, cst.st_ino);
            assert_true(x->target[0] == '/' && !strcmp(x->target + 1, cgname));
            break;
        case 7: /* an interface index, no descriptor's name */
            assert_string_equal(x->prog_name, "edrtest_tcx");
            assert_int_equal(x->link_id, 0);
            assert_int_equal(x->attach_type, TEST_TCX_INGRESS);
            assert_string_equal(x->target, "");
            assert_int_equal(x->target_id, 1);
            break;
        default:
            assert_string_equal(x->prog_name, k == 3   ? "edrtest_cgskb"
                                              : k == 4 ? "edrtest_cglnk"
                                                       : "edrtest_cgupd");
            assert_int_equal(x->prog_type, BPF_PROG_TYPE_CGROUP_SKB);
            assert_int_equal(x->link_id, k == 3 ? 0 : m.cgl_link);
            assert_int_equal(x->link_type, k == 3 ? 0 : BPF_LINK_TYPE_CGROUP);
            assert_int_equal(x->attach_type,
                             k == 3 ? BPF_CGROUP_INET_EGRESS : BPF_CGROUP_INET_INGRESS);
            assert_string_equal(x->target, cgname);
            assert_int_equal(x->target_id, cst.st_ino);
            break;
        }
    }
    for (int k = 0; k < 12; k++) {
        if (n[k] == (k == 9 ? 2 : 1)) continue;
        for (size_t j = 0; j < f->em.n; j++) {
            const Edr__V1__BpfAttach *x = f->em.ev[j]->bpf_attach;
            if (f->em.ev[j]->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH)
                fprintf(stderr, "bpf_attach: program %u link %u type %u at %s%s\n", x->prog_id,
                        x->link_id, x->link_type, x->target, x->found ? ", found" : "");
        }
        fail_msg("attachment %d (programs %u %u %u %u %u %u %u %u %u) reported %d times, %d "
                 "expected",
                 k, m.rtp_prog, m.tp_prog, m.io_prog, m.cg_prog, m.cgl_prog, m.ia_prog, m.upd_prog,
                 m.tcx_prog, m.iacg_prog, n[k], k == 9 ? 2 : 1);
    }
}

/* The kernel reads a descriptor argument from the low 32 bits of its
 * register: a write and a connect given a descriptor with bits above them
 * set are the same calls and must be seen (review-1206b 2). */
static void test_fd_high_bits(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    char path[200];
    snprintf(path, sizeof(path), "%s/highbits.txt", f->dir);
    int probe = socket(AF_INET, SOCK_STREAM, 0); /* a loopback port nobody listens on */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sa, &sl), 0);
    close(probe);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0 || syscall(SYS_write, (long)fd | (1L << 32), "abc", 3L) != 3) _exit(1);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || syscall(SYS_connect, (long)s | (1L << 33), &sa, (long)sizeof(sa)) == 0 ||
            errno != ECONNREFUSED)
            _exit(2);
        _exit(0);
    }
    reap_ok(c);
    int writes = 0, refused = 0;
    /* up to 3 s, and 200 ms past both seen (no second one): a loaded
     * machine (another BPF user's thousands of loads) can keep the loop
     * busy past a fixed 300 ms (seen once) */
    for (int t = 0, past = 0; t < 30 && past < 2; t++) {
        pump(&f->loop, 100);
        writes = refused = 0;
        for (size_t j = 0; j < f->em.n; j++) {
            Edr__V1__Event *e = f->em.ev[j];
            if (e->pid != (uint32_t)c) continue;
            if (e->body_case == EDR__V1__EVENT__BODY_FILE_WRITE &&
                !strcmp(e->file_write->path, path)) {
                writes++;
                assert_int_equal(e->file_write->bytes, 3);
            }
            if (e->body_case == EDR__V1__EVENT__BODY_NETWORK &&
                e->network->action == EDR__V1__NETWORK__ACTION__CONNECT &&
                e->network->error == ECONNREFUSED && e->network->remote &&
                e->network->remote->port == ntohs(sa.sin_port))
                refused++;
        }
        past += writes && refused;
    }
    assert_int_equal(writes, 1);
    assert_int_equal(refused, 1);
}

/* pidfd_getfd takes a copy of another process's descriptor (ptrace-attach
 * rights): process access on the target, with the descriptor's number
 * (review-fidelity 16: not reported). Taking one's own is not access. */
static void test_pidfd_getfd_is_access(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t target = fork();
    assert_true(target >= 0);
    if (target == 0) {
        alarm(20);
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0 || dup2(fd, 77) != 77) _exit(1);
        if (write(ready[1], "R", 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    pid_t actor = fork();
    assert_true(actor >= 0);
    if (actor == 0) {
        int pfd = (int)syscall(SYS_pidfd_open, target, 0);
        if (pfd < 0) _exit(3);
        if (syscall(SYS_pidfd_getfd, pfd, 77, 0) < 0) _exit(4);
        int me = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (me < 0 || syscall(SYS_pidfd_getfd, me, 0, 0) < 0) _exit(5);
        _exit(0);
    }
    reap_ok(actor);
    pump(&f->loop, 300);
    uint8_t tid[EDR_ID_LEN];
    self_entity_id(&f->em, target, tid);
    kill(target, SIGKILL);
    waitpid(target, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    int seen = 0;
    for (size_t i = 0; i < f->em.n; i++) {
        Edr__V1__Event *e = f->em.ev[i];
        if (e->body_case != EDR__V1__EVENT__BODY_PROCESS_ACCESS || e->pid != (uint32_t)actor)
            continue;
        assert_int_equal(e->process_access->kind, EDR__V1__PROCESS_ACCESS__KIND__PIDFD_GETFD);
        assert_int_equal(e->process_access->target_pid, (uint32_t)target);
        assert_true(id_eq(e->process_access->target_entity_id, tid));
        assert_int_equal(e->process_access->access_mask, 77);
        seen++;
    }
    assert_int_equal(seen, 1);
}

/* A reflink clone (FICLONE, FICLONERANGE: what cp tries first) replaces a
 * file's content without writing it: a first write, with the bytes the file
 * now holds or the range cloned. On an XFS image the test makes (ext4 and
 * tmpfs have no clones); skipped without mkfs.xfs. */
static void test_reflink_clone_is_write(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    if (access("/usr/sbin/mkfs.xfs", X_OK) != 0 && access("/sbin/mkfs.xfs", X_OK) != 0) {
        print_message("SKIP: no mkfs.xfs (xfsprogs) for a file system with reflink clones\n");
        skip();
    }
    char img[200], mnt[200], cmd[1024], src[240], dst[240], dst2[240];
    snprintf(img, sizeof(img), "%s/xfs.img", f->dir);
    snprintf(mnt, sizeof(mnt), "%s/xfs", f->dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    snprintf(cmd, sizeof(cmd),
             "truncate -s 320M '%s' && mkfs.xfs -q -m reflink=1 '%s' && mount -o loop '%s' '%s'", img,
             img, img, mnt);
    if (system(cmd) != 0) {
        print_message("SKIP: cannot make and mount an XFS image (loop devices?)\n");
        skip();
    }
    snprintf(src, sizeof(src), "%s/src", mnt);
    snprintf(dst, sizeof(dst), "%s/dst", mnt);
    snprintf(dst2, sizeof(dst2), "%s/dst2", mnt);
    static char blk[8192];
    memset(blk, 'x', sizeof(blk));
    for (int i = 0; i < 3; i++) {
        int fd = open(i == 0 ? src : i == 1 ? dst : dst2, O_CREAT | O_WRONLY, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, blk, i == 0 ? sizeof(blk) : 10), i == 0 ? (ssize_t)sizeof(blk) : 10);
        close(fd);
    }
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int s = open(src, O_RDONLY), d = open(dst, O_WRONLY), d2 = open(dst2, O_WRONLY);
        if (s < 0 || d < 0 || d2 < 0) _exit(1);
        if (ioctl(d, FICLONE, s) != 0) _exit(2);
        struct file_clone_range r = {.src_fd = s, .src_offset = 0, .src_length = 4096,
                                     .dest_offset = 0};
        if (ioctl(d2, FICLONERANGE, &r) != 0) _exit(3);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(w, &st, 0), w);
    pump(&f->loop, 300);
    snprintf(cmd, sizeof(cmd), "umount '%s'", mnt);
    if (system(cmd) != 0) print_message("could not unmount %s\n", mnt);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    Edr__V1__Event *e = find(&f->em, EDR__V1__EVENT__BODY_FILE_WRITE, (uint32_t)w, dst);
    assert_non_null(e);
    assert_int_equal(e->file_write->bytes, sizeof(blk));
    e = find(&f->em, EDR__V1__EVENT__BODY_FILE_WRITE, (uint32_t)w, dst2);
    assert_non_null(e);
    assert_int_equal(e->file_write->bytes, 4096);
}

/* Network events name their network namespace (review-fidelity 16: a
 * connection inside `ip netns` looked like the host's loopback): a child in
 * a namespace of its own connects on its loopback. */
static void test_netns_on_network_events(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        alarm(20);
        if (unshare(CLONE_NEWNET) != 0) _exit(1);
        if (system("ip link set lo up") != 0) _exit(2);
        struct stat st;
        if (stat("/proc/self/ns/net", &st) != 0) _exit(3);
        uint32_t ino = (uint32_t)st.st_ino;
        uint16_t port;
        int ls = bind_lo(0, &port);
        if (listen(ls, 4) != 0) _exit(4);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0) _exit(5);
        if (write(pfd[1], &ino, sizeof(ino)) != sizeof(ino) ||
            write(pfd[1], &port, sizeof(port)) != sizeof(port))
            _exit(6);
        _exit(0);
    }
    reap_ok(w);
    uint32_t ino = 0;
    uint16_t port = 0;
    assert_int_equal(read(pfd[0], &ino, sizeof(ino)), sizeof(ino));
    assert_int_equal(read(pfd[0], &port, sizeof(port)), sizeof(port));
    close(pfd[0]);
    close(pfd[1]);
    struct stat host;
    assert_int_equal(stat("/proc/self/ns/net", &host), 0);
    assert_true(ino != (uint32_t)host.st_ino);
    pump(&f->loop, 300);
    int seen = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_NETWORK) continue;
        assert_int_equal(e->network->netns, ino);
        seen |= e->network->action == EDR__V1__NETWORK__ACTION__CONNECT ? 1
              : e->network->action == EDR__V1__NETWORK__ACTION__LISTEN  ? 2
                                                                        : 0;
    }
    assert_int_equal(seen, 3);
}

/* ---- io_uring, by its raw system calls (no library) ----------------------- */

typedef struct {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
} uring_t;

static int uring_init(uring_t *u)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    u->fd = (int)syscall(__NR_io_uring_setup, 8, &p);
    if (u->fd < 0) return -1;
    uint8_t *sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned),
                       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
    uint8_t *cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
                       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
    u->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || u->sqes == MAP_FAILED) return -1;
    u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    u->sq_array = (unsigned *)(sq + p.sq_off.array);
    u->cq_head = (unsigned *)(cq + p.cq_off.head);
    u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

/* Submits one request without waiting for anything. */
static int uring_submit(uring_t *u, const struct io_uring_sqe *sqe)
{
    unsigned tail = *u->sq_tail, i = tail & *u->sq_mask;
    u->sqes[i] = *sqe;
    u->sq_array[i] = i;
    __atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
    return syscall(__NR_io_uring_enter, u->fd, 1, 0, 0, NULL, 0) == 1 ? 0 : -1;
}

/* Waits for and consumes n completions: 0 when none failed, -1 when one
 * did, -2 when waiting failed. */
static int uring_reap(uring_t *u, int n)
{
    int rc = 0;
    while (n > 0) {
        if (syscall(__NR_io_uring_enter, u->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -2;
        while (n > 0 && *u->cq_head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
            if (u->cqes[*u->cq_head & *u->cq_mask].res < 0) rc = -1;
            __atomic_store_n(u->cq_head, *u->cq_head + 1, __ATOMIC_RELEASE);
            n--;
        }
    }
    return rc;
}

/* Submits one request and waits for its completion: its result. */
static int uring_run(uring_t *u, const struct io_uring_sqe *sqe)
{
    unsigned tail = *u->sq_tail, i = tail & *u->sq_mask;
    u->sqes[i] = *sqe;
    u->sq_array[i] = i;
    __atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, u->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -errno;
    unsigned head = *u->cq_head;
    if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) return -EAGAIN;
    int res = u->cqes[head & *u->cq_mask].res;
    __atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

static struct io_uring_sqe sqe_of(int op, int fd, const void *addr, const void *addr2, unsigned len)
{
    struct io_uring_sqe q;
    memset(&q, 0, sizeof(q));
    q.opcode = (uint8_t)op;
    q.fd = fd;
    q.addr = (uint64_t)(uintptr_t)addr;
    q.addr2 = (uint64_t)(uintptr_t)addr2;
    q.len = len;
    return q;
}

/* Requests of an io_uring run in the kernel without the syscalls the sensor
 * hooks (review-fidelity 3: every file and network operation made through a
 * ring was invisible). A child makes each file and network operation through
 * one; each is reported as its syscall would be, failed ones are not. */
static void test_io_uring_operations(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    uring_t probe;
    if (uring_init(&probe) != 0) skip(); /* kernel.io_uring_disabled */
    close(probe.fd);
    char base[160], want[13][200];
    snprintf(base, sizeof(base), "%s/uring", f->dir);
    assert_int_equal(mkdir(base, 0700), 0);
    static const char *const leaf[13] = {"file",  "renamed", "dir",       "sym",   "hard",
                                         "nothere", "gone",  "nowhere/x", "fixed", "quiet",
                                         "quiet2", "made",   "nowhere/y"};
    for (int i = 0; i < 13; i++)
        snprintf(want[i], sizeof(want[i]), "%s/%s", base, leaf[i]);
    uint16_t port, mport = 0, cport;
    close(bind_lo(0, &cport)); /* a port nothing listens on */
    int ls = bind_lo(0, &port), pfd[2];
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(pipe(pfd), 0);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        uring_t u;
        alarm(30);
        if (uring_init(&u) != 0 || chdir(base) != 0) _exit(1);
        struct io_uring_sqe q = sqe_of(IORING_OP_OPENAT, AT_FDCWD, "file", NULL, 0600);
        q.open_flags = O_CREAT | O_WRONLY;
        int fd = uring_run(&u, &q);
        if (fd < 0) _exit(2);
        q = sqe_of(IORING_OP_WRITE, fd, "hello", NULL, 5);
        if (uring_run(&u, &q) != 5) _exit(3);
        q = sqe_of(IORING_OP_RENAMEAT, AT_FDCWD, "file", "renamed", (unsigned)AT_FDCWD);
        if (uring_run(&u, &q) != 0) _exit(4);
        q = sqe_of(IORING_OP_MKDIRAT, AT_FDCWD, "dir", NULL, 0750);
        if (uring_run(&u, &q) != 0) _exit(5);
        q = sqe_of(IORING_OP_SYMLINKAT, AT_FDCWD, "../elsewhere/t", "sym", 0);
        if (uring_run(&u, &q) != 0) _exit(6);
        q = sqe_of(IORING_OP_LINKAT, AT_FDCWD, "renamed", "hard", (unsigned)AT_FDCWD);
        if (uring_run(&u, &q) != 0) _exit(7);
        q = sqe_of(IORING_OP_UNLINKAT, AT_FDCWD, "hard", NULL, 0);
        if (uring_run(&u, &q) != 0) _exit(8);
        /* failures: nothing happened, nothing is reported */
        q = sqe_of(IORING_OP_UNLINKAT, AT_FDCWD, "nothere", NULL, 0);
        if (uring_run(&u, &q) != -ENOENT) _exit(9);
        q = sqe_of(IORING_OP_RENAMEAT, AT_FDCWD, "gone", "nowhere/x", (unsigned)AT_FDCWD);
        if (uring_run(&u, &q) != -ENOENT) _exit(10);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        q = sqe_of(IORING_OP_CONNECT, c, &a, NULL, 0);
        q.off = sizeof(a); /* addr2: the address length */
        if (c < 0 || uring_run(&u, &q) != 0) _exit(11);
        q = sqe_of(IORING_OP_ACCEPT, ls, NULL, NULL, 0);
        if (uring_run(&u, &q) < 0) _exit(12);
        /* a refused connect through the ring (review-1205 L4) */
        int c2 = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in ca = {.sin_family = AF_INET, .sin_port = htons(cport)};
        ca.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        q = sqe_of(IORING_OP_CONNECT, c2, &ca, NULL, 0);
        q.off = sizeof(ca);
        if (c2 < 0 || uring_run(&u, &q) != -ECONNREFUSED) _exit(29);
        /* a file opened into the ring's own table, written through it
         * (review-1205 H2: neither was seen) */
        int sparse[4] = {-1, -1, -1, -1};
        if (syscall(__NR_io_uring_register, u.fd, IORING_REGISTER_FILES, sparse, 4) != 0) _exit(13);
        q = sqe_of(IORING_OP_OPENAT, AT_FDCWD, "fixed", NULL, 0600);
        q.open_flags = O_CREAT | O_WRONLY;
        q.file_index = IORING_FILE_INDEX_ALLOC;
        int slot = uring_run(&u, &q);
        if (slot < 0) _exit(14);
        q = sqe_of(IORING_OP_WRITE, slot, "abc", NULL, 3);
        q.flags = IOSQE_FIXED_FILE;
        if (uring_run(&u, &q) != 3) _exit(15);
        /* requests that post no completion when they succeed
         * (review-1205 H1: a rename and a write were hidden) */
        int qfd = open("quiet", O_CREAT | O_WRONLY, 0600);
        q = sqe_of(IORING_OP_WRITE, qfd, "four", NULL, 4);
        q.flags = IOSQE_CQE_SKIP_SUCCESS;
        if (qfd < 0 || uring_submit(&u, &q) != 0) _exit(16);
        q = sqe_of(IORING_OP_RENAMEAT, AT_FDCWD, "quiet", "quiet2", (unsigned)AT_FDCWD);
        q.flags = IOSQE_CQE_SKIP_SUCCESS | IOSQE_IO_LINK;
        if (uring_submit(&u, &q) != 0) _exit(17);
        q = sqe_of(IORING_OP_NOP, -1, NULL, NULL, 0);
        if (uring_run(&u, &q) != 0) _exit(18);
        /* creates that post no completion when they succeed
         * (review-1205b H2); a failing one still posts one */
        q = sqe_of(IORING_OP_OPENAT, AT_FDCWD, "made", NULL, 0600);
        q.open_flags = O_CREAT | O_WRONLY;
        q.flags = IOSQE_CQE_SKIP_SUCCESS;
        if (uring_submit(&u, &q) != 0) _exit(19);
        q = sqe_of(IORING_OP_OPENAT, AT_FDCWD, "nowhere/y", NULL, 0600);
        q.open_flags = O_CREAT | O_WRONLY;
        q.flags = IOSQE_CQE_SKIP_SUCCESS;
        if (uring_submit(&u, &q) != 0) _exit(20);
        q = sqe_of(IORING_OP_NOP, -1, NULL, NULL, 0);
        if (uring_submit(&u, &q) != 0) _exit(21);
        /* creates run in io-wq: wait for the nop's and the failure's
         * completions, the success posts none */
        if (uring_reap(&u, 2) < -1) _exit(22);
        for (int i = 0; i < 100 && access("made", F_OK) != 0; i++)
            usleep(10000);
        if (access("made", F_OK) != 0) _exit(23);
        /* a multishot accept: its connections complete without naming the
         * request (review-1205 M1: none was seen) */
        int ms = bind_lo(0, &mport);
        if (listen(ms, 4) != 0 || write(pfd[1], &mport, sizeof(mport)) != sizeof(mport)) _exit(24);
        q = sqe_of(IORING_OP_ACCEPT, ms, NULL, NULL, 0);
        q.ioprio = IORING_ACCEPT_MULTISHOT;
        q.user_data = 77;
        if (uring_submit(&u, &q) != 0) _exit(25);
        struct sockaddr_in ma = {.sin_family = AF_INET, .sin_port = htons(mport)};
        ma.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < 2; i++) {
            int mc = socket(AF_INET, SOCK_STREAM, 0);
            if (mc < 0 || connect(mc, (struct sockaddr *)&ma, sizeof(ma)) != 0) _exit(26);
        }
        if (uring_reap(&u, 2) != 0) _exit(27);
        _exit(0);
    }
    reap_ok(w);
    close(ls);
    assert_int_equal(read(pfd[0], &mport, sizeof(mport)), sizeof(mport));
    close(pfd[0]);
    close(pfd[1]);
    pump(&f->loop, 2500); /* the rename without a completion is reported after 1-2 s */
    int seen = 0, wrong = 0, maccepts = 0, refused = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w) continue;
        switch (e->body_case) {
        case EDR__V1__EVENT__BODY_FILE_CREATE: {
            const Edr__V1__FileCreate *c = e->file_create;
            if (!strcmp(c->path, want[0])) seen |= 1;
            if (!strcmp(c->path, want[2])) {
                assert_int_equal(c->mode, S_IFDIR | 0750);
                seen |= 2;
            }
            if (!strcmp(c->path, want[3])) {
                assert_int_equal(c->mode & S_IFMT, S_IFLNK);
                assert_string_equal(c->link_target, "../elsewhere/t");
                seen |= 4;
            }
            if (!strcmp(c->path, want[4])) {
                assert_string_equal(c->link_target, want[1]);
                seen |= 8;
            }
            if (!strcmp(c->path, want[8])) seen |= 512;
            if (!strcmp(c->path, want[11]) && e->unconfirmed) seen |= 8192;
            if (!strcmp(c->path, want[12])) wrong++; /* the failed create */
            break;
        }
        case EDR__V1__EVENT__BODY_FILE_WRITE:
            if (!strcmp(e->file_write->path, want[0])) {
                assert_int_equal(e->file_write->bytes, 5);
                seen |= 16;
            }
            if (!strcmp(e->file_write->path, want[8])) {
                assert_int_equal(e->file_write->bytes, 3);
                seen |= 1024;
            }
            if (!strcmp(e->file_write->path, want[9])) {
                assert_int_equal(e->file_write->bytes, 4);
                assert_true(e->unconfirmed); /* reported at submission */
                seen |= 2048;
            } else {
                assert_false(e->unconfirmed);
            }
            break;
        case EDR__V1__EVENT__BODY_FILE_RENAME:
            if (!strcmp(e->file_rename->old_path, want[0]) &&
                !strcmp(e->file_rename->new_path, want[1])) {
                assert_false(e->unconfirmed);
                seen |= 32;
            } else if (!strcmp(e->file_rename->old_path, want[9]) &&
                       !strcmp(e->file_rename->new_path, want[10])) {
                assert_true(e->unconfirmed); /* no completion was posted */
                seen |= 4096;
            } else
                wrong++;
            break;
        case EDR__V1__EVENT__BODY_FILE_DELETE:
            if (!strcmp(e->file_delete->path, want[4]))
                seen |= 64;
            else
                wrong++;
            break;
        case EDR__V1__EVENT__BODY_NETWORK: {
            const Edr__V1__Network *n = e->network;
            if (n->action == EDR__V1__NETWORK__ACTION__CONNECT && n->remote &&
                n->remote->port == port) {
                assert_int_equal(n->error, 0);
                seen |= 128;
            }
            if (n->action == EDR__V1__NETWORK__ACTION__CONNECT && n->remote &&
                n->remote->port == cport) {
                assert_int_equal(n->error, ECONNREFUSED);
                refused++;
            }
            if (n->action == EDR__V1__NETWORK__ACTION__ACCEPT && n->local->port == port)
                seen |= 256;
            if (n->action == EDR__V1__NETWORK__ACTION__ACCEPT && n->local->port == mport)
                maccepts++;
            break;
        }
        default:
            break;
        }
    }
    if (seen != 16383) fail_msg("io_uring operations seen: mask %d of 16383", seen);
    assert_int_equal(wrong, 0); /* the failed unlink, rename and create */
    assert_int_equal(maccepts, 2);
    assert_int_equal(refused, 1);
}

static volatile char proc_mem_byte = 'a';

/* A write into another process's memory through /proc/PID/mem is process
 * access (vm_write) by the writer on the target, as process_vm_writev is
 * (review-fidelity 16: it was only a file write of /proc/PID/mem). */
static void test_proc_mem_write_is_access(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    int go[2], ready[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid_t target = fork();
    assert_true(target >= 0);
    if (target == 0) { /* unknown to the sensor (its parent is the test, which is not
                        * observed): found in /proc; waits for the writer */
        char b;
        close(go[1]);
        close(ready[0]);
        if (write(ready[1], "R", 1) != 1) _exit(2);
        _exit(read(go[0], &b, 1) >= 0 && proc_mem_byte == 'Z' ? 0 : 1);
    }
    close(ready[1]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    close(ready[0]);
    pump(&f->loop, 200);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) { /* writes, then lives until the sensor has read its events */
        char p[64];
        close(go[1]);
        snprintf(p, sizeof(p), "/proc/%d/mem", (int)target);
        int fd = open(p, O_RDWR);
        /* the same address in the forked target */
        if (fd < 0 || pwrite(fd, "Z", 1, (off_t)(uintptr_t)&proc_mem_byte) != 1) _exit(1);
        if (write(done[1], "D", 1) != 1) _exit(2);
        _exit(read(go[0], &b, 1) >= 0 ? 0 : 3);
    }
    close(go[0]);
    close(done[1]);
    assert_int_equal(read(done[0], &b, 1), 1);
    close(done[0]);
    pump(&f->loop, 300); /* while both live, as they mostly do when the sensor reads */
    close(go[1]);
    reap_ok(w);
    reap_ok(target); /* 0: the write happened */
    int seen = 0;
    for (size_t j = 0; j < f->em.n; j++) {
        Edr__V1__Event *e = f->em.ev[j];
        if (e->pid != (uint32_t)w || e->body_case != EDR__V1__EVENT__BODY_PROCESS_ACCESS) continue;
        assert_int_equal(e->process_access->kind, EDR__V1__PROCESS_ACCESS__KIND__VM_WRITE);
        assert_int_equal(e->process_access->target_pid, (uint32_t)target);
        assert_int_equal(e->process_access->target_entity_id.len, 16);
        seen++;
    }
    assert_int_equal(seen, 1);
}

/* Stops a source from start_own_source (which reads its drop counters) and
 * counts the events of kind k by pid, from index `from` on, whose path starts
 * with prefix. */
static size_t stop_own_source(edr_source_t *src, uv_loop_t *loop, edr_emit_t *em, size_t from,
                              Edr__V1__Event__BodyCase k, pid_t pid, const char *prefix)
{
    pump(loop, 200);
    src->ops->stop(src);
    src->ops->destroy(src);
    size_t seen = 0;
    for (size_t i = from; i < em->n; i++) {
        const char *p = em->ev[i]->body_case == k ? event_path(em->ev[i]) : NULL;
        if (p && strncmp(p, prefix, strlen(prefix)) == 0 && em->ev[i]->pid == (uint32_t)pid) seen++;
    }
    return seen;
}

static void test_ringbuf_full_is_counted(void **state)
{
    fixture_t *f = *state;
    enum { N = 400 };
    if (!f) skip();
    uv_loop_t loop;
    edr_emit_t em = {0};
    edr_source_t *src = start_own_source(
        f, (const char *const[]){"sensor.ebpf_ringbuf_size", "16KiB", NULL}, &loop, &em);
    size_t seeded = em.n;

    char dir[128];
    snprintf(dir, sizeof(dir), "%s/burst", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    pid_t p = fork(); /* the burst, while nobody reads the ring */
    assert_true(p >= 0);
    if (p == 0) {
        char path[256];
        for (int i = 0; i < N; i++) {
            snprintf(path, sizeof(path), "%s/f%d", dir, i);
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0) _exit(1);
            close(fd);
        }
        _exit(0);
    }
    reap_ok(p);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s/f", dir);
    size_t seen = stop_own_source(src, &loop, &em, seeded, EDR__V1__EVENT__BODY_FILE_CREATE, p, prefix);
    print_message("burst of %d creates: %zu seen, %llu dropped (any process)\n", N, seen,
                  (unsigned long long)em.drops_create);
    assert_true(seen < N);
    assert_true(em.drops_create > 0);
    assert_true(seen + em.drops_create >= N);
    close_own_loop(&loop, &em);
}

/* The table of files opened for writing and not yet written is direct-mapped:
 * with 64 slots and 200 files held open before any is written, most files are
 * displaced and their first writes go unreported. Every one of them must be
 * counted: first writes seen + counted evictions cover all 200. */
static void test_write_track_evictions_counted(void **state)
{
    fixture_t *f = *state;
    enum { N = 200, SLOTS = 64 };
    if (!f) skip();
    uv_loop_t loop;
    edr_emit_t em = {0};
    edr_source_t *src = start_own_source(
        f, (const char *const[]){"sensor.ebpf_write_slots", "64", NULL}, &loop, &em);
    size_t seeded = em.n;

    char dir[128];
    snprintf(dir, sizeof(dir), "%s/wtrack", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        char path[256];
        int fds[N];
        for (int i = 0; i < N; i++) {
            snprintf(path, sizeof(path), "%s/w%d", dir, i);
            fds[i] = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fds[i] < 0) _exit(1);
        }
        for (int i = 0; i < N; i++)
            if (write(fds[i], "x", 1) != 1 || close(fds[i]) != 0) _exit(2);
        _exit(0);
    }
    int st;
    while (waitpid(p, &st, WNOHANG) == 0)
        pump(&loop, 10);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s/w", dir);
    size_t seen = stop_own_source(src, &loop, &em, seeded, EDR__V1__EVENT__BODY_FILE_WRITE, p, prefix);
    print_message("%d files held open in %d slots: %zu first writes seen, %llu counted lost (any process)\n",
                  N, SLOTS, seen, (unsigned long long)em.drops_wtrack);
    assert_true(seen > 0 && seen <= SLOTS);
    assert_true(seen + em.drops_wtrack >= N);
    close_own_loop(&loop, &em);
}

/* A program this kernel refuses is left out when the source can do without
 * it, and only it: the io_uring programs (the scans stay), the descriptor
 * iterator (the other scans and io_uring stay), another iterator (no scans;
 * io_uring stays); each said in health as "unavailable". Refusing a program
 * the source needs fails the start (review-1205-sock2 10: io_uring programs
 * that did not load took every scan with them). */
static void test_load_leaves_out_what_fails(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    static const struct {
        const char *prog;
        int attach;                 /* refused when attached, not when loaded */
        uint64_t uring, fds, links; /* "unavailable" counts expected */
    } cases[] = {
        {"edr_uring_submit", 0, 1, 0, 0},
        {"edr_uring_complete", 0, 1, 0, 0}, /* longer than the kernel's 15-byte names */
        {"edr_iter_fd_progs", 0, 0, 1, 0},
        {"edr_iter_links", 0, 0, 1, 1},
        {"edr_uring_complete", 1, 1, 0, 0}, /* review-1206 L8: the attach stage */
        {"edr_iter_fd_progs", 1, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uv_loop_t loop;
        edr_emit_t em;
        const char *const kv[] = {"sensor.ebpf_fd_scan", "10s", NULL};
        *(cases[i].attach ? &edr__ebpf_test_refuse_attach : &edr__ebpf_test_refuse) = cases[i].prog;
        edr_source_t *src = start_own_source(f, kv, &loop, &em);
        edr__ebpf_test_refuse = edr__ebpf_test_refuse_attach = NULL;
        ship(&em);
        print_message("refused %s (%s): unavailable io_uring %llu, descriptor scan %llu, link "
                      "scan %llu\n",
                      cases[i].prog, cases[i].attach ? "attach" : "load",
                      (unsigned long long)em.unavailable[0], (unsigned long long)em.unavailable[1],
                      (unsigned long long)em.unavailable[2]);
        assert_int_equal(em.unavailable[0], cases[i].uring);
        assert_int_equal(em.unavailable[1], cases[i].fds);
        assert_int_equal(em.unavailable[2], cases[i].links);
        end_own_source(src, &loop, &em);
    }
    /* a program it cannot do without: no start, and no load again with the
     * same hooks (each verifies every program): edr_fork in both hook kinds
     * (tracepoint, then raw), a syscall's exit program (a name longer than
     * the kernel's 15 bytes) with the tracepoint hooks asked for */
    static const struct {
        const char *prog, *hooks;
        unsigned loads;
        int attach;
    } needed[] = {{"edr_fork", "auto", 2, 0},
                  {"edr_tx_open_by_handle_at", "tracepoint", 1, 0},
                  {"edr_exit", "tracepoint", 1, 1}};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        edr_config_t *cfg = edr_config_new();
        char err[256];
        uv_loop_t loop;
        edr_emit_t em;
        assert_non_null(cfg);
        assert_int_equal(
            edr_config_set(cfg, "sensor.ebpf_hooks", needed[i].hooks, "test", err, sizeof(err)), 0);
        uv_loop_init(&loop);
        memset(&em, 0, sizeof(em));
        edr_arena_init(&em.arena, 1 << 20);
        edr_source_t *src = edr_source_ebpf_new(cfg, err, sizeof(err));
        assert_non_null(src);
        edr_config_destroy(cfg);
        *(needed[i].attach ? &edr__ebpf_test_refuse_attach : &edr__ebpf_test_refuse) =
            needed[i].prog;
        edr__ebpf_test_loads = 0;
        assert_int_not_equal(src->ops->start(src, &loop, &em), 0);
        edr__ebpf_test_refuse = edr__ebpf_test_refuse_attach = NULL;
        print_message("refused %s (%s hooks): %u loads\n", needed[i].prog, needed[i].hooks,
                      edr__ebpf_test_loads);
        assert_int_equal(edr__ebpf_test_loads, needed[i].loads);
        src->ops->destroy(src);
        close_own_loop(&loop, &em);
    }
}

/* Wakeups (sensor.ebpf_wakeup_bytes 64 KiB, the ring drained every 50 ms):
 * a process making a file every millisecond writes far less than that
 * between two drains, and wakes the sensor not once, whatever it wrote in
 * all (review-1206 M1: each CPU's count went on across drains, so wakeups
 * grew with the bytes and the number of CPUs); a burst that writes more than
 * that between two drains wakes it. */
static void test_wakeups_per_drain(void **state)
{
    fixture_t *f = *state;
    if (!f) skip();
    uv_loop_t loop;
    edr_emit_t em;
    const char *const kv[] = {"sensor.ebpf_fd_scan", "0s", "sensor.ebpf_wakeup_bytes", "64KiB",
                              NULL};
    edr_source_t *src = start_own_source(f, kv, &loop, &em);
    pump(&loop, 200);
    uint64_t w[3] = {edr__ebpf_test_wakeups(src), 0, 0};
    size_t n[3] = {em.n, 0, 0};
    for (int phase = 1; phase <= 2; phase++) {
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) {
            char p[512];
            struct timespec ts = {0, 1000000};
            for (int i = 0; i < (phase == 1 ? 1500 : 20000); i++) {
                snprintf(p, sizeof(p), "%s/wake_%d_%d", f->dir, phase, i);
                int fd = open(p, O_CREAT | O_WRONLY, 0600);
                if (fd >= 0) close(fd);
                unlink(p);
                if (phase == 1) nanosleep(&ts, NULL);
            }
            _exit(0);
        }
        for (int i = 0; i < 1000; i++) {
            pump(&loop, 10);
            if (waitpid(c, NULL, WNOHANG) == c) break;
        }
        pump(&loop, 200);
        w[phase] = edr__ebpf_test_wakeups(src);
        n[phase] = em.n;
    }
    print_message("paced: %zu events, %llu wakeups; burst: %zu events, %llu wakeups\n", n[1] - n[0],
                  (unsigned long long)(w[1] - w[0]), n[2] - n[1],
                  (unsigned long long)(w[2] - w[1]));
    assert_true(n[1] - n[0] >= 3000); /* its creates and deletes */
    assert_int_equal(w[1] - w[0], 0);
    assert_true(n[2] - n[1] >= 40000);
    assert_true(w[2] > w[1]);
    end_own_source(src, &loop, &em);
}

/* Bad values of the source's own settings are refused with the setting's
 * name: write slots that are not a power of two in range, hooks and ia32
 * modes that are not one of the words. */
/* Whether the BPF LSM is active is told where securityfs is not mounted
 * (the sensor said "not active (lsm=?)" on this machine, whose kernel runs
 * it): from the kernel's own list, the same answer as securityfs's. */
static void test_lsm_state_without_securityfs(void **state)
{
    (void)state;
    char dir[] = "/tmp/edr-lsm-XXXXXX", path[64], list[64];
    const char *via = NULL;
    assert_non_null(mkdtemp(dir));
    if (mount("securityfs", dir, "securityfs", 0, NULL) != 0) {
        print_message("cannot mount securityfs (%s): skipped\n", strerror(errno));
        rmdir(dir);
        skip();
    }
    snprintf(path, sizeof(path), "%s/lsm", dir);
    int by_fs = edr__ebpf_lsm_active(path, &via);
    assert_string_equal(via, "securityfs");
    umount(dir);
    snprintf(path, sizeof(path), "%s/lsm", dir);
    int by_call = edr__ebpf_lsm_active(path, &via); /* nothing mounted there now */
    rmdir(dir);
    assert_string_equal(via, "lsm_list_modules");
    print_message("BPF LSM active: securityfs %d, lsm_list_modules %d\n", by_fs, by_call);
    assert_true(by_fs == 0 || by_fs == 1);
    assert_int_equal(by_call, by_fs);
    /* a name is matched whole, not as a substring of another LSM's */
    snprintf(list, sizeof(list), "%s.list", dir);
    FILE *f = fopen(list, "w");
    assert_non_null(f);
    fputs("capability,bpfguard,landlock\n", f);
    fclose(f);
    assert_int_equal(edr__ebpf_lsm_active(list, &via), 0);
    f = fopen(list, "w");
    assert_non_null(f);
    fputs("lockdown,capability,bpf\n", f);
    fclose(f);
    assert_int_equal(edr__ebpf_lsm_active(list, &via), 1);
    unlink(list);
}

static void test_settings_checked(void **state)
{
    (void)state;
    const struct {
        const char *key, *value;
    } bad[] = {{"sensor.ebpf_write_slots", "100"},
               {"sensor.ebpf_write_slots", "32"},
               {"sensor.ebpf_write_slots", "0"},
               {"sensor.ebpf_write_slots", "33554432"},
               {"sensor.ebpf_hooks", "kprobe"},
               {"sensor.ebpf_ia32", "yes"},
               {"sensor.ebpf_ia32", ""}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        edr_config_t *cfg = edr_config_new();
        char err[256] = "";
        assert_int_equal(edr_config_set(cfg, bad[i].key, bad[i].value, "test", err, sizeof(err)),
                         0);
        assert_null(edr_source_ebpf_new(cfg, err, sizeof(err)));
        assert_non_null(strstr(err, bad[i].key));
        edr_config_destroy(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeded_self),
        cmocka_unit_test(test_scripted_chain),
        cmocka_unit_test(test_process_access),
        cmocka_unit_test(test_process_access_in_pid_namespace),
        cmocka_unit_test(test_exe_hash_first_exec),
        cmocka_unit_test(test_exe_hash_late_is_reported),
        cmocka_unit_test(test_hooks_raw_and_tracepoint),
        cmocka_unit_test(test_ia32_syscalls),
        cmocka_unit_test(test_socket_filter_reported),
        cmocka_unit_test(test_fd_scan_found),
        cmocka_unit_test(test_fd_scan_reattach),
        cmocka_unit_test(test_fd_scan_many),
        cmocka_unit_test(test_xdp_netlink_found),
        cmocka_unit_test(test_tc_netlink_found),
        cmocka_unit_test(test_tc_under_qdiscs_found),
        cmocka_unit_test(test_detach_found),
        cmocka_unit_test(test_detach_past_a_cut),
        cmocka_unit_test(test_detach_cgroup),
        cmocka_unit_test(test_detach_by_whom),
        cmocka_unit_test(test_close_and_first_write),
        cmocka_unit_test(test_first_write_other_syscalls),
        cmocka_unit_test(test_deep_and_long_paths),
        cmocka_unit_test(test_exec_effective_ids_and_cut_argv),
        cmocka_unit_test(test_fileless_and_deleted_exec),
        cmocka_unit_test(test_chroot_and_symlink_paths),
        cmocka_unit_test(test_dns_by_write),
        cmocka_unit_test(test_links_dirs_nodes),
        cmocka_unit_test(test_io_uring_operations),
        cmocka_unit_test(test_connect_outcomes),
        cmocka_unit_test(test_netns_on_network_events),
        cmocka_unit_test(test_mprotect_exec),
        cmocka_unit_test(test_anonymous_exec_memory),
        cmocka_unit_test(test_modified_file_code),
        cmocka_unit_test(test_bpf_load_reported),
        cmocka_unit_test(test_bpf_attach_reported),
        cmocka_unit_test(test_fd_high_bits),
        cmocka_unit_test(test_pidfd_getfd_is_access),
        cmocka_unit_test(test_reflink_clone_is_write),
        cmocka_unit_test(test_proc_mem_write_is_access),
        cmocka_unit_test(test_ringbuf_full_is_counted),
        cmocka_unit_test(test_write_track_evictions_counted),
        cmocka_unit_test(test_load_leaves_out_what_fails),
        cmocka_unit_test(test_wakeups_per_drain),
        cmocka_unit_test(test_settings_checked),
        cmocka_unit_test(test_lsm_state_without_securityfs),
        cmocka_unit_test(test_not_watched_counted_once),
    };
    /* EDR_TEST_FILTER=test_name (cmocka's wildcards): one test, or a few */
    if (getenv("EDR_TEST_FILTER")) cmocka_set_test_filter(getenv("EDR_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
