/* Capabilities of the sensor's threads. */
#ifndef EDR_SENSOR_CAPS_H
#define EDR_SENSOR_CAPS_H

#include <sys/capability.h>

/* Limits the calling thread (capabilities are per thread in Linux) to keep
 * (permitted and effective) and sets no_new_privs. 0, or EDR_EPERM /
 * EDR_ENOMEM with errno set. Threads created afterwards by this thread
 * inherit the limit; threads that already exist keep theirs. */
int edr__caps_limit(const cap_value_t *keep, int n_keep);

/* The CapEff mask of every thread of this process ORed together, from
 * /proc/self/task/(tid)/status; 0 when none could be read. */
unsigned long long edr__caps_effective_all(void);

#endif
