/* Core-internal logging: everything goes to the handler set with spc_set_log_handler. */
#ifndef SPC_LOG_INTERNAL_H
#define SPC_LOG_INTERNAL_H

#include <stdarg.h>

#include "speadcast/log.h"

#if defined(__GNUC__)
#define SPCI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPCI_PRINTF(f, a)
#endif

/* True when a message at level would be delivered (cheap; use before costly formatting). */
int spci_log_enabled(int level);
/* Formats and delivers one message (a trailing newline is dropped). Thread-safe. */
void spci_log(int level, const char *fmt, ...) SPCI_PRINTF(2, 3);
void spci_vlog(int level, const char *fmt, va_list ap);

#endif
