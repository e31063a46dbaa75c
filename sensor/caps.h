/* Capabilities of the sensor's threads. */
#ifndef EDR_SENSOR_CAPS_H
#define EDR_SENSOR_CAPS_H

#include <sys/capability.h>

/* Limits the calling thread (capabilities are per thread in Linux) to keep
 * (permitted and effective) and sets no_new_privs (a failure there is logged
 * as a warning). 0, or EDR_EPERM / EDR_ENOMEM with errno set. Threads
 * created afterwards by this thread inherit the limit; threads that already
 * exist keep theirs. */
int edr__caps_limit(const cap_value_t *keep, int n_keep);

/* What every thread of this process holds or can raise: the CapPrm and
 * CapEff masks of all threads ORed together, from
 * /proc/self/task/(tid)/status (a thread with an empty effective set can
 * raise its permitted set again). EDR_CAPS_UNKNOWN (all bits set), logged as
 * an error, when no status could be read: never 0, which means "none". */
#define EDR_CAPS_UNKNOWN (~0ull)
unsigned long long edr__caps_effective_all(void);

#endif
