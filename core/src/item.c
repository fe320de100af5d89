/* Items (item.h): created from descriptors (layouts from dtype.c), holding values set
 * through pack.c, added to heaps; and the error detail each item keeps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "item_error.h"
#include "item_internal.h"
#include "pack.h"

size_t spc_item_last_error(const struct spc_item *item, char *err, size_t errlen)
{
    return spci_copy_error(item ? item->last_error : "", err, errlen);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
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
        rc = spci_dtype_parse(d->dtype, &it->fields, &it->n_fields, &it->elem_bits, &it->dtype);
    } else {
        it->n_fields = d->n_format;
        rc = spci_format_parse(d->format, d->n_format, &it->fields, &it->elem_bits);
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
    struct spci_source s;
    int rc = spci_pack_source(item, src, &s);
    if (rc < 0)
        return rc;
    if (flags & SPC_SET_IN_PLACE) {
        if ((rc = in_place_target(item, s.len)) < 0 || (rc = spci_pack(item, &s, NULL)) < 0)
            return rc;
        memset(item->block->data, 0, s.len);
        spci_pack(item, &s, item->block->data);
        install(item, item->block->data, s.len, item->block);
        return 0;
    }
    if (!(flags & SPC_SET_COPY) && spci_pack_is_wire_layout(item, &s)) {
        /* The lowest address holds the first wire element (all used strides are positive). */
        install(item, src->data, s.len, NULL);
        return 0;
    }
    struct spci_value *v = value_new(s.len);
    if (!v)
        return spci_item_fail(-ENOMEM, "out of memory");
    if ((rc = spci_pack(item, &s, v->data)) < 0) {
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

