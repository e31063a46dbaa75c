/* Internal: the JSON-lines reader on an already parsed jansson object (used by sysmon.c). */
#ifndef EDR_JSONL_INT_H
#define EDR_JSONL_INT_H

#include "edr/jsonl.h"

#include <jansson.h>

/* True when root looks like one of our lines (has event.action). */
int edr__jsonl_is_ecs(json_t *root);

/* Same contract as edr_jsonl_parse_line(), from a parsed object. */
int edr__jsonl_from_json(json_t *root, edr_arena_t *a, Edr__V1__Event **event, uint64_t *time_ns,
                         uint8_t host_id[EDR_ID_LEN], const char **hostname, char *msg,
                         size_t msgcap);

/* Arena copy of an IP text as 4 or 16 bytes; 0, or EDR_EINVAL / EDR_ENOMEM. */
int edr__ip_parse(const char *s, edr_arena_t *a, ProtobufCBinaryData *out);

#endif
