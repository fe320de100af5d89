/* The JSON stream config: the good/bad corpus in tests/configs (the same files
 * config_corpus_jsonschema checks with python3-jsonschema), defaults, typed options as
 * a plugin receives them, the C-struct and setter API, files, and logging. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "testutil.h"

#define FAKES SPC_TEST_BINARY_DIR "/tests/loader/plugins"
#define CORPUS SPC_TEST_SOURCE_DIR "/tests/configs"

static void use_fakes(void)
{
    setenv("SPEADCAST_PLUGIN_PATH", FAKES, 1);
}

TestSuite(config, .init = use_fakes);

/* Sorted *.json names in dir. */
static size_t list_json(const char *dir, char names[][128], size_t max)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json") && l < 128)
            strcpy(names[n++], e->d_name);
    }
    closedir(d);
    qsort(names, n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

Test(config, corpus_good)
{
    static char names[256][128];
    size_t n = list_json(CORPUS "/good", names, 256);
    cr_assert_gt(n, 5);
    for (size_t i = 0; i < n; i++) {
        char path[512], err[2048] = "";
        snprintf(path, sizeof path, CORPUS "/good/%s", names[i]);
        struct spc_config *cfg = NULL;
        int rc = spc_config_load(&cfg, path, err, sizeof err);
        cr_expect_eq(rc, 0, "%s rejected: %s", names[i], err);
        if (rc == 0) {
            cr_expect_eq(spc_config_check(cfg, err, sizeof err), 0, "%s: %s", names[i], err);
            /* And it opens: options become a typed struct the transport accepts. */
            struct spc_transport_handle *h;
            cr_expect_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s: %s", names[i], err);
            spc_transport_handle_close(h);
        }
        spc_config_destroy(cfg);
    }
}

Test(config, corpus_bad)
{
    static char names[256][128];
    size_t n = list_json(CORPUS "/bad", names, 256);
    cr_assert_gt(n, 20);
    for (size_t i = 0; i < n; i++) {
        char path[512], err[4096] = "";
        snprintf(path, sizeof path, CORPUS "/bad/%s", names[i]);
        char expect_path[512];
        snprintf(expect_path, sizeof expect_path, CORPUS "/bad/%.*s.expect", (int)strlen(names[i]) - 5, names[i]);
        char *expect = tu_read_file(expect_path, NULL);
        cr_assert_not_null(expect, "%s has no .expect file", names[i]);
        expect[strcspn(expect, "\n")] = '\0';
        struct spc_config *cfg = NULL;
        int rc = spc_config_load(&cfg, path, err, sizeof err);
        cr_expect(rc == -SPC_ECONFIG || rc == -SPC_EPLUGIN, "%s: rc %d", names[i], rc);
        cr_expect_null(cfg);
        cr_expect(strstr(err, expect) != NULL, "%s:\n  got:  %s\n  want: %s", names[i], err, expect);
        /* Every message starts with the file, then the JSON path or the transport. */
        spc_config_destroy(cfg);
        free(expect);
    }
}

Test(config, defaults_are_spec_section_3)
{
    struct spc_config *cfg;
    char err[512];
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"bytes\"}", err, sizeof err), 0, "%s", err);
    const struct spc_stream_config *s = spc_config_stream(cfg);
    cr_expect_eq(s->max_packet_size, 1472);
    cr_expect_eq(s->rate, 0.0);
    cr_expect_eq(s->burst_size, 65536);
    cr_expect_eq(s->max_heaps, 4);
    cr_expect_eq(s->burst_rate_ratio, 1.05);
    cr_expect_eq(s->rate_method, SPC_RATE_METHOD_AUTO);
    cr_expect_eq(s->on_full, SPC_ON_FULL_FAIL);
    cr_expect_eq(s->flavour.heap_address_bits, 40);
    cr_expect_eq(s->flavour.bug_compat, 0);
    struct spc_stream_config d = SPC_STREAM_CONFIG_DEFAULT;
    cr_expect_eq(memcmp(&d.flavour, &s->flavour, sizeof d.flavour), 0);
    cr_expect_eq(d.max_packet_size, s->max_packet_size);
    cr_expect_eq(d.burst_rate_ratio, s->burst_rate_ratio);
    spc_config_destroy(cfg);
}

Test(config, stream_values_parsed)
{
    struct spc_config *cfg;
    char err[512];
    cr_assert_eq(spc_config_load(&cfg, CORPUS "/good/bytes_full.json", err, sizeof err), 0, "%s", err);
    const struct spc_stream_config *s = spc_config_stream(cfg);
    cr_expect_eq(s->max_packet_size, 9000);
    cr_expect_eq(s->rate, 1.25e9);
    cr_expect_eq(s->burst_size, 131072);
    cr_expect_eq(s->max_heaps, 16);
    cr_expect_eq(s->burst_rate_ratio, 1.1);
    cr_expect_eq(s->rate_method, SPC_RATE_METHOD_SW);
    cr_expect_eq(s->on_full, SPC_ON_FULL_BLOCK);
    cr_expect_eq(s->flavour.heap_address_bits, 48);
    cr_expect_eq(s->flavour.bug_compat, 7);
    spc_config_destroy(cfg);
}

/* What optdemo's open received, from its last-error text. */
static char *opened_with(const struct spc_config *cfg, unsigned *n_sub)
{
    struct spc_transport_handle *h;
    char err[1024];
    cr_assert_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s", err);
    char *s = strdup(tu_handle_err(h));
    if (n_sub)
        *n_sub = spc_transport_handle_n_substreams(h);
    spc_transport_handle_close(h);
    return s;
}

Test(config, typed_options_from_json)
{
    struct spc_config *cfg;
    char err[512];
    cr_assert_eq(spc_config_load(&cfg, CORPUS "/good/optdemo_full.json", err, sizeof err), 0, "%s", err);
    unsigned n;
    char *got = opened_with(cfg, &n);
    cr_expect_str_eq(got, "endpoints=239.1.2.3/7148,receiver.example/65535,ff02::1/1,::1/9;buffer_size=0;"
                          "offset=-100;ttl=255;ratio=1;gso=0;interface_address=10.0.0.1;mode=async;"
                          "queues=a,b,;batch=1024;busy_poll=1;step=12;mps=1472");
    cr_expect_eq(n, 4);
    free(got);
    spc_config_destroy(cfg);
}

Test(config, typed_options_defaults)
{
    struct spc_config *cfg;
    char err[512];
    cr_assert_eq(spc_config_load(&cfg, CORPUS "/good/optdemo_minimal.json", err, sizeof err), 0, "%s", err);
    char *got = opened_with(cfg, NULL);
    cr_expect_str_eq(got, "endpoints=127.0.0.1/8888;buffer_size=524288;offset=0;ttl=1;ratio=0.5;gso=1;"
                          "interface_address=(null);mode=blocking;queues=;batch=64;busy_poll=0;step=8;mps=1472");
    free(got);
    spc_config_destroy(cfg);
}

Test(config, from_c_structs_and_setters)
{
    struct spc_stream_config s = SPC_STREAM_CONFIG_DEFAULT;
    s.max_packet_size = 8972;
    struct spc_config *cfg;
    char err[1024];
    const char *pp[] = {FAKES, NULL};
    unsetenv("SPEADCAST_PLUGIN_PATH");
    cr_assert_eq(spc_config_create(&cfg, "optdemo", &s, pp, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_config_check(cfg, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.endpoints: missing (required)");

    cr_assert_eq(spc_config_add_endpoint(cfg, "endpoints", "10.0.0.1", 7148, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_config_add_endpoint(cfg, "endpoints", "10.0.0.2", 70000, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.endpoints[1].port: 70000 is above 65535");
    cr_expect_eq(spc_config_add_endpoint(cfg, "ttl", "h", 1, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.ttl: not an endpoint list");
    cr_expect_eq(spc_config_set_uint(cfg, "ttl", 300, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.ttl: 300 is above 255");
    cr_expect_eq(spc_config_set_uint(cfg, "tll", 3, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.tll: unknown key (did you mean \"ttl\"?)");
    cr_expect_eq(spc_config_set_bool(cfg, "ttl", true, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.ttl: expected an integer, got true");
    cr_expect_eq(spc_config_set_uint(cfg, "tuning.batch", 0, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.tuning.batch: 0 is below 1");
    cr_expect_eq(spc_config_set_uint(cfg, "tuning.bach", 2, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.tuning.bach: unknown key (did you mean \"batch\"?)");
    cr_expect_eq(spc_config_set_uint(cfg, "ttl.x", 2, err, sizeof err), -SPC_ECONFIG);
    cr_expect_eq(spc_config_set_string(cfg, "mode", "turbo", err, sizeof err), -SPC_ECONFIG);
    cr_expect_eq(spc_config_set_double(cfg, "ratio", NAN, err, sizeof err), -SPC_ECONFIG);

    cr_assert_eq(spc_config_add_endpoint(cfg, "endpoints", "::1", 9, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_uint(cfg, "ttl", 4, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_int(cfg, "offset", -5, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_double(cfg, "ratio", 0.25, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_bool(cfg, "gso", false, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_string(cfg, "mode", "async", err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_string(cfg, "interface_address", "10.1.1.1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_add_string(cfg, "queues", "q1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_add_string(cfg, "queues", "q2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_uint(cfg, "tuning.batch", 8, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_bool(cfg, "tuning.busy_poll", true, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_check(cfg, err, sizeof err), 0, "%s", err);
    unsigned n;
    char *got = opened_with(cfg, &n);
    cr_expect_str_eq(got, "endpoints=10.0.0.1/7148,::1/9;buffer_size=524288;offset=-5;ttl=4;ratio=0.25;gso=0;"
                          "interface_address=10.1.1.1;mode=async;queues=q1,q2;batch=8;busy_poll=1;step=8;mps=8972");
    cr_expect_eq(n, 2);
    free(got);

    /* Replacing the options wholesale; a bad replacement changes nothing. */
    cr_expect_eq(spc_config_set_options_json(cfg, "{\"endpoints\": [\"h:1\"], \"ttl\": 999}", err, sizeof err),
                 -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.ttl: 999 is above 255");
    cr_expect_eq(spc_config_set_options_json(cfg, "{\"endpoints\": [\"h:1\"", err, sizeof err), -SPC_ECONFIG);
    cr_expect(strstr(err, "options: line 1") != NULL, "%s", err);
    got = opened_with(cfg, NULL);
    cr_expect(strstr(got, "ttl=4;") != NULL, "%s", got);
    free(got);
    cr_assert_eq(spc_config_set_options_json(cfg, "{\"endpoints\": [\"h:1\"]}", err, sizeof err), 0, "%s", err);
    got = opened_with(cfg, NULL);
    cr_expect(strstr(got, "endpoints=h/1;") && strstr(got, "ttl=1;"), "%s", got);
    free(got);

    /* The list bound checked at use: 5 endpoints. */
    for (unsigned i = 0; i < 4; i++)
        cr_assert_eq(spc_config_add_endpoint(cfg, "endpoints", "h", 2 + i, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_config_check(cfg, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "options.endpoints: 5 elements, at most 4 allowed");
    struct spc_transport_handle *h = NULL;
    cr_expect_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), -SPC_ECONFIG);
    cr_expect_null(h);
    spc_config_destroy(cfg);
}

Test(config, stream_struct_checks)
{
    char err[512];
    struct spc_stream_config s = SPC_STREAM_CONFIG_DEFAULT;
    cr_expect_eq(spc_stream_config_check(&s, err, sizeof err), 0, "%s", err);
    s.max_heaps = 0;
    cr_expect_eq(spc_stream_config_check(&s, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "stream.max_heaps: 0 is below 1");
    s = SPC_STREAM_CONFIG_DEFAULT;
    s.rate = INFINITY;
    cr_expect_eq(spc_stream_config_check(&s, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "stream.rate: not a finite number");
    s = SPC_STREAM_CONFIG_DEFAULT;
    s.rate = -5;
    cr_expect_eq(spc_stream_config_check(&s, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "stream.rate: -5 is below 0");
    s = SPC_STREAM_CONFIG_DEFAULT;
    s.flavour.heap_address_bits = 44;
    cr_expect_eq(spc_stream_config_check(&s, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "stream.flavour.heap_address_bits: 44 is not a multiple of 8");
    s = SPC_STREAM_CONFIG_DEFAULT;
    s.rate_method = (enum spc_rate_method)7;
    cr_expect_eq(spc_stream_config_check(&s, err, sizeof err), -SPC_ECONFIG);
    s = SPC_STREAM_CONFIG_DEFAULT;
    s.max_packet_size = 40;
    struct spc_config *cfg = NULL;
    cr_expect_eq(spc_config_create(&cfg, "bytes", &s, NULL, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "stream.max_packet_size: 40 is below 56");
    cr_expect_null(cfg);
    cr_assert_eq(spc_config_create(&cfg, "bytes", NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_config_set_stream(cfg, &s, err, sizeof err), -SPC_ECONFIG);
    cr_expect_eq(spc_config_stream(cfg)->max_packet_size, 1472, "a failed set changed the config");
    s.max_packet_size = 9000;
    cr_expect_eq(spc_config_set_stream(cfg, &s, err, sizeof err), 0);
    cr_expect_eq(spc_config_stream(cfg)->max_packet_size, 9000);
    spc_config_destroy(cfg);
    cr_expect_eq(spc_config_create(&cfg, "nosuch", NULL, NULL, err, sizeof err), -SPC_EPLUGIN);
    cr_expect_eq(spc_config_create(&cfg, NULL, NULL, NULL, err, sizeof err), -SPC_ECONFIG);
    cr_expect_str_eq(err, "transport: missing (required)");
}

Test(config, to_json_round_trips_with_defaults)
{
    struct spc_config *cfg, *again;
    char err[512], *a, *b;
    cr_assert_eq(spc_config_load(&cfg, CORPUS "/good/optdemo_full.json", err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_to_json(cfg, &a), 0);
    cr_assert_eq(spc_config_parse(&again, a, err, sizeof err), 0, "%s\n%s", err, a);
    cr_assert_eq(spc_config_to_json(again, &b), 0);
    cr_expect_str_eq(a, b);
    spc_config_destroy(again);
    spc_config_destroy(cfg);
    free(a);
    free(b);
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"bytes\"}", err, sizeof err), 0);
    cr_assert_eq(spc_config_to_json(cfg, &a), 0);
    cr_expect(strstr(a, "\"burst_rate_ratio\": 1.05") && strstr(a, "\"initial_capacity\": 65536") &&
                  strstr(a, "\"rate_method\": \"auto\"") && strstr(a, "\"heap_address_bits\": 40"),
              "%s", a);
    free(a);
    spc_config_destroy(cfg);
}

Test(config, files)
{
    struct spc_config *cfg = NULL;
    char err[1024];
    cr_expect_eq(spc_config_load(&cfg, "/nonexistent/cfg.json", err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "/nonexistent/cfg.json") != NULL, "%s", err);
    cr_expect_null(cfg);
    /* Relative plugin_path entries are relative to the file. */
    unsetenv("SPEADCAST_PLUGIN_PATH");
    const char *path = SPC_TEST_BINARY_DIR "/tests/loader/relative.json";
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"transport\": \"optdemo\", \"plugin_path\": [\"plugins\"], \"options\": {\"endpoints\": [\"a:1\"]}}\n", f);
    fclose(f);
    cr_expect_eq(spc_config_load(&cfg, path, err, sizeof err), 0, "%s", err);
    spc_config_destroy(cfg);
    remove(path);
    /* Invalid JSON: line and column. */
    cr_expect_eq(spc_config_parse(&cfg, "{\n  \"transport\": bytes\n}", err, sizeof err), -SPC_ECONFIG);
    cr_expect(strstr(err, "line 2, column") && strstr(err, "invalid JSON"), "%s", err);
    cr_expect_eq(spc_config_parse(&cfg, "{\"transport\": \"bytes\", \"transport\": \"bytes\"}", err, sizeof err),
                 -SPC_ECONFIG);
    cr_expect(strstr(err, "duplicate object key") != NULL, "%s", err);
    cr_expect_eq(spc_config_parse(NULL, "{}", err, sizeof err), -EINVAL);
    /* A tiny error buffer is filled and terminated, never overrun. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    cr_expect_eq(spc_config_parse(&cfg, "{}", tiny, sizeof tiny), -SPC_ECONFIG);
    cr_expect_str_eq(tiny, "transpo");
    cr_expect_eq(spc_config_parse(&cfg, "{}", NULL, 0), -SPC_ECONFIG);
}

static char last_msg[512];
static int last_level = -1;
static void keep(void *user, int level, const char *msg)
{
    *(int *)user += 1;
    last_level = level;
    snprintf(last_msg, sizeof last_msg, "%s", msg);
}

Test(config, log_handler_and_level)
{
    int calls = 0;
    spc_set_log_handler(keep, &calls);
    spc_set_log_level(SPC_LOG_ERROR);
    cr_expect_eq(spc_log_level(), SPC_LOG_ERROR);
    struct spc_config *cfg;
    char err[512];
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"openfail\"}", err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h;
    cr_expect_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), -ECONNREFUSED);
    cr_expect_eq(calls, 1);
    cr_expect_eq(last_level, SPC_LOG_ERROR);
    cr_expect_str_eq(last_msg, "openfail: fake openfail open failed");
    spc_set_log_handler(NULL, NULL);
    spc_set_log_level(99);
    cr_expect_eq(spc_log_level(), SPC_LOG_DEBUG);
    spc_set_log_level(SPC_LOG_WARNING);
    cr_expect_str_eq(spc_log_level_name(SPC_LOG_INFO), "info");
    cr_expect_str_eq(spc_log_level_name(9), "unknown");
    spc_config_destroy(cfg);
}
