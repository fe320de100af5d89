/* UDP loopback send throughput of a stream on the udp transport, beside the ceiling
 * for any kernel-socket UDP sender measured in the same run (the udp-limit logic: bare
 * sendmmsg of 16 messages per call from one static buffer, with UDP GSO of up to 64
 * segments, or without GSO). Both send to a socket on 127.0.0.1 that is bound but never
 * read, so the kernel drops at the receive queue for both alike.
 *
 * Reports Gb/s of UDP payload, packets/s and CPU seconds per GB (process CPU time over
 * bytes sent) at packet sizes 1472 and 8972 (a SPEAD packet size is a multiple of 8, so
 * 8972 sends 8968). Prints figures; nothing here passes or fails.
 *
 * Part 1, the throughput goal (GSO and sendmmsg on, tuned stream settings), one block per
 * packet size, every row measured in each repeat in turn:
 *   ceiling         one static buffer, one piece per GSO message
 *   ceiling heap memory  as the ceiling, but walking through as much memory as the
 *                   in-place row's heaps take (POOL laid-out heaps): what the kernel's copy
 *                   costs when the bytes are not all in cache, as a stream's heaps are not
 *   ceiling 2-piece each datagram as a SPLIT_HEADER-byte header from a scratch arena and
 *                   the rest from a 1 MiB buffer (the shape of the general path)
 *   ceiling packed  those two pieces copied side by side into a staging buffer in the
 *                   sending thread before each call (a packing stage on the writer)
 *   ceiling packing thread  the same copies made by a thread of its own into a ring of
 *                   staging slots while the sending thread sends (a packing stage ahead
 *                   of the writer)
 *   in place        our stream, heaps whose item is reserved (spc_heap_reserve_item: laid
 *                   out as its packets, headers written in place, one piece per GSO
 *                   message), POOL such heaps per substream sent in turn
 *   in place 2w     the same on a stream with two substreams and writer_threads 2
 *   general         our stream, POOL heaps each borrowing its own copy of the payload:
 *                   a header piece and a payload piece per packet (the path before)
 * "ratio" is the row's best over the ceiling's best; "pairs" the range of the ratios of
 * each run to the ceiling run of the same repeat; "in place" the share of packets that
 * went out in place.
 *
 * Part 2 (not with -g): GSO on/off x sendmmsg on/off x tuned/default settings, the
 * in-place and general paths against the ceiling of the same GSO mode.
 *   tuned    max_heaps 8, burst_size 1 MiB, buffer_size 4 MiB (as the ceiling's socket)
 *   default  only max_packet_size, on_full "block" (a send loop needs it) and the
 *            endpoint: every other stream and udp setting at its default
 *
 * Last, a writer-scaling line: a tuned stream with two substreams (two endpoints, both
 * the sink) at 1472-byte packets, GSO and sendmmsg on, in place, with writer_threads 1
 * and 2 (best of the repeats each, alternating), and the ratio of the two.
 *
 * Usage: bench_udp [-g] [-H heap_bytes] [seconds per run, default 1] [repeats, default 3] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

#include "benchutil.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define HEAP_MAX (64u << 20)
#define SNDBUF (4 << 20)
#define SPLIT_HEADER 48        /* header and item pointers of a one-item heap's packet */
#define SPLIT_PAYLOAD (1u << 20)

/* The udp-limit logic: sendmmsg + GSO of equal datagrams from a static 64 KiB buffer
 * (split 0); with split 1, each datagram as a header piece and a payload piece; with
 * split 2, those two pieces copied side by side into a staging buffer before each call,
 * which is then sent as one piece per message; with split 3, one piece per message as
 * with 0, but walking through `region` bytes of memory (as much as the heaps a stream
 * has in flight: the kernel then copies from memory that is not all in cache). */
static int ceiling(unsigned port, size_t size, int gso, int split, size_t region, double secs,
                   struct figures *f)
{
    static char data[65536];
    enum { BATCH = 16, MAX_SEGS = 64 };
    static char headers[BATCH * MAX_SEGS * SPLIT_HEADER];
    static char payload[SPLIT_PAYLOAD];
    static struct iovec pieces[BATCH][2 * MAX_SEGS];
    static char staged[BATCH][65536];
    static struct iovec staged_iov[BATCH];
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        return -1;
    int buf = SNDBUF;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int segs = gso ? (int)(65000 / size) : 1;
    if (segs < 1)
        segs = 1;
    if (segs > MAX_SEGS)
        segs = MAX_SEGS;
    int isize = (int)size;
    if (segs > 1 && setsockopt(s, SOL_UDP, UDP_SEGMENT, &isize, sizeof isize) != 0)
        segs = 1;
    struct mmsghdr m[BATCH];
    size_t off = 0;
    char *mem = NULL;
    if (split == 3) {
        if (region < size * (size_t)segs)
            region = size * (size_t)segs;
        mem = malloc(region);
        if (!mem) {
            close(s);
            return -1;
        }
        memset(mem, 0x5a, region);
    }
    for (int i = 0; i < BATCH; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_name = &to;
        m[i].msg_hdr.msg_namelen = sizeof to;
        m[i].msg_hdr.msg_iov = pieces[i];
        if (split == 0 || split == 3) {
            pieces[i][0] = (struct iovec){split ? mem : data, size * (size_t)segs};
            m[i].msg_hdr.msg_iovlen = 1;
            continue;
        }
        for (int k = 0; k < segs; k++) {
            size_t rest = size - SPLIT_HEADER;
            if (off + rest > SPLIT_PAYLOAD)
                off = 0;
            pieces[i][2 * k] = (struct iovec){headers + (i * MAX_SEGS + k) * SPLIT_HEADER,
                                              SPLIT_HEADER};
            pieces[i][2 * k + 1] = (struct iovec){payload + off, rest};
            off += rest;
        }
        m[i].msg_hdr.msg_iovlen = 2 * (size_t)segs;
        if (split == 2) {
            staged_iov[i] = (struct iovec){staged[i], size * (size_t)segs};
            m[i].msg_hdr.msg_iov = &staged_iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
    }
    double c0 = cpu_s(), t0 = now_s(), t;
    double bytes = 0;
    do {
        for (int i = 0; split == 3 && i < BATCH; i++) {
            if (off + size * (size_t)segs > region)
                off = 0;
            pieces[i][0].iov_base = mem + off;
            off += size * (size_t)segs;
        }
        for (int i = 0; split == 2 && i < BATCH; i++) {
            char *p = staged[i];
            for (int k = 0; k < 2 * segs; k++) {
                memcpy(p, pieces[i][k].iov_base, pieces[i][k].iov_len);
                p += pieces[i][k].iov_len;
            }
        }
        int n = sendmmsg(s, m, BATCH, 0);
        if (n < 0) {
            perror("sendmmsg");
            close(s);
            free(mem);
            return -1;
        }
        bytes += (double)n * (double)size * segs;
    } while ((t = now_s()) - t0 < secs);
    double cpu = cpu_s() - c0;
    close(s);
    free(mem);
    finish(f, bytes, bytes / (double)size, t - t0, cpu);
    return 0;
}

/* A packing stage on a thread of its own (the other alternative of issue #14 part 1): the
 * packer copies each datagram's two pieces (a SPLIT_HEADER-byte header and the payload
 * from a 1 MiB buffer) side by side into a ring of staging slots, one sendmmsg call's
 * worth each, while the sender sends filled slots, one piece per GSO message. */
enum { RING = 4, RING_MSGS = 16 };

struct packer {
    size_t size, segs;
    char *slots[RING];
    uint64_t packed, sent; /* slots filled / sent so far (under mu) */
    bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *packer_main(void *arg)
{
    struct packer *p = arg;
    static char headers[RING_MSGS * 64 * SPLIT_HEADER];
    static char payload[SPLIT_PAYLOAD];
    size_t off = 0, rest = p->size - SPLIT_HEADER;
    for (uint64_t k = 0;; k++) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && k - p->sent >= RING)
            pthread_cond_wait(&p->cv, &p->mu);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return NULL;
        char *d = p->slots[k % RING];
        for (size_t i = 0; i < RING_MSGS * p->segs; i++) {
            if (off + rest > SPLIT_PAYLOAD)
                off = 0;
            memcpy(d, headers + (i % (RING_MSGS * 64)) * SPLIT_HEADER, SPLIT_HEADER);
            memcpy(d + SPLIT_HEADER, payload + off, rest);
            d += p->size;
            off += rest;
        }
        pthread_mutex_lock(&p->mu);
        p->packed = k + 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static int ceiling_packer(unsigned port, size_t size, double secs, struct figures *f)
{
    struct packer p = {.size = size, .segs = 65000 / size};
    if (p.segs > 64)
        p.segs = 64;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        return -1;
    int buf = SNDBUF, isize = (int)size;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (setsockopt(s, SOL_UDP, UDP_SEGMENT, &isize, sizeof isize) != 0) {
        close(s);
        return -1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    bool ok = true;
    for (int k = 0; k < RING; k++)
        ok = (p.slots[k] = malloc(RING_MSGS * p.segs * size)) != NULL && ok;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    double c0 = cpu_s(), t0 = now_s(), t = t0;
    double bytes = 0;
    int rc = ok && pthread_create(&th, NULL, packer_main, &p) == 0 ? 0 : -1;
    struct mmsghdr m[RING_MSGS];
    struct iovec iov[RING_MSGS];
    for (uint64_t k = 0; rc == 0 && (t = now_s()) - t0 < secs; k++) {
        pthread_mutex_lock(&p.mu);
        while (p.packed <= k)
            pthread_cond_wait(&p.cv, &p.mu);
        pthread_mutex_unlock(&p.mu);
        for (int i = 0; i < RING_MSGS; i++) {
            iov[i] = (struct iovec){p.slots[k % RING] + i * p.segs * size, p.segs * size};
            memset(&m[i], 0, sizeof m[i]);
            m[i].msg_hdr.msg_name = &to;
            m[i].msg_hdr.msg_namelen = sizeof to;
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        for (int done = 0; done < RING_MSGS;) {
            int n = sendmmsg(s, m + done, (unsigned)(RING_MSGS - done), 0);
            if (n < 0) {
                perror("sendmmsg");
                rc = -1;
                break;
            }
            done += n;
            bytes += (double)n * (double)(p.segs * size);
        }
        pthread_mutex_lock(&p.mu);
        p.sent = k + 1;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    if (ok) {
        pthread_mutex_lock(&p.mu);
        p.stop = true;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(th, NULL);
    }
    double cpu = cpu_s() - c0;
    for (int k = 0; k < RING; k++)
        free(p.slots[k]);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    close(s);
    finish(f, bytes, bytes / (double)size, t - t0, cpu);
    return rc;
}

/* Distinct heaps sent in turn (on both paths, so both read the same amount of memory):
 * one in flight while the next starts. */
#define POOL 2

/* A stream on the udp transport with n_sub substreams (all to the sink) and the given
 * writer threads, sending heaps of heap_bytes back to back, in place or on the general
 * path. */
static int ours(unsigned port, size_t size, int gso, int mmsg, int tuned, unsigned n_sub,
                unsigned writers, bool in_place, size_t heap_bytes, double secs,
                struct figures *f)
{
    char eps[128], json[768];
    snprintf(eps, sizeof eps, "\"127.0.0.1:%u\"%s", port, n_sub > 1 ? ", " : "");
    if (n_sub > 1)
        snprintf(eps + strlen(eps), sizeof eps - strlen(eps), "\"127.0.0.1:%u\"", port);
    if (tuned)
        snprintf(json, sizeof json,
                 "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": %zu, "
                 "\"max_heaps\": 8, \"burst_size\": 1048576, \"on_full\": \"block\", "
                 "\"writer_threads\": %u}, \"options\": {\"endpoints\": [%s], "
                 "\"buffer_size\": %d, \"gso\": %s, \"sendmmsg\": %s}}",
                 size, writers, eps, SNDBUF, gso ? "true" : "false", mmsg ? "true" : "false");
    else
        snprintf(json, sizeof json,
                 "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": %zu, "
                 "\"on_full\": \"block\", \"writer_threads\": %u}, \"options\": "
                 "{\"endpoints\": [%s], \"gso\": %s, \"sendmmsg\": %s}}",
                 size, writers, eps, gso ? "true" : "false", mmsg ? "true" : "false");
    static uint8_t payload[HEAP_MAX];
    /* Each substream gets POOL heaps of its own (heap i % pool goes to substream i % n_sub). */
    return stream_bench("bench_udp", json, payload, heap_bytes, POOL * n_sub, in_place, secs, f);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_udp [-g] [-H heap_bytes] [seconds] [repeats]\n");
    exit(2);
}

/* Best of the repeats of one row, and the range of its ratios to the paired ceiling. */
struct row {
    const char *name;
    struct figures best;
    double pmin, pmax;
};

static void row_add(struct row *r, const struct figures *f, const struct figures *ceil)
{
    if (f->gbps > r->best.gbps)
        r->best = *f;
    double p = 100 * f->gbps / ceil->gbps;
    if (!(r->pmin > 0) || p < r->pmin)
        r->pmin = p;
    if (p > r->pmax)
        r->pmax = p;
}

static void row_print(const char *label, size_t packet, const struct row *r,
                      const struct figures *ceil, int show_in_place)
{
    printf("%-24s %-6zu | %8.2f %10.0f %9.3f |", label, packet, r->best.gbps, r->best.pps,
           r->best.cpu_per_gb);
    if (ceil)
        printf(" %5.0f%% %4.0f-%4.0f%%", 100 * r->best.gbps / ceil->gbps, r->pmin, r->pmax);
    else
        printf(" %6s %11s", "", "");
    if (show_in_place)
        printf(" %7.1f%%", 100 * r->best.in_place);
    printf("\n");
}

/* Part 1: the goal configuration, every row per repeat. */
static int goal_block(unsigned port, size_t nominal, size_t heap_bytes, double secs,
                      int repeats)
{
    size_t packet = nominal & ~(size_t)7; /* what a SPEAD packet of that limit is */
    enum { CEIL, REGION, TWO, PACKED, PACKER, INPLACE, INPLACE2, GENERAL, ROWS };
    static const char *const names[ROWS] = {"ceiling (one buffer)", "ceiling heap memory",
                                            "ceiling 2-piece", "ceiling packed",
                                            "ceiling packing thread", "in place, 1 writer",
                                            "in place, 2 writers", "general, 1 writer"};
    /* The memory of the heaps one writer has in turn, as laid out (headers included). */
    size_t region = POOL * (heap_bytes / (packet - SPC_PACKET_PREFIX) + 1) * packet;
    struct row rows[ROWS];
    memset(rows, 0, sizeof rows);
    for (int r = 0; r < repeats; r++) {
        struct figures f[ROWS];
        if (ceiling(port, packet, 1, 0, 0, secs, &f[CEIL]) != 0 ||
            ceiling(port, packet, 1, 3, region, secs, &f[REGION]) != 0 ||
            ceiling(port, packet, 1, 1, 0, secs, &f[TWO]) != 0 ||
            ceiling(port, packet, 1, 2, 0, secs, &f[PACKED]) != 0 ||
            ceiling_packer(port, packet, secs, &f[PACKER]) != 0 ||
            ours(port, nominal, 1, 1, 1, 1, 1, true, heap_bytes, secs, &f[INPLACE]) != 0 ||
            ours(port, nominal, 1, 1, 1, 2, 2, true, heap_bytes, secs, &f[INPLACE2]) != 0 ||
            ours(port, nominal, 1, 1, 1, 1, 1, false, heap_bytes, secs, &f[GENERAL]) != 0)
            return -1;
        for (int k = 0; k < ROWS; k++)
            row_add(&rows[k], &f[k], &f[CEIL]);
    }
    for (int k = 0; k < ROWS; k++)
        row_print(names[k], packet, &rows[k], &rows[CEIL].best, k >= INPLACE);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int only_goal = 0;
    size_t heap_bytes = 1u << 20;
    int opt;
    while ((opt = getopt(argc, argv, "gH:")) != -1) {
        if (opt == 'g') {
            only_goal = 1;
        } else if (opt == 'H') {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 0);
            if (*end || v == 0 || v > HEAP_MAX)
                usage();
            heap_bytes = (size_t)v;
        } else {
            usage();
        }
    }
    double secs = optind < argc ? atof(argv[optind]) : 1.0;
    if (!(secs > 0))
        secs = 1.0;
    int repeats = optind + 1 < argc ? atoi(argv[optind + 1]) : 3;
    if (repeats < 1)
        repeats = 1;
    /* The sink: bound, never read. */
    int sink = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (sink < 0 || bind(sink, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bench_udp: sink");
        return 1;
    }
    socklen_t len = sizeof a;
    getsockname(sink, (struct sockaddr *)&a, &len);
    unsigned port = ntohs(a.sin_port);
    static const size_t sizes[2] = {1472, 8972};

    printf("UDP loopback send of %zu-byte heaps, best of %d runs of %.1f s\n", heap_bytes,
           repeats, secs);
    printf("part 1: GSO and sendmmsg on, tuned settings; ratio = to the one-buffer ceiling\n");
    printf("%-24s %-6s | %8s %10s %9s | %6s %11s %8s\n", "row", "size", "Gb/s", "pkts/s",
           "CPU s/GB", "ratio", "pairs", "in place");
    for (int si = 0; si < 2; si++)
        if (goal_block(port, sizes[si], heap_bytes, secs, repeats) != 0)
            return 1;

    if (!only_goal) {
        printf("part 2: ratio = to the one-buffer ceiling of the same GSO mode\n");
        printf("%-7s %-6s %-4s %-8s | %8s %6s %11s | %8s %6s %11s | %8s\n", "stream", "size",
               "gso", "sendmmsg", "in place", "ratio", "pairs", "general", "ratio", "pairs",
               "ceil");
        for (int tuned = 1; tuned >= 0; tuned--)
            for (int si = 0; si < 2; si++)
                for (int gso = 1; gso >= 0; gso--)
                    for (int mmsg = 1; mmsg >= 0; mmsg--) {
                        size_t packet = sizes[si] & ~(size_t)7;
                        struct row ip = {0}, gen = {0};
                        struct figures c = {0}, cf, f;
                        for (int r = 0; r < repeats; r++) {
                            if (ceiling(port, packet, gso, 0, 0, secs, &cf) != 0)
                                return 1;
                            if (cf.gbps > c.gbps)
                                c = cf;
                            if (ours(port, sizes[si], gso, mmsg, tuned, 1, 1, true,
                                     heap_bytes, secs, &f) != 0)
                                return 1;
                            row_add(&ip, &f, &cf);
                            if (ours(port, sizes[si], gso, mmsg, tuned, 1, 1, false, heap_bytes,
                                     secs, &f) != 0)
                                return 1;
                            row_add(&gen, &f, &cf);
                        }
                        printf("%-7s %-6zu %-4s %-8s | %8.2f %5.0f%% %4.0f-%4.0f%% | %8.2f "
                               "%5.0f%% %4.0f-%4.0f%% | %8.2f\n",
                               tuned ? "tuned" : "default", packet, gso ? "on" : "off",
                               mmsg ? "on" : "off", ip.best.gbps, 100 * ip.best.gbps / c.gbps,
                               ip.pmin, ip.pmax, gen.best.gbps, 100 * gen.best.gbps / c.gbps,
                               gen.pmin, gen.pmax, c.gbps);
                        fflush(stdout);
                    }
    }

    struct figures w[2];
    memset(w, 0, sizeof w);
    for (int r = 0; r < repeats; r++)
        for (unsigned k = 0; k < 2; k++) {
            struct figures f;
            if (ours(port, 1472, 1, 1, 1, 2, k + 1, true, heap_bytes, secs, &f) != 0)
                return 1;
            if (f.gbps > w[k].gbps)
                w[k] = f;
        }
    printf("writer scaling, 2 substreams, 1472, gso on, in place: 1 writer %.2f Gb/s (%.3f "
           "CPU s/GB), 2 writers %.2f Gb/s (%.3f CPU s/GB): %.2fx\n", w[0].gbps,
           w[0].cpu_per_gb, w[1].gbps, w[1].cpu_per_gb, w[1].gbps / w[0].gbps);
    close(sink);
    return 0;
}
