/* Core-internal: writing SPEAD's wire fields (SPEC §1), for every file that builds packet
 * bytes (packetizer.c, descriptor.c) without needing the heap's layout. Header-only. */
#ifndef SPCI_WIRE_INTERNAL_H
#define SPCI_WIRE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "speadcast/wire.h"

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
