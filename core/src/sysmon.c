/* Sysmon exports (syslog XML, EventData JSON, flat JSON) and our JSON lines into edr.v1 events. */
#define _GNU_SOURCE /* strcasestr */
#include "edr/sysmon.h"

#include "edr/err.h"
#include "edr/event.h"
#include "jsonl_int.h"

#include <ctype.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS     4096 /* past them a record is refused, not cut (review-1206n-import 7) */
#define PARENT_MAP_MAX (1u << 18) /* entities remembered (their creates: 10 MiB) */

typedef struct field {
    const char *name;
    const char *val; /* NULL: present but not a scalar */
} field_t;

/* What process creates taught about an entity: its parent, so that later
 * records of it carry it too, and that its create was seen (pid), so that
 * records of a process older than the log carry its image (Event.exe).
 * Open addressing, linear probing, no deletes. */
typedef struct parent_slot {
    uint8_t entity[EDR_ID_LEN];
    uint8_t parent[EDR_ID_LEN]; /* valid when has_parent */
    uint32_t pid;               /* the pid it was created with; 0: not known */
    uint8_t used, has_parent;
} parent_slot_t;

typedef struct idmap {
    parent_slot_t *v;
    size_t cap, n;
} idmap_t;

struct edr_sysmon_parser {
    edr_sysmon_opts_t opts;
    edr_sysmon_stats_t stats;
    xmlParserCtxtPtr xml;
    field_t fields[MAX_FIELDS];
    size_t nfields;
    int fields_over; /* the record had more than MAX_FIELDS */
    idmap_t pmap;
    size_t long_line; /* bytes read of a line past max_line whose end is not read yet */
    int skip_rest;    /* memory ran out in a line: its rest is read, not kept */
};

static const char *const skip_names[EDR_SYSMON_SKIP__COUNT] = {
    "blank", "other_channel", "unmapped_event_id", "malformed", "bad_field", "too_long"};
static const char *const shape_names[EDR_SYSMON_SHAPE__COUNT] = {"syslog", "eventdata", "flat",
                                                                 "ecs"};

const char *edr_sysmon_skip_name(edr_sysmon_skip_t r)
{
    return (unsigned)r < EDR_SYSMON_SKIP__COUNT ? skip_names[r] : "unknown";
}

const char *edr_sysmon_shape_name(edr_sysmon_shape_t s)
{
    return (unsigned)s < EDR_SYSMON_SHAPE__COUNT ? shape_names[s] : "unknown";
}

edr_sysmon_parser_t *edr_sysmon_parser_new(const edr_sysmon_opts_t *opts)
{
    edr_sysmon_parser_t *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    if (opts) p->opts = *opts;
    if (!p->opts.max_line) p->opts.max_line = 1u << 20;
    xmlInitParser();
    p->xml = xmlNewParserCtxt();
    if (!p->xml) {
        free(p);
        return NULL;
    }
    return p;
}

void edr_sysmon_parser_destroy(edr_sysmon_parser_t *p)
{
    if (!p) return;
    xmlFreeParserCtxt(p->xml);
    free(p->pmap.v);
    free(p);
}

const edr_sysmon_stats_t *edr_sysmon_parser_stats(const edr_sysmon_parser_t *p)
{
    return &p->stats;
}

/* ---- parent map ------------------------------------------------------------- */

static size_t map_index(const parent_slot_t *m, size_t cap, const uint8_t e[EDR_ID_LEN])
{
    uint64_t h;
    memcpy(&h, e, sizeof(h)); /* entity ids are hashes already */
    size_t i = (size_t)h & (cap - 1);
    while (m[i].used && memcmp(m[i].entity, e, EDR_ID_LEN) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

/* The slot of key in m, made (zeroed) when make and absent; NULL when
 * absent, or when full (PARENT_MAP_MAX: later processes lack what it would
 * have taught) or out of memory. */
static parent_slot_t *map_slot(idmap_t *m, const uint8_t key[EDR_ID_LEN], int make)
{
    if (make && m->n * 2 >= m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        if (ncap <= PARENT_MAP_MAX) {
            parent_slot_t *nm = calloc(ncap, sizeof(*nm));
            if (nm) {
                for (size_t i = 0; i < m->cap; i++)
                    if (m->v[i].used) nm[map_index(nm, ncap, m->v[i].entity)] = m->v[i];
                free(m->v);
                m->v = nm;
                m->cap = ncap;
            }
        }
    }
    if (!m->cap) return NULL;
    size_t i = map_index(m->v, m->cap, key);
    if (m->v[i].used) return &m->v[i];
    if (!make || m->n * 2 >= m->cap) return NULL;
    memset(&m->v[i], 0, sizeof(m->v[i]));
    m->v[i].used = 1;
    memcpy(m->v[i].entity, key, EDR_ID_LEN);
    m->n++;
    return &m->v[i];
}

static const uint8_t *pmap_get(edr_sysmon_parser_t *p, const uint8_t e[EDR_ID_LEN])
{
    const parent_slot_t *sl = map_slot(&p->pmap, e, 0);
    return sl && sl->has_parent ? sl->parent : NULL;
}

/* A create of entity e (pid, parent): remembered. */
static void learn_create(edr_sysmon_parser_t *p, const Edr__V1__Event *e)
{
    parent_slot_t *me = map_slot(&p->pmap, e->entity_id.data, 1);
    if (!me) return;
    me->pid = e->pid ? e->pid : UINT32_MAX; /* seen, whatever its pid */
    if (e->parent_entity_id.len == EDR_ID_LEN) {
        memcpy(me->parent, e->parent_entity_id.data, EDR_ID_LEN);
        me->has_parent = 1;
    }
}

/* ---- helpers ------------------------------------------------------------------ */

static void report(edr_sysmon_parser_t *p, uint64_t lineno, edr_sysmon_skip_t reason,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(edr_sysmon_parser_t *p, uint64_t lineno, edr_sysmon_skip_t reason,
                   const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->stats.skipped[reason]++;
    if (p->stats.n_errors < EDR_SYSMON_FIRST_ERRORS) {
        p->stats.first_errors[p->stats.n_errors].lineno = lineno;
        p->stats.first_errors[p->stats.n_errors].reason = reason;
        memcpy(p->stats.first_errors[p->stats.n_errors].msg, msg, sizeof(msg));
    }
    p->stats.n_errors++;
    if (p->opts.on_error) p->opts.on_error(p->opts.ud, lineno, reason, msg);
}

static const char *field(const edr_sysmon_parser_t *p, const char *name)
{
    for (size_t i = 0; i < p->nfields; i++)
        if (strcasecmp(p->fields[i].name, name) == 0) return p->fields[i].val;
    return NULL;
}

/* A field's text, "" when absent or Sysmon's "-" placeholder. */
static const char *fstr(const edr_sysmon_parser_t *p, const char *name)
{
    const char *v = field(p, name);
    return (!v || strcmp(v, "-") == 0) ? "" : v;
}

/* Decimal or 0x-hex unsigned number; -1 when absent or not a number. */
static int64_t fnum(const edr_sysmon_parser_t *p, const char *name)
{
    const char *v = field(p, name);
    if (!v) return -1;
    while (isspace((unsigned char)*v))
        v++;
    if (!isdigit((unsigned char)*v)) return -1;
    char *end;
    unsigned long long x = strtoull(v, &end, 0);
    while (isspace((unsigned char)*end))
        end++;
    if (*end || x > UINT32_MAX) return -1;
    return (int64_t)x;
}

static uint32_t fu32(const edr_sysmon_parser_t *p, const char *name)
{
    int64_t v = fnum(p, name);
    return v < 0 ? 0 : (uint32_t)v;
}

/* Scalar JSON value as text in the arena; NULL for objects, arrays and null. */
static const char *json_text(json_t *v, edr_arena_t *a)
{
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return edr_arena_strdup(a, buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return edr_arena_strdup(a, buf);
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return NULL;
    }
}

static int fields_from_json(edr_sysmon_parser_t *p, json_t *obj, edr_arena_t *a)
{
    const char *k;
    json_t *v;
    p->nfields = 0;
    json_object_foreach(obj, k, v)
    {
        if (p->nfields == MAX_FIELDS) {
            p->fields_over = 1;
            break;
        }
        const char *t = json_text(v, a);
        if (!t && (json_is_integer(v) || json_is_real(v))) return EDR_ENOMEM;
        p->fields[p->nfields].name = k;
        p->fields[p->nfields].val = t;
        p->nfields++;
    }
    return 0;
}

static const char *jget_text(json_t *o, const char *key, edr_arena_t *a)
{
    json_t *v = json_object_get(o, key);
    return v ? json_text(v, a) : NULL;
}

static int contains_ci(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; s && *s; s++)
        if (strncasecmp(s, needle, n) == 0) return 1;
    return 0;
}

/* Groups 4 and 5 of a guid all zero: Sysmon for Linux's "could not inspect". */
static int guid_incomplete(const char *g, size_t len)
{
    int group = 1;
    for (size_t i = 0; i < len; i++) {
        char c = g[i];
        if (c == '-')
            group++;
        else if (group >= 4 && isxdigit((unsigned char)c) && c != '0')
            return 0;
    }
    return group == 5;
}

int edr_sysmon_entity_id(const uint8_t host_id[EDR_ID_LEN], const char *guid, uint32_t pid,
                         uint8_t out[EDR_ID_LEN])
{
    if (!guid) return 0;
    while (isspace((unsigned char)*guid))
        guid++;
    size_t len = strlen(guid);
    while (len && isspace((unsigned char)guid[len - 1]))
        len--;
    if (len == 0 || (len == 1 && guid[0] == '-')) return 0;
    if (guid_incomplete(guid, len)) {
        if (!pid) return 0;
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "incomplete:%u", pid);
        edr_entity_id_from_guid(host_id, buf, (size_t)n, out);
        return 1;
    }
    edr_entity_id_from_guid(host_id, guid, len, out);
    return 1;
}

static int set_id(edr_arena_t *a, const uint8_t host[EDR_ID_LEN], const char *guid, uint32_t pid,
                  ProtobufCBinaryData *out)
{
    uint8_t id[EDR_ID_LEN];
    out->len = 0;
    out->data = NULL;
    if (!edr_sysmon_entity_id(host, guid, pid, id)) return 0;
    out->data = edr_arena_dup(a, id, EDR_ID_LEN);
    if (!out->data) return EDR_ENOMEM;
    out->len = EDR_ID_LEN;
    return 0;
}

/* SHA256=<64 hex> out of "SHA1=..,MD5=..,SHA256=..,IMPHASH=.."; empty when absent. */
static int set_sha256(edr_arena_t *a, const char *hashes, ProtobufCBinaryData *out)
{
    out->len = 0;
    out->data = NULL;
    const char *s = hashes;
    while (s && (s = strcasestr(s, "SHA256=")) != NULL) {
        if (s == hashes || s[-1] == ',' || s[-1] == ' ') {
            s += 7;
            size_t n = strspn(s, "0123456789abcdefABCDEF");
            if (n != 64 || (s[n] && s[n] != ',' && s[n] != ' ')) return 0;
            char hex[65];
            memcpy(hex, s, 64);
            hex[64] = 0;
            uint8_t *d = edr_arena_alloc(a, 32);
            if (!d) return EDR_ENOMEM;
            if (edr_unhex(hex, d, 32) != 0) return 0;
            out->data = d;
            out->len = 32;
            return 0;
        }
        s += 7;
    }
    return 0;
}

static char *adup(edr_arena_t *a, const char *s)
{
    return edr_arena_strdup(a, s ? s : "");
}

/* ---- XML (syslog shape) -------------------------------------------------------- */

static xmlNode *child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0) return c;
    return NULL;
}

static const char *node_text(xmlNode *n, edr_arena_t *a)
{
    if (!n) return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t) return adup(a, "");
    char *r = edr_arena_strdup(a, (const char *)t);
    xmlFree(t);
    return r;
}

typedef struct xml_sys {
    const char *event_id, *channel, *computer, *time_created, *provider;
} xml_sys_t;

/* Parses the XML into p->fields (arena copies) and sys; 0, EDR_EPARSE, EDR_ENOMEM. */
static int fields_from_xml(edr_sysmon_parser_t *p, const char *xml, size_t len, edr_arena_t *a,
                           xml_sys_t *sys, int *recovered)
{
    int rc = 0;
    memset(sys, 0, sizeof(*sys));
    p->nfields = 0;
    if (len > INT32_MAX) return EDR_EPARSE;
    xmlDocPtr doc = xmlCtxtReadMemory(p->xml, xml, (int)len, NULL, "UTF-8",
                                      XML_PARSE_RECOVER | XML_PARSE_NONET | XML_PARSE_NOERROR |
                                          XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    *recovered = !p->xml->wellFormed;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "Event") != 0) {
        rc = EDR_EPARSE;
        goto out;
    }
    xmlNode *s = child(root, "System");
    xmlNode *ed = child(root, "EventData");
    if (!ed) ed = child(root, "UserData");
    if (!s || !ed) {
        rc = EDR_EPARSE;
        goto out;
    }
    sys->event_id = node_text(child(s, "EventID"), a);
    sys->channel = node_text(child(s, "Channel"), a);
    sys->computer = node_text(child(s, "Computer"), a);
    xmlNode *tc = child(s, "TimeCreated");
    xmlNode *pv = child(s, "Provider");
    xmlChar *attr;
    if (tc && (attr = xmlGetProp(tc, (const xmlChar *)"SystemTime")) != NULL) {
        sys->time_created = edr_arena_strdup(a, (const char *)attr);
        xmlFree(attr);
    }
    if (pv && (attr = xmlGetProp(pv, (const xmlChar *)"Name")) != NULL) {
        sys->provider = edr_arena_strdup(a, (const char *)attr);
        xmlFree(attr);
    }
    for (xmlNode *d = ed->children; d; d = d->next) {
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "Data") != 0) continue;
        xmlChar *name = xmlGetProp(d, (const xmlChar *)"Name");
        if (!name) continue;
        if (p->nfields == MAX_FIELDS)
            p->fields_over = 1;
        else {
            p->fields[p->nfields].name = edr_arena_strdup(a, (const char *)name);
            p->fields[p->nfields].val = node_text(d, a);
            if (!p->fields[p->nfields].name || !p->fields[p->nfields].val) rc = EDR_ENOMEM;
            p->nfields++;
        }
        xmlFree(name);
    }
    /* A message cut short inside its EventData: recovery keeps the last
     * field's partial text as if it were whole ("bash -c rm -"): drop it. */
    if (*recovered && p->nfields && !strstr(xml, "</EventData>") && !strstr(xml, "</UserData>")) {
        p->nfields--;
        p->stats.xml_cut_fields++;
    }
out:
    xmlFreeDoc(doc);
    return rc;
}

/* ---- mapping ---------------------------------------------------------------------- */

static int mapped_id(int id)
{
    switch (id) {
    case 1:
    case 3:
    case 5:
    case 7:
    case 10:
    case 11:
    case 15:
    case 22:
    case 23:
    case 26:
        return 1;
    default:
        return 0;
    }
}

#define BODY(T, init, member, kase)                                                                \
    do {                                                                                           \
        T *x_ = edr_arena_alloc(a, sizeof(T));                                                     \
        if (!x_) return EDR_ENOMEM;                                                                \
        init(x_);                                                                                  \
        e->member = x_;                                                                            \
        e->body_case = kase;                                                                       \
    } while (0)

/* Builds the event of a mapped Sysmon record from p->fields. 0, EDR_ENOMEM, or
 * EDR_EINVAL with *bad naming the offending field. */
static int build_event(edr_sysmon_parser_t *p, int id, const uint8_t host[EDR_ID_LEN], uint64_t t,
                       edr_arena_t *a, Edr__V1__Event **out, const char **bad)
{
    Edr__V1__Event *e = edr_arena_alloc(a, sizeof(*e));
    if (!e) return EDR_ENOMEM;
    edr__v1__event__init(e);

    const char *guid_key = id == 10 ? "SourceProcessGUID" : "ProcessGuid";
    const char *pid_key = id == 10 ? "SourceProcessId" : "ProcessId";
    const char *guid = field(p, guid_key);
    int64_t pid = fnum(p, pid_key);
    if (!guid || !*guid) {
        *bad = guid_key;
        return EDR_EINVAL;
    }
    if (pid < 0 && field(p, pid_key)) {
        *bad = pid_key;
        return EDR_EINVAL;
    }
    e->pid = pid < 0 ? 0 : (uint32_t)pid;
    if (set_id(a, host, guid, e->pid, &e->entity_id)) return EDR_ENOMEM;
    if (!e->entity_id.len) {
        *bad = guid_key;
        return EDR_EINVAL;
    }
    if (id == 10) e->tid = fu32(p, "SourceThreadId");

    switch (id) {
    case 1: {
        BODY(Edr__V1__ProcessStart, edr__v1__process_start__init, process_start,
             EDR__V1__EVENT__BODY_PROCESS_START);
        Edr__V1__ProcessStart *s = e->process_start;
        s->ppid = fu32(p, "ParentProcessId");
        if (set_id(a, host, field(p, "ParentProcessGuid"), s->ppid, &e->parent_entity_id) ||
            !(s->exe = adup(a, fstr(p, "Image"))) ||
            !(s->command_line = adup(a, fstr(p, "CommandLine"))) ||
            !(s->cwd = adup(a, fstr(p, "CurrentDirectory"))) ||
            !(s->user = adup(a, fstr(p, "User"))) ||
            !(s->parent_exe = adup(a, fstr(p, "ParentImage"))) ||
            set_sha256(a, field(p, "Hashes"), &s->exe_sha256))
            return EDR_ENOMEM;
        s->start_time_ns = t;
        learn_create(p, e);
        break;
    }
    case 3: {
        BODY(Edr__V1__Network, edr__v1__network__init, network, EDR__V1__EVENT__BODY_NETWORK);
        Edr__V1__Network *n = e->network;
        const char *proto = fstr(p, "Protocol");
        if (strcasecmp(proto, "tcp") == 0)
            n->protocol = EDR__V1__NETWORK__PROTOCOL__TCP;
        else if (strcasecmp(proto, "udp") == 0)
            n->protocol = EDR__V1__NETWORK__PROTOCOL__UDP;
        const char *init = fstr(p, "Initiated");
        int initiated = strcasecmp(init, "true") == 0 || strcmp(init, "1") == 0;
        n->action =
            initiated ? EDR__V1__NETWORK__ACTION__CONNECT : EDR__V1__NETWORK__ACTION__ACCEPT;
        n->direction = initiated ? EDR__V1__NETWORK__DIRECTION__OUTBOUND
                                 : EDR__V1__NETWORK__DIRECTION__INBOUND;
        Edr__V1__Endpoint *src = edr_arena_alloc(a, sizeof(*src));
        Edr__V1__Endpoint *dst = edr_arena_alloc(a, sizeof(*dst));
        if (!src || !dst) return EDR_ENOMEM;
        edr__v1__endpoint__init(src);
        edr__v1__endpoint__init(dst);
        const char *sip = field(p, "SourceIp"), *dip = field(p, "DestinationIp");
        int rc;
        if ((rc = edr__ip_parse(sip, a, &src->ip)) == EDR_ENOMEM) return rc;
        if (rc && sip && strcmp(sip, "-") != 0 && *sip) {
            *bad = "SourceIp";
            return EDR_EINVAL;
        }
        if ((rc = edr__ip_parse(dip, a, &dst->ip)) == EDR_ENOMEM) return rc;
        if (rc && dip && strcmp(dip, "-") != 0 && *dip) {
            *bad = "DestinationIp";
            return EDR_EINVAL;
        }
        src->port = fu32(p, "SourcePort") & 0xffff;
        dst->port = fu32(p, "DestinationPort") & 0xffff;
        /* Sysmon's source is the initiator: the peer when the actor accepted */
        n->local = initiated ? src : dst;
        n->remote = initiated ? dst : src;
        break;
    }
    case 5:
        BODY(Edr__V1__ProcessExit, edr__v1__process_exit__init, process_exit,
             EDR__V1__EVENT__BODY_PROCESS_EXIT);
        /* Sysmon's event 5 says when, not how: not "exit 0" (review-1206n-import 8) */
        e->process_exit->status_unknown = 1;
        break;
    case 7:
        BODY(Edr__V1__FileExec, edr__v1__file_exec__init, file_exec,
             EDR__V1__EVENT__BODY_FILE_EXEC);
        e->file_exec->mapped = 1;
        if (!(e->file_exec->path = adup(a, fstr(p, "ImageLoaded"))) ||
            set_sha256(a, field(p, "Hashes"), &e->file_exec->sha256))
            return EDR_ENOMEM;
        break;
    case 10: {
        BODY(Edr__V1__ProcessAccess, edr__v1__process_access__init, process_access,
             EDR__V1__EVENT__BODY_PROCESS_ACCESS);
        Edr__V1__ProcessAccess *pa = e->process_access;
        pa->kind = EDR__V1__PROCESS_ACCESS__KIND__OPEN_PROCESS;
        pa->target_pid = fu32(p, "TargetProcessId");
        pa->access_mask = fu32(p, "GrantedAccess");
        if (set_id(a, host, field(p, "TargetProcessGUID"), pa->target_pid, &pa->target_entity_id) ||
            !(pa->target_exe = adup(a, fstr(p, "TargetImage"))))
            return EDR_ENOMEM;
        break;
    }
    case 11:
    case 15:
        BODY(Edr__V1__FileCreate, edr__v1__file_create__init, file_create,
             EDR__V1__EVENT__BODY_FILE_CREATE);
        if (!(e->file_create->path = adup(a, fstr(p, "TargetFilename")))) return EDR_ENOMEM;
        break;
    case 23:
    case 26:
        BODY(Edr__V1__FileDelete, edr__v1__file_delete__init, file_delete,
             EDR__V1__EVENT__BODY_FILE_DELETE);
        if (!(e->file_delete->path = adup(a, fstr(p, "TargetFilename")))) return EDR_ENOMEM;
        break;
    case 22: {
        BODY(Edr__V1__DnsQuery, edr__v1__dns_query__init, dns_query,
             EDR__V1__EVENT__BODY_DNS_QUERY);
        Edr__V1__DnsQuery *q = e->dns_query;
        if (!(q->name = adup(a, fstr(p, "QueryName")))) return EDR_ENOMEM;
        const char *res = fstr(p, "QueryResults");
        size_t cnt = 0;
        for (const char *c = res; *c; c++)
            cnt += *c == ';';
        if (*res) {
            q->answers = edr_arena_alloc(a, (cnt + 1) * sizeof(char *));
            if (!q->answers) return EDR_ENOMEM;
            const char *s = res;
            while (*s && q->n_answers <= cnt) {
                size_t n = strcspn(s, ";");
                size_t b = 0;
                while (b < n && isspace((unsigned char)s[b]))
                    b++;
                size_t l = n;
                while (l > b && isspace((unsigned char)s[l - 1]))
                    l--;
                if (l > b && !(l - b == 1 && s[b] == '-')) {
                    if (!(q->answers[q->n_answers] = edr_arena_dup(a, s + b, l - b)))
                        return EDR_ENOMEM;
                    q->n_answers++;
                }
                s += n;
                if (*s == ';') s++;
            }
        }
        break;
    }
    default:
        return EDR_EINVAL; /* not reached: caller checks mapped_id() */
    }
    if (id != 1) {
        /* a process whose create this stream has not shown (older than the
         * log: java, powershell) is named by its records' image, which the
         * store keeps until a start names it (it showed "- ::" and "no
         * recorded image": review-1206n-import 3) */
        const parent_slot_t *known = map_slot(&p->pmap, e->entity_id.data, 0);
        const char *img = fstr(p, id == 10 ? "SourceImage" : "Image");
        if ((!known || !known->pid) && *img && *img != '<' /* "<unknown process>" */ &&
            !(e->exe = adup(a, img)))
            return EDR_ENOMEM;
        const uint8_t *par = pmap_get(p, e->entity_id.data);
        if (par && !(e->parent_entity_id.data = edr_arena_dup(a, par, EDR_ID_LEN)))
            return EDR_ENOMEM;
        if (par) e->parent_entity_id.len = EDR_ID_LEN;
    }
    *out = e;
    return 0;
}

/* ---- line ------------------------------------------------------------------------- */

static uint64_t utc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bytes of an overlong line read at most per edr_sysmon_read_line call, so
 * that a caller on an event loop (the replay source) gets back to it. */
#define LONG_LINE_STEP (4u << 20)

ssize_t edr_sysmon_read_line(edr_sysmon_parser_t *p, FILE *f, char **buf, size_t *cap,
                             uint64_t lineno)
{
    size_t n = 0, total = 0, lim = p->opts.max_line + 2; /* the record, "\r\n" */
    int c = EOF;
    flockfile(f);
    if (p->skip_rest) { /* the line whose memory ran out (counted by the caller) */
        while (total < LONG_LINE_STEP && (c = getc_unlocked(f)) != EOF) {
            total++;
            if (c == '\n') break;
        }
        if (c != '\n' && c != EOF) {
            funlockfile(f);
            return EDR_EAGAIN;
        }
        p->skip_rest = 0;
        total = 0;
        c = EOF;
    }
    if (p->long_line) { /* the rest of a line already past the limit: read, not kept */
        while (total < LONG_LINE_STEP && (c = getc_unlocked(f)) != EOF) {
            total++;
            if (c == '\n') break;
        }
        funlockfile(f);
        p->long_line += total;
        if (c != '\n' && c != EOF) return EDR_EAGAIN;
        size_t body = p->long_line - (c == '\n');
        p->long_line = 0;
        p->stats.lines++;
        report(p, lineno, EDR_SYSMON_SKIP_TOO_LONG, "line of %zu bytes exceeds the limit of %zu",
               body, p->opts.max_line);
        return 0;
    }
    while ((c = getc_unlocked(f)) != EOF) {
        total++;
        if (n + 1 > *cap) {
            size_t nc = *cap ? *cap * 2 : 4096;
            if (nc > lim) nc = lim;
            char *nb = realloc(*buf, nc);
            if (!nb) { /* the rest of the line is read, not kept, by the next call */
                funlockfile(f);
                p->skip_rest = 1;
                return EDR_ENOMEM;
            }
            *buf = nb;
            *cap = nc;
        }
        (*buf)[n++] = (char)c;
        if (c == '\n' || n == lim) break;
    }
    funlockfile(f);
    if (!total) return EDR_ENOENT;
    if (c != '\n' && n == lim) { /* past the limit: the rest is read by the next calls */
        p->long_line = n;
        return EDR_EAGAIN;
    }
    size_t body = n - (c == '\n') - (c == '\n' && n >= 2 && (*buf)[n - 2] == '\r');
    if (body > p->opts.max_line) {
        p->stats.lines++;
        report(p, lineno, EDR_SYSMON_SKIP_TOO_LONG, "line of %zu bytes exceeds the limit of %zu",
               body, p->opts.max_line);
        return 0;
    }
    return (ssize_t)n;
}

int edr_sysmon_parse_line(edr_sysmon_parser_t *p, const char *line, size_t len, uint64_t lineno,
                          edr_arena_t *a, edr_sysmon_record_t *out)
{
    int rc = 0;
    json_t *root = NULL, *inner = NULL;
    p->stats.lines++;
    p->fields_over = 0;
    size_t body = len; /* the limit is on the record, not its line ending */
    if (body && line[body - 1] == '\n')
        body--;
    if (body && line[body - 1] == '\r')
        body--;
    if (body > p->opts.max_line) {
        report(p, lineno, EDR_SYSMON_SKIP_TOO_LONG, "line of %zu bytes exceeds the limit of %zu",
               body, p->opts.max_line);
        return 0;
    }
    while (len && isspace((unsigned char)line[len - 1]))
        len--;
    size_t lead = 0;
    if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
        lead = 3; /* a UTF-8 byte-order mark, as Windows tools write */
    while (lead < len && isspace((unsigned char)line[lead]))
        lead++;
    if (lead == len) {
        p->stats.skipped[EDR_SYSMON_SKIP_BLANK]++;
        return 0;
    }
    json_error_t jerr;
    root = json_loadb(line + lead, len - lead, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        report(p, lineno, EDR_SYSMON_SKIP_MALFORMED, "bad json at column %d: %s",
               jerr.column + (int)lead, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        report(p, lineno, EDR_SYSMON_SKIP_MALFORMED, "not a json object");
        goto out;
    }
    memset(out, 0, sizeof(*out));

    /* our own lines (a Sysmon export's shapes first: Winlogbeat's records
     * carry ECS fields such as event.action too) */
    if (!json_object_get(root, "SyslogMessage") && !json_object_get(root, "EventData") &&
        !json_is_object(json_object_get(root, "winlog")) && edr__jsonl_is_ecs(root)) {
        char msg[128];
        rc = edr__jsonl_from_json(root, a, &out->event, &out->time_ns, out->host_id, &out->hostname,
                                  msg, sizeof(msg));
        if (rc == EDR_EPARSE) {
            report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD, "json line: %s", msg);
            rc = 0;
            goto out;
        }
        if (rc) goto out;
        out->shape = EDR_SYSMON_SHAPE_ECS;
        rc = 1;
        goto done;
    }

    edr_sysmon_shape_t shape;
    const char *event_id = NULL, *channel = NULL, *provider = NULL, *host = NULL;
    const char *time_fallback = NULL;
    json_t *v;
    if ((v = json_object_get(root, "SyslogMessage")) != NULL) {
        shape = EDR_SYSMON_SHAPE_SYSLOG;
        const char *msg = json_string_value(v);
        const char *pname = json_string_value(json_object_get(root, "ProcessName"));
        if (pname && strcasecmp(pname, "sysmon") != 0) {
            p->stats.skipped[EDR_SYSMON_SKIP_OTHER_CHANNEL]++;
            goto out;
        }
        if (!msg) {
            report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD, "field 'SyslogMessage' is not a string");
            goto out;
        }
        const char *xml = strstr(msg, "<Event");
        if (!xml) {
            if (pname) {
                report(p, lineno, EDR_SYSMON_SKIP_MALFORMED, "sysmon syslog message is not xml");
            } else {
                p->stats.skipped[EDR_SYSMON_SKIP_OTHER_CHANNEL]++;
            }
            goto out;
        }
        xml_sys_t sys;
        int recovered = 0;
        /* a syslog prefix ("sysmon: ") may come before the XML */
        rc = fields_from_xml(p, xml, json_string_length(v) - (size_t)(xml - msg), a, &sys,
                             &recovered);
        if (rc == EDR_ENOMEM) goto out;
        if (rc) {
            rc = 0;
            report(p, lineno, EDR_SYSMON_SKIP_MALFORMED,
                   "syslog message is not a readable sysmon xml event");
            goto out;
        }
        if (recovered) p->stats.xml_recovered++;
        event_id = sys.event_id;
        channel = sys.channel;
        provider = sys.provider;
        host = jget_text(root, "Computer", a);
        if (!host) host = jget_text(root, "HostName", a);
        if (!host) host = sys.computer;
        time_fallback = sys.time_created;
    } else if ((v = json_object_get(root, "EventData")) != NULL ||
               json_is_object(json_object_get(root, "winlog"))) {
        shape = EDR_SYSMON_SHAPE_EVENTDATA;
        json_t *top = root;
        if (!v) { /* Winlogbeat: winlog.{event_data,event_id,channel,computer_name} */
            top = json_object_get(root, "winlog");
            v = json_object_get(top, "event_data");
            event_id = jget_text(top, "event_id", a);
            channel = jget_text(top, "channel", a);
            provider = jget_text(top, "provider_name", a);
            host = jget_text(top, "computer_name", a);
            time_fallback = jget_text(root, "@timestamp", a);
        } else {
            event_id = jget_text(root, "EventID", a);
            channel = jget_text(root, "Channel", a);
            provider = jget_text(root, "Provider", a);
            host = jget_text(root, "Computer", a);
            if (!host) host = jget_text(root, "Hostname", a);
            time_fallback = jget_text(root, "TimeGenerated", a);
        }
        if (channel && !contains_ci(channel, "sysmon")) {
            p->stats.skipped[EDR_SYSMON_SKIP_OTHER_CHANNEL]++;
            goto out;
        }
        if (json_is_string(v)) {
            inner = json_loadb(json_string_value(v), json_string_length(v), JSON_REJECT_DUPLICATES,
                               &jerr);
            if (!inner || !json_is_object(inner)) {
                report(p, lineno, EDR_SYSMON_SKIP_MALFORMED,
                       "field 'EventData' is not a json object string");
                goto out;
            }
            v = inner;
        } else if (!json_is_object(v)) {
            report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD,
                   "field 'EventData' is neither a string nor an object");
            goto out;
        }
        if ((rc = fields_from_json(p, v, a)) != 0) goto out;
    } else if (json_object_get(root, "EventID")) {
        shape = EDR_SYSMON_SHAPE_FLAT;
        event_id = jget_text(root, "EventID", a);
        channel = jget_text(root, "Channel", a);
        provider = jget_text(root, "SourceName", a);
        host = jget_text(root, "Hostname", a);
        if (!host) host = jget_text(root, "Computer", a);
        time_fallback = jget_text(root, "TimeCreated", a);
        if ((rc = fields_from_json(p, root, a)) != 0) goto out;
    } else {
        report(p, lineno, EDR_SYSMON_SKIP_MALFORMED,
               "unknown record shape: no SyslogMessage, EventData, EventID or event.action");
        goto out;
    }

    /* other logs mixed into the export (Windows Security, other syslog sources) */
    if (channel ? !contains_ci(channel, "sysmon")
                : (provider && !contains_ci(provider, "sysmon"))) {
        p->stats.skipped[EDR_SYSMON_SKIP_OTHER_CHANNEL]++;
        goto out;
    }
    char *end = NULL;
    long id = event_id ? strtol(event_id, &end, 10) : -1;
    if (!event_id || end == event_id || *end || id < 0 || id > 65535) {
        report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD, "missing or invalid field 'EventID'");
        goto out;
    }
    if (!mapped_id((int)id)) {
        p->stats.skipped[EDR_SYSMON_SKIP_UNMAPPED]++;
        if (id < 32) p->stats.unmapped_ids[id]++;
        goto out;
    }
    if (!host || !*host) {
        report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD, "missing host name (Computer)");
        goto out;
    }
    if (p->fields_over) {
        report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD,
               "more than %d fields: the record is not read (its fields past them were lost)",
               MAX_FIELDS);
        goto out;
    }
    const char *ut = field(p, "UtcTime");
    uint64_t t = 0;
    if (ut ? edr_jsonl_time_parse(ut, strlen(ut), &t) != 0
           : (!time_fallback || edr_jsonl_time_parse(time_fallback, strlen(time_fallback), &t))) {
        report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD, "missing or invalid field 'UtcTime'");
        goto out;
    }
    edr_host_id_from_name(host, out->host_id);
    const char *bad = NULL;
    rc = build_event(p, (int)id, out->host_id, t, a, &out->event, &bad);
    if (rc == EDR_EINVAL) {
        rc = 0;
        report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD, "event %ld: missing or invalid field '%s'", id,
               bad);
        goto out;
    }
    if (rc) goto out;
    if (!(out->hostname = adup(a, host))) {
        rc = EDR_ENOMEM;
        goto out;
    }
    out->time_ns = t;
    out->shape = shape;
    out->sysmon_id = (int)id;
    rc = 1;
done:
    if (out->time_ns < EDR_TIME_MIN_NS || out->time_ns > utc_now_ns() + EDR_TIME_MAX_AHEAD_NS) {
        /* one such event made the collector refuse its whole batch, up to
         * sensor.batch_events genuine ones with it (review-1206k F7) */
        char ts[40];
        report(p, lineno, EDR_SYSMON_SKIP_BAD_FIELD,
               "time %s is before 2000 or more than a day past this clock",
               edr_jsonl_time_format(out->time_ns, ts));
        rc = 0;
        goto out;
    }
    p->stats.events++;
    p->stats.by_shape[out->shape]++;
    if ((unsigned)out->event->body_case < EDR_EVENT_KINDS)
        p->stats.by_kind[out->event->body_case]++;
out:
    if (rc == EDR_ENOMEM) p->stats.lines--; /* neither an event nor a skip: the caller may retry */
    json_decref(inner);
    json_decref(root);
    p->nfields = 0;
    return rc;
}
