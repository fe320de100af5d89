/* The afxdp transport: Ethernet/IPv4/UDP frames sent through an AF_XDP socket bound to
 * one queue of any Linux interface, bypassing the kernel's UDP/IP stack (and, where the
 * driver offers zero-copy, its copies too). TX only: no XDP program is attached, so what
 * the interface receives still reaches the kernel stack.
 *
 * Frames: a UMEM of frame_count slots of frame_size bytes (the area is ours, mmapped).
 * Free slots are kept on a stack. A packet is copied into one slot behind the header
 * the core's frame code writes (the same bytes as the pcap transport), or, when
 * frame_size is smaller than the frame, into several slots sent as one multi-buffer
 * packet (descriptors chained with XDP_PKT_CONTD). The heap's memory is never sent in
 * place: a UMEM is fixed when the socket is bound, so there is no memory registration;
 * in zero-copy mode the NIC reads the slot itself, in copy mode the kernel copies it
 * once more into an skb.
 *
 * Completions: a packet stays SPC_TX_PENDING until the completion ring has returned
 * every slot it used; the token is kept with its last slot (tokens[slot]), and a packet
 * completes when that slot comes back. The kernel returns the slots of one socket in the
 * order they were sent, so the earlier slots of the packet are back by then. Reaping
 * happens in send, poll and flush.
 *
 * Kicks: descriptors are submitted to the TX ring and, unless need_wakeup says the
 * kernel is already at work, sendto() wakes it. In copy mode one sendto sends a bounded
 * number of frames and answers EAGAIN when more remain: the kick repeats (bounded). A
 * sendto that answers EBUSY means the kernel dropped a frame (e.g. the interface lost
 * its carrier): the packets completed next fail with -EIO instead of silently counting
 * as sent.
 *
 * Errors: while the interface has no carrier (peer stopped, link down) every packet of
 * a send fails at once with -ENETDOWN. When slots stay in flight without progress for
 * afx_stall_ns (2 s), their packets fail with the last kick error (or -ETIMEDOUT), and the
 * socket and UMEM are made afresh; only if that fails is the transport dead and every
 * later send returns that error.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_xdp.h>

#include "afxdp.h"
#include "afxdp_xsk.h"

#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0) /* Linux 6.6 uapi: another descriptor of the packet follows */
#endif

#define HDR SPC_FRAME_HEADER_LEN
#define AFX_MAX_FRAGS 8u            /* slots per packet; copy mode allows MAX_SKB_FRAGS */
#define AFX_REAP_BATCH 256u
#define AFX_KICK_LIMIT 4096u        /* sendto calls per kick (each sends >= 1 frame) */
#define AFX_NEIGH_TIMEOUT_MS 1000u

/* What tests/afxdp/test_afxdp_faults.c replaces when it compiles this file a second
 * time with SPC_AFXDP_TESTING: the one system call of the send path, and the time after
 * which slots without a completion count as lost. In the module both are constant. */
#ifdef SPC_AFXDP_TESTING
#define AFX_TESTABLE
#else
#define AFX_TESTABLE const
#endif
static ssize_t (*AFX_TESTABLE afx_sendto)(int, const void *, size_t, int, const struct sockaddr *,
                                          socklen_t) = sendto;
static AFX_TESTABLE uint64_t afx_stall_ns = 2000000000ull;

struct afx_options {
    const char *interface;
    uint64_t queue_id;
    struct spc_endpoint_list endpoints;
    const char *source_address;
    uint64_t source_port;
    const char *source_mac;
    const char *destination_mac;
    uint64_t ttl;
    uint64_t frame_size;
    uint64_t frame_count;
    int mode;
    bool need_wakeup;
};

struct afx {
    struct spc_transport base;
    struct afx_ifinfo ifc;
    struct afx_xsk_config cfg;
    struct afx_xsk x;
    bool have_socket;
    int ctl_fd;                     /* for carrier checks */
    struct spc_frame_params *flows; /* one per substream */
    size_t max_payload;             /* params->max_packet_size */
    uint16_t ip_id;

    void *area;
    size_t area_len;
    uint64_t *free_slots;           /* stack of slot addresses */
    uint32_t n_free;
    void **tokens;                  /* per slot: the token of the packet it ends, or NULL */
    uint32_t n_pending;             /* packets SPC_TX_PENDING */
    uint32_t unsubmitted;           /* descriptors reserved but not yet submitted */

    int drop_err;                   /* a kick saw a dropped frame: next completions fail */
    int last_kick_err;
    uint64_t last_progress_ns;
    int dead;                       /* 0, or the error every send returns */
};

static const char *const afx_modes[] = {"auto", "zerocopy", "copy", NULL};

static const struct spc_option afx_option_table[] = {
    {SPC_OPTION_INIT, .name = "interface", .type = SPC_OPT_STRING,
     .offset = offsetof(struct afx_options, interface), .flags = SPC_OPT_REQUIRED,
     .min_count = 1, .max_count = 15,
     .help = "network interface to send from (its MAC and first IPv4 address are the "
             "default source)"},
    {SPC_OPTION_INIT, .name = "queue_id", .type = SPC_OPT_UINT,
     .offset = offsetof(struct afx_options, queue_id),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 0, .max.u = 65535,
     .help = "queue of the interface the AF_XDP socket binds to"},
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct afx_options, endpoints), .flags = SPC_OPT_REQUIRED,
     .min_count = 1,
     .help = "destination IPv4 address and UDP port of each substream, \"host:port\" "
             "(names are resolved at open)"},
    {SPC_OPTION_INIT, .name = "source_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct afx_options, source_address), .min_count = 1,
     .help = "source IPv4 address of the frames (default: the interface's first IPv4 "
             "address)"},
    {SPC_OPTION_INIT, .name = "source_port", .type = SPC_OPT_UINT,
     .offset = offsetof(struct afx_options, source_port),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 49152, .max.u = 65535,
     .help = "source UDP port of the frames"},
    {SPC_OPTION_INIT, .name = "source_mac", .type = SPC_OPT_STRING,
     .offset = offsetof(struct afx_options, source_mac), .min_count = 17, .max_count = 17,
     .help = "source Ethernet address, \"aa:bb:cc:dd:ee:ff\" (default: the interface's)"},
    {SPC_OPTION_INIT, .name = "destination_mac", .type = SPC_OPT_STRING,
     .offset = offsetof(struct afx_options, destination_mac), .min_count = 17,
     .max_count = 17,
     .help = "destination Ethernet address for unicast endpoints (default: each "
             "endpoint's entry in the kernel's neighbour table, resolved at open); "
             "multicast endpoints always use 01:00:5e + the low 23 bits of the group"},
    {SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT,
     .offset = offsetof(struct afx_options, ttl),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 64, .min.u = 1,
     .max.u = 255,
     .help = "IPv4 time-to-live of the frames"},
    {SPC_OPTION_INIT, .name = "frame_size", .type = SPC_OPT_UINT,
     .offset = offsetof(struct afx_options, frame_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 4096, .min.u = 2048,
     .max.u = 65536,
     .help = "bytes per UMEM slot, a power of two (the kernel allows 2048 up to the page "
             "size); a frame larger than a slot spans several (multi-buffer, Linux 6.6+), "
             "at most 8"},
    {SPC_OPTION_INIT, .name = "frame_count", .type = SPC_OPT_UINT,
     .offset = offsetof(struct afx_options, frame_count),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 2048, .min.u = 64,
     .max.u = 1048576,
     .help = "UMEM slots, a power of two; also the size of the TX and completion rings"},
    {SPC_OPTION_INIT, .name = "mode", .type = SPC_OPT_ENUM,
     .offset = offsetof(struct afx_options, mode), .flags = SPC_OPT_DEFAULT,
     .def.s = "auto", .choices = afx_modes,
     .help = "zerocopy: the NIC reads the UMEM (driver support needed); copy: the kernel "
             "copies each frame; auto: zero-copy where the driver offers it, else copy"},
    {SPC_OPTION_INIT, .name = "need_wakeup", .type = SPC_OPT_BOOL,
     .offset = offsetof(struct afx_options, need_wakeup), .flags = SPC_OPT_DEFAULT,
     .def.b = true,
     .help = "bind with XDP_USE_NEED_WAKEUP: wake the kernel with sendto only when it asks"},
};

static uint64_t now_ns(const struct afx *p)
{
    return p->base.svc->clock_ns();
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static uint32_t slots_for(const struct afx *p, size_t payload)
{
    return (uint32_t)((HDR + payload + p->cfg.frame_size - 1) / p->cfg.frame_size);
}

/* ------------------------------------------------------------ completions */

/* Returns the slots the kernel has finished with; completes the packets they end.
 * Returns the number of packets completed. */
static int reap(struct afx *p)
{
    int done = 0;
    uint32_t idx, n;
    while ((n = xsk_ring_cons__peek(&p->x.comp, AFX_REAP_BATCH, &idx)) > 0) {
        for (uint32_t k = 0; k < n; k++) {
            uint64_t addr = *xsk_ring_cons__comp_addr(&p->x.comp, idx + k);
            uint64_t slot = addr / p->cfg.frame_size;
            p->free_slots[p->n_free++] = slot * p->cfg.frame_size;
            void *token = p->tokens[slot];
            if (token) {
                p->tokens[slot] = NULL;
                p->n_pending--;
                p->base.svc->complete(&p->base, token, p->drop_err);
                done++;
            }
        }
        xsk_ring_cons__release(&p->x.comp, n);
        p->last_progress_ns = now_ns(p);
    }
    if (done)
        p->drop_err = 0;
    return done;
}

/* Fails every pending packet with status; the slots are not returned (the caller
 * destroys the socket, after which all of them are free). */
static void fail_pending(struct afx *p, int status)
{
    for (uint32_t s = 0; s < p->cfg.frame_count && p->n_pending; s++) {
        if (p->tokens[s]) {
            void *token = p->tokens[s];
            p->tokens[s] = NULL;
            p->n_pending--;
            p->base.svc->complete(&p->base, token, status);
        }
    }
}

static void slots_reset(struct afx *p)
{
    p->n_free = 0;
    for (uint32_t s = p->cfg.frame_count; s-- > 0;)
        p->free_slots[p->n_free++] = (uint64_t)s * p->cfg.frame_size;
    p->unsubmitted = 0;
    p->drop_err = 0;
    p->last_kick_err = 0;
}

/* Wakes the kernel to send what the TX ring holds. Returns 0, or the error of a sendto
 * that failed for another reason than "call again". */
static int kick(struct afx *p)
{
    if (p->unsubmitted) {
        xsk_ring_prod__submit(&p->x.tx, p->unsubmitted);
        p->unsubmitted = 0;
    }
    for (unsigned i = 0; i < AFX_KICK_LIMIT; i++) {
        if (p->cfg.need_wakeup && !xsk_ring_prod__needs_wakeup(&p->x.tx))
            return 0;
        if (afx_sendto(p->x.fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
            return 0;
        int e = errno;
        if (e == EAGAIN || e == EINTR || e == ENOBUFS) {
            /* more to send (copy mode's per-call budget) or no completion room yet */
            if (__atomic_load_n(p->x.tx.consumer, __ATOMIC_ACQUIRE) == *p->x.tx.producer)
                return 0;
            continue;
        }
        if (e == EBUSY) {
            p->drop_err = -EIO;
            p->base.svc->set_error(&p->base, "the kernel dropped a frame on %s (no carrier?): "
                                   "the packets completing next fail", p->ifc.name);
            continue;
        }
        p->last_kick_err = -e;
        return -e;
    }
    return 0;
}

/* Replaces socket and UMEM after slots were lost; pending packets fail with status.
 * Returns 0, or the error that makes the transport dead. */
static int renew_socket(struct afx *p, int status)
{
    fail_pending(p, status);
    afx_xsk_destroy(&p->x);
    p->have_socket = false;
    slots_reset(p);
    int rc = afx_xsk_create(&p->base, &p->cfg, &p->x);
    if (rc < 0) {
        p->dead = rc;
        return rc;
    }
    p->have_socket = true;
    p->last_progress_ns = now_ns(p);
    return 0;
}

/* Waits (bounded) until a slot or more comes back. Returns 0 when there was progress
 * or the socket was renewed after a stall (the pending packets failed), or the error
 * that made the transport dead. */
static int wait_progress(struct afx *p)
{
    for (unsigned spin = 0;; spin++) {
        uint32_t before = p->n_free;
        kick(p);
        reap(p);
        if (p->n_free != before || p->n_free == p->cfg.frame_count)
            return 0;
        if (now_ns(p) - p->last_progress_ns > afx_stall_ns) {
            int st = p->last_kick_err ? p->last_kick_err : -ETIMEDOUT;
            p->base.svc->set_error(&p->base, "%s queue %u: %u frames unsent for %llu ms (%s); "
                                   "their packets failed and the socket was renewed",
                                   p->ifc.name, (unsigned)p->cfg.queue_id,
                                   (unsigned)(p->cfg.frame_count - p->n_free),
                                   (unsigned long long)(afx_stall_ns / 1000000u), strerror(-st));
            return renew_socket(p, st);
        }
        if (spin < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

/* ------------------------------------------------------------ sending */

/* Copies header and payload of pkt into the slots at addrs and fills their
 * descriptors, starting at TX ring index idx. */
static void fill_slots(struct afx *p, const struct spc_tx_packet *pkt, const uint64_t *addrs,
                       uint32_t n, uint32_t idx)
{
    const size_t fs = p->cfg.frame_size;
    uint8_t *dst = xsk_umem__get_data(p->area, addrs[0]);
    p->base.svc->frame_write(&p->flows[pkt->substream], pkt->size, p->ip_id++, dst);
    size_t room = fs - HDR;
    dst += HDR;
    uint32_t slot = 0;
    for (uint32_t i = 0; i < pkt->n_iov; i++) {
        const uint8_t *src = pkt->iov[i].iov_base;
        size_t len = pkt->iov[i].iov_len;
        while (len) {
            if (room == 0) {
                dst = xsk_umem__get_data(p->area, addrs[++slot]);
                room = fs;
            }
            size_t c = len < room ? len : room;
            memcpy(dst, src, c);
            dst += c, src += c, len -= c, room -= c;
        }
    }
    size_t left = HDR + pkt->size;
    for (uint32_t k = 0; k < n; k++) {
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&p->x.tx, idx + k);
        d->addr = addrs[k];
        d->len = (uint32_t)(left < fs ? left : fs);
        d->options = k + 1 < n ? XDP_PKT_CONTD : 0;
        left -= d->len;
    }
}

/* Puts one packet on the TX ring, waiting for slots when all are in flight. Returns
 * SPC_TX_PENDING, or an error for this packet, or (dead) the transport's error. */
static int send_one(struct afx *p, struct spc_tx_packet *pkt)
{
    if (pkt->size > p->max_payload) {
        p->base.svc->set_error(&p->base, "a %zu-byte packet is larger than max_packet_size %zu",
                               pkt->size, p->max_payload);
        return -EMSGSIZE;
    }
    uint32_t n = slots_for(p, pkt->size), idx;
    /* The TX ring has frame_count entries, one per slot: with n slots free it has room
     * for n descriptors. After a renewed socket every slot is free. */
    while (p->n_free < n || xsk_ring_prod__reserve(&p->x.tx, n, &idx) != n) {
        int rc = wait_progress(p);
        if (rc < 0)
            return rc;
    }
    uint64_t addrs[AFX_MAX_FRAGS];
    for (uint32_t k = 0; k < n; k++)
        addrs[k] = p->free_slots[--p->n_free];
    fill_slots(p, pkt, addrs, n, idx);
    p->tokens[addrs[n - 1] / p->cfg.frame_size] = pkt->token;
    p->n_pending++;
    p->unsubmitted += n;
    return SPC_TX_PENDING;
}

static int afx_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct afx *p = spc_container_of(t, struct afx, base);
    if (p->dead)
        return p->dead;
    reap(p);
    int link = afx_if_running(p->ctl_fd, p->ifc.name);
    if (link < 0) {
        t->svc->set_error(t, "%s is down or has no carrier (peer stopped?): %zu packets not "
                          "sent", p->ifc.name, b->n_packets);
        for (size_t i = 0; i < b->n_packets; i++)
            spc_tx_batch_packet(b, i)->status = link;
        return 0;
    }
    if (p->n_pending == 0)
        p->last_progress_ns = now_ns(p);
    for (size_t i = 0; i < b->n_packets; i++) {
        struct spc_tx_packet *pkt = spc_tx_batch_packet(b, i);
        int rc = send_one(p, pkt);
        if (rc < 0 && p->dead) {
            for (; i < b->n_packets; i++)
                spc_tx_batch_packet(b, i)->status = p->dead;
            return 0;
        }
        pkt->status = rc;
    }
    kick(p);
    reap(p);
    return 0;
}

static int afx_poll(struct spc_transport *t)
{
    struct afx *p = spc_container_of(t, struct afx, base);
    if (!p->have_socket)
        return 0;
    if (p->n_pending)
        kick(p);
    return reap(p);
}

static int afx_flush(struct spc_transport *t)
{
    struct afx *p = spc_container_of(t, struct afx, base);
    while (p->n_pending && p->have_socket) {
        int rc = wait_progress(p);
        if (rc < 0)
            return rc;
    }
    return p->dead;
}

/* The socket: poll(2) for POLLOUT reports room in the TX ring (and, in copy mode, sends
 * what the ring holds); completions are then collected by the poll op. */
static int afx_get_fd(struct spc_transport *t)
{
    struct afx *p = spc_container_of(t, struct afx, base);
    return p->have_socket ? p->x.fd : p->dead;
}

/* ------------------------------------------------------------ open and close */

static void afx_release(struct afx *p)
{
    if (p->have_socket) {
        fail_pending(p, -ECANCELED);
        afx_xsk_destroy(&p->x);
        p->have_socket = false;
    }
    if (p->area)
        munmap(p->area, p->area_len);
    p->area = NULL;
    if (p->ctl_fd >= 0)
        close(p->ctl_fd);
    p->ctl_fd = -1;
    free(p->free_slots);
    free(p->tokens);
    free(p->flows);
    p->free_slots = NULL;
    p->tokens = NULL;
    p->flows = NULL;
}

/* The flows: one frame template per endpoint. */
static int make_flows(struct afx *p, const struct afx_options *o)
{
    struct spc_transport *t = &p->base;
    struct spc_frame_params base = {SPC_FRAME_PARAMS_INIT, .src_port = (uint16_t)o->source_port,
                                    .ttl = (uint8_t)o->ttl};
    memcpy(base.src_mac, p->ifc.mac, 6);
    if (o->source_mac && t->svc->mac_parse(o->source_mac, base.src_mac) < 0) {
        t->svc->set_error(t, "source_mac \"%s\" is not of the form aa:bb:cc:dd:ee:ff",
                          o->source_mac);
        return -SPC_ECONFIG;
    }
    uint8_t unicast_mac[6];
    if (o->destination_mac && t->svc->mac_parse(o->destination_mac, unicast_mac) < 0) {
        t->svc->set_error(t, "destination_mac \"%s\" is not of the form aa:bb:cc:dd:ee:ff",
                          o->destination_mac);
        return -SPC_ECONFIG;
    }
    int rc;
    if (o->source_address) {
        if ((rc = afx_resolve_v4(t, "source_address", o->source_address, base.src_ip)) < 0)
            return rc;
    } else if (p->ifc.has_ipv4) {
        memcpy(base.src_ip, p->ifc.ipv4, 4);
    } else {
        t->svc->set_error(t, "%s has no IPv4 address: give source_address", p->ifc.name);
        return -SPC_ECONFIG;
    }
    p->flows = calloc(o->endpoints.n, sizeof *p->flows);
    if (!p->flows) {
        t->svc->set_error(t, "out of memory for %zu endpoints", o->endpoints.n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->endpoints.n; i++) {
        const struct spc_endpoint *ep = o->endpoints.items[i];
        struct spc_frame_params *f = &p->flows[i];
        *f = base;
        char what[32];
        snprintf(what, sizeof what, "endpoints[%zu]", i);
        if ((rc = afx_resolve_v4(t, what, ep->host, f->dst_ip)) < 0)
            return rc;
        f->dst_port = (uint16_t)ep->port;
        if (t->svc->frame_multicast_mac(f->dst_ip, f->dst_mac) == 0)
            continue;
        if (o->destination_mac)
            memcpy(f->dst_mac, unicast_mac, 6);
        else if ((rc = afx_neigh_lookup(t, &p->ifc, f->dst_ip, AFX_NEIGH_TIMEOUT_MS,
                                        f->dst_mac)) < 0)
            return rc;
    }
    return 0;
}

/* Checks the sizes against the interface and the kernel's rules; fills p->cfg. */
static int check_sizes(struct afx *p, const struct afx_options *o, size_t max_payload)
{
    struct spc_transport *t = &p->base;
    if (!is_pow2(o->frame_size) || !is_pow2(o->frame_count)) {
        t->svc->set_error(t, "frame_size (%llu) and frame_count (%llu) must be powers of two",
                          (unsigned long long)o->frame_size, (unsigned long long)o->frame_count);
        return -SPC_ECONFIG;
    }
    p->cfg.frame_size = (uint32_t)o->frame_size;
    p->cfg.frame_count = (uint32_t)o->frame_count;
    uint32_t n = slots_for(p, max_payload);
    if (n > AFX_MAX_FRAGS) {
        t->svc->set_error(t, "frame_size %u is too small for max_packet_size %zu: a frame of "
                          "%zu bytes would span %u slots, at most %u are allowed",
                          (unsigned)o->frame_size, max_payload, max_payload + HDR, (unsigned)n,
                          AFX_MAX_FRAGS);
        return -SPC_ECONFIG;
    }
    p->cfg.multi_buffer = n > 1;
    if (max_payload > SPC_FRAME_MAX_PAYLOAD || max_payload + 28 > p->ifc.mtu) {
        t->svc->set_error(t, "max_packet_size %zu needs an IPv4 MTU of %zu, but %s has MTU %u",
                          max_payload, max_payload + 28, p->ifc.name, p->ifc.mtu);
        return -EMSGSIZE;
    }
    if (p->ifc.n_queues && o->queue_id >= p->ifc.n_queues) {
        t->svc->set_error(t, "queue_id %llu out of range: %s has %u queues",
                          (unsigned long long)o->queue_id, p->ifc.name, p->ifc.n_queues);
        return -EINVAL;
    }
    return 0;
}

static int afx_open_inner(struct afx *p, const struct afx_options *o,
                          const struct spc_transport_params *params)
{
    struct spc_transport *t = &p->base;
    if (!SPC_HAS_FIELD(t->svc, struct spc_core_services, mac_parse)) {
        t->svc->set_error(t, "the core (transport ABI minor %u) cannot build frames: "
                             "minor 1 or later is needed", (unsigned)t->svc->abi_minor);
        return -SPC_ENOTSUP;
    }
    if (o->endpoints.n == 0) {
        t->svc->set_error(t, "endpoints is empty: give one destination per substream");
        return -SPC_ECONFIG;
    }
    int rc = afx_if_query(t, o->interface, &p->ifc);
    if (rc < 0)
        return rc;
    p->max_payload = params->max_packet_size;
    if ((rc = check_sizes(p, o, p->max_payload)) < 0)
        return rc;
    if ((rc = make_flows(p, o)) < 0)
        return rc;
    p->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->ctl_fd < 0) {
        rc = -errno;
        t->svc->set_error(t, "socket for carrier checks: %s", strerror(-rc));
        return rc;
    }
    uint32_t fc = p->cfg.frame_count;
    p->free_slots = calloc(fc, sizeof *p->free_slots);
    p->tokens = calloc(fc, sizeof *p->tokens);
    p->area_len = (size_t)fc * p->cfg.frame_size;
    p->area = mmap(NULL, p->area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->area == MAP_FAILED)
        p->area = NULL;
    if (!p->free_slots || !p->tokens || !p->area) {
        t->svc->set_error(t, "out of memory for %u frames of %u bytes", (unsigned)fc,
                          (unsigned)p->cfg.frame_size);
        return -ENOMEM;
    }
    slots_reset(p);
    p->cfg.ifname = p->ifc.name;
    p->cfg.queue_id = (uint32_t)o->queue_id;
    p->cfg.n_queues = p->ifc.n_queues;
    p->cfg.area = p->area;
    p->cfg.mode = (enum afx_mode)o->mode;
    p->cfg.need_wakeup = o->need_wakeup;
    if ((rc = afx_xsk_create(t, &p->cfg, &p->x)) < 0)
        return rc;
    p->have_socket = true;
    t->svc->log(t, SPC_LOG_INFO, "%s queue %u: AF_XDP %s mode, %u frames of %u bytes%s",
                p->ifc.name, (unsigned)o->queue_id, p->x.zerocopy ? "zero-copy" : "copy",
                (unsigned)fc, (unsigned)p->cfg.frame_size,
                p->cfg.multi_buffer ? ", multi-buffer" : "");
    t->n_substreams = (uint32_t)o->endpoints.n;
    return 0;
}

static int afx_open(struct spc_transport *t, const void *options,
                    const struct spc_transport_params *params)
{
    struct afx *p = spc_container_of(t, struct afx, base);
    p->ctl_fd = -1;
    int rc = afx_open_inner(p, options, params);
    if (rc < 0)
        afx_release(p);
    return rc;
}

static void afx_close(struct spc_transport *t)
{
    afx_release(spc_container_of(t, struct afx, base));
}

static const struct spc_transport_ops afx_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = afx_open,
    .close = afx_close,
    .send = afx_send,
    .flush = afx_flush,
    .poll = afx_poll,
    .get_fd = afx_get_fd,
};

static const struct spc_transport_descriptor afx_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "afxdp",
    .version = "1.0.0",
    .description = "raw Ethernet/IPv4/UDP frames through an AF_XDP socket (TX only) on any "
                   "Linux interface",
    .caps = SPC_TRANSPORT_CAP_ASYNC,
    .options = afx_option_table,
    .n_options = sizeof afx_option_table / sizeof afx_option_table[0],
    .options_size = sizeof(struct afx_options),
    .object_size = sizeof(struct afx),
    .max_substreams = 0,
    .ops = &afx_ops,
};

SPC_TRANSPORT_DEFINE(afx_descriptor)
