/* speadcast-recv's sockets: UDP sources (unicast and multicast) and TCP listeners with
 * their connections. Byte streams are parsed by speadcast-recv.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

/* ------------------------------------------------------------ UDP */

static int resolve(const struct spct_endpoint *ep, int socktype, struct sockaddr_storage *out,
                   socklen_t *out_len, char *msg, size_t msg_len)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%u", ep->port);
    int rc = getaddrinfo(ep->host[0] ? ep->host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(msg, msg_len, "cannot resolve '%s': %s", ep->host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *out_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void set_rcvbuf(struct spct_rx *rx, int fd, uint64_t want, const char *name)
{
    int v = (int)want;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    int got = 0;
    socklen_t len = sizeof got;
    /* Linux reports twice the usable size it granted. */
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && (uint64_t)got / 2 < want)
        fprintf(rx->err, RECV_PROG ": %s: asked for a %" PRIu64 "-byte receive buffer, got %d "
                "(raise net.core.rmem_max)\n", name, want, got / 2);
}

/* Parses and resolves a host:port source, adds it and opens its non-blocking socket.
 * Returns the source (its fd open) or NULL after printing why. */
static struct spct_rx_source *open_socket_source(struct spct_rx *rx, size_t index, const char *text,
                                         int socktype, enum spct_rx_kind kind, struct sockaddr_storage *sa,
                                         socklen_t *sa_len)
{
    struct spct_endpoint ep;
    char msg[512];
    if (spct_parse_endpoint(text, true, &ep, msg, sizeof msg) < 0) {
        fprintf(rx->err, RECV_PROG ": source %s\n", msg);
        return NULL;
    }
    if (resolve(&ep, socktype, sa, sa_len, msg, sizeof msg) < 0) {
        fprintf(rx->err, RECV_PROG ": %s\n", msg);
        return NULL;
    }
    struct spct_rx_source *s = spct_rx_add_source(rx, kind, index, text);
    if (!s)
        return NULL;
    s->fd = socket(sa->ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        fprintf(rx->err, RECV_PROG ": %s: socket: %s\n", text, strerror(errno));
        return NULL;
    }
    return s;
}

int spct_rx_open_udp(struct spct_rx *rx, size_t index, const char *text)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct spct_rx_source *s = open_socket_source(rx, index, text, SOCK_DGRAM, SRC_UDP, &sa, &sa_len);
    if (!s)
        return -1;
    int one = 1;
    bool multicast = (sa.ss_family == AF_INET &&
                      IN_MULTICAST(ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr))) ||
                     (sa.ss_family == AF_INET6 &&
                      IN6_IS_ADDR_MULTICAST(&((struct sockaddr_in6 *)&sa)->sin6_addr));
    if (multicast)
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    set_rcvbuf(rx, s->fd, rx->o->buffer, text);
    if (bind(s->fd, (struct sockaddr *)&sa, sa_len) < 0) {
        fprintf(rx->err, RECV_PROG ": %s: bind: %s\n", text, strerror(errno));
        return -1;
    }
    if (multicast && sa.ss_family == AF_INET) {
        struct ip_mreq mreq;
        mreq.imr_multiaddr = ((struct sockaddr_in *)&sa)->sin_addr;
        mreq.imr_interface.s_addr = htonl(INADDR_ANY);
        if (rx->o->bind && inet_pton(AF_INET, rx->o->bind, &mreq.imr_interface) != 1) {
            fprintf(rx->err, RECV_PROG ": --bind: '%s' is not an IPv4 address\n", rx->o->bind);
            return -1;
        }
        if (setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) {
            fprintf(rx->err, RECV_PROG ": %s: joining the group: %s\n", text, strerror(errno));
            return -1;
        }
    } else if (multicast) {
        struct ipv6_mreq mreq;
        mreq.ipv6mr_multiaddr = ((struct sockaddr_in6 *)&sa)->sin6_addr;
        mreq.ipv6mr_interface = 0;
        if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) < 0) {
            fprintf(rx->err, RECV_PROG ": %s: joining the group: %s\n", text, strerror(errno));
            return -1;
        }
    } else if (rx->o->bind && !rx->o->quiet) {
        fprintf(rx->err, RECV_PROG ": --bind applies to multicast sources only; ignored for %s\n",
                text);
    }
    return 0;
}

void spct_rx_read_udp(struct spct_rx *rx, struct spct_rx_source *s)
{
    size_t stride = (size_t)rx->o->packet + 1;
    for (int round = 0; round < 64 && !spct_rx_finished(rx); round++) {
        for (int i = 0; i < RECV_UDP_BATCH; i++) {
            rx->iovs[i].iov_base = rx->udp_bufs + (size_t)i * stride;
            rx->iovs[i].iov_len = stride;
            memset(&rx->msgs[i].msg_hdr, 0, sizeof rx->msgs[i].msg_hdr);
            rx->msgs[i].msg_hdr.msg_iov = &rx->iovs[i];
            rx->msgs[i].msg_hdr.msg_iovlen = 1;
            rx->msgs[i].msg_len = 0;
        }
        int n = recvmmsg(s->fd, rx->msgs, RECV_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                spct_rx_bad_packet(rx, s, -errno, strerror(errno));
            return;
        }
        spct_rx_note_packet(rx);
        for (int i = 0; i < n && !spct_rx_finished(rx); i++) {
            rx->r.packets++;
            size_t len = rx->msgs[i].msg_len;
            if ((rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len > rx->o->packet) {
                char what[128];
                snprintf(what, sizeof what, "datagram larger than --packet %" PRIu64,
                         rx->o->packet);
                spct_rx_bad_packet(rx, s, 0, what);
                continue;
            }
            int rc = spc_decoder_add_packet(s->dec, rx->iovs[i].iov_base, len, NULL);
            if (rc < 0)
                spct_rx_bad_packet(rx, s, rc, NULL);
            spct_rx_drain(rx, s);
        }
        if (n < RECV_UDP_BATCH)
            return;
    }
}

/* ------------------------------------------------------------ TCP */

int spct_rx_open_tcp(struct spct_rx *rx, size_t index, const char *text)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct spct_rx_source *s = open_socket_source(rx, index, text, SOCK_STREAM, SRC_TCP_LISTEN, &sa, &sa_len);
    if (!s)
        return -1;
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rx->o->given_buffer)
        set_rcvbuf(rx, s->fd, rx->o->buffer, text);
    if (bind(s->fd, (struct sockaddr *)&sa, sa_len) < 0 || listen(s->fd, 16) < 0) {
        fprintf(rx->err, RECV_PROG ": %s: %s\n", text, strerror(errno));
        return -1;
    }
    return 0;
}

/* How long a listener rests after accept() ran out of file descriptors: the pending
 * connection keeps it readable, so polling it at once would spin. */
#define ACCEPT_BACKOFF 0.25

void spct_rx_accept_tcp(struct spct_rx *rx, size_t listener)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(rx->src[listener].fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (!rx->warned_accept) {
                    fprintf(rx->err, RECV_PROG ": %s: cannot accept connections: %s (too many "
                            "open files?); retrying every %g s\n", rx->src[listener].name,
                            strerror(errno), ACCEPT_BACKOFF);
                    rx->warned_accept = true;
                }
                rx->src[listener].paused_until = spct_now() + ACCEPT_BACKOFF;
            }
            return;
        }
        if (rx->n_conns >= rx->o->max_connections) {
            close(fd);
            if (rx->r.connections_refused++ == 0)
                fprintf(rx->err, RECV_PROG ": %s: connections beyond --max-connections %" PRIu64
                        " are closed at once (counted in the summary)\n",
                        rx->src[listener].name, rx->o->max_connections);
            continue;
        }
        size_t index = rx->src[listener].index;
        char name[300];
        spct_format_sockaddr((struct sockaddr *)&peer, name, sizeof name);
        struct spct_rx_source *s = spct_rx_add_source(rx, SRC_TCP_CONN, index, name);
        if (!s) { /* rx->src may have moved: the listener is rx->src[listener] */
            close(fd);
            return;
        }
        s->fd = fd;
        s->cap = (size_t)rx->o->packet + 65536;
        s->buf = malloc(s->cap);
        if (!s->buf || spct_rx_make_decoder(rx, s) < 0) {
            spct_rx_close_source(s);
            s->done = true;
            return;
        }
        rx->n_conns++;
        s->counted = true;
    }
}

void spct_rx_read_tcp(struct spct_rx *rx, struct spct_rx_source *s)
{
    for (int round = 0; round < 64 && !s->done; round++) {
        ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            if (n < 0)
                fprintf(rx->err, RECV_PROG ": %s: %s\n", s->name, strerror(errno));
            spct_rx_end_source(rx, s);
            return;
        }
        spct_rx_note_packet(rx);
        s->len += (size_t)n;
        spct_rx_parse_stream(rx, s);
        if (s->done)
            spct_rx_end_source(rx, s);
    }
}

