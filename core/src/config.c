/* Config objects (config.h): a JSON document parsed, loaded from a file or built from C,
 * with its transport resolved through the loader and its options checked against the
 * transport's option table (options.c).
 *
 * Invariants:
 * - A struct spc_config always has a loaded transport (cfg->plugin) and a stream section
 *   that passed spc_stream_config_check. cfg->options holds only keys the user gave, each
 *   already checked against the option table; defaults are applied when the typed struct
 *   is built, so the table stays the single source of defaults.
 * - Every error message starts with the JSON path of the offending value.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "speadcast/catalogue.h"
#include "loader.h"
#include "options.h"
#include "searchpath.h"
#include "sized.h"
#include "stream_config_internal.h"

struct spc_config {
    char *transport;
    const struct spci_plugin *plugin;
    struct spc_stream_config stream;
    char **plugin_path; /* NULL-terminated, may be NULL */
    json_t *options;    /* object */
};

static struct spci_table plugin_table(const struct spci_plugin *p)
{
    return spci_descriptor_table(p->desc, p->option_stride);
}

const struct spci_plugin *spci_config_plugin(const struct spc_config *cfg)
{
    return cfg->plugin;
}

void spc_config_destroy(struct spc_config *cfg)
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
        spc_config_destroy(cfg);
        return -ENOMEM;
    }
    int rc = spci_plugin_find(transport, (const char *const *)plugin_path, &cfg->plugin, err, errlen);
    if (rc < 0) {
        spc_config_destroy(cfg);
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
    struct spci_table t = plugin_table(cfg->plugin);
    struct spci_sink sk = {.partial = partial};
    return spci_apply_table(&t, options, "options", &sk, err, errlen);
}

static const char *const top_keys[] = {"transport", "stream", "options", "plugin_path"};

/* base_dir (may be NULL): relative plugin_path entries are taken relative to it. */
static int parse_doc(struct spc_config **out, json_t *root, const char *base_dir, char *err,
                     size_t errlen)
{
    if (!json_is_object(root))
        return spci_cfg_fail(err, errlen, "(document): expected an object, got %s", spci_json_type_name(root));
    json_t *jt = NULL, *js = NULL, *jo = NULL, *jp = NULL;
    json_error_t jerr;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s?o, s?o, s?o, s?o}", "transport", &jt, "stream", &js,
                       "options", &jo, "plugin_path", &jp) < 0)
        return spci_strict_unpack_error(err, errlen, "", root, &jerr, top_keys, 4);
    if (!jt)
        return spci_cfg_fail(err, errlen, "transport: missing (required)");
    if (!json_is_string(jt))
        return spci_cfg_fail(err, errlen, "transport: expected a string, got %s", spci_json_type_name(jt));
    const char *tname = json_string_value(jt);
    if (spci_transport_name_check(tname) < 0)
        return spci_cfg_fail(err, errlen, "transport: \"%.80s\" is not a valid transport name "
                    "(letters, digits, '_' and '-', at most 64)", tname);

    char **path = NULL;
    if (jp) {
        if (!json_is_array(jp))
            return spci_cfg_fail(err, errlen, "plugin_path: expected an array, got %s", spci_json_type_name(jp));
        size_t n = json_array_size(jp);
        for (size_t i = 0; i < n; i++)
            if (!json_is_string(json_array_get(jp, i)))
                return spci_cfg_fail(err, errlen, "plugin_path[%zu]: expected a string, got %s", i,
                            spci_json_type_name(json_array_get(jp, i)));
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

    struct spc_stream_config stream;
    int rc = spci_stream_section_parse(js, &stream, err, errlen);
    if (rc < 0) {
        spc_strv_free(path);
        return rc;
    }
    if (jo && !json_is_object(jo)) {
        spc_strv_free(path);
        return spci_cfg_fail(err, errlen, "options: expected an object, got %s", spci_json_type_name(jo));
    }
    struct spc_config *cfg;
    rc = config_new(&cfg, tname, path, err, errlen);
    if (rc < 0)
        return rc;
    cfg->stream = stream;
    if (jo) {
        rc = check_options(cfg, jo, 0, err, errlen);
        if (rc < 0) {
            spc_config_destroy(cfg);
            return rc;
        }
        json_decref(cfg->options);
        cfg->options = json_deep_copy(jo);
        if (!cfg->options) {
            spc_config_destroy(cfg);
            return -ENOMEM;
        }
    } else {
        rc = check_options(cfg, NULL, 0, err, errlen);
        if (rc < 0) {
            spc_config_destroy(cfg);
            return rc;
        }
    }
    *out = cfg;
    return 0;
}

static int parse_error(const json_error_t *jerr, const char *source, char *err, size_t errlen)
{
    return spci_cfg_fail(err, errlen, "%s%sline %d, column %d: invalid JSON: %s", source ? source : "",
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
        spci_cfg_fail(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        json_decref(root);
        spci_cfg_fail(err, errlen, "%s: read error", path);
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
        return spci_cfg_fail(err, errlen, "transport: missing (required)");
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
        spci_sized_in(&(*out)->stream, stream, sizeof (*out)->stream);
    return rc;
}

int spc_config_set_stream(struct spc_config *cfg, const struct spc_stream_config *stream,
                          char *err, size_t errlen)
{
    if (!cfg || !stream)
        return -EINVAL;
    int rc = spc_stream_config_check(stream, err, errlen);
    if (rc == 0) {
        cfg->stream = SPC_STREAM_CONFIG_DEFAULT;
        spci_sized_in(&cfg->stream, stream, sizeof cfg->stream);
    }
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
                        struct spci_table *owner, json_t **parent, const char **leaf, char *path,
                        char *err, size_t errlen)
{
    if (!name)
        return -EINVAL;
    struct spci_table t = plugin_table(cfg->plugin);
    json_t *obj = cfg->options;
    char buf[SPCI_PATH_LEN];
    if (strlen(name) >= sizeof buf)
        return spci_cfg_fail(err, errlen, "options: name too long");
    strcpy(buf, name);
    strcpy(path, "options");
    char *seg = buf;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        const struct spc_option *o = spci_opt_find(&t, seg);
        if (!o)
            return spci_unknown_option(&t, path, seg, err, errlen);
        char np[SPCI_PATH_LEN];
        spci_path_join(np, path, seg);
        strcpy(path, np);
        if (!dot) {
            *opt = o;
            *owner = t;
            *parent = obj;
            *leaf = name + (seg - buf);
            return 0;
        }
        if (o->type != SPC_OPT_OBJECT)
            return spci_cfg_fail(err, errlen, "%s: not an object, has no field \"%s\"", path, dot + 1);
        json_t *sub = json_object_get(obj, seg);
        if (!sub) {
            if (!(sub = json_object()) || json_object_set_new(obj, seg, sub) < 0)
                return -ENOMEM;
        }
        obj = sub;
        t = spci_sub_table(&t, o);
        seg = dot + 1;
    }
}

/* Sets the option called name to v (want 0), or appends v to the list option called name
 * (want SPC_OPT_ENDPOINTS or SPC_OPT_STRINGS), checked against its table entry at once.
 * Works on a copy of the options, so on any error the config is unchanged. Consumes v. */
static int edit_option(struct spc_config *cfg, const char *name, json_t *v, uint32_t want, char *err,
                       size_t errlen)
{
    if (!cfg || !v) {
        json_decref(v);
        return cfg ? -ENOMEM : -EINVAL;
    }
    const struct spc_option *o = NULL;
    struct spci_table owner = {0};
    json_t *parent = NULL;
    const char *leaf = NULL;
    char path[SPCI_PATH_LEN];
    json_t *saved = cfg->options, *copy = json_deep_copy(saved);
    if (!copy) {
        json_decref(v);
        return -ENOMEM;
    }
    cfg->options = copy;
    int rc = resolve_name(cfg, name, &o, &owner, &parent, &leaf, path, err, errlen);
    json_t *value = v; /* what is checked: v, or the list it was appended to */
    if (want) {
        if (rc == 0 && o->type != want)
            rc = spci_cfg_fail(err, errlen, "%s: not a%s list", path,
                               want == SPC_OPT_ENDPOINTS ? "n endpoint" : " string");
        value = rc == 0 ? json_object_get(parent, leaf) : NULL;
        if (rc == 0 && !value && (!(value = json_array()) || json_object_set_new(parent, leaf, value) < 0))
            rc = -ENOMEM;
        if (rc == 0 && json_array_append(value, v) < 0)
            rc = -ENOMEM;
    }
    if (rc == 0) {
        struct spci_sink sk = {.partial = 1};
        rc = spci_apply_value(&owner, o, value, path, &sk, err, errlen);
    }
    if (rc == 0 && !want && json_object_set(parent, leaf, v) < 0)
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
    return edit_option(cfg, name, json_boolean(value), 0, err, errlen);
}

int spc_config_set_int(struct spc_config *cfg, const char *name, int64_t value, char *err, size_t errlen)
{
    return edit_option(cfg, name, json_integer((json_int_t)value), 0, err, errlen);
}

int spc_config_set_uint(struct spc_config *cfg, const char *name, uint64_t value, char *err, size_t errlen)
{
    if (value > INT64_MAX)
        return spci_cfg_fail(err, errlen, "options.%s: %llu is above 9223372036854775807", name ? name : "",
                    (unsigned long long)value);
    return edit_option(cfg, name, json_integer((json_int_t)value), 0, err, errlen);
}

int spc_config_set_double(struct spc_config *cfg, const char *name, double value, char *err,
                          size_t errlen)
{
    if (!isfinite(value))
        return spci_cfg_fail(err, errlen, "options.%s: not a finite number", name ? name : "");
    return edit_option(cfg, name, json_real(value), 0, err, errlen);
}

int spc_config_set_string(struct spc_config *cfg, const char *name, const char *value, char *err,
                          size_t errlen)
{
    if (!value)
        return -EINVAL;
    return edit_option(cfg, name, json_string(value), 0, err, errlen);
}

int spc_config_add_endpoint(struct spc_config *cfg, const char *name, const char *host, unsigned port,
                            char *err, size_t errlen)
{
    if (!host)
        return -EINVAL;
    return edit_option(cfg, name, json_pack("{s:s, s:I}", "host", host, "port", (json_int_t)port),
                       SPC_OPT_ENDPOINTS, err, errlen);
}

int spc_config_add_string(struct spc_config *cfg, const char *name, const char *value, char *err,
                          size_t errlen)
{
    if (!value)
        return -EINVAL;
    return edit_option(cfg, name, json_string(value), SPC_OPT_STRINGS, err, errlen);
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
    struct spci_options *o;
    void *opts;
    if (spci_options_new(cfg->plugin->desc->options_size, &o, &opts) < 0)
        return -ENOMEM;
    struct spci_table t = plugin_table(cfg->plugin);
    struct spci_sink sk = {.dst = opts, .arena = o};
    int rc = opts ? spci_apply_table(&t, cfg->options, "options", &sk, err, errlen)
                  : check_options(cfg, cfg->options, 0, err, errlen);
    if (rc < 0) {
        if (rc == -ENOMEM)
            spci_cfg_fail(err, errlen, "options: out of memory");
        spci_options_free(o);
        return rc;
    }
    *out = o;
    *opts_out = opts;
    return 0;
}

int spc_config_to_json(const struct spc_config *cfg, char **out)
{
    if (!cfg || !out)
        return -EINVAL;
    json_t *opts = json_deep_copy(cfg->options);
    struct spci_table t = plugin_table(cfg->plugin);
    json_t *pp = json_array();
    if (!opts || !pp || spci_fill_defaults(&t, opts) < 0) {
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
    return spci_json_dump(json_pack("{s:s, s:o, s:o, s:o}", "transport", cfg->transport, "stream",
                          spci_stream_section_json(&cfg->stream), "options", opts, "plugin_path", pp),
                out);
}
