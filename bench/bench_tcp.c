/* TCP loopback send throughput of a stream on the tcp transport, beside the ceiling
 * measured in the same run: bare send() of 1 MiB from one static buffer in a loop. Both
 * write to the same sink (the tcp-sink logic: accept, read and discard until end of
 * file), which runs in a child process so the CPU time counted is the sender's alone.
 *
 * Reports Gb/s of TCP payload, packets/s (SPEAD packets; for the ceiling, the same
 * bytes in packets of the same size) and CPU seconds per GB, for packet sizes 1472 and
 * 8972 (8968 sent: a multiple of 8), and the ratio. Prints figures; nothing here passes
 * or fails.
 *
 * Each figure is the best of REPEATS runs (the machine is shared; the best run is the
 * one least disturbed), ceiling and stream runs alternating.
 *
 * Usage: bench_tcp [seconds per run, default 1] [repeats, default 3] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

#include "benchutil.h"

#define HEAP_BYTES (4u << 20)
#define CHUNK (1u << 20)


/* The tcp-sink logic, one connection after another, until the listener is shut. */
static void sink_main(int listen_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    static char buf[1 << 20];
    for (;;) {
        int c = accept(listen_fd, NULL, NULL);
        if (c < 0)
            _exit(0);
        while (read(c, buf, sizeof buf) > 0) {
        }
        close(c);
    }
}

static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bench_tcp: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int ceiling(unsigned port, size_t packet, double secs, struct figures *f)
{
    static char data[CHUNK];
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    double c0 = cpu_s(), t0 = now_s(), t;
    double bytes = 0;
    do {
        ssize_t n = send(fd, data, sizeof data, MSG_NOSIGNAL);
        if (n < 0) {
            perror("bench_tcp: send");
            close(fd);
            return -1;
        }
        bytes += (double)n;
    } while ((t = now_s()) - t0 < secs);
    double cpu = cpu_s() - c0;
    close(fd);
    finish(f, bytes, bytes / (double)packet, t - t0, cpu);
    return 0;
}

static int ours(unsigned port, size_t size, double secs, struct figures *f)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"transport\": \"tcp\", \"stream\": {\"max_packet_size\": %zu, \"max_heaps\": 8, \"burst_size\": 1048576, "
             "\"on_full\": \"block\"}, \"options\": {\"endpoints\": [\"127.0.0.1:%u\"]}}",
             size, port);
    static uint8_t payload[HEAP_BYTES];
    return stream_bench("bench_tcp", json, payload, sizeof payload, 1, false, secs, f);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(secs > 0))
        secs = 1.0;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    if (repeats < 1)
        repeats = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0) {
        perror("bench_tcp: listen");
        return 1;
    }
    socklen_t len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    unsigned port = ntohs(a.sin_port);
    pid_t child = fork();
    if (child < 0) {
        perror("bench_tcp: fork");
        return 1;
    }
    if (child == 0)
        sink_main(l);

    printf("TCP loopback send, best of %d runs of %.1f s; sink in a child process; ceiling = "
           "bare send() of 1 MiB\n", repeats, secs);
    printf("%-6s | %8s %10s %9s | %8s %9s | %6s\n", "size", "Gb/s", "pkts/s", "CPU s/GB",
           "ceil", "CPU s/GB", "ratio");
    static const size_t sizes[2] = {1472, 8972};
    int status = 0;
    for (int si = 0; si < 2 && status == 0; si++) {
        size_t packet = sizes[si] & ~(size_t)7;
        struct figures o = {0}, c = {0}, f;
        for (int r = 0; r < repeats && status == 0; r++) {
            if (ceiling(port, packet, secs, &f) != 0) {
                status = 1;
                break;
            }
            if (f.gbps > c.gbps)
                c = f;
            if (ours(port, sizes[si], secs, &f) != 0) {
                status = 1;
                break;
            }
            if (f.gbps > o.gbps)
                o = f;
        }
        if (status == 0)
            printf("%-6zu | %8.2f %10.0f %9.3f | %8.2f %9.3f | %5.0f%%\n", packet, o.gbps,
                   o.pps, o.cpu_per_gb, c.gbps, c.cpu_per_gb, 100 * o.gbps / c.gbps);
        fflush(stdout);
    }
    shutdown(l, SHUT_RDWR);
    close(l);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    return status;
}
