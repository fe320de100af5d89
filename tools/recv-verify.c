/* speadcast-recv --verify: the heap cnts the sender's sequence promises, and the data
 * pattern of each heap.
 *
 * The sender numbers its heaps first, first + 1, ... (--first-cnt, 1 by default) and
 * deals them round-robin over its substreams; a receiver of substream i of n
 * (--substream i/n) expects cnts first + i, first + i + n, ... Position k of the share is
 * cnt first + i + k n; two bitmaps over positions say which arrived and which arrived
 * complete. The lowest stop heap cnt ends the sequence (the sender's stop heaps follow
 * its last data heap), so losses at both ends are counted; without a stop heap the last
 * data heap received ends it (and the run did not finish anyway).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "recv.h"

/* Positions tracked (16 MiB per bitmap); heaps further out are counted unexpected. */
#define MAX_POSITIONS (UINT64_C(1) << 27)

static bool bit(const uint8_t *map, uint64_t k)
{
    return map[k / 8] >> (k % 8) & 1;
}

static void set_bit(uint8_t *map, uint64_t k)
{
    map[k / 8] |= (uint8_t)(1u << (k % 8));
}

static int grow_maps(struct spct_rx_seq *q, uint64_t k)
{
    if (k < q->cap)
        return 0;
    uint64_t cap = q->cap ? q->cap : 4096;
    while (cap <= k)
        cap *= 2;
    if (cap > MAX_POSITIONS)
        cap = MAX_POSITIONS;
    uint8_t *seen = realloc(q->seen, (size_t)(cap / 8));
    if (!seen)
        return -1;
    q->seen = seen;
    uint8_t *complete = realloc(q->complete, (size_t)(cap / 8));
    if (!complete)
        return -1;
    q->complete = complete;
    memset(q->seen + q->cap / 8, 0, (size_t)((cap - q->cap) / 8));
    memset(q->complete + q->cap / 8, 0, (size_t)((cap - q->cap) / 8));
    q->cap = cap;
    return 0;
}

void spct_rx_seq_init(struct spct_rx_seq *q, uint64_t first, uint64_t index, uint64_t count)
{
    memset(q, 0, sizeof *q);
    q->first = first;
    q->index = index;
    q->count = count ? count : 1;
    q->end = UINT64_MAX;
}

void spct_rx_seq_free(struct spct_rx_seq *q)
{
    free(q->seen);
    free(q->complete);
    q->seen = q->complete = NULL;
    q->cap = 0;
}

void spct_rx_seq_stop(struct spct_rx_seq *q, uint64_t cnt)
{
    if (cnt < q->end)
        q->end = cnt;
}

enum spct_rx_seq_kind spct_rx_seq_data(struct spct_rx_seq *q, uint64_t cnt, bool complete)
{
    uint64_t base = q->first + q->index;
    if (cnt < base || (cnt - base) % q->count != 0 || (cnt - base) / q->count >= MAX_POSITIONS)
        return SEQ_UNEXPECTED;
    uint64_t k = (cnt - base) / q->count;
    if (grow_maps(q, k) < 0)
        return SEQ_UNEXPECTED;
    if (!complete && bit(q->complete, k))
        return SEQ_LATE_PACKETS;
    if (bit(q->seen, k))
        return SEQ_DUPLICATE;
    set_bit(q->seen, k);
    if (complete)
        set_bit(q->complete, k);
    if (k + 1 > q->top)
        q->top = k + 1;
    return SEQ_NEW;
}

void spct_rx_seq_count(const struct spct_rx_seq *q, uint64_t *missing, uint64_t *beyond)
{
    uint64_t base = q->first + q->index;
    /* Positions before the end: all of them when a stop heap came, else up to the last
     * one received. */
    uint64_t n = q->top;
    if (q->end != UINT64_MAX)
        n = q->end <= base ? 0 : (q->end - base + q->count - 1) / q->count;
    uint64_t got = 0, after = 0;
    for (uint64_t k = 0; k < q->top; k++)
        if (bit(q->seen, k)) {
            if (k < n)
                got++;
            else
                after++;
        }
    *missing = n - got;
    *beyond = after;
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
    uint64_t base = (h->cnt - rx->seq.first) * k * elements;
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

