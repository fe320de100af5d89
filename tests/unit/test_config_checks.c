/* Parse-time checks of options that can never open (issue 12 defect 14) beyond the
 * corpus in tests/configs: the one-of rule survives printing (spc_config_to_json's
 * output parses again: a default of a one-of member is not printed), and the setter API
 * reaches the same checks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "speadcast/speadcast.h"

static void no_env(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
}

TestSuite(config_checks, .init = no_env);

static void expect_print_reparses(const char *json)
{
    struct spc_config *cfg, *again;
    char err[1024], *a, *b;
    cr_assert_eq(spc_config_parse(&cfg, json, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_to_json(cfg, &a), 0);
    cr_assert_eq(spc_config_parse(&again, a, err, sizeof err), 0, "the print does not parse: %s\n%s", err, a);
    cr_assert_eq(spc_config_to_json(again, &b), 0);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
    spc_config_destroy(cfg);
    spc_config_destroy(again);
}

Test(config_checks, tcp_print_reparses)
{
    expect_print_reparses("{\"transport\": \"tcp\", \"options\": {\"endpoints\": [\"127.0.0.1:9\"]}}");
    expect_print_reparses("{\"transport\": \"tcp\", \"options\": {\"socket_fd\": 7}}");
}

Test(config_checks, setters_reach_the_checks)
{
    struct spc_config *cfg;
    char err[1024];
    cr_assert_eq(spc_config_create(&cfg, "pcap", NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_lt(spc_config_add_endpoint(cfg, "endpoints", "localhost", 9000, err, sizeof err), 0);
    cr_expect(strstr(err, "not a dotted-quad IPv4 address"), "%s", err);
    cr_expect_lt(spc_config_set_string(cfg, "source_address", "::1", err, sizeof err), 0);
    cr_expect(strstr(err, "not a dotted-quad IPv4 address"), "%s", err);
    cr_expect_eq(spc_config_add_endpoint(cfg, "endpoints", "10.1.2.3", 9000, err, sizeof err), 0, "%s", err);
    spc_config_destroy(cfg);

    cr_assert_eq(spc_config_create(&cfg, "tcp", NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_neq(spc_config_check(cfg, err, sizeof err), 0, "tcp with no peer passed the check");
    cr_expect(strstr(err, "give exactly one of endpoints, socket_fd"), "%s", err);
    cr_expect_eq(spc_config_add_endpoint(cfg, "endpoints", "127.0.0.1", 9, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_config_check(cfg, err, sizeof err), 0, "%s", err);
    cr_expect_eq(spc_config_set_int(cfg, "socket_fd", 3, err, sizeof err) == 0 &&
                     spc_config_check(cfg, err, sizeof err) == 0,
                 0, "endpoints and socket_fd together passed");
    spc_config_destroy(cfg);

    cr_assert_eq(spc_config_create(&cfg, "udp", NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_lt(spc_config_add_endpoint(cfg, "endpoints", "my host", 9000, err, sizeof err), 0);
    cr_expect(strstr(err, "cannot appear in a host name"), "%s", err);
    spc_config_destroy(cfg);

    cr_assert_eq(spc_config_create(&cfg, "inproc", NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_lt(spc_config_add_string(cfg, "queues", "", err, sizeof err), 0);
    spc_config_destroy(cfg);
}

/* speadcast-info --check refuses what can never open (it used to print these back as
 * valid): exit status 1 and the JSON path in the message. */
Test(config_checks, info_check_refuses)
{
    static const char *const cases[][2] = {
        {"tcp_no_peer", "give exactly one of endpoints, socket_fd"},
        {"tcp_endpoints_and_socket", "more than one given"},
        {"pcap_hostname_endpoint", "not a dotted-quad IPv4 address"},
        {"udp_object_host_space", "cannot appear in a host name"},
        {"inproc_long_name", "at most 255 allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], out[4096];
        snprintf(cmd, sizeof cmd,
                 SPC_TEST_BINARY_DIR "/tools/speadcast-info --check " SPC_TEST_SOURCE_DIR
                 "/tests/configs/bad/%s.json 2>&1", cases[i][0]);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        size_t len = fread(out, 1, sizeof out - 1, p);
        out[len] = '\0';
        int st = pclose(p);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: status %d: %s", cases[i][0], st, out);
        cr_expect(strstr(out, cases[i][1]) != NULL, "%s: %s", cases[i][0], out);
    }
}
