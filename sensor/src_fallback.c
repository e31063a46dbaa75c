/* Fallback source (stub while being written). */
#include "edr/err.h"
#include "sensor_int.h"
#include <stdio.h>
edr_source_t *edr_source_fallback_new(const struct edr_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    snprintf(err, errlen, "source fallback: not yet available");
    return NULL;
}
