/* Property test: random heaps (items of every kind and size, descriptors, start/end,
 * repeat_pointers) at random packet sizes in SPEAD-64-40 and 64-48 are packetized, two heaps'
 * packets are shuffled together, decoded, and every item must come back unchanged.
 * Deterministic: a fixed base seed; each iteration has its own seed, printed on failure.
 * SPC_ROUNDTRIP_SEED=<seed> reruns just that iteration. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "speadcast/speadcast.h"
#include "testutil.h"
#include "vectorcase.h"

#define BASE_SEED UINT64_C(0x5bd1e9955bd1e995)
#define ITERATIONS 1000
#define TIME_LIMIT_S 60.0 /* stop early (and say so) on a very slow machine */

/* Every assertion names the iteration's seed. */
static uint64_t g_seed;
static unsigned g_iter;
#define CHECK(cond, fmt, ...) cr_assert((cond), "[iteration %u, SPC_ROUNDTRIP_SEED=%#llx] " fmt, g_iter, \
                                        (unsigned long long)g_seed, ##__VA_ARGS__)

enum kind { K_INLINE, K_BUF, K_ADDRESSED, K_DESCRIPTOR, K_START, K_END };

struct exp_item {
    enum kind kind;
    uint64_t id;
    uint64_t value;  /* K_INLINE */
    uint8_t *data;   /* K_BUF, K_ADDRESSED */
    size_t len;
    bool immediate;  /* what the encoder must do */
    /* K_DESCRIPTOR */
    char name[24], description[48];
    int64_t shape[3];
    size_t n_dims;
    struct spc_format_field format[4];
    size_t n_format;
    const char *dtype;
    bool fortran_order;
};

struct exp_heap {
    uint64_t cnt;
    bool repeat;
    struct exp_item items[60];
    size_t n_items;
    struct spc_heap *heap;
    bool seen;
};

static uint64_t rnd(uint64_t *s, uint64_t n) /* uniform-ish in [0, n) */
{
    return n ? tu_rand(s) % n : 0;
}

static size_t random_size(uint64_t *s)
{
    uint64_t r = rnd(s, 100);
    if (r < 10)
        return 0;
    if (r < 40)
        return rnd(s, 9);
    if (r < 70)
        return 9 + rnd(s, 248);
    if (r < 95)
        return 257 + rnd(s, 3840);
    return 4097 + rnd(s, 61440);
}

static void random_text(uint64_t *s, char *out, size_t cap)
{
    size_t n = rnd(s, cap);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(' ' + rnd(s, 95));
    out[n] = '\0';
}

static void random_descriptor(uint64_t *s, struct exp_item *e, uint64_t max_id)
{
    static const char *const dtypes[] = {"<u2", ">f8", "|u1", "|b1", "<c16", "[('a', '<u2'), ('b', '>f4')]"};
    static const char types[] = "uifcb";
    e->kind = K_DESCRIPTOR;
    e->id = 1 + rnd(s, max_id);
    random_text(s, e->name, sizeof(e->name));
    random_text(s, e->description, sizeof(e->description));
    e->n_dims = rnd(s, 4);
    for (size_t d = 0; d < e->n_dims; d++)
        e->shape[d] = (int64_t)rnd(s, UINT64_C(1) << 32);
    if (rnd(s, 2)) {
        e->dtype = dtypes[rnd(s, sizeof(dtypes) / sizeof(dtypes[0]))];
        e->fortran_order = rnd(s, 2);
    } else {
        e->n_format = 1 + rnd(s, 4);
        for (size_t f = 0; f < e->n_format; f++)
            e->format[f] = (struct spc_format_field){types[rnd(s, 5)], (uint32_t)(1 + rnd(s, 64))};
        if (e->n_dims > 0 && rnd(s, 2))
            e->shape[rnd(s, e->n_dims)] = SPC_DIM_VARIABLE;
    }
}

static void to_descriptor(const struct exp_item *e, struct spc_descriptor *d)
{
    *d = (struct spc_descriptor){.id = e->id, .name = e->name, .description = e->description, .shape = e->shape,
                                 .n_dims = e->n_dims, .format = e->format, .n_format = e->n_format,
                                 .dtype = e->dtype, .fortran_order = e->fortran_order};
}

static void build_heap(uint64_t *s, const struct spc_flavour *f, struct exp_heap *h, uint64_t cnt)
{
    unsigned hab = f->heap_address_bits;
    uint64_t max_id = spc_flavour_max_id(f);
    memset(h, 0, sizeof(*h));
    h->cnt = cnt;
    CHECK(spc_heap_create(&h->heap, f) == 0, "heap create");
    h->n_items = rnd(s, 61);
    bool has_start = false, has_end = false;
    for (size_t i = 0; i < h->n_items; i++) {
        struct exp_item *e = &h->items[i];
        uint64_t r = rnd(s, 100);
        /* Distinct user IDs from 7 up (5 and 6 mean descriptor and stream control), and at
         * most one start and one end: a receiver drops repeated identical pointers, as
         * repeat_pointers sends them, so two equal items would decode as one. */
        bool unique;
        do {
            e->id = 7 + rnd(s, max_id - 6);
            unique = true;
            for (size_t j = 0; j < i; j++)
                unique &= h->items[j].id != e->id;
        } while (!unique);
        int rc;
        if (r < 3 && !has_start) {
            e->kind = K_START;
            has_start = true;
            rc = spc_heap_add_start(h->heap);
        } else if (r < 6 && !has_end) {
            e->kind = K_END;
            has_end = true;
            rc = spc_heap_add_end(h->heap);
        } else if (r < 20) {
            random_descriptor(s, e, max_id);
            struct spc_descriptor d;
            to_descriptor(e, &d);
            rc = spc_heap_add_descriptor(h->heap, &d);
        } else if (r < 40) {
            e->kind = K_INLINE;
            e->value = tu_rand(s) & spc_flavour_max_value(f);
            e->immediate = true;
            rc = spc_heap_add_inline(h->heap, e->id, e->value);
        } else {
            bool allow = r < 60;
            e->kind = allow ? K_BUF : K_ADDRESSED;
            e->len = allow ? rnd(s, hab / 8 + 3) : random_size(s);
            e->data = malloc(e->len ? e->len : 1);
            for (size_t b = 0; b < e->len; b++)
                e->data[b] = (uint8_t)tu_rand(s);
            e->immediate = allow && e->len <= hab / 8;
            rc = spc_heap_add_item(h->heap, e->id, e->data, e->len, allow);
        }
        CHECK(rc == 0, "adding item %zu (kind %d): %s", i, (int)e->kind, spc_strerror(rc));
    }
}

static void check_item(const struct exp_item *e, const struct spc_decoded_item *it, const struct spc_flavour *f,
                       size_t k)
{
    unsigned hab = f->heap_address_bits;
    switch (e->kind) {
    case K_START:
    case K_END:
        CHECK(it->id == SPC_ID_STREAM_CTRL && it->immediate, "item %zu: stream control", k);
        CHECK(it->value == (e->kind == K_START ? SPC_CTRL_START : SPC_CTRL_STOP), "item %zu: control value", k);
        return;
    case K_INLINE:
        CHECK(it->id == e->id && it->immediate, "item %zu: id %#llx imm %d", k, (unsigned long long)it->id,
              it->immediate);
        CHECK(it->value == e->value, "item %zu: value %#llx, want %#llx", k, (unsigned long long)it->value,
              (unsigned long long)e->value);
        return;
    case K_BUF:
    case K_ADDRESSED:
        CHECK(it->id == e->id, "item %zu: id %#llx, want %#llx", k, (unsigned long long)it->id,
              (unsigned long long)e->id);
        CHECK(it->immediate == e->immediate, "item %zu (len %zu): immediate %d", k, e->len, it->immediate);
        if (e->immediate) {
            CHECK(it->len == hab / 8, "item %zu: immediate of %zu bytes", k, it->len);
            size_t pad = it->len - e->len;
            for (size_t b = 0; b < pad; b++)
                CHECK(it->data[b] == 0, "item %zu: fill byte %zu", k, b);
            CHECK(e->len == 0 || memcmp(it->data + pad, e->data, e->len) == 0, "item %zu: immediate bytes", k);
        } else {
            CHECK(it->len == e->len, "item %zu: %zu bytes, want %zu", k, it->len, e->len);
            CHECK(e->len == 0 || memcmp(it->data, e->data, e->len) == 0, "item %zu: bytes differ", k);
        }
        return;
    case K_DESCRIPTOR: {
        CHECK(it->id == SPC_ID_DESCRIPTOR && !it->immediate, "item %zu: descriptor pointer", k);
        struct spc_descriptor_info *di = NULL;
        int rc = spc_descriptor_parse(it, f, &di);
        CHECK(rc == 0, "item %zu: descriptor parse: %s", k, spc_strerror(rc));
        CHECK(di->id == e->id, "item %zu: descriptor id", k);
        CHECK(strcmp(di->name, e->name) == 0, "item %zu: name '%s', want '%s'", k, di->name, e->name);
        CHECK(strcmp(di->description, e->description) == 0, "item %zu: description", k);
        CHECK(di->n_dims == e->n_dims, "item %zu: %zu dims, want %zu", k, di->n_dims, e->n_dims);
        for (size_t d = 0; d < e->n_dims; d++)
            CHECK(di->shape[d] == e->shape[d], "item %zu: shape[%zu]", k, d);
        CHECK(di->n_format == e->n_format, "item %zu: format fields", k);
        for (size_t x = 0; x < e->n_format; x++)
            CHECK(di->format[x].type == e->format[x].type && di->format[x].bits == e->format[x].bits,
                  "item %zu: format[%zu] %c%u, want %c%u", k, x, di->format[x].type, di->format[x].bits,
                  e->format[x].type, e->format[x].bits);
        if (e->dtype) {
            CHECK(di->dtype && strcmp(di->dtype, e->dtype) == 0, "item %zu: dtype '%s', want '%s'", k,
                  di->dtype ? di->dtype : "(null)", e->dtype);
            CHECK(di->fortran_order == e->fortran_order, "item %zu: fortran order", k);
            CHECK(di->dtype_n_dims == e->n_dims, "item %zu: dtype shape", k);
            for (size_t d = 0; d < e->n_dims; d++)
                CHECK(di->dtype_shape[d] == e->shape[d], "item %zu: dtype shape[%zu]", k, d);
        } else {
            CHECK(di->dtype == NULL && di->dtype_header == NULL, "item %zu: unexpected dtype", k);
        }
        spc_descriptor_info_free(di);
        return;
    }
    }
}

static void check_heap(const struct exp_heap *h, const struct spc_decoded_heap *dh, const struct spc_flavour *f)
{
    CHECK(dh->complete, "heap cnt %llu incomplete (%llu of %llu bytes)", (unsigned long long)dh->cnt,
          (unsigned long long)dh->received, (unsigned long long)dh->heap_size);
    CHECK(dh->flavour.heap_address_bits == f->heap_address_bits, "decoded flavour");
    CHECK(dh->n_items == h->n_items, "heap cnt %llu: %zu items decoded, %zu added", (unsigned long long)h->cnt,
          dh->n_items, h->n_items);
    bool start = false, stop = false;
    for (size_t k = 0; k < h->n_items; k++) {
        check_item(&h->items[k], &dh->items[k], f, k);
        start |= h->items[k].kind == K_START;
        stop |= h->items[k].kind == K_END;
    }
    CHECK(dh->has_start == start && dh->has_stop == stop, "start/stop flags");
}

static void free_heap(struct exp_heap *h)
{
    for (size_t i = 0; i < h->n_items; i++)
        free(h->items[i].data);
    spc_heap_destroy(h->heap);
}

/* Returns the number of packets the iteration produced. */
static size_t one_iteration(uint64_t seed)
{
    uint64_t s = seed ? seed : 1;
    struct spc_flavour f;
    CHECK(spc_flavour_init(&f, rnd(&s, 2) ? 48 : 40, 0) == 0, "flavour");
    size_t mps = 56 + rnd(&s, 9000 - 56 + 1);
    size_t max_ptrs = ((mps & ~(size_t)7) - 48) / 8;
    struct exp_heap *heaps = calloc(2, sizeof(*heaps));
    uint64_t cnt0 = tu_rand(&s) & spc_flavour_max_value(&f);
    build_heap(&s, &f, &heaps[0], cnt0);
    build_heap(&s, &f, &heaps[1], (cnt0 + 1 + rnd(&s, 1000)) & spc_flavour_max_value(&f));

    struct vc_packets pk[2];
    for (int i = 0; i < 2; i++) {
        struct exp_heap *h = &heaps[i];
        h->repeat = rnd(&s, 4) == 0;
        spc_heap_set_repeat_pointers(h->heap, h->repeat);
        if (h->repeat && h->n_items >= max_ptrs) {
            /* Does not fit: the error is reported and the heap is sent without repeating. */
            CHECK(spc_heap_validate(h->heap, h->cnt, mps) == -SPC_EREPEAT_POINTERS, "repeat at mps %zu", mps);
            h->repeat = false;
            spc_heap_set_repeat_pointers(h->heap, false);
        }
        int rc = vc_packetize(h->heap, h->cnt, mps, &pk[i]);
        CHECK(rc == 0, "packetize heap %d at mps %zu: %s", i, mps, spc_strerror(rc));
        CHECK(pk[i].n == pk[i].predicted_count, "heap %d: %zu packets, count said %zu", i, pk[i].n,
              pk[i].predicted_count);
        int64_t bytes = 0;
        for (size_t p = 0; p < pk[i].n; p++) {
            CHECK(pk[i].p[p].len <= (mps & ~(size_t)7), "packet of %zu bytes at mps %zu", pk[i].p[p].len, mps);
            bytes += (int64_t)pk[i].p[p].len;
        }
        CHECK(bytes == pk[i].predicted_bytes, "heap %d: %lld bytes, wire size said %lld", i, (long long)bytes,
              (long long)pk[i].predicted_bytes);
    }

    /* Both heaps' packets in one shuffled list. */
    size_t n = pk[0].n + pk[1].n;
    struct vc_packet *all = malloc(n * sizeof(*all));
    memcpy(all, pk[0].p, pk[0].n * sizeof(*all));
    memcpy(all + pk[0].n, pk[1].p, pk[1].n * sizeof(*all));
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd(&s, i);
        struct vc_packet t = all[i - 1];
        all[i - 1] = all[j];
        all[j] = t;
    }

    struct spc_decoder *dec;
    CHECK(spc_decoder_create(&dec, NULL) == 0, "decoder create");
    if (rnd(&s, 4) == 0) {
        /* As one concatenated byte stream. */
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += all[i].len;
        uint8_t *stream = malloc(total), *w = stream;
        for (size_t i = 0; i < n; i++) {
            memcpy(w, all[i].data, all[i].len);
            w += all[i].len;
        }
        size_t used = 0;
        int rc = spc_decoder_add_stream(dec, stream, total, &used);
        CHECK(rc == 0 && used == total, "add_stream: %s, %zu of %zu bytes", spc_strerror(rc), used, total);
        free(stream);
    } else {
        for (size_t i = 0; i < n; i++) {
            int rc = spc_decoder_add_packet(dec, all[i].data, all[i].len, NULL);
            CHECK(rc == 0, "packet %zu of %zu: %s", i, n, spc_strerror(rc));
        }
    }
    struct spc_decoded_heap *dh;
    size_t got = 0;
    while (spc_decoder_pop(dec, &dh) == 1) {
        int which = dh->cnt == heaps[0].cnt && !heaps[0].seen ? 0 : 1;
        CHECK(dh->cnt == heaps[which].cnt && !heaps[which].seen, "unexpected heap cnt %llu",
              (unsigned long long)dh->cnt);
        heaps[which].seen = true;
        check_heap(&heaps[which], dh, &f);
        spc_decoded_heap_free(dh);
        got++;
    }
    CHECK(got == 2, "%zu heaps decoded of 2 (mps %zu, HAB %u)", got, mps, f.heap_address_bits);
    spc_decoder_destroy(dec);
    free(all);
    for (int i = 0; i < 2; i++) {
        vc_packets_free(&pk[i]);
        free_heap(&heaps[i]);
    }
    free(heaps);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

Test(roundtrip, random_heaps)
{
    const char *env = getenv("SPC_ROUNDTRIP_SEED");
    if (env) {
        g_seed = strtoull(env, NULL, 0);
        g_iter = 0;
        one_iteration(g_seed);
        return;
    }
    uint64_t base = BASE_SEED;
    double start = now_s();
    size_t packets = 0;
    unsigned done = 0;
    for (g_iter = 0; g_iter < ITERATIONS; g_iter++) {
        g_seed = tu_rand(&base);
        packets += one_iteration(g_seed);
        done++;
        if (now_s() - start > TIME_LIMIT_S)
            break;
    }
    cr_log_info("roundtrip: %u iterations, %zu packets, %.1f s", done, packets, now_s() - start);
    cr_expect_geq(done, 50, "only %u iterations within %.0f s", done, TIME_LIMIT_S);
}
