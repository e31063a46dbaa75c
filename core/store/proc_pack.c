/* Process records packed by hand: the protobuf encoding of
 * edr.v1.ProcessRecord (schemas/edr/v1/entity.proto), fields in number
 * order, zero values left out as proto3 leaves them out. protobuf-c's own
 * packer walks the message descriptor twice (a size pass, then the pack),
 * and the writer packs one record for each process of a batch (~140 in a
 * 1,000-event batch of the ingest bench): that was 6 % of the collector's
 * consuming thread. The bytes are protobuf-c's own (test_proc_record_pack
 * compares them); readers decode with protobuf-c as before. */
#include "store_int.h"

#include <string.h>

/* The wire types used here. */
enum { WT_VARINT = 0, WT_LEN = 2 };

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_uint(uint8_t *p, unsigned field, uint64_t v)
{
    if (!v) return p;
    p = put_varint(p, (uint64_t)field << 3 | WT_VARINT);
    return put_varint(p, v);
}

/* int32: a negative value is sign-extended to 64 bits (ten bytes), as the
 * protobuf encoding asks */
static uint8_t *put_int32(uint8_t *p, unsigned field, int32_t v)
{
    return put_uint(p, field, (uint64_t)(int64_t)v);
}

static uint8_t *put_len(uint8_t *p, unsigned field, const void *d, size_t n)
{
    if (!n) return p;
    p = put_varint(p, (uint64_t)field << 3 | WT_LEN);
    p = put_varint(p, n);
    memcpy(p, d, n);
    return p + n;
}

static size_t str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Bytes at most per field besides its data: a two-byte tag (fields 16 and
 * up), and a ten-byte varint (a value or a length). */
#define FIELD_MAX 12

size_t edr__proc_record_size_max(const Edr__V1__ProcessRecord *r, size_t lens[5])
{
    lens[0] = str_len(r->exe);
    lens[1] = str_len(r->command_line);
    lens[2] = str_len(r->cwd);
    lens[3] = str_len(r->user);
    lens[4] = str_len(r->container_id);
    return 23 * FIELD_MAX + lens[0] + lens[1] + lens[2] + lens[3] + lens[4] + r->entity_id.len +
           r->host_id.len + r->parent_entity_id.len + r->exe_sha256.len + r->first_block.len +
           r->last_block.len;
}

size_t edr__proc_record_pack(const Edr__V1__ProcessRecord *r, const size_t lens[5], uint8_t *out)
{
    uint8_t *p = out;
    p = put_len(p, 1, r->entity_id.data, r->entity_id.len);
    p = put_len(p, 2, r->host_id.data, r->host_id.len);
    p = put_uint(p, 3, r->pid);
    p = put_len(p, 4, r->parent_entity_id.data, r->parent_entity_id.len);
    p = put_uint(p, 5, r->ppid);
    p = put_len(p, 6, r->exe, lens[0]);
    p = put_len(p, 7, r->command_line, lens[1]);
    p = put_len(p, 8, r->cwd, lens[2]);
    p = put_uint(p, 9, r->uid);
    p = put_len(p, 10, r->user, lens[3]);
    p = put_uint(p, 11, r->start_time_ns);
    p = put_uint(p, 12, r->end_time_ns);
    p = put_int32(p, 13, r->exit_code);
    p = put_int32(p, 14, r->exit_signal);
    p = put_len(p, 15, r->exe_sha256.data, r->exe_sha256.len);
    p = put_len(p, 16, r->container_id, lens[4]);
    p = put_len(p, 17, r->first_block.data, r->first_block.len);
    p = put_len(p, 18, r->last_block.data, r->last_block.len);
    p = put_uint(p, 19, r->exec_count);
    p = put_uint(p, 20, r->child_bucket);
    p = put_uint(p, 21, r->alive_bucket);
    p = put_uint(p, 22, r->image_weak);
    p = put_uint(p, 23, r->exit_unknown);
    return (size_t)(p - out);
}
