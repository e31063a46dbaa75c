/* ECS JSON lines: render events for --output jsonl and read them back for replay. */
#include "jsonl_int.h"

#include "edr/err.h"
#include "edr/event.h"
#include "edr/text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- time ---------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

char *edr_jsonl_time_format(uint64_t ns, char out[32])
{
    uint64_t secs = ns / 1000000000ull;
    int64_t days = (int64_t)(secs / 86400);
    unsigned sod = (unsigned)(secs % 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%04d-%02u-%02uT%02u:%02u:%02u.%09uZ", (int)y, m, d, sod / 3600,
             sod / 60 % 60, sod % 60, (unsigned)(ns % 1000000000ull));
    memcpy(out, tmp, 31);
    out[31] = 0;
    return out;
}

static int digits(const char *s, size_t len, size_t *i, size_t n, unsigned *v)
{
    unsigned x = 0;
    for (size_t k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
        x = x * 10 + (unsigned)(s[(*i)++] - '0');
    }
    *v = x;
    return 0;
}

int edr_jsonl_time_parse(const char *s, size_t len, uint64_t *ns)
{
    size_t i = 0;
    unsigned y, mo, d, h, mi, se, frac = 0;
    if (digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || digits(s, len, &i, 2, &mo) ||
        i >= len || s[i++] != '-' || digits(s, len, &i, 2, &d) || i >= len ||
        (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return EDR_EINVAL;
    i++;
    if (digits(s, len, &i, 2, &h) || i >= len || s[i++] != ':' || digits(s, len, &i, 2, &mi) ||
        i >= len || s[i++] != ':' || digits(s, len, &i, 2, &se))
        return EDR_EINVAL;
    /* a day the month does not have (2022-02-30, 2022-04-31) is refused, not
     * moved into the next month */
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        se > 60)
        return EDR_EINVAL;
    if (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400)))
        return EDR_EINVAL;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        i++;
        size_t nd = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nd < 9) frac = frac * 10 + (unsigned)(s[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0) return EDR_EINVAL;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int64_t off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int neg = s[i++] == '-';
        unsigned oh, om;
        if (digits(s, len, &i, 2, &oh)) return EDR_EINVAL;
        if (i < len && s[i] == ':') i++;
        if (digits(s, len, &i, 2, &om) || oh > 23 || om > 59) return EDR_EINVAL;
        off = (int64_t)(oh * 3600 + om * 60) * (neg ? -1 : 1);
    }
    if (i != len) return EDR_EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (secs < 0 || (uint64_t)secs > UINT64_MAX / 1000000000ull - 1) return EDR_EINVAL;
    *ns = (uint64_t)secs * 1000000000ull + frac;
    return 0;
}

/* ---- enum names ------------------------------------------------------------ */

/* The errnos a connect fails with, by name (ECS error.code); glibc's
 * strerrorname_np is not everywhere. */
static const struct {
    uint32_t no;
    const char *name;
} connect_errnos[] = {
    {EPERM, "EPERM"},           {EACCES, "EACCES"},         {EINTR, "EINTR"},
    {EADDRINUSE, "EADDRINUSE"}, {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
    {ENETDOWN, "ENETDOWN"},     {ENETUNREACH, "ENETUNREACH"}, {ECONNABORTED, "ECONNABORTED"},
    {ECONNRESET, "ECONNRESET"}, {ENOBUFS, "ENOBUFS"},       {ETIMEDOUT, "ETIMEDOUT"},
    {ECONNREFUSED, "ECONNREFUSED"}, {EHOSTDOWN, "EHOSTDOWN"}, {EHOSTUNREACH, "EHOSTUNREACH"},
    {EINPROGRESS, "EINPROGRESS"}, {EPROTO, "EPROTO"},       {ENOMEM, "ENOMEM"},
};

static const char *connect_errno_name(uint32_t no)
{
    for (size_t i = 0; i < sizeof(connect_errnos) / sizeof(connect_errnos[0]); i++)
        if (connect_errnos[i].no == no) return connect_errnos[i].name;
    return NULL;
}

/* EIO for a failure whose error is not named, or named otherwise */
static uint32_t connect_errno_value(const char *name)
{
    for (size_t i = 0; name && i < sizeof(connect_errnos) / sizeof(connect_errnos[0]); i++)
        if (!strcmp(connect_errnos[i].name, name)) return connect_errnos[i].no;
    return EIO;
}

static const char *const access_kinds[] = {"", "ptrace_attach", "vm_read", "vm_write",
                                           "open_process", "pidfd_getfd"};
static const char *const attr_kinds[] = {"", "chmod", "chown"};
static const char *const net_actions[] = {"", "connect", "accept", "listen", "close", "send"};

/* enum bpf_prog_type of the kernel's UAPI (linux/bpf.h), by value */
static const char *const bpf_prog_types[] = {
    "unspec",         "socket_filter", "kprobe",           "sched_cls",
    "sched_act",      "tracepoint",    "xdp",              "perf_event",
    "cgroup_skb",     "cgroup_sock",   "lwt_in",           "lwt_out",
    "lwt_xmit",       "sock_ops",      "sk_skb",           "cgroup_device",
    "sk_msg",         "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local",
    "lirc_mode2",     "sk_reuseport",  "flow_dissector",   "cgroup_sysctl",
    "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops",
    "ext",            "lsm",           "sk_lookup",        "syscall",
    "netfilter"};

/* enum bpf_link_type, by value */
static const char *const bpf_link_types[] = {
    "unspec",       "raw_tracepoint", "tracing",      "cgroup",     "iter",      "netns",
    "xdp",          "perf_event",     "kprobe_multi", "struct_ops", "netfilter", "tcx",
    "uprobe_multi", "netkit",         "sockmap"};

static const char *enum_name(const char *const *names, size_t n, unsigned v)
{
    return v < n ? names[v] : "";
}

static int enum_value(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 1; s && i < n; i++)
        if (strcmp(names[i], s) == 0) return (int)i;
    return 0;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- writer ---------------------------------------------------------------- */

/* Valid UTF-8 is kept; anything else becomes U+FFFD (JSON text must be UTF-8). */
static json_t *jstr(const char *s)
{
    size_t n = strlen(s);
    json_t *res = json_stringn(s, n);
    if (res) return res;
    char *t = malloc(n * 3 + 1);
    if (!t) return NULL;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = edr_utf8_next(u + i, n - i, &cp);
        if (k) {
            memcpy(t + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(t + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    res = json_stringn(t, o);
    free(t);
    return res;
}

static json_t *jhex(const uint8_t *p, size_t n)
{
    char buf[2 * 64 + 1];
    if (n > 64) n = 64;
    return json_string(edr_hex(p, n, buf));
}

static json_t *ju64(uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return json_string(buf);
    }
    return json_integer((json_int_t)v);
}

static json_t *jtime(uint64_t ns)
{
    char buf[32];
    return json_string(edr_jsonl_time_format(ns, buf));
}

/* Sets root[a][b][c] = v for the dotted path "a.b.c"; consumes v. 0 or -1. */
static int put(json_t *root, const char *path, json_t *v)
{
    if (!v) return -1;
    json_t *o = root;
    const char *dot;
    char key[64];
    while ((dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        if (n >= sizeof(key)) goto fail;
        memcpy(key, path, n);
        key[n] = 0;
        json_t *sub = json_object_get(o, key);
        if (!sub) {
            sub = json_object();
            if (!sub || json_object_set_new(o, key, sub)) goto fail;
        } else if (!json_is_object(sub)) {
            goto fail;
        }
        o = sub;
        path = dot + 1;
    }
    return json_object_set_new(o, path, v);
fail:
    json_decref(v);
    return -1;
}

/* root's edr.raw object (flat keys: the paths of the fields it stands for),
 * made when missing; NULL out of memory. */
static json_t *get_obj(json_t *root)
{
    json_t *edr = json_object_get(root, "edr"), *raw;
    if (!edr) {
        if (put(root, "edr.raw", json_object())) return NULL;
        edr = json_object_get(root, "edr");
    }
    raw = json_object_get(edr, "raw");
    if (!raw && (raw = json_object()) != NULL && json_object_set_new(edr, "raw", raw)) return NULL;
    return json_is_object(raw) ? raw : NULL;
}

/* edr.raw[key] = the bytes of s in hex, for a string that is not valid
 * UTF-8 (see put_str). 0 or -1. */
static int put_raw(json_t *root, const char *key, const char *s)
{
    json_t *raw = get_obj(root);
    size_t n = strlen(s);
    char *h = raw ? malloc(2 * n + 1) : NULL;
    int rc = h ? json_object_set_new(raw, key, json_string(edr_hex((const uint8_t *)s, n, h))) : -1;
    free(h);
    return rc;
}

/* Sets path to s. A string that is not valid UTF-8 (a file name, argument or
 * directory is any bytes but NUL) gets U+FFFD for each invalid byte, since
 * JSON text must be UTF-8, and its exact bytes in hex under edr.raw, keyed
 * by path, which the reader takes instead: two names differing only in such
 * bytes stay two, and the real one can be recovered (review-1206k-sensor L1). */
static int put_str(json_t *root, const char *path, const char *s)
{
    if (!s || !*s) return 0;
    json_t *v = json_string(s);
    if (v) return put(root, path, v);
    return put(root, path, jstr(s)) | put_raw(root, path, s);
}

/* An enum field as its name (left out for a value the table does not know)
 * and its number. */
static int put_enum(json_t *root, const char *name_path, const char *id_path,
                    const char *const *names, size_t n, unsigned v)
{
    return put_str(root, name_path, enum_name(names, n, v)) | put(root, id_path, json_integer(v));
}

static int put_bytes_hex(json_t *root, const char *path, ProtobufCBinaryData d)
{
    return d.len ? put(root, path, jhex(d.data, d.len)) : 0;
}

static int put_ip(json_t *root, const char *ip_path, const char *port_path,
                  const Edr__V1__Endpoint *ep)
{
    if (!ep) return 0;
    int rc = 0;
    char buf[INET6_ADDRSTRLEN];
    if (ep->ip.len == 4 || ep->ip.len == 16) {
        if (inet_ntop(ep->ip.len == 4 ? AF_INET : AF_INET6, ep->ip.data, buf, sizeof(buf)))
            rc |= put(root, ip_path, json_string(buf));
    }
    if (ep->port) rc |= put(root, port_path, json_integer(ep->port));
    return rc;
}

static json_t *build(const Edr__V1__EventBatch *b, const Edr__V1__Event *e)
{
    json_t *r = json_object();
    if (!r) return NULL;
    int rc = 0;
    char buf[64];
    rc |= put(r, "@timestamp", jtime(edr_event_time(b, e)));
    rc |= put(r, "event.action", json_string(edr_event_kind_name(e->body_case)));
    if (e->unconfirmed) rc |= put(r, "event.outcome", json_string("unknown"));
    if (b->sensor) {
        rc |= put_bytes_hex(r, "host.id", b->sensor->host_id);
        rc |= put_str(r, "host.name", b->sensor->hostname);
    }
    rc |= put_bytes_hex(r, "process.entity_id", e->entity_id);
    if (e->pid) rc |= put(r, "process.pid", json_integer(e->pid));
    if (e->tid) rc |= put(r, "process.thread.id", json_integer(e->tid));
    rc |= put_bytes_hex(r, "process.parent.entity_id", e->parent_entity_id);
    if (e->body_case != EDR__V1__EVENT__BODY_PROCESS_START)
        rc |= put_str(r, "process.executable", e->exe); /* a start writes its own */

    switch (e->body_case) {
    case EDR__V1__EVENT__BODY_PROCESS_START: {
        const Edr__V1__ProcessStart *s = e->process_start;
        rc |= put_str(r, "process.executable", s->exe);
        if (s->n_argv) {
            json_t *args = json_array();
            for (size_t i = 0; args && i < s->n_argv; i++) {
                const char *v = s->argv[i] ? s->argv[i] : "";
                json_t *jv = json_string(v);
                if (!jv) { /* as put_str does, keyed by the element's index */
                    char key[40];
                    snprintf(key, sizeof(key), "process.args.%zu", i);
                    jv = jstr(v);
                    rc |= put_raw(r, key, v);
                }
                json_array_append_new(args, jv);
            }
            rc |= put(r, "process.args", args);
        }
        if (s->command_line && *s->command_line) {
            rc |= put_str(r, "process.command_line", s->command_line);
        } else if (s->n_argv) {
            /* ECS consumers want a command line: the joined argv (dropped again on read) */
            size_t n = 1;
            for (size_t i = 0; i < s->n_argv; i++)
                n += strlen(s->argv[i] ? s->argv[i] : "") + 1;
            char *cl = malloc(n);
            if (cl) {
                size_t o = 0;
                for (size_t i = 0; i < s->n_argv; i++) {
                    const char *a = s->argv[i] ? s->argv[i] : "";
                    if (i) cl[o++] = ' ';
                    memcpy(cl + o, a, strlen(a));
                    o += strlen(a);
                }
                cl[o] = 0;
                rc |= put(r, "process.command_line", jstr(cl));
                free(cl);
            }
        }
        rc |= put_str(r, "process.working_directory", s->cwd);
        if (s->uid) {
            snprintf(buf, sizeof(buf), "%u", s->uid);
            rc |= put(r, "user.id", json_string(buf));
        }
        if (s->gid) {
            snprintf(buf, sizeof(buf), "%u", s->gid);
            rc |= put(r, "group.id", json_string(buf));
        }
        rc |= put_str(r, "user.name", s->user);
        rc |= put_str(r, "group.name", s->group);
        rc |= put_bytes_hex(r, "process.hash.sha256", s->exe_sha256);
        if (s->cgroup_id) rc |= put(r, "edr.process.cgroup_id", ju64(s->cgroup_id));
        rc |= put_str(r, "container.id", s->container_id);
        if (s->ppid) rc |= put(r, "process.parent.pid", json_integer(s->ppid));
        rc |= put_str(r, "process.parent.executable", s->parent_exe);
        if (s->seeded) rc |= put(r, "edr.process.seeded", json_true());
        if (s->argv_truncated) rc |= put(r, "edr.process.args_truncated", json_true());
        if (s->effective_ids) {
            snprintf(buf, sizeof(buf), "%u", s->euid);
            rc |= put(r, "user.effective.id", json_string(buf));
            snprintf(buf, sizeof(buf), "%u", s->egid);
            rc |= put(r, "group.effective.id", json_string(buf));
            rc |= put_str(r, "user.effective.name", s->effective_user);
        }
        if (s->start_time_ns) rc |= put(r, "process.start", jtime(s->start_time_ns));
        break;
    }
    case EDR__V1__EVENT__BODY_PROCESS_FORK:
        if (e->process_fork->ppid)
            rc |= put(r, "process.parent.pid", json_integer(e->process_fork->ppid));
        if (e->process_fork->start_time_ns)
            rc |= put(r, "process.start", jtime(e->process_fork->start_time_ns));
        break;
    case EDR__V1__EVENT__BODY_PROCESS_EXIT:
        if (e->process_exit->status_unknown) /* not said: left out, not 0 */
            break;
        rc |= put(r, "process.exit_code", json_integer(e->process_exit->exit_code));
        if (e->process_exit->signal)
            rc |= put(r, "edr.process.signal", json_integer(e->process_exit->signal));
        break;
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS: {
        const Edr__V1__ProcessAccess *pa = e->process_access;
        rc |= put_str(r, "edr.process_access.kind",
                      enum_name(access_kinds, NELEM(access_kinds), pa->kind));
        rc |= put(r, "edr.process_access.access_mask", json_integer(pa->access_mask));
        rc |= put_bytes_hex(r, "edr.process_access.target.entity_id", pa->target_entity_id);
        if (pa->target_pid)
            rc |= put(r, "edr.process_access.target.pid", json_integer(pa->target_pid));
        rc |= put_str(r, "edr.process_access.target.executable", pa->target_exe);
        break;
    }
    case EDR__V1__EVENT__BODY_FILE_CREATE:
        rc |= put_str(r, "file.path", e->file_create->path);
        if (e->file_create->mode) {
            snprintf(buf, sizeof(buf), "%04o", e->file_create->mode);
            rc |= put(r, "file.mode", json_string(buf));
        }
        rc |= put_str(r, "file.target_path", e->file_create->link_target);
        break;
    case EDR__V1__EVENT__BODY_FILE_WRITE:
        rc |= put_str(r, "file.path", e->file_write->path);
        if (e->file_write->bytes) rc |= put(r, "edr.file.write_bytes", ju64(e->file_write->bytes));
        break;
    case EDR__V1__EVENT__BODY_FILE_RENAME:
        rc |= put_str(r, "file.path", e->file_rename->new_path);
        rc |= put_str(r, "edr.file.old_path", e->file_rename->old_path);
        break;
    case EDR__V1__EVENT__BODY_FILE_DELETE:
        rc |= put_str(r, "file.path", e->file_delete->path);
        break;
    case EDR__V1__EVENT__BODY_FILE_ATTR: {
        const Edr__V1__FileAttr *fa = e->file_attr;
        rc |= put_str(r, "file.path", fa->path);
        rc |= put_str(r, "edr.file.attr_kind", enum_name(attr_kinds, NELEM(attr_kinds), fa->kind));
        if (fa->mode) {
            snprintf(buf, sizeof(buf), "%04o", fa->mode);
            rc |= put(r, "file.mode", json_string(buf));
        }
        /* a chown's ids are always set: 0 is root, 2^32-1 (-1) unchanged
         * (review-fidelity 16: -1 was printed as an id, a chown to root
         * showed no owner); other kinds: 0 is unknown */
        int chown = fa->kind == EDR__V1__FILE_ATTR__KIND__CHOWN;
        if (chown ? fa->uid != UINT32_MAX : fa->uid != 0) {
            snprintf(buf, sizeof(buf), "%u", fa->uid);
            rc |= put(r, "file.uid", json_string(buf));
        }
        if (chown ? fa->gid != UINT32_MAX : fa->gid != 0) {
            snprintf(buf, sizeof(buf), "%u", fa->gid);
            rc |= put(r, "file.gid", json_string(buf));
        }
        break;
    }
    case EDR__V1__EVENT__BODY_FILE_EXEC:
        rc |= put_str(r, "file.path", e->file_exec->path);
        rc |= put(r, "edr.file.mapped", json_boolean(e->file_exec->mapped));
        rc |= put_bytes_hex(r, "file.hash.sha256", e->file_exec->sha256);
        if (e->file_exec->anonymous) {
            const Edr__V1__FileExec *x = e->file_exec;
            rc |= put(r, "edr.memory.anonymous", json_true());
            rc |= put(r, "edr.memory.address", ju64(x->address));
            rc |= put(r, "edr.memory.length", ju64(x->length));
            rc |= put_str(r, "edr.memory.by", edr_memory_by_name(x->by));
        }
        if (e->file_exec->prot) {
            char prot[4];
            rc |= put(r, "edr.memory.protection",
                      json_string(edr_prot_name(e->file_exec->prot, prot)));
        }
        if (e->file_exec->modified) rc |= put(r, "edr.memory.modified", json_true());
        break;
    case EDR__V1__EVENT__BODY_NETWORK: {
        const Edr__V1__Network *n = e->network;
        rc |=
            put_str(r, "edr.network.action", enum_name(net_actions, NELEM(net_actions), n->action));
        if (n->protocol == EDR__V1__NETWORK__PROTOCOL__TCP)
            rc |= put(r, "network.transport", json_string("tcp"));
        else if (n->protocol == EDR__V1__NETWORK__PROTOCOL__UDP)
            rc |= put(r, "network.transport", json_string("udp"));
        if (n->protocol) {
            snprintf(buf, sizeof(buf), "%d", (int)n->protocol);
            rc |= put(r, "network.iana_number", json_string(buf));
        }
        int inbound = n->direction == EDR__V1__NETWORK__DIRECTION__INBOUND;
        if (n->direction == EDR__V1__NETWORK__DIRECTION__OUTBOUND)
            rc |= put(r, "network.direction", json_string("outbound"));
        else if (inbound)
            rc |= put(r, "network.direction", json_string("inbound"));
        /* ECS source is the side that initiated: the peer for inbound connections */
        rc |= put_ip(r, "source.ip", "source.port", inbound ? n->remote : n->local);
        rc |= put_ip(r, "destination.ip", "destination.port", inbound ? n->local : n->remote);
        if (n->netns) rc |= put(r, "edr.network.netns", json_integer(n->netns));
        if (n->action == EDR__V1__NETWORK__ACTION__CONNECT) {
            /* ECS event.outcome, error.code (the errno's name) */
            rc |= put(r, "event.outcome", json_string(!n->error                ? "success"
                                                      : n->error == EINPROGRESS ? "unknown"
                                                                                : "failure"));
            if (n->error) {
                const char *name = connect_errno_name(n->error);
                if (!name) snprintf(buf, sizeof(buf), "errno %u", n->error);
                rc |= put(r, "error.code", json_string(name ? name : buf));
                rc |= put(r, "edr.network.errno", json_integer(n->error));
            }
        }
        break;
    }
    case EDR__V1__EVENT__BODY_DNS_QUERY: {
        const Edr__V1__DnsQuery *q = e->dns_query;
        rc |= put(r, "dns.type", json_string("query"));
        rc |= put_str(r, "dns.question.name", q->name);
        if (q->qtype) rc |= put(r, "edr.dns.qtype", json_integer(q->qtype));
        if (q->n_answers) {
            json_t *ans = json_array();
            for (size_t i = 0; ans && i < q->n_answers; i++) {
                json_t *o = json_object();
                json_object_set_new(o, "data", jstr(q->answers[i] ? q->answers[i] : ""));
                json_array_append_new(ans, o);
            }
            rc |= put(r, "dns.answers", ans);
        }
        rc |= put_ip(r, "destination.ip", "destination.port", q->server);
        break;
    }
    case EDR__V1__EVENT__BODY_BPF_LOAD: {
        const Edr__V1__BpfLoad *x = e->bpf_load;
        rc |= put_enum(r, "edr.bpf.program.type", "edr.bpf.program.type_id", bpf_prog_types,
                       NELEM(bpf_prog_types), x->prog_type);
        rc |= put_str(r, "edr.bpf.program.name", x->name);
        rc |= put_bytes_hex(r, "edr.bpf.program.tag", x->tag);
        if (x->prog_id) rc |= put(r, "edr.bpf.program.id", json_integer(x->prog_id));
        if (x->attach_type) rc |= put(r, "edr.bpf.program.attach_type", json_integer(x->attach_type));
        rc |= put_str(r, "edr.bpf.program.attach_to", x->attach_to);
        if (x->insn_count) rc |= put(r, "edr.bpf.program.insn_count", json_integer(x->insn_count));
        if (x->found) rc |= put(r, "edr.bpf.program.found", json_true());
        if (x->load_time_ns) rc |= put(r, "edr.bpf.program.load_time", jtime(x->load_time_ns));
        break;
    }
    case EDR__V1__EVENT__BODY_BPF_ATTACH:
    case EDR__V1__EVENT__BODY_BPF_DETACH: { /* one message type for both */
        const Edr__V1__BpfAttach *x = edr_event_bpf_link(e);
        if (x->prog_id) rc |= put(r, "edr.bpf.program.id", json_integer(x->prog_id));
        rc |= put_str(r, "edr.bpf.program.name", x->prog_name);
        rc |= put_enum(r, "edr.bpf.program.type", "edr.bpf.program.type_id", bpf_prog_types,
                       NELEM(bpf_prog_types), x->prog_type);
        if (x->link_id) rc |= put(r, "edr.bpf.link.id", json_integer(x->link_id));
        if (x->link_type) /* none: attached without a link */
            rc |= put_enum(r, "edr.bpf.link.type", "edr.bpf.link.type_id", bpf_link_types,
                           NELEM(bpf_link_types), x->link_type);
        rc |= put(r, "edr.bpf.link.attach_type", json_integer(x->attach_type));
        rc |= put_str(r, "edr.bpf.link.target", x->target);
        if (x->target_id) rc |= put(r, "edr.bpf.link.target_id", ju64(x->target_id));
        if (x->found) rc |= put(r, "edr.bpf.link.found", json_true());
        if (x->unverified) rc |= put(r, "edr.bpf.link.unverified", json_true());
        if (x->socket_option)
            rc |= put(r, "edr.bpf.link.socket_option", json_integer(x->socket_option));
        break;
    }
    case EDR__V1__EVENT__BODY_PROCESS_INVENTORY: {
        const Edr__V1__ProcessInventory *x = e->process_inventory;
        json_t *l = json_array();
        for (size_t i = 0; l && i < x->n_processes; i++) {
            json_t *o = json_object();
            if (put_bytes_hex(o, "entity_id", x->processes[i]->entity_id) ||
                put_bytes_hex(o, "parent.entity_id", x->processes[i]->parent_entity_id) ||
                json_array_append_new(l, o))
                rc = -1;
        }
        rc |= put(r, "edr.inventory.processes", l);
        break;
    }
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH: {
        const Edr__V1__SensorHealth *h = e->sensor_health;
        rc |= put_str(r, "edr.sensor_health.fidelity", h->fidelity);
        if (h->n_drops) {
            json_t *a = json_array();
            for (size_t i = 0; a && i < h->n_drops; i++)
                json_array_append_new(
                    a, json_pack("{s:o,s:o,s:o}", "source", jstr(h->drops[i]->source), "reason",
                                 jstr(h->drops[i]->reason), "count", ju64(h->drops[i]->count)));
            rc |= put(r, "edr.sensor_health.drops", a);
        }
        if (h->n_queues) {
            json_t *a = json_array();
            for (size_t i = 0; a && i < h->n_queues; i++)
                json_array_append_new(a,
                                      json_pack("{s:o,s:o,s:o}", "name", jstr(h->queues[i]->name),
                                                "depth", ju64(h->queues[i]->depth), "capacity",
                                                ju64(h->queues[i]->capacity)));
            rc |= put(r, "edr.sensor_health.queues", a);
        }
        rc |= put(r, "edr.sensor_health.spool_bytes", ju64(h->spool_bytes));
        rc |= put(r, "edr.sensor_health.spool_frames", ju64(h->spool_frames));
        rc |= put(r, "edr.sensor_health.events_sent", ju64(h->events_sent));
        rc |= put(r, "edr.sensor_health.uptime_ns", ju64(h->uptime_ns));
        break;
    }
    default:
        break;
    }
    if (rc) {
        json_decref(r);
        return NULL;
    }
    return r;
}

int edr_jsonl_format_event(const Edr__V1__EventBatch *b, const Edr__V1__Event *e, char *buf,
                           size_t cap)
{
    json_t *r = build(b, e);
    if (!r) return EDR_ENOMEM;
    size_t n = json_dumpb(r, buf, cap, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(r);
    if (n == 0) return EDR_ENOMEM;
    if (n + 2 > cap || n > INT32_MAX) return EDR_ERANGE;
    buf[n] = '\n';
    buf[n + 1] = 0;
    return (int)n + 1;
}

int edr_jsonl_write_event(FILE *f, const Edr__V1__EventBatch *b, const Edr__V1__Event *e)
{
    json_t *r = build(b, e);
    if (!r) return EDR_ENOMEM;
    int rc = json_dumpf(r, f, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(r);
    if (rc != 0 || fputc('\n', f) == EOF) return EDR_EIO;
    return 0;
}

int edr_jsonl_write_process(FILE *f, const Edr__V1__ProcessRecord *p, const char *relation)
{
    json_t *r = json_object();
    if (!r) return EDR_ENOMEM;
    int rc = 0;
    char buf[16];
    rc |= put_bytes_hex(r, "process.entity_id", p->entity_id);
    if (p->pid) rc |= put(r, "process.pid", json_integer(p->pid));
    rc |= put_str(r, "process.executable", p->exe);
    rc |= put_str(r, "process.command_line", p->command_line);
    rc |= put_str(r, "process.working_directory", p->cwd);
    if (p->start_time_ns) rc |= put(r, "process.start", jtime(p->start_time_ns));
    if (p->end_time_ns) {
        rc |= put(r, "process.end", jtime(p->end_time_ns));
        if (!p->exit_unknown) {
            rc |= put(r, "process.exit_code", json_integer(p->exit_code));
            if (p->exit_signal) rc |= put(r, "edr.exit_signal", json_integer(p->exit_signal));
        }
    }
    rc |= put_bytes_hex(r, "process.hash.sha256", p->exe_sha256);
    rc |= put_bytes_hex(r, "process.parent.entity_id", p->parent_entity_id);
    if (p->ppid) rc |= put(r, "process.parent.pid", json_integer(p->ppid));
    rc |= put_str(r, "user.name", p->user);
    if (p->uid) { /* 0 is also "not known" (imports): as in event lines */
        snprintf(buf, sizeof(buf), "%u", p->uid);
        rc |= put(r, "user.id", json_string(buf));
    }
    rc |= put_str(r, "container.id", p->container_id);
    rc |= put(r, "edr.exec_count", json_integer(p->exec_count));
    if (relation) rc |= put_str(r, "edr.relation", relation);
    if (rc) {
        json_decref(r);
        return EDR_ENOMEM;
    }
    rc = json_dumpf(r, f, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(r);
    if (rc != 0 || fputc('\n', f) == EOF) return EDR_EIO;
    return 0;
}

/* ---- reader ---------------------------------------------------------------- */

/* Value at a dotted path: a flat "a.b.c" key, nested objects, or a mix. */
static json_t *get(json_t *o, const char *path)
{
    if (!json_is_object(o)) return NULL;
    json_t *v = json_object_get(o, path);
    if (v) return v;
    char key[64];
    for (const char *dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
        size_t n = (size_t)(dot - path);
        if (n >= sizeof(key)) break;
        memcpy(key, path, n);
        key[n] = 0;
        json_t *sub = json_object_get(o, key);
        if (sub && (v = get(sub, dot + 1)) != NULL) return v;
    }
    return NULL;
}

static const char *gets(json_t *o, const char *path)
{
    return json_string_value(get(o, path));
}

/* Unsigned number from an integer or a decimal string; def when absent or bad. */
static uint64_t getu(json_t *o, const char *path, uint64_t def)
{
    json_t *v = get(o, path);
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : def;
    const char *s = json_string_value(v);
    if (s && *s >= '0' && *s <= '9') {
        char *end;
        unsigned long long x = strtoull(s, &end, 10);
        if (*end == 0) return x;
    }
    return def;
}

/* A 32-bit field: def when absent, bad or out of range (not cut to its low
 * bits: 4294967298 is not 2; review-1206b 12). */
static uint32_t getu32(json_t *o, const char *path, uint32_t def)
{
    uint64_t v = getu(o, path, def);
    return v <= UINT32_MAX ? (uint32_t)v : def;
}

/* An enum field written as a name and a number (put_enum): the number,
 * else the name looked up in names (another writer's), else 0. */
static uint32_t get_enum(json_t *o, const char *name_path, const char *id_path,
                         const char *const *names, size_t n)
{
    uint32_t v = getu32(o, id_path, 0);
    return v ? v : (uint32_t)enum_value(names, n, gets(o, name_path));
}

static int64_t geti(json_t *o, const char *path)
{
    json_t *v = get(o, path);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static char *astr(edr_arena_t *a, const char *s)
{
    return edr_arena_strdup(a, s ? s : "");
}

/* The exact bytes the writer kept for text, the string at path of the
 * record r (edr.raw, see put_str; flat, nested or mixed keys alike), into
 * the arena. Taken only when they stand for that text: bytes that are not
 * valid UTF-8, without a NUL, whose U+FFFD rendering is the text itself.
 * Anything else there is ignored, so a line cannot show one path and store
 * another, nor set a field it does not show (review-1206m 2). NULL when
 * there are none, and out of memory, which sets *nomem. */
static char *raw_str(edr_arena_t *a, json_t *r, const char *path, const char *text, int *nomem)
{
    char key[96];
    if (!text || snprintf(key, sizeof(key), "edr.raw.%s", path) >= (int)sizeof(key)) return NULL;
    const char *h = json_string_value(get(r, key));
    size_t n = h ? strlen(h) : 0;
    if (!n || n % 2) return NULL;
    char *out = edr_arena_alloc(a, n / 2 + 1);
    if (!out) {
        *nomem = 1;
        return NULL;
    }
    if (edr_unhex(h, (uint8_t *)out, n / 2) != 0 || memchr(out, 0, n / 2)) return NULL;
    out[n / 2] = 0;
    json_t *valid = json_string(out), *shown = valid ? NULL : jstr(out);
    int same = shown && strcmp(json_string_value(shown), text) == 0;
    json_decref(valid);
    json_decref(shown);
    return same ? out : NULL;
}

/* The string at path of the record r into the arena: its raw bytes when the
 * writer kept them, else its text; empty when absent. NULL out of memory. */
static char *rstr(edr_arena_t *a, json_t *r, const char *path)
{
    int nomem = 0;
    const char *text = gets(r, path);
    char *v = raw_str(a, r, path, text, &nomem);
    return v ? v : nomem ? NULL : astr(a, text);
}

/* Hex string of exactly n bytes into an arena copy; empty when absent or invalid. */
static int ahex(edr_arena_t *a, json_t *o, const char *path, size_t n, ProtobufCBinaryData *out)
{
    const char *s = gets(o, path);
    out->len = 0;
    out->data = NULL;
    if (!s || strlen(s) != 2 * n) return 0;
    uint8_t *p = edr_arena_alloc(a, n);
    if (!p) return EDR_ENOMEM;
    if (edr_unhex(s, p, n) != 0) return 0;
    out->data = p;
    out->len = n;
    return 0;
}

int edr__ip_parse(const char *s, edr_arena_t *a, ProtobufCBinaryData *out)
{
    uint8_t buf[16];
    size_t n;
    if (!s) return EDR_EINVAL;
    if (inet_pton(AF_INET, s, buf) == 1)
        n = 4;
    else if (inet_pton(AF_INET6, s, buf) == 1)
        n = 16;
    else
        return EDR_EINVAL;
    out->data = edr_arena_dup(a, buf, n);
    out->len = n;
    return out->data ? 0 : EDR_ENOMEM;
}

/* Endpoint from ip/port paths, NULL when neither is present. */
static int aendpoint(edr_arena_t *a, json_t *o, const char *ip_path, const char *port_path,
                     Edr__V1__Endpoint **out)
{
    *out = NULL;
    const char *ip = gets(o, ip_path);
    uint64_t port = getu(o, port_path, 0);
    if (!ip && !port) return 0;
    Edr__V1__Endpoint *ep = edr_arena_alloc(a, sizeof(*ep));
    if (!ep) return EDR_ENOMEM;
    edr__v1__endpoint__init(ep);
    ep->port = (uint32_t)port;
    if (ip) {
        int rc = edr__ip_parse(ip, a, &ep->ip);
        if (rc == EDR_ENOMEM) return rc;
    }
    *out = ep;
    return 0;
}

static unsigned octal(const char *s)
{
    return s ? (unsigned)strtoul(s, NULL, 8) : 0;
}

int edr__jsonl_is_ecs(json_t *root)
{
    return json_is_string(get(root, "event.action"));
}

#define ALLOC_BODY(T, init, field, kase)                                                           \
    do {                                                                                           \
        T *x_ = edr_arena_alloc(a, sizeof(T));                                                     \
        if (!x_) goto nomem;                                                                       \
        init(x_);                                                                                  \
        e->field = x_;                                                                             \
        e->body_case = kase;                                                                       \
    } while (0)

int edr__jsonl_from_json(json_t *r, edr_arena_t *a, Edr__V1__Event **event, uint64_t *time_ns,
                         uint8_t host_id[EDR_ID_LEN], const char **hostname, char *msg,
                         size_t msgcap)
{
    const char *why = NULL;
    if (!json_is_object(r)) {
        why = "not a json object";
        goto bad;
    }
    const char *ts = gets(r, "@timestamp");
    const char *action = gets(r, "event.action");
    const char *hid = gets(r, "host.id");
    const char *hname = gets(r, "host.name");
    int nomem_hn = 0;
    const char *hname_raw = raw_str(a, r, "host.name", hname, &nomem_hn);
    if (nomem_hn) goto nomem;
    if (hname_raw) hname = hname_raw;
    uint64_t t;
    if (!ts || edr_jsonl_time_parse(ts, strlen(ts), &t) != 0) {
        why = "missing or bad @timestamp";
        goto bad;
    }
    if (!action) {
        why = "missing event.action";
        goto bad;
    }
    int kind = -1;
    for (int k = 1; k < EDR_EVENT_KINDS; k++)
        if (strcmp(edr_event_kind_name((Edr__V1__Event__BodyCase)k), action) == 0) kind = k;
    if (kind < 0) {
        why = "unknown event.action";
        goto bad;
    }
    uint8_t hid_bin[EDR_ID_LEN];
    if (hid) {
        if (edr_unhex(hid, hid_bin, EDR_ID_LEN) != 0) {
            why = "host.id is not 32 hex digits";
            goto bad;
        }
    } else if (hname && *hname) {
        edr_host_id_from_name(hname, hid_bin);
    } else {
        why = "missing host.id and host.name";
        goto bad;
    }

    Edr__V1__Event *e = edr_arena_alloc(a, sizeof(*e));
    if (!e) goto nomem;
    edr__v1__event__init(e);
    if (ahex(a, r, "process.entity_id", EDR_ID_LEN, &e->entity_id) ||
        ahex(a, r, "process.parent.entity_id", EDR_ID_LEN, &e->parent_entity_id))
        goto nomem;
    e->pid = getu32(r, "process.pid", 0);
    e->tid = getu32(r, "process.thread.id", 0);
    {
        const char *oc = gets(r, "event.outcome"); /* a connect's is its own */
        e->unconfirmed = oc && !strcmp(oc, "unknown") && kind != EDR__V1__EVENT__BODY_NETWORK;
    }
    if (kind != EDR__V1__EVENT__BODY_PROCESS_START && !(e->exe = rstr(a, r, "process.executable")))
        goto nomem;

    switch (kind) {
    case EDR__V1__EVENT__BODY_PROCESS_START: {
        ALLOC_BODY(Edr__V1__ProcessStart, edr__v1__process_start__init, process_start,
                   EDR__V1__EVENT__BODY_PROCESS_START);
        Edr__V1__ProcessStart *s = e->process_start;
        json_t *args = get(r, "process.args");
        if (json_is_array(args) && json_array_size(args)) {
            s->n_argv = json_array_size(args);
            s->argv = edr_arena_alloc(a, s->n_argv * sizeof(char *));
            if (!s->argv) goto nomem;
            for (size_t i = 0; i < s->n_argv; i++) {
                char key[40];
                snprintf(key, sizeof(key), "process.args.%zu", i);
                int nomem = 0;
                s->argv[i] = raw_str(a, r, key, json_string_value(json_array_get(args, i)), &nomem);
                if (nomem) goto nomem;
                if (!s->argv[i] &&
                    !(s->argv[i] = astr(a, json_string_value(json_array_get(args, i)))))
                    goto nomem;
            }
        }
        const char *cl = gets(r, "process.command_line");
        int nomem_cl = 0;
        char *cl_raw = raw_str(a, r, "process.command_line", cl, &nomem_cl);
        if (nomem_cl) goto nomem;
        /* a command line with bytes of its own is the sensor's, never one the
         * writer joined (it keeps no raw bytes of that one) */
        if (cl && s->n_argv && !cl_raw) {
            /* the writer joins argv when there is no command line: drop it again */
            size_t off = 0, cll = strlen(cl);
            int same = 1;
            for (size_t i = 0; same && i < s->n_argv; i++) {
                /* as written: the text, not the raw bytes */
                const char *txt = json_string_value(json_array_get(args, i));
                txt = txt ? txt : "";
                size_t l = strlen(txt);
                if (i && (off >= cll || cl[off++] != ' '))
                    same = 0;
                else if (off + l > cll || memcmp(cl + off, txt, l) != 0)
                    same = 0;
                else
                    off += l;
            }
            if (same && off == cll) cl = NULL;
        }
        if (!(s->exe = rstr(a, r, "process.executable")) ||
            !(s->command_line = cl_raw ? cl_raw : astr(a, cl)) ||
            !(s->cwd = rstr(a, r, "process.working_directory")) ||
            !(s->user = rstr(a, r, "user.name")) || !(s->group = rstr(a, r, "group.name")) ||
            !(s->container_id = rstr(a, r, "container.id")) ||
            !(s->parent_exe = rstr(a, r, "process.parent.executable")) ||
            !(s->effective_user = rstr(a, r, "user.effective.name")))
            goto nomem;
        s->argv_truncated = json_is_true(get(r, "edr.process.args_truncated"));
        if (get(r, "user.effective.id") || get(r, "group.effective.id")) {
            s->effective_ids = 1;
            s->euid = getu32(r, "user.effective.id", 0);
            s->egid = getu32(r, "group.effective.id", 0);
        }
        s->uid = getu32(r, "user.id", 0);
        s->gid = getu32(r, "group.id", 0);
        if (ahex(a, r, "process.hash.sha256", 32, &s->exe_sha256)) goto nomem;
        s->cgroup_id = getu(r, "edr.process.cgroup_id", 0);
        s->ppid = getu32(r, "process.parent.pid", 0);
        s->seeded = json_is_true(get(r, "edr.process.seeded"));
        const char *st = gets(r, "process.start");
        if (st) edr_jsonl_time_parse(st, strlen(st), &s->start_time_ns);
        break;
    }
    case EDR__V1__EVENT__BODY_PROCESS_FORK: {
        ALLOC_BODY(Edr__V1__ProcessFork, edr__v1__process_fork__init, process_fork,
                   EDR__V1__EVENT__BODY_PROCESS_FORK);
        e->process_fork->ppid = getu32(r, "process.parent.pid", 0);
        const char *st = gets(r, "process.start");
        if (st) edr_jsonl_time_parse(st, strlen(st), &e->process_fork->start_time_ns);
        break;
    }
    case EDR__V1__EVENT__BODY_PROCESS_EXIT:
        ALLOC_BODY(Edr__V1__ProcessExit, edr__v1__process_exit__init, process_exit,
                   EDR__V1__EVENT__BODY_PROCESS_EXIT);
        e->process_exit->exit_code = (int32_t)geti(r, "process.exit_code");
        e->process_exit->signal = (int32_t)geti(r, "edr.process.signal");
        /* left out: its source did not say (written so since 2026-12-06) */
        e->process_exit->status_unknown = !get(r, "process.exit_code");
        break;
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS: {
        ALLOC_BODY(Edr__V1__ProcessAccess, edr__v1__process_access__init, process_access,
                   EDR__V1__EVENT__BODY_PROCESS_ACCESS);
        Edr__V1__ProcessAccess *pa = e->process_access;
        pa->kind =
            enum_value(access_kinds, NELEM(access_kinds), gets(r, "edr.process_access.kind"));
        pa->access_mask = getu32(r, "edr.process_access.access_mask", 0);
        pa->target_pid = getu32(r, "edr.process_access.target.pid", 0);
        if (ahex(a, r, "edr.process_access.target.entity_id", EDR_ID_LEN, &pa->target_entity_id) ||
            !(pa->target_exe = rstr(a, r, "edr.process_access.target.executable")))
            goto nomem;
        break;
    }
    case EDR__V1__EVENT__BODY_FILE_CREATE:
        ALLOC_BODY(Edr__V1__FileCreate, edr__v1__file_create__init, file_create,
                   EDR__V1__EVENT__BODY_FILE_CREATE);
        if (!(e->file_create->path = rstr(a, r, "file.path")) ||
            !(e->file_create->link_target = rstr(a, r, "file.target_path")))
            goto nomem;
        e->file_create->mode = octal(gets(r, "file.mode"));
        break;
    case EDR__V1__EVENT__BODY_FILE_WRITE:
        ALLOC_BODY(Edr__V1__FileWrite, edr__v1__file_write__init, file_write,
                   EDR__V1__EVENT__BODY_FILE_WRITE);
        if (!(e->file_write->path = rstr(a, r, "file.path"))) goto nomem;
        e->file_write->bytes = getu(r, "edr.file.write_bytes", 0);
        break;
    case EDR__V1__EVENT__BODY_FILE_RENAME:
        ALLOC_BODY(Edr__V1__FileRename, edr__v1__file_rename__init, file_rename,
                   EDR__V1__EVENT__BODY_FILE_RENAME);
        if (!(e->file_rename->new_path = rstr(a, r, "file.path")) ||
            !(e->file_rename->old_path = rstr(a, r, "edr.file.old_path")))
            goto nomem;
        break;
    case EDR__V1__EVENT__BODY_FILE_DELETE:
        ALLOC_BODY(Edr__V1__FileDelete, edr__v1__file_delete__init, file_delete,
                   EDR__V1__EVENT__BODY_FILE_DELETE);
        if (!(e->file_delete->path = rstr(a, r, "file.path"))) goto nomem;
        break;
    case EDR__V1__EVENT__BODY_FILE_ATTR:
        ALLOC_BODY(Edr__V1__FileAttr, edr__v1__file_attr__init, file_attr,
                   EDR__V1__EVENT__BODY_FILE_ATTR);
        if (!(e->file_attr->path = rstr(a, r, "file.path"))) goto nomem;
        e->file_attr->kind =
            enum_value(attr_kinds, NELEM(attr_kinds), gets(r, "edr.file.attr_kind"));
        e->file_attr->mode = octal(gets(r, "file.mode"));
        {
            uint64_t none = e->file_attr->kind == EDR__V1__FILE_ATTR__KIND__CHOWN ? UINT32_MAX : 0;
            e->file_attr->uid = getu32(r, "file.uid", none);
            e->file_attr->gid = getu32(r, "file.gid", none);
        }
        break;
    case EDR__V1__EVENT__BODY_FILE_EXEC:
        ALLOC_BODY(Edr__V1__FileExec, edr__v1__file_exec__init, file_exec,
                   EDR__V1__EVENT__BODY_FILE_EXEC);
        if (!(e->file_exec->path = rstr(a, r, "file.path")) ||
            ahex(a, r, "file.hash.sha256", 32, &e->file_exec->sha256))
            goto nomem;
        e->file_exec->mapped = json_is_true(get(r, "edr.file.mapped"));
        {
            Edr__V1__FileExec *x = e->file_exec;
            const char *pr = gets(r, "edr.memory.protection");
            for (int i = 0; pr && i < 3 && pr[i]; i++)
                x->prot |= pr[i] == "rwx"[i] ? 1u << i : 0;
            x->modified = json_is_true(get(r, "edr.memory.modified"));
            if ((x->anonymous = json_is_true(get(r, "edr.memory.anonymous")))) {
                x->address = getu(r, "edr.memory.address", 0);
                x->length = getu(r, "edr.memory.length", 0);
                const char *by = gets(r, "edr.memory.by");
                for (unsigned k = 1; by && k <= EDR__V1__FILE_EXEC__MEMORY_BY__PERSONALITY; k++)
                    if (!strcmp(by, edr_memory_by_name((Edr__V1__FileExec__MemoryBy)k)))
                        x->by = (Edr__V1__FileExec__MemoryBy)k;
            }
        }
        break;
    case EDR__V1__EVENT__BODY_NETWORK: {
        ALLOC_BODY(Edr__V1__Network, edr__v1__network__init, network, EDR__V1__EVENT__BODY_NETWORK);
        Edr__V1__Network *n = e->network;
        n->action = enum_value(net_actions, NELEM(net_actions), gets(r, "edr.network.action"));
        n->protocol = (Edr__V1__Network__Protocol)getu(r, "network.iana_number", 0);
        if (!n->protocol) {
            const char *tr = gets(r, "network.transport");
            if (tr && strcmp(tr, "tcp") == 0)
                n->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
            else if (tr && strcmp(tr, "udp") == 0)
                n->protocol = EDR__V1__NETWORK__PROTOCOL__UDP;
        }
        const char *dir = gets(r, "network.direction");
        if (dir && (strcmp(dir, "outbound") == 0 || strcmp(dir, "egress") == 0))
            n->direction = EDR__V1__NETWORK__DIRECTION__OUTBOUND;
        else if (dir && (strcmp(dir, "inbound") == 0 || strcmp(dir, "ingress") == 0))
            n->direction = EDR__V1__NETWORK__DIRECTION__INBOUND;
        int inbound = n->direction == EDR__V1__NETWORK__DIRECTION__INBOUND;
        if (aendpoint(a, r, "source.ip", "source.port", inbound ? &n->remote : &n->local) ||
            aendpoint(a, r, "destination.ip", "destination.port", inbound ? &n->local : &n->remote))
            goto nomem;
        n->error = getu32(r, "edr.network.errno", 0);
        if (!n->error && n->action == EDR__V1__NETWORK__ACTION__CONNECT) {
            /* another ECS writer's line: the outcome and the error's name */
            const char *oc = gets(r, "event.outcome");
            if (oc && !strcmp(oc, "unknown"))
                n->error = EINPROGRESS;
            else if (oc && !strcmp(oc, "failure"))
                n->error = connect_errno_value(gets(r, "error.code"));
        }
        n->netns = getu32(r, "edr.network.netns", 0);
        break;
    }
    case EDR__V1__EVENT__BODY_DNS_QUERY: {
        ALLOC_BODY(Edr__V1__DnsQuery, edr__v1__dns_query__init, dns_query,
                   EDR__V1__EVENT__BODY_DNS_QUERY);
        Edr__V1__DnsQuery *q = e->dns_query;
        if (!(q->name = rstr(a, r, "dns.question.name"))) goto nomem;
        q->qtype = getu32(r, "edr.dns.qtype", 0);
        json_t *ans = get(r, "dns.answers");
        if (json_is_array(ans) && json_array_size(ans)) {
            q->n_answers = json_array_size(ans);
            q->answers = edr_arena_alloc(a, q->n_answers * sizeof(char *));
            if (!q->answers) goto nomem;
            for (size_t i = 0; i < q->n_answers; i++) {
                json_t *x = json_array_get(ans, i);
                const char *d = json_is_object(x) ? gets(x, "data") : json_string_value(x);
                if (!(q->answers[i] = astr(a, d))) goto nomem;
            }
        }
        if (aendpoint(a, r, "destination.ip", "destination.port", &q->server)) goto nomem;
        break;
    }
    case EDR__V1__EVENT__BODY_PROCESS_INVENTORY: {
        ALLOC_BODY(Edr__V1__ProcessInventory, edr__v1__process_inventory__init, process_inventory,
                   EDR__V1__EVENT__BODY_PROCESS_INVENTORY);
        Edr__V1__ProcessInventory *x = e->process_inventory;
        json_t *l = get(r, "edr.inventory.processes");
        size_t n = json_is_array(l) ? json_array_size(l) : 0;
        if (n && !(x->processes = edr_arena_alloc(a, n * sizeof(*x->processes)))) goto nomem;
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(l, i);
            Edr__V1__ProcessInventory__Entry *en = edr_arena_alloc(a, sizeof(*en));
            if (!en) goto nomem;
            edr__v1__process_inventory__entry__init(en);
            if (ahex(a, o, "entity_id", EDR_ID_LEN, &en->entity_id) ||
                ahex(a, o, "parent.entity_id", EDR_ID_LEN, &en->parent_entity_id))
                goto nomem;
            if (en->entity_id.len) /* an entry without a valid id says nothing */
                x->processes[x->n_processes++] = en;
        }
        break;
    }
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH: {
        ALLOC_BODY(Edr__V1__SensorHealth, edr__v1__sensor_health__init, sensor_health,
                   EDR__V1__EVENT__BODY_SENSOR_HEALTH);
        Edr__V1__SensorHealth *h = e->sensor_health;
        if (!(h->fidelity = rstr(a, r, "edr.sensor_health.fidelity"))) goto nomem;
        json_t *d = get(r, "edr.sensor_health.drops");
        if (json_is_array(d) && json_array_size(d)) {
            h->n_drops = json_array_size(d);
            h->drops = edr_arena_alloc(a, h->n_drops * sizeof(*h->drops));
            if (!h->drops) goto nomem;
            for (size_t i = 0; i < h->n_drops; i++) {
                json_t *x = json_array_get(d, i);
                Edr__V1__SensorHealth__Drop *dr = edr_arena_alloc(a, sizeof(*dr));
                if (!dr) goto nomem;
                edr__v1__sensor_health__drop__init(dr);
                if (!(dr->source = astr(a, gets(x, "source"))) ||
                    !(dr->reason = astr(a, gets(x, "reason"))))
                    goto nomem;
                dr->count = getu(x, "count", 0);
                h->drops[i] = dr;
            }
        }
        json_t *qs = get(r, "edr.sensor_health.queues");
        if (json_is_array(qs) && json_array_size(qs)) {
            h->n_queues = json_array_size(qs);
            h->queues = edr_arena_alloc(a, h->n_queues * sizeof(*h->queues));
            if (!h->queues) goto nomem;
            for (size_t i = 0; i < h->n_queues; i++) {
                json_t *x = json_array_get(qs, i);
                Edr__V1__SensorHealth__Queue *qu = edr_arena_alloc(a, sizeof(*qu));
                if (!qu) goto nomem;
                edr__v1__sensor_health__queue__init(qu);
                if (!(qu->name = astr(a, gets(x, "name")))) goto nomem;
                qu->depth = getu(x, "depth", 0);
                qu->capacity = getu(x, "capacity", 0);
                h->queues[i] = qu;
            }
        }
        h->spool_bytes = getu(r, "edr.sensor_health.spool_bytes", 0);
        h->spool_frames = getu(r, "edr.sensor_health.spool_frames", 0);
        h->events_sent = getu(r, "edr.sensor_health.events_sent", 0);
        h->uptime_ns = getu(r, "edr.sensor_health.uptime_ns", 0);
        break;
    }
    case EDR__V1__EVENT__BODY_BPF_LOAD: {
        ALLOC_BODY(Edr__V1__BpfLoad, edr__v1__bpf_load__init, bpf_load,
                   EDR__V1__EVENT__BODY_BPF_LOAD);
        Edr__V1__BpfLoad *x = e->bpf_load;
        x->prog_type = get_enum(r, "edr.bpf.program.type", "edr.bpf.program.type_id",
                                bpf_prog_types, NELEM(bpf_prog_types));
        if (!(x->name = rstr(a, r, "edr.bpf.program.name")) ||
            !(x->attach_to = rstr(a, r, "edr.bpf.program.attach_to")) ||
            ahex(a, r, "edr.bpf.program.tag", 8, &x->tag))
            goto nomem;
        x->prog_id = getu32(r, "edr.bpf.program.id", 0);
        x->attach_type = getu32(r, "edr.bpf.program.attach_type", 0);
        x->insn_count = getu32(r, "edr.bpf.program.insn_count", 0);
        x->found = json_is_true(get(r, "edr.bpf.program.found"));
        const char *lt = gets(r, "edr.bpf.program.load_time");
        if (lt && edr_jsonl_time_parse(lt, strlen(lt), &x->load_time_ns) != 0)
            x->load_time_ns = 0;
        break;
    }
    case EDR__V1__EVENT__BODY_BPF_ATTACH:
    case EDR__V1__EVENT__BODY_BPF_DETACH: { /* one message type for both */
        Edr__V1__BpfAttach *x = edr_arena_alloc(a, sizeof(*x));
        if (!x) goto nomem;
        edr__v1__bpf_attach__init(x);
        if (kind == EDR__V1__EVENT__BODY_BPF_ATTACH)
            e->bpf_attach = x;
        else
            e->bpf_detach = x;
        e->body_case = (Edr__V1__Event__BodyCase)kind;
        x->prog_id = getu32(r, "edr.bpf.program.id", 0);
        x->prog_type = get_enum(r, "edr.bpf.program.type", "edr.bpf.program.type_id",
                                bpf_prog_types, NELEM(bpf_prog_types));
        x->link_id = getu32(r, "edr.bpf.link.id", 0);
        x->link_type = get_enum(r, "edr.bpf.link.type", "edr.bpf.link.type_id", bpf_link_types,
                                NELEM(bpf_link_types));
        x->attach_type = getu32(r, "edr.bpf.link.attach_type", 0);
        x->target_id = getu(r, "edr.bpf.link.target_id", 0);
        x->found = json_is_true(get(r, "edr.bpf.link.found"));
        x->unverified = json_is_true(get(r, "edr.bpf.link.unverified"));
        x->socket_option = getu32(r, "edr.bpf.link.socket_option", 0);
        if (!(x->prog_name = rstr(a, r, "edr.bpf.program.name")) ||
            !(x->target = rstr(a, r, "edr.bpf.link.target")))
            goto nomem;
        break;
    }
    default:
        why = "event.action has no body";
        goto bad;
    }
    const char *hn = astr(a, hname);
    if (!hn) goto nomem;
    *event = e;
    *time_ns = t;
    memcpy(host_id, hid_bin, EDR_ID_LEN);
    *hostname = hn;
    return 0;
nomem:
    return EDR_ENOMEM;
bad:
    if (msg && msgcap) snprintf(msg, msgcap, "%s", why);
    return EDR_EPARSE;
}

int edr_jsonl_parse_line(const char *line, size_t len, edr_arena_t *a, Edr__V1__Event **event,
                         uint64_t *time_ns, uint8_t host_id[EDR_ID_LEN], const char **hostname,
                         char *msg, size_t msgcap)
{
    json_error_t err;
    json_t *r = json_loadb(line, len, 0, &err);
    if (!r) {
        if (msg && msgcap) snprintf(msg, msgcap, "bad json at column %d: %s", err.column, err.text);
        return EDR_EPARSE;
    }
    int rc = edr__jsonl_from_json(r, a, event, time_ns, host_id, hostname, msg, msgcap);
    json_decref(r);
    return rc;
}
