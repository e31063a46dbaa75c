/* One configuration for every component: YAML file, then environment, then flags. */
#ifndef EDR_CONFIG_H
#define EDR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct edr_config edr_config_t;

/* A configuration holding every setting at its default. NULL when out of memory. */
edr_config_t *edr_config_new(void);
void edr_config_destroy(edr_config_t *cfg);

/* Reads a YAML file of nested mappings ("kafka: {brokers: ...}"). Keys under
 * kafka.properties pass through to librdkafka unchecked (at most 1024 of
 * them). One document only; no aliases; each setting at most once; a null
 * (~, null, nothing) is no value, except for a section; no NUL bytes. Values
 * are checked against their setting's type and range. On error returns
 * EDR_ECONFIG (or EDR_EIO, EDR_ENOMEM) and writes "FILE:LINE: SETTING:
 * problem" to err; settings applied before the error stay applied. */
int edr_config_load_file(edr_config_t *cfg, const char *path, char *err, size_t errlen);

/* Applies EDR_<KEY> environment variables (dots become underscores, upper
 * case: EDR_KAFKA_BROKERS). envp is NULL-terminated (environ). Other EDR_
 * variables are logged as a warning (a typo would otherwise go unnoticed),
 * except the project's own non-settings (EDR_CONFIG, EDR_BUILD, EDR_TEST_*, ...). */
int edr_config_load_env(edr_config_t *cfg, char *const *envp, char *err, size_t errlen);

/* Sets one setting from "key=value" (a --set flag) or key and value. The
 * value is checked against the setting's type; origin names where it came
 * from in errors. */
int edr_config_set(edr_config_t *cfg, const char *key, const char *value, const char *origin,
                   char *err, size_t errlen);
int edr_config_set_kv(edr_config_t *cfg, const char *kv, const char *origin, char *err,
                      size_t errlen);

/* Typed getters. Unknown keys abort in debug builds and return defaults of
 * the type ("" / 0) otherwise: keys are compile-time constants. */
const char *edr_config_str(const edr_config_t *cfg, const char *key);
int64_t edr_config_int(const edr_config_t *cfg, const char *key);
int edr_config_bool(const edr_config_t *cfg, const char *key);
uint64_t edr_config_size(const edr_config_t *cfg, const char *key);
uint64_t edr_config_duration_ns(const edr_config_t *cfg, const char *key);

/* Calls fn for every key=value under prefix (e.g. "kafka.properties."), with
 * the prefix stripped. Stops and returns fn's value when it is non-zero. */
int edr_config_foreach(const edr_config_t *cfg, const char *prefix,
                       int (*fn)(const char *key, const char *value, void *ud), void *ud);

/* Calls fn for every setting whose value differs between a and b (defaults
 * included), then for every pass-through entry added, removed or changed.
 * Stops and returns fn's value when it is non-zero. */
int edr_config_diff(const edr_config_t *a, const edr_config_t *b,
                    int (*fn)(const char *key, void *ud), void *ud);

/* Writes every setting with its default and help as commented YAML. */
void edr_config_write_defaults(void *file);

/* Parsers shared with flags: "64MiB" -> bytes, "100ms" -> ns. 0 or EDR_EINVAL. */
int edr_parse_size(const char *s, uint64_t *out);
int edr_parse_duration(const char *s, uint64_t *out_ns);

/* Settings given on a command line (--set KEY=VALUE, and the flags that stand
 * for a setting), in order, for edr_config_load_standard. Zero-initialise;
 * edr_config_args_free releases. */
typedef struct edr_config_args {
    char **sets;
    int n;
} edr_config_args_t;

/* Appends KEY=VALUE; with key NULL, value is already KEY=VALUE. Returns 0,
 * EDR_EINVAL (no '=' in a NULL-key value; nothing added) or EDR_ENOMEM. */
int edr_config_args_add(edr_config_args_t *a, const char *key, const char *value);
void edr_config_args_free(edr_config_args_t *a);

/* Loads the standard chain for a program: the file (path, or $EDR_CONFIG,
 * or nothing), then the environment, then --set overrides. Logs the error
 * and returns non-zero on bad configuration. Also applies log.level. */
int edr_config_load_standard(edr_config_t *cfg, const char *path, char *const *sets, int n_sets);

#endif
