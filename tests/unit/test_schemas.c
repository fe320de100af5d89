/* The committed JSON Schemas equal what the option tables print, so tables and schemas
 * cannot drift apart: schemas/stream.schema.json, schemas/transport/<name>.schema.json
 * for every transport built here (built-in, or in the build tree's plugin directory),
 * and tests/configs/schemas/<name>.schema.json for the test-only transports. A schema
 * file for a transport that no longer exists fails too. Regenerate a file with
 *   speadcast-info --schema <name> > schemas/transport/<name>.schema.json */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "speadcast/speadcast.h"
#include "testutil.h"

#define FAKES SPC_TEST_BINARY_DIR "/tests/loader/plugins"

static void no_env(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
}

TestSuite(schemas, .init = no_env);

static void expect_file_equals(const char *file, const char *printed, const char *regen)
{
    char *committed = tu_read_file(file, NULL);
    cr_assert_not_null(committed, "%s is missing; create it with: %s > %s", file, regen, file);
    cr_expect_str_eq(committed, printed, "%s differs from what the table prints; regenerate with: %s > %s",
                     file, regen, file);
    free(committed);
}

Test(schemas, stream)
{
    char *s;
    cr_assert_eq(spc_config_document_schema(&s), 0);
    expect_file_equals(SPC_TEST_SOURCE_DIR "/schemas/stream.schema.json", s, "speadcast-info --stream-schema");
    free(s);
}

/* Transports loaded from the built-ins or the build tree's own plugin directory. */
Test(schemas, every_built_transport)
{
    struct spc_transport_info *list;
    size_t n, checked = 0;
    cr_assert_eq(spc_transport_list(NULL, &list, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (list[i].status != 0)
            continue;
        cr_expect(list[i].builtin || strstr(list[i].path, SPC_TEST_BINARY_DIR) == list[i].path,
                  "%s loaded from outside the build tree: %s", list[i].name, list[i].path);
        char *s, err[2048], file[512], regen[128];
        cr_assert_eq(spc_transport_schema(list[i].name, NULL, &s, err, sizeof err), 0, "%s", err);
        snprintf(file, sizeof file, SPC_TEST_SOURCE_DIR "/schemas/transport/%s.schema.json", list[i].name);
        snprintf(regen, sizeof regen, "speadcast-info --schema %s", list[i].name);
        expect_file_equals(file, s, regen);
        free(s);
        checked++;
    }
    spc_transport_list_free(list, n);
    cr_expect_gt(checked, 0);
}

/* Each committed transport schema belongs to a transport: the built-in one, or a plugin
 * with sources in plugins/<name>/ (skipped when that plugin is not built here). */
Test(schemas, no_stale_files)
{
    DIR *d = opendir(SPC_TEST_SOURCE_DIR "/schemas/transport");
    cr_assert_not_null(d);
    struct dirent *e;
    const char *suffix = ".schema.json";
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix))
            continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(l - sl), e->d_name);
        char *s, err[2048];
        int rc = spc_transport_schema(name, NULL, &s, err, sizeof err);
        if (rc == 0) {
            free(s);
            continue;
        }
        char src[512];
        struct stat st;
        snprintf(src, sizeof src, SPC_TEST_SOURCE_DIR "/plugins/%s", name);
        cr_expect(stat(src, &st) == 0, "schemas/transport/%s has no transport (no built-in, no plugins/%s)",
                  e->d_name, name);
        if (stat(src, &st) == 0)
            cr_log_info("transport %s is not built here; its schema was not checked", name);
    }
    closedir(d);
}

Test(schemas, test_transports)
{
    static const char *const names[] = {"optdemo"};
    const char *pp[] = {FAKES, NULL};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *s, err[2048], file[512], regen[256];
        cr_assert_eq(spc_transport_schema(names[i], pp, &s, err, sizeof err), 0, "%s", err);
        snprintf(file, sizeof file, SPC_TEST_SOURCE_DIR "/tests/configs/schemas/%s.schema.json", names[i]);
        snprintf(regen, sizeof regen, "speadcast-info -p <build>/tests/loader/plugins --schema %s", names[i]);
        expect_file_equals(file, s, regen);
        free(s);
    }
}

/* Issue 12 defect 12: the rate_method text says what the stream does. With "hw" over a
 * transport that cannot pace, open succeeds and the software limiter runs (a warning is
 * logged); "auto" is the software limiter. The schema's description must say so and must
 * not promise an error. */
static char rm_log[2048];

static void rm_capture(void *user, int level, const char *msg)
{
    (void)user;
    size_t len = strlen(rm_log);
    snprintf(rm_log + len, sizeof rm_log - len, "%s: %s\n", spc_log_level_name(level), msg);
}

Test(schemas, rate_method_text_matches_behaviour)
{
    spc_set_log_handler(rm_capture, NULL);
    struct spc_stream *s = NULL;
    char err[512] = "";
    int rc = spc_stream_open_json(&s, "{\"transport\": \"bytes\", \"stream\": {\"rate\": 1e6, "
                                      "\"rate_method\": \"hw\"}}", NULL, err, sizeof err);
    spc_set_log_handler(NULL, NULL);
    cr_assert_eq(rc, 0, "hw over a transport without pacing must fall back, got %s: %s",
                 spc_strerror(rc), err);
    spc_stream_close(s);
    cr_expect(strstr(rm_log, "software rate limiter") != NULL, "no fallback warning: %s", rm_log);

    char *schema;
    cr_assert_eq(spc_config_document_schema(&schema), 0);
    const char *rm = strstr(schema, "\"rate_method\"");
    cr_assert_not_null(rm);
    const char *desc = strstr(rm, "\"description\"");
    cr_assert_not_null(desc);
    const char *end = strchr(desc + 15, '\n');
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)(end ? end - desc : 200), desc);
    cr_expect(strstr(text, "error if") == NULL, "the text promises an error the code never gives: %s", text);
    cr_expect(strstr(text, "otherwise the software limiter") != NULL, "hw fallback not described: %s", text);
    cr_expect(strstr(text, "auto: the software limiter") != NULL, "auto is described wrongly: %s", text);
    free(schema);
}
