/* libFuzzer target: frame decoding must reject or accept any input without
 * crashing. Each input is decoded as it is and again with its checksum made
 * right (so that changed payloads reach decompression and unpacking), both
 * with the direct unpack and with protobuf-c: the two give the same verdict
 * and the same batch. */
#include "edr/frame.h"
#include "event_pack.h"
#include "pb_same.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes buf with the direct unpack on and off; aborts when they differ. */
static void decode_both(edr_frame_ctx_t *a, edr_frame_ctx_t *b, const uint8_t *buf, size_t len)
{
    Edr__V1__EventBatch *x, *y;
    int rx = edr_frame_decode(a, buf, len, &x);
    edr__frame_direct_unpack = 0;
    int ry = edr_frame_decode(b, buf, len, &y);
    edr__frame_direct_unpack = 1;
    if (rx != ry)
        abort();
    if (rx)
        return;
    volatile size_t n = 0; /* touch everything a consumer would */
    for (size_t i = 0; i < x->n_events; i++)
        n += x->events[i]->body_case;
    (void)n;
    if (pb_same(&x->base, &y->base) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static edr_frame_ctx_t *ctx, *ref;
    if (!ctx) {
        /* a small bound keeps the fuzzer from spending its time allocating */
        edr_frame_opts_t o = {.max_raw_len = 1 << 20};
        ctx = edr_frame_ctx_new(&o);
        ref = edr_frame_ctx_new(&o);
    }
    decode_both(ctx, ref, data, size);
    if (size > EDR_FRAME_HEADER_SIZE) {
        uint8_t *f = malloc(size);
        if (f) {
            memcpy(f, data, size);
            uint64_t c = XXH3_64bits(f + EDR_FRAME_HEADER_SIZE, size - EDR_FRAME_HEADER_SIZE);
            memcpy(f + 24, &c, 8); /* the header's checksum field, little-endian */
            decode_both(ctx, ref, f, size);
            free(f);
        }
    }
    edr_frame_header_t h;
    (void)edr_frame_header_parse(ctx, data, size, 0, &h);
    (void)edr_frame_len(data, size);
    return 0;
}
