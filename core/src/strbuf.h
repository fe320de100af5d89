/* Core-internal: the one string builder of the core (strbuf.c). Two kinds:
 * - fixed: writes into a caller's buffer of cap bytes, truncating, always NUL-terminated
 *   (when cap > 0); len counts every byte asked for, so a caller learns the size it needs
 *   (as snprintf);
 * - growing: a malloc'd buffer that doubles as needed; after a failed allocation the
 *   builder ignores further text and spci_str_text says "out of memory".
 */
#ifndef SPCI_STRBUF_H
#define SPCI_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "log_internal.h"

struct spci_str {
    char *buf;
    size_t cap, len;
    bool grow; /* growing kind: buf is owned (spci_str_free) */
    bool oom;
};

#define SPCI_STR_FIXED(b, n) ((struct spci_str){.buf = (b), .cap = (n)})
#define SPCI_STR_GROWING ((struct spci_str){.grow = true})

void spci_str_add(struct spci_str *s, const char *p, size_t n);
void spci_str_puts(struct spci_str *s, const char *p);
void spci_str_putc(struct spci_str *s, char c);
void spci_str_printf(struct spci_str *s, const char *fmt, ...) SPCI_PRINTF(2, 3);
void spci_str_vprintf(struct spci_str *s, const char *fmt, va_list ap);
/* The text: "" when empty, "out of memory" after a failed allocation. */
const char *spci_str_text(const struct spci_str *s);
/* Frees a growing builder's buffer (the builder is empty again). */
void spci_str_free(struct spci_str *s);

#endif
