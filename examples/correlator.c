/* The pattern telescope correlators use: every dump sends a 2-D visibility array and a
 * 40-bit timestamp. One heap is built once and reused: it references the array memory
 * (zero copy) and the timestamp's value buffer, which is rewritten in place each dump.
 * Descriptors go out in their own heap every DESCRIPTOR_EVERY dumps (the heap
 * generator's descriptor_frequency).
 *
 * Streams are not part of this example yet: each heap's packets are written into a
 * memory buffer through the packetizer, then decoded back and checked.
 *
 * Build: part of the speadcast build (examples/CMakeLists.txt); runs as a ctest test. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"

#define N_CHANNELS 128
#define N_BASELINES 40
#define N_DUMPS 20
#define DESCRIPTOR_EVERY 8
#define MAX_PACKET_SIZE 1472
#define TIMESTAMP_START UINT64_C(0xfffff000) /* crosses 2^32 during the run */
#define TIMESTAMP_STEP 2048

#define ID_TIMESTAMP 0x1600
#define ID_XENG_RAW 0x1800

/* The packets of every heap sent, back to back (what a bytes stream would hold). */
struct capture {
    uint8_t *data;
    size_t len, cap;
    size_t packets;
};

static int capture_heap(struct capture *c, const struct spc_heap *heap, uint64_t cnt)
{
    struct spc_packetizer pz;
    int rc = spc_packetizer_init(&pz, heap, cnt, MAX_PACKET_SIZE);
    if (rc < 0)
        return rc;
    uint8_t scratch[MAX_PACKET_SIZE];
    struct spc_packet pkt;
    while (spc_packetizer_next(&pz, scratch, &pkt) == 1) {
        if (c->len + pkt.size > c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 1 << 16;
            while (cap < c->len + pkt.size)
                cap *= 2;
            uint8_t *n = realloc(c->data, cap);
            if (!n)
                return -ENOMEM;
            c->data = n;
            c->cap = cap;
        }
        c->len += (size_t)spc_packet_write(&pkt, c->data + c->len, c->cap - c->len);
        c->packets++;
    }
    return 0;
}

/* The visibilities of dump d: a pattern the receiving side can recompute. */
static int32_t visibility(unsigned d, unsigned chan, unsigned bl)
{
    uint32_t u = d * 1000003u + chan * 131u + bl;
    return (int32_t)(bl % 2 ? 0u - u : u);
}

/* Reports a failure; detail is the failing object's error detail (or NULL). */
static int fail_detail(const char *what, int rc, const char *detail)
{
    fprintf(stderr, "correlator: %s: %s%s%s%s\n", what, spc_strerror(rc), detail && *detail ? " (" : "",
            detail ? detail : "", detail && *detail ? ")" : "");
    return 1;
}

static int fail(const char *what, int rc)
{
    return fail_detail(what, rc, NULL);
}

/* Error detail of an item, group or generator (speadcast.h: one copy-out per object). */
static char detail[256];
#define DETAIL(fn, obj) (fn((obj), detail, sizeof detail), detail)

/* Decodes the capture and checks every heap against what was sent. */
static int verify(const struct capture *c, const struct spc_flavour *flavour)
{
    struct spc_decoder_config cfg = SPC_DECODER_CONFIG_DEFAULT;
    cfg.bug_compat = flavour->bug_compat;
    struct spc_decoder *dec;
    int rc = spc_decoder_create(&dec, &cfg);
    if (rc < 0)
        return fail("decoder", rc);
    size_t consumed;
    rc = spc_decoder_add_stream(dec, c->data, c->len, &consumed);
    if (rc < 0 || consumed != c->len) {
        spc_decoder_destroy(dec);
        return fail("decoding the capture", rc);
    }
    spc_decoder_flush(dec);
    unsigned dumps = 0, descriptor_heaps = 0, errors = 0;
    struct spc_decoded_heap *h;
    while (spc_decoder_pop(dec, &h) == 1) {
        bool has_ts = false, has_data = false;
        if (!h->complete)
            errors++;
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            if (it->id == SPC_ID_DESCRIPTOR) {
                struct spc_descriptor_info *info;
                if (spc_descriptor_parse(it, &h->flavour, &info) < 0) {
                    errors++;
                    continue;
                }
                if (descriptor_heaps == 0)
                    printf("  descriptor 0x%" PRIx64 " %-9s %s\n", info->id, info->name, info->description);
                spc_descriptor_info_free(info);
            } else if (it->id == ID_TIMESTAMP) {
                has_ts = it->immediate && it->value == TIMESTAMP_START + (uint64_t)dumps * TIMESTAMP_STEP;
            } else if (it->id == ID_XENG_RAW && it->len == N_CHANNELS * N_BASELINES * sizeof(int32_t)) {
                has_data = true;
                for (unsigned ch = 0; ch < N_CHANNELS && has_data; ch++)
                    for (unsigned bl = 0; bl < N_BASELINES && has_data; bl++) {
                        int32_t v;
                        memcpy(&v, it->data + 4 * (ch * N_BASELINES + bl), 4);
                        has_data = v == visibility(dumps, ch, bl);
                    }
            }
        }
        if (h->n_items > 0 && h->items[0].id == SPC_ID_DESCRIPTOR) {
            descriptor_heaps++;
        } else {
            if (!has_ts || !has_data) {
                fprintf(stderr, "correlator: dump %u (heap cnt %" PRIu64 ") decoded wrong\n", dumps, h->cnt);
                errors++;
            }
            dumps++;
        }
        spc_decoded_heap_free(h);
    }
    spc_decoder_destroy(dec);
    unsigned want_desc = (N_DUMPS + DESCRIPTOR_EVERY - 1) / DESCRIPTOR_EVERY;
    printf("decoded %u dumps and %u descriptor heaps back, %u errors\n", dumps, descriptor_heaps, errors);
    return errors == 0 && dumps == N_DUMPS && descriptor_heaps == want_desc ? 0 : 1;
}

int main(void)
{
    struct spc_flavour flavour;
    int rc = spc_flavour_init(&flavour, 48, 0); /* SPEAD-64-48, as MeerKAT uses */
    if (rc < 0)
        return fail("flavour", rc);

    struct spc_item_group *group;
    struct spc_heap_generator *gen;
    if ((rc = spc_item_group_create(&group)) < 0)
        return fail("item group", rc);
    if ((rc = spc_heap_generator_create(&gen, group, &flavour, DESCRIPTOR_EVERY)) < 0)
        return fail("heap generator", rc);

    static const struct spc_format_field u40[] = {{'u', 40}};
    struct spc_descriptor d = {.id = ID_TIMESTAMP, .name = "timestamp",
                               .description = "ADC sample count of the dump's first sample", .format = u40,
                               .n_format = 1};
    struct spc_item *timestamp, *xeng;
    if ((rc = spc_item_group_add(group, &d, &timestamp)) < 0)
        return fail_detail("timestamp item", rc, DETAIL(spc_item_group_last_error, group));
    static const int64_t vis_shape[] = {N_CHANNELS, N_BASELINES};
    d = (struct spc_descriptor){.id = ID_XENG_RAW, .name = "xeng_raw", .description = "visibilities, channel x baseline",
                                .shape = vis_shape, .n_dims = 2, .dtype = "<i4"};
    if ((rc = spc_item_group_add(group, &d, &xeng)) < 0)
        return fail_detail("xeng_raw item", rc, DETAIL(spc_item_group_last_error, group));

    /* The array lives here for the whole run; the heap references it. */
    static int32_t vis[N_CHANNELS][N_BASELINES];
    static const size_t vis_dims[] = {N_CHANNELS, N_BASELINES};
    struct spc_array vis_value = {.data = vis, .type = SPC_CTYPE_I32, .n_dims = 2, .shape = vis_dims};
    if ((rc = spc_item_set(xeng, &vis_value, 0)) < 0)
        return fail_detail("xeng_raw value", rc, DETAIL(spc_item_last_error, xeng));
    /* An owned 5-byte buffer that the in-place sets below rewrite. */
    if ((rc = spc_item_set_u64(timestamp, TIMESTAMP_START)) < 0)
        return fail_detail("timestamp value", rc, DETAIL(spc_item_last_error, timestamp));

    /* The reused data heap: built once, sent every dump. */
    struct spc_heap *data_heap;
    if ((rc = spc_heap_create(&data_heap, &flavour)) < 0 || (rc = spc_heap_add_item_value(data_heap, timestamp)) < 0 ||
        (rc = spc_heap_add_item_value(data_heap, xeng)) < 0)
        return fail("data heap", rc);

    struct capture cap = {0};
    uint64_t cnt = 1;
    for (unsigned dump = 0; dump < N_DUMPS; dump++) {
        /* Descriptors when the generator says they are due (every DESCRIPTOR_EVERY calls). */
        struct spc_heap *desc_heap;
        if ((rc = spc_heap_generator_get_heap(gen, &desc_heap, SPC_SELECT_STALE, SPC_SELECT_NONE)) < 0)
            return fail_detail("descriptor heap", rc, DETAIL(spc_heap_generator_last_error, gen));
        if (spc_heap_n_items(desc_heap) > 0 && (rc = capture_heap(&cap, desc_heap, cnt++)) < 0)
            return fail("sending descriptors", rc);
        spc_heap_destroy(desc_heap);

        /* New data: written into the referenced array, and the timestamp in place. */
        for (unsigned ch = 0; ch < N_CHANNELS; ch++)
            for (unsigned bl = 0; bl < N_BASELINES; bl++)
                vis[ch][bl] = visibility(dump, ch, bl);
        uint64_t ts = TIMESTAMP_START + (uint64_t)dump * TIMESTAMP_STEP;
        struct spc_array ts_value = {.data = &ts, .type = SPC_CTYPE_U64};
        if ((rc = spc_item_set(timestamp, &ts_value, SPC_SET_IN_PLACE)) < 0)
            return fail_detail("timestamp update", rc, DETAIL(spc_item_last_error, timestamp));

        /* A real stream would wait for this heap's completion before the next rewrite. */
        if ((rc = capture_heap(&cap, data_heap, cnt++)) < 0)
            return fail("sending a dump", rc);
    }
    printf("sent %u dumps of %zu bytes in %zu packets, %zu bytes in all\n", N_DUMPS, sizeof(vis), cap.packets,
           cap.len);

    int result = verify(&cap, &flavour);
    free(cap.data);
    spc_heap_destroy(data_heap);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(group);
    return result;
}
