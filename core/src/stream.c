/* Send streams (SPEC §3): open, close, queries and the bytes transport's calls. The queue
 * and its rules are described in stream_state.h. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "error_internal.h"
#include "log_internal.h"
#include "sized.h"
#include "stream_memory.h"
#include "stream_state.h"
#include "stream_writer.h"
#include "transport_bytes.h"

static void stream_free(struct spc_stream *s)
{
    while (s->mem) {
        struct spc_stream_memory *m = s->mem;
        s->mem = m->next;
        int rc = spci_stream_memory_release(s, m);
        if (rc != 0)
            spci_log(SPC_LOG_WARNING, "%s: deregistering memory at %p at close failed: %s",
                     s->tp->plugin->name, (void *)m->start, spc_strerror(rc));
        free(m);
    }
    for (unsigned i = 0; s->writers && i < s->n_writers; i++) {
        struct writer *w = &s->writers[i];
        if (w->tp)
            spci_transport_close(w->tp);
        spci_stream_writer_free(w);
        pthread_mutex_destroy(&w->tx_lock);
        pthread_cond_destroy(&w->work_cv);
    }
    if (s->efd >= 0)
        close(s->efd);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rl_lock);
    pthread_mutex_destroy(&s->retire_lock);
    pthread_mutex_destroy(&s->cq_lock);
    pthread_cond_destroy(&s->room_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s->writers);
    free(s->slots);
    free(s->groups);
    free(s->done_buf);
    free(s->cq);
    free(s);
}

static int alloc_arrays(struct spc_stream *s)
{
    /* max_packet_size <= 16 MiB (config bounds): no overflow below. */
    s->scratch_size = spc_packet_scratch_size(s->cfg.max_packet_size);
    s->arena_size = s->scratch_size + (size_t)BATCH_MAX_PACKETS * BATCH_ARENA_PER_PACKET;
    if (s->cap > SIZE_MAX / sizeof(struct slot))
        return -ENOMEM;
    s->slots = calloc(s->cap, sizeof *s->slots);
    s->groups = calloc(s->cap, sizeof *s->groups);
    s->done_buf = calloc(s->cap, sizeof *s->done_buf);
    if (!s->slots || !s->groups || !s->done_buf)
        return -ENOMEM;
    for (unsigned i = 0; i < s->n_writers; i++) {
        int rc = spci_stream_writer_alloc(&s->writers[i]);
        if (rc < 0)
            return rc;
    }
    if (s->cq_on) {
        s->cq_cap = s->cap < 16 ? 16 : s->cap;
        if (!(s->cq = calloc(s->cq_cap, sizeof *s->cq)))
            return -ENOMEM;
    }
    return 0;
}

/* Opens the writers' transport objects: one per writer where the transport declares
 * SPC_TRANSPORT_CAP_PER_WRITER, else a single writer (and object) with a warning. At most
 * one writer per substream. Sets n_writers to the writers that have an object. */
static int open_transports(struct spc_stream *s, const struct spc_config *cfg, unsigned want,
                           char *err, size_t errlen)
{
    s->n_writers = 1;
    int rc = spci_transport_open(&s->writers[0].tp, cfg, spci_stream_on_transport_complete,
                                 &s->writers[0], err, errlen);
    if (rc < 0) {
        s->writers[0].tp = NULL;
        return rc;
    }
    s->tp = s->writers[0].tp;
    s->n_sub = s->tp->n_substreams;
    if (want > 1 && !(s->tp->caps & SPC_TRANSPORT_CAP_PER_WRITER)) {
        spci_log(SPC_LOG_WARNING, "%s cannot be driven by several writer threads; using one "
                 "(writer_threads %u)", s->tp->plugin->name, want);
        want = 1;
    }
    if (want > s->n_sub)
        want = s->n_sub;
    for (unsigned i = 1; i < want; i++) {
        struct writer *w = &s->writers[i];
        rc = spci_transport_open(&w->tp, cfg, spci_stream_on_transport_complete, w, err, errlen);
        if (rc < 0) {
            w->tp = NULL;
            return rc;
        }
        s->n_writers = i + 1;
        if (w->tp->n_substreams != s->n_sub) {
            spci_errorf(err, errlen, "stream: %s opened with %u substreams for writer %u, %u for "
                    "writer 0", s->tp->plugin->name, w->tp->n_substreams, i, s->n_sub);
            return -SPC_EPLUGIN;
        }
    }
    return 0;
}

/* Starts the writer threads, pinned to cpu (-1: not pinned), with every signal blocked
 * (signals go to the application's threads). */
static int start_writers(struct spc_stream *s, int cpu, char *err, size_t errlen)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (unsigned i = 0; i < s->n_writers && rc == 0; i++) {
        struct writer *w = &s->writers[i];
        rc = -pthread_create(&w->thread, &attr, spci_stream_writer_main, w);
        w->running = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc < 0) {
        if (cpu >= 0 && rc == -EINVAL)
            spci_errorf(err, errlen, "stream: cannot run the writer thread on cpu %d", cpu);
        else
            spci_errorf(err, errlen, "stream: cannot start the writer thread: %s", strerror(-rc));
    }
    return rc;
}

/* Stops and joins the writers that run. */
static void stop_writers(struct spc_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->room_cv);
    for (unsigned i = 0; i < s->n_writers; i++)
        pthread_cond_signal(&s->writers[i].work_cv);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->n_writers; i++)
        if (s->writers[i].running)
            pthread_join(s->writers[i].thread, NULL);
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
    pthread_mutex_init(&s->rl_lock, NULL);
    pthread_mutex_init(&s->retire_lock, NULL);
    pthread_mutex_init(&s->cq_lock, NULL);
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
    if (o.clock)
        s->clock = *o.clock;
    const unsigned want = sc->writer_threads;
    if (!(s->writers = calloc(want, sizeof *s->writers))) {
        stream_free(s);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < want; i++) {
        struct writer *w = &s->writers[i];
        w->s = s;
        w->index = i;
        w->late_est = o.spin_max_ns / 4;
        pthread_mutex_init(&w->tx_lock, NULL);
        pthread_cond_init(&w->work_cv, NULL);
    }
    s->n_writers = want; /* every writer's locks are initialised: stream_free destroys them */

    rc = open_transports(s, cfg, want, err, errlen);
    for (unsigned i = s->n_writers; i < want; i++) { /* the writers left out */
        pthread_mutex_destroy(&s->writers[i].tx_lock);
        pthread_cond_destroy(&s->writers[i].work_cv);
    }
    if (rc < 0) {
        stream_free(s);
        return rc;
    }
    s->async = (s->tp->caps & SPC_TRANSPORT_CAP_ASYNC) != 0;
    /* Hardware pacing only where asked for, with one writer, and the transport reported
     * at open that it paces (it may withdraw that later: see fill_and_send). */
    bool want_hw = sc->rate_method == SPC_RATE_METHOD_HW && sc->rate > 0;
    struct writer *w0 = &s->writers[0];
    w0->hw = want_hw && s->n_writers == 1 && spci_transport_hw_paced(s->tp);
    if (want_hw && !w0->hw)
        spci_log(SPC_LOG_WARNING, "%s cannot pace this stream in hardware%s; using the software "
                 "rate limiter", s->tp->plugin->name,
                 s->n_writers > 1 ? " with several writer threads" : "");
    rc = spci_rate_step(sc->rate, sc->burst_rate_ratio, &s->stream_step);
    uint64_t now = spci_stream_now_ns(s);
    for (unsigned i = 0; i < s->n_writers; i++) {
        struct writer *w = &s->writers[i];
        if (!w->hw)
            w->w_step = s->stream_step;
        spci_rl_init(&w->rl, sc->burst_size, now);
    }
    spci_rl_init(&s->rl, sc->burst_size, now);
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
    rc = start_writers(s, o.cpu, err, errlen);
    if (rc < 0) {
        stop_writers(s);
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
    if (spci_stream_is_writer(s)) {
        spci_log(SPC_LOG_ERROR, "spc_stream_close called from a completion callback: ignored");
        return;
    }
    stop_writers(s);
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
    /* The first writer's transport that recorded something (with one writer, its only);
     * spci_transport_error returns the detail's full length. */
    for (unsigned i = 0; i + 1 < s->n_writers; i++)
        if (spci_transport_error(s->writers[i].tp, NULL, 0) > 0)
            return spci_transport_error(s->writers[i].tp, err, errlen);
    return spci_transport_error(s->writers[s->n_writers - 1].tp, err, errlen);
}

void spc_stream_get_stats(const struct spc_stream *s, struct spc_stream_stats *out)
{
    struct spc_stream *m = (struct spc_stream *)s; /* atomics are read-only here */
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    st.heaps = atomic_load_explicit(&m->st_heaps, memory_order_relaxed);
    st.packets = atomic_load_explicit(&m->st_packets, memory_order_relaxed);
    st.bytes = atomic_load_explicit(&m->st_bytes, memory_order_relaxed);
    st.batches = atomic_load_explicit(&m->st_batches, memory_order_relaxed);
    st.sleeps = atomic_load_explicit(&m->st_sleeps, memory_order_relaxed);
    st.sleep_late_ns = atomic_load_explicit(&m->st_late, memory_order_relaxed);
    st.sleep_late_max_ns = atomic_load_explicit(&m->st_late_max, memory_order_relaxed);
    st.spin_ns = atomic_load_explicit(&m->st_spin, memory_order_relaxed);
    st.writer_wakeups = atomic_load_explicit(&m->st_wakeups, memory_order_relaxed);
    st.cq_signals = atomic_load_explicit(&m->st_cq_signals, memory_order_relaxed);
    st.packets_in_place = atomic_load_explicit(&m->st_in_place, memory_order_relaxed);
    spci_sized_out(out, &st, sizeof st);
}
/* ================================================================ bytes transport */

int spc_bytes_stream_data(struct spc_stream *s, const uint8_t **data, size_t *len)
{
    if (!s || !data || !len)
        return -EINVAL;
    pthread_mutex_lock(&s->writers[0].tx_lock);
    int rc = spci_bytes_data(s->tp->obj, data, len);
    pthread_mutex_unlock(&s->writers[0].tx_lock);
    return rc;
}

int spc_bytes_stream_reset(struct spc_stream *s)
{
    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&s->writers[0].tx_lock);
    int rc = spci_bytes_reset(s->tp->obj);
    pthread_mutex_unlock(&s->writers[0].tx_lock);
    return rc;
}
