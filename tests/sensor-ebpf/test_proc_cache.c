/* Process cache: ids agree with /proc, parents link, replacement on pid reuse, sha256 and container
 * ids, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proc_cache.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static const uint8_t host[EDR_ID_LEN] = {1, 2, 3};
static const uint8_t boot[EDR_ID_LEN] = {9, 8, 7};

static void test_sha256_vectors(void **state)
{
    static const char *abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    static const char *empty_hex =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    static const char *long_hex =
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    uint8_t out[32], want[32];
    edr_sha256("abc", 3, out);
    edr_unhex(abc_hex, want, 32);
    assert_memory_equal(out, want, 32);
    edr_sha256("", 0, out);
    edr_unhex(empty_hex, want, 32);
    assert_memory_equal(out, want, 32);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    edr_sha256(m, strlen(m), out);
    edr_unhex(long_hex, want, 32);
    assert_memory_equal(out, want, 32);
}

static void test_container_id(void **state)
{
    char out[65];
    const char *id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
    char cg[256];
    snprintf(cg, sizeof(cg), "0::/system.slice/docker-%s.scope\n", id);
    edr_proc_container_id(cg, out);
    assert_string_equal(out, id);
    snprintf(cg, sizeof(cg), "0::/kubepods/besteffort/pod1234/%s", id);
    edr_proc_container_id(cg, out);
    assert_string_equal(out, id);
    /* not containers: no id, no crash */
    edr_proc_container_id("0::/user.slice/user-0.slice/session-1.scope", out);
    assert_string_equal(out, "");
    edr_proc_container_id("", out);
    assert_string_equal(out, "");
    edr_proc_container_id(NULL, out);
    assert_string_equal(out, "");
    char longhex[200];
    memset(longhex, 'a', sizeof(longhex) - 1);
    longhex[sizeof(longhex) - 1] = 0; /* 199 hex digits: not an id */
    edr_proc_container_id(longhex, out);
    assert_string_equal(out, "");
}

static void test_put_get_replace(void **state)
{
    edr_proc_cache_t *c = edr_proc_cache_new(host, boot, 16);
    uint8_t id[EDR_ID_LEN];
    assert_non_null(c);
    edr_proc_t *p = edr_proc_cache_put(c, 100, 5000000000ull + 1234);
    assert_non_null(p);
    /* ids use the tick-truncated start: /proc and eBPF agree */
    edr_entity_id(host, boot, 100, edr_proc_start_key(5000000000ull), id);
    assert_memory_equal(p->id, id, EDR_ID_LEN);
    assert_ptr_equal(edr_proc_cache_get(c, 100, 5000000000ull + 999), p);
    /* same pid, another process: get says unknown, put replaces */
    assert_null(edr_proc_cache_get(c, 100, 9000000000ull));
    edr_proc_t *q = edr_proc_cache_put(c, 100, 9000000000ull);
    assert_non_null(q);
    assert_int_equal(edr_proc_cache_count(c), 1);
    assert_memory_not_equal(q->id, id, EDR_ID_LEN);
    edr_proc_cache_remove(c, 100);
    assert_null(edr_proc_cache_find(c, 100));
    assert_int_equal(edr_proc_cache_count(c), 0);
    /* fill to the bound: put refuses instead of overwriting */
    size_t n = 0;
    for (uint32_t pid = 1; pid < 5000; pid++)
        if (edr_proc_cache_put(c, pid, pid)) n++;
    assert_true(n > 0 && n < 5000);
    assert_int_equal(edr_proc_cache_count(c), n);
    for (uint32_t pid = 1; pid < 5000; pid++) {
        edr_proc_t *x = edr_proc_cache_find(c, pid);
        assert_true(x == NULL || x->tgid == pid);
    }
    edr_proc_cache_destroy(c);
    edr_proc_cache_destroy(NULL);
}

static int seen_self;
static void on_seed(edr_proc_t *p, const char *argv, size_t n, const char *cwd, void *ud)
{
    if (p->tgid == (uint32_t)getpid()) {
        seen_self = 1;
        assert_true(n > 0);
        assert_true(strstr(argv, "test_proc_cache") != NULL);
        assert_true(p->has_parent);
    }
}

/* Processes coming and going for a long time (pids cycling over a range larger
 * than the table, so removals shift entries back across the table's wrap):
 * every live process is found, no dead one is, and the count is exact. */
static void test_churn(void **state)
{
    enum { PIDS = 3000, LIVE = 600 };
    edr_proc_cache_t *c = edr_proc_cache_new(host, boot, 1024);
    static uint8_t live[PIDS];
    uint32_t ring[LIVE];
    size_t n_live = 0, head = 0;
    uint64_t x = 88172645463325252ull;
    assert_non_null(c);
    memset(live, 0, sizeof(live));
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t pid = 1 + (uint32_t)(x % (PIDS - 1));
        if (n_live == LIVE) { /* oldest exits */
            uint32_t old = ring[head];
            edr_proc_cache_remove(c, old);
            live[old] = 0;
            ring[head] = 0;
            head = (head + 1) % LIVE;
            n_live--;
        }
        if (live[pid]) continue;
        edr_proc_t *p = edr_proc_cache_put(c, pid, (uint64_t)step * 10000000ull);
        assert_non_null(p);
        live[pid] = 1;
        ring[(head + n_live) % LIVE] = pid;
        n_live++;
        if (step % 997 == 0) {
            assert_int_equal(edr_proc_cache_count(c), n_live);
            for (uint32_t q = 1; q < PIDS; q++) {
                edr_proc_t *f = edr_proc_cache_find(c, q);
                assert_int_equal(f != NULL, live[q]);
                if (f) assert_int_equal(f->tgid, q);
            }
        }
    }
    edr_proc_cache_destroy(c);
}

static void test_seed(void **state)
{
    edr_proc_cache_t *c = edr_proc_cache_new(host, boot, 4096);
    assert_non_null(c);
    int n = edr_proc_cache_seed(c, "/proc", on_seed, NULL);
    assert_true(n > 0);
    assert_true(seen_self);
    edr_proc_t *self = edr_proc_cache_find(c, (uint32_t)getpid());
    edr_proc_t *parent = edr_proc_cache_find(c, (uint32_t)getppid());
    assert_non_null(self);
    assert_non_null(parent);
    assert_memory_equal(self->parent_id, parent->id, EDR_ID_LEN);
    assert_int_equal(self->ppid, (uint32_t)getppid());
    edr_proc_cache_destroy(c);
    /* a missing /proc is an error, not a crash */
    c = edr_proc_cache_new(host, boot, 16);
    assert_true(edr_proc_cache_seed(c, "/nonexistent-proc", NULL, NULL) < 0);
    edr_proc_cache_destroy(c);
}

/* A fake /proc: pid with ppid, started at start_ticks (clock ticks since boot). */
static void fake_proc(const char *root, uint32_t pid, uint32_t ppid, unsigned long long start_ticks)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%u", root, pid);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/%u/stat", root, pid);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* fields 4 (ppid) .. 22 (starttime); flags (9) 0: not a kernel thread */
    fprintf(f, "%u (p%u) S %u 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 %llu\n", pid, pid, ppid, start_ticks);
    fclose(f);
}

static int seed_linked;
static void on_seed_link(edr_proc_t *p, const char *argv, size_t n, const char *cwd, void *ud)
{
    (void)argv, (void)n, (void)cwd, (void)ud;
    if (p->ppid && p->has_parent) seed_linked++;
}

/* Parents and children started in the same clock tick (pids wrapped: the
 * child has the smaller pid), listed children first: every child still gets
 * its parent's id, whatever order the seed sorts them in. */
static void test_seed_same_tick(void **state)
{
    (void)state;
    enum { PAIRS = 64 };
    char root[] = "/tmp/edr-pc-proc-XXXXXX", cmd[128];
    assert_non_null(mkdtemp(root));
    fake_proc(root, 900, 0, 100); /* a root above them all, older */
    for (uint32_t i = 0; i < PAIRS; i++)
        fake_proc(root, 5000 + i, 900, 500);
    for (uint32_t i = 0; i < PAIRS; i++)
        fake_proc(root, 100 + i, 5000 + i, 500);
    edr_proc_cache_t *c = edr_proc_cache_new(host, boot, 1024);
    assert_non_null(c);
    seed_linked = 0;
    assert_int_equal(edr_proc_cache_seed(c, root, on_seed_link, NULL), 2 * PAIRS + 1);
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t tick = 1000000000ull / (uint64_t)(hz > 0 ? hz : 100);
    for (uint32_t i = 0; i < PAIRS; i++) {
        edr_proc_t *child = edr_proc_cache_find(c, 100 + i);
        uint8_t want[EDR_ID_LEN];
        assert_non_null(child);
        assert_int_equal(child->ppid, 5000 + i);
        if (!child->has_parent) fail_msg("child %u: no parent link", 100 + i);
        edr_entity_id(host, boot, 5000 + i, 500 * tick, want);
        assert_memory_equal(child->parent_id, want, EDR_ID_LEN);
    }
    /* and each callback saw the link already made */
    assert_int_equal(seed_linked, 2 * PAIRS);
    edr_proc_cache_destroy(c);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static void test_exe_hash(void **state)
{
    edr_proc_cache_t *c = edr_proc_cache_new(host, boot, 16);
    char path[] = "/tmp/edr-pc-XXXXXX";
    int fd = mkstemp(path);
    struct stat st;
    uint8_t out[32], want[32];
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_equal(stat(path, &st), 0);
    uint64_t kdev = ((uint64_t)major(st.st_dev) << 20) | minor(st.st_dev);
    uint64_t mt = edr__stat_change_ns(&st); /* mtime and ctime */
    int rc = edr_proc_cache_exe_hash(c, path, kdev, st.st_ino, mt, 3, out);
    assert_int_equal(rc, 0); /* queued, not computed on the caller's path */
    for (int i = 0; i < 200 && rc == 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        rc = edr_proc_cache_exe_hash(c, path, kdev, st.st_ino, mt, 3, out);
    }
    assert_int_equal(rc, 1);
    edr_sha256("abc", 3, want);
    assert_memory_equal(out, want, 32);
    /* identity mismatch (size changed): never a wrong hash */
    rc = edr_proc_cache_exe_hash(c, path, kdev, st.st_ino, mt, 4, out);
    for (int i = 0; i < 200 && rc == 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        rc = edr_proc_cache_exe_hash(c, path, kdev, st.st_ino, mt, 4, out);
    }
    assert_int_equal(rc, -1);
    unlink(path);
    edr_proc_cache_destroy(c);
}

/* A FIFO swapped in at an executable's path (anyone who can write the
 * directory can) is not opened for reading in a way that waits for a writer:
 * the request fails, the worker goes on to the next file, and the cache stops. */
static void test_exe_hash_fifo(void **state)
{
    (void)state;
    edr_proc_cache_t *c = edr_proc_cache_new(host, boot, 16);
    char dir[] = "/tmp/edr-pc-fifo-XXXXXX", fifo[64], file[64];
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/exe", dir);
    snprintf(file, sizeof(file), "%s/real", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    struct stat st;
    uint8_t out[32], want[32];
    assert_int_equal(stat(fifo, &st), 0);
    uint64_t kdev = ((uint64_t)major(st.st_dev) << 20) | minor(st.st_dev);
    /* the identity the exec saw: the FIFO's own, so that only its type can refuse it */
    int rc = edr_proc_cache_exe_hash(c, fifo, kdev, st.st_ino, 0, (uint64_t)st.st_size, out);
    for (int i = 0; i < 200 && rc == 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        rc = edr_proc_cache_exe_hash(c, fifo, kdev, st.st_ino, 0, (uint64_t)st.st_size, out);
    }
    assert_int_equal(rc, -1);
    /* and the worker still serves the next one */
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_equal(stat(file, &st), 0);
    rc = edr_proc_cache_exe_hash(c, file, kdev, st.st_ino, 0, 3, out);
    for (int i = 0; i < 200 && rc == 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        rc = edr_proc_cache_exe_hash(c, file, kdev, st.st_ino, 0, 3, out);
    }
    assert_int_equal(rc, 1);
    edr_sha256("abc", 3, want);
    assert_memory_equal(out, want, 32);
    edr_proc_cache_destroy(c); /* returns: the worker is not stuck in an open */
    unlink(fifo);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),  cmocka_unit_test(test_container_id),
        cmocka_unit_test(test_put_get_replace), cmocka_unit_test(test_seed),
        cmocka_unit_test(test_exe_hash),        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_exe_hash_fifo),   cmocka_unit_test(test_seed_same_tick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
