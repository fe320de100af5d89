/* Core-internal: the one scanner of Python literals in numpy dtype text (pylit.c), used
 * where dtypes are parsed from the application (dtype.c) and from the wire (descparse.c). */
#ifndef SPCI_PYLIT_H
#define SPCI_PYLIT_H

#include <stdbool.h>
#include <stddef.h>

/* Python's whitespace between tokens: space, tab, newline, carriage return. */
static inline bool spci_py_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Scans the string literal ('...' or "...") that starts s[0..n): a backslash escapes the
 * next character, which is kept in the body as written (no unescaping). Returns the
 * literal's length, quotes included, with its body at s[*body .. *body + *body_len); 0
 * when s does not start with a complete literal. */
size_t spci_py_string(const char *s, size_t n, size_t *body, size_t *body_len);

#endif
