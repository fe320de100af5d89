/* Splitting a heap into packets (SPEC §1 "Splitting a heap into packets").
 * No allocation: all state lives in the caller's spc_packetizer and scratch. */
#include <errno.h>
#include <string.h>

#include "heap_internal.h"
#include "wire_internal.h"

/* The header's pointer count is 16 bits and includes the four standard pointers. */
#define MAX_USER_PTRS (65535 - 4)

static const uint8_t spci_zeros[4096];

size_t spc_packet_scratch_size(size_t max_packet_size)
{
    return max_packet_size & ~(size_t)7;
}

static size_t max_ptrs_for(size_t mps)
{
    size_t m = (mps - 48) / 8;
    return m > MAX_USER_PTRS ? MAX_USER_PTRS : m;
}

/* Computes the padded payload size and whether a NULL pointer is needed. */
static void layout(const struct spc_heap *heap, size_t max_ptrs, uint64_t *payload, bool *null_ptr)
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
    layout(heap, max_ptrs, &payload, &null_ptr);
    if (payload > spc_flavour_max_value(&heap->flavour))
        return -SPC_EHEAP_TOO_LARGE;
    return 0;
}

int spc_packetizer_init(struct spc_packetizer *pz, const struct spc_heap *heap, uint64_t cnt,
                        size_t max_packet_size)
{
    int rc = spc_heap_validate(heap, cnt, max_packet_size);
    if (rc < 0)
        return rc;
    memset(pz, 0, sizeof(*pz));
    pz->heap = heap;
    pz->cnt = cnt;
    pz->mps = max_packet_size & ~(size_t)7;
    pz->max_ptrs = max_ptrs_for(pz->mps);
    pz->real = heap->payload;
    layout(heap, pz->max_ptrs, &pz->payload, &pz->null_ptr);
    pz->n_ptrs = heap->n_items + (pz->null_ptr ? 1 : 0);
    return 0;
}

bool spc_packetizer_done(const struct spc_packetizer *pz)
{
    return pz->offset >= pz->payload;
}

size_t spc_packetizer_count(const struct spc_packetizer *pz)
{
    size_t mps = pz->mps;
    if (pz->heap->repeat_pointers) {
        uint64_t cap = mps - SPC_PACKET_PREFIX - 8 * pz->n_ptrs;
        return (size_t)((pz->payload + cap - 1) / cap);
    }
    /* Packets full of pointers first, then payload-only packets. */
    size_t count = 0, ptrs = pz->n_ptrs;
    uint64_t left = pz->payload;
    while (left > 0 && ptrs > 0) {
        size_t n = ptrs < pz->max_ptrs ? ptrs : pz->max_ptrs;
        uint64_t cap = mps - SPC_PACKET_PREFIX - 8 * n;
        if (ptrs > n && cap > 8) /* as in spc_packetizer_next */
            cap = 8;
        left -= left < cap ? left : cap;
        ptrs -= n;
        count++;
    }
    uint64_t cap = mps - SPC_PACKET_PREFIX;
    return count + (size_t)((left + cap - 1) / cap);
}

int64_t spc_heap_wire_size(const struct spc_heap *heap, uint64_t cnt, size_t max_packet_size)
{
    struct spc_packetizer pz;
    int rc = spc_packetizer_init(&pz, heap, cnt, max_packet_size);
    if (rc < 0)
        return rc;
    size_t count = spc_packetizer_count(&pz);
    uint64_t ptr_bytes = 8 * (uint64_t)pz.n_ptrs * (heap->repeat_pointers ? count : 1);
    return (int64_t)(SPC_PACKET_PREFIX * (uint64_t)count + ptr_bytes + pz.payload);
}

static uint64_t user_pointer(const struct spc_packetizer *pz, size_t i)
{
    const struct spc_heap *heap = pz->heap;
    const struct spc_flavour *f = &heap->flavour;
    if (i == heap->n_items) /* the trailing NULL pointer */
        return spci_item_pointer(f, false, SPC_ID_NULL, pz->real);
    const struct spci_item *it = &heap->items[i];
    switch (it->kind) {
    case SPCI_ITEM_INLINE:
        return spci_item_pointer(f, true, it->id, it->value);
    case SPCI_ITEM_IMM_BUF: {
        /* Bytes unchanged, right-aligned: read as a big-endian number. Read at packetizing
         * time so in-place updates of the referenced memory are sent. */
        uint64_t v = 0;
        for (size_t b = 0; b < it->len; b++)
            v = v << 8 | it->data[b];
        return spci_item_pointer(f, true, it->id, v);
    }
    case SPCI_ITEM_ADDRESSED:
    default:
        return spci_item_pointer(f, false, it->id, it->value);
    }
}

/* Gathers len payload bytes from the walk position into pkt (after iov[0], which holds
 * hdr_len bytes of scratch). Falls back to copying into scratch when the pieces would
 * not fit in SPC_PACKET_MAX_IOV. */
static void gather(struct spc_packetizer *pz, uint8_t *scratch, size_t hdr_len, size_t len,
                   struct spc_packet *pkt)
{
    const struct spc_heap *heap = pz->heap;
    bool copying = false;
    size_t copied = hdr_len;
    while (len > 0) {
        const uint8_t *src;
        size_t n;
        /* Skip to the next addressed item with bytes left. */
        while (pz->seg < heap->n_items &&
               (heap->items[pz->seg].kind != SPCI_ITEM_ADDRESSED || pz->seg_off >= heap->items[pz->seg].len)) {
            pz->seg++;
            pz->seg_off = 0;
        }
        if (pz->seg < heap->n_items) {
            const struct spci_item *it = &heap->items[pz->seg];
            src = it->data + pz->seg_off;
            n = it->len - pz->seg_off;
            if (n > len)
                n = len;
            pz->seg_off += n;
        } else {
            src = spci_zeros;
            n = len < sizeof(spci_zeros) ? len : sizeof(spci_zeros);
        }
        if (!copying && pkt->n_iov == SPC_PACKET_MAX_IOV) {
            /* Too many pieces: move what was gathered into scratch and copy from now on. */
            for (unsigned i = 1; i < pkt->n_iov; i++) {
                memcpy(scratch + copied, pkt->iov[i].iov_base, pkt->iov[i].iov_len);
                copied += pkt->iov[i].iov_len;
            }
            pkt->n_iov = 1;
            copying = true;
        }
        if (copying) {
            memcpy(scratch + copied, src, n);
            copied += n;
        } else {
            pkt->iov[pkt->n_iov].iov_base = (void *)src;
            pkt->iov[pkt->n_iov].iov_len = n;
            pkt->n_iov++;
        }
        len -= n;
    }
    if (copying)
        pkt->iov[0].iov_len = copied;
}

int spc_packetizer_next(struct spc_packetizer *pz, uint8_t *scratch, struct spc_packet *pkt)
{
    if (pz->offset >= pz->payload)
        return 0;
    const struct spc_heap *heap = pz->heap;
    const struct spc_flavour *f = &heap->flavour;
    size_t first, n;
    if (heap->repeat_pointers) {
        first = 0;
        n = pz->n_ptrs;
    } else {
        first = pz->next_ptr;
        n = pz->n_ptrs - first;
        if (n > pz->max_ptrs)
            n = pz->max_ptrs;
        pz->next_ptr += n;
    }
    uint64_t room = pz->mps - SPC_PACKET_PREFIX - 8 * (uint64_t)n;
    /* While pointers remain, a packet carries 8 payload bytes so later pointer packets
     * still have payload (the padding rule guarantees 8 per full pointer packet). A full
     * pointer packet has exactly 8 bytes of room anyway unless the 65535 cap applies. */
    if (pz->next_ptr < pz->n_ptrs && !heap->repeat_pointers && room > 8)
        room = 8;
    uint64_t left = pz->payload - pz->offset;
    size_t len = (size_t)(left < room ? left : room);

    uint8_t *p = scratch;
    spci_put_header(p, f, (unsigned)(4 + n));
    spci_put_be(p + 8, spci_item_pointer(f, true, SPC_ID_HEAP_CNT, pz->cnt), 8);
    spci_put_be(p + 16, spci_item_pointer(f, true, SPC_ID_HEAP_SIZE, pz->payload), 8);
    spci_put_be(p + 24, spci_item_pointer(f, true, SPC_ID_HEAP_OFFSET, pz->offset), 8);
    spci_put_be(p + 32, spci_item_pointer(f, true, SPC_ID_PAYLOAD_LENGTH, len), 8);
    p += SPC_PACKET_PREFIX;
    for (size_t i = 0; i < n; i++, p += 8)
        spci_put_be(p, user_pointer(pz, first + i), 8);
    size_t hdr_len = (size_t)(p - scratch);
    pkt->iov[0].iov_base = scratch;
    pkt->iov[0].iov_len = hdr_len;
    pkt->n_iov = 1;
    gather(pz, scratch, hdr_len, len, pkt);
    pkt->size = hdr_len + len;
    pz->offset += len;
    return 1;
}

int64_t spc_packet_write(const struct spc_packet *pkt, void *dst, size_t cap)
{
    if (cap < pkt->size)
        return -ENOSPC;
    uint8_t *out = dst;
    for (unsigned i = 0; i < pkt->n_iov; i++) {
        memcpy(out, pkt->iov[i].iov_base, pkt->iov[i].iov_len);
        out += pkt->iov[i].iov_len;
    }
    return (int64_t)pkt->size;
}
