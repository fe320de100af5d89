/* Fault injection into the udp and tcp plugins' system calls (issue 12). The plugins
 * call the kernel through one table (plugins/common/syscalls.h); the copies built into
 * tests/faults/plugins export it, so this suite dlopen()s the plugin file (the handle the
 * loader gets too), takes "spcu_sys" and puts wrappers in the send slots. A wrapper
 * fails, or shortens, the call that reaches a chosen packet; everything else goes to
 * the kernel, on loopback.
 *
 * Each test sends N heaps through a stream (several packets each, auto cnts 1..N) and
 * checks: every heap completes exactly once with the status the faults call for; the
 * receiver gets exactly the expected packets' bytes (built with the packetizer), none
 * twice; after a transient error (EAGAIN, ENOBUFS, EINTR, short writes) the stream goes
 * on and loses nothing. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"
#include "syscalls.h"

#include "pktutil.h"
#include "testutil.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define FAULTS SPC_TEST_BINARY_DIR "/tests/faults/plugins"
#define N_HEAPS 24
#define PAYLOAD 3000 /* three packets of at most 1472 bytes */
#define MPS 1472

/* ------------------------------------------------------------ injection */

enum kind { FAIL, SHORT };

struct rule {
    size_t at;   /* packet index (udp) whose send the rule hits; tcp: that packet's first byte */
    enum kind kind;
    int err;     /* FAIL: errno */
    int times;   /* FAIL: consecutive calls that fail (transient errors may repeat) */
    int gso_only;/* FAIL: only when the packet leads a GSO message */
    size_t byte_off; /* tcp: the rule's byte is pkt_start[at] + byte_off */
    int fired;
};

static pthread_mutex_t inj_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spcu_syscalls *sys;   /* the plugin's table */
static struct spcu_syscalls real;   /* its libc functions */
static struct rule rules[8];
static size_t n_rules;
static size_t taken;                /* tcp: bytes written */
static size_t pkt_start[N_HEAPS * 8 + 1]; /* tcp: byte offset of each packet */
static size_t calls;

static void load_table(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, FAULTS "/speadcast-%s.so", name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    sys = dlsym(h, "spcu_sys");
    cr_assert_not_null(sys, "%s exports no spcu_sys: %s", path, dlerror());
    real = *sys;
}

static void add_rule(size_t at, enum kind kind, int err, int times)
{
    rules[n_rules++] = (struct rule){.at = at, .kind = kind, .err = err, .times = times ? times : 1,
                                     .byte_off = kind == SHORT ? 1 : 0};
}

static int transient(int e)
{
    return e == EAGAIN || e == ENOBUFS || e == EINTR;
}

/* Packets in one udp message: a GSO message carries ceil(len / segment). */
static size_t msg_packets(const struct msghdr *m)
{
    size_t len = 0;
    for (size_t i = 0; i < m->msg_iovlen; i++)
        len += m->msg_iov[i].iov_len;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT) {
            uint16_t seg;
            memcpy(&seg, CMSG_DATA(c), sizeof seg);
            return (len + seg - 1) / seg;
        }
    return 1;
}

/* Which expected packet a udp message starts with, by its bytes (the SPEAD header
 * holds the heap cnt and payload offset, so the first 48 bytes tell packets apart). */
static size_t find_packet(const struct msghdr *m);

/* The rule due for udp messages msgs[0..n): *limit = messages that may go before it.
 * Transient errors fire `times` times; a hard error fires every time its packet is
 * offered (as a real per-packet error would), so a plugin that retried it would see it
 * fail again. Caller holds inj_lock. */
static struct rule *udp_due(struct mmsghdr *msgs, unsigned n, unsigned *limit)
{
    for (unsigned m = 0; m < n; m++) {
        size_t p = find_packet(&msgs[m].msg_hdr), np = msg_packets(&msgs[m].msg_hdr);
        for (size_t r = 0; r < n_rules; r++) {
            struct rule *u = &rules[r];
            int spent = u->kind == SHORT || transient(u->err) ? u->fired >= u->times : 0;
            if (spent || u->at < p || u->at >= p + np)
                continue;
            if (u->kind == FAIL && u->gso_only && (np == 1 || u->at != p || u->fired))
                continue;
            *limit = u->kind == SHORT ? m + 1 : m;
            return u;
        }
    }
    *limit = n;
    return NULL;
}

static int fake_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags)
{
    pthread_mutex_lock(&inj_lock);
    calls++;
    unsigned limit;
    struct rule *u = udp_due(msgs, n, &limit);
    if (u && u->kind == FAIL && limit == 0) {
        u->fired++;
        pthread_mutex_unlock(&inj_lock);
        errno = u->err;
        return -1;
    }
    if (u && u->kind == SHORT)
        u->fired++;
    pthread_mutex_unlock(&inj_lock);
    return real.sendmmsg(fd, msgs, limit, flags);
}

/* tcp: bytes in a message. */
static size_t msg_len(const struct msghdr *m)
{
    size_t len = 0;
    for (size_t i = 0; i < m->msg_iovlen; i++)
        len += m->msg_iov[i].iov_len;
    return len;
}

static int tcp_mode; /* fake_sendmsg serves the tcp plugin (byte positions) */

static ssize_t fake_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    pthread_mutex_lock(&inj_lock);
    calls++;
    if (!tcp_mode) {
        /* udp with sendmmsg off: one message per call. */
        struct mmsghdr one = {.msg_hdr = *msg};
        unsigned limit;
        struct rule *u = udp_due(&one, 1, &limit);
        if (u && u->kind == FAIL) {
            u->fired++;
            pthread_mutex_unlock(&inj_lock);
            errno = u->err;
            return -1;
        }
        pthread_mutex_unlock(&inj_lock);
        return real.sendmsg(fd, msg, flags);
    }
    size_t len = msg_len(msg), cut = len;
    struct rule *due = NULL;
    for (size_t r = 0; r < n_rules; r++) {
        struct rule *u = &rules[r];
        size_t b = pkt_start[u->at] + u->byte_off;
        if (u->fired >= u->times || b < taken || b >= taken + len)
            continue;
        if (b - taken < cut || (b - taken == cut && !due)) {
            cut = b - taken;
            due = u;
        }
    }
    if (due && due->kind == FAIL && cut == 0) {
        due->fired++;
        pthread_mutex_unlock(&inj_lock);
        errno = due->err;
        return -1;
    }
    if (due && due->kind == SHORT) {
        due->fired++; /* write one byte of the packet: the rest must follow exactly */
    }
    /* Write only the first cut bytes (a short write as the kernel may do). */
    struct iovec iov[1024];
    struct msghdr m = *msg;
    size_t left = cut, k = 0;
    for (; k < msg->msg_iovlen && left; k++) {
        iov[k] = msg->msg_iov[k];
        if (iov[k].iov_len > left)
            iov[k].iov_len = left;
        left -= iov[k].iov_len;
    }
    m.msg_iov = iov;
    m.msg_iovlen = k;
    ssize_t r = real.sendmsg(fd, &m, flags);
    if (r > 0)
        taken += (size_t)r;
    pthread_mutex_unlock(&inj_lock);
    return r;
}

static void install(int tcp)
{
    tcp_mode = tcp;
    sys->sendmmsg = fake_sendmmsg;
    sys->sendmsg = fake_sendmsg;
}

/* ------------------------------------------------------------ heaps and completions */

struct run {
    struct spc_heap *heaps[N_HEAPS];
    struct pkts pk[N_HEAPS];           /* the expected packets of heap i (cnt i + 1) */
    size_t first_pkt[N_HEAPS + 1];     /* global index of each heap's first packet */
    uint8_t *expect[N_HEAPS * 8];      /* bytes of each packet */
    size_t expect_len[N_HEAPS * 8];
    size_t n_pkts;
    pthread_mutex_t lock;
    int done[N_HEAPS];
    int status[N_HEAPS];
};

static struct run R;

static void build_heaps(void)
{
    pthread_mutex_init(&R.lock, NULL);
    size_t g = 0, off = 0;
    for (size_t i = 0; i < N_HEAPS; i++) {
        struct spc_heap *h;
        cr_assert_eq(spc_heap_create(&h, NULL), 0);
        uint8_t *buf = malloc(PAYLOAD);
        for (size_t k = 0; k < PAYLOAD; k++)
            buf[k] = (uint8_t)(k * 7 + i * 31);
        cr_assert_eq(spc_heap_adopt(h, buf, NULL), 0);
        cr_assert_eq(spc_heap_add_item(h, 0x1000, buf, PAYLOAD, false), 0);
        R.heaps[i] = h;
        packetize(&R.pk[i], h, i + 1, MPS);
        R.first_pkt[i] = g;
        for (size_t p = 0; p < R.pk[i].n; p++, g++) {
            cr_assert_lt(g, N_HEAPS * 8);
            const struct spc_packet *pk = &R.pk[i].p[p];
            R.expect[g] = malloc(pk->size);
            R.expect_len[g] = pk->size;
            size_t o = 0;
            for (unsigned v = 0; v < pk->n_iov; v++) {
                memcpy(R.expect[g] + o, pk->iov[v].iov_base, pk->iov[v].iov_len);
                o += pk->iov[v].iov_len;
            }
            pkt_start[g] = off;
            off += pk->size;
        }
    }
    R.first_pkt[N_HEAPS] = g;
    pkt_start[g] = off;
    R.n_pkts = g;
}

static void free_heaps(void)
{
    for (size_t i = 0; i < N_HEAPS; i++) {
        pkts_free(&R.pk[i]);
        spc_heap_destroy(R.heaps[i]);
    }
    for (size_t g = 0; g < R.n_pkts; g++)
        free(R.expect[g]);
}

static size_t find_packet(const struct msghdr *m)
{
    uint8_t head[48];
    size_t len = 0;
    for (size_t i = 0; i < m->msg_iovlen && len < sizeof head; i++) {
        size_t l = m->msg_iov[i].iov_len < sizeof head - len ? m->msg_iov[i].iov_len : sizeof head - len;
        memcpy(head + len, m->msg_iov[i].iov_base, l);
        len += l;
    }
    for (size_t g = 0; g < R.n_pkts; g++)
        if (R.expect_len[g] >= len && !memcmp(R.expect[g], head, len))
            return g;
    return SIZE_MAX;
}

static size_t heap_of(size_t pkt)
{
    size_t i = 0;
    while (R.first_pkt[i + 1] <= pkt)
        i++;
    return i;
}

static void on_done(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    size_t i = (size_t)(uintptr_t)user;
    pthread_mutex_lock(&R.lock);
    R.done[i]++;
    R.status[i] = status;
    pthread_mutex_unlock(&R.lock);
}

/* Opens the stream on config json, sends the N heaps (on_full block), flushes, closes. */
static void send_all(const char *json)
{
    struct spc_stream *s;
    char err[1024];
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", spc_strerror(rc), err);
    for (size_t i = 0; i < N_HEAPS; i++) {
        rc = spc_stream_send_heap(s, R.heaps[i], on_done, (void *)(uintptr_t)i);
        if (rc < 0) /* a dead transport refuses later heaps at once: still one outcome */
            on_done((void *)(uintptr_t)i, rc, 0);
    }
    cr_assert_eq(spc_stream_flush(s), 0);
    spc_stream_close(s);
    cr_expect_gt(calls, 0, "the injected table was not used: the loader took another copy");
}

/* Every heap completed once; want_status(i) is its expected status. */
static void expect_completions(int (*want_status)(size_t heap))
{
    for (size_t i = 0; i < N_HEAPS; i++) {
        cr_expect_eq(R.done[i], 1, "heap %zu completed %d times", i, R.done[i]);
        cr_expect_eq(R.status[i], want_status(i), "heap %zu: status %s, want %s", i,
                     spc_strerror(R.status[i]), spc_strerror(want_status(i)));
    }
}

/* ------------------------------------------------------------ udp */

static int udp_rx;
static unsigned udp_port;

static void udp_setup(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
    load_table("udp");
    build_heaps();
    udp_rx = tu_udp_loopback(&udp_port, 8 << 20);
    cr_assert_geq(udp_rx, 0, "%s", strerror(-udp_rx));
}

static void udp_teardown(void)
{
    *sys = real;
    close(udp_rx);
    free_heaps();
}

TestSuite(udp_faults, .init = udp_setup, .fini = udp_teardown);

static void udp_json(char *out, size_t len, bool gso, bool mmsg)
{
    snprintf(out, len,
             "{\"transport\": \"udp\", \"plugin_path\": [\"" FAULTS "\"], "
             "\"stream\": {\"max_packet_size\": %d, \"max_heaps\": 4, \"on_full\": \"block\"}, "
             "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"], \"gso\": %s, \"sendmmsg\": %s}}",
             MPS, udp_port, gso ? "true" : "false", mmsg ? "true" : "false");
}

/* Receives until 300 ms of quiet; checks the datagrams are exactly the expected packets
 * except the lost ones (lost[g] set), in order. */
static void udp_expect_received(const bool *lost)
{
    static uint8_t buf[70000];
    size_t g = 0, got = 0;
    struct pollfd p = {.fd = udp_rx, .events = POLLIN};
    while (got < R.n_pkts + 1 && poll(&p, 1, 300) == 1) {
        ssize_t r = recv(udp_rx, buf, sizeof buf, 0);
        cr_assert_geq(r, 0);
        while (g < R.n_pkts && lost[g])
            g++;
        cr_assert_lt(g, R.n_pkts, "datagram %zu is one too many (a duplicate?)", got);
        cr_expect(r == (ssize_t)R.expect_len[g] && !memcmp(buf, R.expect[g], R.expect_len[g]),
                  "datagram %zu is not packet %zu (heap %zu)", got, g, heap_of(g));
        g++;
        got++;
    }
    while (g < R.n_pkts && lost[g])
        g++;
    cr_expect_eq(g, R.n_pkts, "packets from %zu on never arrived", g);
}

static int all_ok(size_t heap)
{
    (void)heap;
    return 0;
}

static void udp_transient(int err, int times, bool mmsg)
{
    char json[1024];
    udp_json(json, sizeof json, false, mmsg);
    install(0);
    add_rule(5, FAIL, err, times);         /* inside heap 1 */
    add_rule(R.n_pkts - 1, FAIL, err, 1);  /* the last packet */
    add_rule(30, FAIL, err, times);
    send_all(json);
    expect_completions(all_ok);
    bool lost[N_HEAPS * 8] = {0};
    udp_expect_received(lost);
    for (size_t r = 0; r < n_rules; r++)
        cr_expect_eq(rules[r].fired, rules[r].times, "rule at packet %zu fired %d times", rules[r].at,
                     rules[r].fired);
}

Test(udp_faults, eagain_resumes_at_the_packet) { udp_transient(EAGAIN, 3, true); }
Test(udp_faults, enobufs_resumes_at_the_packet) { udp_transient(ENOBUFS, 2, true); }
Test(udp_faults, eintr_resumes_at_the_packet) { udp_transient(EINTR, 2, true); }
Test(udp_faults, eagain_resumes_sendmsg) { udp_transient(EAGAIN, 2, false); }

static size_t hard_pkt_a, hard_pkt_b;
static int hard_err;

static int hard_status(size_t heap)
{
    return heap == heap_of(hard_pkt_a) || heap == heap_of(hard_pkt_b) ? -hard_err : 0;
}

/* A packet-level hard error fails that packet's heap alone; the stream goes on. */
static void udp_hard(int err, bool mmsg)
{
    char json[1024];
    udp_json(json, sizeof json, false, mmsg);
    install(0);
    hard_err = err;
    hard_pkt_a = 10;
    hard_pkt_b = R.first_pkt[20] + 1;
    add_rule(hard_pkt_a, FAIL, err, 1);
    add_rule(hard_pkt_b, FAIL, err, 1);
    send_all(json);
    expect_completions(hard_status);
    bool lost[N_HEAPS * 8] = {0};
    lost[hard_pkt_a] = lost[hard_pkt_b] = true;
    udp_expect_received(lost);
}

Test(udp_faults, emsgsize_fails_one_heap) { udp_hard(EMSGSIZE, true); }
Test(udp_faults, emsgsize_fails_one_heap_sendmsg) { udp_hard(EMSGSIZE, false); }
Test(udp_faults, econnrefused_fails_one_heap) { udp_hard(ECONNREFUSED, true); }

/* sendmmsg taking fewer messages than offered: the rest follow, none twice. */
Test(udp_faults, short_batches)
{
    char json[1024];
    udp_json(json, sizeof json, false, true);
    install(0);
    for (size_t at = 2; at < R.n_pkts; at += 7)
        if (n_rules < 8)
            add_rule(at, SHORT, 0, 1);
    send_all(json);
    size_t fired = 0;
    for (size_t r = 0; r < n_rules; r++)
        fired += rules[r].fired;
    cr_expect_gt(fired, 0, "no batch was cut short");
    expect_completions(all_ok);
    bool lost[N_HEAPS * 8] = {0};
    udp_expect_received(lost);
}

/* EMSGSIZE on a GSO message only: the packets go again one by one (and GSO is switched
 * off); nothing is lost or sent twice. */
Test(udp_faults, gso_message_refused_falls_back)
{
    char json[1024];
    udp_json(json, sizeof json, true, true);
    install(0);
    add_rule(0, FAIL, EMSGSIZE, 1);
    rules[0].gso_only = 1;
    send_all(json);
    cr_expect_eq(rules[0].fired, 1, "no GSO message was refused");
    expect_completions(all_ok);
    bool lost[N_HEAPS * 8] = {0};
    udp_expect_received(lost);
}

/* ------------------------------------------------------------ tcp */

struct sink {
    int listen_fd;
    unsigned port;
    uint8_t *buf;
    size_t len, cap;
    pthread_t th;
};

static struct sink T;

static void *tcp_reader(void *arg)
{
    (void)arg;
    struct pollfd p = {.fd = T.listen_fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return NULL;
    int c = accept(T.listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    for (;;) {
        struct pollfd q = {.fd = c, .events = POLLIN};
        if (poll(&q, 1, 10000) != 1)
            break;
        ssize_t r = recv(c, T.buf + T.len, T.cap - T.len, 0);
        if (r <= 0)
            break;
        T.len += (size_t)r;
        if (T.len == T.cap)
            break;
    }
    close(c);
    return NULL;
}

static void tcp_setup(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
    load_table("tcp");
    build_heaps();
    T.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(T.listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(T.listen_fd, 1), 0);
    socklen_t len = sizeof a;
    getsockname(T.listen_fd, (struct sockaddr *)&a, &len);
    T.port = ntohs(a.sin_port);
    T.cap = pkt_start[R.n_pkts] + 65536;
    T.buf = malloc(T.cap);
    cr_assert_eq(pthread_create(&T.th, NULL, tcp_reader, NULL), 0);
}

static void tcp_teardown(void)
{
    *sys = real;
    close(T.listen_fd);
    free(T.buf);
    free_heaps();
}

TestSuite(tcp_faults, .init = tcp_setup, .fini = tcp_teardown);

static void tcp_run(void)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"plugin_path\": [\"" FAULTS "\"], "
             "\"stream\": {\"max_packet_size\": %d, \"max_heaps\": 4, \"on_full\": \"block\"}, "
             "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"], \"send_timeout\": 10}}",
             MPS, T.port);
    install(1);
    send_all(json);
    pthread_join(T.th, NULL);
}

/* The received bytes are exactly packets [0, upto) in order. */
static void tcp_expect_bytes(size_t upto)
{
    size_t want = pkt_start[upto];
    cr_expect_eq(T.len, want, "received %zu bytes, want %zu (packets 0..%zu)", T.len, want, upto);
    size_t n = T.len < want ? T.len : want;
    for (size_t g = 0; g < upto && pkt_start[g] < n; g++) {
        size_t l = R.expect_len[g];
        if (pkt_start[g] + l > n)
            l = n - pkt_start[g];
        cr_expect(!memcmp(T.buf + pkt_start[g], R.expect[g], l), "packet %zu differs in the byte stream", g);
    }
}

static void tcp_transient(int err, int times)
{
    add_rule(4, FAIL, err, times);
    add_rule(31, FAIL, err, times);
    add_rule(R.n_pkts - 1, FAIL, err, times);
    tcp_run();
    expect_completions(all_ok);
    tcp_expect_bytes(R.n_pkts);
    for (size_t r = 0; r < n_rules; r++)
        cr_expect_eq(rules[r].fired, rules[r].times, "rule at packet %zu fired %d times", rules[r].at,
                     rules[r].fired);
}

Test(tcp_faults, eagain_resumes_at_the_byte) { tcp_transient(EAGAIN, 3); }
Test(tcp_faults, eintr_resumes_at_the_byte) { tcp_transient(EINTR, 2); }
Test(tcp_faults, enobufs_is_transient) { tcp_transient(ENOBUFS, 2); }

/* Writes that stop one byte into a packet: the rest of it follows, nothing twice. */
Test(tcp_faults, short_writes)
{
    for (size_t at = 1; at < R.n_pkts && n_rules < 8; at += 9)
        add_rule(at, SHORT, 0, 1);
    tcp_run();
    for (size_t r = 0; r < n_rules; r++)
        cr_expect_eq(rules[r].fired, 1, "short write at packet %zu did not happen", rules[r].at);
    expect_completions(all_ok);
    tcp_expect_bytes(R.n_pkts);
}

static size_t dead_pkt;

static int dead_status(size_t heap)
{
    return heap < heap_of(dead_pkt) ? 0 : -hard_err;
}

/* A lost connection fails the heap in flight and every later one, each exactly once
 * with the cause; what went before arrived whole. */
static void tcp_dead(int err, size_t at)
{
    hard_err = err;
    dead_pkt = at;
    add_rule(at, SHORT, 0, 1); /* one byte of the packet goes, then the connection dies */
    add_rule(at, FAIL, err, 1);
    rules[1].byte_off = 1;
    tcp_run();
    expect_completions(dead_status);
    cr_expect_eq(T.len, pkt_start[at] + 1, "received %zu bytes, want %zu", T.len, pkt_start[at] + 1);
}

Test(tcp_faults, econnreset_fails_the_rest) { tcp_dead(ECONNRESET, 20); }
Test(tcp_faults, emsgsize_fails_the_rest) { tcp_dead(EMSGSIZE, 7); }
