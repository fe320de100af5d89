/* Where a heap's packets cut it (SPEC §1 "Splitting a heap into packets"): each packet's
 * pointer range and payload range, without touching any item's bytes. Shared by the
 * packetizer (which then writes the packets) and the payload layout (which places item
 * bytes where those packets will want them). Core-internal. */
#ifndef SPCI_PACKET_PLAN_H
#define SPCI_PACKET_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "speadcast/wire.h"

/* One packet's cut: pointers [first, first + n) of the heap's list (n counts the user
 * pointers only), and payload bytes [offset, offset + len). */
struct spci_cut {
    size_t first, n;
    uint64_t offset;
    size_t len;
};

/* Header and pointer bytes of a packet that carries n user pointers. */
static inline size_t spci_cut_header_len(const struct spci_cut *c)
{
    return SPC_PACKET_PREFIX + 8 * c->n;
}

/* Resets pz to the start of the heap's walk (after spc_heap_validate passed): every
 * field zero except the plan's. */
void spci_plan_init(struct spc_packetizer *pz, const struct spc_heap *heap, uint64_t cnt,
                    size_t max_packet_size);
/* The next packet's cut; advances the walk. Returns 0 when the walk is over. */
int spci_plan_next(struct spc_packetizer *pz, struct spci_cut *cut);

#endif
