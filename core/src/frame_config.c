/* Frame contexts from the frame.* settings: one reading of them for the
 * sensor and edr import, which both encode what the store keeps. */
#include "edr/config.h"
#include "edr/frame.h"

#include <stdio.h>

edr_frame_ctx_t *edr_frame_ctx_from_config(const edr_config_t *cfg, uint32_t *dict_id, char *err,
                                           size_t errlen)
{
    edr_frame_opts_t fo = {.zstd_level = (int)edr_config_int(cfg, "frame.zstd_level"),
                           .max_raw_len = (uint32_t)edr_config_size(cfg, "frame.max_raw_bytes"),
                           .unsplit = !edr_config_bool(cfg, "frame.split"),
                           .split_v1 = !edr_config_bool(cfg, "frame.split_planes")};
    edr_frame_ctx_t *ctx = edr_frame_ctx_new(&fo);
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *dd = edr_config_str(cfg, "frame.dict_dir");
    if (*dd && edr_frame_ctx_load_dicts(ctx, dd) < 0) {
        snprintf(err, errlen, "frame.dict_dir: cannot load dictionaries from %s", dd);
        goto fail;
    }
    int64_t did = edr_config_int(cfg, "frame.dict_id");
    if (did < 0 || did > UINT32_MAX) {
        snprintf(err, errlen, "frame.dict_id: out of range");
        goto fail;
    }
    if (did) { /* a dictionary id that does not exist fails now */
        Edr__V1__EventBatch probe;
        edr__v1__event_batch__init(&probe);
        const uint8_t *fr;
        size_t fl;
        if (edr_frame_encode(ctx, &probe, (uint32_t)did, &fr, &fl) != 0) {
            snprintf(err, errlen, "frame.dict_id: dictionary %u not found in frame.dict_dir",
                     (unsigned)did);
            goto fail;
        }
    }
    if (dict_id)
        *dict_id = (uint32_t)did;
    return ctx;
fail:
    edr_frame_ctx_destroy(ctx);
    return NULL;
}
