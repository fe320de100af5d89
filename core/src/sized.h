/* Core-internal: reading and writing the public sized structs (struct_size first, fields
 * only appended; see speadcast.h). */
#ifndef SPCI_SIZED_H
#define SPCI_SIZED_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies a caller's struct into *dst (dst_size bytes, prefilled with the defaults): the
 * fields its struct_size covers replace the defaults; dst keeps its own struct_size.
 * -EINVAL when src's struct_size does not even cover struct_size. */
static inline int spci_sized_in(void *dst, const void *src, size_t dst_size)
{
    uint32_t n;
    memcpy(&n, src, sizeof n);
    if (n < sizeof n)
        return -EINVAL;
    if (n > dst_size)
        n = (uint32_t)dst_size;
    memcpy((char *)dst + sizeof n, (const char *)src + sizeof n, n - sizeof n);
    return 0;
}

/* Copies the fields of *src (src_size bytes) that the caller's struct dst has room for,
 * as its struct_size says; dst's struct_size is left as the caller set it. */
static inline void spci_sized_out(void *dst, const void *src, size_t src_size)
{
    uint32_t n;
    memcpy(&n, dst, sizeof n);
    if (n > src_size)
        n = (uint32_t)src_size;
    if (n > sizeof n)
        memcpy((char *)dst + sizeof n, (const char *)src + sizeof n, n - sizeof n);
}

#endif
