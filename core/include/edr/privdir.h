/* Directories only this user controls: where a root process writes state
 * or telemetry (the sensor's state, the store and its shards). */
#ifndef EDR_PRIVDIR_H
#define EDR_PRIVDIR_H

#include <stddef.h>

/* Opens directory path (created 0700 with its missing parents when absent)
 * for the *at() calls, refusing one somebody else could control: a
 * symbolic link, one owned by another uid than the effective one, or one
 * writable by group or others. A directory made here is chmod'ed 0700; an
 * existing one is never changed. Returns the fd, or -1 with err filled as
 * "<what> <path>: <why>: refusing" (what names the setting). *created (may
 * be NULL) says whether it was made here. */
int edr_private_dir_open(const char *path, const char *what, int *created, char *err,
                         size_t errlen);

#endif
