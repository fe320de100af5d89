/* Core-internal: option tables (options.c). */
#ifndef SPCI_OPTIONS_H
#define SPCI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "speadcast/transport.h"

/* jansson's json_t, without including jansson.h (only the config layer does). */
struct json_t;

/* An option table: entries opts[0..n) at stride bytes apart (the plugin's struct_size). */
struct spci_table {
    const struct spc_option *opts;
    size_t n;
    size_t stride;
};

/* The table a descriptor declares, walked with stride (0 when it has none). */
static inline struct spci_table spci_descriptor_table(const struct spc_transport_descriptor *d,
                                                      size_t stride)
{
    struct spci_table t = {d->options, d->n_options, stride};
    return t;
}

/* Fields read from an entry only when its struct_size covers them. */
#define SPCI_OPT_HAS(o, f) SPC_HAS_FIELD(o, struct spc_option, f)

const struct spc_option *spci_opt_at(const struct spci_table *t, size_t i);
/* The fields of an OBJECT option, as a table with the same stride. */
struct spci_table spci_sub_table(const struct spci_table *t, const struct spc_option *o);
/* min_count (max = 0) or max_count (max = 1), 0 when the entry is too short for it. */
size_t spci_opt_count_bound(const struct spc_option *o, int max);
size_t spci_opt_n_choices(const struct spc_option *o);
const struct spc_option *spci_opt_find(const struct spci_table *t, const char *name);

/* Checks a plugin's option table (names, types, bounds, defaults, offsets) when it
 * loads. Errors: -SPC_ECONFIG with the entry named. */
int spci_option_table_check(const struct spc_transport_descriptor *d, char *err, size_t errlen);

/* The typed options struct of one opened transport and the strings/lists it points to. */
struct spci_options;
/* A zeroed options struct of options_size bytes (*opts_out NULL when 0) and its arena. */
int spci_options_new(size_t options_size, struct spci_options **out, void **opts_out);
void spci_options_free(struct spci_options *o);

/* Where spci_apply_* store values: dst NULL = check only. */
struct spci_sink {
    unsigned char *dst;          /* the options struct (offsets are into it) */
    struct spci_options *arena;  /* owner of copied strings and lists */
    int partial;                 /* setter checks: skip required keys and list lengths */
};

/* Checks obj (NULL = absent: defaults) against table t at JSON path path, unknown keys
 * included, and stores every value or default into sk. Errors: -SPC_ECONFIG, -ENOMEM. */
int spci_apply_table(const struct spci_table *t, const struct json_t *obj, const char *path,
                     const struct spci_sink *sk, char *err, size_t errlen);
/* Checks one value against its option o (an entry of t) and stores it. */
int spci_apply_value(const struct spci_table *t, const struct spc_option *o, const struct json_t *v,
                     const char *path, const struct spci_sink *sk, char *err, size_t errlen);
/* "unknown key" for a key that t does not declare, with a hint. */
int spci_unknown_option(const struct spci_table *t, const char *path, const char *key, char *err,
                        size_t errlen);

/* The JSON value of an option's default, or NULL when it has none. */
struct json_t *spci_opt_default_json(const struct spc_option *o);
/* Adds every default that obj lacks (nested objects included). Errors: -ENOMEM. */
int spci_fill_defaults(const struct spci_table *t, struct json_t *obj);

#endif
