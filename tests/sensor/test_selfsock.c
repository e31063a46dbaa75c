/* The sensor's own sockets: librdkafka's socket callback records each socket's cookie, which is the
 * cookie sock_diag reports for it, so the fallback source leaves the sensor's own connections out. */
#include "edr_test.h"

#include "selfsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The cookie sock_diag reports for the IPv4 TCP listener on port, 0 if none. */
static uint64_t diag_cookie(unsigned port)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    assert_true(fd >= 0);
    struct {
        struct nlmsghdr nl;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nl.nlmsg_len = sizeof(req);
    req.nl.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nl.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = AF_INET;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << TCP_LISTEN;
    assert_int_equal(send(fd, &req, sizeof(req), 0), (ssize_t)sizeof(req));
    uint64_t found = 0;
    char buf[32768] __attribute__((aligned(8)));
    for (int done = 0; !done;) {
        ssize_t len = recv(fd, buf, sizeof(buf), 0);
        assert_true(len > 0);
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                done = 1;
                break;
            }
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (ntohs(m->id.idiag_sport) == port)
                found = (uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
        }
    }
    close(fd);
    return found;
}

static void test_callback_records_the_diag_cookie(void **state)
{
    (void)state;
    int fd = edr_selfsock_socket_cb(AF_INET, SOCK_STREAM, 0, NULL);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    uint64_t c = diag_cookie(ntohs(sa.sin_port));
    assert_true(c != 0);
    assert_true(edr_selfsock_has(c));
    /* a socket made elsewhere is not ours */
    int other = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in so = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(other, (struct sockaddr *)&so, sizeof(so)), 0);
    assert_int_equal(listen(other, 1), 0);
    sl = sizeof(so);
    getsockname(other, (struct sockaddr *)&so, &sl);
    uint64_t oc = diag_cookie(ntohs(so.sin_port));
    assert_true(oc != 0 && oc != c);
    assert_false(edr_selfsock_has(oc));
    close(other);
    close(fd);
    /* a failing socket() is passed through */
    errno = 0;
    assert_int_equal(edr_selfsock_socket_cb(-1, SOCK_STREAM, 0, NULL), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
}

/* The registry keeps the last EDR_SELFSOCK_KEEP cookies; 0 is never one. */
static void test_keeps_the_latest(void **state)
{
    (void)state;
    uint64_t base = 1ull << 60;
    for (uint64_t i = 0; i < EDR_SELFSOCK_KEEP + 10; i++)
        edr_selfsock_add(base + i);
    assert_false(edr_selfsock_has(base));
    assert_false(edr_selfsock_has(base + 9));
    assert_true(edr_selfsock_has(base + 10));
    assert_true(edr_selfsock_has(base + EDR_SELFSOCK_KEEP + 9));
    assert_false(edr_selfsock_has(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callback_records_the_diag_cookie),
        cmocka_unit_test(test_keeps_the_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
