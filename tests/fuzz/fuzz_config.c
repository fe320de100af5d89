/* libFuzzer target for the JSON config (issue 12): the input is a config document.
 *
 * 1. spc_config_parse: 0, or a clear error (-SPC_ECONFIG, -SPC_EPLUGIN, -ENOMEM) with a
 *    non-empty message.
 * 2. An accepted config prints (spc_config_to_json), the print parses again and prints
 *    the same text (a fixed point), and spc_config_check accepts it.
 * 3. The stream schema and the transport's options schema print and are valid JSON.
 * 4. Every setter runs on every option the printed document names (nested ones as
 *    "outer.inner"), and on names that do not exist, with values taken from the input;
 *    after each the config still prints, and whatever spc_config_check accepts parses
 *    again. spc_config_set_options_json and spc_config_set_stream run too.
 * Transports: the built-in bytes, the build tree's plugins and the loader test fakes
 * (SPEADCAST_PLUGIN_PATH, set in LLVMFuzzerInitialize from SPC_FUZZ_PLUGIN_PATH). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "speadcast/speadcast.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *user, int level, const char *msg)
{
    (void)user, (void)level, (void)msg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("SPEADCAST_PLUGIN_PATH", SPC_FUZZ_PLUGIN_PATH, 1);
    spc_set_log_handler(quiet, NULL);
    return 0;
}

static void check_error(int rc, const char *err)
{
    CHECK(rc == -SPC_ECONFIG || rc == -SPC_EPLUGIN || rc == -ENOMEM || rc == -EINVAL);
    CHECK(memchr(err, '\0', 4096) != NULL && err[0] != '\0');
}

/* A call's result: success, or a clear error. */
static void ok_or_clear(int rc, const char *err)
{
    if (rc < 0)
        check_error(rc, err);
}

/* Prints cfg; when check passes, the print must parse again to the same print. */
static void roundtrip(const struct spc_config *cfg)
{
    char *a = NULL, *b = NULL, err[4096] = "";
    CHECK(spc_config_to_json(cfg, &a) == 0);
    if (spc_config_check(cfg, err, sizeof err) == 0) {
        struct spc_config *again = NULL;
        int rc = spc_config_parse(&again, a, err, sizeof err);
        CHECK(rc == 0);
        CHECK(spc_config_to_json(again, &b) == 0);
        CHECK(strcmp(a, b) == 0);
        spc_config_destroy(again);
    } else {
        check_error(-SPC_ECONFIG, err);
    }
    free(a);
    free(b);
}

static void check_schemas(const char *transport)
{
    char *s = NULL, err[4096] = "";
    CHECK(spc_config_document_schema(&s) == 0);
    json_t *j = json_loads(s, 0, NULL);
    CHECK(j != NULL);
    json_decref(j);
    free(s);
    s = NULL;
    if (spc_transport_schema(transport, NULL, &s, err, sizeof err) == 0) {
        j = json_loads(s, 0, NULL);
        CHECK(j != NULL);
        json_decref(j);
        free(s);
    }
}

/* Values for the setters, taken from the input so the fuzzer steers them. */
struct vals {
    const uint8_t *p;
    size_t n, i;
};

static uint64_t next_u64(struct vals *v)
{
    uint64_t x = 0;
    for (int k = 0; k < 8; k++)
        x = x << 8 | (v->n ? v->p[v->i++ % v->n] : 0);
    return x;
}

static void next_str(struct vals *v, char *out, size_t cap)
{
    size_t len = v->n ? v->p[v->i++ % v->n] % cap : 0;
    for (size_t k = 0; k < len; k++)
        out[k] = (char)(v->n ? v->p[v->i++ % v->n] : 'a');
    out[len] = '\0';
}

static void set_all(struct spc_config *cfg, const char *name, struct vals *v)
{
    char err[4096], s[96];
    uint64_t u = next_u64(v);
    double d;
    memcpy(&d, &u, sizeof d);
    static const int64_t ints[] = {0, -1, 1, INT64_MIN, INT64_MAX, 255, 256, 65535, 65536};
    static const double dbls[] = {0.0, -0.0, 1e308, -1e-308, 1.05, NAN, INFINITY};
    ok_or_clear(spc_config_set_bool(cfg, name, u & 1, err, sizeof err), err);
    ok_or_clear(spc_config_set_int(cfg, name, u & 2 ? (int64_t)u : ints[u % 9], err, sizeof err), err);
    ok_or_clear(spc_config_set_uint(cfg, name, u & 4 ? u : (uint64_t)ints[(u >> 8) % 9], err, sizeof err),
                err);
    ok_or_clear(spc_config_set_double(cfg, name, u & 8 ? d : dbls[(u >> 16) % 7], err, sizeof err), err);
    next_str(v, s, sizeof s);
    ok_or_clear(spc_config_set_string(cfg, name, s, err, sizeof err), err);
    next_str(v, s, sizeof s);
    ok_or_clear(spc_config_add_endpoint(cfg, name, s, (unsigned)(u >> 32), err, sizeof err), err);
    next_str(v, s, sizeof s);
    ok_or_clear(spc_config_add_string(cfg, name, s, err, sizeof err), err);
    roundtrip(cfg);
}

/* Runs the setters on every key of obj (prefix.key for nested objects). */
static void set_keys(struct spc_config *cfg, json_t *obj, const char *prefix, struct vals *v, int depth)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
        set_all(cfg, name, v);
        if (json_is_object(val) && depth < 4)
            set_keys(cfg, val, name, v, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    struct spc_config *cfg = NULL;
    char err[4096] = "";
    int rc = spc_config_parse(&cfg, text, err, sizeof err);
    if (rc < 0) {
        CHECK(cfg == NULL);
        check_error(rc, err);
        free(text);
        return 0;
    }
    roundtrip(cfg);
    check_schemas(spc_config_transport(cfg));

    char *printed = NULL;
    CHECK(spc_config_to_json(cfg, &printed) == 0);
    json_t *doc = json_loads(printed, 0, NULL);
    CHECK(doc != NULL);
    struct vals v = {data, size, 0};
    json_t *opts = json_object_get(doc, "options");
    if (json_is_object(opts)) {
        set_keys(cfg, opts, "", &v, 0);
        /* The whole options object again, as text, and names that do not exist. */
        char *ot = json_dumps(opts, JSON_COMPACT);
        CHECK(ot != NULL);
        ok_or_clear(spc_config_set_options_json(cfg, ot, err, sizeof err), err);
        free(ot);
    }
    set_all(cfg, "no_such_option", &v);
    set_all(cfg, "a.b.c", &v);
    set_all(cfg, "", &v);

    struct spc_stream_config sc = *spc_config_stream(cfg);
    uint64_t u = next_u64(&v);
    sc.max_packet_size = (size_t)(u & 0xffffff);
    sc.max_heaps = (size_t)(u >> 24 & 0xff);
    sc.flavour.heap_address_bits = (unsigned)(u >> 40 & 0x7f);
    ok_or_clear(spc_config_set_stream(cfg, &sc, err, sizeof err), err);
    roundtrip(cfg);

    json_decref(doc);
    free(printed);
    spc_config_destroy(cfg);
    free(text);
    return 0;
}
