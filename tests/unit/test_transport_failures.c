/* How the udp, tcp, pcap and inproc transports fail: every case ends in a clear error,
 * never a crash, SIGPIPE or hang. Networking is on loopback only. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

#include "pktutil.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

static struct spc_heap *make_heap(size_t payload)
{
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    uint8_t *buf = calloc(1, payload ? payload : 1);
    for (size_t i = 0; i < payload; i++)
        buf[i] = (uint8_t)(i * 13 + 5);
    cr_assert_eq(spc_heap_adopt(h, buf, NULL), 0);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, buf, payload, false), 0);
    return h;
}

static int open_handle(struct spc_transport_handle **h, const char *json, char *err, size_t errlen)
{
    struct spc_config *cfg;
    int rc = spc_config_parse(&cfg, json, err, errlen);
    if (rc < 0)
        return rc;
    rc = spc_transport_handle_open(h, cfg, err, errlen);
    spc_config_destroy(cfg);
    return rc;
}

static struct spc_transport_handle *must_open(const char *json)
{
    char err[1024];
    struct spc_transport_handle *h;
    int rc = open_handle(&h, json, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", spc_strerror(rc), err);
    return h;
}

/* A UDP socket bound on 127.0.0.1 with a port of its own. */
static int udp_receiver(unsigned *port)
{
    int fd = tu_udp_loopback(port, 4 << 20);
    cr_assert_geq(fd, 0, "%s", strerror(-fd));
    return fd;
}

/* Receives datagrams until none arrives for 200 ms; returns how many, sizes in sizes[]. */
static size_t udp_drain(int fd, size_t *sizes, size_t max)
{
    static uint8_t buf[70000];
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n < max && poll(&p, 1, 200) == 1) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        cr_assert_geq(r, 0);
        sizes[n++] = (size_t)r;
    }
    return n;
}

/* A port on 127.0.0.1 where nothing listens: bound (so no one else takes it) but never
 * listening, so a connect is refused. */
static int refusing_port(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Log capture. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void capture(void *user, int level, const char *msg)
{
    (void)user;
    pthread_mutex_lock(&log_lock);
    size_t len = strlen(log_text);
    snprintf(log_text + len, sizeof log_text - len, "%s: %s\n", spc_log_level_name(level), msg);
    pthread_mutex_unlock(&log_lock);
}

/* ------------------------------------------------------------------ tcp */

Test(tcp_failures, no_listener_blocking)
{
    unsigned port;
    int hold = refusing_port(&port);
    char json[256], err[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"options\": {\"endpoints\": [\"127.0.0.1:%u\"]}}", port);
    struct spc_transport_handle *h;
    int rc = open_handle(&h, json, err, sizeof err);
    cr_assert_eq(rc, -ECONNREFUSED, "%s: %s", spc_strerror(rc), err);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%u", port);
    cr_assert(strstr(err, where), "error names the peer: %s", err);
    cr_assert(strstr(err, "refused"), "%s", err);
    close(hold);
}

Test(tcp_failures, no_listener_async_fails_every_send)
{
    unsigned port;
    int hold = refusing_port(&port);
    char json[256];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"options\": {\"endpoints\": [\"127.0.0.1:%u\"], "
             "\"connect\": \"async\"}}", port);
    struct spc_transport_handle *h = must_open(json);
    struct spc_heap *heap = make_heap(3000);
    struct pkts p;
    packetize(&p, heap, 1, 1472);
    int st[8];
    cr_assert_eq(spc_transport_handle_send(h, p.p, p.n, 0, st), -ECONNREFUSED);
    for (size_t i = 0; i < p.n; i++)
        cr_assert_eq(st[i], -ECONNREFUSED);
    cr_assert_eq(spc_transport_handle_send(h, p.p, p.n, 0, st), -ECONNREFUSED, "and later");
    cr_assert(strstr(tu_handle_err(h), "refused"), "%s",
              tu_handle_err(h));
    spc_transport_handle_close(h);
    pkts_free(&p);
    spc_heap_destroy(heap);
    close(hold);
}

Test(tcp_failures, no_listener_stream)
{
    unsigned port;
    int hold = refusing_port(&port);
    char json[256], err[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"options\": {\"endpoints\": [\"127.0.0.1:%u\"]}}", port);
    struct spc_stream *s = NULL;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    cr_assert_eq(rc, -ECONNREFUSED, "%s: %s", spc_strerror(rc), err);
    cr_assert_null(s);
    close(hold);
}

struct closer {
    int listen_fd;
    size_t read_limit; /* bytes read before closing */
    bool reset;        /* close with RST (SO_LINGER 0) instead of FIN */
};

static void *closer_main(void *arg)
{
    struct closer *c = arg;
    struct pollfd p = {.fd = c->listen_fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return NULL;
    int fd = accept(c->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    static uint8_t buf[65536];
    size_t total = 0;
    while (total < c->read_limit) {
        struct pollfd q = {.fd = fd, .events = POLLIN};
        if (poll(&q, 1, 10000) != 1)
            break;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    if (c->reset) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
    return NULL;
}

static int tcp_listener(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static void peer_goes_away(bool reset)
{
    /* A SIGPIPE would kill the test process: make sure it is not ignored. */
    signal(SIGPIPE, SIG_DFL);
    unsigned port;
    struct closer c = {.listen_fd = tcp_listener(&port), .read_limit = 200000, .reset = reset};
    pthread_t th;
    pthread_create(&th, NULL, closer_main, &c);
    char json[256], err[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"stream\": {\"max_heaps\": 2}, "
             "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"], \"send_timeout\": 20}}", port);
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    struct spc_heap *heap = make_heap(50000);

    /* The peer takes 200 kB and goes: a heap fails within a bounded number of sends. */
    int first_err = 0;
    size_t sent_ok = 0;
    for (size_t i = 0; i < 4000 && !first_err; i++) {
        rc = spc_stream_send_sync(s, &SPC_HEAP_REF(heap), NULL);
        if (rc == 0)
            sent_ok++;
        else
            first_err = rc;
    }
    cr_assert_lt(first_err, 0, "a heap failed once the peer had gone");
    cr_assert(first_err == -SPC_ECLOSED || first_err == -ECONNRESET || first_err == -EPIPE,
              "clear error: %s", spc_strerror(first_err));
    cr_assert_geq(sent_ok, 3, "the first 200 kB went through (%zu heaps)", sent_ok);
    /* Every later heap fails too, at once. */
    for (int i = 0; i < 3; i++) {
        rc = spc_stream_send_sync(s, &SPC_HEAP_REF(heap), NULL);
        cr_assert_lt(rc, 0, "later heap %d: %s", i, spc_strerror(rc));
    }
    char text[512];
    spc_stream_last_error(s, text, sizeof text);
    cr_assert(strstr(text, "127.0.0.1"), "error names the peer: %s", text);
    spc_stream_close(s);
    spc_heap_destroy(heap);
    pthread_join(th, NULL);
    close(c.listen_fd);
}

Test(tcp_failures, peer_closes_mid_stream)
{
    peer_goes_away(false);
}

Test(tcp_failures, peer_resets_mid_stream)
{
    peer_goes_away(true);
}

Test(tcp_failures, peer_closed_before_send_handle)
{
    signal(SIGPIPE, SIG_DFL);
    unsigned port;
    struct closer c = {.listen_fd = tcp_listener(&port), .read_limit = 0};
    pthread_t th;
    pthread_create(&th, NULL, closer_main, &c);
    char json[256];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"options\": {\"endpoints\": [\"127.0.0.1:%u\"]}}", port);
    struct spc_transport_handle *h = must_open(json);
    pthread_join(th, NULL); /* the peer accepted and closed */
    struct spc_heap *heap = make_heap(1000);
    struct pkts p;
    packetize(&p, heap, 1, 1472);
    /* The peer's FIN is seen before writing: the send fails, no byte goes into the void. */
    int rc = spc_transport_handle_send(h, p.p, p.n, 0, NULL);
    cr_assert_eq(rc, -SPC_ECLOSED, "%s", spc_strerror(rc));
    cr_assert_eq(spc_transport_handle_send(h, p.p, p.n, 0, NULL), -SPC_ECLOSED);
    cr_assert(strstr(tu_handle_err(h), "closed"), "%s",
              tu_handle_err(h));
    spc_transport_handle_close(h);
    pkts_free(&p);
    spc_heap_destroy(heap);
    close(c.listen_fd);
}

Test(tcp_failures, bad_configurations)
{
    char err[1024];
    struct spc_transport_handle *h;
    int rc = open_handle(&h, "{\"transport\": \"tcp\", \"options\": {}}", err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "%s", err);
    cr_assert(strstr(err, "socket_fd"), "%s", err);
    rc = open_handle(&h, "{\"transport\": \"tcp\", \"options\": {\"endpoints\": "
                         "[\"127.0.0.1:1\", \"127.0.0.1:2\"]}}", err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "two endpoints: %s", err);
    rc = open_handle(&h, "{\"transport\": \"tcp\", \"options\": {\"endpoints\": "
                         "[\"no-such-host.invalid:7148\"]}}", err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err, "no-such-host.invalid"), "error names the host: %s", err);
    /* An existing socket that is not connected. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char json[256];
    snprintf(json, sizeof json, "{\"transport\": \"tcp\", \"options\": {\"socket_fd\": %d}}", fd);
    rc = open_handle(&h, json, err, sizeof err);
    cr_assert_eq(rc, -ENOTCONN, "%s: %s", spc_strerror(rc), err);
    close(fd);
    /* A UDP socket is no TCP connection. */
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    snprintf(json, sizeof json, "{\"transport\": \"tcp\", \"options\": {\"socket_fd\": %d}}", fd);
    rc = open_handle(&h, json, err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "%s", err);
    close(fd);
}

/* ------------------------------------------------------------------ udp */

static void too_large(bool gso, bool mmsg)
{
    unsigned port;
    int rx = udp_receiver(&port);
    char json[512];
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": 70000}, "
             "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"], \"gso\": %s, \"sendmmsg\": %s}}",
             port, gso ? "true" : "false", mmsg ? "true" : "false");
    struct spc_transport_handle *h = must_open(json);
    /* One batch: 4 small packets, one datagram too large for IPv4, 4 small ones. */
    struct spc_heap *small = make_heap(4 * 1400), *big = make_heap(68000);
    struct pkts ps, pb;
    packetize(&ps, small, 1, 1440);
    packetize(&pb, big, 2, 70000);
    cr_assert_eq(pb.n, 1);
    cr_assert_gt(pb.p[0].size, 65507);
    struct spc_packet batch[16];
    size_t n = 0;
    for (size_t i = 0; i < ps.n; i++)
        batch[n++] = ps.p[i];
    size_t big_at = n;
    batch[n++] = pb.p[0];
    for (size_t i = 0; i < ps.n; i++)
        batch[n++] = ps.p[i];
    int st[16];
    int rc = spc_transport_handle_send(h, batch, n, 0, st);
    cr_assert_eq(rc, -EMSGSIZE, "%s", spc_strerror(rc));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(st[i], i == big_at ? -EMSGSIZE : 0, "packet %zu: %s", i, spc_strerror(st[i]));
    const char *text = tu_handle_err(h);
    cr_assert(strstr(text, "substream 0") && strstr(text, "127.0.0.1"), "%s", text);
    /* Sending goes on. */
    cr_assert_eq(spc_transport_handle_send(h, ps.p, ps.n, 0, st), 0);
    size_t sizes[64];
    size_t got = udp_drain(rx, sizes, 64);
    cr_assert_eq(got, 3 * ps.n, "every small packet arrived");
    for (size_t i = 0; i < got; i++)
        cr_assert_eq(sizes[i], ps.p[i % ps.n].size);
    spc_transport_handle_close(h);
    pkts_free(&ps);
    pkts_free(&pb);
    spc_heap_destroy(small);
    spc_heap_destroy(big);
    close(rx);
}

Test(udp_failures, packet_too_large_gso)
{
    too_large(true, true);
}

Test(udp_failures, packet_too_large_plain)
{
    too_large(false, false);
}

Test(udp_failures, unresolvable_host)
{
    char err[1024];
    struct spc_transport_handle *h;
    int rc = open_handle(&h, "{\"transport\": \"udp\", \"options\": {\"endpoints\": "
                             "[\"127.0.0.1:7148\", \"no-such-host.invalid:7148\"]}}",
                         err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err, "no-such-host.invalid:7148"), "error names the host: %s", err);
    cr_assert(strstr(err, "endpoints[1]"), "%s", err);
}

Test(udp_failures, mixed_families)
{
    char err[1024];
    struct spc_transport_handle *h;
    int rc = open_handle(&h, "{\"transport\": \"udp\", \"options\": {\"endpoints\": "
                             "[\"127.0.0.1:7148\", \"[::1]:7148\"]}}", err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "%s", err);
    cr_assert(strstr(err, "family") && strstr(err, "[::1]:7148"), "%s", err);
    rc = open_handle(&h, "{\"transport\": \"udp\", \"options\": {\"endpoints\": "
                         "[\"[::1]:7148\"], \"interface_address\": \"127.0.0.1\"}}", err,
                     sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "%s", err);
    cr_assert(strstr(err, "family"), "%s", err);
}

Test(udp_failures, empty_endpoint_list)
{
    char err[1024];
    struct spc_config *cfg;
    int rc = spc_config_parse(&cfg, "{\"transport\": \"udp\", \"options\": {\"endpoints\": []}}",
                              err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG);
    cr_assert(strstr(err, "endpoints"), "%s", err);
    /* Built from C, the list is checked when the transport opens. */
    cr_assert_eq(spc_config_create(&cfg, "udp", NULL, NULL, err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h;
    rc = spc_transport_handle_open(&h, cfg, err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "%s", err);
    cr_assert(strstr(err, "endpoints"), "%s", err);
    spc_config_destroy(cfg);
}

Test(udp_failures, substream_out_of_range)
{
    unsigned p0, p1;
    int r0 = udp_receiver(&p0), r1 = udp_receiver(&p1);
    char json[256], err[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"options\": {\"endpoints\": [\"127.0.0.1:%u\", "
             "\"127.0.0.1:%u\"]}}", p0, p1);
    struct spc_transport_handle *h = must_open(json);
    cr_assert_eq(spc_transport_handle_n_substreams(h), 2);
    struct spc_heap *heap = make_heap(100);
    struct pkts p;
    packetize(&p, heap, 1, 1472);
    cr_assert_eq(spc_transport_handle_send(h, p.p, p.n, 2, NULL), -SPC_ESUBSTREAM);
    spc_transport_handle_close(h);

    struct spc_stream *s;
    cr_assert_eq(spc_stream_open_json(&s, json, NULL, err, sizeof err), 0, "%s", err);
    struct spc_heap_ref ref = SPC_HEAP_REF(heap);
    ref.substream = 2;
    cr_assert_eq(spc_stream_send_sync(s, &ref, NULL), -SPC_ESUBSTREAM);
    ref.substream = 1;
    cr_assert_eq(spc_stream_send_sync(s, &ref, NULL), 0);
    spc_stream_close(s);
    size_t sizes[4];
    cr_assert_eq(udp_drain(r1, sizes, 4), 1);
    cr_assert_eq(udp_drain(r0, sizes, 4), 0, "nothing went to substream 0");
    pkts_free(&p);
    spc_heap_destroy(heap);
    close(r0);
    close(r1);
}

Test(udp_failures, existing_socket_checks)
{
    char json[256], err[1024];
    struct spc_transport_handle *h;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"options\": {\"endpoints\": [\"127.0.0.1:7148\"], "
             "\"socket_fd\": %d}}", fd);
    int rc = open_handle(&h, json, err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "a TCP socket: %s", err);
    close(fd);
    rc = open_handle(&h, json, err, sizeof err); /* now a closed descriptor */
    cr_assert_eq(rc, -EBADF, "%s: %s", spc_strerror(rc), err);
    fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"options\": {\"endpoints\": [\"127.0.0.1:7148\"], "
             "\"socket_fd\": %d}}", fd);
    rc = open_handle(&h, json, err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "IPv6 socket, IPv4 endpoint: %s", err);
    cr_assert(strstr(err, "family"), "%s", err);
    close(fd);
}

/* A socket with UDP checksums off (SO_NO_CHECK) refuses GSO but sends plain datagrams:
 * the transport must fall back, switch GSO off for good, and lose nothing. */
Test(udp_failures, gso_fallback)
{
    unsigned port;
    int rx = udp_receiver(&port);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
    spc_set_log_handler(capture, NULL);
    char json[256];
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"options\": {\"endpoints\": [\"127.0.0.1:%u\"], "
             "\"socket_fd\": %d}}", port, fd);
    struct spc_transport_handle *h = must_open(json);
    close(fd); /* the transport holds its own duplicate */
    struct spc_heap *heap = make_heap(20000);
    struct pkts p;
    packetize(&p, heap, 1, 1472);
    int st[32];
    cr_assert_eq(spc_transport_handle_send(h, p.p, p.n, 0, st), 0);
    cr_assert_eq(spc_transport_handle_send(h, p.p, p.n, 0, st), 0);
    size_t sizes[64];
    cr_assert_eq(udp_drain(rx, sizes, 64), 2 * p.n);
    spc_transport_handle_close(h);
    spc_set_log_handler(NULL, NULL);
    cr_assert(strstr(log_text, "GSO is off"), "log: %s", log_text);
    const char *second = strstr(strstr(log_text, "GSO is off") + 1, "GSO is off");
    cr_assert_null(second, "switched off once, for good: %s", log_text);
    pkts_free(&p);
    spc_heap_destroy(heap);
    close(rx);
}

/* ------------------------------------------------------------------ pcap */

Test(pcap_failures, bad_configurations)
{
    char err[1024];
    struct spc_transport_handle *h;
    int rc = open_handle(&h, "{\"transport\": \"pcap\", \"options\": {\"path\": "
                             "\"/nonexistent-dir/x.pcap\", \"endpoints\": [\"127.0.0.1:7148\"]}}",
                         err, sizeof err);
    cr_assert_eq(rc, -ENOENT, "%s", err);
    cr_assert(strstr(err, "/nonexistent-dir/x.pcap"), "error names the file: %s", err);
    rc = open_handle(&h, "{\"transport\": \"pcap\", \"options\": {\"path\": \"/tmp/x.pcap\", "
                         "\"endpoints\": [\"[::1]:7148\"]}}", err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "pcap frames are IPv4: %s", err);
    rc = open_handle(&h, "{\"transport\": \"pcap\", \"options\": {\"path\": \"/tmp/x.pcap\", "
                         "\"endpoints\": [\"127.0.0.1:7148\"], \"source_mac\": "
                         "\"zz:00:00:00:00:00\"}}", err, sizeof err);
    cr_assert_eq(rc, -SPC_ECONFIG, "%s", err);
    cr_assert(strstr(err, "source_mac"), "%s", err);
    rc = open_handle(&h, "{\"transport\": \"pcap\", \"options\": {\"path\": \"/tmp/x.pcap\", "
                         "\"endpoints\": [\"no-such-host.invalid:1\"]}}", err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err, "no-such-host.invalid"), "%s", err);
}

Test(pcap_failures, oversized_packet_fails_alone)
{
    char path[] = "/tmp/spc-pcap-XXXXXX";
    int tmp = mkstemp(path);
    cr_assert_geq(tmp, 0);
    close(tmp);
    char json[512];
    snprintf(json, sizeof json,
             "{\"transport\": \"pcap\", \"stream\": {\"max_packet_size\": 70000}, "
             "\"options\": {\"path\": \"%s\", \"endpoints\": [\"239.1.2.3:7148\"]}}", path);
    struct spc_transport_handle *h = must_open(json);
    struct spc_heap *small = make_heap(3000), *big = make_heap(68000);
    struct pkts ps, pb;
    packetize(&ps, small, 1, 1472);
    packetize(&pb, big, 2, 70000);
    struct spc_packet batch[8];
    size_t n = 0;
    batch[n++] = ps.p[0];
    batch[n++] = pb.p[0];
    for (size_t i = 1; i < ps.n; i++)
        batch[n++] = ps.p[i];
    int st[8];
    cr_assert_eq(spc_transport_handle_send(h, batch, n, 0, st), -EMSGSIZE);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(st[i], i == 1 ? -EMSGSIZE : 0, "packet %zu", i);
    spc_transport_handle_close(h);
    /* The file holds the header and exactly the small packets' records. */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    long want = 24;
    for (size_t i = 0; i < ps.n; i++)
        want += 16 + 42 + (long)ps.p[i].size;
    cr_assert_eq(size, want);
    unlink(path);
    pkts_free(&ps);
    pkts_free(&pb);
    spc_heap_destroy(small);
    spc_heap_destroy(big);
}
