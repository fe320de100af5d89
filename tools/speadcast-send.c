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
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "speadcast/speadcast.h"

#define PROG "speadcast-send"
/* After SIGINT/SIGTERM, how long the heaps in flight (and the stop heaps) may take. */
#define INTERRUPT_GRACE 2.0
#define FIRST_ERROR_MAX 1024 /* bytes of the first failure's reason */


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
    o->writer_threads = 1;
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
        {"no-layout", SPCT_OPT_FLAG, &o->no_layout, NULL, NULL,
         "data heaps borrow the sender's buffers (a header piece and payload pieces per "
         "packet) instead of holding their items laid out as their packets", false, false, 0,
         0, NULL},
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
        {"burst", SPCT_OPT_UINT, &o->burst, &o->given.burst, "BYTES", "burst size", true, true,
         1, 9223372036854775807.0, NULL},
        {"burst-rate-ratio", SPCT_OPT_DOUBLE, &o->burst_rate_ratio, &o->given.burst_rate_ratio,
         "RATIO", "hard rate limit, relative to --rate", true, false, 1.0, 0, NULL},
        {"max-heaps", SPCT_OPT_UINT, &o->max_heaps, &o->given.max_heaps, "N",
         "maximum heaps in flight", true, true, 1, 1048576, NULL},
        {"writer-threads", SPCT_OPT_UINT, &o->writer_threads, &o->given.writer_threads, "N",
         "writer threads sharing the substreams (one per destination at most; udp)", true,
         true, 1, SPC_STREAM_MAX_WRITER_THREADS, NULL},
        {"rate-method", SPCT_OPT_CHOICE, &o->rate_method, &o->given.rate_method, "METHOD",
         "rate limiting method: sw, hw or auto", false, false, 0, 0, spc_rate_method_names()},
        {"rate", SPCT_OPT_DOUBLE, &o->rate, &o->given.rate, "GBPS",
         "transmission rate bound in Gb/s (0 = unlimited)", true, true, 0, 1e9, NULL},
        {"ttl", SPCT_OPT_INT, &o->ttl, &o->given.ttl, "TTL", "TTL for multicast targets", true,
         true, 0, 255, NULL},
        {"ibv", SPCT_OPT_FLAG, &o->ibv, NULL, NULL, "use ibverbs (needs --bind)", false, false, 0,
         0, NULL},
        {"ibv-vector", SPCT_OPT_INT, &o->ibv_vector, &o->given.ibv_vector, "N",
         "ibverbs interrupt vector (-1 = busy polling)", true, true, -1, 65535, NULL},
        {"ibv-max-poll", SPCT_OPT_INT, &o->ibv_max_poll, &o->given.ibv_max_poll, "N",
         "ibverbs: maximum number of times to poll in a row", true, true, 1, 1000000, NULL},
        {"send-timeout", SPCT_OPT_DOUBLE, &o->send_timeout, &o->given.send_timeout, "SECONDS",
         "--tcp: a send that the peer takes no byte of for this long fails (0 = wait as long "
         "as the peer is alive)", true, true, 0, 86400, NULL},
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
    /* Item addresses are heap offsets: the heap must fit in heap_address_bits. */
    if (o->heap_address_bits < 64 && o->heap_size >> o->heap_address_bits)
        USAGE_ERROR("--addr-bits %u gives heap offsets up to %" PRIu64 ", too few for "
                    "--heap-size %" PRIu64, o->heap_address_bits,
                    (UINT64_C(1) << o->heap_address_bits) - 1, o->heap_size);
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
                            : o->given.send_timeout ? "--send-timeout"
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
    if (o->given.send_timeout && !o->tcp)
        USAGE_ERROR("--send-timeout applies to --tcp only");
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
        if (o->given.writer_threads)
            sc.writer_threads = (unsigned)o->writer_threads;
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
    sc.writer_threads = (unsigned)o->writer_threads;
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
    if (rc == 0 && o->tcp && o->given.send_timeout)
        rc = spc_config_set_double(cfg, "send_timeout", o->send_timeout, msg, sizeof msg);
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
    bool laid_out;          /* data heaps hold their items (spc_heap_reserve_item) */
    struct spc_heap **first, **data, *stop;
    uint64_t data_end;      /* heaps with index < data_end are data heaps */
    uint64_t total;         /* heaps to send in all (UINT64_MAX: until interrupted) */
    uint64_t next;          /* next heap index to queue */
    size_t in_flight;
    /* The completion callbacks run on the stream's writer thread and refill the window
     * there (as spead2_send does), so a refill never waits for this thread to be
     * scheduled. data_end, total, next, in_flight and everything below are under mu. */
    pthread_mutex_t mu;
    pthread_cond_t idle_cv;         /* signalled when nothing is left in flight */
    bool stop_launching;
    bool progress;
    FILE *err;
    struct spct_send_result *r;     /* the run's counters */
    int *status;
    char *first_error;              /* the first failure's reason, FIRST_ERROR_MAX bytes */
    struct heap_done *done;         /* window entries: the user pointer of each send */
    struct spc_heap_ref *refs;      /* window entries: scratch for one refill */
    void **users;
};

/* What a heap's completion callback needs to account it: slot idx % window is reused only
 * once its heap has completed. */
struct heap_done {
    struct sender *s;
    uint64_t idx;
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
    free(s->done);
    free(s->refs);
    free(s->users);
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
    const size_t mps = spc_stream_get_config(s->stream)->max_packet_size;
    /* Data heaps hold their items laid out as their packets (each packet then goes out as
     * one piece) unless --no-layout, or the items are small enough to be immediate. */
    s->laid_out = !o->no_layout && s->item_bytes > fl->heap_address_bits / 8;
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
            if (rc == 0 && s->laid_out)
                rc = spc_heap_reserve_item(s->data[j], 0x1000 + i, s->item_bytes, mps);
            else if (rc == 0)
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

/* The reference of heap idx (filling its memory first with --verify). */
static struct spc_heap_ref heap_ref(struct sender *s, uint64_t idx)
{
    const struct spc_heap *heap;
    if (idx < s->data_end) {
        size_t slot = (size_t)(idx % s->window);
        const uint64_t pos = idx * s->o->items * s->elements;
        heap = idx < s->n_sub ? s->first[slot] : s->data[slot];
        if (s->o->verify && s->heap_bytes && heap == s->data[slot] && s->laid_out) {
            /* The items are the heap's whole payload; its spans hold whole 4-byte words
             * (items and packets are cut at multiples of 4). */
            size_t n;
            for (uint64_t off = 0; off < s->heap_bytes; off += n) {
                void *span = spc_heap_payload_span(s->data[slot], off, &n);
                spct_pattern_fill(span, n / 4, pos + off / 4);
            }
        } else if (s->o->verify && s->heap_bytes) {
            spct_pattern_fill(s->storage + slot * s->heap_bytes, s->heap_bytes / 4, pos);
        }
    } else {
        heap = s->stop;
    }
    return (struct spc_heap_ref){heap, SPC_CNT_AUTO, (uint32_t)(idx % s->n_sub), -1.0};
}

static void on_heap_done(void *user, int status, uint64_t bytes);

/* Records the first failure's reason (printed once). Under mu. */
static void note_failure(struct sender *s, const char *why)
{
    *s->status = SPCT_EXIT_FAIL;
    s->stop_launching = true; /* as spead2_send: the first error ends the run */
    if (!s->first_error[0]) {
        snprintf(s->first_error, FIRST_ERROR_MAX, "%s", why);
        fprintf(s->err, "%s" PROG ": %s\n", s->progress ? "\n" : "", why);
    }
}

/* note_failure with "WHAT: the error's name: the stream's detail". Under mu. */
static void note_stream_failure(struct sender *s, const char *what, int rc)
{
    char detail[512], why[FIRST_ERROR_MAX];
    spc_stream_last_error(s->stream, detail, sizeof detail);
    snprintf(why, sizeof why, "%s: %s%s%s", what, spc_strerror(rc), detail[0] ? ": " : "",
             detail);
    note_failure(s, why);
}

/* Fills the window: queues every heap that fits, in one call (one lock and at most one
 * writer wake-up for all of them). Under mu; also called from the callbacks, where the
 * queue has room for them (window <= max_heaps and a heap's slot is free before its
 * callback runs), so the send never waits. */
static void refill_locked(struct sender *s)
{
    size_t k = 0;
    for (uint64_t idx = s->next;
         !s->stop_launching && idx < s->total && s->in_flight + k < s->window; idx++, k++) {
        struct heap_done *d = &s->done[idx % s->window];
        d->s = s;
        d->idx = idx;
        s->refs[k] = heap_ref(s, idx);
        s->users[k] = d;
    }
    if (k == 0)
        return;
    int rc = spc_stream_send_each(s->stream, s->refs, k, on_heap_done, s->users);
    if (rc < 0) {
        char what[64];
        snprintf(what, sizeof what, "cannot queue heap %" PRIu64, s->next + 1);
        note_stream_failure(s, what, rc);
        return;
    }
    s->next += k;
    s->in_flight += k;
}

/* Completion callback (writer thread): accounts the heap and refills the window. */
static void on_heap_done(void *user, int status, uint64_t bytes)
{
    const struct heap_done *d = user;
    struct sender *s = d->s;
    uint64_t idx = d->idx;
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    struct spct_send_result *r = s->r;
    if (status < 0) {
        r->errors++;
        r->failed_bytes += idx < s->data_end ? s->heap_bytes : 0;
        char what[64];
        snprintf(what, sizeof what, "heap %" PRIu64 " failed", idx + 1);
        note_stream_failure(s, what, status);
    } else {
        r->bytes += bytes;
        r->heaps++;
        if (idx < s->data_end)
            r->data_heaps++;
        else
            r->stop_heaps++;
    }
    refill_locked(s);
    if (s->in_flight == 0)
        pthread_cond_signal(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
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
    json_t *j = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:s}",
                          "bytes", spct_json_u64(r->bytes), "seconds", spct_json_real(r->seconds),
                          "gbps", spct_json_real(r->seconds > 0 ? r->bytes * 8e-9 / r->seconds
                                                                : 0.0),
                          "heaps", spct_json_u64(r->heaps), "data_heaps",
                          spct_json_u64(r->data_heaps), "stop_heaps", spct_json_u64(r->stop_heaps),
                          "failed_heaps", spct_json_u64(r->errors), "failed_bytes",
                          spct_json_u64(r->failed_bytes), "aborted_heaps",
                          spct_json_u64(r->aborted), "packets", spct_json_u64(r->packets),
                          "errors", spct_json_u64(r->errors), "substreams", (int)r->substreams,
                          "transport", transport);
    json_object_set_new(j, "heap_size", spct_json_u64(s->heap_bytes));
    json_object_set_new(j, "items", spct_json_u64(o->items));
    json_object_set_new(j, "elements", spct_json_u64(s->elements));
    json_object_set_new(j, "max_heaps_in_flight", spct_json_u64(s->window));
    json_object_set_new(j, "heap_address_bits", json_integer(o->heap_address_bits));
    json_object_set_new(j, "bug_compat", json_integer(o->bug_compat));
    json_object_set_new(j, "verify", json_boolean(o->verify));
    json_object_set_new(j, "packets_in_place", spct_json_u64(r->packets_in_place));
    json_object_set_new(j, "interrupted", json_boolean(r->interrupted));
    json_object_set_new(j, "error", spct_json_text(error));
    spct_json_print(out, j);
}

/* In-process queues, and the bytes transport without max_size, keep every packet in
 * memory until someone reads them: such a stream must be bounded by --heaps. Returns
 * the offending transport's description, or NULL. */
static const char *unbounded_transport(const struct spc_config *cfg)
{
    const char *name = spc_config_transport(cfg);
    if (strcmp(name, "inproc") == 0)
        return "in-process queues are unbounded and only a receiver in this process can "
               "drain them";
    if (strcmp(name, "bytes") != 0)
        return NULL;
    char *text = NULL;
    json_t *doc = spc_config_to_json(cfg, &text) == 0 ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *max = json_object_get(json_object_get(doc, "options"), "max_size");
    bool bounded = json_is_integer(max) && json_integer_value(max) > 0;
    json_decref(doc);
    return bounded ? NULL : "the bytes transport keeps the whole stream in memory (or set "
                            "its max_size)";
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
    const char *unbounded = o->heaps < 0 ? unbounded_transport(cfg) : NULL;
    if (unbounded) {
        fprintf(err, PROG ": the %s transport needs --heaps: %s\n", transport, unbounded);
        spc_config_destroy(cfg);
        return SPCT_EXIT_USAGE;
    }
    struct spc_stream_options so = SPC_STREAM_OPTIONS_DEFAULT;
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
    char first_error[FIRST_ERROR_MAX] = "";
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
    s.progress = progress;
    s.err = err;
    s.r = &r;
    s.status = &status;
    s.first_error = first_error;
    s.done = calloc(s.window, sizeof *s.done);
    s.refs = calloc(s.window, sizeof *s.refs);
    s.users = calloc(s.window, sizeof *s.users);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    double start = spct_now(), last_progress = start, give_up = 0;
    uint64_t last_bytes = 0;
    /* Spare results for callbacks that still run after the loop (an abandoned run). */
    struct spct_send_result late_r;
    int late_status = 0;
    char late_error[FIRST_ERROR_MAX] = "";
    pthread_mutex_lock(&s.mu);
    if (!s.done || !s.refs || !s.users)
        note_failure(&s, "out of memory");
    refill_locked(&s);
    /* This thread only watches: signals, --max-time, progress; the callbacks send. */
    while (s.in_flight > 0 || (!s.stop_launching && s.next < s.total)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s.idle_cv, &s.mu, &ts);
        bool timed_stop = o->stop_at > 0 && spct_now() >= o->stop_at;
        if ((spct_interrupted || timed_stop) && !r.interrupted && s.next < s.data_end) {
            /* No more data heaps; the stop heaps still go out. */
            s.data_end = s.next;
            s.total = s.next + s.n_sub;
        }
        if (spct_interrupted && !r.interrupted) {
            /* What is in flight gets INTERRUPT_GRACE seconds, then is given up. */
            r.interrupted = true;
            give_up = spct_now() + INTERRUPT_GRACE;
        }
        refill_locked(&s); /* the stop heaps when nothing was in flight */
        double now = spct_now();
        if (progress && now - last_progress >= 1.0) {
            progress_line(err, (r.bytes - last_bytes) * 8e-9 / (now - last_progress), r.heaps,
                          r.errors);
            last_progress = now;
            last_bytes = r.bytes;
        }
        if (give_up > 0 && now >= give_up && s.in_flight > 0) {
            r.aborted = s.in_flight;
            break;
        }
    }
    /* From here the counters are this thread's: late callbacks write elsewhere. */
    s.stop_launching = true;
    memset(&late_r, 0, sizeof late_r);
    s.r = &late_r;
    s.status = &late_status;
    s.first_error = late_error;
    pthread_mutex_unlock(&s.mu);
    r.seconds = spct_now() - start;
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s.stream, &st);
    r.packets = st.packets;
    r.packets_in_place = st.packets_in_place;
    if (progress) {
        progress_line(err, r.seconds > 0 ? r.bytes * 8e-9 / r.seconds : 0.0, r.heaps, r.errors);
        fputc('\n', err);
    }
    if (r.interrupted)
        status = spct_interrupt_status();
    if (o->json) {
        print_json(out, o, &s, &r, transport, first_error[0] ? first_error : NULL);
    } else if (!o->quiet) {
        fprintf(out, "Sent %" PRIu64 " bytes in %g seconds, %g Gb/s\n", r.bytes, r.seconds,
                r.seconds > 0 ? r.bytes * 8.0e-9 / r.seconds : 0.0);
        if (r.interrupted || r.errors)
            fprintf(out, "%s: %" PRIu64 " heaps sent (%" PRIu64 " stop heaps), %" PRIu64
                    " failed, %" PRIu64 " aborted\n", r.interrupted ? "Interrupted" : "Stopped",
                    r.heaps, r.stop_heaps, r.errors, r.aborted);
        fflush(out);
    }
    if (r.aborted && spct_signals_installed) {
        /* Closing would wait for heaps a stuck peer may never take: the process ends
         * here and the system reclaims the stream. */
        fflush(err);
        _exit(status);
    }
    spc_stream_close(s.stream); /* late callbacks (an abandoned run) finish here */
    pthread_cond_destroy(&s.idle_cv);
    pthread_mutex_destroy(&s.mu);
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
