/* Tests: a zstd dictionary trained on synthetic batches, as `edr dict train` would train one. */
#ifndef EDR_TEST_DICT_H
#define EDR_TEST_DICT_H

#include "edr_test.h"

#include "edr/arena.h"
#include "edr/frame.h"
#include "edr/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Trains a dictionary on the compressed forms (what the encoder compresses)
 * of n batches of `events` events from a synthetic fleet (hosts, seed),
 * writes it to path and adds it to enc. Returns its id. */
static inline uint32_t edr_test_train_dict(edr_frame_ctx_t *enc, const char *path, uint32_t hosts,
                                           uint64_t seed, unsigned n, size_t events)
{
    edr_synth_opts_t so = {.hosts = hosts, .seed = seed};
    edr_synth_t *sy = edr_synth_new(&so);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    edr_frame_ctx_t *tr = edr_frame_ctx_new(NULL), *un = edr_frame_ctx_new(NULL);
    size_t cap = 16 << 20, used = 0, *lens = calloc(n, sizeof(size_t));
    uint8_t *samples = malloc(cap), dict[32768];
    assert_non_null(sy);
    assert_non_null(lens);
    assert_non_null(samples);
    for (unsigned i = 0; i < n; i++) {
        edr_arena_reset(&a);
        Edr__V1__EventBatch *b = edr_synth_next_batch(sy, i % hosts, events, &a);
        const uint8_t *f, *form;
        size_t fl, forml;
        edr_frame_header_t h;
        assert_int_equal(edr_frame_encode(tr, b, 0, &f, &fl), 0);
        assert_int_equal(edr_frame_payload(un, f, fl, &form, &forml, &h), 0);
        assert_true(used + forml <= cap);
        memcpy(samples + used, form, forml);
        used += lens[i] = forml;
    }
    long dl = edr_dict_train(dict, sizeof(dict), samples, lens, n);
    assert_true(dl > 0);
    FILE *df = fopen(path, "wb");
    assert_non_null(df);
    assert_int_equal(fwrite(dict, 1, (size_t)dl, df), (size_t)dl);
    assert_int_equal(fclose(df), 0);
    edr_dict_t *d = edr_dict_new(dict, (size_t)dl, 0);
    assert_non_null(d);
    uint32_t id = edr_dict_id(d);
    assert_int_equal(edr_frame_ctx_add_dict(enc, d), 0);
    free(samples);
    free(lens);
    edr_frame_ctx_destroy(tr);
    edr_frame_ctx_destroy(un);
    edr_arena_close(&a);
    edr_synth_destroy(sy);
    return id;
}

#endif
