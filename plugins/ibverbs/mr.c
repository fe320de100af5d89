/* Memory: the registered slot buffer, and the regions an application registers
 * for zero-copy sends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ibvp.h"

int ibvp_alloc_slots(struct ibvp *p, const struct ibvp_options *o, const struct ibv_device_attr_ex *da)
{
    size_t slot_size = (HDR + p->max_payload + IBVP_SLOT_ALIGN - 1) & ~(size_t)(IBVP_SLOT_ALIGN - 1);
    const uint64_t asked = o->buffer_size / slot_size ? o->buffer_size / slot_size : 1;
    uint64_t n = asked;
    /* No more slots than the send queue holds requests (max_qp_wr counts blocks). */
    uint64_t sq_max = da->orig_attr.max_qp_wr > 0
                          ? ibvp_sq_max_wr((uint32_t)da->orig_attr.max_qp_wr, p->max_sge)
                          : UINT32_MAX;
    if (sq_max == 0)
        sq_max = 1;
    if (n > sq_max)
        n = sq_max;
    /* The queue holds two slots' worth: completions of a replaced queue pair may linger. */
    if (da->orig_attr.max_cqe > 1 && n > (uint64_t)da->orig_attr.max_cqe / 2)
        n = (uint64_t)da->orig_attr.max_cqe / 2;
    if (n < asked)
        p->base.svc->log(&p->base, SPC_LOG_WARNING, "buffer_size %llu makes %llu slots, but %s "
                         "holds at most %llu requests in flight (its send and completion "
                         "queue limits): using %llu slots", (unsigned long long)o->buffer_size,
                         (unsigned long long)asked, p->dev_name, (unsigned long long)n,
                         (unsigned long long)n);
    p->n_slots = (uint32_t)n;
    ibvp_set_depth(p, p->n_slots);
    size_t need = (size_t)n * slot_size;

    p->buf_len = (need + IBVP_HUGE_PAGE - 1) & ~(size_t)(IBVP_HUGE_PAGE - 1);
    p->buf = mmap(NULL, p->buf_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    p->buf_huge = p->buf != MAP_FAILED;
    if (!p->buf_huge) {
        long page = sysconf(_SC_PAGESIZE);
        size_t pg = page > 0 ? (size_t)page : 4096;
        p->buf_len = (need + pg - 1) / pg * pg;
        p->buf = mmap(NULL, p->buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p->buf == MAP_FAILED) {
            int rc = ibvp_errno_or(ENOMEM);
            p->buf = NULL;
            p->base.svc->set_error(&p->base, "cannot allocate %zu bytes of packet slots: %s", need,
                                   strerror(-rc));
            return rc;
        }
    }
    errno = 0;
    p->mr = p->v->reg_mr_iova2(p->pd, p->buf, p->buf_len, (uintptr_t)p->buf,
                               IBV_ACCESS_LOCAL_WRITE | IBVP_ACCESS_RO);
    if (!p->mr) {
        int rc = ibvp_errno_or(EIO);
        p->base.svc->set_error(&p->base, "registering %zu bytes of packet slots with %s failed: %s",
                               p->buf_len, p->dev_name, strerror(-rc));
        return rc;
    }
    p->slots = calloc(n, sizeof *p->slots);
    p->sges = calloc(n * p->max_sge, sizeof *p->sges);
    if (!p->slots || !p->sges) {
        p->base.svc->set_error(&p->base, "out of memory for %u slots", (unsigned)n);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        p->slots[i].frame = (uint8_t *)p->buf + (size_t)i * slot_size;
        p->slots[i].hdr_sub = IBVP_NO_SUB;
        p->slots[i].sge = &p->sges[(size_t)i * p->max_sge];
    }
    p->base.svc->log(&p->base, SPC_LOG_DEBUG, "%u slots of %zu bytes in %s pages on %s port %u",
                     (unsigned)n, slot_size, p->buf_huge ? "huge" : "normal", p->dev_name,
                     (unsigned)p->port);
    return 0;
}

int ibvp_register_memory(struct spc_transport *t, void *addr, size_t len, void **handle)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (!addr || !len || !handle || (uintptr_t)addr + len < (uintptr_t)addr)
        return -EINVAL;
    struct ibvp_region *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    errno = 0;
    r->mr = p->v->reg_mr_iova2(p->pd, addr, len, (uintptr_t)addr, IBVP_ACCESS_RO);
    if (!r->mr) {
        int rc = ibvp_errno_or(EIO);
        t->svc->set_error(t, "registering %zu bytes at %p with %s failed: %s", len, addr,
                          p->dev_name, strerror(-rc));
        free(r);
        return rc;
    }
    r->start = (uintptr_t)addr;
    r->end = r->start + len;
    r->next = p->regions;
    p->regions = r;
    *handle = r;
    return 0;
}

static bool region_in_flight(const struct ibvp *p, const struct ibvp_region *r)
{
    for (uint32_t i = 0; i < p->n_inflight; i++) {
        const struct ibvp_slot *s = &p->slots[(p->tail + i) % p->n_slots];
        for (int k = 0; k < s->wr.num_sge; k++)
            if (s->sge[k].lkey == r->mr->lkey)
                return true;
    }
    return false;
}

int ibvp_deregister_memory(struct spc_transport *t, void *handle)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    struct ibvp_region **pp = &p->regions;
    while (*pp && *pp != handle)
        pp = &(*pp)->next;
    if (!*pp)
        return -EINVAL;
    struct ibvp_region *r = *pp;
    /* No reaping here (completions are delivered only by send, poll, flush and close):
     * the heaps using the memory must have completed already. */
    if (region_in_flight(p, r)) {
        t->svc->set_error(t, "memory at %p is still being sent by %s: deregister it after the "
                             "heaps using it have completed", (void *)r->start, p->dev_name);
        return -EBUSY;
    }
    int rc = p->v->dereg_mr(r->mr);
    if (rc != 0) {
        t->svc->set_error(t, "deregistering memory at %p from %s failed: %s", (void *)r->start,
                          p->dev_name, strerror(rc));
        return -rc;
    }
    *pp = r->next;
    if (p->mru == r)
        p->mru = NULL;
    free(r);
    return 0;
}
