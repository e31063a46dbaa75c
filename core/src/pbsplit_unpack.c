/* Unpacking a split form straight into protobuf-c messages (see pbsplit.h).
 *
 * Joining a split form and handing the protobuf to protobuf-c reads every
 * byte twice and walks protobuf-c's descriptor tables per field. This walk
 * reads each node's tag stream and value streams once, in the order the join
 * would, and stores each value in its message through the same descriptors,
 * allocating from an arena.
 *
 * It takes only what it can store exactly as protobuf-c would: known fields
 * of their declared wire type, singular submessages and oneof members at
 * most once (protobuf-c merges repeats), repeated fields of strings, bytes
 * and messages. Anything else (unknown fields, packed scalars, a malformed
 * or truncated form, a size other than the header's) is declined, and the
 * caller joins and unpacks with protobuf-c, which then decides.
 */
#include "pbsplit_int.h"
#include "edr/arena.h"

#include <string.h>

#define DECLINE 1

typedef struct {
    edr_pbsplit_t *s;
    edr_arena_t *a;
    size_t mem_limit; /* arena bytes this form may take: see edr__pbsplit_unpack */
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
            if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
                return DECLINE; /* presence checks: protobuf-c's */
            if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
                if ((fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_BYTES &&
                     fd->type != PROTOBUF_C_TYPE_MESSAGE) ||
                    fd->id >= PS_DIRECT)
                    return DECLINE; /* packed scalars, far repeated fields: protobuf-c's */
                nd->urep = 1;
            }
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

/* The wire type a field of this type is stored with. */
static inline unsigned wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

/* Room for the elements of the repeated fields of one instance: counts its
 * keys (its own tags, up to the end mark) and points each array at arena
 * memory; the counts are filled back in as the elements arrive. */
static int make_arrays(up_t *u, const ps_node_t *nd, void *msg)
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
        if (fd->label != PROTOBUF_C_LABEL_REPEATED || !cnt[fd->id])
            continue;
        size_t el =
            fd->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData) : sizeof(void *);
        void *arr = edr_arena_alloc(u->a, el * cnt[fd->id]);
        if (!arr)
            return DECLINE;
        *(void **)((char *)msg + fd->offset) = arr;
        *(size_t *)((char *)msg + fd->quantifier_offset) = 0;
    }
    return 0;
}

/* Where a singular field's value goes, after recording its presence:
 * NULL to decline (a oneof already set, a submessage met twice). */
static inline void *member_of(const ProtobufCFieldDescriptor *fd, void *msg)
{
    char *m = (char *)msg + fd->offset;
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

/* Stores a scalar read from the wire (raw: its varint bytes, for bool). */
static inline void put_scalar(const ProtobufCFieldDescriptor *fd, void *m, uint64_t v,
                              const uint8_t *raw, size_t raw_n)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        *(uint32_t *)m = (uint32_t)v;
        break;
    case PROTOBUF_C_TYPE_SINT32:
        *(int32_t *)m = (int32_t)(((uint32_t)v >> 1) ^ (0u - ((uint32_t)v & 1)));
        break;
    case PROTOBUF_C_TYPE_SINT64:
        *(int64_t *)m = (int64_t)((v >> 1) ^ (0 - (v & 1)));
        break;
    case PROTOBUF_C_TYPE_BOOL: { /* as protobuf-c: any payload bit set */
        protobuf_c_boolean b = 0;
        for (size_t i = 0; i < raw_n; i++)
            b |= (raw[i] & 0x7f) != 0;
        *(protobuf_c_boolean *)m = b;
        break;
    }
    default:
        *(uint64_t *)m = v;
        break; /* 64-bit ints, fixed64, double */
    }
}

/* Unpacks one instance of node ni into msg (initialised); *size gets its
 * serialized length. 0, or DECLINE. */
static int unpack_msg(up_t *u, uint32_t ni, unsigned depth, void *msg, size_t *size)
{
    edr_pbsplit_t *s = u->s;
    ps_node_t *nd = &s->node[ni];
    if (nd->urep && make_arrays(u, nd, msg))
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
        sz += (size_t)(tp - k0);
        const ProtobufCFieldDescriptor *fd = field_of(nd, f);
        if (!fd || wire_type(fd->type) != wt)
            return DECLINE; /* unknown to this schema, or of another type */
        int rep = fd->label == PROTOBUF_C_LABEL_REPEATED;
        void *m;
        if (rep) {
            size_t *n = (size_t *)((char *)msg + fd->quantifier_offset);
            size_t el =
                fd->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData) : sizeof(void *);
            m = *(char **)((char *)msg + fd->offset) + el * (*n)++;
        } else if (!(m = member_of(fd, msg)))
            return DECLINE;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            int c = ps_node_child(s, nd, ni, (uint32_t)f);
            const ProtobufCMessageDescriptor *d = fd->descriptor;
            if (c < 0 || depth >= PS_MAX_DEPTH || u->a->used_total > u->mem_limit)
                return DECLINE;
            void *sub = edr_arena_alloc(u->a, d->sizeof_message);
            if (!sub)
                return DECLINE;
            d->message_init(sub);
            *(void **)m = sub;
            nd->tp = tp;
            size_t body;
            if (unpack_msg(u, (uint32_t)c, depth + 1, sub, &body))
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
        if (ps_take_value(st, wt, &num, &val, &len))
            return DECLINE;
        sz += (size_t)(st->vp - v0) + (size_t)(st->lp - l0);
        if (wt != 2) {
            put_scalar(fd, m, num, v0, (size_t)(st->vp - v0));
        } else if (fd->type == PROTOBUF_C_TYPE_STRING) {
            char *str = edr_arena_dup(u->a, val, len); /* NUL-terminated */
            if (!str)
                return DECLINE;
            *(char **)m = str;
        } else { /* bytes: as protobuf-c, no buffer for an empty value */
            ProtobufCBinaryData *bd = m;
            bd->len = len;
            bd->data = NULL;
            if (len && !(bd->data = edr_arena_dup(u->a, val, len)))
                return DECLINE;
        }
    }
}

int edr__pbsplit_unpack(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root, const uint8_t *in,
                        size_t n, size_t raw_len, edr_arena_t *a, ProtobufCMessage **out)
{
    *out = NULL;
    if (edr__pbsplit_open(s, in, n) || type_nodes(s, root))
        return DECLINE;
    /* Every message instance is at least two bytes of the joined form, and
     * the largest message of edr.v1 is under 256 bytes in memory: a form of
     * many empty instances is declined before it takes more than that. */
    up_t u = {.s = s, .a = a, .mem_limit = a->used_total + 128 * raw_len + (64u << 10)};
    ProtobufCMessage *m = edr_arena_alloc(a, root->sizeof_message);
    if (!m)
        return DECLINE;
    root->message_init(m);
    size_t size;
    if (unpack_msg(&u, 0, 0, m, &size) || size != raw_len)
        return DECLINE;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        if (s->node[i].tp != s->node[i].te) return DECLINE; /* left over: the join refuses it */
    for (uint32_t i = 0; i < s->n_streams; i++)
        if (s->stream[i].vp != s->stream[i].ve || s->stream[i].lp != s->stream[i].le)
            return DECLINE;
    *out = m;
    return 0;
}
