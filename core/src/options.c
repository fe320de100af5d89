/* Option tables (transport.h): checking a plugin's table, validating JSON values against
 * it and storing them typed into the plugin's options struct, whose strings and lists
 * live in an arena owned by the opened transport. Depends on nothing but cfgjson and
 * endpoint, so the loader (which checks tables) and the config (which applies them) both
 * build on it without a cycle.
 *
 * Invariants: tables are walked with the plugin's stride (options[0].struct_size) and
 * only fields within struct_size are read; every message starts with the JSON path.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgjson.h"
#include "endpoint.h"
#include "options.h"

const struct spc_option *spci_opt_at(const struct spci_table *t, size_t i)
{
    return (const struct spc_option *)(const void *)((const char *)t->opts + i * t->stride);
}

struct spci_table spci_sub_table(const struct spci_table *t, const struct spc_option *o)
{
    struct spci_table s = {NULL, 0, t->stride};
    if (SPCI_OPT_HAS(o, n_fields)) {
        s.opts = o->fields;
        s.n = o->n_fields;
    }
    return s;
}

size_t spci_opt_count_bound(const struct spc_option *o, int max)
{
    if (max)
        return SPCI_OPT_HAS(o, max_count) ? o->max_count : 0;
    return SPCI_OPT_HAS(o, min_count) ? o->min_count : 0;
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

size_t spci_opt_n_choices(const struct spc_option *o)
{
    size_t n = 0;
    if (SPCI_OPT_HAS(o, choices) && o->choices)
        while (o->choices[n])
            n++;
    return n;
}

static int choice_index(const struct spc_option *o, const char *s)
{
    size_t n = spci_opt_n_choices(o);
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

static int check_table(const struct spci_table *t, size_t options_size, const char *prefix,
                       int depth, char *err, size_t errlen)
{
    if (t->n && !t->opts)
        return spci_cfg_fail(err, errlen, "%soptions is NULL with %zu entries", prefix, t->n);
    if (depth > 4)
        return spci_cfg_fail(err, errlen, "%s: objects nested too deeply", prefix);
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = spci_opt_at(t, i);
        if (o->struct_size != t->stride)
            return spci_cfg_fail(err, errlen, "%sentry %zu: struct_size %u differs from the first entry's %zu",
                        prefix, i, (unsigned)o->struct_size, t->stride);
        if (!valid_key(o->name))
            return spci_cfg_fail(err, errlen, "%sentry %zu: name missing or not [a-z0-9_]+", prefix, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(spci_opt_at(t, j)->name, o->name))
                return spci_cfg_fail(err, errlen, "%s%s: declared twice", prefix, o->name);
        size_t vs = value_size(o->type);
        if (vs == (size_t)-1)
            return spci_cfg_fail(err, errlen, "%s%s: unknown type %u", prefix, o->name, (unsigned)o->type);
        if (vs && (o->offset > options_size || options_size - o->offset < vs ||
                   o->offset % value_align(o->type)))
            return spci_cfg_fail(err, errlen, "%s%s: offset %zu does not fit options_size %zu", prefix,
                        o->name, o->offset, options_size);
        uint32_t f = o->flags;
        if ((f & SPC_OPT_REQUIRED) && (f & SPC_OPT_DEFAULT))
            return spci_cfg_fail(err, errlen, "%s%s: both required and defaulted", prefix, o->name);
        if ((f & SPC_OPT_IPV4) && o->type != SPC_OPT_ENDPOINTS && o->type != SPC_OPT_STRING)
            return spci_cfg_fail(err, errlen, "%s%s: SPC_OPT_IPV4 on a type other than endpoints or string",
                                 prefix, o->name);
        if ((f & SPC_OPT_IPV4) && o->type == SPC_OPT_STRING && (f & SPC_OPT_DEFAULT) &&
            !spci_is_dotted_quad(o->def.s ? o->def.s : ""))
            return spci_cfg_fail(err, errlen, "%s%s: default is not a dotted-quad IPv4 address", prefix,
                                 o->name);
        if ((f & SPC_OPT_ONE_OF) && (f & SPC_OPT_REQUIRED))
            return spci_cfg_fail(err, errlen, "%s%s: both required and one-of", prefix, o->name);
        size_t n_one_of = 0;
        for (size_t j = 0; j < t->n; j++)
            n_one_of += (spci_opt_at(t, j)->flags & SPC_OPT_ONE_OF) != 0;
        if ((f & SPC_OPT_ONE_OF) && n_one_of < 2)
            return spci_cfg_fail(err, errlen, "%s%s: the only one-of option of its table", prefix, o->name);
        if (SPCI_OPT_HAS(o, item_max_length) && (o->item_min_length || o->item_max_length) &&
            (o->type != SPC_OPT_STRINGS ||
             (o->item_max_length && o->item_min_length > o->item_max_length)))
            return spci_cfg_fail(err, errlen,
                                 "%s%s: item length bounds on a non-string-list or min above max", prefix,
                                 o->name);
        int ranged = o->type == SPC_OPT_INT || o->type == SPC_OPT_UINT || o->type == SPC_OPT_DOUBLE;
        if ((f & (SPC_OPT_MIN | SPC_OPT_MAX)) && !ranged)
            return spci_cfg_fail(err, errlen, "%s%s: bounds on a type without them", prefix, o->name);
        if ((f & SPC_OPT_DEFAULT) && (o->type == SPC_OPT_ENDPOINTS || o->type == SPC_OPT_STRINGS ||
                                      o->type == SPC_OPT_OBJECT))
            return spci_cfg_fail(err, errlen, "%s%s: lists and objects take no default", prefix, o->name);
        if (o->type == SPC_OPT_UINT && (((f & SPC_OPT_MAX) && o->max.u > INT64_MAX) ||
                                        ((f & SPC_OPT_DEFAULT) && o->def.u > INT64_MAX)))
            return spci_cfg_fail(err, errlen, "%s%s: values above 2^63-1 cannot be written in JSON", prefix,
                        o->name);
        if (o->type == SPC_OPT_DOUBLE &&
            (((f & SPC_OPT_MIN) && !isfinite(o->min.d)) || ((f & SPC_OPT_MAX) && !isfinite(o->max.d)) ||
             ((f & SPC_OPT_DEFAULT) && !isfinite(o->def.d))))
            return spci_cfg_fail(err, errlen, "%s%s: non-finite bound or default", prefix, o->name);
        if ((f & SPC_OPT_MIN) && (f & SPC_OPT_MAX) &&
            ((o->type == SPC_OPT_INT && o->min.i > o->max.i) ||
             (o->type == SPC_OPT_UINT && o->min.u > o->max.u) ||
             (o->type == SPC_OPT_DOUBLE && o->min.d > o->max.d)))
            return spci_cfg_fail(err, errlen, "%s%s: min above max", prefix, o->name);
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
                return spci_cfg_fail(err, errlen, "%s%s: default outside its own bounds", prefix, o->name);
        }
        if (o->type == SPC_OPT_ENUM && spci_opt_n_choices(o) == 0)
            return spci_cfg_fail(err, errlen, "%s%s: enum without choices", prefix, o->name);
        if (o->type == SPC_OPT_OBJECT) {
            struct spci_table s = spci_sub_table(t, o);
            if (s.n == 0)
                return spci_cfg_fail(err, errlen, "%s%s: object without fields", prefix, o->name);
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
        return spci_cfg_fail(err, errlen, "options is NULL with n_options %zu", d->n_options);
    size_t stride = d->options[0].struct_size;
    if (stride < offsetof(struct spc_option, max) + sizeof(union spc_option_value))
        return spci_cfg_fail(err, errlen, "option struct_size %zu is below the ABI 1 minimum", stride);
    if (d->options_size == 0)
        return spci_cfg_fail(err, errlen, "options declared but options_size is 0");
    struct spci_table t = {d->options, d->n_options, stride};
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

int spci_options_new(size_t options_size, struct spci_options **out, void **opts_out)
{
    struct spci_options *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    if (options_size && !(o->opts = calloc(1, options_size))) {
        free(o);
        return -ENOMEM;
    }
    *out = o;
    *opts_out = o->opts;
    return 0;
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

static int check_count(const struct spc_option *o, size_t n, const char *path, const char *what,
                       char *err, size_t errlen)
{
    size_t lo = spci_opt_count_bound(o, 0), hi = spci_opt_count_bound(o, 1);
    if (n < lo)
        return spci_cfg_fail(err, errlen, "%s: %zu %s, at least %zu required", path, n, what, lo);
    if (hi && n > hi)
        return spci_cfg_fail(err, errlen, "%s: %zu %s, at most %zu allowed", path, n, what, hi);
    return 0;
}

static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Checks one value against its option and stores it. */
int spci_apply_value(const struct spci_table *t, const struct spc_option *o, const json_t *v,
                       const char *path, const struct spci_sink *sk, char *err, size_t errlen)
{
    void *slot = sk->dst ? sk->dst + o->offset : NULL;
    uint32_t f = o->flags;
    switch (o->type) {
    case SPC_OPT_BOOL:
        if (!json_is_boolean(v))
            return spci_cfg_fail(err, errlen, "%s: expected true or false, got %s", path, spci_json_type_name(v));
        if (slot)
            *(bool *)slot = json_is_true(v);
        return 0;
    case SPC_OPT_INT:
    case SPC_OPT_UINT: {
        int64_t x;
        if (spci_json_integral(v, &x) < 0)
            return spci_cfg_fail(err, errlen, "%s: expected an integer, got %s", path, spci_json_type_name(v));
        if (o->type == SPC_OPT_INT) {
            if ((f & SPC_OPT_MIN) && x < o->min.i)
                return spci_cfg_fail(err, errlen, "%s: %lld is below %lld", path, (long long)x, (long long)o->min.i);
            if ((f & SPC_OPT_MAX) && x > o->max.i)
                return spci_cfg_fail(err, errlen, "%s: %lld is above %lld", path, (long long)x, (long long)o->max.i);
        } else {
            uint64_t lo = (f & SPC_OPT_MIN) ? o->min.u : 0;
            if (x < 0 || (uint64_t)x < lo)
                return spci_cfg_fail(err, errlen, "%s: %lld is below %llu", path, (long long)x, (unsigned long long)lo);
            if ((f & SPC_OPT_MAX) && (uint64_t)x > o->max.u)
                return spci_cfg_fail(err, errlen, "%s: %lld is above %llu", path, (long long)x,
                            (unsigned long long)o->max.u);
        }
        uint64_t m = SPCI_OPT_HAS(o, multiple_of) ? o->multiple_of : 0;
        if (m && magnitude(x) % m)
            return spci_cfg_fail(err, errlen, "%s: %lld is not a multiple of %llu", path, (long long)x,
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
            return spci_cfg_fail(err, errlen, "%s: expected a number, got %s", path, spci_json_type_name(v));
        char a[40], b[40];
        if ((f & SPC_OPT_MIN) && d < o->min.d) {
            spci_fmt_double(d, a, sizeof a);
            spci_fmt_double(o->min.d, b, sizeof b);
            return spci_cfg_fail(err, errlen, "%s: %s is below %s", path, a, b);
        }
        if ((f & SPC_OPT_MAX) && d > o->max.d) {
            spci_fmt_double(d, a, sizeof a);
            spci_fmt_double(o->max.d, b, sizeof b);
            return spci_cfg_fail(err, errlen, "%s: %s is above %s", path, a, b);
        }
        if (slot)
            *(double *)slot = d;
        return 0;
    }
    case SPC_OPT_STRING: {
        if (!json_is_string(v))
            return spci_cfg_fail(err, errlen, "%s: expected a string, got %s", path, spci_json_type_name(v));
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return spci_cfg_fail(err, errlen, "%s: string contains a NUL character", path);
        int rc = check_count(o, utf8_length(s), path, "characters", err, errlen);
        if (rc < 0)
            return rc;
        if ((f & SPC_OPT_IPV4) && !spci_is_dotted_quad(s))
            return spci_cfg_fail(err, errlen, "%s: \"%s\" is not a dotted-quad IPv4 address", path, s);
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
            return spci_cfg_fail(err, errlen, "%s: expected a string, got %s", path, spci_json_type_name(v));
        int idx = choice_index(o, json_string_value(v));
        if (idx < 0) {
            char list[256] = "";
            size_t off = 0, n = spci_opt_n_choices(o);
            for (size_t i = 0; i < n && off < sizeof list; i++) {
                int w = snprintf(list + off, sizeof list - off, "%s\"%s\"", i ? ", " : "", o->choices[i]);
                if (w < 0)
                    break;
                off += (size_t)w;
            }
            return spci_cfg_fail(err, errlen, "%s: \"%s\" is not one of %s", path, json_string_value(v), list);
        }
        if (slot)
            *(int *)slot = idx;
        return 0;
    }
    case SPC_OPT_ENDPOINTS:
    case SPC_OPT_STRINGS: {
        int ep = o->type == SPC_OPT_ENDPOINTS;
        if (!json_is_array(v))
            return spci_cfg_fail(err, errlen, "%s: expected an array, got %s", path, spci_json_type_name(v));
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
            char p[SPCI_PATH_LEN];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            const json_t *e = json_array_get(v, i);
            if (ep) {
                char hostbuf[256];
                const char *host = NULL;
                unsigned port = 0;
                int rc = spci_endpoint_from_json(e, p, &host, &port, hostbuf, sizeof hostbuf, err, errlen);
                if (rc < 0)
                    return rc;
                if ((f & SPC_OPT_IPV4) && !spci_is_dotted_quad(host))
                    return spci_cfg_fail(err, errlen, "%s: \"%s\" is not a dotted-quad IPv4 address "
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
                    return spci_cfg_fail(err, errlen, "%s: expected a string, got %s", p, spci_json_type_name(e));
                size_t len = json_string_length(e);
                size_t lo = SPCI_OPT_HAS(o, item_min_length) ? o->item_min_length : 0;
                size_t hi = SPCI_OPT_HAS(o, item_max_length) ? o->item_max_length : 0;
                if (strlen(json_string_value(e)) != len)
                    return spci_cfg_fail(err, errlen, "%s: string contains a NUL character", p);
                if (len < lo)
                    return spci_cfg_fail(err, errlen, "%s: %zu bytes, at least %zu required", p, len, lo);
                if (hi && len > hi)
                    return spci_cfg_fail(err, errlen, "%s: %zu bytes, at most %zu allowed", p, len, hi);
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
        struct spci_table s = spci_sub_table(t, o);
        return spci_apply_table(&s, v, path, sk, err, errlen);
    }
    }
    return spci_cfg_fail(err, errlen, "%s: unknown option type %u", path, (unsigned)o->type);
}

static int apply_default(const struct spci_table *t, const struct spc_option *o, const struct spci_sink *sk)
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
        struct spci_table s = spci_sub_table(t, o);
        for (size_t i = 0; i < s.n; i++) {
            int rc = apply_default(&s, spci_opt_at(&s, i), sk);
            if (rc < 0)
                return rc;
        }
        break;
    }
    }
    return 0;
}

const struct spc_option *spci_opt_find(const struct spci_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(spci_opt_at(t, i)->name, name))
            return spci_opt_at(t, i);
    return NULL;
}

int spci_unknown_option(const struct spci_table *t, const char *path, const char *key, char *err,
                            size_t errlen)
{
    const char *names[64];
    size_t n = t->n < 64 ? t->n : 64;
    for (size_t i = 0; i < n; i++)
        names[i] = spci_opt_at(t, i)->name;
    return spci_unknown_key(err, errlen, path, key, names, n);
}

/* Exactly one of the table's SPC_OPT_ONE_OF options is given. */
static int check_one_of(const struct spci_table *t, const json_t *obj, const char *path, char *err,
                        size_t errlen)
{
    char names[256] = "";
    size_t given = 0, n = 0, off = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = spci_opt_at(t, i);
        if (!(o->flags & SPC_OPT_ONE_OF))
            continue;
        given += obj && json_object_get(obj, o->name);
        int w = snprintf(names + off, sizeof names - off, "%s%s", n++ ? ", " : "", o->name);
        if (w > 0 && (size_t)w < sizeof names - off)
            off += (size_t)w;
    }
    if (n == 0 || given == 1)
        return 0;
    return spci_cfg_fail(err, errlen, "%s: give exactly one of %s (%s)", *path ? path : "(document)",
                         names, given ? "more than one given" : "none given");
}

/* Checks obj (NULL = absent: defaults) against the table; stores into sk. */
int spci_apply_table(const struct spci_table *t, const json_t *obj, const char *path,
                       const struct spci_sink *sk, char *err, size_t errlen)
{
    if (obj && !json_is_object(obj))
        return spci_cfg_fail(err, errlen, "%s: expected an object, got %s", *path ? path : "(document)",
                    spci_json_type_name(obj));
    if (obj) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)obj, key, val) {
            if (!spci_opt_find(t, key))
                return spci_unknown_option(t, path, key, err, errlen);
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = spci_opt_at(t, i);
        const json_t *v = obj ? json_object_get(obj, o->name) : NULL;
        char p[SPCI_PATH_LEN];
        spci_path_join(p, path, o->name);
        int rc;
        if (v)
            rc = spci_apply_value(t, o, v, p, sk, err, errlen);
        else if ((o->flags & SPC_OPT_REQUIRED) && !sk->partial)
            rc = spci_cfg_fail(err, errlen, "%s: missing (required)", p);
        else
            rc = apply_default(t, o, sk); /* an absent object: its fields' defaults */
        if (rc < 0)
            return rc;
    }
    return sk->partial ? 0 : check_one_of(t, obj, path, err, errlen);
}

/* The JSON value of an option's default, or NULL when it has none. */
json_t *spci_opt_default_json(const struct spc_option *o)
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
int spci_fill_defaults(const struct spci_table *t, json_t *obj)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct spc_option *o = spci_opt_at(t, i);
        json_t *v = json_object_get(obj, o->name);
        if (o->type == SPC_OPT_OBJECT) {
            if (!v && (!(v = json_object()) || json_object_set_new(obj, o->name, v) < 0))
                return -ENOMEM;
            struct spci_table s = spci_sub_table(t, o);
            if (spci_fill_defaults(&s, v) < 0)
                return -ENOMEM;
        } else if (!v && !(o->flags & SPC_OPT_ONE_OF)) {
            /* A one-of member's default stands for "not given": printing it would make
             * the document give two of them. */
            json_t *d = spci_opt_default_json(o);
            if (d && json_object_set_new(obj, o->name, d) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}
