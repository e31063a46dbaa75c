/* Internal: single-pass EventBatch serializer used by the frame encoder. */
#ifndef EDR_EVENT_PACK_H
#define EDR_EVENT_PACK_H

#include "edr/v1/batch.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Serializes `b` (already in wire form) into *buf, growing it (realloc) as
 * needed; the bytes are exactly those protobuf_c_message_pack would write.
 * Returns the length, or 0 when the result would exceed `max` bytes or
 * memory ran out (an empty batch also gives 0). */
size_t edr__batch_pack(uint8_t **buf, size_t *cap, size_t max, const Edr__V1__EventBatch *b);

#endif
