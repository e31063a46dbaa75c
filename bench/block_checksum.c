/* bench/run block-checksum: what RocksDB's table block checksum costs the
 * store, per frame-sized value, with CRC32C (RocksDB 7.8's default) against
 * XXH3 (what the store's families use), in the same run.
 *
 * Debian's librocksdb is built for the x86-64 baseline: its CRC32C is the
 * table-driven software one ("Not supported on x86" from
 * rocksdb::crc32c::IsFastCrc32Supported), ~1 GB/s. Every block read by a
 * query is verified, and every block a flush or compaction writes is
 * summed; frames are ~17 KB values, one table block each.
 *
 * Writes N values of --size bytes (incompressible, as zstd frames are) into
 * a fresh database per checksum, flushes, then reads them back in a
 * scattered order with no block cache (each read takes the block from the
 * file, as a cold query does). CPU time of the process per value. */
#define _GNU_SOURCE
#include "bench_util.h"

#include <getopt.h>
#include <rocksdb/c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { CK_CRC32C = 1, CK_XXH3 = 4 }; /* rocksdb::ChecksumType */

static volatile uint64_t bench_sink;

typedef struct {
    double write_us; /* put + flush, per value */
    double read_us;  /* get, per value */
} ck_result_t;

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int run_one(const char *dir, char type, int n, size_t size, int rounds, ck_result_t *out)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *bb = rocksdb_block_based_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_compression(o, rocksdb_no_compression); /* as the blocks family */
    rocksdb_options_set_write_buffer_size(o, 256u << 20);      /* one flush, at the end */
    rocksdb_block_based_options_set_block_size(bb, 16 << 10);
    rocksdb_block_based_options_set_checksum(bb, type);
    rocksdb_block_based_options_set_no_block_cache(bb, 1);
    rocksdb_options_set_block_based_table_factory(o, bb);
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(o, dir, &err);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    uint8_t *v = malloc(size);
    int rc = 1;
    if (!db || !v) {
        fprintf(stderr, "block-checksum: cannot open %s: %s\n", dir, err ? err : "out of memory");
        goto out;
    }
    rocksdb_writeoptions_disable_WAL(wo, 1); /* the WAL is CRC32C either way */
    rocksdb_flushoptions_set_wait(fo, 1);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = (uint8_t)x;
    }
    double t0 = cpu_s();
    for (int i = 0; i < n && !err; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%08d", i);
        memcpy(v, &i, sizeof(i)); /* no two values alike */
        rocksdb_put(db, wo, k, 8, (const char *)v, size, &err);
    }
    if (!err)
        rocksdb_flush(db, fo, &err);
    double t1 = cpu_s();
    uint64_t sum = 0;
    for (int r = 0; r < rounds && !err; r++)
        for (int i = 0; i < n && !err; i++) {
            char k[16];
            size_t l = 0;
            snprintf(k, sizeof(k), "%08d", (int)(((int64_t)i * 7919) % n));
            rocksdb_pinnableslice_t *p = rocksdb_get_pinned(db, ro, k, 8, &err);
            const char *pv = p ? rocksdb_pinnableslice_value(p, &l) : NULL;
            if (!pv || l != size) {
                fprintf(stderr, "block-checksum: value %s missing or cut short\n", k);
                rocksdb_pinnableslice_destroy(p);
                goto out;
            }
            sum += (uint8_t)pv[size - 1];
            rocksdb_pinnableslice_destroy(p);
        }
    double t2 = cpu_s();
    if (err) {
        fprintf(stderr, "block-checksum: %s\n", err);
        goto out;
    }
    out->write_us = (t1 - t0) / n * 1e6;
    out->read_us = (t2 - t1) / ((double)n * rounds) * 1e6;
    bench_sink = sum; /* keeps the reads */
    rc = 0;
out:
    free(err);
    free(v);
    if (db)
        rocksdb_close(db);
    rocksdb_flushoptions_destroy(fo);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    rocksdb_block_based_options_destroy(bb);
    return rc;
}

int main(int argc, char **argv)
{
    int n = 6000, rounds = 5, reps = 3;
    size_t size = 17000; /* a 1,000-event frame (16.8 B/event in the store at 10 M events) */
    static const struct option opts[] = {{"values", required_argument, 0, 'n'},
                                         {"size", required_argument, 0, 's'},
                                         {"reps", required_argument, 0, 'r'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "n:s:r:", opts, NULL)) != -1) {
        if (o == 'n' && atoi(optarg) > 0)
            n = atoi(optarg);
        else if (o == 's' && atoi(optarg) > 0)
            size = (size_t)atoi(optarg);
        else if (o == 'r' && atoi(optarg) > 0)
            reps = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench_block_checksum [--values N] [--size BYTES] [--reps N]\n");
            return 2;
        }
    }
    char dir[] = "/tmp/edr-bench-cksum-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("block-checksum: mkdtemp");
        return 1;
    }
    /* alternating, best of reps for each (the machine's load only adds) */
    ck_result_t best[2] = {{1e9, 1e9}, {1e9, 1e9}};
    static const char types[2] = {CK_CRC32C, CK_XXH3};
    for (int r = 0; r < reps; r++)
        for (int t = 0; t < 2; t++) {
            char db[64];
            ck_result_t res;
            snprintf(db, sizeof(db), "%s/db%d", dir, t);
            bench_rm_tree(db);
            if (run_one(db, types[t], n, size, rounds, &res)) {
                bench_rm_tree(dir);
                return 1;
            }
            if (res.write_us < best[t].write_us)
                best[t].write_us = res.write_us;
            if (res.read_us < best[t].read_us)
                best[t].read_us = res.read_us;
        }
    bench_rm_tree(dir);
    printf("%d values of %zu bytes, no compression, no block cache; best of %d alternating runs\n",
           n, size, reps);
    printf("RESULT block_read_crc32c_us %.2f us\n", best[0].read_us);
    printf("RESULT block_read_xxh3_us %.2f us\n", best[1].read_us);
    printf("RESULT block_read_speedup %.2f x\n", best[0].read_us / best[1].read_us);
    printf("RESULT block_write_flush_crc32c_us %.2f us\n", best[0].write_us);
    printf("RESULT block_write_flush_xxh3_us %.2f us\n", best[1].write_us);
    printf("RESULT block_write_flush_speedup %.2f x\n", best[0].write_us / best[1].write_us);
    return 0;
}
