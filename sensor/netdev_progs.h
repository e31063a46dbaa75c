/* BPF programs on network interfaces as netlink (rtnetlink) lists them: XDP
 * programs (`ip link set dev X xdp`, libbpf's bpf_xdp_attach) and tc
 * classifiers (`tc filter add ... bpf`, libbpf's bpf_tc_attach; loaded or
 * classic), which are
 * set without a bpf() attach call or a BPF link. The interfaces are those of
 * the calling thread's network namespace. */
#ifndef EDR_NETDEV_PROGS_H
#define EDR_NETDEV_PROGS_H

#include <stddef.h>
#include <stdint.h>

/* bpf_attach_type values the programs are listed with (linux/bpf.h) */
#define EDR_NETDEV_XDP        37 /* BPF_XDP */
#define EDR_NETDEV_TC_INGRESS 46 /* BPF_TCX_INGRESS: the direction of a tc filter */
#define EDR_NETDEV_TC_EGRESS  47 /* BPF_TCX_EGRESS */

typedef struct {
    int ifindex;
    char ifname[16];
    uint32_t prog_id;     /* 0: a classic (cBPF) classifier, told by classic */
    uint32_t attach_type; /* EDR_NETDEV_* */
    uint32_t tc_handle;   /* tc: the filter's handle and priority (its place on the hook) */
    uint32_t tc_prio;
    uint32_t tc_parent; /* tc: the qdisc or class it hangs from (TC_H_*) */
    uint32_t tc_chain;
    int tc_hook;      /* tc: 1 on a clsact or ingress qdisc's hook, 0 under another qdisc */
    uint64_t classic; /* a classic classifier: its instructions' SHA-256, 8 bytes (never 0) */
} edr_netdev_prog_t;

/* A part of the listing that could not be read: the filters of interface
 * ifindex under parent (a qdisc or class handle), or, parent 0, under any
 * of its classes (its class dump failed). */
typedef struct {
    int ifindex;
    uint32_t parent;
} edr_netdev_part_t;

/* 1 when parent (TC_H_*) is a class's handle: neither a qdisc's (minor 0)
 * nor an ingress or clsact hook's (ffff:fff1, ffff:fff2, ffff:fff3; a
 * classful qdisc may have the handle ffff: too, and its classes ffff:N,
 * review-1206c L1). */
static inline int edr_netdev_class_parent(uint32_t parent)
{
    return (parent & 0xffffu) != 0 && (parent < 0xfffffff1u || parent > 0xfffffff3u);
}

/* Every XDP program and tc BPF classifier of this namespace's interfaces
 * into *v (malloc'd, *n of them; the caller frees): one link dump, one qdisc
 * dump, and a filter dump per hook of a clsact or ingress qdisc, per other
 * qdisc with a handle of its own (one set up by hand: the kernel's default
 * qdiscs have none) but of a kind known to hold no filters, and per class
 * that can hold filters (htb, hfsc, cbq, atm; at most EDR_NETDEV_MAX_CLASSES
 * an interface, a class dump each). Each read waits timeout_ms at most.
 * Only the kernel's replies to these requests are read. Returns -1 when
 * the listing is not whole anywhere (the link or qdisc dump failed, a dump
 * timed out, which ends the scan, out of memory); else 0, or
 * EDR_NETDEV_CUT when classes past the limit were left out and
 * EDR_NETDEV_UNREAD when a class or filter dump could not be read whole
 * (failed, interrupted by a change, a message too large; the other hooks
 * are still read). *v then lists what was read, and *unread (malloc'd,
 * *n_unread of them) the parts that were not: what *v does not list there
 * may still be attached (review-1206b M1: a cut anywhere made the whole
 * listing partial). */
#define EDR_NETDEV_MAX_CLASSES 64
#define EDR_NETDEV_CUT         1
#define EDR_NETDEV_UNREAD      2
int edr_netdev_progs(edr_netdev_prog_t **v, size_t *n, edr_netdev_part_t **unread, size_t *n_unread,
                     int timeout_ms);

#endif
