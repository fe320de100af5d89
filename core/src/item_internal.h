/* Core-internal: what item groups (itemgroup.c) use of items (item.c). */
#ifndef SPCI_ITEM_INTERNAL_H
#define SPCI_ITEM_INTERNAL_H

#include "error_internal.h"
#include "item_layout.h"

/* Creates an item from *d with the given id (not checked against 0: the group resolves
 * SPC_ITEM_AUTO_ID first). */
int spci_item_new(const struct spc_descriptor *d, uint64_t id, struct spc_item **out);
/* Whether two items would send the same descriptor, the ID aside. */
bool spci_item_same_descriptor(const struct spc_item *a, const struct spc_item *b);

#endif
