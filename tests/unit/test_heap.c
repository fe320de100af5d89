/* Heaps, descriptors and the packetizer: every encoder error code, references (data changed
 * after adding is what is sent), adopted buffers, the copy fallback and spc_packet_write. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "testutil.h"
#include "vectorcase.h"

static struct spc_heap *new_heap(unsigned hab)
{
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, hab, 0), 0);
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, &f), 0);
    return h;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static struct vc_packets packetize(const struct spc_heap *h, uint64_t cnt, size_t mps)
{
    struct vc_packets pk;
    int rc = vc_packetize(h, cnt, mps, &pk);
    cr_assert_eq(rc, 0, "packetize: %s", spc_strerror(rc));
    cr_assert_eq(pk.n, pk.predicted_count);
    return pk;
}

/* ------------------------------------------------------------------ flavours */

Test(flavour, valid_widths)
{
    for (unsigned hab = 8; hab <= 56; hab += 8) {
        struct spc_flavour f;
        cr_expect_eq(spc_flavour_init(&f, hab, SPC_BUG_COMPAT_PYSPEAD_0_5_2), 0, "HAB %u", hab);
        cr_expect_eq(spc_flavour_max_id(&f), (UINT64_C(1) << (63 - hab)) - 1);
        cr_expect_eq(spc_flavour_max_value(&f), (UINT64_C(1) << hab) - 1);
    }
    struct spc_flavour d = SPC_FLAVOUR_DEFAULT;
    cr_expect_eq(d.heap_address_bits, 40);
    cr_expect_eq(d.bug_compat, 0);
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    cr_expect_eq(spc_heap_flavour(h)->heap_address_bits, 40);
    spc_heap_destroy(h);
}

Test(flavour, bad_flavours)
{
    static const unsigned bad_bits[] = {0, 4, 44, 60, 64, 72};
    struct spc_flavour f = {40, 0};
    for (size_t i = 0; i < sizeof(bad_bits) / sizeof(bad_bits[0]); i++) {
        cr_expect_eq(spc_flavour_init(&f, bad_bits[i], 0), -SPC_EFLAVOUR, "HAB %u", bad_bits[i]);
        struct spc_flavour g = {bad_bits[i], 0};
        struct spc_heap *h = NULL;
        cr_expect_eq(spc_heap_create(&h, &g), -SPC_EFLAVOUR, "HAB %u", bad_bits[i]);
        cr_expect_null(h);
    }
    cr_expect_eq(spc_flavour_init(&f, 40, 8), -SPC_EFLAVOUR);
    cr_expect_eq(spc_flavour_init(&f, 40, 0xffffffffu), -SPC_EFLAVOUR);
    cr_expect_eq(f.heap_address_bits, 40, "a failed init leaves *out alone");
    struct spc_flavour g = {48, 8};
    cr_expect_eq(spc_flavour_check(&g), -SPC_EFLAVOUR);
}

/* ---------------------------------------------------------------- item IDs */

Test(errors, item_id_range_64_40)
{
    struct spc_heap *h = new_heap(40);
    uint8_t b[8] = {0};
    cr_expect_eq(spc_heap_add_item(h, 0x7FFFFF, b, 8, false), 0);
    cr_expect_eq(spc_heap_add_item(h, 0x800000, b, 8, false), -SPC_EITEM_ID);
    cr_expect_eq(spc_heap_add_item(h, 0x800000, b, 2, true), -SPC_EITEM_ID);
    cr_expect_eq(spc_heap_add_inline(h, 0x800000, 1), -SPC_EITEM_ID);
    cr_expect_eq(spc_heap_add_inline(h, UINT64_MAX, 1), -SPC_EITEM_ID);
    /* IDs 0-4 frame the packet itself. */
    for (uint64_t id = 0; id <= SPC_ID_PAYLOAD_LENGTH; id++) {
        cr_expect_eq(spc_heap_add_item(h, id, b, 8, false), -SPC_EITEM_ID, "id %llu", (unsigned long long)id);
        cr_expect_eq(spc_heap_add_inline(h, id, 1), -SPC_EITEM_ID, "id %llu", (unsigned long long)id);
    }
    struct spc_descriptor d = {.id = 0x800000, .dtype = "<u2"};
    cr_expect_eq(spc_heap_add_descriptor(h, &d), -SPC_EITEM_ID);
    d.id = 0;
    cr_expect_eq(spc_heap_add_descriptor(h, &d), -SPC_EITEM_ID);
    d.id = 0x7FFFFF;
    cr_expect_eq(spc_heap_add_descriptor(h, &d), 0);
    cr_expect_eq(spc_heap_n_items(h), 2, "failed adds leave the heap unchanged");
    spc_heap_destroy(h);
}

Test(errors, item_id_range_64_56)
{
    struct spc_heap *h = new_heap(56);
    uint8_t b[8] = {0};
    cr_expect_eq(spc_heap_add_item(h, 0x7F, b, 8, false), 0);
    cr_expect_eq(spc_heap_add_item(h, 0x80, b, 8, false), -SPC_EITEM_ID);
    cr_expect_eq(spc_heap_add_item(h, 0x1000, b, 8, false), -SPC_EITEM_ID);
    cr_expect_eq(spc_heap_add_inline(h, 0x80, 1), -SPC_EITEM_ID);
    struct spc_flavour f = {56, 0};
    struct spc_descriptor d = {.id = 0x80, .dtype = "<u2"};
    cr_expect_eq(spc_descriptor_check(&d, &f), -SPC_EITEM_ID);
    d.id = 0x7F;
    cr_expect_eq(spc_descriptor_check(&d, &f), 0);
    spc_heap_destroy(h);
}

Test(errors, immediate_too_wide)
{
    struct spc_heap *h = new_heap(40);
    cr_expect_eq(spc_heap_add_inline(h, 0x1000, (UINT64_C(1) << 40) - 1), 0);
    cr_expect_eq(spc_heap_add_inline(h, 0x1001, UINT64_C(1) << 40), -SPC_EIMMEDIATE_WIDTH);
    cr_expect_eq(spc_heap_add_inline(h, 0x1001, UINT64_MAX), -SPC_EIMMEDIATE_WIDTH);
    spc_heap_destroy(h);
    h = new_heap(48);
    cr_expect_eq(spc_heap_add_inline(h, 0x1000, (UINT64_C(1) << 48) - 1), 0);
    cr_expect_eq(spc_heap_add_inline(h, 0x1001, UINT64_C(1) << 48), -SPC_EIMMEDIATE_WIDTH);
    spc_heap_destroy(h);
}

Test(errors, null_data)
{
    struct spc_heap *h = new_heap(40);
    cr_expect_eq(spc_heap_add_item(h, 0x1000, NULL, 1, false), -EINVAL);
    cr_expect_eq(spc_heap_add_item(h, 0x1000, NULL, 0, false), 0);
    cr_expect_eq(spc_heap_add_item(h, 0x1001, NULL, 0, true), 0);
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------ packet sizes */

Test(errors, packet_size_minimum)
{
    struct spc_heap *h = new_heap(40);
    cr_assert_eq(spc_heap_add_inline(h, 0x1000, 7), 0);
    struct spc_packetizer pz;
    cr_expect_eq(spc_heap_validate(h, 1, 55), -SPC_EPACKET_SIZE);
    cr_expect_eq(spc_heap_validate(h, 1, 0), -SPC_EPACKET_SIZE);
    cr_expect_eq(spc_packetizer_init(&pz, h, 1, 55), -SPC_EPACKET_SIZE);
    cr_expect_eq(spc_heap_wire_size(h, 1, 55), -SPC_EPACKET_SIZE);
    cr_expect_eq(spc_heap_validate(h, 1, 56), 0);
    struct vc_packets pk = packetize(h, 1, 56);
    for (size_t i = 0; i < pk.n; i++)
        cr_expect_leq(pk.p[i].len, 56);
    vc_packets_free(&pk);
    spc_heap_destroy(h);
}

Test(errors, packet_size_rounds_down)
{
    static uint8_t data[200];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    struct spc_heap *h = new_heap(40);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, data, sizeof(data), false), 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x1001, 3), 0);
    cr_expect_eq(spc_packet_scratch_size(75), 72);
    struct vc_packets a = packetize(h, 9, 75), b = packetize(h, 9, 72);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        cr_expect_leq(a.p[i].len, 72);
        cr_expect(vc_same_bytes("mps 75 vs 72", a.p[i].data, a.p[i].len, b.p[i].data, b.p[i].len));
    }
    cr_expect_eq(spc_heap_wire_size(h, 9, 75), spc_heap_wire_size(h, 9, 72));
    vc_packets_free(&a);
    vc_packets_free(&b);
    spc_heap_destroy(h);
}

Test(errors, repeat_pointers_too_small)
{
    /* mps 128: (128 - 48) / 8 = 10 pointers per packet; repeating needs n_items < 10. */
    struct spc_heap *h = new_heap(48);
    spc_heap_set_repeat_pointers(h, true);
    cr_expect(spc_heap_repeat_pointers(h));
    for (unsigned i = 0; i < 9; i++)
        cr_assert_eq(spc_heap_add_inline(h, 0x1000 + i, i), 0);
    cr_expect_eq(spc_heap_validate(h, 1, 128), 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x1009, 9), 0);
    cr_expect_eq(spc_heap_validate(h, 1, 128), -SPC_EREPEAT_POINTERS);
    struct spc_packetizer pz;
    cr_expect_eq(spc_packetizer_init(&pz, h, 1, 128), -SPC_EREPEAT_POINTERS);
    cr_expect_eq(spc_heap_validate(h, 1, 136), 0);
    spc_heap_set_repeat_pointers(h, false);
    cr_expect_eq(spc_heap_validate(h, 1, 128), 0);
    spc_heap_destroy(h);
}

/* The header's 16-bit pointer count includes the 4 standard pointers. */
Test(errors, too_many_pointers)
{
    const size_t huge = 1u << 20; /* room for 131066 pointers */
    struct spc_heap *h = new_heap(40);
    spc_heap_set_repeat_pointers(h, true);
    for (unsigned i = 0; i < 65530; i++)
        cr_assert_eq(spc_heap_add_inline(h, 0x1000 + i, i), 0);
    /* 65530 items + the NULL pointer + 4 = 65535: just fits. */
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, 1, huge), 0);
    cr_expect_eq(spc_packetizer_count(&pz), 1);
    uint8_t *scratch = malloc(spc_packet_scratch_size(huge));
    struct spc_packet pkt;
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    cr_expect_eq(scratch[6] << 8 | scratch[7], 65535);
    cr_expect_eq(spc_packetizer_next(&pz, scratch, &pkt), 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x1000 + 65530, 1), 0);
    cr_expect_eq(spc_heap_validate(h, 1, huge), -SPC_ETOO_MANY_POINTERS);
    cr_expect_eq(spc_packetizer_init(&pz, h, 1, huge), -SPC_ETOO_MANY_POINTERS);
    /* Without repeat_pointers the list spills into a second packet instead. */
    spc_heap_set_repeat_pointers(h, false);
    for (unsigned i = 65531; i < 70000; i++)
        cr_assert_eq(spc_heap_add_inline(h, 0x1000 + i, 1), 0);
    cr_assert_eq(spc_packetizer_init(&pz, h, 1, huge), 0);
    cr_expect_eq(spc_packetizer_count(&pz), 2);
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    cr_expect_eq(scratch[6] << 8 | scratch[7], 65535);
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    /* 70000 - 65531 items left, plus the NULL pointer. */
    cr_expect_eq(scratch[6] << 8 | scratch[7], 4 + 70000 - 65531 + 1);
    cr_expect_eq(spc_packetizer_next(&pz, scratch, &pkt), 0);
    free(scratch);
    spc_heap_destroy(h);
}

Test(errors, heap_too_large)
{
    /* SPEAD-64-8 addresses 255 payload bytes. */
    static uint8_t big[300];
    struct spc_heap *h = new_heap(8);
    cr_expect_eq(spc_heap_add_item(h, 0x1000, big, 300, false), -SPC_EHEAP_TOO_LARGE);
    cr_expect_eq(spc_heap_add_item(h, 0x1000, big, 200, false), 0);
    cr_expect_eq(spc_heap_add_item(h, 0x1001, big, 56, false), -SPC_EHEAP_TOO_LARGE);
    cr_expect_eq(spc_heap_add_item(h, 0x1001, big, 55, false), 0);
    cr_expect_eq(spc_heap_payload_size(h), 255);
    cr_expect_eq(spc_heap_validate(h, 1, 1472), 0);
    /* Descriptor IDs are also immediates, so at most 255 here. */
    struct spc_descriptor d = {.id = 0x1000, .name = "x", .dtype = "<u2"};
    cr_expect_eq(spc_heap_add_descriptor(h, &d), -SPC_EITEM_ID);
    d.id = 0x20;
    cr_expect_eq(spc_heap_add_descriptor(h, &d), -SPC_EHEAP_TOO_LARGE);
    spc_heap_destroy(h);

    /* Padding counts too: 32 pointers at one per packet need 32 * 8 + 1 bytes. */
    h = new_heap(8);
    for (unsigned i = 0; i < 32; i++)
        cr_assert_eq(spc_heap_add_inline(h, 0x1000 + i, i), 0);
    cr_expect_eq(spc_heap_validate(h, 1, 56), -SPC_EHEAP_TOO_LARGE);
    cr_expect_eq(spc_heap_wire_size(h, 1, 56), -SPC_EHEAP_TOO_LARGE);
    cr_expect_eq(spc_heap_validate(h, 1, 1472), 0);
    spc_heap_destroy(h);
}

Test(errors, heap_cnt)
{
    struct spc_heap *h = new_heap(40);
    struct spc_packetizer pz;
    cr_expect_eq(spc_heap_validate(h, (UINT64_C(1) << 40) - 1, 1472), 0);
    cr_expect_eq(spc_heap_validate(h, UINT64_C(1) << 40, 1472), -SPC_EHEAP_CNT);
    cr_expect_eq(spc_packetizer_init(&pz, h, UINT64_C(1) << 40, 1472), -SPC_EHEAP_CNT);
    cr_expect_eq(spc_heap_wire_size(h, UINT64_MAX, 1472), -SPC_EHEAP_CNT);
    spc_heap_destroy(h);
    h = new_heap(48);
    cr_expect_eq(spc_heap_validate(h, (UINT64_C(1) << 48) - 1, 1472), 0);
    cr_expect_eq(spc_heap_validate(h, UINT64_C(1) << 48, 1472), -SPC_EHEAP_CNT);
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------- descriptors */

static const int64_t shape_var2[] = {SPC_DIM_VARIABLE, 3, SPC_DIM_VARIABLE};
static const int64_t shape_var1[] = {SPC_DIM_VARIABLE, 3};
static const struct spc_format_field fmt_u8[] = {{'u', 8}};

static void expect_descriptor_error(const struct spc_descriptor *d, int code, const char *what)
{
    struct spc_flavour f = SPC_FLAVOUR_DEFAULT;
    cr_expect_eq(spc_descriptor_check(d, &f), code, "%s: check", what);
    uint8_t *enc = NULL;
    size_t len = 0;
    cr_expect_eq(spc_descriptor_encode(d, &f, &enc, &len), code, "%s: encode", what);
    cr_expect_null(enc, "%s: nothing allocated", what);
    struct spc_heap *h = new_heap(40);
    cr_expect_eq(spc_heap_add_descriptor(h, d), code, "%s: add", what);
    cr_expect_eq(spc_heap_n_items(h), 0);
    spc_heap_destroy(h);
}

Test(errors, variable_dims)
{
    struct spc_descriptor d = {.id = 0x1000, .shape = shape_var2, .n_dims = 3, .format = fmt_u8, .n_format = 1};
    expect_descriptor_error(&d, -SPC_EVARIABLE_DIMS, "two variable dims");
    d.n_dims = 2;
    struct spc_flavour f = SPC_FLAVOUR_DEFAULT;
    cr_expect_eq(spc_descriptor_check(&d, &f), 0, "one variable dim with a format is fine");
    struct spc_descriptor t = {.id = 0x1000, .shape = shape_var1, .n_dims = 2, .dtype = "<u2"};
    expect_descriptor_error(&t, -SPC_EVARIABLE_DIMS, "variable dim with a dtype");
}

Test(errors, format_dtype)
{
    struct spc_descriptor both = {.id = 0x1000, .format = fmt_u8, .n_format = 1, .dtype = "<u1"};
    expect_descriptor_error(&both, -SPC_EFORMAT_DTYPE, "both");
    struct spc_descriptor neither = {.id = 0x1000, .name = "x"};
    expect_descriptor_error(&neither, -SPC_EFORMAT_DTYPE, "neither");
}

Test(errors, descriptor_other)
{
    struct spc_descriptor fortran = {.id = 0x1000, .format = fmt_u8, .n_format = 1, .fortran_order = true};
    expect_descriptor_error(&fortran, -SPC_EDESCRIPTOR, "format with Fortran order");
    static const struct spc_format_field zero[] = {{'u', 0}};
    struct spc_descriptor zbits = {.id = 0x1000, .format = zero, .n_format = 1};
    expect_descriptor_error(&zbits, -SPC_EDESCRIPTOR, "zero-bit field");
    static const int64_t neg[] = {-2};
    struct spc_descriptor negative = {.id = 0x1000, .shape = neg, .n_dims = 1, .dtype = "<u2"};
    expect_descriptor_error(&negative, -SPC_EDESCRIPTOR, "negative size");
    struct spc_descriptor id0 = {.id = 0, .dtype = "<u2"};
    expect_descriptor_error(&id0, -SPC_EITEM_ID, "descriptor id 0");
    /* Fortran order with a dtype is valid and says so in the header. */
    static const int64_t s23[] = {2, 3};
    struct spc_descriptor fd = {.id = 0x1000, .shape = s23, .n_dims = 2, .dtype = "<u2", .fortran_order = true};
    char buf[128];
    size_t n = spc_dtype_header(&fd, false, buf, sizeof(buf));
    cr_expect_str_eq(buf, "{'descr': '<u2', 'fortran_order': True, 'shape': (2, 3)}");
    cr_expect_eq(n, strlen(buf));
    /* Truncation reports the full length and stays NUL-terminated. */
    cr_expect_eq(spc_dtype_header(&fd, true, buf, 10), n);
    cr_expect_str_eq(buf, "{'descr':");
    spc_dtype_header(&fd, true, buf, sizeof(buf));
    cr_expect_str_eq(buf, "{'descr': '>u2', 'fortran_order': True, 'shape': (2, 3)}");
}

/* ------------------------------------------------------------------ strerror */

Test(errors, strerror_texts)
{
    for (int a = SPC_ERR_BASE; a < SPC_ERR_END; a++) {
        const char *t = spc_strerror(-a);
        cr_assert_not_null(t);
        cr_expect_gt(strlen(t), 0, "code %d", a);
        cr_expect_str_neq(t, "unknown error", "code %d has no text", a);
        cr_expect_str_eq(spc_strerror(a), t, "code %d: sign does not matter", a);
        for (int b = SPC_ERR_BASE; b < a; b++)
            cr_expect_str_neq(t, spc_strerror(-b), "codes %d and %d share a text", a, b);
    }
    cr_expect_str_eq(spc_strerror(0), "success");
    cr_expect_str_eq(spc_strerror(-SPC_ERR_END), "unknown error");
    cr_expect_str_eq(spc_strerror(-100000), "unknown error");
    cr_expect_str_neq(spc_strerror(-EINVAL), "unknown error");
    cr_expect_str_neq(spc_strerror(-ENOMEM), spc_strerror(-EINVAL));
}

/* ------------------------------------------------------ references, adoption */

Test(heap, data_changed_after_adding_is_sent)
{
    uint8_t addressed[16], imm[3] = {1, 2, 3};
    memset(addressed, 0x11, sizeof(addressed));
    struct spc_heap *h = new_heap(40);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, addressed, sizeof(addressed), false), 0);
    cr_assert_eq(spc_heap_add_item(h, 0x1001, imm, sizeof(imm), true), 0);
    memset(addressed, 0x22, sizeof(addressed));
    imm[0] = 0xa;
    imm[2] = 0xc;
    struct vc_packets pk = packetize(h, 1, 1472);
    cr_assert_eq(pk.n, 1);
    /* Pointers: 0x1000 addressed at 0, 0x1001 immediate 0a 02 0c right-aligned. */
    const uint8_t *p = pk.p[0].data;
    cr_assert_eq(pk.p[0].len, 40 + 16 + 16);
    cr_expect_eq(be64(p + 40), UINT64_C(0x1000) << 40);
    cr_expect_eq(be64(p + 48), UINT64_C(1) << 63 | UINT64_C(0x1001) << 40 | 0x0a020c);
    for (size_t i = 0; i < 16; i++)
        cr_expect_eq(p[56 + i], 0x22);
    vc_packets_free(&pk);
    /* Updated in place again between two walks of the same heap. */
    imm[1] = 0xb;
    memset(addressed, 0x33, sizeof(addressed));
    pk = packetize(h, 2, 1472);
    p = pk.p[0].data;
    cr_expect_eq(be64(p + 48), UINT64_C(1) << 63 | UINT64_C(0x1001) << 40 | 0x0a0b0c);
    cr_expect_eq(p[56], 0x33);
    vc_packets_free(&pk);
    spc_heap_destroy(h);
}

Test(heap, payload_references_item_memory)
{
    static uint8_t data[1000];
    struct spc_heap *h = new_heap(40);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, data, sizeof(data), false), 0);
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, 1, 1472), 0);
    uint8_t scratch[1472];
    struct spc_packet pkt;
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    cr_assert_eq(pkt.n_iov, 2);
    cr_expect_eq(pkt.iov[0].iov_base, scratch);
    cr_expect_eq(pkt.iov[1].iov_base, data, "payload is gathered from the item, not copied");
    cr_expect_eq(pkt.iov[1].iov_len, sizeof(data));
    cr_expect_eq(spc_packetizer_next(&pz, scratch, &pkt), 0);
    cr_expect(spc_packetizer_done(&pz));
    spc_heap_destroy(h);
}

static int free_count;
static void counting_free(void *p)
{
    free_count++;
    free(p);
}

Test(heap, adopt_frees_buffer)
{
    free_count = 0;
    struct spc_heap *h = new_heap(40);
    uint8_t *buf = malloc(64);
    memset(buf, 0x5a, 64);
    cr_assert_eq(spc_heap_adopt(h, buf, counting_free), 0);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, buf, 64, false), 0);
    struct vc_packets pk = packetize(h, 1, 1472);
    cr_expect_eq(pk.p[0].data[pk.p[0].len - 1], 0x5a);
    vc_packets_free(&pk);
    cr_expect_eq(free_count, 0);
    spc_heap_destroy(h);
    cr_expect_eq(free_count, 1);

    /* clear frees too, and keeps the flavour and repeat_pointers. */
    free_count = 0;
    h = new_heap(48);
    spc_heap_set_repeat_pointers(h, true);
    cr_assert_eq(spc_heap_adopt(h, malloc(8), counting_free), 0);
    cr_assert_eq(spc_heap_adopt(h, malloc(8), counting_free), 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x1000, 1), 0);
    spc_heap_clear(h);
    cr_expect_eq(free_count, 2);
    cr_expect_eq(spc_heap_n_items(h), 0);
    cr_expect_eq(spc_heap_payload_size(h), 0);
    cr_expect(spc_heap_repeat_pointers(h));
    cr_expect_eq(spc_heap_flavour(h)->heap_address_bits, 48);
    spc_heap_destroy(h);
    cr_expect_eq(free_count, 2);

    /* NULL free_fn means free(); ASan reports a leak if it is not called. */
    h = new_heap(40);
    cr_assert_eq(spc_heap_adopt(h, malloc(32), NULL), 0);
    spc_heap_destroy(h);
}

/* A packet whose payload spans more items than SPC_PACKET_MAX_IOV - 1 is copied into
 * scratch; its bytes must be the same as if it had been gathered. */
Test(heap, copy_fallback)
{
    enum { N = 40, LEN = 3 };
    uint8_t data[N][LEN];
    struct spc_heap *h = new_heap(40);
    for (unsigned i = 0; i < N; i++) {
        for (unsigned j = 0; j < LEN; j++)
            data[i][j] = (uint8_t)(i * 16 + j);
        cr_assert_eq(spc_heap_add_item(h, 0x1000 + i, data[i], LEN, false), 0);
    }
    const size_t mps = 1472;
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, 77, mps), 0);
    cr_assert_eq(spc_packetizer_count(&pz), 1);
    uint8_t *scratch = malloc(spc_packet_scratch_size(mps));
    struct spc_packet pkt;
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    cr_expect_leq(pkt.n_iov, SPC_PACKET_MAX_IOV);
    size_t sum = 0;
    for (unsigned i = 0; i < pkt.n_iov; i++)
        sum += pkt.iov[i].iov_len;
    cr_expect_eq(sum, pkt.size);

    /* The expected packet, built by hand. */
    size_t size = 40 + 8 * N + N * LEN;
    uint8_t *want = calloc(1, size);
    put_be64(want, UINT64_C(0x5304030500000000) | (4 + N));
    put_be64(want + 8, UINT64_C(0x8000010000000000) | 77);
    put_be64(want + 16, UINT64_C(0x8000020000000000) | N * LEN);
    put_be64(want + 24, UINT64_C(0x8000030000000000));
    put_be64(want + 32, UINT64_C(0x8000040000000000) | N * LEN);
    for (unsigned i = 0; i < N; i++) {
        put_be64(want + 40 + 8 * i, (UINT64_C(0x1000) + i) << 40 | i * LEN);
        memcpy(want + 40 + 8 * N + i * LEN, data[i], LEN);
    }
    cr_assert_eq(pkt.size, size);
    uint8_t *got = malloc(size);
    cr_assert_eq(spc_packet_write(&pkt, got, size), (int64_t)size);
    cr_expect(vc_same_bytes("copy fallback", got, size, want, size));
    cr_expect_eq(spc_packetizer_next(&pz, scratch, &pkt), 0);

    /* Across packet boundaries too: at mps 96 the 40 pointers spill over 7 packets (8, then
     * 24 payload bytes, the latter from 9 items), then one payload-only packet; together
     * the payloads are the heap's concatenated items. */
    struct vc_packets pk = packetize(h, 77, 96);
    size_t off = 0;
    for (size_t i = 0; i < pk.n; i++) {
        const uint8_t *p = pk.p[i].data;
        size_t npt = (size_t)(p[6] << 8 | p[7]);
        size_t plen = pk.p[i].len - 8 - 8 * npt;
        cr_expect_eq(be64(p + 24) & 0xffffffffff, off, "packet %zu offset", i);
        cr_expect(vc_same_bytes("copy fallback, mps 96", p + 8 + 8 * npt, plen, want + 40 + 8 * N + off, plen));
        off += plen;
    }
    cr_expect_eq(off, N * LEN);
    vc_packets_free(&pk);
    free(got);
    free(want);
    free(scratch);
    spc_heap_destroy(h);
}

Test(heap, packet_write_enospc)
{
    static uint8_t data[100];
    struct spc_heap *h = new_heap(40);
    cr_assert_eq(spc_heap_add_item(h, 0x1000, data, sizeof(data), false), 0);
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, 1, 1472), 0);
    uint8_t scratch[1472];
    struct spc_packet pkt;
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    cr_assert_eq(pkt.size, 148);
    uint8_t out[200];
    memset(out, 0xee, sizeof(out));
    cr_expect_eq(spc_packet_write(&pkt, out, 147), -ENOSPC);
    cr_expect_eq(spc_packet_write(&pkt, out, 0), -ENOSPC);
    for (size_t i = 0; i < sizeof(out); i++)
        cr_assert_eq(out[i], 0xee, "nothing written on -ENOSPC");
    cr_expect_eq(spc_packet_write(&pkt, out, 148), 148);
    cr_expect_eq(out[148], 0xee);
    spc_heap_destroy(h);
}

Test(heap, empty_heap_wire_size)
{
    struct spc_heap *h = new_heap(40);
    cr_expect_eq(spc_heap_wire_size(h, 1, 1472), 49);
    cr_expect_eq(spc_heap_n_items(h), 0);
    spc_heap_destroy(h);
    spc_heap_destroy(NULL);
}
