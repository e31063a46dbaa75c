/* Store schema: column families and their options, key coding, the process-record merge operator and retention filters. */
#include "store_int.h"

#include "edr/err.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const edr__store_cf_names[CF__COUNT] = {"default", "blocks", "procs", "kids",
                                                     "post",    "hosts",  "meta"};

void edr_block_key_encode(const edr_block_key_t *k, uint8_t out[EDR_BLOCK_KEY_LEN])
{
    memcpy(out, k->host_id, 16);
    edr__be32(out + 16, k->bucket);
    edr__be64(out + 20, k->seq);
}

int edr_block_key_decode(const void *p, size_t n, edr_block_key_t *k)
{
    if (n != EDR_BLOCK_KEY_LEN)
        return EDR_EINVAL;
    const uint8_t *b = p;
    memcpy(k->host_id, b, 16);
    k->bucket = edr__rd32(b + 16);
    k->seq = edr__rd64(b + 20);
    return 0;
}

void edr__block_info_encode(const edr_block_info_t *bi, uint8_t out[BLOCK_INFO_LEN])
{
    edr__be64(out, bi->first_ns);
    edr__be64(out + 8, bi->last_ns);
    edr__be32(out + 16, bi->n_events);
    edr__be32(out + 20, bi->frame_len);
}

void edr__block_info_decode(const uint8_t *v, edr_block_info_t *bi)
{
    bi->first_ns = edr__rd64(v);
    bi->last_ns = edr__rd64(v + 8);
    bi->n_events = edr__rd32(v + 16);
    bi->frame_len = edr__rd32(v + 20);
}

int edr__ip16(const uint8_t *ip, size_t ip_len, uint8_t out[16])
{
    if (ip_len == 16) {
        memcpy(out, ip, 16);
        return 0;
    }
    if (ip_len != 4)
        return -1;
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, ip, 4);
    return 0;
}

void edr__store_shard_path(const char *root, uint32_t shard, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shard-%04u", root, shard);
}

uint64_t edr__dir_bytes(const char *path)
{
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            total += edr__dir_bytes(p);
        else if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return total;
}

/*
 * Process records are written as merge operands: one partial ProcessRecord
 * per entity per batch, never read back on the ingest path. The merge rules:
 *   identity (entity, host, pid, ppid, parent): first non-empty value wins
 *     (the parent at creation, not a later reparent);
 *   image (exe, command line, cwd, uid, user, sha256, container): taken as a
 *     group from the latest operand that carries an exe or a command line
 *     (exec replaces the image, the entity stays); a weak one (image_weak:
 *     named by an event other than the start, in imports) only while the
 *     record has none, and any other replaces it;
 *   start time: first non-zero; end, exit code, signal: latest non-zero end;
 *   first_block: smallest key, last_block: largest; exec_count: sum.
 * Operands of one key arrive in write order, which per host is batch order.
 * To keep records small, what is implied is not stored: the entity id (the
 * key), the host id (first_block and last_block are stored as 16-byte block
 * references whose host number names it, see BREF_LEN) and a last_block
 * equal to first_block; readers restore all three, and the references to
 * full block keys. An empty last_block in an operand or record means "same
 * as its first_block". References of one entity share the host number, so
 * comparing them bytewise orders them like block keys.
 */
static int bin_empty(ProtobufCBinaryData b)
{
    return b.len == 0;
}

static int str_empty(const char *s)
{
    return !s || !*s;
}

void edr__proc_merge(Edr__V1__ProcessRecord *acc, const Edr__V1__ProcessRecord *op)
{
    if (bin_empty(acc->entity_id))
        acc->entity_id = op->entity_id;
    if (bin_empty(acc->host_id))
        acc->host_id = op->host_id;
    if (!acc->pid)
        acc->pid = op->pid;
    if (bin_empty(acc->parent_entity_id))
        acc->parent_entity_id = op->parent_entity_id;
    if (!acc->ppid)
        acc->ppid = op->ppid;
    if ((!str_empty(op->exe) || !str_empty(op->command_line)) &&
        (!op->image_weak || (str_empty(acc->exe) && str_empty(acc->command_line)) ||
         (acc->image_weak && edr__weak_image_better(op->exe, acc->exe)))) {
        acc->image_weak = op->image_weak;
        acc->exe = op->exe;
        acc->command_line = op->command_line;
        acc->cwd = op->cwd;
        acc->uid = op->uid;
        acc->user = op->user;
        acc->exe_sha256 = op->exe_sha256;
        acc->container_id = op->container_id;
    }
    if (!acc->start_time_ns)
        acc->start_time_ns = op->start_time_ns;
    if (op->end_time_ns) {
        acc->end_time_ns = op->end_time_ns;
        acc->exit_code = op->exit_code;
        acc->exit_signal = op->exit_signal;
        acc->exit_unknown = op->exit_unknown;
    }
    if (!bin_empty(op->first_block) &&
        (bin_empty(acc->first_block) ||
         (op->first_block.len == acc->first_block.len &&
          memcmp(op->first_block.data, acc->first_block.data, op->first_block.len) < 0)))
        acc->first_block = op->first_block;
    ProtobufCBinaryData ol = bin_empty(op->last_block) ? op->first_block : op->last_block;
    ProtobufCBinaryData al = bin_empty(acc->last_block) ? acc->first_block : acc->last_block;
    if (!bin_empty(ol) &&
        (bin_empty(al) || (ol.len == al.len && memcmp(ol.data, al.data, ol.len) > 0)))
        acc->last_block = ol;
    acc->exec_count += op->exec_count;
    if (op->child_bucket > acc->child_bucket)
        acc->child_bucket = op->child_bucket;
    if (op->alive_bucket > acc->alive_bucket) acc->alive_bucket = op->alive_bucket;
}

static char *merge_records(const char *existing, size_t existing_len, const char *const *ops,
                           const size_t *op_lens, int n_ops, unsigned char *success,
                           size_t *out_len)
{
    Edr__V1__ProcessRecord acc = EDR__V1__PROCESS_RECORD__INIT;
    Edr__V1__ProcessRecord **parts = calloc((size_t)n_ops + 1, sizeof(*parts));
    int n_parts = 0;
    char *out = NULL;
    *success = 0;
    if (!parts)
        return NULL;
    if (existing) {
        parts[n_parts] = edr__v1__process_record__unpack(NULL, existing_len,
                                                         (const uint8_t *)existing);
        if (parts[n_parts])
            edr__proc_merge(&acc, parts[n_parts++]);
    }
    for (int i = 0; i < n_ops; i++) {
        parts[n_parts] =
            edr__v1__process_record__unpack(NULL, op_lens[i], (const uint8_t *)ops[i]);
        if (parts[n_parts]) /* an undecodable operand is dropped rather than poisoning the key */
            edr__proc_merge(&acc, parts[n_parts++]);
    }
    /* leave out what readers restore (see above) */
    if (acc.last_block.len == acc.first_block.len &&
        (!acc.last_block.len ||
         !memcmp(acc.last_block.data, acc.first_block.data, acc.last_block.len)))
        acc.last_block.len = 0;
    if (acc.first_block.len == BREF_LEN)
        acc.host_id.len = 0;
    acc.entity_id.len = 0;
    size_t lens[5];
    out = malloc(edr__proc_record_size_max(&acc, lens));
    if (out) {
        *out_len = edr__proc_record_pack(&acc, lens, (uint8_t *)out);
        *success = 1;
    }
    for (int i = 0; i < n_parts; i++)
        edr__v1__process_record__free_unpacked(parts[i], NULL);
    free(parts);
    return out;
}

static char *proc_full_merge(void *st, const char *key, size_t klen, const char *existing,
                             size_t existing_len, const char *const *ops, const size_t *op_lens,
                             int n_ops, unsigned char *success, size_t *out_len)
{
    (void)st;
    (void)key;
    (void)klen;
    return merge_records(existing, existing_len, ops, op_lens, n_ops, success, out_len);
}

static char *proc_partial_merge(void *st, const char *key, size_t klen, const char *const *ops,
                                const size_t *op_lens, int n_ops, unsigned char *success,
                                size_t *out_len)
{
    (void)st;
    (void)key;
    (void)klen;
    return merge_records(NULL, 0, ops, op_lens, n_ops, success, out_len);
}

static void merge_delete(void *st, const char *v, size_t n)
{
    (void)st;
    (void)n;
    free((void *)v);
}

static const char *proc_merge_name(void *st)
{
    (void)st;
    return "edr.v1.ProcessRecord.merge";
}

int edr__store_format(rocksdb_t *db, const rocksdb_readoptions_t *ro,
                      rocksdb_column_family_handle_t *meta, const char *path, uint32_t *fmt,
                      char *err, size_t errlen)
{
    char *rerr = NULL;
    size_t vl = 0;
    char *v = rocksdb_get_cf(db, ro, meta, EDR__META_FORMAT, strlen(EDR__META_FORMAT), &vl, &rerr);
    if (rerr) {
        snprintf(err, errlen, "store %s: %s", path, rerr);
        rocksdb_free(rerr);
        return EDR_ESTORE;
    }
    *fmt = v && vl == 4 ? edr__rd32((const uint8_t *)v) : 0;
    int bad = v && vl != 4;
    rocksdb_free(v);
    if (bad) {
        snprintf(err, errlen, "store %s: its format marker is damaged (%zu bytes, not 4)", path,
                 vl);
        return EDR_ESTORE;
    }
    if (*fmt > EDR__STORE_FORMAT) {
        snprintf(err, errlen,
                 "store %s: written by a newer edr (store format %u; this one reads up to %u)",
                 path, *fmt, EDR__STORE_FORMAT);
        return EDR_ESTORE;
    }
    return 0;
}

static void noop_destroy(void *st)
{
    (void)st;
}

/* Retention: drop postings, children and process records whose newest
 * bucket is below the cutoff. Range deletes handle blocks and the time index. */
static unsigned char post_filter(void *st, int level, const char *key, size_t klen,
                                 const char *val, size_t vlen, char **nv, size_t *nvlen,
                                 unsigned char *changed)
{
    (void)level;
    (void)nv;
    (void)nvlen;
    *changed = 0;
    const edr__retention_t *r = st;
    uint32_t cut = r->cutoff_bucket;
    if (!cut || klen < 1)
        return 0;
    const uint8_t *k = (const uint8_t *)key;
    size_t off;
    switch (k[0]) { /* offset of the bucket in the block reference */
    case POST_FILE: off = 1 + 8 + 4; break;
    case POST_REMOTE: off = 1 + 16 + 4; break;
    case POST_TIME: off = 1 + 4; break;
    case POST_HASH: off = 1 + 32 + 16; break;
    case POST_HASH_HOST: return vlen == 4 && edr__rd32((const uint8_t *)val) < cut;
    default: return 0;
    }
    return klen >= off + 4 && edr__rd32(k + off) < cut;
}

static unsigned char kids_filter(void *st, int level, const char *key, size_t klen,
                                 const char *val, size_t vlen, char **nv, size_t *nvlen,
                                 unsigned char *changed)
{
    (void)level;
    (void)key;
    (void)klen;
    (void)nv;
    (void)nvlen;
    *changed = 0;
    const edr__retention_t *r = st;
    return r->cutoff_bucket && vlen == 4 && edr__rd32((const uint8_t *)val) < r->cutoff_bucket;
}

static unsigned char procs_filter(void *st, int level, const char *key, size_t klen,
                                  const char *val, size_t vlen, char **nv, size_t *nvlen,
                                  unsigned char *changed)
{
    (void)level;
    (void)key;
    (void)klen;
    (void)nv;
    (void)nvlen;
    *changed = 0;
    const edr__retention_t *r = st;
    if (!r->cutoff_bucket)
        return 0;
    Edr__V1__ProcessRecord *p =
        edr__v1__process_record__unpack(NULL, vlen, (const uint8_t *)val);
    if (!p)
        return 0;
    ProtobufCBinaryData last = p->last_block.len ? p->last_block : p->first_block;
    /* kept while it, or a child of it, acted within the horizon, or while
     * its sensor lists it running (ProcessInventory) */
    unsigned char drop = (last.len != BREF_LEN || edr__rd32(last.data + 4) < r->cutoff_bucket) &&
                         p->child_bucket < r->cutoff_bucket && p->alive_bucket < r->cutoff_bucket;
    if (last.len != BREF_LEN && !p->child_bucket && !p->alive_bucket)
        drop = 0; /* none: not a record this filter understands */
    edr__v1__process_record__free_unpacked(p, NULL);
    return drop;
}

static const char *post_filter_name(void *st)
{
    (void)st;
    return "edr.retention.post";
}
static const char *kids_filter_name(void *st)
{
    (void)st;
    return "edr.retention.kids";
}
static const char *procs_filter_name(void *st)
{
    (void)st;
    return "edr.retention.procs";
}

void edr__store_cf_options(rocksdb_options_t *out[CF__COUNT], const edr_store_opts_t *o,
                           edr__retention_t *ret, rocksdb_compactionfilter_t *filters[CF__COUNT])
{
    for (int i = 0; i < CF__COUNT; i++)
        if (filters)
            filters[i] = NULL;
    uint64_t wbuf = o && o->write_buffer ? o->write_buffer : (32u << 20);
    for (int i = 0; i < CF__COUNT; i++) {
        rocksdb_options_t *op = rocksdb_options_create();
        rocksdb_block_based_table_options_t *bb = rocksdb_block_based_options_create();
        rocksdb_options_set_write_buffer_size(op, (size_t)(i == CF_BLOCKS ? wbuf * 2 : i == CF_POST
                                                               ? wbuf
                                                               : (wbuf / 2 > (4u << 20)
                                                                      ? wbuf / 2
                                                                      : (4u << 20))));
        if (i != CF_BLOCKS)
            rocksdb_options_set_level_compaction_dynamic_level_bytes(op, 1);
        if (i == CF_PROCS || i == CF_KIDS || i == CF_POST) {
            /* fewer, larger L0->base compactions while ingesting (each one
             * recompresses its output with zstd at the last level) */
            rocksdb_options_set_level0_file_num_compaction_trigger(op, 6);
            rocksdb_options_set_level0_slowdown_writes_trigger(op, 30);
            rocksdb_options_set_level0_stop_writes_trigger(op, 48);
        }
        if (i == CF_BLOCKS) {
            /* frames are zstd already: store them as received */
            rocksdb_options_set_compression(op, rocksdb_no_compression);
            rocksdb_options_set_bottommost_compression(op, rocksdb_no_compression);
            /* append-only and never updated: universal compaction merges whole
             * sorted runs only when they pile up, instead of rewriting the
             * base level on every flush (leveled: ~5x write amplification of
             * the largest family, competing with the writer for the cores) */
            rocksdb_options_set_compaction_style(op, rocksdb_universal_compaction);
            rocksdb_universal_compaction_options_t *uo = rocksdb_universal_compaction_options_create();
            rocksdb_universal_compaction_options_set_size_ratio(uo, 10);
            rocksdb_universal_compaction_options_set_min_merge_width(uo, 4);
            rocksdb_universal_compaction_options_set_max_size_amplification_percent(uo, 400);
            rocksdb_options_set_universal_compaction_options(op, uo);
            rocksdb_universal_compaction_options_destroy(uo);
            rocksdb_options_set_level0_file_num_compaction_trigger(op, 8);
            rocksdb_options_set_level0_slowdown_writes_trigger(op, 40);
            rocksdb_options_set_level0_stop_writes_trigger(op, 60);
            /* a frame (~20 KB) is one value and is read whole: the block size
             * only groups the small ones */
            rocksdb_block_based_options_set_block_size(bb, 16 << 10);
        } else {
            /* indexes: lz4 while young, zstd with a dictionary and large
             * blocks once compacted to the last level (what stays on disk) */
            rocksdb_options_set_compression(op, rocksdb_lz4_compression);
            rocksdb_options_set_bottommost_compression(op, rocksdb_zstd_compression);
            rocksdb_options_set_bottommost_compression_options(op, -14, 9, 0, 32 << 10, 1);
            /* The dictionary is raw content (sampled data), not trained:
             * Debian's librocksdb decompresses with ZSTD_decompress_usingDict,
             * not a digested dictionary, so every block read of a trained one
             * rebuilds its entropy tables, a third of a process record
             * lookup. A raw-content dictionary costs nothing to load. 10
             * M-event store, the same data recompacted: ancestry p50 123-193
             * -> 65-74 us, p99 448-551 -> 200-249 us, procs 5.00 -> 5.11
             * B/event (without a dictionary: 8.84); postings the same size,
             * process events and hash queries ~5 % faster. */
            rocksdb_options_set_bottommost_compression_options_zstd_max_train_bytes(op, 0, 1);
            /* procs are read by point lookups (ancestry, ~8 per query), each
             * a cold block read and a zstd decompress: 4 KiB blocks. On the
             * 10 M-event store, against 16 KiB, the ancestry p50/p99 went
             * from ~370/~1,080 to ~270/~740 us for 3.5 % more procs bytes
             * (4.80 -> 4.97 B/event); 32 KiB saved 3 % but cost more still.
             * Kids are read by one prefix seek and postings in runs: 64 KiB */
            rocksdb_block_based_options_set_block_size(bb, i == CF_PROCS ? 4 << 10 : 64 << 10);
        }
        if (i == CF_BLOCKS || i == CF_PROCS || i == CF_HOSTS || i == CF_META)
            rocksdb_block_based_options_set_filter_policy(bb,
                                                          rocksdb_filterpolicy_create_bloom_full(10));
        /* XXH3 table checksums, not RocksDB 7.8's default CRC32C: Debian's
         * librocksdb has only the software CRC32C (~1 GB/s), which every
         * query pays on each block it reads and flushes and compactions on
         * each block they write. A frame-sized block read went from 23.4 to
         * 8.3 us, write + flush from 45.4 to 31.8 us (bench/run
         * block-checksum). The type is kept per file: stores written before
         * read as they are, and compactions rewrite them with XXH3. */
        rocksdb_block_based_options_set_checksum(bb, 4 /* kXXH3 */);
        rocksdb_options_set_block_based_table_factory(op, bb);
        rocksdb_block_based_options_destroy(bb);
        /* The writer never reads postings, children or process records back, so
         * their memtables are unsorted vectors: an insert is an append, the sort
         * happens once when the memtable is flushed (on a background thread).
         * A skiplist insert costs ~2 us here (cache misses); ~750 keys a batch. */
        if (filters && (i == CF_POST || i == CF_KIDS || i == CF_PROCS))
            rocksdb_options_set_memtable_vector_rep(op);
        if (i == CF_PROCS)
            rocksdb_options_set_merge_operator(
                op, rocksdb_mergeoperator_create(NULL, noop_destroy, proc_full_merge,
                                                 proc_partial_merge, merge_delete,
                                                 proc_merge_name));
        if (ret && filters) {
            if (i == CF_POST)
                filters[i] = rocksdb_compactionfilter_create(ret, noop_destroy, post_filter,
                                                             post_filter_name);
            else if (i == CF_KIDS)
                filters[i] = rocksdb_compactionfilter_create(ret, noop_destroy, kids_filter,
                                                             kids_filter_name);
            else if (i == CF_PROCS)
                filters[i] = rocksdb_compactionfilter_create(ret, noop_destroy, procs_filter,
                                                             procs_filter_name);
            if (filters[i])
                rocksdb_options_set_compaction_filter(op, filters[i]);
        }
        out[i] = op;
    }
}
