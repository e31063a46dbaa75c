/* Unpacking straight into protobuf-c messages, from a split form
 * (edr__pbsplit_unpack, see pbsplit.h) or from serialized protobuf
 * (edr__pb_unpack).
 *
 * protobuf-c parses a message in two passes (the first counts repeated
 * fields) and finds each field's descriptor by a search; a split form must
 * first be joined, which reads and writes every byte once more. These walks
 * read each value once, in wire order, and store it in its message through
 * the same generated descriptors, allocating from an arena.
 *
 * They take only what they can store exactly as protobuf-c would: known
 * fields of their declared wire type, singular submessages and oneof members
 * at most once (protobuf-c merges or replaces repeats), repeated fields of
 * strings, bytes and messages. Anything else (unknown fields, packed
 * scalars, required fields, malformed or truncated input, a split form of
 * another size than the header's) is declined, and the caller unpacks with
 * protobuf-c, which then accepts or refuses.
 */
#include "pbunpack.h"
#include "pbsplit_int.h"

#include <limits.h>
#include <string.h>

#define DECLINE 1

/* ---- storing values: both walks ---- */

/* The wire type a field of this type is stored with. */
static inline unsigned wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT: return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: return 2;
    default: return 0;
    }
}

static inline size_t elem_size(const ProtobufCFieldDescriptor *fd)
{
    return fd->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData) : sizeof(void *);
}

/* Whether every message type reachable from d is one the walks store like
 * protobuf-c: no required fields (presence checks), no repeated scalars
 * (packed or not), repeated fields numbered below PS_DIRECT. seen: the
 * types checked so far, *n of them (at most PS_MAX_NODES). */
static int schema_ok(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **seen,
                     unsigned *n)
{
    for (unsigned i = 0; i < *n; i++)
        if (seen[i] == d)
            return 1;
    if (*n == PS_MAX_NODES)
        return 0;
    seen[(*n)++] = d;
    for (unsigned j = 0; j < d->n_fields; j++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[j];
        if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
            return 0;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED &&
            (wire_type(fd->type) != 2 || fd->id >= PS_DIRECT))
            return 0;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE && !schema_ok(fd->descriptor, seen, n))
            return 0;
    }
    return 1;
}

static int schema_checked(const ProtobufCMessageDescriptor *root)
{
    const ProtobufCMessageDescriptor *seen[PS_MAX_NODES];
    unsigned n = 0;
    return schema_ok(root, seen, &n);
}

/* Points a repeated field's array at room for cnt elements. */
static int make_array(edr_arena_t *a, const ProtobufCFieldDescriptor *fd, void *msg, size_t cnt)
{
    void *arr = edr_arena_alloc(a, elem_size(fd) * cnt);
    if (!arr)
        return DECLINE;
    *(void **)((char *)msg + fd->offset) = arr;
    *(size_t *)((char *)msg + fd->quantifier_offset) = 0;
    return 0;
}

/* Where field fd's next value goes in msg, after recording its presence:
 * the next element of a repeated field (its array made already), else the
 * member itself; NULL to decline (a oneof already set, a singular
 * submessage met twice). */
static inline void *slot_of(const ProtobufCFieldDescriptor *fd, void *msg)
{
    char *m = (char *)msg + fd->offset;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)((char *)msg + fd->quantifier_offset);
        return *(char **)m + elem_size(fd) * (*n)++;
    }
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *c = (uint32_t *)((char *)msg + fd->quantifier_offset);
        if (*c)
            return NULL;
        *c = fd->id;
    } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (*(void **)m)
            return NULL;
    } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL &&
               fd->type != PROTOBUF_C_TYPE_STRING) { /* proto2 and proto3 `optional` */
        *(protobuf_c_boolean *)((char *)msg + fd->quantifier_offset) = 1;
    }
    return m;
}

/* Stores a varint or fixed value (raw: its varint bytes, for bool). */
static inline void put_scalar(const ProtobufCFieldDescriptor *fd, void *m, uint64_t v,
                              const uint8_t *raw, size_t raw_n)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT: *(uint32_t *)m = (uint32_t)v; break;
    case PROTOBUF_C_TYPE_SINT32:
        *(int32_t *)m = (int32_t)(((uint32_t)v >> 1) ^ (0u - ((uint32_t)v & 1)));
        break;
    case PROTOBUF_C_TYPE_SINT64: *(int64_t *)m = (int64_t)((v >> 1) ^ (0 - (v & 1))); break;
    case PROTOBUF_C_TYPE_BOOL: { /* as protobuf-c: any payload bit set */
        protobuf_c_boolean b = 0;
        for (size_t i = 0; i < raw_n; i++)
            b |= (raw[i] & 0x7f) != 0;
        *(protobuf_c_boolean *)m = b;
        break;
    }
    default: *(uint64_t *)m = v; break; /* 64-bit ints, fixed64, double */
    }
}

/* Stores a string (NUL-terminated copy) or bytes (as protobuf-c: no buffer
 * for an empty value). */
static inline int put_len(edr_arena_t *a, const ProtobufCFieldDescriptor *fd, void *m,
                          const uint8_t *val, size_t len)
{
    if (fd->type == PROTOBUF_C_TYPE_STRING) {
        char *str = edr_arena_dup(a, val, len);
        *(char **)m = str;
        return str ? 0 : DECLINE;
    }
    ProtobufCBinaryData *bd = m;
    bd->len = len;
    bd->data = NULL;
    return len && !(bd->data = edr_arena_dup(a, val, len)) ? DECLINE : 0;
}

/* A fresh submessage of field fd, stored at m; NULL to decline. */
static inline void *new_sub(edr_arena_t *a, size_t mem_limit, const ProtobufCFieldDescriptor *fd,
                            void *m)
{
    const ProtobufCMessageDescriptor *d = fd->descriptor;
    if (a->used_total > mem_limit)
        return NULL;
    void *sub = edr_arena_alloc(a, d->sizeof_message);
    if (sub) {
        d->message_init(sub);
        *(void **)m = sub;
    }
    return sub;
}

/* Every message instance is at least two bytes of its serialized form, and
 * the largest message of edr.v1 is under 256 bytes in memory: input of many
 * empty instances is declined before it takes more than this. */
static size_t mem_limit(const edr_arena_t *a, size_t raw_len)
{
    return a->used_total + 128 * raw_len + (64u << 10);
}

/* ---- from a split form ---- */

typedef struct {
    edr_pbsplit_t *s;
    edr_arena_t *a;
    size_t mem_limit;
} up_t;

/* The type of every node, from the root's down (a node's parent precedes it);
 * declines a node whose place is not a submessage field of the schema. */
static int type_nodes(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root)
{
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        ps_node_t *nd = &s->node[i];
        const ProtobufCMessageDescriptor *d = root;
        if (i) {
            const ps_node_t *par = &s->node[nd->parent];
            const ProtobufCFieldDescriptor *fd =
                nd->field < PS_DIRECT
                    ? par->ufd[nd->field]
                    : protobuf_c_message_descriptor_get_field(par->udesc, nd->field);
            if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE)
                return DECLINE;
            d = fd->descriptor;
        }
        nd->udesc = d;
        nd->urep = 0;
        memset(nd->ufd, 0, sizeof(nd->ufd));
        for (unsigned j = 0; j < d->n_fields; j++) {
            const ProtobufCFieldDescriptor *fd = &d->fields[j];
            if (fd->label == PROTOBUF_C_LABEL_REPEATED)
                nd->urep = 1;
            if (fd->id < PS_DIRECT)
                nd->ufd[fd->id] = fd;
        }
    }
    return 0;
}

static inline const ProtobufCFieldDescriptor *field_of(const ps_node_t *nd, uint64_t f)
{
    return f < PS_DIRECT ? nd->ufd[f]
                         : protobuf_c_message_descriptor_get_field(nd->udesc, (unsigned)f);
}

/* Room for the elements of the repeated fields of one instance: counts its
 * keys (its own tags, up to the end mark); the counts are filled back in as
 * the elements arrive. */
static int split_arrays(up_t *u, const ps_node_t *nd, void *msg)
{
    uint32_t cnt[PS_DIRECT] = {0};
    const uint8_t *tp = nd->tp;
    for (;;) {
        uint64_t f;
        unsigned wt;
        int kr = ps_next_key(&tp, nd->te, &f, &wt);
        if (kr < 0)
            return DECLINE;
        if (kr == 0)
            break;
        if (f < PS_DIRECT)
            cnt[f]++;
    }
    const ProtobufCMessageDescriptor *d = nd->udesc;
    for (unsigned j = 0; j < d->n_fields; j++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[j];
        if (fd->label == PROTOBUF_C_LABEL_REPEATED && cnt[fd->id] &&
            make_array(u->a, fd, msg, cnt[fd->id]))
            return DECLINE;
    }
    return 0;
}

/* Unpacks one instance of node ni into msg (initialised); *size gets its
 * serialized length. 0, or DECLINE. */
static int split_msg(up_t *u, uint32_t ni, unsigned depth, void *msg, size_t *size)
{
    edr_pbsplit_t *s = u->s;
    ps_node_t *nd = &s->node[ni];
    if (nd->urep && split_arrays(u, nd, msg))
        return DECLINE;
    const uint8_t *tp = nd->tp, *te = nd->te;
    size_t sz = 0;
    for (;;) {
        const uint8_t *k0 = tp;
        uint64_t f;
        unsigned wt;
        int kr = ps_next_key(&tp, te, &f, &wt);
        if (kr <= 0) {
            nd->tp = tp;
            *size = sz;
            return kr < 0 ? DECLINE : 0;
        }
        if (tp - k0 > 5)
            return DECLINE; /* protobuf-c reads keys of at most 5 bytes */
        sz += (size_t)(tp - k0);
        const ProtobufCFieldDescriptor *fd = field_of(nd, f);
        void *m;
        if (!fd || wire_type(fd->type) != wt || !(m = slot_of(fd, msg)))
            return DECLINE; /* unknown to this schema, of another type, or a repeat */
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            int c = ps_node_child(s, nd, ni, (uint32_t)f);
            void *sub;
            size_t body;
            if (c < 0 || depth >= PS_MAX_DEPTH || !(sub = new_sub(u->a, u->mem_limit, fd, m)))
                return DECLINE;
            nd->tp = tp;
            if (split_msg(u, (uint32_t)c, depth + 1, sub, &body))
                return DECLINE;
            sz += ps_varint_len(body) + body;
            continue;
        }
        ps_stream_t *st = ps_node_stream(s, nd, ni, (uint32_t)f);
        if (!st)
            return DECLINE;
        const uint8_t *v0 = st->vp, *l0 = st->lp, *val = NULL;
        uint64_t num;
        size_t len = 0;
        if (ps_take_value(st, wt, &num, &val, &len) || st->lp - l0 > 5 || len > INT_MAX)
            return DECLINE; /* protobuf-c: length prefixes of 5 bytes, values < 2 GiB */
        sz += (size_t)(st->vp - v0) + (size_t)(st->lp - l0);
        if (wt != 2)
            put_scalar(fd, m, num, v0, (size_t)(st->vp - v0));
        else if (put_len(u->a, fd, m, val, len))
            return DECLINE;
    }
}

int edr__pbsplit_unpack(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root,
                        const uint8_t *in, size_t n, size_t raw_len, edr_arena_t *a,
                        ProtobufCMessage **out)
{
    *out = NULL;
    if (!schema_checked(root) || edr__pbsplit_open(s, in, n, raw_len) || type_nodes(s, root))
        return DECLINE;
    up_t u = {.s = s, .a = a, .mem_limit = mem_limit(a, raw_len)};
    ProtobufCMessage *m = edr_arena_alloc(a, root->sizeof_message);
    if (!m)
        return DECLINE;
    root->message_init(m);
    size_t size;
    if (split_msg(&u, 0, 0, m, &size) || size != raw_len || !edr__pbsplit_consumed(s))
        return DECLINE; /* left over: the join refuses it */
    *out = m;
    return 0;
}

/* ---- from serialized protobuf ---- */

/* Reads the key at *pp (below e): 0 with field and wire type, or DECLINE. */
static inline int plain_key(const uint8_t **pp, const uint8_t *e, uint64_t *f, unsigned *wt)
{
    uint64_t key;
    const uint8_t *k0 = *pp;
    if (*pp < e && **pp < 0x80)
        key = *(*pp)++;
    else if (ps_rd_varint(pp, e, &key) || *pp - k0 > 5)
        return DECLINE; /* protobuf-c reads keys of at most 5 bytes */
    *f = key >> 3;
    *wt = key & 7;
    return *f == 0 || *f > PS_MAX_FIELD ? DECLINE : 0;
}

/* Passes over one value of wire type wt; its contents (wt 2) in *val, *len. */
static inline int plain_value(const uint8_t **pp, const uint8_t *e, unsigned wt, uint64_t *num,
                              const uint8_t **val, size_t *len)
{
    uint64_t v;
    switch (wt) {
    case 0: return ps_rd_varint(pp, e, num) ? DECLINE : 0;
    case 1:
    case 5: {
        size_t w = wt == 1 ? 8 : 4;
        if ((size_t)(e - *pp) < w)
            return DECLINE;
        *num = 0;
        for (size_t k = 0; k < w; k++)
            *num |= (uint64_t)(*pp)[k] << (8 * k);
        *pp += w;
        return 0;
    }
    case 2: {
        const uint8_t *l0 = *pp; /* protobuf-c: prefixes of 5 bytes, values < 2 GiB */
        if (ps_rd_varint(pp, e, &v) || *pp - l0 > 5 || v > INT_MAX || v > (uint64_t)(e - *pp))
            return DECLINE;
        *val = *pp;
        *len = (size_t)v;
        *pp += v;
        return 0;
    }
    default: return DECLINE;
    }
}

/* How many times field f occurs in the message [p, e). */
static size_t plain_count(const uint8_t *p, const uint8_t *e, uint64_t f)
{
    size_t n = 0;
    while (p < e) {
        uint64_t g, num;
        unsigned wt;
        const uint8_t *val;
        size_t len;
        if (plain_key(&p, e, &g, &wt) || plain_value(&p, e, wt, &num, &val, &len))
            return n; /* the walk declines there itself */
        n += g == f;
    }
    return n;
}

/* Unpacks the serialized message [p, e) of type d into msg (initialised). */
static int plain_msg(edr_arena_t *a, size_t lim, const ProtobufCMessageDescriptor *d,
                     const uint8_t *p, const uint8_t *e, unsigned depth, void *msg)
{
    const uint8_t *start = p;
    while (p < e) {
        uint64_t f, num = 0;
        unsigned wt;
        const uint8_t *v0, *val = NULL;
        size_t len = 0;
        if (plain_key(&p, e, &f, &wt))
            return DECLINE;
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(d, (unsigned)f);
        if (!fd || wire_type(fd->type) != wt)
            return DECLINE; /* unknown to this schema, or of another type */
        if (fd->label == PROTOBUF_C_LABEL_REPEATED && !*(void **)((char *)msg + fd->offset) &&
            make_array(a, fd, msg, plain_count(start, e, f)))
            return DECLINE; /* first element: room for all of them */
        void *m = slot_of(fd, msg);
        v0 = p;
        if (!m || plain_value(&p, e, wt, &num, &val, &len))
            return DECLINE;
        if (wt != 2)
            put_scalar(fd, m, num, v0, (size_t)(p - v0));
        else if (fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            if (put_len(a, fd, m, val, len))
                return DECLINE;
        } else {
            void *sub;
            if (depth >= PS_MAX_DEPTH || !(sub = new_sub(a, lim, fd, m)) ||
                plain_msg(a, lim, fd->descriptor, val, val + len, depth + 1, sub))
                return DECLINE;
        }
    }
    return 0;
}

int edr__pb_unpack(const ProtobufCMessageDescriptor *root, const uint8_t *in, size_t n,
                   edr_arena_t *a, ProtobufCMessage **out)
{
    *out = NULL;
    if (!schema_checked(root))
        return DECLINE;
    ProtobufCMessage *m = edr_arena_alloc(a, root->sizeof_message);
    if (!m)
        return DECLINE;
    root->message_init(m);
    if (plain_msg(a, mem_limit(a, n), root, in, in + n, 0, m))
        return DECLINE;
    *out = m;
    return 0;
}
