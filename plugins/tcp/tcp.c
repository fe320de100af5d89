/* The tcp transport: SPEAD packets written back to back on one TCP connection (SPEC
 * §4; SPEAD packets delimit themselves).
 *
 * send gathers the pieces of as many packets as fit in TCP_MAX_IOV iovecs into one
 * sendmsg (MSG_NOSIGNAL, so a lost peer is an error and never SIGPIPE), and continues a
 * partial write from the exact byte where it stopped. A packet's status is set once all
 * its bytes are written.
 *
 * A lost connection (refused, reset, peer gone) makes the transport dead: the packets
 * of the batch not yet written fail with the cause, and every later send returns the
 * same code at once, so the in-flight heap and all later ones fail.
 *
 * Invariant: after send returns, no packet is partly written unless the connection is
 * dead (a partial packet would corrupt the byte stream).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/transport.h"
#include "spcu_net.h"
#include "syscalls.h"

#define TCP_MAX_IOV 1024 /* UIO_MAXIOV */

enum { TCP_CONNECT_BLOCKING = 0, TCP_CONNECT_ASYNC = 1 };

struct tcp_options {
    struct spc_endpoint_list endpoints;
    int64_t socket_fd;
    int connect_mode;
    double connect_timeout;
    double send_timeout;
    uint64_t buffer_size;
    const char *interface_address;
};

struct tcp {
    struct spc_transport base;
    const struct tcp_options *opt;   /* borrowed until close */
    int fd;
    int dead;                        /* 0, or the code every later send returns */
    char peer[300];                  /* "host:port" for messages */
    uint64_t bytes_sent;
    /* Connecting (until connected): the remaining candidate addresses. */
    struct addrinfo *addrs;
    struct addrinfo *next_addr;
    bool connecting;                 /* a non-blocking connect to cur_addr is under way */
    uint64_t connect_deadline;       /* ns, 0 = no limit */
    struct sockaddr_storage iface;
    socklen_t iface_len;
    struct iovec iov[TCP_MAX_IOV];
};

static const char *const connect_choices[] = {"blocking", "async", NULL};

static const struct spc_option tcp_option_table[] = {
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct tcp_options, endpoints), .flags = SPC_OPT_ONE_OF,
     .min_count = 1, .max_count = 1,
     .help = "the one peer to connect to, \"host:port\" or \"[v6addr]:port\" (every address "
             "the name resolves to is tried in turn); give this or socket_fd"},
    {SPC_OPTION_INIT, .name = "socket_fd", .type = SPC_OPT_INT,
     .offset = offsetof(struct tcp_options, socket_fd),
     .flags = SPC_OPT_ONE_OF | SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.i = -1, .min.i = -1,
     .max.i = 0x7fffffff,
     .help = "an existing connected TCP socket (duplicated at open; the caller keeps its "
             "own); -1 = connect to endpoints"},
    {SPC_OPTION_INIT, .name = "connect", .type = SPC_OPT_ENUM,
     .offset = offsetof(struct tcp_options, connect_mode), .flags = SPC_OPT_DEFAULT,
     .def.s = "blocking", .choices = connect_choices,
     .help = "blocking: open waits for the connection; async: open returns at once and the "
             "first send waits for it (a failure then fails that send and every later one)"},
    {SPC_OPTION_INIT, .name = "connect_timeout", .type = SPC_OPT_DOUBLE,
     .offset = offsetof(struct tcp_options, connect_timeout),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.d = 10.0, .min.d = 0.0,
     .max.d = 86400.0,
     .help = "seconds to wait for the connection, all addresses together; 0 = no limit"},
    {SPC_OPTION_INIT, .name = "send_timeout", .type = SPC_OPT_DOUBLE,
     .offset = offsetof(struct tcp_options, send_timeout),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.d = 0.0, .min.d = 0.0,
     .max.d = 86400.0,
     .help = "seconds a send may wait without the peer taking a byte before the connection "
             "is declared dead (ETIMEDOUT); 0 = wait as long as the peer is alive"},
    {SPC_OPTION_INIT, .name = "buffer_size", .type = SPC_OPT_UINT,
     .offset = offsetof(struct tcp_options, buffer_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 0, .max.u = 0x7fffffff,
     .help = "socket send buffer in bytes (SO_SNDBUF); 0 = the OS default (autotuned)"},
    {SPC_OPTION_INIT, .name = "interface_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct tcp_options, interface_address), .min_count = 1,
     .help = "local address to connect from (the socket is bound to it)"},
};

/* The core's monotonic clock (svc->clock_ns), in ns. */
static uint64_t now_ns(const struct tcp *c)
{
    return c->base.svc->clock_ns();
}

static uint64_t deadline_after(const struct tcp *c, double seconds)
{
    return seconds > 0 ? now_ns(c) + (uint64_t)(seconds * 1e9) : 0;
}

/* Milliseconds poll may wait before deadline (0 = none): -1 for no limit. */
static int poll_ms(const struct tcp *c, uint64_t deadline)
{
    if (!deadline)
        return -1;
    uint64_t now = now_ns(c);
    if (now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > 1000 ? 1000 : (int)ms;
}

/* ------------------------------------------------------------------ connecting */

static void close_fd(struct tcp *c)
{
    if (c->fd >= 0)
        spcu_sys.close(c->fd);
    c->fd = -1;
}

static int resolve_peer(struct tcp *c, const struct spc_endpoint *ep)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    char port_s[8];
    snprintf(port_s, sizeof port_s, "%u", (unsigned)ep->port);
    errno = 0;
    int rc = getaddrinfo(ep->host, port_s, &hints, &c->addrs);
    if (rc != 0) {
        int e = errno;
        c->addrs = NULL;
        c->base.svc->set_error(&c->base, "cannot resolve %s: %s", c->peer, spcu_gai_text(rc, e));
        return spcu_gai_code(rc, e);
    }
    c->next_addr = c->addrs;
    return 0;
}

static int resolve_iface(struct tcp *c)
{
    const char *host = c->opt->interface_address, *why = "";
    int rc = spcu_resolve(host, 0, AF_UNSPEC, SOCK_STREAM, AI_PASSIVE, &c->iface, &c->iface_len, NULL, &why);
    if (rc < 0)
        c->base.svc->set_error(&c->base, "cannot resolve interface_address %s: %s", host, why);
    return rc;
}

/* Starts a non-blocking connect to the next candidate address. Returns 0 (connecting
 * or connected), or the error of the last address once none is left. */
static int start_connect(struct tcp *c, int last_err)
{
    while (c->next_addr) {
        struct addrinfo *ai = c->next_addr;
        c->next_addr = ai->ai_next;
        if (c->opt->interface_address && ai->ai_family != c->iface.ss_family)
            continue;
        c->fd = spcu_sys.socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
            last_err = errno;
            continue;
        }
        if (c->opt->buffer_size) {
            int v = (int)c->opt->buffer_size;
            spcu_sys.setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        }
        if (c->opt->interface_address &&
            spcu_sys.bind(c->fd, (struct sockaddr *)&c->iface, c->iface_len) != 0) {
            last_err = errno;
            close_fd(c);
            continue;
        }
        if (spcu_sys.connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            c->connecting = false;
            return 0;
        }
        if (errno == EINPROGRESS) {
            c->connecting = true;
            return 0;
        }
        last_err = errno;
        close_fd(c);
    }
    c->connecting = false;
    if (!last_err)
        last_err = c->opt->interface_address ? EAFNOSUPPORT : EHOSTUNREACH;
    c->base.svc->set_error(&c->base, "connecting to %s: %s", c->peer, strerror(last_err));
    return -last_err;
}

/* Waits for the connect under way (trying later addresses on failure) until
 * connect_deadline. Returns 0 once connected. */
static int finish_connect(struct tcp *c)
{
    while (c->connecting) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        int ms = poll_ms(c, c->connect_deadline);
        if (ms == 0) {
            close_fd(c);
            c->connecting = false;
            c->base.svc->set_error(&c->base, "connecting to %s: no answer within %g s",
                                   c->peer, c->opt->connect_timeout);
            return -ETIMEDOUT;
        }
        int r = spcu_sys.poll(&pfd, 1, ms);
        if (r < 0 && errno != EINTR) {
            int e = errno;
            close_fd(c);
            c->connecting = false;
            c->base.svc->set_error(&c->base, "connecting to %s: poll: %s", c->peer, strerror(e));
            return -e;
        }
        if (r <= 0)
            continue;
        int err = 0;
        socklen_t len = sizeof err;
        if (spcu_sys.getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0) {
            c->connecting = false;
            break;
        }
        close_fd(c);
        int rc = start_connect(c, err);
        if (rc < 0)
            return rc;
    }
    freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
    return 0;
}

static int use_existing_socket(struct tcp *c)
{
    int src = (int)c->opt->socket_fd;
    int type = 0;
    socklen_t len = sizeof type;
    if (spcu_sys.getsockopt(src, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        int e = errno;
        c->base.svc->set_error(&c->base, "socket_fd %d: %s", src, strerror(e));
        return e == ENOTSOCK ? -SPC_ECONFIG : -e;
    }
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (type != SOCK_STREAM) {
        c->base.svc->set_error(&c->base, "socket_fd %d is not a stream socket", src);
        return -SPC_ECONFIG;
    }
    if (getpeername(src, (struct sockaddr *)&ss, &len) != 0) {
        int e = errno;
        c->base.svc->set_error(&c->base, "socket_fd %d is not connected: %s", src, strerror(e));
        return -e;
    }
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(c->peer, sizeof c->peer, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
                 host, serv);
    else
        snprintf(c->peer, sizeof c->peer, "socket_fd %d", src);
    c->fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    if (c->fd < 0) {
        int e = errno;
        c->base.svc->set_error(&c->base, "duplicating socket_fd %d: %s", src, strerror(e));
        return -e;
    }
    return 0;
}

static void tcp_release(struct tcp *c)
{
    close_fd(c);
    if (c->addrs)
        freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
}

static int tcp_open(struct spc_transport *t, const void *options,
                    const struct spc_transport_params *params)
{
    (void)params;
    struct tcp *c = spc_container_of(t, struct tcp, base);
    const struct tcp_options *o = options;
    c->opt = o;
    c->fd = -1;
    bool have_ep = o->endpoints.n == 1, have_fd = o->socket_fd >= 0;
    if (have_ep == have_fd) {
        t->svc->set_error(t, have_ep ? "give endpoints or socket_fd, not both"
                                     : "no peer: give one endpoint or socket_fd");
        return -SPC_ECONFIG;
    }
    if (have_fd && (o->interface_address || o->buffer_size)) {
        t->svc->set_error(t, "socket_fd cannot be combined with interface_address or "
                             "buffer_size: configure the socket itself");
        return -SPC_ECONFIG;
    }
    t->n_substreams = 1;
    int rc;
    if (have_fd) {
        rc = use_existing_socket(c);
    } else {
        const struct spc_endpoint *ep = o->endpoints.items[0];
        snprintf(c->peer, sizeof c->peer, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u",
                 ep->host, (unsigned)ep->port);
        rc = o->interface_address ? resolve_iface(c) : 0;
        if (rc == 0)
            rc = resolve_peer(c, ep);
        c->connect_deadline = deadline_after(c, o->connect_timeout);
        if (rc == 0)
            rc = start_connect(c, 0);
        if (rc == 0 && o->connect_mode == TCP_CONNECT_BLOCKING)
            rc = finish_connect(c);
    }
    if (rc < 0)
        tcp_release(c);
    return rc;
}

static void tcp_close(struct spc_transport *t)
{
    tcp_release(spc_container_of(t, struct tcp, base));
}

/* ------------------------------------------------------------------ sending */

static int lost_code(int e)
{
    return e == EPIPE ? -SPC_ECLOSED : -e;
}

/* Marks the connection dead with code and the detail text. */
static int go_dead(struct tcp *c, int code, const char *why)
{
    c->dead = code;
    c->base.svc->set_error(&c->base, "connection to %s lost after %" PRIu64 " bytes: %s",
                           c->peer, c->bytes_sent, why);
    close_fd(c);
    return code;
}

/* Returns 0 while the peer is there; a dead code once it has hung up (a SPEAD receiver
 * never sends, so end-of-file from it means it is gone). */
static int check_peer(struct tcp *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLRDHUP};
    if (spcu_sys.poll(&pfd, 1, 0) <= 0)
        return 0;
    if (pfd.revents & POLLERR) {
        int err = 0;
        socklen_t len = sizeof err;
        spcu_sys.getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            return go_dead(c, lost_code(err), strerror(err));
    }
    if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
        return go_dead(c, -SPC_ECLOSED, "the peer closed the connection");
    return 0;
}

static int tcp_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct tcp *c = spc_container_of(t, struct tcp, base);
    if (!c->dead && c->connecting) {
        int rc = finish_connect(c);
        if (rc < 0) {
            c->dead = rc;
            close_fd(c);
        }
    }
    if (!c->dead)
        check_peer(c);
    if (c->dead)
        return c->dead;

    size_t cur = 0, off = 0;   /* next packet and bytes of it already written */
    uint64_t stall_start = 0;
    while (cur < b->n_packets) {
        /* Gather pieces from packet cur (skipping off bytes) onwards. */
        size_t niov = 0;
        size_t skip = off;
        for (size_t i = cur; i < b->n_packets && niov < TCP_MAX_IOV; i++) {
            const struct spc_tx_packet *p = spc_tx_batch_packet(b, i);
            if (niov + p->n_iov > TCP_MAX_IOV && niov > 0)
                break;
            for (uint32_t k = 0; k < p->n_iov && niov < TCP_MAX_IOV; k++) {
                struct iovec v = p->iov[k];
                if (skip >= v.iov_len) {
                    skip -= v.iov_len;
                    continue;
                }
                v.iov_base = (char *)v.iov_base + skip;
                v.iov_len -= skip;
                skip = 0;
                if (v.iov_len)
                    c->iov[niov++] = v;
            }
        }
        ssize_t w = 0;
        if (niov) {
            struct msghdr m = {.msg_iov = c->iov, .msg_iovlen = niov};
            w = spcu_sys.sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (w < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            /* ENOBUFS/ENOMEM: the kernel is short of memory for a moment; nothing was
             * written, so wait as for a full buffer (poll cannot see it: back off 1 ms),
             * under the same send_timeout, instead of killing the connection. */
            if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM) {
                uint64_t now = now_ns(c);
                if (!stall_start)
                    stall_start = now;
                uint64_t deadline = c->opt->send_timeout > 0
                                        ? stall_start + (uint64_t)(c->opt->send_timeout * 1e9)
                                        : 0;
                int ms = poll_ms(c, deadline);
                if (ms == 0) {
                    go_dead(c, -ETIMEDOUT, "the peer took nothing for send_timeout");
                    break;
                }
                struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
                if (e == ENOBUFS || e == ENOMEM)
                    nanosleep(&(struct timespec){0, 1000000}, NULL);
                else
                    spcu_sys.poll(&pfd, 1, ms);
                continue;
            }
            go_dead(c, lost_code(e), e == EPIPE ? "the peer closed the connection" : strerror(e));
            break;
        }
        stall_start = 0;
        c->bytes_sent += (uint64_t)w;
        /* Advance over the bytes written; zero-size packets complete as they are passed. */
        size_t left = (size_t)w, before = cur;
        while (cur < b->n_packets) {
            struct spc_tx_packet *p = spc_tx_batch_packet(b, cur);
            size_t rem = p->size - off;
            if (left < rem) {
                off += left;
                break;
            }
            left -= rem;
            p->status = 0;
            cur++;
            off = 0;
        }
        if (w == 0 && cur == before) {
            /* Only possible when a packet's size exceeds its pieces: refuse it rather
             * than loop. */
            spc_tx_batch_packet(b, cur)->status = -EINVAL;
            go_dead(c, -EINVAL, "a packet's size does not match its pieces");
            cur++;
            break;
        }
    }
    for (; cur < b->n_packets; cur++)
        spc_tx_batch_packet(b, cur)->status = c->dead;
    return 0;
}

static const struct spc_transport_ops tcp_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = tcp_open,
    .close = tcp_close,
    .send = tcp_send,
};

static const struct spc_transport_descriptor tcp_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "tcp",
    .version = "1.0.0",
    .description = "SPEAD packets back to back on one TCP connection, many per sendmsg",
    .caps = SPC_TRANSPORT_CAP_RELIABLE,
    .options = tcp_option_table,
    .n_options = sizeof tcp_option_table / sizeof tcp_option_table[0],
    .options_size = sizeof(struct tcp_options),
    .object_size = sizeof(struct tcp),
    .max_substreams = 1,
    .ops = &tcp_ops,
};

SPC_TRANSPORT_DEFINE(tcp_descriptor)
