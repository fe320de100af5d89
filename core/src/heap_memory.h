/* What the core asks of a heap's memory without seeing the heap's layout (core-internal;
 * implemented in heap.c). */
#ifndef SPCI_HEAP_MEMORY_H
#define SPCI_HEAP_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "speadcast/speadcast.h"

/* Whether any item of heap references data in [start, end) (borrowed or adopted item
 * data; inline values reference nothing). */
bool spci_heap_references(const struct spc_heap *heap, uintptr_t start, uintptr_t end);

/* The heap's payload layout when it is laid out for max_packet_size, else NULL. */
struct spci_layout *spci_heap_layout_for(const struct spc_heap *heap, size_t max_packet_size);

#endif
