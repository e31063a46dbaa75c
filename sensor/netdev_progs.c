/* BPF programs on network interfaces, from rtnetlink dumps (netdev_progs.h). */
#include "netdev_progs.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* What the dumps gather: the programs, and the qdiscs whose hooks the
 * filter dumps then read (ifindex, and the hooks' parents). */
typedef struct {
    edr_netdev_prog_t *v;
    size_t n, cap;
    int oom;
    struct {
        int ifindex;
        uint32_t parent;
        uint32_t attach_type;
        int hook; /* a clsact or ingress qdisc's */
    } * hooks;    /* the filter dumps to make */
    size_t n_hooks, cap_hooks;
    struct {
        int ifindex;
        uint32_t major; /* the qdisc's handle */
    } * classful;       /* qdiscs whose classes hold filters (htb, hfsc, cbq, atm) */
    size_t n_classful, cap_classful;
    int *ifs_classful; /* their interfaces, once each: a class dump each */
    size_t n_ifs, cap_ifs;
    size_t n_classes; /* listed of the class dump under way */
    int cut;          /* classes past the limit left out */
    edr_netdev_part_t *unread; /* the parts not read (netdev_progs.h) */
    size_t n_unread, cap_unread;
    struct {
        int ifindex;
        char name[16];
    } * names; /* every interface's */
    size_t n_names, cap_names;
    int ifindex; /* of the filter or class dump under way */
    uint32_t attach_type, parent;
    int hook;
} edr__nl_t;

/* Element n of the array *v (elem bytes each, room for *cap, grown by
 * doubling), zeroed; NULL when out of memory (c->oom set) */
static void *edr__nl_slot(edr__nl_t *c, void **v, size_t elem, size_t *cap, size_t n)
{
    if (n == *cap) {
        size_t want = *cap ? 2 * *cap : 16;
        void *nv = realloc(*v, want * elem);
        if (!nv) {
            c->oom = 1;
            return NULL;
        }
        *v = nv;
        *cap = want;
    }
    return memset((char *)*v + n * elem, 0, elem);
}

static edr_netdev_prog_t *edr__nl_add(edr__nl_t *c)
{
    edr_netdev_prog_t *p = edr__nl_slot(c, (void **)&c->v, sizeof(*c->v), &c->cap, c->n);
    if (p) c->n++;
    return p;
}

/* One dump: the request (type, family header hdr of hdr_len bytes, then
 * the attributes at attrs) sent, each reply message of it handed to on_msg.
 * 0 when it ended well; -2 when it timed out; -1 when it was interrupted by
 * a change (NLM_F_DUMP_INTR), truncated, or ended with an error (the kernel
 * may still be sending the rest of it: the caller then takes a new socket,
 * as the old one refuses another dump until that ends, review-1206b L5). */
static int edr__nl_dump(int fd, uint16_t type, const void *hdr, size_t hdr_len, const void *attrs,
                        size_t attrs_len, void (*on_msg)(edr__nl_t *, struct nlmsghdr *),
                        edr__nl_t *c)
{
    static uint32_t seq;
    static char buf[32768] __attribute__((aligned(4)));
    char req[256] __attribute__((aligned(4)));
    struct nlmsghdr *nh = (struct nlmsghdr *)req;
    size_t len = NLMSG_LENGTH(hdr_len) + attrs_len;
    if (len > sizeof(req)) return -1;
    memset(req, 0, sizeof(req));
    nh->nlmsg_len = (uint32_t)len;
    nh->nlmsg_type = type;
    nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nh->nlmsg_seq = ++seq;
    memcpy(NLMSG_DATA(nh), hdr, hdr_len);
    if (attrs_len) memcpy((char *)NLMSG_DATA(nh) + NLMSG_ALIGN(hdr_len), attrs, attrs_len);
    if (send(fd, req, len, 0) != (ssize_t)len) return -1;
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr mh = {
            .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t got = recvmsg(fd, &mh, 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
        if (got <= 0 || (mh.msg_flags & MSG_TRUNC)) return -1;
        if (mh.msg_namelen < sizeof(from) || from.nl_pid != 0) continue; /* not the kernel's */
        int left = (int)got;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != nh->nlmsg_seq) continue;     /* of another request */
            if (h->nlmsg_flags & NLM_F_DUMP_INTR) return -1; /* the list changed meanwhile */
            if (h->nlmsg_type == NLMSG_ERROR) return -1;
            if (h->nlmsg_type == NLMSG_DONE) {
                int err = 0; /* a dump that failed says so here */
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(err)))
                    memcpy(&err, NLMSG_DATA(h), sizeof(err));
                return err == 0 ? 0 : -1;
            }
            on_msg(c, h);
        }
    }
}

/* A part not read: interface ifindex's filters under parent (0: under any
 * of its classes). */
static void edr__nl_unread(edr__nl_t *c, int ifindex, uint32_t parent)
{
    if (!edr__nl_slot(c, (void **)&c->unread, sizeof(*c->unread), &c->cap_unread, c->n_unread))
        return;
    c->unread[c->n_unread].ifindex = ifindex;
    c->unread[c->n_unread++].parent = parent;
}

/* RTM_NEWLINK: the interface's XDP programs (single or per mode) */
static void edr__on_link(edr__nl_t *c, struct nlmsghdr *h)
{
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
        return;
    struct ifinfomsg *ifm = NLMSG_DATA(h);
    struct rtattr *a = IFLA_RTA(ifm);
    int len = (int)IFLA_PAYLOAD(h), k = 0;
    const char *name = "";
    uint32_t ids[4] = {0};
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME && RTA_PAYLOAD(a) > 0) {
            ((char *)RTA_DATA(a))[RTA_PAYLOAD(a) - 1] = 0;
            name = RTA_DATA(a);
            if (!edr__nl_slot(c, (void **)&c->names, sizeof(*c->names), &c->cap_names, c->n_names))
                continue;
            c->names[c->n_names].ifindex = ifm->ifi_index;
            strncpy(c->names[c->n_names++].name, name, sizeof(c->names[0].name) - 1);
        } else if (a->rta_type == IFLA_XDP) {
            struct rtattr *x = RTA_DATA(a);
            int xl = (int)RTA_PAYLOAD(a);
            for (; RTA_OK(x, xl) && k < 4; x = RTA_NEXT(x, xl))
                if ((x->rta_type == IFLA_XDP_PROG_ID || x->rta_type == IFLA_XDP_DRV_PROG_ID ||
                     x->rta_type == IFLA_XDP_SKB_PROG_ID || x->rta_type == IFLA_XDP_HW_PROG_ID) &&
                    RTA_PAYLOAD(x) >= 4)
                    memcpy(&ids[k++], RTA_DATA(x), 4);
        }
    }
    for (int i = 0; i < k; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= ids[j] == ids[i];
        edr_netdev_prog_t *p = ids[i] && !dup ? edr__nl_add(c) : NULL;
        if (!p) continue;
        p->ifindex = ifm->ifi_index;
        strncpy(p->ifname, name, sizeof(p->ifname) - 1);
        p->prog_id = ids[i];
        p->attach_type = EDR_NETDEV_XDP;
    }
}

/* A filter dump to make: of interface ifindex, under parent. */
static void edr__nl_hook(edr__nl_t *c, int ifindex, uint32_t parent, uint32_t attach_type, int hook)
{
    if (!edr__nl_slot(c, (void **)&c->hooks, sizeof(*c->hooks), &c->cap_hooks, c->n_hooks)) return;
    c->hooks[c->n_hooks].ifindex = ifindex;
    c->hooks[c->n_hooks].parent = parent;
    c->hooks[c->n_hooks].attach_type = attach_type;
    c->hooks[c->n_hooks++].hook = hook;
}

/* Qdisc kinds that hold no filters of their own (the kernel's answer to a
 * filter dump of one is empty): not asked. A kind not named here is. */
static int edr__nl_filterless(const char *kind)
{
    static const char *const none[] = {
        "pfifo",  "bfifo", "pfifo_fast", "pfifo_head_drop", "noqueue", "mq",     "mqprio", "fq",
        "tbf",    "netem", "red",        "codel",           "pie",     "fq_pie", "hhf",    "plug",
        "taprio", "cbs",   "etf",        "skbprio",         "gred",    "teql",   "choke"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        if (!strcmp(kind, none[i])) return 1;
    return 0;
}

/* RTM_NEWQDISC: where tc classifiers go. A clsact qdisc has an ingress and
 * an egress hook, an ingress qdisc the ingress one; any other qdisc with a
 * handle of its own (set up by hand) may hold filters on egress, and the
 * classes of htb, hfsc, cbq and atm qdiscs may each hold their own */
static void edr__on_qdisc(edr__nl_t *c, struct nlmsghdr *h)
{
    if (h->nlmsg_type != RTM_NEWQDISC || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg))) return;
    struct tcmsg *t = NLMSG_DATA(h);
    struct rtattr *a = (struct rtattr *)((char *)t + NLMSG_ALIGN(sizeof(*t)));
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*t)));
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != TCA_KIND || RTA_PAYLOAD(a) == 0) continue;
        ((char *)RTA_DATA(a))[RTA_PAYLOAD(a) - 1] = 0;
        const char *kind = RTA_DATA(a);
        if (!strcmp(kind, "clsact")) {
            edr__nl_hook(c, t->tcm_ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
                         EDR_NETDEV_TC_INGRESS, 1);
            edr__nl_hook(c, t->tcm_ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS),
                         EDR_NETDEV_TC_EGRESS, 1);
        } else if (!strcmp(kind, "ingress")) {
            edr__nl_hook(c, t->tcm_ifindex, TC_H_INGRESS, EDR_NETDEV_TC_INGRESS, 1);
        } else if (TC_H_MAJ(t->tcm_handle) && !edr__nl_filterless(kind)) {
            edr__nl_hook(c, t->tcm_ifindex, TC_H_MAJ(t->tcm_handle), EDR_NETDEV_TC_EGRESS, 0);
            if (strcmp(kind, "htb") && strcmp(kind, "hfsc") && strcmp(kind, "cbq") &&
                strcmp(kind, "atm"))
                return;
            if (edr__nl_slot(c, (void **)&c->classful, sizeof(*c->classful), &c->cap_classful,
                             c->n_classful)) {
                c->classful[c->n_classful].ifindex = t->tcm_ifindex;
                c->classful[c->n_classful++].major = TC_H_MAJ(t->tcm_handle);
            }
            size_t i = 0;
            while (i < c->n_ifs && c->ifs_classful[i] != t->tcm_ifindex)
                i++;
            if (i == c->n_ifs && edr__nl_slot(c, (void **)&c->ifs_classful,
                                              sizeof(*c->ifs_classful), &c->cap_ifs, c->n_ifs))
                c->ifs_classful[c->n_ifs++] = t->tcm_ifindex;
        }
        return;
    }
}

/* RTM_NEWTCLASS: a class of an htb, hfsc, cbq or atm qdisc, which may hold
 * filters of its own (other qdiscs' classes cannot: not counted) */
static void edr__on_class(edr__nl_t *c, struct nlmsghdr *h)
{
    if (h->nlmsg_type != RTM_NEWTCLASS || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg))) return;
    struct tcmsg *t = NLMSG_DATA(h);
    size_t i = 0;
    while (i < c->n_classful && (c->classful[i].ifindex != t->tcm_ifindex ||
                                 c->classful[i].major != TC_H_MAJ(t->tcm_handle)))
        i++;
    if (i == c->n_classful || !TC_H_MIN(t->tcm_handle)) return;
    if (c->n_classes++ < EDR_NETDEV_MAX_CLASSES) {
        edr__nl_hook(c, t->tcm_ifindex, t->tcm_handle, EDR_NETDEV_TC_EGRESS, 0);
    } else { /* not looked at: what it held is not known gone; past 1,024
              * such classes, none of the interface's classes is */
        c->cut = 1;
        size_t past = c->n_classes - EDR_NETDEV_MAX_CLASSES;
        if (past <= 1024) edr__nl_unread(c, t->tcm_ifindex, past < 1024 ? t->tcm_handle : 0);
    }
}

/* RTM_NEWTFILTER: a "bpf" classifier's loaded program, or a classic one
 * (no program id: its instructions, digested; SHA-256, which its author
 * cannot make collide with another's) */
static void edr__on_filter(edr__nl_t *c, struct nlmsghdr *h)
{
    if (h->nlmsg_type != RTM_NEWTFILTER || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
        return;
    struct tcmsg *t = NLMSG_DATA(h);
    struct rtattr *a = (struct rtattr *)((char *)t + NLMSG_ALIGN(sizeof(*t)));
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*t))), bpf = 0;
    uint32_t id = 0, chain = 0;
    uint64_t classic = 0;
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == TCA_KIND && RTA_PAYLOAD(a) > 0) {
            ((char *)RTA_DATA(a))[RTA_PAYLOAD(a) - 1] = 0;
            bpf = !strcmp(RTA_DATA(a), "bpf");
        } else if (a->rta_type == TCA_CHAIN && RTA_PAYLOAD(a) >= 4) {
            memcpy(&chain, RTA_DATA(a), 4);
        } else if (a->rta_type == TCA_OPTIONS) {
            struct rtattr *o = RTA_DATA(a);
            int ol = (int)RTA_PAYLOAD(a);
            for (; RTA_OK(o, ol); o = RTA_NEXT(o, ol))
                if (o->rta_type == TCA_BPF_ID && RTA_PAYLOAD(o) >= 4) {
                    memcpy(&id, RTA_DATA(o), 4);
                } else if (o->rta_type == TCA_BPF_OPS && RTA_PAYLOAD(o) > 0) {
                    unsigned char md[EVP_MAX_MD_SIZE];
                    unsigned int ml = 0;
                    if (EVP_Digest(RTA_DATA(o), RTA_PAYLOAD(o), md, &ml, EVP_sha256(), NULL) &&
                        ml >= 8) {
                        memcpy(&classic, md, 8);
                        classic |= 1; /* never 0 */
                    } else {
                        c->oom = 1; /* not listed: the scan counts as failed */
                    }
                }
        }
    }
    edr_netdev_prog_t *p = bpf && (id || classic) ? edr__nl_add(c) : NULL;
    if (!p) return;
    p->ifindex = c->ifindex;
    p->prog_id = id;
    p->classic = id ? 0 : classic;
    p->attach_type = c->attach_type;
    p->tc_handle = t->tcm_handle;
    p->tc_prio = TC_H_MAJ(t->tcm_info) >> 16;
    p->tc_parent = c->parent;
    p->tc_chain = chain;
    p->tc_hook = c->hook;
}

/* A route netlink socket whose reads wait *tv at most, or -1. */
static int edr__nl_socket(const struct timeval *tv)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, sizeof(*tv)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int edr_netdev_progs(edr_netdev_prog_t **v, size_t *n, edr_netdev_part_t **unread, size_t *n_unread,
                     int timeout_ms)
{
    edr__nl_t c = {0};
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int rc = -1, failed = 0;
    int fd = edr__nl_socket(&tv);
    if (fd >= 0) {
        struct ifinfomsg ifm = {.ifi_family = AF_UNSPEC};
        struct {
            struct rtattr ext;
            uint32_t mask;
        } ext = {{RTA_LENGTH(sizeof(uint32_t)), IFLA_EXT_MASK}, 1u << 3};
        /* RTEXT_FILTER_SKIP_STATS: smaller messages */
        struct tcmsg tm = {.tcm_family = AF_UNSPEC};
        rc = edr__nl_dump(fd, RTM_GETLINK, &ifm, sizeof(ifm), &ext, sizeof(ext), edr__on_link, &c);
        if (rc == 0)
            rc = edr__nl_dump(fd, RTM_GETQDISC, &tm, sizeof(tm), NULL, 0, edr__on_qdisc, &c);
        /* a class or filter list that cannot be read (one filter too large
         * for a dump message, review-1206 M2) leaves the others read; a
         * dump that timed out (the kernel holds its network lock) ends the
         * scan, which runs in the sensor's loop */
        for (size_t i = 0; rc == 0 && i < c.n_ifs; i++) {
            tm.tcm_ifindex = c.ifs_classful[i];
            c.n_classes = 0;
            int r = edr__nl_dump(fd, RTM_GETTCLASS, &tm, sizeof(tm), NULL, 0, edr__on_class, &c);
            if (r == -2) rc = -1;
            if (r == -1 && (close(fd), fd = edr__nl_socket(&tv)) < 0) rc = -1;
            if (r == -1) edr__nl_unread(&c, tm.tcm_ifindex, 0);
            failed |= r == -1;
        }
        for (size_t i = 0; rc == 0 && i < c.n_hooks; i++) {
            tm.tcm_ifindex = c.ifindex = c.hooks[i].ifindex;
            tm.tcm_parent = c.parent = c.hooks[i].parent;
            c.attach_type = c.hooks[i].attach_type;
            c.hook = c.hooks[i].hook;
            int r = edr__nl_dump(fd, RTM_GETTFILTER, &tm, sizeof(tm), NULL, 0, edr__on_filter, &c);
            if (r == -2) rc = -1;
            if (r == -1 && (close(fd), fd = edr__nl_socket(&tv)) < 0) rc = -1;
            if (r == -1) edr__nl_unread(&c, c.ifindex, c.parent);
            failed |= r == -1;
        }
        for (size_t i = 0; i < c.n; i++) /* a tc filter's interface, named by the link dump */
            for (size_t j = 0; j < c.n_names && !c.v[i].ifname[0]; j++)
                if (c.names[j].ifindex == c.v[i].ifindex)
                    memcpy(c.v[i].ifname, c.names[j].name, sizeof(c.v[i].ifname));
    }
    if (fd >= 0) close(fd);
    free(c.hooks);
    free(c.classful);
    free(c.ifs_classful);
    free(c.names);
    *v = c.v;
    *n = c.n;
    *unread = c.unread;
    *n_unread = c.n_unread;
    if (rc != 0 || c.oom) return -1;
    return (c.cut ? EDR_NETDEV_CUT : 0) | (failed ? EDR_NETDEV_UNREAD : 0);
}
