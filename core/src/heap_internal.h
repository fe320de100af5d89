/* Heap layout shared by heap.c and packetizer.c (core-internal). */
#ifndef SPCI_HEAP_INTERNAL_H
#define SPCI_HEAP_INTERNAL_H

#include "speadcast/wire.h"

enum spci_item_kind { SPCI_ITEM_INLINE, SPCI_ITEM_IMM_BUF, SPCI_ITEM_ADDRESSED };

struct spci_item {
    uint64_t id;
    enum spci_item_kind kind;
    uint64_t value;      /* INLINE: the value; ADDRESSED: offset in the payload */
    const uint8_t *data; /* IMM_BUF and ADDRESSED: borrowed (or adopted) memory */
    size_t len;
};

struct spci_owned {
    void *buf;
    void (*free_fn)(void *);
};

/* Invariant: payload == sum of len over ADDRESSED items, and each ADDRESSED item's value
 * is the sum of the lengths of the ADDRESSED items before it. */
struct spc_heap {
    struct spc_flavour flavour;
    bool repeat_pointers;
    struct spci_item *items;
    size_t n_items, cap_items;
    uint64_t payload;
    struct spci_owned *owned;
    size_t n_owned, cap_owned;
};

/* Big-endian store of the low `bytes` bytes of v. */
static inline void spci_put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static inline uint64_t spci_item_pointer(const struct spc_flavour *f, bool immediate, uint64_t id,
                                         uint64_t value)
{
    return (immediate ? UINT64_C(1) << 63 : 0) | (id << f->heap_address_bits) | value;
}

/* Packet header: magic, version, widths, pointer count. */
static inline void spci_put_header(uint8_t *p, const struct spc_flavour *f, unsigned n_pointers)
{
    p[0] = 0x53;
    p[1] = 0x04;
    p[2] = (uint8_t)(8 - f->heap_address_bits / 8);
    p[3] = (uint8_t)(f->heap_address_bits / 8);
    p[4] = 0;
    p[5] = 0;
    p[6] = (uint8_t)(n_pointers >> 8);
    p[7] = (uint8_t)n_pointers;
}

#endif
