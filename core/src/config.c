/* The JSON stream config: parsing, option tables (validation, typed structs, JSON Schema).
 * The only file that includes jansson.h.
 *
 * Invariants:
 * - A struct spc_config always has a loaded transport (cfg->plugin) and a stream section
 *   that passed spc_stream_config_check. cfg->options holds only keys the user gave, each
 *   already checked against the option table; defaults are applied when the typed struct
 *   is built, so the table stays the single source of defaults.
 * - Every error message starts with the JSON path of the offending value.
 * - Option tables are walked with the plugin's stride (options[0].struct_size), and only
 *   fields within struct_size are read.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log_internal.h"
#include "transport_internal.h"

struct spc_config {
    char *transport;
    const struct spci_plugin *plugin;
    struct spc_stream_config stream;
    char **plugin_path; /* NULL-terminated, may be NULL */
    json_t *options;    /* object */
};

/* ------------------------------------------------------------ errors */

SPCI_PRINTF(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -SPC_ECONFIG;
}

static const char *type_name(const json_t *v)
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
static void fmt_double(double d, char *buf, size_t len)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

/* "unknown key" message with a hint: the closest valid name, or the list of valid names. */
static int unknown_key(char *err, size_t errlen, const char *path, const char *key,
                       const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t klen = strlen(key);
    if (best && best_d <= (klen > 9 ? 3 : 2) && best_d < klen)
        return fail(err, errlen, "%s%s%s: unknown key (did you mean \"%s\"?)", path,
                    *path ? "." : "", key, best);
    char list[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof list; i++) {
        int w = snprintf(list + off, sizeof list - off, "%s\"%s\"", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return fail(err, errlen, "%s%s%s: unknown key (valid keys: %s)", path, *path ? "." : "", key,
                n ? list : "none");
}

/* After json_unpack_ex refused obj (jerr) under a strict format over names: reports the
 * first key outside names with a "did you mean" hint, or jansson's own text otherwise. */
static int strict_unpack_error(char *err, size_t errlen, const char *path, const json_t *obj,
                               const json_error_t *jerr, const char *const *names, size_t n)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        size_t k = 0;
        while (k < n && strcmp(key, names[k]))
            k++;
        if (k == n)
            return unknown_key(err, errlen, path, key, names, n);
    }
    return fail(err, errlen, "%s: %s", *path ? path : "(document)", jerr->text);
}

/* ------------------------------------------------------------ option tables */

struct table {
    const struct spc_option *opts;
    size_t n;
    size_t stride;
};

static const struct spc_option *opt_at(const struct table *t, size_t i)
{
    return (const struct spc_option *)(const void *)((const char *)t->opts + i * t->stride);
}

/* Fields read from an entry only when its struct_size covers them. */
#define OPT_HAS(o, f) SPC_HAS_FIELD(o, struct spc_option, f)

static struct table sub_table(const struct table *t, const struct spc_option *o)
{
    struct table s = {NULL, 0, t->stride};
    if (OPT_HAS(o, n_fields)) {
        s.opts = o->fields;
        s.n = o->n_fields;
    }
    return s;
}

static size_t opt_count_bound(const struct spc_option *o, int max)
{
    if (max)
        return OPT_HAS(o, max_count) ? o->max_count : 0;
    return OPT_HAS(o, min_count) ? o->min_count : 0;
}

static size_t value_size(uint32_t type)
{
    switch (type) {
    case SPC_OPT_BOOL: return sizeof(bool);
    case SPC_OPT_INT: return sizeof(int64_t);
    case SPC_OPT_UINT: return sizeof(uint64_t);
    case SPC_OPT_DOUBLE: return sizeof(double);
    case SPC_OPT_STRING: return sizeof(const char *);
    case SPC_OPT_ENUM: return sizeof(int);
    case SPC_OPT_ENDPOINTS: return sizeof(struct spc_endpoint_list);
    case SPC_OPT_STRINGS: return sizeof(struct spc_string_list);
    case SPC_OPT_OBJECT: return 0;
    default: return (size_t)-1;
    }
}

static size_t value_align(uint32_t type)
{
    switch (type) {
    case SPC_OPT_BOOL: return _Alignof(bool);
    case SPC_OPT_INT: return _Alignof(int64_t);
    case SPC_OPT_UINT: return _Alignof(uint64_t);
    case SPC_OPT_DOUBLE: return _Alignof(double);
    case SPC_OPT_ENUM: return _Alignof(int);
    default: return _Alignof(void *);
    }
}

static uint64_t magnitude(int64_t x)
{
    return x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
}

static size_t n_choices(const struct spc_option *o)
{
    size_t n = 0;
    if (OPT_HAS(o, choices) && o->choices)
        while (o->choices[n])
            n++;
    return n;
}

static int choice_index(const struct spc_option *o, const char *s)
{
    size_t n = n_choices(o);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(o->choices[i], s))
            return (int)i;
    return -1;
}

static int valid_key(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int is_dotted_quad(const char *s);

static int check_table(const struct table *t, size_t options_size, const char *prefix,
                       int depth, char *err, size_t errlen)
{
    if (t->n && !t->opts)
        return fail(err, errlen, "%soptions is NULL with %zu entries", prefix, t->n);
    if (depth > 4)
        return fail(err, errlen, "%s: objects nested too deeply", prefix);
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = opt_at(t, i);
        if (o->struct_size != t->stride)
            return fail(err, errlen, "%sentry %zu: struct_size %u differs from the first entry's %zu",
                        prefix, i, (unsigned)o->struct_size, t->stride);
        if (!valid_key(o->name))
            return fail(err, errlen, "%sentry %zu: name missing or not [a-z0-9_]+", prefix, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(opt_at(t, j)->name, o->name))
                return fail(err, errlen, "%s%s: declared twice", prefix, o->name);
        size_t vs = value_size(o->type);
        if (vs == (size_t)-1)
            return fail(err, errlen, "%s%s: unknown type %u", prefix, o->name, (unsigned)o->type);
        if (vs && (o->offset > options_size || options_size - o->offset < vs ||
                   o->offset % value_align(o->type)))
            return fail(err, errlen, "%s%s: offset %zu does not fit options_size %zu", prefix,
                        o->name, o->offset, options_size);
        uint32_t f = o->flags;
        if ((f & SPC_OPT_REQUIRED) && (f & SPC_OPT_DEFAULT))
            return fail(err, errlen, "%s%s: both required and defaulted", prefix, o->name);
        if ((f & SPC_OPT_IPV4) && o->type != SPC_OPT_ENDPOINTS && o->type != SPC_OPT_STRING)
            return fail(err, errlen, "%s%s: SPC_OPT_IPV4 on a type other than endpoints or string",
                        prefix, o->name);
        if ((f & SPC_OPT_IPV4) && o->type == SPC_OPT_STRING && (f & SPC_OPT_DEFAULT) &&
            !is_dotted_quad(o->def.s ? o->def.s : ""))
            return fail(err, errlen, "%s%s: default is not a dotted-quad IPv4 address", prefix, o->name);
        if ((f & SPC_OPT_ONE_OF) && (f & SPC_OPT_REQUIRED))
            return fail(err, errlen, "%s%s: both required and one-of", prefix, o->name);
        size_t n_one_of = 0;
        for (size_t j = 0; j < t->n; j++)
            n_one_of += (opt_at(t, j)->flags & SPC_OPT_ONE_OF) != 0;
        if ((f & SPC_OPT_ONE_OF) && n_one_of < 2)
            return fail(err, errlen, "%s%s: the only one-of option of its table", prefix, o->name);
        if (OPT_HAS(o, item_max_length) && (o->item_min_length || o->item_max_length) &&
            (o->type != SPC_OPT_STRINGS ||
             (o->item_max_length && o->item_min_length > o->item_max_length)))
            return fail(err, errlen, "%s%s: item length bounds on a non-string-list or min above max",
                        prefix, o->name);
        int ranged = o->type == SPC_OPT_INT || o->type == SPC_OPT_UINT || o->type == SPC_OPT_DOUBLE;
        if ((f & (SPC_OPT_MIN | SPC_OPT_MAX)) && !ranged)
            return fail(err, errlen, "%s%s: bounds on a type without them", prefix, o->name);
        if ((f & SPC_OPT_DEFAULT) && (o->type == SPC_OPT_ENDPOINTS || o->type == SPC_OPT_STRINGS ||
                                      o->type == SPC_OPT_OBJECT))
            return fail(err, errlen, "%s%s: lists and objects take no default", prefix, o->name);
        if (o->type == SPC_OPT_UINT && (((f & SPC_OPT_MAX) && o->max.u > INT64_MAX) ||
                                        ((f & SPC_OPT_DEFAULT) && o->def.u > INT64_MAX)))
            return fail(err, errlen, "%s%s: values above 2^63-1 cannot be written in JSON", prefix,
                        o->name);
        if (o->type == SPC_OPT_DOUBLE &&
            (((f & SPC_OPT_MIN) && !isfinite(o->min.d)) || ((f & SPC_OPT_MAX) && !isfinite(o->max.d)) ||
             ((f & SPC_OPT_DEFAULT) && !isfinite(o->def.d))))
            return fail(err, errlen, "%s%s: non-finite bound or default", prefix, o->name);
        if ((f & SPC_OPT_MIN) && (f & SPC_OPT_MAX) &&
            ((o->type == SPC_OPT_INT && o->min.i > o->max.i) ||
             (o->type == SPC_OPT_UINT && o->min.u > o->max.u) ||
             (o->type == SPC_OPT_DOUBLE && o->min.d > o->max.d)))
            return fail(err, errlen, "%s%s: min above max", prefix, o->name);
        if (f & SPC_OPT_DEFAULT) {
            int bad = 0;
            uint64_t m = o->multiple_of;
            switch (o->type) {
            case SPC_OPT_INT:
                bad = ((f & SPC_OPT_MIN) && o->def.i < o->min.i) || ((f & SPC_OPT_MAX) && o->def.i > o->max.i) ||
                      (m && magnitude(o->def.i) % m);
                break;
            case SPC_OPT_UINT:
                bad = ((f & SPC_OPT_MIN) && o->def.u < o->min.u) || ((f & SPC_OPT_MAX) && o->def.u > o->max.u) ||
                      (m && o->def.u % m);
                break;
            case SPC_OPT_DOUBLE:
                bad = ((f & SPC_OPT_MIN) && o->def.d < o->min.d) || ((f & SPC_OPT_MAX) && o->def.d > o->max.d);
                break;
            case SPC_OPT_STRING:
                bad = o->def.s == NULL;
                break;
            case SPC_OPT_ENUM:
                bad = o->def.s == NULL || choice_index(o, o->def.s) < 0;
                break;
            default:
                break;
            }
            if (bad)
                return fail(err, errlen, "%s%s: default outside its own bounds", prefix, o->name);
        }
        if (o->type == SPC_OPT_ENUM && n_choices(o) == 0)
            return fail(err, errlen, "%s%s: enum without choices", prefix, o->name);
        if (o->type == SPC_OPT_OBJECT) {
            struct table s = sub_table(t, o);
            if (s.n == 0)
                return fail(err, errlen, "%s%s: object without fields", prefix, o->name);
            char sub[128];
            snprintf(sub, sizeof sub, "%s%s.", prefix, o->name);
            int rc = check_table(&s, options_size, sub, depth + 1, err, errlen);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int spci_option_table_check(const struct spc_transport_descriptor *d, char *err, size_t errlen)
{
    if (d->n_options == 0)
        return 0;
    if (!d->options)
        return fail(err, errlen, "options is NULL with n_options %zu", d->n_options);
    size_t stride = d->options[0].struct_size;
    if (stride < offsetof(struct spc_option, max) + sizeof(union spc_option_value))
        return fail(err, errlen, "option struct_size %zu is below the ABI 1 minimum", stride);
    if (d->options_size == 0)
        return fail(err, errlen, "options declared but options_size is 0");
    struct table t = {d->options, d->n_options, stride};
    return check_table(&t, d->options_size, "", 0, err, errlen);
}

/* ------------------------------------------------------------ arena for typed values */

struct spci_options {
    void *opts;
    struct arena_block {
        struct arena_block *next;
        _Alignas(max_align_t) unsigned char data[];
    } *blocks;
};

static void *arena_alloc(struct spci_options *a, size_t size)
{
    struct arena_block *b = malloc(sizeof *b + (size ? size : 1));
    if (!b)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    return b->data;
}

static char *arena_strdup(struct spci_options *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void spci_options_free(struct spci_options *o)
{
    if (!o)
        return;
    while (o->blocks) {
        struct arena_block *b = o->blocks;
        o->blocks = b->next;
        free(b);
    }
    free(o->opts);
    free(o);
}

/* ------------------------------------------------------------ validating values */

/* What apply_* writes into (dst NULL = check only). */
struct sink {
    unsigned char *dst;
    struct spci_options *arena;
    int partial; /* setter checks: skip list-length checks */
};

#define PATH_LEN 256

/* out = path.key; a path too long for the buffer is cut (messages only). */
static void join(char *out, const char *path, const char *key)
{
    if (snprintf(out, PATH_LEN, "%s%s%s", path, *path ? "." : "", key) >= PATH_LEN)
        strcpy(out + PATH_LEN - 4, "...");
}

/* Integral value of a JSON number: integers, or reals with no fraction (JSON Schema's
 * notion of an integer). Returns 0 on success. */
static int json_integral(const json_t *v, int64_t *out)
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

static int check_count(const struct spc_option *o, size_t n, const char *path, const char *what,
                       char *err, size_t errlen)
{
    size_t lo = opt_count_bound(o, 0), hi = opt_count_bound(o, 1);
    if (n < lo)
        return fail(err, errlen, "%s: %zu %s, at least %zu required", path, n, what, lo);
    if (hi && n > hi)
        return fail(err, errlen, "%s: %zu %s, at most %zu allowed", path, n, what, hi);
    return 0;
}

static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

#define HOST_MAX 255 /* bytes of a host name or address (also in ENDPOINT_PATTERN) */

/* A host as the string form allows it (the schema's HOST_PATTERN): an IPv6 address
 * (hex digits, ':' and '.'; bracketed in the string form) or a name of [A-Za-z0-9._-].
 * what is the value as written, for the message. */
static int check_host(const char *h, size_t len, int v6, const char *path, const char *what,
                      char *err, size_t errlen)
{
    if (len == 0)
        return fail(err, errlen, "%s: \"%s\" has an empty host", path, what);
    if (len > HOST_MAX)
        return fail(err, errlen, "%s: host name too long (%zu bytes, at most %d)", path, len, HOST_MAX);
    for (const char *p = h; p < h + len; p++) {
        if (v6 ? !!strchr("0123456789abcdefABCDEF:.", *p)
               : (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     *p == '.' || *p == '-' || *p == '_')
            continue;
        if (v6)
            return fail(err, errlen, "%s: \"%s\": '%c' cannot appear in an IPv6 address", path, what, *p);
        return fail(err, errlen,
                    *p == ':' ? "%s: \"%s\": write an IPv6 address as \"[address]:port\""
                              : "%s: \"%s\": '%c' cannot appear in a host name",
                    path, what, *p);
    }
    return 0;
}

/* A dotted-quad IPv4 address, each part 0..255 without leading zeros (IPV4_PATTERN). */
static int is_dotted_quad(const char *s)
{
    for (int part = 0; part < 4; part++) {
        if (part && *s++ != '.')
            return 0;
        size_t nd = strspn(s, "0123456789");
        if (nd == 0 || nd > 3 || (nd > 1 && *s == '0') || strtoul(s, NULL, 10) > 255)
            return 0;
        s += nd;
    }
    return *s == '\0';
}

/* Parses "host:port" / "[v6]:port" with the same rules as the schema pattern. */
static int parse_endpoint_string(const char *s, const char *path, char *host, size_t hostlen,
                                 unsigned *port, char *err, size_t errlen)
{
    const char *h = s, *hend, *colon;
    if (*s == '[') {
        h = s + 1;
        hend = strchr(h, ']');
        if (!hend || hend == h)
            return fail(err, errlen, "%s: \"%s\" has no closing ']' after an IPv6 address", path, s);
        if (check_host(h, (size_t)(hend - h), 1, path, s, err, errlen) < 0)
            return -SPC_ECONFIG;
        colon = hend + 1;
        if (*colon != ':')
            return fail(err, errlen, "%s: \"%s\" needs \":port\" after the address", path, s);
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return fail(err, errlen, "%s: \"%s\" is not \"host:port\"", path, s);
        hend = colon;
        if (check_host(h, (size_t)(hend - h), 0, path, s, err, errlen) < 0)
            return -SPC_ECONFIG;
    }
    const char *ps = colon + 1;
    size_t nd = strspn(ps, "0123456789");
    if (nd == 0 || ps[nd] != '\0' || nd > 5 || ps[0] == '0') {
        if (nd > 0 && ps[nd] == '\0' && ps[0] != '0' && nd > 5)
            return fail(err, errlen, "%s: port %s is above 65535", path, ps);
        return fail(err, errlen, "%s: \"%s\": port must be a decimal number from 1 to 65535", path, s);
    }
    unsigned long p = strtoul(ps, NULL, 10);
    if (p > 65535)
        return fail(err, errlen, "%s: port %lu is above 65535", path, p);
    if ((size_t)(hend - h) >= hostlen)
        return fail(err, errlen, "%s: host name too long", path);
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    *port = (unsigned)p;
    return 0;
}

static int parse_endpoint(const json_t *v, const char *path, const char **host_out,
                          unsigned *port_out, char *buf, size_t buflen, char *err, size_t errlen)
{
    if (json_is_string(v)) {
        int rc = parse_endpoint_string(json_string_value(v), path, buf, buflen, port_out, err, errlen);
        *host_out = buf;
        return rc;
    }
    if (!json_is_object(v))
        return fail(err, errlen, "%s: expected \"host:port\" or {\"host\": ..., \"port\": ...}, got %s",
                    path, type_name(v));
    static const char *const keys[] = {"host", "port"};
    char p[PATH_LEN];
    json_t *jh = NULL, *jp = NULL;
    json_error_t jerr;
    if (json_unpack_ex((json_t *)v, &jerr, JSON_STRICT, "{s?o, s?o}", "host", &jh, "port", &jp) < 0)
        return strict_unpack_error(err, errlen, path, v, &jerr, keys, 2);
    if (!jh) {
        join(p, path, "host");
        return fail(err, errlen, "%s: missing (required)", p);
    }
    if (!jp) {
        join(p, path, "port");
        return fail(err, errlen, "%s: missing (required)", p);
    }
    join(p, path, "host");
    if (!json_is_string(jh))
        return fail(err, errlen, "%s: expected a string, got %s", p, type_name(jh));
    if (!*json_string_value(jh))
        return fail(err, errlen, "%s: empty host", p);
    /* The object form holds an IPv6 address without brackets: a ':' tells it apart. */
    const char *hs = json_string_value(jh);
    if (strlen(hs) != json_string_length(jh))
        return fail(err, errlen, "%s: string contains a NUL character", p);
    if (check_host(hs, strlen(hs), strchr(hs, ':') != NULL, p, hs, err, errlen) < 0)
        return -SPC_ECONFIG;
    join(p, path, "port");
    int64_t port;
    if (json_integral(jp, &port) < 0)
        return fail(err, errlen, "%s: expected an integer, got %s", p, type_name(jp));
    if (port < 1)
        return fail(err, errlen, "%s: %lld is below 1", p, (long long)port);
    if (port > 65535)
        return fail(err, errlen, "%s: %lld is above 65535", p, (long long)port);
    *host_out = json_string_value(jh);
    *port_out = (unsigned)port;
    return 0;
}

static int apply_table(const struct table *t, const json_t *obj, const char *path,
                       const struct sink *sk, char *err, size_t errlen);

/* Checks one value against its option and stores it. */
static int apply_value(const struct table *t, const struct spc_option *o, const json_t *v,
                       const char *path, const struct sink *sk, char *err, size_t errlen)
{
    void *slot = sk->dst ? sk->dst + o->offset : NULL;
    uint32_t f = o->flags;
    switch (o->type) {
    case SPC_OPT_BOOL:
        if (!json_is_boolean(v))
            return fail(err, errlen, "%s: expected true or false, got %s", path, type_name(v));
        if (slot)
            *(bool *)slot = json_is_true(v);
        return 0;
    case SPC_OPT_INT:
    case SPC_OPT_UINT: {
        int64_t x;
        if (json_integral(v, &x) < 0)
            return fail(err, errlen, "%s: expected an integer, got %s", path, type_name(v));
        if (o->type == SPC_OPT_INT) {
            if ((f & SPC_OPT_MIN) && x < o->min.i)
                return fail(err, errlen, "%s: %lld is below %lld", path, (long long)x, (long long)o->min.i);
            if ((f & SPC_OPT_MAX) && x > o->max.i)
                return fail(err, errlen, "%s: %lld is above %lld", path, (long long)x, (long long)o->max.i);
        } else {
            uint64_t lo = (f & SPC_OPT_MIN) ? o->min.u : 0;
            if (x < 0 || (uint64_t)x < lo)
                return fail(err, errlen, "%s: %lld is below %llu", path, (long long)x, (unsigned long long)lo);
            if ((f & SPC_OPT_MAX) && (uint64_t)x > o->max.u)
                return fail(err, errlen, "%s: %lld is above %llu", path, (long long)x,
                            (unsigned long long)o->max.u);
        }
        uint64_t m = OPT_HAS(o, multiple_of) ? o->multiple_of : 0;
        if (m && magnitude(x) % m)
            return fail(err, errlen, "%s: %lld is not a multiple of %llu", path, (long long)x,
                        (unsigned long long)m);
        if (slot && o->type == SPC_OPT_INT)
            *(int64_t *)slot = x;
        else if (slot)
            *(uint64_t *)slot = (uint64_t)x;
        return 0;
    }
    case SPC_OPT_DOUBLE: {
        double d;
        json_error_t jerr;
        if (json_unpack_ex((json_t *)v, &jerr, JSON_STRICT, "F", &d) < 0)
            return fail(err, errlen, "%s: expected a number, got %s", path, type_name(v));
        char a[40], b[40];
        if ((f & SPC_OPT_MIN) && d < o->min.d) {
            fmt_double(d, a, sizeof a);
            fmt_double(o->min.d, b, sizeof b);
            return fail(err, errlen, "%s: %s is below %s", path, a, b);
        }
        if ((f & SPC_OPT_MAX) && d > o->max.d) {
            fmt_double(d, a, sizeof a);
            fmt_double(o->max.d, b, sizeof b);
            return fail(err, errlen, "%s: %s is above %s", path, a, b);
        }
        if (slot)
            *(double *)slot = d;
        return 0;
    }
    case SPC_OPT_STRING: {
        if (!json_is_string(v))
            return fail(err, errlen, "%s: expected a string, got %s", path, type_name(v));
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return fail(err, errlen, "%s: string contains a NUL character", path);
        int rc = check_count(o, utf8_length(s), path, "characters", err, errlen);
        if (rc < 0)
            return rc;
        if ((f & SPC_OPT_IPV4) && !is_dotted_quad(s))
            return fail(err, errlen, "%s: \"%s\" is not a dotted-quad IPv4 address", path, s);
        if (slot) {
            const char *copy = arena_strdup(sk->arena, s);
            if (!copy)
                return -ENOMEM;
            *(const char **)slot = copy;
        }
        return 0;
    }
    case SPC_OPT_ENUM: {
        if (!json_is_string(v))
            return fail(err, errlen, "%s: expected a string, got %s", path, type_name(v));
        int idx = choice_index(o, json_string_value(v));
        if (idx < 0) {
            char list[256] = "";
            size_t off = 0, n = n_choices(o);
            for (size_t i = 0; i < n && off < sizeof list; i++) {
                int w = snprintf(list + off, sizeof list - off, "%s\"%s\"", i ? ", " : "", o->choices[i]);
                if (w < 0)
                    break;
                off += (size_t)w;
            }
            return fail(err, errlen, "%s: \"%s\" is not one of %s", path, json_string_value(v), list);
        }
        if (slot)
            *(int *)slot = idx;
        return 0;
    }
    case SPC_OPT_ENDPOINTS:
    case SPC_OPT_STRINGS: {
        int ep = o->type == SPC_OPT_ENDPOINTS;
        if (!json_is_array(v))
            return fail(err, errlen, "%s: expected an array, got %s", path, type_name(v));
        size_t n = json_array_size(v);
        if (!sk->partial) {
            int rc = check_count(o, n, path, n == 1 ? "element" : "elements", err, errlen);
            if (rc < 0)
                return rc;
        }
        const void **items = NULL;
        if (slot && n && !(items = arena_alloc(sk->arena, n * sizeof *items)))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            char p[PATH_LEN];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            const json_t *e = json_array_get(v, i);
            if (ep) {
                char hostbuf[256];
                const char *host = NULL;
                unsigned port = 0;
                int rc = parse_endpoint(e, p, &host, &port, hostbuf, sizeof hostbuf, err, errlen);
                if (rc < 0)
                    return rc;
                if ((f & SPC_OPT_IPV4) && !is_dotted_quad(host))
                    return fail(err, errlen, "%s: \"%s\" is not a dotted-quad IPv4 address "
                                "(this transport takes no names and no IPv6)", p, host);
                if (items) {
                    struct spc_endpoint *E = arena_alloc(sk->arena, sizeof *E);
                    if (!E || !(E->host = arena_strdup(sk->arena, host)))
                        return -ENOMEM;
                    E->struct_size = sizeof *E;
                    E->port = port;
                    items[i] = E;
                }
            } else {
                if (!json_is_string(e))
                    return fail(err, errlen, "%s: expected a string, got %s", p, type_name(e));
                size_t len = json_string_length(e);
                size_t lo = OPT_HAS(o, item_min_length) ? o->item_min_length : 0;
                size_t hi = OPT_HAS(o, item_max_length) ? o->item_max_length : 0;
                if (strlen(json_string_value(e)) != len)
                    return fail(err, errlen, "%s: string contains a NUL character", p);
                if (len < lo)
                    return fail(err, errlen, "%s: %zu bytes, at least %zu required", p, len, lo);
                if (hi && len > hi)
                    return fail(err, errlen, "%s: %zu bytes, at most %zu allowed", p, len, hi);
                if (items && !(items[i] = arena_strdup(sk->arena, json_string_value(e))))
                    return -ENOMEM;
            }
        }
        if (slot && ep)
            *(struct spc_endpoint_list *)slot =
                (struct spc_endpoint_list){n, (const struct spc_endpoint *const *)items};
        else if (slot)
            *(struct spc_string_list *)slot = (struct spc_string_list){n, (const char *const *)items};
        return 0;
    }
    case SPC_OPT_OBJECT: {
        struct table s = sub_table(t, o);
        return apply_table(&s, v, path, sk, err, errlen);
    }
    }
    return fail(err, errlen, "%s: unknown option type %u", path, (unsigned)o->type);
}

static int apply_default(const struct table *t, const struct spc_option *o, const struct sink *sk)
{
    if (!sk->dst)
        return 0;
    void *slot = sk->dst + o->offset;
    int has = (o->flags & SPC_OPT_DEFAULT) != 0;
    switch (o->type) {
    case SPC_OPT_BOOL: *(bool *)slot = has && o->def.b; break;
    case SPC_OPT_INT: *(int64_t *)slot = has ? o->def.i : 0; break;
    case SPC_OPT_UINT: *(uint64_t *)slot = has ? o->def.u : 0; break;
    case SPC_OPT_DOUBLE: *(double *)slot = has ? o->def.d : 0.0; break;
    case SPC_OPT_STRING:
        *(const char **)slot = NULL;
        if (has && !(*(const char **)slot = arena_strdup(sk->arena, o->def.s)))
            return -ENOMEM;
        break;
    case SPC_OPT_ENUM: *(int *)slot = has ? choice_index(o, o->def.s) : 0; break;
    case SPC_OPT_ENDPOINTS: *(struct spc_endpoint_list *)slot = (struct spc_endpoint_list){0, NULL}; break;
    case SPC_OPT_STRINGS: *(struct spc_string_list *)slot = (struct spc_string_list){0, NULL}; break;
    case SPC_OPT_OBJECT: {
        struct table s = sub_table(t, o);
        for (size_t i = 0; i < s.n; i++) {
            int rc = apply_default(&s, opt_at(&s, i), sk);
            if (rc < 0)
                return rc;
        }
        break;
    }
    }
    return 0;
}

static const struct spc_option *find_opt(const struct table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(opt_at(t, i)->name, name))
            return opt_at(t, i);
    return NULL;
}

static int unknown_in_table(const struct table *t, const char *path, const char *key, char *err,
                            size_t errlen)
{
    const char *names[64];
    size_t n = t->n < 64 ? t->n : 64;
    for (size_t i = 0; i < n; i++)
        names[i] = opt_at(t, i)->name;
    return unknown_key(err, errlen, path, key, names, n);
}

/* Exactly one of the table's SPC_OPT_ONE_OF options is given. */
static int check_one_of(const struct table *t, const json_t *obj, const char *path, char *err,
                        size_t errlen)
{
    char names[256] = "";
    size_t given = 0, n = 0, off = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = opt_at(t, i);
        if (!(o->flags & SPC_OPT_ONE_OF))
            continue;
        given += obj && json_object_get(obj, o->name);
        int w = snprintf(names + off, sizeof names - off, "%s%s", n++ ? ", " : "", o->name);
        if (w > 0 && (size_t)w < sizeof names - off)
            off += (size_t)w;
    }
    if (n == 0 || given == 1)
        return 0;
    return fail(err, errlen, "%s: give exactly one of %s (%s)", *path ? path : "(document)", names,
                given ? "more than one given" : "none given");
}

/* Checks obj (NULL = absent: defaults) against the table; stores into sk. */
static int apply_table(const struct table *t, const json_t *obj, const char *path,
                       const struct sink *sk, char *err, size_t errlen)
{
    if (obj && !json_is_object(obj))
        return fail(err, errlen, "%s: expected an object, got %s", *path ? path : "(document)",
                    type_name(obj));
    if (obj) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)obj, key, val) {
            if (!find_opt(t, key))
                return unknown_in_table(t, path, key, err, errlen);
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = opt_at(t, i);
        const json_t *v = obj ? json_object_get(obj, o->name) : NULL;
        char p[PATH_LEN];
        join(p, path, o->name);
        int rc;
        if (v)
            rc = apply_value(t, o, v, p, sk, err, errlen);
        else if ((o->flags & SPC_OPT_REQUIRED) && !sk->partial)
            rc = fail(err, errlen, "%s: missing (required)", p);
        else
            rc = apply_default(t, o, sk); /* an absent object: its fields' defaults */
        if (rc < 0)
            return rc;
    }
    return sk->partial ? 0 : check_one_of(t, obj, path, err, errlen);
}

/* ------------------------------------------------------------ the stream section */

/* The stream section as an option table over a mirror struct, so it is validated and
 * printed as schema by the same code as transport options. */
struct stream_mirror {
    uint64_t max_packet_size;
    double rate;
    uint64_t burst_size;
    uint64_t max_heaps;
    double burst_rate_ratio;
    int rate_method;
    int on_full;
    uint64_t heap_address_bits;
    uint64_t bug_compat;
};

#define SM(f) offsetof(struct stream_mirror, f)
static const char *const rate_methods[] = {"sw", "hw", "auto", NULL};
static const char *const on_full_modes[] = {"fail", "block", NULL};

static const struct spc_option flavour_fields[] = {
    {SPC_OPTION_INIT, .name = "heap_address_bits", .type = SPC_OPT_UINT, .offset = SM(heap_address_bits),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 40, .min.u = 8, .max.u = 56,
     .multiple_of = 8, .help = "bits of a heap address (SPEAD-64-<bits>); item IDs get 63 - bits"},
    {SPC_OPTION_INIT, .name = "bug_compat", .type = SPC_OPT_UINT, .offset = SM(bug_compat),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 0, .min.u = 0, .max.u = 7,
     .help = "PySPEAD 0.5.2 compatibility flags: 1 descriptor widths, 2 shape bit 1, 4 swap endian"},
};

static const struct spc_option stream_options[] = {
    {SPC_OPTION_INIT, .name = "max_packet_size", .type = SPC_OPT_UINT, .offset = SM(max_packet_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 1472, .min.u = SPC_MIN_PACKET_SIZE,
     .max.u = SPC_STREAM_MAX_PACKET_SIZE, .help = "largest packet in bytes, SPEAD header included"},
    {SPC_OPTION_INIT, .name = "rate", .type = SPC_OPT_DOUBLE, .offset = SM(rate),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN, .def.d = 0.0, .min.d = 0.0,
     .help = "sending rate in bytes per second; 0 = unlimited"},
    {SPC_OPTION_INIT, .name = "burst_size", .type = SPC_OPT_UINT, .offset = SM(burst_size),
     .flags = SPC_OPT_DEFAULT, .def.u = 65536, .help = "bytes sent back to back before the rate limiter sleeps"},
    {SPC_OPTION_INIT, .name = "max_heaps", .type = SPC_OPT_UINT, .offset = SM(max_heaps),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 4, .min.u = 1, .max.u = 1048576,
     .help = "heaps that may be queued or in flight at once"},
    {SPC_OPTION_INIT, .name = "burst_rate_ratio", .type = SPC_OPT_DOUBLE, .offset = SM(burst_rate_ratio),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN, .def.d = 1.05, .min.d = 1.0,
     .help = "how much faster than rate the limiter may go to catch up"},
    {SPC_OPTION_INIT, .name = "rate_method", .type = SPC_OPT_ENUM, .offset = SM(rate_method),
     .flags = SPC_OPT_DEFAULT, .def.s = "auto", .choices = rate_methods,
     .help = "sw: the software rate limiter; hw: the transport paces where it reports at open "
             "that it can, otherwise the software limiter with a warning (never an error); "
             "auto: the software limiter"},
    {SPC_OPTION_INIT, .name = "on_full", .type = SPC_OPT_ENUM, .offset = SM(on_full),
     .flags = SPC_OPT_DEFAULT, .def.s = "fail", .choices = on_full_modes,
     .help = "when the queue is full: fail at once, or block until there is room"},
    {SPC_OPTION_INIT, .name = "flavour", .type = SPC_OPT_OBJECT, .fields = flavour_fields,
     .n_fields = sizeof flavour_fields / sizeof flavour_fields[0], .help = "SPEAD flavour"},
};

static const struct table stream_table = {stream_options, sizeof stream_options / sizeof stream_options[0],
                                          sizeof(struct spc_option)};

static void mirror_to_config(const struct stream_mirror *m, struct spc_stream_config *c)
{
    c->max_packet_size = (size_t)m->max_packet_size;
    c->rate = m->rate;
    c->burst_size = (size_t)m->burst_size;
    c->max_heaps = (size_t)m->max_heaps;
    c->burst_rate_ratio = m->burst_rate_ratio;
    c->rate_method = (enum spc_rate_method)m->rate_method;
    c->on_full = (enum spc_on_full)m->on_full;
    c->flavour.heap_address_bits = (unsigned)m->heap_address_bits;
    c->flavour.bug_compat = (unsigned)m->bug_compat;
}

static json_t *stream_to_json(const struct spc_stream_config *c)
{
    return json_pack("{s:I, s:f, s:I, s:I, s:f, s:s, s:s, s:{s:I, s:I}}",
                     "max_packet_size", (json_int_t)c->max_packet_size, "rate", c->rate,
                     "burst_size", (json_int_t)c->burst_size, "max_heaps", (json_int_t)c->max_heaps,
                     "burst_rate_ratio", c->burst_rate_ratio,
                     "rate_method", rate_methods[c->rate_method],
                     "on_full", on_full_modes[c->on_full], "flavour",
                     "heap_address_bits", (json_int_t)c->flavour.heap_address_bits,
                     "bug_compat", (json_int_t)c->flavour.bug_compat);
}

int spc_stream_config_check(const struct spc_stream_config *c, char *err, size_t errlen)
{
    if (!c)
        return -EINVAL;
    if (!isfinite(c->rate))
        return fail(err, errlen, "stream.rate: not a finite number");
    if (!isfinite(c->burst_rate_ratio))
        return fail(err, errlen, "stream.burst_rate_ratio: not a finite number");
    if ((unsigned)c->rate_method > SPC_RATE_METHOD_AUTO)
        return fail(err, errlen, "stream.rate_method: %d is not a valid rate method", (int)c->rate_method);
    if ((unsigned)c->on_full > SPC_ON_FULL_BLOCK)
        return fail(err, errlen, "stream.on_full: %d is not a valid on_full mode", (int)c->on_full);
    const size_t big = (size_t)INT64_MAX;
    if (c->max_packet_size > big || c->burst_size > big || c->max_heaps > big)
        return fail(err, errlen, "stream: size above 2^63-1");
    json_t *j = stream_to_json(c);
    if (!j)
        return -ENOMEM;
    struct sink sk = {0};
    int rc = apply_table(&stream_table, j, "stream", &sk, err, errlen);
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------ config objects */

static struct table plugin_table(const struct spci_plugin *p)
{
    struct table t = {p->desc->options, p->desc->n_options, p->option_stride};
    return t;
}

const struct spci_plugin *spci_config_plugin(const struct spc_config *cfg)
{
    return cfg->plugin;
}

void spc_config_free(struct spc_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->transport);
    spc_strv_free(cfg->plugin_path);
    json_decref(cfg->options);
    free(cfg);
}

/* Allocates a config with transport resolved; stream defaults. */
static int config_new(struct spc_config **out, const char *transport, char **plugin_path,
                      char *err, size_t errlen)
{
    struct spc_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        spc_strv_free(plugin_path);
        return -ENOMEM;
    }
    cfg->plugin_path = plugin_path;
    cfg->stream = SPC_STREAM_CONFIG_DEFAULT;
    cfg->options = json_object();
    cfg->transport = strdup(transport);
    if (!cfg->options || !cfg->transport) {
        spc_config_free(cfg);
        return -ENOMEM;
    }
    int rc = spci_plugin_find(transport, (const char *const *)plugin_path, &cfg->plugin, err, errlen);
    if (rc < 0) {
        spc_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

static int copy_strv(const char *const *in, char ***out)
{
    *out = NULL;
    if (!in)
        return 0;
    size_t n = 0;
    while (in[n])
        n++;
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = strdup(in[i]))) {
            spc_strv_free(v);
            return -ENOMEM;
        }
    *out = v;
    return 0;
}

static int check_options(const struct spc_config *cfg, const json_t *options, int partial,
                         char *err, size_t errlen)
{
    struct table t = plugin_table(cfg->plugin);
    struct sink sk = {.partial = partial};
    return apply_table(&t, options, "options", &sk, err, errlen);
}

static const char *const top_keys[] = {"transport", "stream", "options", "plugin_path"};

/* base_dir (may be NULL): relative plugin_path entries are taken relative to it. */
static int parse_doc(struct spc_config **out, json_t *root, const char *base_dir, char *err,
                     size_t errlen)
{
    if (!json_is_object(root))
        return fail(err, errlen, "(document): expected an object, got %s", type_name(root));
    json_t *jt = NULL, *js = NULL, *jo = NULL, *jp = NULL;
    json_error_t jerr;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s?o, s?o, s?o, s?o}", "transport", &jt, "stream", &js,
                       "options", &jo, "plugin_path", &jp) < 0)
        return strict_unpack_error(err, errlen, "", root, &jerr, top_keys, 4);
    if (!jt)
        return fail(err, errlen, "transport: missing (required)");
    if (!json_is_string(jt))
        return fail(err, errlen, "transport: expected a string, got %s", type_name(jt));
    const char *tname = json_string_value(jt);
    if (spci_transport_name_check(tname) < 0)
        return fail(err, errlen, "transport: \"%.80s\" is not a valid transport name "
                    "(letters, digits, '_' and '-', at most 64)", tname);

    char **path = NULL;
    if (jp) {
        if (!json_is_array(jp))
            return fail(err, errlen, "plugin_path: expected an array, got %s", type_name(jp));
        size_t n = json_array_size(jp);
        for (size_t i = 0; i < n; i++)
            if (!json_is_string(json_array_get(jp, i)))
                return fail(err, errlen, "plugin_path[%zu]: expected a string, got %s", i,
                            type_name(json_array_get(jp, i)));
        if (!(path = calloc(n + 1, sizeof *path)))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            const char *dir = json_string_value(json_array_get(jp, i));
            int w = 0;
            if (base_dir && dir[0] != '/')
                w = asprintf(&path[i], "%s/%s", base_dir, dir);
            else
                path[i] = strdup(dir);
            if (w < 0 || !path[i]) {
                path[i] = NULL;
                spc_strv_free(path);
                return -ENOMEM;
            }
        }
    }

    struct stream_mirror m;
    struct sink sk = {.dst = (unsigned char *)&m};
    int rc = apply_table(&stream_table, js, "stream", &sk, err, errlen);
    if (rc < 0) {
        spc_strv_free(path);
        return rc;
    }
    if (jo && !json_is_object(jo)) {
        spc_strv_free(path);
        return fail(err, errlen, "options: expected an object, got %s", type_name(jo));
    }
    struct spc_config *cfg;
    rc = config_new(&cfg, tname, path, err, errlen);
    if (rc < 0)
        return rc;
    mirror_to_config(&m, &cfg->stream);
    if (jo) {
        rc = check_options(cfg, jo, 0, err, errlen);
        if (rc < 0) {
            spc_config_free(cfg);
            return rc;
        }
        json_decref(cfg->options);
        cfg->options = json_deep_copy(jo);
        if (!cfg->options) {
            spc_config_free(cfg);
            return -ENOMEM;
        }
    } else {
        rc = check_options(cfg, NULL, 0, err, errlen);
        if (rc < 0) {
            spc_config_free(cfg);
            return rc;
        }
    }
    *out = cfg;
    return 0;
}

static int parse_error(const json_error_t *jerr, const char *source, char *err, size_t errlen)
{
    return fail(err, errlen, "%s%sline %d, column %d: invalid JSON: %s", source ? source : "",
                source ? ": " : "", jerr->line, jerr->column, jerr->text);
}

int spc_config_parse(struct spc_config **out, const char *json, char *err, size_t errlen)
{
    if (!out || !json)
        return -EINVAL;
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return parse_error(&jerr, NULL, err, errlen);
    int rc = parse_doc(out, root, NULL, err, errlen);
    json_decref(root);
    return rc;
}

int spc_config_load(struct spc_config **out, const char *path, char *err, size_t errlen)
{
    if (!out || !path)
        return -EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        fail(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        json_decref(root);
        fail(err, errlen, "%s: read error", path);
        return -EIO;
    }
    if (!root)
        return parse_error(&jerr, path, err, errlen);
    const char *slash = strrchr(path, '/');
    char *base = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!base) {
        json_decref(root);
        return -ENOMEM;
    }
    int rc = parse_doc(out, root, base, err, errlen);
    free(base);
    json_decref(root);
    return rc;
}

int spc_config_create(struct spc_config **out, const char *transport,
                      const struct spc_stream_config *stream, const char *const *plugin_path,
                      char *err, size_t errlen)
{
    if (!out)
        return -EINVAL;
    if (!transport)
        return fail(err, errlen, "transport: missing (required)");
    if (stream) {
        int rc = spc_stream_config_check(stream, err, errlen);
        if (rc < 0)
            return rc;
    }
    char **path;
    if (copy_strv(plugin_path, &path) < 0)
        return -ENOMEM;
    int rc = config_new(out, transport, path, err, errlen);
    if (rc == 0 && stream)
        (*out)->stream = *stream;
    return rc;
}

int spc_config_set_stream(struct spc_config *cfg, const struct spc_stream_config *stream,
                          char *err, size_t errlen)
{
    if (!cfg || !stream)
        return -EINVAL;
    int rc = spc_stream_config_check(stream, err, errlen);
    if (rc == 0)
        cfg->stream = *stream;
    return rc;
}

int spc_config_set_options_json(struct spc_config *cfg, const char *json, char *err, size_t errlen)
{
    if (!cfg || !json)
        return -EINVAL;
    json_error_t jerr;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!o)
        return parse_error(&jerr, "options", err, errlen);
    int rc = check_options(cfg, o, 0, err, errlen);
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    json_decref(cfg->options);
    cfg->options = o;
    return 0;
}

/* Resolves a dotted option name to its entry and the JSON object that holds it (created
 * as needed when create is set). */
static int resolve_name(struct spc_config *cfg, const char *name, const struct spc_option **opt,
                        struct table *owner, json_t **parent, const char **leaf, char *path,
                        char *err, size_t errlen)
{
    if (!name)
        return -EINVAL;
    struct table t = plugin_table(cfg->plugin);
    json_t *obj = cfg->options;
    char buf[PATH_LEN];
    if (strlen(name) >= sizeof buf)
        return fail(err, errlen, "options: name too long");
    strcpy(buf, name);
    strcpy(path, "options");
    char *seg = buf;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        const struct spc_option *o = find_opt(&t, seg);
        if (!o)
            return unknown_in_table(&t, path, seg, err, errlen);
        char np[PATH_LEN];
        join(np, path, seg);
        strcpy(path, np);
        if (!dot) {
            *opt = o;
            *owner = t;
            *parent = obj;
            *leaf = name + (seg - buf);
            return 0;
        }
        if (o->type != SPC_OPT_OBJECT)
            return fail(err, errlen, "%s: not an object, has no field \"%s\"", path, dot + 1);
        json_t *sub = json_object_get(obj, seg);
        if (!sub) {
            if (!(sub = json_object()) || json_object_set_new(obj, seg, sub) < 0)
                return -ENOMEM;
        }
        obj = sub;
        t = sub_table(&t, o);
        seg = dot + 1;
    }
}

static int set_value(struct spc_config *cfg, const char *name, json_t *v, char *err, size_t errlen)
{
    if (!cfg) {
        json_decref(v);
        return -EINVAL;
    }
    if (!v)
        return -ENOMEM;
    const struct spc_option *o;
    struct table owner;
    json_t *parent;
    const char *leaf;
    char path[PATH_LEN];
    /* Work on a copy so a failed set leaves the config unchanged. */
    json_t *saved = cfg->options, *copy = json_deep_copy(saved);
    if (!copy) {
        json_decref(v);
        return -ENOMEM;
    }
    cfg->options = copy;
    int rc = resolve_name(cfg, name, &o, &owner, &parent, &leaf, path, err, errlen);
    if (rc == 0) {
        struct sink sk = {.partial = 1};
        rc = apply_value(&owner, o, v, path, &sk, err, errlen);
    }
    if (rc == 0 && json_object_set(parent, leaf, v) < 0)
        rc = -ENOMEM;
    json_decref(v);
    if (rc < 0) {
        cfg->options = saved;
        json_decref(copy);
        return rc;
    }
    json_decref(saved);
    return 0;
}

int spc_config_set_bool(struct spc_config *cfg, const char *name, bool value, char *err, size_t errlen)
{
    return set_value(cfg, name, json_boolean(value), err, errlen);
}

int spc_config_set_int(struct spc_config *cfg, const char *name, int64_t value, char *err, size_t errlen)
{
    return set_value(cfg, name, json_integer((json_int_t)value), err, errlen);
}

int spc_config_set_uint(struct spc_config *cfg, const char *name, uint64_t value, char *err, size_t errlen)
{
    if (value > INT64_MAX)
        return fail(err, errlen, "options.%s: %llu is above 9223372036854775807", name ? name : "",
                    (unsigned long long)value);
    return set_value(cfg, name, json_integer((json_int_t)value), err, errlen);
}

int spc_config_set_double(struct spc_config *cfg, const char *name, double value, char *err,
                          size_t errlen)
{
    if (!isfinite(value))
        return fail(err, errlen, "options.%s: not a finite number", name ? name : "");
    return set_value(cfg, name, json_real(value), err, errlen);
}

int spc_config_set_string(struct spc_config *cfg, const char *name, const char *value, char *err,
                          size_t errlen)
{
    if (!value)
        return -EINVAL;
    return set_value(cfg, name, json_string(value), err, errlen);
}

/* Appends one element to a list option. */
static int add_element(struct spc_config *cfg, const char *name, json_t *elem, uint32_t want,
                       char *err, size_t errlen)
{
    if (!cfg || !elem) {
        json_decref(elem);
        return cfg ? -ENOMEM : -EINVAL;
    }
    const struct spc_option *o;
    struct table owner;
    json_t *parent;
    const char *leaf;
    char path[PATH_LEN];
    json_t *saved = cfg->options, *copy = json_deep_copy(saved);
    if (!copy) {
        json_decref(elem);
        return -ENOMEM;
    }
    cfg->options = copy;
    int rc = resolve_name(cfg, name, &o, &owner, &parent, &leaf, path, err, errlen);
    if (rc == 0 && o->type != want)
        rc = fail(err, errlen, "%s: not a%s list", path, want == SPC_OPT_ENDPOINTS ? "n endpoint" : " string");
    json_t *list = rc == 0 ? json_object_get(parent, leaf) : NULL;
    if (rc == 0 && !list && (!(list = json_array()) || json_object_set_new(parent, leaf, list) < 0))
        rc = -ENOMEM;
    if (rc == 0 && json_array_append(list, elem) < 0)
        rc = -ENOMEM;
    if (rc == 0) {
        struct sink sk = {.partial = 1};
        rc = apply_value(&owner, o, list, path, &sk, err, errlen);
    }
    json_decref(elem);
    if (rc < 0) {
        cfg->options = saved;
        json_decref(copy);
        return rc;
    }
    json_decref(saved);
    return 0;
}

int spc_config_add_endpoint(struct spc_config *cfg, const char *name, const char *host, unsigned port,
                            char *err, size_t errlen)
{
    if (!host)
        return -EINVAL;
    return add_element(cfg, name, json_pack("{s:s, s:I}", "host", host, "port", (json_int_t)port),
                       SPC_OPT_ENDPOINTS, err, errlen);
}

int spc_config_add_string(struct spc_config *cfg, const char *name, const char *value, char *err,
                          size_t errlen)
{
    if (!value)
        return -EINVAL;
    return add_element(cfg, name, json_string(value), SPC_OPT_STRINGS, err, errlen);
}

int spc_config_check(const struct spc_config *cfg, char *err, size_t errlen)
{
    if (!cfg)
        return -EINVAL;
    int rc = spc_stream_config_check(&cfg->stream, err, errlen);
    return rc < 0 ? rc : check_options(cfg, cfg->options, 0, err, errlen);
}

const char *spc_config_transport(const struct spc_config *cfg)
{
    return cfg->transport;
}

const struct spc_stream_config *spc_config_stream(const struct spc_config *cfg)
{
    return &cfg->stream;
}

int spci_options_build(const struct spc_config *cfg, struct spci_options **out, void **opts_out,
                       char *err, size_t errlen)
{
    const struct spc_transport_descriptor *d = cfg->plugin->desc;
    struct spci_options *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    if (d->options_size && !(o->opts = calloc(1, d->options_size))) {
        free(o);
        return -ENOMEM;
    }
    struct table t = plugin_table(cfg->plugin);
    struct sink sk = {.dst = o->opts, .arena = o};
    int rc = o->opts ? apply_table(&t, cfg->options, "options", &sk, err, errlen)
                     : check_options(cfg, cfg->options, 0, err, errlen);
    if (rc < 0) {
        if (rc == -ENOMEM)
            fail(err, errlen, "options: out of memory");
        spci_options_free(o);
        return rc;
    }
    *out = o;
    *opts_out = o->opts;
    return 0;
}

/* ------------------------------------------------------------ printing */

/* The JSON value of an option's default, or NULL when it has none. */
static json_t *default_json(const struct spc_option *o)
{
    if (!(o->flags & SPC_OPT_DEFAULT))
        return NULL;
    switch (o->type) {
    case SPC_OPT_BOOL: return json_boolean(o->def.b);
    case SPC_OPT_INT: return json_integer((json_int_t)o->def.i);
    case SPC_OPT_UINT: return json_integer((json_int_t)o->def.u);
    case SPC_OPT_DOUBLE: return json_real(o->def.d);
    case SPC_OPT_STRING:
    case SPC_OPT_ENUM: return json_string(o->def.s);
    default: return NULL;
    }
}

/* Fills defaults into obj (for spc_config_to_json). */
static int fill_defaults(const struct table *t, json_t *obj)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = opt_at(t, i);
        json_t *v = json_object_get(obj, o->name);
        if (o->type == SPC_OPT_OBJECT) {
            if (!v && (!(v = json_object()) || json_object_set_new(obj, o->name, v) < 0))
                return -ENOMEM;
            struct table s = sub_table(t, o);
            if (fill_defaults(&s, v) < 0)
                return -ENOMEM;
        } else if (!v && !(o->flags & SPC_OPT_ONE_OF)) {
            /* A one-of member's default stands for "not given": printing it would make
             * the document give two of them. */
            json_t *d = default_json(o);
            if (d && json_object_set_new(obj, o->name, d) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static int dump(json_t *j, char **out)
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

int spc_config_to_json(const struct spc_config *cfg, char **out)
{
    if (!cfg || !out)
        return -EINVAL;
    json_t *opts = json_deep_copy(cfg->options);
    struct table t = plugin_table(cfg->plugin);
    json_t *pp = json_array();
    if (!opts || !pp || fill_defaults(&t, opts) < 0) {
        json_decref(opts);
        json_decref(pp);
        return -ENOMEM;
    }
    for (char **p = cfg->plugin_path; p && *p; p++)
        if (json_array_append_new(pp, json_string(*p)) < 0) {
            json_decref(opts);
            json_decref(pp);
            return -ENOMEM;
        }
    return dump(json_pack("{s:s, s:o, s:o, s:o}", "transport", cfg->transport, "stream",
                          stream_to_json(&cfg->stream), "options", opts, "plugin_path", pp),
                out);
}

/* The "host:port" pattern; parse_endpoint_string accepts exactly this language. */
#define PORT_PATTERN                                                                   \
    "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$"
#define ENDPOINT_PATTERN "^(\\[[0-9A-Fa-f:.]{1,255}\\]|[A-Za-z0-9._-]{1,255}):" PORT_PATTERN
/* The object form's host (check_host): an IPv6 address has a ':', a name has none. */
#define HOST_PATTERN "^([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9._-]+)$"
/* is_dotted_quad, and "a.b.c.d:port" for SPC_OPT_IPV4 endpoints. */
#define OCTET "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
#define IPV4_RE OCTET "(\\." OCTET "){3}"
#define IPV4_PATTERN "^" IPV4_RE "$"
#define IPV4_ENDPOINT_PATTERN "^" IPV4_RE ":" PORT_PATTERN

static int set_new(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *table_schema(const struct table *t);

static json_t *option_schema(const struct table *t, const struct spc_option *o)
{
    json_t *s = json_object();
    if (!s)
        return NULL;
    int bad = 0;
    uint32_t f = o->flags;
    size_t lo = opt_count_bound(o, 0), hi = opt_count_bound(o, 1);
    if (o->help)
        bad |= set_new(s, "description", json_string(o->help));
    switch (o->type) {
    case SPC_OPT_BOOL:
        bad |= set_new(s, "type", json_string("boolean"));
        break;
    case SPC_OPT_INT:
    case SPC_OPT_UINT:
        bad |= set_new(s, "type", json_string("integer"));
        if (o->type == SPC_OPT_INT) {
            if (f & SPC_OPT_MIN)
                bad |= set_new(s, "minimum", json_integer((json_int_t)o->min.i));
            if (f & SPC_OPT_MAX)
                bad |= set_new(s, "maximum", json_integer((json_int_t)o->max.i));
        } else {
            bad |= set_new(s, "minimum", json_integer((json_int_t)((f & SPC_OPT_MIN) ? o->min.u : 0)));
            if (f & SPC_OPT_MAX)
                bad |= set_new(s, "maximum", json_integer((json_int_t)o->max.u));
        }
        if (OPT_HAS(o, multiple_of) && o->multiple_of)
            bad |= set_new(s, "multipleOf", json_integer((json_int_t)o->multiple_of));
        break;
    case SPC_OPT_DOUBLE:
        bad |= set_new(s, "type", json_string("number"));
        if (f & SPC_OPT_MIN)
            bad |= set_new(s, "minimum", json_real(o->min.d));
        if (f & SPC_OPT_MAX)
            bad |= set_new(s, "maximum", json_real(o->max.d));
        break;
    case SPC_OPT_STRING:
        bad |= set_new(s, "type", json_string("string"));
        if (lo)
            bad |= set_new(s, "minLength", json_integer((json_int_t)lo));
        if (hi)
            bad |= set_new(s, "maxLength", json_integer((json_int_t)hi));
        if (f & SPC_OPT_IPV4)
            bad |= set_new(s, "pattern", json_string(IPV4_PATTERN));
        break;
    case SPC_OPT_ENUM: {
        bad |= set_new(s, "type", json_string("string"));
        json_t *e = json_array();
        for (size_t i = 0, n = n_choices(o); e && i < n; i++)
            bad |= json_array_append_new(e, json_string(o->choices[i]));
        bad |= set_new(s, "enum", e);
        break;
    }
    case SPC_OPT_ENDPOINTS:
    case SPC_OPT_STRINGS: {
        bad |= set_new(s, "type", json_string("array"));
        json_t *items;
        int v4 = (f & SPC_OPT_IPV4) != 0;
        size_t ilo = OPT_HAS(o, item_min_length) ? o->item_min_length : 0;
        size_t ihi = OPT_HAS(o, item_max_length) ? o->item_max_length : 0;
        if (o->type == SPC_OPT_ENDPOINTS)
            items = json_pack(
                "{s:[{s:s, s:s}, {s:s, s:{s:{s:s, s:i, s:i, s:s}, s:{s:s, s:i, s:i}}, s:[s, s], s:b}]}",
                "oneOf", "type", "string", "pattern", v4 ? IPV4_ENDPOINT_PATTERN : ENDPOINT_PATTERN,
                "type", "object", "properties", "host", "type", "string", "minLength", 1,
                "maxLength", HOST_MAX, "pattern", v4 ? IPV4_PATTERN : HOST_PATTERN, "port", "type",
                "integer", "minimum", 1, "maximum", 65535, "required", "host", "port",
                "additionalProperties", 0);
        else
            items = json_pack("{s:s}", "type", "string");
        if (items && ilo)
            bad |= set_new(items, "minLength", json_integer((json_int_t)ilo));
        if (items && ihi)
            bad |= set_new(items, "maxLength", json_integer((json_int_t)ihi));
        bad |= set_new(s, "items", items);
        if (lo)
            bad |= set_new(s, "minItems", json_integer((json_int_t)lo));
        if (hi)
            bad |= set_new(s, "maxItems", json_integer((json_int_t)hi));
        break;
    }
    case SPC_OPT_OBJECT: {
        struct table sub = sub_table(t, o);
        json_t *ts = table_schema(&sub);
        if (!ts) {
            bad = 1;
            break;
        }
        /* Merge: keep the description first. */
        const char *k;
        json_t *v;
        json_object_foreach(ts, k, v) bad |= json_object_set(s, k, v);
        json_decref(ts);
        break;
    }
    }
    json_t *d = default_json(o);
    if (d)
        bad |= set_new(s, "default", d);
    if (bad) {
        json_decref(s);
        return NULL;
    }
    return s;
}

static json_t *table_schema(const struct table *t)
{
    json_t *s = json_object(), *props = json_object(), *req = json_array();
    int bad = !s || !props || !req;
    for (size_t i = 0; !bad && i < t->n; i++) {
        const struct spc_option *o = opt_at(t, i);
        bad |= set_new(props, o->name, option_schema(t, o));
        if (o->flags & SPC_OPT_REQUIRED)
            bad |= json_array_append_new(req, json_string(o->name));
    }
    json_t *one_of = json_array();
    bad |= !one_of;
    for (size_t i = 0; !bad && i < t->n; i++)
        if (opt_at(t, i)->flags & SPC_OPT_ONE_OF)
            bad |= json_array_append_new(one_of, json_pack("{s:[s]}", "required", opt_at(t, i)->name));
    if (!bad) {
        bad |= set_new(s, "type", json_string("object"));
        bad |= json_object_set(s, "properties", props);
        if (json_array_size(req))
            bad |= json_object_set(s, "required", req);
        if (json_array_size(one_of))
            bad |= json_object_set(s, "oneOf", one_of);
        bad |= set_new(s, "additionalProperties", json_false());
    }
    json_decref(props);
    json_decref(req);
    json_decref(one_of);
    if (bad) {
        json_decref(s);
        return NULL;
    }
    return s;
}

#define SCHEMA_DRAFT "https://json-schema.org/draft/2020-12/schema"

int spc_stream_schema(char **out)
{
    if (!out)
        return -EINVAL;
    json_t *stream = table_schema(&stream_table);
    if (!stream)
        return -ENOMEM;
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:{s:s, s:s, s:s}, s:o, s:{s:s, s:s}, s:{s:s, s:s, s:{s:s}}}, s:[s], s:b}",
        "$schema", SCHEMA_DRAFT, "title", "speadcast stream configuration", "description",
        "A send stream: its transport, stream parameters, transport options and plugin search path.",
        "type", "object", "properties",
        "transport", "description", "transport name: a built-in (bytes) or plugin speadcast-<name>.so",
        "type", "string", "pattern", "^[A-Za-z0-9_-]{1,64}$",
        "stream", stream,
        "options", "description", "the transport's options; see transport/<name>.schema.json",
        "type", "object",
        "plugin_path", "description", "directories searched for transport plugins first", "type",
        "array", "items", "type", "string",
        "required", "transport", "additionalProperties", 0);
    if (doc) {
        /* Put "description" before "type" in the stream section, like the others. */
        json_t *st = json_object_get(json_object_get(doc, "properties"), "stream");
        json_t *copy = json_object();
        if (!copy || set_new(copy, "description", json_string("stream parameters (SPEC §3)")) < 0 ||
            json_object_update(copy, st) < 0 ||
            json_object_set_new(json_object_get(doc, "properties"), "stream", copy) < 0) {
            json_decref(doc);
            return -ENOMEM;
        }
    }
    return dump(doc, out);
}

int spc_transport_schema(const char *name, const char *const *plugin_path, char **out, char *err,
                         size_t errlen)
{
    if (!out)
        return -EINVAL;
    const struct spci_plugin *p;
    int rc = spci_plugin_find(name, plugin_path, &p, err, errlen);
    if (rc < 0)
        return rc;
    struct table t = plugin_table(p);
    json_t *body = table_schema(&t);
    if (!body)
        return -ENOMEM;
    char title[128];
    snprintf(title, sizeof title, "speadcast %s transport options", p->name);
    json_t *doc = json_pack("{s:s, s:s, s:s}", "$schema", SCHEMA_DRAFT, "title", title,
                            "description", p->desc->description ? p->desc->description : "");
    if (!doc || json_object_update(doc, body) < 0) {
        json_decref(doc);
        json_decref(body);
        return -ENOMEM;
    }
    json_decref(body);
    return dump(doc, out);
}
