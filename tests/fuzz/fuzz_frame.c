/* libFuzzer target: frame decoding must reject or accept any input without crashing. */
#include "edr/frame.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static edr_frame_ctx_t *ctx;
    if (!ctx) {
        /* a small bound keeps the fuzzer from spending its time allocating */
        edr_frame_opts_t o = {.max_raw_len = 1 << 20};
        ctx = edr_frame_ctx_new(&o);
    }
    Edr__V1__EventBatch *b;
    if (edr_frame_decode(ctx, data, size, &b) == 0) {
        /* touch everything a consumer would */
        volatile size_t n = 0;
        for (size_t i = 0; i < b->n_events; i++)
            n += b->events[i]->body_case;
        (void)n;
    }
    edr_frame_header_t h;
    (void)edr_frame_header_parse(ctx, data, size, 0, &h);
    (void)edr_frame_len(data, size);
    return 0;
}
