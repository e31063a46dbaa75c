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

/* Every XDP program and tc BPF classifier of this namespace's interfaces
 * into *v (malloc'd, *n of them; the caller frees): one link dump, one qdisc
 * dump, and a filter dump per hook of a clsact or ingress qdisc, per other
 * qdisc with a handle of its own (one set up by hand: the kernel's default
 * qdiscs have none) but of a kind known to hold no filters, and per class
 * that can hold filters (htb, hfsc, cbq; at most EDR_NETDEV_MAX_CLASSES an
 * interface, a class dump each). Each read waits timeout_ms at most. Only
 * the kernel's replies to these requests are read. Returns 0; 1 when all
 * was read but classes past the limit were left out; -1 when a dump could
 * not be read whole (failed, interrupted by a change, truncated, out of
 * memory: the other hooks are still read; timed out: the scan stops there).
 * *v then lists what was read. */
#define EDR_NETDEV_MAX_CLASSES 64
int edr_netdev_progs(edr_netdev_prog_t **v, size_t *n, int timeout_ms);

#endif
