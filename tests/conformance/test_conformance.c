/* The transport conformance suite: the same cases over every transport.
 *
 * Each case builds heaps (recording, independently of the encoder, the items each one
 * must decode to), sends them through a send stream on one transport variant, collects
 * what arrived on the receiving side (sockets, queue, file or buffer) packet by packet
 * per substream, and checks: the packet order (heap after heap, or round robin), and,
 * after reassembly with our decoder, every heap's cnt, flags and every item byte for
 * byte. Networking is on loopback only; every wait is bounded.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/frame.h"
#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

#define MAX_SUB 2
#define MAX_HEAPS 8
#define MAX_ITEMS 64
#define PCAP_BASE_PORT 7148
#define WAIT_MS 10000

/* ================================================================ variants */

enum kind {
    K_BYTES,
    K_UDP4,
    K_UDP4_PLAIN, /* gso and sendmmsg off */
    K_UDP6,
    K_UDP_MCAST,
    K_UDP_SOCKET,
    K_TCP4,
    K_TCP6,
    K_TCP_SOCKET,
    K_INPROC,
    K_PCAP
};

struct variant {
    char name[24];
    int kind;
};

static struct variant variants[] = {
    {"bytes", K_BYTES},           {"udp-ipv4", K_UDP4},     {"udp-ipv4-plain", K_UDP4_PLAIN},
    {"udp-ipv6", K_UDP6},         {"udp-multicast", K_UDP_MCAST},
    {"udp-socket", K_UDP_SOCKET}, {"tcp-ipv4", K_TCP4},     {"tcp-ipv6", K_TCP6},
    {"tcp-socket", K_TCP_SOCKET}, {"inproc", K_INPROC},     {"pcap", K_PCAP},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* ================================================================ collected packets */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + len)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

/* Packets of one substream, in arrival order. */
struct pktlist {
    size_t n, cap;
    uint8_t **data;
    size_t *size;
};

static void pkt_add(struct pktlist *l, const void *data, size_t size)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->data = realloc(l->data, l->cap * sizeof *l->data);
        l->size = realloc(l->size, l->cap * sizeof *l->size);
    }
    l->data[l->n] = malloc(size ? size : 1);
    memcpy(l->data[l->n], data, size);
    l->size[l->n] = size;
    l->n++;
}

static void pkt_free(struct pktlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->data[i]);
    free(l->data);
    free(l->size);
    memset(l, 0, sizeof *l);
}

/* Splits a byte stream of back-to-back packets. */
static void split_stream(struct pktlist *l, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        struct spc_packet_info info;
        int rc = spc_packet_parse(p + off, len - off, &info);
        cr_assert_eq(rc, 0, "bad packet at byte %zu of %zu: %s", off, len, spc_strerror(rc));
        pkt_add(l, p + off, info.packet_size);
        off += info.packet_size;
    }
}

/* ================================================================ receiving side */

struct rx {
    int kind;
    unsigned n_sub;
    int udp_fd[MAX_SUB];
    int listen_fd, given_fd; /* given_fd: the socket handed over as socket_fd */
    pthread_t th;
    bool th_running;
    atomic_bool done;
    struct buf tcp_bytes;
    char path[64];
    struct spc_inproc_queue *q[MAX_SUB];
    struct pktlist pk[MAX_SUB];
    char json[1024];
};

static int udp_rx_socket(int family, const char *addr, const char *group, unsigned *port)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, group ? group : addr, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    }
    cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind: %s", strerror(errno));
    if (group) {
        struct ip_mreq mr;
        inet_pton(AF_INET, group, &mr.imr_multiaddr);
        inet_pton(AF_INET, "127.0.0.1", &mr.imr_interface);
        cr_assert_eq(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr), 0,
                     "join %s on lo: %s", group, strerror(errno));
    }
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void *udp_rx_main(void *arg)
{
    struct rx *r = arg;
    static _Thread_local uint8_t buf[65536];
    struct pollfd p[MAX_SUB];
    for (unsigned i = 0; i < r->n_sub; i++)
        p[i] = (struct pollfd){.fd = r->udp_fd[i], .events = POLLIN};
    for (int idle_after_done = 0, rounds = 0; rounds < 60000 && idle_after_done < 3; rounds++) {
        int n = poll(p, r->n_sub, 20);
        if (n <= 0) {
            if (atomic_load(&r->done))
                idle_after_done++;
            continue;
        }
        for (unsigned i = 0; i < r->n_sub; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            ssize_t got;
            while ((got = recv(p[i].fd, buf, sizeof buf, MSG_DONTWAIT)) >= 0)
                pkt_add(&r->pk[i], buf, (size_t)got);
        }
    }
    return NULL;
}

static int tcp_listener(int family, unsigned *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void *tcp_rx_main(void *arg)
{
    struct rx *r = arg;
    struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
    if (poll(&p, 1, WAIT_MS) != 1)
        return NULL;
    int fd = accept(r->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    static _Thread_local uint8_t buf[1 << 16];
    for (;;) {
        struct pollfd q = {.fd = fd, .events = POLLIN};
        if (poll(&q, 1, WAIT_MS) != 1)
            break;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        buf_add(&r->tcp_bytes, buf, (size_t)n);
    }
    close(fd);
    return NULL;
}

/* Sets up the receiving side of a variant and the stream's JSON config. */
static void rx_setup(struct rx *r, int kind)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->listen_fd = r->given_fd = -1;
    r->n_sub = (kind == K_BYTES || kind == K_TCP4 || kind == K_TCP6 || kind == K_TCP_SOCKET)
                   ? 1 : MAX_SUB;
    for (unsigned i = 0; i < MAX_SUB; i++)
        r->udp_fd[i] = -1;
    unsigned port[MAX_SUB];
    /* UDP is paced so a loaded machine never overruns the receive buffers. */
    const char *udp_stream = "\"stream\": {\"rate\": 200e6}";
    switch (kind) {
    case K_BYTES:
        snprintf(r->json, sizeof r->json, "{\"transport\": \"bytes\"}");
        break;
    case K_UDP4:
    case K_UDP4_PLAIN:
        for (unsigned i = 0; i < r->n_sub; i++)
            r->udp_fd[i] = udp_rx_socket(AF_INET, "127.0.0.1", NULL, &port[i]);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"udp\", %s, \"options\": {\"endpoints\": "
                 "[\"127.0.0.1:%u\", {\"host\": \"localhost\", \"port\": %u}]%s}}",
                 udp_stream, port[0], port[1],
                 kind == K_UDP4_PLAIN ? ", \"gso\": false, \"sendmmsg\": false" : "");
        break;
    case K_UDP6:
        for (unsigned i = 0; i < r->n_sub; i++)
            r->udp_fd[i] = udp_rx_socket(AF_INET6, "::1", NULL, &port[i]);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"udp\", %s, \"options\": {\"endpoints\": "
                 "[\"[::1]:%u\", \"[::1]:%u\"]}}", udp_stream, port[0], port[1]);
        break;
    case K_UDP_MCAST:
        r->udp_fd[0] = udp_rx_socket(AF_INET, NULL, "239.255.77.1", &port[0]);
        r->udp_fd[1] = udp_rx_socket(AF_INET, NULL, "239.255.77.2", &port[1]);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"udp\", %s, \"options\": {\"endpoints\": "
                 "[\"239.255.77.1:%u\", \"239.255.77.2:%u\"], \"ttl\": 1, "
                 "\"interface_address\": \"127.0.0.1\"}}", udp_stream, port[0], port[1]);
        break;
    case K_UDP_SOCKET:
        for (unsigned i = 0; i < r->n_sub; i++)
            r->udp_fd[i] = udp_rx_socket(AF_INET, "127.0.0.1", NULL, &port[i]);
        r->given_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"udp\", %s, \"options\": {\"endpoints\": "
                 "[\"127.0.0.1:%u\", \"127.0.0.1:%u\"], \"socket_fd\": %d}}",
                 udp_stream, port[0], port[1], r->given_fd);
        break;
    case K_TCP4:
    case K_TCP6:
        r->listen_fd = tcp_listener(kind == K_TCP4 ? AF_INET : AF_INET6, &port[0]);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"tcp\", \"options\": {\"endpoints\": [\"%s:%u\"], "
                 "\"connect_timeout\": 10}}", kind == K_TCP4 ? "127.0.0.1" : "[::1]", port[0]);
        break;
    case K_TCP_SOCKET: {
        r->listen_fd = tcp_listener(AF_INET, &port[0]);
        r->given_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port[0]),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        cr_assert_eq(connect(r->given_fd, (struct sockaddr *)&a, sizeof a), 0);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"tcp\", \"options\": {\"socket_fd\": %d}}", r->given_fd);
        break;
    }
    case K_INPROC: {
        char name[MAX_SUB][64];
        for (unsigned i = 0; i < r->n_sub; i++) {
            snprintf(name[i], sizeof name[i], "conformance-%d-%u", (int)getpid(), i);
            cr_assert_eq(spc_inproc_queue_open(&r->q[i], name[i]), 0);
        }
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"inproc\", \"options\": {\"queues\": [\"%s\", \"%s\"], "
                 "\"stop_on_close\": true}}", name[0], name[1]);
        break;
    }
    case K_PCAP: {
        snprintf(r->path, sizeof r->path, "/tmp/spc-conformance-XXXXXX");
        int fd = mkstemp(r->path);
        cr_assert_geq(fd, 0);
        close(fd);
        snprintf(r->json, sizeof r->json,
                 "{\"transport\": \"pcap\", \"options\": {\"path\": \"%s\", \"endpoints\": "
                 "[\"239.255.77.1:%d\", \"10.0.0.2:%d\"], \"source_address\": \"10.0.0.1\", "
                 "\"destination_mac\": \"02:00:00:00:00:02\"}}",
                 r->path, PCAP_BASE_PORT, PCAP_BASE_PORT + 1);
        break;
    }
    default:
        cr_assert_fail("unknown variant %d", kind);
    }
    if (r->udp_fd[0] >= 0) {
        pthread_create(&r->th, NULL, udp_rx_main, r);
        r->th_running = true;
    } else if (r->listen_fd >= 0) {
        pthread_create(&r->th, NULL, tcp_rx_main, r);
        r->th_running = true;
    }
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Reads the pcap file back, checking every frame's headers. */
static void read_pcap(struct rx *r)
{
    FILE *f = fopen(r->path, "rb");
    cr_assert_not_null(f);
    struct buf b = {0};
    uint8_t tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    cr_assert_geq(b.len, 24);
    uint32_t gh[6];
    memcpy(gh, b.p, sizeof gh);
    cr_assert_eq(gh[0], 0xa1b2c3d4u);
    cr_assert_eq(gh[5], 1u, "LINKTYPE_ETHERNET");
    const uint8_t mcast_mac[6] = {0x01, 0x00, 0x5e, 0x7f, 0x4d, 0x01};
    const uint8_t uni_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
    size_t off = 24;
    while (off < b.len) {
        cr_assert_leq(off + 16, b.len);
        uint32_t rec[4];
        memcpy(rec, b.p + off, sizeof rec);
        cr_assert_eq(rec[2], rec[3], "whole frames recorded");
        cr_assert_leq(off + 16 + rec[2], b.len);
        const uint8_t *fr = b.p + off + 16;
        cr_assert_geq(rec[2], SPC_FRAME_HEADER_LEN);
        cr_assert_eq(be16(fr + 12), 0x0800);
        const uint8_t *ip = fr + 14, *udp = ip + 20;
        cr_assert_eq(spc_ipv4_checksum(ip, 20), 0, "IPv4 checksum");
        cr_assert_eq(be16(ip + 2), rec[2] - 14);
        cr_assert_eq(be16(udp + 4), rec[2] - 34);
        unsigned sub = be16(udp + 2) - PCAP_BASE_PORT;
        cr_assert_lt(sub, r->n_sub);
        cr_assert_arr_eq(fr, sub == 0 ? mcast_mac : uni_mac, 6);
        pkt_add(&r->pk[sub], fr + SPC_FRAME_HEADER_LEN, rec[2] - SPC_FRAME_HEADER_LEN);
        off += 16 + rec[2];
    }
    free(b.p);
}

/* After the stream has closed: gathers every packet that arrived. */
static void rx_finish(struct rx *r)
{
    atomic_store(&r->done, true);
    if (r->th_running)
        pthread_join(r->th, NULL);
    r->th_running = false;
    if (r->kind == K_TCP4 || r->kind == K_TCP6 || r->kind == K_TCP_SOCKET)
        split_stream(&r->pk[0], r->tcp_bytes.p, r->tcp_bytes.len);
    if (r->kind == K_INPROC) {
        for (unsigned i = 0; i < r->n_sub; i++) {
            struct spc_inproc_packet *p;
            int rc;
            while ((rc = spc_inproc_queue_pop(r->q[i], &p, WAIT_MS)) == 0) {
                pkt_add(&r->pk[i], p->data, p->size);
                spc_inproc_packet_free(p);
            }
            cr_assert_eq(rc, -SPC_ESTOPPED, "queue %u ends stopped: %s", i, spc_strerror(rc));
        }
    }
    if (r->kind == K_PCAP)
        read_pcap(r);
}

static void rx_free(struct rx *r)
{
    for (unsigned i = 0; i < MAX_SUB; i++) {
        if (r->udp_fd[i] >= 0)
            close(r->udp_fd[i]);
        spc_inproc_queue_close(r->q[i]);
        pkt_free(&r->pk[i]);
    }
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    if (r->given_fd >= 0)
        close(r->given_fd);
    if (r->path[0])
        unlink(r->path);
    free(r->tcp_bytes.p);
}

/* ================================================================ expected heaps */

struct exp_item {
    uint64_t id;
    uint8_t *data; /* owned copy of the value's bytes */
    size_t len;
    bool immediate;
};

struct exp_heap {
    struct spc_heap *heap;
    uint32_t substream;
    uint64_t cnt;
    size_t n_packets;
    size_t n;
    struct exp_item it[MAX_ITEMS];
    bool start, stop;
};

/* What a case sends: heaps, one by one (group = false) or as one group in mode. */
struct plan {
    size_t n;
    struct exp_heap h[MAX_HEAPS];
    bool group;
    enum spc_group_mode mode;
    struct spc_item *items[8];
    size_t n_items;
    void *owned[16];
    size_t n_owned;
};

static struct exp_heap *new_heap(struct plan *pl, uint32_t substream)
{
    cr_assert_lt(pl->n, MAX_HEAPS);
    struct exp_heap *e = &pl->h[pl->n++];
    memset(e, 0, sizeof *e);
    cr_assert_eq(spc_heap_create(&e->heap, NULL), 0);
    e->substream = substream;
    return e;
}

static void expect(struct exp_heap *e, uint64_t id, const void *data, size_t len, bool imm)
{
    cr_assert_lt(e->n, MAX_ITEMS);
    struct exp_item *it = &e->it[e->n++];
    it->id = id;
    it->len = len;
    it->immediate = imm;
    it->data = malloc(len ? len : 1);
    if (len)
        memcpy(it->data, data, len);
}

/* Adds raw bytes as an item. */
static void add_bytes(struct exp_heap *e, uint64_t id, const void *data, size_t len, bool allow_imm)
{
    cr_assert_eq(spc_heap_add_item(e->heap, id, data, len, allow_imm), 0);
    expect(e, id, data, len, allow_imm && len <= 5);
}

/* Adds an item's descriptor and value (numpy-style: a dtype and shape). */
static void add_item(struct exp_heap *e, struct spc_item *item)
{
    struct spc_descriptor d;
    spc_item_descriptor(item, &d);
    uint8_t *enc;
    size_t enc_len;
    cr_assert_eq(spc_descriptor_encode(&d, &SPC_FLAVOUR_DEFAULT, &enc, &enc_len), 0);
    cr_assert_eq(spc_heap_add_item_descriptor(e->heap, item), 0);
    expect(e, SPC_ID_DESCRIPTOR, enc, enc_len, false);
    free(enc);
    const void *v;
    size_t len;
    cr_assert_eq(spc_item_value(item, &v, &len), 0);
    cr_assert_eq(spc_heap_add_item_value(e->heap, item), 0);
    expect(e, spc_item_id(item), v, len, spc_item_allow_immediate(item) && len <= 5);
}

static void add_ctrl(struct exp_heap *e, bool start)
{
    uint8_t v = start ? SPC_CTRL_START : SPC_CTRL_STOP;
    cr_assert_eq(start ? spc_heap_add_start(e->heap) : spc_heap_add_end(e->heap), 0);
    expect(e, SPC_ID_STREAM_CTRL, &v, 1, true);
    if (start)
        e->start = true;
    else
        e->stop = true;
}

/* Sets a value (copied), asserting success with the item's error detail. */
static void item_set_ok(struct spc_item *it, const struct spc_array *arr)
{
    char err[256] = "";
    int rc = spc_item_set(it, arr, SPC_SET_COPY);
    if (rc < 0)
        spc_item_last_error(it, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
}

static struct spc_item *new_item(struct plan *pl, uint64_t id, const char *name,
                                 const char *dtype, const int64_t *shape, size_t n_dims)
{
    struct spc_descriptor d = {.id = id, .name = name, .description = "conformance item",
                               .shape = shape, .n_dims = n_dims, .dtype = dtype};
    struct spc_item *it;
    char err[256];
    int rc = spc_item_create(&it, &d, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", spc_strerror(rc), err);
    pl->items[pl->n_items++] = it;
    return it;
}

static void *owned(struct plan *pl, size_t len)
{
    void *p = calloc(1, len);
    pl->owned[pl->n_owned++] = p;
    return p;
}

static void plan_free(struct plan *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        for (size_t k = 0; k < pl->h[i].n; k++)
            free(pl->h[i].it[k].data);
        spc_heap_destroy(pl->h[i].heap);
    }
    for (size_t i = 0; i < pl->n_items; i++)
        spc_item_destroy(pl->items[i]);
    for (size_t i = 0; i < pl->n_owned; i++)
        free(pl->owned[i]);
}

/* ---------------------------------------------------------------- the cases */

enum { C_NUMPY_SIMPLE, C_NUMPY_LARGE, C_IMMEDIATES, C_START_END, C_SUBSTREAMS, C_ROUND_ROBIN,
       C_SERIAL };

static void plan_numpy_simple(struct plan *pl)
{
    const int64_t shape23[2] = {2, 3}, shape2[1] = {2};
    struct spc_item *a = new_item(pl, 0x1000, "int_array", "<i4", shape23, 2);
    struct spc_item *b = new_item(pl, 0x1001, "float_scalar", "<f8", NULL, 0);
    struct spc_item *c = new_item(pl, 0x1002, "small_u2", "<u2", shape2, 1);
    for (int round = 0; round < 2; round++) {
        int32_t av[6];
        for (int i = 0; i < 6; i++)
            av[i] = (round + 1) * (i - 2) * 1000003;
        size_t sh23[2] = {2, 3}, sh2[1] = {2};
        struct spc_array arr = {.data = av, .type = SPC_CTYPE_I32, .n_dims = 2, .shape = sh23};
        item_set_ok(a, &arr);
        cr_assert_eq(spc_item_set_f64(b, 3.25 + round), 0);
        uint16_t cv[2] = {(uint16_t)(0xbeef + round), 7};
        arr = (struct spc_array){.data = cv, .type = SPC_CTYPE_U16, .n_dims = 1, .shape = sh2};
        item_set_ok(c, &arr);
        struct exp_heap *e = new_heap(pl, 0);
        add_item(e, a);
        add_item(e, b);
        add_item(e, c);
    }
}

static void plan_numpy_large(struct plan *pl)
{
    const int64_t shape[2] = {100, 200};
    struct spc_item *it = new_item(pl, 0x1000, "large", "<f8", shape, 2);
    double *v = owned(pl, sizeof(double) * 100 * 200);
    for (size_t i = 0; i < 100 * 200; i++)
        v[i] = (double)i * 0.5 - 1234.25;
    size_t sh[2] = {100, 200};
    struct spc_array arr = {.data = v, .type = SPC_CTYPE_F64, .n_dims = 2, .shape = sh};
    item_set_ok(it, &arr);
    add_item(new_heap(pl, 0), it);
}

static void plan_immediates(struct plan *pl)
{
    struct exp_heap *e = new_heap(pl, 0);
    uint8_t *v = owned(pl, 50 * 5);
    for (size_t i = 0; i < 50; i++) {
        size_t len = 1 + i % 5;
        for (size_t k = 0; k < len; k++)
            v[i * 5 + k] = (uint8_t)(0xa0 + i + k * 3);
        add_bytes(e, 0x2000 + i, v + i * 5, len, true);
    }
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static void plan_start_end(struct plan *pl)
{
    add_ctrl(new_heap(pl, 0), true);
    struct exp_heap *e = new_heap(pl, 0);
    uint8_t *d = owned(pl, 5000);
    fill(d, 5000, 1);
    add_bytes(e, 0x1000, d, 5000, false);
    add_ctrl(new_heap(pl, 0), false);
}

static void plan_substreams(struct plan *pl, unsigned n_sub)
{
    static const size_t sizes[6] = {3000, 100, 9000, 0, 4500, 1472};
    for (unsigned i = 0; i < 6; i++) {
        struct exp_heap *e = new_heap(pl, i % n_sub);
        uint8_t *d = owned(pl, sizes[i] ? sizes[i] : 1);
        fill(d, sizes[i], 10 + i);
        add_bytes(e, 0x1000 + i, d, sizes[i], false);
        uint32_t *tag = owned(pl, sizeof *tag); /* referenced by the heap, not copied */
        *tag = i;
        add_bytes(e, 0x1100, tag, sizeof *tag, true);
    }
}

static void plan_group(struct plan *pl, enum spc_group_mode mode)
{
    static const size_t sizes[4] = {20000, 2000, 40000, 30000};
    pl->group = true;
    pl->mode = mode;
    for (unsigned i = 0; i < 4; i++) {
        struct exp_heap *e = new_heap(pl, 0);
        uint8_t *d = owned(pl, sizes[i]);
        fill(d, sizes[i], 20 + i);
        add_bytes(e, 0x1000, d, sizes[i], false);
    }
}

/* ================================================================ checking */

/* The heap cnt of each arrived packet, in order, against the order the mode implies. */
static void check_order(const struct plan *pl, const struct rx *r)
{
    for (unsigned s = 0; s < r->n_sub; s++) {
        uint64_t want[4096];
        size_t n_want = 0;
        size_t left[MAX_HEAPS];
        for (size_t i = 0; i < pl->n; i++)
            left[i] = pl->h[i].substream == s ? pl->h[i].n_packets : 0;
        bool rr = pl->group && pl->mode == SPC_GROUP_ROUND_ROBIN;
        for (bool any = true; any;) {
            any = false;
            for (size_t i = 0; i < pl->n; i++) {
                while (left[i]) {
                    cr_assert_lt(n_want, 4096);
                    want[n_want++] = pl->h[i].cnt;
                    left[i]--;
                    any = true;
                    if (rr)
                        break;
                }
            }
        }
        cr_assert_eq(r->pk[s].n, n_want, "substream %u: %zu packets arrived, %zu sent", s,
                     r->pk[s].n, n_want);
        for (size_t k = 0; k < n_want; k++) {
            struct spc_packet_info info;
            cr_assert_eq(spc_packet_parse(r->pk[s].data[k], r->pk[s].size[k], &info), 0);
            cr_assert_eq(info.packet_size, r->pk[s].size[k], "one packet per datagram/record");
            cr_assert_eq(info.heap_cnt, want[k], "substream %u packet %zu: heap %llu, want %llu",
                         s, k, (unsigned long long)info.heap_cnt, (unsigned long long)want[k]);
        }
    }
}

static void check_heap(const struct exp_heap *e, const struct spc_decoded_heap *d)
{
    cr_assert(d->complete, "heap %llu complete", (unsigned long long)e->cnt);
    cr_assert_eq(d->n_packets, e->n_packets);
    cr_assert_eq(d->has_start, e->start);
    cr_assert_eq(d->has_stop, e->stop);
    cr_assert_eq(d->n_items, e->n, "heap %llu: %zu items, want %zu", (unsigned long long)e->cnt,
                 d->n_items, e->n);
    for (size_t i = 0; i < e->n; i++) {
        const struct exp_item *x = &e->it[i];
        const struct spc_decoded_item *y = &d->items[i];
        cr_assert_eq(y->id, x->id, "heap %llu item %zu", (unsigned long long)e->cnt, i);
        cr_assert_eq(y->immediate, x->immediate, "item %zu (id %#llx)", i,
                     (unsigned long long)x->id);
        if (x->immediate) {
            /* Right-aligned in the HAB/8 value bytes, zeros before. */
            cr_assert_eq(y->len, 5);
            for (size_t k = 0; k < 5 - x->len; k++)
                cr_assert_eq(y->data[k], 0);
            cr_assert_arr_eq(y->data + 5 - x->len, x->data, x->len, "item %zu value", i);
        } else {
            cr_assert_eq(y->len, x->len, "item %zu (id %#llx): %zu bytes, want %zu", i,
                         (unsigned long long)x->id, y->len, x->len);
            if (x->len)
                cr_assert_arr_eq(y->data, x->data, x->len, "item %zu bytes", i);
        }
    }
}

static void check_heaps(const struct plan *pl, const struct rx *r)
{
    for (unsigned s = 0; s < r->n_sub; s++) {
        struct spc_decoder *dec;
        cr_assert_eq(spc_decoder_create(&dec, NULL), 0);
        for (size_t k = 0; k < r->pk[s].n; k++) {
            int rc = spc_decoder_add_packet(dec, r->pk[s].data[k], r->pk[s].size[k], NULL);
            cr_assert_eq(rc, 0, "substream %u packet %zu: %s", s, k, spc_strerror(rc));
        }
        spc_decoder_flush(dec);
        bool seen[MAX_HEAPS] = {false};
        struct spc_decoded_heap *d;
        size_t n_got = 0;
        while (spc_decoder_pop(dec, &d) == 1) {
            n_got++;
            size_t i = 0;
            while (i < pl->n && !(pl->h[i].substream == s && pl->h[i].cnt == d->cnt))
                i++;
            cr_assert_lt(i, pl->n, "substream %u: unexpected heap %llu", s,
                         (unsigned long long)d->cnt);
            cr_assert_not(seen[i], "heap %llu twice", (unsigned long long)d->cnt);
            seen[i] = true;
            check_heap(&pl->h[i], d);
            spc_decoded_heap_free(d);
        }
        for (size_t i = 0; i < pl->n; i++)
            if (pl->h[i].substream == s)
                cr_assert(seen[i], "heap %llu reached substream %u", (unsigned long long)pl->h[i].cnt, s);
        spc_decoder_destroy(dec);
    }
}

/* ================================================================ running a case */

static void run_case(const struct variant *v, int which)
{
    struct rx r;
    rx_setup(&r, v->kind);
    struct plan pl;
    memset(&pl, 0, sizeof pl);
    switch (which) {
    case C_NUMPY_SIMPLE: plan_numpy_simple(&pl); break;
    case C_NUMPY_LARGE: plan_numpy_large(&pl); break;
    case C_IMMEDIATES: plan_immediates(&pl); break;
    case C_START_END: plan_start_end(&pl); break;
    case C_SUBSTREAMS: plan_substreams(&pl, r.n_sub); break;
    case C_ROUND_ROBIN: plan_group(&pl, SPC_GROUP_ROUND_ROBIN); break;
    case C_SERIAL: plan_group(&pl, SPC_GROUP_SERIAL); break;
    }

    char err[1024];
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, r.json, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: open %s: %s", v->name, spc_strerror(rc), err);
    cr_assert_eq(spc_stream_n_substreams(s), r.n_sub);
    if (r.given_fd >= 0) {
        /* The transport holds its own duplicate; ours would keep the TCP peer from
         * seeing the end of the stream. */
        close(r.given_fd);
        r.given_fd = -1;
    }
    size_t mps = spc_stream_get_config(s)->max_packet_size;

    /* cnts follow the automatic sequence (1, 2, ...) in sending order. */
    struct spc_heap_ref refs[MAX_HEAPS];
    for (size_t i = 0; i < pl.n; i++) {
        struct exp_heap *e = &pl.h[i];
        e->cnt = i + 1;
        struct spc_packetizer pz;
        cr_assert_eq(spc_packetizer_init(&pz, e->heap, e->cnt, mps), 0);
        e->n_packets = spc_packetizer_count(&pz);
        refs[i] = SPC_HEAP_REF(e->heap);
        refs[i].substream = e->substream;
    }
    uint64_t bytes = 0, want_bytes = 0;
    for (size_t i = 0; i < pl.n; i++)
        want_bytes += (uint64_t)spc_heap_wire_size(pl.h[i].heap, pl.h[i].cnt, mps);
    if (pl.group) {
        rc = spc_stream_send_heaps_sync(s, refs, pl.n, pl.mode, &bytes);
        cr_assert_eq(rc, 0, "%s: %s", spc_strerror(rc), v->name);
    } else {
        for (size_t i = 0; i < pl.n; i++) {
            uint64_t b = 0;
            rc = spc_stream_send_sync(s, &refs[i], &b);
            cr_assert_eq(rc, 0, "%s heap %zu: %s", v->name, i, spc_strerror(rc));
            bytes += b;
        }
    }
    cr_assert_eq(bytes, want_bytes, "bytes reported");
    cr_assert_eq(spc_stream_flush(s), 0);
    if (v->kind == K_BYTES) {
        const uint8_t *data;
        size_t len;
        cr_assert_eq(spc_bytes_stream_data(s, &data, &len), 0);
        cr_assert_eq(len, want_bytes);
        split_stream(&r.pk[0], data, len);
    }
    spc_stream_close(s);
    rx_finish(&r);

    check_order(&pl, &r);
    check_heaps(&pl, &r);
    plan_free(&pl);
    rx_free(&r);
}

#define CONFORMANCE_CASE(name, which)                                                    \
    ParameterizedTestParameters(conformance, name)                                       \
    {                                                                                    \
        return cr_make_param_array(struct variant, variants, N_VARIANTS);                \
    }                                                                                    \
    ParameterizedTest(struct variant *v, conformance, name, .timeout = 60)               \
    {                                                                                    \
        run_case(v, which);                                                              \
    }

CONFORMANCE_CASE(numpy_simple, C_NUMPY_SIMPLE)
CONFORMANCE_CASE(numpy_large, C_NUMPY_LARGE)
CONFORMANCE_CASE(immediates_50, C_IMMEDIATES)
CONFORMANCE_CASE(start_end, C_START_END)
CONFORMANCE_CASE(substreams, C_SUBSTREAMS)
CONFORMANCE_CASE(round_robin_mixed, C_ROUND_ROBIN)
CONFORMANCE_CASE(serial_mixed, C_SERIAL)
