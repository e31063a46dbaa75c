/* Error codes shared by every component: negative values, one X-macro. */
#ifndef EDR_ERR_H
#define EDR_ERR_H

/* XX(name, value, message). Messages follow git's guide: lower case, no stop. */
#define EDR_ERRNO_MAP(XX)                                                                          \
    XX(OK, 0, "success")                                                                           \
    XX(NOMEM, -1, "out of memory")                                                                 \
    XX(INVAL, -2, "invalid argument")                                                              \
    XX(IO, -3, "i/o error")                                                                        \
    XX(NOENT, -4, "not found")                                                                     \
    XX(EXIST, -5, "already exists")                                                                \
    XX(RANGE, -6, "value out of range")                                                            \
    XX(CONFIG, -7, "bad configuration")                                                            \
    XX(TIMEOUT, -8, "timed out")                                                                   \
    XX(KAFKA, -9, "kafka error")                                                                   \
    XX(STORE, -10, "store error")                                                                  \
    XX(PARSE, -11, "parse error")                                                                  \
    XX(UNSUPPORTED, -12, "not supported on this system")                                           \
    XX(PERM, -13, "permission denied")                                                             \
    XX(BUSY, -14, "resource busy")                                                                 \
    XX(AGAIN, -15, "try again")                                                                    \
    /* frame decoding: one code per way a frame can be bad */                                      \
    XX(FRAME_TRUNCATED, -100, "frame truncated")                                                   \
    XX(FRAME_BAD_MAGIC, -101, "frame has bad magic")                                               \
    XX(FRAME_VERSION, -102, "frame has unknown format version")                                    \
    XX(FRAME_CODEC, -103, "frame has unknown codec")                                               \
    XX(FRAME_DICT, -104, "frame needs an unknown zstd dictionary")                                 \
    XX(FRAME_CHECKSUM, -105, "frame checksum mismatch")                                            \
    XX(FRAME_DECOMPRESS, -106, "frame payload failed to decompress")                               \
    XX(FRAME_LENGTH, -107, "frame length mismatch")                                                \
    XX(FRAME_PROTOBUF, -108, "frame payload is not a valid event batch")                           \
    XX(FRAME_TOO_LARGE, -109, "frame raw length exceeds the configured bound")                     \
    XX(FRAME_SCHEMA, -110, "event batch has an unknown schema version")

typedef enum {
#define EDR__ERR_ENUM(name, val, msg) EDR_E##name = (val),
    EDR_ERRNO_MAP(EDR__ERR_ENUM)
#undef EDR__ERR_ENUM
} edr_err_t;

/* Human message for an error code; never NULL (unknown codes get a generic text). */
const char *edr_strerror(int err);

/* Stable short name of an error code ("FRAME_CHECKSUM"), for metrics and headers. */
const char *edr_err_name(int err);

#endif
