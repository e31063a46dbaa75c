/* Frame codec: header, XXH3 checksum, zstd (optionally with a dictionary) over the
 * field-wise split of the batch (pbsplit.h), protobuf-c. */
#include "edr/frame.h"
#include "edr/arena.h"
#include "edr/err.h"
#include "event_pack.h"
#include "pbsplit.h"
#include "pbunpack.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>
#include <zstd_errors.h>

#define MAX_DICTS 16
#define SPLIT_SLACK (64u << 10) /* room for the split form's directory (< 5 KiB) */
/* Smaller batches are compressed as serialized: a split form's streams are
 * too short for zstd to find much in them, its directory costs ~5 bytes an
 * event at 50 events, and a dictionary helps whole events more than split
 * ones (bench/run frame: 50-event batches with a dictionary 27.8 B/event as
 * serialized, 28.4 split). Split pays from a few hundred events. */
#define SPLIT_MIN (16u << 10)
/* and larger ones too (each stream's buffer is reserved at the batch's size) */
#define SPLIT_MAX (8u << 20)

int edr__frame_direct_split = 1;
int edr__frame_direct_unpack = 1;
#define EDR_ID_BYTES 16

struct edr_dict {
    uint32_t id;
    ZSTD_CDict *cdict;
    ZSTD_DDict *ddict;
};

struct edr_frame_ctx {
    edr_frame_opts_t opts;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *raw;
    size_t raw_cap;
    uint8_t *out;
    size_t out_cap;
    edr_pbsplit_t *ps; /* split and join state (codec 2) */
    uint8_t *split;    /* decode: the decompressed split form */
    size_t split_cap;
    uint8_t *slots, *actors, *actor_ptrs; /* actor table while encoding */
    size_t slots_cap, actors_cap, actor_ptrs_cap;
    edr_arena_t arena;
    edr_dict_t *dicts[MAX_DICTS];
    int n_dicts;
    int table_log; /* zstd hashLog = chainLog in use at levels 1-3 (0: zstd's own) */
};

uint64_t edr_frame_checksum(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- dictionaries ---- */

edr_dict_t *edr_dict_new(const void *buf, size_t len, int zstd_level)
{
    uint32_t id = ZDICT_getDictID(buf, len);
    if (id == 0)
        return NULL; /* not a zstd dictionary (raw content dictionaries have no id) */
    edr_dict_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->id = id;
    d->cdict = ZSTD_createCDict(buf, len, zstd_level ? zstd_level : 3);
    d->ddict = ZSTD_createDDict(buf, len);
    if (!d->cdict || !d->ddict) {
        edr_dict_destroy(d);
        return NULL;
    }
    return d;
}

edr_dict_t *edr_dict_load(const char *path, int zstd_level, char *errbuf, size_t errlen)
{
    edr_dict_t *d = NULL;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errbuf, errlen, "cannot open dictionary %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > (16 << 20)) {
        snprintf(errbuf, errlen, "dictionary %s: size must be between 1 byte and 16 MiB", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        snprintf(errbuf, errlen, "cannot read dictionary %s", path);
        goto out;
    }
    d = edr_dict_new(buf, (size_t)st.st_size, zstd_level);
    if (!d)
        snprintf(errbuf, errlen, "dictionary %s: not a zstd dictionary with an id", path);
out:
    free(buf);
    if (f)
        fclose(f);
    return d;
}

void edr_dict_destroy(edr_dict_t *d)
{
    if (!d)
        return;
    ZSTD_freeCDict(d->cdict);
    ZSTD_freeDDict(d->ddict);
    free(d);
}

uint32_t edr_dict_id(const edr_dict_t *d)
{
    return d->id;
}

long edr_dict_train(void *out, size_t dict_cap, const void *samples, const size_t *sample_lens,
                    unsigned n_samples)
{
    if (n_samples < 8)
        return EDR_EINVAL; /* zstd needs a handful of samples to train anything */
    size_t r = ZDICT_trainFromBuffer(out, dict_cap, samples, sample_lens, n_samples);
    if (ZDICT_isError(r))
        return EDR_EINVAL;
    return (long)r;
}

/* ---- context ---- */

edr_frame_ctx_t *edr_frame_ctx_new(const edr_frame_opts_t *opts)
{
    edr_frame_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    if (opts)
        ctx->opts = *opts;
    if (ctx->opts.max_raw_len == 0)
        ctx->opts.max_raw_len = EDR_FRAME_DEFAULT_MAX;
    if (ctx->opts.zstd_level == 0)
        ctx->opts.zstd_level = 3;
    if (ctx->opts.split_min == 0)
        ctx->opts.split_min = SPLIT_MIN;
    ctx->cctx = ZSTD_createCCtx();
    ctx->dctx = ZSTD_createDCtx();
    ctx->ps = edr__pbsplit_new();
    if (!ctx->cctx || !ctx->dctx || !ctx->ps) {
        edr_frame_ctx_destroy(ctx);
        return NULL;
    }
    edr__pbsplit_set_planes(ctx->ps, !ctx->opts.split_v1);
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_compressionLevel, ctx->opts.zstd_level);
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_checksumFlag, 0);
    /* For batch-sized inputs (<= 128 KiB) zstd's level 1-3 tables pick the
     * "fast" strategy; "dfast" measured both smaller (19.6 vs 20.2 B/event)
     * and faster on event batches (bench/run frame). Its table sizes follow
     * each input (set_tables). */
    if (ctx->opts.zstd_level <= 3)
        ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_strategy, ZSTD_dfast);
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_contentSizeFlag, 1);
    edr_arena_init(&ctx->arena, 256 << 10);
    return ctx;
}

void edr_frame_ctx_destroy(edr_frame_ctx_t *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->cctx);
    ZSTD_freeDCtx(ctx->dctx);
    free(ctx->raw);
    free(ctx->out);
    edr__pbsplit_free(ctx->ps);
    free(ctx->split);
    free(ctx->slots);
    free(ctx->actors);
    free(ctx->actor_ptrs);
    for (int i = 0; i < ctx->n_dicts; i++)
        edr_dict_destroy(ctx->dicts[i]);
    edr_arena_close(&ctx->arena);
    free(ctx);
}

static edr_dict_t *find_dict(const edr_frame_ctx_t *ctx, uint32_t id)
{
    for (int i = 0; i < ctx->n_dicts; i++)
        if (ctx->dicts[i]->id == id)
            return ctx->dicts[i];
    return NULL;
}

int edr_frame_ctx_add_dict(edr_frame_ctx_t *ctx, edr_dict_t *d)
{
    if (find_dict(ctx, d->id))
        return EDR_EEXIST;
    if (ctx->n_dicts == MAX_DICTS)
        return EDR_ERANGE;
    ctx->dicts[ctx->n_dicts++] = d;
    return 0;
}

int edr_frame_ctx_load_dicts(edr_frame_ctx_t *ctx, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return errno == ENOENT ? EDR_ENOENT : EDR_EIO;
    int n = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 7 || strcmp(de->d_name + l - 6, ".zdict") != 0)
            continue;
        char path[4096], err[256];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        edr_dict_t *d = edr_dict_load(path, ctx->opts.zstd_level, err, sizeof(err));
        if (!d) {
            rc = EDR_EPARSE;
            break;
        }
        if (edr_frame_ctx_add_dict(ctx, d) != 0)
            edr_dict_destroy(d); /* same id twice: keep the first */
        else
            n++;
    }
    closedir(dp);
    return rc ? rc : n;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    size_t n = *cap ? *cap : 64 << 10;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return EDR_ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

/* ---- encode ---- */

/* At levels 1-3, hash and chain tables of a quarter of the input's size
 * (2^14..2^18 entries): a sensor compresses a batch every few tens of ms with
 * caches the workload has just filled, and the dfast loop stalls on every
 * table miss. A 1,000-event batch (~80 KB) gets 2^14-entry tables (64 KiB
 * each) instead of 2^18 (1 MiB): the sensor's CPU under the overhead workload
 * fell from 0.106 to 0.087 s per run, frames grew 0.25 % (19.77 -> 19.82
 * B/event, bench/run frame). */
static void set_tables(edr_frame_ctx_t *ctx, size_t raw_len)
{
    if (ctx->opts.zstd_level > 3)
        return;
    int log = 0;
    while (log < 30 && ((size_t)1 << (log + 1)) <= raw_len)
        log++;
    log -= 2;
    log = log < 14 ? 14 : log > 18 ? 18 : log;
    if (log == ctx->table_log)
        return;
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_hashLog, log);
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_chainLog, log);
    ctx->table_log = log;
}

/* The split form of raw when the context splits and raw can be split: 1,
 * else 0 and the caller compresses raw as it is. Anything that is not
 * protobuf as we know it, exceeds the split form's limits, or finds memory
 * short is sent as serialized (codec 1), never refused. */
static int split_form(edr_frame_ctx_t *ctx, const void *raw, size_t raw_len, const uint8_t **out,
                      size_t *out_len)
{
    if (ctx->opts.unsplit || raw_len < ctx->opts.split_min || raw_len > SPLIT_MAX)
        return 0;
    return edr__pbsplit(ctx->ps, &edr__v1__event_batch__descriptor, raw, raw_len, out,
                        out_len) == 0;
}

/* Compresses `in` (raw itself, or its split form) into a frame of the given
 * codec whose header says raw_len. */
static int frame_finish(edr_frame_ctx_t *ctx, const uint8_t *in, size_t in_len, size_t raw_len,
                        uint8_t codec, edr_dict_t *d, uint32_t dict_id, const uint8_t **out,
                        size_t *out_len)
{
    size_t payload_len;
    if (codec == EDR_FRAME_CODEC_NONE) {
        if (grow(&ctx->out, &ctx->out_cap, EDR_FRAME_HEADER_SIZE + raw_len))
            return EDR_ENOMEM;
        memcpy(ctx->out + EDR_FRAME_HEADER_SIZE, in, raw_len);
        payload_len = raw_len;
    } else {
        size_t bound = ZSTD_compressBound(in_len);
        if (grow(&ctx->out, &ctx->out_cap, EDR_FRAME_HEADER_SIZE + bound))
            return EDR_ENOMEM;
        size_t r;
        if (d)
            r = ZSTD_compress_usingCDict(ctx->cctx, ctx->out + EDR_FRAME_HEADER_SIZE, bound, in,
                                         in_len, d->cdict);
        else {
            set_tables(ctx, in_len);
            r = ZSTD_compress2(ctx->cctx, ctx->out + EDR_FRAME_HEADER_SIZE, bound, in, in_len);
        }
        if (ZSTD_isError(r))
            return EDR_ENOMEM;
        payload_len = r;
    }
    uint8_t *h = ctx->out;
    memcpy(h, EDR_FRAME_MAGIC, 4);
    h[4] = EDR_FRAME_VERSION;
    h[5] = codec;
    h[6] = EDR_FRAME_HEADER_SIZE;
    h[7] = 0;
    put32(h + 8, d ? dict_id : 0);
    put32(h + 12, (uint32_t)raw_len);
    put32(h + 16, (uint32_t)payload_len);
    put32(h + 20, 0);
    put64(h + 24, edr_frame_checksum(h + EDR_FRAME_HEADER_SIZE, payload_len));
    *out = ctx->out;
    *out_len = EDR_FRAME_HEADER_SIZE + payload_len;
    return 0;
}

int edr_frame_encode_raw(edr_frame_ctx_t *ctx, const void *raw, size_t raw_len, uint32_t dict_id,
                         const uint8_t **out, size_t *out_len)
{
    if (raw_len > ctx->opts.max_raw_len || raw_len > UINT32_MAX)
        return EDR_EINVAL;
    edr_dict_t *d = NULL;
    if (dict_id && !(d = find_dict(ctx, dict_id)))
        return EDR_EFRAME_DICT;
    uint8_t codec = (ctx->opts.uncompressed && !dict_id) ? EDR_FRAME_CODEC_NONE
                                                         : EDR_FRAME_CODEC_ZSTD;
    const uint8_t *in = raw;
    size_t in_len = raw_len;
    if (codec == EDR_FRAME_CODEC_ZSTD && split_form(ctx, raw, raw_len, &in, &in_len))
        codec = EDR_FRAME_CODEC_ZSTD_SPLIT;
    return frame_finish(ctx, in, in_len, raw_len, codec, d, dict_id, out, out_len);
}

/* Wire form of events (see event.proto): time as delta from the previous
 * event, tid 0 when equal to pid, and the actor's identity (entity id,
 * parent, pid) once per batch in EventBatch.actors with events referring to
 * it. Timestamps were a quarter of the compressed bytes, repeated identities
 * another sixth. to_wire and from_wire are inverses; to_wire borrows the
 * events' own id buffers for the table, so nothing is copied. */
static int events_to_wire(edr_frame_ctx_t *ctx, Edr__V1__EventBatch *b)
{
    size_t slots = 64;
    while (slots < 2 * b->n_events)
        slots *= 2;
    if (grow(&ctx->slots, &ctx->slots_cap, slots * sizeof(int32_t)) ||
        grow(&ctx->actors, &ctx->actors_cap, (b->n_events + 1) * sizeof(Edr__V1__Actor)) ||
        grow(&ctx->actor_ptrs, &ctx->actor_ptrs_cap, (b->n_events + 1) * sizeof(void *)))
        return EDR_ENOMEM;
    int32_t *slot = (int32_t *)ctx->slots;
    Edr__V1__Actor *act = (Edr__V1__Actor *)ctx->actors;
    Edr__V1__Actor **ptrs = (Edr__V1__Actor **)ctx->actor_ptrs;
    memset(slot, -1, slots * sizeof(int32_t));
    size_t n_act = 0;
    int64_t prev = 0;
    for (size_t i = 0; i < b->n_events; i++) {
        Edr__V1__Event *e = b->events[i];
        int64_t t = e->time_offset_ns;
        e->time_offset_ns = (int64_t)((uint64_t)t - (uint64_t)prev); /* wraps, never UB */
        prev = t;
        if (e->tid == e->pid)
            e->tid = 0;
        if (e->entity_id.len != EDR_ID_BYTES)
            continue;
        uint64_t h;
        memcpy(&h, e->entity_id.data, 8);
        h ^= e->pid * 0x9E3779B97F4A7C15ull;
        if (e->parent_entity_id.len == EDR_ID_BYTES) {
            uint64_t ph;
            memcpy(&ph, e->parent_entity_id.data, 8);
            h ^= ph * 0xC2B2AE3D27D4EB4Full;
        }
        size_t k = (size_t)(h ^ (h >> 29)) & (slots - 1);
        for (;; k = (k + 1) & (slots - 1)) {
            int32_t j = slot[k];
            if (j < 0) {
                edr__v1__actor__init(&act[n_act]);
                act[n_act].entity_id = e->entity_id;
                act[n_act].parent_entity_id = e->parent_entity_id;
                act[n_act].pid = e->pid;
                ptrs[n_act] = &act[n_act];
                slot[k] = (int32_t)n_act++;
                j = slot[k];
            } else {
                const Edr__V1__Actor *x = &act[j];
                if (x->pid != e->pid || memcmp(x->entity_id.data, e->entity_id.data, 16) != 0 ||
                    x->parent_entity_id.len != e->parent_entity_id.len ||
                    (x->parent_entity_id.len &&
                     memcmp(x->parent_entity_id.data, e->parent_entity_id.data,
                            x->parent_entity_id.len) != 0))
                    continue;
            }
            e->actor = (uint32_t)j + 1;
            e->entity_id.len = 0;
            e->parent_entity_id.len = 0;
            e->pid = 0;
            break;
        }
    }
    b->n_actors = n_act;
    b->actors = n_act ? ptrs : NULL;
    return 0;
}

/* Restores the in-memory form. `own` is set on the encode side, where each
 * event still holds its own id buffers (to_wire only zeroed their lengths):
 * only the lengths come back, so the caller's events never end up pointing
 * into one another's memory. Returns EDR_EFRAME_PROTOBUF when an event
 * refers to an actor the batch does not have. */
static int events_from_wire(Edr__V1__EventBatch *b, int own)
{
    uint64_t acc = 0;
    int rc = 0;
    for (size_t i = 0; i < b->n_events; i++) {
        Edr__V1__Event *e = b->events[i];
        acc += (uint64_t)e->time_offset_ns; /* hostile input wraps, never UB */
        e->time_offset_ns = (int64_t)acc;
        if (e->actor) {
            if (e->actor > b->n_actors) {
                rc = EDR_EFRAME_PROTOBUF;
            } else if (own) {
                const Edr__V1__Actor *x = b->actors[e->actor - 1];
                e->entity_id.len = x->entity_id.len;
                e->parent_entity_id.len = x->parent_entity_id.len;
                e->pid = x->pid;
            } else {
                const Edr__V1__Actor *x = b->actors[e->actor - 1];
                e->entity_id = x->entity_id;
                e->parent_entity_id = x->parent_entity_id;
                e->pid = x->pid;
            }
            e->actor = 0;
        }
        if (e->tid == 0)
            e->tid = e->pid;
    }
    b->n_actors = 0;
    b->actors = NULL;
    return rc;
}

int edr_frame_encode(edr_frame_ctx_t *ctx, const Edr__V1__EventBatch *batch, uint32_t dict_id,
                     const uint8_t **out, size_t *out_len)
{
    /* the batch is const to the caller: it is rewritten to wire form for the
     * pack and restored before returning */
    Edr__V1__EventBatch *b = (Edr__V1__EventBatch *)batch;
    if (b->n_actors)
        return EDR_EINVAL; /* the actor table is the codec's, never the caller's */
    if (events_to_wire(ctx, b) != 0)
        return EDR_ENOMEM; /* fails before it changes anything */
    /* split frames: the batch goes straight into its split form (no protobuf
     * written and read back). Batches of fewer events than split_min / 32
     * bytes are mostly below split_min, and sent unsplit: they are
     * serialized below, as are the rare ones the direct writer declines */
    edr_dict_t *d = NULL;
    if (edr__frame_direct_split && !ctx->opts.unsplit && !(ctx->opts.uncompressed && !dict_id) &&
        b->n_events >= ctx->opts.split_min / 32 && !(dict_id && !(d = find_dict(ctx, dict_id)))) {
        const uint8_t *in;
        size_t in_len, raw_len;
        if (edr__batch_pack_split(ctx->ps, ctx->opts.max_raw_len, b, &in, &in_len, &raw_len) == 0 &&
            raw_len >= ctx->opts.split_min && raw_len <= SPLIT_MAX && raw_len <= UINT32_MAX) {
            events_from_wire(b, 1);
            return frame_finish(ctx, in, in_len, raw_len, EDR_FRAME_CODEC_ZSTD_SPLIT, d, dict_id,
                                out, out_len);
        }
    }
    size_t n = edr__batch_pack(&ctx->raw, &ctx->raw_cap, ctx->opts.max_raw_len, b);
    events_from_wire(b, 1);
    if (n == 0 && (batch->n_events || batch->sensor))
        return EDR_EINVAL; /* larger than max_raw_len, or out of memory */
    return edr_frame_encode_raw(ctx, ctx->raw, n, dict_id, out, out_len);
}

/* ---- decode ---- */

int edr_frame_header_parse(const edr_frame_ctx_t *ctx, const void *buf, size_t len, int exact,
                           edr_frame_header_t *hdr)
{
    const uint8_t *p = buf;
    if (len < EDR_FRAME_HEADER_SIZE)
        return EDR_EFRAME_TRUNCATED;
    if (memcmp(p, EDR_FRAME_MAGIC, 4) != 0)
        return EDR_EFRAME_BAD_MAGIC;
    hdr->version = p[4];
    hdr->codec = p[5];
    hdr->header_len = (uint16_t)(p[6] | p[7] << 8);
    hdr->dict_id = get32(p + 8);
    hdr->raw_len = get32(p + 12);
    hdr->payload_len = get32(p + 16);
    hdr->checksum = get64(p + 24);
    if (hdr->version != EDR_FRAME_VERSION || hdr->header_len != EDR_FRAME_HEADER_SIZE)
        return EDR_EFRAME_VERSION;
    if (hdr->codec != EDR_FRAME_CODEC_NONE && hdr->codec != EDR_FRAME_CODEC_ZSTD &&
        hdr->codec != EDR_FRAME_CODEC_ZSTD_SPLIT)
        return EDR_EFRAME_CODEC;
    uint32_t max = ctx ? ctx->opts.max_raw_len : EDR_FRAME_DEFAULT_MAX;
    if (hdr->raw_len > max)
        return EDR_EFRAME_TOO_LARGE;
    size_t need = (size_t)EDR_FRAME_HEADER_SIZE + hdr->payload_len;
    if (len < need)
        return EDR_EFRAME_TRUNCATED;
    if (exact && len != need)
        return EDR_EFRAME_LENGTH;
    if (hdr->codec == EDR_FRAME_CODEC_NONE && hdr->payload_len != hdr->raw_len)
        return EDR_EFRAME_LENGTH;
    return 0;
}

size_t edr_frame_len(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (len < EDR_FRAME_HEADER_SIZE || memcmp(p, EDR_FRAME_MAGIC, 4) != 0)
        return 0;
    return (size_t)EDR_FRAME_HEADER_SIZE + get32(p + 16);
}

int edr_frame_payload(edr_frame_ctx_t *ctx, const void *buf, size_t len, const uint8_t **raw,
                      size_t *raw_len, edr_frame_header_t *hp)
{
    edr_frame_header_t h;
    int rc = edr_frame_header_parse(ctx, buf, len, 1, &h);
    if (rc)
        return rc;
    *hp = h;
    const uint8_t *payload = (const uint8_t *)buf + EDR_FRAME_HEADER_SIZE;
    if (edr_frame_checksum(payload, h.payload_len) != h.checksum)
        return EDR_EFRAME_CHECKSUM;
    if (h.codec == EDR_FRAME_CODEC_NONE) {
        *raw = payload;
        *raw_len = h.raw_len;
        return 0;
    }
    edr_dict_t *d = NULL;
    if (h.dict_id && !(d = find_dict(ctx, h.dict_id)))
        return EDR_EFRAME_DICT;
    unsigned long long csize = ZSTD_getFrameContentSize(payload, h.payload_len);
    if (csize == ZSTD_CONTENTSIZE_ERROR)
        return EDR_EFRAME_DECOMPRESS;
    /* The split form of raw_len bytes is at most raw_len plus its directory
     * (and an end mark per message, which is never longer than the length it
     * replaces). It must state its size, so that the bound is known first. */
    int split = h.codec == EDR_FRAME_CODEC_ZSTD_SPLIT;
    size_t dst_len = split ? (size_t)h.raw_len + SPLIT_SLACK : h.raw_len;
    if (split ? (csize == ZSTD_CONTENTSIZE_UNKNOWN || csize > dst_len)
              : (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize != h.raw_len))
        return EDR_EFRAME_LENGTH; /* claims another size than the header: refuse before work */
    if (grow(&ctx->raw, &ctx->raw_cap, (size_t)h.raw_len + EDR_PBJOIN_SLACK) ||
        (split && grow(&ctx->split, &ctx->split_cap, dst_len)))
        return EDR_ENOMEM;
    /* The output buffer is bounded by raw_len: a payload that inflates beyond
     * it (a zstd bomb under a small claimed length) stops at the bound. */
    uint8_t *dst = split ? ctx->split : ctx->raw;
    size_t r = d ? ZSTD_decompress_usingDDict(ctx->dctx, dst, dst_len, payload, h.payload_len,
                                              d->ddict)
                 : ZSTD_decompressDCtx(ctx->dctx, dst, dst_len, payload, h.payload_len);
    if (ZSTD_isError(r)) {
        ZSTD_ErrorCode ec = ZSTD_getErrorCode(r);
        if (ec == ZSTD_error_dstSize_tooSmall)
            return EDR_EFRAME_LENGTH;
        if (ec == ZSTD_error_dictionary_wrong)
            return EDR_EFRAME_DICT;
        return EDR_EFRAME_DECOMPRESS;
    }
    if (split) {
        if (r != csize)
            return EDR_EFRAME_LENGTH;
        *raw = ctx->split;
        *raw_len = r;
        return 0;
    }
    if (r != h.raw_len)
        return EDR_EFRAME_LENGTH;
    *raw = ctx->raw;
    *raw_len = r;
    return 0;
}

int edr_frame_unwrap(edr_frame_ctx_t *ctx, const void *buf, size_t len, const uint8_t **raw,
                     size_t *raw_len)
{
    edr_frame_header_t h;
    int rc = edr_frame_payload(ctx, buf, len, raw, raw_len, &h);
    if (rc || h.codec != EDR_FRAME_CODEC_ZSTD_SPLIT)
        return rc;
    if ((rc = edr__pbjoin(ctx->ps, *raw, *raw_len, ctx->raw, h.raw_len)))
        return rc;
    *raw = ctx->raw;
    *raw_len = h.raw_len;
    return 0;
}


int edr_frame_compressed_form(edr_frame_ctx_t *ctx, const void *raw, size_t raw_len,
                              const uint8_t **out, size_t *out_len)
{
    if (ctx->opts.uncompressed || !split_form(ctx, raw, raw_len, out, out_len)) {
        *out = raw;
        *out_len = raw_len;
    }
    return 0;
}

/* The checks and restoration every unpacked batch goes through. */
static int batch_finish(Edr__V1__EventBatch *b, Edr__V1__EventBatch **out)
{
    if (b->schema_version != EDR_BATCH_SCHEMA_VERSION)
        return EDR_EFRAME_SCHEMA;
    if (events_from_wire(b, 0) != 0)
        return EDR_EFRAME_PROTOBUF;
    *out = b;
    return 0;
}

static int unpack_protobuf_c(edr_arena_t *a, const uint8_t *raw, size_t raw_len,
                             Edr__V1__EventBatch **out)
{
    Edr__V1__EventBatch *b = edr__v1__event_batch__unpack(&a->pb, raw_len, raw);
    if (!b)
        return EDR_EFRAME_PROTOBUF;
    return batch_finish(b, out);
}

int edr_frame_decode(edr_frame_ctx_t *ctx, const void *buf, size_t len,
                     Edr__V1__EventBatch **batch)
{
    const uint8_t *raw;
    size_t raw_len;
    edr_frame_header_t h;
    *batch = NULL;
    int rc = edr_frame_payload(ctx, buf, len, &raw, &raw_len, &h);
    if (rc)
        return rc;
    edr_arena_reset(&ctx->arena);
    if (h.codec == EDR_FRAME_CODEC_ZSTD_SPLIT) {
        /* straight from the split form; what it declines is joined and
         * unpacked by protobuf-c, which has the last word */
        ProtobufCMessage *m;
        if (edr__frame_direct_unpack &&
            edr__pbsplit_unpack(ctx->ps, &edr__v1__event_batch__descriptor, raw, raw_len,
                                h.raw_len, &ctx->arena, &m) == 0)
            return batch_finish((Edr__V1__EventBatch *)m, batch);
        edr_arena_reset(&ctx->arena);
        if ((rc = edr__pbjoin(ctx->ps, raw, raw_len, ctx->raw, h.raw_len)))
            return rc;
        /* what the split walk declined, the serialized walk would decline too */
        return unpack_protobuf_c(&ctx->arena, ctx->raw, h.raw_len, batch);
    }
    return edr_batch_unpack(&ctx->arena, raw, raw_len, batch);
}

int edr_batch_unpack(edr_arena_t *a, const uint8_t *raw, size_t raw_len,
                     Edr__V1__EventBatch **out)
{
    *out = NULL;
    ProtobufCMessage *m;
    if (edr__frame_direct_unpack &&
        edr__pb_unpack(&edr__v1__event_batch__descriptor, raw, raw_len, a, &m) == 0)
        return batch_finish((Edr__V1__EventBatch *)m, out);
    return unpack_protobuf_c(a, raw, raw_len, out); /* declined: protobuf-c has the last word */
}
