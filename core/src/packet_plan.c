/* Where a heap's packets cut it: pointer packets first, then payload-only packets, with
 * the padding rule (SPEC §1). No item bytes are read here. */
#include <string.h>

#include "heap_types.h"
#include "packet_plan.h"

/* The header's pointer count is 16 bits and includes the four standard pointers. */
#define MAX_USER_PTRS (65535 - 4)

static size_t max_ptrs_for(size_t mps)
{
    size_t m = (mps - 48) / 8;
    return m > MAX_USER_PTRS ? MAX_USER_PTRS : m;
}

/* The padded payload size and whether a NULL pointer is needed. */
static void padding(const struct spc_heap *heap, size_t max_ptrs, uint64_t *payload, bool *null_ptr)
{
    uint64_t min = (uint64_t)(heap->n_items / max_ptrs) * 8 + 1;
    *null_ptr = heap->payload < min;
    *payload = *null_ptr ? min : heap->payload;
}

int spc_heap_validate(const struct spc_heap *heap, uint64_t cnt, size_t max_packet_size)
{
    size_t mps = max_packet_size & ~(size_t)7;
    if (mps < SPC_MIN_PACKET_SIZE)
        return -SPC_EPACKET_SIZE;
    if (cnt > spc_flavour_max_value(&heap->flavour))
        return -SPC_EHEAP_CNT;
    size_t max_ptrs = max_ptrs_for(mps);
    if (heap->repeat_pointers && heap->n_items >= max_ptrs)
        return (mps - 48) / 8 > heap->n_items ? -SPC_ETOO_MANY_POINTERS : -SPC_EREPEAT_POINTERS;
    uint64_t payload;
    bool null_ptr;
    padding(heap, max_ptrs, &payload, &null_ptr);
    if (payload > spc_flavour_max_value(&heap->flavour))
        return -SPC_EHEAP_TOO_LARGE;
    return 0;
}

void spci_plan_init(struct spc_packetizer *pz, const struct spc_heap *heap, uint64_t cnt,
                    size_t max_packet_size)
{
    memset(pz, 0, sizeof(*pz));
    pz->heap = heap;
    pz->cnt = cnt;
    pz->mps = max_packet_size & ~(size_t)7;
    pz->max_ptrs = max_ptrs_for(pz->mps);
    pz->real = heap->payload;
    padding(heap, pz->max_ptrs, &pz->payload, &pz->null_ptr);
    pz->n_ptrs = heap->n_items + (pz->null_ptr ? 1 : 0);
}

int spci_plan_next(struct spc_packetizer *pz, struct spci_cut *cut)
{
    if (pz->offset >= pz->payload)
        return 0;
    if (pz->heap->repeat_pointers) {
        cut->first = 0;
        cut->n = pz->n_ptrs;
    } else {
        cut->first = pz->next_ptr;
        cut->n = pz->n_ptrs - cut->first;
        if (cut->n > pz->max_ptrs)
            cut->n = pz->max_ptrs;
        pz->next_ptr += cut->n;
    }
    uint64_t room = pz->mps - SPC_PACKET_PREFIX - 8 * (uint64_t)cut->n;
    /* While pointers remain, a packet carries 8 payload bytes so later pointer packets
     * still have payload (the padding rule guarantees 8 per full pointer packet). A full
     * pointer packet has exactly 8 bytes of room anyway unless the 65535 cap applies. */
    if (pz->next_ptr < pz->n_ptrs && !pz->heap->repeat_pointers && room > 8)
        room = 8;
    uint64_t left = pz->payload - pz->offset;
    cut->offset = pz->offset;
    cut->len = (size_t)(left < room ? left : room);
    pz->offset += cut->len;
    return 1;
}
