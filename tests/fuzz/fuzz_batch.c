/* libFuzzer target: serialized EventBatch decoding (what a frame carries past
 * its checksum). The direct unpack (pbunpack.h) takes an input only when
 * protobuf-c takes it too, and then gives the same message. */
#include "edr/arena.h"
#include "edr/frame.h"
#include "edr/v1/batch.pb-c.h"
#include "pb_same.h"
#include "pbunpack.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    ProtobufCMessage *m;
    if (edr__pb_unpack(&edr__v1__event_batch__descriptor, data, size, &arena, &m) == 0) {
        Edr__V1__EventBatch *pb = edr__v1__event_batch__unpack(NULL, size, data);
        if (!pb)
            abort(); /* taken directly, refused by protobuf-c */
        if (pb_same(m, &pb->base) == 0)
            abort(); /* another message than protobuf-c's */
        edr__v1__event_batch__free_unpacked(pb, NULL);
    }
    edr_arena_reset(&arena);
    return 0;
}
