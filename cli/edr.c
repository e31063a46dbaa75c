/* The edr command: dispatches to sub-commands. */
#define _GNU_SOURCE /* mkostemp */
#include "cli_int.h"
#include "edr/jsonl.h"
#include "edr/log.h"
#include "edr/text.h"
#include "edr/version.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const edr_cli_cmd_t commands[] = {
#define C(name, fn, summary) {name, fn, summary},
#include "commands.def"
#undef C
};

static void usage(FILE *f)
{
    fprintf(f, "usage: edr COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'edr COMMAND --help' describes each command.\n");
}

void edr_cli_print_escaped(FILE *f, const char *s)
{
    edr_text_fput_escaped(f, s);
}

void edr_cli_error(const char *cmd, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: ", cmd);
    edr_cli_print_escaped(stderr, msg);
    fputc('\n', stderr);
}

uint64_t edr_cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int edr_cli_parse_time(const char *s, uint64_t now_ns, uint64_t *out)
{
    size_t len = strlen(s);
    if (!len)
        return -1;
    if (!strcmp(s, "now")) {
        *out = now_ns;
        return 0;
    }
    if (strspn(s, "0123456789") == len) {
        errno = 0;
        unsigned long long v = strtoull(s, NULL, 10);
        if (errno)
            return -1;
        *out = v;
        return 0;
    }
    if (s[0] == '-' && len >= 3 && strspn(s + 1, "0123456789") == len - 2) {
        static const struct {
            char unit;
            uint64_t ns;
        } units[] = {{'s', 1000000000ull}, {'m', 60000000000ull}, {'h', 3600000000000ull},
                     {'d', 86400000000000ull}};
        errno = 0;
        unsigned long long n = strtoull(s + 1, NULL, 10);
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (s[len - 1] != units[i].unit)
                continue;
            if (errno || n > now_ns / units[i].ns)
                return -1; /* before the epoch */
            *out = now_ns - n * units[i].ns;
            return 0;
        }
        return -1;
    }
    uint64_t ns;
    if (edr_jsonl_time_parse(s, len, &ns) != 0)
        return -1;
    *out = ns;
    return 0;
}

int edr_cli_add_set(const char *cmd, char **sets, int *n_sets, char *kv)
{
    if (*n_sets >= EDR_CLI_MAX_SETS) {
        fprintf(stderr, "edr %s: more than %d --set options\n", cmd, EDR_CLI_MAX_SETS);
        return -1;
    }
    sets[(*n_sets)++] = kv;
    return 0;
}

int edr_cli_read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return -1;
    }
    /* the size is a hint: pipes and /proc files say 0 */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf || ferror(f)) {
        int e = buf ? EIO : ENOMEM;
        free(buf);
        fclose(f);
        errno = e;
        return -1;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

int edr_cli_out_open(edr_cli_out_t *o, const char *cmd, const char *path)
{
    o->f = NULL;
    o->path = path;
    int n = snprintf(o->tmp, sizeof(o->tmp), "%s.tmp-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
        fprintf(stderr, "edr %s: output path too long\n", cmd);
        return -1;
    }
    /* the output replaces a regular file only: a rename over a symbolic
     * link, a device (-o /dev/null as root), a pipe or a directory would
     * replace that, not write to it */
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "edr %s: ", cmd);
        edr_cli_print_escaped(stderr, path);
        fprintf(stderr, ": not a regular file (-o writes a new file or replaces one)\n");
        return -1;
    }
    int fd = mkostemp(o->tmp, O_CLOEXEC); /* O_CREAT | O_EXCL, mode 0600 */
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
        fprintf(stderr, "edr %s: ", cmd);
        edr_cli_print_escaped(stderr, path);
        fprintf(stderr, ": cannot create: %s\n", strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        return -1;
    }
    return 0;
}

int edr_cli_out_commit(edr_cli_out_t *o, const char *cmd, int ok)
{
    if (!o->f)
        return -1;
    int err = 0;
    if (ok && (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0))
        err = errno ? errno : EIO;
    if (fclose(o->f) != 0 && ok && !err)
        err = errno ? errno : EIO;
    o->f = NULL;
    if (ok && !err && rename(o->tmp, o->path) != 0)
        err = errno;
    if (!ok || err) {
        unlink(o->tmp);
        if (err) {
            fprintf(stderr, "edr %s: ", cmd);
            edr_cli_print_escaped(stderr, o->path);
            fprintf(stderr, ": %s\n", strerror(err));
        }
        return -1;
    }
    return 0;
}

int edr_cli_parse_num(const char *cmd, const char *opt, const char *s, long long min,
                      long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = 0;
    const char *digits = s && s[0] == '-' && min < 0 ? s + 1 : s;
    int ok = digits && *digits >= '0' && *digits <= '9';
    if (ok) {
        v = strtoll(s, &end, 10);
        ok = !errno && *end == '\0' && v >= min && v <= max;
    }
    if (!ok) {
        fprintf(stderr, "edr %s: %s: ", cmd, opt);
        edr_cli_print_escaped(stderr, s ? s : "");
        fprintf(stderr, ": not a whole number from %lld to %lld\n", min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int edr_cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr,
                "usage: edr version\nPrints the versions of edr and the libraries it links.\n");
        return help ? 0 : 2;
    }
    printf("%s\n", edr_version_long());
    return 0;
}

int main(int argc, char **argv)
{
    edr_log_init("edr", EDR_LOG_INFO);
    /* what it writes (store files, outputs) holds telemetry: its own only
     * (RocksDB made its files 0644: review-1206p-sec 4) */
    umask(077);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version"))
        return edr_cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        int rc = commands[i].fn(argc - 1, argv + 1);
        /* a full disk or a closed pipe shows only when the buffer goes out:
         * output that did not arrive is not a success (a command that
         * failed has said why already). When a write failed already while
         * the command ran (output past the buffer), its errno is the reason:
         * stdio keeps writing, and failing, at each later flush */
        int earlier = ferror(stdout) ? errno : 0;
        errno = 0;
        if ((fflush(stdout) != 0 || ferror(stdout)) && rc == 0) {
            if (!errno) errno = earlier;
            edr_cli_error("edr", "%s: writing the output failed%s%s", argv[1], errno ? ": " : "",
                          errno ? strerror(errno) : "");
            rc = 1;
        }
        return rc;
    }
    edr_cli_error("edr", "unknown command '%s'", argv[1]);
    usage(stderr);
    return 2;
}
