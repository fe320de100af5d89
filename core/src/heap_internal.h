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

#endif
