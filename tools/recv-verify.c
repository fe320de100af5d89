/* speadcast-recv --verify: the data pattern of each heap and the heap cnts seen. */
#include <inttypes.h>

#include "recv.h"

void spct_rx_note_cnt(struct spct_rx *rx, uint64_t cnt)
{
    if (rx->n_cnts == 0 || cnt < rx->cnt_min)
        rx->cnt_min = cnt;
    if (rx->n_cnts == 0 || cnt > rx->cnt_max)
        rx->cnt_max = cnt;
    rx->n_cnts++;
}

/* Heaps missing from the cnt range seen (each cnt is expected once). */
uint64_t spct_rx_count_missing(const struct spct_rx *rx)
{
    if (rx->n_cnts == 0)
        return 0;
    uint64_t span = rx->cnt_max - rx->cnt_min + 1;
    return span > rx->n_cnts ? span - rx->n_cnts : 0;
}

/* Checks a heap's items 0x1000.. against the pattern. Returns 1 verified, 0 no data
 * items, -1 corrupt (a message is written to why). */
int spct_rx_verify_heap(struct spct_rx *rx, const struct spc_decoded_heap *h, char *why,
                       size_t why_len)
{
    size_t k = 0;
    uint64_t elements = UINT64_MAX;
    for (size_t i = 0; i < h->n_items; i++) {
        const struct spc_decoded_item *it = &h->items[i];
        if (it->id < RECV_FIRST_DATA_ID)
            continue;
        const struct spc_descriptor_info *d = spct_rx_find_desc(rx, it->id);
        uint64_t e;
        if (d && d->n_dims == 1 && d->shape[0] >= 0)
            e = (uint64_t)d->shape[0];
        else if (it->immediate)
            e = 1;
        else if (it->len % 4 == 0)
            e = it->len / 4;
        else {
            snprintf(why, why_len, "item 0x%" PRIx64 " has %zu bytes, not a whole number of "
                     "32-bit elements", it->id, it->len);
            return -1;
        }
        if (elements != UINT64_MAX && e != elements) {
            snprintf(why, why_len, "items differ in size (%" PRIu64 " and %" PRIu64
                     " elements)", elements, e);
            return -1;
        }
        elements = e;
        k++;
    }
    if (k == 0)
        return 0;
    uint64_t base = (h->cnt - 1) * k * elements;
    for (size_t i = 0; i < h->n_items; i++) {
        const struct spc_decoded_item *it = &h->items[i];
        if (it->id < RECV_FIRST_DATA_ID)
            continue;
        uint64_t index = it->id - RECV_FIRST_DATA_ID;
        if (index >= k) {
            snprintf(why, why_len, "item 0x%" PRIx64 " is outside 0x1000..0x%" PRIx64, it->id,
                     (uint64_t)RECV_FIRST_DATA_ID + k - 1);
            return -1;
        }
        const uint8_t *data = it->data;
        size_t len = it->len;
        if (it->immediate) {
            if (elements > 1 || len < 4 * elements) {
                snprintf(why, why_len, "item 0x%" PRIx64 " is immediate but holds %" PRIu64
                         " elements", it->id, elements);
                return -1;
            }
            data += len - 4 * elements;
            len = 4 * elements;
        }
        if (len != 4 * elements) {
            snprintf(why, why_len, "item 0x%" PRIx64 " has %zu bytes, expected %" PRIu64,
                     it->id, len, 4 * elements);
            return -1;
        }
        uint32_t got, want;
        size_t bad = spct_pattern_check(data, elements, base + index * elements, &got, &want);
        if (bad < elements) {
            snprintf(why, why_len, "item 0x%" PRIx64 " element %zu is %" PRIu32
                     ", expected %" PRIu32, it->id, bad, got, want);
            return -1;
        }
    }
    return 1;
}

