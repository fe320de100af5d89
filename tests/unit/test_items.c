/* Items, item groups and the heap generator: descriptor checks, value packing and
 * referencing, versions, group replacement and the generator's stale rules. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "testutil.h"
#include "vectorcase.h"

/* ------------------------------------------------------------------ helpers */

static struct spc_item *make(const struct spc_descriptor *d)
{
    struct spc_item *it = NULL;
    char err[256];
    int rc = spc_item_create(&it, d, err, sizeof err);
    cr_assert_eq(rc, 0, "create %s: %s", d->name, err);
    return it;
}

static void expect_create_error(const struct spc_descriptor *d, int code, const char *text)
{
    struct spc_item *it = NULL;
    char err[256];
    int rc = spc_item_create(&it, d, err, sizeof err);
    cr_assert_eq(rc, code, "%s: got %d (%s), want %d", d->name, rc, err, code);
    cr_assert_null(it);
    cr_assert(strstr(err, text), "%s: error text '%s' lacks '%s'", d->name, err, text);
}

static void expect_value(const struct spc_item *it, const char *hex)
{
    const void *data;
    size_t len, want_len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    uint8_t *want = tu_hex_decode(hex, &want_len);
    cr_assert(vc_same_bytes(spc_item_name(it), data, len, want, want_len), "value of %s", spc_item_name(it));
    free(want);
}

/* What a heap carries, in pointer order: 'D' + described ID or 'V' + item ID. */
struct entry {
    char kind;
    uint64_t id;
    uint8_t bytes[64];
    size_t len;
};

static size_t decode(const struct spc_heap *heap, struct entry *out, size_t cap)
{
    struct vc_packets pk;
    cr_assert_eq(vc_packetize(heap, 1, 1472, &pk), 0);
    struct spc_decoder *dec;
    cr_assert_eq(spc_decoder_create(&dec, NULL), 0);
    for (size_t i = 0; i < pk.n; i++)
        cr_assert_eq(spc_decoder_add_packet(dec, pk.p[i].data, pk.p[i].len, NULL), 0);
    struct spc_decoded_heap *h;
    cr_assert_eq(spc_decoder_pop(dec, &h), 1);
    cr_assert(h->complete);
    size_t n = 0;
    for (size_t i = 0; i < h->n_items; i++) {
        const struct spc_decoded_item *it = &h->items[i];
        cr_assert_lt(n, cap);
        if (it->id == SPC_ID_DESCRIPTOR) {
            struct spc_descriptor_info *info;
            cr_assert_eq(spc_descriptor_parse(it, spc_heap_flavour(heap), &info), 0);
            out[n++] = (struct entry){'D', info->id, {0}, 0};
            spc_descriptor_info_free(info);
        } else {
            struct entry e = {'V', it->id, {0}, it->len < 64 ? it->len : 64};
            memcpy(e.bytes, it->data, e.len);
            out[n++] = e;
        }
    }
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
    vc_packets_free(&pk);
    return n;
}

/* Compares a heap's contents with a spec like "D1000 V1000 V1001". */
static void expect_heap(const struct spc_heap *heap, const char *spec)
{
    struct entry e[64];
    size_t n = decode(heap, e, 64);
    char got[1024] = "";
    for (size_t i = 0; i < n; i++) {
        char w[32];
        snprintf(w, sizeof(w), "%s%c%llx", i ? " " : "", e[i].kind, (unsigned long long)e[i].id);
        strcat(got, w);
    }
    cr_assert_str_eq(got, spec);
}

static const struct spc_format_field U40[] = {{'u', 40}};
static const int64_t SHAPE3[] = {3};

/* ------------------------------------------------- invalid descriptors */

Test(items, invalid_descriptors)
{
    const int64_t two_var[] = {SPC_DIM_VARIABLE, 4, SPC_DIM_VARIABLE};
    const int64_t one_var[] = {SPC_DIM_VARIABLE};
    const int64_t negative[] = {2, -3};
    const struct spc_format_field f16[] = {{'f', 16}}, c16[] = {{'c', 16}}, u0[] = {{'u', 0}}, x8[] = {{'x', 8}};
    const struct spc_format_field wide[] = {{'u', 65}};
    struct spc_descriptor d = {.id = 0x1000, .name = "two variable", .shape = two_var, .n_dims = 3, .format = U40,
                               .n_format = 1};
    expect_create_error(&d, -SPC_EVARIABLE_DIMS, "Cannot have multiple unknown dimensions");

    d = (struct spc_descriptor){.id = 0x1000, .name = "both", .format = U40, .n_format = 1, .dtype = "<u2"};
    expect_create_error(&d, -SPC_EFORMAT_DTYPE, "Only one of dtype and format");
    d = (struct spc_descriptor){.id = 0x1000, .name = "neither"};
    expect_create_error(&d, -SPC_EFORMAT_DTYPE, "One of dtype and format must be specified");

    d = (struct spc_descriptor){.id = 0x1000, .name = "zero-size V0", .dtype = "|V0"};
    expect_create_error(&d, -SPC_EDESCRIPTOR, "zero-size dtype");
    d.dtype = "|S0";
    expect_create_error(&d, -SPC_EDESCRIPTOR, "zero-size dtype");
    d.dtype = "[]";
    expect_create_error(&d, -SPC_EDESCRIPTOR, "zero-size dtype");

    d = (struct spc_descriptor){.id = 0x1000, .name = "format F", .format = U40, .n_format = 1, .fortran_order = true};
    expect_create_error(&d, -SPC_EDESCRIPTOR, "When specifying format, order must be 'C'");
    d = (struct spc_descriptor){.id = 0x1000, .name = "dtype variable", .shape = one_var, .n_dims = 1, .dtype = "<u2"};
    expect_create_error(&d, -SPC_EVARIABLE_DIMS, "Cannot have unknown dimensions when using numpy descriptor");

    d = (struct spc_descriptor){.id = 0x1000, .name = "f16", .format = f16, .n_format = 1};
    expect_create_error(&d, -SPC_EDESCRIPTOR, "illegal format (f, 16)");
    d.format = c16;
    expect_create_error(&d, -SPC_EDESCRIPTOR, "illegal format (c, 16)");
    d.format = x8;
    expect_create_error(&d, -SPC_EDESCRIPTOR, "illegal format (x, 8)");
    d.format = u0;
    expect_create_error(&d, -SPC_EDESCRIPTOR, "zero-length field (bug_compat mismatch?)");
    d.format = wide;
    expect_create_error(&d, -SPC_EDESCRIPTOR, "wider than 64 bits");

    d = (struct spc_descriptor){.id = 0x1000, .name = "negative", .shape = negative, .n_dims = 2, .dtype = "<u2"};
    expect_create_error(&d, -SPC_EDESCRIPTOR, "negative dimension -3");

    const char *bad_dtypes[] = {"u", "<x4", "<u3", "<f5", "|b2", "<u2 junk", "[('a', '<u2')", "[('a', '<u2', (3,))]",
                                "[('a', [('b', '<u2')])]", "[('a' '<u2')]", "", "O"};
    for (size_t i = 0; i < sizeof(bad_dtypes) / sizeof(bad_dtypes[0]); i++) {
        d = (struct spc_descriptor){.id = 0x1000, .name = bad_dtypes[i], .dtype = bad_dtypes[i]};
        expect_create_error(&d, -SPC_EDESCRIPTOR, "dtype");
    }

    d = (struct spc_descriptor){.id = 0, .name = "no id", .dtype = "<u2"};
    expect_create_error(&d, -SPC_EITEM_ID, "needs an ID");
    d.id = SPC_ID_PAYLOAD_LENGTH;
    expect_create_error(&d, -SPC_EITEM_ID, "Item ID out of range");
    d.id = UINT64_C(1) << 55;
    expect_create_error(&d, -SPC_EITEM_ID, "Item ID out of range");

    d = (struct spc_descriptor){.id = 0x1000, .name = NULL, .dtype = "<u2"};
    struct spc_item *it = NULL;
    cr_assert_eq(spc_item_create(&it, &d, NULL, 0), -EINVAL);
    cr_assert_eq(spc_item_create(&it, NULL, NULL, 0), -EINVAL);
    d = (struct spc_descriptor){.id = 0x1000, .name = "null shape", .n_dims = 2, .dtype = "<u2"};
    expect_create_error(&d, -EINVAL, "NULL array");
}

/* A valid item can still be out of range for a heap's flavour: the heap says so. */
Test(items, id_checked_against_heap_flavour)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "x", .format = U40, .n_format = 1};
    struct spc_item *it = make(&d);
    cr_assert_eq(spc_item_set_u64(it, 5), 0);
    struct spc_flavour f56 = {56, 0};
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, &f56), 0);
    cr_assert_eq(spc_heap_add_item_descriptor(heap, it), -SPC_EITEM_ID);
    cr_assert(strstr(tu_item_err(it), "0x1000"));
    cr_assert_eq(spc_heap_add_item_value(heap, it), -SPC_EITEM_ID);
    spc_heap_destroy(heap);
    spc_item_destroy(it);
}

/* ------------------------------------------------------ dtype normal form */

Test(items, dtype_normal_form)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"<u1", "|u1"},
        {">i1", "|i1"},
        {"|b1", "|b1"},
        {">S1", "|S1"},
        {"  <f8 ", "<f8"},
        {">c16", ">c16"},
        {"|V12", "|V12"},
        {"<M8[ns]", "<M8[ns]"},
        {"[(\"a\", \"<u2\"),('b','>f4'),  ('c', '|u1')]", "[('a', '<u2'), ('b', '>f4'), ('c', '|u1')]"},
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        {"u4", ">u4"},
        {"=f4", ">f4"},
#else
        {"u4", "<u4"},
        {"=f4", "<f4"},
#endif
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spc_descriptor d = {.id = 0x1000, .name = "x", .dtype = cases[i].in};
        struct spc_item *it = make(&d);
        struct spc_descriptor v;
        spc_item_descriptor(it, &v);
        cr_assert_str_eq(v.dtype, cases[i].out, "'%s'", cases[i].in);
        spc_item_destroy(it);
    }
}

/* The header text as spead2 writes it, and the bug_compat 4 byte-order swap. */
Test(items, dtype_header)
{
    const int64_t shape[] = {2, 3};
    struct spc_descriptor d = {.id = 0x1000, .name = "x", .shape = shape, .n_dims = 2,
                               .dtype = "[('a', '<u2'), ('b', '>f4')]", .fortran_order = true};
    struct spc_item *it = make(&d);
    struct spc_descriptor v;
    spc_item_descriptor(it, &v);
    char hdr[256];
    spc_dtype_header(&v, false, hdr, sizeof(hdr));
    cr_assert_str_eq(hdr, "{'descr': [('a', '<u2'), ('b', '>f4')], 'fortran_order': True, 'shape': (2, 3)}");
    spc_dtype_header(&v, true, hdr, sizeof(hdr));
    cr_assert_str_eq(hdr, "{'descr': [('a', '>u2'), ('b', '<f4')], 'fortran_order': True, 'shape': (2, 3)}");
    cr_assert_eq(spc_item_fixed_size(it), 36);
    spc_item_destroy(it);
}

/* ------------------------------------------------------------ values */

Test(items, scalar_formats)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "u40", .format = U40, .n_format = 1};
    struct spc_item *it = make(&d);
    cr_assert_eq(spc_item_version(it), 0);
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), -ENODATA);
    cr_assert_eq(spc_item_set_u64(it, 0x0102030405), 0);
    expect_value(it, "0102030405");
    cr_assert_eq(spc_item_version(it), 1);
    cr_assert(spc_item_allow_immediate(it));
    /* Out of range (spead2 silently truncates this one; we refuse it). */
    cr_assert_eq(spc_item_set_u64(it, (UINT64_C(1) << 40) + 5), -ERANGE);
    cr_assert_str_eq(tu_item_err(it), "1099511627781 is out of range for u40");
    cr_assert_eq(spc_item_set_i64(it, -1), -ERANGE);
    cr_assert_eq(spc_item_set_f64(it, 1.0), -EINVAL);
    cr_assert(strstr(tu_item_err(it), "floating-point"));
    cr_assert_eq(spc_item_version(it), 1, "failed sets leave the version");
    expect_value(it, "0102030405");
    spc_item_destroy(it);

    const struct spc_format_field i24[] = {{'i', 24}}, f64[] = {{'f', 64}}, b1[] = {{'b', 1}}, u64[] = {{'u', 64}};
    d = (struct spc_descriptor){.id = 0x1000, .name = "i24", .format = i24, .n_format = 1};
    it = make(&d);
    cr_assert_eq(spc_item_set_i64(it, -1193046), 0);
    expect_value(it, "edcbaa");
    cr_assert_eq(spc_item_set_i64(it, -(1 << 23)), 0);
    expect_value(it, "800000");
    cr_assert_eq(spc_item_set_i64(it, -(1 << 23) - 1), -ERANGE);
    cr_assert_str_eq(tu_item_err(it), "-8388609 is out of range for i24");
    cr_assert_eq(spc_item_set_u64(it, 1 << 23), -ERANGE);
    spc_item_destroy(it);

    d = (struct spc_descriptor){.id = 0x1000, .name = "f64", .format = f64, .n_format = 1};
    it = make(&d);
    cr_assert_eq(spc_item_set_f64(it, 3e-05), 0);
    expect_value(it, "3eff75104d551d69");
    cr_assert_eq(spc_item_set_i64(it, -2), 0, "integers convert to float fields");
    expect_value(it, "c000000000000000");
    spc_item_destroy(it);

    d = (struct spc_descriptor){.id = 0x1000, .name = "b1", .format = b1, .n_format = 1};
    it = make(&d);
    cr_assert_eq(spc_item_set_u64(it, 7), 0);
    expect_value(it, "80");
    cr_assert_not(spc_item_allow_immediate(it), "sub-byte elements are never immediate");
    spc_item_destroy(it);

    d = (struct spc_descriptor){.id = 0x1000, .name = "u64", .format = u64, .n_format = 1};
    it = make(&d);
    cr_assert_eq(spc_item_set_u64(it, UINT64_MAX), 0);
    expect_value(it, "ffffffffffffffff");
    spc_item_destroy(it);
}

Test(items, shape_mismatch)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "v", .shape = SHAPE3, .n_dims = 1, .dtype = "<u2"};
    struct spc_item *it = make(&d);
    const uint16_t v[3] = {1, 2, 3};
    const size_t two[] = {2};
    struct spc_array a = {.data = v, .type = SPC_CTYPE_U16, .n_dims = 1, .shape = two};
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL);
    cr_assert_str_eq(tu_item_err(it), "value has shape (2,), expected (3,)");
    cr_assert_eq(spc_item_set_u64(it, 1), -EINVAL);
    cr_assert_str_eq(tu_item_err(it), "value has shape (), expected (3,)");
    const size_t shape23[] = {2, 3};
    a.n_dims = 2;
    a.shape = shape23;
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL);
    cr_assert_str_eq(tu_item_err(it), "value has shape (2, 3), expected (3,)");
    a = (struct spc_array){.data = v, .type = 99, .n_dims = 1, .shape = (const size_t[]){3}};
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL);
    cr_assert_eq(spc_item_set(it, NULL, 0), -EINVAL, "spead2: Item value cannot be set to None");
    cr_assert_eq(spc_item_version(it), 0);
    spc_item_destroy(it);

    const int64_t var[] = {2, SPC_DIM_VARIABLE};
    const struct spc_format_field u8[] = {{'u', 8}};
    d = (struct spc_descriptor){.id = 0x1000, .name = "var", .shape = var, .n_dims = 2, .format = u8, .n_format = 1};
    it = make(&d);
    const size_t s34[] = {3, 4};
    const uint8_t bytes[12] = {0};
    a = (struct spc_array){.data = bytes, .type = SPC_CTYPE_U8, .n_dims = 2, .shape = s34};
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL);
    cr_assert_str_eq(tu_item_err(it), "value has shape (3, 4), expected (2, None)");
    const size_t s26[] = {2, 6};
    a.shape = s26;
    cr_assert_eq(spc_item_set(it, &a, 0), 0, "the variable dimension takes any size");
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_eq(len, 12);
    cr_assert_eq(data, bytes, "u8 elements are referenced");
    spc_item_destroy(it);
}

/* (u4, i12) records: packed MSB first, each field range-checked. */
Test(items, packed_records)
{
    const struct spc_format_field fmt[] = {{'u', 4}, {'i', 12}};
    const int64_t shape[] = {2};
    struct spc_descriptor d = {.id = 0x1000, .name = "rec", .shape = shape, .n_dims = 1, .format = fmt, .n_format = 2};
    struct spc_item *it = make(&d);
    struct rec {
        uint8_t u;
        int16_t i;
    } recs[2] = {{1, -1}, {15, -2048}};
    const struct spc_field_src fields[] = {{SPC_CTYPE_U8, offsetof(struct rec, u)},
                                           {SPC_CTYPE_I16, offsetof(struct rec, i)}};
    const size_t two[] = {2};
    struct spc_array a = {.data = recs, .fields = fields, .n_fields = 2, .elem_size = sizeof(struct rec),
                          .n_dims = 1, .shape = two};
    cr_assert_eq(spc_item_set(it, &a, 0), 0, "%s", tu_item_err(it));
    expect_value(it, "1ffff800");
    cr_assert(spc_item_allow_immediate(it));
    recs[1].u = 16;
    cr_assert_eq(spc_item_set(it, &a, 0), -ERANGE);
    cr_assert_str_eq(tu_item_err(it), "16 is out of range for u4");
    recs[1].u = 0;
    recs[1].i = 2048;
    cr_assert_eq(spc_item_set(it, &a, 0), -ERANGE);
    cr_assert_str_eq(tu_item_err(it), "2048 is out of range for i12");
    a.n_fields = 1;
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL, "field count must match");
    cr_assert_eq(spc_item_set_u64(it, 1), -EINVAL);
    cr_assert_eq(spc_item_version(it), 1);
    expect_value(it, "1ffff800");
    spc_item_destroy(it);
}

/* Contiguous memory in the wire layout is referenced: later changes are what is sent. */
Test(items, zero_copy_reference)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "v", .shape = SHAPE3, .n_dims = 1,
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                               .dtype = ">u2"};
#else
                               .dtype = "<u2"};
#endif
    struct spc_item *it = make(&d);
    uint16_t v[3] = {1, 2, 3};
    const size_t three[] = {3};
    struct spc_array a = {.data = v, .type = SPC_CTYPE_U16, .n_dims = 1, .shape = three};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_eq(data, v);
    cr_assert_eq(len, 6);

    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, NULL), 0);
    cr_assert_eq(spc_heap_add_item_value(heap, it), 0);
    v[1] = 0x4242;
    struct entry e[4];
    cr_assert_eq(decode(heap, e, 4), 1);
    cr_assert_eq(e[0].len, 6);
    cr_assert_eq(memcmp(e[0].bytes, v, 6), 0, "the heap sends the memory as it is now");
    spc_heap_destroy(heap);

    /* COPY snapshots it; a signedness or size mismatch also packs. */
    cr_assert_eq(spc_item_set(it, &a, SPC_SET_COPY), 0);
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_neq(data, v);
    int16_t s[3] = {1, 2, 3};
    a.data = s;
    a.type = SPC_CTYPE_I16;
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_neq(data, s);
    cr_assert_eq(spc_item_version(it), 3);
    spc_item_destroy(it);
}

/* Fortran order: the wire is column-major; a Fortran-contiguous source is referenced. */
Test(items, fortran_order)
{
    const int64_t shape[] = {2, 3};
    struct spc_descriptor d = {.id = 0x1000, .name = "f", .shape = shape, .n_dims = 2,
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                               .dtype = ">u2",
#else
                               .dtype = "<u2",
#endif
                               .fortran_order = true};
    struct spc_item *it = make(&d);
    const uint16_t c_order[2][3] = {{1, 2, 3}, {4, 5, 6}};
    const size_t s23[] = {2, 3};
    struct spc_array a = {.data = c_order, .type = SPC_CTYPE_U16, .n_dims = 2, .shape = s23};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_neq(data, c_order, "C order must be transposed");
    const uint16_t want[6] = {1, 4, 2, 5, 3, 6};
    cr_assert_eq(len, 12);
    cr_assert_eq(memcmp(data, want, 12), 0);

    /* The same matrix stored column by column, described by strides. */
    const uint16_t f_order[6] = {1, 4, 2, 5, 3, 6};
    const ptrdiff_t f_strides[] = {2, 4};
    a.data = f_order;
    a.strides = f_strides;
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_eq(data, f_order, "Fortran-contiguous memory is referenced");

    /* Big-endian Fortran 3-D from int32 numbers (dtype_fortran_3d's first column). */
    const int64_t shape3[] = {2, 1, 2};
    d = (struct spc_descriptor){.id = 0x1000, .name = "f3", .shape = shape3, .n_dims = 3, .dtype = ">i4",
                                .fortran_order = true};
    struct spc_item *it3 = make(&d);
    const int32_t v3[2][1][2] = {{{-12, -11}}, {{0, 1}}};
    const size_t s212[] = {2, 1, 2};
    a = (struct spc_array){.data = v3, .type = SPC_CTYPE_I32, .n_dims = 3, .shape = s212};
    cr_assert_eq(spc_item_set(it3, &a, 0), 0);
    expect_value(it3, "fffffff400000000fffffff500000001");
    spc_item_destroy(it3);
    spc_item_destroy(it);
}

/* Strided, reversed and broadcast sources are gathered element by element. */
Test(items, non_contiguous_sources)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "col", .shape = (const int64_t[]){4}, .n_dims = 1,
                               .dtype = ">i4"};
    struct spc_item *it = make(&d);
    int32_t m[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            m[r][c] = 10 * r + c;
    const size_t four[] = {4};
    const ptrdiff_t column[] = {sizeof(m[0])};
    struct spc_array a = {.data = &m[0][2], .type = SPC_CTYPE_I32, .n_dims = 1, .shape = four, .strides = column};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "000000020000000c0000001600000020");
    const ptrdiff_t backwards[] = {-(ptrdiff_t)sizeof(int32_t)};
    a = (struct spc_array){.data = &m[1][3], .type = SPC_CTYPE_I32, .n_dims = 1, .shape = four, .strides = backwards};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "0000000d0000000c0000000b0000000a");
    const ptrdiff_t broadcast[] = {0};
    a.strides = broadcast;
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "0000000d0000000d0000000d0000000d");
    spc_item_destroy(it);

    /* A 2x2 window of the matrix into a little-endian C-order item: not referenced. */
    const int64_t s22[] = {2, 2};
    d = (struct spc_descriptor){.id = 0x1000, .name = "win", .shape = s22, .n_dims = 2, .dtype = "<i4"};
    it = make(&d);
    const size_t w22[] = {2, 2};
    const ptrdiff_t wst[] = {sizeof(m[0]), sizeof(int32_t)};
    a = (struct spc_array){.data = &m[1][1], .type = SPC_CTYPE_I32, .n_dims = 2, .shape = w22, .strides = wst};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "0b0000000c0000001500000016000000");
    spc_item_destroy(it);
}

Test(items, complex_and_bool)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "c", .shape = (const int64_t[]){2}, .n_dims = 1,
                               .dtype = ">c8"};
    struct spc_item *it = make(&d);
    const float c64[2][2] = {{1.0f, 2.0f}, {-0.5f, 0.0f}};
    const size_t two[] = {2};
    struct spc_array a = {.data = c64, .type = SPC_CTYPE_C64, .n_dims = 1, .shape = two};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "3f80000040000000bf00000000000000");
    const double reals[2] = {1.0, -0.5};
    a = (struct spc_array){.data = reals, .type = SPC_CTYPE_F64, .n_dims = 1, .shape = two};
    cr_assert_eq(spc_item_set(it, &a, 0), 0, "reals fill the real part");
    expect_value(it, "3f80000000000000bf00000000000000");
    spc_item_destroy(it);

    d = (struct spc_descriptor){.id = 0x1000, .name = "f4", .shape = (const int64_t[]){2}, .n_dims = 1,
                                .dtype = "<f4"};
    it = make(&d);
    a = (struct spc_array){.data = c64, .type = SPC_CTYPE_C64, .n_dims = 1, .shape = two};
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL);
    cr_assert(strstr(tu_item_err(it), "complex"));
    spc_item_destroy(it);

    d = (struct spc_descriptor){.id = 0x1000, .name = "flags", .shape = (const int64_t[]){3}, .n_dims = 1,
                                .dtype = "|b1"};
    it = make(&d);
    const bool flags[3] = {true, false, true};
    const size_t three[] = {3};
    a = (struct spc_array){.data = flags, .type = SPC_CTYPE_BOOL, .n_dims = 1, .shape = three};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_eq(data, flags);
    const int ints[3] = {0, 5, -1};
    a = (struct spc_array){.data = ints, .type = SPC_CTYPE_I32, .n_dims = 1, .shape = three};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "000101");
    spc_item_destroy(it);
}

Test(items, bytes_and_strings)
{
    const int64_t var[] = {SPC_DIM_VARIABLE};
    const struct spc_format_field c8[] = {{'c', 8}};
    struct spc_descriptor d = {.id = 0x1000, .name = "s", .shape = var, .n_dims = 1, .format = c8, .n_format = 1};
    struct spc_item *it = make(&d);
    cr_assert_eq(spc_item_fixed_size(it), -1);
    cr_assert_not(spc_item_allow_immediate(it));
    const char *hello = "Hello";
    cr_assert_eq(spc_item_set_string(it, hello, 0), 0);
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_eq(data, hello);
    cr_assert_eq(len, 5);
    char buf[8] = "abc";
    cr_assert_eq(spc_item_set_string(it, buf, SPC_SET_COPY), 0);
    buf[0] = 'X';
    expect_value(it, "616263");
    cr_assert_eq(spc_item_set_string(it, "", 0), 0);
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert_eq(len, 0);
    spc_item_destroy(it);

    /* Opaque dtypes only take bytes, of exactly their size. */
    d = (struct spc_descriptor){.id = 0x1000, .name = "S5", .shape = (const int64_t[]){2}, .n_dims = 1,
                                .dtype = "|S5"};
    it = make(&d);
    cr_assert_eq(spc_item_fixed_size(it), 10);
    cr_assert_eq(spc_item_set_bytes(it, "helloworld", 10, SPC_SET_COPY), 0);
    expect_value(it, "68656c6c6f776f726c64");
    cr_assert_eq(spc_item_set_bytes(it, "hello", 5, 0), -EINVAL);
    cr_assert_eq(spc_item_set_string(it, "0123456789", 0), -EINVAL);
    const char sv[2] = {'a', 'b'};
    struct spc_array a = {.data = sv, .type = SPC_CTYPE_CHAR, .n_dims = 1, .shape = (const size_t[]){2}};
    cr_assert_eq(spc_item_set(it, &a, 0), -EINVAL);
    cr_assert(strstr(tu_item_err(it), "spc_item_set_bytes"));
    spc_item_destroy(it);

    /* Variable shapes take whole steps of the variable dimension. */
    const int64_t rows[] = {SPC_DIM_VARIABLE, 3};
    d = (struct spc_descriptor){.id = 0x1000, .name = "rows", .shape = rows, .n_dims = 2, .format = c8, .n_format = 1};
    it = make(&d);
    cr_assert_eq(spc_item_set_bytes(it, "abcdef", 6, 0), 0);
    cr_assert_eq(spc_item_set_bytes(it, "abcd", 4, 0), -EINVAL);
    spc_item_destroy(it);
    const struct spc_format_field u4[] = {{'u', 4}};
    const int64_t odd[] = {SPC_DIM_VARIABLE};
    d = (struct spc_descriptor){.id = 0x1000, .name = "nibbles", .shape = odd, .n_dims = 1, .format = u4, .n_format = 1};
    it = make(&d);
    cr_assert_eq(spc_item_set_bytes(it, "ab", 2, 0), -EINVAL, "4-bit steps are not whole bytes");
    const uint8_t nib[3] = {1, 2, 3};
    a = (struct spc_array){.data = nib, .type = SPC_CTYPE_U8, .n_dims = 1, .shape = (const size_t[]){3}};
    cr_assert_eq(spc_item_set(it, &a, 0), 0);
    expect_value(it, "1230");
    spc_item_destroy(it);
}

/* A heap keeps the value it was given; in-place sets rewrite what heaps hold. */
Test(items, value_lifetime_and_in_place)
{
    struct spc_descriptor d = {.id = 0x1000, .name = "ts", .format = U40, .n_format = 1};
    struct spc_item *it = make(&d);
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, NULL), 0);
    cr_assert_eq(spc_heap_add_item_value(heap, it), -ENODATA);
    uint64_t ts = 0x1111111111;
    struct spc_array a = {.data = &ts, .type = SPC_CTYPE_U64};
    cr_assert_eq(spc_item_set(it, &a, SPC_SET_IN_PLACE), -EINVAL, "nothing owned to rewrite yet");
    cr_assert_eq(spc_item_set_u64(it, 0x0102030405), 0);
    cr_assert_eq(spc_heap_add_item_value(heap, it), 0);
    cr_assert_eq(spc_item_set_u64(it, 0x0a0b0c0d0e), 0);
    struct entry e[4];
    cr_assert_eq(decode(heap, e, 4), 1);
    cr_assert_eq(memcmp(e[0].bytes, "\x01\x02\x03\x04\x05", 5), 0, "the heap keeps the old value");

    struct spc_heap *reused;
    cr_assert_eq(spc_heap_create(&reused, NULL), 0);
    cr_assert_eq(spc_heap_add_item_value(reused, it), 0);
    uint64_t before = spc_item_version(it);
    cr_assert_eq(spc_item_set(it, &a, SPC_SET_IN_PLACE), 0);
    cr_assert_eq(spc_item_version(it), before + 1);
    cr_assert_eq(decode(reused, e, 4), 1);
    cr_assert_eq(memcmp(e[0].bytes, "\x11\x11\x11\x11\x11", 5), 0, "the reused heap sends the new value");
    ts = UINT64_C(1) << 41;
    cr_assert_eq(spc_item_set(it, &a, SPC_SET_IN_PLACE), -ERANGE);
    cr_assert_eq(decode(reused, e, 4), 1);
    cr_assert_eq(memcmp(e[0].bytes, "\x11\x11\x11\x11\x11", 5), 0, "a failed in-place set writes nothing");
    cr_assert_eq(spc_item_set_bytes(it, "\xaa\xbb\xcc\xdd\xee", 5, SPC_SET_IN_PLACE), 0);
    cr_assert_eq(decode(reused, e, 4), 1);
    cr_assert_eq(memcmp(e[0].bytes, "\xaa\xbb\xcc\xdd\xee", 5), 0);

    /* Heaps outlive the item. */
    spc_item_destroy(it);
    cr_assert_eq(decode(heap, e, 4), 1);
    cr_assert_eq(memcmp(e[0].bytes, "\x01\x02\x03\x04\x05", 5), 0);
    cr_assert_eq(decode(reused, e, 4), 1);
    cr_assert_eq(memcmp(e[0].bytes, "\xaa\xbb\xcc\xdd\xee", 5), 0);
    spc_heap_destroy(heap);
    spc_heap_destroy(reused);
}

/* ------------------------------------------------------------ item groups */

Test(itemgroup, ids_lookup_and_replacement)
{
    struct spc_item_group *g;
    cr_assert_eq(spc_item_group_create(&g), 0);
    struct spc_item *a, *b, *c, *x;
    struct spc_descriptor d = {.id = SPC_ITEM_AUTO_ID, .name = "a", .format = U40, .n_format = 1};
    cr_assert_eq(spc_item_group_add(g, &d, &a), 0);
    cr_assert_eq(spc_item_id(a), 0x1000);
    d = (struct spc_descriptor){.id = 0x1001, .name = "b", .dtype = "<u4"};
    cr_assert_eq(spc_item_group_add(g, &d, &b), 0);
    d = (struct spc_descriptor){.id = SPC_ITEM_AUTO_ID, .name = "c", .dtype = "<u4"};
    cr_assert_eq(spc_item_group_add(g, &d, &c), 0);
    cr_assert_eq(spc_item_id(c), 0x1002, "0x1001 is taken");
    cr_assert_eq(spc_item_group_size(g), 3);
    cr_assert_eq(spc_item_group_find_id(g, 0x1001), b);
    cr_assert_eq(spc_item_group_find_name(g, "c"), c);
    cr_assert_null(spc_item_group_find_name(g, "nope"));
    cr_assert_null(spc_item_group_find_id(g, 0x2000));
    cr_assert_null(spc_item_group_at(g, 3));

    /* The same descriptor again: nothing changes, the value stays. */
    cr_assert_eq(spc_item_set_u64(b, 7), 0);
    d = (struct spc_descriptor){.id = 0x1001, .name = "b", .dtype = "<u4"};
    cr_assert_eq(spc_item_group_add(g, &d, &x), 0);
    cr_assert_eq(x, b);
    cr_assert_eq(spc_item_version(b), 1);
    cr_assert_eq(spc_item_group_at(g, 1), b);

    /* Replacing "a" by name with an explicit ID: the old item leaves, the new one goes last. */
    d = (struct spc_descriptor){.id = 0x1000, .name = "a", .description = "now a vector", .shape = SHAPE3, .n_dims = 1,
                                .dtype = ">u2"};
    cr_assert_eq(spc_item_group_add(g, &d, &x), 0);
    cr_assert_neq(x, a);
    cr_assert_eq(spc_item_group_size(g), 3);
    cr_assert_eq(spc_item_group_at(g, 0), b);
    cr_assert_eq(spc_item_group_at(g, 2), x);
    cr_assert_eq(spc_item_group_find_name(g, "a"), x);
    cr_assert_str_eq(spc_item_name(a), "a", "a replaced item stays valid");

    /* A new item taking b's ID and c's name replaces both. */
    d = (struct spc_descriptor){.id = 0x1001, .name = "c", .dtype = "<u8"};
    cr_assert_eq(spc_item_group_add(g, &d, &x), 0);
    cr_assert_eq(spc_item_group_size(g), 2);
    cr_assert_null(spc_item_group_find_name(g, "b"));
    cr_assert_null(spc_item_group_find_id(g, 0x1002));
    cr_assert_eq(spc_item_group_find_id(g, 0x1001), x);
    cr_assert_eq(spc_item_group_at(g, 1), x);

    /* Errors leave the group as it was. */
    d = (struct spc_descriptor){.id = 0x1001, .name = "c", .dtype = "<u3"};
    cr_assert_eq(spc_item_group_add(g, &d, &x), -SPC_EDESCRIPTOR);
    cr_assert_eq(spc_item_group_size(g), 2);
    spc_item_group_destroy(g);
}

Test(itemgroup, many_items)
{
    struct spc_item_group *g;
    cr_assert_eq(spc_item_group_create(&g), 0);
    for (int i = 0; i < 500; i++) {
        char name[16];
        snprintf(name, sizeof(name), "item%d", i);
        struct spc_descriptor d = {.id = SPC_ITEM_AUTO_ID, .name = name, .dtype = "<u4"};
        struct spc_item *it;
        cr_assert_eq(spc_item_group_add(g, &d, &it), 0);
        cr_assert_eq(spc_item_id(it), 0x1000 + (uint64_t)i);
    }
    /* Replace every other item by ID, then look everything up. */
    for (int i = 0; i < 500; i += 2) {
        char name[16];
        snprintf(name, sizeof(name), "new%d", i);
        struct spc_descriptor d = {.id = 0x1000 + (uint64_t)i, .name = name, .dtype = "<u2"};
        cr_assert_eq(spc_item_group_add(g, &d, NULL), 0);
    }
    cr_assert_eq(spc_item_group_size(g), 500);
    for (int i = 0; i < 500; i++) {
        char name[16];
        snprintf(name, sizeof(name), i % 2 ? "item%d" : "new%d", i);
        struct spc_item *it = spc_item_group_find_id(g, 0x1000 + (uint64_t)i);
        cr_assert_not_null(it);
        cr_assert_str_eq(spc_item_name(it), name);
    }
    cr_assert_str_eq(spc_item_name(spc_item_group_at(g, 250)), "new0");
    spc_item_group_destroy(g);
}

/* --------------------------------------------------------- heap generator */

struct gen_fixture {
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    struct spc_item *items[8];
};

static void fixture(struct gen_fixture *f, unsigned n, unsigned frequency)
{
    cr_assert_eq(spc_item_group_create(&f->g), 0);
    cr_assert_eq(spc_heap_generator_create(&f->gen, f->g, NULL, frequency), 0);
    for (unsigned i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "i%u", i);
        struct spc_descriptor d = {.id = SPC_ITEM_AUTO_ID, .name = name, .format = U40, .n_format = 1};
        cr_assert_eq(spc_item_group_add(f->g, &d, &f->items[i]), 0);
    }
}

static void fixture_free(struct gen_fixture *f)
{
    spc_heap_generator_destroy(f->gen);
    spc_item_group_destroy(f->g);
}

static void expect_next(struct gen_fixture *f, enum spc_select desc, enum spc_select data, const char *spec)
{
    struct spc_heap *heap;
    int rc = spc_heap_generator_get_heap(f->gen, &heap, desc, data);
    cr_assert_eq(rc, 0, "%s", tu_gen_err(f->gen));
    expect_heap(heap, spec);
    spc_heap_destroy(heap);
}

Test(generator, selectors)
{
    struct gen_fixture f;
    fixture(&f, 2, 0);
    cr_assert_eq(spc_item_set_u64(f.items[0], 1), 0);
    /* Items without a value send only a descriptor. */
    expect_next(&f, SPC_SELECT_NONE, SPC_SELECT_STALE, "V1000");
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_STALE, "D1000 D1001");
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_STALE, "");
    expect_next(&f, SPC_SELECT_ALL, SPC_SELECT_NONE, "D1000 D1001");
    expect_next(&f, SPC_SELECT_NONE, SPC_SELECT_ALL, "V1000");
    cr_assert_eq(spc_item_set_u64(f.items[1], 2), 0);
    expect_next(&f, SPC_SELECT_ALL, SPC_SELECT_ALL, "D1000 V1000 D1001 V1001");

    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, NULL), 0);
    cr_assert_eq(spc_heap_generator_add_to_heap(f.gen, heap, 7, SPC_SELECT_ALL), -EINVAL);
    cr_assert_eq(spc_heap_generator_add_to_heap(f.gen, heap, SPC_SELECT_ALL, -1), -EINVAL);
    cr_assert_eq(spc_heap_n_items(heap), 0);
    spc_heap_destroy(heap);

    cr_assert_eq(spc_heap_generator_get_start(f.gen, &heap), 0);
    cr_assert_eq(spc_heap_n_items(heap), 1);
    spc_heap_destroy(heap);
    fixture_free(&f);
}

/* Adding to an existing heap appends after what it holds. */
Test(generator, add_to_existing_heap)
{
    struct gen_fixture f;
    fixture(&f, 2, 0);
    cr_assert_eq(spc_item_set_u64(f.items[0], 1), 0);
    cr_assert_eq(spc_item_set_u64(f.items[1], 2), 0);
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, NULL), 0);
    cr_assert_eq(spc_heap_add_start(heap), 0);
    cr_assert_eq(spc_heap_generator_add_to_heap(f.gen, heap, SPC_SELECT_STALE, SPC_SELECT_NONE), 0);
    cr_assert_eq(spc_heap_generator_add_to_heap(f.gen, heap, SPC_SELECT_NONE, SPC_SELECT_STALE), 0);
    expect_heap(heap, "V6 D1000 D1001 V1000 V1001");
    spc_heap_destroy(heap);
    fixture_free(&f);
}

Test(generator, descriptor_frequency)
{
    for (unsigned freq = 1; freq <= 4; freq++) {
        struct gen_fixture f;
        fixture(&f, 2, freq);
        for (unsigned k = 0; k < 13; k++) {
            /* Sent in call 0 and then every freq calls. */
            const char *spec = k % freq == 0 ? "D1000 D1001" : "";
            expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_STALE, spec);
        }
        fixture_free(&f);
    }
    /* Sending with 'all' restarts the count; 'none' calls still count. */
    struct gen_fixture f;
    fixture(&f, 1, 3);
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "D1000");
    expect_next(&f, SPC_SELECT_ALL, SPC_SELECT_NONE, "D1000");
    expect_next(&f, SPC_SELECT_NONE, SPC_SELECT_NONE, "");
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "");
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "D1000");
    fixture_free(&f);
    /* Frequency 0: never resent, except after a replacement. */
    fixture(&f, 1, 0);
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "D1000");
    for (int k = 0; k < 5; k++)
        expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "");
    struct spc_descriptor d = {.id = 0x1000, .name = "i0", .description = "changed", .format = U40, .n_format = 1};
    cr_assert_eq(spc_item_group_add(f.g, &d, NULL), 0);
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "D1000");
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_NONE, "");
    fixture_free(&f);
}

/* Random updates over many heaps: each heap carries exactly the values set since the
 * last heap, with their latest numbers, in group order. */
Test(generator, stale_over_many_heaps)
{
    struct gen_fixture f;
    fixture(&f, 8, 0);
    uint64_t rng = 12345, last[8];
    bool dirty[8];
    for (int i = 0; i < 8; i++) {
        last[i] = tu_rand(&rng) & 0xffffffffffu;
        cr_assert_eq(spc_item_set_u64(f.items[i], last[i]), 0);
    }
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_STALE,
                "D1000 V1000 D1001 V1001 D1002 V1002 D1003 V1003 D1004 V1004 D1005 V1005 D1006 V1006 D1007 V1007");
    for (int heap_no = 0; heap_no < 200; heap_no++) {
        memset(dirty, 0, sizeof(dirty));
        int n_sets = (int)(tu_rand(&rng) % 6);
        for (int s = 0; s < n_sets; s++) {
            int i = (int)(tu_rand(&rng) % 8);
            last[i] = tu_rand(&rng) & 0xffffffffffu;
            cr_assert_eq(spc_item_set_u64(f.items[i], last[i]), 0);
            dirty[i] = true;
        }
        struct spc_heap *heap;
        cr_assert_eq(spc_heap_generator_get_heap(f.gen, &heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
        struct entry e[16];
        size_t n = decode(heap, e, 16), k = 0;
        for (int i = 0; i < 8; i++) {
            if (!dirty[i])
                continue;
            cr_assert_lt(k, n, "heap %d lacks item %d", heap_no, i);
            cr_assert_eq(e[k].kind, 'V');
            cr_assert_eq(e[k].id, 0x1000 + (uint64_t)i);
            uint64_t v = 0;
            for (size_t b = 0; b < e[k].len; b++)
                v = v << 8 | e[k].bytes[b];
            cr_assert_eq(v, last[i], "heap %d item %d", heap_no, i);
            k++;
        }
        cr_assert_eq(k, n, "heap %d carries %zu entries, %zu expected", heap_no, n, k);
        spc_heap_destroy(heap);
    }
    fixture_free(&f);
}

/* A failed add_to_heap leaves the generator's state as it was. */
Test(generator, failure_rolls_back)
{
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    cr_assert_eq(spc_item_group_create(&g), 0);
    cr_assert_eq(spc_heap_generator_create(&gen, g, NULL, 0), 0);
    struct spc_item *ok, *big;
    struct spc_descriptor d = {.id = 0x10, .name = "ok", .format = U40, .n_format = 1};
    cr_assert_eq(spc_item_group_add(g, &d, &ok), 0);
    d = (struct spc_descriptor){.id = 0x1000, .name = "big", .format = U40, .n_format = 1};
    cr_assert_eq(spc_item_group_add(g, &d, &big), 0);
    cr_assert_eq(spc_item_set_u64(ok, 1), 0);
    cr_assert_eq(spc_item_set_u64(big, 2), 0);
    struct spc_flavour f56 = {56, 0};
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, &f56), 0);
    cr_assert_eq(spc_heap_generator_add_to_heap(gen, heap, SPC_SELECT_STALE, SPC_SELECT_STALE), -SPC_EITEM_ID);
    cr_assert(strstr(tu_gen_err(gen), "big"));
    spc_heap_destroy(heap);
    /* Nothing was recorded as sent. */
    cr_assert_eq(spc_heap_generator_get_heap(gen, &heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
    expect_heap(heap, "D10 V10 D1000 V1000");
    spc_heap_destroy(heap);
    struct spc_flavour bad = {44, 0};
    struct spc_heap_generator *gen2;
    cr_assert_eq(spc_heap_generator_create(&gen2, g, &bad, 0), -SPC_EFLAVOUR);
    cr_assert_eq(spc_heap_generator_create(&gen2, NULL, NULL, 0), -EINVAL);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(g);
}

/* Two generators over one group keep separate state. */
Test(generator, independent_generators)
{
    struct gen_fixture f;
    fixture(&f, 1, 0);
    struct spc_heap_generator *other;
    cr_assert_eq(spc_heap_generator_create(&other, f.g, NULL, 0), 0);
    cr_assert_eq(spc_item_set_u64(f.items[0], 3), 0);
    expect_next(&f, SPC_SELECT_STALE, SPC_SELECT_STALE, "D1000 V1000");
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_heap(other, &heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
    expect_heap(heap, "D1000 V1000");
    spc_heap_destroy(heap);
    spc_heap_generator_destroy(other);
    fixture_free(&f);
}

/* The error-detail convention for items, groups and generators: each object keeps the
 * detail of its own latest failure, copied out (truncated) with the full length returned. */
Test(items, error_detail_per_object)
{
    const struct spc_format_field u4[] = {{'u', 4}};
    struct spc_descriptor d = {.id = 0x1000, .name = "nibble", .format = u4, .n_format = 1};
    struct spc_item *a = make(&d);
    d.name = "other";
    d.id = 0x1001;
    struct spc_item *b = make(&d);
    cr_assert_eq(spc_item_set_u64(a, 16), -ERANGE);
    cr_assert_eq(spc_item_set_u64(b, 1), 0);
    cr_assert_str_eq(tu_item_err(a), "16 is out of range for u4");
    cr_assert_str_eq(tu_item_err(b), "", "another item's failure is not b's");
    char small[5];
    size_t n = spc_item_last_error(a, small, sizeof small);
    cr_assert_eq(n, strlen("16 is out of range for u4"));
    cr_assert_str_eq(small, "16 i");
    cr_assert_eq(spc_item_last_error(a, NULL, 0), n);
    spc_item_destroy(a);
    spc_item_destroy(b);

    struct spc_item_group *g;
    cr_assert_eq(spc_item_group_create(&g), 0);
    struct spc_descriptor bad = {.id = 0x1000, .name = "bad", .dtype = "<q9"};
    cr_assert_eq(spc_item_group_add(g, &bad, NULL), -SPC_EDESCRIPTOR);
    cr_assert_neq(tu_group_err(g)[0], '\0');
    cr_assert(strstr(tu_group_err(g), "q9"), "%s", tu_group_err(g));
    spc_item_group_destroy(g);
}
