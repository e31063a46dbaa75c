/* The running-process inventory: ProcessInventory events listing every
 * user-space process of /proc with its parent, by entity id. The store keeps
 * the records of the processes listed past its retention horizon while they
 * run: without it a parent that only forks (a service's master, a session,
 * a container's init) was retired once no child of its own had acted within
 * the horizon, and the ancestry of an active process was cut above it. The
 * list is read from /proc, not from a source's process cache, so that it is
 * the same under every source that watches this host. */
#include "sensor_int.h"

#include "edr/err.h"
#include "edr/identity.h"
#include "edr/log.h"
#include "proc_cache.h"

#include <stdlib.h>
#include <string.h>

static int by_pid(const void *a, const void *b)
{
    const edr_proc_stat_t *x = a, *y = b;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

int edr__inventory_emit(edr_emit_t *em, const char *proc_root, uint64_t now_utc_ns,
                        size_t per_event)
{
    edr_proc_stat_t *v;
    int n = edr_proc_list(proc_root, &v);
    if (n < 0) {
        edr__drops_add(em->drops, "inventory", n == EDR_ENOMEM ? "nomem" : "proc_unreadable", 1);
        return n;
    }
    if (per_event == 0) per_event = EDR__INVENTORY_PER_EVENT;
    qsort(v, (size_t)n, sizeof(*v), by_pid); /* parents are looked up by pid */
    const uint8_t *host = edr_emit_host_id(em), *boot = edr_emit_boot_id(em);
    int rc = 0, events = 0;
    for (size_t i = 0; i < (size_t)n && rc == 0; i += per_event) {
        size_t k = (size_t)n - i < per_event ? (size_t)n - i : per_event;
        Edr__V1__Event *e = edr_emit_begin(em, now_utc_ns);
        edr_arena_t *a = edr_emit_arena(em);
        Edr__V1__ProcessInventory *x = e ? edr_arena_alloc(a, sizeof(*x)) : NULL;
        Edr__V1__ProcessInventory__Entry **l = x ? edr_arena_alloc(a, k * sizeof(*l)) : NULL;
        uint8_t *ids = l ? edr_arena_alloc(a, k * 2 * EDR_ID_LEN) : NULL;
        Edr__V1__ProcessInventory__Entry *en = ids ? edr_arena_alloc(a, k * sizeof(*en)) : NULL;
        if (!en) { /* the event begun is left unended: it is not shipped */
            if (e) edr__drops_add(em->drops, "inventory", "nomem", 1);
            rc = EDR_ENOMEM;
            break;
        }
        edr__v1__process_inventory__init(x);
        for (size_t j = 0; j < k; j++) {
            const edr_proc_stat_t *p = &v[i + j];
            uint8_t *id = ids + j * 2 * EDR_ID_LEN, *pid = id + EDR_ID_LEN;
            edr__v1__process_inventory__entry__init(&en[j]);
            edr_entity_id(host, boot, p->pid, edr_proc_start_key(p->start_ns), id);
            en[j].entity_id.data = id;
            en[j].entity_id.len = EDR_ID_LEN;
            edr_proc_stat_t key = {.pid = p->ppid};
            const edr_proc_stat_t *pp =
                p->ppid ? bsearch(&key, v, (size_t)n, sizeof(*v), by_pid) : NULL;
            if (pp) {
                edr_entity_id(host, boot, pp->pid, edr_proc_start_key(pp->start_ns), pid);
                en[j].parent_entity_id.data = pid;
                en[j].parent_entity_id.len = EDR_ID_LEN;
            }
            l[j] = &en[j];
        }
        x->processes = l;
        x->n_processes = k;
        e->body_case = EDR__V1__EVENT__BODY_PROCESS_INVENTORY;
        e->process_inventory = x;
        edr_emit_end(em, e);
        events++;
    }
    free(v);
    if (rc == 0) edr_log_debug("inventory: %d processes running, in %d events", n, events);
    return rc ? rc : n;
}
