/* Send streams against spead2's bytes: the group_* and cnt_* cases of the spead2 vector
 * corpus (tests/vectors/spead2/) sent through a stream on the built-in "bytes" transport
 * must give exactly spead2's bytes, whichever send form carries them (one async send per
 * heap, send_heaps in the case's mode, the synchronous forms, a reusable heap list, or the
 * automatic cnt sequence), and the [round-robin] section of spead2-encoder.txt gives the
 * packet order of ROUND_ROBIN and SERIAL groups. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "vectorcase.h"

#define CORPUS_DIR SPC_TEST_VECTOR_DIR "/spead2"

enum form { ASYNC, SYNC, LIST, AUTO_CNT, N_FORMS };
static const char *const form_names[] = {"async", "sync", "list", "auto-cnt"};

static struct spc_stream *open_bytes(const struct spc_flavour *f, size_t mps, size_t max_heaps)
{
    struct spc_stream_config sc = SPC_STREAM_CONFIG_DEFAULT;
    sc.flavour = *f;
    sc.max_packet_size = mps;
    sc.max_heaps = max_heaps;
    char err[256];
    struct spc_config *cfg;
    cr_assert_eq(spc_config_create(&cfg, "bytes", &sc, NULL, err, sizeof err), 0, "%s", err);
    struct spc_stream *s;
    cr_assert_eq(spc_stream_open(&s, cfg, NULL, err, sizeof err), 0, "%s", err);
    spc_config_destroy(cfg);
    return s;
}

static void on_done(void *user, int status, uint64_t bytes)
{
    (void)bytes;
    if (status != 0)
        *(int *)user = status;
}

/* Sends the case's heaps in one form; returns false when the form does not apply. */
static bool send_case(struct spc_stream *s, const struct vc_case *c, struct spc_heap **heaps,
                      enum form form, int *cb_status)
{
    size_t n = c->n_heaps;
    struct spc_heap_ref *refs = calloc(n, sizeof *refs);
    bool consecutive = true;
    for (size_t i = 0; i < n; i++) {
        refs[i] = (struct spc_heap_ref){heaps[i], c->heaps[i].cnt, 0, -1.0};
        if (c->heaps[i].cnt != c->heaps[0].cnt + i)
            consecutive = false;
    }
    if (form == AUTO_CNT) {
        if (!consecutive) {
            free(refs);
            return false;
        }
        cr_assert_eq(spc_stream_set_cnt_sequence(s, c->heaps[0].cnt, 1), 0);
        for (size_t i = 0; i < n; i++)
            refs[i].cnt = SPC_CNT_AUTO;
    }
    enum spc_group_mode mode = SPC_GROUP_SERIAL;
    if (c->group_mode)
        mode = strcmp(c->group_mode, "round_robin") == 0 ? SPC_GROUP_ROUND_ROBIN : SPC_GROUP_SERIAL;
    if (form == LIST) {
        struct spc_heap_list *l;
        cr_assert_eq(spc_heap_list_create(&l, s, refs, n), 0);
        if (c->group_mode) {
            cr_assert_eq(spc_stream_send_list_sync(s, l, 0, n, mode, NULL), 0);
        } else {
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(spc_stream_send_list(s, l, i, 1, SPC_GROUP_SERIAL, on_done, cb_status), 0);
        }
        cr_assert_eq(spc_stream_flush(s), 0);
        spc_heap_list_destroy(l);
    } else if (c->group_mode) {
        if (form == SYNC) {
            uint64_t bytes;
            cr_assert_eq(spc_stream_send_heaps_sync(s, refs, n, mode, &bytes), 0);
            cr_assert_eq(bytes, c->expected_bytes);
        } else {
            cr_assert_eq(spc_stream_send_heaps(s, refs, n, mode, on_done, cb_status), 0);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (form == SYNC)
                cr_assert_eq(spc_stream_send_sync(s, &refs[i], NULL), 0);
            else
                cr_assert_eq(spc_stream_send(s, &refs[i], on_done, cb_status), 0);
        }
    }
    cr_assert_eq(spc_stream_flush(s), 0);
    free(refs);
    return true;
}

static void check_case(const char *name)
{
    struct vc_case *c;
    char err[256];
    cr_assert_eq(vc_load(CORPUS_DIR, name, &c, err, sizeof err), 0, "%s: %s", name, err);
    struct spc_heap **heaps = calloc(c->n_heaps, sizeof *heaps);
    for (size_t i = 0; i < c->n_heaps; i++)
        cr_assert_eq(vc_build_heap(c, i, &heaps[i]), 0, "%s: heap %zu", name, i);
    size_t want_len = 0;
    for (size_t i = 0; i < c->n_packets; i++)
        want_len += c->packets[i].len;
    uint8_t *want = malloc(want_len ? want_len : 1);
    size_t off = 0;
    for (size_t i = 0; i < c->n_packets; i++) {
        memcpy(want + off, c->packets[i].data, c->packets[i].len);
        off += c->packets[i].len;
    }
    cr_assert_eq(want_len, c->expected_bytes, "%s: corpus sizes disagree", name);

    for (int form = 0; form < N_FORMS; form++) {
        /* max_heaps just large enough for the biggest group. */
        struct spc_stream *s = open_bytes(&c->flavour, c->max_packet_size, c->n_heaps);
        int cb_status = 0;
        if (send_case(s, c, heaps, (enum form)form, &cb_status)) {
            cr_assert_eq(cb_status, 0, "%s (%s): a completion failed", name, form_names[form]);
            const uint8_t *got;
            size_t len;
            cr_assert_eq(spc_bytes_stream_data(s, &got, &len), 0);
            char label[128];
            snprintf(label, sizeof label, "%s (%s)", name, form_names[form]);
            cr_assert(vc_same_bytes(label, got, len, want, want_len), "%s: bytes differ from spead2's",
                      label);
        }
        spc_stream_close(s);
    }
    for (size_t i = 0; i < c->n_heaps; i++)
        spc_heap_destroy(heaps[i]);
    free(heaps);
    free(want);
    vc_free(c);
}

Test(stream_vectors, group_and_cnt_cases)
{
    char **names;
    size_t n = vc_list(CORPUS_DIR, &names);
    cr_assert_gt(n, 0, "no corpus in %s", CORPUS_DIR);
    size_t done = 0, groups = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], "group_", 6) != 0 && strncmp(names[i], "cnt_", 4) != 0)
            continue;
        check_case(names[i]);
        done++;
        groups += strncmp(names[i], "group_", 6) == 0;
    }
    vc_free_names(names, n);
    cr_assert_geq(done, 5, "only %zu group_/cnt_ cases found", done);
    cr_assert_geq(groups, 3);
}

/* spead2-encoder.txt [round-robin]: SPEAD-64-48, mps 88; heap i (cnt i+1) holds item
 * 0x1000+i of 64*i+8 bytes with byte j = (i+j) mod 256. */
static const struct {
    unsigned heap;
    uint64_t heap_size, offset, length;
    size_t size;
    unsigned pointers;
} rr_table[6] = {
    {0, 0x08, 0x00, 0x08, 56, 5}, {1, 0x48, 0x00, 0x28, 88, 5}, {2, 0x88, 0x00, 0x28, 88, 5},
    {1, 0x48, 0x28, 0x20, 72, 4}, {2, 0x88, 0x28, 0x30, 88, 4}, {2, 0x88, 0x58, 0x30, 88, 4},
};

static void check_encoder_order(enum spc_group_mode mode, const unsigned order[6])
{
    struct spc_flavour f = {48, 0};
    static uint8_t data[3][136];
    struct spc_heap *h[3];
    struct spc_heap_ref refs[3];
    for (unsigned i = 0; i < 3; i++) {
        for (unsigned j = 0; j < 64 * i + 8; j++)
            data[i][j] = (uint8_t)(i + j);
        cr_assert_eq(spc_heap_create(&h[i], &f), 0);
        cr_assert_eq(spc_heap_add_item(h[i], 0x1000 + i, data[i], 64 * i + 8, true), 0);
        refs[i] = (struct spc_heap_ref){h[i], i + 1, 0, -1.0};
    }
    struct spc_stream *s = open_bytes(&f, 88, 4);
    uint64_t bytes;
    cr_assert_eq(spc_stream_send_heaps_sync(s, refs, 3, mode, &bytes), 0);
    const uint8_t *got;
    size_t len;
    cr_assert_eq(spc_bytes_stream_data(s, &got, &len), 0);
    cr_assert_eq(len, bytes);
    size_t off = 0;
    for (int k = 0; k < 6; k++) {
        unsigned row = order[k];
        struct spc_packet_info info;
        cr_assert_eq(spc_packet_parse(got + off, len - off, &info), 0, "packet %d", k);
        cr_assert_eq(info.heap_cnt, rr_table[row].heap + 1, "packet %d: heap cnt %llu", k,
                     (unsigned long long)info.heap_cnt);
        cr_assert_eq(info.heap_size, rr_table[row].heap_size, "packet %d", k);
        cr_assert_eq(info.heap_offset, rr_table[row].offset, "packet %d", k);
        cr_assert_eq(info.payload_length, rr_table[row].length, "packet %d", k);
        cr_assert_eq(info.packet_size, rr_table[row].size, "packet %d", k);
        cr_assert_eq(info.n_pointers, rr_table[row].pointers, "packet %d", k);
        /* The payload is the item's bytes at that offset. */
        cr_assert_eq(memcmp(info.payload, data[rr_table[row].heap] + info.heap_offset, info.payload_length),
                     0, "packet %d payload", k);
        off += info.packet_size;
    }
    cr_assert_eq(off, len);
    spc_stream_close(s);
    for (int i = 0; i < 3; i++)
        spc_heap_destroy(h[i]);
}

Test(stream_vectors, encoder_round_robin_order)
{
    /* H0P0 H1P0 H2P0 H1P1 H2P1 H2P2 = table rows 0..5. */
    static const unsigned rr[6] = {0, 1, 2, 3, 4, 5};
    check_encoder_order(SPC_GROUP_ROUND_ROBIN, rr);
}

Test(stream_vectors, encoder_serial_order)
{
    /* H0P0 H1P0 H1P1 H2P0 H2P1 H2P2. */
    static const unsigned serial[6] = {0, 1, 3, 2, 4, 5};
    check_encoder_order(SPC_GROUP_SERIAL, serial);
}
