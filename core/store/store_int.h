/* Internal schema helpers shared by the store writer and readers. */
#ifndef EDR_STORE_INT_H
#define EDR_STORE_INT_H

#include "edr/store.h"
#include "flush.h"

#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

enum { CF_DEFAULT, CF_BLOCKS, CF_PROCS, CF_KIDS, CF_POST, CF_HOSTS, CF_META, CF__COUNT };

extern const char *const edr__store_cf_names[CF__COUNT];

/* Block references inside the indexes: a per-shard host number instead of
 * the 16-byte host id, then bucket and seq, all big-endian so references
 * sort like block keys of one host:
 *   host number (u32) | bucket (u32) | seq (u64)
 * The meta family maps both ways: 'n' | host(16) -> number (u32), 'N' |
 * number (u32) -> host(16); "nhost" holds the count. A host gets its number
 * in the WriteBatch of its first block, so the map and the data commit together. */
#define BREF_LEN 16

/* meta "span" -> lead (u32) | lag (u32): the most buckets any stored block's
 * events reach before and after the bucket of its key (written when it
 * grows, in the batch that grows it); time-window reads widen by it. It
 * grows to EDR__SPAN_SHARED at most (a batch at the turn of the hour): a
 * block reaching further (a host whose clock jumped inside a batch) widens
 * its own host's span, 'S' | host number (u32) -> lead (u32) | lag (u32),
 * so that one host's wild timestamps do not make every time-window scan of
 * the shard start years early. Stores written before the per-host span may
 * hold a larger shared one; readers take the larger of the two. */
#define EDR__META_SPAN "span"
#define EDR__SPAN_SHARED 1
#define EDR__META_HOST_SPAN 'S'

/* meta "format" -> u32: the layout a store's writer wrote. 1 (or absent):
 * one file or remote posting key per block; 2: those of one commit
 * gathered per entity and bucket, the other blocks in the value (a reader
 * of format 1 would miss them). Stores of a newer format than the code
 * knows are refused, by readers and writers alike. */
#define EDR__META_FORMAT  "format"
#define EDR__STORE_FORMAT 2

/* Reads a shard's format into *fmt (0: absent); 0, or EDR_ESTORE with a
 * message in err when it cannot be read or is newer than EDR__STORE_FORMAT. */
int edr__store_format(rocksdb_t *db, const rocksdb_readoptions_t *ro,
                      rocksdb_column_family_handle_t *meta, const char *path, uint32_t *fmt,
                      char *err, size_t errlen);

/* File and remote postings: the blocks of one commit naming an entity in
 * one hour bucket are one key, type | id | the first block's reference ->
 * the others (see post_flush in store_write.c), at most this many of them
 * (a longer group is cut into several keys; readers refuse a longer value
 * as damaged). */
#define POST_GROUP_MAX 4096

/* Posting key types (first byte of a key in "post"). */
#define POST_FILE   'f'
#define POST_REMOTE 'r'
#define POST_PROC   'p'
#define POST_HASH   'h'
#define POST_HASH_HOST 'H' /* 'H' | sha256(32) | host(16) -> bucket: hosts that ran an image */
#define POST_TIME   't'

/* Children: parent[0:KID_PARENT_LEN] | child[0:KID_CHILD_LEN] -> bucket. Both ids
 * are cut short to keep the index small; readers resolve the child prefix in
 * procs and keep only records whose parent is the full id asked for, so a
 * prefix collision costs a lookup, never a wrong answer. */
#define KID_PARENT_LEN 6
#define KID_CHILD_LEN  4
#define KID_KEY_LEN    (KID_PARENT_LEN + KID_CHILD_LEN)

/* The time index value: block info, then a bloom filter of the entity ids
 * acting in the block (lets entity queries skip blocks without decoding). */
#define BLOOM_K 6
static inline void edr__bloom_add(uint8_t *bits, size_t nbits, const uint8_t id[16]);
static inline int edr__bloom_has(const uint8_t *bits, size_t nbits, const uint8_t id[16]);

/* Retention state shared with the compaction filters. */
typedef struct edr__retention {
    volatile uint32_t cutoff_bucket; /* buckets below it are dropped; 0: keep all */
} edr__retention_t;

/* Column family options for every family (caller destroys each with
 * rocksdb_options_destroy). ret and filters may be NULL (readers); the
 * writer destroys the compaction filters in filters[] after closing the DB. */
void edr__store_cf_options(rocksdb_options_t *out[CF__COUNT], const edr_store_opts_t *o,
                           edr__retention_t *ret, rocksdb_compactionfilter_t *filters[CF__COUNT]);

/* Shard directory of a store: "root/shard-NNNN". */
void edr__store_shard_path(const char *root, uint32_t shard, char *buf, size_t len);

/* Sum of file sizes under a directory (not following links). */
uint64_t edr__dir_bytes(const char *path);

static inline void edr__be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void edr__be64(uint8_t *p, uint64_t v)
{
    edr__be32(p, (uint32_t)(v >> 32));
    edr__be32(p + 4, (uint32_t)v);
}
static inline uint32_t edr__rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t edr__rd64(const uint8_t *p)
{
    return (uint64_t)edr__rd32(p) << 32 | edr__rd32(p + 4);
}

static inline void edr__bloom_pos(const uint8_t id[16], uint64_t *h1, uint64_t *h2)
{
    *h1 = edr__rd64(id);
    *h2 = edr__rd64(id + 8) | 1;
}
static inline void edr__bloom_add(uint8_t *bits, size_t nbits, const uint8_t id[16])
{
    uint64_t h1, h2;
    edr__bloom_pos(id, &h1, &h2);
    for (int i = 0; i < BLOOM_K; i++, h1 += h2)
        bits[(h1 % nbits) >> 3] |= (uint8_t)(1u << ((h1 % nbits) & 7));
}
/* 1 when id may be in the filter (an empty filter says yes to everything). */
static inline int edr__bloom_has(const uint8_t *bits, size_t nbits, const uint8_t id[16])
{
    if (!nbits)
        return 1;
    uint64_t h1, h2;
    edr__bloom_pos(id, &h1, &h2);
    for (int i = 0; i < BLOOM_K; i++, h1 += h2)
        if (!(bits[(h1 % nbits) >> 3] & (1u << ((h1 % nbits) & 7))))
            return 0;
    return 1;
}

/* Applies one partial ProcessRecord onto an accumulated one (see store.c for the rules). */
void edr__proc_merge(Edr__V1__ProcessRecord *acc, const Edr__V1__ProcessRecord *op);

/* Whether weak image `cand` (named by an event other than the start) is
 * better than `have`: there is none yet, or cand is a path and have a bare
 * name (Sysmon for Linux names the image in full on a connect, by its
 * short name on an exit: which one came first decided: review-1206o 5). */
static inline int edr__weak_image_better(const char *cand, const char *have)
{
    if (!cand || !*cand) return 0;
    if (!have || !*have) return 1;
    return !strpbrk(have, "/\\") && strpbrk(cand, "/\\");
}

/* Packs r as protobuf (proc_pack.c) without protobuf-c's descriptor walk:
 * edr__proc_record_size_max notes the lengths of r's strings in lens and
 * returns a bound on the packed size; edr__proc_record_pack writes r with
 * those lengths into out (room for that bound) and returns its length. */
size_t edr__proc_record_size_max(const Edr__V1__ProcessRecord *r, size_t lens[5]);
size_t edr__proc_record_pack(const Edr__V1__ProcessRecord *r, const size_t lens[5], uint8_t *out);

/* 16-byte IP key form: IPv4 as v4-mapped IPv6. Returns 0, or -1 when ip_len is neither 4 nor 16. */
int edr__ip16(const uint8_t *ip, size_t ip_len, uint8_t out[16]);

/* 1 when the reader opened shard i as a secondary instance (a writer held
 * it), 0 read-only; for tests. */
int edr__store_secondary(const edr_store_t *s, unsigned i);

static inline void edr__bref_encode(uint8_t out[BREF_LEN], uint32_t hostn, uint32_t bucket,
                                    uint64_t seq)
{
    edr__be32(out, hostn);
    edr__be32(out + 4, bucket);
    edr__be64(out + 8, seq);
}

/* Encoded block info value (24 bytes). */
#define BLOCK_INFO_LEN 24
void edr__block_info_encode(const edr_block_info_t *bi, uint8_t out[BLOCK_INFO_LEN]);
void edr__block_info_decode(const uint8_t *v, edr_block_info_t *bi);

/* Tests: when non-zero, counts down on each edr_store_writer_add, which
 * fails with EDR_ENOMEM after putting most of its batch when it reaches 0
 * (the take-back path of a failed add, otherwise only reached out of memory). */
extern unsigned edr__store_fail_add;

/* Tests: flushes a writer asked for, and those it waited for. */
extern unsigned edr__store_flushes, edr__store_flush_waits;
/* Tests: the number of reclaims of retired data the writer started since it
 * opened, after waiting for the running one when wait. */
unsigned edr__store_writer_reclaim_wait(edr_store_writer_t *w, int wait);
/* Tests: while non-zero, a reclaim that started waits before its first
 * compaction (the room it holds stays held). */
extern atomic_int edr__store_reclaim_gate;
/* Tests: the compactions reclaims have started (one per family). */
extern atomic_uint edr__store_reclaim_compactions;
/* Tests: the bytes of output that the running reclaims of this process hold
 * room for. */
uint64_t edr__store_reclaim_held(void);

/* Tests: when non-zero, counts down on each flush a writer asks for, which
 * fails without flushing when it reaches 0, as a flush on a full disk does
 * (what was committed without the write-ahead log since the last flush is
 * then lost with the writer). */
extern unsigned edr__store_fail_flush;

#endif
