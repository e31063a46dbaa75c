/* Field-wise split of serialized protobuf, the payload form of frame codec 2.
 *
 * A serialized message is rewritten as one stream per field and place in the
 * message tree: every event's time delta together, every file path together,
 * every remote port together. zstd then finds the repeats of each stream
 * next to one another instead of scattered between other fields (1,000-event
 * batches: 19.82 -> 16.42 B/event at level 3, bench/run frame). The transform
 * is lossless and byte-exact, and the joined form needs no schema: the split
 * form names which fields hold submessages (see pbsplit.c for the layout).
 * A serializer that knows the schema can also write the split form directly
 * (pbsplit_int.h, used by the frame encoder).
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

/* Whether splits write varint streams as byte planes where that is exact
 * (split form 2; off: form 1, which readers older than 2026-12-06 take). Off
 * after edr__pbsplit_new. */
void edr__pbsplit_set_planes(edr_pbsplit_t *s, int on);

/* Splits msg (n bytes of a serialized `root` message). *out points into s
 * until the next call. Returns 0, EDR_ENOMEM, or EDR_EINVAL when msg is not
 * well-formed protobuf or exceeds the split form's limits (nesting, number
 * of fields): callers then send the message as it is. */
int edr__pbsplit(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root, const uint8_t *msg,
                 size_t n, const uint8_t **out, size_t *out_len);

/* Joins a split form back into exactly out_len bytes at out, which has room
 * for out_len + EDR_PBJOIN_SLACK bytes. Returns 0, EDR_EFRAME_PROTOBUF when
 * the split form is malformed, EDR_EFRAME_LENGTH when it joins into another
 * length, or EDR_ENOMEM (varint streams read back from byte planes).
 * Never reads or writes out of those bounds, whatever the input. */
#define EDR_PBJOIN_SLACK 32

int edr__pbjoin(edr_pbsplit_t *s, const uint8_t *in, size_t n, uint8_t *out, size_t out_len);

/* ---- reading a split form in place ----
 *
 * Readers that want a few events of a batch need not join all of it. After
 * edr__pbsplit_open, edr__pbsplit_scan reads the instances of one node in
 * order (the events of a batch, say): the node's own scalar and string
 * fields, while submessage fields are only noted (their child node) and
 * skipped later, when needed. edr__pbsplit_join_last then joins the
 * instance just scanned, submessages included, into serialized protobuf.
 * A scan of a node's instances may be interleaved with joins of them, but
 * not with scans of its parent or children. */

typedef struct {
    uint32_t field;
    unsigned wt;        /* wire type */
    uint64_t num;       /* varint and fixed values */
    const uint8_t *val; /* length-delimited leaf: contents in the split form */
    size_t len;
    int child;          /* submessage: its node, else -1 */
} edr_pbsplit_field_t;

/* Reads the directory; 0, EDR_EFRAME_PROTOBUF, EDR_EFRAME_LENGTH (streams
 * in byte planes that read back into more than raw_len, the length the form
 * joins into), or EDR_ENOMEM. `in` must outlive the use. */
int edr__pbsplit_open(edr_pbsplit_t *s, const uint8_t *in, size_t n, size_t raw_len);

/* Node of the submessage field `field` of node `node` (0 is the root), or -1. */
int edr__pbsplit_child(const edr_pbsplit_t *s, uint32_t node, uint32_t field);

/* Reads the next instance of `node`, reporting in out the fields whose
 * number is a bit of `want` (fields 1..63), in wire order; the others are
 * passed over. Returns 1, 0 when no instance is left, or
 * EDR_EFRAME_PROTOBUF (also when more than max fields are to be reported). */
int edr__pbsplit_scan(edr_pbsplit_t *s, uint32_t node, uint64_t want, edr_pbsplit_field_t *out,
                      size_t max, size_t *n_out);

/* Joins the instance of `node` last returned by edr__pbsplit_scan into out
 * (room for cap bytes, of which EDR_PBJOIN_SLACK are slack); *len gets its
 * length. Returns 0, EDR_EFRAME_PROTOBUF or EDR_EFRAME_LENGTH. */
int edr__pbsplit_join_last(edr_pbsplit_t *s, uint32_t node, uint8_t *out, size_t cap,
                           size_t *len);

#endif
