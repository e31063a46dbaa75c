/* Internal interface of the edr command: one function per sub-command. */
#ifndef EDR_CLI_INT_H
#define EDR_CLI_INT_H

#include <stdint.h>
#include <stdio.h>

/* A sub-command gets argv starting at its own name; returns the exit code. */
typedef int (*edr_cli_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    edr_cli_fn fn;
    const char *summary;
} edr_cli_cmd_t;

#define C(name, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef C

/* Prints text from telemetry to a terminal with control characters escaped
 * (\x1b, \n ...), so hostile command lines cannot drive the terminal. */
void edr_cli_print_escaped(FILE *f, const char *s);
/* "cmd: message" on stderr, the message escaped as telemetry is (it may
 * quote a path, a name or a library's error about them). */
void edr_cli_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads a whole file (a regular file, a pipe or a terminal: it reads to the
 * end, whatever size the file claims); caller frees *out. Returns 0 or -1
 * with errno set (EISDIR for a directory). */
int edr_cli_read_file(const char *path, unsigned char **out, size_t *len);

/* An output file written safely: created as a new 0600 file beside path
 * (never through a symlink, never an existing file's owner or mode), then
 * renamed over path by edr_cli_out_commit. */
typedef struct {
    FILE *f;
    char tmp[4096];
    const char *path;
} edr_cli_out_t;

/* Opens the temporary file; -1 after telling the user on stderr why (also
 * when path exists and is not a regular file: never replaced). */
int edr_cli_out_open(edr_cli_out_t *o, const char *cmd, const char *path);

/* Flushes, syncs and renames into place; -1 (the temporary file removed)
 * after telling the user on stderr. With ok == 0, only removes it. */
int edr_cli_out_commit(edr_cli_out_t *o, const char *cmd, int ok);

/* Parses a whole decimal number in [min, max] (no sign unless min < 0, no
 * blanks, no trailing text). 0, or -1 after telling the user on stderr
 * which option was wrong. */
int edr_cli_parse_num(const char *cmd, const char *opt, const char *s, long long min,
                      long long max, long long *out);

/* Most --set options one command takes. */
#define EDR_CLI_MAX_SETS 64

/* Appends one --set KEY=VALUE to sets[] (EDR_CLI_MAX_SETS entries). Returns
 * 0, or -1 after telling the user on stderr that there are too many: an
 * override is never dropped silently. */
int edr_cli_add_set(const char *cmd, char **sets, int *n_sets, char *kv);

/* Parses a time given on the command line into UTC ns since the epoch:
 * an RFC 3339 time (2022-05-11T18:10:33.5Z, or with a space for the T and
 * no zone, meaning UTC), ns since the epoch, "now", or an age before now_ns
 * ("-90s", "-15m", "-2h", "-7d"). 0, or -1 when it is none of those. */
int edr_cli_parse_time(const char *s, uint64_t now_ns, uint64_t *out);

/* Finds a host of the store by name (case-insensitive) or 32 hex digits
 * (an id match wins over name matches): returns how many hosts match (the
 * id of the last in id; 1 is the only usable answer), or a negative error.
 * *n_hosts (may be NULL) gets the number of hosts in the store. want NULL
 * matches every host. */
struct edr_store;
int edr_cli_find_host(struct edr_store *s, const char *want, uint8_t id[16], int *n_hosts);

/* UTC ns since the epoch now. */
uint64_t edr_cli_now_ns(void);

#endif
