/* Core-internal: the one copy-out of error detail behind every public (err, errlen) and
 * spc_<object>_last_error (see "Error detail" in speadcast.h). */
#ifndef SPCI_ERROR_INTERNAL_H
#define SPCI_ERROR_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "log_internal.h" /* SPCI_PRINTF */

/* Copies detail (NULL = "") into err as the convention says: NUL-terminated, truncated
 * to errlen, nothing written when err is NULL or errlen 0. Returns strlen(detail). */
size_t spci_copy_error(const char *detail, char *err, size_t errlen);
/* The same for a printf-style message. */
void spci_errorf(char *err, size_t errlen, const char *fmt, ...) SPCI_PRINTF(3, 4);
void spci_verrorf(char *err, size_t errlen, const char *fmt, va_list ap);

#endif
