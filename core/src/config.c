/* Configuration: a fixed table of typed settings plus pass-through maps, loaded from YAML. */
#include "edr/config.h"
#include "edr/err.h"
#include "edr/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef enum { T_STR, T_INT, T_BOOL, T_SIZE, T_DURATION, T_LEVEL } stype_t;

typedef struct {
    const char *key;
    stype_t type;
    const char *def;
    const char *help;
} setting_t;

static const setting_t settings[] = {
#define S(k, t, d, h) {k, T_##t, d, h},
#include "settings.def"
#undef S
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Maps whose keys are free-form and pass through unchecked. */
static const char *const passthrough[] = {"kafka.properties."};

typedef struct kv {
    char *key;
    char *value;
    struct kv *next;
} kv_t;

struct edr_config {
    char *values[N_SETTINGS];
    kv_t *extra; /* pass-through entries, in insertion order */
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

static int check_value(stype_t t, const char *v)
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
        kv_t *e = calloc(1, sizeof(*e));
        if (!e || !(e->key = strdup(key)) || !(e->value = strdup(value))) {
            if (e)
                free(e->key);
            free(e);
            return EDR_ENOMEM;
        }
        *pp = e;
        return 0;
    }
    int i = find_setting(key);
    if (i < 0) {
        snprintf(err, errlen, "%s: %s: unknown setting", origin, key);
        return EDR_ECONFIG;
    }
    if (check_value(settings[i].type, value) != 0) {
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

/* Walks a YAML mapping recursively, flattening keys with dots. */
static int yaml_walk(edr_config_t *cfg, yaml_document_t *doc, yaml_node_t *node, char *prefix,
                     size_t plen, const char *path, char *err, size_t errlen)
{
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(doc, pair->value);
        if (!k || k->type != YAML_SCALAR_NODE) {
            snprintf(err, errlen, "%s:%lu: setting names must be plain scalars", path,
                     k ? (unsigned long)k->start_mark.line + 1 : 0ul);
            return EDR_ECONFIG;
        }
        size_t kl = k->data.scalar.length;
        if (plen + kl + 2 >= 512) {
            snprintf(err, errlen, "%s:%lu: setting name too long", path,
                     (unsigned long)k->start_mark.line + 1);
            return EDR_ECONFIG;
        }
        char *full = prefix;
        size_t flen = plen;
        if (plen)
            full[flen++] = '.';
        memcpy(full + flen, k->data.scalar.value, kl);
        flen += kl;
        full[flen] = 0;
        int rc;
        if (v->type == YAML_MAPPING_NODE) {
            rc = yaml_walk(cfg, doc, v, full, flen, path, err, errlen);
        } else if (v->type == YAML_SCALAR_NODE) {
            char origin[600];
            snprintf(origin, sizeof(origin), "%s:%lu", path, (unsigned long)v->start_mark.line + 1);
            rc = edr_config_set(cfg, full, (const char *)v->data.scalar.value, origin, err, errlen);
        } else {
            snprintf(err, errlen, "%s:%lu: %s: lists are not a valid value", path,
                     (unsigned long)v->start_mark.line + 1, full);
            rc = EDR_ECONFIG;
        }
        prefix[plen] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

int edr_config_load_file(edr_config_t *cfg, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_parser = 0, have_doc = 0;
    FILE *f = fopen(path, "rb");
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
        snprintf(err, errlen, "%s:%lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        rc = EDR_ECONFIG;
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        goto out; /* empty file: all defaults */
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%lu: the top level must be a mapping of sections", path,
                 (unsigned long)root->start_mark.line + 1);
        rc = EDR_ECONFIG;
        goto out;
    }
    char prefix[512] = "";
    rc = yaml_walk(cfg, &doc, root, prefix, 0, path, err, errlen);
out:
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

int edr_config_load_env(edr_config_t *cfg, char *const *envp, char *err, size_t errlen)
{
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
            fprintf(f, "  # %s (%s; env %s)\n  %s: \"%s\"\n", settings[j].help,
                    type_hint(settings[j].type), name, strchr(settings[j].key, '.') + 1,
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
