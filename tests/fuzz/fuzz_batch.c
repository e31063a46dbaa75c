/* libFuzzer target: serialized EventBatch decoding (what a frame carries past its checksum). */
#include "edr/arena.h"
#include "edr/frame.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static edr_arena_t arena;
    static int init;
    if (!init) {
        edr_arena_init(&arena, 1 << 16);
        init = 1;
    }
    Edr__V1__EventBatch *b;
    if (edr_batch_unpack(&arena, data, size, &b) == 0) {
        volatile uint64_t t = 0;
        for (size_t i = 0; i < b->n_events; i++)
            t += (uint64_t)b->events[i]->time_offset_ns + b->events[i]->tid;
        (void)t;
    }
    edr_arena_reset(&arena);
    return 0;
}
