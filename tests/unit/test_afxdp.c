/* The afxdp transport's open errors that need neither root nor a network namespace
 * (the rest runs as root in tests/afxdp/netns.sh): each is refused with its own code and
 * a text naming the problem, before any AF_XDP socket is made. Skipped when the plugin
 * was not built (no libxdp/libbpf). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

static void no_env(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
}

TestSuite(afxdp, .init = no_env);

static bool have_afxdp(void)
{
    char *schema = NULL, err[256];
    int rc = spc_transport_schema("afxdp", NULL, &schema, err, sizeof err);
    free(schema);
    return rc == 0;
}

/* Opens an afxdp stream with max_packet_size mps and the given options (JSON object
 * members); expects it to fail with want and a text containing text. */
static void expect_refused(size_t mps, const char *options, int want, const char *text)
{
    if (!have_afxdp())
        cr_skip_test("the afxdp plugin was not built (libxdp/libbpf not found)");
    char json[1024], err[1024] = "";
    snprintf(json, sizeof json,
             "{\"transport\": \"afxdp\", \"stream\": {\"max_packet_size\": %zu}, "
             "\"options\": {%s}}", mps, options);
    struct spc_stream *s = NULL;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    cr_assert_eq(rc, want, "open gave %d (%s), expected %d: %s", rc, spc_strerror(rc), want, err);
    cr_assert_null(s);
    cr_expect(strstr(err, text) != NULL, "error text \"%s\" lacks \"%s\"", err, text);
}

Test(afxdp, missing_interface)
{
    expect_refused(1472, "\"interface\": \"spcnosuch0\", \"endpoints\": [\"127.0.0.1:9\"]",
                   -ENODEV, "no such interface \"spcnosuch0\"");
}

Test(afxdp, frame_size_too_small_for_max_packet_size)
{
    expect_refused(60000, "\"interface\": \"lo\", \"endpoints\": [\"127.0.0.1:9\"], "
                          "\"frame_size\": 2048",
                   -SPC_ECONFIG, "frame_size 2048 is too small for max_packet_size 60000: a "
                                 "frame of 60042 bytes would span 30 slots, at most 8");
}

Test(afxdp, frame_count_not_a_power_of_two)
{
    expect_refused(1472, "\"interface\": \"lo\", \"endpoints\": [\"127.0.0.1:9\"], "
                         "\"frame_count\": 1000",
                   -SPC_ECONFIG, "frame_count (1000) must be powers of two");
}

Test(afxdp, bad_mac)
{
    expect_refused(1472, "\"interface\": \"lo\", \"endpoints\": [\"127.0.0.1:9\"], "
                         "\"destination_mac\": \"02:00:00:00:00:zz\"",
                   -SPC_ECONFIG, "destination_mac \"02:00:00:00:00:zz\" is not of the form");
}

Test(afxdp, unresolvable_endpoint)
{
    expect_refused(1472, "\"interface\": \"lo\", \"endpoints\": [\"no-such-host.invalid:9\"], "
                         "\"destination_mac\": \"02:00:00:00:00:02\"",
                   -SPC_ECONFIG, "cannot resolve endpoints[0] \"no-such-host.invalid\"");
}

Test(afxdp, unknown_option_is_named)
{
    expect_refused(1472, "\"interface\": \"lo\", \"endpoints\": [\"127.0.0.1:9\"], "
                         "\"queue\": 1",
                   -SPC_ECONFIG, "queue_id");
}
