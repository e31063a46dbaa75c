/* The sensor's own sockets, by socket cookie. librdkafka creates the sensor's
 * sockets through edr_selfsock_socket_cb, which records each one's cookie, so
 * the fallback source can tell the sensor's own connections from others even
 * after they are gone (a reconnect to a down broker lives for microseconds). */
#ifndef EDR_SENSOR_SELFSOCK_H
#define EDR_SENSOR_SELFSOCK_H

#include <stdint.h>

/* Remembers a cookie; the last EDR_SELFSOCK_KEEP are kept. Thread-safe. */
void edr_selfsock_add(uint64_t cookie);
/* 1 when cookie is one of the last EDR_SELFSOCK_KEEP recorded. Thread-safe. */
int edr_selfsock_has(uint64_t cookie);
/* librdkafka's socket_cb: socket(2) with close-on-exec, the cookie recorded. */
int edr_selfsock_socket_cb(int domain, int type, int protocol, void *opaque);

#define EDR_SELFSOCK_KEEP 1024

#endif
