/* Python literal scanning (pylit.h). */
#include "pylit.h"

size_t spci_py_string(const char *s, size_t n, size_t *body, size_t *body_len)
{
    if (n == 0 || (s[0] != '\'' && s[0] != '"'))
        return 0;
    char q = s[0];
    size_t i = 1;
    while (i < n && s[i] != q)
        i += s[i] == '\\' ? 2 : 1;
    if (i >= n)
        return 0;
    *body = 1;
    *body_len = i - 1;
    return i + 1;
}
