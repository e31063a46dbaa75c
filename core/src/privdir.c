/* Directories only this user controls (edr/privdir.h). */
#include "edr/privdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates the missing parents of dir (0700); *created is set when dir itself
 * was made here. An existing dir is left as it is. */
static int mkdir_p(const char *dir, int *created)
{
    char tmp[4096];
    *created = 0;
    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) == 0)
        *created = 1;
    else if (errno != EEXIST)
        return -1;
    return 0;
}

/*
 * The sensor, the collector and edr import run as root and write (truncate,
 * rename, fill with telemetry) files in these directories, so one they did
 * not make must be one nobody else controls: a real directory (not a
 * symlink), owned by the effective uid, not writable by group or others
 * (review-1206p-sec 1: a store path another user made first, or a shard
 * linked elsewhere, had root write telemetry where that user reads, and
 * chmod the link's target). Only a directory made here is chmod'ed (an
 * existing one such as /tmp is never changed).
 */
/* Whether the directories above dir can be changed only by root or this
 * user: each owned by one of them, and writable by group or others only
 * with the sticky bit (as /tmp, where others cannot rename what is not
 * theirs). Otherwise a user owning a parent could swap it for a link
 * between this check and RocksDB's open of the path, and have root write
 * where the link points (review-1206q 1). 0, or -1 with err filled. */
static int ancestors_safe(const char *dir, const char *what, char *err, size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        snprintf(err, errlen, "%s %s: cannot resolve: %s", what, dir, strerror(errno));
        return -1;
    }
    uid_t me = geteuid();
    for (char *slash = real; slash; slash = strchr(slash + 1, '/')) {
        char save = slash[slash == real ? 1 : 0];
        slash[slash == real ? 1 : 0] = 0; /* "/" first, then "/a", "/a/b"... */
        struct stat sb;
        int bad = 0;
        if (lstat(real, &sb) != 0)
            bad = snprintf(err, errlen, "%s %s: cannot stat %s: %s", what, dir, real,
                           strerror(errno));
        else if (sb.st_uid != 0 && sb.st_uid != me)
            bad = snprintf(err, errlen,
                           "%s %s: its parent %s is owned by uid %u: refusing (that "
                           "user could put another directory in its place)",
                           what, dir, real, (unsigned)sb.st_uid);
        else if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX))
            bad = snprintf(err, errlen, "%s %s: its parent %s is writable by %s: refusing", what,
                           dir, real, sb.st_mode & S_IWOTH ? "others" : "group");
        slash[slash == real ? 1 : 0] = save;
        if (bad) return -1;
        if (slash == real && !real[1]) break; /* dir is "/" */
    }
    return 0;
}

int edr_private_dir_open(const char *path, const char *what, int *created_out, char *err,
                         size_t errlen)
{
    /* "link/" resolves the link whatever O_NOFOLLOW says: trailing slashes go */
    char dir[4096];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        snprintf(err, errlen, "%s: path too long", what);
        return -1;
    }
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = 0;
    int created;
    if (mkdir_p(dir, &created) != 0) {
        snprintf(err, errlen, "%s %s: cannot create: %s", what, dir, strerror(errno));
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        struct stat ls;
        if (lstat(dir, &ls) == 0 && S_ISLNK(ls.st_mode))
            snprintf(err, errlen, "%s %s: is a symbolic link: refusing", what, dir);
        else if (e == ENOTDIR)
            snprintf(err, errlen, "%s %s: not a directory", what, dir);
        else
            snprintf(err, errlen, "%s %s: cannot open: %s", what, dir, strerror(e));
        return -1;
    }
    struct stat sb;
    if (created && fchmod(dfd, 0700) != 0) {
        snprintf(err, errlen, "%s %s: cannot chmod: %s", what, dir, strerror(errno));
        goto fail;
    }
    if (fstat(dfd, &sb) != 0) {
        snprintf(err, errlen, "%s %s: cannot stat: %s", what, dir, strerror(errno));
        goto fail;
    }
    if (sb.st_uid != geteuid()) {
        snprintf(err, errlen, "%s %s: owned by uid %u, not %u: refusing", what, dir,
                 (unsigned)sb.st_uid, (unsigned)geteuid());
        goto fail;
    }
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "%s %s: writable by %s: refusing", what, dir,
                 sb.st_mode & S_IWOTH ? "others" : "group");
        goto fail;
    }
    if (ancestors_safe(dir, what, err, errlen)) goto fail;
    if (created_out)
        *created_out = created;
    return dfd;
fail:
    close(dfd);
    return -1;
}

