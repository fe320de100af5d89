/* bench_stream: send-stream figures through the built-in "bytes" transport (its buffer is
 * emptied from the completion callbacks as it fills).
 *
 *   1. Rate accuracy: achieved vs target rate at 0.1, 1 and 5 Gb/s (256 KiB heaps, 64 KiB
 *      bursts, ratio 1.05), with burst statistics: rate-limiter waits, mean burst size,
 *      how late the waits ended (mean / max), busy-wait share; each with the default
 *      end-of-wait spin and with spinning off (spin_max_ns = 0).
 *   2. Heaps per second for 8 KiB heaps, unlimited rate: single async sends, send_heaps
 *      groups of 32, and a reusable heap list of 32.
 *   3. Small heaps over the udp transport into a bound loopback socket nobody reads
 *      (1, 8, 64 KiB heaps at 1472-byte packets, 8 KiB at 8972; max_heaps 64, one item),
 *      for each completion style: callbacks, completion fd + drain (the way an event loop
 *      keeps its window full), and synchronous sends; heaps/s, packets per transport send
 *      (the udp transport splits a send into sendmmsg calls of up to 64 messages),
 *      writer wake-ups, completion-fd signals and context switches per heap; beside a
 *      bare sendmmsg loop sending the same datagrams (64 messages per call, each a UDP
 *      GSO run of equal datagrams, as the udp transport builds them).
 *   4. Rate accuracy under contention: the completion-fd sender at 1 and 5 Gb/s over udp
 *      (64 KiB heaps, default max_heaps) while a busy child process spins, achieved vs
 *      target.
 *
 * Usage: bench_stream [seconds per rate run (default 1)] [heaps per throughput run
 * (default 200000)] [seconds per contention run (default 60; 0 skips it)]. Prints
 * figures only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/speadcast.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_stream: %s: %s\n", what, spc_strerror(rc));
    exit(1);
}

struct sink {
    struct spc_stream *s;
    uint64_t since_reset; /* written by completions only, which run on the writer thread */
};

/* Completion: empty the bytes buffer once it holds 1 MiB, so it stays cache-sized
 * whatever the group size. */
static void on_done(void *user, int status, uint64_t bytes)
{
    struct sink *k = user;
    if (status != 0)
        die("completion", status);
    k->since_reset += bytes;
    if (k->since_reset >= (1u << 20)) {
        spc_bytes_stream_reset(k->s);
        k->since_reset = 0;
    }
}

static struct spc_stream *open_stream(double rate, size_t max_heaps, uint64_t spin_max_ns)
{
    struct spc_stream_config sc = SPC_STREAM_CONFIG_DEFAULT;
    sc.rate = rate;
    sc.max_heaps = max_heaps;
    sc.on_full = SPC_ON_FULL_BLOCK;
    char err[256];
    struct spc_config *cfg;
    int rc = spc_config_create(&cfg, "bytes", &sc, NULL, err, sizeof err);
    if (rc < 0)
        die(err, rc);
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.spin_max_ns = spin_max_ns;
    struct spc_stream *s;
    rc = spc_stream_open(&s, cfg, &o, err, sizeof err);
    if (rc < 0)
        die(err, rc);
    spc_config_destroy(cfg);
    return s;
}

static struct spc_heap *make_heap(size_t len, uint8_t *buf)
{
    struct spc_heap *h;
    int rc = spc_heap_create(&h, NULL);
    if (rc == 0)
        rc = spc_heap_add_item(h, 0x1000, buf, len, false);
    if (rc < 0)
        die("heap", rc);
    return h;
}

static void rate_run(double gbps, double seconds, uint64_t spin_max_ns, uint8_t *buf)
{
    const size_t heap_len = 256 * 1024;
    double rate = gbps * 1e9 / 8;
    struct spc_stream *s = open_stream(rate, 8, spin_max_ns);
    struct sink k = {.s = s};
    struct spc_heap *h = make_heap(heap_len, buf);
    int64_t wire = spc_heap_wire_size(h, 1, 1472);
    size_t n = (size_t)(rate * seconds / (double)wire) + 1;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        int rc = spc_stream_send_heap(s, h, on_done, &k);
        if (rc < 0)
            die("send", rc);
    }
    spc_stream_flush(s);
    uint64_t t1 = now_ns();
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    double secs = (double)(t1 - t0) / 1e9;
    double achieved = (double)st.bytes / secs;
    uint64_t bursts = st.sleeps + 1;
    printf("  %4.1f Gb/s  spin %-4s  achieved %7.4f Gb/s (%+7.3f%%)  waits %7llu  burst %7.0f B  "
           "late mean %6.2f us max %8.2f us  spin %5.1f%% of time\n",
           gbps, spin_max_ns ? "on" : "off", achieved * 8 / 1e9, (achieved / rate - 1) * 100,
           (unsigned long long)st.sleeps, (double)st.bytes / (double)bursts,
           st.sleeps ? (double)st.sleep_late_ns / (double)st.sleeps / 1e3 : 0.0,
           (double)st.sleep_late_max_ns / 1e3, (double)st.spin_ns / (double)(t1 - t0) * 100);
    spc_stream_close(s);
    spc_heap_destroy(h);
}

enum mode { SINGLE, GROUPS, LIST };

static void heaps_run(enum mode mode, size_t n_heaps, uint8_t *buf)
{
    enum { GROUP = 32 };
    const size_t heap_len = 8192;
    struct spc_stream *s = open_stream(0, 256, 0);
    struct sink k = {.s = s};
    struct spc_heap *h[GROUP];
    struct spc_heap_ref refs[GROUP];
    for (int i = 0; i < GROUP; i++) {
        h[i] = make_heap(heap_len, buf + (size_t)i * heap_len);
        refs[i] = (struct spc_heap_ref)SPC_HEAP_REF(h[i]);
    }
    struct spc_heap_list *list = NULL;
    if (mode == LIST) {
        int rc = spc_heap_list_create(&list, s, refs, GROUP);
        if (rc < 0)
            die("list", rc);
    }
    uint64_t t0 = now_ns();
    size_t sent = 0;
    while (sent < n_heaps) {
        int rc;
        switch (mode) {
        case SINGLE:
            rc = spc_stream_send_heap(s, h[sent % GROUP], on_done, &k);
            sent += 1;
            break;
        case GROUPS:
            rc = spc_stream_send_heaps(s, refs, GROUP, SPC_GROUP_SERIAL, on_done, &k);
            sent += GROUP;
            break;
        default:
            rc = spc_stream_send_list(s, list, 0, GROUP, SPC_GROUP_SERIAL, on_done, &k);
            sent += GROUP;
            break;
        }
        if (rc < 0)
            die("send", rc);
    }
    spc_stream_flush(s);
    uint64_t t1 = now_ns();
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    double secs = (double)(t1 - t0) / 1e9;
    static const char *const names[] = {"single async sends", "send_heaps groups of 32",
                                        "heap list of 32"};
    printf("  %-24s %9.0f heaps/s  %6.2f Gb/s  %5.1f packets/batch\n", names[mode],
           (double)sent / secs, (double)st.bytes * 8 / secs / 1e9,
           (double)st.packets / (double)(st.batches ? st.batches : 1));
    spc_heap_list_destroy(list);
    spc_stream_close(s);
    for (int i = 0; i < GROUP; i++)
        spc_heap_destroy(h[i]);
}

/* ------------------------------------------------------------ small heaps over udp */

enum style { CALLBACKS, CQ_FD, SYNC };

static long ctx_switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static struct spc_stream *open_udp(unsigned port, size_t packet, double gbps, bool cq)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": %zu, "
             "\"max_heaps\": %s, \"rate\": %.17g, \"on_full\": \"block\"}, "
             "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"]}}",
             packet, gbps > 0 ? "4" : "64", gbps * 1e9 / 8, port);
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.completion_queue = cq;
    char err[512];
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, json, &o, err, sizeof err);
    if (rc < 0)
        die(err, rc);
    return s;
}

static void count_done(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    if (status != 0)
        die("completion", status);
    ++*(uint64_t *)user;
}

/* Sends n heaps (cycling over window heaps) in the given style; returns the seconds. The
 * completion-fd style drains every completion, then refills the window with one
 * spc_stream_send_each (as an event loop would). */
static double send_style(struct spc_stream *s, enum style style, struct spc_heap **h,
                         size_t window, uint64_t n)
{
    uint64_t done = 0, sent = 0, t0 = now_ns();
    struct spc_stream_completion c[64];
    struct spc_heap_ref refs[64];
    void *users[64] = {NULL};
    int fd = style == CQ_FD ? spc_stream_completion_fd(s) : -1;
    while (done < n) {
        int rc = 0;
        switch (style) {
        case CALLBACKS:
            while (sent < n && rc == 0)
                rc = spc_stream_send_heap(s, h[sent++ % window], count_done, &done);
            spc_stream_flush(s);
            break;
        case SYNC: {
            struct spc_heap_ref r = SPC_HEAP_REF(h[sent++ % window]);
            rc = spc_stream_send_sync(s, &r, NULL);
            done++;
            break;
        }
        case CQ_FD: {
            /* Refill the window in one call (as an event loop would), then drain everything. */
            size_t m = 0;
            for (; sent + m < n && sent + m - done < window && m < 64; m++)
                refs[m] = (struct spc_heap_ref)SPC_HEAP_REF(h[(sent + m) % window]);
            if (m > 0 && (rc = spc_stream_send_each(s, refs, m, NULL, users)) == 0)
                sent += m;
            int k = spc_stream_drain(s, c, 64);
            if (k == 0) {
                struct pollfd pfd = {fd, POLLIN, 0};
                poll(&pfd, 1, 1000);
                k = spc_stream_drain(s, c, 64);
            }
            for (int i = 0; i < k; i++)
                if (c[i].status != 0)
                    die("completion", c[i].status);
            done += (uint64_t)(k > 0 ? k : 0);
            break;
        }
        }
        if (rc < 0)
            die("send", rc);
    }
    return (double)(now_ns() - t0) / 1e9;
}

static void udp_style_run(unsigned port, size_t heap_len, size_t packet, enum style style,
                          uint64_t n, uint8_t *buf)
{
    enum { WINDOW = 64 };
    struct spc_stream *s = open_udp(port, packet, 0, style == CQ_FD);
    struct spc_heap *h[WINDOW];
    for (int i = 0; i < WINDOW; i++)
        h[i] = make_heap(heap_len, buf);
    long cs0 = ctx_switches();
    double secs = send_style(s, style, h, WINDOW, n);
    long cs = ctx_switches() - cs0;
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    static const char *const names[] = {"callbacks", "completion fd", "sync send"};
    printf("  %-22s %9.0f heaps/s %6.2f Gb/s  %6.1f packets/send  per heap: %.4f writer "
           "wake-ups, %.4f fd signals, %.3f context switches\n",
           names[style], (double)n / secs, (double)st.bytes * 8 / secs / 1e9,
           (double)st.packets / (double)(st.batches ? st.batches : 1),
           (double)st.writer_wakeups / (double)n, (double)st.cq_signals / (double)n,
           (double)cs / (double)n);
    spc_stream_close(s);
    for (int i = 0; i < WINDOW; i++)
        spc_heap_destroy(h[i]);
}

/* The same datagrams (a heap's packets: sizes from the packetizer) from one buffer, 64
 * messages per sendmmsg. */
static void bare_run(unsigned port, size_t heap_len, size_t packet, uint64_t n, uint8_t *buf)
{
    enum { BATCH = 64, MAX_PKTS = 64 };
    struct spc_heap *h = make_heap(heap_len, buf);
    struct spc_packetizer pz;
    uint8_t *scratch = malloc(spc_packet_scratch_size(packet));
    size_t sizes[MAX_PKTS], n_pk = 0;
    if (scratch && spc_packetizer_init(&pz, h, 1, packet & ~(size_t)7) == 0)
        while (!spc_packetizer_done(&pz) && n_pk < MAX_PKTS) {
            struct spc_packet p;
            spc_packetizer_next(&pz, scratch, &p);
            sizes[n_pk++] = p.size;
        }
    spc_heap_destroy(h);
    free(scratch);
    if (n_pk == 0)
        die("packetizer", -EINVAL);
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    static struct mmsghdr m[BATCH];
    static struct iovec iov[BATCH];
    static union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctrl[BATCH];
    uint64_t pkts = n * n_pk, sent = 0, calls = 0, bytes = 0;
    uint64_t t0 = now_ns();
    size_t k = 0;
    while (sent < pkts) {
        /* Up to 64 messages; each one GSO run of equal datagrams (the last may be
         * shorter), at most 64 segments and 64 KB, as the udp transport builds them. */
        unsigned b = 0;
        uint64_t in_call = 0;
        for (; b < BATCH && sent + in_call < pkts; b++) {
            size_t seg = sizes[k], len = 0;
            unsigned segs = 0;
            while (sent + in_call < pkts && segs < 64 && len + sizes[k] <= 65000 &&
                   sizes[k] <= seg) {
                size_t sz = sizes[k];
                len += sz;
                segs++;
                in_call++;
                k = (k + 1) % n_pk;
                if (sz < seg)
                    break;
            }
            iov[b] = (struct iovec){buf, len};
            m[b].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to,
                                           .msg_iov = &iov[b], .msg_iovlen = 1};
            if (segs > 1) {
                m[b].msg_hdr.msg_control = ctrl[b].buf;
                m[b].msg_hdr.msg_controllen = sizeof ctrl[b].buf;
                struct cmsghdr *cm = CMSG_FIRSTHDR(&m[b].msg_hdr);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t s16 = (uint16_t)seg;
                memcpy(CMSG_DATA(cm), &s16, sizeof s16);
            }
            bytes += len;
        }
        int r = sendmmsg(sock, m, b, 0);
        if (r != (int)b) {
            perror("bench_stream: sendmmsg");
            break;
        }
        sent += in_call;
        calls++;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    close(sock);
    printf("  %-22s %9.0f heaps/s %6.2f Gb/s  %6.1f packets/sendmmsg\n", "bare sendmmsg + GSO",
           (double)n / secs, (double)bytes * 8 / secs / 1e9, (double)sent / (double)calls);
}

/* ------------------------------------------------------------ rate under contention */

static void contention_run(unsigned port, double gbps, double seconds, uint8_t *buf)
{
    const size_t heap_len = 65536;
    /* The busy process: spins on the other core for the run, bounded by its own clock. */
    pid_t busy = fork();
    if (busy == 0) {
        uint64_t end = now_ns() + (uint64_t)((seconds + 5) * 1e9);
        volatile uint64_t x = 0;
        while (now_ns() < end)
            for (int i = 0; i < 100000; i++)
                x += (uint64_t)i;
        _exit(0);
    }
    struct spc_stream *s = open_udp(port, 1472, gbps, true);
    size_t window = spc_stream_get_config(s)->max_heaps;
    struct spc_heap *h[64];
    for (size_t i = 0; i < window && i < 64; i++)
        h[i] = make_heap(heap_len, buf);
    if (window > 64)
        window = 64;
    double rate = gbps * 1e9 / 8;
    int64_t wire = spc_heap_wire_size(h[0], 1, 1472);
    uint64_t n = (uint64_t)(rate * seconds / (double)wire) + 1;
    send_style(s, CQ_FD, h, window, 1); /* starts the limiter's clock */
    struct spc_stream_stats st0 = SPC_STREAM_STATS_INIT, st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st0);
    uint64_t t0 = now_ns();
    send_style(s, CQ_FD, h, window, n);
    uint64_t t1 = now_ns();
    spc_stream_get_stats(s, &st);
    double achieved = (double)(st.bytes - st0.bytes) / ((double)(t1 - t0) / 1e9);
    printf("  target %4.1f Gb/s  achieved %8.5f Gb/s (%+7.3f%%) over %.1f s, max_heaps %zu, "
           "busy process %s\n", gbps, achieved * 8 / 1e9, (achieved / rate - 1) * 100,
           (double)(t1 - t0) / 1e9, window, busy > 0 ? "running" : "not started");
    spc_stream_close(s);
    for (size_t i = 0; i < window; i++)
        spc_heap_destroy(h[i]);
    if (busy > 0) {
        kill(busy, SIGKILL);
        waitpid(busy, NULL, 0);
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    size_t n_heaps = argc > 2 ? (size_t)atoll(argv[2]) : 200000;
    double contention = argc > 3 ? atof(argv[3]) : 60.0;
    if (!(seconds > 0) || n_heaps == 0 || !(contention >= 0)) {
        fprintf(stderr, "usage: %s [seconds per rate run] [heaps per throughput run] "
                "[seconds per contention run, 0 = none]\n", argv[0]);
        return 2;
    }
    uint8_t *buf = malloc(256 * 1024); /* >= 32 x 8 KiB, 256 KiB, 64 KiB */
    for (size_t i = 0; i < 256 * 1024; i++)
        buf[i] = (uint8_t)i;
    printf("rate accuracy through the bytes transport (%.1f s per run, 256 KiB heaps, "
           "64 KiB bursts, ratio 1.05)\n", seconds);
    static const double rates[] = {0.1, 1, 5};
    for (int i = 0; i < 3; i++) {
        rate_run(rates[i], seconds, SPC_STREAM_OPTIONS_DEFAULT.spin_max_ns, buf);
        rate_run(rates[i], seconds, 0, buf);
    }
    printf("heaps/s for 8 KiB heaps, unlimited rate, max_heaps 256 (%zu heaps per run)\n", n_heaps);
    heaps_run(SINGLE, n_heaps, buf);
    heaps_run(GROUPS, n_heaps, buf);
    heaps_run(LIST, n_heaps, buf);

    /* The udp sink: bound, never read. */
    int sink = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t alen = sizeof a;
    if (sink < 0 || bind(sink, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(sink, (struct sockaddr *)&a, &alen) != 0) {
        perror("bench_stream: sink");
        return 1;
    }
    unsigned port = ntohs(a.sin_port);
    static const struct {
        size_t heap, packet;
    } cases[] = {{1024, 1472}, {8192, 1472}, {65536, 1472}, {8192, 8972}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t n = n_heaps / (cases[i].heap / 1024 > 8 ? 8 : 1);
        printf("small heaps over udp: %zu-byte heaps, %zu-byte packets, max_heaps 64, %llu heaps\n",
               cases[i].heap, cases[i].packet, (unsigned long long)n);
        for (int st = CALLBACKS; st <= SYNC; st++)
            udp_style_run(port, cases[i].heap, cases[i].packet, (enum style)st,
                          st == SYNC ? n / 8 : n, buf);
        bare_run(port, cases[i].heap, cases[i].packet, n, buf);
    }
    if (contention > 0) {
        printf("rate accuracy under contention over udp (64 KiB heaps, default max_heaps, "
               "completion fd, a busy process spinning)\n");
        contention_run(port, 1, contention, buf);
        contention_run(port, 5, contention, buf);
    }
    close(sink);
    free(buf);
    return 0;
}
