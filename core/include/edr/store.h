/* The telemetry store (RocksDB): schema, the writer used by the collector and the importer, and the read API. */
#ifndef EDR_STORE_H
#define EDR_STORE_H

#include "edr/arena.h"
#include "edr/v1/batch.pb-c.h"
#include "edr/v1/entity.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Layout. A store is a directory (0700) of shards "shard-NNNN", each one
 * RocksDB database. The collector writes shard n for partition n of
 * edr.telemetry.v1 (so a partition's data, its consumed offset and its
 * deduplication state move together on a rebalance); `edr import` writes
 * shard 0 unless told otherwise. Readers open every shard and fan out.
 *
 * Column families of a shard:
 *   blocks  host(16) | bucket(u32 BE) | seq(u64 BE) -> the received frame,
 *           verbatim (no re-encode; RocksDB compression off)
 *   procs   entity(16) -> edr.v1.ProcessRecord (merged as events arrive)
 *   kids    parent[0:6] | child[0:4] -> bucket(u32 BE) (prefixes; readers
 *           confirm each child by its record's full parent id)
 *   post    postings, one per entity per block; "ref" is a 16-byte block
 *           reference: host number(u32) | bucket(u32) | seq(u64), BE, the
 *           host number being the shard's own small number for the host:
 *             'f' | xxh64(path) BE | ref          file path   -> blocks
 *             'r' | ip(16, v4-mapped) | ref      remote IP   -> blocks
 *             'h' | sha256(32) | host(16) | bucket | seq -> entity ids (16 each)
 *                                                 hash -> processes
 *             'H' | sha256(32) | host(16) -> bucket                hash -> hosts
 *             't' | ref -> edr_block_info + bloom filter of the entities
 *                   acting in the block           host -> blocks by time
 *           A process's events are found from its record (first and last
 *           block, stored as refs) through the time index, skipping blocks
 *           whose filter rules the entity out.
 *   hosts   host(16) -> edr.v1.HostRecord; host(16) | 'H' -> latest SensorHealth event
 *   meta    "offset" -> next Kafka offset to consume (i64 BE), 's' | host -> last seq,
 *           'n' | host -> host number (u32), 'N' | number -> host(16), "nhost" -> count
 *   The read API returns full block keys and host ids throughout.
 *
 * Every batch is stored with one atomic WriteBatch that also carries the
 * host's last seq and the partition's next offset: after a crash the store
 * holds a prefix of the partition, and the collector resumes right after it.
 *
 * The collector writes without RocksDB's write-ahead log (opts no_wal):
 * Kafka is the log. All families flush together (atomic flush), so after a
 * crash the store is as of its last flush, offsets included, and the
 * collector reads again from there. Readers beside it (secondary instances) see
 * what is flushed: edr_store_writer_tick() flushes at least every
 * flush_interval_ns. Such a writer can be asked to write the WAL after all
 * (edr_store_writer_want_wal): flushes that often cost more CPU in all than
 * the log, and only spare the consuming thread. Other writers keep the WAL
 * (the default).
 */

#define EDR_STORE_BUCKET_NS (3600ull * 1000000000ull) /* a time bucket is one hour */
#define EDR_BLOCK_KEY_LEN   28

/* Identifies one stored batch. */
typedef struct edr_block_key {
    uint8_t host_id[16];
    uint32_t bucket; /* base_time_ns / EDR_STORE_BUCKET_NS */
    uint64_t seq;    /* the sensor's batch sequence number */
} edr_block_key_t;

/* Encodes/decodes the 28-byte key form (as in ProcessRecord.first_block).
 * Decode returns 0, or EDR_EINVAL when n is not EDR_BLOCK_KEY_LEN. */
void edr_block_key_encode(const edr_block_key_t *k, uint8_t out[EDR_BLOCK_KEY_LEN]);
int edr_block_key_decode(const void *p, size_t n, edr_block_key_t *k);

/* What the time index says about one block. */
typedef struct edr_block_info {
    edr_block_key_t key;
    uint64_t first_ns; /* earliest event time in the block (UTC ns) */
    uint64_t last_ns;  /* latest event time */
    uint32_t n_events;
    uint32_t frame_len; /* bytes stored for the block */
} edr_block_info_t;

typedef struct edr_store_opts {
    int sync;                /* 1: fsync the WAL on every commit (power-loss safe); 0: process-crash safe */
    /* 1: no write-ahead log. A commit is then durable once the memtables
     * are flushed (all families together: atomic flush), which
     * edr_store_writer_tick() asks for every flush_interval_ns; a crash
     * loses what was committed since, offsets included, so a writer whose
     * input can be read again (Kafka, from the stored offset) loses
     * nothing. Readers see a commit once it is flushed. Ignored with sync. */
    int no_wal;
    uint64_t flush_interval_ns; /* no_wal: longest a commit stays in memory only; 0: 1 s */
    uint64_t write_buffer;   /* memtable bytes per column family; 0: 32 MiB */
    uint64_t max_raw_len;    /* frame decode bound for readers; 0: frame default */
    const char *dict_dir;    /* zstd dictionaries for decoding frames; NULL: none */
    uint64_t min_free;       /* writer: free disk bytes a reclaim of retired data (see
                                edr_store_writer_retire) leaves; 0 or less: 64 MiB */
} edr_store_opts_t;

/* ---------------------------------------------------------------- writer */

typedef struct edr_store_writer edr_store_writer_t;

/* Opens (creating when missing) shard `shard` of the store at root as the
 * only writer. opts may be NULL. On error returns NULL and fills err (e.g.
 * "store /x/shard-0003: lock held by another process"). */
edr_store_writer_t *edr_store_writer_open(const char *root, uint32_t shard,
                                          const edr_store_opts_t *opts, char *err, size_t errlen);
/* Commits nothing pending (pending work is discarded), flushes what was
 * committed from memtables to files (a fast next open), closes. Accepts NULL. */
void edr_store_writer_destroy(edr_store_writer_t *w);

/* The next Kafka offset to consume as recorded by the last commit, or
 * EDR_ENOENT when this shard has never stored an offset. */
int edr_store_writer_offset(edr_store_writer_t *w, int64_t *next_offset);

/* Adds one received batch to the pending WriteBatch: the frame bytes
 * verbatim, the decoded batch b (decoded from exactly that frame) for the
 * indexes. A batch whose block key (host, time bucket of its base time, seq)
 * is already stored, or pending, is not added: a redelivered batch has the
 * same bytes, so the same key. Returns 0 when added, 1 when it was a duplicate, or a negative
 * edr_err_t (EDR_EINVAL: no sensor/host id in b). Nothing is written until
 * edr_store_writer_commit(). */
int edr_store_writer_add(edr_store_writer_t *w, const void *frame, size_t frame_len,
                         const Edr__V1__EventBatch *b);

/* Records the next offset to consume, written by the next commit together
 * with the pending batches. */
void edr_store_writer_set_offset(edr_store_writer_t *w, int64_t next_offset);

/* Writes every pending batch, index update and the offset in one atomic
 * WriteBatch. Returns 0, or EDR_ESTORE with the RocksDB message logged (then
 * nothing of the pending work is stored, and it is discarded: the caller
 * re-reads from the stored offset). EDR_EIO when the disk is full. */
int edr_store_writer_commit(edr_store_writer_t *w);

/* Periodic work of a writer opened with no_wal: when commits were made
 * since the last flush and flush_interval_ns has passed (60 of them while
 * it writes the WAL), starts a flush of every family (without waiting for
 * it); switches to or from the WAL as asked (edr_store_writer_want_wal;
 * to it after a waiting flush). Call it often (it reads the clock
 * and one property otherwise), also when nothing is being written, or the
 * last commits stay in memory. Returns 0, or EDR_EIO (logged) when a flush
 * failed: destroy the writer and re-open the shard, whose stored offset
 * then names the first batch to read again. */
int edr_store_writer_tick(edr_store_writer_t *w);

/* Asks a writer opened with no_wal to commit with the WAL (on) or without
 * it again. The switch happens at the next edr_store_writer_tick(); to the
 * WAL only after a flush of what was committed without it (waited for), so
 * the log never brings back a later offset over missing earlier commits.
 * Readers then see commits at once, and a process crash keeps them (the
 * log is not synced: a power loss can lose the last ones, with their
 * offsets, which are then read again). */
void edr_store_writer_want_wal(edr_store_writer_t *w, int on);

/* Number of batches pending (added since the last commit). */
size_t edr_store_writer_pending(const edr_store_writer_t *w);

/* 1 when RocksDB stops or delays writes (too many L0 files, pending
 * compaction bytes, memtables full), else 0. Writes a short reason into why. */
int edr_store_writer_stalled(edr_store_writer_t *w, char *why, size_t whylen);

/* 1 once a write or flush of w failed: w takes no more retention or
 * compaction (each would flush, which after a failed write to the log
 * aborts Debian's RocksDB); close it and open the shard again. */
int edr_store_writer_failed(const edr_store_writer_t *w);

/* Deletes every block, time-index entry and posting of buckets that end
 * before cutoff_ns (range deletes; postings and process records of those
 * buckets are dropped by compaction). A cutoff in the bucket of the last
 * successful run, or before it, writes nothing (batches stored since below
 * it go at the next bucket's run). Returns 0, or EDR_ESTORE (also from a
 * writer that failed: edr_store_writer_failed). */
int edr_store_writer_retire(edr_store_writer_t *w, uint64_t cutoff_ns);

/* Flushes memtables and compacts every column family (benchmarks, tests,
 * `edr store compact`). Returns 0 or EDR_ESTORE. */
int edr_store_writer_compact(edr_store_writer_t *w);

typedef struct edr_store_writer_stats {
    uint64_t batches;    /* stored since open */
    uint64_t duplicates; /* skipped as already stored */
    uint64_t events;
    uint64_t frame_bytes;
    uint64_t commits;
    uint64_t writes;     /* RocksDB entries written (puts and merges), blocks included */
    uint64_t writes_saved; /* index entries not written: the same value was written before, or
                              a block's file or address posting went into another's key */
} edr_store_writer_stats_t;
void edr_store_writer_stats(const edr_store_writer_t *w, edr_store_writer_stats_t *st);

/* 1 when the writer's commits go to the write-ahead log now (a writer
 * without no_wal, or one asked to, see edr_store_writer_want_wal), else 0. */
int edr_store_writer_wal(const edr_store_writer_t *w);

/* Bytes of live SST + WAL files of the shard. */
uint64_t edr_store_writer_disk_bytes(edr_store_writer_t *w);

/* What one column family of a shard holds. */
typedef struct edr_store_cf_stat {
    const char *name;   /* column family name (static storage) */
    uint64_t sst_bytes; /* rocksdb.total-sst-files-size */
    uint64_t keys;      /* rocksdb.estimate-num-keys (SST and memtables) */
} edr_store_cf_stat_t;

/* Fills out[] with one entry per column family, at most max; returns the
 * number filled. Properties RocksDB cannot report read as 0. */
size_t edr_store_writer_cf_stats(edr_store_writer_t *w, edr_store_cf_stat_t *out, size_t max);

/* ---------------------------------------------------------------- reader */

typedef struct edr_store edr_store_t;

/* Opens every shard under root for reading: read-only where no process
 * holds the shard (a table file missing, cut short or damaged then fails the
 * open with RocksDB's reason), as a RocksDB secondary instance where a
 * collector or an import writes it (such an instance leaves out a table it
 * cannot open and answers from the rest). Shards are the directories named
 * shard-N; an empty one is passed over. opts may be NULL. On error (no store,
 * no shard, a damaged shard) returns NULL and fills err. One handle per
 * thread. */
edr_store_t *edr_store_open(const char *root, const edr_store_opts_t *opts, char *err,
                            size_t errlen);
void edr_store_destroy(edr_store_t *s);

/* Sees what the writers stored since: opens every shard again (shards made
 * since included) and closes the view before. Returns 0, or EDR_ESTORE
 * after logging why (the view before is kept). */
int edr_store_refresh(edr_store_t *s);

/* Stored blocks that failed to decode (damaged) since the store was opened,
 * each logged with its host, hour and seq: a query that met one went on
 * with the other blocks, so its answer misses that block's events. Callers
 * compare it before and after a query to say the answer is incomplete.
 * Blocks a reader cannot decode for want of its own settings (a dictionary
 * not in frame.dict_dir, frame.max_raw_bytes below the collector's) or of
 * memory fail the query instead. */
uint64_t edr_store_bad_blocks(const edr_store_t *s);

/* Number of shards opened. */
unsigned edr_store_shards(const edr_store_t *s);

/* Callbacks return 0 to continue, non-zero to stop (that value is returned
 * by the walking function). Pointers passed are valid during the call only. */
typedef int (*edr_store_proc_fn)(const Edr__V1__ProcessRecord *p, void *ud);
typedef int (*edr_store_event_fn)(const Edr__V1__EventBatch *b, const Edr__V1__Event *e,
                                  const edr_block_key_t *k, void *ud);
typedef int (*edr_store_block_fn)(const edr_block_info_t *bi, void *ud);
typedef int (*edr_store_hash_fn)(const uint8_t host_id[16], const uint8_t entity_id[16],
                                 void *ud);
/* health: the latest SensorHealth event of the host, NULL when none seen. */
typedef int (*edr_store_host_fn)(const Edr__V1__HostRecord *h, const Edr__V1__Event *health,
                                 void *ud);

/* The process record of an entity, unpacked into arena a (valid until its
 * reset). Returns 0, EDR_ENOENT, or EDR_ESTORE / EDR_EPARSE. */
int edr_store_process_get(edr_store_t *s, const uint8_t entity_id[16], edr_arena_t *a,
                          Edr__V1__ProcessRecord **out);

/* Calls fn for the process, then its parent, grandparent ... up to
 * max_depth records (0: 64) or the first entity without a record. Returns
 * 0 (also when the chain ends early), EDR_ENOENT when the entity itself is
 * unknown, fn's non-zero value, or a negative error. */
int edr_store_process_ancestry(edr_store_t *s, const uint8_t entity_id[16], unsigned max_depth,
                               edr_store_proc_fn fn, void *ud);

/* Calls fn for every known child process of an entity (any order). */
int edr_store_process_children(edr_store_t *s, const uint8_t entity_id[16], edr_store_proc_fn fn,
                               void *ud);

/* Calls fn for every event whose actor is entity_id with from_ns <= time <
 * to_ns (to_ns 0: no upper bound), in block order (per host: time, seq).
 * Only that process's events are unpacked: the batch fn receives carries the
 * header (sensor, seq, base time) but an empty event list. */
int edr_store_entity_events(edr_store_t *s, const uint8_t entity_id[16], uint64_t from_ns,
                            uint64_t to_ns, edr_store_event_fn fn, void *ud);

/* Calls fn for every event of a host in [from_ns, to_ns): blocks in time
 * order (bucket, seq), each block's events in time order (stable), so
 * events of blocks whose times overlap can still interleave. */
int edr_store_host_events(edr_store_t *s, const uint8_t host_id[16], uint64_t from_ns,
                          uint64_t to_ns, edr_store_event_fn fn, void *ud);

/* Calls fn for every event of one block, in time order (EDR_ENOENT when not
 * stored). */
int edr_store_block_events(edr_store_t *s, const edr_block_key_t *k, edr_store_event_fn fn,
                           void *ud);

/* The stored frame of a block, copied into the arena. */
int edr_store_block_get(edr_store_t *s, const edr_block_key_t *k, edr_arena_t *a,
                        const uint8_t **frame, size_t *len);

/* Postings: blocks (of any host) with an event naming the file path / the
 * remote IP (4 or 16 bytes) whose events' time span overlaps [from_ns,
 * to_ns) (a block's matching events may still lie outside it, and a block
 * may hold no matching event when 64-bit path hashes collide: confirm by
 * decoding). Shard by shard, each shard's blocks in the order of their
 * host number in the shard, hour and seq, each once; the references of
 * the window's hours are gathered before they are reported, in runs of
 * 1 M (16 MiB) at most, each run sorted. */
int edr_store_file_blocks(edr_store_t *s, const char *path, uint64_t from_ns, uint64_t to_ns,
                          edr_store_block_fn fn, void *ud);
int edr_store_remote_blocks(edr_store_t *s, const uint8_t *ip, size_t ip_len, uint64_t from_ns,
                            uint64_t to_ns, edr_store_block_fn fn, void *ud);

/* Every (host, process) that executed an image with this sha256 (32 bytes),
 * ordered by host, each once: of a host that ran it over 1 M times, in runs
 * of 1 M (16 MiB), each sorted, and a process that executed the image again
 * in another run is listed again. */
int edr_store_hash_processes(edr_store_t *s, const uint8_t sha256[32], edr_store_hash_fn fn,
                             void *ud);

/* Every host that executed an image with this sha256, once per host and
 * shard, with the start of the latest hour bucket it was seen in. Reads one
 * key per host (edr_store_hash_processes reads one per process). */
typedef int (*edr_store_hash_host_fn)(const uint8_t host_id[16], uint64_t last_bucket_ns,
                                      void *ud);
int edr_store_hash_hosts(edr_store_t *s, const uint8_t sha256[32], edr_store_hash_host_fn fn,
                         void *ud);

/* Blocks of a host whose bucket overlaps [from_ns, to_ns), in time order. */
int edr_store_host_blocks(edr_store_t *s, const uint8_t host_id[16], uint64_t from_ns,
                          uint64_t to_ns, edr_store_block_fn fn, void *ud);

/* Every process record of every shard (key order within a shard). */
int edr_store_processes(edr_store_t *s, edr_store_proc_fn fn, void *ud);

/* Every host with its record (first/last seen, last seq) and latest health. */
int edr_store_hosts(edr_store_t *s, edr_store_host_fn fn, void *ud);

/* The number of the first shard (shard-NNNN) other than `except` that holds
 * the host: >= 0; EDR_ENOENT when none does; EDR_ESTORE. (A host lives in
 * one shard: the collector keys partitions by host; edr import --shard
 * checks with this.) */
int edr_store_host_shard(edr_store_t *s, const uint8_t host_id[16], int except);

typedef struct edr_store_stats {
    uint64_t shards;
    uint64_t hosts;
    uint64_t blocks;
    uint64_t events;
    uint64_t frame_bytes; /* sum of stored frame lengths */
    uint64_t disk_bytes;  /* live SST + WAL files of every shard */
    uint64_t processes;   /* estimate (RocksDB estimate-num-keys) */
    uint64_t span_hours;  /* the most hours any block's events reach outside the hour of its
                           * key, hosts with a span of their own aside (time-window reads
                           * widen by it) */
    uint64_t wide_span_hosts; /* hosts whose blocks reach further (a clock that jumped inside
                               * a batch): only their own reads widen by it */
    uint64_t wide_span_hours; /* the most hours those reach */
} edr_store_stats_t;

/* Counts blocks and events from the time index (a full scan of it). */
int edr_store_stats(edr_store_t *s, edr_store_stats_t *st);

#endif
