/* Logging to stderr, journal friendly: one line per message. */
#ifndef EDR_LOG_H
#define EDR_LOG_H

#include <stdarg.h>

typedef enum {
    EDR_LOG_ERROR = 3, /* values are syslog priorities */
    EDR_LOG_WARN = 4,
    EDR_LOG_INFO = 6,
    EDR_LOG_DEBUG = 7,
} edr_log_level_t;

/* Sets the program name shown in each line and the minimum level written. */
void edr_log_init(const char *progname, edr_log_level_t level);
void edr_log_set_level(edr_log_level_t level);
edr_log_level_t edr_log_get_level(void);

/* Parses "error", "warn", "info", "debug"; returns 0, or EDR_EINVAL. */
int edr_log_level_parse(const char *s, edr_log_level_t *out);

/* Writes one line. Under systemd (JOURNAL_STREAM set) lines carry a "<N>"
 * priority prefix so the journal keeps the level; otherwise
 * "prog: level: message". The formatted message is escaped as
 * edr_text_escape() does (newline as "\n", backslash as "\\", controls,
 * bidirectional formatting characters and ill-formed UTF-8 made visible), so
 * callers pass outside text as it is and do not escape it themselves.
 * Thread-safe. */
void edr_log(edr_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void edr_logv(edr_log_level_t level, const char *fmt, va_list ap);

#define edr_log_error(...) edr_log(EDR_LOG_ERROR, __VA_ARGS__)
#define edr_log_warn(...)  edr_log(EDR_LOG_WARN, __VA_ARGS__)
#define edr_log_info(...)  edr_log(EDR_LOG_INFO, __VA_ARGS__)
#define edr_log_debug(...)                                                                         \
    do {                                                                                           \
        if (edr_log_get_level() >= EDR_LOG_DEBUG)                                                  \
            edr_log(EDR_LOG_DEBUG, __VA_ARGS__);                                                   \
    } while (0)

#endif
