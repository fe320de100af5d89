/* The descriptors speadcast-recv keeps (the latest for each item ID) to name items in
 * its output and to size the --verify items. */
#include <stdlib.h>

#include "recv.h"

const struct spc_descriptor_info *spct_rx_find_desc(const struct spct_rx *rx, uint64_t id)
{
    for (size_t i = 0; i < rx->n_desc; i++)
        if (rx->desc[i].id == id)
            return rx->desc[i].info;
    return NULL;
}

void spct_rx_keep_desc(struct spct_rx *rx, struct spc_descriptor_info *info)
{
    for (size_t i = 0; i < rx->n_desc; i++)
        if (rx->desc[i].id == info->id) {
            spc_descriptor_info_free(rx->desc[i].info);
            rx->desc[i].info = info;
            return;
        }
    struct spct_rx_described *d = realloc(rx->desc, (rx->n_desc + 1) * sizeof *d);
    if (!d) {
        spc_descriptor_info_free(info);
        return;
    }
    rx->desc = d;
    rx->desc[rx->n_desc++] = (struct spct_rx_described){info->id, info};
}


void spct_rx_free_descs(struct spct_rx *rx)
{
    for (size_t i = 0; i < rx->n_desc; i++)
        spc_descriptor_info_free(rx->desc[i].info);
    free(rx->desc);
    rx->desc = NULL;
    rx->n_desc = 0;
}
