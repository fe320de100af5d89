/* Golden byte vectors from spead2 4.4.1: tests/vectors/spead2-encoder.txt (hand-described
 * heaps) and the tests/vectors/spead2/ corpus (JSON inputs + hex packets). Every packet is
 * reproduced byte for byte from the inputs, and spead2's bytes decode back to the inputs. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "testutil.h"
#include "vectorcase.h"

#define CORPUS_DIR SPC_TEST_VECTOR_DIR "/spead2"
#define ENCODER_TXT SPC_TEST_VECTOR_DIR "/spead2-encoder.txt"

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Word w (0 = header) of a packet. */
static uint64_t word(const struct vc_packet *p, size_t w)
{
    cr_assert_leq(8 * (w + 1), p->len, "packet of %zu bytes has no word %zu", p->len, w);
    return be64(p->data + 8 * w);
}

static unsigned n_pointers(const struct vc_packet *p)
{
    return (unsigned)(p->data[6] << 8 | p->data[7]);
}

/* ------------------------------------------------ spead2-encoder.txt sections */

struct section {
    char *text;
    char header[512];
    const char *lines[16];
    size_t n;
};

/* Finds "[name]" and collects the lines after it up to a blank line or the next section. */
static void load_section(const char *name, struct section *s)
{
    memset(s, 0, sizeof(*s));
    s->text = tu_read_file(ENCODER_TXT, NULL);
    cr_assert_not_null(s->text, "cannot read %s", ENCODER_TXT);
    char tag[128];
    snprintf(tag, sizeof(tag), "[%s]", name);
    bool in = false;
    for (char *line = strtok(s->text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!in) {
            if (strncmp(line, tag, strlen(tag)) == 0) {
                in = true;
                snprintf(s->header, sizeof(s->header), "%s", line + strlen(tag));
            }
            continue;
        }
        if (line[0] == '[' || line[strspn(line, " \t\r")] == '\0')
            break;
        cr_assert_lt(s->n, sizeof(s->lines) / sizeof(s->lines[0]));
        s->lines[s->n++] = line;
    }
    cr_assert(in, "section [%s] not found in %s", name, ENCODER_TXT);
}

static void free_section(struct section *s)
{
    free(s->text);
}

/* Hex after an optional prefix, with '|' separators and spaces dropped. */
static struct vc_packet line_hex(const char *line, const char *prefix)
{
    if (prefix) {
        const char *at = strstr(line, prefix);
        cr_assert_not_null(at, "line lacks '%s': %s", prefix, line);
        line = at + strlen(prefix);
    }
    char *clean = strdup(line);
    size_t o = 0;
    for (size_t i = 0; clean[i]; i++)
        if (clean[i] != '|')
            clean[o++] = clean[i];
    clean[o] = '\0';
    struct vc_packet p;
    p.data = tu_hex_decode(clean, &p.len);
    free(clean);
    cr_assert_not_null(p.data, "bad hex in: %s", line);
    return p;
}

/* "... 242 bytes" at the end of a section header, or -1. */
static long header_bytes(const char *header)
{
    const char *b = strstr(header, " bytes");
    if (!b)
        return -1;
    while (b > header && b[-1] >= '0' && b[-1] <= '9')
        b--;
    return strtol(b, NULL, 10);
}

static struct spc_heap *new_heap(unsigned hab, unsigned bug_compat)
{
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, hab, bug_compat), 0);
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, &f), 0);
    return h;
}

static struct vc_packets packetize(const struct spc_heap *h, uint64_t cnt, size_t mps)
{
    struct vc_packets pk;
    int rc = vc_packetize(h, cnt, mps, &pk);
    cr_assert_eq(rc, 0, "packetize: %s", spc_strerror(rc));
    cr_assert_eq(pk.n, pk.predicted_count, "%zu packets, spc_packetizer_count said %zu", pk.n, pk.predicted_count);
    int64_t total = 0;
    for (size_t i = 0; i < pk.n; i++)
        total += (int64_t)pk.p[i].len;
    cr_assert_eq(total, pk.predicted_bytes, "%lld bytes, spc_heap_wire_size said %lld", (long long)total,
                 (long long)pk.predicted_bytes);
    return pk;
}

/* The section's only data line is the heap's single packet. */
static void expect_single_packet(const char *name, const struct spc_heap *h, uint64_t cnt, size_t mps)
{
    struct section s;
    load_section(name, &s);
    cr_assert_eq(s.n, 1);
    struct vc_packet want = line_hex(s.lines[0], NULL);
    long bytes = header_bytes(s.header);
    cr_assert(bytes < 0 || (size_t)bytes == want.len, "[%s] says %ld bytes, its hex has %zu", name, bytes, want.len);
    struct vc_packets pk = packetize(h, cnt, mps);
    cr_assert_eq(pk.n, 1, "[%s]: %zu packets", name, pk.n);
    cr_expect(vc_same_bytes(name, pk.p[0].data, pk.p[0].len, want.data, want.len), "[%s] differs (see diff)", name);
    vc_packets_free(&pk);
    free(want.data);
    free_section(&s);
}

Test(encoder_txt, empty_heap_64_48)
{
    struct spc_heap *h = new_heap(48, 0);
    expect_single_packet("empty-heap-64-48", h, 0x123456, 1500);
    spc_heap_destroy(h);
}

Test(encoder_txt, empty_heap_64_40)
{
    struct spc_heap *h = new_heap(40, 0);
    expect_single_packet("empty-heap-64-40", h, 1, 1472);
    spc_heap_destroy(h);
}

Test(encoder_txt, start_heap)
{
    struct spc_heap *h = new_heap(48, 0);
    cr_assert_eq(spc_heap_add_start(h), 0);
    expect_single_packet("start-heap", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

Test(encoder_txt, end_heap)
{
    struct spc_heap *h = new_heap(48, 0);
    cr_assert_eq(spc_heap_add_end(h), 0);
    expect_single_packet("end-heap", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

Test(encoder_txt, small_fixed)
{
    static const uint8_t v[] = {0x76, 0x54};
    struct spc_heap *h = new_heap(48, 0);
    cr_assert_eq(spc_heap_add_item(h, 0x2345, v, sizeof(v), true), 0);
    expect_single_packet("small-fixed", h, 0x123456, 1472);
    spc_heap_destroy(h);
    /* The same value as an inline integer encodes identically. */
    h = new_heap(48, 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x2345, 0x7654), 0);
    expect_single_packet("small-fixed", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

Test(encoder_txt, small_variable)
{
    static const uint8_t v[] = {4, 5};
    struct spc_heap *h = new_heap(48, 0);
    cr_assert_eq(spc_heap_add_item(h, 0x2345, v, sizeof(v), false), 0);
    expect_single_packet("small-variable", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

static uint8_t seq32[32];
static const uint8_t deadbeef[6] = {0, 0, 0xde, 0xad, 0xbe, 0xef};

static struct spc_heap *repeat_heap(bool repeat, bool inline_imm)
{
    for (int i = 0; i < 32; i++)
        seq32[i] = (uint8_t)i;
    struct spc_heap *h = new_heap(48, 0);
    cr_assert_eq(spc_heap_add_item(h, 0x2345, seq32, sizeof(seq32), true), 0);
    if (inline_imm)
        cr_assert_eq(spc_heap_add_inline(h, 0x2346, 0xDEADBEEF), 0);
    else
        cr_assert_eq(spc_heap_add_item(h, 0x2346, deadbeef, sizeof(deadbeef), true), 0);
    spc_heap_set_repeat_pointers(h, repeat);
    return h;
}

Test(encoder_txt, repeat_pointers)
{
    struct section s;
    load_section("repeat-pointers", &s);
    cr_assert_geq(s.n, 2);
    struct vc_packet want[2] = {line_hex(s.lines[0], "packet0:"), line_hex(s.lines[1], "packet1:")};
    for (int inl = 0; inl < 2; inl++) {
        struct spc_heap *h = repeat_heap(true, inl);
        struct vc_packets pk = packetize(h, 0x123456, 72);
        cr_assert_eq(pk.n, 2);
        for (int i = 0; i < 2; i++)
            cr_expect(vc_same_bytes(i ? "repeat-pointers packet1" : "repeat-pointers packet0", pk.p[i].data,
                                    pk.p[i].len, want[i].data, want[i].len));
        vc_packets_free(&pk);
        spc_heap_destroy(h);
    }
    /* repeat_pointers off: packet0 unchanged; packet1 is 56 bytes with header count 4,
     * no item pointers, payload 10..1f. */
    uint8_t off1[56];
    memcpy(off1, want[1].data, 40);
    off1[7] = 4;
    memcpy(off1 + 40, want[1].data + 56, 16);
    cr_assert_eq(want[1].len, 72);
    struct spc_heap *h = repeat_heap(false, false);
    struct vc_packets pk = packetize(h, 0x123456, 72);
    cr_assert_eq(pk.n, 2);
    cr_expect(vc_same_bytes("no-repeat packet0", pk.p[0].data, pk.p[0].len, want[0].data, want[0].len));
    cr_expect(vc_same_bytes("no-repeat packet1", pk.p[1].data, pk.p[1].len, off1, sizeof(off1)));
    vc_packets_free(&pk);
    spc_heap_destroy(h);
    free(want[0].data);
    free(want[1].data);
    free_section(&s);
}

static const uint8_t numpy_data[] = {6, 0, 7, 0, 8, 0, 10, 0, 11, 0, 0xe0, 0x2e};
static const int64_t shape_2_3[] = {2, 3};

static struct spc_heap *numpy_heap(unsigned hab)
{
    struct spc_heap *h = new_heap(hab, 0);
    struct spc_descriptor d = {.id = 0x2345, .name = "name", .description = "description",
                               .shape = shape_2_3, .n_dims = 2, .dtype = "<u2"};
    cr_assert_eq(spc_heap_add_descriptor(h, &d), 0);
    cr_assert_eq(spc_heap_add_item(h, 0x2345, numpy_data, sizeof(numpy_data), true), 0);
    return h;
}

Test(encoder_txt, numpy_simple_64_48)
{
    struct spc_heap *h = numpy_heap(48);
    expect_single_packet("numpy-simple-64-48", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

Test(encoder_txt, numpy_simple_64_40)
{
    struct spc_heap *h = numpy_heap(40);
    expect_single_packet("numpy-simple-64-40", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

Test(encoder_txt, fallback_types)
{
    /* (True, 17, 'y', 1.0), (False, -23, 'n', -1.0) packed b1 i7 c8 f32, MSB first. */
    static const uint8_t data[] = {0x91, 'y', 0x3f, 0x80, 0, 0, 0x69, 'n', 0xbf, 0x80, 0, 0};
    static const struct spc_format_field fmt[] = {{'b', 1}, {'i', 7}, {'c', 8}, {'f', 32}};
    static const int64_t shape[] = {2};
    struct spc_heap *h = new_heap(48, 0);
    struct spc_descriptor d = {.id = 0x2345, .name = "name", .description = "description",
                               .shape = shape, .n_dims = 1, .format = fmt, .n_format = 4};
    cr_assert_eq(spc_heap_add_descriptor(h, &d), 0);
    cr_assert_eq(spc_heap_add_item(h, 0x2345, data, sizeof(data), true), 0);
    expect_single_packet("fallback-types", h, 0x123456, 1472);
    spc_heap_destroy(h);
}

/* The descriptor's own payload: after its header and pointers. */
static void check_descriptor_payload(unsigned bug_compat, const struct vc_packet *want, uint64_t outer_size)
{
    static const struct spc_format_field fmt[] = {{'u', 8}};
    static const int64_t shape[] = {SPC_DIM_VARIABLE, 5};
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, 40, bug_compat), 0);
    struct spc_descriptor d = {.id = 0x1234, .name = "n", .description = "d", .shape = shape, .n_dims = 2,
                               .format = fmt, .n_format = 1};
    uint8_t *enc;
    size_t len;
    cr_assert_eq(spc_descriptor_encode(&d, &f, &enc, &len), 0);
    cr_assert_geq(len, 8);
    size_t start = 8 + 8 * (size_t)(enc[6] << 8 | enc[7]);
    cr_assert_leq(start, len);
    char label[64];
    snprintf(label, sizeof(label), "descriptor payload, bug_compat %u", bug_compat);
    cr_expect(vc_same_bytes(label, enc + start, len - start, want->data, want->len));
    cr_expect_eq(len, outer_size, "descriptor is %zu bytes, expected 0x%llx", len, (unsigned long long)outer_size);
    free(enc);

    /* In a heap, the outer heap size is the descriptor's length. */
    struct spc_heap *h = new_heap(40, bug_compat);
    cr_assert_eq(spc_heap_add_descriptor(h, &d), 0);
    cr_expect_eq(spc_heap_payload_size(h), outer_size);
    struct vc_packets pk = packetize(h, 1, 1472);
    cr_assert_eq(pk.n, 1);
    cr_expect_eq(word(&pk.p[0], 2), (UINT64_C(0x800002) << 40) | outer_size);
    vc_packets_free(&pk);
    spc_heap_destroy(h);
}

Test(encoder_txt, variable_shape_descriptor)
{
    struct section s;
    load_section("variable-shape-descriptor", &s);
    cr_assert_eq(s.n, 2);
    struct vc_packet p0 = line_hex(s.lines[0], "descriptor payload bytes:");
    /* The second line ends in a remark in parentheses. */
    char *l1 = strdup(s.lines[1]);
    char *paren = strchr(l1, '(');
    cr_assert_not_null(paren);
    *paren = '\0';
    /* Known slip in the text: its second shape entry "00 0000000000000005" has 8 size bytes
     * where DESCRIPTOR_WIDTHS gives 7 (1 flag + 7 size bytes, as its first entry has);
     * with 8 the payload would be 23 bytes, contradicting its own outer heap size 0x66
     * (80 bytes of header and pointers + 22). Read that entry with 7 size bytes. */
    char *slip = strstr(l1, "| 00 0000000000000005");
    cr_assert_not_null(slip, "the bug_compat=7 line changed; revisit this test");
    memmove(slip + 5, slip + 7, strlen(slip + 7) + 1);
    struct vc_packet p7 = line_hex(l1, "with bug_compat=7:");
    check_descriptor_payload(0, &p0, 0x62);
    check_descriptor_payload(7, &p7, 0x66);
    free(l1);
    free(p0.data);
    free(p7.data);
    free_section(&s);
}

/* Heap i of the round-robin section: item 0x1000+i of 64*i+8 bytes, byte j = (i+j) mod 256. */
Test(encoder_txt, round_robin_per_heap_packets)
{
    struct section s;
    load_section("round-robin", &s);
    uint8_t data[3][136];
    struct vc_packets pk[3];
    struct spc_heap *h[3];
    for (unsigned i = 0; i < 3; i++) {
        for (unsigned j = 0; j < 64 * i + 8; j++)
            data[i][j] = (uint8_t)(i + j);
        h[i] = new_heap(48, 0);
        cr_assert_eq(spc_heap_add_item(h[i], 0x1000 + i, data[i], 64 * i + 8, true), 0);
        pk[i] = packetize(h[i], i + 1, 88);
    }
    size_t rows[3] = {0};
    for (size_t l = 0; l < s.n; l++) {
        unsigned hi, pi, size, ptrs;
        unsigned long long hsize, off, plen;
        if (sscanf(s.lines[l], "| H%uP%u | %llx | %llx | %llx | %u | %u |", &hi, &pi, &hsize, &off, &plen, &size,
                   &ptrs) != 7)
            continue;
        cr_assert_lt(hi, 3);
        cr_assert_lt(pi, pk[hi].n, "H%uP%u: heap has %zu packets", hi, pi, pk[hi].n);
        const struct vc_packet *p = &pk[hi].p[pi];
        uint64_t mask = (UINT64_C(1) << 48) - 1;
        cr_expect_eq(word(p, 2) & mask, hsize, "H%uP%u heap size", hi, pi);
        cr_expect_eq(word(p, 3) & mask, off, "H%uP%u offset", hi, pi);
        cr_expect_eq(word(p, 4) & mask, plen, "H%uP%u payload length", hi, pi);
        cr_expect_eq(p->len, size, "H%uP%u size", hi, pi);
        cr_expect_eq(n_pointers(p), ptrs, "H%uP%u pointers", hi, pi);
        for (size_t b = 0; b < plen; b++)
            cr_expect_eq(p->data[p->len - plen + b], data[hi][off + b], "H%uP%u payload byte %zu", hi, pi, b);
        rows[hi]++;
    }
    for (unsigned i = 0; i < 3; i++) {
        cr_expect_eq(rows[i], pk[i].n, "heap %u: %zu table rows, %zu packets", i, rows[i], pk[i].n);
        vc_packets_free(&pk[i]);
        spc_heap_destroy(h[i]);
    }
    free_section(&s);
}

Test(encoder_txt, pointer_spill)
{
    struct section s;
    load_section("pointer-spill", &s);
    cr_assert_not_null(strstr(s.header, "10 inline immediate items, mps=64: 6 packets"));
    struct spc_heap *h = new_heap(48, 0);
    for (unsigned i = 0; i < 10; i++)
        cr_assert_eq(spc_heap_add_inline(h, 0x1000 + i, i + 1), 0);
    struct vc_packets pk = packetize(h, 0x123456, 64);
    cr_assert_eq(pk.n, 6);
    uint64_t mask = (UINT64_C(1) << 48) - 1;
    for (size_t i = 0; i < 6; i++) {
        const struct vc_packet *p = &pk.p[i];
        cr_expect_eq(word(p, 2) & mask, 0x29, "packet %zu heap size", i);
        cr_expect_eq(word(p, 3) & mask, 8 * i, "packet %zu offset", i);
        if (i < 5) {
            cr_expect_eq(n_pointers(p), 6, "packet %zu", i);
            cr_expect_eq(p->len, 64);
            cr_expect_eq(word(p, 5), UINT64_C(1) << 63 | (0x1000 + 2 * i) << 48 | (2 * i + 1));
            cr_expect_eq(word(p, 6), UINT64_C(1) << 63 | (0x1000 + 2 * i + 1) << 48 | (2 * i + 2));
            cr_expect_eq(word(p, 7), 0, "packet %zu payload", i);
        } else {
            cr_expect_eq(n_pointers(p), 5);
            cr_expect_eq(p->len, 49);
            cr_expect_eq(word(p, 5), 0, "last packet: addressed NULL pointer, address 0");
            cr_expect_eq(p->data[48], 0);
        }
    }
    vc_packets_free(&pk);
    spc_heap_destroy(h);
    free_section(&s);
}

static void expect_same_packets(const struct spc_heap *h, size_t mps_a, size_t mps_b)
{
    struct vc_packets a = packetize(h, 0x123456, mps_a), b = packetize(h, 0x123456, mps_b);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        cr_expect(vc_same_bytes("mps rounding", a.p[i].data, a.p[i].len, b.p[i].data, b.p[i].len));
    vc_packets_free(&a);
    vc_packets_free(&b);
}

Test(encoder_txt, mps_rounding)
{
    struct section s;
    load_section("mps-rounding", &s);
    cr_assert_not_null(strstr(s.header, "75 behaves exactly as 72"));
    struct spc_heap *h = repeat_heap(true, false);
    expect_same_packets(h, 75, 72);
    spc_heap_destroy(h);
    h = repeat_heap(false, false);
    expect_same_packets(h, 79, 72);
    spc_heap_destroy(h);
    h = numpy_heap(40);
    expect_same_packets(h, 75, 72);
    spc_heap_destroy(h);
    free_section(&s);
}

/* ---------------------------------------------------------- the JSON corpus */

struct case_param {
    char name[64];
};

static void free_params(struct criterion_test_params *crp)
{
    cr_free(crp->params);
}

/* Every case the MANIFEST lists; an unreadable MANIFEST becomes one failing case. */
ParameterizedTestParameters(corpus, case)
{
    char **names;
    size_t n = vc_list(CORPUS_DIR, &names);
    size_t count = n ? n : 1;
    struct case_param *p = cr_calloc(count, sizeof(*p));
    if (n == 0)
        snprintf(p[0].name, sizeof(p[0].name), "(MANIFEST unreadable)");
    for (size_t i = 0; i < n; i++)
        snprintf(p[i].name, sizeof(p[i].name), "%s", names[i]);
    vc_free_names(names, n);
    return cr_make_param_array(struct case_param, p, count, free_params);
}

/* Compares decoded heap dh with the case heap vh. */
static void check_decoded(const struct vc_case *c, const struct vc_heap *vh, const struct spc_decoded_heap *dh)
{
    const char *cn = c->name;
    unsigned hab = c->flavour.heap_address_bits;
    cr_expect(dh->complete, "%s cnt %llu: incomplete", cn, (unsigned long long)dh->cnt);
    cr_expect_eq(dh->flavour.heap_address_bits, hab, "%s: decoded flavour", cn);
    cr_assert_eq(dh->n_items, vh->n_entries, "%s cnt %llu: %zu items decoded, %zu entries", cn,
                 (unsigned long long)dh->cnt, dh->n_items, vh->n_entries);
    bool start = false, stop = false;
    for (size_t k = 0; k < vh->n_entries; k++) {
        const struct vc_entry *e = &vh->entries[k];
        const struct spc_decoded_item *it = &dh->items[k];
        switch (e->kind) {
        case VC_START:
        case VC_END:
            cr_expect_eq(it->id, SPC_ID_STREAM_CTRL, "%s entry %zu", cn, k);
            cr_expect(it->immediate, "%s entry %zu", cn, k);
            cr_expect_eq(it->value, e->kind == VC_START ? SPC_CTRL_START : SPC_CTRL_STOP, "%s entry %zu", cn, k);
            start |= e->kind == VC_START;
            stop |= e->kind == VC_END;
            break;
        case VC_ITEM:
            cr_expect_eq(it->id, e->id, "%s entry %zu (%s): id", cn, k, e->name);
            cr_expect_eq(it->immediate, e->immediate, "%s item %s: immediate", cn, e->name);
            if (it->immediate) {
                cr_assert_eq(it->len, hab / 8, "%s item %s: immediate of %zu bytes", cn, e->name, it->len);
                cr_assert_leq(e->raw_len, it->len);
                size_t pad = it->len - e->raw_len;
                for (size_t b = 0; b < pad; b++)
                    cr_expect_eq(it->data[b], 0, "%s item %s: fill byte %zu", cn, e->name, b);
                cr_expect(vc_same_bytes(e->name, it->data + pad, e->raw_len, e->raw, e->raw_len),
                          "%s item %s: immediate bytes", cn, e->name);
            } else {
                cr_expect(vc_same_bytes(e->name, it->data, it->len, e->raw, e->raw_len), "%s item %s: bytes", cn,
                          e->name);
            }
            break;
        case VC_DESCRIPTOR: {
            cr_expect_eq(it->id, SPC_ID_DESCRIPTOR, "%s entry %zu", cn, k);
            cr_expect(!it->immediate);
            struct spc_descriptor_info *di = NULL;
            int rc = spc_descriptor_parse(it, &dh->flavour, &di);
            cr_assert_eq(rc, 0, "%s descriptor %s: %s", cn, e->name, spc_strerror(rc));
            cr_expect_eq(di->id, e->id, "%s descriptor %s: id", cn, e->name);
            cr_expect_str_eq(di->name, e->name, "%s: descriptor name", cn);
            cr_expect_str_eq(di->description, e->description, "%s descriptor %s: description", cn, e->name);
            cr_expect_eq(di->n_dims, e->n_dims, "%s descriptor %s: dims", cn, e->name);
            for (size_t d = 0; d < e->n_dims && d < di->n_dims; d++)
                cr_expect_eq(di->shape[d], e->shape[d], "%s descriptor %s: shape[%zu]", cn, e->name, d);
            cr_expect_eq(di->n_format, e->n_format, "%s descriptor %s: format fields", cn, e->name);
            for (size_t f = 0; f < e->n_format && f < di->n_format; f++) {
                cr_expect_eq(di->format[f].type, e->format[f].type, "%s descriptor %s: format[%zu]", cn, e->name, f);
                cr_expect_eq(di->format[f].bits, e->format[f].bits, "%s descriptor %s: format[%zu]", cn, e->name, f);
            }
            if (e->dtype) {
                cr_assert_not_null(di->dtype_header, "%s descriptor %s: no dtype header", cn, e->name);
                cr_expect_str_eq(di->dtype_header, e->wire_numpy_header, "%s descriptor %s: header", cn, e->name);
                cr_assert_not_null(di->dtype, "%s descriptor %s: no dtype", cn, e->name);
                /* Under bug_compat 4 the receiver undoes the swap: the caller's descr comes back. */
                cr_expect_str_eq(di->dtype, e->dtype, "%s descriptor %s: dtype", cn, e->name);
                cr_expect_eq(di->fortran_order, e->fortran_order, "%s descriptor %s: order", cn, e->name);
                cr_expect_eq(di->dtype_n_dims, e->n_dims, "%s descriptor %s: dtype shape", cn, e->name);
                for (size_t d = 0; d < e->n_dims && d < di->dtype_n_dims; d++)
                    cr_expect_eq(di->dtype_shape[d], e->shape[d], "%s descriptor %s: dtype shape", cn, e->name);
            } else {
                cr_expect_null(di->dtype_header, "%s descriptor %s: unexpected dtype header", cn, e->name);
                cr_expect_null(di->dtype, "%s descriptor %s", cn, e->name);
            }
            spc_descriptor_info_free(di);
            break;
        }
        }
    }
    cr_expect_eq(dh->has_start, start, "%s: has_start", cn);
    cr_expect_eq(dh->has_stop, stop, "%s: has_stop", cn);
}

/* Feeds spead2's packets to a decoder in stream order and matches each finished heap
 * with the first unmatched case heap of the same cnt. */
static void decode_case(const struct vc_case *c)
{
    struct spc_decoder_config cfg = SPC_DECODER_CONFIG_DEFAULT;
    cfg.bug_compat = c->flavour.bug_compat;
    struct spc_decoder *dec;
    cr_assert_eq(spc_decoder_create(&dec, &cfg), 0);
    bool *matched = calloc(c->n_heaps + 1, sizeof(*matched));
    size_t n_matched = 0;
    for (size_t i = 0; i <= c->n_packets; i++) {
        if (i < c->n_packets) {
            size_t used = 0;
            int rc = spc_decoder_add_packet(dec, c->packets[i].data, c->packets[i].len, &used);
            cr_assert_eq(rc, 0, "%s packet %zu: %s", c->name, i, spc_strerror(rc));
            cr_expect_eq(used, c->packets[i].len, "%s packet %zu", c->name, i);
        } else {
            spc_decoder_flush(dec);
        }
        struct spc_decoded_heap *dh;
        while (spc_decoder_pop(dec, &dh) == 1) {
            size_t h = 0;
            while (h < c->n_heaps && (matched[h] || c->heaps[h].cnt != dh->cnt))
                h++;
            cr_assert_lt(h, c->n_heaps, "%s: decoded an unexpected heap cnt %llu", c->name,
                         (unsigned long long)dh->cnt);
            matched[h] = true;
            n_matched++;
            check_decoded(c, &c->heaps[h], dh);
            spc_decoded_heap_free(dh);
        }
    }
    cr_expect_eq(n_matched, c->n_heaps, "%s: %zu of %zu heaps decoded", c->name, n_matched, c->n_heaps);
    struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
    spc_decoder_stats(dec, &st);
    cr_expect_eq(st.packets, c->n_packets);
    cr_expect_eq(st.bad_packets, 0);
    cr_expect_eq(st.heaps_complete, c->n_heaps);
    cr_expect_eq(st.heaps_incomplete, 0);
    free(matched);
    spc_decoder_destroy(dec);
}

static uint64_t packet_cnt(const struct vc_case *c, const struct vc_packet *p)
{
    return word(p, 1) & spc_flavour_max_value(&c->flavour);
}

ParameterizedTest(struct case_param *param, corpus, case)
{
    struct vc_case *c;
    char err[512];
    int rc = vc_load(CORPUS_DIR, param->name, &c, err, sizeof(err));
    cr_assert_eq(rc, 0, "case %s: %s", param->name, err);
    cr_assert_eq(c->n_packets, c->expected_packets, "%s: .hex has %zu packets, expected.packets %zu", c->name,
                 c->n_packets, c->expected_packets);
    uint64_t hex_bytes = 0;
    for (size_t i = 0; i < c->n_packets; i++)
        hex_bytes += c->packets[i].len;
    cr_assert_eq(hex_bytes, c->expected_bytes, "%s: .hex has %llu bytes", c->name, (unsigned long long)hex_bytes);

    /* Encoding, heap by heap. A group case interleaves heaps (send order is the stream
     * layer's business); each heap's own packets still appear in order, picked by cnt. */
    size_t next = 0, total_packets = 0;
    uint64_t total_bytes = 0;
    for (size_t h = 0; h < c->n_heaps; h++) {
        struct spc_heap *heap;
        rc = vc_build_heap(c, h, &heap);
        cr_assert_eq(rc, 0, "%s heap %zu: %s", c->name, h, spc_strerror(rc));
        struct vc_packets pk = packetize(heap, c->heaps[h].cnt, c->max_packet_size);
        size_t scan = 0;
        for (size_t i = 0; i < pk.n; i++) {
            const struct vc_packet *want = NULL;
            if (!c->group_mode) {
                if (next < c->n_packets)
                    want = &c->packets[next++];
            } else {
                while (scan < c->n_packets && packet_cnt(c, &c->packets[scan]) != c->heaps[h].cnt)
                    scan++;
                if (scan < c->n_packets)
                    want = &c->packets[scan++];
            }
            cr_assert_not_null(want, "%s heap %zu: packet %zu is extra", c->name, h, i);
            char label[160];
            snprintf(label, sizeof(label), "%s heap %zu (cnt %llu) packet %zu", c->name, h,
                     (unsigned long long)c->heaps[h].cnt, i);
            cr_expect(vc_same_bytes(label, pk.p[i].data, pk.p[i].len, want->data, want->len), "%s differs", label);
            total_bytes += pk.p[i].len;
        }
        total_packets += pk.n;
        vc_packets_free(&pk);
        spc_heap_destroy(heap);
    }
    cr_expect_eq(total_packets, c->expected_packets, "%s: %zu packets produced, %zu expected", c->name,
                 total_packets, c->expected_packets);
    cr_expect_eq(total_bytes, c->expected_bytes, "%s: %llu bytes produced, %llu expected", c->name,
                 (unsigned long long)total_bytes, (unsigned long long)c->expected_bytes);

    decode_case(c);
    vc_free(c);
}

/* The MANIFEST and the directory agree, so no case is silently left out, and every case
 * (group ones included) loads. */
Test(corpus, manifest_lists_every_case)
{
    char **names;
    size_t n = vc_list(CORPUS_DIR, &names);
    cr_assert_gt(n, 0, "no cases in %s/MANIFEST", CORPUS_DIR);
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        struct vc_case *c = NULL;
        char err[512];
        cr_expect_eq(vc_load(CORPUS_DIR, names[i], &c, err, sizeof(err)), 0, "%s: %s", names[i], err);
        if (c && c->group_mode) {
            groups++;
            cr_expect(strcmp(c->group_mode, "serial") == 0 || strcmp(c->group_mode, "round_robin") == 0);
        }
        vc_free(c);
    }
    cr_expect_eq(groups, 3);
    DIR *dir = opendir(CORPUS_DIR);
    cr_assert_not_null(dir);
    size_t json_files = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        json_files++;
        bool listed = false;
        for (size_t i = 0; i < n && !listed; i++)
            listed = strlen(names[i]) == len - 5 && strncmp(names[i], de->d_name, len - 5) == 0;
        cr_expect(listed, "%s is not in the MANIFEST", de->d_name);
    }
    closedir(dir);
    cr_expect_eq(json_files, n, "%zu .json files, %zu MANIFEST entries", json_files, n);
    vc_free_names(names, n);
}
