/* Element layouts (SPEC §2): a numpy dtype descr (plain or structured, Python repr form)
 * or a SPEAD format list, parsed into fields; the dtype also into numpy's normal form. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "item_error.h"
#include "pylit.h"
#include "strbuf.h"

static void skip_ws(const char **p)
{
    while (spci_py_space(**p))
        (*p)++;
}

/* Scans a quoted Python string at *p (pylit.h); sets *s and *n to its body. A body with
 * an escape is refused: field names and type strings never need one. */
static bool quoted(const char **p, const char **s, size_t *n)
{
    size_t body, len, total = spci_py_string(*p, strlen(*p), &body, &len);
    if (!total || memchr(*p + body, '\\', len))
        return false;
    *s = *p + body;
    *n = len;
    *p += total;
    return true;
}

/* Parses one plain descr ("<u2", "|b1", "<M8[ns]") of n bytes at s into *f (bit_offset
 * left to the caller) and appends its normal form to canon. Returns its size in bytes. */
static int64_t parse_plain(const char *s, size_t n, struct spci_field *f, struct spci_str *canon)
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
        order = SPCI_HOST_LITTLE ? '<' : '>';
    f->little = order == '<';
    f->bits = (uint32_t)(8 * bytes);
    char head[2] = {order, kind};
    spci_str_add(canon, head, 2);
    size_t digits_start = unit_start - digits;
    spci_str_add(canon, s + digits_start, n - digits_start);
    snprintf(f->label, sizeof(f->label), "%c%c%llu", order, kind, (unsigned long long)count);
    return (int64_t)bytes;
}

/* Parses a dtype (plain or structured) into fields and its normal-form text. */
int spci_dtype_parse(const char *descr, struct spci_field **fields, size_t *n_fields, uint64_t *elem_bits,
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
    struct spci_str t = SPCI_STR_FIXED(canon, cap);
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
        spci_str_puts(&t, "[");
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
            spci_str_puts(&t, n > 0 ? ", ('" : "('");
            spci_str_add(&t, name, name_len);
            spci_str_puts(&t, "', '");
            int64_t sz = parse_plain(type, type_len, &fs[n], &t);
            if (sz < 0) {
                rc = (int)sz;
                goto fail;
            }
            spci_str_puts(&t, "')");
            fs[n].bit_offset = bits;
            bits += (uint64_t)sz * 8;
            n++;
        }
        p++;
        skip_ws(&p);
        if (*p != '\0')
            goto syntax;
        spci_str_puts(&t, "]");
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
int spci_format_parse(const struct spc_format_field *fmt, size_t n, struct spci_field **fields, uint64_t *elem_bits)
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
