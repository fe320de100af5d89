/* Core-internal: how item, dtype, packing, group and generator code composes the error
 * detail that the failing object keeps (see "Error detail" in speadcast.h). */
#ifndef SPCI_ITEM_ERROR_H
#define SPCI_ITEM_ERROR_H

#include <stddef.h>

/* Longest error detail an item, group or generator keeps (longer text is truncated). */
#define SPCI_ITEM_ERROR_MAX 256

/* Composes the detail of a failure found inside an item call and returns code. */
int spci_item_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* When rc < 0: moves the detail composed by spci_item_fail on this thread into dst (the
 * failing object's last error, or the caller's err buffer). Returns rc. */
int spci_item_keep_error(int rc, char *dst, size_t cap);

#endif
