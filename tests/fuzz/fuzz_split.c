/* libFuzzer target: the split form of frame codec 2 (core/src/pbsplit.h).
 * Joining any input stays in bounds and either fails or fills exactly the
 * claimed length with well-formed protobuf fields; any input that splits as
 * an event batch joins back to the same bytes. Unpacking any input straight
 * into an event batch succeeds only where joining and unpacking with
 * protobuf-c does, with the same message. */
#include "edr/arena.h"
#include "edr/err.h"
#include "edr/v1/batch.pb-c.h"
#include "pb_same.h"
#include "pbsplit.h"
#include "pbunpack.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether buf is a well-formed sequence of protobuf fields (keys with values
 * of their wire type; contents of length-delimited ones not looked into). */
static int well_formed(const uint8_t *p, const uint8_t *e)
{
    while (p < e) {
        uint64_t key = 0, v = 0;
        int sh = 0;
        do {
            if (p == e || sh > 63)
                return 0;
            key |= (uint64_t)(*p & 0x7f) << sh;
            sh += 7;
        } while (*p++ & 0x80);
        if ((key >> 3) == 0)
            return 0;
        switch (key & 7) {
        case 0:
        case 2:
            sh = 0;
            do {
                if (p == e || sh > 63)
                    return 0;
                v |= (uint64_t)(*p & 0x7f) << sh;
                sh += 7;
            } while (*p++ & 0x80);
            if ((key & 7) == 2) {
                if (v > (uint64_t)(e - p))
                    return 0;
                p += v;
            }
            break;
        case 1:
            if (e - p < 8)
                return 0;
            p += 8;
            break;
        case 5:
            if (e - p < 4)
                return 0;
            p += 4;
            break;
        default: return 0;
        }
    }
    return 1;
}

/* The direct unpack of a form takes it only when the join (joined: its
 * output, NULL when it failed) unpacks with protobuf-c to the same message. */
static void same_as_protobuf_c(edr_pbsplit_t *s, const uint8_t *form, size_t n, size_t claim,
                               const uint8_t *joined)
{
    static edr_arena_t a;
    static int init;
    if (!init) {
        edr_arena_init(&a, 1 << 16);
        init = 1;
    }
    edr_arena_reset(&a);
    ProtobufCMessage *m;
    if (edr__pbsplit_unpack(s, &edr__v1__event_batch__descriptor, form, n, claim, &a, &m))
        return; /* declined: protobuf-c decides */
    if (!joined)
        abort();
    Edr__V1__EventBatch *b = edr__v1__event_batch__unpack(NULL, claim, joined);
    if (!b)
        abort();
    if (pb_same(m, &b->base) == 0)
        abort();
    edr__v1__event_batch__free_unpacked(b, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static edr_pbsplit_t *s;
    if (!s)
        s = edr__pbsplit_new();
    if (size < 2)
        return 0;
    /* the first two bytes claim the joined length */
    size_t claim = (size_t)data[0] | (size_t)data[1] << 8;
    uint8_t *out = malloc(claim + EDR_PBJOIN_SLACK);
    if (!out)
        return 0;
    int rc = edr__pbjoin(s, data + 2, size - 2, out, claim);
    if (rc != 0 && rc != EDR_EFRAME_PROTOBUF && rc != EDR_EFRAME_LENGTH && rc != EDR_ENOMEM)
        abort();
    if (rc == 0 && !well_formed(out, out + claim))
        abort(); /* a join only ever writes keys with whole values */
    same_as_protobuf_c(s, data + 2, size - 2, claim, rc == 0 ? out : NULL);
    /* the whole input as a message: split, then join, must round-trip, with
     * varint streams in byte planes (split form 2) or not (form 1) */
    const uint8_t *form;
    size_t form_len;
    edr__pbsplit_set_planes(s, size & 1);
    if (edr__pbsplit(s, &edr__v1__event_batch__descriptor, data, size, &form, &form_len) == 0) {
        if (form_len > size + (64u << 10))
            abort(); /* readers refuse a form past the raw length and 64 KiB (review-1206h H1) */
        uint8_t *copy = malloc(form_len ? form_len : 1);
        uint8_t *back = malloc(size + EDR_PBJOIN_SLACK);
        if (copy && back) {
            memcpy(copy, form, form_len);
            if (edr__pbjoin(s, copy, form_len, back, size) != 0 || memcmp(back, data, size) != 0)
                abort();
        }
        free(copy);
        free(back);
    }
    free(out);
    return 0;
}
