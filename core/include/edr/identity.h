/* Identity: host ids, process entity ids, hex forms. */
#ifndef EDR_IDENTITY_H
#define EDR_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define EDR_ID_LEN 16

/* Process entity id = keyed 128-bit hash of (host id, boot id, tgid, task
 * start time in boot-clock ns). Never the pid alone: pids are reused. */
void edr_entity_id(const uint8_t host_id[EDR_ID_LEN], const uint8_t boot_id[EDR_ID_LEN],
                   uint32_t tgid, uint64_t start_boot_ns, uint8_t out[EDR_ID_LEN]);

/* Deterministic entity id for an imported process identifier (a Sysmon
 * ProcessGuid, as text), scoped to its host. */
void edr_entity_id_from_guid(const uint8_t host_id[EDR_ID_LEN], const char *guid, size_t len,
                             uint8_t out[EDR_ID_LEN]);

/* Host id from a name (imports have a hostname, not a machine id). */
void edr_host_id_from_name(const char *name, uint8_t out[EDR_ID_LEN]);

/* Host id of this machine: /etc/machine-id (32 hex digits), else hostname. */
int edr_host_id_local(uint8_t out[EDR_ID_LEN]);

/* Boot id from /proc/sys/kernel/random/boot_id; zero when unavailable. */
int edr_boot_id_local(uint8_t out[EDR_ID_LEN]);

/* Lower-case hex of n bytes into out (2n+1 bytes); returns out. */
char *edr_hex(const uint8_t *p, size_t n, char *out);
/* Parses exactly 2n hex digits (dashes ignored) into n bytes; 0 or EDR_EINVAL. */
int edr_unhex(const char *s, uint8_t *out, size_t n);

#endif
