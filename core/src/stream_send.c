/* The send paths of a stream: checks, queueing a group all or nothing, synchronous sends,
 * flush, and prepared heap lists. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "stream_state.h"

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

/* Under lock, with room for them: queues heaps [from, from + n) of src as one group and
 * publishes each writer's share of it; sets the bits of the writers given work in *woken. */
static void put_group(struct spc_stream *s, const struct source *src, size_t from, size_t n,
                      enum spc_group_mode mode, spc_send_callback cb, void *user,
                      struct waiter *w, uint64_t *woken)
{
    uint64_t gn = atomic_load_explicit(&s->g_alloc, memory_order_relaxed);
    size_t gi = (size_t)(gn % s->cap);
    struct group *g = &s->groups[gi];
    g->first = s->q_alloc;
    g->n = n;
    g->mode = mode;
    g->cb = cb;
    g->user = user;
    g->waiter = w;
    atomic_store_explicit(&g->unfinished, n, memory_order_relaxed);
    /* Each writer's share: its heaps, appended to its heap ring in group order. */
    uint64_t share_first[SPC_STREAM_MAX_WRITER_THREADS];
    size_t share_n[SPC_STREAM_MAX_WRITER_THREADS] = {0};
    for (unsigned k = 0; k < s->n_writers; k++)
        share_first[k] = s->writers[k].wq_alloc;
    for (size_t i = 0; i < n; i++) {
        struct slot *h = &s->slots[(s->q_alloc + i) % s->cap];
        uint64_t cnt;
        if (src->preps) {
            const struct prep *p = &src->preps[from + i];
            h->heap = p->heap;
            cnt = p->cnt;
            h->substream = p->substream;
            h->stream_rate = p->stream_rate;
            h->step = p->step;
        } else {
            const struct spc_heap_ref *r = &src->refs[from + i];
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
        struct writer *wr = spci_stream_writer_of(s, h->substream);
        wr->wq[wr->wq_alloc++ % s->cap] = h;
        share_n[wr->index]++;
    }
    s->q_alloc += n;
    atomic_store_explicit(&s->g_alloc, gn + 1, memory_order_release); /* publishes the group */
    for (unsigned k = 0; k < s->n_writers; k++) {
        if (share_n[k] == 0)
            continue;
        struct writer *wr = &s->writers[k];
        uint64_t ga = atomic_load_explicit(&wr->wg_alloc, memory_order_relaxed);
        wr->wg[ga % s->cap] = (struct wgroup){.first = share_first[k], .n = share_n[k],
                                              .mode = mode, .unproduced = share_n[k]};
        atomic_store_explicit(&wr->wg_alloc, ga + 1, memory_order_release); /* publishes it */
        *woken |= UINT64_C(1) << k;
    }
}

/* Queues n checked heaps, all or nothing, as groups of per_group heaps (n a multiple of
 * it): one group (per_group = n) with cb and user, or single heaps each with cb and its
 * own users[i]. Wakes each idle writer given work once, after the last group. */
static int publish(struct spc_stream *s, const struct source *src, size_t n, size_t per_group,
                   enum spc_group_mode mode, spc_send_callback cb, void *user,
                   void *const *users, struct waiter *w)
{
    if (n > s->cap)
        return -SPC_EQUEUE_FULL;
    bool writer = spci_stream_is_writer(s);
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
    uint64_t woken = 0;
    for (size_t from = 0; from < n; from += per_group)
        put_group(s, src, from, per_group, mode, cb, users ? users[from / per_group] : user, w,
                  &woken);
    for (unsigned k = 0; k < s->n_writers; k++)
        if (!s->writers[k].idle)
            woken &= ~(UINT64_C(1) << k);
    pthread_mutex_unlock(&s->lock);
    /* Signalled after unlocking, so the woken writer does not block on the lock at once.
     * It cannot miss the signal: it was seen idle under the lock, so it is inside
     * pthread_cond_wait (or wakes, finds the work and ignores this signal). */
    for (unsigned k = 0; k < s->n_writers; k++)
        if (woken >> k & 1)
            pthread_cond_signal(&s->writers[k].work_cv);
    return 0;
}

static int wait_sync(struct spc_stream *s, struct waiter *w, uint64_t *bytes)
{
    pthread_mutex_lock(&s->lock);
    s->callers++;
    while (!w->done)
        pthread_cond_wait(&s->done_cv, &s->lock);
    s->callers--;
    if (s->stopping && s->callers == 0)
        pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
    if (bytes)
        *bytes = w->bytes;
    return w->status;
}

static int check_refs(const struct spc_stream *s, const struct spc_heap_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = check_ref(s, &refs[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int send_refs(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                     enum spc_group_mode mode, spc_send_callback cb, void *user, struct waiter *w)
{
    if (!s || !refs || n == 0 || (mode != SPC_GROUP_SERIAL && mode != SPC_GROUP_ROUND_ROBIN))
        return -EINVAL;
    int rc = check_refs(s, refs, n);
    if (rc < 0)
        return rc;
    struct source src = {.refs = refs};
    return publish(s, &src, n, n, mode, cb, user, NULL, w);
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

int spc_stream_send_each(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                         spc_send_callback cb, void *const *users)
{
    if (!s || !refs || !users || n == 0)
        return -EINVAL;
    int rc = check_refs(s, refs, n);
    if (rc < 0)
        return rc;
    struct source src = {.refs = refs};
    return publish(s, &src, n, 1, SPC_GROUP_SERIAL, cb, NULL, users, NULL);
}

int spc_stream_send_sync(struct spc_stream *s, const struct spc_heap_ref *ref, uint64_t *bytes)
{
    return spc_stream_send_heaps_sync(s, ref, 1, SPC_GROUP_SERIAL, bytes);
}

int spc_stream_send_heaps_sync(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                               enum spc_group_mode mode, uint64_t *bytes)
{
    if (s && spci_stream_is_writer(s))
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
    if (spci_stream_is_writer(s))
        return -EDEADLK;
    pthread_mutex_lock(&s->lock);
    uint64_t target = atomic_load_explicit(&s->g_alloc, memory_order_relaxed);
    s->callers++;
    atomic_fetch_add(&s->done_waiters, 1); /* before the test: see g_delivered */
    while (atomic_load(&s->g_delivered) < target)
        pthread_cond_wait(&s->done_cv, &s->lock);
    atomic_fetch_sub(&s->done_waiters, 1);
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
    return publish(s, &src, count, count, mode, cb, user, NULL, NULL);
}

int spc_stream_send_list_sync(struct spc_stream *s, const struct spc_heap_list *list,
                              size_t first, size_t count, enum spc_group_mode mode,
                              uint64_t *bytes)
{
    int rc = list_check(s, list, first, count, mode);
    if (rc < 0)
        return rc;
    if (spci_stream_is_writer(s))
        return -EDEADLK;
    struct waiter w = {0};
    struct source src = {.preps = &list->e[first]};
    rc = publish(s, &src, count, count, mode, NULL, NULL, NULL, &w);
    if (rc < 0)
        return rc;
    return wait_sync(s, &w, bytes);
}
