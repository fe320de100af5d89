/* Writing a heap's packets (SPEC §1 "Splitting a heap into packets"; where they cut the
 * heap is packet_plan.c). No allocation: all state lives in the caller's spc_packetizer
 * and scratch, or, for a packet that goes out in place, in the heap's payload layout. */
#include <errno.h>
#include <string.h>

#include "heap_layout.h"
#include "packet_plan.h"
#include "wire_internal.h"

static const uint8_t spci_zeros[4096];

/* How many pieces ahead of the packet being written its room is prefetched. */
#define ROOM_PREFETCH 4

size_t spc_packet_scratch_size(size_t max_packet_size)
{
    return max_packet_size & ~(size_t)7;
}

int spc_packetizer_init(struct spc_packetizer *pz, const struct spc_heap *heap, uint64_t cnt,
                        size_t max_packet_size)
{
    int rc = spc_heap_validate(heap, cnt, max_packet_size);
    if (rc < 0)
        return rc;
    spci_plan_init(pz, heap, cnt, max_packet_size);
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
        if (ptrs > n && cap > 8) /* as in spci_plan_next */
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

/* The next len payload bytes from the walk position: a pointer to as many of them as are
 * contiguous (at most len), their count in *n. Advances the walk past them. */
static const uint8_t *next_bytes(struct spc_packetizer *pz, size_t len, size_t *n)
{
    const struct spc_heap *heap = pz->heap;
    /* Skip to the next addressed item with bytes left. */
    while (pz->seg < heap->n_items &&
           (!spci_item_addressed(heap->items[pz->seg].kind) ||
            pz->seg_off >= heap->items[pz->seg].len)) {
        pz->seg++;
        pz->seg_off = 0;
    }
    if (pz->seg == heap->n_items) { /* padding */
        *n = len < sizeof(spci_zeros) ? len : sizeof(spci_zeros);
        return spci_zeros;
    }
    const struct spci_item *it = &heap->items[pz->seg];
    const uint8_t *src;
    size_t avail = it->len - pz->seg_off;
    if (it->kind == SPCI_ITEM_RESERVED) {
        /* Reserved bytes are in the layout, in pieces; every one of them has a piece. */
        uint64_t off = it->value + pz->seg_off;
        const struct spci_piece *p = spci_layout_seek(heap->layout, &pz->piece, off);
        size_t in = (size_t)(off - p->off);
        src = heap->layout->buf + p->pos + in;
        if (avail > p->len - in)
            avail = p->len - in;
    } else {
        src = it->data + pz->seg_off;
    }
    *n = avail < len ? avail : len;
    pz->seg_off += *n;
    return src;
}

/* Moves the walk past len payload bytes that are all items' bytes (no padding). */
static void skip_bytes(struct spc_packetizer *pz, size_t len)
{
    const struct spc_heap *heap = pz->heap;
    while (len > 0 && pz->seg < heap->n_items) {
        const struct spci_item *it = &heap->items[pz->seg];
        if (!spci_item_addressed(it->kind) || pz->seg_off >= it->len) {
            pz->seg++;
            pz->seg_off = 0;
            continue;
        }
        size_t n = it->len - pz->seg_off < len ? (size_t)(it->len - pz->seg_off) : len;
        pz->seg_off += n;
        len -= n;
    }
}

/* Gathers len payload bytes from the walk position into pkt (after iov[0], which holds
 * hdr_len bytes of scratch). Falls back to copying into scratch when the pieces would
 * not fit in SPC_PACKET_MAX_IOV. */
static void gather(struct spc_packetizer *pz, uint8_t *scratch, size_t hdr_len, size_t len,
                   struct spc_packet *pkt)
{
    bool copying = false;
    size_t copied = hdr_len;
    while (len > 0) {
        size_t n;
        const uint8_t *src = next_bytes(pz, len, &n);
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
        } else if (pkt->n_iov > 1 && (const uint8_t *)pkt->iov[pkt->n_iov - 1].iov_base +
                                             pkt->iov[pkt->n_iov - 1].iov_len == src) {
            pkt->iov[pkt->n_iov - 1].iov_len += n; /* adjacent reserved items */
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
    struct spci_cut cut;
    if (!spci_plan_next(pz, &cut))
        return 0;
    const struct spc_heap *heap = pz->heap;
    const struct spc_flavour *f = &heap->flavour;
    const size_t hdr_len = spci_cut_header_len(&cut);
    uint8_t *room = pz->in_place && heap->layout
                        ? spci_layout_room(heap->layout, &pz->piece, cut.offset, cut.len, hdr_len)
                        : NULL;
    uint8_t *p = room ? room : scratch;
    if (room && pz->piece + ROOM_PREFETCH < heap->layout->n_pieces) {
        /* The rooms are written, not read, and are rarely in cache (a heap is larger
         * than the cache): ask for a later one now so its miss overlaps this packet. */
        const struct spci_piece *ahead = &heap->layout->pieces[pz->piece + ROOM_PREFETCH];
        __builtin_prefetch(heap->layout->buf + ahead->pos - ahead->room, 1);
    }
    spci_put_header(p, f, (unsigned)(4 + cut.n));
    spci_put_be(p + 8, spci_item_pointer(f, true, SPC_ID_HEAP_CNT, pz->cnt), 8);
    spci_put_be(p + 16, spci_item_pointer(f, true, SPC_ID_HEAP_SIZE, pz->payload), 8);
    spci_put_be(p + 24, spci_item_pointer(f, true, SPC_ID_HEAP_OFFSET, cut.offset), 8);
    spci_put_be(p + 32, spci_item_pointer(f, true, SPC_ID_PAYLOAD_LENGTH, cut.len), 8);
    p += SPC_PACKET_PREFIX;
    for (size_t i = 0; i < cut.n; i++, p += 8)
        spci_put_be(p, user_pointer(pz, cut.first + i), 8);
    pkt->size = hdr_len + cut.len;
    if (room) {
        /* The payload follows the header in the layout: one piece. Move the gather walk
         * past it (the packet's bytes are all reserved, so no padding is skipped). */
        pkt->iov[0].iov_base = room;
        pkt->iov[0].iov_len = pkt->size;
        pkt->n_iov = 1;
        skip_bytes(pz, cut.len);
        return 1;
    }
    pkt->iov[0].iov_base = scratch;
    pkt->iov[0].iov_len = hdr_len;
    pkt->n_iov = 1;
    gather(pz, scratch, hdr_len, cut.len, pkt);
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
