/* Events as JSON lines with Elastic Common Schema field names (docs/jsonl.md). */
#ifndef EDR_JSONL_H
#define EDR_JSONL_H

#include "edr/arena.h"
#include "edr/identity.h"
#include "edr/v1/batch.pb-c.h"
#include "edr/v1/entity.pb-c.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Renders event e of batch b as one JSON object (nested ECS objects, e.g.
 * {"@timestamp":..,"event":{"action":..},"host":{..},"process":{..}}) followed
 * by '\n' into buf (NUL terminated). Returns the length without the NUL, or
 * EDR_ERANGE when buf is too small (buf then holds nothing useful), EDR_ENOMEM.
 * The sensor info of b gives host.id and host.name; b may have no sensor.
 */
int edr_jsonl_format_event(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, char *buf,
                           size_t cap);

/* Writes the same line to f. 0, EDR_ENOMEM, or EDR_EIO when the write failed. */
int edr_jsonl_write_event(FILE *f, const Edr__V1__EventBatch *b, const Edr__V1__Event *e);

/* Writes a process record (edr/v1/entity.proto) to f as one JSON object and
 * '\n', with the event lines' ECS names where they exist (process.entity_id,
 * process.executable, process.parent.entity_id, user.name ...), process.start
 * and process.end as RFC 3339 times, and edr.relation = relation when not NULL
 * (e.g. "ancestor"). 0, EDR_ENOMEM, or EDR_EIO when the write failed. */
int edr_jsonl_write_process(FILE *f, const Edr__V1__ProcessRecord *p, const char *relation);

/*
 * Reads one line written by edr_jsonl_format_event() back: the event (in a,
 * time_offset_ns 0), its UTC time, host id and host name (hostname may be ""
 * and is allocated in a). Accepts nested objects and flat dotted keys alike.
 * Returns 0; EDR_EPARSE when the line is not a JSON object or lacks
 * @timestamp, event.action or host (msg, when not NULL, gets a reason of at
 * most msgcap bytes); EDR_ENOMEM.
 */
int edr_jsonl_parse_line(const char *line, size_t len, edr_arena_t *a, Edr__V1__Event **event,
                         uint64_t *time_ns, uint8_t host_id[EDR_ID_LEN], const char **hostname,
                         char *msg, size_t msgcap);

/* RFC 3339 UTC time with nanoseconds ("2022-05-11T18:10:20.395000000Z") into
 * out (at least 32 bytes); returns out. */
char *edr_jsonl_time_format(uint64_t ns, char out[32]);

/*
 * Parses "YYYY-MM-DD[T ]hh:mm:ss[.f{1,9}][Z|+hh:mm|-hh:mm]" (no zone means
 * UTC; Sysmon writes "2022-05-11 18:10:20.395" and "2022-05-13T08:54:05.1230000Z")
 * into UTC ns since the epoch. 0, or EDR_EINVAL (then *ns is unchanged).
 */
int edr_jsonl_time_parse(const char *s, size_t len, uint64_t *ns);

#endif
