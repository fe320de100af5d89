/* The writer thread of a send stream: takes packets from the queued groups, packs them
 * into batches, paces them, hands them to the transport and retires finished groups in
 * order (see stream_internal.h for the queue, batch and lock rules). */
#include <errno.h>
#include <sys/prctl.h>
#include <time.h>

#include "log_internal.h"
#include "stream_internal.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
static void heap_finished(struct spc_stream *s, struct slot *h)
{
    s->groups[h->group].unfinished--;
    spci_stat_add(&s->st_heaps, 1);
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
void spci_stream_on_transport_complete(void *ctx, void *token, int status)
{
    struct spc_stream *s = ctx;
    struct tx *t = token;
    if (t < s->tx || t >= s->tx + (size_t)s->n_batches * BATCH_MAX_PACKETS || !t->pending) {
        spci_log(SPC_LOG_ERROR, "%s: stale or unknown packet completion dropped",
                 s->tp->plugin->name);
        return;
    }
    finish_packet(s, t, status > 0 ? -SPC_EPLUGIN : status);
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
        while (s->n_pending != 0) {
            int n = spci_transport_poll(s->tp);
            if (n < 0) {
                rc = n;
                break;
            }
            if (n == 0 && s->n_pending != 0) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
            }
        }
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
    spci_stat_add(&s->st_batches, 1);
    spci_stat_add(&s->st_packets, n);
    spci_stat_add(&s->st_bytes, bytes);
    if (rc != 0) {
        /* The transport can send nothing more: fail this batch, then everything else. */
        if (rc > 0)
            rc = -SPC_EPLUGIN;
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
        finish_packet(s, t, st > 0 ? -SPC_EPLUGIN : st);
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
    spci_stat_add(&s->st_sleeps, 1);
    if (s->clock.now_ns) {
        s->clock.sleep_until_ns(s->clock.user, target);
        now = spci_stream_now_ns(s);
    } else {
        now = spci_stream_now_ns(s);
        uint64_t margin = s->late_est < s->spin_max ? s->late_est : s->spin_max;
        if (target > now && margin > (target - now) / 8)
            margin = (target - now) / 8;
        if (target > now + margin) {
            uint64_t t1 = target - margin;
            struct timespec ts = {(time_t)(t1 / 1000000000u), (long)(t1 % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
            now = spci_stream_now_ns(s);
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
                    now = spci_stream_now_ns(s);
                }
            } else {
                struct timespec ts = {(time_t)(target / 1000000000u), (long)(target % 1000000000u)};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                    ;
                now = spci_stream_now_ns(s);
            }
            if (s->spin_max)
                spci_stat_add(&s->st_spin, now - t0);
        }
    }
    uint64_t late = now > target ? now - target : 0;
    spci_stat_add(&s->st_late, late);
    if (late > atomic_load_explicit(&s->st_late_max, memory_order_relaxed))
        atomic_store_explicit(&s->st_late_max, late, memory_order_relaxed);
}

/* The heap the next packet comes from, or NULL when nothing is left to produce. */
static struct slot *next_slot(struct spc_stream *s)
{
    for (;;) {
        if (s->w_group == s->w_seen) {
            s->w_seen = atomic_load_explicit(&s->g_alloc, memory_order_acquire);
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
        spci_rl_resume(&s->rl, spci_stream_now_ns(s));
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
                if (spci_rl_gate(&s->rl, spci_stream_now_ns(s), &wake)) {
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

    /* In order; the queued completions between two callbacks go in as one run (one
     * lock, at most one eventfd signal). */
    size_t run = 0;
    for (size_t i = 0; i < k; i++) {
        const struct done_rec *d = &s->done_buf[i];
        if (d->cb) {
            if (s->cq_on)
                spci_stream_cq_push(s, s->done_buf + run, i - run);
            run = i + 1;
            d->cb(d->user, d->status, d->bytes);
        }
    }
    if (s->cq_on)
        spci_stream_cq_push(s, s->done_buf + run, k - run);
    atomic_fetch_add(&s->g_delivered, k);
    if (atomic_load(&s->done_waiters)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->done_cv);
        pthread_mutex_unlock(&s->lock);
    }
}

void *spci_stream_writer_main(void *arg)
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
            while (atomic_load_explicit(&s->g_alloc, memory_order_relaxed) == s->w_group &&
                   !s->stopping) {
                s->writer_idle = true;
                pthread_cond_wait(&s->work_cv, &s->lock);
                spci_stat_add(&s->st_wakeups, 1);
            }
            s->writer_idle = false;
            s->w_seen = atomic_load_explicit(&s->g_alloc, memory_order_relaxed);
            bool stop = s->w_seen == s->w_group;
            pthread_mutex_unlock(&s->lock);
            if (stop)
                break;
            spci_rl_resume(&s->rl, spci_stream_now_ns(s));
        }
        fill_and_send(s);
        retire(s);
    }
    drain_inflight(s);
    retire(s);
    return NULL;
}
