/* Version of the edr components and of the wire schema. */
#ifndef EDR_VERSION_H
#define EDR_VERSION_H

#define EDR_VERSION_STRING "0.1.0"

/* "edr 0.1.0 (frame v1, schema edr.v1, librdkafka X, zstd Y, protobuf-c Z)" */
const char *edr_version_long(void);

#endif
