/* Items, item groups and the heap generator (SPEC §2): what spead2.send.ItemGroup and
 * spead2.send.HeapGenerator do, in C.
 *
 * An item has an ID, a name, a description, a shape and either a numpy dtype or a SPEAD
 * format list. Its value is set from numbers in the caller's memory: referenced without
 * copying when that memory already holds the wire layout, else packed into a buffer the
 * item owns. Heaps built from items reference the value (owned buffers are reference
 * counted, so a heap keeps the value it was given even after the item gets a new one).
 *
 * Thread rules: items, item groups and heap generators are not thread-safe; one thread
 * (or a lock) per group. Heaps built from them may be sent and destroyed on any thread:
 * the value buffers' reference counts are atomic.
 */
#ifndef SPEADCAST_ITEM_H
#define SPEADCAST_ITEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/error.h"
#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most dimensions an item may have. */
#define SPC_ITEM_MAX_DIMS 32
/* Item ID 0 in spc_item_group_add asks the group for one: the smallest unused ID from
 * SPC_ITEM_FIRST_AUTO_ID up. */
#define SPC_ITEM_AUTO_ID 0
#define SPC_ITEM_FIRST_AUTO_ID 0x1000

/* Error detail (see speadcast.h): spc_item_create writes it to its (err, errlen); an item,
 * an item group and a heap generator each keep the detail of their latest failed call,
 * copied out by spc_item_last_error, spc_item_group_last_error and
 * spc_heap_generator_last_error, in spead2's words where spead2 has them ("illegal format
 * (f, 16)", "16 is out of range for u4", "value has shape (2,), expected (3,)"). */

/* ------------------------------------------------------------------ items */

struct spc_item;

/* Creates a stand-alone item from a descriptor (struct spc_descriptor in wire.h; the
 * dtype is a numpy descr, see below). Everything *d points to is copied. The caller
 * destroys the item; items made by an item group belong to the group instead.
 *
 * dtype: a plain descr "<u2", ">f8", "<c8", "|b1", "|u1", "|S1" (also "|S5", "|V4",
 * "<U3", "<f2", "<M8[ns]" and the like, which can only be set with spc_item_set_bytes),
 * or a structured descr in Python repr form "[('a', '<u2'), ('b', '>f4')]" (packed
 * fields, no sub-array shapes). It is stored in numpy's normal form ("<u1" -> "|u1").
 * format: fields ('u'|'i', 1..64 bits), ('b', 1..64), ('f', 32|64), ('c', 8), packed
 * MSB first, big-endian.
 * Errors (each with detail in err):
 *   -SPC_EITEM_ID       d->id is 0 (stand-alone items need one), 1-4 or above 2^55 - 1
 *   -SPC_EFORMAT_DTYPE  both or neither of dtype and format
 *   -SPC_EVARIABLE_DIMS more than one variable dimension, or one with a dtype
 *   -SPC_EDESCRIPTOR    Fortran order with a format; an illegal or zero-length format
 *                       field; a dtype that cannot be parsed or has size 0; a negative
 *                       size; more than SPC_ITEM_MAX_DIMS dimensions; a size that overflows
 *   -EINVAL             d or d->name NULL, or a count > 0 with a NULL array
 *   -ENOMEM */
int spc_item_create(struct spc_item **out, const struct spc_descriptor *d, char *err,
                    size_t errlen);
/* Frees a stand-alone item. Heaps holding its owned value keep their reference; user
 * memory it referenced is not touched. NULL is a no-op. Never pass an item of a group. */
void spc_item_destroy(struct spc_item *item);

/* Copies the detail of the item's latest failed spc_item_set*, spc_heap_add_item_value or
 * spc_heap_add_item_descriptor call into err; returns its length. */
size_t spc_item_last_error(const struct spc_item *item, char *err, size_t errlen);

uint64_t spc_item_id(const struct spc_item *item);
const char *spc_item_name(const struct spc_item *item);        /* borrowed, lives with the item */
const char *spc_item_description(const struct spc_item *item); /* borrowed, lives with the item */
/* Counts successful value sets; 0 while the item has no value. */
uint64_t spc_item_version(const struct spc_item *item);
/* Whether a value may go as an immediate: false for a variable shape or an element size
 * that is not a whole number of bytes (e.g. format u7 or b1), as spead2 decides. */
bool spc_item_allow_immediate(const struct spc_item *item);
/* Bytes of the value for a fixed shape (bits rounded up), or -1 for a variable shape. */
int64_t spc_item_fixed_size(const struct spc_item *item);
/* Fills *d with a view of the item's descriptor (dtype in normal form); the pointers are
 * borrowed from the item and live as long as it. */
void spc_item_descriptor(const struct spc_item *item, struct spc_descriptor *d);
/* The current value's wire bytes (*data borrowed until the next set or the item's end).
 * Returns 0, or -ENODATA when no value has been set. */
int spc_item_value(const struct spc_item *item, const void **data, size_t *len);

/* C types a value's numbers can be given in. */
enum spc_ctype {
    SPC_CTYPE_BOOL = 1, /* bool */
    SPC_CTYPE_CHAR,     /* char */
    SPC_CTYPE_U8,
    SPC_CTYPE_U16,
    SPC_CTYPE_U32,
    SPC_CTYPE_U64,
    SPC_CTYPE_I8,
    SPC_CTYPE_I16,
    SPC_CTYPE_I32,
    SPC_CTYPE_I64,
    SPC_CTYPE_F32,  /* float */
    SPC_CTYPE_F64,  /* double */
    SPC_CTYPE_C64,  /* float[2] (or float complex): real, imaginary */
    SPC_CTYPE_C128  /* double[2] (or double complex) */
};
/* sizeof the C type, or 0 for a value outside the enum. */
size_t spc_ctype_size(enum spc_ctype type);

/* Where one field of each element lives, for items whose element has several fields (a
 * structured dtype or a format list of more than one field). */
struct spc_field_src {
    enum spc_ctype type;
    size_t offset; /* bytes from the element's start */
};

/* A value given as numbers: an n_dims array of elements in the caller's memory.
 * - Elements of one field: type says their C type. Several fields: fields[n_fields], one
 *   per dtype/format field in order, and elem_size (bytes per element, e.g. sizeof a
 *   struct) must be set when strides is NULL.
 * - shape must equal the item's shape, a variable dimension taking any size. It is given
 *   in the item's logical (row-major) index order even for a Fortran-order item.
 * - strides: bytes between neighbours along each dimension (may be negative or 0);
 *   NULL means C-contiguous. A Fortran-order item given Fortran-contiguous strides, or a
 *   C-order item given C-contiguous ones, has the wire layout already.
 * Conversions: integer fields (u, i, c, b) take integer and bool types, range-checked
 * ("16 is out of range for u4"; b stores 1 for any non-zero); f fields take float and
 * integer types; complex fields take complex, float and integer types. */
struct spc_array {
    const void *data;
    enum spc_ctype type;
    const struct spc_field_src *fields;
    size_t n_fields;
    size_t elem_size;
    size_t n_dims;
    const size_t *shape;
    const ptrdiff_t *strides;
};

/* Flags for the value setters. */
#define SPC_SET_COPY 1u     /* always pack into a new owned buffer, even when the memory could be referenced */
#define SPC_SET_IN_PLACE 2u /* rewrite the item's current owned buffer (same length required), so heaps
                               already holding it send the new value: the caller makes sure none of
                               them is being sent meanwhile */

/* Sets the item's value from src. Without flags the memory is referenced when it has the
 * wire layout (contiguous in the item's order, every field the same C size and host byte
 * order as on the wire, no bit packing): it is then borrowed until every heap holding the
 * value has completed, and what it holds when a heap is packetized is what is sent.
 * Otherwise the numbers are packed into a new buffer owned by the item (and the heaps).
 * A set that fails leaves the value and version unchanged; a success bumps the version.
 * Errors: -EINVAL (shape mismatch "value has shape (2,), expected (3,)", wrong number of
 * fields, a type a field cannot take, an invalid ctype, a dtype field of a kind that only
 * spc_item_set_bytes can fill, IN_PLACE without an owned value of the same length),
 * -ERANGE (a number out of range for its field), -EOVERFLOW (value too large), -ENOMEM. */
int spc_item_set(struct spc_item *item, const struct spc_array *src, unsigned flags);

/* Scalar shortcuts for 0-dimensional single-field items; the value is packed into an
 * owned buffer. Errors as spc_item_set. */
int spc_item_set_u64(struct spc_item *item, uint64_t value);
int spc_item_set_i64(struct spc_item *item, int64_t value);
int spc_item_set_f64(struct spc_item *item, double value);

/* Sets the value from bytes already in wire layout (referenced unless SPC_SET_COPY, as in
 * spc_item_set). len must be the fixed size, or for a variable shape a multiple of the
 * bytes one step of the variable dimension takes (which must be whole bytes).
 * Errors: -EINVAL (wrong length, data NULL with len > 0), -ENOMEM. */
int spc_item_set_bytes(struct spc_item *item, const void *data, size_t len, unsigned flags);
/* Sets a string value (without its NUL) for an item of 8-bit elements (format c8, u8 or
 * i8, dtype |S1, |u1 or |i1); referenced unless SPC_SET_COPY. Errors as spc_item_set_bytes,
 * and -EINVAL when the element is not 8 bits. */
int spc_item_set_string(struct spc_item *item, const char *s, unsigned flags);

/* Adds the item's current value to a heap as item spc_item_id(item), immediate when
 * spc_item_allow_immediate and it fits the heap's flavour. An owned value gains a
 * reference that the heap drops when it is destroyed or cleared; a referenced value is
 * borrowed by the heap as described at spc_item_set.
 * Errors: -ENODATA (no value), those of spc_heap_add_item, -ENOMEM. On an error after
 * the reference was taken the heap keeps the reference (freed with the heap). */
int spc_heap_add_item_value(struct spc_heap *heap, struct spc_item *item);
/* Adds the item's descriptor to a heap (spc_heap_add_descriptor; checked against the
 * heap's flavour). Errors: those of spc_heap_add_descriptor. */
int spc_heap_add_item_descriptor(struct spc_heap *heap, struct spc_item *item);

/* ------------------------------------------------------------ item groups */

struct spc_item_group;

/* Creates an empty item group. The caller destroys it. Errors: -ENOMEM. */
int spc_item_group_create(struct spc_item_group **out);
/* Frees the group and every item it made (replaced ones included). Heaps keep their
 * references to owned values. NULL is a no-op. */
void spc_item_group_destroy(struct spc_item_group *group);

/* Adds an item made from *d (copied) and returns it in *out (may be NULL), owned by the
 * group. d->id SPC_ITEM_AUTO_ID takes the smallest unused ID >= 0x1000.
 * - If an item with the same ID has the same name, description, shape, dtype, order and
 *   format, nothing changes and *out is that item.
 * - Otherwise an item with the same ID and one with the same name are replaced: they
 *   leave the group (they stay valid, detached, until the group is destroyed), and the
 *   new item goes to the end of the order, counting as a new descriptor for generators.
 * Errors: those of spc_item_create, -ENOMEM. */
int spc_item_group_add(struct spc_item_group *group, const struct spc_descriptor *d,
                       struct spc_item **out);
/* Copies the detail of the group's latest failed spc_item_group_add into err; returns
 * its length. */
size_t spc_item_group_last_error(const struct spc_item_group *group, char *err, size_t errlen);
/* Look-ups; NULL when absent. The item is owned by the group. */
struct spc_item *spc_item_group_find_id(const struct spc_item_group *group, uint64_t id);
struct spc_item *spc_item_group_find_name(const struct spc_item_group *group, const char *name);
/* Items in the group's order (insertion order; a replacement goes to the end). */
size_t spc_item_group_size(const struct spc_item_group *group);
struct spc_item *spc_item_group_at(const struct spc_item_group *group, size_t index);

/* --------------------------------------------------------- heap generator */

/* What to put into a heap: what is stale, everything, or nothing. */
enum spc_select { SPC_SELECT_STALE, SPC_SELECT_ALL, SPC_SELECT_NONE };

struct spc_heap_generator;

/* Creates a generator over a group, which it borrows (the group must outlive it). Heaps
 * from get_heap/get_start/get_end are in *flavour (NULL = default).
 * descriptor_frequency: 0 = a descriptor is stale only until sent (and again after its
 * item is replaced); N > 0 = also once N add_to_heap calls have passed since it was last
 * sent. Errors: -SPC_EFLAVOUR, -EINVAL (group NULL), -ENOMEM. */
int spc_heap_generator_create(struct spc_heap_generator **out, struct spc_item_group *group,
                              const struct spc_flavour *flavour, unsigned descriptor_frequency);
void spc_heap_generator_destroy(struct spc_heap_generator *gen);
/* Copies the detail of the generator's latest failed add_to_heap / get_* call into err;
 * returns its length. */
size_t spc_heap_generator_last_error(const struct spc_heap_generator *gen, char *err,
                                     size_t errlen);

/* Adds to heap, for each item of the group in its order, the descriptor and then the value
 * as selected. A descriptor is stale when it was never sent by this generator, its item
 * was replaced, or descriptor_frequency calls have passed since it was sent; a value is
 * stale when the item's version changed since it was sent (items without a value send
 * none). Each call counts one for descriptor_frequency. The heap is borrowed for the call;
 * it keeps references as spc_heap_add_item_value says.
 * Errors: -EINVAL (bad selector), those of spc_heap_add_item_descriptor/_value (an item's
 * ID out of range for the heap's flavour, ...). On an error the generator's state is
 * unchanged but the heap may hold part of the items: clear or destroy it. */
int spc_heap_generator_add_to_heap(struct spc_heap_generator *gen, struct spc_heap *heap,
                                   enum spc_select descriptors, enum spc_select data);
/* A new heap in the generator's flavour filled by add_to_heap; the caller destroys it. */
int spc_heap_generator_get_heap(struct spc_heap_generator *gen, struct spc_heap **out,
                                enum spc_select descriptors, enum spc_select data);
/* New heaps holding only a start (stream control 0) or end (2) item; the caller destroys
 * them. They do not count for descriptor_frequency. */
int spc_heap_generator_get_start(struct spc_heap_generator *gen, struct spc_heap **out);
int spc_heap_generator_get_end(struct spc_heap_generator *gen, struct spc_heap **out);

#ifdef __cplusplus
}
#endif

#endif
