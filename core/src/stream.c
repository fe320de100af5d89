/* Send streams: the heap queue, the writer thread and completions (SPEC §3).
 *
 * Queue. max_heaps heap slots and as many group records, both rings indexed by
 * monotonically increasing counters (index = counter % cap). A send takes the lock,
 * checks room, fills the next free slots and one group record, and publishes them by
 * advancing q_alloc / g_alloc. The writer reads published slots without the lock: a slot's
 * sender-written fields do not change until the writer frees it (q_free, under the lock).
 *
 * Writer. Takes packets from the oldest unfinished group (SERIAL: heap after heap;
 * ROUND_ROBIN: one packet per unfinished heap in turn), so groups go out strictly in
 * order, and packs them, spanning heaps and groups, into a batch: one transport send.
 * A batch owns its packet records (iovecs, owning heap) and a scratch arena in which the
 * packets' headers are bump-allocated; all stay in use until the transport has completed
 * every packet of the batch. Batches are preallocated (one, or two for an asynchronous
 * transport so one is packed while the other is in flight), so nothing is allocated per
 * heap or packet. A heap finishes when all its packets are produced and completed; a
 * group when all its heaps have. Finished groups are retired from the front, in order:
 * their slots are freed first, then their completions are delivered outside the lock.
 *
 * Rate. spci_ratelimit gates every packet of a rate-limited heap; the writer sleeps at
 * burst boundaries (absolute-time sleep, then a short spin of at most the measured
 * oversleep). Work that arrives at an idle writer resumes the limiter (idle time is no
 * deficit).
 *
 * Locks. lock guards the queue counters and registrations; tx_lock serialises the calls
 * into the transport. Where both are held, lock is taken first (deregistration). No
 * transport call is made under lock otherwise, and nothing takes lock under tx_lock.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "heap_internal.h"
#include "log_internal.h"
#include "ratelimit.h"
#include "sized.h"
#include "speadcast/speadcast.h"
#include "speadcast/stream.h"
#include "transport_bytes.h"
#include "transport_internal.h"

/* Batch limits: a batch ends at BATCH_MAX_PACKETS packets or once it holds
 * BATCH_MAX_BYTES, whichever comes first (or earlier, where the rate limiter must wait or
 * the work runs out). SPEC §3 speaks of 64 packets per sendmmsg, spead2's figure; but with
 * UDP GSO one message carries up to 64 KiB (44 packets of 1472 bytes), and a system call
 * is only amortised over many full messages: the bare sendmmsg ceiling sends 16 per call,
 * and 64-packet batches (one or two GSO messages per call) reached about 75 % of it. So a
 * batch holds 16 full GSO messages' worth of bytes, and for small packets up to 1024
 * packets. Transports split a batch as they need (udp: 64 messages per sendmmsg). */
#define BATCH_MAX_PACKETS 1024u
#define BATCH_MAX_BYTES (16u * 65536u)
/* Header scratch per packet the arena provides beyond one worst-case packet. A packet
 * uses iov[0].iov_len bytes of it, rounded up to 8: its header and item pointers (40
 * bytes after a heap's first packet; 40 + 8 per item with repeat_pointers), whole
 * payloads only in the rare copy case. A batch ends before a packet could find less than
 * spc_packet_scratch_size(mps) left, so a full batch fits packets of up to 128 bytes of
 * header (repeat_pointers heaps of up to 11 items). */
#define BATCH_ARENA_PER_PACKET 128u

struct waiter {
    bool done;
    int status;
    uint64_t bytes;
};

struct slot {
    /* Written by the sender under the lock while the slot is free. */
    const struct spc_heap *heap;
    uint64_t cnt;
    uint32_t substream;
    size_t group; /* index in groups[] */
    bool stream_rate; /* at the stream's rate (paced as the writer's w_step says) */
    struct spci_rate_step step; /* otherwise */
    /* Writer-owned while the slot is in use (reset by the sender). */
    struct spc_packetizer pz;
    bool started;
    bool produced;     /* every packet handed out (or the heap failed before that) */
    uint32_t inflight; /* packets handed to the transport and not yet completed */
    int status;
    uint64_t bytes;
};

struct group {
    /* Written by the sender. */
    uint64_t first; /* slot counter of its first heap */
    size_t n;
    enum spc_group_mode mode;
    spc_send_callback cb;
    void *user;
    struct waiter *waiter;
    /* Writer-owned. */
    size_t cursor;     /* next heap (index within the group) to take a packet from */
    size_t unproduced; /* heaps not yet produced */
    size_t unfinished; /* heaps not yet finished */
};

struct done_rec {
    spc_send_callback cb;
    void *user;
    bool sync; /* a synchronous send: reported to its waiter only */
    int status;
    uint64_t bytes;
};

struct batch;

/* One packet of a batch. */
struct tx {
    struct spc_packet pkt;
    struct slot *slot;
    struct batch *batch;
    bool pending; /* handed to the transport, completion not yet seen */
};

/* Free (may be packed) exactly when pending == 0. */
struct batch {
    struct tx *tx;              /* BATCH_MAX_PACKETS records */
    struct spc_tx_packet *pkts; /* what the transport is handed, parallel to tx */
    uint8_t *arena;             /* arena_size bytes of header scratch */
    size_t pending;             /* packets handed to the transport and not yet completed */
};

/* A checked heap reference: what a send or a list entry puts in a slot. */
struct prep {
    const struct spc_heap *heap;
    uint64_t cnt;
    uint32_t substream;
    bool stream_rate;
    struct spci_rate_step step;
    size_t n_items;
    uint64_t payload;
    bool repeat;
};

/* A registration (spc_stream_register_memory). */
struct spc_stream_memory {
    struct spc_stream_memory *next;
    uintptr_t start, end;
    void *handle; /* the transport's; unused where the transport has no registration */
};

struct spc_heap_list {
    const struct spc_stream *stream;
    size_t n;
    struct prep e[];
};

struct spc_stream {
    struct spc_stream_config cfg;
    size_t mps;
    uint64_t cnt_mask;
    struct spci_transport *tp;
    unsigned n_sub;
    bool async;
    struct spci_rate_step stream_step; /* the stream's rate in software; zero when unlimited */
    struct spc_clock clock;            /* now_ns NULL: CLOCK_MONOTONIC */
    uint64_t spin_max;
    size_t cap;
    struct slot *slots;
    struct group *groups;
    struct done_rec *done_buf;

    pthread_mutex_t lock;
    pthread_cond_t work_cv; /* the writer waits for work */
    pthread_cond_t room_cv; /* blocked senders wait for room */
    pthread_cond_t done_cv; /* sync senders, flush and close wait for completions */
    /* Under lock. */
    uint64_t q_alloc, q_free;                /* slot counters */
    uint64_t g_alloc, g_done, g_delivered;   /* group counters */
    uint64_t cnt_next, cnt_step;
    int broken;                               /* sticky transport error, 0 if none */
    bool stopping, writer_idle;
    unsigned room_waiters, done_waiters, callers;
    struct spc_stream_memory *mem; /* registrations */
    size_t room_need; /* free slots at which blocked senders are woken */

    /* Writer-private. */
    uint64_t w_group;   /* oldest group with packets left to produce */
    uint64_t w_seen;    /* g_alloc as last read */
    uint64_t w_done;    /* = g_done */
    struct spci_ratelimit rl;
    bool hw;                    /* the transport paces the stream's rate (svc->set_hw_paced) */
    struct spci_rate_step w_step; /* step of stream-rate heaps: zero when hw, else stream_step */
    uint64_t late_est;  /* estimated oversleep of clock_nanosleep, ns */
    struct batch batches[2];
    unsigned n_batches; /* 1, or 2 for an asynchronous transport */
    unsigned b_next;    /* the batch packed next */
    struct tx *tx;      /* every batch's records: n_batches x BATCH_MAX_PACKETS */
    struct spc_tx_packet *pkts;
    uint8_t *arena;
    size_t arena_size;   /* per batch */
    size_t scratch_size; /* spc_packet_scratch_size(mps): one packet's worst case */
    size_t n_pending;    /* packets of all batches not yet completed */
    bool no_flush; /* the transport's flush is the -SPC_ENOTSUP stub */

    pthread_t thread;
    pthread_mutex_t tx_lock; /* held around transport calls, for spc_bytes_stream_reset */

    bool cq_on;
    pthread_mutex_t cq_lock;
    struct spc_stream_completion *cq;
    size_t cq_cap, cq_head, cq_len;
    int efd;

    _Atomic uint64_t st_heaps, st_packets, st_bytes, st_batches, st_sleeps, st_late, st_late_max,
        st_spin;
};

static inline void stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static bool is_writer(const struct spc_stream *s)
{
    return pthread_equal(pthread_self(), s->thread);
}

static uint64_t now_ns(const struct spc_stream *s)
{
    if (s->clock.now_ns)
        return s->clock.now_ns(s->clock.user);
    return spci_monotonic_ns();
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ================================================================ writer */

static void heap_finished(struct spc_stream *s, struct slot *h)
{
    s->groups[h->group].unfinished--;
    stat_add(&s->st_heaps, 1);
}

/* h belongs to the current group (groups[w_group]); once all its heaps are produced the
 * writer moves past it at once, so retire never frees a group the writer still reads. */
static void set_produced(struct spc_stream *s, struct slot *h)
{
    h->produced = true;
    if (--s->groups[h->group].unproduced == 0)
        s->w_group++;
    if (h->inflight == 0)
        heap_finished(s, h);
}

static void finish_packet(struct spc_stream *s, struct tx *t, int status)
{
    t->pending = false;
    t->batch->pending--;
    s->n_pending--;
    struct slot *h = t->slot;
    h->inflight--;
    if (status < 0) {
        if (h->status == 0)
            h->status = status;
    } else {
        h->bytes += t->pkt.size;
    }
    if (h->produced && h->inflight == 0)
        heap_finished(s, h);
}

/* svc->complete for an asynchronous transport: runs on the thread calling into the
 * transport (the writer, or close after the writer has stopped). */
static void on_transport_complete(void *ctx, void *token, int status)
{
    struct spc_stream *s = ctx;
    struct tx *t = token;
    if (t < s->tx || t >= s->tx + (size_t)s->n_batches * BATCH_MAX_PACKETS || !t->pending) {
        spci_log(SPC_LOG_ERROR, "%s: stale or unknown packet completion dropped",
                 s->tp->plugin->name);
        return;
    }
    finish_packet(s, t, spci_plugin_rc(status));
}

static void set_broken(struct spc_stream *s, int rc)
{
    pthread_mutex_lock(&s->lock);
    if (!s->broken)
        s->broken = rc;
    pthread_mutex_unlock(&s->lock);
}

/* Waits until the transport has completed every pending packet. A transport that cannot
 * deliver them (no working flush or poll) breaks the stream: the packets fail. */
static void drain_inflight(struct spc_stream *s)
{
    if (s->n_pending == 0 && s->no_flush)
        return;
    pthread_mutex_lock(&s->tx_lock);
    int rc = spci_transport_flush(s->tp);
    if (rc == -SPC_ENOTSUP && s->n_pending == 0)
        s->no_flush = true;
    if (rc == -SPC_ENOTSUP) {
        int n = spci_transport_poll_until_done(s->tp, &s->n_pending);
        if (n < 0)
            rc = n;
    }
    pthread_mutex_unlock(&s->tx_lock);
    if (s->n_pending != 0) {
        int err = rc < 0 ? rc : -SPC_EPLUGIN;
        spci_log(SPC_LOG_ERROR, "%s: packets still pending after flush (%s); failing them",
                 s->tp->plugin->name, spc_strerror(err));
        size_t n_tx = (size_t)s->n_batches * BATCH_MAX_PACKETS;
        for (size_t i = 0; i < n_tx; i++)
            if (s->tx[i].pending)
                finish_packet(s, &s->tx[i], err);
        set_broken(s, err);
    }
}

/* Makes batch b free (its packets completed, or failed by a broken transport). */
static void wait_batch(struct spc_stream *s, struct batch *b)
{
    pthread_mutex_lock(&s->tx_lock);
    spci_transport_poll(s->tp);
    pthread_mutex_unlock(&s->tx_lock);
    if (b->pending)
        drain_inflight(s);
}

/* Hands the n packets packed in b (bytes in all) to the transport. */
static void send_batch(struct spc_stream *s, struct batch *b, size_t n, uint64_t bytes)
{
    struct spc_tx_batch tb;
    spci_tx_batch_init(&tb, b->pkts, n);
    /* Counted before the call: an asynchronous transport may complete from inside it. */
    b->pending = n;
    s->n_pending += n;
    pthread_mutex_lock(&s->tx_lock);
    int rc = spci_transport_send(s->tp, &tb);
    pthread_mutex_unlock(&s->tx_lock);
    stat_add(&s->st_batches, 1);
    stat_add(&s->st_packets, n);
    stat_add(&s->st_bytes, bytes);
    if (rc != 0) {
        /* The transport can send nothing more: fail this batch, then everything else. */
        spci_log(SPC_LOG_ERROR, "%s: send failed: %s; failing every queued heap",
                 s->tp->plugin->name, spc_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            struct tx *t = &b->tx[i];
            if (t->pending)
                finish_packet(s, t, rc);
        }
        set_broken(s, rc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct tx *t = &b->tx[i];
        int st = b->pkts[i].status;
        if (!t->pending) /* already completed from inside send */
            continue;
        if (st == SPC_TX_PENDING) {
            if (s->async)
                continue;
            spci_log(SPC_LOG_ERROR, "%s: left a packet pending without the async capability",
                     s->tp->plugin->name);
            st = -SPC_EPLUGIN;
        }
        finish_packet(s, t, spci_plugin_rc(st));
    }
}

/* Sleeps until the limiter's wake time: an absolute-time sleep to the target less a
 * margin, then a spin to the target. The margin is the estimated oversleep of
 * clock_nanosleep, capped by spin_max and by 1/8 of the wait, so the writer never spins
 * for more than about an eighth of its time: measured on a shared 2-core VM, longer spins
 * cost more (the spinning thread is preempted in its next burst) than they gain. */
static void rl_sleep(struct spc_stream *s, spci_fix wake)
{
    uint64_t target = spci_fix_ceil_ns(wake);
    uint64_t now;
    stat_add(&s->st_sleeps, 1);
    if (s->clock.now_ns) {
        s->clock.sleep_until_ns(s->clock.user, target);
        now = now_ns(s);
    } else {
        now = now_ns(s);
        uint64_t margin = s->late_est < s->spin_max ? s->late_est : s->spin_max;
        if (target > now && margin > (target - now) / 8)
            margin = (target - now) / 8;
        if (target > now + margin) {
            uint64_t t1 = target - margin;
            struct timespec ts = {(time_t)(t1 / 1000000000u), (long)(t1 % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
            now = now_ns(s);
            /* Quicker rise than decay: the estimate sits in the upper part of the
             * oversleep distribution; single outliers (preemption) are clipped. */
            uint64_t over = now > t1 ? now - t1 : 0;
            if (over > s->spin_max)
                over = s->spin_max;
            if (over > s->late_est)
                s->late_est += (over - s->late_est) / 4;
            else
                s->late_est -= (s->late_est - over) / 16;
        }
        if (now < target) {
            uint64_t t0 = now;
            if (s->spin_max) {
                while (now < target) {
                    cpu_relax();
                    now = now_ns(s);
                }
            } else {
                struct timespec ts = {(time_t)(target / 1000000000u), (long)(target % 1000000000u)};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                    ;
                now = now_ns(s);
            }
            if (s->spin_max)
                stat_add(&s->st_spin, now - t0);
        }
    }
    uint64_t late = now > target ? now - target : 0;
    stat_add(&s->st_late, late);
    if (late > atomic_load_explicit(&s->st_late_max, memory_order_relaxed))
        atomic_store_explicit(&s->st_late_max, late, memory_order_relaxed);
}

/* The heap the next packet comes from, or NULL when nothing is left to produce. */
static struct slot *next_slot(struct spc_stream *s)
{
    for (;;) {
        if (s->w_group == s->w_seen) {
            pthread_mutex_lock(&s->lock);
            s->w_seen = s->g_alloc;
            pthread_mutex_unlock(&s->lock);
            if (s->w_group == s->w_seen)
                return NULL;
        }
        /* groups[w_group] has unproduced heaps (see set_produced). */
        struct group *g = &s->groups[s->w_group % s->cap];
        struct slot *h = &s->slots[(g->first + g->cursor) % s->cap];
        if (h->produced) {
            g->cursor = (g->cursor + 1) % g->n;
            continue;
        }
        if (!h->started) {
            h->started = true;
            int rc = s->broken ? s->broken : spc_packetizer_init(&h->pz, h->heap, h->cnt, s->mps);
            if (rc < 0) {
                h->status = rc;
                set_produced(s, h);
                continue;
            }
        }
        return h;
    }
}

/* Packs one batch (stopping early where the rate limiter must wait) and sends it. */
static void fill_and_send(struct spc_stream *s)
{
    if (s->hw && !spci_transport_hw_paced(s->tp)) {
        /* The transport withdrew hardware pacing (during its last call): pace from now
         * on, with no deficit for the time it paced. */
        s->hw = false;
        s->w_step = s->stream_step;
        spci_rl_resume(&s->rl, now_ns(s));
    }
    struct batch *b = &s->batches[s->b_next];
    if (b->pending)
        wait_batch(s, b);
    const size_t arena_end = s->arena_size - s->scratch_size;
    size_t n = 0, used = 0;
    uint64_t bytes = 0;
#define ROOM() (n < BATCH_MAX_PACKETS && bytes < BATCH_MAX_BYTES && used <= arena_end)
    while (ROOM()) {
        struct slot *h = next_slot(s);
        if (!h)
            break;
        if (s->broken) {
            if (h->status == 0)
                h->status = s->broken;
            set_produced(s, h);
            continue;
        }
        struct group *g = &s->groups[h->group];
        const struct spci_rate_step *step = h->stream_rate ? &s->w_step : &h->step;
        const bool limited = spci_rate_step_limited(step);
        /* Packets of h while there is room: one for ROUND_ROBIN, else until it ends (so
         * next_slot's ring arithmetic runs once per heap, not per packet). */
        for (;;) {
            if (limited && spci_rl_need_clock(&s->rl)) {
                spci_fix wake;
                if (spci_rl_gate(&s->rl, now_ns(s), &wake)) {
                    if (n > 0)
                        goto full; /* send what is packed; the next call sleeps */
                    rl_sleep(s, wake);
                    continue;
                }
            }
            struct tx *t = &b->tx[n];
            /* The packetizer writes only the scratch that iov[0] then covers. */
            spc_packetizer_next(&h->pz, b->arena + used, &t->pkt);
            used += (t->pkt.iov[0].iov_len + 7) & ~(size_t)7;
            t->slot = h;
            t->pending = true;
            h->inflight++;
            b->pkts[n] = (struct spc_tx_packet){.iov = t->pkt.iov, .n_iov = t->pkt.n_iov,
                                                .substream = h->substream, .size = t->pkt.size,
                                                .token = t, .status = SPC_TX_PENDING};
            n++;
            bytes += t->pkt.size;
            if (limited)
                spci_rl_account(&s->rl, step, t->pkt.size);
            if (g->mode == SPC_GROUP_ROUND_ROBIN)
                g->cursor = (g->cursor + 1) % g->n;
            if (spc_packetizer_done(&h->pz)) {
                set_produced(s, h);
                break;
            }
            if (g->mode == SPC_GROUP_ROUND_ROBIN || !ROOM())
                break;
        }
    }
#undef ROOM
full:
    if (n > 0) {
        send_batch(s, b, n, bytes);
        s->b_next = (s->b_next + 1) % s->n_batches;
    }
}

static void cq_push(struct spc_stream *s, void *user, int status, uint64_t bytes)
{
    pthread_mutex_lock(&s->cq_lock);
    if (s->cq_len == s->cq_cap) {
        /* Grows only while the application lags behind; never in the steady state. */
        size_t ncap = s->cq_cap * 2;
        struct spc_stream_completion *n = malloc(ncap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->cq_lock);
            spci_log(SPC_LOG_ERROR, "completion queue: out of memory; a completion was lost");
            return;
        }
        for (size_t i = 0; i < s->cq_len; i++)
            n[i] = s->cq[(s->cq_head + i) % s->cq_cap];
        free(s->cq);
        s->cq = n;
        s->cq_cap = ncap;
        s->cq_head = 0;
    }
    s->cq[(s->cq_head + s->cq_len) % s->cq_cap] =
        (struct spc_stream_completion){.user = user, .status = status, .bytes = bytes};
    if (s->cq_len++ == 0) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w; /* cannot fail: the counter is 0 or 1 */
    }
    pthread_mutex_unlock(&s->cq_lock);
}

/* Retires finished groups from the front, in order: frees their slots, then delivers
 * their completions outside the lock. */
static void retire(struct spc_stream *s)
{
    size_t k = 0;
    uint64_t slots = 0;
    while (s->w_done + k < s->w_group) {
        struct group *g = &s->groups[(s->w_done + k) % s->cap];
        if (g->unfinished != 0)
            break;
        struct done_rec *d = &s->done_buf[k];
        d->cb = g->cb;
        d->user = g->user;
        d->sync = g->waiter != NULL;
        d->status = 0;
        d->bytes = 0;
        for (size_t i = 0; i < g->n; i++) {
            const struct slot *h = &s->slots[(g->first + i) % s->cap];
            if (d->status == 0)
                d->status = h->status;
            d->bytes += h->bytes;
        }
        slots += g->n;
        k++;
    }
    if (k == 0)
        return;
    pthread_mutex_lock(&s->lock);
    bool woke = false;
    for (size_t i = 0; i < k; i++) {
        struct waiter *w = s->groups[(s->w_done + i) % s->cap].waiter;
        if (w) {
            w->status = s->done_buf[i].status;
            w->bytes = s->done_buf[i].bytes;
            w->done = true;
            woke = true;
        }
    }
    s->q_free += slots;
    s->g_done += k;
    /* Blocked senders are woken once half the queue is free (or all of it, for a group
     * larger than that), not per freed slot: the writer keeps half a queue of work while
     * they refill it, instead of a wake-up per heap. */
    if (s->room_waiters && s->cap - (s->q_alloc - s->q_free) >= s->room_need)
        pthread_cond_broadcast(&s->room_cv);
    if (woke)
        pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
    s->w_done += k;

    for (size_t i = 0; i < k; i++) {
        const struct done_rec *d = &s->done_buf[i];
        if (d->cb)
            d->cb(d->user, d->status, d->bytes);
        else if (s->cq_on && !d->sync)
            cq_push(s, d->user, d->status, d->bytes);
    }
    pthread_mutex_lock(&s->lock);
    s->g_delivered += k;
    if (s->done_waiters)
        pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
}

static void *writer_main(void *arg)
{
    struct spc_stream *s = arg;
    if (!s->clock.now_ns)
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* the default 50 µs slack blurs pacing */
    for (;;) {
        if (s->w_group == s->w_seen) {
            /* The queue was empty at the last look: settle the transport, deliver, wait.
             * Whatever comes next arrives at an idle writer, even if it came while the
             * writer was still settling (a transport flush or a completion callback may
             * take long), so the limiter resumes in either case. */
            drain_inflight(s);
            retire(s);
            pthread_mutex_lock(&s->lock);
            while (s->g_alloc == s->w_group && !s->stopping) {
                s->writer_idle = true;
                pthread_cond_wait(&s->work_cv, &s->lock);
            }
            s->writer_idle = false;
            s->w_seen = s->g_alloc;
            bool stop = s->w_seen == s->w_group;
            pthread_mutex_unlock(&s->lock);
            if (stop)
                break;
            spci_rl_resume(&s->rl, now_ns(s));
        }
        fill_and_send(s);
        retire(s);
    }
    drain_inflight(s);
    retire(s);
    return NULL;
}

/* ================================================================ open and close */

static void stream_free(struct spc_stream *s)
{
    while (s->mem) {
        struct spc_stream_memory *m = s->mem;
        s->mem = m->next;
        int rc = s->tp->caps & SPC_TRANSPORT_CAP_MEMREG
                     ? spci_transport_deregister_memory(s->tp, m->handle) : 0;
        if (rc != 0)
            spci_log(SPC_LOG_WARNING, "%s: deregistering memory at %p at close failed: %s",
                     s->tp->plugin->name, (void *)m->start, spc_strerror(rc));
        free(m);
    }
    if (s->tp)
        spci_transport_close(s->tp);
    if (s->efd >= 0)
        close(s->efd);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->tx_lock);
    pthread_mutex_destroy(&s->cq_lock);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->room_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s->slots);
    free(s->groups);
    free(s->done_buf);
    free(s->tx);
    free(s->pkts);
    free(s->arena);
    free(s->cq);
    free(s);
}

static int alloc_arrays(struct spc_stream *s)
{
    /* max_packet_size <= 16 MiB (config bounds): no overflow below. */
    s->scratch_size = spc_packet_scratch_size(s->cfg.max_packet_size);
    s->arena_size = s->scratch_size + (size_t)BATCH_MAX_PACKETS * BATCH_ARENA_PER_PACKET;
    /* An asynchronous transport holds one batch while the next is packed. */
    s->n_batches = s->async ? 2 : 1;
    size_t n_tx = (size_t)s->n_batches * BATCH_MAX_PACKETS;
    if (s->cap > SIZE_MAX / sizeof(struct slot))
        return -ENOMEM;
    s->slots = calloc(s->cap, sizeof *s->slots);
    s->groups = calloc(s->cap, sizeof *s->groups);
    s->done_buf = calloc(s->cap, sizeof *s->done_buf);
    s->tx = calloc(n_tx, sizeof *s->tx);
    s->pkts = calloc(n_tx, sizeof *s->pkts);
    s->arena = malloc(s->n_batches * s->arena_size);
    if (!s->slots || !s->groups || !s->done_buf || !s->tx || !s->pkts || !s->arena)
        return -ENOMEM;
    for (unsigned k = 0; k < s->n_batches; k++) {
        struct batch *b = &s->batches[k];
        b->tx = s->tx + (size_t)k * BATCH_MAX_PACKETS;
        b->pkts = s->pkts + (size_t)k * BATCH_MAX_PACKETS;
        b->arena = s->arena + k * s->arena_size;
        for (size_t i = 0; i < BATCH_MAX_PACKETS; i++)
            b->tx[i].batch = b;
    }
    if (s->cq_on) {
        s->cq_cap = s->cap < 16 ? 16 : s->cap;
        if (!(s->cq = calloc(s->cq_cap, sizeof *s->cq)))
            return -ENOMEM;
    }
    return 0;
}

int spc_stream_open(struct spc_stream **out, const struct spc_config *cfg,
                    const struct spc_stream_options *opts, char *err, size_t errlen)
{
    if (!out || !cfg) {
        spci_errorf(err, errlen, "stream: NULL argument");
        return -EINVAL;
    }
    *out = NULL;
    struct spc_stream_options o = SPC_STREAM_OPTIONS_DEFAULT;
    if (opts && spci_sized_in(&o, opts, sizeof o) < 0) {
        spci_errorf(err, errlen, "stream: options.struct_size %u is too small", (unsigned)opts->struct_size);
        return -EINVAL;
    }
    if (o.cpu < -1 || o.cpu >= CPU_SETSIZE) {
        spci_errorf(err, errlen, "stream: cpu %d is not -1 or a CPU number below %d", o.cpu, CPU_SETSIZE);
        return -EINVAL;
    }
    if (o.clock && (!o.clock->now_ns || !o.clock->sleep_until_ns)) {
        spci_errorf(err, errlen, "stream: a clock needs both now_ns and sleep_until_ns");
        return -EINVAL;
    }
    const struct spc_stream_config *sc = spc_config_stream(cfg);
    int rc = spc_stream_config_check(sc, err, errlen);
    if (rc < 0)
        return rc;

    struct spc_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->efd = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->tx_lock, NULL);
    pthread_mutex_init(&s->cq_lock, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->room_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->cfg = *sc;
    s->mps = sc->max_packet_size & ~(size_t)7;
    s->cnt_mask = spc_flavour_max_value(&sc->flavour);
    s->cnt_next = 1;
    s->cnt_step = 1;
    s->cap = sc->max_heaps;
    s->cq_on = o.completion_queue;
    s->spin_max = o.spin_max_ns;
    s->late_est = o.spin_max_ns / 4;
    if (o.clock)
        s->clock = *o.clock;

    rc = spci_transport_open(&s->tp, cfg, on_transport_complete, s, err, errlen);
    if (rc < 0) {
        s->tp = NULL;
        stream_free(s);
        return rc;
    }
    s->n_sub = s->tp->n_substreams;
    s->async = (s->tp->caps & SPC_TRANSPORT_CAP_ASYNC) != 0;
    /* Hardware pacing only where asked for and the transport reported at open that it
     * paces (it may withdraw that later: see fill_and_send). */
    bool want_hw = sc->rate_method == SPC_RATE_METHOD_HW && sc->rate > 0;
    s->hw = want_hw && spci_transport_hw_paced(s->tp);
    if (want_hw && !s->hw)
        spci_log(SPC_LOG_WARNING, "%s cannot pace this stream in hardware; using the software "
                 "rate limiter", s->tp->plugin->name);
    rc = spci_rate_step(sc->rate, sc->burst_rate_ratio, &s->stream_step);
    if (!s->hw)
        s->w_step = s->stream_step;
    if (rc == 0)
        rc = alloc_arrays(s);
    if (rc == 0 && s->cq_on) {
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0)
            rc = -errno;
    }
    if (rc < 0) {
        spci_errorf(err, errlen, "stream: %s", spc_strerror(rc));
        stream_free(s);
        return rc;
    }
    spci_rl_init(&s->rl, sc->burst_size, now_ns(s));

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    }
    /* The writer takes no signals: they go to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&s->thread, &attr, writer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc < 0) {
        if (o.cpu >= 0 && rc == -EINVAL)
            spci_errorf(err, errlen, "stream: cannot run the writer thread on cpu %d", o.cpu);
        else
            spci_errorf(err, errlen, "stream: cannot start the writer thread: %s", strerror(-rc));
        stream_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int spc_stream_open_json(struct spc_stream **out, const char *json,
                         const struct spc_stream_options *opts, char *err, size_t errlen)
{
    if (!out || !json) {
        spci_errorf(err, errlen, "stream: NULL argument");
        return -EINVAL;
    }
    struct spc_config *cfg;
    int rc = spc_config_parse(&cfg, json, err, errlen);
    if (rc < 0)
        return rc;
    rc = spc_stream_open(out, cfg, opts, err, errlen);
    spc_config_destroy(cfg);
    return rc;
}

void spc_stream_close(struct spc_stream *s)
{
    if (!s)
        return;
    if (is_writer(s)) {
        spci_log(SPC_LOG_ERROR, "spc_stream_close called from a completion callback: ignored");
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->room_cv);
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    /* Let threads still inside a blocking call see the outcome and leave. */
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->done_cv);
    while (s->callers > 0)
        pthread_cond_wait(&s->done_cv, &s->lock);
    pthread_mutex_unlock(&s->lock);
    stream_free(s);
}

/* ================================================================ queries */

const struct spc_stream_config *spc_stream_get_config(const struct spc_stream *s)
{
    return &s->cfg;
}

unsigned spc_stream_n_substreams(const struct spc_stream *s)
{
    return s->n_sub;
}

int spc_stream_set_cnt_sequence(struct spc_stream *s, uint64_t next, uint64_t step)
{
    if (!s || (step & s->cnt_mask) == 0)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->cnt_next = next;
    s->cnt_step = step;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

size_t spc_stream_last_error(struct spc_stream *s, char *err, size_t errlen)
{
    if (!s)
        return spci_copy_error("", err, errlen);
    return spci_transport_error(s->tp, err, errlen);
}

void spc_stream_get_stats(const struct spc_stream *s, struct spc_stream_stats *out)
{
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    struct spc_stream *m = (struct spc_stream *)s; /* atomics are read-only here */
    st.heaps = atomic_load_explicit(&m->st_heaps, memory_order_relaxed);
    st.packets = atomic_load_explicit(&m->st_packets, memory_order_relaxed);
    st.bytes = atomic_load_explicit(&m->st_bytes, memory_order_relaxed);
    st.batches = atomic_load_explicit(&m->st_batches, memory_order_relaxed);
    st.sleeps = atomic_load_explicit(&m->st_sleeps, memory_order_relaxed);
    st.sleep_late_ns = atomic_load_explicit(&m->st_late, memory_order_relaxed);
    st.sleep_late_max_ns = atomic_load_explicit(&m->st_late_max, memory_order_relaxed);
    st.spin_ns = atomic_load_explicit(&m->st_spin, memory_order_relaxed);
    spci_sized_out(out, &st, sizeof st);
}

/* ================================================================ sending */

static int check_ref(const struct spc_stream *s, const struct spc_heap_ref *r)
{
    if (!r || !r->heap || isnan(r->rate) || isinf(r->rate))
        return -EINVAL;
    const struct spc_flavour *f = spc_heap_flavour(r->heap);
    if (f->heap_address_bits != s->cfg.flavour.heap_address_bits ||
        f->bug_compat != s->cfg.flavour.bug_compat)
        return -SPC_EFLAVOUR;
    if (r->substream >= s->n_sub)
        return -SPC_ESUBSTREAM;
    if (r->cnt != SPC_CNT_AUTO && r->cnt > s->cnt_mask)
        return -SPC_EHEAP_CNT;
    return spc_heap_validate(r->heap, r->cnt == SPC_CNT_AUTO ? 0 : r->cnt, s->mps);
}

/* The pacing of a heap sent at rate (negative = the stream's). */
static void ref_step(const struct spc_stream *s, double rate, bool *stream_rate,
                     struct spci_rate_step *out)
{
    *stream_rate = rate < 0;
    if (rate < 0)
        *out = (struct spci_rate_step){0}; /* unused: the writer's w_step applies */
    else
        spci_rate_step(rate, s->cfg.burst_rate_ratio, out); /* rate finite: cannot fail */
}

/* Where a group's heaps come from: caller references (checked, converted under the
 * lock) or prepared list entries. */
struct source {
    const struct spc_heap_ref *refs;
    const struct prep *preps;
};

/* Queues a group of n checked heaps, all or nothing. */
static int publish(struct spc_stream *s, const struct source *src, size_t n,
                   enum spc_group_mode mode, spc_send_callback cb, void *user, struct waiter *w)
{
    if (n > s->cap)
        return -SPC_EQUEUE_FULL;
    bool writer = is_writer(s);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->stopping) {
            rc = -SPC_ESTOPPED;
            break;
        }
        if (s->broken) {
            rc = s->broken;
            break;
        }
        if (s->cap - (s->q_alloc - s->q_free) >= n)
            break;
        if (s->cfg.on_full == SPC_ON_FULL_FAIL || writer) {
            rc = -SPC_EQUEUE_FULL;
            break;
        }
        /* Wake-up threshold: half the queue, or n if more (every waiter's n <= cap). */
        size_t need = n > (s->cap + 1) / 2 ? n : (s->cap + 1) / 2;
        if (s->room_waiters == 0 || need > s->room_need)
            s->room_need = need;
        s->room_waiters++;
        s->callers++;
        pthread_cond_wait(&s->room_cv, &s->lock);
        s->room_waiters--;
        s->callers--;
        if (s->stopping && s->callers == 0)
            pthread_cond_broadcast(&s->done_cv);
    }
    if (rc < 0) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    size_t gi = (size_t)(s->g_alloc % s->cap);
    struct group *g = &s->groups[gi];
    g->first = s->q_alloc;
    g->n = n;
    g->mode = mode;
    g->cb = cb;
    g->user = user;
    g->waiter = w;
    g->cursor = 0;
    g->unproduced = n;
    g->unfinished = n;
    for (size_t i = 0; i < n; i++) {
        struct slot *h = &s->slots[(s->q_alloc + i) % s->cap];
        uint64_t cnt;
        if (src->preps) {
            const struct prep *p = &src->preps[i];
            h->heap = p->heap;
            cnt = p->cnt;
            h->substream = p->substream;
            h->stream_rate = p->stream_rate;
            h->step = p->step;
        } else {
            const struct spc_heap_ref *r = &src->refs[i];
            h->heap = r->heap;
            cnt = r->cnt;
            h->substream = r->substream;
            ref_step(s, r->rate, &h->stream_rate, &h->step);
        }
        if (cnt == SPC_CNT_AUTO) {
            cnt = s->cnt_next & s->cnt_mask;
            s->cnt_next += s->cnt_step;
        }
        h->cnt = cnt;
        h->group = gi;
        h->started = false;
        h->produced = false;
        h->inflight = 0;
        h->status = 0;
        h->bytes = 0;
    }
    s->q_alloc += n;
    s->g_alloc++;
    if (s->writer_idle)
        pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int wait_sync(struct spc_stream *s, struct waiter *w, uint64_t *bytes)
{
    pthread_mutex_lock(&s->lock);
    s->callers++;
    s->done_waiters++;
    while (!w->done)
        pthread_cond_wait(&s->done_cv, &s->lock);
    s->done_waiters--;
    s->callers--;
    if (s->stopping && s->callers == 0)
        pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
    if (bytes)
        *bytes = w->bytes;
    return w->status;
}

static int send_refs(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                     enum spc_group_mode mode, spc_send_callback cb, void *user, struct waiter *w)
{
    if (!s || !refs || n == 0 || (mode != SPC_GROUP_SERIAL && mode != SPC_GROUP_ROUND_ROBIN))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_ref(s, &refs[i]);
        if (rc < 0)
            return rc;
    }
    struct source src = {.refs = refs};
    return publish(s, &src, n, mode, cb, user, w);
}

int spc_stream_send(struct spc_stream *s, const struct spc_heap_ref *ref, spc_send_callback cb,
                    void *user)
{
    return send_refs(s, ref, 1, SPC_GROUP_SERIAL, cb, user, NULL);
}

int spc_stream_send_heap(struct spc_stream *s, const struct spc_heap *heap, spc_send_callback cb,
                         void *user)
{
    struct spc_heap_ref ref = SPC_HEAP_REF(heap);
    return send_refs(s, &ref, 1, SPC_GROUP_SERIAL, cb, user, NULL);
}

int spc_stream_send_heaps(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                          enum spc_group_mode mode, spc_send_callback cb, void *user)
{
    return send_refs(s, refs, n, mode, cb, user, NULL);
}

int spc_stream_send_sync(struct spc_stream *s, const struct spc_heap_ref *ref, uint64_t *bytes)
{
    return spc_stream_send_heaps_sync(s, ref, 1, SPC_GROUP_SERIAL, bytes);
}

int spc_stream_send_heaps_sync(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                               enum spc_group_mode mode, uint64_t *bytes)
{
    if (s && is_writer(s))
        return -EDEADLK;
    struct waiter w = {0};
    int rc = send_refs(s, refs, n, mode, NULL, NULL, &w);
    if (rc < 0)
        return rc;
    return wait_sync(s, &w, bytes);
}

int spc_stream_flush(struct spc_stream *s)
{
    if (!s)
        return -EINVAL;
    if (is_writer(s))
        return -EDEADLK;
    pthread_mutex_lock(&s->lock);
    uint64_t target = s->g_alloc;
    s->callers++;
    s->done_waiters++;
    while (s->g_delivered < target)
        pthread_cond_wait(&s->done_cv, &s->lock);
    s->done_waiters--;
    s->callers--;
    if (s->stopping && s->callers == 0)
        pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ================================================================ heap lists */

int spc_heap_list_create(struct spc_heap_list **out, struct spc_stream *s,
                         const struct spc_heap_ref *refs, size_t n)
{
    if (!out || !s || !refs || n == 0)
        return -EINVAL;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_ref(s, &refs[i]);
        if (rc < 0)
            return rc;
    }
    if (n > (SIZE_MAX - sizeof(struct spc_heap_list)) / sizeof(struct prep))
        return -ENOMEM;
    struct spc_heap_list *l = malloc(sizeof *l + n * sizeof l->e[0]);
    if (!l)
        return -ENOMEM;
    l->stream = s;
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        const struct spc_heap_ref *r = &refs[i];
        struct prep *p = &l->e[i];
        p->heap = r->heap;
        p->cnt = r->cnt;
        p->substream = r->substream;
        ref_step(s, r->rate, &p->stream_rate, &p->step);
        p->n_items = spc_heap_n_items(r->heap);
        p->payload = spc_heap_payload_size(r->heap);
        p->repeat = spc_heap_repeat_pointers(r->heap);
    }
    *out = l;
    return 0;
}

void spc_heap_list_destroy(struct spc_heap_list *list)
{
    free(list);
}

size_t spc_heap_list_size(const struct spc_heap_list *list)
{
    return list ? list->n : 0;
}

static int list_check(const struct spc_stream *s, const struct spc_heap_list *l, size_t first,
                      size_t count, enum spc_group_mode mode)
{
    if (!s || !l || l->stream != s || count == 0 || first > l->n || count > l->n - first ||
        (mode != SPC_GROUP_SERIAL && mode != SPC_GROUP_ROUND_ROBIN))
        return -EINVAL;
    for (size_t i = first; i < first + count; i++) {
        const struct prep *p = &l->e[i];
        if (spc_heap_n_items(p->heap) != p->n_items ||
            spc_heap_payload_size(p->heap) != p->payload ||
            spc_heap_repeat_pointers(p->heap) != p->repeat)
            return -EINVAL;
    }
    return 0;
}

int spc_stream_send_list(struct spc_stream *s, const struct spc_heap_list *list, size_t first,
                         size_t count, enum spc_group_mode mode, spc_send_callback cb,
                         void *user)
{
    int rc = list_check(s, list, first, count, mode);
    if (rc < 0)
        return rc;
    struct source src = {.preps = &list->e[first]};
    return publish(s, &src, count, mode, cb, user, NULL);
}

int spc_stream_send_list_sync(struct spc_stream *s, const struct spc_heap_list *list,
                              size_t first, size_t count, enum spc_group_mode mode,
                              uint64_t *bytes)
{
    int rc = list_check(s, list, first, count, mode);
    if (rc < 0)
        return rc;
    if (is_writer(s))
        return -EDEADLK;
    struct waiter w = {0};
    struct source src = {.preps = &list->e[first]};
    rc = publish(s, &src, count, mode, NULL, NULL, &w);
    if (rc < 0)
        return rc;
    return wait_sync(s, &w, bytes);
}

/* ================================================================ completion queue */

int spc_stream_completion_fd(struct spc_stream *s)
{
    if (!s)
        return -EINVAL;
    return s->cq_on ? s->efd : -SPC_ENOTSUP;
}

int spc_stream_drain(struct spc_stream *s, struct spc_stream_completion *out, size_t max)
{
    if (!s || (!out && max))
        return -EINVAL;
    if (!s->cq_on)
        return -SPC_ENOTSUP;
    if (max > INT32_MAX)
        max = INT32_MAX;
    pthread_mutex_lock(&s->cq_lock);
    size_t m = s->cq_len < max ? s->cq_len : max;
    for (size_t i = 0; i < m; i++)
        out[i] = s->cq[(s->cq_head + i) % s->cq_cap];
    s->cq_head = (s->cq_head + m) % s->cq_cap;
    s->cq_len -= m;
    if (m > 0 && s->cq_len == 0) {
        uint64_t v;
        ssize_t r = read(s->efd, &v, sizeof v);
        (void)r; /* resets the counter; the fd stays readable only while entries wait */
    }
    pthread_mutex_unlock(&s->cq_lock);
    return (int)m;
}

/* ================================================================ registered memory */

int spc_stream_register_memory(struct spc_stream *s, void *addr, size_t len,
                               struct spc_stream_memory **out)
{
    if (!s || !addr || !len || !out || (uintptr_t)addr > UINTPTR_MAX - len)
        return -EINVAL;
    struct spc_stream_memory *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->start = (uintptr_t)addr;
    m->end = m->start + len;
    if (s->tp->caps & SPC_TRANSPORT_CAP_MEMREG) {
        pthread_mutex_lock(&s->tx_lock);
        int rc = spci_transport_register_memory(s->tp, addr, len, &m->handle);
        pthread_mutex_unlock(&s->tx_lock);
        if (rc != 0) {
            free(m);
            return rc;
        }
    }
    pthread_mutex_lock(&s->lock);
    m->next = s->mem;
    s->mem = m;
    pthread_mutex_unlock(&s->lock);
    *out = m;
    return 0;
}

/* An accepted heap that has not completed and references memory in m, or NULL. Under
 * lock: the slots in [q_free, q_alloc) and their heaps do not change while it is held. */
static const struct slot *memory_user(const struct spc_stream *s, const struct spc_stream_memory *m)
{
    for (uint64_t q = s->q_free; q != s->q_alloc; q++) {
        const struct slot *h = &s->slots[q % s->cap];
        const struct spc_heap *heap = h->heap;
        for (size_t i = 0; i < heap->n_items; i++) {
            const struct spci_item *it = &heap->items[i];
            uintptr_t a = (uintptr_t)it->data;
            if (it->data && it->len && a < m->end && a + it->len > m->start)
                return h;
        }
    }
    return NULL;
}

int spc_stream_deregister_memory(struct spc_stream *s, struct spc_stream_memory *mem)
{
    if (!s || !mem)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    struct spc_stream_memory **pp = &s->mem;
    while (*pp && *pp != mem)
        pp = &(*pp)->next;
    if (!*pp) {
        pthread_mutex_unlock(&s->lock);
        return -EINVAL;
    }
    const struct slot *user = memory_user(s, mem);
    if (user) {
        /* cnt is set by the sender that queued the slot, under lock. */
        spci_transport_set_error(s->tp, "memory at %p (%zu bytes) is still referenced by heap "
                                 "cnt %llu, not yet completed: deregister it after the "
                                 "heaps using it have completed",
                                 (void *)mem->start, (size_t)(mem->end - mem->start),
                                 (unsigned long long)user->cnt);
        pthread_mutex_unlock(&s->lock);
        return -EBUSY;
    }
    int rc = 0;
    if (s->tp->caps & SPC_TRANSPORT_CAP_MEMREG) {
        /* Under lock too: no heap using the range can be queued until it is gone. */
        pthread_mutex_lock(&s->tx_lock);
        rc = spci_transport_deregister_memory(s->tp, mem->handle);
        pthread_mutex_unlock(&s->tx_lock);
    }
    if (rc == 0)
        *pp = mem->next;
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        free(mem);
    return rc;
}

/* ================================================================ bytes transport */

int spc_bytes_stream_data(struct spc_stream *s, const uint8_t **data, size_t *len)
{
    if (!s || !data || !len)
        return -EINVAL;
    pthread_mutex_lock(&s->tx_lock);
    int rc = spci_bytes_data(s->tp->obj, data, len);
    pthread_mutex_unlock(&s->tx_lock);
    return rc;
}

int spc_bytes_stream_reset(struct spc_stream *s)
{
    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&s->tx_lock);
    int rc = spci_bytes_reset(s->tp->obj);
    pthread_mutex_unlock(&s->tx_lock);
    return rc;
}
