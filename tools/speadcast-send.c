/* speadcast-send: spead2_send's sender (same options, defaults, heaps and summary line)
 * over any speadcast transport.
 *
 * Heaps, as spead2_send makes them: items 0x1000+i named "Test item i", each an array of
 * `elements` >u4 values (elements = heap_size / (items * 4)); the first heap sent to each
 * substream also carries the descriptors; after --heaps data heaps, one stop heap per
 * substream. Heap number k (0-based, cnt k+1) goes to substream k mod n. At most W heaps
 * are in flight (W = --max-heaps, or fewer when the whole stream is shorter), and data
 * heap k uses memory slot k mod W, refilled (with --verify) only once heap k-W completed.
 * Unlike spead2_send, every heap (not only the stop heap) is in the chosen flavour.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"
#include "speadcast/speadcast.h"

#define PROG "speadcast-send"


void spct_send_defaults(struct spct_send_opts *o)
{
    memset(o, 0, sizeof *o);
    o->heap_size = 4194304;
    o->items = 1;
    o->heaps = -1;
    o->addr_bits = 40;
    o->packet = 1472;
    o->burst = 65536;
    o->burst_rate_ratio = 1.05;
    o->max_heaps = 4;
    o->rate_method = SPC_RATE_METHOD_AUTO;
    o->rate = 0.0;
    o->ttl = 1;
    o->ibv_vector = 0;
    o->ibv_max_poll = 10;
    o->heap_address_bits = 40;
}

void spct_send_opts_free(struct spct_send_opts *o)
{
    free(o->dest);
    o->dest = NULL;
    o->n_dest = 0;
}

/* "SPEAD-64-48", "64-48" or "48", each optionally followed by ":bug_compat" (0..7). */
static int parse_flavour(const char *text, unsigned *hab, unsigned *bug)
{
    const char *p = text;
    if (strncasecmp(p, "SPEAD-", 6) == 0)
        p += 6;
    if (strncmp(p, "64-", 3) == 0)
        p += 3;
    char *end;
    errno = 0;
    unsigned long h = strtoul(p, &end, 10);
    if (end == p || errno)
        return -1;
    unsigned long b = 0;
    if (*end == ':') {
        const char *q = end + 1;
        b = strtoul(q, &end, 10);
        if (end == q || b > 7)
            return -1;
    }
    if (*end != '\0')
        return -1;
    struct spc_flavour f;
    if (h > 64 || spc_flavour_init(&f, (unsigned)h, (unsigned)b) < 0)
        return -1;
    *hab = (unsigned)h;
    *bug = (unsigned)b;
    return 0;
}

int spct_send_parse(struct spct_send_opts *o, int argc, char **argv, FILE *out, FILE *err)
{
    const struct spct_opt opts[] = {
        {"heap-size", SPCT_OPT_UINT, &o->heap_size, NULL, "BYTES", "payload size of each heap",
         true, true, 0, 1099511627776.0, NULL},
        {"items", SPCT_OPT_UINT, &o->items, NULL, "N", "number of items per heap", true, true,
         1, 1048576, NULL},
        {"heaps", SPCT_OPT_INT, &o->heaps, NULL, "N",
         "number of data heaps to send (-1 = infinite)", true, false, -1, 0, NULL},
        {"verify", SPCT_OPT_FLAG, &o->verify, NULL, NULL,
         "fill the items with the pattern a receiver can verify (spead2_send --verify)", false,
         false, 0, 0, NULL},
        {"tcp", SPCT_OPT_FLAG, &o->tcp, NULL, NULL, "use TCP instead of UDP", false, false, 0, 0,
         NULL},
        {"pyspead", SPCT_OPT_FLAG, &o->pyspead, NULL, NULL,
         "be bug-compatible with PySPEAD (bug_compat 7)", false, false, 0, 0, NULL},
        {"addr-bits", SPCT_OPT_INT, &o->addr_bits, &o->given.addr_bits, "BITS",
         "heap address bits (8..56, a multiple of 8)", false, false, 0, 0, NULL},
        {"flavour", SPCT_OPT_STRING, &o->flavour, NULL, "FLAVOUR",
         "SPEAD flavour, e.g. SPEAD-64-48 or 64-40:7 (heap address bits[:bug_compat])", false,
         false, 0, 0, NULL},
        {"packet", SPCT_OPT_UINT, &o->packet, &o->given.packet, "BYTES",
         "maximum packet size to send", true, true, SPC_MIN_PACKET_SIZE,
         SPC_STREAM_MAX_PACKET_SIZE, NULL},
        {"bind", SPCT_OPT_STRING, &o->bind, &o->given.bind, "ADDRESS",
         "local address to bind sockets to", false, false, 0, 0, NULL},
        {"buffer", SPCT_OPT_UINT, &o->buffer, &o->given.buffer, "BYTES",
         "socket buffer size (default: the transport's)", true, true, 0, 2147483647.0, NULL},
        {"burst", SPCT_OPT_UINT, &o->burst, &o->given.burst, "BYTES", "burst size", true, false,
         1, 0, NULL},
        {"burst-rate-ratio", SPCT_OPT_DOUBLE, &o->burst_rate_ratio, &o->given.burst_rate_ratio,
         "RATIO", "hard rate limit, relative to --rate", true, false, 1.0, 0, NULL},
        {"max-heaps", SPCT_OPT_UINT, &o->max_heaps, &o->given.max_heaps, "N",
         "maximum heaps in flight", true, true, 1, 1048576, NULL},
        {"rate-method", SPCT_OPT_CHOICE, &o->rate_method, &o->given.rate_method, "METHOD",
         "rate limiting method: sw, hw or auto", false, false, 0, 0, spc_rate_method_names()},
        {"rate", SPCT_OPT_DOUBLE, &o->rate, &o->given.rate, "GBPS",
         "transmission rate bound in Gb/s (0 = unlimited)", true, false, 0, 0, NULL},
        {"ttl", SPCT_OPT_INT, &o->ttl, &o->given.ttl, "TTL", "TTL for multicast targets", true,
         true, 0, 255, NULL},
        {"ibv", SPCT_OPT_FLAG, &o->ibv, NULL, NULL, "use ibverbs (needs --bind)", false, false, 0,
         0, NULL},
        {"ibv-vector", SPCT_OPT_INT, &o->ibv_vector, &o->given.ibv_vector, "N",
         "ibverbs interrupt vector (-1 = busy polling)", true, true, -1, 65535, NULL},
        {"ibv-max-poll", SPCT_OPT_INT, &o->ibv_max_poll, &o->given.ibv_max_poll, "N",
         "ibverbs: maximum number of times to poll in a row", true, true, 1, 1000000, NULL},
        {"config", SPCT_OPT_STRING, &o->config, NULL, "FILE",
         "JSON stream config (any transport, third-party ones too); destinations come from it",
         false, false, 0, 0, NULL},
        {"inproc", SPCT_OPT_FLAG, &o->inproc, NULL, NULL,
         "destinations are in-process queue names (tests and speadcast-bench)", false, false, 0,
         0, NULL},
        {"json", SPCT_OPT_FLAG, &o->json, NULL, NULL, "print the final statistics as one JSON object",
         false, false, 0, 0, NULL},
        {"quiet", SPCT_OPT_FLAG, &o->quiet, NULL, NULL, "print only errors", false, false, 0, 0,
         NULL},
        {"progress", SPCT_OPT_FLAG, &o->progress, NULL, NULL,
         "show the progress line on stderr even when it is not a terminal", false, false, 0, 0,
         NULL},
        {"no-progress", SPCT_OPT_FLAG, &o->no_progress, NULL, NULL, "never show the progress line",
         false, false, 0, 0, NULL},
    };
    char **pos;
    size_t n_pos;
    int rc = spct_parse_options(PROG, "[options] host:port [host:port ...]", opts,
                                sizeof opts / sizeof opts[0], argc, argv, &pos, &n_pos, out, err);
    if (rc == 1)
        return 1;
    if (rc < 0)
        return SPCT_EXIT_USAGE;
    free(o->dest);
    o->dest = (const char **)pos;
    o->n_dest = n_pos;

#define USAGE_ERROR(...)                                                               \
    do {                                                                               \
        fprintf(err, PROG ": " __VA_ARGS__);                                           \
        fputc('\n', err);                                                              \
        return SPCT_EXIT_USAGE;                                                        \
    } while (0)

    /* Flavour: --flavour, or --addr-bits and --pyspead. */
    o->heap_address_bits = 40;
    o->bug_compat = 0;
    if (o->flavour) {
        if (parse_flavour(o->flavour, &o->heap_address_bits, &o->bug_compat) < 0)
            USAGE_ERROR("--flavour: '%s' is not a flavour (SPEAD-64-HAB[:bug_compat], HAB a "
                        "multiple of 8 in 8..56, bug_compat 0..7)", o->flavour);
        if (o->given.addr_bits && (unsigned)o->addr_bits != o->heap_address_bits)
            USAGE_ERROR("--flavour %s and --addr-bits %" PRId64 " disagree", o->flavour,
                        o->addr_bits);
        if (o->pyspead && o->bug_compat != SPC_BUG_COMPAT_PYSPEAD_0_5_2)
            USAGE_ERROR("--flavour %s and --pyspead disagree (--pyspead is bug_compat 7)",
                        o->flavour);
    } else {
        struct spc_flavour f;
        if (o->addr_bits < 8 || o->addr_bits > 56 ||
            spc_flavour_init(&f, (unsigned)o->addr_bits, 0) < 0)
            USAGE_ERROR("--addr-bits: %" PRId64 " is not a multiple of 8 in 8..56", o->addr_bits);
        o->heap_address_bits = (unsigned)o->addr_bits;
        o->bug_compat = o->pyspead ? SPC_BUG_COMPAT_PYSPEAD_0_5_2 : 0;
    }
    struct spc_flavour fl = {o->heap_address_bits, o->bug_compat};
    uint64_t last_id = 0x1000 + o->items - 1;
    if (last_id > spc_flavour_max_id(&fl))
        USAGE_ERROR("--items %" PRIu64 " needs item IDs up to 0x%" PRIx64 ", but SPEAD-64-%u "
                    "carries IDs up to 0x%" PRIx64, o->items, last_id, o->heap_address_bits,
                    spc_flavour_max_id(&fl));

    int kinds = o->tcp + o->ibv + o->inproc;
    if (kinds > 1)
        USAGE_ERROR("choose at most one of --tcp, --ibv and --inproc");
    if (o->config) {
        if (o->n_dest)
            USAGE_ERROR("destinations come from the --config file; do not give '%s' as well",
                        o->dest[0]);
        const char *clash = kinds ? (o->tcp ? "--tcp" : o->ibv ? "--ibv" : "--inproc")
                            : o->given.bind ? "--bind"
                            : o->given.buffer ? "--buffer"
                            : o->given.ttl ? "--ttl"
                            : o->given.ibv_vector ? "--ibv-vector"
                            : o->given.ibv_max_poll ? "--ibv-max-poll"
                                                    : NULL;
        if (clash)
            USAGE_ERROR("%s cannot be combined with --config: set the transport and its "
                        "options in the file", clash);
        return 0;
    }
    if (o->n_dest == 0)
        USAGE_ERROR("at least one destination host:port is required (see --help)");
    if (o->tcp && o->n_dest > 1)
        USAGE_ERROR("only one destination is supported with --tcp (got %zu)", o->n_dest);
    if (o->ibv && !o->bind)
        USAGE_ERROR("--ibv requires --bind (the address of the interface to send from)");
    if (o->inproc && o->heaps < 0)
        USAGE_ERROR("--inproc needs --heaps: in-process queues are unbounded and only a "
                    "receiver in this process can drain them");
    for (size_t i = 0; i < o->n_dest; i++) {
        if (o->inproc) {
            if (!*o->dest[i] || strlen(o->dest[i]) > SPC_INPROC_NAME_MAX)
                USAGE_ERROR("queue name '%s' must have 1 to %d bytes", o->dest[i],
                            SPC_INPROC_NAME_MAX);
            continue;
        }
        struct spct_endpoint ep;
        char why[512];
        if (spct_parse_endpoint(o->dest[i], false, &ep, why, sizeof why) < 0)
            USAGE_ERROR("destination %s", why);
    }
    return 0;
#undef USAGE_ERROR
}

/* ------------------------------------------------------------ stream setup */

static int build_config(const struct spct_send_opts *o, struct spc_config **out, FILE *err)
{
    char msg[2048];
    struct spc_config *cfg = NULL;
    int rc;
    struct spc_stream_config sc = SPC_STREAM_CONFIG_DEFAULT;
    if (o->config) {
        rc = spc_config_load(&cfg, o->config, msg, sizeof msg);
        if (rc < 0) {
            fprintf(err, PROG ": --config %s: %s\n", o->config, msg);
            return rc;
        }
        sc = *spc_config_stream(cfg);
        /* Options given on the command line override the file's stream section. */
        if (o->given.packet)
            sc.max_packet_size = o->packet;
        if (o->given.rate)
            sc.rate = o->rate * 1e9 / 8;
        if (o->given.burst)
            sc.burst_size = o->burst;
        if (o->given.burst_rate_ratio)
            sc.burst_rate_ratio = o->burst_rate_ratio;
        if (o->given.max_heaps)
            sc.max_heaps = o->max_heaps;
        if (o->given.rate_method)
            sc.rate_method = (enum spc_rate_method)o->rate_method;
        if (o->flavour || o->given.addr_bits || o->pyspead)
            sc.flavour = (struct spc_flavour){o->heap_address_bits, o->bug_compat};
        sc.on_full = SPC_ON_FULL_FAIL;
        rc = spc_config_set_stream(cfg, &sc, msg, sizeof msg);
        if (rc < 0) {
            fprintf(err, PROG ": %s\n", msg);
            spc_config_destroy(cfg);
            return rc;
        }
        *out = cfg;
        return 0;
    }
    sc.max_packet_size = o->packet;
    sc.rate = o->rate * 1e9 / 8;
    sc.burst_size = o->burst;
    sc.burst_rate_ratio = o->burst_rate_ratio;
    sc.max_heaps = o->max_heaps;
    sc.rate_method = (enum spc_rate_method)o->rate_method;
    sc.on_full = SPC_ON_FULL_FAIL;
    sc.flavour = (struct spc_flavour){o->heap_address_bits, o->bug_compat};
    const char *transport = o->tcp ? "tcp" : o->ibv ? "ibverbs" : o->inproc ? "inproc" : "udp";
    rc = spc_config_create(&cfg, transport, &sc, NULL, msg, sizeof msg);
    if (rc < 0) {
        fprintf(err, PROG ": %s\n", msg);
        return rc;
    }
    for (size_t i = 0; i < o->n_dest && rc == 0; i++) {
        if (o->inproc) {
            rc = spc_config_add_string(cfg, "queues", o->dest[i], msg, sizeof msg);
        } else {
            struct spct_endpoint ep;
            char why[512];
            if (spct_parse_endpoint(o->dest[i], false, &ep, why, sizeof why) < 0) {
                snprintf(msg, sizeof msg, "destination %s", why);
                rc = -EINVAL;
            } else {
                rc = spc_config_add_endpoint(cfg, "endpoints", ep.host, ep.port, msg, sizeof msg);
            }
        }
    }
    if (rc == 0 && o->given.buffer && !o->inproc)
        rc = spc_config_set_uint(cfg, "buffer_size", o->buffer, msg, sizeof msg);
    if (rc == 0 && o->bind && !o->inproc)
        rc = spc_config_set_string(cfg, "interface_address", o->bind, msg, sizeof msg);
    if (rc == 0 && !o->tcp && !o->inproc)
        rc = spc_config_set_uint(cfg, "ttl", (uint64_t)o->ttl, msg, sizeof msg);
    if (rc == 0 && o->ibv) {
        rc = spc_config_set_int(cfg, "comp_vector", o->ibv_vector, msg, sizeof msg);
        if (rc == 0)
            rc = spc_config_set_uint(cfg, "max_poll", (uint64_t)o->ibv_max_poll, msg, sizeof msg);
    }
    if (rc < 0) {
        fprintf(err, PROG ": %s\n", msg);
        spc_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* ------------------------------------------------------------ the sender */

struct sender {
    const struct spct_send_opts *o;
    struct spc_stream *stream;
    unsigned n_sub;
    uint64_t elements;      /* per item */
    size_t item_bytes, heap_bytes;
    size_t window;          /* heaps in flight and memory slots */
    uint8_t *storage;       /* window * heap_bytes */
    struct spc_heap **first, **data, *stop;
    uint64_t data_end;      /* heaps with index < data_end are data heaps */
    uint64_t total;         /* heaps to send in all (UINT64_MAX: until interrupted) */
    uint64_t next;          /* next heap index to queue */
    size_t in_flight;
};

static void sender_free(struct sender *s)
{
    for (size_t i = 0; i < s->window; i++) {
        if (s->first)
            spc_heap_destroy(s->first[i]);
        if (s->data)
            spc_heap_destroy(s->data[i]);
    }
    spc_heap_destroy(s->stop);
    free(s->first);
    free(s->data);
    free(s->storage);
}

static int sender_make_heaps(struct sender *s, const struct spc_flavour *fl, FILE *err)
{
    const struct spct_send_opts *o = s->o;
    s->first = calloc(s->window, sizeof *s->first);
    s->data = calloc(s->window, sizeof *s->data);
    if (s->heap_bytes)
        s->storage = calloc(s->window, s->heap_bytes);
    if (!s->first || !s->data || (s->heap_bytes && !s->storage)) {
        fprintf(err, PROG ": out of memory for %zu heaps of %zu bytes\n", s->window, s->heap_bytes);
        return -ENOMEM;
    }
    int rc = 0;
    int64_t shape[1] = {(int64_t)s->elements};
    for (size_t j = 0; j < s->window && rc == 0; j++) {
        rc = spc_heap_create(&s->first[j], fl);
        if (rc == 0)
            rc = spc_heap_create(&s->data[j], fl);
        for (uint64_t i = 0; i < o->items && rc == 0; i++) {
            char name[64];
            snprintf(name, sizeof name, "Test item %" PRIu64, i);
            struct spc_descriptor d = {
                .id = 0x1000 + i,
                .name = name,
                .description = "A test item with arbitrary value",
                .shape = shape,
                .n_dims = 1,
                .dtype = ">u4",
            };
            rc = spc_heap_add_descriptor(s->first[j], &d);
        }
        for (uint64_t i = 0; i < o->items && rc == 0; i++) {
            uint8_t *p = s->storage ? s->storage + j * s->heap_bytes + i * s->item_bytes : NULL;
            rc = spc_heap_add_item(s->first[j], 0x1000 + i, p, s->item_bytes, true);
            if (rc == 0)
                rc = spc_heap_add_item(s->data[j], 0x1000 + i, p, s->item_bytes, true);
        }
    }
    if (rc == 0)
        rc = spc_heap_create(&s->stop, fl);
    if (rc == 0)
        rc = spc_heap_add_end(s->stop);
    if (rc < 0) {
        fprintf(err, PROG ": cannot build the heaps: %s\n", spc_strerror(rc));
        return rc;
    }
    /* Catch a heap the stream cannot carry before anything is sent. */
    const struct spc_stream_config *sc = spc_stream_get_config(s->stream);
    rc = spc_heap_validate(s->first[0], 1, sc->max_packet_size);
    if (rc < 0) {
        fprintf(err, PROG ": heaps of %" PRIu64 " items cannot be sent in packets of %zu bytes: %s\n",
                o->items, sc->max_packet_size, spc_strerror(rc));
    }
    return rc;
}

static int launch(struct sender *s, FILE *err)
{
    uint64_t idx = s->next;
    const struct spc_heap *heap;
    if (idx < s->data_end) {
        size_t slot = (size_t)(idx % s->window);
        if (s->o->verify && s->heap_bytes)
            spct_pattern_fill(s->storage + slot * s->heap_bytes, s->heap_bytes / 4,
                              idx * s->o->items * s->elements);
        heap = idx < s->n_sub ? s->first[slot] : s->data[slot];
    } else {
        heap = s->stop;
    }
    struct spc_heap_ref ref = {heap, SPC_CNT_AUTO, (uint32_t)(idx % s->n_sub), -1.0};
    int rc = spc_stream_send(s->stream, &ref, NULL, (void *)(uintptr_t)idx);
    if (rc < 0) {
        char detail[512];
        spc_stream_last_error(s->stream, detail, sizeof detail);
        fprintf(err, PROG ": cannot queue heap %" PRIu64 ": %s%s%s\n", idx + 1, spc_strerror(rc),
                detail[0] ? ": " : "", detail);
        return rc;
    }
    s->next++;
    s->in_flight++;
    return 0;
}

static void progress_line(FILE *err, double gbps, uint64_t heaps, uint64_t errors)
{
    fprintf(err, "\r" PROG ": %9.3f Gb/s  %12" PRIu64 " heaps  %" PRIu64 " errors   ", gbps,
            heaps, errors);
    fflush(err);
}

static void print_json(FILE *out, const struct spct_send_opts *o, const struct sender *s,
                       const struct spct_send_result *r, const char *transport,
                       const char *error)
{
    fprintf(out, "{\"bytes\": %" PRIu64 ", \"seconds\": ", r->bytes);
    spct_json_double(out, r->seconds);
    fputs(", \"gbps\": ", out);
    spct_json_double(out, r->seconds > 0 ? r->bytes * 8e-9 / r->seconds : 0.0);
    fprintf(out,
            ", \"heaps\": %" PRIu64 ", \"data_heaps\": %" PRIu64 ", \"stop_heaps\": %" PRIu64
            ", \"packets\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"substreams\": %u"
            ", \"transport\": ",
            r->heaps, r->data_heaps, r->stop_heaps, r->packets, r->errors, r->substreams);
    spct_json_string(out, transport);
    fprintf(out, ", \"heap_size\": %zu, \"items\": %" PRIu64 ", \"elements\": %" PRIu64
            ", \"max_heaps_in_flight\": %zu, \"heap_address_bits\": %u, \"bug_compat\": %u"
            ", \"verify\": %s, \"interrupted\": %s, \"error\": ",
            s->heap_bytes, o->items, s->elements, s->window, o->heap_address_bits, o->bug_compat,
            o->verify ? "true" : "false", r->interrupted ? "true" : "false");
    spct_json_string(out, error);
    fputs("}\n", out);
    fflush(out);
}

int spct_send_run(const struct spct_send_opts *o, struct spct_send_result *res, FILE *out,
                  FILE *err)
{
    struct spct_send_result r;
    memset(&r, 0, sizeof r);
    struct sender s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.elements = o->heap_size / (o->items * 4);
    s.item_bytes = (size_t)(s.elements * 4);
    s.heap_bytes = s.item_bytes * (size_t)o->items;
    if (s.heap_bytes != o->heap_size && !o->quiet)
        fprintf(err, "Heap size is not an exact multiple: using %zu instead of %" PRIu64 "\n",
                s.heap_bytes, o->heap_size);

    struct spc_config *cfg;
    if (build_config(o, &cfg, err) < 0)
        return SPCT_EXIT_FAIL;
    char transport[80];
    snprintf(transport, sizeof transport, "%s", spc_config_transport(cfg));
    struct spc_stream_options so = SPC_STREAM_OPTIONS_DEFAULT;
    so.completion_queue = true;
    char msg[2048];
    int rc = spc_stream_open(&s.stream, cfg, &so, msg, sizeof msg);
    struct spc_flavour fl = spc_config_stream(cfg)->flavour;
    size_t max_heaps = spc_config_stream(cfg)->max_heaps;
    spc_config_destroy(cfg);
    if (rc < 0) {
        fprintf(err, PROG ": cannot open the %s stream: %s\n", transport, msg);
        return SPCT_EXIT_FAIL;
    }
    s.n_sub = spc_stream_n_substreams(s.stream);
    r.substreams = s.n_sub;
    s.data_end = o->heaps < 0 ? UINT64_MAX : (uint64_t)o->heaps;
    s.total = o->heaps < 0 ? UINT64_MAX : (uint64_t)o->heaps + s.n_sub;
    s.window = o->heaps < 0 || (uint64_t)o->heaps + s.n_sub > max_heaps
                   ? max_heaps
                   : (size_t)o->heaps + s.n_sub;

    int status = SPCT_EXIT_OK;
    char first_error[1024] = "";
    if (sender_make_heaps(&s, &fl, err) < 0) {
        spc_stream_close(s.stream);
        sender_free(&s);
        return SPCT_EXIT_FAIL;
    }
    /* As spead2_send: the heaps' memory is registered so ibverbs sends it zero-copy (a
     * no-op on other transports). The stream deregisters it when it closes. */
    struct spc_stream_memory *mem;
    if (s.storage && (rc = spc_stream_register_memory(s.stream, s.storage,
                                                       s.window * s.heap_bytes, &mem)) < 0) {
        char detail[512];
        spc_stream_last_error(s.stream, detail, sizeof detail);
        fprintf(err, PROG ": cannot register %zu bytes of heap memory: %s%s%s\n",
                s.window * s.heap_bytes, spc_strerror(rc), detail[0] ? ": " : "", detail);
        spc_stream_close(s.stream);
        sender_free(&s);
        return SPCT_EXIT_FAIL;
    }
    bool progress = !o->no_progress && !o->quiet && (o->progress || isatty(fileno(err)));
    int fd = spc_stream_completion_fd(s.stream);
    double start = spct_now(), last_progress = start;
    uint64_t last_bytes = 0;
    bool stop_launching = false;
    while (s.next < s.total && s.in_flight < s.window) {
        if (launch(&s, err) < 0) {
            status = SPCT_EXIT_FAIL;
            stop_launching = true;
            break;
        }
    }
    while (s.in_flight > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, 200);
        if (spct_interrupted && !r.interrupted) {
            /* Finish cleanly: no more data heaps, but the stop heaps still go out. */
            r.interrupted = true;
            if (s.next < s.data_end) {
                s.data_end = s.next;
                s.total = s.next + s.n_sub;
            }
        }
        struct spc_stream_completion c[64];
        int n = spc_stream_drain(s.stream, c, 64);
        for (int i = 0; i < n; i++) {
            uint64_t idx = (uint64_t)(uintptr_t)c[i].user;
            s.in_flight--;
            r.bytes += c[i].bytes;
            r.heaps++;
            if (idx < s.data_end)
                r.data_heaps++;
            else
                r.stop_heaps++;
            if (c[i].status < 0) {
                r.errors++;
                if (!first_error[0]) {
                    char detail[512];
                    spc_stream_last_error(s.stream, detail, sizeof detail);
                    snprintf(first_error, sizeof first_error, "heap %" PRIu64 " failed: %s%s%s",
                             idx + 1, spc_strerror(c[i].status), detail[0] ? ": " : "", detail);
                    fprintf(err, "%s" PROG ": %s\n", progress ? "\n" : "", first_error);
                }
                stop_launching = true; /* as spead2_send: the first error ends the run */
                status = SPCT_EXIT_FAIL;
            }
            if (!stop_launching && s.next < s.total && launch(&s, err) < 0) {
                stop_launching = true;
                status = SPCT_EXIT_FAIL;
                if (!first_error[0])
                    snprintf(first_error, sizeof first_error, "could not queue heap %" PRIu64,
                             s.next + 1);
            }
        }
        double now = spct_now();
        if (progress && now - last_progress >= 1.0) {
            progress_line(err, (r.bytes - last_bytes) * 8e-9 / (now - last_progress), r.heaps,
                          r.errors);
            last_progress = now;
            last_bytes = r.bytes;
        }
    }
    r.seconds = spct_now() - start;
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s.stream, &st);
    r.packets = st.packets;
    if (progress) {
        progress_line(err, r.seconds > 0 ? r.bytes * 8e-9 / r.seconds : 0.0, r.heaps, r.errors);
        fputc('\n', err);
    }
    spc_stream_close(s.stream);
    if (o->json)
        print_json(out, o, &s, &r, transport, first_error[0] ? first_error : NULL);
    else if (!o->quiet) {
        fprintf(out, "Sent %" PRIu64 " bytes in %g seconds, %g Gb/s\n", r.bytes, r.seconds,
                r.seconds > 0 ? r.bytes * 8.0e-9 / r.seconds : 0.0);
        fflush(out);
    }
    sender_free(&s);
    if (res)
        *res = r;
    return status;
}

int spct_send_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct spct_send_opts o;
    spct_send_defaults(&o);
    int rc = spct_send_parse(&o, argc, argv, out, err);
    if (rc == 0)
        rc = spct_send_run(&o, NULL, out, err);
    else if (rc == 1)
        rc = SPCT_EXIT_OK;
    spct_send_opts_free(&o);
    return rc;
}
