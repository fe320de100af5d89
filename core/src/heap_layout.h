/* A heap's payload layout (core-internal): the bytes of its RESERVED items, placed the way
 * the heap's packets carry them at one max_packet_size. Where a packet's whole payload is
 * reserved bytes, those bytes sit side by side in the buffer with room for the packet's
 * header just before them, so the packet goes out as one piece, its header written into
 * the room (the packetizer's in-place path). Other packets gather from the pieces like
 * any other memory, so a stale layout (items added since, another packet size) is only
 * slower, never wrong. */
#ifndef SPCI_HEAP_LAYOUT_H
#define SPCI_HEAP_LAYOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap_types.h"

/* A run of reserved bytes inside one packet's payload: heap payload bytes [off, off +
 * len) at buf + pos. A piece that starts a packet whose payload is wholly reserved has
 * whole == that payload's length (the next pieces of the packet follow it in the buffer)
 * and room == the packet's header length, free at buf + pos - room; otherwise both are
 * 0. Pieces are in payload order and do not overlap. */
struct spci_piece {
    uint64_t off;
    size_t len;
    size_t pos;
    size_t whole;
    size_t room;
};

struct spci_layout {
    uint8_t *buf;
    size_t size;
    struct spci_piece *pieces;
    size_t n_pieces, cap_pieces;
    size_t mps;         /* the (rounded) max_packet_size it was laid out for */
    bool written;       /* bytes may have been written since it was laid out */
    /* Set while a stream writes headers into the rooms (from the packet that claimed it
     * until the heap's last packet has completed): a second send of the heap at the same
     * time gathers instead. */
    atomic_bool claimed;
};

/* Lays out heap's RESERVED items for max_packet_size into a new layout, copying the
 * bytes of old (the heap's current layout, or NULL) when it was written. The heap must
 * pass spc_heap_validate for that size. Errors: -ENOMEM, those of spc_heap_validate. */
int spci_layout_create(struct spci_layout **out, const struct spc_heap *heap,
                       size_t max_packet_size, const struct spci_layout *old);
void spci_layout_destroy(struct spci_layout *l);

/* The piece holding heap payload offset off, searching forward from *cursor (which it
 * updates); NULL when off is past the last piece or not reserved. */
static inline const struct spci_piece *spci_layout_seek(const struct spci_layout *l,
                                                        size_t *cursor, uint64_t off)
{
    size_t c = *cursor;
    while (c < l->n_pieces && l->pieces[c].off + l->pieces[c].len <= off)
        c++;
    *cursor = c;
    if (c == l->n_pieces || l->pieces[c].off > off)
        return NULL;
    return &l->pieces[c];
}

/* The room for the header of the packet whose payload is [off, off + len) and whose
 * header is hdr_len bytes, when that packet is wholly laid out as it is cut (its payload
 * follows the room); NULL otherwise. Searches forward from *cursor. */
static inline uint8_t *spci_layout_room(const struct spci_layout *l, size_t *cursor,
                                        uint64_t off, size_t len, size_t hdr_len)
{
    const struct spci_piece *p = spci_layout_seek(l, cursor, off);
    if (!p || p->off != off || p->whole != len || p->room != hdr_len || len == 0)
        return NULL;
    return l->buf + p->pos - hdr_len;
}

/* The piece holding off, by binary search; NULL when off is not reserved. */
const struct spci_piece *spci_layout_find(const struct spci_layout *l, uint64_t off);

static inline bool spci_layout_try_claim(struct spci_layout *l)
{
    if (atomic_load_explicit(&l->claimed, memory_order_relaxed))
        return false;
    return !atomic_exchange_explicit(&l->claimed, true, memory_order_acquire);
}

static inline void spci_layout_release(struct spci_layout *l)
{
    atomic_store_explicit(&l->claimed, false, memory_order_release);
}

#endif
