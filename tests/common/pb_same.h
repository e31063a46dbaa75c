/* Whether two protobuf-c messages are the same message: they pack to the
 * same bytes. 1 same, 0 different, -1 out of memory. Used by the tests and
 * fuzz targets that hold one decoder against another. */
#ifndef EDR_PB_SAME_H
#define EDR_PB_SAME_H

#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

static inline int pb_same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na = protobuf_c_message_get_packed_size(a);
    size_t nb = protobuf_c_message_get_packed_size(b);
    if (na != nb)
        return 0;
    uint8_t *x = malloc(na + 1), *y = malloc(nb + 1);
    int r = -1;
    if (x && y)
        r = protobuf_c_message_pack(a, x) == na && protobuf_c_message_pack(b, y) == nb &&
            memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return r;
}

#endif
