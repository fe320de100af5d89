/* Laying a heap's RESERVED items out as its packets (see heap_layout.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "heap_layout.h"
#include "packet_plan.h"

static int add_piece(struct spci_layout *l, const struct spci_piece *p)
{
    int rc = spci_grow((void **)&l->pieces, &l->cap_pieces, l->n_pieces + 1, sizeof(*p));
    if (rc == 0)
        l->pieces[l->n_pieces++] = *p;
    return rc;
}

/* Places the pieces of one packet's payload [o, e): reserved runs go to the buffer in
 * order from *pos; when all of [o, e) is reserved (no borrowed item, no padding), room
 * for the header goes first. *item is the first addressed item that ends after o. */
static int place_packet(struct spci_layout *l, const struct spc_heap *heap, size_t *item,
                        uint64_t o, uint64_t e, size_t header, size_t *pos)
{
    bool whole = e <= heap->payload;
    for (size_t i = *item; whole && i < heap->n_items; i++) {
        const struct spci_item *it = &heap->items[i];
        if (!spci_item_addressed(it->kind) || it->len == 0)
            continue;
        if (it->value >= e)
            break;
        if (it->kind != SPCI_ITEM_RESERVED)
            whole = false;
    }
    if (whole)
        *pos += header;
    bool first = true;
    size_t i = *item;
    for (; i < heap->n_items; i++) {
        const struct spci_item *it = &heap->items[i];
        if (!spci_item_addressed(it->kind) || it->len == 0)
            continue;
        uint64_t start = it->value, end = it->value + it->len;
        if (start >= e)
            break;
        if (it->kind == SPCI_ITEM_RESERVED) {
            uint64_t a = start > o ? start : o, b = end < e ? end : e;
            struct spci_piece p = {.off = a, .len = (size_t)(b - a), .pos = *pos};
            if (whole && first) {
                p.whole = (size_t)(e - o);
                p.room = header;
            }
            int rc = add_piece(l, &p);
            if (rc < 0)
                return rc;
            *pos += p.len;
            first = false;
        }
        if (end > e)
            break; /* the item goes on in the next packet */
    }
    *item = i;
    return 0;
}

int spci_layout_create(struct spci_layout **out, const struct spc_heap *heap,
                       size_t max_packet_size, const struct spci_layout *old)
{
    struct spci_layout *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    struct spc_packetizer pz;
    spci_plan_init(&pz, heap, 0, max_packet_size);
    l->mps = pz.mps;
    struct spci_cut cut;
    size_t item = 0, pos = 0;
    int rc = 0;
    while (rc == 0 && spci_plan_next(&pz, &cut)) {
        rc = place_packet(l, heap, &item, cut.offset, cut.offset + cut.len,
                          spci_cut_header_len(&cut), &pos);
    }
    if (rc == 0) {
        l->size = pos;
        l->buf = calloc(1, pos ? pos : 1);
        if (!l->buf)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        spci_layout_destroy(l);
        return rc;
    }
    /* Copy what was written: each old piece's bytes to wherever they are now (the new
     * layout reserves a superset: items are only ever added). */
    size_t cursor = 0;
    for (size_t k = 0; old && old->written && k < old->n_pieces; k++) {
        const struct spci_piece *p = &old->pieces[k];
        size_t done = 0;
        while (done < p->len) {
            const struct spci_piece *q = spci_layout_seek(l, &cursor, p->off + done);
            if (!q)
                break;
            size_t in = (size_t)(p->off + done - q->off), n = q->len - in;
            if (n > p->len - done)
                n = p->len - done;
            memcpy(l->buf + q->pos + in, old->buf + p->pos + done, n);
            done += n;
        }
    }
    l->written = old && old->written;
    *out = l;
    return 0;
}

void spci_layout_destroy(struct spci_layout *l)
{
    if (!l)
        return;
    free(l->buf);
    free(l->pieces);
    free(l);
}

const struct spci_piece *spci_layout_find(const struct spci_layout *l, uint64_t off)
{
    size_t lo = 0, hi = l->n_pieces;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct spci_piece *p = &l->pieces[mid];
        if (p->off + p->len <= off)
            lo = mid + 1;
        else if (p->off > off)
            hi = mid;
        else
            return p;
    }
    return NULL;
}

/* ------------------------------------------------------------ public: the bytes */

void *spc_heap_payload_span(struct spc_heap *heap, uint64_t offset, size_t *len)
{
    const struct spci_piece *p = heap->layout ? spci_layout_find(heap->layout, offset) : NULL;
    if (!p) {
        *len = 0;
        return NULL;
    }
    heap->layout->written = true;
    size_t in = (size_t)(offset - p->off);
    *len = p->len - in;
    return heap->layout->buf + p->pos + in;
}

/* Whether every byte of [offset, offset + len) is reserved. */
static bool all_reserved(const struct spci_layout *l, uint64_t offset, size_t len)
{
    if (len == 0)
        return true;
    if (!l || offset + len < offset)
        return false;
    const struct spci_piece *p = spci_layout_find(l, offset);
    if (!p)
        return false;
    size_t k = (size_t)(p - l->pieces);
    uint64_t end = offset + len, reach = p->off + p->len;
    /* Pieces are in order; reserved bytes are gap-free exactly where pieces abut. */
    while (reach < end && ++k < l->n_pieces && l->pieces[k].off == reach)
        reach += l->pieces[k].len;
    return reach >= end;
}

int spc_heap_payload_write(struct spc_heap *heap, uint64_t offset, const void *src, size_t len)
{
    if (!src && len > 0)
        return -EINVAL;
    if (!all_reserved(heap->layout, offset, len))
        return -ERANGE;
    const uint8_t *in = src;
    while (len > 0) {
        size_t n;
        uint8_t *dst = spc_heap_payload_span(heap, offset, &n);
        if (n > len)
            n = len;
        memcpy(dst, in, n);
        in += n;
        offset += n;
        len -= n;
    }
    return 0;
}

int spc_heap_payload_read(const struct spc_heap *heap, uint64_t offset, void *dst, size_t len)
{
    if (!dst && len > 0)
        return -EINVAL;
    if (!all_reserved(heap->layout, offset, len))
        return -ERANGE;
    uint8_t *out = dst;
    while (len > 0) {
        const struct spci_piece *p = spci_layout_find(heap->layout, offset);
        size_t in = (size_t)(offset - p->off), n = p->len - in;
        if (n > len)
            n = len;
        memcpy(out, heap->layout->buf + p->pos + in, n);
        out += n;
        offset += n;
        len -= n;
    }
    return 0;
}

size_t spc_heap_packets_in_place(const struct spc_heap *heap, size_t max_packet_size)
{
    if (!heap->layout || spc_heap_validate(heap, 0, max_packet_size) < 0)
        return 0;
    struct spc_packetizer pz;
    spci_plan_init(&pz, heap, 0, max_packet_size);
    struct spci_cut cut;
    size_t n = 0, cursor = 0;
    while (spci_plan_next(&pz, &cut))
        if (spci_layout_room(heap->layout, &cursor, cut.offset, cut.len, spci_cut_header_len(&cut)))
            n++;
    return n;
}
