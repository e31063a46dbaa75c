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

/* 0 when directory p (of dir) can be changed only by root or this user:
 * owned by one of them, and writable by group or others only with the
 * sticky bit (as /tmp, where others cannot rename what is not theirs).
 * Else -1 with err filled. */
static int dir_trusted(const char *p, const char *dir, const char *what, char *err, size_t errlen)
{
    struct stat sb;
    if (lstat(p, &sb) != 0) {
        snprintf(err, errlen, "%s %s: cannot stat %s: %s", what, dir, p, strerror(errno));
        return -1;
    }
    if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "%s %s: its parent %s is owned by uid %u: refusing (that user could put "
                 "another directory in its place)",
                 what, dir, p, (unsigned)sb.st_uid);
        return -1;
    }
    if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX)) {
        snprintf(err, errlen, "%s %s: its parent %s is writable by %s: refusing", what, dir, p,
                 sb.st_mode & S_IWOTH ? "others" : "group");
        return -1;
    }
    return 0;
}

/* Whether the directories above `path` (an existing directory; itself too
 * when self) can be changed only by root or this user. Otherwise a user
 * owning a parent could swap it for a link between this check and
 * RocksDB's open of the path, and have root write where the link points
 * (review-1206q 1). 0, or -1 with err filled (naming dir). */
static int ancestors_safe(const char *path, int self, const char *dir, const char *what, char *err,
                          size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(err, errlen, "%s %s: cannot resolve %s: %s", what, dir, path, strerror(errno));
        return -1;
    }
    for (char *slash = real; slash; slash = strchr(slash + 1, '/')) {
        char *cut = slash == real ? slash + 1 : slash; /* "/" first, then "/a", "/a/b"... */
        char save = *cut;
        *cut = 0;
        int bad = dir_trusted(real, dir, what, err, errlen);
        *cut = save;
        if (bad) return -1;
        if (!real[1]) return 0; /* path is "/" */
    }
    return self ? dir_trusted(real, dir, what, err, errlen) : 0;
}

/*
 * The sensor, the collector and edr import run as root and write (truncate,
 * rename, fill with telemetry) files in these directories, so one they did
 * not make must be one nobody else controls: a real directory (not a
 * symlink), owned by the effective uid, not writable by group or others
 * (review-1206p-sec 1: a store path another user made first, or a shard
 * linked elsewhere, had root write telemetry where that user reads, and
 * chmod the link's target), below parents only root or this user can
 * change. The parents that exist are checked before anything is made in
 * them. Only a directory made here is chmod'ed (an existing one such as
 * /tmp is never changed).
 */
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
    /* the deepest part of the path that exists, checked before anything is
     * made below it */
    char have[4096];
    snprintf(have, sizeof(have), "%s", dir);
    struct stat hs;
    while (lstat(have, &hs) != 0 && errno == ENOENT) {
        char *sl = strrchr(have, '/');
        if (!sl) {
            snprintf(have, sizeof(have), ".");
            break;
        }
        sl[sl == have ? 1 : 0] = 0;
    }
    if (strcmp(have, dir) != 0 && ancestors_safe(have, 1, dir, what, err, errlen)) return -1;
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
    if (ancestors_safe(dir, 0, dir, what, err, errlen)) goto fail;
    if (created_out)
        *created_out = created;
    return dfd;
fail:
    close(dfd);
    return -1;
}

