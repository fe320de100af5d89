/* bench_stream: send-stream figures through the built-in "bytes" transport (its buffer is
 * emptied from the completion callbacks as it fills).
 *
 *   1. Rate accuracy: achieved vs target rate at 0.1, 1 and 5 Gb/s (256 KiB heaps, 64 KiB
 *      bursts, ratio 1.05), with burst statistics: rate-limiter waits, mean burst size,
 *      how late the waits ended (mean / max), busy-wait share; each with the default
 *      end-of-wait spin and with spinning off (spin_max_ns = 0).
 *   2. Heaps per second for 8 KiB heaps, unlimited rate: single async sends, send_heaps
 *      groups of 32, and a reusable heap list of 32.
 *
 * Usage: bench_stream [seconds per rate run (default 1)] [heaps per throughput run
 * (default 200000)]. Prints figures only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "speadcast/speadcast.h"

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

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    size_t n_heaps = argc > 2 ? (size_t)atoll(argv[2]) : 200000;
    if (!(seconds > 0) || n_heaps == 0) {
        fprintf(stderr, "usage: %s [seconds per rate run] [heaps per throughput run]\n", argv[0]);
        return 2;
    }
    uint8_t *buf = malloc(32 * 8192 > 256 * 1024 ? 32 * 8192 : 256 * 1024);
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
    free(buf);
    return 0;
}
