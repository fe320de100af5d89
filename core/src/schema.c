/* JSON Schema (draft 2020-12) printed from option tables: each transport's options and
 * the whole config document (catalogue.h, config.h). schemas/ holds what this prints
 * (a test compares them). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cfgjson.h"
#include "endpoint.h"
#include "loader.h"
#include "options.h"
#include "stream_config_internal.h"

static int set_new(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

/* The length or element-count bounds of a string or list option (0 = none). */
static int set_count_bounds(json_t *s, size_t lo, size_t hi, const char *min_key, const char *max_key)
{
    int bad = 0;
    if (lo)
        bad |= set_new(s, min_key, json_integer((json_int_t)lo));
    if (hi)
        bad |= set_new(s, max_key, json_integer((json_int_t)hi));
    return bad;
}

static json_t *table_schema(const struct spci_table *t);

static json_t *option_schema(const struct spci_table *t, const struct spc_option *o)
{
    json_t *s = json_object();
    if (!s)
        return NULL;
    int bad = 0;
    uint32_t f = o->flags;
    size_t lo = spci_opt_count_bound(o, 0), hi = spci_opt_count_bound(o, 1);
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
        if (SPCI_OPT_HAS(o, multiple_of) && o->multiple_of)
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
        bad |= set_count_bounds(s, lo, hi, "minLength", "maxLength");
        if (f & SPC_OPT_IPV4)
            bad |= set_new(s, "pattern", json_string(SPCI_IPV4_PATTERN));
        break;
    case SPC_OPT_ENUM: {
        bad |= set_new(s, "type", json_string("string"));
        json_t *e = json_array();
        for (size_t i = 0, n = spci_opt_n_choices(o); e && i < n; i++)
            bad |= json_array_append_new(e, json_string(o->choices[i]));
        bad |= set_new(s, "enum", e);
        break;
    }
    case SPC_OPT_ENDPOINTS:
    case SPC_OPT_STRINGS: {
        bad |= set_new(s, "type", json_string("array"));
        json_t *items;
        int v4 = (f & SPC_OPT_IPV4) != 0;
        if (o->type == SPC_OPT_ENDPOINTS)
            items = json_pack(
                "{s:[{s:s, s:s}, {s:s, s:{s:{s:s, s:i, s:i, s:s}, s:{s:s, s:i, s:i}}, s:[s, s], s:b}]}",
                "oneOf", "type", "string", "pattern",
                v4 ? SPCI_IPV4_ENDPOINT_PATTERN : SPCI_ENDPOINT_PATTERN, "type", "object",
                "properties", "host", "type", "string", "minLength", 1, "maxLength", SPCI_HOST_MAX,
                "pattern", v4 ? SPCI_IPV4_PATTERN : SPCI_HOST_PATTERN, "port", "type", "integer",
                "minimum", 1, "maximum", 65535, "required", "host", "port",
                "additionalProperties", 0);
        else
            items = json_pack("{s:s}", "type", "string");
        /* STRINGS: bounds on each element (bytes in the parser, characters here). */
        size_t ilo = SPCI_OPT_HAS(o, item_min_length) ? o->item_min_length : 0;
        size_t ihi = SPCI_OPT_HAS(o, item_max_length) ? o->item_max_length : 0;
        if (items)
            bad |= set_count_bounds(items, ilo, ihi, "minLength", "maxLength");
        bad |= set_new(s, "items", items);
        bad |= set_count_bounds(s, lo, hi, "minItems", "maxItems");
        break;
    }
    case SPC_OPT_OBJECT: {
        struct spci_table sub = spci_sub_table(t, o);
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
    json_t *d = spci_opt_default_json(o);
    if (d)
        bad |= set_new(s, "default", d);
    if (bad) {
        json_decref(s);
        return NULL;
    }
    return s;
}

static json_t *table_schema(const struct spci_table *t)
{
    json_t *s = json_object(), *props = json_object(), *req = json_array();
    int bad = !s || !props || !req;
    for (size_t i = 0; !bad && i < t->n; i++) {
        const struct spc_option *o = spci_opt_at(t, i);
        bad |= set_new(props, o->name, option_schema(t, o));
        if (o->flags & SPC_OPT_REQUIRED)
            bad |= json_array_append_new(req, json_string(o->name));
    }
    json_t *one_of = json_array();
    bad |= !one_of;
    for (size_t i = 0; !bad && i < t->n; i++)
        if (spci_opt_at(t, i)->flags & SPC_OPT_ONE_OF)
            bad |= json_array_append_new(one_of, json_pack("{s:[s]}", "required", spci_opt_at(t, i)->name));
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

int spc_config_document_schema(char **out)
{
    if (!out)
        return -EINVAL;
    json_t *stream = table_schema(spci_stream_section_table());
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
    return spci_json_dump(doc, out);
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
    struct spci_table t = spci_descriptor_table(p->desc, p->option_stride);
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
    return spci_json_dump(doc, out);
}
