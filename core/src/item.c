/* Items: descriptors parsed into element layouts, and values set from numbers (SPEC §2). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_internal.h"

_Static_assert(sizeof(bool) == 1, "bool values are referenced as 1-byte wire booleans");

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_LITTLE false
#else
#define HOST_LITTLE true
#endif

/* ------------------------------------------------------------ error text */

/* The text is composed where the error is found, deep in the parsers and packers, and
 * moved into the object (or the caller's err buffer) by the public call that failed, on
 * the same thread before it returns: this buffer is only that hand-over, never read by
 * the application. */
static _Thread_local char pending[SPCI_ITEM_ERROR_MAX];

int spci_item_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pending, sizeof(pending), fmt, ap);
    va_end(ap);
    return code;
}

int spci_item_keep_error(int rc, char *dst, size_t cap)
{
    if (rc < 0 && dst && cap)
        snprintf(dst, cap, "%s", pending);
    return rc;
}

size_t spc_item_last_error(const struct spc_item *item, char *err, size_t errlen)
{
    return spci_copy_error(item ? item->last_error : "", err, errlen);
}

/* ----------------------------------------------------------- small helpers */

/* Appends to a bounded text buffer; len counts what was asked for, even past cap. */
struct text {
    char *buf;
    size_t cap, len;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, t->len++)
        if (t->len + 1 < t->cap)
            t->buf[t->len] = s[i];
    if (t->cap > 0)
        t->buf[t->len < t->cap ? t->len : t->cap - 1] = '\0';
}

static void text_str(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Writes a shape as Python prints a tuple: "()", "(5,)", "(2, None)". */
static void shape_repr(char *buf, size_t cap, const int64_t *ishape, const size_t *ushape, size_t n)
{
    struct text t = {buf, cap, 0};
    text_str(&t, "(");
    for (size_t i = 0; i < n; i++) {
        char num[32];
        if (ishape && ishape[i] == SPC_DIM_VARIABLE)
            snprintf(num, sizeof(num), "None");
        else
            snprintf(num, sizeof(num), "%llu", ishape ? (unsigned long long)ishape[i] : (unsigned long long)ushape[i]);
        if (i > 0)
            text_str(&t, ", ");
        text_str(&t, num);
    }
    text_str(&t, n == 1 ? ",)" : ")");
}

/* ---------------------------------------------------------- dtype parsing */

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n')
        (*p)++;
}

/* Parses a quoted Python string (' or ", no escapes) at *p; sets *s and *n to its contents. */
static bool quoted(const char **p, const char **s, size_t *n)
{
    char q = **p;
    if (q != '\'' && q != '"')
        return false;
    const char *start = *p + 1, *end = strchr(start, q);
    if (!end || memchr(start, '\\', (size_t)(end - start)))
        return false;
    *s = start;
    *n = (size_t)(end - start);
    *p = end + 1;
    return true;
}

/* Parses one plain descr ("<u2", "|b1", "<M8[ns]") of n bytes at s into *f (bit_offset
 * left to the caller) and appends its normal form to canon. Returns its size in bytes. */
static int64_t parse_plain(const char *s, size_t n, struct spci_field *f, struct text *canon)
{
    size_t i = 0;
    char order = 0;
    if (i < n && strchr("<>|=", s[i]))
        order = s[i++];
    if (i >= n || !strchr("biufcSUVmM", s[i]))
        return spci_item_fail(-SPC_EDESCRIPTOR, "unsupported dtype '%.*s'", (int)n, s);
    char kind = s[i++];
    uint64_t count = 0;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)s[i])) {
        count = count * 10 + (uint64_t)(s[i++] - '0');
        if (++digits > 9)
            return spci_item_fail(-SPC_EDESCRIPTOR, "dtype '%.*s' is too large", (int)n, s);
    }
    size_t unit_start = i;
    if ((kind == 'm' || kind == 'M') && i < n && s[i] == '[') {
        while (i < n && s[i] != ']')
            i++;
        if (i < n)
            i++;
    }
    if (digits == 0 || i != n || (unit_start != i && s[i - 1] != ']'))
        return spci_item_fail(-SPC_EDESCRIPTOR, "cannot parse dtype '%.*s'", (int)n, s);
    uint64_t bytes = kind == 'U' ? 4 * count : count;
    if (bytes == 0)
        return spci_item_fail(-SPC_EDESCRIPTOR, "zero-size dtype '%.*s'", (int)n, s);

    bool ok = true;
    f->kind = SPCI_F_OPAQUE;
    switch (kind) {
    case 'b':
        ok = bytes == 1;
        f->kind = SPCI_F_BOOL;
        break;
    case 'i':
    case 'u':
        ok = bytes == 1 || bytes == 2 || bytes == 4 || bytes == 8;
        f->kind = kind == 'i' ? SPCI_F_INT : SPCI_F_UINT;
        break;
    case 'f':
        ok = bytes == 2 || bytes == 4 || bytes == 8 || bytes == 12 || bytes == 16;
        if (bytes == 4 || bytes == 8)
            f->kind = SPCI_F_FLOAT;
        break;
    case 'c':
        ok = bytes == 8 || bytes == 16 || bytes == 24 || bytes == 32;
        if (bytes == 8 || bytes == 16)
            f->kind = SPCI_F_COMPLEX;
        break;
    case 'S':
        if (bytes == 1)
            f->kind = SPCI_F_CHAR;
        break;
    case 'm':
    case 'M':
        ok = bytes == 8;
        break;
    default: /* U, V */
        break;
    }
    if (!ok)
        return spci_item_fail(-SPC_EDESCRIPTOR, "unsupported dtype '%.*s'", (int)n, s);
    /* numpy's normal form: '|' where byte order does not apply, else explicit. */
    bool no_order = kind == 'S' || kind == 'V' || (bytes == 1 && (kind == 'b' || kind == 'i' || kind == 'u'));
    if (no_order)
        order = '|';
    else if (order != '<' && order != '>')
        order = HOST_LITTLE ? '<' : '>';
    f->little = order == '<';
    f->bits = (uint32_t)(8 * bytes);
    char head[2] = {order, kind};
    text_add(canon, head, 2);
    size_t digits_start = unit_start - digits;
    text_add(canon, s + digits_start, n - digits_start);
    snprintf(f->label, sizeof(f->label), "%c%c%llu", order, kind, (unsigned long long)count);
    return (int64_t)bytes;
}

/* Parses a dtype (plain or structured) into fields and its normal-form text. */
static int parse_dtype(const char *descr, struct spci_field **fields, size_t *n_fields, uint64_t *elem_bits,
                       char **canon_out)
{
    size_t cap = strlen(descr) * 2 + 16;
    char *canon = malloc(cap);
    struct spci_field *fs = NULL;
    size_t n = 0;
    uint64_t bits = 0;
    int rc = -ENOMEM;
    if (!canon)
        goto fail;
    struct text t = {canon, cap, 0};
    const char *p = descr;
    skip_ws(&p);
    if (*p != '[') {
        const char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        if (!(fs = calloc(1, sizeof(*fs))))
            goto fail;
        int64_t sz = parse_plain(p, (size_t)(end - p), &fs[0], &t);
        if (sz < 0) {
            rc = (int)sz;
            goto fail;
        }
        n = 1;
        bits = (uint64_t)sz * 8;
    } else {
        /* [('name', 'descr'), ...] */
        p++;
        text_str(&t, "[");
        skip_ws(&p);
        size_t count = 1;
        for (const char *q = p; *q; q++)
            count += *q == '(';
        if (!(fs = calloc(count, sizeof(*fs))))
            goto fail;
        rc = -SPC_EDESCRIPTOR;
        while (*p != ']') {
            const char *name, *type;
            size_t name_len, type_len;
            if (n > 0) {
                if (*p != ',')
                    goto syntax;
                p++;
                skip_ws(&p);
            }
            if (*p++ != '(')
                goto syntax;
            skip_ws(&p);
            if (!quoted(&p, &name, &name_len))
                goto syntax;
            skip_ws(&p);
            if (*p++ != ',')
                goto syntax;
            skip_ws(&p);
            if (!quoted(&p, &type, &type_len)) {
                spci_item_fail(rc, "dtype '%s': nested structured fields are not supported", descr);
                goto fail;
            }
            skip_ws(&p);
            if (*p == ',') {
                spci_item_fail(rc, "dtype '%s': sub-array fields are not supported", descr);
                goto fail;
            }
            if (*p++ != ')')
                goto syntax;
            skip_ws(&p);
            text_str(&t, n > 0 ? ", ('" : "('");
            text_add(&t, name, name_len);
            text_str(&t, "', '");
            int64_t sz = parse_plain(type, type_len, &fs[n], &t);
            if (sz < 0) {
                rc = (int)sz;
                goto fail;
            }
            text_str(&t, "')");
            fs[n].bit_offset = bits;
            bits += (uint64_t)sz * 8;
            n++;
        }
        p++;
        skip_ws(&p);
        if (*p != '\0')
            goto syntax;
        text_str(&t, "]");
        if (bits == 0) {
            rc = spci_item_fail(-SPC_EDESCRIPTOR, "zero-size dtype '%s'", descr);
            goto fail;
        }
    }
    *fields = fs;
    *n_fields = n;
    *elem_bits = bits;
    *canon_out = canon;
    return 0;
syntax:
    rc = spci_item_fail(-SPC_EDESCRIPTOR, "cannot parse dtype '%s'", descr);
fail:
    if (rc == -ENOMEM)
        spci_item_fail(rc, "out of memory");
    free(canon);
    free(fs);
    return rc;
}

/* Checks a format list as spead2 does and turns it into fields. */
static int parse_format(const struct spc_format_field *fmt, size_t n, struct spci_field **fields, uint64_t *elem_bits)
{
    for (size_t i = 0; i < n; i++) {
        char c = fmt[i].type;
        uint32_t b = fmt[i].bits;
        if (b == 0)
            return spci_item_fail(-SPC_EDESCRIPTOR, "zero-length field (bug_compat mismatch?)");
        bool legal = ((c == 'u' || c == 'i' || c == 'b') && b <= 64) || (c == 'f' && (b == 32 || b == 64)) ||
                     (c == 'c' && b == 8);
        if (!legal) {
            if ((c == 'u' || c == 'i' || c == 'b') && b > 64)
                return spci_item_fail(-SPC_EDESCRIPTOR, "format (%c, %u) is wider than 64 bits: not supported", c, b);
            return spci_item_fail(-SPC_EDESCRIPTOR, "illegal format (%c, %u)", isprint((unsigned char)c) ? c : '?', b);
        }
    }
    struct spci_field *fs = calloc(n, sizeof(*fs));
    if (!fs)
        return spci_item_fail(-ENOMEM, "out of memory");
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        switch (fmt[i].type) {
        case 'u': fs[i].kind = SPCI_F_UINT; break;
        case 'i': fs[i].kind = SPCI_F_INT; break;
        case 'f': fs[i].kind = SPCI_F_FLOAT; break;
        case 'c': fs[i].kind = SPCI_F_CHAR; break;
        default: fs[i].kind = SPCI_F_BOOL; break;
        }
        fs[i].bits = fmt[i].bits;
        fs[i].bit_offset = bits;
        fs[i].little = false;
        snprintf(fs[i].label, sizeof(fs[i].label), "%c%u", fmt[i].type, (unsigned)fmt[i].bits);
        bits += fmt[i].bits;
    }
    *fields = fs;
    *elem_bits = bits;
    return 0;
}

/* --------------------------------------------------------------- items */

static atomic_uint_fast64_t next_serial = 1;

static void value_unref(void *p)
{
    struct spci_value *v = p;
    if (v && atomic_fetch_sub(&v->refs, 1) == 1)
        free(v);
}

static struct spci_value *value_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(struct spci_value))
        return NULL;
    struct spci_value *v = calloc(1, sizeof(*v) + len);
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    v->len = len;
    return v;
}

void spc_item_destroy(struct spc_item *item)
{
    if (!item)
        return;
    value_unref(item->block);
    free(item->name);
    free(item->description);
    free(item->shape);
    free(item->format);
    free(item->dtype);
    free(item->fields);
    free(item);
}

int spci_item_new(const struct spc_descriptor *d, uint64_t id, struct spc_item **out)
{
    if (!d || !d->name)
        return spci_item_fail(-EINVAL, "an item needs a descriptor with a name");
    if ((d->n_dims > 0 && !d->shape) || (d->n_format > 0 && !d->format))
        return spci_item_fail(-EINVAL, "descriptor has a count with a NULL array");
    if ((id >= 1 && id <= SPC_ID_PAYLOAD_LENGTH) || id > (UINT64_C(1) << 55) - 1)
        return spci_item_fail(-SPC_EITEM_ID, "Item ID out of range (0x%llx)", (unsigned long long)id);
    if (d->dtype && d->n_format > 0)
        return spci_item_fail(-SPC_EFORMAT_DTYPE, "Only one of dtype and format can be specified");
    if (!d->dtype && d->n_format == 0)
        return spci_item_fail(-SPC_EFORMAT_DTYPE, "One of dtype and format must be specified");
    if (d->n_dims > SPC_ITEM_MAX_DIMS)
        return spci_item_fail(-SPC_EDESCRIPTOR, "more than %d dimensions", SPC_ITEM_MAX_DIMS);
    int var_dim = -1;
    for (size_t i = 0; i < d->n_dims; i++) {
        if (d->shape[i] == SPC_DIM_VARIABLE) {
            if (var_dim >= 0)
                return spci_item_fail(-SPC_EVARIABLE_DIMS, "Cannot have multiple unknown dimensions");
            var_dim = (int)i;
        } else if (d->shape[i] < 0) {
            return spci_item_fail(-SPC_EDESCRIPTOR, "negative dimension %lld", (long long)d->shape[i]);
        }
    }
    if (d->dtype && var_dim >= 0)
        return spci_item_fail(-SPC_EVARIABLE_DIMS, "Cannot have unknown dimensions when using numpy descriptor");
    if (!d->dtype && d->fortran_order)
        return spci_item_fail(-SPC_EDESCRIPTOR, "When specifying format, order must be 'C'");

    struct spc_item *it = calloc(1, sizeof(*it));
    if (!it)
        return spci_item_fail(-ENOMEM, "out of memory");
    int rc;
    if (d->dtype) {
        rc = parse_dtype(d->dtype, &it->fields, &it->n_fields, &it->elem_bits, &it->dtype);
    } else {
        it->n_fields = d->n_format;
        rc = parse_format(d->format, d->n_format, &it->fields, &it->elem_bits);
    }
    if (rc < 0)
        goto fail;
    uint64_t elems = 1;
    for (size_t i = 0; i < d->n_dims; i++)
        if ((int)i != var_dim && __builtin_mul_overflow(elems, (uint64_t)d->shape[i], &elems))
            goto too_large;
    uint64_t bits;
    if (__builtin_mul_overflow(elems, it->elem_bits, &bits) || bits / 8 >= SIZE_MAX / 2)
        goto too_large;
    it->fixed_elems = elems;
    it->allow_immediate = var_dim < 0 && it->elem_bits % 8 == 0;
    it->var_dim = var_dim;
    it->id = id;
    it->serial = atomic_fetch_add(&next_serial, 1);
    it->fortran_order = d->fortran_order;
    it->n_dims = d->n_dims;
    it->n_format = d->n_format;
    it->name = dup_str(d->name);
    it->description = dup_str(d->description ? d->description : "");
    it->shape = malloc((d->n_dims ? d->n_dims : 1) * sizeof(*it->shape));
    it->format = malloc((d->n_format ? d->n_format : 1) * sizeof(*it->format));
    if (!it->name || !it->description || !it->shape || !it->format) {
        rc = spci_item_fail(-ENOMEM, "out of memory");
        goto fail;
    }
    if (d->n_dims)
        memcpy(it->shape, d->shape, d->n_dims * sizeof(*it->shape));
    if (d->n_format)
        memcpy(it->format, d->format, d->n_format * sizeof(*it->format));
    *out = it;
    return 0;
too_large:
    rc = spci_item_fail(-SPC_EDESCRIPTOR, "item size overflows");
fail:
    spc_item_destroy(it);
    return rc;
}

int spc_item_create(struct spc_item **out, const struct spc_descriptor *d, char *err, size_t errlen)
{
    int rc;
    if (d && d->id == SPC_ITEM_AUTO_ID)
        rc = spci_item_fail(-SPC_EITEM_ID, "a stand-alone item needs an ID (only item groups allocate them)");
    else
        rc = spci_item_new(d, d ? d->id : 0, out);
    return spci_item_keep_error(rc, err, errlen);
}

bool spci_item_same_descriptor(const struct spc_item *a, const struct spc_item *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->description, b->description) != 0)
        return false;
    if (a->n_dims != b->n_dims || memcmp(a->shape, b->shape, a->n_dims * sizeof(*a->shape)) != 0)
        return false;
    if ((a->dtype == NULL) != (b->dtype == NULL) || (a->dtype && strcmp(a->dtype, b->dtype) != 0))
        return false;
    if (a->fortran_order != b->fortran_order || a->n_format != b->n_format)
        return false;
    for (size_t i = 0; i < a->n_format; i++)
        if (a->format[i].type != b->format[i].type || a->format[i].bits != b->format[i].bits)
            return false;
    return true;
}

uint64_t spc_item_id(const struct spc_item *item)
{
    return item->id;
}

const char *spc_item_name(const struct spc_item *item)
{
    return item->name;
}

const char *spc_item_description(const struct spc_item *item)
{
    return item->description;
}

uint64_t spc_item_version(const struct spc_item *item)
{
    return item->version;
}

bool spc_item_allow_immediate(const struct spc_item *item)
{
    return item->allow_immediate;
}

int64_t spc_item_fixed_size(const struct spc_item *item)
{
    if (item->var_dim >= 0)
        return -1;
    return (int64_t)((item->fixed_elems * item->elem_bits + 7) / 8);
}

void spc_item_descriptor(const struct spc_item *item, struct spc_descriptor *d)
{
    *d = (struct spc_descriptor){
        .id = item->id,
        .name = item->name,
        .description = item->description,
        .shape = item->shape,
        .n_dims = item->n_dims,
        .format = item->dtype ? NULL : item->format,
        .n_format = item->dtype ? 0 : item->n_format,
        .dtype = item->dtype,
        .fortran_order = item->fortran_order,
    };
}

int spc_item_value(const struct spc_item *item, const void **data, size_t *len)
{
    if (item->version == 0)
        return -ENODATA;
    *data = item->data;
    *len = item->len;
    return 0;
}

/* ------------------------------------------------------ setting values */

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

/* Installs a new value, dropping the item's hold on the old one (an in-place set passes
 * the same block back and keeps it). */
static void install(struct spc_item *it, const uint8_t *data, size_t len, struct spci_value *block)
{
    if (block != it->block)
        value_unref(it->block);
    it->block = block;
    it->data = data;
    it->len = len;
    it->version++;
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

/* The value's layout in the caller's memory, resolved. */
struct source {
    const struct spc_array *a;
    size_t shape[SPC_ITEM_MAX_DIMS];
    ptrdiff_t strides[SPC_ITEM_MAX_DIMS];
    struct spc_field_src fields[1]; /* used when a->n_fields == 0 */
    const struct spc_field_src *f;
    uint64_t n_elems;
    size_t len; /* wire bytes */
};

static int check_source(const struct spc_item *it, const struct spc_array *a, struct source *s)
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
    if (part > 8 && f->little != HOST_LITTLE)
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
static bool has_wire_layout(const struct spc_item *it, const struct source *s)
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
static int pack(const struct spc_item *it, const struct source *s, uint8_t *dst)
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

/* Rewrites the item's owned buffer (SPC_SET_IN_PLACE). */
static int in_place_target(struct spc_item *it, size_t len)
{
    if (!it->block)
        return spci_item_fail(-EINVAL, "in-place set needs an owned value (set one without SPC_SET_IN_PLACE first)");
    if (it->block->len != len)
        return spci_item_fail(-EINVAL, "in-place set needs a value of the same length (%zu bytes, not %zu)",
                              it->block->len, len);
    return 0;
}

static int item_set(struct spc_item *item, const struct spc_array *src, unsigned flags)
{
    struct source s;
    int rc = check_source(item, src, &s);
    if (rc < 0)
        return rc;
    if (flags & SPC_SET_IN_PLACE) {
        if ((rc = in_place_target(item, s.len)) < 0 || (rc = pack(item, &s, NULL)) < 0)
            return rc;
        memset(item->block->data, 0, s.len);
        pack(item, &s, item->block->data);
        install(item, item->block->data, s.len, item->block);
        return 0;
    }
    if (!(flags & SPC_SET_COPY) && has_wire_layout(item, &s)) {
        /* The lowest address holds the first wire element (all used strides are positive). */
        install(item, src->data, s.len, NULL);
        return 0;
    }
    struct spci_value *v = value_new(s.len);
    if (!v)
        return spci_item_fail(-ENOMEM, "out of memory");
    if ((rc = pack(item, &s, v->data)) < 0) {
        value_unref(v);
        return rc;
    }
    install(item, v->data, s.len, v);
    return 0;
}

int spc_item_set(struct spc_item *item, const struct spc_array *src, unsigned flags)
{
    int rc = item_set(item, src, flags);
    return item ? spci_item_keep_error(rc, item->last_error, sizeof item->last_error) : rc;
}

static int set_scalar(struct spc_item *item, enum spc_ctype type, const void *p)
{
    struct spc_array a = {.data = p, .type = type};
    return spc_item_set(item, &a, SPC_SET_COPY);
}

int spc_item_set_u64(struct spc_item *item, uint64_t value)
{
    return set_scalar(item, SPC_CTYPE_U64, &value);
}

int spc_item_set_i64(struct spc_item *item, int64_t value)
{
    return set_scalar(item, SPC_CTYPE_I64, &value);
}

int spc_item_set_f64(struct spc_item *item, double value)
{
    return set_scalar(item, SPC_CTYPE_F64, &value);
}

static int item_set_bytes(struct spc_item *item, const void *data, size_t len, unsigned flags)
{
    if (!data && len > 0)
        return spci_item_fail(-EINVAL, "value data is NULL");
    if (item->var_dim < 0) {
        uint64_t want = (uint64_t)spc_item_fixed_size(item);
        if (len != want)
            return spci_item_fail(-EINVAL, "value is %zu bytes, the item takes %llu", len, (unsigned long long)want);
    } else {
        uint64_t step_bits = item->fixed_elems * item->elem_bits;
        if (step_bits % 8 != 0)
            return spci_item_fail(-EINVAL, "one step of the variable dimension is %llu bits, not whole bytes: "
                                  "use spc_item_set", (unsigned long long)step_bits);
        uint64_t step = step_bits / 8;
        if (step == 0 ? len != 0 : len % step != 0)
            return spci_item_fail(-EINVAL, "value is %zu bytes, not a multiple of %llu", len, (unsigned long long)step);
    }
    if (flags & SPC_SET_IN_PLACE) {
        int rc = in_place_target(item, len);
        if (rc < 0)
            return rc;
        if (len)
            memmove(item->block->data, data, len);
        install(item, item->block->data, len, item->block);
        return 0;
    }
    if (!(flags & SPC_SET_COPY)) {
        install(item, data, len, NULL);
        return 0;
    }
    struct spci_value *v = value_new(len);
    if (!v)
        return spci_item_fail(-ENOMEM, "out of memory");
    if (len)
        memcpy(v->data, data, len);
    install(item, v->data, len, v);
    return 0;
}

int spc_item_set_bytes(struct spc_item *item, const void *data, size_t len, unsigned flags)
{
    int rc = item_set_bytes(item, data, len, flags);
    return item ? spci_item_keep_error(rc, item->last_error, sizeof item->last_error) : rc;
}

static int item_set_string(struct spc_item *item, const char *s, unsigned flags)
{
    if (item->n_fields != 1 || item->fields[0].bits != 8 ||
        (item->fields[0].kind != SPCI_F_CHAR && item->fields[0].kind != SPCI_F_UINT &&
         item->fields[0].kind != SPCI_F_INT))
        return spci_item_fail(-EINVAL, "item '%s' does not hold 8-bit characters", item->name);
    if (!s)
        return spci_item_fail(-EINVAL, "string is NULL");
    return item_set_bytes(item, s, strlen(s), flags);
}

int spc_item_set_string(struct spc_item *item, const char *s, unsigned flags)
{
    int rc = item_set_string(item, s, flags);
    return item ? spci_item_keep_error(rc, item->last_error, sizeof item->last_error) : rc;
}

/* ------------------------------------------------------------- heaps */

static int heap_add_item_value(struct spc_heap *heap, const struct spc_item *item)
{
    if (item->version == 0)
        return spci_item_fail(-ENODATA, "item '%s' has no value", item->name);
    int rc;
    if (item->block) {
        atomic_fetch_add(&item->block->refs, 1);
        if ((rc = spc_heap_adopt(heap, item->block, value_unref)) < 0) {
            value_unref(item->block);
            return spci_item_fail(rc, "out of memory");
        }
    }
    rc = spc_heap_add_item(heap, item->id, item->data, item->len, item->allow_immediate);
    if (rc < 0)
        return spci_item_fail(rc, "cannot add item '%s' (ID 0x%llx): %s", item->name, (unsigned long long)item->id,
                              spc_strerror(rc));
    return 0;
}

int spc_heap_add_item_value(struct spc_heap *heap, struct spc_item *item)
{
    int rc = heap_add_item_value(heap, item);
    return item ? spci_item_keep_error(rc, item->last_error, sizeof item->last_error) : rc;
}

static int heap_add_item_descriptor(struct spc_heap *heap, const struct spc_item *item)
{
    struct spc_descriptor d;
    spc_item_descriptor(item, &d);
    int rc = spc_heap_add_descriptor(heap, &d);
    if (rc < 0)
        return spci_item_fail(rc, "cannot add the descriptor of '%s' (ID 0x%llx): %s", item->name,
                              (unsigned long long)item->id, spc_strerror(rc));
    return 0;
}

int spc_heap_add_item_descriptor(struct spc_heap *heap, struct spc_item *item)
{
    int rc = heap_add_item_descriptor(heap, item);
    return item ? spci_item_keep_error(rc, item->last_error, sizeof item->last_error) : rc;
}
