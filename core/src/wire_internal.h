/* Core-internal: writing SPEAD's wire fields (SPEC §1), for every file that builds packet
 * bytes (packetizer.c, descriptor.c) without needing the heap's layout. Header-only. */
#ifndef SPCI_WIRE_INTERNAL_H
#define SPCI_WIRE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "speadcast/wire.h"

/* Big-endian store of the low `bytes` bytes of v. The 8-byte case (every item pointer)
 * is one byte swap and one store: it runs for every packet header. */
static inline void spci_put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (bytes == 8) {
        v = __builtin_bswap64(v);
        memcpy(p, &v, 8);
        return;
    }
#endif
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
