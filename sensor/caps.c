/* Capabilities of the sensor's threads (see caps.h). */
#include "caps.h"

#include "edr/err.h"
#include "edr/log.h"

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
    if (!rc && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        edr_log_warn("cannot set no_new_privs: %s", strerror(errno));
    errno = e;
    return rc;
}

unsigned long long edr__caps_effective_all(void)
{
    unsigned long long all = 0;
    int read_any = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        edr_log_error("capabilities: cannot read /proc/self/task: %s", strerror(errno));
        return EDR_CAPS_UNKNOWN;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        /* a thread whose effective set is empty can raise what it still
         * has in its permitted set: both count */
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0) {
                all |= strtoull(line + 7, NULL, 16);
                read_any = 1;
            }
        fclose(f);
    }
    closedir(d);
    if (!read_any) {
        edr_log_error("capabilities: cannot read the status of any thread");
        return EDR_CAPS_UNKNOWN;
    }
    return all;
}
