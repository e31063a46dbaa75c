/* Capabilities of the sensor's threads (see caps.h). */
#include "caps.h"

#include "edr/err.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

int edr__caps_limit(const cap_value_t *keep, int n_keep)
{
    cap_t c = cap_init();
    if (!c)
        return EDR_ENOMEM;
    int rc = 0;
    if (n_keep && (cap_set_flag(c, CAP_PERMITTED, n_keep, keep, CAP_SET) ||
                   cap_set_flag(c, CAP_EFFECTIVE, n_keep, keep, CAP_SET)))
        rc = EDR_EINVAL;
    if (!rc && cap_set_proc(c) != 0)
        rc = EDR_EPERM;
    int e = errno;
    cap_free(c);
    if (!rc)
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    errno = e;
    return rc;
}

unsigned long long edr__caps_effective_all(void)
{
    unsigned long long all = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "CapEff:", 7) == 0)
                all |= strtoull(line + 7, NULL, 16);
        fclose(f);
    }
    closedir(d);
    return all;
}
