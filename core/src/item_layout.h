/* Core-internal: the layout of an item and its value buffer, shared by item.c (which owns
 * items), dtype.c (which fills the fields) and pack.c (which packs values by them).
 * Header-only. */
#ifndef SPCI_ITEM_LAYOUT_H
#define SPCI_ITEM_LAYOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "item_error.h"
#include "speadcast/item.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SPCI_HOST_LITTLE false
#else
#define SPCI_HOST_LITTLE true
#endif

_Static_assert(sizeof(bool) == 1, "bool values are referenced as 1-byte wire booleans");

/* What a field of an element holds. OPAQUE fields (dtype S5, U3, V4, f2, ...) can only be
 * filled with raw bytes. */
enum spci_fkind { SPCI_F_UINT, SPCI_F_INT, SPCI_F_FLOAT, SPCI_F_COMPLEX, SPCI_F_BOOL, SPCI_F_CHAR, SPCI_F_OPAQUE };

struct spci_field {
    enum spci_fkind kind;
    uint32_t bits;       /* the whole field (a complex's two parts together) */
    uint64_t bit_offset; /* from the element's first bit */
    bool little;         /* little-endian bytes (dtype '<'); else big-endian / MSB first */
    char label[12];      /* how errors name the field: "u4", "<u2" */
};

/* A reference-counted value buffer. Shared by the item and the heaps it was added to. */
struct spci_value {
    atomic_size_t refs;
    size_t len;
    uint8_t data[];
};

struct spc_item {
    uint64_t id;
    uint64_t serial; /* unique per item ever created: tells a replacement from its original */
    char *name;
    char *description;
    int64_t *shape;
    size_t n_dims;
    int var_dim; /* index of the variable dimension, or -1 */
    struct spc_format_field *format;
    size_t n_format;
    char *dtype; /* normal form */
    bool fortran_order;
    struct spci_field *fields;
    size_t n_fields;
    uint64_t elem_bits;
    uint64_t fixed_elems; /* product of the fixed dimensions */
    bool allow_immediate;

    uint64_t version;
    const uint8_t *data; /* the value's bytes: block->data, or the caller's memory */
    size_t len;
    struct spci_value *block; /* NULL when data references the caller's memory */
    char last_error[SPCI_ITEM_ERROR_MAX]; /* detail of the latest failed call on the item */
};

#endif
