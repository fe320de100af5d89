/* The udp transport: SPEAD packets as UDP datagrams (SPEC §3 "Writing packets", §4).
 *
 * One socket for the stream, one destination address per substream. send walks the
 * batch from a cursor: it builds up to UDP_MAX_MSGS messages, hands them to sendmmsg
 * (or sendmsg one by one), and moves the cursor past the messages the kernel took, so a
 * wait for buffer space resumes exactly at the first message not taken.
 *
 * GSO: consecutive packets of one substream, all of the first one's size except a
 * shorter last one, go as one message with a UDP_SEGMENT control message, which the
 * kernel cuts back into those datagrams. When a GSO message fails with a hard error its
 * packets are retried one per message; if that retry succeeds GSO was to blame and is
 * switched off for the rest of the stream (spead2's fallback), otherwise the error is
 * the packet's own and GSO stays on.
 *
 * Invariants in send: every packet before the cursor has its status set; packets in
 * [cursor, nogso_end) are sent one per message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define UDP_MAX_MSGS 64       /* messages per sendmmsg call */
#define UDP_MAX_SEGS 64       /* datagrams per GSO message */
#define UDP_IOV_ARENA 4096    /* iovecs for GSO messages per sendmmsg call */
#define UDP_MAX_MSG_IOV 1024  /* UIO_MAXIOV */
/* Largest UDP payload: the IPv4 total length, or the IPv6 payload length, is 16 bits. */
#define UDP_MAX_PAYLOAD_V4 (65535 - 20 - 8)
#define UDP_MAX_PAYLOAD_V6 (65535 - 8)
/* A socket that takes nothing for this long fails the rest of the batch. */
#define UDP_STALL_LIMIT_NS (10 * 1000000000ull)

struct udp_options {
    struct spc_endpoint_list endpoints;
    uint64_t buffer_size;
    const char *interface_address;
    uint64_t interface_index;
    uint64_t ttl;
    int64_t socket_fd;
    bool gso;
    bool use_sendmmsg;
};

union udp_cmsg {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
};

struct udp {
    struct spc_transport base;
    const struct udp_options *opt;   /* borrowed until close */
    int fd;
    int family;
    size_t max_payload;              /* UDP_MAX_PAYLOAD_V4/6: also the GSO message limit */
    bool gso;                        /* may turn off for good in send */
    bool use_sendmmsg;
    struct sockaddr_storage *dest;   /* one per substream */
    socklen_t dest_len;
    /* Scratch for one sendmmsg call. */
    struct mmsghdr msgs[UDP_MAX_MSGS];
    size_t msg_count[UDP_MAX_MSGS];  /* packets in each message */
    union udp_cmsg cmsg[UDP_MAX_MSGS];
    struct iovec arena[UDP_IOV_ARENA];
};

static const struct spc_option udp_option_table[] = {
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct udp_options, endpoints), .flags = SPC_OPT_REQUIRED,
     .min_count = 1,
     .help = "destinations, one per substream: \"host:port\" or \"[v6addr]:port\"; names "
             "are resolved at open and all must be of one address family"},
    {SPC_OPTION_INIT, .name = "buffer_size", .type = SPC_OPT_UINT,
     .offset = offsetof(struct udp_options, buffer_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 524288, .max.u = 0x7fffffff,
     .help = "socket send buffer in bytes (SO_SNDBUF); 0 = the OS default; a warning is "
             "logged when the OS grants less"},
    {SPC_OPTION_INIT, .name = "interface_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct udp_options, interface_address), .min_count = 1,
     .help = "local address to send from (the socket is bound to it); for IPv4 multicast "
             "also the outgoing interface"},
    {SPC_OPTION_INIT, .name = "interface_index", .type = SPC_OPT_UINT,
     .offset = offsetof(struct udp_options, interface_index),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 0, .max.u = 0x7fffffff,
     .help = "multicast outgoing interface by index (IPV6_MULTICAST_IF, or ip_mreqn for "
             "IPv4); 0 = the routing table decides"},
    {SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT,
     .offset = offsetof(struct udp_options, ttl),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 1, .max.u = 255,
     .help = "multicast time-to-live (IPv4) or hop limit (IPv6)"},
    {SPC_OPTION_INIT, .name = "socket_fd", .type = SPC_OPT_INT,
     .offset = offsetof(struct udp_options, socket_fd),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.i = -1, .min.i = -1,
     .max.i = 0x7fffffff,
     .help = "an existing unconnected UDP socket to send with (duplicated at open; the "
             "caller keeps its own); its options are left as they are; -1 = open one"},
    {SPC_OPTION_INIT, .name = "gso", .type = SPC_OPT_BOOL,
     .offset = offsetof(struct udp_options, gso), .flags = SPC_OPT_DEFAULT, .def.b = true,
     .help = "merge equal-size packets of a substream into UDP GSO messages (UDP_SEGMENT); "
             "switched off automatically when the kernel or device refuses it"},
    {SPC_OPTION_INIT, .name = "sendmmsg", .type = SPC_OPT_BOOL,
     .offset = offsetof(struct udp_options, use_sendmmsg), .flags = SPC_OPT_DEFAULT,
     .def.b = true,
     .help = "send many messages per system call with sendmmsg; false = one sendmsg each"},
};

/* ------------------------------------------------------------------ open */

static const char *family_name(int family)
{
    return family == AF_INET6 ? "IPv6" : "IPv4";
}

static int set_sockopt(struct udp *u, int level, int name, const void *val, socklen_t len,
                       const char *what)
{
    if (spcu_sys.setsockopt(u->fd, level, name, val, len) == 0)
        return 0;
    int e = errno;
    u->base.svc->set_error(&u->base, "setsockopt(%s): %s", what, strerror(e));
    return -e;
}

static int setup_buffer(struct udp *u, uint64_t want)
{
    if (want == 0)
        return 0;
    int v = (int)want;
    int rc = set_sockopt(u, SOL_SOCKET, SO_SNDBUF, &v, sizeof v, "SO_SNDBUF");
    if (rc < 0)
        return rc;
    int got = 0;
    socklen_t len = sizeof got;
    /* Linux reports twice the size granted (the kernel's bookkeeping share). */
    if (spcu_sys.getsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &got, &len) == 0 && (uint64_t)got / 2 < want)
        u->base.svc->log(&u->base, SPC_LOG_WARNING,
                         "buffer_size %" PRIu64 " clipped to %d bytes by the OS "
                         "(raise net.core.wmem_max)", want, got / 2);
    return 0;
}

static int setup_new_socket(struct udp *u, const struct sockaddr_storage *iface,
                            socklen_t iface_len)
{
    const struct udp_options *o = u->opt;
    u->fd = spcu_sys.socket(u->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        int e = errno;
        u->base.svc->set_error(&u->base, "socket(%s, SOCK_DGRAM): %s", family_name(u->family),
                               strerror(e));
        return -e;
    }
    int rc = setup_buffer(u, o->buffer_size);
    if (rc < 0)
        return rc;
    if (o->interface_address && spcu_sys.bind(u->fd, (const struct sockaddr *)iface, iface_len) != 0) {
        int e = errno;
        u->base.svc->set_error(&u->base, "bind to interface_address %s: %s",
                               o->interface_address, strerror(e));
        return -e;
    }
    int ttl = (int)o->ttl;
    if (u->family == AF_INET) {
        rc = set_sockopt(u, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl, "IP_MULTICAST_TTL");
        if (rc == 0 && o->interface_index) {
            struct ip_mreqn mr = {.imr_ifindex = (int)o->interface_index};
            rc = set_sockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr, "IP_MULTICAST_IF");
        } else if (rc == 0 && o->interface_address) {
            struct in_addr a = ((const struct sockaddr_in *)iface)->sin_addr;
            rc = set_sockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a, "IP_MULTICAST_IF");
        }
    } else {
        rc = set_sockopt(u, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl,
                         "IPV6_MULTICAST_HOPS");
        if (rc == 0 && o->interface_index) {
            unsigned idx = (unsigned)o->interface_index;
            rc = set_sockopt(u, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx,
                             "IPV6_MULTICAST_IF");
        }
    }
    return rc;
}

static int setup_existing_socket(struct udp *u)
{
    int src = (int)u->opt->socket_fd;
    int type = 0;
    socklen_t len = sizeof type;
    if (spcu_sys.getsockopt(src, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        int e = errno;
        u->base.svc->set_error(&u->base, "socket_fd %d: %s", src, strerror(e));
        return e == ENOTSOCK ? -SPC_ECONFIG : -e;
    }
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (type != SOCK_DGRAM || getsockname(src, (struct sockaddr *)&ss, &len) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        u->base.svc->set_error(&u->base, "socket_fd %d is not an IPv4 or IPv6 UDP socket", src);
        return -SPC_ECONFIG;
    }
    u->family = ss.ss_family;
    u->fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    if (u->fd < 0) {
        int e = errno;
        u->base.svc->set_error(&u->base, "duplicating socket_fd %d: %s", src, strerror(e));
        return -e;
    }
    return 0;
}

static int resolve_endpoints(struct udp *u)
{
    const struct spc_endpoint_list *eps = &u->opt->endpoints;
    u->dest = calloc(eps->n, sizeof *u->dest);
    if (!u->dest) {
        u->base.svc->set_error(&u->base, "out of memory for %zu endpoints", eps->n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < eps->n; i++) {
        const struct spc_endpoint *ep = eps->items[i];
        char text[300];
        spcu_endpoint_text(ep, text, sizeof text);
        socklen_t len = 0;
        bool other = false;
        const char *why = "";
        int rc = spcu_resolve(ep->host, ep->port, u->family, SOCK_DGRAM, 0, &u->dest[i], &len, &other, &why);
        if (rc < 0 && other) {
            u->base.svc->set_error(&u->base,
                                   "endpoints[%zu] %s has no %s address: all endpoints (and "
                                   "interface_address or socket_fd) must be one address family",
                                   i, text, family_name(u->family));
            return -SPC_ECONFIG;
        }
        if (rc < 0) {
            u->base.svc->set_error(&u->base, "cannot resolve endpoints[%zu] %s: %s", i, text, why);
            return rc;
        }
        if (u->family == AF_UNSPEC)
            u->family = u->dest[i].ss_family;
        u->dest_len = len;
    }
    return 0;
}

static void udp_release(struct udp *u)
{
    if (u->fd >= 0)
        spcu_sys.close(u->fd);
    u->fd = -1;
    free(u->dest);
    u->dest = NULL;
}

static int udp_open(struct spc_transport *t, const void *options,
                    const struct spc_transport_params *params)
{
    struct udp *u = spc_container_of(t, struct udp, base);
    const struct udp_options *o = options;
    u->opt = o;
    u->fd = -1;
    u->family = AF_UNSPEC;
    u->gso = o->gso;
    u->use_sendmmsg = o->use_sendmmsg;
    if (o->endpoints.n == 0) {
        t->svc->set_error(t, "endpoints is empty: give one destination per substream");
        return -SPC_ECONFIG;
    }
    if (o->socket_fd >= 0 && (o->interface_address || o->interface_index)) {
        t->svc->set_error(t, "socket_fd cannot be combined with interface_address or "
                             "interface_index: configure the socket itself");
        return -SPC_ECONFIG;
    }

    int rc = 0;
    struct sockaddr_storage iface;
    socklen_t iface_len = 0;
    if (o->socket_fd >= 0) {
        rc = setup_existing_socket(u);
    } else if (o->interface_address) {
        bool other = false;
        const char *why = "";
        rc = spcu_resolve(o->interface_address, 0, AF_UNSPEC, SOCK_DGRAM, 0, &iface, &iface_len, &other, &why);
        if (rc < 0)
            t->svc->set_error(t, "cannot resolve interface_address %s: %s",
                              o->interface_address, why);
        else
            u->family = iface.ss_family;
    }
    if (rc == 0)
        rc = resolve_endpoints(u);
    if (rc == 0 && u->fd < 0)
        rc = setup_new_socket(u, &iface, iface_len);
    if (rc < 0) {
        udp_release(u);
        return rc;
    }
    u->max_payload = u->family == AF_INET6 ? UDP_MAX_PAYLOAD_V6 : UDP_MAX_PAYLOAD_V4;
    if (params->max_packet_size > u->max_payload)
        t->svc->log(t, SPC_LOG_WARNING,
                    "max_packet_size %zu exceeds the largest %s UDP datagram (%zu bytes): "
                    "larger packets will fail", params->max_packet_size,
                    family_name(u->family), u->max_payload);
    t->n_substreams = (uint32_t)o->endpoints.n;
    return 0;
}

static void udp_close(struct spc_transport *t)
{
    udp_release(spc_container_of(t, struct udp, base));
}

/* ------------------------------------------------------------------ send */

/* Fills u->msgs from packet cur on. Returns the number of messages (>= 1). */
static size_t build_msgs(struct udp *u, struct spc_tx_batch *b, size_t cur, size_t nogso_end)
{
    size_t nmsg = 0, arena = 0;
    size_t i = cur;
    while (i < b->n_packets && nmsg < UDP_MAX_MSGS) {
        struct spc_tx_packet *p = spc_tx_batch_packet(b, i);
        size_t cnt = 1;
        if (u->gso && i >= nogso_end && p->size > 0) {
            size_t total = p->size, iovs = p->n_iov;
            while (i + cnt < b->n_packets && cnt < UDP_MAX_SEGS) {
                struct spc_tx_packet *q = spc_tx_batch_packet(b, i + cnt);
                if (q->substream != p->substream || q->size > p->size || q->size == 0 ||
                    total + q->size > u->max_payload || iovs + q->n_iov > UDP_MAX_MSG_IOV ||
                    arena + iovs + q->n_iov > UDP_IOV_ARENA)
                    break;
                total += q->size;
                iovs += q->n_iov;
                cnt++;
                if (q->size < p->size)
                    break; /* only the last segment may be short */
            }
        }
        struct msghdr *h = &u->msgs[nmsg].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &u->dest[p->substream];
        h->msg_namelen = u->dest_len;
        if (cnt == 1) {
            h->msg_iov = (struct iovec *)p->iov;
            h->msg_iovlen = p->n_iov;
        } else {
            /* Pieces that continue one another in memory merge into one (a heap laid out
             * as its packets gives one piece per message): the kernel copies one large
             * piece faster than many small ones. */
            h->msg_iov = &u->arena[arena];
            for (size_t k = 0; k < cnt; k++) {
                const struct spc_tx_packet *q = spc_tx_batch_packet(b, i + k);
                for (uint32_t v = 0; v < q->n_iov; v++) {
                    struct iovec *last = h->msg_iovlen ? &u->arena[arena - 1] : NULL;
                    if (last && (char *)last->iov_base + last->iov_len == q->iov[v].iov_base) {
                        last->iov_len += q->iov[v].iov_len;
                        continue;
                    }
                    u->arena[arena++] = q->iov[v];
                    h->msg_iovlen++;
                }
            }
            h->msg_control = u->cmsg[nmsg].buf;
            h->msg_controllen = sizeof u->cmsg[nmsg].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)p->size;
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        u->msg_count[nmsg] = cnt;
        nmsg++;
        i += cnt;
    }
    return nmsg;
}

/* Messages the kernel took (>= 1) from the first nmsg, or -errno for the first one. */
static int send_msgs(struct udp *u, size_t nmsg)
{
    if (u->use_sendmmsg) {
        int r = spcu_sys.sendmmsg(u->fd, u->msgs, (unsigned)nmsg, MSG_DONTWAIT);
        return r < 0 ? -errno : r;
    }
    size_t k = 0;
    for (; k < nmsg; k++) {
        if (spcu_sys.sendmsg(u->fd, &u->msgs[k].msg_hdr, MSG_DONTWAIT) < 0) {
            if (k == 0)
                return -errno;
            break;
        }
    }
    return (int)k;
}

/* Waits until the socket may take more. Returns false once nothing has gone out for
 * UDP_STALL_LIMIT_NS since *stall_start (0 = the stall starts now). */
static bool wait_writable(struct udp *u, int e, uint64_t *stall_start)
{
    uint64_t now = u->base.svc->clock_ns();
    if (!*stall_start)
        *stall_start = now;
    else if (now - *stall_start > UDP_STALL_LIMIT_NS)
        return false;
    struct pollfd pfd = {.fd = u->fd, .events = POLLOUT};
    int r = spcu_sys.poll(&pfd, 1, 10);
    /* ENOBUFS is a full device queue, which poll does not report: back off briefly. */
    if (e == ENOBUFS && r > 0) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void fail_packet(struct udp *u, struct spc_tx_packet *p, int code)
{
    p->status = code;
    char text[300];
    spcu_endpoint_text(u->opt->endpoints.items[p->substream], text, sizeof text);
    u->base.svc->set_error(&u->base, "sending a %zu-byte packet to substream %u (%s): %s",
                           p->size, (unsigned)p->substream, text, u->base.svc->strerror(code));
}

static int udp_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct udp *u = spc_container_of(t, struct udp, base);
    size_t cur = 0, nogso_end = 0;
    bool probing = false; /* a GSO message failed; its packets are being retried singly */
    uint64_t stall_start = 0;
    while (cur < b->n_packets) {
        size_t nmsg = build_msgs(u, b, cur, nogso_end);
        int r = send_msgs(u, nmsg);
        if (r > 0) {
            for (int m = 0; m < r; m++)
                for (size_t k = 0; k < u->msg_count[m]; k++)
                    spc_tx_batch_packet(b, cur++)->status = 0;
            if (probing) {
                u->gso = false;
                probing = false;
                t->svc->log(t, SPC_LOG_WARNING,
                            "UDP GSO failed where plain sends work: GSO is off for this stream");
            }
            stall_start = 0;
            continue;
        }
        int e = -r;
        if (e == EINTR)
            continue;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
            if (wait_writable(u, e, &stall_start))
                continue;
            for (; cur < b->n_packets; cur++)
                fail_packet(u, spc_tx_batch_packet(b, cur), -ETIMEDOUT);
            break;
        }
        if (u->msg_count[0] > 1) {
            t->svc->log(t, SPC_LOG_DEBUG, "a GSO message of %zu packets failed (%s): retrying "
                        "them one by one", u->msg_count[0], strerror(e));
            nogso_end = cur + u->msg_count[0];
            probing = true;
            continue;
        }
        probing = false; /* the packet fails on its own: GSO is not to blame */
        fail_packet(u, spc_tx_batch_packet(b, cur), -e);
        cur++;
        stall_start = 0;
    }
    return 0;
}

static const struct spc_transport_ops udp_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = udp_open,
    .close = udp_close,
    .send = udp_send,
};

static const struct spc_transport_descriptor udp_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "udp",
    .version = "1.0.0",
    .description = "UDP datagrams over kernel sockets, batched with sendmmsg and UDP GSO",
    .caps = SPC_TRANSPORT_CAP_PER_WRITER, /* objects share nothing: one per writer thread */
    .options = udp_option_table,
    .n_options = sizeof udp_option_table / sizeof udp_option_table[0],
    .options_size = sizeof(struct udp_options),
    .object_size = sizeof(struct udp),
    .max_substreams = 0,
    .ops = &udp_ops,
};

SPC_TRANSPORT_DEFINE(udp_descriptor)
