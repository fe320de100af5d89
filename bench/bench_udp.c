/* UDP loopback send throughput of a stream on the udp transport, beside the ceiling
 * for any kernel-socket UDP sender measured in the same run (the udp-limit logic: bare
 * sendmmsg of 16 messages per call from one static buffer, with UDP GSO of up to 64
 * segments, or without GSO). Both send to a socket on 127.0.0.1 that is bound but never
 * read, so the kernel drops at the receive queue for both alike.
 *
 * Reports Gb/s of UDP payload, packets/s and CPU seconds per GB (process CPU time over
 * bytes sent), for packet sizes 1472 and 8972 (a SPEAD packet size is a multiple of 8,
 * so 8972 sends 8968) with GSO on/off and sendmmsg on/off, and the ratio to the ceiling
 * of the same GSO mode. Prints figures; nothing here passes or fails.
 *
 * Two sets of stream settings:
 *   tuned    max_heaps 8, burst_size 1 MiB, buffer_size 4 MiB (as the ceiling's socket)
 *   default  only max_packet_size, on_full "block" (a send loop needs it) and the
 *            endpoint: every other stream and udp setting at its default
 *
 * Each figure is the best of REPEATS runs (the machine is shared; the best run is the
 * one least disturbed), ceiling and stream runs alternating; "pairs" is the range of the
 * ratios of each stream run to the ceiling run just before it.
 *
 * Usage: bench_udp [-g] [-2|-P] [-s tuned|default|both] [-H heap_bytes] [seconds per run,
 * default 1] [repeats, default 3]
 *   -g  only GSO on with sendmmsg on (the configuration of the throughput goal)
 *   -2  the ceiling sends each datagram in the shape a stream does: two pieces, a
 *       SPLIT_HEADER-byte header from a scratch arena and the rest from a 1 MiB buffer
 *       (the kernel copies many small pieces more slowly than one large one)
 *   -P  the ceiling packs each datagram first: the two pieces of -2 copied side by side
 *       into a staging buffer in the sending thread, then sent as one piece (the cost and
 *       gain of a packing stage, issue #14 part 1)
 *   -s  which stream settings (default both)
 *   -H  heap payload bytes (default 1 MiB)
 *
 * Last, a writer-scaling line: a tuned stream with two substreams (two endpoints, both
 * the sink) at 1472-byte packets, GSO and sendmmsg on, with writer_threads 1 and 2 (best
 * of the repeats each, alternating), and the ratio of the two. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
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

#define STR_(x) #x
#define STR(x) STR_(x)


/* The udp-limit logic: sendmmsg + GSO of equal datagrams from a static buffer; with split
 * 1, each datagram as a header piece and a payload piece (see -2); with split 2, those two
 * pieces copied side by side into a staging buffer before each call, which is then sent
 * as one piece per message (see -P: what a packing stage in the sending thread costs). */
static int ceiling(unsigned port, size_t size, int gso, int split, double secs,
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
    for (int i = 0; i < BATCH; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_name = &to;
        m[i].msg_hdr.msg_namelen = sizeof to;
        m[i].msg_hdr.msg_iov = pieces[i];
        if (!split) {
            pieces[i][0] = (struct iovec){data, size * (size_t)segs};
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
            return -1;
        }
        bytes += (double)n * (double)size * segs;
    } while ((t = now_s()) - t0 < secs);
    double cpu = cpu_s() - c0;
    close(s);
    finish(f, bytes, bytes / (double)size, t - t0, cpu);
    return 0;
}

/* A stream on the udp transport sending heaps of heap_bytes back to back. */
static int ours(unsigned port, size_t size, int gso, int mmsg, int tuned, size_t heap_bytes,
               double secs, struct figures *f)
{
    char json[512];
    if (tuned)
        snprintf(json, sizeof json,
                 "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": %zu, "
                 "\"max_heaps\": 8, \"burst_size\": 1048576, \"on_full\": \"block\"}, "
                 "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"], \"buffer_size\": %d, "
                 "\"gso\": %s, \"sendmmsg\": %s}}",
                 size, port, SNDBUF, gso ? "true" : "false", mmsg ? "true" : "false");
    else
        snprintf(json, sizeof json,
                 "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": %zu, "
                 "\"on_full\": \"block\"}, \"options\": {\"endpoints\": [\"127.0.0.1:%u\"], "
                 "\"gso\": %s, \"sendmmsg\": %s}}",
                 size, port, gso ? "true" : "false", mmsg ? "true" : "false");
    static uint8_t payload[HEAP_MAX];
    return stream_bench("bench_udp", json, payload, heap_bytes, secs, f);
}

/* A tuned stream with two substreams (both endpoints the sink) and the given writers. */
static int two_substreams(unsigned port, unsigned writers, size_t heap_bytes, double secs,
                          struct figures *f)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": 1472, "
             "\"max_heaps\": 8, \"burst_size\": 1048576, \"on_full\": \"block\", "
             "\"writer_threads\": %u}, \"options\": {\"endpoints\": [\"127.0.0.1:%u\", "
             "\"127.0.0.1:%u\"], \"buffer_size\": %d}}",
             writers, port, port, SNDBUF);
    static uint8_t payload[HEAP_MAX];
    return stream_bench("bench_udp", json, payload, heap_bytes, secs, f);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_udp [-g] [-2|-P] [-s tuned|default|both] [-H heap_bytes] "
                    "[seconds] [repeats]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int only_goal = 0, split = 0, tuned_from = 1, tuned_to = 0; /* settings: 1 tuned, 0 default */
    size_t heap_bytes = 1u << 20;
    int opt;
    while ((opt = getopt(argc, argv, "g2Ps:H:")) != -1) {
        if (opt == 'g') {
            only_goal = 1;
        } else if (opt == '2') {
            split = 1;
        } else if (opt == 'P') {
            split = 2;
        } else if (opt == 's') {
            if (strcmp(optarg, "tuned") == 0)
                tuned_to = 1;
            else if (strcmp(optarg, "default") == 0)
                tuned_from = 0;
            else if (strcmp(optarg, "both") != 0)
                usage();
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

    printf("UDP loopback send of %zu-byte heaps, best of %d runs of %.1f s; ceiling = bare "
           "sendmmsg(+GSO) %s, same GSO mode and packet size\n", heap_bytes, repeats, secs,
           split == 2 ? "of datagrams packed (header and payload copied side by side into one "
                        "staging buffer before each call)"
           : split ? "of datagrams in two pieces (a " STR(SPLIT_HEADER) "-byte header, then "
                     "the payload), as a stream sends them"
                   : "of one static buffer");
    printf("%-7s %-6s %-4s %-8s | %8s %10s %9s | %8s %10s %9s | %6s %11s\n", "stream", "size",
           "gso", "sendmmsg", "Gb/s", "pkts/s", "CPU s/GB", "ceil", "pkts/s", "CPU s/GB",
           "ratio", "pairs");
    static const size_t sizes[2] = {1472, 8972};
    for (int tuned = tuned_from; tuned >= tuned_to; tuned--) {
        for (int si = 0; si < 2; si++) {
            size_t packet = sizes[si] & ~(size_t)7; /* what a SPEAD packet of that limit is */
            for (int gso = 1; gso >= (only_goal ? 1 : 0); gso--) {
                for (int mmsg = 1; mmsg >= (only_goal ? 1 : 0); mmsg--) {
                    struct figures o = {0}, c = {0}, f, cf;
                    double pmin = 1e9, pmax = 0;
                    for (int r = 0; r < repeats; r++) {
                        if (ceiling(port, packet, gso, split, secs, &cf) != 0)
                            return 1;
                        if (cf.gbps > c.gbps)
                            c = cf;
                        if (ours(port, sizes[si], gso, mmsg, tuned, heap_bytes, secs, &f) != 0)
                            return 1;
                        if (f.gbps > o.gbps)
                            o = f;
                        double p = 100 * f.gbps / cf.gbps;
                        pmin = p < pmin ? p : pmin;
                        pmax = p > pmax ? p : pmax;
                    }
                    printf("%-7s %-6zu %-4s %-8s | %8.2f %10.0f %9.3f | %8.2f %10.0f %9.3f | "
                           "%5.0f%% %4.0f-%4.0f%%\n",
                           tuned ? "tuned" : "default", packet, gso ? "on" : "off",
                           mmsg ? "on" : "off", o.gbps, o.pps, o.cpu_per_gb, c.gbps, c.pps,
                           c.cpu_per_gb, 100 * o.gbps / c.gbps, pmin, pmax);
                    fflush(stdout);
                }
            }
        }
    }
    struct figures w[2];
    memset(w, 0, sizeof w);
    for (int r = 0; r < repeats; r++)
        for (unsigned k = 0; k < 2; k++) {
            struct figures f;
            if (two_substreams(port, k + 1, heap_bytes, secs, &f) != 0)
                return 1;
            if (f.gbps > w[k].gbps)
                w[k] = f;
        }
    printf("writer scaling, 2 substreams, 1472, gso on: 1 writer %.2f Gb/s (%.3f CPU s/GB), "
           "2 writers %.2f Gb/s (%.3f CPU s/GB): %.2fx\n", w[0].gbps, w[0].cpu_per_gb,
           w[1].gbps, w[1].cpu_per_gb, w[1].gbps / w[0].gbps);
    close(sink);
    return 0;
}
