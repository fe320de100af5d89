/* Core-internal: values packed from the caller's numbers (pack.c). */
#ifndef SPCI_PACK_H
#define SPCI_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "item_layout.h"

/* The value's layout in the caller's memory, resolved. */
struct spci_source {
    const struct spc_array *a;
    size_t shape[SPC_ITEM_MAX_DIMS];
    ptrdiff_t strides[SPC_ITEM_MAX_DIMS];
    struct spc_field_src fields[1]; /* used when a->n_fields == 0 */
    const struct spc_field_src *f;
    uint64_t n_elems;
    size_t len; /* wire bytes */
};

/* Checks array a against the item's shape and fields and resolves it into *s.
 * Errors (with spci_item_fail detail): -EINVAL, -EOVERFLOW. */
int spci_pack_source(const struct spc_item *it, const struct spc_array *a, struct spci_source *s);
/* Whether the caller's memory already is the wire layout (it can be referenced). */
bool spci_pack_is_wire_layout(const struct spc_item *it, const struct spci_source *s);
/* Packs the numbers into dst (zeroed, s->len bytes), elements in the item's order; with
 * dst NULL only checks that every number fits. Errors: -ERANGE, -EINVAL. */
int spci_pack(const struct spc_item *it, const struct spci_source *s, uint8_t *dst);

#endif
