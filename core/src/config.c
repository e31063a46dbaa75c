/* Configuration: a fixed table of typed settings plus pass-through maps, loaded from YAML. */
#include "edr/config.h"
#include "edr/err.h"
#include "edr/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

typedef enum { T_STR, T_INT, T_BOOL, T_SIZE, T_DURATION, T_LEVEL } stype_t;

typedef struct {
    const char *key;
    stype_t type;
    const char *def;
    const char *min; /* INT, SIZE, DURATION: bounds written as values; "": none */
    const char *max;
    const char *help;
} setting_t;

static const setting_t settings[] = {
#define S(k, t, d, lo, hi, h) {k, T_##t, d, lo, hi, h},
#include "settings.def"
#undef S
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Maps whose keys are free-form and pass through unchecked. */
static const char *const passthrough[] = {"kafka.properties."};
#define MAX_PASSTHROUGH 1024 /* entries in all pass-through maps together */

/* The consumers cast durations (uint64 ns) to int64: the largest whole number
 * of days that fits. */
#define DURATION_MAX "106751d"

/* EDR_ environment variables that are not settings: the configuration file,
 * build, bench and test knobs. edr_config_load_env does not warn about them. */
static const char *const env_not_settings[] = {
    "EDR_CONFIG",     "EDR_BUILD",      "EDR_WERROR",   "EDR_SANITIZE", "EDR_FUZZ",
    "EDR_DATASETS",   "EDR_SHARED_DIR", "EDR_DEMO_OUT", "EDR_BIN_DIR",  "EDR_SOURCE_DIR",
    "EDR_ZSTD_LEVEL", "EDR_BPF_GEN",    "EDR_BPF_ARCH", "EDR_BTF_FILE", "EDR_BPFTOOL",
    "EDR_PROTOS",     "EDR_CLANG",
};
#define ENV_TEST_PREFIX "EDR_TEST_" /* test knobs: EDR_TEST_SEED, EDR_TEST_KEEP_LOGS, ... */

typedef struct kv {
    char *key;
    char *value;
    struct kv *next;
} kv_t;

struct edr_config {
    char *values[N_SETTINGS];
    kv_t *extra;    /* pass-through entries, in insertion order */
    size_t n_extra; /* at most MAX_PASSTHROUGH */
};

typedef struct {
    const char *suffix;
    uint64_t mult;
} unit_t;

/* Digits, optional spaces (when `spaces`), then one of the units' suffixes;
 * a bare 0 needs no unit. Overflow and anything else: EDR_EINVAL. */
static int parse_scaled(const char *s, const unit_t *units, size_t n_units, int spaces, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return EDR_EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return EDR_EINVAL;
    while (spaces && *end == ' ')
        end++;
    if (*end == 0 && v == 0) {
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return EDR_EINVAL;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return EDR_EINVAL;
}

int edr_parse_size(const char *s, uint64_t *out)
{
    static const unit_t units[] = {{"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
                                   {"TiB", 1ull << 40}, {"KB", 1000},        {"MB", 1000000},
                                   {"GB", 1000000000},  {"K", 1ull << 10},   {"M", 1ull << 20},
                                   {"G", 1ull << 30},   {"B", 1},            {"", 1}};
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 1, out);
}

int edr_parse_duration(const char *s, uint64_t *out_ns)
{
    static const unit_t units[] = {{"ns", 1},
                                   {"us", 1000},
                                   {"ms", 1000000},
                                   {"s", 1000000000ull},
                                   {"m", 60ull * 1000000000ull},
                                   {"h", 3600ull * 1000000000ull},
                                   {"d", 86400ull * 1000000000ull}};
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 0, out_ns);
}

static int find_setting(const char *key)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return (int)i;
    return -1;
}

static const char *type_hint(stype_t t)
{
    switch (t) {
    case T_INT:
        return "an integer";
    case T_BOOL:
        return "true or false";
    case T_SIZE:
        return "a size like 64MiB";
    case T_DURATION:
        return "a duration like 100ms, 10s, 8h or 30d";
    case T_LEVEL:
        return "one of error, warn, info, debug";
    default:
        return "a string";
    }
}

static int check_syntax(stype_t t, const char *v)
{
    uint64_t u;
    char *end;
    switch (t) {
    case T_INT:
        errno = 0;
        (void)strtoll(v, &end, 10);
        return (*v && *end == 0 && !errno) ? 0 : EDR_EINVAL;
    case T_BOOL:
        return (!strcmp(v, "true") || !strcmp(v, "false") || !strcmp(v, "yes") ||
                !strcmp(v, "no") || !strcmp(v, "1") || !strcmp(v, "0"))
                   ? 0
                   : EDR_EINVAL;
    case T_SIZE:
        return edr_parse_size(v, &u);
    case T_DURATION:
        return edr_parse_duration(v, &u);
    case T_LEVEL: {
        edr_log_level_t l;
        return edr_log_level_parse(v, &l);
    }
    default:
        return 0;
    }
}

static const char *range_max(const setting_t *s)
{
    return (*s->max || s->type != T_DURATION) ? s->max : DURATION_MAX;
}

/* -1, 0 or 1 as a < b, for two syntactically valid values of type t. */
static int compare_value(stype_t t, const char *a, const char *b)
{
    if (t == T_INT) {
        long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
        return (x > y) - (x < y);
    }
    uint64_t x = 0, y = 0;
    if (t == T_SIZE) {
        edr_parse_size(a, &x);
        edr_parse_size(b, &y);
    } else {
        edr_parse_duration(a, &x);
        edr_parse_duration(b, &y);
    }
    return (x > y) - (x < y);
}

/* 0, EDR_EINVAL (not of the setting's type) or EDR_ERANGE (outside min..max). */
static int check_value(const setting_t *s, const char *v)
{
    int rc = check_syntax(s->type, v);
    if (rc || (s->type != T_INT && s->type != T_SIZE && s->type != T_DURATION))
        return rc;
    if (*s->min && compare_value(s->type, v, s->min) < 0)
        return EDR_ERANGE;
    if (*range_max(s) && compare_value(s->type, v, range_max(s)) > 0)
        return EDR_ERANGE;
    return 0;
}

edr_config_t *edr_config_new(void)
{
    edr_config_t *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        cfg->values[i] = strdup(settings[i].def);
        if (!cfg->values[i]) {
            edr_config_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void edr_config_destroy(edr_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_SETTINGS; i++)
        free(cfg->values[i]);
    kv_t *e = cfg->extra;
    while (e) {
        kv_t *n = e->next;
        free(e->key);
        free(e->value);
        free(e);
        e = n;
    }
    free(cfg);
}

static int is_passthrough(const char *key)
{
    for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++) {
        size_t l = strlen(passthrough[i]);
        if (strncmp(key, passthrough[i], l) == 0 && key[l])
            return 1;
    }
    return 0;
}

int edr_config_set(edr_config_t *cfg, const char *key, const char *value, const char *origin,
                   char *err, size_t errlen)
{
    if (is_passthrough(key)) {
        kv_t **pp = &cfg->extra;
        for (; *pp; pp = &(*pp)->next) {
            if (strcmp((*pp)->key, key) == 0) {
                char *v = strdup(value);
                if (!v)
                    return EDR_ENOMEM;
                free((*pp)->value);
                (*pp)->value = v;
                return 0;
            }
        }
        if (cfg->n_extra >= MAX_PASSTHROUGH) {
            snprintf(err, errlen, "%s: %s: too many kafka.properties entries (at most %d)", origin,
                     key, MAX_PASSTHROUGH);
            return EDR_ECONFIG;
        }
        kv_t *e = calloc(1, sizeof(*e));
        if (!e || !(e->key = strdup(key)) || !(e->value = strdup(value))) {
            if (e)
                free(e->key);
            free(e);
            return EDR_ENOMEM;
        }
        *pp = e;
        cfg->n_extra++;
        return 0;
    }
    int i = find_setting(key);
    if (i < 0) {
        snprintf(err, errlen, "%s: %s: unknown setting", origin, key);
        return EDR_ECONFIG;
    }
    int crc = check_value(&settings[i], value);
    if (crc == EDR_ERANGE) {
        snprintf(err, errlen, "%s: %s: '%s' is out of range %s..%s", origin, key, value,
                 *settings[i].min ? settings[i].min : "0", range_max(&settings[i]));
        return EDR_ECONFIG;
    }
    if (crc != 0) {
        snprintf(err, errlen, "%s: %s: '%s' is not %s", origin, key, value,
                 type_hint(settings[i].type));
        return EDR_ECONFIG;
    }
    char *v = strdup(value);
    if (!v)
        return EDR_ENOMEM;
    free(cfg->values[i]);
    cfg->values[i] = v;
    return 0;
}

int edr_config_set_kv(edr_config_t *cfg, const char *kv, const char *origin, char *err,
                      size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        snprintf(err, errlen, "%s: '%s': expected key=value", origin, kv);
        return EDR_ECONFIG;
    }
    char key[256];
    size_t kl = (size_t)(eq - kv);
    if (kl >= sizeof(key)) {
        snprintf(err, errlen, "%s: setting name too long", origin);
        return EDR_ECONFIG;
    }
    memcpy(key, kv, kl);
    key[kl] = 0;
    return edr_config_set(cfg, key, eq + 1, origin, err, errlen);
}

/* One file's walk: where errors point, which nodes were reached (a node
 * reached twice is an alias), and every full key set with its line (a key
 * given twice is an error; libyaml does not check). */
typedef struct {
    edr_config_t *cfg;
    yaml_document_t *doc;
    const char *path;
    unsigned char *seen_node; /* by node index - 1 */
    size_t n_nodes;
    struct seen_key {
        char *key;
        unsigned long line;
    } *keys;
    size_t n_keys, cap_keys;
    char *err;
    size_t errlen;
} walk_t;

static unsigned long line_of(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

/* Marks node id reached; EDR_ECONFIG when it was reached before (an alias,
 * whose node carries the anchor's place: line is the key's). */
static int walk_reach(walk_t *w, int id, unsigned long line)
{
    size_t i = (size_t)id - 1;
    if (id < 1 || i >= w->n_nodes || w->seen_node[i]) {
        snprintf(w->err, w->errlen, "%s:%lu: aliases are not supported", w->path, line);
        return EDR_ECONFIG;
    }
    w->seen_node[i] = 1;
    return 0;
}

/* Remembers a full key set at line; EDR_ECONFIG when it was set before in this file. */
static int walk_key_once(walk_t *w, const char *key, unsigned long line)
{
    for (size_t i = 0; i < w->n_keys; i++) {
        if (strcmp(w->keys[i].key, key) == 0) {
            snprintf(w->err, w->errlen, "%s:%lu: %s: given twice (first at line %lu)", w->path,
                     line, key, w->keys[i].line);
            return EDR_ECONFIG;
        }
    }
    if (w->n_keys == w->cap_keys) {
        size_t cap = w->cap_keys ? 2 * w->cap_keys : 64;
        struct seen_key *k = realloc(w->keys, cap * sizeof(*k));
        if (!k)
            return EDR_ENOMEM;
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys].key = strdup(key)))
        return EDR_ENOMEM;
    w->keys[w->n_keys++].line = line;
    return 0;
}

/* YAML 1.1 core schema null: "~", "null" in its three spellings, or nothing;
 * only when plain (a quoted "" or "~" is a string). */
static int is_null_scalar(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* 1 when key names a section (or a pass-through map): a null there is an
 * empty section, e.g. one whose settings are all commented out. */
static int is_section(const char *key)
{
    size_t l = strlen(key);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strncmp(settings[i].key, key, l) == 0 && settings[i].key[l] == '.')
            return 1;
    for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++)
        if (strncmp(passthrough[i], key, l) == 0 && passthrough[i][l] == '.')
            return 1;
    return 0;
}

static int has_nul(const yaml_node_t *n)
{
    return strlen((const char *)n->data.scalar.value) != n->data.scalar.length;
}

/* Walks a YAML mapping recursively, flattening keys with dots. */
static int yaml_walk(walk_t *w, yaml_node_t *node, char *prefix, size_t plen)
{
    char *err = w->err;
    size_t errlen = w->errlen;
    const char *path = w->path;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, pair->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) {
            snprintf(err, errlen, "%s:%lu: setting names must be plain scalars", path,
                     k ? line_of(k) : 0ul);
            return EDR_ECONFIG;
        }
        int rc = walk_reach(w, pair->key, line_of(k));
        if (!rc)
            rc = walk_reach(w, pair->value, line_of(k));
        if (rc)
            return rc;
        size_t kl = k->data.scalar.length;
        if (has_nul(k)) {
            snprintf(err, errlen, "%s:%lu: setting names must not contain a NUL byte", path,
                     line_of(k));
            return EDR_ECONFIG;
        }
        if (plen + kl + 2 >= 512) {
            snprintf(err, errlen, "%s:%lu: setting name too long", path, line_of(k));
            return EDR_ECONFIG;
        }
        char *full = prefix;
        size_t flen = plen;
        if (plen)
            full[flen++] = '.';
        memcpy(full + flen, k->data.scalar.value, kl);
        flen += kl;
        full[flen] = 0;
        if (v->type == YAML_MAPPING_NODE) {
            rc = yaml_walk(w, v, full, flen);
        } else if (v->type == YAML_SCALAR_NODE) {
            char origin[600];
            snprintf(origin, sizeof(origin), "%s:%lu", path, line_of(v));
            if (is_null_scalar(v) && is_section(full)) {
                rc = 0; /* an empty section */
            } else if (is_null_scalar(v)) {
                snprintf(err, errlen, "%s: %s: no value", origin, full);
                rc = EDR_ECONFIG;
            } else if (has_nul(v)) {
                snprintf(err, errlen, "%s: %s: the value contains a NUL byte", origin, full);
                rc = EDR_ECONFIG;
            } else {
                rc = walk_key_once(w, full, line_of(k));
                if (!rc)
                    rc = edr_config_set(w->cfg, full, (const char *)v->data.scalar.value, origin,
                                        err, errlen);
            }
        } else {
            snprintf(err, errlen, "%s:%lu: %s: lists are not a valid value", path, line_of(v),
                     full);
            rc = EDR_ECONFIG;
        }
        prefix[plen] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* The parser's error as "FILE:LINE: problem", or "FILE:LINE: byte N: problem"
 * for the reader's (encoding) errors, which set problem_offset (from 0) and no
 * mark: their line is counted in f. */
static int yaml_error(yaml_parser_t *parser, FILE *f, const char *path, char *err, size_t errlen)
{
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        snprintf(err, errlen, "%s: out of memory", path);
        return EDR_ENOMEM;
    case YAML_READER_ERROR: {
        unsigned long line = 1;
        int ch;
        rewind(f);
        for (size_t i = 0; i < parser->problem_offset && (ch = getc(f)) != EOF; i++)
            line += ch == '\n';
        if (parser->problem_value != -1)
            snprintf(err, errlen, "%s:%lu: byte %zu: %s (#%X)", path, line, parser->problem_offset,
                     problem, (unsigned)parser->problem_value);
        else
            snprintf(err, errlen, "%s:%lu: byte %zu: %s", path, line, parser->problem_offset,
                     problem);
        return EDR_ECONFIG;
    }
    default:
        snprintf(err, errlen, "%s:%lu: %s", path, (unsigned long)parser->problem_mark.line + 1,
                 problem);
        return EDR_ECONFIG;
    }
}

int edr_config_load_file(edr_config_t *cfg, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    yaml_parser_t parser;
    yaml_document_t doc, next;
    int have_parser = 0, have_doc = 0;
    walk_t w = {.cfg = cfg, .doc = &doc, .path = path, .err = err, .errlen = errlen};
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f); /* fopen opens a directory; only the parser's read fails */
        f = NULL;
        errno = EISDIR;
    }
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return EDR_EIO;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = EDR_ENOMEM;
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_error(&parser, f, path, err, errlen);
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        goto out; /* empty file: all defaults */
    /* one document only: a second one ("---") would be ignored silently */
    if (!yaml_parser_load(&parser, &next)) {
        rc = yaml_error(&parser, f, path, err, errlen);
        goto out;
    }
    yaml_node_t *next_root = yaml_document_get_root_node(&next);
    unsigned long next_line = next_root ? (unsigned long)next.start_mark.line + 1 : 0;
    yaml_document_delete(&next);
    if (next_root) {
        snprintf(err, errlen, "%s:%lu: a second YAML document is not supported", path, next_line);
        rc = EDR_ECONFIG;
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%lu: the top level must be a mapping of sections", path,
                 line_of(root));
        rc = EDR_ECONFIG;
        goto out;
    }
    w.n_nodes = (size_t)(doc.nodes.top - doc.nodes.start);
    if (!(w.seen_node = calloc(w.n_nodes, 1))) {
        rc = EDR_ENOMEM;
        goto out;
    }
    w.seen_node[0] = 1; /* the root */
    char prefix[512] = "";
    rc = yaml_walk(&w, root, prefix, 0);
out:
    for (size_t i = 0; i < w.n_keys; i++)
        free(w.keys[i].key);
    free(w.keys);
    free(w.seen_node);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

static void env_name(const char *key, char *out, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(out, cap, "EDR_");
    for (const char *p = key; *p && o + 1 < cap; p++)
        out[o++] = (*p == '.') ? '_' : (char)toupper((unsigned char)*p);
    out[o] = 0;
}

/* 1 when the environment entry "NAME=..." is an EDR_ variable that is neither
 * a setting nor one of the project's other knobs: probably a typo. */
static int env_unknown(const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t nl = eq ? (size_t)(eq - entry) : strlen(entry);
    if (strncmp(entry, "EDR_", 4) != 0 ||
        strncmp(entry, ENV_TEST_PREFIX, strlen(ENV_TEST_PREFIX)) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(env_not_settings) / sizeof(env_not_settings[0]); i++)
        if (strlen(env_not_settings[i]) == nl && strncmp(entry, env_not_settings[i], nl) == 0)
            return 0;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char name[256];
        env_name(settings[i].key, name, sizeof(name));
        if (strlen(name) == nl && strncmp(entry, name, nl) == 0)
            return 0;
    }
    return 1;
}

/* 1 the first time this process sees the variable named by entry[0:nl] (a
 * daemon reloads its configuration from the same environment at every
 * SIGHUP: a typo is said once, not at each reload). Past ENV_WARNED_MAX
 * names every one is said again. */
#define ENV_WARNED_MAX 64
static int env_first_warning(const char *entry, size_t nl)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char *warned[ENV_WARNED_MAX];
    static size_t n_warned;
    int first = 1;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_warned && first; i++)
        if (strlen(warned[i]) == nl && memcmp(warned[i], entry, nl) == 0)
            first = 0;
    if (first && n_warned < ENV_WARNED_MAX && (warned[n_warned] = strndup(entry, nl)))
        n_warned++;
    pthread_mutex_unlock(&mu);
    return first;
}

int edr_config_load_env(edr_config_t *cfg, char *const *envp, char *err, size_t errlen)
{
    for (char *const *e = envp; e && *e; e++) {
        if (env_unknown(*e)) {
            const char *eq = strchr(*e, '=');
            int nl = eq ? (int)(eq - *e) : (int)strlen(*e);
            if (env_first_warning(*e, (size_t)nl))
                edr_log_warn("environment %.*s: no such setting, ignored "
                             "(settings are EDR_<SECTION>_<KEY>, e.g. EDR_KAFKA_BROKERS)",
                             nl > 200 ? 200 : nl, *e);
        }
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char name[256];
        env_name(settings[i].key, name, sizeof(name));
        size_t nl = strlen(name);
        for (char *const *e = envp; e && *e; e++) {
            if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=') {
                char origin[300];
                snprintf(origin, sizeof(origin), "environment %s", name);
                int rc = edr_config_set(cfg, settings[i].key, *e + nl + 1, origin, err, errlen);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

static const char *get(const edr_config_t *cfg, const char *key)
{
    int i = find_setting(key);
    if (i < 0) {
        edr_log_error("internal: unknown setting %s", key);
        return "";
    }
    return cfg->values[i];
}

const char *edr_config_str(const edr_config_t *cfg, const char *key)
{
    return get(cfg, key);
}

int64_t edr_config_int(const edr_config_t *cfg, const char *key)
{
    return strtoll(get(cfg, key), NULL, 10);
}

int edr_config_bool(const edr_config_t *cfg, const char *key)
{
    const char *v = get(cfg, key);
    return !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1");
}

uint64_t edr_config_size(const edr_config_t *cfg, const char *key)
{
    uint64_t v = 0;
    edr_parse_size(get(cfg, key), &v);
    return v;
}

uint64_t edr_config_duration_ns(const edr_config_t *cfg, const char *key)
{
    uint64_t v = 0;
    edr_parse_duration(get(cfg, key), &v);
    return v;
}

int edr_config_foreach(const edr_config_t *cfg, const char *prefix,
                       int (*fn)(const char *key, const char *value, void *ud), void *ud)
{
    size_t pl = strlen(prefix);
    for (kv_t *e = cfg->extra; e; e = e->next) {
        if (strncmp(e->key, prefix, pl) == 0) {
            int rc = fn(e->key + pl, e->value, ud);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static const char *extra_get(const edr_config_t *cfg, const char *key)
{
    for (kv_t *e = cfg->extra; e; e = e->next)
        if (!strcmp(e->key, key)) return e->value;
    return NULL;
}

int edr_config_diff(const edr_config_t *a, const edr_config_t *b,
                    int (*fn)(const char *key, void *ud), void *ud)
{
    int rc = 0;
    for (size_t i = 0; i < N_SETTINGS && !rc; i++)
        if (strcmp(edr_config_str(a, settings[i].key), edr_config_str(b, settings[i].key)))
            rc = fn(settings[i].key, ud);
    for (kv_t *e = a->extra; e && !rc; e = e->next) {
        const char *v = extra_get(b, e->key);
        if (!v || strcmp(v, e->value)) rc = fn(e->key, ud);
    }
    for (kv_t *e = b->extra; e && !rc; e = e->next)
        if (!extra_get(a, e->key)) rc = fn(e->key, ud);
    return rc;
}

static size_t section_len(const char *key)
{
    return (size_t)(strchr(key, '.') - key);
}

static int same_section(const char *a, const char *b)
{
    size_t l = section_len(a);
    return l == section_len(b) && strncmp(a, b, l) == 0;
}

/* Sections in the order of their first setting, each once with all its
 * settings (the table lists some sections in several runs): a YAML mapping
 * must not repeat a key. */
void edr_config_write_defaults(void *file)
{
    FILE *f = file;
    fprintf(f, "# edr configuration: every setting with its default.\n"
               "# Order of precedence: this file < EDR_<SECTION>_<KEY> environment < --set key=value.\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        size_t first = 0;
        while (!same_section(settings[first].key, settings[i].key))
            first++;
        if (first != i)
            continue; /* printed with the section's first setting */
        fprintf(f, "\n%.*s:\n", (int)section_len(settings[i].key), settings[i].key);
        if (!strncmp(settings[i].key, "kafka.", 6))
            fprintf(f, "  # properties:           # any librdkafka property, passed through\n"
                       "  #   security.protocol: SASL_SSL\n");
        for (size_t j = i; j < N_SETTINGS; j++) {
            if (!same_section(settings[j].key, settings[i].key))
                continue;
            char name[256];
            env_name(settings[j].key, name, sizeof(name));
            char range[80] = "";
            if (*settings[j].min || *settings[j].max)
                snprintf(range, sizeof(range), ", %s..%s", *settings[j].min ? settings[j].min : "0",
                         range_max(&settings[j]));
            fprintf(f, "  # %s (%s%s; env %s)\n  %s: \"%s\"\n", settings[j].help,
                    type_hint(settings[j].type), range, name, strchr(settings[j].key, '.') + 1,
                    settings[j].def);
        }
    }
}

int edr_config_args_add(edr_config_args_t *a, const char *key, const char *value)
{
    if (!key && !strchr(value, '='))
        return EDR_EINVAL;
    size_t len = (key ? strlen(key) + 1 : 0) + strlen(value) + 1;
    char *kv = malloc(len);
    char **grown = realloc(a->sets, (size_t)(a->n + 1) * sizeof(*a->sets));
    if (!kv || !grown) {
        free(kv);
        if (grown)
            a->sets = grown;
        return EDR_ENOMEM;
    }
    a->sets = grown;
    if (key)
        snprintf(kv, len, "%s=%s", key, value);
    else
        memcpy(kv, value, len);
    a->sets[a->n++] = kv;
    return 0;
}

void edr_config_args_free(edr_config_args_t *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->sets[i]);
    free(a->sets);
    a->sets = NULL;
    a->n = 0;
}

int edr_config_load_standard(edr_config_t *cfg, const char *path, char *const *sets, int n_sets)
{
    extern char **environ;
    char err[1024];
    int rc = 0;
    if (!path)
        path = getenv("EDR_CONFIG");
    if (path && *path)
        rc = edr_config_load_file(cfg, path, err, sizeof(err));
    if (!rc)
        rc = edr_config_load_env(cfg, environ, err, sizeof(err));
    for (int i = 0; !rc && i < n_sets; i++)
        rc = edr_config_set_kv(cfg, sets[i], "--set", err, sizeof(err));
    if (rc) {
        edr_log_error("bad configuration: %s", err);
        return rc;
    }
    edr_log_level_t level;
    if (edr_log_level_parse(edr_config_str(cfg, "log.level"), &level) == 0)
        edr_log_set_level(level);
    return 0;
}
