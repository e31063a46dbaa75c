/* Single-pass protobuf serializer for EventBatch, byte-identical to protobuf-c. */
#include "event_pack.h"
#include "pbsplit_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * protobuf-c walks a descriptor table for every field, and its callers must
 * size a message before packing it, so each event was walked twice. Here each
 * message of the hot path has its own writer: fields are written in field
 * number order, proto3 zero values are left out (as protobuf-c does), and a
 * nested message gets one byte of length in front, moved up when the message
 * turns out to be 128 bytes or longer.
 *
 * Bounds: writers never check the buffer for fixed-size fields. Every
 * variable-length write (string, bytes) checks that its length plus SLACK
 * bytes fit; the fixed-size fields written between two such checks, and all
 * the length fix-ups of one event, stay below SLACK. After a failed check
 * nothing variable is written and the event is redone in a larger buffer.
 *
 * Messages this file does not know (sensor health, DNS, process access and
 * anything carrying unknown fields) go through protobuf-c, which is correct
 * and rare.
 */

#define SLACK 160 /* > fixed bytes of any event: header 32, body scalars < 64, fix-ups 12 */

typedef struct {
    uint8_t *p;
    uint8_t *end;
    int overflow;
    ps_writer_t *sp; /* set: the fields go straight into a split form (codec 2) */
} wr_t;

static inline void put_varint(wr_t *w, uint64_t v)
{
    uint8_t *p = w->p;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    w->p = p;
}

static inline void put_tag(wr_t *w, unsigned field, unsigned wire)
{
    put_varint(w, (uint64_t)field << 3 | wire);
}

static inline void f_u64(wr_t *w, unsigned field, uint64_t v)
{
    if (v && w->sp) {
        psw_varint(w->sp, field, v);
    } else if (v) {
        put_tag(w, field, 0);
        put_varint(w, v);
    }
}

/* int32 and enums: negative values are sign-extended to ten bytes */
static inline void f_i32(wr_t *w, unsigned field, int32_t v)
{
    if (v && w->sp) {
        psw_varint(w->sp, field, (uint64_t)(int64_t)v);
    } else if (v) {
        put_tag(w, field, 0);
        put_varint(w, (uint64_t)(int64_t)v);
    }
}

static inline void f_s64(wr_t *w, unsigned field, int64_t v)
{
    if (v && w->sp) {
        psw_varint(w->sp, field, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
    } else if (v) {
        put_tag(w, field, 0);
        put_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
    }
}

static inline void f_bool(wr_t *w, unsigned field, protobuf_c_boolean v)
{
    if (v && w->sp) {
        psw_varint(w->sp, field, 1);
    } else if (v) {
        put_tag(w, field, 0);
        *w->p++ = 1;
    }
}

/* length-delimited bytes, written even when empty (repeated elements) */
static inline void put_lenbytes(wr_t *w, unsigned field, const void *data, size_t len)
{
    if (w->sp) {
        psw_bytes(w->sp, field, data, len);
        return;
    }
    if (w->overflow || len + SLACK > (size_t)(w->end - w->p)) {
        w->overflow = 1;
        return;
    }
    put_tag(w, field, 2);
    put_varint(w, len);
    if (len)
        memcpy(w->p, data, len);
    w->p += len;
}

static inline void f_str(wr_t *w, unsigned field, const char *s)
{
    if (s && *s)
        put_lenbytes(w, field, s, strlen(s));
}

static inline void f_bytes(wr_t *w, unsigned field, ProtobufCBinaryData b)
{
    if (b.len)
        put_lenbytes(w, field, b.data, b.len);
}

/* Opens a nested message: tag and one byte reserved for its length. */
static inline uint8_t *sub_open(wr_t *w, unsigned field)
{
    if (w->sp) {
        psw_open(w->sp, field);
        return NULL;
    }
    put_tag(w, field, 2);
    return w->p++;
}

/* Closes it: writes the length, moving the body up when it needs more bytes. */
static inline void sub_close(wr_t *w, uint8_t *lenp)
{
    if (w->sp) {
        psw_close(w->sp);
        return;
    }
    if (w->overflow)
        return;
    size_t len = (size_t)(w->p - lenp - 1);
    if (len < 0x80) {
        *lenp = (uint8_t)len;
        return;
    }
    size_t extra = 0;
    for (size_t v = len >> 7; v; v >>= 7)
        extra++;
    memmove(lenp + 1 + extra, lenp + 1, len);
    wr_t lw = {lenp, NULL, 0, NULL};
    put_varint(&lw, len);
    w->p += extra;
}

static void w_endpoint(wr_t *w, unsigned field, const Edr__V1__Endpoint *ep)
{
    if (!ep)
        return;
    uint8_t *l = sub_open(w, field);
    f_bytes(w, 1, ep->ip);
    f_u64(w, 2, ep->port);
    sub_close(w, l);
}

static void w_process_start(wr_t *w, const Edr__V1__ProcessStart *m)
{
    f_str(w, 1, m->exe);
    for (size_t i = 0; i < m->n_argv; i++) {
        const char *a = m->argv[i];
        put_lenbytes(w, 2, a ? a : "", a ? strlen(a) : 0);
    }
    f_str(w, 3, m->command_line);
    f_str(w, 4, m->cwd);
    f_u64(w, 5, m->uid);
    f_u64(w, 6, m->gid);
    f_str(w, 7, m->user);
    f_str(w, 8, m->group);
    f_bytes(w, 9, m->exe_sha256);
    f_u64(w, 10, m->cgroup_id);
    f_str(w, 11, m->container_id);
    f_u64(w, 12, m->ppid);
    f_bool(w, 13, m->seeded);
    f_u64(w, 14, m->start_time_ns);
    f_str(w, 15, m->parent_exe);
    f_bool(w, 16, m->argv_truncated);
    f_bool(w, 17, m->effective_ids);
    f_u64(w, 18, m->euid);
    f_u64(w, 19, m->egid);
    f_str(w, 20, m->effective_user);
}

static void w_body(wr_t *w, const Edr__V1__Event *e)
{
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_START:
        w_process_start(w, e->process_start);
        break;
    case EDR__V1__EVENT__BODY_PROCESS_FORK:
        f_u64(w, 1, e->process_fork->ppid);
        f_u64(w, 2, e->process_fork->start_time_ns);
        break;
    case EDR__V1__EVENT__BODY_PROCESS_EXIT:
        f_i32(w, 1, e->process_exit->exit_code);
        f_i32(w, 2, e->process_exit->signal);
        f_bool(w, 3, e->process_exit->status_unknown);
        break;
    case EDR__V1__EVENT__BODY_FILE_CREATE:
        f_str(w, 1, e->file_create->path);
        f_u64(w, 2, e->file_create->mode);
        f_str(w, 3, e->file_create->link_target);
        break;
    case EDR__V1__EVENT__BODY_FILE_WRITE:
        f_str(w, 1, e->file_write->path);
        f_u64(w, 2, e->file_write->bytes);
        break;
    case EDR__V1__EVENT__BODY_FILE_RENAME:
        f_str(w, 1, e->file_rename->old_path);
        f_str(w, 2, e->file_rename->new_path);
        break;
    case EDR__V1__EVENT__BODY_FILE_DELETE:
        f_str(w, 1, e->file_delete->path);
        break;
    case EDR__V1__EVENT__BODY_FILE_ATTR:
        f_str(w, 1, e->file_attr->path);
        f_i32(w, 2, (int32_t)e->file_attr->kind);
        f_u64(w, 3, e->file_attr->mode);
        f_u64(w, 4, e->file_attr->uid);
        f_u64(w, 5, e->file_attr->gid);
        break;
    case EDR__V1__EVENT__BODY_FILE_EXEC:
        f_str(w, 1, e->file_exec->path);
        f_bool(w, 2, e->file_exec->mapped);
        f_bytes(w, 3, e->file_exec->sha256);
        f_bool(w, 4, e->file_exec->anonymous);
        f_u64(w, 5, e->file_exec->address);
        f_u64(w, 6, e->file_exec->length);
        f_u64(w, 7, e->file_exec->prot);
        f_i32(w, 8, (int32_t)e->file_exec->by);
        f_bool(w, 9, e->file_exec->modified);
        break;
    case EDR__V1__EVENT__BODY_NETWORK:
        f_i32(w, 1, (int32_t)e->network->action);
        f_i32(w, 2, (int32_t)e->network->protocol);
        f_i32(w, 3, (int32_t)e->network->direction);
        w_endpoint(w, 4, e->network->local);
        w_endpoint(w, 5, e->network->remote);
        f_u64(w, 6, e->network->error);
        f_u64(w, 7, e->network->netns);
        break;
    default:
        break; /* not reached: hand_written() said no */
    }
}

/* The body message, or NULL when the event has none. */
static const ProtobufCMessage *body_of(const Edr__V1__Event *e)
{
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_START: return (const ProtobufCMessage *)e->process_start;
    case EDR__V1__EVENT__BODY_PROCESS_FORK: return (const ProtobufCMessage *)e->process_fork;
    case EDR__V1__EVENT__BODY_PROCESS_EXIT: return (const ProtobufCMessage *)e->process_exit;
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS: return (const ProtobufCMessage *)e->process_access;
    case EDR__V1__EVENT__BODY_FILE_CREATE: return (const ProtobufCMessage *)e->file_create;
    case EDR__V1__EVENT__BODY_FILE_WRITE: return (const ProtobufCMessage *)e->file_write;
    case EDR__V1__EVENT__BODY_FILE_RENAME: return (const ProtobufCMessage *)e->file_rename;
    case EDR__V1__EVENT__BODY_FILE_DELETE: return (const ProtobufCMessage *)e->file_delete;
    case EDR__V1__EVENT__BODY_FILE_ATTR: return (const ProtobufCMessage *)e->file_attr;
    case EDR__V1__EVENT__BODY_FILE_EXEC: return (const ProtobufCMessage *)e->file_exec;
    case EDR__V1__EVENT__BODY_NETWORK: return (const ProtobufCMessage *)e->network;
    case EDR__V1__EVENT__BODY_DNS_QUERY: return (const ProtobufCMessage *)e->dns_query;
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH: return (const ProtobufCMessage *)e->sensor_health;
    case EDR__V1__EVENT__BODY_BPF_LOAD: return (const ProtobufCMessage *)e->bpf_load;
    case EDR__V1__EVENT__BODY_BPF_ATTACH: return (const ProtobufCMessage *)e->bpf_attach;
    case EDR__V1__EVENT__BODY_BPF_DETACH:
        return (const ProtobufCMessage *)e->bpf_detach;
    case EDR__V1__EVENT__BODY_PROCESS_INVENTORY:
        return (const ProtobufCMessage *)e->process_inventory;
    default: return NULL;
    }
}

/* 1 when this file writes the event itself; 0: protobuf-c does. */
static int hand_written(const Edr__V1__Event *e, const ProtobufCMessage *body)
{
    if (e->base.n_unknown_fields)
        return 0;
    if (!body)
        return e->body_case == EDR__V1__EVENT__BODY__NOT_SET;
    if (body->n_unknown_fields)
        return 0;
    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS:
    case EDR__V1__EVENT__BODY_DNS_QUERY:
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH:
    case EDR__V1__EVENT__BODY_BPF_LOAD: /* rare: protobuf-c writes them */
    case EDR__V1__EVENT__BODY_BPF_ATTACH:
    case EDR__V1__EVENT__BODY_BPF_DETACH:
    case EDR__V1__EVENT__BODY_PROCESS_INVENTORY:
        return 0;
    case EDR__V1__EVENT__BODY_NETWORK: {
        const Edr__V1__Network *n = e->network;
        return !(n->local && n->local->base.n_unknown_fields) &&
               !(n->remote && n->remote->base.n_unknown_fields);
    }
    default:
        return 1;
    }
}

/* Writes field 5 (one event) of EventBatch; overflow is reported in w. */
static void w_event(wr_t *w, const Edr__V1__Event *e)
{
    const ProtobufCMessage *body = body_of(e);
    if (!hand_written(e, body)) {
        if (w->sp) { /* split straight into the event's node */
            edr__pbsplit_wmessage(w->sp, 5, &e->base);
            return;
        }
        size_t n = protobuf_c_message_get_packed_size(&e->base);
        if (w->overflow || n + SLACK > (size_t)(w->end - w->p)) {
            w->overflow = 1;
            return;
        }
        put_tag(w, 5, 2);
        put_varint(w, n);
        w->p += protobuf_c_message_pack(&e->base, w->p);
        return;
    }
    uint8_t *l = sub_open(w, 5);
    f_s64(w, 1, e->time_offset_ns);
    f_bytes(w, 2, e->entity_id);
    f_u64(w, 3, e->pid);
    f_u64(w, 4, e->tid);
    f_bytes(w, 5, e->parent_entity_id);
    f_u64(w, 6, e->actor);
    f_bool(w, 7, e->unconfirmed);
    f_str(w, 8, e->exe);
    if (body) {
        uint8_t *bl = sub_open(w, (unsigned)e->body_case);
        w_body(w, e);
        sub_close(w, bl);
    }
    sub_close(w, l);
}

static void w_actor(wr_t *w, const Edr__V1__Actor *a)
{
    uint8_t *l = sub_open(w, 6);
    f_bytes(w, 1, a->entity_id);
    f_bytes(w, 2, a->parent_entity_id);
    f_u64(w, 3, a->pid);
    sub_close(w, l);
}

/* Makes room for `need` more bytes after `used`; 0 or EDR-style -1. */
static int reserve(uint8_t **buf, size_t *cap, size_t used, size_t need, size_t max)
{
    if (*cap - used >= need)
        return 0;
    size_t n = *cap ? *cap : 64 << 10;
    while (n - used < need)
        n *= 2;
    if (n > max + 2 * SLACK + (64 << 10))
        n = max + 2 * SLACK + (64 << 10);
    if (n - used < need)
        return -1;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

size_t edr__batch_pack(uint8_t **buf, size_t *cap, size_t max, const Edr__V1__EventBatch *b)
{
    if (b->base.n_unknown_fields) {
        size_t n = protobuf_c_message_get_packed_size(&b->base);
        if (n > max || reserve(buf, cap, 0, n + 1, max))
            return 0;
        return protobuf_c_message_pack(&b->base, *buf);
    }
    size_t used = 0;
    size_t sensor_len = b->sensor ? protobuf_c_message_get_packed_size(&b->sensor->base) : 0;
    if (reserve(buf, cap, 0, sensor_len + 2 * SLACK, max))
        return 0;
    wr_t w = {*buf, *buf + *cap, 0, NULL};
    f_u64(&w, 1, b->schema_version);
    if (b->sensor) {
        put_tag(&w, 2, 2);
        put_varint(&w, sensor_len);
        w.p += protobuf_c_message_pack(&b->sensor->base, w.p);
    }
    f_u64(&w, 3, b->seq);
    f_u64(&w, 4, b->base_time_ns);
    /* one item per step: events, then actors; a step that overflows is redone */
    size_t n_items = b->n_events + b->n_actors;
    for (size_t i = 0; i < n_items;) {
        uint8_t *start = w.p;
        if ((size_t)(w.end - w.p) < 2 * SLACK)
            w.overflow = 1;
        else if (i < b->n_events)
            w_event(&w, b->events[i]);
        else
            w_actor(&w, b->actors[i - b->n_events]);
        used = (size_t)(start - *buf);
        if (w.overflow) {
            /* the step needs more than what is left: grow by its own size */
            size_t need = 4 * SLACK + (size_t)(w.end - start);
            if (used > max || reserve(buf, cap, used, need, max))
                return 0;
            w = (wr_t){*buf + used, *buf + *cap, 0, NULL};
            continue;
        }
        i++;
    }
    used = (size_t)(w.p - *buf);
    return used > max ? 0 : used;
}

int edr__batch_pack_split(edr_pbsplit_t *s, size_t max, const Edr__V1__EventBatch *b,
                          const uint8_t **out, size_t *out_len, size_t *raw_len)
{
    if (b->base.n_unknown_fields)
        return EDR_EINVAL; /* rare: the caller serializes and splits */
    ps_writer_t pw;
    if (edr__pbsplit_wbegin(s, &pw, &edr__v1__event_batch__descriptor))
        return EDR_ENOMEM;
    wr_t w = {NULL, NULL, 0, &pw};
    /* the same fields in the same order as edr__batch_pack */
    f_u64(&w, 1, b->schema_version);
    if (b->sensor)
        edr__pbsplit_wmessage(&pw, 2, &b->sensor->base);
    f_u64(&w, 3, b->seq);
    f_u64(&w, 4, b->base_time_ns);
    for (size_t i = 0; i < b->n_events && !pw.err; i++)
        w_event(&w, b->events[i]);
    for (size_t i = 0; i < b->n_actors && !pw.err; i++)
        w_actor(&w, b->actors[i]);
    if (!pw.err && pw.size > max)
        return EDR_EINVAL;
    return edr__pbsplit_wend(&pw, out, out_len, raw_len);
}
