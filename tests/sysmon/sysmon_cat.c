/* Debug aid: parses Sysmon/JSON-lines files and prints the events as ECS JSON lines plus a summary
 * on stderr. */
#include "edr/jsonl.h"
#include "edr/sysmon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_error(void *ud, uint64_t lineno, edr_sysmon_skip_t reason, const char *msg)
{
    fprintf(stderr, "%s:%llu: %s: %s\n", (const char *)ud, (unsigned long long)lineno,
            edr_sysmon_skip_name(reason), msg);
}

static int print_batch(void *ud, Edr__V1__EventBatch *b)
{
    for (size_t i = 0; i < b->n_events; i++)
        edr_jsonl_write_event(stdout, b, b->events[i]);
    return 0;
}

int main(int argc, char **argv)
{
    for (int f = 1; f < argc; f++) {
        FILE *in = fopen(argv[f], "r");
        if (!in) {
            perror(argv[f]);
            return 1;
        }
        edr_sysmon_opts_t o = {.on_error = on_error, .ud = argv[f]};
        edr_sysmon_parser_t *p = edr_sysmon_parser_new(&o);
        edr_sysmon_batcher_t *bt = edr_sysmon_batcher_new(0, print_batch, NULL);
        edr_arena_t a;
        edr_arena_init(&a, 1 << 16);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        uint64_t lineno = 0;
        while ((n = getline(&line, &cap, in)) >= 0) {
            edr_sysmon_record_t r;
            if (edr_sysmon_parse_line(p, line, (size_t)n, ++lineno, &a, &r) == 1)
                edr_sysmon_batcher_add(bt, &r);
            edr_arena_reset(&a);
        }
        edr_sysmon_batcher_flush(bt);
        const edr_sysmon_stats_t *s = edr_sysmon_parser_stats(p);
        fprintf(stderr, "%s: lines %llu events %llu xml_recovered %llu\n", argv[f],
                (unsigned long long)s->lines, (unsigned long long)s->events,
                (unsigned long long)s->xml_recovered);
        for (int k = 0; k < EDR_EVENT_KINDS; k++)
            if (s->by_kind[k])
                fprintf(stderr, "  %s %llu\n", edr_event_kind_name((Edr__V1__Event__BodyCase)k),
                        (unsigned long long)s->by_kind[k]);
        for (int k = 0; k < EDR_SYSMON_SKIP__COUNT; k++)
            if (s->skipped[k])
                fprintf(stderr, "  skipped %s %llu\n", edr_sysmon_skip_name((edr_sysmon_skip_t)k),
                        (unsigned long long)s->skipped[k]);
        for (int k = 0; k < 32; k++)
            if (s->unmapped_ids[k])
                fprintf(stderr, "    unmapped id %d: %llu\n", k,
                        (unsigned long long)s->unmapped_ids[k]);
        free(line);
        fclose(in);
        edr_arena_close(&a);
        edr_sysmon_batcher_destroy(bt);
        edr_sysmon_parser_destroy(p);
    }
    return 0;
}
