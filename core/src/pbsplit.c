/* Field-wise split of serialized protobuf (see pbsplit.h).
 *
 * Every message position in the tree is a node: node 0 is the root, and a
 * submessage field f of node p is node (p, f), whatever its type, so that
 * for example a connection's local and remote endpoints get separate
 * streams. Per node there is one tag stream: each field's key as it was on
 * the wire, in order, and a 0 byte where each message instance ends (0 is
 * never a valid key). Per (node, field) of a scalar, string or bytes field
 * there is a value stream with the field's bytes as they were on the wire
 * (varints, fixed32/64, the contents of length-delimited fields) and a
 * length stream with the length varints of length-delimited values.
 * Submessage lengths are not stored: joining recomputes them.
 *
 * The split form (all numbers varints):
 *
 *   1 or 2                              format version
 *   n_nodes                             1..PS_MAX_NODES
 *   parent, field     x (n_nodes - 1)   for nodes 1.. (parent < node)
 *   n_streams                           0..PS_MAX_STREAMS
 *   node, field, len_bytes, val_bytes   x n_streams (version 2: then form)
 *   tag_bytes         x n_nodes
 *   the tag streams in node order, then each stream's lengths and values
 *
 * Joining needs only that: which fields are submessages is in the node list.
 *
 * Version 2 (2026-12-06) gives each stream a form: PS_FORM_AS_IS, or
 * PS_FORM_PLANES for a stream of varints only, every one in its shortest
 * encoding, written as
 *
 *   count, width (1..8)                 varint, byte
 *   width planes of count bytes         plane j: byte j of every value, little endian
 *
 * A varint stream of multi-byte values (a time delta, a port, a pid) then
 * puts each value's low byte with the other low bytes, the next with the
 * next: zstd models each byte position apart instead of a mix of them and
 * the continuation bits (bench/run frame, 1,000-event synthetic batches:
 * 14.52 -> 14.13 B/event, of which 0.35 the time deltas). Reading restores
 * the varints byte for byte (the split form's streams, as version 1 has
 * them). The encoder writes version 1 when no stream is in planes, and
 * when asked (frame.split_planes=false), for readers older than version 2.
 */
#include "pbsplit_int.h"
#include "edr/err.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

edr_pbsplit_t *edr__pbsplit_new(void)
{
    return calloc(1, sizeof(edr_pbsplit_t));
}

void edr__pbsplit_set_planes(edr_pbsplit_t *s, int on)
{
    s->planes = on != 0;
}

void edr__pbsplit_free(edr_pbsplit_t *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < PS_MAX_NODES; i++)
        free(s->node[i].tags.p);
    for (uint32_t i = 0; i < PS_MAX_STREAMS; i++) {
        free(s->stream[i].val.p);
        free(s->stream[i].len.p);
    }
    free(s->out.p);
    free(s->tmp.p);
    free(s->plane.p);
    free(s->dec.p);
    free(s);
}

/* ---- byte helpers ---- */

int edr__ps_grow(ps_buf_t *b, size_t more)
{
    if (b->cap - b->n >= more)
        return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c - b->n < more)
        c *= 2;
    uint8_t *p = realloc(b->p, c);
    if (!p)
        return EDR_ENOMEM;
    b->p = p;
    b->cap = c;
    return 0;
}


/* ---- split ---- */

/* A varint's end, or NULL when it runs past e or is longer than 10 bytes. */
static inline const uint8_t *varint_end(const uint8_t *p, const uint8_t *e)
{
    for (int i = 0; i < 10 && p < e; i++)
        if (!(*p++ & 0x80))
            return p;
    return NULL;
}

/* Copies of a few bytes are most of the work: no call for them. */
static inline uint8_t *copy_to(uint8_t *d, const uint8_t *src, size_t n)
{
    if (n <= 8) {
        for (size_t i = 0; i < n; i++)
            d[i] = src[i];
        return d + n;
    }
    memcpy(d, src, n);
    return d + n;
}

/* Every buffer of a split is reserved up front for the whole input (no one
 * stream can hold more than the message: see edr__pbsplit), so the walk
 * writes without checks. Returns the node, -1 at the node limit, -2 when
 * out of memory. */
static int node_new(edr_pbsplit_t *s, uint32_t parent, uint32_t field,
                    const ProtobufCMessageDescriptor *desc, size_t cap)
{
    if (s->n_nodes == PS_MAX_NODES)
        return -1;
    ps_node_t *nd = &s->node[s->n_nodes];
    nd->tags.n = 0;
    if (edr__ps_grow(&nd->tags, cap))
        return -2;
    nd->parent = parent;
    nd->field = field;
    nd->desc = desc;
    memset(nd->kind, 0, sizeof(nd->kind));
    memset(nd->child, 0, sizeof(nd->child));
    memset(nd->stream, 0, sizeof(nd->stream));
    return (int)s->n_nodes++;
}

static int child_node(edr_pbsplit_t *s, uint32_t ni, uint32_t f,
                      const ProtobufCMessageDescriptor *desc, size_t cap)
{
    ps_node_t *nd = &s->node[ni];
    if (f >= PS_DIRECT)
        for (uint32_t i = ni + 1; i < s->n_nodes; i++)
            if (s->node[i].parent == ni && s->node[i].field == f)
                return (int)i;
    int c = node_new(s, ni, f, desc, cap);
    if (c >= 0 && f < PS_DIRECT)
        nd->child[f] = (uint16_t)(c + 1);
    return c;
}

/* The stream of field f of node ni, made when missing; NULL at the stream
 * limit (*oom clear) or when out of memory (*oom set). */
static ps_stream_t *stream_get(edr_pbsplit_t *s, uint32_t ni, uint32_t f, size_t cap, int *oom)
{
    ps_node_t *nd = &s->node[ni];
    if (f < PS_DIRECT && nd->stream[f])
        return &s->stream[nd->stream[f] - 1];
    if (f >= PS_DIRECT)
        for (uint32_t i = 0; i < s->n_streams; i++)
            if (s->stream[i].node == ni && s->stream[i].field == f)
                return &s->stream[i];
    if (s->n_streams == PS_MAX_STREAMS)
        return NULL;
    ps_stream_t *st = &s->stream[s->n_streams];
    st->val.n = st->len.n = 0;
    st->wts = 0;
    if (edr__ps_grow(&st->val, cap) || edr__ps_grow(&st->len, cap)) {
        *oom = 1;
        return NULL;
    }
    st->node = ni;
    st->field = f;
    if (f < PS_DIRECT)
        nd->stream[f] = (uint16_t)(s->n_streams + 1);
    s->n_streams++;
    return st;
}

/* Whether field f of node ni holds a submessage, and its type. */
static int field_kind(ps_node_t *nd, uint32_t f, const ProtobufCMessageDescriptor **sub)
{
    *sub = NULL;
    if (f < PS_DIRECT && nd->kind[f] == K_LEAF)
        return K_LEAF;
    const ProtobufCFieldDescriptor *fd =
        nd->desc ? protobuf_c_message_descriptor_get_field(nd->desc, f) : NULL;
    int k = fd && fd->type == PROTOBUF_C_TYPE_MESSAGE ? K_MSG : K_LEAF;
    if (k == K_MSG)
        *sub = fd->descriptor;
    if (f < PS_DIRECT)
        nd->kind[f] = (uint8_t)k;
    return k;
}

static int split_msg(edr_pbsplit_t *s, uint32_t ni, const uint8_t *p, const uint8_t *e,
                     unsigned depth, size_t cap)
{
    if (depth > PS_MAX_DEPTH)
        return EDR_EINVAL;
    ps_buf_t *tags = &s->node[ni].tags;
    while (p < e) {
        const uint8_t *k0 = p;
        uint64_t key, v;
        if (*p < 0x80)
            key = *p++;
        else if (ps_rd_varint(&p, e, &key))
            return EDR_EINVAL;
        uint64_t f = key >> 3;
        unsigned wt = key & 7;
        if (f == 0 || f > PS_MAX_FIELD)
            return EDR_EINVAL;
        tags->n = (size_t)(copy_to(tags->p + tags->n, k0, (size_t)(p - k0)) - tags->p);
        const uint8_t *v0 = p;
        int oom = 0;
        if (wt == 2) {
            if (ps_rd_varint(&p, e, &v) || v > (uint64_t)(e - p))
                return EDR_EINVAL;
            const ProtobufCMessageDescriptor *sub = NULL;
            const ps_node_t *nd = &s->node[ni];
            int c = f < PS_DIRECT && nd->child[f] ? nd->child[f] - 1 : -1;
            if (c >= 0 || field_kind(&s->node[ni], (uint32_t)f, &sub) == K_MSG) {
                if ((size_t)(p - v0) != ps_varint_len(v))
                    return EDR_EINVAL; /* a padded length would not join back byte for byte */
                if (c < 0 && (c = child_node(s, ni, (uint32_t)f, sub, cap)) < 0)
                    return c == -2 ? EDR_ENOMEM : EDR_EINVAL;
                int rc = split_msg(s, (uint32_t)c, p, p + v, depth + 1, cap);
                if (rc)
                    return rc;
            } else {
                ps_stream_t *st = stream_get(s, ni, (uint32_t)f, cap, &oom);
                if (!st)
                    return oom ? EDR_ENOMEM : EDR_EINVAL;
                st->wts |= 1u << 2;
                st->len.n = (size_t)(copy_to(st->len.p + st->len.n, v0, (size_t)(p - v0)) - st->len.p);
                st->val.n = (size_t)(copy_to(st->val.p + st->val.n, p, (size_t)v) - st->val.p);
            }
            p += v;
            continue;
        }
        if (wt == 0) {
            if (!(p = varint_end(p, e)))
                return EDR_EINVAL;
        } else if (wt == 1 || wt == 5) {
            size_t w = wt == 1 ? 8 : 4;
            if ((size_t)(e - p) < w)
                return EDR_EINVAL;
            p += w;
        } else {
            return EDR_EINVAL; /* groups and reserved wire types */
        }
        ps_stream_t *st = stream_get(s, ni, (uint32_t)f, cap, &oom);
        if (!st)
            return oom ? EDR_ENOMEM : EDR_EINVAL;
        st->wts |= 1u << wt;
        st->val.n = (size_t)(copy_to(st->val.p + st->val.n, v0, (size_t)(p - v0)) - st->val.p);
    }
    tags->p[tags->n++] = 0;
    return 0;
}

static int cmp_stream(const void *a, const void *b)
{
    const ps_stream_t *x = *(ps_stream_t *const *)a, *y = *(ps_stream_t *const *)b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->field < y->field ? -1 : x->field > y->field;
}

/* Reads a varint in its shortest encoding that runs to at most e: its end,
 * or NULL (too long, cut short, or padded: 0x80 0x00 would not come back
 * from its value byte for byte). */
static const uint8_t *varint_shortest(const uint8_t *p, const uint8_t *e, uint64_t *v)
{
    const uint8_t *q = p;
    if (ps_rd_varint(&q, e, v)) return NULL;
    size_t n = (size_t)(q - p);
    if (n > 1 && (q[-1] == 0 || (n == 10 && q[-1] > 1))) return NULL;
    return q;
}

/* Writes st's values as byte planes (PS_FORM_PLANES) at the end of
 * s->plane when that is exact and worth it: varints only, each in its
 * shortest encoding, at least 16 of them, some longer than a byte, and the
 * planes within twice their bytes and what *budget has left (taken from it).
 * 1 when written, 0 when not (nothing written), -1 when out of memory. */
static int planes_put(edr_pbsplit_t *s, const ps_stream_t *st, size_t *budget)
{
    if (st->wts != 1u || st->len.n || st->val.n < 32) return 0;
    uint64_t v, all = 0;
    size_t count = 0;
    for (const uint8_t *p = st->val.p, *e = p + st->val.n; p < e; count++) {
        if (!(p = varint_shortest(p, e, &v))) return 0;
        all |= v;
    }
    if (count < 16 || count == st->val.n)
        return 0; /* a byte each: the planes would be the stream itself */
    unsigned width = 1;
    while (width < 8 && (all >> (8 * width)))
        width++;
    /* every value takes the widest one's bytes: one clock step among 1 ns
     * deltas made them 8 each, and the form grew past what readers take,
     * its frame's raw length and 64 KiB (review-1206h H1: such a frame was
     * unreadable). At most twice the varints, and all the streams of a
     * batch at most PS_PLANES_EXTRA more */
    size_t size = ps_varint_len(count) + 1 + (size_t)width * count;
    size_t extra = size > st->val.n ? size - st->val.n : 0;
    if (size > 2 * st->val.n || extra > *budget) return 0;
    *budget -= extra;
    ps_buf_t *b = &s->plane;
    if (edr__ps_grow(b, 11 + (size_t)width * count)) return -1;
    ps_put_varint(b, count);
    b->p[b->n++] = (uint8_t)width;
    uint8_t *pl = b->p + b->n;
    size_t i = 0;
    for (const uint8_t *p = st->val.p, *e = p + st->val.n; p < e; i++) {
        p = varint_shortest(p, e, &v);
        for (unsigned j = 0; j < width; j++)
            pl[(size_t)j * count + i] = (uint8_t)(v >> (8 * j));
    }
    b->n += (size_t)width * count;
    return 1;
}

/* Writes the split form of what the nodes and streams hold (n bytes of
 * input at most) into s->out. */
static int ps_finish(edr_pbsplit_t *s, size_t n, const uint8_t **out, size_t *out_len)
{
    /* streams of a node next to one another, in field order */
    ps_stream_t *order[PS_MAX_STREAMS];
    for (uint32_t i = 0; i < s->n_streams; i++)
        order[i] = &s->stream[i];
    qsort(order, s->n_streams, sizeof(order[0]), cmp_stream);
    /* byte planes: each stream's in s->plane, length 0 when it has none */
    size_t at[PS_MAX_STREAMS], plen[PS_MAX_STREAMS], budget = PS_PLANES_EXTRA;
    int planes = 0;
    s->plane.n = 0;
    for (uint32_t i = 0; i < s->n_streams; i++) {
        at[i] = s->plane.n;
        int r = s->planes ? planes_put(s, order[i], &budget) : 0;
        if (r < 0) return EDR_ENOMEM;
        plen[i] = s->plane.n - at[i];
        planes |= r;
    }
    ps_buf_t *o = &s->out;
    o->n = 0;
    if (edr__ps_grow(o, n + s->plane.n + 16 * (size_t)(s->n_nodes + s->n_streams) + 64))
        return EDR_ENOMEM;
    ps_put_varint(o, planes ? PS_VERSION_2 : PS_VERSION);
    ps_put_varint(o, s->n_nodes);
    for (uint32_t i = 1; i < s->n_nodes; i++) {
        ps_put_varint(o, s->node[i].parent);
        ps_put_varint(o, s->node[i].field);
    }
    ps_put_varint(o, s->n_streams);
    for (uint32_t i = 0; i < s->n_streams; i++) {
        ps_put_varint(o, order[i]->node);
        ps_put_varint(o, order[i]->field);
        ps_put_varint(o, order[i]->len.n);
        ps_put_varint(o, plen[i] ? plen[i] : order[i]->val.n);
        if (planes) ps_put_varint(o, plen[i] ? PS_FORM_PLANES : PS_FORM_AS_IS);
    }
    for (uint32_t i = 0; i < s->n_nodes; i++)
        ps_put_varint(o, s->node[i].tags.n);
    for (uint32_t i = 0; i < s->n_nodes; i++)
        if (ps_put(o, s->node[i].tags.p, s->node[i].tags.n))
            return EDR_ENOMEM;
    for (uint32_t i = 0; i < s->n_streams; i++) {
        if (ps_put(o, order[i]->len.p, order[i]->len.n) ||
            (plen[i] ? ps_put(o, s->plane.p + at[i], plen[i])
                     : ps_put(o, order[i]->val.p, order[i]->val.n)))
            return EDR_ENOMEM;
    }
    *out = o->p;
    *out_len = o->n;
    return 0;
}

int edr__pbsplit(edr_pbsplit_t *s, const ProtobufCMessageDescriptor *root, const uint8_t *msg,
                 size_t n, const uint8_t **out, size_t *out_len)
{
    /* One node's tags are at most its keys plus an end mark per instance,
     * and each instance's key and length in its parent (>= 2 bytes) are not
     * in them; a stream is a subset of the input: n + 1 bounds all. */
    size_t cap = n + 16;
    s->n_nodes = s->n_streams = 0;
    if (node_new(s, 0, 0, root, cap) < 0)
        return EDR_ENOMEM;
    int rc = split_msg(s, 0, msg, msg + n, 0, cap);
    if (rc)
        return rc;
    return ps_finish(s, n, out, out_len);
}

/* ---- direct writer (pbsplit_int.h) ---- */

static void ps_fail(ps_writer_t *w, int err)
{
    if (!w->err)
        w->err = err;
}

ps_stream_t *edr__ps_stream_add(ps_writer_t *w, uint32_t f)
{
    int oom = 0;
    ps_stream_t *st = f && f <= PS_MAX_FIELD ? stream_get(w->s, w->node, f, 256, &oom) : NULL;
    if (!st)
        ps_fail(w, oom ? EDR_ENOMEM : EDR_EINVAL);
    return st;
}

int edr__ps_child_add(ps_writer_t *w, uint32_t f)
{
    const ProtobufCMessageDescriptor *sub = NULL;
    if (!f || f > PS_MAX_FIELD || field_kind(&w->s->node[w->node], f, &sub) != K_MSG) {
        ps_fail(w, EDR_EINVAL); /* not a submessage: the schema says otherwise */
        return -1;
    }
    int c = child_node(w->s, w->node, f, sub, 256);
    if (c < 0)
        ps_fail(w, c == -2 ? EDR_ENOMEM : EDR_EINVAL);
    return c;
}

int edr__pbsplit_wbegin(edr_pbsplit_t *s, ps_writer_t *w, const ProtobufCMessageDescriptor *root)
{
    memset(w, 0, offsetof(ps_writer_t, up_node));
    w->s = s;
    s->n_nodes = s->n_streams = 0;
    return node_new(s, 0, 0, root, 4096) < 0 ? EDR_ENOMEM : 0;
}

void edr__pbsplit_wmessage(ps_writer_t *w, uint32_t f, const ProtobufCMessage *m)
{
    edr_pbsplit_t *s = w->s;
    if (w->err)
        return;
    size_t n = protobuf_c_message_get_packed_size(m);
    const ps_node_t *nd = &s->node[w->node];
    int c = f < PS_DIRECT && nd->child[f] ? nd->child[f] - 1 : edr__ps_child_add(w, f);
    if (c < 0)
        return;
    if (edr__ps_grow(&s->tmp, n + 1)) {
        ps_fail(w, EDR_ENOMEM);
        return;
    }
    protobuf_c_message_pack(m, s->tmp.p);
    psw_key(w, f, 2);
    /* split_msg writes without checks into buffers reserved for its input
     * (see node_new): give every existing one that much room */
    for (uint32_t i = 0; i < s->n_nodes; i++)
        if (edr__ps_grow(&s->node[i].tags, n + 16))
            ps_fail(w, EDR_ENOMEM);
    for (uint32_t i = 0; i < s->n_streams; i++)
        if (edr__ps_grow(&s->stream[i].val, n + 16) || edr__ps_grow(&s->stream[i].len, n + 16))
            ps_fail(w, EDR_ENOMEM);
    if (w->err)
        return;
    int rc = split_msg(s, (uint32_t)c, s->tmp.p, s->tmp.p + n, w->depth + 1, n + 16);
    if (rc)
        ps_fail(w, rc);
    w->size += ps_varint_len(n) + n;
}

int edr__pbsplit_wend(ps_writer_t *w, const uint8_t **out, size_t *out_len, size_t *raw_len)
{
    edr_pbsplit_t *s = w->s;
    if (!w->err && w->depth)
        w->err = EDR_EINVAL; /* a submessage left open */
    if (!w->err && ps_put(&s->node[0].tags, "", 1))
        w->err = EDR_ENOMEM; /* the root's end mark */
    if (w->err)
        return w->err;
    size_t total = 0;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        total += s->node[i].tags.n;
    for (uint32_t i = 0; i < s->n_streams; i++)
        total += s->stream[i].len.n + s->stream[i].val.n;
    *raw_len = w->size;
    return ps_finish(s, total, out, out_len);
}

/* ---- join ---- */

#define BAD EDR_EFRAME_PROTOBUF






/* Joins one message instance of node ni at *op (bounded by oe). The hot
 * path is a one-byte key and a short value: the output is checked for 20
 * bytes of room once per field, which covers a key and a varint; the
 * caller's slack (EDR_PBJOIN_SLACK) lets the last fields pass that check. */
static int join_msg(edr_pbsplit_t *s, uint32_t ni, unsigned depth, uint8_t **op, uint8_t *oe)
{
    ps_node_t *nd = &s->node[ni];
    const uint8_t *tp = nd->tp, *te = nd->te;
    uint8_t *o = *op;
    int rc = BAD;
    for (;;) {
        const uint8_t *k0 = tp;
        uint64_t f, v;
        unsigned wt;
        int kr = ps_next_key(&tp, te, &f, &wt);
        if (kr <= 0) {
            rc = kr; /* 0: the end mark; BAD: no end mark, or a bad key */
            goto out;
        }
        if (oe - o < 20)
            goto out;
        o = copy_to(o, k0, (size_t)(tp - k0));
        int c = wt != 2 ? -1 : ps_node_child(s, nd, ni, (uint32_t)f);
        if (c >= 0) {
            if (depth >= PS_MAX_DEPTH)
                goto out;
            uint8_t *at = o++; /* one length byte; moved up when it needs more */
            nd->tp = tp;
            if ((rc = join_msg(s, (uint32_t)c, depth + 1, &o, oe)))
                return rc;
            rc = BAD;
            size_t body = (size_t)(o - at - 1);
            if (body >= 0x80) {
                unsigned vl = ps_varint_len(body);
                if ((size_t)(oe - o) < vl - 1)
                    goto out;
                memmove(at + vl, at + 1, body);
                o += vl - 1;
            }
            for (uint64_t x = body;; x >>= 7) {
                *at++ = (uint8_t)(x >= 0x80 ? (x & 0x7f) | 0x80 : x);
                if (x < 0x80)
                    break;
            }
            continue;
        }
        ps_stream_t *st = ps_node_stream(s, nd, ni, (uint32_t)f);
        if (!st)
            goto out;
        const uint8_t *vp = st->vp, *ve = st->ve;
        switch (wt) {
        case 0: {
            int i = 0;
            if (vp == ve)
                goto out; /* the stream has no value left */
            for (; i < 10 && vp < ve; i++)
                if (!((*o++ = *vp++) & 0x80))
                    break;
            if (i == 10 || (o[-1] & 0x80))
                goto out;
            break;
        }
        case 1:
        case 5: {
            size_t w = wt == 1 ? 8 : 4;
            if ((size_t)(ve - vp) < w)
                goto out;
            o = copy_to(o, vp, w);
            vp += w;
            break;
        }
        case 2: {
            const uint8_t *l0 = st->lp;
            if (ps_rd_varint(&st->lp, st->le, &v))
                goto out;
            o = copy_to(o, l0, (size_t)(st->lp - l0));
            if (v > (uint64_t)(ve - vp) || v > (uint64_t)(oe - o))
                goto out;
            o = copy_to(o, vp, (size_t)v);
            vp += v;
            break;
        }
        default: goto out;
        }
        st->vp = vp;
    }
out:
    nd->tp = tp;
    *op = o;
    return rc;
}

/* The value of plane-form stream value i (planes of count bytes, width of them). */
static inline uint64_t plane_value(const uint8_t *pl, size_t count, unsigned width, size_t i)
{
    uint64_t v = 0;
    for (unsigned j = 0; j < width; j++)
        v |= (uint64_t)pl[(size_t)j * count + i] << (8 * j);
    return v;
}

/* Reads the plane-form streams of an opened form back into varints, in
 * s->dec (decoded: their total length, checked against raw_len, which every
 * varint of the form is part of). 0, BAD, EDR_EFRAME_LENGTH, or EDR_ENOMEM. */
static int planes_read(edr_pbsplit_t *s, const uint8_t *form, size_t raw_len)
{
    size_t total = 0;
    for (uint32_t pass = 0; pass < 2; pass++) {
        if (pass && edr__ps_grow(&s->dec, total + 10)) /* no move while written */
            return EDR_ENOMEM;
        s->dec.n = 0;
        for (uint32_t i = 0; i < s->n_streams; i++) {
            ps_stream_t *st = &s->stream[i];
            if (!form[i]) continue;
            const uint8_t *p = st->vp;
            uint64_t count;
            if (ps_rd_varint(&p, st->ve, &count) || p == st->ve || *p < 1 || *p > 8) return BAD;
            unsigned width = *p++;
            if (count > (uint64_t)(st->ve - p) || count * width != (uint64_t)(st->ve - p))
                return BAD;
            if (!pass) {
                for (size_t k = 0; k < count; k++)
                    total += ps_varint_len(plane_value(p, count, width, k));
                if (total > raw_len)
                    return EDR_EFRAME_LENGTH; /* joins into more than the message */
                continue;
            }
            uint8_t *d0 = s->dec.p + s->dec.n;
            for (size_t k = 0; k < count; k++)
                ps_put_varint(&s->dec, plane_value(p, count, width, k));
            st->vp = d0;
            st->ve = s->dec.p + s->dec.n;
        }
    }
    return 0;
}

int edr__pbsplit_open(edr_pbsplit_t *s, const uint8_t *in, size_t n, size_t raw_len)
{
    const uint8_t *p = in, *e = in + n;
    uint64_t ver, nn, ns, a, b, c, d, form;
    uint8_t forms[PS_MAX_STREAMS];
    int any_planes = 0;
    if (ps_rd_varint(&p, e, &ver) || (ver != PS_VERSION && ver != PS_VERSION_2) ||
        ps_rd_varint(&p, e, &nn) || nn == 0 || nn > PS_MAX_NODES)
        return BAD;
    s->n_nodes = (uint32_t)nn;
    ps_node_t *root = &s->node[0];
    memset(root->child, 0, sizeof(root->child));
    memset(root->stream, 0, sizeof(root->stream));
    root->n_own = 0;
    root->behind = 0;
    root->snap_tp = NULL;
    for (uint32_t i = 1; i < s->n_nodes; i++) {
        if (ps_rd_varint(&p, e, &a) || ps_rd_varint(&p, e, &b) || a >= i || b == 0 || b > PS_MAX_FIELD)
            return BAD;
        ps_node_t *nd = &s->node[i];
        memset(nd->child, 0, sizeof(nd->child));
        memset(nd->stream, 0, sizeof(nd->stream));
        nd->n_own = 0;
        nd->behind = 0;
        nd->snap_tp = NULL;
        nd->parent = (uint32_t)a;
        nd->field = (uint32_t)b;
        ps_node_t *par = &s->node[a];
        if (b < PS_DIRECT) {
            if (par->child[b])
                return BAD; /* the same place twice */
            par->child[b] = (uint16_t)(i + 1);
        } else {
            for (uint32_t j = a + 1; j < i; j++)
                if (s->node[j].parent == a && s->node[j].field == b)
                    return BAD;
        }
    }
    if (ps_rd_varint(&p, e, &ns) || ns > PS_MAX_STREAMS)
        return BAD;
    s->n_streams = (uint32_t)ns;
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->n_streams; i++) {
        form = PS_FORM_AS_IS;
        if (ps_rd_varint(&p, e, &a) || ps_rd_varint(&p, e, &b) || ps_rd_varint(&p, e, &c) ||
            ps_rd_varint(&p, e, &d) || a >= nn || b == 0 || b > PS_MAX_FIELD || c > n || d > n ||
            (ver == PS_VERSION_2 && ps_rd_varint(&p, e, &form)) || form > PS_FORM_PLANES ||
            (form == PS_FORM_PLANES && c))
            return BAD; /* planes hold varints: no lengths */
        forms[i] = (uint8_t)form;
        any_planes |= form == PS_FORM_PLANES;
        ps_stream_t *st = &s->stream[i];
        st->node = (uint32_t)a;
        st->field = (uint32_t)b;
        ps_node_t *nd = &s->node[a];
        if (b < PS_DIRECT) {
            if (nd->stream[b])
                return BAD;
            nd->stream[b] = (uint16_t)(i + 1);
        } else {
            for (uint32_t j = 0; j < i; j++)
                if (s->stream[j].node == a && s->stream[j].field == b)
                    return BAD;
        }
        if (nd->n_own < PS_OWN)
            nd->own[nd->n_own] = (uint16_t)i;
        nd->n_own++; /* counted past PS_OWN: such a node cannot be scanned */
        st->lp = (const uint8_t *)(uintptr_t)c; /* lengths for now, pointers below */
        st->vp = (const uint8_t *)(uintptr_t)d;
        total += c + d;
    }
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        if (ps_rd_varint(&p, e, &a) || a > n)
            return BAD;
        s->node[i].tp = (const uint8_t *)(uintptr_t)a;
        total += a;
    }
    if (total != (uint64_t)(e - p))
        return BAD;
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        size_t l = (size_t)(uintptr_t)s->node[i].tp;
        s->node[i].tp = p;
        s->node[i].te = p += l;
    }
    for (uint32_t i = 0; i < s->n_streams; i++) {
        ps_stream_t *st = &s->stream[i];
        size_t ll = (size_t)(uintptr_t)st->lp, vl = (size_t)(uintptr_t)st->vp;
        st->lp = p;
        st->le = p += ll;
        st->vp = p;
        st->ve = p += vl;
    }
    return any_planes ? planes_read(s, forms, raw_len) : 0;
}

int edr__pbjoin(edr_pbsplit_t *s, const uint8_t *in, size_t n, uint8_t *out, size_t out_len)
{
    int rc = edr__pbsplit_open(s, in, n, out_len);
    if (rc)
        return rc;
    uint8_t *o = out;
    rc = join_msg(s, 0, 0, &o, out + out_len + EDR_PBJOIN_SLACK);
    if (rc)
        return (size_t)(o - out) > out_len ? EDR_EFRAME_LENGTH : rc;
    if (!edr__pbsplit_consumed(s))
        return BAD; /* left over: not what was split */
    return (size_t)(o - out) == out_len ? 0 : EDR_EFRAME_LENGTH;
}

int edr__pbsplit_consumed(const edr_pbsplit_t *s)
{
    for (uint32_t i = 0; i < s->n_nodes; i++)
        if (s->node[i].tp != s->node[i].te)
            return 0;
    for (uint32_t i = 0; i < s->n_streams; i++)
        if (s->stream[i].vp != s->stream[i].ve || s->stream[i].lp != s->stream[i].le)
            return 0;
    return 1;
}

/* ---- reading in place ---- */

/* Advances the cursors of node ni (and of its children) past one instance,
 * as joining it would, without writing anything. */
static int skip_msg(edr_pbsplit_t *s, uint32_t ni, unsigned depth)
{
    ps_node_t *nd = &s->node[ni];
    for (;;) {
        uint64_t f, v;
        unsigned wt;
        int kr = ps_next_key(&nd->tp, nd->te, &f, &wt);
        if (kr <= 0)
            return kr;
        int c = wt != 2 ? -1 : ps_node_child(s, nd, ni, (uint32_t)f);
        if (c >= 0) {
            int rc;
            if (depth >= PS_MAX_DEPTH || (rc = skip_msg(s, (uint32_t)c, depth + 1)))
                return BAD;
            continue;
        }
        ps_stream_t *st = ps_node_stream(s, nd, ni, (uint32_t)f);
        const uint8_t *val;
        size_t len;
        if (!st || ps_take_value(st, wt, &v, &val, &len))
            return BAD;
    }
}

int edr__pbsplit_child(const edr_pbsplit_t *s, uint32_t node, uint32_t field)
{
    if (node >= s->n_nodes)
        return -1;
    return ps_far_child((edr_pbsplit_t *)s, &s->node[node], node, field);
}

int edr__pbsplit_scan(edr_pbsplit_t *s, uint32_t ni, uint64_t want, edr_pbsplit_field_t *out,
                      size_t max, size_t *n_out)
{
    if (ni >= s->n_nodes)
        return BAD;
    ps_node_t *nd = &s->node[ni];
    *n_out = 0;
    if (nd->tp == nd->te)
        return 0; /* no more instances */
    if (nd->n_own > PS_OWN)
        return BAD;
    nd->snap_tp = nd->tp;
    for (uint32_t i = 0; i < nd->n_own; i++) {
        nd->snap_vp[i] = s->stream[nd->own[i]].vp;
        nd->snap_lp[i] = s->stream[nd->own[i]].lp;
    }
    nd->n_inst_kids = 0;
    for (;;) {
        uint64_t f;
        unsigned wt;
        int kr = ps_next_key(&nd->tp, nd->te, &f, &wt);
        if (kr <= 0)
            return kr < 0 ? kr : 1; /* the end mark closes the instance */
        edr_pbsplit_field_t spare, *o = &spare;
        if (f < 64 && (want >> f & 1)) {
            if (*n_out == max)
                return BAD;
            o = &out[(*n_out)++];
        }
        o->field = (uint32_t)f;
        o->wt = wt;
        o->num = 0;
        o->val = NULL;
        o->len = 0;
        o->child = wt != 2 ? -1 : ps_node_child(s, nd, ni, (uint32_t)f);
        if (o->child >= 0) { /* passed over: skipped only when a later join needs it */
            s->node[o->child].behind++;
            if (nd->n_inst_kids < PS_SCAN_FIELDS)
                nd->inst_kids[nd->n_inst_kids] = (uint16_t)o->child;
            nd->n_inst_kids++; /* past the limit the instance cannot be joined */
            continue;
        }
        ps_stream_t *st = ps_node_stream(s, nd, ni, (uint32_t)f);
        if (!st || ps_take_value(st, wt, &o->num, &o->val, &o->len))
            return BAD;
    }
}

int edr__pbsplit_join_last(edr_pbsplit_t *s, uint32_t ni, uint8_t *out, size_t cap,
                           size_t *len)
{
    if (ni >= s->n_nodes || !s->node[ni].snap_tp || s->node[ni].n_inst_kids > PS_SCAN_FIELDS)
        return BAD;
    ps_node_t *nd = &s->node[ni];
    /* the children this instance holds are its own, not passed over */
    for (uint32_t i = 0; i < nd->n_inst_kids; i++)
        s->node[nd->inst_kids[i]].behind--;
    /* bring every child up to this instance: skip what earlier scans passed */
    for (uint32_t c = ni + 1; c < s->n_nodes; c++) {
        ps_node_t *cn = &s->node[c];
        if (cn->parent != ni)
            continue;
        for (; cn->behind; cn->behind--) {
            int rc = skip_msg(s, c, 1);
            if (rc)
                return rc;
        }
    }
    nd->tp = nd->snap_tp;
    for (uint32_t i = 0; i < nd->n_own; i++) {
        s->stream[nd->own[i]].vp = nd->snap_vp[i];
        s->stream[nd->own[i]].lp = nd->snap_lp[i];
    }
    nd->n_inst_kids = 0;
    if (cap < EDR_PBJOIN_SLACK)
        return EDR_EFRAME_LENGTH;
    uint8_t *o = out;
    int rc = join_msg(s, ni, 1, &o, out + cap);
    *len = (size_t)(o - out);
    if (rc == 0 && *len > cap - EDR_PBJOIN_SLACK)
        rc = EDR_EFRAME_LENGTH;
    return rc;
}
