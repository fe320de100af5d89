/* Values set from numbers (SPEC §2): the caller's array checked against an item's shape
 * and fields, converted with range checks, and packed MSB first into the wire layout. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "item_error.h"
#include "pack.h"
#include "strbuf.h"

/* Writes a shape as Python prints a tuple: "()", "(5,)", "(2, None)". */
static void shape_repr(char *buf, size_t cap, const int64_t *ishape, const size_t *ushape, size_t n)
{
    struct spci_str t = SPCI_STR_FIXED(buf, cap);
    spci_str_puts(&t, "(");
    for (size_t i = 0; i < n; i++) {
        char num[32];
        if (ishape && ishape[i] == SPC_DIM_VARIABLE)
            snprintf(num, sizeof(num), "None");
        else
            snprintf(num, sizeof(num), "%llu", ishape ? (unsigned long long)ishape[i] : (unsigned long long)ushape[i]);
        if (i > 0)
            spci_str_puts(&t, ", ");
        spci_str_puts(&t, num);
    }
    spci_str_puts(&t, n == 1 ? ",)" : ")");
}

size_t spc_ctype_size(enum spc_ctype type)
{
    switch (type) {
    case SPC_CTYPE_BOOL:
    case SPC_CTYPE_CHAR:
    case SPC_CTYPE_U8:
    case SPC_CTYPE_I8:
        return 1;
    case SPC_CTYPE_U16:
    case SPC_CTYPE_I16:
        return 2;
    case SPC_CTYPE_U32:
    case SPC_CTYPE_I32:
    case SPC_CTYPE_F32:
        return 4;
    case SPC_CTYPE_U64:
    case SPC_CTYPE_I64:
    case SPC_CTYPE_F64:
    case SPC_CTYPE_C64:
        return 8;
    case SPC_CTYPE_C128:
        return 16;
    }
    return 0;
}
/* A number read from the caller's memory. */
enum num_class { N_UINT, N_INT, N_REAL, N_COMPLEX };
struct num {
    enum num_class cls;
    uint64_t u;
    int64_t i;
    double re, im;
};

static struct num read_num(enum spc_ctype type, const uint8_t *p)
{
    struct num n = {N_UINT, 0, 0, 0, 0};
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        int8_t i8;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        float f[2];
        double d[2];
    } v;
    memcpy(&v, p, spc_ctype_size(type));
    switch (type) {
    case SPC_CTYPE_BOOL: n.u = v.u8 != 0; break;
    case SPC_CTYPE_CHAR:
    case SPC_CTYPE_U8: n.u = v.u8; break;
    case SPC_CTYPE_U16: n.u = v.u16; break;
    case SPC_CTYPE_U32: n.u = v.u32; break;
    case SPC_CTYPE_U64: n.u = v.u64; break;
    case SPC_CTYPE_I8: n.cls = N_INT; n.i = v.i8; break;
    case SPC_CTYPE_I16: n.cls = N_INT; n.i = v.i16; break;
    case SPC_CTYPE_I32: n.cls = N_INT; n.i = v.i32; break;
    case SPC_CTYPE_I64: n.cls = N_INT; n.i = v.i64; break;
    case SPC_CTYPE_F32: n.cls = N_REAL; n.re = v.f[0]; break;
    case SPC_CTYPE_F64: n.cls = N_REAL; n.re = v.d[0]; break;
    case SPC_CTYPE_C64: n.cls = N_COMPLEX; n.re = v.f[0]; n.im = v.f[1]; break;
    case SPC_CTYPE_C128: n.cls = N_COMPLEX; n.re = v.d[0]; n.im = v.d[1]; break;
    }
    return n;
}

static const char *class_name(enum num_class c)
{
    return c == N_REAL ? "a floating-point number" : c == N_COMPLEX ? "a complex number" : "an integer";
}

static int out_of_range(const struct num *n, const struct spci_field *f)
{
    if (n->cls == N_INT)
        return spci_item_fail(-ERANGE, "%lld is out of range for %s", (long long)n->i, f->label);
    return spci_item_fail(-ERANGE, "%llu is out of range for %s", (unsigned long long)n->u, f->label);
}

static uint64_t float_bits(double d, uint32_t bits)
{
    if (bits == 32) {
        float f = (float)d;
        uint32_t u;
        memcpy(&u, &f, 4);
        return u;
    }
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* Turns a number into a field's raw bits (complex: real part in *v0, imaginary in *v1). */
static int to_bits(const struct spci_field *f, const struct num *n, uint64_t *v0, uint64_t *v1)
{
    bool integer = n->cls == N_UINT || n->cls == N_INT;
    uint32_t b = f->bits;
    switch (f->kind) {
    case SPCI_F_UINT:
        if (!integer)
            break;
        if ((n->cls == N_INT && n->i < 0) || (b < 64 && (n->cls == N_INT ? (uint64_t)n->i : n->u) >> b))
            return out_of_range(n, f);
        *v0 = n->cls == N_INT ? (uint64_t)n->i : n->u;
        return 0;
    case SPCI_F_INT: {
        if (!integer)
            break;
        int64_t max = b == 64 ? INT64_MAX : (int64_t)((UINT64_C(1) << (b - 1)) - 1);
        int64_t min = -max - 1;
        if ((n->cls == N_UINT && n->u > (uint64_t)max) || (n->cls == N_INT && (n->i < min || n->i > max)))
            return out_of_range(n, f);
        uint64_t raw = n->cls == N_INT ? (uint64_t)n->i : n->u;
        *v0 = b == 64 ? raw : raw & ((UINT64_C(1) << b) - 1);
        return 0;
    }
    case SPCI_F_BOOL:
        if (!integer)
            break;
        *v0 = (n->cls == N_INT ? n->i != 0 : n->u != 0) ? 1 : 0;
        return 0;
    case SPCI_F_CHAR:
        if (!integer)
            break;
        if ((n->cls == N_UINT && n->u > 255) || (n->cls == N_INT && (n->i < -128 || n->i > 255)))
            return out_of_range(n, f);
        *v0 = (uint8_t)(n->cls == N_INT ? (uint64_t)n->i : n->u);
        return 0;
    case SPCI_F_FLOAT:
    case SPCI_F_COMPLEX: {
        if (n->cls == N_COMPLEX && f->kind == SPCI_F_FLOAT)
            break;
        double re = n->cls == N_UINT ? (double)n->u : n->cls == N_INT ? (double)n->i : n->re;
        double im = n->cls == N_COMPLEX ? n->im : 0.0;
        uint32_t part = f->kind == SPCI_F_COMPLEX ? b / 2 : b;
        *v0 = float_bits(re, part);
        *v1 = float_bits(im, part);
        return 0;
    }
    case SPCI_F_OPAQUE:
        return spci_item_fail(-EINVAL, "dtype field %s cannot be set from numbers (use spc_item_set_bytes)", f->label);
    }
    return spci_item_fail(-EINVAL, "cannot store %s in field %s", class_name(n->cls), f->label);
}

/* Writes the low `bits` bits of v at bit position pos, MSB first, into a zeroed buffer. */
static void put_bits(uint8_t *dst, uint64_t pos, unsigned bits, uint64_t v)
{
    while (bits > 0) {
        unsigned used = (unsigned)(pos % 8), room = 8 - used;
        unsigned take = bits < room ? bits : room;
        unsigned chunk = (unsigned)(v >> (bits - take)) & ((1u << take) - 1);
        dst[pos / 8] |= (uint8_t)(chunk << (room - take));
        pos += take;
        bits -= take;
    }
}

static void put_part(uint8_t *dst, uint64_t pos, unsigned bits, bool little, uint64_t v)
{
    if (pos % 8 != 0 || bits % 8 != 0) {
        put_bits(dst, pos, bits, v);
        return;
    }
    uint8_t *p = dst + pos / 8;
    unsigned bytes = bits / 8;
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * (little ? i : bytes - 1 - i)));
}


int spci_pack_source(const struct spc_item *it, const struct spc_array *a, struct spci_source *s)
{
    if (!a)
        return spci_item_fail(-EINVAL, "no value given");
    s->a = a;
    if (a->n_dims != it->n_dims || (a->n_dims > 0 && !a->shape)) {
        char got[32] = "(?)", want[128];
        if (a->n_dims == 0)
            snprintf(got, sizeof(got), "()");
        else if (a->shape && a->n_dims <= SPC_ITEM_MAX_DIMS)
            shape_repr(got, sizeof(got), NULL, a->shape, a->n_dims);
        shape_repr(want, sizeof(want), it->shape, NULL, it->n_dims);
        return spci_item_fail(-EINVAL, "value has shape %s, expected %s", got, want);
    }
    uint64_t n = 1;
    for (size_t d = 0; d < a->n_dims; d++) {
        if ((int)d != it->var_dim && a->shape[d] != (uint64_t)it->shape[d]) {
            char got[256], want[256];
            shape_repr(got, sizeof(got), NULL, a->shape, a->n_dims);
            shape_repr(want, sizeof(want), it->shape, NULL, it->n_dims);
            return spci_item_fail(-EINVAL, "value has shape %s, expected %s", got, want);
        }
        s->shape[d] = a->shape[d];
        if (__builtin_mul_overflow(n, (uint64_t)a->shape[d], &n))
            return spci_item_fail(-EOVERFLOW, "value too large");
    }
    uint64_t bits;
    if (__builtin_mul_overflow(n, it->elem_bits, &bits) || bits / 8 >= SIZE_MAX / 2)
        return spci_item_fail(-EOVERFLOW, "value too large");
    s->n_elems = n;
    s->len = (size_t)((bits + 7) / 8);

    size_t nf = a->n_fields ? a->n_fields : 1;
    if (nf != it->n_fields)
        return spci_item_fail(-EINVAL, "value gives %zu field(s), the item's element has %zu", nf, it->n_fields);
    if (a->n_fields) {
        if (!a->fields)
            return spci_item_fail(-EINVAL, "n_fields > 0 with NULL fields");
        s->f = a->fields;
    } else {
        s->fields[0] = (struct spc_field_src){a->type, 0};
        s->f = s->fields;
    }
    size_t min_elem = 0;
    for (size_t i = 0; i < nf; i++) {
        size_t sz = spc_ctype_size(s->f[i].type);
        if (sz == 0)
            return spci_item_fail(-EINVAL, "invalid ctype %d", (int)s->f[i].type);
        if (s->f[i].offset + sz > min_elem)
            min_elem = s->f[i].offset + sz;
    }
    if (n > 0 && !a->data)
        return spci_item_fail(-EINVAL, "value data is NULL");
    if (a->strides) {
        memcpy(s->strides, a->strides, a->n_dims * sizeof(*s->strides));
    } else {
        size_t es = a->n_fields ? a->elem_size : min_elem;
        if (es < min_elem)
            return spci_item_fail(-EINVAL, "elem_size %zu is smaller than the fields need (%zu)", es, min_elem);
        ptrdiff_t st = (ptrdiff_t)es;
        for (size_t d = a->n_dims; d-- > 0;) {
            s->strides[d] = st;
            st *= (ptrdiff_t)(a->shape[d] ? a->shape[d] : 1);
        }
    }
    return 0;
}

static bool ctype_matches(const struct spci_field *f, enum spc_ctype t)
{
    size_t sz = spc_ctype_size(t);
    if (f->bit_offset % 8 != 0 || f->bits != 8 * sz)
        return false;
    unsigned part = f->kind == SPCI_F_COMPLEX ? f->bits / 2 : f->bits;
    if (part > 8 && f->little != SPCI_HOST_LITTLE)
        return false;
    switch (f->kind) {
    case SPCI_F_UINT: return t == SPC_CTYPE_U8 || t == SPC_CTYPE_U16 || t == SPC_CTYPE_U32 || t == SPC_CTYPE_U64;
    case SPCI_F_INT: return t == SPC_CTYPE_I8 || t == SPC_CTYPE_I16 || t == SPC_CTYPE_I32 || t == SPC_CTYPE_I64;
    case SPCI_F_FLOAT: return t == SPC_CTYPE_F32 || t == SPC_CTYPE_F64;
    case SPCI_F_COMPLEX: return t == SPC_CTYPE_C64 || t == SPC_CTYPE_C128;
    case SPCI_F_BOOL: return t == SPC_CTYPE_BOOL;
    case SPCI_F_CHAR: return t == SPC_CTYPE_CHAR || t == SPC_CTYPE_U8 || t == SPC_CTYPE_I8;
    case SPCI_F_OPAQUE: return false;
    }
    return false;
}

/* Whether the caller's memory already is the wire layout: whole-byte elements, each field
 * the same type, size and byte order at the same offset, laid out contiguously in the
 * item's order (dimensions of size 1 may have any stride). */
bool spci_pack_is_wire_layout(const struct spc_item *it, const struct spci_source *s)
{
    if (it->elem_bits % 8 != 0)
        return false;
    for (size_t i = 0; i < it->n_fields; i++)
        if (s->f[i].offset * 8 != it->fields[i].bit_offset || !ctype_matches(&it->fields[i], s->f[i].type))
            return false;
    if (s->n_elems <= 1)
        return true;
    ptrdiff_t want = (ptrdiff_t)(it->elem_bits / 8);
    for (size_t k = 0; k < it->n_dims; k++) {
        size_t d = it->fortran_order ? k : it->n_dims - 1 - k;
        if (s->shape[d] > 1 && s->strides[d] != want)
            return false;
        want *= (ptrdiff_t)s->shape[d];
    }
    return true;
}

/* Packs the numbers into dst (zeroed, s->len bytes), elements in the item's order. With
 * dst NULL it only checks that every number fits. */
int spci_pack(const struct spc_item *it, const struct spci_source *s, uint8_t *dst)
{
    size_t idx[SPC_ITEM_MAX_DIMS] = {0};
    const uint8_t *base = s->a->data;
    ptrdiff_t off = 0;
    size_t nd = it->n_dims;
    for (uint64_t e = 0; e < s->n_elems; e++) {
        uint64_t pos = e * it->elem_bits;
        for (size_t i = 0; i < it->n_fields; i++) {
            const struct spci_field *f = &it->fields[i];
            struct num n = read_num(s->f[i].type, base + off + s->f[i].offset);
            uint64_t v0 = 0, v1 = 0;
            int rc = to_bits(f, &n, &v0, &v1);
            if (rc < 0)
                return rc;
            if (!dst)
                continue;
            if (f->kind == SPCI_F_COMPLEX) {
                put_part(dst, pos + f->bit_offset, f->bits / 2, f->little, v0);
                put_part(dst, pos + f->bit_offset + f->bits / 2, f->bits / 2, f->little, v1);
            } else {
                put_part(dst, pos + f->bit_offset, f->bits, f->little, v0);
            }
        }
        /* Next element: the last index runs fastest in C order, the first in Fortran. */
        for (size_t k = 0; k < nd; k++) {
            size_t d = it->fortran_order ? k : nd - 1 - k;
            off += s->strides[d];
            if (++idx[d] < s->shape[d])
                break;
            off -= s->strides[d] * (ptrdiff_t)s->shape[d];
            idx[d] = 0;
        }
    }
    return 0;
}
