/* Field-wise split of serialized protobuf, the payload form of frame codec 2.
 *
 * A serialized message is rewritten as one stream per field and place in the
 * message tree: every event's time delta together, every file path together,
 * every remote port together. zstd then finds the repeats of each stream
 * next to one another instead of scattered between other fields (event
 * batches: 18.4 -> 15.1 B/event at level 3, bench/run frame). The transform
 * is lossless and byte-exact, and the joined form needs no schema: the split
 * form names which fields hold submessages (see pbsplit.c for the layout).
 */
#ifndef EDR_PBSPLIT_H
#define EDR_PBSPLIT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct edr_pbsplit edr_pbsplit_t;

/* Reusable buffers and tables; NULL when out of memory. */
edr_pbsplit_t *edr__pbsplit_new(void);
void edr__pbsplit_free(edr_pbsplit_t *s);

/* Splits msg (n bytes of a serialized `root` message). *out points into s
 * until the next call. Returns 0, EDR_ENOMEM, or EDR_EINVAL when msg is not
 * well-formed protobuf or exceeds the split form's limits (nesting, number
 * of fields): callers then send the message as it is. */
int edr__pbsplit(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root, const uint8_t *msg,
                 size_t n, const uint8_t **out, size_t *out_len);

/* Joins a split form back into exactly out_len bytes at out, which has room
 * for out_len + EDR_PBJOIN_SLACK bytes. Returns 0, EDR_EFRAME_PROTOBUF when
 * the split form is malformed, or EDR_EFRAME_LENGTH when it joins into
 * another length. Never reads or writes out of those bounds, whatever the
 * input. */
#define EDR_PBJOIN_SLACK 32

int edr__pbjoin(edr_pbsplit_t *s, const uint8_t *in, size_t n, uint8_t *out, size_t out_len);

#endif
