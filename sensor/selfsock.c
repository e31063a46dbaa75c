/* The sensor's own sockets, by socket cookie (see selfsock.h). */
#include "selfsock.h"

#include <stdatomic.h>
#include <sys/socket.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static _Atomic uint64_t cookies[EDR_SELFSOCK_KEEP];
static atomic_uint next;

void edr_selfsock_add(uint64_t cookie)
{
    unsigned i = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    atomic_store_explicit(&cookies[i % EDR_SELFSOCK_KEEP], cookie, memory_order_release);
}

int edr_selfsock_has(uint64_t cookie)
{
    if (!cookie)
        return 0;
    for (unsigned i = 0; i < EDR_SELFSOCK_KEEP; i++)
        if (atomic_load_explicit(&cookies[i], memory_order_acquire) == cookie)
            return 1;
    return 0;
}

int edr_selfsock_socket_cb(int domain, int type, int protocol, void *opaque)
{
    (void)opaque;
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd >= 0) {
        uint64_t c = 0;
        socklen_t l = sizeof(c);
        /* asking gives the socket its cookie; sock_diag reports the same one */
        if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l) == 0)
            edr_selfsock_add(c);
    }
    return fd;
}
