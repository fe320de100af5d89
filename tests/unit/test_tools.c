/* speadcast-send, speadcast-recv and speadcast-bench (tools/): option parsing, the
 * --verify pattern, and real streams from the sender to the receiver (run in this
 * process on two threads) over inproc, UDP and TCP, files and a third-party plugin.
 * Every network address is loopback with a port the system picks; every receiver runs
 * with a --timeout, so a broken sender fails a test instead of hanging it, and ctest runs
 * the suite with --timeout 120 for each test. (No per-test .timeout: with --jobs 2,
 * Criterion 2.4.1's runner then leaks a 48-byte block that LeakSanitizer reports.) */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "speadcast/speadcast.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

struct captured {
    char *out, *err;
    size_t out_len, err_len;
    FILE *fout, *ferr;
};

static void cap_open(struct captured *c)
{
    memset(c, 0, sizeof *c);
    c->fout = open_memstream(&c->out, &c->out_len);
    c->ferr = open_memstream(&c->err, &c->err_len);
    cr_assert(c->fout && c->ferr);
}

static void cap_close(struct captured *c)
{
    fclose(c->fout);
    fclose(c->ferr);
    c->fout = c->ferr = NULL;
}

static void cap_free(struct captured *c)
{
    free(c->out);
    free(c->err);
}

/* argv = {prog, args..., NULL}; strings are copied so parsers may keep pointers. */
static char **make_argv(const char *prog, const char *const *args, int *argc)
{
    int n = 0;
    while (args[n])
        n++;
    char **v = calloc((size_t)n + 2, sizeof *v);
    v[0] = strdup(prog);
    for (int i = 0; i < n; i++)
        v[i + 1] = strdup(args[i]);
    *argc = n + 1;
    return v;
}

static void free_argv(char **v)
{
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

typedef int (*tool_main)(int, char **, FILE *, FILE *);

static int run_tool(tool_main fn, const char *prog, const char *const *args, struct captured *c)
{
    int argc;
    char **argv = make_argv(prog, args, &argc);
    cap_open(c);
    int rc = fn(argc, argv, c->fout, c->ferr);
    cap_close(c);
    free_argv(argv);
    return rc;
}

/* A receiver on a thread: parsed from args, started, and waited for until it listens. */
struct rthread {
    struct spct_recv_opts o;
    struct spct_recv_result r;
    struct captured cap;
    int status;
    char **argv;
    pthread_t th;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool ready;
    char addr[4][300];
    size_t n_addr;
};

static void rt_ready(void *user, const struct sockaddr_storage *addrs, size_t n)
{
    struct rthread *rt = user;
    pthread_mutex_lock(&rt->m);
    for (size_t i = 0; i < n && i < 4; i++)
        spct_format_sockaddr((const struct sockaddr *)&addrs[i], rt->addr[i], sizeof rt->addr[i]);
    rt->n_addr = n;
    rt->ready = true;
    pthread_cond_broadcast(&rt->c);
    pthread_mutex_unlock(&rt->m);
}

static void *rt_main(void *arg)
{
    struct rthread *rt = arg;
    rt->status = spct_recv_run(&rt->o, &rt->r, rt->cap.fout, rt->cap.ferr);
    pthread_mutex_lock(&rt->m);
    rt->ready = true;
    pthread_cond_broadcast(&rt->c);
    pthread_mutex_unlock(&rt->m);
    return NULL;
}

static void rt_start(struct rthread *rt, const char *const *args)
{
    memset(rt, 0, sizeof *rt);
    int argc;
    rt->argv = make_argv("speadcast-recv", args, &argc);
    cap_open(&rt->cap);
    spct_recv_defaults(&rt->o);
    int rc = spct_recv_parse(&rt->o, argc, rt->argv, rt->cap.fout, rt->cap.ferr);
    cr_assert_eq(rc, 0, "receiver options rejected");
    rt->o.ready = rt_ready;
    rt->o.ready_user = rt;
    pthread_mutex_init(&rt->m, NULL);
    pthread_cond_init(&rt->c, NULL);
    cr_assert_eq(pthread_create(&rt->th, NULL, rt_main, rt), 0);
    pthread_mutex_lock(&rt->m);
    while (!rt->ready)
        pthread_cond_wait(&rt->c, &rt->m);
    pthread_mutex_unlock(&rt->m);
}

static int rt_join(struct rthread *rt)
{
    pthread_join(rt->th, NULL);
    cap_close(&rt->cap);
    free_argv(rt->argv);
    spct_recv_opts_free(&rt->o);
    pthread_mutex_destroy(&rt->m);
    pthread_cond_destroy(&rt->c);
    return rt->status;
}

/* The receiver's --json output: heap/stop lines and the summary. */
struct recv_json {
    json_t *summary;
    json_t *heaps; /* array of the heap and stop objects */
};

static void parse_recv_json(const char *text, struct recv_json *rj)
{
    rj->summary = NULL;
    rj->heaps = json_array();
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            json_error_t e;
            json_t *j = json_loadb(p, len, 0, &e);
            cr_assert(j, "receiver line is not JSON (%s): %.*s", e.text, (int)len, p);
            const char *type = json_string_value(json_object_get(j, "type"));
            cr_assert(type, "JSON line without a type");
            if (strcmp(type, "summary") == 0) {
                cr_assert_null(rj->summary, "two summaries");
                rj->summary = j;
            } else {
                json_array_append_new(rj->heaps, j);
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    cr_assert(rj->summary, "no summary line in: %s", text);
}

static void free_recv_json(struct recv_json *rj)
{
    json_decref(rj->summary);
    json_decref(rj->heaps);
}

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "JSON field %s is not an integer", key);
    return json_integer_value(v);
}

static bool jbool(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_boolean(v), "JSON field %s is not a boolean", key);
    return json_is_true(v);
}

static char *tmp_path(const char *name)
{
    char *p = malloc(512);
    snprintf(p, 512, "/tmp/spct-test-%ld-%s", (long)getpid(), name);
    return p;
}

/* ------------------------------------------------------------ option parsing */

Test(send_options, defaults_are_spead2_send_defaults)
{
    struct spct_send_opts o;
    spct_send_defaults(&o);
    char *args[] = {"speadcast-send", "127.0.0.1:8888", NULL};
    cr_assert_eq(spct_send_parse(&o, 2, args, stdout, stderr), 0);
    cr_assert_eq(o.heap_size, 4194304);
    cr_assert_eq(o.items, 1);
    cr_assert_eq(o.heaps, -1);
    cr_assert_eq(o.packet, 1472);
    cr_assert_eq(o.burst, 65536);
    cr_assert_float_eq(o.burst_rate_ratio, 1.05, 1e-12);
    cr_assert_eq(o.max_heaps, 4);
    cr_assert_eq(o.rate_method, SPC_RATE_METHOD_AUTO);
    cr_assert_float_eq(o.rate, 0.0, 0);
    cr_assert_eq(o.ttl, 1);
    cr_assert_eq(o.addr_bits, 40);
    cr_assert_eq(o.heap_address_bits, 40);
    cr_assert_eq(o.bug_compat, 0);
    cr_assert_eq(o.ibv_vector, 0);
    cr_assert_eq(o.ibv_max_poll, 10);
    cr_assert(!o.verify && !o.tcp && !o.ibv && !o.pyspead && !o.given.buffer && !o.bind);
    cr_assert_eq(o.n_dest, 1);
    cr_assert_str_eq(o.dest[0], "127.0.0.1:8888");
    spct_send_opts_free(&o);
}

Test(send_options, every_option_is_parsed)
{
    struct spct_send_opts o;
    spct_send_defaults(&o);
    char *args[] = {"speadcast-send", "--heap-size", "1M", "--items", "4", "--heaps", "100",
                    "--verify", "--pyspead", "--addr-bits=48", "--packet", "9000", "--bind",
                    "127.0.0.1", "--buffer", "65536", "--burst", "0x2000", "--burst-rate-ratio",
                    "1.5", "--max-heaps", "8", "--rate-method", "SW", "--rate", "2.5", "--ttl", "4",
                    "--ibv-vector", "-1", "--ibv-max-poll", "20", "--json", "--quiet", "--progress",
                    "--no-progress", "a:1", "[::1]:2", NULL};
    int argc = sizeof args / sizeof args[0] - 1;
    cr_assert_eq(spct_send_parse(&o, argc, args, stdout, stderr), 0);
    cr_assert_eq(o.heap_size, 1048576);
    cr_assert_eq(o.items, 4);
    cr_assert_eq(o.heaps, 100);
    cr_assert(o.verify && o.pyspead && o.json && o.quiet && o.progress && o.no_progress);
    cr_assert_eq(o.heap_address_bits, 48);
    cr_assert_eq(o.bug_compat, 7);
    cr_assert_eq(o.packet, 9000);
    cr_assert_str_eq(o.bind, "127.0.0.1");
    cr_assert(o.given.buffer);
    cr_assert_eq(o.buffer, 65536);
    cr_assert_eq(o.burst, 0x2000);
    cr_assert_float_eq(o.burst_rate_ratio, 1.5, 1e-12);
    cr_assert_eq(o.max_heaps, 8);
    cr_assert_eq(o.rate_method, SPC_RATE_METHOD_SW);
    cr_assert_float_eq(o.rate, 2.5, 1e-12);
    cr_assert_eq(o.ttl, 4);
    cr_assert_eq(o.ibv_vector, -1);
    cr_assert_eq(o.ibv_max_poll, 20);
    cr_assert_eq(o.n_dest, 2);
    cr_assert_str_eq(o.dest[1], "[::1]:2");
    spct_send_opts_free(&o);

    spct_send_defaults(&o);
    char *args3[] = {"speadcast-send", "--tcp", "--flavour", "64-48:7", "--send-timeout",
                     "2.5", "--", "h:9", NULL};
    cr_assert_eq(spct_send_parse(&o, 8, args3, stdout, stderr), 0);
    cr_assert(o.tcp);
    cr_assert(o.given.send_timeout);
    cr_assert_float_eq(o.send_timeout, 2.5, 1e-12);
    cr_assert_eq(o.heap_address_bits, 48);
    cr_assert_eq(o.bug_compat, 7);
    spct_send_opts_free(&o);

    spct_send_defaults(&o);
    char *args4[] = {"speadcast-send", "--ibv", "--bind", "10.0.0.1", "239.1.2.3:7148", NULL};
    cr_assert_eq(spct_send_parse(&o, 5, args4, stdout, stderr), 0);
    cr_assert(o.ibv);
    spct_send_opts_free(&o);

    spct_send_defaults(&o);
    char *args5[] = {"speadcast-send", "--config", "x.json", "--packet", "9000", "--rate", "1",
                     NULL};
    cr_assert_eq(spct_send_parse(&o, 7, args5, stdout, stderr), 0);
    cr_assert_str_eq(o.config, "x.json");
    cr_assert(o.given.packet && o.given.rate && !o.given.burst);
    spct_send_opts_free(&o);
}

struct bad_case {
    const char *args[8];
    const char *message;
};

static void check_bad(tool_main fn, const char *prog, const struct bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct captured c;
        int rc = run_tool(fn, prog, cases[i].args, &c);
        cr_expect_eq(rc, SPCT_EXIT_USAGE, "case %zu (%s ...): exit %d, stderr: %s", i,
                     cases[i].args[0], rc, c.err);
        cr_expect(c.err && strstr(c.err, cases[i].message),
                  "case %zu (%s ...): expected \"%s\" in: %s", i, cases[i].args[0],
                  cases[i].message, c.err);
        cr_expect(c.err && strncmp(c.err, prog, strlen(prog)) == 0,
                  "message does not name the program: %s", c.err);
        cap_free(&c);
    }
}

Test(send_options, bad_values_have_clear_messages)
{
    static const struct bad_case cases[] = {
        {{NULL}, "at least one destination host:port is required"},
        {{"--packet", "10", "h:1", NULL}, "--packet: 10 is below the minimum 56"},
        {{"--packet", "abc", "h:1", NULL}, "--packet: 'abc' is not a number"},
        {{"--packet", "99999999", "h:1", NULL}, "is above the maximum 16777216"},
        {{"--packet", NULL}, "--packet needs a value"},
        {{"--heap-size", "-5", "h:1", NULL}, "must not be negative"},
        {{"--heap-size", "12x", "h:1", NULL}, "is not a whole number"},
        {{"--items", "0", "h:1", NULL}, "--items: 0 is below the minimum 1"},
        {{"--heaps", "-2", "h:1", NULL}, "--heaps: -2 is below the minimum -1"},
        {{"--heaps", "1.5", "h:1", NULL}, "is not a whole number"},
        {{"--rate", "-1", "h:1", NULL}, "--rate: -1 is below the minimum 0"},
        {{"--rate", "nan", "h:1", NULL}, "--rate: 'nan' is not a finite number"},
        {{"--rate", "inf", "h:1", NULL}, "is not a finite number"},
        {{"--burst", "0", "h:1", NULL}, "--burst: 0 is below the minimum 1"},
        {{"--burst-rate-ratio", "0.5", "h:1", NULL}, "--burst-rate-ratio: 0.5 is below the minimum 1"},
        {{"--max-heaps", "0", "h:1", NULL}, "--max-heaps: 0 is below the minimum 1"},
        {{"--rate-method", "fast", "h:1", NULL}, "'fast' is not one of sw, hw, auto"},
        {{"--ttl", "256", "h:1", NULL}, "--ttl: 256 is above the maximum 255"},
        {{"--buffer", "-1", "h:1", NULL}, "--buffer: '-1' must not be negative"},
        {{"--addr-bits", "41", "h:1", NULL}, "--addr-bits: 41 is not a multiple of 8 in 8..56"},
        {{"--addr-bits", "64", "h:1", NULL}, "is not a multiple of 8 in 8..56"},
        {{"--addr-bits", "56", "h:1", NULL}, "carries IDs up to 0x7f"},
        {{"--flavour", "SPEAD-64-41", "h:1", NULL}, "--flavour: 'SPEAD-64-41' is not a flavour"},
        {{"--flavour", "64-40:9", "h:1", NULL}, "is not a flavour"},
        {{"--flavour", "64-48", "--addr-bits", "40", "h:1", NULL}, "disagree"},
        {{"--flavour", "64-48", "--pyspead", "h:1", NULL}, "disagree"},
        {{"--ibv-vector", "-2", "h:1", NULL}, "--ibv-vector: -2 is below the minimum -1"},
        {{"--ibv-max-poll", "0", "h:1", NULL}, "--ibv-max-poll: 0 is below the minimum 1"},
        {{"--ibv", "h:1", NULL}, "--ibv requires --bind"},
        {{"--tcp", "--ibv", "--bind", "1.2.3.4", "h:1", NULL}, "at most one of --tcp, --ibv"},
        {{"--tcp", "a:1", "b:2", NULL}, "only one destination is supported with --tcp"},
        {{"--verify=yes", "h:1", NULL}, "--verify takes no value"},
        {{"--pakcet", "9000", "h:1", NULL}, "unknown option --pakcet (did you mean --packet?)"},
        {{"-x", "h:1", NULL}, "unknown option -x"},
        {{"localhost", NULL}, "'localhost' is not of the form host:port"},
        {{"h:0", NULL}, "port 0 is out of range (1..65535)"},
        {{"h:70000", NULL}, "port 70000 is out of range"},
        {{"h:http", NULL}, "port 'http' is not a number"},
        {{":9", NULL}, "has an empty host"},
        {{"::1:9", NULL}, "write IPv6 addresses as [address]:port"},
        {{"--config", "c.json", "h:1", NULL}, "destinations come from the --config file"},
        {{"--config", "c.json", "--bind", "1.2.3.4", NULL}, "--bind cannot be combined with --config"},
        {{"--config", "c.json", "--tcp", NULL}, "--tcp cannot be combined with --config"},
        {{"--inproc", "--heaps", "1", "", NULL}, "queue name '' must have 1 to 255 bytes"},
        {{"--inproc", "q", NULL}, "the inproc transport needs --heaps"},
        {{"--addr-bits", "8", "h:1", NULL},
         "--addr-bits 8 gives heap offsets up to 255, too few for --heap-size 4194304"},
        {{"--rate", "1e308", "h:1", NULL}, "--rate: 1e308 is above the maximum"},
        {{"--burst", "18446744073709551615", "h:1", NULL},
         "--burst: 18446744073709551615 is above the maximum"},
        {{"--send-timeout", "1", "h:1", NULL}, "--send-timeout applies to --tcp only"},
        {{"--config", "c.json", "--send-timeout", "1", NULL}, "--send-timeout cannot be combined with --config"},
    };
    check_bad(spct_send_main, "speadcast-send", cases, sizeof cases / sizeof cases[0]);
}

Test(send_options, help_lists_every_option)
{
    struct captured c;
    const char *args[] = {"--help", NULL};
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", args, &c), 0);
    const char *names[] = {"--heap-size", "--items", "--heaps", "--verify", "--tcp", "--pyspead",
                           "--addr-bits", "--packet", "--bind", "--buffer", "--burst",
                           "--burst-rate-ratio", "--max-heaps", "--rate-method", "--rate", "--ttl",
                           "--ibv", "--ibv-vector", "--ibv-max-poll", "--config", "--flavour",
                           "--json", "(default 4194304)", "(default 1472)"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(strstr(c.out, names[i]), "--help lacks %s", names[i]);
    cap_free(&c);
}

Test(send_options, config_errors_name_the_file)
{
    struct captured c;
    const char *args[] = {"--config", "/nonexistent/speadcast.json", NULL};
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", args, &c), SPCT_EXIT_FAIL);
    cr_assert(strstr(c.err, "/nonexistent/speadcast.json"), "%s", c.err);
    cap_free(&c);

    char *path = tmp_path("bad.json");
    FILE *f = fopen(path, "w");
    fputs("{\"transport\": \"udp\", \"options\": {\"endpoints\": [\"127.0.0.1:9\"], \"bufer_size\": 1}}", f);
    fclose(f);
    const char *args2[] = {"--config", path, NULL};
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", args2, &c), SPCT_EXIT_FAIL);
    cr_assert(strstr(c.err, "bufer_size"), "%s", c.err);
    cap_free(&c);
    unlink(path);
    free(path);
}

Test(send_options, unknown_transport_fails_cleanly)
{
    struct captured c;
    const char *args[] = {"--ibv", "--bind", "127.0.0.1", "--heaps", "1", "127.0.0.1:9", NULL};
    int rc = run_tool(spct_send_main, "speadcast-send", args, &c);
    /* Without an RDMA device the ibverbs transport cannot open; without the plugin the
     * loader says so. Either way: a clear error, exit 1. */
    cr_assert_eq(rc, SPCT_EXIT_FAIL, "%s", c.err);
    cr_assert(strstr(c.err, "speadcast-send: "), "%s", c.err);
    cap_free(&c);
}

Test(recv_options, every_option_is_parsed)
{
    struct spct_recv_opts o;
    spct_recv_defaults(&o);
    cr_assert_eq(o.packet, 9200);
    cr_assert_eq(o.buffer, 8u << 20);
    cr_assert_eq(o.heaps, -1);
    cr_assert_eq(o.stops, -1);
    cr_assert_eq(o.first_cnt, 1);
    cr_assert_eq(o.substream_index, 0);
    cr_assert_eq(o.substream_count, 1);
    cr_assert_eq(o.max_memory, UINT64_C(1) << 30);
    cr_assert_eq(o.max_connections, 64);
    cr_assert_eq(o.max_descriptors, 65536);
    char *args[] = {"speadcast-recv", "--tcp", "--verify", "--quiet", "--descriptors", "--json",
                    "--pyspead", "--bind", "127.0.0.1", "--packet", "4096", "--buffer", "1M",
                    "--concurrent-heaps", "3", "--max-heap-size", "1G", "--heaps", "7", "--stops",
                    "2", "--timeout", "1.5", "--idle-timeout", "0.25", "--ready-file", "/tmp/x",
                    "--first-cnt", "5", "--substream", "1/3", "--max-memory", "2G",
                    "--max-connections", "9", "--max-descriptors", "10",
                    "7148", ":7149", "127.0.0.1:0", NULL};
    int argc = sizeof args / sizeof args[0] - 1;
    cr_assert_eq(spct_recv_parse(&o, argc, args, stdout, stderr), 0);
    cr_assert(o.tcp && o.verify && o.quiet && o.descriptors && o.json && o.pyspead);
    cr_assert_str_eq(o.bind, "127.0.0.1");
    cr_assert_eq(o.packet, 4096);
    cr_assert_eq(o.buffer, 1u << 20);
    cr_assert_eq(o.concurrent_heaps, 3);
    cr_assert_eq(o.max_heap_size, 1u << 30);
    cr_assert_eq(o.heaps, 7);
    cr_assert_eq(o.stops, 2);
    cr_assert_float_eq(o.timeout, 1.5, 1e-12);
    cr_assert_float_eq(o.idle_timeout, 0.25, 1e-12);
    cr_assert_str_eq(o.ready_file, "/tmp/x");
    cr_assert_eq(o.first_cnt, 5);
    cr_assert_eq(o.substream_index, 1);
    cr_assert_eq(o.substream_count, 3);
    cr_assert_eq(o.max_memory, UINT64_C(2) << 30);
    cr_assert_eq(o.max_connections, 9);
    cr_assert_eq(o.max_descriptors, 10);
    cr_assert_eq(o.n_sources, 3);
    spct_recv_opts_free(&o);

    spct_recv_defaults(&o);
    char *args2[] = {"speadcast-recv", "--tcp", "0", NULL};
    cr_assert_eq(spct_recv_parse(&o, 3, args2, stdout, stderr), 0);
    cr_assert_eq(o.packet, 65536, "TCP's default packet limit is spead2's 65536");
    spct_recv_opts_free(&o);
}

Test(recv_options, bad_values_have_clear_messages)
{
    static const struct bad_case cases[] = {
        {{NULL}, "at least one source is required"},
        {{"--packet", "8", "0", NULL}, "--packet: 8 is below the minimum 56"},
        {{"--concurrent-heaps", "0", "0", NULL}, "--concurrent-heaps: 0 is below the minimum 1"},
        {{"--max-heap-size", "0", "0", NULL}, "--max-heap-size: 0 is below the minimum 1"},
        {{"--heaps", "-3", "0", NULL}, "--heaps: -3 is below the minimum -1"},
        {{"--stops", "x", "0", NULL}, "--stops: 'x' is not a number"},
        {{"--timeout", "-1", "0", NULL}, "--timeout: -1 is below the minimum 0"},
        {{"--idle-timeout", "soon", "0", NULL}, "'soon' is not a number"},
        {{"--tcp", "--inproc", "q", NULL}, "choose one of --tcp and --inproc"},
        {{"127.0.0.1:99999", NULL}, "port 99999 is out of range (0..65535)"},
        {{"/nonexistent/capture.pcap", NULL}, "no readable file has that name"},
        {{"--verbose", "0", NULL}, "unknown option --verbose"},
        {{"--quiet=1", "0", NULL}, "--quiet takes no value"},
        {{"--substream", "2/2", "0", NULL}, "--substream '2/2': I must be a substream index below N"},
        {{"--substream", "x", "0", NULL}, "--substream 'x'"},
        {{"--max-connections", "0", "0", NULL}, "--max-connections: 0 is below the minimum 1"},
    };
    check_bad(spct_recv_main, "speadcast-recv", cases, sizeof cases / sizeof cases[0]);
}

Test(bench_options, bad_values_have_clear_messages)
{
    static const struct bad_case cases[] = {
        {{"--transport", "carrier-pigeon", NULL}, "'carrier-pigeon' is not one of udp, tcp, inproc"},
        {{"--receiver", "cloud", NULL}, "is not one of thread, process"},
        {{"--receiver", "process", "--transport", "inproc", NULL}, "use --receiver thread"},
        {{"--plot", "x.svg", NULL}, "--plot draws a sweep: add --sweep"},
        {{"--search", NULL}, "--search applies to --sweep"},
        {{"--sweep", "--rate", "1", NULL}, "--rate and --sweep do not go together"},
        {{"--packets", "1472,,9000", "--sweep", NULL}, "not a comma-separated list"},
        {{"--packets", "1472,70000", "--sweep", NULL}, "--packets: 70000 is above the maximum 65507"},
        {{"--heap-sizes", "1k,x", "--sweep", NULL}, "--heap-sizes: 'x' is not a number"},
        {{"--precision", "0", NULL}, "--precision: 0 is below the minimum 0.001"},
        {{"--trials", "0", NULL}, "--trials: 0 is below the minimum 1"},
        {{"--max-time", "0", NULL}, "--max-time: 0 is below the minimum 0.1"},
        {{"somewhere:1", NULL}, "unexpected argument 'somewhere:1'"},
    };
    check_bad(spct_bench_main, "speadcast-bench", cases, sizeof cases / sizeof cases[0]);
}

Test(endpoints, host_port_forms)
{
    struct spct_endpoint ep;
    char why[256];
    cr_assert_eq(spct_parse_endpoint("239.1.2.3:7148", false, &ep, why, sizeof why), 0);
    cr_assert_str_eq(ep.host, "239.1.2.3");
    cr_assert_eq(ep.port, 7148);
    cr_assert_eq(spct_parse_endpoint("[ff02::1]:65535", false, &ep, why, sizeof why), 0);
    cr_assert_str_eq(ep.host, "ff02::1");
    cr_assert_eq(ep.port, 65535);
    cr_assert_eq(spct_parse_endpoint("7148", true, &ep, why, sizeof why), 0);
    cr_assert_str_eq(ep.host, "");
    cr_assert_eq(spct_parse_endpoint(":0", true, &ep, why, sizeof why), 0);
    cr_assert_eq(ep.port, 0);
    cr_assert_eq(spct_parse_endpoint("7148", false, &ep, why, sizeof why), -1);
    cr_assert_eq(spct_parse_endpoint("[::1]", false, &ep, why, sizeof why), -1);
    cr_assert_eq(spct_parse_endpoint("[]:1", false, &ep, why, sizeof why), -1);
    cr_assert_eq(spct_parse_endpoint("h:1k", false, &ep, why, sizeof why), -1);
    cr_assert_eq(spct_parse_endpoint("h:-1", false, &ep, why, sizeof why), -1);
    cr_assert_eq(spct_parse_endpoint("", true, &ep, why, sizeof why), -1);
}

Test(numbers, suffixes_and_limits)
{
    uint64_t u;
    int64_t i;
    double d;
    const char *why;
    cr_assert_eq(spct_parse_u64("4M", &u, &why), 0);
    cr_assert_eq(u, 4u << 20);
    cr_assert_eq(spct_parse_u64("010", &u, &why), 0);
    cr_assert_eq(u, 10, "a leading zero is not octal");
    cr_assert_eq(spct_parse_u64("0x10", &u, &why), 0);
    cr_assert_eq(u, 16);
    cr_assert_eq(spct_parse_u64("18446744073709551616", &u, &why), -1);
    cr_assert_eq(spct_parse_u64("17179869184G", &u, &why), -1);
    cr_assert_eq(spct_parse_i64("-9223372036854775808", &i, &why), 0);
    cr_assert_eq(i, INT64_MIN);
    cr_assert_eq(spct_parse_i64("9223372036854775808", &i, &why), -1);
    cr_assert_eq(spct_parse_double("1e3", &d, &why), 0);
    cr_assert_float_eq(d, 1000.0, 0);
    cr_assert_eq(spct_parse_double("1e999", &d, &why), -1);
}

/* ------------------------------------------------------------ the pattern */

Test(pattern, is_std_minstd_rand)
{
    /* The first outputs of std::minstd_rand, and the 10000th, which the C++ standard
     * fixes at 399268537. */
    const uint32_t first[] = {48271, 182605794, 1291394886, 1914720637, 2078669041, 407355683};
    uint32_t x = 1;
    for (size_t i = 0; i < 6; i++) {
        x = spct_lcg_next(x);
        cr_assert_eq(x, first[i], "output %zu", i + 1);
    }
    cr_assert_eq(spct_lcg_at(10000), 399268537u);
    cr_assert_eq(spct_lcg_at(0), 1u);
    /* Jumping ahead equals stepping. */
    x = 1;
    for (uint64_t n = 1; n <= 100000; n++) {
        x = spct_lcg_next(x);
        if (n % 9973 == 0)
            cr_assert_eq(spct_lcg_at(n), x, "position %llu", (unsigned long long)n);
    }
}

Test(pattern, fill_and_check_agree)
{
    uint8_t buf[4 * 100 + 1];
    spct_pattern_fill(buf + 1, 100, 12345); /* unaligned on purpose */
    uint32_t got, want;
    cr_assert_eq(spct_pattern_check(buf + 1, 100, 12345, &got, &want), 100);
    uint32_t first = spct_lcg_at(12346);
    cr_assert_eq(buf[1], first >> 24, "big-endian");
    cr_assert_eq(buf[4], first & 0xff);
    buf[1 + 4 * 37 + 2] ^= 1;
    cr_assert_eq(spct_pattern_check(buf + 1, 100, 12345, &got, &want), 37);
    cr_assert_neq(got, want);
    cr_assert_eq(spct_pattern_check(buf + 1, 100, 12344, &got, &want), 0, "wrong position");
}

/* ------------------------------------------------------------ streams */

/* Receiver arguments for a transport with one source (queue name for inproc). */
static void recv_args(const char *transport, const char *queue, const char **args, size_t *n)
{
    size_t k = *n;
    if (strcmp(transport, "inproc") == 0) {
        args[k++] = "--inproc";
        args[k++] = queue;
    } else {
        if (strcmp(transport, "tcp") == 0)
            args[k++] = "--tcp";
        args[k++] = "127.0.0.1:0";
    }
    args[k] = NULL;
    *n = k;
}

static const char *dest_of(const char *transport, const char *queue, const struct rthread *rt)
{
    return strcmp(transport, "inproc") == 0 ? queue : rt->addr[0];
}

/* One test per transport. */
struct transport_case {
    const char *name;
    bool no_layout; /* speadcast-send --no-layout */
};

static void verify_roundtrip(const struct transport_case *tc)
{
    char queue[64];
    snprintf(queue, sizeof queue, "tools-roundtrip-%ld", (long)getpid());
    const char *rargs[16] = {"--verify", "--json", "--timeout", "30"};
    size_t n = 4;
    recv_args(tc->name, queue, rargs, &n);
    struct rthread rt;
    rt_start(&rt, rargs);
    const char *dest = dest_of(tc->name, queue, &rt);
    /* --rate 0.2: no loss even when the system clips the receive buffer to 208 KiB. */
    const char *sargs[16] = {"--verify", "--json", "--heaps", "40", "--heap-size", "65536",
                             "--items", "3", "--rate", "0.2"};
    size_t k = 10;
    if (strcmp(tc->name, "inproc") == 0)
        sargs[k++] = "--inproc";
    if (strcmp(tc->name, "tcp") == 0)
        sargs[k++] = "--tcp";
    if (tc->no_layout)
        sargs[k++] = "--no-layout";
    sargs[k++] = dest;
    sargs[k] = NULL;
    struct captured c;
    int rc = run_tool(spct_send_main, "speadcast-send", sargs, &c);
    cr_assert_eq(rc, 0, "sender failed: %s", c.err);
    int rrc = rt_join(&rt);

    json_error_t e;
    json_t *sj = json_loads(c.out, 0, &e);
    cr_assert(sj, "sender --json output is not JSON (%s): %s", e.text, c.out);
    cr_assert_eq(jint(sj, "data_heaps"), 40);
    cr_assert_eq(jint(sj, "stop_heaps"), 1);
    cr_assert_eq(jint(sj, "heaps"), 41);
    cr_assert_eq(jint(sj, "errors"), 0);
    cr_assert_eq(jint(sj, "substreams"), 1);
    cr_assert_eq(jint(sj, "elements"), 65536 / 3 / 4);
    cr_assert_str_eq(json_string_value(json_object_get(sj, "transport")), tc->name);
    cr_assert(jint(sj, "bytes") > 40 * 65532);
    cr_assert(jbool(sj, "verify"));
    /* Data heaps 2..40 are laid out as their packets (the first carries descriptors, the
     * stop heap is immediate items only); with --no-layout none is. */
    if (tc->no_layout)
        cr_assert_eq(jint(sj, "packets_in_place"), 0);
    else
        cr_assert(jint(sj, "packets_in_place") >= 39 * (65532 / 1432) &&
                      jint(sj, "packets_in_place") < jint(sj, "packets"),
                  "packets_in_place %lld of %lld", (long long)jint(sj, "packets_in_place"),
                  (long long)jint(sj, "packets"));

    cr_assert_eq(rrc, 0, "receiver failed: %s\n%s", rt.cap.err, rt.cap.out);
    struct recv_json rj;
    parse_recv_json(rt.cap.out, &rj);
    cr_assert_eq(jint(rj.summary, "heaps"), 40);
    cr_assert_eq(jint(rj.summary, "complete"), 40);
    cr_assert_eq(jint(rj.summary, "verified"), 40);
    cr_assert_eq(jint(rj.summary, "incomplete"), 0);
    cr_assert_eq(jint(rj.summary, "corrupt"), 0);
    cr_assert_eq(jint(rj.summary, "missing"), 0);
    cr_assert_eq(jint(rj.summary, "stops"), 1);
    cr_assert(jbool(rj.summary, "ok"));
    cr_assert_eq(jint(rj.summary, "packets"), jint(sj, "packets"),
                 "every packet sent was received");
    /* The first heap carries the descriptors of "Test item 0..2" as >u4 arrays. */
    cr_assert_eq(json_array_size(rj.heaps), 41);
    json_t *h0 = json_array_get(rj.heaps, 0);
    cr_assert_eq(jint(h0, "cnt"), 1);
    json_t *descs = json_object_get(h0, "descriptors");
    cr_assert_eq(json_array_size(descs), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *d = json_array_get(descs, i);
        char name[32];
        snprintf(name, sizeof name, "Test item %zu", i);
        cr_assert_eq(jint(d, "id"), (json_int_t)(0x1000 + i));
        cr_assert_str_eq(json_string_value(json_object_get(d, "name")), name);
        cr_assert_str_eq(json_string_value(json_object_get(d, "dtype")), ">u4");
        cr_assert_eq(json_integer_value(json_array_get(json_object_get(d, "shape"), 0)), 5461);
    }
    for (size_t i = 1; i < 40; i++)
        cr_assert_eq(json_array_size(json_object_get(json_array_get(rj.heaps, i), "descriptors")),
                     0, "only the first heap carries descriptors");
    json_t *last = json_array_get(rj.heaps, 40);
    cr_assert_str_eq(json_string_value(json_object_get(last, "type")), "stop");
    cr_assert_eq(jint(last, "cnt"), 41);
    free_recv_json(&rj);
    json_decref(sj);
    cap_free(&c);
    cap_free(&rt.cap);
}

Test(stream, verify_roundtrip_inproc)
{
    verify_roundtrip(&(struct transport_case){.name = "inproc"});
}
Test(stream, verify_roundtrip_udp)
{
    verify_roundtrip(&(struct transport_case){.name = "udp"});
}
Test(stream, verify_roundtrip_tcp)
{
    verify_roundtrip(&(struct transport_case){.name = "tcp"});
}
Test(stream, verify_roundtrip_udp_no_layout)
{
    verify_roundtrip(&(struct transport_case){.name = "udp", .no_layout = true});
}

/* Two substreams: one stop heap to each, descriptors in the first heap of each. */
static void substreams_each_get_a_stop_heap(const struct transport_case *tc)
{
    bool inproc = strcmp(tc->name, "inproc") == 0;
    char q0[64], q1[64];
    snprintf(q0, sizeof q0, "tools-sub0-%ld", (long)getpid());
    snprintf(q1, sizeof q1, "tools-sub1-%ld", (long)getpid());
    const char *rargs[16] = {"--verify", "--json", "--timeout", "30"};
    size_t n = 4;
    if (inproc) {
        rargs[n++] = "--inproc";
        rargs[n++] = q0;
        rargs[n++] = q1;
    } else {
        rargs[n++] = "127.0.0.1:0";
        rargs[n++] = "127.0.0.1:0";
    }
    rargs[n] = NULL;
    struct rthread rt;
    rt_start(&rt, rargs);
    const char *sargs[16] = {"--verify", "--heaps", "11", "--heap-size", "8192", "--quiet",
                             "--rate", "0.2"};
    size_t k = 8;
    if (inproc) {
        sargs[k++] = "--inproc";
        sargs[k++] = q0;
        sargs[k++] = q1;
    } else {
        sargs[k++] = rt.addr[0];
        sargs[k++] = rt.addr[1];
    }
    sargs[k] = NULL;
    struct captured c;
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", sargs, &c), 0, "%s", c.err);
    cr_assert_eq(rt_join(&rt), 0, "%s\n%s", rt.cap.err, rt.cap.out);
    struct recv_json rj;
    parse_recv_json(rt.cap.out, &rj);
    cr_assert_eq(jint(rj.summary, "complete"), 11);
    cr_assert_eq(jint(rj.summary, "stops"), 2);
    cr_assert_eq(jint(rj.summary, "stops_expected"), 2);
    cr_assert_eq(jint(rj.summary, "missing"), 0);
    int stops[2] = {0, 0}, descs[2] = {0, 0};
    size_t i;
    json_t *h;
    json_array_foreach(rj.heaps, i, h) {
        json_int_t src = jint(h, "source"), cnt = jint(h, "cnt");
        cr_assert(src == 0 || src == 1);
        cr_assert_eq((cnt - 1) % 2, src, "heap %lld went to substream %lld", (long long)cnt,
                     (long long)src);
        if (strcmp(json_string_value(json_object_get(h, "type")), "stop") == 0) {
            stops[src]++;
            cr_assert(cnt == 12 || cnt == 13);
        } else {
            descs[src] += json_array_size(json_object_get(h, "descriptors")) > 0;
        }
    }
    cr_assert(stops[0] == 1 && stops[1] == 1, "stop heaps per substream: %d %d", stops[0], stops[1]);
    cr_assert(descs[0] == 1 && descs[1] == 1, "descriptor heaps per substream: %d %d", descs[0],
              descs[1]);
    free_recv_json(&rj);
    cap_free(&c);
    cap_free(&rt.cap);
}

Test(stream, substreams_each_get_a_stop_heap_inproc)
{
    substreams_each_get_a_stop_heap(&(struct transport_case){.name = "inproc"});
}
Test(stream, substreams_each_get_a_stop_heap_udp)
{
    substreams_each_get_a_stop_heap(&(struct transport_case){.name = "udp"});
}

/* The flavour applies to every heap, data and stop alike, and --pyspead round-trips. */
Test(stream, flavour_applies_to_every_heap)
{
    const char *flavours[][4] = {{"--flavour", "SPEAD-64-48", NULL, NULL},
                                 {"--addr-bits", "32", NULL, NULL},
                                 {"--pyspead", NULL, NULL, NULL}};
    const int habs[] = {48, 32, 40};
    for (size_t f = 0; f < 3; f++) {
        char queue[64];
        snprintf(queue, sizeof queue, "tools-flavour-%ld-%zu", (long)getpid(), f);
        const char *rargs[] = {"--verify", "--json", "--timeout", "30", "--inproc", queue,
                               f == 2 ? "--pyspead" : NULL, NULL};
        struct rthread rt;
        rt_start(&rt, rargs);
        /* --heap-size 4: one element per heap, sent as an immediate item. */
        const char *sargs[12] = {"--verify", "--quiet", "--heaps", "5", "--heap-size",
                                 f == 1 ? "4" : "4096", "--inproc", queue};
        size_t k = 8;
        for (size_t j = 0; flavours[f][j]; j++)
            sargs[k++] = flavours[f][j];
        sargs[k] = NULL;
        struct captured c;
        cr_assert_eq(run_tool(spct_send_main, "speadcast-send", sargs, &c), 0, "%s", c.err);
        cr_assert_eq(rt_join(&rt), 0, "%s\n%s", rt.cap.err, rt.cap.out);
        struct recv_json rj;
        parse_recv_json(rt.cap.out, &rj);
        cr_assert_eq(jint(rj.summary, "verified"), 5);
        size_t i;
        json_t *h;
        json_array_foreach(rj.heaps, i, h) cr_assert_eq(jint(h, "heap_address_bits"), habs[f],
                                                        "heap %zu of case %zu", i, f);
        if (f == 1) {
            json_t *item = json_array_get(json_object_get(json_array_get(rj.heaps, 1), "items"), 0);
            cr_assert(jbool(item, "immediate"));
            cr_assert_eq(jint(item, "bytes"), 4);
        }
        free_recv_json(&rj);
        cap_free(&c);
        cap_free(&rt.cap);
    }
}

/* Data that is not the pattern is reported corrupt, and the receiver exits 1. */
Test(stream, corrupt_data_is_detected)
{
    char queue[64];
    snprintf(queue, sizeof queue, "tools-corrupt-%ld", (long)getpid());
    const char *rargs[] = {"--verify", "--quiet", "--timeout", "30", "--inproc", queue, NULL};
    struct rthread rt;
    rt_start(&rt, rargs);
    const char *sargs[] = {"--heaps", "6", "--heap-size", "4096", "--quiet", "--inproc", queue,
                           NULL}; /* no --verify: the items hold zeros */
    struct captured c;
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", sargs, &c), 0, "%s", c.err);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_FAIL);
    cr_assert_eq(rt.r.corrupt, 6);
    cr_assert_eq(rt.r.complete, 6);
    cr_assert_eq(rt.r.verified, 0);
    cr_assert(strstr(rt.cap.err, "heap 1 is corrupt: item 0x1000 element 0 is 0, expected 48271"),
              "%s", rt.cap.err);
    cr_assert(strstr(rt.cap.out, "Verify: FAILED"), "%s", rt.cap.out);
    cap_free(&c);
    cap_free(&rt.cap);
}

/* Heaps pushed straight into a queue: cnt 3 never sent, cnt 4 lacks a packet. */
Test(stream, lost_and_incomplete_heaps_are_counted)
{
    char queue[64];
    snprintf(queue, sizeof queue, "tools-loss-%ld", (long)getpid());
    const char *rargs[] = {"--verify", "--json", "--timeout", "30", "--inproc", queue, NULL};
    struct rthread rt;
    rt_start(&rt, rargs);
    struct spc_inproc_queue *q;
    cr_assert_eq(spc_inproc_queue_open(&q, queue), 0);
    uint8_t data[4096];
    uint8_t scratch[1472];
    for (uint64_t cnt = 1; cnt <= 6; cnt++) {
        if (cnt == 3)
            continue;
        struct spc_heap *h;
        cr_assert_eq(spc_heap_create(&h, NULL), 0);
        if (cnt == 6) {
            cr_assert_eq(spc_heap_add_end(h), 0);
        } else {
            spct_pattern_fill(data, 1024, (cnt - 1) * 1024);
            cr_assert_eq(spc_heap_add_item(h, 0x1000, data, sizeof data, true), 0);
        }
        struct spc_packetizer pz;
        cr_assert_eq(spc_packetizer_init(&pz, h, cnt, 1472), 0);
        struct spc_packet pkt;
        for (int i = 0; spc_packetizer_next(&pz, scratch, &pkt) == 1; i++)
            if (!(cnt == 4 && i == 1))
                cr_assert_eq(spc_inproc_queue_pushv(q, pkt.iov, pkt.n_iov), 0);
        spc_heap_destroy(h);
    }
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_FAIL);
    spc_inproc_queue_close(q);
    struct recv_json rj;
    parse_recv_json(rt.cap.out, &rj);
    cr_assert_eq(jint(rj.summary, "complete"), 3);
    cr_assert_eq(jint(rj.summary, "incomplete"), 1);
    cr_assert_eq(jint(rj.summary, "missing"), 1);
    cr_assert_eq(jint(rj.summary, "corrupt"), 0);
    cr_assert_eq(jint(rj.summary, "verified"), 3);
    cr_assert_eq(jint(rj.summary, "stops"), 1);
    cr_assert(!jbool(rj.summary, "ok"));
    free_recv_json(&rj);
    cap_free(&rt.cap);
}

/* No sender: the receiver gives up at --timeout; verifying, that is a failure. */
Test(stream, timeout_without_stop_heap_fails_verification)
{
    const char *rargs[] = {"--verify", "--quiet", "--timeout", "0.3", "127.0.0.1:0", NULL};
    struct rthread rt;
    double t0 = spct_now();
    rt_start(&rt, rargs);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_FAIL);
    double took = spct_now() - t0;
    cr_assert(took >= 0.25 && took < 5, "took %g s", took);
    cr_assert(rt.r.timed_out && !rt.r.finished);
    cr_assert(strstr(rt.cap.out, "ended before every stop heap arrived"), "%s", rt.cap.out);
    cap_free(&rt.cap);
}

/* --heaps N ends the receiver after N heaps even though the sender goes on. */
Test(stream, receiver_heaps_limit)
{
    char queue[64];
    snprintf(queue, sizeof queue, "tools-limit-%ld", (long)getpid());
    const char *rargs[] = {"--quiet", "--heaps", "5", "--timeout", "30", "--inproc", queue, NULL};
    struct rthread rt;
    rt_start(&rt, rargs);
    const char *sargs[] = {"--heaps", "20", "--heap-size", "1024", "--quiet", "--inproc", queue,
                           NULL};
    struct captured c;
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", sargs, &c), 0, "%s", c.err);
    cr_assert_eq(rt_join(&rt), 0);
    cr_assert_eq(rt.r.heaps, 5);
    cr_assert(rt.r.finished && !rt.r.timed_out);
    cap_free(&c);
    cap_free(&rt.cap);
}

/* Text output: descriptors, item values, the summary lines. */
Test(stream, readable_output)
{
    char queue[64];
    snprintf(queue, sizeof queue, "tools-text-%ld", (long)getpid());
    const char *rargs[] = {"--verify", "--timeout", "30", "--inproc", queue, NULL};
    struct rthread rt;
    rt_start(&rt, rargs);
    const char *sargs[] = {"--verify", "--heaps", "2", "--heap-size", "64", "--progress",
                           "--inproc", queue, NULL};
    struct captured c;
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", sargs, &c), 0, "%s", c.err);
    cr_assert_eq(rt_join(&rt), 0, "%s", rt.cap.err);
    const char *expect[] = {
        "Received heap 1 at ",
        "  descriptor 0x1000 'Test item 0': A test item with arbitrary value; dtype >u4, shape (16,)\n",
        "  0x1000 'Test item 0' = [64 bytes] 48271 182605794 1291394886 1914720637 ...\n",
        "Received stop heap 3 at ",
        "Received 2 heaps: 2 complete, 0 incomplete, 0 corrupt, 0 missing; 1 of 1 stop heaps;",
        "Verify: OK (2 heaps checked)\n",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(strstr(rt.cap.out, expect[i]), "missing \"%s\" in:\n%s", expect[i], rt.cap.out);
    /* spead2_send's summary line, and the forced progress line on stderr. */
    double secs, gbps;
    unsigned long long bytes;
    cr_assert_eq(sscanf(c.out, "Sent %llu bytes in %lf seconds, %lf Gb/s", &bytes, &secs, &gbps), 3,
                 "%s", c.out);
    cr_assert(strstr(c.err, "speadcast-send: ") && strstr(c.err, "Gb/s") &&
              strstr(c.err, "3 heaps"), "progress line: %s", c.err);
    cap_free(&c);
    cap_free(&rt.cap);
}

/* --config: a file-writing third-party plugin (examples/thirdparty-plugin, built in the
 * tree) and the pcap transport; the receiver reads both files back and verifies them.
 * Command-line stream options override the file's stream section. */
#ifdef SPCT_THIRDPARTY_DIR
Test(stream, config_with_third_party_plugin)
{
    char *data = tmp_path("thirdparty.spead"), *cfgp = tmp_path("thirdparty.json");
    FILE *f = fopen(cfgp, "w");
    fprintf(f, "{\"transport\": \"examplefile\", \"options\": {\"path\": \"%s\"}, "
               "\"stream\": {\"max_packet_size\": 1472}, \"plugin_path\": [\"%s\"]}\n",
            data, SPCT_THIRDPARTY_DIR);
    fclose(f);
    const char *sargs[] = {"--config", cfgp, "--verify", "--heaps", "12", "--heap-size", "20000",
                           "--packet", "512", "--json", NULL};
    struct captured c;
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", sargs, &c), 0, "%s", c.err);
    json_t *sj = json_loads(c.out, 0, NULL);
    cr_assert(sj, "%s", c.out);
    cr_assert_str_eq(json_string_value(json_object_get(sj, "transport")), "examplefile");
    cr_assert_eq(jint(sj, "errors"), 0);
    json_int_t packets = jint(sj, "packets");
    cr_assert(packets > 12 * 20000 / 512, "--packet 512 overrides the config's 1472");
    json_decref(sj);
    cap_free(&c);

    struct captured r;
    const char *rargs[] = {"--verify", "--json", "--packet", "512", data, NULL};
    cr_assert_eq(run_tool(spct_recv_main, "speadcast-recv", rargs, &r), 0, "%s\n%s", r.err, r.out);
    struct recv_json rj;
    parse_recv_json(r.out, &rj);
    cr_assert_eq(jint(rj.summary, "verified"), 12);
    cr_assert_eq(jint(rj.summary, "stops"), 1);
    cr_assert_eq(jint(rj.summary, "packets"), packets);
    free_recv_json(&rj);
    cap_free(&r);
    unlink(data);
    unlink(cfgp);
    free(data);
    free(cfgp);

    /* The pcap transport: Ethernet/IPv4/UDP frames, read back through the capture. */
    char *pcap = tmp_path("stream.pcap"), *cfg2 = tmp_path("pcap.json");
    f = fopen(cfg2, "w");
    fprintf(f, "{\"transport\": \"pcap\", \"options\": {\"path\": \"%s\", "
               "\"endpoints\": [\"127.0.0.1:7148\", \"127.0.0.1:7149\"]}}\n", pcap);
    fclose(f);
    const char *s2[] = {"--config", cfg2, "--verify", "--quiet", "--heaps", "9", "--heap-size",
                        "30000", "--items", "2", NULL};
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", s2, &c), 0, "%s", c.err);
    cap_free(&c);
    const char *r2[] = {"--verify", "--quiet", "--stops", "2", pcap, NULL};
    cr_assert_eq(run_tool(spct_recv_main, "speadcast-recv", r2, &r), 0, "%s\n%s", r.err, r.out);
    cr_assert(strstr(r.out, "Received 9 heaps: 9 complete, 0 incomplete, 0 corrupt, 0 missing; "
                            "2 of 2 stop heaps"), "%s", r.out);
    cap_free(&r);
    unlink(pcap);
    unlink(cfg2);
    free(pcap);
    free(cfg2);
}
#endif

/* A receiver that gets a file that is neither pcap nor SPEAD says so. */
Test(stream, unreadable_file_is_an_error)
{
    char *path = tmp_path("junk.bin");
    FILE *f = fopen(path, "w");
    fputs("hello, world", f);
    fclose(f);
    struct captured r;
    const char *args[] = {"--quiet", path, NULL};
    cr_assert_eq(run_tool(spct_recv_main, "speadcast-recv", args, &r), SPCT_EXIT_FAIL);
    cr_assert(strstr(r.err, "neither a pcap capture nor SPEAD packets"), "%s", r.err);
    cap_free(&r);
    unlink(path);
    free(path);
}

/* ------------------------------------------------------------ bench */

Test(bench, search_over_inproc)
{
    struct captured c;
    const char *args[] = {"--transport", "inproc", "--heap-size", "65536", "--max-time", "5",
                          "--trial-time", "0.05", "--json", NULL};
    cr_assert_eq(run_tool(spct_bench_main, "speadcast-bench", args, &c), 0, "%s", c.err);
    json_t *j = json_loads(c.out, 0, NULL);
    cr_assert(j, "%s", c.out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "search");
    double best = json_number_value(json_object_get(j, "best_gbps"));
    double top = json_number_value(json_object_get(j, "top_send_gbps"));
    cr_assert(best > 0 && best <= top + 1e-9, "best %g top %g", best, top);
    json_decref(j);
    cap_free(&c);
}

Test(bench, search_prints_trials)
{
    struct captured c;
    const char *args[] = {"--transport", "udp", "--receiver", "process", "--heap-size", "65536",
                          "--max-time", "5", "--trial-time", "0.05", NULL};
    cr_assert_eq(run_tool(spct_bench_main, "speadcast-bench", args, &c), 0, "%s", c.err);
    cr_assert(strstr(c.out, "rate     unlimited: sent"), "%s", c.out);
    cr_assert(strstr(c.out, "Highest sustained rate: ") || strstr(c.out, "No rate tested was sustained"),
              "%s", c.out);
    cap_free(&c);
}

Test(bench, sweep_table_and_svg_chart)
{
    char *svg = tmp_path("sweep.svg");
    struct captured c;
    const char *args[] = {"--sweep", "--transport", "tcp", "--packets", "1472,8972",
                          "--heap-sizes", "16384,131072", "--trial-time", "0.02", "--quiet",
                          "--plot", svg, NULL};
    cr_assert_eq(run_tool(spct_bench_main, "speadcast-bench", args, &c), 0, "%s", c.err);
    cr_assert(strstr(c.out, "  packet   heap size   heaps   sent Gb/s   recv Gb/s   complete"),
              "%s", c.out);
    unsigned rows = 0;
    for (const char *p = c.out; (p = strstr(p, "\n    ")) != NULL; p++)
        rows++;
    cr_assert_eq(rows, 4, "one row per (packet, heap size):\n%s", c.out);
    cr_assert(strstr(c.out, "Chart written to "), "%s", c.out);
    size_t len;
    char *text = tu_read_file(svg, &len);
    cr_assert(text, "no chart at %s", svg);
    cr_assert(strncmp(text, "<?xml", 5) == 0);
    cr_assert(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    cr_assert(strstr(text, "</svg>\n"));
    size_t lines = 0, dots = 0;
    for (const char *p = text; (p = strstr(p, "<polyline")) != NULL; p++)
        lines++;
    for (const char *p = text; (p = strstr(p, "<circle")) != NULL; p++)
        dots++;
    cr_assert_eq(lines, 2, "one line per heap size");
    cr_assert_eq(dots, 4, "one point per measurement");
    cr_assert(strstr(text, "heap 16 KiB") && strstr(text, "heap 128 KiB"));
    free(text);
    unlink(svg);
    free(svg);
    cap_free(&c);
}

/* ------------------------------------------------------------ hostile and lossy input */

/* A TCP connection to "127.0.0.1:port" (the receiver's address); -1 on failure. */
static int connect_tcp(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A listening TCP socket on 127.0.0.1 with a free port; its "host:port" in addr. */
static int listen_tcp(int *fd, char *addr, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof sa;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(*fd, 4) < 0 ||
        getsockname(*fd, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    snprintf(addr, len, "127.0.0.1:%u", ntohs(sa.sin_port));
    return 0;
}

/* Starts a receiver (args, NULL-terminated, then --inproc and the queue
 * "tools-TAG-PID") and opens its queue for pushing packets into. */
static struct spc_inproc_queue *queue_receiver(const char *tag, const char *const *args,
                                               struct rthread *rt)
{
    char queue[64];
    snprintf(queue, sizeof queue, "tools-%s-%ld", tag, (long)getpid());
    const char *rargs[24];
    size_t k = 0;
    for (; args[k]; k++)
        rargs[k] = args[k];
    rargs[k++] = "--inproc";
    rargs[k++] = queue;
    rargs[k] = NULL;
    rt_start(rt, rargs);
    struct spc_inproc_queue *q;
    cr_assert_eq(spc_inproc_queue_open(&q, queue), 0);
    return q;
}

/* Pushes every packet of h (as heap cnt) into q. */
static void push_packets(struct spc_inproc_queue *q, const struct spc_heap *h, uint64_t cnt,
                         size_t packet)
{
    uint8_t scratch[9000];
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, cnt, packet), 0);
    struct spc_packet pkt;
    while (spc_packetizer_next(&pz, scratch, &pkt) == 1)
        cr_assert_eq(spc_inproc_queue_pushv(q, pkt.iov, pkt.n_iov), 0);
}

/* Pushes heap `cnt` into q: a data heap of 4096 pattern bytes (as speadcast-send --verify
 * sends heap cnt for a stream starting at cnt `first`), or a stop heap. Packets whose
 * index is in skip (bit i) are left out; dup (bit i) sends packet i a second time at the
 * end. */
static void push_heap(struct spc_inproc_queue *q, uint64_t cnt, uint64_t first, bool stop,
                      unsigned skip, unsigned dup)
{
    static uint8_t data[4096];
    uint8_t scratch[1472], again[1472];
    size_t again_len = 0;
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    if (stop) {
        cr_assert_eq(spc_heap_add_end(h), 0);
    } else {
        spct_pattern_fill(data, 1024, (cnt - first) * 1024);
        cr_assert_eq(spc_heap_add_item(h, 0x1000, data, sizeof data, true), 0);
    }
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, cnt, 1472), 0);
    struct spc_packet pkt;
    for (unsigned i = 0; spc_packetizer_next(&pz, scratch, &pkt) == 1; i++) {
        if (dup & (1u << i)) {
            for (unsigned k = 0; k < pkt.n_iov; k++) {
                memcpy(again + again_len, pkt.iov[k].iov_base, pkt.iov[k].iov_len);
                again_len += pkt.iov[k].iov_len;
            }
        }
        if (!(skip & (1u << i)))
            cr_assert_eq(spc_inproc_queue_pushv(q, pkt.iov, pkt.n_iov), 0);
    }
    if (again_len) {
        struct iovec iov = {again, again_len};
        cr_assert_eq(spc_inproc_queue_pushv(q, &iov, 1), 0);
    }
    spc_heap_destroy(h);
}

struct pushed {
    uint64_t cnt;
    bool stop;
    unsigned skip, dup;
};

/* Runs speadcast-recv --verify --json on an inproc queue fed with the heaps given, with
 * extra receiver options; returns the exit status and the parsed output. */
static int verify_pushed(const char *tag, const char *const *extra, uint64_t first,
                         const struct pushed *heaps, size_t n, struct recv_json *rj,
                         struct rthread *rt)
{
    const char *rargs[16] = {"--verify", "--json", "--timeout", "20"};
    size_t k = 4;
    for (size_t i = 0; extra && extra[i]; i++)
        rargs[k++] = extra[i];
    rargs[k] = NULL;
    struct spc_inproc_queue *q = queue_receiver(tag, rargs, rt);
    for (size_t i = 0; i < n; i++)
        push_heap(q, heaps[i].cnt, first, heaps[i].stop, heaps[i].skip, heaps[i].dup);
    int rc = rt_join(rt);
    spc_inproc_queue_close(q);
    parse_recv_json(rt->cap.out, rj);
    return rc;
}

/* Defect 2: --verify against the sender's cnt sequence. Each case feeds heaps into a
 * receiver and checks its exit status and summary (-1: not checked). */
struct verify_case {
    const char *tag, *what;
    const char *extra[3];
    uint64_t first;
    struct pushed heaps[6];
    size_t n;
    int status;
    int missing, duplicates, duplicate_packets, incomplete, verified;
    const char *message; /* expected on stderr, or NULL */
};

Test(verify, sequence_cases)
{
    static const struct verify_case cases[] = {
        {"lead", "the first heap lost", {NULL}, 1,
         {{2, false, 0, 0}, {3, false, 0, 0}, {4, true, 0, 0}}, 3, SPCT_EXIT_FAIL,
         1, 0, 0, 0, 2, NULL},
        {"replay", "heap 3 lost, heap 2 sent twice: the replay does not fill the gap", {NULL},
         1, {{1, false, 0, 0}, {2, false, 0, 0}, {2, false, 0, 0}, {4, false, 0, 0},
             {5, true, 0, 0}}, 5, SPCT_EXIT_FAIL, 1, 1, 0, 0, -1, NULL},
        {"trail", "heaps between the last one received and the stop heap", {NULL}, 1,
         {{1, false, 0, 0}, {2, false, 0, 0}, {5, true, 0, 0}}, 3, SPCT_EXIT_FAIL,
         2, 0, 0, 0, 2, NULL},
        {"nodata", "only the stop heap arrived", {NULL}, 1, {{1, true, 0, 0}}, 1,
         SPCT_EXIT_FAIL, 0, 0, 0, 0, 0, "no data heap arrived"},
        {"latedup", "a late copy of a packet of a complete heap", {NULL}, 1,
         {{1, false, 0, 1}, {2, false, 0, 0}, {3, true, 0, 0}}, 3, SPCT_EXIT_OK,
         0, 0, 1, 0, 2, NULL},
        {"share", "substream 1 of 2: cnts 2 and 4, then its stop heap (cnt 6; 5 is the "
                  "other substream's)", {"--substream", "1/2", NULL}, 1,
         {{2, false, 0, 0}, {4, false, 0, 0}, {6, true, 0, 0}}, 3, SPCT_EXIT_OK,
         0, 0, 0, 0, 2, NULL},
        {"share2", "substream 1 of 2 without cnt 2", {"--substream", "1/2", NULL}, 1,
         {{4, false, 0, 0}, {6, true, 0, 0}}, 2, SPCT_EXIT_FAIL, 1, 0, 0, 0, 1, NULL},
        {"first", "a sender starting at cnt 10", {"--first-cnt", "10", NULL}, 10,
         {{10, false, 0, 0}, {11, false, 0, 0}, {12, true, 0, 0}}, 3, SPCT_EXIT_OK,
         0, 0, 0, 0, 2, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct verify_case *c = &cases[i];
        struct recv_json rj;
        struct rthread rt;
        int rc = verify_pushed(c->tag, c->extra, c->first, c->heaps, c->n, &rj, &rt);
        cr_expect_eq(rc, c->status, "%s: exit %d\n%s%s", c->what, rc, rt.cap.out, rt.cap.err);
        const struct { const char *key; int want; } fields[] = {
            {"missing", c->missing}, {"duplicates", c->duplicates},
            {"duplicate_packets", c->duplicate_packets}, {"incomplete", c->incomplete},
            {"verified", c->verified}};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
            if (fields[f].want >= 0)
                cr_expect_eq(jint(rj.summary, fields[f].key), fields[f].want, "%s: %s\n%s",
                             c->what, fields[f].key, rt.cap.out);
        cr_expect_eq(jbool(rj.summary, "ok"), c->status == SPCT_EXIT_OK, "%s", c->what);
        if (c->message)
            cr_expect(strstr(rt.cap.err, c->message), "%s: %s", c->what, rt.cap.err);
        free_recv_json(&rj);
        cap_free(&rt.cap);
    }
}

/* After rt_join: the summary's counter key is want, and stderr holds text (if not NULL).
 * Frees the captured output. */
static void expect_counted(struct rthread *rt, const char *key, json_int_t want, const char *text)
{
    struct recv_json rj;
    parse_recv_json(rt->cap.out, &rj);
    cr_expect_eq(jint(rj.summary, key), want, "%s: %s", key, rt->cap.out);
    if (text)
        cr_expect(strstr(rt->cap.err, text), "expected \"%s\" in: %s", text, rt->cap.err);
    free_recv_json(&rj);
    cap_free(&rt->cap);
}

/* Defect 1: packets announcing 256 MiB heaps with a few bytes at their far end commit no
 * memory beyond --max-memory; they are refused, counted and reported. */
Test(hostile, memory_budget_refuses_amplification)
{
    const char *rargs[] = {"--json", "--quiet", "--max-memory", "1M", "--timeout", "20", NULL};
    struct rthread rt;
    struct spc_inproc_queue *q = queue_receiver("amp", rargs, &rt);
    for (uint64_t cnt = 1; cnt <= 16; cnt++) {
        /* cnt, size 256 MiB, offset 256 MiB - 8, length 8; 8 payload bytes. */
        uint8_t p[48] = {0x53, 4, 3, 5, 0, 0, 0, 4};
        const uint64_t imm = UINT64_C(1) << 63;
        uint64_t w[4] = {imm | UINT64_C(1) << 40 | cnt, imm | UINT64_C(2) << 40 | (256u << 20),
                         imm | UINT64_C(3) << 40 | ((256u << 20) - 8), imm | UINT64_C(4) << 40 | 8};
        for (int i = 0; i < 4; i++)
            for (int b = 0; b < 8; b++)
                p[8 + 8 * i + b] = (uint8_t)(w[i] >> (56 - 8 * b));
        struct iovec iov = {p, sizeof p};
        cr_assert_eq(spc_inproc_queue_pushv(q, &iov, 1), 0);
    }
    push_heap(q, 17, 1, true, 0, 0);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_OK, "%s", rt.cap.err);
    spc_inproc_queue_close(q);
    expect_counted(&rt, "memory_refused", 16, "--max-memory");
}

/* Defect 1: connections beyond --max-connections are closed at once and counted. */
Test(hostile, tcp_connections_are_capped)
{
    const char *rargs[] = {"--tcp", "--json", "--quiet", "--max-connections", "2", "--stops", "0",
                           "--timeout", "1", "127.0.0.1:0", NULL};
    struct rthread rt;
    rt_start(&rt, rargs);
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = connect_tcp(rt.addr[0]);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_OK, "%s", rt.cap.err);
    for (int i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    expect_counted(&rt, "connections_refused", 3, "--max-connections 2");
}

/* A connection the receiver gives up on (not SPEAD) frees its place under the cap: the
 * next connection's stop heap ends the run. */
Test(hostile, closed_connections_leave_the_cap)
{
    const char *rargs[] = {"--tcp", "--quiet", "--max-connections", "1", "--timeout", "10",
                           "127.0.0.1:0", NULL};
    struct rthread rt;
    rt_start(&rt, rargs);
    int bad = connect_tcp(rt.addr[0]);
    cr_assert(bad >= 0);
    cr_assert_eq(send(bad, "not SPEAD at all", 16, 0), 16);
    char byte;
    cr_assert_eq(recv(bad, &byte, 1, 0), 0, "the receiver closes a connection it cannot parse");
    close(bad);
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    cr_assert_eq(spc_heap_add_end(h), 0);
    uint8_t scratch[1472];
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, h, 1, 1472), 0);
    struct spc_packet pkt;
    cr_assert_eq(spc_packetizer_next(&pz, scratch, &pkt), 1);
    int good = connect_tcp(rt.addr[0]);
    cr_assert(good >= 0);
    for (unsigned k = 0; k < pkt.n_iov; k++)
        cr_assert_eq(send(good, pkt.iov[k].iov_base, pkt.iov[k].iov_len, 0),
                     (ssize_t)pkt.iov[k].iov_len);
    spc_heap_destroy(h);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_OK, "%s", rt.cap.err);
    close(good);
    cr_assert(rt.r.finished && rt.r.stops == 1, "%s", rt.cap.err);
    cr_assert_eq(rt.r.connections_refused, 0);
    cap_free(&rt.cap);
}

/* Defect 6: descriptors kept are bounded (--max-descriptors); the rest are counted. */
Test(hostile, descriptor_flood_is_bounded)
{
    const char *rargs[] = {"--json", "--quiet", "--max-descriptors", "100", "--timeout", "20",
                           NULL};
    struct rthread rt;
    struct spc_inproc_queue *q = queue_receiver("descs", rargs, &rt);
    for (uint64_t cnt = 1; cnt <= 3; cnt++) {
        struct spc_heap *h;
        cr_assert_eq(spc_heap_create(&h, NULL), 0);
        for (uint64_t i = 0; i < 100; i++) {
            char name[32];
            snprintf(name, sizeof name, "d%" PRIu64, i);
            struct spc_descriptor d = {.id = 0x2000 + 100 * (cnt - 1) + i, .name = name,
                                       .dtype = ">u4"};
            cr_assert_eq(spc_heap_add_descriptor(h, &d), 0);
        }
        push_packets(q, h, cnt, 9000);
        spc_heap_destroy(h);
    }
    push_heap(q, 4, 1, true, 0, 0);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_OK, "%s", rt.cap.err);
    spc_inproc_queue_close(q);
    expect_counted(&rt, "descriptors_dropped", 200, NULL);
}

/* Defect 11: --json prints UTF-8 names as they are (jansson reads them back equal). */
Test(hostile, json_output_keeps_utf8)
{
    const char *rargs[] = {"--json", "--timeout", "20", NULL};
    struct rthread rt;
    struct spc_inproc_queue *q = queue_receiver("utf8", rargs, &rt);
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    struct spc_descriptor d = {.id = 0x1000, .name = "temp\xc3\xa9rature", .description = "\xe2\x84\x83 \"q\"\n",
                               .dtype = ">u4"};
    cr_assert_eq(spc_heap_add_descriptor(h, &d), 0);
    uint32_t v = 7;
    cr_assert_eq(spc_heap_add_item(h, 0x1000, &v, 4, true), 0);
    push_packets(q, h, 1, 1472);
    spc_heap_destroy(h);
    push_heap(q, 2, 1, true, 0, 0);
    cr_assert_eq(rt_join(&rt), SPCT_EXIT_OK, "%s", rt.cap.err);
    spc_inproc_queue_close(q);
    struct recv_json rj;
    parse_recv_json(rt.cap.out, &rj);
    json_t *heap = json_array_get(rj.heaps, 0);
    json_t *desc = json_array_get(json_object_get(heap, "descriptors"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(desc, "name")), "temp\xc3\xa9rature",
                     "%s", rt.cap.out);
    cr_assert_str_eq(json_string_value(json_object_get(desc, "description")),
                     "\xe2\x84\x83 \"q\"\n");
    json_t *item = json_array_get(json_object_get(heap, "items"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(item, "name")), "temp\xc3\xa9rature");
    free_recv_json(&rj);
    cap_free(&rt.cap);
}

/* Defect 4: --ready-file refuses to replace anything but a regular file. */
Test(hostile, ready_file_refuses_fifo_and_symlink)
{
    char *fifo = tmp_path("ready.fifo"), *link = tmp_path("ready.link");
    unlink(fifo);
    unlink(link);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(symlink("/nonexistent-target", link), 0);
    const char *paths[] = {fifo, link};
    for (int i = 0; i < 2; i++) {
        struct captured c;
        const char *args[] = {"--quiet", "--timeout", "0.1", "--ready-file", paths[i],
                              "127.0.0.1:0", NULL};
        cr_assert_eq(run_tool(spct_recv_main, "speadcast-recv", args, &c), SPCT_EXIT_FAIL,
                     "%s", c.err);
        cr_assert(strstr(c.err, "is not a regular file"), "%s", c.err);
        cap_free(&c);
    }
    struct stat st;
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the symlink was replaced");
    /* A regular file is replaced, and no temporary file is left behind. */
    char *reg = tmp_path("ready.txt");
    FILE *f = fopen(reg, "w");
    fputs("old\n", f);
    fclose(f);
    struct captured c;
    const char *args[] = {"--quiet", "--timeout", "0.1", "--ready-file", reg, "127.0.0.1:0", NULL};
    cr_assert_eq(run_tool(spct_recv_main, "speadcast-recv", args, &c), SPCT_EXIT_OK, "%s", c.err);
    size_t len;
    char *text = tu_read_file(reg, &len);
    cr_assert(text && strncmp(text, "127.0.0.1:", 10) == 0, "%s", text);
    free(text);
    cap_free(&c);
    unlink(fifo);
    unlink(link);
    unlink(reg);
    free(fifo);
    free(link);
    free(reg);
}

/* Ends a sender that the guard below failed to stop (today's code would run forever). */
static void *interrupt_later(void *arg)
{
    (void)arg;
    spct_sleep(1.0);
    spct_interrupted = 1;
    return NULL;
}

/* Defect 7: inproc or bytes chosen through --config cannot run unbounded either. */
Test(hostile, unbounded_transport_guard_applies_to_config)
{
    const char *texts[] = {
        "{\"transport\": \"inproc\", \"options\": {\"queues\": [\"tools-guard\"]}}",
        "{\"transport\": \"bytes\"}"};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, interrupt_later, NULL), 0);
    for (int i = 0; i < 2; i++) {
        char *path = tmp_path(i ? "guard-bytes.json" : "guard-inproc.json");
        FILE *f = fopen(path, "w");
        fputs(texts[i], f);
        fclose(f);
        struct captured c;
        const char *args[] = {"--quiet", "--config", path, NULL};
        cr_assert_eq(run_tool(spct_send_main, "speadcast-send", args, &c), SPCT_EXIT_USAGE,
                     "%s", c.err);
        cr_assert(strstr(c.err, "needs --heaps"), "%s", c.err);
        cap_free(&c);
        unlink(path);
        free(path);
    }
    pthread_join(th, NULL);
}

/* Defect 9: heaps failed by a peer that resets the connection are counted apart from
 * the completed ones, and the JSON error carries the cause. */
static void *resetting_peer(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0) {
        char buf[65536];
        size_t got = 0;
        while (got < 200000) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd); /* RST */
    }
    return NULL;
}

Test(hostile, send_json_counts_failed_heaps)
{
    int lfd;
    char addr[64];
    cr_assert_eq(listen_tcp(&lfd, addr, sizeof addr), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, resetting_peer, &lfd), 0);
    struct captured c;
    const char *args[] = {"--tcp", "--json", "--heaps", "400", "--heap-size", "65536",
                          "--max-heaps", "8", addr, NULL};
    int rc = run_tool(spct_send_main, "speadcast-send", args, &c);
    pthread_join(th, NULL);
    close(lfd);
    cr_assert_eq(rc, SPCT_EXIT_FAIL, "%s", c.out);
    json_t *j = json_loads(c.out, 0, NULL);
    cr_assert(j, "%s", c.out);
    json_int_t done = jint(j, "heaps"), failed = jint(j, "failed_heaps");
    cr_assert(failed >= 1, "%s", c.out);
    cr_assert(done + failed <= 401 && done < 400, "%s", c.out);
    cr_assert(jint(j, "bytes") <= done * 70000, "%s", c.out);
    cr_assert(jint(j, "failed_bytes") >= 65536, "%s", c.out);
    const char *e = json_string_value(json_object_get(j, "error"));
    cr_assert(e && (strstr(e, "Connection reset by peer") || strstr(e, "Broken pipe")), "%s",
              c.out);
    json_decref(j);
    cap_free(&c);
}

/* Defect 13: messages that name the problem (the option ones are with the other bad
 * option values above). */
Test(hostile, messages_name_the_problem)
{
    /* --addr-bits, --rate and --burst: in send_options/bad_values_have_clear_messages. */
    struct captured c;
    char *path = tmp_path("empty-v6.json");
    FILE *f = fopen(path, "w");
    fputs("{\"transport\": \"udp\", \"options\": {\"endpoints\": [\"[]:9000\"]}}", f);
    fclose(f);
    const char *cargs[] = {"--heaps", "1", "--config", path, NULL};
    cr_assert_eq(run_tool(spct_send_main, "speadcast-send", cargs, &c), SPCT_EXIT_FAIL);
    cr_assert(strstr(c.err, "empty IPv6 address"), "%s", c.err);
    cr_assert(!strstr(c.err, "no closing"), "%s", c.err);
    cap_free(&c);
    unlink(path);
    free(path);

    /* A pcap of an unsupported link type: that reason only. */
    char *pcap = tmp_path("linktype.pcap");
    f = fopen(pcap, "wb");
    uint32_t hdr[6] = {0xa1b2c3d4u, 0x00040002u, 0, 0, 65535, 147};
    hdr[1] = 2 | 4u << 16;
    fwrite(hdr, 4, 6, f);
    uint32_t rec[4] = {0, 0, 60, 60};
    uint8_t frame[60] = {0};
    fwrite(rec, 4, 4, f);
    fwrite(frame, 1, sizeof frame, f);
    fclose(f);
    const char *pargs[] = {"--quiet", pcap, NULL};
    cr_assert_eq(run_tool(spct_recv_main, "speadcast-recv", pargs, &c), SPCT_EXIT_FAIL, "%s", c.err);
    cr_assert(strstr(c.err, "unsupported pcap link type 147"), "%s", c.err);
    cr_assert(!strstr(c.err, "ended inside"), "%s", c.err);
    cap_free(&c);
    unlink(pcap);
    free(pcap);
}

/* Defect 15: a rate the sender cannot reach does not stretch a trial past --max-time. */
Test(bench, unreachable_rate_honours_max_time)
{
    struct captured c;
    const char *args[] = {"--transport", "inproc", "--heap-size", "1M", "--rate", "100000",
                          "--trial-time", "0.2", "--max-time", "1", "--json", NULL};
    double t0 = spct_now();
    run_tool(spct_bench_main, "speadcast-bench", args, &c);
    double took = spct_now() - t0;
    cr_assert(took < 10.0, "took %g s with --max-time 1:\n%s%s", took, c.out, c.err);
    cap_free(&c);
}
