/* The sensor's on-disk spool: a bounded, crash-safe FIFO of wire frames in segment files. */
#ifndef EDR_SENSOR_SPOOL_H
#define EDR_SENSOR_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct edr_spool edr_spool_t;

/* A place in the spool: segment number and byte offset in it. */
typedef struct edr_spool_pos {
    uint64_t seg;
    uint64_t off;
} edr_spool_pos_t;

/* Called for every frame the spool gives up (oldest dropped past the bound,
 * a frame larger than the bound, a corrupt frame met while reading, a torn
 * tail cut at open: "overflow", "too_large", "corrupt", "torn"; frame is NULL
 * for the last two). */
typedef void (*edr_spool_drop_cb)(void *ud, const uint8_t *frame, size_t len, const char *reason);

typedef struct edr_spool_stats {
    uint64_t bytes;          /* bytes of the segment files on disk */
    uint64_t frames;         /* frames not yet acknowledged */
    uint64_t appended;       /* frames appended since open */
    uint64_t dropped_frames; /* overflow, too large, corrupt, torn (since open) */
    uint64_t torn_bytes;     /* bytes cut from a torn tail at open */
    uint64_t evicted_sent;   /* frames before the cursor the bound dropped (since open): not
                              * reported through on_drop, the caller accounts for them */
} edr_spool_stats_t;

/* Opens (creating, mode 0700) the spool directory dir and recovers it: a torn
 * last frame (crash in the middle of an append) is cut off and counted.
 * sync_interval_ns: appended data is fsynced at most this late (through
 * edr_spool_tick) or at once when 0. On error returns NULL and fills err. */
edr_spool_t *edr_spool_open(const char *dir, uint64_t max_bytes, uint64_t sync_interval_ns,
                            edr_spool_drop_cb on_drop, void *ud, char *err, size_t errlen);

/* Syncs data and the head position, then closes. Accepts NULL. */
void edr_spool_close(edr_spool_t *sp);

/* Appends one whole frame at the tail. When the spool would exceed its bound,
 * the oldest segments are dropped first (each lost frame through on_drop,
 * except those before the cursor: see edr_spool_set_cursor).
 * Returns 0; EDR_ERANGE when the frame alone exceeds the bound (dropped and
 * reported); EDR_EIO when the write failed (nothing appended). */
int edr_spool_append(edr_spool_t *sp, const void *frame, size_t len);

/* Reads the frame at *pos (moved up to the head first if it fell behind).
 * Returns 1 with the frame (valid until the next read) and the position after
 * it in *next; 0 when *pos is the tail; EDR_EIO on a read error. A corrupt
 * frame ends its segment: the rest of it is reported dropped and skipped. */
int edr_spool_read(edr_spool_t *sp, edr_spool_pos_t *pos, const uint8_t **frame, size_t *len,
                   edr_spool_pos_t *next);

/* Marks everything before pos (n frames) delivered: moves the head, deletes
 * finished segments. A pos at or before the head is ignored. */
void edr_spool_ack(edr_spool_t *sp, edr_spool_pos_t pos, uint64_t n);

/* Tells the spool how far the caller has read frames and handed them on
 * (the producer's replay cursor): the frames from the head up to pos are in
 * flight to Kafka and tracked by the caller. When the bound drops any of
 * them, they are not reported through on_drop but counted in evicted_sent,
 * and the head moves past them: the caller counts each as delivered or lost
 * when its delivery report comes (it can tell them by a position at or
 * before the head that it never acknowledged). Initially the head, i.e.
 * nothing is in flight. */
void edr_spool_set_cursor(edr_spool_t *sp, edr_spool_pos_t pos);

edr_spool_pos_t edr_spool_head(const edr_spool_t *sp);
edr_spool_pos_t edr_spool_tail(const edr_spool_t *sp);
int edr_spool_pos_cmp(edr_spool_pos_t a, edr_spool_pos_t b);
int edr_spool_empty(const edr_spool_t *sp);
void edr_spool_get_stats(const edr_spool_t *sp, edr_spool_stats_t *out);

/* Periodic work: fsync when the sync interval passed, persist the head. */
void edr_spool_tick(edr_spool_t *sp, uint64_t now_ns);
/* fsync data and head now. 0 or EDR_EIO. */
int edr_spool_sync(edr_spool_t *sp);
/* Changes the bound (SIGHUP); takes effect on the next append. */
void edr_spool_set_max(edr_spool_t *sp, uint64_t max_bytes);
/* Tests: when non-zero, counts down on each segment removal, which fails
 * with EIO when it reaches 0 (its file stays, as on a damaged disk). */
extern unsigned edr__spool_test_unlink_fail;

/* Changes the sync interval (SIGHUP; 0: every append). */
void edr_spool_set_sync(edr_spool_t *sp, uint64_t sync_interval_ns);

#endif
