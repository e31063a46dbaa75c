/* SVG rendering through libgvc (graphviz) and the self-contained HTML incident card. */
#include "export_int.h"

#include "edr/err.h"
#include "edr/identity.h"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One graphviz context for the process, and one render at a time (graphviz
 * is not thread-safe). A context per render freed its font dictionary after
 * each one, while graphviz's pango text layout keeps a pointer to the last
 * font name it measured and compares the next one with it: the second render
 * of a process read freed memory (ASan, test_graph's test_exports_escape). */
static pthread_mutex_t gv_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gv_ctx;

/* The most nodes, and edges, drawn: the dot layout is superlinear in a dense
 * graph (a crafted 1,079-edge subgraph of processes mapping one another's
 * files took 3 min 19 s, 7,363 edges more than 30 min; a 4,096-edge star
 * 6 s). Past it the picture is reduced, root, chain and impact first, and
 * says so; the card's lists still hold every node. */
#define RENDER_MAX 250

/* Renders the DOT export with the dot layout into an SVG document held in
 * *svg (caller frees with free()). 0, EDR_ENOMEM or EDR_EUNSUPPORTED. */
static int render_svg(const edr_graph_t *g, const edr_rca_t *r, char **svg, size_t *svg_len)
{
    char *dot = NULL;
    size_t dot_len = 0;
    int rc = 0;
    GVC_t *gvc = NULL;
    Agraph_t *ag = NULL;
    char *data = NULL;
    unsigned int len = 0;
    FILE *m = open_memstream(&dot, &dot_len);
    if (!m)
        return EDR_ENOMEM;
    rc = edr__write_dot(g, r, RENDER_MAX, m);
    fclose(m);
    if (rc) {
        free(dot);
        return rc;
    }
    pthread_mutex_lock(&gv_lock);
    if (!gv_ctx)
        gv_ctx = gvContext();
    if (!(gvc = gv_ctx)) {
        rc = EDR_EUNSUPPORTED;
        goto out;
    }
    ag = agmemread(dot);
    if (!ag) {
        rc = EDR_EUNSUPPORTED;
        goto out;
    }
    if (gvLayout(gvc, ag, "dot") != 0) {
        rc = EDR_EUNSUPPORTED;
        goto out;
    }
    if (gvRenderData(gvc, ag, "svg", &data, &len) != 0 || !data) {
        gvFreeLayout(gvc, ag);
        rc = EDR_EUNSUPPORTED;
        goto out;
    }
    gvFreeLayout(gvc, ag);
    *svg = malloc((size_t)len + 1);
    if (!*svg) {
        rc = EDR_ENOMEM;
        goto out;
    }
    memcpy(*svg, data, len);
    (*svg)[len] = '\0';
    *svg_len = len;
out:
    if (data)
        gvFreeRenderData(data);
    if (ag)
        agclose(ag);
    pthread_mutex_unlock(&gv_lock);
    free(dot);
    return rc;
}

int edr__write_svg(const edr_graph_t *g, const edr_rca_t *r, FILE *f)
{
    char *svg = NULL;
    size_t len = 0;
    int rc = render_svg(g, r, &svg, &len);
    if (rc)
        return rc;
    rc = fwrite(svg, 1, len, f) == len ? 0 : EDR_EIO;
    free(svg);
    return rc;
}

static void html_item_row(FILE *f, const edr_graph_t *g, const edr_rca_item_t *it)
{
    char ts[48], lab[4096];
    edr_graph_node_info_t in;
    edr_graph_node(g, it->node, &in);
    edr__time_iso(it->time_ns, ts, sizeof(ts));
    edr__label(g, it->node, lab, sizeof(lab), 0);
    fprintf(f, "<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td>", edr_rca_role_name((edr_rca_role_t)it->role),
            ts, edr_rca_role_name((edr_rca_role_t)it->role), edr__node_kind_name(in.kind));
    edr__xml_escape(f, lab);
    fprintf(f, "</td><td><code>");
    if (in.kind == EDR_NODE_PROCESS)
        edr__xml_escape(f, in.command_line);
    else if (in.kind == EDR_NODE_REMOTE && it->port)
        fprintf(f, "%s port %u", in.inbound ? "from" : "to", it->port);
    fprintf(f, "</code></td></tr>\n");
}

static int cmp_time(const void *a, const void *b)
{
    const edr_rca_item_t *x = *(const edr_rca_item_t *const *)a, *y = *(const edr_rca_item_t *const *)b;
    return x->time_ns < y->time_ns ? -1 : x->time_ns > y->time_ns;
}

static const char *verb(const edr_graph_t *g, const edr_rca_item_t *it)
{
    if (it->edge == EDR_GRAPH_NONE)
        return "first seen";
    edr_graph_edge_info_t e;
    edr_graph_edge(g, it->edge, &e);
    switch (e.kind) {
    case EDR_EDGE_FORK:
        return "process started";
    case EDR_EDGE_EXEC:
        return "executed";
    case EDR_EDGE_WRITE:
        return "file written";
    case EDR_EDGE_RENAME:
        return "file renamed";
    case EDR_EDGE_DELETE:
        return "file deleted";
    case EDR_EDGE_CONNECT:
        return "connection made";
    case EDR_EDGE_ACCEPT:
        return "connection accepted";
    case EDR_EDGE_LATERAL:
        return "moved to another host";
    case EDR_EDGE_ACCESS:
        return "process accessed";
    default:
        return edr__edge_kind_name(e.kind);
    }
}

int edr__write_html(const edr_graph_t *g, const edr_rca_t *r, const edr_export_opts_t *o, FILE *f)
{
    char *svg = NULL;
    size_t svg_len = 0;
    int svg_rc = render_svg(g, r, &svg, &svg_len);
    edr_graph_node_info_t rin;
    edr_graph_node(g, r->root, &rin);
    char lab[4096], ts[48], hex[33], title[512];
    edr__label(g, r->root, lab, sizeof(lab), 0);
    if (o && o->title)
        snprintf(title, sizeof(title), "%s", o->title);
    else
        snprintf(title, sizeof(title), "Attack on %.100s: %s via %.300s", rin.hostname, edr_rca_class_name(r->cls), lab);
    uint64_t created = o && o->created_ns ? o->created_ns : (uint64_t)time(NULL) * 1000000000ull;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
               "<title>");
    edr__xml_escape(f, title);
    fprintf(f, "</title>\n<style>\n"
               "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}\n"
               "h1{font-size:22px;border-bottom:3px solid #d62728;padding-bottom:6px}\n"
               "h2{font-size:17px;margin-top:28px;color:#444}\n"
               "table{border-collapse:collapse;width:100%%;font-size:13px}\n"
               "td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}\n"
               "th{background:#f0f0f0}\ncode{white-space:pre-wrap;word-break:break-all}\n"
               ".root{background:#fde0e0}.path{background:#fff1df}.entry{background:#e7f0fb}\n"
               ".summary td:first-child{width:180px;font-weight:bold}\n"
               ".graph{border:1px solid #ccc;overflow:auto;padding:8px}\n"
               "</style></head><body>\n<h1>");
    edr__xml_escape(f, title);
    fprintf(f, "</h1>\n<h2>Summary</h2>\n<table class=\"summary\">\n<tr><td>Host</td><td>");
    edr__xml_escape(f, rin.hostname);
    edr__time_iso(created, ts, sizeof(ts));
    fprintf(f, "</td></tr>\n<tr><td>Card created</td><td>%s</td></tr>\n", ts);
    uint64_t t0 = UINT64_MAX, t1 = 0;
    for (size_t i = 0; i < r->n_chain; i++) {
        if (r->chain[i].time_ns && r->chain[i].time_ns < t0)
            t0 = r->chain[i].time_ns;
        if (r->chain[i].time_ns > t1)
            t1 = r->chain[i].time_ns;
    }
    edr__time_iso(t0 == UINT64_MAX ? 0 : t0, ts, sizeof(ts));
    fprintf(f, "<tr><td>First attack event</td><td>%s</td></tr>\n", ts);
    edr__time_iso(t1, ts, sizeof(ts));
    fprintf(f, "<tr><td>Last attack event</td><td>%s</td></tr>\n", ts);
    fprintf(f, "<tr><td>Chain</td><td>%zu entries</td></tr>\n<tr><td>Impact</td><td>%zu entries</td></tr>\n",
            r->n_chain, r->n_impact);
    fprintf(f, "</table>\n<h2>Root cause</h2>\n<table class=\"summary\">\n"
               "<tr><td>Class</td><td>%s</td></tr>\n<tr><td>Entity</td><td>",
            edr_rca_class_name(r->cls));
    edr__xml_escape(f, lab);
    fprintf(f, " <code>%s</code></td></tr>\n", edr_hex(rin.entity_id, 16, hex));
    if (rin.kind == EDR_NODE_PROCESS) {
        fprintf(f, "<tr><td>Command line</td><td><code>");
        edr__xml_escape(f, rin.command_line);
        fprintf(f, "</code></td></tr>\n");
    }
    if (r->entry != EDR_GRAPH_NONE) {
        edr__label(g, r->entry, lab, sizeof(lab), 1);
        fprintf(f, "<tr><td>Entry</td><td>");
        edr__xml_escape(f, lab);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "<tr><td>Why</td><td>");
    edr__xml_escape(f, r->reason);
    fprintf(f, "</td></tr>\n</table>\n<h2>Attack chain (root to alert)</h2>\n<table>\n"
               "<tr><th>Time</th><th>Role</th><th>Kind</th><th>Entity</th><th>Detail</th></tr>\n");
    for (size_t i = 0; i < r->n_chain; i++)
        html_item_row(f, g, &r->chain[i]);
    fprintf(f, "</table>\n<h2>Timeline</h2>\n<table>\n<tr><th>Time</th><th>What</th><th>Entity</th></tr>\n");
    size_t nt = r->n_chain + r->n_impact;
    const edr_rca_item_t **tl = malloc((nt ? nt : 1) * sizeof(*tl));
    if (tl) {
        for (size_t i = 0; i < r->n_chain; i++)
            tl[i] = &r->chain[i];
        for (size_t i = 0; i < r->n_impact; i++)
            tl[r->n_chain + i] = &r->impact[i];
        qsort(tl, nt, sizeof(*tl), cmp_time);
        for (size_t i = 0; i < nt; i++) {
            if (i && tl[i]->node == tl[i - 1]->node && tl[i]->time_ns == tl[i - 1]->time_ns)
                continue;
            edr__time_iso(tl[i]->time_ns, ts, sizeof(ts));
            edr__label(g, tl[i]->node, lab, sizeof(lab), 1);
            fprintf(f, "<tr><td>%s</td><td>%s</td><td><code>", ts, verb(g, tl[i]));
            edr__xml_escape(f, lab);
            fprintf(f, "</code></td></tr>\n");
        }
        free(tl);
    }
    fprintf(f, "</table>\n<h2>Impact</h2>\n<table>\n"
               "<tr><th>Time</th><th>Role</th><th>Kind</th><th>Entity</th><th>Detail</th></tr>\n");
    for (size_t i = 0; i < r->n_impact; i++)
        html_item_row(f, g, &r->impact[i]);
    fprintf(f, "</table>\n<h2>Graph</h2>\n<div class=\"graph\">\n");
    if (svg_rc == 0) {
        const char *s = strstr(svg, "<svg");
        fputs(s ? s : "", f);
    } else
        fprintf(f, "<p>graph rendering unavailable: %s</p>\n", edr_strerror(svg_rc));
    fprintf(f, "</div>\n<h2>Actions taken</h2>\n<ul>\n");
    if (o && o->n_actions)
        for (size_t i = 0; i < o->n_actions; i++) {
            fprintf(f, "<li>");
            edr__xml_escape(f, o->actions[i]);
            fprintf(f, "</li>\n");
        }
    else
        fprintf(f, "<li>none recorded</li>\n");
    fprintf(f,
            "</ul>\n<p><small>subgraph: %zu edges; the backward walk kept %zu of the %zu it "
            "reaches unpruned%s</small></p>\n</body></html>\n",
            r->n_edges, r->edges_back, r->edges_unpruned, r->truncated ? " (caps hit)" : "");
    free(svg);
    return ferror(f) ? EDR_EIO : 0;
}
