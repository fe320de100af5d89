/* Memory registration of a stream (spc_stream_register_memory and its inverse): the list
 * of registered ranges, and the check that no queued heap still references a range. */
#include <errno.h>
#include <stdlib.h>

#include "heap_memory.h"
#include "stream_memory.h"

/* Deregisters m from the transport objects of writers [from, to) that hold a handle for
 * it (under each writer's tx_lock); returns the first error. */
static int dereg(struct spc_stream *s, struct spc_stream_memory *m, unsigned from, unsigned to)
{
    int first = 0;
    for (unsigned i = from; i < to; i++) {
        struct writer *w = &s->writers[i];
        if (!(w->tp->caps & SPC_TRANSPORT_CAP_MEMREG) || !m->handle[i])
            continue;
        pthread_mutex_lock(&w->tx_lock);
        int rc = spci_transport_deregister_memory(w->tp, m->handle[i]);
        pthread_mutex_unlock(&w->tx_lock);
        if (rc == 0)
            m->handle[i] = NULL;
        else if (first == 0)
            first = rc;
    }
    return first;
}

int spc_stream_register_memory(struct spc_stream *s, void *addr, size_t len,
                               struct spc_stream_memory **out)
{
    if (!s || !addr || !len || !out || (uintptr_t)addr > UINTPTR_MAX - len)
        return -EINVAL;
    struct spc_stream_memory *m = calloc(1, sizeof *m + s->n_writers * sizeof m->handle[0]);
    if (!m)
        return -ENOMEM;
    m->start = (uintptr_t)addr;
    m->end = m->start + len;
    /* With every writer's transport object, or with none. */
    for (unsigned i = 0; i < s->n_writers; i++) {
        struct writer *w = &s->writers[i];
        if (!(w->tp->caps & SPC_TRANSPORT_CAP_MEMREG))
            continue;
        pthread_mutex_lock(&w->tx_lock);
        int rc = spci_transport_register_memory(w->tp, addr, len, &m->handle[i]);
        pthread_mutex_unlock(&w->tx_lock);
        if (rc != 0) {
            dereg(s, m, 0, i);
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
        if (spci_heap_references(h->heap, m->start, m->end))
            return h;
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
    /* Under lock too: no heap using the range can be queued until it is gone. A failure
     * leaves the registration listed (with the handles not yet given back), so a retry
     * or close finishes it. */
    int rc = dereg(s, mem, 0, s->n_writers);
    if (rc == 0)
        *pp = mem->next;
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        free(mem);
    return rc;
}

int spci_stream_memory_release(struct spc_stream *s, struct spc_stream_memory *m)
{
    return dereg(s, m, 0, s->n_writers);
}
