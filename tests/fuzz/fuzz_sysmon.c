/* libFuzzer target: Sysmon / JSON-lines input, line by line, through parser, batcher and ECS
 * writer. */
#include "edr/jsonl.h"
#include "edr/sysmon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_batch(void *ud, Edr__V1__EventBatch *b)
{
    static char buf[1 << 16];
    edr_arena_t *a = ud;
    for (size_t i = 0; i < b->n_events; i++) {
        int n = edr_jsonl_format_event(b, b->events[i], buf, sizeof(buf));
        if (n <= 0) continue;
        /* what we write, we must read back */
        Edr__V1__Event *e;
        uint64_t t;
        uint8_t host[EDR_ID_LEN];
        const char *hn;
        if (edr_jsonl_parse_line(buf, (size_t)n, a, &e, &t, host, &hn, NULL, 0) != 0) abort();
        if (t != edr_event_time(b, b->events[i]) || e->body_case != b->events[i]->body_case)
            abort();
    }
    edr_arena_reset(a);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    edr_sysmon_opts_t o = {.max_line = 1 << 16};
    edr_sysmon_parser_t *p = edr_sysmon_parser_new(&o);
    edr_arena_t a, check;
    edr_arena_init(&a, 4096);
    edr_arena_init(&check, 4096);
    edr_sysmon_batcher_t *bt = edr_sysmon_batcher_new(4, check_batch, &check);
    if (!p || !bt) goto out;
    const char *s = (const char *)data;
    uint64_t lineno = 0;
    size_t off = 0;
    while (off < size) {
        const char *nl = memchr(s + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (s + off)) : size - off;
        edr_sysmon_record_t r;
        if (edr_sysmon_parse_line(p, s + off, len, ++lineno, &a, &r) == 1)
            edr_sysmon_batcher_add(bt, &r);
        edr_arena_reset(&a);
        off += len + 1;
    }
    edr_sysmon_batcher_flush(bt);
    const edr_sysmon_stats_t *st = edr_sysmon_parser_stats(p);
    uint64_t sum = st->events;
    for (int k = 0; k < EDR_SYSMON_SKIP__COUNT; k++)
        sum += st->skipped[k];
    if (sum != st->lines) /* every line is an event or a counted skip */
        abort();
out:
    edr_sysmon_batcher_destroy(bt);
    edr_sysmon_parser_destroy(p);
    edr_arena_close(&a);
    edr_arena_close(&check);
    return 0;
}
