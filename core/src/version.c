/* Version string with the versions of the libraries linked. */
#include "edr/version.h"
#include "edr/frame.h"

#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <zstd.h>

const char *edr_version_long(void)
{
    static char buf[256];
    snprintf(buf, sizeof(buf),
             "edr %s (frame v%d, schema edr.v1 v%d, librdkafka %s, zstd %s, protobuf-c %s)",
             EDR_VERSION_STRING, EDR_FRAME_VERSION, EDR_BATCH_SCHEMA_VERSION, rd_kafka_version_str(),
             ZSTD_versionString(), protobuf_c_version());
    return buf;
}
