/* Store readers: RocksDB instances over every shard (read-only, or secondary
 * beside a writer), with the query API fanned out across them. */
#define _GNU_SOURCE
#include "store_int.h"

#include "edr/err.h"
#include "edr/frame.h"
#include "edr/identity.h"
#include "edr/log.h"
#include "edr/vec.h"
#include "pbsplit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

typedef struct shard {
    char path[4096];
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[CF__COUNT];
    uint8_t (*hosts)[16]; /* host id by host number (see BREF_LEN), loaded on demand */
    uint8_t *have;        /* 1 where hosts[n] is known */
    uint32_t n_hosts;
    uint32_t lead, lag; /* meta "span": how far blocks reach from their key's bucket */
    struct xspan {
        uint32_t hostn, lead, lag;
    } *xspan;           /* hosts with their own span (EDR__META_HOST_SPAN), by number */
    size_t n_xspan, cap_xspan;
    uint32_t cutoff;    /* meta "cutoff": buckets below it are retired (kept until compaction) */
    int secondary;      /* opened as a secondary instance: a writer held the shard */
} shard_t;

struct edr_store {
    char root[3800]; /* with "/shard-N" within a shard's path */
    shard_t *sh;
    unsigned n;
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts[CF__COUNT];
    rocksdb_readoptions_t *ro;
    edr_frame_ctx_t *fctx;
    edr_pbsplit_t *ps; /* entity walks over split (codec 2) blocks */
    char secdir[256];
    edr_arena_t arena; /* process records unpacked during walks */
    edr_arena_t ev_arena; /* events unpacked one by one by entity walks */
    unsigned last_hit; /* shard of the last successful point lookup */
    uint64_t bad_blocks; /* stored blocks that failed to decode, skipped */
    int hosts_shared;    /* some host has data in two shards: -1 not known yet */
};

uint64_t edr_store_bad_blocks(const edr_store_t *s)
{
    return s->bad_blocks;
}

/* A stored block that does not decode: the reader's own limits (a missing
 * dictionary, a smaller frame.max_raw_bytes) and memory fail the query;
 * damage is counted, logged and skipped, so one bad block does not hide a
 * host's whole history. Returns what the walk returns. */
static int bad_block(edr_store_t *s, const uint8_t bk[EDR_BLOCK_KEY_LEN], int rc)
{
    if (rc == EDR_ENOMEM || rc == EDR_EFRAME_DICT || rc == EDR_EFRAME_TOO_LARGE)
        return rc;
    edr_block_key_t key;
    char hex[33];
    edr_block_key_decode(bk, EDR_BLOCK_KEY_LEN, &key);
    edr_hex(key.host_id, 16, hex);
    s->bad_blocks++;
    edr_log_warn("store: the block of host %s, hour %u, seq %llu does not decode (%s): its "
                 "events are left out of this answer",
                 hex, key.bucket, (unsigned long long)key.seq, edr_strerror(rc));
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef int (*kv_fn)(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl, const uint8_t *v,
                     size_t vl, void *ud);
static int scan(edr_store_t *s, unsigned i, int cf, const uint8_t *prefix, size_t pl,
                const uint8_t *start, size_t sl, kv_fn step, void *ud);

/* One host's own span (EDR__META_HOST_SPAN) into shard's xspan. */
static int xspan_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl, const uint8_t *v,
                      size_t vl, void *ud)
{
    (void)ud;
    shard_t *sh = &s->sh[shard];
    if (kl != 5 || vl != 8)
        return 0;
    struct xspan e = {edr__rd32(k + 1), edr__rd32(v), edr__rd32(v + 4)};
    if (EDR_VEC_RESERVE(sh->xspan, sh->cap_xspan, sh->n_xspan + 1, 8)) {
        /* out of memory: the shared span covers this host */
        sh->lead = e.lead > sh->lead ? e.lead : sh->lead;
        sh->lag = e.lag > sh->lag ? e.lag : sh->lag;
        return 0;
    }
    sh->xspan[sh->n_xspan++] = e;
    return 0;
}

/* (Re)reads meta "span" and "cutoff" of shard i. Span unreadable or absent:
 * 0, 0 (a store written before it was kept; its blocks are read as if none
 * crossed an hour); cutoff: 0 (nothing retired). */
static void load_meta(edr_store_t *s, unsigned i)
{
    shard_t *sh = &s->sh[i];
    static const char *const keys[2] = {EDR__META_SPAN, "cutoff"};
    for (int j = 0; j < 2; j++) {
        char *rerr = NULL;
        size_t vl = 0;
        char *v = rocksdb_get_cf(sh->db, s->ro, sh->cf[CF_META], keys[j], strlen(keys[j]), &vl,
                                 &rerr);
        if (rerr) {
            edr_log_warn("store %s: %s", sh->path, rerr);
            rocksdb_free(rerr);
        } else if (j == 0 && v && vl == 8) {
            sh->lead = edr__rd32((const uint8_t *)v);
            sh->lag = edr__rd32((const uint8_t *)v + 4);
        } else if (j == 1 && v && vl == 4) {
            sh->cutoff = edr__rd32((const uint8_t *)v);
        }
        rocksdb_free(v);
    }
    /* the hosts with a span of their own: few (a clock that jumped inside a
     * batch), in host-number order (the keys' order) */
    sh->n_xspan = 0;
    uint8_t pre = EDR__META_HOST_SPAN;
    scan(s, i, CF_META, &pre, 1, NULL, 0, xspan_step, NULL); /* errors: logged by scan */
}

/* Whether a process holds the RocksDB lock of the shard at path (a
 * collector or an import writing it). A child asks (F_GETLK on the lock
 * file): this process must not open the file, because closing a descriptor
 * of it drops every POSIX lock this process holds on it, its own writer's
 * included. /proc/locks, read before, leaves out the locks of processes in
 * other PID namespaces: a collector in one container was not seen from
 * another, and its live shard was opened read-only (review-1206l M1). 1 also
 * when that cannot be told: a secondary instance is the open that is safe
 * beside a writer. */
static int shard_written(const char *path)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof(p), "%s/LOCK", path);
    if (stat(p, &st) != 0) return errno != ENOENT;
    pid_t pid = fork();
    if (pid == 0) { /* async-signal-safe calls only */
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0) _exit(2);
        _exit(fl.l_type == F_UNLCK ? 0 : 1);
    }
    if (pid < 0) return 1;
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return 1;
    return !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* A shard directory's name: "shard-" and digits, as the writers make them
 * (an operator's "shard-0000.bak" copy is not read as one more shard). */
static int shard_name(const char *n)
{
    if (strncmp(n, "shard-", 6) || !n[6]) return 0;
    for (n += 6; *n; n++)
        if (!isdigit((unsigned char)*n)) return 0;
    return 1;
}

/* Whether a shard directory holds nothing yet (a writer just made it). */
static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)))
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    return empty;
}

static void close_shards(edr_store_t *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        for (int c = 0; c < CF__COUNT; c++)
            if (s->sh[i].cf[c]) rocksdb_column_family_handle_destroy(s->sh[i].cf[c]);
        rocksdb_close(s->sh[i].db);
        free(s->sh[i].hosts);
        free(s->sh[i].have);
        free(s->sh[i].xspan);
    }
    free(s->sh);
    s->sh = NULL;
    s->n = 0;
    s->last_hit = 0;
    s->hosts_shared = -1;
}

/* Opens every shard of s->root: read-only where no writer holds it, so that
 * a table file that is missing, cut short or damaged fails the open with
 * RocksDB's reason; as a secondary instance beside a writer. A secondary
 * (made to follow a primary that deletes files) leaves out a table it cannot
 * open and answers from what remains: a damaged store is told apart only
 * while nothing writes it (review-1206k 1). */
static int open_shards(edr_store_t *s, char *err, size_t errlen)
{
    char **names = NULL;
    size_t n_names = 0;
    int rc = -1;
    DIR *d = opendir(s->root);
    if (!d) {
        snprintf(err, errlen, "store %s: %s", s->root, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[4200];
        if (!shard_name(de->d_name)) continue;
        snprintf(p, sizeof(p), "%s/%s", s->root, de->d_name);
        if (dir_empty(p)) continue; /* a writer is making it: nothing to read yet */
        char **nn = realloc(names, (n_names + 1) * sizeof(*names));
        if (!nn)
            goto oom;
        names = nn;
        if (!(names[n_names] = strdup(de->d_name)))
            goto oom;
        n_names++;
    }
    closedir(d);
    d = NULL;
    if (!n_names) {
        snprintf(err, errlen, "store %s: no shard (not a store, or nothing stored yet)", s->root);
        goto out;
    }
    qsort(names, n_names, sizeof(*names), cmp_str);
    s->sh = calloc(n_names, sizeof(*s->sh));
    if (!s->sh) goto oom;
    for (size_t i = 0; i < n_names; i++) {
        shard_t *sh = &s->sh[s->n];
        char *rerr = NULL;
        snprintf(sh->path, sizeof(sh->path), "%s/%s", s->root, names[i]);
        sh->secondary = shard_written(sh->path);
        if (!sh->secondary) {
            sh->db = rocksdb_open_for_read_only_column_families(
                s->db_opts, sh->path, CF__COUNT, edr__store_cf_names,
                (const rocksdb_options_t *const *)s->cf_opts, sh->cf, 0, &rerr);
            /* a writer that started meanwhile deletes the files it compacted:
             * asked again, a failure is the store's own only without one */
            if (!sh->db && shard_written(sh->path)) {
                rocksdb_free(rerr);
                rerr = NULL;
                sh->secondary = 1;
            }
        }
        if (sh->secondary && !s->secdir[0]) {
            snprintf(s->secdir, sizeof(s->secdir), "/tmp/edr-store-reader-XXXXXX");
            if (!mkdtemp(s->secdir)) {
                snprintf(err, errlen, "cannot create a reader directory in /tmp: %s",
                         strerror(errno));
                s->secdir[0] = 0;
                goto out;
            }
        }
        if (sh->secondary) {
            char sec[4400];
            snprintf(sec, sizeof(sec), "%s/%s", s->secdir, names[i]);
            sh->db = rocksdb_open_as_secondary_column_families(
                s->db_opts, sh->path, sec, CF__COUNT, edr__store_cf_names,
                (const rocksdb_options_t *const *)s->cf_opts, sh->cf, &rerr);
        }
        if (!sh->db) {
            snprintf(err, errlen, "store %s: %s", sh->path, rerr ? rerr : "cannot open");
            rocksdb_free(rerr);
            goto out;
        }
        s->n++;
        uint32_t fmt;
        if (edr__store_format(sh->db, s->ro, sh->cf[CF_META], sh->path, &fmt, err, errlen))
            goto out;
        load_meta(s, s->n - 1);
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    if (d) closedir(d);
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    return rc;
}

edr_store_t *edr_store_open(const char *root, const edr_store_opts_t *opts, char *err,
                            size_t errlen)
{
    edr_store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->hosts_shared = -1;
    edr_arena_init(&s->arena, 16 << 10);
    edr_arena_init(&s->ev_arena, 16 << 10);
    if (strlen(root) >= sizeof(s->root)) {
        snprintf(err, errlen, "store %.64s...: path too long", root);
        goto fail;
    }
    snprintf(s->root, sizeof(s->root), "%s", root);
    s->db_opts = rocksdb_options_create();
    rocksdb_options_set_max_open_files(s->db_opts, -1); /* required by secondaries */
    rocksdb_options_set_info_log_level(s->db_opts, 3 /* error */);
    edr__store_cf_options(s->cf_opts, opts, NULL, NULL);
    s->ro = rocksdb_readoptions_create();
    if (open_shards(s, err, errlen)) goto fail;
    edr_frame_opts_t fo = {.max_raw_len = opts ? (uint32_t)opts->max_raw_len : 0};
    s->fctx = edr_frame_ctx_new(&fo);
    s->ps = edr__pbsplit_new();
    if (!s->fctx || !s->ps) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (opts && opts->dict_dir && *opts->dict_dir &&
        edr_frame_ctx_load_dicts(s->fctx, opts->dict_dir) < 0) {
        snprintf(err, errlen, "store: cannot load dictionaries from %s", opts->dict_dir);
        goto fail;
    }
    return s;
fail:
    edr_store_destroy(s);
    return NULL;
}

void edr_store_destroy(edr_store_t *s)
{
    if (!s)
        return;
    close_shards(s);
    for (int c = 0; c < CF__COUNT; c++)
        if (s->cf_opts[c])
            rocksdb_options_destroy(s->cf_opts[c]);
    if (s->db_opts)
        rocksdb_options_destroy(s->db_opts);
    if (s->ro)
        rocksdb_readoptions_destroy(s->ro);
    edr_frame_ctx_destroy(s->fctx);
    edr__pbsplit_free(s->ps);
    if (s->secdir[0])
        nftw(s->secdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    edr_arena_close(&s->arena);
    edr_arena_close(&s->ev_arena);
    free(s);
}

/* Closes and opens every shard again. A secondary's catch-up with its
 * primary (rocksdb_try_catch_up_with_primary) kept the memtable it had
 * replayed from the write-ahead log in front of the tables the primary
 * flushed since: merge operands applied twice (an exec_count of 5 where 3
 * were stored), retired blocks back (review-1206k 3; a RocksDB bug, not
 * fixed in Debian's 7.8). A reopen also finds shards made since (a
 * partition assigned later) and a newer writer's format marker. */
int edr_store_refresh(edr_store_t *s)
{
    char err[1024];
    shard_t *old = s->sh;
    unsigned n_old = s->n;
    s->sh = NULL;
    s->n = 0;
    if (open_shards(s, err, sizeof(err))) {
        /* the view before stays: answers are as old as it, not empty
         * (review-1206l L6) */
        edr_log_error("%s (the store is read as it was before)", err);
        close_shards(s);
        s->sh = old;
        s->n = n_old;
        return EDR_ESTORE;
    }
    shard_t *now = s->sh;
    unsigned n_now = s->n;
    s->sh = old;
    s->n = n_old;
    close_shards(s);
    s->sh = now;
    s->n = n_now;
    return 0;
}

int edr__store_secondary(const edr_store_t *s, unsigned i)
{
    return i < s->n && s->sh[i].secondary;
}

unsigned edr_store_shards(const edr_store_t *s)
{
    return s->n;
}

static int iter_close(edr_store_t *s, unsigned i, rocksdb_iterator_t *it, int rc);

/* Gets a value from the first shard holding the key; returns the pinned
 * slice (caller destroys), NULL with *rc = EDR_ENOENT or an error. */
static rocksdb_pinnableslice_t *get_any(edr_store_t *s, int cf, const void *k, size_t kl,
                                        int *rc)
{
    /* lookups come in runs (an ancestry, a block walk) within one shard:
     * start with the shard that answered last */
    for (unsigned j = 0; j < s->n; j++) {
        unsigned i = (s->last_hit + j) % s->n;
        char *rerr = NULL;
        rocksdb_pinnableslice_t *ps =
            rocksdb_get_pinned_cf(s->sh[i].db, s->ro, s->sh[i].cf[cf], k, kl, &rerr);
        if (rerr) {
            edr_log_error("store %s: %s", s->sh[i].path, rerr);
            rocksdb_free(rerr);
            *rc = EDR_ESTORE;
            return NULL;
        }
        if (ps) {
            s->last_hit = i;
            *rc = 0;
            return ps;
        }
    }
    *rc = EDR_ENOENT;
    return NULL;
}

/* Host numbers a reader believes: a shard that numbered more hosts than
 * this would have a map of 4 GiB. */
#define MAX_HOSTN (1u << 28)

/* (Re)reads the host number map of shard i from its meta family. */
static int load_hosts(edr_store_t *s, unsigned i)
{
    shard_t *sh = &s->sh[i];
    s->hosts_shared = -1;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(sh->db, s->ro, sh->cf[CF_META]);
    int rc = 0;
    for (rocksdb_iter_seek(it, "N", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl < 1 || k[0] != 'N')
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl != 5 || vl != 16)
            continue;
        uint32_t n = edr__rd32(k + 1);
        if (n >= MAX_HOSTN) /* corrupt: numbers are given from 0 up */
            continue;
        if (n >= sh->n_hosts) {
            uint32_t nn = sh->n_hosts ? sh->n_hosts : 64;
            while (nn <= n)
                nn *= 2;
            void *h = realloc(sh->hosts, (size_t)nn * 16);
            if (h)
                sh->hosts = h;
            uint8_t *hv = h ? realloc(sh->have, nn) : NULL;
            if (!hv) {
                rc = EDR_ENOMEM;
                break;
            }
            memset(hv + sh->n_hosts, 0, nn - sh->n_hosts);
            sh->have = hv;
            sh->n_hosts = nn;
        }
        memcpy(sh->hosts[n], v, 16);
        sh->have[n] = 1;
    }
    return iter_close(s, i, it, rc); /* a read error is logged, not taken for the map's end */
}

/* The host id of host number n in shard i, or NULL when unknown. */
static const uint8_t *shard_host(edr_store_t *s, unsigned i, uint32_t n)
{
    shard_t *sh = &s->sh[i];
    if (n >= sh->n_hosts || !sh->have[n])
        load_hosts(s, i); /* a host numbered since the last load */
    return n < sh->n_hosts && sh->have[n] ? sh->hosts[n] : NULL;
}

/* The number of a host in shard i: 0, or EDR_ENOENT (no block of it there) / EDR_ESTORE. */
static int shard_hostn(edr_store_t *s, unsigned i, const uint8_t host[16], uint32_t *n)
{
    uint8_t k[17];
    char *rerr = NULL;
    size_t vl;
    k[0] = 'n';
    memcpy(k + 1, host, 16);
    char *v = rocksdb_get_cf(s->sh[i].db, s->ro, s->sh[i].cf[CF_META], (const char *)k, 17, &vl,
                             &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", s->sh[i].path, rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    int rc = v && vl == 4 ? 0 : EDR_ENOENT;
    if (!rc)
        *n = edr__rd32((const uint8_t *)v);
    rocksdb_free(v);
    return rc;
}

/* A block reference of shard i as a block key (both forms). 0, or -1 when
 * the reference is malformed or names an unknown host number. */
static int bref_key(edr_store_t *s, unsigned i, const uint8_t *br, size_t len,
                    edr_block_key_t *k, uint8_t bk[EDR_BLOCK_KEY_LEN])
{
    const uint8_t *h = len == BREF_LEN ? shard_host(s, i, edr__rd32(br)) : NULL;
    if (!h)
        return -1;
    memcpy(k->host_id, h, 16);
    k->bucket = edr__rd32(br + 4);
    k->seq = edr__rd64(br + 8);
    if (bk)
        edr_block_key_encode(k, bk);
    return 0;
}

/* Stored records leave out what the key and first_block already say (see
 * edr__proc_merge): restores entity id, host id, last_block, and the block
 * references of shard i to full block keys. */
static void proc_restore(edr_store_t *s, unsigned shard, Edr__V1__ProcessRecord *p,
                         const uint8_t *key, edr_arena_t *a)
{
    if (p->entity_id.len == 0) {
        uint8_t *id = edr_arena_dup(a, key, 16);
        if (id) {
            p->entity_id.data = id;
            p->entity_id.len = 16;
        }
    }
    ProtobufCBinaryData *refs[2] = {&p->first_block, &p->last_block};
    for (int j = 0; j < 2; j++) {
        edr_block_key_t k;
        uint8_t *bk;
        if (refs[j]->len != BREF_LEN || bref_key(s, shard, refs[j]->data, BREF_LEN, &k, NULL) ||
            !(bk = edr_arena_alloc(a, EDR_BLOCK_KEY_LEN)))
            continue;
        edr_block_key_encode(&k, bk);
        refs[j]->data = bk;
        refs[j]->len = EDR_BLOCK_KEY_LEN;
    }
    if (p->last_block.len == 0)
        p->last_block = p->first_block;
    if (p->host_id.len == 0 && p->first_block.len == EDR_BLOCK_KEY_LEN) {
        p->host_id.data = p->first_block.data; /* the block key starts with the host id */
        p->host_id.len = 16;
    }
}

/* The process record of entity_id in shard i, unpacked into a: 0 with *out
 * (NULL when the stored value does not unpack), EDR_ENOENT when the shard
 * has none, EDR_ESTORE on a read error (logged). */
static int shard_proc(edr_store_t *s, unsigned i, const uint8_t entity_id[16], edr_arena_t *a,
                      Edr__V1__ProcessRecord **out)
{
    char *rerr = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->sh[i].db, s->ro, s->sh[i].cf[CF_PROCS],
                                                        (const char *)entity_id, 16, &rerr);
    if (rerr) {
        edr_log_error("store %s: %s", s->sh[i].path, rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    if (!ps)
        return EDR_ENOENT;
    size_t vl;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    *out = edr__v1__process_record__unpack(&a->pb, vl, (const uint8_t *)v);
    rocksdb_pinnableslice_destroy(ps);
    return 0;
}

static int cmp_id16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Whether some host has data in two shards (it moved when partitions were
 * added): only then can a shard hold a stub of a process whose record is in
 * another. Worked out from the host maps once, again after they change. */
static int hosts_shared(edr_store_t *s)
{
    if (s->hosts_shared >= 0)
        return s->hosts_shared;
    for (unsigned i = 0; i < s->n; i++)
        load_hosts(s, i); /* the maps are read lazily: all of them, now */
    size_t n = 0;
    for (unsigned i = 0; i < s->n; i++)
        for (uint32_t k = 0; k < s->sh[i].n_hosts; k++)
            n += s->sh[i].have[k];
    uint8_t (*ids)[16] = n ? malloc(n * 16) : NULL;
    if (!ids)
        return n ? 1 : 0; /* cannot tell: look everywhere */
    size_t m = 0;
    for (unsigned i = 0; i < s->n; i++)
        for (uint32_t k = 0; k < s->sh[i].n_hosts; k++)
            if (s->sh[i].have[k])
                memcpy(ids[m++], s->sh[i].hosts[k], 16);
    qsort(ids, m, 16, cmp_id16);
    int shared = 0;
    for (size_t k = 1; k < m && !shared; k++)
        shared = !memcmp(ids[k - 1], ids[k], 16);
    free(ids);
    s->hosts_shared = shared;
    return shared;
}

int edr_store_process_get(edr_store_t *s, const uint8_t entity_id[16], edr_arena_t *a,
                          Edr__V1__ProcessRecord **out)
{
    /* A shard may hold only a stub of the process (its children's activity
     * there, after its host moved to another partition) or a damaged copy:
     * the record is the first whole one, from any shard. */
    int bad = 0;
    *out = NULL;
    for (unsigned j = 0; j < s->n; j++) {
        unsigned i = (s->last_hit + j) % s->n;
        Edr__V1__ProcessRecord *p = NULL;
        int r = shard_proc(s, i, entity_id, a, &p);
        if (r == EDR_ENOENT)
            continue;
        if (r)
            return r;
        if (!p) {
            bad = 1;
            continue;
        }
        if (!p->first_block.len) { /* only its children's activity: not seen here */
            if (s->n == 1 || !hosts_shared(s))
                return EDR_ENOENT; /* nor anywhere else: its host is in this shard alone */
            continue;
        }
        s->last_hit = i;
        proc_restore(s, i, p, entity_id, a);
        *out = p;
        return 0;
    }
    return bad ? EDR_EPARSE : EDR_ENOENT;
}

int edr_store_process_ancestry(edr_store_t *s, const uint8_t entity_id[16], unsigned max_depth,
                               edr_store_proc_fn fn, void *ud)
{
    uint8_t cur[16], seen[64][16]; /* the first 64 met: a cycle in damaged links ends */
    memcpy(cur, entity_id, 16);
    if (!max_depth)
        max_depth = 64;
    int rc = 0;
    for (unsigned d = 0; d < max_depth; d++) {
        int again = 0;
        for (unsigned k = 0; k < d && k < 64 && !again; k++)
            again = !memcmp(seen[k], cur, 16);
        if (again)
            break;
        if (d < 64)
            memcpy(seen[d], cur, 16);
        Edr__V1__ProcessRecord *p;
        edr_arena_reset(&s->arena);
        int r = edr_store_process_get(s, cur, &s->arena, &p);
        if (r == EDR_ENOENT) {
            rc = d == 0 ? EDR_ENOENT : 0;
            break;
        }
        if (r) {
            rc = r;
            break;
        }
        if ((rc = fn(p, ud)) != 0)
            break;
        if (p->parent_entity_id.len != 16 || !memcmp(p->parent_entity_id.data, cur, 16))
            break;
        memcpy(cur, p->parent_entity_id.data, 16);
    }
    edr_arena_reset(&s->arena);
    return rc;
}

/* Ends a walk of shard i: a walk that stopped without an error of its own
 * (rc 0) still fails when the iterator stopped on a read error. */
static int iter_close(edr_store_t *s, unsigned i, rocksdb_iterator_t *it, int rc)
{
    if (!rc) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr) {
            edr_log_error("store %s: %s", s->sh[i].path, rerr);
            rocksdb_free(rerr);
            rc = EDR_ESTORE;
        }
    }
    rocksdb_iter_destroy(it);
    return rc;
}

/* Iterates keys of cf in shard i starting with prefix; calls step for each. */
static int scan(edr_store_t *s, unsigned i, int cf, const uint8_t *prefix, size_t pl,
                const uint8_t *start, size_t sl, kv_fn step, void *ud)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->sh[i].db, s->ro, s->sh[i].cf[cf]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)(start ? start : prefix), start ? sl : pl);
         rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, prefix, pl) != 0)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if ((rc = step(s, i, k, kl, v, vl, ud)) != 0)
            break;
    }
    return iter_close(s, i, it, rc);
}

/* scan() over every shard in turn, stopping at the first non-zero result. */
static int scan_all(edr_store_t *s, int cf, const uint8_t *prefix, size_t pl, kv_fn step,
                    void *ud)
{
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++)
        rc = scan(s, i, cf, prefix, pl, NULL, 0, step, ud);
    return rc;
}

struct kids_ctx {
    const uint8_t *parent;
    edr_store_proc_fn fn;
    void *ud;
    uint8_t (*seen)[16]; /* children already reported (a child seen in two shards): an
                          * open-addressing set of cap_seen slots (a power of two) */
    size_t n_seen, cap_seen;
};

static int id_zero(const uint8_t id[16])
{
    static const uint8_t z[16];
    return !memcmp(id, z, 16);
}

/* Adds id to the children already reported: 1 when it was new, 0 when it
 * was there, EDR_ENOMEM. Ids are hashes: their first bytes spread well. An
 * all-zero id (no real entity has one) is never kept: it marks an empty
 * slot, and is reported each time. */
static int seen_add(struct kids_ctx *c, const uint8_t id[16])
{
    if (id_zero(id)) return 1;
    if ((c->n_seen + 1) * 2 > c->cap_seen) {
        size_t nc = c->cap_seen ? c->cap_seen * 2 : 64;
        uint8_t(*ns)[16] = calloc(nc, 16);
        if (!ns) return EDR_ENOMEM;
        for (size_t i = 0; i < c->cap_seen; i++) {
            if (id_zero(c->seen[i])) continue;
            size_t j = (size_t)edr__rd64(c->seen[i]) & (nc - 1);
            while (!id_zero(ns[j]))
                j = (j + 1) & (nc - 1);
            memcpy(ns[j], c->seen[i], 16);
        }
        free(c->seen);
        c->seen = ns;
        c->cap_seen = nc;
    }
    size_t j = (size_t)edr__rd64(id) & (c->cap_seen - 1);
    while (!id_zero(c->seen[j])) {
        if (!memcmp(c->seen[j], id, 16)) return 0;
        j = (j + 1) & (c->cap_seen - 1);
    }
    memcpy(c->seen[j], id, 16);
    c->n_seen++;
    return 1;
}

/* Children keys hold id prefixes: the child prefix is resolved in procs and
 * kept when the record's parent is the full id asked for. */
static int kid_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl, const uint8_t *v,
                    size_t vl, void *ud)
{
    (void)v;
    (void)vl;
    struct kids_ctx *c = ud;
    if (kl != KID_KEY_LEN)
        return 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(s->sh[shard].db, s->ro, s->sh[shard].cf[CF_PROCS]);
    int rc = 0;
    const uint8_t *pre = k + KID_PARENT_LEN;
    for (rocksdb_iter_seek(it, (const char *)pre, KID_CHILD_LEN); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t ckl, cvl;
        const uint8_t *ck = (const uint8_t *)rocksdb_iter_key(it, &ckl);
        if (ckl != 16 || memcmp(ck, pre, KID_CHILD_LEN) != 0)
            break;
        const uint8_t *cv = (const uint8_t *)rocksdb_iter_value(it, &cvl);
        edr_arena_reset(&s->arena);
        Edr__V1__ProcessRecord *p = edr__v1__process_record__unpack(&s->arena.pb, cvl, cv);
        if (!p || p->parent_entity_id.len != 16 || memcmp(p->parent_entity_id.data, c->parent, 16))
            continue;
        /* a child seen in two shards is reported once; one shard has each
         * key once. A set, not a list: a parent may have 200k children (a
         * list compared each with all before it: 17.9 s for 200k in two
         * shards, review-1206k 4) */
        if (s->n > 1) {
            int added = seen_add(c, ck);
            if (added < 0) {
                rc = added;
                break;
            }
            if (!added) continue;
        }
        proc_restore(s, shard, p, ck, &s->arena);
        if ((rc = c->fn(p, c->ud)) != 0)
            break;
    }
    return iter_close(s, shard, it, rc); /* a read error is not the last child */
}

int edr_store_process_children(edr_store_t *s, const uint8_t entity_id[16], edr_store_proc_fn fn,
                               void *ud)
{
    struct kids_ctx c = {entity_id, fn, ud, NULL, 0, 0};
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++)
        rc = scan(s, i, CF_KIDS, entity_id, KID_PARENT_LEN, NULL, 0, kid_step, &c);
    free(c.seen);
    edr_arena_reset(&s->arena);
    return rc;
}

int edr_store_block_get(edr_store_t *s, const edr_block_key_t *k, edr_arena_t *a,
                        const uint8_t **frame, size_t *len)
{
    uint8_t bk[EDR_BLOCK_KEY_LEN];
    edr_block_key_encode(k, bk);
    int rc;
    rocksdb_pinnableslice_t *ps = get_any(s, CF_BLOCKS, bk, sizeof(bk), &rc);
    if (!ps)
        return rc;
    size_t vl;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    *frame = edr_arena_dup(a, v, vl);
    *len = vl;
    rocksdb_pinnableslice_destroy(ps);
    return *frame ? 0 : EDR_ENOMEM;
}

/* Decodes the block at bk in shard i (or any shard when i == UINT32_MAX) and
 * calls fn for its events matching entity (NULL: all) and the time window. */
/* An event's time and place in its batch, to list a batch in time order. */
typedef struct {
    int64_t t;
    uint32_t i;
} ev_at_t;

static int cmp_ev_at(const void *a, const void *b)
{
    const ev_at_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int block_walk(edr_store_t *s, const uint8_t bk[EDR_BLOCK_KEY_LEN],
                      const uint8_t *entity, uint64_t from_ns, uint64_t to_ns,
                      edr_store_event_fn fn, void *ud)
{
    int rc;
    rocksdb_pinnableslice_t *ps = get_any(s, CF_BLOCKS, bk, EDR_BLOCK_KEY_LEN, &rc);
    if (!ps)
        return rc;
    size_t vl;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    Edr__V1__EventBatch *b;
    rc = edr_frame_decode(s->fctx, v, vl, &b);
    rocksdb_pinnableslice_destroy(ps);
    if (rc)
        return bad_block(s, bk, rc);
    edr_block_key_t key;
    edr_block_key_decode(bk, EDR_BLOCK_KEY_LEN, &key);
    /* in time order: a sensor's batch is, an imported one follows its
     * file's order, which need not be (a host's listing, and its --limit,
     * went by it) */
    size_t n = b->n_events;
    Edr__V1__Event **ev = b->events, **own = NULL;
    for (size_t i = 1; i < n; i++) {
        if (ev[i]->time_offset_ns < ev[i - 1]->time_offset_ns) {
            ev_at_t *o = malloc(n * sizeof(*o));
            own = malloc(n * sizeof(*own));
            if (!o || !own) {
                free(o);
                free(own);
                return EDR_ENOMEM;
            }
            for (size_t j = 0; j < n; j++)
                o[j] = (ev_at_t){b->events[j]->time_offset_ns, (uint32_t)j};
            qsort(o, n, sizeof(*o), cmp_ev_at);
            for (size_t j = 0; j < n; j++)
                own[j] = b->events[o[j].i];
            free(o);
            ev = own;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const Edr__V1__Event *e = ev[i];
        if (entity && (e->entity_id.len != 16 || memcmp(e->entity_id.data, entity, 16)))
            continue;
        uint64_t t = b->base_time_ns + (uint64_t)e->time_offset_ns;
        if (t < from_ns || (to_ns && t >= to_ns))
            continue;
        if ((rc = fn(b, e, &key, ud)) != 0)
            break;
    }
    free(own);
    return rc;
}

/*
 * Entity walks decode selectively: a block holds ~1000 events of which a
 * process usually owns a few, and unpacking the whole batch costs ~0.25 ms.
 * After decompression the serialized EventBatch is scanned at the wire level
 * (header fields, the actor table, each event's time delta, entity id and
 * actor index); only the matching events are unpacked, then restored to the
 * in-memory form exactly as edr_batch_unpack does (absolute time offset,
 * identity from the actor, tid defaulting to pid). The callback's batch
 * carries the header (schema version, sensor, seq, base time) and no events.
 * Anything unexpected (bad wire data, another schema version, many actors
 * of the one entity) falls back to block_walk, which decodes it all.
 */
#define SEL_MAX_ACTORS 8

static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0; sh < 64 && *p < end; sh += 7) {
        uint8_t c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Reads one field header; for length-delimited fields sets *val and *vlen,
 * for varints *num; skips fixed-width ones. Returns the field number, 0 at
 * the end, -1 on bad data. */
static int pb_field(const uint8_t **p, const uint8_t *end, uint64_t *num, const uint8_t **val,
                    size_t *vlen)
{
    uint64_t tag, n;
    *val = NULL; /* a field of another wire type never shows an earlier value */
    *vlen = 0;
    if (*p >= end)
        return 0;
    if (pb_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > INT32_MAX)
        return -1;
    switch (tag & 7) {
    case 0:
        if (pb_varint(p, end, num))
            return -1;
        break;
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        break;
    case 2:
        if (pb_varint(p, end, &n) || n > (uint64_t)(end - *p))
            return -1;
        *val = *p;
        *vlen = (size_t)n;
        *p += n;
        break;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        break;
    default: return -1;
    }
    return (int)(tag >> 3);
}

/* What the selective walks return to ask for a full decode: not a value
 * a callback returns (non-zero stops a walk and is returned as it is), nor
 * an edr_err_t. */
#define SEL_FALLBACK INT_MIN

/* A selective walk met bad data: fall back to a full decode, which
 * reports it, unless events were already delivered. */
static int sel_bad(edr_store_t *s, int called)
{
    if (!called)
        return SEL_FALLBACK;
    s->bad_blocks++;
    edr_log_warn("store: a stored block does not decode past an event already delivered: the "
                 "rest of its events are left out of this answer");
    return 0;
}

/* Restores an event's in-memory form as edr_batch_unpack does, its identity
 * from its actor (NULL: its own) and its absolute time offset. */
static void sel_restore(Edr__V1__Event *e, const Edr__V1__Actor *a, uint64_t offset)
{
    if (a) {
        e->entity_id = a->entity_id;
        e->parent_entity_id = a->parent_entity_id;
        e->pid = a->pid;
        e->actor = 0;
    }
    if (e->tid == 0)
        e->tid = e->pid;
    e->time_offset_ns = (int64_t)offset;
}

#define BIT(f) (1ull << (f))

/* block_walk_sel over a split (codec 2) block, read in place: the header
 * fields, the actor table and each event's time delta, entity id and actor
 * index come from their own streams, and only the matching events are
 * joined back and unpacked. Same returns as block_walk_sel. */
static int block_walk_sel_split(edr_store_t *s, const uint8_t *form, size_t n, size_t raw_len,
                                const uint8_t *entity, uint64_t from_ns, uint64_t to_ns,
                                const edr_block_key_t *key, edr_store_event_fn fn, void *ud)
{
    edr_pbsplit_t *ps = s->ps;
    edr_pbsplit_field_t fl[16];
    size_t nf;
    uint64_t ver = 0;
    Edr__V1__EventBatch hb = EDR__V1__EVENT_BATCH__INIT;
    if (edr__pbsplit_open(ps, form, n, raw_len) ||
        edr__pbsplit_scan(ps, 0, BIT(1) | BIT(3) | BIT(4), fl, 16, &nf) != 1)
        return SEL_FALLBACK;
    for (size_t i = 0; i < nf; i++) {
        if (fl[i].wt != 0)
            return SEL_FALLBACK;
        if (fl[i].field == 1)
            ver = fl[i].num;
        else if (fl[i].field == 3)
            hb.seq = fl[i].num;
        else
            hb.base_time_ns = fl[i].num;
    }
    if (ver != EDR_BATCH_SCHEMA_VERSION)
        return SEL_FALLBACK;
    hb.schema_version = (uint32_t)ver;
    edr_arena_reset(&s->ev_arena);
    int sn = edr__pbsplit_child(ps, 0, 2), an = edr__pbsplit_child(ps, 0, 6),
        en = edr__pbsplit_child(ps, 0, 5);
    if (en < 0) /* no events, or events that are not a message: protobuf-c judges */
        return SEL_FALLBACK;
    /* the actors that are the entity */
    struct {
        uint32_t idx;
        Edr__V1__Actor a;
    } act[SEL_MAX_ACTORS];
    unsigned n_act = 0;
    uint32_t n_actors = 0;
    int r;
    while (an >= 0 && (r = edr__pbsplit_scan(ps, (uint32_t)an, BIT(1) | BIT(2) | BIT(3), fl, 16,
                                             &nf)) == 1) {
        n_actors++;
        Edr__V1__Actor a = EDR__V1__ACTOR__INIT;
        for (size_t i = 0; i < nf; i++) {
            if (fl[i].field == 3 && fl[i].wt == 0)
                a.pid = (uint32_t)fl[i].num;
            else if (fl[i].wt != 2)
                return SEL_FALLBACK;
            else if (fl[i].field == 1)
                a.entity_id = (ProtobufCBinaryData){fl[i].len, (uint8_t *)fl[i].val};
            else
                a.parent_entity_id = (ProtobufCBinaryData){fl[i].len, (uint8_t *)fl[i].val};
        }
        if (a.entity_id.len != 16 || memcmp(a.entity_id.data, entity, 16))
            continue;
        if (n_act == SEL_MAX_ACTORS)
            return SEL_FALLBACK;
        /* the ids are copied: the split form lives only until the next decode */
        uint8_t *ids = edr_arena_alloc(&s->ev_arena, 16 + a.parent_entity_id.len);
        if (!ids)
            return SEL_FALLBACK;
        memcpy(ids, a.entity_id.data, 16);
        if (a.parent_entity_id.len)
            memcpy(ids + 16, a.parent_entity_id.data, a.parent_entity_id.len);
        a.entity_id.data = ids;
        a.parent_entity_id.data = a.parent_entity_id.len ? ids + 16 : NULL;
        act[n_act].idx = n_actors;
        act[n_act].a = a;
        n_act++;
    }
    if (an >= 0 && r != 0)
        return SEL_FALLBACK;
    uint8_t *buf = NULL;
    uint64_t acc = 0;
    int called = 0;
    while ((r = edr__pbsplit_scan(ps, (uint32_t)en, BIT(1) | BIT(2) | BIT(6), fl, 16, &nf)) == 1) {
        uint64_t dt = 0, actor = 0;
        const uint8_t *eid = NULL;
        size_t el = 0;
        for (size_t i = 0; i < nf; i++) {
            if (fl[i].field == 2 && fl[i].wt == 2) {
                if (fl[i].child >= 0)
                    goto bad; /* an entity id written as a message */
                eid = fl[i].val;
                el = fl[i].len;
            } else if (fl[i].wt != 0) {
                goto bad;
            } else if (fl[i].field == 1) {
                dt = fl[i].num;
            } else if (fl[i].field == 6) {
                actor = fl[i].num;
            } else {
                goto bad; /* an entity id that is not bytes */
            }
        }
        if (actor > n_actors)
            goto bad;
        acc += (uint64_t)(int64_t)((dt >> 1) ^ (~(dt & 1) + 1)); /* zigzag */
        const Edr__V1__Actor *a = NULL;
        if (actor) {
            for (unsigned j = 0; j < n_act && !a; j++)
                if (act[j].idx == actor)
                    a = &act[j].a;
            if (!a)
                continue;
        } else if (el != 16 || memcmp(eid, entity, 16)) {
            continue;
        }
        uint64_t t = hb.base_time_ns + acc;
        if (t < from_ns || (to_ns && t >= to_ns))
            continue;
        size_t cap = raw_len + EDR_PBJOIN_SLACK, len;
        if (!buf && !(buf = edr_arena_alloc(&s->ev_arena, cap)))
            goto bad;
        if (edr__pbsplit_join_last(ps, (uint32_t)en, buf, cap, &len))
            goto bad;
        Edr__V1__Event *e = edr__v1__event__unpack(&s->ev_arena.pb, len, buf);
        if (!e)
            goto bad;
        sel_restore(e, a, acc);
        if (!hb.sensor && sn >= 0) { /* the last sensor field, as the raw walk takes */
            uint8_t *sb = edr_arena_alloc(&s->ev_arena, cap);
            size_t sl;
            int sr, seen = 0;
            while ((sr = edr__pbsplit_scan(ps, (uint32_t)sn, 0, fl, 16, &nf)) == 1)
                seen = 1;
            if (!sb || sr != 0 || !seen || edr__pbsplit_join_last(ps, (uint32_t)sn, sb, cap, &sl) ||
                !(hb.sensor = edr__v1__sensor_info__unpack(&s->ev_arena.pb, sl, sb)))
                goto bad;
        }
        called = 1;
        int rc = fn(&hb, e, key, ud);
        if (rc)
            return rc;
    }
    if (r == 0)
        return 0;
bad:
    return sel_bad(s, called);
}

/* 0: done (fn may have been called); SEL_FALLBACK: fall back to a full decode;
 * other: the callback's non-zero return or an error. */
static int block_walk_sel(edr_store_t *s, const char *frame, size_t flen, const uint8_t *entity,
                          uint64_t from_ns, uint64_t to_ns, const edr_block_key_t *key,
                          edr_store_event_fn fn, void *ud)
{
    const uint8_t *raw, *p, *end, *v = NULL;
    size_t raw_len, vl = 0;
    uint64_t num = 0, ver = 0, seq = 0, base = 0;
    const uint8_t *sensor = NULL;
    size_t sensor_len = 0;
    struct {
        uint32_t idx;
        const uint8_t *msg;
        size_t len;
        Edr__V1__Actor *a;
    } act[SEL_MAX_ACTORS];
    unsigned n_act = 0;
    uint32_t n_actors = 0;
    int f;
    edr_frame_header_t h;
    if (edr_frame_payload(s->fctx, frame, flen, &raw, &raw_len, &h))
        return SEL_FALLBACK;
    if (h.codec == EDR_FRAME_CODEC_ZSTD_SPLIT)
        return block_walk_sel_split(s, raw, raw_len, h.raw_len, entity, from_ns, to_ns, key, fn,
                                    ud);
    /* pass 1: header and the actors that are the entity */
    end = raw + raw_len;
    for (p = raw; (f = pb_field(&p, end, &num, &v, &vl)) > 0;) {
        if ((f == 2 || f == 5 || f == 6) && !v)
            return SEL_FALLBACK; /* a message field of another wire type: protobuf-c judges */
        if (f == 1)
            ver = num;
        else if (f == 2) {
            sensor = v;
            sensor_len = vl;
        } else if (f == 3)
            seq = num;
        else if (f == 4)
            base = num;
        else if (f == 6) {
            n_actors++;
            const uint8_t *q = v, *qe = v + vl, *x = NULL;
            size_t xl = 0, el = 0;
            const uint8_t *eid = NULL;
            int g;
            while ((g = pb_field(&q, qe, &num, &x, &xl)) > 0)
                if (g == 1) {
                    if (!x)
                        return SEL_FALLBACK;
                    eid = x;
                    el = xl;
                }
            if (g < 0)
                return SEL_FALLBACK;
            if (el == 16 && !memcmp(eid, entity, 16)) {
                if (n_act == SEL_MAX_ACTORS)
                    return SEL_FALLBACK;
                act[n_act].idx = n_actors;
                act[n_act].msg = v;
                act[n_act].len = vl;
                act[n_act].a = NULL;
                n_act++;
            }
        }
    }
    if (f < 0 || ver != EDR_BATCH_SCHEMA_VERSION)
        return SEL_FALLBACK;
    edr_arena_reset(&s->ev_arena);
    Edr__V1__EventBatch hb = EDR__V1__EVENT_BATCH__INIT;
    hb.schema_version = (uint32_t)ver;
    hb.seq = seq;
    hb.base_time_ns = base;
    int have_sensor = 0;
    /* pass 2: events; time offsets are deltas on the wire */
    uint64_t acc = 0;
    int called = 0;
    for (p = raw; (f = pb_field(&p, end, &num, &v, &vl)) > 0;) {
        if (f != 5)
            continue;
        const uint8_t *q = v, *qe = v + vl, *x = NULL, *eid = NULL;
        size_t xl = 0, el = 0;
        uint64_t dt = 0, actor = 0;
        int g;
        while ((g = pb_field(&q, qe, &num, &x, &xl)) > 0) {
            if (g == 1)
                dt = num;
            else if (g == 2) {
                if (!x)
                    goto bad;
                eid = x;
                el = xl;
            } else if (g == 6)
                actor = num;
        }
        if (g < 0 || actor > n_actors)
            goto bad;
        acc += (uint64_t)(int64_t)((dt >> 1) ^ (~(dt & 1) + 1)); /* zigzag */
        int match = -1;
        if (actor) {
            for (unsigned j = 0; j < n_act; j++)
                if (act[j].idx == actor)
                    match = (int)j;
            if (match < 0)
                continue;
        } else if (el != 16 || memcmp(eid, entity, 16)) {
            continue;
        }
        uint64_t t = base + acc;
        if (t < from_ns || (to_ns && t >= to_ns))
            continue;
        Edr__V1__Event *e = edr__v1__event__unpack(&s->ev_arena.pb, vl, v);
        if (!e)
            goto bad;
        if (match >= 0 && !act[match].a &&
            !(act[match].a =
                  edr__v1__actor__unpack(&s->ev_arena.pb, act[match].len, act[match].msg)))
            goto bad;
        sel_restore(e, match >= 0 ? act[match].a : NULL, acc);
        if (!have_sensor && sensor) {
            hb.sensor = edr__v1__sensor_info__unpack(&s->ev_arena.pb, sensor_len, sensor);
            if (!hb.sensor)
                goto bad;
        }
        have_sensor = 1;
        called = 1;
        int rc = fn(&hb, e, key, ud);
        if (rc)
            return rc;
    }
    if (f == 0)
        return 0;
bad:
    return sel_bad(s, called);
}

/* Events of one entity in one block: selective decode, else a full one. */
static int block_walk_entity(edr_store_t *s, const uint8_t bk[EDR_BLOCK_KEY_LEN],
                             const uint8_t *entity, uint64_t from_ns, uint64_t to_ns,
                             edr_store_event_fn fn, void *ud)
{
    int rc;
    rocksdb_pinnableslice_t *ps = get_any(s, CF_BLOCKS, bk, EDR_BLOCK_KEY_LEN, &rc);
    if (!ps)
        return rc;
    size_t vl;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    edr_block_key_t key;
    edr_block_key_decode(bk, EDR_BLOCK_KEY_LEN, &key);
    rc = block_walk_sel(s, v, vl, entity, from_ns, to_ns, &key, fn, ud);
    rocksdb_pinnableslice_destroy(ps);
    if (rc == SEL_FALLBACK)
        rc = block_walk(s, bk, entity, from_ns, to_ns, fn, ud);
    return rc;
}

int edr_store_block_events(edr_store_t *s, const edr_block_key_t *k, edr_store_event_fn fn,
                           void *ud)
{
    uint8_t bk[EDR_BLOCK_KEY_LEN];
    edr_block_key_encode(k, bk);
    return block_walk(s, bk, NULL, 0, 0, fn, ud);
}

static uint32_t bucket_of(uint64_t ns)
{
    return (uint32_t)(ns / EDR_STORE_BUCKET_NS);
}

/* The span of host number hn in shard sh: the shared one, or the host's
 * own when larger. */
static void span_of(const shard_t *sh, uint32_t hn, uint32_t *lead, uint32_t *lag)
{
    *lead = sh->lead;
    *lag = sh->lag;
    size_t lo = 0, hi = sh->n_xspan;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sh->xspan[mid].hostn < hn)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sh->n_xspan && sh->xspan[lo].hostn == hn) {
        if (sh->xspan[lo].lead > *lead)
            *lead = sh->xspan[lo].lead;
        if (sh->xspan[lo].lag > *lag)
            *lag = sh->xspan[lo].lag;
    }
}

/* The first and last bucket whose blocks of host number hn in shard sh can
 * hold events of [from_ns, to_ns) (to_ns 0: no end). */
static uint32_t win_lo(const shard_t *sh, uint32_t hn, uint64_t from_ns)
{
    uint32_t lead, lag, b = bucket_of(from_ns);
    span_of(sh, hn, &lead, &lag);
    return b > lag ? b - lag : 0;
}

static uint32_t win_hi(const shard_t *sh, uint32_t hn, uint64_t to_ns)
{
    if (!to_ns)
        return UINT32_MAX;
    uint32_t lead, lag, b = bucket_of(to_ns - 1);
    span_of(sh, hn, &lead, &lag);
    return b < UINT32_MAX - lead ? b + lead : UINT32_MAX;
}

struct ev_ctx {
    const uint8_t *entity;
    uint64_t from, to;
    edr_store_event_fn fn;
    void *ud;
};

/* Walks the time index of host in shard i over buckets [b0, b1], blocks
 * whose seq lies between the first and last block of the process, calls
 * block_walk for those whose entity filter may hold the entity. */
static int entity_walk(edr_store_t *s, unsigned i, const struct ev_ctx *c, uint32_t hostn,
                       const edr_block_key_t *first, const edr_block_key_t *last)
{
    uint32_t b0 = first->bucket, b1 = last->bucket, wlo = win_lo(&s->sh[i], hostn, c->from),
             whi = win_hi(&s->sh[i], hostn, c->to);
    if (b0 < wlo)
        b0 = wlo;
    if (b1 > whi)
        b1 = whi;
    if (b0 > b1)
        return 0;
    uint8_t start[1 + BREF_LEN], stop[1 + BREF_LEN];
    edr_block_key_t lo = *first, hi = *last;
    if (lo.bucket < b0) {
        lo.bucket = b0;
        lo.seq = 0;
    }
    if (hi.bucket > b1) {
        hi.bucket = b1;
        hi.seq = UINT64_MAX;
    }
    start[0] = stop[0] = POST_TIME;
    edr__bref_encode(start + 1, hostn, lo.bucket, lo.seq);
    edr__bref_encode(stop + 1, hostn, hi.bucket, hi.seq);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->sh[i].db, s->ro, s->sh[i].cf[CF_POST]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)start, sizeof(start)); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != sizeof(stop) || memcmp(k, stop, sizeof(stop)) > 0)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (vl < BLOCK_INFO_LEN)
            continue;
        edr_block_info_t bi;
        edr__block_info_decode(v, &bi);
        if (bi.last_ns < c->from || (c->to && bi.first_ns >= c->to))
            continue;
        if (!edr__bloom_has(v + BLOCK_INFO_LEN, (vl - BLOCK_INFO_LEN) * 8, c->entity))
            continue;
        uint8_t bk[EDR_BLOCK_KEY_LEN];
        edr_block_key_t key = *first;
        key.bucket = edr__rd32(k + 5);
        key.seq = edr__rd64(k + 9);
        edr_block_key_encode(&key, bk);
        if ((rc = block_walk_entity(s, bk, c->entity, c->from, c->to, c->fn, c->ud)) != 0)
            break;
    }
    return iter_close(s, i, it, rc);
}

int edr_store_entity_events(edr_store_t *s, const uint8_t entity_id[16], uint64_t from_ns,
                            uint64_t to_ns, edr_store_event_fn fn, void *ud)
{
    struct ev_ctx c = {entity_id, from_ns, to_ns, fn, ud};
    int rc = 0, found = 0;
    /* the record of the process in each shard that holds one says which of
     * that shard's blocks can hold its events */
    for (unsigned j = 0; j < s->n && !rc; j++) {
        unsigned i = (s->last_hit + j) % s->n;
        Edr__V1__ProcessRecord *p = NULL;
        edr_arena_reset(&s->arena);
        int r = shard_proc(s, i, entity_id, &s->arena, &p);
        if (r == EDR_ENOENT)
            continue;
        if (r)
            return r;
        edr_block_key_t first, last;
        if (!p)
            continue;
        ProtobufCBinaryData lb = p->last_block.len ? p->last_block : p->first_block;
        if (bref_key(s, i, p->first_block.data, p->first_block.len, &first, NULL) ||
            bref_key(s, i, lb.data, lb.len, &last, NULL))
            continue;
        found = 1;
        rc = entity_walk(s, i, &c, edr__rd32(p->first_block.data), &first, &last);
    }
    edr_arena_reset(&s->arena);
    (void)found;
    return rc;
}

/* Walks the time index of one host from the bucket of from_ns. */
typedef int (*time_fn)(edr_store_t *s, const edr_block_info_t *bi, const uint8_t *bk, void *ud);
struct time_ctx {
    uint64_t from, to;
    time_fn tf;
    void *ud;
    const uint8_t *host;
    int past; /* the scan of a shard stopped past the window (not a callback's stop) */
};

static int time_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl, void *ud)
{
    struct time_ctx *c = ud;
    if (kl != 1 + BREF_LEN || vl < BLOCK_INFO_LEN)
        return 0;
    edr_block_info_t bi;
    memcpy(bi.key.host_id, c->host, 16);
    bi.key.bucket = edr__rd32(k + 5);
    bi.key.seq = edr__rd64(k + 9);
    if (bi.key.bucket > win_hi(&s->sh[shard], edr__rd32(k + 1), c->to)) {
        c->past = 1; /* stop this shard's scan; the walk goes on */
        return 1;
    }
    edr__block_info_decode(v, &bi);
    if (bi.last_ns < c->from || (c->to && bi.first_ns >= c->to))
        return 0;
    uint8_t bk[EDR_BLOCK_KEY_LEN];
    edr_block_key_encode(&bi.key, bk);
    return c->tf(s, &bi, bk, c->ud);
}

static int host_time_walk(edr_store_t *s, const uint8_t host[16], uint64_t from_ns, uint64_t to_ns,
                          time_fn tf, void *ud)
{
    uint8_t pre[1 + 4], start[1 + 4 + 4];
    struct time_ctx c = {from_ns, to_ns, tf, ud, host, 0};
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++) {
        uint32_t hn;
        if ((rc = shard_hostn(s, i, host, &hn)) != 0) {
            rc = rc == EDR_ENOENT ? 0 : rc; /* no block of the host in this shard */
            continue;
        }
        pre[0] = start[0] = POST_TIME;
        edr__be32(pre + 1, hn);
        edr__be32(start + 1, hn);
        edr__be32(start + 5, win_lo(&s->sh[i], hn, from_ns));
        c.past = 0;
        rc = scan(s, i, CF_POST, pre, sizeof(pre), start, sizeof(start), time_step, &c);
        if (c.past)
            rc = 0;
    }
    return rc;
}

struct blk_ctx {
    edr_store_block_fn fn;
    void *ud;
};

static int blk_cb(edr_store_t *s, const edr_block_info_t *bi, const uint8_t *bk, void *ud)
{
    (void)s;
    (void)bk;
    struct blk_ctx *c = ud;
    return c->fn(bi, c->ud);
}

int edr_store_host_blocks(edr_store_t *s, const uint8_t host_id[16], uint64_t from_ns,
                          uint64_t to_ns, edr_store_block_fn fn, void *ud)
{
    struct blk_ctx c = {fn, ud};
    return host_time_walk(s, host_id, from_ns, to_ns, blk_cb, &c);
}

static int hev_cb(edr_store_t *s, const edr_block_info_t *bi, const uint8_t *bk, void *ud)
{
    (void)bi;
    struct ev_ctx *c = ud;
    return block_walk(s, bk, NULL, c->from, c->to, c->fn, c->ud);
}

int edr_store_host_events(edr_store_t *s, const uint8_t host_id[16], uint64_t from_ns,
                          uint64_t to_ns, edr_store_event_fn fn, void *ud)
{
    struct ev_ctx c = {NULL, from_ns, to_ns, fn, ud};
    return host_time_walk(s, host_id, from_ns, to_ns, hev_cb, &c);
}

struct post_ctx {
    size_t bk_off;
    uint64_t from, to;
    edr_store_block_fn fn;
    void *ud;
    uint8_t (*br)[BREF_LEN]; /* the shard's block references in the window */
    size_t n, cap;
};

static int post_run(edr_store_t *s, unsigned shard, struct post_ctx *c);

/* References gathered, sorted and reported together (16 MiB): a query of a
 * path every host writes, over buckets of a busy fleet, is answered in
 * runs of this many rather than held whole. */
#define POST_RUN (1u << 20)

/* Notes reference (hn, bucket, seq) when its bucket is in the window. */
static int post_note(edr_store_t *s, unsigned shard, struct post_ctx *c, uint32_t hn,
                     uint32_t bucket, uint64_t seq)
{
    if (bucket < win_lo(&s->sh[shard], hn, c->from) || bucket > win_hi(&s->sh[shard], hn, c->to))
        return 0;
    if (EDR_VEC_RESERVE(c->br, c->cap, c->n + 1, 64)) return EDR_ENOMEM;
    edr__bref_encode(c->br[c->n++], hn, bucket, seq);
    return c->n == POST_RUN ? post_run(s, shard, c) : 0;
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A posting key (type | id | block reference) and its value, the other
 * blocks of its group (see post_flush in store_write.c): every reference.
 * A value that does not decode, names a host number out of range or holds
 * more than POST_GROUP_MAX blocks is damaged: EDR_ESTORE. */
static int post_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl, void *ud)
{
    struct post_ctx *c = ud;
    if (kl != c->bk_off + BREF_LEN)
        return 0;
    const uint8_t *br = k + c->bk_off, *end = v + vl;
    uint32_t hn = edr__rd32(br), bucket = edr__rd32(br + 4);
    uint64_t seq = edr__rd64(br + 8);
    int rc = post_note(s, shard, c, hn, bucket, seq);
    for (size_t n = 0; !rc && v < end; n++) {
        uint64_t zh, x;
        int64_t d = 0;
        int ok = n < POST_GROUP_MAX && !pb_varint(&v, end, &zh) && !pb_varint(&v, end, &x);
        if (ok) {
            d = unzigzag(zh);
            ok = d <= (int64_t)UINT32_MAX - (int64_t)hn && d >= -(int64_t)hn;
        }
        if (!ok) {
            edr_log_error("store %s: a posting's block list does not decode (%zu bytes)",
                          s->sh[shard].path, vl);
            return EDR_ESTORE;
        }
        if (d)
            seq = x;
        else if (x)
            seq += (uint64_t)unzigzag(x);
        else
            continue; /* the block before it again */
        hn = (uint32_t)((int64_t)hn + d);
        rc = post_note(s, shard, c, hn, bucket, seq);
    }
    return rc;
}

static int bref_cmp(const void *a, const void *b)
{
    return memcmp(a, b, BREF_LEN);
}

/* Reports block br of shard when it is visible and its events overlap the window. */
static int post_report(edr_store_t *s, unsigned shard, const uint8_t *br, struct post_ctx *c)
{
    edr_block_info_t bi;
    memset(&bi, 0, sizeof(bi));
    if (bref_key(s, shard, br, BREF_LEN, &bi.key, NULL))
        return 0; /* host number not (yet) visible to this reader */
    uint8_t tk[1 + BREF_LEN];
    tk[0] = POST_TIME;
    memcpy(tk + 1, br, BREF_LEN);
    char *rerr = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->sh[shard].db, s->ro,
                                                        s->sh[shard].cf[CF_POST],
                                                        (const char *)tk, sizeof(tk), &rerr);
    if (rerr) {
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    if (!ps)
        return 0; /* retired block */
    size_t il;
    const char *iv = rocksdb_pinnableslice_value(ps, &il);
    int in = 1;
    if (il >= BLOCK_INFO_LEN) {
        edr__block_info_decode((const uint8_t *)iv, &bi);
        /* the bucket window above is the index's; the block's own times
         * decide (a block wholly before from or from to on is not shown) */
        in = bi.last_ns >= c->from && (!c->to || bi.first_ns < c->to);
    }
    rocksdb_pinnableslice_destroy(ps);
    return in ? c->fn(&bi, c->ud) : 0;
}

/* Reports the references gathered of shard, sorted, each once. */
static int post_run(edr_store_t *s, unsigned shard, struct post_ctx *c)
{
    int rc = 0;
    if (c->n) /* qsort's base may not be NULL, even for no element */
        qsort(c->br, c->n, BREF_LEN, bref_cmp);
    for (size_t j = 0; j < c->n && !rc; j++)
        if (!j || memcmp(c->br[j], c->br[j - 1], BREF_LEN)) rc = post_report(s, shard, c->br[j], c);
    c->n = 0;
    return rc;
}

/* The blocks of the postings under prefix pre, shard by shard, each
 * shard's in block-reference order (host number, bucket, seq; past
 * POST_RUN in the window, in sorted runs of that many), each once. */
static int post_blocks(edr_store_t *s, const uint8_t *pre, size_t pl, struct post_ctx *c)
{
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++) {
        c->n = 0;
        rc = scan(s, i, CF_POST, pre, pl, NULL, 0, post_step, c);
        if (!rc) rc = post_run(s, i, c);
    }
    free(c->br);
    return rc;
}

int edr_store_file_blocks(edr_store_t *s, const char *path, uint64_t from_ns, uint64_t to_ns,
                          edr_store_block_fn fn, void *ud)
{
    uint8_t pre[9];
    pre[0] = POST_FILE;
    edr__be64(pre + 1, XXH3_64bits(path, strlen(path)));
    struct post_ctx c = {sizeof(pre), from_ns, to_ns, fn, ud, NULL, 0, 0};
    return post_blocks(s, pre, sizeof(pre), &c);
}

int edr_store_remote_blocks(edr_store_t *s, const uint8_t *ip, size_t ip_len, uint64_t from_ns,
                            uint64_t to_ns, edr_store_block_fn fn, void *ud)
{
    uint8_t pre[17];
    pre[0] = POST_REMOTE;
    if (edr__ip16(ip, ip_len, pre + 1))
        return EDR_EINVAL;
    struct post_ctx c = {sizeof(pre), from_ns, to_ns, fn, ud, NULL, 0, 0};
    return post_blocks(s, pre, sizeof(pre), &c);
}

/* 'h' keys hold the entities of one block: the entities of one host are
 * gathered over its keys, sorted and reported once each (as one key per
 * process reported them). */
struct hash_ctx {
    edr_store_hash_fn fn;
    void *ud;
    uint8_t host[16];
    uint8_t (*ents)[16];
    size_t n, cap;
    int err;
};

static int cmp_ent(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int hash_flush(struct hash_ctx *c)
{
    int rc = 0;
    if (c->n) /* qsort's base may not be NULL, even for no element */
        qsort(c->ents, c->n, 16, cmp_ent);
    for (size_t i = 0; i < c->n && !rc; i++)
        if (!i || memcmp(c->ents[i], c->ents[i - 1], 16))
            rc = c->fn(c->host, c->ents[i], c->ud);
    c->n = 0;
    return rc;
}

static int hash_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl, void *ud)
{
    struct hash_ctx *c = ud;
    if (kl != 1 + 32 + 16 + 4 + 8 || vl % 16)
        return 0;
    if (edr__rd32(k + 49) < s->sh[shard].cutoff)
        return 0; /* retired, not yet compacted away */
    int rc = 0;
    /* one host's at a time, and of a host that ran the image more than a
     * million times, runs of that many (16 MiB), each sorted and without
     * repeats: an entity that executed it again in another run is listed
     * once per run (review-1206k-store 10: memory grew with the host's
     * executions, 16 B each) */
    if (c->n && (memcmp(c->host, k + 33, 16) || c->n + vl / 16 > POST_RUN) &&
        (rc = hash_flush(c)) != 0)
        return rc;
    memcpy(c->host, k + 33, 16);
    if (c->n + vl / 16 > c->cap) {
        size_t nc = c->cap ? c->cap : 64;
        while (nc < c->n + vl / 16)
            nc *= 2;
        void *ne = realloc(c->ents, nc * 16);
        if (!ne)
            return c->err = EDR_ENOMEM;
        c->ents = ne;
        c->cap = nc;
    }
    memcpy(c->ents[c->n], v, vl);
    c->n += vl / 16;
    return 0;
}

int edr_store_hash_processes(edr_store_t *s, const uint8_t sha256[32], edr_store_hash_fn fn,
                             void *ud)
{
    uint8_t pre[33];
    pre[0] = POST_HASH;
    memcpy(pre + 1, sha256, 32);
    struct hash_ctx c = {.fn = fn, .ud = ud};
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++) {
        rc = scan(s, i, CF_POST, pre, sizeof(pre), NULL, 0, hash_step, &c);
        if (!rc && c.n)
            rc = hash_flush(&c); /* the last host of the shard */
        c.n = 0;
    }
    free(c.ents);
    return rc;
}

struct hh_ctx {
    edr_store_hash_host_fn fn;
    void *ud;
};

static int hash_host_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl,
                          const uint8_t *v, size_t vl, void *ud)
{
    struct hh_ctx *c = ud;
    if (kl != 1 + 32 + 16 || vl != 4 || edr__rd32(v) < s->sh[shard].cutoff)
        return 0; /* malformed, or last run in a retired hour */
    return c->fn(k + 33, (uint64_t)edr__rd32(v) * EDR_STORE_BUCKET_NS, c->ud);
}

int edr_store_hash_hosts(edr_store_t *s, const uint8_t sha256[32], edr_store_hash_host_fn fn,
                         void *ud)
{
    uint8_t pre[33];
    pre[0] = POST_HASH_HOST;
    memcpy(pre + 1, sha256, 32);
    struct hh_ctx c = {fn, ud};
    return scan_all(s, CF_POST, pre, sizeof(pre), hash_host_step, &c);
}

int edr_store_host_shard(edr_store_t *s, const uint8_t host_id[16], int except)
{
    for (unsigned i = 0; i < s->n; i++) {
        const char *base = strrchr(s->sh[i].path, '/');
        unsigned num;
        if (sscanf(base ? base + 1 : s->sh[i].path, "shard-%u", &num) != 1 || (int)num == except)
            continue;
        uint32_t hn;
        int rc = shard_hostn(s, i, host_id, &hn);
        if (!rc)
            return (int)num;
        if (rc != EDR_ENOENT)
            return rc;
    }
    return EDR_ENOENT;
}

/* A host some of whose batches went to another partition (a topic whose
 * partition count changed) has a record in each shard that holds some:
 * the list shows it once, with the record of the shard that saw it last
 * and the first time any of them saw it (it was listed twice, and `edr store
 * host NAME` said two hosts had the name: review-1206p-kafka F5). */
typedef struct {
    uint8_t id[16];
    unsigned shard, used;
    uint64_t first, last;
} host_pick_t;

static host_pick_t *pick_slot(host_pick_t *t, size_t cap, const uint8_t id[16])
{
    /* all 16 bytes: ids that share their first 8 (a fleet's own scheme)
     * made the table a list (review-1206q 5) */
    size_t i = (size_t)XXH3_64bits(id, 16) & (cap - 1);
    while (t[i].used && memcmp(t[i].id, id, 16))
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* The shard whose record of each host id to show; NULL (no table needed)
 * for a store of one shard, or when memory runs out (every record shown). */
static host_pick_t *hosts_pick(edr_store_t *s, size_t *cap_out)
{
    size_t cap = 1024, n = 0;
    host_pick_t *t = s->n > 1 ? calloc(cap, sizeof(*t)) : NULL;
    for (unsigned i = 0; t && i < s->n; i++) {
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(s->sh[i].db, s->ro, s->sh[i].cf[CF_HOSTS]);
        for (rocksdb_iter_seek_to_first(it); t && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
            if (kl != 16) continue;
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
            edr_arena_reset(&s->arena);
            Edr__V1__HostRecord *hr = edr__v1__host_record__unpack(&s->arena.pb, vl, v);
            if (!hr) continue;
            if ((n + 1) * 2 > cap) { /* grow: re-insert */
                host_pick_t *nt = calloc(cap * 2, sizeof(*nt));
                for (size_t j = 0; nt && j < cap; j++)
                    if (t[j].used) *pick_slot(nt, cap * 2, t[j].id) = t[j];
                free(t);
                t = nt;
                cap *= 2;
                if (!t) break;
            }
            host_pick_t *e = pick_slot(t, cap, k);
            if (!e->used) {
                *e = (host_pick_t){
                    .shard = i, .used = 1, .first = hr->first_seen_ns, .last = hr->last_seen_ns};
                memcpy(e->id, k, 16);
                n++;
            } else {
                if (hr->last_seen_ns > e->last) {
                    e->last = hr->last_seen_ns;
                    e->shard = i;
                }
                if (hr->first_seen_ns && (!e->first || hr->first_seen_ns < e->first))
                    e->first = hr->first_seen_ns;
            }
        }
        rocksdb_iter_destroy(it);
    }
    edr_arena_reset(&s->arena);
    *cap_out = cap;
    return t;
}

int edr_store_hosts(edr_store_t *s, edr_store_host_fn fn, void *ud)
{
    int rc = 0;
    size_t pcap = 0;
    host_pick_t *pick = hosts_pick(s, &pcap);
    for (unsigned i = 0; i < s->n && !rc; i++) {
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(s->sh[i].db, s->ro, s->sh[i].cf[CF_HOSTS]);
        rocksdb_iter_seek_to_first(it);
        while (!rc && rocksdb_iter_valid(it)) {
            size_t kl, vl;
            const char *k = rocksdb_iter_key(it, &kl);
            if (kl != 16) {
                rocksdb_iter_next(it);
                continue;
            }
            uint8_t host[16];
            memcpy(host, k, 16);
            const char *v = rocksdb_iter_value(it, &vl);
            edr_arena_reset(&s->arena);
            Edr__V1__HostRecord *hr =
                edr__v1__host_record__unpack(&s->arena.pb, vl, (const uint8_t *)v);
            Edr__V1__Event *health = NULL;
            rocksdb_iter_next(it);
            if (rocksdb_iter_valid(it)) {
                k = rocksdb_iter_key(it, &kl);
                if (kl == 17 && !memcmp(k, host, 16) && k[16] == 'H') {
                    v = rocksdb_iter_value(it, &vl);
                    health = edr__v1__event__unpack(&s->arena.pb, vl, (const uint8_t *)v);
                    rocksdb_iter_next(it);
                }
            }
            host_pick_t *e = pick && hr ? pick_slot(pick, pcap, host) : NULL;
            if (e && e->used && e->shard != i) continue; /* shown from the shard that saw it last */
            if (e && e->used) hr->first_seen_ns = e->first;
            if (hr)
                rc = fn(hr, health, ud);
        }
        rc = iter_close(s, i, it, rc); /* a read error is not the end of the list */
    }
    free(pick);
    edr_arena_reset(&s->arena);
    return rc;
}

static int stat_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl, void *ud)
{
    (void)s;
    (void)shard;
    (void)k;
    edr_store_stats_t *st = ud;
    if (kl != 1 + BREF_LEN || vl < BLOCK_INFO_LEN)
        return 0;
    edr_block_info_t bi;
    edr__block_info_decode(v, &bi);
    st->blocks++;
    st->events += bi.n_events;
    st->frame_bytes += bi.frame_len;
    return 0;
}

static int count_host(const Edr__V1__HostRecord *h, const Edr__V1__Event *health, void *ud)
{
    (void)h;
    (void)health;
    (*(uint64_t *)ud)++;
    return 0;
}

int edr_store_stats(edr_store_t *s, edr_store_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->shards = s->n;
    uint8_t pre[1] = {POST_TIME};
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++) {
        rc = scan(s, i, CF_POST, pre, 1, NULL, 0, stat_step, st);
        st->disk_bytes += edr__dir_bytes(s->sh[i].path);
        char *v = rocksdb_property_value_cf(s->sh[i].db, s->sh[i].cf[CF_PROCS],
                                            "rocksdb.estimate-num-keys");
        if (v)
            st->processes += strtoull(v, NULL, 10);
        rocksdb_free(v);
        const shard_t *sh = &s->sh[i];
        uint32_t m = sh->lead > sh->lag ? sh->lead : sh->lag;
        st->span_hours = m > st->span_hours ? m : st->span_hours;
        st->wide_span_hosts += sh->n_xspan;
        for (size_t j = 0; j < sh->n_xspan; j++) {
            m = sh->xspan[j].lead > sh->xspan[j].lag ? sh->xspan[j].lead : sh->xspan[j].lag;
            st->wide_span_hours = m > st->wide_span_hours ? m : st->wide_span_hours;
        }
    }
    if (!rc)
        rc = edr_store_hosts(s, count_host, &st->hosts);
    return rc;
}

struct procs_ctx {
    edr_store_proc_fn fn;
    void *ud;
};

static int proc_step(edr_store_t *s, unsigned shard, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl, void *ud)
{
    (void)shard;
    struct procs_ctx *c = ud;
    edr_arena_reset(&s->arena);
    Edr__V1__ProcessRecord *p = edr__v1__process_record__unpack(&s->arena.pb, vl, v);
    if (!p || !p->first_block.len) /* a process known only from its children's activity */
        return 0;
    if (kl == 16)
        proc_restore(s, shard, p, k, &s->arena);
    return c->fn(p, c->ud);
}

int edr_store_processes(edr_store_t *s, edr_store_proc_fn fn, void *ud)
{
    struct procs_ctx c = {fn, ud};
    int rc = 0;
    for (unsigned i = 0; i < s->n && !rc; i++)
        rc = scan(s, i, CF_PROCS, (const uint8_t *)"", 0, NULL, 0, proc_step, &c);
    edr_arena_reset(&s->arena);
    return rc;
}
