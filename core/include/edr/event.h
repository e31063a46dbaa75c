/* Helpers over decoded events: kind names, absolute times. */
#ifndef EDR_EVENT_H
#define EDR_EVENT_H

#include "edr/v1/batch.pb-c.h"

#include <stdint.h>

#define EDR_EVENT_KINDS 27 /* > highest Edr__V1__Event__BodyCase value */

/* Event times the pipeline takes: from 2000-01-01, and at most a day past
 * the clock of whoever checks (the collector's collector.max_clock_ahead
 * default). The collector dead-letters a batch holding an event outside
 * them; parsers of recorded telemetry (Sysmon exports, JSON lines) refuse
 * such a record alone. */
#define EDR_TIME_MIN_NS       946684800000000000ull
#define EDR_TIME_MAX_AHEAD_NS (86400ull * 1000000000ull)

/* Stable name of an event kind ("process_start", "file_write", ...), used in
 * JSON output (event.action), metrics and summaries. */
const char *edr_event_kind_name(Edr__V1__Event__BodyCase k);

/* The BpfAttach message of a bpf_attach or bpf_detach event (both carry
 * one), or NULL for another kind. */
static inline const Edr__V1__BpfAttach *edr_event_bpf_link(const Edr__V1__Event *e)
{
    return e->body_case == EDR__V1__EVENT__BODY_BPF_ATTACH   ? e->bpf_attach
           : e->body_case == EDR__V1__EVENT__BODY_BPF_DETACH ? e->bpf_detach
                                                             : NULL;
}

/* 1 for an event a source reported, 0 for the sensor's own (health,
 * process inventory). Only the former are counted, sent or lost: each of
 * the latter is repeated by the next one (health carries cumulative
 * counters, an inventory the running processes again), so losing one loses
 * nothing the next does not bring. */
static inline int edr_event_from_source(const Edr__V1__Event *e)
{
    return e->body_case != EDR__V1__EVENT__BODY_SENSOR_HEALTH &&
           e->body_case != EDR__V1__EVENT__BODY_PROCESS_INVENTORY;
}

/* The source events of batch b (edr_event_from_source). */
static inline uint64_t edr_batch_source_events(const Edr__V1__EventBatch *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i < b->n_events; i++)
        n += edr_event_from_source(b->events[i]);
    return n;
}

/* Absolute UTC ns of an event of batch b. */
static inline uint64_t edr_event_time(const Edr__V1__EventBatch *b, const Edr__V1__Event *e)
{
    return b->base_time_ns + (uint64_t)e->time_offset_ns;
}

/* A connect that did not connect (refused, timed out, denied...): an
 * attempt, not a connection. 115 (EINPROGRESS) is an outcome not seen,
 * which may have connected. */
static inline int edr_connect_failed(const Edr__V1__Network *n)
{
    return n->action == EDR__V1__NETWORK__ACTION__CONNECT && n->error && n->error != 115;
}

/* What made anonymous memory executable: "mmap", "mprotect", "exec",
 * "shmat", "personality", "" when not known. */
static inline const char *edr_memory_by_name(Edr__V1__FileExec__MemoryBy by)
{
    switch (by) {
    case EDR__V1__FILE_EXEC__MEMORY_BY__MMAP: return "mmap";
    case EDR__V1__FILE_EXEC__MEMORY_BY__MPROTECT: return "mprotect";
    case EDR__V1__FILE_EXEC__MEMORY_BY__EXEC: return "exec";
    case EDR__V1__FILE_EXEC__MEMORY_BY__SHMAT: return "shmat";
    case EDR__V1__FILE_EXEC__MEMORY_BY__PERSONALITY: return "personality";
    default: return "";
    }
}

/* PROT_* bits (read 1, write 2, exec 4) as "rwx", "r-x"...; buf has 4 bytes. */
static inline const char *edr_prot_name(uint32_t prot, char buf[4])
{
    buf[0] = prot & 1 ? 'r' : '-';
    buf[1] = prot & 2 ? 'w' : '-';
    buf[2] = prot & 4 ? 'x' : '-';
    buf[3] = 0;
    return buf;
}

#endif
