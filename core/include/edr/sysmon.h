/* Sysmon and JSON-lines record parser: one line in, at most one edr.v1 Event out. */
#ifndef EDR_SYSMON_H
#define EDR_SYSMON_H

#include "edr/arena.h"
#include "edr/event.h"
#include "edr/identity.h"
#include "edr/v1/batch.pb-c.h"

#include <stddef.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdint.h>

/*
 * Shapes of input lines, detected per line:
 *   SYSLOG     JSON with a Sysmon XML <Event> in "SyslogMessage" (Sysmon for
 *              Linux shipped through syslog); the XML is read with libxml2 in
 *              recovery mode, so an entity without ';' or a message cut short
 *              by syslog still yields its complete fields (counted as recovered).
 *   EVENTDATA  JSON with "EventID", "Computer" and "EventData", a JSON string
 *              (or object) holding the Sysmon fields.
 *   FLAT       JSON with the Sysmon fields at the top level ("Channel",
 *              "EventID", "Hostname" or "Computer", ...).
 *   ECS        our own JSON lines (edr_jsonl_write_event(), docs/jsonl.md).
 */
typedef enum {
    EDR_SYSMON_SHAPE_SYSLOG = 0,
    EDR_SYSMON_SHAPE_EVENTDATA,
    EDR_SYSMON_SHAPE_FLAT,
    EDR_SYSMON_SHAPE_ECS,
    EDR_SYSMON_SHAPE__COUNT
} edr_sysmon_shape_t;

/* Why a line produced no event. Every skipped line is counted under one reason. */
typedef enum {
    EDR_SYSMON_SKIP_BLANK = 0,     /* empty or whitespace-only line */
    EDR_SYSMON_SKIP_OTHER_CHANNEL, /* a record of another log (Security, other syslog) */
    EDR_SYSMON_SKIP_UNMAPPED,      /* a Sysmon event id we do not map (registry, pipes...) */
    EDR_SYSMON_SKIP_MALFORMED,     /* not JSON, not an object, unreadable XML, unknown shape */
    EDR_SYSMON_SKIP_BAD_FIELD,     /* a required field missing or of the wrong type */
    EDR_SYSMON_SKIP_TOO_LONG,      /* line longer than opts.max_line */
    EDR_SYSMON_SKIP__COUNT
} edr_sysmon_skip_t;

/* Stable names ("blank", "other_channel", "unmapped_event_id", "malformed",
 * "bad_field", "too_long") and shape names ("syslog", "eventdata", "flat", "ecs"). */
const char *edr_sysmon_skip_name(edr_sysmon_skip_t r);
const char *edr_sysmon_shape_name(edr_sysmon_shape_t s);

/* Called for every malformed, bad-field or too-long line. msg is lower case,
 * without the line number, valid only during the call. */
typedef void (*edr_sysmon_error_cb)(void *ud, uint64_t lineno, edr_sysmon_skip_t reason,
                                    const char *msg);

typedef struct edr_sysmon_opts {
    size_t max_line;              /* longer lines are skipped; 0 = 1 MiB */
    edr_sysmon_error_cb on_error; /* optional */
    void *ud;
} edr_sysmon_opts_t;

#define EDR_SYSMON_FIRST_ERRORS 8

typedef struct edr_sysmon_stats {
    uint64_t lines;                             /* lines fed, blank ones included */
    uint64_t events;                            /* events produced */
    uint64_t by_kind[EDR_EVENT_KINDS];          /* events by Edr__V1__Event__BodyCase */
    uint64_t by_shape[EDR_SYSMON_SHAPE__COUNT]; /* events by input shape */
    uint64_t skipped[EDR_SYSMON_SKIP__COUNT];   /* skipped lines by reason */
    uint64_t unmapped_ids[32];                  /* UNMAPPED skips by Sysmon event id (< 32) */
    uint64_t xml_recovered;                     /* syslog XML that was not well formed but usable */
    uint64_t xml_cut_fields; /* of those, cut inside EventData: the last, partial field dropped */
    uint64_t n_errors;                          /* lines reported through on_error */
    struct {
        uint64_t lineno;
        edr_sysmon_skip_t reason;
        char msg[160];
    } first_errors[EDR_SYSMON_FIRST_ERRORS]; /* the first n_errors (at most 8) */
} edr_sysmon_stats_t;

/* One parsed record. Strings and the event live in the arena passed to
 * edr_sysmon_parse_line(). */
typedef struct edr_sysmon_record {
    uint8_t host_id[EDR_ID_LEN];
    const char *hostname;  /* Computer / Hostname / host.name */
    uint64_t time_ns;      /* event time, UTC ns (UtcTime) */
    Edr__V1__Event *event; /* time_offset_ns is 0: set it against your batch base */
    edr_sysmon_shape_t shape;
    int sysmon_id; /* Sysmon EventID, 0 for ECS lines */
} edr_sysmon_record_t;

typedef struct edr_sysmon_parser edr_sysmon_parser_t;

/* New parser (opts may be NULL). Returns NULL when out of memory. Caller frees
 * with edr_sysmon_parser_destroy(). Not thread-safe: one parser per thread. */
edr_sysmon_parser_t *edr_sysmon_parser_new(const edr_sysmon_opts_t *opts);
void edr_sysmon_parser_destroy(edr_sysmon_parser_t *p);

/*
 * Reads the next line of f, its newline included, into *buf (grown as
 * needed, never past opts.max_line + 2 bytes: memory stays bounded on a
 * file without newlines, a device, a binary given by mistake). Returns the
 * line's length (a line may hold NUL bytes: use it); 0 for a line longer than
 * opts.max_line, which was read to its end, dropped, counted and reported as
 * too long (lineno names it); EDR_EAGAIN while such a line goes on (at most
 * 4 MiB of it is read per call: call again, for the same line);
 * EDR_ENOENT at the end of f or on a read error (ferror(f) tells);
 * EDR_ENOMEM (the line is lost: the next call reads its rest and drops it).
 */
ssize_t edr_sysmon_read_line(edr_sysmon_parser_t *p, FILE *f, char **buf, size_t *cap,
                             uint64_t lineno);

/*
 * Parses one line (without or with its trailing newline; need not be NUL
 * terminated). lineno is used in error reports only.
 * Returns 1 and fills *out when the line yields an event (allocated in a);
 * 0 when the line was skipped (counted in the stats under its reason, and
 * reported through on_error when it was bad); EDR_ENOMEM when the arena ran
 * out (the line is then neither counted as an event nor as skipped).
 */
int edr_sysmon_parse_line(edr_sysmon_parser_t *p, const char *line, size_t len, uint64_t lineno,
                          edr_arena_t *a, edr_sysmon_record_t *out);

/* Counters since the parser was made. */
const edr_sysmon_stats_t *edr_sysmon_parser_stats(const edr_sysmon_parser_t *p);

/*
 * Entity id of a Sysmon process guid (ProcessGuid, ParentProcessGuid, ...) on
 * a host, as the parser computes it: NULL, empty or "-" give no id (returns 0);
 * an incomplete guid (groups 4 and 5 all zero, the all-zero guid included, as
 * Sysmon for Linux writes for processes it could not inspect) is keyed by the
 * pid instead ("incomplete:<pid>", no id when pid is 0); any other guid gives
 * edr_entity_id_from_guid(host, guid). Returns 1 when out was set.
 */
int edr_sysmon_entity_id(const uint8_t host_id[EDR_ID_LEN], const char *guid, uint32_t pid,
                         uint8_t out[EDR_ID_LEN]);

/*
 * Batching: consecutive records of one host (file order kept) become one
 * EventBatch with SensorInfo{host_id, hostname, source REPLAY}, schema 1, a
 * per-host seq starting at 1, base_time_ns = the first event's time. A batch
 * is handed to flush when the next record is of another host, when it holds
 * max_events, or on edr_sysmon_batcher_flush(). The batch (and its events,
 * copied into the batcher's own arena) is valid only during the callback;
 * flush may change b->seq or b->sensor fields. A non-zero return from flush is
 * passed back by the add/flush call that triggered it.
 */
typedef int (*edr_sysmon_flush_cb)(void *ud, Edr__V1__EventBatch *b);
typedef struct edr_sysmon_batcher edr_sysmon_batcher_t;

/* Returns NULL when out of memory; max_events 0 means 1024. */
edr_sysmon_batcher_t *edr_sysmon_batcher_new(size_t max_events, edr_sysmon_flush_cb flush,
                                             void *ud);
void edr_sysmon_batcher_destroy(edr_sysmon_batcher_t *bt);
/* Copies the record's event into the open batch (flushing first when needed).
 * 0, the flush callback's non-zero result, or EDR_ENOMEM. */
int edr_sysmon_batcher_add(edr_sysmon_batcher_t *bt, const edr_sysmon_record_t *r);
/* Hands the open batch (if any) to the callback. */
int edr_sysmon_batcher_flush(edr_sysmon_batcher_t *bt);
/* Flushes, then numbers every host's batches from 1 again: a file imported
 * after others gets the numbers it gets alone (edr import keys a batch by
 * its number in the file and its content, so re-importing it finds it). */
int edr_sysmon_batcher_restart(edr_sysmon_batcher_t *bt);

#endif
