/* The descriptors speadcast-recv keeps (the latest for each item ID) to name items in
 * its output and to size the --verify items: an open-addressing hash table keyed by ID
 * (linear probing, at most half full), so a flood of descriptors costs linear time, and
 * at most --max-descriptors IDs are kept (new IDs beyond that are counted, not kept). */
#include <stdlib.h>

#include "recv.h"

static size_t slot_of(uint64_t id, size_t mask)
{
    id ^= id >> 33; /* the murmur3 finaliser: item IDs are often consecutive */
    id *= UINT64_C(0xff51afd7ed558ccd);
    id ^= id >> 33;
    return (size_t)id & mask;
}

const struct spc_descriptor_info *spct_rx_find_desc(const struct spct_rx *rx, uint64_t id)
{
    if (!rx->desc_cap)
        return NULL;
    size_t mask = rx->desc_cap - 1;
    for (size_t i = slot_of(id, mask);; i = (i + 1) & mask) {
        const struct spc_descriptor_info *d = rx->desc[i];
        if (!d || d->id == id)
            return d;
    }
}

static int grow(struct spct_rx *rx)
{
    size_t cap = rx->desc_cap ? rx->desc_cap * 2 : 64;
    struct spc_descriptor_info **t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < rx->desc_cap; i++) {
        struct spc_descriptor_info *d = rx->desc[i];
        if (!d)
            continue;
        size_t j = slot_of(d->id, cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = d;
    }
    free(rx->desc);
    rx->desc = t;
    rx->desc_cap = cap;
    return 0;
}

void spct_rx_keep_desc(struct spct_rx *rx, struct spc_descriptor_info *info)
{
    if (rx->desc_cap) {
        size_t mask = rx->desc_cap - 1;
        for (size_t i = slot_of(info->id, mask); rx->desc[i]; i = (i + 1) & mask)
            if (rx->desc[i]->id == info->id) {
                spc_descriptor_info_free(rx->desc[i]);
                rx->desc[i] = info;
                return;
            }
    }
    if (rx->n_desc >= rx->o->max_descriptors ||
        ((rx->n_desc + 1) * 2 > rx->desc_cap && grow(rx) < 0)) {
        rx->r.descriptors_dropped++;
        spc_descriptor_info_free(info);
        return;
    }
    size_t mask = rx->desc_cap - 1, i = slot_of(info->id, mask);
    while (rx->desc[i])
        i = (i + 1) & mask;
    rx->desc[i] = info;
    rx->n_desc++;
}

void spct_rx_free_descs(struct spct_rx *rx)
{
    for (size_t i = 0; i < rx->desc_cap; i++)
        spc_descriptor_info_free(rx->desc[i]);
    free(rx->desc);
    rx->desc = NULL;
    rx->desc_cap = rx->n_desc = 0;
}
