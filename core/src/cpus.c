/* CPUs a process may keep busy: affinity, then cgroup quotas. */
#define _GNU_SOURCE
#include "edr/cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* CPUs a quota of `quota` us per `period` us allows, rounded up; 0: none. */
static unsigned quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    long long n = (quota + period - 1) / period;
    return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

/* The quota in the cgroup directory dir (v2 or v1 files), 0 when none. */
static unsigned dir_quota(const char *dir, int v2)
{
    char path[PATH_MAX + 32];
    long long quota = 0, period = 0;
    FILE *f;
    if (v2) {
        char max[32];
        snprintf(path, sizeof(path), "%s/cpu.max", dir);
        if (!(f = fopen(path, "r")))
            return 0;
        int n = fscanf(f, "%31s %lld", max, &period);
        fclose(f);
        if (n != 2 || !strcmp(max, "max") || sscanf(max, "%lld", &quota) != 1)
            return 0;
        return quota_cpus(quota, period);
    }
    snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
    if (!(f = fopen(path, "r")))
        return 0;
    int n = fscanf(f, "%lld", &quota);
    fclose(f);
    snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
    if (n != 1 || !(f = fopen(path, "r")))
        return 0;
    n = fscanf(f, "%lld", &period);
    fclose(f);
    return n == 1 ? quota_cpus(quota, period) : 0;
}

/* The smallest quota of the cgroup `rel` (a path from the hierarchy's root)
 * and its ancestors, in the hierarchy mounted at mnt; 0 when none has one. */
static unsigned tree_quota(const char *mnt, const char *rel, int v2)
{
    char dir[PATH_MAX];
    unsigned best = 0;
    int len = snprintf(dir, sizeof(dir), "%s%s", mnt, rel);
    if (len < 0 || (size_t)len >= sizeof(dir))
        return 0;
    size_t root = strlen(mnt);
    for (;;) {
        unsigned q = dir_quota(dir, v2);
        if (q && (!best || q < best))
            best = q;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < root)
            break;
        *slash = 0;
    }
    return best;
}

unsigned edr__cpu_budget_at(const char *cgroup_file, const char *cgroup_root)
{
    unsigned cpus = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        cpus = (unsigned)CPU_COUNT(&set);
    if (!cpus) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = n > 0 ? (unsigned)n : 1;
    }
    FILE *f = fopen(cgroup_file, "r");
    char line[PATH_MAX + 64], mnt[PATH_MAX + 16];
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        /* "0::/path" (v2), or "N:cpu,cpuacct:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/')
            continue;
        *c2 = 0;
        const char *ctl = c1 + 1, *rel = c2 + 1;
        unsigned q = 0;
        if (!*ctl) {
            snprintf(mnt, sizeof(mnt), "%s", cgroup_root);
            q = tree_quota(mnt, strcmp(rel, "/") ? rel : "", 1);
        } else {
            char ctls[PATH_MAX];
            snprintf(ctls, sizeof(ctls), ",%s,", ctl);
            if (!strstr(ctls, ",cpu,"))
                continue;
            snprintf(mnt, sizeof(mnt), "%s/%s", cgroup_root, ctl);
            q = tree_quota(mnt, strcmp(rel, "/") ? rel : "", 0);
        }
        if (q && q < cpus)
            cpus = q;
    }
    if (f)
        fclose(f);
    return cpus ? cpus : 1;
}

unsigned edr_cpu_budget(void)
{
    return edr__cpu_budget_at("/proc/self/cgroup", "/sys/fs/cgroup");
}
