#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "heap_layout.h"
#include "heap_memory.h"

int spc_heap_create(struct spc_heap **out, const struct spc_flavour *flavour)
{
    struct spc_flavour f = flavour ? *flavour : SPC_FLAVOUR_DEFAULT;
    int rc = spc_flavour_check(&f);
    if (rc < 0)
        return rc;
    struct spc_heap *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->flavour = f;
    *out = h;
    return 0;
}

void spc_heap_clear(struct spc_heap *heap)
{
    for (size_t i = 0; i < heap->n_owned; i++) {
        if (heap->owned[i].free_fn)
            heap->owned[i].free_fn(heap->owned[i].buf);
        else
            free(heap->owned[i].buf);
    }
    heap->n_owned = 0;
    spci_layout_destroy(heap->layout);
    heap->layout = NULL;
    heap->n_items = 0;
    heap->payload = 0;
}

void spc_heap_destroy(struct spc_heap *heap)
{
    if (!heap)
        return;
    spc_heap_clear(heap);
    free(heap->items);
    free(heap->owned);
    free(heap);
}

const struct spc_flavour *spc_heap_flavour(const struct spc_heap *heap)
{
    return &heap->flavour;
}

/* IDs 0-4 frame the packet itself and cannot be user items. */
static int check_id(const struct spc_heap *heap, uint64_t id)
{
    if (id <= SPC_ID_PAYLOAD_LENGTH || id > spc_flavour_max_id(&heap->flavour))
        return -SPC_EITEM_ID;
    return 0;
}

static int push(struct spc_heap *heap, const struct spci_item *item)
{
    int rc = spci_grow((void **)&heap->items, &heap->cap_items, heap->n_items + 1, sizeof(*item));
    if (rc < 0)
        return rc;
    heap->items[heap->n_items++] = *item;
    return 0;
}

int spc_heap_add_item(struct spc_heap *heap, uint64_t id, const void *data, size_t len,
                      bool allow_immediate)
{
    int rc = check_id(heap, id);
    if (rc < 0)
        return rc;
    if (!data && len > 0)
        return -EINVAL;
    struct spci_item item = {.id = id, .data = data, .len = len};
    if (allow_immediate && len <= heap->flavour.heap_address_bits / 8) {
        item.kind = SPCI_ITEM_IMM_BUF;
    } else {
        if (len > spc_flavour_max_value(&heap->flavour) - heap->payload)
            return -SPC_EHEAP_TOO_LARGE;
        item.kind = SPCI_ITEM_ADDRESSED;
        item.value = heap->payload;
    }
    rc = push(heap, &item);
    if (rc == 0 && item.kind == SPCI_ITEM_ADDRESSED)
        heap->payload += len;
    return rc;
}

int spc_heap_reserve_item(struct spc_heap *heap, uint64_t id, size_t len, size_t max_packet_size)
{
    int rc = check_id(heap, id);
    if (rc < 0)
        return rc;
    if (len > spc_flavour_max_value(&heap->flavour) - heap->payload)
        return -SPC_EHEAP_TOO_LARGE;
    struct spci_item item = {.id = id, .kind = SPCI_ITEM_RESERVED, .value = heap->payload,
                             .len = len};
    rc = push(heap, &item);
    if (rc < 0)
        return rc;
    heap->payload += len;
    rc = spc_heap_lay_out(heap, max_packet_size);
    if (rc < 0) {
        heap->n_items--;
        heap->payload -= len;
    }
    return rc;
}

int spc_heap_lay_out(struct spc_heap *heap, size_t max_packet_size)
{
    int rc = spc_heap_validate(heap, 0, max_packet_size);
    if (rc < 0)
        return rc;
    bool reserved = false;
    for (size_t i = 0; i < heap->n_items && !reserved; i++)
        reserved = heap->items[i].kind == SPCI_ITEM_RESERVED;
    if (!reserved)
        return 0;
    struct spci_layout *l;
    rc = spci_layout_create(&l, heap, max_packet_size, heap->layout);
    if (rc < 0)
        return rc;
    spci_layout_destroy(heap->layout);
    heap->layout = l;
    return 0;
}

int spc_heap_add_inline(struct spc_heap *heap, uint64_t id, uint64_t value)
{
    int rc = check_id(heap, id);
    if (rc < 0)
        return rc;
    if (value > spc_flavour_max_value(&heap->flavour))
        return -SPC_EIMMEDIATE_WIDTH;
    struct spci_item item = {.id = id, .kind = SPCI_ITEM_INLINE, .value = value};
    return push(heap, &item);
}

int spc_heap_adopt(struct spc_heap *heap, void *buf, void (*free_fn)(void *))
{
    int rc = spci_grow((void **)&heap->owned, &heap->cap_owned, heap->n_owned + 1, sizeof(*heap->owned));
    if (rc < 0)
        return rc;
    heap->owned[heap->n_owned++] = (struct spci_owned){buf, free_fn};
    return 0;
}

int spc_heap_add_descriptor(struct spc_heap *heap, const struct spc_descriptor *d)
{
    uint8_t *enc;
    size_t len;
    int rc = spc_descriptor_encode(d, &heap->flavour, &enc, &len);
    if (rc < 0)
        return rc;
    if (len > spc_flavour_max_value(&heap->flavour) - heap->payload) {
        free(enc);
        return -SPC_EHEAP_TOO_LARGE;
    }
    rc = spc_heap_adopt(heap, enc, free);
    if (rc < 0) {
        free(enc);
        return rc;
    }
    struct spci_item item = {
        .id = SPC_ID_DESCRIPTOR, .kind = SPCI_ITEM_ADDRESSED, .value = heap->payload, .data = enc, .len = len};
    rc = push(heap, &item);
    if (rc < 0) {
        /* enc stays adopted: freed with the heap. */
        return rc;
    }
    heap->payload += len;
    return 0;
}

int spc_heap_add_start(struct spc_heap *heap)
{
    return spc_heap_add_inline(heap, SPC_ID_STREAM_CTRL, SPC_CTRL_START);
}

int spc_heap_add_end(struct spc_heap *heap)
{
    return spc_heap_add_inline(heap, SPC_ID_STREAM_CTRL, SPC_CTRL_STOP);
}

void spc_heap_set_repeat_pointers(struct spc_heap *heap, bool repeat)
{
    heap->repeat_pointers = repeat;
}

bool spc_heap_repeat_pointers(const struct spc_heap *heap)
{
    return heap->repeat_pointers;
}

size_t spc_heap_n_items(const struct spc_heap *heap)
{
    return heap->n_items;
}

uint64_t spc_heap_payload_size(const struct spc_heap *heap)
{
    return heap->payload;
}

bool spci_heap_references(const struct spc_heap *heap, uintptr_t start, uintptr_t end)
{
    for (size_t i = 0; i < heap->n_items; i++) {
        const struct spci_item *it = &heap->items[i];
        uintptr_t a = (uintptr_t)it->data;
        if (it->data && it->len && a < end && a + it->len > start)
            return true;
    }
    uintptr_t a = heap->layout ? (uintptr_t)heap->layout->buf : 0;
    return heap->layout && heap->layout->size && a < end && a + heap->layout->size > start;
}

struct spci_layout *spci_heap_layout_for(const struct spc_heap *heap, size_t max_packet_size)
{
    if (!heap->layout || heap->layout->mps != (max_packet_size & ~(size_t)7))
        return NULL;
    return heap->layout;
}
