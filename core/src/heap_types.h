/* The heap's struct and item kinds (core-internal, types only): shared by heap.c, the
 * packet plan, the packetizer and the payload layout. */
#ifndef SPCI_HEAP_TYPES_H
#define SPCI_HEAP_TYPES_H

#include <stdbool.h>

#include "speadcast/wire.h"

/* RESERVED: an addressed item whose bytes live in the heap's payload layout (heap_layout.h)
 * instead of borrowed memory. */
enum spci_item_kind { SPCI_ITEM_INLINE, SPCI_ITEM_IMM_BUF, SPCI_ITEM_ADDRESSED, SPCI_ITEM_RESERVED };

static inline bool spci_item_addressed(enum spci_item_kind k)
{
    return k == SPCI_ITEM_ADDRESSED || k == SPCI_ITEM_RESERVED;
}

struct spci_item {
    uint64_t id;
    enum spci_item_kind kind;
    uint64_t value;      /* INLINE: the value; ADDRESSED: offset in the payload */
    const uint8_t *data; /* IMM_BUF and ADDRESSED: borrowed (or adopted) memory; NULL for
                            RESERVED */
    size_t len;
};

struct spci_owned {
    void *buf;
    void (*free_fn)(void *);
};

struct spci_layout;

/* Invariant: payload == sum of len over addressed (ADDRESSED and RESERVED) items, and
 * each addressed item's value is the sum of the lengths of the addressed items before
 * it. layout is NULL exactly when no item is RESERVED; it is owned by the heap. */
struct spc_heap {
    struct spc_flavour flavour;
    bool repeat_pointers;
    struct spci_item *items;
    size_t n_items, cap_items;
    uint64_t payload;
    struct spci_owned *owned;
    size_t n_owned, cap_owned;
    struct spci_layout *layout;
};

#endif
