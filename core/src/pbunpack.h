/* Unpacking straight into protobuf-c messages, without protobuf-c's parser:
 * from a split form (frame codec 2) or from serialized protobuf (codec 1).
 * Both give exactly what protobuf-c's unpack gives, or decline (return 1):
 * the input holds something only protobuf-c handles exactly (unknown
 * fields, packed or required fields, a submessage or oneof member given
 * twice, which protobuf-c merges or replaces), or is malformed. The caller
 * then unpacks with protobuf-c, which accepts or refuses it. Messages are
 * allocated from arena a and stay there until its reset. */
#ifndef EDR_PBUNPACK_H
#define EDR_PBUNPACK_H

#include "edr/arena.h"
#include "pbsplit.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* The split form `in` (n bytes) of a message of type `root` whose serialized
 * length is raw_len; 0 with *out set, or 1. */
int edr__pbsplit_unpack(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root,
                        const uint8_t *in, size_t n, size_t raw_len, edr_arena_t *a,
                        ProtobufCMessage **out);

/* The serialized message `in` (n bytes) of type `root`; 0 with *out set, or 1. */
int edr__pb_unpack(const ProtobufCMessageDescriptor *root, const uint8_t *in, size_t n,
                   edr_arena_t *a, ProtobufCMessage **out);

#endif
