/* Frame codec: round trips, dictionaries, and one test per way a frame can be bad. */
#include "edr_test.h"

#include "edr/arena.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/synth.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct {
    edr_frame_ctx_t *ctx;
    edr_synth_t *synth;
    edr_arena_t arena;
    uint8_t *frame;
    size_t len;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->ctx = edr_frame_ctx_new(NULL);
    edr_synth_opts_t so = {.hosts = 3, .seed = 7};
    fx->synth = edr_synth_new(&so);
    edr_arena_init(&fx->arena, 1 << 16);
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 0, 200, &fx->arena);
    const uint8_t *out;
    assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &fx->len), 0);
    fx->frame = malloc(fx->len);
    memcpy(fx->frame, out, fx->len);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    edr_frame_ctx_destroy(fx->ctx);
    edr_synth_destroy(fx->synth);
    edr_arena_close(&fx->arena);
    free(fx->frame);
    free(fx);
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* tests run on little-endian x86_64, like the header */
}

static void reseal(uint8_t *f, size_t len)
{
    /* recompute the checksum so that only the intended defect remains */
    uint64_t c = XXH3_64bits(f + EDR_FRAME_HEADER_SIZE, len - EDR_FRAME_HEADER_SIZE);
    memcpy(f + 24, &c, 8);
}

static int decode(fx_t *fx, const uint8_t *f, size_t len)
{
    Edr__V1__EventBatch *b;
    int rc = edr_frame_decode(fx->ctx, f, len, &b);
    if (rc)
        assert_null(b);
    return rc;
}

static void test_roundtrip_identical(void **state)
{
    fx_t *fx = *state;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    edr_synth_opts_t so = {.hosts = 3, .seed = 7};
    edr_synth_t *s = edr_synth_new(&so);
    Edr__V1__EventBatch *orig = edr_synth_next_batch(s, 0, 200, &a);
    uint8_t *packed = malloc(protobuf_c_message_get_packed_size(&orig->base));
    size_t plen = protobuf_c_message_pack(&orig->base, packed);
    Edr__V1__EventBatch *b;
    assert_int_equal(edr_frame_decode(fx->ctx, fx->frame, fx->len, &b), 0);
    assert_int_equal(b->n_events, 200);
    assert_int_equal(b->seq, 1);
    /* same bytes when re-packed: every field survived, including times and tids */
    uint8_t *again = malloc(protobuf_c_message_get_packed_size(&b->base));
    size_t alen = protobuf_c_message_pack(&b->base, again);
    assert_int_equal(alen, plen);
    assert_memory_equal(again, packed, plen);
    for (size_t i = 0; i < b->n_events; i++) {
        assert_int_equal(b->events[i]->time_offset_ns, orig->events[i]->time_offset_ns);
        assert_int_equal(b->events[i]->tid, orig->events[i]->tid);
    }
    free(packed);
    free(again);
    edr_synth_destroy(s);
    edr_arena_close(&a);
}

static void test_uncompressed_codec(void **state)
{
    fx_t *fx = *state;
    edr_frame_opts_t o = {.uncompressed = 1};
    edr_frame_ctx_t *c = edr_frame_ctx_new(&o);
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 1, 10, &fx->arena);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(c, b, 0, &out, &len), 0);
    assert_int_equal(out[5], EDR_FRAME_CODEC_NONE);
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(c, out, len, &d), 0);
    assert_int_equal(d->n_events, 10);
    edr_frame_ctx_destroy(c);
}

static void test_truncated(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(decode(fx, fx->frame, 0), EDR_EFRAME_TRUNCATED);
    assert_int_equal(decode(fx, fx->frame, 10), EDR_EFRAME_TRUNCATED);
    assert_int_equal(decode(fx, fx->frame, fx->len - 1), EDR_EFRAME_TRUNCATED);
}

static void test_bad_magic(void **state)
{
    fx_t *fx = *state;
    fx->frame[0] = 'X';
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_BAD_MAGIC);
}

static void test_unknown_version(void **state)
{
    fx_t *fx = *state;
    fx->frame[4] = 9;
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_VERSION);
}

static void test_unknown_codec(void **state)
{
    fx_t *fx = *state;
    fx->frame[5] = 7;
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_CODEC);
}

static void test_unknown_dictionary(void **state)
{
    fx_t *fx = *state;
    put32(fx->frame + 8, 123456);
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_DICT);
}

static void test_checksum_mismatch(void **state)
{
    fx_t *fx = *state;
    fx->frame[fx->len / 2] ^= 0x40;
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_CHECKSUM);
}

static void test_decompression_failure(void **state)
{
    fx_t *fx = *state;
    /* garbage that is not a zstd frame, with a valid checksum */
    memset(fx->frame + EDR_FRAME_HEADER_SIZE, 0xA5, fx->len - EDR_FRAME_HEADER_SIZE);
    reseal(fx->frame, fx->len);
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_DECOMPRESS);
}

static void test_length_mismatch(void **state)
{
    fx_t *fx = *state;
    uint32_t raw;
    memcpy(&raw, fx->frame + 12, 4);
    put32(fx->frame + 12, raw + 1); /* header claims one byte more than zstd holds */
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_LENGTH);
    /* trailing bytes after a whole frame */
    uint8_t *longer = calloc(1, fx->len + 4);
    put32(fx->frame + 12, raw);
    memcpy(longer, fx->frame, fx->len);
    assert_int_equal(decode(fx, longer, fx->len + 4), EDR_EFRAME_LENGTH);
    free(longer);
}

static void test_zstd_bomb(void **state)
{
    fx_t *fx = *state;
    /* 32 MiB of zeros compresses to a few KiB; the header claims 100 bytes,
     * and the zstd frame omits its content size so only the bound stops it */
    size_t big = 32u << 20;
    uint8_t *zeros = calloc(1, big);
    size_t cap = ZSTD_compressBound(big);
    uint8_t *f = malloc(EDR_FRAME_HEADER_SIZE + cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t zl = ZSTD_compress2(cc, f + EDR_FRAME_HEADER_SIZE, cap, zeros, big);
    assert_false(ZSTD_isError(zl));
    assert_true(zl < 64 * 1024);
    memcpy(f, "EDRF", 4);
    f[4] = 1;
    f[5] = EDR_FRAME_CODEC_ZSTD;
    f[6] = EDR_FRAME_HEADER_SIZE;
    f[7] = 0;
    put32(f + 8, 0);
    put32(f + 12, 100);
    put32(f + 16, (uint32_t)zl);
    put32(f + 20, 0);
    reseal(f, EDR_FRAME_HEADER_SIZE + zl);
    assert_int_equal(decode(fx, f, EDR_FRAME_HEADER_SIZE + zl), EDR_EFRAME_LENGTH);
    ZSTD_freeCCtx(cc);
    free(zeros);
    free(f);
}

static void test_raw_length_bound(void **state)
{
    fx_t *fx = *state;
    put32(fx->frame + 12, 0xF0000000u); /* 3.75 GiB claimed: refused before allocating */
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_TOO_LARGE);
    edr_frame_opts_t o = {.max_raw_len = 1000};
    edr_frame_ctx_t *small = edr_frame_ctx_new(&o);
    put32(fx->frame + 12, 5000);
    Edr__V1__EventBatch *b;
    assert_int_equal(edr_frame_decode(small, fx->frame, fx->len, &b), EDR_EFRAME_TOO_LARGE);
    edr_frame_ctx_destroy(small);
}

static void test_protobuf_failure(void **state)
{
    fx_t *fx = *state;
    /* valid zstd of bytes that are not an EventBatch (field 5 with wire type 7) */
    uint8_t junk[64];
    memset(junk, 0x2F, sizeof(junk));
    edr_frame_ctx_t *c = edr_frame_ctx_new(NULL);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode_raw(c, junk, sizeof(junk), 0, &out, &len), 0);
    assert_int_equal(decode(fx, out, len), EDR_EFRAME_PROTOBUF);
    edr_frame_ctx_destroy(c);
}

static void test_bad_actor_reference(void **state)
{
    fx_t *fx = *state;
    /* an event naming actor 5 of a batch that has none */
    Edr__V1__Event ev = EDR__V1__EVENT__INIT, *evp = &ev;
    ev.actor = 5;
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.n_events = 1;
    b.events = &evp;
    uint8_t raw[64];
    size_t rl = protobuf_c_message_pack(&b.base, raw);
    edr_frame_ctx_t *c = edr_frame_ctx_new(NULL);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode_raw(c, raw, rl, 0, &out, &len), 0);
    assert_int_equal(decode(fx, out, len), EDR_EFRAME_PROTOBUF);
    edr_frame_ctx_destroy(c);
}

static void test_actor_table_shrinks_and_restores(void **state)
{
    fx_t *fx = *state;
    /* identities travel once per batch in the actor table; every event gets
     * its own back, and the caller's batch is left as it was */
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 0, 1000, &fx->arena);
    /* each event owns its id buffers, as with malloc'd or unpacked events:
     * after encoding, each must still point at its own (never at another
     * event's copy of the same id, which a caller would then free twice) */
    const uint8_t **own_id = calloc(b->n_events, sizeof(*own_id));
    const uint8_t **own_parent = calloc(b->n_events, sizeof(*own_parent));
    for (size_t i = 0; i < b->n_events; i++) {
        own_id[i] = b->events[i]->entity_id.data;
        own_parent[i] = b->events[i]->parent_entity_id.data;
    }
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &len), 0);
    for (size_t i = 0; i < b->n_events; i++) {
        assert_ptr_equal(b->events[i]->entity_id.data, own_id[i]);
        assert_ptr_equal(b->events[i]->parent_entity_id.data, own_parent[i]);
    }
    free(own_id);
    free(own_parent);
    uint8_t *f = malloc(len);
    memcpy(f, out, len);
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(fx->ctx, f, len, &d), 0);
    assert_int_equal(d->n_actors, 0);
    for (size_t i = 0; i < d->n_events; i++) {
        assert_int_equal(d->events[i]->entity_id.len, 16);
        assert_memory_equal(d->events[i]->entity_id.data, b->events[i]->entity_id.data, 16);
        assert_int_equal(d->events[i]->pid, b->events[i]->pid);
        assert_int_equal(d->events[i]->actor, 0);
        /* the caller's batch is as it was */
        assert_int_equal(b->events[i]->entity_id.len, 16);
        assert_int_equal(b->events[i]->actor, 0);
    }
    free(f);
}

static void test_unknown_schema_version(void **state)
{
    fx_t *fx = *state;
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 2, 5, &fx->arena);
    b->schema_version = 2;
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &len), 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, out, len);
    assert_int_equal(decode(fx, copy, len), EDR_EFRAME_SCHEMA);
    free(copy);
}

static void test_dictionary_roundtrip(void **state)
{
    fx_t *fx = *state;
    /* train on 300 small batches, then encode with the dictionary */
    size_t cap = 4 << 20, used = 0, lens[300];
    uint8_t *samples = malloc(cap);
    for (int i = 0; i < 300; i++) {
        Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, (uint32_t)(i % 3), 50, &fx->arena);
        lens[i] = protobuf_c_message_pack(&b->base, samples + used);
        used += lens[i];
        edr_arena_reset(&fx->arena);
    }
    uint8_t dict[16384];
    long dl = edr_dict_train(dict, sizeof(dict), samples, lens, 300);
    assert_true(dl > 0);
    edr_dict_t *d = edr_dict_new(dict, (size_t)dl, 3);
    assert_non_null(d);
    uint32_t id = edr_dict_id(d);
    assert_int_equal(edr_frame_ctx_add_dict(fx->ctx, d), 0);
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 0, 50, &fx->arena);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, b, id, &out, &len), 0);
    uint8_t *f = malloc(len);
    memcpy(f, out, len);
    Edr__V1__EventBatch *dec;
    assert_int_equal(edr_frame_decode(fx->ctx, f, len, &dec), 0);
    assert_int_equal(dec->n_events, 50);
    /* a context without the dictionary names the problem */
    edr_frame_ctx_t *other = edr_frame_ctx_new(NULL);
    assert_int_equal(edr_frame_decode(other, f, len, &dec), EDR_EFRAME_DICT);
    /* encoding with an unknown dictionary id is refused */
    assert_int_equal(edr_frame_encode(other, b, id, &out, &len), EDR_EFRAME_DICT);
    edr_frame_ctx_destroy(other);
    assert_null(edr_dict_new("not a dictionary", 16, 3));
    free(f);
    free(samples);
}

static void test_frame_walk(void **state)
{
    fx_t *fx = *state;
    uint8_t *two = malloc(fx->len * 2);
    memcpy(two, fx->frame, fx->len);
    memcpy(two + fx->len, fx->frame, fx->len);
    assert_int_equal(edr_frame_len(two, fx->len * 2), fx->len);
    assert_int_equal(edr_frame_len(two + fx->len, fx->len), fx->len);
    assert_int_equal(edr_frame_len(two, 5), 0);
    free(two);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(edr_err_name(EDR_EFRAME_CHECKSUM), "FRAME_CHECKSUM");
    assert_string_equal(edr_strerror(EDR_EFRAME_TRUNCATED), "frame truncated");
    assert_string_equal(edr_strerror(-9999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncompressed_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_dictionary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decompression_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zstd_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_length_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protobuf_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_actor_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_table_shrinks_and_restores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_walk, setup, teardown),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
