/* The writer threads of a send stream: each takes packets from its share of the queued
 * groups, packs them into batches, paces them, hands them to its transport object; any
 * of them retires finished groups in order (see stream_state.h for the queue, batch,
 * rate and lock rules). */
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#include "heap_layout.h"
#include "heap_memory.h"
#include "log_internal.h"
#include "stream_cq.h"
#include "stream_writer.h"

_Thread_local const struct spc_stream *spci_stream_current_writer;

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
    if (h->pz.in_place)
        spci_layout_release(h->layout);
    atomic_fetch_sub_explicit(&s->groups[h->group].unfinished, 1, memory_order_release);
    spci_stat_add(&s->st_heaps, 1);
}

/* h belongs to the writer's current share (wg[w_group]); once all its heaps are produced
 * the writer moves past it at once. */
static void set_produced(struct writer *w, struct slot *h)
{
    h->produced = true;
    if (--w->wg[w->w_group % w->s->cap].unproduced == 0)
        w->w_group++;
    if (h->inflight == 0)
        heap_finished(w->s, h);
}

static void finish_packet(struct writer *w, struct tx *t, int status)
{
    t->pending = false;
    t->batch->pending--;
    w->n_pending--;
    struct slot *h = t->slot;
    h->inflight--;
    if (status < 0) {
        if (h->status == 0)
            h->status = status;
    } else {
        h->bytes += t->pkt.size;
    }
    if (h->produced && h->inflight == 0)
        heap_finished(w->s, h);
}

/* svc->complete for an asynchronous transport: runs on the thread calling into the
 * writer's transport object (the writer, or close after the writer has stopped). */
void spci_stream_on_transport_complete(void *ctx, void *token, int status)
{
    struct writer *w = ctx;
    struct tx *t = token;
    if (t < w->tx || t >= w->tx + (size_t)w->n_batches * BATCH_MAX_PACKETS || !t->pending) {
        spci_log(SPC_LOG_ERROR, "%s: stale or unknown packet completion dropped",
                 w->tp->plugin->name);
        return;
    }
    finish_packet(w, t, spci_plugin_rc(status));
}

static void set_broken(struct spc_stream *s, int rc)
{
    int zero = 0;
    atomic_compare_exchange_strong(&s->broken, &zero, rc);
}

/* Waits until the transport has completed every pending packet. A transport that cannot
 * deliver them (no working flush or poll) breaks the stream: the packets fail. */
static void drain_inflight(struct writer *w)
{
    if (w->n_pending == 0 && w->no_flush)
        return;
    pthread_mutex_lock(&w->tx_lock);
    int rc = spci_transport_flush(w->tp);
    if (rc == -SPC_ENOTSUP && w->n_pending == 0)
        w->no_flush = true;
    if (rc == -SPC_ENOTSUP) {
        int n = spci_transport_poll_until_done(w->tp, &w->n_pending);
        if (n < 0)
            rc = n;
    }
    pthread_mutex_unlock(&w->tx_lock);
    if (w->n_pending != 0) {
        int err = rc < 0 ? rc : -SPC_EPLUGIN;
        spci_log(SPC_LOG_ERROR, "%s: packets still pending after flush (%s); failing them",
                 w->tp->plugin->name, spc_strerror(err));
        size_t n_tx = (size_t)w->n_batches * BATCH_MAX_PACKETS;
        for (size_t i = 0; i < n_tx; i++)
            if (w->tx[i].pending)
                finish_packet(w, &w->tx[i], err);
        set_broken(w->s, err);
    }
}

/* Makes batch b free (its packets completed, or failed by a broken transport). */
static void wait_batch(struct writer *w, struct batch *b)
{
    pthread_mutex_lock(&w->tx_lock);
    spci_transport_poll(w->tp);
    pthread_mutex_unlock(&w->tx_lock);
    if (b->pending)
        drain_inflight(w);
}

/* Hands the n packets packed in b (bytes in all) to the transport. */
static void send_batch(struct writer *w, struct batch *b, size_t n, uint64_t bytes)
{
    struct spc_stream *s = w->s;
    struct spc_tx_batch tb;
    spci_tx_batch_init(&tb, b->pkts, n);
    /* Counted before the call: an asynchronous transport may complete from inside it. */
    b->pending = n;
    w->n_pending += n;
    pthread_mutex_lock(&w->tx_lock);
    int rc = spci_transport_send(w->tp, &tb);
    pthread_mutex_unlock(&w->tx_lock);
    spci_stat_add(&s->st_batches, 1);
    spci_stat_add(&s->st_packets, n);
    spci_stat_add(&s->st_bytes, bytes);
    if (rc != 0) {
        /* The transport can send nothing more: fail this batch, then everything else. */
        spci_log(SPC_LOG_ERROR, "%s: send failed: %s; failing every queued heap",
                 w->tp->plugin->name, spc_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            struct tx *t = &b->tx[i];
            if (t->pending)
                finish_packet(w, t, rc);
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
                     w->tp->plugin->name);
            st = -SPC_EPLUGIN;
        }
        finish_packet(w, t, spci_plugin_rc(st));
    }
}

/* Sleeps until the limiter's wake time: an absolute-time sleep to the target less a
 * margin, then a spin to the target. The margin is the estimated oversleep of
 * clock_nanosleep, capped by spin_max and by 1/8 of the wait, so the writer never spins
 * for more than about an eighth of its time: measured on a shared 2-core VM, longer spins
 * cost more (the spinning thread is preempted in its next burst) than they gain. */
static void rl_sleep(struct writer *w, spci_fix wake)
{
    struct spc_stream *s = w->s;
    uint64_t target = spci_fix_ceil_ns(wake);
    uint64_t now;
    spci_stat_add(&s->st_sleeps, 1);
    if (s->clock.now_ns) {
        s->clock.sleep_until_ns(s->clock.user, target);
        now = spci_stream_now_ns(s);
    } else {
        now = spci_stream_now_ns(s);
        uint64_t margin = w->late_est < s->spin_max ? w->late_est : s->spin_max;
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
            if (over > w->late_est)
                w->late_est += (over - w->late_est) / 4;
            else
                w->late_est -= (w->late_est - over) / 16;
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

/* Whether the next packet must wait (1, *wake set) or may go (0). With one writer its
 * limiter is the stream's; with several, its full burst is merged into the shared one,
 * which decides for all of them. */
static int rate_gate(struct writer *w, spci_fix *wake)
{
    struct spc_stream *s = w->s;
    if (s->n_writers == 1)
        return spci_rl_gate(&w->rl, spci_stream_now_ns(s), wake);
    pthread_mutex_lock(&s->rl_lock);
    spci_rl_merge(&s->rl, &w->rl);
    int rc = spci_rl_gate(&s->rl, spci_stream_now_ns(s), wake);
    pthread_mutex_unlock(&s->rl_lock);
    w->rl.must_sleep = rc != 0; /* ask again (the shared limiter) before the next packet */
    return rc;
}

/* The heap the next packet comes from, or NULL when nothing is left to produce. */
static struct slot *next_slot(struct writer *w)
{
    struct spc_stream *s = w->s;
    for (;;) {
        if (w->w_group == w->w_seen) {
            w->w_seen = atomic_load_explicit(&w->wg_alloc, memory_order_acquire);
            if (w->w_group == w->w_seen)
                return NULL;
        }
        /* wg[w_group] has unproduced heaps (see set_produced). */
        struct wgroup *g = &w->wg[w->w_group % s->cap];
        struct slot *h = w->wq[(g->first + g->cursor) % s->cap];
        if (h->produced) {
            g->cursor = (g->cursor + 1) % g->n;
            continue;
        }
        if (!h->started) {
            h->started = true;
            h->pz.in_place = false;
            h->layout = NULL;
            int rc = atomic_load_explicit(&s->broken, memory_order_relaxed);
            if (rc == 0)
                rc = spc_packetizer_init(&h->pz, h->heap, h->cnt, s->mps);
            if (rc == 0)
                h->layout = spci_heap_layout_for(h->heap, s->mps);
            if (rc < 0) {
                h->status = rc;
                set_produced(w, h);
                continue;
            }
        }
        return h;
    }
}

/* Packs one batch (stopping early where the rate limiter must wait) and sends it. */
static void fill_and_send(struct writer *w)
{
    struct spc_stream *s = w->s;
    if (w->hw && !spci_transport_hw_paced(w->tp)) {
        /* The transport withdrew hardware pacing (during its last call): pace from now
         * on, with no deficit for the time it paced. */
        w->hw = false;
        w->w_step = s->stream_step;
        spci_rl_resume(&w->rl, spci_stream_now_ns(s));
    }
    struct batch *b = &w->batches[w->b_next];
    if (b->pending)
        wait_batch(w, b);
    const size_t arena_end = s->arena_size - s->scratch_size;
    size_t n = 0, used = 0, in_place = 0;
    uint64_t bytes = 0;
#define ROOM() (n < BATCH_MAX_PACKETS && bytes < BATCH_MAX_BYTES && used <= arena_end)
    while (ROOM()) {
        struct slot *h = next_slot(w);
        if (!h)
            break;
        int broken = atomic_load_explicit(&s->broken, memory_order_relaxed);
        if (broken) {
            if (h->status == 0)
                h->status = broken;
            set_produced(w, h);
            continue;
        }
        struct wgroup *g = &w->wg[w->w_group % s->cap];
        const struct spci_rate_step *step = h->stream_rate ? &w->w_step : &h->step;
        const bool limited = spci_rate_step_limited(step);
        /* Packets of h while there is room: one for ROUND_ROBIN, else until it ends (so
         * next_slot's ring arithmetic runs once per heap, not per packet). */
        for (;;) {
            if (limited && spci_rl_need_clock(&w->rl)) {
                spci_fix wake;
                if (rate_gate(w, &wake)) {
                    if (n > 0)
                        goto full; /* send what is packed; the next call sleeps */
                    rl_sleep(w, wake);
                    continue;
                }
            }
            struct tx *t = &b->tx[n];
            if (h->layout && !h->pz.in_place)
                h->pz.in_place = spci_layout_try_claim(h->layout);
            /* The packetizer writes only the scratch that iov[0] then covers, or nothing
             * of it for a packet that goes out in place. */
            spc_packetizer_next(&h->pz, b->arena + used, &t->pkt);
            if (t->pkt.iov[0].iov_base == b->arena + used)
                used += (t->pkt.iov[0].iov_len + 7) & ~(size_t)7;
            else
                in_place++;
            t->slot = h;
            t->pending = true;
            h->inflight++;
            b->pkts[n] = (struct spc_tx_packet){.iov = t->pkt.iov, .n_iov = t->pkt.n_iov,
                                                .substream = h->substream, .size = t->pkt.size,
                                                .token = t, .status = SPC_TX_PENDING};
            n++;
            bytes += t->pkt.size;
            if (limited)
                spci_rl_account(&w->rl, step, t->pkt.size);
            if (g->mode == SPC_GROUP_ROUND_ROBIN)
                g->cursor = (g->cursor + 1) % g->n;
            if (spc_packetizer_done(&h->pz)) {
                set_produced(w, h);
                break;
            }
            if (g->mode == SPC_GROUP_ROUND_ROBIN || !ROOM())
                break;
        }
    }
#undef ROOM
full:
    if (in_place)
        spci_stat_add(&s->st_in_place, in_place);
    if (n > 0) {
        send_batch(w, b, n, bytes);
        w->b_next = (w->b_next + 1) % w->n_batches;
    }
}

/* Retires the finished groups at the front, in order: frees their slots, then delivers
 * their completions outside the lock. Under retire_lock. Returns whether it retired any. */
static bool retire_locked(struct spc_stream *s)
{
    size_t k = 0;
    uint64_t slots = 0;
    const uint64_t alloc = atomic_load_explicit(&s->g_alloc, memory_order_acquire);
    while (s->w_done + k < alloc) {
        struct group *g = &s->groups[(s->w_done + k) % s->cap];
        if (atomic_load_explicit(&g->unfinished, memory_order_acquire) != 0)
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
        return false;
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
    bool room = s->room_waiters && s->cap - (s->q_alloc - s->q_free) >= s->room_need;
    pthread_mutex_unlock(&s->lock);
    /* After unlocking (the woken do not block on the lock at once): a waiter tests its
     * condition under the lock before it waits, so it cannot miss these. */
    if (room)
        pthread_cond_broadcast(&s->room_cv);
    if (woke)
        pthread_cond_broadcast(&s->done_cv);
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
    return true;
}

/* Retires what is finished. Whoever holds retire_lock retires; a writer that finds it
 * held leaves retire_again set, which the holder checks before and after letting go, so
 * no finished group is left waiting. */
static void retire(struct spc_stream *s)
{
    atomic_store(&s->retire_again, true);
    while (atomic_load(&s->retire_again)) {
        if (pthread_mutex_trylock(&s->retire_lock) != 0)
            return;
        while (atomic_exchange(&s->retire_again, false))
            while (retire_locked(s))
                ;
        pthread_mutex_unlock(&s->retire_lock);
    }
}

void *spci_stream_writer_main(void *arg)
{
    struct writer *w = arg;
    struct spc_stream *s = w->s;
    spci_stream_current_writer = s;
    if (!s->clock.now_ns)
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* the default 50 µs slack blurs pacing */
    for (;;) {
        if (w->w_group == w->w_seen) {
            /* The queue was empty at the last look: settle the transport, deliver, wait.
             * Whatever comes next arrives at an idle writer, even if it came while the
             * writer was still settling (a transport flush or a completion callback may
             * take long), so the limiter resumes in either case (when no other writer
             * keeps the shared schedule going). */
            drain_inflight(w);
            retire(s);
            pthread_mutex_lock(&s->lock);
            if (w->active) {
                w->active = false;
                s->n_active--;
            }
            while (atomic_load_explicit(&w->wg_alloc, memory_order_relaxed) == w->w_group &&
                   !s->stopping) {
                w->idle = true;
                pthread_cond_wait(&w->work_cv, &s->lock);
                spci_stat_add(&s->st_wakeups, 1);
            }
            w->idle = false;
            w->w_seen = atomic_load_explicit(&w->wg_alloc, memory_order_relaxed);
            bool stop = w->w_seen == w->w_group;
            bool resume = !stop && s->n_active++ == 0;
            w->active = !stop;
            pthread_mutex_unlock(&s->lock);
            if (stop)
                break;
            if (resume && s->n_writers == 1) {
                spci_rl_resume(&w->rl, spci_stream_now_ns(s));
            } else if (resume) {
                pthread_mutex_lock(&s->rl_lock);
                spci_rl_resume(&s->rl, spci_stream_now_ns(s));
                pthread_mutex_unlock(&s->rl_lock);
            }
        }
        fill_and_send(w);
        retire(s);
    }
    drain_inflight(w);
    retire(s);
    return NULL;
}

int spci_stream_writer_alloc(struct writer *w)
{
    const struct spc_stream *s = w->s;
    /* An asynchronous transport holds one batch while the next is packed. */
    w->n_batches = s->async ? 2 : 1;
    size_t n_tx = (size_t)w->n_batches * BATCH_MAX_PACKETS;
    w->wq = calloc(s->cap, sizeof *w->wq);
    w->wg = calloc(s->cap, sizeof *w->wg);
    w->tx = calloc(n_tx, sizeof *w->tx);
    w->pkts = calloc(n_tx, sizeof *w->pkts);
    w->arena = malloc(w->n_batches * s->arena_size);
    if (!w->wq || !w->wg || !w->tx || !w->pkts || !w->arena)
        return -ENOMEM;
    for (unsigned k = 0; k < w->n_batches; k++) {
        struct batch *b = &w->batches[k];
        b->tx = w->tx + (size_t)k * BATCH_MAX_PACKETS;
        b->pkts = w->pkts + (size_t)k * BATCH_MAX_PACKETS;
        b->arena = w->arena + k * s->arena_size;
        for (size_t i = 0; i < BATCH_MAX_PACKETS; i++)
            b->tx[i].batch = b;
    }
    return 0;
}

void spci_stream_writer_free(struct writer *w)
{
    free(w->wq);
    free(w->wg);
    free(w->tx);
    free(w->pkts);
    free(w->arena);
}
