/* bench sensor-overhead workload: fork+exec, file create/write/rename/delete and loopback connects
 * at fixed rates; counts what a sensor saw. */
#include "edr/arena.h"
#include "edr/jsonl.h"

#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/filter.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Steady rate: waits until operation i of a stream of `rate` per second that
 * started at t0 is due; returns 0 once the run's time is over. Late
 * operations are not skipped (they run back to back), so the achieved rate
 * is the target unless the machine cannot keep up. */
static int pace(double t0, double secs, uint64_t i, double rate)
{
    double due = t0 + (double)i / rate, now = now_s();
    if (due >= t0 + secs || now >= t0 + secs) return 0;
    if (due > now + 0.002) { /* sleep in steps of 2 ms or more: few timer wakeups */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (due - now);
        ts.tv_sec = (time_t)at;
        ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    return 1;
}

static volatile int stop_accept;

static void *acceptor(void *arg)
{
    int ls = *(int *)arg;
    while (!stop_accept) {
        int c = accept(ls, NULL, NULL);
        if (c >= 0) {
            char b[8];
            ssize_t r = read(c, b, sizeof(b));
            (void)r;
            close(c);
        }
    }
    return NULL;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The smallest program: a static x86-64 ELF whose entry calls exit_group(0).
 * Its exec costs ~70 us of CPU here against ~700 us for the dynamically
 * linked /usr/bin/true, which is what lets 2,000 exec/s fit on 2 cores. */
static int write_tiny_elf(const char *path)
{
#if defined(__x86_64__)
    static const unsigned char code[] = {0x31, 0xff,                   /* xor edi, edi */
                                         0xb8, 0xe7, 0x00, 0x00, 0x00, /* mov eax, 231 */
                                         0x0f, 0x05};                  /* syscall */
    struct {
        Elf64_Ehdr e;
        Elf64_Phdr p;
        unsigned char code[sizeof(code)];
    } __attribute__((packed)) img;
    const uint64_t base = 0x400000;
    memset(&img, 0, sizeof(img));
    memcpy(img.e.e_ident, ELFMAG, SELFMAG);
    img.e.e_ident[EI_CLASS] = ELFCLASS64;
    img.e.e_ident[EI_DATA] = ELFDATA2LSB;
    img.e.e_ident[EI_VERSION] = EV_CURRENT;
    img.e.e_type = ET_EXEC;
    img.e.e_machine = EM_X86_64;
    img.e.e_version = EV_CURRENT;
    img.e.e_entry = base + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
    img.e.e_phoff = sizeof(Elf64_Ehdr);
    img.e.e_ehsize = sizeof(Elf64_Ehdr);
    img.e.e_phentsize = sizeof(Elf64_Phdr);
    img.e.e_phnum = 1;
    img.p.p_type = PT_LOAD;
    img.p.p_flags = PF_R | PF_X;
    img.p.p_vaddr = img.p.p_paddr = base;
    img.p.p_filesz = img.p.p_memsz = sizeof(img);
    img.p.p_align = 0x1000;
    memcpy(img.code, code, sizeof(code));
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0700);
    if (fd < 0) return -1;
    int ok = write(fd, &img, sizeof(img)) == (ssize_t)sizeof(img);
    return close(fd) == 0 && ok ? 0 : -1;
#else
    (void)path;
    return -1;
#endif
}

static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    ssize_t n;
    int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_WRONLY | O_TRUNC, 0700), ok = 1;
    if (in < 0 || out < 0) ok = 0;
    while (ok && (n = read(in, buf, sizeof(buf))) > 0)
        ok = write(out, buf, (size_t)n) == n;
    if (in >= 0) close(in);
    if (out >= 0 && close(out) != 0) ok = 0;
    return ok ? 0 : -1;
}

typedef struct {
    const char *dir;
    double t0, secs, rate;
    uint64_t creates, writes, renames, deletes, failed;
} files_job_t;

/* File operations in cycles of three: create (open O_CREAT + one write +
 * close), rename, delete. Counts each operation that succeeded. */
static void *files_thread(void *arg)
{
    files_job_t *j = arg;
    double cycle_rate = j->rate / 3.0;
    for (uint64_t i = 0; pace(j->t0, j->secs, i, cycle_rate); i++) {
        char a[4200], b[4200];
        snprintf(a, sizeof(a), "%s/f-%llu", j->dir, (unsigned long long)i);
        snprintf(b, sizeof(b), "%s/g-%llu", j->dir, (unsigned long long)i);
        int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0) {
            j->failed++;
            continue;
        }
        j->creates++;
        if (write(fd, "workload data\n", 14) == 14)
            j->writes++;
        else
            j->failed++;
        close(fd);
        if (rename(a, b) == 0) {
            j->renames++;
            if (unlink(b) == 0)
                j->deletes++;
            else
                j->failed++;
        } else {
            j->failed++;
            unlink(a);
        }
    }
    return NULL;
}

typedef struct {
    struct sockaddr_in sa;
    double t0, secs, rate;
    uint64_t connects, failed;
} conns_job_t;

static void *conns_thread(void *arg)
{
    conns_job_t *j = arg;
    for (uint64_t i = 0; j->rate > 0 && pace(j->t0, j->secs, i, j->rate); i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c >= 0 && connect(c, (struct sockaddr *)&j->sa, sizeof(j->sa)) == 0) {
            j->connects++;
            if (write(c, "x", 1) != 1) j->failed++;
        } else {
            j->failed++;
        }
        if (c >= 0) close(c);
    }
    return NULL;
}

/* run DIR SECONDS EXEC_PER_S FILE_OPS_PER_S CONNECTS_PER_S [tiny|true]
 * Three paced streams on their own threads: execs (posix_spawn, i.e.
 * vfork+exec, of IMAGE copied into DIR), file operations, loopback connects.
 * Prints what succeeded, the achieved rates and the CPU time of the workload
 * (all its threads and its reaped children). */
static int run(int argc, char **argv)
{
    const char *dir = argv[0];
    double secs = atof(argv[1]);
    double exec_rate = atof(argv[2]), file_rate = atof(argv[3]), conn_rate = atof(argv[4]);
    const char *image = argc > 5 ? argv[5] : "tiny";
    char exe_path[4096], pids_path[4096];
    snprintf(exe_path, sizeof(exe_path), "%s/wl-true", dir);
    snprintf(pids_path, sizeof(pids_path), "%s/pids", dir);
    if (strcmp(image, "tiny") == 0 && write_tiny_elf(exe_path) != 0) image = "true";
    if (strcmp(image, "true") == 0 && copy_file("/usr/bin/true", exe_path) != 0) {
        fprintf(stderr, "workload: cannot write %s\n", exe_path);
        return 1;
    }
    FILE *pf = fopen(pids_path, "w");
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (!pf || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 512) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl))
        return 1;
    pthread_t th_acc, th_files, th_conns;
    pthread_create(&th_acc, NULL, acceptor, &ls);
    uint64_t n_exec = 0, failed = 0;
    double t0 = now_s() + 0.01, c0 = cpu_s(RUSAGE_SELF), ch0 = cpu_s(RUSAGE_CHILDREN);
    files_job_t fj = {.dir = dir, .t0 = t0, .secs = secs, .rate = file_rate};
    conns_job_t cj = {.sa = sa, .t0 = t0, .secs = secs, .rate = conn_rate};
    pthread_create(&th_files, NULL, files_thread, &fj);
    pthread_create(&th_conns, NULL, conns_thread, &cj);
    /* argv carries the exec's number, so that a sensor's argv can be checked
     * exactly (count-jsonl) */
    char seq[24];
    char *const targv[] = {exe_path, (char *)"edr-workload", seq, NULL};
    for (uint64_t i = 0; exec_rate > 0 && pace(t0, secs, i, exec_rate); i++) {
        pid_t pid;
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)i);
        if (posix_spawn(&pid, exe_path, NULL, NULL, targv, environ) == 0) {
            fprintf(pf, "%d %llu\n", (int)pid, (unsigned long long)i);
            n_exec++;
        } else {
            failed++;
        }
        if ((i & 15) == 0)
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
    }
    pthread_join(th_files, NULL);
    pthread_join(th_conns, NULL);
    while (waitpid(-1, NULL, 0) > 0)
        ;
    double wall = now_s() - t0;
    double cpu = cpu_s(RUSAGE_SELF) - c0 + cpu_s(RUSAGE_CHILDREN) - ch0;
    stop_accept = 1;
    shutdown(ls, SHUT_RDWR); /* wakes accept() without a connection of its own */
    pthread_join(th_acc, NULL);
    close(ls);
    fclose(pf);
    uint64_t file_ops = fj.creates + fj.renames + fj.deletes;
    printf("generated exec %llu file_ops %llu connects %llu failed %llu cpu_s %.3f wall_s %.3f "
           "port %u writes %llu exec_rate %.0f file_rate %.0f image %s\n",
           (unsigned long long)n_exec, (unsigned long long)file_ops,
           (unsigned long long)cj.connects, (unsigned long long)(failed + fj.failed + cj.failed),
           cpu, wall, ntohs(sa.sin_port), (unsigned long long)fj.writes, (double)n_exec / secs,
           (double)file_ops / secs, image);
    return 0;
}

typedef struct {
    int pid;
    uint64_t seq;
} spawned_t;

static int cmp_spawned(const void *a, const void *b)
{
    const spawned_t *x = a, *y = b;
    return x->pid != y->pid ? (x->pid < y->pid ? -1 : 1) : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Marks item n of a kind as seen; 1 the first time. Grows the map. */
static int mark(uint8_t **map, size_t *cap, uint64_t n)
{
    if (n >= (1u << 26)) return 0;
    if (n >= *cap) {
        size_t nc = *cap ? *cap : 65536;
        while (nc <= n)
            nc *= 2;
        uint8_t *m = realloc(*map, nc);
        if (!m) return 0;
        memset(m + *cap, 0, nc - *cap);
        *map = m;
        *cap = nc;
    }
    if ((*map)[n]) return 0;
    (*map)[n] = 1;
    return 1;
}

/* The number N of DIR/<prefix>N, or -1. */
static long long numbered(const char *path, const char *dir, size_t dl, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (!path || strncmp(path, dir, dl) != 0 || path[dl] != '/' ||
        strncmp(path + dl + 1, prefix, pl) != 0)
        return -1;
    const char *d = path + dl + 1 + pl;
    char *end;
    if (*d < '0' || *d > '9') return -1;
    long long n = strtoll(d, &end, 10);
    return *end ? -1 : n;
}

static int is_loopback4(const Edr__V1__Endpoint *ep)
{
    static const uint8_t lo[4] = {127, 0, 0, 1};
    return ep && ep->ip.len == 4 && memcmp(ep->ip.data, lo, 4) == 0;
}

/* count-jsonl JSONL DIR PORT: what our sensor saw of the workload, kind by
 * kind, each operation at most once and only when complete: execs of the
 * spawned pids (exec_argv: with the exact argv the workload passed), files
 * by their exact paths (rename: old and new path), connects to the
 * workload's listener with both endpoints (127.0.0.1, local port set). */
static int count(char **argv)
{
    const char *jl = argv[0], *dir = argv[1];
    unsigned port = (unsigned)atoi(argv[2]);
    char pids_path[4096];
    snprintf(pids_path, sizeof(pids_path), "%s/pids", dir);
    FILE *pf = fopen(pids_path, "r");
    FILE *f = fopen(jl, "r");
    if (!pf || !f) return 1;
    spawned_t *sp = NULL;
    size_t n = 0, cap = 0;
    int v;
    unsigned long long q;
    while (fscanf(pf, "%d %llu", &v, &q) == 2) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            sp = realloc(sp, cap * sizeof(*sp));
        }
        sp[n].pid = v;
        sp[n++].seq = q;
    }
    fclose(pf);
    if (n) qsort(sp, n, sizeof(*sp), cmp_spawned);
    uint8_t *seen = calloc(n + 1, 1);
    uint8_t *m_create = NULL, *m_write = NULL, *m_rename = NULL, *m_delete = NULL;
    size_t c_create = 0, c_write = 0, c_rename = 0, c_delete = 0;
    size_t dl = strlen(dir);
    uint64_t execs = 0, exec_argv = 0, creates = 0, writes = 0, renames = 0, deletes = 0;
    uint64_t conns = 0, drops = 0, hash_late = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    while ((len = getline(&line, &lcap, f)) > 0) {
        Edr__V1__Event *e;
        uint64_t t;
        uint8_t host[16];
        const char *hn;
        if (edr_jsonl_parse_line(line, (size_t)len, &a, &e, &t, host, &hn, NULL, 0) == 0) {
            switch (e->body_case) {
            case EDR__V1__EVENT__BODY_PROCESS_START: {
                const Edr__V1__ProcessStart *ps = e->process_start;
                spawned_t key = {(int)e->pid, 0};
                char *end = NULL;
                int argv_ok = ps->n_argv == 3 && !strcmp(ps->argv[1], "edr-workload") &&
                              ps->argv[2][0] && (key.seq = strtoull(ps->argv[2], &end, 10), !*end);
                /* first entry of this pid, then the one with its seq */
                size_t lo = 0, hi = n;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (sp[mid].pid < key.pid) lo = mid + 1;
                    else hi = mid;
                }
                size_t hit = n;
                for (size_t i = lo; i < n && sp[i].pid == key.pid; i++) {
                    if (seen[i]) continue;
                    if (argv_ok && sp[i].seq == key.seq) {
                        hit = i;
                        break;
                    }
                    if (hit == n) hit = i;
                }
                if (hit < n) {
                    seen[hit] = 1;
                    execs++;
                    exec_argv += argv_ok && sp[hit].seq == key.seq;
                }
                break;
            }
            case EDR__V1__EVENT__BODY_FILE_CREATE: {
                long long k = numbered(e->file_create->path, dir, dl, "f-");
                creates += k >= 0 && mark(&m_create, &c_create, (uint64_t)k);
                break;
            }
            case EDR__V1__EVENT__BODY_FILE_WRITE: {
                long long k = numbered(e->file_write->path, dir, dl, "f-");
                writes += k >= 0 && mark(&m_write, &c_write, (uint64_t)k);
                break;
            }
            case EDR__V1__EVENT__BODY_FILE_RENAME: {
                long long k = numbered(e->file_rename->old_path, dir, dl, "f-");
                renames += k >= 0 && numbered(e->file_rename->new_path, dir, dl, "g-") == k &&
                           mark(&m_rename, &c_rename, (uint64_t)k);
                break;
            }
            case EDR__V1__EVENT__BODY_FILE_DELETE: {
                long long k = numbered(e->file_delete->path, dir, dl, "g-");
                deletes += k >= 0 && mark(&m_delete, &c_delete, (uint64_t)k);
                break;
            }
            case EDR__V1__EVENT__BODY_NETWORK: {
                const Edr__V1__Network *nw = e->network;
                conns += nw->action == EDR__V1__NETWORK__ACTION__CONNECT && nw->remote &&
                         nw->remote->port == port && is_loopback4(nw->remote) &&
                         is_loopback4(nw->local) && nw->local->port != 0;
                break;
            }
            case EDR__V1__EVENT__BODY_SENSOR_HEALTH: {
                uint64_t d = 0, hl = 0;
                for (size_t i = 0; i < e->sensor_health->n_drops; i++) {
                    const Edr__V1__SensorHealth__Drop *dr = e->sensor_health->drops[i];
                    if (dr->source && !strcmp(dr->source, "sha256"))
                        hl += dr->count; /* an event shipped without its hash, not lost */
                    else
                        d += dr->count;
                }
                drops = d; /* cumulative: the last report counts */
                hash_late = hl;
                break;
            }
            default:
                break;
            }
        }
        edr_arena_reset(&a);
    }
    printf("seen exec %llu file_ops %llu connects %llu drops %llu creates %llu writes %llu "
           "renames %llu deletes %llu exec_argv %llu hash_late %llu\n",
           (unsigned long long)execs, (unsigned long long)(creates + renames + deletes),
           (unsigned long long)conns, (unsigned long long)drops, (unsigned long long)creates,
           (unsigned long long)writes, (unsigned long long)renames, (unsigned long long)deletes,
           (unsigned long long)exec_argv, (unsigned long long)hash_late);
    free(line);
    free(sp);
    free(seen);
    free(m_create);
    free(m_write);
    free(m_rename);
    free(m_delete);
    fclose(f);
    edr_arena_close(&a);
    return 0;
}

/* loop DIR KIND N: N back-to-back operations of one kind, unpaced, and the
 * CPU time per operation (this process and its reaped children), for
 * per-operation costs steadier than the paced mix gives:
 *   syscall  getppid(), which no sensor hooks (what every syscall pays);
 *   file     open(O_CREAT)+write+close, rename, unlink of one file in DIR;
 *   spawn    posix_spawn of the tiny ELF (written to DIR) and waitpid. */
static int loop(const char *dir, const char *kind, long n)
{
    char a[4096], b[4096];
    snprintf(a, sizeof(a), "%s/wl-true", dir);
    if (!strcmp(kind, "spawn") && write_tiny_elf(a) != 0) {
        fprintf(stderr, "workload: cannot write %s\n", a);
        return 1;
    }
    char *const targv[] = {a, (char *)"edr-loop", NULL};
    double c0 = cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN);
    long failed = 0;
    for (long i = 0; i < n; i++) {
        if (!strcmp(kind, "syscall")) {
            (void)getppid();
        } else if (!strcmp(kind, "file")) {
            snprintf(a, sizeof(a), "%s/f-%ld", dir, i);
            snprintf(b, sizeof(b), "%s/g-%ld", dir, i);
            int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
            failed += fd < 0 || write(fd, "x", 1) != 1;
            if (fd >= 0) close(fd);
            failed += rename(a, b) != 0 || unlink(b) != 0;
        } else if (!strcmp(kind, "spawn")) {
            pid_t pid;
            int st;
            if (posix_spawn(&pid, a, NULL, NULL, targv, environ) != 0 || waitpid(pid, &st, 0) < 0)
                failed++;
        } else {
            fprintf(stderr, "workload: unknown loop kind '%s'\n", kind);
            return 2;
        }
    }
    double cpu = cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN) - c0;
    printf("loop %s n %ld failed %ld cpu_ns_per_op %.1f\n", kind, n, failed, cpu / (double)n * 1e9);
    return failed ? 1 : 0;
}

/* hold: procs processes, each with fds open descriptors (/dev/null), of
 * which socks are UDP sockets, one of those with a classic filter: what the
 * sensor's descriptor scan walks (sensor-scan). Prints "holding N" (descriptors
 * in all), then waits to be killed (its children die with it). */
static int hold(int procs, int fds, int socks)
{
    struct rlimit r = {(rlim_t)fds + 64, (rlim_t)fds + 64};
    struct sock_filter ins[1] = {{BPF_RET | BPF_K, 0, 0, 0}};
    struct sock_fprog fp = {.len = 1, .filter = ins};
    int ready[2];
    if (setrlimit(RLIMIT_NOFILE, &r) != 0 || pipe(ready) != 0) {
        perror("hold");
        return 1;
    }
    for (int p = 0; p < procs; p++) {
        pid_t c = fork();
        if (c < 0) return 1;
        if (c) continue;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int nul = open("/dev/null", O_RDONLY), ok = nul >= 0;
        for (int i = 1; i < fds && ok; i++) {
            int fd = i <= socks ? socket(AF_INET, SOCK_DGRAM, 0) : dup(nul);
            ok = fd >= 0 && (i != 1 || i > socks ||
                             setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) == 0);
        }
        if (write(ready[1], ok ? "y" : "n", 1) != 1) _exit(1);
        for (;;)
            pause();
    }
    for (int p = 0; p < procs; p++) {
        char b = 'n';
        if (read(ready[0], &b, 1) != 1 || b != 'y') {
            fprintf(stderr, "hold: a process could not open its descriptors\n");
            return 1;
        }
    }
    printf("holding %ld\n", (long)procs * fds);
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "hold"))
        return hold(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "loop")) return loop(argv[2], argv[3], atol(argv[4]));
    if ((argc == 7 || argc == 8) && !strcmp(argv[1], "run")) return run(argc - 2, argv + 2);
    if (argc == 5 && !strcmp(argv[1], "count-jsonl")) return count(argv + 2);
    fprintf(stderr,
            "usage: bench_sensor_workload run DIR SECONDS EXEC/S FILEOPS/S CONNECTS/S [tiny|true]\n"
            "       bench_sensor_workload count-jsonl JSONL DIR PORT\n"
            "       bench_sensor_workload loop DIR syscall|file|spawn N\n"
            "       bench_sensor_workload hold PROCS DESCRIPTORS SOCKETS\n");
    return 2;
}
