/* Filling a graph from a Sysmon export (shared parser) or from the store's read API. */
#include "graph_int.h"

#include "edr/err.h"
#include "edr/sysmon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int flush_to_graph(void *ud, Edr__V1__EventBatch *b)
{
    return edr_graph_add_batch(ud, b);
}

int edr_graph_load_sysmon(edr_graph_t *g, const char *path, char *err, size_t errlen)
{
    return edr_graph_load_sysmon_stats(g, path, NULL, err, errlen);
}

int edr_graph_load_sysmon_stats(edr_graph_t *g, const char *path, edr_sysmon_stats_t *st, char *err,
                                size_t errlen)
{
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    uint64_t lineno = 0;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    edr_sysmon_parser_t *p = edr_sysmon_parser_new(NULL);
    edr_sysmon_batcher_t *bt = edr_sysmon_batcher_new(1024, flush_to_graph, g);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = EDR_EIO;
        goto out;
    }
    if (!p || !bt) {
        snprintf(err, errlen, "out of memory");
        rc = EDR_ENOMEM;
        goto out;
    }
    ssize_t n;
    errno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        edr_sysmon_record_t rec;
        int pr = edr_sysmon_parse_line(p, line, (size_t)n, ++lineno, &a, &rec);
        if (pr == 1)
            rc = edr_sysmon_batcher_add(bt, &rec);
        else if (pr < 0)
            rc = pr;
        edr_arena_reset(&a);
        if (rc) {
            snprintf(err, errlen, "%s:%llu: %s", path, (unsigned long long)lineno, edr_strerror(rc));
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error%s%s", path, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        rc = EDR_EIO;
        goto out;
    }
    if ((rc = edr_sysmon_batcher_flush(bt)) != 0)
        snprintf(err, errlen, "%s: %s", path, edr_strerror(rc));
out:
    if (st) {
        if (p)
            *st = *edr_sysmon_parser_stats(p);
        else
            memset(st, 0, sizeof(*st));
    }
    if (f)
        fclose(f);
    free(line);
    edr_sysmon_batcher_destroy(bt);
    edr_sysmon_parser_destroy(p);
    edr_arena_close(&a);
    return rc;
}

/* edr_graph_load_store_host() lives in store_rca.c with the rest of the store loading. */
