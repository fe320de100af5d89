/* libFuzzer target for the decoder: the input is read as a packet stream, as one packet
 * (added twice), as its packets in reverse order, and as a descriptor value. Every heap
 * that comes out is checked against its own invariants, its item bytes are read (so the
 * sanitizers see any out-of-bounds pointer) and each item 5 is parsed as a descriptor.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/decoder.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static volatile uint8_t sink;

static void check_rc(int rc)
{
    CHECK(rc == 0 || rc == -SPC_EBAD_MAGIC || rc == -SPC_EBAD_VERSION || rc == -SPC_EBAD_WIDTHS ||
          rc == -SPC_ETRUNCATED || rc == -SPC_EMISSING_FIELD || rc == -SPC_EBAD_OFFSET ||
          rc == -SPC_EINCONSISTENT || rc == -SPC_EHEAP_LIMIT || rc == -SPC_EBAD_POINTER);
}

static void touch(const uint8_t *p, size_t n)
{
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= p[i];
    sink = x;
}

static void check_descriptor(const struct spc_decoded_item *it, const struct spc_flavour *f)
{
    struct spc_descriptor_info *d = NULL;
    int rc = spc_descriptor_parse(it, f, &d);
    CHECK(rc == 0 || rc == -SPC_EBAD_DESCRIPTOR);
    CHECK((rc == 0) == (d != NULL));
    if (!d)
        return;
    CHECK(d->name && d->description && d->id != 0);
    touch((const uint8_t *)d->name, strlen(d->name));
    touch((const uint8_t *)d->description, strlen(d->description));
    for (size_t i = 0; i < d->n_dims; i++)
        CHECK(d->shape[i] >= 0 || d->shape[i] == SPC_DIM_VARIABLE);
    for (size_t i = 0; i < d->n_format; i++)
        CHECK(d->format[i].bits > 0);
    CHECK((d->dtype_header == NULL) == (d->dtype == NULL));
    if (d->dtype)
        touch((const uint8_t *)d->dtype, strlen(d->dtype));
    for (size_t i = 0; i < d->dtype_n_dims; i++)
        CHECK(d->dtype_shape[i] >= 0);
    spc_descriptor_info_free(d);
}

static void drain(struct spc_decoder *dec, size_t max_heap)
{
    struct spc_decoded_heap *h;
    while (spc_decoder_pop(dec, &h) == 1) {
        CHECK(h->payload != NULL);
        CHECK(h->heap_size == UINT64_MAX || h->heap_size <= max_heap);
        CHECK(h->received <= max_heap);
        CHECK(!h->complete || h->received == h->heap_size);
        CHECK(h->n_items == 0 || h->items != NULL);
        unsigned vbytes = h->flavour.heap_address_bits / 8;
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            CHECK(it->id != 0 && (it->id < 1 || it->id > 4));
            if (it->immediate) {
                CHECK(it->len == vbytes);
            } else {
                CHECK(it->data == h->payload + it->value);
                CHECK(it->value + it->len <= max_heap);
                if (h->heap_size != UINT64_MAX)
                    CHECK(it->value + it->len <= h->heap_size);
            }
            touch(it->data, it->len);
            if (it->id == SPC_ID_DESCRIPTOR)
                check_descriptor(it, &h->flavour);
        }
        spc_decoded_heap_free(h);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spc_packet_info pi;
    int rc = spc_packet_parse(data, size, &pi);
    check_rc(rc);
    if (rc == 0)
        CHECK(pi.packet_size <= size && pi.payload + pi.payload_length <= data + size);

    /* As a stream, skipping packets that parse but are refused. */
    const size_t big = 1 << 16;
    struct spc_decoder_config cfg = {.struct_size = sizeof cfg, .max_heap_size = big, .max_live_heaps = 4,
                                     .bug_compat = size ? data[size - 1] & 7u : 0};
    struct spc_decoder *dec;
    CHECK(spc_decoder_create(&dec, &cfg) == 0);
    size_t off = 0;
    check_rc(spc_decoder_add_stream(dec, data, size, &off));
    CHECK(off <= size);
    while (off < size) {
        size_t used;
        check_rc(spc_decoder_add_packet(dec, data + off, size - off, &used));
        if (used == 0)
            break; /* unparseable: the rest cannot be framed */
        off += used;
        drain(dec, big);
    }
    drain(dec, big);
    spc_decoder_flush(dec);
    drain(dec, big);
    spc_decoder_destroy(dec);

    /* Small limits: the whole input as one packet, twice, then its packets reversed. */
    const size_t small = 512;
    struct spc_decoder_config scfg = {.struct_size = sizeof scfg, .max_heap_size = small, .max_live_heaps = 2,
                                      .bug_compat = 7};
    CHECK(spc_decoder_create(&dec, &scfg) == 0);
    check_rc(spc_decoder_add_packet(dec, data, size, NULL));
    check_rc(spc_decoder_add_packet(dec, data, size, NULL));
    drain(dec, small);
    size_t starts[64], lens[64], n = 0;
    off = 0;
    while (n < 64 && off < size && spc_packet_parse(data + off, size - off, &pi) == 0) {
        starts[n] = off;
        lens[n++] = pi.packet_size;
        off += pi.packet_size;
    }
    while (n-- > 0) {
        check_rc(spc_decoder_add_packet(dec, data + starts[n], lens[n], NULL));
        drain(dec, small);
    }
    spc_decoder_flush(dec);
    drain(dec, small);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    CHECK(st.heaps_complete + st.heaps_incomplete <= st.packets);
    spc_decoder_destroy(dec);

    /* As a descriptor value, in each bug_compat mode that changes field widths. */
    struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, data, size};
    for (unsigned bc = 0; bc <= 7; bc += 3) {
        struct spc_flavour f = {40, bc};
        check_descriptor(&it, &f);
    }
    return 0;
}
