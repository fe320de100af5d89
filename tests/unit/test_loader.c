/* The transport loader (search order, broken plugins, residency, catalogue), transport
 * handles over synchronous and asynchronous transports, and the built-in bytes transport.
 * The fake plugins live in tests/loader/ and are built into
 * <build>/tests/loader/plugins (and plugins2 for duplicates). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "speadcast/transport.h"
#include "testutil.h"
#include "vectorcase.h"

#define FAKES SPC_TEST_BINARY_DIR "/tests/loader/plugins"
#define FAKES2 SPC_TEST_BINARY_DIR "/tests/loader/plugins2"

static void clean_env(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
}

/* Parses {"transport": name, "plugin_path": [dirs...]} (+ extra JSON members). */
static int parse_with(const char *name, const char *dirs_json, const char *extra, struct spc_config **out,
                      char *err, size_t errlen)
{
    char doc[2048];
    snprintf(doc, sizeof doc, "{\"transport\": \"%s\", \"plugin_path\": %s%s%s}", name,
             dirs_json ? dirs_json : "[]", extra ? ", " : "", extra ? extra : "");
    return spc_config_parse(out, doc, err, errlen);
}

static void expect_load_error(const char *name, const char *needle)
{
    struct spc_config *cfg = NULL;
    char err[4096] = "";
    int rc = parse_with(name, "[\"" FAKES "\"]", NULL, &cfg, err, sizeof err);
    cr_assert_eq(rc, -SPC_EPLUGIN, "%s: rc %d (%s)", name, rc, err);
    cr_assert_null(cfg);
    cr_expect(strstr(err, needle) != NULL, "%s: '%s' not in: %s", name, needle, err);
    char file[512];
    snprintf(file, sizeof file, FAKES "/speadcast-%s.so", name);
    cr_expect(strstr(err, file) != NULL, "%s: error does not name the file: %s", name, err);
    cr_expect(strstr(err, "Available transports:") && strstr(err, "bytes") && strstr(err, "optdemo"),
              "%s: error does not list what is available: %s", name, err);
}

TestSuite(loader, .init = clean_env);

Test(loader, builtin_bytes_needs_no_path)
{
    struct spc_config *cfg;
    char err[512];
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"bytes\"}", err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(spc_config_transport(cfg), "bytes");
    spc_config_destroy(cfg);
}

Test(loader, unknown_name_lists_files_and_available)
{
    struct spc_config *cfg = NULL;
    char err[4096];
    int rc = parse_with("nosuch", "[\"" FAKES "\", \"/nonexistent/dir\"]", NULL, &cfg, err, sizeof err);
    cr_assert_eq(rc, -SPC_EPLUGIN);
    cr_expect(strstr(err, "transport \"nosuch\" not found") != NULL, "%s", err);
    cr_expect(strstr(err, FAKES "/speadcast-nosuch.so: No such file") != NULL, "%s", err);
    cr_expect(strstr(err, "/nonexistent/dir/speadcast-nosuch.so") != NULL, "%s", err);
    cr_expect(strstr(err, "Available transports: bytes,") != NULL, "%s", err);
    cr_expect(strstr(err, "optdemo") != NULL, "%s", err);
}

Test(loader, invalid_name_is_config_error)
{
    struct spc_config *cfg = NULL;
    char err[512];
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"a/b\"}", err, sizeof err), -SPC_ECONFIG);
    cr_expect(strstr(err, "not a valid transport name") != NULL, "%s", err);
    cr_assert_eq(spc_config_create(&cfg, "", NULL, NULL, err, sizeof err), -SPC_ECONFIG);
}

Test(loader, missing_entry_symbol)
{
    expect_load_error("noentry", "no entry point spc_transport_entry_v1");
}

Test(loader, wrong_abi_major)
{
    expect_load_error("abi2", "wrong ABI: no entry point spc_transport_entry_v1, it exports "
                              "spc_transport_entry_v2 (plugin ABI 2, this core speaks ABI 1)");
}

Test(loader, short_struct_size)
{
    expect_load_error("short", "descriptor struct_size 24 is below the ABI 1 minimum");
}

Test(loader, missing_mandatory_op)
{
    expect_load_error("nosend", "mandatory op send is NULL");
}

Test(loader, async_without_poll)
{
    expect_load_error("asyncnopoll", "declares SPC_TRANSPORT_CAP_ASYNC but lacks the flush or poll op");
}

Test(loader, object_smaller_than_base)
{
    expect_load_error("tiny", "object_size 8 is smaller than struct spc_transport");
}

Test(loader, bad_option_table)
{
    expect_load_error("badtable", "bad option table: level: default outside its own bounds");
}

Test(loader, unresolved_symbol_fails_at_load)
{
    expect_load_error("unresolved", "undefined symbol: spcfakedep_missing");
}

Test(loader, name_must_match_file)
{
    expect_load_error("alias", "declares transport \"dup\" but the file is named for \"alias\"");
}

/* Log capture for the fakes' "fake <name> <version> open/close" lines. */
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static char captured[8192];

static void capture(void *user, int level, const char *msg)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&cap_lock);
    size_t n = strlen(captured);
    snprintf(captured + n, sizeof captured - n, "%s\n", msg);
    pthread_mutex_unlock(&cap_lock);
}

Test(loader, open_failure_skips_close)
{
    spc_set_log_handler(capture, NULL);
    struct spc_config *cfg;
    char err[1024];
    cr_assert_eq(parse_with("openfail", "[\"" FAKES "\"]", NULL, &cfg, err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h = NULL;
    int rc = spc_transport_handle_open(&h, cfg, err, sizeof err);
    cr_assert_eq(rc, -ECONNREFUSED, "rc %d", rc);
    cr_assert_null(h);
    cr_expect(strstr(err, "transport \"openfail\": open failed") != NULL, "%s", err);
    cr_expect(strstr(err, "cannot reach the moon from here") != NULL, "%s", err);
    spc_config_destroy(cfg);
    spc_set_log_handler(NULL, NULL);
    cr_expect(strstr(captured, "openfail: fake openfail open failed") != NULL, "%s", captured);
    cr_expect(strstr(captured, "close") == NULL, "close ran after a failed open: %s", captured);
}

Test(loader, open_and_close_pair)
{
    spc_set_log_handler(capture, NULL);
    struct spc_config *cfg;
    char err[1024];
    cr_assert_eq(parse_with("dup", "[\"" FAKES "\"]", NULL, &cfg, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 3; i++) {
        struct spc_transport_handle *h;
        cr_assert_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s", err);
        spc_transport_handle_close(h);
    }
    spc_config_destroy(cfg);
    spc_set_log_handler(NULL, NULL);
    size_t opens = 0, closes = 0;
    for (const char *p = captured; (p = strstr(p, "fake dup open")); p++)
        opens++;
    for (const char *p = captured; (p = strstr(p, "fake dup close (opened=1)")); p++)
        closes++;
    cr_expect_eq(opens, 3, "%s", captured);
    cr_expect_eq(closes, 3, "%s", captured);
}

/* Opens "dup" with the given plugin_path and returns which copy ran (its version). */
static const char *dup_opened(const char *dirs_json)
{
    captured[0] = '\0';
    spc_set_log_handler(capture, NULL);
    struct spc_config *cfg;
    char err[2048];
    cr_assert_eq(parse_with("dup", dirs_json, NULL, &cfg, err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h;
    cr_assert_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s", err);
    spc_transport_handle_close(h);
    spc_config_destroy(cfg);
    spc_set_log_handler(NULL, NULL);
    return strstr(captured, "fake dup open, version first")    ? "first"
           : strstr(captured, "fake dup open, version second") ? "second"
                                                                : "none";
}

Test(loader, search_order_plugin_path_then_env)
{
    setenv("SPEADCAST_PLUGIN_PATH", FAKES, 1);
    cr_expect_str_eq(dup_opened("[\"" FAKES2 "\"]"), "second");
    cr_expect_str_eq(dup_opened("[]"), "first");
}

Test(loader, search_order_env_then_beside_library)
{
    setenv("SPEADCAST_PLUGIN_PATH", FAKES2, 1);
    cr_expect_str_eq(dup_opened("[\"" FAKES "\"]"), "first");
    cr_expect_str_eq(dup_opened("[]"), "second");
}

Test(loader, catalogue_marks_shadowed_duplicates)
{
    setenv("SPEADCAST_PLUGIN_PATH", FAKES, 1);
    const char *path2[] = {FAKES2, NULL};
    struct spc_transport_info *list;
    size_t n;
    cr_assert_eq(spc_transport_list(path2, &list, &n), 0);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, "dup"))
            continue;
        if (!seen++) {
            cr_expect_eq(list[i].status, 0);
            cr_expect_str_eq(list[i].version, "second");
            cr_expect(strstr(list[i].path, "/plugins2/") != NULL);
        } else {
            cr_expect_eq(list[i].status, -EEXIST);
            cr_expect(strstr(list[i].path, "/plugins/") != NULL);
            cr_expect(strstr(list[i].message, "shadowed by ") && strstr(list[i].message, "/plugins2/"),
                      "%s", list[i].message);
        }
    }
    cr_expect_eq(seen, 2);
    spc_transport_list_free(list, n);
}

Test(loader, env_used_without_plugin_path)
{
    setenv("SPEADCAST_PLUGIN_PATH", "/nonexistent:" FAKES2 ":" FAKES, 1);
    struct spc_config *cfg;
    char err[2048];
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"optdemo\", \"options\": {\"endpoints\": [\"a:1\"]}}",
                                  err, sizeof err),
                 0, "%s", err);
    spc_config_destroy(cfg);
    unsetenv("SPEADCAST_PLUGIN_PATH");
    cr_expect_eq(spc_config_parse(&cfg, "{\"transport\": \"optdemo\"}", err, sizeof err), -SPC_EPLUGIN);
}

Test(loader, plugin_dirs_order)
{
    setenv("SPEADCAST_PLUGIN_PATH", "/env/a::/env/b:/first", 1);
    const char *pp[] = {"/first", "/second", "", NULL};
    char **dirs;
    cr_assert_eq(spc_plugin_dirs(pp, &dirs), 0);
    size_t n = 0;
    while (dirs[n])
        n++;
    cr_assert_eq(n, 6, "got %zu dirs", n);
    cr_expect_str_eq(dirs[0], "/first");
    cr_expect_str_eq(dirs[1], "/second");
    cr_expect_str_eq(dirs[2], "/env/a");
    cr_expect_str_eq(dirs[3], "/env/b");
    /* Beside the library: the build tree's core/speadcast/plugins. */
    cr_expect(strstr(dirs[4], "/core/speadcast/plugins") != NULL, "%s", dirs[4]);
    cr_expect(strstr(dirs[5], "/speadcast/plugins") != NULL, "%s", dirs[5]);
    spc_strv_free(dirs);
}

Test(loader, builtin_shadows_plugin_files)
{
    struct spc_config *cfg;
    char err[1024];
    cr_assert_eq(parse_with("bytes", "[\"" FAKES2 "\"]", NULL, &cfg, err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h;
    cr_assert_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s", err);
    const uint8_t *data;
    size_t len;
    cr_expect_eq(spc_bytes_handle_data(h, &data, &len), 0, "the impostor was loaded");
    spc_transport_handle_close(h);
    spc_config_destroy(cfg);

    const char *pp[] = {FAKES2, NULL};
    struct spc_transport_info *list;
    size_t n;
    cr_assert_eq(spc_transport_list(pp, &list, &n), 0);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(list[0].name, "bytes");
    cr_expect(list[0].builtin);
    cr_expect_null(list[0].path);
    int shadowed = 0;
    for (size_t i = 1; i < n; i++)
        if (!strcmp(list[i].name, "bytes")) {
            shadowed = 1;
            cr_expect_eq(list[i].status, -EEXIST);
            cr_expect_str_eq(list[i].message, "shadowed by the built-in transport");
        }
    cr_expect(shadowed);
    spc_transport_list_free(list, n);
}

Test(loader, catalogue_reports_each_result)
{
    const char *pp[] = {FAKES, NULL};
    struct spc_transport_info *list;
    size_t n;
    cr_assert_eq(spc_transport_list(pp, &list, &n), 0);
    static const struct {
        const char *name;
        int status;
        unsigned abi;
    } want[] = {
        {"abi2", -SPC_EPLUGIN, 2}, {"alias", -SPC_EPLUGIN, 1}, {"noentry", -SPC_EPLUGIN, 0},
        {"nosend", -SPC_EPLUGIN, 1}, {"short", -SPC_EPLUGIN, 1}, {"unresolved", -SPC_EPLUGIN, 0},
        {"optdemo", 0, 1}, {"fakeasync", 0, 1}, {"openfail", 0, 1},
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        size_t i = 0;
        while (i < n && strcmp(list[i].name, want[w].name))
            i++;
        cr_assert_lt(i, n, "%s not listed", want[w].name);
        cr_expect_eq(list[i].status, want[w].status, "%s: status %d", want[w].name, list[i].status);
        cr_expect_eq(list[i].abi_major, want[w].abi, "%s: abi %u", want[w].name, list[i].abi_major);
        cr_expect(strstr(list[i].path, "/speadcast-") != NULL);
        if (want[w].status)
            cr_expect(list[i].message && *list[i].message, "%s has no reason", want[w].name);
        else
            cr_expect(list[i].version && list[i].description);
    }
    size_t i = 0;
    while (i < n && strcmp(list[i].name, "optdemo"))
        i++;
    cr_expect_str_eq(list[i].version, "2.3.4");
    cr_expect_eq(list[i].max_substreams, 4);
    spc_transport_list_free(list, n);
}

struct race_arg {
    int id;
    int failures;
};

static void *race(void *p)
{
    struct race_arg *a = p;
    static const char *names[] = {"optdemo", "bytes", "nosuch", "fakeasync", "abi2", "dup"};
    static const int want[] = {0, 0, -SPC_EPLUGIN, 0, -SPC_EPLUGIN, 0};
    for (int it = 0; it < 25; it++) {
        size_t k = (size_t)(a->id + it) % 6;
        struct spc_config *cfg = NULL;
        char err[4096];
        int rc = parse_with(names[k], "[\"" FAKES "\"]",
                            k == 0 ? "\"options\": {\"endpoints\": [\"h:1\"]}" : NULL, &cfg, err, sizeof err);
        if (rc != want[k])
            a->failures++;
        spc_config_destroy(cfg);
    }
    return NULL;
}

Test(loader, concurrent_loads)
{
    pthread_t th[8];
    struct race_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (struct race_arg){i, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, race, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(args[i].failures, 0, "thread %d saw %d wrong results", i, args[i].failures);
    }
}

/* ---------------------------------------------------------------- handles */

/* n one-piece packets of distinct content. */
static void make_packets(struct spc_packet *pk, uint8_t (*buf)[16], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memset(buf[i], (int)(i & 0xff), 16);
        pk[i] = (struct spc_packet){.n_iov = 1, .size = 16};
        pk[i].iov[0] = (struct iovec){buf[i], 16};
    }
}

static struct spc_transport_handle *open_fake(const char *name, const char *extra)
{
    struct spc_config *cfg;
    char err[2048];
    cr_assert_eq(parse_with(name, "[\"" FAKES "\"]", extra, &cfg, err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h;
    cr_assert_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s", err);
    spc_config_destroy(cfg);
    return h;
}

Test(handle, async_completions)
{
    struct spc_transport_handle *h = open_fake("fakeasync", NULL);
    static uint8_t buf[150][16];
    struct spc_packet pk[150];
    int status[150];
    make_packets(pk, buf, 150);
    memset(status, 0x55, sizeof status);
    cr_expect_eq(spc_transport_handle_send(h, pk, 150, 0, status), 0);
    for (int i = 0; i < 150; i++)
        cr_expect_eq(status[i], 0, "packet %d: %d", i, status[i]);
    spc_transport_handle_close(h);
}

Test(handle, async_per_packet_errors)
{
    struct spc_transport_handle *h = open_fake("fakeasync", "\"options\": {\"fail_every\": 3}");
    static uint8_t buf[10][16];
    struct spc_packet pk[10];
    int status[10];
    make_packets(pk, buf, 10);
    cr_expect_eq(spc_transport_handle_send(h, pk, 10, 0, status), -EIO);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(status[i], (i + 1) % 3 == 0 ? -EIO : 0, "packet %d: %d", i, status[i]);
    spc_transport_handle_close(h);
}

Test(handle, substream_range_and_arguments)
{
    struct spc_transport_handle *h =
        open_fake("optdemo", "\"options\": {\"endpoints\": [\"a:1\", \"[::1]:2\", {\"host\": \"c\", \"port\": 3}]}");
    cr_expect_eq(spc_transport_handle_n_substreams(h), 3);
    uint8_t buf[4][16];
    struct spc_packet pk[4];
    make_packets(pk, buf, 4);
    cr_expect_eq(spc_transport_handle_send(h, pk, 4, 2, NULL), 0);
    cr_expect_eq(spc_transport_handle_send(h, pk, 4, 3, NULL), -SPC_ESUBSTREAM);
    cr_expect_eq(spc_transport_handle_send(h, NULL, 4, 0, NULL), -EINVAL);
    cr_expect_eq(spc_transport_handle_send(h, pk, 0, 0, NULL), 0);
    const uint8_t *d;
    size_t len;
    cr_expect_eq(spc_bytes_handle_data(h, &d, &len), -SPC_ENOTSUP);
    cr_expect_eq(spc_bytes_handle_reset(h), -SPC_ENOTSUP);
    spc_transport_handle_close(h);
}

/* ---------------------------------------------------------------- bytes */

static struct spc_transport_handle *open_bytes(const char *options, size_t mps)
{
    char doc[512], err[1024];
    snprintf(doc, sizeof doc, "{\"transport\": \"bytes\", \"stream\": {\"max_packet_size\": %zu}%s%s}", mps,
             options ? ", \"options\": " : "", options ? options : "");
    struct spc_config *cfg;
    cr_assert_eq(spc_config_parse(&cfg, doc, err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h;
    cr_assert_eq(spc_transport_handle_open(&h, cfg, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_transport_handle_n_substreams(h), 1);
    spc_config_destroy(cfg);
    return h;
}

/* Sends every packet of a heap, one handle_send per packet batch of up to 5. */
static int send_heap(struct spc_transport_handle *h, const struct spc_heap *heap, uint64_t cnt, size_t mps)
{
    struct spc_packetizer pz;
    int rc = spc_packetizer_init(&pz, heap, cnt, mps);
    if (rc < 0)
        return rc;
    size_t scratch_len = spc_packet_scratch_size(mps);
    uint8_t *scratch = malloc(5 * scratch_len);
    struct spc_packet pk[5];
    size_t n = 0;
    for (;;) {
        int more = spc_packetizer_next(&pz, scratch + n * scratch_len, &pk[n]);
        n += more == 1;
        if (n == 5 || (more != 1 && n)) {
            rc = spc_transport_handle_send(h, pk, n, 0, NULL);
            n = 0;
            if (rc < 0)
                break;
        }
        if (more != 1)
            break;
    }
    free(scratch);
    return rc;
}

/* Every spead2 vector case: the bytes transport produces exactly what spead2's
 * BytesStream produced (serial groups are heap after heap). */
Test(bytes, matches_spead2_bytesstream)
{
    char **names;
    size_t nc = vc_list(SPC_TEST_VECTOR_DIR "/spead2", &names);
    cr_assert_gt(nc, 0);
    size_t checked = 0;
    for (size_t c = 0; c < nc; c++) {
        struct vc_case *vc;
        char err[512];
        cr_assert_eq(vc_load(SPC_TEST_VECTOR_DIR "/spead2", names[c], &vc, err, sizeof err), 0, "%s", err);
        if (vc->group_mode && strcmp(vc->group_mode, "serial")) {
            vc_free(vc);
            continue;
        }
        struct spc_transport_handle *h = open_bytes("{\"initial_capacity\": 0}", vc->max_packet_size);
        int ok = 1;
        for (size_t i = 0; i < vc->n_heaps && ok; i++) {
            struct spc_heap *heap;
            cr_assert_eq(vc_build_heap(vc, i, &heap), 0, "%s heap %zu", names[c], i);
            ok = send_heap(h, heap, vc->heaps[i].cnt, vc->max_packet_size) == 0;
            spc_heap_destroy(heap);
        }
        cr_expect(ok, "%s: send failed", names[c]);
        size_t want_len = 0;
        for (size_t i = 0; i < vc->n_packets; i++)
            want_len += vc->packets[i].len;
        uint8_t *want = malloc(want_len + 1);
        size_t off = 0;
        for (size_t i = 0; i < vc->n_packets; i++) {
            memcpy(want + off, vc->packets[i].data, vc->packets[i].len);
            off += vc->packets[i].len;
        }
        const uint8_t *got;
        size_t got_len;
        cr_assert_eq(spc_bytes_handle_data(h, &got, &got_len), 0);
        cr_expect(vc_same_bytes(names[c], got, got_len, want, want_len), "%s differs from spead2", names[c]);
        free(want);
        spc_transport_handle_close(h);
        vc_free(vc);
        checked++;
    }
    vc_free_names(names, nc);
    cr_expect_gt(checked, 10, "only %zu cases checked", checked);
}

Test(bytes, decodes_back)
{
    struct spc_transport_handle *h = open_bytes(NULL, 1472);
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_create(&heap, NULL), 0);
    static uint8_t big[10000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    cr_assert_eq(spc_heap_add_item(heap, 0x1000, big, sizeof big, false), 0);
    cr_assert_eq(spc_heap_add_inline(heap, 0x1001, 42), 0);
    cr_assert_eq(send_heap(h, heap, 5, 1472), 0);
    const uint8_t *data;
    size_t len;
    cr_assert_eq(spc_bytes_handle_data(h, &data, &len), 0);
    cr_expect_eq((int64_t)len, spc_heap_wire_size(heap, 5, 1472));
    struct spc_decoder *dec;
    cr_assert_eq(spc_decoder_create(&dec, NULL), 0);
    cr_assert_eq(spc_decoder_add_stream(dec, data, len, NULL), 0);
    struct spc_decoded_heap *out;
    cr_assert_eq(spc_decoder_pop(dec, &out), 1);
    cr_expect(out->complete);
    cr_expect_eq(out->cnt, 5);
    cr_assert_eq(out->n_items, 2);
    cr_expect_eq(out->items[0].len, sizeof big);
    cr_expect_eq(memcmp(out->items[0].data, big, sizeof big), 0);
    cr_expect_eq(out->items[1].value, 42);
    spc_decoded_heap_free(out);
    spc_decoder_destroy(dec);

    cr_expect_eq(spc_bytes_handle_reset(h), 0);
    cr_assert_eq(spc_bytes_handle_data(h, &data, &len), 0);
    cr_expect_eq(len, 0);
    spc_heap_destroy(heap);
    spc_transport_handle_close(h);
}

Test(bytes, max_size_fails_only_the_packets_that_do_not_fit)
{
    struct spc_transport_handle *h = open_bytes("{\"max_size\": 40, \"initial_capacity\": 0}", 1472);
    uint8_t buf[4][16];
    struct spc_packet pk[4];
    int status[4];
    make_packets(pk, buf, 4);
    pk[2].size = pk[2].iov[0].iov_len = 8; /* 16 + 16 + 8 = 40 fits exactly; the last does not */
    cr_expect_eq(spc_transport_handle_send(h, pk, 4, 0, status), -ENOSPC);
    cr_expect_eq(status[0], 0);
    cr_expect_eq(status[1], 0);
    cr_expect_eq(status[2], 0);
    cr_expect_eq(status[3], -ENOSPC);
    cr_expect(strstr(tu_handle_err(h), "max_size 40") != NULL, "%s", tu_handle_err(h));
    const uint8_t *data;
    size_t len;
    cr_assert_eq(spc_bytes_handle_data(h, &data, &len), 0);
    cr_assert_eq(len, 40);
    cr_expect_eq(data[0], 0);
    cr_expect_eq(data[16], 1);
    cr_expect_eq(data[32], 2);
    spc_transport_handle_close(h);
}

Test(bytes, gathers_many_pieces)
{
    struct spc_transport_handle *h = open_bytes("{\"initial_capacity\": 1}", 1472);
    static uint8_t src[3000];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i ^ 0x5a);
    struct spc_packet pk = {.n_iov = 4, .size = sizeof src};
    pk.iov[0] = (struct iovec){src, 1000};
    pk.iov[1] = (struct iovec){src + 1000, 0};
    pk.iov[2] = (struct iovec){src + 1000, 1500};
    pk.iov[3] = (struct iovec){src + 2500, 500};
    for (int i = 0; i < 50; i++)
        cr_assert_eq(spc_transport_handle_send(h, &pk, 1, 0, NULL), 0);
    const uint8_t *data;
    size_t len;
    cr_assert_eq(spc_bytes_handle_data(h, &data, &len), 0);
    cr_assert_eq(len, 50 * sizeof src);
    for (int i = 0; i < 50; i++)
        cr_expect_eq(memcmp(data + (size_t)i * sizeof src, src, sizeof src), 0, "copy %d", i);
    spc_transport_handle_close(h);
}
