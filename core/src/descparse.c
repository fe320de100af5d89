/* Parsing descriptors (item 5) back: the value is a one-packet SPEAD heap whose own
 * header gives the flavour used for the format and shape field widths. Every read is
 * bounded by the item's length; anything unexpected is -SPC_EBAD_DESCRIPTOR.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pylit.h"
#include "speadcast/decoder.h"

#define BAD (-SPC_EBAD_DESCRIPTOR)

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void spc_descriptor_info_free(struct spc_descriptor_info *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->description);
    free(info->shape);
    free(info->format);
    free(info->dtype_header);
    free(info->dtype);
    free(info->dtype_shape);
    free(info);
}

/* ------------------------------------------------------- numpy header text */

/* A cursor over the header text, which is not NUL-terminated. */
struct cur {
    const char *s;
    size_t n, i;
};

static void skip_ws(struct cur *c)
{
    while (c->i < c->n && spci_py_space(c->s[c->i]))
        c->i++;
}

static bool eat(struct cur *c, char ch)
{
    skip_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return true;
    }
    return false;
}

static bool eat_word(struct cur *c, const char *w)
{
    size_t l = strlen(w);
    skip_ws(c);
    if (c->n - c->i < l || memcmp(c->s + c->i, w, l) != 0)
        return false;
    c->i += l;
    return true;
}

/* A Python string literal in ' or " (pylit.h). start and len give its body, escapes left
 * as they are. */
static bool parse_str(struct cur *c, size_t *start, size_t *len)
{
    skip_ws(c);
    size_t body, total = spci_py_string(c->s + c->i, c->n - c->i, &body, len);
    if (!total)
        return false;
    *start = c->i + body;
    c->i += total;
    return true;
}

/* A bracketed structured descr: the text from '[' to its matching ']', brackets and
 * parentheses properly nested (at most 32 deep), strings skipped as units. */
static bool parse_list_text(struct cur *c, size_t *start, size_t *len)
{
    char open[32];
    size_t depth = 0;
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != '[')
        return false;
    *start = c->i;
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (ch == '\'' || ch == '"') {
            size_t s, l;
            if (!parse_str(c, &s, &l))
                return false;
            continue;
        }
        if (ch == '[' || ch == '(') {
            if (depth == sizeof(open))
                return false;
            open[depth++] = ch;
        } else if (ch == ']' || ch == ')') {
            if (depth == 0 || open[depth - 1] != (ch == ']' ? '[' : '('))
                return false;
            if (--depth == 0) {
                c->i++;
                *len = c->i - *start;
                return true;
            }
        }
        c->i++;
    }
    return false;
}

/* A tuple of non-negative integers: (), (5,), (2, 3). */
static bool parse_shape(struct cur *c, int64_t **dims, size_t *n_dims)
{
    if (!eat(c, '('))
        return false;
    /* Each dimension takes at least two characters of the header. */
    int64_t *d = malloc((c->n / 2 + 1) * sizeof(*d));
    size_t n = 0;
    bool comma = false;
    if (!d)
        return false;
    for (;;) {
        if (eat(c, ')'))
            break;
        skip_ws(c);
        if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9')
            goto fail;
        int64_t v = 0;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
            int digit = c->s[c->i++] - '0';
            if (v > (INT64_MAX - digit) / 10)
                goto fail;
            v = v * 10 + digit;
        }
        if (c->i < c->n && c->s[c->i] == 'L') /* Python 2 long literal */
            c->i++;
        d[n++] = v;
        comma = false;
        if (eat(c, ')'))
            break;
        if (!eat(c, ','))
            goto fail;
        comma = true;
    }
    /* "(5)" is not a tuple; a one-element tuple is written "(5,)". */
    if (n == 1 && !comma)
        goto fail;
    *dims = d;
    *n_dims = n;
    return true;
fail:
    free(d);
    return false;
}

/* {'descr': ..., 'fortran_order': ..., 'shape': (...)} in any key order, each key once,
 * an optional trailing comma, trailing whitespace (.npy padding) allowed. */
static int parse_dtype_header(struct spc_descriptor_info *info, const char *s, size_t n,
                              bool swap_endian)
{
    struct cur c = {s, n, 0};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!eat(&c, '{'))
        return BAD;
    for (;;) {
        if (eat(&c, '}'))
            break;
        size_t ks, kl;
        if (!parse_str(&c, &ks, &kl) || !eat(&c, ':'))
            return BAD;
        const char *key = s + ks;
        if (kl == 5 && memcmp(key, "descr", 5) == 0 && !have_descr) {
            size_t vs, vl;
            skip_ws(&c);
            if (c.i < c.n && c.s[c.i] == '[') {
                if (!parse_list_text(&c, &vs, &vl))
                    return BAD;
            } else if (!parse_str(&c, &vs, &vl) || vl == 0) {
                return BAD;
            }
            info->dtype = dup_bytes((const uint8_t *)s + vs, vl);
            if (!info->dtype)
                return -ENOMEM;
            have_descr = true;
        } else if (kl == 13 && memcmp(key, "fortran_order", 13) == 0 && !have_order) {
            if (eat_word(&c, "True"))
                info->fortran_order = true;
            else if (eat_word(&c, "False"))
                info->fortran_order = false;
            else
                return BAD;
            have_order = true;
        } else if (kl == 5 && memcmp(key, "shape", 5) == 0 && !have_shape) {
            if (!parse_shape(&c, &info->dtype_shape, &info->dtype_n_dims))
                return BAD;
            have_shape = true;
        } else {
            return BAD;
        }
        if (eat(&c, '}'))
            break;
        if (!eat(&c, ','))
            return BAD;
    }
    skip_ws(&c);
    if (c.i != c.n || !have_descr || !have_order || !have_shape)
        return BAD;
    /* bug_compat 4: the sender advertised the opposite byte order from its data. */
    if (swap_endian)
        for (char *p = info->dtype; *p; p++)
            *p = *p == '<' ? '>' : *p == '>' ? '<' : *p;
    return 0;
}

/* ------------------------------------------------------------ the fields */

static int parse_shape_field(struct spc_descriptor_info *info, const uint8_t *p, size_t len,
                             unsigned hab_bytes, unsigned bug_compat)
{
    size_t width = (bug_compat & SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS) ? 8 : 1 + hab_bytes;
    uint8_t var_flag = (bug_compat & SPC_BUG_COMPAT_SHAPE_BIT_1) ? 2 : 1;
    if (len % width)
        return BAD;
    size_t n = len / width;
    info->shape = malloc((n ? n : 1) * sizeof(*info->shape));
    if (!info->shape)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = p + i * width;
        if (e[0] == 0)
            info->shape[i] = (int64_t)load_be(e + 1, width - 1); /* at most 7 bytes */
        else if (e[0] == var_flag)
            info->shape[i] = SPC_DIM_VARIABLE;
        else
            return BAD;
    }
    info->n_dims = n;
    return 0;
}

static int parse_format_field(struct spc_descriptor_info *info, const uint8_t *p, size_t len,
                              unsigned hab_bytes, unsigned bug_compat)
{
    size_t width = (bug_compat & SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS) ? 4 : 1 + (8 - hab_bytes);
    if (len % width)
        return BAD;
    size_t n = len / width;
    info->format = malloc((n ? n : 1) * sizeof(*info->format));
    if (!info->format)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = p + i * width;
        uint64_t bits = load_be(e + 1, width - 1);
        if (e[0] == 0 || bits == 0 || bits > UINT32_MAX)
            return BAD;
        info->format[i] = (struct spc_format_field){(char)e[0], (uint32_t)bits};
    }
    info->n_format = n;
    return 0;
}

struct field {
    const uint8_t *data;
    size_t len;
    bool present;
};

static int parse_into(struct spc_descriptor_info *info, const struct spc_decoded_item *item,
                      unsigned bug_compat)
{
    struct spc_packet_info pi;
    if (item->immediate || (!item->data && item->len))
        return BAD;
    if (spc_packet_parse(item->data, item->len, &pi) < 0)
        return BAD;
    if (pi.heap_offset != 0 || (pi.heap_size != UINT64_MAX && pi.heap_size != pi.payload_length))
        return BAD;
    const unsigned hab = pi.heap_address_bits, hab_bytes = hab / 8;
    const uint64_t value_mask = (UINT64_C(1) << hab) - 1;
    const uint64_t max_id = (UINT64_C(1) << (63 - hab)) - 1;

    /* Fields by ID - 0x10: name, description, shape, format, ID, dtype. */
    struct field fields[6] = {{0}};
    uint64_t next = pi.payload_length; /* address where the next addressed field starts */
    for (size_t i = pi.n_pointers; i-- > 0;) {
        const uint8_t *wp = pi.pointers + 8 * i;
        uint64_t w = load_be(wp, 8);
        bool imm = w >> 63;
        uint64_t id = (w & ~(UINT64_C(1) << 63)) >> hab, v = w & value_mask;
        if (id >= SPC_ID_HEAP_CNT && id <= SPC_ID_PAYLOAD_LENGTH)
            continue;
        struct field f;
        if (imm) {
            f = (struct field){wp + 8 - hab_bytes, hab_bytes, true};
        } else {
            if (v > next)
                return BAD;
            f = (struct field){pi.payload + v, (size_t)(next - v), true};
            next = v;
        }
        if (id >= SPC_ID_DESCRIPTOR_NAME && id <= SPC_ID_DESCRIPTOR_DTYPE) {
            if (fields[id - SPC_ID_DESCRIPTOR_NAME].present)
                return BAD;
            fields[id - SPC_ID_DESCRIPTOR_NAME] = f;
        }
    }

    const struct field *fid = &fields[SPC_ID_DESCRIPTOR_ID - SPC_ID_DESCRIPTOR_NAME];
    if (!fid->present || fid->len == 0 || fid->len > 8)
        return BAD;
    info->id = load_be(fid->data, fid->len);
    if (info->id == 0 || info->id > max_id)
        return BAD;

    const struct field *fname = &fields[SPC_ID_DESCRIPTOR_NAME - SPC_ID_DESCRIPTOR_NAME];
    const struct field *fdesc = &fields[SPC_ID_DESCRIPTOR_DESCRIPTION - SPC_ID_DESCRIPTOR_NAME];
    info->name = dup_bytes(fname->data, fname->len);
    info->description = dup_bytes(fdesc->data, fdesc->len);
    if (!info->name || !info->description)
        return -ENOMEM;

    int rc;
    const struct field *fshape = &fields[SPC_ID_DESCRIPTOR_SHAPE - SPC_ID_DESCRIPTOR_NAME];
    if (fshape->present &&
        (rc = parse_shape_field(info, fshape->data, fshape->len, hab_bytes, bug_compat)) < 0)
        return rc;
    const struct field *ffmt = &fields[SPC_ID_DESCRIPTOR_FORMAT - SPC_ID_DESCRIPTOR_NAME];
    if (ffmt->present &&
        (rc = parse_format_field(info, ffmt->data, ffmt->len, hab_bytes, bug_compat)) < 0)
        return rc;
    const struct field *fdtype = &fields[SPC_ID_DESCRIPTOR_DTYPE - SPC_ID_DESCRIPTOR_NAME];
    if (fdtype->present) {
        if (memchr(fdtype->data, '\0', fdtype->len))
            return BAD;
        info->dtype_header = dup_bytes(fdtype->data, fdtype->len);
        if (!info->dtype_header)
            return -ENOMEM;
        rc = parse_dtype_header(info, info->dtype_header, fdtype->len,
                                bug_compat & SPC_BUG_COMPAT_SWAP_ENDIAN);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int spc_descriptor_parse(const struct spc_decoded_item *item, const struct spc_flavour *f,
                         struct spc_descriptor_info **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!item)
        return -EINVAL;
    struct spc_descriptor_info *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    int rc = parse_into(info, item, f ? f->bug_compat : 0);
    if (rc < 0) {
        spc_descriptor_info_free(info);
        return rc;
    }
    *out = info;
    return 0;
}
