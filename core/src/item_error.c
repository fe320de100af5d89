/* Error detail of the item calls (item_error.h). */
#include <stdarg.h>
#include <stdio.h>

#include "item_error.h"

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
