/* Internal helpers shared by the exporters (text, DOT, XML escaping, node views). */
#ifndef EDR_EXPORT_INT_H
#define EDR_EXPORT_INT_H

#include "graph_int.h"

#include <stdio.h>

/* The nodes of an export: root, chain, impact, then context from the pruned edges. */
typedef struct {
    uint32_t *nodes;
    uint8_t *role; /* 0 root, 1 chain, 2 impact, 3 context */
    size_t n;
} edr__view_t;

int edr__collect(const edr_graph_t *g, const edr_rca_t *r, edr__view_t *v);
void edr__view_free(edr__view_t *v);
int edr__view_index(const edr__view_t *v, uint32_t node);

const char *edr__edge_kind_name(int k);
const char *edr__node_kind_name(int k);
void edr__time_iso(uint64_t ns, char *out, size_t outlen);
void edr__clean(const char *s, char *out, size_t outlen);
void edr__label(const edr_graph_t *g, uint32_t n, char *out, size_t outlen, int long_form);
void edr__dot_escape(FILE *f, const char *s);
void edr__xml_escape(FILE *f, const char *s);

/* max_draw: at most that many nodes and edges (0: all); a reduced graph says so in its label. */
int edr__write_dot(const edr_graph_t *g, const edr_rca_t *r, size_t max_draw, FILE *f);
int edr__write_svg(const edr_graph_t *g, const edr_rca_t *r, FILE *f);
int edr__write_html(const edr_graph_t *g, const edr_rca_t *r, const edr_export_opts_t *o, FILE *f);

#endif
