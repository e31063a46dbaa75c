/* How many CPUs this process may keep busy, for sizing thread pools. */
#ifndef EDR_CPUS_H
#define EDR_CPUS_H

/* The CPUs this process may run on (its affinity mask: a cpuset, taskset),
 * capped by the CPU quota of its cgroup and the cgroup's ancestors (cgroup
 * v2 cpu.max, v1 cpu.cfs_quota_us over cpu.cfs_period_us, rounded up): a
 * container started with --cpus=1.5 gets 2, not the host's count. At least
 * 1. */
unsigned edr_cpu_budget(void);

/* The same with the process's cgroup list read from cgroup_file (the form
 * of /proc/self/cgroup) and the cgroup file systems under cgroup_root (as
 * /sys/fs/cgroup), for tests. */
unsigned edr__cpu_budget_at(const char *cgroup_file, const char *cgroup_root);

#endif
