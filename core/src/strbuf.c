/* The core's string builder (strbuf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Growing kind: makes room for n more bytes and the NUL. False when out of memory. */
static bool reserve(struct spci_str *s, size_t n)
{
    if (s->oom)
        return false;
    if (s->len + n + 1 <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 128;
    while (cap < s->len + n + 1)
        cap *= 2;
    char *p = realloc(s->buf, cap);
    if (!p) {
        s->oom = true;
        return false;
    }
    s->buf = p;
    s->cap = cap;
    return true;
}

void spci_str_add(struct spci_str *s, const char *p, size_t n)
{
    if (s->grow && !reserve(s, n))
        return;
    for (size_t i = 0; i < n; i++, s->len++)
        if (s->len + 1 < s->cap)
            s->buf[s->len] = p[i];
    if (s->cap > 0)
        s->buf[s->len < s->cap ? s->len : s->cap - 1] = '\0';
}

void spci_str_puts(struct spci_str *s, const char *p)
{
    spci_str_add(s, p, strlen(p));
}

void spci_str_putc(struct spci_str *s, char c)
{
    spci_str_add(s, &c, 1);
}

void spci_str_vprintf(struct spci_str *s, const char *fmt, va_list ap)
{
    char tmp[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        spci_str_add(s, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        s->oom = true;
        return;
    }
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    spci_str_add(s, big, (size_t)n);
    free(big);
}

void spci_str_printf(struct spci_str *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spci_str_vprintf(s, fmt, ap);
    va_end(ap);
}

const char *spci_str_text(const struct spci_str *s)
{
    return s->oom ? "out of memory" : s->buf && s->cap ? s->buf : "";
}

void spci_str_free(struct spci_str *s)
{
    if (s->grow)
        free(s->buf);
    *s = SPCI_STR_GROWING;
}
