/* Memory registration of a stream (spc_stream_register_memory and its inverse): the list
 * of registered ranges, and the check that no queued heap still references a range. */
#include <errno.h>
#include <stdlib.h>

#include "heap_memory.h"
#include "stream_internal.h"

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
            return rc > 0 ? -SPC_EPLUGIN : rc;
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
    int rc = 0;
    if (s->tp->caps & SPC_TRANSPORT_CAP_MEMREG) {
        /* Under lock too: no heap using the range can be queued until it is gone. */
        pthread_mutex_lock(&s->tx_lock);
        rc = spci_transport_deregister_memory(s->tp, mem->handle);
        pthread_mutex_unlock(&s->tx_lock);
        if (rc > 0)
            rc = -SPC_EPLUGIN;
    }
    if (rc == 0)
        *pp = mem->next;
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        free(mem);
    return rc;
}
