/* Logging to stderr with levels; systemd-journal priority prefixes when under systemd. */
#include "edr/log.h"
#include "edr/err.h"
#include "edr/text.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_prog = "edr";
/* read without the lock by every call, written by a reload (SIGHUP) */
static _Atomic int log_level = EDR_LOG_INFO;
static _Atomic int log_journal = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void edr_log_init(const char *progname, edr_log_level_t level)
{
    if (progname) {
        const char *slash = strrchr(progname, '/');
        log_prog = slash ? slash + 1 : progname;
    }
    log_level = level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void edr_log_set_level(edr_log_level_t level)
{
    log_level = level;
}

edr_log_level_t edr_log_get_level(void)
{
    return (edr_log_level_t)log_level;
}

int edr_log_level_parse(const char *s, edr_log_level_t *out)
{
    static const struct {
        const char *name;
        edr_log_level_t level;
    } names[] = {{"error", EDR_LOG_ERROR}, {"warn", EDR_LOG_WARN}, {"warning", EDR_LOG_WARN},
                 {"info", EDR_LOG_INFO},   {"debug", EDR_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return EDR_EINVAL;
}

static const char *level_name(edr_log_level_t level)
{
    switch (level) {
    case EDR_LOG_ERROR:
        return "error";
    case EDR_LOG_WARN:
        return "warning";
    case EDR_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void edr_logv(edr_log_level_t level, const char *fmt, va_list ap)
{
    if ((int)level > log_level)
        return;
    int journal = log_journal;
    if (journal < 0)
        log_journal = journal = getenv("JOURNAL_STREAM") != NULL;
    /* Arguments are often text from outside (file names, telemetry, broker
     * messages through librdkafka's log callback): the whole message is
     * escaped, so a newline cannot start a forged line (or a journal entry
     * with its own priority) and nothing reaches the terminal raw. */
    char raw[2048], msg[4096];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    edr_text_escape(msg, sizeof(msg), raw);
    pthread_mutex_lock(&log_lock);
    if (journal)
        fprintf(stderr, "<%d>%s\n", (int)level, msg);
    else
        fprintf(stderr, "%s: %s: %s\n", log_prog, level_name(level), msg);
    pthread_mutex_unlock(&log_lock);
}

void edr_log(edr_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    edr_logv(level, fmt, ap);
    va_end(ap);
}
