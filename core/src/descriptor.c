/* Descriptor validation and encoding (SPEC §1 "Descriptors", bug_compat flags). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "wire_internal.h"

int spc_descriptor_check(const struct spc_descriptor *d, const struct spc_flavour *f)
{
    if (!d || !f)
        return -EINVAL;
    int rc = spc_flavour_check(f);
    if (rc < 0)
        return rc;
    uint64_t max_id = spc_flavour_max_id(f);
    /* The ID is also carried as an immediate inside the descriptor packet. */
    if (spc_flavour_max_value(f) < max_id)
        max_id = spc_flavour_max_value(f);
    if (d->id == 0 || d->id > max_id)
        return -SPC_EITEM_ID;
    if ((d->n_format > 0) == (d->dtype != NULL))
        return -SPC_EFORMAT_DTYPE;
    if (d->n_dims > 0 && !d->shape)
        return -EINVAL;
    if (d->n_format > 0 && !d->format)
        return -EINVAL;
    size_t variable = 0;
    unsigned size_bytes = (f->bug_compat & SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS) ? 7 : f->heap_address_bits / 8;
    for (size_t i = 0; i < d->n_dims; i++) {
        if (d->shape[i] == SPC_DIM_VARIABLE)
            variable++;
        else if (d->shape[i] < 0)
            return -SPC_EDESCRIPTOR;
        else if (size_bytes < 8 && (uint64_t)d->shape[i] >> (8 * size_bytes) != 0)
            return -SPC_EDESCRIPTOR;
    }
    if (variable > 1 || (variable > 0 && d->dtype))
        return -SPC_EVARIABLE_DIMS;
    if (d->fortran_order && !d->dtype)
        return -SPC_EDESCRIPTOR;
    if (d->dtype && d->dtype[0] == '\0')
        return -SPC_EDESCRIPTOR;
    unsigned bits_bytes = (f->bug_compat & SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS) ? 3 : 8 - f->heap_address_bits / 8;
    for (size_t i = 0; i < d->n_format; i++) {
        if (d->format[i].bits == 0 || d->format[i].type == '\0')
            return -SPC_EDESCRIPTOR;
        if (bits_bytes < 4 && d->format[i].bits >> (8 * bits_bytes) != 0)
            return -SPC_EDESCRIPTOR;
    }
    return 0;
}

/* Copies a descr, swapping '<' and '>' where they open a quoted type string. */
static void put_descr(struct spci_str *sb, const char *descr, bool swap)
{
    bool structured = descr[0] == '[';
    if (!structured)
        spci_str_putc(sb, '\'');
    for (size_t i = 0; descr[i]; i++) {
        char c = descr[i];
        bool opens = structured ? (i > 0 && descr[i - 1] == '\'') : i == 0;
        if (swap && opens && (c == '<' || c == '>'))
            c = c == '<' ? '>' : '<';
        spci_str_putc(sb, c);
    }
    if (!structured)
        spci_str_putc(sb, '\'');
}

size_t spc_dtype_header(const struct spc_descriptor *d, bool swap_endian, char *buf, size_t cap)
{
    struct spci_str sb = SPCI_STR_FIXED(buf, cap);
    spci_str_puts(&sb, "{'descr': ");
    put_descr(&sb, d->dtype ? d->dtype : "", swap_endian);
    spci_str_puts(&sb, d->fortran_order ? ", 'fortran_order': True, 'shape': (" : ", 'fortran_order': False, 'shape': (");
    for (size_t i = 0; i < d->n_dims; i++) {
        if (i > 0)
            spci_str_puts(&sb, ", ");
        spci_str_printf(&sb, "%lld", (long long)d->shape[i]);
    }
    if (d->n_dims == 1)
        spci_str_putc(&sb, ',');
    spci_str_puts(&sb, ")}");
    return sb.len;
}

int spc_descriptor_encode(const struct spc_descriptor *d, const struct spc_flavour *f, uint8_t **out,
                          size_t *out_len)
{
    int rc = spc_descriptor_check(d, f);
    if (rc < 0)
        return rc;
    bool compat_widths = f->bug_compat & SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS;
    unsigned hab_bytes = f->heap_address_bits / 8;
    unsigned fmt_bytes = compat_widths ? 3 : 8 - hab_bytes;
    unsigned shape_bytes = compat_widths ? 7 : hab_bytes;
    const char *name = d->name ? d->name : "";
    const char *desc = d->description ? d->description : "";
    size_t name_len = strlen(name), desc_len = strlen(desc);
    size_t fmt_len = d->n_format * (1 + fmt_bytes);
    size_t shape_len = d->n_dims * (1 + shape_bytes);
    size_t dtype_len = d->dtype ? spc_dtype_header(d, f->bug_compat & SPC_BUG_COMPAT_SWAP_ENDIAN, NULL, 0) : 0;
    size_t payload = name_len + desc_len + fmt_len + shape_len + dtype_len;
    unsigned n_ptrs = 4 + 1 + 4 + (d->dtype ? 1 : 0);
    size_t total = 8 + 8 * (size_t)n_ptrs + payload;
    if (payload > spc_flavour_max_value(f))
        return -SPC_EHEAP_TOO_LARGE;

    uint8_t *buf = malloc(total + 1); /* +1: room for the header writer's NUL */
    if (!buf)
        return -ENOMEM;
    uint8_t *p = buf;
    spci_put_header(p, f, n_ptrs);
    p += 8;
    uint64_t offsets[5];
    offsets[0] = 0;
    offsets[1] = name_len;
    offsets[2] = offsets[1] + desc_len;
    offsets[3] = offsets[2] + fmt_len;
    offsets[4] = offsets[3] + shape_len;
    const uint64_t ptrs[] = {
        spci_item_pointer(f, true, SPC_ID_HEAP_CNT, 1),
        spci_item_pointer(f, true, SPC_ID_HEAP_SIZE, payload),
        spci_item_pointer(f, true, SPC_ID_HEAP_OFFSET, 0),
        spci_item_pointer(f, true, SPC_ID_PAYLOAD_LENGTH, payload),
        spci_item_pointer(f, true, SPC_ID_DESCRIPTOR_ID, d->id),
        spci_item_pointer(f, false, SPC_ID_DESCRIPTOR_NAME, offsets[0]),
        spci_item_pointer(f, false, SPC_ID_DESCRIPTOR_DESCRIPTION, offsets[1]),
        spci_item_pointer(f, false, SPC_ID_DESCRIPTOR_FORMAT, offsets[2]),
        spci_item_pointer(f, false, SPC_ID_DESCRIPTOR_SHAPE, offsets[3]),
        spci_item_pointer(f, false, SPC_ID_DESCRIPTOR_DTYPE, offsets[4]),
    };
    for (unsigned i = 0; i < n_ptrs; i++, p += 8)
        spci_put_be(p, ptrs[i], 8);
    memcpy(p, name, name_len);
    p += name_len;
    memcpy(p, desc, desc_len);
    p += desc_len;
    for (size_t i = 0; i < d->n_format; i++) {
        *p++ = (uint8_t)d->format[i].type;
        spci_put_be(p, d->format[i].bits, fmt_bytes);
        p += fmt_bytes;
    }
    uint8_t variable_flag = (f->bug_compat & SPC_BUG_COMPAT_SHAPE_BIT_1) ? 2 : 1;
    for (size_t i = 0; i < d->n_dims; i++) {
        bool variable = d->shape[i] == SPC_DIM_VARIABLE;
        *p++ = variable ? variable_flag : 0;
        spci_put_be(p, variable ? 0 : (uint64_t)d->shape[i], shape_bytes);
        p += shape_bytes;
    }
    if (d->dtype) {
        spc_dtype_header(d, f->bug_compat & SPC_BUG_COMPAT_SWAP_ENDIAN, (char *)p, dtype_len + 1);
        p += dtype_len;
    }
    *out = buf;
    *out_len = total;
    return 0;
}
