/* Concurrency stress of send streams for the ThreadSanitizer stage (ctest -L tsan).
 *
 * A plain program, not a Criterion suite: Criterion cannot start under ThreadSanitizer
 * (its boxfort arena cannot be mapped in TSan's address layout; Criterion issue #274),
 * so the thread-heavy paths of tests/unit/test_stream.c are driven again here:
 * many senders using every send form at once (both queue policies, synchronous and
 * asynchronous transports), completions that queue more, a completion queue drained by
 * an event-loop thread through its eventfd, concurrent flush / stats / error reads, byte
 * buffer resets racing the writer, close with heaps in flight and blocked senders, and a
 * transport that breaks while threads send. Half the many senders send heaps laid out as
 * their packets, so sends of one heap race for its in-place header rooms, also from two
 * writers (under TSan, two writers writing one room would be reported). All of it runs
 * twice: with one writer thread and with writer_threads 2 (two substreams, one transport
 * object per writer). Exits 0 when every check holds; loops are bounded in count (and
 * every wait in time). */
#include <errno.h>
#include <inttypes.h>
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

static int failures;

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            failures++;                                                                \
        }                                                                              \
    } while (0)

static uint8_t pattern[1 << 16];

static struct spc_heap *mk_heap(size_t len)
{
    struct spc_heap *h;
    if (spc_heap_create(&h, NULL) < 0 || spc_heap_add_item(h, 0x1000, pattern, len, false) < 0) {
        fprintf(stderr, "cannot build a heap\n");
        exit(2);
    }
    return h;
}

/* The same bytes held by the heap, laid out as its packets (spc_heap_reserve_item): its
 * sends race for the layout (one writes headers in place, the others gather). */
static struct spc_heap *mk_laid_out_heap(size_t len, size_t max_packet_size)
{
    struct spc_heap *h;
    if (spc_heap_create(&h, NULL) < 0 || spc_heap_reserve_item(h, 0x1000, len, max_packet_size) < 0 ||
        spc_heap_payload_write(h, 0, pattern, len) < 0) {
        fprintf(stderr, "cannot build a laid-out heap\n");
        exit(2);
    }
    return h;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Writer threads (and substreams) of the streams open_fake opens. */
static unsigned n_writers = 1;

static struct spc_stream *open_fake(struct sf_control *c, struct sf_packet *rec, size_t rec_cap,
                                    size_t max_heaps, enum spc_on_full on_full,
                                    const struct spc_stream_options *o)
{
    sf_control_init(c);
    c->rec = rec;
    c->rec_cap = rec_cap;
    struct spc_stream_config sc = SPC_STREAM_CONFIG_DEFAULT;
    sc.max_heaps = max_heaps;
    sc.on_full = on_full;
    sc.writer_threads = n_writers;
    const char *path[] = {FAKE_DIR, NULL};
    char err[512];
    struct spc_config *cfg;
    struct spc_stream *s = NULL;
    int rc = spc_config_create(&cfg, "streamfake", &sc, path, err, sizeof err);
    if (rc == 0)
        rc = spc_config_set_uint(cfg, "control", (uint64_t)(uintptr_t)c, err, sizeof err);
    if (rc == 0)
        rc = spc_config_set_uint(cfg, "substreams", n_writers, err, sizeof err);
    if (rc == 0)
        rc = spc_stream_open(&s, cfg, o, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", err);
        exit(2);
    }
    spc_config_destroy(cfg);
    return s;
}

/* ------------------------------------------------------------ many senders */

enum { THREADS = 6, ITERS = 200 };

struct shared {
    struct spc_stream *s;
    struct spc_heap_list *list;
    atomic_int completed; /* heaps reported complete with status 0 */
    atomic_int queued_to_cq;
    atomic_int stop_aux;
};

struct sender {
    struct shared *sh;
    struct spc_heap *h;
    int id;
    int rc;
};

static void count_cb(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    if (status == 0)
        atomic_fetch_add(&((struct shared *)user)->completed, 1);
}

static void *sender_main(void *p)
{
    struct sender *a = p;
    struct shared *sh = a->sh;
    const unsigned n_sub = spc_stream_n_substreams(sh->s);
    for (int i = 0; i < ITERS && a->rc == 0; i++) {
        struct spc_heap_ref r = SPC_HEAP_REF(a->h);
        r.substream = (uint32_t)(i + a->id) % n_sub;
        struct spc_heap_ref two[2] = {r, r};
        two[1].substream = (r.substream + 1) % n_sub; /* a group that spans the writers */
        switch ((i + a->id) % 5) {
        case 0:
            a->rc = spc_stream_send(sh->s, &r, count_cb, sh);
            break;
        case 1:
            a->rc = spc_stream_send_sync(sh->s, &r, NULL);
            if (a->rc == 0)
                atomic_fetch_add(&sh->completed, 1);
            break;
        case 2:
            a->rc = spc_stream_send_heaps(sh->s, two, 2, SPC_GROUP_ROUND_ROBIN, count_cb, sh);
            if (a->rc == 0)
                atomic_fetch_add(&sh->completed, 1); /* one completion for two heaps */
            break;
        case 3:
            a->rc = spc_stream_send_list(sh->s, sh->list, 0, 1, SPC_GROUP_SERIAL, count_cb, sh);
            break;
        default: {
            /* No callback: the completions go to the queue the event loop drains (two
             * single heaps in one call on odd turns). */
            void *users[2] = {(void *)(intptr_t)a->id, (void *)(intptr_t)a->id};
            int k = i % 2 ? 2 : 1;
            a->rc = k == 2 ? spc_stream_send_each(sh->s, two, 2, NULL, users)
                           : spc_stream_send(sh->s, &r, NULL, users[0]);
            if (a->rc == 0)
                atomic_fetch_add(&sh->queued_to_cq, k);
            break;
        }
        }
    }
    return NULL;
}

struct loop_arg {
    struct shared *sh;
    int drained;
    int bad;
};

/* An event loop: waits on the completion fd and drains. */
static void *loop_main(void *p)
{
    struct loop_arg *a = p;
    int fd = spc_stream_completion_fd(a->sh->s);
    struct pollfd pfd = {fd, POLLIN, 0};
    for (int spins = 0; spins < 200000; spins++) {
        int n = poll(&pfd, 1, 10);
        if (n > 0) {
            struct spc_stream_completion c[16];
            int m;
            while ((m = spc_stream_drain(a->sh->s, c, 16)) > 0)
                for (int i = 0; i < m; i++) {
                    a->drained++;
                    if (c[i].status != 0)
                        a->bad++;
                }
        }
        if (atomic_load(&a->sh->stop_aux) && a->drained >= atomic_load(&a->sh->queued_to_cq))
            break;
    }
    return NULL;
}

/* Flushes, reads stats and the error text while the senders run. */
static void *aux_main(void *p)
{
    struct shared *sh = p;
    for (int i = 0; i < 100000 && !atomic_load(&sh->stop_aux); i++) {
        struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
        spc_stream_get_stats(sh->s, &st);
        char buf[128];
        spc_stream_last_error(sh->s, buf, sizeof buf);
        if (i % 16 == 0)
            spc_stream_flush(sh->s);
        sleep_ms(1);
    }
    return NULL;
}

static void many_senders(bool async, enum spc_on_full on_full)
{
    static struct sf_packet rec[60000];
    struct sf_control c;
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    o.completion_queue = true;
    struct shared sh = {0};
    sh.s = open_fake(&c, rec, sizeof rec / sizeof rec[0], 6, on_full, &o);
    c.async = async;
    const size_t mps = spc_stream_get_config(sh.s)->max_packet_size;
    struct spc_heap *lh = mk_heap(3000);
    struct spc_heap_ref lr = SPC_HEAP_REF(lh);
    CHECK(spc_heap_list_create(&sh.list, sh.s, &lr, 1) == 0, "list");
    struct sender a[THREADS];
    pthread_t th[THREADS], loop, aux;
    struct loop_arg la = {.sh = &sh};
    pthread_create(&loop, NULL, loop_main, &la);
    pthread_create(&aux, NULL, aux_main, &sh);
    for (int i = 0; i < THREADS; i++) {
        size_t len = 500 + (size_t)i * 2000;
        a[i] = (struct sender){.sh = &sh, .id = i,
                               .h = i % 2 ? mk_laid_out_heap(len, mps) : mk_heap(len)};
        pthread_create(&th[i], NULL, sender_main, &a[i]);
    }
    int ok_sends = 0, full = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (a[i].rc == -SPC_EQUEUE_FULL)
            full++;
        else
            CHECK(a[i].rc == 0, "sender %d: %s", i, spc_strerror(a[i].rc));
        ok_sends += a[i].rc == 0;
    }
    CHECK(spc_stream_flush(sh.s) == 0, "flush");
    atomic_store(&sh.stop_aux, 1);
    pthread_join(aux, NULL);
    pthread_join(loop, NULL);
    CHECK(la.bad == 0, "%d queue completions failed", la.bad);
    CHECK(la.drained == atomic_load(&sh.queued_to_cq), "drained %d of %d", la.drained,
          atomic_load(&sh.queued_to_cq));
    if (on_full == SPC_ON_FULL_BLOCK) {
        CHECK(full == 0, "a blocking send failed with queue full");
        int heaps = 0;
        for (int t = 0; t < THREADS; t++)
            for (int i = 0; i < ITERS; i++)
                heaps += (i + t) % 5 == 2 ? 2 : (i + t) % 5 == 4 ? 0 : 1;
        CHECK(atomic_load(&sh.completed) == heaps, "completed %d of %d",
              atomic_load(&sh.completed), heaps);
    }
    /* Each packet belongs to a whole heap: first packets (offset 0) have unique cnts. */
    pthread_mutex_lock(&c.lock);
    size_t n = c.n_rec < sizeof rec / sizeof rec[0] ? c.n_rec : sizeof rec / sizeof rec[0];
    uint64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (rec[i].cnt > max)
            max = rec[i].cnt;
    uint8_t *seen = calloc(max + 1, 1);
    for (size_t i = 0; i < n; i++)
        if (rec[i].offset == 0) {
            CHECK(!seen[rec[i].cnt], "cnt %" PRIu64 " twice", rec[i].cnt);
            seen[rec[i].cnt] = 1;
        }
    free(seen);
    pthread_mutex_unlock(&c.lock);
    (void)ok_sends;
    spc_stream_close(sh.s);
    CHECK(c.corrupt == 0, "pending packet memory changed");
    CHECK(c.closed == n_writers, "transport not closed");
    sf_control_destroy(&c);
    spc_heap_list_destroy(sh.list);
    spc_heap_destroy(lh);
    for (int i = 0; i < THREADS; i++)
        spc_heap_destroy(a[i].h);
}

/* ------------------------------------------------------------ callbacks queue more */

struct chain {
    struct spc_stream *s;
    const struct spc_heap *h;
    atomic_int left;
    atomic_int errors;
};

static void chain_cb(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    struct chain *c = user;
    if (status != 0)
        atomic_fetch_add(&c->errors, 1);
    if (atomic_fetch_sub(&c->left, 1) > 1 && spc_stream_send_heap(c->s, c->h, chain_cb, c) != 0)
        atomic_fetch_add(&c->errors, 1);
}

static void callbacks_queue_more(void)
{
    struct sf_control c;
    struct spc_stream *s = open_fake(&c, NULL, 0, 2, SPC_ON_FULL_BLOCK, NULL);
    c.async = true;
    struct spc_heap *h = mk_heap(4000);
    struct chain ch = {.s = s, .h = h};
    atomic_store(&ch.left, 300);
    CHECK(spc_stream_send_heap(s, h, chain_cb, &ch) == 0, "first send");
    for (int i = 0; i < 3000 && atomic_load(&ch.left) > 0; i++)
        sleep_ms(5);
    CHECK(atomic_load(&ch.left) == 0, "chain stopped at %d", atomic_load(&ch.left));
    CHECK(atomic_load(&ch.errors) == 0, "chain errors");
    spc_stream_close(s);
    sf_control_destroy(&c);
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------ bytes resets */

struct resetter {
    struct spc_stream *s;
    atomic_int stop;
};

static void *reset_main(void *p)
{
    struct resetter *r = p;
    for (int i = 0; i < 100000 && !atomic_load(&r->stop); i++) {
        spc_bytes_stream_reset(r->s);
        sleep_ms(1);
    }
    return NULL;
}

static void bytes_resets(void)
{
    struct spc_stream *s;
    char err[256];
    CHECK(spc_stream_open_json(&s, "{\"transport\": \"bytes\", \"stream\": {\"max_heaps\": 8, \"on_full\": \"block\"}}",
                               NULL, err, sizeof err) == 0,
          "%s", err);
    struct spc_heap *h = mk_heap(20000);
    struct resetter r = {.s = s};
    pthread_t th;
    pthread_create(&th, NULL, reset_main, &r);
    for (int i = 0; i < 2000; i++)
        CHECK(spc_stream_send_heap(s, h, NULL, NULL) == 0, "send %d", i);
    CHECK(spc_stream_flush(s) == 0, "flush");
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    const uint8_t *d;
    size_t len;
    CHECK(spc_bytes_stream_data(s, &d, &len) == 0, "bytes");
    /* Resets fall between transport sends: what is left is whole packets. */
    size_t off = 0;
    while (off < len) {
        struct spc_packet_info info;
        int rc = spc_packet_parse(d + off, len - off, &info);
        CHECK(rc == 0, "packet at %zu of %zu: %s", off, len, spc_strerror(rc));
        if (rc != 0)
            break;
        off += info.packet_size;
    }
    spc_stream_close(s);
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------ close races */

struct blocked {
    struct spc_stream *s;
    const struct spc_heap *h;
    int rc;
};

static void *blocked_main(void *p)
{
    struct blocked *b = p;
    b->rc = spc_stream_send_heap(b->s, b->h, NULL, NULL);
    return NULL;
}

static void *close_main(void *p)
{
    spc_stream_close(p);
    return NULL;
}

static void close_with_blocked_senders(void)
{
    struct sf_control c;
    struct spc_stream *s = open_fake(&c, NULL, 0, 1, SPC_ON_FULL_BLOCK, NULL);
    struct spc_heap *h = mk_heap(1000);
    pthread_mutex_lock(&c.lock);
    c.hold = true;
    pthread_mutex_unlock(&c.lock);
    CHECK(spc_stream_send_heap(s, h, NULL, NULL) == 0, "first");
    struct blocked b[3];
    pthread_t tb[3], tc;
    for (int i = 0; i < 3; i++) {
        b[i] = (struct blocked){.s = s, .h = h, .rc = 1};
        pthread_create(&tb[i], NULL, blocked_main, &b[i]);
    }
    sleep_ms(20);
    pthread_create(&tc, NULL, close_main, s);
    for (int i = 0; i < 3; i++) {
        pthread_join(tb[i], NULL);
        CHECK(b[i].rc == -SPC_ESTOPPED, "blocked sender %d: %d", i, b[i].rc);
    }
    pthread_mutex_lock(&c.lock);
    c.hold = false;
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.lock);
    pthread_join(tc, NULL);
    CHECK(c.closed == n_writers, "closed");
    sf_control_destroy(&c);
    spc_heap_destroy(h);
}

static void close_in_flight(void)
{
    for (int async = 0; async < 2; async++) {
        struct sf_control c;
        struct spc_stream *s = open_fake(&c, NULL, 0, 64, SPC_ON_FULL_FAIL, NULL);
        c.async = async;
        struct spc_heap *h = mk_heap(30000);
        struct shared sh = {.s = s};
        for (int i = 0; i < 64; i++)
            CHECK(spc_stream_send_heap(s, h, count_cb, &sh) == 0, "send");
        spc_stream_close(s);
        CHECK(atomic_load(&sh.completed) == 64, "%d of 64 completed", atomic_load(&sh.completed));
        sf_control_destroy(&c);
        spc_heap_destroy(h);
    }
}

/* ------------------------------------------------------------ transport breaks */

static void *breaker_sender(void *p)
{
    struct sender *a = p;
    for (int i = 0; i < ITERS; i++) {
        struct spc_heap_ref r = SPC_HEAP_REF(a->h);
        int rc = i % 2 ? spc_stream_send_sync(a->sh->s, &r, NULL)
                       : spc_stream_send(a->sh->s, &r, count_cb, a->sh);
        if (rc != 0 && rc != -SPC_ECLOSED)
            a->rc = rc;
        if (rc == -SPC_ECLOSED)
            break;
    }
    return NULL;
}

static void transport_breaks(void)
{
    struct sf_control c;
    struct shared sh = {0};
    sh.s = open_fake(&c, NULL, 0, 4, SPC_ON_FULL_BLOCK, NULL);
    struct sender a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct sender){.sh = &sh, .h = mk_heap(5000), .id = i};
        pthread_create(&th[i], NULL, breaker_sender, &a[i]);
    }
    sleep_ms(5);
    pthread_mutex_lock(&c.lock);
    c.send_rc = -SPC_ECLOSED;
    pthread_mutex_unlock(&c.lock);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(a[i].rc == 0, "sender %d: %s", i, spc_strerror(a[i].rc));
    }
    CHECK(spc_stream_flush(sh.s) == 0, "flush");
    spc_stream_close(sh.s);
    sf_control_destroy(&c);
    for (int i = 0; i < 4; i++)
        spc_heap_destroy(a[i].h);
}

static void quiet(void *user, int level, const char *msg)
{
    (void)user, (void)level, (void)msg;
}

int main(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 13 + 1);
    spc_set_log_handler(quiet, NULL); /* transport_breaks logs the failure on purpose */
    for (n_writers = 1; n_writers <= 2; n_writers++) {
        many_senders(false, SPC_ON_FULL_BLOCK);
        many_senders(true, SPC_ON_FULL_BLOCK);
        many_senders(true, SPC_ON_FULL_FAIL);
        callbacks_queue_more();
        close_with_blocked_senders();
        close_in_flight();
        transport_breaks();
    }
    bytes_resets(); /* the bytes transport: one writer whatever is asked */
    if (failures) {
        fprintf(stderr, "stream_stress: %d checks failed\n", failures);
        return 1;
    }
    printf("stream_stress: all checks passed\n");
    return 0;
}
