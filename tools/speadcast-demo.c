/* speadcast-demo: encodes a demo SPEAD stream in memory with the packetizer, mixes the
 * packets of neighbouring heaps a little, decodes them back with the decoder and checks
 * every heap and item byte for byte. Exit status 0 only if everything matched.
 *
 * The stream: heap 1 holds the start marker and the descriptors; heaps 2..N-1 each hold a
 * 40-bit timestamp (inline immediate), a counter (<u4, immediate), a 2-D <i2 array and a
 * variable-length string; heap N holds the end marker. Heaps are processed in windows of
 * WINDOW heaps so memory stays bounded for any N. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"

#define WINDOW 4
#define ROWS 32
#define COLS 100
#define MAX_HEAPS 10000000ull

enum { ID_TIMESTAMP = 0x1600, ID_COUNTER = 0x1001, ID_ARRAY = 0x1002, ID_LABEL = 0x1003 };

struct options {
    unsigned long long heaps;
    size_t packet_size;
    struct spc_flavour flavour;
};

/* One heap of the stream and the values it references (kept until verified). */
struct demo_heap {
    uint64_t cnt;
    struct spc_heap *heap;
    uint64_t timestamp;
    uint8_t counter[4];
    uint8_t array[ROWS * COLS * 2];
    char label[64];
    size_t label_len;
    bool verified;
};

struct totals {
    uint64_t heaps, packets, bytes, items, descriptors, failures;
};

static const int64_t array_shape[] = {ROWS, COLS};
static const int64_t label_shape[] = {SPC_DIM_VARIABLE};
static const struct spc_format_field u40[] = {{'u', 40}};
static const struct spc_format_field c8[] = {{'c', 8}};

static const struct spc_descriptor descriptors[] = {
    {.id = ID_TIMESTAMP, .name = "timestamp", .description = "ADC sample count (40-bit, immediate)",
     .format = u40, .n_format = 1},
    {.id = ID_COUNTER, .name = "counter", .description = "heap counter", .dtype = "<u4"},
    {.id = ID_ARRAY, .name = "spectra", .description = "32 x 100 little-endian int16 array",
     .shape = array_shape, .n_dims = 2, .dtype = "<i2"},
    {.id = ID_LABEL, .name = "label", .description = "variable-length text", .shape = label_shape, .n_dims = 1,
     .format = c8, .n_format = 1},
};
#define N_DESCRIPTORS (sizeof(descriptors) / sizeof(descriptors[0]))

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s [--heaps N] [--packet-size N] [--flavour 64-40|64-48]\n"
            "  Encodes a demo SPEAD stream in memory, decodes it back and verifies it.\n"
            "  --heaps N        heaps in the stream, start and end heaps included (2..%llu, default 200)\n"
            "  --packet-size N  max_packet_size in bytes (%d..65536, rounded down to 8; default 1472)\n"
            "  --flavour F      SPEAD-64-40 (default) or SPEAD-64-48\n",
            prog, MAX_HEAPS, SPC_MIN_PACKET_SIZE);
}

static int bad_option(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try %s --help)\n", prog);
    return 2;
}

/* Whole decimal number in [lo, hi], nothing else. */
static int parse_number(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    o->heaps = 200;
    o->packet_size = 1472;
    o->flavour = SPC_FLAVOUR_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, argv[0]);
            exit(0);
        } else if (strcmp(a, "--heaps") == 0) {
            if (!v)
                return bad_option(argv[0], "--heaps needs a value");
            if (parse_number(v, 2, MAX_HEAPS, &n) < 0)
                return bad_option(argv[0], "--heaps: '%s' is not a whole number in 2..%llu", v, MAX_HEAPS);
            o->heaps = n;
            i++;
        } else if (strcmp(a, "--packet-size") == 0) {
            if (!v)
                return bad_option(argv[0], "--packet-size needs a value");
            if (parse_number(v, 0, 65536, &n) < 0)
                return bad_option(argv[0], "--packet-size: '%s' is not a whole number of bytes up to 65536", v);
            if (n < SPC_MIN_PACKET_SIZE)
                return bad_option(argv[0], "--packet-size: %llu is below the minimum of %d bytes", n,
                                  SPC_MIN_PACKET_SIZE);
            o->packet_size = (size_t)n;
            i++;
        } else if (strcmp(a, "--flavour") == 0) {
            if (!v)
                return bad_option(argv[0], "--flavour needs a value");
            unsigned bits = strcmp(v, "64-40") == 0 ? 40 : strcmp(v, "64-48") == 0 ? 48 : 0;
            if (!bits)
                return bad_option(argv[0], "--flavour: '%s' is not one of 64-40, 64-48", v);
            spc_flavour_init(&o->flavour, bits, 0);
            i++;
        } else {
            return bad_option(argv[0], "unknown argument '%s'", a);
        }
    }
    return 0;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Heap number k (0-based) of a stream of n: values are a function of k only. */
static int build(const struct options *o, uint64_t k, struct demo_heap *d)
{
    memset(d, 0, sizeof(*d));
    d->cnt = k + 1;
    int rc = spc_heap_create(&d->heap, &o->flavour);
    if (rc < 0)
        return rc;
    if (k == 0) {
        rc = spc_heap_add_start(d->heap);
        for (size_t i = 0; i < N_DESCRIPTORS && rc == 0; i++)
            rc = spc_heap_add_descriptor(d->heap, &descriptors[i]);
        return rc;
    }
    if (k == o->heaps - 1)
        return spc_heap_add_end(d->heap);
    d->timestamp = (UINT64_C(0x1234567800) + k * 8192) & ((UINT64_C(1) << 40) - 1);
    uint32_t c = (uint32_t)k;
    for (int b = 0; b < 4; b++)
        d->counter[b] = (uint8_t)(c >> (8 * b));
    for (unsigned r = 0; r < ROWS; r++)
        for (unsigned col = 0; col < COLS; col++)
            put_le16(d->array + 2 * (r * COLS + col), (uint16_t)(k * 31 + r * 1000 + col * 7 - 20000));
    d->label_len = (size_t)snprintf(d->label, sizeof(d->label), "heap %llu of %llu", (unsigned long long)k + 1,
                                    o->heaps);
    if ((rc = spc_heap_add_inline(d->heap, ID_TIMESTAMP, d->timestamp)) < 0 ||
        (rc = spc_heap_add_item(d->heap, ID_COUNTER, d->counter, 4, true)) < 0 ||
        (rc = spc_heap_add_item(d->heap, ID_ARRAY, d->array, sizeof(d->array), true)) < 0)
        return rc;
    return spc_heap_add_item(d->heap, ID_LABEL, d->label, d->label_len, false);
}

static void fail(struct totals *t, uint64_t cnt, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "MISMATCH in heap %llu: ", (unsigned long long)cnt);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    t->failures++;
}

static bool same_bytes(const struct spc_decoded_item *it, const void *want, size_t len)
{
    return it->len == len && (len == 0 || memcmp(it->data, want, len) == 0);
}

static void verify_descriptor(const struct spc_decoded_heap *dh, const struct spc_decoded_item *it,
                              const struct spc_descriptor *want, struct totals *t)
{
    struct spc_descriptor_info *di;
    int rc = spc_descriptor_parse(it, &dh->flavour, &di);
    if (rc < 0) {
        fail(t, dh->cnt, "descriptor %s does not parse: %s", want->name, spc_strerror(rc));
        return;
    }
    bool ok = di->id == want->id && strcmp(di->name, want->name) == 0 &&
              strcmp(di->description, want->description) == 0 && di->n_dims == want->n_dims &&
              di->n_format == want->n_format && (want->dtype ? di->dtype && strcmp(di->dtype, want->dtype) == 0
                                                             : di->dtype == NULL);
    for (size_t i = 0; ok && i < want->n_dims; i++)
        ok = di->shape[i] == want->shape[i];
    for (size_t i = 0; ok && i < want->n_format; i++)
        ok = di->format[i].type == want->format[i].type && di->format[i].bits == want->format[i].bits;
    if (ok)
        t->descriptors++;
    else
        fail(t, dh->cnt, "descriptor %s came back different", want->name);
    spc_descriptor_info_free(di);
}

static void verify(const struct options *o, const struct demo_heap *d, const struct spc_decoded_heap *dh,
                   struct totals *t)
{
    unsigned vbytes = o->flavour.heap_address_bits / 8;
    if (!dh->complete) {
        fail(t, dh->cnt, "incomplete: %llu of %llu payload bytes", (unsigned long long)dh->received,
             (unsigned long long)dh->heap_size);
        return;
    }
    bool first = d->cnt == 1, last = d->cnt == o->heaps;
    size_t want_items = first ? 1 + N_DESCRIPTORS : last ? 1 : 4;
    if (dh->n_items != want_items) {
        fail(t, dh->cnt, "%zu items, expected %zu", dh->n_items, want_items);
        return;
    }
    if (dh->has_start != first || dh->has_stop != last)
        fail(t, dh->cnt, "start/end markers wrong");
    if (first || last) {
        const struct spc_decoded_item *it = &dh->items[0];
        if (it->id != SPC_ID_STREAM_CTRL || !it->immediate || it->value != (first ? SPC_CTRL_START : SPC_CTRL_STOP))
            fail(t, dh->cnt, "stream control item wrong");
        else
            t->items++;
        for (size_t i = 0; first && i < N_DESCRIPTORS; i++) {
            it = &dh->items[1 + i];
            if (it->id != SPC_ID_DESCRIPTOR || it->immediate)
                fail(t, dh->cnt, "item %zu is not a descriptor", 1 + i);
            else
                verify_descriptor(dh, it, &descriptors[i], t);
        }
        return;
    }
    const struct spc_decoded_item *it = dh->items;
    uint8_t counter_imm[8] = {0};
    memcpy(counter_imm + vbytes - 4, d->counter, 4); /* right-aligned in the pointer */
    if (it[0].id != ID_TIMESTAMP || !it[0].immediate || it[0].value != d->timestamp)
        fail(t, dh->cnt, "timestamp: got %#llx, sent %#llx", (unsigned long long)it[0].value,
             (unsigned long long)d->timestamp);
    else
        t->items++;
    if (it[1].id != ID_COUNTER || !it[1].immediate || !same_bytes(&it[1], counter_imm, vbytes))
        fail(t, dh->cnt, "counter differs");
    else
        t->items++;
    if (it[2].id != ID_ARRAY || it[2].immediate || !same_bytes(&it[2], d->array, sizeof(d->array)))
        fail(t, dh->cnt, "array differs");
    else
        t->items++;
    if (it[3].id != ID_LABEL || it[3].immediate || !same_bytes(&it[3], d->label, d->label_len))
        fail(t, dh->cnt, "label differs");
    else
        t->items++;
}

/* Tiny deterministic PRNG for the packet mixing. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct packet_ref {
    size_t off, len;
};

/* Encodes heaps [first, first + n), sends their packets round-robin with some neighbours
 * swapped, decodes and verifies. Returns 0, or -1 on an API error (already printed). */
static int run_window(const struct options *o, uint64_t first, size_t n, struct demo_heap *hs, uint64_t *rng,
                      struct spc_decoder *dec, struct totals *t)
{
    size_t mps = o->packet_size;
    struct spc_packetizer pz[WINDOW];
    size_t total = 0, n_packets = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if ((rc = build(o, first + i, &hs[i])) < 0 ||
            (rc = spc_packetizer_init(&pz[i], hs[i].heap, hs[i].cnt, mps)) < 0) {
            fprintf(stderr, "encoding heap %llu: %s\n", (unsigned long long)(first + i + 1), spc_strerror(rc));
            return -1;
        }
        int64_t wire = spc_heap_wire_size(hs[i].heap, hs[i].cnt, mps);
        total += (size_t)wire;
        n_packets += spc_packetizer_count(&pz[i]);
    }
    uint8_t *buf = malloc(total), *scratch = malloc(spc_packet_scratch_size(mps));
    struct packet_ref *refs = malloc(n_packets * sizeof(*refs));
    if (!buf || !scratch || !refs) {
        fprintf(stderr, "out of memory\n");
        free(buf);
        free(scratch);
        free(refs);
        return -1;
    }
    /* Round-robin over the window's heaps, one packet each in turn. */
    size_t used = 0, k = 0;
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < n; i++) {
            struct spc_packet pkt;
            if (spc_packetizer_next(&pz[i], scratch, &pkt) != 1)
                continue;
            more = true;
            if (k == n_packets || spc_packet_write(&pkt, buf + used, total - used) < 0) {
                fprintf(stderr, "packetizer produced more than spc_packetizer_count/spc_heap_wire_size said\n");
                t->failures++;
                more = false;
                break;
            }
            refs[k++] = (struct packet_ref){used, pkt.size};
            used += pkt.size;
        }
    }
    if (k != n_packets || used != total) {
        fprintf(stderr, "heaps %llu..: %zu packets / %zu bytes, predicted %zu / %zu\n", (unsigned long long)first + 1,
                k, used, n_packets, total);
        t->failures++;
    }
    for (size_t i = 0; i + 1 < k; i++)
        if (next_rand(rng) % 4 == 0) {
            struct packet_ref tmp = refs[i];
            refs[i] = refs[i + 1];
            refs[i + 1] = tmp;
        }
    for (size_t i = 0; i < k && rc == 0; i++) {
        rc = spc_decoder_add_packet(dec, buf + refs[i].off, refs[i].len, NULL);
        if (rc < 0)
            fprintf(stderr, "decoder refused a packet: %s\n", spc_strerror(rc));
    }
    t->packets += k;
    t->bytes += used;
    struct spc_decoded_heap *dh;
    while (spc_decoder_pop(dec, &dh) == 1) {
        if (dh->cnt < first + 1 || dh->cnt > first + n || hs[dh->cnt - first - 1].verified) {
            fail(t, dh->cnt, "not expected here (heaps %llu..%llu are in flight)", (unsigned long long)first + 1,
                 (unsigned long long)(first + n));
        } else {
            struct demo_heap *d = &hs[dh->cnt - first - 1];
            d->verified = true;
            verify(o, d, dh, t);
            t->heaps++;
        }
        spc_decoded_heap_free(dh);
    }
    for (size_t i = 0; i < n; i++) {
        if (!hs[i].verified)
            fail(t, hs[i].cnt, "never decoded");
        spc_heap_destroy(hs[i].heap);
    }
    free(buf);
    free(scratch);
    free(refs);
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc;
    printf("speadcast-demo %s: SPEAD-64-%u, max_packet_size %zu, %llu heaps\n", SPC_VERSION_STRING,
           o.flavour.heap_address_bits, o.packet_size, o.heaps);
    struct spc_decoder *dec;
    struct spc_decoder_config cfg = SPC_DECODER_CONFIG_DEFAULT;
    cfg.max_live_heaps = 2 * WINDOW;
    if ((rc = spc_decoder_create(&dec, &cfg)) < 0) {
        fprintf(stderr, "decoder: %s\n", spc_strerror(rc));
        return 1;
    }
    struct demo_heap *hs = calloc(WINDOW, sizeof(*hs));
    struct totals t = {0};
    uint64_t rng = 0x9e3779b97f4a7c15u;
    for (uint64_t first = 0; first < o.heaps && rc == 0; first += WINDOW) {
        size_t n = o.heaps - first < WINDOW ? (size_t)(o.heaps - first) : WINDOW;
        rc = run_window(&o, first, n, hs, &rng, dec, &t);
    }
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    spc_decoder_destroy(dec);
    free(hs);
    if (rc < 0)
        return 1;
    printf("encoded   %llu heaps in %llu packets, %llu bytes (packets of neighbouring heaps interleaved and "
           "shuffled)\n",
           o.heaps, (unsigned long long)t.packets, (unsigned long long)t.bytes);
    printf("decoded   %llu heaps complete, %llu incomplete, %llu packets rejected\n",
           (unsigned long long)st.heaps_complete, (unsigned long long)st.heaps_incomplete,
           (unsigned long long)st.bad_packets);
    printf("verified  %llu heaps, %llu items (timestamps, counters, %dx%d arrays, labels, start/end markers) "
           "and %llu descriptors byte for byte\n",
           (unsigned long long)t.heaps, (unsigned long long)t.items, ROWS, COLS, (unsigned long long)t.descriptors);
    if (t.failures || t.heaps != o.heaps || st.heaps_incomplete || st.bad_packets) {
        printf("FAILED: %llu mismatches\n", (unsigned long long)t.failures);
        return 1;
    }
    printf("OK\n");
    return 0;
}
