/* Internal to pbsplit.c and its direct writer (event_pack.c): the split
 * state, and inline primitives that write a message's fields straight into
 * their streams, so that a serializer that knows the schema can produce the
 * split form without writing protobuf first and reading it back. */
#ifndef EDR_PBSPLIT_INT_H
#define EDR_PBSPLIT_INT_H

#include "pbsplit.h"
#include "edr/err.h"

#include <stdlib.h>
#include <string.h>

#define PS_VERSION     1 /* no stream in byte planes */
#define PS_VERSION_2   2 /* a form per stream: PS_FORM_* (since 2026-12-06) */
#define PS_FORM_AS_IS  0
#define PS_FORM_PLANES 1 /* varints as byte planes (see pbsplit.c) */
#define PS_PLANES_EXTRA (16u << 10) /* bytes planes may add to a form (readers: 64 KiB) */
#define PS_MAX_NODES   64
#define PS_MAX_STREAMS 256
#define PS_MAX_DEPTH   16
#define PS_DIRECT      32 /* field numbers below this are looked up in tables */
#define PS_MAX_FIELD   0x1fffffffu
#define PS_OWN         32 /* a scanned node has at most this many value streams */
#define PS_SCAN_FIELDS 64 /* fields of one scanned instance */

enum { K_UNKNOWN = 0, K_LEAF, K_MSG };

typedef struct {
    uint8_t *p;
    size_t n, cap;
} ps_buf_t;

typedef struct {
    uint32_t parent, field;
    const ProtobufCMessageDescriptor *desc; /* split: the node's type, NULL when unknown */
    uint8_t kind[PS_DIRECT];                /* split: K_* of each field, cached */
    uint16_t child[PS_DIRECT];              /* 1 + node of a submessage field, 0: none */
    uint16_t stream[PS_DIRECT];             /* 1 + stream of a value field, 0: none */
    ps_buf_t tags;
    const uint8_t *tp, *te; /* join: tag cursor */
    uint16_t own[PS_OWN];   /* scan: the node's own streams */
    uint32_t n_own;
    uint32_t behind;        /* scan: instances a scan of the parent passed, not yet skipped */
    const uint8_t *snap_tp; /* scan: the last scanned instance's start */
    const uint8_t *snap_vp[PS_OWN], *snap_lp[PS_OWN];
    uint16_t inst_kids[PS_SCAN_FIELDS]; /* children met in the last scanned instance */
    uint32_t n_inst_kids;
    const ProtobufCMessageDescriptor *udesc;        /* unpack: the node's type */
    const ProtobufCFieldDescriptor *ufd[PS_DIRECT]; /* unpack: its fields by number */
    int urep;                                       /* unpack: it has repeated fields */
} ps_node_t;

typedef struct {
    uint32_t node, field;
    unsigned wts; /* split: a bit per wire type its values came with */
    ps_buf_t val, len;
    const uint8_t *vp, *ve, *lp, *le; /* join: cursors */
} ps_stream_t;

struct edr_pbsplit {
    ps_node_t node[PS_MAX_NODES];
    uint32_t n_nodes;
    ps_stream_t stream[PS_MAX_STREAMS];
    uint32_t n_streams;
    ps_buf_t out;
    ps_buf_t tmp;   /* direct writer: a message protobuf-c serializes, then split */
    int planes;     /* split: varint streams as byte planes where that is exact (format 2) */
    ps_buf_t plane; /* split: the byte planes of the streams written so */
    ps_buf_t dec;   /* open: the varints of streams read from byte planes */
};

/* ---- direct writer ----
 *
 * The writer produces exactly the split form edr__pbsplit would make of the
 * serialized message, provided fields are written in the order and encoding
 * the serializer would use (field order, proto3 zero values left out): the
 * nodes appear in the same depth-first order, and each stream receives the
 * same bytes. It also counts the serialized length (the frame header's raw
 * length). Errors stick: the first one is returned by edr__pbsplit_wend. */
typedef struct {
    edr_pbsplit_t *s;
    uint32_t node;  /* the message being written */
    size_t size;    /* its serialized bytes so far */
    int err;        /* 0, EDR_ENOMEM, or EDR_EINVAL at a limit of the split form */
    unsigned depth, skip; /* skip: opens past PS_MAX_DEPTH (an error), not entered */
    uint32_t up_node[PS_MAX_DEPTH + 1];
    size_t up_size[PS_MAX_DEPTH + 1];
} ps_writer_t;

/* Makes room for `more` bytes after b->n (doubling); 0 or EDR_ENOMEM. */
int edr__ps_grow(ps_buf_t *b, size_t more);
ps_stream_t *edr__ps_stream_add(ps_writer_t *w, uint32_t f);
int edr__ps_child_add(ps_writer_t *w, uint32_t f);

/* Starts a split of a `root` message in s. 0 or EDR_ENOMEM. */
int edr__pbsplit_wbegin(edr_pbsplit_t *s, ps_writer_t *w, const ProtobufCMessageDescriptor *root);
/* Field f of the current message: submessage m, serialized by protobuf-c and
 * split (for messages without a hand-written writer). */
void edr__pbsplit_wmessage(ps_writer_t *w, uint32_t f, const ProtobufCMessage *m);
/* Finishes: *out (valid until the next use of s) gets the split form, *raw_len
 * the serialized length of the message. 0, or the first error. */
int edr__pbsplit_wend(ps_writer_t *w, const uint8_t **out, size_t *out_len, size_t *raw_len);

static inline unsigned ps_varint_len(uint64_t v)
{
    unsigned n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Appends a varint; room for 10 bytes is made first. */
static inline int ps_put_varint(ps_buf_t *b, uint64_t v)
{
    if (b->cap - b->n < 10 && edr__ps_grow(b, 10))
        return -1;
    uint8_t *p = b->p + b->n;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->n = (size_t)(p - b->p);
    return 0;
}

static inline int ps_put(ps_buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->n < n && edr__ps_grow(b, n))
        return -1;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

/* The key of field f (wire type wt) into the current message's tags. */
static inline void psw_key(ps_writer_t *w, uint32_t f, unsigned wt)
{
    uint64_t key = (uint64_t)f << 3 | wt;
    if (ps_put_varint(&w->s->node[w->node].tags, key))
        w->err = EDR_ENOMEM;
    w->size += ps_varint_len(key);
}

static inline ps_stream_t *psw_stream(ps_writer_t *w, uint32_t f)
{
    const ps_node_t *nd = &w->s->node[w->node];
    if (f < PS_DIRECT && nd->stream[f])
        return &w->s->stream[nd->stream[f] - 1];
    return edr__ps_stream_add(w, f);
}

/* A varint field (int, enum, bool, zigzag already applied). */
static inline void psw_varint(ps_writer_t *w, uint32_t f, uint64_t v)
{
    ps_stream_t *st = psw_stream(w, f);
    if (!st)
        return;
    psw_key(w, f, 0);
    st->wts |= 1u;
    if (ps_put_varint(&st->val, v))
        w->err = EDR_ENOMEM;
    w->size += ps_varint_len(v);
}

/* A string or bytes field. */
static inline void psw_bytes(ps_writer_t *w, uint32_t f, const void *p, size_t n)
{
    ps_stream_t *st = psw_stream(w, f);
    if (!st)
        return;
    psw_key(w, f, 2);
    st->wts |= 1u << 2;
    if (ps_put_varint(&st->len, n) || ps_put(&st->val, p, n))
        w->err = EDR_ENOMEM;
    w->size += ps_varint_len(n) + n;
}

/* Opens submessage field f; its fields follow, then psw_close. */
static inline void psw_open(ps_writer_t *w, uint32_t f)
{
    const ps_node_t *nd = &w->s->node[w->node];
    int c = f < PS_DIRECT && nd->child[f] ? nd->child[f] - 1 : edr__ps_child_add(w, f);
    if (c < 0 || w->depth >= PS_MAX_DEPTH) {
        /* the result is discarded: write on into the current message */
        w->err = w->err ? w->err : EDR_EINVAL;
        w->skip++;
        return;
    }
    psw_key(w, f, 2);
    w->up_node[w->depth] = w->node;
    w->up_size[w->depth] = w->size;
    w->depth++;
    w->node = (uint32_t)c;
    w->size = 0;
}

static inline void psw_close(ps_writer_t *w)
{
    if (w->skip) {
        w->skip--;
        return;
    }
    ps_buf_t *t = &w->s->node[w->node].tags;
    if (t->cap - t->n < 1 && edr__ps_grow(t, 1))
        w->err = EDR_ENOMEM;
    else
        t->p[t->n++] = 0; /* end of the instance */
    size_t sub = w->size;
    w->depth--;
    w->node = w->up_node[w->depth];
    w->size = w->up_size[w->depth] + ps_varint_len(sub) + sub;
}

/* ---- reading the split form (join, scan, unpack) ---- */

/* Whether a walk of the form opened in s used every tag and every value:
 * a form with anything left over is not what a split makes. */
int edr__pbsplit_consumed(const edr_pbsplit_t *s);

/* Reads a varint of at most 10 bytes; -1 when it runs past e or is longer. */
static inline int ps_rd_varint(const uint8_t **pp, const uint8_t *e, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (unsigned sh = 0; sh < 70 && p < e; sh += 7) {
        uint8_t c = *p++;
        if (sh < 64)
            r |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *pp = p;
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* The submessage node of field f of node ni, searching the node list for
 * fields past the tables; -1 when there is none. */
static inline int ps_far_child(edr_pbsplit_t *s, const ps_node_t *nd, uint32_t ni, uint32_t f)
{
    if (f < PS_DIRECT)
        return nd->child[f] - 1;
    for (uint32_t i = ni + 1; i < s->n_nodes; i++)
        if (s->node[i].parent == ni && s->node[i].field == f)
            return (int)i;
    return -1;
}

/* The submessage node of field f of node ni (nd), or -1. */
static inline int ps_node_child(edr_pbsplit_t *s, const ps_node_t *nd, uint32_t ni, uint32_t f)
{
    return f < PS_DIRECT ? nd->child[f] - 1 : ps_far_child(s, nd, ni, f);
}

/* The value stream of field f of node ni (nd), or NULL. */
static inline ps_stream_t *ps_node_stream(edr_pbsplit_t *s, const ps_node_t *nd, uint32_t ni,
                                       uint32_t f)
{
    if (f < PS_DIRECT)
        return nd->stream[f] ? &s->stream[nd->stream[f] - 1] : NULL;
    for (uint32_t i = 0; i < s->n_streams; i++)
        if (s->stream[i].node == ni && s->stream[i].field == f)
            return &s->stream[i];
    return NULL;
}

/* Takes one value of wire type wt from a stream: its number (varints and
 * fixed values) or its contents (length-delimited). 0 or -1 when the
 * stream does not hold it. */
static inline int ps_take_value(ps_stream_t *st, unsigned wt, uint64_t *num, const uint8_t **val,
                      size_t *len)
{
    uint64_t v;
    *num = 0;
    switch (wt) {
    case 0: return ps_rd_varint(&st->vp, st->ve, num);
    case 1:
    case 5: {
        size_t w = wt == 1 ? 8 : 4;
        if ((size_t)(st->ve - st->vp) < w)
            return -1;
        for (size_t k = 0; k < w; k++)
            *num |= (uint64_t)st->vp[k] << (8 * k);
        st->vp += w;
        return 0;
    }
    case 2:
        if (ps_rd_varint(&st->lp, st->le, &v) || v > (uint64_t)(st->ve - st->vp))
            return -1;
        *val = st->vp;
        *len = (size_t)v;
        st->vp += v;
        return 0;
    default: return -1;
    }
}

/* Reads the next key of a tag stream: 1 with its field and wire type, 0 at
 * an instance's end mark, EDR_EFRAME_PROTOBUF when the stream ends first or the key is not
 * a field's. */
static inline int ps_next_key(const uint8_t **tp, const uint8_t *te, uint64_t *f, unsigned *wt)
{
    uint64_t key;
    if (*tp < te && **tp < 0x80)
        key = *(*tp)++;
    else if (ps_rd_varint(tp, te, &key))
        return EDR_EFRAME_PROTOBUF;
    if (key == 0)
        return 0;
    *f = key >> 3;
    *wt = key & 7;
    return *f == 0 || *f > PS_MAX_FIELD ? EDR_EFRAME_PROTOBUF : 1;
}

#endif
