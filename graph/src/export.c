/* Exports of an analysed subgraph: JSON result, text, DOT, GraphML, Cytoscape.js JSON and a STIX 2.1 bundle. */
#include "export_int.h"

#include "edr/err.h"
#include "edr/identity.h"
#include "edr/text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ shared helpers */

const char *edr__edge_kind_name(int k)
{
    static const char *const n[] = {"?",      "fork",   "exec",   "mmap",   "write",  "rename",
                                    "renamed_from", "delete", "connect", "accept", "access", "lateral"};
    return k > 0 && k < EDR_EDGE__COUNT ? n[k] : "?";
}

const char *edr__node_kind_name(int k)
{
    switch (k) {
    case EDR_NODE_PROCESS:
        return "process";
    case EDR_NODE_FILE:
        return "file";
    case EDR_NODE_REMOTE:
        return "remote";
    case EDR_NODE_HOST:
        return "host";
    default:
        return "unknown";
    }
}

void edr__time_iso(uint64_t ns, char *out, size_t outlen)
{
    if (!ns) {
        snprintf(out, outlen, "-");
        return;
    }
    time_t s = (time_t)(ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[32];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03uZ", b, (unsigned)(ns / 1000000ull % 1000));
}

/* Copies s with ill-formed UTF-8 and characters that drive a terminal or
 * reorder text (edr_text_unsafe_cp) replaced by '?' (tab, newline: space):
 * JSON and XML writers reject ill-formed UTF-8, and jansson would drop the
 * whole field. */
void edr__clean(const char *s, char *out, size_t outlen)
{
    size_t n = 0, left = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    while (left && n + 5 < outlen) {
        uint32_t cp;
        size_t k = edr_utf8_next(p, left, &cp);
        if (!k) {
            out[n++] = '?';
            k = 1;
        } else if (cp == '\t' || cp == '\n' || cp == '\r') {
            out[n++] = ' ';
        } else if (edr_text_unsafe_cp(cp)) {
            out[n++] = '?';
        } else {
            memcpy(out + n, p, k);
            n += k;
        }
        p += k;
        left -= k;
    }
    out[n] = '\0';
}

void edr__label(const edr_graph_t *g, uint32_t n, char *out, size_t outlen, int long_form)
{
    edr_graph_node_info_t in;
    if (edr_graph_node(g, n, &in) != 0) {
        snprintf(out, outlen, "?");
        return;
    }
    char ip[64];
    switch (in.kind) {
    case EDR_NODE_PROCESS: {
        const char *exe = *in.executable ? edr__basename(in.executable) : "process";
        if (long_form && *in.command_line)
            snprintf(out, outlen, "%s (%u): %s", exe, in.pid, in.command_line);
        else
            snprintf(out, outlen, "%s (%u)", exe, in.pid);
        break;
    }
    case EDR_NODE_FILE:
        snprintf(out, outlen, "%s", in.path);
        break;
    case EDR_NODE_REMOTE:
        edr__ip_format(in.ip, in.ip_len, ip, sizeof(ip));
        if (in.inbound)
            snprintf(out, outlen, "%s -> local :%u", ip, in.port);
        else
            snprintf(out, outlen, "%s:%u", ip, in.port);
        break;
    case EDR_NODE_HOST:
        snprintf(out, outlen, "host %s", in.hostname);
        break;
    }
}

int edr__collect(const edr_graph_t *g, const edr_rca_t *r, edr__view_t *v)
{
    memset(v, 0, sizeof(*v));
    size_t cap = r->n_chain + r->n_impact + 2 * r->n_edges + 1;
    v->nodes = malloc(cap * sizeof(*v->nodes));
    v->role = malloc(cap * sizeof(*v->role));
    if (!v->nodes || !v->role) {
        edr__view_free(v);
        return EDR_ENOMEM;
    }
    /* role: 0 root, 1 chain, 2 impact, 3 context; a node's first role wins
     * (a bitmap of the nodes added: a linear search per node was quadratic
     * over 200k edges) */
    size_t nn = edr_graph_node_count(g);
    uint8_t *seen = calloc(nn / 8 + 1, 1);
    if (!seen) {
        edr__view_free(v);
        return EDR_ENOMEM;
    }
#define ADD(node, rl)                                                                              \
    do {                                                                                           \
        uint32_t n_ = (node);                                                                      \
        if (n_ < nn && !(seen[n_ >> 3] & (1u << (n_ & 7)))) {                                      \
            seen[n_ >> 3] |= (uint8_t)(1u << (n_ & 7));                                            \
            v->nodes[v->n] = n_;                                                                   \
            v->role[v->n++] = (rl);                                                                \
        }                                                                                          \
    } while (0)
    ADD(r->root, 0);
    for (size_t i = 0; i < r->n_chain; i++)
        ADD(r->chain[i].node, 1);
    for (size_t i = 0; i < r->n_impact; i++)
        ADD(r->impact[i].node, 2);
    for (size_t i = 0; i < r->n_edges; i++) {
        edr_graph_edge_info_t e;
        edr_graph_edge(g, r->edges[i], &e);
        ADD(e.src, 3);
        ADD(e.dst, 3);
    }
    free(seen);
#undef ADD
    return 0;
}

void edr__view_free(edr__view_t *v)
{
    free(v->nodes);
    free(v->role);
    memset(v, 0, sizeof(*v));
}

int edr__view_index(const edr__view_t *v, uint32_t node)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->nodes[i] == node)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------ JSON result */

static json_t *jstr(const char *s)
{
    char buf[8192];
    edr__clean(s, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *node_json(const edr_graph_t *g, uint32_t n, uint64_t t, uint32_t port, const char *role)
{
    edr_graph_node_info_t in;
    json_t *o = json_object();
    if (!o || edr_graph_node(g, n, &in) != 0)
        return o;
    char hex[33], ts[48], ip[64];
    json_object_set_new(o, "entity_id", json_string(edr_hex(in.entity_id, 16, hex)));
    json_object_set_new(o, "kind", json_string(edr__node_kind_name(in.kind)));
    if (role)
        json_object_set_new(o, "role", json_string(role));
    json_object_set_new(o, "hostname", jstr(in.hostname));
    if (in.kind == EDR_NODE_PROCESS) {
        json_object_set_new(o, "pid", json_integer(in.pid));
        json_object_set_new(o, "executable", jstr(in.executable));
        json_object_set_new(o, "command_line", jstr(in.command_line));
        if (*in.user)
            json_object_set_new(o, "user", jstr(in.user));
    } else if (in.kind == EDR_NODE_FILE) {
        json_object_set_new(o, "path", jstr(in.path));
    } else if (in.kind == EDR_NODE_REMOTE) {
        edr__ip_format(in.ip, in.ip_len, ip, sizeof(ip));
        json_object_set_new(o, "remote_ip", json_string(ip));
        json_object_set_new(o, "remote_port", json_integer(in.inbound ? port : in.port));
        json_object_set_new(o, "direction", json_string(in.inbound ? "inbound" : "outbound"));
        if (in.inbound)
            json_object_set_new(o, "local_port", json_integer(in.port));
    }
    if (!t)
        t = in.time_ns;
    edr__time_iso(t, ts, sizeof(ts));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "time_ns", json_integer((json_int_t)t));
    return o;
}

static json_t *items_json(const edr_graph_t *g, const edr_rca_item_t *it, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, node_json(g, it[i].node, it[i].time_ns, it[i].port,
                                           edr_rca_role_name((edr_rca_role_t)it[i].role)));
    return a;
}

int edr_rca_write_json(const edr_graph_t *g, const edr_rca_t *r, FILE *out)
{
    json_t *o = json_object();
    if (!o)
        return EDR_ENOMEM;
    json_t *root = node_json(g, r->root, r->n_chain ? r->chain[0].time_ns : 0, 0, NULL);
    json_object_set_new(root, "class", json_string(edr_rca_class_name(r->cls)));
    json_object_set_new(root, "reason", jstr(r->reason));
    if (r->entry != EDR_GRAPH_NONE) {
        uint32_t port = 0;
        for (size_t i = 0; i < r->n_chain; i++)
            if (r->chain[i].node == r->entry)
                port = r->chain[i].port;
        json_object_set_new(root, "entry", node_json(g, r->entry, r->entry_ns, port, "entry"));
    }
    json_object_set_new(o, "root_cause", root);
    json_object_set_new(o, "start", node_json(g, r->start, r->start_ns, 0, NULL));
    json_object_set_new(o, "chain", items_json(g, r->chain, r->n_chain));
    json_object_set_new(o, "impact", items_json(g, r->impact, r->n_impact));
    json_t *path = json_array();
    for (size_t i = 0; i < r->n_chain; i++)
        if (r->chain[i].on_path) {
            char hex[33];
            edr_graph_node_info_t in;
            edr_graph_node(g, r->chain[i].node, &in);
            json_array_append_new(path, json_string(edr_hex(in.entity_id, 16, hex)));
        }
    json_object_set_new(o, "path", path);
    json_t *st = json_object();
    json_object_set_new(st, "edges_unpruned", json_integer((json_int_t)r->edges_unpruned));
    json_object_set_new(st, "edges_backward", json_integer((json_int_t)r->edges_back));
    json_object_set_new(st, "edges", json_integer((json_int_t)r->n_edges));
    json_object_set_new(st, "nodes_visited", json_integer((json_int_t)r->nodes_visited));
    json_object_set_new(st, "truncated", json_boolean(r->truncated));
    json_object_set_new(o, "stats", st);
    int rc = json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : EDR_EIO;
    fputc('\n', out);
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------ text */

static void text_item(FILE *f, const edr_graph_t *g, const edr_rca_item_t *it)
{
    char ts[48], lab[4096];
    edr__time_iso(it->time_ns, ts, sizeof(ts));
    edr__label(g, it->node, lab, sizeof(lab), 1);
    edr_graph_node_info_t in;
    edr_graph_node(g, it->node, &in);
    fprintf(f, "  %s  %-8s %-7s ", ts, edr_rca_role_name((edr_rca_role_t)it->role),
            edr__node_kind_name(in.kind));
    if (in.kind == EDR_NODE_REMOTE && in.inbound && it->port) {
        char ip[64];
        edr__ip_format(in.ip, in.ip_len, ip, sizeof(ip));
        fprintf(f, "%s:%u -> local :%u", ip, it->port, in.port);
    } else
        edr_text_fput_escaped(f, lab);
    fputc('\n', f);
}

int edr_rca_write_text(const edr_graph_t *g, const edr_rca_t *r, FILE *out)
{
    char lab[4096], hex[33];
    edr_graph_node_info_t in;
    edr_graph_node(g, r->root, &in);
    edr__label(g, r->root, lab, sizeof(lab), 1);
    fprintf(out, "root cause: %s on ", edr_rca_class_name(r->cls));
    edr_text_fput_escaped(out, in.hostname);
    fprintf(out, "\n  ");
    edr_text_fput_escaped(out, lab);
    fprintf(out, "\n  entity %s\n  why: ", edr_hex(in.entity_id, 16, hex));
    edr_text_fput_escaped(out, r->reason);
    fputc('\n', out);
    fprintf(out, "chain (root -> start, %zu entries):\n", r->n_chain);
    for (size_t i = 0; i < r->n_chain; i++)
        text_item(out, g, &r->chain[i]);
    size_t np = 0, nf = 0, nc = 0;
    for (size_t i = 0; i < r->n_impact; i++) {
        edr_graph_node(g, r->impact[i].node, &in);
        np += in.kind == EDR_NODE_PROCESS;
        nf += in.kind == EDR_NODE_FILE;
        nc += in.kind == EDR_NODE_REMOTE;
    }
    fprintf(out, "impact: %zu processes, %zu files, %zu connections\n", np, nf, nc);
    for (size_t i = 0; i < r->n_impact; i++)
        text_item(out, g, &r->impact[i]);
    /* "before" and "after" of the same walk: the subgraph adds the impact's
     * forward edges ("8 edges after pruning (6 before)": review-1206n-import 11) */
    fprintf(out,
            "subgraph: %zu edges; the backward walk kept %zu of the %zu%s it reaches unpruned; "
            "%zu nodes visited%s\n",
            r->n_edges, r->edges_back, r->edges_unpruned, r->edges_unpruned >= 200000 ? "+" : "",
            r->nodes_visited, r->truncated ? ", caps hit" : "");
    return ferror(out) ? EDR_EIO : 0;
}

/* ------------------------------------------------------------ DOT */

/* A DOT label string. Graphviz decodes character references in labels
 * ("&#27;" becomes ESC, "&#x202E;" a right-to-left override in its SVG), so
 * '&' is written "&amp;": telemetry's text stays the text it was. */
void edr__dot_escape(FILE *f, const char *s)
{
    char buf[8192];
    edr__clean(s, buf, sizeof(buf));
    for (const char *p = buf; *p; p++) {
        if (*p == '&') {
            fputs("&amp;", f);
            continue;
        }
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
}

static const char *role_color(int role)
{
    static const char *const c[] = {"#d62728", "#ff7f0e", "#1f77b4", "#7f7f7f"};
    return c[role & 3];
}

int edr__write_dot(const edr_graph_t *g, const edr_rca_t *r, size_t max_draw, FILE *f)
{
    edr__view_t v;
    if (edr__collect(g, r, &v) != 0)
        return EDR_ENOMEM;
    /* reduced: the first max_draw nodes of the view (root, chain, impact,
     * then context) and the edges between them, at most max_draw */
    size_t nn = edr_graph_node_count(g), n_draw = v.n;
    uint8_t *drawn = NULL;
    if (max_draw && (v.n > max_draw || r->n_edges > max_draw)) {
        n_draw = v.n < max_draw ? v.n : max_draw;
        if (!(drawn = calloc(nn / 8 + 1, 1))) {
            edr__view_free(&v);
            return EDR_ENOMEM;
        }
        for (size_t i = 0; i < n_draw; i++)
            drawn[v.nodes[i] >> 3] |= (uint8_t)(1u << (v.nodes[i] & 7));
    }
#define DRAWN(n) (!drawn || ((n) < nn && (drawn[(n) >> 3] & (1u << ((n) & 7)))))
    fprintf(f, "digraph attack {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
               "  edge [fontname=\"Helvetica\", fontsize=8];\n");
    size_t e_draw = 0;
    if (drawn) { /* counted first: the note goes at the top */
        for (size_t i = 0; i < r->n_edges && e_draw < max_draw; i++) {
            edr_graph_edge_info_t e;
            edr_graph_edge(g, r->edges[i], &e);
            e_draw += DRAWN(e.src) && DRAWN(e.dst);
        }
        fprintf(f, "  labelloc=t;\n  label=\"graph reduced: %zu of %zu nodes and %zu of %zu edges drawn "
                   "(root, chain and impact first; the lists hold them all)\";\n",
                n_draw, v.n, e_draw, r->n_edges);
    }
    for (size_t i = 0; i < n_draw; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, v.nodes[i], &in);
        char lab[512];
        edr__label(g, v.nodes[i], lab, sizeof(lab), 0);
        const char *shape = in.kind == EDR_NODE_PROCESS ? "box" : in.kind == EDR_NODE_FILE ? "note" : "ellipse";
        fprintf(f, "  n%u [shape=%s, color=\"%s\", penwidth=%s, label=\"", v.nodes[i], shape,
                role_color(v.role[i]), v.role[i] == 0 ? "3" : "1");
        edr__dot_escape(f, lab);
        if (in.kind == EDR_NODE_PROCESS && *in.command_line) {
            char cl[64];
            snprintf(cl, sizeof(cl), "%.60s", in.command_line);
            fputs("\\n", f);
            edr__dot_escape(f, cl);
        }
        fprintf(f, "\"];\n");
    }
    size_t e_out = 0;
    for (size_t i = 0; i < r->n_edges && (!drawn || e_out < e_draw); i++) {
        edr_graph_edge_info_t e;
        edr_graph_edge(g, r->edges[i], &e);
        if (!DRAWN(e.src) || !DRAWN(e.dst))
            continue;
        e_out++;
        char ts[48];
        edr__time_iso(e.time_ns, ts, sizeof(ts));
        fprintf(f, "  n%u -> n%u [label=\"%s %s\"];\n", e.src, e.dst, edr__edge_kind_name(e.kind),
                ts + (ts[0] == '-' ? 0 : 11));
    }
#undef DRAWN
    fprintf(f, "}\n");
    free(drawn);
    edr__view_free(&v);
    return ferror(f) ? EDR_EIO : 0;
}

/* ------------------------------------------------------------ GraphML */

void edr__xml_escape(FILE *f, const char *s)
{
    char buf[8192];
    edr__clean(s, buf, sizeof(buf));
    for (const char *p = buf; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*p, f);
        }
    }
}

static const char *view_role_name(int r)
{
    static const char *const n[] = {"root", "chain", "impact", "context"};
    return n[r & 3];
}

static int write_graphml(const edr_graph_t *g, const edr_rca_t *r, FILE *f)
{
    edr__view_t v;
    if (edr__collect(g, r, &v) != 0)
        return EDR_ENOMEM;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n");
    static const char *const nkeys[] = {"label", "kind", "role", "entity_id", "pid", "executable",
                                        "command_line", "path", "remote_ip", "remote_port", "time",
                                        "hostname"};
    for (size_t i = 0; i < sizeof(nkeys) / sizeof(nkeys[0]); i++)
        fprintf(f, "  <key id=\"%s\" for=\"node\" attr.name=\"%s\" attr.type=\"string\"/>\n", nkeys[i],
                nkeys[i]);
    fprintf(f, "  <key id=\"ekind\" for=\"edge\" attr.name=\"kind\" attr.type=\"string\"/>\n"
               "  <key id=\"etime\" for=\"edge\" attr.name=\"time\" attr.type=\"string\"/>\n"
               "  <graph id=\"attack\" edgedefault=\"directed\">\n");
    for (size_t i = 0; i < v.n; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, v.nodes[i], &in);
        char lab[4096], hex[33], ts[48], ip[64];
        edr__label(g, v.nodes[i], lab, sizeof(lab), 0);
        edr__time_iso(in.time_ns, ts, sizeof(ts));
        fprintf(f, "    <node id=\"n%u\">\n      <data key=\"label\">", v.nodes[i]);
        edr__xml_escape(f, lab);
        fprintf(f, "</data>\n      <data key=\"kind\">%s</data>\n      <data key=\"role\">%s</data>\n"
                   "      <data key=\"entity_id\">%s</data>\n      <data key=\"time\">%s</data>\n"
                   "      <data key=\"hostname\">",
                edr__node_kind_name(in.kind), view_role_name(v.role[i]), edr_hex(in.entity_id, 16, hex), ts);
        edr__xml_escape(f, in.hostname);
        fprintf(f, "</data>\n");
        if (in.kind == EDR_NODE_PROCESS) {
            fprintf(f, "      <data key=\"pid\">%u</data>\n      <data key=\"executable\">", in.pid);
            edr__xml_escape(f, in.executable);
            fprintf(f, "</data>\n      <data key=\"command_line\">");
            edr__xml_escape(f, in.command_line);
            fprintf(f, "</data>\n");
        } else if (in.kind == EDR_NODE_FILE) {
            fprintf(f, "      <data key=\"path\">");
            edr__xml_escape(f, in.path);
            fprintf(f, "</data>\n");
        } else if (in.kind == EDR_NODE_REMOTE) {
            edr__ip_format(in.ip, in.ip_len, ip, sizeof(ip));
            fprintf(f, "      <data key=\"remote_ip\">%s</data>\n      <data key=\"remote_port\">%u</data>\n", ip,
                    in.port);
        }
        fprintf(f, "    </node>\n");
    }
    for (size_t i = 0; i < r->n_edges; i++) {
        edr_graph_edge_info_t e;
        edr_graph_edge(g, r->edges[i], &e);
        char ts[48];
        edr__time_iso(e.time_ns, ts, sizeof(ts));
        fprintf(f, "    <edge id=\"e%u\" source=\"n%u\" target=\"n%u\"><data key=\"ekind\">%s</data>"
                   "<data key=\"etime\">%s</data></edge>\n",
                r->edges[i], e.src, e.dst, edr__edge_kind_name(e.kind), ts);
    }
    fprintf(f, "  </graph>\n</graphml>\n");
    edr__view_free(&v);
    return ferror(f) ? EDR_EIO : 0;
}

/* ------------------------------------------------------------ Cytoscape.js */

static int write_cyjs(const edr_graph_t *g, const edr_rca_t *r, FILE *f)
{
    edr__view_t v;
    if (edr__collect(g, r, &v) != 0)
        return EDR_ENOMEM;
    json_t *o = json_object(), *els = json_object(), *nodes = json_array(), *edges = json_array();
    for (size_t i = 0; i < v.n; i++) {
        char id[16], lab[4096];
        snprintf(id, sizeof(id), "n%u", v.nodes[i]);
        edr__label(g, v.nodes[i], lab, sizeof(lab), 0);
        json_t *d = node_json(g, v.nodes[i], 0, 0, view_role_name(v.role[i]));
        json_object_set_new(d, "id", json_string(id));
        json_object_set_new(d, "label", jstr(lab));
        json_t *n = json_object();
        json_object_set_new(n, "data", d);
        json_object_set_new(n, "classes", json_string(view_role_name(v.role[i])));
        json_array_append_new(nodes, n);
    }
    for (size_t i = 0; i < r->n_edges; i++) {
        edr_graph_edge_info_t e;
        edr_graph_edge(g, r->edges[i], &e);
        char id[16], s[16], t[16], ts[48];
        snprintf(id, sizeof(id), "e%u", r->edges[i]);
        snprintf(s, sizeof(s), "n%u", e.src);
        snprintf(t, sizeof(t), "n%u", e.dst);
        edr__time_iso(e.time_ns, ts, sizeof(ts));
        json_t *d = json_object();
        json_object_set_new(d, "id", json_string(id));
        json_object_set_new(d, "source", json_string(s));
        json_object_set_new(d, "target", json_string(t));
        json_object_set_new(d, "kind", json_string(edr__edge_kind_name(e.kind)));
        json_object_set_new(d, "time", json_string(ts));
        json_t *n = json_object();
        json_object_set_new(n, "data", d);
        json_array_append_new(edges, n);
    }
    json_object_set_new(els, "nodes", nodes);
    json_object_set_new(els, "edges", edges);
    json_object_set_new(o, "elements", els);
    int rc = json_dumpf(o, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER) == 0 ? 0 : EDR_EIO;
    fputc('\n', f);
    json_decref(o);
    edr__view_free(&v);
    return rc;
}

/* ------------------------------------------------------------ STIX 2.1 */

/* A deterministic UUID (version 5 layout) from a node id and a salt. */
static void stix_id(const char *type, const uint8_t id[16], uint8_t salt, char *out, size_t outlen)
{
    uint8_t u[16];
    memcpy(u, id, 16);
    u[0] ^= salt;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x50);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, outlen, "%s--%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", type,
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

static const char *sco_type(const edr_graph_node_info_t *in)
{
    if (in->kind == EDR_NODE_PROCESS)
        return "process";
    if (in->kind == EDR_NODE_FILE)
        return "file";
    if (in->kind == EDR_NODE_REMOTE) {
        static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return in->ip_len == 4 || (in->ip_len == 16 && !memcmp(in->ip, v4map, 12)) ? "ipv4-addr" : "ipv6-addr";
    }
    return NULL;
}

static int write_stix(const edr_graph_t *g, const edr_rca_t *r, FILE *f)
{
    edr__view_t v;
    if (edr__collect(g, r, &v) != 0)
        return EDR_ENOMEM;
    json_t *bundle = json_object(), *objs = json_array(), *refs = json_array();
    char now[48], first[48], last[48], sid[80], bid[80];
    edr__time_iso((uint64_t)time(NULL) * 1000000000ull, now, sizeof(now));
    uint64_t t_first = UINT64_MAX, t_last = 0;
    edr_graph_node_info_t rin;
    edr_graph_node(g, r->root, &rin);
    for (size_t i = 0; i < v.n; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, v.nodes[i], &in);
        const char *ty = sco_type(&in);
        if (!ty)
            continue;
        if (in.time_ns && in.time_ns < t_first)
            t_first = in.time_ns;
        if (in.last_ns > t_last)
            t_last = in.last_ns;
        json_t *o = json_object();
        stix_id(ty, in.entity_id, 0, sid, sizeof(sid));
        json_object_set_new(o, "type", json_string(ty));
        json_object_set_new(o, "spec_version", json_string("2.1"));
        json_object_set_new(o, "id", json_string(sid));
        if (in.kind == EDR_NODE_PROCESS) {
            json_object_set_new(o, "pid", json_integer(in.pid));
            if (*in.command_line)
                json_object_set_new(o, "command_line", jstr(in.command_line));
            if (in.time_ns) {
                char ts[48];
                edr__time_iso(in.time_ns, ts, sizeof(ts));
                json_object_set_new(o, "created_time", json_string(ts));
            }
            if (*in.executable) {
                /* the image as its own file object */
                json_t *img = json_object();
                char fid[80];
                stix_id("file", in.entity_id, 0x5a, fid, sizeof(fid));
                json_object_set_new(img, "type", json_string("file"));
                json_object_set_new(img, "spec_version", json_string("2.1"));
                json_object_set_new(img, "id", json_string(fid));
                json_object_set_new(img, "name", jstr(edr__basename(in.executable)));
                json_array_append_new(objs, img);
                json_array_append_new(refs, json_string(fid));
                json_object_set_new(o, "image_ref", json_string(fid));
            }
            if (in.parent != EDR_GRAPH_NONE && edr__view_index(&v, in.parent) >= 0) {
                edr_graph_node_info_t pin;
                edr_graph_node(g, in.parent, &pin);
                char pid[80];
                stix_id("process", pin.entity_id, 0, pid, sizeof(pid));
                json_object_set_new(o, "parent_ref", json_string(pid));
            }
        } else if (in.kind == EDR_NODE_FILE) {
            json_object_set_new(o, "name", jstr(edr__basename(in.path)));
            json_object_set_new(o, "x_edr_path", jstr(in.path));
        } else {
            char ip[64];
            edr__ip_format(in.ip, in.ip_len, ip, sizeof(ip));
            json_object_set_new(o, "value", json_string(ip));
        }
        json_array_append_new(objs, o);
        json_array_append_new(refs, json_string(sid));
    }
    /* network traffic of connect / accept edges between the objects */
    for (size_t i = 0; i < r->n_edges; i++) {
        edr_graph_edge_info_t e;
        edr_graph_edge(g, r->edges[i], &e);
        if (e.kind != EDR_EDGE_CONNECT && e.kind != EDR_EDGE_ACCEPT)
            continue;
        uint32_t remote = e.kind == EDR_EDGE_CONNECT ? e.dst : e.src;
        edr_graph_node_info_t rn;
        edr_graph_node(g, remote, &rn);
        uint8_t eid[16];
        memcpy(eid, rn.entity_id, 16);
        memcpy(eid, &r->edges[i], 4);
        char nid[80], rid[80];
        stix_id("network-traffic", eid, 0x77, nid, sizeof(nid));
        stix_id(sco_type(&rn), rn.entity_id, 0, rid, sizeof(rid));
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("network-traffic"));
        json_object_set_new(o, "spec_version", json_string("2.1"));
        json_object_set_new(o, "id", json_string(nid));
        json_object_set_new(o, e.kind == EDR_EDGE_CONNECT ? "dst_ref" : "src_ref", json_string(rid));
        json_object_set_new(o, e.kind == EDR_EDGE_CONNECT ? "dst_port" : "src_port",
                            json_integer(e.kind == EDR_EDGE_CONNECT ? rn.port : e.aux));
        if (e.kind == EDR_EDGE_ACCEPT)
            json_object_set_new(o, "dst_port", json_integer(rn.port));
        json_t *pr = json_array();
        json_array_append_new(pr, json_string("tcp"));
        json_object_set_new(o, "protocols", pr);
        json_array_append_new(objs, o);
        json_array_append_new(refs, json_string(nid));
    }
    edr__time_iso(t_first == UINT64_MAX ? 0 : t_first, first, sizeof(first));
    edr__time_iso(t_last, last, sizeof(last));
    if (first[0] == '-')
        snprintf(first, sizeof(first), "%s", now);
    if (last[0] == '-')
        snprintf(last, sizeof(last), "%s", first);
    char od[80];
    stix_id("observed-data", rin.entity_id, 0x0d, od, sizeof(od));
    json_t *obs = json_object();
    json_object_set_new(obs, "type", json_string("observed-data"));
    json_object_set_new(obs, "spec_version", json_string("2.1"));
    json_object_set_new(obs, "id", json_string(od));
    json_object_set_new(obs, "created", json_string(now));
    json_object_set_new(obs, "modified", json_string(now));
    json_object_set_new(obs, "first_observed", json_string(first));
    json_object_set_new(obs, "last_observed", json_string(last));
    json_object_set_new(obs, "number_observed", json_integer(1));
    json_object_set_new(obs, "object_refs", refs);
    json_array_append_new(objs, obs);
    /* indicators: the entry peer and every process image of the chain */
    int k = 0;
    for (size_t i = 0; i < r->n_chain; i++) {
        edr_graph_node_info_t in;
        edr_graph_node(g, r->chain[i].node, &in);
        char pat[1024], val[700];
        if (in.kind == EDR_NODE_REMOTE && (r->chain[i].role == EDR_ROLE_ENTRY || r->chain[i].role == EDR_ROLE_NETWORK)) {
            char ip[64];
            edr__ip_format(in.ip, in.ip_len, ip, sizeof(ip));
            snprintf(pat, sizeof(pat), "[%s:value = '%s']", sco_type(&in), ip);
        } else if (in.kind == EDR_NODE_FILE) {
            char cl[600];
            edr__clean(edr__basename(in.path), cl, sizeof(cl));
            size_t n = 0;
            for (const char *p = cl; *p && n + 3 < sizeof(val); p++) {
                if (*p == '\'' || *p == '\\')
                    val[n++] = '\\';
                val[n++] = *p;
            }
            val[n] = '\0';
            snprintf(pat, sizeof(pat), "[file:name = '%s']", val);
        } else
            continue;
        char iid[80], rid[80];
        stix_id("indicator", in.entity_id, 0x11, iid, sizeof(iid));
        json_t *ind = json_object();
        json_object_set_new(ind, "type", json_string("indicator"));
        json_object_set_new(ind, "spec_version", json_string("2.1"));
        json_object_set_new(ind, "id", json_string(iid));
        json_object_set_new(ind, "created", json_string(now));
        json_object_set_new(ind, "modified", json_string(now));
        json_object_set_new(ind, "name", json_string(in.kind == EDR_NODE_REMOTE ? "attack peer" : "attack file"));
        json_object_set_new(ind, "indicator_types", json_pack("[s]", "malicious-activity"));
        json_object_set_new(ind, "pattern", jstr(pat));
        json_object_set_new(ind, "pattern_type", json_string("stix"));
        json_object_set_new(ind, "valid_from", json_string(first));
        json_array_append_new(objs, ind);
        stix_id("relationship", in.entity_id, (uint8_t)(0x22 + k++), rid, sizeof(rid));
        json_t *rel = json_object();
        json_object_set_new(rel, "type", json_string("relationship"));
        json_object_set_new(rel, "spec_version", json_string("2.1"));
        json_object_set_new(rel, "id", json_string(rid));
        json_object_set_new(rel, "created", json_string(now));
        json_object_set_new(rel, "modified", json_string(now));
        json_object_set_new(rel, "relationship_type", json_string("based-on"));
        json_object_set_new(rel, "source_ref", json_string(iid));
        json_object_set_new(rel, "target_ref", json_string(od));
        json_array_append_new(objs, rel);
    }
    stix_id("bundle", rin.entity_id, 0xb0, bid, sizeof(bid));
    json_object_set_new(bundle, "type", json_string("bundle"));
    json_object_set_new(bundle, "id", json_string(bid));
    json_object_set_new(bundle, "objects", objs);
    int rc = json_dumpf(bundle, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER) == 0 ? 0 : EDR_EIO;
    fputc('\n', f);
    json_decref(bundle);
    edr__view_free(&v);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

int edr_export_format_parse(const char *s, edr_export_format_t *out)
{
    static const struct {
        const char *n;
        edr_export_format_t f;
    } m[] = {{"dot", EDR_EXPORT_DOT},   {"graphml", EDR_EXPORT_GRAPHML}, {"json", EDR_EXPORT_CYJS},
             {"cyjs", EDR_EXPORT_CYJS}, {"stix", EDR_EXPORT_STIX},       {"svg", EDR_EXPORT_SVG},
             {"html", EDR_EXPORT_HTML}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(s, m[i].n) == 0) {
            *out = m[i].f;
            return 0;
        }
    return EDR_EINVAL;
}

int edr_rca_export(const edr_graph_t *g, const edr_rca_t *r, edr_export_format_t fmt,
                   const edr_export_opts_t *opts, FILE *out)
{
    switch (fmt) {
    case EDR_EXPORT_DOT:
        return edr__write_dot(g, r, 0, out);
    case EDR_EXPORT_GRAPHML:
        return write_graphml(g, r, out);
    case EDR_EXPORT_CYJS:
        return write_cyjs(g, r, out);
    case EDR_EXPORT_STIX:
        return write_stix(g, r, out);
    case EDR_EXPORT_SVG:
        return edr__write_svg(g, r, out);
    case EDR_EXPORT_HTML:
        return edr__write_html(g, r, opts, out);
    }
    return EDR_EINVAL;
}
