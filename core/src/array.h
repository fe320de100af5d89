/* Core-internal: growing a malloc'd array (array.c). */
#ifndef SPCI_ARRAY_H
#define SPCI_ARRAY_H

#include <stddef.h>

/* Makes *arr (of *cap elements of elem bytes) hold at least need elements: the capacity
 * doubles from 8 as needed, so appends are amortised O(1). *arr and *cap change only on
 * success. Errors: -ENOMEM (allocation failed or the size overflows). */
int spci_grow(void **arr, size_t *cap, size_t need, size_t elem);

#endif
