/* The afxdp transport's failure paths on a real AF_XDP socket, with faults injected at
 * its one send-path system call: plugins/afxdp/afxdp.c is compiled a second time with
 * SPC_AFXDP_TESTING, which makes afx_sendto and afx_stall_ns variables (the module has
 * no such hook), and its ops are driven directly through a recording core-services
 * table. Runs as root inside the namespace tests/afxdp/in-loop.sh makes, which names the
 * veth end to send from, the address to receive on and its MAC in SPC_TEST_AFXDP;
 * skipped otherwise. Checks: every pending packet is completed exactly once, with 0 for
 * packets the receiver got and an error otherwise; a stall renews the socket and later
 * packets arrive; a dropped frame fails packets instead of counting them sent; close
 * cancels what is pending. */
#define SPC_AFXDP_TESTING 1
#include "../../plugins/afxdp/afxdp.c"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <stdarg.h>

#include "speadcast/speadcast.h"

#define N_MAX 256
#define PORT 40001

static struct {
    char ifname[16], ip[16], mac[18];
    struct spc_core_services svc;
    struct afx_options o;
    struct spc_endpoint ep;
    const struct spc_endpoint *eps[1];
    struct spc_transport_params params;
    struct afx *p;
    int rx_fd;
    char err[1024];
    /* completions by packet index: count and last status */
    int n_done[N_MAX];
    int status[N_MAX];
    uint8_t payload[N_MAX][64];
    struct iovec iov[N_MAX];
    struct spc_tx_packet pkts[N_MAX];
    int fail_sendto;   /* errno the injected sendto returns (0 = the real one) */
    int drop_once;     /* after the real sendto, report EBUSY once */
} H;

static void h_log(struct spc_transport *t, int level, const char *fmt, ...)
{
    (void)t, (void)level, (void)fmt;
}
static void h_vlog(struct spc_transport *t, int level, const char *fmt, va_list ap)
{
    (void)t, (void)level, (void)fmt, (void)ap;
}
static void h_set_error(struct spc_transport *t, const char *fmt, ...)
{
    (void)t;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(H.err, sizeof H.err, fmt, ap);
    va_end(ap);
}
static uint64_t h_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void h_complete(struct spc_transport *t, void *token, int status)
{
    (void)t;
    size_t i = (size_t)((struct spc_tx_packet *)token - H.pkts);
    cr_assert_lt(i, N_MAX, "completion for an unknown token");
    H.n_done[i]++;
    H.status[i] = status;
}
static int h_frame_write(const struct spc_frame_params *fp, size_t len, uint16_t id, uint8_t *hdr)
{
    return spc_frame_write(fp, len, id, hdr);
}
static int h_multicast_mac(const uint8_t *ip, uint8_t *mac)
{
    return spc_frame_multicast_mac(ip, mac);
}
static int h_mac_parse(const char *text, uint8_t *mac)
{
    return spc_mac_parse(text, mac);
}

static ssize_t fake_sendto(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *to, socklen_t tolen)
{
    if (H.fail_sendto) {
        errno = H.fail_sendto;
        return -1;
    }
    ssize_t r = sendto(fd, buf, len, flags, to, tolen);
    if (r >= 0 && H.drop_once) {
        H.drop_once = 0;
        errno = EBUSY;
        return -1;
    }
    return r;
}

static void setup(void)
{
    const char *env = getenv("SPC_TEST_AFXDP");
    if (!env || sscanf(env, "%15s %15s %17s", H.ifname, H.ip, H.mac) != 3)
        cr_skip_test("needs root and a veth pair in a network namespace: run through "
                     "tests/afxdp/in-loop.sh (ctest afxdp_faults)");
    H.svc = (struct spc_core_services){
        .struct_size = sizeof H.svc, .abi_minor = SPC_TRANSPORT_ABI_MINOR, .log = h_log,
        .vlog = h_vlog, .set_error = h_set_error, .clock_ns = h_clock, .complete = h_complete,
        .strerror = spc_strerror, .frame_write = h_frame_write,
        .frame_multicast_mac = h_multicast_mac, .ipv4_checksum = spc_ipv4_checksum,
        .mac_parse = h_mac_parse};
    H.ep = (struct spc_endpoint){.struct_size = sizeof H.ep, .port = PORT, .host = H.ip};
    H.eps[0] = &H.ep;
    H.o = (struct afx_options){.interface = H.ifname, .endpoints = {1, H.eps},
                               .source_port = 40000, .destination_mac = H.mac, .ttl = 64,
                               .frame_size = 4096, .frame_count = 64, .mode = AFX_MODE_COPY,
                               .need_wakeup = true};
    H.params = (struct spc_transport_params){.struct_size = sizeof H.params,
                                             .max_packet_size = 1472};
    afx_sendto = fake_sendto;
    afx_stall_ns = 200000000u;

    H.rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, H.ip, &a.sin_addr);
    cr_assert_eq(bind(H.rx_fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));

    H.p = calloc(1, afx_descriptor.object_size);
    H.p->base = (struct spc_transport){.struct_size = sizeof(struct spc_transport),
                                       .n_substreams = 1, .svc = &H.svc, .desc = &afx_descriptor};
    int rc = afx_descriptor.ops->open(&H.p->base, &H.o, &H.params);
    cr_assert_eq(rc, 0, "open: %s: %s", spc_strerror(rc), H.err);
}

static void teardown(void)
{
    if (H.p)
        afx_descriptor.ops->close(&H.p->base);
    free(H.p);
    H.p = NULL;
    if (H.rx_fd > 0)
        close(H.rx_fd);
}

TestSuite(afxdp_faults, .init = setup, .fini = teardown, .timeout = 60);

/* Sends packets [first, first + n): packet i carries "packet <i>". */
static void send_range(size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++) {
        int len = snprintf((char *)H.payload[i], sizeof H.payload[i], "packet %zu", i);
        H.iov[i] = (struct iovec){H.payload[i], (size_t)len};
        H.pkts[i] = (struct spc_tx_packet){.iov = &H.iov[i], .n_iov = 1, .size = (size_t)len,
                                           .token = &H.pkts[i]};
    }
    struct spc_tx_batch b = {.struct_size = sizeof b, .packet_size = sizeof(struct spc_tx_packet),
                             .n_packets = n, .packets = &H.pkts[first]};
    cr_assert_eq(afx_descriptor.ops->send(&H.p->base, &b), 0, "send: %s", H.err);
    for (size_t i = first; i < first + n; i++)
        cr_assert(H.pkts[i].status == SPC_TX_PENDING || H.pkts[i].status < 0,
                  "packet %zu: status %d", i, H.pkts[i].status);
}

/* Marks in got[] the packets the receiver has, waiting up to 1 s for more. */
static size_t receive(bool *got)
{
    size_t n = 0;
    char buf[128];
    struct pollfd pf = {.fd = H.rx_fd, .events = POLLIN};
    while (poll(&pf, 1, 1000) == 1) {
        ssize_t r;
        while ((r = recv(H.rx_fd, buf, sizeof buf - 1, 0)) > 0) {
            buf[r] = '\0';
            size_t i;
            cr_assert_eq(sscanf(buf, "packet %zu", &i), 1, "unexpected datagram \"%s\"", buf);
            cr_assert_lt(i, N_MAX);
            cr_assert_not(got[i], "packet %zu received twice", i);
            got[i] = true;
            n++;
        }
    }
    return n;
}

Test(afxdp_faults, every_packet_completes_once_and_arrives)
{
    send_range(0, 200); /* more than the 64 slots: send waits for completions */
    cr_assert_eq(afx_descriptor.ops->flush(&H.p->base), 0, "%s", H.err);
    bool got[N_MAX] = {0};
    cr_expect_eq(receive(got), 200);
    for (size_t i = 0; i < 200; i++) {
        cr_expect_eq(H.n_done[i], 1, "packet %zu completed %d times", i, H.n_done[i]);
        cr_expect_eq(H.status[i], 0, "packet %zu: %d", i, H.status[i]);
        cr_expect(got[i], "packet %zu not received", i);
    }
    cr_expect_geq(afx_descriptor.ops->get_fd(&H.p->base), 0);
    cr_expect_eq(afx_descriptor.ops->poll(&H.p->base), 0, "nothing left to complete");
}

Test(afxdp_faults, stall_fails_pending_and_renews_the_socket)
{
    H.fail_sendto = ENETDOWN; /* the kernel never takes the frames */
    send_range(0, 10);
    uint64_t t0 = h_clock();
    cr_assert_eq(afx_descriptor.ops->flush(&H.p->base), 0, "%s", H.err);
    cr_expect_geq(h_clock() - t0, afx_stall_ns, "failed before the stall time");
    cr_expect(strstr(H.err, "socket was renewed") && strstr(H.err, "Network is down"),
              "error text: %s", H.err);
    for (size_t i = 0; i < 10; i++) {
        cr_expect_eq(H.n_done[i], 1, "packet %zu completed %d times", i, H.n_done[i]);
        cr_expect_eq(H.status[i], -ENETDOWN, "packet %zu: %d", i, H.status[i]);
    }
    /* The renewed socket sends again. */
    H.fail_sendto = 0;
    send_range(10, 10);
    cr_assert_eq(afx_descriptor.ops->flush(&H.p->base), 0, "%s", H.err);
    bool got[N_MAX] = {0};
    cr_expect_eq(receive(got), 10, "only the packets after the renewal arrive");
    for (size_t i = 10; i < 20; i++) {
        cr_expect(got[i] && H.n_done[i] == 1 && H.status[i] == 0, "packet %zu: got %d done %d "
                  "status %d", i, got[i], H.n_done[i], H.status[i]);
    }
}

Test(afxdp_faults, dropped_frame_fails_packets_instead_of_counting_them_sent)
{
    H.drop_once = 1;
    send_range(0, 8);
    cr_assert_eq(afx_descriptor.ops->flush(&H.p->base), 0, "%s", H.err);
    size_t failed = 0;
    for (size_t i = 0; i < 8; i++) {
        cr_expect_eq(H.n_done[i], 1, "packet %zu completed %d times", i, H.n_done[i]);
        failed += H.status[i] == -EIO;
        cr_expect(H.status[i] == 0 || H.status[i] == -EIO, "packet %zu: %d", i, H.status[i]);
    }
    cr_expect_gt(failed, 0, "a reported drop failed no packet");
    cr_expect(strstr(H.err, "dropped a frame"), "error text: %s", H.err);
}

Test(afxdp_faults, close_cancels_pending_packets)
{
    H.fail_sendto = ENETDOWN;
    send_range(0, 5);
    afx_descriptor.ops->close(&H.p->base);
    free(H.p);
    H.p = NULL;
    for (size_t i = 0; i < 5; i++) {
        cr_expect_eq(H.n_done[i], 1, "packet %zu completed %d times", i, H.n_done[i]);
        cr_expect_eq(H.status[i], -ECANCELED, "packet %zu: %d", i, H.status[i]);
    }
}
