/* speadcast-recv: receives SPEAD streams (UDP, TCP, pcap or packet files, or in-process
 * queues), reassembles and decodes the heaps, prints them, checks the
 * speadcast-send/spead2_send --verify pattern and counts complete, incomplete, corrupt
 * and missing heaps.
 *
 * Each source (UDP socket, TCP connection, inproc queue) has its own decoder, as
 * spead2_recv gives each source its own stream. The run ends when the expected number of
 * stop heaps has arrived (one per source unless --stops says otherwise), after --heaps
 * heaps, at --timeout / --idle-timeout, or on SIGINT; heaps still incomplete then are
 * counted as incomplete. Missing heaps are the gaps in the range of heap cnts seen across
 * all sources (speadcast-send numbers heaps 1, 2, 3, ... over all substreams, each once),
 * so --verify expects to receive every substream of the stream.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "speadcast/speadcast.h"

#define PROG "speadcast-recv"
#define UDP_BATCH 64
#define MAX_COMPLAINTS 10 /* detailed messages per kind before going quiet */
#define FIRST_DATA_ID 0x1000

void spct_recv_defaults(struct spct_recv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->packet = 9200;
    o->buffer = 8u << 20;
    o->concurrent_heaps = 16;
    o->max_heap_size = 256u << 20;
    o->heaps = -1;
    o->stops = -1;
}

void spct_recv_opts_free(struct spct_recv_opts *o)
{
    free(o->sources);
    o->sources = NULL;
    o->n_sources = 0;
}

int spct_recv_parse(struct spct_recv_opts *o, int argc, char **argv, FILE *out, FILE *err)
{
    const struct spct_opt opts[] = {
        {"tcp", SPCT_OPT_FLAG, &o->tcp, NULL, NULL,
         "listen for TCP connections instead of UDP datagrams", false, false, 0, 0, NULL},
        {"inproc", SPCT_OPT_FLAG, &o->inproc, NULL, NULL,
         "sources are in-process queue names (tests and speadcast-bench)", false, false, 0, 0,
         NULL},
        {"verify", SPCT_OPT_FLAG, &o->verify, NULL, NULL,
         "check the speadcast-send --verify pattern; exit 1 on any lost or corrupt heap", false,
         false, 0, 0, NULL},
        {"quiet", SPCT_OPT_FLAG, &o->quiet, NULL, NULL, "print only the summary (also with --json)",
         false, false, 0, 0, NULL},
        {"descriptors", SPCT_OPT_FLAG, &o->descriptors, NULL, NULL,
         "accepted for spead2_recv compatibility (descriptors are always shown)", false, false,
         0, 0, NULL},
        {"json", SPCT_OPT_FLAG, &o->json, NULL, NULL,
         "one JSON object per heap and one for the summary, one per line", false, false, 0, 0,
         NULL},
        {"pyspead", SPCT_OPT_FLAG, &o->pyspead, NULL, NULL,
         "be bug-compatible with PySPEAD (bug_compat 7 for descriptors)", false, false, 0, 0,
         NULL},
        {"bind", SPCT_OPT_STRING, &o->bind, NULL, "ADDRESS",
         "interface address for IPv4 multicast sources", false, false, 0, 0, NULL},
        {"packet", SPCT_OPT_UINT, &o->packet, &o->given_packet, "BYTES",
         "largest packet accepted (default 9200 for UDP, 65536 for TCP)", true, true,
         SPC_MIN_PACKET_SIZE, SPC_STREAM_MAX_PACKET_SIZE, NULL},
        {"buffer", SPCT_OPT_UINT, &o->buffer, &o->given_buffer, "BYTES",
         "socket receive buffer (UDP default 8 MiB; TCP default the system's)", true, true, 0,
         2147483647.0, NULL},
        {"concurrent-heaps", SPCT_OPT_UINT, &o->concurrent_heaps, NULL, "N",
         "incomplete heaps kept per source before the oldest is given up", true, true, 1, 65536,
         NULL},
        {"max-heap-size", SPCT_OPT_UINT, &o->max_heap_size, NULL, "BYTES",
         "heaps announcing more are refused", true, true, 1, 68719476736.0, NULL},
        {"heaps", SPCT_OPT_INT, &o->heaps, NULL, "N",
         "stop after N heaps, stop heaps not counted (-1 = no limit)", true, false, -1, 0, NULL},
        {"stops", SPCT_OPT_INT, &o->stops, NULL, "N",
         "stop heaps that end the run (-1 = one per source, 0 = run on)", true, false, -1, 0, NULL},
        {"timeout", SPCT_OPT_DOUBLE, &o->timeout, NULL, "SECONDS",
         "give up after this long (0 = never)", true, true, 0, 1e9, NULL},
        {"idle-timeout", SPCT_OPT_DOUBLE, &o->idle_timeout, NULL, "SECONDS",
         "give up when no packet came for this long after the first (0 = never)", true, true, 0,
         1e9, NULL},
        {"ready-file", SPCT_OPT_STRING, &o->ready_file, NULL, "FILE",
         "once listening, write the bound host:port of each source to FILE (one per line)",
         false, false, 0, 0, NULL},
    };
    char **pos;
    size_t n_pos;
    int rc = spct_parse_options(PROG, "[options] [host]:port|file|queue ...", opts,
                                sizeof opts / sizeof opts[0], argc, argv, &pos, &n_pos, out, err);
    if (rc == 1)
        return 1;
    if (rc < 0)
        return SPCT_EXIT_USAGE;
    free(o->sources);
    o->sources = (const char **)pos;
    o->n_sources = n_pos;
    if (o->tcp && o->inproc) {
        fprintf(err, PROG ": choose one of --tcp and --inproc\n");
        return SPCT_EXIT_USAGE;
    }
    if (n_pos == 0) {
        fprintf(err, PROG ": at least one source is required: [host]:port (port 0 picks a free "
                     "one), or a queue name with --inproc\n");
        return SPCT_EXIT_USAGE;
    }
    if (o->tcp && !o->given_packet)
        o->packet = 65536;
    for (size_t i = 0; i < n_pos; i++) {
        if (o->inproc) {
            if (strlen(pos[i]) > SPC_INPROC_NAME_MAX) {
                fprintf(err, PROG ": queue name '%s' is longer than %d bytes\n", pos[i],
                        SPC_INPROC_NAME_MAX);
                return SPCT_EXIT_USAGE;
            }
            continue;
        }
        struct spct_endpoint ep;
        char why[512];
        if (spct_parse_endpoint(pos[i], true, &ep, why, sizeof why) < 0 &&
            access(pos[i], R_OK) != 0) {
            fprintf(err, PROG ": source %s, and no readable file has that name\n", why);
            return SPCT_EXIT_USAGE;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ state */

enum source_kind { SRC_UDP, SRC_TCP_LISTEN, SRC_TCP_CONN, SRC_INPROC, SRC_FILE };

struct source {
    enum source_kind kind;
    int fd;
    size_t index;                   /* the command-line source it belongs to */
    struct spc_decoder *dec;        /* UDP and TCP connections */
    struct spc_inproc_receiver *ir; /* inproc */
    uint8_t *buf;                   /* TCP connections and files: bytes not yet parsed */
    size_t len, cap;
    int pcap;                       /* files: 0 packet stream, else a pcap capture */
    bool pcap_swapped;              /* pcap header fields in the other byte order */
    uint32_t linktype;
    bool header_done;               /* pcap global header consumed */
    bool done;                      /* stopped, closed or drained */
    char name[300];
};

struct described {
    uint64_t id;
    struct spc_descriptor_info *info;
};

struct receiver {
    const struct spct_recv_opts *o;
    FILE *out, *err;
    struct spct_recv_result r;
    struct source *src;
    size_t n_src, cap_src;
    uint64_t stops_expected;
    struct described *desc;
    size_t n_desc;
    uint64_t cnt_min, cnt_max, n_cnts; /* heap cnts seen (stop heaps too), for gaps */
    double start, first_packet, last_packet;
    bool got_packet;
    unsigned complaints_bad, complaints_corrupt;
    uint8_t *udp_bufs;              /* UDP_BATCH datagram buffers of packet + 1 bytes */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iovs[UDP_BATCH];
    uint64_t inproc_packets;        /* counted from the inproc receivers at the end */
};

static struct source *add_source(struct receiver *rx)
{
    if (rx->n_src == rx->cap_src) {
        size_t cap = rx->cap_src ? rx->cap_src * 2 : 8;
        struct source *s = realloc(rx->src, cap * sizeof *s);
        if (!s)
            return NULL;
        rx->src = s;
        rx->cap_src = cap;
    }
    struct source *s = &rx->src[rx->n_src++];
    memset(s, 0, sizeof *s);
    s->fd = -1;
    return s;
}

static void close_source(struct source *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    spc_decoder_destroy(s->dec);
    s->dec = NULL;
    spc_inproc_receiver_destroy(s->ir);
    s->ir = NULL;
    free(s->buf);
    s->buf = NULL;
}

static void receiver_free(struct receiver *rx)
{
    for (size_t i = 0; i < rx->n_src; i++)
        close_source(&rx->src[i]);
    free(rx->src);
    for (size_t i = 0; i < rx->n_desc; i++)
        spc_descriptor_info_free(rx->desc[i].info);
    free(rx->desc);
    free(rx->udp_bufs);
}

static const struct spc_descriptor_info *find_desc(const struct receiver *rx, uint64_t id)
{
    for (size_t i = 0; i < rx->n_desc; i++)
        if (rx->desc[i].id == id)
            return rx->desc[i].info;
    return NULL;
}

static void keep_desc(struct receiver *rx, struct spc_descriptor_info *info)
{
    for (size_t i = 0; i < rx->n_desc; i++)
        if (rx->desc[i].id == info->id) {
            spc_descriptor_info_free(rx->desc[i].info);
            rx->desc[i].info = info;
            return;
        }
    struct described *d = realloc(rx->desc, (rx->n_desc + 1) * sizeof *d);
    if (!d) {
        spc_descriptor_info_free(info);
        return;
    }
    rx->desc = d;
    rx->desc[rx->n_desc++] = (struct described){info->id, info};
}

static void note_cnt(struct receiver *rx, uint64_t cnt)
{
    if (rx->n_cnts == 0 || cnt < rx->cnt_min)
        rx->cnt_min = cnt;
    if (rx->n_cnts == 0 || cnt > rx->cnt_max)
        rx->cnt_max = cnt;
    rx->n_cnts++;
}

/* Heaps missing from the cnt range seen (each cnt is expected once). */
static uint64_t count_missing(const struct receiver *rx)
{
    if (rx->n_cnts == 0)
        return 0;
    uint64_t span = rx->cnt_max - rx->cnt_min + 1;
    return span > rx->n_cnts ? span - rx->n_cnts : 0;
}

/* ------------------------------------------------------------ printing values */

static void print_shape(FILE *f, const int64_t *shape, size_t n, bool json)
{
    fputc(json ? '[' : '(', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        if (shape[i] < 0)
            fputs(json ? "-1" : "?", f);
        else
            fprintf(f, "%" PRId64, shape[i]);
    }
    if (!json && n == 1)
        fputc(',', f);
    fputc(json ? ']' : ')', f);
}

/* Element layout of a simple numeric dtype (">u4", "<i2", "|u1", "<f8") or a single
 * byte-aligned format field; 0 if the item is not of that kind. */
static size_t element_layout(const struct spc_descriptor_info *d, char *type, bool *big)
{
    if (!d)
        return 0;
    if (d->dtype) {
        const char *t = d->dtype;
        if ((t[0] != '<' && t[0] != '>' && t[0] != '|') || !strchr("uif", t[1]))
            return 0;
        char *end;
        unsigned long size = strtoul(t + 2, &end, 10);
        if (*end || (size != 1 && size != 2 && size != 4 && size != 8) ||
            (t[1] == 'f' && size < 4))
            return 0;
        *type = t[1];
        *big = t[0] == '>';
        return size;
    }
    if (d->n_format == 1 && strchr("uif", d->format[0].type) && d->format[0].bits % 8 == 0 &&
        d->format[0].bits >= 8 && d->format[0].bits <= 64 &&
        (d->format[0].type != 'f' || d->format[0].bits >= 32)) {
        *type = d->format[0].type;
        *big = true;
        return d->format[0].bits / 8;
    }
    return 0;
}

static void print_element(FILE *f, const uint8_t *p, size_t size, char type, bool big)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++)
        v = v << 8 | p[big ? i : size - 1 - i];
    if (type == 'u') {
        fprintf(f, "%" PRIu64, v);
    } else if (type == 'i') {
        if (size < 8 && (v >> (size * 8 - 1)) & 1)
            v |= ~UINT64_C(0) << (size * 8);
        fprintf(f, "%" PRId64, (int64_t)v);
    } else if (size == 4) {
        uint32_t w = (uint32_t)v;
        float x;
        memcpy(&x, &w, 4);
        fprintf(f, "%g", x);
    } else {
        double x;
        memcpy(&x, &v, 8);
        fprintf(f, "%g", x);
    }
}

/* The bytes an item's value occupies: for immediates, the trailing bytes of the
 * pointer's value field that hold it. */
static void item_bytes(const struct spc_decoded_item *it, const struct spc_descriptor_info *d,
                       const uint8_t **data, size_t *len)
{
    *data = it->data;
    *len = it->len;
    if (it->immediate && d) {
        char type;
        bool big;
        size_t es = element_layout(d, &type, &big);
        size_t n = 1;
        for (size_t i = 0; i < d->n_dims; i++)
            n *= d->shape[i] < 0 ? 0 : (size_t)d->shape[i];
        if (es && n * es <= it->len) {
            *data = it->data + it->len - n * es;
            *len = n * es;
        }
    }
}

static void print_item_text(FILE *f, const struct spc_decoded_item *it,
                            const struct spc_descriptor_info *d)
{
    fprintf(f, "  0x%" PRIx64, it->id);
    if (d)
        fprintf(f, " '%s'", d->name);
    const uint8_t *data;
    size_t len;
    item_bytes(it, d, &data, &len);
    fprintf(f, " = [%zu bytes%s]", len, it->immediate ? ", immediate" : "");
    char type;
    bool big;
    size_t es = element_layout(d, &type, &big);
    if (es && len >= es) {
        size_t n = len / es;
        for (size_t i = 0; i < n && i < 4; i++) {
            fputc(' ', f);
            print_element(f, data + i * es, es, type, big);
        }
        if (n > 4)
            fputs(" ...", f);
    } else if (len) {
        fputc(' ', f);
        for (size_t i = 0; i < len && i < 16; i++)
            fprintf(f, "%02x", data[i]);
        if (len > 16)
            fputs("...", f);
    }
    fputc('\n', f);
}

static void print_desc_text(FILE *f, const struct spc_descriptor_info *d)
{
    fprintf(f, "  descriptor 0x%" PRIx64 " '%s': %s; ", d->id, d->name, d->description);
    if (d->dtype)
        fprintf(f, "dtype %s", d->dtype);
    else {
        fputs("format [", f);
        for (size_t i = 0; i < d->n_format; i++)
            fprintf(f, "%s(%c, %" PRIu32 ")", i ? ", " : "", d->format[i].type, d->format[i].bits);
        fputc(']', f);
    }
    fputs(", shape ", f);
    print_shape(f, d->shape, d->n_dims, false);
    fputc('\n', f);
}

static void print_desc_json(FILE *f, const struct spc_descriptor_info *d)
{
    fprintf(f, "{\"id\": %" PRIu64 ", \"name\": ", d->id);
    spct_json_string(f, d->name);
    fputs(", \"description\": ", f);
    spct_json_string(f, d->description);
    fputs(", \"shape\": ", f);
    print_shape(f, d->shape, d->n_dims, true);
    fputs(", \"dtype\": ", f);
    spct_json_string(f, d->dtype);
    fputs(", \"format\": [", f);
    for (size_t i = 0; i < d->n_format; i++) {
        char t[2] = {d->format[i].type, '\0'};
        fprintf(f, "%s[", i ? ", " : "");
        spct_json_string(f, t);
        fprintf(f, ", %" PRIu32 "]", d->format[i].bits);
    }
    fputs("]}", f);
}

/* ------------------------------------------------------------ verification */

/* Checks a heap's items 0x1000.. against the pattern. Returns 1 verified, 0 no data
 * items, -1 corrupt (a message is written to why). */
static int verify_heap(struct receiver *rx, const struct spc_decoded_heap *h, char *why,
                       size_t why_len)
{
    size_t k = 0;
    uint64_t elements = UINT64_MAX;
    for (size_t i = 0; i < h->n_items; i++) {
        const struct spc_decoded_item *it = &h->items[i];
        if (it->id < FIRST_DATA_ID)
            continue;
        const struct spc_descriptor_info *d = find_desc(rx, it->id);
        uint64_t e;
        if (d && d->n_dims == 1 && d->shape[0] >= 0)
            e = (uint64_t)d->shape[0];
        else if (it->immediate)
            e = 1;
        else if (it->len % 4 == 0)
            e = it->len / 4;
        else {
            snprintf(why, why_len, "item 0x%" PRIx64 " has %zu bytes, not a whole number of "
                     "32-bit elements", it->id, it->len);
            return -1;
        }
        if (elements != UINT64_MAX && e != elements) {
            snprintf(why, why_len, "items differ in size (%" PRIu64 " and %" PRIu64
                     " elements)", elements, e);
            return -1;
        }
        elements = e;
        k++;
    }
    if (k == 0)
        return 0;
    uint64_t base = (h->cnt - 1) * k * elements;
    for (size_t i = 0; i < h->n_items; i++) {
        const struct spc_decoded_item *it = &h->items[i];
        if (it->id < FIRST_DATA_ID)
            continue;
        uint64_t index = it->id - FIRST_DATA_ID;
        if (index >= k) {
            snprintf(why, why_len, "item 0x%" PRIx64 " is outside 0x1000..0x%" PRIx64, it->id,
                     (uint64_t)FIRST_DATA_ID + k - 1);
            return -1;
        }
        const uint8_t *data = it->data;
        size_t len = it->len;
        if (it->immediate) {
            if (elements > 1 || len < 4 * elements) {
                snprintf(why, why_len, "item 0x%" PRIx64 " is immediate but holds %" PRIu64
                         " elements", it->id, elements);
                return -1;
            }
            data += len - 4 * elements;
            len = 4 * elements;
        }
        if (len != 4 * elements) {
            snprintf(why, why_len, "item 0x%" PRIx64 " has %zu bytes, expected %" PRIu64,
                     it->id, len, 4 * elements);
            return -1;
        }
        uint32_t got, want;
        size_t bad = spct_pattern_check(data, elements, base + index * elements, &got, &want);
        if (bad < elements) {
            snprintf(why, why_len, "item 0x%" PRIx64 " element %zu is %" PRIu32
                     ", expected %" PRIu32, it->id, bad, got, want);
            return -1;
        }
    }
    return 1;
}

/* ------------------------------------------------------------ heaps */

static void handle_heap(struct receiver *rx, struct source *s, struct spc_decoded_heap *h)
{
    const struct spct_recv_opts *o = rx->o;
    FILE *out = rx->out;
    double at = spct_now() - rx->start;
    note_cnt(rx, h->cnt);
    if (h->has_stop) {
        rx->r.stops++;
        if (o->quiet) {
            /* summary only */
        } else if (o->json) {
            fprintf(out, "{\"type\": \"stop\", \"cnt\": %" PRIu64 ", \"source\": %zu, "
                    "\"heap_address_bits\": %u, \"at\": ", h->cnt, s->index,
                    h->flavour.heap_address_bits);
            spct_json_double(out, at);
            fputs("}\n", out);
        } else {
            fprintf(out, "Received stop heap %" PRIu64 " at %.6f from %s\n", h->cnt, at, s->name);
        }
        spc_decoded_heap_free(h);
        return;
    }
    rx->r.heaps++;
    int verdict = 0; /* 1 verified, 0 not checked, -1 corrupt */
    char why[512] = "";
    if (!h->complete) {
        rx->r.incomplete++;
    } else {
        rx->r.complete++;
        rx->r.bytes += h->heap_size;
        for (size_t i = 0; i < h->n_items; i++)
            if (h->items[i].id == SPC_ID_DESCRIPTOR) {
                struct spc_descriptor_info *info;
                int rc = spc_descriptor_parse(&h->items[i], &h->flavour, &info);
                if (rc == 0)
                    keep_desc(rx, info);
                else {
                    verdict = -1;
                    snprintf(why, sizeof why, "bad descriptor: %s", spc_strerror(rc));
                }
            }
        if (o->verify && verdict == 0)
            verdict = verify_heap(rx, h, why, sizeof why);
        if (verdict < 0)
            rx->r.corrupt++;
        else if (verdict > 0)
            rx->r.verified++;
    }
    if (o->quiet) {
        /* summary only */
    } else if (o->json) {
        fprintf(out, "{\"type\": \"heap\", \"cnt\": %" PRIu64 ", \"source\": %zu, "
                "\"heap_address_bits\": %u, \"at\": ", h->cnt, s->index,
                h->flavour.heap_address_bits);
        spct_json_double(out, at);
        fprintf(out, ", \"complete\": %s, \"heap_size\": ", h->complete ? "true" : "false");
        if (h->heap_size == UINT64_MAX)
            fputs("null", out);
        else
            fprintf(out, "%" PRIu64, h->heap_size);
        fprintf(out, ", \"received\": %" PRIu64 ", \"packets\": %zu, \"descriptors\": [",
                h->received, h->n_packets);
        bool first = true;
        for (size_t i = 0; i < h->n_items; i++)
            if (h->items[i].id == SPC_ID_DESCRIPTOR) {
                struct spc_descriptor_info *info;
                if (spc_descriptor_parse(&h->items[i], &h->flavour, &info) == 0) {
                    fputs(first ? "" : ", ", out);
                    print_desc_json(out, info);
                    spc_descriptor_info_free(info);
                    first = false;
                }
            }
        fputs("], \"items\": [", out);
        first = true;
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            if (it->id == SPC_ID_DESCRIPTOR)
                continue;
            const struct spc_descriptor_info *d = find_desc(rx, it->id);
            const uint8_t *data;
            size_t len;
            item_bytes(it, d, &data, &len);
            fprintf(out, "%s{\"id\": %" PRIu64 ", \"name\": ", first ? "" : ", ", it->id);
            spct_json_string(out, d ? d->name : NULL);
            fprintf(out, ", \"bytes\": %zu, \"immediate\": %s}", len,
                    it->immediate ? "true" : "false");
            first = false;
        }
        fputs("], \"verify\": ", out);
        fputs(!o->verify || !h->complete ? "null"
              : verdict > 0             ? "\"ok\""
              : verdict == 0            ? "\"no data\""
                                        : "\"corrupt\"",
              out);
        fputs(", \"problem\": ", out);
        spct_json_string(out, why[0] ? why : NULL);
        fputs("}\n", out);
    } else {
        if (h->complete)
            fprintf(out, "Received heap %" PRIu64 " at %.6f: %" PRIu64 " bytes in %zu packets\n",
                    h->cnt, at, h->heap_size, h->n_packets);
        else
            fprintf(out, "Incomplete heap %" PRIu64 " at %.6f: %" PRIu64 " of %" PRIu64
                    " bytes in %zu packets\n", h->cnt, at, h->received, h->heap_size,
                    h->n_packets);
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            if (it->id == SPC_ID_DESCRIPTOR) {
                const struct spc_descriptor_info *d = NULL;
                struct spc_descriptor_info *info;
                if (spc_descriptor_parse(it, &h->flavour, &info) == 0) {
                    d = info;
                    print_desc_text(out, d);
                    spc_descriptor_info_free(info);
                }
            } else {
                print_item_text(out, it, find_desc(rx, it->id));
            }
        }
    }
    if (verdict < 0 && rx->complaints_corrupt++ < MAX_COMPLAINTS)
        fprintf(rx->err, PROG ": heap %" PRIu64 " is corrupt: %s\n", h->cnt, why);
    else if (!h->complete && o->verify && !o->quiet && !o->json &&
             rx->complaints_corrupt++ < MAX_COMPLAINTS)
        fprintf(rx->err, PROG ": heap %" PRIu64 " is incomplete (%" PRIu64 " of %" PRIu64
                " bytes)\n", h->cnt, h->received, h->heap_size);
    spc_decoded_heap_free(h);
}

static bool finished(const struct receiver *rx);

static void drain_decoder(struct receiver *rx, struct source *s)
{
    struct spc_decoded_heap *h;
    while (spc_decoder_pop(s->dec, &h) == 1)
        handle_heap(rx, s, h);
}

static void note_packet(struct receiver *rx)
{
    double now = spct_now();
    if (!rx->got_packet) {
        rx->got_packet = true;
        rx->first_packet = now;
    }
    rx->last_packet = now;
}

static void bad_packet(struct receiver *rx, struct source *s, int rc, const char *what)
{
    rx->r.bad_packets++;
    if (rx->complaints_bad++ < MAX_COMPLAINTS)
        fprintf(rx->err, PROG ": bad packet from %s: %s\n", s->name,
                what ? what : spc_strerror(rc));
}

/* ------------------------------------------------------------ UDP */

static int resolve(const struct spct_endpoint *ep, int socktype, struct sockaddr_storage *out,
                   socklen_t *out_len, char *msg, size_t msg_len)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%u", ep->port);
    int rc = getaddrinfo(ep->host[0] ? ep->host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(msg, msg_len, "cannot resolve '%s': %s", ep->host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *out_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void set_rcvbuf(struct receiver *rx, int fd, uint64_t want, const char *name)
{
    int v = (int)want;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    int got = 0;
    socklen_t len = sizeof got;
    /* Linux reports twice the usable size it granted. */
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && (uint64_t)got / 2 < want)
        fprintf(rx->err, PROG ": %s: asked for a %" PRIu64 "-byte receive buffer, got %d "
                "(raise net.core.rmem_max)\n", name, want, got / 2);
}

/* Parses and resolves a host:port source, adds it and opens its non-blocking socket.
 * Returns the source (its fd open) or NULL after printing why. */
static struct source *open_socket_source(struct receiver *rx, size_t index, const char *text,
                                         int socktype, enum source_kind kind, struct sockaddr_storage *sa,
                                         socklen_t *sa_len)
{
    struct spct_endpoint ep;
    char msg[512];
    if (spct_parse_endpoint(text, true, &ep, msg, sizeof msg) < 0) {
        fprintf(rx->err, PROG ": source %s\n", msg);
        return NULL;
    }
    if (resolve(&ep, socktype, sa, sa_len, msg, sizeof msg) < 0) {
        fprintf(rx->err, PROG ": %s\n", msg);
        return NULL;
    }
    struct source *s = add_source(rx);
    if (!s)
        return NULL;
    s->kind = kind;
    s->index = index;
    snprintf(s->name, sizeof s->name, "%s", text);
    s->fd = socket(sa->ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        fprintf(rx->err, PROG ": %s: socket: %s\n", text, strerror(errno));
        return NULL;
    }
    return s;
}

static int open_udp(struct receiver *rx, size_t index, const char *text)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct source *s = open_socket_source(rx, index, text, SOCK_DGRAM, SRC_UDP, &sa, &sa_len);
    if (!s)
        return -1;
    int one = 1;
    bool multicast = (sa.ss_family == AF_INET &&
                      IN_MULTICAST(ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr))) ||
                     (sa.ss_family == AF_INET6 &&
                      IN6_IS_ADDR_MULTICAST(&((struct sockaddr_in6 *)&sa)->sin6_addr));
    if (multicast)
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    set_rcvbuf(rx, s->fd, rx->o->buffer, text);
    if (bind(s->fd, (struct sockaddr *)&sa, sa_len) < 0) {
        fprintf(rx->err, PROG ": %s: bind: %s\n", text, strerror(errno));
        return -1;
    }
    if (multicast && sa.ss_family == AF_INET) {
        struct ip_mreq mreq;
        mreq.imr_multiaddr = ((struct sockaddr_in *)&sa)->sin_addr;
        mreq.imr_interface.s_addr = htonl(INADDR_ANY);
        if (rx->o->bind && inet_pton(AF_INET, rx->o->bind, &mreq.imr_interface) != 1) {
            fprintf(rx->err, PROG ": --bind: '%s' is not an IPv4 address\n", rx->o->bind);
            return -1;
        }
        if (setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) {
            fprintf(rx->err, PROG ": %s: joining the group: %s\n", text, strerror(errno));
            return -1;
        }
    } else if (multicast) {
        struct ipv6_mreq mreq;
        mreq.ipv6mr_multiaddr = ((struct sockaddr_in6 *)&sa)->sin6_addr;
        mreq.ipv6mr_interface = 0;
        if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) < 0) {
            fprintf(rx->err, PROG ": %s: joining the group: %s\n", text, strerror(errno));
            return -1;
        }
    } else if (rx->o->bind && !rx->o->quiet) {
        fprintf(rx->err, PROG ": --bind applies to multicast sources only; ignored for %s\n",
                text);
    }
    return 0;
}

static int make_decoder(struct receiver *rx, struct source *s)
{
    struct spc_decoder_config dc = SPC_DECODER_CONFIG_DEFAULT;
    dc.max_heap_size = (size_t)rx->o->max_heap_size;
    dc.max_live_heaps = (size_t)rx->o->concurrent_heaps;
    dc.bug_compat = rx->o->pyspead ? SPC_BUG_COMPAT_PYSPEAD_0_5_2 : 0;
    int rc = spc_decoder_create(&s->dec, &dc);
    if (rc < 0)
        fprintf(rx->err, PROG ": cannot create a decoder: %s\n", spc_strerror(rc));
    return rc;
}

static void read_udp(struct receiver *rx, struct source *s)
{
    size_t stride = (size_t)rx->o->packet + 1;
    for (int round = 0; round < 64 && !finished(rx); round++) {
        for (int i = 0; i < UDP_BATCH; i++) {
            rx->iovs[i].iov_base = rx->udp_bufs + (size_t)i * stride;
            rx->iovs[i].iov_len = stride;
            memset(&rx->msgs[i].msg_hdr, 0, sizeof rx->msgs[i].msg_hdr);
            rx->msgs[i].msg_hdr.msg_iov = &rx->iovs[i];
            rx->msgs[i].msg_hdr.msg_iovlen = 1;
            rx->msgs[i].msg_len = 0;
        }
        int n = recvmmsg(s->fd, rx->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                bad_packet(rx, s, -errno, strerror(errno));
            return;
        }
        note_packet(rx);
        for (int i = 0; i < n && !finished(rx); i++) {
            rx->r.packets++;
            size_t len = rx->msgs[i].msg_len;
            if ((rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len > rx->o->packet) {
                char what[128];
                snprintf(what, sizeof what, "datagram larger than --packet %" PRIu64,
                         rx->o->packet);
                bad_packet(rx, s, 0, what);
                continue;
            }
            int rc = spc_decoder_add_packet(s->dec, rx->iovs[i].iov_base, len, NULL);
            if (rc < 0)
                bad_packet(rx, s, rc, NULL);
            drain_decoder(rx, s);
        }
        if (n < UDP_BATCH)
            return;
    }
}

/* ------------------------------------------------------------ TCP */

static int open_tcp(struct receiver *rx, size_t index, const char *text)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct source *s = open_socket_source(rx, index, text, SOCK_STREAM, SRC_TCP_LISTEN, &sa, &sa_len);
    if (!s)
        return -1;
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rx->o->given_buffer)
        set_rcvbuf(rx, s->fd, rx->o->buffer, text);
    if (bind(s->fd, (struct sockaddr *)&sa, sa_len) < 0 || listen(s->fd, 16) < 0) {
        fprintf(rx->err, PROG ": %s: %s\n", text, strerror(errno));
        return -1;
    }
    return 0;
}

static void accept_tcp(struct receiver *rx, size_t listener)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(rx->src[listener].fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        size_t index = rx->src[listener].index;
        struct source *s = add_source(rx); /* may move rx->src */
        if (!s) {
            close(fd);
            return;
        }
        s->kind = SRC_TCP_CONN;
        s->index = index;
        s->fd = fd;
        spct_format_sockaddr((struct sockaddr *)&peer, s->name, sizeof s->name);
        s->cap = (size_t)rx->o->packet + 65536;
        s->buf = malloc(s->cap);
        if (!s->buf || make_decoder(rx, s) < 0) {
            close_source(s);
            s->done = true;
            return;
        }
    }
}

/* Parses whole packets out of a byte stream's buffer (TCP connection or packet file). A
 * packet the decoder cannot parse at all leaves no way to find the next one: the source
 * is closed. */
static void parse_stream(struct receiver *rx, struct source *s)
{
    size_t off = 0;
    while (off < s->len && !finished(rx)) {
        size_t consumed = 0;
        int rc = spc_decoder_add_packet(s->dec, s->buf + off, s->len - off, &consumed);
        if (rc == 0 || consumed > 0) {
            rx->r.packets++;
            if (rc < 0)
                bad_packet(rx, s, rc, NULL);
            off += consumed;
            drain_decoder(rx, s);
            continue;
        }
        if (rc == -SPC_ETRUNCATED && s->len - off < s->cap)
            break; /* the rest of the packet is still on its way */
        if (rc == -SPC_ETRUNCATED) {
            char what[128];
            snprintf(what, sizeof what, "packet larger than --packet %" PRIu64, rx->o->packet);
            bad_packet(rx, s, rc, what);
        } else {
            bad_packet(rx, s, rc, NULL);
        }
        fprintf(rx->err, PROG ": %s: cannot find the next packet; giving up on it\n", s->name);
        off = s->len;
        s->done = true;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

static void end_connection(struct receiver *rx, struct source *s)
{
    if (s->dec) {
        spc_decoder_flush(s->dec);
        drain_decoder(rx, s);
    }
    if (s->len && rx->complaints_bad++ < MAX_COMPLAINTS)
        fprintf(rx->err, PROG ": %s: ended inside a packet (%zu bytes left)\n", s->name, s->len);
    close_source(s);
    s->done = true;
}

static void read_tcp(struct receiver *rx, struct source *s)
{
    for (int round = 0; round < 64 && !s->done; round++) {
        ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            if (n < 0)
                fprintf(rx->err, PROG ": %s: %s\n", s->name, strerror(errno));
            end_connection(rx, s);
            return;
        }
        note_packet(rx);
        s->len += (size_t)n;
        parse_stream(rx, s);
        if (s->done)
            end_connection(rx, s);
    }
}

/* ------------------------------------------------------------ files */

/* A source that is not [host]:port names a file: a pcap capture (as the pcap transport
 * or tcpdump writes; UDP payloads in Ethernet, Linux cooked or raw IP frames) or SPEAD
 * packets back to back (as the bytes transport or a file-writing plugin produces). */
static int open_file(struct receiver *rx, size_t index, const char *path)
{
    struct source *s = add_source(rx);
    if (!s)
        return -1;
    s->kind = SRC_FILE;
    s->index = index;
    snprintf(s->name, sizeof s->name, "%s", path);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        fprintf(rx->err, PROG ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    s->cap = (size_t)rx->o->packet + (1u << 20);
    s->buf = malloc(s->cap);
    if (!s->buf)
        return -1;
    uint8_t magic[4];
    ssize_t n = pread(s->fd, magic, 4, 0);
    uint32_t be = n == 4 ? (uint32_t)magic[0] << 24 | (uint32_t)magic[1] << 16 |
                               (uint32_t)magic[2] << 8 | magic[3]
                         : 0;
    uint32_t le = n == 4 ? (uint32_t)magic[3] << 24 | (uint32_t)magic[2] << 16 |
                               (uint32_t)magic[1] << 8 | magic[0]
                         : 0;
    if (be == 0xa1b2c3d4u || be == 0xa1b23c4du) {
        s->pcap = 1;
        s->pcap_swapped = false; /* fields big-endian */
    } else if (le == 0xa1b2c3d4u || le == 0xa1b23c4du) {
        s->pcap = 1;
        s->pcap_swapped = true; /* fields little-endian */
    } else if (n >= 1 && magic[0] == 0x53) {
        s->pcap = 0;
    } else if (n == 0) {
        s->pcap = 0; /* empty: nothing to read */
    } else {
        fprintf(rx->err, PROG ": %s: neither a pcap capture nor SPEAD packets\n", path);
        return -1;
    }
    return make_decoder(rx, s);
}

static uint32_t pcap_u32(const struct source *s, const uint8_t *p)
{
    if (s->pcap_swapped)
        return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The UDP payload of a captured frame, or NULL when the frame is not an unfragmented
 * IPv4/IPv6 UDP datagram. */
static const uint8_t *frame_payload(const struct source *s, const uint8_t *f, size_t len,
                                    size_t *out_len)
{
    size_t off = 0;
    unsigned proto = 0;
    switch (s->linktype) {
    case 1: /* Ethernet, with at most one VLAN tag */
        if (len < 14)
            return NULL;
        proto = (unsigned)f[12] << 8 | f[13];
        off = 14;
        if (proto == 0x8100 && len >= 18) {
            proto = (unsigned)f[16] << 8 | f[17];
            off = 18;
        }
        break;
    case 113: /* Linux cooked capture */
        if (len < 16)
            return NULL;
        proto = (unsigned)f[14] << 8 | f[15];
        off = 16;
        break;
    case 101: case 228: case 229: /* raw IP */
        if (len < 1)
            return NULL;
        proto = (f[0] >> 4) == 6 ? 0x86dd : 0x0800;
        break;
    default:
        return NULL;
    }
    const uint8_t *ip = f + off;
    size_t ip_len = len - off, hl;
    if (proto == 0x0800) {
        if (ip_len < 20 || (ip[0] >> 4) != 4 || ip[9] != 17)
            return NULL;
        if (((unsigned)(ip[6] & 0x3f) << 8 | ip[7]) != 0)
            return NULL; /* a fragment */
        hl = (size_t)(ip[0] & 0x0f) * 4;
    } else if (proto == 0x86dd) {
        if (ip_len < 40 || ip[6] != 17)
            return NULL;
        hl = 40;
    } else {
        return NULL;
    }
    if (hl < 20 || ip_len < hl + 8)
        return NULL;
    const uint8_t *udp = ip + hl;
    size_t udp_len = (size_t)udp[4] << 8 | udp[5];
    if (udp_len < 8 || udp_len > ip_len - hl)
        return NULL;
    *out_len = udp_len - 8;
    return udp + 8;
}

/* Consumes the whole records in a pcap file's buffer. Returns -1 on a broken file. */
static int parse_pcap(struct receiver *rx, struct source *s)
{
    size_t off = 0;
    if (!s->header_done) {
        if (s->len < 24)
            return 0;
        s->linktype = pcap_u32(s, s->buf + 20) & 0xffff;
        if (s->linktype != 1 && s->linktype != 113 && s->linktype != 101 &&
            s->linktype != 228 && s->linktype != 229) {
            fprintf(rx->err, PROG ": %s: unsupported pcap link type %" PRIu32 "\n", s->name,
                    s->linktype);
            return -1;
        }
        s->header_done = true;
        off = 24;
    }
    while (s->len - off >= 16 && !finished(rx)) {
        size_t incl = pcap_u32(s, s->buf + off + 8);
        if (incl > s->cap - 16) {
            fprintf(rx->err, PROG ": %s: a %zu-byte record is larger than --packet allows\n",
                    s->name, incl);
            return -1;
        }
        if (s->len - off - 16 < incl)
            break;
        size_t plen;
        const uint8_t *payload = frame_payload(s, s->buf + off + 16, incl, &plen);
        if (payload) {
            rx->r.packets++;
            int rc = spc_decoder_add_packet(s->dec, payload, plen, NULL);
            if (rc < 0)
                bad_packet(rx, s, rc, NULL);
            drain_decoder(rx, s);
        }
        off += 16 + incl;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
    return 0;
}

static void read_file(struct receiver *rx, struct source *s)
{
    while (!s->done && !finished(rx) && !spct_interrupted) {
        ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                fprintf(rx->err, PROG ": %s: %s\n", s->name, strerror(errno));
            else if (s->pcap && s->len && rx->complaints_bad++ < MAX_COMPLAINTS)
                fprintf(rx->err, PROG ": %s: ends inside a record\n", s->name);
            if (s->pcap)
                s->len = 0;
            end_connection(rx, s);
            return;
        }
        note_packet(rx);
        s->len += (size_t)n;
        if (s->pcap) {
            if (parse_pcap(rx, s) < 0)
                s->done = true;
        } else {
            parse_stream(rx, s);
        }
        if (s->done)
            end_connection(rx, s);
    }
}

/* ------------------------------------------------------------ inproc */

static int open_inproc(struct receiver *rx, size_t index, const char *name)
{
    struct source *s = add_source(rx);
    if (!s)
        return -1;
    s->kind = SRC_INPROC;
    s->index = index;
    snprintf(s->name, sizeof s->name, "queue '%s'", name);
    struct spc_decoder_config dc = SPC_DECODER_CONFIG_DEFAULT;
    dc.max_heap_size = (size_t)rx->o->max_heap_size;
    dc.max_live_heaps = (size_t)rx->o->concurrent_heaps;
    dc.bug_compat = rx->o->pyspead ? SPC_BUG_COMPAT_PYSPEAD_0_5_2 : 0;
    int rc = spc_inproc_receiver_create(&s->ir, name, &dc);
    if (rc < 0) {
        fprintf(rx->err, PROG ": queue '%s': %s\n", name, spc_strerror(rc));
        return -1;
    }
    s->fd = -1;
    return 0;
}

static void read_inproc(struct receiver *rx, struct source *s)
{
    for (int round = 0; round < 256 && !finished(rx); round++) {
        struct spc_decoded_heap *h;
        int rc = spc_inproc_receiver_next(s->ir, &h, 0);
        if (rc == 0) {
            note_packet(rx);
            handle_heap(rx, s, h);
            continue;
        }
        if (rc == -SPC_ESTOPPED)
            s->done = true;
        else if (rc != -EAGAIN && rc != -ETIMEDOUT)
            fprintf(rx->err, PROG ": %s: %s\n", s->name, spc_strerror(rc));
        return;
    }
}

/* ------------------------------------------------------------ main loop */

static bool finished(const struct receiver *rx)
{
    if (rx->o->heaps >= 0 && rx->r.heaps >= (uint64_t)rx->o->heaps)
        return true;
    return rx->stops_expected > 0 && rx->r.stops >= rx->stops_expected;
}

static void announce(struct receiver *rx)
{
    size_t n = 0;
    struct sockaddr_storage *addrs = calloc(rx->n_src ? rx->n_src : 1, sizeof *addrs);
    char *text = calloc(rx->n_src ? rx->n_src : 1, 320);
    size_t off = 0;
    for (size_t i = 0; addrs && text && i < rx->n_src; i++) {
        struct source *s = &rx->src[i];
        char line[300];
        if (s->kind == SRC_INPROC || s->kind == SRC_FILE) {
            snprintf(line, sizeof line, "%s", s->name);
        } else {
            socklen_t len = sizeof addrs[n];
            getsockname(s->fd, (struct sockaddr *)&addrs[n], &len);
            spct_format_sockaddr((struct sockaddr *)&addrs[n], line, sizeof line);
            snprintf(s->name, sizeof s->name, "%s", line);
            n++;
        }
        off += (size_t)snprintf(text + off, 320, "%s\n", line);
        if (!rx->o->quiet)
            fprintf(rx->err, PROG ": %s %s%s\n", s->kind == SRC_FILE ? "reading" : "listening on",
                    rx->o->tcp && s->kind == SRC_TCP_LISTEN ? "tcp " : "", line);
    }
    if (rx->o->ready_file && text) {
        int rc = spct_write_file_atomic(rx->o->ready_file, text);
        if (rc < 0)
            fprintf(rx->err, PROG ": --ready-file %s: %s\n", rx->o->ready_file, strerror(-rc));
    }
    if (rx->o->ready)
        rx->o->ready(rx->o->ready_user, addrs, n);
    free(addrs);
    free(text);
}

static void print_summary(struct receiver *rx, bool ok)
{
    const struct spct_recv_result *r = &rx->r;
    double gbps = r->seconds > 0 ? r->bytes * 8e-9 / r->seconds : 0.0;
    FILE *out = rx->out;
    if (rx->o->json) {
        fprintf(out,
                "{\"type\": \"summary\", \"heaps\": %" PRIu64 ", \"complete\": %" PRIu64
                ", \"incomplete\": %" PRIu64 ", \"corrupt\": %" PRIu64 ", \"missing\": %" PRIu64
                ", \"stops\": %" PRIu64 ", \"stops_expected\": %" PRIu64 ", \"packets\": %" PRIu64
                ", \"bad_packets\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": ",
                r->heaps, r->complete, r->incomplete, r->corrupt, r->missing, r->stops,
                rx->stops_expected, r->packets, r->bad_packets, r->bytes);
        spct_json_double(out, r->seconds);
        fputs(", \"gbps\": ", out);
        spct_json_double(out, gbps);
        fprintf(out, ", \"verify\": %s, \"verified\": %" PRIu64
                ", \"timed_out\": %s, \"finished\": %s, \"ok\": %s}\n",
                rx->o->verify ? "true" : "false", r->verified, r->timed_out ? "true" : "false",
                r->finished ? "true" : "false", ok ? "true" : "false");
    } else {
        fprintf(out, "Received %" PRIu64 " heaps: %" PRIu64 " complete, %" PRIu64
                " incomplete, %" PRIu64 " corrupt", r->heaps, r->complete, r->incomplete,
                r->corrupt);
        if (rx->o->verify)
            fprintf(out, ", %" PRIu64 " missing", r->missing);
        fprintf(out, "; %" PRIu64 " of %" PRIu64 " stop heaps; %" PRIu64 " packets, %" PRIu64
                " bad\n", r->stops, rx->stops_expected, r->packets, r->bad_packets);
        fprintf(out, "Received %" PRIu64 " payload bytes in %g seconds, %g Gb/s\n", r->bytes,
                r->seconds, gbps);
        if (rx->o->verify)
            fprintf(out, "Verify: %s (%" PRIu64 " heaps checked)%s\n", ok ? "OK" : "FAILED",
                    r->verified,
                    r->timed_out && !r->finished ? "; ended before every stop heap arrived" : "");
    }
    fflush(out);
}

int spct_recv_run(const struct spct_recv_opts *o, struct spct_recv_result *res, FILE *out,
                  FILE *err)
{
    struct receiver rx;
    memset(&rx, 0, sizeof rx);
    rx.o = o;
    rx.out = out;
    rx.err = err;
    rx.start = spct_now();
    rx.stops_expected = o->stops >= 0 ? (uint64_t)o->stops : o->n_sources;
    int status = SPCT_EXIT_OK;
    if (!o->tcp && !o->inproc) {
        rx.udp_bufs = malloc(UDP_BATCH * ((size_t)o->packet + 1));
        if (!rx.udp_bufs) {
            fprintf(err, PROG ": out of memory\n");
            return SPCT_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < o->n_sources; i++) {
        struct spct_endpoint ep;
        char why[512];
        bool file = !o->inproc &&
                    spct_parse_endpoint(o->sources[i], true, &ep, why, sizeof why) < 0;
        int rc = o->inproc ? open_inproc(&rx, i, o->sources[i])
                 : file    ? open_file(&rx, i, o->sources[i])
                 : o->tcp  ? open_tcp(&rx, i, o->sources[i])
                           : open_udp(&rx, i, o->sources[i]);
        if (rc == 0 && rx.src[rx.n_src - 1].kind == SRC_UDP)
            rc = make_decoder(&rx, &rx.src[rx.n_src - 1]);
        if (rc < 0) {
            receiver_free(&rx);
            return SPCT_EXIT_FAIL;
        }
    }
    announce(&rx);
    for (size_t i = 0; i < rx.n_src; i++)
        if (rx.src[i].kind == SRC_FILE)
            read_file(&rx, &rx.src[i]);

    struct pollfd *pfd = NULL;
    size_t cap_pfd = 0;
    while (!finished(&rx)) {
        double now = spct_now();
        if (spct_interrupted || (o->cancel && atomic_load(o->cancel)) ||
            (o->timeout > 0 && now - rx.start >= o->timeout) ||
            (o->idle_timeout > 0 && rx.got_packet && now - rx.last_packet >= o->idle_timeout)) {
            rx.r.timed_out = true;
            break;
        }
        if (cap_pfd < rx.n_src) {
            struct pollfd *p = realloc(pfd, rx.n_src * 2 * sizeof *p);
            if (!p)
                break;
            pfd = p;
            cap_pfd = rx.n_src * 2;
        }
        size_t n_src = rx.n_src, live = 0;
        for (size_t i = 0; i < n_src; i++) {
            struct source *s = &rx.src[i];
            pfd[i].fd = s->done || s->kind == SRC_FILE ? -1
                        : s->kind == SRC_INPROC          ? spc_inproc_receiver_fd(s->ir)
                                                         : s->fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
            live += !s->done && s->kind != SRC_TCP_LISTEN;
        }
        if (live == 0 && !o->tcp)
            break; /* every file read, every inproc queue stopped and drained */
        int n = poll(pfd, n_src, 50);
        if (n <= 0)
            continue;
        for (size_t i = 0; i < n_src && !finished(&rx); i++) {
            if (!pfd[i].revents)
                continue;
            struct source *s = &rx.src[i];
            switch (s->kind) {
            case SRC_UDP: read_udp(&rx, s); break;
            case SRC_TCP_LISTEN: accept_tcp(&rx, i); break;
            case SRC_TCP_CONN: read_tcp(&rx, s); break;
            case SRC_INPROC: read_inproc(&rx, s); break;
            case SRC_FILE: break; /* read before the loop */
            }
        }
    }
    free(pfd);
    rx.r.finished = finished(&rx);
    /* Heaps still being reassembled are given up and count as incomplete, unless the
     * --heaps limit ended the run (heaps beyond it are not counted at all). An inproc
     * queue is stopped so its receiver hands them over. */
    bool limit = o->heaps >= 0 && rx.r.heaps >= (uint64_t)o->heaps;
    for (size_t i = 0; i < rx.n_src && !limit; i++) {
        struct source *s = &rx.src[i];
        if (s->dec) {
            spc_decoder_flush(s->dec);
            drain_decoder(&rx, s);
        }
        if (s->ir && !s->done) {
            spc_inproc_queue_stop(spc_inproc_receiver_queue(s->ir));
            struct spc_decoded_heap *h;
            while (spc_inproc_receiver_next(s->ir, &h, 0) == 0)
                handle_heap(&rx, s, h);
        }
    }
    for (size_t i = 0; i < rx.n_src; i++) {
        struct source *s = &rx.src[i];
        if (s->ir) {
            struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
            spc_inproc_receiver_stats(s->ir, &st);
            rx.r.packets += st.packets + st.bad_packets;
            rx.r.bad_packets += st.bad_packets;
        }
    }
    rx.r.seconds = rx.got_packet ? rx.last_packet - rx.first_packet : 0.0;
    rx.r.missing = count_missing(&rx);
    bool ok = true;
    if (o->verify)
        ok = rx.r.incomplete == 0 && rx.r.corrupt == 0 && rx.r.missing == 0 &&
             rx.r.bad_packets == 0 && rx.r.finished;
    if (!ok)
        status = SPCT_EXIT_FAIL;
    print_summary(&rx, ok);
    if (res)
        *res = rx.r;
    receiver_free(&rx);
    return status;
}

int spct_recv_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct spct_recv_opts o;
    spct_recv_defaults(&o);
    int rc = spct_recv_parse(&o, argc, argv, out, err);
    if (rc == 0)
        rc = spct_recv_run(&o, NULL, out, err);
    else if (rc == 1)
        rc = SPCT_EXIT_OK;
    spct_recv_opts_free(&o);
    return rc;
}
