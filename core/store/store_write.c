/* Store writer: one atomic WriteBatch per commit carrying blocks, indexes, dedup state and the consumed offset. */
#include "store_int.h"

#include "edr/cpus.h"
#include "edr/err.h"
#include "edr/jsonl.h"
#include "edr/log.h"
#include "edr/privdir.h"
#include "edr/vec.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* Per-batch scratch: entities touched by the batch. The records are kept
 * densely, in the order first seen; an index (open addressing, slots valid
 * when their generation equals the current one, so nothing is cleared
 * between batches) finds them by id. The index slots are small (24 bytes)
 * and the records are the first ones of their array: a batch of 1,000
 * events touches ~160 entities, and with one writer per shard and the
 * shards' batches interleaved (the collector's usual order) a table of
 * whole records (240-byte slots, ~1 MB a writer) missed the caches on
 * nearly every new entity. */
typedef struct ent {
    uint8_t id[16];
    Edr__V1__ProcessRecord rec;
} ent_t;

typedef struct ent_slot {
    uint8_t id[16];
    uint32_t gen;
    uint32_t idx; /* into recs */
} ent_slot_t;

/* An image executed by an entity in the batch (for the 'h' posting). */
typedef struct exec_ref {
    const uint8_t *sha; /* 32 bytes, in the batch being added */
    const uint8_t *ent; /* 16 bytes */
} exec_ref_t;

/* A file or remote-address posting waiting for its commit. The postings of
 * one entity in one hour bucket are gathered over all the blocks of a
 * commit into one key (post_flush): a path every host writes (a log, a
 * cache) is one key per commit, not one per block. */
typedef struct post_ref {
    uint64_t g;        /* hash of key and bucket */
    uint8_t k[1 + 16]; /* type | id: 8-byte path hash or 16-byte address */
    uint8_t kl;
    uint8_t head; /* post_flush: the first of its group */
    uint8_t br[BREF_LEN];
    uint32_t next, tail; /* post_flush: the group's next member; a head's last one */
} post_ref_t;

typedef struct hset_slot {
    uint64_t h;
    uint32_t gen;
} hset_slot_t;

/* A set of hashes met in the batch being added (the paths and remote
 * addresses it names). It starts small and doubles when half full, rather
 * than being sized for a batch of all-distinct values: a table that fits
 * what batches hold stays in the caches while the shards' writers take
 * turns (4,096 slots, 64 KiB a writer, were read at random per batch). */
typedef struct hset {
    hset_slot_t *slots;
    size_t cap, n; /* n: slots of the current generation */
    int stuck;     /* growing failed in this batch: not tried again */
} hset_t;

unsigned edr__store_fail_add;
unsigned edr__store_flushes, edr__store_flush_waits;
unsigned edr__store_fail_flush;

/* Index entries whose value only repeats what an earlier batch wrote: a
 * child's entry under its parent and an image's entry under a host, both
 * valued with the latest time bucket. The writer remembers, per slot of a
 * direct-mapped table, the hash of the last such key it wrote and the bucket
 * it wrote, and skips the put when both match. A slot taken by another key
 * only costs a rewrite; the table is emptied when a commit fails, so it never
 * claims a write the store lost. In the ingest bench about half of the
 * children entries of a batch are rewrites (an entity acts in many batches). */
#define WCACHE_SLOTS (1u << 16)

/* A writer without the WAL asked to write it (edr_store_writer_want_wal)
 * flushes every this many flush intervals (a minute by default). */
#define WAL_FLUSH_INTERVALS 60

typedef struct wcache_slot {
    uint64_t h;
    uint32_t bucket;
} wcache_slot_t;

/* What the writer remembers of a host between batches. */
typedef struct host_state {
    uint8_t id[16];
    int used;
    uint32_t num; /* per-shard host number (see BREF_LEN) */
    uint64_t last_seq;
    uint64_t first_seen, last_seen;
    uint32_t span_lead, span_lag; /* its own span (EDR__META_HOST_SPAN), 0 when none */
    char *hostname, *os, *kernel, *version;
} host_state_t;

struct edr_store_writer {
    char path[4096];
    rocksdb_t *db;
    rocksdb_options_t *db_opts;
    rocksdb_env_t *env;
    rocksdb_options_t *cf_opts[CF__COUNT];
    rocksdb_compactionfilter_t *filters[CF__COUNT];
    rocksdb_column_family_handle_t *cf[CF__COUNT];
    rocksdb_writeoptions_t *wo;
    rocksdb_writeoptions_t *wo_wal; /* no_wal: the same with the WAL */
    rocksdb_readoptions_t *ro;
    rocksdb_writebatch_t *wb;
    edr__retention_t *ret;

    int64_t offset;
    int offset_set;
    /* the furthest any stored block's events reach before (lead) and after
     * (lag) its key's bucket, in buckets; meta "span" (readers widen their
     * time-window scans by it) */
    uint32_t span_lead, span_lag;
    int write_failed; /* a write failed: the WAL writer is in an error state */
    int no_wal;       /* commits are durable once flushed (edr_store_opts_t) */
    uint64_t flush_every_ns, flushed_ns; /* no_wal: interval, last flush asked */
    uint64_t unflushed; /* no_wal: commits since then not in the WAL */
    /* no_wal: commits go to the WAL after all (wal_now) once asked to
     * (wal_want, edr_store_writer_want_wal) and what was committed without
     * it is flushed */
    int wal_want, wal_now;
    uint64_t logged; /* commits with the WAL since the last flush */
    uint64_t bg_errors;  /* no_wal: RocksDB's background error count last seen */
    int broken;       /* the write batch holds a half-added batch: never commit it */

    /* pending (added, not committed) */
    uint8_t (*pend_keys)[EDR_BLOCK_KEY_LEN];
    size_t n_pend, cap_pend;
    edr_store_writer_stats_t st, pend_st;

    /* host cache */
    host_state_t *hosts;
    size_t hosts_cap, n_hosts;
    uint32_t next_hostn; /* numbers given so far (committed or pending) */

    /* per-batch scratch */
    ent_slot_t *ents;
    size_t ents_cap;
    ent_t *recs; /* the batch's entities, n_recs of them */
    size_t n_recs, recs_cap;
    uint32_t gen;
    hset_t paths, remotes;
    wcache_slot_t *written; /* WCACHE_SLOTS, or NULL when out of memory (no skipping) */
    exec_ref_t *execs;
    size_t n_execs, execs_cap;
    post_ref_t *posts; /* the pending commit's file and remote postings */
    size_t n_posts, posts_cap;
    uint32_t *post_slots; /* post_flush: groups by hash, 1 + index of their head */
    size_t post_slots_cap;
    uint8_t *pack;
    size_t pack_cap;
    edr_arena_t arena;

    /* reclaim (see reclaim_retired): a thread running manual compactions */
    pthread_t reclaimer;
    int reclaimer_started;   /* joined at the next reclaim or at close */
    unsigned reclaims;       /* started since open */
    atomic_int reclaim_done; /* the thread has finished */
    atomic_int reclaim_stop; /* the writer failed or closes: no further family */
    uint64_t reclaim_held;   /* its share of pool.reclaim_held (the output's size) */
    int pooled;              /* counted in pool.writers */
    uint64_t min_free;       /* edr_store_opts_t.min_free, or 64 MiB */
};

/* What the writers of one process share. RocksDB's default Env, which every
 * shard's database uses, has one pool of compaction threads for the whole
 * process, sized to the largest need of any one database (max_background_jobs
 * 2: one). Left so, every shard's compactions, a reclaim among them, queued
 * on one thread: four shards' reclaims took 65 s one after another against
 * 18 s for one, and the ingesting shards' own compactions waited behind them
 * (review-1206m 8). The pool grows to one thread per open writer, up to the
 * CPUs the process may use (edr_cpu_budget: a container's quota, not the
 * host's CPUs, review-1206o 8): a collector has a shard per partition (16
 * in the ingest bench), and 16 compactions at once on two cores took 20-40 %
 * of its ingest rate. Flushes keep their one thread (each is short). Reclaims of several
 * shards can run at once, so the room each one asks for counts the output
 * the others may still write (reclaim_held). */
static struct {
    pthread_mutex_t mu;
    unsigned writers; /* open now */
    unsigned threads; /* the size the compaction pool was set to (never shrunk) */
    unsigned cpus;    /* edr_cpu_budget(), read at the first writer */
    uint64_t reclaim_held;
} pool = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

/* Counts a writer in (+1) or out (-1); on the way in, grows the pool. */
static void pool_count(rocksdb_env_t *env, int delta)
{
    pthread_mutex_lock(&pool.mu);
    pool.writers = delta > 0 ? pool.writers + 1 : pool.writers - 1;
    if (!pool.cpus) pool.cpus = edr_cpu_budget();
    unsigned want = pool.writers > pool.cpus ? pool.cpus : pool.writers;
    if (delta > 0 && want > 1 && want > pool.threads) {
        pool.threads = want;
        rocksdb_env_set_background_threads(env, (int)pool.threads);
    }
    pthread_mutex_unlock(&pool.mu);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A write or flush failed: the writer is done (its caller re-opens the
 * shard), and so is a reclaim of retired data: each of its compactions
 * starts with a flush, which after a failed write to the write-ahead log
 * aborts Debian's RocksDB 7.8 (see edr_store_writer_destroy; review-1206m
 * 9). Disabling manual compactions cancels the running one and refuses the
 * next. */
static void mark_failed(edr_store_writer_t *w)
{
    w->write_failed = 1;
    if (w->reclaimer_started && !atomic_load(&w->reclaim_done)) {
        atomic_store(&w->reclaim_stop, 1);
        rocksdb_disable_manual_compaction(w->db);
    }
}

void edr__store_rocksdb_said(int fatal, const char *msg)
{
    /* its errors are mostly of no consequence (a directory not found while
     * a new store is made) or come back to the writer as a failed call,
     * which says what failed: debug, but for the fatal ones */
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    if (fatal)
        edr_log_error("rocksdb: %.*s", (int)n, msg);
    else
        edr_log_debug("rocksdb: %.*s", (int)n, msg);
}

static int set_err(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "store %s: %s", path, what);
    return EDR_ESTORE;
}

static uint64_t rd_u64_value(const char *v, size_t n)
{
    return n == 8 ? edr__rd64((const uint8_t *)v) : 0;
}

/* Reads the count of host numbers given (meta "nhost"). 0 or EDR_ESTORE. */
static int load_hostn(edr_store_writer_t *w)
{
    char *rerr = NULL;
    size_t vl;
    char *v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], "nhost", 5, &vl, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", w->path, rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    w->next_hostn = v && vl == 4 ? edr__rd32((const uint8_t *)v) : 0;
    rocksdb_free(v);
    return 0;
}

edr_store_writer_t *edr_store_writer_open(const char *root, uint32_t shard,
                                          const edr_store_opts_t *opts, char *err, size_t errlen)
{
    edr_store_writer_t *w = calloc(1, sizeof(*w));
    char *rerr = NULL;
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    edr_arena_init(&w->arena, 64 << 10);
    w->ret = calloc(1, sizeof(*w->ret));
    if (!w->ret)
        goto fail;
    /* the store and the shard: directories only this user controls, made
     * 0700 before RocksDB writes into them (review-1206p-sec 1, 4) */
    int dfd = edr_private_dir_open(root, "store", NULL, err, errlen);
    if (dfd < 0) goto fail;
    close(dfd);
    edr__store_shard_path(root, shard, w->path, sizeof(w->path));
    if ((dfd = edr_private_dir_open(w->path, "store shard", NULL, err, errlen)) < 0) goto fail;
    close(dfd);
    w->db_opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(w->db_opts, 1);
    rocksdb_options_set_create_missing_column_families(w->db_opts, 1);
    rocksdb_options_set_max_background_jobs(w->db_opts, 2);
    rocksdb_options_set_keep_log_file_num(w->db_opts, 1);
    /* no preallocation: RocksDB reserves a write-ahead log the size of the
     * largest write buffer (1.1 x 64 MiB) and a 4 MiB MANIFEST with
     * fallocate, even when nothing goes to the log: ~75 MiB a shard at
     * every open, 5 GB for a 64-partition collector with an empty store,
     * past collector.min_free_disk and into edr_collector_store_bytes
     * (review-1206n-coll 1) */
    edr__rocksdb_no_fallocate(w->db_opts);
    rocksdb_options_set_max_log_file_size(w->db_opts, 4 << 20);
    /* a family whose memtable holds the oldest log's data is flushed once
     * the logs pass this, so the small ones (hosts, meta) cannot keep every
     * log since they last filled (review-1206k-store 5: 65 logs, 113 MB, at
     * a 1 MiB write buffer): about the data of the memtables themselves */
    uint64_t wbuf = opts && opts->write_buffer ? opts->write_buffer : (32u << 20);
    uint64_t walcap = wbuf * 8 < (16u << 20) ? (16u << 20) : wbuf * 8;
    rocksdb_options_set_max_total_wal_size(w->db_opts, walcap > (256u << 20) ? 256u << 20 : walcap);
    if (edr__rocksdb_log_errors_only(w->db_opts)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rocksdb_options_set_allow_concurrent_memtable_write(w->db_opts, 0); /* vector memtables */
    w->no_wal = opts && opts->no_wal && !opts->sync;
    w->min_free = opts && opts->min_free > (64u << 20) ? opts->min_free : (64u << 20);
    if (w->no_wal) /* the families reach disk together: offsets never ahead of data */
        rocksdb_options_set_atomic_flush(w->db_opts, 1);
    w->flush_every_ns = opts && opts->flush_interval_ns ? opts->flush_interval_ns : 1000000000ull;
    w->flushed_ns = mono_ns();
    /* compactions yield the CPU to the consuming thread (and to flushes,
     * which keep memtables from stalling writes): on a small machine they
     * otherwise take cycles from ingest; they still run on any idle core */
    w->env = rocksdb_create_default_env();
    rocksdb_env_lower_thread_pool_cpu_priority(w->env);
    rocksdb_options_set_env(w->db_opts, w->env);
    pool_count(w->env, +1);
    w->pooled = 1;
    edr__store_cf_options(w->cf_opts, opts, w->ret, w->filters);
    w->db = rocksdb_open_column_families(w->db_opts, w->path, CF__COUNT, edr__store_cf_names,
                                         (const rocksdb_options_t *const *)w->cf_opts, w->cf,
                                         &rerr);
    if (!w->db) {
        if (rerr && strstr(rerr, "lock file") && strstr(rerr, "temporarily unavailable"))
            snprintf(err, errlen, "store %s: %s (another process, a collector or an import, has "
                     "this shard open for writing)", w->path, rerr);
        else
            set_err(err, errlen, w->path, rerr ? rerr : "cannot open");
        goto fail;
    }
    w->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(w->wo, opts && opts->sync);
    rocksdb_writeoptions_disable_WAL(w->wo, w->no_wal);
    if (w->no_wal)
        w->wo_wal = rocksdb_writeoptions_create();
    w->ro = rocksdb_readoptions_create();
    w->wb = rocksdb_writebatch_create();
    w->written = calloc(WCACHE_SLOTS, sizeof(*w->written));
    uint32_t fmt;
    if (edr__store_format(w->db, w->ro, w->cf[CF_META], w->path, &fmt, err, errlen)) goto fail;
    if (fmt < EDR__STORE_FORMAT) { /* older readers would miss grouped postings */
        uint8_t fv[4];
        edr__be32(fv, EDR__STORE_FORMAT);
        rocksdb_put_cf(w->db, w->wo_wal ? w->wo_wal : w->wo, w->cf[CF_META], EDR__META_FORMAT,
                       strlen(EDR__META_FORMAT), (const char *)fv, 4, &rerr);
        if (rerr) goto fail_rerr;
    }
    size_t vl;
    char *v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], "cutoff", 6, &vl, &rerr);
    if (rerr)
        goto fail_rerr;
    if (v && vl == 4)
        w->ret->cutoff_bucket = edr__rd32((const uint8_t *)v);
    rocksdb_free(v);
    v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], EDR__META_SPAN, 4, &vl, &rerr);
    if (rerr)
        goto fail_rerr;
    if (v && vl == 8) {
        w->span_lead = edr__rd32((const uint8_t *)v);
        w->span_lag = edr__rd32((const uint8_t *)v + 4);
    }
    rocksdb_free(v);
    if (load_hostn(w) != 0)
        goto fail;
    return w;
fail_rerr:
    set_err(err, errlen, w->path, rerr);
fail:
    if (rerr)
        rocksdb_free(rerr);
    edr_store_writer_destroy(w);
    return NULL;
}

/* Flushes every column family's memtables to files, in one atomic flush
 * (without the WAL, a flush of one family at a time could leave the offsets
 * in meta ahead of the data after a crash between two), and waits when
 * wait. 0, or -1 with RocksDB's message in msg. */
static int flush_all(edr_store_writer_t *w, int wait, char *msg, size_t msglen)
{
    w->flushed_ns = mono_ns();
    w->unflushed = w->logged = 0;
    edr__store_flushes++;
    edr__store_flush_waits += wait != 0;
    if (edr__store_fail_flush && --edr__store_fail_flush == 0) {
        snprintf(msg, msglen, "IO error: flush failed (test)");
        return -1;
    }
    return edr__rocksdb_flush_cfs(w->db, w->cf, CF__COUNT, wait, msg, msglen);
}

int edr_store_writer_tick(edr_store_writer_t *w)
{
    if (!w->no_wal)
        return 0;
    /* a flush that failed in the background (a full disk) leaves RocksDB
     * retrying on its own, which may never end: the caller re-opens the
     * shard and reads again what was not flushed */
    uint64_t n = 0;
    char e[512];
    if (rocksdb_property_int(w->db, "rocksdb.background-errors", &n) == 0 && n > w->bg_errors) {
        /* a compaction's error counts too: a flush that works says the
         * commits are safe */
        w->bg_errors = n;
        if (!flush_all(w, 1, e, sizeof(e)))
            return 0;
        edr_log_error("store %s: a background job failed and a flush fails: %s", w->path, e);
        mark_failed(w);
        return EDR_EIO;
    }
    uint64_t now = mono_ns();
    if (w->wal_want != w->wal_now) {
        if (w->wal_want) {
            /* what was committed without the log reaches the disk before
             * the first commit with it: after a crash, the log must not
             * bring back a later offset over missing earlier commits. A
             * waiting flush, also when nothing is unflushed: it waits for a
             * timed flush still running and fails when that one failed */
            if (flush_all(w, 1, e, sizeof(e))) {
                edr_log_error("store %s: flush failed: %s", w->path, e);
                mark_failed(w);
                return EDR_EIO;
            }
            w->wal_now = 1;
            edr_log_debug("store %s: committing with the write-ahead log", w->path);
            return 0;
        } else {
            w->wal_now = 0; /* what the log holds is safe: nothing to flush first */
            w->flushed_ns = now;
            edr_log_debug("store %s: committing without the write-ahead log", w->path);
        }
    }
    /* with the log, a flush now and then (WAL_FLUSH_INTERVALS) keeps short
     * the log that readers and the next open replay */
    uint64_t due = w->wal_now ? WAL_FLUSH_INTERVALS * w->flush_every_ns : w->flush_every_ns;
    if (!(w->unflushed + w->logged) || now - w->flushed_ns < due)
        return 0;
    uint64_t unflushed = w->unflushed, logged = w->logged;
    if (!flush_all(w, 0, e, sizeof(e)))
        return 0;
    if (strstr(e, "Try again")) { /* writes are stopped for now (too many memtables or files) */
        w->unflushed = unflushed; /* tried again in flush_interval */
        w->logged = logged;
        return 0;
    }
    edr_log_error("store %s: flush failed: %s", w->path, e);
    mark_failed(w);
    return EDR_EIO;
}

static void hosts_clear(edr_store_writer_t *w)
{
    for (size_t i = 0; i < w->hosts_cap; i++) {
        host_state_t *h = &w->hosts[i];
        if (!h->used)
            continue;
        free(h->hostname);
        free(h->os);
        free(h->kernel);
        free(h->version);
    }
    free(w->hosts);
    w->hosts = NULL;
    w->hosts_cap = w->n_hosts = 0;
}

void edr_store_writer_destroy(edr_store_writer_t *w)
{
    if (!w)
        return;
    if (w->db && w->no_wal && w->write_failed) {
        /* no flush at close either (it could wait on the failed one) */
        char e[512];
        if (edr__rocksdb_no_flush_at_close(w->db, e, sizeof(e)))
            edr_log_warn("store %s: asking the close not to flush: %s", w->path, e);
        edr_log_warn("store %s: closed after a failed write or flush: commits not flushed yet "
                     "(nor in the write-ahead log) are dropped with their offsets (the writer "
                     "reads them again)",
                     w->path);
    }
    if (w->db && !w->write_failed) {
        /* Committed data still in memtables is on disk in the WAL; flushing
         * it now spares the next open a WAL replay (read, re-insert, then the
         * same flush), which made a restart on a busy store take seconds.
         * A failure only leaves the replay to the next open. Not after a
         * failed write: the flush would switch, and so close, a WAL writer
         * that saw an I/O error, which RocksDB 7.8 built with assertions (as
         * Debian's is) aborts on ("sync_without_flush_called_"), killing the
         * collector that was about to pause on a full disk. */
        char e[512];
        if (flush_all(w, 1, e, sizeof(e)))
            edr_log_warn("store %s: flush at close failed (%s): %s", w->path,
                         w->no_wal ? "what was committed since the last flush is read again"
                                   : "the next open replays the WAL",
                         e);
    }
    if (w->reclaimer_started) {
        /* a running reclaim ends at its next check (RocksDB returns
         * Incomplete); the family it was compacting drops its output (for
         * blocks, one full compaction), so the next retention run finds the
         * same retired bytes and starts over */
        atomic_store(&w->reclaim_stop, 1);
        rocksdb_disable_manual_compaction(w->db);
        pthread_join(w->reclaimer, NULL);
    }
    for (int i = 0; i < CF__COUNT; i++)
        if (w->cf[i])
            rocksdb_column_family_handle_destroy(w->cf[i]);
    if (w->db)
        rocksdb_close(w->db);
    for (int i = 0; i < CF__COUNT; i++) {
        if (w->cf_opts[i])
            rocksdb_options_destroy(w->cf_opts[i]);
        if (w->filters[i])
            rocksdb_compactionfilter_destroy(w->filters[i]);
    }
    if (w->db_opts)
        rocksdb_options_destroy(w->db_opts);
    if (w->pooled) pool_count(w->env, -1);
    if (w->env)
        rocksdb_env_destroy(w->env);
    if (w->wo)
        rocksdb_writeoptions_destroy(w->wo);
    if (w->wo_wal)
        rocksdb_writeoptions_destroy(w->wo_wal);
    if (w->ro)
        rocksdb_readoptions_destroy(w->ro);
    if (w->wb)
        rocksdb_writebatch_destroy(w->wb);
    hosts_clear(w);
    free(w->pend_keys);
    free(w->ents);
    free(w->recs);
    free(w->paths.slots);
    free(w->remotes.slots);
    free(w->written);
    free(w->execs);
    free(w->posts);
    free(w->post_slots);
    free(w->pack);
    free(w->ret);
    edr_arena_close(&w->arena);
    free(w);
}

int edr_store_writer_offset(edr_store_writer_t *w, int64_t *next_offset)
{
    char *rerr = NULL;
    size_t vl;
    char *v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], "offset", 6, &vl, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", w->path, rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    if (!v)
        return EDR_ENOENT;
    int rc = vl == 8 ? 0 : EDR_ESTORE;
    if (!rc)
        *next_offset = (int64_t)edr__rd64((const uint8_t *)v);
    rocksdb_free(v);
    return rc;
}

void edr_store_writer_set_offset(edr_store_writer_t *w, int64_t next_offset)
{
    w->offset = next_offset;
    w->offset_set = 1;
}

size_t edr_store_writer_pending(const edr_store_writer_t *w)
{
    return w->n_pend;
}

/* Longest sensor string (host name, OS, kernel, sensor version) a host's
 * record keeps, cut at a whole UTF-8 character; its batches keep the whole
 * value. A 4 MB host name in each of 300 tiny frames held 2 GB of the
 * collector's memory, and every batch of the host wrote its record again
 * (review-1206p-sec 2). */
#define HOST_STR_MAX 255

/* old, or a copy of s cut to HOST_STR_MAX bytes when it differs from it
 * (old is then freed); NULL s or "" keep old. */
static char *dup_str(char *old, const char *s)
{
    if (!s || !*s)
        return old;
    size_t n = strnlen(s, HOST_STR_MAX + 1);
    if (n > HOST_STR_MAX) {
        for (n = HOST_STR_MAX; n && ((unsigned char)s[n] & 0xc0) == 0x80; n--)
            ; /* s[n] starts the first character left out */
        if (n + 4 < HOST_STR_MAX) /* not UTF-8 at all: bytes, escaped when shown */
            n = HOST_STR_MAX;
    }
    if (old && strlen(old) == n && !memcmp(old, s, n)) return old;
    char *d = strndup(s, n);
    if (!d) return old; /* the old value stays: a name is not worth a failed batch */
    free(old);
    return d;
}

/* Finds or loads the cached state of a host; NULL when out of memory or on a read error. */
static host_state_t *host_get(edr_store_writer_t *w, const uint8_t id[16])
{
    if (w->n_hosts * 2 >= w->hosts_cap) {
        size_t ncap = w->hosts_cap ? w->hosts_cap * 2 : 64;
        host_state_t *n = calloc(ncap, sizeof(*n));
        if (!n)
            return NULL;
        for (size_t i = 0; i < w->hosts_cap; i++) {
            if (!w->hosts[i].used)
                continue;
            size_t j = XXH3_64bits(w->hosts[i].id, 16) & (ncap - 1);
            while (n[j].used)
                j = (j + 1) & (ncap - 1);
            n[j] = w->hosts[i];
        }
        free(w->hosts);
        w->hosts = n;
        w->hosts_cap = ncap;
    }
    size_t j = XXH3_64bits(id, 16) & (w->hosts_cap - 1);
    while (w->hosts[j].used) {
        if (!memcmp(w->hosts[j].id, id, 16))
            return &w->hosts[j];
        j = (j + 1) & (w->hosts_cap - 1);
    }
    host_state_t *h = &w->hosts[j];
    memset(h, 0, sizeof(*h));
    memcpy(h->id, id, 16);
    /* load what the store knows */
    char *rerr = NULL;
    size_t vl;
    uint8_t k[17];
    k[0] = 's';
    memcpy(k + 1, id, 16);
    char *v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], (const char *)k, 17, &vl, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", w->path, rerr);
        rocksdb_free(rerr);
        return NULL;
    }
    h->last_seq = v ? rd_u64_value(v, vl) : 0;
    rocksdb_free(v);
    k[0] = 'n';
    v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], (const char *)k, 17, &vl, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", w->path, rerr);
        rocksdb_free(rerr);
        return NULL;
    }
    int numbered = v && vl == 4;
    if (numbered)
        h->num = edr__rd32((const uint8_t *)v);
    rocksdb_free(v);
    if (numbered) {
        uint8_t xk[5];
        xk[0] = EDR__META_HOST_SPAN;
        edr__be32(xk + 1, h->num);
        v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], (const char *)xk, 5, &vl, &rerr);
        if (rerr) {
            edr_log_error("store %s: %s", w->path, rerr);
            rocksdb_free(rerr);
            return NULL;
        }
        if (v && vl == 8) {
            h->span_lead = edr__rd32((const uint8_t *)v);
            h->span_lag = edr__rd32((const uint8_t *)v + 4);
        }
        rocksdb_free(v);
    }
    v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_HOSTS], (const char *)id, 16, &vl, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", w->path, rerr);
        rocksdb_free(rerr);
        return NULL;
    }
    if (!numbered) {
        /* a new host: its number commits with its first block. Given only
         * once every read succeeded, so a failed lookup leaves no number
         * pending for a host the cache does not hold */
        uint8_t nk[5], nv[4];
        h->num = w->next_hostn++;
        edr__be32(nv, h->num);
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], (const char *)k, 17, (const char *)nv, 4);
        nk[0] = 'N';
        edr__be32(nk + 1, h->num);
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], (const char *)nk, 5, (const char *)id, 16);
        edr__be32(nv, w->next_hostn);
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], "nhost", 5, (const char *)nv, 4);
    }
    if (v) {
        Edr__V1__HostRecord *hr = edr__v1__host_record__unpack(NULL, vl, (const uint8_t *)v);
        if (hr) {
            h->first_seen = hr->first_seen_ns;
            h->last_seen = hr->last_seen_ns;
            h->hostname = dup_str(NULL, hr->hostname);
            h->os = dup_str(NULL, hr->os);
            h->kernel = dup_str(NULL, hr->kernel);
            h->version = dup_str(NULL, hr->sensor_version);
            edr__v1__host_record__free_unpacked(hr, NULL);
        }
        rocksdb_free(v);
    }
    h->used = 1;
    w->n_hosts++;
    return h;
}

static int pending_has(const edr_store_writer_t *w, const uint8_t bk[EDR_BLOCK_KEY_LEN])
{
    for (size_t i = 0; i < w->n_pend; i++)
        if (!memcmp(w->pend_keys[i], bk, EDR_BLOCK_KEY_LEN))
            return 1;
    return 0;
}

/* Is this (host, seq) stored or pending? 1 yes, 0 no, <0 error. */
static int already_stored(edr_store_writer_t *w, const uint8_t bk[EDR_BLOCK_KEY_LEN])
{
    if (pending_has(w, bk))
        return 1;
    char *rerr = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(w->db, w->ro, w->cf[CF_BLOCKS], (const char *)bk,
                              EDR_BLOCK_KEY_LEN, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", w->path, rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    int found = ps != NULL;
    rocksdb_pinnableslice_destroy(ps);
    return found;
}

#define HSET_MIN 64

static int hset_prepare(hset_t *s)
{
    s->n = 0;
    s->stuck = 0;
    if (s->cap)
        return 0;
    if (!(s->slots = calloc(HSET_MIN, sizeof(*s->slots))))
        return EDR_ENOMEM;
    s->cap = HSET_MIN;
    return 0;
}

/* Doubles the table, keeping the current generation's hashes. */
static int hset_grow(hset_t *s, uint32_t gen)
{
    size_t ncap = s->cap * 2;
    hset_slot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return EDR_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].gen != gen)
            continue;
        size_t j = (size_t)s->slots[i].h & (ncap - 1);
        while (ns[j].gen == gen)
            j = (j + 1) & (ncap - 1);
        ns[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    return 0;
}

/* Inserts h; returns 1 when it was new in this generation. Out of memory,
 * growing is not tried again in the batch, and once the table is three
 * quarters full h is not kept and is said to be new: its key is then
 * written twice, which only costs the write (review-1207s 1: a retry per
 * insert and probes through a full table made such a batch slow). */
static int hset_add(hset_t *s, uint64_t h, uint32_t gen)
{
    if ((s->n + 1) * 2 > s->cap && !s->stuck && hset_grow(s, gen))
        s->stuck = 1;
    if ((s->n + 1) * 4 > s->cap * 3)
        return 1;
    size_t j = (size_t)h & (s->cap - 1);
    while (s->slots[j].gen == gen) {
        if (s->slots[j].h == h)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j].gen = gen;
    s->slots[j].h = h;
    s->n++;
    return 1;
}

static int scratch_prepare(edr_store_writer_t *w, size_t n_events)
{
    size_t need = 16;
    while (need < n_events * 2 + 2)
        need <<= 1;
    if (w->ents_cap < need) {
        ent_slot_t *n = calloc(need, sizeof(*n));
        ent_t *l = malloc(need / 2 * sizeof(*l)); /* need / 2 > n_events */
        if (!n || !l) {
            free(n);
            free(l);
            return EDR_ENOMEM;
        }
        free(w->ents);
        free(w->recs);
        w->ents = n;
        w->recs = l;
        w->ents_cap = need;
        w->recs_cap = need / 2;
        w->gen = 0;
        if (w->paths.slots)
            memset(w->paths.slots, 0, w->paths.cap * sizeof(hset_slot_t));
        if (w->remotes.slots)
            memset(w->remotes.slots, 0, w->remotes.cap * sizeof(hset_slot_t));
    }
    if (hset_prepare(&w->paths) || hset_prepare(&w->remotes))
        return EDR_ENOMEM;
    if (++w->gen == 0) { /* wrapped: generations must be unique */
        memset(w->ents, 0, w->ents_cap * sizeof(*w->ents));
        memset(w->paths.slots, 0, w->paths.cap * sizeof(hset_slot_t));
        memset(w->remotes.slots, 0, w->remotes.cap * sizeof(hset_slot_t));
        w->gen = 1;
    }
    w->n_recs = 0;
    return 0;
}

/* 1 when entity id acts in the batch being added (has a record in it). */
static int ent_in_batch(const edr_store_writer_t *w, const uint8_t id[16])
{
    uint64_t h;
    memcpy(&h, id, 8);
    size_t j = (size_t)h & (w->ents_cap - 1);
    while (w->ents[j].gen == w->gen) {
        if (!memcmp(w->ents[j].id, id, 16))
            return 1;
        j = (j + 1) & (w->ents_cap - 1);
    }
    return 0;
}

static ent_t *ent_get(edr_store_writer_t *w, const Edr__V1__Event *e,
                      const ProtobufCBinaryData *host)
{
    uint64_t h;
    memcpy(&h, e->entity_id.data, 8);
    size_t j = (size_t)h & (w->ents_cap - 1);
    while (w->ents[j].gen == w->gen) {
        if (!memcmp(w->ents[j].id, e->entity_id.data, 16))
            return &w->recs[w->ents[j].idx];
        j = (j + 1) & (w->ents_cap - 1);
    }
    ent_slot_t *sl = &w->ents[j];
    sl->gen = w->gen;
    memcpy(sl->id, e->entity_id.data, 16);
    sl->idx = (uint32_t)w->n_recs; /* at most one new entity per event: recs_cap > n_events */
    ent_t *s = &w->recs[w->n_recs++];
    memcpy(s->id, e->entity_id.data, 16);
    Edr__V1__ProcessRecord init = EDR__V1__PROCESS_RECORD__INIT;
    s->rec = init;
    (void)host; /* entity and host id are implied by the key and first_block */
    s->rec.pid = e->pid;
    if (e->parent_entity_id.len == 16)
        s->rec.parent_entity_id = e->parent_entity_id;
    return s;
}

/* 1 when the index entry key (n bytes) valued with bucket must be written,
 * 0 when this writer already wrote exactly that (see WCACHE_SLOTS). */
static int wcache_fresh(edr_store_writer_t *w, const void *key, size_t n, uint32_t bucket)
{
    if (!w->written)
        return 1;
    uint64_t h = XXH3_64bits(key, n) | 1; /* never 0: an empty slot matches nothing */
    wcache_slot_t *sl = &w->written[(h >> 1) & (WCACHE_SLOTS - 1)];
    if (sl->h == h && sl->bucket == bucket) {
        w->pend_st.writes_saved++;
        return 0;
    }
    sl->h = h;
    sl->bucket = bucket;
    return 1;
}

/* Starts loading the slot of the written cache that key (n bytes) maps to:
 * the table is large and read at random, and the writers of the shards
 * take turns, so a lookup is a cache miss; asked for ahead, it overlaps
 * with the work done meanwhile. */
static inline void wcache_prefetch(const edr_store_writer_t *w, const void *key, size_t n)
{
    if (w->written)
        __builtin_prefetch(&w->written[((XXH3_64bits(key, n) | 1) >> 1) & (WCACHE_SLOTS - 1)], 1);
}

/* The key of child's entry under parent in the children index. */
static void kid_key(const uint8_t *parent, const uint8_t *child, uint8_t kk[KID_KEY_LEN])
{
    memcpy(kk, parent, KID_PARENT_LEN);
    memcpy(kk + KID_PARENT_LEN, child, KID_CHILD_LEN);
}

/* Writes the children-index entry kk valued with bucket, unless this writer
 * wrote exactly that already (wcache_fresh). */
static void put_kid(edr_store_writer_t *w, const uint8_t kk[KID_KEY_LEN], uint32_t bucket)
{
    uint8_t v[4];
    edr__be32(v, bucket);
    if (wcache_fresh(w, kk, KID_KEY_LEN, bucket))
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_KIDS], (const char *)kk, KID_KEY_LEN,
                                  (const char *)v, 4);
}

/* The two index keys an entity of the batch may write besides its record:
 * its entry under its parent ('kids') and its parent's touch ('P'). */
static void ent_keys(const ent_t *s, uint8_t kk[KID_KEY_LEN], uint8_t pk[17])
{
    kid_key(s->rec.parent_entity_id.data, s->id, kk);
    pk[0] = 'P';
    memcpy(pk + 1, s->rec.parent_entity_id.data, 16);
}

static void ent_prefetch(const edr_store_writer_t *w, const ent_t *s)
{
    if (s->rec.parent_entity_id.len != 16 || !w->written)
        return;
    uint8_t kk[KID_KEY_LEN], pk[17];
    ent_keys(s, kk, pk);
    wcache_prefetch(w, kk, sizeof(kk));
    wcache_prefetch(w, pk, sizeof(pk));
}

/* How many entities ahead ent_prefetch is asked for. */
#define ENT_PREFETCH 8

static uint8_t *pack_buf(edr_store_writer_t *w, size_t n)
{
    if (w->pack_cap < n) {
        size_t c = n < 4096 ? 4096 : n * 2;
        uint8_t *p = realloc(w->pack, c);
        if (!p)
            return NULL;
        w->pack = p;
        w->pack_cap = c;
    }
    return w->pack;
}

/* Notes the posting of entity id (type t, n bytes, hashed to h by the
 * caller) in block br for the commit; 0 or EDR_ENOMEM. */
static int post_add(edr_store_writer_t *w, uint8_t t, const void *id, size_t n, uint64_t h,
                    const uint8_t br[BREF_LEN])
{
    if (EDR_VEC_RESERVE(w->posts, w->posts_cap, w->n_posts + 1, 256)) return EDR_ENOMEM;
    post_ref_t *p = &w->posts[w->n_posts++];
    p->k[0] = t;
    memcpy(p->k + 1, id, n);
    p->kl = (uint8_t)(1 + n);
    memcpy(p->br, br, BREF_LEN);
    /* the group: id and bucket (bytes 4..7 of the reference); post_same
     * compares both, so a collision only costs a probe */
    p->g = (h ^ t) + edr__rd32(br + 4) * 0x9e3779b97f4a7c15ull;
    return 0;
}

static int put_path(edr_store_writer_t *w, const char *path, const uint8_t br[BREF_LEN])
{
    if (!path || !*path) return 0;
    uint64_t h = XXH3_64bits(path, strlen(path));
    if (!hset_add(&w->paths, h, w->gen)) return 0;
    uint8_t hb[8];
    edr__be64(hb, h);
    return post_add(w, POST_FILE, hb, 8, h, br);
}

static int put_hash(edr_store_writer_t *w, ProtobufCBinaryData sha, const uint8_t host[16],
                    const uint8_t ent[16], uint32_t bucket)
{
    if (sha.len != 32)
        return 0;
    uint8_t v[4];
    edr__be32(v, bucket);
    /* processes by image: gathered, one key per image and block (put_execs) */
    if (EDR_VEC_RESERVE(w->execs, w->execs_cap, w->n_execs + 1, 64))
        return EDR_ENOMEM;
    w->execs[w->n_execs].sha = sha.data;
    w->execs[w->n_execs].ent = ent;
    w->n_execs++;
    /* hosts by image: one key per (sha256, host), rewritten in place */
    uint64_t hh = XXH3_64bits(sha.data, 32);
    if (!hset_add(&w->remotes, hh ^ 0x9e3779b97f4a7c15ull, w->gen))
        return 0;
    uint8_t hk[1 + 32 + 16];
    hk[0] = POST_HASH_HOST;
    memcpy(hk + 1, sha.data, 32);
    memcpy(hk + 33, host, 16);
    if (wcache_fresh(w, hk, sizeof(hk), bucket))
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_POST], (const char *)hk, sizeof(hk),
                              (const char *)v, 4);
    return 0;
}

static int cmp_exec(const void *a, const void *b)
{
    const exec_ref_t *x = a, *y = b;
    int c = memcmp(x->sha, y->sha, 32);
    return c ? c : memcmp(x->ent, y->ent, 16);
}

/* Writes the 'h' postings of the batch: 'h' | sha256 | host | bucket | seq ->
 * the entity ids that executed the image in the block (sorted, distinct). */
static int put_execs(edr_store_writer_t *w, const uint8_t host[16], uint32_t bucket, uint64_t seq)
{
    if (!w->n_execs)
        return 0;
    qsort(w->execs, w->n_execs, sizeof(*w->execs), cmp_exec);
    uint8_t *v = edr_arena_alloc(&w->arena, w->n_execs * 16);
    if (!v)
        return EDR_ENOMEM;
    for (size_t i = 0; i < w->n_execs;) {
        size_t j = i, n = 0;
        for (; j < w->n_execs && !memcmp(w->execs[j].sha, w->execs[i].sha, 32); j++)
            if (j == i || memcmp(w->execs[j].ent, w->execs[j - 1].ent, 16))
                memcpy(v + 16 * n++, w->execs[j].ent, 16);
        uint8_t k[1 + 32 + 16 + 4 + 8];
        k[0] = POST_HASH;
        memcpy(k + 1, w->execs[i].sha, 32);
        memcpy(k + 33, host, 16);
        edr__be32(k + 49, bucket);
        edr__be64(k + 53, seq);
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_POST], (const char *)k, sizeof(k),
                                  (const char *)v, n * 16);
        i = j;
    }
    w->n_execs = 0;
    return 0;
}

/* The processes a sensor lists running (ProcessInventory): each record's
 * alive_bucket is raised to this hour, which keeps it past the retention
 * horizon while it runs (a parent that only forks, and its own parent, had
 * no other way to stay: review-1206k 2), and its entry under its parent is
 * written again within the hour, which keeps the parent's tree whole
 * (review-1206k 7). */
static void put_inventory(edr_store_writer_t *w, const Edr__V1__ProcessInventory *x,
                          uint32_t bucket)
{
    Edr__V1__ProcessRecord alive = EDR__V1__PROCESS_RECORD__INIT;
    alive.alive_bucket = bucket;
    uint8_t av[16];
    const size_t no_strings[5] = {0};
    size_t an = edr__proc_record_pack(&alive, no_strings, av);
    for (size_t i = 0; i < x->n_processes; i++) {
        const Edr__V1__ProcessInventory__Entry *en = x->processes[i];
        if (en->entity_id.len != 16) continue;
        rocksdb_writebatch_merge_cf(w->wb, w->cf[CF_PROCS], (const char *)en->entity_id.data, 16,
                                    (const char *)av, an);
        if (en->parent_entity_id.len != 16) continue;
        uint8_t kk[KID_KEY_LEN];
        kid_key(en->parent_entity_id.data, en->entity_id.data, kk);
        put_kid(w, kk, bucket);
    }
}

static const char *join_argv(edr_store_writer_t *w, char **argv, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(argv[i]) + 1;
    char *s = edr_arena_alloc(&w->arena, len + 1);
    if (!s)
        return NULL; /* out of memory: the caller fails the batch */
    char *p = s;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(argv[i]);
        if (i)
            *p++ = ' ';
        memcpy(p, argv[i], l);
        p += l;
    }
    *p = 0;
    return s;
}

int edr_store_writer_add(edr_store_writer_t *w, const void *frame, size_t frame_len,
                         const Edr__V1__EventBatch *b)
{
    if (!b || !b->sensor || b->sensor->host_id.len != 16)
        return EDR_EINVAL;
    const uint8_t *host = b->sensor->host_id.data;
    host_state_t *hs = host_get(w, host);
    if (!hs)
        return EDR_ESTORE;
    edr_block_key_t key;
    memcpy(key.host_id, host, 16);
    key.bucket = (uint32_t)(b->base_time_ns / EDR_STORE_BUCKET_NS);
    key.seq = b->seq;
    uint8_t bk[EDR_BLOCK_KEY_LEN], br[BREF_LEN];
    edr_block_key_encode(&key, bk);
    edr__bref_encode(br, hs->num, key.bucket, key.seq);
    if (b->seq <= hs->last_seq) { /* redelivery, or a late batch: look it up */
        int r = already_stored(w, bk);
        if (r < 0)
            return r;
        if (r) {
            w->pend_st.duplicates++;
            return 1;
        }
    }
    if (EDR_VEC_RESERVE(w->pend_keys, w->cap_pend, w->n_pend + 1, 256))
        return EDR_ENOMEM;
    if (scratch_prepare(w, b->n_events))
        return EDR_ENOMEM;
    edr_arena_reset(&w->arena);
    w->n_execs = 0;

    /* from here, a failure takes back what this batch put into the write
     * batch and into the host's dedup state: the batches added before it
     * still commit, and this one is read again (nothing half-stored) */
    uint64_t was_first = hs->first_seen, was_last = hs->last_seen, was_seq = hs->last_seq;
    uint32_t was_lead = w->span_lead, was_lag = w->span_lag;
    uint32_t was_hlead = hs->span_lead, was_hlag = hs->span_lag;
    size_t was_posts = w->n_posts;
    int perr = 0; /* a posting not noted for want of memory */
    rocksdb_writebatch_set_save_point(w->wb);
    rocksdb_writebatch_put_cf(w->wb, w->cf[CF_BLOCKS], (const char *)bk, sizeof(bk), frame,
                              frame_len);
    uint64_t tmin = UINT64_MAX, tmax = 0;
    const Edr__V1__Event *health = NULL;
    for (size_t i = 0; i < b->n_events; i++) {
        const Edr__V1__Event *e = b->events[i];
        uint64_t t = b->base_time_ns + (uint64_t)e->time_offset_ns;
        if (i + ENT_PREFETCH < b->n_events) { /* its slot in the entity index (ent_get) */
            const Edr__V1__Event *ea = b->events[i + ENT_PREFETCH];
            uint64_t ha;
            if (ea->entity_id.len == 16) {
                memcpy(&ha, ea->entity_id.data, 8);
                __builtin_prefetch(&w->ents[(size_t)ha & (w->ents_cap - 1)]);
            }
        }
        if (t < tmin)
            tmin = t;
        if (t > tmax)
            tmax = t;
        ent_t *s = e->entity_id.len == 16 ? ent_get(w, e, &b->sensor->host_id) : NULL;
        /* the parent from any of its events: the first of the batch may not
         * name it (a record before its create, in imports: review-1206o 2) */
        if (s && s->rec.parent_entity_id.len != 16 && e->parent_entity_id.len == 16)
            s->rec.parent_entity_id = e->parent_entity_id;
        /* an image named by an event other than the start (imports): kept
         * until a start names one (image_weak, see edr__proc_merge) */
        if (s && e->exe && *e->exe && e->body_case != EDR__V1__EVENT__BODY_PROCESS_START &&
            (!(s->rec.exe && *s->rec.exe) ||
             (s->rec.image_weak && edr__weak_image_better(e->exe, s->rec.exe)))) {
            s->rec.exe = e->exe;
            s->rec.image_weak = 1;
        }
        switch (e->body_case) {
        case EDR__V1__EVENT__BODY_PROCESS_START: {
            const Edr__V1__ProcessStart *ps = e->process_start;
            if (!s)
                break;
            /* the parent's image as the source names it (imports): its
             * record's, until its own start names one; a child of it acted
             * in this bucket, so retention keeps it as long as it would the
             * child's touch below */
            uint8_t ik[17] = {'I'}; /* once per parent per bucket (wcache_fresh) */
            if (e->parent_entity_id.len == 16) memcpy(ik + 1, e->parent_entity_id.data, 16);
            if (ps->parent_exe && *ps->parent_exe && e->parent_entity_id.len == 16 &&
                wcache_fresh(w, ik, sizeof(ik), key.bucket)) {
                Edr__V1__ProcessRecord pr = EDR__V1__PROCESS_RECORD__INIT;
                pr.exe = ps->parent_exe;
                pr.image_weak = 1;
                pr.child_bucket = key.bucket;
                size_t plens[5];
                uint8_t *pp = pack_buf(w, edr__proc_record_size_max(&pr, plens));
                if (!pp) goto undo;
                size_t pn = edr__proc_record_pack(&pr, plens, pp);
                rocksdb_writebatch_merge_cf(w->wb, w->cf[CF_PROCS],
                                            (const char *)e->parent_entity_id.data, 16,
                                            (const char *)pp, pn);
            }
            s->rec.image_weak = 0;
            s->rec.exe = ps->exe;
            s->rec.command_line = ps->command_line && *ps->command_line
                                      ? ps->command_line
                                      : (char *)join_argv(w, ps->argv, ps->n_argv);
            if (!s->rec.command_line)
                goto undo;
            s->rec.cwd = ps->cwd;
            s->rec.uid = ps->uid;
            s->rec.user = ps->user;
            s->rec.exe_sha256 = ps->exe_sha256;
            s->rec.container_id = ps->container_id;
            if (!s->rec.ppid)
                s->rec.ppid = ps->ppid;
            if (!s->rec.start_time_ns)
                s->rec.start_time_ns = ps->start_time_ns ? ps->start_time_ns : t;
            s->rec.exec_count++;
            if (put_hash(w, ps->exe_sha256, host, s->id, key.bucket))
                goto undo;
            perr |= put_path(w, ps->exe, br);
            break;
        }
        case EDR__V1__EVENT__BODY_PROCESS_FORK:
            if (s) {
                if (!s->rec.start_time_ns)
                    s->rec.start_time_ns =
                        e->process_fork->start_time_ns ? e->process_fork->start_time_ns : t;
                if (!s->rec.ppid)
                    s->rec.ppid = e->process_fork->ppid;
            }
            break;
        case EDR__V1__EVENT__BODY_PROCESS_EXIT:
            if (s) {
                s->rec.end_time_ns = t;
                s->rec.exit_code = e->process_exit->exit_code;
                s->rec.exit_signal = e->process_exit->signal;
                s->rec.exit_unknown = e->process_exit->status_unknown;
            }
            break;
        case EDR__V1__EVENT__BODY_FILE_CREATE:
            perr |= put_path(w, e->file_create->path, br);
            if (e->file_create->link_target && e->file_create->link_target[0] == '/')
                perr |= put_path(w, e->file_create->link_target, br); /* a link names it */
            break;
        case EDR__V1__EVENT__BODY_FILE_WRITE:
            perr |= put_path(w, e->file_write->path, br);
            break;
        case EDR__V1__EVENT__BODY_FILE_DELETE:
            perr |= put_path(w, e->file_delete->path, br);
            break;
        case EDR__V1__EVENT__BODY_FILE_ATTR:
            perr |= put_path(w, e->file_attr->path, br);
            break;
        case EDR__V1__EVENT__BODY_FILE_RENAME:
            perr |= put_path(w, e->file_rename->old_path, br);
            perr |= put_path(w, e->file_rename->new_path, br);
            break;
        case EDR__V1__EVENT__BODY_FILE_EXEC:
            perr |= put_path(w, e->file_exec->path, br);
            if (s)
                if (put_hash(w, e->file_exec->sha256, host, s->id, key.bucket))
                    goto undo;
            break;
        case EDR__V1__EVENT__BODY_NETWORK: {
            const Edr__V1__Endpoint *r = e->network->remote;
            uint8_t ip[16];
            uint64_t ih = 0;
            if (r && edr__ip16(r->ip.data, r->ip.len, ip) == 0 &&
                hset_add(&w->remotes, ih = XXH3_64bits(ip, 16), w->gen))
                perr |= post_add(w, POST_REMOTE, ip, 16, ih, br);
            break;
        }
        case EDR__V1__EVENT__BODY_SENSOR_HEALTH: health = e; break;
        case EDR__V1__EVENT__BODY_PROCESS_INVENTORY:
            put_inventory(w, e->process_inventory, key.bucket);
            break;
        default: break;
        }
    }
    if (perr) goto undo;
    if (!b->n_events)
        tmin = tmax = b->base_time_ns;
    /* A batch can cross hours (an import cut by count, a sensor batch at the
     * turn of the hour) and hold events before its base time: how far its
     * events reach from its key's bucket is kept, so that a query for a
     * window in the next hour still finds it. */
    uint32_t tb0 = (uint32_t)(tmin / EDR_STORE_BUCKET_NS);
    uint32_t tb1 = (uint32_t)(tmax / EDR_STORE_BUCKET_NS);
    uint32_t lead = key.bucket > tb0 ? key.bucket - tb0 : 0;
    uint32_t lag = tb1 > key.bucket ? tb1 - key.bucket : 0;
    if (lead > EDR__SPAN_SHARED || lag > EDR__SPAN_SHARED) {
        if (lead > hs->span_lead || lag > hs->span_lag) {
            hs->span_lead = lead > hs->span_lead ? lead : hs->span_lead;
            hs->span_lag = lag > hs->span_lag ? lag : hs->span_lag;
            uint8_t xk[5], sv[8];
            xk[0] = EDR__META_HOST_SPAN;
            edr__be32(xk + 1, hs->num);
            edr__be32(sv, hs->span_lead);
            edr__be32(sv + 4, hs->span_lag);
            rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], (const char *)xk, 5, (const char *)sv, 8);
        }
    } else if (lead > w->span_lead || lag > w->span_lag) {
        w->span_lead = lead > w->span_lead ? lead : w->span_lead;
        w->span_lag = lag > w->span_lag ? lag : w->span_lag;
        uint8_t sv[8];
        edr__be32(sv, w->span_lead);
        edr__be32(sv + 4, w->span_lag);
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], EDR__META_SPAN, 4, (const char *)sv, 8);
    }
    if (put_execs(w, host, key.bucket, key.seq))
        goto undo;

    /* process records, children, the entity filter of the time index */
    size_t nbits = ((w->n_recs * 10 + 63) / 64) * 64;
    uint8_t *tv = edr_arena_alloc(&w->arena, BLOCK_INFO_LEN + nbits / 8);
    if (!tv)
        goto undo;
    uint8_t *bloom = tv + BLOCK_INFO_LEN;
    memset(bloom, 0, nbits / 8);
    for (size_t i = 0; i < w->n_recs && i < ENT_PREFETCH; i++)
        ent_prefetch(w, &w->recs[i]);
    for (size_t i = 0; i < w->n_recs; i++) {
        ent_t *s = &w->recs[i];
        if (i + ENT_PREFETCH < w->n_recs)
            ent_prefetch(w, &w->recs[i + ENT_PREFETCH]);
        s->rec.first_block.data = br; /* a block reference, restored by readers */
        s->rec.first_block.len = sizeof(br); /* last_block: empty means the same */
        size_t lens[5];
        uint8_t *p = pack_buf(w, edr__proc_record_size_max(&s->rec, lens));
        if (!p)
            goto undo;
        size_t n = edr__proc_record_pack(&s->rec, lens, p);
        rocksdb_writebatch_merge_cf(w->wb, w->cf[CF_PROCS], (const char *)s->id, 16,
                                    (const char *)p, n);
        /* events of a process are found through its record's first/last block
         * and the entity bloom filter of the time index: no per-block posting */
        edr__bloom_add(bloom, nbits, s->id);
        if (s->rec.parent_entity_id.len == 16) {
            uint8_t kk[KID_KEY_LEN], pk[17];
            ent_keys(s, kk, pk);
            put_kid(w, kk, key.bucket);
            /* The parent's record lives as long as its children act: retention
             * drops a record whose last block is past the horizon, and a
             * service that only forks (sshd, a web server's master) writes no
             * record of its own after it started. Its record's child_bucket
             * (not last_block, which bounds the walk over its own events) is
             * raised once per parent per hour, unless it acts in this batch. */
            if (!ent_in_batch(w, s->rec.parent_entity_id.data) &&
                wcache_fresh(w, pk, sizeof(pk), key.bucket)) {
                Edr__V1__ProcessRecord touch = EDR__V1__PROCESS_RECORD__INIT;
                touch.child_bucket = key.bucket;
                uint8_t tp[16];           /* one varint field */
                const size_t tl[5] = {0}; /* no strings */
                size_t tn = edr__proc_record_pack(&touch, tl, tp);
                rocksdb_writebatch_merge_cf(w->wb, w->cf[CF_PROCS],
                                            (const char *)s->rec.parent_entity_id.data, 16,
                                            (const char *)tp, tn);
            }
        }
    }

    /* time index */
    edr_block_info_t bi = {.first_ns = tmin,
                           .last_ns = tmax,
                           .n_events = (uint32_t)b->n_events,
                           .frame_len = (uint32_t)frame_len};
    uint8_t tk[1 + BREF_LEN];
    tk[0] = POST_TIME;
    memcpy(tk + 1, br, BREF_LEN);
    edr__block_info_encode(&bi, tv);
    rocksdb_writebatch_put_cf(w->wb, w->cf[CF_POST], (const char *)tk, sizeof(tk),
                              (const char *)tv, BLOCK_INFO_LEN + nbits / 8);

    if (edr__store_fail_add && --edr__store_fail_add == 0)
        goto undo;

    /* host record, latest health, dedup state */
    if (!hs->first_seen || tmin < hs->first_seen)
        hs->first_seen = tmin;
    if (tmax > hs->last_seen)
        hs->last_seen = tmax;
    if (b->seq > hs->last_seq)
        hs->last_seq = b->seq;
    hs->hostname = dup_str(hs->hostname, b->sensor->hostname);
    hs->os = dup_str(hs->os, b->sensor->os);
    hs->kernel = dup_str(hs->kernel, b->sensor->kernel);
    hs->version = dup_str(hs->version, b->sensor->sensor_version);
    Edr__V1__HostRecord hr = EDR__V1__HOST_RECORD__INIT;
    hr.host_id = b->sensor->host_id;
    hr.hostname = hs->hostname ? hs->hostname : "";
    hr.os = hs->os ? hs->os : "";
    hr.kernel = hs->kernel ? hs->kernel : "";
    hr.sensor_version = hs->version ? hs->version : "";
    hr.first_seen_ns = hs->first_seen;
    hr.last_seen_ns = hs->last_seen;
    hr.last_seq = hs->last_seq;
    size_t n = edr__v1__host_record__get_packed_size(&hr);
    uint8_t *p = pack_buf(w, n);
    if (!p)
        goto undo;
    edr__v1__host_record__pack(&hr, p);
    rocksdb_writebatch_put_cf(w->wb, w->cf[CF_HOSTS], (const char *)host, 16, (const char *)p, n);
    if (health) {
        Edr__V1__Event he = *health;
        he.time_offset_ns = (int64_t)(b->base_time_ns + (uint64_t)health->time_offset_ns);
        n = edr__v1__event__get_packed_size(&he);
        if (!(p = pack_buf(w, n)))
            goto undo;
        edr__v1__event__pack(&he, p);
        uint8_t hk[17];
        memcpy(hk, host, 16);
        hk[16] = 'H';
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_HOSTS], (const char *)hk, 17, (const char *)p,
                                  n);
    }
    uint8_t sk[17], sv[8];
    sk[0] = 's';
    memcpy(sk + 1, host, 16);
    edr__be64(sv, hs->last_seq);
    rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], (const char *)sk, 17, (const char *)sv, 8);

    memcpy(w->pend_keys[w->n_pend++], bk, EDR_BLOCK_KEY_LEN);
    w->pend_st.batches++;
    w->pend_st.events += b->n_events;
    w->pend_st.frame_bytes += frame_len;
    char *rerr = NULL;
    rocksdb_writebatch_pop_save_point(w->wb, &rerr);
    rocksdb_free(rerr); /* cannot fail: the save point was set above */
    return 0;
undo:
    rerr = NULL;
    rocksdb_writebatch_rollback_to_save_point(w->wb, &rerr);
    if (rerr) { /* cannot happen either; the batch would then be unusable */
        edr_log_error("store %s: cannot take back a failed batch: %s", w->path, rerr);
        rocksdb_free(rerr);
        w->broken = 1; /* commits fail from now: the caller re-reads from the stored offset */
        return EDR_ESTORE;
    }
    hs->first_seen = was_first;
    hs->last_seen = was_last;
    hs->last_seq = was_seq;
    w->span_lead = was_lead;
    w->span_lag = was_lag;
    hs->span_lead = was_hlead;
    hs->span_lag = was_hlag;
    w->n_posts = was_posts;
    if (w->written) /* it may name entries that were just taken back */
        memset(w->written, 0, WCACHE_SLOTS * sizeof(*w->written));
    return EDR_ENOMEM;
}

/* Whether the file system has room for the pending commit and for what a
 * flush of the memtables would write, with 1 MiB to spare: 0, or EDR_EIO
 * after logging why. A commit is not attempted without it, because a
 * write-ahead log append that fails with ENOSPC aborts the whole process in
 * RocksDB 7.8 built with assertions, as Debian's is ("Assertion
 * `sync_without_flush_called_' failed" in the append's error path); the
 * caller handles EDR_EIO like any failed commit (the partition pauses and
 * re-reads). Space that compactions take meanwhile is not foreseen: the
 * collector's collector.min_free_disk pause is the first line of defence. */
static int room_for(edr_store_writer_t *w, rocksdb_writebatch_t *wb)
{
    struct statvfs sv;
    size_t len = 0;
    (void)rocksdb_writebatch_data(wb, &len);
    uint64_t mem = 0;
    (void)rocksdb_property_int(w->db, "rocksdb.cur-size-all-mem-tables", &mem);
    if (statvfs(w->path, &sv) != 0)
        return 0; /* cannot tell: let RocksDB try */
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, need = len + mem + (1u << 20);
    if (avail >= need)
        return 0;
    edr_log_error("store %s: commit not written: %s (%llu bytes free; it needs %llu: the commit, "
                  "the memtables a flush would write, and 1 MiB)",
                  w->path, strerror(ENOSPC), (unsigned long long)avail,
                  (unsigned long long)need);
    return EDR_EIO;
}

int edr_store_writer_wal(const edr_store_writer_t *w)
{
    return !w->no_wal || w->wal_now;
}

void edr_store_writer_want_wal(edr_store_writer_t *w, int on)
{
    w->wal_want = w->no_wal && on;
}

/* A commit went in: one more to flush (soon, unless the WAL holds it). */
static void committed(edr_store_writer_t *w)
{
    if (w->wal_now)
        w->logged++;
    else
        w->unflushed++;
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int post_same(const post_ref_t *a, const post_ref_t *b)
{
    return a->g == b->g && a->kl == b->kl && !memcmp(a->k, b->k, a->kl) &&
           !memcmp(a->br + 4, b->br + 4, 4);
}

/* Gathers the pending postings of each entity and bucket into groups
 * (a hash table over the commit's postings, in the order they came). */
static int post_group(edr_store_writer_t *w)
{
    size_t cap = 64;
    while (cap < w->n_posts * 2)
        cap <<= 1;
    if (w->post_slots_cap < cap) {
        uint32_t *t = realloc(w->post_slots, cap * sizeof(*t));
        if (!t) return EDR_ENOMEM;
        w->post_slots = t;
        w->post_slots_cap = cap;
    }
    memset(w->post_slots, 0, cap * sizeof(*w->post_slots));
    for (size_t i = 0; i < w->n_posts; i++) {
        post_ref_t *p = &w->posts[i];
        size_t j = (size_t)p->g & (cap - 1);
        p->next = UINT32_MAX;
        p->head = 1;
        while (w->post_slots[j]) {
            post_ref_t *h = &w->posts[w->post_slots[j] - 1];
            if (post_same(h, p)) {
                w->posts[h->tail].next = (uint32_t)i;
                h->tail = (uint32_t)i;
                p->head = 0;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
        if (p->head) {
            w->post_slots[j] = (uint32_t)i + 1;
            p->tail = (uint32_t)i;
        }
    }
    return 0;
}

/* Writes the pending file and remote postings, one key per entity and
 * bucket (POST_GROUP_MAX other blocks at most: more start another key):
 * type | id | the group's first block reference (host number, bucket, seq;
 * as one posting per block was keyed) -> its other blocks, in the order
 * they came, each as varint(zigzag(host number - the previous one)), then
 * varint(seq), or under the same host number varint(zigzag(seq - the
 * previous seq)); the bucket is the key's (read by post_step in
 * store_read.c). 0 or EDR_ENOMEM. */
static int post_flush(edr_store_writer_t *w)
{
    if (!w->n_posts) return 0;
    if (post_group(w)) return EDR_ENOMEM;
    for (size_t i = 0; i < w->n_posts; i++) {
        if (!w->posts[i].head) continue;
        for (const post_ref_t *f = &w->posts[i]; f;) {
            size_t kl = f->kl + BREF_LEN, n = 0;
            uint8_t *k = pack_buf(w, kl + (size_t)POST_GROUP_MAX * 20);
            if (!k) return EDR_ENOMEM;
            uint8_t *v = k + kl, *p = v;
            memcpy(k, f->k, f->kl);
            memcpy(k + f->kl, f->br, BREF_LEN);
            uint32_t hn = edr__rd32(f->br), m = f->next;
            uint64_t seq = edr__rd64(f->br + 8);
            for (; m != UINT32_MAX && n < POST_GROUP_MAX; m = w->posts[m].next, n++) {
                const uint8_t *br = w->posts[m].br;
                uint32_t h2 = edr__rd32(br);
                uint64_t s2 = edr__rd64(br + 8);
                p = put_uvarint(p, zigzag((int64_t)h2 - (int64_t)hn));
                p = put_uvarint(p, h2 == hn ? zigzag((int64_t)(s2 - seq)) : s2);
                hn = h2;
                seq = s2;
            }
            rocksdb_writebatch_put_cf(w->wb, w->cf[CF_POST], (const char *)k, kl, (const char *)v,
                                      (size_t)(p - v));
            w->pend_st.writes_saved += n;
            f = m != UINT32_MAX ? &w->posts[m] : NULL; /* the rest: another key */
        }
    }
    w->n_posts = 0;
    return 0;
}

int edr_store_writer_commit(edr_store_writer_t *w)
{
    if (!w->n_pend && !w->offset_set && !w->pend_st.duplicates)
        return 0;
    if (w->offset_set) {
        uint8_t v[8];
        edr__be64(v, (uint64_t)w->offset);
        rocksdb_writebatch_put_cf(w->wb, w->cf[CF_META], "offset", 6, (const char *)v, 8);
    }
    char *rerr = NULL;
    int rc = w->broken ? EDR_ESTORE : post_flush(w);
    if (!rc) rc = room_for(w, w->wb);
    w->pend_st.writes += (uint64_t)rocksdb_writebatch_count(w->wb);
    if (rc == 0)
        rocksdb_write(w->db, w->wal_now ? w->wo_wal : w->wo, w->wb, &rerr);
    rocksdb_writebatch_clear(w->wb);
    w->offset_set = 0;
    w->n_pend = 0;
    w->n_posts = 0;
    w->broken = 0;
    if (rc || rerr) {
        if (rerr) {
            rc = (strstr(rerr, "No space") || strstr(rerr, "ENOSPC")) ? EDR_EIO : EDR_ESTORE;
            mark_failed(w);
            edr_log_error("store %s: write failed: %s", w->path, rerr);
            rocksdb_free(rerr);
        }
        /* the cached dedup state ran ahead of the store: reload it lazily */
        hosts_clear(w); /* host numbers given in the lost batch stay unused: gaps are fine */
        if (w->written) /* it may name entries the store did not get */
            memset(w->written, 0, WCACHE_SLOTS * sizeof(*w->written));
        memset(&w->pend_st, 0, sizeof(w->pend_st));
        return rc;
    }
    w->st.batches += w->pend_st.batches;
    w->st.duplicates += w->pend_st.duplicates;
    w->st.events += w->pend_st.events;
    w->st.frame_bytes += w->pend_st.frame_bytes;
    w->st.commits++;
    committed(w);
    w->st.writes += w->pend_st.writes;
    w->st.writes_saved += w->pend_st.writes_saved;
    memset(&w->pend_st, 0, sizeof(w->pend_st));
    return 0;
}

int edr_store_writer_stalled(edr_store_writer_t *w, char *why, size_t whylen)
{
    char *v = rocksdb_property_value(w->db, "rocksdb.is-write-stopped");
    int stopped = v && atoi(v) != 0;
    rocksdb_free(v);
    if (stopped) {
        snprintf(why, whylen, "rocksdb write stopped (compaction behind)");
        return 1;
    }
    v = rocksdb_property_value(w->db, "rocksdb.actual-delayed-write-rate");
    long long rate = v ? atoll(v) : 0;
    rocksdb_free(v);
    if (rate > 0) {
        snprintf(why, whylen, "rocksdb delaying writes to %lld bytes/s", rate);
        return 1;
    }
    return 0;
}

static uint64_t cf_prop(edr_store_writer_t *w, int cf, const char *name);

/* The families in the order a reclaim compacts them: blocks, the largest,
 * first. */
static const int reclaim_order[] = {CF_BLOCKS, CF_POST, CF_PROCS, CF_KIDS};

atomic_int edr__store_reclaim_gate;
atomic_uint edr__store_reclaim_compactions;

uint64_t edr__store_reclaim_held(void)
{
    pthread_mutex_lock(&pool.mu);
    uint64_t h = pool.reclaim_held;
    pthread_mutex_unlock(&pool.mu);
    return h;
}

static void *reclaim_main(void *arg)
{
    edr_store_writer_t *w = arg;
    while (atomic_load(&edr__store_reclaim_gate) && !atomic_load(&w->reclaim_stop))
        usleep(1000);
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    /* beside the writer's flushes and RocksDB's own compactions, on its
     * lower-priority threads */
    rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
    /* the last level too, where retired data mostly is; each file once */
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 3 /* kForceOptimized */);
    for (size_t i = 0;
         i < sizeof(reclaim_order) / sizeof(reclaim_order[0]) && !atomic_load(&w->reclaim_stop);
         i++) {
        atomic_fetch_add(&edr__store_reclaim_compactions, 1);
        rocksdb_compact_range_cf_opt(w->db, w->cf[reclaim_order[i]], co, NULL, 0, NULL, 0);
    }
    rocksdb_compactoptions_destroy(co);
    pthread_mutex_lock(&pool.mu);
    pool.reclaim_held -= w->reclaim_held;
    pthread_mutex_unlock(&pool.mu);
    atomic_store(&w->reclaim_done, 1);
    return NULL;
}

/* Retention writes range tombstones; the bytes under them stay on disk
 * until a compaction rewrites the files holding them. The blocks family
 * (universal compaction, host-major keys: every file mixes retired and
 * kept hours) merges its last sorted run only when the newer runs reach 4x
 * its size, so a store held up to ~5x the frames it kept (review-1206k-store
 * 5 measured 1.3-3.7x). Once the retired ranges hold a quarter of the
 * blocks' file bytes, a thread compacts every family that retention
 * touches, the last level included, in the background; the compaction
 * filters drop the process records, children and postings retention ended.
 * The blocks then stay under ~1.33x what is kept, for each byte rewritten
 * about three more times over its life. Skipped, and tried at the next run,
 * while one is running or when the disk has no room for its output. */
static void reclaim_retired(edr_store_writer_t *w, uint64_t retired)
{
    if (w->write_failed) return;
    if (w->reclaimer_started) {
        if (!atomic_load(&w->reclaim_done)) return;
        pthread_join(w->reclaimer, NULL);
        w->reclaimer_started = 0;
    }
    uint64_t total = cf_prop(w, CF_BLOCKS, "rocksdb.live-sst-files-size");
    if (!retired || retired < total / 4 || retired > total) return;
    /* The families are compacted one after another, each deleting its
     * inputs when done: the disk must hold the largest one's output (for
     * blocks, what is kept) and still leave min_free (collector.min_free_disk,
     * below which the collector pauses). Asking room for all four at once
     * skipped every reclaim on a disk over half full (review-1206m 1). */
    uint64_t out = total - retired;
    for (size_t i = 1; i < sizeof(reclaim_order) / sizeof(reclaim_order[0]); i++) {
        uint64_t b = cf_prop(w, reclaim_order[i], "rocksdb.live-sst-files-size");
        out = b > out ? b : out;
    }
    /* other shards' reclaims still running may write as much again */
    struct statvfs sv;
    pthread_mutex_lock(&pool.mu);
    uint64_t held = pool.reclaim_held;
    uint64_t avail = statvfs(w->path, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
    if (avail < out + w->min_free + held) {
        pthread_mutex_unlock(&pool.mu);
        char others[96] = "";
        if (held)
            snprintf(others, sizeof(others),
                     ", of which other shards' compactions may take %llu MB",
                     (unsigned long long)(held >> 20));
        edr_log_warn("store %s: %llu MB of retired frames stay on disk: compacting them away "
                     "needs %llu MB free, %llu MB are%s",
                     w->path, (unsigned long long)(retired >> 20),
                     (unsigned long long)((out + w->min_free) >> 20),
                     (unsigned long long)(avail >> 20), others);
        return;
    }
    pool.reclaim_held += out;
    w->reclaim_held = out;
    pthread_mutex_unlock(&pool.mu);
    edr_log_info("store %s: compacting away %.1f MB of retired frames (of %.1f MB)", w->path,
                 (double)retired / 1048576.0, (double)total / 1048576.0);
    atomic_store(&w->reclaim_done, 0);
    atomic_store(&w->reclaim_stop, 0);
    int e = pthread_create(&w->reclaimer, NULL, reclaim_main, w);
    if (e == 0) {
        w->reclaimer_started = 1;
        w->reclaims++;
    } else {
        pthread_mutex_lock(&pool.mu);
        pool.reclaim_held -= out;
        pthread_mutex_unlock(&pool.mu);
        edr_log_warn("store %s: cannot start the compaction of retired data: %s", w->path,
                     strerror(e));
    }
}

unsigned edr__store_writer_reclaim_wait(edr_store_writer_t *w, int wait)
{
    if (wait && w->reclaimer_started) {
        pthread_join(w->reclaimer, NULL);
        w->reclaimer_started = 0;
    }
    return w->reclaims;
}

int edr_store_writer_failed(const edr_store_writer_t *w)
{
    return w->write_failed;
}

/* Retention and compaction refuse a writer that failed: their flushes,
 * and a reclaim's, must not run after a failed write (mark_failed). */
static int refuse_failed(const edr_store_writer_t *w, const char *what)
{
    if (!w->write_failed) return 0;
    edr_log_error("store %s: %s refused: an earlier write or flush failed (the shard must be "
                  "opened again)",
                  w->path, what);
    return EDR_ESTORE;
}

int edr_store_writer_retire(edr_store_writer_t *w, uint64_t cutoff_ns)
{
    if (refuse_failed(w, "retention")) return EDR_ESTORE;
    uint32_t cut = (uint32_t)(cutoff_ns / EDR_STORE_BUCKET_NS);
    if (!cut || cut <= w->ret->cutoff_bucket)
        return 0; /* done for this hour already: no second set of range tombstones */
    char *rerr = NULL;
    uint64_t retired = 0;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(w->db, w->ro, w->cf[CF_HOSTS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl != 16)
            continue;
        uint8_t lo[EDR_BLOCK_KEY_LEN], hi[EDR_BLOCK_KEY_LEN];
        edr_block_key_t a = {.bucket = 0, .seq = 0}, z = {.bucket = cut, .seq = 0};
        memcpy(a.host_id, k, 16);
        memcpy(z.host_id, k, 16);
        edr_block_key_encode(&a, lo);
        edr_block_key_encode(&z, hi);
        rocksdb_writebatch_delete_range_cf(wb, w->cf[CF_BLOCKS], (const char *)lo,
                                           EDR_BLOCK_KEY_LEN, (const char *)hi,
                                           EDR_BLOCK_KEY_LEN);
        /* file bytes in the retired range: this run's and those earlier
         * runs retired that no compaction has freed yet */
        const char *rs[1] = {(const char *)lo}, *rl[1] = {(const char *)hi};
        size_t rsl[1] = {EDR_BLOCK_KEY_LEN}, rll[1] = {EDR_BLOCK_KEY_LEN};
        uint64_t sz = 0;
        char *aerr = NULL;
        rocksdb_approximate_sizes_cf(w->db, w->cf[CF_BLOCKS], 1, rs, rsl, rl, rll, &sz, &aerr);
        if (aerr)
            rocksdb_free(aerr); /* an estimate: none is 0 */
        else
            retired += sz;
        /* the time index is keyed by the host's number */
        uint8_t nk[17];
        size_t vl;
        nk[0] = 'n';
        memcpy(nk + 1, k, 16);
        char *v = rocksdb_get_cf(w->db, w->ro, w->cf[CF_META], (const char *)nk, 17, &vl, &rerr);
        if (rerr)
            break;
        if (v && vl == 4) {
            uint8_t tlo[1 + BREF_LEN], thi[1 + BREF_LEN];
            uint32_t hn = edr__rd32((const uint8_t *)v);
            tlo[0] = thi[0] = POST_TIME;
            edr__bref_encode(tlo + 1, hn, 0, 0);
            edr__bref_encode(thi + 1, hn, cut, 0);
            rocksdb_writebatch_delete_range_cf(wb, w->cf[CF_POST], (const char *)tlo, sizeof(tlo),
                                               (const char *)thi, sizeof(thi));
        }
        rocksdb_free(v);
    }
    if (!rerr) /* a scan cut short by a read error is not "every host" */
        rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
    int read_failed = rerr != NULL;
    uint8_t cv[4];
    edr__be32(cv, cut);
    rocksdb_writebatch_put_cf(wb, w->cf[CF_META], "cutoff", 6, (const char *)cv, 4);
    /* no write-ahead-log append on a full disk (see room_for): tried again
     * at the next run */
    if (!rerr && room_for(w, wb)) {
        rocksdb_writebatch_destroy(wb);
        return EDR_EIO;
    }
    if (!rerr)
        rocksdb_write(w->db, w->wal_now ? w->wo_wal : w->wo, wb, &rerr);
    rocksdb_writebatch_destroy(wb);
    if (rerr) {
        if (!read_failed) /* a failed read leaves the writer usable; a failed write does not */
            mark_failed(w);
        edr_log_error("store %s: retention failed (%s); tried again at the next run", w->path,
                      rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    if (cut > w->ret->cutoff_bucket)
        w->ret->cutoff_bucket = cut;
    committed(w);
    char when[32];
    edr_log_info("store %s: retention: what is older than %s is deleted (%.1f MB of files hold "
                 "retired data)",
                 w->path, edr_jsonl_time_format((uint64_t)cut * EDR_STORE_BUCKET_NS, when),
                 (double)retired / 1048576.0);
    reclaim_retired(w, retired);
    return 0;
}

int edr_store_writer_compact(edr_store_writer_t *w)
{
    char e[512];
    if (refuse_failed(w, "compaction")) return EDR_ESTORE;
    if (flush_all(w, 1, e, sizeof(e))) {
        edr_log_error("store %s: flush failed: %s", w->path, e);
        return EDR_ESTORE;
    }
    for (int i = 0; i < CF__COUNT; i++)
        rocksdb_compact_range_cf(w->db, w->cf[i], NULL, 0, NULL, 0);
    return 0;
}

void edr_store_writer_stats(const edr_store_writer_t *w, edr_store_writer_stats_t *st)
{
    *st = w->st;
}

uint64_t edr_store_writer_disk_bytes(edr_store_writer_t *w)
{
    return edr__dir_bytes(w->path);
}

static uint64_t cf_prop(edr_store_writer_t *w, int cf, const char *name)
{
    char *v = rocksdb_property_value_cf(w->db, w->cf[cf], name);
    uint64_t n = v ? strtoull(v, NULL, 10) : 0;
    rocksdb_free(v);
    return n;
}

size_t edr_store_writer_cf_stats(edr_store_writer_t *w, edr_store_cf_stat_t *out, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < CF__COUNT && n < max; i++, n++) {
        out[n].name = edr__store_cf_names[i];
        out[n].sst_bytes = cf_prop(w, i, "rocksdb.total-sst-files-size");
        out[n].keys = cf_prop(w, i, "rocksdb.estimate-num-keys");
    }
    return n;
}
