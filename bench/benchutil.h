/* Timing helpers shared by the throughput benchmarks. */
#ifndef SPC_BENCHUTIL_H
#define SPC_BENCHUTIL_H

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "speadcast/speadcast.h"

struct figures {
    double gbps, pps, cpu_per_gb;
};

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User plus system CPU seconds of this process. */
static inline double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static inline void finish(struct figures *f, double bytes, double packets, double secs, double cpu)
{
    f->gbps = bytes * 8 / secs / 1e9;
    f->pps = packets / secs;
    f->cpu_per_gb = bytes > 0 ? cpu / (bytes / 1e9) : 0;
}

/* Opens a stream from json, sends one heap of len bytes at payload back to back for secs
 * seconds, closes the stream and fills f from its statistics. prog prefixes errors. */
static inline int stream_bench(const char *prog, const char *json, const void *payload, size_t len,
                               double secs, struct figures *f)
{
    char err[1024];
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return rc;
    }
    struct spc_heap *heap = NULL;
    if ((rc = spc_heap_create(&heap, NULL)) < 0 ||
        (rc = spc_heap_add_item(heap, 0x1000, payload, len, false)) < 0) {
        fprintf(stderr, "%s: heap: %s\n", prog, spc_strerror(rc));
        spc_heap_destroy(heap);
        spc_stream_close(s);
        return rc;
    }
    double c0 = cpu_s(), t0 = now_s();
    while (now_s() - t0 < secs) {
        rc = spc_stream_send_heap(s, heap, NULL, NULL);
        if (rc < 0) {
            fprintf(stderr, "%s: send: %s\n", prog, spc_strerror(rc));
            break;
        }
    }
    spc_stream_flush(s);
    double t = now_s(), cpu = cpu_s() - c0;
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    spc_stream_close(s);
    spc_heap_destroy(heap);
    finish(f, (double)st.bytes, (double)st.packets, t - t0, cpu);
    return rc < 0 ? rc : 0;
}

#endif
