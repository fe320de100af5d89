/* Timing helpers shared by the throughput benchmarks. */
#ifndef SPC_BENCHUTIL_H
#define SPC_BENCHUTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

struct figures {
    double gbps, pps, cpu_per_gb;
    double in_place; /* share of packets sent in place (stream_bench) */
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

/* Keeps a stream fed from its completion callbacks (on the writer thread, as
 * speadcast-send does): the sending thread is not woken per heap. */
struct bench_feed {
    struct spc_stream *s;
    struct spc_heap *const *heaps;
    unsigned n_heaps, n_sub;
    _Atomic uint64_t next; /* index of the next heap to queue */
    _Atomic bool stop;
    _Atomic int rc;        /* the first failure */
};

static inline void bench_feed_done(void *user, int status, uint64_t bytes);

static inline int bench_feed_one(struct bench_feed *feed)
{
    uint64_t i = atomic_fetch_add(&feed->next, 1);
    struct spc_heap_ref ref = {feed->heaps[i % feed->n_heaps], SPC_CNT_AUTO,
                               (uint32_t)(i % feed->n_sub), -1.0};
    return spc_stream_send(feed->s, &ref, bench_feed_done, feed);
}

static inline void bench_feed_done(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    struct bench_feed *feed = user;
    int zero = 0;
    if (status == 0 && !atomic_load(&feed->stop))
        status = bench_feed_one(feed);
    if (status < 0)
        atomic_compare_exchange_strong(&feed->rc, &zero, status);
}

/* Opens a stream from json, sends heaps of len bytes back to back for secs seconds (to
 * its substreams in turn, refilled from the completion callbacks), closes the stream and fills f from its statistics. pool heaps
 * (at least 1) hold distinct copies of payload and are sent in turn, so a heap is not
 * sent again while it may still be in flight. With in_place each holds its copy in a
 * reserved item laid out as its packets (spc_heap_reserve_item: headers written in
 * place, one piece per packet); without, each borrows its copy (spc_heap_add_item: a
 * header piece and payload pieces per packet). f->in_place is the share of packets that
 * went out in place. prog prefixes errors. */
static inline int stream_bench(const char *prog, const char *json, const void *payload, size_t len,
                               unsigned pool, bool in_place, double secs, struct figures *f)
{
    enum { POOL_MAX = 16 };
    char err[1024];
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return rc;
    }
    const size_t mps = spc_stream_get_config(s)->max_packet_size;
    struct spc_heap *heaps[POOL_MAX] = {NULL};
    void *copies[POOL_MAX] = {NULL};
    const unsigned n_heaps = pool == 0 ? 1 : pool > POOL_MAX ? POOL_MAX : pool;
    for (unsigned k = 0; k < n_heaps && rc == 0; k++) {
        rc = spc_heap_create(&heaps[k], NULL);
        if (rc == 0 && in_place) {
            rc = spc_heap_reserve_item(heaps[k], 0x1000, len, mps);
            if (rc == 0)
                rc = spc_heap_payload_write(heaps[k], 0, payload, len);
        } else if (rc == 0) {
            copies[k] = malloc(len ? len : 1);
            rc = copies[k] ? spc_heap_add_item(heaps[k], 0x1000, copies[k], len, false) : -ENOMEM;
            if (rc == 0)
                memcpy(copies[k], payload, len);
        }
    }
    if (rc < 0) {
        fprintf(stderr, "%s: heap: %s\n", prog, spc_strerror(rc));
        for (unsigned k = 0; k < n_heaps; k++) {
            spc_heap_destroy(heaps[k]);
            free(copies[k]);
        }
        spc_stream_close(s);
        return rc;
    }
    struct bench_feed feed = {.s = s, .heaps = heaps, .n_heaps = n_heaps,
                              .n_sub = spc_stream_n_substreams(s)};
    double c0 = cpu_s(), t0 = now_s();
    /* A window of n_heaps heaps: heap i + n_heaps (the same heap object as heap i) is
     * queued by heap i's completion, so no heap is in flight twice at once. */
    for (unsigned k = 0; k < n_heaps && rc == 0; k++)
        rc = bench_feed_one(&feed);
    while (rc == 0 && now_s() - t0 < secs && atomic_load(&feed.rc) == 0) {
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    atomic_store(&feed.stop, true);
    spc_stream_flush(s);
    if (rc == 0)
        rc = atomic_load(&feed.rc);
    if (rc < 0)
        fprintf(stderr, "%s: send: %s\n", prog, spc_strerror(rc));
    double t = now_s(), cpu = cpu_s() - c0;
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    spc_stream_close(s);
    for (unsigned k = 0; k < n_heaps; k++) {
        spc_heap_destroy(heaps[k]);
        free(copies[k]);
    }
    finish(f, (double)st.bytes, (double)st.packets, t - t0, cpu);
    f->in_place = st.packets ? (double)st.packets_in_place / (double)st.packets : 0;
    return rc < 0 ? rc : 0;
}

#endif
