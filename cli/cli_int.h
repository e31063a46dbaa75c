/* Internal interface of the edr command: one function per sub-command. */
#ifndef EDR_CLI_INT_H
#define EDR_CLI_INT_H

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

/* Reads a whole file; caller frees *out. Returns 0 or -1 with errno set. */
int edr_cli_read_file(const char *path, unsigned char **out, size_t *len);

/* Most --set options one command takes. */
#define EDR_CLI_MAX_SETS 64

/* Appends one --set KEY=VALUE to sets[] (EDR_CLI_MAX_SETS entries). Returns
 * 0, or -1 after telling the user on stderr that there are too many: an
 * override is never dropped silently. */
int edr_cli_add_set(const char *cmd, char **sets, int *n_sets, char *kv);

#endif
