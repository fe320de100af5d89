/* epoll_stream: drives a send stream from an epoll event loop.
 *
 * The stream is opened with a completion queue; sends carry no callback, so each
 * completion lands in the queue and the queue's eventfd wakes the loop. The loop keeps
 * the stream's queue full (on_full "fail": a full queue is the signal to go back to
 * epoll_wait), and reuses a heap's buffer only after that heap's completion, since heap
 * memory is borrowed until then. A timerfd in the same epoll set reports progress.
 *
 * The stream goes to the in-memory "bytes" transport at a paced 2 Gb/s; at the end the
 * bytes are decoded back and every heap is checked, so the example tests itself
 * (exit status 0 on success). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "speadcast/speadcast.h"

#define N_HEAPS 2000
#define SLOTS 8 /* = max_heaps: one heap object and buffer per queue slot */
#define PAYLOAD 8192

struct slot {
    struct spc_heap *heap;
    uint64_t index;               /* the heap number it carries, as an item */
    uint8_t data[PAYLOAD];        /* referenced by the heap, rewritten between sends */
    int busy;
};

static int fail(const char *what, int rc)
{
    fprintf(stderr, "epoll_stream: %s: %s\n", what, spc_strerror(rc));
    return 1;
}

/* Fills a slot for heap number n: the counter item and a payload derived from it. */
static void fill(struct slot *s, uint64_t n)
{
    s->index = n;
    for (size_t i = 0; i < PAYLOAD; i++)
        s->data[i] = (uint8_t)(n * 31 + i);
}

int main(void)
{
    char err[512];
    struct spc_stream_options opts = SPC_STREAM_OPTIONS_DEFAULT;
    opts.completion_queue = true;
    struct spc_stream *stream;
    int rc = spc_stream_open_json(&stream,
                                  "{\"transport\": \"bytes\","
                                  " \"stream\": {\"max_heaps\": 8, \"rate\": 250e6, \"on_full\": \"fail\"}}",
                                  &opts, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "epoll_stream: open: %s\n", err);
        return 1;
    }

    static struct slot slots[SLOTS];
    for (int i = 0; i < SLOTS; i++) {
        if ((rc = spc_heap_create(&slots[i].heap, NULL)) < 0 ||
            (rc = spc_heap_add_item(slots[i].heap, 0x1000, &slots[i].index, sizeof slots[i].index, false)) < 0 ||
            (rc = spc_heap_add_item(slots[i].heap, 0x1001, slots[i].data, PAYLOAD, false)) < 0)
            return fail("heap", rc);
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    int cfd = spc_stream_completion_fd(stream);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (ep < 0 || cfd < 0 || tfd < 0)
        return fail("setup", ep < 0 || tfd < 0 ? -errno : cfd);
    struct itimerspec every = {{0, 2000000}, {0, 2000000}}; /* 2 ms */
    timerfd_settime(tfd, 0, &every, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
    ev.data.fd = tfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

    uint64_t next = 0, completed = 0, bytes = 0, ticks = 0;
    while (completed < N_HEAPS) {
        /* Queue heaps into free slots until the stream's queue is full. */
        for (int i = 0; i < SLOTS && next < N_HEAPS; i++) {
            if (slots[i].busy)
                continue;
            fill(&slots[i], next);
            rc = spc_stream_send_heap(stream, slots[i].heap, NULL, &slots[i]);
            if (rc == -SPC_EQUEUE_FULL)
                break;
            if (rc < 0)
                return fail("send", rc);
            slots[i].busy = 1;
            next++;
        }
        struct epoll_event events[4];
        int n = epoll_wait(ep, events, 4, 10000);
        if (n <= 0)
            return fail("epoll_wait", n < 0 ? -errno : -ETIMEDOUT);
        for (int e = 0; e < n; e++) {
            if (events[e].data.fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) > 0)
                    ticks += expirations;
                continue;
            }
            struct spc_stream_completion c[SLOTS];
            int m;
            while ((m = spc_stream_drain(stream, c, SLOTS)) > 0) {
                for (int i = 0; i < m; i++) {
                    if (c[i].status != 0)
                        return fail("heap completion", c[i].status);
                    ((struct slot *)c[i].user)->busy = 0; /* its memory may be reused now */
                    bytes += c[i].bytes;
                    completed++;
                }
            }
        }
    }

    /* Decode what the bytes transport collected and check every heap. */
    const uint8_t *data;
    size_t len;
    if ((rc = spc_stream_flush(stream)) < 0 || (rc = spc_bytes_stream_data(stream, &data, &len)) < 0)
        return fail("bytes", rc);
    if (len != bytes) {
        fprintf(stderr, "epoll_stream: %zu bytes collected, completions reported %" PRIu64 "\n", len, bytes);
        return 1;
    }
    struct spc_decoder *dec;
    if ((rc = spc_decoder_create(&dec, NULL)) < 0 || (rc = spc_decoder_add_stream(dec, data, len, NULL)) < 0)
        return fail("decode", rc);
    uint64_t seen = 0;
    struct spc_decoded_heap *h;
    while (spc_decoder_pop(dec, &h) == 1) {
        uint64_t index;
        int ok = h->complete && h->n_items == 2 && h->items[0].len == sizeof index &&
                 h->items[1].len == PAYLOAD;
        if (ok) {
            memcpy(&index, h->items[0].data, sizeof index);
            ok = index == seen;
            for (size_t i = 0; ok && i < PAYLOAD; i++)
                ok = h->items[1].data[i] == (uint8_t)(index * 31 + i);
        }
        spc_decoded_heap_free(h);
        if (!ok) {
            fprintf(stderr, "epoll_stream: heap %" PRIu64 " came back wrong\n", seen);
            return 1;
        }
        seen++;
    }
    spc_decoder_destroy(dec);
    spc_stream_close(stream);
    for (int i = 0; i < SLOTS; i++)
        spc_heap_destroy(slots[i].heap);
    close(tfd);
    close(ep);
    if (seen != N_HEAPS) {
        fprintf(stderr, "epoll_stream: decoded %" PRIu64 " of %d heaps\n", seen, N_HEAPS);
        return 1;
    }
    printf("epoll_stream: %d heaps, %" PRIu64 " bytes sent and decoded intact; %" PRIu64
           " timer ticks during the run\n", N_HEAPS, bytes, ticks);
    return 0;
}
