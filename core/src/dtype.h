/* Core-internal: element layouts from a dtype or a format list (dtype.c). */
#ifndef SPCI_DTYPE_H
#define SPCI_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "item_layout.h"

/* Parses a numpy descr (plain "<u2" or structured "[('a', '<u2'), ...]") into malloc'd
 * fields, the element size in bits and the descr's normal form (malloc'd *canon_out).
 * Errors (with spci_item_fail detail): -SPC_EDESCRIPTOR, -ENOMEM. */
int spci_dtype_parse(const char *descr, struct spci_field **fields, size_t *n_fields, uint64_t *elem_bits,
                     char **canon_out);
/* Checks a format list as spead2 does and turns it into malloc'd fields (n of them).
 * Errors: -SPC_EDESCRIPTOR, -ENOMEM. */
int spci_format_parse(const struct spc_format_field *fmt, size_t n, struct spci_field **fields,
                      uint64_t *elem_bits);

#endif
