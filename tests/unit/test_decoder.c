/* The SPEAD decoder: packet parsing, heap reassembly, descriptor parsing, and reading back
 * every spead2 vector. Test packets are written by hand (mk_packet), never by the encoder.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "testutil.h"

#define NONE UINT64_MAX /* no heap size item */

/* ------------------------------------------------------------------ helpers */

static uint64_t imm(unsigned hab, uint64_t id, uint64_t v)
{
    return UINT64_C(1) << 63 | id << hab | v;
}

static uint64_t addr(unsigned hab, uint64_t id, uint64_t a)
{
    return id << hab | a;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Writes header + pointers + payload; returns the packet size. */
static size_t raw_packet(uint8_t *out, unsigned hab, const uint64_t *ptrs, size_t n,
                         const void *payload, size_t plen)
{
    out[0] = 0x53;
    out[1] = 4;
    out[2] = (uint8_t)(8 - hab / 8);
    out[3] = (uint8_t)(hab / 8);
    out[4] = out[5] = 0;
    out[6] = (uint8_t)(n >> 8);
    out[7] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        put64(out + 8 + 8 * i, ptrs[i]);
    if (plen)
        memcpy(out + 8 + 8 * n, payload, plen);
    return 8 + 8 * n + plen;
}

/* A packet with heap cnt, heap size (unless NONE), offset and payload length, then the
 * user pointers. */
static size_t mk_packet(uint8_t *out, unsigned hab, uint64_t cnt, uint64_t size, uint64_t off,
                        const void *payload, size_t plen, const uint64_t *user, size_t n_user)
{
    uint64_t ptrs[64];
    size_t n = 0;
    ptrs[n++] = imm(hab, SPC_ID_HEAP_CNT, cnt);
    if (size != NONE)
        ptrs[n++] = imm(hab, SPC_ID_HEAP_SIZE, size);
    ptrs[n++] = imm(hab, SPC_ID_HEAP_OFFSET, off);
    ptrs[n++] = imm(hab, SPC_ID_PAYLOAD_LENGTH, plen);
    cr_assert(n + n_user <= 64);
    for (size_t i = 0; i < n_user; i++)
        ptrs[n++] = user[i];
    return raw_packet(out, hab, ptrs, n, payload, plen);
}

static struct spc_decoder *new_decoder(size_t max_heap, size_t max_live, unsigned bug_compat)
{
    struct spc_decoder *dec;
    struct spc_decoder_config cfg = {.struct_size = sizeof cfg, .max_heap_size = max_heap, .max_live_heaps = max_live, .bug_compat = bug_compat};
    cr_assert_eq(spc_decoder_create(&dec, &cfg), 0);
    return dec;
}

static int add(struct spc_decoder *dec, const uint8_t *p, size_t len)
{
    return spc_decoder_add_packet(dec, p, len, NULL);
}

static struct spc_decoded_heap *pop(struct spc_decoder *dec)
{
    struct spc_decoded_heap *h = NULL;
    cr_assert_eq(spc_decoder_pop(dec, &h), 1, "no heap ready");
    cr_assert_not_null(h);
    return h;
}

static void expect_none_ready(struct spc_decoder *dec)
{
    struct spc_decoded_heap *h = (struct spc_decoded_heap *)1;
    cr_assert_eq(spc_decoder_pop(dec, &h), 0);
    cr_assert_null(h);
}

static void expect_item(const struct spc_decoded_item *it, uint64_t id, bool immediate,
                        const void *data, size_t len)
{
    cr_expect_eq(it->id, id, "item id %#llx, expected %#llx", (unsigned long long)it->id,
                 (unsigned long long)id);
    cr_expect_eq(it->immediate, immediate);
    cr_assert_eq(it->len, len, "item %#llx len %zu, expected %zu", (unsigned long long)id, it->len,
                 len);
    cr_expect(len == 0 || memcmp(it->data, data, len) == 0, "item %#llx bytes differ",
              (unsigned long long)id);
}

static const uint8_t DATA[64] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* ------------------------------------------------------------ packet parse */

Test(packet_parse, fields)
{
    uint8_t p[256];
    uint64_t user[] = {imm(40, 0x1000, 0x0102030405), addr(40, 0x1001, 0)};
    size_t n = mk_packet(p, 40, 7, 16, 0, DATA, 16, user, 2);
    p[n] = 0xee; /* extra bytes after the packet are allowed */
    struct spc_packet_info pi;
    cr_assert_eq(spc_packet_parse(p, n + 1, &pi), 0);
    cr_expect_eq(pi.heap_address_bits, 40);
    cr_expect_eq(pi.heap_cnt, 7);
    cr_expect_eq(pi.heap_size, 16);
    cr_expect_eq(pi.heap_offset, 0);
    cr_expect_eq(pi.payload_length, 16);
    cr_expect_eq(pi.n_pointers, 6);
    cr_expect_eq(pi.pointers, p + 8);
    cr_expect_eq(pi.payload, p + 8 + 48);
    cr_expect_eq(pi.packet_size, n);
}

Test(packet_parse, optional_size_and_offset)
{
    uint8_t p[64];
    uint64_t ptrs[] = {imm(48, 1, 0xffffffffffff), imm(48, 4, 3)};
    size_t n = raw_packet(p, 48, ptrs, 2, "abc", 3);
    struct spc_packet_info pi;
    cr_assert_eq(spc_packet_parse(p, n, &pi), 0);
    cr_expect_eq(pi.heap_address_bits, 48);
    cr_expect_eq(pi.heap_cnt, 0xffffffffffff);
    cr_expect_eq(pi.heap_size, UINT64_MAX);
    cr_expect_eq(pi.heap_offset, 0);
    cr_expect_eq(pi.payload_length, 3);
}

Test(packet_parse, every_flavour_width)
{
    for (unsigned hab = 8; hab <= 56; hab += 8) {
        uint8_t p[64];
        uint64_t user[] = {imm(hab, 0x6, 2)};
        size_t n = mk_packet(p, hab, 0x55, 1, 0, "x", 1, user, 1);
        struct spc_packet_info pi;
        cr_assert_eq(spc_packet_parse(p, n, &pi), 0, "hab %u", hab);
        cr_expect_eq(pi.heap_address_bits, hab);
        cr_expect_eq(pi.heap_cnt, 0x55);
    }
}

Test(packet_parse, bad_magic)
{
    uint8_t p[64];
    size_t n = mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    p[0] = 0x54;
    struct spc_packet_info pi;
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EBAD_MAGIC);
    cr_expect_eq(spc_packet_parse(p, 1, &pi), -SPC_EBAD_MAGIC);
}

Test(packet_parse, bad_version)
{
    uint8_t p[64];
    size_t n = mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    struct spc_packet_info pi;
    p[1] = 3;
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EBAD_VERSION);
    p[1] = 5;
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EBAD_VERSION);
}

Test(packet_parse, bad_widths)
{
    static const uint8_t bad[][2] = {{3, 4}, {4, 5}, {8, 0}, {0, 8}, {2, 7}, {1, 8}, {0, 0}};
    uint8_t p[64];
    size_t n = mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    struct spc_packet_info pi;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p[2] = bad[i][0];
        p[3] = bad[i][1];
        cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EBAD_WIDTHS, "widths %u/%u", bad[i][0],
                     bad[i][1]);
    }
}

Test(packet_parse, reserved_bytes_ignored)
{
    uint8_t p[64];
    size_t n = mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    p[4] = 0xff;
    p[5] = 0x01;
    struct spc_packet_info pi;
    cr_expect_eq(spc_packet_parse(p, n, &pi), 0);
}

Test(packet_parse, truncated_header)
{
    uint8_t p[64];
    mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    struct spc_packet_info pi;
    for (size_t len = 0; len < 8; len++)
        cr_expect_eq(spc_packet_parse(p, len, &pi), -SPC_ETRUNCATED, "len %zu", len);
    cr_expect_eq(spc_packet_parse(NULL, 0, &pi), -SPC_ETRUNCATED);
}

Test(packet_parse, truncated_pointers)
{
    uint8_t p[64];
    size_t n = mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    struct spc_packet_info pi;
    for (size_t len = 8; len < 8 + 4 * 8; len++)
        cr_expect_eq(spc_packet_parse(p, len, &pi), -SPC_ETRUNCATED, "len %zu", len);
    p[6] = 0xff; /* claims 65284+ pointers */
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_ETRUNCATED);
}

Test(packet_parse, truncated_payload)
{
    uint8_t p[128];
    size_t n = mk_packet(p, 40, 1, 10, 0, DATA, 10, NULL, 0);
    struct spc_packet_info pi;
    cr_expect_eq(spc_packet_parse(p, n - 1, &pi), -SPC_ETRUNCATED);
    cr_expect_eq(spc_packet_parse(p, n, &pi), 0);
    /* A payload length near 2^40 must not wrap any arithmetic. */
    put64(p + 8 + 3 * 8, imm(40, 4, 0xffffffffff));
    put64(p + 8 + 1 * 8, imm(40, 2, 0xffffffffff));
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_ETRUNCATED);
}

Test(packet_parse, missing_cnt)
{
    uint8_t p[64];
    uint64_t ptrs[] = {imm(40, 2, 1), imm(40, 3, 0), imm(40, 4, 1)};
    size_t n = raw_packet(p, 40, ptrs, 3, "x", 1);
    struct spc_packet_info pi;
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EMISSING_FIELD);
    /* An addressed pointer with ID 1 is not a heap cnt. */
    uint64_t ptrs2[] = {addr(40, 1, 0), imm(40, 4, 1)};
    n = raw_packet(p, 40, ptrs2, 2, "x", 1);
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EMISSING_FIELD);
}

Test(packet_parse, missing_length)
{
    uint8_t p[64];
    uint64_t ptrs[] = {imm(40, 1, 1), imm(40, 2, 1), imm(40, 3, 0)};
    size_t n = raw_packet(p, 40, ptrs, 3, "x", 1);
    struct spc_packet_info pi;
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EMISSING_FIELD);
}

Test(packet_parse, offset_beyond_size)
{
    uint8_t p[128];
    struct spc_packet_info pi;
    size_t n = mk_packet(p, 40, 1, 10, 5, DATA, 6, NULL, 0);
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EBAD_OFFSET);
    n = mk_packet(p, 40, 1, 10, 11, DATA, 0, NULL, 0);
    cr_expect_eq(spc_packet_parse(p, n, &pi), -SPC_EBAD_OFFSET);
    n = mk_packet(p, 40, 1, 10, 4, DATA, 6, NULL, 0);
    cr_expect_eq(spc_packet_parse(p, n, &pi), 0);
}

Test(packet_parse, bad_arguments)
{
    uint8_t p[64];
    size_t n = mk_packet(p, 40, 1, 1, 0, "x", 1, NULL, 0);
    cr_expect_eq(spc_packet_parse(p, n, NULL), -EINVAL);
    struct spc_packet_info pi;
    cr_expect_eq(spc_packet_parse(NULL, 5, &pi), -EINVAL);
}

/* ------------------------------------------------------------- reassembly */

Test(decoder, create_arguments)
{
    struct spc_decoder *dec;
    cr_expect_eq(spc_decoder_create(NULL, NULL), -EINVAL);
    struct spc_decoder_config zero = {.struct_size = sizeof zero};
    cr_expect_eq(spc_decoder_create(&dec, &zero), -EINVAL);
    cr_expect_null(dec);
    struct spc_decoder_config bc = {.struct_size = sizeof bc, .max_heap_size = 1024, .max_live_heaps = 4, .bug_compat = 8};
    cr_expect_eq(spc_decoder_create(&dec, &bc), -EINVAL);
    cr_assert_eq(spc_decoder_create(&dec, NULL), 0);
    spc_decoder_destroy(dec);
    spc_decoder_destroy(NULL);
    spc_decoded_heap_free(NULL);
}

Test(decoder, single_packet_heap)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p[256];
    uint64_t user[] = {imm(40, 0x1000, 0x0102030405), addr(40, 0x1001, 0), addr(40, 0x1002, 3),
                       imm(40, SPC_ID_STREAM_CTRL, SPC_CTRL_START)};
    size_t n = mk_packet(p, 40, 9, 10, 0, DATA, 10, user, 4);
    size_t used = 0;
    cr_assert_eq(spc_decoder_add_packet(dec, p, n, &used), 0);
    cr_expect_eq(used, n);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect_eq(h->cnt, 9);
    cr_expect(h->complete);
    cr_expect_eq(h->heap_size, 10);
    cr_expect_eq(h->received, 10);
    cr_expect_eq(h->n_packets, 1);
    cr_expect_eq(h->flavour.heap_address_bits, 40);
    cr_expect_eq(h->flavour.bug_compat, 0);
    cr_expect(h->has_start);
    cr_expect_not(h->has_stop);
    cr_assert_eq(h->n_items, 4);
    static const uint8_t v[] = {1, 2, 3, 4, 5};
    expect_item(&h->items[0], 0x1000, true, v, 5);
    cr_expect_eq(h->items[0].value, 0x0102030405);
    expect_item(&h->items[1], 0x1001, false, DATA, 3);
    cr_expect_eq(h->items[1].value, 0);
    expect_item(&h->items[2], 0x1002, false, DATA + 3, 7);
    cr_expect_eq(h->items[2].value, 3);
    cr_expect_eq(h->items[3].id, SPC_ID_STREAM_CTRL);
    cr_expect_eq(memcmp(h->payload, DATA, 10), 0);
    spc_decoded_heap_free(h);
    expect_none_ready(dec);
    spc_decoder_destroy(dec);
}

/* A 32-byte heap in three packets ([0,16) [16,24) [24,32)): item A (addressed, 20 bytes
 * at 0) and B (immediate) in the first, item C (12 bytes at 20) in the second. */
static size_t make_three(uint8_t pk[3][256], size_t len[3], uint64_t cnt)
{
    uint64_t u0[] = {addr(40, 0xA, 0), imm(40, 0xB, 0x42)};
    uint64_t u1[] = {addr(40, 0xC, 20)};
    len[0] = mk_packet(pk[0], 40, cnt, 32, 0, DATA, 16, u0, 2);
    len[1] = mk_packet(pk[1], 40, cnt, 32, 16, DATA + 16, 8, u1, 1);
    len[2] = mk_packet(pk[2], 40, cnt, 32, 24, DATA + 24, 8, NULL, 0);
    return 3;
}

static void check_three(struct spc_decoded_heap *h, uint64_t cnt)
{
    cr_expect_eq(h->cnt, cnt);
    cr_expect(h->complete);
    cr_expect_eq(h->received, 32);
    cr_expect_eq(h->n_packets, 3);
    cr_assert_eq(h->n_items, 3);
    static const uint8_t b[] = {0, 0, 0, 0, 0x42};
    expect_item(&h->items[0], 0xA, false, DATA, 20);
    expect_item(&h->items[1], 0xB, true, b, 5);
    expect_item(&h->items[2], 0xC, false, DATA + 20, 12);
}

Test(decoder, out_of_order)
{
    static const int orders[][3] = {{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}, {1, 0, 2}};
    for (size_t o = 0; o < 5; o++) {
        struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
        uint8_t pk[3][256];
        size_t len[3];
        make_three(pk, len, 5);
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(add(dec, pk[orders[o][i]], len[orders[o][i]]), 0);
            if (i < 2)
                expect_none_ready(dec);
        }
        struct spc_decoded_heap *h = pop(dec);
        check_three(h, 5);
        spc_decoded_heap_free(h);
        spc_decoder_destroy(dec);
    }
}

Test(decoder, interleaved_heaps)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t a[3][256], b[3][256];
    size_t la[3], lb[3];
    make_three(a, la, 100);
    make_three(b, lb, 200);
    cr_assert_eq(add(dec, b[2], lb[2]), 0);
    cr_assert_eq(add(dec, a[0], la[0]), 0);
    cr_assert_eq(add(dec, b[0], lb[0]), 0);
    cr_assert_eq(add(dec, a[2], la[2]), 0);
    cr_assert_eq(add(dec, a[1], la[1]), 0);
    struct spc_decoded_heap *h = pop(dec);
    check_three(h, 100);
    spc_decoded_heap_free(h);
    expect_none_ready(dec);
    cr_assert_eq(add(dec, b[1], lb[1]), 0);
    h = pop(dec);
    check_three(h, 200);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

Test(decoder, duplicates_ignored)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t pk[3][256];
    size_t len[3];
    make_three(pk, len, 5);
    cr_assert_eq(add(dec, pk[0], len[0]), 0);
    cr_assert_eq(add(dec, pk[0], len[0]), 0);
    cr_assert_eq(add(dec, pk[1], len[1]), 0);
    cr_assert_eq(add(dec, pk[0], len[0]), 0);
    cr_assert_eq(add(dec, pk[1], len[1]), 0);
    expect_none_ready(dec);
    cr_assert_eq(add(dec, pk[2], len[2]), 0);
    struct spc_decoded_heap *h = pop(dec);
    check_three(h, 5);
    spc_decoded_heap_free(h);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.packets, 6);
    cr_expect_eq(st.bad_packets, 0);
    cr_expect_eq(st.heaps_complete, 1);
    spc_decoder_destroy(dec);
}

Test(decoder, overlapping_ranges)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t pk[3][256], q[256];
    size_t len[3];
    make_three(pk, len, 5);
    cr_assert_eq(add(dec, pk[1], len[1]), 0); /* [16, 24) */
    static const struct {
        uint64_t off, len;
    } bad[] = {{10, 8}, {20, 2}, {20, 10}, {16, 4}, {16, 9}, {8, 24}, {23, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = mk_packet(q, 40, 5, 32, bad[i].off, DATA, bad[i].len, NULL, 0);
        cr_expect_eq(add(dec, q, n), -SPC_EINCONSISTENT, "range %llu+%llu",
                     (unsigned long long)bad[i].off, (unsigned long long)bad[i].len);
    }
    /* The rejected packets left nothing behind. */
    cr_assert_eq(add(dec, pk[0], len[0]), 0);
    cr_assert_eq(add(dec, pk[2], len[2]), 0);
    struct spc_decoded_heap *h = pop(dec);
    check_three(h, 5);
    spc_decoded_heap_free(h);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.bad_packets, 7);
    cr_expect_eq(st.packets, 3);
    spc_decoder_destroy(dec);
}

Test(decoder, inconsistent_size_and_flavour)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p[256];
    size_t n = mk_packet(p, 40, 5, 32, 0, DATA, 16, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    n = mk_packet(p, 40, 5, 40, 16, DATA, 16, NULL, 0);
    cr_expect_eq(add(dec, p, n), -SPC_EINCONSISTENT);
    n = mk_packet(p, 48, 5, 32, 16, DATA, 16, NULL, 0);
    cr_expect_eq(add(dec, p, n), -SPC_EINCONSISTENT);
    /* A size announced late must cover what arrived already. */
    n = mk_packet(p, 40, 6, NONE, 0, DATA, 16, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    n = mk_packet(p, 40, 6, 12, 0, DATA, 4, NULL, 0);
    cr_expect_eq(add(dec, p, n), -SPC_EINCONSISTENT);
    spc_decoder_destroy(dec);
}

Test(decoder, offset_beyond_known_size)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p[256];
    size_t n = mk_packet(p, 40, 5, 32, 0, DATA, 16, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    /* This packet has no size item; the heap's size comes from the first packet. */
    n = mk_packet(p, 40, 5, NONE, 24, DATA, 16, NULL, 0);
    cr_expect_eq(add(dec, p, n), -SPC_EBAD_OFFSET);
    n = mk_packet(p, 40, 5, NONE, 16, DATA + 16, 16, NULL, 0);
    cr_expect_eq(add(dec, p, n), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect(h->complete);
    cr_expect_eq(h->heap_size, 32);
    cr_expect_eq(memcmp(h->payload, DATA, 32), 0);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

Test(decoder, heap_too_large)
{
    struct spc_decoder *dec = new_decoder(100, 4, 0);
    uint8_t p[512];
    size_t n = mk_packet(p, 40, 5, 101, 0, DATA, 8, NULL, 0);
    cr_expect_eq(add(dec, p, n), -SPC_EHEAP_LIMIT);
    n = mk_packet(p, 40, 5, NONE, 96, DATA, 8, NULL, 0);
    cr_expect_eq(add(dec, p, n), -SPC_EHEAP_LIMIT);
    n = mk_packet(p, 40, 5, 100, 92, DATA, 8, NULL, 0);
    cr_expect_eq(add(dec, p, n), 0);
    n = mk_packet(p, 40, 6, NONE, 92, DATA, 8, NULL, 0);
    cr_expect_eq(add(dec, p, n), 0);
    spc_decoder_flush(dec);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect_eq(h->cnt, 5);
    cr_expect_not(h->complete);
    spc_decoded_heap_free(h);
    h = pop(dec);
    cr_expect_eq(h->cnt, 6);
    cr_expect_eq(h->heap_size, UINT64_MAX);
    cr_expect_eq(h->received, 8);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

Test(decoder, pointer_bookkeeping_is_bounded)
{
    /* Pointer-only packets hold no payload but their pointers cost memory: the decoder
     * refuses them once a heap's bookkeeping passes max_heap_size plus a fixed slack. */
    struct spc_decoder *dec = new_decoder(64, 4, 0);
    uint64_t user[50];
    uint8_t p[1024];
    int rc = 0;
    uint64_t k = 0;
    for (int i = 0; i < 10000 && rc == 0; i++) {
        for (size_t j = 0; j < 50; j++)
            user[j] = imm(40, 0x1000, k++);
        size_t n = mk_packet(p, 40, 5, 64, 0, NULL, 0, user, 50);
        rc = add(dec, p, n);
    }
    cr_expect_eq(rc, -SPC_EHEAP_LIMIT);
    spc_decoder_destroy(dec);
}

Test(decoder, pointer_beyond_heap)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p[256];
    uint64_t bad[] = {addr(40, 0x1000, 33)};
    size_t n = mk_packet(p, 40, 5, 32, 0, DATA, 16, bad, 1);
    cr_expect_eq(add(dec, p, n), -SPC_EBAD_POINTER);
    uint64_t edge[] = {addr(40, 0x1000, 32)}; /* a zero-length item at the end is fine */
    n = mk_packet(p, 40, 5, 32, 0, DATA, 16, edge, 1);
    cr_expect_eq(add(dec, p, n), 0);
    n = mk_packet(p, 40, 5, NONE, 16, DATA, 16, bad, 1); /* size known from the heap */
    cr_expect_eq(add(dec, p, n), -SPC_EBAD_POINTER);
    spc_decoder_destroy(dec);
}

Test(decoder, pointers_out_of_order_at_completion)
{
    /* Item 0x1000 at 16 comes before item 0x1001 at 8 in heap-offset order: the packet
     * that would complete the heap is refused and the heap stays incomplete. */
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p0[256], p1[256];
    uint64_t u0[] = {addr(40, 0x1000, 16)};
    uint64_t u1[] = {addr(40, 0x1001, 8)};
    size_t n0 = mk_packet(p0, 40, 5, 32, 0, DATA, 16, u0, 1);
    size_t n1 = mk_packet(p1, 40, 5, 32, 16, DATA + 16, 16, u1, 1);
    cr_assert_eq(add(dec, p0, n0), 0);
    cr_expect_eq(add(dec, p1, n1), -SPC_EBAD_POINTER);
    expect_none_ready(dec);
    spc_decoder_flush(dec);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect_not(h->complete);
    cr_expect_eq(h->received, 16);
    cr_expect_eq(h->n_items, 1); /* the one pointer that arrived resolves */
    spc_decoded_heap_free(h);

    /* Both packets arrived but never complete (size unknown): flush gives no items. */
    n0 = mk_packet(p0, 40, 6, NONE, 0, DATA, 16, u0, 1);
    n1 = mk_packet(p1, 40, 6, NONE, 16, DATA + 16, 16, u1, 1);
    cr_assert_eq(add(dec, p1, n1), 0);
    cr_assert_eq(add(dec, p0, n0), 0);
    spc_decoder_flush(dec);
    h = pop(dec);
    cr_expect_not(h->complete);
    cr_expect_eq(h->received, 32);
    cr_expect_eq(h->n_items, 0);
    cr_expect_null(h->items);
    spc_decoded_heap_free(h);

    /* A pointer accepted while the size was unknown, beyond the size announced later. */
    uint64_t far[] = {addr(40, 0x1000, 100)};
    n0 = mk_packet(p0, 40, 7, NONE, 0, DATA, 16, far, 1);
    n1 = mk_packet(p1, 40, 7, 32, 16, DATA + 16, 16, NULL, 0);
    cr_assert_eq(add(dec, p0, n0), 0);
    cr_expect_eq(add(dec, p1, n1), -SPC_EBAD_POINTER);
    expect_none_ready(dec);
    spc_decoder_flush(dec);
    h = pop(dec);
    cr_expect_not(h->complete);
    cr_expect_eq(h->n_items, 0);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

Test(decoder, unknown_size_grows_and_late_size_completes)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    static uint8_t big[5000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    uint8_t p[6000];
    uint64_t u[] = {addr(40, 0x1000, 0)};
    size_t n = mk_packet(p, 40, 3, NONE, 3000, big + 3000, 2000, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    n = mk_packet(p, 40, 3, NONE, 0, big, 1000, u, 1);
    cr_assert_eq(add(dec, p, n), 0);
    n = mk_packet(p, 40, 3, NONE, 1000, big + 1000, 2000, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    expect_none_ready(dec); /* every byte is there, but nobody said how many there are */
    /* A duplicate that carries the size completes it. */
    n = mk_packet(p, 40, 3, 5000, 1000, big + 1000, 2000, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect(h->complete);
    cr_expect_eq(h->heap_size, 5000);
    cr_expect_eq(h->n_packets, 3);
    cr_assert_eq(h->n_items, 1);
    expect_item(&h->items[0], 0x1000, false, big, 5000);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

Test(decoder, eviction)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 2, 0);
    uint8_t p[256];
    uint64_t u[] = {addr(40, 0x1000, 0)};
    for (uint64_t cnt = 1; cnt <= 2; cnt++) {
        size_t n = mk_packet(p, 40, cnt, 32, 0, DATA, 16, u, 1);
        cr_assert_eq(add(dec, p, n), 0);
    }
    expect_none_ready(dec);
    /* A single-packet heap completes without taking a live slot. */
    size_t n = mk_packet(p, 40, 9, 4, 0, DATA, 4, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect_eq(h->cnt, 9);
    cr_expect(h->complete);
    spc_decoded_heap_free(h);
    expect_none_ready(dec);
    /* A rejected packet for a new heap evicts nothing. */
    n = mk_packet(p, 40, 3, 32, 0, DATA, 16, (uint64_t[]){addr(40, 0x1000, 40)}, 1);
    cr_assert_eq(add(dec, p, n), -SPC_EBAD_POINTER);
    expect_none_ready(dec);
    /* The third live heap pushes out the oldest (cnt 1). */
    n = mk_packet(p, 40, 3, 32, 0, DATA, 16, u, 1);
    cr_assert_eq(add(dec, p, n), 0);
    h = pop(dec);
    cr_expect_eq(h->cnt, 1);
    cr_expect_not(h->complete);
    cr_expect_eq(h->received, 16);
    cr_expect_eq(h->heap_size, 32);
    cr_assert_eq(h->n_items, 1);
    cr_expect_eq(h->items[0].len, 32); /* the item runs to the heap size */
    cr_expect_eq(memcmp(h->items[0].data, DATA, 16), 0);
    cr_expect_eq(h->items[0].data[20], 0); /* missing bytes read as zero */
    spc_decoded_heap_free(h);
    expect_none_ready(dec);
    /* Heap 2 is still live and completes. */
    n = mk_packet(p, 40, 2, 32, 16, DATA + 16, 16, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    h = pop(dec);
    cr_expect_eq(h->cnt, 2);
    cr_expect(h->complete);
    spc_decoded_heap_free(h);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.heaps_complete, 2);
    cr_expect_eq(st.heaps_incomplete, 1);
    cr_expect_eq(st.packets, 5);
    cr_expect_eq(st.bad_packets, 1);
    spc_decoder_destroy(dec);
}

Test(decoder, flush_oldest_first)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 8, 5);
    uint8_t p[256];
    static const uint64_t cnts[] = {30, 10, 20};
    for (size_t i = 0; i < 3; i++) {
        size_t n = mk_packet(p, 48, cnts[i], 32, 8, DATA, 8, NULL, 0);
        cr_assert_eq(add(dec, p, n), 0);
    }
    expect_none_ready(dec);
    spc_decoder_flush(dec);
    for (size_t i = 0; i < 3; i++) {
        struct spc_decoded_heap *h = pop(dec);
        cr_expect_eq(h->cnt, cnts[i]);
        cr_expect_not(h->complete);
        cr_expect_eq(h->flavour.heap_address_bits, 48);
        cr_expect_eq(h->flavour.bug_compat, 5);
        cr_expect_eq(h->n_items, 0);
        spc_decoded_heap_free(h);
    }
    expect_none_ready(dec);
    spc_decoder_flush(dec);
    expect_none_ready(dec);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.heaps_incomplete, 3);
    cr_expect_eq(st.heaps_complete, 0);
    /* Heaps left in the decoder are freed with it (checked under ASan). */
    size_t n = mk_packet(p, 48, 1, 32, 8, DATA, 8, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    n = mk_packet(p, 48, 2, 1, 0, DATA, 1, NULL, 0);
    cr_assert_eq(add(dec, p, n), 0);
    spc_decoder_destroy(dec);
}

Test(decoder, stats_and_stream)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t s[1024];
    uint8_t pk[3][256];
    size_t len[3], off = 0;
    make_three(pk, len, 77);
    for (int i = 2; i >= 0; i--) {
        memcpy(s + off, pk[i], len[i]);
        off += len[i];
    }
    size_t bad_at = off;
    memcpy(s + off, pk[0], len[0]);
    s[off] = 0; /* bad magic */
    off += len[0];
    size_t used = 0;
    cr_expect_eq(spc_decoder_add_stream(dec, s, off, &used), -SPC_EBAD_MAGIC);
    cr_expect_eq(used, bad_at);
    cr_expect_eq(spc_decoder_add_stream(dec, s, bad_at, &used), 0);
    cr_expect_eq(used, bad_at);
    struct spc_decoded_heap *h = pop(dec);
    check_three(h, 77);
    spc_decoded_heap_free(h);
    h = pop(dec); /* the second pass made a fresh heap; it completed too */
    check_three(h, 77);
    spc_decoded_heap_free(h);
    /* A truncated tail stops the walk there. */
    cr_expect_eq(spc_decoder_add_stream(dec, s, len[2] + 5, &used), -SPC_ETRUNCATED);
    cr_expect_eq(used, len[2]);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.packets, 7);
    cr_expect_eq(st.bad_packets, 2);
    cr_expect_eq(st.heaps_complete, 2);
    cr_expect_eq(st.heaps_incomplete, 0);
    cr_expect_eq(spc_decoder_add_stream(dec, NULL, 0, &used), 0);
    cr_expect_eq(used, 0);
    spc_decoder_destroy(dec);
}

Test(decoder, consumed_on_errors)
{
    struct spc_decoder *dec = new_decoder(16, 4, 0);
    uint8_t p[256];
    size_t n = mk_packet(p, 40, 5, 32, 0, DATA, 16, NULL, 0), used = 99;
    cr_expect_eq(spc_decoder_add_packet(dec, p, n, &used), -SPC_EHEAP_LIMIT);
    cr_expect_eq(used, n, "a parsed but refused packet still reports its size");
    cr_expect_eq(spc_decoder_add_packet(dec, p, 7, &used), -SPC_ETRUNCATED);
    cr_expect_eq(used, 0);
    cr_expect_eq(spc_decoder_add_packet(NULL, p, n, &used), -EINVAL);
    spc_decoder_destroy(dec);
}

Test(decoder, null_and_special_pointers_dropped)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p[256];
    /* Item 0x1000 ends at the NULL pointer's address; padding follows. A stray addressed
     * ID 3 is dropped and does not end any item. */
    uint64_t u[] = {addr(40, 0x1000, 0), addr(40, 3, 2), addr(40, 0, 5),
                    imm(40, SPC_ID_STREAM_CTRL, SPC_CTRL_STOP)};
    size_t n = mk_packet(p, 40, 1, 16, 0, DATA, 16, u, 4);
    cr_assert_eq(add(dec, p, n), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_assert_eq(h->n_items, 2);
    expect_item(&h->items[0], 0x1000, false, DATA, 5);
    cr_expect_eq(h->items[1].id, SPC_ID_STREAM_CTRL);
    cr_expect(h->has_stop);
    cr_expect_not(h->has_start);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

Test(decoder, zero_size_heap)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    uint8_t p[256];
    uint64_t u[] = {imm(40, 0x1000, 1), addr(40, 0x1001, 0)};
    size_t n = mk_packet(p, 40, 1, 0, 0, NULL, 0, u, 2);
    cr_assert_eq(add(dec, p, n), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_expect(h->complete);
    cr_assert_eq(h->n_items, 2);
    cr_expect_eq(h->items[1].len, 0);
    cr_expect_not_null(h->payload);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

static uint8_t *encoder_txt_hex(const char *section, const char *prefix, size_t *len);

Test(decoder, repeat_pointers_deduplicated)
{
    /* [repeat-pointers] of spead2-encoder.txt: both packets carry both pointers. */
    size_t l0, l1;
    uint8_t *p0 = encoder_txt_hex("[repeat-pointers]", "packet0:", &l0);
    uint8_t *p1 = encoder_txt_hex("[repeat-pointers]", "packet1:", &l1);
    for (int order = 0; order < 2; order++) {
        struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
        cr_assert_eq(add(dec, order ? p1 : p0, order ? l1 : l0), 0);
        cr_assert_eq(add(dec, order ? p0 : p1, order ? l0 : l1), 0);
        struct spc_decoded_heap *h = pop(dec);
        cr_expect(h->complete);
        cr_expect_eq(h->cnt, 0x123456);
        cr_assert_eq(h->n_items, 2);
        cr_expect_eq(h->items[0].id, 0x2345);
        cr_expect_eq(h->items[0].len, 32);
        cr_expect_eq(memcmp(h->items[0].data, DATA, 32), 0);
        static const uint8_t v[] = {0, 0, 0xde, 0xad, 0xbe, 0xef};
        expect_item(&h->items[1], 0x2346, true, v, 6);
        spc_decoded_heap_free(h);
        spc_decoder_destroy(dec);
    }
    free(p0);
    free(p1);
}

Test(decoder, encoder_txt_control_heaps)
{
    static const struct {
        const char *section;
        size_t n_items;
        bool start, stop;
    } cases[] = {{"[empty-heap-64-48]", 0, false, false},
                 {"[empty-heap-64-40]", 0, false, false},
                 {"[start-heap]", 1, true, false},
                 {"[end-heap]", 1, false, true},
                 {"[small-fixed]", 1, false, false},
                 {"[small-variable]", 1, false, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *p = encoder_txt_hex(cases[i].section, NULL, &len);
        struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
        cr_assert_eq(add(dec, p, len), 0, "%s", cases[i].section);
        struct spc_decoded_heap *h = pop(dec);
        cr_expect(h->complete, "%s", cases[i].section);
        cr_expect_eq(h->n_items, cases[i].n_items, "%s", cases[i].section);
        cr_expect_eq(h->has_start, cases[i].start, "%s", cases[i].section);
        cr_expect_eq(h->has_stop, cases[i].stop, "%s", cases[i].section);
        if (strcmp(cases[i].section, "[small-variable]") == 0)
            expect_item(&h->items[0], 0x2345, false, "\x04\x05", 2);
        if (strcmp(cases[i].section, "[small-fixed]") == 0)
            expect_item(&h->items[0], 0x2345, true, "\0\0\0\0\x76\x54", 6);
        spc_decoded_heap_free(h);
        spc_decoder_destroy(dec);
        free(p);
    }
}

/* ------------------------------------------------------- spead2-encoder.txt */

/* The hex of a section of spead2-encoder.txt: the first line after the "[name]" line
 * (or the line starting with prefix), with prefix stripped. */
static uint8_t *encoder_txt_hex(const char *section, const char *prefix, size_t *len)
{
    char *txt = tu_read_file(SPC_TEST_VECTOR_DIR "/spead2-encoder.txt", NULL);
    cr_assert_not_null(txt);
    char *s = strstr(txt, section);
    cr_assert_not_null(s, "section %s", section);
    s = strchr(s, '\n');
    cr_assert_not_null(s);
    s++;
    if (prefix) {
        s = strstr(s, prefix);
        cr_assert_not_null(s, "%s %s", section, prefix);
        s += strlen(prefix);
    }
    char *e = strchr(s, '\n');
    if (e)
        *e = '\0';
    e = strchr(s, '('); /* a trailing remark */
    if (e)
        *e = '\0';
    /* Drop the "|" separators some sections use. */
    char *w = s;
    for (char *r = s; *r; r++)
        if (*r != '|')
            *w++ = *r;
    *w = '\0';
    uint8_t *out = tu_hex_decode(s, len);
    cr_assert_not_null(out, "%s: bad hex", section);
    free(txt);
    return out;
}

static struct spc_descriptor_info *parse_desc(const uint8_t *data, size_t len, unsigned bug_compat)
{
    struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, data, len};
    struct spc_flavour f = {40, bug_compat};
    struct spc_descriptor_info *info = NULL;
    int rc = spc_descriptor_parse(&it, &f, &info);
    cr_assert_eq(rc, 0, "descriptor parse failed: %d", rc);
    return info;
}

/* Decodes a one-packet heap and returns its item 5 descriptor. */
static struct spc_descriptor_info *desc_of_heap(const uint8_t *p, size_t len, size_t *n_items)
{
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    cr_assert_eq(add(dec, p, len), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_assert(h->complete);
    cr_assert_geq(h->n_items, 1);
    cr_assert_eq(h->items[0].id, SPC_ID_DESCRIPTOR);
    struct spc_descriptor_info *info = NULL;
    cr_assert_eq(spc_descriptor_parse(&h->items[0], &h->flavour, &info), 0);
    *n_items = h->n_items;
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
    return info;
}

Test(descriptor, numpy_simple)
{
    static const char *const secs[] = {"[numpy-simple-64-48]", "[numpy-simple-64-40]"};
    for (int s = 0; s < 2; s++) {
        size_t len, n_items;
        uint8_t *p = encoder_txt_hex(secs[s], NULL, &len);
        struct spc_descriptor_info *d = desc_of_heap(p, len, &n_items);
        cr_expect_eq(n_items, 2);
        cr_expect_eq(d->id, 0x2345);
        cr_expect_str_eq(d->name, "name");
        cr_expect_str_eq(d->description, "description");
        cr_expect_eq(d->n_format, 0);
        cr_assert_eq(d->n_dims, 2);
        cr_expect_eq(d->shape[0], 2);
        cr_expect_eq(d->shape[1], 3);
        cr_assert_not_null(d->dtype_header);
        cr_expect_str_eq(d->dtype_header, "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3)}");
        cr_expect_str_eq(d->dtype, "<u2");
        cr_expect_not(d->fortran_order);
        cr_assert_eq(d->dtype_n_dims, 2);
        cr_expect_eq(d->dtype_shape[0], 2);
        cr_expect_eq(d->dtype_shape[1], 3);
        spc_descriptor_info_free(d);
        free(p);
    }
}

Test(descriptor, fallback_types)
{
    size_t len, n_items;
    uint8_t *p = encoder_txt_hex("[fallback-types]", NULL, &len);
    struct spc_descriptor_info *d = desc_of_heap(p, len, &n_items);
    cr_expect_eq(d->id, 0x2345);
    cr_expect_str_eq(d->name, "name");
    cr_expect_str_eq(d->description, "description");
    cr_assert_eq(d->n_format, 4);
    static const struct spc_format_field want[] = {{'b', 1}, {'i', 7}, {'c', 8}, {'f', 32}};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(d->format[i].type, want[i].type);
        cr_expect_eq(d->format[i].bits, want[i].bits);
    }
    cr_assert_eq(d->n_dims, 1);
    cr_expect_eq(d->shape[0], 2);
    cr_expect_null(d->dtype_header);
    cr_expect_null(d->dtype);
    cr_expect_eq(d->dtype_n_dims, 0);
    spc_descriptor_info_free(d);
    free(p);
}

/* A descriptor packet for id 0x1234, name "n", description "d" around the given format
 * and shape field bytes (64-40). */
static size_t variable_shape_packet(uint8_t *out, const uint8_t *payload, size_t plen,
                                    size_t shape_len)
{
    uint64_t u[] = {imm(40, SPC_ID_DESCRIPTOR_ID, 0x1234), addr(40, SPC_ID_DESCRIPTOR_NAME, 0),
                    addr(40, SPC_ID_DESCRIPTOR_DESCRIPTION, 1),
                    addr(40, SPC_ID_DESCRIPTOR_FORMAT, 2),
                    addr(40, SPC_ID_DESCRIPTOR_SHAPE, plen - shape_len)};
    return mk_packet(out, 40, 1, plen, 0, payload, plen, u, 5);
}

Test(descriptor, variable_shape)
{
    size_t len;
    uint8_t *pl = encoder_txt_hex("[variable-shape-descriptor]", "descriptor payload bytes:", &len);
    uint8_t pkt[256];
    size_t n = variable_shape_packet(pkt, pl, len, 12);
    for (unsigned bc = 0; bc <= 4; bc += 4) { /* swap_endian alone changes nothing here */
        struct spc_descriptor_info *d = parse_desc(pkt, n, bc);
        cr_expect_eq(d->id, 0x1234);
        cr_expect_str_eq(d->name, "n");
        cr_expect_str_eq(d->description, "d");
        cr_assert_eq(d->n_format, 1);
        cr_expect_eq(d->format[0].type, 'u');
        cr_expect_eq(d->format[0].bits, 8);
        cr_assert_eq(d->n_dims, 2);
        cr_expect_eq(d->shape[0], SPC_DIM_VARIABLE);
        cr_expect_eq(d->shape[1], 5);
        spc_descriptor_info_free(d);
    }
    /* Read with the wrong bug_compat, the field widths do not divide. */
    struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
    struct spc_flavour f7 = {40, 7};
    struct spc_descriptor_info *bad = (struct spc_descriptor_info *)1;
    cr_expect_eq(spc_descriptor_parse(&it, &f7, &bad), -SPC_EBAD_DESCRIPTOR);
    cr_expect_null(bad);
    free(pl);

    /* The bug_compat=7 line of that section has one 0 byte too many in its last shape
     * entry (9 bytes; its own note says the heap grows by 4, i.e. 22 bytes), so the
     * payload is written out here: 8-byte shape entries, variable flag 2. */
    static const uint8_t pl7[] = {0x6e, 0x64, 0x75, 0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0,
                                  0,    0,    0,    0, 0, 0, 0, 5};
    n = variable_shape_packet(pkt, pl7, sizeof(pl7), 16);
    struct spc_descriptor_info *d = parse_desc(pkt, n, 7);
    cr_assert_eq(d->n_format, 1);
    cr_expect_eq(d->format[0].type, 'u');
    cr_expect_eq(d->format[0].bits, 8);
    cr_assert_eq(d->n_dims, 2);
    cr_expect_eq(d->shape[0], SPC_DIM_VARIABLE);
    cr_expect_eq(d->shape[1], 5);
    spc_descriptor_info_free(d);
    /* Flag 2 is variable only under bug_compat 2; without it the flag is malformed. */
    struct spc_decoded_item it7 = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
    struct spc_flavour f1 = {40, 1};
    cr_expect_eq(spc_descriptor_parse(&it7, &f1, &bad), -SPC_EBAD_DESCRIPTOR);
}

/* A descriptor with the given dtype header text (64-48). */
static size_t dtype_packet(uint8_t *out, const char *header)
{
    uint8_t payload[512];
    size_t hl = strlen(header);
    memcpy(payload, "ab", 2);
    memcpy(payload + 2, header, hl);
    uint64_t u[] = {imm(48, SPC_ID_DESCRIPTOR_ID, 0x1000), addr(48, SPC_ID_DESCRIPTOR_NAME, 0),
                    addr(48, SPC_ID_DESCRIPTOR_DESCRIPTION, 1),
                    addr(48, SPC_ID_DESCRIPTOR_DTYPE, 2)};
    return mk_packet(out, 48, 1, 2 + hl, 0, payload, 2 + hl, u, 4);
}

Test(descriptor, dtype_headers)
{
    static const struct {
        const char *header, *descr;
        bool fortran;
        size_t n_dims;
        int64_t dims[3];
    } good[] = {
        {"{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3, 4)}", ">i4", true, 3, {2, 3, 4}},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': ()}", "|u1", false, 0, {0}},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,)}", "<c8", false, 1, {3}},
        {"{'descr': [('a', '<u2'), ('b', '>f4')], 'fortran_order': False, 'shape': (3,)}",
         "[('a', '<u2'), ('b', '>f4')]", false, 1, {3}},
        {"{'descr': [('a', '<u2', (2,)), ('b)', '>f4')], 'fortran_order': False, 'shape': (1,)}",
         "[('a', '<u2', (2,)), ('b)', '>f4')]", false, 1, {1}},
        {"{\"shape\": (7, 0,), \"descr\": \"<f8\", \"fortran_order\": False, }   \n", "<f8",
         false, 2, {7, 0}},
        {"  {'descr':'>u2','fortran_order':False,'shape':(5L,)}", ">u2", false, 1, {5}},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint8_t pkt[1024];
        size_t n = dtype_packet(pkt, good[i].header);
        struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
        struct spc_flavour f = {48, 0};
        struct spc_descriptor_info *d = NULL;
        cr_assert_eq(spc_descriptor_parse(&it, &f, &d), 0, "%s", good[i].header);
        cr_expect_str_eq(d->dtype_header, good[i].header);
        cr_expect_str_eq(d->dtype, good[i].descr, "%s", good[i].header);
        cr_expect_eq(d->fortran_order, good[i].fortran, "%s", good[i].header);
        cr_assert_eq(d->dtype_n_dims, good[i].n_dims, "%s", good[i].header);
        for (size_t k = 0; k < good[i].n_dims; k++)
            cr_expect_eq(d->dtype_shape[k], good[i].dims[k], "%s", good[i].header);
        cr_expect_eq(d->n_dims, 0);
        cr_expect_str_eq(d->name, "a");
        cr_expect_str_eq(d->description, "b");
        spc_descriptor_info_free(d);
    }
    static const char *const bad[] = {
        "",
        "{",
        "{}",
        "{'descr': '<u2', 'fortran_order': False}",
        "{'descr': '<u2', 'shape': ()}",
        "{'fortran_order': False, 'shape': ()}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (), 'extra': 1}",
        "{'descr': '<u2', 'descr': '<u2', 'fortran_order': False, 'shape': ()}",
        "{'descr': '<u2', 'fortran_order': false, 'shape': ()}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (5)}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (1,,)}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (,)}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (99999999999999999999,)}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': [2]}",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3)",
        "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3)} x",
        "{'descr': '<u2, 'fortran_order': False, 'shape': ()}",
        "{'descr': '', 'fortran_order': False, 'shape': ()}",
        "{'descr': [('a', '<u2'), 'fortran_order': False, 'shape': ()}",
        "{'descr': [('a', '<u2']), 'fortran_order': False, 'shape': ()}",
        "{'descr': <u2, 'fortran_order': False, 'shape': ()}",
        "{'descr' '<u2', 'fortran_order': False, 'shape': ()}",
        "{'descr': '<u2' 'fortran_order': False, 'shape': ()}",
        "{'descr': '<u2\\', 'fortran_order': False, 'shape': ()}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t pkt[1024];
        size_t n = dtype_packet(pkt, bad[i]);
        struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
        struct spc_descriptor_info *d = NULL;
        cr_expect_eq(spc_descriptor_parse(&it, NULL, &d), -SPC_EBAD_DESCRIPTOR, "accepted: %s",
                     bad[i]);
        cr_expect_null(d);
        spc_descriptor_info_free(d);
    }
    /* A NUL inside the header text. */
    uint8_t pkt[1024];
    size_t n = dtype_packet(pkt, "{'descr': '<u2', 'fortran_order': False, 'shape': ()}");
    pkt[n - 3] = 0;
    struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
    struct spc_descriptor_info *d = NULL;
    cr_expect_eq(spc_descriptor_parse(&it, NULL, &d), -SPC_EBAD_DESCRIPTOR);
}

Test(descriptor, swap_endian_undone)
{
    uint8_t pkt[1024];
    size_t n = dtype_packet(pkt, "{'descr': [('a', '<u2'), ('b', '|u1')], 'fortran_order': False, "
                                 "'shape': (3,)}");
    struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
    struct spc_flavour f = {48, SPC_BUG_COMPAT_SWAP_ENDIAN};
    struct spc_descriptor_info *d = NULL;
    cr_assert_eq(spc_descriptor_parse(&it, &f, &d), 0);
    cr_expect_str_eq(d->dtype, "[('a', '>u2'), ('b', '|u1')]");
    cr_expect_str_eq(d->dtype_header,
                     "{'descr': [('a', '<u2'), ('b', '|u1')], 'fortran_order': False, 'shape': (3,)}");
    spc_descriptor_info_free(d);
}

/* A 64-40 descriptor packet from pointers and payload. */
static int parse_raw_desc(const uint64_t *u, size_t n_u, const void *payload, size_t plen,
                          uint64_t size, uint64_t offset, unsigned bug_compat)
{
    uint8_t pkt[1024];
    uint64_t ptrs[32];
    size_t n = 0;
    ptrs[n++] = imm(40, 1, 1);
    if (size != NONE)
        ptrs[n++] = imm(40, 2, size);
    ptrs[n++] = imm(40, 3, offset);
    ptrs[n++] = imm(40, 4, plen);
    for (size_t i = 0; i < n_u; i++)
        ptrs[n++] = u[i];
    size_t len = raw_packet(pkt, 40, ptrs, n, payload, plen);
    struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, len};
    struct spc_flavour f = {40, bug_compat};
    struct spc_descriptor_info *d = NULL;
    int rc = spc_descriptor_parse(&it, &f, &d);
    cr_assert((rc == 0) == (d != NULL));
    spc_descriptor_info_free(d);
    return rc;
}

Test(descriptor, malformed)
{
    const int BAD = -SPC_EBAD_DESCRIPTOR;
    /* name "n", format u8 (4 bytes), shape one fixed dim 5 (6 bytes) */
    static const uint8_t pl[] = {'n', 'u', 0, 0, 8, 0, 0, 0, 0, 0, 5};
    uint64_t ok[] = {imm(40, 0x14, 0x1234), addr(40, 0x10, 0), addr(40, 0x13, 1),
                     addr(40, 0x12, 5)};
    cr_assert_eq(parse_raw_desc(ok, 4, pl, sizeof(pl), sizeof(pl), 0, 0), 0);
    cr_assert_eq(parse_raw_desc(ok, 4, pl, sizeof(pl), NONE, 0, 0), 0);
    /* not the whole heap in the packet */
    cr_expect_eq(parse_raw_desc(ok, 4, pl, sizeof(pl), sizeof(pl) + 1, 0, 0), BAD);
    cr_expect_eq(parse_raw_desc(ok, 4, pl, sizeof(pl), NONE, 8, 0), BAD);
    /* no ID, ID 0, ID too large for 64-40 */
    cr_expect_eq(parse_raw_desc(ok + 1, 3, pl, sizeof(pl), NONE, 0, 0), BAD);
    uint64_t id0[] = {imm(40, 0x14, 0), addr(40, 0x10, 0)};
    cr_expect_eq(parse_raw_desc(id0, 2, pl, sizeof(pl), NONE, 0, 0), BAD);
    uint64_t idbig[] = {imm(40, 0x14, 0x800000), addr(40, 0x10, 0)};
    cr_expect_eq(parse_raw_desc(idbig, 2, pl, sizeof(pl), NONE, 0, 0), BAD);
    /* an addressed ID: big-endian bytes, 1 to 8 of them */
    uint64_t idaddr[] = {addr(40, 0x14, 0), addr(40, 0x10, 2)};
    static const uint8_t idpl[] = {0x12, 0x34, 'x'};
    cr_expect_eq(parse_raw_desc(idaddr, 2, idpl, 3, NONE, 0, 0), 0);
    uint64_t idempty[] = {addr(40, 0x14, 0), addr(40, 0x10, 0)};
    cr_expect_eq(parse_raw_desc(idempty, 2, idpl, 3, NONE, 0, 0), BAD);
    /* a field twice */
    uint64_t twice[] = {imm(40, 0x14, 0x1234), addr(40, 0x10, 0), addr(40, 0x10, 1)};
    cr_expect_eq(parse_raw_desc(twice, 3, pl, sizeof(pl), NONE, 0, 0), BAD);
    /* addresses out of order or beyond the payload */
    uint64_t order[] = {imm(40, 0x14, 0x1234), addr(40, 0x13, 5), addr(40, 0x12, 1)};
    cr_expect_eq(parse_raw_desc(order, 3, pl, sizeof(pl), NONE, 0, 0), BAD);
    uint64_t beyond[] = {imm(40, 0x14, 0x1234), addr(40, 0x10, 12)};
    cr_expect_eq(parse_raw_desc(beyond, 2, pl, sizeof(pl), NONE, 0, 0), BAD);
    /* field lengths that do not divide into entries */
    uint64_t fmt3[] = {imm(40, 0x14, 0x1234), addr(40, 0x10, 0), addr(40, 0x13, 1),
                       addr(40, 0x12, 4)};
    cr_expect_eq(parse_raw_desc(fmt3, 4, pl, sizeof(pl), NONE, 0, 0), BAD);
    cr_expect_eq(parse_raw_desc(ok, 4, pl, sizeof(pl), NONE, 0, 1), BAD); /* 4+6 vs 4+8 */
    /* zero-bit format field, NUL type byte, shape flag 3 */
    static const uint8_t zero_bits[] = {'n', 'u', 0, 0, 0, 0, 0, 0, 0, 0, 5};
    cr_expect_eq(parse_raw_desc(ok, 4, zero_bits, sizeof(pl), NONE, 0, 0), BAD);
    static const uint8_t nul_type[] = {'n', 0, 0, 0, 8, 0, 0, 0, 0, 0, 5};
    cr_expect_eq(parse_raw_desc(ok, 4, nul_type, sizeof(pl), NONE, 0, 0), BAD);
    static const uint8_t flag3[] = {'n', 'u', 0, 0, 8, 3, 0, 0, 0, 0, 5};
    cr_expect_eq(parse_raw_desc(ok, 4, flag3, sizeof(pl), NONE, 0, 0), BAD);
    /* format bits above 32 bits (64-8: 7-byte bit counts) */
    {
        uint8_t pkt[256];
        static const uint8_t f8[] = {'u', 0, 0, 1, 0, 0, 0, 0};
        uint64_t u[] = {imm(8, 0x14, 0x12), addr(8, 0x13, 0)};
        size_t n = mk_packet(pkt, 8, 1, 8, 0, f8, 8, u, 2);
        struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, n};
        struct spc_descriptor_info *d = NULL;
        cr_expect_eq(spc_descriptor_parse(&it, NULL, &d), BAD);
    }

    /* Not a packet at all, truncated, immediate. */
    uint8_t pkt[256];
    size_t len = mk_packet(pkt, 40, 1, sizeof(pl), 0, pl, sizeof(pl), ok, 4);
    struct spc_descriptor_info *d = NULL;
    for (size_t cut = 0; cut < len; cut++) {
        struct spc_decoded_item it = {SPC_ID_DESCRIPTOR, false, 0, pkt, cut};
        cr_expect_eq(spc_descriptor_parse(&it, NULL, &d), BAD, "cut at %zu", cut);
    }
    struct spc_decoded_item imm_it = {SPC_ID_DESCRIPTOR, true, 0x53, pkt, 5};
    cr_expect_eq(spc_descriptor_parse(&imm_it, NULL, &d), BAD);
    struct spc_decoded_item null_it = {SPC_ID_DESCRIPTOR, false, 0, NULL, 4};
    cr_expect_eq(spc_descriptor_parse(&null_it, NULL, &d), BAD);
    cr_expect_eq(spc_descriptor_parse(NULL, NULL, &d), -EINVAL);
    struct spc_decoded_item whole = {SPC_ID_DESCRIPTOR, false, 0, pkt, len};
    cr_expect_eq(spc_descriptor_parse(&whole, NULL, NULL), -EINVAL);
    cr_assert_eq(spc_descriptor_parse(&whole, NULL, &d), 0);
    cr_expect_str_eq(d->description, "", "a missing description reads as empty");
    spc_descriptor_info_free(d);
    spc_descriptor_info_free(NULL);
}

/* ------------------------------------------------------------- spead2 vectors */

struct vcase {
    char *name;
    json_t *json;
    unsigned hab, bug_compat;
    uint8_t **pkts;
    size_t *lens;
    size_t n_pkts;
};

static void vcase_load(struct vcase *c, const char *name)
{
    char path[512];
    json_error_t err;
    c->name = strdup(name);
    snprintf(path, sizeof(path), "%s/spead2/%s.json", SPC_TEST_VECTOR_DIR, name);
    c->json = json_load_file(path, 0, &err);
    cr_assert_not_null(c->json, "%s: %s", path, err.text);
    json_t *fl = json_object_get(c->json, "flavour");
    c->hab = (unsigned)json_integer_value(json_object_get(fl, "heap_address_bits"));
    c->bug_compat = (unsigned)json_integer_value(json_object_get(fl, "bug_compat"));
    snprintf(path, sizeof(path), "%s/spead2/%s.hex", SPC_TEST_VECTOR_DIR, name);
    char *txt = tu_read_file(path, NULL);
    cr_assert_not_null(txt, "%s", path);
    size_t cap = 16;
    c->pkts = malloc(cap * sizeof(*c->pkts));
    c->lens = malloc(cap * sizeof(*c->lens));
    c->n_pkts = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        if (!*line)
            continue;
        if (c->n_pkts == cap) {
            cap *= 2;
            c->pkts = realloc(c->pkts, cap * sizeof(*c->pkts));
            c->lens = realloc(c->lens, cap * sizeof(*c->lens));
        }
        c->pkts[c->n_pkts] = tu_hex_decode(line, &c->lens[c->n_pkts]);
        cr_assert_not_null(c->pkts[c->n_pkts], "%s: bad hex", path);
        c->n_pkts++;
    }
    free(txt);
    json_t *exp = json_object_get(c->json, "expected");
    cr_assert_eq(c->n_pkts, (size_t)json_integer_value(json_object_get(exp, "packets")), "%s",
                 name);
}

static void vcase_free(struct vcase *c)
{
    for (size_t i = 0; i < c->n_pkts; i++)
        free(c->pkts[i]);
    free(c->pkts);
    free(c->lens);
    json_decref(c->json);
    free(c->name);
}

static char **manifest(size_t *n)
{
    char *txt = tu_read_file(SPC_TEST_VECTOR_DIR "/spead2/MANIFEST", NULL);
    cr_assert_not_null(txt);
    char **names = NULL;
    *n = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0])
            continue;
        char *tab = strchr(line, '\t');
        if (tab)
            *tab = '\0';
        names = realloc(names, (*n + 1) * sizeof(*names));
        names[(*n)++] = strdup(line);
    }
    free(txt);
    cr_assert_gt(*n, 40);
    return names;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void check_descriptor_entry(const char *cname, json_t *e,
                                   const struct spc_decoded_item *it,
                                   const struct spc_decoded_heap *h)
{
    struct spc_descriptor_info *d = NULL;
    int rc = spc_descriptor_parse(it, &h->flavour, &d);
    cr_assert_eq(rc, 0, "%s: descriptor parse %d", cname, rc);
    const char *name = jstr(e, "name");
    cr_expect_eq(d->id, (uint64_t)json_integer_value(json_object_get(e, "id")), "%s", cname);
    cr_expect_str_eq(d->name, name, "%s", cname);
    cr_expect_str_eq(d->description, jstr(e, "description"), "%s %s", cname, name);
    json_t *shape = json_object_get(e, "shape");
    cr_assert_eq(d->n_dims, json_array_size(shape), "%s %s", cname, name);
    for (size_t k = 0; k < d->n_dims; k++) {
        json_t *v = json_array_get(shape, k);
        int64_t want = json_is_null(v) ? SPC_DIM_VARIABLE : json_integer_value(v);
        cr_expect_eq(d->shape[k], want, "%s %s dim %zu", cname, name, k);
    }
    json_t *dtype = json_object_get(e, "dtype");
    if (dtype) {
        cr_assert_not_null(d->dtype_header, "%s %s", cname, name);
        cr_expect_str_eq(d->dtype_header, jstr(e, "wire_numpy_header"), "%s %s", cname, name);
        char want[512];
        if (json_is_string(dtype)) {
            snprintf(want, sizeof(want), "%s", json_string_value(dtype));
        } else {
            size_t o = (size_t)snprintf(want, sizeof(want), "[");
            for (size_t k = 0; k < json_array_size(dtype); k++) {
                json_t *fld = json_array_get(dtype, k);
                o += (size_t)snprintf(want + o, sizeof(want) - o, "%s('%s', '%s')",
                                      k ? ", " : "", json_string_value(json_array_get(fld, 0)),
                                      json_string_value(json_array_get(fld, 1)));
            }
            snprintf(want + o, sizeof(want) - o, "]");
        }
        cr_expect_str_eq(d->dtype, want, "%s %s", cname, name);
        cr_expect_eq(d->fortran_order, strcmp(jstr(e, "order"), "F") == 0, "%s %s", cname, name);
        cr_assert_eq(d->dtype_n_dims, json_array_size(shape), "%s %s", cname, name);
        for (size_t k = 0; k < d->dtype_n_dims; k++)
            cr_expect_eq(d->dtype_shape[k], json_integer_value(json_array_get(shape, k)));
        cr_expect_eq(d->n_format, 0, "%s %s", cname, name);
    } else {
        json_t *fmt = json_object_get(e, "format");
        cr_expect_null(d->dtype_header, "%s %s", cname, name);
        cr_expect_null(d->dtype);
        cr_assert_eq(d->n_format, json_array_size(fmt), "%s %s", cname, name);
        for (size_t k = 0; k < d->n_format; k++) {
            json_t *fld = json_array_get(fmt, k);
            cr_expect_eq(d->format[k].type, json_string_value(json_array_get(fld, 0))[0]);
            cr_expect_eq(d->format[k].bits, (uint32_t)json_integer_value(json_array_get(fld, 1)),
                         "%s %s field %zu", cname, name, k);
        }
    }
    spc_descriptor_info_free(d);
}

static void check_heap(const struct vcase *c, json_t *jh, const struct spc_decoded_heap *h)
{
    const char *cn = c->name;
    cr_expect(h->complete, "%s cnt %llu incomplete", cn, (unsigned long long)h->cnt);
    cr_expect_eq(h->flavour.heap_address_bits, c->hab, "%s", cn);
    json_t *entries = json_object_get(jh, "entries");
    size_t n = json_array_size(entries);
    cr_assert_eq(h->n_items, n, "%s cnt %llu: %zu items, expected %zu", cn,
                 (unsigned long long)h->cnt, h->n_items, n);
    bool start = false, stop = false;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        const char *kind = jstr(e, "kind");
        const struct spc_decoded_item *it = &h->items[i];
        if (strcmp(kind, "start") == 0 || strcmp(kind, "end") == 0) {
            cr_expect_eq(it->id, SPC_ID_STREAM_CTRL, "%s item %zu", cn, i);
            cr_expect(it->immediate);
            uint64_t want = kind[0] == 's' ? SPC_CTRL_START : SPC_CTRL_STOP;
            cr_expect_eq(it->value, want, "%s item %zu", cn, i);
            start |= kind[0] == 's';
            stop |= kind[0] == 'e';
        } else if (strcmp(kind, "descriptor") == 0) {
            cr_assert_eq(it->id, SPC_ID_DESCRIPTOR, "%s item %zu", cn, i);
            cr_expect_not(it->immediate);
            check_descriptor_entry(cn, e, it, h);
        } else {
            cr_assert_str_eq(kind, "item");
            cr_expect_eq(it->id, (uint64_t)json_integer_value(json_object_get(e, "id")),
                         "%s item %zu", cn, i);
            bool immediate = json_is_true(json_object_get(e, "immediate"));
            cr_assert_eq(it->immediate, immediate, "%s item %zu", cn, i);
            size_t rl;
            uint8_t *raw = tu_hex_decode(jstr(e, "raw_hex"), &rl);
            cr_assert_not_null(raw);
            if (immediate) {
                /* right-aligned in the HAB/8 value bytes, zeros before it */
                cr_assert_eq(it->len, c->hab / 8);
                cr_assert_leq(rl, it->len);
                for (size_t k = 0; k < it->len - rl; k++)
                    cr_expect_eq(it->data[k], 0, "%s item %zu", cn, i);
                cr_expect_eq(memcmp(it->data + it->len - rl, raw, rl), 0, "%s item %zu bytes", cn,
                             i);
            } else {
                cr_assert_eq(it->len, rl, "%s item %zu len", cn, i);
                cr_expect_eq(memcmp(it->data, raw, rl), 0, "%s item %zu bytes", cn, i);
            }
            free(raw);
        }
    }
    cr_expect_eq(h->has_start, start, "%s", cn);
    cr_expect_eq(h->has_stop, stop, "%s", cn);
}

/* Feeds the case's packets in the given order and checks every heap against the JSON. */
static void run_case(const struct vcase *c, const size_t *order, bool as_stream)
{
    json_t *heaps = json_object_get(c->json, "heaps");
    size_t n_heaps = json_array_size(heaps);
    struct spc_decoder *dec = new_decoder(1 << 20, 8, c->bug_compat);
    if (as_stream) {
        size_t total = 0, off = 0;
        for (size_t i = 0; i < c->n_pkts; i++)
            total += c->lens[i];
        uint8_t *s = malloc(total);
        for (size_t i = 0; i < c->n_pkts; i++) {
            memcpy(s + off, c->pkts[i], c->lens[i]);
            off += c->lens[i];
        }
        size_t used;
        cr_assert_eq(spc_decoder_add_stream(dec, s, total, &used), 0, "%s", c->name);
        cr_expect_eq(used, total);
        free(s);
    } else {
        for (size_t i = 0; i < c->n_pkts; i++) {
            size_t k = order[i];
            int rc = add(dec, c->pkts[k], c->lens[k]);
            cr_assert_eq(rc, 0, "%s packet %zu: %s", c->name, k, spc_strerror(rc));
        }
    }
    bool *seen = calloc(n_heaps, sizeof(*seen));
    struct spc_decoded_heap *h;
    size_t got = 0;
    while (spc_decoder_pop(dec, &h) == 1) {
        size_t j = 0;
        while (j < n_heaps &&
               (seen[j] || (uint64_t)json_integer_value(json_object_get(json_array_get(heaps, j),
                                                                        "cnt")) != h->cnt))
            j++;
        cr_assert_lt(j, n_heaps, "%s: unexpected heap cnt %llu", c->name,
                     (unsigned long long)h->cnt);
        seen[j] = true;
        check_heap(c, json_array_get(heaps, j), h);
        spc_decoded_heap_free(h);
        got++;
    }
    cr_expect_eq(got, n_heaps, "%s: %zu heaps decoded, expected %zu", c->name, got, n_heaps);
    free(seen);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.packets, c->n_pkts);
    cr_expect_eq(st.bad_packets, 0);
    cr_expect_eq(st.heaps_incomplete, 0);
    spc_decoder_destroy(dec);
}

Test(vectors, spead2_corpus_decodes)
{
    size_t n_names;
    char **names = manifest(&n_names);
    uint64_t rng = 0x5eed;
    for (size_t i = 0; i < n_names; i++) {
        struct vcase c;
        vcase_load(&c, names[i]);
        size_t *order = malloc(c.n_pkts * sizeof(*order));
        for (size_t k = 0; k < c.n_pkts; k++)
            order[k] = k;
        run_case(&c, order, false);
        run_case(&c, NULL, true);
        for (size_t k = 0; k < c.n_pkts; k++) /* reversed */
            order[k] = c.n_pkts - 1 - k;
        run_case(&c, order, false);
        for (size_t k = c.n_pkts; k > 1; k--) { /* shuffled */
            size_t j = tu_rand(&rng) % k, t = order[k - 1];
            order[k - 1] = order[j];
            order[j] = t;
        }
        run_case(&c, order, false);
        free(order);
        vcase_free(&c);
        free(names[i]);
    }
    free(names);
}

Test(vectors, pyspead_bugcompat7_descriptors)
{
    struct vcase c;
    vcase_load(&c, "pyspead_bugcompat7");
    cr_assert_eq(c.bug_compat, 7);
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 7);
    cr_assert_eq(add(dec, c.pkts[0], c.lens[0]), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_assert_eq(h->n_items, 10);
    struct spc_descriptor_info *d[5];
    for (int i = 0; i < 5; i++)
        cr_assert_eq(spc_descriptor_parse(&h->items[i], &h->flavour, &d[i]), 0);
    cr_expect_str_eq(d[0]->dtype_header, "{'descr': '>u2', 'fortran_order': False, 'shape': (2, 3)}");
    cr_expect_str_eq(d[0]->dtype, "<u2"); /* swapped back */
    cr_expect_str_eq(d[1]->dtype, ">f8");
    cr_expect_eq(d[2]->format[0].bits, 48);
    cr_expect_eq(d[3]->shape[0], SPC_DIM_VARIABLE);
    cr_assert_eq(d[4]->n_format, 2);
    cr_expect_eq(d[4]->format[1].type, 'i');
    cr_expect_eq(d[4]->format[1].bits, 12);
    /* With bug_compat 0 the 8-byte shape entries do not divide and parsing refuses. */
    struct spc_flavour f0 = {40, 0};
    struct spc_descriptor_info *bad = NULL;
    cr_expect_eq(spc_descriptor_parse(&h->items[0], &f0, &bad), -SPC_EBAD_DESCRIPTOR);
    for (int i = 0; i < 5; i++)
        spc_descriptor_info_free(d[i]);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
    vcase_free(&c);
}

Test(vectors, flavour_64_40_descriptors)
{
    struct vcase c;
    vcase_load(&c, "flavour_64_40");
    struct spc_decoder *dec = new_decoder(1 << 20, 4, 0);
    cr_assert_eq(add(dec, c.pkts[0], c.lens[0]), 0);
    struct spc_decoded_heap *h = pop(dec);
    cr_assert_eq(h->n_items, 6);
    struct spc_descriptor_info *d = NULL;
    cr_assert_eq(spc_descriptor_parse(&h->items[2], &h->flavour, &d), 0);
    cr_expect_eq(d->id, 4098);
    cr_expect_str_eq(d->name, "label");
    cr_assert_eq(d->n_dims, 1);
    cr_expect_eq(d->shape[0], SPC_DIM_VARIABLE);
    cr_assert_eq(d->n_format, 1);
    cr_expect_eq(d->format[0].type, 'c');
    cr_expect_eq(d->format[0].bits, 8);
    spc_descriptor_info_free(d);
    cr_assert_eq(spc_descriptor_parse(&h->items[0], &h->flavour, &d), 0);
    cr_expect_str_eq(d->dtype, "<u4");
    cr_expect_eq(d->dtype_n_dims, 0);
    spc_descriptor_info_free(d);
    /* A data item is not a descriptor. */
    cr_expect_eq(spc_descriptor_parse(&h->items[3], &h->flavour, &d), -SPC_EBAD_DESCRIPTOR);
    cr_expect_eq(spc_descriptor_parse(&h->items[5], &h->flavour, &d), -SPC_EBAD_DESCRIPTOR);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
    vcase_free(&c);
}

/* ------------------------------------------------------------ robustness */

Test(robustness, mutated_vector_packets)
{
    /* Bit flips, truncations and splices of real packets: every outcome is 0 or a
     * decoder error, and whatever is popped parses or is refused cleanly (ASan checks the
     * memory side). */
    struct vcase c;
    vcase_load(&c, "descriptors_and_data");
    uint64_t rng = 42;
    struct spc_decoder *dec = new_decoder(4096, 3, 0);
    for (int iter = 0; iter < 3000; iter++) {
        const uint8_t *src = c.pkts[0];
        size_t len = c.lens[0];
        uint8_t *p = malloc(len);
        memcpy(p, src, len);
        int flips = 1 + (int)(tu_rand(&rng) % 4);
        for (int f = 0; f < flips; f++)
            p[tu_rand(&rng) % len] ^= (uint8_t)(1u << (tu_rand(&rng) % 8));
        size_t cut = (tu_rand(&rng) % 4 == 0) ? tu_rand(&rng) % (len + 1) : len;
        int rc = add(dec, p, cut);
        cr_assert(rc == 0 || rc == -SPC_EBAD_MAGIC || rc == -SPC_EBAD_VERSION ||
                      rc == -SPC_EBAD_WIDTHS || rc == -SPC_ETRUNCATED || rc == -SPC_EMISSING_FIELD ||
                      rc == -SPC_EBAD_OFFSET || rc == -SPC_EINCONSISTENT ||
                      rc == -SPC_EHEAP_LIMIT || rc == -SPC_EBAD_POINTER,
                  "unexpected %d", rc);
        free(p);
        if (iter % 50 == 0)
            spc_decoder_flush(dec);
        struct spc_decoded_heap *h;
        while (spc_decoder_pop(dec, &h) == 1) {
            for (size_t i = 0; i < h->n_items; i++) {
                if (h->items[i].id != SPC_ID_DESCRIPTOR)
                    continue;
                struct spc_descriptor_info *d = NULL;
                int r = spc_descriptor_parse(&h->items[i], &h->flavour, &d);
                cr_assert(r == 0 || r == -SPC_EBAD_DESCRIPTOR);
                spc_descriptor_info_free(d);
            }
            spc_decoded_heap_free(h);
        }
    }
    spc_decoder_destroy(dec);
    vcase_free(&c);
}

/* Sized decoder config and stats (speadcast.h): fields past a caller's struct_size take
 * their defaults; stats fill only what struct_size covers. */
Test(decoder, sized_config_and_stats)
{
    struct spc_decoder *dec;
    struct spc_decoder_config c = SPC_DECODER_CONFIG_DEFAULT;
    c.struct_size = 0;
    cr_assert_eq(spc_decoder_create(&dec, &c), -EINVAL);
    c = SPC_DECODER_CONFIG_DEFAULT;
    c.bug_compat = 99; /* beyond the struct_size below: ignored, the default 0 applies */
    c.struct_size = offsetof(struct spc_decoder_config, bug_compat);
    cr_assert_eq(spc_decoder_create(&dec, &c), 0);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    st.struct_size = offsetof(struct spc_decoder_stats, bad_packets);
    st.bad_packets = 77;
    cr_assert_lt(spc_decoder_add_packet(dec, "junk", 4, NULL), 0);
    spc_decoder_stats(dec, &st);
    cr_assert_eq(st.packets, 0);
    cr_assert_eq(st.bad_packets, 77, "beyond struct_size nothing is written");
    spc_decoder_destroy(dec);
}
