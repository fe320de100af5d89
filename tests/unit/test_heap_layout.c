/* Heaps laid out as their packets (spc_heap_reserve_item): whatever the layout state
 * (headers written in place, a stale layout, concurrent sends, reserved items mixed with
 * others), the bytes on the wire equal those of a twin heap that holds the same values in
 * borrowed memory (spc_heap_add_item). Also the bytes API (payload write/read/span), the
 * errors, the stream's packets_in_place count, and udp loopback with and without GSO. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <speadcast/decoder.h>
#include <speadcast/speadcast.h>

#include "testutil.h"

/* ------------------------------------------------------------- heap building */

enum kind { RESERVED, BORROWED, IMMEDIATE, INLINE, DESCRIPTOR };

struct item_spec {
    enum kind kind;
    uint64_t id;
    size_t len; /* bytes (INLINE: the value) */
};

#define MAX_ITEMS 6

struct heap_case {
    const char *name;
    unsigned hab, bug_compat;
    bool repeat;
    size_t n;
    struct item_spec items[MAX_ITEMS];
};

static const struct heap_case CASES[] = {
    {"one_reserved", 40, 0, false, 1, {{RESERVED, 0x1000, 20000}}},
    {"immediates_then_reserved", 40, 0, false, 3,
     {{INLINE, 0x1001, 7}, {IMMEDIATE, 0x1002, 3}, {RESERVED, 0x1000, 12345}}},
    {"borrowed_reserved_borrowed", 40, 0, false, 4,
     {{BORROWED, 0x1003, 1000}, {RESERVED, 0x1000, 9000}, {RESERVED, 0x1004, 3001},
      {BORROWED, 0x1005, 777}}},
    {"adjacent_reserved", 40, 0, false, 4,
     {{RESERVED, 0x1000, 3000}, {RESERVED, 0x1001, 4000}, {RESERVED, 0x1002, 5003},
      {RESERVED, 0x1003, 2000}}},
    {"descriptors_then_reserved", 40, 0, false, 3,
     {{DESCRIPTOR, 0x1000, 0}, {DESCRIPTOR, 0x1001, 0}, {RESERVED, 0x1000, 10000}}},
    {"tiny_reserved_0", 40, 0, false, 1, {{RESERVED, 0x1000, 0}}},
    {"tiny_reserved_1", 40, 0, false, 1, {{RESERVED, 0x1000, 1}}},
    {"tiny_reserved_7", 40, 0, false, 2, {{INLINE, 0x1001, 1}, {RESERVED, 0x1000, 7}}},
    {"repeat_pointers", 40, 0, true, 2, {{INLINE, 0x1001, 1}, {RESERVED, 0x1000, 10000}}},
    {"hab48", 48, 0, false, 3,
     {{RESERVED, 0x1000, 10000}, {INLINE, 0x1001, 0x123456789aull}, {RESERVED, 0x1002, 99}}},
    {"hab40_bug_compat", 40, SPC_BUG_COMPAT_PYSPEAD_0_5_2, false, 2,
     {{DESCRIPTOR, 0x1000, 0}, {RESERVED, 0x1000, 7000}}},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

static const size_t MPS[] = {1472, 8972, 8999, 64, 200};
#define N_MPS (sizeof MPS / sizeof MPS[0])

/* The value bytes of an item: a pattern that differs per item and per seed. */
static void pattern(uint8_t *dst, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++)
        dst[i] = (uint8_t)(tu_rand(&s) >> 32);
}

/* Both heaps of a case, and what the reserved one holds where. */
struct pair {
    struct spc_heap *res;  /* reserved items held by the heap */
    struct spc_heap *twin; /* the same values in borrowed memory */
    uint8_t *values[MAX_ITEMS];
    uint64_t offset[MAX_ITEMS]; /* payload offset of each addressed item */
};

static void add_descriptor(struct spc_heap *h, uint64_t id)
{
    static const int64_t shape[] = {3, 4};
    static const struct spc_format_field fmt[] = {{'u', 16}};
    const struct spc_descriptor d = {.id = id, .name = "item", .description = "a test item",
                                     .shape = shape, .n_dims = 2, .format = fmt, .n_format = 1};
    cr_assert_eq(spc_heap_add_descriptor(h, &d), 0);
}

/* Adds item spec to h, as a reserved item when reserve (else borrowed from value). */
static int add_spec(struct spc_heap *h, const struct item_spec *it, const uint8_t *value,
                    bool reserve, size_t mps)
{
    switch (it->kind) {
    case RESERVED:
        if (reserve)
            return spc_heap_reserve_item(h, it->id, it->len, mps);
        return spc_heap_add_item(h, it->id, value, it->len, false);
    case BORROWED:
        return spc_heap_add_item(h, it->id, value, it->len, false);
    case IMMEDIATE:
        return spc_heap_add_item(h, it->id, value, it->len, true);
    case INLINE:
        return spc_heap_add_inline(h, it->id, it->len);
    case DESCRIPTOR:
        add_descriptor(h, it->id);
        return 0;
    }
    return -EINVAL;
}

/* Builds both heaps of c (the reserved one laid out for mps once complete) and writes
 * the reserved items' values through spc_heap_payload_write. A reservation fails exactly
 * when the twin, with that item, cannot be sent at mps: that error is returned. */
static int pair_build(struct pair *p, const struct heap_case *c, size_t mps, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, c->hab, c->bug_compat), 0);
    cr_assert_eq(spc_heap_create(&p->res, &f), 0);
    cr_assert_eq(spc_heap_create(&p->twin, &f), 0);
    spc_heap_set_repeat_pointers(p->res, c->repeat);
    spc_heap_set_repeat_pointers(p->twin, c->repeat);
    for (size_t i = 0; i < c->n; i++) {
        const struct item_spec *it = &c->items[i];
        size_t bytes = it->kind == INLINE || it->kind == DESCRIPTOR ? 0 : it->len;
        p->values[i] = malloc(bytes + 1);
        cr_assert(p->values[i]);
        pattern(p->values[i], bytes, seed * 31 + i);
        p->offset[i] = spc_heap_payload_size(p->res);
        cr_assert_eq(spc_heap_payload_size(p->twin), p->offset[i]);
        cr_assert_eq(add_spec(p->twin, it, p->values[i], false, mps), 0);
        int rc = add_spec(p->res, it, p->values[i], true, mps);
        if (it->kind == RESERVED) {
            int want = spc_heap_validate(p->twin, 0, mps);
            cr_assert_eq(rc, want, "%s item %zu at %zu: %s, the twin: %s", c->name, i, mps,
                         spc_strerror(rc), spc_strerror(want));
        }
        if (rc < 0) {
            cr_assert_eq(spc_heap_n_items(p->res), spc_heap_n_items(p->twin) - 1);
            return rc;
        }
    }
    cr_assert_eq(spc_heap_lay_out(p->res, mps), 0);
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].kind == RESERVED)
            cr_assert_eq(spc_heap_payload_write(p->res, p->offset[i], p->values[i], c->items[i].len), 0);
    cr_assert_eq(spc_heap_n_items(p->res), spc_heap_n_items(p->twin));
    cr_assert_eq(spc_heap_payload_size(p->res), spc_heap_payload_size(p->twin));
    return 0;
}

static void pair_free(struct pair *p)
{
    spc_heap_destroy(p->res);
    spc_heap_destroy(p->twin);
    for (size_t i = 0; i < MAX_ITEMS; i++)
        free(p->values[i]);
}

/* ------------------------------------------------------------- the packetizer */

/* A heap's packets, written out one after the other. */
struct wire {
    uint8_t *bytes;
    size_t len;
    size_t n_packets;
    size_t n_one_piece; /* packets handed out as one piece outside the scratch */
    size_t *pkt_size;
};

static void wire_get(struct wire *w, const struct spc_heap *h, uint64_t cnt, size_t mps, bool in_place)
{
    struct spc_packetizer pz;
    int rc = spc_packetizer_init(&pz, h, cnt, mps);
    cr_assert_eq(rc, 0, "%s", spc_strerror(rc));
    pz.in_place = in_place;
    size_t n = spc_packetizer_count(&pz);
    int64_t total = spc_heap_wire_size(h, cnt, mps);
    cr_assert_gt(total, 0);
    memset(w, 0, sizeof *w);
    w->bytes = malloc((size_t)total);
    w->pkt_size = calloc(n + 1, sizeof *w->pkt_size);
    uint8_t *scratch = malloc(spc_packet_scratch_size(mps));
    cr_assert(w->bytes && w->pkt_size && scratch);
    struct spc_packet pkt;
    while (spc_packetizer_next(&pz, scratch, &pkt) == 1) {
        cr_assert_lt(w->n_packets, n);
        int64_t got = spc_packet_write(&pkt, w->bytes + w->len, (size_t)total - w->len);
        cr_assert_eq(got, (int64_t)pkt.size);
        cr_assert_leq(pkt.size, mps);
        if (pkt.iov[0].iov_base != scratch) {
            /* Only the in-place path hands out a packet that is not headed by scratch. */
            cr_assert(in_place);
            cr_assert_eq(pkt.n_iov, 1);
            w->n_one_piece++;
        }
        w->pkt_size[w->n_packets++] = pkt.size;
        w->len += pkt.size;
    }
    cr_assert_eq(w->n_packets, n);
    cr_assert_eq(w->len, (size_t)total);
    free(scratch);
}

static void wire_free(struct wire *w)
{
    free(w->bytes);
    free(w->pkt_size);
}

static void assert_same_wire(const struct wire *a, const struct wire *b, const char *what)
{
    cr_assert_eq(a->n_packets, b->n_packets, "%s: packet count", what);
    cr_assert_eq(a->len, b->len, "%s: byte count", what);
    for (size_t i = 0; i < a->len; i++)
        cr_assert_eq(a->bytes[i], b->bytes[i], "%s: byte %zu differs", what, i);
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* How many packets of w should go out in place, read from the packets themselves: those
 * whose payload [offset, offset + length) is non-empty and wholly reserved bytes (runs of
 * adjacent reserved items; padding is not reserved). */
static size_t expected_in_place(const struct wire *w, const struct heap_case *c,
                                const struct pair *p)
{
    const uint64_t mask = (UINT64_C(1) << c->hab) - 1;
    size_t n = 0, at = 0;
    for (size_t k = 0; k < w->n_packets; at += w->pkt_size[k++]) {
        const uint8_t *pkt = w->bytes + at;
        uint64_t off = be64(pkt + 24) & mask, len = be64(pkt + 32) & mask;
        if (len == 0)
            continue;
        uint64_t reach = off; /* reserved bytes cover [off, reach) */
        for (size_t i = 0; i < c->n && reach < off + len; i++) {
            const struct item_spec *it = &c->items[i];
            if (it->kind == RESERVED && p->offset[i] <= reach && p->offset[i] + it->len > reach)
                reach = p->offset[i] + it->len;
        }
        n += reach >= off + len;
    }
    return n;
}

struct layout_param {
    size_t case_idx;
    size_t mps;
};

static void free_params(struct criterion_test_params *crp)
{
    cr_free(crp->params);
}

ParameterizedTestParameters(heap_layout, packetizer_matches_twin)
{
    struct layout_param *ps = cr_malloc(N_CASES * N_MPS * sizeof *ps);
    for (size_t c = 0; c < N_CASES; c++)
        for (size_t m = 0; m < N_MPS; m++)
            ps[c * N_MPS + m] = (struct layout_param){c, MPS[m]};
    return cr_make_param_array(struct layout_param, ps, N_CASES * N_MPS, free_params);
}

/* Each case at each packet size: the reserved heap's bytes, gathered and in place, equal
 * the twin's; exactly the wholly reserved packets go out in place. */
ParameterizedTest(struct layout_param *prm, heap_layout, packetizer_matches_twin)
{
    const struct heap_case *c = &CASES[prm->case_idx];
    struct pair p;
    if (pair_build(&p, c, prm->mps, prm->case_idx + 1) < 0) {
        /* Refused like the twin (checked in pair_build), e.g. repeated pointers at 64. */
        pair_free(&p);
        return;
    }
    const uint64_t cnt = 7;
    struct wire twin, gathered, in_place, twin_in_place;
    wire_get(&twin, p.twin, cnt, prm->mps, false);
    wire_get(&twin_in_place, p.twin, cnt, prm->mps, true);
    wire_get(&gathered, p.res, cnt, prm->mps, false);
    wire_get(&in_place, p.res, cnt, prm->mps, true);
    char what[128];
    snprintf(what, sizeof what, "%s mps %zu gathered", c->name, prm->mps);
    assert_same_wire(&twin, &gathered, what);
    snprintf(what, sizeof what, "%s mps %zu in place", c->name, prm->mps);
    assert_same_wire(&twin, &in_place, what);
    assert_same_wire(&twin, &twin_in_place, "twin with in_place set");
    cr_assert_eq(twin_in_place.n_one_piece, 0, "a heap without reserved items has no layout");
    cr_assert_eq(gathered.n_one_piece, 0);

    size_t expect = expected_in_place(&twin, c, &p);
    cr_assert_eq(in_place.n_one_piece, expect, "%s mps %zu: %zu packets in place, %zu wholly reserved",
                 c->name, prm->mps, in_place.n_one_piece, expect);
    cr_assert_eq(spc_heap_packets_in_place(p.res, prm->mps), expect, "%s mps %zu", c->name, prm->mps);
    cr_assert_eq(spc_heap_packets_in_place(p.twin, prm->mps), 0);
    if (prm->case_idx == 0 && prm->mps == 1472)
        cr_assert_eq(in_place.n_one_piece, in_place.n_packets, "one reserved item: every packet in place");
    /* A second walk in place (headers rewritten into the same rooms) changes nothing. */
    struct wire again;
    wire_get(&again, p.res, cnt + 1, prm->mps, true);
    wire_free(&twin);
    wire_get(&twin, p.twin, cnt + 1, prm->mps, false);
    assert_same_wire(&twin, &again, "second in-place walk, another cnt");
    wire_free(&again);
    wire_free(&twin);
    wire_free(&twin_in_place);
    wire_free(&gathered);
    wire_free(&in_place);
    pair_free(&p);
}

/* Packetizes the reserved heap gathered and in place and the twin at mps: all equal.
 * Returns the packets that went out in place. */
static size_t check_pair_at(const struct pair *p, uint64_t cnt, size_t mps, const char *what)
{
    struct wire twin, gathered, in_place;
    wire_get(&twin, p->twin, cnt, mps, false);
    wire_get(&gathered, p->res, cnt, mps, false);
    wire_get(&in_place, p->res, cnt, mps, true);
    assert_same_wire(&twin, &gathered, what);
    assert_same_wire(&twin, &in_place, what);
    size_t n = in_place.n_one_piece;
    cr_assert_eq(n, spc_heap_packets_in_place(p->res, mps), "%s", what);
    wire_free(&twin);
    wire_free(&gathered);
    wire_free(&in_place);
    return n;
}

/* ------------------------------------------------------------- stale layouts */

Test(heap_layout, item_added_after_layout)
{
    struct pair p;
    cr_assert_eq(pair_build(&p, &CASES[0], 1472, 11), 0);
    struct wire w;
    wire_get(&w, p.twin, 3, 1472, false);
    size_t all = w.n_packets;
    wire_free(&w);
    cr_assert_eq(check_pair_at(&p, 3, 1472, "fresh"), all);
    /* An inline item adds a pointer to the first packet: every cut moves. */
    cr_assert_eq(spc_heap_add_inline(p.res, 0x1009, 42), 0);
    cr_assert_eq(spc_heap_add_inline(p.twin, 0x1009, 42), 0);
    cr_assert_eq(check_pair_at(&p, 3, 1472, "stale after an inline item"), 0);
    cr_assert_eq(spc_heap_lay_out(p.res, 1472), 0);
    wire_get(&w, p.twin, 3, 1472, false);
    cr_assert_eq(check_pair_at(&p, 3, 1472, "laid out again"), w.n_packets);
    wire_free(&w);
    uint8_t back[20000];
    cr_assert_eq(spc_heap_payload_read(p.res, 0, back, sizeof back), 0);
    cr_assert_eq(memcmp(back, p.values[0], sizeof back), 0, "laying out keeps the written bytes");
    /* A borrowed item after the reserved one, not laid out again: still the same bytes. */
    uint8_t extra[3000];
    pattern(extra, sizeof extra, 99);
    cr_assert_eq(spc_heap_add_item(p.res, 0x100a, extra, sizeof extra, false), 0);
    cr_assert_eq(spc_heap_add_item(p.twin, 0x100a, extra, sizeof extra, false), 0);
    check_pair_at(&p, 3, 1472, "stale after a borrowed item");
    check_pair_at(&p, 3, 200, "stale, another size");
    pair_free(&p);
}

Test(heap_layout, layout_for_another_packet_size)
{
    for (size_t c = 0; c < N_CASES; c++) {
        struct pair p;
        cr_assert_eq(pair_build(&p, &CASES[c], 1472, 20 + c), 0);
        char what[128];
        snprintf(what, sizeof what, "%s laid out for 1472, sent at 8972", CASES[c].name);
        check_pair_at(&p, 5, 8972, what);
        snprintf(what, sizeof what, "%s laid out for 1472, sent at 8999", CASES[c].name);
        check_pair_at(&p, 5, 8999, what);
        /* Laid out for 8972: every wholly reserved packet is in place there. */
        cr_assert_eq(spc_heap_lay_out(p.res, 8972), 0);
        struct wire w;
        wire_get(&w, p.twin, 5, 8972, false);
        size_t expect = expected_in_place(&w, &CASES[c], &p);
        wire_free(&w);
        cr_assert_eq(check_pair_at(&p, 5, 8972, CASES[c].name), expect, "%s", CASES[c].name);
        snprintf(what, sizeof what, "%s laid out for 8972, sent at 1472", CASES[c].name);
        check_pair_at(&p, 5, 1472, what);
        pair_free(&p);
    }
}

/* ------------------------------------------------------------- the bytes API */

/* A borrowed item of 100 bytes at 0, then reserved items A [100, 5100) and B [5100, 8100). */
struct bytes_fix {
    struct spc_heap *h;
    uint8_t borrowed[100];
};

static void bytes_fix_init(struct bytes_fix *f, size_t mps)
{
    cr_assert_eq(spc_heap_create(&f->h, NULL), 0);
    pattern(f->borrowed, sizeof f->borrowed, 5);
    cr_assert_eq(spc_heap_add_item(f->h, 0x1003, f->borrowed, sizeof f->borrowed, false), 0);
    cr_assert_eq(spc_heap_reserve_item(f->h, 0x1000, 5000, mps), 0);
    cr_assert_eq(spc_heap_reserve_item(f->h, 0x1001, 3000, mps), 0);
    cr_assert_eq(spc_heap_payload_size(f->h), 8100);
}

Test(heap_layout, write_read_across_pieces_and_items)
{
    struct bytes_fix f;
    bytes_fix_init(&f, 1472);
    uint8_t zero[8000] = {0}, got[8000], val[8000], patch[700];
    cr_assert_eq(spc_heap_payload_read(f.h, 100, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, zero, sizeof got), 0, "reserved bytes are zero until written");
    pattern(val, sizeof val, 6);
    cr_assert_eq(spc_heap_payload_write(f.h, 100, val, sizeof val), 0);
    cr_assert_eq(spc_heap_payload_read(f.h, 100, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, val, sizeof got), 0);
    /* A range across A's end and B's start, and one read back across them. */
    pattern(patch, sizeof patch, 7);
    cr_assert_eq(spc_heap_payload_write(f.h, 4800, patch, sizeof patch), 0);
    memcpy(val + 4700, patch, sizeof patch);
    cr_assert_eq(spc_heap_payload_read(f.h, 5000, got, 300), 0);
    cr_assert_eq(memcmp(got, val + 4900, 300), 0);
    cr_assert_eq(spc_heap_payload_read(f.h, 100, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, val, sizeof got), 0);
    /* The wire carries exactly these values. */
    struct spc_heap *twin;
    cr_assert_eq(spc_heap_create(&twin, NULL), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1003, f.borrowed, sizeof f.borrowed, false), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1000, val, 5000, false), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1001, val + 5000, 3000, false), 0);
    struct pair p = {.res = f.h, .twin = twin};
    check_pair_at(&p, 1, 1472, "written across pieces");
    spc_heap_destroy(twin);
    spc_heap_destroy(f.h);
}

Test(heap_layout, write_read_range_errors)
{
    struct bytes_fix f;
    bytes_fix_init(&f, 1472);
    uint8_t val[8000], got[8000], junk[200];
    pattern(val, sizeof val, 8);
    memset(junk, 0xa5, sizeof junk);
    cr_assert_eq(spc_heap_payload_write(f.h, 100, val, sizeof val), 0);
    /* Touching the borrowed item, or past the end: -ERANGE, nothing written. */
    cr_assert_eq(spc_heap_payload_write(f.h, 50, junk, 100), -ERANGE);
    cr_assert_eq(spc_heap_payload_write(f.h, 99, junk, 2), -ERANGE);
    cr_assert_eq(spc_heap_payload_write(f.h, 8000, junk, 101), -ERANGE);
    cr_assert_eq(spc_heap_payload_write(f.h, 8100, junk, 1), -ERANGE);
    cr_assert_eq(spc_heap_payload_write(f.h, UINT64_MAX - 4, junk, 10), -ERANGE);
    cr_assert_eq(spc_heap_payload_read(f.h, 0, got, 101), -ERANGE);
    cr_assert_eq(spc_heap_payload_read(f.h, 8099, got, 2), -ERANGE);
    cr_assert_eq(spc_heap_payload_read(f.h, UINT64_MAX - 4, got, 10), -ERANGE);
    cr_assert_eq(spc_heap_payload_read(f.h, 100, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, val, sizeof got), 0, "a refused write wrote nothing");
    /* NULL buffers. */
    cr_assert_eq(spc_heap_payload_write(f.h, 100, NULL, 1), -EINVAL);
    cr_assert_eq(spc_heap_payload_read(f.h, 100, NULL, 1), -EINVAL);
    cr_assert_eq(spc_heap_payload_write(f.h, 100, NULL, 0), 0);
    /* A heap without reserved items has no reserved byte. */
    struct spc_heap *plain;
    cr_assert_eq(spc_heap_create(&plain, NULL), 0);
    cr_assert_eq(spc_heap_add_item(plain, 0x1000, val, 100, false), 0);
    cr_assert_eq(spc_heap_payload_write(plain, 0, junk, 1), -ERANGE);
    cr_assert_eq(spc_heap_payload_read(plain, 0, got, 1), -ERANGE);
    size_t len = 99;
    cr_assert_null(spc_heap_payload_span(plain, 0, &len));
    cr_assert_eq(len, 0);
    cr_assert_eq(spc_heap_lay_out(plain, 1472), 0, "no reserved items: a no-op");
    cr_assert_eq(spc_heap_packets_in_place(plain, 1472), 0);
    spc_heap_destroy(plain);
    spc_heap_destroy(f.h);
}

/* Filling the value through spans: they cover exactly the reserved bytes, each ends at
 * the end of a packet or of an item, and the wire then carries the values. */
static void span_walk(size_t mps)
{
    struct bytes_fix f;
    bytes_fix_init(&f, mps);
    uint8_t val[8000];
    pattern(val, sizeof val, 9);
    struct spc_heap *twin;
    cr_assert_eq(spc_heap_create(&twin, NULL), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1003, f.borrowed, sizeof f.borrowed, false), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1000, val, 5000, false), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1001, val + 5000, 3000, false), 0);
    /* Packet ends, from the twin's packets. */
    struct wire w;
    wire_get(&w, twin, 1, mps, false);
    const uint64_t mask = spc_flavour_max_value(spc_heap_flavour(twin));
    uint64_t ends[4096];
    size_t n_ends = 0;
    for (size_t k = 0, at = 0; k < w.n_packets; at += w.pkt_size[k++]) {
        cr_assert_lt(n_ends, 4096);
        ends[n_ends++] = (be64(w.bytes + at + 24) & mask) + (be64(w.bytes + at + 32) & mask);
    }
    wire_free(&w);
    size_t len = 1;
    cr_assert_null(spc_heap_payload_span(f.h, 99, &len), "the borrowed item is not reserved");
    cr_assert_eq(len, 0);
    uint64_t off = 100;
    size_t n_spans = 0;
    while (off < 8100) {
        uint8_t *d = spc_heap_payload_span(f.h, off, &len);
        cr_assert_not_null(d, "offset %" PRIu64, off);
        cr_assert_gt(len, 0);
        cr_assert_leq(off + len, 8100);
        memcpy(d, val + (off - 100), len);
        off += len;
        bool at_end = off == 5100 || off == 8100;
        for (size_t k = 0; k < n_ends && !at_end; k++)
            at_end = ends[k] == off;
        cr_assert(at_end, "mps %zu: span ends at %" PRIu64 ", neither a packet nor an item end", mps, off);
        n_spans++;
        cr_assert_lt(n_spans, 10000);
    }
    cr_assert_eq(off, 8100, "the spans cover exactly the reserved bytes");
    cr_assert_null(spc_heap_payload_span(f.h, 8100, &len));
    cr_assert_eq(len, 0);
    cr_assert_geq(n_spans, 2, "two items: at least two spans");
    struct pair p = {.res = f.h, .twin = twin};
    check_pair_at(&p, 4, mps, "filled through spans");
    spc_heap_destroy(twin);
    spc_heap_destroy(f.h);
}

Test(heap_layout, span_walk)
{
    span_walk(1472);
    span_walk(200);
    span_walk(8999);
}

Test(heap_layout, clear_then_reuse)
{
    struct bytes_fix f;
    bytes_fix_init(&f, 1472);
    uint8_t val[8000];
    pattern(val, sizeof val, 10);
    cr_assert_eq(spc_heap_payload_write(f.h, 100, val, sizeof val), 0);
    spc_heap_clear(f.h);
    cr_assert_eq(spc_heap_n_items(f.h), 0);
    cr_assert_eq(spc_heap_payload_size(f.h), 0);
    size_t len = 1;
    cr_assert_null(spc_heap_payload_span(f.h, 100, &len));
    cr_assert_eq(spc_heap_payload_write(f.h, 100, val, 1), -ERANGE);
    cr_assert_eq(spc_heap_packets_in_place(f.h, 1472), 0);
    /* Reused: a reserved item at offset 0 again, fresh zeros, then written. */
    cr_assert_eq(spc_heap_reserve_item(f.h, 0x1000, 6000, 1472), 0);
    uint8_t got[6000], zero[6000] = {0};
    cr_assert_eq(spc_heap_payload_read(f.h, 0, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, zero, sizeof got), 0);
    cr_assert_eq(spc_heap_payload_write(f.h, 0, val, 6000), 0);
    struct spc_heap *twin;
    cr_assert_eq(spc_heap_create(&twin, NULL), 0);
    cr_assert_eq(spc_heap_add_item(twin, 0x1000, val, 6000, false), 0);
    struct pair p = {.res = f.h, .twin = twin};
    struct wire w;
    wire_get(&w, twin, 2, 1472, false);
    cr_assert_eq(check_pair_at(&p, 2, 1472, "after clear"), w.n_packets);
    wire_free(&w);
    spc_heap_destroy(twin);
    spc_heap_destroy(f.h);
}

Test(heap_layout, reserving_again_keeps_written_bytes)
{
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    cr_assert_eq(spc_heap_reserve_item(h, 0x1000, 5000, 1472), 0);
    uint8_t a[5000], got[5000], zero[4000] = {0};
    pattern(a, sizeof a, 12);
    cr_assert_eq(spc_heap_payload_write(h, 0, a, sizeof a), 0);
    /* The second item moves the first's packet cuts (its pointer joins the first
     * packet): the first item's bytes go along. Also after a span-only write. */
    cr_assert_eq(spc_heap_reserve_item(h, 0x1001, 4000, 1472), 0);
    cr_assert_eq(spc_heap_payload_read(h, 0, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, a, sizeof a), 0);
    cr_assert_eq(spc_heap_payload_read(h, 5000, got, 4000), 0);
    cr_assert_eq(memcmp(got, zero, 4000), 0);
    size_t len;
    uint8_t *d = spc_heap_payload_span(h, 5000, &len);
    cr_assert_not_null(d);
    d[0] = 0x5a;
    cr_assert_eq(spc_heap_reserve_item(h, 0x1002, 10, 200), 0);
    cr_assert_eq(spc_heap_payload_read(h, 0, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, a, sizeof a), 0, "kept across a layout for another size");
    cr_assert_eq(spc_heap_payload_read(h, 5000, got, 1), 0);
    cr_assert_eq(got[0], 0x5a, "a byte written through a span is kept");
    spc_heap_destroy(h);
}

/* ------------------------------------------------------------- errors */

/* The heap as it was: items, payload size, written bytes and wire bytes. */
static void assert_unchanged(const struct pair *p, const uint8_t *val, size_t n_items)
{
    cr_assert_eq(spc_heap_n_items(p->res), n_items);
    cr_assert_eq(spc_heap_payload_size(p->res), 1100);
    uint8_t got[1000];
    cr_assert_eq(spc_heap_payload_read(p->res, 100, got, sizeof got), 0);
    cr_assert_eq(memcmp(got, val, sizeof got), 0);
    cr_assert_eq(check_pair_at(p, 1, 1472, "after a refused call"), 0);
    check_pair_at(p, 1, 200, "after a refused call, 200");
}

Test(heap_layout, reserve_errors_leave_heap_unchanged)
{
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, 16, 0), 0); /* payload up to 65535 bytes */
    struct pair p = {0};
    cr_assert_eq(spc_heap_create(&p.res, &f), 0);
    cr_assert_eq(spc_heap_create(&p.twin, &f), 0);
    uint8_t b[100], val[1000];
    pattern(b, sizeof b, 13);
    pattern(val, sizeof val, 14);
    cr_assert_eq(spc_heap_add_item(p.res, 0x10, b, sizeof b, false), 0);
    cr_assert_eq(spc_heap_reserve_item(p.res, 0x11, sizeof val, 1472), 0);
    cr_assert_eq(spc_heap_payload_write(p.res, 100, val, sizeof val), 0);
    cr_assert_eq(spc_heap_add_item(p.twin, 0x10, b, sizeof b, false), 0);
    cr_assert_eq(spc_heap_add_item(p.twin, 0x11, val, sizeof val, false), 0);
    const size_t n = spc_heap_n_items(p.res);

    cr_assert_eq(spc_heap_reserve_item(p.res, 0, 10, 1472), -SPC_EITEM_ID);
    assert_unchanged(&p, val, n);
    cr_assert_eq(spc_heap_reserve_item(p.res, spc_flavour_max_id(&f) + 1, 10, 1472), -SPC_EITEM_ID);
    assert_unchanged(&p, val, n);
    cr_assert_eq(spc_heap_reserve_item(p.res, 0x12, 10, SPC_MIN_PACKET_SIZE - 1), -SPC_EPACKET_SIZE);
    assert_unchanged(&p, val, n);
    cr_assert_eq(spc_heap_reserve_item(p.res, 0x12, 10, 0), -SPC_EPACKET_SIZE);
    assert_unchanged(&p, val, n);
    cr_assert_eq(spc_heap_reserve_item(p.res, 0x12, 70000, 1472), -SPC_EHEAP_TOO_LARGE);
    assert_unchanged(&p, val, n);
    /* A refused layout keeps the old one. */
    cr_assert_eq(spc_heap_lay_out(p.res, 1472), 0);
    size_t before = spc_heap_packets_in_place(p.res, 1472);
    cr_assert_eq(spc_heap_lay_out(p.res, 8), -SPC_EPACKET_SIZE);
    cr_assert_eq(spc_heap_packets_in_place(p.res, 1472), before);
    assert_unchanged(&p, val, n);
    cr_assert_eq(spc_heap_packets_in_place(p.res, 8), 0, "a size the heap cannot be sent with");
    spc_heap_destroy(p.res);
    spc_heap_destroy(p.twin);
}

/* ------------------------------------------------------------- bytes stream */

static struct spc_stream *open_bytes(size_t mps)
{
    char json[160], err[256];
    snprintf(json, sizeof json,
             "{\"transport\": \"bytes\", \"stream\": {\"max_packet_size\": %zu, \"max_heaps\": 8}}", mps);
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return s;
}

/* Sends refs on s as one group and returns a copy of the bytes written (reset after). */
static uint8_t *send_group(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                           enum spc_group_mode mode, size_t *len)
{
    uint64_t bytes = 0;
    int rc = spc_stream_send_heaps_sync(s, refs, n, mode, &bytes);
    cr_assert_eq(rc, 0, "%s", spc_strerror(rc));
    const uint8_t *data;
    cr_assert_eq(spc_bytes_stream_data(s, &data, len), 0);
    cr_assert_eq(*len, bytes);
    uint8_t *copy = malloc(*len);
    cr_assert(copy);
    memcpy(copy, data, *len);
    cr_assert_eq(spc_bytes_stream_reset(s), 0);
    return copy;
}

static struct spc_stream_stats stats_of(struct spc_stream *s)
{
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(s, &st);
    return st;
}

static void refs_of(struct spc_heap_ref *refs, size_t n, const struct spc_heap *h, uint64_t cnt0)
{
    for (size_t i = 0; i < n; i++) {
        refs[i] = SPC_HEAP_REF(h);
        refs[i].cnt = cnt0 + i;
    }
}

static void assert_same_bytes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, const char *what)
{
    cr_assert_eq(na, nb, "%s: %zu bytes against %zu", what, na, nb);
    for (size_t i = 0; i < na; i++)
        cr_assert_eq(a[i], b[i], "%s: byte %zu differs", what, i);
}

struct stream_param {
    size_t case_idx;
    size_t mps;
};

ParameterizedTestParameters(heap_layout, bytes_stream_matches_twin)
{
    static struct stream_param ps[] = {{0, 1472}, {2, 1472}, {3, 8972}, {8, 1472}, {1, 200}, {4, 8999}};
    return cr_make_param_array(struct stream_param, ps, sizeof ps / sizeof ps[0]);
}

/* One send, then the same heap several times in one group (sends overlap: one holds the
 * layout, the others gather), serially and round-robin: bytes equal the twin's. */
ParameterizedTest(struct stream_param *prm, heap_layout, bytes_stream_matches_twin)
{
    const struct heap_case *c = &CASES[prm->case_idx];
    struct pair p;
    cr_assert_eq(pair_build(&p, c, prm->mps, 40 + prm->case_idx), 0);
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, c->hab, c->bug_compat), 0);
    struct spc_stream *rs = open_bytes(prm->mps), *ts = open_bytes(prm->mps);
    struct wire w;
    wire_get(&w, p.twin, 1, prm->mps, false);
    const size_t per_heap = w.n_packets;
    const size_t in_place = expected_in_place(&w, c, &p);
    wire_free(&w);
    cr_assert_gt(in_place, 0, "%s: the case has packets to send in place", c->name);

    struct spc_heap_ref rr[4], tr[4];
    refs_of(rr, 1, p.res, 9);
    refs_of(tr, 1, p.twin, 9);
    size_t nr, nt;
    uint8_t *r = send_group(rs, rr, 1, SPC_GROUP_SERIAL, &nr), *t = send_group(ts, tr, 1, SPC_GROUP_SERIAL, &nt);
    assert_same_bytes(r, nr, t, nt, "one send");
    free(r);
    free(t);
    struct spc_stream_stats st = stats_of(rs);
    cr_assert_eq(st.packets, per_heap);
    cr_assert_eq(st.packets_in_place, in_place, "%s: %" PRIu64 " of %" PRIu64 " in place", c->name,
                 st.packets_in_place, st.packets);
    cr_assert_eq(stats_of(ts).packets_in_place, 0);

    /* Sequential sends each get the layout back. */
    for (int k = 0; k < 3; k++) {
        refs_of(rr, 1, p.res, 20 + k);
        refs_of(tr, 1, p.twin, 20 + k);
        r = send_group(rs, rr, 1, SPC_GROUP_SERIAL, &nr);
        t = send_group(ts, tr, 1, SPC_GROUP_SERIAL, &nt);
        assert_same_bytes(r, nr, t, nt, "sequential sends");
        free(r);
        free(t);
    }
    st = stats_of(rs);
    cr_assert_eq(st.packets_in_place, 4 * in_place, "a finished send releases the layout");

    const enum spc_group_mode modes[] = {SPC_GROUP_ROUND_ROBIN, SPC_GROUP_SERIAL};
    for (size_t m = 0; m < 2; m++) {
        struct spc_stream_stats before = stats_of(rs);
        refs_of(rr, 4, p.res, 100 + 10 * m);
        refs_of(tr, 4, p.twin, 100 + 10 * m);
        r = send_group(rs, rr, 4, modes[m], &nr);
        t = send_group(ts, tr, 4, modes[m], &nt);
        assert_same_bytes(r, nr, t, nt, m == 0 ? "4 sends round robin" : "4 sends serial");
        free(r);
        free(t);
        st = stats_of(rs);
        uint64_t pk = st.packets - before.packets, ip = st.packets_in_place - before.packets_in_place;
        cr_assert_eq(pk, 4 * per_heap);
        cr_assert_leq(ip, 4 * in_place);
        if (m == 0) {
            /* Interleaved: the sends overlap, so not all of them can write in place. */
            cr_assert_lt(ip, pk, "%s: round robin, %" PRIu64 " of %" PRIu64 " in place", c->name, ip, pk);
            cr_assert_geq(ip, in_place, "one of the sends holds the layout");
        }
    }
    spc_stream_close(rs);
    spc_stream_close(ts);
    pair_free(&p);
}

/* A stream whose packet size is not the one the heap was laid out for gathers (a size
 * that rounds to the same multiple of 8 is the same layout). */
Test(heap_layout, bytes_stream_other_packet_size)
{
    struct pair p;
    cr_assert_eq(pair_build(&p, &CASES[0], 1472, 50), 0);
    struct spc_stream *rs = open_bytes(8972), *ts = open_bytes(8972);
    struct spc_heap_ref rr, tr;
    refs_of(&rr, 1, p.res, 3);
    refs_of(&tr, 1, p.twin, 3);
    size_t nr, nt;
    uint8_t *r = send_group(rs, &rr, 1, SPC_GROUP_SERIAL, &nr), *t = send_group(ts, &tr, 1, SPC_GROUP_SERIAL, &nt);
    assert_same_bytes(r, nr, t, nt, "laid out for 1472, sent at 8972");
    free(r);
    free(t);
    cr_assert_gt(stats_of(rs).packets, 0);
    cr_assert_eq(stats_of(rs).packets_in_place, 0);
    spc_stream_close(rs);
    spc_stream_close(ts);

    cr_assert_eq(spc_heap_lay_out(p.res, 8992), 0);
    rs = open_bytes(8999);
    ts = open_bytes(8999);
    r = send_group(rs, &rr, 1, SPC_GROUP_SERIAL, &nr);
    t = send_group(ts, &tr, 1, SPC_GROUP_SERIAL, &nt);
    assert_same_bytes(r, nr, t, nt, "laid out for 8992, sent at 8999");
    free(r);
    free(t);
    struct spc_stream_stats st = stats_of(rs);
    cr_assert_gt(st.packets, 1);
    cr_assert_eq(st.packets_in_place, st.packets);
    spc_stream_close(rs);
    spc_stream_close(ts);
    pair_free(&p);
}

static void ignore_done(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    int *failed = user;
    if (status != 0)
        __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
}

/* The same heap queued on two streams at once: their writer threads race for the layout
 * (one writes headers in place, the other gathers); both outputs equal the twin's. */
Test(heap_layout, two_streams_at_once)
{
    enum { ROUNDS = 6, PER = 8 };
    struct pair p;
    cr_assert_eq(pair_build(&p, &CASES[2], 1472, 51), 0);
    struct spc_stream *a = open_bytes(1472), *b = open_bytes(1472), *ts = open_bytes(1472);
    size_t len[2] = {0, 0};
    uint8_t *twin = NULL;
    size_t twin_len = 0;
    int failed = 0;
    for (int round = 0; round < ROUNDS; round++) {
        struct spc_heap_ref rr[PER], tr[PER];
        refs_of(rr, PER, p.res, 1000 + PER * round);
        refs_of(tr, PER, p.twin, 1000 + PER * round);
        const enum spc_group_mode mode = round % 2 ? SPC_GROUP_SERIAL : SPC_GROUP_ROUND_ROBIN;
        cr_assert_eq(spc_stream_send_heaps(a, rr, PER, mode, ignore_done, &failed), 0);
        cr_assert_eq(spc_stream_send_heaps(b, rr, PER, mode, ignore_done, &failed), 0);
        cr_assert_eq(spc_stream_flush(a), 0);
        cr_assert_eq(spc_stream_flush(b), 0);
        cr_assert_eq(__atomic_load_n(&failed, __ATOMIC_RELAXED), 0);
        size_t n;
        uint8_t *t = send_group(ts, tr, PER, mode, &n);
        twin = realloc(twin, twin_len + n);
        cr_assert(twin);
        memcpy(twin + twin_len, t, n);
        twin_len += n;
        free(t);
    }
    struct spc_stream *s[2] = {a, b};
    uint64_t in_place = 0, packets = 0;
    for (int k = 0; k < 2; k++) {
        const uint8_t *d;
        cr_assert_eq(spc_bytes_stream_data(s[k], &d, &len[k]), 0);
        assert_same_bytes(d, len[k], twin, twin_len, k ? "stream b" : "stream a");
        struct spc_stream_stats st = stats_of(s[k]);
        in_place += st.packets_in_place;
        packets += st.packets;
        spc_stream_close(s[k]);
    }
    cr_assert_gt(in_place, 0);
    cr_assert_lt(in_place, packets);
    free(twin);
    spc_stream_close(ts);
    pair_free(&p);
}

/* ------------------------------------------------------------- udp loopback */

#define UDP_HEAPS 3
#define UDP_ITEM 0x1000

static void udp_roundtrip(bool gso)
{
    unsigned port;
    int rx = tu_udp_loopback(&port, 4 << 20);
    cr_assert_geq(rx, 0, "%s", strerror(-rx));
    char json[320], err[512];
    snprintf(json, sizeof json,
             "{\"transport\": \"udp\", \"stream\": {\"max_packet_size\": 1472, \"max_heaps\": 8}, "
             "\"options\": {\"endpoints\": [\"127.0.0.1:%u\"], \"gso\": %s}}",
             port, gso ? "true" : "false");
    struct spc_stream *s;
    int rc = spc_stream_open_json(&s, json, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    struct spc_heap *h[UDP_HEAPS];
    uint8_t *val[UDP_HEAPS];
    size_t len[UDP_HEAPS], packets = 0;
    struct spc_heap_ref refs[UDP_HEAPS];
    for (size_t i = 0; i < UDP_HEAPS; i++) {
        len[i] = 100 * 1024 + 13 * i; /* the last packets end unaligned */
        val[i] = malloc(len[i]);
        cr_assert(val[i]);
        pattern(val[i], len[i], 60 + i + (gso ? 10 : 0));
        cr_assert_eq(spc_heap_create(&h[i], NULL), 0);
        cr_assert_eq(spc_heap_add_inline(h[i], 0x1001, i), 0);
        cr_assert_eq(spc_heap_reserve_item(h[i], UDP_ITEM, len[i], 1472), 0);
        cr_assert_eq(spc_heap_payload_write(h[i], 0, val[i], len[i]), 0);
        refs[i] = SPC_HEAP_REF(h[i]);
        refs[i].cnt = 1000 + i;
        struct spc_packetizer pz;
        cr_assert_eq(spc_packetizer_init(&pz, h[i], refs[i].cnt, 1472), 0);
        packets += spc_packetizer_count(&pz);
    }
    rc = spc_stream_send_heaps_sync(s, refs, UDP_HEAPS, SPC_GROUP_SERIAL, NULL);
    cr_assert_eq(rc, 0, "%s", spc_strerror(rc));
    struct spc_stream_stats st = stats_of(s);
    cr_assert_eq(st.packets, packets);
    cr_assert_eq(st.packets_in_place, packets, "gso %d: every packet in place", gso);
    spc_stream_close(s);

    struct spc_decoder *dec;
    cr_assert_eq(spc_decoder_create(&dec, NULL), 0);
    static uint8_t buf[65536];
    size_t got = 0;
    struct pollfd pfd = {.fd = rx, .events = POLLIN};
    /* Bounded: at most the packets sent, each within 1 s of the one before. */
    while (got < packets && poll(&pfd, 1, 1000) == 1) {
        ssize_t r = recv(rx, buf, sizeof buf, 0);
        cr_assert_gt(r, 0);
        cr_assert_leq((size_t)r, 1472, "one SPEAD packet per datagram");
        cr_assert_eq(spc_decoder_add_packet(dec, buf, (size_t)r, NULL), 0);
        got++;
    }
    cr_assert_eq(got, packets, "gso %d: %zu of %zu datagrams", gso, got, packets);
    bool seen[UDP_HEAPS] = {false};
    struct spc_decoded_heap *dh;
    size_t n_heaps = 0;
    while (spc_decoder_pop(dec, &dh) == 1) {
        cr_assert(dh->complete);
        cr_assert_geq(dh->cnt, 1000);
        cr_assert_lt(dh->cnt, 1000 + UDP_HEAPS);
        size_t i = (size_t)(dh->cnt - 1000);
        cr_assert(!seen[i]);
        seen[i] = true;
        bool found = false;
        for (size_t k = 0; k < dh->n_items; k++) {
            const struct spc_decoded_item *it = &dh->items[k];
            if (it->id == UDP_ITEM) {
                found = true;
                cr_assert(!it->immediate);
                cr_assert_eq(it->len, len[i]);
                cr_assert_eq(memcmp(it->data, val[i], len[i]), 0, "heap %zu: item bytes", i);
            } else {
                cr_assert_eq(it->id, 0x1001);
                cr_assert_eq(it->value, i);
            }
        }
        cr_assert(found);
        n_heaps++;
        spc_decoded_heap_free(dh);
    }
    cr_assert_eq(n_heaps, UDP_HEAPS);
    spc_decoder_destroy(dec);
    for (size_t i = 0; i < UDP_HEAPS; i++) {
        spc_heap_destroy(h[i]);
        free(val[i]);
    }
    close(rx);
}

Test(heap_layout, udp_loopback_gso)
{
    udp_roundtrip(true);
}

Test(heap_layout, udp_loopback_no_gso)
{
    udp_roundtrip(false);
}
