/* The ibverbs transport against a simulated RDMA NIC (tests/ibverbs/simdev.h), and the
 * real plugin module failing cleanly on a host without one.
 *
 * How the simulated device gets behind the plugin: this file compiles
 * plugins/ibverbs/ibverbs.c a second time with SPC_IBV_TESTING, which leaves out the
 * libibverbs wrappers and makes the plugin's one verbs table (ibvp_verbs_table) a
 * variable the tests set to the simulator's. The built module has no such hook: it
 * exports only its entry point and always uses libibverbs. The tests drive the plugin's
 * ops directly with their own core-services table, so every completion, status and
 * error text is observable; frames are checked byte for byte against spc_frame_write
 * (the pcap plugin's frame builder) and decoded back into heaps.
 */
#if __has_include(<infiniband/verbs.h>)

#define SPC_IBV_TESTING 1
#include "../../plugins/ibverbs/ibverbs.c"
#include "../ibverbs/simdev.c"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>

#include "speadcast/speadcast.h"
#include "testutil.h"

#define MAX_PKTS 4096
#define MPS 1472

/* ------------------------------------------------------------ harness */

struct rec {
    int status;
    int n_complete;
};

static struct {
    struct spc_core_services svc;
    struct ibvp *p;
    struct ibvp_options o;
    struct spc_endpoint eps[4];
    const struct spc_endpoint *ep_ptrs[4];
    struct spc_transport_params params;
    struct simdev_config cfg;
    struct rec recs[MAX_PKTS];
    size_t n_recs;
    char error[512];
    char warning[512];
    int warnings;
    int hw_paced_calls; /* svc->set_hw_paced */
    bool hw_paced;      /* its last value */
} H;

static void h_vlog(struct spc_transport *t, int level, const char *fmt, va_list ap)
{
    (void)t;
    if (level == SPC_LOG_WARNING) {
        H.warnings++;
        vsnprintf(H.warning, sizeof H.warning, fmt, ap);
    }
}

static void h_log(struct spc_transport *t, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    h_vlog(t, level, fmt, ap);
    va_end(ap);
}

static void h_set_error(struct spc_transport *t, const char *fmt, ...)
{
    (void)t;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(H.error, sizeof H.error, fmt, ap);
    va_end(ap);
}

static uint64_t h_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void h_set_hw_paced(struct spc_transport *t, bool hw_paced)
{
    cr_assert_eq(t, &H.p->base);
    H.hw_paced_calls++;
    H.hw_paced = hw_paced;
}

static void h_complete(struct spc_transport *t, void *token, int status)
{
    cr_assert_eq(t, &H.p->base);
    struct rec *r = token;
    cr_assert(r >= H.recs && r < H.recs + MAX_PKTS, "unknown token %p", token);
    cr_assert_eq(r->n_complete, 0, "packet %td completed twice", r - H.recs);
    r->n_complete++;
    r->status = status;
}

static void h_init(void)
{
    memset(&H, 0, sizeof H);
    H.svc = (struct spc_core_services){
        .struct_size = sizeof(struct spc_core_services),
        .abi_minor = SPC_TRANSPORT_ABI_MINOR,
        .log = h_log,
        .vlog = h_vlog,
        .set_error = h_set_error,
        .clock_ns = h_clock,
        .complete = h_complete,
        .strerror = spc_strerror,
        .packet_parse = spc_packet_parse,
        .decoder_create = spc_decoder_create,
        .decoder_destroy = spc_decoder_destroy,
        .decoder_add_packet = spc_decoder_add_packet,
        .decoder_pop = spc_decoder_pop,
        .decoder_flush = spc_decoder_flush,
        .decoded_heap_free = spc_decoded_heap_free,
        .frame_write = spc_frame_write,
        .frame_multicast_mac = spc_frame_multicast_mac,
        .ipv4_checksum = spc_ipv4_checksum,
        .mac_parse = spc_mac_parse,
        .inproc_queue_open = spc_inproc_queue_open,
        .inproc_queue_close = spc_inproc_queue_close,
        .inproc_queue_pushv = spc_inproc_queue_pushv,
        .inproc_queue_stop = spc_inproc_queue_stop,
        .set_hw_paced = h_set_hw_paced,
    };
    simdev_default_config(&H.cfg);
    for (int i = 0; i < 4; i++) {
        H.eps[i] = (struct spc_endpoint){sizeof(struct spc_endpoint), 7148 + (uint32_t)i, NULL};
        H.ep_ptrs[i] = &H.eps[i];
    }
    H.eps[0].host = "239.10.0.1";
    H.eps[1].host = "239.10.0.2";
    H.eps[2].host = "239.138.0.3"; /* bit 7 of the second octet is not in the MAC */
    H.eps[3].host = "224.0.1.4";
    H.o = (struct ibvp_options){
        .endpoints = {1, H.ep_ptrs},
        .interface_address = "10.8.0.2",
        .buffer_size = 524288,
        .ttl = 1,
        .comp_vector = 0,
        .max_poll = 10,
    };
    H.params = (struct spc_transport_params){
        .struct_size = sizeof(struct spc_transport_params),
        .rate_method = SPC_RATE_METHOD_SW,
        .max_packet_size = MPS,
        .flavour = SPC_FLAVOUR_DEFAULT,
        .rate = 0,
        .burst_size = 65536,
        .burst_rate_ratio = 1.05,
        .max_heaps = 4,
    };
}

static void h_fini(void)
{
    simdev_uninstall();
}

TestSuite(ibverbs_sim, .init = h_init, .fini = h_fini);

/* Opens the plugin on the simulated host built from H.cfg. */
static int h_open(void)
{
    simdev_install(&H.cfg);
    ibvp_verbs_table = simdev_verbs();
    H.p = calloc(1, ibvp_descriptor.object_size);
    cr_assert_not_null(H.p);
    H.p->base = (struct spc_transport){.struct_size = sizeof(struct spc_transport),
                                       .n_substreams = 1, .svc = &H.svc, .desc = &ibvp_descriptor};
    int rc = ibvp_descriptor.ops->open(&H.p->base, &H.o, &H.params);
    if (rc != 0) {
        free(H.p);
        H.p = NULL;
        cr_expect_eq(simdev_live_objects(), 0, "a failed open left verbs objects open");
        cr_expect_eq(simdev_stats()->violations, 0, "%s", simdev_stats()->first_violation);
    }
    return rc;
}

static void h_must_open(void)
{
    int rc = h_open();
    cr_assert_eq(rc, 0, "open: %s: %s", spc_strerror(rc), H.error);
}

static void h_close(void)
{
    ibvp_descriptor.ops->close(&H.p->base);
    free(H.p);
    H.p = NULL;
    cr_expect_eq(simdev_live_objects(), 0, "close left verbs objects open");
    cr_expect_eq(simdev_stats()->violations, 0, "device misuse: %s", simdev_stats()->first_violation);
}

/* Packets to send: tx entries whose tokens are H.recs entries. */
struct pkts {
    struct spc_packet pk[MAX_PKTS];
    struct spc_tx_packet tx[MAX_PKTS];
    uint8_t *scratch;
    size_t n;
};

static struct pkts *pkts_new(void)
{
    struct pkts *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    s->scratch = malloc(MAX_PKTS * spc_packet_scratch_size(MPS));
    cr_assert_not_null(s->scratch);
    return s;
}

static void pkts_free(struct pkts *s)
{
    free(s->scratch);
    free(s);
}

static void add_tx(struct pkts *s, const struct iovec *iov, unsigned n_iov, size_t size, uint32_t sub)
{
    cr_assert_lt(H.n_recs, MAX_PKTS);
    struct rec *r = &H.recs[H.n_recs++];
    *r = (struct rec){12345, 0};
    s->tx[s->n] = (struct spc_tx_packet){.iov = iov, .n_iov = n_iov, .substream = sub,
                                         .size = size, .token = r, .status = 12345};
    s->n++;
}

/* Appends every packet of heap (cnt) for substream sub. */
static void add_heap(struct pkts *s, const struct spc_heap *heap, uint64_t cnt, uint32_t sub)
{
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, heap, cnt, MPS), 0);
    size_t ss = spc_packet_scratch_size(MPS);
    while (1) {
        size_t i = s->n;
        cr_assert_lt(i, MAX_PKTS);
        if (spc_packetizer_next(&pz, s->scratch + i * ss, &s->pk[i]) != 1)
            break;
        add_tx(s, s->pk[i].iov, s->pk[i].n_iov, s->pk[i].size, sub);
    }
}

static int send_range(struct pkts *s, size_t first, size_t n)
{
    struct spc_tx_batch b = {sizeof b, sizeof(struct spc_tx_packet), n, &s->tx[first]};
    return ibvp_descriptor.ops->send(&H.p->base, &b);
}

static int h_flush(void)
{
    return ibvp_descriptor.ops->flush(&H.p->base);
}

/* Every packet has its final status, reported exactly once if it was left pending. */
static void expect_all_status(struct pkts *s, int want)
{
    for (size_t i = 0; i < s->n; i++) {
        struct rec *r = s->tx[i].token;
        cr_expect_eq(s->tx[i].status, SPC_TX_PENDING, "packet %zu status %d", i, s->tx[i].status);
        cr_expect_eq(r->n_complete, 1, "packet %zu completed %d times", i, r->n_complete);
        cr_expect_eq(r->status, want, "packet %zu: %d (%s), want %d", i, r->status,
                     spc_strerror(r->status), want);
    }
}

static struct spc_frame_params flow_for(uint32_t sub)
{
    struct spc_frame_params f = {SPC_FRAME_PARAMS_INIT, .src_port = (uint16_t)H.eps[sub].port,
                                 .dst_port = (uint16_t)H.eps[sub].port,
                                 .ttl = (uint8_t)H.o.ttl};
    memcpy(f.src_mac, H.cfg.mac, 6);
    memcpy(f.src_ip, H.cfg.ip, 4);
    cr_assert_eq(inet_pton(AF_INET, H.eps[sub].host, f.dst_ip), 1);
    cr_assert_eq(spc_frame_multicast_mac(f.dst_ip, f.dst_mac), 0);
    if (H.cfg.raw_ip_csum)
        f.flags |= SPC_FRAME_NO_IP_CHECKSUM;
    return f;
}

/* Frame k is packet i with IPv4 id `id`: header as spc_frame_write builds it, then the
 * packet's bytes. */
static void expect_frame(size_t k, const struct spc_tx_packet *tx, uint16_t id)
{
    const struct simdev_frame *f = simdev_frame(k);
    cr_assert_not_null(f, "frame %zu missing", k);
    cr_assert_eq(f->len, HDR + tx->size, "frame %zu length", k);
    struct spc_frame_params fp = flow_for(tx->substream);
    uint8_t want[HDR];
    cr_assert_eq(spc_frame_write(&fp, tx->size, id, want), 0);
    if (memcmp(f->data, want, HDR)) {
        char *a = tu_hex_encode(f->data, HDR), *b = tu_hex_encode(want, HDR);
        cr_expect_fail("frame %zu header\n got  %s\n want %s", k, a, b);
        free(a);
        free(b);
    }
    uint8_t *body = malloc(tx->size ? tx->size : 1);
    spc_tx_packet_gather(tx, body);
    cr_expect(!memcmp(f->data + HDR, body, tx->size), "frame %zu payload differs", k);
    free(body);
    if (!H.cfg.raw_ip_csum)
        cr_expect_eq(spc_ipv4_checksum(f->data + SPC_FRAME_ETH_LEN, SPC_FRAME_IPV4_LEN), 0,
                     "frame %zu IPv4 checksum", k);
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
    uint8_t *b = malloc(len);
    cr_assert_not_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    return b;
}

/* Decodes the frames [first, first + n) sent to port and checks the one heap they make. */
static void expect_decodes_to(size_t first, size_t n, uint16_t port, uint64_t cnt,
                              const uint8_t *item, size_t item_len, uint64_t item_id)
{
    struct spc_decoder *dec;
    cr_assert_eq(spc_decoder_create(&dec, NULL), 0);
    for (size_t k = first; k < first + n; k++) {
        const struct simdev_frame *f = simdev_frame(k);
        cr_assert_not_null(f);
        uint16_t dport = (uint16_t)(f->data[36] << 8 | f->data[37]);
        if (dport != port)
            continue;
        cr_assert_eq(spc_decoder_add_packet(dec, f->data + HDR, f->len - HDR, NULL), 0);
    }
    struct spc_decoded_heap *h;
    cr_assert_eq(spc_decoder_pop(dec, &h), 1, "no heap decoded for port %u", (unsigned)port);
    cr_expect(h->complete);
    cr_expect_eq(h->cnt, cnt);
    bool found = false;
    for (size_t i = 0; i < h->n_items; i++) {
        if (h->items[i].id != item_id)
            continue;
        found = true;
        cr_expect_eq(h->items[i].len, item_len);
        cr_expect(!memcmp(h->items[i].data, item, item_len), "item 0x%llx bytes differ",
                  (unsigned long long)item_id);
    }
    cr_expect(found, "item 0x%llx not decoded", (unsigned long long)item_id);
    spc_decoded_heap_free(h);
    spc_decoder_destroy(dec);
}

static struct spc_heap *heap_with(const uint8_t *data, size_t len, uint64_t id)
{
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    cr_assert_eq(spc_heap_add_item(h, id, data, len, false), 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x1001, 0x1234), 0);
    return h;
}

/* ------------------------------------------------------------ frames */

Test(ibverbs_sim, frames_match_the_frame_builder_and_decode)
{
    H.o.endpoints.n = 3;
    H.o.ttl = 5;
    H.o.buffer_size = 3 * 1536; /* three slots: they change substream as they are reused */
    h_must_open();
    cr_assert_eq(H.p->n_slots, 3);
    cr_expect_eq(H.p->base.n_substreams, 3);
    struct pkts *s = pkts_new();
    uint8_t *d[3];
    struct spc_heap *h[3];
    size_t len[3] = {5000, 100, 2900};
    for (int i = 0; i < 3; i++) {
        d[i] = pattern(len[i], (uint8_t)i);
        h[i] = heap_with(d[i], len[i], 0x2000 + (uint64_t)i);
        add_heap(s, h[i], 10 + (uint64_t)i, (uint32_t)i);
    }
    /* Interleave the substreams' packets. */
    struct spc_tx_packet tmp[MAX_PKTS];
    size_t n = s->n, out = 0, next[3] = {0, 0, 0}, start[3], count[3];
    for (size_t i = 0, j = 0; j < 3; j++) {
        start[j] = i;
        while (i < n && s->tx[i].substream == j)
            i++;
        count[j] = i - start[j];
    }
    while (out < n)
        for (int j = 0; j < 3; j++)
            if (next[j] < count[j])
                tmp[out++] = s->tx[start[j] + next[j]++];
    memcpy(s->tx, tmp, n * sizeof tmp[0]);

    cr_assert_eq(send_range(s, 0, n), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    cr_assert_eq(simdev_n_frames(), n);
    for (size_t k = 0; k < n; k++) {
        expect_frame(k, &s->tx[k], (uint16_t)k);
        cr_expect_eq(simdev_frame(k)->send_flags & IBV_SEND_IP_CSUM, 0u);
    }
    for (int i = 0; i < 3; i++)
        expect_decodes_to(0, n, (uint16_t)(7148 + i), 10 + (uint64_t)i, d[i], len[i], 0x2000 + (uint64_t)i);
    h_close();
    for (int i = 0; i < 3; i++) {
        spc_heap_destroy(h[i]);
        free(d[i]);
    }
    pkts_free(s);
}

Test(ibverbs_sim, checksum_offloaded_when_the_device_can)
{
    H.cfg.raw_ip_csum = true;
    h_must_open();
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(4000, 9);
    struct spc_heap *h = heap_with(d, 4000, 0x2222);
    add_heap(s, h, 1, 0);
    cr_assert_eq(send_range(s, 0, s->n), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    cr_assert_eq(simdev_n_frames(), s->n);
    for (size_t k = 0; k < s->n; k++) {
        expect_frame(k, &s->tx[k], (uint16_t)k); /* NO_IP_CHECKSUM: checksum bytes are 0 */
        const struct simdev_frame *f = simdev_frame(k);
        cr_expect_eq(f->data[24] | f->data[25], 0, "checksum left to the device");
        cr_expect_neq(f->send_flags & IBV_SEND_IP_CSUM, 0u);
    }
    h_close();
    spc_heap_destroy(h);
    free(d);
    pkts_free(s);
}

/* ------------------------------------------------------------ batching */

Test(ibverbs_sim, chains_have_one_signalled_request_at_the_end)
{
    H.o.buffer_size = 16 * 1536;
    h_must_open();
    cr_assert_eq(H.p->n_slots, 16);
    cr_assert_eq(H.p->max_chain, 8);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(150000, 3);
    struct spc_heap *h = heap_with(d, 150000, 0x3000);
    add_heap(s, h, 7, 0);
    cr_assert_gt(s->n, 100);
    /* One large batch, then odd small ones. */
    cr_assert_eq(send_range(s, 0, 60), 0);
    size_t at = 60;
    while (at < s->n) {
        size_t m = s->n - at < 3 ? s->n - at : 3;
        cr_assert_eq(send_range(s, at, m), 0);
        at += m;
    }
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    const struct simdev_stats *st = simdev_stats();
    cr_expect_eq(st->wrs_posted, s->n);
    cr_expect_eq(st->chains_mid_signaled, 0);
    cr_expect_eq(st->chains_last_signaled, st->post_calls);
    cr_expect_eq(st->signaled, st->post_calls);
    cr_expect_leq(st->max_chain, 8);
    cr_expect_geq(st->post_calls, (60 + 7) / 8 + (s->n - 60 + 2) / 3);
    cr_expect_eq(st->cqes, st->post_calls, "one completion per chain");
    cr_expect_eq(simdev_n_frames(), s->n);
    for (size_t k = 0; k < s->n; k++)
        expect_frame(k, &s->tx[k], (uint16_t)k);
    expect_decodes_to(0, s->n, 7148, 7, d, 150000, 0x3000);
    h_close();
    spc_heap_destroy(h);
    free(d);
    pkts_free(s);
}

/* ------------------------------------------------------------ zero copy */

Test(ibverbs_sim, registered_memory_goes_zero_copy)
{
    h_must_open();
    size_t len = 65536;
    uint8_t *d = pattern(len, 5);
    void *handle;
    cr_assert_eq(ibvp_descriptor.ops->register_memory(&H.p->base, d, len, &handle), 0);
    uint32_t lkey = ((struct ibvp_region *)handle)->mr->lkey;
    struct pkts *s = pkts_new();
    struct spc_heap *h = heap_with(d, len, 0x4000);
    add_heap(s, h, 3, 0);
    cr_assert_eq(send_range(s, 0, s->n), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    cr_assert_eq(simdev_n_frames(), s->n);
    for (size_t k = 0; k < s->n; k++) {
        expect_frame(k, &s->tx[k], (uint16_t)k);
        const struct simdev_frame *f = simdev_frame(k);
        /* [Ethernet/IP/UDP + SPEAD header and pointers, copied into the slot][payload] */
        cr_expect_eq(f->num_sge, 2, "frame %zu: %d SGEs", k, f->num_sge);
        cr_expect_eq(f->sge[0].lkey, H.p->mr->lkey);
        cr_expect_eq(f->sge[1].lkey, lkey);
        cr_expect(f->sge[1].addr >= (uintptr_t)d && f->sge[1].addr + f->sge[1].length <= (uintptr_t)d + len,
                  "frame %zu payload not read from the registered memory", k);
    }
    cr_expect_eq(simdev_stats()->lkey_errors, 0);
    expect_decodes_to(0, s->n, 7148, 3, d, len, 0x4000);
    cr_assert_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, handle), 0);
    h_close();
    spc_heap_destroy(h);
    free(d);
    pkts_free(s);
}

/* Pieces: unregistered A, registered B and C (adjacent), unregistered D, registered E. */
static void mixed_packet(struct pkts *s, struct iovec *iov, uint8_t *reg, uint8_t *a, uint8_t *dd)
{
    iov[0] = (struct iovec){a, 10};
    iov[1] = (struct iovec){reg, 100};
    iov[2] = (struct iovec){reg + 100, 100};
    iov[3] = (struct iovec){dd, 20};
    iov[4] = (struct iovec){reg + 300, 100};
    add_tx(s, iov, 5, 330, 0);
}

Test(ibverbs_sim, adjacent_pieces_merge_and_copies_interleave)
{
    h_must_open();
    cr_assert_eq(H.p->max_sge, 4);
    uint8_t *reg = pattern(1024, 1), *a = pattern(10, 2), *dd = pattern(20, 3);
    void *handle;
    cr_assert_eq(ibvp_descriptor.ops->register_memory(&H.p->base, reg, 1024, &handle), 0);
    uint32_t lkey = ((struct ibvp_region *)handle)->mr->lkey;
    struct pkts *s = pkts_new();
    struct iovec iov[5];
    mixed_packet(s, iov, reg, a, dd);
    cr_assert_eq(send_range(s, 0, 1), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    expect_frame(0, &s->tx[0], 0);
    const struct simdev_frame *f = simdev_frame(0);
    cr_assert_eq(f->num_sge, 4);
    uintptr_t slot = (uintptr_t)H.p->slots[0].frame;
    cr_expect_eq(f->sge[0].addr, slot);
    cr_expect_eq(f->sge[0].length, HDR + 10);
    cr_expect_eq(f->sge[1].addr, (uintptr_t)reg);
    cr_expect_eq(f->sge[1].length, 200, "B and C merged");
    cr_expect_eq(f->sge[1].lkey, lkey);
    cr_expect_eq(f->sge[2].addr, slot + HDR + 10, "D copied behind A in the slot");
    cr_expect_eq(f->sge[2].length, 20);
    cr_expect_eq(f->sge[3].addr, (uintptr_t)reg + 300);
    cr_expect_eq(f->sge[3].lkey, lkey);
    cr_assert_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, handle), 0);
    h_close();
    free(reg);
    free(a);
    free(dd);
    pkts_free(s);
}

Test(ibverbs_sim, packets_needing_too_many_sges_are_copied)
{
    H.cfg.max_sge = 2;
    h_must_open();
    cr_expect_eq(simdev_stats()->qp_max_sge, 2);
    uint8_t *reg = pattern(1024, 1), *a = pattern(10, 2), *dd = pattern(20, 3);
    void *handle;
    cr_assert_eq(ibvp_descriptor.ops->register_memory(&H.p->base, reg, 1024, &handle), 0);
    struct pkts *s = pkts_new();
    struct iovec iov[5], iov2[2] = {{a, 10}, {reg + 500, 400}};
    mixed_packet(s, iov, reg, a, dd);
    add_tx(s, iov2, 2, 410, 0); /* fits in two: stays zero-copy */
    cr_assert_eq(send_range(s, 0, 2), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    expect_frame(0, &s->tx[0], 0);
    expect_frame(1, &s->tx[1], 1);
    cr_expect_eq(simdev_frame(0)->num_sge, 1, "copied whole");
    cr_expect_eq(simdev_frame(0)->sge[0].length, HDR + 330);
    cr_expect_eq(simdev_frame(1)->num_sge, 2);
    cr_expect_eq(simdev_frame(1)->sge[1].addr, (uintptr_t)reg + 500);
    cr_expect_eq(simdev_stats()->sge_refused, 0);
    cr_assert_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, handle), 0);
    h_close();
    free(reg);
    free(a);
    free(dd);
    pkts_free(s);
}

Test(ibverbs_sim, memory_in_flight_cannot_be_deregistered)
{
    h_must_open();
    uint8_t *reg = pattern(4096, 1);
    void *handle;
    cr_assert_eq(ibvp_descriptor.ops->register_memory(&H.p->base, reg, 4096, &handle), 0);
    cr_expect_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, (void *)&H), -EINVAL);
    struct pkts *s = pkts_new();
    struct iovec iov[1] = {{reg, 1000}};
    add_tx(s, iov, 1, 1000, 0);
    simdev_set_stall(true);
    cr_assert_eq(send_range(s, 0, 1), 0);
    cr_expect_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, handle), -EBUSY);
    cr_expect(strstr(H.error, "still being sent"), "%s", H.error);
    simdev_set_stall(false);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    cr_expect_eq(simdev_frame(0)->sge[1].addr, (uintptr_t)reg);
    cr_assert_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, handle), 0);
    h_close();
    free(reg);
    pkts_free(s);
}

/* ------------------------------------------------------------ errors */

Test(ibverbs_sim, work_completion_error_fails_with_eio_and_recovers)
{
    H.o.buffer_size = 16 * 1536;
    h_must_open();
    simdev_fail_wr(5, IBV_WC_GENERAL_ERR);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 20; i++)
        add_tx(s, iov, 1, 100, 0);
    cr_assert_eq(send_range(s, 0, 20), 0);
    cr_assert_eq(h_flush(), 0);
    /* 0-4 were sent before the failure; 5 failed; 6-15 were posted behind it (flushed);
     * 16-19 went on a new queue pair. */
    for (size_t i = 0; i < 20; i++) {
        struct rec *r = &H.recs[i];
        cr_expect_eq(r->n_complete, 1, "packet %zu", i);
        int want = i >= 5 && i <= 15 ? -EIO : 0;
        cr_expect_eq(r->status, want, "packet %zu: %d", i, r->status);
    }
    cr_expect(strstr(H.error, "work completion error"), "%s", H.error);
    cr_expect(strstr(H.error, "general error"), "%s", H.error);
    cr_expect_eq(simdev_stats()->qps_created, 2);
    cr_assert_eq(simdev_n_frames(), 9);
    for (size_t k = 0; k < 5; k++)
        expect_frame(k, &s->tx[k], (uint16_t)k);
    for (size_t k = 5; k < 9; k++)
        expect_frame(k, &s->tx[k + 11], (uint16_t)(k + 11));
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, flushed_requests_fail_with_eio)
{
    H.o.buffer_size = 16 * 1536;
    h_must_open();
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 12; i++)
        add_tx(s, iov, 1, 100, 0);
    simdev_set_stall(true);
    cr_assert_eq(send_range(s, 0, 10), 0); /* chains of 8 and 2, all unsent */
    simdev_qp_error();
    simdev_set_stall(false);
    cr_assert_eq(h_flush(), 0);
    for (size_t i = 0; i < 10; i++) {
        cr_expect_eq(H.recs[i].n_complete, 1, "packet %zu", i);
        cr_expect_eq(H.recs[i].status, -EIO, "packet %zu: %d", i, H.recs[i].status);
    }
    cr_expect(strstr(H.error, "Flushed"), "%s", H.error);
    cr_expect_eq(simdev_n_frames(), 0);
    cr_assert_eq(send_range(s, 10, 2), 0);
    cr_assert_eq(h_flush(), 0);
    cr_expect_eq(H.recs[10].status, 0);
    cr_expect_eq(H.recs[11].status, 0);
    cr_expect_eq(simdev_n_frames(), 2);
    cr_expect_eq(simdev_stats()->qps_created, 2);
    h_close();
    free(d);
    pkts_free(s);
}

/* A device that flushes a destroyed queue pair's requests late: those completions
 * name slots that are in flight again on the new queue pair and must be ignored. */
Test(ibverbs_sim, completions_of_a_replaced_queue_pair_are_ignored)
{
    H.o.buffer_size = 16 * 1536;
    h_must_open();
    simdev_set_flush_delay_ns(30000000u);
    simdev_fail_wr(5, IBV_WC_GENERAL_ERR);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 32; i++)
        add_tx(s, iov, 1, 100, 0);
    cr_assert_eq(send_range(s, 0, 16), 0);
    for (int i = 0; i < 1000 && !H.recs[15].n_complete; i++)
        ibvp_descriptor.ops->poll(&H.p->base);
    /* The error and the queue pair's replacement complete all 16. */
    for (size_t i = 0; i < 16; i++) {
        cr_assert_eq(H.recs[i].n_complete, 1, "packet %zu", i);
        cr_expect_eq(H.recs[i].status, i < 5 ? 0 : -EIO, "packet %zu: %d", i, H.recs[i].status);
    }
    cr_expect_eq(simdev_pending(), 0);
    simdev_set_stall(true);
    cr_assert_eq(send_range(s, 16, 16), 0); /* the same 16 slots, on the new queue pair */
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    cr_expect_eq(ibvp_descriptor.ops->poll(&H.p->base), 0, "stale completions were taken");
    for (size_t i = 16; i < 32; i++)
        cr_expect_eq(H.recs[i].n_complete, 0, "packet %zu completed before it was sent", i);
    simdev_set_stall(false);
    cr_assert_eq(h_flush(), 0);
    for (size_t i = 16; i < 32; i++)
        cr_expect_eq(H.recs[i].status, 0, "packet %zu: %d", i, H.recs[i].status);
    cr_expect_eq(simdev_n_frames(), 5 + 16);
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, failed_post_replaces_the_queue_pair)
{
    H.o.buffer_size = 16 * 1536;
    h_must_open();
    simdev_fail_post(3, ENOMEM);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 12; i++)
        add_tx(s, iov, 1, 100, 0);
    cr_assert_eq(send_range(s, 0, 12), 0);
    cr_assert_eq(h_flush(), 0);
    for (size_t i = 0; i < 12; i++) {
        cr_expect_eq(H.recs[i].n_complete, 1, "packet %zu", i);
        cr_expect_eq(H.recs[i].status, i < 8 ? -ENOMEM : 0, "packet %zu: %d", i, H.recs[i].status);
    }
    cr_expect(strstr(H.error, "posting work requests"), "%s", H.error);
    cr_expect_eq(simdev_stats()->qps_created, 2);
    cr_expect_eq(simdev_n_frames(), 4, "the first three were posted but never sent");
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, stalled_device_times_out)
{
    ibvp_stall_ns = 100000000u; /* 0.1 s */
    h_must_open();
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 5; i++)
        add_tx(s, iov, 1, 100, 0);
    simdev_set_stall(true);
    cr_assert_eq(send_range(s, 0, 3), 0);
    uint64_t t0 = h_clock();
    cr_assert_eq(h_flush(), 0);
    uint64_t dt = h_clock() - t0;
    cr_expect_geq(dt, 90000000u);
    cr_expect_lt(dt, 3000000000u);
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(H.recs[i].status, -ETIMEDOUT, "packet %zu: %d", i, H.recs[i].status);
    cr_expect(strstr(H.error, "completed nothing"), "%s", H.error);
    cr_expect_eq(simdev_stats()->qps_created, 2);
    simdev_set_stall(false);
    cr_assert_eq(send_range(s, 3, 2), 0);
    cr_assert_eq(h_flush(), 0);
    cr_expect_eq(H.recs[3].status, 0);
    cr_expect_eq(H.recs[4].status, 0);
    cr_expect_eq(simdev_n_frames(), 2);
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, broken_completion_queue_ends_the_transport)
{
    h_must_open();
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 6; i++)
        add_tx(s, iov, 1, 100, 0);
    simdev_set_stall(true);
    cr_assert_eq(send_range(s, 0, 3), 0);
    simdev_set_poll_fails(true);
    cr_expect_eq(h_flush(), -EIO);
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(H.recs[i].n_complete, 1, "packet %zu", i);
        cr_expect_eq(H.recs[i].status, -EIO, "packet %zu: %d", i, H.recs[i].status);
    }
    cr_expect(strstr(H.error, "polling the completion queue"), "%s", H.error);
    cr_expect_eq(simdev_pending(), 0, "the queue pair was destroyed");
    /* Nothing more can be sent: no status is set and the core fails the batch. */
    cr_expect_eq(send_range(s, 3, 3), -EIO);
    cr_expect_eq(s->tx[3].status, 12345);
    cr_expect_eq(ibvp_descriptor.ops->poll(&H.p->base), -EIO);
    h_close();
    cr_expect_eq(H.recs[3].n_complete, 0);
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, close_fails_packets_in_flight)
{
    h_must_open();
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    for (int i = 0; i < 5; i++)
        add_tx(s, iov, 1, 100, 0);
    simdev_set_stall(true);
    cr_assert_eq(send_range(s, 0, 5), 0);
    h_close();
    expect_all_status(s, -ECANCELED);
    cr_expect_eq(simdev_n_frames(), 0);
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, oversize_packet_fails_alone)
{
    h_must_open();
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(3000, 1);
    struct iovec ok[1] = {{d, 1000}}, big[1] = {{d, MPS + 8}};
    add_tx(s, ok, 1, 1000, 0);
    add_tx(s, big, 1, MPS + 8, 0);
    add_tx(s, ok, 1, 1000, 0);
    cr_assert_eq(send_range(s, 0, 3), 0);
    cr_expect_eq(s->tx[1].status, -EMSGSIZE);
    cr_assert_eq(h_flush(), 0);
    cr_expect_eq(H.recs[0].status, 0);
    cr_expect_eq(H.recs[2].status, 0);
    cr_expect_eq(H.recs[1].n_complete, 0);
    cr_expect_eq(simdev_n_frames(), 2);
    h_close();
    free(d);
    pkts_free(s);
}

/* ------------------------------------------------------------ completions */

Test(ibverbs_sim, waits_on_the_completion_channel)
{
    H.o.buffer_size = 4 * 1536; /* chains of 2 */
    h_must_open();
    cr_expect_eq(simdev_stats()->cq_channel, 1);
    simdev_set_delay_ns(2000000u);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(500, 1);
    struct iovec iov[1] = {{d, 500}};
    for (int i = 0; i < 24; i++)
        add_tx(s, iov, 1, 500, 0);
    uint64_t t0 = h_clock();
    cr_assert_eq(send_range(s, 0, 24), 0);
    cr_assert_eq(h_flush(), 0);
    uint64_t dt = h_clock() - t0;
    expect_all_status(s, 0);
    cr_expect_geq(dt, 10000000u, "24 packets through 4 slots, each due 2 ms after posting");
    cr_expect_gt(simdev_stats()->events, 0, "slept on the channel");
    cr_expect_eq(simdev_n_frames(), 24);
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, channel_fd_signals_completions)
{
    h_must_open();
    int fd = ibvp_descriptor.ops->get_fd(&H.p->base);
    cr_assert_geq(fd, 0);
    simdev_set_delay_ns(100000000u);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(500, 1);
    struct iovec iov[1] = {{d, 500}};
    for (int i = 0; i < 4; i++)
        add_tx(s, iov, 1, 500, 0);
    uint64_t t0 = h_clock();
    cr_assert_eq(send_range(s, 0, 4), 0);
    cr_expect_eq(ibvp_descriptor.ops->poll(&H.p->base), 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_expect_eq(poll(&pfd, 1, 0), 0, "readable before anything completed");
    cr_assert_eq(poll(&pfd, 1, 2000), 1, "the fd never became readable");
    cr_expect_geq(h_clock() - t0, 95000000u);
    int got = 0;
    for (int i = 0; i < 100 && got < 4; i++)
        got += ibvp_descriptor.ops->poll(&H.p->base);
    cr_expect_eq(got, 4);
    expect_all_status(s, 0);
    cr_expect_eq(poll(&pfd, 1, 0), 0, "the event was consumed");
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, negative_comp_vector_busy_polls)
{
    H.o.comp_vector = -1;
    H.o.buffer_size = 4 * 1536;
    h_must_open();
    cr_expect_eq(simdev_stats()->cq_channel, 0);
    cr_expect_eq(ibvp_descriptor.ops->get_fd(&H.p->base), -SPC_ENOTSUP);
    simdev_set_delay_ns(1000000u);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(500, 1);
    struct iovec iov[1] = {{d, 500}};
    for (int i = 0; i < 10; i++)
        add_tx(s, iov, 1, 500, 0);
    cr_assert_eq(send_range(s, 0, 10), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    cr_expect_eq(simdev_stats()->arms, 0);
    cr_expect_eq(simdev_stats()->events, 0);
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, comp_vector_taken_modulo_the_devices)
{
    H.o.comp_vector = 6;
    h_must_open();
    cr_expect_eq(simdev_stats()->cq_vector, 2);
    h_close();
}

/* ------------------------------------------------------------ pacing */

static uint32_t expected_kbps(double rate)
{
    return (uint32_t)llround(rate * 8.0 / 1000.0 * (MPS + HDR) / MPS);
}

Test(ibverbs_sim, hw_pacing_when_the_device_supports_it)
{
    H.cfg.pacing_min_kbps = 1000;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    H.cfg.pacing_burst = true;
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 125e6;
    h_must_open();
    cr_expect(H.p->hw_rate);
    cr_expect_eq(H.hw_paced_calls, 1, "open tells the core it paces");
    cr_expect(H.hw_paced);
    const struct simdev_stats *st = simdev_stats();
    cr_expect_eq(st->rate_limit_set, 1);
    cr_expect_eq(st->rate_limit.rate_limit, expected_kbps(125e6));
    cr_expect_eq(st->rate_limit.max_burst_sz, 65536);
    cr_expect_eq(st->rate_limit.typical_pkt_sz, MPS + HDR);
    cr_expect_eq(H.warnings, 0);
    cr_expect((ibvp_descriptor.caps & SPC_TRANSPORT_CAP_HW_RATE) != 0);
    /* A replaced queue pair is limited again. */
    simdev_fail_wr(0, IBV_WC_GENERAL_ERR);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    add_tx(s, iov, 1, 100, 0);
    cr_assert_eq(send_range(s, 0, 1), 0);
    cr_assert_eq(h_flush(), 0);
    cr_expect_eq(H.recs[0].status, -EIO);
    cr_expect_eq(st->qps_created, 2);
    cr_expect_eq(st->rate_limit_set, 2);
    cr_expect_eq(H.hw_paced_calls, 1, "still paced: nothing more to tell the core");
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, hw_pacing_withdrawn_when_a_new_queue_pair_refuses_it)
{
    H.cfg.pacing_min_kbps = 1000;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 125e6;
    h_must_open();
    cr_assert(H.p->hw_rate);
    cr_assert(H.hw_paced);
    sim.cfg.rate_limit_errno = EPERM; /* (this file includes the simulator) */
    simdev_fail_wr(0, IBV_WC_GENERAL_ERR);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(100, 1);
    struct iovec iov[1] = {{d, 100}};
    add_tx(s, iov, 1, 100, 0);
    add_tx(s, iov, 1, 100, 0);
    cr_assert_eq(send_range(s, 0, 1), 0);
    cr_assert_eq(h_flush(), 0);
    cr_expect_eq(H.recs[0].status, -EIO);
    cr_expect_eq(simdev_stats()->qps_created, 2);
    cr_expect_not(H.p->hw_rate);
    cr_expect_eq(H.hw_paced_calls, 2);
    cr_expect_not(H.hw_paced, "the core paces from now on");
    cr_expect_eq(H.warnings, 1);
    cr_expect(strstr(H.warning, "refused on the new queue pair"), "%s", H.warning);
    /* The new queue pair sends, unlimited. */
    cr_assert_eq(send_range(s, 1, 1), 0);
    cr_assert_eq(h_flush(), 0);
    cr_expect_eq(H.recs[1].status, 0);
    h_close();
    free(d);
    pkts_free(s);
}

Test(ibverbs_sim, hw_pacing_without_burst_hints)
{
    H.cfg.pacing_min_kbps = 1000;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 125e6;
    h_must_open();
    cr_expect(H.p->hw_rate);
    cr_expect(H.hw_paced);
    cr_expect_eq(simdev_stats()->rate_limit.rate_limit, expected_kbps(125e6));
    cr_expect_eq(simdev_stats()->rate_limit.max_burst_sz, 0);
    h_close();
}

/* Sends 100 packets of 1000 bytes and returns the seconds it took. */
static double timed_send(void)
{
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(1000, 1);
    struct iovec iov[1] = {{d, 1000}};
    for (int i = 0; i < 100; i++)
        add_tx(s, iov, 1, 1000, 0);
    uint64_t t0 = h_clock();
    cr_assert_eq(send_range(s, 0, 100), 0);
    cr_assert_eq(h_flush(), 0);
    double dt = (double)(h_clock() - t0) / 1e9;
    expect_all_status(s, 0);
    free(d);
    pkts_free(s);
    return dt;
}

/* Hardware pacing was asked for and is unavailable: the plugin says why, leaves the
 * pacing to the core (never reporting hardware pacing) and does not pace itself: 100 kB
 * at 200 kB/s with a 10 kB burst allowance would take 0.45 s. */
static void expect_core_paces(const char *why)
{
    cr_expect_not(H.p->hw_rate);
    cr_expect_not(H.hw_paced);
    cr_expect_eq(H.warnings, 1);
    cr_expect(strstr(H.warning, "cannot pace this stream in hardware"), "%s", H.warning);
    cr_expect(strstr(H.warning, why), "%s", H.warning);
    double dt = timed_send();
    cr_expect_lt(dt, 0.3, "the plugin must not pace: %.3f s", dt);
}

Test(ibverbs_sim, hw_pacing_falls_back_without_device_support)
{
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 2e5;
    H.params.burst_size = 10000;
    h_must_open();
    cr_expect_eq(simdev_stats()->rate_limit_calls, 0);
    expect_core_paces("does not pace");
    h_close();
}

Test(ibverbs_sim, hw_pacing_falls_back_outside_the_range)
{
    H.cfg.pacing_min_kbps = 100000;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 2e5;
    H.params.burst_size = 10000;
    h_must_open();
    cr_expect_eq(simdev_stats()->rate_limit_calls, 0);
    expect_core_paces("outside its pacing range");
    h_close();
}

Test(ibverbs_sim, hw_pacing_falls_back_when_refused)
{
    H.cfg.pacing_min_kbps = 1;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    H.cfg.rate_limit_errno = EPERM;
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 2e5;
    H.params.burst_size = 10000;
    h_must_open();
    cr_expect_gt(simdev_stats()->rate_limit_calls, 0);
    expect_core_paces("setting the rate limit failed");
    h_close();
}

/* A core older than ABI minor 2 cannot be told: it takes the hw-rate capability to mean
 * the plugin paces. Where the device paces, that holds; where it cannot, open fails
 * rather than send unpaced. */
Test(ibverbs_sim, hw_pacing_with_a_core_before_abi_minor_2)
{
    H.svc.struct_size = offsetof(struct spc_core_services, set_hw_paced);
    H.svc.abi_minor = 1;
    H.params.rate_method = SPC_RATE_METHOD_HW;
    H.params.rate = 2e5;
    cr_expect_eq(h_open(), -SPC_ENOTSUP);
    cr_expect(strstr(H.error, "minor 2 or later"), "%s", H.error);
    H.cfg.pacing_min_kbps = 1;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    h_must_open();
    cr_expect(H.p->hw_rate);
    cr_expect_eq(H.hw_paced_calls, 0);
    h_close();
    /* Without hardware pacing asked for, nothing changes. */
    H.params.rate_method = SPC_RATE_METHOD_SW;
    h_must_open();
    cr_expect_not(H.p->hw_rate);
    h_close();
}

Test(ibverbs_sim, sw_and_auto_leave_pacing_to_the_core)
{
    H.cfg.pacing_min_kbps = 1;
    H.cfg.pacing_max_kbps = 100000000;
    H.cfg.pacing_raw_qp = true;
    H.params.rate = 2e5; /* paced, 100 packets of 1000 bytes would take 0.45 s */
    H.params.burst_size = 10000;
    H.params.rate_method = SPC_RATE_METHOD_SW;
    h_must_open();
    cr_expect_not(H.p->hw_rate);
    h_close();
    H.params.rate_method = SPC_RATE_METHOD_AUTO;
    h_must_open();
    cr_expect_not(H.p->hw_rate);
    cr_expect_eq(simdev_stats()->rate_limit_calls, 0);
    double dt = timed_send();
    cr_expect_lt(dt, 0.3, "the plugin must not pace: %.3f s", dt);
    h_close();
    cr_expect_eq(H.hw_paced_calls, 0);
    cr_expect_eq(H.warnings, 0);
}

/* ------------------------------------------------------------ finding the device */

Test(ibverbs_sim, device_found_by_gid_among_several)
{
    H.cfg.extra_device = true;
    H.cfg.match_by_gid = true;
    h_must_open();
    cr_expect_str_eq(H.p->dev_name, "sim_mlx5_0");
    cr_expect_str_eq(H.p->ifname, "simeth0");
    cr_expect_eq(H.p->port, 1);
    h_close();
}

static void expect_open_fails(int want, const char *a, const char *b)
{
    int rc = h_open();
    cr_expect_eq(rc, want, "open: %d (%s): %s", rc, spc_strerror(rc), H.error);
    cr_expect(strstr(H.error, a), "\"%s\" not in: %s", a, H.error);
    if (b)
        cr_expect(strstr(H.error, b), "\"%s\" not in: %s", b, H.error);
}

Test(ibverbs_sim, unicast_endpoint_refused)
{
    H.eps[1].host = "10.0.0.5";
    H.o.endpoints.n = 2;
    expect_open_fails(-SPC_ECONFIG, "endpoints[1]: 10.0.0.5 is not an IPv4 multicast group",
                      "udp transport");
}

Test(ibverbs_sim, address_of_no_interface)
{
    H.o.interface_address = "10.9.9.9";
    expect_open_fails(-ENODEV, "interface_address 10.9.9.9 is not an address of any",
                      "no RDMA device owns it");
}

Test(ibverbs_sim, interface_without_rdma_device)
{
    H.o.interface_address = "127.0.0.1";
    expect_open_fails(-ENODEV, "no RDMA device owns interface address 127.0.0.1 (lo)",
                      "RDMA devices present: sim_mlx5_0");
}

Test(ibverbs_sim, no_rdma_devices)
{
    H.cfg.no_devices = true;
    expect_open_fails(-ENODEV, "no RDMA device owns interface address 10.8.0.2 (simeth0)",
                      "RDMA devices present: none");
}

Test(ibverbs_sim, device_list_unavailable)
{
    H.cfg.list_fails = true;
    expect_open_fails(-ENODEV, "no RDMA device owns interface address 10.8.0.2",
                      "listing RDMA devices failed");
}

Test(ibverbs_sim, infiniband_port_does_not_own_an_ethernet_interface)
{
    H.cfg.infiniband_port = true;
    H.cfg.extra_device = true;
    expect_open_fails(-ENODEV, "no RDMA device owns interface address 10.8.0.2",
                      "sim_other0, sim_mlx5_0");
}

Test(ibverbs_sim, raw_queue_pair_needs_privilege)
{
    H.cfg.create_qp_errno = EPERM;
    expect_open_fails(-EPERM, "creating a raw packet queue pair on sim_mlx5_0", "CAP_NET_RAW");
}

Test(ibverbs_sim, buffer_smaller_than_a_slot_gets_one)
{
    H.o.buffer_size = 1;
    h_must_open();
    cr_expect_eq(H.p->n_slots, 1);
    cr_expect_eq(H.p->max_chain, 1);
    struct pkts *s = pkts_new();
    uint8_t *d = pattern(700, 4);
    struct iovec iov[1] = {{d, 700}};
    for (int i = 0; i < 5; i++)
        add_tx(s, iov, 1, 700, 0);
    cr_assert_eq(send_range(s, 0, 5), 0);
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    for (size_t k = 0; k < 5; k++)
        expect_frame(k, &s->tx[k], (uint16_t)k);
    h_close();
    free(d);
    pkts_free(s);
}

/* Random heaps over four substreams, half of them from registered memory, sent in
 * random batch sizes through few slots; every heap must decode intact. */
Test(ibverbs_sim, random_heaps_round_trip)
{
    H.o.endpoints.n = 4;
    H.o.buffer_size = 8 * 1536;
    H.cfg.max_sge = 3;
    h_must_open();
    uint64_t seed = 0x1bad5eed;
    enum { N = 24 };
    uint8_t *data[N];
    size_t len[N];
    struct spc_heap *heap[N];
    void *handle[N];
    struct pkts *s = pkts_new();
    for (int i = 0; i < N; i++) {
        len[i] = 1 + tu_rand(&seed) % 9000;
        data[i] = pattern(len[i], (uint8_t)i);
        handle[i] = NULL;
        if (i % 2)
            cr_assert_eq(ibvp_descriptor.ops->register_memory(&H.p->base, data[i], len[i], &handle[i]), 0);
        heap[i] = heap_with(data[i], len[i], 0x5000 + (uint64_t)i);
        add_heap(s, heap[i], 100 + (uint64_t)i, (uint32_t)(i % 4));
    }
    for (size_t at = 0; at < s->n;) {
        size_t m = 1 + tu_rand(&seed) % 17;
        if (m > s->n - at)
            m = s->n - at;
        cr_assert_eq(send_range(s, at, m), 0);
        at += m;
    }
    cr_assert_eq(h_flush(), 0);
    expect_all_status(s, 0);
    cr_assert_eq(simdev_n_frames(), s->n);
    for (size_t k = 0; k < s->n; k++)
        expect_frame(k, &s->tx[k], (uint16_t)k);
    /* Packets of heap i are contiguous in s, in add_heap order. */
    for (int i = 0, first = 0; i < N; i++) {
        struct spc_packetizer pz;
        cr_assert_eq(spc_packetizer_init(&pz, heap[i], 100 + (uint64_t)i, MPS), 0);
        int n = (int)spc_packetizer_count(&pz);
        expect_decodes_to((size_t)first, (size_t)n, (uint16_t)(7148 + i % 4), 100 + (uint64_t)i,
                          data[i], len[i], 0x5000 + (uint64_t)i);
        first += n;
    }
    for (int i = 0; i < N; i++) {
        if (handle[i])
            cr_assert_eq(ibvp_descriptor.ops->deregister_memory(&H.p->base, handle[i]), 0);
        spc_heap_destroy(heap[i]);
        free(data[i]);
    }
    cr_expect_eq(simdev_stats()->lkey_errors, 0);
    h_close();
    pkts_free(s);
}

/* ------------------------------------------------------------ the real module */

Test(ibverbs_module, loads_by_name_and_fails_cleanly_without_a_device)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
    char err[2048] = "";
    struct spc_config *cfg;
    int rc = spc_config_create(&cfg, "ibverbs", NULL, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(spc_config_add_endpoint(cfg, "endpoints", "239.1.2.3", 7148, err, sizeof err), 0, "%s", err);
    cr_assert_eq(spc_config_set_string(cfg, "interface_address", "127.0.0.1", err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h = NULL;
    rc = spc_transport_handle_open(&h, cfg, err, sizeof err);
    cr_expect_eq(rc, -ENODEV, "%d (%s): %s", rc, spc_strerror(rc), err);
    cr_expect_null(h);
    cr_expect(strstr(err, "no RDMA device owns interface address 127.0.0.1"), "%s", err);
    struct spc_stream *st = NULL;
    rc = spc_stream_open(&st, cfg, NULL, err, sizeof err);
    cr_expect_eq(rc, -ENODEV, "%d: %s", rc, err);
    cr_expect_null(st);
    cr_expect(strstr(err, "127.0.0.1"), "%s", err);
    spc_config_destroy(cfg);
}

Test(ibverbs_module, unicast_refused_before_looking_for_a_device)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
    char err[2048] = "";
    struct spc_config *cfg;
    cr_assert_eq(spc_config_parse(&cfg, "{\"transport\": \"ibverbs\", \"options\": "
                                        "{\"endpoints\": [\"192.0.2.1:7148\"], "
                                        "\"interface_address\": \"127.0.0.1\"}}",
                                  err, sizeof err), 0, "%s", err);
    struct spc_transport_handle *h = NULL;
    int rc = spc_transport_handle_open(&h, cfg, err, sizeof err);
    cr_expect_eq(rc, -SPC_ECONFIG, "%d: %s", rc, err);
    cr_expect(strstr(err, "not an IPv4 multicast group"), "%s", err);
    spc_config_destroy(cfg);
}

#endif /* libibverbs headers present */
