/* Internal: single-pass EventBatch serializer used by the frame encoder. */
#ifndef EDR_EVENT_PACK_H
#define EDR_EVENT_PACK_H

#include "edr/v1/batch.pb-c.h"
#include "pbsplit.h"

#include <stddef.h>
#include <stdint.h>

/* Serializes `b` (already in wire form) into *buf, growing it (realloc) as
 * needed; the bytes are exactly those protobuf_c_message_pack would write.
 * Returns the length, or 0 when the result would exceed `max` bytes or
 * memory ran out (an empty batch also gives 0). */
size_t edr__batch_pack(uint8_t **buf, size_t *cap, size_t max, const Edr__V1__EventBatch *b);

/* The same batch straight into its split form (pbsplit.h), without writing
 * the protobuf first: *out (valid until the next use of s) is exactly what
 * edr__pbsplit makes of the bytes edr__batch_pack writes, and *raw_len their
 * length. Returns 0, EDR_ENOMEM, or EDR_EINVAL when the batch is larger than
 * max, exceeds the split form's limits or carries unknown fields (callers
 * then serialize it and split that, or send it unsplit). */
/* Tests: 0 makes edr_frame_encode serialize and then split, as before the
 * direct writer, to compare the two. */
extern int edr__frame_direct_split;
/* Tests: 0 makes the decoders unpack with protobuf-c (split frames joined
 * first), instead of directly (pbunpack.h). */
extern int edr__frame_direct_unpack;

int edr__batch_pack_split(edr_pbsplit_t *s, size_t max, const Edr__V1__EventBatch *b,
                          const uint8_t **out, size_t *out_len, size_t *raw_len);

#endif
