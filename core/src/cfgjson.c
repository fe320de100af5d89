/* JSON helpers of the configuration layer: error text that starts with the JSON path,
 * "did you mean" hints, numbers and documents printed back. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgjson.h"
#include "error_internal.h"
#include "editdist.h"
#include "speadcast/error.h"

int spci_cfg_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spci_verrorf(err, errlen, fmt, ap);
    va_end(ap);
    return -SPC_ECONFIG;
}

const char *spci_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Shortest text that reads back as the same double. */
void spci_fmt_double(double d, char *buf, size_t len)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* "unknown key" message with a hint: the closest valid name, or the list of valid names. */
int spci_unknown_key(char *err, size_t errlen, const char *path, const char *key,
                       const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = spci_edit_distance(key, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t klen = strlen(key);
    if (best && best_d <= (klen > 9 ? 3 : 2) && best_d < klen)
        return spci_cfg_fail(err, errlen, "%s%s%s: unknown key (did you mean \"%s\"?)", path,
                    *path ? "." : "", key, best);
    char list[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof list; i++) {
        int w = snprintf(list + off, sizeof list - off, "%s\"%s\"", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return spci_cfg_fail(err, errlen, "%s%s%s: unknown key (valid keys: %s)", path, *path ? "." : "", key,
                n ? list : "none");
}

/* After json_unpack_ex refused obj (jerr) under a strict format over names: reports the
 * first key outside names with a "did you mean" hint, or jansson's own text otherwise. */
int spci_strict_unpack_error(char *err, size_t errlen, const char *path, const json_t *obj,
                               const json_error_t *jerr, const char *const *names, size_t n)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        size_t k = 0;
        while (k < n && strcmp(key, names[k]))
            k++;
        if (k == n)
            return spci_unknown_key(err, errlen, path, key, names, n);
    }
    return spci_cfg_fail(err, errlen, "%s: %s", *path ? path : "(document)", jerr->text);
}

/* out = path.key; a path too long for the buffer is cut (messages only). */
void spci_path_join(char *out, const char *path, const char *key)
{
    if (snprintf(out, SPCI_PATH_LEN, "%s%s%s", path, *path ? "." : "", key) >= SPCI_PATH_LEN)
        strcpy(out + SPCI_PATH_LEN - 4, "...");
}

/* Integral value of a JSON number: integers, or reals with no fraction (JSON Schema's
 * notion of an integer). Returns 0 on success. */
int spci_json_integral(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            *out = (int64_t)d;
            return 0;
        }
    }
    return -1;
}

int spci_json_dump(json_t *j, char **out)
{
    if (!j)
        return -ENOMEM;
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    char *r = malloc(n + 2);
    if (!r) {
        free(s);
        return -ENOMEM;
    }
    memcpy(r, s, n);
    r[n] = '\n';
    r[n + 1] = '\0';
    free(s);
    *out = r;
    return 0;
}
