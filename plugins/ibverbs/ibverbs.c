/* The ibverbs transport (SPEC §4): raw Ethernet frames through a RAW_PACKET queue pair
 * on an RDMA NIC, bypassing the kernel.
 *
 * Slots: one buffer (huge pages when the system has them) registered once, cut into
 * n_slots slots of SPC_FRAME_HEADER_LEN + max payload bytes. Slots are used as a ring:
 * [tail, tail + n_inflight) are posted, the next chain_len are being chained, the rest
 * are free. A slot keeps the Ethernet/IPv4/UDP header of the substream it last carried
 * (hdr_sub), so a packet only patches the IPv4 total length, id and checksum and the UDP
 * length, unless its substream differs.
 *
 * Send queue: n_inflight + chain_len <= sq_depth <= n_slots, where sq_depth is what the
 * queue pair was created with (mlx5 sizing in qp.c; smaller if the device refused).
 * A request's place in the queue comes back only when the completion covering it is
 * polled, which is exactly when its slot leaves the ring.
 *
 * Interface: its MTU must hold max payload + 28 and it must not be a VLAN device
 * (device.c); frames carry no 802.1Q tag.
 *
 * Payload: pieces inside memory registered through register_memory go out zero-copy as
 * their own scatter/gather entries (adjacent pieces of one region merged); other pieces
 * are copied into the slot behind the header. A packet that would need more entries than
 * the queue pair allows is copied whole.
 *
 * Work requests: chained up to max_chain, posted with one call; only the last of a chain
 * is signalled. Invariant: every posted chain ends with a signalled request, so each
 * posted slot is eventually covered by a completion. Completions arrive in posting
 * order; a completion for slot k therefore completes every slot from tail to k: those
 * before k were sent, k carries the completion's status. wr_id is (qp generation << 32
 * | slot): completions of a queue pair that has been replaced are ignored.
 *
 * Errors: a failed work completion puts the queue pair in the error state, which flushes
 * every later request. The packet it names fails with -EIO; the queue pair is destroyed
 * (after which the device touches none of the slots), the packets still in flight fail
 * with -EIO and a new queue pair takes over. A post that fails part-way, and a device
 * that stops completing (no progress for stall_ns), are handled the same way (with the
 * post error and -ETIMEDOUT). Only when a new queue pair cannot be made is the
 * transport dead: every later send returns that error.
 *
 * Pacing: with rate_method "hw" and a rate, the queue pair is rate limited with
 * ibv_modify_qp_rate_limit when the device paces raw packet queue pairs at that rate, and
 * open reports it with svc->set_hw_paced(true), so the core's software limiter stands
 * down. Otherwise the core paces (the default). Should a replacement queue pair refuse
 * the rate, hardware pacing is withdrawn (set_hw_paced(false)) and the core paces from
 * then on. The plugin never paces in software itself.
 */

/* This file: the option table, open and close, and the descriptor. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ibvp.h"
#include "spcu_net.h"

static const struct spc_option ibvp_option_table[] = {
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct ibvp_options, endpoints), .flags = SPC_OPT_REQUIRED,
     .min_count = 1,
     .help = "IPv4 multicast group and UDP port of each substream, \"group:port\"; unicast "
             "destinations are refused (the transport does no neighbour resolution)"},
    {SPC_OPTION_INIT, .name = "interface_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct ibvp_options, interface_address), .flags = SPC_OPT_REQUIRED,
     .min_count = 1,
     .help = "IPv4 address of the local interface to send from; the RDMA device owning "
             "that interface sends, with its Ethernet and IP address as source"},
    {SPC_OPTION_INIT, .name = "buffer_size", .type = SPC_OPT_UINT,
     .offset = offsetof(struct ibvp_options, buffer_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 524288, .min.u = 1,
     .max.u = 1073741824,
     .help = "bytes of registered packet slots (each max_packet_size + 42 bytes, rounded up "
             "to 64); at least one slot is made"},
    {SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT,
     .offset = offsetof(struct ibvp_options, ttl),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 1, .max.u = 255,
     .help = "IPv4 time-to-live of the frames"},
    {SPC_OPTION_INIT, .name = "comp_vector", .type = SPC_OPT_INT,
     .offset = offsetof(struct ibvp_options, comp_vector),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.i = 0, .min.i = -2147483647,
     .max.i = 2147483647,
     .help = "completion vector (interrupt) for waiting on completions, taken modulo the "
             "device's vectors; negative = busy-poll without interrupts"},
    {SPC_OPTION_INIT, .name = "max_poll", .type = SPC_OPT_UINT,
     .offset = offsetof(struct ibvp_options, max_poll),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 10, .min.u = 1,
     .max.u = 1000000,
     .help = "times the completion queue is polled in a row before waiting for an "
             "interrupt (or, when busy-polling, yielding the CPU)"},
};

static void release(struct ibvp *p)
{
    if (p->qp)
        p->v->destroy_qp(p->qp);
    p->qp = NULL;
    if (p->slots)
        ibvp_fail_all(p, -ECANCELED);
    while (p->regions) {
        struct ibvp_region *r = p->regions;
        p->regions = r->next;
        p->v->dereg_mr(r->mr);
        free(r);
    }
    if (p->cq) {
        if (p->unacked_events)
            p->v->ack_cq_events(p->cq, p->unacked_events);
        p->v->destroy_cq(p->cq);
    }
    if (p->channel)
        p->v->destroy_comp_channel(p->channel);
    if (p->mr)
        p->v->dereg_mr(p->mr);
    if (p->buf)
        munmap(p->buf, p->buf_len);
    if (p->pd)
        p->v->dealloc_pd(p->pd);
    if (p->ctx)
        p->v->close_device(p->ctx);
    free(p->slots);
    free(p->sges);
    free(p->flows);
    p->cq = NULL;
    p->channel = NULL;
    p->mr = NULL;
    p->buf = NULL;
    p->pd = NULL;
    p->ctx = NULL;
    p->slots = NULL;
    p->sges = NULL;
    p->flows = NULL;
}

/* host as an IPv4 address (plugins/common), with an error naming the option. */
static int parse_ipv4(struct ibvp *p, const char *what, const char *host, uint8_t out[4])
{
    const char *why = "";
    int rc = spcu_resolve_ipv4(host, out, &why);
    if (rc < 0)
        p->base.svc->set_error(&p->base, "cannot resolve %s \"%s\" to an IPv4 address (the ibverbs "
                                         "transport sends IPv4): %s", what, host, why);
    return rc;
}

static int open_verbs(struct ibvp *p, const struct ibvp_options *o,
                      const struct spc_transport_params *params, const uint8_t ip[4])
{
    int ifindex = 0;
    uint8_t mac[6];
    int rc = ibvp_find_interface(p, ip, &ifindex, mac);
    if (rc < 0 || (rc = ibvp_check_interface(p)) < 0)
        return rc;
    for (size_t i = 0; i < o->endpoints.n; i++) {
        memcpy(p->flows[i].src_mac, mac, 6);
        memcpy(p->flows[i].src_ip, ip, 4);
    }
    struct ibv_device_attr_ex da;
    if ((rc = ibvp_find_device(p, ip, ifindex, &da)) < 0)
        return rc;

    p->max_sge = da.orig_attr.max_sge > 0 ? (uint32_t)da.orig_attr.max_sge : 1;
    if (p->max_sge > IBVP_MAX_SGE)
        p->max_sge = IBVP_MAX_SGE;
    p->csum_offload = (da.orig_attr.device_cap_flags & IBV_DEVICE_RAW_IP_CSUM) != 0;
    if (p->csum_offload)
        for (size_t i = 0; i < o->endpoints.n; i++)
            p->flows[i].flags |= SPC_FRAME_NO_IP_CHECKSUM;

    errno = 0;
    if (!(p->pd = p->v->alloc_pd(p->ctx))) {
        rc = ibvp_errno_or(EIO);
        p->base.svc->set_error(&p->base, "allocating a protection domain on %s failed: %s",
                               p->dev_name, strerror(-rc));
        return rc;
    }
    if ((rc = ibvp_alloc_slots(p, o, &da)) < 0)
        return rc;
    int vector = 0;
    if (!p->busy_poll) {
        errno = 0;
        if (!(p->channel = p->v->create_comp_channel(p->ctx))) {
            rc = ibvp_errno_or(EIO);
            p->base.svc->set_error(&p->base, "creating a completion channel on %s failed: %s",
                                   p->dev_name, strerror(-rc));
            return rc;
        }
        int fl = fcntl(p->channel->fd, F_GETFL);
        if (fl < 0 || fcntl(p->channel->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            rc = ibvp_errno_or(EIO);
            p->base.svc->set_error(&p->base, "making the completion channel non-blocking: %s",
                                   strerror(-rc));
            return rc;
        }
        int nv = p->ctx->num_comp_vectors;
        vector = nv > 0 ? (int)(o->comp_vector % nv) : 0;
    }
    errno = 0;
    p->cq = p->v->create_cq(p->ctx, (int)(2 * p->n_slots), NULL, p->channel, vector);
    if (!p->cq) {
        rc = ibvp_errno_or(EIO);
        p->base.svc->set_error(&p->base, "creating a completion queue of %u entries on %s failed: %s",
                               (unsigned)p->n_slots, p->dev_name, strerror(-rc));
        return rc;
    }
    if ((rc = ibvp_qp_create(p)) < 0)
        return rc;
    return ibvp_setup_pacing(p, params, &da);
}

static int ibvp_open(struct spc_transport *t, const void *options,
                     const struct spc_transport_params *params)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    const struct ibvp_options *o = options;
    p->v = ibvp_verbs_in_use();
    if (!p->v) {
        t->svc->set_error(t, "no verbs table (a test build that did not set one)");
        return -SPC_ENOTSUP;
    }
    if (!SPC_HAS_FIELD(t->svc, struct spc_core_services, ipv4_checksum)) {
        t->svc->set_error(t, "the core (transport ABI minor %u) cannot build frames: minor 1 or "
                             "later is needed", (unsigned)t->svc->abi_minor);
        return -SPC_ENOTSUP;
    }
    if (o->endpoints.n == 0) {
        t->svc->set_error(t, "endpoints is empty: give one multicast group per substream");
        return -SPC_ECONFIG;
    }
    size_t mps = params->max_packet_size;
    p->max_payload = mps < SPC_FRAME_MAX_PAYLOAD ? mps : SPC_FRAME_MAX_PAYLOAD;
    p->max_poll = o->max_poll ? o->max_poll : 1;
    p->busy_poll = o->comp_vector < 0;

    uint8_t ip[4];
    int rc = parse_ipv4(p, "interface_address", o->interface_address, ip);
    if (rc < 0)
        return rc;
    inet_ntop(AF_INET, ip, p->addr_text, sizeof p->addr_text);
    if (!(p->flows = calloc(o->endpoints.n, sizeof *p->flows))) {
        t->svc->set_error(t, "out of memory for %zu endpoints", o->endpoints.n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->endpoints.n; i++) {
        const struct spc_endpoint *ep = o->endpoints.items[i];
        struct spc_frame_params *f = &p->flows[i];
        char what[32];
        snprintf(what, sizeof what, "endpoints[%zu]", i);
        if ((rc = parse_ipv4(p, what, ep->host, f->dst_ip)) < 0)
            goto fail;
        if (t->svc->frame_multicast_mac(f->dst_ip, f->dst_mac) < 0) {
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, f->dst_ip, text, sizeof text);
            t->svc->set_error(t, "%s: %s is not an IPv4 multicast group; the ibverbs transport "
                                 "sends only to multicast groups (unicast would need neighbour "
                                 "resolution, which it does not do): use the udp transport",
                              what, text);
            rc = -SPC_ECONFIG;
            goto fail;
        }
        f->struct_size = sizeof *f;
        f->src_port = (uint16_t)ep->port;
        f->dst_port = (uint16_t)ep->port;
        f->ttl = (uint8_t)o->ttl;
        uint8_t probe[HDR];
        if ((rc = t->svc->frame_write(f, 0, 0, probe)) < 0) {
            t->svc->set_error(t, "the core cannot build frames for %s: %s", what,
                              t->svc->strerror(rc));
            goto fail;
        }
    }
    if ((rc = open_verbs(p, o, params, ip)) < 0)
        goto fail;
    t->n_substreams = (uint32_t)o->endpoints.n;
    return 0;
fail:
    release(p);
    return rc;
}

static void ibvp_close(struct spc_transport *t)
{
    release(spc_container_of(t, struct ibvp, base));
}

static const struct spc_transport_ops ibvp_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = ibvp_open,
    .close = ibvp_close,
    .send = ibvp_send,
    .flush = ibvp_flush,
    .poll = ibvp_poll,
    .get_fd = ibvp_get_fd,
    .register_memory = ibvp_register_memory,
    .deregister_memory = ibvp_deregister_memory,
};

const struct spc_transport_descriptor ibvp_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "ibverbs",
    .version = "1.0.0",
    .description = "raw Ethernet/IPv4/UDP multicast frames through an RDMA NIC's raw packet "
                   "queue pair (kernel bypass)",
    .caps = SPC_TRANSPORT_CAP_ASYNC | SPC_TRANSPORT_CAP_MEMREG | SPC_TRANSPORT_CAP_HW_RATE,
    .options = ibvp_option_table,
    .n_options = sizeof ibvp_option_table / sizeof ibvp_option_table[0],
    .options_size = sizeof(struct ibvp_options),
    .object_size = sizeof(struct ibvp),
    .max_substreams = 0,
    .ops = &ibvp_ops,
};
