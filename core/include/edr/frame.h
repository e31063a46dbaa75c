/* Wire frames: fixed header + zstd-compressed protobuf EventBatch. */
#ifndef EDR_FRAME_H
#define EDR_FRAME_H

#include "edr/arena.h"
#include "edr/v1/batch.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Layout (little endian), 32 bytes of header then the payload:
 *
 *   0  magic        "EDRF"
 *   4  version      u8, EDR_FRAME_VERSION
 *   5  codec        u8, edr_frame_codec_t
 *   6  header_len   u16, 32 (lets a later version grow the header)
 *   8  dict_id      u32, zstd dictionary id, 0 = none
 *  12  raw_len      u32, length of the serialized EventBatch
 *  16  payload_len  u32, length of what follows the header
 *  20  reserved     u32, 0
 *  24  checksum     u64, XXH3-64 of the payload bytes
 *
 * A frame file (spool, samples, `edr frame inspect`) is frames back to back.
 */
#define EDR_FRAME_MAGIC          "EDRF"
#define EDR_FRAME_VERSION        1
#define EDR_FRAME_HEADER_SIZE    32
#define EDR_FRAME_DEFAULT_MAX    (64u << 20) /* default bound on raw_len: 64 MiB */
#define EDR_BATCH_SCHEMA_VERSION 1

typedef enum {
    EDR_FRAME_CODEC_NONE = 0,
    EDR_FRAME_CODEC_ZSTD = 1,
    EDR_FRAME_CODEC_ZSTD_SPLIT = 2, /* zstd over the field-wise split of the batch (core/src/pbsplit.h) */
} edr_frame_codec_t;

typedef struct edr_frame_header {
    uint8_t version;
    uint8_t codec;
    uint16_t header_len;
    uint32_t dict_id;
    uint32_t raw_len;
    uint32_t payload_len;
    uint64_t checksum;
} edr_frame_header_t;

typedef struct edr_frame_opts {
    uint32_t max_raw_len; /* decode rejects larger frames; 0 = EDR_FRAME_DEFAULT_MAX */
    int zstd_level;       /* 0 = default (3) */
    int uncompressed;     /* 1: codec none (debugging); dictionaries force zstd */
    int unsplit;          /* 1: zstd over the batch as serialized (codec 1), not its split form */
    int split_v1;         /* 1: codec 2 without varint streams in byte planes (split form 1),
                             for readers older than 2026-12-06; readers take both */
    uint32_t split_min;   /* smallest serialized batch that is split; 0 = 16 KiB */
} edr_frame_opts_t;

/* A trained zstd dictionary, usable for both directions. */
typedef struct edr_dict edr_dict_t;

/* Builds a dictionary from its serialized form (as written by edr_dict_train).
 * Returns NULL on bad input or out of memory. */
edr_dict_t *edr_dict_new(const void *buf, size_t len, int zstd_level);
/* Loads a dictionary file; on error returns NULL and fills errbuf. */
edr_dict_t *edr_dict_load(const char *path, int zstd_level, char *errbuf, size_t errlen);
void edr_dict_destroy(edr_dict_t *d);
uint32_t edr_dict_id(const edr_dict_t *d);
/* Trains a dictionary of at most dict_cap bytes from raw (uncompressed)
 * samples. Writes it to out; returns its length, or a negative edr_err_t. */
long edr_dict_train(void *out, size_t dict_cap, const void *samples, const size_t *sample_lens,
                    unsigned n_samples);

/* Encoder/decoder context: compression state, reused buffers and the arena
 * decoded batches live in. Not thread-safe: one per thread. */
typedef struct edr_frame_ctx edr_frame_ctx_t;

/* Returns NULL when out of memory. opts may be NULL for defaults. */
edr_frame_ctx_t *edr_frame_ctx_new(const edr_frame_opts_t *opts);
void edr_frame_ctx_destroy(edr_frame_ctx_t *ctx);
/* Adds a dictionary for encode and decode; takes ownership on success.
 * Returns EDR_EEXIST when a dictionary with the same id is present. */
int edr_frame_ctx_add_dict(edr_frame_ctx_t *ctx, edr_dict_t *d);
/* Loads every *.zdict file of a directory; returns the count or a negative edr_err_t. */
int edr_frame_ctx_load_dicts(edr_frame_ctx_t *ctx, const char *dir);

/* Encodes a batch into a frame, compressed with dictionary dict_id (0: none).
 * *out points into the context and stays valid until the next encode.
 * Returns 0 or EDR_ENOMEM / EDR_EINVAL (batch too large) / EDR_EFRAME_DICT. */
int edr_frame_encode(edr_frame_ctx_t *ctx, const Edr__V1__EventBatch *batch, uint32_t dict_id,
                     const uint8_t **out, size_t *out_len);

/* Same, from an already serialized EventBatch. */
int edr_frame_encode_raw(edr_frame_ctx_t *ctx, const void *raw, size_t raw_len, uint32_t dict_id,
                         const uint8_t **out, size_t *out_len);

/* The bytes the encoder would compress for a serialized EventBatch: its
 * split form (codec 2), or raw itself when the context does not split or
 * raw cannot be split. Dictionaries are trained on these. *out is valid
 * until the next call on ctx. Returns 0. */
int edr_frame_compressed_form(edr_frame_ctx_t *ctx, const void *raw, size_t raw_len,
                              const uint8_t **out, size_t *out_len);

/* Parses and checks the fixed header only: magic, version, codec, header
 * length, the raw-length bound, and that buf holds exactly one whole frame
 * when exact is set (or at least one when it is not). */
int edr_frame_header_parse(const edr_frame_ctx_t *ctx, const void *buf, size_t len, int exact,
                           edr_frame_header_t *hdr);

/* Verifies and decompresses a frame without decoding the protobuf.
 * *raw points into the context, valid until the next call. */
int edr_frame_unwrap(edr_frame_ctx_t *ctx, const void *buf, size_t len, const uint8_t **raw,
                     size_t *raw_len);

/* Same as edr_frame_unwrap, but a codec-2 payload is left in its split form
 * (core/src/pbsplit.h), for readers that take a few events from it without
 * joining it all. *h gets the header: h->codec says which form *out is. */
int edr_frame_payload(edr_frame_ctx_t *ctx, const void *buf, size_t len, const uint8_t **out,
                      size_t *out_len, edr_frame_header_t *h);

/* Decodes one frame (exactly len bytes). The batch lives in the context's
 * arena until the next decode; do not free it. Returns 0 or a distinct
 * EDR_EFRAME_* code for each way the frame can be bad. */
int edr_frame_decode(edr_frame_ctx_t *ctx, const void *buf, size_t len,
                     Edr__V1__EventBatch **batch);

/* Unpacks a serialized EventBatch (as returned by edr_frame_unwrap) into
 * arena a, restoring the in-memory form of events (see event.proto). Returns
 * 0, EDR_EFRAME_PROTOBUF or EDR_EFRAME_SCHEMA; on error *out is NULL. */
int edr_batch_unpack(edr_arena_t *a, const uint8_t *raw, size_t raw_len,
                     Edr__V1__EventBatch **out);

/* Length of the frame starting at buf (header + payload), for walking frame
 * files; 0 when fewer than a header's bytes remain or the magic is wrong. */
size_t edr_frame_len(const void *buf, size_t len);

/* Cheap fingerprint used for frame payloads. */
uint64_t edr_frame_checksum(const void *p, size_t n);

/* A frame context set up from the frame.* settings of cfg (an
 * edr_config_t): zstd level, split form, frame.max_raw_bytes and
 * frame.dict_dir's dictionaries. *dict_id is frame.dict_id, checked to name a
 * loaded dictionary (so an encoder fails at start, not at its first batch).
 * NULL with err filled when a setting is wrong or memory runs out. */
struct edr_config;
edr_frame_ctx_t *edr_frame_ctx_from_config(const struct edr_config *cfg, uint32_t *dict_id,
                                           char *err, size_t errlen);

#endif
