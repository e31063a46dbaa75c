/* Store read API against an oracle: every answer equals what a plain walk over the written batches says. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "edr/arena.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/store.h"
#include "edr/synth.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

/* Eight hosts over two shards (even hosts in shard 0, odd in shard 1): each
 * shard numbers its own hosts, so references must resolve per shard. */
#define HOSTS   8
#define BATCHES 12
#define EVENTS  250
#define MAXB    (HOSTS * BATCHES)

typedef struct {
    uint8_t id[16], parent[16], host[16];
    uint32_t pid, exec_count;
    char exe[256];
    uint8_t sha[32];
    int has_sha;
    uint64_t start, end;
    uint8_t first[EDR_BLOCK_KEY_LEN], last[EDR_BLOCK_KEY_LEN];
    int has_parent, has_start, seen;
    uint32_t n_events; /* events of which it is the actor */
    uint64_t ev_fp;    /* sum of a hash of each such event (in-memory form) */
    int split;         /* its host's batches are frame codec 2 */
} ent_t;

static int cur_split; /* the batch given to oracle_batch is codec 2 */

typedef struct {
    uint64_t h;  /* xxh3 of the path, or of the 16-byte remote address */
    char *path;  /* the path (file postings) */
    uint8_t ip[16];
    uint8_t bk[EDR_BLOCK_KEY_LEN];
} post_t;

static struct {
    ent_t *ents;
    size_t n_ents, cap_ents;
    post_t *paths, *remotes;
    size_t n_paths, n_remotes, cap_paths, cap_remotes;
    uint8_t blocks[MAXB][EDR_BLOCK_KEY_LEN];
    size_t n_blocks;
} o;

static char dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void fake_sha(const char *exe, uint8_t out[32])
{
    XXH128_hash_t a = XXH3_128bits(exe, strlen(exe));
    XXH128_hash_t b = XXH3_128bits_withSeed(exe, strlen(exe), 1);
    memcpy(out, &a, 16);
    memcpy(out + 16, &b, 16);
}

static ent_t *ent_find(const uint8_t id[16])
{
    for (size_t i = 0; i < o.n_ents; i++)
        if (!memcmp(o.ents[i].id, id, 16))
            return &o.ents[i];
    return NULL;
}

static ent_t *ent_get(const uint8_t id[16])
{
    ent_t *e = ent_find(id);
    if (e)
        return e;
    if (o.n_ents == o.cap_ents) {
        o.cap_ents = o.cap_ents ? o.cap_ents * 2 : 256;
        o.ents = realloc(o.ents, o.cap_ents * sizeof(*o.ents));
        assert_non_null(o.ents);
    }
    e = &o.ents[o.n_ents++];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, 16);
    return e;
}

static post_t *post_add(post_t **v, size_t *n, size_t *cap, uint64_t h, const uint8_t *bk)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i].h == h && !memcmp((*v)[i].bk, bk, EDR_BLOCK_KEY_LEN))
            return NULL;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *v = realloc(*v, *cap * sizeof(**v));
        assert_non_null(*v);
    }
    post_t *p = &(*v)[(*n)++];
    memset(p, 0, sizeof(*p));
    p->h = h;
    memcpy(p->bk, bk, EDR_BLOCK_KEY_LEN);
    return p;
}

static void path_add(const char *p, const uint8_t *bk)
{
    post_t *x;
    if (p && *p &&
        (x = post_add(&o.paths, &o.n_paths, &o.cap_paths, XXH3_64bits(p, strlen(p)), bk)))
        assert_non_null(x->path = strdup(p));
}

/* Hash of an event in its in-memory form, with its absolute time. */
static uint64_t ev_hash(const Edr__V1__EventBatch *b, const Edr__V1__Event *e)
{
    size_t n = protobuf_c_message_get_packed_size(&e->base);
    uint8_t *p = malloc(n + 8);
    assert_non_null(p);
    protobuf_c_message_pack(&e->base, p);
    uint64_t t = b->base_time_ns + (uint64_t)e->time_offset_ns;
    memcpy(p + n, &t, 8);
    uint64_t h = XXH3_64bits(p, n + 8);
    free(p);
    return h;
}

/* What the store must say about one batch, following the documented rules. */
static void oracle_batch(const Edr__V1__EventBatch *b)
{
    edr_block_key_t k;
    memcpy(k.host_id, b->sensor->host_id.data, 16);
    k.bucket = (uint32_t)(b->base_time_ns / EDR_STORE_BUCKET_NS);
    k.seq = b->seq;
    uint8_t bk[EDR_BLOCK_KEY_LEN];
    edr_block_key_encode(&k, bk);
    memcpy(o.blocks[o.n_blocks++], bk, EDR_BLOCK_KEY_LEN);
    for (size_t i = 0; i < b->n_events; i++) {
        const Edr__V1__Event *e = b->events[i];
        uint64_t t = b->base_time_ns + (uint64_t)e->time_offset_ns;
        ent_t *en = NULL;
        if (e->entity_id.len == 16) {
            en = ent_get(e->entity_id.data);
            en->split = cur_split;
            en->n_events++;
            en->ev_fp += ev_hash(b, e);
            if (!en->seen) {
                memcpy(en->first, bk, EDR_BLOCK_KEY_LEN);
                memcpy(en->last, bk, EDR_BLOCK_KEY_LEN);
                memcpy(en->host, k.host_id, 16);
                en->seen = 1;
            }
            if (memcmp(bk, en->first, EDR_BLOCK_KEY_LEN) < 0)
                memcpy(en->first, bk, EDR_BLOCK_KEY_LEN);
            if (memcmp(bk, en->last, EDR_BLOCK_KEY_LEN) > 0)
                memcpy(en->last, bk, EDR_BLOCK_KEY_LEN);
            if (!en->pid)
                en->pid = e->pid;
            if (!en->has_parent && e->parent_entity_id.len == 16) {
                memcpy(en->parent, e->parent_entity_id.data, 16);
                en->has_parent = 1;
            }
        }
        switch (e->body_case) {
        case EDR__V1__EVENT__BODY_PROCESS_START:
            path_add(e->process_start->exe, bk);
            if (!en)
                break;
            snprintf(en->exe, sizeof(en->exe), "%s", e->process_start->exe);
            en->exec_count++;
            en->has_sha = e->process_start->exe_sha256.len == 32; /* the latest image */
            if (en->has_sha)
                memcpy(en->sha, e->process_start->exe_sha256.data, 32);
            if (!en->has_start) {
                en->start = e->process_start->start_time_ns ? e->process_start->start_time_ns : t;
                en->has_start = 1;
            }
            break;
        case EDR__V1__EVENT__BODY_PROCESS_FORK:
            if (en && !en->has_start) {
                en->start = e->process_fork->start_time_ns ? e->process_fork->start_time_ns : t;
                en->has_start = 1;
            }
            break;
        case EDR__V1__EVENT__BODY_PROCESS_EXIT:
            if (en)
                en->end = t;
            break;
        case EDR__V1__EVENT__BODY_FILE_CREATE: path_add(e->file_create->path, bk); break;
        case EDR__V1__EVENT__BODY_FILE_WRITE: path_add(e->file_write->path, bk); break;
        case EDR__V1__EVENT__BODY_FILE_DELETE: path_add(e->file_delete->path, bk); break;
        case EDR__V1__EVENT__BODY_FILE_ATTR: path_add(e->file_attr->path, bk); break;
        case EDR__V1__EVENT__BODY_FILE_RENAME:
            path_add(e->file_rename->old_path, bk);
            path_add(e->file_rename->new_path, bk);
            break;
        case EDR__V1__EVENT__BODY_FILE_EXEC: path_add(e->file_exec->path, bk); break;
        case EDR__V1__EVENT__BODY_NETWORK: {
            const Edr__V1__Endpoint *r = e->network->remote;
            uint8_t ip[16] = {0};
            if (!r || (r->ip.len != 4 && r->ip.len != 16))
                break;
            if (r->ip.len == 4) {
                ip[10] = ip[11] = 0xff;
                memcpy(ip + 12, r->ip.data, 4);
            } else
                memcpy(ip, r->ip.data, 16);
            post_t *x = post_add(&o.remotes, &o.n_remotes, &o.cap_remotes, XXH3_64bits(ip, 16), bk);
            if (x)
                memcpy(x->ip, ip, 16);
            break;
        }
        default: break;
        }
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&o, 0, sizeof(o));
    snprintf(dir, sizeof(dir), "/tmp/edr-test-store-oracle-XXXXXX");
    assert_non_null(mkdtemp(dir));
    edr_store_writer_t *w[2];
    char err[256];
    for (int i = 0; i < 2; i++)
        assert_non_null(w[i] = edr_store_writer_open(dir, (uint32_t)i, NULL, err, sizeof(err)));
    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 11};
    edr_synth_t *sy = edr_synth_new(&so);
    /* hosts 2, 3, 6 and 7 send split batches whatever their size (frame codec
     * 2), the others never, so each shard holds both codecs and entity walks
     * read split blocks in place */
    edr_frame_opts_t so1 = {.unsplit = 1}, so2 = {.split_min = 1};
    edr_frame_ctx_t *enc = edr_frame_ctx_new(&so1), *dec = edr_frame_ctx_new(NULL),
                    *enc2 = edr_frame_ctx_new(&so2);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    for (int i = 0; i < BATCHES; i++) {
        for (uint32_t h = 0; h < HOSTS; h++) {
            Edr__V1__EventBatch *b = edr_synth_next_batch(sy, h, EVENTS, &a);
            assert_non_null(b);
            for (size_t e = 0; e < b->n_events; e++) { /* as a sensor would: image hashes */
                Edr__V1__ProcessStart *ps = b->events[e]->process_start;
                if (b->events[e]->body_case != EDR__V1__EVENT__BODY_PROCESS_START || !ps->exe)
                    continue;
                uint8_t *sha = edr_arena_alloc(&a, 32);
                fake_sha(ps->exe, sha);
                ps->exe_sha256.data = sha;
                ps->exe_sha256.len = 32;
            }
            const uint8_t *fr;
            size_t fl;
            Edr__V1__EventBatch *d;
            int split = (h / 2) % 2;
            assert_int_equal(edr_frame_encode(split ? enc2 : enc, b, 0, &fr, &fl), 0);
            assert_int_equal(fr[5], split ? EDR_FRAME_CODEC_ZSTD_SPLIT : EDR_FRAME_CODEC_ZSTD);
            assert_int_equal(edr_frame_decode(dec, fr, fl, &d), 0);
            cur_split = split;
            oracle_batch(d);
            assert_int_equal(edr_store_writer_add(w[h % 2], fr, fl, d), 0);
            edr_arena_reset(&a);
        }
        for (int s = 0; s < 2; s++) /* commits of several batches, as the collector does */
            if (i % 3 == 2 || i == BATCHES - 1)
                assert_int_equal(edr_store_writer_commit(w[s]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(edr_store_writer_compact(w[i]), 0); /* merged records, as on disk */
        edr_store_writer_destroy(w[i]);
    }
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
    edr_frame_ctx_destroy(enc2);
    edr_frame_ctx_destroy(dec);
    edr_synth_destroy(sy);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(o.ents);
    for (size_t i = 0; i < o.n_paths; i++)
        free(o.paths[i].path);
    free(o.paths);
    free(o.remotes);
    return 0;
}

static int shard_of(const uint8_t host[16])
{
    /* synth host ids are per index; find the index by the first block of it */
    for (size_t i = 0; i < o.n_blocks; i++)
        if (!memcmp(o.blocks[i], host, 16))
            return (int)(i % HOSTS) % 2; /* blocks were written host by host, round robin */
    return -1;
}

/* ---- collected answers */
typedef struct {
    uint8_t (*keys)[EDR_BLOCK_KEY_LEN];
    size_t n, cap;
} keys_t;

static void keys_add(keys_t *k, const uint8_t *bk)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->keys = realloc(k->keys, k->cap * EDR_BLOCK_KEY_LEN);
        assert_non_null(k->keys);
    }
    memcpy(k->keys[k->n++], bk, EDR_BLOCK_KEY_LEN);
}

static int blk_fn(const edr_block_info_t *bi, void *ud)
{
    uint8_t bk[EDR_BLOCK_KEY_LEN];
    edr_block_key_encode(&bi->key, bk);
    keys_add(ud, bk);
    return 0;
}

static int cmp_bk(const void *a, const void *b)
{
    return memcmp(a, b, EDR_BLOCK_KEY_LEN);
}

static void test_process_records(void **state)
{
    (void)state;
    char err[256];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 14);
    size_t checked = 0, with_last = 0;
    for (size_t i = 0; i < o.n_ents; i++) {
        const ent_t *e = &o.ents[i];
        Edr__V1__ProcessRecord *p;
        edr_arena_reset(&a);
        assert_int_equal(edr_store_process_get(r, e->id, &a, &p), 0);
        assert_int_equal(p->entity_id.len, 16);
        assert_memory_equal(p->entity_id.data, e->id, 16);
        assert_int_equal(p->host_id.len, 16);
        assert_memory_equal(p->host_id.data, e->host, 16);
        assert_int_equal(p->pid, e->pid);
        assert_int_equal(p->parent_entity_id.len, e->has_parent ? 16 : 0);
        if (e->has_parent)
            assert_memory_equal(p->parent_entity_id.data, e->parent, 16);
        assert_string_equal(p->exe ? p->exe : "", e->exe);
        assert_int_equal(p->exec_count, e->exec_count);
        assert_int_equal(p->exe_sha256.len, e->has_sha ? 32 : 0);
        if (e->has_sha)
            assert_memory_equal(p->exe_sha256.data, e->sha, 32);
        if (e->has_start)
            assert_int_equal(p->start_time_ns, e->start);
        assert_int_equal(p->end_time_ns, e->end);
        assert_int_equal(p->first_block.len, EDR_BLOCK_KEY_LEN);
        assert_int_equal(p->last_block.len, EDR_BLOCK_KEY_LEN);
        assert_memory_equal(p->first_block.data, e->first, EDR_BLOCK_KEY_LEN);
        assert_memory_equal(p->last_block.data, e->last, EDR_BLOCK_KEY_LEN);
        with_last += memcmp(e->first, e->last, EDR_BLOCK_KEY_LEN) != 0;
        checked++;
    }
    assert_true(checked > 200);
    assert_true(with_last > 20); /* processes spanning blocks were checked too */
    edr_arena_close(&a);
    edr_store_destroy(r);
}

struct kid_set {
    uint8_t (*ids)[16];
    size_t n, cap;
};

static int kid_fn(const Edr__V1__ProcessRecord *p, void *ud)
{
    struct kid_set *k = ud;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->ids = realloc(k->ids, k->cap * 16);
        assert_non_null(k->ids);
    }
    memcpy(k->ids[k->n++], p->entity_id.data, 16);
    return 0;
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void test_children(void **state)
{
    (void)state;
    char err[256];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    size_t parents = 0;
    for (size_t i = 0; i < o.n_ents; i++) {
        const uint8_t *par = o.ents[i].id;
        struct kid_set want = {0}, got = {0};
        for (size_t j = 0; j < o.n_ents; j++)
            if (o.ents[j].has_parent && !memcmp(o.ents[j].parent, par, 16))
                kid_fn(&(Edr__V1__ProcessRecord){.entity_id = {16, o.ents[j].id}}, &want);
        assert_int_equal(edr_store_process_children(r, par, kid_fn, &got), 0);
        assert_int_equal(got.n, want.n);
        if (want.n) { /* qsort of NULL, even of nothing, is undefined */
            qsort(got.ids, got.n, 16, cmp16);
            qsort(want.ids, want.n, 16, cmp16);
            assert_memory_equal(got.ids, want.ids, want.n * 16);
        }
        parents += want.n > 0;
        free(got.ids);
        free(want.ids);
    }
    assert_true(parents > 20);
    edr_store_destroy(r);
}

static void test_postings(void **state)
{
    (void)state;
    char err[256];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    /* file paths and remote addresses: the first few hundred the oracle saw */
    for (int kind = 0; kind < 2; kind++) {
        post_t *v = kind ? o.remotes : o.paths;
        size_t n = kind ? o.n_remotes : o.n_paths, asked = 0;
        for (size_t i = 0; i < n && asked < 300; i++) {
            int first = 1;
            for (size_t j = 0; j < i && first; j++)
                first = v[j].h != v[i].h;
            if (!first)
                continue;
            keys_t want = {0}, got = {0};
            for (size_t j = i; j < n; j++)
                if (v[j].h == v[i].h)
                    keys_add(&want, v[j].bk);
            if (kind)
                assert_int_equal(edr_store_remote_blocks(r, v[i].ip, 16, 0, 0, blk_fn, &got), 0);
            else
                assert_int_equal(edr_store_file_blocks(r, v[i].path, 0, 0, blk_fn, &got), 0);
            assert_int_equal(got.n, want.n);
            qsort(got.keys, got.n, EDR_BLOCK_KEY_LEN, cmp_bk);
            qsort(want.keys, want.n, EDR_BLOCK_KEY_LEN, cmp_bk);
            assert_memory_equal(got.keys, want.keys, want.n * EDR_BLOCK_KEY_LEN);
            free(got.keys);
            free(want.keys);
            asked++;
        }
        assert_true(asked > (kind ? 5u : 50u));
    }

    /* hosts: their blocks in time order */
    for (size_t i = 0; i < HOSTS; i++) {
        keys_t want = {0}, got = {0};
        for (size_t j = i; j < o.n_blocks; j += HOSTS)
            keys_add(&want, o.blocks[j]);
        qsort(want.keys, want.n, EDR_BLOCK_KEY_LEN, cmp_bk);
        assert_int_equal(edr_store_host_blocks(r, o.blocks[i], 0, 0, blk_fn, &got), 0);
        assert_int_equal(got.n, BATCHES);
        assert_memory_equal(got.keys, want.keys, want.n * EDR_BLOCK_KEY_LEN);
        free(got.keys);
        free(want.keys);
    }
    edr_store_destroy(r);
}

struct hp {
    uint8_t (*pairs)[32]; /* host | entity */
    size_t n, cap;
};

static int hp_fn(const uint8_t host[16], const uint8_t ent[16], void *ud)
{
    struct hp *h = ud;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->pairs = realloc(h->pairs, h->cap * 32);
        assert_non_null(h->pairs);
    }
    memcpy(h->pairs[h->n], host, 16);
    memcpy(h->pairs[h->n++] + 16, ent, 16);
    return 0;
}

static int cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void test_hash_processes(void **state)
{
    (void)state;
    char err[256];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    size_t images = 0, multi = 0;
    for (size_t i = 0; i < o.n_ents; i++) {
        if (!o.ents[i].has_sha)
            continue;
        const uint8_t *sha = o.ents[i].sha;
        int first = 1;
        for (size_t j = 0; j < i && first; j++)
            first = !(o.ents[j].has_sha && !memcmp(o.ents[j].sha, sha, 32));
        if (!first)
            continue;
        /* every process that executed the image, shard by shard, ordered by
         * host then entity, each once */
        struct hp want = {0}, got = {0};
        for (int s = 0; s < 2; s++) {
            size_t from = want.n;
            for (size_t j = 0; j < o.n_ents; j++)
                if (o.ents[j].has_sha && !memcmp(o.ents[j].sha, sha, 32) &&
                    shard_of(o.ents[j].host) == s)
                    hp_fn(o.ents[j].host, o.ents[j].id, &want);
            qsort(want.pairs + from, want.n - from, 32, cmp32);
        }
        assert_int_equal(edr_store_hash_processes(r, sha, hp_fn, &got), 0);
        assert_int_equal(got.n, want.n);
        assert_memory_equal(got.pairs, want.pairs, want.n * 32);
        images++;
        multi += want.n > 1;
        free(got.pairs);
        free(want.pairs);
    }
    assert_true(images > 5);
    assert_true(multi > 2);
    edr_store_destroy(r);
}

struct evs {
    uint32_t n;
    uint64_t fp;
    const uint8_t *host; /* the batch header must name the process's host */
};

static int ev_fn(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, const edr_block_key_t *k,
                 void *ud)
{
    (void)k;
    struct evs *c = ud;
    c->n++;
    c->fp += ev_hash(b, e);
    assert_non_null(b->sensor);
    assert_int_equal(b->sensor->host_id.len, 16);
    assert_memory_equal(b->sensor->host_id.data, c->host, 16);
    return 0;
}

/* Every process's events, read through the selective walk of both codecs
 * (hosts 2, 3, 6, 7 are split): the same events, byte for byte, as a full
 * decode of the written batches. */
static void test_entity_events(void **state)
{
    (void)state;
    char err[256];
    edr_store_t *r = edr_store_open(dir, NULL, err, sizeof(err));
    assert_non_null(r);
    size_t split = 0, plain = 0;
    for (size_t i = 0; i < o.n_ents; i++) {
        struct evs got = {0, 0, o.ents[i].host};
        assert_int_equal(edr_store_entity_events(r, o.ents[i].id, 0, 0, ev_fn, &got), 0);
        if (got.n != o.ents[i].n_events || got.fp != o.ents[i].ev_fp)
            fail_msg("entity %zu: %u events (fingerprint %llx), want %u (%llx)", i, got.n,
                     (unsigned long long)got.fp, o.ents[i].n_events,
                     (unsigned long long)o.ents[i].ev_fp);
        if (o.ents[i].n_events)
            o.ents[i].split ? split++ : plain++;
    }
    assert_true(split > 50 && plain > 50);
    edr_store_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_records),
        cmocka_unit_test(test_children),
        cmocka_unit_test(test_postings),
        cmocka_unit_test(test_hash_processes),
        cmocka_unit_test(test_entity_events),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
