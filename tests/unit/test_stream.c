/* Send streams (core/src/stream.c) over the "streamfake" test transport
 * (tests/fake/streamfake.c: records packets, holds sends, injects errors, completes
 * asynchronously) and the built-in "bytes" transport: completion order, packet order,
 * heap cnts, substreams, all-or-nothing groups, both queue-full policies, flush, close
 * with heaps in flight, transport failures, many senders at once, the completion queue,
 * heap lists, and the rate limiter in the writer under a fake clock.
 *
 * No assertion depends on wall-clock timing. Where a test checks that a call is still
 * blocked it gives the call time to (wrongly) return first; a correct stream passes
 * however slow the machine. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "speadcast/speadcast.h"
#include "../fake/streamfake.h"

#define FAKE_DIR SPC_TEST_BINARY_DIR "/tests/fake/plugins"
#define REC_CAP 100000

static uint8_t pattern[1 << 20];

static void init_pattern(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 7 + 3);
}

/* A heap of one addressed item of len bytes (from pattern) in flavour f. */
static struct spc_heap *mk_heap_f(size_t len, const struct spc_flavour *f)
{
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, f), 0);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, pattern, len, false), 0);
    return h;
}

static struct spc_heap *mk_heap(size_t len)
{
    return mk_heap_f(len, NULL);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ fixtures */

struct fake {
    struct sf_control c;
    struct sf_packet *rec;
    struct spc_stream *s;
};

static struct spc_stream_config cfg_default(void)
{
    return SPC_STREAM_CONFIG_DEFAULT;
}

/* hw_pace: the fake paces in "hardware" when rate_method hw asks (svc->set_hw_paced). */
static int open_fake_ex(struct fake *f, const struct spc_stream_config *sc, unsigned substreams,
                        const struct spc_stream_options *o, bool hw_pace)
{
    sf_control_init(&f->c);
    f->rec = calloc(REC_CAP, sizeof *f->rec);
    f->c.rec = f->rec;
    f->c.rec_cap = REC_CAP;
    const char *path[] = {FAKE_DIR, NULL};
    char err[512];
    struct spc_config *cfg;
    int rc = spc_config_create(&cfg, "streamfake", sc, path, err, sizeof err);
    cr_assert_eq(rc, 0, "config: %s", err);
    cr_assert_eq(spc_config_set_uint(cfg, "control", (uint64_t)(uintptr_t)&f->c, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(spc_config_set_uint(cfg, "substreams", substreams, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_bool(cfg, "hw_pace", hw_pace, err, sizeof err), 0, "%s", err);
    rc = spc_stream_open(&f->s, cfg, o, err, sizeof err);
    spc_config_destroy(cfg);
    return rc;
}

static int open_fake_rc(struct fake *f, const struct spc_stream_config *sc, unsigned substreams,
                        const struct spc_stream_options *o)
{
    return open_fake_ex(f, sc, substreams, o, false);
}

static void open_fake(struct fake *f, const struct spc_stream_config *sc, unsigned substreams,
                      const struct spc_stream_options *o)
{
    int rc = open_fake_rc(f, sc, substreams, o);
    cr_assert_eq(rc, 0, "open: %s", spc_strerror(rc));
}

static void close_fake(struct fake *f)
{
    spc_stream_close(f->s);
    f->s = NULL;
    cr_assert_eq(f->c.opened, 1);
    cr_assert_eq(f->c.closed, 1);
    cr_assert_eq(f->c.corrupt, 0, "a pending packet's memory changed before its completion");
    sf_control_destroy(&f->c);
    free(f->rec);
}

static void fake_set_hold(struct fake *f, bool hold)
{
    pthread_mutex_lock(&f->c.lock);
    f->c.hold = hold;
    pthread_cond_broadcast(&f->c.cv);
    pthread_mutex_unlock(&f->c.lock);
}

/* Waits (bounded) until the writer has entered send at least n times. */
static void fake_wait_sends(struct fake *f, size_t n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    pthread_mutex_lock(&f->c.lock);
    while (f->c.sends_entered < n)
        cr_assert_neq(pthread_cond_timedwait(&f->c.cv, &f->c.lock, &dl), ETIMEDOUT,
                      "the writer never called send");
    pthread_mutex_unlock(&f->c.lock);
}

/* Completion recorder: each send gets a tag; callbacks record the order. */
#define MAXREC 20000
struct done {
    pthread_mutex_t m;
    size_t n;
    int order[MAXREC];
    int status[MAXREC];
    uint64_t bytes[MAXREC];
};
struct tag {
    struct done *d;
    int id;
};

static struct done *done_new(void)
{
    struct done *d = calloc(1, sizeof *d);
    pthread_mutex_init(&d->m, NULL);
    return d;
}

static void done_free(struct done *d)
{
    pthread_mutex_destroy(&d->m);
    free(d);
}

static void on_done(void *user, int status, uint64_t bytes)
{
    struct tag *t = user;
    pthread_mutex_lock(&t->d->m);
    size_t i = t->d->n++;
    if (i < MAXREC) {
        t->d->order[i] = t->id;
        t->d->status[t->id] = status;
        t->d->bytes[t->id] = bytes;
    }
    pthread_mutex_unlock(&t->d->m);
}

static size_t done_count(struct done *d)
{
    pthread_mutex_lock(&d->m);
    size_t n = d->n;
    pthread_mutex_unlock(&d->m);
    return n;
}

/* ------------------------------------------------------------ open and basics */

TestSuite(stream, .init = init_pattern);

Test(stream, open_json_send_sync_and_bytes)
{
    struct spc_stream *s;
    char err[256];
    int rc = spc_stream_open_json(&s, "{\"transport\": \"bytes\", \"stream\": {\"max_packet_size\": 1472}}",
                                  NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(spc_stream_n_substreams(s), 1);
    cr_assert_eq(spc_stream_get_config(s)->max_heaps, 4);
    struct spc_heap *h = mk_heap(5000);
    struct spc_heap_ref ref = SPC_HEAP_REF(h);
    uint64_t bytes = 0;
    cr_assert_eq(spc_stream_send_sync(s, &ref, &bytes), 0);
    cr_assert_eq((int64_t)bytes, spc_heap_wire_size(h, 1, 1472));
    const uint8_t *data;
    size_t len;
    cr_assert_eq(spc_bytes_stream_data(s, &data, &len), 0);
    cr_assert_eq(len, bytes);
    /* The bytes are exactly the packetizer's output for cnt 1. */
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, 1, 1472), 0);
    uint8_t scratch[1472], pkt[1472];
    struct spc_packet p;
    size_t off = 0;
    while (spc_packetizer_next(&pz, scratch, &p) == 1) {
        cr_assert_eq(spc_packet_write(&p, pkt, sizeof pkt), (int64_t)p.size);
        cr_assert_eq(memcmp(data + off, pkt, p.size), 0);
        off += p.size;
    }
    cr_assert_eq(off, len);
    cr_assert_eq(spc_bytes_stream_reset(s), 0);
    cr_assert_eq(spc_bytes_stream_data(s, &data, &len), 0);
    cr_assert_eq(len, 0);
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    cr_assert_eq(st.heaps, 1);
    cr_assert_eq(st.bytes, bytes);
    cr_assert_eq(st.packets, 4);
    cr_assert_eq(st.sleeps, 0);
    spc_stream_close(s);
    spc_heap_destroy(h);
}

Test(stream, open_errors)
{
    struct spc_stream *s = (void *)1;
    char err[256] = "";
    cr_assert_eq(spc_stream_open(NULL, NULL, NULL, err, sizeof err), -EINVAL);
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"nosuch\"}", NULL, err, sizeof err), -SPC_EPLUGIN);
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\", \"stream\": {\"max_heaps\": 0}}",
                                      NULL, err, sizeof err),
                 -SPC_ECONFIG);
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.cpu = -2;
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "cpu"), "%s", err);
    o.cpu = 1 << 20;
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err), -EINVAL);
    o = SPC_STREAM_OPTIONS_DEFAULT;
    struct spc_clock half = {.now_ns = NULL};
    o.clock = &half;
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err), -EINVAL);
}

/* Sized structs (speadcast.h): a caller built against an older, shorter struct gets the
 * defaults for the fields it lacks; one without a struct_size is refused; stats fill only
 * what the caller's struct_size covers. */
Test(stream, sized_options_and_stats)
{
    struct spc_stream *s;
    char err[256] = "";
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.struct_size = 0;
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "struct_size"), "%s", err);
    /* An older caller knew only cpu; completion_queue keeps its default (false). */
    o = SPC_STREAM_OPTIONS_DEFAULT;
    o.completion_queue = true;
    o.struct_size = offsetof(struct spc_stream_options, completion_queue);
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_stream_completion_fd(s), -SPC_ENOTSUP);
    struct spc_heap *h = mk_heap(100);
    cr_assert_eq(spc_stream_send_heap(s, h, NULL, NULL), 0);
    cr_assert_eq(spc_stream_flush(s), 0);
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    st.struct_size = offsetof(struct spc_stream_stats, packets);
    st.packets = 12345;
    spc_stream_get_stats(s, &st);
    cr_assert_eq(st.heaps, 1);
    cr_assert_eq(st.packets, 12345, "beyond struct_size nothing is written");
    cr_assert_eq(st.struct_size, offsetof(struct spc_stream_stats, packets));
    spc_stream_close(s);
    spc_heap_destroy(h);
}

/* The error-detail convention: copied out, truncated, the full length returned. */
Test(stream, last_error_copy_out)
{
    struct spc_stream *s;
    char err[256];
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", NULL, err, sizeof err), 0, "%s", err);
    char small[4] = "xyz";
    cr_assert_eq(spc_stream_last_error(s, small, sizeof small), 0);
    cr_assert_str_eq(small, "");
    cr_assert_eq(spc_stream_last_error(NULL, NULL, 0), 0);
    spc_stream_close(s);
}

Test(stream, cpu_affinity)
{
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.cpu = 0;
    struct spc_stream *s;
    char err[256];
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err), 0, "%s", err);
    struct spc_heap *h = mk_heap(100);
    struct spc_heap_ref ref = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(s, &ref, NULL), 0);
    spc_stream_close(s);
    /* A CPU this machine does not have: the writer cannot start there. */
    o.cpu = CPU_SETSIZE - 1;
    int rc = spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", &o, err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err, "cpu"), "%s", err);
    spc_heap_destroy(h);
}

Test(stream, bytes_only_on_bytes_transport)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    open_fake(&f, &sc, 1, NULL);
    const uint8_t *d;
    size_t n;
    cr_assert_eq(spc_bytes_stream_data(f.s, &d, &n), -SPC_ENOTSUP);
    cr_assert_eq(spc_bytes_stream_reset(f.s), -SPC_ENOTSUP);
    cr_assert_eq(spc_stream_completion_fd(f.s), -SPC_ENOTSUP);
    struct spc_stream_completion c;
    cr_assert_eq(spc_stream_drain(f.s, &c, 1), -SPC_ENOTSUP);
    close_fake(&f);
}

/* ------------------------------------------------------------ completions and order */

static void completion_order(bool async, bool reverse)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 8;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_fake(&f, &sc, 1, NULL);
    f.c.async = async;
    f.c.async_reverse = reverse;
    enum { N = 300 };
    struct done *d = done_new();
    struct tag tags[N];
    struct spc_heap *h[N];
    for (int i = 0; i < N; i++) {
        h[i] = mk_heap((size_t)(i * 97) % 9000);
        tags[i] = (struct tag){d, i};
        cr_assert_eq(spc_stream_send_heap(f.s, h[i], on_done, &tags[i]), 0);
    }
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(done_count(d), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(d->order[i], i, "completion %d was heap %d", i, d->order[i]);
        cr_assert_eq(d->status[i], 0);
        cr_assert_eq((int64_t)d->bytes[i], spc_heap_wire_size(h[i], (uint64_t)i + 1, 1472));
    }
    /* Packets came out heap by heap with cnts 1..N. */
    uint64_t cnt = 1;
    for (size_t i = 0; i < f.c.n_rec; i++) {
        if (f.rec[i].cnt != cnt)
            cnt++;
        cr_assert_eq(f.rec[i].cnt, cnt);
    }
    cr_assert_eq(cnt, N);
    if (async)
        cr_assert_gt(f.c.max_pending, 1, "the fake never held packets");
    close_fake(&f);
    for (int i = 0; i < N; i++)
        spc_heap_destroy(h[i]);
    done_free(d);
}

Test(stream, completion_order_sync_transport) { completion_order(false, false); }
Test(stream, completion_order_async_transport) { completion_order(true, false); }
Test(stream, completion_order_async_reverse) { completion_order(true, true); }

/* Batch limits of the writer (stream.c): 1024 packets or 1 MiB, whichever first. */
#define BATCH_PACKETS 1024
#define BATCH_BYTES (1u << 20)

Test(stream, batches_span_heaps_up_to_1024_packets)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 2500;
    open_fake(&f, &sc, 1, NULL);
    fake_set_hold(&f, true);
    struct spc_heap *h = mk_heap(100); /* one packet each */
    for (int i = 0; i < 2500; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0);
    fake_wait_sends(&f, 1);
    fake_set_hold(&f, false);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(f.c.n_rec, 2500);
    cr_assert_eq(f.c.max_batch, BATCH_PACKETS);
    /* Batch 1 (taken after the hold) holds 1024 different heaps. */
    size_t in_batch1 = 0;
    for (size_t i = 0; i < f.c.n_rec; i++)
        in_batch1 += f.rec[i].batch == 1;
    cr_assert_eq(in_batch1, BATCH_PACKETS);
    close_fake(&f);
    spc_heap_destroy(h);
}

Test(stream, batches_end_once_they_hold_1_mib)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_packet_size = 8972;
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *h = mk_heap(sizeof pattern);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    /* Sum the bytes of each batch: every batch but the last of the run ends at the first
     * packet that takes it to 1 MiB or beyond. */
    uint64_t sum[64] = {0};
    size_t n_batches = f.c.n_batches;
    cr_assert_lt(n_batches, 64);
    for (size_t i = 0; i < f.c.n_rec; i++)
        sum[f.rec[i].batch] += f.rec[i].size;
    size_t full = 0;
    for (size_t b = 0; b < n_batches; b++) {
        cr_assert_lt(sum[b], BATCH_BYTES + 8968, "batch %zu: %" PRIu64 " bytes", b, sum[b]);
        full += sum[b] >= BATCH_BYTES;
    }
    cr_assert_geq(full, 2, "%zu batches of 1 MiB", full);
    close_fake(&f);
    spc_heap_destroy(h);
}

/* Heaps whose packets carry up to 1018 item pointers (8 KiB headers): the header arena
 * ends batches early, and no packet's header overwrites another's (the bytes are the
 * packetizer's, and an async transport sees them unchanged until completion). */
static void big_headers(bool async)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_packet_size = 8192;
    sc.max_heaps = 32;
    open_fake(&f, &sc, 1, NULL);
    f.c.async = async;
    enum { N = 24, ITEMS = 3000 };
    size_t cap = 4u << 20;
    f.c.data = malloc(cap);
    f.c.data_cap = cap;
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    for (int i = 0; i < ITEMS; i++)
        cr_assert_eq(spc_heap_add_item(h, 0x1000 + (uint64_t)i, pattern + 8 * i, 8, false), 0);
    fake_set_hold(&f, true);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0);
    fake_wait_sends(&f, 1);
    fake_set_hold(&f, false);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    /* Batches after the first were cut by the arena, well below the other limits. */
    cr_assert_gt(f.c.n_batches, 3);
    cr_assert_lt(f.c.max_batch, 64);
    static uint8_t scratch[8192], pkt[8192];
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        struct spc_packetizer pz;
        cr_assert_eq(spc_packetizer_init(&pz, h, (uint64_t)i + 1, 8192), 0);
        struct spc_packet p;
        while (spc_packetizer_next(&pz, scratch, &p) == 1) {
            cr_assert_eq(spc_packet_write(&p, pkt, sizeof pkt), (int64_t)p.size);
            cr_assert_leq(off + p.size, f.c.n_data);
            cr_assert_eq(memcmp(f.c.data + off, pkt, p.size), 0, "heap %d at %zu", i, off);
            off += p.size;
        }
    }
    cr_assert_eq(off, f.c.n_data);
    uint8_t *data = f.c.data;
    close_fake(&f);
    free(data);
    spc_heap_destroy(h);
}

Test(stream, header_arena_ends_batches_sync) { big_headers(false); }
Test(stream, header_arena_ends_batches_async) { big_headers(true); }

Test(stream, round_robin_and_serial_packet_order)
{
    /* spead2-encoder.txt [round-robin]: mps 88, heaps of 8, 72 and 136 bytes give 1, 2
     * and 3 packets. */
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_packet_size = 88;
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *h[3];
    for (int i = 0; i < 3; i++)
        h[i] = mk_heap((size_t)(64 * i + 8));
    struct spc_heap_ref refs[3];
    for (int i = 0; i < 3; i++)
        refs[i] = (struct spc_heap_ref){h[i], (uint64_t)i + 1, 0, -1};
    cr_assert_eq(spc_stream_send_heaps_sync(f.s, refs, 3, SPC_GROUP_ROUND_ROBIN, NULL), 0);
    cr_assert_eq(spc_stream_send_heaps_sync(f.s, refs, 3, SPC_GROUP_SERIAL, NULL), 0);
    static const uint64_t rr[6][2] = {{1, 0}, {2, 0}, {3, 0}, {2, 0x28}, {3, 0x28}, {3, 0x58}};
    static const uint64_t se[6][2] = {{1, 0}, {2, 0}, {2, 0x28}, {3, 0}, {3, 0x28}, {3, 0x58}};
    cr_assert_eq(f.c.n_rec, 12);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(f.rec[i].cnt, rr[i][0], "RR packet %d", i);
        cr_assert_eq(f.rec[i].offset, rr[i][1], "RR packet %d", i);
        cr_assert_eq(f.rec[6 + i].cnt, se[i][0], "serial packet %d", i);
        cr_assert_eq(f.rec[6 + i].offset, se[i][1], "serial packet %d", i);
    }
    close_fake(&f);
    for (int i = 0; i < 3; i++)
        spc_heap_destroy(h[i]);
}

Test(stream, groups_strictly_in_order)
{
    /* Round-robin groups queued back to back never interleave with each other. */
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 12;
    open_fake(&f, &sc, 1, NULL);
    fake_set_hold(&f, true);
    struct spc_heap *h = mk_heap(20000);
    struct spc_heap_ref refs[3] = {SPC_HEAP_REF(h), SPC_HEAP_REF(h), SPC_HEAP_REF(h)};
    for (int g = 0; g < 4; g++)
        cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_ROUND_ROBIN, NULL, NULL), 0);
    fake_set_hold(&f, false);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    uint64_t group_of_prev = 0;
    for (size_t i = 0; i < f.c.n_rec; i++) {
        uint64_t g = (f.rec[i].cnt - 1) / 3;
        cr_assert_geq(g, group_of_prev, "packet %zu of group %" PRIu64 " after group %" PRIu64, i, g,
                      group_of_prev);
        group_of_prev = g;
    }
    /* Within the first group the heaps alternate. */
    cr_assert_eq(f.rec[0].cnt, 1);
    cr_assert_eq(f.rec[1].cnt, 2);
    cr_assert_eq(f.rec[2].cnt, 3);
    cr_assert_eq(f.rec[3].cnt, 1);
    close_fake(&f);
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------ cnts and substreams */

Test(stream, cnt_sequence)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.flavour = (struct spc_flavour){8, 0}; /* cnts wrap at 256 */
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *h = mk_heap_f(10, &sc.flavour);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0); /* 1 */
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0); /* 2 */
    r.cnt = 77;                                           /* explicit: no advance */
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    r.cnt = SPC_CNT_AUTO;
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0); /* 3 */
    cr_assert_eq(spc_stream_set_cnt_sequence(f.s, 250, 3), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0); /* 250, 253, 256 & 255 = 0 */
    cr_assert_eq(spc_stream_set_cnt_sequence(f.s, 1, 0), -EINVAL);
    cr_assert_eq(spc_stream_set_cnt_sequence(f.s, 1, 256), -EINVAL); /* 0 modulo 2^8 */
    r.cnt = 256;
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), -SPC_EHEAP_CNT);
    r.cnt = 255;
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    static const uint64_t want[] = {1, 2, 77, 3, 250, 253, 0, 255};
    cr_assert_eq(f.c.n_rec, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(f.rec[i].cnt, want[i], "heap %d: cnt %" PRIu64, i, f.rec[i].cnt);
    close_fake(&f);
    spc_heap_destroy(h);
}

Test(stream, substreams_and_index_check)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    open_fake(&f, &sc, 3, NULL);
    cr_assert_eq(spc_stream_n_substreams(f.s), 3);
    struct spc_heap *h = mk_heap(4000);
    struct spc_heap_ref refs[3];
    for (uint32_t i = 0; i < 3; i++)
        refs[i] = (struct spc_heap_ref){h, SPC_CNT_AUTO, 2 - i, -1};
    cr_assert_eq(spc_stream_send_heaps_sync(f.s, refs, 3, SPC_GROUP_SERIAL, NULL), 0);
    for (size_t i = 0; i < f.c.n_rec; i++)
        cr_assert_eq(f.rec[i].substream, 2 - (uint32_t)(f.rec[i].cnt - 1));
    struct spc_heap_ref bad = {h, SPC_CNT_AUTO, 3, -1};
    cr_assert_eq(spc_stream_send(f.s, &bad, NULL, NULL), -SPC_ESUBSTREAM);
    refs[1].substream = 7;
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_SERIAL, NULL, NULL), -SPC_ESUBSTREAM);
    close_fake(&f);
    spc_heap_destroy(h);
}

Test(stream, invalid_heaps_rejected)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_packet_size = 64;
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *ok = mk_heap(10);
    struct spc_heap *rep;
    cr_assert_eq(spc_heap_create(&rep, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(spc_heap_add_inline(rep, 0x1000 + (uint64_t)i, 1), 0);
    spc_heap_set_repeat_pointers(rep, true); /* 4 pointers do not fit in 64-byte packets */
    struct spc_flavour f48 = {48, 0};
    struct spc_heap *other = mk_heap_f(10, &f48);
    struct spc_heap_ref r = SPC_HEAP_REF(rep);
    cr_assert_eq(spc_stream_send(f.s, &r, NULL, NULL), -SPC_EREPEAT_POINTERS);
    r.heap = other;
    cr_assert_eq(spc_stream_send(f.s, &r, NULL, NULL), -SPC_EFLAVOUR);
    r.heap = NULL;
    cr_assert_eq(spc_stream_send(f.s, &r, NULL, NULL), -EINVAL);
    r = (struct spc_heap_ref){ok, SPC_CNT_AUTO, 0, NAN};
    cr_assert_eq(spc_stream_send(f.s, &r, NULL, NULL), -EINVAL);
    r.rate = INFINITY;
    cr_assert_eq(spc_stream_send(f.s, &r, NULL, NULL), -EINVAL);
    r.rate = -1;
    cr_assert_eq(spc_stream_send_heaps(f.s, &r, 0, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_stream_send_heaps(f.s, &r, 1, (enum spc_group_mode)7, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    cr_assert_eq(f.c.n_rec, 1);
    cr_assert_eq(f.rec[0].cnt, 1, "rejected sends must not use cnts");
    close_fake(&f);
    spc_heap_destroy(ok);
    spc_heap_destroy(rep);
    spc_heap_destroy(other);
}

/* ------------------------------------------------------------ all or nothing, queue full */

Test(stream, send_heaps_all_or_nothing)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_packet_size = 64;
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *ok = mk_heap(10);
    struct spc_heap *rep;
    cr_assert_eq(spc_heap_create(&rep, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(spc_heap_add_inline(rep, 0x1000 + (uint64_t)i, 1), 0);
    spc_heap_set_repeat_pointers(rep, true);
    struct spc_heap_ref refs[3] = {SPC_HEAP_REF(ok), SPC_HEAP_REF(ok), SPC_HEAP_REF(rep)};
    struct done *d = done_new();
    struct tag t = {d, 0};
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_SERIAL, on_done, &t),
                 -SPC_EREPEAT_POINTERS);
    refs[2] = (struct spc_heap_ref){ok, 1ull << 40, 0, -1};
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_ROUND_ROBIN, on_done, &t), -SPC_EHEAP_CNT);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(f.c.n_rec, 0, "nothing may be queued");
    cr_assert_eq(done_count(d), 0, "a rejected group never completes");
    /* The cnt sequence did not move. */
    refs[2] = SPC_HEAP_REF(ok);
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_SERIAL, on_done, &t), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(done_count(d), 1);
    cr_assert_eq(f.c.n_rec, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(f.rec[i].cnt, (uint64_t)i + 1);
    cr_assert_eq((int64_t)d->bytes[0], 3 * spc_heap_wire_size(ok, 1, 64));
    close_fake(&f);
    spc_heap_destroy(ok);
    spc_heap_destroy(rep);
    done_free(d);
}

Test(stream, queue_full_fail_policy)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 4;
    open_fake(&f, &sc, 1, NULL);
    fake_set_hold(&f, true);
    struct spc_heap *h = mk_heap(100);
    struct spc_heap_ref refs[5] = {SPC_HEAP_REF(h), SPC_HEAP_REF(h), SPC_HEAP_REF(h), SPC_HEAP_REF(h),
                                   SPC_HEAP_REF(h)};
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 5, SPC_GROUP_SERIAL, NULL, NULL), -SPC_EQUEUE_FULL);
    cr_assert_eq(spc_stream_send(f.s, &refs[0], NULL, NULL), 0); /* cnt 1, held in send */
    fake_wait_sends(&f, 1);
    cr_assert_eq(spc_stream_send(f.s, &refs[0], NULL, NULL), 0); /* cnt 2 */
    /* 2 slots left: a group of 3 does not fit and leaves the sequence alone. */
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_SERIAL, NULL, NULL), -SPC_EQUEUE_FULL);
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 2, SPC_GROUP_SERIAL, NULL, NULL), 0); /* 3, 4 */
    cr_assert_eq(spc_stream_send(f.s, &refs[0], NULL, NULL), -SPC_EQUEUE_FULL);
    fake_set_hold(&f, false);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(spc_stream_send_sync(f.s, &refs[0], NULL), 0); /* 5 */
    cr_assert_eq(f.c.n_rec, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(f.rec[i].cnt, (uint64_t)i + 1);
    close_fake(&f);
    spc_heap_destroy(h);
}

struct sender_arg {
    struct spc_stream *s;
    const struct spc_heap *h;
    size_t n;
    atomic_int returned;
    int rc;
};

static void *blocked_sender(void *p)
{
    struct sender_arg *a = p;
    struct spc_heap_ref refs[2] = {SPC_HEAP_REF(a->h), SPC_HEAP_REF(a->h)};
    a->rc = spc_stream_send_heaps(a->s, refs, a->n, SPC_GROUP_SERIAL, NULL, NULL);
    atomic_store(&a->returned, 1);
    return NULL;
}

Test(stream, queue_full_block_policy)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 2;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_fake(&f, &sc, 1, NULL);
    fake_set_hold(&f, true);
    struct spc_heap *h = mk_heap(100);
    struct spc_heap_ref refs[3] = {SPC_HEAP_REF(h), SPC_HEAP_REF(h), SPC_HEAP_REF(h)};
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 3, SPC_GROUP_SERIAL, NULL, NULL), -SPC_EQUEUE_FULL,
                 "a group larger than the queue can never fit");
    cr_assert_eq(spc_stream_send_heaps(f.s, refs, 2, SPC_GROUP_SERIAL, NULL, NULL), 0);
    fake_wait_sends(&f, 1);
    struct sender_arg a = {.s = f.s, .h = h, .n = 2};
    pthread_t th;
    pthread_create(&th, NULL, blocked_sender, &a);
    sleep_ms(100);
    cr_assert_eq(atomic_load(&a.returned), 0, "the send did not wait for room");
    fake_set_hold(&f, false);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(f.c.n_rec, 4, "no heap lost");
    close_fake(&f);
    spc_heap_destroy(h);
}

static void *closer(void *p)
{
    spc_stream_close(p);
    return NULL;
}

Test(stream, close_fails_blocked_senders)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 1;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_fake(&f, &sc, 1, NULL);
    fake_set_hold(&f, true);
    struct spc_heap *h = mk_heap(100);
    struct done *d = done_new();
    struct tag t = {d, 0};
    cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t), 0);
    fake_wait_sends(&f, 1);
    struct sender_arg a = {.s = f.s, .h = h, .n = 1};
    pthread_t ts, tc;
    pthread_create(&ts, NULL, blocked_sender, &a);
    sleep_ms(50);
    /* close cannot finish while the transport holds the first heap, so the stream
     * stays alive until the blocked sender has left. */
    pthread_create(&tc, NULL, closer, f.s);
    pthread_join(ts, NULL);
    cr_assert_eq(a.rc, -SPC_ESTOPPED);
    fake_set_hold(&f, false);
    pthread_join(tc, NULL);
    cr_assert_eq(done_count(d), 1, "the accepted heap completed before close returned");
    cr_assert_eq(d->status[0], 0);
    cr_assert_eq(f.c.closed, 1);
    sf_control_destroy(&f.c);
    free(f.rec);
    spc_heap_destroy(h);
    done_free(d);
}

/* ------------------------------------------------------------ flush and close */

struct flush_arg {
    struct spc_stream *s;
    struct done *d;
    atomic_int returned;
    size_t seen;
};

static void *flusher(void *p)
{
    struct flush_arg *a = p;
    spc_stream_flush(a->s);
    a->seen = done_count(a->d);
    atomic_store(&a->returned, 1);
    return NULL;
}

Test(stream, flush_waits_for_earlier_heaps)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    open_fake(&f, &sc, 1, NULL);
    fake_set_hold(&f, true);
    struct spc_heap *h = mk_heap(3000);
    struct done *d = done_new();
    struct tag t[3] = {{d, 0}, {d, 1}, {d, 2}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t[i]), 0);
    fake_wait_sends(&f, 1);
    struct flush_arg a = {.s = f.s, .d = d};
    pthread_t th;
    pthread_create(&th, NULL, flusher, &a);
    sleep_ms(100);
    cr_assert_eq(atomic_load(&a.returned), 0, "flush returned with heaps in flight");
    fake_set_hold(&f, false);
    pthread_join(th, NULL);
    cr_assert_eq(a.seen, 3, "flush returned before every completion had run");
    close_fake(&f);
    spc_heap_destroy(h);
    done_free(d);
}

Test(stream, flush_on_idle_stream_returns)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    open_fake(&f, &sc, 1, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(spc_stream_flush(f.s), 0);
    close_fake(&f);
}

static void close_in_flight(bool async)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 64;
    open_fake(&f, &sc, 1, NULL);
    f.c.async = async;
    enum { N = 64 };
    struct spc_heap *h = mk_heap(50000);
    struct done *d = done_new();
    struct tag t[N];
    for (int i = 0; i < N; i++) {
        t[i] = (struct tag){d, i};
        cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t[i]), 0);
    }
    close_fake(&f); /* flushes: every heap completes, in order, before close returns */
    cr_assert_eq(d->n, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(d->order[i], i);
        cr_assert_eq(d->status[i], 0);
        cr_assert_eq((int64_t)d->bytes[i], spc_heap_wire_size(h, 1, 1472));
    }
    spc_heap_destroy(h);
    done_free(d);
}

Test(stream, close_with_heaps_in_flight) { close_in_flight(false); }
Test(stream, close_with_heaps_in_flight_async) { close_in_flight(true); }

/* ------------------------------------------------------------ transport errors */

Test(stream, packet_error_fails_only_its_heap)
{
    for (int async = 0; async < 2; async++) {
        struct fake f;
        struct spc_stream_config sc = cfg_default();
        open_fake(&f, &sc, 1, NULL);
        f.c.async = async;
        f.c.fail_on = true;
        f.c.fail_cnt = 2;
        f.c.fail_status = -EMSGSIZE;
        struct spc_heap *h = mk_heap(5000);
        struct done *d = done_new();
        struct tag t[3] = {{d, 0}, {d, 1}, {d, 2}};
        for (int i = 0; i < 3; i++)
            cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t[i]), 0);
        cr_assert_eq(spc_stream_flush(f.s), 0);
        cr_assert_eq(d->n, 3);
        cr_assert_eq(d->status[0], 0);
        cr_assert_eq(d->status[1], -EMSGSIZE);
        cr_assert_eq(d->bytes[1], 0);
        cr_assert_eq(d->status[2], 0, "sending continues after a packet error");
        cr_assert_eq((int64_t)d->bytes[2], spc_heap_wire_size(h, 3, 1472));
        /* A group reports its first error and the bytes that did go. */
        struct spc_heap_ref refs[3] = {SPC_HEAP_REF(h), {h, 2, 0, -1}, SPC_HEAP_REF(h)};
        uint64_t bytes;
        cr_assert_eq(spc_stream_send_heaps_sync(f.s, refs, 3, SPC_GROUP_ROUND_ROBIN, &bytes), -EMSGSIZE);
        cr_assert_eq((int64_t)bytes, 2 * spc_heap_wire_size(h, 4, 1472));
        close_fake(&f);
        spc_heap_destroy(h);
        done_free(d);
    }
}

Test(stream, send_error_fails_everything_without_hang)
{
    for (int async = 0; async < 2; async++) {
        struct fake f;
        struct spc_stream_config sc = cfg_default();
        sc.max_heaps = 8;
        open_fake(&f, &sc, 1, NULL);
        f.c.async = async;
        struct spc_heap *h = mk_heap(100000);
        struct done *d = done_new();
        struct tag t[8];
        fake_set_hold(&f, true);
        t[0] = (struct tag){d, 0};
        cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t[0]), 0);
        fake_wait_sends(&f, 1);
        for (int i = 1; i < 8; i++) {
            t[i] = (struct tag){d, i};
            cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t[i]), 0);
        }
        pthread_mutex_lock(&f.c.lock);
        f.c.send_rc = -SPC_ECLOSED; /* the held send and all later ones fail */
        f.c.hold = false;
        pthread_cond_broadcast(&f.c.cv);
        pthread_mutex_unlock(&f.c.lock);
        cr_assert_eq(spc_stream_flush(f.s), 0);
        cr_assert_eq(d->n, 8);
        for (int i = 0; i < 8; i++) {
            cr_assert_eq(d->order[i], i);
            cr_assert_eq(d->status[i], -SPC_ECLOSED, "heap %d: %d", i, d->status[i]);
        }
        cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t[1]), -SPC_ECLOSED);
        struct spc_heap_ref r = SPC_HEAP_REF(h);
        cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), -SPC_ECLOSED);
        cr_assert_eq(f.c.sends_entered, 1, "no send after the transport broke");
        close_fake(&f);
        spc_heap_destroy(h);
        done_free(d);
    }
}

/* ------------------------------------------------------------ callbacks */

struct chain {
    struct spc_stream *s;
    const struct spc_heap *h;
    atomic_int left;
    atomic_int sync_rc, flush_rc, full_rc, next_rc, bad_status;
    atomic_int done;
};

static void chain_cb(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    struct chain *c = user; /* no cr_assert here: this is the writer thread */
    if (status != 0)
        atomic_store(&c->bad_status, status);
    struct spc_heap_ref r = SPC_HEAP_REF(c->h);
    atomic_store(&c->sync_rc, spc_stream_send_sync(c->s, &r, NULL));
    atomic_store(&c->flush_rc, spc_stream_flush(c->s));
    if (atomic_fetch_sub(&c->left, 1) > 1) {
        /* The slot of this heap is already free: queue the next from here. max_heaps is 1,
         * so any further send must fail rather than block the writer. */
        int rc = spc_stream_send_heap(c->s, c->h, chain_cb, c);
        if (rc != 0)
            atomic_store(&c->next_rc, rc);
        atomic_store(&c->full_rc, spc_stream_send_heap(c->s, c->h, chain_cb, c));
    } else {
        atomic_store(&c->done, 1);
    }
}

Test(stream, completion_may_queue_more)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 1;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *h = mk_heap(2000);
    struct chain c = {.s = f.s, .h = h};
    atomic_store(&c.left, 50);
    cr_assert_eq(spc_stream_send_heap(f.s, h, chain_cb, &c), 0);
    for (int i = 0; i < 3000 && !atomic_load(&c.done); i++)
        sleep_ms(10);
    cr_assert_eq(atomic_load(&c.done), 1);
    cr_assert_eq(atomic_load(&c.bad_status), 0);
    cr_assert_eq(atomic_load(&c.next_rc), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(f.c.n_rec, 100);
    cr_assert_eq(atomic_load(&c.sync_rc), -EDEADLK);
    cr_assert_eq(atomic_load(&c.flush_rc), -EDEADLK);
    cr_assert_eq(atomic_load(&c.full_rc), -SPC_EQUEUE_FULL);
    close_fake(&f);
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------ many senders */

struct mt_arg {
    struct spc_stream *s;
    struct spc_heap *h;
    struct spc_heap_list *list;
    int id;
    atomic_int *completed;
    int rc;
};

static void mt_cb(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    if (status == 0)
        atomic_fetch_add((atomic_int *)user, 1);
}

enum { MT_THREADS = 6, MT_ITERS = 150 };

static void *mt_sender(void *p)
{
    struct mt_arg *a = p;
    a->rc = 0;
    for (int i = 0; i < MT_ITERS && a->rc == 0; i++) {
        struct spc_heap_ref r = SPC_HEAP_REF(a->h);
        switch ((i + a->id) % 4) {
        case 0:
            a->rc = spc_stream_send(a->s, &r, mt_cb, a->completed);
            break;
        case 1:
            a->rc = spc_stream_send_sync(a->s, &r, NULL);
            if (a->rc == 0)
                atomic_fetch_add(a->completed, 1);
            break;
        case 2: {
            struct spc_heap_ref two[2] = {r, r};
            a->rc = spc_stream_send_heaps(a->s, two, 2, SPC_GROUP_ROUND_ROBIN, mt_cb, a->completed);
            if (a->rc == 0)
                atomic_fetch_add(a->completed, 1); /* the group completes once for 2 heaps */
            break;
        }
        default:
            a->rc = spc_stream_send_list(a->s, a->list, 0, 1, SPC_GROUP_SERIAL, mt_cb, a->completed);
            break;
        }
    }
    return NULL;
}

Test(stream, many_threads_send_at_once)
{
    for (int async = 0; async < 2; async++) {
        struct fake f;
        struct spc_stream_config sc = cfg_default();
        sc.max_heaps = 5;
        sc.on_full = SPC_ON_FULL_BLOCK;
        open_fake(&f, &sc, 1, NULL);
        f.c.async = async;
        struct spc_heap *h[MT_THREADS];
        struct mt_arg a[MT_THREADS];
        pthread_t th[MT_THREADS];
        atomic_int completed = 0;
        for (int i = 0; i < MT_THREADS; i++) {
            h[i] = mk_heap(1000 + (size_t)i * 1500);
            a[i] = (struct mt_arg){.s = f.s, .h = h[i], .id = i, .completed = &completed};
            struct spc_heap_ref r = SPC_HEAP_REF(h[i]);
            cr_assert_eq(spc_heap_list_create(&a[i].list, f.s, &r, 1), 0);
        }
        for (int i = 0; i < MT_THREADS; i++)
            pthread_create(&th[i], NULL, mt_sender, &a[i]);
        for (int i = 0; i < MT_THREADS; i++) {
            pthread_join(th[i], NULL);
            cr_assert_eq(a[i].rc, 0, "thread %d: %s", i, spc_strerror(a[i].rc));
        }
        cr_assert_eq(spc_stream_flush(f.s), 0);
        int heaps = 0; /* case 2 sends two heaps */
        for (int t = 0; t < MT_THREADS; t++)
            for (int i = 0; i < MT_ITERS; i++)
                heaps += (i + t) % 4 == 2 ? 2 : 1;
        cr_assert_eq(atomic_load(&completed), heaps);
        /* Every cnt 1..heaps was used exactly once, and each heap's packets are whole. */
        uint8_t *seen = calloc((size_t)heaps + 1, 1);
        for (size_t i = 0; i < f.c.n_rec; i++) {
            uint64_t cnt = f.rec[i].cnt;
            cr_assert(cnt >= 1 && cnt <= (uint64_t)heaps, "cnt %" PRIu64, cnt);
            if (f.rec[i].offset == 0) {
                cr_assert_eq(seen[cnt], 0, "cnt %" PRIu64 " used twice", cnt);
                seen[cnt] = 1;
            }
        }
        for (int c = 1; c <= heaps; c++)
            cr_assert_eq(seen[c], 1, "cnt %d missing", c);
        free(seen);
        close_fake(&f);
        for (int i = 0; i < MT_THREADS; i++) {
            spc_heap_list_destroy(a[i].list);
            spc_heap_destroy(h[i]);
        }
    }
}

/* ------------------------------------------------------------ completion queue */

Test(stream, completion_queue_and_fd)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 4;
    sc.on_full = SPC_ON_FULL_BLOCK;
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.completion_queue = true;
    open_fake(&f, &sc, 1, &o);
    int fd = spc_stream_completion_fd(f.s);
    cr_assert_geq(fd, 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    cr_assert_eq(poll(&pfd, 1, 0), 0, "readable while empty");
    struct spc_heap *h = mk_heap(3000);
    enum { N = 100 }; /* more than the queue's initial room: it grows */
    for (intptr_t i = 0; i < N; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, (void *)i), 0);
    /* A synchronous send and a callback send do not go to the queue. */
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    struct done *d = done_new();
    struct tag t = {d, 0};
    cr_assert_eq(spc_stream_send_heap(f.s, h, on_done, &t), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(poll(&pfd, 1, 0), 1);
    struct spc_stream_completion c[7];
    intptr_t next = 0;
    int n;
    while ((n = spc_stream_drain(f.s, c, 7)) > 0) {
        for (int i = 0; i < n; i++) {
            cr_assert_eq((intptr_t)c[i].user, next, "got %" PRIdPTR ", want %" PRIdPTR,
                         (intptr_t)c[i].user, next);
            cr_assert_eq(c[i].status, 0);
            cr_assert_eq((int64_t)c[i].bytes, spc_heap_wire_size(h, 1, 1472));
            next++;
        }
        if (next < N)
            cr_assert_eq(poll(&pfd, 1, 0), 1, "not readable with %" PRIdPTR " waiting", N - next);
    }
    cr_assert_eq(n, 0);
    cr_assert_eq(next, N);
    cr_assert_eq(poll(&pfd, 1, 0), 0, "readable after draining");
    cr_assert_eq(done_count(d), 1);
    cr_assert_eq(spc_stream_drain(f.s, NULL, 3), -EINVAL);
    close_fake(&f);
    spc_heap_destroy(h);
    done_free(d);
}

/* ------------------------------------------------------------ heap lists */

Test(stream, heap_lists)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 8;
    open_fake(&f, &sc, 2, NULL);
    struct spc_heap *h[4];
    struct spc_heap_ref refs[4];
    for (int i = 0; i < 4; i++) {
        h[i] = mk_heap(1000 * (size_t)(i + 1));
        refs[i] = (struct spc_heap_ref){h[i], SPC_CNT_AUTO, (uint32_t)i % 2, -1};
    }
    refs[3].cnt = 1000; /* explicit */
    struct spc_heap_list *l;
    cr_assert_eq(spc_heap_list_create(&l, f.s, refs, 4), 0);
    cr_assert_eq(spc_heap_list_size(l), 4);
    uint64_t bytes;
    cr_assert_eq(spc_stream_send_list_sync(f.s, l, 0, 4, SPC_GROUP_SERIAL, &bytes), 0); /* 1 2 3 1000 */
    int64_t want = 0;
    for (int i = 0; i < 4; i++)
        want += spc_heap_wire_size(h[i], 1, 1472);
    cr_assert_eq((int64_t)bytes, want);
    cr_assert_eq(spc_stream_send_list_sync(f.s, l, 1, 2, SPC_GROUP_ROUND_ROBIN, &bytes), 0); /* 4 5 */
    cr_assert_eq(spc_stream_send_list_sync(f.s, l, 3, 1, SPC_GROUP_SERIAL, NULL), 0);        /* 1000 */
    cr_assert_eq(spc_stream_send_list(f.s, l, 0, 1, SPC_GROUP_SERIAL, NULL, NULL), 0);      /* 6 */
    cr_assert_eq(spc_stream_flush(f.s), 0);
    static const uint64_t cnts[] = {1, 2, 3, 1000, 4, 5, 1000, 6};
    size_t k = 0;
    for (size_t i = 0; i < f.c.n_rec; i++) {
        if (f.rec[i].offset != 0)
            continue;
        cr_assert_lt(k, 8);
        cr_assert_eq(f.rec[i].cnt, cnts[k], "heap %zu: cnt %" PRIu64, k, f.rec[i].cnt);
        k++;
    }
    cr_assert_eq(k, 8);
    /* Substreams came from the list. */
    for (size_t i = 0; i < f.c.n_rec; i++)
        if (f.rec[i].cnt == 2 || f.rec[i].cnt == 1000)
            cr_assert_eq(f.rec[i].substream, 1);

    /* Bad slices and misuse. */
    cr_assert_eq(spc_stream_send_list(f.s, l, 0, 0, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_stream_send_list(f.s, l, 3, 2, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_stream_send_list(f.s, l, 5, 1, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_stream_send_list(f.s, l, SIZE_MAX, 2, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    /* A heap that changed shape since the list was made. */
    cr_assert_eq(spc_heap_add_item(h[2], 0x2000, pattern, 10, false), 0);
    cr_assert_eq(spc_stream_send_list(f.s, l, 0, 4, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_stream_send_list(f.s, l, 0, 2, SPC_GROUP_SERIAL, NULL, NULL), 0);
    /* Invalid entries are caught at creation. */
    struct spc_heap_ref bad[2] = {refs[0], {h[0], SPC_CNT_AUTO, 2, -1}};
    struct spc_heap_list *l2 = (void *)1;
    cr_assert_eq(spc_heap_list_create(&l2, f.s, bad, 2), -SPC_ESUBSTREAM);
    cr_assert_null(l2);
    cr_assert_eq(spc_heap_list_create(&l2, f.s, bad, 0), -EINVAL);
    /* A list belongs to its stream. */
    struct spc_stream *other;
    char err[256];
    cr_assert_eq(spc_stream_open_json(&other, "{\"transport\": \"bytes\"}", NULL, err, sizeof err), 0);
    cr_assert_eq(spc_stream_send_list(other, l, 0, 1, SPC_GROUP_SERIAL, NULL, NULL), -EINVAL);
    spc_stream_close(other);
    close_fake(&f);
    spc_heap_list_destroy(l); /* may outlive the stream */
    for (int i = 0; i < 4; i++)
        spc_heap_destroy(h[i]);
}

/* ------------------------------------------------------------ rate limiting (fake clock) */

struct fclock {
    _Atomic uint64_t now;
    uint64_t link_ps_per_byte; /* simulated link: time a packet takes, picoseconds/byte */
    _Atomic uint64_t link_ps;  /* sub-ns remainder */
    _Atomic uint64_t sleeps;
};

static uint64_t fc_now(void *u)
{
    return atomic_load(&((struct fclock *)u)->now);
}

static void fc_sleep(void *u, uint64_t t)
{
    struct fclock *c = u;
    atomic_fetch_add(&c->sleeps, 1);
    uint64_t n = atomic_load(&c->now);
    if (t > n)
        atomic_store(&c->now, t);
}

static void fc_packet(void *u, size_t size)
{
    struct fclock *c = u;
    uint64_t ps = atomic_load(&c->link_ps) + size * c->link_ps_per_byte;
    atomic_fetch_add(&c->now, ps / 1000);
    atomic_store(&c->link_ps, ps % 1000);
}

static void open_clocked_ex(struct fake *f, struct fclock *fc, struct spc_clock *clk,
                            const struct spc_stream_config *sc, bool hw_pace)
{
    *clk = (struct spc_clock){fc_now, fc_sleep, fc};
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.clock = clk;
    int rc = open_fake_ex(f, sc, 1, &o, hw_pace);
    cr_assert_eq(rc, 0, "open: %s", spc_strerror(rc));
    f->c.clock = fc_now;
    f->c.on_packet = fc_packet;
    f->c.user = fc;
}

static void open_clocked(struct fake *f, struct fclock *fc, struct spc_clock *clk,
                         const struct spc_stream_config *sc)
{
    open_clocked_ex(f, fc, clk, sc, false);
}

/* The check that, for every packet, the bytes sent before it are at most
 * 2 x (burst + mps) + ratio x rate x (its time - the first packet's time): the stream never
 * ran faster than the catch-up rate (the first burst is free, and the bytes of the burst
 * a packet belongs to are sent back to back). Returns the achieved rate over the run. */
#define SLACK(burst) (2.0L * ((long double)(burst) + 1472))
static double check_never_faster(const struct fake *f, double rate, double ratio, uint64_t burst)
{
    uint64_t t0 = f->rec[0].t_ns, before = 0;
    for (size_t i = 0; i < f->c.n_rec && i < REC_CAP; i++) {
        long double allowed = SLACK(burst) + (long double)rate * ratio * (f->rec[i].t_ns - t0) / 1e9L;
        cr_assert((long double)before <= allowed, "packet %zu: %" PRIu64 " bytes by %" PRIu64 " ns", i,
                  before, f->rec[i].t_ns - t0);
        before += f->rec[i].size;
    }
    size_t last = f->c.n_rec - 1;
    return (double)(before - f->rec[last].size) * 1e9 / (double)(f->rec[last].t_ns - t0);
}

Test(stream, rate_limited_stream_follows_schedule)
{
    struct fake f;
    struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 100}; /* 10 GB/s link */
    struct spc_clock clk;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 125e6; /* 1 Gb/s: 8 ns per byte */
    sc.max_heaps = 16;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_clocked(&f, &fc, &clk, &sc);
    struct spc_heap *h = mk_heap(60000);
    for (int i = 0; i < 400; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    double achieved = check_never_faster(&f, sc.rate, sc.burst_rate_ratio, sc.burst_size);
    /* The writer queues heaps faster than the rate, so apart from the first burst the
     * schedule is nominal: the achieved rate is the target to within one burst. */
    double total = 400.0 * (double)spc_heap_wire_size(h, 1, 1472);
    cr_assert(fabs(achieved - sc.rate) / sc.rate < 2.0 * sc.burst_size / total, "achieved %g B/s",
              achieved);
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(f.s, &st);
    cr_assert_gt(st.sleeps, 300);
    cr_assert_eq(st.sleeps, atomic_load(&fc.sleeps));
    /* Bursts: between two sleeps at least burst_size bytes go back to back. */
    cr_assert_geq(st.bytes / (st.sleeps + 1), sc.burst_size);
    close_fake(&f);
    spc_heap_destroy(h);
}

Test(stream, idle_time_is_not_caught_up_in_the_writer)
{
    struct fake f;
    struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 100};
    struct spc_clock clk;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 125e6;
    sc.max_heaps = 16;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_clocked(&f, &fc, &clk, &sc);
    struct spc_heap *h = mk_heap(60000);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    size_t first = f.c.n_rec;
    atomic_fetch_add(&fc.now, 5000000000ull); /* 5 s idle */
    for (int i = 0; i < 100; i++)
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    /* After the idle gap the rate is nominal (8 ns/byte), never the catch-up rate (which
     * would send 5% more: 300 kB over this run, well above the slack). */
    uint64_t t_start = f.rec[first].t_ns, bytes = 0;
    for (size_t i = first; i < f.c.n_rec; i++) {
        long double allowed = SLACK(sc.burst_size) + (long double)(f.rec[i].t_ns - t_start) / 8.0L;
        cr_assert((long double)bytes <= allowed, "packet %zu after idle: %" PRIu64 " bytes in %" PRIu64 " ns",
                  i - first, bytes, f.rec[i].t_ns - t_start);
        bytes += f.rec[i].size;
    }
    close_fake(&f);
    spc_heap_destroy(h);
}

Test(stream, per_heap_rates)
{
    struct fake f;
    struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 0};
    struct spc_clock clk;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 125e6; /* 8 ns/byte */
    sc.max_heaps = 8;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_clocked(&f, &fc, &clk, &sc);
    struct spc_heap *h = mk_heap(200000);
    int64_t wire = spc_heap_wire_size(h, 1, 1472);
    /* Unlimited heaps on a limited stream: no time passes. */
    struct spc_heap_ref r = {h, SPC_CNT_AUTO, 0, 0.0};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(spc_stream_send(f.s, &r, NULL, NULL), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_assert_eq(atomic_load(&fc.sleeps), 0);
    cr_assert_eq(atomic_load(&fc.now), 1000000000);
    /* A heap at 250 MB/s (4 ns/byte) on a 1 Gb/s stream: the clock advances by the
     * nominal duration of all its bursts but the last partial one. */
    uint64_t t0 = atomic_load(&fc.now);
    r.rate = 250e6;
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    uint64_t dt = atomic_load(&fc.now) - t0;
    cr_assert_leq(dt, (uint64_t)wire * 4 + 4);
    cr_assert_geq(dt + sc.burst_size * 4 + 1472 * 4, (uint64_t)wire * 4, "dt %" PRIu64, dt);
    /* Stream rate (-1): twice as long per byte. */
    t0 = atomic_load(&fc.now);
    r.rate = -1;
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    dt = atomic_load(&fc.now) - t0;
    cr_assert_leq(dt, (uint64_t)wire * 8 + 8 * (sc.burst_size + 1472));
    cr_assert_geq(dt + 8 * (sc.burst_size + 1472), (uint64_t)wire * 8 - 8 * (sc.burst_size + 1472),
                  "dt %" PRIu64, dt);
    close_fake(&f);
    spc_heap_destroy(h);
}

Test(stream, real_clock_rate_limit_behaviour)
{
    /* The real clock path (absolute sleep + spin): only behaviour is checked — it never
     * runs faster than the catch-up rate allows, and it sleeps between bursts. */
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 50e6; /* 400 Mb/s */
    sc.burst_size = 16384;
    sc.max_heaps = 8;
    sc.on_full = SPC_ON_FULL_BLOCK;
    open_fake(&f, &sc, 1, NULL);
    struct spc_heap *h = mk_heap(100000);
    for (int i = 0; i < 20; i++) /* 2 MB: 40 ms */
        cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0);
    cr_assert_eq(spc_stream_flush(f.s), 0);
    check_never_faster(&f, sc.rate, sc.burst_rate_ratio, sc.burst_size);
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(f.s, &st);
    cr_assert_gt(st.sleeps, 0);
    close_fake(&f);
    spc_heap_destroy(h);
}

/* Warnings logged, for the pacing tests (each Criterion test runs in its own process). */
static struct {
    pthread_mutex_t m;
    int n;
    char last[512];
} warned = {PTHREAD_MUTEX_INITIALIZER, 0, ""};

static void count_warnings(void *user, int level, const char *msg)
{
    (void)user;
    if (level != SPC_LOG_WARNING)
        return;
    pthread_mutex_lock(&warned.m);
    warned.n++;
    snprintf(warned.last, sizeof warned.last, "%s", msg);
    pthread_mutex_unlock(&warned.m);
}

Test(stream, hw_rate_method_falls_back_to_software)
{
    /* streamfake without "hw_pace" does not report hardware pacing: rate_method "hw" falls
     * back to the software limiter with a warning (SPEC §3/§4), so the writer still waits
     * between bursts. */
    spc_set_log_handler(count_warnings, NULL);
    struct fake f;
    struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 0};
    struct spc_clock clk;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 125e6;
    sc.rate_method = SPC_RATE_METHOD_HW;
    open_clocked(&f, &fc, &clk, &sc);
    cr_expect_not(f.c.hw_paced);
    cr_expect_eq(f.c.rate_method, SPC_RATE_METHOD_HW, "the transport is offered the rate");
    cr_expect_eq(f.c.rate, 125e6);
    cr_expect_eq(warned.n, 1);
    cr_expect(strstr(warned.last, "software rate limiter"), "%s", warned.last);
    struct spc_heap *h = mk_heap(300000);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    cr_assert_geq(atomic_load(&fc.sleeps), 3);
    close_fake(&f);
    spc_heap_destroy(h);
    spc_set_log_handler(NULL, NULL);
}

Test(stream, hw_paced_transport_replaces_the_software_limiter)
{
    spc_set_log_handler(count_warnings, NULL);
    struct fake f;
    struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 0};
    struct spc_clock clk;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 125e6;
    sc.rate_method = SPC_RATE_METHOD_HW;
    open_clocked_ex(&f, &fc, &clk, &sc, true);
    cr_expect(f.c.hw_paced);
    cr_expect_eq(warned.n, 0, "%s", warned.last);
    struct spc_heap *h = mk_heap(300000);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    cr_expect_eq(atomic_load(&fc.sleeps), 0, "the transport paces: the writer never waits");
    /* A heap with its own rate is still paced by the core. */
    r.rate = 125e6;
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    cr_expect_geq(atomic_load(&fc.sleeps), 3);
    close_fake(&f);
    spc_heap_destroy(h);
    spc_set_log_handler(NULL, NULL);
}

Test(stream, hw_pacing_only_when_asked_for)
{
    /* A transport able to pace is not used for it with rate_method sw or auto (auto is
     * software, SPEC §3), nor without a rate. */
    static const enum spc_rate_method methods[2] = {SPC_RATE_METHOD_SW, SPC_RATE_METHOD_AUTO};
    for (int i = 0; i < 3; i++) {
        struct fake f;
        struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 0};
        struct spc_clock clk;
        struct spc_stream_config sc = cfg_default();
        sc.rate = i < 2 ? 125e6 : 0;
        sc.rate_method = i < 2 ? methods[i] : SPC_RATE_METHOD_HW;
        open_clocked_ex(&f, &fc, &clk, &sc, true);
        cr_expect_not(f.c.hw_paced);
        struct spc_heap *h = mk_heap(300000);
        struct spc_heap_ref r = SPC_HEAP_REF(h);
        cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
        if (i < 2)
            cr_expect_geq(atomic_load(&fc.sleeps), 3, "case %d", i);
        else
            cr_expect_eq(atomic_load(&fc.sleeps), 0);
        close_fake(&f);
        spc_heap_destroy(h);
    }
}

/* Per packet: link time, and once armed, a 10 s jump of the clock. */
static atomic_bool jump_armed;
static void jump_packet(void *u, size_t size)
{
    if (atomic_exchange(&jump_armed, false))
        atomic_fetch_add(&((struct fclock *)u)->now, 10000000000ull);
    fc_packet(u, size);
}

Test(stream, withdrawn_hw_pacing_falls_back_to_software)
{
    spc_set_log_handler(count_warnings, NULL);
    struct fake f;
    struct fclock fc = {.now = 1000000000, .link_ps_per_byte = 0};
    struct spc_clock clk;
    struct spc_stream_config sc = cfg_default();
    sc.rate = 125e6; /* 8 ns per byte */
    sc.rate_method = SPC_RATE_METHOD_HW;
    open_clocked_ex(&f, &fc, &clk, &sc, true);
    struct spc_heap *h = mk_heap(sizeof pattern);
    int64_t wire = spc_heap_wire_size(h, 1, 1472);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    cr_assert_eq(atomic_load(&fc.sleeps), 0);
    /* Three heaps in one group, so the writer never idles. The first send carries the
     * first 1 MiB unpaced; inside it 10 s pass (the hardware paced them) and the
     * transport loses hardware pacing. */
    pthread_mutex_lock(&f.c.lock);
    f.c.withdraw_hw = true;
    f.c.on_packet = jump_packet;
    pthread_mutex_unlock(&f.c.lock);
    atomic_store(&jump_armed, true);
    uint64_t t0 = atomic_load(&fc.now);
    struct spc_heap_ref refs[3] = {r, r, r};
    cr_assert_eq(spc_stream_send_heaps_sync(f.s, refs, 3, SPC_GROUP_SERIAL, NULL), 0);
    uint64_t dt = atomic_load(&fc.now) - t0 - 10000000000ull;
    cr_expect_not(f.c.hw_paced);
    cr_expect_geq(atomic_load(&fc.sleeps), 20);
    /* The other two heaps (less the end of the first batch) at the nominal rate, not
     * the catch-up rate over 10 s of deficit (5 % faster: 0.8 ms less). */
    uint64_t slack = 8 * (sc.burst_size + 2 * 1472);
    uint64_t nominal = (uint64_t)(2 * wire) * 8;
    cr_expect_geq(dt + slack, nominal, "dt %" PRIu64 " for %" PRIu64, dt, nominal);
    cr_expect_leq(dt, nominal + slack, "dt %" PRIu64 " for %" PRIu64, dt, nominal);
    cr_expect_geq(warned.n, 1);
    cr_expect(strstr(warned.last, "hardware pacing lost"), "%s", warned.last);
    close_fake(&f);
    spc_heap_destroy(h);
    spc_set_log_handler(NULL, NULL);
}

/* ------------------------------------------------------------ registered memory */

static uint8_t other_mem[4096];

Test(stream, memory_registration_reaches_the_transport)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    open_fake(&f, &sc, 1, NULL);
    struct spc_stream_memory *m, *m2;
    cr_assert_eq(spc_stream_register_memory(f.s, pattern, sizeof pattern, &m), 0);
    cr_expect_eq(f.c.reg_calls, 1);
    cr_expect_eq(f.c.n_regions, 1);
    cr_expect_eq(f.c.last_reg_addr, pattern);
    cr_expect_eq(f.c.last_reg_len, sizeof pattern);
    /* Heaps in registered memory go out as any other. */
    struct spc_heap *h = mk_heap(50000);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    cr_assert_eq(spc_stream_send_sync(f.s, &r, NULL), 0);
    cr_assert_eq(spc_stream_deregister_memory(f.s, m), 0);
    cr_expect_eq(f.c.dereg_calls, 1);
    cr_expect_eq(f.c.n_regions, 0);
    /* Bad arguments reach nothing. */
    cr_expect_eq(spc_stream_register_memory(NULL, pattern, 8, &m), -EINVAL);
    cr_expect_eq(spc_stream_register_memory(f.s, NULL, 8, &m), -EINVAL);
    cr_expect_eq(spc_stream_register_memory(f.s, pattern, 0, &m), -EINVAL);
    cr_expect_eq(spc_stream_register_memory(f.s, pattern, 8, NULL), -EINVAL);
    cr_expect_eq(spc_stream_register_memory(f.s, (void *)(UINTPTR_MAX - 10), 100, &m), -EINVAL);
    cr_expect_eq(spc_stream_deregister_memory(f.s, NULL), -EINVAL);
    cr_expect_eq(spc_stream_deregister_memory(NULL, m), -EINVAL);
    cr_expect_eq(f.c.reg_calls, 1);
    cr_expect_eq(f.c.dereg_calls, 1);
    /* The transport's errors come back, with its detail; nothing is left registered. */
    f.c.reg_rc = -ENOMEM;
    cr_expect_eq(spc_stream_register_memory(f.s, pattern, 64, &m), -ENOMEM);
    char err[256];
    spc_stream_last_error(f.s, err, sizeof err);
    cr_expect(strstr(err, "registering 64 bytes"), "%s", err);
    f.c.reg_rc = 0;
    cr_assert_eq(spc_stream_register_memory(f.s, pattern, 64, &m), 0);
    f.c.dereg_rc = -EIO;
    cr_expect_eq(spc_stream_deregister_memory(f.s, m), -EIO);
    f.c.dereg_rc = 0;
    cr_expect_eq(f.c.n_regions, 1, "a failed deregistration leaves it in place");
    cr_expect_eq(spc_stream_deregister_memory(f.s, m), 0, "and it can be retried");
    /* A registration of another stream is not this one's. */
    struct fake g;
    open_fake(&g, &sc, 1, NULL);
    cr_assert_eq(spc_stream_register_memory(g.s, other_mem, sizeof other_mem, &m2), 0);
    cr_expect_eq(spc_stream_deregister_memory(f.s, m2), -EINVAL);
    cr_expect_eq(g.c.n_regions, 1);
    /* Close deregisters what is left. */
    cr_assert_eq(spc_stream_register_memory(f.s, other_mem, sizeof other_mem, &m), 0);
    close_fake(&g);
    cr_expect_eq(g.c.n_regions, 0);
    cr_expect_eq(g.c.dereg_calls, 1);
    size_t before = f.c.dereg_calls;
    close_fake(&f);
    cr_expect_eq(f.c.dereg_calls, before + 1);
    cr_expect_eq(f.c.n_regions, 0);
    cr_expect_eq(f.c.memreg_in_send, 0);
    spc_heap_destroy(h);
}

struct dereg_call {
    struct spc_stream *s;
    struct spc_stream_memory *m;
    atomic_int rc;
    atomic_bool done;
};

static void *dereg_thread(void *arg)
{
    struct dereg_call *d = arg;
    atomic_store(&d->rc, spc_stream_deregister_memory(d->s, d->m));
    atomic_store(&d->done, true);
    return NULL;
}

Test(stream, deregistering_memory_in_flight_is_refused, .timeout = 60)
{
    struct fake f;
    struct spc_stream_config sc = cfg_default();
    sc.max_heaps = 8;
    open_fake(&f, &sc, 1, NULL);
    /* x: the item memory of the heaps sent below; y: used by no heap sent; z: used only
     * by a heap list that is never sent. */
    struct spc_stream_memory *x, *y, *z;
    cr_assert_eq(spc_stream_register_memory(f.s, pattern + 1000, 100, &x), 0);
    cr_assert_eq(spc_stream_register_memory(f.s, other_mem, 1024, &y), 0);
    cr_assert_eq(spc_stream_register_memory(f.s, other_mem + 2048, 1024, &z), 0);
    struct spc_heap *h = mk_heap(5000); /* pattern[0, 5000): overlaps x */
    struct spc_heap *hz;
    cr_assert_eq(spc_heap_create(&hz, NULL), 0);
    cr_assert_eq(spc_heap_add_item(hz, 0x1000, other_mem + 3000, 8, false), 0);
    struct spc_heap_ref rz = SPC_HEAP_REF(hz);
    struct spc_heap_list *list;
    cr_assert_eq(spc_heap_list_create(&list, f.s, &rz, 1), 0);
    fake_set_hold(&f, true);
    cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0); /* held inside send */
    fake_wait_sends(&f, 1);
    cr_assert_eq(spc_stream_send_heap(f.s, h, NULL, NULL), 0); /* queued behind it */
    /* Refused at once (no waiting for the transport), naming the heap. */
    cr_expect_eq(spc_stream_deregister_memory(f.s, x), -EBUSY);
    char err[256];
    spc_stream_last_error(f.s, err, sizeof err);
    cr_expect(strstr(err, "heap cnt 1"), "%s", err);
    cr_expect_eq(f.c.dereg_calls, 0);
    /* Memory no accepted heap uses is deregistered, once the transport call in progress
     * has returned (transport calls are serialised). */
    struct dereg_call dy = {f.s, y, 1, false}, dz = {f.s, z, 1, false};
    pthread_t ty, tz;
    cr_assert_eq(pthread_create(&ty, NULL, dereg_thread, &dy), 0);
    cr_assert_eq(pthread_create(&tz, NULL, dereg_thread, &dz), 0);
    sleep_ms(50);
    cr_expect_not(atomic_load(&dy.done), "deregistered while the transport was sending");
    fake_set_hold(&f, false);
    pthread_join(ty, NULL);
    pthread_join(tz, NULL);
    cr_expect_eq(atomic_load(&dy.rc), 0);
    cr_expect_eq(atomic_load(&dz.rc), 0, "a heap list that is not sent does not count");
    cr_assert_eq(spc_stream_flush(f.s), 0);
    cr_expect_eq(spc_stream_deregister_memory(f.s, x), 0, "completed heaps do not count");
    cr_expect_eq(f.c.dereg_calls, 3);
    cr_expect_eq(f.c.n_regions, 0);
    cr_expect_eq(f.c.memreg_in_send, 0);
    spc_heap_list_destroy(list);
    close_fake(&f);
    spc_heap_destroy(h);
    spc_heap_destroy(hz);
}

struct dereg_cb {
    struct spc_stream *s;
    struct spc_stream_memory *m;
    atomic_int rc;
};

static void dereg_on_done(void *user, int status, uint64_t bytes)
{
    (void)status;
    (void)bytes;
    struct dereg_cb *d = user;
    atomic_store(&d->rc, spc_stream_deregister_memory(d->s, d->m));
}

Test(stream, completion_may_deregister_its_heaps_memory)
{
    for (int async = 0; async < 2; async++) {
        struct fake f;
        struct spc_stream_config sc = cfg_default();
        open_fake(&f, &sc, 1, NULL);
        f.c.async = async;
        struct dereg_cb d = {f.s, NULL, 1};
        cr_assert_eq(spc_stream_register_memory(f.s, pattern, sizeof pattern, &d.m), 0);
        struct spc_heap *h = mk_heap(100000);
        cr_assert_eq(spc_stream_send_heap(f.s, h, dereg_on_done, &d), 0);
        cr_assert_eq(spc_stream_flush(f.s), 0);
        cr_expect_eq(atomic_load(&d.rc), 0);
        cr_expect_eq(f.c.n_regions, 0);
        close_fake(&f);
        spc_heap_destroy(h);
    }
}

Test(stream, memory_registration_is_a_no_op_without_transport_support)
{
    /* The bytes transport sends from any memory: registering succeeds without it. */
    struct spc_stream *s, *s2;
    char err[256];
    cr_assert_eq(spc_stream_open_json(&s, "{\"transport\": \"bytes\"}", NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_stream_open_json(&s2, "{\"transport\": \"bytes\"}", NULL, err, sizeof err), 0, "%s", err);
    struct spc_stream_memory *m, *m2;
    cr_assert_eq(spc_stream_register_memory(s, pattern, sizeof pattern, &m), 0);
    cr_assert_eq(spc_stream_register_memory(s2, pattern, sizeof pattern, &m2), 0);
    struct spc_heap *h = mk_heap(5000);
    struct spc_heap_ref r = SPC_HEAP_REF(h);
    uint64_t bytes;
    cr_assert_eq(spc_stream_send_sync(s, &r, &bytes), 0);
    cr_expect_eq((int64_t)bytes, spc_heap_wire_size(h, 1, 1472));
    cr_expect_eq(spc_stream_deregister_memory(s, m2), -EINVAL, "another stream's");
    cr_expect_eq(spc_stream_deregister_memory(s, m), 0);
    cr_expect_eq(spc_stream_register_memory(s, pattern, 0, &m), -EINVAL);
    spc_stream_close(s);
    spc_stream_close(s2); /* still holding m2: freed at close */
    spc_heap_destroy(h);
}
